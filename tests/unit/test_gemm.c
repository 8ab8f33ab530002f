/* test_gemm.c - checks onyx_sgemm / onyx_dgemm against a naive triple loop
 * in double precision on odd sizes, both transposes, padded strides, several
 * alpha/beta, serial and parallel (fake and real thread pool). */
#include "unit.h"

#include "base/pool.h"
#include "kernels/dispatch.h"
#include "kernels/gemm.h"

#include <stdlib.h>

/* Deterministic values in [-1, 1). */
static float lcg(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* C = alpha*op(A)*op(B) + beta*C in double, the oracle. */
static void naive(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                  const float *a, int64_t lda, const float *b, int64_t ldb, double beta,
                  double *c, int64_t ldc) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++) {
                double av = ta ? a[p * lda + i] : a[i * lda + p];
                double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
                s += av * bv;
            }
            c[i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * c[i * ldc + j]);
        }
}

/* A parallel-for that runs chunks serially but hands out distinct thread
 * indices, so per-thread workspace slicing is exercised deterministically. */
static void fake_parallel(void *par_ctx, int64_t n, int64_t grain, onyx_task_fn fn, void *ctx) {
    int threads = *(int *)par_ctx;
    int64_t chunk = (n + threads * 2 - 1) / (threads * 2);
    if (chunk < grain) chunk = grain;
    int t = 0;
    for (int64_t b = 0; b < n; b += chunk) {
        fn(ctx, b, b + chunk < n ? b + chunk : n, t);
        t = (t + 1) % threads;
    }
}

static void pool_parallel(void *par_ctx, int64_t n, int64_t grain, onyx_task_fn fn, void *ctx) {
    onyx_pool_run(par_ctx, n, grain, fn, ctx);
}

/* Runs one case; returns 1 when it matches the oracle and leaves the
 * padding of C untouched. mode 0: serial, 1: fake parallel, 2: real pool,
 * 3: onyx_sgemm_serial with a caller workspace. */
static int run_case_with(const onyx_sgemm_kernel *kern, int64_t m, int64_t n, int64_t k, bool ta,
                         bool tb, float alpha, float beta, int mode, onyx_pool *pool,
                         uint32_t seed) {
    int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 5;
    int64_t arows = ta ? k : m, brows = tb ? n : k;
    float *a = malloc(sizeof(float) * (size_t)(arows * lda + 1));
    float *b = malloc(sizeof(float) * (size_t)(brows * ldb + 1));
    float *c = malloc(sizeof(float) * (size_t)(m * ldc));
    double *r = malloc(sizeof(double) * (size_t)(m * ldc));
    int ok = a && b && c && r;
    if (!ok) goto done;
    for (int64_t i = 0; i < arows * lda; i++) a[i] = lcg(&seed);
    for (int64_t i = 0; i < brows * ldb; i++) b[i] = lcg(&seed);
    for (int64_t i = 0; i < m * ldc; i++) r[i] = c[i] = lcg(&seed);
    if (beta == 0.0f) /* C must not be read: poison it (padding excluded) */
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) c[i * ldc + j] = NAN;
    naive(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, r, ldc);

    int threads = 3;
    onyx_parallel fake = {fake_parallel, &threads, threads};
    onyx_parallel real = {pool_parallel, pool, onyx_pool_threads(pool)};
    if (mode == 3) {
        void *w = malloc(onyx_sgemm_workspace(m, n, k, 1) + 1);
        onyx_sgemm_serial(kern, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, w);
        free(w);
    } else {
        const onyx_parallel *par = mode == 1 ? &fake : mode == 2 ? &real : NULL;
        ok = onyx_sgemm(kern, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, par, NULL) ==
             ONYX_OK;
    }
    for (int64_t i = 0; i < m && ok; i++)
        for (int64_t j = 0; j < ldc; j++) {
            double tol = 1e-4 * (double)(k + 1);
            if (!(fabs(c[i * ldc + j] - r[i * ldc + j]) <= tol)) {
                fprintf(stderr, "  m=%lld n=%lld k=%lld ta=%d tb=%d alpha=%g beta=%g mode=%d: "
                        "C[%lld,%lld] = %g, want %g (%s)\n", (long long)m, (long long)n, (long long)k,
                        ta, tb, alpha, beta, mode, (long long)i, (long long)j, c[i * ldc + j],
                        r[i * ldc + j], kern ? kern->name : "generic");
                ok = 0;
                break;
            }
        }
