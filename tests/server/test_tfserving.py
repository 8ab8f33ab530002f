"""TF Serving REST (/v1) against `onyx serve`: row and columnar formats, b64
images, status and metadata, errors; results compared with onnxruntime."""

import base64

import numpy as np

from conftest import image_bytes, ort_run, preprocess


def test_status_and_metadata(files_server):
    st, doc = files_server.json("GET", "/v1/models/lin")
    assert st == 200
    assert doc == {"model_version_status": [{"version": "1", "state": "AVAILABLE",
                                             "status": {"error_code": "OK", "error_message": ""}}]}
    st, doc = files_server.json("GET", "/v1/models/lin/versions/1")
    assert st == 200 and doc["model_version_status"][0]["version"] == "1"
    st, doc = files_server.json("GET", "/v1/models/lin/metadata")
    assert st == 200
    sig = doc["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["inputs"]["x"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in sig["inputs"]["x"]["tensor_shape"]["dim"]] == ["-1", "4"]
    st, doc = files_server.json("GET", "/v1/models/nope")
    assert st == 404 and "nope" in doc["error"]
    st, doc = files_server.json("GET", "/v1/models/lin/versions/9")
    assert st == 404


def test_predict_row_and_columnar(files_server, models):
    x = np.random.RandomState(7).randn(3, 4).astype(np.float32)
    want = ort_run(models["lin"], {"x": x})[0]
    st, doc = files_server.json("POST", "/v1/models/lin:predict", {"instances": x.tolist()})
    assert st == 200, doc
    np.testing.assert_allclose(np.array(doc["predictions"], np.float32), want, rtol=1e-6, atol=1e-7)
    st, doc = files_server.json("POST", "/v1/models/lin/versions/1:predict",
                                {"signature_name": "serving_default", "inputs": {"x": x.tolist()}})
    assert st == 200, doc
    np.testing.assert_allclose(np.array(doc["outputs"], np.float32), want, rtol=1e-6, atol=1e-7)
    st, doc = files_server.json("POST", "/v1/models/lin:predict",
                                {"instances": [{"x": r} for r in x.tolist()]})
    assert st == 200, doc
    np.testing.assert_allclose(np.array(doc["predictions"], np.float32), want, rtol=1e-6, atol=1e-7)


def test_predict_sklearn_zipmap(files_server, models):
    from sklearn.datasets import load_iris
    x = load_iris().data[::40].astype(np.float32)
    label, prob = ort_run(models["iris"], {"X": x})
    st, doc = files_server.json("POST", "/v1/models/iris:predict", {"instances": x.tolist()})
    assert st == 200, doc
    preds = doc["predictions"]
    assert [p["output_label"] for p in preds] == label.tolist()
    for p, w in zip(preds, prob):
        assert {int(k): v for k, v in p["output_probability"].items()} == \
            {k: float(np.float32(v)) for k, v in w.items()} or \
            all(abs(p["output_probability"][str(k)] - v) < 1e-6 for k, v in w.items())


def test_predict_b64_images(files_server, models):
    imgs = [image_bytes("PNG", (40, 36), 3), image_bytes("JPEG", (64, 64), 4)]
    want = ort_run(models["cnn"], {"image": np.concatenate([preprocess(b) for b in imgs])})[0]
    inst = [{"b64": base64.b64encode(b).decode()} for b in imgs]
    st, doc = files_server.json("POST", "/v1/models/cnn:predict", {"instances": inst})
    assert st == 200, doc
    np.testing.assert_allclose(np.array(doc["predictions"], np.float32), want, rtol=1e-4, atol=1e-5)


def test_predict_errors(files_server):
    cases = [
        ({"instances": [[1, 2, 3]]}, 400, "shape"),
        ({"nothing": 1}, 400, "instances"),
        ({"instances": [[1, 2, 3, 4]], "inputs": [[1, 2, 3, 4]]}, 400, "not both"),
        ({"instances": [["a", "b", "c", "d"]]}, 400, "must be a number"),
        ({"instances": [[1, 2, 3, 4], [1, 2]]}, 400, "different shape"),
        ({"instances": [{"b64": "!!!"}]}, 400, "numbers"),
        ({"instances": [{"y": [1, 2, 3, 4]}]}, 400, "no input"),
    ]
    for body, code, text in cases:
        st, doc = files_server.json("POST", "/v1/models/lin:predict", body)
        assert st == code, (body, doc)
        assert text in doc["error"], (body, doc)
    st, doc = files_server.json("POST", "/v1/models/lin:predict", b"{not json")
    assert st == 400 and "malformed JSON" in doc["error"]
    st, doc = files_server.json("POST", "/v1/models/nope:predict", {"instances": [[1, 2, 3, 4]]})
    assert st == 404
    st, doc = files_server.json("POST", "/v1/models/lin:classify", {"examples": []})
    assert st == 501
    st, doc = files_server.json("POST", "/v1/models/cnn:predict",
                                {"instances": [{"b64": base64.b64encode(b"not an image").decode()}]})
    assert st == 400 and "cannot be decoded" in doc["error"]
