/* spatial.c - operators that sample, pool or place data by coordinates:
 * GridSample, AffineGrid, RoiAlign, MaxRoiPool, NonMaxSuppression, Col2Im,
 * CenterCropPad, DeformConv and TensorScatter.
 * Coordinates from inputs (grids, boxes, offsets, indices) are validated or
 * clamped before any memory access. Plain convolution lives in conv.c,
 * Resize in resize.c. */
#include "core/op.h"
#include "kernels/dispatch.h"
#include "kernels/gemm.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(...) onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, __VA_ARGS__)
#define OOM() onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory")

// ----------------------------------------------------------------------------
// Shared helpers

/* A double copy of t in scratch memory; NULL when out of memory. */
static double *as_f64(onyx_exec *x, const onyx_tensor *t) {
    int64_t count = onyx_tensor_count(t);
    double *buf = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, count ? count : 1));
    if (buf && count) onyx_convert(ONYX_DTYPE_DOUBLE, buf, t->dtype, t->data, count, false);
    return buf;
}

/* t's elements as `ct` (float or double): t's own data when already of that
 * type, else a scratch copy; NULL when out of memory. */
static void *as_type(onyx_exec *x, const onyx_tensor *t, onyx_dtype ct) {
    if (t->dtype == ct) return t->data;
    int64_t count = onyx_tensor_count(t);
    void *buf = onyx_exec_scratch(x, onyx_dtype_bytes(ct, count ? count : 1));
    if (buf && count) onyx_convert(ct, buf, t->dtype, t->data, count, false);
    return buf;
}

/* After pointer copies into a STRING tensor, replaces every borrowed pointer
 * with an owned copy; on failure the uncopied tail is set to NULL. */
static onyx_status own_strings(onyx_exec *x, onyx_tensor *t) {
    if (t->dtype != ONYX_DTYPE_STRING) return ONYX_OK;
    int64_t n = onyx_tensor_count(t);
    char **s = t->data;
    for (int64_t i = 0; i < n; i++) {
        if (!s[i]) continue;
        char *c = strdup(s[i]);
        if (!c) {
            for (int64_t j = i; j < n; j++)
                s[j] = NULL;
            return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory copying strings");
        }
        s[i] = c;
    }
    return ONYX_OK;
}

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Sums of products of sizes from untrusted shapes, checked for overflow:
 * a*b, or -1 when either is negative or the product overflows int64. */
static int64_t mul_ck(int64_t a, int64_t b) {
    if (a < 0 || b < 0) return -1;
    if (a && b > INT64_MAX / a) return -1;
    return a * b;
}

// ----------------------------------------------------------------------------
// GridSample

typedef enum gs_mode { GS_LINEAR, GS_NEAREST, GS_CUBIC, GS_MODE_COUNT } gs_mode;
typedef enum gs_pad { GS_ZEROS, GS_BORDER, GS_REFLECTION, GS_PAD_COUNT } gs_pad;

typedef struct gs_attr {
    gs_mode mode;
    gs_pad pad;
    bool align;
    bool nd; /* opset >= 20: any number of spatial dimensions */
} gs_attr;

static onyx_status init_grid_sample(onyx_node *n, onyx_error *err) {
    gs_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->nd = n->opset >= 20;
    /* Opset 16 spells the modes bilinear/bicubic, opset 20 linear/cubic. */
    const char *m = onyx_attr_string(n, "mode", a->nd ? "linear" : "bilinear");
    if (strcmp(m, a->nd ? "linear" : "bilinear") == 0)
        a->mode = GS_LINEAR;
    else if (strcmp(m, "nearest") == 0)
        a->mode = GS_NEAREST;
    else if (strcmp(m, a->nd ? "cubic" : "bicubic") == 0)
        a->mode = GS_CUBIC;
    else
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "mode must be %s, nearest or %s, got '%s'",
                           a->nd ? "linear" : "bilinear", a->nd ? "cubic" : "bicubic", m);
    const char *p = onyx_attr_string(n, "padding_mode", "zeros");
    if (strcmp(p, "zeros") == 0)
        a->pad = GS_ZEROS;
    else if (strcmp(p, "border") == 0)
        a->pad = GS_BORDER;
    else if (strcmp(p, "reflection") == 0)
        a->pad = GS_REFLECTION;
    else
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "padding_mode must be zeros, border or reflection, got '%s'", p);
    a->align = onyx_attr_int(n, "align_corners", 0) != 0;
    n->state = a;
    return ONYX_OK;
}

/* Reflects x into [lo, hi] by repeated mirroring at the borders. */
static double gs_reflect(double x, double lo, double hi) {
    double rng = hi - lo;
    if (!(rng > 0) || !isfinite(x)) return lo;
    if (x < lo) {
        double dx = lo - x, n = floor(dx / rng), r = dx - n * rng;
        return fmod(n, 2.0) == 0 ? lo + r : hi - r;
    }
    if (x > hi) {
        double dx = x - hi, n = floor(dx / rng), r = dx - n * rng;
        return fmod(n, 2.0) == 0 ? hi - r : lo + r;
    }
    return x;
}

/* Maps integer tap i to an index in [0, L), or -1 for a zero tap. */
static int64_t gs_pixel(const gs_attr *a, int64_t i, int64_t L, double lo, double hi) {
    if (a->pad == GS_ZEROS) return i >= 0 && i < L ? i : -1;
    if (a->pad == GS_REFLECTION) i = (int64_t)gs_reflect((double)i, lo, hi);
    return i < 0 ? 0 : i >= L ? L - 1 : i;
}

static void gs_cubic_coeffs(double t, double *c) {
    const double A = -0.75;
    double t1 = t + 1, u = 1 - t, u1 = 2 - t;
    c[0] = ((A * t1 - 5 * A) * t1 + 8 * A) * t1 - 4 * A;
    c[1] = ((A + 2) * t - (A + 3)) * t * t + 1;
    c[2] = ((A + 2) * u - (A + 3)) * u * u + 1;
    c[3] = ((A * u1 - 5 * A) * u1 + 8 * A) * u1 - 4 * A;
}

/* The taps of normalized coordinate g along an axis of length L >= 1:
 * indices (-1 for zero taps) and weights; returns how many (1, 2 or 4). */
static int gs_taps(const gs_attr *a, double g, int64_t L, int64_t *idx, double *w) {
    double xf = a->align ? (g + 1) / 2 * (double)(L - 1) : ((g + 1) * (double)L - 1) / 2;
    double lo = a->align ? 0.0 : -0.5, hi = a->align ? (double)(L - 1) : (double)L - 0.5;
    if (isnan(xf)) xf = lo - 1;
    if (a->mode == GS_NEAREST) xf = nearbyint(xf);
    /* Linear and nearest move the coordinate itself inside; cubic keeps it
     * and bounds each tap instead (PyTorch and onnxruntime; the ONNX
     * reference also moves cubic coordinates, which differs only for
     * border/reflection samples outside the image). */
    if ((xf < lo || xf > hi) && a->mode != GS_CUBIC) {
        if (a->pad == GS_BORDER)
            xf = xf < 0 ? 0 : xf > (double)(L - 1) ? (double)(L - 1) : xf;
        else if (a->pad == GS_REFLECTION)
            xf = gs_reflect(xf, lo, hi);
    }
    /* Far outside, every tap is a zero tap: bound xf so integer conversion
     * stays defined without changing the result. */
    if (xf < -8) xf = -8;
    if (xf > (double)L + 8) xf = (double)L + 8;
    if (a->mode == GS_NEAREST) {
        idx[0] = gs_pixel(a, (int64_t)xf, L, lo, hi);
        w[0] = 1;
        return 1;
    }
    double x0 = floor(xf), t = xf - x0;
    int64_t i0 = (int64_t)x0;
    if (a->mode == GS_LINEAR) {
        idx[0] = gs_pixel(a, i0, L, lo, hi);
        idx[1] = gs_pixel(a, i0 + 1, L, lo, hi);
        w[0] = 1 - t;
        w[1] = t;
        return 2;
    }
    gs_cubic_coeffs(t, w);
    for (int k = 0; k < 4; k++)
        idx[k] = gs_pixel(a, i0 - 1 + k, L, lo, hi);
    return 4;
}

