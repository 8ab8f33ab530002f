/* matmul.c - the matrix-product operators: Gemm, MatMul (numpy semantics:
 * 1-D promotion, batch broadcasting) and MatMulInteger.
 * float32 runs on the blocked GEMM of src/kernels (ISA chosen by dispatch),
 * double on onyx_dgemm, float16/bfloat16 through float32, integer types on
 * plain loops with wrap-around accumulation. Conv lives in conv.c. */
#include "core/op.h"
#include "kernels/dispatch.h"
#include "kernels/gemm.h"

#include <string.h>

// ----------------------------------------------------------------------------
// Shared helpers

static void exec_parallel_for(void *px, int64_t n, int64_t grain, onyx_task_fn fn, void *ctx) {
    onyx_exec_parallel(px, n, grain, fn, ctx);
}

static onyx_parallel parallel_of(onyx_exec *x) {
    onyx_parallel p = {exec_parallel_for, x, onyx_exec_threads(x)};
    return p;
}

static bool is_half(onyx_dtype t) { return t == ONYX_DTYPE_FLOAT16 || t == ONYX_DTYPE_BFLOAT16; }

/* float32 copy of t in scratch memory (t's own data when already float32);
 * NULL when out of memory. */
static float *as_f32(onyx_exec *x, const onyx_tensor *t) {
    if (t->dtype == ONYX_DTYPE_FLOAT) return t->data;
    int64_t count = onyx_tensor_count(t);
    float *buf = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_FLOAT, count ? count : 1));
    if (buf && count) onyx_convert(ONYX_DTYPE_FLOAT, buf, t->dtype, t->data, count, false);
    return buf;
}

/* C = alpha*op(A)*op(B) + beta*C for float32 on the session's threads. */
static onyx_status sgemm_exec(onyx_exec *x, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                              float alpha, const float *a, int64_t lda, const float *b,
                              int64_t ldb, float beta, float *c, int64_t ldc) {
    onyx_parallel par = parallel_of(x);
    size_t ws = onyx_sgemm_workspace(m, n, k, par.threads);
    void *work = ws ? onyx_exec_scratch(x, ws) : NULL;
    if (ws && !work) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    return onyx_sgemm(onyx_kernels_get()->sgemm, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c,
                      ldc, &par, work);
}

/* Integer GEMM C = alpha*op(A)*op(B) + beta*C: products accumulate modulo
 * 2^64 (wrap-around as numpy's fixed-width arithmetic), then alpha/beta
 * apply in double when they are not 1 (Gemm's float attributes). */
#define INT_GEMM(T)                                                                        \
    static void igemm_##T(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,  \
                          const T *a, int64_t lda, const T *b, int64_t ldb, double beta,    \
                          T *c, int64_t ldc) {                                             \
        for (int64_t i = 0; i < m; i++)                                                    \
            for (int64_t j = 0; j < n; j++) {                                              \
                uint64_t s = 0;                                                            \
                for (int64_t p = 0; p < k; p++) {                                          \
                    T av = ta ? a[p * lda + i] : a[i * lda + p];                           \
                    T bv = tb ? b[j * ldb + p] : b[p * ldb + j];                           \
                    s += (uint64_t)(int64_t)av * (uint64_t)(int64_t)bv;                    \
                }                                                                          \
                T *y = &c[i * ldc + j];                                                    \
                if (alpha == 1.0 && (beta == 0.0 || beta == 1.0))                          \
                    *y = (T)(s + (beta == 0.0 ? 0 : (uint64_t)(int64_t)*y));               \
                else                                                                       \
                    *y = (T)(alpha * (double)(T)s + (beta == 0.0 ? 0.0 : beta * (double)*y)); \
            }                                                                              \
    }
INT_GEMM(int32_t)
INT_GEMM(int64_t)
INT_GEMM(uint32_t)
INT_GEMM(uint64_t)

