/* pool.c - the pooling operators: MaxPool (with Indices), AveragePool, LpPool
 * over 1..6 spatial axes, their Global forms and MaxUnpool. MaxRoiPool and
 * RoiAlign sample by coordinates and live in spatial.c.
 * One N-D window walker serves every windowed pool; float16/bfloat16
 * compute in float32, double in double, MaxPool's int8/uint8 natively. */
#include "core/op.h"
#include "kernels/dispatch.h"
#include "kernels/rows.h"

#include <math.h>
#include <string.h>

#define MAX_SPATIAL (ONYX_MAX_DIMS - 2)

// ----------------------------------------------------------------------------
// Attributes and geometry

typedef enum pool_kind { POOL_MAX, POOL_AVG, POOL_LP } pool_kind;
typedef enum auto_pad { PAD_NOTSET, PAD_VALID, PAD_SAME_UPPER, PAD_SAME_LOWER } auto_pad;

typedef struct pool_attr {
    pool_kind kind;
    auto_pad pad_mode;
    bool ceil_mode, count_include_pad, col_major; /* col_major: storage_order 1 */
    double p;                                    /* LpPool */
    int64_t n_kernel, n_dil, n_pads, n_strides;
    const int64_t *kernel, *dil, *pads, *strides;
} pool_attr;

static onyx_status parse_auto_pad(onyx_node *n, auto_pad *out, onyx_error *err) {
    const char *ap = onyx_attr_string(n, "auto_pad", "NOTSET");
    if (!strcmp(ap, "NOTSET") || !ap[0]) *out = PAD_NOTSET;
    else if (!strcmp(ap, "VALID")) *out = PAD_VALID;
    else if (!strcmp(ap, "SAME_UPPER")) *out = PAD_SAME_UPPER;
    else if (!strcmp(ap, "SAME_LOWER")) *out = PAD_SAME_LOWER;
    else return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "auto_pad \"%s\" is not valid", ap);
    return ONYX_OK;
}

/* LpPool's p is a float in opset 1 and an int from opset 2. */
static double attr_p(const onyx_node *n) {
    const onyx_pb_attr *a = onyx_attr_find(n, "p");
    if (!a) return 2.0;
    return a->type == ONYX_PB_ATTR_FLOAT ? (double)a->f : (double)a->i;
}

static onyx_status init_pool(onyx_node *n, onyx_error *err) {
    pool_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->kind = !strcmp(n->op_type, "MaxPool") ? POOL_MAX
              : !strcmp(n->op_type, "LpPool") ? POOL_LP
                                              : POOL_AVG;
    onyx_status st = parse_auto_pad(n, &a->pad_mode, err);
    if (st) return st;
    a->ceil_mode = onyx_attr_int(n, "ceil_mode", 0) != 0;
    a->count_include_pad = onyx_attr_int(n, "count_include_pad", 0) != 0;
    a->col_major = onyx_attr_int(n, "storage_order", 0) != 0;
    a->p = attr_p(n);
    a->n_kernel = onyx_attr_ints(n, "kernel_shape", &a->kernel);
    a->n_dil = onyx_attr_ints(n, "dilations", &a->dil);
    a->n_pads = onyx_attr_ints(n, "pads", &a->pads);
    a->n_strides = onyx_attr_ints(n, "strides", &a->strides);
    if (a->n_kernel < 1)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "kernel_shape is required");
    if (a->n_kernel > MAX_SPATIAL)
        return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "%lld spatial axes are too many",
                           (long long)a->n_kernel);
    if ((a->n_dil >= 0 && a->n_dil != a->n_kernel) ||
        (a->n_strides >= 0 && a->n_strides != a->n_kernel) ||
        (a->n_pads >= 0 && a->n_pads != 2 * a->n_kernel))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "dilations/strides/pads do not match kernel_shape's %lld axes",
                           (long long)a->n_kernel);
    for (int64_t i = 0; i < a->n_kernel; i++) {
        if (a->kernel[i] < 1 || (a->n_dil >= 0 && a->dil[i] < 1) ||
            (a->n_strides >= 0 && a->strides[i] < 1))
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                               "kernel_shape, dilations and strides must be >= 1");
        if (a->n_pads >= 0 && (a->pads[i] < 0 || a->pads[i + a->n_kernel] < 0))
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "pads must be >= 0");
    }
    if (a->kind == POOL_LP && !(a->p > 0))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "p must be positive");
    n->state = a;
    return ONYX_OK;
}

