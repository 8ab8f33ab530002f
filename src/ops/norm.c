/* norm.c - the normalization operators: BatchNormalization (inference and
 * training_mode), InstanceNormalization, GroupNormalization (opset 18
 * per-group and opset 21 per-channel affine), LayerNormalization (with Mean
 * and InvStdDev), RMSNormalization, LRN, MeanVarianceNormalization and
 * LpNormalization. float16/bfloat16 compute in float32, double in double;
 * statistics accumulate in double. */
#include "core/op.h"
#include "kernels/dispatch.h"

#include <math.h>
#include <string.h>

// ----------------------------------------------------------------------------
// Attributes

typedef struct norm_attr {
    double epsilon;
    int64_t axis;          /* LayerNormalization, RMSNormalization, LpNormalization */
    double momentum;       /* BatchNormalization */
    bool training;         /* BatchNormalization opset >= 14 training_mode */
    int64_t groups;        /* GroupNormalization num_groups */
    double alpha, beta, bias; /* LRN */
    int64_t size;          /* LRN */
    int64_t p;             /* LpNormalization */
    int64_t n_axes;        /* MeanVarianceNormalization (-1: default 0, 2, 3) */
    const int64_t *axes;
} norm_attr;

static onyx_status init_norm(onyx_node *n, onyx_error *err) {
    norm_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->epsilon = onyx_attr_float(n, "epsilon", 1e-5f);
    a->axis = onyx_attr_int(n, "axis", -1);
    a->momentum = onyx_attr_float(n, "momentum", 0.9f);
    a->training = onyx_attr_int(n, "training_mode", 0) != 0;
    a->groups = onyx_attr_int(n, "num_groups", 0);
    a->alpha = onyx_attr_float(n, "alpha", 1e-4f);
    a->beta = onyx_attr_float(n, "beta", 0.75f);
    a->bias = onyx_attr_float(n, "bias", 1.0f);
    a->size = onyx_attr_int(n, "size", 0);
    a->p = onyx_attr_int(n, "p", 2);
    a->n_axes = onyx_attr_ints(n, "axes", &a->axes);
    if (!strcmp(n->op_type, "GroupNormalization") && a->groups < 1)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "num_groups must be >= 1");
    if (!strcmp(n->op_type, "LRN") && a->size < 1)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "size must be >= 1");
    if (!strcmp(n->op_type, "LpNormalization") && a->p != 1 && a->p != 2)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "p must be 1 or 2");
    n->state = a;
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Compute-type plumbing

/* The operators compute in T = float (float, float16, bfloat16 inputs) or
 * double. An io_buf pairs an input/output with its T-typed view. */
typedef struct norm_io {
    onyx_dtype ct;    /* compute type */
    const void *x;    /* X as ct */
    void *y;          /* Y as ct (Y's own data when the types match) */
    onyx_tensor *Y;
    int64_t count;
} norm_io;

static bool is_double(onyx_dtype t) { return t == ONYX_DTYPE_DOUBLE; }

/* Sets up io for X -> Y of the same shape and type (output 0). */
static onyx_status io_begin(onyx_exec *x, const onyx_tensor *X, norm_io *io) {
    if (X->dtype != ONYX_DTYPE_FLOAT && X->dtype != ONYX_DTYPE_DOUBLE &&
        X->dtype != ONYX_DTYPE_FLOAT16 && X->dtype != ONYX_DTYPE_BFLOAT16)
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "element type %s is not supported",
                              onyx_dtype_name(X->dtype));
    io->ct = is_double(X->dtype) ? ONYX_DTYPE_DOUBLE : ONYX_DTYPE_FLOAT;
    onyx_status st = onyx_exec_output(x, 0, X->dtype, X->ndim, X->dims, &io->Y);
    if (st) return st;
    io->count = onyx_tensor_count(X);
    io->x = X->data;
    io->y = io->Y->data;
    if (io->ct != X->dtype && io->count > 0) {
        float *xf = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_FLOAT, io->count));
        float *yf = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_FLOAT, io->count));
        if (!xf || !yf) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        onyx_convert(ONYX_DTYPE_FLOAT, xf, X->dtype, X->data, io->count, false);
        io->x = xf;
        io->y = yf;
    }
    return ONYX_OK;
}

