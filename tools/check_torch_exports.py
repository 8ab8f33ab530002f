#!/usr/bin/env python3
"""check_torch_exports.py - exports the real torchvision ResNet-50, MobileNetV2,
SqueezeNet 1.1 and EfficientNet-B0 with torch.onnx.export and checks that
`onyx run` agrees with onnxruntime on them (max abs diff <= 1e-4 on the
logits, same top-5), and that tools/build_models.py builds the same graphs.

Not run in CI: it needs torch and torchvision (about 1 GB), which the test
environment does not install. Run it by hand after changing the engine or
the builders, in a venv with the test requirements plus torch:

    python -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install \\
        -r tests/requirements.txt torch torchvision \\
        --extra-index-url https://download.pytorch.org/whl/cpu
    make && /tmp/torchenv/bin/python tools/check_torch_exports.py

Nothing is downloaded at run time: models are created with weights=None and
a fixed seed, BatchNorm statistics are calibrated on two synthetic images
(as training would set them), and the classifier is rescaled so the logits
spread by about 1.5, as in build_models.py, so the comparison is meaningful.

What it checks, per model:
  1. torch.onnx.export (TorchScript exporter, opset 17 by default, dynamic
     batch "batch", input "input", output "logits") passes onnx.checker.
  2. Structure: the export's sequence of operators and their shapes and
     attributes (Conv weight shapes, groups, kernels, strides, pads; pools;
     Gemm; Clip bounds; ...) equals the builder's, with BatchNorm folded
     (the exporter's default in eval mode) or kept (--keep-bn, which exports
     with training=TrainingMode.PRESERVE). Skipped for --dynamo exports,
     whose graphs are written differently (Reshape for Flatten, ...).
  3. Values at batch 1 and 4 (--batch): torch, onnxruntime (CPU, all graph
     optimizations) and onyx; onyx vs onnxruntime must be within --tol and
     have the same top-5; torch vs onnxruntime is printed for information.

Exit status: 0 when everything checked passes, 1 otherwise, 2 on bad usage
or when torch/torchvision are missing.
"""

import argparse
import collections
import inspect
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import build_models  # noqa: E402

SEED = 0
# Ops that carry no computation of their own in the comparison.
IGNORED_OPS = {"Constant", "Identity", "Dropout"}


# ----------------------------------------------------------------------------
# The torch side


def make_torch_model(torch, torchvision, name):
    """torchvision.models.<name>(weights=None) in eval mode, with BatchNorm
    statistics calibrated on synthetic images and the classifier rescaled."""
    torch.manual_seed(SEED)
    model = getattr(torchvision.models, name)(weights=None)
    model.eval()
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for bn in bns:
            # Trained-looking affine parameters (torchvision initializes 1 and 0).
            bn.weight.copy_(torch.rand(bn.num_features, generator=gen) * 0.8 + 0.6)
            bn.bias.copy_(torch.randn(bn.num_features, generator=gen) * 0.25)
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the calibration pass
            bn.train()
        calib = torch.from_numpy(build_models.test_input(build_models.CALIB_BATCH,
                                                         build_models.CALIB_SEED))
        # BN layers in train mode update their running statistics in one
        # pass; everything else (Dropout, StochasticDepth) stays in eval mode.
        # A single pass normalizes each layer with the statistics of its own
        # input, which is what the eval-mode model then sees.
        model(calib)
        for bn in bns:
            bn.eval()
        logits = model(calib)
        last = final_layer(model, name)
        scale = 1.5 / float(logits.std())
        last.weight.mul_(scale)
        last.bias.mul_(scale)
    return model


def final_layer(model, name):
    """The layer whose weight and bias scale the logits linearly (SqueezeNet's
    final conv is followed by ReLU and an average, both positively homogeneous)."""
    if name == "resnet50":
        return model.fc
    return model.classifier[1]


