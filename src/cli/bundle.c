/* bundle.c - `onyx bundle MODEL... [--config FILE] -o APP`: writes one
 * executable made of this onyx executable with the models and their settings
 * appended (format: src/base/selfexe.h), and the run-time side of such an
 * executable: "bundle:NAME" model specs, the argv hook of main(), settings.
 *
 * Owns: the settings file (--config), checking models before bundling,
 * writing the payload. Does not own: the payload format or mapping
 * (src/base/selfexe.c), the subcommands that run bundled models.
 */
#include "cli/bundle.h"

#include "base/error.h"
#include "base/file.h"
#include "base/selfexe.h"
#include "cli/cli.h"
#include "io/preprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char bundle_usage[] =
    "usage: onyx bundle MODEL... [--config FILE] -o APP\n"
    "       onyx bundle --list APP\n"
    "\n"
    "Writes APP: one executable holding this onyx and the models, which runs\n"
    "them without any other file: `APP predict cat.jpg`, `APP serve`,\n"
    "`APP run -i x.npy`, `APP info` (the MODEL argument is implied).\n"
    "\n"
    "  MODEL            PATH or NAME=PATH; the name defaults to the file name\n"
    "                   without .onnx (APP serve serves it under that name)\n"
    "  --config FILE    settings: `key = value` lines, `[NAME]` sections for\n"
    "                   one model; keys as config.pbtxt parameters: labels,\n"
    "                   preprocessing, image_size, layout, filter, antialias,\n"
    "                   center_crop, mean, std, max_pixels (see docs/bundle.md)\n"
    "  -o, --output APP the executable to write (replaced if it exists)\n"
    "  --list APP       print the models and settings inside APP\n";

#define MAX_LABELS_BYTES ((size_t)64 << 20)
#define MAX_CONFIG_BYTES ((size_t)1 << 20)

// ----------------------------------------------------------------------------
// Settings: the keys of config.pbtxt `parameters` that onyx reads (the
// server's src/server/image.c and repo.c), and the predict option each one
// becomes in a bundled executable.

typedef enum key_kind {
    KEY_FILE,     /* a path, embedded in the bundle */
    KEY_LAYOUT,   /* nchw | nhwc */
    KEY_SIZE,     /* HxW or N */
    KEY_PRESET,   /* a normalization preset */
    KEY_FILTER,   /* nearest | bilinear | bicubic */
    KEY_BOOL,     /* true | false */
    KEY_FRACTION, /* in (0, 1] */
    KEY_FLOATS,   /* 1 or 3 comma-separated numbers */
    KEY_POSINT,   /* a positive integer */
    KEY_KIND_COUNT
} key_kind;

typedef struct key_info {
    const char *key;
    key_kind kind;
    const char *option; /* for predict; NULL: see settings_to_options */
} key_info;

static const key_info keys[] = {
    {"labels", KEY_FILE, "--labels"},
    {"preprocessing", KEY_PRESET, "--preprocess"},
    {"image_size", KEY_SIZE, "--size"},
    {"layout", KEY_LAYOUT, "--layout"},
    {"filter", KEY_FILTER, "--filter"},
    {"antialias", KEY_BOOL, NULL},
    {"center_crop", KEY_FRACTION, "--center-crop"},
    {"mean", KEY_FLOATS, "--mean"},
    {"std", KEY_FLOATS, "--std"},
    {"max_pixels", KEY_POSINT, "--max-pixels"},
};
#define N_KEYS ((int)(sizeof keys / sizeof keys[0]))

static const key_info *find_key(const char *k) {
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].key, k) == 0) return &keys[i];
    return NULL;
}

static bool parse_number(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v)) return false;
    *out = v;
    return true;
}

/* Checks `v` for a key of kind `k`; returns NULL or what was expected. */
static const char *check_value(key_kind k, const char *v) {
    double d;
    int n;
    switch (k) {
    case KEY_FILE:
        return *v ? NULL : "a file name";
    case KEY_LAYOUT:
        return strcmp(v, "nchw") == 0 || strcmp(v, "nhwc") == 0 ? NULL : "nchw or nhwc";
    case KEY_SIZE: {
        int h, w;
        return onyx_preprocess_parse_size(v, &h, &w) ? NULL : "HxW or N (e.g. 224x224)";
    }
    case KEY_PRESET: {
        onyx_norm norm;
        return onyx_norm_parse(v, &norm) ? NULL : "imagenet, unit, minmax, caffe, tf or none";
    }
    case KEY_FILTER: {
        onyx_resize_filter f;
        return onyx_resize_filter_parse(v, &f) ? NULL : "nearest, bilinear or bicubic";
    }
    case KEY_BOOL:
        return strcmp(v, "true") == 0 || strcmp(v, "false") == 0 ? NULL : "true or false";
    case KEY_FRACTION:
        return parse_number(v, &d) && d > 0 && d <= 1 ? NULL : "a fraction in (0, 1]";
    case KEY_FLOATS: {
        float f[3];
        return onyx_preprocess_parse_channels(v, f) ? NULL : "1 or 3 comma-separated numbers";
    }
    case KEY_POSINT:
        return onyx_cli_parse_int(v, &n) && n > 0 ? NULL : "a positive integer";
    case KEY_KIND_COUNT:
        break;
    }
    return "a valid value";
}

