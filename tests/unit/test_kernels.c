/* test_kernels.c - every ISA variant of a kernel against its generic C twin,
 * on odd sizes and strides. Variants this CPU lacks are skipped. */
#include "unit.h"

#include "base/cpu.h"
#include "kernels/act.h"
#include "kernels/conv_kernels.h"
#include "kernels/dispatch.h"
#include "kernels/winograd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static void check_sgemm_variant(const onyx_sgemm_kernel *kern, int *unit_failed_) {
    static const int64_t sizes[] = {1, 7, 17, 63, 100};
    unsigned seed = 7;
    for (int si = 0; si < 5; si++)
        for (int sj = 0; sj < 5; sj++)
            for (int sk = 0; sk < 5; sk += 2)
                for (int t = 0; t < 4; t++) {
                    int64_t m = sizes[si], n = sizes[sj], k = sizes[sk] + 3;
                    bool ta = t & 1, tb = t & 2;
                    int64_t lda = (ta ? m : k) + 2, ldb = (tb ? k : n) + 5, ldc = n + 1;
                    float *a = malloc(sizeof(float) * (size_t)((ta ? k : m) * lda));
                    float *b = malloc(sizeof(float) * (size_t)((tb ? n : k) * ldb));
                    float *c0 = malloc(sizeof(float) * (size_t)(m * ldc));
                    float *c1 = malloc(sizeof(float) * (size_t)(m * ldc));
                    for (int64_t i = 0; i < (ta ? k : m) * lda; i++) a[i] = frand(&seed);
                    for (int64_t i = 0; i < (tb ? n : k) * ldb; i++) b[i] = frand(&seed);
                    for (int64_t i = 0; i < m * ldc; i++) c0[i] = c1[i] = frand(&seed);
                    float beta = (t == 3) ? 0.0f : 0.5f;
                    onyx_sgemm(NULL, ta, tb, m, n, k, 1.25f, a, lda, b, ldb, beta, c0, ldc, NULL, NULL);
                    onyx_sgemm(kern, ta, tb, m, n, k, 1.25f, a, lda, b, ldb, beta, c1, ldc, NULL, NULL);
                    double worst = 0;
                    for (int64_t i = 0; i < m * ldc; i++) {
                        double d = fabs((double)c0[i] - c1[i]);
                        if (d > worst) worst = d;
                    }
                    CHECK_NEAR(worst, 0.0, 1e-4 * (double)k);
                    free(a);
                    free(b);
                    free(c0);
                    free(c1);
                }
}

UNIT_TEST(sgemm_avx2_matches_generic) {
    const onyx_cpu *cpu = onyx_cpu_get();
    if (cpu->avx2 && cpu->fma) check_sgemm_variant(&onyx_sgemm_kernel_avx2, unit_failed_);
}

/* A portable kernel with the AVX-512 kernel's geometry and entries (12 x 32;
 * fn and a fn_epi that honours rows, nothing else), so that the driver's
 * handling of that set is checked on every machine. The AVX-512
 * micro-kernels themselves run on an emulated CPU in tests/isa. */
enum { WIDE_MR = 12, WIDE_NR = 32 };

static void wide_product(int64_t kc, const float *a, const float *b, float acc[WIDE_MR][WIDE_NR]) {
    memset(acc, 0, sizeof(float) * WIDE_MR * WIDE_NR);
    for (int64_t p = 0; p < kc; p++)
        for (int i = 0; i < WIDE_MR; i++)
            for (int j = 0; j < WIDE_NR; j++) acc[i][j] += a[p * WIDE_MR + i] * b[p * WIDE_NR + j];
}

static void wide_fn(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                    float alpha, float beta) {
    float acc[WIDE_MR][WIDE_NR];
    wide_product(kc, a, b, acc);
    for (int i = 0; i < WIDE_MR; i++)
        for (int j = 0; j < WIDE_NR; j++)
            c[i * ldc + j] = alpha * acc[i][j] + (beta == 0.0f ? 0.0f : beta * c[i * ldc + j]);
}

static void wide_epi(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                     const onyx_sgemm_epi *epi) {
    float acc[WIDE_MR][WIDE_NR];
    wide_product(kc, a, b, acc);
    for (int i = 0; i < epi->rows; i++) {
        for (int j = 0; j < WIDE_NR; j++) {
            float r = acc[i][j] + (epi->accumulate ? c[i * ldc + j] : 0.0f);
            if (epi->bias) r += epi->bias[i];
            if (epi->sum) r += epi->sum[i * epi->lds + j];
            c[i * ldc + j] = r;
        }
        if (epi->act) onyx_act_apply(epi->act, c + i * ldc, WIDE_NR);
    }
}

static const onyx_sgemm_kernel wide_twin = {"wide", WIDE_MR, WIDE_NR, wide_fn, wide_epi,
                                            NULL, NULL, true};

UNIT_TEST(sgemm_avx512_geometry_matches_generic) {
    check_sgemm_variant(&wide_twin, unit_failed_);
}

