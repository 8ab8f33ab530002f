/* preprocess.h - turning a decoded image into one image of a model input
 * tensor the way the Python pipelines that trained the model do: EXIF
 * orientation (PIL.ImageOps.exif_transpose), mode conversion (Pillow's
 * convert("RGB") / convert("L")), resampling (Pillow's Image.resize, in
 * image_resize.c), torchvision's shorter-side resize + center crop,
 * normalization presets and the NCHW/NHWC layout.
 *
 * Owns: the pixel math and its exactness against Pillow + numpy. Does not
 * own: decoding (image_decode.c), choosing the settings for a model
 * (src/cli/predict.c and the server decide), running the model.
 */
#ifndef ONYX_PREPROCESS_H
#define ONYX_PREPROCESS_H

#include "io/image.h"
#include "onyx.h"

#include <stdbool.h>
#include <stddef.h>

// ----------------------------------------------------------------------------
// Resampling (image_resize.c)

typedef enum onyx_resize_filter {
    ONYX_RESIZE_NEAREST = 0, /* Pillow's Resampling.NEAREST */
    ONYX_RESIZE_BILINEAR,    /* Resampling.BILINEAR: triangle, support 1 */
    ONYX_RESIZE_BICUBIC,     /* Resampling.BICUBIC: Keys cubic a = -0.5, support 2 */
    ONYX_RESIZE_FILTER_COUNT
} onyx_resize_filter;

/* "nearest", "bilinear", "bicubic". */
const char *onyx_resize_filter_name(onyx_resize_filter f);
/* Parses a filter name; false if `s` names none. */
bool onyx_resize_filter_parse(const char *s, onyx_resize_filter *out);

/* Resizes `in` (any channel count; channels are resampled independently, so
 * a 4th channel is not treated as premultiplied alpha) to out_w x out_h into
 * a new image *out (freed with onyx_image_deinit; exif_orientation copied).
 *
 * With `antialias` the result is Pillow's Image.resize(size, filter) to the
 * bit: separable convolution in Pillow's pass order, the filter support
 * widened by the downscale factor, coefficients in 22-bit fixed point. Without
 * it the support is not widened (plain interpolation, which aliases when
 * shrinking); upscaling is the same either way. NEAREST ignores `antialias`.
 * Sizes must be positive; failures (ONYX_ERR_INVALID_ARGUMENT for sizes,
 * ONYX_ERR_OUT_OF_MEMORY) leave *out empty. */
onyx_status onyx_image_resize(const onyx_image *in, int out_w, int out_h, onyx_resize_filter filter,
                              bool antialias, onyx_image *out, onyx_error *err);

// ----------------------------------------------------------------------------
// Geometry and mode (preprocess.c)

/* Applies img->exif_orientation (1..8) the way PIL.ImageOps.exif_transpose
 * does, and converts to `channels` (1 or 3) with Pillow's rules: 3 drops
 * alpha and replicates gray (convert("RGB")); 1 takes ITU-R 601-2 luma
 * L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16 (convert("L")). Writes a
 * new image to *out (orientation 1); `in` is unchanged. An orientation
 * outside 1..8 is treated as 1, as Pillow does. */
onyx_status onyx_image_orient_convert(const onyx_image *in, int channels, onyx_image *out,
                                      onyx_error *err);

/* Crops the w x h window whose top-left corner is (left, top) into a new
 * image; pixels outside `in` are 0, as torchvision's CenterCrop pads. */
onyx_status onyx_image_crop(const onyx_image *in, int left, int top, int w, int h, onyx_image *out,
                            onyx_error *err);

// ----------------------------------------------------------------------------
// The whole pipeline

typedef enum onyx_norm {
    ONYX_NORM_NONE = 0, /* raw 0..255 as float */
    ONYX_NORM_UNIT,     /* x / 255 (torchvision ToTensor) */
    ONYX_NORM_MINMAX,   /* (x - min) / (max - min) over the whole image; 0 if flat */
    ONYX_NORM_IMAGENET, /* (x / 255 - mean) / std, torchvision's ImageNet mean/std */
    ONYX_NORM_CAFFE,    /* Keras "caffe": RGB -> BGR, x - [103.939, 116.779, 123.68] */
    ONYX_NORM_TF,       /* Keras "tf": x / 127.5 - 1 */
    ONYX_NORM_COUNT
} onyx_norm;

/* "none", "unit", "minmax", "imagenet", "caffe", "tf". */
const char *onyx_norm_name(onyx_norm n);
bool onyx_norm_parse(const char *s, onyx_norm *out);

typedef enum onyx_layout {
    ONYX_LAYOUT_NCHW = 0, /* one image is (C, H, W) */
    ONYX_LAYOUT_NHWC,     /* one image is (H, W, C) */
    ONYX_LAYOUT_COUNT
} onyx_layout;

const char *onyx_layout_name(onyx_layout l); /* "nchw", "nhwc" */

typedef struct onyx_preprocess {
    int height, width; /* the model's H and W */
    int channels;      /* 1 (gray) or 3 */
    onyx_layout layout;
    onyx_resize_filter filter; /* default BICUBIC, Image.resize's default */
    bool antialias;            /* default true (Pillow always antialiases) */
    double center_crop;        /* 0: resize straight to H x W (default); in (0, 1]:
                                  resize to cover floor(H / f) x floor(W / f) keeping
                                  the aspect ratio, then crop the center H x W */
    onyx_norm norm;            /* default IMAGENET */
    bool custom;               /* mean/std below are applied after the preset */
    float mean[3], std[3];     /* per output channel (BGR order after CAFFE) */
    onyx_dtype dtype;          /* FLOAT (default) or UINT8: raw pixels, no normalization */
} onyx_preprocess;

/* The text forms of the settings, one parser each for the CLI flags, the
 * bundle's settings and the server's model config parameters:
 * an image size "HxW" (also "HXW" or "H,W") or "N" for N x N, each side
 * within what onyx_preprocess_check accepts; and per-channel values "V" or
 * "V1,V2,V3" (mean, std), finite numbers, returning the count (1 or 3) or
 * 0 when malformed. */
bool onyx_preprocess_parse_size(const char *s, int *h, int *w);
int onyx_preprocess_parse_channels(const char *s, float out[3]);

/* Defaults: 224 x 224 RGB NCHW, bicubic with antialias, no crop, imagenet. */
void onyx_preprocess_init(onyx_preprocess *p);

/* Checks the settings (sizes, channel count, dtype, a preset that needs 3
 * channels); ONYX_ERR_INVALID_ARGUMENT naming the problem otherwise. */
onyx_status onyx_preprocess_check(const onyx_preprocess *p, onyx_error *err);

/* Elements one image occupies in the input tensor: channels * height * width. */
size_t onyx_preprocess_count(const onyx_preprocess *p);

/* Runs the pipeline on `img` (unchanged): orientation and mode, resize (and
 * crop), normalization, layout; writes onyx_preprocess_count(p) elements of
 * p->dtype to `dst`. The float math follows the reference pipelines op by op
 * in float32 (e.g. imagenet is ((float)x / 255 - mean) / std, as torchvision's
 * ToTensor + Normalize), so results match them to the last bit. */
onyx_status onyx_preprocess_image(const onyx_image *img, const onyx_preprocess *p, void *dst,
                                  onyx_error *err);

#endif /* ONYX_PREPROCESS_H */
