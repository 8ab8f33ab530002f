/* gemm.c - the portable GEMM: a BLIS-style blocked single-precision driver
 * with the generic C micro-kernel, matrix-vector paths, and a plain double
 * GEMM. ISA micro-kernels (gemm_avx2.c, ...) reuse this driver through
 * onyx_sgemm_kernel; they do not duplicate packing or tiling.
 *
 * Blocking (GEMM M/N/K): C is cut into tiles of MC rows x NT columns, one
 * task each. A task walks K in steps of KC: it packs the KC x NT slice of
 * op(B) into NR-wide strips and the MC x KC slice of op(A) into MR-tall
 * strips, then runs the micro-kernel over every MR x NR tile. The packed A
 * block stays in L2 and one B strip in L1 while the micro-kernel runs.
 */
#include "kernels/gemm.h"

#include "base/error.h"
#include "kernels/act.h"

#include <stdlib.h>
#include <string.h>

#define KC 256 /* depth of one packed panel */
#define MC 64  /* rows of C per task (rounded up to the kernel's mr) */
/* Over a prepacked B (see packed_b_drive): A is packed for all
 * depths PB_ROWS rows at a time, and C is computed in blocks of PB_ROWS x
 * PB_COLS that stay in L2 across the depth blocks. */
#define PB_ROWS 128
#define PB_COLS 64
#define NC 1024 /* maximum columns of C per task (rounded up to nr) */

/* Below this many multiply-adds a product runs on one thread. */
#define PARALLEL_MIN_MACS ((int64_t)1 << 16)

// ----------------------------------------------------------------------------
// Generic micro-kernel

#define GEN_MR 4
#define GEN_NR 8

/* acc += the kc steps of a packed A strip times a B strip whose rows are
 * ldb apart (GEN_NR when packed). The unroll pragmas keep the accumulator
 * tile in registers: without them gcc -O2 vectorizes the j loop but leaves
 * acc in memory. 4 x 8 floats is 8 SSE registers, leaving room for B and
 * the broadcast of A. */
static inline __attribute__((always_inline)) void generic_tile(int64_t kc,
                                                               const float *restrict a,
                                                               const float *restrict b,
                                                               int64_t ldb,
                                                               float acc[GEN_MR][GEN_NR]) {
    for (int64_t p = 0; p < kc; p++) {
        const float *ap = a + p * GEN_MR, *bp = b + p * ldb;
#pragma GCC unroll 16
        for (int i = 0; i < GEN_MR; i++)
#pragma GCC unroll 16
            for (int j = 0; j < GEN_NR; j++) acc[i][j] += ap[i] * bp[j];
    }
}

static void ukernel_generic(int64_t kc, const float *restrict a, const float *restrict b,
                            float *restrict c, int64_t ldc, float alpha, float beta) {
    float acc[GEN_MR][GEN_NR] = {{0}};
    generic_tile(kc, a, b, GEN_NR, acc);
    if (beta == 0.0f) {
        for (int i = 0; i < GEN_MR; i++)
            for (int j = 0; j < GEN_NR; j++) c[i * ldc + j] = alpha * acc[i][j];
    } else {
        for (int i = 0; i < GEN_MR; i++)
            for (int j = 0; j < GEN_NR; j++)
                c[i * ldc + j] = alpha * acc[i][j] + beta * c[i * ldc + j];
    }
}

/* Bias, addend and activation on rows [0, rows) x [0, cols) of c: bias[i]
 * per row, then sum[i*lds + j], then act. */
static void bias_act_rows(float *c, int64_t ldc, int64_t rows, int64_t cols, const float *bias,
                          const float *sum, int64_t lds, const onyx_act *act) {
    bool has_act = act && act->kind != ONYX_ACT_NONE;
    for (int64_t i = 0; i < rows; i++) {
        float *ci = c + i * ldc;
        if (bias)
            for (int64_t j = 0; j < cols; j++) ci[j] += bias[i];
        if (sum)
            for (int64_t j = 0; j < cols; j++) ci[j] += sum[i * lds + j];
        if (has_act) onyx_act_apply(act, ci, cols);
    }
}

static void ukernel_generic_epi(int64_t kc, const float *restrict a, const float *restrict b,
                                float *restrict c, int64_t ldc, const onyx_sgemm_epi *epi) {
    ukernel_generic(kc, a, b, c, ldc, 1.0f, epi->accumulate ? 1.0f : 0.0f);
    bias_act_rows(c, ldc, GEN_MR, GEN_NR, epi->bias, epi->sum, epi->lds, epi->act);
}

/* The epilogue kernel over B in place, on the first epi->rows rows. */
static void ukernel_generic_epi_ldb(int64_t kc, const float *restrict a, const float *restrict b,
                                    int64_t ldb, float *restrict c, int64_t ldc,
                                    const onyx_sgemm_epi *epi) {
    float acc[GEN_MR][GEN_NR] = {{0}};
    generic_tile(kc, a, b, ldb, acc);
    for (int i = 0; i < epi->rows; i++)
        for (int j = 0; j < GEN_NR; j++)
            c[i * ldc + j] = epi->accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
    bias_act_rows(c, ldc, epi->rows, GEN_NR, epi->bias, epi->sum, epi->lds, epi->act);
}

const onyx_sgemm_kernel onyx_sgemm_kernel_generic = {
    "generic", GEN_MR, GEN_NR, ukernel_generic, ukernel_generic_epi, NULL, NULL, false,
    ukernel_generic_epi_ldb};

// ----------------------------------------------------------------------------
// Workspace

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

static bool is_gemv(int64_t m, int64_t n) { return m == 1 || n == 1; }

/* Floats one thread needs: a packed A block, a packed B panel, and one tile
 * for partial edges. Bounds hold for any kernel with mr/nr within the max. */
/* Floats of one thread's packed A block (any kernel). */
static int64_t a_block_floats(int64_t m, int64_t k) {
    return round_up((min64(m, MC) + ONYX_SGEMM_MAX_MR) * min64(k, KC), 16);
}

static int64_t thread_floats(int64_t m, int64_t n, int64_t k) {
    int64_t kc = min64(k, KC);
    int64_t a = a_block_floats(m, k);
    int64_t b = (min64(n, NC) + ONYX_SGEMM_MAX_NR) * kc;
    return round_up(a, 16) + round_up(b, 16) + ONYX_SGEMM_MAX_MR * ONYX_SGEMM_MAX_NR;
}

/* Several threads on few column blocks share one packed copy of B (see
 * sgemm_drive) when it takes at most this many bytes. */