typedef struct gs_job {
    const gs_attr *a;
    int r;                         /* spatial rank */
    int64_t N, C, P, S;            /* batch, channels, output points, input points */
    int64_t in[ONYX_MAX_DIMS];     /* (r) input spatial dims */
    int64_t stride[ONYX_MAX_DIMS]; /* (r) input element strides */
    const double *x;               /* (N, C, in...) */
    const double *grid;            /* (N, out..., r) */
    double *y;                     /* (N, C, out...) */
    int64_t max_taps;
    int64_t *off; /* per thread: (max_taps) input offsets */
    double *wt;   /* per thread: (max_taps) weights */
} gs_job;

static void gs_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const gs_job *j = ctx;
    int64_t *off = j->off + thread * j->max_taps;
    double *wt = j->wt + thread * j->max_taps;
    for (int64_t item = begin; item < end; item++) {
        int64_t n = item / j->P, p = item % j->P;
        const double *g = j->grid + item * j->r;
        int64_t idx[ONYX_MAX_DIMS][4];
        double w[ONYX_MAX_DIMS][4];
        int cnt[ONYX_MAX_DIMS];
        /* grid's last axis lists coordinates innermost first (x, y, ...). */
        for (int d = 0; d < j->r; d++)
            cnt[d] = gs_taps(j->a, g[j->r - 1 - d], j->in[d], idx[d], w[d]);
        int64_t nt = 0;
        int k[ONYX_MAX_DIMS] = {0};
        for (;;) {
            int64_t o = 0;
            double ww = 1;
            bool zero = false;
            for (int d = 0; d < j->r; d++) {
                int64_t i = idx[d][k[d]];
                if (i < 0) zero = true;
                o += i * j->stride[d];
                ww *= w[d][k[d]];
            }
            if (!zero) {
                off[nt] = o;
                wt[nt++] = ww;
            }
            int d = j->r - 1;
            while (d >= 0 && ++k[d] == cnt[d])
                k[d--] = 0;
            if (d < 0) break;
        }
        for (int64_t c = 0; c < j->C; c++) {
            const double *xc = j->x + (n * j->C + c) * j->S;
            double s = 0;
            for (int64_t t = 0; t < nt; t++)
                s += wt[t] * xc[off[t]];
            j->y[(n * j->C + c) * j->P + p] = s;
        }
    }
}

static onyx_status run_grid_sample(const onyx_node *nd, onyx_exec *x) {
    const gs_attr *a = nd->state;
    const onyx_tensor *X = onyx_exec_input(x, 0), *G = onyx_exec_input(x, 1);
    if (!X || !G) return FAIL("missing input");
    if (!onyx_dtype_is_float(G->dtype)) return FAIL("grid must be a float tensor");
    if (X->dtype == ONYX_DTYPE_STRING || X->dtype == ONYX_DTYPE_COMPLEX64 ||
        X->dtype == ONYX_DTYPE_COMPLEX128)
        return FAIL("X of type %s is not supported", onyx_dtype_name(X->dtype));
    int r = X->ndim - 2;
    if (r < 1 || (!a->nd && r != 2))
        return FAIL("X must be %s, got rank %d", a->nd ? "(N, C, D1, ...)" : "4-D", X->ndim);
    if (G->ndim != X->ndim || G->dims[0] != X->dims[0] || G->dims[G->ndim - 1] != r)
        return FAIL("grid must be (N, D1_out, ..., %d) for X of rank %d", r, X->ndim);
    gs_job j;
    memset(&j, 0, sizeof j);
    j.a = a;
    j.r = r;
    j.N = X->dims[0];
    j.C = X->dims[1];
    int64_t ydims[ONYX_MAX_DIMS] = {j.N, j.C};
    j.P = 1;
    j.S = 1;
    for (int d = 0; d < r; d++) {
        ydims[2 + d] = G->dims[1 + d];
        j.P *= G->dims[1 + d];
        j.in[d] = X->dims[2 + d];
    }
    for (int d = r - 1; d >= 0; d--) {
        j.stride[d] = j.S;
        j.S *= j.in[d];
    }
    onyx_tensor *Y;
    onyx_status st = onyx_exec_output(x, 0, X->dtype, X->ndim, ydims, &Y);
    if (st) return st;
    int64_t count = onyx_tensor_count(Y);
    if (count == 0) return ONYX_OK;
    if (j.S == 0) return FAIL("X has an empty spatial dimension");
    int taps1 = a->mode == GS_NEAREST ? 1 : a->mode == GS_LINEAR ? 2 : 4;
    j.max_taps = 1;
    for (int d = 0; d < r; d++)
        j.max_taps *= taps1;
    int threads = onyx_exec_threads(x);
    j.x = as_f64(x, X);
    j.grid = as_f64(x, G);
    j.y = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, count));
    j.off = onyx_exec_scratch(x, sizeof(int64_t) * (size_t)(j.max_taps * threads));
    j.wt = onyx_exec_scratch(x, sizeof(double) * (size_t)(j.max_taps * threads));
    if (!j.x || !j.grid || !j.y || !j.off || !j.wt) return OOM();
    int64_t work = j.C * j.max_taps + 1;
    onyx_exec_parallel(x, j.N * j.P, work >= 4096 ? 1 : 4096 / work, gs_task, &j);
    onyx_convert(Y->dtype, Y->data, ONYX_DTYPE_DOUBLE, j.y, count, false);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// AffineGrid

static onyx_status init_affine_grid(onyx_node *n, onyx_error *err) {
    bool *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    *a = onyx_attr_int(n, "align_corners", 0) != 0;
    n->state = a;
    return ONYX_OK;
}

/* Position i of L evenly spaced points spanning [-1, 1]. */
static double ag_base(int64_t i, int64_t L, bool align) {
    if (align) return L > 1 ? -1.0 + 2.0 * (double)i / (double)(L - 1) : -1.0;
    return -1.0 + (2.0 * (double)i + 1.0) / (double)L;
}

static onyx_status run_affine_grid(const onyx_node *nd, onyx_exec *x) {
    bool align = *(const bool *)nd->state;
    const onyx_tensor *Th = onyx_exec_input(x, 0), *Sz = onyx_exec_input(x, 1);
    if (!Th || !Sz) return FAIL("missing input");
    if (Sz->ndim != 1 || (Sz->dims[0] != 4 && Sz->dims[0] != 5))
        return FAIL("size must hold 4 (N, C, H, W) or 5 (N, C, D, H, W) values");
    int r = (int)Sz->dims[0] - 2; /* 2 or 3 */
    if (Th->ndim != 3 || Th->dims[1] != r || Th->dims[2] != r + 1)
        return FAIL("theta must be (N, %d, %d) for a %d-D size", r, r + 1, r);
    int64_t N = Th->dims[0], sp[3] = {1, 1, 1}; /* (D, H, W) */
    for (int d = 0; d < r; d++) {
        sp[3 - r + d] = onyx_tensor_get_i64(Sz, 2 + d);
        if (sp[3 - r + d] < 0) return FAIL("size has a negative dimension");
    }
    int64_t gd[5] = {N};
    for (int d = 0; d < r; d++)
        gd[1 + d] = sp[3 - r + d];
    gd[1 + r] = r;
    onyx_tensor *Y;
    onyx_status st = onyx_exec_output(x, 0, Th->dtype, r + 2, gd, &Y);
    if (st) return st;
    int64_t count = onyx_tensor_count(Y);
    if (count == 0) return ONYX_OK;
    const double *th = as_f64(x, Th);
    double *y = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, count));
    if (!th || !y) return OOM();
    double *o = y;
    for (int64_t n = 0; n < N; n++) {
        const double *t = th + n * r * (r + 1);
        for (int64_t dz = 0; dz < sp[0]; dz++)
            for (int64_t h = 0; h < sp[1]; h++)
                for (int64_t w = 0; w < sp[2]; w++) {
                    /* Homogeneous source position (x, y[, z], 1). */
                    double v[4] = {ag_base(w, sp[2], align), ag_base(h, sp[1], align),
                                   r == 3 ? ag_base(dz, sp[0], align) : 1.0, 1.0};
                    for (int i = 0; i < r; i++) {
                        double s = 0;
                        for (int k = 0; k <= r; k++)
                            s += t[i * (r + 1) + k] * v[k];
                        *o++ = s;
                    }
                }
    }
    onyx_convert(Y->dtype, Y->data, ONYX_DTYPE_DOUBLE, y, count, false);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// RoiAlign

