/* depthwise_avx2.c - AVX2+FMA variant of the channel-blocked depthwise
 * convolution (depthwise.h): 8x8 transposes interleave the input rows of 8
 * channels into a ring of scratch rows, each output position is one 8-lane
 * FMA chain over plain loads (any stride, any kernel), and a transpose back
 * feeds the epilogue (bias, residual addend, activation) per output plane.
 * Same contract and results (to float rounding) as the twin in depthwise.c. */
#include "kernels/depthwise.h"

#include "kernels/conv_avx2.h"

#include <immintrin.h>

enum { B = ONYX_DWC_BLOCK };

/* r[i] holds row i of an 8x8 block; afterwards r[i] holds column i. */
static inline __attribute__((always_inline)) void tr8(__m256 *r) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* [lo[j..j+4) | hi[j..j+4)] */
static inline __m256 load2x4(const float *lo, const float *hi) {
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(lo)), _mm_loadu_ps(hi), 1);
}

/* Interleaves input row iy of the nc channels at x into d (column j at
 * d + (pw + j) * 8, for j < wt). `zero` stands in for missing channels. */
static void fill_row(const onyx_dwc_plan *p, const float *x, int nc, int64_t iy, float *d,
                     const float *zero) {
    const onyx_conv2d *g = &p->g;
    const float *s[B];
    for (int c = 0; c < B; c++) s[c] = c < nc ? x + (c * g->h + iy) * g->w : zero;
    d += g->pw * B;
    const int64_t wt = p->wt;
    int64_t j = 0;
    for (; j + 8 <= wt; j += 8) {
        /* Lane half h of vector i holds channel i + 4h: the 4x4 transposes
         * within each half then give whole interleaved columns. */
        for (int h = 0; h < 2; h++) {
            __m256 a = load2x4(s[0] + j + 4 * h, s[4] + j + 4 * h);
            __m256 b = load2x4(s[1] + j + 4 * h, s[5] + j + 4 * h);
            __m256 c = load2x4(s[2] + j + 4 * h, s[6] + j + 4 * h);
            __m256 e = load2x4(s[3] + j + 4 * h, s[7] + j + 4 * h);
            __m256 t0 = _mm256_unpacklo_ps(a, b), t1 = _mm256_unpackhi_ps(a, b);
            __m256 t2 = _mm256_unpacklo_ps(c, e), t3 = _mm256_unpackhi_ps(c, e);
            float *o = d + (j + 4 * h) * B;
            _mm256_storeu_ps(o, _mm256_shuffle_ps(t0, t2, 0x44));
            _mm256_storeu_ps(o + B, _mm256_shuffle_ps(t0, t2, 0xEE));
            _mm256_storeu_ps(o + 2 * B, _mm256_shuffle_ps(t1, t3, 0x44));
            _mm256_storeu_ps(o + 3 * B, _mm256_shuffle_ps(t1, t3, 0xEE));
        }
    }
    if (j < wt) {
        __m256 r[B];
        for (int c = 0; c < B; c++) r[c] = onyx_avx2_load_first(s[c] + j, wt - j);
        tr8(r);
        for (int64_t k = 0; k < wt - j; k++) _mm256_storeu_ps(d + (j + k) * B, r[k]);
    }
}

/* Zeroes columns [a, b) of a scratch row. */
static void zero_cols(float *d, int64_t a, int64_t b) {
    for (int64_t j = a; j < b; j++) _mm256_storeu_ps(d + j * B, _mm256_setzero_ps());
}

/* The block after the scratch setup, with the geometry (KH, KW, SH, SW; 0:
 * from the plan; D: dilation 1 when set) and the activation kind constants
 * in the common cases so that the taps unroll and the activation's switch
 * folds away. */
static inline __attribute__((always_inline)) void body(
    const onyx_dwc_plan *p, const float *x, int nc, const float *wv, __m256 vb, const float *sum,
    const onyx_avx2_act_params *ap0, float *y, float *ring, const float *zero, int KH, int KW,
    int SH, int SW, int D, onyx_act_kind KIND) {
    const onyx_conv2d *g = &p->g;
    const int64_t kh = KH ? KH : g->kh, kw = KW ? KW : g->kw, sh = SH ? SH : g->sh,
                  sw = SW ? SW : g->sw, dh = D ? 1 : g->dh, dw = D ? 1 : g->dw;
    onyx_avx2_act_params ap = *ap0;
    ap.kind = KIND;
    const int64_t rowf = p->cols * B, slots = p->slots, ow = g->ow, ohw = g->oh * ow;
    int64_t next = 0; /* input rows below this are in the ring */
    for (int64_t oy = 0; oy < g->oh; oy++) {
        const int64_t iy0 = oy * sh - g->ph;
        int64_t hi = iy0 + slots;
        if (hi > g->h) hi = g->h;
        for (int64_t iy = iy0 > next ? iy0 : next; iy < hi; iy++)
            if (iy >= 0) fill_row(p, x, nc, iy, ring + iy % slots * rowf, zero);
        if (hi > next) next = hi;
        /* the ring slot of row iy0 (taps below reach at most slots - 1 further) */
        const int64_t base = (iy0 % slots + slots) % slots;
        for (int64_t ox = 0; ox < ow; ox += 8) {
            __m256 acc[8];
            for (int j = 0; j < 8; j++) acc[j] = vb;
#pragma GCC unroll 8
            for (int64_t ky = 0; ky < kh; ky++) {
                const int64_t iy = iy0 + ky * dh;
                int64_t slot = base + ky * dh;
                if (slot >= slots) slot -= slots;
                const float *r = (iy < 0 || iy >= g->h ? zero : ring + slot * rowf) + ox * sw * B;
#pragma GCC unroll 8
                for (int64_t kx = 0; kx < kw; kx++) {
                    const __m256 wk = _mm256_load_ps(wv + (ky * kw + kx) * B);
                    const float *q = r + kx * dw * B;
#pragma GCC unroll 8
                    for (int j = 0; j < 8; j++)
                        acc[j] = _mm256_fmadd_ps(wk, _mm256_loadu_ps(q + j * sw * B), acc[j]);
                }
            }
            tr8(acc);
            const int64_t n = ow - ox < 8 ? ow - ox : 8;
            float *yo = y + oy * ow + ox;
            const float *so = sum ? sum + oy * ow + ox : NULL;
            if (n == 8) {
                for (int c = 0; c < nc; c++) {
                    __m256 v = acc[c];
                    if (so) v = _mm256_add_ps(v, _mm256_loadu_ps(so + c * ohw));
                    if (KIND != ONYX_ACT_NONE) v = onyx_avx2_act(&ap, v);
                    _mm256_storeu_ps(yo + c * ohw, v);
                }
            } else {
                for (int c = 0; c < nc; c++) {
                    __m256 v = acc[c];
                    if (so) v = _mm256_add_ps(v, onyx_avx2_load_first(so + c * ohw, n));
                    if (KIND != ONYX_ACT_NONE) v = onyx_avx2_act(&ap, v);
                    onyx_avx2_store_first(yo + c * ohw, v, n);
                }
            }
        }
    }
}

