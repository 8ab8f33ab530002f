/* depthwise.h - the channel-blocked depthwise convolution: up to 8 channels
 * of one image at a time, their input rows interleaved by channel so that each
 * output position of all 8 is one 8-lane vector. Generic C twin in
 * depthwise.c, AVX2 variant in depthwise_avx2.c. Does not own: the per-plane
 * depthwise kernel (conv_kernels.h) nor the choice between the two (ops/conv.c).
 *
 * Shapes: x (nc, h, w), w (nc, kh, kw), bias (nc), sum and y (nc, oh, ow),
 * for nc <= ONYX_DWC_BLOCK consecutive channels of one image.
 */
#ifndef ONYX_DEPTHWISE_H
#define ONYX_DEPTHWISE_H

#include "kernels/conv_kernels.h"

#include <stdint.h>

#define ONYX_DWC_BLOCK 8

/* One depthwise convolution's geometry, prepared once for all its channel
 * blocks. The scratch holds a ring of `slots` interleaved input rows (row iy
 * in slot iy % slots, column j of a row at input column j - pw, 8 floats per
 * column), one row of zeros (the rows above and below the image), and the
 * interleaved weights. */
typedef struct onyx_dwc_plan {
    onyx_conv2d g;     /* c unused */
    int64_t slots;     /* input rows one output row reads: (kh-1)*dh + 1 */
    int64_t cols;      /* columns of a scratch row, covering every read of
                        * a whole 8-wide block of output columns */
    int64_t wt;        /* input columns copied into a row: those some tap reads */
    int64_t floats;    /* scratch floats */
} onyx_dwc_plan;

void onyx_dwc_plan_init(const onyx_conv2d *g, onyx_dwc_plan *p);

/* y (c, oh, ow) = act(bias[c] + sum over taps of w (c, kh, kw) * x (c, h, w)
 * + sum (c, oh, ow)) for c < nc (1..ONYX_DWC_BLOCK); bias and sum may be
 * NULL (none), act NULL or NONE. `scratch` holds p->floats floats (32-byte
 * aligned) owned by the calling thread. */
typedef void (*onyx_dwc_fn)(const onyx_dwc_plan *p, const float *x, const float *w,
                            const float *bias, const float *sum, const onyx_act *act, float *y,
                            int nc, float *scratch);

typedef struct onyx_depthwise_kernels {
    const char *name;
    onyx_dwc_fn block;
} onyx_depthwise_kernels;

extern const onyx_depthwise_kernels onyx_depthwise_generic;
extern const onyx_depthwise_kernels onyx_depthwise_avx2;

#endif
