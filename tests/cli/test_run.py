"""`onyx run`: input binding, output files (.npy, .pb, .json), dtypes, and
agreement with onnxruntime."""
import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import models
from conftest import check_ok, ort_run, run_onyx, save_model


def write_pb(path, array, name=""):
    path.write_bytes(numpy_helper.from_array(array, name).SerializeToString())
    return path


def read_pb_tensor(path):
    t = onnx.TensorProto()
    t.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(t)


def test_add_positional_inputs_match_onnxruntime(tmp_path, onyx_bin):
    model = save_model(models.add_model(), tmp_path / "add.onnx")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 3)).astype(np.float32)
    b = rng.standard_normal((4, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    out = tmp_path / "out"
    r = check_ok(run_onyx("run", model, "-i", tmp_path / "a.npy", "-i", tmp_path / "b.npy",
                          "-o", out, binary=onyx_bin))
    assert "c" in r.stdout
    got = np.load(out / "c.npy")
    want = ort_run(model, {"a": a, "b": b})["c"]
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=0)


def test_named_inputs_in_any_order_and_mixed_with_positional(tmp_path):
    model = save_model(models.add_model(TensorProto.INT64), tmp_path / "add.onnx")
    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    b = np.full((2, 3), 100, dtype=np.int64)
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    # Named inputs are bound first wherever they appear; the positional file
    # then goes to the next unbound input in graph order, which is a.
    check_ok(run_onyx("run", model, "--input", tmp_path / "a.npy", "-i",
                      f"b={tmp_path / 'b.npy'}", f"--output={tmp_path}"))
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), a + b)
    # Swapped by name: the result is the same (Add commutes) but exercises lookup.
    check_ok(run_onyx("run", model, "-i", f"b={tmp_path / 'a.npy'}", "-i",
                      f"a={tmp_path / 'b.npy'}", "-o", tmp_path / "o2"))
    np.testing.assert_array_equal(np.load(tmp_path / "o2" / "c.npy"), a + b)


def test_default_output_dir_is_cwd(tmp_path):
    model = save_model(models.add_model(), tmp_path / "add.onnx")
    x = np.ones((1, 3), np.float32)
    np.save(tmp_path / "x.npy", x)
    check_ok(run_onyx("run", model, "-i", "x.npy", "-i", "x.npy", cwd=tmp_path))
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), x + x)


def test_pb_inputs_and_pb_outputs(tmp_path):
    model = save_model(models.add_model(), tmp_path / "add.onnx")
    a = np.array([[1.5, -2, 3]], np.float32)
    b = np.array([[0.25, 4, -8]], np.float32)
    write_pb(tmp_path / "a.pb", a, "a")
    write_pb(tmp_path / "b.pb", b, "b")
    out = tmp_path / "out"
    check_ok(run_onyx("run", model, "-i", tmp_path / "a.pb", "-i", tmp_path / "b.pb",
                      "-o", out, "--format", "pb", "--threads", "1"))
    t = onnx.TensorProto()
    t.ParseFromString((out / "c.pb").read_bytes())
    assert t.name == "c"
    np.testing.assert_array_equal(numpy_helper.to_array(t), a + b)


def test_output_names_are_sanitized(tmp_path):
    name = "out:0/weird name"
    model = save_model(models.identity_model(TensorProto.FLOAT, [2], out_name=name),
                       tmp_path / "m.onnx")
    np.save(tmp_path / "x.npy", np.array([1, 2], np.float32))
    check_ok(run_onyx("run", model, "-i", tmp_path / "x.npy", "-o", tmp_path / "o"))
    assert (tmp_path / "o" / "out_0_weird_name.npy").exists()
    check_ok(run_onyx("run", model, "-i", tmp_path / "x.npy", "-o", tmp_path / "p",
                      "--format", "pb"))
    assert read_pb_tensor(tmp_path / "p" / "out_0_weird_name.pb").tolist() == [1, 2]