/* Window geometry of one pooling; `pad`/`pad_end` are leading/trailing. */
typedef struct pool_geom {
    int nd;
    int64_t planes; /* N * C */
    int64_t in[MAX_SPATIAL], out[MAX_SPATIAL], kern[MAX_SPATIAL];
    int64_t stride[MAX_SPATIAL], dil[MAX_SPATIAL], pad[MAX_SPATIAL], pad_end[MAX_SPATIAL];
    int64_t in_size, out_size;
} pool_geom;

static onyx_status pool_geometry(onyx_exec *x, const pool_attr *a, const onyx_tensor *X,
                                 pool_geom *g) {
    memset(g, 0, sizeof *g);
    if (X->ndim != a->n_kernel + 2)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "X has rank %d; kernel_shape needs (N, C) + %lld spatial axes",
                              X->ndim, (long long)a->n_kernel);
    g->nd = (int)a->n_kernel;
    g->planes = X->dims[0] * X->dims[1];
    g->in_size = g->out_size = 1;
    for (int d = 0; d < g->nd; d++) {
        int64_t in = X->dims[d + 2], k = a->kernel[d];
        int64_t s = a->n_strides >= 0 ? a->strides[d] : 1;
        int64_t dl = a->n_dil >= 0 ? a->dil[d] : 1;
        int64_t ek = (k - 1) * dl + 1, pb = 0, pe = 0, out;
        switch (a->pad_mode) {
        case PAD_SAME_UPPER:
        case PAD_SAME_LOWER: {
            out = (in + s - 1) / s;
            int64_t total = (out - 1) * s + ek - in;
            if (total < 0) total = 0;
            pb = a->pad_mode == PAD_SAME_UPPER ? total / 2 : total - total / 2;
            pe = total - pb;
            break;
        }
        default:
            if (a->pad_mode == PAD_NOTSET && a->n_pads >= 0) {
                pb = a->pads[d];
                pe = a->pads[d + g->nd];
            }
            if (in + pb + pe < ek)
                return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                      "spatial axis %d: input %lld with pads is smaller than the window %lld",
                                      d, (long long)in, (long long)ek);
            out = (in + pb + pe - ek + (a->ceil_mode ? s - 1 : 0)) / s + 1;
            /* A last window that would start in the trailing padding is dropped. */
            if (a->ceil_mode && (out - 1) * s >= in + pb) out--;
            break;
        }
        g->in[d] = in;
        g->out[d] = out;
        g->kern[d] = k;
        g->stride[d] = s;
        g->dil[d] = dl;
        g->pad[d] = pb;
        g->pad_end[d] = pe;
        g->in_size *= in;
        g->out_size *= out;
    }
    return ONYX_OK;
}

/* Taps [lo, hi) of axis d whose input position lies inside the input, for
 * the window starting at `start`; `inpad` counts taps inside the padded
 * extent [-pad, in + pad_end) (count_include_pad's divisor). */
static void axis_taps(const pool_geom *g, int d, int64_t start, int64_t *lo, int64_t *hi,
                      int64_t *inpad) {
    int64_t dl = g->dil[d], k = g->kern[d];
    int64_t l = start >= 0 ? 0 : (-start + dl - 1) / dl;
    int64_t h = g->in[d] - start <= 0 ? 0 : (g->in[d] - start + dl - 1) / dl;
    if (h > k) h = k;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
    int64_t lim = g->in[d] + g->pad_end[d] - start; /* positions < in+pad_end */
    int64_t hp = lim <= 0 ? 0 : (lim + dl - 1) / dl;
    int64_t lp = start >= -g->pad[d] ? 0 : (-g->pad[d] - start + dl - 1) / dl;
    if (hp > k) hp = k;
    *inpad = hp > lp ? hp - lp : 0;
}

