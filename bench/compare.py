#!/usr/bin/env python3
"""compare.py - onyx against onnxruntime on the same models, inputs, thread
counts and machine: latency at batch 1, throughput at batch 8, load time, peak
memory, and how far apart the outputs are.

It owns the comparison method; the models come from tools/build_models.py
(the four torchvision CNNs) and tools/build_bert.py (BERT-base, sequence 128).
See bench/README.md for what each column means and the latest results.

Usage:
    compare.py [--onyx PATH] [--threads 1[,2,...]] [--models a,b,...]
               [--iterations K] [--rounds R] [--out FILE]

Method:
- Every measurement runs in a fresh process: `onyx bench --json` for onyx, and
  this file in runner mode (--ort-runner) for onnxruntime, so both start
  from the same state (a fresh heap; the OS file cache, warm for both after
  the accuracy check).
- onnxruntime: graph_optimization_level ORT_ENABLE_ALL, intra_op_num_threads
  = the same thread count, inter_op_num_threads 1, sequential execution,
  CPUExecutionProvider; other settings at their defaults (spinning included).
- Both sides feed the same inputs, bit for bit: the runner reproduces
  `onyx bench`'s generator (splitmix64 from the same seed; floats uniform in
  [-1, 1), integers 1 for masks, 0 for token types, else in [0, 100)).
- Both measure the same things the same way: load_ms is file to a ready
  session (onnxruntime: InferenceSession construction), first_run_ms the first
  run, then warm-up runs, then timed runs: p50/p90/p99 by linear
  interpolation, throughput = batch * runs / wall time of the timed loop, peak
  RSS of that process (VmHWM; for onnxruntime it includes the Python
  interpreter and the imported modules; the JSON has that baseline).
- Rounds alternate which engine goes first; each number is the median over
  rounds. Latency is measured at batch 1 (2 warm-up runs, K timed), throughput
  at batch 8 (1 warm-up run, max(2, K // 5) timed).
- Accuracy: both run once more on a fixed, realistic input (tools' test
  images / token sequences with padding, batch 2); the max abs difference of
  every output is reported.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CNNS = ("resnet50", "mobilenet_v2", "squeezenet1_1", "efficientnet_b0")
FAST_CNNS = ("mobilenet_v2", "squeezenet1_1")  # a run in about 10 ms: the tools run them more
MODELS = CNNS + ("bert_base", "bert_base_opset14")
DEFAULT_MODELS = CNNS + ("bert_base",)
SEQ = 128
THROUGHPUT_BATCH = 8
WARMUP = {1: 2, THROUGHPUT_BATCH: 1}  # untimed runs after the first, per batch
METRICS = ("load_ms", "first_run_ms", "p50_ms", "p90_ms", "p99_ms", "mean_ms",
           "throughput_per_s", "peak_rss_mb")

# ----------------------------------------------------------------------------
# Inputs: the generator of src/cli/bench.c, reproduced bit for bit.

SEED = 0x6F6E7978  # "onyx"
GOLDEN = 0x9E3779B97F4A7C15


def splitmix64(first, n):
    """Draws first+1 .. first+n of splitmix64 seeded with SEED (uint64 array)."""
    k = np.arange(first + 1, first + n + 1, dtype=np.uint64)
    z = np.uint64(SEED) + k * np.uint64(GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


NP_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64,
            "tensor(float16)": np.float16, "tensor(int64)": np.int64,
            "tensor(int32)": np.int32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8,
            "tensor(bool)": np.bool_}


def bench_inputs(inputs, batch, dim_values):
    """Inputs as `onyx bench --batch B --shape DIM=V` makes them, for graph
    inputs given as (name, onnxruntime type string, shape list) in order."""
    feeds, drawn = {}, 0
    for name, type_str, shape in inputs:
        dims = []
        for d, v in enumerate(shape):
            if isinstance(v, int) and v >= 0:
                dims.append(v)
            elif isinstance(v, str) and v in dim_values:
                dims.append(dim_values[v])
            else:
                dims.append(batch if d == 0 else 1)
        n = int(np.prod(dims, dtype=np.int64))
        dtype = NP_TYPES[type_str]
        lname = name.lower()
        if dtype == np.bool_:
            arr = np.ones(n, np.bool_)
        elif np.issubdtype(dtype, np.floating):
            z = splitmix64(drawn, n)
            drawn += n
            arr = ((z >> np.uint64(40)).astype(np.float64) / float(1 << 23) - 1.0).astype(
                np.float32).astype(dtype)
        elif "mask" in lname:
            arr = np.ones(n, dtype)
        elif "type" in lname or "segment" in lname:
            arr = np.zeros(n, dtype)
        else:
            z = splitmix64(drawn, n)
            drawn += n
            arr = (z % np.uint64(100)).astype(dtype)
        feeds[name] = arr.reshape(dims)
    return feeds


# ----------------------------------------------------------------------------
# onnxruntime runner (a fresh process per measurement)


def peak_rss_mb():
    """Peak RSS of this process image, as onyx bench measures it: VmHWM, not
    ru_maxrss, which inherits the peak of the parent that spawned us."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def ort_runner(spec):
    """Runner mode: loads the model in onnxruntime, measures like onyx bench,
    prints one JSON object. With spec["dump"], instead runs the feeds stored in
    spec["feeds"] (an .npz) once and saves the outputs to spec["dump"]."""
    import onnxruntime as ort
    baseline = peak_rss_mb()
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = spec["threads"]
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    t0 = time.perf_counter()
    sess = ort.InferenceSession(spec["model"], so, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - t0) * 1e3
    if spec.get("dump"):
        feeds = dict(np.load(spec["feeds"]))
        outs = sess.run(None, feeds)
        np.savez(spec["dump"], **{o.name: v for o, v in zip(sess.get_outputs(), outs)})
        return {}
    ins = [(i.name, i.type, list(i.shape)) for i in sess.get_inputs()]
    feeds = bench_inputs(ins, spec["batch"], spec.get("dims", {}))
    t = time.perf_counter()
    sess.run(None, feeds)
    first_ms = (time.perf_counter() - t) * 1e3
    for _ in range(spec["warmup"]):
        sess.run(None, feeds)
    times = []
    start = time.perf_counter()
    for _ in range(spec["iterations"]):
        t = time.perf_counter()
        sess.run(None, feeds)
        times.append((time.perf_counter() - t) * 1e3)
    wall = time.perf_counter() - start
    return {
        "threads": spec["threads"], "batch": spec["batch"], "iterations": len(times),
        "warmup": spec["warmup"], "load_ms": load_ms, "first_run_ms": first_ms,
        "p50_ms": float(np.percentile(times, 50)), "p90_ms": float(np.percentile(times, 90)),
        "p99_ms": float(np.percentile(times, 99)), "mean_ms": float(np.mean(times)),
        "min_ms": min(times), "max_ms": max(times),
        "throughput_per_s": spec["batch"] * len(times) / wall,
        "peak_rss_mb": peak_rss_mb(),
        "baseline_rss_mb": baseline,
        "onnxruntime_version": ort.__version__,
    }


