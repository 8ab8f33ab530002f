/* image.c - encoded images (JPEG/PNG/BMP bytes) sent to a model's numeric
 * image input: picks the preprocessing settings from the input's shape and
 * the model's config parameters, then decodes and preprocesses each image
 * with src/io (the same code as `onyx predict`).
 *
 * Owns: the mapping from model + parameters to onyx_preprocess. Does not
 * own: decoding or pixel math (src/io/image_decode.c, preprocess.c).
 */
#include "io/image.h"
#include "io/preprocess.h"
#include "server/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Which dim holds the channels: 1 (NCHW) or 3 (NHWC) of a rank-4 input, with
 * `off` = 1 when there is a batch dim (rank 3 inputs have none). */
static int channel_axis(const onyx_io_info *in, int off, const onyx_model_version *v) {
    const char *lay = onyx_config_param(&v->cfg, "layout");
    if (lay && strcmp(lay, "nchw") == 0) return off;
    if (lay && strcmp(lay, "nhwc") == 0) return off + 2;
    int64_t a = in->dims[off], b = in->dims[off + 2];
    if (a == 1 || a == 3) return off;
    if (b == 1 || b == 3) return off + 2;
    return -1;
}

bool onyx_server_is_image_input(const onyx_model_version *v, const onyx_io_info *in) {
    if (in->kind != ONYX_KIND_TENSOR) return false;
    if (in->dtype != ONYX_DTYPE_FLOAT && in->dtype != ONYX_DTYPE_UINT8) return false;
    if (in->ndim != 4 && in->ndim != 3) return false;
    return channel_axis(in, in->ndim == 4, v) >= 0;
}

/* Fills p from the model; 0 or -1 with err. */
static int settings(const onyx_model_version *v, const onyx_io_info *in, onyx_preprocess *p,
                    char *err, size_t cap) {
    onyx_preprocess_init(p);
    int off = in->ndim == 4;
    int cax = channel_axis(in, off, v);
    p->layout = cax == off ? ONYX_LAYOUT_NCHW : ONYX_LAYOUT_NHWC;
    int hax = p->layout == ONYX_LAYOUT_NCHW ? off + 1 : off;
    p->channels = in->dims[cax] == 1 ? 1 : 3;
    p->dtype = in->dtype;
    int64_t h = in->dims[hax], w = in->dims[hax + 1];
    const char *size = onyx_config_param(&v->cfg, "image_size");
    if (size) {
        int hh = 0, ww = 0;
        if (!onyx_preprocess_parse_size(size, &hh, &ww)) {
            snprintf(err, cap, "config parameter image_size '%s' must be HxW", size);
            return -1;
        }
        if (h < 0) h = hh;
        if (w < 0) w = ww;
    }
    p->height = h > 0 ? (int)h : 224;
    p->width = w > 0 ? (int)w : 224;
    const char *pre = onyx_config_param(&v->cfg, "preprocessing");
    if (!pre) pre = onyx_config_param(&v->cfg, "preprocess");
    if (p->dtype == ONYX_DTYPE_UINT8) {
        p->norm = ONYX_NORM_NONE;
    } else if (pre) {
        if (!onyx_norm_parse(pre, &p->norm)) {
            snprintf(err, cap, "config parameter preprocessing '%s' is not a preset", pre);
            return -1;
        }
    } else {
        p->norm = p->channels == 3 ? ONYX_NORM_IMAGENET : ONYX_NORM_UNIT;
    }
    const char *f = onyx_config_param(&v->cfg, "filter");
    if (f && !onyx_resize_filter_parse(f, &p->filter)) {
        snprintf(err, cap, "config parameter filter '%s' is not nearest, bilinear or bicubic", f);
        return -1;
    }
    const char *aa = onyx_config_param(&v->cfg, "antialias");
    if (aa) p->antialias = strcmp(aa, "false") != 0 && strcmp(aa, "0") != 0;
    const char *cc = onyx_config_param(&v->cfg, "center_crop");
    if (cc) {
        char *end;
        double d = strtod(cc, &end);
        if (*end || !(d > 0 && d <= 1)) {
            snprintf(err, cap, "config parameter center_crop '%s' must be in (0, 1]", cc);
            return -1;
        }
        p->center_crop = d;
    }
    const char *mean = onyx_config_param(&v->cfg, "mean");
    const char *std = onyx_config_param(&v->cfg, "std");
    if (mean || std) {
        int nm = 0, ns = 0;
        float m[3] = {0, 0, 0}, s[3] = {1, 1, 1};
        if ((mean && !(nm = onyx_preprocess_parse_channels(mean, m))) ||
            (std && !(ns = onyx_preprocess_parse_channels(std, s)))) {
            snprintf(err, cap, "config parameters mean/std must be 1 or 3 numbers");
            return -1;
        }
        p->custom = true;
        for (int c = 0; c < 3; c++) {
            p->mean[c] = nm == 3 ? m[c] : m[0];
            p->std[c] = ns == 3 ? s[c] : (ns ? s[0] : 1);
        }
    }
    onyx_error e;
    if (onyx_preprocess_check(p, &e) != ONYX_OK) {
        snprintf(err, cap, "image preprocessing settings of model '%s': %s", v->name, e.message);
        return -1;
    }
    return 0;
}

