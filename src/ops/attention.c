/* attention.c - the attention family of the default domain: Attention
 * (opset 23/24: 3-D and 4-D inputs, GQA/MQA, masks, causal, KV cache,
 * softcap, qk_matmul_output) and RotaryEmbedding (opset 23).
 * Swish lives in activation.c; the contrib (com.microsoft) variants are not here. */
#include "core/op.h"
#include "kernels/dispatch.h"
#include "kernels/gemm.h"

#include <math.h>
#include <string.h>

static bool is_float_type(onyx_dtype t) {
    return t == ONYX_DTYPE_FLOAT || t == ONYX_DTYPE_DOUBLE || t == ONYX_DTYPE_FLOAT16 ||
           t == ONYX_DTYPE_BFLOAT16;
}

/* A copy of t's elements converted to `ct` in scratch memory (t's own data
 * when already of that type); NULL when out of memory. */
static void *as_type(onyx_exec *x, const onyx_tensor *t, onyx_dtype ct) {
    if (t->dtype == ct) return t->data;
    int64_t count = onyx_tensor_count(t);
    void *buf = onyx_exec_scratch(x, onyx_dtype_bytes(ct, count ? count : 1));
    if (buf && count) onyx_convert(ct, buf, t->dtype, t->data, count, false);
    return buf;
}

// ----------------------------------------------------------------------------
// Attention

typedef struct attn_attr {
    bool is_causal;
    int64_t q_heads, kv_heads; /* 0 when absent (4-D inputs) */
    int qk_mode;               /* qk_matmul_output_mode, 0..3 */
    bool has_scale;
    float scale;
    float softcap;
} attn_attr;

static onyx_status init_attention(onyx_node *n, onyx_error *err) {
    attn_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->is_causal = onyx_attr_int(n, "is_causal", 0) != 0;
    a->q_heads = onyx_attr_int(n, "q_num_heads", 0);
    a->kv_heads = onyx_attr_int(n, "kv_num_heads", 0);
    if (a->q_heads < 0 || a->kv_heads < 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "q_num_heads/kv_num_heads must be >= 0");
    int64_t mode = onyx_attr_int(n, "qk_matmul_output_mode", 0);
    if (mode < 0 || mode > 3)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "qk_matmul_output_mode must be 0..3, got %lld", (long long)mode);
    a->qk_mode = (int)mode;
    a->has_scale = onyx_attr_find(n, "scale") != NULL;
    a->scale = onyx_attr_float(n, "scale", 1.0f);
    a->softcap = onyx_attr_float(n, "softcap", 0.0f);
    if (a->softcap < 0) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "softcap must be >= 0");
    /* softmax_precision only asks for at least the input precision; float
     * and half inputs already run their softmax in float32, double in
     * double, so any valid float type is accepted and honoured. */
    int64_t sp = onyx_attr_int(n, "softmax_precision", ONYX_DTYPE_FLOAT);
    if (!onyx_dtype_is_valid((int32_t)sp) || !is_float_type((onyx_dtype)sp))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "softmax_precision must be a float type, got %lld", (long long)sp);
    n->state = a;
    return ONYX_OK;
}

/* A (batch, heads, rows, cols) operand seen through element strides, so
 * 3-D (batch, rows, heads*cols) inputs are used in place. */
typedef struct attn_view {
    char *p;
    int64_t bs, hs, rs; /* element strides of batch, head and row */
} attn_view;

static attn_view view_4d(void *p, int64_t heads, int64_t rows, int64_t cols) {
    attn_view v = {p, heads * rows * cols, rows * cols, cols};
    return v;
}

static attn_view view_3d(void *p, int64_t heads, int64_t rows, int64_t cols) {
    attn_view v = {p, rows * heads * cols, cols, heads * cols};
    return v;
}

/* Everything a task needs; sizes follow the spec: B batch, Hq/Hkv heads,
 * Sq query rows, T = P + Skv total key rows, D head size, Dv value head size. */
typedef struct attn_job {
    const attn_attr *at;
    int64_t B, Hq, Hkv, Sq, T, P, D, Dv;
    int64_t qblock, nqb; /* query rows per task, blocks per (b, h) */
    float alpha;         /* the scale */
    attn_view q, k, v, y;
    /* Additive mask (mask_t elements, the compute type) seen at
     * (B, Hq, Sq, mask_cols): strides 0 along broadcast axes; columns
     * >= mask_cols are -inf. NULL when no mask. */
    const void *mask;
    int64_t mbs, mhs, mqs, mask_cols;
    const int64_t *nonpad; /* (B) valid key rows, or NULL */
    void *qk;              /* (B, Hq, Sq, T) qk_matmul_output in the compute type, or NULL */
    const float *kt;       /* (B, Hkv, D, T) K transposed for the float GEMM, or NULL */
    const onyx_sgemm_kernel *kern;
    unsigned char *work; /* per-thread: scores (qblock, T) then sgemm workspace */
    size_t work_stride, score_bytes;
} attn_job;

// ----------------------------------------------------------------------------
// Row kernels of the softmax. Loops run in fixed chunks of 8 so that gcc -O2
// vectorizes them (its cheap cost model skips loops of unknown trip count).

