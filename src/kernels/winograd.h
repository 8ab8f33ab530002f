/* winograd.h - Winograd F(4x4, 3x3) convolution for 3x3 stride-1 float32
 * Conv: the weight transform (done once at load), the zero-padded input
 * copy, and the input/output tile transforms (generic C twin + ISA
 * variants, chosen in dispatch.c). The 36 GEMMs between the transforms run
 * on the GEMM driver (gemm.h); ops/conv.c strings the steps together.
 *
 * Each 4x4 output tile comes from a 6x6 input tile: V = B^T d B (input),
 * U = G g G^T (weights), M = sum over channels of U .* V (36 GEMMs, one per
 * tile position xi = 6*i + j), Y = A^T M A (output). Tiles are numbered
 * t = ti * tw + tj over a tw-wide grid; a batch of them is a GEMM's columns.
 */
#ifndef ONYX_WINOGRAD_H
#define ONYX_WINOGRAD_H

#include "core/op.h"

#include <stdint.h>

#define ONYX_WINO_ALPHA 6 /* input tile side */
#define ONYX_WINO_M 4     /* output tile side */
#define ONYX_WINO_XI 36   /* transformed positions per tile */

/* u (36, k, c) = G g G^T of w (k, c, 3, 3), computed in double. */
void onyx_winograd_weights(const float *w, int64_t k, int64_t c, float *u);

/* The geometry of one convolution, and its padded input: xp[plane][i][j] =
 * x[plane][i - ph][j - pw] (0 outside the (h, w) plane) with hp = 4*th + 2
 * rows and wp = 4*tw + 4 columns (room for 8-wide reads at every tile). */
typedef struct onyx_wino_geom {
    int64_t c, k;         /* input and output channels */
    int64_t h, w, ph, pw; /* the real input and its leading pads */
    int64_t oh, ow;       /* output size */
    int64_t th, tw;       /* tile grid of one image: ceil(oh/4) x ceil(ow/4) */
    int64_t hp, wp;       /* padded input plane */
} onyx_wino_geom;

onyx_wino_geom onyx_wino_geom_of(int64_t c, int64_t k, int64_t h, int64_t w, int64_t ph,
                                 int64_t pw, int64_t oh, int64_t ow);
/* Pads planes [p0, p1) of x (n*c planes of (h, w)) into xp (n*c planes of
 * (hp, wp)). */
void onyx_winograd_pad(const onyx_wino_geom *g, const float *x, float *xp, int64_t p0,
                       int64_t p1);

/* Tiles are numbered across a batch: t = (n * th + ti) * tw + tj.
 *
 * Input transform of channels [c0, c1), tiles [t0, t0 + nt) of the padded
 * input xp (n, c, hp, wp): v[xi * xi_stride + c * ldv + (t - t0)] =
 * (B^T d B)[xi]; ldv >= nt rounded up to 8, and columns up to there may be
 * written. */
typedef void (*onyx_wino_input_fn)(const onyx_wino_geom *g, const float *xp, int64_t c0,
                                   int64_t c1, int64_t t0, int64_t nt, float *v,
                                   int64_t xi_stride, int64_t ldv);

/* Output transform of output channels [k0, k1), tiles [t0, t0 + nt):
 * reads m[xi * xi_stride + k * ldm + (t - t0)] (ldm >= nt rounded up to 8),
 * writes the valid part of each 4x4 tile of y (n, k, oh, ow) as
 * act((A^T m A) + bias[k] + sum), sum being the element of `sum` (laid out
 * as y) at the same place; bias and sum may be NULL, act NULL or NONE. */
typedef void (*onyx_wino_output_fn)(const onyx_wino_geom *g, const float *m, int64_t xi_stride,
                                    int64_t ldm, int64_t k0, int64_t k1, int64_t t0, int64_t nt,
                                    const float *bias, const float *sum, const onyx_act *act,
                                    float *y);

/* u (36, k, c) = G g G^T of w (k, c, 3, 3), as onyx_winograd_weights. */
typedef void (*onyx_wino_weights_fn)(const float *w, int64_t k, int64_t c, float *u);

typedef struct onyx_winograd_kernels {
    const char *name;
    onyx_wino_input_fn input;
    onyx_wino_output_fn output;
    onyx_wino_weights_fn weights; /* the same bits as onyx_winograd_weights */
} onyx_winograd_kernels;

extern const onyx_winograd_kernels onyx_winograd_generic;
extern const onyx_winograd_kernels onyx_winograd_avx2;

#endif