static void io_end(norm_io *io) {
    if (io->y != io->Y->data && io->count > 0)
        onyx_convert(io->Y->dtype, io->Y->data, io->ct, io->y, io->count, false);
}

/* Parameter tensor p broadcast (unidirectionally) to the shape (nd, dims)
 * and converted to ct, in scratch. NULL p gives NULL with ONYX_OK. */
static onyx_status param_expand(onyx_exec *x, const onyx_tensor *p, onyx_dtype ct, int nd,
                                const int64_t *dims, const char *what, void **out) {
    *out = NULL;
    if (!p) return ONYX_OK;
    if (!onyx_dtype_is_float(p->dtype))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "%s must be a float tensor", what);
    bool ok = p->ndim <= nd;
    for (int d = 0; ok && d < p->ndim; d++) {
        int64_t pd = p->dims[p->ndim - 1 - d], td = dims[nd - 1 - d];
        ok = pd == td || pd == 1;
    }
    if (!ok)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "%s (rank %d) does not broadcast to the normalized shape", what,
                              p->ndim);
    int64_t count = onyx_dims_count(nd, dims);
    void *buf = onyx_exec_scratch(x, onyx_dtype_bytes(ct, count > 0 ? count : 1));
    if (!buf) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    if (onyx_tensor_count(p) == count) {
        onyx_convert(ct, buf, p->dtype, p->data, count, false);
    } else {
        int64_t strides[ONYX_MAX_DIMS], idx[ONYX_MAX_DIMS] = {0};
        onyx_broadcast_strides(p, nd, dims, strides);
        for (int64_t i = 0; i < count; i++) {
            int64_t src = 0;
            for (int d = 0; d < nd; d++) src += idx[d] * strides[d];
            double v = onyx_tensor_get_f64(p, src);
            if (ct == ONYX_DTYPE_DOUBLE) ((double *)buf)[i] = v;
            else ((float *)buf)[i] = (float)v;
            for (int d = nd - 1; d >= 0; d--) {
                if (++idx[d] < dims[d]) break;
                idx[d] = 0;
            }
        }
    }
    *out = buf;
    return ONYX_OK;
}

/* A 1-D parameter of exactly `len` values (or `alt` values when alt > 0)
 * converted to ct; *got receives the count found. */
static onyx_status param_vector(onyx_exec *x, const onyx_tensor *p, onyx_dtype ct, int64_t len,
                                int64_t alt, const char *what, void **out, int64_t *got) {
    *out = NULL;
    if (!p) return ONYX_OK;
    int64_t c = onyx_tensor_count(p);
    if (!onyx_dtype_is_float(p->dtype) || (c != len && (alt <= 0 || c != alt)))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "%s must hold %lld float values, got %lld",
                              what, (long long)len, (long long)c);
    void *buf = onyx_exec_scratch(x, onyx_dtype_bytes(ct, c > 0 ? c : 1));
    if (!buf) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    onyx_convert(ct, buf, p->dtype, p->data, c, false);
    *out = buf;
    if (got) *got = c;
    return ONYX_OK;
}

static int64_t grain_for(int64_t work) { return work >= 8192 ? 1 : 8192 / (work + 1) + 1; }

// ----------------------------------------------------------------------------
// Kernels (instantiated for float and double)

/* Row normalization: rows of `len` contiguous values; LayerNorm subtracts
 * the mean, RMSNorm does not. */
typedef struct rows_job {
    const void *x;
    void *y;
    const void *scale, *bias; /* (len) or NULL */
    int64_t len;
    double eps;
    bool rms;
    float *mean, *inv;        /* (rows) outputs or NULL */
    const onyx_row_kernels *rk; /* float32 rows */
} rows_job;

