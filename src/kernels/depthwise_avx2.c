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

/* [lo[j..j+4) | hi[j..j+4)] */
static inline __m256 load2x4(const float *lo, const float *hi) {
    return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(lo)), _mm_loadu_ps(hi), 1);
}

/* Interleaves input rows [lo, hi) (0 <= lo; row lo goes to ring slot
 * `slot`) of the channels whose planes start at s[0..8) into their slots
 * (column j at + (pw + j) * 8, for j < wt). Not inlined: inside the
 * unrolled kernel its eight plane pointers were spilled and reloaded on
 * every 4 columns (a stride-2 layer of 96 channels at 112x112: 0.25 ->
 * 0.19 ms). */
static __attribute__((noinline)) void fill_rows(const onyx_dwc_plan *p, const float *const *s,
                                                int64_t lo, int64_t hi, int64_t slot,
                                                float *ring) {
    const onyx_conv2d *g = &p->g;
    const int64_t wt = p->wt, w = g->w, rowf = p->cols * B, plane = g->h * w;
    const float *s0 = s[0], *s1 = s[1], *s2 = s[2], *s3 = s[3], *s4 = s[4], *s5 = s[5],
                *s6 = s[6], *s7 = s[7];
    for (int64_t iy = lo; iy < hi; iy++) {
        float *d = ring + slot * rowf + g->pw * B;
        if (++slot == p->slots) slot = 0;
        const int64_t off = iy * w;
        int64_t j = 0;
        for (; j + 8 <= wt; j += 8) {
            /* Lane half h of vector i holds channel i + 4h: the 4x4
             * transposes within each half then give whole interleaved
             * columns. */
            for (int h = 0; h < 2; h++) {
                const int64_t o = off + j + 4 * h;
                __m256 a = load2x4(s0 + o, s4 + o), b = load2x4(s1 + o, s5 + o);
                __m256 c = load2x4(s2 + o, s6 + o), e = load2x4(s3 + o, s7 + o);
                __m256 t0 = _mm256_unpacklo_ps(a, b), t1 = _mm256_unpackhi_ps(a, b);
                __m256 t2 = _mm256_unpacklo_ps(c, e), t3 = _mm256_unpackhi_ps(c, e);
                float *q = d + (j + 4 * h) * B;
                _mm256_storeu_ps(q, _mm256_shuffle_ps(t0, t2, 0x44));
                _mm256_storeu_ps(q + B, _mm256_shuffle_ps(t0, t2, 0xEE));
                _mm256_storeu_ps(q + 2 * B, _mm256_shuffle_ps(t1, t3, 0x44));
                _mm256_storeu_ps(q + 3 * B, _mm256_shuffle_ps(t1, t3, 0xEE));
            }
        }
        if (j == wt) continue;
        __m256 r[B];
        if (wt >= 8) {
            /* the last 8 columns again: plain loads, some columns written twice */
            j = wt - 8;
            r[0] = _mm256_loadu_ps(s0 + off + j);
            r[1] = _mm256_loadu_ps(s1 + off + j);
            r[2] = _mm256_loadu_ps(s2 + off + j);
            r[3] = _mm256_loadu_ps(s3 + off + j);
            r[4] = _mm256_loadu_ps(s4 + off + j);
            r[5] = _mm256_loadu_ps(s5 + off + j);
            r[6] = _mm256_loadu_ps(s6 + off + j);
            r[7] = _mm256_loadu_ps(s7 + off + j);
            onyx_avx2_transpose8(r, r);
            for (int k = 0; k < 8; k++) _mm256_storeu_ps(d + (j + k) * B, r[k]);
            continue;
        }
        /* A row narrower than a vector: whole-vector loads run into the
         * next row, except near the plane's end (masked: the plane may end
         * the tensor). The extra lanes become columns that are not stored. */
        if (off + 8 > plane) {
            for (int c = 0; c < B; c++) r[c] = onyx_avx2_load_first(s[c] + off, wt);
        } else {
            r[0] = _mm256_loadu_ps(s0 + off);
            r[1] = _mm256_loadu_ps(s1 + off);
            r[2] = _mm256_loadu_ps(s2 + off);
            r[3] = _mm256_loadu_ps(s3 + off);
            r[4] = _mm256_loadu_ps(s4 + off);
            r[5] = _mm256_loadu_ps(s5 + off);
            r[6] = _mm256_loadu_ps(s6 + off);
            r[7] = _mm256_loadu_ps(s7 + off);
        }
        onyx_avx2_transpose8(r, r);
        for (int64_t k = 0; k < wt; k++) _mm256_storeu_ps(d + k * B, r[k]);
    }
}

/* Stores the 8 transposed output vectors of channels [0, nc) (v[c]: columns
 * [ox, ox + 8) of output row oy) after the residual addend and activation;
 * `whole`: all 8 lanes, else the first n. */
