/* image_resize.c - resampling 8-bit images exactly as Pillow's Image.resize
 * does: libImaging/Resample.c's separable convolution for bilinear/bicubic
 * (same coefficients, same 22-bit fixed point, same rounding and clipping,
 * same order of the two passes) and Geometry.c's scaling affine map for nearest.
 *
 * Owns: onyx_image_resize and the filter names. Does not own: mode
 * conversion, cropping or normalization (preprocess.c).
 */
#include "base/error.h"
#include "io/preprocess.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Pillow keeps 8 bits for the result and 2 for overflow of negative lobes in
 * a 32-bit accumulator: coefficients are scaled by 2^22. */
#define PRECISION_BITS (32 - 8 - 2)

static const char *const filter_names[] = {"nearest", "bilinear", "bicubic"};
_Static_assert(sizeof filter_names / sizeof filter_names[0] == ONYX_RESIZE_FILTER_COUNT,
               "one name per filter");

const char *onyx_resize_filter_name(onyx_resize_filter f) {
    return (unsigned)f < ONYX_RESIZE_FILTER_COUNT ? filter_names[f] : "unknown";
}

bool onyx_resize_filter_parse(const char *s, onyx_resize_filter *out) {
    for (int i = 0; i < ONYX_RESIZE_FILTER_COUNT; i++)
        if (strcmp(s, filter_names[i]) == 0) {
            *out = (onyx_resize_filter)i;
            return true;
        }
    return false;
}

// ----------------------------------------------------------------------------
// Filters (Resample.c: bilinear_filter, bicubic_filter)

static double bilinear_filter(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double bicubic_filter(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* Per output pixel of one axis: the first input pixel and the number of taps
 * (`bounds`, (out_size, 2)), and the fixed-point weights (`k`,
 * (out_size, ksize), zero past the taps). */
typedef struct coeffs {
    int ksize;
    int *bounds; /* (out_size, 2): xmin, count */
    int32_t *k;  /* (out_size, ksize) */
} coeffs;

static void coeffs_free(coeffs *c) {
    free(c->bounds);
    free(c->k);
    c->bounds = NULL;
    c->k = NULL;
}

/* Resample.c's precompute_coeffs for the box [0, in_size) followed by
 * normalize_coeffs_8bpc, with `antialias` false keeping the support at the
 * filter's own (filterscale 1). The float arithmetic is the same, in the same
 * order, so the rounded weights are the same. */
static onyx_status precompute(int in_size, int out_size, onyx_resize_filter f, bool antialias,
                              coeffs *c, onyx_error *err) {
    double (*filter)(double) = f == ONYX_RESIZE_BILINEAR ? bilinear_filter : bicubic_filter;
    double fsupport = f == ONYX_RESIZE_BILINEAR ? 1.0 : 2.0;
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 || !antialias ? 1.0 : scale;
    double support = fsupport * filterscale;
    double kcount = ceil(support) * 2 + 1;
    if (kcount > (double)(1 << 30) || kcount * out_size > (double)(SIZE_MAX / 8 / 2))
        return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "resize %d -> %d: filter too large",
                           in_size, out_size);
    int ksize = (int)kcount;
    double *pre = malloc((size_t)ksize * sizeof *pre); /* (ksize) weights of one pixel */
    c->ksize = ksize;
    c->bounds = malloc((size_t)out_size * 2 * sizeof *c->bounds);
    c->k = calloc((size_t)out_size * (size_t)ksize, sizeof *c->k);
    if (!pre || !c->bounds || !c->k) {
        free(pre);
        coeffs_free(c);
        return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory resizing %d -> %d", in_size,
                           out_size);
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale;
        double ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5); /* truncation, as Pillow */
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            double w = filter((x + xmin - center + 0.5) * ss);
            pre[x] = w;
            ww += w;
        }
        int32_t *k = c->k + (size_t)xx * (size_t)ksize;
        for (int x = 0; x < xmax; x++) {
            double w = ww != 0.0 ? pre[x] / ww : pre[x];
            k[x] = w < 0 ? (int32_t)(-0.5 + w * (1 << PRECISION_BITS))
                         : (int32_t)(0.5 + w * (1 << PRECISION_BITS));
        }
        c->bounds[2 * xx] = xmin;
        c->bounds[2 * xx + 1] = xmax;
    }
    free(pre);
    return ONYX_OK;
}