// ----------------------------------------------------------------------------
// Specs

bool onyx_cli_is_bundle_spec(const char *spec) {
    return strncmp(spec, ONYX_BUNDLE_PREFIX, strlen(ONYX_BUNDLE_PREFIX)) == 0;
}

/* Whether a command-line argument names a model rather than an option or an
 * input: a bundle spec or a path ending in ".onnx". */
static bool names_model(const char *arg) {
    size_t n = strlen(arg);
    return onyx_cli_is_bundle_spec(arg) || (n > 5 && strcmp(arg + n - 5, ".onnx") == 0);
}

/* Opens the running executable's payload and finds entry `kind` of `spec`. */
static onyx_status open_entry(const char *spec, onyx_selfexe_kind kind, onyx_selfexe *x,
                              const onyx_selfexe_entry **e, onyx_error *err) {
    const char *name = spec + strlen(ONYX_BUNDLE_PREFIX);
    onyx_status st = onyx_selfexe_open(NULL, x, err);
    if (st) return onyx_error_prefix(err, "%s", spec), st;
    *e = onyx_selfexe_find(x, kind, name);
    if (*e) return ONYX_OK;
    char have[512] = "";
    size_t len = 0;
    for (int i = 0; i < x->n_entries && len < sizeof have; i++) {
        if (x->entries[i].kind != kind) continue;
        int n =
            snprintf(have + len, sizeof have - len, "%s%s", len ? ", " : "", x->entries[i].name);
        if (n > 0) len += (size_t)n;
    }
    bool none = !onyx_selfexe_first_model(x);
    onyx_selfexe_close(x);
    if (none)
        return onyx_errorf(err, ONYX_ERR_IO, "%s: this executable carries no bundled models", spec);
    return onyx_errorf(err, ONYX_ERR_IO, "%s: no such %s in this executable (it has: %s)", spec,
                       kind == ONYX_SELFEXE_MODEL ? "model" : "file", have[0] ? have : "none");
}

onyx_status onyx_cli_load_model(const char *spec, const onyx_options *opts, onyx_model **out,
                                onyx_error *err) {
    *out = NULL;
    if (!onyx_cli_is_bundle_spec(spec)) return onyx_model_load_file(spec, opts, out, err);
    onyx_selfexe x;
    const onyx_selfexe_entry *e;
    onyx_status st = open_entry(spec, ONYX_SELFEXE_MODEL, &x, &e, err);
    if (st) return st;
    onyx_mapping map;
    st = onyx_selfexe_map(&x, e, &map, err);
    onyx_selfexe_close(&x);
    if (st) return st;
    /* No external data: `onyx bundle` refused models that need it. */
    st = onyx_model_load_memory(map.data, map.size, NULL, opts, out, err);
    if (st) {
        onyx_file_unmap(&map);
        onyx_error_prefix(err, "%s", spec);
        return st;
    }
    /* The mapping is deliberately kept: the model borrows it until
     * onyx_model_free, and bundled models are part of the executable image,
     * loaded once per process (the server never reloads them). */
    return ONYX_OK;
}

onyx_model *onyx_cli_open_model(const char *spec, int threads) {
    onyx_options opts;
    onyx_options_init(&opts);
    opts.threads = threads;
    onyx_error err = {0};
    onyx_model *m = NULL;
    if (onyx_cli_load_model(spec, &opts, &m, &err) != ONYX_OK) onyx_cli_error("%s", err.message);
    return m;
}

