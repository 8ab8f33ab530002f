"""onyx predict's preprocessing against Pillow + numpy reference pipelines:
every filter (Image.resize), preset and layout, center crop as torchvision
does it, on scikit-image's photographs and on synthetic edge cases (gray,
palette, alpha, 16-bit, EXIF orientation, 1x1, very wide/tall, BMP).

The tensor onyx built is read back through `--dump-input`. Resampling is
exact (Pillow's fixed-point math reproduced), so lossless inputs must match to
the bit; JPEG pixels may differ by 1 where the two libjpeg builds differ."""
import struct
import zlib

import numpy as np
import pytest
from onnx import TensorProto
from PIL import Image

from preprocess_ref import (FILTERS, PRESETS, dump, exif_jpeg, normalize, probe_model,
                            reference_pixels, to_layout)

COLOR = ("astronaut", "chelsea", "coffee")


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """scikit-image's photographs as PNG (lossless) and JPEG files:
    astronaut 512x512, chelsea 451x300, coffee 600x400 (color), camera
    512x512 (gray)."""
    from skimage import data
    d = tmp_path_factory.mktemp("photos")
    out = {}
    for name in ("astronaut", "chelsea", "coffee", "camera"):
        a = getattr(data, name)()
        for ext in ("png", "jpg"):
            p = d / f"{name}.{ext}"
            Image.fromarray(a).save(p, **({"quality": 90} if ext == "jpg" else {}))
            out[f"{name}.{ext}"] = p
    return out


def tolerance(path):
    return 1 if str(path).endswith(".jpg") else 0


@pytest.fixture(scope="module")
def probes(tmp_path_factory):
    d = tmp_path_factory.mktemp("probes")
    out = {}
    for layout in ("nchw", "nhwc"):
        out[layout] = probe_model(d / f"{layout}.onnx", layout)
        out[layout, 224] = probe_model(d / f"{layout}_224.onnx", layout, size=(224, 224))
        out[layout, "gray"] = probe_model(d / f"{layout}_gray.onnx", layout, channels=1)
        out[layout, "u8"] = probe_model(d / f"{layout}_u8.onnx", layout, dtype=TensorProto.UINT8)
    return out


def check_pixels(got, want, tol, what):
    """got/want as float arrays of raw 0..255 values."""
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert diff.max() <= tol, (f"{what}: max diff {diff.max()} at "
                               f"{np.unravel_index(diff.argmax(), diff.shape)}, "
                               f"{(diff > 0).sum()} values differ")


# ----------------------------------------------------------------------------
# Filters and layouts on the photographs

@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("filter", list(FILTERS))
def test_filters_on_photos(photos, probes, tmp_path, filter, layout):
    """Image.resize(filter) to the model's fixed 224x224 (downscaling)."""
    files = [photos[f"{n}.{e}"] for n in (*COLOR, "camera") for e in ("png", "jpg")]
    got = dump(probes[layout, 224], files, tmp_path / "x.npy", "--preprocess", "none",
               "--filter", filter)
    assert got.dtype == np.float32 and got.shape[0] == len(files)
    for i, f in enumerate(files):
        want = to_layout(reference_pixels(f, (224, 224), filter).astype(np.float32), layout)
        check_pixels(got[i], want, tolerance(f), f"{f.name} {filter} {layout}")


@pytest.mark.parametrize("filter", list(FILTERS))
@pytest.mark.parametrize("size", ["97x150", "600x640", "333x200", "512x100"])
def test_filters_sizes(photos, probes, tmp_path, filter, size):
    """Odd sizes, upscaling, and one axis kept (512 rows stay 512: Pillow
    skips that pass)."""
    h, w = map(int, size.split("x"))
    files = [photos["chelsea.png"], photos["astronaut.png"]]
    got = dump(probes["nhwc"], files, tmp_path / "x.npy", "--preprocess", "none", "--filter",
               filter, "--size", size)
    for i, f in enumerate(files):
        check_pixels(got[i], reference_pixels(f, (h, w), filter), 0, f"{f.name} {filter} {size}")


