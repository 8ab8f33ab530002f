/* gemm_avx512.c - the AVX-512 single-precision GEMM micro-kernel: a 12 x 32
 * register tile (24 zmm accumulators) over packed panels, as described at
 * the micro-kernel boundary in gemm.h. Compiled with AVX-512 flags; only
 * reached when dispatch.c found AVX-512F on this CPU. */
#include "kernels/gemm.h"

#include <immintrin.h>

enum { MR = 12, NR = 32 };

static void ukernel_avx512(int64_t kc, const float *restrict a, const float *restrict b,
                           float *restrict c, int64_t ldc, float alpha, float beta) {
    __m512 acc[MR][2];
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
            _mm512_storeu_ps(ci, _mm512_fmadd_ps(va, acc[i][0], _mm512_mul_ps(vb, _mm512_loadu_ps(ci))));
            _mm512_storeu_ps(ci + 16, _mm512_fmadd_ps(va, acc[i][1],
                                                      _mm512_mul_ps(vb, _mm512_loadu_ps(ci + 16))));
        }
    }
}

const onyx_sgemm_kernel onyx_sgemm_kernel_avx512 = {"avx512", MR, NR, ukernel_avx512};