/* Groups of `cpg` channels x `S` positions, contiguous; affine per channel. */
typedef struct group_job {
    const void *x;
    void *y;
    const void *scale, *bias; /* (C) or NULL */
    int64_t groups, cpg, S;
    double eps;
} group_job;

/* Per-channel affine y = x*a[c] + b[c] over planes of S (or per element of
 * a (C, S) block when per_elem). */
typedef struct affine_job {
    const void *x;
    void *y;
    const double *a, *b;
    int64_t C, S;
    bool per_elem;
} affine_job;

/* double rows (float32 rows run on the row kernels of kernels/rows.h). */
#define ROWS_KERNEL(T)                                                                    \
    static void rows_task_##T(void *ctx, int64_t begin, int64_t end, int thread) {         \
        const rows_job *j = ctx;                                                           \
        (void)thread;                                                                      \
        const T *sc = j->scale, *bi = j->bias;                                             \
        for (int64_t r = begin; r < end; r++) {                                            \
            const T *x = (const T *)j->x + r * j->len;                                     \
            T *y = (T *)j->y + r * j->len;                                                 \
            double mean = 0, var = 0;                                                      \
            if (!j->rms) {                                                                 \
                for (int64_t i = 0; i < j->len; i++) mean += x[i];                         \
                mean /= (double)j->len;                                                    \
            }                                                                              \
            for (int64_t i = 0; i < j->len; i++) {                                         \
                double d = (double)x[i] - mean;                                            \
                var += d * d;                                                              \
            }                                                                              \
            var /= (double)j->len;                                                         \
            double inv = 1.0 / sqrt(var + j->eps);                                         \
            for (int64_t i = 0; i < j->len; i++) {                                         \
                double v = ((double)x[i] - mean) * inv;                                    \
                if (sc) v *= sc[i];                                                        \
                if (bi) v += bi[i];                                                        \
                y[i] = (T)v;                                                               \
            }                                                                              \
            if (j->mean) j->mean[r] = (float)mean;                                         \
            if (j->inv) j->inv[r] = (float)inv;                                            \
        }                                                                                  \
    }
ROWS_KERNEL(double)

#define NORM_KERNELS(T)                                                                    \
    static void group_task_##T(void *ctx, int64_t begin, int64_t end, int thread) {        \
        const group_job *j = ctx;                                                          \
        (void)thread;                                                                      \
        const T *sc = j->scale, *bi = j->bias;                                             \
        const int64_t block = j->cpg * j->S;                                               \
        for (int64_t t = begin; t < end; t++) {                                            \
            const T *x = (const T *)j->x + t * block;                                      \
            T *y = (T *)j->y + t * block;                                                  \
            double mean = 0, var = 0;                                                      \
            for (int64_t i = 0; i < block; i++) mean += x[i];                              \
            mean /= (double)(block ? block : 1);                                           \
            for (int64_t i = 0; i < block; i++) {                                          \
                double d = (double)x[i] - mean;                                            \
                var += d * d;                                                              \
            }                                                                              \
            var /= (double)(block ? block : 1);                                            \
            double inv = 1.0 / sqrt(var + j->eps);                                         \
            int64_t c0 = (t % j->groups) * j->cpg;                                         \
            for (int64_t c = 0; c < j->cpg; c++) {                                         \
                double s = sc ? sc[c0 + c] * inv : inv;                                    \
                double b = (bi ? (double)bi[c0 + c] : 0.0) - mean * s;                     \
                for (int64_t i = 0; i < j->S; i++)                                         \
                    y[c * j->S + i] = (T)(x[c * j->S + i] * s + b);                        \
            }                                                                              \
        }                                                                                  \
    }                                                                                      \
    static void affine_task_##T(void *ctx, int64_t begin, int64_t end, int thread) {       \
        const affine_job *j = ctx;                                                         \
        (void)thread;                                                                      \
        for (int64_t t = begin; t < end; t++) {                                            \
            int64_t c = t % j->C;                                                          \
            const T *x = (const T *)j->x + t * j->S;                                       \
            T *y = (T *)j->y + t * j->S;                                                   \
            if (j->per_elem) {                                                             \
                const double *a = j->a + c * j->S, *b = j->b + c * j->S;                   \
                for (int64_t i = 0; i < j->S; i++) y[i] = (T)(x[i] * a[i] + b[i]);         \
            } else {                                                                       \
                const T a = (T)j->a[c], b = (T)j->b[c];                                    \
                for (int64_t i = 0; i < j->S; i++) y[i] = x[i] * a + b;                    \
            }                                                                              \
        }                                                                                  \
    }
