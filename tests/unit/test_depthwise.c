/* test_depthwise.c - the channel-blocked depthwise kernels (depthwise.h): the
 * generic twin against a naive double-precision convolution, and each ISA
 * variant against the twin, over kernels, strides, pads, odd plane sizes,
 * channel counts that leave partial blocks, bias, residual and activations. */
#include "unit.h"

#include "base/cpu.h"
#include "kernels/act.h"
#include "kernels/depthwise.h"

#include <math.h>
#include <stdlib.h>

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static const onyx_act acts[] = {
    {ONYX_ACT_NONE, 0, 0},          {ONYX_ACT_RELU, 0, 0},        {ONYX_ACT_CLIP, 0.0f, 6.0f},
    {ONYX_ACT_LEAKY_RELU, 0.01f, 0}, {ONYX_ACT_SIGMOID, 0, 0},     {ONYX_ACT_HARD_SIGMOID, 0.2f, 0.5f},
    {ONYX_ACT_HARD_SWISH, 0, 0},    {ONYX_ACT_TANH, 0, 0},        {ONYX_ACT_SILU, 0, 0}};
enum { NACTS = sizeof acts / sizeof acts[0] };

/* Runs `fn` over all channels of one image in blocks of ONYX_DWC_BLOCK, as
 * ops/conv.c does. */
static void run_blocks(onyx_dwc_fn fn, const onyx_dwc_plan *p, int64_t c, const float *x,
                       const float *w, const float *bias, const float *sum, const onyx_act *act,
                       float *y, float *scratch) {
    const onyx_conv2d *g = &p->g;
    for (int64_t c0 = 0; c0 < c; c0 += ONYX_DWC_BLOCK) {
        int nc = (int)(c - c0 < ONYX_DWC_BLOCK ? c - c0 : ONYX_DWC_BLOCK);
        fn(p, x + c0 * g->h * g->w, w + c0 * g->kh * g->kw, bias ? bias + c0 : NULL,
           sum ? sum + c0 * g->oh * g->ow : NULL, act, y + c0 * g->oh * g->ow, nc, scratch);
    }
}

/* The convolution of channel ch at (oy, ox), before the activation. */
static double naive(const onyx_conv2d *g, const float *x, const float *w, const float *bias,
                    const float *sum, int64_t ch, int64_t oy, int64_t ox) {
    double s = bias ? bias[ch] : 0.0;
    for (int64_t ky = 0; ky < g->kh; ky++)
        for (int64_t kx = 0; kx < g->kw; kx++) {
            int64_t iy = oy * g->sh - g->ph + ky * g->dh, ix = ox * g->sw - g->pw + kx * g->dw;
            if (iy >= 0 && iy < g->h && ix >= 0 && ix < g->w)
                s += (double)w[(ch * g->kh + ky) * g->kw + kx] * x[(ch * g->h + iy) * g->w + ix];
        }
    if (sum) s += sum[(ch * g->oh + oy) * g->ow + ox];
    return s;
}

/* Every case: kernel 3/5, stride 1/2, leading pad 0..2 with trailing pads
 * around it, planes 1x1 .. 15x15, channels 1..17; for each, `check` gets the
 * plan, the data and the generic result. */
typedef void (*case_fn)(const onyx_dwc_plan *p, int64_t c, const float *x, const float *w,
                        const float *bias, const float *sum, const onyx_act *act,
                        const float *y0, int *unit_failed_);

static void for_cases(case_fn check, int *unit_failed_) {
    static const int64_t sizes[][2] = {{1, 1}, {2, 3}, {7, 7}, {15, 15}, {9, 20}};
    unsigned seed = 3;
    int k = 0;
    for (int64_t kk = 3; kk <= 5; kk += 2)
        for (int64_t s = 1; s <= 2; s++)
            for (int64_t pad = 0; pad <= kk / 2; pad++)
                for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++)
                    for (int64_t c = 1; c <= 17; c++, k++) {
                        onyx_conv2d g = {.c = c, .h = sizes[si][0], .w = sizes[si][1], .kh = kk,
                                         .kw = kk, .sh = s, .sw = s, .dh = 1, .dw = 1, .ph = pad,
                                         .pw = pad};
                        /* trailing pads pad - 1 .. pad + 1 */
                        const int64_t eh = pad + k % 3 - 1 < 0 ? 0 : pad + k % 3 - 1;
                        const int64_t ew = pad + (k / 3) % 3 - 1 < 0 ? 0 : pad + (k / 3) % 3 - 1;
                        if (g.h + pad + eh < kk || g.w + pad + ew < kk) continue;
                        g.oh = (g.h + pad + eh - kk) / s + 1;
                        g.ow = (g.w + pad + ew - kk) / s + 1;
                        onyx_dwc_plan p;
                        onyx_dwc_plan_init(&g, &p);
                        const int64_t xn = c * g.h * g.w, yn = c * g.oh * g.ow;
                        float *x = malloc(sizeof(float) * (size_t)xn);
                        float *w = malloc(sizeof(float) * (size_t)(c * kk * kk));
                        float *b = malloc(sizeof(float) * (size_t)c);
                        float *sum = malloc(sizeof(float) * (size_t)yn);
                        float *y0 = malloc(sizeof(float) * (size_t)yn);
                        for (int64_t i = 0; i < xn; i++) x[i] = 4.0f * frand(&seed);
                        for (int64_t i = 0; i < c * kk * kk; i++) w[i] = frand(&seed);
                        for (int64_t i = 0; i < c; i++) b[i] = frand(&seed);
                        for (int64_t i = 0; i < yn; i++) sum[i] = 2.0f * frand(&seed);
                        /* bias and sum on, off, or one of them; activations in turn */
                        const float *bias = k % 4 < 2 ? b : NULL;
                        const float *sm = k % 2 ? sum : NULL;
                        const onyx_act *act = &acts[k % NACTS];
                        run_blocks(onyx_depthwise_generic.block, &p, c, x, w, bias, sm, act, y0,
                                   NULL);
                        check(&p, c, x, w, bias, sm, act, y0, unit_failed_);
                        free(x);
                        free(w);
                        free(b);
                        free(sum);
                        free(y0);
                    }
}

