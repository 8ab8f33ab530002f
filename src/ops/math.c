/* math.c - unary math: Abs, Neg, Sqrt, Exp, Log, Reciprocal, Floor, Ceil,
 * Round (half to even), Sign, Erf, the trigonometric and hyperbolic
 * functions and their inverses, IsNaN and IsInf. float16/bfloat16/float8
 * inputs compute in float32 through the map of elementwise.h; double in double.
 * Does not own activations (activation.c) or reductions. */
#include "ops/elementwise.h"

#include <math.h>
#include <string.h>

typedef enum math_op {
    M_ABS, M_NEG, M_SQRT, M_EXP, M_LOG, M_RECIP, M_FLOOR, M_CEIL, M_ROUND, M_SIGN, M_ERF,
    M_SIN, M_COS, M_TAN, M_ASIN, M_ACOS, M_ATAN, M_SINH, M_COSH, M_ASINH,
    M_ACOSH, M_ATANH, M_ISNAN, M_ISINF, M_COUNT
} math_op;

static const char *const math_names[M_COUNT] = {
    [M_ABS] = "Abs",     [M_NEG] = "Neg",     [M_SQRT] = "Sqrt",   [M_EXP] = "Exp",
    [M_LOG] = "Log",     [M_RECIP] = "Reciprocal", [M_FLOOR] = "Floor", [M_CEIL] = "Ceil",
    [M_ROUND] = "Round", [M_SIGN] = "Sign",   [M_ERF] = "Erf",     [M_SIN] = "Sin",
    [M_COS] = "Cos",     [M_TAN] = "Tan",     [M_ASIN] = "Asin",   [M_ACOS] = "Acos",
    [M_ATAN] = "Atan",   [M_SINH] = "Sinh",   [M_COSH] = "Cosh",   [M_ASINH] = "Asinh",
    [M_ACOSH] = "Acosh", [M_ATANH] = "Atanh", [M_ISNAN] = "IsNaN", [M_ISINF] = "IsInf",
};

typedef struct math_attr {
    math_op op;
    bool detect_negative, detect_positive; /* IsInf */
} math_attr;

typedef struct math_ctx {
    const math_attr *a;
    onyx_dtype t; /* compute type */
} math_ctx;

// ----------------------------------------------------------------------------
// Kernels

/* One unary row; EXPR reads `v` (TI) and is stored to o[i] (TO). */
#define UN(TO, TI, EXPR)                                                                  \
    do {                                                                                  \
        TO *o = (TO *)(void *)p[0];                                                       \
        const TI *A_ = (const TI *)(const void *)p[1];                                    \
        int64_t sa_ = s[1];                                                               \
        if (sa_ == 1)                                                                     \
            for (int64_t i = 0; i < n; i++) {                                             \
                TI v = A_[i];                                                             \
                o[i] = (EXPR);                                                            \
            }                                                                             \
        else                                                                              \
            for (int64_t i = 0; i < n; i++) {                                             \
                TI v = A_[i * sa_];                                                       \
                o[i] = (EXPR);                                                            \
            }                                                                             \
    } while (0)

