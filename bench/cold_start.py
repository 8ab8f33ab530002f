#!/usr/bin/env python3
"""cold_start.py - process start to first prediction: a bundled onyx app
(`onyx bundle`) beside onnxruntime's session creation, measured in the same
run on the same MobileNetV2-sized model.

Usage:
    bench/cold_start.py [--onyx build/onyx] [--model M.onnx] [--runs N]
                        [--threads T] [--drop-caches] [--json]

Without --model it builds MobileNetV2 (tools/build_models.py --out DIR
mobilenet_v2: 3.5 M parameters, 14 MB, opset 17) into a temporary directory,
bundles it into one executable and times, each in a fresh process, best and
median of N runs after one untimed warm-up:

  onyx app predict   ./app predict cat.jpg       (bundled: model mapped from the app)
  onyx app run       ./app run -i x.npy -o DIR   (bundled, tensor in and out)
  onyx predict       onyx predict model.onnx cat.jpg   (the same from a model file)
  ort process        python -c 'import onnxruntime; InferenceSession(...); run(...)'
                     spawn to exit, with, from inside that process,
  ort import         import onnxruntime (+ numpy)
  ort session        InferenceSession creation only
  ort first run      the first run of the new session

Every onyx figure is spawn to exit of the process (the prediction is printed
just before exit). The page cache is warm (the warm-up read the files) unless
--drop-caches is given and permitted (root, writable /proc/sys/vm/drop_caches),
in which case the caches are dropped before every timed run. Numbers only; no
assertions. Threads: all available cores unless --threads.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ORT_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import onnxruntime as ort
t1 = time.perf_counter()
so = ort.SessionOptions()
if int(sys.argv[2]) > 0:
    so.intra_op_num_threads = int(sys.argv[2])
s = ort.InferenceSession(sys.argv[1], so, providers=["CPUExecutionProvider"])
t2 = time.perf_counter()
x = np.load(sys.argv[3])
y = s.run(None, {s.get_inputs()[0].name: x})[0]
t3 = time.perf_counter()
print(json.dumps({"import_ms": (t1 - t0) * 1e3, "session_ms": (t2 - t1) * 1e3,
                  "first_run_ms": (t3 - t2) * 1e3, "argmax": int(y[0].argmax())}))
"""


def drop_caches():
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def timed(cmd, cold):
    """Wall milliseconds from spawn to exit, and the process's stdout."""
    if cold:
        drop_caches()
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    ms = (time.perf_counter() - t0) * 1e3
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: exit {r.returncode}\n{r.stderr}")
    return ms, r.stdout


def summary(values):
    return {"best_ms": min(values), "median_ms": statistics.median(values), "runs": len(values)}


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--onyx", default=os.path.join(ROOT, "build", "onyx"))
    ap.add_argument("--model", help="an image classifier .onnx (default: build MobileNetV2)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--drop-caches", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    cold = args.drop_caches and drop_caches()
    if args.drop_caches and not cold:
        print("note: cannot drop the page cache (needs root); measuring warm", file=sys.stderr)

    import numpy as np
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="onyx-cold-") as work:
        model = args.model
        if not model:
            subprocess.run([sys.executable, os.path.join(ROOT, "tools", "build_models.py"),
                            "--out", work, "mobilenet_v2"], check=True, capture_output=True)
            model = os.path.join(work, "mobilenet_v2_opset17.onnx")
        app = os.path.join(work, "app")
        # Bundle from the stripped copy the build leaves beside onyx, as one ships it.
        stripped = args.onyx + ".stripped"
        base = stripped if os.path.exists(stripped) else args.onyx
        subprocess.run([base, "bundle", f"model={model}", "-o", app], check=True,
                       capture_output=True)
        rs = np.random.RandomState(0)
        img = os.path.join(work, "cat.jpg")
        Image.fromarray((rs.rand(256, 320, 3) * 255).astype(np.uint8)).save(img, quality=90)
        x = os.path.join(work, "x.npy")
        np.save(x, rs.rand(1, 3, 224, 224).astype(np.float32))
        script = os.path.join(work, "ort_cold.py")
        with open(script, "w") as f:
            f.write(ORT_SCRIPT)
        out = os.path.join(work, "out")
        th = ["--threads", str(args.threads)] if args.threads else []

        cases = {
            "onyx app predict": [app, "predict", img, *th],
            "onyx app run": [app, "run", "-i", x, "-o", out, *th],
            "onyx predict": [args.onyx, "predict", model, img, *th],
        }
        ort_cmd = [sys.executable, script, model, str(args.threads), x]
        results, ort_parts = {}, {"import_ms": [], "session_ms": [], "first_run_ms": []}
        for name, cmd in cases.items():  # warm-up: fills the page cache, checks it works
            timed(cmd, False)
        timed(ort_cmd, False)
        samples = {name: [] for name in cases}
        samples["ort process"] = []
        for _ in range(args.runs):  # interleaved, so drift hits every case alike
            for name, cmd in cases.items():
                samples[name].append(timed(cmd, cold)[0])
            ms, text = timed(ort_cmd, cold)
            samples["ort process"].append(ms)
            for k, v in json.loads(text).items():
                if k in ort_parts:
                    ort_parts[k].append(v)
        for name, values in samples.items():
            results[name] = summary(values)
        for k, label in [("import_ms", "ort import"), ("session_ms", "ort session"),
                         ("first_run_ms", "ort first run")]:
            results[label] = summary(ort_parts[k])

        size = {"app_mb": os.path.getsize(app) / 2**20, "model_mb": os.path.getsize(model) / 2**20}
    if args.json:
        print(json.dumps({"cold_page_cache": cold, "threads": args.threads, **size,
                          "results": results}, indent=2))
        return 0
    print(f"model {size['model_mb']:.1f} MB, bundled app {size['app_mb']:.1f} MB, "
          f"page cache {'dropped' if cold else 'warm'}, threads "
          f"{args.threads or 'all'}, {args.runs} runs")
    print(f"{'':22}{'best ms':>10}{'median ms':>11}")
    for name, r in results.items():
        print(f"{name:22}{r['best_ms']:10.1f}{r['median_ms']:11.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
