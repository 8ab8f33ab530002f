/* image_decode.c - the decode half of image.h: JPEG (libjpeg-turbo), PNG
 * (libpng), BMP and binary PNM (P5/P6, ours) into 8-bit interleaved pixels,
 * as Pillow decodes them. Not here: resizing, cropping, normalization (the
 * preprocess half).
 *
 * Hostile input: every size is checked against the pixel limit before any
 * pixel buffer is allocated, library errors longjmp back here (nothing calls
 * exit), and the libraries print nothing (silent message handlers). */
#include "io/image.h"

#include "base/error.h"

#include <math.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#define DEFAULT_MAX_PIXELS ((int64_t)100 * 1000 * 1000)

/* Progressive JPEGs with absurd scan counts are a known CPU sink; real
 * encoders write at most a few dozen scans. */
#define JPEG_MAX_SCANS 1000

static onyx_status bad(onyx_error *err, const char *fmt, const char *detail) {
    return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, fmt, detail);
}

/* Checks width x height against the limit and returns the pixel buffer size
 * for `channels` (0 on refusal, with err set). */
static size_t checked_size(int64_t width, int64_t height, int channels, const onyx_image_limits *limits,
                           const char *format, onyx_error *err) {
    int64_t max = limits && limits->max_pixels > 0 ? limits->max_pixels : DEFAULT_MAX_PIXELS;
    if (width <= 0 || height <= 0) {
        onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "corrupt %s: image size %lld x %lld", format,
                    (long long)width, (long long)height);
        return 0;
    }
    if (width > max || height > max || width * height > max) {
        onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT,
                    "%s image is %lld x %lld pixels, over the limit of %lld pixels", format,
                    (long long)width, (long long)height, (long long)max);
        return 0;
    }
    uint64_t bytes = (uint64_t)width * (uint64_t)height * (uint64_t)channels;
    if (bytes > SIZE_MAX / 2) {
        onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "%s image is too large", format);
        return 0;
    }
    return (size_t)bytes;
}

// ----------------------------------------------------------------------------
// EXIF: the orientation tag of IFD0 in a TIFF-structured block

