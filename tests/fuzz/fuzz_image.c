/* fuzz_image.c - libFuzzer entry point for the image path a client's upload
 * takes (`onyx predict`, the server's image inputs): decode (JPEG, PNG, BMP,
 * PNM, sniffed from the bytes) under a 4-megapixel limit, then the default
 * preprocessing (bicubic resize with antialias, imagenet normalization) to a
 * size taken from the first input byte, with a center crop every other
 * time. Any crash or sanitizer report is a bug; an error status is the right
 * answer to a bad image.
 *
 * Build by hand like fuzz_model.c (its header), with this file instead:
 *   build/fuzz/fuzz_image -max_len=262144 corpus/   (seed: tests' images) */
#include "io/image.h"
#include "io/preprocess.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    onyx_image_limits lim = {(int64_t)4 << 20};
    onyx_image img;
    onyx_error err;
    if (onyx_image_decode(data, size, &lim, &img, &err)) return 0;
    onyx_preprocess p;
    onyx_preprocess_init(&p);
    const uint8_t b = size ? data[size - 1] : 0;
    p.height = 1 + b % 64;
    p.width = 1 + (b / 4) % 64;
    if (b & 1) p.center_crop = 0.875;
    if (!onyx_preprocess_check(&p, &err)) {
        float *dst = malloc(onyx_preprocess_count(&p) * sizeof *dst);
        if (dst) onyx_preprocess_image(&img, &p, dst, &err);
        free(dst);
    }
    onyx_image_deinit(&img);
    return 0;
}