#define MATH_FLOAT(ENUM, T, SFX)                                                          \
    static void math_##ENUM(const math_attr *at, char *const *p, const int64_t *s,        \
                            int64_t n) {                                                  \
        switch (at->op) {                                                                 \
        case M_ABS: UN(T, T, fabs##SFX(v)); break;                                        \
        case M_NEG: UN(T, T, -v); break;                                                  \
        case M_SQRT: UN(T, T, sqrt##SFX(v)); break;                                       \
        case M_EXP: UN(T, T, exp##SFX(v)); break;                                         \
        case M_LOG: UN(T, T, log##SFX(v)); break;                                         \
        case M_RECIP: UN(T, T, (T)1 / v); break;                                          \
        case M_FLOOR: UN(T, T, floor##SFX(v)); break;                                     \
        case M_CEIL: UN(T, T, ceil##SFX(v)); break;                                       \
        case M_ROUND: UN(T, T, nearbyint##SFX(v)); break; /* ties to even */              \
        case M_SIGN: UN(T, T, v > 0 ? (T)1 : v < 0 ? (T)-1 : v); break;                   \
        case M_ERF: UN(T, T, erf##SFX(v)); break;                                         \
        case M_SIN: UN(T, T, sin##SFX(v)); break;                                         \
        case M_COS: UN(T, T, cos##SFX(v)); break;                                         \
        case M_TAN: UN(T, T, tan##SFX(v)); break;                                         \
        case M_ASIN: UN(T, T, asin##SFX(v)); break;                                       \
        case M_ACOS: UN(T, T, acos##SFX(v)); break;                                       \
        case M_ATAN: UN(T, T, atan##SFX(v)); break;                                       \
        case M_SINH: UN(T, T, sinh##SFX(v)); break;                                       \
        case M_COSH: UN(T, T, cosh##SFX(v)); break;                                       \
        case M_ASINH: UN(T, T, asinh##SFX(v)); break;                                     \
        case M_ACOSH: UN(T, T, acosh##SFX(v)); break;                                     \
        case M_ATANH: UN(T, T, atanh##SFX(v)); break;                                     \
        case M_ISNAN: UN(uint8_t, T, isnan(v) != 0); break;                               \
        case M_ISINF: {                                                                   \
            bool neg = at->detect_negative, pos = at->detect_positive;                    \
            UN(uint8_t, T, isinf(v) && (v < 0 ? neg : pos));                              \
            break;                                                                        \
        }                                                                                 \
        default: break;                                                                   \
        }                                                                                 \
    }
ONYX_EW_FLOAT_TYPES(MATH_FLOAT)

/* Integer kernels wrap (Abs and Neg of the minimum value give it back). */
#define MATH_INT(ENUM, T, W, S)                                                           \
    static void math_##ENUM(const math_attr *at, char *const *p, const int64_t *s,        \
                            int64_t n) {                                                  \
        switch (at->op) {                                                                 \
        case M_ABS: UN(T, T, ONYX_EW_NEG(v) ? (T)(0u - (W)v) : v); break;                  \
        case M_NEG: UN(T, T, (T)(0u - (W)v)); break;                                      \
        case M_SIGN: UN(T, T, (T)(v > 0 ? 1 : ONYX_EW_NEG(v) ? -1 : 0)); break;           \
        case M_ERF: UN(T, T, (T)erf((double)v)); break;                                   \
        default: break;                                                                   \
        }                                                                                 \
    }
ONYX_EW_INT_TYPES(MATH_INT)

static void math_row(void *ctx, char *const *p, const int64_t *s, int64_t n) {
    const math_ctx *c = ctx;
    switch (c->t) {
#define ONYX_EW_CASE(ENUM, T) math_##ENUM(c->a, p, s, n)
        ONYX_EW_TYPE_CASES
#undef ONYX_EW_CASE
    default: break;
    }
}

// ----------------------------------------------------------------------------
// Ops

static onyx_status init_math(onyx_node *n, onyx_error *err) {
    math_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->op = M_COUNT;
    for (int i = 0; i < M_COUNT; i++)
        if (math_names[i] && !strcmp(n->op_type, math_names[i])) a->op = (math_op)i;
    ONYX_ASSERT(a->op != M_COUNT);
    a->detect_negative = onyx_attr_int(n, "detect_negative", 1) != 0;
    a->detect_positive = onyx_attr_int(n, "detect_positive", 1) != 0;
    n->state = a;
    return ONYX_OK;
}

static bool math_supports(math_op op, onyx_dtype t) {
    if (t == ONYX_DTYPE_FLOAT || t == ONYX_DTYPE_DOUBLE) return true;
    if (t == ONYX_DTYPE_INT4 || t == ONYX_DTYPE_UINT4) return false;
    bool is_int = onyx_dtype_is_signed_int(t) || onyx_dtype_is_unsigned_int(t);
    return is_int && (op == M_ABS || op == M_NEG || op == M_SIGN || op == M_ERF);
}

/* The float32 kernel of ew.h for op, or ONYX_EW_UNOP_COUNT (the map's loops). */
static onyx_ew_unop fast_op(math_op op) {
    switch (op) {
    case M_ABS: return ONYX_EW_ABS;
    case M_NEG: return ONYX_EW_NEG;
    case M_SQRT: return ONYX_EW_SQRT;
    case M_EXP: return ONYX_EW_EXP;
    case M_RECIP: return ONYX_EW_RECIP;
    case M_ERF: return ONYX_EW_ERF;
    default: return ONYX_EW_UNOP_COUNT;
    }
}

static onyx_status run_math(const onyx_node *n, onyx_exec *x) {
    const math_attr *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    math_ctx c = {a, onyx_ew_compute_type(in->dtype)};
    if (!math_supports(a->op, c.t))
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "%s of type %s is not supported",
                              n->op_type, onyx_dtype_name(in->dtype));
    onyx_dtype out_type = a->op == M_ISNAN || a->op == M_ISINF ? ONYX_DTYPE_BOOL : in->dtype;
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, out_type, in->ndim, in->dims, &out);
    if (st) return st;
    if (in->dtype == ONYX_DTYPE_FLOAT && fast_op(a->op) != ONYX_EW_UNOP_COUNT) {
        onyx_ew_unary_f32(x, fast_op(a->op), in, out);
        return ONYX_OK;
    }
    return onyx_ew_map(x, math_row, &c, 0, out, 1, &in);
}

// ----------------------------------------------------------------------------
// Registry rows

#define T_F (ONYX_T(ONYX_DTYPE_FLOAT) | ONYX_T(ONYX_DTYPE_DOUBLE) | ONYX_T(ONYX_DTYPE_FLOAT16))
#define T_FB ONYX_T_FLOATS
#define T_F8                                                                              \
    (ONYX_T(ONYX_DTYPE_FLOAT8E4M3FN) | ONYX_T(ONYX_DTYPE_FLOAT8E4M3FNUZ) |                \
     ONYX_T(ONYX_DTYPE_FLOAT8E5M2) | ONYX_T(ONYX_DTYPE_FLOAT8E5M2FNUZ))

#define ROW(NAME, V, TYPES) {"", NAME, V, 1, 1, 1, 1, TYPES, init_math, run_math}
#define ROWS_1_6_13(NAME, INTS) \
    ROW(NAME, 1, T_F), ROW(NAME, 6, T_F | INTS), ROW(NAME, 13, T_FB | INTS)
#define ROWS_7_22(NAME) ROW(NAME, 7, T_F), ROW(NAME, 22, T_FB)
#define ROWS_9_22(NAME) ROW(NAME, 9, T_F), ROW(NAME, 22, T_FB)

const onyx_op_schema onyx_ops_math[] = {
    ROWS_1_6_13("Abs", ONYX_T_INTS),
    ROWS_1_6_13("Neg", ONYX_T_SINTS),
    ROWS_1_6_13("Sqrt", 0),
    ROWS_1_6_13("Exp", 0),
    ROWS_1_6_13("Log", 0),
    ROWS_1_6_13("Reciprocal", 0),
    ROWS_1_6_13("Floor", 0),
    ROWS_1_6_13("Ceil", 0),
    ROW("Round", 11, T_F),
    ROW("Round", 22, T_FB),
    ROW("Sign", 9, T_F | ONYX_T_INTS),
    ROW("Sign", 13, T_FB | ONYX_T_INTS),
    ROW("Erf", 9, T_F | ONYX_T_INTS),
    ROW("Erf", 13, T_FB | ONYX_T_INTS),
    ROWS_7_22("Sin"),
    ROWS_7_22("Cos"),
    ROWS_7_22("Tan"),
    ROWS_7_22("Asin"),
    ROWS_7_22("Acos"),
    ROWS_7_22("Atan"),
    ROWS_9_22("Sinh"),
    ROWS_9_22("Cosh"),
    ROWS_9_22("Asinh"),
    ROWS_9_22("Acosh"),
    ROWS_9_22("Atanh"),
    ROW("IsNaN", 9, T_F),
    ROW("IsNaN", 13, T_FB),
    ROW("IsNaN", 20, T_FB | T_F8),
    ROW("IsInf", 10, ONYX_T(ONYX_DTYPE_FLOAT) | ONYX_T(ONYX_DTYPE_DOUBLE)),
    ROW("IsInf", 20, T_FB | T_F8),
    {0},
};