typedef struct roi_align_attr {
    bool half_pixel;
    bool max_mode;
    int64_t out_h, out_w, sampling_ratio;
    float spatial_scale;
} roi_align_attr;

static onyx_status init_roi_align(onyx_node *n, onyx_error *err) {
    roi_align_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    /* Opset 10 has no attribute and behaves as output_half_pixel. */
    const char *ctm = onyx_attr_string(n, "coordinate_transformation_mode",
                                       n->opset >= 16 ? "half_pixel" : "output_half_pixel");
    if (strcmp(ctm, "half_pixel") == 0)
        a->half_pixel = true;
    else if (strcmp(ctm, "output_half_pixel") == 0)
        a->half_pixel = false;
    else
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "coordinate_transformation_mode must be half_pixel or "
                           "output_half_pixel, got '%s'",
                           ctm);
    const char *mode = onyx_attr_string(n, "mode", "avg");
    if (strcmp(mode, "avg") == 0)
        a->max_mode = false;
    else if (strcmp(mode, "max") == 0)
        a->max_mode = true;
    else
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "mode must be avg or max, got '%s'", mode);
    a->out_h = onyx_attr_int(n, "output_height", 1);
    a->out_w = onyx_attr_int(n, "output_width", 1);
    a->sampling_ratio = onyx_attr_int(n, "sampling_ratio", 0);
    a->spatial_scale = onyx_attr_float(n, "spatial_scale", 1.0f);
    if (a->out_h < 1 || a->out_w < 1 || a->sampling_ratio < 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "output_height/output_width must be >= 1 and sampling_ratio >= 0");
    n->state = a;
    return ONYX_OK;
}

/* Sample points per bin are capped so a hostile box cannot demand unbounded
 * work; real boxes stay far below it. */
#define ROI_MAX_GRID 1024

static onyx_status run_roi_align(const onyx_node *nd, onyx_exec *x) {
    const roi_align_attr *a = nd->state;
    const onyx_tensor *X = onyx_exec_input(x, 0), *R = onyx_exec_input(x, 1),
                      *BI = onyx_exec_input(x, 2);
    if (!X || !R || !BI) return FAIL("missing input");
    if (X->ndim != 4) return FAIL("X must be (N, C, H, W), got rank %d", X->ndim);
    if (R->ndim != 2 || R->dims[1] != 4) return FAIL("rois must be (num_rois, 4)");
    if (R->dtype != X->dtype) return FAIL("rois must have X's type");
    if (BI->ndim != 1 || BI->dims[0] != R->dims[0] || !onyx_dtype_is_signed_int(BI->dtype))
        return FAIL("batch_indices must be an integer tensor of shape (num_rois)");
    int64_t N = X->dims[0], C = X->dims[1], H = X->dims[2], W = X->dims[3], nr = R->dims[0];
    int64_t ph = a->out_h, pw = a->out_w;
    int64_t yd[4] = {nr, C, ph, pw};
    onyx_tensor *Y;
    onyx_status st = onyx_exec_output(x, 0, X->dtype, 4, yd, &Y);
    if (st) return st;
    int64_t count = onyx_tensor_count(Y);
    if (count == 0) return ONYX_OK;
    const double *xd = as_f64(x, X), *rd = as_f64(x, R);
    double *y = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, count));
    if (!xd || !rd || !y) return OOM();
    double scale = a->spatial_scale, shift = a->half_pixel ? 0.5 : 0.0;
    for (int64_t n = 0; n < nr; n++) {
        int64_t b = onyx_tensor_get_i64(BI, n);
        if (b < 0 || b >= N)
            return FAIL("batch_indices[%lld] = %lld is outside [0, %lld)", (long long)n,
                        (long long)b, (long long)N);
        const double *roi = rd + n * 4;
        for (int k = 0; k < 4; k++)
            if (!isfinite(roi[k]))
                return FAIL("roi %lld has a non-finite coordinate", (long long)n);
        double x0 = roi[0] * scale - shift, y0 = roi[1] * scale - shift;
        double rw = roi[2] * scale - shift - x0, rh = roi[3] * scale - shift - y0;
        if (!a->half_pixel) {
            rw = rw > 1.0 ? rw : 1.0;
            rh = rh > 1.0 ? rh : 1.0;
        }
        double bh = rh / (double)ph, bw = rw / (double)pw;
        double gh_f = a->sampling_ratio > 0 ? (double)a->sampling_ratio : ceil(rh / (double)ph);
        double gw_f = a->sampling_ratio > 0 ? (double)a->sampling_ratio : ceil(rw / (double)pw);
        int64_t gh = gh_f < 0 ? 0 : gh_f > ROI_MAX_GRID ? ROI_MAX_GRID : (int64_t)gh_f;
        int64_t gw = gw_f < 0 ? 0 : gw_f > ROI_MAX_GRID ? ROI_MAX_GRID : (int64_t)gw_f;
        double cnt = gh * gw > 1 ? (double)(gh * gw) : 1.0;
        for (int64_t c = 0; c < C; c++) {
            const double *img = xd + (b * C + c) * H * W;
            for (int64_t oy = 0; oy < ph; oy++)
                for (int64_t ox = 0; ox < pw; ox++) {
                    double acc = 0;
                    bool first = true;
                    for (int64_t iy = 0; iy < gh; iy++) {
                        double yy = y0 + (double)oy * bh + ((double)iy + 0.5) * bh / (double)gh;
                        for (int64_t ix = 0; ix < gw; ix++) {
                            double xx = x0 + (double)ox * bw + ((double)ix + 0.5) * bw / (double)gw;
                            double v1 = 0, v2 = 0, v3 = 0, v4 = 0;
                            if (!(yy < -1.0 || yy > (double)H || xx < -1.0 || xx > (double)W) &&
                                H > 0 && W > 0) {
                                double yv = yy > 0 ? yy : 0, xv = xx > 0 ? xx : 0;
                                int64_t yl = (int64_t)yv, xl = (int64_t)xv, yh, xh;
                                if (yl >= H - 1)
                                    yh = yl = H - 1, yv = (double)yl;
                                else
                                    yh = yl + 1;
                                if (xl >= W - 1)
                                    xh = xl = W - 1, xv = (double)xl;
                                else
                                    xh = xl + 1;
                                double ly = yv - (double)yl, lx = xv - (double)xl;
                                double hy = 1 - ly, hx = 1 - lx;
                                v1 = hy * hx * img[yl * W + xl];
                                v2 = hy * lx * img[yl * W + xh];
                                v3 = ly * hx * img[yh * W + xl];
                                v4 = ly * lx * img[yh * W + xh];
                            }
                            if (a->max_mode) {
                                /* As the reference: the largest weighted corner. */
                                double m = fmax(fmax(v1, v2), fmax(v3, v4));
                                acc = first ? m : fmax(acc, m);
                                first = false;
                            } else {
                                acc += v1 + v2 + v3 + v4;
                            }
                        }
                    }
                    y[((n * C + c) * ph + oy) * pw + ox] = a->max_mode ? acc : acc / cnt;
                }
        }
    }
    onyx_convert(Y->dtype, Y->data, ONYX_DTYPE_DOUBLE, y, count, false);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// MaxRoiPool

