/* elementwise.c - the broadcasting map of elementwise.h, and the binary and
 * variadic arithmetic family: Add, Sub, Mul, Div, Pow, Mod, Max, Min, Mean,
 * Sum, Where, Clip, BitShift, Bitwise*, PRelu, Cast and CastLike.
 * Does not own unary math (math.c), comparisons (logic.c), activations. */
#include "ops/elementwise.h"
#include "ops/util.h"

#include "kernels/act.h"
#include "kernels/dispatch.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// The broadcasting map

#define EW_OPS (ONYX_EW_MAX_IN + 1) /* output + inputs */
#define EW_BLOCK 256                /* elements converted per small-float block */
#define EW_GRAIN 16384              /* elements per parallel task, at least */

static bool small_float(onyx_dtype t) {
    return t != ONYX_DTYPE_FLOAT && t != ONYX_DTYPE_DOUBLE && onyx_dtype_is_float(t);
}

onyx_dtype onyx_ew_compute_type(onyx_dtype t) { return small_float(t) ? ONYX_DTYPE_FLOAT : t; }

onyx_status onyx_ew_shape(onyx_exec *x, int n, const onyx_tensor *const *in, int *ndim,
                          int64_t *dims) {
    int nd = 0;
    int64_t d[ONYX_MAX_DIMS], next[ONYX_MAX_DIMS];
    for (int k = 0; k < n; k++) {
        const onyx_tensor *t = in[k];
        if (onyx_broadcast_shape(nd, d, t->ndim, t->dims, &nd, next) != ONYX_OK) {
            char shape[128];
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "input %d of shape %s does not broadcast with the others", k,
                                  onyx_dims_text(shape, sizeof shape, t->ndim, t->dims));
        }
        memcpy(d, next, (size_t)nd * sizeof *d);
    }
    *ndim = nd;
    for (int i = 0; i < nd; i++) dims[i] = d[i];
    return ONYX_OK;
}

typedef struct ew_job {
    onyx_ew_row_fn row;
    void *ctx;
    int n_op;                           /* output + inputs */
    int nd;                             /* >= 1 after coalescing */
    int64_t dims[ONYX_MAX_DIMS];
    int64_t st[EW_OPS][ONYX_MAX_DIMS];  /* element strides per operand */
    char *base[EW_OPS];
    size_t es[EW_OPS];                  /* element sizes */
    onyx_dtype dt[EW_OPS];
    bool convert[EW_OPS];               /* presented to the row as float32 */
    bool any_convert;
} ew_job;

/* Reads n elements of small-float type t at stride s into f. */
static void gather_float(onyx_dtype t, const char *p, int64_t s, float *f, int64_t n) {
    switch (t) {
    case ONYX_DTYPE_FLOAT16: {
        const uint16_t *h = (const uint16_t *)(const void *)p;
        for (int64_t i = 0; i < n; i++) f[i] = onyx_f16_to_f32(h[i * s]);
        break;
    }
    case ONYX_DTYPE_BFLOAT16: {
        const uint16_t *h = (const uint16_t *)(const void *)p;
        for (int64_t i = 0; i < n; i++) f[i] = onyx_bf16_to_f32(h[i * s]);
        break;
    }
    case ONYX_DTYPE_FLOAT4E2M1:
        for (int64_t i = 0; i < n; i++) f[i] = onyx_f4_to_f32((uint8_t)p[i * s]);
        break;
    default:
        for (int64_t i = 0; i < n; i++) f[i] = onyx_f8_to_f32(t, (uint8_t)p[i * s]);
        break;
    }
}

static void scatter_float(onyx_dtype t, const float *f, char *p, int64_t n) {
    switch (t) {
    case ONYX_DTYPE_FLOAT16: {
        uint16_t *h = (uint16_t *)(void *)p;
        for (int64_t i = 0; i < n; i++) h[i] = onyx_f32_to_f16(f[i]);
        break;
    }
    case ONYX_DTYPE_BFLOAT16: {
        uint16_t *h = (uint16_t *)(void *)p;
        for (int64_t i = 0; i < n; i++) h[i] = onyx_f32_to_bf16(f[i]);
        break;
    }
    case ONYX_DTYPE_FLOAT4E2M1:
        for (int64_t i = 0; i < n; i++) p[i] = (char)onyx_f32_to_f4(f[i]);
        break;
    default:
        for (int64_t i = 0; i < n; i++) p[i] = (char)onyx_f32_to_f8(t, f[i], true);
        break;
    }
}

/* One row with small-float operands converted through float32 blocks. */
static void row_converted(const ew_job *j, char *const *p, const int64_t *s, int64_t n) {
    float buf[EW_OPS][EW_BLOCK];
    for (int64_t i = 0; i < n; i += EW_BLOCK) {
        int64_t m = n - i < EW_BLOCK ? n - i : EW_BLOCK;
        char *q[EW_OPS] = {0};
        int64_t t[EW_OPS] = {0};
        for (int k = 1; k < j->n_op; k++) {
            char *at = p[k] + (size_t)(i * s[k]) * j->es[k];
            if (j->convert[k]) {
                gather_float(j->dt[k], at, s[k], buf[k], s[k] ? m : 1);
                q[k] = (char *)buf[k];
                t[k] = s[k] ? 1 : 0;
            } else {
                q[k] = at;
                t[k] = s[k];
            }
        }
        char *out = p[0] + (size_t)i * j->es[0];
        q[0] = j->convert[0] ? (char *)buf[0] : out;
        t[0] = 1;
        j->row(j->ctx, q, t, m);
        if (j->convert[0]) scatter_float(j->dt[0], buf[0], out, m);
    }
}

static void ew_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const ew_job *j = ctx;
    int nd = j->nd;
    int64_t idx[ONYX_MAX_DIMS];
    int64_t rem = begin;
    for (int d = nd - 1; d >= 0; d--) {
        idx[d] = rem % j->dims[d];
        rem /= j->dims[d];
    }
    int64_t pos = begin;
    while (pos < end) {
        int64_t len = j->dims[nd - 1] - idx[nd - 1];
        if (len > end - pos) len = end - pos;
        char *p[EW_OPS] = {0};
        int64_t s[EW_OPS] = {0};
        for (int k = 0; k < j->n_op; k++) {
            int64_t off = 0;
            for (int d = 0; d < nd; d++) off += idx[d] * j->st[k][d];
            p[k] = j->base[k] + (size_t)off * j->es[k];
            s[k] = j->st[k][nd - 1];
        }
        if (j->any_convert)
            row_converted(j, p, s, len);
        else
            j->row(j->ctx, p, s, len);
        pos += len;
        idx[nd - 1] += len;
        for (int d = nd - 1; d > 0 && idx[d] == j->dims[d]; d--) {
            idx[d] = 0;
            idx[d - 1]++;
        }
    }
}

