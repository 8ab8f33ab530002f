"""`onyx bench`: the JSON contract (every field, sane values), the generated
inputs (ranges, shapes from --batch/--shape, and the Python twin in
bench/compare.py that onnxruntime is fed from), and one-line errors. No
timing assertions: the machine may be busy."""
import json
import sys
from pathlib import Path

import onnx

import numpy as np
import pytest
from onnx import TensorProto, helper

import models
from conftest import ROOT, check_error, check_ok, onyx_binary, run_onyx, save_model

sys.path.insert(0, str(ROOT / "bench"))
import compare  # noqa: E402  (bench/ is not a package)

CONTRACT = ("load_ms", "first_run_ms", "p50_ms", "p90_ms", "p99_ms", "mean_ms",
            "throughput_per_s", "peak_rss_mb", "threads", "batch", "iterations")


def mlp_model():
    """y = Relu(x @ W + b), x float [N, 4] (a little real work per run)."""
    rng = np.random.default_rng(0)
    w = helper.make_tensor("W", TensorProto.FLOAT, [4, 8], rng.standard_normal(32).tolist())
    b = helper.make_tensor("B", TensorProto.FLOAT, [8], rng.standard_normal(8).tolist())
    return models.make(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]),
         helper.make_node("Add", ["xw", "B"], ["s"]),
         helper.make_node("Relu", ["s"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])],
        initializer=[w, b])


INPUTS = [("input_ids", TensorProto.INT64, "tensor(int64)", ["batch", "sequence"]),
          ("token_type_ids", TensorProto.INT64, "tensor(int64)", ["batch", "sequence"]),
          ("attention_mask", TensorProto.INT64, "tensor(int64)", ["batch", "sequence"]),
          ("pixels", TensorProto.FLOAT, "tensor(float)", ["batch", 3, "size", "size"]),
          ("half", TensorProto.FLOAT16, "tensor(float16)", [2, "k"]),
          ("flags", TensorProto.BOOL, "tensor(bool)", [3])]


def token_model():
    """Identity over BERT-like and other inputs, to look at generated values."""
    return models.make(
        [helper.make_node("Identity", [n], [n + "_out"]) for n, _, _, _ in INPUTS],
        [helper.make_tensor_value_info(n, t, s) for n, t, _, s in INPUTS],
        [helper.make_tensor_value_info(n + "_out", t, s) for n, t, _, s in INPUTS])


def bench_json(*args, binary=None):
    r = check_ok(run_onyx("bench", *args, "--json", binary=binary))
    return json.loads(r.stdout)


def test_bench_json_contract(tmp_path, onyx_bin):
    path = save_model(mlp_model(), tmp_path / "mlp.onnx")
    doc = bench_json(path, "--batch", "2", "--iterations", "7", "--warmup", "1", "--threads", "1",
                     binary=onyx_bin)
    for key in CONTRACT:
        assert key in doc, key
    assert doc["batch"] == 2 and doc["threads"] == 1 and doc["iterations"] == 7
    assert doc["warmup"] == 1
    assert doc["inputs"] == [{"name": "x", "dtype": "float", "shape": [2, 4]}]
    assert doc["load_ms"] >= 0 and doc["first_run_ms"] > 0
    assert 0 < doc["min_ms"] <= doc["p50_ms"] <= doc["p90_ms"] <= doc["p99_ms"] <= doc["max_ms"]
    assert doc["min_ms"] <= doc["mean_ms"] <= doc["max_ms"]
    assert doc["throughput_per_s"] > 0
    assert doc["peak_rss_mb"] > 0
    assert doc["load_rss_mb"] <= doc["peak_rss_mb"]
    assert doc["load_ms"] == pytest.approx(doc["model_load_ms"] + doc["session_new_ms"])
    assert "profile" not in doc


def test_bench_defaults_and_text(tmp_path):
    path = save_model(mlp_model(), tmp_path / "mlp.onnx")
    doc = bench_json(path, "--iterations", "3")
    assert doc["batch"] == 1 and doc["threads"] >= 1 and doc["iterations"] == 3
    out = check_ok(run_onyx("bench", path, "--iterations", "3", "--threads", "2")).stdout
    for word in ("load:", "first run:", "p50", "p90", "p99", "throughput:", "peak RSS:"):
        assert word in out
    assert "threads:     2" in out


