/* preprocess.c - from a decoded image to one image of a model input tensor:
 * EXIF orientation and mode conversion as Pillow, torchvision's shorter-side
 * resize + center crop, normalization presets in float32, NCHW/NHWC layout.
 *
 * Owns: onyx_preprocess_* and the orientation/convert/crop helpers (see
 * preprocess.h). Does not own: resampling (image_resize.c), decoding.
 */
#include "base/error.h"
#include "io/preprocess.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const norm_names[] = {"none", "unit", "minmax", "imagenet", "caffe", "tf"};
_Static_assert(sizeof norm_names / sizeof norm_names[0] == ONYX_NORM_COUNT, "one name per preset");
static const char *const layout_names[] = {"nchw", "nhwc"};
_Static_assert(sizeof layout_names / sizeof layout_names[0] == ONYX_LAYOUT_COUNT,
               "one name per layout");

/* torchvision's ImageNet statistics (RGB) and Keras' caffe means (BGR), as
 * the float32 constants those pipelines compute with. */
static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
static const float imagenet_std[3] = {0.229f, 0.224f, 0.225f};
static const float caffe_mean_bgr[3] = {103.939f, 116.779f, 123.68f};

const char *onyx_norm_name(onyx_norm n) {
    return (unsigned)n < ONYX_NORM_COUNT ? norm_names[n] : "unknown";
}

bool onyx_norm_parse(const char *s, onyx_norm *out) {
    for (int i = 0; i < ONYX_NORM_COUNT; i++)
        if (strcmp(s, norm_names[i]) == 0) {
            *out = (onyx_norm)i;
            return true;
        }
    return false;
}

const char *onyx_layout_name(onyx_layout l) {
    return (unsigned)l < ONYX_LAYOUT_COUNT ? layout_names[l] : "unknown";
}

void onyx_preprocess_init(onyx_preprocess *p) {
    memset(p, 0, sizeof *p);
    p->height = p->width = 224;
    p->channels = 3;
    p->layout = ONYX_LAYOUT_NCHW;
    p->filter = ONYX_RESIZE_BICUBIC;
    p->antialias = true;
    p->norm = ONYX_NORM_IMAGENET;
    for (int c = 0; c < 3; c++)
        p->std[c] = 1.0f;
    p->dtype = ONYX_DTYPE_FLOAT;
}

size_t onyx_preprocess_count(const onyx_preprocess *p) {
    return (size_t)p->channels * (size_t)p->height * (size_t)p->width;
}

/* Largest H or W accepted: well past any model input, and small enough that
 * C * H * W cannot overflow. */
#define MAX_SIDE (1 << 15)

/* A decimal side length in 1..MAX_SIDE spelled by s[0..len). */
static bool parse_side(const char *s, size_t len, int *out) {
    if (len == 0 || len > 5 || strspn(s, "0123456789") < len) return false;
    int v = 0;
    for (size_t i = 0; i < len; i++) v = v * 10 + (s[i] - '0');
    *out = v;
    return v > 0 && v <= MAX_SIDE;
}

bool onyx_preprocess_parse_size(const char *s, int *h, int *w) {
    size_t len = strlen(s), cut = strcspn(s, "xX,");
    if (cut == len) return parse_side(s, len, h) && parse_side(s, len, w);
    return parse_side(s, cut, h) && parse_side(s + cut + 1, len - cut - 1, w);
}

int onyx_preprocess_parse_channels(const char *s, float out[3]) {
    int n = 0;
    for (;;) {
        char *end;
        double v = strtod(s, &end);
        if (end == s || !isfinite(v) || n == 3 || (*end && *end != ',')) return 0;
        out[n++] = (float)v;
        if (!*end) break;
        s = end + 1;
    }
    return n == 1 || n == 3 ? n : 0;
}

