"""Image decoding (src/io/image_decode.c) against Pillow, the oracle: each
image is encoded with Pillow (or written byte by byte where Pillow cannot
write the layout), decoded by onyx through the ImageDecoder operator
(`onyx run` on a one-node model, the bytes as a uint8 .npy input), and
compared with what Pillow decodes: convert("RGB") for RGB/BGR and
convert("L") for Grayscale. PNG and BMP must match exactly; JPEG too, since
Pillow's bundled libjpeg-turbo and the system one decode alike (same ISLOW
IDCT and fancy upsampling)."""
import io
import os
import pathlib
import struct
import subprocess
import zlib

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Largest per-pixel difference accepted for JPEG; 0 while Pillow's bundled
# libjpeg-turbo and the system one agree (they do for 2.1.5 vs 3.x).
JPEG_MAX_DIFF = 0


def onyx_binary():
    return os.environ.get("ONYX", str(ROOT / "build" / "onyx"))


def decoder_model(path, pixel_format):
    node = helper.make_node("ImageDecoder", ["encoded"], ["image"], pixel_format=pixel_format)
    graph = helper.make_graph(
        [node], "decode",
        [helper.make_tensor_value_info("encoded", TensorProto.UINT8, ["n"])],
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["h", "w", "c"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    onnx.save(model, str(path))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("decoder_models")
    out = {}
    for fmt in ("RGB", "BGR", "Grayscale"):
        out[fmt] = d / f"decode_{fmt}.onnx"
        decoder_model(out[fmt], fmt)
    return out


def onyx_decode(models, tmp_path, data, fmt):
    inp = tmp_path / "encoded.npy"
    np.save(inp, np.frombuffer(data, dtype=np.uint8))
    outdir = tmp_path / f"out_{fmt}"
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
    r = subprocess.run([onyx_binary(), "run", str(models[fmt]), "-i", f"encoded={inp}", "-o",
                        str(outdir)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    return np.load(outdir / "image.npy"), r.stderr


def pillow_decode(data, fmt):
    img = Image.open(io.BytesIO(data))
    if fmt == "Grayscale":
        return np.array(img.convert("L"))[:, :, None]
    rgb = np.array(img.convert("RGB"))
    return rgb[:, :, ::-1] if fmt == "BGR" else rgb


def check_all_formats(models, tmp_path, data, max_diff=0):
    for fmt in ("RGB", "BGR", "Grayscale"):
        got, log = onyx_decode(models, tmp_path, data, fmt)
        want = pillow_decode(data, fmt)
        assert got.shape == want.shape, f"{fmt}: shape {got.shape} vs Pillow {want.shape}; {log}"
        diff = int(np.max(np.abs(got.astype(int) - want.astype(int)))) if got.size else 0
        assert diff <= max_diff, f"{fmt}: max difference {diff} from Pillow"


# ----------------------------------------------------------------------------
# Test pictures: smooth gradients with sharp edges (chroma upsampling and
# IDCT rounding both show), deterministic.

def picture(w, h, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 255 // max(w - 1, 1)).astype(np.uint8)
    g = (y * 255 // max(h - 1, 1)).astype(np.uint8)
    b = (((x // 3 + y // 2) % 2) * 200 + 20).astype(np.uint8)
    img = np.stack([r, g, b], axis=2)
    noise = rng.integers(0, 30, size=img.shape, dtype=np.uint8)
    return (img // 2 + noise).astype(np.uint8)


def encode(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


SIZES = [(37, 23), (1, 1), (4099, 2), (3, 700)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("subsampling", [0, 1, 2])
def test_jpeg_baseline(models, tmp_path, size, subsampling):
    data = encode(Image.fromarray(picture(*size)), "JPEG", quality=85, subsampling=subsampling)
    check_all_formats(models, tmp_path, data, JPEG_MAX_DIFF)


@pytest.mark.parametrize("size", SIZES)
def test_jpeg_progressive(models, tmp_path, size):
    data = encode(Image.fromarray(picture(*size, seed=1)), "JPEG", quality=90, progressive=True)
    check_all_formats(models, tmp_path, data, JPEG_MAX_DIFF)


@pytest.mark.parametrize("size", SIZES)
def test_jpeg_gray(models, tmp_path, size):
    data = encode(Image.fromarray(picture(*size)).convert("L"), "JPEG", quality=80)
    check_all_formats(models, tmp_path, data, JPEG_MAX_DIFF)


@pytest.mark.parametrize("size", [(37, 23), (1, 1)])
def test_jpeg_cmyk(models, tmp_path, size):
    rgb = picture(*size, seed=2)
    cmyk = np.concatenate([255 - rgb, (rgb[:, :, :1] // 3)], axis=2)
    data = encode(Image.fromarray(cmyk, "CMYK"), "JPEG", quality=90)
    check_all_formats(models, tmp_path, data, JPEG_MAX_DIFF)


def test_jpeg_exif_orientation_not_applied(models, tmp_path):
    img = Image.fromarray(picture(40, 16))
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(img, "JPEG", quality=90, exif=exif.tobytes())
    got, _ = onyx_decode(models, tmp_path, data, "RGB")
    assert got.shape == (16, 40, 3)  # as stored: not rotated to 40 x 16
    check_all_formats(models, tmp_path, data, JPEG_MAX_DIFF)


def test_jpeg_restart_markers(models, tmp_path):
    data = encode(Image.fromarray(picture(64, 40)), "JPEG", quality=75, restart_marker_blocks=2)
    check_all_formats(models, tmp_path, data, JPEG_MAX_DIFF)


# ----------------------------------------------------------------------------
# PNG

def png_modes(w, h):
    rgb = picture(w, h, seed=3)
    alpha = (np.arange(w * h, dtype=np.uint32).reshape(h, w) * 37 % 256).astype(np.uint8)
    rgba = np.concatenate([rgb, alpha[:, :, None]], axis=2)
    gray = Image.fromarray(rgb).convert("L")
    out = {
        "rgb": encode(Image.fromarray(rgb), "PNG"),
        "rgba": encode(Image.fromarray(rgba, "RGBA"), "PNG"),
        "gray": encode(gray, "PNG"),
        "gray_alpha": encode(Image.fromarray(np.stack([np.array(gray), alpha], 2), "LA"), "PNG"),
        "palette": encode(Image.fromarray(rgb).quantize(colors=50), "PNG"),
        "palette_trns": encode(Image.fromarray(rgba, "RGBA").quantize(colors=30), "PNG"),
        "bilevel": encode(gray.point(lambda v: 255 if v > 100 else 0).convert("1"), "PNG"),
        "gray_trns": encode(gray, "PNG", transparency=int(np.array(gray)[0, 0])),
        "rgb_trns": encode(Image.fromarray(rgb), "PNG", transparency=tuple(int(v) for v in rgb[0, 0])),
        "palette_4bit": encode(Image.fromarray(rgb).quantize(colors=16), "PNG", bits=4),
        "gray16": encode(Image.fromarray((np.arange(w * h).reshape(h, w) * 9 % 700).astype(np.uint16)), "PNG"),
    }
    return out


def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def raw_png(arr, color_type, depth, extra=b""):
    """A PNG written by hand (Pillow cannot write 16-bit color)."""
    h, w = arr.shape[:2]
    if depth == 16:
        rows = arr.astype(">u2").reshape(h, -1).view(np.uint8).reshape(h, -1)
    else:
        rows = arr.astype(np.uint8).reshape(h, -1)
    raw = b"".join(b"\x00" + rows[y].tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra +
            png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b""))


@pytest.mark.filterwarnings("ignore:Palette images with Transparency")
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", ["rgb", "rgba", "gray", "gray_alpha", "palette", "palette_trns",
                                  "bilevel", "gray_trns", "rgb_trns", "palette_4bit", "gray16"])
def test_png(models, tmp_path, size, mode):
    check_all_formats(models, tmp_path, png_modes(*size)[mode])


@pytest.mark.parametrize("size", [(37, 23), (1, 1), (2050, 1)])
def test_png_16bit_color(models, tmp_path, size):
    w, h = size
    rng = np.random.default_rng(4)
    rgb16 = rng.integers(0, 65536, size=(h, w, 3), dtype=np.uint16)
    rgba16 = rng.integers(0, 65536, size=(h, w, 4), dtype=np.uint16)
    la16 = rng.integers(0, 65536, size=(h, w, 2), dtype=np.uint16)
    gray16 = rng.integers(0, 400, size=(h, w), dtype=np.uint16)
    for data in (raw_png(rgb16, 2, 16), raw_png(rgba16, 6, 16), raw_png(la16, 4, 16),
                 raw_png(gray16, 0, 16)):
        check_all_formats(models, tmp_path, data)


def test_png_gray_2bit(models, tmp_path):
    arr = np.array([[0, 1, 2, 3, 3, 2, 1]], dtype=np.uint8)
    packed = np.packbits(np.unpackbits(arr[:, :, None], axis=2)[:, :, 6:].reshape(1, -1), axis=1)
    data = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 7, 1, 2, 0, 0, 0, 0)) +
            png_chunk(b"IDAT", zlib.compress(b"\x00" + packed.tobytes())) + png_chunk(b"IEND", b""))
    check_all_formats(models, tmp_path, data)


# ----------------------------------------------------------------------------
# BMP

def flip_to_top_down(data):
    """The same BMP stored top-down (negative height)."""
    offset, = struct.unpack_from("<I", data, 10)
    width, height = struct.unpack_from("<ii", data, 18)
    bpp, = struct.unpack_from("<H", data, 28)
    stride = ((width * bpp + 31) // 32) * 4
    rows = [data[offset + y * stride: offset + (y + 1) * stride] for y in range(height)]
    header = bytearray(data[:offset])
    struct.pack_into("<i", header, 22, -height)
    return bytes(header) + b"".join(reversed(rows))


def bmp_modes(w, h):
    rgb = picture(w, h, seed=5)
    alpha = np.full((h, w, 1), 77, np.uint8)
    return {
        "bgr24": encode(Image.fromarray(rgb), "BMP"),
        "bgrx32": encode(Image.fromarray(np.concatenate([rgb, alpha], 2), "RGBA"), "BMP"),
        "palette8": encode(Image.fromarray(rgb).quantize(colors=200), "BMP"),
        "gray8": encode(Image.fromarray(rgb).convert("L"), "BMP"),
        "bilevel": encode(Image.fromarray(rgb).convert("1"), "BMP"),
    }


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", ["bgr24", "bgrx32", "palette8", "gray8", "bilevel"])
@pytest.mark.parametrize("top_down", [False, True])
def test_bmp(models, tmp_path, size, mode, top_down):
    data = bmp_modes(*size)[mode]
    if top_down:
        data = flip_to_top_down(data)
    check_all_formats(models, tmp_path, data)


# ----------------------------------------------------------------------------
# Undecodable input: the operator gives an empty image (spec) and logs why.

@pytest.mark.parametrize("name,data", [
    ("garbage", b"this is not an image at all"),
    ("truncated_jpeg", None),
    ("truncated_png", None),
    ("bad_bmp", b"BM" + b"\xff" * 60),
])
def test_undecodable_gives_empty_image(models, tmp_path, name, data):
    if data is None:
        full = (encode(Image.fromarray(picture(37, 23)), "JPEG") if "jpeg" in name
                else encode(Image.fromarray(picture(37, 23)), "PNG"))
        data = full[: len(full) // 2]
    got, log = onyx_decode(models, tmp_path, data, "RGB")
    assert got.shape == (0, 0, 3)
    assert "ImageDecoder" in log


# ----------------------------------------------------------------------------
# Binary PNM (P5 graymap, P6 pixmap), any maxval

def pnm(magic, arr, maxval, comment=True):
    h, w = arr.shape[:2]
    header = f"{magic}\n" + ("# written by the onyx tests\n" if comment else "") + f"{w} {h}\n{maxval}\n"
    body = arr.astype(">u2" if maxval > 255 else np.uint8).tobytes()
    return header.encode() + body


@pytest.mark.parametrize("size", SIZES)
def test_pnm_pillow_written(models, tmp_path, size):
    rgb = Image.fromarray(picture(*size, seed=6))
    check_all_formats(models, tmp_path, encode(rgb, "PPM"))
    check_all_formats(models, tmp_path, encode(rgb.convert("L"), "PPM"))


@pytest.mark.parametrize("maxval", [1, 100, 255, 1000, 65535])
def test_pnm_maxval(models, tmp_path, maxval):
    rng = np.random.default_rng(maxval)
    # Values above maxval too: Pillow clips them.
    rgb = rng.integers(0, min(maxval + 3, 65536), size=(5, 7, 3))
    gray = rng.integers(0, min(maxval + 3, 65536), size=(4, 9))
    check_all_formats(models, tmp_path, pnm("P6", rgb, maxval))
    check_all_formats(models, tmp_path, pnm("P5", gray, maxval, comment=False))