static uint32_t rd16(const uint8_t *p, bool be) {
    return be ? (uint32_t)p[0] << 8 | p[1] : (uint32_t)p[1] << 8 | p[0];
}
static uint32_t rd32(const uint8_t *p, bool be) {
    return be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
              : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Orientation 1..8 from TIFF data (the payload after "Exif\0\0"); 1 when
 * absent or malformed. */
static int exif_orientation(const uint8_t *t, size_t n) {
    if (n < 8) return 1;
    bool be;
    if (t[0] == 'I' && t[1] == 'I' && t[2] == 42 && t[3] == 0)
        be = false;
    else if (t[0] == 'M' && t[1] == 'M' && t[2] == 0 && t[3] == 42)
        be = true;
    else
        return 1;
    uint32_t ifd = rd32(t + 4, be);
    if (ifd > n - 2) return 1;
    uint32_t count = rd16(t + ifd, be);
    for (uint32_t i = 0; i < count; i++) {
        size_t e = (size_t)ifd + 2 + (size_t)i * 12;
        if (e + 12 > n) return 1;
        if (rd16(t + e, be) != 0x0112) continue;
        uint32_t type = rd16(t + e + 2, be), cnt = rd32(t + e + 4, be);
        if (type != 3 || cnt < 1) return 1;
        uint32_t v = rd16(t + e + 8, be);
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

// ----------------------------------------------------------------------------
// JPEG

typedef struct jpeg_fail {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} jpeg_fail;

static void jpeg_error_exit_cb(j_common_ptr c) {
    jpeg_fail *f = (jpeg_fail *)c->err;
    (*c->err->format_message)(c, f->message);
    longjmp(f->jump, 1);
}

/* Warnings are silent, except that running out of data is an error: the
 * library would otherwise pad the image with gray (Pillow refuses a
 * truncated file too). */
static void jpeg_emit_cb(j_common_ptr c, int level) {
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) {
        jpeg_fail *f = (jpeg_fail *)c->err;
        snprintf(f->message, sizeof f->message, "truncated data (premature end of JPEG file)");
        longjmp(f->jump, 1);
    }
    if (level < 0) c->err->num_warnings++;
}

static void jpeg_output_cb(j_common_ptr c) {
    (void)c;
}

static void jpeg_progress_cb(j_common_ptr c) {
    j_decompress_ptr d = (j_decompress_ptr)c;
    if (d->input_scan_number > JPEG_MAX_SCANS) {
        jpeg_fail *f = (jpeg_fail *)c->err;
        snprintf(f->message, sizeof f->message, "more than %d scans", JPEG_MAX_SCANS);
        longjmp(f->jump, 1);
    }
}

/* Pillow's CMYK -> RGB: with k' = 255 - k, each channel is
 * k' - round(c * k' / 255) in its MULDIV255 fixed point. */
static uint8_t cmyk_channel(unsigned c, unsigned nk) {
    unsigned t = c * nk + 128;
    int v = (int)nk - (int)(((t >> 8) + t) >> 8);
    return (uint8_t)(v < 0 ? 0 : v);
}

/* Everything the longjmp path must release lives in this struct so that no
 * automatic variable is modified between setjmp and longjmp. */
typedef struct jpeg_job {
    struct jpeg_decompress_struct cinfo;
    jpeg_fail fail;
    struct jpeg_progress_mgr progress;
    uint8_t *pixels;
    uint8_t *row; /* CMYK scanline */
} jpeg_job;

static onyx_status decode_jpeg(const uint8_t *data, size_t size, const onyx_image_limits *limits,
                               onyx_image *out, onyx_error *err) {
    jpeg_job *j = calloc(1, sizeof *j);
    if (!j) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    onyx_status st = ONYX_ERR_INVALID_ARGUMENT;
    j->cinfo.err = jpeg_std_error(&j->fail.pub);
    j->fail.pub.error_exit = jpeg_error_exit_cb;
    j->fail.pub.emit_message = jpeg_emit_cb;
    j->fail.pub.output_message = jpeg_output_cb;
    if (setjmp(j->fail.jump)) {
        onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "corrupt JPEG: %s", j->fail.message);
        st = ONYX_ERR_INVALID_ARGUMENT;
        goto fail;
    }
    jpeg_create_decompress(&j->cinfo);
    j->progress.progress_monitor = jpeg_progress_cb;
    j->cinfo.progress = &j->progress;
    jpeg_mem_src(&j->cinfo, data, (unsigned long)size);
    jpeg_save_markers(&j->cinfo, JPEG_APP0 + 1, 0xffff);
    if (jpeg_read_header(&j->cinfo, TRUE) != JPEG_HEADER_OK) {
        onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "corrupt JPEG: no image");
        goto fail;
    }
    int channels;
    bool cmyk = false;
    switch (j->cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
        j->cinfo.out_color_space = JCS_GRAYSCALE;
        channels = 1;
        break;
    case JCS_YCbCr:
    case JCS_RGB:
        j->cinfo.out_color_space = JCS_RGB;
        channels = 3;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        j->cinfo.out_color_space = JCS_CMYK;
        channels = 3;
        cmyk = true;
        break;
    default:
        onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "unsupported JPEG: %d color components",
                    j->cinfo.num_components);
        goto fail;
    }
    /* Pillow's defaults: accurate integer IDCT, fancy (triangle) upsampling. */
    j->cinfo.dct_method = JDCT_ISLOW;
    j->cinfo.do_fancy_upsampling = TRUE;
    size_t bytes = checked_size(j->cinfo.image_width, j->cinfo.image_height, channels, limits, "JPEG", err);
    if (!bytes) goto fail;
    out->exif_orientation = 1;
    for (jpeg_saved_marker_ptr m = j->cinfo.marker_list; m; m = m->next) {
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && memcmp(m->data, "Exif\0\0", 6) == 0) {
            out->exif_orientation = exif_orientation(m->data + 6, m->data_length - 6);
            break; /* the first Exif block wins, as in Pillow */
        }
    }
    j->pixels = malloc(bytes);
    if (!j->pixels) {
        st = onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory for a %u x %u image",
                         j->cinfo.image_width, j->cinfo.image_height);
        goto fail;
    }
    jpeg_start_decompress(&j->cinfo);
    size_t width = j->cinfo.output_width, stride = width * (size_t)channels;
    if (j->cinfo.output_width != j->cinfo.image_width || j->cinfo.output_height != j->cinfo.image_height) {
        onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "corrupt JPEG: inconsistent output size");
        goto fail;
    }
    if (cmyk && !(j->row = malloc(width * 4))) {
        st = onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    while (j->cinfo.output_scanline < j->cinfo.output_height) {
        size_t y = j->cinfo.output_scanline;
        JSAMPROW row = cmyk ? j->row : j->pixels + y * stride;
        if (jpeg_read_scanlines(&j->cinfo, &row, 1) != 1) {
            onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "corrupt JPEG: truncated data");
            goto fail;
        }
        if (cmyk) {
            /* Pillow reads 4-component JPEGs as Adobe-inverted CMYK: the
             * stored values are 255 - ink. */
            uint8_t *d = j->pixels + y * stride;
            for (size_t x = 0; x < width; x++) {
                const uint8_t *s = j->row + 4 * x;
                unsigned nk = s[3];
                d[3 * x] = cmyk_channel(255u - s[0], nk);
                d[3 * x + 1] = cmyk_channel(255u - s[1], nk);
                d[3 * x + 2] = cmyk_channel(255u - s[2], nk);
            }
        }
    }
    out->width = (int)j->cinfo.output_width;
    out->height = (int)j->cinfo.output_height;
    out->channels = channels;
    out->pixels = j->pixels;
    j->pixels = NULL;
    st = ONYX_OK;
