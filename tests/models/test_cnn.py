"""torchvision ResNet-50, MobileNetV2, SqueezeNet 1.1 and EfficientNet-B0 (built
by tools/build_models.py) through `onyx run`, against onnxruntime: max abs
diff <= 1e-4 on the logits and the same top-5 per image, at batch 1 and 4, at
1, 2 and 3 threads, at opset 13 and with BatchNorm folded into Conv.

The first tests check the models themselves (no onyx needed): valid ONNX, the
torchvision parameter counts, and logits that make the comparison meaningful."""
import collections

import numpy as np
import onnx
import pytest

from model_helpers import build_models, run_onyx  # noqa: F401 (fixtures below)
from model_helpers import images, model_file, onyx_bin, ort_logits  # noqa: F401

MODELS = build_models.MODELS
TOL = 1e-4

# torchvision's documented parameter counts (weights.meta["num_params"]): the
# builders must match them exactly, BatchNorm affine parameters included.
NUM_PARAMS = {"resnet50": 25557032, "mobilenet_v2": 3504872, "squeezenet1_1": 1235496,
              "efficientnet_b0": 5288548}
# Node counts of a torch export in eval mode without BatchNorm folding.
OP_COUNTS = {
    "resnet50": {"Conv": 53, "BatchNormalization": 53, "Relu": 49, "MaxPool": 1, "Add": 16,
                 "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1},
    "mobilenet_v2": {"Conv": 52, "BatchNormalization": 52, "Clip": 35, "Add": 10,
                     "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1},
    "squeezenet1_1": {"Conv": 26, "Relu": 26, "MaxPool": 3, "Concat": 8,
                      "GlobalAveragePool": 1, "Flatten": 1},
    "efficientnet_b0": {"Conv": 81, "BatchNormalization": 49, "Sigmoid": 65, "Mul": 65,
                        "GlobalAveragePool": 17, "Add": 9, "Flatten": 1, "Gemm": 1},
}


# ----------------------------------------------------------------------------
# The models (onnx + onnxruntime only)


@pytest.mark.parametrize("name", MODELS)
def test_model_structure(name, model_file):
    m = onnx.load(model_file(name))
    onnx.checker.check_model(m, full_check=True)
    assert [o.domain for o in m.opset_import] == [""] and m.opset_import[0].version == 17
    (inp,), (out,) = m.graph.input, m.graph.output
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    assert (inp.name, dims(inp)) == ("input", ["batch", 3, 224, 224])
    assert (out.name, dims(out)) == ("logits", ["batch", 1000])
    params = sum(int(np.prod(t.dims)) for t in m.graph.initializer
                 if not t.name.endswith(("running_mean", "running_var"))
                 and not t.name.startswith("clip_"))
    assert params == NUM_PARAMS[name]
    assert dict(collections.Counter(n.op_type for n in m.graph.node)) == OP_COUNTS[name]
    inits = {t.name: t for t in m.graph.initializer}
    for n in m.graph.node:
        if n.op_type == "Clip":  # ReLU6 as torch writes it: scalar min 0 and max 6 inputs
            assert [list(inits[i].dims) for i in n.input[1:]] == [[], []]
            assert [float(onnx.numpy_helper.to_array(inits[i])) for i in n.input[1:]] == [0, 6]
    folded = onnx.load(model_file(name, 17, True))
    assert not any(n.op_type == "BatchNormalization" for n in folded.graph.node)
    assert onnx.load(model_file(name, 13)).opset_import[0].version == 13


@pytest.mark.parametrize("name", MODELS)
def test_logits_are_meaningful(name, model_file, ort_logits):
    """O(1) logits that differ between images, and top-5 with no near-ties
    (a gap of at least 5x the tolerance between ranks 1..6), so that
    tolerance and top-5 checks below are neither trivial nor flaky."""
    y = ort_logits(model_file(name), 4).astype(np.float64)
    assert np.isfinite(y).all()
    assert 0.5 < y.std(axis=1).min() and y.std(axis=1).max() < 10, y.std(axis=1)
    for i in range(4):
        for j in range(i):
            assert np.abs(y[i] - y[j]).max() > 0.1, f"images {i} and {j} give the same logits"
        top = np.sort(y[i])[::-1][:6]
        assert np.diff(-top).min() > 5 * TOL, f"image {i}: near-tie in the top-6 {top}"


# ----------------------------------------------------------------------------
# onyx against onnxruntime


def check_onyx(onyx_bin, path, batch, images, ort_logits, tmp_path, *extra):
    """Runs `onyx run MODEL -i input=x.npy -o DIR [extra]` and compares
    DIR/logits.npy with onnxruntime."""
    _, npy = images(batch)
    out = tmp_path / "out"
    r = run_onyx(onyx_bin, "run", path, "-i", f"input={npy}", "-o", out, *extra)
    assert r.returncode == 0, f"onyx exited {r.returncode}\nstderr:\n{r.stderr}"
    got = np.load(out / "logits.npy")
    want = ort_logits(path, batch)
    assert got.dtype == np.float32 and got.shape == want.shape, (got.dtype, got.shape)
    assert np.isfinite(got).all(), "non-finite logits"
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    at = np.unravel_index(diff.argmax(), diff.shape)
    assert diff.max() <= TOL, (f"max abs diff {diff.max():.3g} at {tuple(map(int, at))}: "
                               f"onyx {got[at]:.6f}, onnxruntime {want[at]:.6f}")
    for row in range(batch):
        top_got = np.argsort(-got[row], kind="stable")[:5].tolist()
        top_want = np.argsort(-want[row], kind="stable")[:5].tolist()
        assert top_got == top_want, f"image {row}: top-5 {top_got} != onnxruntime's {top_want}"


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("name", MODELS)
def test_matches_onnxruntime(name, batch, onyx_bin, model_file, images, ort_logits, tmp_path):
    check_onyx(onyx_bin, model_file(name), batch, images, ort_logits, tmp_path)


@pytest.mark.parametrize("threads,batch", [(2, 4), (1, 1), (3, 1)])
@pytest.mark.parametrize("name", MODELS)
def test_threads(name, threads, batch, onyx_bin, model_file, images, ort_logits, tmp_path):
    """The same logits with an explicit thread count: 2 (the brief's), 1 (the
    serial path) and 3 (work that does not split evenly)."""
    check_onyx(onyx_bin, model_file(name), batch, images, ort_logits, tmp_path,
               "--threads", threads)


@pytest.mark.parametrize("variant", ["opset13", "bnfolded"])
@pytest.mark.parametrize("name", MODELS)
def test_variants(name, variant, onyx_bin, model_file, images, ort_logits, tmp_path):
    """The same architectures at opset 13, and with BatchNorm folded into the
    convolutions (what torch's TorchScript exporter writes), at batch 2."""
    path = model_file(name, 13) if variant == "opset13" else model_file(name, 17, True)
    check_onyx(onyx_bin, path, 2, images, ort_logits, tmp_path)


@pytest.mark.parametrize("name", MODELS)
def test_planned_runs_match_onnxruntime(name, onyx_bin, model_file, images, ort_logits):
    """`onyx run` runs a model once; a session serving requests runs it again
    and again, and from the second run on with the memory plan (one arena,
    and a Concat's pieces written in place by their producers). Four images
    through one session over the C API, one at a time, each against
    onnxruntime."""
    import ctypes
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
    import interleaved  # noqa: E402  (the C API through ctypes)
    x4, _ = images(4)
    want = ort_logits(model_file(name), 4)
    lib = ctypes.CDLL(os.path.join(os.path.dirname(os.path.abspath(onyx_bin)), "libonyx.so"))
    # A copy: the session reads this array, which each run overwrites (the
    # images fixture is shared by every test).
    engine = interleaved.Onyx(lib, str(model_file(name)), {"input": x4[:1].copy()})
    try:
        for i in range(4):
            engine.feeds["input"][...] = x4[i:i + 1]  # the session's view reads this array
            engine.run()
            (got,) = engine.outputs()
            diff = np.abs(got[0].astype(np.float64) - want[i]).max()
            assert diff <= TOL, f"run {i}: max abs diff {diff:.3g}"
            assert (np.argsort(-got[0], kind="stable")[:5].tolist()
                    == np.argsort(-want[i], kind="stable")[:5].tolist())
    finally:
        engine.close()
