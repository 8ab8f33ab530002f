"""AVX-512 kernels, executed on an emulated CPU (see emulate.py).

The unit tests compare every ISA variant with its generic twin, but only on
a CPU that has the ISA; these run the AVX-512 kernels everywhere, from the
object files the release build produced, against numpy."""
import os
import struct

import numpy as np
import pytest

import emulate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OBJ = os.path.join(os.path.dirname(os.environ.get("ONYX", os.path.join(ROOT, "build", "onyx"))),
                   "obj", "src", "kernels")


@pytest.fixture(scope="module")
def gemm512(tmp_path_factory):
    bx = emulate.load_bochscpu(str(tmp_path_factory.mktemp("bochs")))
    work = str(tmp_path_factory.mktemp("gemm512"))
    segments, syms = emulate.link(os.path.join(OBJ, "gemm_avx512.o"), work)
    return emulate.Machine(bx, segments), syms


MR, NR = 12, 32  # the 12 x 32 tile in gemm_avx512.c


@pytest.mark.parametrize("kc", [1, 2, 7, 64])
@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_ukernel_matches_numpy(gemm512, kc, beta):
    """c = alpha * A B + beta * c over packed panels: A's column p holds the
    12 rows' values at a[p * 12], B's row p the 32 columns' at b[p * 32]."""
    m, syms = gemm512
    rng = np.random.default_rng(kc * 10 + int(beta * 2))
    a = rng.uniform(-1, 1, (kc, MR)).astype(np.float32)
    b = rng.uniform(-1, 1, (kc, NR)).astype(np.float32)
    ldc = NR + 9
    c = rng.uniform(-1, 1, (MR, ldc)).astype(np.float32)
    if beta == 0.0:
        c[0, 0] = np.nan  # beta 0 must overwrite, never read, what C held
    m.reset_heap()
    pa, pb, pc = m.put(a), m.put(b), m.put(c)
    alpha = 1.25
    m.call(syms["ukernel_avx512"], ints=(kc, pa, pb, pc, ldc), floats=(alpha, beta))
    got = m.get(pc, np.float32, MR * ldc).reshape(MR, ldc)
    want = c.copy()
    prod = alpha * (a.T.astype(np.float64) @ b.astype(np.float64))
    want[:, :NR] = prod if beta == 0.0 else prod + beta * c[:, :NR]
    np.testing.assert_allclose(got[:, :NR], want[:, :NR], rtol=1e-5, atol=1e-5 * kc)
    np.testing.assert_array_equal(got[:, NR:], c[:, NR:])  # columns past the tile untouched


def test_emulator_enforces_the_isa(gemm512):
    """With the AVX-512 state disabled in XCR0 the same code must fault (#UD),
    so a pass above means the emulated CPU did execute AVX-512."""
    m, syms = gemm512
    m.reset_heap()
    pa, pb = m.put(np.ones((4, MR), np.float32)), m.put(np.ones((4, NR), np.float32))
    pc = m.put(np.zeros((MR, NR), np.float32))
    with pytest.raises(RuntimeError, match="exception"):
        m.call(syms["ukernel_avx512"], ints=(4, pa, pb, pc, NR), floats=(1.0, 0.0), xcr0=0x7)


EPI_FIELDS = ["bias", "act", "accumulate", "sum", "lds", "rows"]
ACTS = ["NONE", "RELU", "CLIP", "LEAKY_RELU", "SIGMOID", "HARD_SIGMOID", "HARD_SWISH", "TANH",
        "SILU"]


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    exprs = [f"offsetof(onyx_sgemm_epi, {f})" for f in EPI_FIELDS]
    exprs += ["sizeof(onyx_sgemm_epi)", "offsetof(onyx_act, kind)", "offsetof(onyx_act, a)",
              "offsetof(onyx_act, b)", "sizeof(onyx_act)", "sizeof(onyx_act_kind)"]
    exprs += [f"ONYX_ACT_{k}" for k in ACTS]
    v = emulate.c_values(str(tmp_path_factory.mktemp("layout")),
                         ["kernels/gemm.h", "core/op.h"], exprs)
    assert v["sizeof(onyx_act_kind)"] == 4
    return v


def act_ref(kind, x, a, b):
    """The activations' definitions (ONNX operators), in float64."""
    if kind == "RELU":
        return np.maximum(x, 0)
    if kind == "CLIP":
        return np.minimum(np.maximum(x, a), b)
    if kind == "LEAKY_RELU":
        return np.where(x >= 0, x, a * x)
    if kind == "SIGMOID":
        return 1 / (1 + np.exp(-x))
    if kind == "HARD_SIGMOID":
        return np.clip(a * x + b, 0, 1)
    if kind == "HARD_SWISH":
        return x * np.clip(x / 6 + 0.5, 0, 1)
    if kind == "TANH":
        return np.tanh(x)
    if kind == "SILU":
        return x / (1 + np.exp(-x))
    return x


