"""Bad command lines and hostile files: every failure exits non-zero with one
'onyx: error: ...' line on stderr, and never crashes (also under ASan when
ONYX_ASAN is set)."""
import struct

import numpy as np
import pytest
from onnx import TensorProto, helper

import models
from conftest import check_error, check_ok, run_onyx, save_model


@pytest.fixture
def add(tmp_path):
    path = save_model(models.pair_model(), tmp_path / "add.onnx")
    np.save(tmp_path / "a.npy", np.ones((2, 3), np.float32))
    return path


def npy_bytes(header, data=b"", version=(1, 0)):
    """A .npy file with a hand-written header dict."""
    h = header.encode("latin1") + b"\n"
    if version[0] == 1:
        pre = b"\x93NUMPY" + bytes(version) + struct.pack("<H", len(h))
    else:
        pre = b"\x93NUMPY" + bytes(version) + struct.pack("<I", len(h))
    return pre + h + data


def test_truncated_model(tmp_path, add, onyx_bin):
    data = add.read_bytes()
    bad = tmp_path / "trunc.onnx"
    bad.write_bytes(data[: len(data) // 2])
    check_error(run_onyx("run", bad, "-i", tmp_path / "a.npy", binary=onyx_bin), "trunc.onnx")
    check_error(run_onyx("info", bad, binary=onyx_bin), "trunc.onnx")


def test_garbage_model(tmp_path, onyx_bin):
    bad = tmp_path / "garbage.onnx"
    bad.write_bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    check_error(run_onyx("info", bad, binary=onyx_bin), "garbage.onnx")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    check_error(run_onyx("info", empty, binary=onyx_bin), "empty.onnx")


def test_missing_model_file(tmp_path, onyx_bin):
    check_error(run_onyx("info", tmp_path / "nope.onnx", binary=onyx_bin), "nope.onnx")


def test_missing_input_file(tmp_path, add, onyx_bin):
    r = run_onyx("run", add, "-i", tmp_path / "missing.npy", "-i", tmp_path / "a.npy",
                 binary=onyx_bin)
    check_error(r, "missing.npy")


def test_wrong_dtype_npy(tmp_path, add, onyx_bin):
    np.save(tmp_path / "i.npy", np.ones((2, 3), np.int64))
    r = run_onyx("run", add, "-i", tmp_path / "i.npy", "-i", tmp_path / "a.npy", binary=onyx_bin)
    check_error(r, "'a'", "float", "int64")


def test_wrong_fixed_dim(tmp_path, add, onyx_bin):
    np.save(tmp_path / "w.npy", np.ones((2, 4), np.float32))
    r = run_onyx("run", add, "-i", tmp_path / "w.npy", "-i", tmp_path / "a.npy", binary=onyx_bin)
    check_error(r, "float[N,3]", "float[2,4]")


@pytest.mark.parametrize("content, fragment", [
    (b"", "magic"),
    (b"not a numpy file at all", "magic"),
    (b"\x93NUMPY\x01\x00\xff\xff{'descr'", "truncated"),
    (b"\x93NUMPY\x09\x00\x10\x00" + b" " * 16, "version"),
    (npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", b"\0" * 8),
     "truncated"),
    (npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", b"\0" * 24),
     "fortran"),
    (npy_bytes("{'descr': '<f4', 'shape': (2, 3), }", b"\0" * 24), "fortran_order"),
    (npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}"), "'x'"),
    (npy_bytes("{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3), }"), "header"),
    (npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }"), "header"),
    (npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, "
               "4294967296), }"), "too many"),
    (npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }"),
     "header"),
    (npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }"),
     "dimensions"),
    (npy_bytes("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }"), "object"),
    (npy_bytes("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }"),
     "structured"),
    (npy_bytes("{'descr': '<f3', 'fortran_order': False, 'shape': (2,), }"), "descr"),
    (npy_bytes("{'descr': '<M8[s]', 'fortran_order': False, 'shape': (2,), }"), "descr"),
])
def test_bad_npy_input(tmp_path, content, fragment, onyx_bin):
    model = save_model(models.identity_model(TensorProto.FLOAT, None), tmp_path / "m.onnx",
                       check=False)  # unknown rank: legal, but the checker objects
    bad = tmp_path / "bad.npy"
    bad.write_bytes(content)
    check_error(run_onyx("run", model, "-i", bad, "-o", tmp_path, binary=onyx_bin),
                "bad.npy", fragment)