/* Runs one product of element type t (float32, double or an integer type;
 * halves are converted by the callers). */
static onyx_status gemm_any(onyx_exec *x, onyx_dtype t, bool ta, bool tb, int64_t m, int64_t n,
                            int64_t k, double alpha, const void *a, int64_t lda, const void *b,
                            int64_t ldb, double beta, void *c, int64_t ldc) {
    switch (t) {
    case ONYX_DTYPE_FLOAT:
        return sgemm_exec(x, ta, tb, m, n, k, (float)alpha, a, lda, b, ldb, (float)beta, c, ldc);
    case ONYX_DTYPE_DOUBLE: {
        onyx_parallel par = parallel_of(x);
        onyx_dgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, &par);
        return ONYX_OK;
    }
    case ONYX_DTYPE_INT32:
        igemm_int32_t(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return ONYX_OK;
    case ONYX_DTYPE_INT64:
        igemm_int64_t(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return ONYX_OK;
    case ONYX_DTYPE_UINT32:
        igemm_uint32_t(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return ONYX_OK;
    case ONYX_DTYPE_UINT64:
        igemm_uint64_t(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return ONYX_OK;
    default:
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "element type %s is not supported",
                              onyx_dtype_name(t));
    }
}

// ----------------------------------------------------------------------------
// Prepacked constant B

/* A MatMul or Gemm by a constant float32 2-D B (the weights of a linear
 * layer) packs B once at load in the micro-kernel's layout, and adds a bias
 * [N] (MatMul: a third input passes.c fuses from Add(MatMul(A, W), b); Gemm:
 * its C) and the fused activation per block while it is in cache. */
typedef struct matmul_state {
    const float *b_data;           /* the B that was packed; run checks it is still input 1 */
    const onyx_sgemm_kernel *kern; /* the kernel the packing is for */
    const float *packed_b;         /* (onyx_sgemm_packed_b_floats(kern, k, n)) */
    int64_t k, n;
} matmul_state;

/* Products smaller than this (K*N) are not worth a packed copy. */
#define MATMUL_PACK_MIN ((int64_t)1 << 12)

/* Packs the constant float32 2-D input 1 (op(B), k x n: B is n x k when
 * trans_b) of node n once at load into *out; leaves *out NULL when input 1
 * is not such a constant or too small to be worth a packed copy. */
static onyx_status pack_constant_b(onyx_node *n, bool trans_b, matmul_state **out,
                                   onyx_error *err) {
    *out = NULL;
    const onyx_tensor *B = onyx_node_constant(n, 1);
    if (!B || B->dtype != ONYX_DTYPE_FLOAT || B->ndim != 2 || !B->data) return ONYX_OK;
    int64_t k = B->dims[trans_b ? 1 : 0], nn = B->dims[trans_b ? 0 : 1];
    if (k <= 0 || nn < 2 || k > INT64_MAX / nn || k * nn < MATMUL_PACK_MIN) return ONYX_OK;
    const onyx_sgemm_kernel *kern = onyx_kernels_get()->sgemm;
    int64_t floats = onyx_sgemm_packed_b_floats(kern, k, nn);
    if (floats < 0 || floats > INT64_MAX / (int64_t)sizeof(float))
        return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "B is too large to pack");
    matmul_state *s = onyx_node_alloc(n, sizeof *s);
    float *packed = onyx_node_alloc_packed(n, (size_t)floats * sizeof(float));
    if (!s || !packed) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory packing B");
    onyx_sgemm_pack_b(kern, trans_b, k, nn, B->data, B->dims[1], packed);
    s->b_data = B->data;
    s->kern = kern;
    s->packed_b = packed;
    s->k = k;
    s->n = nn;
    *out = s;
    return ONYX_OK;
}

/* The fused bias [N] and activation, over rows of a product's output. */
typedef struct mm_epi {
    const float *bias; /* (n) or NULL */
    const onyx_act *act;
    const onyx_row_kernels *rows;
    const onyx_conv_kernels *conv; /* the activation (conv->act: vectorized, in place) */
} mm_epi;

static void mm_epi_block(void *ctx, float *c, int64_t ldc, int64_t i0, int64_t rows, int64_t j0,
                         int64_t cols) {
    const mm_epi *e = ctx;
    (void)i0;
    for (int64_t i = 0; i < rows; i++) {
        float *ci = c + i * ldc;
        if (e->bias) e->rows->add(ci, e->bias + j0, cols);
        if (e->act->kind != ONYX_ACT_NONE) e->conv->act(ci, ci, cols, e->act);
    }
}

/* Y (m x n) = A (m x k, row-major) * prepacked B, then the fused epilogue
 * per block. */
static onyx_status matmul_packed(onyx_exec *x, const matmul_state *s, int64_t m, const float *a,
                                 float *y, const mm_epi *e) {
    onyx_parallel par = parallel_of(x);
    size_t ws = onyx_sgemm_packed_b_workspace(m, s->n, s->k, par.threads);
    void *work = ws ? onyx_exec_scratch(x, ws) : NULL;
    if (ws && !work) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    bool epi = e->bias || e->act->kind != ONYX_ACT_NONE;
    onyx_sgemm_op op = {.m = m, .n = s->n, .k = s->k, .a = a, .lda = s->k, .c = y,
                        .ldc = s->n, .packed_b = s->packed_b,
                        .epilogue = epi ? mm_epi_block : NULL, .epilogue_ctx = (void *)e};
    return onyx_sgemm_run(s->kern, &op, &par, work);
}

// ----------------------------------------------------------------------------
// Gemm

typedef struct gemm_attr {
    bool ta, tb;
    float alpha, beta;
    matmul_state *packed; /* B packed at load, or NULL */
} gemm_attr;

/* The C a packed Gemm adds in its epilogue: a row [N] (or [1, N]) added
 * with beta 1; NULL when C is absent or unused. Sets *fits false for any
 * other C (the general path then runs). */
static const onyx_tensor *gemm_row_bias(const gemm_attr *a, const onyx_tensor *C, int64_t n,
                                        bool *fits) {
    *fits = true;
    if (!C || onyx_tensor_count(C) == 0 || a->beta == 0.0f) return NULL;
    *fits = a->beta == 1.0f && C->dtype == ONYX_DTYPE_FLOAT && C->ndim >= 1 && C->ndim <= 2 &&
            C->dims[C->ndim - 1] == n && onyx_tensor_count(C) == n;
    return C;
}

static onyx_status init_gemm(onyx_node *n, onyx_error *err) {
    gemm_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->ta = onyx_attr_int(n, "transA", 0) != 0;
    a->tb = onyx_attr_int(n, "transB", 0) != 0;
    a->alpha = onyx_attr_float(n, "alpha", 1.0f);
    a->beta = onyx_attr_float(n, "beta", 1.0f);
    n->state = a;
    if (a->ta || a->alpha != 1.0f) return ONYX_OK;
    onyx_status st = pack_constant_b(n, a->tb, &a->packed, err);
    if (st || !a->packed) return st;
    /* Every run takes the packed path, and B's data is never read again,
     * when C is absent or a constant row bias; a C fed at run time may not
     * fit it, and the general path then reads B. */
    bool fits = n->n_in < 3 || n->in[2] < 0;
    const onyx_tensor *C = onyx_node_constant(n, 2);
    if (C) gemm_row_bias(a, C, a->packed->n, &fits);
    onyx_node_release_constant(n, 1, !fits);
    return ONYX_OK;
}

/* Fills y (m x n, element size es) with c broadcast unidirectionally to
 * (m, n); false when c's shape does not broadcast. */
static bool broadcast_c(const onyx_tensor *c, int64_t m, int64_t n, size_t es, void *y) {
    if (c->ndim > 2) return false;
    int64_t cm = c->ndim == 2 ? c->dims[0] : 1;
    int64_t cn = c->ndim >= 1 ? c->dims[c->ndim - 1] : 1;
    if ((cm != 1 && cm != m) || (cn != 1 && cn != n)) return false;
    const unsigned char *src = c->data;
    unsigned char *dst = y;
    for (int64_t i = 0; i < m; i++) {
        const unsigned char *row = src + (size_t)((cm == 1 ? 0 : i) * cn) * es;
        unsigned char *out = dst + (size_t)(i * n) * es;
        if (cn == n) {
            memcpy(out, row, (size_t)n * es);
        } else {
            for (int64_t j = 0; j < n; j++) memcpy(out + (size_t)j * es, row, es);
        }
    }
    return true;
}

static onyx_status run_gemm(const onyx_node *nd, onyx_exec *x) {
    const gemm_attr *at = nd->state;
    const onyx_tensor *A = onyx_exec_input(x, 0), *B = onyx_exec_input(x, 1);
    const onyx_tensor *C = onyx_exec_input(x, 2);
    if (!A || !B) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    if (A->ndim != 2 || B->ndim != 2)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "A and B must be 2-D (got rank %d and %d)",
                              A->ndim, B->ndim);
    if (B->dtype != A->dtype || (C && C->dtype != A->dtype))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "inputs differ in element type");
    int64_t m = at->ta ? A->dims[1] : A->dims[0], k = at->ta ? A->dims[0] : A->dims[1];
    int64_t kb = at->tb ? B->dims[1] : B->dims[0], n = at->tb ? B->dims[0] : B->dims[1];
    if (k != kb)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "inner dimensions differ: A gives K=%lld, B gives K=%lld",
                              (long long)k, (long long)kb);
    int64_t dims[2] = {m, n};
    onyx_tensor *Y;
    onyx_status st = onyx_exec_output(x, 0, A->dtype, 2, dims, &Y);
    if (st) return st;
    if (m == 0 || n == 0) return ONYX_OK;
    onyx_exec_add_flops(x, 2.0 * (double)m * (double)n * (double)k);
    const matmul_state *ps = at->packed;
    bool fits;
    const onyx_tensor *bias = gemm_row_bias(at, C, n, &fits);
    if (ps && fits && A->dtype == ONYX_DTYPE_FLOAT && B->data == ps->b_data && k == ps->k &&
        n == ps->n) {
        mm_epi e = {bias ? bias->data : NULL, &nd->act, onyx_kernels_get()->rows,
                    onyx_kernels_get()->conv};
        return matmul_packed(x, ps, m, A->data, Y->data, &e);
    }

    onyx_dtype t = is_half(A->dtype) ? ONYX_DTYPE_FLOAT : A->dtype;
    size_t es = onyx_dtype_size(t);
    const void *a = A->data, *b = B->data;
    void *y = Y->data;
    if (t != A->dtype) {
        a = as_f32(x, A);
        b = as_f32(x, B);
        y = onyx_exec_scratch(x, onyx_dtype_bytes(t, m * n));
        if (!a || !b || !y) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    }
    double beta = at->beta;
    if (C && onyx_tensor_count(C) > 0 && beta != 0.0) {
        const onyx_tensor *c = C;
        onyx_tensor cf;
        if (t != C->dtype) {
            cf = *C;
            cf.dtype = t;
            cf.data = as_f32(x, C);
            if (!cf.data) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
            c = &cf;
        }
        if (!broadcast_c(c, m, n, es, y))
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "C does not broadcast to (%lld, %lld)", (long long)m,
                                  (long long)n);
    } else {
        beta = 0.0;
    }
    st = gemm_any(x, t, at->ta, at->tb, m, n, k, at->alpha, a, A->dims[1], b, B->dims[1], beta, y,
                  n);
    if (st) return st;
    if (t == ONYX_DTYPE_FLOAT && nd->act.kind != ONYX_ACT_NONE)
        onyx_kernels_get()->conv->act(y, y, m * n, &nd->act);
    if (t != A->dtype) onyx_convert(A->dtype, Y->data, t, y, m * n, false);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// MatMul shapes (numpy matmul)