done:
    free(a);
    free(b);
    free(c);
    free(r);
    return ok;
}

static int run_case(int64_t m, int64_t n, int64_t k, bool ta, bool tb, float alpha, float beta,
                    int mode, onyx_pool *pool, uint32_t seed) {
    return run_case_with(NULL, m, n, k, ta, tb, alpha, beta, mode, pool, seed);
}

UNIT_TEST(gemm_odd_sizes) {
    static const int64_t sizes[] = {1, 7, 17, 63, 100};
    uint32_t seed = 1;
    int bad = 0;
    for (int im = 0; im < 5; im++)
        for (int in = 0; in < 5; in++)
            for (int ik = 0; ik < 5; ik++)
                for (int t = 0; t < 4; t++) {
                    float alpha = (t & 1) ? 0.5f : 1.0f, beta = (t & 2) ? 0.0f : 1.5f;
                    bad += !run_case(sizes[im], sizes[in], sizes[ik], t & 1, (t >> 1) & 1, alpha,
                                     beta, 0, NULL, seed++);
                    if (bad > 5) goto out;
                }
out:
    CHECK(bad == 0);
}

UNIT_TEST(gemm_blocks_and_parallel) {
    onyx_pool *pool = onyx_pool_new(3);
    CHECK(pool != NULL);
    /* Sizes past MC/NC/KC so several panels, tiles and K steps occur. */
    /* Parallel splits: few column blocks share one packed B ({130, 300,
     * 520} ...), many are taken whole ({7, 6200, 33}); {3, 3000, 1500} has
     * a B too large to share. */
    static const int64_t shapes[][3] = {{130, 300, 520}, {257, 9, 300}, {9, 600, 17},
                                        {64, 64, 256},   {65, 257, 257}, {2, 2, 2},
                                        {7, 6200, 33},   {3, 3000, 1500}};
    uint32_t seed = 99;
    for (int s = 0; s < 8; s++)
        for (int t = 0; t < 4; t++)
            for (int mode = 0; mode < 4; mode++)
                CHECK(run_case(shapes[s][0], shapes[s][1], shapes[s][2], t & 1, t >> 1, 0.75f,
                               t == 2 ? 0.0f : -1.0f, mode, pool, seed++));
    onyx_pool_free(pool);
}

UNIT_TEST(gemm_dispatched_kernel) {
    /* The ISA micro-kernel this CPU dispatches to, through the same driver:
     * its own mr/nr make different partial tiles. */
    const onyx_sgemm_kernel *kern = onyx_kernels_get()->sgemm;
    static const int64_t sizes[] = {1, 7, 17, 63, 100};
    uint32_t seed = 5;
    int bad = 0;
    for (int im = 0; im < 5; im++)
        for (int in = 1; in < 5; in++)
            for (int t = 0; t < 4; t++)
                bad += !run_case_with(kern, sizes[im], sizes[in], sizes[(im + in) % 5], t & 1, t >> 1,
                                      1.25f, t == 1 ? 0.0f : 0.5f, im % 2 ? 1 : 3, NULL, seed++);
    bad += !run_case_with(kern, 130, 300, 520, false, true, 1.0f, 0.0f, 1, NULL, seed++);
    CHECK(bad == 0);
}

