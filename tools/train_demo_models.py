#!/usr/bin/env python3
"""train_demo_models.py - trains the demo models that `make run` serves and
writes them, as a Triton-style model repository, to models/ (committed, so
serving them needs no Python).

It owns models/ (every model.onnx, config.pbtxt, labels file and README.md)
and the sample images web/digit-0.png .. digit-9.png (write_samples); it
does not own the server that reads them (src/server/, docs/server.md) nor
the page that shows them (web/, docs/demo.md).

Usage:
    train_demo_models.py [--out DIR] [--web DIR]   (default: models/ and web/)

The models, all trained on data sets that scikit-learn ships (no download):
- digits: handwritten digits, 8x8 gray images with values 0..16 (bright
  strokes, 16, on a dark background, 0). A one-hidden-layer MLP
  (scikit-learn's MLPClassifier), written out by hand with onnx.helper as
  Flatten -> MatMul -> Add -> Relu -> MatMul -> Add -> Softmax, so that its
  input is an image tensor "image" float[batch,1,8,8] in the data set's range
  and its output "probabilities" float[batch,10]. Trained on the training
  split plus copies shifted by one pixel each way (drawn digits are rarely
  centered as well as the data set's) and copies enlarged 4x then shrunk back
  as the server shrinks uploads (bicubic blurs a little). Its config.pbtxt asks the server to
  turn an uploaded image into that input: gray, resized to 8x8 (Pillow's
  antialiased bicubic), then x / 15.9375 = x * 16 / 255 (preset "none",
  mean 0, std 15.9375), so white (255) is 16.
- iris: StandardScaler + LogisticRegression, converted with skl2onnx; its
  outputs are the label (string) and a ZipMap (ai.onnx.ml) of class name ->
  probability, so the ONNX-ML path and map outputs are exercised.
- diabetes: GradientBoostingRegressor (100 trees of depth 2) on the raw (unscaled) diabetes
  features, converted with skl2onnx to a TreeEnsembleRegressor; output
  "variable" float[batch,1], the disease progression one year on.

Everything is deterministic: fixed random_state for the splits and the
models, one BLAS thread (set below, before numpy loads), fixed target opsets.
Running it twice writes the same bytes. It checks each exported model
against scikit-learn with onnxruntime before writing it and records the
test-set scores in models/README.md.

Config parameters the page (web/app.js) reads, besides the server's own
(docs/server.md): "description" (one sentence shown with the model),
"feature_names" (comma-separated, one per element of a [batch, F] input),
"example_input" (comma-separated values that prefill the form).
"""

import os

# One thread: the result must not depend on the machine's core count, and on
# a shared machine a BLAS thread pool only fights the other processes.
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

SEED = 0
OPSET = 17
ML_OPSET = 3
HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------
# Helpers