onyx_status onyx_ew_map(onyx_exec *x, onyx_ew_row_fn row, void *ctx, unsigned flags,
                        onyx_tensor *out, int n_in, const onyx_tensor *const *in) {
    ONYX_ASSERT(n_in >= 0 && n_in <= ONYX_EW_MAX_IN);
    int64_t total = onyx_tensor_count(out);
    if (total <= 0) return ONYX_OK;
    ew_job j;
    memset(&j, 0, sizeof j);
    j.row = row;
    j.ctx = ctx;
    j.n_op = n_in + 1;
    int nd = out->ndim;
    int64_t st[EW_OPS][ONYX_MAX_DIMS];
    bool serial = (flags & ONYX_EW_SERIAL) != 0;
    for (int k = 0; k < j.n_op; k++) {
        const onyx_tensor *t = k ? in[k - 1] : out;
        onyx_broadcast_strides(t, nd, out->dims, st[k]);
        j.base[k] = t->data;
        j.es[k] = onyx_dtype_size(t->dtype);
        j.dt[k] = t->dtype;
        j.convert[k] = !(flags & ONYX_EW_RAW) && small_float(t->dtype);
        j.any_convert |= j.convert[k];
        if (t->dtype == ONYX_DTYPE_STRING) serial = true;
    }
    /* Coalesce: drop size-1 axes, merge neighbours that are contiguous for
     * every operand. Same-shape maps become one row; scalars stride 0. */
    int m = 0;
    for (int d = 0; d < nd; d++) {
        if (out->dims[d] == 1) continue;
        bool merge = m > 0;
        for (int k = 0; k < j.n_op && merge; k++)
            merge = j.st[k][m - 1] == st[k][d] * out->dims[d];
        if (merge) {
            j.dims[m - 1] *= out->dims[d];
            for (int k = 0; k < j.n_op; k++) j.st[k][m - 1] = st[k][d];
        } else {
            j.dims[m] = out->dims[d];
            for (int k = 0; k < j.n_op; k++) j.st[k][m] = st[k][d];
            m++;
        }
    }
    if (m == 0) {
        j.dims[0] = 1;
        m = 1;
    }
    j.nd = m;
    if (serial || total < 2 * EW_GRAIN)
        ew_task(&j, 0, total, 0);
    else
        onyx_exec_parallel(x, total, EW_GRAIN, ew_task, &j);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// float32 fast paths: contiguous unary maps straight to the kernels

#define EW_GRAIN_HEAVY 4096 /* elements per task for the transcendental kernels */

typedef struct ew_unary_job {
    const onyx_ew_kernels *ew;
    const onyx_conv_kernels *conv;
    onyx_ew_unop op;
    const onyx_act *act; /* non-NULL: conv->act instead of ew->unary */
    const float *x;
    float *y;
} ew_unary_job;

static void ew_unary_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const ew_unary_job *j = ctx;
    if (j->act)
        j->conv->act(j->x + begin, j->y + begin, end - begin, j->act);
    else
        j->ew->unary(j->op, j->x + begin, j->y + begin, end - begin);
}

static void ew_unary_run(onyx_exec *x, ew_unary_job *j, int64_t count, bool heavy) {
    int64_t grain = heavy ? EW_GRAIN_HEAVY : EW_GRAIN;
    if (count < 2 * grain)
        ew_unary_task(j, 0, count, 0);
    else
        onyx_exec_parallel(x, count, grain, ew_unary_task, j);
}

void onyx_ew_unary_f32(onyx_exec *x, onyx_ew_unop op, const onyx_tensor *in, onyx_tensor *out) {
    const onyx_kernels *k = onyx_kernels_get();
    ew_unary_job j = {k->ew, k->conv, op, NULL, in->data, out->data};
    bool heavy = op == ONYX_EW_TANH || op == ONYX_EW_SIGMOID || op == ONYX_EW_EXP ||
                 op == ONYX_EW_ERF || op == ONYX_EW_GELU || op == ONYX_EW_GELU_TANH;
    ew_unary_run(x, &j, onyx_tensor_count(out), heavy);
}

void onyx_ew_act_f32(onyx_exec *x, const onyx_act *act, const onyx_tensor *in, onyx_tensor *out) {
    const onyx_kernels *k = onyx_kernels_get();
    ew_unary_job j = {k->ew, k->conv, ONYX_EW_UNOP_COUNT, act, in->data, out->data};
    bool heavy = act->kind == ONYX_ACT_SIGMOID || act->kind == ONYX_ACT_TANH ||
                 act->kind == ONYX_ACT_SILU;
    ew_unary_run(x, &j, onyx_tensor_count(out), heavy);
}

int onyx_ew_legacy_axis(const onyx_node *n) {
    if (!n->op || n->op->since_version >= 7 || !onyx_attr_int(n, "broadcast", 0))
        return ONYX_EW_NO_AXIS;
    if (!onyx_attr_find(n, "axis")) return ONYX_EW_NO_AXIS;
    int64_t a = onyx_attr_int(n, "axis", 0);
    return a < -ONYX_MAX_DIMS || a > ONYX_MAX_DIMS ? ONYX_MAX_DIMS + 1 : (int)a;
}

onyx_status onyx_ew_align(onyx_exec *x, int axis, const onyx_tensor *a, const onyx_tensor *b,
                          onyx_tensor *view) {
    *view = *b;
    view->heap = NULL;
    if (axis == ONYX_EW_NO_AXIS) return ONYX_OK;
    if (axis < 0) axis += a->ndim;
    int trailing = a->ndim - axis - b->ndim;
    if (axis < 0 || trailing < 0)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "broadcast axis %d does not fit B (rank %d) into A (rank %d)", axis,
                              b->ndim, a->ndim);
    for (int i = 0; i < trailing; i++) view->dims[view->ndim++] = 1;
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Typed binary kernels

typedef enum arith_op {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD, OP_FMOD, OP_MAX, OP_MIN, OP_POW, OP_POWD,
    OP_AND, OP_OR, OP_XOR, OP_NOT, OP_SHL, OP_SHR, OP_PRELU, OP_COUNT
} arith_op;

