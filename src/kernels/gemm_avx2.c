/* gemm_avx2.c - the AVX2+FMA single-precision GEMM micro-kernel: a 6 x 16
 * register tile (12 ymm accumulators) over packed panels, as described at
 * the micro-kernel boundary in gemm.h, plain and with the fused bias +
 * addend + activation epilogue (which also stores partial-height tiles).
 * Only reached when dispatch.c found AVX2 and FMA on this CPU. */
#include "kernels/gemm.h"

#include "kernels/conv_avx2.h"

#include <immintrin.h>

enum { MR = 6, NR = 16 };
/* Vectors per group of the epilogue's activation pass (EPI_STORE). */
#define ONYX_EPI_GRP 4

/* The k loop of a 6 x (8*V) tile: V = 2 (full), or V = 1 (half: the first
 * 8 columns of each 16-wide strip row), where even and odd steps go to two
 * accumulator sets so that 12 FMA chains hide the FMA latency; they are
 * summed after the loop. */
#define KLOOP(V)                                                                           \
    __m256 acc[MR][2];                                                                     \
    _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] =          \
        _mm256_setzero_ps();                                                               \
    if (V == 2) {                                                                          \
        for (int64_t p = 0; p < kc; p++) {                                                 \
            __m256 b0 = _mm256_loadu_ps(b + p * NR), b1 = _mm256_loadu_ps(b + p * NR + 8); \
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
        KLOOP(V)                                                                           \
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
 * per common kind, instead of a dispatch per vector. Relu and Clip are
 * applied before the store; the costly kinds (SiLU, Sigmoid, Tanh, ...) in
 * a second pass over the stored rows (in L1), 4 vectors at a time through
 * onyx_avx2_act_n so that their dependency chains overlap while no
 * accumulator is live (applied with the 12 accumulators live, they spill). */
#define EPI_STORE(V, KIND)                                                                 \
    {                                                                                      \
        onyx_avx2_act_params q_ = ap;                                                      \
        q_.kind = (KIND);                                                                  \
        const bool act_ = onyx_avx2_act_vectorized(q_.kind);                               \
        const bool cheap_ = q_.kind == ONYX_ACT_RELU || q_.kind == ONYX_ACT_CLIP;          \
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
                if (act_ && cheap_) r = onyx_avx2_act(&q_, r);                             \
                _mm256_storeu_ps(ci, r);                                                   \
            }                                                                              \
        }                                                                                  \
        if (act_ && !cheap_) {                                                             \
            enum { RG = ONYX_EPI_GRP / V };                                                \
            int i0 = 0;                                                                    \
            for (; i0 + RG <= rows; i0 += RG) {                                            \
                __m256 g_[ONYX_EPI_GRP];                                                   \
                _Pragma("GCC unroll 8") for (int j = 0; j < ONYX_EPI_GRP; j++)             \
                    g_[j] = _mm256_loadu_ps(c + (i0 + j / V) * ldc + 8 * (j % V));         \
                onyx_avx2_act_n(&q_, g_, ONYX_EPI_GRP);                                    \
                _Pragma("GCC unroll 8") for (int j = 0; j < ONYX_EPI_GRP; j++)             \
                    _mm256_storeu_ps(c + (i0 + j / V) * ldc + 8 * (j % V), g_[j]);         \
            }                                                                              \
            for (; i0 < rows; i0++) {                                                      \
                __m256 g_[V];                                                              \
                _Pragma("GCC unroll 2") for (int v = 0; v < V; v++)                        \
                    g_[v] = _mm256_loadu_ps(c + i0 * ldc + 8 * v);                         \
                onyx_avx2_act_n(&q_, g_, V);                                               \
                _Pragma("GCC unroll 2") for (int v = 0; v < V; v++)                        \
                    _mm256_storeu_ps(c + i0 * ldc + 8 * v, g_[v]);                         \
            }                                                                              \
        }                                                                                  \
    }

#define UKERNEL_EPI(NAME, V)                                                               \
    static void NAME(int64_t kc, const float *restrict a, const float *restrict b,          \
                     float *restrict c, int64_t ldc, const onyx_sgemm_epi *epi) {          \
        KLOOP(V)                                                                           \
        const onyx_avx2_act_params ap = onyx_avx2_act_params_of(epi->act);                 \
        const int rows = epi->rows;                                                        \
        switch (ap.kind) {                                                                 \
        case ONYX_ACT_NONE:                                                                \
            EPI_STORE(V, ONYX_ACT_NONE)                                                    \
            break;                                                                         \
        case ONYX_ACT_RELU:                                                                \
            EPI_STORE(V, ONYX_ACT_RELU)                                                    \
            break;                                                                         \
        case ONYX_ACT_CLIP:                                                                \
            EPI_STORE(V, ONYX_ACT_CLIP)                                                    \
            break;                                                                         \
        case ONYX_ACT_SILU:                                                                \
            EPI_STORE(V, ONYX_ACT_SILU)                                                    \
            break;                                                                         \
        default:                                                                           \
            EPI_STORE(V, ap.kind)                                                          \
            break;                                                                         \
        }                                                                                  \
    }

UKERNEL(ukernel_avx2, 2)
UKERNEL(ukernel_avx2_half, 1)
UKERNEL_EPI(ukernel_avx2_epi, 2)
UKERNEL_EPI(ukernel_avx2_half_epi, 1)

const onyx_sgemm_kernel onyx_sgemm_kernel_avx2 = {"avx2",           MR,
                                                  NR,               ukernel_avx2,
                                                  ukernel_avx2_epi, ukernel_avx2_half,
                                                  ukernel_avx2_half_epi, true};