#define SHARED_B_BUDGET ((int64_t)16 << 20)

/* Floats of that shared copy: an upper bound for any kernel's nr, 0 when
 * sharing is not possible. */
static int64_t shared_b_floats(int64_t n, int64_t k, int threads) {
    if (threads < 2) return 0;
    int64_t npad = round_up(n, ONYX_SGEMM_MAX_NR);
    if (npad > SHARED_B_BUDGET / (int64_t)sizeof(float) / k) return 0;
    return round_up(k * npad, 16);
}

static size_t workspace_bytes(int64_t m, int64_t n, int64_t k, int threads) {
    if (threads < 1) threads = 1;
    int64_t floats = thread_floats(m, n, k) * threads + shared_b_floats(n, k, threads);
    return (size_t)floats * sizeof(float);
}

/* Where the all-depth A chunk over a prepacked B starts (after the
 * threads' blocks and tiles), and its floats. */
static int64_t pb_a_offset(int64_t m, int64_t n, int64_t k, int threads) {
    if (threads < 1) threads = 1;
    return thread_floats(m, n, k) * threads;
}

static int64_t pb_a_floats(int64_t m, int64_t k) {
    return round_up((min64(m, PB_ROWS) + ONYX_SGEMM_MAX_MR) * k, 16);
}

size_t onyx_sgemm_workspace(int64_t m, int64_t n, int64_t k, int threads) {
    if (m <= 0 || n <= 0 || k <= 0 || is_gemv(m, n)) return 0;
    return workspace_bytes(m, n, k, threads);
}

// ----------------------------------------------------------------------------
// Packing

typedef struct sgemm_problem {
    const onyx_sgemm_kernel *kern;
    bool ta, tb;
    int64_t m, n, k;
    float alpha, beta;
    const float *a, *b;
    float *c;
    int64_t lda, ldb, ldc;
    const float *packed_a;       /* onyx_sgemm_pack_a layout, or NULL */
    onyx_sgemm_pack_b_fn pack_b; /* or NULL */
    void *pack_b_ctx;
    const float *packed_b; /* onyx_sgemm_pack_b layout (npad set), or NULL */
    const float *bias;   /* fused epilogue (m values), or NULL */
    const onyx_act *act; /* fused activation, or NULL */
    const float *sum;    /* fused addend (m x n, row stride lds), or NULL */
    int64_t lds;
    bool fused;          /* bias, addend or an activation to apply */
    onyx_sgemm_epilogue_fn epilogue; /* or NULL */
    void *epilogue_ctx;
    int64_t nt;      /* columns per task (multiple of nr) */
    int64_t mc;      /* rows per task: MC rounded up to mr */
    int64_t m_tiles; /* ceil(m / mc) */
    float *work;     /* thread_floats(...) floats per thread */
    int64_t work_stride;
    float *shared_b; /* shared mode: all of B packed, depth block p0 at p0 * npad */
    bool direct_b;   /* full strips of a plain B read in place (fn_epi_ldb) */
    int64_t npad;    /* n rounded up to nr */
    int64_t pack_nc; /* shared mode: columns per packing task (multiple of nr) */
} sgemm_problem;

/* Packs rows [i0, i0+mc) x depth [p0, p0+kc) of op(A) into mr-tall strips,
 * zero-padding rows past m. dst: (ceil(mc/mr), kc, mr). */
static void pack_a_block(const onyx_sgemm_kernel *kern, bool ta, const float *a, int64_t lda,
                         int64_t i0, int64_t mc, int64_t p0, int64_t kc, float *dst) {
    const int mr = kern->mr;
    for (int64_t s = 0; s < mc; s += mr) {
        int rows = (int)min64(mr, mc - s);
        float *d = dst + s * kc;
        if (!ta) {
            /* Depth-major so that writes are sequential; the mr source rows
             * are read as mr parallel streams. */
            const float *src[ONYX_SGEMM_MAX_MR];
            for (int r = 0; r < rows; r++) src[r] = a + (i0 + s + r) * lda + p0;
            if (rows == mr && kern->pack_a_strip) {
                kern->pack_a_strip(src, kc, d);
                continue;
            }
            if (rows == 6 && mr == 6) {
                /* The AVX2 kernel's full strips: a constant row count
                 * unrolls into straight loads and stores. */
                for (int64_t p = 0; p < kc; p++, d += 6)
                    for (int r = 0; r < 6; r++) d[r] = src[r][p];
                continue;
            }
            for (int64_t p = 0; p < kc; p++, d += mr) {
                int r = 0;
                for (; r < rows; r++) d[r] = src[r][p];
                for (; r < mr; r++) d[r] = 0.0f;
            }
        } else {
            for (int64_t p = 0; p < kc; p++, d += mr) {
                const float *src = a + (p0 + p) * lda + i0 + s;
                int r = 0;
                for (; r < rows; r++) d[r] = src[r];
                for (; r < mr; r++) d[r] = 0.0f;
            }
        }
    }
}

static void pack_a(const sgemm_problem *g, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
                   float *dst) {
    pack_a_block(g->kern, g->ta, g->a, g->lda, i0, mc, p0, kc, dst);
}

/* The prepacked layout: depth blocks of KC, block p0 at p0 * round_up(m, mr);
 * inside a block, the strip of rows [i, i+mr) at i * kc, as pack_a_block
 * writes it. So the A block of rows [i0, ..) at depth p0 is one pointer. */
static const float *packed_a_at(const sgemm_problem *g, int64_t i0, int64_t p0, int64_t kc) {
    return g->packed_a + p0 * round_up(g->m, g->kern->mr) + i0 * kc;
}

/* Floats of a packed operand: `len` rows (A) or columns (B) rounded up to
 * the strip width, times the depth k; -1 on overflow. */
static int64_t packed_floats(int64_t len, int strip, int64_t k) {
    if (len < 0 || k < 0 || len > INT64_MAX / 2 - strip) return -1;
    int64_t lp = round_up(len, strip);
    if (k > 0 && lp > INT64_MAX / k) return -1;
    return lp * k;
}

int64_t onyx_sgemm_packed_a_floats(const onyx_sgemm_kernel *kern, int64_t m, int64_t k) {
    return packed_floats(m, (kern ? kern : &onyx_sgemm_kernel_generic)->mr, k);
}