/* A (..., M, K) times B (..., K, N); a 1-D A is (1, K) and a 1-D B is
 * (K, 1), with that dimension dropped from the result. Batch dimensions
 * broadcast; the strides below are in elements, 0 along broadcast axes. */
typedef struct mm_plan {
    int64_t m, n, k;
    int64_t batch;                 /* product of the output batch dims */
    int nb;                        /* batch rank */
    int64_t bdims[ONYX_MAX_DIMS];  /* (nb) output batch dims */
    int64_t as[ONYX_MAX_DIMS];     /* (nb) A element stride per batch dim */
    int64_t bs[ONYX_MAX_DIMS];     /* (nb) B element stride per batch dim */
    int64_t a_batch, b_batch;      /* matrices in A and in B */
    int ndim;
    int64_t dims[ONYX_MAX_DIMS];   /* output shape */
} mm_plan;

static onyx_status mm_plan_make(onyx_exec *x, const onyx_tensor *A, const onyx_tensor *B,
                                mm_plan *p) {
    if (A->ndim < 1 || B->ndim < 1)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "inputs must have rank >= 1");
    memset(p, 0, sizeof *p);
    int ra = A->ndim, rb = B->ndim;
    p->m = ra == 1 ? 1 : A->dims[ra - 2];
    p->k = A->dims[ra - 1];
    int64_t kb = rb == 1 ? B->dims[0] : B->dims[rb - 2];
    p->n = rb == 1 ? 1 : B->dims[rb - 1];
    if (p->k != kb)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "inner dimensions differ: A has K=%lld, B has K=%lld",
                              (long long)p->k, (long long)kb);
    int na = ra > 2 ? ra - 2 : 0, nbb = rb > 2 ? rb - 2 : 0;
    p->nb = na > nbb ? na : nbb;
    int64_t sa = p->m * p->k, sb = p->k * p->n;
    p->a_batch = p->b_batch = p->batch = 1;
    for (int d = p->nb - 1; d >= 0; d--) {
        int da = d - (p->nb - na), db = d - (p->nb - nbb);
        int64_t ea = da >= 0 ? A->dims[da] : 1, eb = db >= 0 ? B->dims[db] : 1;
        if (ea != eb && ea != 1 && eb != 1)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "batch dimensions %lld and %lld do not broadcast",
                                  (long long)ea, (long long)eb);
        p->bdims[d] = ea == 1 ? eb : ea;
        p->as[d] = ea == 1 ? 0 : sa;
        p->bs[d] = eb == 1 ? 0 : sb;
        sa *= ea;
        sb *= eb;
        p->a_batch *= ea;
        p->b_batch *= eb;
        p->batch *= p->bdims[d];
    }
    p->ndim = 0;
    for (int d = 0; d < p->nb; d++) p->dims[p->ndim++] = p->bdims[d];
    if (ra > 1) p->dims[p->ndim++] = p->m;
    if (rb > 1) p->dims[p->ndim++] = p->n;
    return ONYX_OK;
}