UNIT_TEST(sgemm_avx512_matches_generic) {
    /* Elsewhere tests/isa/test_avx512.py runs it on an emulated CPU. */
    if (onyx_kernels_avx512_ok()) check_sgemm_variant(&onyx_sgemm_kernel_avx512, unit_failed_);
}

/* onyx_sgemm_run with the fused residual addend: C = act(A B + bias + S)
 * against a double-precision loop, for the generic kernel, the dispatched
 * one, the dispatched one without fused entries (the driver's fallback) and
 * the AVX-512 geometry's twin; partial tiles, half-width strips, depth past
 * one block, prepacked A. */
UNIT_TEST(sgemm_run_sum_epilogue) {
    onyx_sgemm_kernel plain = *onyx_kernels_get()->sgemm;
    plain.fn_epi = plain.fn_half_epi = NULL;
    const onyx_sgemm_kernel *kerns[4] = {NULL, onyx_kernels_get()->sgemm, &plain, &wide_twin};
    static const int64_t shapes[][3] = {{1, 1, 1}, {7, 21, 3}, {13, 8, 300}, {64, 50, 33},
                                        {6, 16, 5}};
    static const onyx_act acts[] = {{ONYX_ACT_RELU, 0, 0}, {ONYX_ACT_NONE, 0, 0},
                                    {ONYX_ACT_CLIP, -0.5f, 0.75f}, {ONYX_ACT_SILU, 0, 0},
                                    {ONYX_ACT_TANH, 0, 0}};
    unsigned seed = 23;
    for (int ki = 0; ki < 4; ki++)
        for (int si = 0; si < 5; si++)
            for (int v = 0; v < 4; v++) {
                int64_t m = shapes[si][0], n = shapes[si][1], k = shapes[si][2];
                int64_t ldc = n + 3, lds = n + 5;
                const onyx_act *act = &acts[(si + v + ki) % 5];
                bool packed = v & 1, with_bias = v & 2;
                float *a = malloc(sizeof(float) * (size_t)(m * k));
                float *b = malloc(sizeof(float) * (size_t)(k * n));
                float *bias = malloc(sizeof(float) * (size_t)m);
                float *sum = malloc(sizeof(float) * (size_t)(m * lds));
                float *c = malloc(sizeof(float) * (size_t)(m * ldc));
                float *pa = malloc(sizeof(float) * (size_t)onyx_sgemm_packed_a_floats(kerns[ki], m, k));
                for (int64_t i = 0; i < m * k; i++) a[i] = frand(&seed);
                for (int64_t i = 0; i < k * n; i++) b[i] = frand(&seed);
                for (int64_t i = 0; i < m; i++) bias[i] = frand(&seed);
                for (int64_t i = 0; i < m * lds; i++) sum[i] = 4.0f * frand(&seed);
                for (int64_t i = 0; i < m * ldc; i++) c[i] = 99.0f;
                onyx_sgemm_pack_a(kerns[ki], false, m, k, a, k, pa);
                onyx_sgemm_op op = {.m = m, .n = n, .k = k, .packed_a = packed ? pa : NULL,
                                    .a = a, .lda = k, .b = b, .ldb = n, .c = c, .ldc = ldc,
                                    .bias = with_bias ? bias : NULL, .act = act, .sum = sum,
                                    .lds = lds};
                CHECK(onyx_sgemm_run(kerns[ki], &op, NULL, NULL) == ONYX_OK);
                double worst = 0;
                for (int64_t i = 0; i < m; i++)
                    for (int64_t j = 0; j < ldc; j++) {
                        double r = 99.0;
                        if (j < n) {
                            r = with_bias ? bias[i] : 0.0;
                            for (int64_t p = 0; p < k; p++) r += (double)a[i * k + p] * b[p * n + j];
                            r += sum[i * lds + j];
                            if (act->kind == ONYX_ACT_RELU) r = r > 0 ? r : 0;
                            if (act->kind == ONYX_ACT_CLIP) r = r < act->a ? act->a : r > act->b ? act->b : r;
                            if (act->kind == ONYX_ACT_SILU) r = r / (1.0 + exp(-r));
                            if (act->kind == ONYX_ACT_TANH) r = tanh(r);
                        }
                        double d = fabs(r - c[i * ldc + j]);
                        if (d > worst) worst = d;
                    }
                CHECK_NEAR(worst, 0.0, 1e-5 * (double)(k + 1));
                free(a);
                free(b);
                free(bias);
                free(sum);
                free(c);
                free(pa);
            }
}

UNIT_TEST(dispatch_picks_a_kernel) {
    const onyx_kernels *k = onyx_kernels_get();
    CHECK(k->sgemm != NULL);
    CHECK(k->sgemm->mr <= ONYX_SGEMM_MAX_MR && k->sgemm->nr <= ONYX_SGEMM_MAX_NR);
}

