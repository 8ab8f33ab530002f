/* image.h - decoded images and the decoders for JPEG (libjpeg-turbo), PNG
 * (libpng) and BMP, as Pillow decodes them; and the preprocessing that turns
 * an image into a model input tensor (resize as Pillow's Image.resize,
 * center crop, normalization presets, layout).
 *
 * Owns: pixels in memory. Does not own: choosing settings for a model
 * (src/cli/predict.c and the server decide), running the model.
 */
#ifndef ONYX_IMAGE_H
#define ONYX_IMAGE_H

#include "onyx.h"

#include <stdint.h>

/* 8-bit interleaved pixels, row-major: (height, width, channels). */
typedef struct onyx_image {
    int width, height;
    int channels;          /* 1 gray, 3 RGB, 4 RGBA */
    uint8_t *pixels;       /* malloc'ed, owned; freed by onyx_image_deinit */
    int exif_orientation;  /* 1..8 from a JPEG's EXIF (1: as stored); not applied */
} onyx_image;

typedef struct onyx_image_limits {
    int64_t max_pixels;    /* width * height above this is refused; 0: 100 megapixels */
} onyx_image_limits;

/* Decodes JPEG/PNG/BMP (sniffed from the bytes) into *out. Truncated or
 * corrupt data, an unknown format or an image over the pixel limit gives
 * ONYX_ERR_INVALID_ARGUMENT with a message saying which. `limits` may be NULL. */
onyx_status onyx_image_decode(const uint8_t *data, size_t size, const onyx_image_limits *limits,
                              onyx_image *out, onyx_error *err);
void onyx_image_deinit(onyx_image *img);

#endif