onyx_status onyx_cli_read_file(const char *spec, uint8_t **out, size_t *size, onyx_error *err) {
    *out = NULL;
    *size = 0;
    if (!onyx_cli_is_bundle_spec(spec)) {
        uint8_t *data;
        size_t n;
        onyx_status st = onyx_file_read(spec, &data, &n, err);
        if (st) return st;
        uint8_t *z = realloc(data, n + 1);
        if (!z) {
            free(data);
            return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory reading %s", spec);
        }
        z[n] = 0;
        *out = z;
        *size = n;
        return ONYX_OK;
    }
    onyx_selfexe x;
    const onyx_selfexe_entry *e;
    onyx_status st = open_entry(spec, ONYX_SELFEXE_FILE, &x, &e, err);
    if (st) return st;
    st = onyx_selfexe_read(&x, e, out, size, err);
    onyx_selfexe_close(&x);
    return st;
}

/* malloc'ed "bundle:" + name, or NULL. */
static char *make_spec(const char *name) {
    size_t p = strlen(ONYX_BUNDLE_PREFIX), n = strlen(name);
    char *s = malloc(p + n + 1);
    if (s) memcpy(s, ONYX_BUNDLE_PREFIX, p), memcpy(s + p, name, n + 1);
    return s;
}

onyx_status onyx_cli_bundle_settings(const char *spec, int *n, char ***keys_out, char ***values_out,
                                     onyx_error *err) {
    *n = 0;
    *keys_out = *values_out = NULL;
    onyx_selfexe x;
    const onyx_selfexe_entry *e;
    onyx_status st = open_entry(spec, ONYX_SELFEXE_MODEL, &x, &e, err);
    if (st) return st;
    char **k = calloc((size_t)x.n_params + 1, sizeof *k);
    char **v = calloc((size_t)x.n_params + 1, sizeof *v);
    int count = 0;
    if (!k || !v) goto oom;
    for (int i = 0; i < x.n_params; i++) {
        const onyx_selfexe_param *p = &x.params[i];
        if (strcmp(p->model, e->name) != 0) continue;
        k[count] = strdup(p->key);
        v[count] = strcmp(p->key, "labels") == 0 ? make_spec(p->value) : strdup(p->value);
        count++;
        if (!k[count - 1] || !v[count - 1]) goto oom;
    }
    onyx_selfexe_close(&x);
    *n = count;
    *keys_out = k;
    *values_out = v;
    return ONYX_OK;
oom:
    for (int i = 0; i < count; i++)
        free(k[i]), free(v[i]);
    free(k);
    free(v);
    onyx_selfexe_close(&x);
    return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
}

// ----------------------------------------------------------------------------
// The hook of main()

/* Appends the predict options for the settings of `model` to argv at *n. */
static bool settings_to_options(const onyx_selfexe *x, const char *model, char **argv, int *n) {
    for (int i = 0; i < x->n_params; i++) {
        const onyx_selfexe_param *p = &x->params[i];
        const key_info *k = find_key(p->key);
        if (strcmp(p->model, model) != 0 || !k) continue;
        if (k->kind == KEY_BOOL) { /* antialias: only "false" changes predict */
            if (strcmp(p->value, "false") == 0) argv[(*n)++] = "--no-antialias";
            continue;
        }
        char *v = k->kind == KEY_FILE ? make_spec(p->value) : strdup(p->value);
        if (!v) return false;
        argv[(*n)++] = (char *)k->option;
        argv[(*n)++] = v;
    }
    return true;
}

int onyx_cli_bundle_argv(int *argc, char ***argv) {
    int ac = *argc;
    char **av = *argv;
    if (ac < 2) return ONYX_CLI_OK;
    const char *cmd = av[1];
    bool single = strcmp(cmd, "info") == 0 || strcmp(cmd, "run") == 0 ||
                  strcmp(cmd, "predict") == 0 || strcmp(cmd, "bench") == 0;
    bool serve = strcmp(cmd, "serve") == 0;
    if (!single && !serve) return ONYX_CLI_OK;

    onyx_selfexe x;
    onyx_error err;
    onyx_status st = onyx_selfexe_open(NULL, &x, &err);
    if (st == ONYX_ERR_IO) return ONYX_CLI_OK; /* cannot look: behave as plain onyx */
    if (st) {
        onyx_cli_error("%s", err.message);
        return ONYX_CLI_FAIL;
    }
    const onyx_selfexe_entry *first = onyx_selfexe_first_model(&x);
    if (!first) {
        onyx_selfexe_close(&x);
        return ONYX_CLI_OK;
    }

    /* Worst case: every model (serve), or one model plus two arguments per setting. */
    size_t extra = (size_t)x.n_entries + 2 * (size_t)x.n_params + 1;
    char **nv = calloc((size_t)ac + extra + 1, sizeof *nv);
    if (!nv) goto oom;
    int n = 0;
    nv[n++] = av[0];
    nv[n++] = av[1];
    int rest = 2; /* the first argument of the user's that is not yet copied */
    if (single) {
        const char *model = NULL;
        if (ac > 2 && names_model(av[2])) {
            nv[n++] = av[2];
            rest = 3;
            if (onyx_cli_is_bundle_spec(av[2])) model = av[2] + strlen(ONYX_BUNDLE_PREFIX);
        } else {
            model = first->name;
            if (!(nv[n++] = make_spec(model))) goto oom;
        }
        if (model && strcmp(cmd, "predict") == 0 && !settings_to_options(&x, model, nv, &n))
            goto oom;
    } else {
        bool given = false;
        for (int i = 2; i < ac; i++)
            given |= names_model(av[i]) || strncmp(av[i], "--model-repository", 18) == 0;
        for (int i = 0; i < x.n_entries && !given; i++)
            if (x.entries[i].kind == ONYX_SELFEXE_MODEL &&
                !(nv[n++] = make_spec(x.entries[i].name)))
                goto oom;
    }
    for (int i = rest; i < ac; i++)
        nv[n++] = av[i];
    nv[n] = NULL;
    onyx_selfexe_close(&x);
    *argc = n;
    *argv = nv;
    return ONYX_CLI_OK;
oom:
    onyx_selfexe_close(&x);
    onyx_cli_error("out of memory");
    return ONYX_CLI_FAIL;
}