def test_bench_automatic_iterations(tmp_path):
    """Without --iterations a fast model runs for about two seconds, at least
    10 times."""
    path = save_model(mlp_model(), tmp_path / "mlp.onnx")
    doc = bench_json(path, "--threads", "1")
    assert doc["iterations"] >= 10


def test_bench_generated_inputs(tmp_path, onyx_bin):
    path = save_model(token_model(), tmp_path / "tokens.onnx")
    saved = tmp_path / "saved"
    saved.mkdir()
    doc = bench_json(path, "--batch", "3", "--shape", "sequence=5", "--shape", "half=2,4",
                     "--save-inputs", saved, "--iterations", "2", binary=onyx_bin)
    shapes = {i["name"]: i["shape"] for i in doc["inputs"]}
    assert shapes == {"input_ids": [3, 5], "token_type_ids": [3, 5], "attention_mask": [3, 5],
                      "pixels": [3, 3, 1, 1], "half": [2, 4], "flags": [3]}
    got = {n: np.load(saved / f"{n}.npy") for n in shapes}
    ids = got["input_ids"]
    assert ids.dtype == np.int64 and ids.min() >= 0 and ids.max() < 100 and len(set(ids.flat)) > 3
    assert (got["attention_mask"] == 1).all() and (got["token_type_ids"] == 0).all()
    for name in ("pixels", "half"):
        assert got[name].min() >= -1 and got[name].max() < 1 and got[name].std() > 0.1
    assert got["half"].dtype == np.float16
    assert got["flags"].dtype == np.bool_ and got["flags"].all()
    # compare.py feeds onnxruntime from its Python twin of the generator:
    # the two must agree bit for bit.
    ins = [(n, ort_type, shape) for n, _, ort_type, shape in INPUTS]
    twin = compare.bench_inputs(ins, 3, {"sequence": 5, "k": 4})
    for name, arr in twin.items():
        assert arr.dtype == got[name].dtype and np.array_equal(arr, got[name]), name


def test_bench_profile_per_op_type(tmp_path):
    path = save_model(mlp_model(), tmp_path / "mlp.onnx")
    r = check_ok(run_onyx("bench", path, "--iterations", "2", "--json", "--profile"))
    prof = json.loads(r.stdout)["profile"]
    assert prof, "an empty profile"
    types = {p["op_type"] for p in prof}
    model_types = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert types <= model_types
    for p in prof:
        assert p["calls_per_run"] >= 1 and p["ms_per_run"] >= 0 and 0 <= p["percent"] <= 100.0001
    assert abs(sum(p["percent"] for p in prof) - 100) < 1e-3
    # FLOPs: 2 per multiply-add of x [3, 4] @ W [4, 8]; none for elementwise ops
    r = check_ok(run_onyx("bench", path, "--iterations", "2", "--batch", "3", "--json",
                          "--profile"))
    by_type = {p["op_type"]: p for p in json.loads(r.stdout)["profile"]}
    assert abs(by_type["MatMul"]["gflop_per_run"] - 2 * 3 * 4 * 8 / 1e9) < 1e-15
    assert by_type["MatMul"]["gflops_per_s"] > 0
    for op, p in by_type.items():
        if op != "MatMul":
            assert p["gflop_per_run"] == 0 and p["gflops_per_s"] == 0, op


def test_bench_profile_counts_conv_flops(tmp_path):
    """Direct-algorithm FLOPs of a grouped, strided Conv: 2 * output elements
    * (input channels per group * kernel taps)."""
    rng = np.random.default_rng(0)
    w = helper.make_tensor("W", TensorProto.FLOAT, [6, 2, 3, 3], rng.standard_normal(108).tolist())
    m = models.make([helper.make_node("Conv", ["x", "W"], ["y"], group=2, strides=[2, 2],
                                      pads=[1, 1, 1, 1])],
                    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 9, 9])],
                    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 5, 5])],
                    initializer=[w])
    path = save_model(m, tmp_path / "conv.onnx")
    r = check_ok(run_onyx("bench", path, "--iterations", "2", "--json", "--profile"))
    (conv,) = json.loads(r.stdout)["profile"]
    assert abs(conv["gflop_per_run"] - 2 * (6 * 5 * 5) * (2 * 9) / 1e9) < 1e-15


