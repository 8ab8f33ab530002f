/* conv_avx2.c - AVX2+FMA variants of the dispatched convolution kernels of
 * conv_kernels.h (bias + activation epilogue, direct depthwise plane). Same
 * contracts and results (to float rounding) as the generic twins in
 * conv_generic.c; only reached when dispatch.c found AVX2 and FMA. */
#include "kernels/conv_kernels.h"

#include "kernels/act.h"
#include "kernels/conv_avx2.h"

#include <immintrin.h>
#include <string.h>

// ----------------------------------------------------------------------------
// Bias + activation

/* Applies bias b and the activation to n floats at y. */
static void bias_act_row(float *y, int64_t n, float b, const onyx_act *act) {
    const onyx_act_kind kind = act ? act->kind : ONYX_ACT_NONE;
    const bool vec = onyx_avx2_act_vectorized(kind);
    const __m256 vb = _mm256_set1_ps(b);
    onyx_avx2_act_params ap = onyx_avx2_act_params_of(act);
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 v = _mm256_add_ps(_mm256_loadu_ps(y + j), vb);
        if (vec) v = onyx_avx2_act(&ap, v);
        _mm256_storeu_ps(y + j, v);
    }
    if (j < n) {
        __m256i m = onyx_avx2_tail_mask(n - j);
        __m256 v = _mm256_add_ps(_mm256_maskload_ps(y + j, m), vb);
        if (vec) v = onyx_avx2_act(&ap, v);
        onyx_avx2_store_first(y + j, v, n - j);
    }
    if (!vec && kind != ONYX_ACT_NONE) onyx_act_apply(act, y, n);
}

static void bias_act_avx2(float *y, int64_t ldy, int64_t rows, int64_t n, const float *bias,
                          const onyx_act *act) {
    if (!bias && (!act || act->kind == ONYX_ACT_NONE)) return;
    for (int64_t r = 0; r < rows; r++) bias_act_row(y + r * ldy, n, bias ? bias[r] : 0.0f, act);
}

/* act_avx2's loop with the kind a constant: 4 vectors at a time through
 * onyx_avx2_act_n (SiLU and Sigmoid overlap their chains there). */
static inline __attribute__((always_inline)) void act_body(const onyx_avx2_act_params *ap,
                                                           const float *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 v[4];
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) v[j] = _mm256_loadu_ps(x + i + 8 * j);
        onyx_avx2_act_n(ap, v, 4);
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) _mm256_storeu_ps(y + i + 8 * j, v[j]);
    }
    for (; i < n; i += 8) {
        __m256 v = _mm256_maskload_ps(x + i, onyx_avx2_tail_mask(n - i));
        onyx_avx2_act_n(ap, &v, 1);
        onyx_avx2_store_first(y + i, v, n - i);
    }
}

static void act_avx2(const float *x, float *y, int64_t n, const onyx_act *act) {
    onyx_avx2_act_params ap = onyx_avx2_act_params_of(act);
    if (!onyx_avx2_act_vectorized(ap.kind)) {
        if (y != x) memmove(y, x, (size_t)n * sizeof(float));
        return;
    }
    switch (ap.kind) {
    case ONYX_ACT_SILU:
        ap.kind = ONYX_ACT_SILU;
        act_body(&ap, x, y, n);
        break;
    case ONYX_ACT_SIGMOID:
        ap.kind = ONYX_ACT_SIGMOID;
        act_body(&ap, x, y, n);
        break;
    default: act_body(&ap, x, y, n); break;
    }
}

// ----------------------------------------------------------------------------
// Depthwise

/* Even elements of p[0..16) (2 loads, 2 shuffles). */
static inline __m256 even8(const float *p) {
    __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    __m256 e = _mm256_shuffle_ps(a, b, 0x88); /* a0 a2 b0 b2 | a4 a6 b4 b6 */
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8));
}

/* Odd elements of p[0..16). */
static inline __m256 odd8(const float *p) {
    __m256 a = _mm256_loadu_ps(p), b = _mm256_loadu_ps(p + 8);
    __m256 e = _mm256_shuffle_ps(a, b, 0xDD);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xD8));
}