def pbtxt_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(model_dir, name, params, max_batch_size=0):
    """config.pbtxt: name, platform, batching and string parameters, in the
    order given. Inputs/outputs are left out: the server reads them from the
    model."""
    lines = [f"name: {pbtxt_str(name)}", 'platform: "onnxruntime_onnx"',
             f"max_batch_size: {max_batch_size}"]
    for key, value in params:
        lines.append(f"parameters {{ key: {pbtxt_str(key)} "
                     f"value: {{ string_value: {pbtxt_str(value)} }} }}")
    with open(os.path.join(model_dir, "config.pbtxt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def save_model(model, out, name):
    """Checks `model` and writes it to out/name/1/model.onnx; returns the dir."""
    onnx.checker.check_model(model, full_check=True)
    model_dir = os.path.join(out, name)
    os.makedirs(os.path.join(model_dir, "1"), exist_ok=True)
    with open(os.path.join(model_dir, "1", "model.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    return model_dir


def ort_run(model, feeds):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def split(X, y):
    from sklearn.model_selection import train_test_split
    strat = y if y.dtype.kind in "iuU" else None
    return train_test_split(X, y, test_size=0.25, random_state=SEED, stratify=strat)


# ----------------------------------------------------------------------------
# digits: MLP on 8x8 images, graph written by hand


def shifted(X, y):
    """X (n, 8, 8) plus its copies moved one pixel up, down, left and right
    (the pixels moved in are 0, the background)."""
    out, ys = [X], [y]
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        s = np.zeros_like(X)
        src = X[:, max(0, -dy):8 - max(0, dy), max(0, -dx):8 - max(0, dx)]
        s[:, max(0, dy):8 - max(0, -dy), max(0, dx):8 - max(0, -dx)] = src
        out.append(s)
        ys.append(y)
    return np.concatenate(out), np.concatenate(ys)


def write_samples(web, X, y, pred):
    """web/digit-D.png: for each digit D, the first test-set image of a D that
    the model gets right (pred: its predictions for X as the server sees the
    files), 0..16 scaled to 0..255 and enlarged 4x (nearest), so the server
    has to resize it. Picked, not random: the page offers them as examples
    that work; the test score says how often the model is wrong."""
    from PIL import Image
    os.makedirs(web, exist_ok=True)
    for dgt in range(10):
        img = X[np.flatnonzero((y == dgt) & (pred == dgt))[0]]
        px = np.rint(img * 255 / 16).astype(np.uint8).repeat(4, 0).repeat(4, 1)
        Image.fromarray(px, "L").save(os.path.join(web, f"digit-{dgt}.png"), optimize=True)


def resized(X, k):
    """X (n, 8, 8) as the server sees it when it gets the images enlarged k
    times: 8-bit pixels, Pillow's antialiased bicubic back to 8x8, / 15.9375.
    The filter's lobes reach the neighbouring pixels, so this blurs a little."""
    from PIL import Image
    out = []
    for x in X:
        px = np.rint(x * 255 / 16).astype(np.uint8).repeat(k, 0).repeat(k, 1)
        small = Image.fromarray(px, "L").resize((8, 8), Image.Resampling.BICUBIC)
        out.append(np.asarray(small, dtype=np.float32) / np.float32(15.9375))
    return np.stack(out)


def train_digits(out, web):
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    d = load_digits()
    X = d.images.astype(np.float32)  # (1797, 8, 8), 0..16
    Xtr, Xte, ytr, yte = split(X, d.target)
    Xa, ya = shifted(Xtr, ytr)
    Xa, ya = np.concatenate([Xa, resized(Xtr, 4)]), np.concatenate([ya, ytr])
    clf = MLPClassifier(hidden_layer_sizes=(64,), alpha=1e-3, max_iter=200, random_state=SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(Xa.reshape(len(Xa), 64) / 16, ya)

    # The MLP sees x / 16; dividing W1 by 16 (a power of two: exact) lets the
    # graph take the data set's 0..16 directly.
    w1 = (clf.coefs_[0] / 16).astype(np.float32)  # (64, 64)
    b1 = clf.intercepts_[0].astype(np.float32)    # (64,)
    w2 = clf.coefs_[1].astype(np.float32)         # (64, 10)
    b2 = clf.intercepts_[1].astype(np.float32)    # (10,)
    inits = [numpy_helper.from_array(a, n) for a, n in
             ((w1, "W1"), (b1, "B1"), (w2, "W2"), (b2, "B2"))]
    nodes = [
        helper.make_node("Flatten", ["image"], ["x"], axis=1, name="flatten"),
        helper.make_node("MatMul", ["x", "W1"], ["h0"], name="fc1"),
        helper.make_node("Add", ["h0", "B1"], ["h1"], name="fc1_bias"),
        helper.make_node("Relu", ["h1"], ["h"], name="relu"),
        helper.make_node("MatMul", ["h", "W2"], ["z0"], name="fc2"),
        helper.make_node("Add", ["z0", "B2"], ["logits"], name="fc2_bias"),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1, name="softmax"),
    ]
    graph = helper.make_graph(
        nodes, "digits_mlp",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 10])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="onyx tools/train_demo_models.py")
    model.ir_version = 8
    model.doc_string = ("Handwritten digit classifier (scikit-learn digits, 8x8, values 0..16, "
                        "bright strokes on a dark background)")
    helper.set_model_props(model, {"labels": "\n".join(str(i) for i in range(10))})

    (p,) = ort_run(model, {"image": Xte[:, None]})
    ref = clf.predict_proba(Xte.reshape(len(Xte), 64) / 16)
    assert np.abs(p - ref).max() < 1e-4, np.abs(p - ref).max()
    acc = float((p.argmax(1) == yte).mean())
    (p4,) = ort_run(model, {"image": resized(Xte, 4)[:, None]})
    acc4 = float((p4.argmax(1) == yte).mean())

    model_dir = save_model(model, out, "digits")
    write_samples(web, Xte, yte, p4.argmax(1))
    with open(os.path.join(model_dir, "labels.txt"), "w") as f:
        f.write("".join(f"{i}\n" for i in range(10)))
    write_config(model_dir, "digits", [
        ("description", "Handwritten digit (0-9) classifier: a small MLP trained on "
                        "scikit-learn's 8x8 digits. Draw a digit or upload an image of a light "
                        "digit on a dark background."),
        ("labels", "labels.txt"),
        ("preprocessing", "none"),
        ("mean", "0"),
        ("std", "15.9375"),
        ("filter", "bicubic"),
    ])
    return {"name": "digits", "task": "10-class image classification",
            "model": "MLP 64-64-10 (scikit-learn MLPClassifier, ReLU, softmax)",
            "data": f"digits: {len(Xtr)} train (+4 one-pixel shifts and a 4x resize round trip "
                    f"each), {len(Xte)} test",
            "metric": f"accuracy {acc:.4f} ({acc4:.4f} after a 4x resize round trip)", "io": "image float[batch,1,8,8] (0..16) -> "
            "probabilities float[batch,10]"}


# ----------------------------------------------------------------------------
# iris and diabetes: skl2onnx


def convert(est, n_features, name):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    return convert_sklearn(est, name, [("features", FloatTensorType([None, n_features]))],
                           target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET})


def train_iris(out):
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    d = load_iris()
    X = d.data.astype(np.float32)
    y = np.array(d.target_names)[d.target]  # class names, so ZipMap keys are strings
    Xtr, Xte, ytr, yte = split(X, y)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=SEED))
    clf.fit(Xtr, ytr)
    model = convert(clf, 4, "iris")
    model.doc_string = "Iris species from four flower measurements (scikit-learn iris)"

    label, probs = ort_run(model, {"features": Xte})
    ref = clf.predict_proba(Xte)
    got = np.array([[p[c] for c in clf.classes_] for p in probs])
    assert np.abs(got - ref).max() < 1e-4 and (label == clf.predict(Xte)).all()
    acc = float((label == yte).mean())

    names = [n.replace(" (cm)", "") + " (cm)" for n in d.feature_names]
    model_dir = save_model(model, out, "iris")
    write_config(model_dir, "iris", [
        ("description", "Iris species (setosa, versicolor, virginica) from sepal and petal "
                        "sizes: logistic regression; probabilities come as a ZipMap."),
        ("feature_names", ",".join(names)),
        ("example_input", ",".join(f"{v:g}" for v in Xte[0])),
    ])
    return {"name": "iris", "task": "3-class tabular classification (ONNX-ML, ZipMap)",
            "model": "StandardScaler + LogisticRegression (skl2onnx)",
            "data": f"iris: {len(Xtr)} train, {len(Xte)} test",
            "metric": f"accuracy {acc:.4f}",
            "io": "features float[batch,4] -> output_label string[batch], "
                  "output_probability seq(map(string,float))"}


