"""`onyx predict` end to end: a torchvision-style NCHW classifier (MobileNetV2
from tools/build_models.py) and a Keras-style NHWC one ([N,224,224,3] input,
softmax output) give the same top-5 as Pillow preprocessing + onnxruntime,
for single images and batches; fixed batch sizes, labels, --all, the JSON
document's fields; and every failure is one error line with a non-zero exit."""
import json
import struct
import sys
import zlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image, ImageOps

from conftest import ROOT, check_error, check_ok, ort_run, run_onyx, save_model

sys.path.insert(0, str(ROOT / "tools"))
import build_models  # noqa: E402  (tools/ is not a package)

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


# ----------------------------------------------------------------------------
# Images and models

@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """scikit-image's photographs: three color (JPEG and PNG) and one gray,
    plus a JPEG whose EXIF orientation is 6 (stored sideways)."""
    from skimage import data
    d = tmp_path_factory.mktemp("img")
    out = {}
    for name, ext in (("astronaut", "jpg"), ("chelsea", "png"), ("coffee", "jpg"),
                      ("camera", "png")):
        p = d / f"{name}.{ext}"
        Image.fromarray(getattr(data, name)()).save(p, **({"quality": 92} if ext == "jpg" else {}))
        out[name] = p
    exif = Image.Exif()
    exif[0x0112] = 6
    p = d / "rotated.jpg"
    Image.fromarray(data.chelsea()).save(p, quality=92, exif=exif.tobytes())
    out["rotated"] = p
    return out


@pytest.fixture(scope="module")
def mobilenet():
    """torchvision's MobileNetV2 layout: input [batch,3,224,224], logits [batch,1000]."""
    return build_models.model_path("mobilenet_v2")


def keras_style(src, dst, batch="batch"):
    """The same network as a Keras export looks: NHWC input [N,224,224,3]
    transposed in the graph, and a Softmax at the end."""
    m = onnx.load(str(src))
    g = m.graph
    old_in, old_out = g.input[0].name, g.output[0].name
    g.node.insert(0, helper.make_node("Transpose", ["image"], [old_in], perm=[0, 3, 1, 2]))
    g.node.append(helper.make_node("Softmax", [old_out], ["probs"], axis=-1))
    del g.input[:]
    g.input.append(helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 224, 224, 3]))
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("probs", TensorProto.FLOAT, [batch, 1000]))
    return save_model(m, dst, check=False)


def with_batch(src, dst, batch):
    """The model with its batch dimension fixed."""
    m = onnx.load(str(src))
    for vi in (m.graph.input[0], m.graph.output[0]):
        d = vi.type.tensor_type.shape.dim[0]
        d.Clear()
        d.dim_value = batch
    return save_model(m, dst, check=False)


def small_classifier(path, shape, dtype=TensorProto.FLOAT, classes=7, layout="nchw",
                     softmax=False, metadata=None):
    """A few convolutions, global pooling and a Gemm, random weights."""
    rng = np.random.default_rng(5)
    ch = shape[1] if layout == "nchw" else shape[3]
    ch = ch if isinstance(ch, int) else 3  # a symbolic channel dim takes color
    nodes, x = [], "x"
    if layout == "nhwc":
        nodes.append(helper.make_node("Transpose", [x], ["xt"], perm=[0, 3, 1, 2]))
        x = "xt"
    if dtype != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [x], ["xf"], to=TensorProto.FLOAT))
        x = "xf"
    inits = [numpy_helper.from_array(rng.standard_normal((8, ch, 3, 3)).astype(np.float32) * 0.3,
                                     "w1"),
             numpy_helper.from_array(rng.standard_normal((8, 8, 3, 3)).astype(np.float32) * 0.2,
                                     "w2"),
             numpy_helper.from_array(rng.standard_normal((classes, 8)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.standard_normal(classes).astype(np.float32), "B")]
    nodes += [helper.make_node("Conv", [x, "w1"], ["c1"], strides=[2, 2], pads=[1, 1, 1, 1]),
              helper.make_node("Relu", ["c1"], ["r1"]),
              helper.make_node("Conv", ["r1", "w2"], ["c2"], strides=[2, 2], pads=[1, 1, 1, 1]),
              helper.make_node("Relu", ["c2"], ["r2"]),
              helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
              helper.make_node("Flatten", ["g"], ["f"]),
              helper.make_node("Gemm", ["f", "W", "B"], ["logits"], transB=1)]
    out = "logits"
    if softmax:
        nodes.append(helper.make_node("Softmax", ["logits"], ["probs"], axis=-1))
        out = "probs"
    graph = helper.make_graph(nodes, "small", [helper.make_tensor_value_info("x", dtype, shape)],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT,
                                                             [shape[0], classes])],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    for k, v in (metadata or {}).items():
        model.metadata_props.add(key=k, value=v)
    return save_model(model, path)


