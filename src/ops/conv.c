/* conv.c - the convolution operators: Conv (1-D/2-D/3-D..., groups,
 * dilations, strides, pads, auto_pad, bias, fused activation), ConvTranspose
 * (output_padding, output_shape) and ConvInteger.
 * float32 1-D/2-D Conv is a GEMM per (image, group) whose A (the weights) is
 * prepacked at load when W is constant and whose B is packed straight from
 * the image (implicit im2col, src/kernels/conv_kernels.h), with bias and
 * activation applied per block of output in the GEMM epilogue; depthwise
 * 2-D is direct (dispatched kernel). Higher ranks use im2col bands + GEMM;
 * ConvTranspose is GEMM + col2im. float16/bfloat16 compute in float32,
 * double in double. The GEMM itself lives in src/kernels/gemm.c. */
#include "core/op.h"
#include "kernels/act.h"
#include "kernels/conv_kernels.h"
#include "kernels/dispatch.h"
#include "kernels/gemm.h"
#include "kernels/winograd.h"
#include "ops/elementwise.h"

#include <stdlib.h>
#include <string.h>

#define MAX_SPATIAL (ONYX_MAX_DIMS - 2)

// ----------------------------------------------------------------------------
// Attributes and geometry

typedef enum auto_pad { PAD_NOTSET, PAD_VALID, PAD_SAME_UPPER, PAD_SAME_LOWER } auto_pad;

/* Parsed attributes; the arrays are borrowed from the model (count -1 when
 * absent). Sizes are checked against the input rank at run time. */
typedef struct conv_attr {
    auto_pad pad_mode;
    int64_t group;
    int64_t n_kernel, n_dil, n_pads, n_strides, n_opad, n_oshape;
    const int64_t *kernel, *dil, *pads, *strides, *opad, *oshape;
    /* Conv with a constant float32 W: each group's (K/group, C/group*R)
     * block packed for the GEMM micro-kernel `kern`, packed_stride floats
     * apart; used when the run's W is that constant (w_data). */
    const void *w_data;
    const onyx_sgemm_kernel *kern;
    const float *packed; /* (group, packed_stride) or NULL */
    int64_t packed_stride;
    /* 3x3 stride-1 dense Conv with a constant float32 W: the Winograd
     * weights U (36, K, C), each position's (K, C) matrix packed for `kern`,
     * wino_stride floats apart (packed is then NULL). */
    const float *wino;
    int64_t wino_stride;
} conv_attr;

/* Winograd pays off, in time and in weight memory (U is 4x W), for 3x3
 * stride-1 layers of moderate width; the widest layers (ResNet's 512-channel
 * stage) run on small images where its tiles would mostly be padding. */
#define WINO_MAX_KC ((int64_t)256 * 256)
#define WINO_MIN_C 4
#define WINO_MIN_K 8

static bool all_ones(int64_t n, const int64_t *v) {
    for (int64_t i = 0; i < n; i++)
        if (v[i] != 1) return false;
    return true;
}

/* Transforms and packs a constant 3x3 W for Winograd (see conv_attr). U is
 * made a band of output channels at a time, small enough to stay in L2
 * (about 256 KB), and each band is packed straight into the 36 matrices:
 * the whole U (4x W) is never held beside its packed form. */
static onyx_status prepack_winograd(onyx_node *n, conv_attr *a, const onyx_tensor *W,
                                    onyx_error *err) {
    const int64_t k = W->dims[0], c = W->dims[1];
    const onyx_sgemm_kernel *kern = onyx_kernels_get()->sgemm;
    const onyx_winograd_kernels *wk = onyx_kernels_get()->winograd;
    int64_t stride = onyx_sgemm_packed_a_floats(kern, k, c);
    int64_t band = (64 * 1024) / (ONYX_WINO_XI * c) / kern->mr * kern->mr;
    if (band < kern->mr) band = kern->mr;
    if (band > k) band = k;
    float *u = malloc((size_t)(ONYX_WINO_XI * band * c) * sizeof(float)); /* (36, band, c) */
    float *packed = stride < 0 ? NULL
                               : onyx_node_alloc_packed(n, (size_t)(ONYX_WINO_XI * stride) *
                                                                sizeof(float));
    if (!u || !packed) {
        free(u);
        return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory transforming W");
    }
    const float *w = W->data;
    for (int64_t k0 = 0; k0 < k; k0 += band) {
        int64_t rows = k - k0 < band ? k - k0 : band;
        wk->weights(w + k0 * c * 9, rows, c, u);
        for (int xi = 0; xi < ONYX_WINO_XI; xi++)
            onyx_sgemm_pack_a_rows(kern, k, c, k0, rows, u + xi * rows * c, c,
                                   packed + xi * stride);
    }
    free(u);
    a->w_data = W->data;
    a->kern = kern;
    a->wino = packed;
    a->wino_stride = stride;
    return ONYX_OK;
}

/* Packs a constant float32 W of a non-depthwise Conv (see conv_attr). A W
 * that does not fit the attributes is left for run to reject. */
static onyx_status prepack_conv(onyx_node *n, conv_attr *a, onyx_error *err) {
    const onyx_tensor *W = onyx_node_constant(n, 1);
    if (!W || W->dtype != ONYX_DTYPE_FLOAT || W->ndim < 3 || !W->data) return ONYX_OK;
    int64_t k = W->dims[0], cg = W->dims[1], kk = cg;
    for (int d = 2; d < W->ndim; d++) {
        if (W->dims[d] <= 0 || kk > INT64_MAX / W->dims[d]) return ONYX_OK;
        kk *= W->dims[d];
    }
    if (k <= 0 || cg <= 0 || k % a->group != 0) return ONYX_OK;
    if (cg == 1 && a->group > 1 && W->ndim == 4) return ONYX_OK; /* depthwise: direct */
    if (W->ndim == 4 && W->dims[2] == 3 && W->dims[3] == 3 && a->group == 1 &&
        (a->n_strides < 0 || all_ones(a->n_strides, a->strides)) &&
        (a->n_dil < 0 || all_ones(a->n_dil, a->dil)) && cg >= WINO_MIN_C && k >= WINO_MIN_K &&
        k * cg <= WINO_MAX_KC)
        return prepack_winograd(n, a, W, err);
    const onyx_sgemm_kernel *kern = onyx_kernels_get()->sgemm;
    int64_t kg = k / a->group, stride = onyx_sgemm_packed_a_floats(kern, kg, kk);
    if (stride < 0 || stride > INT64_MAX / a->group / (int64_t)sizeof(float))
        return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "W is too large to pack");
    float *packed = onyx_node_alloc_packed(n, (size_t)(stride * a->group) * sizeof(float));
    if (!packed) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory packing W");
    const float *w = W->data;
    for (int64_t gi = 0; gi < a->group; gi++)
        onyx_sgemm_pack_a(kern, false, kg, kk, w + gi * kg * kk, kk, packed + gi * stride);
    a->w_data = W->data;
    a->kern = kern;
    a->packed = packed;
    a->packed_stride = stride;
    return ONYX_OK;
}

static onyx_status init_conv(onyx_node *n, onyx_error *err) {
    conv_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    const char *ap = onyx_attr_string(n, "auto_pad", "NOTSET");
    if (!strcmp(ap, "NOTSET") || !ap[0]) a->pad_mode = PAD_NOTSET;
    else if (!strcmp(ap, "VALID")) a->pad_mode = PAD_VALID;
    else if (!strcmp(ap, "SAME_UPPER")) a->pad_mode = PAD_SAME_UPPER;
    else if (!strcmp(ap, "SAME_LOWER")) a->pad_mode = PAD_SAME_LOWER;
    else return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "auto_pad \"%s\" is not valid", ap);
    a->group = onyx_attr_int(n, "group", 1);
    if (a->group < 1) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "group must be >= 1");
    a->n_kernel = onyx_attr_ints(n, "kernel_shape", &a->kernel);
    a->n_dil = onyx_attr_ints(n, "dilations", &a->dil);
    a->n_pads = onyx_attr_ints(n, "pads", &a->pads);
    a->n_strides = onyx_attr_ints(n, "strides", &a->strides);
    a->n_opad = onyx_attr_ints(n, "output_padding", &a->opad);
    a->n_oshape = onyx_attr_ints(n, "output_shape", &a->oshape);
    for (int64_t i = 0; i < a->n_dil; i++)
        if (a->dil[i] < 1) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "dilations must be >= 1");
    for (int64_t i = 0; i < a->n_strides; i++)
        if (a->strides[i] < 1) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "strides must be >= 1");
    for (int64_t i = 0; i < a->n_kernel; i++)
        if (a->kernel[i] < 1)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "kernel_shape must be >= 1");
    if (!strcmp(n->op_type, "Conv")) {
        onyx_status st = prepack_conv(n, a, err);
        if (st) return st;
        /* 1-D/2-D runs with the constant W read only the packed form, except
         * that Winograd layers fall back to W for images of few tiles. */
        const onyx_tensor *W = onyx_node_constant(n, 1);
        if ((a->packed || a->wino) && W->ndim <= 4)
            onyx_node_release_constant(n, 1, a->wino != NULL);
    }
    n->state = a;
    return ONYX_OK;
}