// ----------------------------------------------------------------------------
// Windowed pooling kernels

typedef struct pool_job {
    const pool_geom *g;
    const pool_attr *a;
    const void *x;
    void *y;
    int64_t *idx; /* MaxPool Indices, or NULL */
} pool_job;

/* For plane t and each output position: the per-axis tap ranges, then an
 * odometer over the taps, the last axis innermost. VISIT sees the flat
 * input offset within the plane (`off`); DONE writes output `o` from `valid`
 * (taps inside the input) and `inpad` (taps inside the padded extent). */
#define POOL_WALK(VISIT, DONE)                                                             \
    do {                                                                                   \
        int64_t oidx[MAX_SPATIAL] = {0};                                                   \
        const int last = g->nd - 1;                                                        \
        for (int64_t o = 0; o < g->out_size; o++) {                                        \
            int64_t lo[MAX_SPATIAL], hi[MAX_SPATIAL], start[MAX_SPATIAL], valid = 1, inpad = 1; \
            for (int d = 0; d < g->nd; d++) {                                              \
                int64_t ip;                                                                \
                start[d] = oidx[d] * g->stride[d] - g->pad[d];                             \
                axis_taps(g, d, start[d], &lo[d], &hi[d], &ip);                            \
                valid *= hi[d] - lo[d];                                                    \
                inpad *= ip;                                                               \
            }                                                                              \
            if (valid > 0) {                                                               \
                int64_t t_[MAX_SPATIAL];                                                   \
                for (int d = 0; d < g->nd; d++) t_[d] = lo[d];                             \
                for (;;) {                                                                 \
                    int64_t base = 0;                                                      \
                    for (int d = 0; d < last; d++)                                         \
                        base = base * g->in[d] + start[d] + t_[d] * g->dil[d];             \
                    base = base * g->in[last] + start[last];                               \
                    for (int64_t i = lo[last]; i < hi[last]; i++) {                        \
                        int64_t off = base + i * g->dil[last];                             \
                        VISIT;                                                             \
                    }                                                                      \
                    int d = last - 1;                                                      \
                    for (; d >= 0; d--) {                                                  \
                        if (++t_[d] < hi[d]) break;                                        \
                        t_[d] = lo[d];                                                     \
                    }                                                                      \
                    if (d < 0) break;                                                      \
                }                                                                          \
            }                                                                              \
            DONE;                                                                          \
            for (int d = last; d >= 0; d--) {                                              \
                if (++oidx[d] < g->out[d]) break;                                          \
                oidx[d] = 0;                                                               \
            }                                                                              \
        }                                                                                  \
    } while (0)

/* Flat offset within a plane in column-major spatial order (storage_order 1). */
static int64_t col_major_offset(const pool_geom *g, int64_t off) {
    int64_t r = 0, stride = 1, idx[MAX_SPATIAL];
    for (int d = g->nd - 1; d >= 0; d--) {
        idx[d] = off % g->in[d];
        off /= g->in[d];
    }
    for (int d = 0; d < g->nd; d++) {
        r += idx[d] * stride;
        stride *= g->in[d];
    }
    return r;
}

#define MAX_POOL(NAME, T, LOWEST)                                                          \
    static void NAME(void *ctx, int64_t begin, int64_t end, int thread) {                  \
        const pool_job *j = ctx;                                                           \
        const pool_geom *g = j->g;                                                         \
        (void)thread;                                                                      \
        for (int64_t t = begin; t < end; t++) {                                            \
            const T *x = (const T *)j->x + t * g->in_size;                                 \
            T *y = (T *)j->y + t * g->out_size;                                            \
            int64_t *yi = j->idx ? j->idx + t * g->out_size : NULL;                        \
            T best = LOWEST;                                                               \
            int64_t arg = -1;                                                              \
            POOL_WALK(                                                                     \
                if (arg < 0 || x[off] > best) {                                            \
                    best = x[off];                                                         \
                    arg = off;                                                             \
                },                                                                         \
                y[o] = best;                                                               \
                if (yi) yi[o] = arg < 0 ? 0                                                \
                                        : t * g->in_size +                                 \
                                              (j->a->col_major ? col_major_offset(g, arg) : arg); \
                best = LOWEST;                                                             \
                arg = -1;                                                                  \
                (void)valid; (void)inpad);                                                 \
        }                                                                                  \
    }
