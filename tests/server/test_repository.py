"""The model repository (Triton layout + config.pbtxt), version policies,
hot reload on SIGHUP and by polling, load failures that keep the old
version serving, and dynamic batching correctness."""

import json
import os
import shutil
import signal
import threading
import time

import numpy as np
import pytest

from conftest import image_bytes, make_cnn, make_lin, ort_run, preprocess

CONFIG = """
# A config in the shapes Triton users write: comments, lists, nested
# messages, repeated fields and the parameters map.
name: "lin"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [
  {
    name: "x"
    data_type: TYPE_FP32
    dims: [ 4 ]
  }
]
output { name: "y", data_type: TYPE_FP32, dims: [3] }
dynamic_batching {
  preferred_batch_size: [ 4, 8 ]
  max_queue_delay_microseconds: 20000
}
instance_group [ { count: 2, kind: KIND_CPU } ]
version_policy: { all { } }
parameters { key: "note" value: { string_value: "hello \\"world\\"" } }
"""


def put_version(repo, name, version, maker, **kw):
    d = os.path.join(repo, name, str(version))
    tmp = d + ".tmp"
    os.makedirs(tmp, exist_ok=True)
    maker(os.path.join(tmp, "model.onnx"), **kw)
    os.rename(tmp, d)  # appear whole, as a deploy tool would
    return d


def wait_for(pred, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def lin_infer(server, x, version=None):
    path = "/v2/models/lin" + (f"/versions/{version}" if version else "") + "/infer"
    st, res = server.json("POST", path, {"inputs": [
        {"name": "x", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}]})
    return st, res


@pytest.fixture
def repo(tmp_path):
    r = str(tmp_path / "repo")
    os.makedirs(r)
    return r


def test_config_and_versions(repo, start_server):
    put_version(repo, "lin", 1, make_lin, seed=1)
    put_version(repo, "lin", 2, make_lin, seed=2)
    with open(os.path.join(repo, "lin", "config.pbtxt"), "w") as f:
        f.write(CONFIG)
    s = start_server("--model-repository", repo)
    st, md = s.json("GET", "/v2/models/lin")
    assert st == 200 and md["versions"] == ["1", "2"]
    st, cfg = s.json("GET", "/v2/models/lin/config")
    assert cfg["max_batch_size"] == 8
    assert cfg["dynamic_batching"] == {"preferred_batch_size": [4, 8],
                                       "max_queue_delay_microseconds": 20000}
    assert cfg["instance_group"] == [{"count": 2, "kind": "KIND_CPU"}]
    assert cfg["version_policy"] == {"all": {}}
    assert cfg["parameters"] == {"note": {"string_value": 'hello "world"'}}
    assert cfg["input"] == [{"name": "x", "data_type": "TYPE_FP32", "dims": [4]}]
    x = np.random.RandomState(0).randn(2, 4).astype(np.float32)
    for v in (1, 2):
        st, res = lin_infer(s, x, v)
        assert st == 200 and res["model_version"] == str(v)
        want = ort_run(os.path.join(repo, "lin", str(v), "model.onnx"), {"x": x})[0]
        np.testing.assert_allclose(np.array(res["outputs"][0]["data"]).reshape(2, 3), want, rtol=1e-6)
    st, res = lin_infer(s, x)
    assert res["model_version"] == "2"  # unversioned requests go to the latest
    st, res = lin_infer(s, np.zeros((9, 4), np.float32))
    assert st == 400 and "batch-size must be <= 8" in res["error"]


@pytest.mark.parametrize("policy,want", [
    ("version_policy: { latest { num_versions: 2 } }", ["2", "3"]),
    ("version_policy { specific { versions: [1, 3] } }", ["1", "3"]),
    ("", ["3"]),
])
def test_version_policy(repo, start_server, policy, want):
    for v in (1, 2, 3):
        put_version(repo, "lin", v, make_lin, seed=v)
    with open(os.path.join(repo, "lin", "config.pbtxt"), "w") as f:
        f.write(policy + "\n")
    s = start_server("--model-repository", repo)
    assert s.json("GET", "/v2/models/lin")[1]["versions"] == want


@pytest.mark.parametrize("config,text", [
    ("max_batch_size: -3", "max_batch_size"),
    ('name: "other"', "does not match the directory name"),
    ("input [ { name: \"x\" data_type: TYPE_INT32 dims: [4] } ]", "data_type INT32"),
    ("input [ { name: \"nope\" data_type: TYPE_FP32 dims: [4] } ]", "not an input of the model"),
    ("max_batch_size: 4 input [ { name: \"x\" dims: [5] } ]", "dims of input 'x'"),
    ("dynamic_batching { }", "needs max_batch_size > 0"),
    ("instance_group [ { kind: KIND_GPU } ]", "onyx runs on the CPU"),
    ("max_batch_size: 2\nparameters { key: \"x\" ", "config.pbtxt: line"),
    ("max_batch_size: 1 }", "config.pbtxt: line 1"),
])
def test_bad_config_refuses_to_start(repo, tmp_path, config, text):
    import subprocess
    from conftest import ONYX
    put_version(repo, "lin", 1, make_lin)
    with open(os.path.join(repo, "lin", "config.pbtxt"), "w") as f:
        f.write(config)
    out = subprocess.run([ONYX, "serve", "--model-repository", repo, "--port", "0",
                          "--host", "127.0.0.1"], capture_output=True, timeout=30)
    assert out.returncode == 1
    assert text in out.stderr.decode(), out.stderr.decode()


def test_image_parameters_and_labels(repo, start_server, tmp_path):
    put_version(repo, "cnn", 1, make_cnn, size=24)
    with open(os.path.join(repo, "cnn", "labels.txt"), "w") as f:
        f.write("\n".join(f"class{i}" for i in range(10)) + "\n")
    with open(os.path.join(repo, "cnn", "config.pbtxt"), "w") as f:
        f.write('parameters [ { key: "labels" value { string_value: "labels.txt" } },\n'
                '  { key: "preprocessing" value { string_value: "unit" } },\n'
                '  { key: "filter" value { string_value: "bilinear" } } ]\n')
    s = start_server("--model-repository", repo)
    img = image_bytes("PNG", (50, 30), 9)
    import base64
    from PIL import Image
    import io
    im = Image.open(io.BytesIO(img)).convert("RGB").resize((24, 24), Image.BILINEAR)
    x = (np.asarray(im).astype(np.float32) / np.float32(255)).transpose(2, 0, 1)[None]
    want = ort_run(os.path.join(repo, "cnn", "1", "model.onnx"), {"image": x})[0]
    doc = {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                       "data": [base64.b64encode(img).decode()]}],
           "outputs": [{"name": "probs", "parameters": {"classification": 2}}]}
    st, res = s.json("POST", "/v2/models/cnn/infer", doc)
    assert st == 200, res
    top = res["outputs"][0]["data"]
    order = np.argsort(-want[0], kind="stable")[:2]
    assert [t.split(":")[1] for t in top] == [str(i) for i in order]
    assert [t.split(":")[2] for t in top] == [f"class{i}" for i in order]
    assert abs(float(top[0].split(":")[0]) - want[0][order[0]]) < 1e-5


