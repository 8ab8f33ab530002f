"""KServe v2 / Open Inference Protocol against `onyx serve`, through the real
tritonclient.http (JSON and binary tensors) and raw HTTP; results compared
with onnxruntime and scikit-learn."""

import base64
import json
import struct

import numpy as np
import pytest

# The real Triton client is the oracle here; tests/requirements.txt pins it.
httpclient = pytest.importorskip("tritonclient.http")
InferenceServerException = pytest.importorskip("tritonclient.utils").InferenceServerException

from conftest import DTYPES, image_bytes, ort_run, preprocess


@pytest.fixture(scope="module")
def client(files_server):
    c = httpclient.InferenceServerClient(url=files_server.url, connection_timeout=30,
                                         network_timeout=30)
    yield c
    c.close()


def test_health_and_server_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    md = client.get_server_metadata()
    assert md["name"] == "onyx"
    assert "binary_tensor_data" in md["extensions"]
    assert md["version"]


def test_model_metadata(client):
    md = client.get_model_metadata("cnn")
    assert md["name"] == "cnn" and md["versions"] == ["1"] and md["platform"] == "onnx_onnxv1"
    assert md["inputs"] == [{"name": "image", "datatype": "FP32", "shape": [-1, 3, 32, 32]}]
    assert md["outputs"] == [{"name": "probs", "datatype": "FP32", "shape": [-1, 10]}]
    assert client.get_model_metadata("cnn", "1")["versions"] == ["1"]
    assert client.is_model_ready("cnn") and client.is_model_ready("cnn", "1")
    assert not client.is_model_ready("cnn", "2")
    assert not client.is_model_ready("nope")
    types = client.get_model_metadata("types")
    got = {i["name"]: i["datatype"] for i in types["inputs"]}
    assert got == {f"in_{dt}": dt for dt in DTYPES}
    cfg = client.get_model_config("lin")
    assert cfg["name"] == "lin" and cfg["input"][0]["data_type"] == "TYPE_FP32"


@pytest.mark.parametrize("binary", [False, True])
def test_infer_cnn_matches_onnxruntime(client, models, binary):
    x = np.random.RandomState(3).randn(2, 3, 32, 32).astype(np.float32)
    inp = httpclient.InferInput("image", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=binary)
    out = httpclient.InferRequestedOutput("probs", binary_data=binary)
    res = client.infer("cnn", [inp], outputs=[out], request_id="req-7")
    got = res.as_numpy("probs")
    want = ort_run(models["cnn"], {"image": x})[0]
    assert got.shape == (2, 10) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert res.get_response()["id"] == "req-7"
    assert res.get_response()["model_version"] == "1"


@pytest.mark.parametrize("binary", [False, True])
def test_all_datatypes_round_trip(client, binary):
    rs = np.random.RandomState(4)
    inputs, want = [], {}
    for dt, (_, npt) in DTYPES.items():
        if dt == "BYTES":
            a = np.array([[b"abc", "ünï".encode()], [b"", b"x y"]], dtype=np.object_)
        elif dt == "BOOL":
            a = rs.rand(2, 2) > 0.5
        elif np.issubdtype(npt, np.integer):
            info = np.iinfo(npt)
            # JSON integers stop at 2^63-1 (jansson): larger UINT64 go binary.
            hi = info.max if binary or dt != "UINT64" else np.iinfo(np.int64).max
            a = np.array([[info.min, hi], [0, 7]], dtype=npt)
        else:
            a = rs.randn(2, 2).astype(npt)
        i = httpclient.InferInput(f"in_{dt}", [2, 2], dt)
        i.set_data_from_numpy(a, binary_data=binary)
        inputs.append(i)
        want[f"out_{dt}"] = a
    outs = [httpclient.InferRequestedOutput(k, binary_data=binary) for k in want]
    res = client.infer("types", inputs, outputs=outs)
    for k, a in want.items():
        got = res.as_numpy(k)
        if a.dtype == np.object_:
            # JSON answers str elements, binary answers bytes.
            norm = [v.encode() if isinstance(v, str) else bytes(v) for v in got.ravel()]
            assert norm == list(a.ravel())
        else:
            assert got.dtype == a.dtype, k
            np.testing.assert_array_equal(got, a, err_msg=k)