void onyx_sgemm_pack_a(const onyx_sgemm_kernel *kern, bool trans_a, int64_t m, int64_t k,
                       const float *a, int64_t lda, float *dst) {
    if (!kern) kern = &onyx_sgemm_kernel_generic;
    const int64_t mp = round_up(m, kern->mr);
    for (int64_t p0 = 0; p0 < k; p0 += KC) {
        int64_t kc = min64(KC, k - p0);
        pack_a_block(kern, trans_a, a, lda, 0, m, p0, kc, dst + p0 * mp);
    }
}

void onyx_sgemm_pack_a_rows(const onyx_sgemm_kernel *kern, int64_t m, int64_t k, int64_t i0,
                            int64_t rows, const float *a, int64_t lda, float *dst) {
    if (!kern) kern = &onyx_sgemm_kernel_generic;
    const int64_t mp = round_up(m, kern->mr);
    /* Strip [i, i+mr) of depth block p0 sits at p0 * mp + i * kc, so rows
     * [i0, i0+rows) of every block are one run starting at i0 * kc. */
    for (int64_t p0 = 0; p0 < k; p0 += KC) {
        int64_t kc = min64(KC, k - p0);
        pack_a_block(kern, false, a, lda, 0, rows, p0, kc, dst + p0 * mp + i0 * kc);
    }
}

/* Packs depth [p0, p0+kc) x columns [j0, j0+nc) of op(B) into nr-wide
 * strips, zero-padding columns past n. dst: (ceil(nc/nr), kc, nr). */
static void pack_b(const sgemm_problem *g, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
                   float *dst) {
    const int nr = g->kern->nr;
    if (!g->tb) {
        /* Row by row, so each source row is read once, sequentially. */
        for (int64_t p = 0; p < kc; p++) {
            const float *src = g->b + (p0 + p) * g->ldb + j0;
            for (int64_t s = 0; s < nc; s += nr) {
                float *dp = dst + s * kc + p * nr;
                int cols = (int)min64(nr, nc - s);
                if (cols == nr) {
                    /* Constant sizes compile to a few vector moves; a
                     * variable-size copy is a libc call per row, which
                     * showed in profiles. */
                    if (nr == 8) memcpy(dp, src + s, 8 * sizeof(float));
                    else if (nr == 16) memcpy(dp, src + s, 16 * sizeof(float));
                    else if (nr == 32) memcpy(dp, src + s, 32 * sizeof(float));
                    else memcpy(dp, src + s, (size_t)nr * sizeof(float));
                } else {
                    int j = 0;
                    for (; j < cols; j++) dp[j] = src[s + j];
                    for (; j < nr; j++) dp[j] = 0.0f;
                }
            }
        }
        return;
    }
    for (int64_t s = 0; s < nc; s += nr) {
        int cols = (int)min64(nr, nc - s);
        float *d = dst + s * kc;
        for (int j = 0; j < cols; j++) {
            const float *src = g->b + (j0 + s + j) * g->ldb + p0;
            for (int64_t p = 0; p < kc; p++) d[p * nr + j] = src[p];
        }
        for (int j = cols; j < nr; j++)
            for (int64_t p = 0; p < kc; p++) d[p * nr + j] = 0.0f;
    }
}

/* Whether a last strip of `cols` columns runs on the narrow kernel, which
 * reads B in place when the full strips are (direct_b). */
static bool narrow_strip(const sgemm_problem *g, int64_t cols) {
    return cols <= ONYX_SGEMM_NARROW && g->kern->fn_narrow;
}

/* direct_b: packs only a last strip narrower than nr (the full ones are
 * read in place, and so is a strip the narrow kernel takes), at its place
 * in the panel. */
static void pack_b_tail(const sgemm_problem *g, int64_t p0, int64_t kc, int64_t j0, int64_t nc,
                        float *dst) {
    const int64_t full = nc / g->kern->nr * g->kern->nr;
    if (narrow_strip(g, nc - full)) return; /* read in place too */
    if (full < nc) pack_b(g, p0, kc, j0 + full, nc - full, dst + full * kc);
}

/* The prepacked B layout is that of the shared copy (see sgemm_drive):
 * depth blocks of KC, block p0 at p0 * round_up(n, nr); inside a block,
 * the strip of columns [j, j+nr) at j * kc, as pack_b writes it. */
int64_t onyx_sgemm_packed_b_floats(const onyx_sgemm_kernel *kern, int64_t k, int64_t n) {
    return packed_floats(n, (kern ? kern : &onyx_sgemm_kernel_generic)->nr, k);
}

void onyx_sgemm_pack_b(const onyx_sgemm_kernel *kern, bool trans_b, int64_t k, int64_t n,
                       const float *b, int64_t ldb, float *dst) {
    sgemm_problem g = {.kern = kern ? kern : &onyx_sgemm_kernel_generic, .tb = trans_b,
                       .k = k, .n = n, .b = b, .ldb = ldb};
    const int64_t np = round_up(n, g.kern->nr);
    for (int64_t p0 = 0; p0 < k; p0 += KC) pack_b(&g, p0, min64(KC, k - p0), 0, n, dst + p0 * np);
}

// ----------------------------------------------------------------------------
// Blocked driver

/* One register tile of macro_kernel: rows [is, is+mr) x the strip of
 * columns [js, js+nr) of the block (fewer at its edges). */
