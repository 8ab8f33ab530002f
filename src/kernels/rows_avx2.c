/* rows_avx2.c - the AVX2+FMA row kernels of rows.h: softmax / log-softmax,
 * layer / RMS normalization and the row add, over one contiguous float32
 * row, 8 lanes at a time with masked tails. Only reached when dispatch.c found AVX2 and FMA;
 * rows.c holds the generic twins. */
#include "kernels/rows.h"

#include "kernels/conv_avx2.h"

#include <immintrin.h>
#include <math.h>

/* Lanes [0, r) set, for a tail of r in 1..7 elements. */
static inline __m256i tail_mask(int64_t r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* e^d for d <= 0 (or -inf) on one vector. */
static inline __m256 exp_nonpositive(__m256 d) {
    __m256 z, p, sc;
    onyx_avx2_exp_neg_abs_n(&d, &z, &p, &sc, 1);
    return _mm256_mul_ps(p, sc);
}

static void softmax_avx2(const float *x, float *y, int64_t n, bool log_) {
    const int64_t nv = n & ~(int64_t)7, r = n - nv;
    const __m256i m = tail_mask(r);
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 vmax = ninf, nan = _mm256_setzero_ps();
    for (int64_t i = 0; i < nv; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        vmax = _mm256_max_ps(vmax, v);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    }
    if (r) {
        __m256 v = _mm256_blendv_ps(ninf, _mm256_maskload_ps(x + nv, m), _mm256_castsi256_ps(m));
        vmax = _mm256_max_ps(vmax, v);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    }
    /* NaNs (which max_ps and the clamped exp would drop) and an all -inf
     * row take the generic path, which propagates them. */
    float mx = hmax(vmax);
    if (_mm256_movemask_ps(nan) || mx == -INFINITY) {
        onyx_row_kernels_generic.softmax(x, y, n, log_);
        return;
    }
    /* x - max <= 0: e^(x - max) on the e^-|z| of sigmoid and SiLU (within
     * 2 ulp, four vectors' chains interleaved). */
    const __m256 vm = _mm256_set1_ps(mx);
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= nv; i += 32) {
        __m256 d[4], z[4], p[4], sc[4];
        for (int q = 0; q < 4; q++) d[q] = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8 * q), vm);
        onyx_avx2_exp_neg_abs_n(d, z, p, sc, 4);
        for (int q = 0; q < 4; q++) {
            __m256 e = _mm256_mul_ps(p[q], sc[q]);
            if (!log_) _mm256_storeu_ps(y + i + 8 * q, e);
            if (q & 1) s1 = _mm256_add_ps(s1, e);
            else s0 = _mm256_add_ps(s0, e);
        }
    }
    for (; i < nv; i += 8) {
        __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        if (!log_) _mm256_storeu_ps(y + i, e);
        s0 = _mm256_add_ps(s0, e);
    }
    if (r) {
        __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_maskload_ps(x + nv, m), vm));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(m));
        if (!log_) _mm256_maskstore_ps(y + nv, m, e);
        s1 = _mm256_add_ps(s1, e);
    }
    float sum = hsum(_mm256_add_ps(s0, s1));
    if (!log_) {
        const __m256 inv = _mm256_set1_ps(1.0f / sum);
        for (i = 0; i < nv; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), inv));
        if (r) _mm256_maskstore_ps(y + nv, m, _mm256_mul_ps(_mm256_maskload_ps(y + nv, m), inv));
        return;
    }
    const __m256 lse = _mm256_set1_ps(mx + logf(sum));
    for (i = 0; i < nv; i += 8) _mm256_storeu_ps(y + i, _mm256_sub_ps(_mm256_loadu_ps(x + i), lse));
    if (r) _mm256_maskstore_ps(y + nv, m, _mm256_sub_ps(_mm256_maskload_ps(x + nv, m), lse));
}

/* Two passes for the statistics (the row is in L1 after the first), then
 * one fused normalize-scale-shift pass. */
static void layernorm_avx2(const float *x, float *y, int64_t n, float eps, const float *scale,
                           const float *bias, bool rms, float *mean_out, float *inv_out) {
    const int64_t nv = n & ~(int64_t)7, r = n - nv;
    const __m256i m = tail_mask(r);
    float mean = 0.0f;
    if (!rms) {
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        int64_t i = 0;
        for (; i + 16 <= nv; i += 16) {
            s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + i));
            s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + i + 8));
        }
        for (; i < nv; i += 8) s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + i));
        if (r) s1 = _mm256_add_ps(s1, _mm256_maskload_ps(x + nv, m));
        mean = hsum(_mm256_add_ps(s0, s1)) / (float)n;
    }
    const __m256 vm = _mm256_set1_ps(mean);
    __m256 q0 = _mm256_setzero_ps(), q1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= nv; i += 16) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm);
        q0 = _mm256_fmadd_ps(d0, d0, q0);
        q1 = _mm256_fmadd_ps(d1, d1, q1);
    }
    for (; i < nv; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
        q0 = _mm256_fmadd_ps(d, d, q0);
    }
    if (r) {
        __m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x + nv, m), vm),
                                 _mm256_castsi256_ps(m));
        q1 = _mm256_fmadd_ps(d, d, q1);
    }
    float var = hsum(_mm256_add_ps(q0, q1)) / (float)n;
    float inv = (float)(1.0 / sqrt((double)var + (double)eps));
    if (mean_out) *mean_out = mean;
    if (inv_out) *inv_out = inv;
    /* y = (x - mean) * inv * scale + bias; subtracting first keeps a large
     * mean from cancelling against x * inv. */
    const __m256 vi = _mm256_set1_ps(inv);
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    for (i = 0; i < nv; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vi);
        __m256 s = scale ? _mm256_loadu_ps(scale + i) : one;
        __m256 b = bias ? _mm256_loadu_ps(bias + i) : zero;
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(v, s, b));
    }
    if (r) {
        __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + nv, m), vm), vi);
        __m256 s = scale ? _mm256_maskload_ps(scale + nv, m) : one;
        __m256 b = bias ? _mm256_maskload_ps(bias + nv, m) : zero;
        _mm256_maskstore_ps(y + nv, m, _mm256_fmadd_ps(v, s, b));
    }
}