typedef struct arith_ctx {
    arith_op op;
    onyx_dtype t;          /* compute type of input 0 */
    const onyx_act *act;   /* fused activation on a float32 output, or NULL */
    const onyx_ew_kernels *ew; /* float32 rows with strides 0/1 go here, when set */
} arith_ctx;

/* The float32 kernel op of an arith op, or ONYX_EW_BINOP_COUNT. */
static onyx_ew_binop ew_binop_of(arith_op op) {
    switch (op) {
    case OP_ADD: return ONYX_EW_ADD;
    case OP_SUB: return ONYX_EW_SUB;
    case OP_MUL: return ONYX_EW_MUL;
    case OP_DIV: return ONYX_EW_DIV;
    case OP_MAX: return ONYX_EW_MAX;
    case OP_MIN: return ONYX_EW_MIN;
    default: return ONYX_EW_BINOP_COUNT;
    }
}

#define INT_KERNEL(ENUM, T, W, S)                                                          \
    /* Division by zero gives 0, and INT_MIN / -1 wraps, instead of trapping. */           \
    static T div_##ENUM(T a, T b) {                                                        \
        if (b == 0) return 0;                                                              \
        if (S && b == (T)-1) return (T)(0u - (W)a);                                        \
        return (T)(a / b);                                                                 \
    }                                                                                      \
    /* C remainder (sign of the dividend): Mod with fmod=1. */                             \
    static T rem_##ENUM(T a, T b) {                                                        \
        if (b == 0 || (S && b == (T)-1)) return 0;                                         \
        return (T)(a % b);                                                                 \
    }                                                                                      \
    /* numpy/Python remainder (sign of the divisor): Mod with fmod=0. */                   \
    static T mod_##ENUM(T a, T b) {                                                        \
        T r = rem_##ENUM(a, b);                                                            \
        if (r != 0 && ONYX_EW_NEG(r) != ONYX_EW_NEG(b)) r = (T)((W)r + (W)b);              \
        return r;                                                                          \
    }                                                                                      \
    static T pow_##ENUM(T a, T b) {                                                        \
        if (ONYX_EW_NEG(b)) return a == 1 ? 1 : (S && a == (T)-1) ? ((b & 1) ? a : 1) : 0; \
        W r = 1, base = (W)a;                                                              \
        for (T e = b; e; e = (T)(e >> 1)) {                                                \
            if (e & 1) r *= base;                                                          \
            base *= base;                                                                  \
        }                                                                                  \
        return (T)r;                                                                       \
    }                                                                                      \
    static T powd_##ENUM(T a, double b) {                                                  \
        double v = pow((double)a, b);                                                      \
        return (T)(v >= -9223372036854775808.0 && v < 9223372036854775808.0 ? (int64_t)v   \
                                                                            : INT64_MIN);  \
    }                                                                                      \
    static void arith_##ENUM(arith_op op, char *const *p, const int64_t *s, int64_t n) {   \
        T *o = (T *)(void *)p[0];                                                          \
        const int bits = (int)(8 * sizeof(T));                                             \
        switch (op) {                                                                      \
        case OP_ADD: ONYX_EW_BIN(T, T, (T)((W)a + (W)b)); break;                           \
        case OP_SUB: ONYX_EW_BIN(T, T, (T)((W)a - (W)b)); break;                           \
        case OP_MUL: ONYX_EW_BIN(T, T, (T)((W)a * (W)b)); break;                           \
        case OP_DIV: ONYX_EW_BIN(T, T, div_##ENUM(a, b)); break;                           \
        case OP_MOD: ONYX_EW_BIN(T, T, mod_##ENUM(a, b)); break;                           \
        case OP_FMOD: ONYX_EW_BIN(T, T, rem_##ENUM(a, b)); break;                          \
        case OP_MAX: ONYX_EW_BIN(T, T, a > b ? a : b); break;                              \
        case OP_MIN: ONYX_EW_BIN(T, T, a < b ? a : b); break;                              \
        case OP_POW: ONYX_EW_BIN(T, T, pow_##ENUM(a, b)); break;                           \
        case OP_POWD: ONYX_EW_BIN(T, double, powd_##ENUM(a, b)); break;                    \
        case OP_AND: ONYX_EW_BIN(T, T, (T)(a & b)); break;                                 \
        case OP_OR: ONYX_EW_BIN(T, T, (T)(a | b)); break;                                  \
        case OP_XOR: ONYX_EW_BIN(T, T, (T)(a ^ b)); break;                                 \
        case OP_SHL: ONYX_EW_BIN(T, T, ONYX_EW_NEG(b) || b >= bits ? 0 : (T)((W)a << b)); break; \
        case OP_SHR: ONYX_EW_BIN(T, T, ONYX_EW_NEG(b) || b >= bits ? 0 : (T)(a >> b)); break; \
        case OP_PRELU: ONYX_EW_BIN(T, T, ONYX_EW_NEG(a) ? (T)((W)a * (W)b) : a); break;    \
        case OP_NOT: {                                                                     \
            const T *A_ = (const T *)(const void *)p[1];                                   \
            for (int64_t i = 0; i < n; i++) o[i] = (T)~A_[i * s[1]];                       \
            break;                                                                         \
        }                                                                                  \
        default: break;                                                                    \
        }                                                                                  \
    }
ONYX_EW_INT_TYPES(INT_KERNEL)

#define FLOAT_KERNEL(ENUM, T, SFX)                                                         \
    static T mod_##ENUM(T a, T b) {                                                        \
        T r = fmod##SFX(a, b);                                                             \
        return isnan(r) ? 0 : r;                                                           \
    }                                                                                      \
    static void arith_##ENUM(arith_op op, char *const *p, const int64_t *s, int64_t n) {   \
        T *o = (T *)(void *)p[0];                                                          \
        switch (op) {                                                                      \
        case OP_ADD: ONYX_EW_BIN(T, T, a + b); break;                                      \
        case OP_SUB: ONYX_EW_BIN(T, T, a - b); break;                                      \
        case OP_MUL: ONYX_EW_BIN(T, T, a * b); break;                                      \
        case OP_DIV: ONYX_EW_BIN(T, T, a / b); break;                                      \
        case OP_MOD: ONYX_EW_BIN(T, T, mod_##ENUM(a, b)); break;                           \
        case OP_FMOD: ONYX_EW_BIN(T, T, fmod##SFX(a, b)); break;                           \
        case OP_MAX: ONYX_EW_BIN(T, T, isnan(a) || a > b ? a : b); break;                  \
        case OP_MIN: ONYX_EW_BIN(T, T, isnan(a) || a < b ? a : b); break;                  \
        case OP_POW: ONYX_EW_BIN(T, T, pow##SFX(a, b)); break;                             \
        case OP_PRELU: ONYX_EW_BIN(T, T, a < 0 ? a * b : a); break;                        \
        default: break;                                                                    \
        }                                                                                  \
    }
ONYX_EW_FLOAT_TYPES(FLOAT_KERNEL)

static void arith_row(void *ctx, char *const *p, const int64_t *s, int64_t n) {
    const arith_ctx *c = ctx;
    if (c->ew && (s[1] == 0 || s[1] == 1) && (s[2] == 0 || s[2] == 1)) {
        c->ew->binary(ew_binop_of(c->op), (const float *)(const void *)p[1], s[1],
                      (const float *)(const void *)p[2], s[2], (float *)(void *)p[0], n, c->act);
        return;
    }
    switch (c->t) {
#define ONYX_EW_CASE(ENUM, T) arith_##ENUM(c->op, p, s, n)
        ONYX_EW_TYPE_CASES
#undef ONYX_EW_CASE
    default: break;
    }
    if (c->act) onyx_act_apply(c->act, (float *)(void *)p[0], n); /* while the row is in cache */
}

/* Whether arith_row implements `op` for compute type t. */
static bool arith_supports(arith_op op, onyx_dtype t) {
    bool is_int = onyx_dtype_is_signed_int(t) || onyx_dtype_is_unsigned_int(t);
    if (t == ONYX_DTYPE_INT4 || t == ONYX_DTYPE_UINT4) return false;
    switch (op) {
    case OP_AND: case OP_OR: case OP_XOR: case OP_NOT: case OP_SHL: case OP_SHR: case OP_POWD:
        return is_int;
    default:
        return is_int || t == ONYX_DTYPE_FLOAT || t == ONYX_DTYPE_DOUBLE;
    }
}

// ----------------------------------------------------------------------------
// Binary arithmetic ops: Add, Sub, Mul, Div, Mod, Pow, BitShift, Bitwise*, PRelu

typedef struct binary_attr {
    arith_op op;
    int axis; /* legacy broadcast axis (opset < 7), or ONYX_EW_NO_AXIS */
} binary_attr;

static const struct {
    const char *name;
    arith_op op;
} binary_names[] = {
    {"Add", OP_ADD},          {"Sub", OP_SUB},         {"Mul", OP_MUL},
    {"Div", OP_DIV},          {"Pow", OP_POW},         {"Mod", OP_MOD},
    {"BitwiseAnd", OP_AND},   {"BitwiseOr", OP_OR},    {"BitwiseXor", OP_XOR},
    {"BitwiseNot", OP_NOT},   {"BitShift", OP_SHL},    {"PRelu", OP_PRELU},
    {"Max", OP_MAX},          {"Min", OP_MIN},         {"Sum", OP_ADD},
    {"Mean", OP_ADD},
};

static onyx_status init_binary(onyx_node *n, onyx_error *err) {
    binary_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->op = OP_COUNT;
    for (size_t i = 0; i < sizeof binary_names / sizeof binary_names[0]; i++)
        if (!strcmp(n->op_type, binary_names[i].name)) a->op = binary_names[i].op;
    ONYX_ASSERT(a->op != OP_COUNT);
    if (a->op == OP_MOD) {
        int64_t fm = onyx_attr_int(n, "fmod", 0);
        if (fm != 0 && fm != 1)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute fmod must be 0 or 1");
        if (fm) a->op = OP_FMOD;
    }
    if (a->op == OP_SHL) {
        const char *dir = onyx_attr_string(n, "direction", NULL);
        if (!dir || (strcmp(dir, "LEFT") && strcmp(dir, "RIGHT")))
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                               "attribute direction must be \"LEFT\" or \"RIGHT\"");
        if (!strcmp(dir, "RIGHT")) a->op = OP_SHR;
    }
    a->axis = onyx_ew_legacy_axis(n);
    if (a->axis == ONYX_MAX_DIMS + 1)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute axis out of range");
    n->state = a;
    return ONYX_OK;
}

static onyx_status type_error(onyx_exec *x, const char *what, onyx_dtype t) {
    return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "%s of type %s is not supported", what,
                          onyx_dtype_name(t));
}

/* Fills a scratch tensor with `src` converted to type `to` (same shape). */
static onyx_status convert_scratch(onyx_exec *x, const onyx_tensor *src, onyx_dtype to,
                                   onyx_tensor *dst) {
    *dst = *src;
    dst->heap = NULL;
    dst->dtype = to;
    int64_t count = onyx_tensor_count(src);
    size_t bytes = onyx_dtype_bytes(to, count);
    dst->data = onyx_exec_scratch(x, bytes ? bytes : 1);
    if (!dst->data) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    onyx_status st = onyx_convert(to, dst->data, src->dtype, src->data, count, true);
    if (st) return onyx_exec_fail(x, st, "cannot convert %s to %s", onyx_dtype_name(src->dtype),
                                  onyx_dtype_name(to));
    return ONYX_OK;
}

static onyx_status run_binary(const onyx_node *n, onyx_exec *x) {
    const binary_attr *at = n->state;
    const onyx_tensor *a = onyx_exec_input(x, 0), *b0 = onyx_exec_input(x, 1);
    if (!a || !b0) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    arith_ctx c = {at->op, onyx_ew_compute_type(a->dtype), NULL};
    if (n->act.kind != ONYX_ACT_NONE) {
        /* The fusion pass only fuses when it knows the type is float32. */
        if (a->dtype != ONYX_DTYPE_FLOAT)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "fused activation needs float inputs, got %s",
                                  onyx_dtype_name(a->dtype));
        c.act = &n->act;
    }
    onyx_tensor b, conv;
    onyx_status st = onyx_ew_align(x, at->axis, a, b0, &b);
    if (st) return st;
    if (b.dtype != a->dtype) {
        if (c.op != OP_POW)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "input types differ: %s and %s",
                                  onyx_dtype_name(a->dtype), onyx_dtype_name(b.dtype));
        /* Pow with another exponent type: an integer base takes a float
         * exponent as double (numpy computes in float there), every other
         * mix converts the exponent to the base's type. */
        bool int_base = onyx_dtype_is_signed_int(a->dtype) || onyx_dtype_is_unsigned_int(a->dtype);
        if (int_base && onyx_dtype_is_float(b.dtype)) {
            c.op = OP_POWD;
            st = convert_scratch(x, &b, ONYX_DTYPE_DOUBLE, &conv);
        } else {
            st = convert_scratch(x, &b, a->dtype, &conv);
        }
        if (st) return st;
        b = conv;
    }
    if (!arith_supports(c.op, c.t)) return type_error(x, n->op_type, a->dtype);
    const onyx_tensor *in[2] = {a, &b};
    int nd;
    int64_t dims[ONYX_MAX_DIMS];
    if ((st = onyx_ew_shape(x, 2, in, &nd, dims))) return st;
    if (c.op == OP_PRELU && (nd != a->ndim || memcmp(dims, a->dims, (size_t)nd * sizeof *dims)))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "slope does not broadcast to the shape of X");
    onyx_tensor *out;
    if ((st = onyx_exec_output(x, 0, a->dtype, nd, dims, &out))) return st;
    if (c.t == ONYX_DTYPE_FLOAT && ew_binop_of(c.op) != ONYX_EW_BINOP_COUNT)
        c.ew = onyx_kernels_get()->ew;
    /* Pow(x, c) with a float32 scalar c in {0.5, 1, 2, 3} (LayerNorm's
     * Pow(x, 2)): a product or a square root instead of powf. */
    if (c.op == OP_POW && a->dtype == ONYX_DTYPE_FLOAT && b.dtype == ONYX_DTYPE_FLOAT &&
        onyx_tensor_count(&b) == 1 && onyx_tensor_count(out) == onyx_tensor_count(a)) {
        float e = *(const float *)b.data;
        if (e == 1.0f) {
            size_t bytes = onyx_tensor_nbytes(out);
            if (bytes && out->data != a->data) memcpy(out->data, a->data, bytes);
            return ONYX_OK;
        }
        onyx_ew_unop u = e == 2.0f   ? ONYX_EW_SQUARE
                         : e == 3.0f ? ONYX_EW_CUBE
                         : e == 0.5f ? ONYX_EW_POW_HALF
                                     : ONYX_EW_UNOP_COUNT;
        if (u != ONYX_EW_UNOP_COUNT) {
            onyx_ew_unary_f32(x, u, a, out);
            return ONYX_OK;
        }
    }
    return onyx_ew_map(x, arith_row, &c, 0, out, 2, in);
}