def train_diabetes(out):
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.metrics import r2_score

    d = load_diabetes(scaled=False)
    X = d.data.astype(np.float32)
    Xtr, Xte, ytr, yte = split(X, d.target)
    reg = GradientBoostingRegressor(n_estimators=100, max_depth=2, learning_rate=0.05,
                                    subsample=0.8, random_state=SEED)
    reg.fit(Xtr, ytr)
    # The data set is noisy; a linear fit on the same split is the yardstick.
    from sklearn.linear_model import LinearRegression
    r2_linear = float(LinearRegression().fit(Xtr, ytr).score(Xte, yte))
    model = convert(reg, 10, "diabetes")
    model.doc_string = "Diabetes progression one year after baseline (scikit-learn diabetes)"

    (pred,) = ort_run(model, {"features": Xte})
    ref = reg.predict(Xte)
    assert np.abs(pred[:, 0] - ref).max() < 1e-2 * np.abs(ref).max()
    r2 = float(r2_score(yte, pred[:, 0]))

    names = ["age (years)", "sex (1 or 2)", "body mass index", "mean blood pressure",
             "s1: total serum cholesterol", "s2: LDL", "s3: HDL", "s4: total / HDL",
             "s5: log serum triglycerides", "s6: blood sugar"]
    assert len(names) == len(d.feature_names)
    model_dir = save_model(model, out, "diabetes")
    write_config(model_dir, "diabetes", [
        ("description", "Diabetes disease progression one year after baseline (a score, "
                        "about 25..350) from ten baseline measurements: gradient-boosted trees."),
        ("feature_names", ",".join(names)),
        ("example_input", ",".join(f"{v:g}" for v in Xte[0])),
    ])
    return {"name": "diabetes", "task": "regression (ONNX-ML, tree ensemble)",
            "model": "GradientBoostingRegressor, 100 trees of depth 2 (skl2onnx)",
            "data": f"diabetes (unscaled features): {len(Xtr)} train, {len(Xte)} test",
            "metric": f"R^2 {r2:.4f} (linear regression: {r2_linear:.4f})", "io": "features float[batch,10] -> variable "
            "float[batch,1]"}