def test_random_sizes(probes, tmp_path):
    """Random source and target sizes, up and down on either axis: covers
    Pillow's choice of which pass runs first (it changes the rounding), odd
    filter windows and 1-pixel sides. Images are given as uint8 .npy arrays."""
    rng = np.random.default_rng(2024)
    for case in range(36):
        iw, ih = rng.integers(1, 160, 2)
        ow, oh = rng.integers(1, 200, 2)
        filter = list(FILTERS)[case % 3]
        a = rng.integers(0, 256, (ih, iw, 3), dtype=np.uint8)
        src = tmp_path / f"img{case}.npy"
        np.save(src, a)
        got = dump(probes["nhwc"], [src], tmp_path / "x.npy", "--preprocess", "none",
                   "--filter", filter, "--size", f"{oh}x{ow}")[0]
        want = np.asarray(Image.fromarray(a).resize((int(ow), int(oh)), FILTERS[filter]))
        check_pixels(got, want, 0, f"{iw}x{ih} -> {ow}x{oh} {filter}")


def test_default_filter_is_bicubic(photos, probes, tmp_path):
    f = photos["coffee.png"]
    got = dump(probes["nhwc"], [f], tmp_path / "x.npy", "--preprocess", "none", "--size", "90x70")
    check_pixels(got[0], reference_pixels(f, (90, 70), "bicubic"), 0, "default filter")


# ----------------------------------------------------------------------------
# Presets

@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
@pytest.mark.parametrize("preset", PRESETS)
def test_presets(photos, probes, tmp_path, preset, layout):
    files = [photos[f"{n}.png"] for n in (*COLOR, "camera")] + [photos["chelsea.jpg"]]
    got = dump(probes[layout, 224], files, tmp_path / "x.npy", "--preprocess", preset)
    for i, f in enumerate(files):
        px = reference_pixels(f, (224, 224), "bicubic")
        want = to_layout(normalize(px, preset), layout)
        if tolerance(f) == 0:
            np.testing.assert_array_equal(got[i], want, err_msg=f"{f.name} {preset}")
        else:
            # one pixel level through the preset's scale
            scale = {"none": 1, "caffe": 1, "unit": 1 / 255, "tf": 1 / 127.5,
                     "imagenet": 1 / (255 * 0.224), "minmax": 1 / 200}[preset]
            np.testing.assert_allclose(got[i], want, rtol=0, atol=scale * 1.01 + 1e-6,
                                       err_msg=f"{f.name} {preset}")


def test_default_preset_is_imagenet(photos, probes, tmp_path):
    f = photos["astronaut.png"]
    got = dump(probes["nchw", 224], [f], tmp_path / "x.npy")
    want = to_layout(normalize(reference_pixels(f, (224, 224)), "imagenet"), "nchw")
    np.testing.assert_array_equal(got[0], want)


@pytest.mark.parametrize("preset", ["unit", "none"])
def test_custom_mean_std(photos, probes, tmp_path, preset):
    f = photos["coffee.png"]
    mean, std = [0.5, 0.4, 0.3], [0.25, 0.2, 0.5]
    if preset == "none":
        mean, std = [127.5, 120.0, 100.0], [58.0, 57.0, 57.5]
    got = dump(probes["nchw", 224], [f], tmp_path / "x.npy", "--preprocess", preset, "--mean",
               ",".join(map(str, mean)), "--std", ",".join(map(str, std)))
    want = to_layout(normalize(reference_pixels(f, (224, 224)), preset, mean, std), "nchw")
    np.testing.assert_array_equal(got[0], want)
    # one value applies to every channel; --mean alone implies the unit preset
    got = dump(probes["nhwc", 224], [f], tmp_path / "y.npy", "--mean", "0.5")
    want = normalize(reference_pixels(f, (224, 224)), "unit", [0.5] * 3, [1.0] * 3)
    np.testing.assert_array_equal(got[0], want)


