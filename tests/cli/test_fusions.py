"""Graph fusions of transformer models (src/core/passes.c) and the kernels
behind them, through `onyx run` against onnxruntime: MatMul + bias Add with
prepacked weights, Gemm by prepacked weights with each kind of C, and a 2-layer BERT encoder (tools/build_bert.py) at
opset 17 (LayerNormalization) and 14 (decomposed LayerNorm), and the
peak memory of that encoder's load."""
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import ROOT, check_ok, onyx_binary, ort_run, run_onyx, save_model

sys.path.insert(0, str(ROOT / "tools"))
import build_bert  # noqa: E402  (tools/ is not a package)


def run_both(tmp_path, model, feeds):
    path = save_model(model, tmp_path / "m.onnx")
    args = []
    for name, arr in feeds.items():
        np.save(tmp_path / f"{name}.npy", arr)
        args += ["-i", f"{name}={tmp_path / (name + '.npy')}"]
    check_ok(run_onyx("run", path, *args, "-o", tmp_path / "out"))
    want = ort_run(path, feeds)
    return {k: np.load(tmp_path / "out" / f"{k}.npy") for k in want}, want


# A [.., K] x W [K, N] + b [N], b as either Add operand, with or without a
# Relu after; shapes that do and do not pack (N = 1, small K*N), 1-D A.
@pytest.mark.parametrize("a_shape,n,bias_first,relu", [
    ((2, 5, 96), 80, True, False),
    ((7, 96), 80, False, True),
    ((96,), 80, True, False),
    ((3, 17), 1, False, False),
    ((4, 3), 5, True, True),
    ((1, 130, 300), 70, False, False),
])
def test_matmul_bias_fusion(tmp_path, a_shape, n, bias_first, relu):
    rng = np.random.default_rng(len(a_shape) * 100 + n)
    k = a_shape[-1]
    w = rng.standard_normal((k, n)).astype(np.float32)
    b = rng.standard_normal((n,)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["a", "w"], ["p"]),
             helper.make_node("Add", ["b", "p"] if bias_first else ["p", "b"],
                              ["s" if relu else "y"])]
    if relu:
        nodes.append(helper.make_node("Relu", ["s"], ["y"]))
    out_shape = list(a_shape[:-1]) + [n]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT,
                                                                      list(a_shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    a = rng.standard_normal(a_shape).astype(np.float32)
    got, want = run_both(tmp_path, model, {"a": a})
    assert got["y"].shape == want["y"].shape
    np.testing.assert_allclose(got["y"], want["y"], rtol=0, atol=1e-4)


# Gemm by a constant B (prepacked at load when K*N >= 4096, alpha 1 and no
# transA) with every kind of C: a row bias [N] or [1, N] (added in the packed
# product's epilogue), a full [M, N] or a column [M, 1] C, beta other than 1,
# C fed at run time, and the shapes that are not packed (alpha, transA).
@pytest.mark.parametrize("c_kind,trans_b,alpha,beta,trans_a,relu", [
    ("none", True, 1.0, 1.0, False, False),
    ("row", True, 1.0, 1.0, False, True),
    ("row2d", False, 1.0, 1.0, False, False),
    ("full", True, 1.0, 1.0, False, False),
    ("column", False, 1.0, 1.0, False, False),
    ("row", True, 1.0, 0.5, False, False),
    ("row", True, 2.0, 1.0, False, False),
    ("row", False, 1.0, 1.0, True, True),
    ("input", True, 1.0, 1.0, False, False),
])
def test_gemm_with_prepacked_b(tmp_path, c_kind, trans_b, alpha, beta, trans_a, relu):
    rng = np.random.default_rng(11)
    m, k, n = 5, 96, 80
    w = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    c_shape = {"row": [n], "row2d": [1, n], "full": [m, n], "column": [m, 1], "input": [n]}
    inits = [numpy_helper.from_array(w, "w")]
    inputs = [helper.make_tensor_value_info("a", TensorProto.FLOAT, [k, m] if trans_a else [m, k])]
    gemm_in = ["a", "w"]
    feeds = {"a": rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)}
    if c_kind != "none":
        c = rng.standard_normal(c_shape[c_kind]).astype(np.float32)
        gemm_in.append("c")
        if c_kind == "input":
            inputs.append(helper.make_tensor_value_info("c", TensorProto.FLOAT, [n]))
            feeds["c"] = c
        else:
            inits.append(numpy_helper.from_array(c, "c"))
    nodes = [helper.make_node("Gemm", gemm_in, ["s" if relu else "y"], transA=int(trans_a),
                              transB=int(trans_b), alpha=alpha, beta=beta)]
    if relu:
        nodes.append(helper.make_node("Relu", ["s"], ["y"]))
    g = helper.make_graph(nodes, "g", inputs,
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [m, n])], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    got, want = run_both(tmp_path, model, feeds)
    np.testing.assert_allclose(got["y"], want["y"], rtol=0, atol=1e-4)


