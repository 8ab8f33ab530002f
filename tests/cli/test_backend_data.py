"""`onyx run` on ONNX backend test cases, end to end through the .pb path:
the case's input_*.pb files are bound positionally (in graph input order),
outputs are written with --format pb and compared with output_*.pb. This
exercises TensorProto, SequenceProto and OptionalProto decoding/encoding
and the file naming, on data the ONNX project ships."""
import os
import pathlib

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from conftest import check_ok, run_onyx

NODE_DATA = pathlib.Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"

CASES = [
    "test_add",
    "test_identity",
    "test_identity_sequence",
    "test_split_to_sequence_1",
    "test_sequence_insert_at_back",
    "test_optional_get_element_tensor",
    "test_optional_has_element_optional_input",
    "test_optional_has_element_tensor_input",
    "test_cast_FLOAT_to_BFLOAT16",
    "test_string_concat_utf8",
    "test_equal_string",
    "test_identity_opt",
]


def sanitize(name):
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def read_value(path, type_proto):
    """The value in a .pb file, read as the proto the type calls for."""
    kind = type_proto.WhichOneof("value")
    data = path.read_bytes()
    if kind == "tensor_type":
        t = onnx.TensorProto()
        t.ParseFromString(data)
        return numpy_helper.to_array(t)
    if kind == "sequence_type":
        s = onnx.SequenceProto()
        s.ParseFromString(data)
        return numpy_helper.to_list(s)
    if kind == "optional_type":
        o = onnx.OptionalProto()
        o.ParseFromString(data)
        return ("optional", numpy_helper.to_optional(o))
    raise AssertionError(f"unexpected output type {kind}")


def assert_same(got, want, where):
    if isinstance(want, tuple):
        assert isinstance(got, tuple), where
        got, want = got[1], want[1]
        if want is None:
            assert got is None, where
            return
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for g, w in zip(got, want):
            assert_same(g, w, where)
        return
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, where
    if want.dtype.kind not in "biufcUSO":
        # ml_dtypes types (bfloat16, float8): compare as float32, NaN == NaN.
        got, want = got.astype(np.float32), want.astype(np.float32)
    if want.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7, err_msg=where)
    else:
        np.testing.assert_array_equal(got, want, err_msg=where)


@pytest.mark.parametrize("case", CASES)
def test_backend_case(case, tmp_path):
    d = NODE_DATA / case
    if not d.exists():
        pytest.skip(f"{case} is not in this onnx version's test data")
    model = onnx.load(str(d / "model.onnx"))
    data = d / "test_data_set_0"
    inputs = sorted(data.glob("input_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
    args = ["run", d / "model.onnx", "-o", tmp_path, "--format", "pb"]
    for p in inputs:
        args += ["-i", p]
    check_ok(run_onyx(*args))
    for k, out in enumerate(model.graph.output):
        want = read_value(data / f"output_{k}.pb", out.type)
        got = read_value(tmp_path / f"{sanitize(out.name)}.pb", out.type)
        assert_same(got, want, f"{case} output {out.name}")