def run_ort(spec, timeout):
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--ort-runner",
                        json.dumps(spec)], capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"onnxruntime runner failed: {r.stderr.strip().splitlines()[-1:]}")
    return json.loads(r.stdout)


def run_onyx(onyx, model, threads, batch, iterations, dims, timeout, extra=()):
    args = [onyx, "bench", model, "--threads", str(threads), "--batch", str(batch),
            "--iterations", str(iterations), "--warmup", str(WARMUP[batch]), "--json",
            *extra]
    for k, v in dims.items():
        args += ["--shape", f"{k}={v}"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip() or f"onyx bench exited {r.returncode}")
    return json.loads(r.stdout)


def model_gflop(onyx, model, dims, timeout):
    """Floating-point work of one batch-1 run, in GFLOP: the sum over nodes
    of the direct algorithm's count (2 per multiply-add of Conv, Gemm and
    MatMul), from onyx's profiler. It depends on the model only, so it
    measures both engines alike (Winograd's saving is not subtracted)."""
    doc = run_onyx(onyx, model, 1, 1, 1, dims, timeout, ("--profile",))
    return sum(t.get("gflop_per_run", 0) for t in doc.get("profile", []))


def fma_peak(path, threads, timeout=60):
    """This machine's float32 FMA peak in GFLOP/s with `threads` threads
    running at once (bench/peak.c, built by make), or None when the tool is
    missing or the CPU has no FMA."""
    if not os.access(path, os.X_OK):
        return None
    r = subprocess.run([path, "--threads", str(threads)], capture_output=True, text=True,
                       timeout=timeout)
    return json.loads(r.stdout).get("gflops_all") if r.returncode == 0 else None


