"""Helpers for the image preprocessing tests: the onyx binary, probe models
whose only job is to let `onyx predict --dump-input` write the tensor it built,
and the reference pipelines written with Pillow + numpy the way torchvision
and Keras users write them. (Not named conftest.py: tests/cli has one, and a
test importing `conftest` must get its own when all of tests/ runs at once.)"""
import math
import os
import pathlib
import subprocess

import numpy as np
import onnx
from onnx import TensorProto, helper
from PIL import Image, ImageOps

ROOT = pathlib.Path(__file__).resolve().parents[2]

FILTERS = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
           "bicubic": Image.Resampling.BICUBIC}
PRESETS = ("none", "unit", "minmax", "imagenet", "caffe", "tf")


def onyx_binary():
    return os.environ.get("ONYX", str(ROOT / "build" / "onyx"))


def run_onyx(*args):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    return subprocess.run([onyx_binary(), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=300)


def check_ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r


# ----------------------------------------------------------------------------
# Probe models: x -> mean over H, W -> [N, C] "scores". Symbolic H/W unless
# a size is given.

def probe_model(path, layout="nchw", channels=3, dtype=TensorProto.FLOAT, size=None):
    h, w = size if size else ("H", "W")
    shape = ["N", channels, h, w] if layout == "nchw" else ["N", h, w, channels]
    axes = [2, 3] if layout == "nchw" else [1, 2]
    nodes, x = [], "x"
    if dtype != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT))
        x = "xf"
    nodes.append(helper.make_node("ReduceMean", [x], ["y"], axes=axes, keepdims=0))
    graph = helper.make_graph(nodes, "probe", [helper.make_tensor_value_info("x", dtype, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                             ["N", channels])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def dump(model, images, out, *args):
    """Runs predict and returns the input tensor it fed the model."""
    check_ok(run_onyx("predict", model, *images, "--dump-input", out, *args))
    return np.load(out)


# ----------------------------------------------------------------------------
# Reference pipelines (Pillow + numpy)

def pil_open(path, channels=3):
    """Image.open -> ImageOps.exif_transpose -> convert("RGB" / "L")."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        return im.convert("RGB" if channels == 3 else "L")


def tv_resize_shorter(im, size, resample):
    """torchvision.transforms.Resize(size: int) on a PIL image."""
    w, h = im.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    return im.resize((new_w, new_h), resample)


def tv_center_crop(im, ch, cw):
    """torchvision.transforms.CenterCrop((ch, cw)) on a PIL image (no padding
    needed in these tests)."""
    w, h = im.size
    assert ch <= h and cw <= w
    top = int(round((h - ch) / 2.0))
    left = int(round((w - cw) / 2.0))
    return im.crop((left, top, left + cw, top + ch))


def cover_resize(im, sh, sw, resample):
    """The non-square form of Resize + CenterCrop that onyx documents: the
    smallest aspect-preserving size covering sh x sw (torchvision's rule for
    the long side)."""
    w, h = im.size
    if h * sw >= w * sh:
        nw, nh = sw, int(sw * h / w)
    else:
        nh, nw = sh, int(sh * w / h)
    return im.resize((nw, nh), resample)


def reference_pixels(path, size, filter="bicubic", crop=None, channels=3):
    """uint8 (H, W, C) pixels after orientation, convert, resize and crop."""
    h, w = size
    im = pil_open(path, channels)
    f = FILTERS[filter]
    if crop:
        sh, sw = math.floor(h / crop), math.floor(w / crop)
        im = tv_resize_shorter(im, sh, f) if sh == sw else cover_resize(im, sh, sw, f)
        im = tv_center_crop(im, h, w)
    else:
        im = im.resize((w, h), f)
    a = np.asarray(im)
    return a[..., None] if a.ndim == 2 else a


def normalize(pixels, preset, mean=None, std=None):
    """float32 (H, W, C) as the reference libraries compute it, op by op."""
    x = pixels.astype(np.float32)
    if preset == "unit":  # torchvision ToTensor
        x = x / np.float32(255)
    elif preset == "minmax":
        x = (x - x.min()) / (x.max() - x.min())
    elif preset == "imagenet":  # ToTensor + Normalize
        x = (x / np.float32(255) - np.array([0.485, 0.456, 0.406], np.float32)) / \
            np.array([0.229, 0.224, 0.225], np.float32)
    elif preset == "caffe":  # keras.applications.imagenet_utils mode="caffe"
        x = x[..., ::-1].copy()
        x[..., 0] -= 103.939
        x[..., 1] -= 116.779
        x[..., 2] -= 123.68
    elif preset == "tf":  # mode="tf"
        x /= 127.5
        x -= 1.0
    if mean is not None:
        x = (x - np.array(mean, np.float32)) / np.array(std, np.float32)
    return x


def to_layout(x, layout):
    return x.transpose(2, 0, 1) if layout == "nchw" else x


# ----------------------------------------------------------------------------
# Images

def exif_jpeg(path, pixels, orientation):
    """A JPEG whose EXIF says `orientation` (1..8)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, quality=95, exif=exif.tobytes())
    return path