static onyx_status run_bitwise_not(const onyx_node *n, onyx_exec *x) {
    const onyx_tensor *a = onyx_exec_input(x, 0);
    if (!a) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    arith_ctx c = {OP_NOT, a->dtype, NULL};
    if (!arith_supports(c.op, c.t)) return type_error(x, n->op_type, a->dtype);
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, a->dtype, a->ndim, a->dims, &out);
    if (st) return st;
    return onyx_ew_map(x, arith_row, &c, 0, out, 1, &a);
}

// ----------------------------------------------------------------------------
// Variadic: Sum, Mean, Max, Min

static onyx_status run_variadic(const onyx_node *n, onyx_exec *x) {
    const binary_attr *at = n->state;
    int k = n->n_in;
    if (k < 1) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "no inputs");
    const onyx_tensor **in = onyx_exec_scratch(x, (size_t)k * sizeof *in);
    if (!in) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < k; i++) {
        in[i] = onyx_exec_input(x, i);
        if (!in[i]) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input %d", i);
        if (in[i]->dtype != in[0]->dtype)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "input types differ: %s and %s",
                                  onyx_dtype_name(in[0]->dtype), onyx_dtype_name(in[i]->dtype));
    }
    arith_ctx c = {at->op, onyx_ew_compute_type(in[0]->dtype), NULL};
    if (!arith_supports(c.op, c.t)) return type_error(x, n->op_type, in[0]->dtype);
    int nd;
    int64_t dims[ONYX_MAX_DIMS];
    onyx_status st = onyx_ew_shape(x, k, in, &nd, dims);
    if (st) return st;
    onyx_tensor *out;
    if ((st = onyx_exec_output(x, 0, in[0]->dtype, nd, dims, &out))) return st;
    if (k == 1) {
        size_t bytes = onyx_tensor_nbytes(out);
        if (bytes) memcpy(out->data, in[0]->data, bytes);
        return ONYX_OK;
    }
    if (c.t == ONYX_DTYPE_FLOAT && ew_binop_of(c.op) != ONYX_EW_BINOP_COUNT)
        c.ew = onyx_kernels_get()->ew;
    /* Folded pairwise in input order, as numpy does: out = in0 op in1,
     * then out = out op in_i, rounding to the element type at each step. */
    const onyx_tensor *pair[2] = {in[0], in[1]};
    if ((st = onyx_ew_map(x, arith_row, &c, 0, out, 2, pair))) return st;
    for (int i = 2; i < k; i++) {
        pair[0] = out;
        pair[1] = in[i];
        if ((st = onyx_ew_map(x, arith_row, &c, 0, out, 2, pair))) return st;
    }
    if (!strcmp(n->op_type, "Mean")) {
        unsigned char count[8];
        double kd = k;
        onyx_tensor div = {.dtype = in[0]->dtype, .ndim = 0, .data = count};
        onyx_convert(in[0]->dtype, count, ONYX_DTYPE_DOUBLE, &kd, 1, true);
        arith_ctx d = {OP_DIV, c.t, NULL, c.ew};
        pair[0] = out;
        pair[1] = &div;
        if ((st = onyx_ew_map(x, arith_row, &d, 0, out, 2, pair))) return st;
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Where

typedef struct where_ctx {
    size_t es;
    bool strings;
    bool failed; /* a string copy ran out of memory (string maps are serial) */
} where_ctx;

#define WHERE_ROW(T)                                                                       \
    do {                                                                                   \
        T *o = (T *)(void *)p[0];                                                          \
        const T *X = (const T *)(const void *)p[2], *Y = (const T *)(const void *)p[3];    \
        for (int64_t i = 0; i < n; i++) o[i] = c[i * s[1]] ? X[i * s[2]] : Y[i * s[3]];    \
    } while (0)

static void where_row(void *ctx, char *const *p, const int64_t *s, int64_t n) {
    where_ctx *w = ctx;
    const uint8_t *c = (const uint8_t *)p[1];
    if (w->strings) {
        char **o = (char **)(void *)p[0];
        char *const *X = (char *const *)(void *)p[2], *const *Y = (char *const *)(void *)p[3];
        for (int64_t i = 0; i < n; i++) {
            const char *v = c[i * s[1]] ? X[i * s[2]] : Y[i * s[3]];
            o[i] = strdup(v ? v : "");
            if (!o[i]) w->failed = true;
        }
        return;
    }
    switch (w->es) {
    case 1: WHERE_ROW(uint8_t); break;
    case 2: WHERE_ROW(uint16_t); break;
    case 4: WHERE_ROW(uint32_t); break;
    case 8: WHERE_ROW(uint64_t); break;
    default:
        for (int64_t i = 0; i < n; i++)
            memcpy(p[0] + (size_t)i * w->es,
                   c[i * s[1]] ? p[2] + (size_t)(i * s[2]) * w->es
                               : p[3] + (size_t)(i * s[3]) * w->es,
                   w->es);
    }
}

static onyx_status run_where(const onyx_node *n, onyx_exec *x) {
    const onyx_tensor *in[3] = {onyx_exec_input(x, 0), onyx_exec_input(x, 1),
                                onyx_exec_input(x, 2)};
    if (!in[0] || !in[1] || !in[2])
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    if (in[0]->dtype != ONYX_DTYPE_BOOL) return type_error(x, "condition", in[0]->dtype);
    if (in[1]->dtype != in[2]->dtype)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "X and Y types differ: %s and %s",
                              onyx_dtype_name(in[1]->dtype), onyx_dtype_name(in[2]->dtype));
    int nd;
    int64_t dims[ONYX_MAX_DIMS];
    onyx_status st = onyx_ew_shape(x, 3, in, &nd, dims);
    if (st) return st;
    onyx_tensor *out;
    if ((st = onyx_exec_output(x, 0, in[1]->dtype, nd, dims, &out))) return st;
    where_ctx w = {onyx_dtype_size(in[1]->dtype), in[1]->dtype == ONYX_DTYPE_STRING, false};
    if ((st = onyx_ew_map(x, where_row, &w, ONYX_EW_RAW, out, 3, in))) return st;
    if (w.failed) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Clip

typedef struct clip_attr {
    bool has_lo, has_hi; /* opset < 11: the min/max attributes */
    float lo, hi;
} clip_attr;

typedef struct clip_ctx {
    onyx_dtype t;                 /* compute type */
    bool has_lo, has_hi;
    unsigned char lo[8], hi[8];   /* bounds, stored as the compute type */
} clip_ctx;

static onyx_status init_clip(onyx_node *n, onyx_error *err) {
    clip_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->has_lo = onyx_attr_find(n, "min") != NULL;
    a->has_hi = onyx_attr_find(n, "max") != NULL;
    a->lo = onyx_attr_float(n, "min", 0);
    a->hi = onyx_attr_float(n, "max", 0);
    n->state = a;
    return ONYX_OK;
}

#define CLIP_KERNEL(T)                                                                     \
    do {                                                                                   \
        T *o = (T *)(void *)p[0];                                                          \
        const T *X = (const T *)(const void *)p[1];                                        \
        T lo, hi;                                                                          \
        memcpy(&lo, c->lo, sizeof lo);                                                     \
        memcpy(&hi, c->hi, sizeof hi);                                                     \
        if (c->has_lo && c->has_hi)                                                        \
            for (int64_t i = 0; i < n; i++) {                                              \
                T v = X[i] < lo ? lo : X[i];                                               \
                o[i] = v > hi ? hi : v;                                                    \
            }                                                                              \
        else if (c->has_lo)                                                                \
            for (int64_t i = 0; i < n; i++) o[i] = X[i] < lo ? lo : X[i];                  \
        else if (c->has_hi)                                                                \
            for (int64_t i = 0; i < n; i++) o[i] = X[i] > hi ? hi : X[i];                  \
        else                                                                               \
            for (int64_t i = 0; i < n; i++) o[i] = X[i];                                   \
    } while (0)

static void clip_row(void *ctx, char *const *p, const int64_t *s, int64_t n) {
    const clip_ctx *c = ctx;
    switch (c->t) {
#define ONYX_EW_CASE(ENUM, T) CLIP_KERNEL(T)
        ONYX_EW_TYPE_CASES
#undef ONYX_EW_CASE
    default: break;
    }
}

static onyx_status run_clip(const onyx_node *n, onyx_exec *x) {
    const clip_attr *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    clip_ctx c = {.t = onyx_ew_compute_type(in->dtype)};
    if (!arith_supports(OP_ADD, c.t)) return type_error(x, n->op_type, in->dtype);
    if (n->op->since_version < 11) {
        c.has_lo = a->has_lo;
        c.has_hi = a->has_hi;
        onyx_convert(c.t, c.lo, ONYX_DTYPE_FLOAT, &a->lo, 1, true);
        onyx_convert(c.t, c.hi, ONYX_DTYPE_FLOAT, &a->hi, 1, true);
    } else {
        for (int k = 1; k <= 2; k++) {
            const onyx_tensor *b = onyx_exec_input(x, k);
            if (!b) continue;
            if (b->dtype != in->dtype)
                return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "%s has type %s, input %s",
                                      k == 1 ? "min" : "max", onyx_dtype_name(b->dtype),
                                      onyx_dtype_name(in->dtype));
            if (onyx_tensor_count(b) != 1)
                return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "%s must be a scalar",
                                      k == 1 ? "min" : "max");
            onyx_convert(c.t, k == 1 ? c.lo : c.hi, b->dtype, b->data, 1, true);
            *(k == 1 ? &c.has_lo : &c.has_hi) = true;
        }
    }
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, in->dtype, in->ndim, in->dims, &out);
    if (st) return st;
    if (in->dtype == ONYX_DTYPE_FLOAT) {
        /* The fused Clip keeps NaN, as clip_row does. */
        onyx_act act = {ONYX_ACT_CLIP, -INFINITY, INFINITY};
        if (c.has_lo) memcpy(&act.a, c.lo, sizeof act.a);
        if (c.has_hi) memcpy(&act.b, c.hi, sizeof act.b);
        onyx_ew_act_f32(x, &act, in, out);
        return ONYX_OK;
    }
    return onyx_ew_map(x, clip_row, &c, 0, out, 1, &in);
}