/* a where the mask m is all ones, else b: a select through the bits, since
 * gcc does not if-convert float comparisons under -ftrapping-math. */
static inline float select_bits(int32_t m, float a, float b) {
    int32_t ai, bi, r;
    memcpy(&ai, &a, sizeof ai);
    memcpy(&bi, &b, sizeof bi);
    r = (ai & m) | (bi & ~m);
    float f;
    memcpy(&f, &r, sizeof f);
    return f;
}

/* exp(x) in float32 from Cephes' range reduction and degree-6 polynomial
 * (within 2 ulp of expf): exactly 0 below -88, NaN stays NaN. Branch-free
 * so the chunked loops below vectorize. */
static inline float exp_fast(float x) {
    float xc = select_bits(-(int32_t)(x > 88.0f), 88.0f, x);
    int32_t low = -(int32_t)(xc < -88.0f);
    xc = select_bits(low, -88.0f, xc);
    float t = xc * 1.44269504088896341f;
    float k = (t + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = xc - k * 0.693359375f - k * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* A NaN x (a fully masked row: -inf minus its -inf max) gives a NaN k,
     * whose conversion to int is undefined; p is NaN, and so is the result,
     * whatever the scale. */
    k = select_bits(-(int32_t)(k != k), 0.0f, k);
    int32_t bits = ((int32_t)k + 127) * (1 << 23); /* 2^k */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return select_bits(low, 0.0f, p * scale);
}

/* x[0..n) = softmax(x[0..n)). */
static void softmax_row_f(float *x, int64_t n) {
    float m8[8], s8[8] = {0};
    for (int q = 0; q < 8; q++)
        m8[q] = -INFINITY;
    int64_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int q = 0; q < 8; q++)
            m8[q] = x[c + q] > m8[q] ? x[c + q] : m8[q];
    float mx = -INFINITY;
    for (int q = 0; q < 8; q++)
        mx = m8[q] > mx ? m8[q] : mx;
    for (; c < n; c++)
        mx = x[c] > mx ? x[c] : mx;
    for (c = 0; c + 8 <= n; c += 8)
        for (int q = 0; q < 8; q++) {
            float e = exp_fast(x[c + q] - mx);
            x[c + q] = e;
            s8[q] += e;
        }
    float sum = ((s8[0] + s8[1]) + (s8[2] + s8[3])) + ((s8[4] + s8[5]) + (s8[6] + s8[7]));
    for (; c < n; c++)
        sum += (x[c] = exp_fast(x[c] - mx));
    float inv = 1.0f / sum;
    for (c = 0; c + 8 <= n; c += 8)
        for (int q = 0; q < 8; q++)
            x[c + q] *= inv;
    for (; c < n; c++)
        x[c] *= inv;
}

static void softmax_row_(double *x, int64_t n) {
    double mx = -INFINITY, sum = 0;
    for (int64_t c = 0; c < n; c++)
        mx = x[c] > mx ? x[c] : mx;
    for (int64_t c = 0; c < n; c++)
        sum += (x[c] = exp(x[c] - mx));
    for (int64_t c = 0; c < n; c++)
        x[c] /= sum;
}

static void add_row_f(float *restrict x, const float *restrict m, int64_t n) {
    int64_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int q = 0; q < 8; q++)
            x[c + q] += m[c + q];
    for (; c < n; c++)
        x[c] += m[c];
}

static void add_row_(double *x, const double *m, int64_t n) {
    for (int64_t c = 0; c < n; c++)
        x[c] += m[c];
}

static float dot_f(const float *restrict a, const float *restrict b, int64_t n) {
    float s8[8] = {0};
    int64_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int q = 0; q < 8; q++)
            s8[q] += a[c + q] * b[c + q];
    float s = ((s8[0] + s8[1]) + (s8[2] + s8[3])) + ((s8[4] + s8[5]) + (s8[6] + s8[7]));
    for (; c < n; c++)
        s += a[c] * b[c];
    return s;
}

/* y[0..n) += a * x[0..n) */
static void axpy_f(float *restrict y, float a, const float *restrict x, int64_t n) {
    int64_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int q = 0; q < 8; q++)
            y[c + q] += a * x[c + q];
    for (; c < n; c++)
        y[c] += a * x[c];
}

/* Query rows below this count per task skip the GEMM driver (whose packing
 * does not pay off for a handful of rows): decode steps take the dot/axpy
 * loops above. */
#define ATTN_FEW_ROWS 4

/* The per-task body, instantiated for float32 and double: scores for a block
 * of query rows of one (b, h), mask/causal bias, softcap, softmax, then the
 * product with V. Row order matches the reference: qk_matmul_output taps the
 * scores at the stage chosen by qk_matmul_output_mode. */