// ----------------------------------------------------------------------------
// Convolution kernels (conv_kernels.h)

static void check_bias_act_variant(const onyx_conv_kernels *v, int *unit_failed_) {
    static const onyx_act acts[] = {
        {ONYX_ACT_NONE, 0, 0},          {ONYX_ACT_RELU, 0, 0},
        {ONYX_ACT_CLIP, -0.25f, 0.5f},  {ONYX_ACT_LEAKY_RELU, 0.1f, 0},
        {ONYX_ACT_SIGMOID, 0, 0},       {ONYX_ACT_HARD_SIGMOID, 0.2f, 0.5f},
        {ONYX_ACT_HARD_SWISH, 0, 0},    {ONYX_ACT_TANH, 0, 0}, {ONYX_ACT_SILU, 0, 0}};
    static const int64_t widths[] = {1, 7, 8, 17, 63};
    unsigned seed = 3;
    for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++)
        for (int wi = 0; wi < 5; wi++)
            for (int with_bias = 0; with_bias < 2; with_bias++) {
                int64_t rows = 3, n = widths[wi], ld = n + 3;
                float y0[3 * 66], y1[3 * 66], bias[3];
                for (int64_t i = 0; i < rows * ld; i++) y0[i] = y1[i] = 12.0f * frand(&seed);
                for (int i = 0; i < 3; i++) bias[i] = frand(&seed);
                onyx_conv_kernels_generic.bias_act(y0, ld, rows, n, with_bias ? bias : NULL, &acts[ai]);
                v->bias_act(y1, ld, rows, n, with_bias ? bias : NULL, &acts[ai]);
                double worst = 0;
                for (int64_t i = 0; i < rows * ld; i++) {
                    double d = fabs((double)y0[i] - y1[i]);
                    if (d > worst) worst = d;
                }
                CHECK_NEAR(worst, 0.0, 2e-6);
            }
}

static void check_depthwise_variant(const onyx_conv_kernels *v, int *unit_failed_) {
    /* c, h, w, oh, ow (computed), kh, kw, sh, sw, dh, dw, ph, pw */
    static const onyx_conv2d geoms[] = {
        {1, 7, 9, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1},    {1, 16, 33, 0, 0, 3, 3, 2, 2, 1, 1, 1, 1},
        {1, 13, 70, 0, 0, 5, 5, 2, 2, 1, 1, 2, 2},  {1, 5, 40, 0, 0, 5, 5, 1, 1, 1, 1, 2, 2},
        {1, 11, 17, 0, 0, 3, 3, 1, 1, 2, 2, 2, 2},  {1, 9, 31, 0, 0, 3, 2, 3, 3, 1, 2, 0, 1},
        {1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0},    {1, 20, 64, 0, 0, 3, 3, 1, 1, 1, 1, 0, 0},
        {1, 12, 12, 0, 0, 8, 7, 1, 1, 1, 1, 3, 3},  {1, 30, 40, 0, 0, 3, 3, 9, 9, 1, 1, 1, 1},
    };
    /* every kind the AVX2 kernel specializes, and one it does not */
    static const onyx_act acts[] = {{ONYX_ACT_NONE, 0, 0}, {ONYX_ACT_CLIP, 0.0f, 6.0f},
                                    {ONYX_ACT_SIGMOID, 0, 0}, {ONYX_ACT_RELU, 0, 0},
                                    {ONYX_ACT_SILU, 0, 0}};
    unsigned seed = 11;
    for (size_t gi = 0; gi < sizeof geoms / sizeof geoms[0]; gi++)
        for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++) {
            onyx_conv2d g = geoms[gi];
            g.oh = (g.h + 2 * g.ph - ((g.kh - 1) * g.dh + 1)) / g.sh + 1;
            g.ow = (g.w + 2 * g.pw - ((g.kw - 1) * g.dw + 1)) / g.sw + 1;
            float *x = malloc(sizeof(float) * (size_t)(g.h * g.w));
            float *w = malloc(sizeof(float) * (size_t)(g.kh * g.kw));
            float *y0 = malloc(sizeof(float) * (size_t)(g.oh * g.ow));
            float *y1 = malloc(sizeof(float) * (size_t)(g.oh * g.ow));
            float *sum = malloc(sizeof(float) * (size_t)(g.oh * g.ow));
            for (int64_t i = 0; i < g.oh * g.ow; i++) sum[i] = 2.0f * frand(&seed);
            const float *s = (gi + ai) % 2 ? sum : NULL; /* the residual addend, or none */
            onyx_dw_plan plan;
            onyx_dw_plan_init(&g, &plan);
            float *scratch = malloc(sizeof(float) * (size_t)plan.floats);
            for (int64_t i = 0; i < g.h * g.w; i++) x[i] = 4.0f * frand(&seed);
            for (int64_t i = 0; i < g.kh * g.kw; i++) w[i] = frand(&seed);
            onyx_conv_kernels_generic.depthwise(&plan, x, w, 0.25f, s, &acts[ai], y0, scratch);
            v->depthwise(&plan, x, w, 0.25f, s, &acts[ai], y1, scratch);
            double worst = 0;
            for (int64_t i = 0; i < g.oh * g.ow; i++) {
                double d = fabs((double)y0[i] - y1[i]);
                if (d > worst) worst = d;
            }
            CHECK_NEAR(worst, 0.0, 1e-5);
            free(x);
            free(w);
            free(y0);
            free(y1);
            free(sum);
            free(scratch);
        }
}