def test_bad_pb_input(tmp_path, onyx_bin):
    model = save_model(models.identity_model(TensorProto.FLOAT, None), tmp_path / "m.onnx",
                       check=False)  # unknown rank: legal, but the checker objects
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"\x0a\xff\xff\xff\xff\x0f garbage")
    check_error(run_onyx("run", model, "-i", bad, "-o", tmp_path, binary=onyx_bin), "bad.pb")


def test_unknown_input_name(tmp_path, add, onyx_bin):
    r = run_onyx("run", add, "-i", f"nosuch={tmp_path / 'a.npy'}", binary=onyx_bin)
    check_error(r, "no input named 'nosuch'", "a, b")


def test_positional_binding_skips_named_inputs(tmp_path, add):
    np.save(tmp_path / "b.npy", np.full((2, 3), 2, np.float32))
    # The positional file comes first but b is named later: it binds to a.
    check_ok(run_onyx("run", add, "-i", tmp_path / "a.npy", "-i", f"b={tmp_path / 'b.npy'}",
                      "-o", tmp_path))
    assert np.load(tmp_path / "c.npy").tolist() == [[1] * 3] * 2
    assert np.load(tmp_path / "d.npy").tolist() == [[2] * 3] * 2
    # Positional first, then the same input by name: a is taken by name, so
    # the positional file binds to b.
    check_ok(run_onyx("run", add, "-i", tmp_path / "b.npy", "-i", f"a={tmp_path / 'a.npy'}",
                      "-o", tmp_path))
    assert np.load(tmp_path / "d.npy").tolist() == [[2] * 3] * 2


def test_input_name_containing_equals(tmp_path):
    model = models.make(
        [helper.make_node("Identity", ["k=v"], ["y"])],
        [helper.make_tensor_value_info("k=v", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = save_model(model, tmp_path / "m.onnx")
    np.save(tmp_path / "x.npy", np.array([4], np.float32))
    check_ok(run_onyx("run", path, "-i", f"k=v={tmp_path / 'x.npy'}", "-o", tmp_path))
    assert np.load(tmp_path / "y.npy").tolist() == [4]


def test_input_given_twice_and_too_many(tmp_path, add):
    a = tmp_path / "a.npy"
    check_error(run_onyx("run", add, "-i", f"a={a}", "-i", f"a={a}"), "twice")
    check_error(run_onyx("run", add, "-i", a, "-i", a, "-i", a), "too many inputs")


def test_missing_required_input(tmp_path, add):
    check_error(run_onyx("run", add, "-i", tmp_path / "a.npy", "-o", tmp_path), "'b'")


def test_unknown_extension(tmp_path, add):
    (tmp_path / "a.txt").write_text("1 2 3")
    check_error(run_onyx("run", add, "-i", tmp_path / "a.txt"), ".npy or .pb")


@pytest.mark.parametrize("args, fragment", [
    (["run"], "no MODEL"),
    (["run", "m.onnx", "--format", "csv"], "npy or pb"),
    (["run", "m.onnx", "--threads", "-1"], "--threads"),
    (["run", "m.onnx", "--threads"], "needs a value"),
    (["run", "m.onnx", "--bogus"], "unknown option"),
    (["info"], "no MODEL"),
    (["info", "a.onnx", "b.onnx"], "more than one"),
    (["frobnicate"], "unknown command"),
])
def test_usage_errors_exit_2(args, fragment):
    r = run_onyx(*args)
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines()[0].startswith("onyx: error: ")
    assert fragment in r.stderr.splitlines()[0]


@pytest.mark.parametrize("cmd", [["info"], ["run"], ["predict", "img.png"], ["bench"]])
def test_missing_model_file(cmd):
    r = run_onyx(cmd[0], "no-such-model.onnx", *cmd[1:])
    assert 1 <= r.returncode <= 2, r.stderr
    assert len(r.stderr.splitlines()) == 1
    assert r.stderr.startswith("onyx: error: ")


def test_unwritable_output_dir(tmp_path, add):
    (tmp_path / "file").write_text("")
    check_error(run_onyx("run", add, "-i", tmp_path / "a.npy", "-i", tmp_path / "a.npy",
                         "-o", tmp_path / "file"), "file")


def test_help_and_version():
    r = check_ok(run_onyx("--help"))
    for cmd in ["info", "run", "predict", "serve", "bench", "bundle"]:
        assert f"onyx {cmd}" in r.stdout
    r = check_ok(run_onyx("--version"))
    assert r.stdout.startswith("onyx ")
    assert "commit" in r.stdout and "cpu:" in r.stdout
    assert "usage: onyx run" in check_ok(run_onyx("run", "--help")).stdout