typedef struct max_roi_attr {
    int64_t ph, pw;
    float spatial_scale;
} max_roi_attr;

static onyx_status init_max_roi_pool(onyx_node *n, onyx_error *err) {
    max_roi_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    const int64_t *ps;
    if (onyx_attr_ints(n, "pooled_shape", &ps) != 2 || ps[0] < 1 || ps[1] < 1)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "pooled_shape must be two positive integers");
    a->ph = ps[0];
    a->pw = ps[1];
    a->spatial_scale = onyx_attr_float(n, "spatial_scale", 1.0f);
    n->state = a;
    return ONYX_OK;
}

/* Rounds half away from zero and clamps into [lo, hi] (as an int64). */
static int64_t round_clamp(double v, int64_t lo, int64_t hi) {
    v = round(v);
    return v < (double)lo ? lo : v > (double)hi ? hi : (int64_t)v;
}

/* Caffe's ROI pooling (as onnxruntime): box corners rounded to pixels, bins
 * of the box maxed, empty bins 0. */
static onyx_status run_max_roi_pool(const onyx_node *nd, onyx_exec *x) {
    const max_roi_attr *a = nd->state;
    const onyx_tensor *X = onyx_exec_input(x, 0), *R = onyx_exec_input(x, 1);
    if (!X || !R) return FAIL("missing input");
    if (X->ndim != 4) return FAIL("X must be (N, C, H, W), got rank %d", X->ndim);
    if (R->ndim != 2 || R->dims[1] != 5 || R->dtype != X->dtype)
        return FAIL("rois must be (num_rois, 5) of X's type");
    int64_t N = X->dims[0], C = X->dims[1], H = X->dims[2], W = X->dims[3], nr = R->dims[0];
    int64_t yd[4] = {nr, C, a->ph, a->pw};
    onyx_tensor *Y;
    onyx_status st = onyx_exec_output(x, 0, X->dtype, 4, yd, &Y);
    if (st) return st;
    int64_t count = onyx_tensor_count(Y);
    if (count == 0) return ONYX_OK;
    const double *xd = as_f64(x, X), *rd = as_f64(x, R);
    double *y = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, count));
    if (!xd || !rd || !y) return OOM();
    /* Corners beyond this bound only change which bins are empty. */
    int64_t big = (H > W ? H : W) * 4 + 16;
    for (int64_t n = 0; n < nr; n++) {
        const double *roi = rd + n * 5;
        if (!(roi[0] >= 0 && roi[0] < (double)N))
            return FAIL("roi %lld has batch index %g outside [0, %lld)", (long long)n, roi[0],
                        (long long)N);
        int64_t b = (int64_t)roi[0];
        for (int k = 1; k < 5; k++)
            if (isnan(roi[k])) return FAIL("roi %lld has a NaN coordinate", (long long)n);
        int64_t sw = round_clamp(roi[1] * a->spatial_scale, -big, big);
        int64_t sh = round_clamp(roi[2] * a->spatial_scale, -big, big);
        int64_t ew = round_clamp(roi[3] * a->spatial_scale, -big, big);
        int64_t eh = round_clamp(roi[4] * a->spatial_scale, -big, big);
        int64_t rh = eh - sh + 1 > 1 ? eh - sh + 1 : 1, rw = ew - sw + 1 > 1 ? ew - sw + 1 : 1;
        double bh = (double)rh / (double)a->ph, bw = (double)rw / (double)a->pw;
        for (int64_t c = 0; c < C; c++) {
            const double *img = xd + (b * C + c) * H * W;
            for (int64_t py = 0; py < a->ph; py++)
                for (int64_t px = 0; px < a->pw; px++) {
                    int64_t hs = (int64_t)floor((double)py * bh) + sh;
                    int64_t he = (int64_t)ceil((double)(py + 1) * bh) + sh;
                    int64_t ws = (int64_t)floor((double)px * bw) + sw;
                    int64_t we = (int64_t)ceil((double)(px + 1) * bw) + sw;
                    hs = hs < 0 ? 0 : hs > H ? H : hs;
                    he = he < 0 ? 0 : he > H ? H : he;
                    ws = ws < 0 ? 0 : ws > W ? W : ws;
                    we = we < 0 ? 0 : we > W ? W : we;
                    double m = (he <= hs || we <= ws) ? 0 : -DBL_MAX;
                    for (int64_t h = hs; h < he; h++)
                        for (int64_t w = ws; w < we; w++)
                            if (img[h * W + w] > m) m = img[h * W + w];
                    y[((n * C + c) * a->ph + py) * a->pw + px] = m;
                }
        }
    }
    onyx_convert(Y->dtype, Y->data, ONYX_DTYPE_DOUBLE, y, count, false);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// NonMaxSuppression

typedef struct nms_cand {
    float score;
    int64_t idx;
} nms_cand;

/* Descending score, then ascending index; NaN scores sort last. */
static int nms_cmp(const void *pa, const void *pb) {
    const nms_cand *a = pa, *b = pb;
    bool na = isnan(a->score), nb = isnan(b->score);
    if (na != nb) return na ? 1 : -1;
    if (!na && a->score != b->score) return a->score > b->score ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Corners (ymin, xmin, ymax, xmax) of box b in either input format. */
static void nms_corners(const float *b, bool center, float *c) {
    if (center) {
        float hw = b[2] / 2, hh = b[3] / 2;
        c[0] = b[1] - hh, c[1] = b[0] - hw, c[2] = b[1] + hh, c[3] = b[0] + hw;
    } else {
        c[0] = fminf(b[0], b[2]), c[1] = fminf(b[1], b[3]);
        c[2] = fmaxf(b[0], b[2]), c[3] = fmaxf(b[1], b[3]);
    }
}

static bool nms_suppress(const float *c1, const float *c2, float iou_threshold) {
    float ix0 = fmaxf(c1[1], c2[1]), ix1 = fminf(c1[3], c2[3]);
    if (!(ix1 > ix0)) return false;
    float iy0 = fmaxf(c1[0], c2[0]), iy1 = fminf(c1[2], c2[2]);
    if (!(iy1 > iy0)) return false;
    float inter = (ix1 - ix0) * (iy1 - iy0);
    float a1 = (c1[3] - c1[1]) * (c1[2] - c1[0]), a2 = (c2[3] - c2[1]) * (c2[2] - c2[0]);
    float uni = a1 + a2 - inter;
    if (!(inter > 0) || !(a1 > 0) || !(a2 > 0) || !(uni > 0)) return false;
    return inter / uni > iou_threshold;
}

static onyx_status init_nms(onyx_node *n, onyx_error *err) {
    int64_t *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    *a = onyx_attr_int(n, "center_point_box", 0);
    if (*a != 0 && *a != 1)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "center_point_box must be 0 or 1");
    n->state = a;
    return ONYX_OK;
}

