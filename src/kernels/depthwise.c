/* depthwise.c - the plan of the channel-blocked depthwise convolution
 * (depthwise.h) and its generic C twin: a direct loop over taps, the reference
 * the ISA variants are tested against. Uses no scratch. */
#include "kernels/depthwise.h"

#include "kernels/act.h"

void onyx_dwc_plan_init(const onyx_conv2d *g, onyx_dwc_plan *p) {
    p->g = *g;
    p->slots = (g->kh - 1) * g->dh + 1;
    /* Input columns the real outputs read start at -pw; whole 8-wide
     * output blocks read up to `cols` columns from there. */
    const int64_t read = (g->ow - 1) * g->sw + (g->kw - 1) * g->dw + 1;
    const int64_t ow8 = (g->ow + 7) / 8 * 8;
    p->cols = (ow8 - 1) * g->sw + (g->kw - 1) * g->dw + 1;
    int64_t wt = read - g->pw;
    if (wt > g->w) wt = g->w;
    if (wt < 0) wt = 0;
    p->wt = wt;
    /* weights (taps, 8), the ring (slots, cols, 8), the zero row (cols, 8) */
    p->floats = g->kh * g->kw * ONYX_DWC_BLOCK + (p->slots + 1) * p->cols * ONYX_DWC_BLOCK;
}

static void block_generic(const onyx_dwc_plan *p, const float *x, const float *w,
                          const float *bias, const float *sum, const onyx_act *act, float *y,
                          int nc, float *scratch) {
    const onyx_conv2d *g = &p->g;
    const int64_t ohw = g->oh * g->ow;
    (void)scratch;
    for (int c = 0; c < nc; c++) {
        const float *xc = x + c * g->h * g->w, *wc = w + c * g->kh * g->kw;
        float *yc = y + c * ohw;
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                float s = bias ? bias[c] : 0.0f;
                for (int64_t ky = 0; ky < g->kh; ky++) {
                    const int64_t iy = oy * g->sh - g->ph + ky * g->dh;
                    if (iy < 0 || iy >= g->h) continue;
                    for (int64_t kx = 0; kx < g->kw; kx++) {
                        const int64_t ix = ox * g->sw - g->pw + kx * g->dw;
                        if (ix >= 0 && ix < g->w) s += wc[ky * g->kw + kx] * xc[iy * g->w + ix];
                    }
                }
                yc[oy * g->ow + ox] = s;
            }
        if (sum)
            for (int64_t i = 0; i < ohw; i++) yc[i] += sum[c * ohw + i];
        if (act && act->kind != ONYX_ACT_NONE) onyx_act_apply(act, yc, ohw);
    }
}

const onyx_depthwise_kernels onyx_depthwise_generic = {"generic", block_generic};
