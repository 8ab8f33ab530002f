/* activation.c - activations: the elementwise ones (Relu, LeakyRelu,
 * Sigmoid, HardSigmoid, HardSwish, Tanh, Elu, Selu, Celu, Softplus, Softsign,
 * ThresholdedRelu, Gelu, Mish, Shrink, Swish) through the map of
 * elementwise.h, and the ones along an axis (Softmax, LogSoftmax, Hardmax).
 * float16/bfloat16 compute in float32, double in double. PRelu lives in
 * elementwise.c (it broadcasts a second input). */
#include "ops/elementwise.h"

#include "kernels/dispatch.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define SQRT1_2 0.70710678118654752440
#define SQRT_2_PI 0.79788456080286535588 /* sqrt(2 / pi) */

typedef enum act_op {
    A_RELU, A_LEAKY, A_SIGMOID, A_HARDSIGMOID, A_HARDSWISH, A_TANH, A_ELU, A_SELU, A_CELU,
    A_SOFTPLUS, A_SOFTSIGN, A_THRESHOLDED, A_GELU, A_GELU_TANH, A_MISH, A_SHRINK, A_SWISH,
    A_COUNT
} act_op;

/* Each op's attributes: names and defaults of alpha, beta (gamma for Selu,
 * bias for Shrink) and lambd. */
static const struct {
    const char *name;
    const char *p1, *p2;
    double d1, d2;
} act_info[A_COUNT] = {
    [A_RELU] = {"Relu", NULL, NULL, 0, 0},
    [A_LEAKY] = {"LeakyRelu", "alpha", NULL, 0.01, 0},
    [A_SIGMOID] = {"Sigmoid", NULL, NULL, 0, 0},
    [A_HARDSIGMOID] = {"HardSigmoid", "alpha", "beta", 0.2, 0.5},
    [A_HARDSWISH] = {"HardSwish", NULL, NULL, 0, 0},
    [A_TANH] = {"Tanh", NULL, NULL, 0, 0},
    [A_ELU] = {"Elu", "alpha", NULL, 1.0, 0},
    [A_SELU] = {"Selu", "alpha", "gamma", 1.67326319217681884765625, 1.05070102214813232421875},
    [A_CELU] = {"Celu", "alpha", NULL, 1.0, 0},
    [A_SOFTPLUS] = {"Softplus", NULL, NULL, 0, 0},
    [A_SOFTSIGN] = {"Softsign", NULL, NULL, 0, 0},
    [A_THRESHOLDED] = {"ThresholdedRelu", "alpha", NULL, 1.0, 0},
    [A_GELU] = {"Gelu", NULL, NULL, 0, 0},
    [A_GELU_TANH] = {"Gelu", NULL, NULL, 0, 0},
    [A_MISH] = {"Mish", NULL, NULL, 0, 0},
    [A_SHRINK] = {"Shrink", "lambd", "bias", 0.5, 0.0},
    [A_SWISH] = {"Swish", "alpha", NULL, 1.0, 0},
};

typedef struct act_attr {
    act_op op;
    double p1, p2; /* see act_info */
} act_attr;

typedef struct act_ctx {
    const act_attr *a;
    onyx_dtype t; /* compute type */
} act_ctx;

// ----------------------------------------------------------------------------
// Elementwise kernels

#define ACT_LOOP(T, EXPR)                                                                 \
    do {                                                                                  \
        for (int64_t i = 0; i < n; i++) {                                                 \
            T v = A[i * sa];                                                              \
            o[i] = (EXPR);                                                                \
        }                                                                                 \
    } while (0)