def test_minmax_flat_image_is_zero(probes, tmp_path):
    p = tmp_path / "flat.png"
    Image.new("RGB", (30, 20), (90, 90, 90)).save(p)
    got = dump(probes["nchw"], [p], tmp_path / "x.npy", "--preprocess", "minmax", "--size", "8x8")
    assert np.all(got == 0)


# ----------------------------------------------------------------------------
# Center crop (torchvision Resize(int) + CenterCrop)

@pytest.mark.parametrize("filter", list(FILTERS))
@pytest.mark.parametrize("crop", [0.875, 0.9, 1.0])
def test_center_crop(photos, probes, tmp_path, filter, crop):
    files = [photos[f"{n}.png"] for n in COLOR]
    got = dump(probes["nhwc", 224], files, tmp_path / "x.npy", "--preprocess", "none",
               "--filter", filter, "--center-crop", str(crop))
    for i, f in enumerate(files):
        want = reference_pixels(f, (224, 224), filter, crop=crop)
        check_pixels(got[i], want, 0, f"{f.name} crop {crop} {filter}")


def test_center_crop_imagenet_recipe(photos, probes, tmp_path):
    """Resize(256, bilinear) + CenterCrop(224) + ToTensor + Normalize, the
    torchvision ImageNet evaluation transform."""
    files = [photos["chelsea.png"], photos["coffee.png"]]
    got = dump(probes["nchw", 224], files, tmp_path / "x.npy", "--filter", "bilinear",
               "--center-crop", "0.875")
    for i, f in enumerate(files):
        want = to_layout(normalize(reference_pixels(f, (224, 224), "bilinear", crop=0.875),
                                   "imagenet"), "nchw")
        np.testing.assert_array_equal(got[i], want)


@pytest.mark.parametrize("size", ["160x224", "224x160", "100x101"])
def test_center_crop_non_square(photos, probes, tmp_path, size):
    h, w = map(int, size.split("x"))
    files = [photos[f"{n}.png"] for n in COLOR]
    got = dump(probes["nhwc"], files, tmp_path / "x.npy", "--preprocess", "none",
               "--center-crop", "0.875", "--size", size)
    for i, f in enumerate(files):
        check_pixels(got[i], reference_pixels(f, (h, w), "bicubic", crop=0.875), 0,
                     f"{f.name} {size}")


# ----------------------------------------------------------------------------
# Gray and uint8 models

@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_gray_model(photos, probes, tmp_path, layout):
    """A 1-channel input gets convert("L") (Pillow's luma rounding), then the
    unit preset by default."""
    files = [photos["astronaut.png"], photos["camera.png"], photos["coffee.jpg"]]
    got = dump(probes[layout, "gray"], files, tmp_path / "x.npy", "--size", "64x48")
    for i, f in enumerate(files):
        px = reference_pixels(f, (64, 48), channels=1)
        want = to_layout(normalize(px, "unit"), layout)
        np.testing.assert_allclose(got[i], want, rtol=0, atol=tolerance(f) / 255 + 1e-7)
    got = dump(probes[layout, "gray"], files[:1], tmp_path / "y.npy", "--size", "64x48",
               "--preprocess", "tf")
    want = to_layout(normalize(reference_pixels(files[0], (64, 48), channels=1), "tf"), layout)
    np.testing.assert_array_equal(got[0], want)


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_uint8_model_gets_raw_pixels(photos, probes, tmp_path, layout):
    files = [photos["chelsea.png"], photos["camera.png"]]
    got = dump(probes[layout, "u8"], files, tmp_path / "x.npy", "--size", "120x90")
    assert got.dtype == np.uint8
    for i, f in enumerate(files):
        np.testing.assert_array_equal(got[i], to_layout(reference_pixels(f, (120, 90)), layout))


# ----------------------------------------------------------------------------
# Without antialiasing: plain interpolation, checked against independent
# numpy implementations of half-pixel-center interpolation.