/* clip8: the accumulator (rounding bias included) shifted down and clamped. */
static inline uint8_t clip8(int64_t ss) {
    if (ss < 0) return 0;
    ss >>= PRECISION_BITS;
    return ss > 255 ? 255 : (uint8_t)ss;
}

/* Horizontal pass: rows [y0, y0 + rows) of `src` ((src_h, in_w, ch)) into
 * `dst` ((rows, out_w, ch)). */
static void pass_horizontal(const uint8_t *src, int in_w, int ch, int y0, int rows, uint8_t *dst,
                            int out_w, const coeffs *c) {
    for (int yy = 0; yy < rows; yy++) {
        const uint8_t *row = src + ((size_t)(yy + y0) * (size_t)in_w) * (size_t)ch;
        uint8_t *out = dst + (size_t)yy * (size_t)out_w * (size_t)ch;
        for (int xx = 0; xx < out_w; xx++) {
            int xmin = c->bounds[2 * xx], n = c->bounds[2 * xx + 1];
            const int32_t *k = c->k + (size_t)xx * (size_t)c->ksize;
            const uint8_t *p = row + (size_t)xmin * (size_t)ch;
            for (int ci = 0; ci < ch; ci++) {
                int64_t ss = 1 << (PRECISION_BITS - 1);
                for (int x = 0; x < n; x++)
                    ss += (int64_t)p[(size_t)x * (size_t)ch + (size_t)ci] * k[x];
                out[(size_t)xx * (size_t)ch + (size_t)ci] = clip8(ss);
            }
        }
    }
}

/* Vertical pass: `src` ((src_h, w, ch)) into `dst` ((out_h, w, ch)); the
 * bounds are relative to src's first row minus `shift`. */
static void pass_vertical(const uint8_t *src, int w, int ch, int shift, uint8_t *dst, int out_h,
                          const coeffs *c) {
    size_t stride = (size_t)w * (size_t)ch;
    for (int yy = 0; yy < out_h; yy++) {
        int ymin = c->bounds[2 * yy] - shift, n = c->bounds[2 * yy + 1];
        const int32_t *k = c->k + (size_t)yy * (size_t)c->ksize;
        const uint8_t *base = src + (size_t)ymin * stride;
        uint8_t *out = dst + (size_t)yy * stride;
        for (size_t i = 0; i < stride; i++) {
            int64_t ss = 1 << (PRECISION_BITS - 1);
            for (int y = 0; y < n; y++)
                ss += (int64_t)base[(size_t)y * stride + i] * k[y];
            out[i] = clip8(ss);
        }
    }
}

/* Bytes of a w x h x ch image, or 0 on overflow. */
static size_t image_bytes(int w, int h, int ch) {
    size_t n = (size_t)w;
    if ((size_t)h > SIZE_MAX / n) return 0;
    n *= (size_t)h;
    if ((size_t)ch > SIZE_MAX / n) return 0;
    return n * (size_t)ch;
}

/* Geometry.c's ImagingScaleAffine for the matrix Image.resize builds: the
 * source coordinate of output pixel x is trunc(s/2 + x*s), s = in/out,
 * accumulated in double as Pillow does. */
static void resize_nearest(const onyx_image *in, onyx_image *out, int *xtab) {
    int ch = in->channels;
    double ax = (double)in->width / out->width, ay = (double)in->height / out->height;
    double xo = ax * 0.5, yo = ay * 0.5;
    for (int x = 0; x < out->width; x++) {
        int xi = xo < 0.0 ? -1 : (int)xo;
        xtab[x] = xi < 0 ? 0 : xi >= in->width ? in->width - 1 : xi;
        xo += ax;
    }
    for (int y = 0; y < out->height; y++) {
        int yi = yo < 0.0 ? -1 : (int)yo;
        if (yi < 0) yi = 0;
        if (yi >= in->height) yi = in->height - 1;
        const uint8_t *row = in->pixels + (size_t)yi * (size_t)in->width * (size_t)ch;
        uint8_t *o = out->pixels + (size_t)y * (size_t)out->width * (size_t)ch;
        for (int x = 0; x < out->width; x++)
            memcpy(o + (size_t)x * (size_t)ch, row + (size_t)xtab[x] * (size_t)ch, (size_t)ch);
        yo += ay;
    }
}