UNIT_TEST(gemm_degenerate) {
    /* k == 0: C = beta*C; m == 0: nothing touched. */
    float c[6] = {1, 2, 3, 4, 5, 6};
    CHECK(onyx_sgemm(NULL, false, false, 2, 3, 0, 1.0f, NULL, 1, NULL, 3, 2.0f, c, 3, NULL,
                     NULL) == ONYX_OK);
    CHECK(c[0] == 2 && c[5] == 12);
    CHECK(onyx_sgemm(NULL, false, false, 0, 3, 4, 1.0f, NULL, 1, NULL, 3, 2.0f, c, 3, NULL,
                     NULL) == ONYX_OK);
    CHECK(c[0] == 2);
    CHECK(onyx_sgemm_workspace(1, 100, 100, 4) == 0);
}

UNIT_TEST(dgemm_odd_sizes) {
    static const int64_t sizes[] = {1, 7, 17, 63};
    uint32_t seed = 7;
    int threads = 2;
    onyx_parallel fake = {fake_parallel, &threads, threads};
    for (int im = 0; im < 4; im++)
        for (int in = 0; in < 4; in++)
            for (int ik = 0; ik < 4; ik++)
                for (int t = 0; t < 4; t++) {
                    int64_t m = sizes[im], n = sizes[in], k = sizes[ik];
                    bool ta = t & 1, tb = t >> 1;
                    int64_t lda = (ta ? m : k) + 2, ldb = (tb ? k : n) + 1, ldc = n + 1;
                    double *a = malloc(sizeof(double) * (size_t)((ta ? k : m) * lda));
                    double *b = malloc(sizeof(double) * (size_t)((tb ? n : k) * ldb));
                    double *c = malloc(sizeof(double) * (size_t)(m * ldc));
                    float *af = malloc(sizeof(float) * (size_t)((ta ? k : m) * lda));
                    float *bf = malloc(sizeof(float) * (size_t)((tb ? n : k) * ldb));
                    double *r = malloc(sizeof(double) * (size_t)(m * ldc));
                    for (int64_t i = 0; i < (ta ? k : m) * lda; i++) a[i] = af[i] = lcg(&seed);
                    for (int64_t i = 0; i < (tb ? n : k) * ldb; i++) b[i] = bf[i] = lcg(&seed);
                    for (int64_t i = 0; i < m * ldc; i++) c[i] = r[i] = lcg(&seed);
                    naive(ta, tb, m, n, k, 2.0, af, lda, bf, ldb, 0.5, r, ldc);
                    onyx_dgemm(ta, tb, m, n, k, 2.0, a, lda, b, ldb, 0.5, c, ldc,
                               t == 3 ? &fake : NULL);
                    double worst = 0;
                    for (int64_t i = 0; i < m * ldc; i++)
                        if (fabs(c[i] - r[i]) > worst) worst = fabs(c[i] - r[i]);
                    CHECK(worst < 1e-9);
                    free(a);
                    free(b);
                    free(c);
                    free(af);
                    free(bf);
                    free(r);
                }
}

// ----------------------------------------------------------------------------
// onyx_sgemm_run: prepacked A, B from a packer callback, fused bias and
// activation, block epilogues

typedef struct plain_b {
    const float *b;
    int64_t ldb;
    int64_t n;
} plain_b;

/* The packer contract of gemm.h, from a row-major K x N matrix. */
static void pack_plain(void *ctx, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr,
                       float *dst) {
    const plain_b *pb = ctx;
    for (int64_t s = 0; s < nc; s += nr)
        for (int64_t p = 0; p < kc; p++)
            for (int j = 0; j < nr; j++)
                dst[s * kc + p * nr + j] = s + j < nc ? pb->b[(p0 + p) * pb->ldb + j0 + s + j] : 0.0f;
}

typedef struct count_epi {
    int64_t m, n;
    int *seen; /* (m, n) */
} count_epi;

/* Adds 100 + row index and counts each visit. */
static void epi_mark(void *ctx, float *c, int64_t ldc, int64_t i0, int64_t rows, int64_t j0,
                     int64_t cols) {
    count_epi *e = ctx;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) {
            c[i * ldc + j] += 100.0f + (float)(i0 + i);
            __atomic_add_fetch(&e->seen[(i0 + i) * e->n + j0 + j], 1, __ATOMIC_RELAXED);
        }
}