#define ATTN_TASK(FT, SFX, GEMM_QK, GEMM_PV)                                                       \
    static void attn_task_##SFX(void *ctx, int64_t begin, int64_t end, int thread) {               \
        const attn_job *j = ctx;                                                                   \
        const attn_attr *at = j->at;                                                               \
        unsigned char *w = j->work + (size_t)thread * j->work_stride;                              \
        FT *s = (FT *)w;                                                                           \
        void *gw = w + j->score_bytes;                                                             \
        (void)gw;                                                                                  \
        int64_t reps = j->Hq / j->Hkv;                                                             \
        for (int64_t t = begin; t < end; t++) {                                                    \
            int64_t qb = t % j->nqb, bh = t / j->nqb;                                              \
            int64_t b = bh / j->Hq, h = bh % j->Hq, hk = h / reps;                                 \
            int64_t r0 = qb * j->qblock;                                                           \
            int64_t m = j->Sq - r0 < j->qblock ? j->Sq - r0 : j->qblock;                           \
            const FT *q = (const FT *)j->q.p + b * j->q.bs + h * j->q.hs + r0 * j->q.rs;           \
            const FT *k = (const FT *)j->k.p + b * j->k.bs + hk * j->k.hs;                         \
            const FT *v = (const FT *)j->v.p + b * j->v.bs + hk * j->v.hs;                         \
            FT *y = (FT *)j->y.p + b * j->y.bs + h * j->y.hs + r0 * j->y.rs;                       \
            GEMM_QK(m, q, k, b, hk, s);                                                            \
            FT *qk = j->qk ? (FT *)j->qk + ((b * j->Hq + h) * j->Sq + r0) * j->T : NULL;           \
            int64_t valid = j->T;                                                                  \
            if (j->nonpad) {                                                                       \
                valid = j->nonpad[b] < 0 ? 0 : j->nonpad[b];                                       \
                if (valid > j->T) valid = j->T;                                                    \
            }                                                                                      \
            for (int64_t i = 0; i < m; i++) {                                                      \
                FT *row = s + i * j->T;                                                            \
                int64_t qi = r0 + i;                                                               \
                if (qk && at->qk_mode == 0) memcpy(qk + i * j->T, row, sizeof(FT) * j->T);         \
                if (j->mask) {                                                                     \
                    const FT *mr = (const FT *)j->mask + b * j->mbs + h * j->mhs + qi * j->mqs;    \
                    int64_t mc = j->mask_cols;                                                     \
                    add_row_##SFX(row, mr, mc);                                                    \
                    for (int64_t c = mc; c < j->T; c++)                                            \
                        row[c] = (FT)-INFINITY;                                                    \
                }                                                                                  \
                if (at->is_causal)                                                                 \
                    for (int64_t c = qi + j->P + 1; c < j->T; c++)                                 \
                        row[c] = (FT)-INFINITY;                                                    \
                for (int64_t c = valid; c < j->T; c++)                                             \
                    row[c] = (FT)-INFINITY;                                                        \
                if (qk && at->qk_mode == 1) memcpy(qk + i * j->T, row, sizeof(FT) * j->T);         \
                if (at->softcap > 0) {                                                             \
                    FT cap = (FT)at->softcap;                                                      \
                    for (int64_t c = 0; c < j->T; c++)                                             \
                        row[c] = cap * tanh##SFX(row[c] / cap);                                    \
                }                                                                                  \
                if (qk && at->qk_mode == 2) memcpy(qk + i * j->T, row, sizeof(FT) * j->T);         \
                softmax_row_##SFX(row, j->T);                                                      \
                if (qk && at->qk_mode == 3) memcpy(qk + i * j->T, row, sizeof(FT) * j->T);         \
            }                                                                                      \
            GEMM_PV(m, s, v, y);                                                                   \
        }                                                                                          \
    }

/* float32 products: a few rows use dot/axpy loops; more rows use the
 * blocked GEMM, on K^T when it was transposed up front (its packing is then
 * a copy) and on K with trans_b otherwise. */
static void qk_f(const attn_job *j, int64_t m, const float *q, const float *k, int64_t b,
                 int64_t hk, float *s, void *gw) {
    if (m < ATTN_FEW_ROWS) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t c = 0; c < j->T; c++)
                s[i * j->T + c] = j->alpha * dot_f(q + i * j->q.rs, k + c * j->k.rs, j->D);
    } else if (j->kt) {
        onyx_sgemm_serial(j->kern, false, false, m, j->T, j->D, j->alpha, q, j->q.rs,
                          j->kt + (b * j->Hkv + hk) * j->D * j->T, j->T, 0.0f, s, j->T, gw);
    } else {
        onyx_sgemm_serial(j->kern, false, true, m, j->T, j->D, j->alpha, q, j->q.rs, k, j->k.rs,
                          0.0f, s, j->T, gw);
    }
}

static void pv_f(const attn_job *j, int64_t m, const float *s, const float *v, float *y, void *gw) {
    if (m < ATTN_FEW_ROWS) {
        for (int64_t i = 0; i < m; i++) {
            float *yi = y + i * j->y.rs;
            memset(yi, 0, sizeof(float) * (size_t)j->Dv);
            for (int64_t c = 0; c < j->T; c++)
                axpy_f(yi, s[i * j->T + c], v + c * j->v.rs, j->Dv);
        }
        return;
    }
    onyx_sgemm_serial(j->kern, false, false, m, j->Dv, j->T, 1.0f, s, j->T, v, j->v.rs, 0.0f, y,
                      j->y.rs, gw);
}