@pytest.mark.parametrize("key,value,text", [
    ("mean", "0.5,0.5", "mean/std must be 1 or 3 numbers"),
    ("std", "1,2,3,4", "mean/std must be 1 or 3 numbers"),
    ("std", "0.2,x,0.2", "mean/std must be 1 or 3 numbers"),
    ("image_size", "24y", "must be HxW"),
    ("image_size", "24x24junk", "must be HxW"),
])
def test_bad_image_parameters_answer_400(repo, start_server, key, value, text):
    """Malformed preprocessing parameters in config.pbtxt: every image
    request gets a 400 naming the parameter; the server stays healthy."""
    put_version(repo, "cnn", 1, make_cnn, size=24)
    with open(os.path.join(repo, "cnn", "config.pbtxt"), "w") as f:
        f.write(f'parameters [ {{ key: "{key}" value {{ string_value: "{value}" }} }} ]\n')
    s = start_server("--model-repository", repo)
    import base64
    doc = {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES",
                       "data": [base64.b64encode(image_bytes("PNG", (30, 20), 3)).decode()]}]}
    st, res = s.json("POST", "/v2/models/cnn/infer", doc)
    assert st == 400 and text in res["error"], res
    assert s.json("GET", "/v2/health/ready")[0] == 200


def test_hot_reload_under_load(repo, start_server):
    put_version(repo, "lin", 1, make_lin, seed=1)
    s = start_server("--model-repository", repo, "--threads", "2")
    x = np.random.RandomState(1).randn(1, 4).astype(np.float32)
    stop = threading.Event()
    results, errors = [], []

    def client():
        c = s.conn()
        body = json.dumps({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                       "data": x.ravel().tolist()}]})
        n = 0
        while not stop.is_set() and n < 2000:
            n += 1
            c.request("POST", "/v2/models/lin/infer", body)
            r = c.getresponse()
            data = r.read()
            if r.status != 200:
                errors.append((r.status, data))
            else:
                results.append(json.loads(data)["model_version"])
        c.close()

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        assert wait_for(lambda: len(results) > 20)
        put_version(repo, "lin", 2, make_lin, seed=2)
        s.signal(signal.SIGHUP)
        assert wait_for(lambda: s.json("GET", "/v2/models/lin")[1]["versions"] == ["2"])
        n = len(results)
        assert wait_for(lambda: len(results) > n + 20)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert errors == []
    assert "1" in results and results[-1] == "2"
    assert "unloading model 'lin' version 1" in s.logs()