/* The fused epilogues the cases rotate through. */
static const onyx_act op_acts[] = {{ONYX_ACT_NONE, 0, 0}, {ONYX_ACT_RELU, 0, 0},
                                   {ONYX_ACT_CLIP, -0.5f, 1.0f}, {ONYX_ACT_SIGMOID, 0, 0}};

static double act_ref(const onyx_act *a, double v) {
    switch (a->kind) {
    case ONYX_ACT_RELU: return v > 0 ? v : 0;
    case ONYX_ACT_CLIP: return v < a->a ? a->a : v > a->b ? a->b : v;
    case ONYX_ACT_SIGMOID: return 1.0 / (1.0 + exp(-v));
    default: return v;
    }
}

static int run_op_case(const onyx_sgemm_kernel *kern, int64_t m, int64_t n, int64_t k,
                       bool packed, bool packer, bool ta, bool packed_b, int mode,
                       onyx_pool *pool, uint32_t seed) {
    const onyx_act *act = &op_acts[seed % 4];
    bool with_bias = seed % 3 != 0;
    int64_t lda = (ta ? m : k) + 1, ldb = n + 2, ldc = n + 3;
    float *a = malloc(sizeof(float) * (size_t)((ta ? k : m) * lda + 1));
    float *b = malloc(sizeof(float) * (size_t)(k * ldb + 1));
    float *c = malloc(sizeof(float) * (size_t)(m * ldc));
    double *r = malloc(sizeof(double) * (size_t)(m * ldc));
    int *seen = calloc((size_t)(m * n), sizeof(int));
    float *bias = malloc(sizeof(float) * (size_t)m);
    int64_t pf = onyx_sgemm_packed_a_floats(kern, m, k);
    float *pa = malloc(sizeof(float) * (size_t)(pf + 1));
    int64_t pbf = onyx_sgemm_packed_b_floats(kern, k, n);
    float *pbuf = malloc(sizeof(float) * (size_t)(pbf + 1));
    int ok = a && b && c && r && seen && pa && bias && pf >= 0 && pbuf && pbf >= 0;
    if (!ok) goto done;
    for (int64_t i = 0; i < m; i++) bias[i] = lcg(&seed);
    for (int64_t i = 0; i < (ta ? k : m) * lda; i++) a[i] = lcg(&seed);
    for (int64_t i = 0; i < k * ldb; i++) b[i] = lcg(&seed);
    for (int64_t i = 0; i < m * ldc; i++) c[i] = r[i] = NAN; /* C is never read */
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = n; j < ldc; j++) c[i * ldc + j] = r[i * ldc + j] = 7.0f;
    naive(ta, false, m, n, k, 1.0, a, lda, b, ldb, 0.0, r, ldc);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++)
            r[i * ldc + j] = act_ref(act, r[i * ldc + j] + (with_bias ? bias[i] : 0.0)) + 100.0 +
                             (double)i;
    onyx_sgemm_pack_a(kern, ta, m, k, a, lda, pa);
    onyx_sgemm_pack_b(kern, false, k, n, b, ldb, pbuf);
    plain_b pb = {b, ldb, n};
    count_epi ce = {m, n, seen};
    onyx_sgemm_op op = {.m = m, .n = n, .k = k, .packed_a = packed ? pa : NULL, .a = a,
                        .lda = lda, .trans_a = ta, .pack_b = packer ? pack_plain : NULL,
                        .pack_b_ctx = &pb, .b = b, .ldb = ldb, .c = c, .ldc = ldc,
                        .bias = with_bias ? bias : NULL, .act = act,
                        .epilogue = epi_mark, .epilogue_ctx = &ce,
                        .packed_b = packed_b ? pbuf : NULL};
    int threads = 3;
    onyx_parallel fake = {fake_parallel, &threads, threads};
    onyx_parallel real = {pool_parallel, pool, onyx_pool_threads(pool)};
    if (mode == 3) {
        void *w = malloc((packed_b ? onyx_sgemm_packed_b_workspace(m, n, k, 1)
                                   : onyx_sgemm_run_workspace(m, n, k, 1)) + 1);
        onyx_sgemm_run_serial(kern, &op, w);
        free(w);
    } else {
        const onyx_parallel *par = mode == 1 ? &fake : mode == 2 ? &real : NULL;
        ok = onyx_sgemm_run(kern, &op, par, NULL) == ONYX_OK;
    }
    for (int64_t i = 0; i < m * n && ok; i++)
        if (seen[i] != 1) {
            fprintf(stderr, "  epilogue visited C[%lld] %d times\n", (long long)i, seen[i]);
            ok = 0;
        }
    for (int64_t i = 0; i < m && ok; i++)
        for (int64_t j = 0; j < ldc; j++)
            if (!(fabs(c[i * ldc + j] - r[i * ldc + j]) <= 1e-4 * (double)(k + 1))) {
                fprintf(stderr, "  run m=%lld n=%lld k=%lld packed=%d packer=%d ta=%d packed_b=%d "
                        "mode=%d: C[%lld,%lld] = %g, want %g\n", (long long)m, (long long)n,
                        (long long)k, packed, packer, ta, packed_b, mode, (long long)i,
                        (long long)j, c[i * ldc + j],
                        r[i * ldc + j]);
                ok = 0;
                break;
            }