def test_output_dir_is_created_with_parents(tmp_path):
    model = save_model(models.identity_model(TensorProto.FLOAT, [1]), tmp_path / "m.onnx")
    np.save(tmp_path / "x.npy", np.array([7], np.float32))
    out = tmp_path / "a" / "b" / "c"
    check_ok(run_onyx("run", model, "-i", tmp_path / "x.npy", "-o", out))
    assert np.load(out / "y.npy").tolist() == [7]


DTYPES = [
    (np.float32, TensorProto.FLOAT),
    (np.float64, TensorProto.DOUBLE),
    (np.float16, TensorProto.FLOAT16),
    (np.int8, TensorProto.INT8),
    (np.uint8, TensorProto.UINT8),
    (np.int16, TensorProto.INT16),
    (np.uint16, TensorProto.UINT16),
    (np.int32, TensorProto.INT32),
    (np.uint32, TensorProto.UINT32),
    (np.int64, TensorProto.INT64),
    (np.uint64, TensorProto.UINT64),
    (np.bool_, TensorProto.BOOL),
]


def test_npy_roundtrip_of_every_numeric_dtype(tmp_path):
    rng = np.random.default_rng(1)
    for np_type, onnx_type in DTYPES:
        d = tmp_path / np.dtype(np_type).name
        d.mkdir()
        model = save_model(models.identity_model(onnx_type, [2, 3]), d / "m.onnx")
        x = (rng.standard_normal((2, 3)) * 50).astype(np_type)
        np.save(d / "x.npy", x)
        check_ok(run_onyx("run", model, "-i", d / "x.npy", "-o", d))
        got = np.load(d / "y.npy")
        want = ort_run(model, {"x": x})["y"]
        assert got.dtype == want.dtype, np_type
        np.testing.assert_array_equal(got, want)
        # And the same through .pb.
        check_ok(run_onyx("run", model, "-i", d / "x.npy", "-o", d, "--format", "pb"))
        np.testing.assert_array_equal(read_pb_tensor(d / "y.pb"), want)


def test_scalar_and_empty_tensors(tmp_path):
    model = save_model(models.identity_model(TensorProto.FLOAT, None), tmp_path / "m.onnx",
                       check=False)  # unknown rank: legal, but the checker objects
    for i, x in enumerate([np.float32(3.5) * np.ones((), np.float32),
                           np.zeros((0,), np.float32),
                           np.zeros((2, 0, 3), np.float32),
                           np.arange(5, dtype=np.float32)]):
        np.save(tmp_path / f"x{i}.npy", x)
        check_ok(run_onyx("run", model, "-i", tmp_path / f"x{i}.npy", "-o", tmp_path / f"o{i}"))
        got = np.load(tmp_path / f"o{i}" / "y.npy")
        assert got.shape == x.shape and got.dtype == x.dtype
        np.testing.assert_array_equal(got, x)


def test_big_endian_and_v2_v3_npy_inputs(tmp_path):
    model = save_model(models.identity_model(TensorProto.FLOAT, [3]), tmp_path / "m.onnx")
    x = np.array([1.25, -2.5, 1e30], dtype=">f4")
    np.save(tmp_path / "be.npy", x)
    check_ok(run_onyx("run", model, "-i", tmp_path / "be.npy", "-o", tmp_path / "be"))
    got = np.load(tmp_path / "be" / "y.npy")
    assert got.dtype == np.dtype("<f4")
    np.testing.assert_array_equal(got, x.astype("<f4"))
    for version in [(2, 0), (3, 0)]:
        p = tmp_path / f"v{version[0]}.npy"
        with open(p, "wb") as f:
            np.lib.format.write_array(f, x.astype("<f4"), version=version)
        check_ok(run_onyx("run", model, "-i", p, "-o", tmp_path / f"o{version[0]}"))
        np.testing.assert_array_equal(np.load(tmp_path / f"o{version[0]}" / "y.npy"), x)