@pytest.mark.parametrize("kind", ACTS)
@pytest.mark.parametrize("variant", range(4))
def test_ukernel_epi_matches_numpy(gemm512, layout, kind, variant):
    """c = act(acc (+ old c) (+ bias) (+ addend)) for the first `rows` rows;
    rows past them and columns past the tile untouched."""
    m, syms = gemm512
    rng = np.random.default_rng(variant * 31 + ACTS.index(kind))
    kc = (5, 1, 33, 64)[variant]
    accumulate, with_bias, with_sum = variant in (1, 3), variant != 1, variant >= 2
    rows = (MR, 5, MR, 1)[variant]
    a = rng.uniform(-1, 1, (kc, MR)).astype(np.float32)
    b = rng.uniform(-1, 1, (kc, NR)).astype(np.float32)
    ldc, lds = NR + 7, NR + 3
    c = rng.uniform(-2, 2, (MR, ldc)).astype(np.float32)
    bias = rng.uniform(-1, 1, MR).astype(np.float32)
    s = rng.uniform(-2, 2, (MR, lds)).astype(np.float32)
    alpha_, beta_ = {"CLIP": (-0.5, 0.75), "LEAKY_RELU": (0.1, 0.0),
                     "HARD_SIGMOID": (0.2, 0.5)}.get(kind, (0.0, 0.0))
    m.reset_heap()
    pa, pb, pc, pbias, psum = m.put(a), m.put(b), m.put(c), m.put(bias), m.put(s)
    act = bytearray(layout["sizeof(onyx_act)"])
    struct.pack_into("<i", act, layout["offsetof(onyx_act, kind)"], layout[f"ONYX_ACT_{kind}"])
    struct.pack_into("<f", act, layout["offsetof(onyx_act, a)"], alpha_)
    struct.pack_into("<f", act, layout["offsetof(onyx_act, b)"], beta_)
    pact = m.put(np.frombuffer(bytes(act), np.uint8))
    epi = bytearray(layout["sizeof(onyx_sgemm_epi)"])
    off = {f: layout[f"offsetof(onyx_sgemm_epi, {f})"] for f in EPI_FIELDS}
    struct.pack_into("<Q", epi, off["bias"], pbias if with_bias else 0)
    struct.pack_into("<Q", epi, off["act"], pact)
    struct.pack_into("<B", epi, off["accumulate"], int(accumulate))
    struct.pack_into("<Q", epi, off["sum"], psum if with_sum else 0)
    struct.pack_into("<q", epi, off["lds"], lds)
    struct.pack_into("<i", epi, off["rows"], rows)
    pepi = m.put(np.frombuffer(bytes(epi), np.uint8))
    m.call(syms["ukernel_avx512_epi"], ints=(kc, pa, pb, pc, ldc, pepi))
    got = m.get(pc, np.float32, MR * ldc).reshape(MR, ldc)
    x = a.T.astype(np.float64) @ b.astype(np.float64)
    if accumulate:
        x += c[:, :NR]
    if with_bias:
        x += bias[:, None]
    if with_sum:
        x += s[:, :NR]
    want = c.copy()
    want[:rows, :NR] = act_ref(kind, x, alpha_, beta_)[:rows]
    np.testing.assert_allclose(got[:rows, :NR], want[:rows, :NR], rtol=2e-6, atol=2e-6 * (kc + 4))
    np.testing.assert_array_equal(got[rows:], c[rows:])
    np.testing.assert_array_equal(got[:, NR:], c[:, NR:])


@pytest.mark.parametrize("strips", [1, 3, 4, 6])
@pytest.mark.parametrize("accumulate", [False, True])
def test_row_kernel_matches_numpy(gemm512, strips, accumulate):
    """y = a B over `strips` packed strips (strip s at b + s * kc * 32), added
    to y when accumulating; past the strips y is untouched."""
    m, syms = gemm512
    kc = 37
    rng = np.random.default_rng(strips * 2 + accumulate)
    a = rng.uniform(-1, 1, kc).astype(np.float32)
    b = rng.uniform(-1, 1, (strips, kc, NR)).astype(np.float32)
    y = rng.uniform(-1, 1, strips * NR + 5).astype(np.float32)
    m.reset_heap()
    pa, pb, py = m.put(a), m.put(b), m.put(y)
    m.call(syms["row_avx512"], ints=(kc, pa, pb, strips, py, int(accumulate)))
    got = m.get(py, np.float32, y.size)
    want = y.copy()
    prod = np.einsum("p,spj->sj", a.astype(np.float64), b.astype(np.float64)).reshape(-1)
    want[:strips * NR] = prod + (y[:strips * NR] if accumulate else 0)
    np.testing.assert_allclose(got[:strips * NR], want[:strips * NR], rtol=1e-5, atol=1e-5 * kc)
    np.testing.assert_array_equal(got[strips * NR:], y[strips * NR:])
