/* ew_avx2.c - AVX2+FMA variants of the float32 elementwise kernels of ew.h.
 * Same contracts as the generic twins in ew_generic.c: the arithmetic is
 * bit-identical, the transcendental functions (exp, erf, tanh) are
 * polynomial approximations within a few ulp of libm. Only reached when
 * dispatch.c found AVX2 and FMA. */
#include "kernels/ew.h"

#include "kernels/conv_avx2.h"

#include <immintrin.h>

#define INLINE static inline __attribute__((always_inline))

// ----------------------------------------------------------------------------
// Functions on 8 lanes

INLINE __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

INLINE __m256 is_nan(__m256 v) { return _mm256_cmp_ps(v, v, _CMP_UNORD_Q); }

/* erf(x). |x| < 1: x P(x^2); 1 <= |x| < 3.92: 1 - e^(-x^2) R(|x| - 1), with
 * R a fit of erfcx = e^(x^2) erfc(x) and x^2 carried in two parts (the
 * rounding error of x*x would otherwise cost a few ulp); beyond, 1. Both
 * fits are least squares on Chebyshev nodes, relative error < 3e-8. */
INLINE __m256 erf_ps(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f);
    __m256 t = abs_ps(x);
    __m256 s = _mm256_mul_ps(t, t);
    __m256 p = _mm256_set1_ps(7.847259257687256e-05f);
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-0.0008008189615793526f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(0.005188099108636379f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-0.026853691786527634f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(0.1128358244895935f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-0.3761262595653534f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(1.1283791065216064f));
    __m256 y = _mm256_mul_ps(t, p);
    __m256 big = _mm256_cmp_ps(t, one, _CMP_GE_OQ);
    if (_mm256_movemask_ps(big)) {
        __m256 tb = _mm256_min_ps(t, _mm256_set1_ps(3.92f));
        __m256 sb = _mm256_mul_ps(tb, tb);
        __m256 e = _mm256_fmsub_ps(tb, tb, sb); /* tb^2 = sb + e exactly */
        __m256 u = _mm256_sub_ps(tb, one);
        __m256 r = _mm256_set1_ps(-4.257553030129202e-07f);
        r = _mm256_fmadd_ps(r, u, _mm256_set1_ps(8.660436833451968e-06f));
        r = _mm256_fmadd_ps(r, u, _mm256_set1_ps(-8.099425031105056e-05f));
        r = _mm256_fmadd_ps(r, u, _mm256_set1_ps(0.00046818036935292184f));
        r = _mm256_fmadd_ps(r, u, _mm256_set1_ps(-0.0019132450688630342f));
        r = _mm256_fmadd_ps(r, u, _mm256_set1_ps(0.006054793018847704f));
        r = _mm256_fmadd_ps(r, u, _mm256_set1_ps(-0.015979792922735214f));
        r = _mm256_fmadd_ps(r, u, _mm256_set1_ps(0.03723687678575516f));
        r = _mm256_fmadd_ps(r, u, _mm256_set1_ps(-0.07912653684616089f));
        r = _mm256_fmadd_ps(r, u, _mm256_set1_ps(0.15435558557510376f));
        r = _mm256_fmadd_ps(r, u, _mm256_set1_ps(-0.2732110023498535f));
        r = _mm256_fmadd_ps(r, u, _mm256_set1_ps(0.42758357524871826f));
        __m256 ex = onyx_avx2_exp(_mm256_sub_ps(_mm256_setzero_ps(), sb));
        ex = _mm256_fnmadd_ps(ex, e, ex); /* e^(-sb) (1 - e) */
        __m256 yb = _mm256_fnmadd_ps(ex, r, one);
        y = _mm256_blendv_ps(y, yb, big);
    }
    y = _mm256_or_ps(y, _mm256_and_ps(x, _mm256_set1_ps(-0.0f)));
    return _mm256_blendv_ps(y, x, is_nan(x));
}

/* tanh(x): Cephes' tanhf. |x| < 0.625: x + x^3 P(x^2); beyond,
 * 1 - 2 / (e^(2|x|) + 1) with the sign of x. */