static inline __attribute__((always_inline)) void macro_tile(
    const sgemm_problem *g, const float *pa, const float *pb, const float *bd, int64_t kc,
    int64_t i0, int64_t mc, int64_t j0, int64_t nc, int64_t is, int64_t js, float beta, bool epi,
    float *tile) {
    const int mr = g->kern->mr, nr = g->kern->nr;
    const float alpha = g->alpha;
    const int cols = (int)min64(nr, nc - js), rows = (int)min64(mr, mc - is);
    const float *as = pa + is * kc, *bs = pb + js * kc;
    float *c = g->c + (i0 + is) * g->ldc + j0 + js;
    const float *sum = epi && g->sum ? g->sum + (i0 + is) * g->lds + j0 + js : NULL;
    onyx_sgemm_epi e = {epi && g->bias ? g->bias + i0 + is : NULL, epi ? g->act : NULL,
                        beta != 0.0f, sum, g->lds, rows};
    if (bd && cols == nr) {
        g->kern->fn_epi_ldb(kc, as, bd + js, g->ldb, c, g->ldc, &e);
        return;
    }
    if (narrow_strip(g, cols)) {
        g->kern->fn_narrow(kc, as, bd ? bd + js : bs, bd ? g->ldb : nr, cols, rows, c, g->ldc,
                           alpha, beta, epi ? &e : NULL);
        return;
    }
    /* A narrow last strip runs on the half-width kernels when present. */
    const bool half = 2 * cols <= nr && g->kern->fn_half && g->kern->fn_half_epi;
    const int width = half ? nr / 2 : nr;
    onyx_sgemm_ukernel_fn fn = half ? g->kern->fn_half : g->kern->fn;
    onyx_sgemm_ukernel_epi_fn fn_epi = half ? g->kern->fn_half_epi : g->kern->fn_epi;
    if (epi) {
        if (cols == width && (rows == mr || g->kern->epi_rows)) {
            fn_epi(kc, as, bs, c, g->ldc, &e);
            return;
        }
        e.rows = mr;
        float bias[ONYX_SGEMM_MAX_MR] = {0};
        if (e.bias)
            for (int i = 0; i < rows; i++) bias[i] = e.bias[i];
        e.bias = g->bias ? bias : NULL;
        /* The addend of a partial tile, padded like the tile. */
        float stile[ONYX_SGEMM_MAX_MR * ONYX_SGEMM_MAX_NR];
        if (sum) {
            for (int i = 0; i < mr; i++)
                for (int j = 0; j < width; j++)
                    stile[i * nr + j] = i < rows && j < cols ? sum[i * g->lds + j] : 0.0f;
            e.sum = stile;
            e.lds = nr;
        }
        if (e.accumulate)
            for (int i = 0; i < mr; i++)
                for (int j = 0; j < width; j++)
                    tile[i * nr + j] = i < rows && j < cols ? c[i * g->ldc + j] : 0.0f;
        fn_epi(kc, as, bs, tile, nr, &e);
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) c[i * g->ldc + j] = tile[i * nr + j];
        return;
    }
    if (rows == mr && cols == width) {
        fn(kc, as, bs, c, g->ldc, alpha, beta);
        return;
    }
    fn(kc, as, bs, tile, nr, 1.0f, 0.0f);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            float v = alpha * tile[i * nr + j];
            c[i * g->ldc + j] = beta == 0.0f ? v : v + beta * c[i * g->ldc + j];
        }
}

/* B panels up to this many bytes are walked a row strip at a time (see
 * macro_kernel); products at most SHALLOW_K deep get column blocks that
 * narrow (sgemm_drive). Both measured on ResNet-50, SqueezeNet, MobileNetV2
 * and EfficientNet-B0 with runs of each setting alternating in one process:
 * 4-8% lower mean latency while the machine's memory path is busy, the
 * same minimum. */
#define ROWS_FIRST_PANEL ((int64_t)128 << 10)
#define SHALLOW_K 160

/* Asks for the next `count` cache lines (16 floats) of the n floats at p,
 * from line *line on, toward L2. */
static inline void prefetch_lines(const float *p, int64_t n, int64_t count, int64_t *line) {
    for (int64_t q = 0; q < count && *line * 16 < n; q++, ++*line)
        __builtin_prefetch(p + *line * 16, 0, 2);
}

/* Multiplies the packed blocks into C[i0.., j0..] (mc x nc), scaling the
 * old C by `beta`; on the last depth block with a fused epilogue (`last`),
 * finishes each tile with bias and activation (old C kept when beta != 0).
 * With `bd` (direct_b: B's rows of this depth block from column j0), full
 * strips are read there and only a last narrow one from pb.
 * Order: each B strip is reused from L1 by all row strips (the A block is
 * read from L2), except when the B panel is small enough to stay in L2 (a
 * shallow product: a stem convolution, a 1x1 one with few inputs): then
 * each A strip is reused by all B strips, so that C is written a row strip
 * at a time, mr sequential streams, instead of all mc rows at once, whose
 * many concurrent streams the prefetchers cannot follow.
 * `next` (next_floats, or NULL): the packed panel read after this one,
 * prefetched a few lines after each tile, so that a prepacked B streamed
 * from memory (a transformer's weights, read once per run) arrives while
 * this panel is computed. */
static void macro_kernel(const sgemm_problem *g, const float *pa, const float *pb,
                         const float *bd, int64_t kc, int64_t i0, int64_t mc, int64_t j0,
                         int64_t nc, float beta, bool last, float *tile, const float *next,
                         int64_t next_floats) {
    const int mr = g->kern->mr, nr = g->kern->nr;
    const bool epi = last && g->fused && g->kern->fn_epi;
    const int64_t tiles = ((mc + mr - 1) / mr) * ((nc + nr - 1) / nr);
    const int64_t per_tile = next ? (next_floats / 16 + tiles - 1) / tiles : 0;
    int64_t line = 0;
    if (kc * nc * (int64_t)sizeof(float) <= ROWS_FIRST_PANEL) {
        for (int64_t is = 0; is < mc; is += mr)
            for (int64_t js = 0; js < nc; js += nr) {
                macro_tile(g, pa, pb, bd, kc, i0, mc, j0, nc, is, js, beta, epi, tile);
                prefetch_lines(next, next_floats, per_tile, &line);
            }
    } else {
        for (int64_t js = 0; js < nc; js += nr)
            for (int64_t is = 0; is < mc; is += mr) {
                macro_tile(g, pa, pb, bd, kc, i0, mc, j0, nc, is, js, beta, epi, tile);
                prefetch_lines(next, next_floats, per_tile, &line);
            }
    }
    if (last && g->fused && !g->kern->fn_epi)
        bias_act_rows(g->c + i0 * g->ldc + j0, g->ldc, mc, nc, g->bias ? g->bias + i0 : NULL,
                      g->sum ? g->sum + i0 * g->lds + j0 : NULL, g->lds, g->act);
}

/* Tasks are tiles t = jb * m_tiles + ib; a chunk [begin, end) of them shares
 * each packed B panel among its consecutive tiles of the same column block.
 * A block of C gets its epilogue right after its last depth step. */