#define ACT_FLOAT(ENUM, T, SFX)                                                           \
    static T sigmoid_##ENUM(T v) {                                                        \
        if (v >= 0) return (T)1 / ((T)1 + exp##SFX(-v));                                  \
        T e = exp##SFX(v);                                                                \
        return e / ((T)1 + e);                                                            \
    }                                                                                     \
    /* log(1 + exp(v)) without overflow for large v. */                                   \
    static T softplus_##ENUM(T v) {                                                       \
        return v > 0 ? v + log1p##SFX(exp##SFX(-v)) : log1p##SFX(exp##SFX(v));            \
    }                                                                                     \
    static T clamp01_##ENUM(T v) { return v < 0 ? (T)0 : v > 1 ? (T)1 : v; }              \
    static void act_##ENUM(const act_attr *at, char *const *p, const int64_t *s,          \
                           int64_t n) {                                                   \
        T *o = (T *)(void *)p[0];                                                         \
        const T *A = (const T *)(const void *)p[1];                                       \
        int64_t sa = s[1];                                                                \
        const T p1 = (T)at->p1, p2 = (T)at->p2;                                           \
        switch (at->op) {                                                                 \
        case A_RELU: ACT_LOOP(T, v < 0 ? (T)0 : v); break;                                \
        case A_LEAKY: ACT_LOOP(T, v < 0 ? p1 * v : v); break;                             \
        case A_SIGMOID: ACT_LOOP(T, sigmoid_##ENUM(v)); break;                            \
        case A_HARDSIGMOID: ACT_LOOP(T, clamp01_##ENUM(p1 * v + p2)); break;              \
        case A_HARDSWISH: ACT_LOOP(T, v * clamp01_##ENUM(v / (T)6 + (T)0.5)); break;      \
        case A_TANH: ACT_LOOP(T, tanh##SFX(v)); break;                                    \
        case A_ELU: ACT_LOOP(T, v < 0 ? p1 * expm1##SFX(v) : v); break;                   \
        case A_SELU: ACT_LOOP(T, v <= 0 ? p2 * (p1 * exp##SFX(v) - p1) : p2 * v); break;  \
        case A_CELU:                                                                      \
            ACT_LOOP(T, (v > 0 ? v : (T)0) + (v < 0 ? p1 * expm1##SFX(v / p1) : (T)0));   \
            break;                                                                        \
        case A_SOFTPLUS: ACT_LOOP(T, softplus_##ENUM(v)); break;                          \
        case A_SOFTSIGN: ACT_LOOP(T, v / ((T)1 + fabs##SFX(v))); break;                   \
        case A_THRESHOLDED: ACT_LOOP(T, v > p1 ? v : (T)0); break;                        \
        case A_GELU: ACT_LOOP(T, (T)0.5 * v * ((T)1 + erf##SFX(v * (T)SQRT1_2))); break;  \
        case A_GELU_TANH:                                                                 \
            ACT_LOOP(T, (T)0.5 * v *                                                      \
                            ((T)1 + tanh##SFX((T)SQRT_2_PI * (v + (T)0.044715 * v * v * v)))); \
            break;                                                                        \
        case A_MISH: ACT_LOOP(T, v * tanh##SFX(softplus_##ENUM(v))); break;               \
        case A_SHRINK: ACT_LOOP(T, v < -p1 ? v + p2 : v > p1 ? v - p2 : (T)0); break;     \
        case A_SWISH: ACT_LOOP(T, v * sigmoid_##ENUM(p1 * v)); break;                     \
        default: break;                                                                   \
        }                                                                                 \
    }
ONYX_EW_FLOAT_TYPES(ACT_FLOAT)

/* Integer Relu and Shrink (Shrink computes in double, then truncates). */
static int64_t trunc_i64(double v) {
    return v >= -9223372036854775808.0 && v < 9223372036854775808.0 ? (int64_t)v : 0;
}

#define ACT_INT(ENUM, T, W, S)                                                            \
    static void act_##ENUM(const act_attr *at, char *const *p, const int64_t *s,          \
                           int64_t n) {                                                   \
        T *o = (T *)(void *)p[0];                                                         \
        const T *A = (const T *)(const void *)p[1];                                       \
        int64_t sa = s[1];                                                                \
        double l = at->p1, b = at->p2;                                                    \
        switch (at->op) {                                                                 \
        case A_RELU: ACT_LOOP(T, ONYX_EW_NEG(v) ? (T)0 : v); break;                       \
        case A_SHRINK:                                                                    \
            ACT_LOOP(T, (T)trunc_i64((double)v < -l   ? (double)v + b                     \
                                     : (double)v > l ? (double)v - b                      \
                                                     : 0.0));                             \
            break;                                                                        \
        default: break;                                                                   \
        }                                                                                 \
    }
ONYX_EW_INT_TYPES(ACT_INT)

static void act_row(void *ctx, char *const *p, const int64_t *s, int64_t n) {
    const act_ctx *c = ctx;
    switch (c->t) {
#define ONYX_EW_CASE(ENUM, T) act_##ENUM(c->a, p, s, n)
        ONYX_EW_TYPE_CASES
#undef ONYX_EW_CASE
    default: break;
    }
}

/* float32 through the dispatched kernels: the fused-activation formulas of
 * kernels/act.c where they are the op's own, ew.h's unary ops for the
 * rest. False when the op has no fast path. */
static bool fast_f32(onyx_exec *x, const act_attr *a, const onyx_tensor *in, onyx_tensor *out) {
    onyx_act act = {ONYX_ACT_NONE, (float)a->p1, (float)a->p2};
    switch (a->op) {
    case A_RELU: onyx_ew_unary_f32(x, ONYX_EW_RELU, in, out); return true;
    case A_TANH: onyx_ew_unary_f32(x, ONYX_EW_TANH, in, out); return true;
    case A_GELU: onyx_ew_unary_f32(x, ONYX_EW_GELU, in, out); return true;
    case A_GELU_TANH: onyx_ew_unary_f32(x, ONYX_EW_GELU_TANH, in, out); return true;
    case A_SIGMOID: onyx_ew_unary_f32(x, ONYX_EW_SIGMOID, in, out); return true;
    case A_LEAKY: act.kind = ONYX_ACT_LEAKY_RELU; break;
    case A_HARDSIGMOID: act.kind = ONYX_ACT_HARD_SIGMOID; break;
    case A_HARDSWISH: act.kind = ONYX_ACT_HARD_SWISH; break;
    case A_SWISH:
        if (a->p1 != 1.0) return false;
        act.kind = ONYX_ACT_SILU;
        break;
    default: return false;
    }
    onyx_ew_act_f32(x, &act, in, out);
    return true;
}

static onyx_status init_act(onyx_node *n, onyx_error *err) {
    act_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->op = A_COUNT;
    for (int i = 0; i < A_COUNT && a->op == A_COUNT; i++)
        if (!strcmp(n->op_type, act_info[i].name)) a->op = (act_op)i;
    ONYX_ASSERT(a->op != A_COUNT);
    const char *p1 = act_info[a->op].p1, *p2 = act_info[a->op].p2;
    a->p1 = p1 ? onyx_attr_float(n, p1, (float)act_info[a->op].d1) : 0;
    a->p2 = p2 ? onyx_attr_float(n, p2, (float)act_info[a->op].d2) : 0;
    /* Selu's defaults are given to float precision by the spec; keep the
     * exact constants when the attributes are absent. */
    if (p1 && !onyx_attr_find(n, p1)) a->p1 = act_info[a->op].d1;
    if (p2 && !onyx_attr_find(n, p2)) a->p2 = act_info[a->op].d2;
    if (a->op == A_GELU) {
        const char *approx = onyx_attr_string(n, "approximate", "none");
        if (!strcmp(approx, "tanh"))
            a->op = A_GELU_TANH;
        else if (strcmp(approx, "none"))
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                               "attribute approximate must be \"none\" or \"tanh\", not \"%s\"",
                               approx);
    }
    if (a->op == A_CELU && a->p1 == 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute alpha must not be 0");
    n->state = a;
    return ONYX_OK;
}

static onyx_status run_act(const onyx_node *n, onyx_exec *x) {
    const act_attr *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    act_ctx c = {a, onyx_ew_compute_type(in->dtype)};
    bool is_int = (onyx_dtype_is_signed_int(c.t) || onyx_dtype_is_unsigned_int(c.t)) &&
                  c.t != ONYX_DTYPE_INT4 && c.t != ONYX_DTYPE_UINT4;
    bool ok = c.t == ONYX_DTYPE_FLOAT || c.t == ONYX_DTYPE_DOUBLE ||
              (is_int && (a->op == A_RELU || a->op == A_SHRINK));
    if (!ok)
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "%s of type %s is not supported",
                              n->op_type, onyx_dtype_name(in->dtype));
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, in->dtype, in->ndim, in->dims, &out);
    if (st) return st;
    if (in->dtype == ONYX_DTYPE_FLOAT && fast_f32(x, a, in, out)) return ONYX_OK;
    return onyx_ew_map(x, act_row, &c, 0, out, 1, &in);
}

// ----------------------------------------------------------------------------
// Softmax, LogSoftmax, Hardmax

enum { SM_SOFTMAX, SM_LOGSOFTMAX, SM_HARDMAX };

typedef struct softmax_attr {
    int kind;
    int64_t axis;
} softmax_attr;

typedef struct softmax_job {
    int kind;
    bool is_double;
    const void *x;
    void *y;
    int64_t len, inner; /* (outer, len, inner): reduced along len */
    const onyx_row_kernels *rk; /* float32 contiguous rows (inner == 1) */
} softmax_job;

/* One lane: len elements at stride `st`. Sums accumulate in double. */
#define SOFTMAX_LANE(T, SFX)                                                              \
    static void softmax_lane_##T(int kind, const T *x, T *y, int64_t len, int64_t st) {   \
        T mx = x[0];                                                                      \
        int64_t arg = 0;                                                                  \
        for (int64_t k = 1; k < len; k++)                                                 \
            if (x[k * st] > mx) {                                                         \
                mx = x[k * st];                                                           \
                arg = k;                                                                  \
            }                                                                             \
        if (kind == SM_HARDMAX) {                                                         \
            for (int64_t k = 0; k < len; k++) y[k * st] = k == arg ? (T)1 : (T)0;         \
            return;                                                                       \
        }                                                                                 \
        double sum = 0;                                                                   \
        if (kind == SM_SOFTMAX) {                                                         \
            for (int64_t k = 0; k < len; k++) {                                           \
                T e = exp##SFX(x[k * st] - mx);                                           \
                y[k * st] = e;                                                            \
                sum += e;                                                                 \
            }                                                                             \
            T inv = (T)(1.0 / sum);                                                       \
            for (int64_t k = 0; k < len; k++) y[k * st] *= inv;                           \
        } else {                                                                          \
            for (int64_t k = 0; k < len; k++) sum += exp##SFX(x[k * st] - mx);            \
            T lse = mx + (T)log(sum);                                                     \
            for (int64_t k = 0; k < len; k++) y[k * st] = x[k * st] - lse;                \
        }                                                                                 \
    }
SOFTMAX_LANE(float, f)
SOFTMAX_LANE(double, )

static void softmax_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const softmax_job *j = ctx;
    if (!j->is_double && j->inner == 1 && j->kind != SM_HARDMAX) {
        for (int64_t l = begin; l < end; l++)
            j->rk->softmax((const float *)j->x + l * j->len, (float *)j->y + l * j->len, j->len,
                           j->kind == SM_LOGSOFTMAX);
        return;
    }
    for (int64_t l = begin; l < end; l++) {
        int64_t o = l / j->inner, i = l % j->inner;
        int64_t base = o * j->len * j->inner + i;
        if (j->is_double)
            softmax_lane_double(j->kind, (const double *)j->x + base, (double *)j->y + base,
                                j->len, j->inner);
        else
            softmax_lane_float(j->kind, (const float *)j->x + base, (float *)j->y + base, j->len,
                               j->inner);
    }
}

static onyx_status init_softmax(onyx_node *n, onyx_error *err) {
    softmax_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->kind = !strcmp(n->op_type, "Softmax")      ? SM_SOFTMAX
              : !strcmp(n->op_type, "LogSoftmax") ? SM_LOGSOFTMAX
                                                  : SM_HARDMAX;
    a->axis = onyx_attr_int(n, "axis", n->op->since_version < 13 ? 1 : -1);
    n->state = a;
    return ONYX_OK;
}

static onyx_status run_softmax(const onyx_node *n, onyx_exec *x) {
    const softmax_attr *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    onyx_dtype ct = onyx_ew_compute_type(in->dtype);
    if (ct != ONYX_DTYPE_FLOAT && ct != ONYX_DTYPE_DOUBLE)
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "%s of type %s is not supported",
                              n->op_type, onyx_dtype_name(in->dtype));
    int r = in->ndim;
    int64_t axis = a->axis;
    if (r > 0 && (axis < -(int64_t)r || axis >= r))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "axis %lld out of range for rank %d",
                              (long long)axis, r);
    if (axis < 0) axis += r;
    if (r == 0) axis = 0;
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, in->dtype, in->ndim, in->dims, &out);
    if (st) return st;
    int64_t count = onyx_tensor_count(in);
    if (count == 0) return ONYX_OK;
    /* Opset < 13 coerces the input to 2-D at axis; later opsets reduce along
     * the one axis. Either way: (outer, len, inner). */
    int64_t outer = 1, len = 1, inner = 1;
    for (int d = 0; d < r; d++) {
        if (d < axis)
            outer *= in->dims[d];
        else if (d == axis || n->op->since_version < 13)
            len *= in->dims[d];
        else
            inner *= in->dims[d];
    }
    softmax_job j = {a->kind, ct == ONYX_DTYPE_DOUBLE, in->data, out->data, len, inner,
                     onyx_kernels_get()->rows};
    bool convert = ct != in->dtype;
    if (convert) {
        float *buf = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_FLOAT, 2 * count));
        if (!buf) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        onyx_convert(ONYX_DTYPE_FLOAT, buf, in->dtype, in->data, count, true);
        j.x = buf;
        j.y = buf + count;
    }
    int64_t grain = len >= 4096 ? 1 : 4096 / len;
    onyx_exec_parallel(x, outer * inner, grain, softmax_task, &j);
    if (convert) onyx_convert(in->dtype, out->data, ONYX_DTYPE_FLOAT, j.y, count, true);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Registry rows

#define T_F (ONYX_T(ONYX_DTYPE_FLOAT) | ONYX_T(ONYX_DTYPE_DOUBLE) | ONYX_T(ONYX_DTYPE_FLOAT16))
#define T_FB ONYX_T_FLOATS

#define ROW(NAME, V, TYPES) {"", NAME, V, 1, 1, 1, 1, TYPES, init_act, run_act}
#define SOFTMAX(NAME, V, TYPES) {"", NAME, V, 1, 1, 1, 1, TYPES, init_softmax, run_softmax}

const onyx_op_schema onyx_ops_activation[] = {
    ROW("Relu", 1, T_F),
    ROW("Relu", 6, T_F),
    ROW("Relu", 13, T_FB),
    ROW("Relu", 14, T_FB | ONYX_T_SINTS),
    ROW("LeakyRelu", 1, T_F),
    ROW("LeakyRelu", 6, T_F),
    ROW("LeakyRelu", 16, T_FB),
    ROW("Sigmoid", 1, T_F),
    ROW("Sigmoid", 6, T_F),
    ROW("Sigmoid", 13, T_FB),
    ROW("HardSigmoid", 1, T_F),
    ROW("HardSigmoid", 6, T_F),
    ROW("HardSigmoid", 22, T_FB),
    ROW("HardSwish", 14, T_F),
    ROW("HardSwish", 22, T_FB),
    ROW("Tanh", 1, T_F),
    ROW("Tanh", 6, T_F),
    ROW("Tanh", 13, T_FB),
    ROW("Elu", 1, T_F),
    ROW("Elu", 6, T_F),
    ROW("Elu", 22, T_FB),
    ROW("Selu", 1, T_F),
    ROW("Selu", 6, T_F),
    ROW("Selu", 22, T_FB),
    ROW("Celu", 12, ONYX_T(ONYX_DTYPE_FLOAT)),
    ROW("Softplus", 1, T_F),
    ROW("Softplus", 22, T_FB),
    ROW("Softsign", 1, T_F),
    ROW("Softsign", 22, T_FB),
    ROW("ThresholdedRelu", 10, T_F),
    ROW("ThresholdedRelu", 22, T_FB),
    ROW("Gelu", 20, T_FB),
    ROW("Mish", 18, T_F),
    ROW("Mish", 22, T_FB),
    ROW("Shrink", 9, T_F | ONYX_T_INTS),
    ROW("Swish", 24, T_FB),
    SOFTMAX("Softmax", 1, T_F),
    SOFTMAX("Softmax", 11, T_F),
    SOFTMAX("Softmax", 13, T_FB),
    SOFTMAX("LogSoftmax", 1, T_F),
    SOFTMAX("LogSoftmax", 11, T_F),
    SOFTMAX("LogSoftmax", 13, T_FB),
    SOFTMAX("Hardmax", 1, T_F),
    SOFTMAX("Hardmax", 11, T_F),
    SOFTMAX("Hardmax", 13, T_FB),
    {0},
};
