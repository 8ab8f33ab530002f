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

/* Step-interleaved helpers over n vectors (n a compile-time constant after
 * inlining): each step runs for every vector before the next, so that n
 * independent dependency chains overlap (one sigmoid is a ~60-cycle chain). */
#define ONYX_AVX2_EACH(n) _Pragma("GCC unroll 8") for (int j_ = 0; j_ < (n); j_++)

/* e^z for z = -|x| on n vectors, for sigmoid and SiLU: returns z and e^z as
 * the product p s of a polynomial scaled by 2^-32 (its coefficients carry the
 * factor, exactly) and s = 2^(k/8 + 32), so that p s is rounded once even
 * where it is denormal. z = (k/8) ln2 + r with |r| <= ln2/16: a degree-3
 * polynomial is enough for e^r, and s is built from the bits of the rounding
 * sum with an 8-entry table of 2^(j/8) (no round or convert instruction).
 * z is clamped at -109 (where e^z and z e^z round to 0): no overflow or
 * underflow case. NaN propagates (p is NaN). p s is within 2 ulp of e^z. */
static inline __attribute__((always_inline)) void onyx_avx2_exp_neg_abs_n(const __m256 *x, __m256 *z, __m256 *p,
                                                                        __m256 *s, int n) {
    /* 1.5 * 2^20 + 159: in [2^20, 2^21) floats step by 1/8, so t = z log2(e)
     * + magic rounds z log2(e) to k/8 = t - magic, t's low 3 bits are j = k
     * mod 8, and t << 20 is 2^(floor(k/8) + 32) (1 + j/8) (exponent field
     * floor(k/8) + 159 >= 1, mantissa j/8). Adding tab[j] (the mantissa bits
     * of 2^(j/8) minus those of 1 + j/8, as integers) makes it 2^(k/8 + 32). */
    const __m256 magic = _mm256_set1_ps(1572864.0f + 159.0f);
    const __m256i tab = _mm256_setr_epi32(0, -289342, -509968, -655657, -719629, -694486,
                                          -572163, -343865);
    __m256 t[8], k[8], r[8];
    ONYX_AVX2_EACH(n) {
        z[j_] = _mm256_or_ps(x[j_], _mm256_set1_ps(-0.0f));    /* -|x|, NaN stays NaN */
        z[j_] = _mm256_max_ps(_mm256_set1_ps(-109.0f), z[j_]); /* NaN passes */
    }
    ONYX_AVX2_EACH(n) t[j_] = _mm256_fmadd_ps(z[j_], _mm256_set1_ps(1.44269504088896341f), magic);
    ONYX_AVX2_EACH(n) k[j_] = _mm256_sub_ps(t[j_], magic);
    /* r = z - (k/8) ln2, ln2 in two parts ((k/8) * 0.693359375 is exact) */
    ONYX_AVX2_EACH(n) r[j_] = _mm256_fnmadd_ps(k[j_], _mm256_set1_ps(0.693359375f), z[j_]);
    ONYX_AVX2_EACH(n) r[j_] = _mm256_fnmadd_ps(k[j_], _mm256_set1_ps(-2.12194440e-4f), r[j_]);
    /* p = 2^-32 e^r: 1 + r + c2 r^2 + c3 r^3 fitted to the relative error
     * on |r| <= ln2/16 (0.3 * 2^-24 before rounding) */
    ONYX_AVX2_EACH(n) p[j_] = _mm256_fmadd_ps(_mm256_set1_ps(0x1p-32f * 1.666510105e-01f), r[j_],
                                              _mm256_set1_ps(0x1p-32f * 5.000782609e-01f));
    ONYX_AVX2_EACH(n) p[j_] = _mm256_fmadd_ps(p[j_], r[j_], _mm256_set1_ps(0x1p-32f));
    ONYX_AVX2_EACH(n) p[j_] = _mm256_fmadd_ps(p[j_], r[j_], _mm256_set1_ps(0x1p-32f));
    ONYX_AVX2_EACH(n) {
        __m256i ti = _mm256_castps_si256(t[j_]);
        s[j_] = _mm256_castsi256_ps(_mm256_add_epi32(_mm256_slli_epi32(ti, 20),
                                                     _mm256_permutevar8x32_epi32(tab, ti)));
    }
}

/* sigmoid(x) on n vectors, in place: with e = e^-|x|, e / (1 + e) for x < 0
 * and 1 / (1 + e) for x >= 0 (no overflow, denormal results right).
 * NaN propagates, sigmoid(-inf) = 0, sigmoid(+inf) = 1. Within 3 ulp of the
 * exact value (test_kernels.c). The division runs beside the FMAs: it
 * is cheaper than a reciprocal estimate with Newton steps. */