/* onyx_conv_split_phases, with vector deinterleaving for stride 2. */
static void split_phases_avx2(const onyx_conv2d *g, const float *x, float *dst, int64_t c0,
                              int64_t c1) {
    if (g->sw != 2) {
        onyx_conv_split_phases(g, x, dst, c0, c1);
        return;
    }
    const int64_t pw = (g->w + 1) / 2, plane = g->h * pw;
    const int64_t n_even = pw, n_odd = g->w / 2;
    /* Only the phases and rows some tap reads (1x1: the even phase of
     * every other row). */
    const bool even = onyx_conv_phase_used(g, 0), odd = onyx_conv_phase_used(g, 1);
    /* Plane by plane: one read and one or two write streams at a time. */
    for (int64_t c = c0; c < c1; c++) {
        for (int64_t i = 0; i < g->h; i++) {
            if (!onyx_conv_row_used(g, i)) continue;
            const float *s = x + (c * g->h + i) * g->w;
            float *de = dst + c * 2 * plane + i * pw, *dd = de + plane;
            int64_t t = 0;
            /* Full vectors read s[2t .. 2t+16), within the row. */
            if (even && odd) {
                for (; 2 * t + 16 <= g->w; t += 8) {
                    _mm256_storeu_ps(de + t, even8(s + 2 * t));
                    _mm256_storeu_ps(dd + t, odd8(s + 2 * t));
                }
            } else if (even) {
                for (; 2 * t + 16 <= g->w; t += 8) _mm256_storeu_ps(de + t, even8(s + 2 * t));
            } else {
                for (; 2 * t + 16 <= g->w; t += 8) _mm256_storeu_ps(dd + t, odd8(s + 2 * t));
            }
            if (even)
                for (int64_t u = t; u < n_even; u++) de[u] = s[2 * u];
            if (odd) {
                for (int64_t u = t; u < n_odd; u++) dd[u] = s[2 * u + 1];
                if (n_odd < pw) dd[n_odd] = 0.0f;
            }
        }
    }
}

/* d[t..len) = 0 in whole vectors: may write up to 7 floats past len, into
 * the next scratch row (filled after this one) or the plan's slack. */
static inline void zero_to(float *d, int64_t t, int64_t len) {
    const __m256 z = _mm256_setzero_ps();
    for (; t < len; t += 8) _mm256_storeu_ps(d + t, z);
}

/* Fills the scratch with the zero-padded plane split into sw column phases:
 * phase q, row i, index t holds x[i - ph][q + t*sw - pw] (0 outside). */
static void fill_phases(const onyx_dw_plan *pl, const float *x, float *P) {
    const onyx_conv2d *g = &pl->g;
    const int64_t sw = g->sw, rows = pl->rows, len = pl->len;
    for (int64_t q = 0; q < sw; q++) {
        const int64_t off = q - g->pw, lo = pl->lo[q], hi = pl->hi[q];
        /* vector reads s[2t + off .. + 16) must stay in the row */
        int64_t vhi = sw == 2 ? (g->w - off) / 2 : 0;
        if (vhi > hi) vhi = hi;
        for (int64_t i = 0; i < rows; i++) {
            float *d = P + (q * rows + i) * len;
            int64_t ih = i - g->ph;
            if (ih < 0 || ih >= g->h) {
                zero_to(d, 0, len);
                continue;
            }
            const float *s = x + ih * g->w;
            int64_t t = 0;
            /* The leading pad: one vector store (the row is at least 16
             * long and the copy below overwrites lanes from lo on) rather
             * than a memset call per row. */
            if (lo <= 8) {
                _mm256_storeu_ps(d, _mm256_setzero_ps());
                t = lo;
            }
            for (; t < lo; t++) d[t] = 0.0f;
            if (sw == 1) {
                memcpy(d + lo, s + lo + off, (size_t)(hi - lo) * sizeof(float));
                t = hi;
            } else if (sw == 2) {
                for (; t + 8 <= vhi; t += 8) _mm256_storeu_ps(d + t, even8(s + t * 2 + off));
                for (; t < hi; t++) d[t] = s[t * 2 + off];
            } else {
                for (; t < hi; t++) d[t] = s[t * sw + off];
            }
            zero_to(d, t, len);
        }
    }
}

