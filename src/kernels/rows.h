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
    /* y[o] = the max of x[r*ld + 2o + t] over rows r < kh and taps
     * t < 3, for o in [0, n): a 3-wide, stride-2 max pooling window over kh
     * >= 1 rows ld apart (reads x[r*ld .. r*ld + 2n] only). Each column's
     * rows first, then the three columns; in both, a value is taken when
     * greater, so a NaN top-left tap gives NaN and later NaNs are skipped
     * (ops/pool.c's order). */
    void (*max3s2)(const float *x, int64_t ld, int64_t kh, float *y, int64_t n);
    /* The sum of x[0..n) (n >= 0), carried in double: the generic twin adds
     * every element in double, the vector variants add short runs in float
     * lanes and each run's total in double. */
    double (*sum)(const float *x, int64_t n);
} onyx_row_kernels;

extern const onyx_row_kernels onyx_row_kernels_generic;
extern const onyx_row_kernels onyx_row_kernels_avx2;

#endif
