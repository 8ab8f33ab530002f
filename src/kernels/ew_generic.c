/* ew_generic.c - the generic C twins of the float32 elementwise kernels of
 * ew.h: plain loops over libm, the reference the ISA variants are tested
 * against. Same formulas as the ops' own typed loops. */
#include "kernels/ew.h"

#include "kernels/act.h"

#include <math.h>

#define SQRT1_2 0.70710678118654752440f
#define SQRT_2_PI 0.79788456080286535588f /* sqrt(2 / pi) */

/* The three stride cases of a binary row; EXPR reads `a` and `b`. */
#define BIN(EXPR)                                                                          \
    do {                                                                                   \
        if (sa && sb)                                                                      \
            for (int64_t i = 0; i < n; i++) {                                              \
                float a = A[i], b = B[i];                                                  \
                y[i] = (EXPR);                                                             \
            }                                                                              \
        else if (sa)                                                                       \
            for (int64_t i = 0; i < n; i++) {                                              \
                float a = A[i], b = B[0];                                                  \
                y[i] = (EXPR);                                                             \
            }                                                                              \
        else if (sb)                                                                       \
            for (int64_t i = 0; i < n; i++) {                                              \
                float a = A[0], b = B[i];                                                  \
                y[i] = (EXPR);                                                             \
            }                                                                              \
        else                                                                               \
            for (int64_t i = 0; i < n; i++) {                                              \
                float a = A[0], b = B[0];                                                  \
                y[i] = (EXPR);                                                             \
            }                                                                              \
    } while (0)

static void binary_generic(onyx_ew_binop op, const float *A, int64_t sa, const float *B,
                           int64_t sb, float *y, int64_t n, const onyx_act *act) {
    switch (op) {
    case ONYX_EW_ADD: BIN(a + b); break;
    case ONYX_EW_SUB: BIN(a - b); break;
    case ONYX_EW_MUL: BIN(a * b); break;
    case ONYX_EW_DIV: BIN(a / b); break;
    case ONYX_EW_MAX: BIN(isnan(a) || a > b ? a : b); break;
    case ONYX_EW_MIN: BIN(isnan(a) || a < b ? a : b); break;
    case ONYX_EW_BINOP_COUNT: break;
    }
    if (act && act->kind != ONYX_ACT_NONE) onyx_act_apply(act, y, n);
}

#define UN(EXPR)                                                                           \
    do {                                                                                   \
        for (int64_t i = 0; i < n; i++) {                                                  \
            float v = x[i];                                                                \
            y[i] = (EXPR);                                                                 \
        }                                                                                  \
    } while (0)

static void unary_generic(onyx_ew_unop op, const float *x, float *y, int64_t n) {
    switch (op) {
    case ONYX_EW_RELU: UN(v < 0 ? 0.0f : v); break;
    case ONYX_EW_TANH: UN(tanhf(v)); break;
    case ONYX_EW_SIGMOID: UN(onyx_sigmoidf(v)); break;
    case ONYX_EW_NEG: UN(-v); break;
    case ONYX_EW_ABS: UN(fabsf(v)); break;
    case ONYX_EW_SQRT: UN(sqrtf(v)); break;
    case ONYX_EW_RECIP: UN(1.0f / v); break;
    case ONYX_EW_EXP: UN(expf(v)); break;
    case ONYX_EW_ERF: UN(erff(v)); break;
    case ONYX_EW_GELU: UN(0.5f * v * (1.0f + erff(v * SQRT1_2))); break;
    case ONYX_EW_GELU_TANH:
        UN(0.5f * v * (1.0f + tanhf(SQRT_2_PI * (v + 0.044715f * v * v * v))));
        break;
    case ONYX_EW_SQUARE: UN(v * v); break;
    case ONYX_EW_CUBE: UN(v * v * v); break;
    /* sqrtf is correctly rounded, powf(v, 0.5f) within an ulp of it. */
    case ONYX_EW_POW_HALF: UN(v == -INFINITY ? INFINITY : sqrtf(v + 0.0f)); break;
    case ONYX_EW_UNOP_COUNT: break;
    }
}

const onyx_ew_kernels onyx_ew_kernels_generic = {"generic", binary_generic, unary_generic};