/* Columns [0, ow32) of one output row in blocks of 32 (four independent
 * accumulators). NT is the tap count when known at compile time (0:
 * pl->ntaps). */
#define DW_ROW(NAME, NT)                                                                   \
    static inline __attribute__((always_inline)) void NAME(                                \
        const onyx_dw_plan *pl, const __m256 *wv, const float *src, __m256 vb,              \
                     const float *srow, const onyx_avx2_act_params *ap, bool vec,          \
                     float *yrow, int64_t ow32) {                                           \
        const int n = NT ? NT : pl->ntaps;                                                 \
        const int64_t *off = pl->off;                                                      \
        for (int64_t o = 0; o < ow32; o += 32) {                                           \
            __m256 a0 = vb, a1 = vb, a2 = vb, a3 = vb;                                     \
            for (int i = 0; i < n; i++) {                                                  \
                const float *p = src + off[i] + o;                                         \
                a0 = _mm256_fmadd_ps(wv[i], _mm256_loadu_ps(p), a0);                       \
                a1 = _mm256_fmadd_ps(wv[i], _mm256_loadu_ps(p + 8), a1);                   \
                a2 = _mm256_fmadd_ps(wv[i], _mm256_loadu_ps(p + 16), a2);                  \
                a3 = _mm256_fmadd_ps(wv[i], _mm256_loadu_ps(p + 24), a3);                  \
            }                                                                              \
            if (srow) {                                                                    \
                a0 = _mm256_add_ps(a0, _mm256_loadu_ps(srow + o));                         \
                a1 = _mm256_add_ps(a1, _mm256_loadu_ps(srow + o + 8));                     \
                a2 = _mm256_add_ps(a2, _mm256_loadu_ps(srow + o + 16));                    \
                a3 = _mm256_add_ps(a3, _mm256_loadu_ps(srow + o + 24));                    \
            }                                                                              \
            if (vec) {                                                                     \
                a0 = onyx_avx2_act(ap, a0);                                                \
                a1 = onyx_avx2_act(ap, a1);                                                \
                a2 = onyx_avx2_act(ap, a2);                                                \
                a3 = onyx_avx2_act(ap, a3);                                                \
            }                                                                              \
            _mm256_storeu_ps(yrow + o, a0);                                                \
            _mm256_storeu_ps(yrow + o + 8, a1);                                            \
            _mm256_storeu_ps(yrow + o + 16, a2);                                           \
            _mm256_storeu_ps(yrow + o + 24, a3);                                           \
        }                                                                                  \
    }

/* Columns [o0, ow) of four output rows (rows past `nrows` are computed
 * from valid scratch but not stored), in blocks of 8, the last masked: the
 * rows are the independent accumulators, so narrow planes do not wait on
 * one FMA chain. */
#define DW_TAIL(NAME, NT)                                                                  \
    static inline __attribute__((always_inline)) void NAME(                                \
        const onyx_dw_plan *pl, const __m256 *wv, const float *src,                         \
                     int64_t step, int nrows, __m256 vb, const float *sum,                 \
                     const onyx_avx2_act_params *ap, bool vec, float *y, int64_t ow,        \
                     int64_t o0) {                                                          \
        const int n = NT ? NT : pl->ntaps;                                                 \
        const int64_t *off = pl->off;                                                      \
        const int64_t s1 = nrows > 1 ? step : 0, s2 = nrows > 2 ? 2 * step : 0,            \
                      s3 = nrows > 3 ? 3 * step : 0;                                       \
        for (int64_t o = o0; o < ow; o += 8) {                                             \
            __m256 a0 = vb, a1 = vb, a2 = vb, a3 = vb;                                     \
            for (int i = 0; i < n; i++) {                                                  \
                const float *p = src + off[i] + o;                                         \
                a0 = _mm256_fmadd_ps(wv[i], _mm256_loadu_ps(p), a0);                       \
                a1 = _mm256_fmadd_ps(wv[i], _mm256_loadu_ps(p + s1), a1);                  \
                a2 = _mm256_fmadd_ps(wv[i], _mm256_loadu_ps(p + s2), a2);                  \
                a3 = _mm256_fmadd_ps(wv[i], _mm256_loadu_ps(p + s3), a3);                  \
            }                                                                              \
            __m256 r[4] = {a0, a1, a2, a3};                                                \
            for (int k = 0; k < nrows; k++) {                                              \
                __m256 v = r[k];                                                           \
                if (sum)                                                                   \
                    v = _mm256_add_ps(v, onyx_avx2_load_first(sum + k * ow + o, ow - o));  \
                if (vec) v = onyx_avx2_act(ap, v);                                         \
                onyx_avx2_store_first(y + k * ow + o, v, ow - o);                          \
            }                                                                              \
        }                                                                                  \
    }