static onyx_status run_nms(const onyx_node *nd, onyx_exec *x) {
    bool center = *(const int64_t *)nd->state != 0;
    const onyx_tensor *Bx = onyx_exec_input(x, 0), *Sc = onyx_exec_input(x, 1),
                      *MO = onyx_exec_input(x, 2), *IT = onyx_exec_input(x, 3),
                      *ST = onyx_exec_input(x, 4);
    if (!Bx || !Sc) return FAIL("missing input");
    if (Bx->dtype != ONYX_DTYPE_FLOAT || Sc->dtype != ONYX_DTYPE_FLOAT)
        return FAIL("boxes and scores must be float");
    if (Bx->ndim != 3 || Bx->dims[2] != 4)
        return FAIL("boxes must be (num_batches, spatial_dimension, 4)");
    if (Sc->ndim != 3 || Sc->dims[0] != Bx->dims[0] || Sc->dims[2] != Bx->dims[1])
        return FAIL("scores must be (num_batches, num_classes, spatial_dimension)");
    int64_t NB = Bx->dims[0], NC = Sc->dims[1], NS = Bx->dims[1];
    int64_t max_out = 0;
    float iou_t = 0, score_t = 0;
    bool has_score_t = false;
    if (MO && onyx_tensor_count(MO) > 0) {
        if (!onyx_dtype_is_signed_int(MO->dtype))
            return FAIL("max_output_boxes_per_class must be int64");
        max_out = onyx_tensor_get_i64(MO, 0);
    }
    if (IT && onyx_tensor_count(IT) > 0) iou_t = (float)onyx_tensor_get_f64(IT, 0);
    if (ST && onyx_tensor_count(ST) > 0) {
        score_t = (float)onyx_tensor_get_f64(ST, 0);
        has_score_t = true;
    }
    if (max_out < 0) max_out = 0;
    int64_t per_class = max_out < NS ? max_out : NS;
    int64_t cap = mul_ck(mul_ck(NB, NC), per_class);
    if (cap < 0) return FAIL("too many boxes");
    int64_t *sel = onyx_exec_scratch(x, sizeof(int64_t) * 3 * (size_t)(cap + 1));
    nms_cand *cand = onyx_exec_scratch(x, sizeof(nms_cand) * (size_t)(NS + 1));
    float *corners = onyx_exec_scratch(x, sizeof(float) * 4 * (size_t)(NS + 1));
    int64_t *kept = onyx_exec_scratch(x, sizeof(int64_t) * (size_t)(per_class + 1));
    if (!sel || !cand || !corners || !kept) return OOM();
    const float *boxes = Bx->data, *scores = Sc->data;
    int64_t nsel = 0;
    for (int64_t b = 0; b < NB && per_class > 0; b++) {
        for (int64_t i = 0; i < NS; i++)
            nms_corners(boxes + (b * NS + i) * 4, center, corners + i * 4);
        for (int64_t c = 0; c < NC; c++) {
            const float *s = scores + (b * NC + c) * NS;
            int64_t nc = 0;
            for (int64_t i = 0; i < NS; i++)
                if (!has_score_t || s[i] > score_t) cand[nc++] = (nms_cand){s[i], i};
            qsort(cand, (size_t)nc, sizeof *cand, nms_cmp);
            int64_t nk = 0;
            for (int64_t i = 0; i < nc && nk < per_class; i++) {
                const float *ci = corners + cand[i].idx * 4;
                bool keep = true;
                for (int64_t k = 0; k < nk && keep; k++)
                    if (nms_suppress(ci, corners + kept[k] * 4, iou_t)) keep = false;
                if (!keep) continue;
                kept[nk++] = cand[i].idx;
                sel[nsel * 3] = b, sel[nsel * 3 + 1] = c, sel[nsel * 3 + 2] = cand[i].idx;
                nsel++;
            }
        }
        if (onyx_exec_aborted(x)) return onyx_exec_fail(x, ONYX_ERR_CANCELLED, "cancelled");
    }
    int64_t od[2] = {nsel, 3};
    onyx_tensor *Y;
    onyx_status st = onyx_exec_output(x, 0, ONYX_DTYPE_INT64, 2, od, &Y);
    if (st) return st;
    if (nsel) memcpy(Y->data, sel, sizeof(int64_t) * 3 * (size_t)nsel);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Col2Im

typedef struct col2im_attr {
    int n; /* spatial rank given by the attributes, 0 when none is given */
    const int64_t *dil, *pads, *strides; /* NULL when absent */
} col2im_attr;

static onyx_status init_col2im(onyx_node *n, onyx_error *err) {
    col2im_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    int64_t nd = onyx_attr_ints(n, "dilations", &a->dil);
    int64_t np = onyx_attr_ints(n, "pads", &a->pads);
    int64_t ns = onyx_attr_ints(n, "strides", &a->strides);
    if (nd < 0) a->dil = NULL;
    if (np < 0) a->pads = NULL;
    if (ns < 0) a->strides = NULL;
    int64_t r = nd >= 0 ? nd : ns >= 0 ? ns : np >= 0 ? np / 2 : 0;
    if ((nd >= 0 && nd != r) || (ns >= 0 && ns != r) || (np >= 0 && np != 2 * r) ||
        r > ONYX_MAX_DIMS - 2)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "dilations, strides and pads disagree on the spatial rank");
    /* Bounded so that the size arithmetic of run cannot overflow. */
    for (int64_t i = 0; i < r; i++)
        if ((a->dil && (a->dil[i] < 1 || a->dil[i] > INT32_MAX)) ||
            (a->strides && (a->strides[i] < 1 || a->strides[i] > INT32_MAX)) ||
            (a->pads && (a->pads[i] < 0 || a->pads[i + r] < 0 || a->pads[i] > INT32_MAX ||
                         a->pads[i + r] > INT32_MAX)))
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                               "dilations and strides must be in 1..2^31-1, pads in 0..2^31-1");
    a->n = (int)r;
    n->state = a;
    return ONYX_OK;
}

static onyx_status run_col2im(const onyx_node *nd, onyx_exec *x) {
    const col2im_attr *a = nd->state;
    const onyx_tensor *In = onyx_exec_input(x, 0), *IS = onyx_exec_input(x, 1),
                      *BS = onyx_exec_input(x, 2);
    if (!In || !IS || !BS) return FAIL("missing input");
    if (In->ndim != 3) return FAIL("input must be (N, C*prod(block_shape), L)");
    if (IS->ndim != 1 || BS->ndim != 1 || IS->dims[0] != BS->dims[0] || IS->dims[0] < 1 ||
        IS->dims[0] > ONYX_MAX_DIMS - 2)
        return FAIL("image_shape and block_shape must be 1-D of the same length (1..%d)",
                    ONYX_MAX_DIMS - 2);
    int r = (int)IS->dims[0];
    if (a->n && a->n != r)
        return FAIL("attributes are for %d spatial dims, image_shape has %d", a->n, r);
    int64_t img[ONYX_MAX_DIMS], blk[ONYX_MAX_DIMS], nb[ONYX_MAX_DIMS];
    int64_t kprod = 1, L = 1, S = 1;
    for (int d = 0; d < r; d++) {
        img[d] = onyx_tensor_get_i64(IS, d);
        blk[d] = onyx_tensor_get_i64(BS, d);
        if (img[d] < 0 || blk[d] < 1 || img[d] > INT32_MAX || blk[d] > INT32_MAX)
            return FAIL("image_shape must be >= 0 and block_shape >= 1");
        int64_t dl = a->dil ? a->dil[d] : 1, st = a->strides ? a->strides[d] : 1;
        int64_t pb = a->pads ? a->pads[d] : 0, pe = a->pads ? a->pads[d + r] : 0;
        int64_t span = dl * (blk[d] - 1) + 1;
        nb[d] = floor_div(img[d] + pb + pe - span, st) + 1;
        if (nb[d] < 1) return FAIL("no sliding block fits spatial dimension %d", d);
        kprod = mul_ck(kprod, blk[d]);
        L = mul_ck(L, nb[d]);
        S = mul_ck(S, img[d]);
        if (kprod < 0 || L < 0 || S < 0) return FAIL("sizes overflow");
    }
    int64_t N = In->dims[0];
    if (In->dims[1] % kprod)
        return FAIL("input dimension 1 is not a multiple of prod(block_shape)");
    if (In->dims[2] != L)
        return FAIL("input has %lld blocks, the shapes give %lld", (long long)In->dims[2],
                    (long long)L);
    int64_t C = In->dims[1] / kprod;
    int64_t od[ONYX_MAX_DIMS] = {N, C};
    for (int d = 0; d < r; d++)
        od[2 + d] = img[d];
    onyx_tensor *Y;
    onyx_status st = onyx_exec_output(x, 0, In->dtype, r + 2, od, &Y);
    if (st) return st;
    int64_t count = onyx_tensor_count(Y);
    if (count == 0) return ONYX_OK;
    const double *in = as_f64(x, In);
    double *y = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, count));
    if (!in || !y) return OOM();
    memset(y, 0, sizeof(double) * (size_t)count);
    for (int64_t nc = 0; nc < N * C; nc++) {
        double *yo = y + nc * S;
        for (int64_t k = 0; k < kprod; k++) {
            const double *col = in + (nc * kprod + k) * L;
            int64_t ko[ONYX_MAX_DIMS], rem = k;
            for (int d = r - 1; d >= 0; d--)
                ko[d] = rem % blk[d], rem /= blk[d];
            for (int64_t l = 0; l < L; l++) {
                int64_t lr = l, off = 0;
                bool in_img = true;
                int64_t pos[ONYX_MAX_DIMS];
                for (int d = r - 1; d >= 0; d--)
                    pos[d] = lr % nb[d], lr /= nb[d];
                for (int d = 0; d < r && in_img; d++) {
                    int64_t dl = a->dil ? a->dil[d] : 1, stv = a->strides ? a->strides[d] : 1;
                    int64_t pb = a->pads ? a->pads[d] : 0;
                    int64_t i = pos[d] * stv - pb + ko[d] * dl;
                    if (i < 0 || i >= img[d]) in_img = false;
                    off = off * img[d] + i;
                }
                if (in_img) yo[off] += col[l];
            }
        }
    }
    onyx_convert(Y->dtype, Y->data, ONYX_DTYPE_DOUBLE, y, count, false);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// CenterCropPad