static void mm_offsets(const mm_plan *p, int64_t b, int64_t *oa, int64_t *ob) {
    int64_t a = 0, bb = 0;
    for (int d = p->nb - 1; d >= 0; d--) {
        int64_t i = b % p->bdims[d];
        b /= p->bdims[d];
        a += i * p->as[d];
        bb += i * p->bs[d];
    }
    *oa = a;
    *ob = bb;
}

// ----------------------------------------------------------------------------
// MatMul

static onyx_status init_matmul(onyx_node *n, onyx_error *err) {
    matmul_state *s;
    onyx_status st = pack_constant_b(n, false, &s, err);
    if (st || !s) return st;
    n->state = s;
    /* B is constant, 2-D and float32 (so is A): every run takes the packed
     * path and never reads B's data again. */
    onyx_node_release_constant(n, 1, false);
    return ONYX_OK;
}

/* Many small float32 products (attention heads, ...): one serial GEMM per
 * batch item, batch items spread over threads. */
typedef struct mm_batch_job {
    const mm_plan *p;
    const onyx_sgemm_kernel *kern;
    const float *a, *b;
    float *y;
    unsigned char *work; /* per-thread workspace */
    size_t work_stride;
} mm_batch_job;

static void mm_batch_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const mm_batch_job *j = ctx;
    const mm_plan *p = j->p;
    for (int64_t b = begin; b < end; b++) {
        int64_t oa, ob;
        mm_offsets(p, b, &oa, &ob);
        onyx_sgemm_serial(j->kern, false, false, p->m, p->n, p->k, 1.0f, j->a + oa, p->k,
                          j->b + ob, p->n, 0.0f, j->y + b * p->m * p->n, p->n,
                          j->work ? j->work + (size_t)thread * j->work_stride : NULL);
    }
}