def test_bench_errors(tmp_path, onyx_bin):
    path = save_model(mlp_model(), tmp_path / "mlp.onnx")
    fixed = save_model(models.identity_model(TensorProto.FLOAT, [2, 3]), tmp_path / "fixed.onnx")
    check_error(run_onyx("bench", tmp_path / "missing.onnx", "--json", binary=onyx_bin),
                "missing.onnx")
    check_error(run_onyx("bench", path, "--shape", "nope=1,4", binary=onyx_bin), "nope")
    check_error(run_onyx("bench", path, "--shape", "x=1,four", binary=onyx_bin), "--shape")
    check_error(run_onyx("bench", path, "--shape", "x", binary=onyx_bin), "--shape")
    check_error(run_onyx("bench", path, "--shape", "x=1,4,1", binary=onyx_bin), "float[N,4]")
    check_error(run_onyx("bench", path, "--shape", "x=2,5", binary=onyx_bin), "float[N,4]")
    check_error(run_onyx("bench", path, "--shape", "N=1,2", binary=onyx_bin), "one dimension")
    check_error(run_onyx("bench", path, "--batch", "0"), "--batch")
    check_error(run_onyx("bench", path, "--iterations", "-3"), "--iterations")
    check_error(run_onyx("bench", path, "--threads", "x"), "--threads")
    check_error(run_onyx("bench", path, "--frobnicate"), "--frobnicate")
    check_error(run_onyx("bench"), "no MODEL")
    check_error(run_onyx("bench", fixed, "--batch", "4"), "--batch")
    check_error(run_onyx("bench", path, "--save-inputs", tmp_path / "no" / "dir",
                         "--iterations", "1"), "--save-inputs")


def test_bench_peak_rss_is_its_own(tmp_path, onyx_bin):
    """peak_rss_mb is onyx's own peak, not that of the process that spawned
    it (getrusage's ru_maxrss carries the parent's peak across fork + exec)."""
    path = save_model(mlp_model(), tmp_path / "mlp.onnx")
    ballast = np.ones(400 << 20, np.uint8)  # 400 MB resident in this process
    doc = bench_json(path, "--iterations", "2", binary=onyx_bin)
    assert ballast.sum() == 400 << 20
    assert doc["peak_rss_mb"] < 250


def test_interleaved_drives_the_c_api(tmp_path):
    """bench/interleaved.py reaches onyx through ctypes copies of onyx.h's
    structs: a session over them gives onnxruntime's outputs for int64 and
    float inputs (a layout drifting from the header would not)."""
    import ctypes
    import onnxruntime as ort
    import interleaved  # noqa: E402  (bench/ is on the path above)
    m = models.make(
        [helper.make_node("Cast", ["ids"], ["f"], to=TensorProto.FLOAT),
         helper.make_node("MatMul", ["x", "W"], ["xw"]),
         helper.make_node("Add", ["xw", "f"], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4]),
         helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])],
        initializer=[helper.make_tensor("W", TensorProto.FLOAT, [4, 8],
                                        np.arange(32, dtype=np.float32).tolist())])
    path = save_model(m, tmp_path / "m.onnx")
    feeds = compare.bench_inputs([("x", "tensor(float)", ["N", 4]),
                                  ("ids", "tensor(int64)", ["N", 8])], 3, {})
    lib = ctypes.CDLL(str(Path(onyx_binary()).parent / "libonyx.so"))
    engine = interleaved.Onyx(lib, str(path), feeds)
    engine.run()
    (got,) = engine.outputs()
    engine.close()
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    assert got.shape == (3, 8)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_nodes_profiles_both_engines(tmp_path):
    """bench/nodes.py reads onyx's per-node profile through a ctypes copy of
    onyx_profile_event (a drifting layout would give garbage op types) and
    onnxruntime's through its profile file: every node of a small graph
    once per engine, with positive times."""
    import ctypes
    import nodes  # noqa: E402  (bench/ is on the path above)
    m = models.make(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]),
         helper.make_node("Relu", ["xw"], ["r"]),
         helper.make_node("Softmax", ["r"], ["y"], axis=1)],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 48])],
        initializer=[helper.make_tensor("W", TensorProto.FLOAT, [32, 48],
                                        np.linspace(-1, 1, 32 * 48).tolist())])
    path = save_model(m, tmp_path / "m.onnx")
    feeds = {"x": np.linspace(-2, 2, 64 * 32, dtype=np.float32).reshape(64, 32)}
    lib = ctypes.CDLL(str(Path(onyx_binary()).parent / "libonyx.so"))
    lib.onyx_session_set_profiler.argtypes = [ctypes.c_void_p, nodes.PROFILE_FN,
                                              ctypes.c_void_p]
    got, theirs = nodes.measure(lib, str(path), runs=5, threads=1, feeds=feeds)
    assert [t for t, _ in got] == ["MatMul", "Softmax"]  # Relu fused into MatMul
    assert all(ms > 0 for _, ms in got)
    assert len(theirs) >= 2 and all(ms >= 0 for _, ms in theirs)
    assert "Softmax" in dict(theirs)


