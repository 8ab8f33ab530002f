/* gemm.h - general matrix multiply for the operators: C = alpha*op(A)*op(B) + beta*C.
 *
 * Owns: the cache-blocked single-precision driver (packing, tiling, parallel
 * split, fused bias + activation epilogues), the micro-kernel boundary that
 * ISA variants plug into, and a plain double-precision GEMM. Does not own: choosing an ISA (dispatch), threads
 * (callers pass a parallel-for), or operator semantics (src/ops/matmul.c).
 *
 * Shapes are GEMM M/N/K: op(A) is M x K, op(B) is K x N, C is M x N. Every
 * matrix is row-major with a row stride (lda, ldb, ldc, in elements); op(X)
 * is X or its transpose. When beta == 0, C is not read (NaNs in C vanish),
 * as in BLAS.
 */
#ifndef ONYX_GEMM_H
#define ONYX_GEMM_H

#include "base/pool.h"
#include "core/op.h"
#include "onyx.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------- */
/* Parallel-for, supplied by the caller so kernels/ does not depend on core/ */

/* Runs fn over [0, n) in chunks of at least `grain`, with thread indices in
 * [0, threads); returns when all items are done (onyx_pool_run's contract). */
typedef void (*onyx_parallel_fn)(void *par_ctx, int64_t n, int64_t grain, onyx_task_fn fn,
                                 void *ctx);

typedef struct onyx_parallel {
    onyx_parallel_fn run; /* NULL: everything runs inline on thread 0 */
    void *ctx;            /* passed as par_ctx */
    int threads;          /* upper bound of the thread index handed to tasks */
} onyx_parallel;

/* ---------------------------------------------------------------------- */
/* Micro-kernel boundary                                                   */

/* Computes one mr x nr register tile over kc steps from packed panels:
 *   a: (kc, mr)  - column p of the A strip is a[p*mr .. p*mr+mr)
 *   b: (kc, nr)  - row p of the B strip is b[p*nr .. p*nr+nr)
 * and stores c[i*ldc + j] = alpha*acc[i][j] + beta*c[i*ldc + j] for the full
 * tile (c not read when beta == 0). The driver handles partial tiles. */
typedef void (*onyx_sgemm_ukernel_fn)(int64_t kc, const float *a, const float *b, float *c,
                                      int64_t ldc, float alpha, float beta);

/* The fused epilogue of a micro-kernel call: c = act(acc + bias[i] +
 * sum[i*lds + j]), or act(c + acc + ...) when `accumulate` (a later depth
 * block). */
typedef struct onyx_sgemm_epi {
    const float *bias;   /* mr values, the tile's rows; NULL: none */
    const onyx_act *act; /* NULL or ONYX_ACT_NONE: none */
    bool accumulate;
    const float *sum;    /* the tile's (mr, nr) addend, row stride lds; NULL: none */
    int64_t lds;
    /* Rows of the tile that exist (1..mr): rows past it are neither read
     * (c, bias, sum) nor stored. Only kernels with epi_rows honour it; the
     * driver passes mr to the others. */
    int rows;
} onyx_sgemm_epi;

/* The same product as onyx_sgemm_ukernel_fn with alpha 1, finished by the
 * epilogue while the tile is in registers. */
typedef void (*onyx_sgemm_ukernel_epi_fn)(int64_t kc, const float *a, const float *b, float *c,
                                          int64_t ldc, const onyx_sgemm_epi *epi);

/* onyx_sgemm_ukernel_epi_fn over an unpacked B: row p of the strip is
 * b[p*ldb .. p*ldb+nr), all nr columns present. */
typedef void (*onyx_sgemm_ukernel_epi_ldb_fn)(int64_t kc, const float *a, const float *b,
                                              int64_t ldb, float *c, int64_t ldc,
                                              const onyx_sgemm_epi *epi);

/* A last strip of `cols` <= ONYX_SGEMM_NARROW columns (rows p of the strip
 * at b + p*ldb), vectorized along the tile's rows instead of its columns:
 * one multiply-add per column and depth, where a narrow strip on the
 * column-vectorized kernels costs as much as half a full one. Stores rows
 * [0, rows) only. With `epi` it finishes the tile as fn_epi does (alpha 1,
 * beta unused), else c = alpha*acc + beta*c as fn does. */
#define ONYX_SGEMM_NARROW 4
typedef void (*onyx_sgemm_ukernel_narrow_fn)(int64_t kc, const float *a, const float *b,
                                             int64_t ldb, int cols, int rows, float *c,
                                             int64_t ldc, float alpha, float beta,
                                             const onyx_sgemm_epi *epi);

/* One row of A against `strips` consecutive packed strips of one depth
 * block (strip s at b + s*kc*nr, row p of it at + p*nr): y[j] = sum over p
 * of a[p] * b[p*nr + j] for j < strips*nr, added to y when `accumulate`. */