static void sgemm_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const sgemm_problem *g = ctx;
    float *pa = g->work + (int64_t)thread * g->work_stride;
    int64_t kc_max = min64(g->k, KC);
    float *pb = pa + a_block_floats(g->m, g->k);
    float *tile = pb + round_up((min64(g->n, NC) + ONYX_SGEMM_MAX_NR) * kc_max, 16);
    const int64_t mc_full = g->mc;

    int64_t t = begin;
    while (t < end) {
        int64_t jb = t / g->m_tiles;
        int64_t ib_first = t % g->m_tiles;
        int64_t ib_last = min64(g->m_tiles, ib_first + (end - t)); /* exclusive */
        int64_t j0 = jb * g->nt, nc = min64(g->nt, g->n - j0);
        for (int64_t p0 = 0; p0 < g->k; p0 += KC) {
            int64_t kc = min64(KC, g->k - p0);
            float beta = p0 == 0 ? g->beta : 1.0f;
            const float *bs = pb;
            if (g->packed_b) bs = g->packed_b + p0 * g->npad + j0 * kc;
            else if (g->pack_b) g->pack_b(g->pack_b_ctx, p0, kc, j0, nc, g->kern->nr, pb);
            else if (g->direct_b) pack_b_tail(g, p0, kc, j0, nc, pb);
            else pack_b(g, p0, kc, j0, nc, pb);
            const float *bd = g->direct_b ? g->b + p0 * g->ldb + j0 : NULL;
            bool last = p0 + kc >= g->k;
            for (int64_t ib = ib_first; ib < ib_last; ib++) {
                int64_t i0 = ib * mc_full, mc = min64(mc_full, g->m - i0);
                const float *as = pa;
                if (g->packed_a) as = packed_a_at(g, i0, p0, kc);
                else pack_a(g, i0, mc, p0, kc, pa);
                macro_kernel(g, as, bs, bd, kc, i0, mc, j0, nc, beta, last, tile, NULL, 0);
                if (last && g->epilogue)
                    g->epilogue(g->epilogue_ctx, g->c + i0 * g->ldc + j0, g->ldc, i0, mc, j0, nc);
            }
        }
        t += ib_last - ib_first;
    }
}

// ----------------------------------------------------------------------------
// Matrix-vector paths (m == 1 or n == 1)

/* y[r*ys] = alpha * sum_p X[r*xr + p*xp] * v[p*vs] + beta*y[r*ys] for r in
 * [0, rows). Chooses dot products when X rows are contiguous and axpy
 * sweeps when X columns are. */
typedef struct gemv_problem {
    int64_t rows, k;
    const float *x;
    int64_t xr, xp;
    const float *v;
    int64_t vs;
    float *y;
    int64_t ys;
    float alpha, beta;
} gemv_problem;

static float dot_strided(const float *x, const float *v, int64_t vs, int64_t k) {
    if (vs == 1) {
        /* Eight partial sums so the compiler can vectorize without
         * reassociating a single accumulator. */
        float s[8] = {0};
        int64_t p = 0;
        for (; p + 8 <= k; p += 8)
            for (int q = 0; q < 8; q++) s[q] += x[p + q] * v[p + q];
        float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
        for (; p < k; p++) r += x[p] * v[p];
        return r;
    }
    float r = 0.0f;
    for (int64_t p = 0; p < k; p++) r += x[p] * v[p * vs];
    return r;
}

static void gemv_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const gemv_problem *g = ctx;
    (void)thread;
    if (g->xp == 1) {
        for (int64_t r = begin; r < end; r++) {
            float d = g->alpha * dot_strided(g->x + r * g->xr, g->v, g->vs, g->k);
            float *y = g->y + r * g->ys;
            *y = g->beta == 0.0f ? d : d + g->beta * *y;
        }
        return;
    }
    /* Columns of X are contiguous along r (xr == 1): sweep y once per p. */
    for (int64_t r = begin; r < end; r++) {
        float *y = g->y + r * g->ys;
        *y = g->beta == 0.0f ? 0.0f : g->beta * *y;
    }
    if (g->ys == 1) {
        float *y = g->y;
        for (int64_t p = 0; p < g->k; p++) {
            float s = g->alpha * g->v[p * g->vs];
            const float *x = g->x + p * g->xp;
            for (int64_t r = begin; r < end; r++) y[r] += s * x[r];
        }
    } else {
        for (int64_t p = 0; p < g->k; p++) {
            float s = g->alpha * g->v[p * g->vs];
            const float *x = g->x + p * g->xp;
            for (int64_t r = begin; r < end; r++) g->y[r * g->ys] += s * x[r * g->xr];
        }
    }
}

static void run_parallel(const onyx_parallel *par, int64_t n, int64_t grain, onyx_task_fn fn,
                         void *ctx, int64_t macs) {
    if (!par || !par->run || par->threads <= 1 || macs < PARALLEL_MIN_MACS) {
        fn(ctx, 0, n, 0);
        return;
    }
    par->run(par->ctx, n, grain, fn, ctx);
}

static void sgemv(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                  const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                  float *c, int64_t ldc, const onyx_parallel *par) {
    gemv_problem g = {.k = k, .alpha = alpha, .beta = beta};
    if (m == 1) {
        /* y = C row 0 over j; X(j, p) = op(B)(p, j); v = op(A)(0, p). */
        g.rows = n;
        g.x = b;
        g.xr = tb ? ldb : 1;
        g.xp = tb ? 1 : ldb;
        g.v = a;
        g.vs = ta ? lda : 1;
        g.y = c;
        g.ys = 1;
    } else {
        /* y = C column 0 over i; X(i, p) = op(A)(i, p); v = op(B)(p, 0). */
        g.rows = m;
        g.x = a;
        g.xr = ta ? 1 : lda;
        g.xp = ta ? lda : 1;
        g.v = b;
        g.vs = tb ? 1 : ldb;
        g.y = c;
        g.ys = ldc;
    }
    int64_t grain = g.xp == 1 ? 16 : 256;
    run_parallel(par, g.rows, grain, gemv_task, &g, m * n * k);
}

// ----------------------------------------------------------------------------
// Entry points

static void scale_c(int64_t m, int64_t n, float beta, float *c, int64_t ldc) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
}

/* Threads take whole column blocks: no two pack the same part of B. */
static void column_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const sgemm_problem *g = ctx;
    sgemm_task(ctx, begin * g->m_tiles, end * g->m_tiles, thread);
}

/* Shared mode, step 1: tasks (p0 block, column chunk) pack B once. */
static void shared_pack_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const sgemm_problem *g = ctx;
    (void)thread;
    const int64_t chunks = (g->n + g->pack_nc - 1) / g->pack_nc;
    for (int64_t t = begin; t < end; t++) {
        int64_t p0 = t / chunks * KC, j0 = t % chunks * g->pack_nc;
        int64_t kc = min64(KC, g->k - p0), nc = min64(g->pack_nc, g->n - j0);
        float *dst = g->shared_b + p0 * g->npad + j0 * kc;
        if (g->pack_b) g->pack_b(g->pack_b_ctx, p0, kc, j0, nc, g->kern->nr, dst);
        else pack_b(g, p0, kc, j0, nc, dst);
    }
}