/* One convolution's sizes. For Conv, `in` is X's spatial shape and `out`
 * Y's; for ConvTranspose the GEMM side (the "image") is X and `out` is the
 * scattered result. c/k are input/output channels, cg/kg per group. */
typedef struct conv_geom {
    int nd;                                   /* spatial rank */
    int64_t n, c, k, group, cg, kg;
    int64_t in[MAX_SPATIAL], out[MAX_SPATIAL], kern[MAX_SPATIAL];
    int64_t stride[MAX_SPATIAL], dil[MAX_SPATIAL], pad[MAX_SPATIAL]; /* pad: leading */
    int64_t in_size, out_size, kern_size;     /* spatial products */
} conv_geom;

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Common checks of X and W and the per-dimension attributes. `w_in_dim`
 * is the W axis holding input channels per group (1 for Conv: W is
 * (K, C/group, k...); 0 for ConvTranspose: W is (C, K/group, k...)). */
static onyx_status geom_common(onyx_exec *x, const conv_attr *a, const onyx_tensor *X,
                               const onyx_tensor *W, bool transpose, conv_geom *g) {
    memset(g, 0, sizeof *g);
    if (X->ndim < 3 || X->ndim > ONYX_MAX_DIMS)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "X must be (N, C, spatial...) with at least one spatial axis, got rank %d",
                              X->ndim);
    if (W->ndim != X->ndim)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "W has rank %d but X has rank %d",
                              W->ndim, X->ndim);
    g->nd = X->ndim - 2;
    g->n = X->dims[0];
    g->c = X->dims[1];
    g->group = a->group;
    if (g->c % g->group != 0)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "%lld input channels do not split into %lld groups", (long long)g->c,
                              (long long)g->group);
    g->cg = g->c / g->group;
    if (!transpose) {
        g->k = W->dims[0];
        if (W->dims[1] != g->cg || g->k % g->group != 0)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "W (%lld, %lld, ...) does not fit %lld input channels in %lld groups",
                                  (long long)W->dims[0], (long long)W->dims[1], (long long)g->c,
                                  (long long)g->group);
        g->kg = g->k / g->group;
    } else {
        if (W->dims[0] != g->c)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "W has %lld input channels but X has %lld",
                                  (long long)W->dims[0], (long long)g->c);
        g->kg = W->dims[1];
        g->k = g->kg * g->group;
    }
    const struct { int64_t n; const char *name; } arr[] = {
        {a->n_kernel, "kernel_shape"}, {a->n_dil, "dilations"}, {a->n_strides, "strides"},
        {a->n_opad, "output_padding"}};
    for (size_t i = 0; i < sizeof arr / sizeof arr[0]; i++)
        if (arr[i].n >= 0 && arr[i].n != g->nd)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "%s has %lld values for %d spatial axes",
                                  arr[i].name, (long long)arr[i].n, g->nd);
    if (a->n_pads >= 0 && a->n_pads != 2 * g->nd)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "pads has %lld values for %d spatial axes",
                              (long long)a->n_pads, g->nd);
    g->in_size = g->kern_size = 1;
    for (int d = 0; d < g->nd; d++) {
        g->in[d] = X->dims[d + 2];
        g->kern[d] = W->dims[d + 2];
        if (a->n_kernel >= 0 && a->kernel[d] != g->kern[d])
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "kernel_shape[%d] = %lld but W has %lld", d,
                                  (long long)a->kernel[d], (long long)g->kern[d]);
        g->stride[d] = a->n_strides >= 0 ? a->strides[d] : 1;
        g->dil[d] = a->n_dil >= 0 ? a->dil[d] : 1;
        g->in_size *= g->in[d];
        g->kern_size *= g->kern[d];
    }
    return ONYX_OK;
}

/* Conv output shape and leading pads (auto_pad rules of the spec). */
static onyx_status geom_conv(onyx_exec *x, const conv_attr *a, const onyx_tensor *X,
                             const onyx_tensor *W, conv_geom *g) {
    onyx_status st = geom_common(x, a, X, W, false, g);
    if (st) return st;
    g->out_size = 1;
    for (int d = 0; d < g->nd; d++) {
        int64_t in = g->in[d], s = g->stride[d], ek = (g->kern[d] - 1) * g->dil[d] + 1;
        int64_t out;
        if (a->pad_mode == PAD_SAME_UPPER || a->pad_mode == PAD_SAME_LOWER) {
            out = (in + s - 1) / s;
            int64_t total = (out - 1) * s + ek - in;
            if (total < 0) total = 0;
            g->pad[d] = a->pad_mode == PAD_SAME_UPPER ? total / 2 : total - total / 2;
        } else {
            int64_t pb = 0, pe = 0;
            if (a->pad_mode == PAD_NOTSET && a->n_pads >= 0) {
                pb = a->pads[d];
                pe = a->pads[d + g->nd];
            }
            g->pad[d] = pb;
            int64_t span = in + pb + pe - ek;
            if (span < 0)
                return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                      "spatial axis %d: input %lld with pads is smaller than the kernel extent %lld",
                                      d, (long long)in, (long long)ek);
            out = span / s + 1;
        }
        g->out[d] = out;
        g->out_size *= out;
    }
    return ONYX_OK;
}

/* ConvTranspose output shape and leading pads (the reference's rules:
 * explicit output_shape keeps explicit pads; SAME_* derive pads from it). */
static onyx_status geom_convtranspose(onyx_exec *x, const conv_attr *a, const onyx_tensor *X,
                                      const onyx_tensor *W, conv_geom *g) {
    onyx_status st = geom_common(x, a, X, W, true, g);
    if (st) return st;
    const int64_t *oshape = NULL;
    if (a->n_oshape >= 0) {
        /* output_shape may list the spatial axes only or the whole shape. */
        if (a->n_oshape == g->nd) oshape = a->oshape;
        else if (a->n_oshape == g->nd + 2) oshape = a->oshape + 2;
        else
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "output_shape has %lld values for %d spatial axes",
                                  (long long)a->n_oshape, g->nd);
    }
    bool same = a->pad_mode == PAD_SAME_UPPER || a->pad_mode == PAD_SAME_LOWER;
    g->out_size = 1;
    for (int d = 0; d < g->nd; d++) {
        int64_t in = g->in[d], s = g->stride[d], ek = (g->kern[d] - 1) * g->dil[d] + 1;
        int64_t opad = a->n_opad >= 0 ? a->opad[d] : 0;
        int64_t out;
        if (same && a->n_pads < 0) {
            out = oshape ? oshape[d] : in * s;
            int64_t total = s * (in - 1) + opad + ek - out;
            g->pad[d] = a->pad_mode == PAD_SAME_UPPER ? floor_div(total, 2)
                                                      : total - floor_div(total, 2);
        } else {
            int64_t pb = 0, pe = 0;
            if (a->pad_mode == PAD_NOTSET && a->n_pads >= 0) {
                pb = a->pads[d];
                pe = a->pads[d + g->nd];
            }
            g->pad[d] = pb;
            out = oshape ? oshape[d] : s * (in - 1) + opad + ek - pb - pe;
        }
        if (out < 0)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "spatial axis %d: computed output size %lld is negative", d,
                                  (long long)out);
        g->out[d] = out;
        g->out_size *= out;
    }
    return ONYX_OK;
}

static bool geom_is_pointwise(const conv_geom *g) {
    for (int d = 0; d < g->nd; d++)
        if (g->kern[d] != 1 || g->stride[d] != 1 || g->pad[d] != 0 || g->in[d] != g->out[d])
            return false;
    return true;
}

// ----------------------------------------------------------------------------
// Shared helpers

static void exec_parallel_for(void *px, int64_t n, int64_t grain, onyx_task_fn fn, void *ctx) {
    onyx_exec_parallel(px, n, grain, fn, ctx);
}

static onyx_parallel parallel_of(onyx_exec *x) {
    onyx_parallel p = {exec_parallel_for, x, onyx_exec_threads(x)};
    return p;
}

/* float32 copy of t in scratch (t's own data when already float32). */
static float *as_f32(onyx_exec *x, const onyx_tensor *t) {
    if (t->dtype == ONYX_DTYPE_FLOAT) return t->data;
    int64_t count = onyx_tensor_count(t);
    float *buf = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_FLOAT, count ? count : 1));
    if (buf && count) onyx_convert(ONYX_DTYPE_FLOAT, buf, t->dtype, t->data, count, false);
    return buf;
}

/* Decodes flat kernel offset r into per-axis kernel indices. */
static void kernel_index(const conv_geom *g, int64_t r, int64_t *kidx) {
    for (int d = g->nd - 1; d >= 0; d--) {
        kidx[d] = r % g->kern[d];
        r /= g->kern[d];
    }
}