NORM_KERNELS(float)
NORM_KERNELS(double)

/* float32 rows on the dispatched row kernel. */
static void rows_task_kernel(void *ctx, int64_t begin, int64_t end, int thread) {
    const rows_job *j = ctx;
    (void)thread;
    for (int64_t r = begin; r < end; r++)
        j->rk->layernorm((const float *)j->x + r * j->len, (float *)j->y + r * j->len, j->len,
                         (float)j->eps, j->scale, j->bias, j->rms, j->mean ? j->mean + r : NULL,
                         j->inv ? j->inv + r : NULL);
}

// ----------------------------------------------------------------------------
// LayerNormalization and RMSNormalization

static onyx_status run_rows_norm(const onyx_node *nd, onyx_exec *x) {
    const norm_attr *a = nd->state;
    bool rms = !strcmp(nd->op_type, "RMSNormalization");
    const onyx_tensor *X = onyx_exec_input(x, 0), *S = onyx_exec_input(x, 1);
    const onyx_tensor *B = rms ? NULL : onyx_exec_input(x, 2);
    if (!X || !S) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    int r = X->ndim;
    int64_t axis = a->axis < 0 ? a->axis + r : a->axis;
    if (axis < 0 || axis >= (r ? r : 1))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "axis %lld out of range for rank %d",
                              (long long)a->axis, r);
    norm_io io;
    onyx_status st = io_begin(x, X, &io);
    if (st) return st;
    int64_t rows = 1, len = 1;
    for (int d = 0; d < r; d++) {
        if (d < axis) rows *= X->dims[d];
        else len *= X->dims[d];
    }
    int nn = r - (int)axis;
    const int64_t *ndims = X->dims + axis;
    rows_job j = {io.x, io.y, NULL, NULL, len, a->epsilon, rms, NULL, NULL,
                  onyx_kernels_get()->rows};
    void *sc, *bi;
    if ((st = param_expand(x, S, io.ct, nn, ndims, "scale", &sc)) ||
        (st = param_expand(x, B, io.ct, nn, ndims, "bias", &bi)))
        return st;
    j.scale = sc;
    j.bias = bi;
    /* Mean and InvStdDev: X's shape with the normalized axes set to 1. */
    int64_t sdims[ONYX_MAX_DIMS];
    for (int d = 0; d < r; d++) sdims[d] = d < axis ? X->dims[d] : 1;
    for (int k = 1; !rms && k <= 2 && k < nd->n_out; k++) {
        if (!onyx_exec_wants_output(x, k)) continue;
        onyx_tensor *o;
        if ((st = onyx_exec_output(x, k, ONYX_DTYPE_FLOAT, r, sdims, &o))) return st;
        if (k == 1) j.mean = o->data;
        else j.inv = o->data;
    }
    if (io.count > 0 && len > 0)
        onyx_exec_parallel(x, rows, grain_for(len),
                           io.ct == ONYX_DTYPE_DOUBLE ? rows_task_double : rows_task_kernel, &j);
    io_end(&io);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// InstanceNormalization and GroupNormalization