typedef struct ccp_attr {
    int64_t n_axes; /* -1: all axes */
    const int64_t *axes;
} ccp_attr;

static onyx_status init_center_crop_pad(onyx_node *n, onyx_error *err) {
    ccp_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->n_axes = onyx_attr_ints(n, "axes", &a->axes);
    n->state = a;
    return ONYX_OK;
}

static onyx_status run_center_crop_pad(const onyx_node *nd, onyx_exec *x) {
    const ccp_attr *a = nd->state;
    const onyx_tensor *X = onyx_exec_input(x, 0), *Sh = onyx_exec_input(x, 1);
    if (!X || !Sh) return FAIL("missing input");
    int rank = X->ndim;
    int64_t na = a->n_axes < 0 ? rank : a->n_axes;
    if (Sh->ndim != 1 || Sh->dims[0] != na || !onyx_dtype_is_signed_int(Sh->dtype))
        return FAIL("shape must be a 1-D integer tensor of %lld values", (long long)na);
    int64_t od[ONYX_MAX_DIMS];
    memcpy(od, X->dims, sizeof(int64_t) * (size_t)rank);
    bool seen[ONYX_MAX_DIMS] = {false};
    for (int64_t i = 0; i < na; i++) {
        int64_t ax = a->n_axes < 0 ? i : a->axes[i];
        if (ax < -rank || ax >= rank) return FAIL("axis %lld is out of range", (long long)ax);
        if (ax < 0) ax += rank;
        if (seen[ax]) return FAIL("axis %lld is repeated", (long long)ax);
        seen[ax] = true;
        od[ax] = onyx_tensor_get_i64(Sh, i);
        if (od[ax] < 0) return FAIL("shape has a negative value");
    }
    onyx_tensor *Y;
    onyx_status st = onyx_exec_output(x, 0, X->dtype, rank, od, &Y);
    if (st) return st;
    int64_t count = onyx_tensor_count(Y);
    if (count == 0) return ONYX_OK;
    size_t es = onyx_dtype_size(X->dtype);
    memset(Y->data, 0, es * (size_t)count);
    /* Per axis: the copied extent and where it starts in X and in Y. */
    int64_t len[ONYX_MAX_DIMS], xs[ONYX_MAX_DIMS], ys[ONYX_MAX_DIMS];
    int64_t total = 1;
    for (int d = 0; d < rank; d++) {
        int64_t in = X->dims[d], out = od[d];
        len[d] = in < out ? in : out;
        xs[d] = in > out ? (in - out) / 2 : 0;
        ys[d] = out > in ? (out - in) / 2 : 0;
        total *= len[d];
    }
    if (total > 0) {
        /* Copy rows along the last axis. */
        int last = rank - 1;
        int64_t rows = rank ? total / len[last] : 1, row_len = rank ? len[last] : 1;
        int64_t k[ONYX_MAX_DIMS] = {0};
        for (int64_t rr = 0; rr < rows; rr++) {
            int64_t xo = 0, yo = 0;
            for (int d = 0; d < rank; d++) {
                int64_t kd = d == last ? 0 : k[d];
                xo = xo * X->dims[d] + xs[d] + kd;
                yo = yo * od[d] + ys[d] + kd;
            }
            memcpy((char *)Y->data + (size_t)yo * es, (const char *)X->data + (size_t)xo * es,
                   (size_t)row_len * es);
            for (int d = last - 1; d >= 0; d--) {
                if (++k[d] < len[d]) break;
                k[d] = 0;
            }
        }
    }
    return own_strings(x, Y);
}

// ----------------------------------------------------------------------------
// DeformConv

typedef struct deform_attr {
    int r; /* spatial rank from the attributes; 0 when none given */
    const int64_t *kshape, *dil, *pads, *strides; /* NULL when absent */
    int64_t group, offset_group;
} deform_attr;

static onyx_status init_deform_conv(onyx_node *n, onyx_error *err) {
    deform_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    int64_t nk = onyx_attr_ints(n, "kernel_shape", &a->kshape);
    int64_t nd = onyx_attr_ints(n, "dilations", &a->dil);
    int64_t np = onyx_attr_ints(n, "pads", &a->pads);
    int64_t ns = onyx_attr_ints(n, "strides", &a->strides);
    if (nk < 0) a->kshape = NULL;
    if (nd < 0) a->dil = NULL;
    if (np < 0) a->pads = NULL;
    if (ns < 0) a->strides = NULL;
    int64_t r = nk >= 0 ? nk : nd >= 0 ? nd : ns >= 0 ? ns : np >= 0 ? np / 2 : 0;
    if ((nk >= 0 && nk != r) || (nd >= 0 && nd != r) || (ns >= 0 && ns != r) ||
        (np >= 0 && np != 2 * r) || r > ONYX_MAX_DIMS - 2)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "kernel_shape, dilations, strides and pads disagree on the rank");
    for (int64_t i = 0; i < r; i++)
        if ((a->kshape && (a->kshape[i] < 1 || a->kshape[i] > INT32_MAX)) ||
            (a->dil && (a->dil[i] < 1 || a->dil[i] > INT32_MAX)) ||
            (a->strides && (a->strides[i] < 1 || a->strides[i] > INT32_MAX)) ||
            (a->pads && (a->pads[i] < 0 || a->pads[i + r] < 0 || a->pads[i] > INT32_MAX ||
                         a->pads[i + r] > INT32_MAX)))
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                               "kernel_shape, dilations and strides must be >= 1, pads >= 0");
    a->r = (int)r;
    a->group = onyx_attr_int(n, "group", 1);
    a->offset_group = onyx_attr_int(n, "offset_group", 1);
    if (a->group < 1 || a->offset_group < 1)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "group and offset_group must be >= 1");
    n->state = a;
    return ONYX_OK;
}