/* Valid range [lo, hi) of o in [0, n) for which o*s + off lies in [0, lim). */
static void valid_range(int64_t n, int64_t s, int64_t off, int64_t lim, int64_t *lo,
                        int64_t *hi) {
    int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t b = lim - off <= 0 ? 0 : (lim - off + s - 1) / s;
    if (a > n) a = n;
    if (b > n) b = n;
    if (b < a) b = a;
    *lo = a;
    *hi = b;
}

// ----------------------------------------------------------------------------
// im2col and col2im

/* Both work on a band of "lines": a line is one row of the spatial grid
 * along its last axis (out[last] values for im2col, in[last] for col2im),
 * and a band is lines [line0, line0 + nlines). Banding bounds the column
 * buffer for large 3-D inputs; typical 2-D layers fit in one band. */

/* Decodes line index `line` of a grid into per-axis indices (last axis 0). */
static void line_index(int nd, const int64_t *grid, int64_t line, int64_t *idx) {
    idx[nd - 1] = 0;
    for (int d = nd - 2; d >= 0; d--) {
        idx[d] = line % grid[d];
        line /= grid[d];
    }
}

/* im2col: col (cg*R, nlines*ow) from one group's image x (cg, in...):
 *   col[(c*R + r)][o - o0] = x[c][o*stride + kidx(r)*dil - pad]  (0 outside)
 * for the output positions o of the band; rows [begin, end) of col. The
 * last axis is the inner loop, its valid range computed once per line so
 * that stride-1 lines are plain copies. */
#define IM2COL(T)                                                                          \
    static void im2col_rows_##T(const conv_geom *g, const T *x, T *col, int64_t line0,       \
                                int64_t nlines, int64_t begin, int64_t end) {              \
        const int last = g->nd - 1;                                                        \
        const int64_t ow = g->out[last], iw = g->in[last], sw = g->stride[last];           \
        const int64_t ld = nlines * ow;                                                    \
        for (int64_t q = begin; q < end; q++) {                                            \
            int64_t c = q / g->kern_size, r = q % g->kern_size;                            \
            int64_t kidx[MAX_SPATIAL], oidx[MAX_SPATIAL];                                  \
            kernel_index(g, r, kidx);                                                      \
            line_index(g->nd, g->out, line0, oidx);                                        \
            const T *xc = x + c * g->in_size;                                              \
            T *dst = col + q * ld;                                                         \
            int64_t off = kidx[last] * g->dil[last] - g->pad[last], lo, hi;                 \
            valid_range(ow, sw, off, iw, &lo, &hi);                                        \
            for (int64_t line = 0; line < nlines; line++, dst += ow) {                     \
                /* offset of this line in x, or -1 when it lies in padding */               \
                int64_t base = 0;                                                          \
                for (int d = 0; d < last; d++) {                                           \
                    int64_t i = oidx[d] * g->stride[d] + kidx[d] * g->dil[d] - g->pad[d];  \
                    if (i < 0 || i >= g->in[d]) { base = -1; break; }                      \
                    base = base * g->in[d] + i;                                            \
                }                                                                          \
                for (int d = last - 1; d >= 0; d--) {                                      \
                    if (++oidx[d] < g->out[d]) break;                                      \
                    oidx[d] = 0;                                                           \
                }                                                                          \
                if (base < 0) {                                                            \
                    for (int64_t o = 0; o < ow; o++) dst[o] = 0;                           \
                    continue;                                                              \
                }                                                                          \
                const T *src = xc + base * iw + off;                                       \
                int64_t o = 0;                                                             \
                for (; o < lo; o++) dst[o] = 0;                                            \
                if (sw == 1) {                                                             \
                    for (; o < hi; o++) dst[o] = src[o];                                   \
                } else {                                                                   \
                    for (; o < hi; o++) dst[o] = src[o * sw];                              \
                }                                                                          \
                for (; o < ow; o++) dst[o] = 0;                                            \
            }                                                                              \
        }                                                                                  \
    }
/* col2im: y (kg, out...) += the scatter of col (kg*R, nlines*iw), whose
 * columns are the image positions of the band; rows [begin, end) are output
 * channels, so parallel bands of channels never write the same element. */
#define COL2IM(T)                                                                          \
    static void col2im_rows_##T(const conv_geom *g, const T *col, T *y, int64_t line0,      \
                                int64_t nlines, int64_t begin, int64_t end) {              \
        const int last = g->nd - 1;                                                        \
        const int64_t iw = g->in[last], ow = g->out[last], sw = g->stride[last];           \
        const int64_t ld = nlines * iw;                                                    \
        for (int64_t k = begin; k < end; k++) {                                            \
            T *yk = y + k * g->out_size;                                                   \
            for (int64_t r = 0; r < g->kern_size; r++) {                                   \
                int64_t kidx[MAX_SPATIAL], iidx[MAX_SPATIAL];                              \
                kernel_index(g, r, kidx);                                                  \
                line_index(g->nd, g->in, line0, iidx);                                     \
                const T *src = col + (k * g->kern_size + r) * ld;                          \
                int64_t off = kidx[last] * g->dil[last] - g->pad[last], lo, hi;             \
                valid_range(iw, sw, off, ow, &lo, &hi);                                    \
                for (int64_t line = 0; line < nlines; line++, src += iw) {                 \
                    int64_t base = 0;                                                      \
                    for (int d = 0; d < last; d++) {                                       \
                        int64_t o = iidx[d] * g->stride[d] + kidx[d] * g->dil[d] - g->pad[d]; \
                        if (o < 0 || o >= g->out[d]) { base = -1; break; }                 \
                        base = base * g->out[d] + o;                                       \
                    }                                                                      \
                    for (int d = last - 1; d >= 0; d--) {                                  \
                        if (++iidx[d] < g->in[d]) break;                                   \
                        iidx[d] = 0;                                                       \
                    }                                                                      \
                    if (base < 0) continue;                                                \
                    T *dst = yk + base * ow + off;                                         \
                    for (int64_t i = lo; i < hi; i++) dst[i * sw] += src[i];               \
                }                                                                          \
            }                                                                              \
        }                                                                                  \
    }
IM2COL(float)
IM2COL(double)
IM2COL(int32_t)
COL2IM(float)
COL2IM(double)

typedef struct cols_job {
    const conv_geom *g;
    bool is_double;
    const void *src;
    void *dst;
    int64_t line0, nlines;
} cols_job;

static void im2col_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const cols_job *j = ctx;
    (void)thread;
    if (j->is_double) im2col_rows_double(j->g, j->src, j->dst, j->line0, j->nlines, begin, end);
    else im2col_rows_float(j->g, j->src, j->dst, j->line0, j->nlines, begin, end);
}

static void col2im_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const cols_job *j = ctx;
    (void)thread;
    if (j->is_double) col2im_rows_double(j->g, j->src, j->dst, j->line0, j->nlines, begin, end);
    else col2im_rows_float(j->g, j->src, j->dst, j->line0, j->nlines, begin, end);
}

static int64_t rows_grain(int64_t row_len) { return row_len >= 4096 ? 1 : 4096 / (row_len + 1) + 1; }

/* Column buffers are cut into bands of at most this many bytes. */
#define COL_BUDGET ((int64_t)16 << 20)

/* Lines per band for a column matrix of `rows` rows whose lines hold
 * `line_len` elements of `es` bytes, out of `lines` in all. */
static int64_t band_lines(int64_t rows, int64_t line_len, int64_t lines, size_t es) {
    int64_t per_line = rows * line_len * (int64_t)es;
    int64_t n = per_line > 0 ? COL_BUDGET / per_line : lines;
    if (n < 1) n = 1;
    return n < lines ? n : lines;
}

/* y (rows, len) = bias[row] (or 0) for each row. */
#define FILL_BIAS(T)                                                                       \
    static void fill_bias_##T(T *y, int64_t rows, int64_t len, const T *bias) {            \
        for (int64_t r = 0; r < rows; r++) {                                               \
            T v = bias ? bias[r] : (T)0;                                                   \
            for (int64_t i = 0; i < len; i++) y[r * len + i] = v;                          \
        }                                                                                  \
    }
FILL_BIAS(float)
FILL_BIAS(double)

/* y[i] += s[i] for i < n. */
static void add_sum(float *y, const float *s, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += s[i];
}

// ----------------------------------------------------------------------------
// Conv, float32: 1-D and 2-D

/* The 2-D view of one (image, group) of a 1-D or 2-D convolution. */
static onyx_conv2d conv2d_of(const conv_geom *g) {
    onyx_conv2d c = {.c = g->cg, .h = 1, .oh = 1, .kh = 1, .sh = 1, .dh = 1};
    const int l = g->nd - 1;
    if (g->nd == 2) {
        c.h = g->in[0];
        c.oh = g->out[0];
        c.kh = g->kern[0];
        c.sh = g->stride[0];
        c.dh = g->dil[0];
        c.ph = g->pad[0];
    }
    c.w = g->in[l];
    c.ow = g->out[l];
    c.kw = g->kern[l];
    c.sw = g->stride[l];
    c.dw = g->dil[l];
    c.pw = g->pad[l];
    return c;
}