static void check_act_variant(const onyx_conv_kernels *v, int *unit_failed_) {
    static const onyx_act acts[] = {
        {ONYX_ACT_NONE, 0, 0},         {ONYX_ACT_RELU, 0, 0},      {ONYX_ACT_CLIP, 0.0f, 6.0f},
        {ONYX_ACT_LEAKY_RELU, 0.01f, 0}, {ONYX_ACT_SIGMOID, 0, 0},   {ONYX_ACT_HARD_SIGMOID, 0.2f, 0.5f},
        {ONYX_ACT_HARD_SWISH, 0, 0},   {ONYX_ACT_TANH, 0, 0}, {ONYX_ACT_SILU, 0, 0}};
    unsigned seed = 9;
    float x[77], y0[77], y1[77];
    for (int i = 0; i < 77; i++) x[i] = 30.0f * frand(&seed);
    x[3] = 0.0f;
    x[4] = -100.0f; /* exp overflow and underflow ranges */
    x[5] = 100.0f;
    x[6] = 1e-7f;
    for (size_t ai = 0; ai < sizeof acts / sizeof acts[0]; ai++)
        for (int64_t n = 0; n <= 77; n += 11) {
            onyx_conv_kernels_generic.act(x, y0, n, &acts[ai]);
            v->act(x, y1, n, &acts[ai]);
            double worst = 0;
            for (int64_t i = 0; i < n; i++) {
                double d = fabs((double)y0[i] - y1[i]) / (1.0 + fabs((double)y0[i]));
                if (d > worst) worst = d;
            }
            CHECK_NEAR(worst, 0.0, 1e-6);
        }
}

UNIT_TEST(conv_kernels_avx2_match_generic) {
    const onyx_cpu *cpu = onyx_cpu_get();
    if (!(cpu->avx2 && cpu->fma)) return;
    check_bias_act_variant(&onyx_conv_kernels_avx2, unit_failed_);
    check_act_variant(&onyx_conv_kernels_avx2, unit_failed_);
    check_depthwise_variant(&onyx_conv_kernels_avx2, unit_failed_);
}

/* Distance in floats (ulps) between a and b; denormals count as floats. */
static double act_ulps(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b) ? 0 : 1e30;
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    int64_t ka = ia < 0 ? -(int64_t)(ia & 0x7fffffff) : ia;
    int64_t kb = ib < 0 ? -(int64_t)(ib & 0x7fffffff) : ib;
    return fabs((double)(ka - kb));
}

/* Sigmoid and SiLU of every variant at the limits, and the AVX2 ones against
 * double precision over [-110, 110] (denormal results included): within 3
 * and 4 ulp (conv_avx2.h). */
UNIT_TEST(act_sigmoid_silu_limits_and_accuracy) {
    const onyx_cpu *cpu = onyx_cpu_get();
    const onyx_conv_kernels *ks[2] = {&onyx_conv_kernels_generic,
                                      cpu->avx2 && cpu->fma ? &onyx_conv_kernels_avx2 : NULL};
    const onyx_act sig = {ONYX_ACT_SIGMOID, 0, 0}, silu = {ONYX_ACT_SILU, 0, 0};
    for (int v = 0; v < 2; v++) {
        if (!ks[v]) continue;
        float x[9] = {NAN, INFINITY, -INFINITY, -0.0f, 0.0f, -200.0f, 200.0f, -88.5f, 1e30f}, y[9];
        ks[v]->act(x, y, 9, &sig);
        CHECK(isnan(y[0]) && y[1] == 1 && y[2] == 0 && y[3] == 0.5f && y[4] == 0.5f);
        CHECK(y[5] == 0 && y[6] == 1 && y[8] == 1);
        CHECK(act_ulps(y[7], (float)(1.0 / (1.0 + exp(88.5)))) <= 2); /* denormal, not 0 */
        ks[v]->act(x, y, 9, &silu);
        CHECK(isnan(y[0]) && y[1] == INFINITY && y[2] == 0 && y[3] == 0 && y[4] == 0);
        CHECK(y[5] == 0 && y[6] == 200.0f && y[8] == 1e30f);
    }
    if (!ks[1]) return;
    enum { N = 1 << 16 };
    float *x = malloc(sizeof(float) * N * 2), *y = x + N;
    double worst_sig = 0, worst_silu = 0;
    for (int64_t base = 0; base < 40 * N; base += N) {
        for (int i = 0; i < N; i++) x[i] = -110.0f + 220.0f * (float)((double)(base + i) / (40.0 * N));
        ks[1]->act(x, y, N, &sig);
        for (int i = 0; i < N; i++) {
            double u = act_ulps(y[i], (float)(1.0 / (1.0 + exp(-(double)x[i]))));
            if (u > worst_sig) worst_sig = u;
        }
        ks[1]->act(x, y, N, &silu);
        for (int i = 0; i < N; i++) {
            double u = act_ulps(y[i], (float)((double)x[i] / (1.0 + exp(-(double)x[i]))));
            if (u > worst_silu) worst_silu = u;
        }
    }
    free(x);
    CHECK(worst_sig <= 3);
    CHECK(worst_silu <= 4);
}

