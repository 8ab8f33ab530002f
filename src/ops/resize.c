/* resize.c - Resize (opsets 10-19) and the deprecated Upsample (7, 9).
 *
 * Every resized axis gets a table of taps (input index, weight) per output
 * coordinate, computed once per run from the coordinate transformation and
 * the interpolation kernel; the taps follow the ONNX reference exactly
 * (edge-clamped neighbours, antialias filters stretched by 1/scale,
 * exclude_outside renormalization). Linear and cubic resample axis by axis
 * in float (the filters are separable); nearest is a pure index gather,
 * so it serves every element type without conversion.
 * Does not own: image preprocessing resize (src/io/, which matches Pillow). */
#include "core/op.h"
#include "ops/util.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(...) onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, __VA_ARGS__)

typedef enum interp { INTERP_NEAREST, INTERP_LINEAR, INTERP_CUBIC, INTERP_COUNT } interp;
typedef enum ctm {
    CTM_HALF_PIXEL,
    CTM_HALF_PIXEL_SYMMETRIC,
    CTM_PYTORCH_HALF_PIXEL,
    CTM_ALIGN_CORNERS,
    CTM_ASYMMETRIC,
    CTM_TF_CROP_AND_RESIZE,
    CTM_TF_HALF_PIXEL_FOR_NN,
    CTM_COUNT
} ctm;
typedef enum nearest_mode {
    NEAREST_ROUND_PREFER_FLOOR,
    NEAREST_ROUND_PREFER_CEIL,
    NEAREST_FLOOR,
    NEAREST_CEIL,
    NEAREST_SIMPLE, /* Resize-10 and Upsample: ceil when downsampling, else floor */
    NEAREST_MODE_COUNT
} nearest_mode;
typedef enum aspect { ASPECT_STRETCH, ASPECT_NOT_LARGER, ASPECT_NOT_SMALLER, ASPECT_COUNT } aspect;

static const char *const interp_names[INTERP_COUNT] = {"nearest", "linear", "cubic"};
static const char *const ctm_names[CTM_COUNT] = {
    "half_pixel",    "half_pixel_symmetric", "pytorch_half_pixel",  "align_corners",
    "asymmetric",    "tf_crop_and_resize",   "tf_half_pixel_for_nn",
};
static const char *const nearest_names[NEAREST_MODE_COUNT - 1] = {"round_prefer_floor", "round_prefer_ceil",
                                                                  "floor", "ceil"};
static const char *const aspect_names[ASPECT_COUNT] = {"stretch", "not_larger", "not_smaller"};

typedef struct resize_attrs {
    interp mode;
    ctm ctm;
    nearest_mode nearest;
    aspect policy;
    double cubic_a, extrapolation;
    bool exclude_outside, antialias;
    const int64_t *axes;  /* opset 18+ */
    int64_t n_axes;       /* -1: all axes */
    const float *scales;  /* Upsample-7 attribute */
    int64_t n_scales;     /* -1: from an input */
    int roi_in, scales_in, sizes_in; /* input indices, -1 when the version has none */
} resize_attrs;