done:
    free(a);
    free(b);
    free(c);
    free(r);
    free(seen);
    free(pa);
    free(pbuf);
    free(bias);
    return ok;
}

UNIT_TEST(gemm_run_prepacked_packer_epilogue) {
    onyx_pool *pool = onyx_pool_new(2);
    CHECK(pool != NULL);
    /* The generic kernel, the dispatched one, and the dispatched one without
     * its fused-epilogue and row entries (the driver's fallbacks; B always
     * packed). */
    onyx_sgemm_kernel plain = *onyx_kernels_get()->sgemm;
    plain.fn_epi = NULL;
    plain.fn_epi_ldb = NULL;
    plain.fn_row = NULL;
    const onyx_sgemm_kernel *kerns[3] = {NULL, onyx_kernels_get()->sgemm, &plain};
    /* Odd sizes, depth past KC (several depth blocks: epilogue after the
     * last only), m and n of 1 (no matrix-vector shortcut here); up to 64
     * rows B is read in place (a narrow last strip packed); last strips
     * of 1-4 columns (the narrow kernel), 8 (half) and 15 columns; one row
     * over a prepacked B (the row kernel: groups of 4 strips, a last strip
     * past n, depth blocks accumulated). */
    static const int64_t shapes[][3] = {{1, 1, 1},     {7, 17, 3},    {17, 63, 100},
                                        {70, 40, 300}, {130, 9, 520}, {6, 1000, 27},
                                        {1, 33, 7},    {64, 1, 64},   {20, 50, 300},
                                        {13, 35, 70},  {80, 20, 260}, {100, 49, 600},
                                        {1, 1000, 1280}, {1, 37, 300}, {1, 3, 5},
                                        {1, 64, 513}};
    const int n_shapes = (int)(sizeof shapes / sizeof shapes[0]);
    uint32_t seed = 42;
    int bad = 0;
    for (int ki = 0; ki < 3; ki++)
        for (int s = 0; s < n_shapes; s++)
            for (int v = 0; v < 16; v++)
                bad += !run_op_case(kerns[ki], shapes[s][0], shapes[s][1], shapes[s][2], v & 1,
                                    (v >> 1) & 1, (v >> 2) & 1, (v >> 3) & 1, (s + v) % 4, pool,
                                    seed++);
    CHECK(bad == 0);
    CHECK(onyx_sgemm_packed_a_floats(NULL, -1, 3) == -1);
    CHECK(onyx_sgemm_packed_b_floats(NULL, 3, -1) == -1);
    onyx_pool_free(pool);
}