/* Direct depthwise (one input channel per group): a task per output plane. */
typedef struct dw_job {
    const conv_geom *g;
    onyx_dw_plan plan;
    const onyx_conv_kernels *kern;
    const float *x, *w, *b;
    const float *sum; /* residual addend laid out as y, or NULL */
    float *y;
    const onyx_act *act;
    float *scratch; /* per thread */
    int64_t scratch_stride;
} dw_job;

static void depthwise_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const dw_job *j = ctx;
    const conv_geom *g = j->g;
    float *scratch = j->scratch + thread * j->scratch_stride;
    for (int64_t t = begin; t < end; t++) {
        int64_t n = t / g->k, k = t % g->k, c = k / g->kg;
        j->kern->depthwise(&j->plan, j->x + (n * g->c + c) * g->in_size, j->w + k * g->kern_size,
                           j->b ? j->b[k] : 0.0f, j->sum ? j->sum + t * g->out_size : NULL,
                           j->act, j->y + t * g->out_size, scratch);
    }
}

/* Channel-blocked depthwise (one input and one output channel per group): a
 * task per (image, block of ONYX_DWC_BLOCK channels). */
typedef struct dwc_job {
    const conv_geom *g;
    onyx_dwc_plan plan;
    onyx_dwc_fn block;
    const float *x, *w, *b;
    const float *sum; /* residual addend laid out as y, or NULL */
    float *y;
    const onyx_act *act;
    float *scratch; /* per thread */
    int64_t scratch_stride;
} dwc_job;

static void dwc_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const dwc_job *j = ctx;
    const conv_geom *g = j->g;
    const int64_t blocks = (g->k + ONYX_DWC_BLOCK - 1) / ONYX_DWC_BLOCK;
    float *scratch = j->scratch + thread * j->scratch_stride;
    for (int64_t t = begin; t < end; t++) {
        const int64_t n = t / blocks, c0 = t % blocks * ONYX_DWC_BLOCK;
        const int nc = (int)(g->k - c0 < ONYX_DWC_BLOCK ? g->k - c0 : ONYX_DWC_BLOCK);
        const int64_t yo = (n * g->k + c0) * g->out_size;
        j->block(&j->plan, j->x + (n * g->c + c0) * g->in_size, j->w + c0 * g->kern_size,
                 j->b ? j->b + c0 : NULL, j->sum ? j->sum + yo : NULL, j->act, j->y + yo, nc,
                 scratch);
    }
}

/* The one place choosing between the depthwise kernels: channel-blocked
 * when each group has one output channel (it measured faster than the
 * per-plane kernel on every depthwise layer of MobileNetV2 and
 * EfficientNet-B0, 7x7 to 112x112, stride 1 and 2), else per plane. */
static bool dw_blocked(const conv_geom *g) {
    return g->kg == 1;
}

/* One (image, group) GEMM: what it reads and where it writes. */
typedef struct conv_pair {
    onyx_sgemm_op op;
    onyx_conv_im2col im;
} conv_pair;

/* The shared description of a float32 1-D/2-D convolution. */
typedef struct conv2d_job {
    const conv_geom *g;
    onyx_conv2d g2;
    bool pointwise;
    int64_t kk;          /* GEMM depth: cg * R */
    const onyx_sgemm_kernel *kern;
    const onyx_conv_kernels *ck;
    const float *x, *w, *b, *packed;
    int64_t packed_stride;
    const float *sum; /* residual addend laid out as y, or NULL */
    float *y;
    const onyx_act *act;
    /* per-pair tasks: per thread, the phase buffer then the GEMM workspace */
    unsigned char *work;
    size_t phase_bytes, work_stride;
} conv2d_job;

/* Sets up pair t = (image, group); `phases` receives the column phases of
 * the group's input when the stride needs them (split by the caller). */
static void pair_setup(const conv2d_job *j, int64_t t, float *phases, conv_pair *p) {
    const conv_geom *g = j->g;
    int64_t n = t / g->group, gi = t % g->group;
    const float *xg = j->x + (n * g->c + gi * g->cg) * g->in_size;
    memset(p, 0, sizeof *p);
    p->op.m = g->kg;
    p->op.n = g->out_size;
    p->op.k = j->kk;
    if (j->packed) {
        p->op.packed_a = j->packed + gi * j->packed_stride;
    } else {
        p->op.a = j->w + gi * g->kg * j->kk;
        p->op.lda = j->kk;
    }
    if (j->pointwise) {
        p->op.b = xg;
        p->op.ldb = g->in_size;
    } else {
        p->im.g = &j->g2;
        p->im.x = j->g2.sw > 1 ? phases : xg;
        p->im.phase_w = (j->g2.w + j->g2.sw - 1) / j->g2.sw;
        p->op.pack_b = onyx_conv_pack_b;
        p->op.pack_b_ctx = &p->im;
    }
    p->op.c = j->y + (n * g->k + gi * g->kg) * g->out_size;
    p->op.ldc = g->out_size;
    p->op.bias = j->b ? j->b + gi * g->kg : NULL;
    p->op.act = j->act;
    if (j->sum) {
        p->op.sum = j->sum + (n * g->k + gi * g->kg) * g->out_size;
        p->op.lds = g->out_size;
    }
}

static const float *pair_input(const conv2d_job *j, int64_t t) {
    const conv_geom *g = j->g;
    return j->x + ((t / g->group) * g->c + (t % g->group) * g->cg) * g->in_size;
}

/* Many (image, group) pairs: a task per pair with a serial GEMM. */
static void pair_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const conv2d_job *j = ctx;
    unsigned char *mine = j->work + (size_t)thread * j->work_stride;
    float *phases = j->phase_bytes ? (float *)(void *)mine : NULL;
    for (int64_t t = begin; t < end; t++) {
        conv_pair p;
        if (phases) j->ck->split_phases(&j->g2, pair_input(j, t), phases, 0, j->g2.c);
        pair_setup(j, t, phases, &p);
        onyx_sgemm_run_serial(j->kern, &p.op, mine + j->phase_bytes);
    }
}

typedef struct phase_job {
    const onyx_conv_kernels *ck;
    const onyx_conv2d *g2;
    const float *x;
    float *dst;
} phase_job;

static void phase_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const phase_job *j = ctx;
    (void)thread;
    j->ck->split_phases(j->g2, j->x, j->dst, begin, end);
}

static size_t round64(size_t v) { return v > SIZE_MAX - 63 ? SIZE_MAX : (v + 63) / 64 * 64; }

// ----------------------------------------------------------------------------
// Conv, float32: Winograd F(4x4, 3x3)

/* Padded input -> per block of tiles: input transform, 36 GEMMs (one per
 * tile position, U (K, C) x V (C, tiles)), output transform with bias and
 * activation. Each step is a parallel loop. */
typedef struct wino_job {
    onyx_wino_geom g;
    const onyx_winograd_kernels *wk;
    const onyx_sgemm_kernel *kern;
    const float *x, *u, *bias;
    int64_t u_stride;
    const onyx_act *act;
    const float *sum; /* residual addend laid out as y, or NULL */
    float *xp, *y;
    int64_t tiles, block;
    /* per thread (block-parallel) or shared (step-parallel): V (36, c, ld)
     * and M (36, k, ld) of one block; GEMM workspace per thread */
    float *v, *m;
    int64_t v_stride, m_stride;
    unsigned char *work;
    size_t work_stride;
    int64_t t0, nt, ld; /* step-parallel: the current block; ld = nt rounded up to 8 */
} wino_job;

static void wino_pad_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const wino_job *j = ctx;
    (void)thread;
    onyx_winograd_pad(&j->g, j->x, j->xp, begin, end);
}

/* Floats from one tile position's (rows, ld) matrix of V or M to the next:
 * one cache line more than the matrix, so that the 36 positions of a column,
 * which the transforms read or write together, do not fall into one L1 set
 * (with rows * ld a multiple of 1024 they would, 4 KiB apart, and miss on
 * every access: the output transform of SqueezeNet's 55x55 layers spent a
 * third of its time on those loads; the layer runs 12% faster without). */
static int64_t wino_xs(int64_t rows, int64_t ld) { return rows * ld + 16; }

/* GEMMs of positions [xi0, xi1) of one block: M = U V. */
static void wino_gemms(const wino_job *j, const float *v, float *m, int64_t ld, int64_t xi0,
                       int64_t xi1, void *work) {
    for (int64_t xi = xi0; xi < xi1; xi++) {
        onyx_sgemm_op op = {.m = j->g.k, .n = ld, .k = j->g.c,
                            .packed_a = j->u + xi * j->u_stride,
                            .b = v + xi * wino_xs(j->g.c, ld), .ldb = ld,
                            .c = m + xi * wino_xs(j->g.k, ld), .ldc = ld};
        onyx_sgemm_run_serial(j->kern, &op, work);
    }
}