MAX_POOL(maxpool_float, float, -INFINITY)
MAX_POOL(maxpool_double, double, -INFINITY)
MAX_POOL(maxpool_int8, int8_t, INT8_MIN)
MAX_POOL(maxpool_uint8, uint8_t, 0)

/* 2-D float MaxPool without dilation or indices, the CNN case: per output
 * row, the elementwise max of the window's input rows (vectorizable), then
 * the max over each window's columns of that. The taps are met in the
 * order of the generic walk's first tap, so NaN propagates the same way: a
 * window whose first (top-left) tap is NaN gives NaN, later NaNs are
 * skipped. */
typedef struct maxpool2d_job {
    const pool_geom *g;
    const float *x;
    float *y;
    float *buf; /* per thread: buf_stride floats */
    int64_t buf_stride;
} maxpool2d_job;

/* dst[i] = b[i] > a[i] ? b[i] : a[i]; dst may alias a. Blocks of 8 through
 * a local array let the compiler use vector max despite the aliasing. */
static void max_rows(float *dst, const float *a, const float *b, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        float t[8];
#pragma GCC unroll 8
        for (int q = 0; q < 8; q++) t[q] = b[i + q] > a[i + q] ? b[i + q] : a[i + q];
#pragma GCC unroll 8
        for (int q = 0; q < 8; q++) dst[i + q] = t[q];
    }
    for (; i < n; i++) dst[i] = b[i] > a[i] ? b[i] : a[i];
}

/* The max over rows [lo, hi) and columns [a, b) of x (rows W apart), in
 * the kernels' order: each column's rows first, then the columns. */
static float window_max(const float *x, int64_t W, int64_t lo, int64_t hi, int64_t a,
                        int64_t b) {
    float m = -INFINITY;
    for (int64_t c = a; c < b; c++) {
        float v = x[lo * W + c];
        for (int64_t i = lo + 1; i < hi; i++) v = x[i * W + c] > v ? x[i * W + c] : v;
        m = c == a || v > m ? v : m;
    }
    return m;
}

static void maxpool2d_float(void *ctx, int64_t begin, int64_t end, int thread) {
    const maxpool2d_job *j = ctx;
    const pool_geom *g = j->g;
    const int64_t H = g->in[0], W = g->in[1], OH = g->out[0], OW = g->out[1];
    const int64_t sw = g->stride[1], pw = g->pad[1], kw = g->kern[1];
    /* Outputs whose window lies inside the row: [olo, ohi). */
    int64_t olo = (pw + sw - 1) / sw, ohi = W - kw + pw < 0 ? 0 : (W - kw + pw) / sw + 1;
    if (ohi > OW) ohi = OW;
    if (olo > ohi) olo = ohi;
    /* A 3-wide stride-2 window (ResNet's and SqueezeNet's pools) runs on
     * one kernel over the window's rows; others on the max of the rows
     * first, then a column walk. */
    const bool k3s2 = kw == 3 && sw == 2;
    float *buf = j->buf + thread * j->buf_stride;
    for (int64_t t = begin; t < end; t++) {
        const float *x = j->x + t * g->in_size;
        float *y = j->y + t * g->out_size;
        for (int64_t oh = 0; oh < OH; oh++, y += OW) {
            int64_t h0 = oh * g->stride[0] - g->pad[0];
            int64_t lo = h0 < 0 ? 0 : h0, hi = h0 + g->kern[0] < H ? h0 + g->kern[0] : H;
            if (lo >= hi) {
                for (int64_t o = 0; o < OW; o++) y[o] = -INFINITY;
                continue;
            }
            const float *rows = x + lo * W;
            int64_t kh = hi - lo;
            if (k3s2) {
                if (ohi > olo)
                    onyx_kernels_get()->rows->max3s2(rows + 2 * olo - pw, W, kh, y + olo,
                                                     ohi - olo);
            } else {
                if (kh > 1) {
                    max_rows(buf, rows, rows + W, W);
                    for (int64_t i = 2; i < kh; i++) max_rows(buf, buf, rows + i * W, W);
                    rows = buf;
                    kh = 1;
                }
                for (int64_t o = olo; o < ohi; o++) y[o] = window_max(rows, W, 0, 1, o * sw - pw,
                                                                      o * sw - pw + kw);
            }
            for (int64_t o = 0; o < OW; o++) {
                if (o == olo) o = ohi;
                if (o >= OW) break;
                int64_t w0 = o * sw - pw;
                int64_t a = w0 < 0 ? 0 : w0, b = w0 + kw < W ? w0 + kw : W;
                y[o] = a < b ? window_max(rows, W, 0, kh, a, b) : -INFINITY;
            }
        }
    }
}

