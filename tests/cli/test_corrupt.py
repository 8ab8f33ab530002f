"""Corrupt and invalid models: `onyx run` (and `onyx info` where the file cannot
even be parsed) must exit with a normal non-zero status (1..125, not a signal)
and one 'onyx: error: ...' line on stderr, never crash, also under the
ASan/UBSan binary when ONYX_ASAN is set.

Each model is built here with onnx.helper or by editing bytes, serialized
without onnx.checker (which would refuse most of them), and checked to be
rejected by onnxruntime too, so the corpus is known to be invalid."""
import os
import pathlib
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from conftest import check_error, run_onyx

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import build_models  # noqa: E402  (tools/ is not a package)

X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])
Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)


# ----------------------------------------------------------------------------
# The corpus: name -> (function returning the model's bytes, fragments the
# error line must contain). Every model has one float input x [1, 1, 4, 4].


def model_bytes(nodes, inits=(), outputs=(Y,), opsets=(("", 17),), ir_version=8, inputs=(X,)):
    graph = helper.make_graph(list(nodes), "corrupt", list(inputs), list(outputs), list(inits))
    model = helper.make_model(graph, ir_version=ir_version,
                              opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])
    return model.SerializeToString()


def weight(dims=(1, 1, 3, 3), **fields):
    """A float initializer "the_weight"; fields override what makes it
    consistent."""
    t = onnx.TensorProto(name="the_weight", data_type=TensorProto.FLOAT, dims=list(dims))
    if not fields:
        t.raw_data = np.ones(dims, np.float32).tobytes()
    for k, v in fields.items():
        if k == "float_data":
            t.float_data.extend(v)
        elif k == "external":
            t.data_location = TensorProto.EXTERNAL
            for key, value in v.items():
                t.external_data.add(key=key, value=value)
        else:
            setattr(t, k, v)
    return t


def conv(inputs=("x", "the_weight"), **attrs):
    return helper.make_node("Conv", list(inputs), ["y"], name="the_conv", **attrs)


def cyclic():
    return model_bytes([helper.make_node("Add", ["x", "b"], ["a"], name="n1"),
                        helper.make_node("Relu", ["a"], ["b"], name="n2"),
                        helper.make_node("Identity", ["b"], ["y"], name="n3")])


def huge_constant_of_shape(dims):
    """x + ConstantOfShape(dims): with [2^31, 2^31, 4, 4] the element count
    overflows int64; with [2^20, 2^20, 4, 4] it is 64 TiB of float, more than
    any machine (and ASan's allocator) gives. The engine must refuse before
    allocating."""
    shape = helper.make_tensor("shape", TensorProto.INT64, [4], dims)
    return model_bytes([helper.make_node("ConstantOfShape", ["shape"], ["c"]),
                        helper.make_node("Add", ["x", "c"], ["y"])], [shape])


def bad_attribute_strides():
    node = conv()
    node.attribute.append(helper.make_attribute("strides", "2"))  # a STRING, not INTS
    return model_bytes([node], [weight()])


def if_without_else():
    cond = helper.make_tensor("cond", TensorProto.BOOL, [], [True])
    then = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)])
    return model_bytes([helper.make_node("If", ["cond"], ["y"], then_branch=then)], [cond])


def with_external(tmp, location, length=None):
    (tmp / "weights.bin").write_bytes(np.ones(9, np.float32).tobytes())
    ext = {"location": location}
    if length is not None:
        ext["length"] = str(length)
    return model_bytes([conv()], [weight(external=ext)])


