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
        _mm256_maskstore_ps(y + j, m, v);
    }
    if (!vec && kind != ONYX_ACT_NONE) onyx_act_apply(act, y, n);
}

static void bias_act_avx2(float *y, int64_t ldy, int64_t rows, int64_t n, const float *bias,
                          const onyx_act *act) {
    if (!bias && (!act || act->kind == ONYX_ACT_NONE)) return;
    for (int64_t r = 0; r < rows; r++) bias_act_row(y + r * ldy, n, bias ? bias[r] : 0.0f, act);
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
    for (int64_t c = c0; c < c1; c++)
        for (int64_t i = 0; i < g->h; i++) {
            const float *s = x + (c * g->h + i) * g->w;
            float *de = dst + c * 2 * plane + i * pw, *dd = de + plane;
            int64_t t = 0;
            /* Full vectors read s[2t .. 2t+16), within the row. */
            for (; 2 * t + 16 <= g->w; t += 8) {
                _mm256_storeu_ps(de + t, even8(s + 2 * t));
                _mm256_storeu_ps(dd + t, odd8(s + 2 * t));
            }
            for (int64_t u = t; u < n_even; u++) de[u] = s[2 * u];
            for (int64_t u = t; u < n_odd; u++) dd[u] = s[2 * u + 1];
            if (n_odd < pw) dd[n_odd] = 0.0f;
        }
}

/* Fills the scratch with the zero-padded plane split into sw column phases:
 * phase q, row i, index t holds x[i - ph][q + t*sw - pw] (0 outside). */
static void fill_phases(const onyx_conv2d *g, const float *x, float *P, int64_t rows,
                        int64_t len) {
    const int64_t sw = g->sw;
    for (int64_t q = 0; q < sw; q++)
        for (int64_t i = 0; i < rows; i++) {
            float *d = P + (q * rows + i) * len;
            int64_t ih = i - g->ph;
            if (ih < 0 || ih >= g->h) {
                memset(d, 0, (size_t)len * sizeof(float));
                continue;
            }
            const float *s = x + ih * g->w;
            /* t with 0 <= q + t*sw - pw < w */
            int64_t off = q - g->pw;
            int64_t lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
            int64_t hi = g->w - off <= 0 ? 0 : (g->w - off + sw - 1) / sw;
            if (hi > len) hi = len;
            if (lo > hi) lo = hi;
            int64_t t = 0;
            for (; t < lo; t++) d[t] = 0.0f;
            if (sw == 1) {
                memcpy(d + lo, s + lo + off, (size_t)(hi - lo) * sizeof(float));
                t = hi;
            } else if (sw == 2) {
                /* Even or odd elements of 16 input floats per 8 outputs. */
                int64_t vhi = (g->w - off) / 2; /* t whose odd neighbour is in the row too */
                if (vhi > hi) vhi = hi;
                for (; t + 8 <= vhi; t += 8) _mm256_storeu_ps(d + t, even8(s + t * 2 + off));
                for (; t < hi; t++) d[t] = s[t * 2 + off];
            } else {
                for (; t < hi; t++) d[t] = s[t * sw + off];
            }
            for (; t < len; t++) d[t] = 0.0f;
        }
}

/* Taps are offsets into the phase scratch relative to an output row's
 * first input row, with broadcast weights. */
#define DW_MAX_TAPS 49

typedef struct dw_taps {
    int n;
    int64_t off[DW_MAX_TAPS];
    __m256 w[DW_MAX_TAPS];
} dw_taps;

static void dw_taps_of(const onyx_conv2d *g, const float *w, int64_t rows, int64_t len,
                       dw_taps *t) {
    t->n = (int)(g->kh * g->kw);
    for (int64_t kh = 0; kh < g->kh; kh++)
        for (int64_t kw = 0; kw < g->kw; kw++) {
            int64_t tap = kw * g->dw, i = kh * g->kw + kw;
            t->off[i] = (tap % g->sw * rows + kh * g->dh) * len + tap / g->sw;
            t->w[i] = _mm256_broadcast_ss(w + i);
        }
}

/* One output row: columns in blocks of 32, then 8, the last one masked.
 * NT is the tap count when known at compile time (0: t->n). */
#define DW_ROW(NAME, NT)                                                                   \
    static void NAME(const dw_taps *t, const float *src, float bias,                       \
                     const onyx_avx2_act_params *ap, bool vec, float *yrow, int64_t ow) {  \
        const int n = NT ? NT : t->n;                                                      \
        const __m256 vb = _mm256_set1_ps(bias);                                            \
        int64_t o = 0;                                                                     \
        for (; o + 32 <= ow; o += 32) {                                                    \
            __m256 a0 = vb, a1 = vb, a2 = vb, a3 = vb;                                     \
            for (int i = 0; i < n; i++) {                                                  \
                const float *p = src + t->off[i] + o;                                      \
                a0 = _mm256_fmadd_ps(t->w[i], _mm256_loadu_ps(p), a0);                     \
                a1 = _mm256_fmadd_ps(t->w[i], _mm256_loadu_ps(p + 8), a1);                 \
                a2 = _mm256_fmadd_ps(t->w[i], _mm256_loadu_ps(p + 16), a2);                \
                a3 = _mm256_fmadd_ps(t->w[i], _mm256_loadu_ps(p + 24), a3);                \
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
        for (; o < ow; o += 8) {                                                           \
            __m256 a0 = vb;                                                                \
            for (int i = 0; i < n; i++)                                                    \
                a0 = _mm256_fmadd_ps(t->w[i], _mm256_loadu_ps(src + t->off[i] + o), a0);  \
            if (vec) a0 = onyx_avx2_act(ap, a0);                                           \
            if (o + 8 <= ow) _mm256_storeu_ps(yrow + o, a0);                               \
            else _mm256_maskstore_ps(yrow + o, onyx_avx2_tail_mask(ow - o), a0);           \
        }                                                                                  \
    }
DW_ROW(dw_row_any, 0)
DW_ROW(dw_row_9, 9)
DW_ROW(dw_row_25, 25)

static void depthwise_avx2(const onyx_conv2d *g, const float *x, const float *w, float bias,
                           const onyx_act *act, float *y, float *scratch) {
    if (g->kh * g->kw > DW_MAX_TAPS) {
        onyx_conv_kernels_generic.depthwise(g, x, w, bias, act, y, scratch);
        return;
    }
    const int64_t rows = onyx_dw_scratch_rows(g), len = onyx_dw_scratch_len(g);
    fill_phases(g, x, scratch, rows, len);
    dw_taps t;
    dw_taps_of(g, w, rows, len, &t);
    const onyx_act_kind kind = act ? act->kind : ONYX_ACT_NONE;
    const bool vec = onyx_avx2_act_vectorized(kind);
    onyx_avx2_act_params ap = onyx_avx2_act_params_of(act);
    for (int64_t oh = 0; oh < g->oh; oh++) {
        float *yrow = y + oh * g->ow;
        const float *src = scratch + oh * g->sh * len;
        if (t.n == 9) dw_row_9(&t, src, bias, &ap, vec, yrow, g->ow);
        else if (t.n == 25) dw_row_25(&t, src, bias, &ap, vec, yrow, g->ow);
        else dw_row_any(&t, src, bias, &ap, vec, yrow, g->ow);
        if (!vec && kind != ONYX_ACT_NONE) onyx_act_apply(act, yrow, g->ow);
    }
}

const onyx_conv_kernels onyx_conv_kernels_avx2 = {"avx2", bias_act_avx2, depthwise_avx2,
                                                  split_phases_avx2};