// ----------------------------------------------------------------------------
// Cast, CastLike

enum { ROUND_UP, ROUND_DOWN, ROUND_NEAREST, ROUND_MODE_COUNT };
static const char *const round_names[ROUND_MODE_COUNT] = {"up", "down", "nearest"};

typedef struct cast_attr {
    onyx_dtype to;  /* Cast only */
    bool saturate;
    int round_mode; /* float8e8m0 targets */
} cast_attr;

/* ONNX type names of Cast-1's string `to` attribute. */
static const char *const cast1_names[ONYX_DTYPE_COUNT] = {
    [ONYX_DTYPE_FLOAT] = "FLOAT",   [ONYX_DTYPE_UINT8] = "UINT8",   [ONYX_DTYPE_INT8] = "INT8",
    [ONYX_DTYPE_UINT16] = "UINT16", [ONYX_DTYPE_INT16] = "INT16",   [ONYX_DTYPE_INT32] = "INT32",
    [ONYX_DTYPE_INT64] = "INT64",   [ONYX_DTYPE_STRING] = "STRING", [ONYX_DTYPE_BOOL] = "BOOL",
    [ONYX_DTYPE_FLOAT16] = "FLOAT16", [ONYX_DTYPE_DOUBLE] = "DOUBLE",
    [ONYX_DTYPE_UINT32] = "UINT32", [ONYX_DTYPE_UINT64] = "UINT64",
};