#define SGEMM_QK(m, q, k, b, hk, s) qk_f(j, m, q, k, b, hk, s, gw)
#define SGEMM_PV(m, s, v, y) pv_f(j, m, s, v, y, gw)
#define DGEMM_QK(m, q, k, b, hk, s)                                                                \
    onyx_dgemm(false, true, m, j->T, j->D, j->alpha, q, j->q.rs, k, j->k.rs, 0.0, s, j->T, NULL)
#define DGEMM_PV(m, s, v, y)                                                                       \
    onyx_dgemm(false, false, m, j->Dv, j->T, 1.0, s, j->T, v, j->v.rs, 0.0, y, j->y.rs, NULL)

ATTN_TASK(float, f, SGEMM_QK, SGEMM_PV)
ATTN_TASK(double, , DGEMM_QK, DGEMM_PV)

/* Transposes K of each (b, hk) into kt (D, T), in 8 x 8 tiles. */
typedef struct kt_job {
    const attn_job *j;
    float *kt;
} kt_job;

static void kt_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const kt_job *t = ctx;
    const attn_job *j = t->j;
    (void)thread;
    for (int64_t bh = begin; bh < end; bh++) {
        int64_t b = bh / j->Hkv, hk = bh % j->Hkv;
        const float *k = (const float *)j->k.p + b * j->k.bs + hk * j->k.hs;
        float *d = t->kt + bh * j->D * j->T;
        for (int64_t r0 = 0; r0 < j->T; r0 += 8)
            for (int64_t c0 = 0; c0 < j->D; c0 += 8) {
                int64_t r1 = r0 + 8 < j->T ? r0 + 8 : j->T, c1 = c0 + 8 < j->D ? c0 + 8 : j->D;
                for (int64_t r = r0; r < r1; r++)
                    for (int64_t c = c0; c < c1; c++)
                        d[c * j->T + r] = k[r * j->k.rs + c];
            }
    }
}

/* Converts the mask to an additive bias of type ct (bool: true -> 0, false
 * -> -inf; numbers as values) and derives its broadcast strides against
 * (B, Hq, Sq, T). The last axis may be shorter than T (padded with -inf). */
static onyx_status attn_mask_setup(onyx_exec *x, const onyx_tensor *M, onyx_dtype ct, attn_job *j) {
    if (M->ndim < 1 || M->ndim > 4)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "attn_mask must have rank 1..4, got %d",
                              M->ndim);
    if (M->dtype == ONYX_DTYPE_STRING || !onyx_dtype_is_valid(M->dtype) ||
        onyx_dtype_size(M->dtype) == 0)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "attn_mask has unsupported type %s",
                              onyx_dtype_name(M->dtype));
    int64_t want[4] = {j->B, j->Hq, j->Sq, j->T};
    int64_t md[4] = {1, 1, 1, 1};
    for (int d = 0; d < M->ndim; d++)
        md[4 - M->ndim + d] = M->dims[d];
    if (md[3] > j->T || (md[3] < 1 && j->T > 0))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "attn_mask last dimension %lld does not fit %lld key positions",
                              (long long)md[3], (long long)j->T);
    for (int d = 0; d < 3; d++)
        if (md[d] != 1 && md[d] != want[d])
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "attn_mask dimension %d is %lld; expected 1 or %lld", d,
                                  (long long)md[d], (long long)want[d]);
    int64_t count = onyx_tensor_count(M);
    void *buf = onyx_exec_scratch(x, onyx_dtype_bytes(ct, count ? count : 1));
    if (!buf) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    if (M->dtype == ONYX_DTYPE_BOOL) {
        const unsigned char *src = M->data;
        for (int64_t i = 0; i < count; i++) {
            double v = src[i] ? 0.0 : -INFINITY;
            if (ct == ONYX_DTYPE_DOUBLE)
                ((double *)buf)[i] = v;
            else
                ((float *)buf)[i] = (float)v;
        }
    } else if (count) {
        onyx_status st = onyx_convert(ct, buf, M->dtype, M->data, count, false);
        if (st)
            return onyx_exec_fail(x, st, "attn_mask: cannot convert %s", onyx_dtype_name(M->dtype));
    }
    j->mask = buf;
    j->mask_cols = md[3];
    j->mqs = md[2] == 1 ? 0 : md[3];
    j->mhs = md[1] == 1 ? 0 : md[2] * md[3];
    j->mbs = md[0] == 1 ? 0 : md[1] * md[2] * md[3];
    return ONYX_OK;
}

/* Copies past (B, H, P, cols) then new (viewed by `src`, Skv rows) into
 * dst (B, H, P + Skv, cols), all of element size es. */