# ----------------------------------------------------------------------------
# Reference: Pillow preprocessing + onnxruntime

def pil_image(path, gray=False):
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("L" if gray else "RGB")


def torchvision_eval(path):
    """Resize(256, bilinear) + CenterCrop(224) + ToTensor + Normalize(ImageNet)."""
    im = pil_image(path)
    w, h = im.size
    if w <= h:
        im = im.resize((256, int(256 * h / w)), Image.Resampling.BILINEAR)
    else:
        im = im.resize((int(256 * w / h), 256), Image.Resampling.BILINEAR)
    w, h = im.size
    top, left = int(round((h - 224) / 2.0)), int(round((w - 224) / 2.0))
    im = im.crop((left, top, left + 224, top + 224))
    x = np.asarray(im, np.float32) / np.float32(255)
    return ((x - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)


def keras_tf(path, size=(224, 224), resample=Image.Resampling.BICUBIC):
    """Straight resize, then keras' mode="tf": x / 127.5 - 1, NHWC."""
    x = np.asarray(pil_image(path).resize(size, resample), np.float32)
    x /= 127.5
    x -= 1.0
    return x


def softmax_if_needed(y):
    y = y.astype(np.float64)
    if np.all((y >= 0) & (y <= 1)) and abs(y.sum() - 1) <= 1e-3:
        return y, False
    e = np.exp(y - y.max())
    return e / e.sum(), True


def check_prediction(pred, ref_scores, k=5):
    """pred: one entry of the JSON "predictions"; ref_scores: the reference's
    probabilities. The top-k indices match, scores within 1e-4 (where two
    reference scores are closer than that, either order is accepted)."""
    order = np.argsort(-ref_scores, kind="stable")[:k]
    got = [t["index"] for t in pred["top"]]
    assert len(got) == k
    for r, (gi, ri) in enumerate(zip(got, order)):
        assert abs(pred["top"][r]["score"] - ref_scores[gi]) <= 1e-4, (r, gi, pred["top"][r])
        if gi != ri:
            assert abs(ref_scores[gi] - ref_scores[ri]) <= 1e-4, f"rank {r}: {got} vs {order}"


def predict_json(*args, binary=None):
    r = check_ok(run_onyx("predict", *args, "--json", binary=binary))
    return json.loads(r.stdout)


# ----------------------------------------------------------------------------
# End to end against onnxruntime

def test_torchvision_nchw_single_and_batch(images, mobilenet, tmp_path):
    files = [images[n] for n in ("astronaut", "chelsea", "coffee", "camera", "rotated")]
    x = np.stack([torchvision_eval(f) for f in files])
    (ref,) = ort_run(mobilenet, {"input": x}).values()
    batch = predict_json(mobilenet, *files, "--filter", "bilinear", "--center-crop", "0.875")
    assert len(batch["predictions"]) == len(files)
    for i, f in enumerate(files):
        probs, applied = softmax_if_needed(ref[i])
        pred = batch["predictions"][i]
        assert pred["image"] == str(f) and pred["softmax_applied"] is applied is True
        check_prediction(pred, probs)
        single = predict_json(mobilenet, f, "--filter", "bilinear", "--center-crop", "0.875")
        check_prediction(single["predictions"][0], probs)


def test_keras_nhwc_single_and_batch(images, mobilenet, tmp_path):
    model = keras_style(mobilenet, tmp_path / "keras.onnx")
    files = [images[n] for n in ("coffee", "astronaut", "camera", "chelsea")]
    x = np.stack([keras_tf(f) for f in files])
    (ref,) = ort_run(model, {"image": x}).values()
    out = predict_json(model, *files, "--preprocess", "tf")
    assert out["input"] == {"name": "image", "dtype": "float", "layout": "nhwc", "channels": 3,
                            "height": 224, "width": 224}
    assert out["preprocess"]["preset"] == "tf" and out["preprocess"]["filter"] == "bicubic"
    for i, f in enumerate(files):
        probs, applied = softmax_if_needed(ref[i])
        assert applied is False and out["predictions"][i]["softmax_applied"] is False
        check_prediction(out["predictions"][i], probs)
    single = predict_json(model, files[0], "--preprocess", "tf")
    check_prediction(single["predictions"][0], softmax_if_needed(ref[0])[0])


def test_keras_caffe_preset(images, tmp_path):
    """Keras ResNet50-style input: BGR with the caffe means subtracted."""
    model = small_classifier(tmp_path / "m.onnx", ["N", 96, 80, 3], layout="nhwc")
    f = images["chelsea"]
    x = np.asarray(pil_image(f).resize((80, 96), Image.Resampling.BILINEAR), np.float32)
    x = x[..., ::-1].copy()
    x[..., 0] -= 103.939
    x[..., 1] -= 116.779
    x[..., 2] -= 123.68
    (ref,) = ort_run(model, {"x": x[None]}).values()
    out = predict_json(model, f, "--preprocess", "caffe", "--filter", "bilinear")
    check_prediction(out["predictions"][0], softmax_if_needed(ref[0])[0])


@pytest.mark.parametrize("batch", [1, 2])
def test_fixed_batch(images, tmp_path, batch):
    """Batch fixed at 1: one run per image; at 2: runs of two, the last one
    padded. Results are the same as with a dynamic batch."""
    dyn = small_classifier(tmp_path / "dyn.onnx", ["N", 3, 64, 64])
    fixed = small_classifier(tmp_path / "fixed.onnx", [batch, 3, 64, 64])
    files = [images[n] for n in ("astronaut", "chelsea", "coffee")]
    a = predict_json(dyn, *files, "--all", "--preprocess", "unit")
    b = predict_json(fixed, *files, "--all", "--preprocess", "unit")
    assert [p["image"] for p in b["predictions"]] == list(map(str, files))
    for pa, pb in zip(a["predictions"], b["predictions"]):
        np.testing.assert_allclose([pb["scores"][str(c)] for c in range(7)],
                                   [pa["scores"][str(c)] for c in range(7)], atol=1e-6)
    x = np.stack([np.asarray(pil_image(f).resize((64, 64), Image.Resampling.BICUBIC),
                             np.float32).transpose(2, 0, 1) / np.float32(255) for f in files])
    (ref,) = ort_run(dyn, {"x": x}).values()
    for i in range(3):
        check_prediction(b["predictions"][i], softmax_if_needed(ref[i])[0])


def test_more_images_than_one_run(tmp_path):
    """A dynamic batch runs at most 32 images at a time: 35 images take two
    runs (32 + 3), and every image keeps its own result."""
    m = small_classifier(tmp_path / "m.onnx", ["N", 3, 24, 24])
    rng = np.random.default_rng(9)
    files, x = [], []
    for i in range(35):
        a = rng.integers(0, 256, (rng.integers(10, 60), rng.integers(10, 60), 3), dtype=np.uint8)
        np.save(tmp_path / f"i{i}.npy", a)
        files.append(tmp_path / f"i{i}.npy")
        x.append(np.asarray(Image.fromarray(a).resize((24, 24), Image.Resampling.BICUBIC),
                            np.float32).transpose(2, 0, 1) / np.float32(127.5) - 1)
    (ref,) = ort_run(m, {"x": np.stack(x)}).values()
    out = predict_json(m, *files, "--preprocess", "tf", "--top", "3")
    assert len(out["predictions"]) == 35
    for i, pred in enumerate(out["predictions"]):
        assert pred["image"] == str(files[i])
        check_prediction(pred, softmax_if_needed(ref[i])[0], k=3)


def test_gray_and_uint8_models(images, tmp_path):
    gray = small_classifier(tmp_path / "gray.onnx", ["N", 1, 48, 40])
    u8 = small_classifier(tmp_path / "u8.onnx", ["N", 40, 48, 3], dtype=TensorProto.UINT8,
                          layout="nhwc")
    files = [images["coffee"], images["camera"]]
    xg = np.stack([np.asarray(pil_image(f, gray=True).resize((40, 48)), np.float32)[None] /
                   np.float32(255) for f in files])
    (ref,) = ort_run(gray, {"x": xg}).values()
    out = predict_json(gray, *files)
    assert out["preprocess"]["preset"] == "unit" and out["input"]["channels"] == 1
    for i in range(2):
        check_prediction(out["predictions"][i], softmax_if_needed(ref[i])[0])
    xu = np.stack([np.asarray(pil_image(f).resize((48, 40)), np.uint8) for f in files])
    (ref,) = ort_run(u8, {"x": xu}).values()
    out = predict_json(u8, *files)
    assert out["input"]["dtype"] == "uint8"
    for i in range(2):
        check_prediction(out["predictions"][i], softmax_if_needed(ref[i])[0])


def test_float16_and_dynamic_size(images, tmp_path):
    m = small_classifier(tmp_path / "h.onnx", ["N", 3, "H", "W"], dtype=TensorProto.FLOAT16)
    f = images["astronaut"]
    x = ((np.asarray(pil_image(f).resize((70, 50)), np.float32) / np.float32(255) -
          IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)[None].astype(np.float16)
    (ref,) = ort_run(m, {"x": x}).values()
    out = predict_json(m, f, "--size", "50x70")
    assert (out["input"]["height"], out["input"]["width"]) == (50, 70)
    check_prediction(out["predictions"][0], softmax_if_needed(ref[0])[0])


# ----------------------------------------------------------------------------
# Output: JSON fields, --all, labels, table

def test_json_document(images, tmp_path):
    m = small_classifier(tmp_path / "m.onnx", ["N", 3, 32, 32], softmax=True)
    out = predict_json(m, images["chelsea"], images["coffee"], "--top", "3", "--all")
    assert set(out) == {"model", "input", "preprocess", "output", "classes", "labels",
                        "predictions"}
    assert out["model"] == str(m) and out["output"] == "probs" and out["classes"] == 7
    assert out["labels"] is None
    assert set(out["preprocess"]) == {"preset", "mean", "std", "filter", "antialias",
                                      "center_crop"}
    assert out["preprocess"] == {"preset": "imagenet", "mean": None, "std": None,
                                 "filter": "bicubic", "antialias": True, "center_crop": None}
    for p in out["predictions"]:
        assert set(p) == {"image", "softmax_applied", "top", "scores"}
        assert p["softmax_applied"] is False  # the model ends in Softmax
        assert len(p["top"]) == 3
        assert all(set(t) == {"index", "label", "score"} and t["label"] is None for t in p["top"])
        assert list(p["scores"]) == [str(c) for c in range(7)]
        assert abs(sum(p["scores"].values()) - 1) < 1e-5
        scores = [t["score"] for t in p["top"]]
        assert scores == sorted(scores, reverse=True)
        assert scores[0] == max(p["scores"].values())
    # without --all there is no "scores"; --top beyond the classes shows all
    out = predict_json(m, images["chelsea"], "--top", "50", "--no-antialias",
                       "--center-crop", "0.9", "--mean", "0.5", "--std", "0.25")
    assert "scores" not in out["predictions"][0] and len(out["predictions"][0]["top"]) == 7
    assert out["preprocess"] == {"preset": "unit", "mean": [0.5, 0.5, 0.5],
                                 "std": [0.25, 0.25, 0.25], "filter": "bicubic",
                                 "antialias": False, "center_crop": 0.9}


def test_labels_file_and_metadata(images, tmp_path):
    names = [f"class {c} \u00e9" for c in range(7)]
    lab = tmp_path / "labels.txt"
    lab.write_text("\r\n".join(names) + "\r\n", encoding="utf-8")
    m = small_classifier(tmp_path / "m.onnx", ["N", 3, 32, 32])
    out = predict_json(m, images["chelsea"], "--labels", lab, "--top", "7")
    assert out["labels"] == str(lab)
    for t in out["predictions"][0]["top"]:
        assert t["label"] == names[t["index"]]
    # metadata "labels": a JSON list, or one label per line
    mj = small_classifier(tmp_path / "mj.onnx", ["N", 3, 32, 32],
                          metadata={"labels": json.dumps(names + ["extra"])})
    out = predict_json(mj, images["chelsea"], "--top", "7")
    assert out["labels"] == "metadata"
    assert all(t["label"] == names[t["index"]] for t in out["predictions"][0]["top"])
    mt = small_classifier(tmp_path / "mt.onnx", ["N", 3, 32, 32],
                          metadata={"labels": "\n".join(names[:4])})
    out = predict_json(mt, images["chelsea"], "--top", "7")
    for t in out["predictions"][0]["top"]:
        assert t["label"] == (names[t["index"]] if t["index"] < 4 else None)
    # --labels wins over the metadata
    out = predict_json(mt, images["chelsea"], "--labels", lab, "--top", "7")
    assert all(t["label"] == names[t["index"]] for t in out["predictions"][0]["top"])


def test_table_output(images, tmp_path):
    lab = tmp_path / "labels.txt"
    lab.write_text("".join(f"name{c}\n" for c in range(7)))
    m = small_classifier(tmp_path / "m.onnx", ["N", 3, 32, 32])
    r = check_ok(run_onyx("predict", m, images["chelsea"], images["coffee"], "--labels", lab,
                          "--top", "2"))
    lines = r.stdout.splitlines()
    assert lines[0] == f"{images['chelsea']}  (softmax applied)"
    assert lines[1].split() == ["rank", "index", "score", "label"]
    assert lines[2].split()[0] == "1" and lines[2].split()[3].startswith("name")
    assert lines[4] == "" and lines[5].startswith(str(images["coffee"]))
    j = predict_json(m, images["chelsea"], "--labels", lab, "--top", "2")
    for t, line in zip(j["predictions"][0]["top"], lines[2:4]):
        rank, idx, score, label = line.split()
        assert int(idx) == t["index"] and label == t["label"]
        assert abs(float(score) - t["score"]) < 1e-6


# ----------------------------------------------------------------------------
# Errors: one line, non-zero exit, never a crash (also under ASan)

def png_header_only(path, w, h):
    """A PNG whose IHDR claims w x h (and a tiny IDAT): a decompression bomb
    must be refused from the header."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
                     chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def clf(tmp_path_factory):
    return small_classifier(tmp_path_factory.mktemp("clf") / "m.onnx", ["N", 3, 32, 32])


def test_error_not_an_image(clf, tmp_path, onyx_bin):
    p = tmp_path / "notes.jpg"
    p.write_text("this is not an image\n")
    check_error(run_onyx("predict", clf, p, binary=onyx_bin), "notes.jpg")
    check_error(run_onyx("predict", clf, tmp_path / "missing.png", binary=onyx_bin),
                "missing.png")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    check_error(run_onyx("predict", clf, empty, binary=onyx_bin), "empty.png")


def test_error_truncated_jpeg(clf, images, tmp_path, onyx_bin):
    data = images["astronaut"].read_bytes()
    for frac, name in ((0.5, "half.jpg"), (0.02, "head.jpg")):
        p = tmp_path / name
        p.write_bytes(data[: int(len(data) * frac)])
        check_error(run_onyx("predict", clf, images["coffee"], p, binary=onyx_bin), name)
    png = images["chelsea"].read_bytes()
    p = tmp_path / "cut.png"
    p.write_bytes(png[: len(png) // 3])
    check_error(run_onyx("predict", clf, p, binary=onyx_bin), "cut.png")


def test_error_pixel_limit(clf, images, tmp_path, onyx_bin):
    check_error(run_onyx("predict", clf, images["astronaut"], "--max-pixels", "100000",
                         binary=onyx_bin), "astronaut.jpg", "limit")
    bomb = png_header_only(tmp_path / "bomb.png", 30000, 30000)
    check_error(run_onyx("predict", clf, bomb, binary=onyx_bin), "bomb.png", "limit")
    arr = tmp_path / "big.npy"
    np.save(arr, np.zeros((400, 400, 3), np.uint8))
    check_error(run_onyx("predict", clf, arr, "--max-pixels", "1000", binary=onyx_bin),
                "big.npy", "limit")


def test_error_model_not_image_like(images, tmp_path, onyx_bin):
    vec = save_model(helper.make_model(helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])]),
        opset_imports=[helper.make_opsetid("", 17)], ir_version=8), tmp_path / "vec.onnx")
    check_error(run_onyx("predict", vec, images["chelsea"], binary=onyx_bin), "not an image")
    four = small_classifier(tmp_path / "four.onnx", ["N", 4, 32, 32])
    check_error(run_onyx("predict", four, images["chelsea"], binary=onyx_bin), "not an image")
    two = save_model(helper.make_model(helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["y"])], "g",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 3, 8, 8]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 8, 8])]),
        opset_imports=[helper.make_opsetid("", 17)], ir_version=8), tmp_path / "two.onnx")
    check_error(run_onyx("predict", two, images["chelsea"], binary=onyx_bin), "one image input",
                "a, b")
    strs = save_model(helper.make_model(helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.STRING, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.STRING, ["N", 3, 8, 8])]),
        opset_imports=[helper.make_opsetid("", 17)], ir_version=8), tmp_path / "s.onnx")
    check_error(run_onyx("predict", strs, images["chelsea"], binary=onyx_bin), "not an image")


def test_error_dynamic_size_needs_size(images, tmp_path, onyx_bin):
    m = small_classifier(tmp_path / "dyn.onnx", ["N", 3, "H", "W"])
    check_error(run_onyx("predict", m, images["chelsea"], binary=onyx_bin), "--size")
    fixed = small_classifier(tmp_path / "fixed.onnx", ["N", 3, 32, 32])
    check_error(run_onyx("predict", fixed, images["chelsea"], "--size", "64x64",
                         binary=onyx_bin), "fixed at 32x32")
    anyc = small_classifier(tmp_path / "any.onnx", ["N", "C", "H", "W"])
    check_error(run_onyx("predict", anyc, images["chelsea"], "--size", "32x32",
                         binary=onyx_bin), "--layout")
    check_ok(run_onyx("predict", anyc, images["chelsea"], "--size", "32x32", "--layout", "nchw",
                      binary=onyx_bin))


def test_error_bad_options(clf, images, tmp_path, onyx_bin):
    cases = [(["--top", "0"], "--top"), (["--center-crop", "1.5"], "--center-crop"),
             (["--filter", "lanczos"], "--filter"), (["--preprocess", "vgg"], "--preprocess"),
             (["--size", "12y"], "--size"), (["--mean", "1,2"], "--mean"),
             (["--layout", "chw"], "--layout"), (["--bogus"], "--bogus"),
             (["--preprocess", "imagenet", "--mean", "0.5"], "--mean")]
    for extra, frag in cases:
        r = run_onyx("predict", clf, images["chelsea"], *extra, binary=onyx_bin)
        assert r.returncode == 2, (extra, r.stderr)
        assert r.stderr.startswith("onyx: error: ") and frag in r.stderr.splitlines()[0]
    r = run_onyx("predict", clf, binary=onyx_bin)
    assert r.returncode == 2 and "no IMAGE" in r.stderr
    lab = tmp_path / "missing_labels.txt"
    check_error(run_onyx("predict", clf, images["chelsea"], "--labels", lab, binary=onyx_bin),
                "missing_labels.txt")
    u8 = small_classifier(tmp_path / "u8.onnx", ["N", 3, 16, 16], dtype=TensorProto.UINT8)
    check_error(run_onyx("predict", u8, images["chelsea"], "--preprocess", "imagenet",
                         binary=onyx_bin), "uint8")
    gray = small_classifier(tmp_path / "g.onnx", ["N", 1, 16, 16])
    check_error(run_onyx("predict", gray, images["chelsea"], "--preprocess", "caffe",
                         binary=onyx_bin), "3 channels")


def test_error_bad_labels_metadata(images, tmp_path, onyx_bin):
    m = small_classifier(tmp_path / "m.onnx", ["N", 3, 16, 16],
                         metadata={"labels": '["cat", "dog"'})
    check_error(run_onyx("predict", m, images["chelsea"], binary=onyx_bin), "labels")


def test_help():
    r = check_ok(run_onyx("predict", "--help"))
    assert "--center-crop" in r.stdout and "--dump-input" not in r.stdout
    r = check_ok(run_onyx("--help"))
    assert "predict MODEL IMAGE..." in r.stdout and "not implemented" not in r.stdout.split(
        "predict")[1].splitlines()[0]


def test_dump_input_matches_reference(images, mobilenet, tmp_path):
    """The tensor fed to the model is the torchvision eval transform's."""
    files = [images["chelsea"], images["rotated"]]
    check_ok(run_onyx("predict", mobilenet, *files, "--filter", "bilinear", "--center-crop",
                      "0.875", "--dump-input", tmp_path / "x.npy"))
    got = np.load(tmp_path / "x.npy")
    assert got.shape == (2, 3, 224, 224) and got.dtype == np.float32
    for i, f in enumerate(files):
        np.testing.assert_allclose(got[i], torchvision_eval(f), rtol=0, atol=1.01 / 255 / 0.224)
    # without the EXIF rotation the two would be nearly the same tensor
    assert np.abs(got[1] - got[0]).max() > 1