/* Block-parallel: whole blocks of tiles per task, on the thread's buffers. */
static void wino_block_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const wino_job *j = ctx;
    float *v = j->v + thread * j->v_stride, *m = j->m + thread * j->m_stride;
    void *work = j->work + (size_t)thread * j->work_stride;
    for (int64_t b = begin; b < end; b++) {
        int64_t t0 = b * j->block, nt = j->tiles - t0 < j->block ? j->tiles - t0 : j->block;
        int64_t ld = (nt + 7) / 8 * 8;
        j->wk->input(&j->g, j->xp, 0, j->g.c, t0, nt, v, wino_xs(j->g.c, ld), ld);
        wino_gemms(j, v, m, ld, 0, ONYX_WINO_XI, work);
        j->wk->output(&j->g, m, wino_xs(j->g.k, ld), ld, 0, j->g.k, t0, nt, j->bias, j->sum, j->act,
                      j->y);
    }
}

/* Step-parallel (fewer blocks than threads): each step of one block split. */
static void wino_input_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const wino_job *j = ctx;
    (void)thread;
    j->wk->input(&j->g, j->xp, begin, end, j->t0, j->nt, j->v, wino_xs(j->g.c, j->ld), j->ld);
}

static void wino_gemm_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const wino_job *j = ctx;
    wino_gemms(j, j->v, j->m, j->ld, begin, end, j->work + (size_t)thread * j->work_stride);
}

static void wino_output_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const wino_job *j = ctx;
    (void)thread;
    j->wk->output(&j->g, j->m, wino_xs(j->g.k, j->ld), j->ld, begin, end, j->t0, j->nt, j->bias,
                  j->sum, j->act, j->y);
}

/* Bytes of transformed tiles (V and M) one block may hold: about half of
 * a core's L2, so that the output transform reads M from there. */
#define WINO_BLOCK_BUDGET ((int64_t)256 << 10)

static onyx_status conv_winograd(onyx_exec *x, const conv_geom *g, const float *X,
                                 const float *B, const float *S, float *Y,
                                 const onyx_act *act, const conv_attr *a) {
    const int threads = onyx_exec_threads(x);
    wino_job j = {.g = onyx_wino_geom_of(g->c, g->k, g->in[0], g->in[1], g->pad[0], g->pad[1],
                                         g->out[0], g->out[1]),
                  .wk = onyx_kernels_get()->winograd, .kern = a->kern, .x = X, .u = a->wino,
                  .bias = B, .u_stride = a->wino_stride, .act = act, .sum = S, .y = Y};
    j.tiles = g->n * j.g.th * j.g.tw;
    const int64_t per_tile = ONYX_WINO_XI * (g->c + g->k) * (int64_t)sizeof(float);
    j.block = WINO_BLOCK_BUDGET / per_tile / 8 * 8;
    if (j.block < 16) j.block = 16;
    if (j.block > (j.tiles + 7) / 8 * 8) j.block = (j.tiles + 7) / 8 * 8;
    const int64_t blocks = (j.tiles + j.block - 1) / j.block;
    /* Blocks on separate threads need no barrier between the steps and keep
     * each block in its core's cache; with too few blocks, split the steps. */
    const bool by_block = threads == 1 || blocks >= 2 * (int64_t)threads;
    const int copies = by_block ? threads : 1;
    j.v_stride = ONYX_WINO_XI * wino_xs(g->c, j.block);
    j.m_stride = ONYX_WINO_XI * wino_xs(g->k, j.block);
    j.work_stride = round64(onyx_sgemm_run_workspace(g->k, j.block, g->c, 1));
    j.xp = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_FLOAT, g->n * g->c * j.g.hp * j.g.wp));
    j.v = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_FLOAT, j.v_stride * copies));
    j.m = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_FLOAT, j.m_stride * copies));
    j.work = onyx_exec_scratch_per_thread(x, j.work_stride);
    if (!j.xp || !j.v || !j.m || !j.work)
        return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    onyx_exec_parallel(x, g->n * g->c, 4, wino_pad_task, &j);
    if (by_block) {
        onyx_exec_parallel(x, blocks, 1, wino_block_task, &j);
        return onyx_exec_aborted(x) ? ONYX_ERR_CANCELLED : ONYX_OK;
    }
    for (j.t0 = 0; j.t0 < j.tiles; j.t0 += j.block) {
        if (onyx_exec_aborted(x)) return ONYX_ERR_CANCELLED;
        j.nt = j.tiles - j.t0 < j.block ? j.tiles - j.t0 : j.block;
        j.ld = (j.nt + 7) / 8 * 8;
        onyx_exec_parallel(x, g->c, 4, wino_input_task, &j);
        onyx_exec_parallel(x, ONYX_WINO_XI, 1, wino_gemm_task, &j);
        onyx_exec_parallel(x, g->k, 4, wino_output_task, &j);
    }
    return ONYX_OK;
}

static bool use_winograd(const conv_geom *g, const float *W, const conv_attr *a) {
    if (!a->wino || W != a->w_data || g->nd != 2 || g->group != 1) return false;
    for (int d = 0; d < 2; d++)
        if (g->kern[d] != 3 || g->stride[d] != 1 || g->dil[d] != 1) return false;
    /* Fewer tiles than a GEMM micro-tile is wide would be mostly padding. */
    return g->n * ((g->out[0] + 3) / 4) * ((g->out[1] + 3) / 4) >= 8;
}