fail:
    /* No jpeg_finish_decompress: trailing data after the last scanline
     * (or a missing EOI) does not matter, as in Pillow. */
    jpeg_destroy_decompress(&j->cinfo);
    free(j->row);
    free(j->pixels);
    free(j);
    return st;
}

// ----------------------------------------------------------------------------
// PNG

typedef struct png_src {
    const uint8_t *data;
    size_t size, pos;
} png_src;

typedef struct png_job {
    png_structp png;
    png_infop info;
    png_src src;
    char message[200];
    uint8_t *pixels;
    uint8_t *raw;        /* 16-bit gray rows before clipping */
    png_bytep *rows;
} png_job;

static void png_error_cb(png_structp png, png_const_charp msg) {
    png_job *j = png_get_error_ptr(png);
    snprintf(j->message, sizeof j->message, "%s", msg ? msg : "error");
    png_longjmp(png, 1);
}

static void png_warning_cb(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static void png_read_cb(png_structp png, png_bytep dst, size_t n) {
    png_src *s = png_get_io_ptr(png);
    if (n > s->size - s->pos) png_error(png, "truncated data");
    memcpy(dst, s->data + s->pos, n);
    s->pos += n;
}

static onyx_status decode_png(const uint8_t *data, size_t size, const onyx_image_limits *limits,
                              onyx_image *out, onyx_error *err) {
    png_job *j = calloc(1, sizeof *j);
    if (!j) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    onyx_status st = ONYX_ERR_INVALID_ARGUMENT;
    j->src.data = data;
    j->src.size = size;
    j->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, j, png_error_cb, png_warning_cb);
    if (!j->png || !(j->info = png_create_info_struct(j->png))) {
        st = onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        goto fail;
    }
    if (setjmp(png_jmpbuf(j->png))) {
        onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "corrupt PNG: %s", j->message);
        st = ONYX_ERR_INVALID_ARGUMENT;
        goto fail;
    }
    png_set_read_fn(j->png, &j->src, png_read_cb);
    png_set_user_limits(j->png, 0x7fffffff, 0x7fffffff);
    png_read_info(j->png, j->info);
    png_uint_32 w = png_get_image_width(j->png, j->info), h = png_get_image_height(j->png, j->info);
    int depth = png_get_bit_depth(j->png, j->info), color = png_get_color_type(j->png, j->info);
    if (!checked_size(w, h, 4, limits, "PNG", err)) goto fail;

    out->exif_orientation = 1;