static inline __attribute__((always_inline)) void store_block(
    const __m256 *v, int nc, const float *so, float *yo, int64_t ohw, bool whole, int64_t n,
    const onyx_avx2_act_params *ap, onyx_act_kind KIND) {
    if (whole) {
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            __m256 t = v[c];
            if (so) t = _mm256_add_ps(t, _mm256_loadu_ps(so + c * ohw));
            if (KIND != ONYX_ACT_NONE) t = onyx_avx2_act(ap, t);
            _mm256_storeu_ps(yo + c * ohw, t);
        }
    } else {
        for (int c = 0; c < nc; c++) {
            __m256 t = v[c];
            if (so) t = _mm256_add_ps(t, onyx_avx2_load_first(so + c * ohw, n));
            if (KIND != ONYX_ACT_NONE) t = onyx_avx2_act(ap, t);
            onyx_avx2_store_first(yo + c * ohw, t, n);
        }
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
    onyx_avx2_act_params ap;
    ap.kind = KIND;
    ap.a = ap0->a;
    ap.b = ap0->b;
    const int64_t rowf = p->cols * B, slots = p->slots, ow = g->ow, ohw = g->oh * ow;
    /* the ring slot of row oy * sh - ph, kept up to date without divisions */
    int64_t base = (slots - g->ph % slots) % slots;
    /* The channel planes; lanes past nc repeat the last channel (their
     * weights are zero and their outputs not stored). */
    const float *s[B];
    for (int c = 0; c < B; c++) s[c] = x + (c < nc ? c : nc - 1) * g->h * g->w;
    int64_t next = 0; /* input rows below this are in the ring */
    for (int64_t oy = 0; oy < g->oh; oy++) {
        const int64_t iy0 = oy * sh - g->ph;
        int64_t hi = iy0 + slots;
        if (hi > g->h) hi = g->h;
        int64_t lo = iy0 > next ? iy0 : next;
        if (lo < 0) lo = 0;
        if (lo < hi) {
            const int64_t ls = base + (lo - iy0); /* lo - iy0 < slots */
            fill_rows(p, s, lo, hi, ls < slots ? ls : ls - slots, ring);
        }
        if (hi > next) next = hi;
        /* The rows the taps read: ring slots, or the zero row. */
        const float *rp[8];
        for (int64_t ky = 0; ky < (KH ? KH : 0); ky++) {
            const int64_t iy = iy0 + ky * dh, slot = base + ky * dh;
            rp[ky] = iy < 0 || iy >= g->h ? zero : ring + (slot < slots ? slot : slot - slots) * rowf;
        }
        for (int64_t o8 = 0; o8 < ow; o8 += 8) {
            /* The last partial block: shifted left to end at ow when the
             * row is wide enough (outputs stored twice, the same values),
             * else stored whole into the next rows, which are written later
             * (not past the plane). Neither when the addend is y itself. */
            const int64_t ox = o8 + 8 > ow && ow >= 8 && sum != y ? ow - 8 : o8;
            const bool whole = ox + 8 <= ow || (oy * ow + ox + 8 <= ohw && sum != y);
            __m256 acc[8];
            for (int j = 0; j < 8; j++) acc[j] = vb;
#pragma GCC unroll 8
            for (int64_t ky = 0; ky < kh; ky++) {
                const int64_t iy = iy0 + ky * dh, slot = base + ky * dh;
                const float *r =
                    (KH ? rp[ky]
                        : iy < 0 || iy >= g->h ? zero
                                               : ring + (slot < slots ? slot : slot - slots) * rowf) +
                    ox * sw * B;
#pragma GCC unroll 8
                for (int64_t kx = 0; kx < kw; kx++) {
                    const __m256 wk = _mm256_load_ps(wv + (ky * kw + kx) * B);
                    const float *q = r + kx * dw * B;
#pragma GCC unroll 8
                    for (int j = 0; j < 8; j++)
                        acc[j] = _mm256_fmadd_ps(wk, _mm256_loadu_ps(q + j * sw * B), acc[j]);
                }
            }
            onyx_avx2_transpose8(acc, acc);
            const int64_t n = ow - ox < 8 ? ow - ox : 8;
            float *yo = y + oy * ow + ox;
            const float *so = sum ? sum + oy * ow + ox : NULL;
            if (nc == B) store_block(acc, B, so, yo, ohw, whole, n, &ap, KIND);
            else store_block(acc, nc, so, yo, ohw, whole, n, &ap, KIND);
        }
        base += sh % slots;
        if (base >= slots) base -= slots;
    }
}

/* One geometry, the activation kind made a constant for the common kinds. */
#define KINDS(KH, KW, SH, SW, D)                                                          \
    {                                                                                     \
        const int kh_ = KH, kw_ = KW, sh_ = SH, sw_ = SW, d_ = D;                         \
        ONYX_AVX2_BY_ACT(ap.kind, KIND_BODY)                                              \
    }
#define KIND_BODY(K)                                                                      \
    body(p, x, nc, wv, vb, sum, &ap, y, ring, zero, kh_, kw_, sh_, sw_, d_, K)

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
        onyx_avx2_transpose8(r, r);
        for (int64_t k = 0; k < n; k++) _mm256_store_ps(wv + (t + k) * B, r[k]);
    }
    /* The pad columns of the ring, which fill_rows never writes. */
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