static onyx_status run_group_norm(const onyx_node *nd, onyx_exec *x) {
    const norm_attr *a = nd->state;
    bool instance = !strcmp(nd->op_type, "InstanceNormalization");
    const onyx_tensor *X = onyx_exec_input(x, 0), *S = onyx_exec_input(x, 1);
    const onyx_tensor *B = onyx_exec_input(x, 2);
    if (!X || !S || !B) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    if (X->ndim < 2)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "X must be (N, C, ...), got rank %d",
                              X->ndim);
    int64_t C = X->dims[1], G = instance ? C : a->groups, Sz = 1;
    for (int d = 2; d < X->ndim; d++) Sz *= X->dims[d];
    if (G < 1 || C % G != 0)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "%lld channels do not split into %lld groups",
                              (long long)C, (long long)G);
    norm_io io;
    onyx_status st = io_begin(x, X, &io);
    if (st) return st;
    /* Opset 18 GroupNormalization scales per group, later opsets per
     * channel: expand a per-group vector to channels. */
    void *sc, *bi;
    int64_t ns = 0, nb = 0;
    if ((st = param_vector(x, S, io.ct, C, G, "scale", &sc, &ns)) ||
        (st = param_vector(x, B, io.ct, C, G, "bias", &bi, &nb)))
        return st;
    void **pv[2] = {&sc, &bi};
    int64_t cnt[2] = {ns, nb};
    for (int k = 0; k < 2; k++) {
        if (cnt[k] == C || !*pv[k]) continue;
        void *full = onyx_exec_scratch(x, onyx_dtype_bytes(io.ct, C));
        if (!full) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        for (int64_t c = 0; c < C; c++) {
            if (io.ct == ONYX_DTYPE_DOUBLE) ((double *)full)[c] = ((double *)*pv[k])[c / (C / G)];
            else ((float *)full)[c] = ((float *)*pv[k])[c / (C / G)];
        }
        *pv[k] = full;
    }
    group_job j = {io.x, io.y, sc, bi, G, C / G, Sz, a->epsilon};
    if (io.count > 0)
        onyx_exec_parallel(x, X->dims[0] * G, grain_for(C / G * Sz),
                           io.ct == ONYX_DTYPE_DOUBLE ? group_task_double : group_task_float, &j);
    io_end(&io);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// BatchNormalization

/* Per-channel mean and population variance over N and the spatial axes. */
static void channel_stats(onyx_dtype ct, const void *xv, int64_t N, int64_t C, int64_t S,
                          double *mean, double *var) {
    for (int64_t c = 0; c < C; c++) {
        double s = 0, q = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < S; i++) {
                int64_t k = (n * C + c) * S + i;
                s += ct == ONYX_DTYPE_DOUBLE ? ((const double *)xv)[k] : ((const float *)xv)[k];
            }
        double cnt = (double)(N * S), m = cnt > 0 ? s / cnt : 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < S; i++) {
                int64_t k = (n * C + c) * S + i;
                double d = (ct == ONYX_DTYPE_DOUBLE ? ((const double *)xv)[k]
                                                    : ((const float *)xv)[k]) - m;
                q += d * d;
            }
        mean[c] = m;
        var[c] = cnt > 0 ? q / cnt : 0;
    }
}

static onyx_status write_stat(onyx_exec *x, int k, onyx_dtype t, int64_t C, const double *v) {
    if (!onyx_exec_wants_output(x, k)) return ONYX_OK;
    onyx_tensor *o;
    onyx_status st = onyx_exec_output(x, k, t, 1, &C, &o);
    if (st) return st;
    onyx_convert(t, o->data, ONYX_DTYPE_DOUBLE, v, C, false);
    return ONYX_OK;
}