static inline __attribute__((always_inline)) void onyx_avx2_sigmoid_n(__m256 *v, int n) {
    __m256 z[8], p[8], s[8];
    onyx_avx2_exp_neg_abs_n(v, z, p, s, n);
    ONYX_AVX2_EACH(n) {
        const __m256 one = _mm256_set1_ps(1.0f);
        __m256 e = _mm256_mul_ps(p[j_], s[j_]);
        __m256 num = _mm256_blendv_ps(one, e, v[j_]); /* sign bit set: e */
        v[j_] = _mm256_div_ps(num, _mm256_add_ps(one, e));
    }
}

/* silu(x) = x sigmoid(x) on n vectors, in place: x e / (1 + e) for x < 0
 * (x clamped at -109, where x e rounds to 0), x / (1 + e) for x >= 0;
 * silu(-inf) = -0 (not -inf * 0), silu(+inf) = +inf, NaN propagates. Within
 * 4 ulp of the exact value (test_kernels.c). */
static inline __attribute__((always_inline)) void onyx_avx2_silu_n(__m256 *v, int n) {
    __m256 z[8], p[8], s[8];
    onyx_avx2_exp_neg_abs_n(v, z, p, s, n);
    ONYX_AVX2_EACH(n) {
        /* z e as (z p) s: rounded once where e is denormal and z e is not */
        __m256 ze = _mm256_mul_ps(_mm256_mul_ps(z[j_], p[j_]), s[j_]);
        __m256 num = _mm256_blendv_ps(v[j_], ze, v[j_]);
        v[j_] = _mm256_div_ps(num, _mm256_fmadd_ps(p[j_], s[j_], _mm256_set1_ps(1.0f)));
    }
}

static inline __attribute__((always_inline)) __m256 onyx_avx2_sigmoid(__m256 x) {
    onyx_avx2_sigmoid_n(&x, 1);
    return x;
}

static inline __attribute__((always_inline)) __m256 onyx_avx2_silu(__m256 x) {
    onyx_avx2_silu_n(&x, 1);
    return x;
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
        return onyx_avx2_sigmoid(v);
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
        return onyx_avx2_silu(v);
    case ONYX_ACT_NONE:
    case ONYX_ACT_KIND_COUNT:
        break;
    }
    return v;
}

/* The fused activation on n vectors in place (n a constant after inlining,
 * at most 8): SiLU and Sigmoid step-interleaved (their long dependency
 * chains overlap), the other kinds one vector at a time. */
static inline __attribute__((always_inline)) void onyx_avx2_act_n(const onyx_avx2_act_params *p, __m256 *v, int n) {
    switch (p->kind) {
    case ONYX_ACT_SILU: onyx_avx2_silu_n(v, n); return;
    case ONYX_ACT_SIGMOID: onyx_avx2_sigmoid_n(v, n); return;
    default: ONYX_AVX2_EACH(n) v[j_] = onyx_avx2_act(p, v[j_]); return;
    }
}

/* The one list of activation kinds the fused epilogues (GEMM, depthwise,
 * Winograd output) compile a copy for: STMT(K) runs with K a constant for
 * none, Relu, Clip and SiLU, so each copy's per-vector switch folds away,
 * and with the run-time `kind` otherwise. */
#define ONYX_AVX2_BY_ACT(kind, STMT)                                                        \
    switch (kind) {                                                                        \
    case ONYX_ACT_NONE: STMT(ONYX_ACT_NONE); break;                                        \
    case ONYX_ACT_RELU: STMT(ONYX_ACT_RELU); break;                                        \
    case ONYX_ACT_CLIP: STMT(ONYX_ACT_CLIP); break;                                        \
    case ONYX_ACT_SILU: STMT(ONYX_ACT_SILU); break;                                        \
    default: STMT(kind); break;                                                            \
    }

/* out[j][l] = in[l][j] for an 8x8 block of floats (rows in, columns out);
 * out may be in (every input is read before the first store). */
static inline __attribute__((always_inline)) void onyx_avx2_transpose8(const __m256 *in,
                                                                      __m256 *out) {
    __m256 t0 = _mm256_unpacklo_ps(in[0], in[1]), t1 = _mm256_unpackhi_ps(in[0], in[1]);
    __m256 t2 = _mm256_unpacklo_ps(in[2], in[3]), t3 = _mm256_unpackhi_ps(in[2], in[3]);
    __m256 t4 = _mm256_unpacklo_ps(in[4], in[5]), t5 = _mm256_unpackhi_ps(in[4], in[5]);
    __m256 t6 = _mm256_unpacklo_ps(in[6], in[7]), t7 = _mm256_unpackhi_ps(in[6], in[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    out[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    out[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    out[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    out[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    out[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    out[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    out[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    out[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
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
