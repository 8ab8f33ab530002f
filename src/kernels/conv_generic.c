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

void onyx_conv_split_phases(const onyx_conv2d *g, const float *x, float *dst, int64_t c0,
                            int64_t c1) {
    const int64_t sw = g->sw, pw = (g->w + sw - 1) / sw;
    for (int64_t c = c0; c < c1; c++)
        for (int64_t q = 0; q < sw; q++) {
            float *d = dst + (c * sw + q) * g->h * pw;
            int64_t len = (g->w - q + sw - 1) / sw; /* columns q, q+sw, ... below w */
            for (int64_t i = 0; i < g->h; i++, d += pw) {
                const float *s = x + (c * g->h + i) * g->w + q;
                int64_t t = 0;
                for (; t < len; t++) d[t] = s[t * sw];
                for (; t < pw; t++) d[t] = 0.0f;
            }
        }
}

// ----------------------------------------------------------------------------
// Implicit im2col packer

/* A position in one packed row: the strip being filled and the lane in it. */
typedef struct pack_cursor {
    float *strip;
    int64_t lane;
    int nr;
    int64_t strip_stride;
} pack_cursor;

/* Appends seg values to the packed row at cursor k: row[base + o + q] for
 * q < seg where o + q lies in [lo, hi), else zero (all zero when row is
 * NULL). */
static void write_segment(pack_cursor *k, int64_t seg, const float *row, int64_t base, int64_t o,
                          int64_t lo, int64_t hi) {
    int64_t q = 0;
    while (q < seg) {
        int64_t chunk = min64(seg - q, k->nr - k->lane);
        float *dd = k->strip + k->lane;
        int64_t oa = o + q, ob = oa + chunk; /* output columns of this chunk */
        if (row && oa >= lo && ob <= hi) {
            const float *s = row + base + oa;
            /* A constant-size copy compiles to vector moves. */
            if (chunk == 16) memcpy(dd, s, 16 * sizeof(float));
            else if (chunk == 8) memcpy(dd, s, 8 * sizeof(float));
            else
                for (int64_t i = 0; i < chunk; i++) dd[i] = s[i];
        } else if (!row) {
            for (int64_t i = 0; i < chunk; i++) dd[i] = 0.0f;
        } else {
            for (int64_t i = 0; i < chunk; i++) {
                int64_t ov = oa + i;
                dd[i] = ov >= lo && ov < hi ? row[base + ov] : 0.0f;
            }
        }
        q += chunk;
        k->lane += chunk;
        if (k->lane == k->nr) {
            k->lane = 0;
            k->strip += k->strip_stride;
        }
    }
}

void onyx_conv_pack_b(void *ctx, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr,
                      float *dst) {
    const onyx_conv_im2col *im = ctx;
    const onyx_conv2d *g = im->g;
    const int64_t taps = g->kh * g->kw, sw = g->sw, pwid = im->phase_w;
    const int64_t oh0 = j0 / g->ow, o0 = j0 % g->ow;
    int64_t c = p0 / taps, r = p0 % taps;
    for (int64_t p = p0; p < p0 + kc; p++) {
        int64_t ki = r / g->kw, kj = r % g->kw;
        int64_t offh = ki * g->dh - g->ph, offw = kj * g->dw - g->pw;
        /* Input column o*sw + offw = sw*(o + shift) + phase. */
        int64_t phase = ((offw % sw) + sw) % sw, shift = (offw - phase) / sw;
        int64_t plen = (g->w - phase + sw - 1) / sw; /* real columns in this phase */
        int64_t lo = max64(0, -shift), hi = min64(g->ow, plen - shift);
        if (hi < lo) hi = lo;
        const float *plane = im->x + (c * sw + phase) * g->h * pwid;
        pack_cursor k = {dst + (p - p0) * nr, 0, nr, kc * nr};
        int64_t oh = oh0, o = o0, t = 0;
        while (t < nc) {
            int64_t seg = min64(g->ow - o, nc - t);
            int64_t ih = oh * g->sh + offh;
            const float *row = ih >= 0 && ih < g->h ? plane + ih * pwid : NULL;
            write_segment(&k, seg, row, shift, o, lo, hi);
            t += seg;
            o = 0;
            oh++;
        }
        if (k.lane) memset(k.strip + k.lane, 0, (size_t)(nr - k.lane) * sizeof(float));
        if (++r == taps) {
            r = 0;
            c++;
        }
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