static onyx_status run_batch_norm(const onyx_node *nd, onyx_exec *x) {
    const norm_attr *a = nd->state;
    const onyx_tensor *in[5];
    for (int i = 0; i < 5; i++) {
        in[i] = onyx_exec_input(x, i);
        if (!in[i]) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input %d", i);
    }
    const onyx_tensor *X = in[0];
    if (X->ndim < 2)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "X must be (N, C, ...), got rank %d",
                              X->ndim);
    int64_t N = X->dims[0], C = X->dims[1], S = 1;
    for (int d = 2; d < X->ndim; d++) S *= X->dims[d];
    /* Training statistics: opset >= 14 with training_mode, or the extra
     * outputs of the older opsets. */
    bool training = nd->op->since_version >= 14 ? a->training : nd->n_out > 1;
    /* Before opset 9 (spatial = 0) parameters may hold one value per
     * element of a (C, spatial...) block instead of one per channel. */
    int64_t per = onyx_tensor_count(in[1]);
    bool per_elem = !training && per == C * S && S > 1;
    if (!per_elem) per = C;
    double *p[4];
    for (int i = 0; i < 4; i++) {
        const onyx_tensor *t = in[i + 1];
        if (!onyx_dtype_is_float(t->dtype) || onyx_tensor_count(t) != per)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "input %d must hold %lld float values", i + 1, (long long)per);
        p[i] = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, per ? per : 1));
        if (!p[i]) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        onyx_convert(ONYX_DTYPE_DOUBLE, p[i], t->dtype, t->data, per, false);
    }
    double *scale = p[0], *bias = p[1], *mean = p[2], *var = p[3];
    norm_io io;
    onyx_status st = io_begin(x, X, &io);
    if (st) return st;
    double *ka = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, per ? per : 1));
    double *kb = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, per ? per : 1));
    if (!ka || !kb) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    if (training) {
        double *bm = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, 4 * C + 1));
        if (!bm) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        double *bv = bm + C, *rm = bv + C, *rv = rm + C;
        channel_stats(io.ct, io.x, N, C, S, bm, bv);
        for (int64_t c = 0; c < C; c++) {
            rm[c] = mean[c] * a->momentum + bm[c] * (1 - a->momentum);
            rv[c] = var[c] * a->momentum + bv[c] * (1 - a->momentum);
        }
        if (nd->op->since_version >= 14) {
            /* Outputs: Y, running_mean, running_var (types of mean/var). */
            if ((st = write_stat(x, 1, in[3]->dtype, C, rm)) ||
                (st = write_stat(x, 2, in[4]->dtype, C, rv)))
                return st;
        } else {
            /* Outputs: Y, mean, var (running), saved_mean, saved_var. */
            if ((nd->n_out > 1 && (st = write_stat(x, 1, X->dtype, C, rm))) ||
                (nd->n_out > 2 && (st = write_stat(x, 2, X->dtype, C, rv))) ||
                (nd->n_out > 3 && (st = write_stat(x, 3, X->dtype, C, bm))) ||
                (nd->n_out > 4 && (st = write_stat(x, 4, X->dtype, C, bv))))
                return st;
        }
        mean = bm;
        var = bv;
    }
    for (int64_t i = 0; i < per; i++) {
        ka[i] = scale[i] / sqrt(var[i] + a->epsilon);
        kb[i] = bias[i] - mean[i] * ka[i];
    }
    affine_job j = {io.x, io.y, ka, kb, C, S, per_elem};
    if (io.count > 0)
        onyx_exec_parallel(x, N * C, grain_for(S),
                           io.ct == ONYX_DTYPE_DOUBLE ? affine_task_double : affine_task_float, &j);
    io_end(&io);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// LRN, MeanVarianceNormalization, LpNormalization (plain loops on
// double-converted data: these are rare and small)

/* X as a double scratch array. */
static double *as_f64(onyx_exec *x, const void *data, onyx_dtype ct, int64_t n) {
    double *d = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, n > 0 ? n : 1));
    if (d && n > 0) onyx_convert(ONYX_DTYPE_DOUBLE, d, ct, data, n, false);
    return d;
}