int onyx_server_images(const onyx_model_version *v, const onyx_io_info *in,
                       const uint8_t *const *bytes, const size_t *lens, int64_t n, onyx_owned *own,
                       onyx_tensor_view *out, char *err, size_t cap) {
    onyx_preprocess p;
    if (settings(v, in, &p, err, cap)) return 400;
    if (in->ndim == 3 && n != 1) {
        snprintf(err, cap, "input '%s' takes one image (it has no batch dimension), got %lld",
                 in->name, (long long)n);
        return 400;
    }
    if (in->ndim == 4 && in->dims[0] > 0 && in->dims[0] != n) {
        snprintf(err, cap, "input '%s' takes %lld images per request, got %lld", in->name,
                 (long long)in->dims[0], (long long)n);
        return 400;
    }
    size_t per = onyx_preprocess_count(&p);
    size_t esz = onyx_dtype_size(p.dtype);
    uint8_t *data = onyx_owned_alloc(own, per * esz * (size_t)n);
    if (!data) {
        snprintf(err, cap, "out of memory for %lld images", (long long)n);
        return 400;
    }
    onyx_image_limits lim = {0};
    const char *mp = onyx_config_param(&v->cfg, "max_pixels");
    if (mp) lim.max_pixels = strtoll(mp, NULL, 10);
    for (int64_t i = 0; i < n; i++) {
        onyx_image img;
        memset(&img, 0, sizeof img);
        onyx_error e;
        if (onyx_image_decode(bytes[i], lens[i], &lim, &img, &e) != ONYX_OK) {
            snprintf(err, cap, "image %lld of input '%s' cannot be decoded: %s", (long long)i,
                     in->name, e.message);
            return 400;
        }
        onyx_status st = onyx_preprocess_image(&img, &p, data + (size_t)i * per * esz, &e);
        onyx_image_deinit(&img);
        if (st != ONYX_OK) {
            snprintf(err, cap, "image %lld of input '%s': %s", (long long)i, in->name, e.message);
            return 400;
        }
    }
    out->dtype = p.dtype;
    out->data = data;
    int k = 0;
    if (in->ndim == 4) out->dims[k++] = n;
    if (p.layout == ONYX_LAYOUT_NCHW) {
        out->dims[k++] = p.channels, out->dims[k++] = p.height, out->dims[k++] = p.width;
    } else {
        out->dims[k++] = p.height, out->dims[k++] = p.width, out->dims[k++] = p.channels;
    }
    out->ndim = k;
    return 0;
}
