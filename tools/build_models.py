#!/usr/bin/env python3
"""build_models.py - builds torchvision's ResNet-50, MobileNetV2, SqueezeNet 1.1
and EfficientNet-B0 as ONNX graphs with onnx.helper, layer for layer as
torch.onnx.export writes them, with random but deterministic weights.

It owns the test models of tests/models/ and tests/cli/ (cached under
tests/models/cache/, keyed by a hash of this file); it does not need torch.
tools/check_torch_exports.py checks the same architectures from real torch
exports where torch is installed, and compares their structure with these.

Usage:
    build_models.py [--out DIR] [--opset N] [--fold-bn] [--stats] [MODEL...]

Without --out, models go to the cache and their paths are printed. --stats runs
each built model in onnxruntime and prints the logits' range and the time.

Choices (see docs/testing.md):
- BatchNormalization nodes are kept (as torch exports a model in eval mode
  with training=TrainingMode.PRESERVE, or the dynamo exporter before its
  optimizer); --fold-bn folds them into the preceding Conv, which is what the
  TorchScript exporter does by default in eval mode.
- ReLU6 is Clip with min/max given as inputs (scalar initializers), SiLU is
  Sigmoid followed by Mul, AdaptiveAvgPool2d(1) is GlobalAveragePool, the
  classifier is Flatten + Gemm(transB=1) (SqueezeNet: 1x1 Conv + ReLU +
  GlobalAveragePool + Flatten, as torchvision defines it). Dropout and
  StochasticDepth are identity in eval mode and absent, as in torch exports.
- Weights: He-normal convolutions; BatchNorm running statistics set, as
  training would, to the per-channel mean and variance (give or take a
  little) that the layer sees on two calibration images, run through the
  graph in numpy while it is built; gamma/beta random, residual-branch gammas
  below 1; the classifier scaled so the logits spread by about 1.5. The
  logits are then neither all zeros nor exploding, and differ from image to
  image.
- Input "input" [batch,3,224,224] float, output "logits" [batch,1000], with a
  symbolic batch dimension "batch". Opset 17 by default; the IR version is the
  lowest that opset allows (what torch writes).
"""

import argparse
import collections
import functools
import hashlib
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MODELS = ("resnet50", "mobilenet_v2", "squeezenet1_1", "efficientnet_b0")
SEEDS = {"resnet50": 50, "mobilenet_v2": 2, "squeezenet1_1": 11, "efficientnet_b0": 0}
NUM_CLASSES = 1000
BN_EPS = 1e-5  # torch.nn.BatchNorm2d default; torchvision's B0 keeps it
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, "tests", "models", "cache")

CALIB_BATCH, CALIB_SEED = 2, 7  # images that set BN statistics (not the test images)


# ----------------------------------------------------------------------------
# Calibration math: a plain numpy forward pass on two images, used only to
# choose BatchNorm running statistics and classifier scales that a trained
# network would have. It is never an oracle: the tests compare against
# onnxruntime.


def np_conv(x, w, b, stride, pad, groups):
    """Conv2d of x (N, C, H, W) with w (K, C/groups, kh, kw), float32."""
    n, c, h, wd = x.shape
    k, cg, kh, kw = w.shape
    ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((n, k, ho, wo), np.float32)
    for i in range(kh):
        for j in range(kw):
            xs = xp[:, :, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
            if groups == 1:
                out += np.einsum("kc,nchw->nkhw", w[:, :, i, j], xs, optimize=True)
            else:  # depthwise: one input channel per output channel
                assert groups == c == k and cg == 1
                out += xs * w[None, :, 0, i, j, None, None]
    if b is not None:
        out += b[None, :, None, None]
    return out


def np_maxpool(x, pad, ceil_mode):
    """MaxPool 3x3 stride 2 with torch's rule for the extra ceil-mode window."""
    h = x.shape[2]
    if ceil_mode:
        ho = -(-(h + 2 * pad - 3) // 2) + 1
        if (ho - 1) * 2 >= h + pad:
            ho -= 1
    else:
        ho = (h + 2 * pad - 3) // 2 + 1
    extra = (ho - 1) * 2 + 3 - (h + 2 * pad)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad + extra), (pad, pad + extra)),
                constant_values=-np.inf)
    out = np.full(x.shape[:2] + (ho, ho), -np.inf, np.float32)
    for i in range(3):
        for j in range(3):
            out = np.maximum(out, xp[:, :, i:i + 2 * (ho - 1) + 1:2, j:j + 2 * (ho - 1) + 1:2])
    return out


