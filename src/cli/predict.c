/* predict.c - `onyx predict MODEL IMAGE...`: decodes images, preprocesses
 * them for the model's image input (layout, size, dtype read from the model;
 * filter, crop and normalization from the options), runs them in batches and
 * prints the top-K classes as a table or one JSON document.
 *
 * Owns: choosing preprocessing settings from a model and the command line,
 * batching, softmax detection, labels, the output formats. Does not own: the
 * pixel math (src/io/preprocess.c, image_resize.c) or decoding.
 */
#include "base/file.h"
#include "cli/bundle.h"
#include "cli/cli.h"
#include "cli/json.h"
#include "core/tensor.h"
#include "io/image.h"
#include "io/npy.h"
#include "io/preprocess.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char predict_usage[] =
    "usage: onyx predict MODEL IMAGE... [options]\n"
    "\n"
    "Classifies JPEG, PNG or BMP images (or uint8 .npy arrays of shape (H,W) or\n"
    "(H,W,C)) with an image classifier and prints the top classes.\n"
    "\n"
    "  --top K               classes shown per image (default 5)\n"
    "  --labels FILE         class names, one per line (default: the model's\n"
    "                        \"labels\" metadata, if any)\n"
    "  --preprocess PRESET   imagenet (default for color), unit (default for gray),\n"
    "                        minmax, caffe, tf or none\n"
    "  --mean M[,M,M]        subtract after the preset (with unit or none)\n"
    "  --std S[,S,S]         then divide (with unit or none)\n"
    "  --filter F            nearest, bilinear or bicubic (default, as Pillow)\n"
    "  --no-antialias        do not widen the filter when shrinking\n"
    "  --center-crop FRAC    resize the shorter side to size/FRAC, crop the center\n"
    "  --size HxW            input size when the model's H/W are dynamic\n"
    "  --layout nchw|nhwc    when the model's input shape does not tell\n"
    "  --json                one JSON document instead of a table\n"
    "  --all                 also every class score\n"
    "  --threads N           intra-op threads (default 0: all available cores)\n"
    "  --max-pixels N        refuse images with more pixels (default 100000000)\n";

/* Images per run when the batch dimension is dynamic: bounds input memory. */
#define MAX_RUN_BATCH 32

typedef struct predict_args {
    const char *model;
    const char **images; /* (n_images) paths from argv */
    int n_images;
    int top;
    const char *labels;
    bool has_norm;
    onyx_norm norm;
    int n_mean, n_std;
    float mean[3], std[3];
    onyx_resize_filter filter;
    bool no_antialias;
    double center_crop;
    int size_h, size_w; /* 0: from the model */
    bool has_layout;
    onyx_layout layout;
    bool json, all;
    int threads;
    int64_t max_pixels;
    const char *dump; /* --dump-input PATH */
} predict_args;

// ----------------------------------------------------------------------------
// Option parsing

static bool parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v)) return false;
    *out = v;
    return true;
}

/* Returns ONYX_CLI_OK, an exit status after reporting the problem, or -1
 * after --help. */