DW_ROW(dw_row_any, 0)
DW_ROW(dw_row_9, 9)
DW_ROW(dw_row_25, 25)
DW_TAIL(dw_tail_any, 0)
DW_TAIL(dw_tail_9, 9)
DW_TAIL(dw_tail_25, 25)

/* 3x3, stride 1, dilation 1: four output rows per pass over six input rows,
 * each input vector loaded once for the three output rows it feeds (two
 * FMAs per load instead of one). Rows [oh0, oh0 + 4) of the output. */
static inline __attribute__((always_inline)) void dw3x3s1_rows4(const float *P, int64_t len, const __m256 *wv, __m256 vb,
                          const float *sum, const onyx_avx2_act_params *ap, bool vec, float *y,
                          int64_t ow, int64_t oh0) {
    const __m256 w0 = wv[0], w1 = wv[1], w2 = wv[2], w3 = wv[3], w4 = wv[4], w5 = wv[5],
                 w6 = wv[6], w7 = wv[7], w8 = wv[8];
    for (int64_t o = 0; o < ow; o += 8) {
        __m256 a0 = vb, a1 = vb, a2 = vb, a3 = vb;
        const float *p = P + oh0 * len + o;
#define DW_LOAD3(I)                                                                        \
    __m256 x0 = _mm256_loadu_ps(p + (I) * len), x1 = _mm256_loadu_ps(p + (I) * len + 1),    \
           x2 = _mm256_loadu_ps(p + (I) * len + 2)
#define DW_ACC(A, WA, WB, WC)                                                              \
    A = _mm256_fmadd_ps(WA, x0, A);                                                        \
    A = _mm256_fmadd_ps(WB, x1, A);                                                        \
    A = _mm256_fmadd_ps(WC, x2, A)
        {
            DW_LOAD3(0);
            DW_ACC(a0, w0, w1, w2);
        }
        {
            DW_LOAD3(1);
            DW_ACC(a0, w3, w4, w5);
            DW_ACC(a1, w0, w1, w2);
        }
        {
            DW_LOAD3(2);
            DW_ACC(a0, w6, w7, w8);
            DW_ACC(a1, w3, w4, w5);
            DW_ACC(a2, w0, w1, w2);
        }
        {
            DW_LOAD3(3);
            DW_ACC(a1, w6, w7, w8);
            DW_ACC(a2, w3, w4, w5);
            DW_ACC(a3, w0, w1, w2);
        }
        {
            DW_LOAD3(4);
            DW_ACC(a2, w6, w7, w8);
            DW_ACC(a3, w3, w4, w5);
        }
        {
            DW_LOAD3(5);
            DW_ACC(a3, w6, w7, w8);
        }
#undef DW_LOAD3
#undef DW_ACC
        if (sum) {
            const float *s = sum + oh0 * ow + o;
            a0 = _mm256_add_ps(a0, onyx_avx2_load_first(s, ow - o));
            a1 = _mm256_add_ps(a1, onyx_avx2_load_first(s + ow, ow - o));
            a2 = _mm256_add_ps(a2, onyx_avx2_load_first(s + 2 * ow, ow - o));
            a3 = _mm256_add_ps(a3, onyx_avx2_load_first(s + 3 * ow, ow - o));
        }
        if (vec) {
            a0 = onyx_avx2_act(ap, a0);
            a1 = onyx_avx2_act(ap, a1);
            a2 = onyx_avx2_act(ap, a2);
            a3 = onyx_avx2_act(ap, a3);
        }
        float *yr = y + oh0 * ow + o;
        onyx_avx2_store_first(yr, a0, ow - o);
        onyx_avx2_store_first(yr + ow, a1, ow - o);
        onyx_avx2_store_first(yr + 2 * ow, a2, ow - o);
        onyx_avx2_store_first(yr + 3 * ow, a3, ow - o);
    }
}

