/* rows.h - float32 kernels over one contiguous row: softmax / log-softmax
 * (ops/activation.c), layer / RMS normalization (ops/norm.c), the bias
 * row added by MatMul's fused epilogue (ops/matmul.c), the 3-wide
 * stride-2 window max of MaxPool and the plane sum of GlobalAveragePool
 * (ops/pool.c). Each has a generic C twin (rows.c) and ISA variants chosen
 * in dispatch.c. Does not own: axes, strides, type conversion (the ops). */
#ifndef ONYX_ROWS_H
#define ONYX_ROWS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct onyx_row_kernels {
    const char *name;
    /* y[0..n) = softmax(x[0..n)), or log-softmax when `log`; n >= 1. y may
     * equal x. */
    void (*softmax)(const float *x, float *y, int64_t n, bool log);
    /* y[0..n) = (x - mean) * inv * scale + bias with inv = 1/sqrt(var + eps)
     * (the mean not subtracted, and var the mean square, when `rms`); scale
     * and bias (n values) may be NULL. Stores mean and inv when not NULL.
     * n >= 1; y may equal x. */
    void (*layernorm)(const float *x, float *y, int64_t n, float eps, const float *scale,
                      const float *bias, bool rms, float *mean, float *inv);
    /* y[0..n) += b[0..n); n >= 0, y and b do not overlap. */
    void (*add)(float *y, const float *b, int64_t n);
    /* y[o] = max(x[2o], x[2o+1], x[2o+2]) for o in [0, n): the columns of a
     * 3-wide, stride-2 max pooling (reads x[0..2n]). Taps in order, each
     * taken when greater: a NaN first tap gives NaN, later NaNs are
     * skipped (ops/pool.c's order). */
    void (*max3s2)(const float *x, float *y, int64_t n);
    /* The sum of x[0..n) (n >= 0), carried in double: the generic twin adds
     * every element in double, the vector variants add short runs in float
     * lanes and each run's total in double. */
    double (*sum)(const float *x, int64_t n);
} onyx_row_kernels;

extern const onyx_row_kernels onyx_row_kernels_generic;
extern const onyx_row_kernels onyx_row_kernels_avx2;

#endif