/* Average and Lp pooling accumulate in double for float inputs too: windows
 * are small and this keeps sums exact to float precision. */
#define SUM_POOL(NAME, T)                                                                  \
    static void NAME(void *ctx, int64_t begin, int64_t end, int thread) {                  \
        const pool_job *j = ctx;                                                           \
        const pool_geom *g = j->g;                                                         \
        const bool lp = j->a->kind == POOL_LP, incl = j->a->count_include_pad;             \
        const double p = j->a->p;                                                          \
        (void)thread;                                                                      \
        for (int64_t t = begin; t < end; t++) {                                            \
            const T *x = (const T *)j->x + t * g->in_size;                                 \
            T *y = (T *)j->y + t * g->out_size;                                            \
            double s = 0;                                                                  \
            POOL_WALK(                                                                     \
                if (lp) s += p == 2.0 ? (double)x[off] * (double)x[off]                    \
                                      : pow(fabs((double)x[off]), p);                      \
                else s += (double)x[off],                                                  \
                if (lp) y[o] = (T)(p == 2.0 ? sqrt(s) : pow(s, 1.0 / p));                  \
                else {                                                                     \
                    int64_t div = incl ? inpad : valid;                                    \
                    y[o] = div > 0 ? (T)(s / (double)div) : (T)0;                          \
                }                                                                          \
                s = 0);                                                                    \
        }                                                                                  \
    }
SUM_POOL(sumpool_float, float)
SUM_POOL(sumpool_double, double)

static onyx_task_fn pool_fn(pool_kind kind, onyx_dtype t) {
    if (kind == POOL_MAX) {
        switch (t) {
        case ONYX_DTYPE_FLOAT: return maxpool_float;
        case ONYX_DTYPE_DOUBLE: return maxpool_double;
        case ONYX_DTYPE_INT8: return maxpool_int8;
        case ONYX_DTYPE_UINT8: return maxpool_uint8;
        default: return NULL;
        }
    }
    return t == ONYX_DTYPE_FLOAT ? sumpool_float : t == ONYX_DTYPE_DOUBLE ? sumpool_double : NULL;
}

static bool is_half(onyx_dtype t) { return t == ONYX_DTYPE_FLOAT16 || t == ONYX_DTYPE_BFLOAT16; }

static int64_t plane_grain(int64_t work) { return work >= 4096 ? 1 : 4096 / (work + 1) + 1; }