// ----------------------------------------------------------------------------
// Writing a bundle: the models and their settings

typedef struct setting {
    const key_info *key;
    char *value; /* labels: the source path until written, then the entry name */
} setting;

typedef struct bmodel {
    const char *path;
    char name[ONYX_SELFEXE_MAX_NAME + 1];
    setting settings[N_KEYS];
    int n_settings;
    uint8_t *labels; /* (labels_size) the labels file's bytes, or NULL */
    size_t labels_size;
    char labels_entry[2 * ONYX_SELFEXE_MAX_NAME + 2];
    onyx_mapping map;
    uint64_t offset, labels_offset;
} bmodel;

typedef struct bundle_args {
    bmodel *models; /* (n_models) */
    int n_models;
    const char *config, *output, *list;
} bundle_args;

static void bundle_args_free(bundle_args *a) {
    for (int i = 0; i < a->n_models; i++) {
        bmodel *m = &a->models[i];
        for (int k = 0; k < m->n_settings; k++)
            free(m->settings[k].value);
        free(m->labels);
        onyx_file_unmap(&m->map);
    }
    free(a->models);
}

/* Sets `key` of model m to a copy of `value` (replacing an earlier value). */
static bool set_setting(bmodel *m, const key_info *k, const char *value) {
    char *v = strdup(value);
    if (!v) return false;
    for (int i = 0; i < m->n_settings; i++) {
        if (m->settings[i].key == k) {
            free(m->settings[i].value);
            m->settings[i] = (setting){k, v};
            return true;
        }
    }
    m->settings[m->n_settings++] = (setting){k, v};
    return true;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = 0;
    return s;
}

/* One `key = value` line of the settings file. */
typedef struct config_line {
    int model; /* index of the [NAME] section's model, -1 before any section */
    const key_info *key;
    char *value; /* labels: resolved against the config file's directory */
    int line;
} config_line;

/* Parses one line into *out (value malloc'ed) or moves *section. Returns 1
 * for a setting, 0 for anything else, or an exit status + 2 on error. */
