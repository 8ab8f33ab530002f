/* reduce.c - the Reduce* family: Sum, Mean, Max, Min, Prod, L1, L2, LogSum,
 * LogSumExp, SumSquare. One driver walks the input once, routing each
 * element to its output accumulator; each reduction only says how to start,
 * accumulate and finish. Floats accumulate in double; integers accumulate
 * exactly in 64 bits (sums wrap like the narrower type would).
 * Does not own: ArgMax/ArgMin (tensor.c), pooling (pool.c). */
#include "core/op.h"
#include "ops/util.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#define FAIL(...) onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, __VA_ARGS__)

typedef enum red_kind {
    R_SUM,
    R_MEAN,
    R_MAX,
    R_MIN,
    R_PROD,
    R_L1,
    R_L2,
    R_LOGSUM,
    R_LOGSUMEXP,
    R_SUMSQUARE,
    R_KIND_COUNT
} red_kind;

static const char *const red_names[R_KIND_COUNT] = {
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
    "ReduceL1",  "ReduceL2",   "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare",
};

typedef struct red_attrs {
    red_kind kind;
    bool keepdims, noop_empty;
    bool axes_input;      /* axes come from input 1 (ReduceSum 13+, the rest 18+) */
    const int64_t *axes;  /* attribute form */
    int64_t n_axes;       /* -1: absent */
} red_attrs;

static onyx_status red_init(onyx_node *n, onyx_error *err) {
    red_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->kind = R_KIND_COUNT;
    for (int k = 0; k < R_KIND_COUNT; k++)
        if (strcmp(n->op_type, red_names[k]) == 0) a->kind = (red_kind)k;
    if (a->kind == R_KIND_COUNT)
        return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "unknown reduction %s", n->op_type);
    a->keepdims = onyx_attr_int(n, "keepdims", 1) != 0;
    a->noop_empty = onyx_attr_int(n, "noop_with_empty_axes", 0) != 0;
    a->axes_input = n->opset >= (a->kind == R_SUM ? 13 : 18);
    a->n_axes = a->axes_input ? -1 : onyx_attr_ints(n, "axes", &a->axes);
    n->state = a;
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* Accumulators                                                            */

/* Integer min/max of a type, for the start of Max/Min (an empty reduction
 * yields them, as the reference does). */
static void int_limits(onyx_dtype t, int64_t *lo, uint64_t *hi) {
    switch (t) {
    case ONYX_DTYPE_INT8: *lo = INT8_MIN, *hi = INT8_MAX; break;
    case ONYX_DTYPE_INT16: *lo = INT16_MIN, *hi = INT16_MAX; break;
    case ONYX_DTYPE_INT32: *lo = INT32_MIN, *hi = INT32_MAX; break;
    case ONYX_DTYPE_INT64: *lo = INT64_MIN, *hi = INT64_MAX; break;
    case ONYX_DTYPE_UINT8: *lo = 0, *hi = UINT8_MAX; break;
    case ONYX_DTYPE_BOOL: *lo = 0, *hi = 1; break;
    case ONYX_DTYPE_UINT16: *lo = 0, *hi = UINT16_MAX; break;
    case ONYX_DTYPE_UINT32: *lo = 0, *hi = UINT32_MAX; break;
    default: *lo = 0, *hi = UINT64_MAX; break;
    }
}