def export(torch, model, path, opset, keep_bn, dynamo):
    """torch.onnx.export with input "input", output "logits", batch dynamic."""
    x = torch.from_numpy(build_models.test_input(1))
    kwargs = dict(input_names=["input"], output_names=["logits"], opset_version=opset)
    params = inspect.signature(torch.onnx.export).parameters
    if dynamo:
        if "dynamo" not in params:
            raise SystemExit("this torch has no dynamo exporter (torch.onnx.export(dynamo=True))")
        batch = torch.export.Dim("batch", min=1, max=1024)
        kwargs.update(dynamo=True, dynamic_shapes={"x": {0: batch}})
    else:
        if "dynamo" in params:
            kwargs["dynamo"] = False  # torch >= 2.9 defaults to the dynamo exporter
        kwargs.update(dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=True,
                      training=(torch.onnx.TrainingMode.PRESERVE if keep_bn
                                else torch.onnx.TrainingMode.EVAL))
    torch.onnx.export(model, (x,), path, **kwargs)


# ----------------------------------------------------------------------------
# Structure comparison


def signature(model):
    """The model's computation as a list of strings, one per node in graph
    order: op type, the shapes of its constant inputs, the attributes that
    change results. Names, Constant/Identity nodes and the way constants are
    stored (initializer or Constant node) do not matter."""
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    consts[n.output[0]] = numpy_helper.to_array(a.t)
    alias = {}
    for n in model.graph.node:
        if n.op_type == "Identity" and n.input[0] in consts:
            consts[n.output[0]] = consts[n.input[0]]
        elif n.op_type in ("Identity", "Dropout"):
            alias[n.output[0]] = alias.get(n.input[0], n.input[0])
    out = []
    for n in model.graph.node:
        if n.op_type in IGNORED_OPS:
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        parts = [n.op_type]
        if n.op_type == "Conv":
            w = consts[n.input[1]]
            parts += [f"w{list(w.shape)}", f"bias={len(n.input) > 2 and n.input[2] != ''}",
                      f"group={attrs.get('group', 1)}",
                      f"k={list(attrs.get('kernel_shape', w.shape[2:]))}",
                      f"s={list(attrs.get('strides', [1, 1]))}",
                      f"p={list(attrs.get('pads', [0, 0, 0, 0]))}",
                      f"d={list(attrs.get('dilations', [1, 1]))}"]
        elif n.op_type == "MaxPool":
            parts += [f"k={list(attrs['kernel_shape'])}", f"s={list(attrs.get('strides', [1, 1]))}",
                      f"p={list(attrs.get('pads', [0, 0, 0, 0]))}",
                      f"ceil={attrs.get('ceil_mode', 0)}"]
        elif n.op_type == "Gemm":
            parts += [f"w{list(consts[n.input[1]].shape)}", f"transB={attrs.get('transB', 0)}",
                      f"alpha={attrs.get('alpha', 1.0)}", f"beta={attrs.get('beta', 1.0)}"]
        elif n.op_type == "BatchNormalization":
            parts += [f"c={consts[n.input[1]].shape[0]}", f"eps={attrs.get('epsilon', 1e-5):.0e}"]
        elif n.op_type == "Clip":
            bounds = [(float(consts[i].reshape(-1)[0]), consts[i].ndim) if i in consts else None
                      for i in n.input[1:]]
            parts += [f"bounds(value,rank)={bounds}"]
        elif n.op_type in ("Flatten", "Concat"):
            parts += [f"axis={attrs.get('axis', 1)}"]
        out.append(" ".join(parts))
    return out


def compare_structure(exported, built):
    """Returns a list of messages, empty when the two signatures agree."""
    a, b = signature(exported), signature(built)
    if a == b:
        return []
    msgs = [f"structure differs: torch export has {len(a)} nodes, builder {len(b)}"]
    ca, cb = collections.Counter(s.split()[0] for s in a), collections.Counter(s.split()[0] for s in b)
    if ca != cb:
        msgs.append(f"  op counts: torch {dict(ca)}")
        msgs.append(f"             builder {dict(cb)}")
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            msgs.append(f"  first difference at node {i}:\n    torch:   {x}\n    builder: {y}")
            break
    return msgs


# ----------------------------------------------------------------------------
# Values