onyx_status onyx_preprocess_check(const onyx_preprocess *p, onyx_error *err) {
    if (p->height <= 0 || p->width <= 0 || p->height > MAX_SIDE || p->width > MAX_SIDE)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "image size %dx%d is out of range",
                           p->height, p->width);
    if (p->channels != 1 && p->channels != 3)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT,
                           "images have 1 (gray) or 3 (color) channels, not %d", p->channels);
    if ((unsigned)p->layout >= ONYX_LAYOUT_COUNT || (unsigned)p->norm >= ONYX_NORM_COUNT ||
        (unsigned)p->filter >= ONYX_RESIZE_FILTER_COUNT)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "invalid preprocessing settings");
    if (p->dtype != ONYX_DTYPE_FLOAT && p->dtype != ONYX_DTYPE_UINT8)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT,
                           "image inputs are float or uint8, not %s", onyx_dtype_name(p->dtype));
    if (!(p->center_crop >= 0.0 && p->center_crop <= 1.0))
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT,
                           "center crop fraction %g is not in (0, 1]", p->center_crop);
    if (p->dtype == ONYX_DTYPE_FLOAT && p->channels == 1 &&
        (p->norm == ONYX_NORM_IMAGENET || p->norm == ONYX_NORM_CAFFE))
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT,
                           "the %s preset needs 3 channels; the input is gray (1 channel)",
                           onyx_norm_name(p->norm));
    if (p->custom)
        for (int c = 0; c < p->channels; c++)
            if (!(p->std[c] != 0.0f) || !isfinite(p->std[c]) || !isfinite(p->mean[c]))
                return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT,
                                   "std must be finite and non-zero, mean finite");
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Orientation and mode

/* Bytes of a w x h x ch image, or 0 on overflow. */
static size_t image_bytes(int w, int h, int ch) {
    if (w <= 0 || h <= 0 || ch <= 0) return 0;
    size_t n = (size_t)w;
    if ((size_t)h > SIZE_MAX / n) return 0;
    n *= (size_t)h;
    if ((size_t)ch > SIZE_MAX / n) return 0;
    return n * (size_t)ch;
}

static void image_free(onyx_image *img) {
    free(img->pixels);
    memset(img, 0, sizeof *img);
}

/* Pillow's convert("L") from RGB: ITU-R 601-2 luma in 16-bit fixed point. */
static inline uint8_t luma(const uint8_t *rgb) {
    return (uint8_t)((rgb[0] * 19595u + rgb[1] * 38470u + rgb[2] * 7471u + 0x8000u) >> 16);
}

/* One pixel of `src` (src_ch channels: 1 L, 2 LA, 3 RGB, 4 RGBA) converted
 * to `ch` (1 or 3) channels at `dst`. */
static inline void convert_pixel(const uint8_t *src, int src_ch, uint8_t *dst, int ch) {
    if (src_ch <= 2) {
        dst[0] = src[0];
        if (ch == 3) dst[1] = dst[2] = src[0];
    } else if (ch == 1) {
        dst[0] = luma(src);
    } else {
        dst[0] = src[0];
        dst[1] = src[1];
        dst[2] = src[2];
    }
}