/* Loads n elements of src (type t) starting at element `off` as doubles. */
static void load_f64(onyx_dtype t, const void *src, int64_t off, int64_t n, double *dst) {
    switch (t) {
    case ONYX_DTYPE_FLOAT: {
        const float *s = (const float *)src + off;
        for (int64_t i = 0; i < n; i++) dst[i] = s[i];
        break;
    }
    case ONYX_DTYPE_DOUBLE: memcpy(dst, (const double *)src + off, (size_t)n * sizeof *dst); break;
    case ONYX_DTYPE_FLOAT16: {
        const uint16_t *s = (const uint16_t *)src + off;
        for (int64_t i = 0; i < n; i++) dst[i] = onyx_f16_to_f32(s[i]);
        break;
    }
    case ONYX_DTYPE_BFLOAT16: {
        const uint16_t *s = (const uint16_t *)src + off;
        for (int64_t i = 0; i < n; i++) dst[i] = onyx_bf16_to_f32(s[i]);
        break;
    }
    default: onyx_convert(ONYX_DTYPE_DOUBLE, dst, t, (const char *)src + (size_t)off * onyx_dtype_size(t), n, false);
    }
}

/* Loads n integer elements as int64 (unsigned ones as their uint64 bits). */
static void load_i64(onyx_dtype t, const void *src, int64_t off, int64_t n, int64_t *dst) {
#define LOAD_INT(T)                                                 \
    do {                                                            \
        const T *s = (const T *)src + off;                          \
        for (int64_t i = 0; i < n; i++) dst[i] = (int64_t)s[i];     \
    } while (0)
    switch (t) {
    case ONYX_DTYPE_INT8: LOAD_INT(int8_t); break;
    case ONYX_DTYPE_INT16: LOAD_INT(int16_t); break;
    case ONYX_DTYPE_INT32: LOAD_INT(int32_t); break;
    case ONYX_DTYPE_INT64: LOAD_INT(int64_t); break;
    case ONYX_DTYPE_UINT8:
    case ONYX_DTYPE_BOOL: LOAD_INT(uint8_t); break;
    case ONYX_DTYPE_UINT16: LOAD_INT(uint16_t); break;
    case ONYX_DTYPE_UINT32: LOAD_INT(uint32_t); break;
    default: LOAD_INT(uint64_t); break;
    }
#undef LOAD_INT
}

/* acc (and acc2 for LogSumExp: the running sum, acc holding the max) folds
 * in v[0..n), all into one slot (step 0) or into consecutive slots (step 1).
 * Generated for float sources (read in place) and double (converted rows);
 * the switch sits outside the loops so each case is a tight loop, and the
 * one-slot sums keep four partial sums so they vectorize. */
#define SUM_INTO(EXPR)                                                          \
    do {                                                                        \
        if (step) {                                                             \
            for (int64_t i = 0; i < n; i++) {                                   \
                double x = v[i];                                                \
                acc[i] += (EXPR);                                               \
            }                                                                   \
        } else {                                                                \
            double p0 = 0, p1 = 0, p2 = 0, p3 = 0, x;                           \
            int64_t i = 0;                                                      \
            for (; i + 4 <= n; i += 4) {                                        \
                x = v[i], p0 += (EXPR);                                         \
                x = v[i + 1], p1 += (EXPR);                                     \
                x = v[i + 2], p2 += (EXPR);                                     \
                x = v[i + 3], p3 += (EXPR);                                     \
            }                                                                   \
            for (; i < n; i++) x = v[i], p0 += (EXPR);                          \
            acc[0] += (p0 + p1) + (p2 + p3);                                    \
        }                                                                       \
    } while (0)