static int config_parse_line(bundle_args *a, char *s, int line, int *section, config_line *out) {
    s = trim(s);
    if (!*s || *s == '#' || *s == ';') return 0;
    if (*s == '[') {
        size_t n = strlen(s);
        if (s[n - 1] != ']') {
            onyx_cli_error("%s line %d: a section is written [NAME]", a->config, line);
            return ONYX_CLI_USAGE + 2;
        }
        s[n - 1] = 0;
        char *name = trim(s + 1);
        for (int i = 0; i < a->n_models; i++) {
            if (strcmp(a->models[i].name, name) == 0) {
                *section = i;
                return 0;
            }
        }
        onyx_cli_error("%s line %d: section [%s] names no bundled model", a->config, line, name);
        return ONYX_CLI_USAGE + 2;
    }
    char *eq = strchr(s, '=');
    if (!eq) {
        onyx_cli_error("%s line %d: expected `key = value`, `[NAME]` or a # comment", a->config,
                       line);
        return ONYX_CLI_USAGE + 2;
    }
    *eq = 0;
    char *key = trim(s), *value = trim(eq + 1);
    size_t vl = strlen(value);
    if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
        value[vl - 1] = 0;
        value++;
    }
    if (strcmp(key, "preprocess") == 0) key = "preprocessing"; /* the server's alias */
    const key_info *k = find_key(key);
    if (!k) {
        char known[256] = "";
        for (int i = 0; i < N_KEYS; i++)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "",
                     keys[i].key);
        onyx_cli_error("%s line %d: unknown key '%s' (known: %s)", a->config, line, key, known);
        return ONYX_CLI_USAGE + 2;
    }
    const char *why = check_value(k->kind, value);
    if (why) {
        onyx_cli_error("%s line %d: %s must be %s, not '%s'", a->config, line, k->key, why, value);
        return ONYX_CLI_USAGE + 2;
    }
    /* A file is named relative to the config file's directory. */
    const char *slash = strrchr(a->config, '/');
    size_t dl =
        k->kind == KEY_FILE && value[0] != '/' && slash ? (size_t)(slash - a->config) + 1 : 0;
    out->value = malloc(dl + strlen(value) + 1);
    if (!out->value) {
        onyx_cli_error("out of memory");
        return ONYX_CLI_FAIL + 2;
    }
    memcpy(out->value, a->config, dl);
    strcpy(out->value + dl, value);
    out->model = *section;
    out->key = k;
    out->line = line;
    return 1;
}

/* Parses the --config file into the models' settings. Keys before any
 * [NAME] section apply to every model; a section's keys to model NAME only,
 * and win over the former wherever they appear. A key set twice for the
 * same scope is an error. Returns an exit status. */
static int parse_config(bundle_args *a) {
    uint8_t *data = NULL;
    size_t size = 0;
    onyx_error err;
    if (onyx_cli_read_file(a->config, &data, &size, &err) != ONYX_OK) {
        onyx_cli_error("%s", err.message);
        return ONYX_CLI_FAIL;
    }
    int status = ONYX_CLI_USAGE, n = 0;
    config_line *lines = NULL;
    if (size > MAX_CONFIG_BYTES || strlen((char *)data) != size) {
        onyx_cli_error("%s: not a settings file (too large, or binary)", a->config);
        goto done;
    }
    size_t n_lines = 1;
    for (size_t i = 0; i < size; i++)
        n_lines += data[i] == '\n';
    lines = calloc(n_lines, sizeof *lines);
    if (!lines) {
        onyx_cli_error("out of memory");
        status = ONYX_CLI_FAIL;
        goto done;
    }
    int section = -1, lineno = 0;
    for (char *p = (char *)data, *nl; p; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl) *nl = 0;
        int r = config_parse_line(a, p, ++lineno, &section, &lines[n]);
        if (r >= 2) {
            status = r - 2;
            goto done;
        }
        if (r == 0) continue;
        for (int i = 0; i < n; i++) {
            if (lines[i].model == lines[n].model && lines[i].key == lines[n].key) {
                onyx_cli_error("%s line %d: '%s' is already set on line %d", a->config, lineno,
                               lines[n].key->key, lines[i].line);
                free(lines[n].value);
                goto done;
            }
        }
        n++;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < n; i++) {
            const config_line *c = &lines[i];
            if ((c->model >= 0) != (pass == 1)) continue;
            for (int m = 0; m < a->n_models; m++) {
                if (c->model >= 0 && c->model != m) continue;
                if (!set_setting(&a->models[m], c->key, c->value)) {
                    onyx_cli_error("out of memory");
                    status = ONYX_CLI_FAIL;
                    goto done;
                }
            }
        }
    }
    status = ONYX_CLI_OK;
done:
    for (int i = 0; i < n; i++)
        free(lines[i].value);
    free(lines);
    free(data);
    return status;
}

/* A file name reduced to [A-Za-z0-9._-], not starting with '.'. */
static void entry_base(const char *path, char *out, size_t cap) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = 0;
    for (; *b && n + 1 < cap && n < 64; b++) {
        char c = *b;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        out[n] = ok && !(n == 0 && c == '.') ? c : '_';
        n++;
    }
    if (n == 0) out[n++] = 'f';
    out[n] = 0;
}

/* Reads the labels files and checks each model loads as the bundled
 * executable will load it: from memory, without a directory for external
 * data. Returns an exit status. */