/* Shared mode, step 2: tiles t = jb * m_tiles + ib over the packed B. */
static void shared_compute_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const sgemm_problem *g = ctx;
    float *pa = g->work + (int64_t)thread * g->work_stride;
    int64_t kc_max = min64(g->k, KC);
    float *tile = pa + a_block_floats(g->m, g->k) +
                  round_up((min64(g->n, NC) + ONYX_SGEMM_MAX_NR) * kc_max, 16);
    const int64_t mc_full = g->mc;
    for (int64_t t = begin; t < end; t++) {
        int64_t jb = t / g->m_tiles, ib = t % g->m_tiles;
        int64_t j0 = jb * g->nt, nc = min64(g->nt, g->n - j0);
        int64_t i0 = ib * mc_full, mc = min64(mc_full, g->m - i0);
        for (int64_t p0 = 0; p0 < g->k; p0 += KC) {
            int64_t kc = min64(KC, g->k - p0);
            bool last = p0 + kc >= g->k;
            const float *as = pa;
            if (g->packed_a) as = packed_a_at(g, i0, p0, kc);
            else pack_a(g, i0, mc, p0, kc, pa);
            macro_kernel(g, as, g->shared_b + p0 * g->npad + j0 * kc, NULL, kc, i0, mc, j0, nc,
                         p0 == 0 ? g->beta : 1.0f, last, tile, NULL, 0);
            if (last && g->epilogue)
                g->epilogue(g->epilogue_ctx, g->c + i0 * g->ldc + j0, g->ldc, i0, mc, j0, nc);
        }
    }
}

/* Over a prepacked B, rows are taken PB_ROWS at a time, their A packed
 * once for every depth block into a chunk buffer (pb_a_floats); then C is
 * computed in column blocks of PB_COLS, each finished over all depth blocks
 * while it sits in L2 (with the A chunk), every B strip read once per row
 * chunk and reused from L1 by all of the chunk's row tiles. With several
 * threads, they share the chunk and take column blocks. */
typedef struct pb_chunk {
    const sgemm_problem *g;
    float *pa;           /* the packed A chunk, depth block p0 at pa + p0 * mp */
    int64_t i0, mc, mp;  /* rows [i0, i0+mc) of C; mp = mc rounded up to mr */
    int64_t cols;        /* columns per block (PB_COLS rounded up to nr) */
} pb_chunk;

/* Depth blocks [begin, end) of the chunk's A. */
static void pb_pack_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const pb_chunk *c = ctx;
    const sgemm_problem *g = c->g;
    (void)thread;
    for (int64_t b = begin; b < end; b++) {
        int64_t p0 = b * KC;
        pack_a_block(g->kern, g->ta, g->a, g->lda, c->i0, c->mc, p0, min64(KC, g->k - p0),
                     c->pa + p0 * c->mp);
    }
}

/* Column blocks [begin, end) of the chunk's rows of C. */
static void pb_cols_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const pb_chunk *c = ctx;
    const sgemm_problem *g = c->g;
    float *tile = g->work + (int64_t)thread * g->work_stride + a_block_floats(g->m, g->k) +
                  round_up((min64(g->n, NC) + ONYX_SGEMM_MAX_NR) * min64(g->k, KC), 16);
    for (int64_t b = begin; b < end; b++) {
        const int64_t j0 = b * c->cols, nc = min64(c->cols, g->n - j0);
        for (int64_t p0 = 0; p0 < g->k; p0 += KC) {
            const int64_t kc = min64(KC, g->k - p0);
            const float *as = g->packed_a ? packed_a_at(g, c->i0, p0, kc) : c->pa + p0 * c->mp;
            /* The panel read next: this column block's next depth block, or
             * the next column block's first. */
            const float *next = NULL;
            int64_t next_floats = 0;
            if (p0 + kc < g->k) {
                int64_t kn = min64(KC, g->k - p0 - kc);
                next = g->packed_b + (p0 + kc) * g->npad + j0 * kn;
                next_floats = kn * round_up(nc, g->kern->nr);
            } else if (b + 1 < end) {
                int64_t j1 = j0 + c->cols, kn = min64(KC, g->k);
                next = g->packed_b + j1 * kn;
                next_floats = kn * round_up(min64(c->cols, g->n - j1), g->kern->nr);
            }
            macro_kernel(g, as, g->packed_b + p0 * g->npad + j0 * kc, NULL, kc, c->i0, c->mc,
                         j0, nc,
                         p0 == 0 ? g->beta : 1.0f, p0 + kc >= g->k, tile, next, next_floats);
        }
        if (g->epilogue)
            g->epilogue(g->epilogue_ctx, g->c + c->i0 * g->ldc + j0, g->ldc, c->i0, c->mc, j0,
                        nc);
    }
}

/* The C twin of onyx_sgemm_ukernel_row_fn, for any nr. */
static void row_generic(int nr, int64_t kc, const float *restrict a, const float *restrict b,
                        int64_t strips, float *restrict y, bool accumulate) {
    for (int64_t s = 0; s < strips; s++) {
        const float *bs = b + s * kc * nr;
        float *ys = y + s * nr;
        float acc[ONYX_SGEMM_MAX_NR];
        for (int j = 0; j < nr; j++) acc[j] = accumulate ? ys[j] : 0.0f;
        for (int64_t p = 0; p < kc; p++)
            for (int j = 0; j < nr; j++) acc[j] += a[p] * bs[p * nr + j];
        for (int j = 0; j < nr; j++) ys[j] = acc[j];
    }
}

static void row_strips(const onyx_sgemm_kernel *kern, int64_t kc, const float *a,
                       const float *b, int64_t strips, float *y, bool accumulate) {
    if (kern->fn_row)
        kern->fn_row(kc, a, b, strips, y, accumulate);
    else
        row_generic(kern->nr, kc, a, b, strips, y, accumulate);
}

/* The m = 1 product over a prepacked B: row_task computes the columns of
 * groups [begin, end) of ROW_GROUP strips each, over all depth blocks,
 * then their epilogue; a last strip past n goes through a bounce row. */
#define ROW_GROUP 4
typedef struct row_problem {
    const sgemm_problem *g;
    const float *a; /* op(A)'s row, contiguous */
} row_problem;