static void attn_concat(char *dst, const char *past, attn_view src, int64_t B, int64_t H, int64_t P,
                        int64_t S, int64_t cols, size_t es) {
    int64_t T = P + S;
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < H; h++) {
            char *d = dst + (size_t)((b * H + h) * T * cols) * es;
            if (P) memcpy(d, past + (size_t)((b * H + h) * P * cols) * es, (size_t)(P * cols) * es);
            for (int64_t r = 0; r < S; r++)
                memcpy(d + (size_t)((P + r) * cols) * es,
                       src.p + (size_t)(b * src.bs + h * src.hs + r * src.rs) * es,
                       (size_t)cols * es);
        }
}

/* Checks that t is (B, H, rows?, cols): rows < 0 accepts any. */
static bool attn_shape_ok(const onyx_tensor *t, int64_t B, int64_t H, int64_t rows, int64_t cols) {
    return t->ndim == 4 && t->dims[0] == B && t->dims[1] == H && (rows < 0 || t->dims[2] == rows) &&
           t->dims[3] == cols;
}

static onyx_status run_attention(const onyx_node *nd, onyx_exec *x) {
    const attn_attr *at = nd->state;
    const onyx_tensor *Q = onyx_exec_input(x, 0), *K = onyx_exec_input(x, 1),
                      *V = onyx_exec_input(x, 2), *M = onyx_exec_input(x, 3),
                      *PK = onyx_exec_input(x, 4), *PV = onyx_exec_input(x, 5),
                      *NP = onyx_exec_input(x, 6);
    if (!Q || !K || !V) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing Q, K or V");
    if (!is_float_type(Q->dtype) || K->dtype != Q->dtype || !is_float_type(V->dtype))
        return onyx_exec_fail(
            x, ONYX_ERR_INVALID_ARGUMENT,
            "Q and K must share a float type and V be a float type (got %s, %s, %s)",
            onyx_dtype_name(Q->dtype), onyx_dtype_name(K->dtype), onyx_dtype_name(V->dtype));
    if (Q->ndim != K->ndim || Q->ndim != V->ndim || (Q->ndim != 3 && Q->ndim != 4))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "Q, K and V must all be 3-D or all 4-D (got ranks %d, %d, %d)",
                              Q->ndim, K->ndim, V->ndim);
    if ((PK == NULL) != (PV == NULL))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "past_key and past_value must be given together");

    attn_job j;
    memset(&j, 0, sizeof j);
    j.at = at;
    int64_t Skv;
    bool three = Q->ndim == 3;
    if (three) {
        if (at->q_heads <= 0 || at->kv_heads <= 0)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "3-D inputs need q_num_heads and kv_num_heads");
        j.Hq = at->q_heads;
        j.Hkv = at->kv_heads;
        if (Q->dims[2] % j.Hq || K->dims[2] % j.Hkv || V->dims[2] % j.Hkv)
            return onyx_exec_fail(
                x, ONYX_ERR_INVALID_ARGUMENT,
                "hidden sizes (%lld, %lld, %lld) are not multiples of the head counts",
                (long long)Q->dims[2], (long long)K->dims[2], (long long)V->dims[2]);
        j.B = Q->dims[0];
        j.Sq = Q->dims[1];
        j.D = Q->dims[2] / j.Hq;
        Skv = K->dims[1];
        if (K->dims[2] / j.Hkv != j.D)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "Q and K head sizes differ");
        j.Dv = V->dims[2] / j.Hkv;
        if (K->dims[0] != j.B || V->dims[0] != j.B || V->dims[1] != Skv)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "K and V batch/sequence sizes do not match Q and each other");
    } else {
        j.B = Q->dims[0];
        j.Hq = Q->dims[1];
        j.Sq = Q->dims[2];
        j.D = Q->dims[3];
        j.Hkv = K->dims[1];
        Skv = K->dims[2];
        j.Dv = V->dims[3];
        if (K->dims[0] != j.B || V->dims[0] != j.B || K->dims[3] != j.D || V->dims[1] != j.Hkv ||
            V->dims[2] != Skv)
            return onyx_exec_fail(
                x, ONYX_ERR_INVALID_ARGUMENT,
                "Q, K and V shapes do not agree on batch, heads, sequence or head size");
        if ((at->q_heads && at->q_heads != j.Hq) || (at->kv_heads && at->kv_heads != j.Hkv))
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "q_num_heads/kv_num_heads disagree with the 4-D input shapes");
    }
    if (j.Hkv <= 0 || j.Hq % j.Hkv)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "q_num_heads (%lld) must be a multiple of kv_num_heads (%lld)",
                              (long long)j.Hq, (long long)j.Hkv);
    j.P = 0;
    if (PK) {
        if (PK->dtype != K->dtype || PV->dtype != V->dtype)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "past_key/past_value types differ from K/V");
        j.P = PK->ndim == 4 ? PK->dims[2] : -1;
        if (!attn_shape_ok(PK, j.B, j.Hkv, -1, j.D) || !attn_shape_ok(PV, j.B, j.Hkv, j.P, j.Dv))
            return onyx_exec_fail(
                x, ONYX_ERR_INVALID_ARGUMENT,
                "past_key must be (%lld, %lld, P, %lld) and past_value (%lld, %lld, P, %lld)",
                (long long)j.B, (long long)j.Hkv, (long long)j.D, (long long)j.B, (long long)j.Hkv,
                (long long)j.Dv);
    }
    j.T = j.P + Skv;

    onyx_dtype ct = Q->dtype == ONYX_DTYPE_DOUBLE || V->dtype == ONYX_DTYPE_DOUBLE
                        ? ONYX_DTYPE_DOUBLE
                        : ONYX_DTYPE_FLOAT;
    size_t es = onyx_dtype_size(ct);

    /* Outputs. */
    int64_t ydims[4];
    int yn = three ? 3 : 4;
    if (three) {
        ydims[0] = j.B, ydims[1] = j.Sq, ydims[2] = j.Hq * j.Dv;
    } else {
        ydims[0] = j.B, ydims[1] = j.Hq, ydims[2] = j.Sq, ydims[3] = j.Dv;
    }
    onyx_tensor *Y, *PKo = NULL, *PVo = NULL, *QK = NULL;
    onyx_status st = onyx_exec_output(x, 0, Q->dtype, yn, ydims, &Y);
    if (st) return st;
    bool want_pk = nd->n_out > 1 && onyx_exec_wants_output(x, 1);
    bool want_pv = nd->n_out > 2 && onyx_exec_wants_output(x, 2);
    bool want_qk = nd->n_out > 3 && onyx_exec_wants_output(x, 3);
    int64_t pkd[4] = {j.B, j.Hkv, j.T, j.D}, pvd[4] = {j.B, j.Hkv, j.T, j.Dv};
    int64_t qkd[4] = {j.B, j.Hq, j.Sq, j.T};
    if (want_pk && (st = onyx_exec_output(x, 1, K->dtype, 4, pkd, &PKo))) return st;
    if (want_pv && (st = onyx_exec_output(x, 2, V->dtype, 4, pvd, &PVo))) return st;
    if (want_qk && (st = onyx_exec_output(x, 3, Q->dtype, 4, qkd, &QK))) return st;
    if (onyx_tensor_count(Y) == 0 && !want_pk && !want_pv && !want_qk) return ONYX_OK;

    /* Operands in the compute type. */
    void *q = as_type(x, Q, ct), *k = as_type(x, K, ct), *v = as_type(x, V, ct);
    if (!q || !k || !v) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    j.q = three ? view_3d(q, j.Hq, j.Sq, j.D) : view_4d(q, j.Hq, j.Sq, j.D);
    j.k = three ? view_3d(k, j.Hkv, Skv, j.D) : view_4d(k, j.Hkv, Skv, j.D);
    j.v = three ? view_3d(v, j.Hkv, Skv, j.Dv) : view_4d(v, j.Hkv, Skv, j.Dv);
    /* The KV cache: present = concat(past, new) along the sequence. */
    if (PK || want_pk || want_pv) {
        void *pk = PK ? as_type(x, PK, ct) : NULL, *pv = PV ? as_type(x, PV, ct) : NULL;
        char *kc = PKo && PKo->dtype == ct
                       ? PKo->data
                       : onyx_exec_scratch(x, onyx_dtype_bytes(ct, j.B * j.Hkv * j.T * j.D + 1));
        char *vc = PVo && PVo->dtype == ct
                       ? PVo->data
                       : onyx_exec_scratch(x, onyx_dtype_bytes(ct, j.B * j.Hkv * j.T * j.Dv + 1));
        if ((PK && (!pk || !pv)) || !kc || !vc)
            return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        attn_concat(kc, pk, j.k, j.B, j.Hkv, j.P, Skv, j.D, es);
        attn_concat(vc, pv, j.v, j.B, j.Hkv, j.P, Skv, j.Dv, es);
        j.k = view_4d(kc, j.Hkv, j.T, j.D);
        j.v = view_4d(vc, j.Hkv, j.T, j.Dv);
        if (PKo && PKo->dtype != ct)
            onyx_convert(PKo->dtype, PKo->data, ct, kc, onyx_tensor_count(PKo), false);
        if (PVo && PVo->dtype != ct)
            onyx_convert(PVo->dtype, PVo->data, ct, vc, onyx_tensor_count(PVo), false);
    }
    void *y = Y->dtype == ct ? Y->data
                             : onyx_exec_scratch(x, onyx_dtype_bytes(ct, onyx_tensor_count(Y) + 1));
    if (!y) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    j.y = three ? view_3d(y, j.Hq, j.Sq, j.Dv) : view_4d(y, j.Hq, j.Sq, j.Dv);
    if (QK) {
        j.qk = QK->dtype == ct
                   ? QK->data
                   : onyx_exec_scratch(x, onyx_dtype_bytes(ct, onyx_tensor_count(QK) + 1));
        if (!j.qk) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if (M && (st = attn_mask_setup(x, M, ct, &j))) return st;
    if (NP) {
        if (NP->dtype != ONYX_DTYPE_INT64 || NP->ndim != 1 || NP->dims[0] != j.B)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "nonpad_kv_seqlen must be int64 of shape (%lld)", (long long)j.B);
        j.nonpad = NP->data;
    }
    j.alpha = at->has_scale ? at->scale : (j.D > 0 ? (float)(1.0 / sqrt((double)j.D)) : 1.0f);

    /* Tasks: blocks of query rows per (b, h); each thread keeps a
     * (qblock, T) score tile and its own GEMM workspace. */
    int64_t bh = j.B * j.Hq;
    if (bh > 0 && j.Sq > 0) {
        int threads = onyx_exec_threads(x);
        /* Query rows per task: as many as keep the (qblock, T) score tile
         * near 1 MB, so that K and V are packed once for many rows; fewer
         * when (b, h) pairs alone do not give every thread two tasks. */
        int64_t budget = ((int64_t)1 << 18) / (j.T > 0 ? j.T : 1);
        j.qblock = budget < 16 ? 16 : budget;
        if (j.qblock > j.Sq) j.qblock = j.Sq;
        if (bh < 2 * threads && j.Sq > 16) {
            int64_t per = (2 * threads + bh - 1) / bh; /* blocks per (b, h) */
            int64_t want = (j.Sq + per - 1) / per;
            want = want < 16 ? 16 : want;
            if (want < j.qblock) j.qblock = want;
        }
        j.nqb = (j.Sq + j.qblock - 1) / j.qblock;
        j.kern = onyx_kernels_get()->sgemm;
        /* Prefill: K^T once per (b, hk) turns the per-block packing of
         * op(B) into copies. Decode steps (few query rows) read K rows. */
        if (ct == ONYX_DTYPE_FLOAT && j.qblock >= ATTN_FEW_ROWS && j.D > 1) {
            int64_t n_kt = j.B * j.Hkv * j.D * j.T;
            float *kt = onyx_exec_scratch(x, onyx_dtype_bytes(ct, n_kt ? n_kt : 1));
            if (!kt) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
            kt_job kj = {&j, kt};
            onyx_exec_parallel(x, j.B * j.Hkv, 1, kt_task, &kj);
            j.kt = kt;
        }
        size_t ws = 0;
        if (ct == ONYX_DTYPE_FLOAT) {
            size_t w1 = onyx_sgemm_workspace(j.qblock, j.T, j.D, 1);
            size_t w2 = onyx_sgemm_workspace(j.qblock, j.Dv, j.T, 1);
            ws = w1 > w2 ? w1 : w2;
        }
        size_t sb = onyx_dtype_bytes(ct, j.qblock * (j.T ? j.T : 1));
        if (sb == SIZE_MAX || ws > SIZE_MAX / 4 - sb)
            return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "attention scores too large");
        j.score_bytes = (sb + 63) & ~(size_t)63;
        j.work_stride = j.score_bytes + ((ws + 63) & ~(size_t)63);
        if (j.work_stride > SIZE_MAX / (size_t)threads)
            return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "attention scores too large");
        j.work = onyx_exec_scratch(x, j.work_stride * (size_t)threads);
        if (!j.work) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        int64_t macs = j.qblock * j.T * (j.D + j.Dv);
        int64_t grain = macs >= ((int64_t)1 << 15) ? 1 : ((int64_t)1 << 15) / (macs + 1) + 1;
        onyx_exec_parallel(x, bh * j.nqb, grain, ct == ONYX_DTYPE_FLOAT ? attn_task_f : attn_task_,
                           &j);
        if (onyx_exec_aborted(x)) return onyx_exec_fail(x, ONYX_ERR_CANCELLED, "cancelled");
    }
    if (y != Y->data) onyx_convert(Y->dtype, Y->data, ct, y, onyx_tensor_count(Y), false);
    if (QK && j.qk != QK->data)
        onyx_convert(QK->dtype, QK->data, ct, j.qk, onyx_tensor_count(QK), false);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// RotaryEmbedding