static onyx_status conv2d_f32(onyx_exec *x, const conv_geom *g, const float *X, const float *W,
                              const float *B, const float *S, float *Y, const onyx_act *act,
                              const conv_attr *a) {
    const int threads = onyx_exec_threads(x);
    const onyx_kernels *ks = onyx_kernels_get();
    const int64_t pairs = g->n * g->group;
    conv2d_job j = {.g = g, .g2 = conv2d_of(g), .pointwise = geom_is_pointwise(g),
                    .kk = g->cg * g->kern_size, .kern = ks->sgemm, .ck = ks->conv, .x = X,
                    .w = W, .b = B, .sum = S, .y = Y, .act = act};
    if (a->packed && W == a->w_data) {
        j.kern = a->kern;
        j.packed = a->packed;
        j.packed_stride = a->packed_stride;
    }
    if (use_winograd(g, W, a)) return conv_winograd(x, g, X, B, S, Y, act, a);

    if (g->nd == 2 && g->cg == 1 && g->group > 1 && dw_blocked(g)) {
        dwc_job d = {.g = g, .block = ks->depthwise->block, .x = X, .w = W, .b = B, .sum = S,
                     .y = Y, .act = act};
        onyx_dwc_plan_init(&j.g2, &d.plan);
        d.scratch_stride = (d.plan.floats + 15) / 16 * 16;
        d.scratch = onyx_exec_scratch_per_thread(
            x, onyx_dtype_bytes(ONYX_DTYPE_FLOAT, d.scratch_stride));
        if (!d.scratch) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        const int64_t blocks = (g->k + ONYX_DWC_BLOCK - 1) / ONYX_DWC_BLOCK;
        onyx_exec_parallel(x, g->n * blocks, 1, dwc_task, &d);
        return onyx_exec_aborted(x) ? ONYX_ERR_CANCELLED : ONYX_OK;
    }
    if (g->nd == 2 && g->cg == 1 && g->group > 1) {
        dw_job d = {.g = g, .kern = ks->conv, .x = X, .w = W, .b = B, .sum = S, .y = Y,
                    .act = act};
        onyx_dw_plan_init(&j.g2, &d.plan);
        d.scratch_stride = (d.plan.floats + 15) / 16 * 16;
        d.scratch = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_FLOAT,
                                                          d.scratch_stride * threads));
        if (!d.scratch) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        int64_t grain = g->out_size >= 1024 ? 1 : 1024 / (g->out_size + 1) + 1;
        onyx_exec_parallel(x, g->n * g->k, grain, depthwise_task, &d);
        return onyx_exec_aborted(x) ? ONYX_ERR_CANCELLED : ONYX_OK;
    }

    const bool split = !j.pointwise && j.g2.sw > 1;
    j.phase_bytes = split ? round64(onyx_dtype_bytes(ONYX_DTYPE_FLOAT,
                                                     onyx_conv_phase_floats(&j.g2)))
                          : 0;
    if (j.phase_bytes == SIZE_MAX) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");

    if (g->group > 1 && pairs >= 2 * (int64_t)threads) {
        size_t ws = round64(onyx_sgemm_run_workspace(g->kg, g->out_size, j.kk, 1));
        j.work_stride = j.phase_bytes + ws;
        j.work = onyx_exec_scratch_per_thread(x, j.work_stride);
        if (!j.work) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        onyx_exec_parallel(x, pairs, 1, pair_task, &j);
        return onyx_exec_aborted(x) ? ONYX_ERR_CANCELLED : ONYX_OK;
    }

    /* Large (image, group) pairs one at a time, parallel inside. */
    onyx_parallel par = parallel_of(x);
    size_t ws = onyx_sgemm_run_workspace(g->kg, g->out_size, j.kk, par.threads);
    void *work = ws ? onyx_exec_scratch(x, ws) : NULL;
    float *phases = split ? onyx_exec_scratch(x, j.phase_bytes) : NULL;
    if ((ws && !work) || (split && !phases))
        return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t t = 0; t < pairs; t++) {
        if (onyx_exec_aborted(x)) return ONYX_ERR_CANCELLED;
        if (split) {
            phase_job pj = {j.ck, &j.g2, pair_input(&j, t), phases};
            onyx_exec_parallel(x, j.g2.c, 16, phase_task, &pj);
        }
        conv_pair p;
        pair_setup(&j, t, phases, &p);
        onyx_status st = onyx_sgemm_run(j.kern, &p.op, &par, work);
        if (st) return onyx_exec_fail(x, st, "out of memory");
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Conv, float32: 3-D and up (im2col bands)

/* The column bands of one convolution: `lines` output lines of `ow`
 * positions, processed `band` lines at a time (all at once when pointwise,
 * where X itself is the column matrix). */
typedef struct conv_bands {
    int64_t kk;          /* GEMM depth: cg * R */
    int64_t ow, lines, band;
    bool pointwise;
} conv_bands;

static conv_bands bands_for(const conv_geom *g, size_t es) {
    conv_bands b;
    b.kk = g->cg * g->kern_size;
    b.ow = g->out[g->nd - 1];
    b.lines = g->out_size / b.ow;
    b.pointwise = geom_is_pointwise(g);
    b.band = b.pointwise ? b.lines : band_lines(b.kk, b.ow, b.lines, es);
    return b;
}

/* Grouped convolutions with many (image, group) pairs: each task owns one
 * pair and runs im2col and a serial GEMM on per-thread buffers. */
typedef struct group_job {
    const conv_geom *g;
    conv_bands cb;
    const onyx_sgemm_kernel *kern;
    const float *x, *w, *b;
    const float *sum; /* residual addend laid out as y, or NULL */
    float *y;
    const onyx_act *act;
    unsigned char *work; /* per thread: col buffer then GEMM workspace */
    size_t col_bytes, work_stride;
} group_job;

static void conv_pair_f32(const group_job *j, int64_t t, float *col, void *gemm_work) {
    const conv_geom *g = j->g;
    const conv_bands *cb = &j->cb;
    int64_t n = t / g->group, gi = t % g->group;
    const float *xg = j->x + (n * g->c + gi * g->cg) * g->in_size;
    const float *wg = j->w + gi * g->kg * cb->kk;
    float *yg = j->y + (n * g->k + gi * g->kg) * g->out_size;
    fill_bias_float(yg, g->kg, g->out_size, j->b ? j->b + gi * g->kg : NULL);
    if (j->sum) add_sum(yg, j->sum + (yg - j->y), g->kg * g->out_size);
    for (int64_t l0 = 0; l0 < cb->lines; l0 += cb->band) {
        int64_t nl = cb->lines - l0 < cb->band ? cb->lines - l0 : cb->band, cols = nl * cb->ow;
        const float *bm = xg + l0 * cb->ow;
        int64_t ldb = g->in_size;
        if (!cb->pointwise) {
            im2col_rows_float(g, xg, col, l0, nl, 0, cb->kk);
            bm = col;
            ldb = cols;
        }
        onyx_sgemm_serial(j->kern, false, false, g->kg, cols, cb->kk, 1.0f, wg, cb->kk, bm, ldb,
                          1.0f, yg + l0 * cb->ow, g->out_size, gemm_work);
    }
    if (j->act) onyx_act_apply(j->act, yg, g->kg * g->out_size);
}

static void group_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const group_job *j = ctx;
    unsigned char *mine = j->work + (size_t)thread * j->work_stride;
    for (int64_t t = begin; t < end; t++)
        conv_pair_f32(j, t, (float *)(void *)mine, mine + j->col_bytes);
}

static onyx_status conv_nd_f32(onyx_exec *x, const conv_geom *g, const float *X, const float *W,
                               const float *B, const float *S, float *Y, const onyx_act *act) {
    const int threads = onyx_exec_threads(x);
    const onyx_sgemm_kernel *kern = onyx_kernels_get()->sgemm;
    const int64_t pairs = g->n * g->group;

    const conv_bands cb = bands_for(g, sizeof(float));
    const int64_t band_cols = cb.band * cb.ow;
    size_t col_bytes =
        cb.pointwise ? 0 : round64(onyx_dtype_bytes(ONYX_DTYPE_FLOAT, cb.kk * band_cols));
    if (col_bytes == SIZE_MAX) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");

    if (g->group > 1 && pairs >= 2 * (int64_t)threads) {
        size_t ws = round64(onyx_sgemm_workspace(g->kg, band_cols, cb.kk, 1));
        group_job j = {g, cb, kern, X, W, B, S, Y, act, NULL, col_bytes, col_bytes + ws};
        j.work = onyx_exec_scratch_per_thread(x, j.work_stride);
        if (!j.work) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        onyx_exec_parallel(x, pairs, 1, group_task, &j);
        return onyx_exec_aborted(x) ? ONYX_ERR_CANCELLED : ONYX_OK;
    }

    /* Large (image, group) pairs one at a time, parallel inside. */
    onyx_parallel par = parallel_of(x);
    size_t ws = onyx_sgemm_workspace(g->kg, band_cols, cb.kk, par.threads);
    float *col = col_bytes ? onyx_exec_scratch(x, col_bytes) : NULL;
    void *work = ws ? onyx_exec_scratch(x, ws) : NULL;
    if ((col_bytes && !col) || (ws && !work))
        return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t t = 0; t < pairs; t++) {
        int64_t n = t / g->group, gi = t % g->group;
        const float *xg = X + (n * g->c + gi * g->cg) * g->in_size;
        const float *wg = W + gi * g->kg * cb.kk;
        float *yg = Y + (n * g->k + gi * g->kg) * g->out_size;
        fill_bias_float(yg, g->kg, g->out_size, B ? B + gi * g->kg : NULL);
        if (S) add_sum(yg, S + (yg - Y), g->kg * g->out_size);
        for (int64_t l0 = 0; l0 < cb.lines; l0 += cb.band) {
            if (onyx_exec_aborted(x)) return ONYX_ERR_CANCELLED;
            int64_t nl = cb.lines - l0 < cb.band ? cb.lines - l0 : cb.band, cols = nl * cb.ow;
            const float *bm = xg + l0 * cb.ow;
            int64_t ldb = g->in_size;
            if (!cb.pointwise) {
                cols_job cj = {g, false, xg, col, l0, nl};
                onyx_exec_parallel(x, cb.kk, rows_grain(cols), im2col_task, &cj);
                bm = col;
                ldb = cols;
            }
            onyx_status st = onyx_sgemm(kern, false, false, g->kg, cols, cb.kk, 1.0f, wg, cb.kk,
                                        bm, ldb, 1.0f, yg + l0 * cb.ow, g->out_size, &par, work);
            if (st) return onyx_exec_fail(x, st, "out of memory");
        }
        if (act) onyx_act_apply(act, yg, g->kg * g->out_size);
    }
    return ONYX_OK;
}

/* Y = act(conv(X, W) + B + S); B and S (laid out as Y) may be NULL. */
static onyx_status conv_f32(onyx_exec *x, const conv_geom *g, const float *X, const float *W,
                            const float *B, const float *S, float *Y, const onyx_act *act,
                            const conv_attr *a) {
    if (g->nd <= 2) return conv2d_f32(x, g, X, W, B, S, Y, act, a);
    return conv_nd_f32(x, g, X, W, B, S, Y, act);
}

// ----------------------------------------------------------------------------
// Conv, double

static onyx_status conv_f64(onyx_exec *x, const conv_geom *g, const double *X, const double *W,
                            const double *B, double *Y) {
    const conv_bands cb = bands_for(g, sizeof(double));
    double *col = NULL;
    if (!cb.pointwise) {
        col = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, cb.kk * cb.band * cb.ow));
        if (!col) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    }
    onyx_parallel par = parallel_of(x);
    for (int64_t t = 0; t < g->n * g->group; t++) {
        int64_t n = t / g->group, gi = t % g->group;
        const double *xg = X + (n * g->c + gi * g->cg) * g->in_size;
        double *yg = Y + (n * g->k + gi * g->kg) * g->out_size;
        fill_bias_double(yg, g->kg, g->out_size, B ? B + gi * g->kg : NULL);
        for (int64_t l0 = 0; l0 < cb.lines; l0 += cb.band) {
            if (onyx_exec_aborted(x)) return ONYX_ERR_CANCELLED;
            int64_t nl = cb.lines - l0 < cb.band ? cb.lines - l0 : cb.band, cols = nl * cb.ow;
            const double *bm = xg + l0 * cb.ow;
            int64_t ldb = g->in_size;
            if (!cb.pointwise) {
                cols_job cj = {g, true, xg, col, l0, nl};
                onyx_exec_parallel(x, cb.kk, rows_grain(cols), im2col_task, &cj);
                bm = col;
                ldb = cols;
            }
            onyx_dgemm(false, false, g->kg, cols, cb.kk, 1.0, W + gi * g->kg * cb.kk, cb.kk, bm,
                       ldb, 1.0, yg + l0 * cb.ow, g->out_size, &par);
        }
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Conv and ConvTranspose entry points

/* Checks the element types of X, W and the optional bias (K values). */
static onyx_status check_inputs(onyx_exec *x, const onyx_tensor *X, const onyx_tensor *W,
                                const onyx_tensor *B, int64_t k) {
    if (!X || !W) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    if (W->dtype != X->dtype || (B && B->dtype != X->dtype))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "inputs differ in element type");
    if (B && (B->ndim != 1 || B->dims[0] != k))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "B must be 1-D of %lld values",
                              (long long)k);
    return ONYX_OK;
}