static onyx_status run_lrn(const onyx_node *nd, onyx_exec *x) {
    const norm_attr *a = nd->state;
    const onyx_tensor *X = onyx_exec_input(x, 0);
    if (!X) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    if (X->ndim < 2)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "X must be (N, C, ...), got rank %d",
                              X->ndim);
    norm_io io;
    onyx_status st = io_begin(x, X, &io);
    if (st) return st;
    int64_t N = X->dims[0], C = X->dims[1], S = 1;
    for (int d = 2; d < X->ndim; d++) S *= X->dims[d];
    double *xd = as_f64(x, io.x, io.ct, io.count), *yd = as_f64(x, io.x, io.ct, io.count);
    if (!xd || !yd) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    int64_t lo = (a->size - 1) / 2, hi = a->size / 2; /* floor and ceil of (size-1)/2 */
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < S; i++) {
                double sq = 0;
                int64_t c0 = c - lo < 0 ? 0 : c - lo, c1 = c + hi >= C ? C - 1 : c + hi;
                for (int64_t k = c0; k <= c1; k++) {
                    double v = xd[(n * C + k) * S + i];
                    sq += v * v;
                }
                int64_t at = (n * C + c) * S + i;
                yd[at] = xd[at] / pow(a->bias + a->alpha / (double)a->size * sq, a->beta);
            }
    onyx_convert(io.ct, io.y, ONYX_DTYPE_DOUBLE, yd, io.count, false);
    io_end(&io);
    return ONYX_OK;
}

static onyx_status run_mvn(const onyx_node *nd, onyx_exec *x) {
    const norm_attr *a = nd->state;
    const onyx_tensor *X = onyx_exec_input(x, 0);
    if (!X) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    static const int64_t def_axes[] = {0, 2, 3};
    const int64_t *axes = a->n_axes >= 0 ? a->axes : def_axes;
    int64_t n_axes = a->n_axes >= 0 ? a->n_axes : 3;
    bool reduced[ONYX_MAX_DIMS] = {false};
    for (int64_t i = 0; i < n_axes; i++) {
        int64_t ax = axes[i] < 0 ? axes[i] + X->ndim : axes[i];
        if (ax < 0 || ax >= X->ndim)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "axis %lld out of range for rank %d",
                                  (long long)axes[i], X->ndim);
        reduced[ax] = true;
    }
    norm_io io;
    onyx_status st = io_begin(x, X, &io);
    if (st) return st;
    int64_t groups = 1;
    for (int d = 0; d < X->ndim; d++)
        if (!reduced[d]) groups *= X->dims[d];
    double *xd = as_f64(x, io.x, io.ct, io.count);
    double *acc = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, 3 * groups + 1));
    int64_t *gi = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_INT64, io.count + 1));
    if (!xd || !acc || !gi) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    double *sum = acc, *sq = acc + groups, *cnt = acc + 2 * groups;
    memset(acc, 0, sizeof(double) * (size_t)(3 * groups));
    int64_t idx[ONYX_MAX_DIMS] = {0};
    for (int64_t i = 0; i < io.count; i++) {
        int64_t g = 0;
        for (int d = 0; d < X->ndim; d++)
            if (!reduced[d]) g = g * X->dims[d] + idx[d];
        gi[i] = g;
        sum[g] += xd[i];
        cnt[g] += 1;
        for (int d = X->ndim - 1; d >= 0; d--) {
            if (++idx[d] < X->dims[d]) break;
            idx[d] = 0;
        }
    }
    for (int64_t g = 0; g < groups; g++) sum[g] = cnt[g] > 0 ? sum[g] / cnt[g] : 0;
    for (int64_t i = 0; i < io.count; i++) {
        double d = xd[i] - sum[gi[i]];
        sq[gi[i]] += d * d;
    }
    /* The spec's function: (X - E[X]) / (sqrt(E[(X - E[X])^2]) + 1e-9). */
    for (int64_t i = 0; i < io.count; i++) {
        int64_t g = gi[i];
        xd[i] = (xd[i] - sum[g]) / (sqrt(sq[g] / cnt[g]) + 1e-9);
    }
    onyx_convert(io.ct, io.y, ONYX_DTYPE_DOUBLE, xd, io.count, false);
    io_end(&io);
    return ONYX_OK;
}

