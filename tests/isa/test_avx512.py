"""AVX-512 kernels, executed on an emulated CPU (see emulate.py).

The unit tests compare every ISA variant with its generic twin, but only on
a CPU that has the ISA; these run the AVX-512 kernels everywhere, from the
object files the release build produced, against numpy."""
import os

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
