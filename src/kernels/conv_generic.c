/* conv_generic.c - the portable convolution kernels of conv_kernels.h: the
 * implicit-im2col packer and column-phase split (used on every CPU; they
 * move data and leave the arithmetic to the GEMM), and the generic C twins
 * of the dispatched kernels (bias + activation, depthwise plane), which are
 * the reference the ISA variants are tested against. */
#include "kernels/conv_kernels.h"

#include "kernels/act.h"

#include <string.h>

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

// ----------------------------------------------------------------------------
// Column phases

int64_t onyx_conv_phase_floats(const onyx_conv2d *g) {
    return g->c * g->sw * g->h * ((g->w + g->sw - 1) / g->sw);
}

bool onyx_conv_phase_used(const onyx_conv2d *g, int64_t q) {
    for (int64_t kj = 0; kj < g->kw; kj++)
        if (((kj * g->dw - g->pw) % g->sw + g->sw) % g->sw == q) return true;
    return false;
}

bool onyx_conv_row_used(const onyx_conv2d *g, int64_t i) {
    for (int64_t ki = 0; ki < g->kh; ki++) {
        int64_t t = i + g->ph - ki * g->dh; /* oh * sh */
        if (t >= 0 && t % g->sh == 0 && t / g->sh < g->oh) return true;
    }
    return false;
}

void onyx_conv_split_phases(const onyx_conv2d *g, const float *x, float *dst, int64_t c0,
                            int64_t c1) {
    const int64_t sw = g->sw, pw = (g->w + sw - 1) / sw;
    for (int64_t c = c0; c < c1; c++)
        for (int64_t q = 0; q < sw; q++) {
            if (!onyx_conv_phase_used(g, q)) continue;
            float *d = dst + (c * sw + q) * g->h * pw;
            int64_t len = (g->w - q + sw - 1) / sw; /* columns q, q+sw, ... below w */
            for (int64_t i = 0; i < g->h; i++, d += pw) {
                if (!onyx_conv_row_used(g, i)) continue;
                const float *s = x + (c * g->h + i) * g->w + q;
                int64_t t = 0;
                for (; t < len; t++) d[t] = s[t * sw];
                for (; t < pw; t++) d[t] = 0.0f;
            }
        }
}

// ----------------------------------------------------------------------------
// Implicit im2col packer

/* d[0..n) = s[0..n) in whole-vector moves: blocks of 16, and for the rest
 * two overlapping moves of 8 or 4 (a packed row is cut at every output row
 * and strip edge, so most pieces are short and of any length). */
static inline void copy_floats(float *d, const float *s, int64_t n) {
    if (n == 16) {
        memcpy(d, s, 16 * sizeof(float));
    } else if (n > 16) {
        int64_t i = 0;
        for (; i + 16 <= n; i += 16) memcpy(d + i, s + i, 16 * sizeof(float));
        if (i < n) memcpy(d + n - 16, s + n - 16, 16 * sizeof(float));
    } else if (n >= 8) {
        memcpy(d, s, 8 * sizeof(float));
        memcpy(d + n - 8, s + n - 8, 8 * sizeof(float));
    } else if (n >= 4) {
        memcpy(d, s, 4 * sizeof(float));
        memcpy(d + n - 4, s + n - 4, 4 * sizeof(float));
    } else {
        for (int64_t i = 0; i < n; i++) d[i] = s[i];
    }
}

static inline void zero_floats(float *d, int64_t n) {
    static const float zeros[16];
    for (; n > 16; d += 16, n -= 16) memcpy(d, zeros, sizeof zeros);
    copy_floats(d, zeros, n);
}

/* A piece of a packed row: output columns [o, o + len) of output row oh,
 * stored `dst` floats from the row's start (strip * kc * nr + lane). The
 * pieces depend only on the columns packed, not on the depth row, so they
 * are found once for many rows. */
typedef struct pack_piece {
    int64_t oh, o, len, dst;
} pack_piece;

/* One depth row's tap: where its input rows start, and the output columns
 * [lo, hi) it reads inside them. */
typedef struct pack_tap {
    int64_t plane, offh, shift, lo, hi;
} pack_tap;