def ort_logits(path, x):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def onyx_logits(onyx, path, x, workdir, threads):
    """Runs `onyx run`; returns (logits or None, error text)."""
    npy = os.path.join(workdir, "x.npy")
    out = os.path.join(workdir, "out")
    np.save(npy, x)
    cmd = [onyx, "run", path, "-i", npy, "-o", out]
    if threads:
        cmd += ["--threads", str(threads)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        return None, f"onyx exited {r.returncode}: {r.stderr.strip()}"
    files = [f for f in os.listdir(out) if f.endswith(".npy")]
    if len(files) != 1:
        return None, f"onyx wrote {files}, expected one output"
    return np.load(os.path.join(out, files[0])), ""


def compare_values(got, want, tol):
    """Messages for onyx vs onnxruntime; empty when they agree."""
    if got.shape != want.shape or got.dtype != np.float32:
        return [f"onyx gave {got.dtype}{list(got.shape)}, onnxruntime {want.dtype}{list(want.shape)}"]
    if not np.isfinite(got).all():
        return ["onyx gave non-finite logits"]
    msgs = []
    diff = float(np.abs(got.astype(np.float64) - want).max())
    if diff > tol:
        msgs.append(f"max abs diff {diff:.3g} > {tol}")
    for row in range(got.shape[0]):
        a = np.argsort(-got[row], kind="stable")[:5].tolist()
        b = np.argsort(-want[row], kind="stable")[:5].tolist()
        if a != b:
            msgs.append(f"image {row}: top-5 {a} != onnxruntime's {b}")
    return msgs


# ----------------------------------------------------------------------------


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("models", nargs="*", metavar="MODEL",
                    help=f"models to check (default: all of {', '.join(build_models.MODELS)})")
    ap.add_argument("--onyx", default=os.environ.get("ONYX", os.path.join(ROOT, "build", "onyx")),
                    help="onyx binary (default: $ONYX or build/onyx)")
    ap.add_argument("--no-onyx", action="store_true", help="only export, check structure, run ORT")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--keep-bn", action="store_true",
                    help="export with TrainingMode.PRESERVE: BatchNormalization nodes stay")
    ap.add_argument("--dynamo", action="store_true", help="use the dynamo exporter")
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--threads", type=int, default=0, help="pass --threads N to onyx")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--out", help="keep the exported models in this folder")
    args = ap.parse_args(argv)
    unknown = [m for m in args.models if m not in build_models.MODELS]
    if unknown:
        ap.error(f"unknown model {unknown[0]}; choose from {', '.join(build_models.MODELS)}")
    try:
        import torch
        import torchvision
    except ImportError as e:
        print(f"check_torch_exports: needs torch and torchvision ({e}); see --help",
              file=sys.stderr)
        return 2
    if not args.no_onyx and not os.access(args.onyx, os.X_OK):
        print(f"check_torch_exports: no onyx binary at {args.onyx} (make, --onyx, or --no-onyx)",
              file=sys.stderr)
        return 2
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, onnx "
          f"{onnx.__version__}, opset {args.opset}, BatchNorm "
          f"{'kept' if args.keep_bn else 'folded'}, {'dynamo' if args.dynamo else 'TorchScript'} "
          f"exporter", flush=True)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        outdir = args.out or tmp
        os.makedirs(outdir, exist_ok=True)
        for name in args.models or build_models.MODELS:
            problems = []
            path = os.path.join(outdir, f"{name}_torch_opset{args.opset}.onnx")
            model = make_torch_model(torch, torchvision, name)
            export(torch, model, path, args.opset, args.keep_bn, args.dynamo)
            exported = onnx.load(path)
            onnx.checker.check_model(exported, full_check=True)
            if not args.dynamo:
                built = build_models.build(name, args.opset, fold_bn=not args.keep_bn)
                problems += compare_structure(exported, built)
            for batch in args.batch:
                x = build_models.test_input(batch)
                with torch.no_grad():
                    want_torch = model(torch.from_numpy(x)).numpy()
                want = ort_logits(path, x)
                line = (f"{name} batch {batch}: torch vs onnxruntime "
                        f"{np.abs(want_torch - want).max():.2e}")
                if not args.no_onyx:
                    got, err = onyx_logits(args.onyx, path, x, tmp, args.threads)
                    if got is None:
                        problems.append(f"batch {batch}: {err}")
                    else:
                        line += f", onyx vs onnxruntime {np.abs(got - want).max():.2e}"
                        problems += [f"batch {batch}: {m}" for m in
                                     compare_values(got, want, args.tol)]
                print(line, flush=True)
            for p in problems:
                print(f"{name}: FAIL {p}", flush=True)
            print(f"{name}: {'FAIL' if problems else 'ok'}", flush=True)
            failures += bool(problems)
    print(f"{len(args.models or build_models.MODELS) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