#ifdef PNG_eXIf_SUPPORTED
    png_bytep exif = NULL;
    png_uint_32 exif_len = 0;
    if (png_get_eXIf_1(j->png, j->info, &exif_len, &exif) && exif)
        out->exif_orientation = exif_orientation(exif, exif_len);
#endif
    /* 16-bit gray is Pillow's mode I;16, whose conversion to L clips at 255
     * (it does not scale); every other 16-bit layout keeps the high byte. */
    bool gray16 = color == PNG_COLOR_TYPE_GRAY && depth == 16;
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(j->png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(j->png);
    if (!gray16 && png_get_valid(j->png, j->info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(j->png);
    if (!gray16 && depth == 16) png_set_strip_16(j->png);
    /* Gray with alpha (an alpha channel or a tRNS key) becomes RGBA: the
     * image contract has no gray + alpha layout. */
    if (color == PNG_COLOR_TYPE_GRAY_ALPHA ||
        (color == PNG_COLOR_TYPE_GRAY && !gray16 && png_get_valid(j->png, j->info, PNG_INFO_tRNS)))
        png_set_gray_to_rgb(j->png);
    png_set_interlace_handling(j->png);
    png_read_update_info(j->png, j->info);
    int ch = png_get_channels(j->png, j->info);
    size_t rowbytes = png_get_rowbytes(j->png, j->info);
    if (ch < 1 || ch > 4 || ch == 2 || rowbytes != (size_t)w * (size_t)ch * (gray16 ? 2 : 1)) {
        onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "unsupported PNG layout");
        goto fail;
    }
    size_t bytes = checked_size(w, h, ch, limits, "PNG", err);
    if (!bytes) goto fail;
    j->pixels = malloc(bytes);
    j->rows = malloc((size_t)h * sizeof *j->rows);
    if (gray16) j->raw = malloc(bytes * 2);
    if (!j->pixels || !j->rows || (gray16 && !j->raw)) {
        st = onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory for a %u x %u image", w, h);
        goto fail;
    }
    uint8_t *base = gray16 ? j->raw : j->pixels;
    for (png_uint_32 y = 0; y < h; y++) j->rows[y] = base + (size_t)y * rowbytes;
    png_read_image(j->png, j->rows);
    if (gray16) {
        size_t n = (size_t)w * h;
        for (size_t i = 0; i < n; i++) j->pixels[i] = j->raw[2 * i] ? 255 : j->raw[2 * i + 1];
    }
    out->width = (int)w;
    out->height = (int)h;
    out->channels = ch;
    out->pixels = j->pixels;
    j->pixels = NULL;
    st = ONYX_OK;
fail:
    if (j->png) png_destroy_read_struct(&j->png, j->info ? &j->info : NULL, NULL);
    free(j->rows);
    free(j->raw);
    free(j->pixels);
    free(j);
    return st;
}

// ----------------------------------------------------------------------------
// BMP: uncompressed 24/32-bit, 1/4/8-bit palette; bottom-up or top-down

static int32_t rd_i32le(const uint8_t *p) {
    return (int32_t)rd32(p, false);
}

static onyx_status decode_bmp(const uint8_t *d, size_t size, const onyx_image_limits *limits,
                              onyx_image *out, onyx_error *err) {
    if (size < 26) return bad(err, "corrupt BMP: %s", "truncated header");
    uint32_t offset = rd32(d + 10, false), hsize = rd32(d + 14, false);
    int64_t width, height;
    uint32_t bpp, compression = 0, colors = 0;
    size_t pal_entry = 4;
    if (hsize == 12) {
        /* OS/2 BITMAPCOREHEADER: 16-bit sizes, 3-byte palette entries. */
        width = rd16(d + 18, false);
        height = (int16_t)rd16(d + 20, false);
        bpp = rd16(d + 24, false);
        pal_entry = 3;
    } else if (hsize >= 40 && hsize <= 124) {
        if (size < 14 + (size_t)hsize) return bad(err, "corrupt BMP: %s", "truncated header");
        width = rd_i32le(d + 18);
        height = rd_i32le(d + 22);
        bpp = rd16(d + 28, false);
        compression = rd32(d + 30, false);
        colors = rd32(d + 46, false);
    } else {
        return bad(err, "unsupported BMP: %s", "unknown header size");
    }
    bool top_down = height < 0;
    if (top_down) height = -height;
    uint32_t rmask = 0xff0000, gmask = 0xff00, bmask = 0xff, amask = 0;
    if (compression == 3 || compression == 6) {
        /* BI_BITFIELDS (masks after a 40-byte header, or inside a larger
         * one), BI_ALPHABITFIELDS. Only byte-aligned 32-bit masks. */
        if (bpp != 32) return bad(err, "unsupported BMP: %s", "bit fields below 32 bits per pixel");
        size_t mpos = 14 + 40;
        if (mpos + (compression == 6 || hsize >= 56 ? 16 : 12) > size)
            return bad(err, "corrupt BMP: %s", "truncated header");
        rmask = rd32(d + mpos, false);
        gmask = rd32(d + mpos + 4, false);
        bmask = rd32(d + mpos + 8, false);
        amask = compression == 6 || hsize >= 56 ? rd32(d + mpos + 12, false) : 0;
        if (rmask != 0xff0000 || gmask != 0xff00 || bmask != 0xff || (amask && amask != 0xff000000u))
            return bad(err, "unsupported BMP: %s", "bit field masks other than BGR(A)");
    } else if (compression != 0) {
        return bad(err, "unsupported BMP: %s", "compressed (RLE/JPEG/PNG) data");
    }
    if (bpp != 1 && bpp != 4 && bpp != 8 && bpp != 24 && bpp != 32)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "unsupported BMP: %u bits per pixel", bpp);
    if (width <= 0 || height <= 0) return bad(err, "corrupt BMP: %s", "non-positive size");
    uint8_t pal[256][3];
    int channels = bpp == 32 && amask ? 4 : 3;
    uint32_t npal = 0;
    if (bpp <= 8) {
        npal = colors ? colors : 1u << bpp;
        if (npal > (1u << bpp)) return bad(err, "corrupt BMP: %s", "palette larger than the bit depth allows");
        size_t ppos = 14 + (size_t)hsize;
        if (ppos + (size_t)npal * pal_entry > size) return bad(err, "corrupt BMP: %s", "truncated palette");
        memset(pal, 0, sizeof pal);
        bool gray = true;
        for (uint32_t i = 0; i < npal; i++) {
            const uint8_t *p = d + ppos + (size_t)i * pal_entry;
            pal[i][0] = p[2];
            pal[i][1] = p[1];
            pal[i][2] = p[0];
            gray = gray && p[0] == p[1] && p[1] == p[2];
        }
        channels = gray ? 1 : 3;
    }
    size_t bytes = checked_size(width, height, channels, limits, "BMP", err);
    if (!bytes) return err->status;
    size_t stride = (((size_t)width * bpp + 31) / 32) * 4;
    if (offset > size || (size - offset) / stride < (size_t)height)
        return bad(err, "corrupt BMP: %s", "truncated pixel data");
    uint8_t *px = malloc(bytes);
    if (!px) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t y = 0; y < height; y++) {
        const uint8_t *s = d + offset + (size_t)(top_down ? y : height - 1 - y) * stride;
        uint8_t *o = px + (size_t)y * (size_t)width * (size_t)channels;
        for (int64_t x = 0; x < width; x++) {
            if (bpp == 24 || bpp == 32) {
                const uint8_t *p = s + (size_t)x * (bpp / 8);
                o[0] = p[2];
                o[1] = p[1];
                o[2] = p[0];
                if (channels == 4) o[3] = p[3];
            } else {
                unsigned idx;
                size_t bit = (size_t)x * bpp;
                idx = (s[bit / 8] >> (8 - bpp - bit % 8)) & ((1u << bpp) - 1);
                if (channels == 1) {
                    o[0] = idx < npal ? pal[idx][0] : 0;
                } else {
                    o[0] = pal[idx][0];
                    o[1] = pal[idx][1];
                    o[2] = pal[idx][2];
                }
            }
            o += channels;
        }
    }
    out->width = (int)width;
    out->height = (int)height;
    out->channels = channels;
    out->pixels = px;
    out->exif_orientation = 1;
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// PNM: binary graymap (P5) and pixmap (P6), maxval 1..65535