static int parse_args(int argc, char **argv, predict_args *a) {
    a->top = 5;
    a->filter = ONYX_RESIZE_BICUBIC;
    a->max_pixels = 100000000;
    a->images = calloc((size_t)argc, sizeof *a->images);
    if (!a->images) {
        onyx_cli_error("out of memory");
        return ONYX_CLI_FAIL;
    }
    bool options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *v = NULL;
        int r;
        if (options_done || arg[0] != '-' || !arg[1]) {
            if (!a->model)
                a->model = arg;
            else
                a->images[a->n_images++] = arg;
        } else if (strcmp(arg, "--") == 0) {
            options_done = true;
        } else if ((r = onyx_cli_option(argc, argv, &i, "-k", "--top", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            if (!onyx_cli_parse_int(v, &a->top) || a->top < 1) {
                onyx_cli_error("predict: --top needs a positive integer, not '%s'", v);
                return ONYX_CLI_USAGE;
            }
        } else if ((r = onyx_cli_option(argc, argv, &i, NULL, "--labels", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            a->labels = v;
        } else if ((r = onyx_cli_option(argc, argv, &i, NULL, "--preprocess", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            if (!onyx_norm_parse(v, &a->norm)) {
                onyx_cli_error("predict: --preprocess must be imagenet, unit, minmax, caffe, tf "
                               "or none, not '%s'",
                               v);
                return ONYX_CLI_USAGE;
            }
            a->has_norm = true;
        } else if ((r = onyx_cli_option(argc, argv, &i, NULL, "--mean", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            if (!(a->n_mean = onyx_preprocess_parse_channels(v, a->mean))) {
                onyx_cli_error("predict: --mean needs 1 or 3 comma-separated numbers, not '%s'", v);
                return ONYX_CLI_USAGE;
            }
        } else if ((r = onyx_cli_option(argc, argv, &i, NULL, "--std", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            if (!(a->n_std = onyx_preprocess_parse_channels(v, a->std))) {
                onyx_cli_error("predict: --std needs 1 or 3 comma-separated numbers, not '%s'", v);
                return ONYX_CLI_USAGE;
            }
        } else if ((r = onyx_cli_option(argc, argv, &i, NULL, "--filter", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            if (!onyx_resize_filter_parse(v, &a->filter)) {
                onyx_cli_error("predict: --filter must be nearest, bilinear or bicubic, not '%s'",
                               v);
                return ONYX_CLI_USAGE;
            }
        } else if (onyx_cli_option(argc, argv, &i, NULL, "--no-antialias", NULL) == 1) {
            a->no_antialias = true;
        } else if ((r = onyx_cli_option(argc, argv, &i, NULL, "--center-crop", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            if (!parse_double(v, &a->center_crop) || !(a->center_crop > 0.0) ||
                a->center_crop > 1.0) {
                onyx_cli_error("predict: --center-crop needs a fraction in (0, 1], not '%s'", v);
                return ONYX_CLI_USAGE;
            }
        } else if ((r = onyx_cli_option(argc, argv, &i, NULL, "--size", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            if (!onyx_preprocess_parse_size(v, &a->size_h, &a->size_w)) {
                onyx_cli_error("predict: --size needs HxW (e.g. 224x224), not '%s'", v);
                return ONYX_CLI_USAGE;
            }
        } else if ((r = onyx_cli_option(argc, argv, &i, NULL, "--layout", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            if (strcmp(v, "nchw") == 0)
                a->layout = ONYX_LAYOUT_NCHW;
            else if (strcmp(v, "nhwc") == 0)
                a->layout = ONYX_LAYOUT_NHWC;
            else {
                onyx_cli_error("predict: --layout must be nchw or nhwc, not '%s'", v);
                return ONYX_CLI_USAGE;
            }
            a->has_layout = true;
        } else if (onyx_cli_option(argc, argv, &i, NULL, "--json", NULL) == 1) {
            a->json = true;
        } else if (onyx_cli_option(argc, argv, &i, NULL, "--all", NULL) == 1) {
            a->all = true;
        } else if ((r = onyx_cli_option(argc, argv, &i, NULL, "--threads", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            if (!onyx_cli_parse_int(v, &a->threads)) {
                onyx_cli_error("predict: --threads needs a non-negative integer, not '%s'", v);
                return ONYX_CLI_USAGE;
            }
        } else if ((r = onyx_cli_option(argc, argv, &i, NULL, "--max-pixels", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            int mp;
            if (!onyx_cli_parse_int(v, &mp) || mp < 1) {
                onyx_cli_error("predict: --max-pixels needs a positive integer, not '%s'", v);
                return ONYX_CLI_USAGE;
            }
            a->max_pixels = mp;
        } else if ((r = onyx_cli_option(argc, argv, &i, NULL, "--dump-input", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            a->dump = v;
        } else if (onyx_cli_option(argc, argv, &i, "-h", "--help", NULL) == 1) {
            fputs(predict_usage, stdout);
            return -1;
        } else {
            return onyx_cli_usage_error(predict_usage, "predict: unknown option '%s'", arg);
        }
    }
    if (!a->model) {
        return onyx_cli_usage_error(predict_usage, "predict: no MODEL given");
    }
    if (a->n_images == 0) {
        return onyx_cli_usage_error(predict_usage, "predict: no IMAGE given");
    }
    if ((a->n_mean || a->n_std) && a->has_norm && a->norm != ONYX_NORM_UNIT &&
        a->norm != ONYX_NORM_NONE) {
        onyx_cli_error("predict: --mean/--std apply after the unit or none preset, not '%s'",
                       onyx_norm_name(a->norm));
        return ONYX_CLI_USAGE;
    }
    return ONYX_CLI_OK;
}

// ----------------------------------------------------------------------------
// The model's image input

typedef struct image_input {
    onyx_io_info io;
    int batch;            /* fixed batch size, 0 when dynamic, -1 without a batch dim (rank 3) */
    onyx_dtype run_dtype; /* what preprocessing writes: FLOAT or UINT8 */
} image_input;

static bool is_channel_dim(int64_t d) {
    return d == 1 || d == 3;
}

/* Chooses layout, channels, size and dtype for the model's single input into
 * `p` and `in`; reports and returns false when the input is not image-like. */
static bool describe_input(const onyx_model *m, const predict_args *a, image_input *in,
                           onyx_preprocess *p) {
    int n = onyx_model_num_inputs(m);
    if (n != 1) {
        char names[1024] = "";
        size_t len = 0;
        for (int i = 0; i < n && len < sizeof names; i++) {
            onyx_io_info io;
            onyx_model_input(m, i, &io);
            len +=
                (size_t)snprintf(names + len, sizeof names - len, "%s%s", i ? ", " : "", io.name);
        }
        onyx_cli_error("%s: predict needs a model with one image input; it has %d%s%s%s (use "
                       "onyx run)",
                       a->model, n, n ? " (" : "", names, n ? ")" : "");
        return false;
    }
    onyx_model_input(m, 0, &in->io);
    const onyx_io_info *io = &in->io;
    char type[512];
    onyx_cli_format_type(io, type, sizeof type);
    bool dtype_ok = io->dtype == ONYX_DTYPE_FLOAT || io->dtype == ONYX_DTYPE_UINT8 ||
                    io->dtype == ONYX_DTYPE_DOUBLE || io->dtype == ONYX_DTYPE_FLOAT16;
    if (io->kind != ONYX_KIND_TENSOR || !dtype_ok || (io->ndim != 4 && io->ndim != 3)) {
        onyx_cli_error("%s: input '%s' is %s, not an image: predict expects float or uint8 "
                       "[N,C,H,W] (nchw) or [N,H,W,C] (nhwc) with C 1 or 3",
                       a->model, io->name, type);
        return false;
    }
    int b = io->ndim == 4 ? 1 : 0; /* first non-batch axis */
    int64_t c_nchw = io->dims[b], c_nhwc = io->dims[b + 2];
    onyx_layout layout;
    if (a->has_layout) {
        layout = a->layout;
    } else if (is_channel_dim(c_nchw) && !is_channel_dim(c_nhwc)) {
        layout = ONYX_LAYOUT_NCHW;
    } else if (is_channel_dim(c_nhwc) && !is_channel_dim(c_nchw)) {
        layout = ONYX_LAYOUT_NHWC;
    } else if (is_channel_dim(c_nchw) || (c_nchw < 0 && c_nhwc < 0)) {
        onyx_cli_error("%s: cannot tell the layout of input '%s' (%s); pass --layout nchw or "
                       "--layout nhwc",
                       a->model, io->name, type);
        return false;
    } else {
        onyx_cli_error("%s: input '%s' is %s, not an image: predict expects [N,C,H,W] (nchw) "
                       "or [N,H,W,C] (nhwc) with C 1 or 3",
                       a->model, io->name, type);
        return false;
    }
    int ca = layout == ONYX_LAYOUT_NCHW ? b : b + 2; /* channel axis */
    int ha = layout == ONYX_LAYOUT_NCHW ? b + 1 : b, wa = ha + 1;
    int64_t c = io->dims[ca];
    if (c >= 0 && !is_channel_dim(c)) {
        onyx_cli_error("%s: input '%s' is %s: as %s its channel dimension is %lld, not 1 or 3",
                       a->model, io->name, type, onyx_layout_name(layout), (long long)c);
        return false;
    }
    p->layout = layout;
    p->channels = c < 0 ? 3 : (int)c;
    int64_t h = io->dims[ha], w = io->dims[wa];
    if (h < 0 || w < 0) {
        if (!a->size_h) {
            onyx_cli_error("%s: input '%s' (%s) has a dynamic height or width; give --size HxW",
                           a->model, io->name, type);
            return false;
        }
        if ((h >= 0 && h != a->size_h) || (w >= 0 && w != a->size_w)) {
            onyx_cli_error("%s: input '%s' is %s; --size %dx%d does not fit", a->model, io->name,
                           type, a->size_h, a->size_w);
            return false;
        }
        h = a->size_h;
        w = a->size_w;
    } else if (a->size_h && (h != a->size_h || w != a->size_w)) {
        onyx_cli_error("%s: input '%s' is %s: its size is fixed at %lldx%lld, not %dx%d", a->model,
                       io->name, type, (long long)h, (long long)w, a->size_h, a->size_w);
        return false;
    }
    if (h < 1 || w < 1 || h > 32768 || w > 32768) {
        onyx_cli_error("%s: input '%s' is %s: unusable image size", a->model, io->name, type);
        return false;
    }
    p->height = (int)h;
    p->width = (int)w;
    in->batch = io->ndim == 3 ? -1 : io->dims[0] >= 0 ? (int)io->dims[0] : 0;
    if (in->batch == 0 && io->dims[0] == 0) in->batch = 1; /* a zero batch cannot hold images */
    in->run_dtype = io->dtype == ONYX_DTYPE_UINT8 ? ONYX_DTYPE_UINT8 : ONYX_DTYPE_FLOAT;
    p->dtype = in->run_dtype;
    return true;
}

/* Normalization settings from the options; false after reporting. */
static bool choose_norm(const predict_args *a, const image_input *in, onyx_preprocess *p) {
    if (in->run_dtype == ONYX_DTYPE_UINT8) {
        if ((a->has_norm && a->norm != ONYX_NORM_NONE) || a->n_mean || a->n_std) {
            onyx_cli_error("%s: input '%s' takes uint8 pixels (0..255); --preprocess, --mean "
                           "and --std do not apply",
                           a->model, in->io.name);
            return false;
        }
        p->norm = ONYX_NORM_NONE;
        return true;
    }
    p->norm = a->has_norm                                   ? a->norm
              : (a->n_mean || a->n_std || p->channels == 1) ? ONYX_NORM_UNIT
                                                            : ONYX_NORM_IMAGENET;
    if (a->n_mean || a->n_std) {
        p->custom = true;
        for (int c = 0; c < 3; c++) {
            p->mean[c] = a->n_mean ? a->mean[a->n_mean == 3 ? c : 0] : 0.0f;
            p->std[c] = a->n_std ? a->std[a->n_std == 3 ? c : 0] : 1.0f;
        }
        if ((a->n_mean == 3 || a->n_std == 3) && p->channels == 1) {
            onyx_cli_error("%s: input '%s' is gray (1 channel); --mean/--std take one value",
                           a->model, in->io.name);
            return false;
        }
    }
    return true;
}

// ----------------------------------------------------------------------------
// Images

/* A uint8 .npy array (H, W) or (H, W, C) with C in 1, 3, 4 as an image. */
static bool load_npy_image(const char *path, const predict_args *a, onyx_image *img) {
    onyx_tensor t;
    onyx_error err = {0};
    memset(&t, 0, sizeof t);
    if (onyx_npy_load(path, &t, &err) != ONYX_OK) {
        onyx_cli_error("%s", err.message);
        return false;
    }
    bool ok = t.dtype == ONYX_DTYPE_UINT8 && (t.ndim == 2 || t.ndim == 3) && t.dims[0] > 0 &&
              t.dims[1] > 0 && t.dims[0] <= INT32_MAX && t.dims[1] <= INT32_MAX &&
              (t.ndim == 2 || t.dims[2] == 1 || t.dims[2] == 3 || t.dims[2] == 4);
    if (!ok) {
        onyx_cli_error("%s: an image array must be uint8 with shape (H,W) or (H,W,C), C 1, 3 "
                       "or 4",
                       path);
        onyx_tensor_release(&t);
        return false;
    }
    if (t.dims[0] * t.dims[1] > a->max_pixels) {
        onyx_cli_error("%s: %lldx%lld image exceeds the limit of %lld pixels", path,
                       (long long)t.dims[1], (long long)t.dims[0], (long long)a->max_pixels);
        onyx_tensor_release(&t);
        return false;
    }
    size_t bytes = (size_t)onyx_tensor_count(&t);
    memset(img, 0, sizeof *img);
    img->pixels = malloc(bytes);
    if (!img->pixels) {
        onyx_cli_error("out of memory");
        onyx_tensor_release(&t);
        return false;
    }
    memcpy(img->pixels, t.data, bytes);
    img->height = (int)t.dims[0];
    img->width = (int)t.dims[1];
    img->channels = t.ndim == 2 ? 1 : (int)t.dims[2];
    img->exif_orientation = 1;
    onyx_tensor_release(&t);
    return true;
}

/* Reads `path` (a .npy array or an encoded image) into *img; false after
 * reporting. */
static bool load_image(const char *path, const predict_args *a, onyx_image *img) {
    size_t len = strlen(path);
    if (len > 4 && strcmp(path + len - 4, ".npy") == 0) return load_npy_image(path, a, img);
    onyx_mapping map = {0};
    onyx_error err = {0};
    if (onyx_file_map(path, &map, &err) != ONYX_OK) {
        onyx_cli_error("%s", err.message);
        return false;
    }
    onyx_image_limits limits = {.max_pixels = a->max_pixels};
    onyx_status st = onyx_image_decode(map.data, map.size, &limits, img, &err);
    onyx_file_unmap(&map);
    if (st != ONYX_OK) {
        onyx_cli_error("%s: %s", path, err.message);
        return false;
    }
    return true;
}

/* Loads and preprocesses one image into `dst` (onyx_preprocess_count(p)
 * elements); false after reporting. */
static bool prepare_image(const char *path, const predict_args *a, const onyx_preprocess *p,
                          void *dst) {
    onyx_image img;
    onyx_error err = {0};
    memset(&img, 0, sizeof img);
    if (!load_image(path, a, &img)) return false;
    onyx_status st = onyx_preprocess_image(&img, p, dst, &err);
    onyx_image_deinit(&img);
    if (st != ONYX_OK) {
        onyx_cli_error("%s: %s", path, err.message);
        return false;
    }
    return true;
}

// ----------------------------------------------------------------------------
// Labels

typedef struct labels {
    char **names; /* (n) owned strings */
    int n;
} labels;

static void labels_free(labels *l) {
    for (int i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    l->names = NULL;
    l->n = 0;
}

static bool labels_push(labels *l, const char *s, size_t len, int *cap) {
    if (l->n == *cap) {
        int nc = *cap ? *cap * 2 : 64;
        char **nn = realloc(l->names, (size_t)nc * sizeof *nn);
        if (!nn) return false;
        l->names = nn;
        *cap = nc;
    }
    char *copy = malloc(len + 1);
    if (!copy) return false;
    memcpy(copy, s, len);
    copy[len] = 0;
    l->names[l->n++] = copy;
    return true;
}

/* One label per line; "\r\n" endings accepted; a final newline ends the last
 * label rather than starting an empty one. */
static bool labels_from_lines(const char *text, size_t size, labels *l) {
    int cap = 0;
    size_t i = 0;
    while (i < size) {
        size_t j = i;
        while (j < size && text[j] != '\n')
            j++;
        size_t end = j;
        if (end > i && text[end - 1] == '\r') end--;
        if (!labels_push(l, text + i, end - i, &cap)) return false;
        i = j + 1;
    }
    return true;
}

static void skip_ws(const char **p) {
    while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
        (*p)++;
}

static void put_utf8(char *buf, size_t *n, unsigned cp) {
    if (cp < 0x80) {
        buf[(*n)++] = (char)cp;
    } else if (cp < 0x800) {
        buf[(*n)++] = (char)(0xC0 | (cp >> 6));
        buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        buf[(*n)++] = (char)(0xE0 | (cp >> 12));
        buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        buf[(*n)++] = (char)(0xF0 | (cp >> 18));
        buf[(*n)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        buf[(*n)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[(*n)++] = (char)(0x80 | (cp & 0x3F));
    }
}

static int hex4(const char *p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* A JSON array of strings; false if `text` is not one (or out of memory). */
static bool labels_from_json(const char *text, labels *l) {
    const char *p = text;
    int cap = 0;
    size_t len = strlen(text);
    char *buf = malloc(len + 1); /* decoded strings are never longer than the text */
    if (!buf) return false;
    skip_ws(&p);
    if (*p++ != '[') goto fail;
    skip_ws(&p);
    if (*p == ']') {
        p++;
        goto end;
    }
    for (;;) {
        skip_ws(&p);
        if (*p++ != '"') goto fail;
        size_t n = 0;
        while (*p != '"') {
            unsigned char ch = (unsigned char)*p;
            if (!ch || ch < 0x20) goto fail;
            if (ch != '\\') {
                buf[n++] = *p++;
                continue;
            }
            p++;
            switch (*p) {
            case '"':
            case '\\':
            case '/':
                buf[n++] = *p;
                break;
            case 'b':
                buf[n++] = '\b';
                break;
            case 'f':
                buf[n++] = '\f';
                break;
            case 'n':
                buf[n++] = '\n';
                break;
            case 'r':
                buf[n++] = '\r';
                break;
            case 't':
                buf[n++] = '\t';
                break;
            case 'u': {
                int cp = hex4(p + 1);
                if (cp < 0) goto fail;
                p += 4;
                if (cp >= 0xD800 && cp < 0xDC00 && p[1] == '\\' && p[2] == 'u') {
                    int lo = hex4(p + 3);
                    if (lo >= 0xDC00 && lo < 0xE000) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        p += 6;
                    }
                }
                put_utf8(buf, &n, (unsigned)cp);
                break;
            }
            default:
                goto fail;
            }
            p++;
        }
        p++;
        if (!labels_push(l, buf, n, &cap)) goto fail;
        skip_ws(&p);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p++ != ']') goto fail;
        break;
    }
end:
    skip_ws(&p);
    if (*p) goto fail;
    free(buf);
    return true;
fail:
    free(buf);
    labels_free(l);
    return false;
}

/* Labels from --labels FILE, else from the model's "labels" metadata (a JSON
 * list of strings, or one label per line). `source` says where they came
 * from (NULL when there are none). False after reporting an error. */
static bool load_labels(const predict_args *a, const onyx_model *m, labels *l,
                        const char **source) {
    *source = NULL;
    if (a->labels) {
        uint8_t *data = NULL;
        size_t size = 0;
        onyx_error err = {0};
        if (onyx_cli_read_file(a->labels, &data, &size, &err) != ONYX_OK) {
            onyx_cli_error("%s", err.message);
            return false;
        }
        bool ok = labels_from_lines((const char *)data, size, l);
        free(data);
        if (!ok) {
            onyx_cli_error("out of memory reading %s", a->labels);
            return false;
        }
        *source = a->labels;
        return true;
    }
    for (int i = 0; i < onyx_model_num_metadata(m); i++) {
        const char *key, *value;
        onyx_model_metadata(m, i, &key, &value);
        if (!key || !value || strcmp(key, "labels") != 0) continue;
        const char *p = value;
        skip_ws(&p);
        bool ok =
            *p == '[' ? labels_from_json(value, l) : labels_from_lines(value, strlen(value), l);
        if (!ok) {
            onyx_cli_error("%s: metadata \"labels\" is neither a JSON list of strings nor one "
                           "label per line",
                           a->model);
            return false;
        }
        *source = "metadata";
        return true;
    }
    return true;
}

// ----------------------------------------------------------------------------
// Scores

/* A probability vector already: every score in [0, 1], summing to 1 within
 * 1e-3. Otherwise the scores are taken as logits. */
static bool is_probability(const float *s, int n) {
    double sum = 0;
    for (int i = 0; i < n; i++) {
        if (!(s[i] >= 0.0f && s[i] <= 1.0f)) return false;
        sum += s[i];
    }
    return fabs(sum - 1.0) <= 1e-3;
}

static void softmax(float *s, int n) {
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++)
        if (s[i] > mx) mx = s[i];
    for (int i = 0; i < n; i++)
        sum += exp((double)s[i] - mx);
    for (int i = 0; i < n; i++)
        s[i] = (float)(exp((double)s[i] - mx) / sum);
}

/* True when score a (index ia) ranks above b (index ib): higher first, ties
 * by lower index, NaN last. */
static bool ranks_above(float a, int ia, float b, int ib) {
    if (isnan(a) != isnan(b)) return !isnan(a);
    if (a != b && !isnan(a)) return a > b;
    return ia < ib;
}

/* Indices of the k highest scores, best first (insertion into a sorted
 * list of k: O(n k)). */
static void top_k(const float *s, int n, int k, int *out) {
    int len = 0;
    for (int i = 0; i < n; i++) {
        if (len == k && !ranks_above(s[i], i, s[out[k - 1]], out[k - 1])) continue;
        int j = len < k ? len++ : k - 1;
        while (j > 0 && ranks_above(s[i], i, s[out[j - 1]], out[j - 1])) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = i;
    }
}

// ----------------------------------------------------------------------------
// Output

typedef struct results {
    const char **images; /* (n) paths */
    int n;
    int classes;
    float *scores;   /* (n, classes), after softmax where applied */
    bool *softmaxed; /* (n) */
    int k;           /* shown per image */
    int *top;        /* (n, k) */
} results;

static const char *label_of(const labels *l, int i) {
    return l && i >= 0 && i < l->n ? l->names[i] : NULL;
}

static void print_json(const predict_args *a, const image_input *in, const onyx_preprocess *p,
                       const char *out_name, const labels *l, const char *label_source,
                       const results *r) {
    onyx_json j;
    onyx_json_init(&j, stdout, true);
    onyx_json_begin_object(&j);
    onyx_json_key(&j, "model");
    onyx_json_string(&j, a->model);
    onyx_json_key(&j, "input");
    onyx_json_begin_object(&j);
    onyx_json_key(&j, "name");
    onyx_json_string(&j, in->io.name);
    onyx_json_key(&j, "dtype");
    onyx_json_string(&j, onyx_dtype_name(in->io.dtype));
    onyx_json_key(&j, "layout");
    onyx_json_string(&j, onyx_layout_name(p->layout));
    onyx_json_key(&j, "channels");
    onyx_json_int(&j, p->channels);
    onyx_json_key(&j, "height");
    onyx_json_int(&j, p->height);
    onyx_json_key(&j, "width");
    onyx_json_int(&j, p->width);
    onyx_json_end_object(&j);
    onyx_json_key(&j, "preprocess");
    onyx_json_begin_object(&j);
    onyx_json_key(&j, "preset");
    onyx_json_string(&j, onyx_norm_name(p->norm));
    onyx_json_key(&j, "mean");
    if (p->custom) {
        onyx_json_begin_array_compact(&j);
        for (int c = 0; c < p->channels; c++)
            onyx_json_float(&j, p->mean[c]);
        onyx_json_end_array(&j);
    } else {
        onyx_json_null(&j);
    }
    onyx_json_key(&j, "std");
    if (p->custom) {
        onyx_json_begin_array_compact(&j);
        for (int c = 0; c < p->channels; c++)
            onyx_json_float(&j, p->std[c]);
        onyx_json_end_array(&j);
    } else {
        onyx_json_null(&j);
    }
    onyx_json_key(&j, "filter");
    onyx_json_string(&j, onyx_resize_filter_name(p->filter));
    onyx_json_key(&j, "antialias");
    onyx_json_bool(&j, p->antialias);
    onyx_json_key(&j, "center_crop");
    if (p->center_crop > 0)
        onyx_json_double(&j, p->center_crop);
    else
        onyx_json_null(&j);
    onyx_json_end_object(&j);
    onyx_json_key(&j, "output");
    onyx_json_string(&j, out_name);
    onyx_json_key(&j, "classes");
    onyx_json_int(&j, r->classes);
    onyx_json_key(&j, "labels");
    onyx_json_string(&j, label_source); /* NULL writes null */
    onyx_json_key(&j, "predictions");
    onyx_json_begin_array(&j);
    for (int i = 0; i < r->n; i++) {
        const float *s = r->scores + (size_t)i * (size_t)r->classes;
        onyx_json_begin_object(&j);
        onyx_json_key(&j, "image");
        onyx_json_string(&j, r->images[i]);
        onyx_json_key(&j, "softmax_applied");
        onyx_json_bool(&j, r->softmaxed[i]);
        onyx_json_key(&j, "top");
        onyx_json_begin_array(&j);
        for (int t = 0; t < r->k; t++) {
            int idx = r->top[(size_t)i * (size_t)r->k + (size_t)t];
            onyx_json_begin_object(&j);
            onyx_json_key(&j, "index");
            onyx_json_int(&j, idx);
            onyx_json_key(&j, "label");
            onyx_json_string(&j, label_of(l, idx));
            onyx_json_key(&j, "score");
            onyx_json_float(&j, s[idx]);
            onyx_json_end_object(&j);
        }
        onyx_json_end_array(&j);
        if (a->all) {
            onyx_json_key(&j, "scores");
            onyx_json_begin_object(&j);
            for (int c = 0; c < r->classes; c++) {
                char key[16];
                snprintf(key, sizeof key, "%d", c);
                onyx_json_key(&j, key);
                onyx_json_float(&j, s[c]);
            }
            onyx_json_end_object(&j);
        }
        onyx_json_end_object(&j);
    }
    onyx_json_end_array(&j);
    onyx_json_end_object(&j);
    onyx_json_finish(&j);
}

static void print_table(const predict_args *a, const labels *l, const results *r) {
    for (int i = 0; i < r->n; i++) {
        const float *s = r->scores + (size_t)i * (size_t)r->classes;
        printf("%s%s%s\n", i ? "\n" : "", r->images[i],
               r->softmaxed[i] ? "  (softmax applied)" : "");
        printf("  %4s  %6s  %-10s  %s\n", "rank", "index", "score", "label");
        for (int t = 0; t < r->k; t++) {
            int idx = r->top[(size_t)i * (size_t)r->k + (size_t)t];
            const char *name = label_of(l, idx);
            printf("  %4d  %6d  %-10.6f  %s\n", t + 1, idx, s[idx], name ? name : "-");
        }
        if (a->all) {
            printf("  all scores:\n");
            for (int c = 0; c < r->classes; c++) {
                const char *name = label_of(l, c);
                printf("  %12d  %-10.6f  %s\n", c, s[c], name ? name : "-");
            }
        }
    }
}

// ----------------------------------------------------------------------------
// Running

/* Runs the `count` preprocessed images at `pixels` (padded with zero images
 * to the run's batch, converted to the input's type when it is not the
 * preprocessing type) and copies their scores into r->scores from row
 * `first`. `feed` (NULL when neither is needed) has room for one run of
 * 8-byte elements. */
static bool run_chunk(onyx_session *s, const image_input *in, const onyx_preprocess *p,
                      const predict_args *a, const void *pixels, int count, int run_batch,
                      int first, void *feed, results *r, const char **out_name) {
    size_t per = onyx_preprocess_count(p);
    size_t esize = onyx_dtype_size(in->run_dtype);
    size_t fsize = onyx_dtype_size(in->io.dtype);
    onyx_tensor_view x;
    memset(&x, 0, sizeof x);
    x.dtype = in->io.dtype;
    x.ndim = in->io.ndim;
    int b = in->io.ndim == 4 ? 1 : 0;
    if (b) x.dims[0] = run_batch;
    if (p->layout == ONYX_LAYOUT_NCHW) {
        x.dims[b] = p->channels;
        x.dims[b + 1] = p->height;
        x.dims[b + 2] = p->width;
    } else {
        x.dims[b] = p->height;
        x.dims[b + 1] = p->width;
        x.dims[b + 2] = p->channels;
    }
    const uint8_t *src = pixels;
    if (in->io.dtype != in->run_dtype) {
        /* float16/double inputs: convert the float32 pixels */
        if (onyx_convert(in->io.dtype, feed, in->run_dtype, src, (int64_t)(per * (size_t)count),
                         false) != ONYX_OK) {
            onyx_cli_error("cannot convert the input to %s", onyx_dtype_name(in->io.dtype));
            return false;
        }
        memset((uint8_t *)feed + per * (size_t)count * fsize, 0,
               per * (size_t)(run_batch - count) * fsize);
        x.data = feed;
    } else if (count < run_batch) {
        memcpy(feed, src, per * (size_t)count * esize);
        memset((uint8_t *)feed + per * (size_t)count * esize, 0,
               per * (size_t)(run_batch - count) * esize);
        x.data = feed;
    } else {
        x.data = (void *)src;
    }
    const char *name = in->io.name;
    onyx_tensor_view y;
    onyx_error err = {0};
    if (onyx_session_run_tensors(s, 1, &name, &x, 1, out_name, &y, &err) != ONYX_OK) {
        onyx_cli_error("%s", err.message);
        return false;
    }
    int64_t total = onyx_dims_count(y.ndim, y.dims);
    int rows = in->batch < 0 ? 1 : run_batch;
    bool numeric = onyx_dtype_is_float(y.dtype) || onyx_dtype_is_signed_int(y.dtype) ||
                   onyx_dtype_is_unsigned_int(y.dtype);
    if (!numeric || total <= 0 || total % rows != 0 ||
        (in->batch >= 0 && y.ndim >= 1 && y.ndim != 1 && y.dims[0] != rows) ||
        total / rows > INT32_MAX) {
        char shape[256];
        onyx_cli_error("%s: output '%s' is %s%s: expected class scores [N,classes] for a "
                       "batch of %d",
                       a->model, *out_name, onyx_dtype_name(y.dtype),
                       onyx_dims_text(shape, sizeof shape, y.ndim, y.dims), rows);
        return false;
    }
    int classes = (int)(total / rows);
    if (r->classes == 0) {
        r->classes = classes;
        r->scores = malloc((size_t)r->n * (size_t)classes * sizeof *r->scores);
        if (!r->scores) {
            onyx_cli_error("out of memory");
            return false;
        }
    } else if (r->classes != classes) {
        onyx_cli_error("%s: output '%s' changed from %d to %d classes between runs", a->model,
                       *out_name, r->classes, classes);
        return false;
    }
    if (onyx_convert(ONYX_DTYPE_FLOAT, r->scores + (size_t)first * (size_t)classes, y.dtype, y.data,
                     (int64_t)count * classes, false) != ONYX_OK) {
        onyx_cli_error("cannot read output '%s' as float", *out_name);
        return false;
    }
    return true;
}

static bool dump_input(const char *path, const image_input *in, const onyx_preprocess *p,
                       void *pixels, int n) {
    onyx_tensor_view t;
    memset(&t, 0, sizeof t);
    t.dtype = in->run_dtype;
    t.ndim = 4;
    t.dims[0] = n;
    if (p->layout == ONYX_LAYOUT_NCHW) {
        t.dims[1] = p->channels;
        t.dims[2] = p->height;
        t.dims[3] = p->width;
    } else {
        t.dims[1] = p->height;
        t.dims[2] = p->width;
        t.dims[3] = p->channels;
    }
    t.data = pixels;
    onyx_error err = {0};
    if (onyx_npy_save(path, &t, &err) != ONYX_OK) {
        onyx_cli_error("--dump-input: %s", err.message);
        return false;
    }
    return true;
}

int onyx_cli_predict(int argc, char **argv) {
    predict_args a;
    memset(&a, 0, sizeof a);
    onyx_model *m = NULL;
    onyx_session *s = NULL;
    labels lab = {0};
    results r;
    memset(&r, 0, sizeof r);
    void *pixels = NULL, *feed = NULL;
    const char *label_source = NULL;

    int status = parse_args(argc, argv, &a);
    if (status < 0) {
        status = ONYX_CLI_OK; /* --help */
        goto done;
    }
    if (status) goto done;
    status = ONYX_CLI_FAIL;

    if (!(m = onyx_cli_open_model(a.model, a.threads))) goto done;
    onyx_error err = {0};
    image_input in;
    memset(&in, 0, sizeof in);
    onyx_preprocess p;
    onyx_preprocess_init(&p);
    p.filter = a.filter;
    p.antialias = !a.no_antialias;
    p.center_crop = a.center_crop;
    if (!describe_input(m, &a, &in, &p) || !choose_norm(&a, &in, &p)) goto done;
    if (onyx_preprocess_check(&p, &err) != ONYX_OK) {
        onyx_cli_error("%s: %s", a.model, err.message);
        goto done;
    }
    onyx_io_info out_io;
    if (onyx_model_num_outputs(m) < 1 || onyx_model_output(m, 0, &out_io) != ONYX_OK) {
        onyx_cli_error("%s: the model has no outputs", a.model);
        goto done;
    }
    if (out_io.kind != ONYX_KIND_TENSOR) {
        onyx_cli_error("%s: output '%s' is a %s, not class scores", a.model, out_io.name,
                       onyx_cli_kind_name(out_io.kind));
        goto done;
    }
    if (!load_labels(&a, m, &lab, &label_source)) goto done;

    /* Images are decoded and preprocessed one run at a time, so memory stays
     * bounded by the run's batch; --dump-input keeps them all instead. */
    size_t per = onyx_preprocess_count(&p);
    size_t esize = onyx_dtype_size(in.run_dtype);
    int run_batch = in.batch > 0                 ? in.batch
                    : in.batch < 0               ? 1
                    : a.n_images < MAX_RUN_BATCH ? a.n_images
                                                 : MAX_RUN_BATCH;
    size_t feed_elems = per * (size_t)run_batch;
    size_t kept = a.dump ? (size_t)a.n_images : (size_t)run_batch; /* images in `pixels` */
    if (kept > SIZE_MAX / (per * esize) || feed_elems > SIZE_MAX / 8) {
        onyx_cli_error("too many images");
        goto done;
    }
    /* A separate feed buffer only for conversion (float16/double inputs) or
     * the zero padding of a fixed batch that the images do not fill. */
    bool need_feed = in.io.dtype != in.run_dtype || (in.batch > 1 && a.n_images % in.batch);
    pixels = malloc(kept * per * esize);          /* (kept, per) of run_dtype */
    if (need_feed) feed = malloc(feed_elems * 8); /* one run, 8 bytes per element at most */
    r.images = a.images;
    r.n = a.n_images;
    r.softmaxed = calloc((size_t)a.n_images, sizeof *r.softmaxed);
    if (!pixels || (need_feed && !feed) || !r.softmaxed) {
        onyx_cli_error("out of memory");
        goto done;
    }
    if (a.dump) {
        for (int i = 0; i < a.n_images; i++)
            if (!prepare_image(a.images[i], &a, &p, (uint8_t *)pixels + (size_t)i * per * esize))
                goto done;
        if (!dump_input(a.dump, &in, &p, pixels, a.n_images)) goto done;
    }
    if (onyx_session_new(m, NULL, &s, &err) != ONYX_OK) {
        onyx_cli_error("%s", err.message);
        goto done;
    }
    const char *out_name = out_io.name;
    for (int first = 0; first < a.n_images; first += run_batch) {
        int count = a.n_images - first < run_batch ? a.n_images - first : run_batch;
        uint8_t *chunk = (uint8_t *)pixels + (a.dump ? (size_t)first * per * esize : 0);
        for (int i = 0; i < count && !a.dump; i++)
            if (!prepare_image(a.images[first + i], &a, &p, chunk + (size_t)i * per * esize))
                goto done;
        /* A dynamic batch runs the images there are; a fixed one is padded. */
        int this_batch = in.batch > 0 ? run_batch : count;
        if (!run_chunk(s, &in, &p, &a, chunk, count, this_batch, first, feed, &r, &out_name))
            goto done;
    }

    r.k = a.top < r.classes ? a.top : r.classes;
    r.top = malloc((size_t)r.n * (size_t)r.k * sizeof *r.top);
    if (!r.top) {
        onyx_cli_error("out of memory");
        goto done;
    }
    for (int i = 0; i < r.n; i++) {
        float *sc = r.scores + (size_t)i * (size_t)r.classes;
        if (!is_probability(sc, r.classes)) {
            softmax(sc, r.classes);
            r.softmaxed[i] = true;
        }
        top_k(sc, r.classes, r.k, r.top + (size_t)i * (size_t)r.k);
    }
    if (a.json)
        print_json(&a, &in, &p, out_name, lab.n ? &lab : NULL, label_source, &r);
    else
        print_table(&a, lab.n ? &lab : NULL, &r);
    status = ONYX_CLI_OK;
done:
    free(r.scores);
    free(r.softmaxed);
    free(r.top);
    free(pixels);
    free(feed);
    labels_free(&lab);
    onyx_session_free(s);
    onyx_model_free(m);
    free(a.images);
    return status;
}