static onyx_status matmul_f32(onyx_exec *x, const mm_plan *p, const float *a, const float *b,
                              float *y) {
    /* B shared by every batch item and A not broadcast: one tall product. */
    if (p->b_batch == 1 && p->a_batch == p->batch)
        return sgemm_exec(x, false, false, p->batch * p->m, p->n, p->k, 1.0f, a, p->k, b, p->n,
                          0.0f, y, p->n);
    int threads = onyx_exec_threads(x);
    int64_t macs = p->m * p->n * p->k;
    if (threads > 1 && p->batch >= threads && macs < ((int64_t)1 << 21)) {
        size_t ws = onyx_sgemm_workspace(p->m, p->n, p->k, 1);
        mm_batch_job j = {p, onyx_kernels_get()->sgemm, a, b, y, NULL, ws};
        if (ws) {
            j.work = onyx_exec_scratch_per_thread(x, ws);
            if (!j.work) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        }
        int64_t grain = macs >= ((int64_t)1 << 16) ? 1 : ((int64_t)1 << 16) / (macs + 1) + 1;
        onyx_exec_parallel(x, p->batch, grain, mm_batch_task, &j);
        return ONYX_OK;
    }
    for (int64_t bi = 0; bi < p->batch; bi++) {
        int64_t oa, ob;
        mm_offsets(p, bi, &oa, &ob);
        onyx_status st = sgemm_exec(x, false, false, p->m, p->n, p->k, 1.0f, a + oa, p->k, b + ob,
                                    p->n, 0.0f, y + bi * p->m * p->n, p->n);
        if (st) return st;
    }
    return ONYX_OK;
}