def _sigmoid(x):
    return (1.0 / (1.0 + np.exp(-x))).astype(np.float32)


class Value:
    """A graph value: its name and its calibration data (N, C, ...)."""

    def __init__(self, name, data):
        self.name, self.data = name, data


# ----------------------------------------------------------------------------
# Graph builder


class Graph:
    """Accumulates nodes and initializers with torch-style names."""

    def __init__(self, name, seed):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.inits = []
        self.used = set()
        self.clip_bounds = None

    def init(self, name, array):
        assert name not in self.used, name
        self.used.add(name)
        # np.asarray, not np.ascontiguousarray, which turns a scalar into [1].
        self.inits.append(numpy_helper.from_array(np.asarray(array, dtype=np.float32), name))
        return name

    def node(self, op, inputs, scope, **attrs):
        """Adds one node named like torch's exporter ("/layer1.0/conv1/Conv")
        and returns the name of its single output."""
        base = f"/{scope}/{op}" if scope else f"/{op}"
        name, k = base, 1
        while name in self.used:
            name = f"{base}_{k}"
            k += 1
        self.used.add(name)
        out = name + "_output_0"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def he(self, cout, cin, k, groups=1):
        """He-normal convolution weight, float32 (K, C/groups, k, k)."""
        fan_in = cin // groups * k * k
        return self.rng.standard_normal((cout, cin // groups, k, k), np.float32) * \
            np.float32(np.sqrt(2.0 / fan_in))

    # -- layers ---------------------------------------------------------------

    def conv(self, x, cin, cout, k, stride=1, groups=1, scope="", pad=None, bias_std=0.1):
        """nn.Conv2d(cin, cout, k, stride, padding=(k-1)//2, groups, bias=True)
        with a He-normal weight. Torch writes dilations, group, kernel_shape,
        pads and strides explicitly."""
        w = self.he(cout, cin, k, groups)
        b = (self.rng.standard_normal(cout) * bias_std).astype(np.float32)
        pad = (k - 1) // 2 if pad is None else pad
        out = self.node("Conv", [x.name, self.init(scope + ".weight", w),
                                 self.init(scope + ".bias", b)], scope,
                        dilations=[1, 1], group=groups, kernel_shape=[k, k], pads=[pad] * 4,
                        strides=[stride, stride])
        return Value(out, np_conv(x.data, w, b, stride, pad, groups))

    def conv_bn(self, x, cin, cout, k, stride=1, groups=1, conv_scope="", bn_scope="",
                gamma=(0.6, 1.4), beta_std=0.25):
        """nn.Conv2d(bias=False) then nn.BatchNorm2d in eval mode. The running
        statistics are those of the convolution output on the calibration
        images, give or take a little (as after training), so the output is
        about N(beta, gamma^2) per channel."""
        w = self.he(cout, cin, k, groups)
        pad = (k - 1) // 2
        z = np_conv(x.data, w, None, stride, pad, groups)
        zmean, zvar = z.mean(axis=(0, 2, 3), dtype=np.float64), z.var(axis=(0, 2, 3), dtype=np.float64)
        g = self.rng.uniform(gamma[0], gamma[1], cout)
        b = self.rng.standard_normal(cout) * beta_std
        mean = zmean + self.rng.standard_normal(cout) * 0.1 * np.sqrt(zvar)
        var = zvar * self.rng.uniform(0.8, 1.25, cout)
        g, b, mean, var = (a.astype(np.float32) for a in (g, b, mean, var))
        s = g / np.sqrt(var + np.float32(BN_EPS))
        y = (z - mean[None, :, None, None]) * s[None, :, None, None] + b[None, :, None, None]
        c = self.node("Conv", [x.name, self.init(conv_scope + ".weight", w)], conv_scope,
                      dilations=[1, 1], group=groups, kernel_shape=[k, k], pads=[pad] * 4,
                      strides=[stride, stride])
        ins = [c] + [self.init(f"{bn_scope}.{p}", a) for p, a in
                     (("weight", g), ("bias", b), ("running_mean", mean), ("running_var", var))]
        return Value(self.node("BatchNormalization", ins, bn_scope, epsilon=BN_EPS, momentum=0.9), y)

    def relu(self, x, scope):
        return Value(self.node("Relu", [x.name], scope), np.maximum(x.data, 0))

    def relu6(self, x, scope):
        """nn.ReLU6 = hardtanh(0, 6): torch writes Clip with min and max inputs."""
        if self.clip_bounds is None:
            self.clip_bounds = (self.init("clip_min", np.array(0.0)),
                                self.init("clip_max", np.array(6.0)))
        return Value(self.node("Clip", [x.name, *self.clip_bounds], scope), np.clip(x.data, 0, 6))

    def silu(self, x, scope):
        """nn.SiLU: torch writes Mul(x, Sigmoid(x))."""
        s = self.node("Sigmoid", [x.name], scope)
        return Value(self.node("Mul", [x.name, s], scope), x.data * _sigmoid(x.data))

    def add(self, a, b, scope):
        return Value(self.node("Add", [a.name, b.name], scope), a.data + b.data)

    def maxpool(self, x, scope, pad, ceil_mode):
        """nn.MaxPool2d(3, 2, padding=pad, ceil_mode)."""
        return Value(self.node("MaxPool", [x.name], scope, ceil_mode=ceil_mode, dilations=[1, 1],
                               kernel_shape=[3, 3], pads=[pad] * 4, strides=[2, 2]),
                     np_maxpool(x.data, pad, ceil_mode))

    def gap(self, x, scope):
        """nn.AdaptiveAvgPool2d(1): torch writes GlobalAveragePool."""
        return Value(self.node("GlobalAveragePool", [x.name], scope),
                     x.data.mean(axis=(2, 3), keepdims=True))

    def classifier(self, x, cin, scope, spread=1.5):
        """torch.flatten(x, 1) then nn.Linear(cin, 1000): Flatten + Gemm(transB=1),
        weights scaled for logits with a standard deviation near `spread`."""
        f = self.node("Flatten", [x.name], "", axis=1)
        m2 = float(np.mean(np.sum(x.data.reshape(x.data.shape[0], -1).astype(np.float64) ** 2,
                                  axis=1)))
        w = self.rng.standard_normal((NUM_CLASSES, cin)) * spread / np.sqrt(m2)
        b = self.rng.standard_normal(NUM_CLASSES) * 0.1
        return self.node("Gemm", [f, self.init(scope + ".weight", w), self.init(scope + ".bias", b)],
                         scope, alpha=1.0, beta=1.0, transB=1)

    def finish(self, last_node_output):
        """Renames the last value to "logits" and wraps the graph in a model
        (opset and IR version are set by build())."""
        for n in self.nodes:
            for i, o in enumerate(n.output):
                if o == last_node_output:
                    n.output[i] = "logits"
        inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, 224, 224])
        out = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", NUM_CLASSES])
        graph = helper.make_graph(self.nodes, "main_graph", [inp], [out], self.inits)
        return helper.make_model(graph, producer_name="onyx tools/build_models.py",
                                 producer_version=builder_hash())