static onyx_status init_cast(onyx_node *n, onyx_error *err) {
    cast_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->saturate = onyx_attr_int(n, "saturate", 1) != 0;
    const char *rm = onyx_attr_string(n, "round_mode", "up");
    if ((a->round_mode = onyx_op_lookup(rm, round_names, ROUND_MODE_COUNT)) < 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "unknown round_mode \"%s\"", rm);
    if (!strcmp(n->op_type, "Cast")) {
        const onyx_pb_attr *to = onyx_attr_find(n, "to");
        if (!to) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute to is required");
        const char *name = onyx_attr_string(n, "to", NULL);
        if (name) {
            for (int t = 0; t < ONYX_DTYPE_COUNT; t++)
                if (cast1_names[t] && !strcmp(cast1_names[t], name)) a->to = (onyx_dtype)t;
        } else {
            int64_t t = onyx_attr_int(n, "to", 0);
            if (onyx_dtype_is_valid((int32_t)t) && t == (int32_t)t) a->to = (onyx_dtype)t;
        }
        if (!a->to || a->to == ONYX_DTYPE_COMPLEX64 || a->to == ONYX_DTYPE_COMPLEX128)
            return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "attribute to names no supported type");
    }
    n->state = a;
    return ONYX_OK;
}

/* float8e8m0 with round_mode "down" or "nearest" (dtype.c does "up"),
 * following the ONNX reference's bit rules. */