# ----------------------------------------------------------------------------
# Models and accuracy


def tools():
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import build_bert
    import build_models
    return build_models, build_bert


def model_setup(name):
    """(path, symbolic dim values for bench, fixed accuracy feeds)."""
    build_models, build_bert = tools()
    if name in CNNS:
        path = build_models.model_path(name)
        return path, {}, {"input": build_models.test_input(2)}
    opset = 14 if name.endswith("opset14") else 17
    path = build_bert.model_path(opset=opset)
    return path, {"sequence": SEQ}, build_bert.test_inputs(path, batch=2, seq=SEQ)


def max_abs_diff(onyx, path, feeds, timeout):
    """Runs both engines once on `feeds`; max abs diff over all outputs."""
    with tempfile.TemporaryDirectory() as d:
        np.savez(os.path.join(d, "feeds.npz"), **feeds)
        run_ort({"model": path, "threads": 1, "dump": os.path.join(d, "ort.npz"),
                 "feeds": os.path.join(d, "feeds.npz")}, timeout)
        ref = dict(np.load(os.path.join(d, "ort.npz")))
        args = [onyx, "run", path, "-o", os.path.join(d, "out")]
        for k, v in feeds.items():
            np.save(os.path.join(d, f"in_{k}.npy"), v)
            args += ["-i", f"{k}={os.path.join(d, f'in_{k}.npy')}"]
        r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError(r.stderr.strip())
        diff = 0.0
        for name, want in ref.items():
            safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
            got = np.load(os.path.join(d, "out", safe + ".npy"))
            if got.shape != want.shape:
                raise RuntimeError(f"output {name}: shape {got.shape}, onnxruntime {want.shape}")
            diff = max(diff, float(np.abs(got.astype(np.float64) - want).max()))
        return diff


# ----------------------------------------------------------------------------
# Driver


def median_of(rounds, key):
    vals = [r[key] for r in rounds if r and key in r]
    return statistics.median(vals) if vals else None


def summarize(per_round):
    """Per-metric medians over rounds, for one engine and one batch."""
    return {k: median_of(per_round, k) for k in METRICS}


def fmt(v, digits=1):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        return f"{v:.0f}"
    return f"{v:.{digits}f}"


def ratio(a, b):
    return a / b if a is not None and b else None