UNIT_TEST(conv_kernels_generic_depthwise_is_direct) {
    /* The generic twin against a plain loop over taps, so the reference of
     * the variants is itself checked. */
    onyx_conv2d g = {1, 6, 7, 0, 0, 3, 3, 2, 1, 1, 2, 1, 2};
    g.oh = (6 + 2 - 3) / 2 + 1;
    g.ow = (7 + 4 - 5) / 1 + 1;
    float x[42], w[9], y[64];
    unsigned seed = 5;
    for (int i = 0; i < 42; i++) x[i] = frand(&seed);
    for (int i = 0; i < 9; i++) w[i] = frand(&seed);
    onyx_dw_plan plan;
    onyx_dw_plan_init(&g, &plan);
    onyx_conv_kernels_generic.depthwise(&plan, x, w, 0.5f, NULL, NULL, y, NULL);
    for (int64_t oh = 0; oh < g.oh; oh++)
        for (int64_t ow = 0; ow < g.ow; ow++) {
            double s = 0.5;
            for (int kh = 0; kh < 3; kh++)
                for (int kw = 0; kw < 3; kw++) {
                    int64_t ih = oh * 2 + kh - 1, iw = ow + kw * 2 - 2;
                    if (ih >= 0 && ih < 6 && iw >= 0 && iw < 7) s += (double)w[kh * 3 + kw] * x[ih * 7 + iw];
                }
            CHECK_NEAR(y[oh * g.ow + ow], s, 1e-5);
        }
}

// ----------------------------------------------------------------------------
// Winograd tile transforms (winograd.h)

UNIT_TEST(winograd_avx2_matches_generic) {
    const onyx_cpu *cpu = onyx_cpu_get();
    if (!(cpu->avx2 && cpu->fma)) return;
    /* n, c, k, h, w, ph, pw: partial edge tiles, tile blocks that start
     * mid-image and end on spare lanes */
    static const int64_t cases[][7] = {{1, 3, 5, 9, 9, 1, 1}, {2, 4, 3, 13, 6, 0, 2},
                                       {1, 2, 2, 30, 37, 1, 1}, {3, 1, 1, 4, 4, 1, 0}};
    static const onyx_act acts[] = {{ONYX_ACT_RELU, 0, 0}, {ONYX_ACT_TANH, 0, 0}};
    unsigned seed = 17;
    for (int ci = 0; ci < 4; ci++) {
        const int64_t *p = cases[ci];
        int64_t n = p[0], c = p[1], k = p[2], h = p[3], w = p[4];
        int64_t oh = h + 2 * p[5] - 2, ow = w + 2 * p[6] - 2;
        onyx_wino_geom g = onyx_wino_geom_of(c, k, h, w, p[5], p[6], oh, ow);
        int64_t tiles = n * g.th * g.tw;
        float *x = malloc(sizeof(float) * (size_t)(n * c * h * w));
        float *xp = malloc(sizeof(float) * (size_t)(n * c * g.hp * g.wp));
        for (int64_t i = 0; i < n * c * h * w; i++) x[i] = frand(&seed);
        onyx_winograd_pad(&g, x, xp, 0, n * c);
        /* Two blocks of tiles: [0, t1) and [t1, tiles). */
        int64_t t1 = tiles / 2, ld = (tiles + 7) / 8 * 8;
        float *v0 = calloc((size_t)(36 * c * ld), sizeof(float));
        float *v1 = calloc((size_t)(36 * c * ld), sizeof(float));
        float *m = malloc(sizeof(float) * (size_t)(36 * k * ld));
        float *y0 = malloc(sizeof(float) * (size_t)(n * k * oh * ow));
        float *y1 = malloc(sizeof(float) * (size_t)(n * k * oh * ow));
        float *sum = malloc(sizeof(float) * (size_t)(n * k * oh * ow));
        for (int64_t i = 0; i < n * k * oh * ow; i++) sum[i] = 2.0f * frand(&seed);
        float bias[8];
        for (int i = 0; i < 8; i++) bias[i] = frand(&seed);
        for (int64_t i = 0; i < 36 * k * ld; i++) m[i] = 3.0f * frand(&seed);
        const int64_t starts[2] = {0, t1}, counts[2] = {t1, tiles - t1};
        for (int b = 0; b < 2; b++) {
            if (counts[b] == 0) continue;
            int64_t lb = (counts[b] + 7) / 8 * 8;
            onyx_winograd_generic.input(&g, xp, 0, c, starts[b], counts[b], v0, c * lb, lb);
            onyx_winograd_avx2.input(&g, xp, 0, c, starts[b], counts[b], v1, c * lb, lb);
            double worst = 0;
            for (int64_t xi = 0; xi < 36; xi++)
                for (int64_t ch = 0; ch < c; ch++)
                    for (int64_t t = 0; t < counts[b]; t++) {
                        int64_t i = xi * c * lb + ch * lb + t;
                        if (fabs((double)v0[i] - v1[i]) > worst) worst = fabs((double)v0[i] - v1[i]);
                    }
            CHECK_NEAR(worst, 0.0, 1e-5);
            /* The residual addend on every other block. */
            const float *s = (ci + b) % 2 ? sum : NULL;
            onyx_winograd_generic.output(&g, m, k * lb, lb, 0, k, starts[b], counts[b], bias, s,
                                         &acts[b], y0);
            onyx_winograd_avx2.output(&g, m, k * lb, lb, 0, k, starts[b], counts[b], bias, s,
                                      &acts[b], y1);
        }
        double worst = 0;
        for (int64_t i = 0; i < n * k * oh * ow; i++)
            if (fabs((double)y0[i] - y1[i]) > worst) worst = fabs((double)y0[i] - y1[i]);
        CHECK_NEAR(worst, 0.0, 2e-5);
        free(x);
        free(xp);
        free(v0);
        free(v1);
        free(m);
        free(y0);
        free(y1);
        free(sum);
    }
}