static onyx_status output_for(onyx_exec *x, const conv_geom *g, onyx_dtype t, onyx_tensor **Y) {
    int64_t dims[ONYX_MAX_DIMS] = {g->n, g->k};
    for (int d = 0; d < g->nd; d++) dims[d + 2] = g->out[d];
    return onyx_exec_output(x, 0, t, g->nd + 2, dims, Y);
}

/* The convolution of (X, W, B) into Y's memory (count elements of X's
 * type), with the activation and, for float32, the addend S (laid out as Y;
 * NULL: none). Double Conv computes without either, as it always has. */
static onyx_status conv_into(onyx_exec *x, const conv_attr *a, const conv_geom *g,
                             const onyx_tensor *X, const onyx_tensor *W, const onyx_tensor *B,
                             const float *S, const onyx_act *act, void *Y, int64_t count) {
    if (X->dtype == ONYX_DTYPE_DOUBLE)
        return conv_f64(x, g, X->data, W->data, B ? B->data : NULL, Y);
    if (X->dtype == ONYX_DTYPE_FLOAT)
        return conv_f32(x, g, X->data, W->data, B ? B->data : NULL, S, Y, act, a);
    const float *xf = as_f32(x, X), *wf = as_f32(x, W), *bf = B ? as_f32(x, B) : NULL;
    float *yf = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_FLOAT, count));
    if (!xf || !wf || (B && !bf) || !yf)
        return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    onyx_status st = conv_f32(x, g, xf, wf, bf, NULL, yf, act, a);
    if (st) return st;
    onyx_convert(X->dtype, Y, ONYX_DTYPE_FLOAT, yf, count, false);
    return ONYX_OK;
}

/* The row kernel of the broadcast residual: o = act(conv + s). Float32 and
 * the small float types arrive as float32 (onyx_ew_map); double rows get no
 * activation (double Conv applies none). */
typedef struct sum_ctx {
    onyx_dtype t; /* DOUBLE, or FLOAT for everything presented as float32 */
    const onyx_act *act;
} sum_ctx;

static void sum_row_typed(void *ctx, char *const *p, const int64_t *s, int64_t n) {
    const sum_ctx *c = ctx;
    if (c->t == ONYX_DTYPE_DOUBLE) {
        double *o = (double *)(void *)p[0];
        const double *a = (const double *)(const void *)p[1], *b = (const double *)(const void *)p[2];
        for (int64_t i = 0; i < n; i++) o[i] = a[i * s[1]] + b[i * s[2]];
        return;
    }
    float *o = (float *)(void *)p[0];
    const float *a = (const float *)(const void *)p[1], *b = (const float *)(const void *)p[2];
    for (int64_t i = 0; i < n; i++) o[i] = a[i * s[1]] + b[i * s[2]];
    if (c->act) onyx_act_apply(c->act, o, n);
}

/* Conv with a residual input S (the graph pass's fusion of Add(Conv, S)):
 * Y = act(conv + B + S). When S is float32 of exactly the convolution's
 * shape it is added in the convolution's epilogue; otherwise the
 * convolution is computed first and S broadcast onto it (numpy rules), Y
 * taking the broadcast shape. */
static onyx_status run_conv_sum(onyx_exec *x, const conv_attr *a, const conv_geom *g,
                                const onyx_tensor *X, const onyx_tensor *W,
                                const onyx_tensor *B, const onyx_tensor *S,
                                const onyx_act *act) {
    onyx_tensor C = {.dtype = X->dtype, .ndim = g->nd + 2};
    C.dims[0] = g->n;
    C.dims[1] = g->k;
    for (int d = 0; d < g->nd; d++) C.dims[d + 2] = g->out[d];
    bool same = S->dtype == X->dtype && S->ndim == C.ndim;
    for (int d = 0; same && d < C.ndim; d++) same = S->dims[d] == C.dims[d];
    onyx_tensor *Y;
    onyx_status st;
    if (same && X->dtype == ONYX_DTYPE_FLOAT) {
        if ((st = output_for(x, g, X->dtype, &Y))) return st;
        int64_t count = onyx_tensor_count(Y);
        if (count == 0) return ONYX_OK;
        return conv_into(x, a, g, X, W, B, S->data, act, Y->data, count);
    }
    if (S->dtype != X->dtype)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "the residual input is %s but X is %s", onyx_dtype_name(S->dtype),
                              onyx_dtype_name(X->dtype));
    const onyx_tensor *in[2] = {&C, S};
    int ndim;
    int64_t dims[ONYX_MAX_DIMS];
    if ((st = onyx_ew_shape(x, 2, in, &ndim, dims))) return st;
    if ((st = onyx_exec_output(x, 0, X->dtype, ndim, dims, &Y))) return st;
    int64_t count = onyx_tensor_count(&C);
    if (onyx_tensor_count(Y) == 0) return ONYX_OK;
    C.data = onyx_exec_scratch(x, onyx_dtype_bytes(X->dtype, count));
    if (!C.data) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    if ((st = conv_into(x, a, g, X, W, B, NULL, NULL, C.data, count))) return st;
    sum_ctx c = {X->dtype == ONYX_DTYPE_DOUBLE ? ONYX_DTYPE_DOUBLE : ONYX_DTYPE_FLOAT, act};
    return onyx_ew_map(x, sum_row_typed, &c, 0, Y, 2, in);
}

static onyx_status run_conv(const onyx_node *nd, onyx_exec *x) {
    const conv_attr *a = nd->state;
    const onyx_tensor *X = onyx_exec_input(x, 0), *W = onyx_exec_input(x, 1);
    const onyx_tensor *B = onyx_exec_input(x, 2);
    /* Input 3 exists only through the graph pass that fuses a residual Add. */
    const onyx_tensor *S = nd->n_in > 3 ? onyx_exec_input(x, 3) : NULL;
    if (!X || !W) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    conv_geom g;
    onyx_status st = geom_conv(x, a, X, W, &g);
    if (st) return st;
    if ((st = check_inputs(x, X, W, B, g.k))) return st;
    onyx_exec_add_flops(x, 2.0 * (double)(g.n * g.k * g.out_size) * (double)(g.cg * g.kern_size));
    const onyx_act *act = nd->act.kind != ONYX_ACT_NONE ? &nd->act : NULL;
    if (S) return run_conv_sum(x, a, &g, X, W, B, S, act);
    onyx_tensor *Y;
    if ((st = output_for(x, &g, X->dtype, &Y))) return st;
    int64_t count = onyx_tensor_count(Y);
    if (count == 0) return ONYX_OK;
    return conv_into(x, a, &g, X, W, B, NULL, act, Y->data, count);
}

/* ConvTranspose per (image, group): col (kg*R, image positions) =
 * W_g^T * X_g, then col2im scatters col onto Y_g (prefilled with the bias),
 * in bands of image lines; a pointwise one is a single GEMM into Y_g. */