typedef void (*onyx_sgemm_ukernel_row_fn)(int64_t kc, const float *a, const float *b,
                                          int64_t strips, float *y, bool accumulate);

typedef struct onyx_sgemm_kernel {
    const char *name; /* "generic", "avx2", ... */
    int mr, nr;       /* register tile; mr <= ONYX_SGEMM_MAX_MR, nr <= ONYX_SGEMM_MAX_NR */
    onyx_sgemm_ukernel_fn fn;
    onyx_sgemm_ukernel_epi_fn fn_epi; /* NULL: the driver applies bias/act after fn */
    /* Optional narrow twins for a last strip of at most nr/2 columns: the
     * same packed strips (nr wide), only the first nr/2 columns computed
     * and stored (an mr x nr/2 tile). NULL: the full kernels are used. */
    onyx_sgemm_ukernel_fn fn_half;
    onyx_sgemm_ukernel_epi_fn fn_half_epi;
    /* fn_epi and fn_half_epi honour onyx_sgemm_epi.rows, so a last strip of
     * fewer than mr rows needs no bounce through a tile buffer. */
    bool epi_rows;
    /* fn_epi reading B in place, full width; always honours rows. NULL: B
     * is always packed. */
    onyx_sgemm_ukernel_epi_ldb_fn fn_epi_ldb;
    /* Optional: packs one full strip of A (not transposed), dst[p * mr + r]
     * = src[r][p] for the mr rows r and depths p < kc, as the generic loop
     * in gemm.c does. NULL: that loop. */
    void (*pack_a_strip)(const float *const *src, int64_t kc, float *dst);
    /* Optional: the narrow last strip (see onyx_sgemm_ukernel_narrow_fn).
     * NULL: the half-width or full kernels. */
    onyx_sgemm_ukernel_narrow_fn fn_narrow;
    /* Optional: the product of a single row over a prepacked B (a dense
     * layer at batch 1), where the register tile would compute mr - 1 rows
     * of padding. NULL: a C loop. */
    onyx_sgemm_ukernel_row_fn fn_row;
} onyx_sgemm_kernel;

#define ONYX_SGEMM_MAX_MR 16
#define ONYX_SGEMM_MAX_NR 64

/* The portable C micro-kernel (4 x 8, vectorized by the compiler). */
extern const onyx_sgemm_kernel onyx_sgemm_kernel_generic;

/* ---------------------------------------------------------------------- */
/* Single precision                                                        */

/* Bytes of workspace onyx_sgemm needs for these sizes on `threads` threads
 * (0 when none is needed). Independent of the micro-kernel chosen. */
size_t onyx_sgemm_workspace(int64_t m, int64_t n, int64_t k, int threads);
/* The same bound without the matrix-vector exemption (for onyx_sgemm_run). */
size_t onyx_sgemm_run_workspace(int64_t m, int64_t n, int64_t k, int threads);

/* C = alpha*op(A)*op(B) + beta*C with the given micro-kernel (NULL: generic).
 * `par` may be NULL (serial, thread 0). `work` holds at least
 * onyx_sgemm_workspace(m, n, k, par ? par->threads : 1) bytes, 64-byte aligned
 * preferred; when NULL the function allocates and frees its own.
 * Returns ONYX_OK, or ONYX_ERR_OUT_OF_MEMORY (only when work is NULL). */
onyx_status onyx_sgemm(const onyx_sgemm_kernel *kern, bool trans_a, bool trans_b, int64_t m,
                       int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                       const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                       const onyx_parallel *par, void *work);

/* The same product computed on one thread, as a task inside a caller's own
 * parallel loop: `work` must hold onyx_sgemm_workspace(m, n, k, 1) bytes and
 * belong to the calling thread. Never calls par->run. */
void onyx_sgemm_serial(const onyx_sgemm_kernel *kern, bool trans_a, bool trans_b, int64_t m,
                       int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                       const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                       void *work);

/* ---------------------------------------------------------------------- */
/* Prepacked operands and fused epilogues (for operators with constant      */
/* weights: Conv, Gemm). C = op(A) * B, then the epilogue, with no beta.    */

/* Floats of the packed form of an m x k op(A) for micro-kernel `kern`
 * (NULL: generic); -1 when the size overflows. */
int64_t onyx_sgemm_packed_a_floats(const onyx_sgemm_kernel *kern, int64_t m, int64_t k);

/* Packs op(A) (m x k, row stride lda) into dst, which holds
 * onyx_sgemm_packed_a_floats(kern, m, k) floats. The layout is private to
 * gemm.c and valid only for the same `kern`. */
void onyx_sgemm_pack_a(const onyx_sgemm_kernel *kern, bool trans_a, int64_t m, int64_t k,
                       const float *a, int64_t lda, float *dst);