static void add_avx2(float *y, const float *b, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_loadu_ps(y + i), _mm256_loadu_ps(b + i)));
    if (i < n) {
        const __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(y + i, m, _mm256_add_ps(_mm256_maskload_ps(y + i, m),
                                                    _mm256_maskload_ps(b + i, m)));
    }
}

/* The even and odd elements of the 16 floats a:b, in order. */
static inline __m256 evens(__m256 a, __m256 b) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(
        _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))), _MM_SHUFFLE(3, 1, 2, 0)));
}

static inline __m256 odds(__m256 a, __m256 b) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(
        _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* Lanes x[2], x[4], .., x[16] of the row at x, from c = x[2..10) and
 * d = x[9..17): the third tap of 8 windows without reading x[17]. */
static inline __m256 thirds(__m256 c, __m256 d) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(
        _mm256_castps_pd(_mm256_shuffle_ps(c, d, _MM_SHUFFLE(3, 1, 2, 0))), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* Eight windows from x[2o]: each of the four vectors a window block reads
 * (x[0..8), x[8..16), x[2..10), x[9..17) from 2o) is reduced over the rows
 * first, then the columns. max_ps(t, m) is t > m ? t : m (m when either is
 * NaN): the generic order. */
static inline void max3s2_block(const float *r, int64_t ld, int64_t kh, float *y) {
    __m256 a = _mm256_loadu_ps(r), b = _mm256_loadu_ps(r + 8);
    __m256 c = _mm256_loadu_ps(r + 2), d = _mm256_loadu_ps(r + 9);
    for (int64_t i = 1; i < kh; i++) {
        const float *q = r + i * ld;
        a = _mm256_max_ps(_mm256_loadu_ps(q), a);
        b = _mm256_max_ps(_mm256_loadu_ps(q + 8), b);
        c = _mm256_max_ps(_mm256_loadu_ps(q + 2), c);
        d = _mm256_max_ps(_mm256_loadu_ps(q + 9), d);
    }
    __m256 m = evens(a, b);
    m = _mm256_max_ps(odds(a, b), m);
    m = _mm256_max_ps(thirds(c, d), m);
    _mm256_storeu_ps(y, m);
}

static void max3s2_avx2(const float *x, int64_t ld, int64_t kh, float *y, int64_t n) {
    if (n < 8) {
        onyx_row_kernels_generic.max3s2(x, ld, kh, y, n);
        return;
    }
    int64_t o = 0;
    for (; o + 8 <= n; o += 8) max3s2_block(x + 2 * o, ld, kh, y + o);
    /* The last few: one more block ending at n (it reads up to x[2n]). */
    if (o < n) max3s2_block(x + 2 * (n - 8), ld, kh, y + n - 8);
}

/* Runs of SUM_RUN elements are summed in 4 x 8 float lanes (each lane
 * adds SUM_RUN / 32 values), and each run's total is added in double, so
 * that a long plane keeps the generic twin's precision. */
#define SUM_RUN 512

/* total + the 8 lanes of v, widened to double. */
static inline __m256d add_widened(__m256d total, __m256 v) {
    return _mm256_add_pd(total, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                                              _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
}

static double sum_avx2(const float *x, int64_t n) {
    __m256d total = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + SUM_RUN <= n; i += SUM_RUN) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t q = i; q < i + SUM_RUN; q += 32) {
            a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + q));
            a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + q + 8));
            a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + q + 16));
            a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + q + 24));
        }
        total = add_widened(total, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    }
    __m256 a = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) a = _mm256_add_ps(a, _mm256_loadu_ps(x + i));
    if (i < n) a = _mm256_add_ps(a, _mm256_maskload_ps(x + i, tail_mask(n - i)));
    total = add_widened(total, a);
    __m128d t = _mm_add_pd(_mm256_castpd256_pd128(total), _mm256_extractf128_pd(total, 1));
    return _mm_cvtsd_f64(_mm_add_sd(t, _mm_unpackhi_pd(t, t)));
}

const onyx_row_kernels onyx_row_kernels_avx2 = {"avx2", softmax_avx2, layernorm_avx2, add_avx2,
                                                max3s2_avx2, sum_avx2};