onyx_status onyx_image_orient_convert(const onyx_image *in, int channels, onyx_image *out,
                                      onyx_error *err) {
    memset(out, 0, sizeof *out);
    if (channels != 1 && channels != 3)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "cannot convert to %d channels",
                           channels);
    if (in->channels < 1 || in->channels > 4 || !in->pixels ||
        !image_bytes(in->width, in->height, in->channels))
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "invalid source image");
    /* Per orientation: output axes swapped, source x mirrored, source y
     * mirrored. 5-8 are PIL's TRANSPOSE, ROTATE_270 (90 degrees clockwise),
     * TRANSVERSE and ROTATE_90; 2-4 FLIP_LEFT_RIGHT, ROTATE_180, FLIP_TOP_BOTTOM. */
    static const bool table[9][3] = {{0, 0, 0}, {0, 0, 0}, {0, 1, 0}, {0, 1, 1}, {0, 0, 1},
                                     {1, 0, 0}, {1, 0, 1}, {1, 1, 1}, {1, 1, 0}};
    int o = in->exif_orientation >= 1 && in->exif_orientation <= 8 ? in->exif_orientation : 1;
    bool swap = table[o][0], flip_x = table[o][1], flip_y = table[o][2];
    int W = in->width, H = in->height, sc = in->channels;
    int ow = swap ? H : W, oh = swap ? W : H;
    size_t bytes = image_bytes(ow, oh, channels);
    if (!bytes) return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "image too large");
    uint8_t *px = malloc(bytes); /* (oh, ow, channels) */
    if (!px) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory converting an image");
    for (int y = 0; y < oh; y++) {
        uint8_t *d = px + (size_t)y * (size_t)ow * (size_t)channels;
        for (int x = 0; x < ow; x++, d += channels) {
            int u = swap ? y : x, v = swap ? x : y; /* source pixel before mirroring */
            int sx = flip_x ? W - 1 - u : u, sy = flip_y ? H - 1 - v : v;
            const uint8_t *s = in->pixels + ((size_t)sy * (size_t)W + (size_t)sx) * (size_t)sc;
            convert_pixel(s, sc, d, channels);
        }
    }
    out->width = ow;
    out->height = oh;
    out->channels = channels;
    out->pixels = px;
    out->exif_orientation = 1;
    return ONYX_OK;
}

onyx_status onyx_image_crop(const onyx_image *in, int left, int top, int w, int h, onyx_image *out,
                            onyx_error *err) {
    memset(out, 0, sizeof *out);
    int ch = in->channels;
    size_t bytes = image_bytes(w, h, ch);
    if (!bytes) return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "invalid crop %dx%d", w, h);
    uint8_t *px = calloc(bytes, 1); /* (h, w, ch); zero outside the source */
    if (!px) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory cropping an image");
    for (int y = 0; y < h; y++) {
        int64_t sy = (int64_t)top + y;
        if (sy < 0 || sy >= in->height) continue;
        int64_t x0 = left < 0 ? -(int64_t)left : 0; /* first output column inside */
        int64_t x1 = (int64_t)in->width - left;     /* one past the last */
        if (x1 > w) x1 = w;
        if (x1 <= x0) continue;
        memcpy(px + ((size_t)y * (size_t)w + (size_t)x0) * (size_t)ch,
               in->pixels + ((size_t)sy * (size_t)in->width + (size_t)(left + x0)) * (size_t)ch,
               (size_t)(x1 - x0) * (size_t)ch);
    }
    out->width = w;
    out->height = h;
    out->channels = ch;
    out->pixels = px;
    out->exif_orientation = in->exif_orientation;
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Resize and crop as torchvision

/* Python's round() of d / 2 for an integer d >= 0: halves go to even. */
static int half_round_even(int d) {
    int k = d / 2;
    if (d % 2 == 0) return k;
    return k % 2 == 0 ? k : k + 1;
}

/* torchvision CenterCrop's offset of a `crop` window in a side of `size`
 * (negative when it pads: (crop - size) // 2 on the left/top). */
static int crop_offset(int size, int crop) {
    if (crop > size) return -((crop - size) / 2);
    return half_round_even(size - crop);
}

/* The size the image is resized to before the crop: the smallest that covers
 * floor(H / f) x floor(W / f) keeping the aspect ratio, the long side
 * truncated as torchvision's Resize(int) computes it. */
static void crop_scale_size(const onyx_preprocess *p, int iw, int ih, int *nw, int *nh) {
    int sh = (int)floor(p->height / p->center_crop), sw = (int)floor(p->width / p->center_crop);
    if (sh < 1) sh = 1;
    if (sw < 1) sw = 1;
    if ((int64_t)ih * sw >= (int64_t)iw * sh) { /* width is the limiting side */
        *nw = sw;
        *nh = (int)((double)((int64_t)sw * ih) / (double)iw);
    } else {
        *nh = sh;
        *nw = (int)((double)((int64_t)sh * iw) / (double)ih);
    }
    if (*nw < 1) *nw = 1;
    if (*nh < 1) *nh = 1;
}