static onyx_status run_lp_norm(const onyx_node *nd, onyx_exec *x) {
    const norm_attr *a = nd->state;
    const onyx_tensor *X = onyx_exec_input(x, 0);
    if (!X) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    int r = X->ndim;
    int64_t axis = a->axis < 0 ? a->axis + r : a->axis;
    if (axis < 0 || axis >= (r ? r : 1))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "axis %lld out of range for rank %d",
                              (long long)a->axis, r);
    norm_io io;
    onyx_status st = io_begin(x, X, &io);
    if (st) return st;
    int64_t outer = 1, len = r ? X->dims[axis] : 1, inner = 1;
    for (int d = 0; d < r; d++) {
        if (d < axis) outer *= X->dims[d];
        else if (d > axis) inner *= X->dims[d];
    }
    double *xd = as_f64(x, io.x, io.ct, io.count);
    if (!xd) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double *v = xd + o * len * inner + i, s = 0;
            for (int64_t k = 0; k < len; k++)
                s += a->p == 1 ? fabs(v[k * inner]) : v[k * inner] * v[k * inner];
            double norm = a->p == 1 ? s : sqrt(s);
            for (int64_t k = 0; k < len; k++) v[k * inner] /= norm;
        }
    onyx_convert(io.ct, io.y, ONYX_DTYPE_DOUBLE, xd, io.count, false);
    io_end(&io);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Registry rows

#define T_F (ONYX_T(ONYX_DTYPE_FLOAT) | ONYX_T(ONYX_DTYPE_DOUBLE) | ONYX_T(ONYX_DTYPE_FLOAT16))
#define T_FB ONYX_T_FLOATS

#define ROW(NAME, V, MIN_IN, MAX_IN, MAX_OUT, TYPES, RUN) \
    {"", NAME, V, MIN_IN, MAX_IN, 1, MAX_OUT, TYPES, init_norm, RUN, 0}

const onyx_op_schema onyx_ops_norm[] = {
    ROW("BatchNormalization", 1, 5, 5, 5, T_F, run_batch_norm),
    ROW("BatchNormalization", 6, 5, 5, 5, T_F, run_batch_norm),
    ROW("BatchNormalization", 7, 5, 5, 5, T_F, run_batch_norm),
    ROW("BatchNormalization", 9, 5, 5, 5, T_F, run_batch_norm),
    ROW("BatchNormalization", 14, 5, 5, 3, T_FB, run_batch_norm),
    ROW("BatchNormalization", 15, 5, 5, 3, T_FB, run_batch_norm),
    ROW("InstanceNormalization", 1, 3, 3, 1, T_F, run_group_norm),
    ROW("InstanceNormalization", 6, 3, 3, 1, T_F, run_group_norm),
    ROW("InstanceNormalization", 22, 3, 3, 1, T_FB, run_group_norm),
    ROW("GroupNormalization", 18, 3, 3, 1, T_FB, run_group_norm),
    ROW("GroupNormalization", 21, 3, 3, 1, T_FB, run_group_norm),
    ROW("LayerNormalization", 17, 2, 3, 3, T_FB, run_rows_norm),
    ROW("RMSNormalization", 23, 2, 2, 1, T_FB, run_rows_norm),
    ROW("LRN", 1, 1, 1, 1, T_F, run_lrn),
    ROW("LRN", 13, 1, 1, 1, T_FB, run_lrn),
    ROW("MeanVarianceNormalization", 9, 1, 1, 1, T_F, run_mvn),
    ROW("MeanVarianceNormalization", 13, 1, 1, 1, T_FB, run_mvn),
    ROW("LpNormalization", 1, 1, 1, 1, T_F, run_lp_norm),
    ROW("LpNormalization", 22, 1, 1, 1, T_FB, run_lp_norm),
    {0},
};