static onyx_status run_pool(const onyx_node *nd, onyx_exec *x) {
    const pool_attr *a = nd->state;
    const onyx_tensor *X = onyx_exec_input(x, 0);
    if (!X) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    pool_geom g;
    onyx_status st = pool_geometry(x, a, X, &g);
    if (st) return st;
    onyx_dtype ct = is_half(X->dtype) ? ONYX_DTYPE_FLOAT : X->dtype;
    onyx_task_fn fn = pool_fn(a->kind, ct);
    if (!fn)
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "%s of type %s is not supported",
                              nd->op_type, onyx_dtype_name(X->dtype));
    int64_t dims[ONYX_MAX_DIMS] = {X->dims[0], X->dims[1]};
    for (int d = 0; d < g.nd; d++) dims[d + 2] = g.out[d];
    onyx_tensor *Y, *I = NULL;
    if ((st = onyx_exec_output(x, 0, X->dtype, X->ndim, dims, &Y))) return st;
    if (a->kind == POOL_MAX && nd->n_out > 1 && onyx_exec_wants_output(x, 1) &&
        (st = onyx_exec_output(x, 1, ONYX_DTYPE_INT64, X->ndim, dims, &I)))
        return st;
    int64_t nout = onyx_tensor_count(Y), nin = onyx_tensor_count(X);
    if (nout == 0) return ONYX_OK;
    pool_job j = {&g, a, X->data, Y->data, I ? I->data : NULL};
    if (ct != X->dtype) {
        float *xf = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_FLOAT, nin));
        float *yf = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_FLOAT, nout));
        if (!xf || !yf) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        onyx_convert(ONYX_DTYPE_FLOAT, xf, X->dtype, X->data, nin, false);
        j.x = xf;
        j.y = yf;
    }
    int64_t kernel_taps = 1;
    for (int d = 0; d < g.nd; d++) kernel_taps *= g.kern[d];
    if (a->kind == POOL_MAX && ct == ONYX_DTYPE_FLOAT && g.nd == 2 && !I && g.dil[0] == 1 &&
        g.dil[1] == 1) {
        int threads = onyx_exec_threads(x);
        maxpool2d_job mj = {&g, j.x, j.y, NULL, (g.in[1] + 15) / 16 * 16};
        mj.buf = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_FLOAT, mj.buf_stride * threads));
        if (!mj.buf) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        onyx_exec_parallel(x, g.planes, plane_grain(g.out_size * kernel_taps), maxpool2d_float,
                           &mj);
    } else {
        onyx_exec_parallel(x, g.planes, plane_grain(g.out_size * kernel_taps), fn, &j);
    }
    if (ct != X->dtype) onyx_convert(X->dtype, Y->data, ct, j.y, nout, false);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Global pools

typedef struct global_job {
    pool_kind kind;
    double p;
    int64_t size; /* spatial elements per plane */
    const void *x;
    void *y;
} global_job;

/* A float plane's sum on the row kernel; a double plane's in a loop. */
static double sum_double(const double *x, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    return s;
}
#define SUM_float(x, n) onyx_kernels_get()->rows->sum(x, n)
#define SUM_double(x, n) sum_double(x, n)