def test_binary_data_output_request_parameter(files_server):
    """The request-level binary_data_output parameter answers every output in binary."""
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    doc = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": x.ravel().tolist()}],
           "parameters": {"binary_data_output": True}}
    st, h, body = files_server.request("POST", "/v2/models/lin/infer", json.dumps(doc))
    assert st == 200
    n = int(h["Inference-Header-Content-Length"])
    head = json.loads(body[:n])
    out = head["outputs"][0]
    assert out["parameters"]["binary_data_size"] == 24 and "data" not in out
    got = np.frombuffer(body[n:], dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(got, ort_run(files_server_models(files_server)["lin"], {"x": x})[0],
                               rtol=1e-6, atol=1e-7)


def files_server_models(server):
    # The module-scoped server serves the session's model files; find them in its command line.
    paths = [a for a in server.proc.args if a.endswith(".onnx")]
    return {p.rsplit("/", 1)[1][:-5]: p for p in paths}


def test_sklearn_tensor_outputs_match_sklearn(client, models):
    from sklearn.datasets import load_iris
    x = load_iris().data[::15].astype(np.float32)
    inp = httpclient.InferInput("X", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=True)
    res = client.infer("iris_tensor", [inp])
    label, prob = ort_run(models["iris_tensor"], {"X": x})
    np.testing.assert_array_equal(res.as_numpy("label"), label)
    np.testing.assert_allclose(res.as_numpy("probabilities"), prob, rtol=1e-5, atol=1e-6)


def test_sklearn_zipmap_output_is_json_maps(files_server, models, client):
    from sklearn.datasets import load_iris
    x = load_iris().data[::50].astype(np.float32)
    doc = {"inputs": [{"name": "X", "shape": list(x.shape), "datatype": "FP32",
                       "data": x.tolist()}]}
    st, res = files_server.json("POST", "/v2/models/iris/infer", doc)
    assert st == 200, res
    outs = {o["name"]: o for o in res["outputs"]}
    label, prob = ort_run(models["iris"], {"X": x})
    assert outs["output_label"]["data"] == label.tolist()
    pm = outs["output_probability"]
    assert pm["datatype"] == "MAP" and pm["shape"] == [len(x)]
    for got, want in zip(pm["data"], prob):
        assert set(got) == {str(k) for k in want}
        for k, v in want.items():
            assert abs(got[str(k)] - v) < 1e-5
    md = client.get_model_metadata("iris")
    o = {i["name"]: i for i in md["outputs"]}["output_probability"]
    assert o["datatype"] == "MAP" and o["onyx_type"] == "sequence(map(int64,float))"
    # tritonclient reads the MAP output from JSON even when the rest is binary.
    inp = httpclient.InferInput("X", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=True)
    r = client.infer("iris", [inp], outputs=[
        httpclient.InferRequestedOutput("output_label", binary_data=True),
        httpclient.InferRequestedOutput("output_probability", binary_data=True)])
    np.testing.assert_array_equal(r.as_numpy("output_label"), label)
    maps = r.get_output("output_probability")["data"]
    assert len(maps) == len(x) and abs(maps[0]["0"] - prob[0][0]) < 1e-5


def test_requested_outputs_subset_and_order(files_server):
    doc = {"inputs": [{"name": f"in_{dt}", "shape": [1, 2], "datatype": dt,
                       "data": [1, 2] if dt not in ("BOOL", "BYTES") else
                       ([True, False] if dt == "BOOL" else ["a", "b"])} for dt in DTYPES],
           "outputs": [{"name": "out_INT8"}, {"name": "out_BOOL"}]}
    st, res = files_server.json("POST", "/v2/models/types/infer", doc)
    assert st == 200, res
    assert [o["name"] for o in res["outputs"]] == ["out_INT8", "out_BOOL"]
    assert res["outputs"][1]["data"] == [True, False]


def test_nested_json_data(files_server, models):
    x = np.random.RandomState(5).randn(2, 4).astype(np.float32)
    doc = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32", "data": x.tolist()}]}
    st, res = files_server.json("POST", "/v2/models/lin/infer", doc)
    assert st == 200
    got = np.array(res["outputs"][0]["data"], np.float32).reshape(2, 3)
    np.testing.assert_allclose(got, ort_run(models["lin"], {"x": x})[0], rtol=1e-6, atol=1e-7)


def test_classification_extension(client, models):
    x = np.random.RandomState(6).randn(2, 3, 32, 32).astype(np.float32)
    inp = httpclient.InferInput("image", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    out = httpclient.InferRequestedOutput("probs", class_count=3)
    res = client.infer("cnn", [inp], outputs=[out])
    got = res.as_numpy("probs")
    want = ort_run(models["cnn"], {"image": x})[0]
    assert got.shape == (2, 3)
    for r in range(2):
        idx = [int(s.decode().split(":")[1]) for s in got[r]]
        assert idx == list(np.argsort(-want[r], kind="stable")[:3])


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("binary", [False, True])
def test_encoded_images_to_image_input(client, files_server, models, fmt, binary):
    imgs = [image_bytes(fmt, (48, 40), seed=1), image_bytes(fmt, (20, 30), seed=2)]
    want = ort_run(models["cnn"], {"image": np.concatenate([preprocess(b) for b in imgs])})[0]
    if binary:
        inp = httpclient.InferInput("image", [2], "BYTES")
        inp.set_data_from_numpy(np.array(imgs, dtype=np.object_), binary_data=True)
        got = client.infer("cnn", [inp]).as_numpy("probs")
    else:
        # JSON cannot carry raw bytes: images are base64 strings there.
        doc = {"inputs": [{"name": "image", "shape": [2], "datatype": "BYTES",
                           "data": [base64.b64encode(b).decode() for b in imgs]}]}
        st, res = files_server.json("POST", "/v2/models/cnn/infer", doc)
        assert st == 200, res
        got = np.array(res["outputs"][0]["data"], np.float32).reshape(2, 10)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_tritonclient_errors(client):
    x = np.zeros((1, 4), np.float32)
    inp = httpclient.InferInput("x", [1, 4], "FP32")
    inp.set_data_from_numpy(x)
    with pytest.raises(InferenceServerException, match="unknown model"):
        client.infer("nope", [inp])
    bad = httpclient.InferInput("x", [1, 4], "FP64")
    bad.set_data_from_numpy(x.astype(np.float64))
    with pytest.raises(InferenceServerException, match="data-type is 'FP64'"):
        client.infer("lin", [bad])


def test_binary_strings_format(files_server):
    """BYTES elements in binary are 4-byte little-endian lengths + bytes."""
    vals = [b"hello", b"", b"\x00\xffz", b"w"]
    blob = b"".join(struct.pack("<I", len(v)) + v for v in vals)
    head = {"inputs": [{"name": "in_BYTES", "shape": [2, 2], "datatype": "BYTES",
                        "parameters": {"binary_data_size": len(blob)}}]}
    for dt in DTYPES:
        if dt != "BYTES":
            head["inputs"].append({"name": f"in_{dt}", "shape": [0, 2], "datatype": dt, "data": []})
    head["outputs"] = [{"name": "out_BYTES", "parameters": {"binary_data": True}}]
    hj = json.dumps(head).encode()
    st, h, body = files_server.request("POST", "/v2/models/types/infer", hj + blob,
                                       {"Inference-Header-Content-Length": str(len(hj))})
    assert st == 200, body
    n = int(h["Inference-Header-Content-Length"])
    raw = body[n:]
    out, at = [], 0
    while at < len(raw):
        (ln,) = struct.unpack_from("<I", raw, at)
        out.append(raw[at + 4:at + 4 + ln])
        at += 4 + ln
    # Strings are NUL-terminated inside onyx: bytes after a NUL are not kept.
    assert out == [b"hello", b"", b"", b"w"]


def test_mobilenet_v2_images_with_tritonclient(start_server, tmp_path):
    """torchvision's MobileNetV2 (tools/build_models.py) in a repository with
    labels: JPEG bytes through tritonclient (binary), logits and top-5 equal
    to onnxruntime on the Pillow-preprocessed image."""
    import os
    import sys
    from conftest import ROOT
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import build_models
    src = build_models.model_path("mobilenet_v2")
    repo = tmp_path / "repo"
    os.makedirs(repo / "mobilenet" / "1")
    os.symlink(src, repo / "mobilenet" / "1" / "model.onnx")
    (repo / "mobilenet" / "labels.txt").write_text("".join(f"class {i}\n" for i in range(1000)))
    (repo / "mobilenet" / "config.pbtxt").write_text(
        'max_batch_size: 4\nparameters { key: "labels" value { string_value: "labels.txt" } }\n')
    s = start_server("--model-repository", str(repo))
    c = httpclient.InferenceServerClient(url=s.url, network_timeout=60)
    imgs = [image_bytes("JPEG", (300, 200), 21), image_bytes("PNG", (150, 180), 22)]
    inp = httpclient.InferInput("input", [2], "BYTES")
    inp.set_data_from_numpy(np.array(imgs, dtype=np.object_), binary_data=True)
    res = c.infer("mobilenet", [inp], outputs=[
        httpclient.InferRequestedOutput("logits", binary_data=True)])
    got = res.as_numpy("logits")
    x = np.concatenate([preprocess(b, 224) for b in imgs])
    want = ort_run(src, {"input": x})[0]
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)
    res = c.infer("mobilenet", [inp], outputs=[
        httpclient.InferRequestedOutput("logits", class_count=5)])
    top = res.as_numpy("logits")
    for r in range(2):
        assert [int(t.decode().split(":")[1]) for t in top[r]] == \
            list(np.argsort(-want[r], kind="stable")[:5])
        assert top[r][0].decode().endswith(f":class {np.argmax(want[r])}")
    c.close()


def test_statistics_extension(client):
    x = np.zeros((3, 4), np.float32)
    inp = httpclient.InferInput("x", [3, 4], "FP32")
    inp.set_data_from_numpy(x)
    before = client.get_inference_statistics("lin")["model_stats"][0]
    client.infer("lin", [inp])
    st = client.get_inference_statistics("lin", "1")["model_stats"]
    assert len(st) == 1 and st[0]["name"] == "lin" and st[0]["version"] == "1"
    s = st[0]
    # Without max_batch_size a request is one inference, whatever its shape (as Triton).
    assert s["inference_count"] == before["inference_count"] + 1
    assert s["execution_count"] == before["execution_count"] + 1
    assert s["inference_stats"]["success"]["count"] == before["inference_stats"]["success"]["count"] + 1
    assert s["inference_stats"]["compute_infer"]["ns"] > 0 and s["last_inference"] > 0
    names = {m["name"] for m in client.get_inference_statistics()["model_stats"]}
    assert {"lin", "cnn", "types", "iris"} <= names
    with pytest.raises(InferenceServerException, match="unknown model"):
        client.get_inference_statistics("nope")