/* One geometry, the activation kind made a constant for the common kinds. */
#define KINDS(KH, KW, SH, SW, D)                                                          \
    switch (ap.kind) {                                                                    \
    case ONYX_ACT_NONE:                                                                   \
        body(p, x, nc, wv, vb, sum, &ap, y, ring, zero, KH, KW, SH, SW, D, ONYX_ACT_NONE); \
        break;                                                                            \
    case ONYX_ACT_RELU:                                                                   \
        body(p, x, nc, wv, vb, sum, &ap, y, ring, zero, KH, KW, SH, SW, D, ONYX_ACT_RELU); \
        break;                                                                            \
    case ONYX_ACT_CLIP:                                                                   \
        body(p, x, nc, wv, vb, sum, &ap, y, ring, zero, KH, KW, SH, SW, D, ONYX_ACT_CLIP); \
        break;                                                                            \
    case ONYX_ACT_SILU:                                                                   \
        body(p, x, nc, wv, vb, sum, &ap, y, ring, zero, KH, KW, SH, SW, D, ONYX_ACT_SILU); \
        break;                                                                            \
    default:                                                                              \
        body(p, x, nc, wv, vb, sum, &ap, y, ring, zero, KH, KW, SH, SW, D, ap.kind);      \
        break;                                                                            \
    }

static void block_avx2(const onyx_dwc_plan *p, const float *x, const float *w,
                       const float *bias, const float *sum, const onyx_act *act, float *y,
                       int nc, float *scratch) {
    const onyx_conv2d *g = &p->g;
    const int64_t taps = g->kh * g->kw, rowf = p->cols * B;
    float *wv = scratch;             /* (taps, 8), 32-byte aligned */
    float *ring = wv + taps * B;     /* (slots, cols, 8) */
    float *zero = ring + p->slots * rowf; /* (cols, 8) */
    zero_cols(zero, 0, p->cols);
    /* wv (taps, 8) = the transpose of w (nc, taps), zero past nc */
    for (int64_t t = 0; t < taps; t += 8) {
        const int64_t n = taps - t < 8 ? taps - t : 8;
        __m256 r[B];
        for (int c = 0; c < B; c++)
            r[c] = c < nc ? onyx_avx2_load_first(w + c * taps + t, n) : _mm256_setzero_ps();
        tr8(r);
        for (int64_t k = 0; k < n; k++) _mm256_store_ps(wv + (t + k) * B, r[k]);
    }
    /* The pad columns of the ring, which fill_row never writes. */
    const int64_t left = g->pw < p->cols ? g->pw : p->cols;
    for (int64_t s = 0; s < p->slots; s++) {
        zero_cols(ring + s * rowf, 0, left);
        zero_cols(ring + s * rowf, left + p->wt, p->cols);
    }
    float bl[B];
    for (int c = 0; c < B; c++) bl[c] = bias && c < nc ? bias[c] : 0.0f;
    const __m256 vb = _mm256_loadu_ps(bl);
    const onyx_avx2_act_params ap = onyx_avx2_act_params_of(act);
    const bool d1 = g->dh == 1 && g->dw == 1;
    if (d1 && g->kh == 3 && g->kw == 3 && g->sh == 1 && g->sw == 1) {
        KINDS(3, 3, 1, 1, 1)
    } else if (d1 && g->kh == 3 && g->kw == 3 && g->sh == 2 && g->sw == 2) {
        KINDS(3, 3, 2, 2, 1)
    } else if (d1 && g->kh == 5 && g->kw == 5 && g->sh == 1 && g->sw == 1) {
        KINDS(5, 5, 1, 1, 1)
    } else if (d1 && g->kh == 5 && g->kw == 5 && g->sh == 2 && g->sw == 2) {
        KINDS(5, 5, 2, 2, 1)
    } else {
        body(p, x, nc, wv, vb, sum, &ap, y, ring, zero, 0, 0, 0, 0, 0, ap.kind);
    }
}

const onyx_depthwise_kernels onyx_depthwise_avx2 = {"avx2", block_avx2};