/* U = G g G^T straight from the definition, one (k, c) pair at a time. */
static void winograd_weights_ref(const float *w, int64_t pairs, int64_t plane0, int64_t plane,
                                 float *u) {
    static const double G[6][3] = {{0.25, 0, 0},
                                   {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                   {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                   {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                   {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                   {0, 0, 1}};
    for (int64_t q = 0; q < pairs; q++)
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 6; j++) {
                double s = 0;
                for (int a = 0; a < 3; a++)
                    for (int b = 0; b < 3; b++) s += G[i][a] * w[q * 9 + a * 3 + b] * G[j][b];
                u[(i * 6 + j) * plane + plane0 + q] = (float)s;
            }
}

UNIT_TEST(winograd_weights_match_definition) {
    /* k x c: under one block of pairs, several blocks with a partial tail */
    static const int64_t shapes[][2] = {{1, 1}, {3, 5}, {8, 17}, {13, 11}};
    unsigned seed = 5;
    for (int si = 0; si < 4; si++) {
        int64_t k = shapes[si][0], c = shapes[si][1], plane = k * c;
        float *w = malloc(sizeof(float) * (size_t)(plane * 9));
        float *u0 = malloc(sizeof(float) * (size_t)(36 * plane));
        float *u1 = malloc(sizeof(float) * (size_t)(36 * plane));
        for (int64_t i = 0; i < plane * 9; i++) w[i] = 4.0f * frand(&seed);
        winograd_weights_ref(w, plane, 0, plane, u0);
        onyx_winograd_weights(w, k, c, u1);
        double worst = 0;
        for (int64_t i = 0; i < 36 * plane; i++)
            if (fabs((double)u0[i] - u1[i]) > worst) worst = fabs((double)u0[i] - u1[i]);
        CHECK_NEAR(worst, 0.0, 1e-6);
        /* every ISA variant: the same bits as the generic twin */
        const onyx_cpu *cpu = onyx_cpu_get();
        if (cpu->avx2 && cpu->fma) {
            onyx_winograd_avx2.weights(w, k, c, u0);
            CHECK(memcmp(u0, u1, sizeof(float) * (size_t)(36 * plane)) == 0);
        }
        CHECK(onyx_winograd_generic.weights == onyx_winograd_weights);
        free(w);
        free(u0);
        free(u1);
    }
}

/* Every kernel's packed A (its pack_a_strip where it has one) against the
 * layout written out: depth blocks of 256, mr-row strips, zero rows past m;
 * depths that are not a multiple of 8 and a last partial strip. */
UNIT_TEST(sgemm_pack_a_layout_every_kernel) {
    const onyx_cpu *cpu = onyx_cpu_get();
    const onyx_sgemm_kernel *kerns[] = {&onyx_sgemm_kernel_generic, &onyx_sgemm_kernel_avx2};
    static const int64_t sizes[][2] = {{6, 8}, {7, 300}, {13, 5}, {12, 515}, {1, 17}};
    unsigned seed = 3;
    for (int ki = 0; ki < 2; ki++) {
        if (ki == 1 && !(cpu->avx2 && cpu->fma)) continue;
        const onyx_sgemm_kernel *kern = kerns[ki];
        const int64_t mr = kern->mr;
        for (int si = 0; si < 5; si++) {
            int64_t m = sizes[si][0], k = sizes[si][1], lda = k + 1;
            int64_t mp = (m + mr - 1) / mr * mr, pf = onyx_sgemm_packed_a_floats(kern, m, k);
            float *a = malloc(sizeof(float) * (size_t)(m * lda));
            float *pa = malloc(sizeof(float) * (size_t)pf);
            for (int64_t i = 0; i < m * lda; i++) a[i] = frand(&seed);
            for (int64_t i = 0; i < pf; i++) pa[i] = NAN;
            onyx_sgemm_pack_a(kern, false, m, k, a, lda, pa);
            int bad = pf != mp * k;
            for (int64_t p0 = 0; p0 < k && !bad; p0 += 256) {
                int64_t kc = k - p0 < 256 ? k - p0 : 256;
                for (int64_t i = 0; i < mp; i++)
                    for (int64_t p = 0; p < kc; p++) {
                        float want = i < m ? a[i * lda + p0 + p] : 0.0f;
                        float got = pa[p0 * mp + (i / mr) * mr * kc + p * mr + i % mr];
                        bad |= memcmp(&want, &got, sizeof want) != 0;
                    }
            }
            CHECK(!bad);
            free(a);
            free(pa);
        }
    }
}

/* Packing A a band of rows at a time lands on the same bytes as packing it
 * whole, for every kernel's strip height, bands that end on m's odd tail. */
UNIT_TEST(sgemm_pack_a_rows_matches_pack_a) {
    const onyx_sgemm_kernel *kerns[] = {&onyx_sgemm_kernel_generic, onyx_kernels_get()->sgemm};
    static const int64_t sizes[][2] = {{1, 1}, {7, 300}, {13, 5}, {64, 257}, {100, 513}};
    unsigned seed = 9;
    for (int ki = 0; ki < 2; ki++)
        for (int si = 0; si < 5; si++) {
            const onyx_sgemm_kernel *kern = kerns[ki];
            int64_t m = sizes[si][0], k = sizes[si][1], lda = k + 3;
            int64_t pf = onyx_sgemm_packed_a_floats(kern, m, k);
            float *a = malloc(sizeof(float) * (size_t)(m * lda));
            float *p0 = malloc(sizeof(float) * (size_t)pf);
            float *p1 = malloc(sizeof(float) * (size_t)pf);
            for (int64_t i = 0; i < m * lda; i++) a[i] = frand(&seed);
            for (int64_t i = 0; i < pf; i++) p1[i] = NAN;
            onyx_sgemm_pack_a(kern, false, m, k, a, lda, p0);
            int64_t band = 2 * kern->mr;
            for (int64_t i0 = 0; i0 < m; i0 += band)
                onyx_sgemm_pack_a_rows(kern, m, k, i0, m - i0 < band ? m - i0 : band,
                                       a + i0 * lda, lda, p1);
            CHECK(memcmp(p0, p1, sizeof(float) * (size_t)pf) == 0);
            free(a);
            free(p0);
            free(p1);
        }
}

UNIT_TEST(conv_split_phases_avx2_matches_generic) {
    const onyx_cpu *cpu = onyx_cpu_get();
    if (!(cpu->avx2 && cpu->fma)) return;
    /* c, w, stride, kernel, pad: 3x3 reads every phase and row, 1x1
     * stride 2 one phase of every other row (odd ones with a pad of 1) */
    static const int64_t shapes[][5] = {{2, 37, 2, 3, 1}, {3, 16, 2, 3, 1}, {1, 15, 2, 3, 0},
                                        {2, 40, 3, 3, 1}, {1, 1, 2, 3, 1},  {2, 37, 2, 1, 0},
                                        {3, 33, 2, 1, 1}, {1, 20, 3, 1, 0}};
    unsigned seed = 23;
    for (int si = 0; si < 8; si++) {
        const int64_t *sp = shapes[si];
        onyx_conv2d g = {.c = sp[0], .h = 7, .w = sp[1], .kh = sp[3], .kw = sp[3], .sh = sp[2],
                         .sw = sp[2], .dh = 1, .dw = 1, .ph = sp[4], .pw = sp[4]};
        g.oh = (g.h + 2 * g.ph - g.kh) / g.sh + 1;
        g.ow = (g.w + 2 * g.pw - g.kw) / g.sw + 1;
        int64_t nx = g.c * g.h * g.w, np = onyx_conv_phase_floats(&g);
        float *x = malloc(sizeof(float) * (size_t)nx);
        float *p0 = malloc(sizeof(float) * (size_t)np), *p1 = malloc(sizeof(float) * (size_t)np);
        for (int64_t i = 0; i < nx; i++) x[i] = frand(&seed);
        for (int64_t i = 0; i < np; i++) p0[i] = p1[i] = 99.0f;
        onyx_conv_kernels_generic.split_phases(&g, x, p0, 0, g.c);
        onyx_conv_kernels_avx2.split_phases(&g, x, p1, 0, g.c);
        int same = 1;
        for (int64_t i = 0; i < np; i++) same &= p0[i] == p1[i];
        CHECK(same);
        free(x);
        free(p0);
        free(p1);
    }
}

/* The implicit-im2col packer against the im2col matrix written out by its
 * definition: every packed value of every depth block and column block
 * (cuts inside output rows and strips), with strides, dilations, pads that
 * put whole taps outside the image, 1 x 1 stride 2, and each kernel's strip
 * width; the last strip's lanes past the block are zero. The phases the
 * packer must not read hold NaN. */
UNIT_TEST(conv_pack_b_matches_im2col) {
    /* c, h, w, kh, kw, stride, dilation, pad */
    static const int64_t shapes[][8] = {
        {3, 9, 13, 3, 3, 1, 1, 1}, {2, 11, 11, 3, 3, 2, 1, 1}, {3, 20, 20, 7, 7, 2, 1, 3},
        {4, 7, 7, 3, 3, 1, 1, 1},  {2, 9, 17, 1, 1, 2, 1, 0}, {2, 10, 9, 3, 2, 3, 1, 4},
        {1, 12, 12, 3, 3, 1, 2, 2}, {5, 6, 30, 5, 5, 2, 1, 2}};
    static const int nrs[] = {8, 16, 32};
    unsigned seed = 31;
    for (int si = 0; si < 8; si++) {
        const int64_t *sp = shapes[si];
        onyx_conv2d g = {.c = sp[0], .h = sp[1], .w = sp[2], .kh = sp[3], .kw = sp[4],
                         .sh = sp[5], .sw = sp[5], .dh = sp[6], .dw = sp[6], .ph = sp[7],
                         .pw = sp[7]};
        g.oh = (g.h + 2 * g.ph - (g.kh - 1) * g.dh - 1) / g.sh + 1;
        g.ow = (g.w + 2 * g.pw - (g.kw - 1) * g.dw - 1) / g.sw + 1;
        const int64_t K = g.c * g.kh * g.kw, N = g.oh * g.ow, nx = g.c * g.h * g.w;
        float *x = malloc(sizeof(float) * (size_t)nx);
        for (int64_t i = 0; i < nx; i++) x[i] = frand(&seed);
        onyx_conv_im2col im = {&g, x, g.w};
        float *phases = NULL;
        if (g.sw > 1) {
            int64_t np = onyx_conv_phase_floats(&g);
            phases = malloc(sizeof(float) * (size_t)np);
            for (int64_t i = 0; i < np; i++) phases[i] = NAN;
            onyx_conv_split_phases(&g, x, phases, 0, g.c);
            im.x = phases;
            im.phase_w = (g.w + g.sw - 1) / g.sw;
        }
        /* depth and column blocks: whole, and cut at odd places */
        const int64_t kcs[] = {K, K > 5 ? 5 : K}, ncs[] = {N, N > 19 ? 19 : N};
        for (int ni = 0; ni < 3; ni++)
            for (int b = 0; b < 4; b++) {
                const int nr = nrs[ni];
                const int64_t kc = kcs[b & 1], nc = ncs[b >> 1];
                const int64_t strips = (nc + nr - 1) / nr;
                float *dst = malloc(sizeof(float) * (size_t)(strips * kc * nr));
                for (int64_t p0 = 0; p0 < K; p0 += kc)
                    for (int64_t j0 = 0; j0 < N; j0 += nc) {
                        const int64_t k1 = p0 + kc < K ? kc : K - p0;
                        const int64_t n1 = j0 + nc < N ? nc : N - j0;
                        for (int64_t i = 0; i < strips * k1 * nr; i++) dst[i] = 99.0f;
                        onyx_conv_pack_b(&im, p0, k1, j0, n1, nr, dst);
                        int same = 1;
                        for (int64_t p = 0; p < k1; p++)
                            for (int64_t j = 0; j < (n1 + nr - 1) / nr * nr; j++) {
                                float want = 0.0f;
                                if (j < n1) {
                                    int64_t d = p0 + p, c = d / (g.kh * g.kw);
                                    int64_t ki = d / g.kw % g.kh, kj = d % g.kw;
                                    int64_t oh = (j0 + j) / g.ow, ow = (j0 + j) % g.ow;
                                    int64_t ih = oh * g.sh + ki * g.dh - g.ph;
                                    int64_t iw = ow * g.sw + kj * g.dw - g.pw;
                                    if (ih >= 0 && ih < g.h && iw >= 0 && iw < g.w)
                                        want = x[(c * g.h + ih) * g.w + iw];
                                }
                                same &= dst[(j / nr * k1 + p) * nr + j % nr] == want;
                            }
                        CHECK(same);
                    }
                free(dst);
            }
        free(x);
        free(phases);
    }
}