onyx_status onyx_image_resize(const onyx_image *in, int out_w, int out_h, onyx_resize_filter filter,
                              bool antialias, onyx_image *out, onyx_error *err) {
    memset(out, 0, sizeof *out);
    if (in->width <= 0 || in->height <= 0 || in->channels <= 0 || !in->pixels)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "resize: empty source image");
    if (out_w <= 0 || out_h <= 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "resize: invalid target size %dx%d",
                           out_w, out_h);
    if ((unsigned)filter >= ONYX_RESIZE_FILTER_COUNT)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "resize: unknown filter %d",
                           (int)filter);
    int ch = in->channels;
    size_t out_bytes = image_bytes(out_w, out_h, ch);
    if (!out_bytes)
        return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "resize: %dx%d is too large", out_w, out_h);

    onyx_status st = ONYX_OK;
    coeffs cv = {0}, chz = {0};
    uint8_t *tmp = NULL; /* (ybox_last - ybox_first, out_w, ch) after the horizontal pass */
    int *xtab = NULL;
    uint8_t *pixels = malloc(out_bytes); /* (out_h, out_w, ch) */
    if (!pixels) goto oom;

    if (out_w == in->width && out_h == in->height) {
        /* Image.resize returns a copy for the same size. */
        memcpy(pixels, in->pixels, out_bytes);
    } else if (filter == ONYX_RESIZE_NEAREST) {
        if (!(xtab = malloc((size_t)out_w * sizeof *xtab))) goto oom;
        onyx_image tmp_out = {.width = out_w, .height = out_h, .channels = ch, .pixels = pixels};
        resize_nearest(in, &tmp_out, xtab);
    } else {
        bool need_h = out_w != in->width, need_v = out_h != in->height;
        /* Pillow 13 runs the vertical pass first when the height shrinks by
         * more than twice what the width does (found by testing it: the
         * order changes the rounding of the intermediate image). */
        int dh = in->height - out_h, dw = in->width - out_w;
        bool vertical_first = need_h && need_v && dh > 0 && dh > 2 * dw;
        if (need_v && (st = precompute(in->height, out_h, filter, antialias, &cv, err)) != ONYX_OK)
            goto fail;
        if (need_h && (st = precompute(in->width, out_w, filter, antialias, &chz, err)) != ONYX_OK)
            goto fail;
        if (vertical_first) {
            size_t tb = image_bytes(in->width, out_h, ch);
            if (!tb || !(tmp = malloc(tb))) goto oom;
            pass_vertical(in->pixels, in->width, ch, 0, tmp, out_h, &cv);
            pass_horizontal(tmp, in->width, ch, 0, out_h, pixels, out_w, &chz);
        } else if (need_h && need_v) {
            /* Only the source rows the vertical pass reads. */
            int y_first = cv.bounds[0];
            int y_last = cv.bounds[2 * (out_h - 1)] + cv.bounds[2 * (out_h - 1) + 1];
            size_t tb = image_bytes(out_w, y_last - y_first, ch);
            if (!tb || !(tmp = malloc(tb))) goto oom;
            pass_horizontal(in->pixels, in->width, ch, y_first, y_last - y_first, tmp, out_w, &chz);
            pass_vertical(tmp, out_w, ch, y_first, pixels, out_h, &cv);
        } else if (need_h) {
            pass_horizontal(in->pixels, in->width, ch, 0, in->height, pixels, out_w, &chz);
        } else {
            pass_vertical(in->pixels, in->width, ch, 0, pixels, out_h, &cv);
        }
    }
    out->width = out_w;
    out->height = out_h;
    out->channels = ch;
    out->pixels = pixels;
    out->exif_orientation = in->exif_orientation;
    pixels = NULL;
    goto done;
oom:
    st = onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory resizing %dx%d to %dx%d",
                     in->width, in->height, out_w, out_h);
fail:
done:
    coeffs_free(&cv);
    coeffs_free(&chz);
    free(tmp);
    free(xtab);
    free(pixels);
    return st;
}