# ----------------------------------------------------------------------------
# README


def write_readme(out, rows):
    import sklearn
    import skl2onnx
    lines = [
        "# Demo models",
        "",
        "The model repository `make run` serves (`onyx serve --model-repository models`),",
        "in Triton's layout: `<name>/config.pbtxt`, `<name>/1/model.onnx`, and a labels",
        "file where there is one. Written by `tools/train_demo_models.py` (do not edit",
        "by hand; rerun it: it is deterministic). What the page shows: docs/demo.md.",
        "",
        f"Trained with scikit-learn {sklearn.__version__}, skl2onnx {skl2onnx.__version__},",
        f"onnx {onnx.__version__}; opset {OPSET} (ai.onnx.ml {ML_OPSET}). Data: the sets",
        "scikit-learn ships, split 75/25 (stratified for classes, random_state 0);",
        "the scores are on the held-out 25%.",
        "",
        "| model | task | method | data | test score | input -> output |",
        "|-------|------|-------|------|------------|-----------------|",
    ]
    for r in rows:
        lines.append(f"| {r['name']} | {r['task']} | {r['model']} | {r['data']} | "
                     f"{r['metric']} | {r['io']} |")
    lines += [
        "",
        "## Preprocessing of the digits model",
        "",
        "The data set's images are 8x8, values 0..16, bright strokes (16) on a dark",
        "background (0). `config.pbtxt` tells the server how an uploaded image becomes",
        "that tensor: gray, resized to 8x8 (bicubic with antialiasing, as Pillow),",
        "then `(x - 0) / 15.9375` (preset `none`, `mean` 0, `std` 15.9375), so a white",
        "pixel is 16. A photo of dark ink on white paper has to be inverted first (the",
        "page offers that). The page's example images, `web/digit-0.png` .. `digit-9.png`,",
        "are the first test-set image of each digit that the model classifies correctly,",
        "enlarged 4x. The same settings on the command line:",
        "",
        "    onyx predict models/digits/1/model.onnx digit.png \\",
        "        --preprocess none --mean 0 --std 15.9375 --labels models/digits/labels.txt",
        "",
        "## Parameters the page reads",
        "",
        "Besides the server's own parameters (docs/server.md), the configs carry three",
        "that only the page uses: `description`, `feature_names` (one per feature of a",
        "`[batch, F]` input, comma-separated) and `example_input` (values that prefill",
        "the form: the first test-set row).",
        "",
    ]
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "models"))
    ap.add_argument("--web", default=os.path.join(os.path.dirname(HERE), "web"),
                    help="where the sample digit images go")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rows = [train_digits(args.out, args.web), train_iris(args.out), train_diabetes(args.out)]
    write_readme(args.out, rows)
    for r in rows:
        print(f"{r['name']:10s} {r['metric']}")


if __name__ == "__main__":
    main()