#define DEFINE_FOLD(NAME, T)                                                                  \
    static void NAME(red_kind k, double *acc, double *acc2, const T *v, int64_t n, int step) { \
        switch (k) {                                                                          \
        case R_SUM:                                                                           \
        case R_MEAN:                                                                          \
        case R_LOGSUM: SUM_INTO(x); break;                                                    \
        case R_SUMSQUARE:                                                                     \
        case R_L2: SUM_INTO(x * x); break;                                                    \
        case R_L1: SUM_INTO(fabs(x)); break;                                                  \
        case R_PROD:                                                                          \
            for (int64_t i = 0; i < n; i++) acc[i * step] *= (double)v[i];                   \
            break;                                                                            \
        case R_MAX:                                                                           \
            for (int64_t i = 0; i < n; i++) {                                                 \
                double x = v[i], *a = acc + i * step;                                         \
                if (x > *a || isnan(x)) *a = x;                                               \
            }                                                                                 \
            break;                                                                            \
        case R_MIN:                                                                           \
            for (int64_t i = 0; i < n; i++) {                                                 \
                double x = v[i], *a = acc + i * step;                                         \
                if (x < *a || isnan(x)) *a = x;                                               \
            }                                                                                 \
            break;                                                                            \
        case R_LOGSUMEXP:                                                                     \
            for (int64_t i = 0; i < n; i++) {                                                 \
                double x = v[i], *a = acc + i * step, *s = acc2 + i * step;                   \
                if (x == -INFINITY) continue;                                                 \
                if (x > *a) {                                                                 \
                    *s = *s * exp(*a - x) + 1.0;                                              \
                    *a = x;                                                                   \
                } else {                                                                      \
                    *s += exp(x - *a);                                                        \
                }                                                                             \
            }                                                                                 \
            break;                                                                            \
        default: break;                                                                       \
        }                                                                                     \
    }

DEFINE_FOLD(fold_float, float)
DEFINE_FOLD(fold_double, double)