static int prepare_models(bundle_args *a) {
    for (int i = 0; i < a->n_models; i++) {
        bmodel *m = &a->models[i];
        onyx_error err;
        if (onyx_file_map(m->path, &m->map, &err) != ONYX_OK) {
            onyx_cli_error("%s", err.message);
            return ONYX_CLI_FAIL;
        }
        onyx_options opts;
        onyx_options_init(&opts);
        opts.threads = 1; /* nothing runs */
        onyx_model *model = NULL;
        onyx_status st =
            m->map.size
                ? onyx_model_load_memory(m->map.data, m->map.size, NULL, &opts, &model, &err)
                : onyx_errorf(&err, ONYX_ERR_INVALID_MODEL, "the file is empty");
        onyx_model_free(model);
        if (st) {
            bool external = strstr(err.message, "external data") != NULL;
            onyx_cli_error("%s: cannot be bundled: %s%s", m->path, err.message,
                           external ? " (bundle a model with its tensors inside: onnx.save(model, "
                                      "path, save_as_external_data=False))"
                                    : "");
            return ONYX_CLI_FAIL;
        }
        for (int k = 0; k < m->n_settings; k++) {
            setting *s = &m->settings[k];
            if (s->key->kind != KEY_FILE) continue;
            uint8_t *data;
            size_t size;
            if (onyx_cli_read_file(s->value, &data, &size, &err) != ONYX_OK) {
                onyx_cli_error("%s: %s: %s", a->config, s->key->key, err.message);
                return ONYX_CLI_FAIL;
            }
            if (size > MAX_LABELS_BYTES) {
                free(data);
                onyx_cli_error("%s: labels file %s is larger than 64 MB", a->config, s->value);
                return ONYX_CLI_FAIL;
            }
            char base[80];
            entry_base(s->value, base, sizeof base);
            snprintf(m->labels_entry, sizeof m->labels_entry, "%s/%s", m->name, base);
            free(m->labels);
            m->labels = data;
            m->labels_size = size;
            char *entry = strdup(m->labels_entry);
            if (!entry) {
                onyx_cli_error("out of memory");
                return ONYX_CLI_FAIL;
            }
            free(s->value);
            s->value = entry;
        }
    }
    return ONYX_CLI_OK;
}

// ----------------------------------------------------------------------------
// Writing

static int write_all(int fd, const void *data, size_t n) {
    const uint8_t *p = data;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Pads with zeros from *pos to the next multiple of ONYX_SELFEXE_ALIGN. */
static int pad(int fd, uint64_t *pos) {
    static const uint8_t zeros[4096];
    uint64_t target = (*pos + ONYX_SELFEXE_ALIGN - 1) / ONYX_SELFEXE_ALIGN * ONYX_SELFEXE_ALIGN;
    while (*pos < target) {
        size_t n = target - *pos < sizeof zeros ? (size_t)(target - *pos) : sizeof zeros;
        if (write_all(fd, zeros, n)) return -1;
        *pos += n;
    }
    return 0;
}

/* Copies the first `n` bytes of the running executable (without any payload
 * it carries itself) to fd. */
static int copy_executable(const onyx_selfexe *self, int fd) {
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = malloc(CHUNK);
    if (!buf) return -1;
    uint64_t off = 0;
    int rc = 0;
    while (off < self->exe_size && rc == 0) {
        size_t want = self->exe_size - off < CHUNK ? (size_t)(self->exe_size - off) : CHUNK;
        ssize_t r = pread(self->fd, buf, want, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0 || write_all(fd, buf, (size_t)r)) rc = -1;
        off += r > 0 ? (uint64_t)r : 0;
    }
    free(buf);
    return rc;
}

/* Writes the bundle to `path` (a temporary name; the caller renames it). */
static int write_bundle(const bundle_args *a, const onyx_selfexe *self, const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0777);
    if (fd < 0) {
        onyx_cli_error("cannot create %s: %s", path, strerror(errno));
        return ONYX_CLI_FAIL;
    }
    char *man = NULL;
    size_t man_len = 0;
    uint64_t pos = self->exe_size;
    if (copy_executable(self, fd)) goto io;
    /* Offsets first, so the manifest can be written after the data. */
    for (int i = 0; i < a->n_models; i++) {
        bmodel *m = &a->models[i];
        if (pad(fd, &pos)) goto io;
        m->offset = pos;
        if (write_all(fd, m->map.data, m->map.size)) goto io;
        pos += m->map.size;
    }
    for (int i = 0; i < a->n_models; i++) {
        bmodel *m = &a->models[i];
        if (!m->labels) continue;
        m->labels_offset = pos;
        if (write_all(fd, m->labels, m->labels_size)) goto io;
        pos += m->labels_size;
    }
    FILE *mf = open_memstream(&man, &man_len);
    if (!mf) {
        onyx_cli_error("out of memory");
        goto fail;
    }
    fprintf(mf, "onyx-bundle 1\n");
    for (int i = 0; i < a->n_models; i++) {
        const bmodel *m = &a->models[i];
        fprintf(mf, "model %s %llu %llu\n", m->name, (unsigned long long)m->offset,
                (unsigned long long)m->map.size);
        if (m->labels)
            fprintf(mf, "file %s %llu %llu\n", m->labels_entry,
                    (unsigned long long)m->labels_offset, (unsigned long long)m->labels_size);
    }
    for (int i = 0; i < a->n_models; i++) {
        const bmodel *m = &a->models[i];
        for (int k = 0; k < m->n_settings; k++)
            fprintf(mf, "param %s %s %s\n", m->name, m->settings[k].key->key, m->settings[k].value);
    }
    if (fclose(mf) != 0 || !man) {
        onyx_cli_error("out of memory");
        goto fail;
    }
    uint64_t moff = pos;
    if (write_all(fd, man, man_len)) goto io;
    pos += man_len;
    uint8_t trailer[ONYX_SELFEXE_TRAILER];
    onyx_selfexe_trailer(trailer, self->exe_size, moff, man_len, pos + sizeof trailer);
    if (write_all(fd, trailer, sizeof trailer)) goto io;
    if (close(fd) != 0) {
        fd = -1;
        goto io;
    }
    free(man);
    return ONYX_CLI_OK;
io:
    onyx_cli_error("cannot write %s: %s", path, strerror(errno));
fail:
    if (fd >= 0) close(fd);
    free(man);
    return ONYX_CLI_FAIL;
}