def test_string_input_and_output(tmp_path):
    model = save_model(models.string_model(), tmp_path / "s.onnx")
    s = np.array(["cat", "dog", "", "caté", "🐈 cat"])
    np.save(tmp_path / "s.npy", s)
    check_ok(run_onyx("run", model, "-i", tmp_path / "s.npy", "-o", tmp_path / "o"))
    want = ort_run(model, {"s": s.astype(object)})
    np.testing.assert_array_equal(np.load(tmp_path / "o" / "is_cat.npy"), want["is_cat"])
    same = np.load(tmp_path / "o" / "same.npy")
    assert same.dtype.kind == "U"
    assert same.tolist() == list(want["same"])
    # Byte strings ('|S') are accepted as UTF-8 text too, and .pb carries strings.
    np.save(tmp_path / "b.npy", np.array([b"cat", b"x"]))
    check_ok(run_onyx("run", model, "-i", tmp_path / "b.npy", "-o", tmp_path / "p",
                      "--format", "pb"))
    same = [v.decode() if isinstance(v, bytes) else v
            for v in read_pb_tensor(tmp_path / "p" / "same.pb").tolist()]
    assert same == ["cat", "x"]
    assert read_pb_tensor(tmp_path / "p" / "is_cat.pb").tolist() == [True, False]


def test_sequence_output_as_json_and_pb(tmp_path):
    model = save_model(models.split_to_sequence_model(), tmp_path / "seq.onnx")
    x = np.arange(12, dtype=np.float32).reshape(6, 2) / 4
    np.save(tmp_path / "x.npy", x)
    want = ort_run(model, {"x": x})["seq"]
    check_ok(run_onyx("run", model, "-i", tmp_path / "x.npy", "-o", tmp_path / "j"))
    doc = json.loads((tmp_path / "j" / "seq.json").read_text())
    assert len(doc) == len(want)
    for item, w in zip(doc, want):
        assert item["dtype"] == "float"
        assert item["shape"] == list(w.shape)
        np.testing.assert_array_equal(np.array(item["data"], np.float32).reshape(w.shape), w)
    check_ok(run_onyx("run", model, "-i", tmp_path / "x.npy", "-o", tmp_path / "p",
                      "--format", "pb"))
    seq = onnx.SequenceProto()
    seq.ParseFromString((tmp_path / "p" / "seq.pb").read_bytes())
    got = numpy_helper.to_list(seq)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_sequence_input_from_pb(tmp_path):
    model = save_model(models.sequence_input_model(), tmp_path / "m.onnx")
    items = [np.ones((1, 2), np.float32), np.arange(4, dtype=np.float32).reshape(2, 2)]
    seq = numpy_helper.from_list(items, "s")
    (tmp_path / "s.pb").write_bytes(seq.SerializeToString())
    check_ok(run_onyx("run", model, "-i", f"s={tmp_path / 's.pb'}", "-o", tmp_path))
    want = ort_run(model, {"s": items})
    np.testing.assert_array_equal(np.load(tmp_path / "cat.npy"), want["cat"])
    assert np.load(tmp_path / "len.npy").tolist() == want["len"].tolist() == 2


def test_zipmap_output_is_readable_json(tmp_path):
    """A scikit-learn style classifier output: sequence(map(int64, float))."""
    model = models.make(
        [helper.make_node("ZipMap", ["p"], ["probs"], domain="ai.onnx.ml",
                          classlabels_int64s=[10, 20, 30])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["N", 3])],
        [helper.make_value_info("probs", helper.make_sequence_type_proto(
            helper.make_map_type_proto(TensorProto.INT64,
                                       helper.make_tensor_type_proto(TensorProto.FLOAT, []))))],
        opsets=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
    )
    path = save_model(model, tmp_path / "zm.onnx")
    p = np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]], np.float32)
    np.save(tmp_path / "p.npy", p)
    check_ok(run_onyx("run", path, "-i", tmp_path / "p.npy", "-o", tmp_path))
    doc = json.loads((tmp_path / "probs.json").read_text())
    want = ort_run(path, {"p": p})["probs"]
    # Floats are written in the shortest form that reads back as the same
    # float32, so compare as float32.
    assert [{int(k): np.float32(v) for k, v in d.items()} for d in doc] == \
        [{k: np.float32(v) for k, v in d.items()} for d in want]