INLINE __m256 tanh_ps(__m256 x) {
    const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
    __m256 t = abs_ps(x);
    __m256 s = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(-5.70498872745e-3f);
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(2.06390887954e-2f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-5.37397155531e-2f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(1.33314422036e-1f));
    p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-3.33332819422e-1f));
    __m256 y = _mm256_fmadd_ps(_mm256_mul_ps(p, s), t, t);
    __m256 big = _mm256_cmp_ps(t, _mm256_set1_ps(0.625f), _CMP_NLT_UQ); /* NaN too */
    if (_mm256_movemask_ps(big)) {
        __m256 e = onyx_avx2_exp(_mm256_add_ps(t, t));
        __m256 yb = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
        y = _mm256_blendv_ps(y, yb, big);
    }
    return _mm256_or_ps(y, _mm256_and_ps(x, sign)); /* |tanh x| with x's sign, -0 too */
}

// ----------------------------------------------------------------------------
// Binary

INLINE __m256 binop(onyx_ew_binop op, __m256 a, __m256 b) {
    switch (op) {
    case ONYX_EW_ADD: return _mm256_add_ps(a, b);
    case ONYX_EW_SUB: return _mm256_sub_ps(a, b);
    case ONYX_EW_MUL: return _mm256_mul_ps(a, b);
    case ONYX_EW_DIV: return _mm256_div_ps(a, b);
    /* maxps is a > b ? a : b, so a NaN in b already wins; one in a must be
     * put back. */
    case ONYX_EW_MAX: return _mm256_blendv_ps(_mm256_max_ps(a, b), a, is_nan(a));
    case ONYX_EW_MIN: return _mm256_blendv_ps(_mm256_min_ps(a, b), a, is_nan(a));
    case ONYX_EW_BINOP_COUNT: break;
    }
    return a;
}

/* ak: 0 no activation, 1 Relu (x > 0 ? x : 0, as act.c), 2 any other kind. */
INLINE __m256 epilogue(int ak, const onyx_avx2_act_params *ap, __m256 v) {
    if (ak == 1) return _mm256_max_ps(_mm256_setzero_ps(), v);
    if (ak == 2) return onyx_avx2_act(ap, v);
    return v;
}

/* One binary row with the op, the strides (1 contiguous, 0 broadcast) and
 * the activation class all compile-time constants after inlining. */
INLINE void bin_body(onyx_ew_binop op, int sa, int sb, int ak, const float *a, const float *b,
                     float *y, int64_t n, const onyx_avx2_act_params *ap) {
    const __m256 a0 = _mm256_broadcast_ss(a), b0 = _mm256_broadcast_ss(b);
#define LA(i) (sa ? _mm256_loadu_ps(a + (i)) : a0)
#define LB(i) (sb ? _mm256_loadu_ps(b + (i)) : b0)
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 v[4];
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) v[j] =
            binop(op, LA(i + 8 * j), LB(i + 8 * j));
        if (ak == 2) /* one switch per 4 vectors; SiLU/Sigmoid interleaved */
            onyx_avx2_act_n(ap, v, 4);
        else
            _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) v[j] = epilogue(ak, ap, v[j]);
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) _mm256_storeu_ps(y + i + 8 * j, v[j]);
    }
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, epilogue(ak, ap, binop(op, LA(i), LB(i))));
#undef LA
#undef LB
    if (i < n) {
        __m256i m = onyx_avx2_tail_mask(n - i);
        __m256 va = sa ? _mm256_maskload_ps(a + i, m) : a0;
        __m256 vb = sb ? _mm256_maskload_ps(b + i, m) : b0;
        onyx_avx2_store_first(y + i, epilogue(ak, ap, binop(op, va, vb)), n - i);
    }
}