def table(results):
    head = ("| model | threads | p50 ms (b1) onyx / ort | p90 ms (b1) onyx / ort | "
            "items/s (b8) onyx / ort | load ms onyx / ort | peak RSS MB (b1) onyx / ort | "
            "max abs diff |")
    lines = [head, "|" + "---|" * 8]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['threads']} | error: {r['error']} ||||||")
            continue
        o1, t1 = r["onyx"]["batch1"], r["onnxruntime"]["batch1"]
        o8, t8 = r["onyx"]["batch8"], r["onnxruntime"]["batch8"]

        def cell(a, b, digits=1):
            q = ratio(a, b)
            return f"{fmt(a, digits)} / {fmt(b, digits)} ({'-' if q is None else f'{q:.2f}x'})"

        diff = r.get("max_abs_diff")
        lines.append(
            f"| {r['model']} | {r['threads']} | {cell(o1['p50_ms'], t1['p50_ms'])} | "
            f"{cell(o1['p90_ms'], t1['p90_ms'])} | "
            f"{cell(o8['throughput_per_s'], t8['throughput_per_s'])} | "
            f"{cell(o1['load_ms'], t1['load_ms'], 0)} | "
            f"{cell(o1['peak_rss_mb'], t1['peak_rss_mb'], 0)} | "
            f"{'-' if diff is None else f'{diff:.2g}'} |")
    return "\n".join(lines)


def bound_table(results, peaks):
    """The compute bound: each engine's p50 as GFLOP/s and as a share of the
    FMA peak of that many threads (`peaks`: thread count -> GFLOP/s, all
    threads running at once), and the latency at 100% of that peak."""
    lines = ["| model | threads | GFLOP per run (b1) | ms at 100% of peak | "
             "onyx GFLOP/s (% of peak) | ort GFLOP/s (% of peak) |", "|" + "---|" * 6]
    for r in results:
        g, ceiling = r.get("gflop"), peaks.get(r["threads"])
        if "error" in r or not g or not ceiling:
            continue

        def share(eng):
            ms = r[eng]["batch1"]["p50_ms"]
            return f"{g / ms * 1e3:.1f} ({100 * g / ms * 1e3 / ceiling:.0f}%)" if ms else "-"

        lines.append(f"| {r['model']} | {r['threads']} | {g:.2f} | {g / ceiling * 1e3:.1f} | "
                     f"{share('onyx')} | {share('onnxruntime')} |")
    return "\n".join(lines)