def model_input():
    """The graph input, with the calibration images."""
    return Value("input", test_input(CALIB_BATCH, CALIB_SEED))


# ----------------------------------------------------------------------------
# Architectures (torchvision.models, eval mode); initializer names are
# torchvision's state_dict keys.


def resnet50(g):
    """torchvision.models.resnet50: Bottleneck blocks [3, 4, 6, 3], stride on the
    3x3 conv (ResNet v1.5), 1x1 conv + BN downsample on each stage's first block."""
    x = g.conv_bn(model_input(), 3, 64, 7, 2, conv_scope="conv1", bn_scope="bn1")
    x = g.relu(x, "relu")
    x = g.maxpool(x, "maxpool", 1, 0)
    inplanes = 64
    for li, (planes, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2),
                                                   (512, 3, 2)]):
        for bi in range(blocks):
            s = stride if bi == 0 else 1
            p = f"layer{li + 1}.{bi}"
            identity = x
            y = g.conv_bn(x, inplanes, planes, 1, 1, conv_scope=f"{p}.conv1", bn_scope=f"{p}.bn1")
            y = g.relu(y, f"{p}.relu")
            y = g.conv_bn(y, planes, planes, 3, s, conv_scope=f"{p}.conv2", bn_scope=f"{p}.bn2")
            y = g.relu(y, f"{p}.relu")
            y = g.conv_bn(y, planes, planes * 4, 1, 1, conv_scope=f"{p}.conv3",
                          bn_scope=f"{p}.bn3", gamma=(0.2, 0.5), beta_std=0.05)
            if bi == 0:
                identity = g.conv_bn(x, inplanes, planes * 4, 1, s,
                                     conv_scope=f"{p}.downsample.0", bn_scope=f"{p}.downsample.1")
            x = g.relu(g.add(y, identity, p), f"{p}.relu")
            inplanes = planes * 4
    x = g.gap(x, "avgpool")
    return g.classifier(x, 2048, "fc")