CASES = {
    # initializers whose data does not match their header
    "raw_data_short": (lambda t: model_bytes([conv()], [weight(raw_data=b"\0" * 20)]), ["the_weight"]),
    "raw_data_missing": (lambda t: model_bytes([conv()], [weight(data_type=1)]), ["the_weight"]),
    "float_data_short": (lambda t: model_bytes([conv()], [weight(float_data=[1.0] * 5)]), ["the_weight"]),
    "negative_dim": (lambda t: model_bytes([conv()], [weight(dims=(-1, 1, 3, 3),
                                                             raw_data=b"\0" * 36)]), ["the_weight"]),
    "dims_overflow": (lambda t: model_bytes(
        [conv()], [weight(dims=(2 ** 40, 2 ** 40, 3, 3), raw_data=b"\0" * 36)]), ["the_weight"]),
    "undefined_dtype": (lambda t: model_bytes([conv()], [weight(data_type=0,
                                                                raw_data=b"\0" * 36)]), ["the_weight"]),
    "unknown_dtype": (lambda t: model_bytes([conv()], [weight(data_type=999,
                                                              raw_data=b"\0" * 36)]), ["the_weight"]),
    "external_missing_file": (lambda t: with_external(t, "nosuch.bin"), ["nosuch.bin"]),
    "external_too_long": (lambda t: with_external(t, "weights.bin", 360), ["the_weight"]),
    "external_escapes_dir": (lambda t: with_external(t, "../../../../../../etc/passwd"), ["the_weight"]),
    # graph structure
    "dangling_input": (lambda t: model_bytes([helper.make_node("Relu", ["nowhere"], ["y"])]),
                       ["nowhere"]),
    "dangling_output": (lambda t: model_bytes(
        [helper.make_node("Relu", ["x"], ["r"])],
        outputs=[helper.make_tensor_value_info("ghost", TensorProto.FLOAT, None)]), ["ghost"]),
    "cycle": (lambda t: cyclic(), []),
    "self_loop": (lambda t: model_bytes([helper.make_node("Add", ["x", "y"], ["y"])]), []),
    "two_producers": (lambda t: model_bytes([helper.make_node("Relu", ["x"], ["y"]),
                                             helper.make_node("Neg", ["x"], ["y"])]), ["y"]),
    # operators and opsets
    "unknown_op": (lambda t: model_bytes([helper.make_node("NoSuchOp", ["x"], ["y"])]),
                   ["NoSuchOp"]),
    "unknown_domain": (lambda t: model_bytes(
        [helper.make_node("Foo", ["x"], ["y"], domain="com.example")],
        opsets=[("", 17), ("com.example", 1)]), ["Foo"]),
    "opset_99": (lambda t: model_bytes([helper.make_node("Relu", ["x"], ["y"])],
                                       opsets=[("", 99)]), ["99"]),
    "opset_huge": (lambda t: model_bytes([helper.make_node("Relu", ["x"], ["y"])],
                                         opsets=[("", 2 ** 62)]), []),
    "no_opset_import": (lambda t: model_bytes([helper.make_node("Relu", ["x"], ["y"])],
                                              opsets=[]), []),
    # attributes
    "strides_as_string": (lambda t: bad_attribute_strides(), ["strides"]),
    "strides_zero": (lambda t: model_bytes([conv(strides=[0, 0])], [weight()]), ["strides"]),
    "group_zero": (lambda t: model_bytes([conv(group=0)], [weight()]), ["group"]),
    "kernel_shape_mismatch": (lambda t: model_bytes([conv(kernel_shape=[5, 5])], [weight()]),
                              ["kernel_shape"]),
    "pads_wrong_length": (lambda t: model_bytes([conv(pads=[1, 1, 1])], [weight()]), ["pads"]),
    "channels_mismatch": (lambda t: model_bytes(
        [conv()], [weight(dims=(1, 2, 3, 3), raw_data=b"\0" * 72)]), []),
    "missing_required_attribute": (lambda t: model_bytes(
        [helper.make_node("Cast", ["x"], ["y"])]), ["to"]),
    "if_without_else_branch": (lambda t: if_without_else(), ["else_branch"]),
    # arity
    "relu_two_inputs": (lambda t: model_bytes([helper.make_node("Relu", ["x", "x"], ["y"])]),
                        ["Relu"]),
    "add_one_input": (lambda t: model_bytes([helper.make_node("Add", ["x"], ["y"])]), ["Add"]),
    "conv_one_input": (lambda t: model_bytes([conv(inputs=["x"])]), ["Conv"]),
    "relu_two_outputs": (lambda t: model_bytes([helper.make_node("Relu", ["x"], ["y", "z"])]),
                         ["Relu"]),
    # types and shapes
    "type_mismatch": (lambda t: model_bytes(
        [helper.make_node("Add", ["x", "i"], ["y"])],
        [helper.make_tensor("i", TensorProto.INT64, [1], [1])]), []),
    "reshape_wrong_count": (lambda t: model_bytes(
        [helper.make_node("Reshape", ["x", "s"], ["y"])],
        [helper.make_tensor("s", TensorProto.INT64, [2], [3, 5])]), []),
    "size_overflow": (lambda t: huge_constant_of_shape([2 ** 31, 2 ** 31, 4, 4]), []),
    "size_64tib": (lambda t: huge_constant_of_shape([2 ** 20, 2 ** 20, 4, 4]), []),
}


def ort_rejects(path, feeds):
    """True when onnxruntime refuses to load or run the model."""
    import onnxruntime as ort
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        sess.run(None, feeds)
    except Exception:  # noqa: BLE001 - any refusal will do
        return True
    return False


# ----------------------------------------------------------------------------
# Binaries and checks


@pytest.fixture(params=["onyx", "asan"])
def binary(request):
    """The release binary, and the sanitizer one when ONYX_ASAN names it."""
    if request.param == "asan":
        if not os.environ.get("ONYX_ASAN"):
            pytest.skip("ONYX_ASAN not set")
        return os.environ["ONYX_ASAN"]
    return os.environ.get("ONYX", str(ROOT / "build" / "onyx"))


def check_rejected(r, *fragments):
    """A clean refusal: a normal exit status 1..125 (a negative status is a
    signal; 126+ means the shell or a crash handler), no sanitizer report,
    and one 'onyx: error:' line naming each fragment."""
    what = ("success, expected a refusal" if r.returncode == 0 else
            f"killed by signal {-r.returncode}" if r.returncode < 0 else "not a normal exit")
    assert 1 <= r.returncode <= 125, (f"exit status {r.returncode} ({what})\n"
                                      f"stdout:\n{r.stdout[-2000:]}\nstderr:\n{r.stderr[-4000:]}")
    for marker in ("Sanitizer", "runtime error:", "LeakSanitizer"):
        assert marker not in r.stderr, f"sanitizer report:\n{r.stderr[-4000:]}"
    return check_error(r, *fragments)