#define GLOBAL_POOL(NAME, T)                                                               \
    static void NAME(void *ctx, int64_t begin, int64_t end, int thread) {                  \
        const global_job *j = ctx;                                                         \
        (void)thread;                                                                      \
        for (int64_t t = begin; t < end; t++) {                                            \
            const T *x = (const T *)j->x + t * j->size;                                    \
            T *y = (T *)j->y + t;                                                          \
            if (j->kind == POOL_MAX) {                                                     \
                T m = j->size ? x[0] : (T)-INFINITY;                                       \
                for (int64_t i = 1; i < j->size; i++)                                      \
                    if (x[i] > m || x[i] != x[i]) m = x[i];                                \
                *y = m;                                                                    \
            } else if (j->kind == POOL_AVG) {                                              \
                *y = (T)(j->size ? SUM_##T(x, j->size) / (double)j->size : NAN);           \
            } else {                                                                       \
                double s = 0;                                                              \
                for (int64_t i = 0; i < j->size; i++) s += pow(fabs((double)x[i]), j->p);  \
                *y = (T)pow(s, 1.0 / j->p);                                                \
            }                                                                              \
        }                                                                                  \
    }
GLOBAL_POOL(global_float, float)
GLOBAL_POOL(global_double, double)

static onyx_status run_global_pool(const onyx_node *nd, onyx_exec *x) {
    const onyx_tensor *X = onyx_exec_input(x, 0);
    if (!X) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    if (X->ndim < 2)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "X must be (N, C, ...), got rank %d",
                              X->ndim);
    onyx_dtype ct = is_half(X->dtype) ? ONYX_DTYPE_FLOAT : X->dtype;
    if (ct != ONYX_DTYPE_FLOAT && ct != ONYX_DTYPE_DOUBLE)
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "%s of type %s is not supported",
                              nd->op_type, onyx_dtype_name(X->dtype));
    global_job j = {!strcmp(nd->op_type, "GlobalMaxPool")   ? POOL_MAX
                    : !strcmp(nd->op_type, "GlobalLpPool") ? POOL_LP
                                                            : POOL_AVG,
                    attr_p(nd), 1, X->data, NULL};
    int64_t dims[ONYX_MAX_DIMS] = {X->dims[0], X->dims[1]};
    for (int d = 2; d < X->ndim; d++) {
        dims[d] = 1;
        j.size *= X->dims[d];
    }
    onyx_tensor *Y;
    onyx_status st = onyx_exec_output(x, 0, X->dtype, X->ndim, dims, &Y);
    if (st) return st;
    int64_t planes = X->dims[0] * X->dims[1];
    if (planes == 0) return ONYX_OK;
    j.y = Y->data;
    if (ct != X->dtype) {
        int64_t nin = onyx_tensor_count(X);
        float *xf = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_FLOAT, nin ? nin : 1));
        float *yf = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_FLOAT, planes));
        if (!xf || !yf) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        onyx_convert(ONYX_DTYPE_FLOAT, xf, X->dtype, X->data, nin, false);
        j.x = xf;
        j.y = yf;
    }
    onyx_exec_parallel(x, planes, plane_grain(j.size),
                       ct == ONYX_DTYPE_DOUBLE ? global_double : global_float, &j);
    if (ct != X->dtype) onyx_convert(X->dtype, Y->data, ct, j.y, planes, false);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// MaxUnpool

/* Y has the shape MaxPool's input had (inferred from kernel/strides/pads,
 * or given by the optional output_shape input). As in the reference, the
 * indices address the inferred shape, whose values land in the leading
 * corner of a larger output_shape. */
static onyx_status run_max_unpool(const onyx_node *nd, onyx_exec *x) {
    const pool_attr *a = nd->state;
    const onyx_tensor *X = onyx_exec_input(x, 0), *I = onyx_exec_input(x, 1);
    const onyx_tensor *S = onyx_exec_input(x, 2);
    if (!X || !I) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    if (I->dtype != ONYX_DTYPE_INT64 || onyx_tensor_count(I) != onyx_tensor_count(X))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "I must be int64 with one index per element of X");
    if (X->ndim != a->n_kernel + 2)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "X has rank %d; kernel_shape needs %lld spatial axes", X->ndim,
                              (long long)a->n_kernel);
    int nd_ = (int)a->n_kernel;
    int64_t inf[ONYX_MAX_DIMS] = {X->dims[0], X->dims[1]}, dims[ONYX_MAX_DIMS];
    for (int d = 0; d < nd_; d++) {
        int64_t s = a->n_strides >= 0 ? a->strides[d] : 1;
        int64_t pads = a->n_pads >= 0 ? a->pads[d] + a->pads[d + nd_] : 0;
        inf[d + 2] = (X->dims[d + 2] - 1) * s - pads + a->kernel[d];
        if (inf[d + 2] < 0)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "negative inferred output size");
    }
    memcpy(dims, inf, sizeof dims);
    if (S) {
        if (onyx_tensor_count(S) != X->ndim)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "output_shape must have %d values",
                                  X->ndim);
        for (int d = 0; d < X->ndim; d++) {
            dims[d] = onyx_tensor_get_i64(S, d);
            if (dims[d] < inf[d])
                return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                      "output_shape[%d] = %lld is smaller than the unpooled size %lld",
                                      d, (long long)dims[d], (long long)inf[d]);
        }
    }
    onyx_tensor *Y;
    onyx_status st = onyx_exec_output(x, 0, X->dtype, X->ndim, dims, &Y);
    if (st) return st;
    size_t es = onyx_dtype_size(X->dtype);
    memset(Y->data, 0, onyx_tensor_nbytes(Y));
    int64_t total = onyx_dims_count(X->ndim, inf), n = onyx_tensor_count(X);
    const int64_t *idx = I->data;
    for (int64_t i = 0; i < n; i++) {
        int64_t f = idx[i];
        if (f < 0 || f >= total)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "index %lld is out of range",
                                  (long long)f);
        /* Map the flat index in the inferred shape to the output shape. */
        int64_t o = 0, rem = f, sub[ONYX_MAX_DIMS];
        for (int d = X->ndim - 1; d >= 0; d--) {
            sub[d] = rem % inf[d];
            rem /= inf[d];
        }
        for (int d = 0; d < X->ndim; d++) o = o * dims[d] + sub[d];
        memcpy((char *)Y->data + (size_t)o * es, (const char *)X->data + (size_t)i * es, es);
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Registry rows

