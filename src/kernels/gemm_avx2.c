/* gemm_avx2.c - the AVX2+FMA single-precision GEMM micro-kernel: a 6 x 16
 * register tile (12 ymm accumulators) over packed panels, as described at
 * the micro-kernel boundary in gemm.h, plain and with the fused bias +
 * addend + activation epilogue (which also stores partial-height tiles).
 * Only reached when dispatch.c found AVX2 and FMA on this CPU. */
#include "kernels/gemm.h"

#include "kernels/conv_avx2.h"

#include <immintrin.h>

enum { MR = 6, NR = 16 };

/* The k loop of a 6 x (8*V) tile: V = 2 (full), or V = 1 (half: the first
 * 8 columns of each 16-wide strip row), where even and odd steps go to two
 * accumulator sets so that 12 FMA chains hide the FMA latency; they are
 * summed after the loop. */
#define KLOOP(V, BS)                                                                       \
    __m256 acc[MR][2];                                                                     \
    _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] =          \
        _mm256_setzero_ps();                                                               \
    if (V == 2) {                                                                          \
        for (int64_t p = 0; p < kc; p++) {                                                 \
            __m256 b0 = _mm256_loadu_ps(b + p * (BS));                                     \
            __m256 b1 = _mm256_loadu_ps(b + p * (BS) + 8);                                 \
            const float *ap = a + p * MR;                                                  \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                        \
                __m256 ai = _mm256_broadcast_ss(ap + i);                                   \
                acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);                            \
                acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);                            \
            }                                                                              \
        }                                                                                  \
    } else {                                                                               \
        int64_t p = 0;                                                                     \
        for (; p + 2 <= kc; p += 2) {                                                      \
            __m256 b0 = _mm256_loadu_ps(b + p * NR), b1 = _mm256_loadu_ps(b + p * NR + NR); \
            const float *ap = a + p * MR;                                                  \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                        \
                acc[i][0] = _mm256_fmadd_ps(_mm256_broadcast_ss(ap + i), b0, acc[i][0]);   \
                acc[i][1] = _mm256_fmadd_ps(_mm256_broadcast_ss(ap + MR + i), b1, acc[i][1]); \
            }                                                                              \
        }                                                                                  \
        if (p < kc) {                                                                      \
            __m256 b0 = _mm256_loadu_ps(b + p * NR);                                       \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) acc[i][0] =              \
                _mm256_fmadd_ps(_mm256_broadcast_ss(a + p * MR + i), b0, acc[i][0]);       \
        }                                                                                  \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) acc[i][0] =                  \
            _mm256_add_ps(acc[i][0], acc[i][1]);                                           \
    }

#define UKERNEL(NAME, V)                                                                   \
    static void NAME(int64_t kc, const float *restrict a, const float *restrict b,          \
                     float *restrict c, int64_t ldc, float alpha, float beta) {            \
        KLOOP(V, NR)                                                                         \
        __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);                      \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                            \
            _Pragma("GCC unroll 2") for (int v = 0; v < V; v++) {                          \
                float *ci = c + i * ldc + 8 * v;                                           \
                __m256 r = _mm256_mul_ps(va, acc[i][v]);                                   \
                if (beta != 0.0f) r = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci), r);         \
                _mm256_storeu_ps(ci, r);                                                   \
            }                                                                              \
        }                                                                                  \
    }

/* Stores the tile's rows: acc (+ old c) (+ bias) (+ sum), activated as
 * KIND. With a constant KIND the activation's switch folds away: one copy
 * per common kind, instead of a dispatch per vector. */
#define EPI_STORE(V, KIND)                                                                 \
    {                                                                                      \
        onyx_avx2_act_params q_ = ap;                                                      \
        q_.kind = (KIND);                                                                  \
        const bool act_ = onyx_avx2_act_vectorized(q_.kind);                               \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                            \
            if (i >= rows) break;                                                          \
            __m256 bi = epi->bias ? _mm256_broadcast_ss(epi->bias + i) : _mm256_setzero_ps(); \
            _Pragma("GCC unroll 2") for (int v = 0; v < V; v++) {                          \
                float *ci = c + i * ldc + 8 * v;                                           \
                __m256 r = acc[i][v];                                                      \
                if (epi->accumulate) r = _mm256_add_ps(r, _mm256_loadu_ps(ci));            \
                if (epi->bias) r = _mm256_add_ps(r, bi);                                   \
                if (epi->sum)                                                              \
                    r = _mm256_add_ps(r, _mm256_loadu_ps(epi->sum + i * epi->lds + 8 * v)); \
                if (act_) r = onyx_avx2_act(&q_, r);                                       \
                _mm256_storeu_ps(ci, r);                                                   \
            }                                                                              \
        }                                                                                  \
    }

/* The fused epilogue after KLOOP(V, ...), one copy per common activation. */
#define EPI_SWITCH(V)                                                                      \
    const onyx_avx2_act_params ap = onyx_avx2_act_params_of(epi->act);                     \
    const int rows = epi->rows;                                                            \
    switch (ap.kind) {                                                                     \
    case ONYX_ACT_NONE:                                                                    \
        EPI_STORE(V, ONYX_ACT_NONE)                                                        \
        break;                                                                             \
    case ONYX_ACT_RELU:                                                                    \
        EPI_STORE(V, ONYX_ACT_RELU)                                                        \
        break;                                                                             \
    case ONYX_ACT_CLIP:                                                                    \
        EPI_STORE(V, ONYX_ACT_CLIP)                                                        \
        break;                                                                             \
    case ONYX_ACT_SILU:                                                                    \
        EPI_STORE(V, ONYX_ACT_SILU)                                                        \
        break;                                                                             \
    default:                                                                               \
        EPI_STORE(V, ap.kind)                                                              \
        break;                                                                             \
    }

#define UKERNEL_EPI(NAME, V)                                                               \
    static void NAME(int64_t kc, const float *restrict a, const float *restrict b,          \
                     float *restrict c, int64_t ldc, const onyx_sgemm_epi *epi) {          \
        KLOOP(V, NR)                                                                       \
        EPI_SWITCH(V)                                                                      \
    }

/* B read in place, rows ldb apart (a 1x1 convolution's image). */
static void ukernel_avx2_epi_ldb(int64_t kc, const float *restrict a, const float *restrict b,
                                 int64_t ldb, float *restrict c, int64_t ldc,
                                 const onyx_sgemm_epi *epi) {
    KLOOP(2, ldb)
    EPI_SWITCH(2)
}

UKERNEL(ukernel_avx2, 2)
UKERNEL(ukernel_avx2_half, 1)
UKERNEL_EPI(ukernel_avx2_epi, 2)
UKERNEL_EPI(ukernel_avx2_half_epi, 1)

const onyx_sgemm_kernel onyx_sgemm_kernel_avx2 = {"avx2",           MR,
                                                  NR,               ukernel_avx2,
                                                  ukernel_avx2_epi, ukernel_avx2_half,
                                                  ukernel_avx2_half_epi, true,
                                                  ukernel_avx2_epi_ldb};