def test_sequence_passthrough_pb_in_json_and_pb_out(tmp_path, onyx_bin):
    seq_type = helper.make_sequence_type_proto(
        helper.make_tensor_type_proto(TensorProto.FLOAT, None))
    model = save_model(models.identity_of_type(seq_type), tmp_path / "m.onnx")
    items = [np.ones((1, 2), np.float32), np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
             np.zeros((0,), np.float32)]
    (tmp_path / "s.pb").write_bytes(numpy_helper.from_list(items, "x").SerializeToString())
    want = ort_run(model, {"x": items})["y"]
    check_ok(run_onyx("run", model, "-i", tmp_path / "s.pb", "-o", tmp_path / "j",
                      binary=onyx_bin))
    doc = json.loads((tmp_path / "j" / "y.json").read_text())
    assert [(d["dtype"], d["shape"]) for d in doc] == [("float", list(w.shape)) for w in want]
    for d, w in zip(doc, want):
        np.testing.assert_array_equal(np.array(d["data"], np.float32).reshape(w.shape), w)
    check_ok(run_onyx("run", model, "-i", tmp_path / "s.pb", "-o", tmp_path / "p",
                      "--format", "pb", binary=onyx_bin))
    seq = onnx.SequenceProto()
    seq.ParseFromString((tmp_path / "p" / "y.pb").read_bytes())
    assert seq.name == "y"
    got = numpy_helper.to_list(seq)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_array_equal(g, w)


def test_optional_input_from_optional_proto(tmp_path):
    opt_type = helper.make_optional_type_proto(
        helper.make_tensor_type_proto(TensorProto.FLOAT, [2]))
    model = save_model(models.identity_of_type(opt_type), tmp_path / "m.onnx")
    x = np.array([1.5, -2], np.float32)
    (tmp_path / "o.pb").write_bytes(numpy_helper.from_optional(x, "x").SerializeToString())
    check_ok(run_onyx("run", model, "-i", tmp_path / "o.pb", "-o", tmp_path))
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), ort_run(model, {"x": x})["y"])


def test_map_input_from_pb(tmp_path):
    """A MapProto input (scikit-learn's DictVectorizer takes map(string, float))."""
    map_type = helper.make_map_type_proto(TensorProto.STRING,
                                          helper.make_tensor_type_proto(TensorProto.FLOAT, []))
    model = models.make(
        [helper.make_node("DictVectorizer", ["m"], ["v"], domain="ai.onnx.ml",
                          string_vocabulary=["a", "b", "c"])],
        [helper.make_value_info("m", map_type)],
        [helper.make_tensor_value_info("v", TensorProto.FLOAT, None)],
        opsets=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)],
    )
    path = save_model(model, tmp_path / "dv.onnx", check=False)
    d = {"c": np.float32(3.5), "a": np.float32(-1)}
    mp = onnx.MapProto(name="m", key_type=TensorProto.STRING,
                       string_keys=[k.encode() for k in d])
    mp.values.CopyFrom(numpy_helper.from_list([np.array(v) for v in d.values()]))
    (tmp_path / "m.pb").write_bytes(mp.SerializeToString())
    check_ok(run_onyx("run", path, "-i", tmp_path / "m.pb", "-o", tmp_path))
    want = ort_run(path, {"m": {k: float(v) for k, v in d.items()}})["v"]
    got = np.load(tmp_path / "v.npy")
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got.reshape(want.shape), want)
