/* test_rows.c - the row kernels of kernels/rows.h (softmax, log-softmax,
 * layer and RMS normalization): the AVX2 variant against the generic twin
 * on odd lengths, with and without scale and bias, in place and not, and
 * the generic twin against the definitions. */
#include "unit.h"

#include "base/cpu.h"
#include "kernels/rows.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static const int64_t lens[] = {1, 2, 7, 8, 9, 16, 17, 63, 128, 768, 1001};
#define N_LENS (int)(sizeof lens / sizeof lens[0])

/* Worst abs difference of kernel `k` against the generic twin. */
static double softmax_diff(const onyx_row_kernels *k, int64_t n, bool log_, float spread,
                           bool in_place, unsigned *seed) {
    float *x = malloc(sizeof(float) * (size_t)n), *y0 = malloc(sizeof(float) * (size_t)n);
    float *y1 = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) x[i] = spread * frand(seed);
    if (n > 3) x[n / 2] = -10000.0f; /* an attention-masked logit */
    onyx_row_kernels_generic.softmax(x, y0, n, log_);
    for (int64_t i = 0; i < n; i++) y1[i] = x[i];
    k->softmax(in_place ? y1 : x, y1, n, log_);
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)y0[i] - y1[i]) / (log_ ? 1.0 + fabs(y0[i]) : 1.0);
        if (!(d <= worst)) worst = d; /* NaN sticks */
    }
    free(x);
    free(y0);
    free(y1);
    return worst;
}

static double layernorm_diff(const onyx_row_kernels *k, int64_t n, bool affine, bool rms,
                             bool in_place, unsigned *seed) {
    float *x = malloc(sizeof(float) * (size_t)n), *y0 = malloc(sizeof(float) * (size_t)n);
    float *y1 = malloc(sizeof(float) * (size_t)n), *s = malloc(sizeof(float) * (size_t)n);
    float *b = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        x[i] = 3.0f + 2.0f * frand(seed); /* an offset mean, as after a residual add */
        s[i] = 1.0f + 0.1f * frand(seed);
        b[i] = 0.1f * frand(seed);
    }
    float m0, i0, m1, i1;
    onyx_row_kernels_generic.layernorm(x, y0, n, 1e-5f, affine ? s : NULL, affine ? b : NULL,
                                       rms, &m0, &i0);
    for (int64_t i = 0; i < n; i++) y1[i] = x[i];
    k->layernorm(in_place ? y1 : x, y1, n, 1e-5f, affine ? s : NULL, affine ? b : NULL, rms, &m1,
                 &i1);
    double worst = fabs((double)m0 - m1) + fabs((double)i0 - i1) / (1.0 + fabs(i0));
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)y0[i] - y1[i]);
        if (!(d <= worst)) worst = d;
    }
    free(x);
    free(y0);
    free(y1);
    free(s);
    free(b);
    return worst;
}

static void check_rows_variant(const onyx_row_kernels *k, int *unit_failed_) {
    unsigned seed = 11;
    for (int li = 0; li < N_LENS; li++)
        for (int v = 0; v < 8; v++) {
            double d = softmax_diff(k, lens[li], v & 1, (v & 2) ? 30.0f : 3.0f, v & 4, &seed);
            if (!(d < 4e-6)) fprintf(stderr, "  softmax n=%lld v=%d: %g\n", (long long)lens[li], v, d);
            CHECK(d < 4e-6);
            d = layernorm_diff(k, lens[li], v & 1, v & 2, v & 4, &seed);
            if (!(d < 1e-5)) fprintf(stderr, "  layernorm n=%lld v=%d: %g\n", (long long)lens[li], v, d);
            CHECK(d < 1e-5);
        }
}

static void check_add(const onyx_row_kernels *k, int *unit_failed_) {
    unsigned seed = 3;
    for (int li = 0; li < N_LENS; li++) {
        int64_t n = lens[li];
        float *y = malloc(sizeof(float) * (size_t)(n + 1)), *b = malloc(sizeof(float) * (size_t)n);
        float *want = malloc(sizeof(float) * (size_t)n);
        for (int64_t i = 0; i < n; i++) {
            y[i] = frand(&seed);
            b[i] = frand(&seed);
            want[i] = y[i] + b[i];
        }
        y[n] = 42.0f; /* past the row: untouched */
        k->add(y, b, n);
        for (int64_t i = 0; i < n; i++) CHECK(y[i] == want[i]);
        CHECK(y[n] == 42.0f);
        free(y);
        free(b);
        free(want);
    }
}

UNIT_TEST(rows_add) {
    const onyx_cpu *cpu = onyx_cpu_get();
    check_add(&onyx_row_kernels_generic, unit_failed_);
    if (cpu->avx2 && cpu->fma) check_add(&onyx_row_kernels_avx2, unit_failed_);
}