/* Columns and depth rows handled per list of pieces and of taps (PACK_COLS
 * a multiple of every kernel's nr). */
#define PACK_COLS 256
#define PACK_DEPTH 64

/* The pieces of the packed rows [0, n) of `taps` (row p from dst + p * nr;
 * a piece's dst is from its row's start). */
static void pack_rows(const onyx_conv_im2col *im, const pack_tap *taps, int64_t n,
                      const pack_piece *pieces, int np, int nr, float *dst) {
    const onyx_conv2d *g = im->g;
    for (int64_t p = 0; p < n; p++, dst += nr) {
        const pack_tap *t = &taps[p];
        const float *plane = im->x + t->plane;
        for (int i = 0; i < np; i++) {
            const pack_piece *q = &pieces[i];
            float *d = dst + q->dst;
            int64_t ih = q->oh * g->sh + t->offh, end = q->o + q->len;
            if (ih < 0 || ih >= g->h || t->hi <= q->o || end <= t->lo) {
                zero_floats(d, q->len);
                continue;
            }
            const int64_t at = ih * im->phase_w + t->shift; /* output column 0 of the row */
            if (q->o >= t->lo && end <= t->hi) {
                copy_floats(d, plane + (at + q->o), q->len);
                continue;
            }
            /* Zeros, the valid columns [va, vb), zeros. */
            int64_t va = max64(q->o, t->lo), vb = min64(end, t->hi);
            zero_floats(d, va - q->o);
            copy_floats(d + (va - q->o), plane + (at + va), vb - va);
            zero_floats(d + (vb - q->o), end - vb);
        }
    }
}

void onyx_conv_pack_b(void *ctx, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr,
                      float *dst) {
    const onyx_conv_im2col *im = ctx;
    const onyx_conv2d *g = im->g;
    const int64_t ntaps = g->kh * g->kw, sw = g->sw;
    pack_tap taps[PACK_DEPTH];
    pack_piece pieces[2 * PACK_COLS];
    for (int64_t d0 = 0; d0 < kc; d0 += PACK_DEPTH) {
        const int64_t dn = min64(PACK_DEPTH, kc - d0);
        for (int64_t p = 0; p < dn; p++) {
            int64_t c = (p0 + d0 + p) / ntaps, r = (p0 + d0 + p) % ntaps;
            int64_t offh = r / g->kw * g->dh - g->ph, offw = r % g->kw * g->dw - g->pw;
            /* Input column o*sw + offw = sw*(o + shift) + phase. */
            int64_t phase = ((offw % sw) + sw) % sw, shift = (offw - phase) / sw;
            int64_t plen = (g->w - phase + sw - 1) / sw; /* real columns in this phase */
            int64_t lo = max64(0, -shift), hi = max64(lo, min64(g->ow, plen - shift));
            taps[p] = (pack_tap){(c * sw + phase) * g->h * im->phase_w, offh, shift, lo, hi};
        }
        for (int64_t b0 = 0; b0 < nc; b0 += PACK_COLS) {
            const int64_t bn = min64(PACK_COLS, nc - b0);
            int n = 0;
            for (int64_t t = 0; t < bn;) {
                int64_t j = j0 + b0 + t, lane = t % nr;
                int64_t oh = j / g->ow, o = j % g->ow;
                int64_t len = min64(min64(g->ow - o, bn - t), nr - lane);
                pieces[n++] = (pack_piece){oh, o, len, t / nr * kc * nr + lane};
                t += len;
            }
            pack_rows(im, taps, dn, pieces, n, nr, dst + (b0 / nr * kc + d0) * nr);
        }
    }
    /* The last strip's lanes past nc are zero. */
    if (nc % nr) {
        float *d = dst + nc / nr * kc * nr + nc % nr;
        for (int64_t p = 0; p < kc; p++) zero_floats(d + p * nr, nr - nc % nr);
    }
}

// ----------------------------------------------------------------------------
// Generic twins of the dispatched kernels

