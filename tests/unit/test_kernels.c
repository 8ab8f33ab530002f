/* test_kernels.c - every ISA variant of a kernel against its generic C twin,
 * on odd sizes and strides. Variants this CPU lacks are skipped. */
#include "unit.h"

#include "base/cpu.h"
#include "kernels/dispatch.h"

#include <stdlib.h>

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

UNIT_TEST(sgemm_avx512_matches_generic) {
    if (onyx_cpu_get()->avx512f) check_sgemm_variant(&onyx_sgemm_kernel_avx512, unit_failed_);
}

UNIT_TEST(dispatch_picks_a_kernel) {
    const onyx_kernels *k = onyx_kernels_get();
    CHECK(k->sgemm != NULL);
    CHECK(k->sgemm->mr <= ONYX_SGEMM_MAX_MR && k->sgemm->nr <= ONYX_SGEMM_MAX_NR);
}