#define BIN_FN(NAME, OP)                                                                   \
    static void NAME(int sc, int ak, const float *a, const float *b, float *y, int64_t n,  \
                     const onyx_avx2_act_params *ap) {                                     \
        switch (sc * 3 + ak) {                                                             \
        case 0: bin_body(OP, 1, 1, 0, a, b, y, n, ap); break;                              \
        case 1: bin_body(OP, 1, 1, 1, a, b, y, n, ap); break;                              \
        case 2: bin_body(OP, 1, 1, 2, a, b, y, n, ap); break;                              \
        case 3: bin_body(OP, 1, 0, 0, a, b, y, n, ap); break;                              \
        case 4: bin_body(OP, 1, 0, 1, a, b, y, n, ap); break;                              \
        case 5: bin_body(OP, 1, 0, 2, a, b, y, n, ap); break;                              \
        case 6: bin_body(OP, 0, 1, 0, a, b, y, n, ap); break;                              \
        case 7: bin_body(OP, 0, 1, 1, a, b, y, n, ap); break;                              \
        default: bin_body(OP, 0, 1, 2, a, b, y, n, ap); break;                             \
        }                                                                                  \
    }
BIN_FN(bin_add, ONYX_EW_ADD)
BIN_FN(bin_sub, ONYX_EW_SUB)
BIN_FN(bin_mul, ONYX_EW_MUL)
BIN_FN(bin_div, ONYX_EW_DIV)
BIN_FN(bin_max, ONYX_EW_MAX)
BIN_FN(bin_min, ONYX_EW_MIN)

static void binary_avx2(onyx_ew_binop op, const float *a, int64_t sa, const float *b,
                        int64_t sb, float *y, int64_t n, const onyx_act *act) {
    if (n <= 0) return; /* the broadcasts below read a[0] and b[0] */
    if (!sa && !sb) {
        onyx_ew_kernels_generic.binary(op, a, sa, b, sb, y, n, act);
        return;
    }
    int sc = sa && sb ? 0 : sa ? 1 : 2;
    onyx_act_kind kind = act ? act->kind : ONYX_ACT_NONE;
    int ak = kind == ONYX_ACT_NONE || kind == ONYX_ACT_KIND_COUNT ? 0
             : kind == ONYX_ACT_RELU                              ? 1
                                                                  : 2;
    const onyx_avx2_act_params ap = onyx_avx2_act_params_of(act);
    switch (op) {
    case ONYX_EW_ADD: bin_add(sc, ak, a, b, y, n, &ap); break;
    case ONYX_EW_SUB: bin_sub(sc, ak, a, b, y, n, &ap); break;
    case ONYX_EW_MUL: bin_mul(sc, ak, a, b, y, n, &ap); break;
    case ONYX_EW_DIV: bin_div(sc, ak, a, b, y, n, &ap); break;
    case ONYX_EW_MAX: bin_max(sc, ak, a, b, y, n, &ap); break;
    case ONYX_EW_MIN: bin_min(sc, ak, a, b, y, n, &ap); break;
    case ONYX_EW_BINOP_COUNT: break;
    }
}

// ----------------------------------------------------------------------------
// Unary