def interp_weights(n_in, n_out, kernel, support):
    """(n_out, n_in) matrix of half-pixel-center interpolation with edge
    clamping (tf.image.resize / cv2 INTER_LINEAR convention)."""
    m = np.zeros((n_out, n_in))
    scale = n_in / n_out
    for o in range(n_out):
        src = (o + 0.5) * scale - 0.5
        base = int(np.floor(src))
        for t in range(base - support + 1, base + support + 1):
            m[o, min(max(t, 0), n_in - 1)] += kernel(src - t)
    return m


def tri(x):
    return max(0.0, 1 - abs(x))


def keys(x, a=-0.5):
    x = abs(x)
    if x < 1:
        return ((a + 2) * x - (a + 3)) * x * x + 1
    if x < 2:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


@pytest.mark.parametrize("filter", ["bilinear", "bicubic"])
def test_no_antialias(photos, probes, tmp_path, filter):
    f = photos["astronaut.png"]
    h, w = 100, 150
    got = dump(probes["nhwc"], [f], tmp_path / "x.npy", "--preprocess", "none", "--filter",
               filter, "--no-antialias", "--size", f"{h}x{w}")[0]
    src = np.asarray(Image.open(f).convert("RGB"), np.float64)
    kernel, support = (tri, 1) if filter == "bilinear" else (keys, 2)
    my = interp_weights(src.shape[0], h, kernel, support)
    mx = interp_weights(src.shape[1], w, kernel, support)
    rows = np.tensordot(my, src, axes=(1, 0))  # (h, W_in, C)
    want = np.clip(np.round(np.einsum("xj,yjc->yxc", mx, rows)), 0, 255)
    if filter == "bicubic":
        # Pillow's convention renormalizes the kernel cut at the border where
        # this reference clamps: compare away from the edges
        got, want = got[2:-2, 2:-2], want[2:-2, 2:-2]
    check_pixels(got, want, 1, f"no-antialias {filter}")
    # It differs from the antialiased resize, which is Pillow's
    aa = reference_pixels(f, (h, w), filter)
    assert np.abs(dump(probes["nhwc"], [f], tmp_path / "y.npy", "--preprocess", "none",
                       "--filter", filter, "--size", f"{h}x{w}")[0] - aa).max() == 0
    assert np.abs(got - aa[2:-2, 2:-2] if filter == "bicubic" else got - aa).max() > 10


def test_no_antialias_upscale_is_pillow(photos, probes, tmp_path):
    """Upscaling never widens the filter, so both modes are Image.resize."""
    f = photos["coffee.png"]
    got = dump(probes["nhwc"], [f], tmp_path / "x.npy", "--preprocess", "none", "--no-antialias",
               "--size", "700x900")
    check_pixels(got[0], reference_pixels(f, (700, 900)), 0, "upscale")


# ----------------------------------------------------------------------------
# Synthetic edge cases: modes, bit depths, orientation, extreme shapes