def test_matmul_bias_not_fused_when_product_is_read_twice(tmp_path):
    rng = np.random.default_rng(3)
    w = rng.standard_normal((64, 64)).astype(np.float32)
    b = rng.standard_normal((64,)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["a", "w"], ["p"]),
             helper.make_node("Add", ["p", "b"], ["y"]),
             helper.make_node("Mul", ["p", "p"], ["z"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("a", TensorProto.FLOAT, [8, 64])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 64]),
                           helper.make_tensor_value_info("z", TensorProto.FLOAT, [8, 64])],
                          [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    got, want = run_both(tmp_path, model, {"a": rng.standard_normal((8, 64)).astype(np.float32)})
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("opset", [17, 14])
def test_bert_two_layers_matches_onnxruntime(opset):
    path = build_bert.model_path(opset=opset, layers=2)
    feeds = build_bert.test_inputs(str(path))
    want = build_bert.run_onnxruntime(str(path), feeds)
    got = build_bert.run_onyx(onyx_binary(), str(path), feeds)
    assert got.shape == want.shape
    assert float(np.abs(got.astype(np.float64) - want).max()) < 1e-4


# Erf GELU: the exact pattern (fused into Gelu), operands swapped, and a
# near miss (another divisor: not fused) must all match onnxruntime.
@pytest.mark.parametrize("divisor,swap", [(np.sqrt(2.0), False), (np.sqrt(2.0), True),
                                          (1.5, False)])
def test_gelu_pattern(tmp_path, divisor, swap):
    c = lambda name, v: numpy_helper.from_array(np.array(v, np.float32), name)  # noqa: E731
    nodes = [helper.make_node("Div", ["x", "s2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
             helper.make_node("Add", ["one", "e"] if swap else ["e", "one"], ["a"]),
             helper.make_node("Mul", ["a", "x"] if swap else ["x", "a"], ["m"]),
             helper.make_node("Mul", ["half", "m"] if swap else ["m", "half"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 50])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 50])],
                          [c("s2", divisor), c("one", 1.0), c("half", 0.5)])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)])
    x = (np.random.default_rng(5).standard_normal((3, 50)) * 3).astype(np.float32)
    got, want = run_both(tmp_path, model, {"x": x})
    np.testing.assert_allclose(got["y"], want["y"], rtol=0, atol=1e-5)


# The decomposed LayerNorm (opset 13 attribute axes, opset 18 input axes),
# and one reducing another axis (not fused).
@pytest.mark.parametrize("opset,axis", [(13, -1), (18, -1), (13, 2), (13, 1)])
def test_layernorm_pattern(tmp_path, opset, axis):
    rng = np.random.default_rng(opset + axis)
    n = 40
    inits = [numpy_helper.from_array(np.array(2.0, np.float32), "two"),
             numpy_helper.from_array(np.array(1e-5, np.float32), "eps"),
             numpy_helper.from_array((1 + 0.1 * rng.standard_normal(n)).astype(np.float32), "g"),
             numpy_helper.from_array((0.1 * rng.standard_normal(n)).astype(np.float32), "b")]

    def mean(i, o):
        if opset >= 18:
            return helper.make_node("ReduceMean", [i, "ax"], [o], keepdims=1)
        return helper.make_node("ReduceMean", [i], [o], axes=[axis], keepdims=1)

    if opset >= 18:
        inits.append(numpy_helper.from_array(np.array([axis], np.int64), "ax"))
    nodes = [mean("x", "m"), helper.make_node("Sub", ["x", "m"], ["d"]),
             helper.make_node("Pow", ["d", "two"], ["sq"]), mean("sq", "v"),
             helper.make_node("Add", ["v", "eps"], ["ve"]), helper.make_node("Sqrt", ["ve"], ["sd"]),
             helper.make_node("Div", ["d", "sd"], ["nn"]), helper.make_node("Mul", ["nn", "g"], ["s"]),
             helper.make_node("Add", ["b", "s"], ["y"])]
    shape = [2, 40, n] if axis != 1 else [2, n, n]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    x = (3 + rng.standard_normal(shape)).astype(np.float32)
    got, want = run_both(tmp_path, model, {"x": x})
    np.testing.assert_allclose(got["y"], want["y"], rtol=0, atol=1e-4)


def test_bert_load_never_holds_file_and_copy():
    """The 2-layer BERT's word embeddings (94 MB) sit misaligned in the file,
    so the load copies them; the copy is made a block at a time with each
    block's file pages given back, and, read only by Gather, turned back
    into a view into the file before the MatMul weights are packed. The
    load's peak stays well under twice the table (188 MB while the file's
    pages and the copy were resident together, 140 MB since)."""
    path = Path(build_bert.model_path(opset=17, layers=2))
    model = onnx.load(str(path), load_external_data=False)
    table = next(t for t in model.graph.initializer if "word_embeddings" in t.name)
    head = numpy_helper.to_array(table).tobytes()[:64]
    offset = path.read_bytes().find(head)
    assert offset > 0 and offset % 4 != 0, "the table is no longer misaligned in the file"
    r = check_ok(run_onyx("bench", path, "--iterations", "1", "--json",
                          *[a for n in ("input_ids", "token_type_ids", "attention_mask")
                            for a in ("--shape", f"{n}=1,128")]))
    doc = json.loads(r.stdout)
    # Resident once (with the rest of the load), not twice.
    assert doc["load_rss_mb"] < 1.75 * len(table.raw_data) / (1 << 20), doc["load_rss_mb"]