UNIT_TEST(rows_avx2_match_generic) {
    const onyx_cpu *cpu = onyx_cpu_get();
    if (!cpu->avx2 || !cpu->fma) return;
    check_rows_variant(&onyx_row_kernels_avx2, unit_failed_);
}

UNIT_TEST(rows_softmax_special_values) {
    const onyx_row_kernels *ks[2] = {&onyx_row_kernels_generic, &onyx_row_kernels_avx2};
    const onyx_cpu *cpu = onyx_cpu_get();
    for (int ki = 0; ki < ((cpu->avx2 && cpu->fma) ? 2 : 1); ki++) {
        /* Sums to 1, largest where the input is, shift-invariant. */
        float x[11], y[11], z[11];
        for (int i = 0; i < 11; i++) x[i] = (float)i * 0.5f;
        ks[ki]->softmax(x, y, 11, false);
        double sum = 0;
        for (int i = 0; i < 11; i++) sum += y[i];
        CHECK_NEAR(sum, 1.0, 1e-6);
        CHECK_NEAR(y[10] / y[9], exp(0.5), 1e-5);
        ks[ki]->softmax(x, z, 11, true);
        CHECK_NEAR(z[3], log(y[3]), 1e-5);
        /* A NaN propagates, as the definition's arithmetic does. */
        x[4] = NAN;
        ks[ki]->softmax(x, y, 11, false);
        CHECK(isnan(y[0]) && isnan(y[10]));
        /* One element: 1 (0 as log-softmax). */
        ks[ki]->softmax(x, y, 1, false);
        CHECK(y[0] == 1.0f);
        ks[ki]->softmax(x, y, 1, true);
        CHECK(y[0] == 0.0f);
    }
}

/* max3s2 against a scalar walk over 1-4 rows, with NaNs in every tap
 * position: the kernels keep the generic order (each column's rows, then
 * the columns; a NaN top-left tap gives NaN, later NaNs are skipped) and
 * read nothing past x[r*ld + 2n] (the allocation ends there: the sanitizer
 * build would catch a read beyond). */
static void check_max3s2(const onyx_row_kernels *k, int *unit_failed_) {
    unsigned seed = 5;
    for (int64_t kh = 1; kh <= 4; kh++)
        for (int64_t n = 0; n <= 40; n++) {
            const int64_t ld = 2 * n + 1 + kh % 3, len = (kh - 1) * ld + 2 * n + 1;
            float *x = malloc(sizeof(float) * (size_t)len);
            float *y = malloc(sizeof(float) * (size_t)(n + 1));
            for (int64_t i = 0; i < len; i++) x[i] = frand(&seed);
            for (int64_t i = n % 5; i < len; i += 7) x[i] = NAN;
            y[n] = 42.0f;
            k->max3s2(x, ld, kh, y, n);
            for (int64_t o = 0; o < n; o++) {
                float m = 0.0f;
                for (int64_t t = 0; t < 3; t++) {
                    float v = x[2 * o + t];
                    for (int64_t r = 1; r < kh; r++)
                        if (x[r * ld + 2 * o + t] > v) v = x[r * ld + 2 * o + t];
                    if (t == 0 || v > m) m = v;
                }
                CHECK(isnan(m) ? isnan(y[o]) : y[o] == m);
            }
            CHECK(y[n] == 42.0f);
            free(x);
            free(y);
        }
}

UNIT_TEST(rows_max3s2) {
    const onyx_cpu *cpu = onyx_cpu_get();
    check_max3s2(&onyx_row_kernels_generic, unit_failed_);
    if (cpu->avx2 && cpu->fma) check_max3s2(&onyx_row_kernels_avx2, unit_failed_);
}

/* sum against a long double loop, on lengths around the vector width and
 * the AVX2 kernel's 512-element runs, with an offset mean (so that a
 * float-only total would drift) and a NaN that must come through. Each
 * length is read at its own allocation's end, so a read past n would be
 * caught by the sanitizer build. */
static void check_sum(const onyx_row_kernels *k, int *unit_failed_) {
    static const int64_t lens[] = {0, 1, 7, 8, 9, 31, 511, 512, 513, 1030, 12544, 100003};
    unsigned seed = 9;
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const int64_t n = lens[li];
        float *x = malloc(sizeof(float) * (size_t)(n ? n : 1));
        long double want = 0;
        for (int64_t i = 0; i < n; i++) {
            x[i] = 100.0f + 3.0f * frand(&seed);
            want += x[i];
        }
        double got = k->sum(x, n);
        CHECK_NEAR(got, (double)want, 1e-7 * (double)fabsl(want) + 1e-9);
        if (n) {
            x[n / 2] = NAN;
            CHECK(isnan(k->sum(x, n)));
        }
        free(x);
    }
}

UNIT_TEST(rows_sum) {
    const onyx_cpu *cpu = onyx_cpu_get();
    check_sum(&onyx_row_kernels_generic, unit_failed_);
    if (cpu->avx2 && cpu->fma) check_sum(&onyx_row_kernels_avx2, unit_failed_);
}