static uint8_t e8m0_round(float f, bool saturate, int mode) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t e = (x >> 23) & 0xff;
    if (e == 0xff) return 0xff;
    if (mode == ROUND_NEAREST) {
        bool g = x & 0x400000, r = x & 0x200000, st = x & 0x1fffff, lsb = e > 0;
        if (g && (r || st || lsb) && !(saturate && e == 0xfe)) e++;
    }
    return (uint8_t)e;
}

typedef struct cast_job {
    onyx_dtype to, from;
    const char *src;
    char *dst;
    bool saturate;
} cast_job;

static void cast_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const cast_job *j = ctx;
    size_t fs = onyx_dtype_size(j->from), ts = onyx_dtype_size(j->to);
    onyx_convert(j->to, j->dst + (size_t)begin * ts, j->from, j->src + (size_t)begin * fs,
                 end - begin, j->saturate);
}

static onyx_status run_cast(const onyx_node *n, onyx_exec *x) {
    const cast_attr *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    onyx_dtype to = a->to;
    if (strcmp(n->op_type, "Cast")) {
        const onyx_tensor *like = onyx_exec_input(x, 1);
        if (!like) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
        to = like->dtype;
    }
    if (in->dtype == ONYX_DTYPE_COMPLEX64 || in->dtype == ONYX_DTYPE_COMPLEX128)
        return type_error(x, n->op_type, in->dtype);
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, to, in->ndim, in->dims, &out);
    if (st) return st;
    int64_t count = onyx_tensor_count(in);
    if (to == ONYX_DTYPE_FLOAT8E8M0 && a->round_mode != ROUND_UP) {
        onyx_tensor f;
        if ((st = convert_scratch(x, in, ONYX_DTYPE_FLOAT, &f))) return st;
        const float *v = f.data;
        uint8_t *o = out->data;
        for (int64_t i = 0; i < count; i++) o[i] = e8m0_round(v[i], a->saturate, a->round_mode);
        return ONYX_OK;
    }
    if (to == ONYX_DTYPE_STRING || in->dtype == ONYX_DTYPE_STRING || count < 4 * EW_GRAIN) {
        st = onyx_convert(to, out->data, in->dtype, in->data, count, a->saturate);
        if (st) return onyx_exec_fail(x, st, "cannot cast %s to %s", onyx_dtype_name(in->dtype),
                                      onyx_dtype_name(to));
        return ONYX_OK;
    }
    cast_job j = {to, in->dtype, in->data, out->data, a->saturate};
    onyx_exec_parallel(x, count, EW_GRAIN, cast_task, &j);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Registry rows

#define T_F (ONYX_T(ONYX_DTYPE_FLOAT) | ONYX_T(ONYX_DTYPE_DOUBLE) | ONYX_T(ONYX_DTYPE_FLOAT16))
#define T_FB ONYX_T_FLOATS
#define T_I3264                                                                            \
    (ONYX_T(ONYX_DTYPE_INT32) | ONYX_T(ONYX_DTYPE_INT64) | ONYX_T(ONYX_DTYPE_UINT32) |     \
     ONYX_T(ONYX_DTYPE_UINT64))
#define T_F8                                                                               \
    (ONYX_T(ONYX_DTYPE_FLOAT8E4M3FN) | ONYX_T(ONYX_DTYPE_FLOAT8E4M3FNUZ) |                 \
     ONYX_T(ONYX_DTYPE_FLOAT8E5M2) | ONYX_T(ONYX_DTYPE_FLOAT8E5M2FNUZ))
#define T_CAST9 (T_F | ONYX_T_INTS | ONYX_T(ONYX_DTYPE_BOOL) | ONYX_T(ONYX_DTYPE_STRING))
#define T_CAST19 (T_CAST9 | ONYX_T(ONYX_DTYPE_BFLOAT16) | T_F8)
#define T_CAST21 (T_CAST19 | ONYX_T(ONYX_DTYPE_INT4) | ONYX_T(ONYX_DTYPE_UINT4))
#define T_CAST23 (T_CAST21 | ONYX_T(ONYX_DTYPE_FLOAT4E2M1))
#define T_CAST24 (T_CAST23 | ONYX_T(ONYX_DTYPE_FLOAT8E8M0))