def conditions(onyx):
    v = subprocess.run([onyx, "--version"], capture_output=True, text=True).stdout.strip()
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                       "")
    except OSError:
        pass
    import onnxruntime
    return {"onyx": v, "cpu_model": cpu, "cpus": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)),
            "onnxruntime": onnxruntime.__version__, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "loadavg_start": os.getloadavg()}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--onyx", default=os.environ.get("ONYX", os.path.join(ROOT, "build", "onyx")))
    ap.add_argument("--threads", default="1", help="thread counts, comma-separated (default 1)")
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS),
                    help=f"comma-separated, from {', '.join(MODELS)} "
                         f"(default: {','.join(DEFAULT_MODELS)})")
    ap.add_argument("--iterations", type=int, default=10,
                    help="timed runs at batch 1 (batch 8: max(2, K // 5)); default 10")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported (3)")
    ap.add_argument("--out", default=os.path.join(HERE, "results.json"))
    ap.add_argument("--timeout", type=float, default=900, help="seconds per process")
    ap.add_argument("--peak", default=os.path.join(ROOT, "build", "peak"),
                    help="the FMA peak tool (bench/peak.c, built by make)")
    ap.add_argument("--ort-runner", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.ort_runner:
        print(json.dumps(ort_runner(json.loads(args.ort_runner))))
        return 0

    models = [m for m in args.models.split(",") if m]
    bad = [m for m in models if m not in MODELS]
    if bad:
        ap.error(f"unknown model {bad[0]}; choose from {', '.join(MODELS)}")
    try:
        threads = [int(t) for t in args.threads.split(",")]
        assert threads and all(t >= 1 for t in threads)
    except (ValueError, AssertionError):
        ap.error("--threads takes positive integers, e.g. 1 or 1,2")
    if args.iterations < 1 or args.rounds < 1:
        ap.error("--iterations and --rounds must be at least 1")
    if not os.access(args.onyx, os.X_OK):
        ap.error(f"{args.onyx} is not an executable (run make, or pass --onyx)")

    cond = conditions(args.onyx)
    print(f"{cond['onyx'].replace(chr(10), '; ')}; onnxruntime {cond['onnxruntime']}; "
          f"{cond['cpu_model']}, {cond['cpus_usable']} usable cpus; load average "
          f"{cond['loadavg_start'][0]:.1f}", flush=True)
    # The ceiling both engines are measured against, before anything else runs.
    peaks = {t: fma_peak(args.peak, t) for t in threads}
    cond["fma_peak_gflops"] = {str(t): v for t, v in peaks.items()}
    if None in peaks.values():
        print(f"{args.peak}: no FMA peak measured (run make); the compute-bound table "
              "is left out", file=sys.stderr, flush=True)
    iters = {1: args.iterations, THROUGHPUT_BATCH: max(2, args.iterations // 5)}
    t_start = time.perf_counter()
    results = []
    for name in models:
        try:
            path, dims, feeds = model_setup(name)
            diff = max_abs_diff(args.onyx, path, feeds, args.timeout)
            gflop = model_gflop(args.onyx, path, dims, args.timeout)
        except Exception as e:  # a model onyx cannot run still gets its row
            print(f"{name}: {e}", file=sys.stderr, flush=True)
            for t in threads:
                results.append({"model": name, "threads": t, "error": str(e)[:200]})
            continue
        for t in threads:
            raw = {eng: {b: [] for b in iters} for eng in ("onyx", "onnxruntime")}
            error = None
            for rnd in range(args.rounds):
                order = ("onyx", "onnxruntime") if rnd % 2 == 0 else ("onnxruntime", "onyx")
                for b, k in iters.items():
                    for eng in order:
                        try:
                            if eng == "onyx":
                                m = run_onyx(args.onyx, path, t, b, k, dims, args.timeout)
                            else:
                                m = run_ort({"model": path, "threads": t, "batch": b,
                                             "iterations": k, "warmup": WARMUP[b],
                                             "dims": dims},
                                            args.timeout)
                        except Exception as e:
                            error = f"{eng}: {e}"
                            m = None
                        raw[eng][b].append(m)
                print(f"  {name} threads {t} round {rnd + 1}/{args.rounds} "
                      f"({time.perf_counter() - t_start:.0f} s)", file=sys.stderr, flush=True)
            res = {"model": name, "path": os.path.relpath(path, ROOT), "threads": t,
                   "dims": dims, "max_abs_diff": diff, "gflop": gflop}
            for eng in raw:
                res[eng] = {f"batch{b}": summarize(raw[eng][b]) for b in iters}
                res[eng]["rounds"] = {f"batch{b}": raw[eng][b] for b in iters}
            res["ratio_onyx_over_onnxruntime"] = {
                f"batch{b}": {k: ratio(res["onyx"][f"batch{b}"][k],
                                       res["onnxruntime"][f"batch{b}"][k]) for k in METRICS}
                for b in iters}
            if error:
                res["error_in_some_rounds"] = error[:300]
            results.append(res)
    cond["loadavg_end"] = os.getloadavg()
    cond["seconds"] = round(time.perf_counter() - t_start, 1)
    doc = {"conditions": cond,
           "settings": {"models": models, "threads": threads, "rounds": args.rounds,
                        "iterations": {f"batch{b}": k for b, k in iters.items()},
                        "warmup": {f"batch{b}": w for b, w in WARMUP.items()},
                        "sequence": SEQ},
           "table": table(results), "bound_table": bound_table(results, peaks),
           "results": results}
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
    print(table(results))
    print()
    print(doc["bound_table"])
    peak_note = ", ".join(f"{t} thread(s) {v:.0f}" for t, v in peaks.items() if v)
    print(f"\nFMA peak GFLOP/s: {peak_note or 'not measured'}")
    print(f"{cond['seconds']:.0f} s; load average {cond['loadavg_start'][0]:.1f} at start, "
          f"{cond['loadavg_end'][0]:.1f} at end; ratios are onyx / onnxruntime; "
          f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