/* Reads the next header integer, skipping whitespace and # comments. */
static bool pnm_int(const uint8_t *d, size_t size, size_t *pos, uint32_t *v) {
    size_t i = *pos;
    for (;;) {
        while (i < size && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r' || d[i] == '\v' ||
                            d[i] == '\f'))
            i++;
        if (i < size && d[i] == '#') {
            while (i < size && d[i] != '\n' && d[i] != '\r') i++;
            continue;
        }
        break;
    }
    if (i >= size || d[i] < '0' || d[i] > '9') return false;
    uint64_t n = 0;
    while (i < size && d[i] >= '0' && d[i] <= '9') {
        n = n * 10 + (uint64_t)(d[i++] - '0');
        if (n > 0x7fffffff) return false;
    }
    *v = (uint32_t)n;
    *pos = i;
    return true;
}

/* Pillow scales maxval != 255 to 0..255 with Python's round(v / max * 255)
 * (half to even) and clips; 16-bit graymaps become its mode I (scaled to
 * 0..65535), whose conversion to L clips at 255. */
static onyx_status decode_pnm(const uint8_t *d, size_t size, const onyx_image_limits *limits,
                              onyx_image *out, onyx_error *err) {
    int channels = d[1] == '6' ? 3 : 1;
    size_t pos = 2;
    uint32_t w, h, maxval;
    if (!pnm_int(d, size, &pos, &w) || !pnm_int(d, size, &pos, &h) || !pnm_int(d, size, &pos, &maxval))
        return bad(err, "corrupt PNM: %s", "bad header");
    if (maxval < 1 || maxval > 65535) return bad(err, "corrupt PNM: %s", "maxval outside 1..65535");
    if (pos >= size) return bad(err, "corrupt PNM: %s", "truncated data");
    pos++; /* the single whitespace byte before the raster */
    size_t bytes = checked_size(w, h, channels, limits, "PNM", err);
    if (!bytes) return err->status;
    size_t sample = maxval > 255 ? 2 : 1;
    if ((size - pos) / sample < bytes) return bad(err, "corrupt PNM: %s", "truncated data");
    uint8_t *px = malloc(bytes);
    if (!px) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    const uint8_t *s = d + pos;
    for (size_t i = 0; i < bytes; i++) {
        uint32_t v = sample == 2 ? (uint32_t)s[2 * i] << 8 | s[2 * i + 1] : s[i];
        if (maxval == 255) {
            px[i] = (uint8_t)v;
        } else if (sample == 2 && channels == 1) {
            double t = rint((double)v / maxval * 65535.0);
            px[i] = t >= 255 ? 255 : (uint8_t)t;
        } else {
            double t = rint((double)v / maxval * 255.0);
            px[i] = t >= 255 ? 255 : (uint8_t)t;
        }
    }
    out->width = (int)w;
    out->height = (int)h;
    out->channels = channels;
    out->pixels = px;
    out->exif_orientation = 1;
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Entry points

onyx_status onyx_image_decode(const uint8_t *data, size_t size, const onyx_image_limits *limits,
                              onyx_image *out, onyx_error *err) {
    onyx_error local;
    if (!err) err = &local;
    if (!out) return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "no output image");
    memset(out, 0, sizeof *out);
    if (!data && size) return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "no image data");
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        return decode_jpeg(data, size, limits, out, err);
    if (size >= 8 && memcmp(data, png_sig, 8) == 0) return decode_png(data, size, limits, out, err);
    if (size >= 2 && data[0] == 'B' && data[1] == 'M') return decode_bmp(data, size, limits, out, err);
    if (size >= 3 && data[0] == 'P' && (data[1] == '5' || data[1] == '6') &&
        (data[2] == ' ' || data[2] == '\t' || data[2] == '\n' || data[2] == '\r' || data[2] == '#'))
        return decode_pnm(data, size, limits, out, err);
    if (size == 0) return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "empty image data");
    return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT,
                       "unknown image format (%zu bytes; JPEG, PNG, BMP and binary PNM are supported)", size);
}

void onyx_image_deinit(onyx_image *img) {
    if (!img) return;
    free(img->pixels);
    memset(img, 0, sizeof *img);
}