static onyx_status convtranspose_typed(onyx_exec *x, const conv_geom *g, bool is_double,
                                       const void *X, const void *W, const void *B, void *Y) {
    const size_t es = is_double ? sizeof(double) : sizeof(float);
    const int64_t m = g->kg * g->kern_size; /* GEMM M/N/K: m x image positions, depth cg */
    const int64_t iw = g->in[g->nd - 1], lines = g->in_size / iw;
    const bool direct = geom_is_pointwise(g);
    const int64_t band = direct ? lines : band_lines(m, iw, lines, es);
    void *col = NULL;
    if (!direct) {
        col = onyx_exec_scratch(x, onyx_dtype_bytes(is_double ? ONYX_DTYPE_DOUBLE : ONYX_DTYPE_FLOAT,
                                                    m * band * iw));
        if (!col) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    }
    onyx_parallel par = parallel_of(x);
    size_t ws = is_double ? 0 : onyx_sgemm_workspace(m, band * iw, g->cg, par.threads);
    void *work = ws ? onyx_exec_scratch(x, ws) : NULL;
    if (ws && !work) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t t = 0; t < g->n * g->group; t++) {
        int64_t n = t / g->group, gi = t % g->group;
        const char *xg = (const char *)X + (size_t)((n * g->c + gi * g->cg) * g->in_size) * es;
        const char *wg = (const char *)W + (size_t)(gi * g->cg * m) * es;
        char *yg = (char *)Y + (size_t)((n * g->k + gi * g->kg) * g->out_size) * es;
        const char *bg = B ? (const char *)B + (size_t)(gi * g->kg) * es : NULL;
        if (is_double)
            fill_bias_double((double *)(void *)yg, g->kg, g->out_size, (const double *)(const void *)bg);
        else
            fill_bias_float((float *)(void *)yg, g->kg, g->out_size, (const float *)(const void *)bg);
        for (int64_t l0 = 0; l0 < lines; l0 += band) {
            if (onyx_exec_aborted(x)) return ONYX_ERR_CANCELLED;
            int64_t nl = lines - l0 < band ? lines - l0 : band, cols = nl * iw;
            const char *xb = xg + (size_t)(l0 * iw) * es;
            void *dst = direct ? (void *)yg : col;
            int64_t ldc = direct ? g->out_size : cols;
            float beta = direct ? 1.0f : 0.0f;
            if (is_double) {
                onyx_dgemm(true, false, m, cols, g->cg, 1.0, (const double *)(const void *)wg, m,
                           (const double *)(const void *)xb, g->in_size, beta, dst, ldc, &par);
            } else {
                onyx_status st = onyx_sgemm(onyx_kernels_get()->sgemm, true, false, m, cols, g->cg,
                                            1.0f, (const float *)(const void *)wg, m,
                                            (const float *)(const void *)xb, g->in_size, beta, dst,
                                            ldc, &par, work);
                if (st) return onyx_exec_fail(x, st, "out of memory");
            }
            if (!direct) {
                cols_job cj = {g, is_double, col, yg, l0, nl};
                onyx_exec_parallel(x, g->kg, 1, col2im_task, &cj);
            }
        }
    }
    return ONYX_OK;
}

static onyx_status run_convtranspose(const onyx_node *nd, onyx_exec *x) {
    const conv_attr *a = nd->state;
    const onyx_tensor *X = onyx_exec_input(x, 0), *W = onyx_exec_input(x, 1);
    const onyx_tensor *B = onyx_exec_input(x, 2);
    if (!X || !W) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    conv_geom g;
    onyx_status st = geom_convtranspose(x, a, X, W, &g);
    if (st) return st;
    if ((st = check_inputs(x, X, W, B, g.k))) return st;
    onyx_tensor *Y;
    if ((st = output_for(x, &g, X->dtype, &Y))) return st;
    int64_t count = onyx_tensor_count(Y);
    if (count == 0) return ONYX_OK;
    /* every input element meets every tap of its group's output channels */
    onyx_exec_add_flops(x, 2.0 * (double)onyx_tensor_count(X) * (double)(g.kg * g.kern_size));
    if (X->dtype == ONYX_DTYPE_DOUBLE || X->dtype == ONYX_DTYPE_FLOAT)
        return convtranspose_typed(x, &g, X->dtype == ONYX_DTYPE_DOUBLE, X->data, W->data,
                                   B ? B->data : NULL, Y->data);
    const float *xf = as_f32(x, X), *wf = as_f32(x, W), *bf = B ? as_f32(x, B) : NULL;
    float *yf = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_FLOAT, count));
    if (!xf || !wf || (B && !bf) || !yf)
        return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    if ((st = convtranspose_typed(x, &g, false, xf, wf, bf, yf))) return st;
    onyx_convert(X->dtype, Y->data, ONYX_DTYPE_FLOAT, yf, count, false);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// ConvInteger

/* y (int32) = conv(x - x_zero_point, w - w_zero_point): both operands are
 * widened to int32 (exact), convolved through im2col and an int32 GEMM
 * whose sums wrap modulo 2^32. w_zero_point may be per output channel. */
static onyx_status run_conv_integer(const onyx_node *nd, onyx_exec *x) {
    const conv_attr *a = nd->state;
    const onyx_tensor *X = onyx_exec_input(x, 0), *W = onyx_exec_input(x, 1);
    const onyx_tensor *XZ = onyx_exec_input(x, 2), *WZ = onyx_exec_input(x, 3);
    if (!X || !W) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    for (int i = 0; i < 2; i++) {
        onyx_dtype t = (i ? W : X)->dtype;
        if (t != ONYX_DTYPE_UINT8 && t != ONYX_DTYPE_INT8)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "%s must be int8 or uint8, got %s",
                                  i ? "w" : "x", onyx_dtype_name(t));
    }
    conv_geom g;
    onyx_status st = geom_conv(x, a, X, W, &g);
    if (st) return st;
    if (XZ && (XZ->dtype != X->dtype || onyx_tensor_count(XZ) != 1))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "x_zero_point must be one %s",
                              onyx_dtype_name(X->dtype));
    int64_t nwz = WZ ? onyx_tensor_count(WZ) : 0;
    if (WZ && (WZ->dtype != W->dtype || (nwz != 1 && nwz != g.k)))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "w_zero_point must be one or %lld values of %s", (long long)g.k,
                              onyx_dtype_name(W->dtype));
    onyx_tensor *Y;
    if ((st = output_for(x, &g, ONYX_DTYPE_INT32, &Y))) return st;
    if (onyx_tensor_count(Y) == 0) return ONYX_OK;
    const int64_t kk = g.cg * g.kern_size;
    int64_t nx = onyx_tensor_count(X), nw = onyx_tensor_count(W);
    int32_t *x32 = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_INT32, nx));
    int32_t *w32 = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_INT32, nw));
    const int64_t ow = g.out[g.nd - 1], lines = g.out_size / ow;
    const int64_t band = band_lines(kk, ow, lines, sizeof(int32_t));
    int32_t *col = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_INT32, kk * band * ow));
    if (!x32 || !w32 || !col) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    int32_t xz = XZ ? (int32_t)onyx_tensor_get_i64(XZ, 0) : 0;
    for (int64_t i = 0; i < nx; i++) x32[i] = (int32_t)onyx_tensor_get_i64(X, i) - xz;
    for (int64_t i = 0; i < nw; i++) {
        int64_t k = i / (kk ? kk : 1);
        int32_t wz = WZ ? (int32_t)onyx_tensor_get_i64(WZ, nwz == 1 ? 0 : k) : 0;
        w32[i] = (int32_t)onyx_tensor_get_i64(W, i) - wz;
    }
    int32_t *y = Y->data;
    for (int64_t t = 0; t < g.n * g.group; t++) {
        int64_t n = t / g.group, gi = t % g.group;
        const int32_t *wg = w32 + gi * g.kg * kk;
        for (int64_t l0 = 0; l0 < lines; l0 += band) {
            int64_t nl = lines - l0 < band ? lines - l0 : band, cols = nl * ow;
            im2col_rows_int32_t(&g, x32 + (n * g.c + gi * g.cg) * g.in_size, col, l0, nl, 0, kk);
            for (int64_t k = 0; k < g.kg; k++) {
                uint32_t *row = (uint32_t *)(y + (n * g.k + gi * g.kg + k) * g.out_size + l0 * ow);
                for (int64_t p = 0; p < cols; p++) row[p] = 0;
                for (int64_t q = 0; q < kk; q++) {
                    uint32_t wv = (uint32_t)wg[k * kk + q];
                    const int32_t *cq = col + q * cols;
                    for (int64_t p = 0; p < cols; p++) row[p] += wv * (uint32_t)cq[p];
                }
            }
        }
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Registry rows

#define T_F (ONYX_T(ONYX_DTYPE_FLOAT) | ONYX_T(ONYX_DTYPE_DOUBLE) | ONYX_T(ONYX_DTYPE_FLOAT16))
#define T_FB ONYX_T_FLOATS
#define T_Q (ONYX_T(ONYX_DTYPE_INT8) | ONYX_T(ONYX_DTYPE_UINT8))

const onyx_op_schema onyx_ops_conv[] = {
    {"", "Conv", 1, 2, 3, 1, 1, T_F, init_conv, run_conv, ONYX_OP_FUSES_ACT},
    {"", "Conv", 11, 2, 3, 1, 1, T_F, init_conv, run_conv, ONYX_OP_FUSES_ACT},
    {"", "Conv", 22, 2, 3, 1, 1, T_FB, init_conv, run_conv, ONYX_OP_FUSES_ACT},
    {"", "ConvTranspose", 1, 2, 3, 1, 1, T_F, init_conv, run_convtranspose, 0},
    {"", "ConvTranspose", 11, 2, 3, 1, 1, T_F, init_conv, run_convtranspose, 0},
    {"", "ConvTranspose", 22, 2, 3, 1, 1, T_FB, init_conv, run_convtranspose, 0},
    {"", "ConvInteger", 10, 2, 4, 1, 1, T_Q, init_conv, run_conv_integer, 0},
    {0},
};
