"""Every endpoint and error path at the HTTP level (http.client, raw sockets
and the real curl binary): status codes, {"error": ...} bodies, keep-alive,
pipelining, limits."""

import json
import shutil
import socket
import subprocess

import pytest

from conftest import ROOT, image_bytes

X = {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}


def infer(server, doc, model="lin", headers=None):
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    st, h, data = server.request("POST", f"/v2/models/{model}/infer", body, headers or {})
    return st, h, json.loads(data) if data else None


def raw(server, payload, read_timeout=10):
    """Sends bytes on a fresh socket, returns everything read until close."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=read_timeout)
    try:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk
    finally:
        s.close()


def test_endpoints_ok(files_server):
    s = files_server
    for path in ["/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/lin",
                 "/v2/models/lin/versions/1", "/v2/models/lin/ready",
                 "/v2/models/lin/versions/1/ready", "/v2/models/lin/config",
                 "/v1/models/lin", "/v1/models/lin/metadata", "/metrics", "/openapi.yaml",
                 "/v2/openapi.yaml", "/"]:
        st, h, body = s.request("GET", path)
        assert st == 200, (path, body)
    st, _, body = s.request("POST", "/v2/repository/index", b"{}")
    assert st == 200
    index = json.loads(body)
    assert {"name": "lin", "version": "1", "state": "READY"} in index


def test_openapi_matches_docs(files_server):
    st, h, body = files_server.request("GET", "/openapi.yaml")
    with open(f"{ROOT}/docs/openapi.yaml", "rb") as f:
        assert body == f.read()
    assert h["Content-Type"] == "application/yaml"


@pytest.mark.parametrize("doc,code,text", [
    ({"inputs": [dict(X, shape=[1, 3], data=[1, 2, 3])]}, 400, "unexpected shape for input 'x'"),
    ({"inputs": [dict(X, datatype="INT32")]}, 400, "data-type is 'INT32'"),
    ({"inputs": [dict(X, datatype="FLOAT")]}, 400, "unknown datatype"),
    ({"inputs": [dict(X, data=[1, 2, 3])]}, 400, "has 3 values"),
    ({"inputs": [dict(X, data=[1, 2, 3, "a"])]}, 400, "must be a number"),
    ({"inputs": [dict(X, name="z")]}, 400, "unexpected inference input 'z'"),
    ({"inputs": [X, X]}, 400, "given twice"),
    ({"inputs": []}, 400, "non-empty 'inputs'"),
    ({"inputs": [X], "outputs": [{"name": "nope"}]}, 400, "unexpected inference output 'nope'"),
    ({"inputs": [X], "id": 5}, 400, "'id' must be a string"),
    ({"inputs": [X], "parameters": {"binary_data_output": "yes"}}, 400, "must be a boolean"),
    ({"inputs": [dict(X, shape=[-1, 4])]}, 400, "non-negative"),
    ({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32"}]}, 400, "neither 'data'"),
    ([1, 2], 400, "must be a JSON object"),
])
def test_infer_errors(files_server, doc, code, text):
    st, _, res = infer(files_server, doc)
    assert st == code, res
    assert text in res["error"], res


def test_unknown_model_and_version(files_server):
    st, _, res = infer(files_server, {"inputs": [X]}, model="nope")
    assert st == 404 and res == {"error": "unknown model: 'nope'"}
    st, _, res = infer(files_server, {"inputs": [X]}, model="lin/versions/3")
    assert st == 404 and "unknown version 3" in res["error"]
    st, _, res = infer(files_server, {"inputs": [X]}, model="lin/versions/x")
    assert st == 400
    st, _, body = files_server.request("GET", "/v2/models/nope")
    assert st == 404 and json.loads(body)["error"] == "unknown model: 'nope'"
    st, _, body = files_server.request("GET", "/v2/models/nope/ready")
    assert st == 404


def test_malformed_json(files_server):
    st, _, res = infer(files_server, b'{"inputs": [')
    assert st == 400 and "malformed JSON" in res["error"] and "line 1" in res["error"]
    st, _, res = infer(files_server, b"")
    assert st == 400 and "empty request body" in res["error"]


def test_binary_body_errors(files_server):
    head = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                   "parameters": {"binary_data_size": 16}}]}).encode()
    hl = {"Inference-Header-Content-Length": str(len(head))}
    # Truncated: 8 of the 16 bytes.
    st, _, res = infer(files_server, head + b"\0" * 8, headers=hl)
    assert st == 400 and "unexpected end of the binary data" in res["error"]
    # Too much.
    st, _, res = infer(files_server, head + b"\0" * 20, headers=hl)
    assert st == 400 and "additional input data" in res["error"]
    # Header length beyond the body.
    st, _, res = infer(files_server, head, headers={"Inference-Header-Content-Length": "99999"})
    assert st == 400 and "Inference-Header-Content-Length" in res["error"]
    # Size that does not match the shape.
    bad = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                  "parameters": {"binary_data_size": 12}}]}).encode()
    st, _, res = infer(files_server, bad + b"\0" * 12,
                       headers={"Inference-Header-Content-Length": str(len(bad))})
    assert st == 400 and "needs 16" in res["error"]
    # Exactly right works.
    st, h, res = infer(files_server, head + b"\0" * 16, headers=hl)
    assert st == 200


def test_non_image_bytes_to_image_input(files_server):
    blob = b"definitely not an image"
    head = json.dumps({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                                   "parameters": {"binary_data_size": 4 + len(blob)}}]}).encode()
    body = head + len(blob).to_bytes(4, "little") + blob
    st, _, res = infer(files_server, body, model="cnn",
                       headers={"Inference-Header-Content-Length": str(len(head))})
    assert st == 400 and "cannot be decoded" in res["error"], res
    # A truncated JPEG too.
    jpg = image_bytes("JPEG")[:200]
    head = json.dumps({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                                   "parameters": {"binary_data_size": 4 + len(jpg)}}]}).encode()
    st, _, res = infer(files_server, head + len(jpg).to_bytes(4, "little") + jpg, model="cnn",
                       headers={"Inference-Header-Content-Length": str(len(head))})
    assert st == 400 and "cannot be decoded" in res["error"], res


def test_method_and_endpoint_errors(files_server):
    st, _, body = files_server.request("GET", "/v2/models/lin/infer")
    assert st == 405 and "POST" in json.loads(body)["error"]
    st, _, body = files_server.request("DELETE", "/v2/models/lin")
    assert st == 405
    st, _, body = files_server.request("GET", "/nope")
    assert st == 404 and "no such endpoint" in json.loads(body)["error"]
    st, _, body = files_server.request("GET", "/v2/models/lin/bogus")
    assert st == 404


def test_malformed_http(files_server):
    out = raw(files_server, b"NOT A REQUEST\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400") and b'"error"' in out
    out = raw(files_server, b"GET /v2 HTTP/2.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 505")
    out = raw(files_server, b"POST /v2/models/lin/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 411")
    out = raw(files_server, b"GET /v2 HTTP/1.1\r\nContent-Length: x\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")
    out = raw(files_server, b"GET /v2 HTTP/1.1\r\n" + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 431")
    # A body cut short by the client: no answer, no crash; the server still serves.
    out = raw(files_server, b"POST /v2/models/lin/infer HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"in")
    assert out == b""
    assert files_server.request("GET", "/v2/health/live")[0] == 200


def test_huge_content_length_rejected_before_reading(files_server):
    out = raw(files_server, b"POST /v2/models/lin/infer HTTP/1.1\r\nContent-Length: "
              b"99999999999999999\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 413") and b"--max-body-mb" in out
    out = raw(files_server, b"POST /v2/models/lin/infer HTTP/1.1\r\nContent-Length: "
              b"999999999999999999999999999\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 413")


def test_oversized_body(start_server, models):
    s = start_server(models["lin"], "--max-body-mb", "1")
    st, _, body = s.request("POST", "/v2/models/lin/infer", b" " * (2 << 20))
    assert st == 413 and "--max-body-mb" in json.loads(body)["error"]
    st, _, res = infer(s, {"inputs": [X]})
    assert st == 200


def test_max_tensor_elements(start_server, models):
    s = start_server(models["lin"], "--max-tensor-elements", "100")
    st, _, res = infer(s, {"inputs": [dict(X, shape=[30, 4], data=[0] * 120)]})
    assert st == 400 and "--max-tensor-elements" in res["error"]


def test_keep_alive_and_pipelining(files_server):
    c = files_server.conn()
    try:
        for _ in range(5):
            c.request("GET", "/v2/health/ready")
            r = c.getresponse()
            assert r.status == 200 and r.getheader("Connection") == "keep-alive"
            r.read()
    finally:
        c.close()
    body = json.dumps({"inputs": [X]}).encode()
    req = (b"POST /v2/models/lin/infer HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
           + body)
    out = raw(files_server, req + req + b"GET /v2/health/live HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert out.count(b"HTTP/1.1 200 OK") == 3
    out = raw(files_server, b"GET /v2/health/live HTTP/1.0\r\n\r\n")
    assert b"Connection: close" in out


def test_connection_limit(start_server, models):
    s = start_server(models["lin"], "--max-connections", "2")
    a, b = s.conn(), s.conn()
    try:
        for c in (a, b):
            c.request("GET", "/v2/health/live")
            c.getresponse().read()
        out = raw(s, b"GET /v2/health/live HTTP/1.1\r\n\r\n")
        assert out.startswith(b"HTTP/1.1 503") and b"too many open connections" in out
    finally:
        a.close()
        b.close()


@pytest.mark.skipif(not shutil.which("curl"), reason="curl not installed")
def test_with_curl(files_server, tmp_path):
    base = f"http://{files_server.url}"
    out = subprocess.run(["curl", "-sS", "-f", f"{base}/v2/health/ready"], capture_output=True,
                         timeout=30)
    assert out.returncode == 0
    body = tmp_path / "req.json"
    # Larger than 1 MB: curl sends Expect: 100-continue.
    n = 70000
    body.write_text(json.dumps({"inputs": [{"name": "x", "shape": [n, 4], "datatype": "FP32",
                                            "data": [0.5] * (4 * n)}]}))
    out = subprocess.run(["curl", "-sS", "-f", "-H", "Content-Type: application/json",
                          "--data-binary", f"@{body}", f"{base}/v2/models/lin/infer"],
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["outputs"][0]["shape"] == [n, 3]
    out = subprocess.run(["curl", "-sS", "-i", f"{base}/v2/models/nope"], capture_output=True,
                         timeout=30)
    assert out.stdout.startswith(b"HTTP/1.1 404") and b'{"error":"unknown model' in out.stdout
    out = subprocess.run(["curl", "-sS", f"{base}/metrics"], capture_output=True, timeout=30)
    assert b"onyx_inference_request_success_total" in out.stdout


def test_inflight_bytes_limit(start_server, models):
    s = start_server(models["lin"], "--max-inflight-mb", "1")
    st, _, body = s.request("POST", "/v2/models/lin/infer", b" " * (3 << 19))
    assert st == 503 and "--max-inflight-mb" in json.loads(body)["error"]
    st, _, res = infer(s, {"inputs": [X]})
    assert st == 200


def test_head_has_no_body(files_server):
    out = raw(files_server, b"HEAD /v2/models/lin HTTP/1.1\r\n\r\nGET /v2/health/live HTTP/1.1\r\n"
                            b"Connection: close\r\n\r\n")
    first, rest = out.split(b"\r\n\r\n", 1)
    assert first.startswith(b"HTTP/1.1 200") and b"Content-Length: 0" not in first
    assert rest.startswith(b"HTTP/1.1 200")  # the next response follows at once


def test_garbage_never_kills_the_server(files_server):
    """Bounded random mutations of valid requests (HTTP head, JSON, binary):
    every one gets an answer or a close, and the server keeps serving."""
    import random
    rnd = random.Random(1234)
    good = json.dumps({"inputs": [X], "outputs": [{"name": "y"}]}).encode()
    head = json.dumps({"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                                   "parameters": {"binary_data_size": 40}}]}).encode()
    img = image_bytes("PNG", (8, 8))[:36]
    cases = []
    for i in range(60):
        b = bytearray(good)
        for _ in range(rnd.randint(1, 6)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        cases.append(("/v2/models/lin/infer", bytes(b), {}))
        bb = bytearray(head + len(img).to_bytes(4, "little") + img)
        for _ in range(rnd.randint(1, 4)):
            bb[rnd.randrange(len(bb))] = rnd.randrange(256)
        cases.append(("/v2/models/cnn/infer", bytes(bb),
                      {"Inference-Header-Content-Length": str(len(head))}))
        t = bytearray(json.dumps({"instances": [[1, 2, 3, 4]]}).encode())
        t[rnd.randrange(len(t))] = rnd.randrange(256)
        cases.append(("/v1/models/lin:predict", bytes(t), {}))
    for path, body, hdr in cases:
        st, _, data = files_server.request("POST", path, body, hdr)
        assert st in (200, 400), (st, body, data)
        if st == 400:
            assert "error" in json.loads(data)
    for i in range(40):
        line = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 80)))
        out = raw(files_server, line + b"\r\n\r\n")
        assert out == b"" or out.startswith(b"HTTP/1.1 "), out[:100]
    assert files_server.request("GET", "/v2/health/ready")[0] == 200


def test_web_page_is_served(files_server):
    st, h, body = files_server.request("GET", "/")
    assert st == 200 and h["Content-Type"].startswith("text/html") and b"<html" in body.lower()
    st, h, _ = files_server.request("GET", "/ui/app.js")
    assert st == 200 and "javascript" in h["Content-Type"]
    assert files_server.request("GET", "/ui/nope.js")[0] == 404
    assert files_server.request("POST", "/", b"{}")[0] == 405


def test_openapi_document_is_valid():
    yaml = pytest.importorskip("yaml")
    validator = pytest.importorskip("openapi_spec_validator")
    with open(f"{ROOT}/docs/openapi.yaml") as f:
        validator.validate(yaml.safe_load(f))
