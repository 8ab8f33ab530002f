#!/usr/bin/env python3
"""nodes.py - the sum of per-node minimum times, onyx against onnxruntime.

On a shared machine a whole run's latency moves by tens of percent from one
second to the next, for both engines alike (docs/performance.md), and a
fresh-process ratio (compare.py) measures the neighbours as much as the
engines. The fastest of many runs of each node is much steadier: it is what
the kernel costs when the machine lets it run. Here each engine runs the
model N times with its profiler on (onyx through build/libonyx.so's
onyx_session_set_profiler, onnxruntime through enable_profiling), each
node's minimum over the runs is kept, and the sums are printed per op type
and in all, with their ratio. The two engines fuse differently, so nodes are
compared by op type (onnxruntime's FusedConv, QuickGelu, ... stay separate
rows) and by total; onnxruntime's layout reorders count in its total.

Usage: bench/nodes.py [--lib build/libonyx.so] [--models a,b] [--runs N]
                      [--threads T] [--batch B]
"""
import argparse
import collections
import ctypes as C
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import compare  # noqa: E402  (model building and onyx bench's input generator)
import interleaved  # noqa: E402  (the C API's structs over ctypes)


class ProfileEvent(C.Structure):
    _fields_ = [("op_type", C.c_char_p), ("node_name", C.c_char_p), ("ns", C.c_int64),
                ("flops", C.c_double)]


PROFILE_FN = C.CFUNCTYPE(None, C.c_void_p, C.POINTER(ProfileEvent))


class OnyxNodes:
    """An onyx session whose runs record each node's time (profiler)."""

    def __init__(self, lib, path, feeds, threads):
        self.lib = lib
        self.engine = interleaved.Onyx(lib, path, feeds, threads=threads)
        for _ in range(3):
            self.engine.run()
        self.best, self.seen = None, []

        def record(_user, event):
            self.seen.append((event.contents.op_type.decode(), event.contents.ns / 1e6))

        self.callback = PROFILE_FN(record)  # kept alive while the session uses it
        lib.onyx_session_set_profiler(self.engine.session, self.callback, None)

    def run(self, n):
        for _ in range(n):
            self.seen.clear()
            self.engine.run()
            self.best = list(self.seen) if self.best is None else [
                (t, min(m, s[1])) for (t, m), s in zip(self.best, self.seen)]

    def close(self):
        self.lib.onyx_session_set_profiler(self.engine.session, PROFILE_FN(0), None)
        self.engine.close()


class OrtNodes:
    """An onnxruntime session with its profiler on; `inputs` as
    compare.bench_inputs takes them."""

    def __init__(self, path, threads, tmp):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.enable_profiling = True
        so.profile_file_prefix = os.path.join(tmp, "ort")
        self.sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.inputs = [(i.name, i.type, i.shape) for i in self.sess.get_inputs()]

    def start(self, feeds):
        """Warm-up runs on `feeds` (minimums() leaves them out)."""
        self.feeds = feeds
        self.run(3)

    def run(self, n):
        for _ in range(n):
            self.sess.run(None, self.feeds)

    def minimums(self):
        """[(op_type, minimum ms)] per node; the 3 warm-up runs left out."""
        events = json.load(open(self.sess.end_profiling()))
        per = collections.OrderedDict()
        for e in events:
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
                per.setdefault(e["name"], []).append((e["args"].get("op_name", "?"),
                                                      e["dur"] / 1e3))
        return [(v[0][0], min(d for _, d in v[3:] or v)) for v in per.values()]


def measure(lib, path, runs, threads, feeds=None, batch=1, dims=None, rounds=5):
    """Per-node minimums of both engines, [(op_type, ms)] each, on `feeds`
    (None: onyx bench's generated inputs at `batch`, symbolic dimensions
    from `dims`). The runs go in `rounds` chunks, the engines' chunks
    alternating (a slow spell of the machine falls on both), with a pause
    between chunks so that one engine's idle threads have stopped spinning
    when the other starts."""
    with tempfile.TemporaryDirectory() as tmp:
        theirs = OrtNodes(path, threads, tmp)
        if feeds is None:
            feeds = compare.bench_inputs(theirs.inputs, batch, dims or {})
        theirs.start(feeds)
        mine = OnyxNodes(lib, path, feeds, threads)
        per = max(1, runs // rounds)
        for _ in range(rounds):
            for engine in (mine, theirs):
                time.sleep(0.1)
                engine.run(per)
        mine.close()
        return mine.best, theirs.minimums()


def by_type(nodes):
    out = collections.defaultdict(float)
    for t, ms in nodes:
        out[t] += ms
    return out


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lib", default=os.path.join(compare.ROOT, "build", "libonyx.so"))
    ap.add_argument("--models", default=",".join(compare.CNNS))
    ap.add_argument("--runs", type=int, default=0,
                    help="profiled runs of each engine (default: 100 for the small CNNs, 20 else)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args(argv)
    lib = C.CDLL(args.lib)
    lib.onyx_session_set_profiler.argtypes = [C.c_void_p, PROFILE_FN, C.c_void_p]
    for name in args.models.split(","):
        if name not in compare.MODELS:
            ap.error(f"unknown model {name}")
        runs = args.runs or (100 if name in compare.FAST_CNNS else 20)
        path, dims, _ = compare.model_setup(name)
        o, r = measure(lib, path, runs, args.threads, batch=args.batch, dims=dims)
        so, sr = sum(ms for _, ms in o), sum(ms for _, ms in r)
        print(f"\n{name}, batch {args.batch}, {args.threads} thread(s), minimum of {runs} runs "
              f"per node: onyx {so:.2f} ms ({len(o)} nodes), onnxruntime {sr:.2f} ms "
              f"({len(r)} nodes): {so / sr:.2f}x")
        to, tr = by_type(o), by_type(r)
        print("| op type | onyx ms | onnxruntime ms |")
        print("|---|---|---|")
        for t in sorted(set(to) | set(tr), key=lambda t: -max(to.get(t, 0), tr.get(t, 0))):
            print(f"| {t} | {to[t]:.3f} | {tr[t]:.3f} |" if t in to and t in tr else
                  f"| {t} | {to[t]:.3f} | - |" if t in to else f"| {t} | - | {tr[t]:.3f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1:])