static double mb(uint64_t bytes) {
    return (double)bytes / (1024.0 * 1024.0);
}

/* `onyx bundle --list APP`. */
static int list_bundle(const char *path) {
    onyx_selfexe x;
    onyx_error err;
    if (onyx_selfexe_open(path, &x, &err) != ONYX_OK) {
        onyx_cli_error("%s", err.message);
        return ONYX_CLI_FAIL;
    }
    if (!onyx_selfexe_first_model(&x)) {
        onyx_selfexe_close(&x);
        onyx_cli_error("%s carries no bundled models", path);
        return ONYX_CLI_FAIL;
    }
    printf("executable %s: %llu bytes of onyx, %llu bytes in all\n", path,
           (unsigned long long)x.exe_size, (unsigned long long)x.file_size);
    for (int i = 0; i < x.n_entries; i++) {
        const onyx_selfexe_entry *e = &x.entries[i];
        if (e->kind != ONYX_SELFEXE_MODEL) continue;
        printf("model %s: %llu bytes (%s%s)\n", e->name, (unsigned long long)e->size,
               ONYX_BUNDLE_PREFIX, e->name);
        for (int k = 0; k < x.n_params; k++) {
            const onyx_selfexe_param *p = &x.params[k];
            if (strcmp(p->model, e->name) != 0) continue;
            const onyx_selfexe_entry *f = onyx_selfexe_find(&x, ONYX_SELFEXE_FILE, p->value);
            if (strcmp(p->key, "labels") == 0 && f)
                printf("  %s = %s%s (%llu bytes)\n", p->key, ONYX_BUNDLE_PREFIX, p->value,
                       (unsigned long long)f->size);
            else
                printf("  %s = %s\n", p->key, p->value);
        }
    }
    onyx_selfexe_close(&x);
    return ONYX_CLI_OK;
}

