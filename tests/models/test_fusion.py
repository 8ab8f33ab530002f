"""The load-time fusions of src/core/passes.c against onnxruntime: small
graphs built with onnx.helper, each shaped like what torch exports, run by
`onyx run` and by onnxruntime on the same random inputs. Every case also
checks the node count `onyx info` reports after the passes, so a fusion that
silently stops firing fails here too; the cases that must not fuse (a value
read elsewhere, a sum that broadcasts) check that the result is still right."""
import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from model_helpers import run_onyx  # noqa: F401
from model_helpers import onyx_bin  # noqa: F401  (fixture)

C, H, W = 8, 9, 7  # channels and a spatial size that is not a multiple of any vector width


def conv(name, x, y, cin=C, cout=C, k=3, seed=0):
    """A Conv node and its initializers (weights and bias)."""
    rng = np.random.default_rng(seed)
    w = numpy_helper.from_array((rng.standard_normal((cout, cin, k, k)) * 0.3).astype(np.float32),
                                f"{name}_w")
    b = numpy_helper.from_array(rng.standard_normal(cout).astype(np.float32), f"{name}_b")
    node = helper.make_node("Conv", [x, w.name, b.name], [y], name=name, pads=[k // 2] * 4)
    return node, [w, b]


def model(nodes, inits, inputs, outputs):
    g = helper.make_graph(nodes, "fusion", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def tensor(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def run_both(onyx_bin, tmp_path, m, feeds):
    """(onyx outputs, onnxruntime outputs, node count after onyx's passes)."""
    import onnxruntime as ort
    path = tmp_path / "model.onnx"
    onnx.save(m, path)
    args = []
    for name, value in feeds.items():
        np.save(tmp_path / f"{name}.npy", value)
        args += ["-i", f"{name}={tmp_path / f'{name}.npy'}"]
    out = tmp_path / "out"
    r = run_onyx(onyx_bin, "run", path, *args, "-o", out)
    assert r.returncode == 0, r.stderr
    names = [o.name for o in m.graph.output]
    got = [np.load(out / f"{n}.npy") for n in names]
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(names, feeds)
    info = run_onyx(onyx_bin, "info", path)
    assert info.returncode == 0, info.stderr
    nodes = int(re.search(r"^nodes:\s+(\d+)", info.stdout, re.M).group(1))
    return got, want, nodes


def check(got, want):
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


def inputs(*shapes, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


@pytest.mark.parametrize("order", ["x_first", "sigmoid_first"])
def test_silu_fuses_into_conv(order, onyx_bin, tmp_path):
    n1, i1 = conv("c1", "x", "a")
    sig = helper.make_node("Sigmoid", ["a"], ["s"])
    mul = helper.make_node("Mul", ["a", "s"] if order == "x_first" else ["s", "a"], ["y"])
    m = model([n1, sig, mul], i1, [tensor("x", [1, C, H, W])], [tensor("y", [1, C, H, W])])
    (x,) = inputs((1, C, H, W))
    got, want, nodes = run_both(onyx_bin, tmp_path, m, {"x": x})
    check(got, want)
    assert nodes == 1


def test_silu_with_a_third_reader_is_not_fused(onyx_bin, tmp_path):
    n1, i1 = conv("c1", "x", "a")
    nodes = [n1, helper.make_node("Sigmoid", ["a"], ["s"]), helper.make_node("Mul", ["a", "s"], ["y"]),
             helper.make_node("Neg", ["a"], ["z"])]
    m = model(nodes, i1, [tensor("x", [1, C, H, W])],
              [tensor("y", [1, C, H, W]), tensor("z", [1, C, H, W])])
    (x,) = inputs((1, C, H, W))
    got, want, n = run_both(onyx_bin, tmp_path, m, {"x": x})
    check(got, want)
    assert n == 4


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("relu", [True, False])
def test_residual_add_fuses_into_conv(k, relu, onyx_bin, tmp_path):
    """ResNet's block ending: Relu(Add(Conv(h), shortcut)), the shortcut
    being a second Conv (downsample) computed after the first."""
    n1, i1 = conv("c1", "x", "h", k=k, seed=1)
    n2, i2 = conv("c2", "h", "a", k=k, seed=2)
    n3, i3 = conv("down", "x", "r", k=1, seed=3)
    nodes = [n1, n2, n3, helper.make_node("Add", ["a", "r"], ["s" if relu else "y"])]
    if relu:
        nodes.append(helper.make_node("Relu", ["s"], ["y"]))
    m = model(nodes, i1 + i2 + i3, [tensor("x", [2, C, H, W])], [tensor("y", [2, C, H, W])])
    (x,) = inputs((2, C, H, W))
    got, want, n = run_both(onyx_bin, tmp_path, m, {"x": x})
    check(got, want)
    assert n == 3


@pytest.mark.parametrize("shape", [[1, C, 1, 1], [W], [2, C, H, W]])
def test_residual_add_that_broadcasts(shape, onyx_bin, tmp_path):
    """The sum is not the convolution's shape: a per-channel term, a trailing
    vector, and one that makes the result larger than the convolution."""
    n1, i1 = conv("c1", "x", "a")
    nodes = [n1, helper.make_node("Add", ["r", "a"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    out = [2, C, H, W] if shape[0] == 2 else [1, C, H, W]
    m = model(nodes, i1, [tensor("x", [1, C, H, W]), tensor("r", shape)], [tensor("y", out)])
    x, r = inputs((1, C, H, W), tuple(shape))
    got, want, _ = run_both(onyx_bin, tmp_path, m, {"x": x, "r": r})
    check(got, want)


def test_add_relu_without_conv_fuses_through_inferred_types(onyx_bin, tmp_path):
    """Neither the Add's output nor its inputs' producers declare a type:
    the pass infers float32 through Transpose and fuses the Relu."""
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 1, 3, 2]),
             helper.make_node("Add", ["t", "b"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    m = model(nodes, [], [tensor("x", [1, C, W, H]), tensor("b", [1, C, H, W])],
              [tensor("y", [1, C, H, W])])
    x, b = inputs((1, C, W, H), (1, C, H, W))
    got, want, n = run_both(onyx_bin, tmp_path, m, {"x": x, "b": b})
    check(got, want)
    assert n == 2


def test_integer_add_relu_is_left_alone(onyx_bin, tmp_path):
    """Relu over int32: the fused activations are float32 only."""
    nodes = [helper.make_node("Add", ["x", "x"], ["s"]), helper.make_node("Relu", ["s"], ["y"])]
    m = model(nodes, [], [helper.make_tensor_value_info("x", TensorProto.INT32, [5])],
              [helper.make_tensor_value_info("y", TensorProto.INT32, [5])])
    x = np.array([-3, -1, 0, 2, 7], dtype=np.int32)
    got, want, n = run_both(onyx_bin, tmp_path, m, {"x": x})
    np.testing.assert_array_equal(got[0], want[0])
    assert n == 2


# Constant folding: nodes whose inputs are all constants run once at load.

def const_node(name, value):
    value = numpy_helper.from_array(np.asarray(value))
    return helper.make_node("Constant", [], [name], value=value)


def test_transposed_weight_folds_into_matmul(onyx_bin, tmp_path):
    """tf2onnx's Transpose of a weight: folded, the MatMul sees a constant
    weight (prepacked) and absorbs the bias Add."""
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.standard_normal((6, 5)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(6).astype(np.float32), "b")
    nodes = [helper.make_node("Transpose", ["w"], ["wt"], perm=[1, 0]),
             helper.make_node("MatMul", ["x", "wt"], ["mm"]),
             helper.make_node("Add", ["mm", "b"], ["y"])]
    m = model(nodes, [w, b], [tensor("x", [3, 5])], [tensor("y", [3, 6])])
    (x,) = inputs((3, 5))
    got, want, n = run_both(onyx_bin, tmp_path, m, {"x": x})
    check(got, want)
    assert n == 1


@pytest.mark.parametrize("bn", [False, True])
def test_dequantized_weight_folds_into_conv(bn, onyx_bin, tmp_path):
    """A QDQ model's DequantizeLinear of int8 weights (per channel): folded
    into a float weight, so Conv prepacks it, a BatchNormalization after it
    folds into that weight, and the Relu fuses."""
    rng = np.random.default_rng(4)
    wq = numpy_helper.from_array(rng.integers(-128, 128, (C, C, 3, 3)).astype(np.int8), "wq")
    scale = numpy_helper.from_array((rng.random(C) * 0.02 + 0.01).astype(np.float32), "scale")
    zp = numpy_helper.from_array(np.zeros(C, np.int8), "zp")
    b = numpy_helper.from_array(rng.standard_normal(C).astype(np.float32), "b")
    inits = [wq, scale, zp, b]
    nodes = [helper.make_node("DequantizeLinear", ["wq", "scale", "zp"], ["w"], axis=0),
             helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["n" if bn else "c"], ["y"])]
    if bn:
        for name, v in [("s", rng.random(C) + 0.5), ("bb", rng.standard_normal(C)),
                        ("mean", rng.standard_normal(C)), ("var", rng.random(C) + 0.5)]:
            inits.append(numpy_helper.from_array(v.astype(np.float32), name))
        nodes.insert(2, helper.make_node("BatchNormalization", ["c", "s", "bb", "mean", "var"],
                                         ["n"]))
    m = model(nodes, inits, [tensor("x", [1, C, H, W])], [tensor("y", [1, C, H, W])])
    (x,) = inputs((1, C, H, W))
    got, want, n = run_both(onyx_bin, tmp_path, m, {"x": x})
    check(got, want)
    assert n == 1


def test_constant_shape_chain_folds_into_reshape(onyx_bin, tmp_path):
    """torch's Constant -> Unsqueeze -> Concat chain computing a Reshape's
    target shape: only the Reshape and the Relu after it are left."""
    axes = numpy_helper.from_array(np.array([0], np.int64), "axes")
    lead = numpy_helper.from_array(np.array([2], np.int64), "lead")
    nodes = [const_node("three", np.int64(3)), const_node("rest", np.array([-1], np.int64)),
             helper.make_node("Unsqueeze", ["three", "axes"], ["u"]),
             helper.make_node("Concat", ["lead", "u", "rest"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["r"]),
             helper.make_node("Relu", ["r"], ["y"])]
    m = model(nodes, [axes, lead], [tensor("x", [2, 12])], [tensor("y", [2, 3, 4])])
    (x,) = inputs((2, 12))
    got, want, n = run_both(onyx_bin, tmp_path, m, {"x": x})
    check(got, want)
    assert n == 2


def test_random_and_huge_expand_are_not_folded(onyx_bin, tmp_path):
    """RandomUniform is never folded (its draws belong to the run), nor an
    Expand that would turn 4 bytes into 8 MB of model constants."""
    zero = numpy_helper.from_array(np.zeros(1, np.float32), "zero")
    one = numpy_helper.from_array(np.ones(1, np.float32), "one")
    big = numpy_helper.from_array(np.array([1 << 21], np.int64), "big")
    nodes = [helper.make_node("RandomUniform", [], ["r"], shape=[2, 3]),
             helper.make_node("Mul", ["r", "zero"], ["r0"]),
             helper.make_node("Add", ["x", "r0"], ["y"]),
             helper.make_node("Expand", ["one", "big"], ["e"]),
             helper.make_node("ReduceSum", ["e"], ["total"], keepdims=0)]
    m = model(nodes, [zero, one, big], [tensor("x", [2, 3])],
              [tensor("y", [2, 3]), tensor("total", [])])
    (x,) = inputs((2, 3))
    got, want, n = run_both(onyx_bin, tmp_path, m, {"x": x})
    check(got, want)
    assert n == 5