static onyx_status run_matmul(const onyx_node *nd, onyx_exec *x) {
    const onyx_tensor *A = onyx_exec_input(x, 0), *B = onyx_exec_input(x, 1);
    if (!A || !B) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    if (A->dtype != B->dtype)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "A is %s but B is %s",
                              onyx_dtype_name(A->dtype), onyx_dtype_name(B->dtype));
    mm_plan p;
    onyx_status st = mm_plan_make(x, A, B, &p);
    if (st) return st;
    onyx_tensor *Y;
    st = onyx_exec_output(x, 0, A->dtype, p.ndim, p.dims, &Y);
    if (st) return st;
    int64_t count = onyx_tensor_count(Y);
    if (count == 0) return ONYX_OK;
    onyx_exec_add_flops(x, 2.0 * (double)count * (double)p.k);

    /* The fused bias (passes.c): float32 [N], for a float32 product only. */
    const onyx_tensor *bias = onyx_exec_input(x, 2);
    if (bias && (bias->dtype != ONYX_DTYPE_FLOAT || A->dtype != ONYX_DTYPE_FLOAT ||
                 onyx_tensor_count(bias) != p.n))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "the fused bias does not fit");
    mm_epi e = {bias ? bias->data : NULL, &nd->act, onyx_kernels_get()->rows,
                onyx_kernels_get()->conv};
    const matmul_state *s = nd->state;
    if (s && A->dtype == ONYX_DTYPE_FLOAT && B->data == s->b_data && p.b_batch == 1 &&
        p.a_batch == p.batch && p.k == s->k && p.n == s->n)
        return matmul_packed(x, s, p.batch * p.m, A->data, Y->data, &e);

    onyx_dtype t = is_half(A->dtype) ? ONYX_DTYPE_FLOAT : A->dtype;
    if (t == ONYX_DTYPE_FLOAT) {
        const float *a = as_f32(x, A), *b = as_f32(x, B);
        float *y = t == A->dtype ? Y->data
                                 : onyx_exec_scratch(x, onyx_dtype_bytes(t, count));
        if (!a || !b || !y) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        st = matmul_f32(x, &p, a, b, y);
        if (st) return st;
        if (e.bias || nd->act.kind != ONYX_ACT_NONE)
            mm_epi_block(&e, y, p.n, 0, count / p.n, 0, p.n);
        if (t != A->dtype) onyx_convert(A->dtype, Y->data, t, y, count, false);
        return ONYX_OK;
    }
    size_t es = onyx_dtype_size(t);
    for (int64_t bi = 0; bi < p.batch; bi++) {
        int64_t oa, ob;
        mm_offsets(&p, bi, &oa, &ob);
        st = gemm_any(x, t, false, false, p.m, p.n, p.k, 1.0, (const char *)A->data + oa * es, p.k,
                      (const char *)B->data + ob * es, p.n, 0.0,
                      (char *)Y->data + (size_t)(bi * p.m * p.n) * es, p.n);
        if (st) return st;
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// MatMulInteger

/* Reads a zero point: a scalar (per tensor) or a 1-D tensor of `len`
 * entries (per row of A / per column of B). Fills zp[0..len). */
static onyx_status read_zero_point(onyx_exec *x, const onyx_tensor *z, onyx_dtype want,
                                   int64_t len, int32_t *zp, const char *what) {
    if (!z) {
        for (int64_t i = 0; i < len; i++) zp[i] = 0;
        return ONYX_OK;
    }
    if (z->dtype != want)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "%s is %s, expected %s", what,
                              onyx_dtype_name(z->dtype), onyx_dtype_name(want));
    int64_t c = onyx_tensor_count(z);
    if (c != 1 && c != len)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "%s has %lld elements; expected 1 or %lld", what, (long long)c,
                              (long long)len);
    for (int64_t i = 0; i < len; i++) zp[i] = (int32_t)onyx_tensor_get_i64(z, c == 1 ? 0 : i);
    return ONYX_OK;
}