/* Returns an exit status, or -1 after --help. */
static int parse_args(int argc, char **argv, bundle_args *a) {
    a->models = calloc((size_t)argc, sizeof *a->models);
    if (!a->models) {
        onyx_cli_error("out of memory");
        return ONYX_CLI_FAIL;
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *v = NULL;
        int r;
        if (arg[0] != '-' || !arg[1]) {
            bmodel *m = &a->models[a->n_models++];
            const char *eq = strchr(arg, '=');
            const char *base;
            size_t n;
            if (eq && eq > arg && (size_t)(eq - arg) <= ONYX_SELFEXE_MAX_NAME) {
                base = arg;
                n = (size_t)(eq - arg);
                m->path = eq + 1;
            } else {
                m->path = arg;
                base = strrchr(arg, '/') ? strrchr(arg, '/') + 1 : arg;
                n = strlen(base);
                if (n > 5 && strcmp(base + n - 5, ".onnx") == 0) n -= 5;
            }
            if (n > ONYX_SELFEXE_MAX_NAME) {
                onyx_cli_error("bundle: the name of %s is longer than %d characters (give one as "
                               "NAME=PATH)",
                               m->path, ONYX_SELFEXE_MAX_NAME);
                return ONYX_CLI_USAGE;
            }
            memcpy(m->name, base, n);
            m->name[n] = 0;
            if (!onyx_selfexe_valid_name(m->name, 0)) {
                onyx_cli_error("bundle: '%s' is not a usable model name (letters, digits, '.', "
                               "'_' and '-'; give one as NAME=%s)",
                               m->name, m->path);
                return ONYX_CLI_USAGE;
            }
            for (int k = 0; k + 1 < a->n_models; k++) {
                if (strcmp(a->models[k].name, m->name) == 0) {
                    onyx_cli_error("bundle: two models are named '%s' (name one as NAME=PATH)",
                                   m->name);
                    return ONYX_CLI_USAGE;
                }
            }
        } else if ((r = onyx_cli_option(argc, argv, &i, "-o", "--output", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            a->output = v;
        } else if ((r = onyx_cli_option(argc, argv, &i, NULL, "--config", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            a->config = v;
        } else if ((r = onyx_cli_option(argc, argv, &i, NULL, "--list", &v)) != 0) {
            if (r < 0) return ONYX_CLI_USAGE;
            a->list = v;
        } else if (onyx_cli_option(argc, argv, &i, "-h", "--help", NULL) == 1) {
            fputs(bundle_usage, stdout);
            return -1;
        } else {
            return onyx_cli_usage_error(bundle_usage, "bundle: unknown option '%s'", arg);
        }
    }
    if (a->list) {
        if (a->n_models || a->output || a->config) {
            onyx_cli_error("bundle: --list takes no other arguments");
            return ONYX_CLI_USAGE;
        }
        return ONYX_CLI_OK;
    }
    if (!a->n_models || !a->output) {
        return onyx_cli_usage_error(bundle_usage, "bundle: %s",
                                    !a->n_models ? "no MODEL given" : "no -o APP given");
    }
    return ONYX_CLI_OK;
}

int onyx_cli_bundle(int argc, char **argv) {
    bundle_args a = {0};
    onyx_selfexe self = {.fd = -1};
    char *tmp = NULL;
    int status = parse_args(argc, argv, &a);
    if (status != ONYX_CLI_OK) {
        if (status < 0) status = ONYX_CLI_OK;
        goto done;
    }
    if (a.list) {
        status = list_bundle(a.list);
        goto done;
    }
    if (a.config && (status = parse_config(&a)) != ONYX_CLI_OK) goto done;
    if ((status = prepare_models(&a)) != ONYX_CLI_OK) goto done;

    onyx_error err;
    if (onyx_selfexe_open(NULL, &self, &err) != ONYX_OK) {
        onyx_cli_error("cannot read the onyx executable itself: %s", err.message);
        status = ONYX_CLI_FAIL;
        goto done;
    }
    size_t ol = strlen(a.output);
    tmp = malloc(ol + 32);
    if (!tmp) {
        onyx_cli_error("out of memory");
        status = ONYX_CLI_FAIL;
        goto done;
    }
    snprintf(tmp, ol + 32, "%s.tmp-%ld", a.output, (long)getpid());
    if ((status = write_bundle(&a, &self, tmp)) != ONYX_CLI_OK) {
        unlink(tmp);
        goto done;
    }
    /* Read back what was written before it replaces anything. */
    onyx_selfexe check;
    if (onyx_selfexe_open(tmp, &check, &err) != ONYX_OK) {
        onyx_cli_error("%s does not read back: %s", tmp, err.message);
        unlink(tmp);
        status = ONYX_CLI_FAIL;
        goto done;
    }
    uint64_t total = check.file_size;
    onyx_selfexe_close(&check);
    if (rename(tmp, a.output) != 0) {
        onyx_cli_error("cannot write %s: %s", a.output, strerror(errno));
        unlink(tmp);
        status = ONYX_CLI_FAIL;
        goto done;
    }
    uint64_t models = 0;
    for (int i = 0; i < a.n_models; i++)
        models += a.models[i].map.size;
    printf("%s: %.1f MB (onyx %.1f MB, %d model%s %.1f MB)\n", a.output, mb(total),
           mb(self.exe_size), a.n_models, a.n_models == 1 ? "" : "s", mb(models));
    for (int i = 0; i < a.n_models; i++)
        printf("  %s%s  from %s\n", ONYX_BUNDLE_PREFIX, a.models[i].name, a.models[i].path);
    status = ONYX_CLI_OK;
done:
    free(tmp);
    if (self.fd >= 0) onyx_selfexe_close(&self);
    bundle_args_free(&a);
    return status;
}
