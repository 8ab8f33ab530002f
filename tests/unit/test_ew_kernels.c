/* test_ew_kernels.c - the float32 elementwise kernels (kernels/ew.h): each
 * ISA variant against its generic twin on every length 0..67, both stride
 * cases and NaN/inf, and the transcendental ones against libm over dense
 * sweeps (max ulp error). Variants this CPU lacks are skipped. */
#include "unit.h"

#include "base/cpu.h"
#include "kernels/dispatch.h"
#include "kernels/ew.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 8192.0f - 4.0f; /* [-4, 4) */
}

static bool have_avx2(void) {
    const onyx_cpu *cpu = onyx_cpu_get();
    return cpu->avx2 && cpu->fma;
}

/* Distance in representable floats (NaN against NaN is 0, NaN against a
 * number is huge). */
static double ulps(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b) ? 0 : 1e30;
    if (a == b) return 0;
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    int64_t la = ia < 0 ? (int64_t)INT32_MIN - ia : ia;
    int64_t lb = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
    return (double)(la > lb ? la - lb : lb - la);
}

/* Equal to within max_ulp, or within abs_tol in absolute terms. */
static bool close_to(float got, float want, double max_ulp, double abs_tol) {
    if (ulps(got, want) <= max_ulp) return true;
    return !isnan(got) && !isnan(want) && fabs((double)got - want) <= abs_tol;
}

static const float specials[] = {0.0f, -0.0f, 1.0f, -1.0f, INFINITY, -INFINITY, NAN, 1e-30f,
                                 -1e-30f, 100.0f, -100.0f, 3.5f, -0.625f, 0.625f, 1e30f};
#define N_SPECIALS (int)(sizeof specials / sizeof specials[0])

static void fill(float *x, int64_t n, unsigned *seed, bool special) {
    for (int64_t i = 0; i < n; i++)
        x[i] = special && i % 5 == 3 ? specials[(i / 5) % N_SPECIALS] : frand(seed);
}

// ----------------------------------------------------------------------------
// Binary

UNIT_TEST(ew_binary_avx2_matches_generic) {
    if (!have_avx2()) return;
    const onyx_ew_kernels *g = &onyx_ew_kernels_generic, *v = &onyx_ew_kernels_avx2;
    static const onyx_act acts[] = {{ONYX_ACT_NONE, 0, 0},       {ONYX_ACT_RELU, 0, 0},
                                    {ONYX_ACT_CLIP, -1.0f, 2.0f}, {ONYX_ACT_LEAKY_RELU, 0.1f, 0},
                                    {ONYX_ACT_SIGMOID, 0, 0},    {ONYX_ACT_HARD_SWISH, 0, 0},
                                    {ONYX_ACT_SILU, 0, 0},       {ONYX_ACT_TANH, 0, 0}};
    unsigned seed = 11;
    float a[80], b[80], y0[80], y1[80];
    for (int op = 0; op < ONYX_EW_BINOP_COUNT; op++)
        for (int sc = 0; sc < 4; sc++)
            for (int ai = 0; ai < (int)(sizeof acts / sizeof acts[0]); ai++)
                for (int64_t n = 0; n <= 67; n++) {
                    int64_t sa = sc != 2, sb = sc != 1; /* sc 3: both scalar */
                    if (sc == 3) sa = sb = 0;
                    fill(a, 80, &seed, true);
                    fill(b, 80, &seed, n % 2 == 0);
                    for (int i = 0; i < 80; i++) y0[i] = y1[i] = -7.0f;
                    g->binary((onyx_ew_binop)op, a, sa, b, sb, y0, n, &acts[ai]);
                    v->binary((onyx_ew_binop)op, a, sa, b, sb, y1, n, &acts[ai]);
                    /* Sigmoid's, SiLU's and Tanh's exp and HardSwish's x/6
                     * round differently. */
                    bool exact = acts[ai].kind != ONYX_ACT_SIGMOID &&
                                 acts[ai].kind != ONYX_ACT_HARD_SWISH &&
                                 acts[ai].kind != ONYX_ACT_SILU && acts[ai].kind != ONYX_ACT_TANH;
                    for (int i = 0; i < 80; i++) {
                        bool ok = exact ? ulps(y0[i], y1[i]) == 0
                                        : close_to(y1[i], y0[i], 4, 1e-6);
                        if (!ok) {
                            fprintf(stderr, "  op %d sc %d act %d n %lld i %d: %g vs %g\n", op,
                                    sc, ai, (long long)n, i, y1[i], y0[i]);
                            CHECK(ok);
                            return;
                        }
                    }
                }
}