/* The plane after fill_phases, with the activation kind a constant in the
 * common cases (depthwise_avx2), so that its switch folds away instead of
 * running per vector; the row kernels above are inlined into each copy. */
static inline __attribute__((always_inline)) void depthwise_body(
    const onyx_dw_plan *pl, const float *scratch, const __m256 *wv, float bias, const float *sum,
    const onyx_act *act, onyx_act_kind kind, float *y) {
    const onyx_conv2d *g = &pl->g;
    const bool vec = onyx_avx2_act_vectorized(kind);
    onyx_avx2_act_params ap = onyx_avx2_act_params_of(act);
    ap.kind = kind;
    const __m256 vb = _mm256_set1_ps(bias);
    const int64_t step = g->sh * pl->len, ow = g->ow, ow32 = ow / 32 * 32;
    int64_t oh = 0;
    if (pl->ntaps == 9 && g->sh == 1 && g->sw == 1 && g->dh == 1 && g->dw == 1) {
        for (; oh + 4 <= g->oh; oh += 4)
            dw3x3s1_rows4(scratch, pl->len, wv, vb, sum, &ap, vec, y, ow, oh);
        if (!vec && kind != ONYX_ACT_NONE) onyx_act_apply(act, y, oh * ow);
    }
    for (; oh < g->oh; oh += 4) {
        int nrows = g->oh - oh < 4 ? (int)(g->oh - oh) : 4;
        const float *src = scratch + oh * step;
        float *yrow = y + oh * ow;
        const float *srow = sum ? sum + oh * ow : NULL;
        for (int k = 0; k < nrows && ow32; k++) {
            const float *sk = srow ? srow + k * ow : NULL;
            if (pl->ntaps == 9)
                dw_row_9(pl, wv, src + k * step, vb, sk, &ap, vec, yrow + k * ow, ow32);
            else if (pl->ntaps == 25)
                dw_row_25(pl, wv, src + k * step, vb, sk, &ap, vec, yrow + k * ow, ow32);
            else dw_row_any(pl, wv, src + k * step, vb, sk, &ap, vec, yrow + k * ow, ow32);
        }
        if (ow32 < ow) {
            if (pl->ntaps == 9)
                dw_tail_9(pl, wv, src, step, nrows, vb, srow, &ap, vec, yrow, ow, ow32);
            else if (pl->ntaps == 25)
                dw_tail_25(pl, wv, src, step, nrows, vb, srow, &ap, vec, yrow, ow, ow32);
            else dw_tail_any(pl, wv, src, step, nrows, vb, srow, &ap, vec, yrow, ow, ow32);
        }
        if (!vec && kind != ONYX_ACT_NONE)
            for (int k = 0; k < nrows; k++) onyx_act_apply(act, yrow + k * ow, ow);
    }
}

static void depthwise_avx2(const onyx_dw_plan *pl, const float *x, const float *w, float bias,
                           const float *sum, const onyx_act *act, float *y, float *scratch) {
    if (!pl->ntaps) {
        onyx_conv_kernels_generic.depthwise(pl, x, w, bias, sum, act, y, scratch);
        return;
    }
    fill_phases(pl, x, scratch);
    __m256 wv[ONYX_DW_MAX_TAPS];
    for (int i = 0; i < pl->ntaps; i++) wv[i] = _mm256_broadcast_ss(w + i);
    const onyx_act_kind kind = act ? act->kind : ONYX_ACT_NONE;
#define DW_BODY(K) depthwise_body(pl, scratch, wv, bias, sum, act, K, y)
    ONYX_AVX2_BY_ACT(kind, DW_BODY)
#undef DW_BODY
}

const onyx_conv_kernels onyx_conv_kernels_avx2 = {"avx2", bias_act_avx2, act_avx2,
                                                  depthwise_avx2, split_phases_avx2};