static int32_t q_at(onyx_dtype t, const void *d, int64_t i) {
    return t == ONYX_DTYPE_UINT8 ? ((const uint8_t *)d)[i] : ((const int8_t *)d)[i];
}

static onyx_status run_matmul_integer(const onyx_node *nd, onyx_exec *x) {
    const onyx_tensor *A = onyx_exec_input(x, 0), *B = onyx_exec_input(x, 1);
    if (!A || !B) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    for (int i = 0; i < 2; i++) {
        onyx_dtype t = (i ? B : A)->dtype;
        if (t != ONYX_DTYPE_UINT8 && t != ONYX_DTYPE_INT8)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "%s must be int8 or uint8, got %s",
                                  i ? "B" : "A", onyx_dtype_name(t));
    }
    mm_plan p;
    onyx_status st = mm_plan_make(x, A, B, &p);
    if (st) return st;
    onyx_tensor *Y;
    st = onyx_exec_output(x, 0, ONYX_DTYPE_INT32, p.ndim, p.dims, &Y);
    if (st) return st;
    if (onyx_tensor_count(Y) == 0) return ONYX_OK;
    int32_t *za = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_INT32, p.m));
    int32_t *zb = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_INT32, p.n));
    int32_t *a32 = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_INT32, p.m * p.k + 1));
    int32_t *b32 = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_INT32, p.k * p.n + 1));
    if (!za || !zb || !a32 || !b32)
        return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    if ((st = read_zero_point(x, onyx_exec_input(x, 2), A->dtype, p.m, za, "a_zero_point")) ||
        (st = read_zero_point(x, onyx_exec_input(x, 3), B->dtype, p.n, zb, "b_zero_point")))
        return st;
    int32_t *y = Y->data;
    for (int64_t bi = 0; bi < p.batch; bi++) {
        int64_t oa, ob;
        mm_offsets(&p, bi, &oa, &ob);
        for (int64_t i = 0; i < p.m; i++)
            for (int64_t q = 0; q < p.k; q++)
                a32[i * p.k + q] = q_at(A->dtype, A->data, oa + i * p.k + q) - za[i];
        for (int64_t q = 0; q < p.k; q++)
            for (int64_t j = 0; j < p.n; j++)
                b32[q * p.n + j] = q_at(B->dtype, B->data, ob + q * p.n + j) - zb[j];
        /* |a - za| * |b - zb| < 2^16: int32 products are exact; the sums wrap
         * modulo 2^32 as int32 arithmetic would. */
        for (int64_t i = 0; i < p.m; i++) {
            uint32_t *row = (uint32_t *)(y + (bi * p.m + i) * p.n);
            for (int64_t j = 0; j < p.n; j++) row[j] = 0;
            for (int64_t q = 0; q < p.k; q++) {
                uint32_t av = (uint32_t)a32[i * p.k + q];
                const int32_t *bq = b32 + q * p.n;
                for (int64_t j = 0; j < p.n; j++) row[j] += av * (uint32_t)bq[j];
            }
        }
    }
    (void)nd;
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Registry rows