/* Packs rows [i0, i0 + rows) of an m x k A (not transposed; `a` points at
 * row i0, row stride lda) into their place in dst, the packed form of the
 * whole A as onyx_sgemm_pack_a lays it out. i0 is a multiple of kern->mr,
 * and i0 + rows is too unless it is m. Lets a caller produce A a band of
 * rows at a time (Winograd's U) without holding all of it. */
void onyx_sgemm_pack_a_rows(const onyx_sgemm_kernel *kern, int64_t m, int64_t k, int64_t i0,
                            int64_t rows, const float *a, int64_t lda, float *dst);

/* Floats of the packed form of a k x n op(B) for micro-kernel `kern` (NULL:
 * generic); -1 when the size overflows. */
int64_t onyx_sgemm_packed_b_floats(const onyx_sgemm_kernel *kern, int64_t k, int64_t n);

/* Packs op(B) (k x n, row stride ldb) into dst, which holds
 * onyx_sgemm_packed_b_floats(kern, k, n) floats: for constant weights on
 * the B side (MatMul by an initializer), packed once at load. The layout is
 * private to gemm.c and valid only for the same `kern`. */
void onyx_sgemm_pack_b(const onyx_sgemm_kernel *kern, bool trans_b, int64_t k, int64_t n,
                       const float *b, int64_t ldb, float *dst);

/* Writes rows [p0, p0+kc) x columns [j0, j0+nc) of a B matrix that exists
 * only implicitly (an im2col view of an image, say) in the packed layout the
 * micro-kernel reads: strip s (columns j0+s*nr ..) at dst + s*kc*nr, row p
 * of the strip at + (p-p0)*nr; columns past nc are zero. */
typedef void (*onyx_sgemm_pack_b_fn)(void *ctx, int64_t p0, int64_t kc, int64_t j0,
                                     int64_t nc, int nr, float *dst);

/* Called once per finished block of C, rows [i0, i0+rows) x columns
 * [j0, j0+cols), while it is still in cache; c points at C[i0][j0]. May run
 * on any worker thread, concurrently for disjoint blocks. */
typedef void (*onyx_sgemm_epilogue_fn)(void *ctx, float *c, int64_t ldc, int64_t i0,
                                       int64_t rows, int64_t j0, int64_t cols);

/* One product C (m x n, row stride ldc) = op(A) * B. A is either prepacked
 * (packed_a, from onyx_sgemm_pack_a with the same kernel) or a plain matrix;
 * B is either prepacked (packed_b), produced by pack_b, or a plain matrix. */
typedef struct onyx_sgemm_op {
    int64_t m, n, k;
    const float *packed_a;  /* NULL: use a/lda/trans_a */
    const float *a;
    int64_t lda;
    bool trans_a;
    onyx_sgemm_pack_b_fn pack_b; /* NULL: use b/ldb/trans_b */
    void *pack_b_ctx;
    const float *b;
    int64_t ldb;
    bool trans_b;
    float *c;
    int64_t ldc;
    /* Fused epilogue, applied in the micro-kernel on the last depth block:
     * C = act(op(A) * B + bias[row] + S). bias (m values), S (m x n, row
     * stride lds; a residual input, say) and act may be NULL. S may not
     * overlap C. */
    const float *bias;
    const onyx_act *act;
    const float *sum;
    int64_t lds;
    onyx_sgemm_epilogue_fn epilogue; /* then this, per block; NULL: none */
    void *epilogue_ctx;
    /* Prepacked B (onyx_sgemm_pack_b with the same kernel); when set, it is
     * used instead of pack_b and b. */
    const float *packed_b;
} onyx_sgemm_op;

/* Runs `op` with the blocked driver (also for m == 1 or n == 1), split over
 * `par` (may be NULL). `work` holds onyx_sgemm_run_workspace(m, n, k,
 * threads) bytes, or is NULL to allocate. Returns
 * ONYX_OK or ONYX_ERR_OUT_OF_MEMORY (only when work is NULL). */
size_t onyx_sgemm_packed_b_workspace(int64_t m, int64_t n, int64_t k, int threads);
onyx_status onyx_sgemm_run(const onyx_sgemm_kernel *kern, const onyx_sgemm_op *op,
                           const onyx_parallel *par, void *work);
/* The same on the calling thread, inside a caller's parallel task; `work`
 * (onyx_sgemm_run_workspace(m, n, k, 1) bytes) belongs to that thread.
 * With op->packed_b set, both take onyx_sgemm_packed_b_workspace bytes
 * instead. */
void onyx_sgemm_run_serial(const onyx_sgemm_kernel *kern, const onyx_sgemm_op *op, void *work);

/* ---------------------------------------------------------------------- */
/* Double precision (straightforward loops; for double models)             */

void onyx_dgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
                const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                double *c, int64_t ldc, const onyx_parallel *par);

#endif