static void row_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const row_problem *r = ctx;
    const sgemm_problem *g = r->g;
    const int nr = g->kern->nr;
    (void)thread;
    for (int64_t grp = begin; grp < end; grp++) {
        const int64_t j0 = grp * ROW_GROUP * nr, nc = min64(ROW_GROUP * nr, g->n - j0);
        const int64_t full = nc / nr, tail = nc - full * nr;
        float bounce[ONYX_SGEMM_MAX_NR];
        for (int64_t p0 = 0; p0 < g->k; p0 += KC) {
            const int64_t kc = min64(KC, g->k - p0);
            const float *b = g->packed_b + p0 * g->npad + j0 * kc;
            if (full) row_strips(g->kern, kc, r->a + p0, b, full, g->c + j0, p0 > 0);
            if (tail) row_strips(g->kern, kc, r->a + p0, b + full * nr * kc, 1, bounce, p0 > 0);
        }
        for (int64_t j = 0; j < tail; j++) g->c[j0 + full * nr + j] = bounce[j];
        if (g->fused)
            bias_act_rows(g->c + j0, g->ldc, 1, nc, g->bias, g->sum ? g->sum + j0 : NULL, g->lds,
                          g->act);
        if (g->epilogue) g->epilogue(g->epilogue_ctx, g->c + j0, g->ldc, 0, 1, j0, nc);
    }
}

/* op(A)'s single row, gathered into `row` when A is transposed. */
static void packed_b_row(const sgemm_problem *g, const onyx_parallel *par, float *row) {
    const float *a = g->a;
    if (g->ta) {
        for (int64_t p = 0; p < g->k; p++) row[p] = g->a[p * g->lda];
        a = row;
    }
    row_problem r = {g, a};
    const int64_t groups = (g->n + ROW_GROUP * g->kern->nr - 1) / (ROW_GROUP * g->kern->nr);
    run_parallel(par, groups, 1, row_task, &r, par ? g->n * g->k : 0);
}

static void packed_b_drive(const sgemm_problem *g, const onyx_parallel *par, float *pa) {
    if (g->m == 1 && !g->packed_a && g->alpha == 1.0f && g->beta == 0.0f) {
        packed_b_row(g, par, pa);
        return;
    }
    const int mr = g->kern->mr;
    const int64_t rows_full = round_up(PB_ROWS, mr);
    const int64_t macs = par ? g->m * g->n * g->k : 0;
    for (int64_t i0 = 0; i0 < g->m; i0 += rows_full) {
        const int64_t mc = min64(rows_full, g->m - i0);
        pb_chunk c = {g, pa, i0, mc, round_up(mc, mr), round_up(PB_COLS, g->kern->nr)};
        if (!g->packed_a) run_parallel(par, (g->k + KC - 1) / KC, 1, pb_pack_task, &c, macs);
        run_parallel(par, (g->n + c.cols - 1) / c.cols, 1, pb_cols_task, &c, macs);
    }
}

/* Splits C into tasks and runs them; g has its operands set. One thread
 * walks the column blocks in order, packing each B panel once. Several
 * threads take whole column blocks when there are enough of them;
 * otherwise they pack all of B once, together, into a shared buffer and
 * then split C finely over it (for a few columns, a split over rows alone
 * would have every thread pack the same B panel). */
/* Column tiles narrow enough for about 4 tasks per thread. */
static void narrow_columns(sgemm_problem *g, int threads) {
    int64_t want = 4 * (int64_t)threads;
    int64_t n_tiles = (want + g->m_tiles - 1) / g->m_tiles;
    int64_t w = round_up((g->n + n_tiles - 1) / n_tiles, g->kern->nr);
    g->nt = w < g->nt ? w : g->nt;
}

static void sgemm_drive(sgemm_problem *g, const onyx_parallel *par, int threads, void *work) {
    ONYX_ASSERT(g->kern->mr <= ONYX_SGEMM_MAX_MR && g->kern->nr <= ONYX_SGEMM_MAX_NR);
    const int64_t m = g->m, n = g->n, k = g->k, nr = g->kern->nr;
    g->mc = round_up(MC, g->kern->mr);
    g->m_tiles = (m + g->mc - 1) / g->mc;
    g->work = work;
    g->work_stride = thread_floats(m, n, k);
    g->nt = round_up(min64(n, NC), nr);
    /* A shallow product writes C quickly: narrower column blocks keep its B
     * panel small enough for macro_kernel to walk it a row strip at a time. */
    if (k <= SHALLOW_K) {
        int64_t w = ROWS_FIRST_PANEL / (k * (int64_t)sizeof(float)) / nr * nr;
        if (w >= nr && w < g->nt) g->nt = w;
    }
    const int64_t n_blocks = (n + g->nt - 1) / g->nt;
    const int64_t macs = threads > 1 ? m * n * k : 0;
    if (g->packed_b) {
        g->npad = round_up(n, nr);
        packed_b_drive(g, threads > 1 ? par : NULL, g->work + pb_a_offset(m, n, k, threads));
        return;
    }
    /* A B panel that only one row tile would read is not worth packing: its
     * full strips are read in place (a 1x1 convolution with few outputs). */
    g->direct_b = !g->pack_b && !g->tb && g->kern->fn_epi_ldb && g->alpha == 1.0f &&
                  g->beta == 0.0f && g->m_tiles == 1;
    if (threads <= 1 || macs < PARALLEL_MIN_MACS) {
        run_parallel(NULL, g->m_tiles * n_blocks, 1, sgemm_task, g, 0);
        return;
    }
    if (g->direct_b) {
        narrow_columns(g, threads);
        run_parallel(par, (n + g->nt - 1) / g->nt, 1, sgemm_task, g, macs);
        return;
    }
    if (n_blocks >= 2 * (int64_t)threads) {
        run_parallel(par, n_blocks, 1, column_task, g, macs);
        return;
    }
    if (shared_b_floats(n, k, threads) > 0) {
        g->shared_b = g->work + g->work_stride * threads;
        g->npad = round_up(n, nr);
        g->pack_nc = round_up(min64(n, 256), nr);
        int64_t packs = ((k + KC - 1) / KC) * ((n + g->pack_nc - 1) / g->pack_nc);
        run_parallel(par, packs, 1, shared_pack_task, g, macs);
        narrow_columns(g, threads);
        int64_t tiles = g->m_tiles * ((n + g->nt - 1) / g->nt);
        run_parallel(par, tiles, 1, shared_compute_task, g, macs);
        return;
    }
    run_parallel(par, g->m_tiles * n_blocks, 1, sgemm_task, g, macs);
}

static void sgemm_run(const onyx_sgemm_kernel *kern, bool ta, bool tb, int64_t m, int64_t n,
                      int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                      int64_t ldb, float beta, float *c, int64_t ldc, const onyx_parallel *par,
                      int threads, void *work) {
    sgemm_problem g = {.kern = kern ? kern : &onyx_sgemm_kernel_generic,
                       .ta = ta, .tb = tb, .m = m, .n = n, .k = k,
                       .alpha = alpha, .beta = beta, .a = a, .b = b, .c = c,
                       .lda = lda, .ldb = ldb, .ldc = ldc};
    sgemm_drive(&g, par, threads, work);
}