#define T_F (ONYX_T(ONYX_DTYPE_FLOAT) | ONYX_T(ONYX_DTYPE_DOUBLE) | ONYX_T(ONYX_DTYPE_FLOAT16))
#define T_FB ONYX_T_FLOATS
#define T_FQ (T_F | ONYX_T(ONYX_DTYPE_INT8) | ONYX_T(ONYX_DTYPE_UINT8))
#define T_FBQ (T_FB | ONYX_T(ONYX_DTYPE_INT8) | ONYX_T(ONYX_DTYPE_UINT8))

#define POOL(NAME, V, MAXOUT, TYPES) {"", NAME, V, 1, 1, 1, MAXOUT, TYPES, init_pool, run_pool, 0}
#define GLOBAL(NAME, V, TYPES) {"", NAME, V, 1, 1, 1, 1, TYPES, NULL, run_global_pool, 0}

const onyx_op_schema onyx_ops_pool[] = {
    POOL("MaxPool", 1, 1, T_F),
    POOL("MaxPool", 8, 2, T_F),
    POOL("MaxPool", 10, 2, T_F),
    POOL("MaxPool", 11, 2, T_F),
    POOL("MaxPool", 12, 2, T_FQ),
    POOL("MaxPool", 22, 2, T_FBQ),
    POOL("AveragePool", 1, 1, T_F),
    POOL("AveragePool", 7, 1, T_F),
    POOL("AveragePool", 10, 1, T_F),
    POOL("AveragePool", 11, 1, T_F),
    POOL("AveragePool", 19, 1, T_F),
    POOL("AveragePool", 22, 1, T_FB),
    POOL("LpPool", 1, 1, T_F),
    POOL("LpPool", 2, 1, T_F),
    POOL("LpPool", 11, 1, T_F),
    POOL("LpPool", 18, 1, T_F),
    POOL("LpPool", 22, 1, T_FB),
    GLOBAL("GlobalAveragePool", 1, T_F),
    GLOBAL("GlobalAveragePool", 22, T_FB),
    GLOBAL("GlobalMaxPool", 1, T_F),
    GLOBAL("GlobalMaxPool", 22, T_FB),
    GLOBAL("GlobalLpPool", 1, T_F),
    GLOBAL("GlobalLpPool", 2, T_F),
    GLOBAL("GlobalLpPool", 22, T_FB),
    {"", "MaxUnpool", 9, 2, 3, 1, 1, T_F, init_pool, run_max_unpool, 0},
    {"", "MaxUnpool", 11, 2, 3, 1, 1, T_F, init_pool, run_max_unpool, 0},
    {"", "MaxUnpool", 22, 2, 3, 1, 1, T_FB, init_pool, run_max_unpool, 0},
    {0},
};
