/* openapi.c - the OpenAPI document served at /openapi.yaml. The text is
 * docs/openapi.yaml (tests/server checks that they are identical). */
#include "server/server.h"

const char onyx_openapi_yaml[] = "openapi: 3.0.3\n";