def test_peak_tool_runs_independent_chains():
    """bench/peak.c: one JSON object per run, and the multiply-adds it counts
    are really in its loop: an earlier probe counted ten chains that the
    compiler had merged into one, and reported a peak 20% above the
    machine's. Its AVX2 function must hold 12 separate FMAs (objdump)."""
    import shutil
    import subprocess
    peak = Path(onyx_binary()).parent / "peak"
    r = subprocess.run([str(peak), "--threads", "2", "--seconds", "0.02"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["isa"] in ("avx2", "avx512f", "none")
    if doc["isa"] != "none":
        assert doc["threads"] == 2 and doc["gflops_1"] > 0 and doc["gflops_all"] > 0
    bad = subprocess.run([str(peak), "--threads", "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr
    if shutil.which("objdump"):
        asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(peak)],
                             capture_output=True, text=True).stdout
        body = asm.split("<chains_avx2>:", 1)[1].split("\n\n", 1)[0]
        fmas = {ln.split()[-1] for ln in body.splitlines() if "vfmadd" in ln and "ymm" in ln}
        assert len(fmas) >= 12, body  # distinct accumulators


def test_compare_compute_bound(tmp_path):
    """compare.py's compute-bound table: the model's GFLOP from onyx's
    profile (the direct algorithm's count), each engine's p50 as GFLOP/s
    and as a share of the peak of that many threads."""
    rng = np.random.default_rng(0)
    w = helper.make_tensor("W", TensorProto.FLOAT, [6, 2, 3, 3], rng.standard_normal(108).tolist())
    m = models.make([helper.make_node("Conv", ["x", "W"], ["c"], group=2, strides=[2, 2],
                                      pads=[1, 1, 1, 1]),
                     helper.make_node("Relu", ["c"], ["y"])],
                    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 9, 9])],
                    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 5, 5])],
                    initializer=[w])
    path = save_model(m, tmp_path / "conv.onnx")
    g = compare.model_gflop(onyx_binary(), str(path), {}, 60)
    assert abs(g - 2 * (6 * 5 * 5) * (2 * 9) / 1e9) < 1e-15
    res = [{"model": "a", "threads": 2, "gflop": 1.5,
            "onyx": {"batch1": {"p50_ms": 10.0}}, "onnxruntime": {"batch1": {"p50_ms": 20.0}}},
           {"model": "b", "threads": 1, "error": "x"}]
    rows = compare.bound_table(res, {2: 200.0}).splitlines()
    assert len(rows) == 3
    assert rows[2] == "| a | 2 | 1.50 | 7.5 | 150.0 (75%) | 75.0 (38%) |"
    assert len(compare.bound_table(res, {1: 100.0}).splitlines()) == 2  # no peak, no row