static void fold_i64(red_kind k, bool is_unsigned, int64_t *acc, const int64_t *v, int64_t n, int step) {
    for (int64_t i = 0; i < n; i++) {
        int64_t *a = acc + i * step, x = v[i];
        uint64_t ua = (uint64_t)*a, ux = (uint64_t)x;
        switch (k) {
        case R_SUM:
        case R_MEAN:
        case R_LOGSUM: *a = (int64_t)(ua + ux); break;
        case R_SUMSQUARE:
        case R_L2: *a = (int64_t)(ua + ux * ux); break;
        case R_L1: *a = (int64_t)(ua + (!is_unsigned && x < 0 ? (uint64_t)0 - ux : ux)); break;
        case R_PROD: *a = (int64_t)(ua * ux); break;
        case R_MAX:
            if (is_unsigned ? ux > ua : x > *a) *a = x;
            break;
        case R_MIN:
            if (is_unsigned ? ux < ua : x < *a) *a = x;
            break;
        default: break;
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Driver                                                                  */

#define MAXG ONYX_MAX_DIMS

static onyx_status red_run(const onyx_node *n, onyx_exec *x) {
    const red_attrs *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return FAIL("missing input");
    int r = in->ndim;
    bool red[ONYX_MAX_DIMS] = {false};
    const onyx_tensor *ta = a->axes_input ? onyx_exec_input(x, 1) : NULL;
    int64_t na = ta ? onyx_tensor_count(ta) : a->axes_input || a->n_axes < 0 ? 0 : a->n_axes;
    if (na == 0) {
        /* No axes: reduce everything, or (input form with the flag) pass through. */
        if (a->noop_empty && a->axes_input) {
            onyx_tensor *out;
            onyx_status st = onyx_exec_output(x, 0, in->dtype, r, in->dims, &out);
            if (st) return st;
            size_t nb = onyx_tensor_nbytes(in);
            if (nb) memcpy(out->data, in->data, nb);
            return ONYX_OK;
        }
        for (int k = 0; k < r; k++) red[k] = true;
    } else {
        for (int64_t i = 0; i < na; i++) {
            int64_t ax = ta ? onyx_tensor_get_i64(ta, i) : a->axes[i];
            int k;
            if (!onyx_op_norm_axis(ax, r, &k)) return FAIL("axis %lld out of range for rank %d", (long long)ax, r);
            red[k] = true;
        }
    }
    /* Output shape. */
    int64_t dims[ONYX_MAX_DIMS], rcount = 1;
    int nd = 0;
    for (int k = 0; k < r; k++) {
        if (red[k]) rcount *= in->dims[k];
        if (!red[k]) dims[nd++] = in->dims[k];
        else if (a->keepdims) dims[nd++] = 1;
    }
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, in->dtype, nd, dims, &out);
    if (st) return st;
    int64_t nout = onyx_tensor_count(out);
    if (nout == 0) return ONYX_OK;

    /* Groups: runs of adjacent axes that are all reduced or all kept
     * (size-1 axes dropped), with output element strides (0 when reduced). */
    int ng = 0;
    int64_t gd[MAXG], gs[MAXG];
    bool gr[MAXG];
    for (int k = 0; k < r; k++) {
        if (in->dims[k] == 1) continue;
        if (ng && gr[ng - 1] == red[k]) {
            gd[ng - 1] *= in->dims[k];
        } else {
            gd[ng] = in->dims[k];
            gr[ng] = red[k];
            ng++;
        }
    }
    if (ng == 0) {
        gd[0] = 1;
        gr[0] = false;
        ng = 1;
    }
    for (int64_t k = ng - 1, s = 1; k >= 0; k--) {
        gs[k] = gr[k] ? 0 : s;
        if (!gr[k]) s *= gd[k];
    }

    onyx_dtype dt = in->dtype;
    bool use_f = onyx_dtype_is_float(dt) || a->kind == R_LOGSUMEXP;
    bool is_unsigned = !onyx_dtype_is_signed_int(dt);
    int64_t L = gd[ng - 1];
    size_t slot = use_f ? sizeof(double) : sizeof(int64_t);
    char *mem = onyx_exec_scratch(x, (size_t)nout * slot * 2 + (size_t)L * slot);
    if (!mem) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    double *facc = (double *)(void *)mem, *facc2 = facc + nout, *fbuf = facc2 + nout;
    int64_t *iacc = (int64_t *)(void *)mem, *ibuf = iacc + 2 * nout;

    /* Start values. */
    int64_t lo;
    uint64_t hi;
    int_limits(dt, &lo, &hi);
    for (int64_t i = 0; i < nout; i++) {
        if (use_f) {
            double v = a->kind == R_PROD ? 1.0 : a->kind == R_MAX || a->kind == R_LOGSUMEXP ? -INFINITY
                     : a->kind == R_MIN ? INFINITY : 0.0;
            facc[i] = v;
            facc2[i] = 0.0;
        } else {
            iacc[i] = a->kind == R_PROD ? 1 : a->kind == R_MAX ? lo : a->kind == R_MIN ? (int64_t)hi : 0;
        }
    }

    /* One pass over the input, row by row along the last group. */
    /* L is 0 when the innermost group is an empty reduced axis: no rows. */
    int64_t rows = L ? onyx_tensor_count(in) / L : 0, pos[MAXG] = {0}, base = 0;
    int step = gr[ng - 1] ? 0 : 1;
    for (int64_t row = 0; row < rows; row++) {
        if (use_f) {
            if (dt == ONYX_DTYPE_FLOAT) {
                fold_float(a->kind, facc + base, facc2 + base, (const float *)in->data + row * L, L, step);
            } else if (dt == ONYX_DTYPE_DOUBLE) {
                fold_double(a->kind, facc + base, facc2 + base, (const double *)in->data + row * L, L, step);
            } else {
                load_f64(dt, in->data, row * L, L, fbuf);
                fold_double(a->kind, facc + base, facc2 + base, fbuf, L, step);
            }
        } else {
            load_i64(dt, in->data, row * L, L, ibuf);
            fold_i64(a->kind, is_unsigned, iacc + base, ibuf, L, step);
        }
        for (int k = ng - 2; k >= 0; k--) {
            base += gs[k];
            if (++pos[k] < gd[k]) break;
            base -= pos[k] * gs[k];
            pos[k] = 0;
        }
        if ((row & 1023) == 1023 && onyx_exec_aborted(x))
            return onyx_exec_fail(x, ONYX_ERR_CANCELLED, "cancelled");
    }

    /* Finish and store. */
    if (use_f) {
        for (int64_t i = 0; i < nout; i++) {
            double *v = &facc[i];
            switch (a->kind) {
            case R_MEAN: *v /= (double)rcount; break;
            case R_L2: *v = sqrt(*v); break;
            case R_LOGSUM: *v = log(*v); break;
            case R_LOGSUMEXP: *v = *v + log(facc2[i]); break;
            default: break;
            }
            if (a->kind == R_LOGSUMEXP && facc2[i] == 0.0) *v = -INFINITY;
        }
        if (dt == ONYX_DTYPE_FLOAT) {
            float *o = out->data;
            for (int64_t i = 0; i < nout; i++) o[i] = (float)facc[i];
        } else {
            st = onyx_convert(dt, out->data, ONYX_DTYPE_DOUBLE, facc, nout, false);
            if (st) return onyx_exec_fail(x, st, "cannot store %s results", onyx_dtype_name(dt));
        }
        return ONYX_OK;
    }
    bool via_f = a->kind == R_L2 || a->kind == R_LOGSUM;
    for (int64_t i = 0; i < nout; i++) {
        int64_t *v = &iacc[i];
        if (a->kind == R_MEAN) {
            if (rcount == 0) *v = 0;
            else if (is_unsigned) *v = (int64_t)((uint64_t)*v / (uint64_t)rcount);
            else *v /= rcount;
        } else if (via_f) {
            double d = is_unsigned ? (double)(uint64_t)*v : (double)*v;
            facc[i] = a->kind == R_L2 ? sqrt(d) : log(d); /* facc aliases iacc slot i */
        }
    }
    if (via_f)
        st = onyx_convert(dt, out->data, ONYX_DTYPE_DOUBLE, facc, nout, false);
    else
        st = onyx_convert(dt, out->data, is_unsigned ? ONYX_DTYPE_UINT64 : ONYX_DTYPE_INT64, iacc, nout, false);
    if (st) return onyx_exec_fail(x, st, "cannot store %s results", onyx_dtype_name(dt));
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* Registry rows                                                           */

#define NUM ONYX_T_NUMERIC
#define MAXMIN_T (ONYX_T_NUMERIC | ONYX_T(ONYX_DTYPE_BOOL))
#define ROW(op, v, xi, types) {"", op, v, 1, xi, 1, 1, types, red_init, red_run}
#define ROWS_18(op)                                                          \
    ROW(op, 1, 1, NUM), ROW(op, 11, 1, NUM), ROW(op, 13, 1, NUM), ROW(op, 18, 2, NUM)

const onyx_op_schema onyx_ops_reduce[] = {
    ROW("ReduceSum", 1, 1, NUM),
    ROW("ReduceSum", 11, 1, NUM),
    ROW("ReduceSum", 13, 2, NUM),
    ROWS_18("ReduceMean"),
    ROWS_18("ReduceProd"),
    ROWS_18("ReduceL1"),
    ROWS_18("ReduceL2"),
    ROWS_18("ReduceLogSum"),
    ROWS_18("ReduceLogSumExp"),
    ROWS_18("ReduceSumSquare"),
    ROW("ReduceMax", 1, 1, NUM),
    ROW("ReduceMax", 11, 1, NUM),
    ROW("ReduceMax", 12, 1, NUM),
    ROW("ReduceMax", 13, 1, NUM),
    ROW("ReduceMax", 18, 2, NUM),
    ROW("ReduceMax", 20, 2, MAXMIN_T),
    ROW("ReduceMin", 1, 1, NUM),
    ROW("ReduceMin", 11, 1, NUM),
    ROW("ReduceMin", 12, 1, NUM),
    ROW("ReduceMin", 13, 1, NUM),
    ROW("ReduceMin", 18, 2, NUM),
    ROW("ReduceMin", 20, 2, MAXMIN_T),
    {0},
};
