/* conv_avx2.h - AVX2 helpers shared by the AVX2 convolution kernels
 * (conv_avx2.c, winograd_avx2.c): fused activations on 8 lanes, tail masks.
 * Include only from files compiled with the AVX2 flags (*_avx2.c). */
#ifndef ONYX_CONV_AVX2_H
#define ONYX_CONV_AVX2_H

#include "core/op.h"

#include <immintrin.h>
#include <stdbool.h>

typedef struct onyx_avx2_act_params {
    onyx_act_kind kind;
    __m256 a, b;
} onyx_avx2_act_params;

static inline onyx_avx2_act_params onyx_avx2_act_params_of(const onyx_act *act) {
    onyx_avx2_act_params p;
    p.kind = act ? act->kind : ONYX_ACT_NONE;
    p.a = _mm256_set1_ps(act ? act->a : 0.0f);
    p.b = _mm256_set1_ps(act ? act->b : 0.0f);
    return p;
}

/* exp(x) on 8 lanes, NaN and +-inf included, denormal results rounded
 * once (within 1.2 ulp of libm's expf): x = n ln2 + r with |r| <= ln2/2 (ln2
 * in two parts, Cephes' expf polynomial for e^r), then e^r * 2^(n/2) *
 * 2^(n - n/2) so that neither scale overflows. */
static inline __attribute__((always_inline)) __m256 onyx_avx2_exp(__m256 x) {
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-104.0f)), _mm256_set1_ps(89.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

/* Whether onyx_avx2_act implements this kind (else the caller falls back to
 * onyx_act_apply on the stored values). */
static inline bool onyx_avx2_act_vectorized(onyx_act_kind kind) {
    return kind != ONYX_ACT_NONE && kind != ONYX_ACT_KIND_COUNT;
}

/* The fused activation on 8 lanes: the formulas of act.c. Always inlined:
 * a call per vector costs more than the activation. */
static inline __attribute__((always_inline)) __m256 onyx_avx2_act(const onyx_avx2_act_params *p, __m256 v) {
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    switch (p->kind) {
    case ONYX_ACT_RELU:
        return _mm256_max_ps(zero, v); /* NaN (the second operand) passes through */
    case ONYX_ACT_CLIP:
        /* max_ps/min_ps return their second operand on NaN: v passes
         * through as in act.c's compares. */
        return _mm256_min_ps(p->b, _mm256_max_ps(p->a, v));
    case ONYX_ACT_LEAKY_RELU:
        return _mm256_blendv_ps(_mm256_mul_ps(v, p->a), v,
                                _mm256_cmp_ps(v, zero, _CMP_GE_OQ));
    case ONYX_ACT_SIGMOID:
        return _mm256_div_ps(one, _mm256_add_ps(one, onyx_avx2_exp(_mm256_sub_ps(zero, v))));
    case ONYX_ACT_HARD_SIGMOID: {
        __m256 t = _mm256_fmadd_ps(p->a, v, p->b);
        return _mm256_min_ps(one, _mm256_max_ps(zero, t));
    }
    case ONYX_ACT_HARD_SWISH: {
        __m256 t = _mm256_fmadd_ps(v, _mm256_set1_ps(1.0f / 6.0f), _mm256_set1_ps(0.5f));
        return _mm256_mul_ps(v, _mm256_min_ps(one, _mm256_max_ps(zero, t)));
    }
    case ONYX_ACT_TANH: {
        /* 1 - 2 / (1 + exp(2v)) */
        __m256 e = onyx_avx2_exp(_mm256_add_ps(v, v));
        return _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(one, e)));
    }
    case ONYX_ACT_SILU:
        return _mm256_div_ps(v, _mm256_add_ps(one, onyx_avx2_exp(_mm256_sub_ps(zero, v))));
    case ONYX_ACT_NONE:
    case ONYX_ACT_KIND_COUNT:
        break;
    }
    return v;
}

/* Stores the first n (0..8) lanes of v at p. (vmaskmovps to memory is
 * microcoded and slow on AMD Zen, so this uses plain narrower stores.) */
static inline void onyx_avx2_store_first(float *p, __m256 v, int64_t n) {
    if (n >= 8) {
        _mm256_storeu_ps(p, v);
        return;
    }
    __m128 lo = _mm256_castps256_ps128(v);
    if (n >= 4) {
        _mm_storeu_ps(p, lo);
        lo = _mm256_extractf128_ps(v, 1);
        p += 4;
        n -= 4;
    }
    if (n >= 2) {
        _mm_storel_pi((__m64 *)(void *)p, lo);
        lo = _mm_movehl_ps(lo, lo);
        p += 2;
        n -= 2;
    }
    if (n) _mm_store_ss(p, lo);
}

/* Mask of the first n (0..8) lanes for maskload. */
static inline __m256i onyx_avx2_tail_mask(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* The first n floats at p in the low lanes, zeros above (reads no further
 * than p + n). */
static inline __m256 onyx_avx2_load_first(const float *p, int64_t n) {
    if (n >= 8) return _mm256_loadu_ps(p);
    return _mm256_maskload_ps(p, onyx_avx2_tail_mask(n));
}

#endif
