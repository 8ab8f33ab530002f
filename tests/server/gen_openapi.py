"""Regenerates src/server/openapi.c from docs/openapi.yaml (the source of
truth for the document the server returns at /openapi.yaml). Run from the
repository root: python3 tests/server/gen_openapi.py"""

import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    with open(os.path.join(ROOT, "docs", "openapi.yaml")) as f:
        src = f.read()
    out = ["/* openapi.c - the OpenAPI document served at /openapi.yaml and /v2/openapi.yaml.",
           " * Generated from docs/openapi.yaml (the source of truth) by",
           " * tests/server/gen_openapi.py; tests/server/test_http.py checks that the two agree. */",
           '#include "server/server.h"', "",
           "/* One string per line: ISO C caps string literals at 4095 characters. */",
           "const char *const onyx_openapi_yaml[] = {"]
    for line in src.splitlines(True):
        out.append("    " + json.dumps(line) + ",")
    out += ["    NULL,", "};"]
    with open(os.path.join(ROOT, "src", "server", "openapi.c"), "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