// ----------------------------------------------------------------------------
// Normalization and layout

/* Writes `img` ((H, W, C) uint8, already the model's size) to dst as p->dtype
 * in p->layout, normalized by p->norm (and p->mean/std when p->custom). */
static void write_tensor(const onyx_image *img, const onyx_preprocess *p, void *dst) {
    int H = img->height, W = img->width, C = img->channels;
    size_t hw = (size_t)H * (size_t)W;
    const uint8_t *px = img->pixels;
    if (p->dtype == ONYX_DTYPE_UINT8) {
        uint8_t *o = dst;
        if (p->layout == ONYX_LAYOUT_NHWC) {
            memcpy(o, px, hw * (size_t)C);
            return;
        }
        for (size_t i = 0; i < hw; i++)
            for (int c = 0; c < C; c++)
                o[(size_t)c * hw + i] = px[i * (size_t)C + (size_t)c];
        return;
    }
    float mn = 0.0f, range = 1.0f;
    if (p->norm == ONYX_NORM_MINMAX) {
        uint8_t lo = 255, hi = 0;
        for (size_t i = 0; i < hw * (size_t)C; i++) {
            if (px[i] < lo) lo = px[i];
            if (px[i] > hi) hi = px[i];
        }
        mn = (float)lo;
        range = (float)hi - (float)lo;
    }
    bool bgr = p->norm == ONYX_NORM_CAFFE && C == 3;
    float *o = dst;
    for (size_t i = 0; i < hw; i++) {
        for (int c = 0; c < C; c++) {
            int sc = bgr ? 2 - c : c; /* source channel of output channel c */
            float x = (float)px[i * (size_t)C + (size_t)sc], v;
            switch (p->norm) {
            case ONYX_NORM_UNIT:
                v = x / 255.0f;
                break;
            case ONYX_NORM_MINMAX:
                v = range > 0.0f ? (x - mn) / range : 0.0f;
                break;
            case ONYX_NORM_IMAGENET:
                v = (x / 255.0f - imagenet_mean[c]) / imagenet_std[c];
                break;
            case ONYX_NORM_CAFFE:
                v = C == 3 ? x - caffe_mean_bgr[c] : x;
                break;
            case ONYX_NORM_TF:
                v = x / 127.5f - 1.0f;
                break;
            default:
                v = x;
                break;
            }
            if (p->custom) v = (v - p->mean[c]) / p->std[c];
            size_t at =
                p->layout == ONYX_LAYOUT_NCHW ? (size_t)c * hw + i : i * (size_t)C + (size_t)c;
            o[at] = v;
        }
    }
}

onyx_status onyx_preprocess_image(const onyx_image *img, const onyx_preprocess *p, void *dst,
                                  onyx_error *err) {
    onyx_status st = onyx_preprocess_check(p, err);
    if (st != ONYX_OK) return st;
    onyx_image conv = {0}, sized = {0}, cropped = {0};
    if ((st = onyx_image_orient_convert(img, p->channels, &conv, err)) != ONYX_OK) goto fail;
    const onyx_image *final = &sized;
    if (p->center_crop > 0.0) {
        int nw, nh;
        crop_scale_size(p, conv.width, conv.height, &nw, &nh);
        if ((st = onyx_image_resize(&conv, nw, nh, p->filter, p->antialias, &sized, err)) !=
            ONYX_OK)
            goto fail;
        if (nw != p->width || nh != p->height) {
            int left = crop_offset(nw, p->width), top = crop_offset(nh, p->height);
            if ((st = onyx_image_crop(&sized, left, top, p->width, p->height, &cropped, err)) !=
                ONYX_OK)
                goto fail;
            final = &cropped;
        }
    } else {
        if ((st = onyx_image_resize(&conv, p->width, p->height, p->filter, p->antialias, &sized,
                                    err)) != ONYX_OK)
            goto fail;
    }
    write_tensor(final, p, dst);
fail:
    image_free(&cropped);
    image_free(&sized);
    image_free(&conv);
    return st;
}