typedef struct rope_attr {
    bool interleaved;
    int64_t rot_dim; /* 0: the head size */
    int64_t heads;   /* 0 when absent */
} rope_attr;

static onyx_status init_rope(onyx_node *n, onyx_error *err) {
    rope_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->interleaved = onyx_attr_int(n, "interleaved", 0) != 0;
    a->rot_dim = onyx_attr_int(n, "rotary_embedding_dim", 0);
    a->heads = onyx_attr_int(n, "num_heads", 0);
    if (a->rot_dim < 0 || a->heads < 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "rotary_embedding_dim and num_heads must be >= 0");
    n->state = a;
    return ONYX_OK;
}

static onyx_status run_rope(const onyx_node *nd, onyx_exec *x) {
    const rope_attr *at = nd->state;
    const onyx_tensor *X = onyx_exec_input(x, 0), *C = onyx_exec_input(x, 1),
                      *S = onyx_exec_input(x, 2), *PI = onyx_exec_input(x, 3);
    if (!X || !C || !S) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    if (!is_float_type(X->dtype) || C->dtype != X->dtype || S->dtype != X->dtype)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "input, cos_cache and sin_cache must share a float type");
    int64_t B, H, Sq, D;
    if (X->ndim == 4) {
        B = X->dims[0], H = X->dims[1], Sq = X->dims[2], D = X->dims[3];
        if (at->heads && at->heads != H)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "num_heads disagrees with input");
    } else if (X->ndim == 3) {
        if (at->heads <= 0)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "a 3-D input needs num_heads");
        H = at->heads;
        B = X->dims[0], Sq = X->dims[1];
        if (X->dims[2] % H)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "hidden size %lld is not a multiple of num_heads %lld",
                                  (long long)X->dims[2], (long long)H);
        D = X->dims[2] / H;
    } else {
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "input must be 3-D or 4-D, got rank %d",
                              X->ndim);
    }
    int64_t rot = at->rot_dim ? at->rot_dim : D;
    if (rot > D || rot % 2)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "rotary dimension %lld must be even and at most the head size %lld",
                              (long long)rot, (long long)D);
    int64_t half = rot / 2, npos = 0;
    if (PI) {
        if (!onyx_dtype_is_signed_int(PI->dtype) || PI->ndim != 2 || PI->dims[0] != B ||
            PI->dims[1] != Sq)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "position_ids must be integer of shape (%lld, %lld)",
                                  (long long)B, (long long)Sq);
        if (C->ndim != 2 || S->ndim != 2 || C->dims[1] != half || S->dims[1] != half ||
            S->dims[0] != C->dims[0])
            return onyx_exec_fail(
                x, ONYX_ERR_INVALID_ARGUMENT,
                "cos_cache/sin_cache must be (max_position, %lld) with position_ids",
                (long long)half);
        npos = C->dims[0];
    } else if (C->ndim != 3 || S->ndim != 3 || C->dims[0] != B || C->dims[1] != Sq ||
               C->dims[2] != half || S->dims[0] != B || S->dims[1] != Sq || S->dims[2] != half) {
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "cos_cache/sin_cache must be (%lld, %lld, %lld) without position_ids",
                              (long long)B, (long long)Sq, (long long)half);
    }
    onyx_tensor *Y;
    onyx_status st = onyx_exec_output(x, 0, X->dtype, X->ndim, X->dims, &Y);
    if (st) return st;
    int64_t count = onyx_tensor_count(X);
    if (count == 0) return ONYX_OK;
    /* float32 throughout (the types are float, float16 and bfloat16). */
    const float *xd = as_type(x, X, ONYX_DTYPE_FLOAT), *cd = as_type(x, C, ONYX_DTYPE_FLOAT),
                *sd = as_type(x, S, ONYX_DTYPE_FLOAT);
    float *yd = Y->dtype == ONYX_DTYPE_FLOAT
                    ? Y->data
                    : onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_FLOAT, count));
    if (!xd || !cd || !sd || !yd) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    if (yd != xd) memcpy(yd, xd, sizeof(float) * (size_t)count); /* the unrotated tail */
    for (int64_t b = 0; b < B; b++)
        for (int64_t s = 0; s < Sq; s++) {
            int64_t crow = b * Sq + s;
            if (PI) {
                int64_t p = onyx_tensor_get_i64(PI, b * Sq + s);
                if (p < 0 || p >= npos)
                    return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                          "position id %lld outside the caches' %lld rows",
                                          (long long)p, (long long)npos);
                crow = p;
            }
            const float *cr = cd + crow * half, *sr = sd + crow * half;
            for (int64_t h = 0; h < H; h++) {
                int64_t base =
                    X->ndim == 4 ? ((b * H + h) * Sq + s) * D : (b * Sq + s) * H * D + h * D;
                const float *xi = xd + base;
                float *yo = yd + base;
                if (at->interleaved) {
                    for (int64_t i = 0; i < half; i++) {
                        float x1 = xi[2 * i], x2 = xi[2 * i + 1];
                        yo[2 * i] = cr[i] * x1 - sr[i] * x2;
                        yo[2 * i + 1] = sr[i] * x1 + cr[i] * x2;
                    }
                } else {
                    for (int64_t i = 0; i < half; i++) {
                        float x1 = xi[i], x2 = xi[i + half];
                        yo[i] = cr[i] * x1 - sr[i] * x2;
                        yo[i + half] = sr[i] * x1 + cr[i] * x2;
                    }
                }
            }
        }
    if (yd != Y->data) onyx_convert(Y->dtype, Y->data, ONYX_DTYPE_FLOAT, yd, count, false);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Registry rows

#define T_ATTN                                                                                     \
    (ONYX_T(ONYX_DTYPE_FLOAT) | ONYX_T(ONYX_DTYPE_DOUBLE) | ONYX_T(ONYX_DTYPE_FLOAT16) |           \
     ONYX_T(ONYX_DTYPE_BFLOAT16))
#define T_ROPE (ONYX_T(ONYX_DTYPE_FLOAT) | ONYX_T(ONYX_DTYPE_FLOAT16) | ONYX_T(ONYX_DTYPE_BFLOAT16))

const onyx_op_schema onyx_ops_attention[] = {
    {"", "Attention", 23, 3, 6, 1, 4, T_ATTN, init_attention, run_attention, 0},
    {"", "Attention", 24, 3, 7, 1, 4, T_ATTN, init_attention, run_attention, 0},
    {"", "RotaryEmbedding", 23, 3, 4, 1, 1, T_ROPE, init_rope, run_rope, 0},
    {0},
};
