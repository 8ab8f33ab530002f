#!/usr/bin/env python3
"""interleaved.py - onyx and onnxruntime in one process, one run each in turn.

compare.py measures each engine in fresh processes, a round at a time; on a
shared machine the load can change between two processes, and a ratio then
measures the neighbours as much as the engines. Here both engines live in
one process (onyx through build/libonyx.so and ctypes, onnxruntime through
its Python API), and their runs alternate one by one (ABBA), so that every
change in the machine falls on both alike. Printed per model: mean, p50 and
min of each engine and their ratios.

One thread only: with two, each engine's idle pool threads spin while the
other runs and take its second core, so the ratio would measure that.

Usage: bench/interleaved.py [--lib build/libonyx.so] [--models a,b]
                            [--runs N] [--batch B]
"""
import argparse
import ctypes as C
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import compare  # noqa: E402  (model building and onyx bench's input generator)

# The public API's structs (include/onyx.h), as ctypes sees them.
MAX_DIMS = 8
DTYPES = {np.dtype(np.float32): 1, np.dtype(np.int64): 7, np.dtype(np.int32): 6,
          np.dtype(np.float64): 11, np.dtype(np.bool_): 9}


class Options(C.Structure):
    _fields_ = [("threads", C.c_int), ("memory_limit", C.c_size_t), ("optimize", C.c_int),
                ("sub_batch", C.c_int)]


class Error(C.Structure):
    _fields_ = [("status", C.c_int), ("message", C.c_char * 512)]


class TensorView(C.Structure):
    _fields_ = [("dtype", C.c_int), ("ndim", C.c_int), ("dims", C.c_int64 * MAX_DIMS),
                ("data", C.c_void_p)]


class Onyx:
    """One onyx session over the C API, run on numpy feeds."""

    def __init__(self, lib, path, feeds, threads=1):
        self.lib, self.err = lib, Error()
        opts = Options()
        lib.onyx_options_init(C.byref(opts))
        opts.threads = threads
        self.model, self.session = C.c_void_p(), C.c_void_p()
        if lib.onyx_model_load_file(path.encode(), C.byref(opts), C.byref(self.model),
                                    C.byref(self.err)):
            raise RuntimeError(self.err.message.decode())
        if lib.onyx_session_new(self.model, C.byref(opts), C.byref(self.session),
                                C.byref(self.err)):
            raise RuntimeError(self.err.message.decode())
        self.feeds = {k: np.ascontiguousarray(v) for k, v in feeds.items()}
        n = len(self.feeds)
        self.names = (C.c_char_p * n)(*[k.encode() for k in self.feeds])
        self.views = (TensorView * n)()
        for i, a in enumerate(self.feeds.values()):
            self.views[i].dtype = DTYPES[a.dtype]
            self.views[i].ndim = a.ndim
            for d, v in enumerate(a.shape):
                self.views[i].dims[d] = v
            self.views[i].data = a.ctypes.data
        self.n, self.n_out = n, lib.onyx_model_num_outputs(self.model)
        self.out = (TensorView * self.n_out)()

    def run(self):
        if self.lib.onyx_session_run_tensors(self.session, self.n, self.names, self.views,
                                             self.n_out, None, self.out, C.byref(self.err)):
            raise RuntimeError(self.err.message.decode())

    def outputs(self):
        """The last run's float32 outputs, copied (tests check the layout)."""
        res = []
        for v in self.out:
            if v.dtype != 1:
                raise RuntimeError("only float32 outputs are read back")
            shape = tuple(v.dims[d] for d in range(v.ndim))
            n = int(np.prod(shape, dtype=np.int64))
            res.append(np.ctypeslib.as_array((C.c_float * n).from_address(v.data))
                       .reshape(shape).copy())
        return res

    def close(self):
        self.lib.onyx_session_free(self.session)
        self.lib.onyx_model_free(self.model)


def measure(lib, name, runs, batch):
    import onnxruntime as ort
    path, dims, _ = compare.model_setup(name)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    inputs = [(i.name, i.type, i.shape) for i in sess.get_inputs()]
    feeds = compare.bench_inputs(inputs, batch, dims)
    onyx = Onyx(lib, path, feeds)
    engines = {"onyx": onyx.run, "ort": lambda: sess.run(None, feeds)}
    for _ in range(3):
        for f in engines.values():
            f()
    times = {k: [] for k in engines}
    for r in range(runs):
        order = ("onyx", "ort") if r % 2 == 0 else ("ort", "onyx")
        for k in order:
            t = time.perf_counter()
            engines[k]()
            times[k].append((time.perf_counter() - t) * 1e3)
    onyx.close()
    return times


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lib", default=os.path.join(compare.ROOT, "build", "libonyx.so"))
    ap.add_argument("--models", default=",".join(compare.CNNS))
    ap.add_argument("--runs", type=int, default=0,
                    help="runs of each engine (default: 200 for the small CNNs, 40 else)")
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args(argv)
    lib = C.CDLL(args.lib)
    print("| model | batch | onyx mean / p50 / min ms | ort mean / p50 / min ms "
          "| ratio mean | ratio p50 | ratio min |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        if name not in compare.MODELS:
            ap.error(f"unknown model {name}")
        runs = args.runs or (200 if name in compare.FAST_CNNS else 40)
        t = measure(lib, name, runs, args.batch)
        s = {k: (statistics.mean(v), statistics.median(v), min(v)) for k, v in t.items()}
        o, r = s["onyx"], s["ort"]
        print(f"| {name} | {args.batch} | {o[0]:.1f} / {o[1]:.1f} / {o[2]:.1f} "
              f"| {r[0]:.1f} / {r[1]:.1f} / {r[2]:.1f} "
              f"| {o[0] / r[0]:.2f}x | {o[1] / r[1]:.2f}x | {o[2] / r[2]:.2f}x |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
