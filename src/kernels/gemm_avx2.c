/* gemm_avx2.c - the AVX2+FMA single-precision GEMM micro-kernel: a 6 x 16
 * register tile (12 ymm accumulators) over packed panels, as described at
 * the micro-kernel boundary in gemm.h, plain and with the fused bias +
 * activation epilogue. Only reached when dispatch.c found AVX2 and FMA on
 * this CPU. */
#include "kernels/gemm.h"

#include "kernels/conv_avx2.h"

#include <immintrin.h>

enum { MR = 6, NR = 16 };

static void ukernel_avx2(int64_t kc, const float *restrict a, const float *restrict b,
                         float *restrict c, int64_t ldc, float alpha, float beta) {
    __m256 acc[MR][2];
    #pragma GCC unroll 16
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b + p * NR), b1 = _mm256_loadu_ps(b + p * NR + 8);
        const float *ap = a + p * MR;
        #pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            __m256 ai = _mm256_broadcast_ss(ap + i);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
    }
    __m256 va = _mm256_set1_ps(alpha);
    if (beta == 0.0f) {
        #pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            _mm256_storeu_ps(c + i * ldc, _mm256_mul_ps(va, acc[i][0]));
            _mm256_storeu_ps(c + i * ldc + 8, _mm256_mul_ps(va, acc[i][1]));
        }
    } else {
        __m256 vb = _mm256_set1_ps(beta);
        #pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            float *ci = c + i * ldc;
            _mm256_storeu_ps(ci, _mm256_fmadd_ps(va, acc[i][0], _mm256_mul_ps(vb, _mm256_loadu_ps(ci))));
            _mm256_storeu_ps(ci + 8, _mm256_fmadd_ps(va, acc[i][1],
                                                     _mm256_mul_ps(vb, _mm256_loadu_ps(ci + 8))));
        }
    }
}

static void ukernel_avx2_epi(int64_t kc, const float *restrict a, const float *restrict b,
                             float *restrict c, int64_t ldc, const onyx_sgemm_epi *epi) {
    __m256 acc[MR][2];
    #pragma GCC unroll 16
    for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int64_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b + p * NR), b1 = _mm256_loadu_ps(b + p * NR + 8);
        const float *ap = a + p * MR;
        #pragma GCC unroll 16
        for (int i = 0; i < MR; i++) {
            __m256 ai = _mm256_broadcast_ss(ap + i);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
    }
    const onyx_avx2_act_params ap = onyx_avx2_act_params_of(epi->act);
    const bool act = onyx_avx2_act_vectorized(ap.kind);
    #pragma GCC unroll 16
    for (int i = 0; i < MR; i++) {
        float *ci = c + i * ldc;
        __m256 v0 = acc[i][0], v1 = acc[i][1];
        if (epi->accumulate) {
            v0 = _mm256_add_ps(v0, _mm256_loadu_ps(ci));
            v1 = _mm256_add_ps(v1, _mm256_loadu_ps(ci + 8));
        }
        if (epi->bias) {
            __m256 bi = _mm256_broadcast_ss(epi->bias + i);
            v0 = _mm256_add_ps(v0, bi);
            v1 = _mm256_add_ps(v1, bi);
        }
        if (act) {
            v0 = onyx_avx2_act(&ap, v0);
            v1 = onyx_avx2_act(&ap, v1);
        }
        _mm256_storeu_ps(ci, v0);
        _mm256_storeu_ps(ci + 8, v1);
    }
}

const onyx_sgemm_kernel onyx_sgemm_kernel_avx2 = {"avx2", MR, NR, ukernel_avx2, ukernel_avx2_epi};