static sgemm_problem problem_of(const onyx_sgemm_kernel *kern, const onyx_sgemm_op *op) {
    sgemm_problem g = {.kern = kern ? kern : &onyx_sgemm_kernel_generic,
                       .ta = op->trans_a, .tb = op->trans_b, .m = op->m, .n = op->n,
                       .k = op->k, .alpha = 1.0f, .beta = 0.0f, .a = op->a, .b = op->b,
                       .c = op->c, .lda = op->lda, .ldb = op->ldb, .ldc = op->ldc,
                       .packed_a = op->packed_a, .pack_b = op->pack_b,
                       .pack_b_ctx = op->pack_b_ctx, .packed_b = op->packed_b,
                       .bias = op->bias, .act = op->act, .sum = op->sum, .lds = op->lds,
                       .fused = op->bias || op->sum ||
                                (op->act && op->act->kind != ONYX_ACT_NONE),
                       .epilogue = op->epilogue, .epilogue_ctx = op->epilogue_ctx};
    return g;
}

/* k == 0: C = 0, then the epilogues over all of C. */
static void run_empty(const onyx_sgemm_op *op) {
    scale_c(op->m, op->n, 0.0f, op->c, op->ldc);
    bias_act_rows(op->c, op->ldc, op->m, op->n, op->bias, op->sum, op->lds, op->act);
    if (op->epilogue) op->epilogue(op->epilogue_ctx, op->c, op->ldc, 0, op->m, 0, op->n);
}

size_t onyx_sgemm_run_workspace(int64_t m, int64_t n, int64_t k, int threads) {
    if (m <= 0 || n <= 0 || k <= 0) return 0;
    return workspace_bytes(m, n, k, threads);
}

size_t onyx_sgemm_packed_b_workspace(int64_t m, int64_t n, int64_t k, int threads) {
    if (m <= 0 || n <= 0 || k <= 0) return 0;
    return (size_t)(pb_a_offset(m, n, k, threads) + pb_a_floats(m, k)) * sizeof(float);
}

void onyx_sgemm_run_serial(const onyx_sgemm_kernel *kern, const onyx_sgemm_op *op, void *work) {
    if (op->m <= 0 || op->n <= 0) return;
    if (op->k <= 0) {
        run_empty(op);
        return;
    }
    sgemm_problem g = problem_of(kern, op);
    sgemm_drive(&g, NULL, 1, work);
}

onyx_status onyx_sgemm_run(const onyx_sgemm_kernel *kern, const onyx_sgemm_op *op,
                           const onyx_parallel *par, void *work) {
    if (op->m <= 0 || op->n <= 0) return ONYX_OK;
    if (op->k <= 0) {
        run_empty(op);
        return ONYX_OK;
    }
    int threads = par && par->run && par->threads > 1 ? par->threads : 1;
    void *own = NULL;
    if (!work) {
        own = malloc(op->packed_b ? onyx_sgemm_packed_b_workspace(op->m, op->n, op->k, threads)
                                  : onyx_sgemm_run_workspace(op->m, op->n, op->k, threads));
        if (!own) return ONYX_ERR_OUT_OF_MEMORY;
        work = own;
    }
    sgemm_problem g = problem_of(kern, op);
    sgemm_drive(&g, threads > 1 ? par : NULL, threads, work);
    free(own);
    return ONYX_OK;
}

void onyx_sgemm_serial(const onyx_sgemm_kernel *kern, bool trans_a, bool trans_b, int64_t m,
                       int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                       const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                       void *work) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0 || alpha == 0.0f) {
        scale_c(m, n, beta, c, ldc);
        return;
    }
    if (is_gemv(m, n)) {
        sgemv(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL);
        return;
    }
    sgemm_run(kern, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, NULL, 1,
              work);
}

onyx_status onyx_sgemm(const onyx_sgemm_kernel *kern, bool trans_a, bool trans_b, int64_t m,
                       int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                       const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                       const onyx_parallel *par, void *work) {
    if (m <= 0 || n <= 0) return ONYX_OK;
    if (k <= 0 || alpha == 0.0f) {
        scale_c(m, n, beta, c, ldc);
        return ONYX_OK;
    }
    if (is_gemv(m, n)) {
        sgemv(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, par);
        return ONYX_OK;
    }
    int threads = par && par->run && par->threads > 1 ? par->threads : 1;
    void *own = NULL;
    if (!work) {
        own = malloc(onyx_sgemm_workspace(m, n, k, threads));
        if (!own) return ONYX_ERR_OUT_OF_MEMORY;
        work = own;
    }
    sgemm_run(kern, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc,
              threads > 1 ? par : NULL, threads, work);
    free(own);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Double precision

typedef struct dgemm_problem {
    bool ta, tb;
    int64_t n, k;
    double alpha, beta;
    const double *a, *b;
    double *c;
    int64_t lda, ldb, ldc;
} dgemm_problem;

/* Rows [begin, end) of C: scale by beta, then accumulate alpha*A(i,p)*B(p,:)
 * (an axpy over contiguous rows of B when B is not transposed). */
static void dgemm_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const dgemm_problem *g = ctx;
    (void)thread;
    for (int64_t i = begin; i < end; i++) {
        double *c = g->c + i * g->ldc;
        for (int64_t j = 0; j < g->n; j++) c[j] = g->beta == 0.0 ? 0.0 : g->beta * c[j];
        for (int64_t p = 0; p < g->k; p++) {
            double s = g->alpha * (g->ta ? g->a[p * g->lda + i] : g->a[i * g->lda + p]);
            if (!g->tb) {
                const double *b = g->b + p * g->ldb;
                for (int64_t j = 0; j < g->n; j++) c[j] += s * b[j];
            } else {
                const double *b = g->b + p;
                for (int64_t j = 0; j < g->n; j++) c[j] += s * b[j * g->ldb];
            }
        }
    }
}

void onyx_dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                double *c, int64_t ldc, const onyx_parallel *par) {
    if (m <= 0 || n <= 0) return;
    if (k < 0) k = 0;
    dgemm_problem g = {trans_a, trans_b, n, k, alpha, beta, a, b, c, lda, ldb, ldc};
    int64_t grain = n * k > 0 ? 1 + PARALLEL_MIN_MACS / (n * k) : m;
    run_parallel(par, m, grain, dgemm_task, &g, m * n * k);
}
