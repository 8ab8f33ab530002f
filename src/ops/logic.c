/* logic.c - comparisons and boolean logic: Equal, Less, LessOrEqual,
 * Greater, GreaterOrEqual (numeric, bool, and string for Equal) with a bool
 * result, and And, Or, Xor, Not on bool tensors. Broadcasting and threads
 * come from the map of elementwise.h. */
#include "ops/elementwise.h"

#include <math.h>
#include <string.h>

typedef enum logic_op { L_EQ, L_LT, L_LE, L_GT, L_GE, L_AND, L_OR, L_XOR, L_NOT } logic_op;

typedef struct logic_attr {
    logic_op op;
    int axis; /* legacy broadcast axis (opset < 7), or ONYX_EW_NO_AXIS */
} logic_attr;

typedef struct logic_ctx {
    logic_op op;
    onyx_dtype t; /* compute type of the inputs */
} logic_ctx;

// ----------------------------------------------------------------------------
// Kernels: the output is bool (one byte); inputs are of type T

#define COMPARE(T)                                                                        \
    do {                                                                                  \
        switch (op) {                                                                     \
        case L_EQ: ONYX_EW_BIN(T, T, a == b); break;                                      \
        case L_LT: ONYX_EW_BIN(T, T, a < b); break;                                       \
        case L_LE: ONYX_EW_BIN(T, T, a <= b); break;                                      \
        case L_GT: ONYX_EW_BIN(T, T, a > b); break;                                       \
        case L_GE: ONYX_EW_BIN(T, T, a >= b); break;                                      \
        default: break;                                                                   \
        }                                                                                 \
    } while (0)

static int str_cmp(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : ""); }

static void logic_row(void *ctx, char *const *p, const int64_t *s, int64_t n) {
    const logic_ctx *c = ctx;
    logic_op op = c->op;
    uint8_t *o = (uint8_t *)p[0];
    switch (op) {
    case L_AND: ONYX_EW_BIN(uint8_t, uint8_t, (a != 0) & (b != 0)); return;
    case L_OR: ONYX_EW_BIN(uint8_t, uint8_t, (a != 0) | (b != 0)); return;
    case L_XOR: ONYX_EW_BIN(uint8_t, uint8_t, (a != 0) ^ (b != 0)); return;
    case L_NOT: {
        const uint8_t *a = (const uint8_t *)p[1];
        for (int64_t i = 0; i < n; i++) o[i] = !a[i * s[1]];
        return;
    }
    default: break;
    }
    switch (c->t) {
#define ONYX_EW_CASE(ENUM, T) COMPARE(T)
        ONYX_EW_TYPE_CASES
#undef ONYX_EW_CASE
    case ONYX_DTYPE_BOOL: COMPARE(uint8_t); break;
    case ONYX_DTYPE_STRING:
        if (op == L_EQ) ONYX_EW_BIN(const char *, const char *, str_cmp(a, b) == 0);
        break;
    default: break;
    }
}

// ----------------------------------------------------------------------------
// Ops

static const struct {
    const char *name;
    logic_op op;
} logic_names[] = {
    {"Equal", L_EQ}, {"Less", L_LT}, {"LessOrEqual", L_LE}, {"Greater", L_GT},
    {"GreaterOrEqual", L_GE}, {"And", L_AND}, {"Or", L_OR}, {"Xor", L_XOR}, {"Not", L_NOT},
};

static onyx_status init_logic(onyx_node *n, onyx_error *err) {
    logic_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->op = L_NOT;
    for (size_t i = 0; i < sizeof logic_names / sizeof logic_names[0]; i++)
        if (!strcmp(n->op_type, logic_names[i].name)) a->op = logic_names[i].op;
    a->axis = onyx_ew_legacy_axis(n);
    if (a->axis == ONYX_MAX_DIMS + 1)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute axis out of range");
    n->state = a;
    return ONYX_OK;
}

