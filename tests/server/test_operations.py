"""Operating `onyx serve`: a bounded load test (8 connections), a dynamic
batching benchmark (prints numbers, asserts none about speed), queue and
timeout limits, graceful SIGTERM under load, logs and metrics."""

import json
import os
import signal
import threading
import time

import numpy as np

from conftest import make_lin, make_slow


def run_clients(server, path, bodies, connections, per_conn):
    """`connections` threads, each sending `per_conn` requests on one keep-alive
    connection. Returns (latencies in seconds, errors, wall seconds)."""
    lat, errors = [], []
    lock = threading.Lock()

    def worker(k):
        c = server.conn(timeout=60)
        try:
            for i in range(per_conn):
                body = bodies[(k * per_conn + i) % len(bodies)]
                t0 = time.perf_counter()
                c.request("POST", path, body, {"Content-Type": "application/json"})
                r = c.getresponse()
                data = r.read()
                dt = time.perf_counter() - t0
                with lock:
                    lat.append(dt)
                    if r.status != 200:
                        errors.append((r.status, data[:200]))
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(connections)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return lat, errors, time.perf_counter() - t0


def pct(lat, p):
    return sorted(lat)[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000


def lin_bodies(rows=1, n=16):
    rs = np.random.RandomState(0)
    return [json.dumps({"inputs": [{"name": "x", "shape": [rows, 4], "datatype": "FP32",
                                    "data": rs.randn(rows * 4).round(4).tolist()}]}).encode()
            for _ in range(n)]


def test_load_8_connections(models, start_server):
    s = start_server(models["lin"], models["cnn"], "--no-access-log")
    lat, errors, wall = run_clients(s, "/v2/models/lin/infer", lin_bodies(), 8, 100)
    assert errors == []
    assert len(lat) == 800
    print(f"\nload: 800 requests on 8 connections in {wall:.2f}s ({800 / wall:.0f}/s); "
          f"latency ms p50 {pct(lat, 50):.2f} p90 {pct(lat, 90):.2f} p99 {pct(lat, 99):.2f} "
          f"max {max(lat) * 1000:.2f}")
    m = s.metrics()
    assert m['onyx_inference_request_success_total{model="lin",version="1"}'] == 800
    assert m['onyx_inference_request_duration_seconds_count{model="lin",version="1"}'] == 800
    assert m["onyx_models_loaded"] == 2
    assert m["onyx_http_requests_in_flight"] == 1  # the /metrics request itself


def test_dynamic_batching_benchmark(tmp_path, start_server):
    """Throughput of the same model with and without dynamic batching (numbers
    only: speed depends on the machine)."""
    repo = tmp_path / "repo"
    for name, cfg in [("plain", ""),
                      ("batched", "max_batch_size: 32\ndynamic_batching "
                                  "{ max_queue_delay_microseconds: 2000 }\n")]:
        os.makedirs(repo / name / "1")
        make_slow(str(repo / name / "1" / "model.onnx"), n=4, size=128)
        (repo / name / "config.pbtxt").write_text(cfg)
    s = start_server("--model-repository", str(repo), "--no-access-log")
    rs = np.random.RandomState(1)
    bodies = [json.dumps({"inputs": [{"name": "x", "shape": [1, 128], "datatype": "FP32",
                                      "data": rs.randn(128).round(3).tolist()}]}).encode()
              for _ in range(8)]
    out = {}
    for name in ("plain", "batched"):
        lat, errors, wall = run_clients(s, f"/v2/models/{name}/infer", bodies, 8, 40)
        assert errors == []
        out[name] = (320 / wall, pct(lat, 50), pct(lat, 99))
    m = s.metrics()
    execs = m['onyx_inference_exec_count_total{model="batched",version="1"}']
    print(f"\nbatching: plain {out['plain'][0]:.0f} req/s (p50 {out['plain'][1]:.2f} ms, "
          f"p99 {out['plain'][2]:.2f} ms); batched {out['batched'][0]:.0f} req/s "
          f"(p50 {out['batched'][1]:.2f} ms, p99 {out['batched'][2]:.2f} ms), "
          f"{320 / execs:.1f} requests per execution")


def test_queue_full_and_timeouts(models, start_server):
    s = start_server(models["slow"], "--threads", "1", "--max-queue", "2",
                     "--request-timeout-ms", "60000")
    body = json.dumps({"inputs": [{"name": "x", "shape": [256, 256], "datatype": "FP32",
                                   "data": [0.01] * (256 * 256)}]}).encode()
    lat, errors, _ = run_clients(s, "/v2/models/slow/infer", [body], 8, 2)
    codes = [e[0] for e in errors]
    assert 503 in codes and set(codes) == {503}, codes
    assert any(b"queue is full" in e[1] for e in errors)
    assert len(lat) - len(errors) >= 3  # the running one and the queued ones succeed
    m = s.metrics()
    assert m['onyx_inference_request_failure_total{model="slow",version="1",reason="unavailable"}'] \
        == len(errors)

    # A request that waits in the queue past --request-timeout-ms gets 503.
    t = start_server(models["slow"], "--threads", "1", "--request-timeout-ms", "5")
    lat, errors, _ = run_clients(t, "/v2/models/slow/infer", [body], 6, 1)
    assert errors and all(e[0] == 503 and b"timed out" in e[1] for e in errors), errors


def test_sigterm_under_load_finishes_in_flight(models, start_server):
    # One worker and runs of tens of milliseconds: the six requests are all
    # received (one running, five queued) before SIGTERM.
    s = start_server(models["slow"], "--threads", "1")
    body = json.dumps({"inputs": [{"name": "x", "shape": [256, 256], "datatype": "FP32",
                                   "data": [0.02] * (256 * 256)}]}).encode()
    results = []

    def one():
        st, _, data = s.request("POST", "/v2/models/slow/infer", body, timeout=60)
        results.append((st, data[:100]))

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    # Wait until all six were received: answered, or in flight (the /metrics
    # request itself is one of those in flight).
    # Answers are counted before the gauge is read, so none is counted twice.
    end = time.time() + 20
    while time.time() < end:
        done = len(results)
        if s.metrics()["onyx_http_requests_in_flight"] - 1 + done >= 6:
            break
        time.sleep(0.005)
    s.signal(signal.SIGTERM)
    for t in threads:
        t.join(60)
    assert s.proc.wait(30) == 0, s.logs()
    assert [r[0] for r in results] == [200] * 6, results
    logs = s.logs()
    assert "no longer accepting connections" in logs and "drained" in logs
    # Nothing listens any more.
    import socket
    try:
        socket.create_connection(("127.0.0.1", s.port), timeout=2).close()
        refused = False
    except OSError:
        refused = True
    assert refused


def test_structured_logs_and_log_level(models, start_server):
    s = start_server(models["lin"])
    s.json("POST", "/v2/models/lin/infer", {"inputs": []})
    s.stop()
    lines = [json.loads(l) for l in s.logs().splitlines() if l.startswith("{")]
    access = [l for l in lines if l["msg"] == "access" and l["path"] == "/v2/models/lin/infer"]
    assert access and access[0]["status"] == 400 and access[0]["model"] == "lin"
    assert "non-empty 'inputs'" in access[0]["error"]
    assert {"ts", "level", "remote", "method", "bytes_in", "bytes_out", "ms"} <= set(access[0])
    from conftest import free_port
    q = start_server(models["lin"], "--log-level", "warn", "--port", str(free_port()))
    q.request("GET", "/v2/health/ready")
    q.stop()
    assert '"msg":"access"' not in q.logs() and "listening" not in q.logs()
    t = start_server(models["lin"], "--log-format", "text", "--port", str(free_port()))
    t.request("GET", "/v2/models/lin")
    t.stop()
    assert " info  listening on 127.0.0.1:" in t.logs()
    assert 'access remote="127.0.0.1:' in t.logs() and ' status=200 ' in t.logs()


def test_command_line_errors(tmp_path):
    import subprocess
    from conftest import ONYX
    for args, text in [([], "give MODEL files"), (["--port", "x", "m.onnx"], "--port"),
                       (["--bogus"], "unknown option"),
                       ([str(tmp_path / "missing.onnx"), "--port", "0"], "failed to load")]:
        out = subprocess.run([ONYX, "serve"] + args, capture_output=True, timeout=30)
        assert out.returncode != 0 and text in out.stderr.decode(), (args, out.stderr)
    out = subprocess.run([ONYX, "serve", "--help"], capture_output=True, timeout=30)
    assert out.returncode == 0 and b"--model-repository" in out.stdout
    m = tmp_path / "a.onnx"
    make_lin(str(m))
    import socket
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        out = subprocess.run([ONYX, "serve", str(m), "--host", "127.0.0.1", "--port", str(port)],
                             capture_output=True, timeout=30)
    assert out.returncode == 1 and b"cannot listen" in out.stderr


def test_drain_delay_keeps_serving_while_not_ready(models, start_server):
    s = start_server(models["lin"], "--drain-delay", "1")
    s.signal(signal.SIGTERM)
    end = time.time() + 5
    while time.time() < end and s.request("GET", "/v2/health/ready")[0] == 200:
        time.sleep(0.01)
    assert s.request("GET", "/v2/health/ready")[0] == 503
    st, res = s.json("POST", "/v2/models/lin/infer", {"inputs": [
        {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]})
    assert st == 200, res
    assert s.proc.wait(10) == 0
    assert "reporting not ready" in s.logs() and "drained" in s.logs()


def test_asan_build_under_mixed_traffic(models, tmp_path):
    """With ONYX_ASAN (make test sets it), the sanitizer build serves a mixed
    workload (JSON, binary, images, errors, reload, SIGTERM) and exits 0
    without a report."""
    import base64
    from conftest import Server, image_bytes
    exe = os.environ.get("ONYX_ASAN")
    if not exe:
        import pytest
        pytest.skip("ONYX_ASAN not set")
    env = dict(os.environ, ONYX=exe)
    import conftest
    saved = conftest.ONYX
    conftest.ONYX = exe
    try:
        s = Server([models["lin"], models["cnn"], models["iris"]], tmp_path / "asan.log", env)
    finally:
        conftest.ONYX = saved
    try:
        lat, errors, _ = run_clients(s, "/v2/models/lin/infer", lin_bodies(3), 4, 25)
        assert errors == []
        img = base64.b64encode(image_bytes("JPEG")).decode()
        assert s.json("POST", "/v1/models/cnn:predict", {"instances": [{"b64": img}]})[0] == 200
        assert s.json("POST", "/v1/models/iris:predict", {"instances": [[1, 2, 3, 4]]})[0] == 200
        assert s.json("POST", "/v2/models/lin/infer", b"{bad")[0] == 400
        assert s.json("POST", "/v2/models/cnn/infer", {"inputs": [
            {"name": "image", "shape": [1], "datatype": "BYTES", "data": ["aGVsbG8="]}]})[0] == 400
        s.signal(signal.SIGHUP)
        time.sleep(0.3)
        assert s.request("GET", "/metrics")[0] == 200
    finally:
        rc = s.stop()
    assert rc == 0, s.logs()
    assert s.sanitizer_reports() == [], s.logs()