UNIT_TEST(ew_binary_in_place) {
    const onyx_ew_kernels *k = onyx_kernels_get()->ew;
    float a[37], b[37];
    for (int i = 0; i < 37; i++) {
        a[i] = (float)i;
        b[i] = 2.0f;
    }
    k->binary(ONYX_EW_MUL, a, 1, b, 1, a, 37, NULL);
    for (int i = 0; i < 37; i++) CHECK(a[i] == 2.0f * (float)i);
    k->binary(ONYX_EW_SUB, b, 0, a, 1, a, 37, NULL); /* 2 - a */
    for (int i = 0; i < 37; i++) CHECK(a[i] == 2.0f - 2.0f * (float)i);
}

UNIT_TEST(ew_max_min_nan) {
    const onyx_ew_kernels *ks[2] = {&onyx_ew_kernels_generic,
                                    have_avx2() ? &onyx_ew_kernels_avx2 : NULL};
    for (int v = 0; v < 2; v++) {
        if (!ks[v]) continue;
        float a[9] = {NAN, 1, NAN, -1, 0, 2, 3, 4, 5}, b[9] = {1, NAN, NAN, 0, -0.0f, 1, 4, 3, 5};
        float y[9];
        ks[v]->binary(ONYX_EW_MAX, a, 1, b, 1, y, 9, NULL);
        CHECK(isnan(y[0]) && isnan(y[1]) && isnan(y[2]));
        CHECK(y[3] == 0 && y[5] == 2 && y[6] == 4 && y[7] == 4 && y[8] == 5);
        ks[v]->binary(ONYX_EW_MIN, a, 1, b, 1, y, 9, NULL);
        CHECK(isnan(y[0]) && isnan(y[1]) && isnan(y[2]));
        CHECK(y[3] == -1 && y[5] == 1 && y[6] == 3 && y[7] == 3 && y[8] == 5);
    }
}

// ----------------------------------------------------------------------------
// Unary

/* Tolerances of the AVX2 variant against the generic twin (libm). */
static void unop_tol(onyx_ew_unop op, double *max_ulp, double *abs_tol) {
    *max_ulp = 0;
    *abs_tol = 0;
    switch (op) {
    case ONYX_EW_EXP: *max_ulp = 2; break;
    case ONYX_EW_TANH: *max_ulp = 3; break;
    case ONYX_EW_SIGMOID: *max_ulp = 4; break;
    case ONYX_EW_ERF: *max_ulp = 3; break;
    /* 0.5 x (1 + f): the sum cancels for negative x in both variants. */
    case ONYX_EW_GELU:
    case ONYX_EW_GELU_TANH: *max_ulp = 4; *abs_tol = 3e-7; break;
    case ONYX_EW_CUBE: *max_ulp = 0; break;
    default: break;
    }
}

UNIT_TEST(ew_unary_avx2_matches_generic) {
    if (!have_avx2()) return;
    const onyx_ew_kernels *g = &onyx_ew_kernels_generic, *v = &onyx_ew_kernels_avx2;
    unsigned seed = 5;
    float x[80], y0[80], y1[80];
    for (int op = 0; op < ONYX_EW_UNOP_COUNT; op++) {
        double max_ulp, abs_tol;
        unop_tol((onyx_ew_unop)op, &max_ulp, &abs_tol);
        for (int64_t n = 0; n <= 67; n++) {
            fill(x, 80, &seed, true);
            for (int i = 0; i < 80; i++) y0[i] = y1[i] = -7.0f;
            g->unary((onyx_ew_unop)op, x, y0, n);
            v->unary((onyx_ew_unop)op, x, y1, n);
            for (int i = 0; i < 80; i++) {
                bool ok = close_to(y1[i], y0[i], max_ulp, abs_tol);
                if (!ok) {
                    fprintf(stderr, "  op %d n %lld i %d: f(%.9g) = %.9g, libm %.9g\n", op,
                            (long long)n, i, x[i], y1[i], y0[i]);
                    CHECK(ok);
                    return;
                }
            }
        }
    }
}

/* Dense sweeps of x in [lo, hi] (every k-th float, tails included): the
 * worst ulp error of the AVX2 variant against libm (the generic twin). */