static bool logic_supports(logic_op op, onyx_dtype t) {
    if (op >= L_AND) return t == ONYX_DTYPE_BOOL;
    if (t == ONYX_DTYPE_STRING) return op == L_EQ;
    if (t == ONYX_DTYPE_BOOL || t == ONYX_DTYPE_FLOAT || t == ONYX_DTYPE_DOUBLE) return true;
    return (onyx_dtype_is_signed_int(t) || onyx_dtype_is_unsigned_int(t)) &&
           t != ONYX_DTYPE_INT4 && t != ONYX_DTYPE_UINT4;
}

static onyx_status run_logic(const onyx_node *n, onyx_exec *x) {
    const logic_attr *at = n->state;
    int arity = at->op == L_NOT ? 1 : 2;
    const onyx_tensor *in[2] = {onyx_exec_input(x, 0), arity == 2 ? onyx_exec_input(x, 1) : NULL};
    if (!in[0] || (arity == 2 && !in[1]))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    logic_ctx c = {at->op, onyx_ew_compute_type(in[0]->dtype)};
    if (!logic_supports(c.op, c.t))
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "%s of type %s is not supported",
                              n->op_type, onyx_dtype_name(in[0]->dtype));
    onyx_tensor b;
    onyx_status st;
    if (arity == 2) {
        if (in[1]->dtype != in[0]->dtype)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "input types differ: %s and %s",
                                  onyx_dtype_name(in[0]->dtype), onyx_dtype_name(in[1]->dtype));
        if ((st = onyx_ew_align(x, at->axis, in[0], in[1], &b))) return st;
        in[1] = &b;
    }
    int nd;
    int64_t dims[ONYX_MAX_DIMS];
    if ((st = onyx_ew_shape(x, arity, in, &nd, dims))) return st;
    onyx_tensor *out;
    if ((st = onyx_exec_output(x, 0, ONYX_DTYPE_BOOL, nd, dims, &out))) return st;
    return onyx_ew_map(x, logic_row, &c, 0, out, arity, in);
}

// ----------------------------------------------------------------------------
// Registry rows

#define T_B ONYX_T(ONYX_DTYPE_BOOL)
#define T_F (ONYX_T(ONYX_DTYPE_FLOAT) | ONYX_T(ONYX_DTYPE_DOUBLE) | ONYX_T(ONYX_DTYPE_FLOAT16))
#define T_NUM (T_F | ONYX_T_INTS)
#define T_NUMB (ONYX_T_NUMERIC)

#define ROW(NAME, V, ARITY, TYPES) {"", NAME, V, ARITY, ARITY, 1, 1, TYPES, init_logic, run_logic}

const onyx_op_schema onyx_ops_logic[] = {
    ROW("Equal", 1, 2, T_B | ONYX_T(ONYX_DTYPE_INT32) | ONYX_T(ONYX_DTYPE_INT64)),
    ROW("Equal", 7, 2, T_B | ONYX_T(ONYX_DTYPE_INT32) | ONYX_T(ONYX_DTYPE_INT64)),
    ROW("Equal", 11, 2, T_B | T_NUM),
    ROW("Equal", 13, 2, T_B | T_NUMB),
    ROW("Equal", 19, 2, T_B | T_NUMB | ONYX_T(ONYX_DTYPE_STRING)),
    ROW("Less", 1, 2, T_F),
    ROW("Less", 7, 2, T_F),
    ROW("Less", 9, 2, T_NUM),
    ROW("Less", 13, 2, T_NUMB),
    ROW("Greater", 1, 2, T_F),
    ROW("Greater", 7, 2, T_F),
    ROW("Greater", 9, 2, T_NUM),
    ROW("Greater", 13, 2, T_NUMB),
    ROW("LessOrEqual", 12, 2, T_NUM),
    ROW("LessOrEqual", 16, 2, T_NUMB),
    ROW("GreaterOrEqual", 12, 2, T_NUM),
    ROW("GreaterOrEqual", 16, 2, T_NUMB),
    ROW("And", 1, 2, T_B),
    ROW("And", 7, 2, T_B),
    ROW("Or", 1, 2, T_B),
    ROW("Or", 7, 2, T_B),
    ROW("Xor", 1, 2, T_B),
    ROW("Xor", 7, 2, T_B),
    ROW("Not", 1, 1, T_B),
    {0},
};