INLINE __m256 unop(onyx_ew_unop op, __m256 v) {
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    switch (op) {
    case ONYX_EW_RELU: return _mm256_max_ps(_mm256_setzero_ps(), v); /* NaN -> v */
    case ONYX_EW_TANH: return tanh_ps(v);
    case ONYX_EW_SIGMOID: return onyx_avx2_sigmoid(v);
    case ONYX_EW_NEG: return _mm256_xor_ps(v, _mm256_set1_ps(-0.0f));
    case ONYX_EW_ABS: return abs_ps(v);
    case ONYX_EW_SQRT: return _mm256_sqrt_ps(v);
    case ONYX_EW_RECIP: return _mm256_div_ps(one, v);
    case ONYX_EW_EXP: return onyx_avx2_exp(v);
    case ONYX_EW_ERF: return erf_ps(v);
    case ONYX_EW_GELU: {
        __m256 e = erf_ps(_mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752440f)));
        return _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, e));
    }
    case ONYX_EW_GELU_TANH: {
        __m256 c = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.044715f), v), _mm256_mul_ps(v, v));
        __m256 t = tanh_ps(_mm256_mul_ps(_mm256_set1_ps(0.79788456080286535588f),
                                         _mm256_add_ps(v, c)));
        return _mm256_mul_ps(_mm256_mul_ps(half, v), _mm256_add_ps(one, t));
    }
    case ONYX_EW_SQUARE: return _mm256_mul_ps(v, v);
    case ONYX_EW_CUBE: return _mm256_mul_ps(_mm256_mul_ps(v, v), v);
    case ONYX_EW_POW_HALF: {
        /* -0 + 0 is +0; pow(-inf, 0.5) is +inf where sqrt gives NaN. */
        __m256 r = _mm256_sqrt_ps(_mm256_add_ps(v, _mm256_setzero_ps()));
        __m256 ninf = _mm256_cmp_ps(v, _mm256_set1_ps(-__builtin_inff()), _CMP_EQ_OQ);
        return _mm256_blendv_ps(r, _mm256_set1_ps(__builtin_inff()), ninf);
    }
    case ONYX_EW_UNOP_COUNT: break;
    }
    return v;
}

INLINE void un_body(onyx_ew_unop op, const float *x, float *y, int64_t n) {
    int64_t i = 0;
    if (op == ONYX_EW_SIGMOID) /* 4 vectors step-interleaved (conv_avx2.h) */
        for (; i + 32 <= n; i += 32) {
            __m256 v[4];
            _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) v[j] = _mm256_loadu_ps(x + i + 8 * j);
            onyx_avx2_sigmoid_n(v, 4);
            _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) _mm256_storeu_ps(y + i + 8 * j, v[j]);
        }
    for (; i + 16 <= n; i += 16) {
        __m256 v0 = unop(op, _mm256_loadu_ps(x + i));
        __m256 v1 = unop(op, _mm256_loadu_ps(x + i + 8));
        _mm256_storeu_ps(y + i, v0);
        _mm256_storeu_ps(y + i + 8, v1);
    }
    for (; i < n; i += 8) {
        __m256 v = _mm256_maskload_ps(x + i, onyx_avx2_tail_mask(n - i));
        onyx_avx2_store_first(y + i, unop(op, v), n - i);
    }
}

static void unary_avx2(onyx_ew_unop op, const float *x, float *y, int64_t n) {
    switch (op) {
    case ONYX_EW_RELU: un_body(ONYX_EW_RELU, x, y, n); break;
    case ONYX_EW_TANH: un_body(ONYX_EW_TANH, x, y, n); break;
    case ONYX_EW_SIGMOID: un_body(ONYX_EW_SIGMOID, x, y, n); break;
    case ONYX_EW_NEG: un_body(ONYX_EW_NEG, x, y, n); break;
    case ONYX_EW_ABS: un_body(ONYX_EW_ABS, x, y, n); break;
    case ONYX_EW_SQRT: un_body(ONYX_EW_SQRT, x, y, n); break;
    case ONYX_EW_RECIP: un_body(ONYX_EW_RECIP, x, y, n); break;
    case ONYX_EW_EXP: un_body(ONYX_EW_EXP, x, y, n); break;
    case ONYX_EW_ERF: un_body(ONYX_EW_ERF, x, y, n); break;
    case ONYX_EW_GELU: un_body(ONYX_EW_GELU, x, y, n); break;
    case ONYX_EW_GELU_TANH: un_body(ONYX_EW_GELU_TANH, x, y, n); break;
    case ONYX_EW_SQUARE: un_body(ONYX_EW_SQUARE, x, y, n); break;
    case ONYX_EW_CUBE: un_body(ONYX_EW_CUBE, x, y, n); break;
    case ONYX_EW_POW_HALF: un_body(ONYX_EW_POW_HALF, x, y, n); break;
    case ONYX_EW_UNOP_COUNT: break;
    }
}

const onyx_ew_kernels onyx_ew_kernels_avx2 = {"avx2", binary_avx2, unary_avx2};