@pytest.fixture(scope="module")
def x_npy(tmp_path_factory):
    path = tmp_path_factory.mktemp("corrupt") / "x.npy"
    np.save(path, np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4))
    return path


# ----------------------------------------------------------------------------
# Tests


def test_control_model(binary, tmp_path, x_npy):
    """The corpus's starting point (x -> Conv with a 3x3 weight) is valid: both
    engines run it and agree, so each corruption below is what gets refused."""
    path = tmp_path / "control.onnx"
    path.write_bytes(model_bytes([conv()], [weight()]))
    x = np.load(x_npy)
    assert not ort_rejects(path, {"x": x})
    r = run_onyx("run", path, "-i", f"x={x_npy}", "-o", tmp_path / "out", binary=binary)
    assert r.returncode == 0, r.stderr
    want = np.array([[x[0, 0, i:i + 3, j:j + 3].sum() for j in range(2)] for i in range(2)],
                    np.float32).reshape(1, 1, 2, 2)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "y.npy"), want, rtol=1e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_onnxruntime_rejects_corpus(case, tmp_path):
    """The corpus itself: onnxruntime refuses every model."""
    make, _ = CASES[case]
    path = tmp_path / f"{case}.onnx"
    path.write_bytes(make(tmp_path))
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    assert ort_rejects(path, {"x": x}), f"onnxruntime accepts {case}"


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_model(case, binary, tmp_path, x_npy):
    make, fragments = CASES[case]
    # Run in tmp_path on "model.onnx": the error line's fragments must come from
    # onyx, not from a path that holds the test's name.
    (tmp_path / "model.onnx").write_bytes(make(tmp_path))
    r = run_onyx("run", "model.onnx", "-i", f"x={x_npy}", "-o", "out", binary=binary,
                 cwd=tmp_path)
    check_rejected(r, *fragments)


# A real model (SqueezeNet 1.1, 5 MB) cut at points inside its graph field,
# inside its first initializer's header, and right after the graph (which
# leaves a well-formed ModelProto without opset_import).

def graph_span(data):
    """(start, end) byte offsets of ModelProto.graph's payload in data."""
    pos = 0
    while pos < len(data):
        tag, pos = varint(data, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            _, pos = varint(data, pos)
        elif wire == 2:
            n, pos = varint(data, pos)
            if field == 7:
                return pos, pos + n
            pos += n
        else:
            raise ValueError(f"unexpected wire type {wire}")
    raise ValueError("no graph field")


def varint(data, pos):
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, pos


@pytest.fixture(scope="module")
def squeezenet():
    path = build_models.model_path("squeezenet1_1")
    data = pathlib.Path(path).read_bytes()
    return data, graph_span(data)


TRUNCATIONS = ["1", "2", "3", "graph+1", "graph+16", "graph+100", "10%", "33%", "50%", "77%",
               "99%", "graph_end-1", "graph_end"]


def cut_point(spec, data, span):
    start, end = span
    if spec.endswith("%"):
        return start + (end - start) * int(spec[:-1]) // 100
    if spec.startswith("graph+"):
        return start + int(spec[6:])
    if spec == "graph_end-1":
        return end - 1
    if spec == "graph_end":
        return end
    return int(spec)


@pytest.mark.parametrize("spec", TRUNCATIONS)
def test_truncated_model(spec, squeezenet, binary, tmp_path):
    data, span = squeezenet
    n = cut_point(spec, data, span)
    assert 0 < n < len(data)
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[:n])
    x = tmp_path / "x.npy"
    np.save(x, build_models.test_input(1))
    check_rejected(run_onyx("run", path, "-i", f"input={x}", "-o", tmp_path / "out",
                            binary=binary))
    if spec != "graph_end" and spec != "2":  # both parse: no opset_import / no graph
        check_rejected(run_onyx("info", path, binary=binary), "cut.onnx")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_garbage_bytes(seed, binary, tmp_path, x_npy):
    """Random bytes, and random bytes behind a valid-looking ModelProto start
    (ir_version 8, then a graph field claiming 1 MB)."""
    junk = np.random.default_rng(seed).integers(0, 256, 1 << 14, dtype=np.uint8).tobytes()
    for i, data in enumerate([junk, b"\x08\x08\x3a\x80\x80\x40" + junk]):
        path = tmp_path / f"garbage{i}.onnx"
        path.write_bytes(data)
        check_rejected(run_onyx("run", path, "-i", f"x={x_npy}", "-o", tmp_path / "out",
                                binary=binary))
        check_rejected(run_onyx("info", path, binary=binary), f"garbage{i}.onnx")


def test_truncation_points_are_distinct(squeezenet):
    data, span = squeezenet
    points = [cut_point(s, data, span) for s in TRUNCATIONS]
    assert len(set(points)) == len(points) and span[1] < len(data)