#define T_F (ONYX_T(ONYX_DTYPE_FLOAT) | ONYX_T(ONYX_DTYPE_DOUBLE) | ONYX_T(ONYX_DTYPE_FLOAT16))
#define T_FI                                                                              \
    (T_F | ONYX_T(ONYX_DTYPE_INT32) | ONYX_T(ONYX_DTYPE_INT64) | ONYX_T(ONYX_DTYPE_UINT32) | \
     ONYX_T(ONYX_DTYPE_UINT64))
#define T_FIB (T_FI | ONYX_T(ONYX_DTYPE_BFLOAT16))
#define T_Q (ONYX_T(ONYX_DTYPE_INT8) | ONYX_T(ONYX_DTYPE_UINT8))

#define GEMM(V, MIN_IN, TYPES) \
    {"", "Gemm", V, MIN_IN, 3, 1, 1, TYPES, init_gemm, run_gemm, ONYX_OP_FUSES_ACT}
#define MATMUL(V, TYPES) \
    {"", "MatMul", V, 2, 2, 1, 1, TYPES, init_matmul, run_matmul, ONYX_OP_FUSES_ACT}

const onyx_op_schema onyx_ops_matmul[] = {
    GEMM(1, 3, T_F),
    GEMM(6, 3, T_F),
    GEMM(7, 3, T_F),
    GEMM(9, 3, T_FI),
    GEMM(11, 2, T_FI),
    GEMM(13, 2, T_FIB),
    MATMUL(1, T_F),
    MATMUL(9, T_FI),
    MATMUL(13, T_FIB),
    {"", "MatMulInteger", 10, 2, 4, 1, 1, T_Q, NULL, run_matmul_integer, 0},
    {0},
};