def test_failed_reload_keeps_old_version(repo, start_server):
    put_version(repo, "lin", 1, make_lin, seed=1)
    s = start_server("--model-repository", repo, "--poll-interval", "1")
    x = np.ones((1, 4), np.float32)
    st, before = lin_infer(s, x)
    # Replace the model file with garbage: the reload fails, v1 keeps serving.
    path = os.path.join(repo, "lin", "1", "model.onnx")
    with open(path + ".new", "wb") as f:
        f.write(b"this is not an onnx model")
    os.replace(path + ".new", path)
    assert wait_for(lambda: "error" in s.json("GET", "/v2/models/lin")[1])
    st, md = s.json("GET", "/v2/models/lin")
    assert md["versions"] == ["1"] and md["state"] == "READY"
    assert "version 1" in md["error"]
    st, after = lin_infer(s, x)
    assert st == 200 and after["outputs"] == before["outputs"]
    assert s.metrics()['onyx_model_load_error{model="lin"}'] == 1
    assert "keeps serving" in s.logs()
    # A good file again: the error clears.
    make_lin(path + ".new", seed=5)
    os.replace(path + ".new", path)
    assert wait_for(lambda: "error" not in s.json("GET", "/v2/models/lin")[1])
    # A model added later that cannot load is reported but leaves the server ready.
    os.makedirs(os.path.join(repo, "broken", "1"))
    with open(os.path.join(repo, "broken", "1", "model.onnx"), "wb") as f:
        f.write(b"garbage")
    assert wait_for(lambda: s.json("GET", "/v2/models/broken")[0] == 200)
    st, md = s.json("GET", "/v2/models/broken")
    assert md["state"] == "UNAVAILABLE" and md["versions"] == [] and "error" in md
    assert s.request("GET", "/v2/health/ready")[0] == 200
    assert s.request("GET", "/v2/models/broken/ready")[0] == 503
    st, res = s.json("POST", "/v2/models/broken/infer", {"inputs": []})
    assert st == 503 and "not ready" in res["error"]
    shutil.rmtree(os.path.join(repo, "broken"))
    # New and removed models are picked up by polling too.
    put_version(repo, "lin2", 1, make_lin, seed=3)
    assert wait_for(lambda: s.json("GET", "/v2/models/lin2")[0] == 200)
    shutil.rmtree(os.path.join(repo, "lin2"))
    assert wait_for(lambda: s.json("GET", "/v2/models/lin2")[0] == 404)


def test_dynamic_batching_splits_correctly(repo, start_server):
    put_version(repo, "lin", 1, make_lin, seed=4)
    with open(os.path.join(repo, "lin", "config.pbtxt"), "w") as f:
        f.write("max_batch_size: 16\ndynamic_batching { max_queue_delay_microseconds: 50000 }\n")
    s = start_server("--model-repository", repo, "--threads", "1")
    model = os.path.join(repo, "lin", "1", "model.onnx")
    rs = np.random.RandomState(2)
    xs = [rs.randn(1 + i % 3, 4).astype(np.float32) for i in range(12)]
    out = [None] * len(xs)

    def one(i):
        out[i] = lin_infer(s, xs[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for x, (st, res) in zip(xs, out):
        assert st == 200, res
        got = np.array(res["outputs"][0]["data"], np.float32).reshape(len(x), 3)
        np.testing.assert_allclose(got, ort_run(model, {"x": x})[0], rtol=1e-6, atol=1e-7)
    m = s.metrics()
    key = '{model="lin",version="1"}'
    assert m["onyx_inference_request_success_total" + key] == len(xs)
    assert m["onyx_inference_count_total" + key] == sum(len(x) for x in xs)
    # 12 concurrent requests within a 50 ms window on one worker: merged.
    assert m["onyx_inference_exec_count_total" + key] < len(xs)


def test_model_files_with_batching_flag(models, start_server):
    s = start_server(models["lin"], "--max-batch-size", "4", "--batch-delay-us", "100")
    st, cfg = s.json("GET", "/v2/models/lin/config")
    assert cfg["max_batch_size"] == 4 and "dynamic_batching" in cfg
    st, res = lin_infer(s, np.ones((5, 4), np.float32))
    assert st == 400


def test_image_model_in_repository_matches_pillow(repo, start_server):
    put_version(repo, "cnn", 1, make_cnn)
    s = start_server("--model-repository", repo)
    import base64
    img = image_bytes("JPEG", (33, 47), 11)
    st, res = s.json("POST", "/v1/models/cnn:predict",
                     {"instances": [{"b64": base64.b64encode(img).decode()}]})
    assert st == 200, res
    want = ort_run(os.path.join(repo, "cnn", "1", "model.onnx"), {"image": preprocess(img)})[0]
    np.testing.assert_allclose(np.array(res["predictions"], np.float32), want, rtol=1e-4, atol=1e-5)
