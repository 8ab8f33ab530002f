/* gemm_avx512.c - the AVX-512 single-precision GEMM micro-kernels: a 12 x 32
 * register tile (24 zmm accumulators) over packed panels, as described at
 * the micro-kernel boundary in gemm.h, plain and with the fused bias +
 * addend + activation epilogue (which also stores partial-height tiles).
 * Compiled with AVX-512 flags; only reached when dispatch.c found the
 * AVX-512 subset they need on this CPU. No machine here has AVX-512:
 * tests/isa/test_avx512.py runs these on an emulated CPU. */
#include "kernels/gemm.h"

#include "kernels/conv_avx2.h"

#include <immintrin.h>

enum { MR = 12, NR = 32 };

/* acc = the tile's product over kc steps of the packed strips. */
static inline __attribute__((always_inline)) void tile_product(int64_t kc,
                                                              const float *restrict a,
                                                              const float *restrict b,
                                                              __m512 acc[MR][2]) {
    #pragma GCC unroll 16
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        __m512 b0 = _mm512_loadu_ps(b + p * NR), b1 = _mm512_loadu_ps(b + p * NR + 16);
        const float *ap = a + p * MR;
        #pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(ap[i]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
    }
}

static void ukernel_avx512(int64_t kc, const float *restrict a, const float *restrict b,
                           float *restrict c, int64_t ldc, float alpha, float beta) {
    __m512 acc[MR][2];
    tile_product(kc, a, b, acc);
    __m512 va = _mm512_set1_ps(alpha);
    if (beta == 0.0f) {
        #pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            _mm512_storeu_ps(c + i * ldc, _mm512_mul_ps(va, acc[i][0]));
            _mm512_storeu_ps(c + i * ldc + 16, _mm512_mul_ps(va, acc[i][1]));
        }
    } else {
        __m512 vb = _mm512_set1_ps(beta);
        #pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            float *ci = c + i * ldc;
            _mm512_storeu_ps(ci, _mm512_fmadd_ps(va, acc[i][0],
                                                 _mm512_mul_ps(vb, _mm512_loadu_ps(ci))));
            _mm512_storeu_ps(ci + 16, _mm512_fmadd_ps(va, acc[i][1],
                                                      _mm512_mul_ps(vb, _mm512_loadu_ps(ci + 16))));
        }
    }
}

/* The fused epilogue, in the order of the AVX2 kernel's (gemm_avx2.c): acc
 * (+ old c) (+ bias) (+ addend), stored for the first epi->rows rows. Relu
 * and Clip are applied in registers before the store; the costly kinds in
 * a second pass over the stored rows (in L1) through the AVX2 formulas of
 * conv_avx2.h, so that both ISAs compute the same activation. */
static void ukernel_avx512_epi(int64_t kc, const float *restrict a, const float *restrict b,
                               float *restrict c, int64_t ldc, const onyx_sgemm_epi *epi) {
    __m512 acc[MR][2];
    tile_product(kc, a, b, acc);
    const onyx_avx2_act_params ap = onyx_avx2_act_params_of(epi->act);
    const bool relu = ap.kind == ONYX_ACT_RELU, clip = ap.kind == ONYX_ACT_CLIP;
    const __m512 zero = _mm512_setzero_ps();
    const __m512 lo = _mm512_set1_ps(epi->act ? epi->act->a : 0.0f);
    const __m512 hi = _mm512_set1_ps(epi->act ? epi->act->b : 0.0f);
    const int rows = epi->rows;
    #pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
        if (i >= rows) break;
        __m512 bi = epi->bias ? _mm512_set1_ps(epi->bias[i]) : zero;
        #pragma GCC unroll 2
        for (int v = 0; v < 2; v++) {
            float *ci = c + i * ldc + 16 * v;
            __m512 r = acc[i][v];
            if (epi->accumulate) r = _mm512_add_ps(r, _mm512_loadu_ps(ci));
            if (epi->bias) r = _mm512_add_ps(r, bi);
            if (epi->sum) r = _mm512_add_ps(r, _mm512_loadu_ps(epi->sum + i * epi->lds + 16 * v));
            /* max/min return their second operand on NaN: it passes through,
             * as in act.c's compares. */
            if (relu) r = _mm512_max_ps(zero, r);
            if (clip) r = _mm512_min_ps(hi, _mm512_max_ps(lo, r));
            _mm512_storeu_ps(ci, r);
        }
    }
    if (onyx_avx2_act_vectorized(ap.kind) && !relu && !clip)
        for (int i = 0; i < rows; i++) {
            __m256 g[4];
            #pragma GCC unroll 4
            for (int j = 0; j < 4; j++) g[j] = _mm256_loadu_ps(c + i * ldc + 8 * j);
            onyx_avx2_act_n(&ap, g, 4);
            #pragma GCC unroll 4
            for (int j = 0; j < 4; j++) _mm256_storeu_ps(c + i * ldc + 8 * j, g[j]);
        }
}

/* One row of A against packed strips (onyx_sgemm_ukernel_row_fn): four
 * strips at a time (eight FMA chains, four streams of B), then one at a
 * time. */
static void row_avx512(int64_t kc, const float *restrict a, const float *restrict b,
                       int64_t strips, float *restrict y, bool accumulate) {
    const int64_t ss = kc * NR;
    int64_t s = 0;
    for (; s + 4 <= strips; s += 4) {
        const float *bs = b + s * ss;
        float *ys = y + s * NR;
        __m512 acc[4][2];
        #pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            #pragma GCC unroll 2
            for (int v = 0; v < 2; v++)
                acc[q][v] = accumulate ? _mm512_loadu_ps(ys + q * NR + 16 * v)
                                       : _mm512_setzero_ps();
        for (int64_t p = 0; p < kc; p++) {
            __m512 av = _mm512_set1_ps(a[p]);
            #pragma GCC unroll 4
            for (int q = 0; q < 4; q++)
                #pragma GCC unroll 2
                for (int v = 0; v < 2; v++)
                    acc[q][v] = _mm512_fmadd_ps(av, _mm512_loadu_ps(bs + q * ss + p * NR + 16 * v),
                                                acc[q][v]);
        }
        #pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            #pragma GCC unroll 2
            for (int v = 0; v < 2; v++) _mm512_storeu_ps(ys + q * NR + 16 * v, acc[q][v]);
    }
    for (; s < strips; s++) {
        const float *bs = b + s * ss;
        float *ys = y + s * NR;
        __m512 acc0 = accumulate ? _mm512_loadu_ps(ys) : _mm512_setzero_ps();
        __m512 acc1 = accumulate ? _mm512_loadu_ps(ys + 16) : _mm512_setzero_ps();
        for (int64_t p = 0; p < kc; p++) {
            __m512 av = _mm512_set1_ps(a[p]);
            acc0 = _mm512_fmadd_ps(av, _mm512_loadu_ps(bs + p * NR), acc0);
            acc1 = _mm512_fmadd_ps(av, _mm512_loadu_ps(bs + p * NR + 16), acc1);
        }
        _mm512_storeu_ps(ys, acc0);
        _mm512_storeu_ps(ys + 16, acc1);
    }
}

const onyx_sgemm_kernel onyx_sgemm_kernel_avx512 = {
    "avx512", MR, NR, ukernel_avx512, ukernel_avx512_epi, NULL, NULL, true,
    .fn_row = row_avx512};
