/* ew.h - float32 elementwise kernels: binary arithmetic on contiguous or
 * broadcast (stride 0) operands with an optional fused activation, and the
 * unary math the ops route here (Relu, Tanh, Exp, Erf, Gelu, Sqrt, ...).
 * Each has a generic C twin (libm, ew_generic.c) and ISA variants chosen in
 * dispatch.c. Does not own broadcasting, threads or dtypes (ops/elementwise.c)
 * nor the fused-activation kinds of conv_kernels.h's act. */
#ifndef ONYX_KERNELS_EW_H
#define ONYX_KERNELS_EW_H

#include "core/op.h"

#include <stdint.h>

typedef enum onyx_ew_binop {
    ONYX_EW_ADD,
    ONYX_EW_SUB,
    ONYX_EW_MUL,
    ONYX_EW_DIV,
    ONYX_EW_MAX, /* a > b ? a : b, except that a NaN in a wins (ONNX Max) */
    ONYX_EW_MIN, /* a < b ? a : b, likewise */
    ONYX_EW_BINOP_COUNT
} onyx_ew_binop;

typedef enum onyx_ew_unop {
    ONYX_EW_RELU,      /* x < 0 ? 0 : x (NaN passes, unlike the fused kind) */
    ONYX_EW_TANH,
    ONYX_EW_SIGMOID,   /* 1 / (1 + exp(-x)), NaN passing; denormal results kept (act.h) */
    ONYX_EW_NEG,
    ONYX_EW_ABS,
    ONYX_EW_SQRT,
    ONYX_EW_RECIP,     /* 1 / x */
    ONYX_EW_EXP,
    ONYX_EW_ERF,
    ONYX_EW_GELU,      /* 0.5 x (1 + erf(x / sqrt 2)) */
    ONYX_EW_GELU_TANH, /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
    ONYX_EW_SQUARE,    /* Pow(x, 2) */
    ONYX_EW_CUBE,      /* Pow(x, 3) */
    ONYX_EW_POW_HALF,  /* Pow(x, 0.5): sqrt, but +0 for -0 and +inf for -inf */
    ONYX_EW_UNOP_COUNT
} onyx_ew_unop;

typedef struct onyx_ew_kernels {
    const char *name;
    /* y[i] = act(a[i*sa] op b[i*sb]) for i < n, with sa and sb each 0
     * (broadcast) or 1 (contiguous); act may be NULL or NONE. y may equal
     * a contiguous operand. The arithmetic is exact IEEE float32 in every
     * variant; only the activation's rounding may differ. */
    void (*binary)(onyx_ew_binop op, const float *a, int64_t sa, const float *b, int64_t sb,
                   float *y, int64_t n, const onyx_act *act);
    /* y[i] = op(x[i]) for i < n; y may equal x. Within a few ulp of libm. */
    void (*unary)(onyx_ew_unop op, const float *x, float *y, int64_t n);
} onyx_ew_kernels;

extern const onyx_ew_kernels onyx_ew_kernels_generic;
extern const onyx_ew_kernels onyx_ew_kernels_avx2;

#endif