static double sweep(onyx_ew_unop op, float lo, float hi, int64_t count, double abs_tol) {
    float *x = malloc(sizeof(float) * (size_t)count);
    float *y0 = malloc(sizeof(float) * (size_t)count), *y1 = malloc(sizeof(float) * (size_t)count);
    if (!x || !y0 || !y1 || count < 2) {
        free(x);
        free(y0);
        free(y1);
        return 1e30;
    }
    for (int64_t i = 0; i < count; i++)
        x[i] = lo + (hi - lo) * (float)((double)i / (double)(count - 1));
    onyx_ew_kernels_generic.unary(op, x, y0, count);
    onyx_ew_kernels_avx2.unary(op, x, y1, count);
    double worst = 0;
    for (int64_t i = 0; i < count; i++) {
        double u = ulps(y1[i], y0[i]);
        if (abs_tol > 0 && fabs((double)y1[i] - y0[i]) <= abs_tol) u = 0;
        if (u > worst) {
            worst = u;
            if (u > 4)
                fprintf(stderr, "  op %d at %.9g: %.9g, libm %.9g\n", op, x[i], y1[i], y0[i]);
        }
    }
    free(x);
    free(y0);
    free(y1);
    return worst;
}

UNIT_TEST(ew_transcendental_accuracy) {
    if (!have_avx2()) return;
    /* erf: the small and the large branch, the switch at 1, and the tail
     * that rounds to 1; tiny arguments (relative accuracy near 0). */
    CHECK(sweep(ONYX_EW_ERF, -5.0f, 5.0f, 2000003, 0) <= 3);
    CHECK(sweep(ONYX_EW_ERF, -1e-3f, 1e-3f, 200003, 0) <= 2);
    CHECK(sweep(ONYX_EW_ERF, 0.9f, 1.1f, 200003, 0) <= 3);
    CHECK(sweep(ONYX_EW_EXP, -104.0f, 89.0f, 2000003, 0) <= 2);
    CHECK(sweep(ONYX_EW_EXP, -1.0f, 1.0f, 200003, 0) <= 2);
    CHECK(sweep(ONYX_EW_TANH, -10.0f, 10.0f, 2000003, 0) <= 3);
    CHECK(sweep(ONYX_EW_TANH, -1e-3f, 1e-3f, 200003, 0) <= 2);
    /* 1 + e^-x rounds once more in each variant */
    CHECK(sweep(ONYX_EW_SIGMOID, -100.0f, 100.0f, 2000003, 0) <= 4);
    CHECK(sweep(ONYX_EW_GELU, -10.0f, 10.0f, 1000003, 3e-7) <= 4);
    CHECK(sweep(ONYX_EW_GELU_TANH, -10.0f, 10.0f, 1000003, 3e-7) <= 4);
}

UNIT_TEST(ew_unary_special_values) {
    const onyx_ew_kernels *ks[2] = {&onyx_ew_kernels_generic,
                                    have_avx2() ? &onyx_ew_kernels_avx2 : NULL};
    for (int v = 0; v < 2; v++) {
        if (!ks[v]) continue;
        const onyx_ew_kernels *k = ks[v];
        float x[4] = {NAN, INFINITY, -INFINITY, -0.0f}, y[4];
        k->unary(ONYX_EW_EXP, x, y, 4);
        CHECK(isnan(y[0]) && y[1] == INFINITY && y[2] == 0 && y[3] == 1);
        k->unary(ONYX_EW_ERF, x, y, 4);
        CHECK(isnan(y[0]) && y[1] == 1 && y[2] == -1 && y[3] == 0 && signbit(y[3]));
        k->unary(ONYX_EW_TANH, x, y, 4);
        CHECK(isnan(y[0]) && y[1] == 1 && y[2] == -1 && y[3] == 0 && signbit(y[3]));
        k->unary(ONYX_EW_SIGMOID, x, y, 4);
        CHECK(isnan(y[0]) && y[1] == 1 && y[2] == 0 && y[3] == 0.5f);
        k->unary(ONYX_EW_RELU, x, y, 4);
        CHECK(isnan(y[0]) && y[1] == INFINITY && y[2] == 0);
        k->unary(ONYX_EW_POW_HALF, x, y, 4);
        CHECK(isnan(y[0]) && y[1] == INFINITY && y[2] == INFINITY && y[3] == 0 && !signbit(y[3]));
        float big[2] = {88.8f, -120.0f};
        k->unary(ONYX_EW_EXP, big, y, 2);
        CHECK(y[0] == INFINITY && y[1] == 0);
    }
}
