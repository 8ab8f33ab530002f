"""Reductions over an empty axis (src/ops/reduce.c) through `onyx run`
against onnxruntime: the reduced set is empty while the output is not. With
the empty axis innermost, the row length was 0 and the count of rows a
division by zero (SIGFPE; found by fuzzing, tests/fuzz/fuzz_model.c)."""
import numpy as np
import pytest
from onnx import TensorProto, helper

from conftest import check_ok, ort_run, run_onyx, save_model

OPS = ["ReduceSum", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceProd", "ReduceMean",
       "ReduceLogSumExp", "ReduceMax", "ReduceMin"]


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("shape,axis", [((3, 0), 1), ((2, 0, 4), 1), ((2, 3, 0), 2)])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_over_an_empty_axis(tmp_path, op, shape, axis, keepdims):
    node = helper.make_node(op, ["x", "axes"], ["y"], keepdims=keepdims)
    out = [1 if k == axis else d for k, d in enumerate(shape) if keepdims or k != axis]
    g = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out)],
        initializer=[helper.make_tensor("axes", TensorProto.INT64, [1], [axis])])
    path = save_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]),
                      tmp_path / "m.onnx")
    x = np.zeros(shape, np.float32)
    np.save(tmp_path / "x.npy", x)
    check_ok(run_onyx("run", path, "-i", f"x={tmp_path / 'x.npy'}", "-o", tmp_path / "out"))
    got, want = np.load(tmp_path / "out" / "y.npy"), ort_run(path, {"x": x})["y"]
    assert got.shape == want.shape
    if op == "ReduceMean":
        # The spec leaves the mean of an empty set undefined; onyx gives
        # numpy's NaN (0 / 0), onnxruntime writes 0.
        want = np.mean(x, axis=axis, keepdims=bool(keepdims))
    np.testing.assert_array_equal(got, want)