static void check_naive(const onyx_dwc_plan *p, int64_t c, const float *x, const float *w,
                        const float *bias, const float *sum, const onyx_act *act,
                        const float *y0, int *unit_failed_) {
    const onyx_conv2d *g = &p->g;
    double worst = 0;
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                float v = (float)naive(g, x, w, bias, sum, ch, oy, ox);
                onyx_act_apply(act, &v, 1);
                double d = fabs((double)v - y0[(ch * g->oh + oy) * g->ow + ox]) /
                           (1.0 + fabs((double)v));
                if (d > worst) worst = d;
            }
    CHECK_NEAR(worst, 0.0, 1e-5);
}

UNIT_TEST(depthwise_generic_matches_naive) { for_cases(check_naive, unit_failed_); }

static void check_avx2(const onyx_dwc_plan *p, int64_t c, const float *x, const float *w,
                       const float *bias, const float *sum, const onyx_act *act, const float *y0,
                       int *unit_failed_) {
    const onyx_conv2d *g = &p->g;
    const int64_t yn = c * g->oh * g->ow;
    float *y1 = malloc(sizeof(float) * (size_t)yn);
    float *scratch = aligned_alloc(32, sizeof(float) * (size_t)((p->floats + 7) / 8 * 8));
    run_blocks(onyx_depthwise_avx2.block, p, c, x, w, bias, sum, act, y1, scratch);
    double worst = 0;
    for (int64_t i = 0; i < yn; i++) {
        double d = fabs((double)y0[i] - y1[i]) / (1.0 + fabs((double)y0[i]));
        if (d > worst) worst = d;
    }
    CHECK_NEAR(worst, 0.0, 1e-5);
    if (sum) {
        /* the residual addend in the output buffer itself */
        for (int64_t i = 0; i < yn; i++) y1[i] = sum[i];
        run_blocks(onyx_depthwise_avx2.block, p, c, x, w, bias, y1, act, y1, scratch);
        worst = 0;
        for (int64_t i = 0; i < yn; i++) {
            double d = fabs((double)y0[i] - y1[i]) / (1.0 + fabs((double)y0[i]));
            if (d > worst) worst = d;
        }
        CHECK_NEAR(worst, 0.0, 1e-5);
    }
    free(y1);
    free(scratch);
}

UNIT_TEST(depthwise_avx2_matches_generic) {
    const onyx_cpu *cpu = onyx_cpu_get();
    if (!(cpu->avx2 && cpu->fma)) return;
    for_cases(check_avx2, unit_failed_);
}

UNIT_TEST(depthwise_avx2_dilated_and_odd_kernels) {
    /* The plain-geometry path: dilation, non-square kernels and strides, a
     * kernel larger than the plane. */
    const onyx_cpu *cpu = onyx_cpu_get();
    if (!(cpu->avx2 && cpu->fma)) return;
    /* c, h, w, oh, ow (computed), kh, kw, sh, sw, dh, dw, ph, pw */
    static const onyx_conv2d geoms[] = {
        {11, 11, 17, 0, 0, 3, 3, 1, 1, 2, 2, 2, 2}, {9, 9, 31, 0, 0, 3, 2, 3, 3, 1, 2, 0, 1},
        {3, 12, 12, 0, 0, 8, 7, 1, 1, 1, 1, 3, 3},  {5, 30, 40, 0, 0, 3, 3, 9, 9, 1, 1, 1, 1},
        {8, 6, 5, 0, 0, 7, 7, 1, 1, 1, 1, 3, 3},    {13, 10, 10, 0, 0, 1, 1, 2, 2, 1, 1, 0, 0},
    };
    unsigned seed = 17;
    for (size_t gi = 0; gi < sizeof geoms / sizeof geoms[0]; gi++) {
        onyx_conv2d g = geoms[gi];
        g.oh = (g.h + 2 * g.ph - ((g.kh - 1) * g.dh + 1)) / g.sh + 1;
        g.ow = (g.w + 2 * g.pw - ((g.kw - 1) * g.dw + 1)) / g.sw + 1;
        onyx_dwc_plan p;
        onyx_dwc_plan_init(&g, &p);
        const int64_t xn = g.c * g.h * g.w, yn = g.c * g.oh * g.ow, wn = g.c * g.kh * g.kw;
        float *x = malloc(sizeof(float) * (size_t)xn), *w = malloc(sizeof(float) * (size_t)wn);
        float *y0 = malloc(sizeof(float) * (size_t)yn);
        for (int64_t i = 0; i < xn; i++) x[i] = frand(&seed);
        for (int64_t i = 0; i < wn; i++) w[i] = frand(&seed);
        const onyx_act *act = &acts[gi % NACTS];
        run_blocks(onyx_depthwise_generic.block, &p, g.c, x, w, NULL, NULL, act, y0, NULL);
        check_naive(&p, g.c, x, w, NULL, NULL, act, y0, unit_failed_);
        check_avx2(&p, g.c, x, w, NULL, NULL, act, y0, unit_failed_);
        free(x);
        free(w);
        free(y0);
    }
}