def write_png(path, array, bit_depth, color_type):
    """A PNG written by hand (Pillow cannot write 16-bit color): array is
    (H, W, C) of uint8 or uint16; color types 0 gray, 2 RGB, 4 gray+alpha,
    6 RGBA."""
    h, w = array.shape[:2]
    dt = ">u2" if bit_depth == 16 else "u1"
    raw = b"".join(b"\0" + array[y].astype(dt).tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
                     chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def edge_images(tmp_path_factory):
    from skimage import data
    d = tmp_path_factory.mktemp("edge")
    rng = np.random.default_rng(4)
    cat = data.chelsea()[40:120, 100:220]  # 120x80, not square: rotations show
    out = {}

    def save(name, im, **kw):
        p = d / name
        im.save(p, **kw)
        out[name] = p

    save("gray.png", Image.fromarray(cat).convert("L"))
    save("palette.png", Image.fromarray(cat).quantize(37))
    pal = Image.fromarray(cat).quantize(16)
    save("palette_trns.png", pal, transparency=3)
    rgba = np.dstack([cat, rng.integers(0, 256, cat.shape[:2], dtype=np.uint8)])
    save("rgba.png", Image.fromarray(rgba, "RGBA"))
    save("la.png", Image.fromarray(rgba, "RGBA").convert("LA"))
    save("onebit.png", Image.fromarray(cat).convert("1"))
    save("tiny.png", Image.fromarray(np.array([[[200, 30, 70]]], np.uint8)))
    save("wide.png", Image.fromarray(rng.integers(0, 256, (2, 3000, 3), dtype=np.uint8)))
    save("tall.png", Image.fromarray(rng.integers(0, 256, (900, 3, 3), dtype=np.uint8)))
    save("rgb.bmp", Image.fromarray(cat))
    save("gray.bmp", Image.fromarray(cat).convert("L"))
    save("palette.bmp", Image.fromarray(cat).quantize(40))
    save("gray.jpg", Image.fromarray(cat).convert("L"), quality=92)
    save("subsample444.jpg", Image.fromarray(cat), quality=80, subsampling=0)
    g16 = rng.integers(0, 65536, cat.shape[:2], dtype=np.uint16)
    out["gray16.png"] = write_png(d / "gray16.png", g16[..., None], 16, 0)
    low16 = (np.asarray(Image.fromarray(cat).convert("L"), np.uint16))  # values under 256
    out["gray16_low.png"] = write_png(d / "gray16_low.png", low16[..., None], 16, 0)
    out["rgb16.png"] = write_png(d / "rgb16.png", cat.astype(np.uint16) * 257 + 3, 16, 2)
    rgba16 = np.dstack([cat.astype(np.uint16) * 256, g16])
    out["rgba16.png"] = write_png(d / "rgba16.png", rgba16, 16, 6)
    la16 = np.dstack([g16, g16[::-1]])
    out["la16.png"] = write_png(d / "la16.png", la16, 16, 4)
    for o in range(1, 9):
        out[f"exif{o}.jpg"] = exif_jpeg(d / f"exif{o}.jpg", cat, o)
    return out


EDGE = ["gray.png", "palette.png", "palette_trns.png", "rgba.png", "la.png", "onebit.png",
        "tiny.png", "wide.png", "tall.png", "rgb.bmp", "gray.bmp", "palette.bmp", "gray.jpg",
        "subsample444.jpg", "gray16.png", "gray16_low.png", "rgb16.png", "rgba16.png", "la16.png",
        *[f"exif{o}.jpg" for o in range(1, 9)]]


@pytest.mark.parametrize("filter", list(FILTERS))
@pytest.mark.parametrize("size", ["24x36", "150x130"])
def test_edge_cases_color(edge_images, probes, tmp_path, filter, size):
    h, w = map(int, size.split("x"))
    files = [edge_images[n] for n in EDGE]
    got = dump(probes["nhwc"], files, tmp_path / "x.npy", "--preprocess", "none", "--filter",
               filter, "--size", size)
    for i, f in enumerate(files):
        check_pixels(got[i], reference_pixels(f, (h, w), filter), tolerance(f),
                     f"{f.name} {filter} {size}")


def test_edge_cases_gray(edge_images, probes, tmp_path):
    files = [edge_images[n] for n in EDGE]
    got = dump(probes["nchw", "gray"], files, tmp_path / "x.npy", "--preprocess", "none",
               "--size", "40x30")
    for i, f in enumerate(files):
        want = to_layout(reference_pixels(f, (40, 30), channels=1), "nchw")
        check_pixels(got[i], want, tolerance(f), f"{f.name} gray")


def test_exif_orientation_applied(edge_images, probes, tmp_path):
    """Each orientation gives the upright image, which has the stored image's
    size for 1-4 and the transposed size for 5-8; --size equal to the upright
    size keeps every pixel, so a wrong rotation cannot hide in a resize."""
    for o in range(1, 9):
        f = edge_images[f"exif{o}.jpg"]
        up = reference_pixels(f, (80, 120) if o < 5 else (120, 80), "nearest")
        h, w = up.shape[:2]
        got = dump(probes["nhwc"], [f], tmp_path / f"x{o}.npy", "--preprocess", "none",
                   "--size", f"{h}x{w}")
        check_pixels(got[0], up, 1, f"orientation {o}")