/* Index of `s` in names[0..n), or -1. */
static onyx_status resize_init(onyx_node *n, onyx_error *err) {
    resize_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    bool upsample = strcmp(n->op_type, "Upsample") == 0;
    bool v10 = upsample || n->opset < 11; /* the original Upsample semantics */
    const char *s = onyx_attr_string(n, "mode", "nearest");
    int m = onyx_op_lookup(s, interp_names, INTERP_COUNT);
    if (m < 0 && v10 && strcmp(s, "bilinear") == 0) m = INTERP_LINEAR;
    if (m < 0 || (v10 && m == INTERP_CUBIC))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'mode' is '%s'", s);
    a->mode = (interp)m;
    a->ctm = CTM_ASYMMETRIC;
    a->nearest = NEAREST_SIMPLE;
    a->cubic_a = -0.75;
    a->n_axes = -1;
    a->n_scales = -1;
    a->roi_in = a->scales_in = a->sizes_in = -1;
    if (v10) {
        if (upsample && n->opset < 9) {
            a->n_scales = onyx_attr_floats(n, "scales", &a->scales);
            if (a->n_scales < 0) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'scales' is required");
        } else {
            a->scales_in = 1;
        }
        n->state = a;
        return ONYX_OK;
    }
    a->roi_in = 1;
    a->scales_in = 2;
    a->sizes_in = 3;
    s = onyx_attr_string(n, "coordinate_transformation_mode", "half_pixel");
    int c = onyx_op_lookup(s, ctm_names, CTM_COUNT);
    if (c < 0 || (c == CTM_HALF_PIXEL_SYMMETRIC && n->opset < 19) || (c == CTM_TF_HALF_PIXEL_FOR_NN && n->opset >= 13))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'coordinate_transformation_mode' is '%s'", s);
    a->ctm = (ctm)c;
    s = onyx_attr_string(n, "nearest_mode", "round_prefer_floor");
    int nm = onyx_op_lookup(s, nearest_names, NEAREST_MODE_COUNT - 1);
    if (nm < 0) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'nearest_mode' is '%s'", s);
    a->nearest = (nearest_mode)nm;
    a->cubic_a = onyx_attr_float(n, "cubic_coeff_a", -0.75f);
    a->exclude_outside = onyx_attr_int(n, "exclude_outside", 0) != 0;
    a->extrapolation = onyx_attr_float(n, "extrapolation_value", 0.0f);
    if (n->opset >= 18) {
        a->antialias = onyx_attr_int(n, "antialias", 0) != 0;
        s = onyx_attr_string(n, "keep_aspect_ratio_policy", "stretch");
        int p = onyx_op_lookup(s, aspect_names, ASPECT_COUNT);
        if (p < 0) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'keep_aspect_ratio_policy' is '%s'", s);
        a->policy = (aspect)p;
        a->n_axes = onyx_attr_ints(n, "axes", &a->axes);
        if (a->n_axes > ONYX_MAX_DIMS) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'axes' is too long");
    }
    if (a->antialias && a->mode == INTERP_NEAREST)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'antialias' needs mode linear or cubic");
    n->state = a;
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* Taps                                                                    */

typedef struct axis_taps {
    int64_t *first;  /* (out + 1) offsets into idx/w; first[i]..first[i+1] */
    int64_t *idx;    /* input indices, clamped to [0, in) */
    float *w;
    bool *extrap;    /* (out) output i takes the extrapolation value */
    bool identity;   /* every output i reads input i with weight 1 */
} axis_taps;

/* x_original for output coordinate xo along an axis (reference formulas;
 * out_w is scale * in, which may be fractional). */
static double original_coord(const resize_attrs *a, double xo, double scale, int64_t in, int64_t out,
                             double roi0, double roi1) {
    double out_w = scale * (double)in;
    switch (a->ctm) {
    case CTM_ALIGN_CORNERS: return out_w == 1 ? 0.0 : xo * (double)(in - 1) / (out_w - 1);
    case CTM_ASYMMETRIC: return xo / scale;
    case CTM_TF_CROP_AND_RESIZE:
        return (out_w == 1 ? (roi1 - roi0) * (double)(in - 1) / 2 : xo * (roi1 - roi0) * (double)(in - 1) / (out_w - 1)) +
               roi0 * (double)(in - 1);
    case CTM_PYTORCH_HALF_PIXEL: return out > 1 ? (xo + 0.5) / scale - 0.5 : 0.0;
    case CTM_HALF_PIXEL_SYMMETRIC: {
        double adjustment = (double)out / out_w, center = (double)in / 2;
        return center * (1 - adjustment) + (xo + 0.5) / scale - 0.5;
    }
    case CTM_TF_HALF_PIXEL_FOR_NN: return (xo + 0.5) / scale;
    default: return (xo + 0.5) / scale - 0.5;
    }
}

static double cubic_kernel(double x, double A) {
    x = fabs(x);
    if (x <= 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
    if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    return 0.0;
}

/* Builds the taps of one axis. Memory comes from exec scratch. */
static onyx_status build_taps(onyx_exec *x, const resize_attrs *a, int64_t in, int64_t out, double scale,
                              double roi0, double roi1, axis_taps *t) {
    /* Taps per output: 1 (nearest), 2 (linear), 4 (cubic), or the stretched
     * antialias footprint. */
    int64_t per = 1, start = 0;
    double s = scale < 1 ? scale : 1;
    if (a->mode == INTERP_LINEAR) {
        start = a->antialias ? (int64_t)floor(-1 / s) + 1 : 0;
        per = 2 - 2 * start;
    } else if (a->mode == INTERP_CUBIC) {
        start = a->antialias ? (int64_t)floor(-2 / s) + 1 : -1;
        per = 2 - 2 * start;
    }
    /* out * per stays near 2-4x max(in, out): a small scale means few outputs. */
    if (per > INT32_MAX || out > INT64_MAX / 16 / per) return FAIL("output too large");
    size_t ntaps = (size_t)(out * per);
    char *mem = onyx_exec_scratch(x, (size_t)(out + 1) * sizeof(int64_t) + ntaps * (sizeof(int64_t) + sizeof(float)) +
                                         (size_t)out * sizeof(bool) + 16);
    double *wbuf = onyx_exec_scratch(x, (size_t)per * sizeof(double));
    if (!mem || !wbuf) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    t->first = (int64_t *)(void *)mem;
    t->idx = t->first + out + 1;
    t->w = (float *)(void *)(t->idx + ntaps);
    t->extrap = (bool *)(t->w + ntaps);
    t->identity = in == out;
    int64_t k = 0;
    for (int64_t o = 0; o < out; o++) {
        t->first[o] = k;
        double xo = original_coord(a, (double)o, scale, in, out, roi0, roi1);
        t->extrap[o] = a->ctm == CTM_TF_CROP_AND_RESIZE && (xo < 0 || xo > (double)(in - 1));
        if (t->extrap[o]) {
            t->identity = false;
            continue;
        }
        if (a->mode == INTERP_NEAREST) {
            int64_t i;
            double fl = floor(xo), r = xo - fl;
            switch (a->nearest) {
            case NEAREST_SIMPLE: i = scale < 1 ? (int64_t)ceil(xo) : (int64_t)xo; break;
            case NEAREST_FLOOR: i = (int64_t)fl; break;
            case NEAREST_CEIL: i = (int64_t)ceil(xo); break;
            case NEAREST_ROUND_PREFER_CEIL: i = (int64_t)(r < 0.5 ? fl : ceil(xo)); break;
            default: i = (int64_t)(r <= 0.5 ? fl : ceil(xo)); break;
            }
            i = i < 0 ? 0 : i >= in ? in - 1 : i;
            t->idx[k] = i;
            t->w[k++] = 1.0f;
            if (i != o) t->identity = false;
            continue;
        }
        /* x0 is the tap at offset 0; an integral coordinate counts as ratio 1
         * of the cell below it, as the reference does. */
        double fl = floor(xo);
        double ratio = xo == fl ? 1.0 : xo - fl;
        int64_t x0 = (int64_t)fl - (xo == fl ? 1 : 0);
        int64_t np = per;
        double sum = 0;
        for (int64_t j = 0; j < np; j++) {
            double off = (double)(start + j), w;
            if (a->mode == INTERP_LINEAR) {
                w = a->antialias ? 1 - fabs((off - ratio) * s) : (j == 0 ? 1 - ratio : ratio);
                if (w < 0) w = 0;
            } else if (a->antialias) {
                w = cubic_kernel(s * (off - ratio), a->cubic_a);
            } else {
                w = cubic_kernel(off - ratio, a->cubic_a);
            }
            int64_t pos = x0 + start + j;
            if (a->exclude_outside && (pos < 0 || pos >= in)) w = 0;
            wbuf[j] = w;
            sum += w;
        }
        bool normalize = a->antialias || a->exclude_outside;
        for (int64_t j = 0; j < np; j++) {
            int64_t pos = x0 + start + j;
            double w = normalize && sum != 0 ? wbuf[j] / sum : wbuf[j];
            if (w == 0) continue;
            t->idx[k] = pos < 0 ? 0 : pos >= in ? in - 1 : pos;
            t->w[k++] = (float)w;
        }
        if (k - t->first[o] != 1 || t->idx[k - 1] != o || t->w[k - 1] != 1.0f) t->identity = false;
    }
    t->first[out] = k;
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* Resampling                                                              */

/* One separable pass along an axis: src (outer, in, inner) -> dst (outer, out, inner). */
typedef struct pass_job {
    const float *src;
    float *dst;
    int64_t in, out, inner;
    const axis_taps *t;
    float extrap;
} pass_job;

static void pass_rows(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const pass_job *j = ctx;
    int64_t inner = j->inner;
    for (int64_t r = begin; r < end; r++) { /* r = o * out + i */
        int64_t o = r / j->out, i = r % j->out;
        float *d = j->dst + r * inner;
        if (j->t->extrap[i]) {
            for (int64_t e = 0; e < inner; e++) d[e] = j->extrap;
            continue;
        }
        const float *base = j->src + o * j->in * inner;
        int64_t k0 = j->t->first[i], k1 = j->t->first[i + 1];
        if (inner == 1) {
            float acc = 0;
            for (int64_t k = k0; k < k1; k++) acc += j->t->w[k] * base[j->t->idx[k]];
            d[0] = acc;
            continue;
        }
        for (int64_t e = 0; e < inner; e++) d[e] = 0;
        for (int64_t k = k0; k < k1; k++) {
            float w = j->t->w[k];
            const float *s = base + j->t->idx[k] * inner;
            for (int64_t e = 0; e < inner; e++) d[e] += w * s[e];
        }
    }
}

/* Nearest: a gather of whole elements through the per-axis index maps. An
 * output row whose source row equals the previous one (upsampling) is a
 * copy of the previous output row. */
#define GATHER_ROW(T)                                                            \
    do {                                                                         \
        T *d = (T *)(void *)o;                                                   \
        const T *sr = (const T *)(const void *)srow;                             \
        T fv;                                                                    \
        memcpy(&fv, fill, sizeof fv);                                            \
        for (int64_t j = 0; j < W; j++) d[j] = lidx[j] < 0 ? fv : sr[lidx[j]];   \
    } while (0)

static onyx_status nearest_gather(onyx_exec *x, const onyx_tensor *in, onyx_tensor *out, axis_taps *t,
                                  const char *fill) {
    int r = in->ndim;
    size_t es = onyx_dtype_size(in->dtype);
    int64_t istr[ONYX_MAX_DIMS], s = 1;
    for (int k = r - 1; k >= 0; k--) {
        istr[k] = s;
        s *= in->dims[k];
    }
    int64_t total = onyx_tensor_count(out);
    if (total == 0) return ONYX_OK;
    if (r == 0) {
        memcpy(out->data, in->data, es);
        return ONYX_OK;
    }
    int64_t W = out->dims[r - 1], rows = total / W, pos[ONYX_MAX_DIMS] = {0};
    const axis_taps *tl = &t[r - 1];
    int64_t *lidx = onyx_exec_scratch(x, (size_t)W * sizeof *lidx);
    if (!lidx) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t j = 0; j < W; j++) lidx[j] = tl->extrap[j] ? -1 : tl->idx[tl->first[j]];
    char *o = out->data;
    size_t rowbytes = (size_t)W * es;
    int64_t prev_src = -1;
    bool prev_ex = false;
    for (int64_t row = 0; row < rows; row++, o += rowbytes) {
        int64_t src = 0;
        bool ex = false;
        for (int k = 0; k < r - 1; k++) {
            if (t[k].extrap[pos[k]]) ex = true;
            else src += t[k].idx[t[k].first[pos[k]]] * istr[k];
        }
        if (row > 0 && src == prev_src && ex == prev_ex) {
            memcpy(o, o - rowbytes, rowbytes);
        } else if (ex) {
            for (int64_t j = 0; j < W; j++) memcpy(o + j * (int64_t)es, fill, es);
        } else {
            const char *srow = (const char *)in->data + (size_t)src * es;
            switch (es) {
            case 1: GATHER_ROW(uint8_t); break;
            case 2: GATHER_ROW(uint16_t); break;
            case 4: GATHER_ROW(uint32_t); break;
            case 8: GATHER_ROW(uint64_t); break;
            default:
                for (int64_t j = 0; j < W; j++)
                    memcpy(o + j * (int64_t)es, lidx[j] < 0 ? fill : srow + lidx[j] * (int64_t)es, es);
            }
        }
        prev_src = src;
        prev_ex = ex;
        for (int k = r - 2; k >= 0; k--) {
            if (++pos[k] < out->dims[k]) break;
            pos[k] = 0;
        }
        if ((row & 4095) == 4095 && onyx_exec_aborted(x)) return onyx_exec_fail(x, ONYX_ERR_CANCELLED, "cancelled");
    }
    if (in->dtype == ONYX_DTYPE_STRING) {
        char **sp = out->data;
        for (int64_t i = 0; i < total; i++) {
            if (!sp[i]) continue;
            char *c = strdup(sp[i]);
            if (!c) {
                for (int64_t j = i; j < total; j++) sp[j] = NULL;
                return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
            }
            sp[i] = c;
        }
    }
    return ONYX_OK;
}

/* Integer limits for the final saturating, round-half-to-even store. */
static bool int_range(onyx_dtype t, double *lo, double *hi) {
    switch (t) {
    case ONYX_DTYPE_INT8: *lo = INT8_MIN, *hi = INT8_MAX; return true;
    case ONYX_DTYPE_UINT8: *lo = 0, *hi = UINT8_MAX; return true;
    case ONYX_DTYPE_INT16: *lo = INT16_MIN, *hi = INT16_MAX; return true;
    case ONYX_DTYPE_UINT16: *lo = 0, *hi = UINT16_MAX; return true;
    case ONYX_DTYPE_INT32: *lo = INT32_MIN, *hi = INT32_MAX; return true;
    case ONYX_DTYPE_UINT32: *lo = 0, *hi = UINT32_MAX; return true;
    case ONYX_DTYPE_INT64: *lo = -9223372036854775808.0, *hi = 9223372036854774784.0; return true;
    case ONYX_DTYPE_UINT64: *lo = 0, *hi = 18446744073709549568.0; return true;
    default: return false;
    }
}

static onyx_status resize_run(const onyx_node *n, onyx_exec *x) {
    const resize_attrs *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return FAIL("missing input");
    int r = in->ndim;
    const onyx_tensor *tr = a->roi_in >= 0 ? onyx_exec_input(x, a->roi_in) : NULL;
    const onyx_tensor *ts = a->scales_in >= 0 ? onyx_exec_input(x, a->scales_in) : NULL;
    const onyx_tensor *tz = a->sizes_in >= 0 ? onyx_exec_input(x, a->sizes_in) : NULL;
    if (ts && onyx_tensor_count(ts) == 0) ts = NULL;
    if (tz && onyx_tensor_count(tz) == 0) tz = NULL;
    if (a->n_scales < 0 && !ts && !tz) return FAIL("one of scales and sizes is required");
    if (ts && tz) return FAIL("only one of scales and sizes may be given");

    /* Axes the scales/sizes/roi refer to. */
    int axes[ONYX_MAX_DIMS], na = r;
    if (a->n_axes >= 0) {
        onyx_status st = onyx_op_read_axes(x, a->axes, a->n_axes, NULL, r, axes, &na);
        if (st) return st;
    } else {
        for (int i = 0; i < r; i++) axes[i] = i;
    }
    double scale[ONYX_MAX_DIMS], roi0[ONYX_MAX_DIMS], roi1[ONYX_MAX_DIMS];
    int64_t odims[ONYX_MAX_DIMS];
    for (int k = 0; k < r; k++) {
        scale[k] = 1;
        odims[k] = in->dims[k];
        roi0[k] = 0;
        roi1[k] = 1;
    }
    if (tz) {
        if (onyx_tensor_count(tz) != na) return FAIL("sizes has %lld entries for %d axes", (long long)onyx_tensor_count(tz), na);
        for (int i = 0; i < na; i++) {
            int k = axes[i];
            int64_t v = onyx_tensor_get_i64(tz, i);
            if (v < 0 || v > INT32_MAX) return FAIL("sizes[%d] = %lld is invalid", i, (long long)v);
            if (in->dims[k] == 0 && v != 0) return FAIL("cannot resize an empty axis to %lld", (long long)v);
            odims[k] = v;
            scale[k] = in->dims[k] ? (double)v / (double)in->dims[k] : 1.0;
        }
        if (a->policy != ASPECT_STRETCH) {
            double p = a->policy == ASPECT_NOT_LARGER ? INFINITY : 0;
            for (int i = 0; i < na; i++) {
                double sc = scale[axes[i]];
                p = a->policy == ASPECT_NOT_LARGER ? (sc < p ? sc : p) : (sc > p ? sc : p);
            }
            for (int i = 0; i < na; i++) {
                int k = axes[i];
                scale[k] = p;
                odims[k] = (int64_t)(p * (double)in->dims[k] + 0.5);
            }
        }
    } else {
        int64_t cnt = ts ? onyx_tensor_count(ts) : a->n_scales;
        if (cnt != na) return FAIL("scales has %lld entries for %d axes", (long long)cnt, na);
        for (int i = 0; i < na; i++) {
            int k = axes[i];
            double v = ts ? onyx_tensor_get_f64(ts, i) : a->scales[i];
            if (!(v > 0) || v > 1e6) return FAIL("scales[%d] = %g is invalid", i, v);
            scale[k] = v;
            double o = floor(v * (double)in->dims[k]);
            if (o > INT32_MAX) return FAIL("output too large");
            odims[k] = (int64_t)o;
        }
    }
    if (a->ctm == CTM_TF_CROP_AND_RESIZE) {
        if (!tr || onyx_tensor_count(tr) != 2 * na) return FAIL("roi must have %d entries", 2 * na);
        for (int i = 0; i < na; i++) {
            roi0[axes[i]] = onyx_tensor_get_f64(tr, i);
            roi1[axes[i]] = onyx_tensor_get_f64(tr, i + na);
        }
    }
    onyx_tensor *out;
    onyx_status st = onyx_exec_output(x, 0, in->dtype, r, odims, &out);
    if (st) return st;
    if (onyx_tensor_count(out) == 0) return ONYX_OK;

    axis_taps taps[ONYX_MAX_DIMS];
    for (int k = 0; k < r; k++) {
        st = build_taps(x, a, in->dims[k], odims[k], scale[k], roi0[k], roi1[k], &taps[k]);
        if (st) return st;
    }

    if (a->mode == INTERP_NEAREST) {
        char fill[16] = {0};
        if (in->dtype != ONYX_DTYPE_STRING && a->extrapolation != 0) {
            double ev = a->extrapolation;
            st = onyx_convert(in->dtype, fill, ONYX_DTYPE_DOUBLE, &ev, 1, true);
            if (st) return onyx_exec_fail(x, st, "cannot convert extrapolation_value");
        }
        return nearest_gather(x, in, out, taps, fill);
    }

    if (in->dtype == ONYX_DTYPE_STRING || in->dtype == ONYX_DTYPE_BOOL)
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "%s interpolation of %s", interp_names[a->mode],
                              onyx_dtype_name(in->dtype));
    /* Separable passes in float. Axes that shrink go first (less data for
     * the rest); among equals the last axis goes first, since its pass
     * (inner size 1) costs per output element. Float input is read in place
     * and float output written in place; otherwise two scratch buffers,
     * sized for the largest intermediate, hold the converted data. */
    int order[ONYX_MAX_DIMS], np = 0;
    for (int k = r - 1; k >= 0; k--)
        if (!taps[k].identity) order[np++] = k;
    for (int i = 1; i < np; i++)
        for (int j = i; j > 0 && scale[order[j]] < scale[order[j - 1]]; j--) {
            int tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
    int64_t cur[ONYX_MAX_DIMS], maxc = onyx_tensor_count(in), c = maxc;
    memcpy(cur, in->dims, sizeof cur);
    for (int i = 0; i < np; i++) {
        int k = order[i];
        c = c / cur[k] * odims[k];
        cur[k] = odims[k];
        if (c > maxc) maxc = c;
    }
    bool fin = in->dtype == ONYX_DTYPE_FLOAT;
    double lo, hi;
    bool is_int = int_range(in->dtype, &lo, &hi);
    float *b0 = onyx_exec_scratch(x, (size_t)maxc * sizeof(float));
    float *b1 = onyx_exec_scratch(x, (size_t)maxc * sizeof(float));
    if (!b0 || !b1) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    const float *src = in->data;
    if (!fin) {
        st = onyx_convert(ONYX_DTYPE_FLOAT, b0, in->dtype, in->data, onyx_tensor_count(in), false);
        if (st) return onyx_exec_fail(x, st, "cannot convert the input to float");
        src = b0;
    }
    memcpy(cur, in->dims, sizeof cur);
    for (int i = 0; i < np; i++) {
        int k = order[i];
        float *dst = fin && i == np - 1 ? (float *)out->data : src == b0 ? b1 : b0;
        pass_job j = {.src = src, .dst = dst, .in = cur[k], .out = odims[k], .t = &taps[k],
                      .extrap = (float)a->extrapolation};
        int64_t outer = onyx_op_prod(cur, 0, k), inner = onyx_op_prod(cur, k + 1, r);
        j.inner = inner;
        onyx_exec_parallel(x, outer * odims[k], inner >= 256 ? 1 : 256 / inner, pass_rows, &j);
        cur[k] = odims[k];
        src = dst;
        if (onyx_exec_aborted(x)) return onyx_exec_fail(x, ONYX_ERR_CANCELLED, "cancelled");
    }
    int64_t total = onyx_tensor_count(out);
    if (fin) {
        if (np == 0) memcpy(out->data, in->data, (size_t)total * sizeof(float));
        return ONYX_OK;
    }
    float *res = (float *)src;
    if (is_int) {
        for (int64_t i = 0; i < total; i++) {
            double v = nearbyint((double)res[i]);
            res[i] = (float)(v < lo ? lo : v > hi ? hi : v);
        }
    }
    st = onyx_convert(in->dtype, out->data, ONYX_DTYPE_FLOAT, res, total, true);
    if (st) return onyx_exec_fail(x, st, "cannot store the output");
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* Registry rows                                                           */

#define RT (ONYX_T_NUMERIC | ONYX_T(ONYX_DTYPE_BOOL) | ONYX_T(ONYX_DTYPE_STRING))
#define ROW(op, v, mi, xi) {"", op, v, mi, xi, 1, 1, RT, resize_init, resize_run}

const onyx_op_schema onyx_ops_resize[] = {
    ROW("Upsample", 7, 1, 1),
    ROW("Upsample", 9, 2, 2),
    ROW("Resize", 10, 2, 2),
    ROW("Resize", 11, 3, 4),
    ROW("Resize", 13, 1, 4),
    ROW("Resize", 18, 1, 4),
    ROW("Resize", 19, 1, 4),
    {0},
};
