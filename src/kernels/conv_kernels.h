/* conv_kernels.h - the float32 convolution kernels ops/conv.c builds on:
 * the implicit-im2col packer that feeds the GEMM driver (gemm.h) without a
 * column buffer, the bias + activation epilogue, and the direct 2-D
 * depthwise convolution. Each has a generic C twin and ISA variants chosen in
 * dispatch.c. Does not own: attribute parsing, shapes (ops/conv.c), GEMM.
 *
 * Shapes: one image of one group, NCHW: x (c, h, w), y (k, oh, ow).
 */
#ifndef ONYX_CONV_KERNELS_H
#define ONYX_CONV_KERNELS_H

#include "core/op.h"

#include <stdint.h>

/* Geometry of one 2-D convolution of one (image, group); pads are leading. */
typedef struct onyx_conv2d {
    int64_t c, h, w;       /* input channels (this group), height, width */
    int64_t oh, ow;        /* output height, width */
    int64_t kh, kw;        /* kernel */
    int64_t sh, sw, dh, dw; /* strides, dilations */
    int64_t ph, pw;        /* leading pads */
} onyx_conv2d;

/* ---------------------------------------------------------------------- */
/* Implicit im2col                                                         */

/* The B matrix of a convolution as GEMM (GEMM M/N/K: K x N with K = c*kh*kw
 * rows (channel, tap) and N = oh*ow columns), read straight from the image.
 * When sw > 1 the image is first split into sw column phases, phase q
 * holding columns q, q+sw, ... (onyx_conv_split_phases), so that every row
 * of B reads contiguous input. */
typedef struct onyx_conv_im2col {
    const onyx_conv2d *g;
    const float *x;   /* (c, h, w) when sw == 1, else the phases: (c, sw, h, pw_len) */
    int64_t phase_w;  /* columns per phase: ceil(w / sw) (w when sw == 1) */
} onyx_conv_im2col;

/* Floats the phase split of one image group needs: c * h * sw * ceil(w/sw). */
int64_t onyx_conv_phase_floats(const onyx_conv2d *g);
/* Writes the phases of channels [c0, c1) of x (c, h, w) into dst (the
 * generic twin of onyx_conv_kernels.split_phases). */
void onyx_conv_split_phases(const onyx_conv2d *g, const float *x, float *dst, int64_t c0,
                            int64_t c1);

/* onyx_sgemm_pack_b_fn over an onyx_conv_im2col (ctx). */
void onyx_conv_pack_b(void *ctx, int64_t p0, int64_t kc, int64_t j0, int64_t nc, int nr,
                      float *dst);

/* ---------------------------------------------------------------------- */
/* ISA-dispatched kernels                                                  */

/* A depthwise convolution's geometry prepared once for all its planes: the
 * scratch layout (the zero-padded input split into sw column phases, each
 * row as long as the widest vector read) and the tap offsets into it. */
#define ONYX_DW_MAX_TAPS 49
#define ONYX_DW_MAX_STRIDE 8

typedef struct onyx_dw_plan {
    onyx_conv2d g;          /* c == 1 */
    int64_t rows, len;      /* rows of a phase, floats per row */
    int64_t floats;         /* scratch floats: sw * rows * len, plus 8 of slack */
    /* Phase q's row t in [lo[q], hi[q]) holds x columns q + t*sw - pw. */
    int64_t lo[ONYX_DW_MAX_STRIDE], hi[ONYX_DW_MAX_STRIDE];
    /* kh * kw, or 0 when the kernel or stride is too large for the plan
     * (the variants then fall back to the generic twin) */
    int ntaps;
    int64_t off[ONYX_DW_MAX_TAPS]; /* tap offsets from an output row's first input row */
} onyx_dw_plan;

void onyx_dw_plan_init(const onyx_conv2d *g, onyx_dw_plan *p);

/* One direct 2-D depthwise plane: y (oh, ow) = act(bias + sum over taps of
 * w (kh, kw) * x (h, w) + sum (oh, ow)); sum may be NULL (none).
 * `scratch` holds p->floats floats owned by the calling thread. */
typedef void (*onyx_dw_plane_fn)(const onyx_dw_plan *p, const float *x, const float *w,
                                 float bias, const float *sum, const onyx_act *act, float *y,
                                 float *scratch);

typedef struct onyx_conv_kernels {
    const char *name;
    /* y[r*ldy + j] = act(y[r*ldy + j] + bias[r]) for r < rows, j < n; bias
     * may be NULL, act may be NULL or NONE. */
    void (*bias_act)(float *y, int64_t ldy, int64_t rows, int64_t n, const float *bias,
                     const onyx_act *act);
    /* y[i] = act(x[i]) for i < n (y may equal x): the fused-activation
     * formulas of act.c, vectorized, for any float32 activation op. */
    void (*act)(const float *x, float *y, int64_t n, const onyx_act *act);
    onyx_dw_plane_fn depthwise;
    /* onyx_conv_split_phases */
    void (*split_phases)(const onyx_conv2d *g, const float *x, float *dst, int64_t c0,
                         int64_t c1);
} onyx_conv_kernels;

extern const onyx_conv_kernels onyx_conv_kernels_generic;
extern const onyx_conv_kernels onyx_conv_kernels_avx2;

#endif