static inline double ld(onyx_dtype ct, const void *p, int64_t i) {
    return ct == ONYX_DTYPE_FLOAT ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

static inline void st_(onyx_dtype ct, void *p, int64_t i, double v) {
    if (ct == ONYX_DTYPE_FLOAT)
        ((float *)p)[i] = (float)v;
    else
        ((double *)p)[i] = v;
}

static void par_for(void *px, int64_t n, int64_t grain, onyx_task_fn fn, void *ctx) {
    onyx_exec_parallel(px, n, grain, fn, ctx);
}

/* Deformable convolution as im2col + GEMM: per image, columns
 * (C * kprod, P) hold mask * X sampled bilinearly (zeros outside) at the
 * kernel taps moved by the offsets; each group is then one GEMM
 * (oC/group, C/group*kprod) x (C/group*kprod, P). */
static onyx_status run_deform_conv(const onyx_node *nd, onyx_exec *x) {
    const deform_attr *a = nd->state;
    const onyx_tensor *X = onyx_exec_input(x, 0), *Wt = onyx_exec_input(x, 1),
                      *Of = onyx_exec_input(x, 2), *Bs = onyx_exec_input(x, 3),
                      *Mk = onyx_exec_input(x, 4);
    if (!X || !Wt || !Of) return FAIL("missing input");
    int r = X->ndim - 2;
    if (r < 1) return FAIL("X must be (N, C, D1, ...), got rank %d", X->ndim);
    if (a->r && a->r != r) return FAIL("attributes are for %d spatial dims, X has %d", a->r, r);
    if (Wt->dtype != X->dtype || Of->dtype != X->dtype || (Bs && Bs->dtype != X->dtype) ||
        (Mk && Mk->dtype != X->dtype))
        return FAIL("all inputs must share X's type");
    int64_t N = X->dims[0], C = X->dims[1], G = a->group, OG = a->offset_group;
    if (Wt->ndim != X->ndim) return FAIL("W must have X's rank");
    int64_t OC = Wt->dims[0];
    if (C != Wt->dims[1] * G || OC % G || C % OG)
        return FAIL("channels (C=%lld, W %lld x %lld) do not fit group %lld / offset_group %lld",
                    (long long)C, (long long)OC, (long long)Wt->dims[1], (long long)G,
                    (long long)OG);
    int64_t ks[ONYX_MAX_DIMS], dil[ONYX_MAX_DIMS], str[ONYX_MAX_DIMS], pb[ONYX_MAX_DIMS];
    int64_t od[ONYX_MAX_DIMS], kprod = 1, P = 1, S = 1;
    if (Of->ndim != X->ndim || Of->dims[0] != N) return FAIL("offset must be (N, ..., out...)");
    for (int d = 0; d < r; d++) {
        ks[d] = a->kshape ? a->kshape[d] : Wt->dims[2 + d];
        if (ks[d] != Wt->dims[2 + d]) return FAIL("kernel_shape disagrees with W");
        dil[d] = a->dil ? a->dil[d] : 1;
        str[d] = a->strides ? a->strides[d] : 1;
        pb[d] = a->pads ? a->pads[d] : 0;
        int64_t pe = a->pads ? a->pads[d + r] : 0;
        int64_t span = (ks[d] - 1) * dil[d] + 1;
        if (X->dims[2 + d] > INT32_MAX || ks[d] > INT32_MAX || pb[d] > INT32_MAX || pe > INT32_MAX)
            return FAIL("spatial sizes too large");
        od[d] = floor_div(X->dims[2 + d] + pb[d] + pe - span, str[d]) + 1;
        if (od[d] < 0) od[d] = 0;
        if (Of->dims[2 + d] != od[d])
            return FAIL("offset spatial dim %d is %lld, the convolution gives %lld", d,
                        (long long)Of->dims[2 + d], (long long)od[d]);
        kprod = mul_ck(kprod, ks[d]);
        P = mul_ck(P, od[d]);
        S = mul_ck(S, X->dims[2 + d]);
        if (kprod < 0 || P < 0 || S < 0) return FAIL("sizes overflow");
    }
    if (Of->dims[1] != OG * kprod * r)
        return FAIL("offset has %lld channels; expected offset_group*prod(kernel)*%d = %lld",
                    (long long)Of->dims[1], r, (long long)(OG * kprod * r));
    if (Mk) {
        bool ok = Mk->ndim == X->ndim && Mk->dims[0] == N && Mk->dims[1] == OG * kprod;
        for (int d = 0; d < r && ok; d++)
            ok = Mk->dims[2 + d] == od[d];
        if (!ok) return FAIL("mask must be (N, offset_group*prod(kernel), out...)");
    }
    if (Bs && (Bs->ndim != 1 || Bs->dims[0] != OC))
        return FAIL("B must be 1-D of length %lld", (long long)OC);
    int64_t yd[ONYX_MAX_DIMS] = {N, OC};
    for (int d = 0; d < r; d++)
        yd[2 + d] = od[d];
    onyx_tensor *Y;
    onyx_status st = onyx_exec_output(x, 0, X->dtype, X->ndim, yd, &Y);
    if (st) return st;
    int64_t count = onyx_tensor_count(Y);
    if (count == 0) return ONYX_OK;
    onyx_dtype ct = X->dtype == ONYX_DTYPE_DOUBLE ? ONYX_DTYPE_DOUBLE : ONYX_DTYPE_FLOAT;
    int64_t rows = mul_ck(C, kprod), colsz = mul_ck(rows, P);
    if (colsz < 0) return FAIL("sizes overflow");
    const void *xd = as_type(x, X, ct), *wd = as_type(x, Wt, ct), *ofd = as_type(x, Of, ct);
    const void *md = Mk ? as_type(x, Mk, ct) : NULL, *bd = Bs ? as_type(x, Bs, ct) : NULL;
    void *col = onyx_exec_scratch(x, onyx_dtype_bytes(ct, colsz + 1));
    void *y = Y->dtype == ct ? Y->data : onyx_exec_scratch(x, onyx_dtype_bytes(ct, count));
    if (!xd || !wd || !ofd || (Mk && !md) || (Bs && !bd) || !col || !y) return OOM();
    int64_t Cg = C / G, OCg = OC / G, Cog = C / OG, K = Cg * kprod;
    onyx_parallel par = {par_for, x, onyx_exec_threads(x)};
    for (int64_t n = 0; n < N; n++) {
        const void *xn = (const char *)xd + (size_t)(n * C * S) * onyx_dtype_size(ct);
        for (int64_t c = 0; c < C; c++) {
            int64_t g = c / Cog;
            for (int64_t k = 0; k < kprod; k++) {
                int64_t kk[ONYX_MAX_DIMS], rem = k;
                for (int d = r - 1; d >= 0; d--)
                    kk[d] = rem % ks[d], rem /= ks[d];
                int64_t orow = (n * OG + g) * kprod + k; /* offset/mask channel group */
                for (int64_t p = 0; p < P; p++) {
                    int64_t o[ONYX_MAX_DIMS], pr = p;
                    for (int d = r - 1; d >= 0; d--)
                        o[d] = pr % od[d], pr /= od[d];
                    /* Bilinear (N-linear) sample, zero outside the image. */
                    int64_t i0[ONYX_MAX_DIMS];
                    double fr[ONYX_MAX_DIMS];
                    bool none = false;
                    for (int d = 0; d < r; d++) {
                        double off = ld(ct, ofd, (orow * r + d) * P + p);
                        double pos = (double)(o[d] * str[d] - pb[d] + kk[d] * dil[d]) + off;
                        double L = (double)X->dims[2 + d];
                        if (!(pos > -1.0 && pos < L)) {
                            none = true;
                            break;
                        }
                        double f = floor(pos);
                        i0[d] = (int64_t)f;
                        fr[d] = pos - f;
                    }
                    double v = 0;
                    if (!none) {
                        for (int t = 0; t < (1 << r); t++) {
                            double w = 1;
                            int64_t idx = 0;
                            bool out = false;
                            for (int d = 0; d < r; d++) {
                                int bit = (t >> (r - 1 - d)) & 1;
                                int64_t i = i0[d] + bit;
                                if (i < 0 || i >= X->dims[2 + d]) out = true;
                                w *= bit ? fr[d] : 1 - fr[d];
                                idx = idx * X->dims[2 + d] + i;
                            }
                            if (!out && w != 0) v += w * ld(ct, xn, c * S + idx);
                        }
                        if (md) v *= ld(ct, md, orow * P + p);
                    }
                    st_(ct, col, (c * kprod + k) * P + p, v);
                }
            }
        }
        if (onyx_exec_aborted(x)) return onyx_exec_fail(x, ONYX_ERR_CANCELLED, "cancelled");
        size_t es = onyx_dtype_size(ct);
        for (int64_t g = 0; g < G; g++) {
            const char *wg = (const char *)wd + (size_t)(g * OCg * K) * es;
            const char *cg = (const char *)col + (size_t)(g * K * P) * es;
            char *yg = (char *)y + (size_t)((n * OC + g * OCg) * P) * es;
            if (ct == ONYX_DTYPE_FLOAT) {
                size_t ws = onyx_sgemm_workspace(OCg, P, K, par.threads);
                void *work = ws ? onyx_exec_scratch(x, ws) : NULL;
                if (ws && !work) return OOM();
                onyx_sgemm(onyx_kernels_get()->sgemm, false, false, OCg, P, K, 1.0f,
                           (const float *)wg, K, (const float *)cg, P, 0.0f, (float *)yg, P, &par,
                           work);
            } else {
                onyx_dgemm(false, false, OCg, P, K, 1.0, (const double *)wg, K, (const double *)cg,
                           P, 0.0, (double *)yg, P, &par);
            }
        }
        if (bd)
            for (int64_t oc = 0; oc < OC; oc++) {
                double b = ld(ct, bd, oc);
                for (int64_t p = 0; p < P; p++) {
                    int64_t i = (n * OC + oc) * P + p;
                    st_(ct, y, i, ld(ct, y, i) + b);
                }
            }
    }
    if (y != Y->data) onyx_convert(Y->dtype, Y->data, ct, y, count, false);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// TensorScatter

typedef struct tscatter_attr {
    bool circular;
    int64_t axis;
} tscatter_attr;

static onyx_status init_tensor_scatter(onyx_node *n, onyx_error *err) {
    tscatter_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    const char *m = onyx_attr_string(n, "mode", "linear");
    if (strcmp(m, "linear") == 0)
        a->circular = false;
    else if (strcmp(m, "circular") == 0)
        a->circular = true;
    else
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "mode must be linear or circular, got '%s'",
                           m);
    a->axis = onyx_attr_int(n, "axis", -2);
    n->state = a;
    return ONYX_OK;
}

static onyx_status run_tensor_scatter(const onyx_node *nd, onyx_exec *x) {
    const tscatter_attr *a = nd->state;
    const onyx_tensor *Pc = onyx_exec_input(x, 0), *U = onyx_exec_input(x, 1),
                      *WI = onyx_exec_input(x, 2);
    if (!Pc || !U) return FAIL("missing input");
    int rank = Pc->ndim;
    if (U->dtype != Pc->dtype || U->ndim != rank)
        return FAIL("update must match past_cache's type and rank");
    int64_t ax = a->axis;
    if (ax < -rank || ax >= rank) return FAIL("axis %lld is out of range", (long long)ax);
    if (ax < 0) ax += rank;
    if (ax == 0) return FAIL("axis cannot be the batch dimension");
    for (int d = 0; d < rank; d++)
        if (d == ax ? U->dims[d] > Pc->dims[d] : U->dims[d] != Pc->dims[d])
            return FAIL("update shape does not fit past_cache at dimension %d", d);
    int64_t B = Pc->dims[0], maxs = Pc->dims[ax], seq = U->dims[ax];
    if (WI && (WI->ndim != 1 || WI->dims[0] != B || !onyx_dtype_is_signed_int(WI->dtype)))
        return FAIL("write_indices must be an integer tensor of shape (%lld)", (long long)B);
    onyx_tensor *Y;
    onyx_status st = onyx_exec_output(x, 0, Pc->dtype, rank, Pc->dims, &Y);
    if (st) return st;
    int64_t count = onyx_tensor_count(Y);
    if (count == 0) return ONYX_OK;
    size_t es = onyx_dtype_size(Pc->dtype);
    memcpy(Y->data, Pc->data, es * (size_t)count);
    int64_t inner = 1, prefix = 1;
    for (int d = (int)ax + 1; d < rank; d++)
        inner *= Pc->dims[d];
    for (int d = 1; d < ax; d++)
        prefix *= Pc->dims[d];
    for (int64_t b = 0; b < B; b++) {
        int64_t w = WI ? onyx_tensor_get_i64(WI, b) : 0;
        if (!a->circular && (w < 0 || w > maxs - seq)) {
            if (Y->dtype == ONYX_DTYPE_STRING) memset(Y->data, 0, es * (size_t)count);
            return FAIL("write_indices[%lld] = %lld: %lld updates do not fit %lld positions",
                        (long long)b, (long long)w, (long long)seq, (long long)maxs);
        }
        for (int64_t pi = 0; pi < prefix; pi++) {
            int64_t outer = b * prefix + pi;
            for (int64_t s = 0; s < seq; s++) {
                int64_t pos = a->circular ? (((w % maxs) + maxs) % maxs + s) % maxs : w + s;
                memcpy((char *)Y->data + (size_t)((outer * maxs + pos) * inner) * es,
                       (const char *)U->data + (size_t)((outer * seq + s) * inner) * es,
                       (size_t)inner * es);
            }
        }
    }
    return own_strings(x, Y);
}

// ----------------------------------------------------------------------------
// Registry rows

#define T_F3 (ONYX_T(ONYX_DTYPE_FLOAT) | ONYX_T(ONYX_DTYPE_DOUBLE) | ONYX_T(ONYX_DTYPE_FLOAT16))
#define T_F4 (T_F3 | ONYX_T(ONYX_DTYPE_BFLOAT16))
#define T_GS (ONYX_T_NUMERIC | ONYX_T(ONYX_DTYPE_BOOL))

const onyx_op_schema onyx_ops_spatial[] = {
    {"", "GridSample", 16, 2, 2, 1, 1, T_GS, init_grid_sample, run_grid_sample, 0},
    {"", "GridSample", 20, 2, 2, 1, 1, T_GS, init_grid_sample, run_grid_sample, 0},
    {"", "GridSample", 22, 2, 2, 1, 1, T_GS, init_grid_sample, run_grid_sample, 0},
    {"", "AffineGrid", 20, 2, 2, 1, 1, T_F4, init_affine_grid, run_affine_grid, 0},
    {"", "RoiAlign", 10, 3, 3, 1, 1, T_F3, init_roi_align, run_roi_align, 0},
    {"", "RoiAlign", 16, 3, 3, 1, 1, T_F3, init_roi_align, run_roi_align, 0},
    {"", "RoiAlign", 22, 3, 3, 1, 1, T_F4, init_roi_align, run_roi_align, 0},
    {"", "MaxRoiPool", 1, 2, 2, 1, 1, T_F3, init_max_roi_pool, run_max_roi_pool, 0},
    {"", "MaxRoiPool", 22, 2, 2, 1, 1, T_F4, init_max_roi_pool, run_max_roi_pool, 0},
    {"", "NonMaxSuppression", 10, 2, 5, 1, 1, ONYX_T(ONYX_DTYPE_FLOAT), init_nms, run_nms, 0},
    {"", "NonMaxSuppression", 11, 2, 5, 1, 1, ONYX_T(ONYX_DTYPE_FLOAT), init_nms, run_nms, 0},
    {"", "Col2Im", 18, 3, 3, 1, 1, ONYX_T_NUMERIC, init_col2im, run_col2im, 0},
    {"", "CenterCropPad", 18, 2, 2, 1, 1, ONYX_T_ALL, init_center_crop_pad, run_center_crop_pad, 0},
    {"", "DeformConv", 19, 3, 5, 1, 1, T_F3, init_deform_conv, run_deform_conv, 0},
    {"", "DeformConv", 22, 3, 5, 1, 1, T_F4, init_deform_conv, run_deform_conv, 0},
    {"", "TensorScatter", 24, 2, 3, 1, 1, ONYX_T_ALL, init_tensor_scatter, run_tensor_scatter, 0},
    {0},
};