static void bias_act_generic(float *y, int64_t ldy, int64_t rows, int64_t n, const float *bias,
                             const onyx_act *act) {
    bool has_act = act && act->kind != ONYX_ACT_NONE;
    for (int64_t r = 0; r < rows; r++) {
        float *row = y + r * ldy;
        if (bias) {
            float b = bias[r];
            for (int64_t j = 0; j < n; j++) row[j] += b;
        }
        if (has_act) onyx_act_apply(act, row, n);
    }
}

static void act_generic(const float *x, float *y, int64_t n, const onyx_act *act) {
    if (y != x) memmove(y, x, (size_t)n * sizeof(float));
    if (act && act->kind != ONYX_ACT_NONE) onyx_act_apply(act, y, n);
}

/* Valid range [lo, hi) of o in [0, n) for which o*s + off lies in [0, lim). */
static void valid_range(int64_t n, int64_t s, int64_t off, int64_t lim, int64_t *lo,
                        int64_t *hi) {
    int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t b = lim - off <= 0 ? 0 : (lim - off + s - 1) / s;
    if (a > n) a = n;
    if (b > n) b = n;
    if (b < a) b = a;
    *lo = a;
    *hi = b;
}

void onyx_dw_plan_init(const onyx_conv2d *g, onyx_dw_plan *p) {
    memset(p, 0, sizeof *p);
    p->g = *g;
    p->g.c = 1;
    const int64_t sw = g->sw;
    p->rows = (g->oh - 1) * g->sh + (g->kh - 1) * g->dh + 1;
    p->len = (g->ow + 15) / 16 * 16 + ((g->kw - 1) * g->dw) / sw + 1;
    p->floats = sw * p->rows * p->len + 8;
    if (g->kh * g->kw > ONYX_DW_MAX_TAPS || sw > ONYX_DW_MAX_STRIDE) return;
    p->ntaps = (int)(g->kh * g->kw);
    for (int64_t kh = 0; kh < g->kh; kh++)
        for (int64_t kw = 0; kw < g->kw; kw++) {
            int64_t tap = kw * g->dw;
            p->off[kh * g->kw + kw] = (tap % sw * p->rows + kh * g->dh) * p->len + tap / sw;
        }
    for (int64_t q = 0; q < sw; q++) {
        /* t with 0 <= q + t*sw - pw < w */
        int64_t off = q - g->pw;
        int64_t lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
        int64_t hi = g->w - off <= 0 ? 0 : (g->w - off + sw - 1) / sw;
        if (hi > p->len) hi = p->len;
        if (lo > hi) lo = hi;
        p->lo[q] = lo;
        p->hi[q] = hi;
    }
}

/* Tap by tap, each a strided axpy over the valid part of the output rows. */
static void depthwise_generic(const onyx_dw_plan *p, const float *x, const float *w, float bias,
                              const float *sum, const onyx_act *act, float *y,
                              float *scratch) {
    const onyx_conv2d *g = &p->g;
    (void)scratch;
    const int64_t OH = g->oh, OW = g->ow;
    for (int64_t i = 0; i < OH * OW; i++) y[i] = bias;
    for (int64_t kh = 0; kh < g->kh; kh++) {
        int64_t offh = kh * g->dh - g->ph, hlo, hhi;
        valid_range(OH, g->sh, offh, g->h, &hlo, &hhi);
        for (int64_t kw = 0; kw < g->kw; kw++) {
            float wv = w[kh * g->kw + kw];
            int64_t offw = kw * g->dw - g->pw, wlo, whi;
            valid_range(OW, g->sw, offw, g->w, &wlo, &whi);
            for (int64_t oh = hlo; oh < hhi; oh++) {
                const float *xr = x + (oh * g->sh + offh) * g->w;
                float *yr = y + oh * OW;
                for (int64_t ow = wlo; ow < whi; ow++) yr[ow] += wv * xr[ow * g->sw + offw];
            }
        }
    }
    if (sum)
        for (int64_t i = 0; i < OH * OW; i++) y[i] += sum[i];
    if (act && act->kind != ONYX_ACT_NONE) onyx_act_apply(act, y, OH * OW);
}

const onyx_conv_kernels onyx_conv_kernels_generic = {"generic", bias_act_generic,
                                                     act_generic, depthwise_generic,
                                                     onyx_conv_split_phases};