#define BINARY(NAME, V, TYPES) {"", NAME, V, 2, 2, 1, 1, TYPES, init_binary, run_binary, 0}
#define BINARY_ACT(NAME, V, TYPES)                                                        \
    {"", NAME, V, 2, 2, 1, 1, TYPES, init_binary, run_binary, ONYX_OP_FUSES_ACT}
#define VARIADIC(NAME, V, TYPES) {"", NAME, V, 1, -1, 1, 1, TYPES, init_binary, run_variadic, 0}
/* Add/Sub/Mul/Div take a fused activation (e.g. a residual Add + Relu). */
#define ARITH_ROWS(NAME)                                                                  \
    BINARY_ACT(NAME, 1, T_F), BINARY_ACT(NAME, 6, T_F | T_I3264),                         \
        BINARY_ACT(NAME, 7, T_F | T_I3264), BINARY_ACT(NAME, 13, T_FB | T_I3264),         \
        BINARY_ACT(NAME, 14, T_FB | ONYX_T_INTS)

const onyx_op_schema onyx_ops_elementwise[] = {
    ARITH_ROWS("Add"),
    ARITH_ROWS("Sub"),
    ARITH_ROWS("Mul"),
    ARITH_ROWS("Div"),
    BINARY("Pow", 1, T_F),
    BINARY("Pow", 7, T_F),
    BINARY("Pow", 12, T_F | ONYX_T(ONYX_DTYPE_INT32) | ONYX_T(ONYX_DTYPE_INT64)),
    BINARY("Pow", 13, T_FB | ONYX_T(ONYX_DTYPE_INT32) | ONYX_T(ONYX_DTYPE_INT64)),
    BINARY("Pow", 15, T_FB | ONYX_T(ONYX_DTYPE_INT32) | ONYX_T(ONYX_DTYPE_INT64)),
    BINARY("Mod", 10, T_F | ONYX_T_INTS),
    BINARY("Mod", 13, T_FB | ONYX_T_INTS),
    BINARY("BitShift", 11, ONYX_T_UINTS),
    BINARY("BitwiseAnd", 18, ONYX_T_INTS),
    BINARY("BitwiseOr", 18, ONYX_T_INTS),
    BINARY("BitwiseXor", 18, ONYX_T_INTS),
    {"", "BitwiseNot", 18, 1, 1, 1, 1, ONYX_T_INTS, NULL, run_bitwise_not},
    BINARY("PRelu", 1, T_F),
    BINARY("PRelu", 6, T_F),
    BINARY("PRelu", 7, T_F),
    BINARY("PRelu", 9, T_F | T_I3264),
    BINARY("PRelu", 16, T_FB | T_I3264),
    VARIADIC("Max", 1, T_F),
    VARIADIC("Max", 6, T_F),
    VARIADIC("Max", 8, T_F),
    VARIADIC("Max", 12, T_F | ONYX_T_INTS),
    VARIADIC("Max", 13, T_FB | ONYX_T_INTS),
    VARIADIC("Min", 1, T_F),
    VARIADIC("Min", 6, T_F),
    VARIADIC("Min", 8, T_F),
    VARIADIC("Min", 12, T_F | ONYX_T_INTS),
    VARIADIC("Min", 13, T_FB | ONYX_T_INTS),
    VARIADIC("Sum", 1, T_F),
    VARIADIC("Sum", 6, T_F),
    VARIADIC("Sum", 8, T_F),
    VARIADIC("Sum", 13, T_FB),
    VARIADIC("Mean", 1, T_F),
    VARIADIC("Mean", 6, T_F),
    VARIADIC("Mean", 8, T_F),
    VARIADIC("Mean", 13, T_FB),
    {"", "Where", 9, 3, 3, 1, 1, ONYX_T(ONYX_DTYPE_BOOL), NULL, run_where},
    {"", "Where", 16, 3, 3, 1, 1, ONYX_T(ONYX_DTYPE_BOOL), NULL, run_where},
    {"", "Clip", 1, 1, 1, 1, 1, T_F, init_clip, run_clip},
    {"", "Clip", 6, 1, 1, 1, 1, T_F, init_clip, run_clip},
    {"", "Clip", 11, 1, 3, 1, 1, T_F, init_clip, run_clip},
    {"", "Clip", 12, 1, 3, 1, 1, T_F | ONYX_T_INTS, init_clip, run_clip},
    {"", "Clip", 13, 1, 3, 1, 1, T_FB | ONYX_T_INTS, init_clip, run_clip},
    {"", "Cast", 1, 1, 1, 1, 1, T_CAST9 & ~ONYX_T(ONYX_DTYPE_STRING), init_cast, run_cast},
    {"", "Cast", 6, 1, 1, 1, 1, T_CAST9 & ~ONYX_T(ONYX_DTYPE_STRING), init_cast, run_cast},
    {"", "Cast", 9, 1, 1, 1, 1, T_CAST9, init_cast, run_cast},
    {"", "Cast", 13, 1, 1, 1, 1, T_CAST9 | ONYX_T(ONYX_DTYPE_BFLOAT16), init_cast, run_cast},
    {"", "Cast", 19, 1, 1, 1, 1, T_CAST19, init_cast, run_cast},
    {"", "Cast", 21, 1, 1, 1, 1, T_CAST21, init_cast, run_cast},
    {"", "Cast", 23, 1, 1, 1, 1, T_CAST23, init_cast, run_cast},
    {"", "Cast", 24, 1, 1, 1, 1, T_CAST24, init_cast, run_cast},
    {"", "CastLike", 15, 2, 2, 1, 1, T_CAST9 | ONYX_T(ONYX_DTYPE_BFLOAT16), init_cast, run_cast},
    {"", "CastLike", 19, 2, 2, 1, 1, T_CAST19, init_cast, run_cast},
    {"", "CastLike", 21, 2, 2, 1, 1, T_CAST21, init_cast, run_cast},
    {"", "CastLike", 23, 2, 2, 1, 1, T_CAST23, init_cast, run_cast},
    {"", "CastLike", 24, 2, 2, 1, 1, T_CAST24, init_cast, run_cast},
    {0},
};