def mobilenet_v2(g):
    """torchvision.models.mobilenet_v2 (width 1.0): inverted residuals with ReLU6,
    linear 1x1 projection, residual when stride 1 and channels match."""
    x = g.conv_bn(model_input(), 3, 32, 3, 2, conv_scope="features.0.0", bn_scope="features.0.1")
    x = g.relu6(x, "features.0.2")
    cin, idx = 32, 1
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                       (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = int(round(cin * t))
            p = f"features.{idx}.conv"
            y, j = x, 0
            if t != 1:
                y = g.conv_bn(y, cin, hidden, 1, conv_scope=f"{p}.0.0", bn_scope=f"{p}.0.1")
                y = g.relu6(y, f"{p}.0.2")
                j = 1
            y = g.conv_bn(y, hidden, hidden, 3, stride, groups=hidden, conv_scope=f"{p}.{j}.0",
                          bn_scope=f"{p}.{j}.1")
            y = g.relu6(y, f"{p}.{j}.2")
            res = stride == 1 and cin == c
            y = g.conv_bn(y, hidden, c, 1, conv_scope=f"{p}.{j + 1}", bn_scope=f"{p}.{j + 2}",
                          gamma=(0.3, 0.7) if res else (0.6, 1.4))
            x = g.add(x, y, f"features.{idx}") if res else y
            cin, idx = c, idx + 1
    x = g.conv_bn(x, 320, 1280, 1, conv_scope=f"features.{idx}.0", bn_scope=f"features.{idx}.1")
    x = g.relu6(x, f"features.{idx}.2")
    x = g.gap(x, "")
    return g.classifier(x, 1280, "classifier.1")


def squeezenet1_1(g):
    """torchvision.models.squeezenet1_1: no BatchNorm, Fire modules (squeeze 1x1,
    expand 1x1 and 3x3 concatenated), ceil-mode max pools, and a 1x1 Conv +
    ReLU + global average pool classifier instead of a Linear layer."""

    def fire(x, idx, cin, sq, e1, e3):
        p = f"features.{idx}"
        s = g.relu(g.conv(x, cin, sq, 1, scope=f"{p}.squeeze"), f"{p}.squeeze_activation")
        a = g.relu(g.conv(s, sq, e1, 1, scope=f"{p}.expand1x1"), f"{p}.expand1x1_activation")
        b = g.relu(g.conv(s, sq, e3, 3, scope=f"{p}.expand3x3"), f"{p}.expand3x3_activation")
        return Value(g.node("Concat", [a.name, b.name], p, axis=1),
                     np.concatenate([a.data, b.data], axis=1))

    x = g.relu(g.conv(model_input(), 3, 64, 3, 2, scope="features.0", pad=0), "features.1")
    x = g.maxpool(x, "features.2", 0, 1)
    x = fire(x, 3, 64, 16, 64, 64)
    x = fire(x, 4, 128, 16, 64, 64)
    x = g.maxpool(x, "features.5", 0, 1)
    x = fire(x, 6, 128, 32, 128, 128)
    x = fire(x, 7, 256, 32, 128, 128)
    x = g.maxpool(x, "features.8", 0, 1)
    x = fire(x, 9, 256, 48, 192, 192)
    x = fire(x, 10, 384, 48, 192, 192)
    x = fire(x, 11, 384, 64, 256, 256)
    x = fire(x, 12, 512, 64, 256, 256)
    x = g.relu(g.conv(x, 512, NUM_CLASSES, 1, scope="classifier.1"), "classifier.2")
    x = g.gap(x, "classifier.3")
    return g.node("Flatten", [x.name], "", axis=1)


def efficientnet_b0(g):
    """torchvision.models.efficientnet_b0: MBConv blocks with SiLU, squeeze-and-
    excitation (GlobalAveragePool, 1x1 Conv, SiLU, 1x1 Conv, Sigmoid, Mul) on
    the expanded channels, linear 1x1 projection; BatchNorm eps 1e-5."""
    x = g.conv_bn(model_input(), 3, 32, 3, 2, conv_scope="features.0.0", bn_scope="features.0.1")
    x = g.silu(x, "features.0.2")
    stage = 1
    for t, k, s, cin0, cout, n in [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
                                   (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3),
                                   (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]:
        for i in range(n):
            cin, stride = (cin0, s) if i == 0 else (cout, 1)
            hidden = make_divisible(cin * t, 8)
            p = f"features.{stage}.{i}.block"
            y, j = x, 0
            if hidden != cin:
                y = g.conv_bn(y, cin, hidden, 1, conv_scope=f"{p}.0.0", bn_scope=f"{p}.0.1")
                y = g.silu(y, f"{p}.0.2")
                j = 1
            y = g.conv_bn(y, hidden, hidden, k, stride, groups=hidden, conv_scope=f"{p}.{j}.0",
                          bn_scope=f"{p}.{j}.1")
            y = g.silu(y, f"{p}.{j}.2")
            y = squeeze_excitation(g, y, hidden, max(1, cin // 4), f"{p}.{j + 1}")
            res = stride == 1 and cin == cout
            y = g.conv_bn(y, hidden, cout, 1, conv_scope=f"{p}.{j + 2}.0", bn_scope=f"{p}.{j + 2}.1",
                          gamma=(0.3, 0.7) if res else (0.6, 1.4))
            x = g.add(y, x, f"features.{stage}.{i}") if res else y
        stage += 1
    x = g.conv_bn(x, 320, 1280, 1, conv_scope=f"features.{stage}.0", bn_scope=f"features.{stage}.1")
    x = g.silu(x, f"features.{stage}.2")
    x = g.gap(x, "avgpool")
    return g.classifier(x, 1280, "classifier.1")


def squeeze_excitation(g, x, channels, squeeze, scope):
    """torchvision.ops.SqueezeExcitation(channels, squeeze, activation=SiLU):
    x * sigmoid(fc2(silu(fc1(avgpool(x))))), which torch writes Mul(scale, x)."""
    pooled = g.gap(x, f"{scope}.avgpool")
    h = g.silu(g.conv(pooled, channels, squeeze, 1, scope=f"{scope}.fc1"), f"{scope}.activation")
    h = g.conv(h, squeeze, channels, 1, scope=f"{scope}.fc2")
    scale = g.node("Sigmoid", [h.name], f"{scope}.scale_activation")
    return Value(g.node("Mul", [scale, x.name], scope), _sigmoid(h.data) * x.data)


def make_divisible(v, divisor):
    """torchvision.models._utils._make_divisible."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


BUILDERS = {"resnet50": resnet50, "mobilenet_v2": mobilenet_v2,
            "squeezenet1_1": squeezenet1_1, "efficientnet_b0": efficientnet_b0}


# ----------------------------------------------------------------------------
# Building and caching


@functools.lru_cache(maxsize=None)
def _base_model(name):
    """The model with BatchNorm kept, before its opset is set (built once per
    process: the calibration pass is most of the cost)."""
    g = Graph(name, SEEDS[name])
    return g.finish(BUILDERS[name](g)).SerializeToString()


def build(name, opset=17, fold_bn=False):
    """Returns the ModelProto of one architecture (checked by onnx.checker)."""
    model = onnx.ModelProto.FromString(_base_model(name))
    if fold_bn:
        fold_batchnorm(model)
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("", opset))
    model.ir_version = helper.find_min_ir_version_for([helper.make_opsetid("", opset)])
    model.doc_string = (f"torchvision {name} architecture, random weights (seed {SEEDS[name]}), "
                        f"BatchNorm {'folded into Conv' if fold_bn else 'kept'}")
    onnx.checker.check_model(model, full_check=True)
    return model


def fold_batchnorm(model):
    """Folds every BatchNormalization into the bias-free Conv that feeds it, as
    torch's exporter does in eval mode: W' = W * s, b' = beta - mean * s with
    s = gamma / sqrt(var + eps), computed in float64. Edits model in place."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    uses = collections.Counter(i for n in graph.node for i in n.input)
    drop_nodes, drop_inits, new_inits = set(), set(), []
    for bn in graph.node:
        if bn.op_type != "BatchNormalization":
            continue
        conv = producer[bn.input[0]]
        assert conv.op_type == "Conv" and len(conv.input) == 2 and uses[bn.input[0]] == 1
        eps = next(a.f for a in bn.attribute if a.name == "epsilon")
        g, b, mean, var = (numpy_helper.to_array(inits[i]).astype(np.float64) for i in bn.input[1:])
        w = numpy_helper.to_array(inits[conv.input[1]]).astype(np.float64)
        s = g / np.sqrt(var + eps)
        wname = conv.input[1]
        bname = wname[:-len(".weight")] + ".bias"
        new_inits += [numpy_helper.from_array((w * s[:, None, None, None]).astype(np.float32), wname),
                      numpy_helper.from_array((b - mean * s).astype(np.float32), bname)]
        drop_inits.update([wname, *bn.input[1:]])
        conv.input.append(bname)
        conv.output[0] = bn.output[0]
        drop_nodes.add(id(bn))
    keep_nodes = [n for n in graph.node if id(n) not in drop_nodes]
    keep_inits = [t for t in graph.initializer if t.name not in drop_inits] + new_inits
    del graph.node[:]
    graph.node.extend(keep_nodes)
    del graph.initializer[:]
    graph.initializer.extend(keep_inits)


def file_hash(path=__file__):
    """The first 16 hex digits of the SHA-256 of a builder script: the key of
    its cache folder and the producer_version of what it builds."""
    with open(os.path.abspath(path), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def builder_hash():
    return file_hash(__file__)


def model_filename(name, opset=17, fold_bn=False):
    return f"{name}_opset{opset}{'_bnfolded' if fold_bn else ''}.onnx"


def save(model, path):
    """Writes the model through a temporary file and a rename, so concurrent
    readers never see a partial model."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(model.SerializeToString())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def cached_model(cache, builder, filename, build_model):
    """Path of `filename` in the cache folder of the builder script
    `builder`, built with build_model() and saved first if it is not there.
    The folder is keyed by the script's hash, so any change to it rebuilds;
    folders of its older versions are removed."""
    key = file_hash(builder)
    folder = os.path.join(cache, key)
    path = os.path.join(folder, filename)
    if os.path.exists(path):
        return path
    os.makedirs(folder, exist_ok=True)
    for old in os.listdir(cache):
        if old != key and len(old) == 16 and os.path.isdir(os.path.join(cache, old)):
            shutil.rmtree(os.path.join(cache, old), ignore_errors=True)
    save(build_model(), path)
    return path


def model_path(name, opset=17, fold_bn=False, cache=CACHE):
    """Path of the cached model, building it first if needed (cached_model)."""
    return cached_model(cache, __file__, model_filename(name, opset, fold_bn),
                        lambda: build(name, opset, fold_bn))


def stats(path, batch=4):
    """Runs the model in onnxruntime on the test inputs; returns a summary line."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    t0 = time.perf_counter()
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    t1 = time.perf_counter()
    x = test_input(batch)
    sess.run(None, {"input": x})
    t2 = time.perf_counter()
    (y,) = sess.run(None, {"input": x})
    t3 = time.perf_counter()
    rows = np.abs(y[:, None, :] - y[None, :, :]).max(axis=2)
    return (f"{os.path.basename(path)}: load {1e3 * (t1 - t0):.0f} ms, batch {batch} "
            f"{1e3 * (t2 - t1):.0f} ms first / {1e3 * (t3 - t2):.0f} ms; logits mean "
            f"{y.mean():+.3f} std {y.std():.3f} absmax {np.abs(y).max():.3f}; row std "
            f"{y.std(axis=1).round(3).tolist()}; min row-to-row max diff "
            f"{rows[~np.eye(batch, dtype=bool)].min():.3f}; finite {np.isfinite(y).all()}")


def test_input(batch, seed=1234):
    """Deterministic images as a normalized photo looks to the network: per image
    and channel a smooth pattern plus noise, standardized to a spread of 0.8-1.1
    around a mean within +-0.3. Images differ in content, not wildly in scale."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(-1, 1, 224), np.linspace(-1, 1, 224), indexing="ij")
    out = np.empty((batch, 3, 224, 224), np.float32)
    for b in range(batch):
        for c in range(3):
            fx, fy = rng.uniform(1.0, 6.0, 2)
            ph = rng.uniform(0, 2 * np.pi)
            img = (np.sin(fx * np.pi * xx + ph) * np.cos(fy * np.pi * yy) +
                   rng.uniform(0.3, 1.0) * rng.standard_normal((224, 224)))
            img = (img - img.mean()) / img.std()
            out[b, c] = img * rng.uniform(0.8, 1.1) + rng.uniform(-0.3, 0.3)
    return out


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", metavar="MODEL",
                    help=f"models to build (default: all of {', '.join(MODELS)})")
    ap.add_argument("--out", help="write MODEL.onnx files here instead of the cache")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--fold-bn", action="store_true", help="fold BatchNorm into Conv")
    ap.add_argument("--stats", action="store_true", help="run each in onnxruntime, print stats")
    args = ap.parse_args(argv)
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        ap.error(f"unknown model {unknown[0]}; choose from {', '.join(MODELS)}")
    for name in args.models or MODELS:
        t0 = time.perf_counter()
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            path = os.path.join(args.out, model_filename(name, args.opset, args.fold_bn))
            onnx.save_model(build(name, args.opset, args.fold_bn), path)
        else:
            path = model_path(name, args.opset, args.fold_bn)
        print(f"{path} ({time.perf_counter() - t0:.1f} s)", flush=True)
        if args.stats:
            print("  " + stats(path), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
