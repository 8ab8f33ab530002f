/* repo.c - the model repository: the sources (MODEL files, or a Triton-style
 * directory DIR/<model>/<version>/model.onnx with optional config.pbtxt),
 * loading versions, the version policy, hot reload and the reference counts
 * that let a version be swapped out while requests still run on it.
 *
 * Owns: which versions are served and their lifetime, config.pbtxt meaning.
 * Does not own: the text-format syntax (pbtxt.c), running models (sched.c).
 */
#include "cli/bundle.h"
#include "server/pbtxt.h"
#include "server/server.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef struct repo_model {
    char *name;
    onyx_model_version **v; /* (nv) ascending by version; the table holds a reference */
    int nv;
    char *error;   /* last load error or NULL */
    bool seen;     /* marked during a scan */
    bool required; /* present at startup: readiness waits for it */
} repo_model;

struct onyx_repo {
    pthread_mutex_t mu;        /* guards models/n_models and each model's fields */
    pthread_mutex_t reload_mu; /* one scan at a time */
    const onyx_server_options *opt;
    const onyx_slog *log;
    repo_model **models;
    int n_models;
    bool started; /* the first scan is over */
};

// ----------------------------------------------------------------------------
// Data types

static const struct {
    onyx_dtype t;
    const char *kserve;
} dtype_names[] = {
    {ONYX_DTYPE_BOOL, "BOOL"},     {ONYX_DTYPE_UINT8, "UINT8"},   {ONYX_DTYPE_UINT16, "UINT16"},
    {ONYX_DTYPE_UINT32, "UINT32"}, {ONYX_DTYPE_UINT64, "UINT64"}, {ONYX_DTYPE_INT8, "INT8"},
    {ONYX_DTYPE_INT16, "INT16"},   {ONYX_DTYPE_INT32, "INT32"},   {ONYX_DTYPE_INT64, "INT64"},
    {ONYX_DTYPE_FLOAT16, "FP16"},  {ONYX_DTYPE_FLOAT, "FP32"},    {ONYX_DTYPE_DOUBLE, "FP64"},
    {ONYX_DTYPE_STRING, "BYTES"},  {ONYX_DTYPE_BFLOAT16, "BF16"},
};

const char *onyx_kserve_dtype(onyx_dtype t) {
    for (size_t i = 0; i < sizeof dtype_names / sizeof dtype_names[0]; i++)
        if (dtype_names[i].t == t) return dtype_names[i].kserve;
    return NULL;
}

onyx_dtype onyx_kserve_dtype_parse(const char *s) {
    if (strncmp(s, "TYPE_", 5) == 0) {
        s += 5;
        if (strcmp(s, "STRING") == 0) return ONYX_DTYPE_STRING;
    }
    for (size_t i = 0; i < sizeof dtype_names / sizeof dtype_names[0]; i++)
        if (strcmp(dtype_names[i].kserve, s) == 0) return dtype_names[i].t;
    return ONYX_DTYPE_UNDEFINED;
}

// ----------------------------------------------------------------------------
// Configuration

const char *onyx_config_param(const onyx_model_config *c, const char *key) {
    for (int i = 0; i < c->n_params; i++)
        if (strcmp(c->param_keys[i], key) == 0) return c->param_values[i];
    return NULL;
}

static void config_deinit(onyx_model_config *c) {
    free(c->name);
    free(c->specific);
    for (int i = 0; i < c->n_inputs; i++)
        free(c->inputs[i].name);
    for (int i = 0; i < c->n_outputs; i++)
        free(c->outputs[i].name);
    free(c->inputs);
    free(c->outputs);
    for (int i = 0; i < c->n_params; i++)
        free(c->param_keys[i]), free(c->param_values[i]);
    free(c->param_keys);
    free(c->param_values);
    free(c->default_model_filename);
    memset(c, 0, sizeof *c);
}

static void config_defaults(onyx_model_config *c) {
    memset(c, 0, sizeof *c);
    c->policy = ONYX_POLICY_LATEST;
    c->latest_n = 1;
}

#define CFG_FAIL(...)                                                                              \
    do {                                                                                           \
        snprintf(err, cap, __VA_ARGS__);                                                           \
        return -1;                                                                                 \
    } while (0)

static int read_io(const onyx_pb_msg *m, const char *field, onyx_io_spec **out, int *n, char *err,
                   size_t cap) {
    int it = 0;
    const onyx_pb_field *f;
    while ((f = onyx_pb_next(m, field, &it))) {
        if (!f->is_msg) CFG_FAIL("line %d: '%s' must be a message", f->line, field);
        onyx_io_spec *ns = realloc(*out, (size_t)(*n + 1) * sizeof *ns);
        if (!ns) CFG_FAIL("out of memory");
        *out = ns;
        onyx_io_spec *s = &ns[(*n)++];
        memset(s, 0, sizeof *s);
        s->ndim = -1;
        int j = 0;
        const onyx_pb_field *g = onyx_pb_next(&f->msg, "name", &j);
        if (!g || g->is_msg || !g->text) CFG_FAIL("line %d: %s without a name", f->line, field);
        s->name = strdup(g->text);
        if (!s->name) CFG_FAIL("out of memory");
        j = 0;
        if ((g = onyx_pb_next(&f->msg, "data_type", &j))) {
            s->dtype = g->text ? onyx_kserve_dtype_parse(g->text) : ONYX_DTYPE_UNDEFINED;
            if (s->dtype == ONYX_DTYPE_UNDEFINED)
                CFG_FAIL("line %d: unknown data_type '%s' for '%s'", g->line,
                         g->text ? g->text : "?", s->name);
        }
        j = 0;
        bool any = false;
        while ((g = onyx_pb_next(&f->msg, "dims", &j))) {
            int64_t d;
            if (onyx_pb_int(g, &d) || d < -1)
                CFG_FAIL("line %d: bad dims of '%s'", g->line, s->name);
            if (!any) s->ndim = 0, any = true;
            if (s->ndim >= ONYX_MAX_DIMS)
                CFG_FAIL("line %d: too many dims for '%s'", g->line, s->name);
            s->dims[s->ndim++] = d;
        }
    }
    return 0;
}

/* Reads the meaning out of a parsed config. */
static int config_from_tree(const onyx_pb_msg *m, onyx_model_config *c, char *err, size_t cap) {
    int it = 0;
    const onyx_pb_field *f;
    int64_t v;
    if ((f = onyx_pb_next(m, "name", &it)) && f->text && *f->text) {
        c->name = strdup(f->text);
        if (!c->name) CFG_FAIL("out of memory");
    }
    it = 0;
    if ((f = onyx_pb_next(m, "platform", &it)) && f->text && strcmp(f->text, "onnxruntime_onnx") &&
        strcmp(f->text, "onnx_onnxv1") && strcmp(f->text, "onyx"))
        CFG_FAIL("line %d: platform '%s' is not served by onyx (use onnxruntime_onnx)", f->line,
                 f->text);
    it = 0;
    if ((f = onyx_pb_next(m, "max_batch_size", &it))) {
        if (onyx_pb_int(f, &v) || v < 0 || v > 1 << 20)
            CFG_FAIL("line %d: max_batch_size must be an integer in [0, 1048576]", f->line);
        c->max_batch_size = (int)v;
    }
    it = 0;
    if ((f = onyx_pb_next(m, "default_model_filename", &it)) && f->text) {
        if (strchr(f->text, '/')) CFG_FAIL("line %d: default_model_filename has a '/'", f->line);
        c->default_model_filename = strdup(f->text);
        if (!c->default_model_filename) CFG_FAIL("out of memory");
    }
    it = 0;
    if ((f = onyx_pb_next(m, "dynamic_batching", &it))) {
        if (!f->is_msg) CFG_FAIL("line %d: dynamic_batching must be a message", f->line);
        c->dynamic_batching = true;
        int j = 0;
        const onyx_pb_field *g;
        while ((g = onyx_pb_next(&f->msg, "preferred_batch_size", &j))) {
            if (onyx_pb_int(g, &v) || v < 1 || v > 1 << 20)
                CFG_FAIL("line %d: bad preferred_batch_size", g->line);
            if (c->n_preferred < 16) c->preferred[c->n_preferred++] = (int)v;
        }
        j = 0;
        if ((g = onyx_pb_next(&f->msg, "max_queue_delay_microseconds", &j))) {
            if (onyx_pb_int(g, &v) || v < 0 || v > 60000000)
                CFG_FAIL("line %d: max_queue_delay_microseconds must be in [0, 60000000]", g->line);
            c->max_queue_delay_us = v;
        }
    }
    it = 0;
    while ((f = onyx_pb_next(m, "instance_group", &it))) {
        if (!f->is_msg) CFG_FAIL("line %d: instance_group must be a message", f->line);
        int j = 0;
        const onyx_pb_field *g = onyx_pb_next(&f->msg, "count", &j);
        int64_t cnt = 1;
        if (g && (onyx_pb_int(g, &cnt) || cnt < 1 || cnt > 1024))
            CFG_FAIL("line %d: instance_group count must be in [1, 1024]", g->line);
        j = 0;
        g = onyx_pb_next(&f->msg, "kind", &j);
        if (g && g->text && strcmp(g->text, "KIND_CPU") && strcmp(g->text, "KIND_AUTO"))
            CFG_FAIL("line %d: instance_group kind %s is not available (onyx runs on the CPU)",
                     g->line, g->text);
        c->instance_count += (int)cnt;
    }
    it = 0;
    if ((f = onyx_pb_next(m, "version_policy", &it))) {
        if (!f->is_msg) CFG_FAIL("line %d: version_policy must be a message", f->line);
        int j = 0;
        const onyx_pb_field *g;
        if ((g = onyx_pb_next(&f->msg, "latest", &j))) {
            c->policy = ONYX_POLICY_LATEST;
            int k = 0;
            const onyx_pb_field *h = g->is_msg ? onyx_pb_next(&g->msg, "num_versions", &k) : NULL;
            if (h && (onyx_pb_int(h, &v) || v < 1 || v > 1000))
                CFG_FAIL("line %d: num_versions must be in [1, 1000]", h->line);
            c->latest_n = h ? (int)v : 1;
        } else if ((j = 0, g = onyx_pb_next(&f->msg, "all", &j))) {
            c->policy = ONYX_POLICY_ALL;
        } else if ((j = 0, g = onyx_pb_next(&f->msg, "specific", &j))) {
            c->policy = ONYX_POLICY_SPECIFIC;
            int k = 0;
            const onyx_pb_field *h;
            while (g->is_msg && (h = onyx_pb_next(&g->msg, "versions", &k))) {
                if (onyx_pb_int(h, &v) || v < 0) CFG_FAIL("line %d: bad version number", h->line);
                int64_t *ns = realloc(c->specific, (size_t)(c->n_specific + 1) * sizeof *ns);
                if (!ns) CFG_FAIL("out of memory");
                c->specific = ns;
                ns[c->n_specific++] = v;
            }
        } else {
            CFG_FAIL("line %d: version_policy needs latest, all or specific", f->line);
        }
    }
    if (read_io(m, "input", &c->inputs, &c->n_inputs, err, cap)) return -1;
    if (read_io(m, "output", &c->outputs, &c->n_outputs, err, cap)) return -1;
    it = 0;
    while ((f = onyx_pb_next(m, "parameters", &it))) {
        if (!f->is_msg) CFG_FAIL("line %d: parameters must be a message", f->line);
        int j = 0;
        const onyx_pb_field *k = onyx_pb_next(&f->msg, "key", &j), *val;
        j = 0;
        val = onyx_pb_next(&f->msg, "value", &j);
        const char *text = NULL;
        if (val && val->is_msg) {
            int q = 0;
            const onyx_pb_field *sv = onyx_pb_next(&val->msg, "string_value", &q);
            text = sv && sv->text ? sv->text : NULL;
        } else if (val) {
            text = val->text;
        }
        if (!k || !k->text || !text)
            CFG_FAIL("line %d: parameters needs key and value { string_value }", f->line);
        char **nk = realloc(c->param_keys, (size_t)(c->n_params + 1) * sizeof *nk);
        if (!nk) CFG_FAIL("out of memory");
        c->param_keys = nk;
        char **nv = realloc(c->param_values, (size_t)(c->n_params + 1) * sizeof *nv);
        if (!nv) CFG_FAIL("out of memory");
        c->param_values = nv;
        nk[c->n_params] = strdup(k->text);
        nv[c->n_params] = strdup(text);
        c->n_params++;
        if (!nk[c->n_params - 1] || !nv[c->n_params - 1]) CFG_FAIL("out of memory");
    }
    if (c->dynamic_batching && c->max_batch_size == 0)
        CFG_FAIL("dynamic_batching needs max_batch_size > 0");
    for (int i = 0; i < c->n_preferred; i++)
        if (c->preferred[i] > c->max_batch_size)
            CFG_FAIL("preferred_batch_size %d is larger than max_batch_size %d", c->preferred[i],
                     c->max_batch_size);
    return 0;
}

static char *read_file(const char *path, size_t max, size_t *len, int *err_no) {
    FILE *f = fopen(path, "rb");
    if (!f) return *err_no = errno, NULL;
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    fclose(f);
    if (!buf) return *err_no = ENOMEM, NULL;
    if (n > max) {
        free(buf);
        *err_no = EFBIG;
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* Loads DIR/config.pbtxt into c (defaults when absent). */
static int config_load(const char *dir, onyx_model_config *c, char *err, size_t cap) {
    config_defaults(c);
    if (!dir) return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.pbtxt", dir);
    size_t len;
    int e = 0;
    char *text = read_file(path, 1 << 20, &len, &e);
    if (!text) {
        if (e == ENOENT) return 0;
        snprintf(err, cap, "config.pbtxt: %s", strerror(e));
        return -1;
    }
    onyx_pb_msg tree;
    char perr[400];
    int rc = onyx_pb_parse(text, len, &tree, perr, sizeof perr);
    free(text);
    if (rc) {
        onyx_pb_free(&tree);
        snprintf(err, cap, "config.pbtxt: %s", perr);
        return -1;
    }
    char cerr[400];
    rc = config_from_tree(&tree, c, cerr, sizeof cerr);
    onyx_pb_free(&tree);
    if (rc) {
        snprintf(err, cap, "config.pbtxt: %s", cerr);
        config_deinit(c);
        return -1;
    }
    return 0;
}

// ----------------------------------------------------------------------------
// Versions

void onyx_version_retain(onyx_model_version *v) {
    atomic_fetch_add(&v->refs, 1);
}

static void version_free(onyx_model_version *v) {
    for (int i = 0; i < v->n_sessions; i++)
        onyx_session_free(v->sessions[i]);
    free(v->sessions);
    onyx_model_free(v->model);
    free(v->inputs);
    free(v->outputs);
    for (int i = 0; i < v->n_labels; i++)
        free(v->labels[i]);
    free(v->labels);
    config_deinit(&v->cfg);
    free(v->name);
    free(v->path);
    free(v);
}

void onyx_version_release(onyx_model_version *v) {
    if (v && atomic_fetch_sub(&v->refs, 1) == 1) version_free(v);
}

onyx_session *onyx_version_session(onyx_model_version *v, int w, onyx_error *err) {
    if (w < 0 || w >= v->n_sessions) {
        snprintf(err->message, sizeof err->message, "worker %d has no session slot", w);
        return NULL;
    }
    if (!v->sessions[w]) {
        onyx_options o;
        onyx_options_init(&o);
        o.threads = v->intra_op_threads;
        if (onyx_session_new(v->model, &o, &v->sessions[w], err) != ONYX_OK) return NULL;
    }
    return v->sessions[w];
}

static uint64_t mix(uint64_t h, uint64_t x) {
    h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

static uint64_t file_fingerprint(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    uint64_t h = 1469598103934665603ull;
    h = mix(h, (uint64_t)st.st_dev);
    h = mix(h, (uint64_t)st.st_ino);
    h = mix(h, (uint64_t)st.st_size);
    h = mix(h, (uint64_t)st.st_mtim.tv_sec);
    h = mix(h, (uint64_t)st.st_mtim.tv_nsec);
    return h;
}

static bool dims_compatible(const onyx_io_info *io, const onyx_io_spec *s, int batch) {
    if (s->ndim < 0 || io->ndim < 0) return true;
    if (io->ndim != s->ndim + batch) return false;
    for (int d = 0; d < s->ndim; d++) {
        int64_t a = io->dims[d + batch], b = s->dims[d];
        if (a >= 0 && b >= 0 && a != b) return false;
    }
    return true;
}

/* Checks the config's inputs/outputs and batching against the model. */
static int validate(onyx_model_version *v, char *err, size_t cap) {
    const onyx_model_config *c = &v->cfg;
    int batch = c->max_batch_size > 0;
    for (int pass = 0; pass < 2; pass++) {
        const onyx_io_spec *specs = pass ? c->outputs : c->inputs;
        int ns = pass ? c->n_outputs : c->n_inputs;
        const onyx_io_info *ios = pass ? v->outputs : v->inputs;
        int nio = pass ? v->n_outputs : v->n_inputs;
        const char *what = pass ? "output" : "input";
        for (int i = 0; i < ns; i++) {
            const onyx_io_info *io = NULL;
            for (int k = 0; k < nio; k++)
                if (strcmp(ios[k].name, specs[i].name) == 0) io = &ios[k];
            if (!io)
                CFG_FAIL("config.pbtxt: %s '%s' is not an %s of the model", what, specs[i].name,
                         what);
            if (specs[i].dtype != ONYX_DTYPE_UNDEFINED && specs[i].dtype != io->dtype)
                CFG_FAIL("config.pbtxt: %s '%s' has data_type %s but the model's is %s", what,
                         specs[i].name, onyx_kserve_dtype(specs[i].dtype),
                         onyx_kserve_dtype(io->dtype) ? onyx_kserve_dtype(io->dtype)
                                                      : onyx_dtype_name(io->dtype));
            if (!dims_compatible(io, &specs[i], batch))
                CFG_FAIL("config.pbtxt: dims of %s '%s' do not match the model's shape%s", what,
                         specs[i].name, batch ? " (dims exclude the batch dimension)" : "");
        }
        if (batch) {
            for (int k = 0; k < nio; k++) {
                const onyx_io_info *io = &ios[k];
                if (io->kind != ONYX_KIND_TENSOR)
                    CFG_FAIL("max_batch_size > 0 needs tensor %ss; '%s' is a %s", what, io->name,
                             io->kind == ONYX_KIND_MAP ? "map" : "sequence");
                if (io->ndim == 0 || (io->ndim > 0 && io->dims[0] > 0 && io->dims[0] != 1))
                    CFG_FAIL("max_batch_size > 0 needs a batch (first) dimension on %s '%s'", what,
                             io->name);
            }
        }
    }
    if (c->name && strcmp(c->name, v->name) != 0)
        CFG_FAIL("config.pbtxt: name '%s' does not match the directory name '%s'", c->name,
                 v->name);
    return 0;
}

static int load_labels(onyx_model_version *v, const char *model_dir, char *err, size_t cap) {
    const char *file = onyx_config_param(&v->cfg, "labels");
    if (!file) return 0;
    char path[4096];
    if (file[0] == '/' || !model_dir)
        snprintf(path, sizeof path, "%s", file);
    else
        snprintf(path, sizeof path, "%s/%s", model_dir, file);
    size_t len;
    int e = 0;
    char *text;
    if (onyx_cli_is_bundle_spec(file)) { /* a bundled executable's labels */
        onyx_error oe;
        uint8_t *data;
        if (onyx_cli_read_file(file, &data, &len, &oe) != ONYX_OK) CFG_FAIL("%s", oe.message);
        text = (char *)data;
    } else {
        text = read_file(path, 64 << 20, &len, &e);
    }
    if (!text) CFG_FAIL("labels file %s: %s", path, strerror(e));
    int n = 0;
    for (size_t i = 0; i < len; i++)
        n += text[i] == '\n';
    v->labels = calloc((size_t)n + 1, sizeof *v->labels);
    if (!v->labels) {
        free(text);
        CFG_FAIL("out of memory");
    }
    char *p = text;
    while (*p || p < text + len) {
        char *e2 = strchr(p, '\n');
        if (e2) *e2 = 0;
        size_t l = strlen(p);
        if (l && p[l - 1] == '\r') p[l - 1] = 0;
        if (e2 || *p) v->labels[v->n_labels++] = strdup(p);
        if (!e2) break;
        p = e2 + 1;
    }
    free(text);
    return 0;
}

/* Loads one version. NULL with err on failure. */
static onyx_model_version *load_version(onyx_repo *r, const char *name, int64_t version,
                                        const char *path, const char *model_dir,
                                        uint64_t fingerprint, char *err, size_t cap) {
    onyx_model_version *v = calloc(1, sizeof *v);
    if (!v) return snprintf(err, cap, "out of memory"), NULL;
    atomic_init(&v->refs, 1);
    atomic_init(&v->running, 0);
    v->version = version;
    v->fingerprint = fingerprint;
    v->intra_op_threads = r->opt->intra_op_threads;
    v->name = strdup(name);
    v->path = strdup(path);
    if (!v->name || !v->path) {
        snprintf(err, cap, "out of memory");
        goto fail;
    }
    if (config_load(model_dir, &v->cfg, err, cap)) goto fail;
    if (!model_dir && onyx_cli_is_bundle_spec(path)) { /* settings stored in the bundle */
        onyx_error be;
        if (onyx_cli_bundle_settings(path, &v->cfg.n_params, &v->cfg.param_keys,
                                     &v->cfg.param_values, &be) != ONYX_OK) {
            snprintf(err, cap, "%s", be.message);
            goto fail;
        }
    }
    if (!model_dir && r->opt->max_batch_size > 0) {
        v->cfg.max_batch_size = r->opt->max_batch_size;
        v->cfg.dynamic_batching = true;
        v->cfg.max_queue_delay_us = r->opt->batch_delay_us;
    }
    onyx_options o;
    onyx_options_init(&o);
    o.threads = r->opt->intra_op_threads;
    onyx_error e;
    int64_t t0 = onyx_now_ns();
    if (onyx_cli_load_model(path, &o, &v->model, &e) != ONYX_OK) {
        snprintf(err, cap, "%s", e.message);
        goto fail;
    }
    v->n_inputs = onyx_model_num_inputs(v->model);
    v->n_outputs = onyx_model_num_outputs(v->model);
    v->inputs = calloc((size_t)v->n_inputs + 1, sizeof *v->inputs);
    v->outputs = calloc((size_t)v->n_outputs + 1, sizeof *v->outputs);
    v->n_sessions = r->opt->workers;
    v->sessions = calloc((size_t)v->n_sessions, sizeof *v->sessions);
    if (!v->inputs || !v->outputs || !v->sessions) {
        snprintf(err, cap, "out of memory");
        goto fail;
    }
    for (int i = 0; i < v->n_inputs; i++)
        onyx_model_input(v->model, i, &v->inputs[i]);
    for (int i = 0; i < v->n_outputs; i++)
        onyx_model_output(v->model, i, &v->outputs[i]);
    if (validate(v, err, cap)) goto fail;
    if (load_labels(v, model_dir, err, cap)) goto fail;
    v->loaded_at = (int64_t)time(NULL);
    char fields[256];
    snprintf(fields, sizeof fields, "\"model\":\"%s\",\"version\":%lld,\"load_ms\":%.1f", name,
             (long long)version, (double)(onyx_now_ns() - t0) / 1e6);
    onyx_slog_write(r->log, ONYX_LOG_INFO, fields, "loaded %s", path);
    return v;
fail:
    onyx_version_release(v);
    return NULL;
}

// ----------------------------------------------------------------------------
// The table

onyx_repo *onyx_repo_new(const onyx_server_options *o, const onyx_slog *log) {
    onyx_repo *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->reload_mu, NULL);
    r->opt = o;
    r->log = log;
    return r;
}

static void model_free(repo_model *m) {
    for (int i = 0; i < m->nv; i++)
        onyx_version_release(m->v[i]);
    free(m->v);
    free(m->error);
    free(m->name);
    free(m);
}

void onyx_repo_free(onyx_repo *r) {
    if (!r) return;
    for (int i = 0; i < r->n_models; i++)
        model_free(r->models[i]);
    free(r->models);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->reload_mu);
    free(r);
}

static repo_model *find_model(onyx_repo *r, const char *name) {
    for (int i = 0; i < r->n_models; i++)
        if (strcmp(r->models[i]->name, name) == 0) return r->models[i];
    return NULL;
}

/* A candidate version found on disk. */
typedef struct candidate {
    int64_t version;
    char path[4096];
} candidate;

static int cmp_candidate(const void *a, const void *b) {
    int64_t x = ((const candidate *)a)->version, y = ((const candidate *)b)->version;
    return x < y ? -1 : x > y;
}

/* Lists DIR/<model>/<n>/<file> that the policy selects. Returns the count
 * (0 with err when none), or -1 with err. *out is malloc'ed. */
static int list_versions(const char *mdir, const onyx_model_config *cfg, candidate **out, char *err,
                         size_t cap) {
    *out = NULL;
    DIR *d = opendir(mdir);
    if (!d) return snprintf(err, cap, "cannot read %s: %s", mdir, strerror(errno)), -1;
    const char *fname = cfg->default_model_filename ? cfg->default_model_filename : "model.onnx";
    candidate *c = NULL;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *s = de->d_name;
        if (!*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 18) continue;
        candidate cand;
        cand.version = strtoll(s, NULL, 10);
        snprintf(cand.path, sizeof cand.path, "%s/%s/%s", mdir, s, fname);
        struct stat st;
        if (stat(cand.path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (cand.version <= 0) continue; /* Triton ignores version 0 */
        candidate *nc = realloc(c, (size_t)(n + 1) * sizeof *nc);
        if (!nc) {
            free(c);
            closedir(d);
            return snprintf(err, cap, "out of memory"), -1;
        }
        c = nc;
        c[n++] = cand;
    }
    closedir(d);
    if (n == 0) {
        snprintf(err, cap, "no version directory with %s in %s", fname, mdir);
        free(c);
        return 0;
    }
    qsort(c, (size_t)n, sizeof *c, cmp_candidate);
    int keep = 0;
    for (int i = 0; i < n; i++) {
        bool take = false;
        if (cfg->policy == ONYX_POLICY_ALL)
            take = true;
        else if (cfg->policy == ONYX_POLICY_LATEST)
            take = i >= n - cfg->latest_n;
        else
            for (int k = 0; k < cfg->n_specific; k++)
                take |= cfg->specific[k] == c[i].version;
        if (take) c[keep++] = c[i];
    }
    if (keep == 0) {
        snprintf(err, cap, "version_policy selects none of the versions in %s", mdir);
        free(c);
        return 0;
    }
    *out = c;
    return keep;
}

static int cmp_version(const void *a, const void *b) {
    int64_t x = (*(onyx_model_version *const *)a)->version;
    int64_t y = (*(onyx_model_version *const *)b)->version;
    return x < y ? -1 : x > y;
}

static char *file_stem(const char *path) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    if (onyx_cli_is_bundle_spec(path)) b = path + strlen(ONYX_BUNDLE_PREFIX);
    size_t n = strlen(b);
    if (n > 5 && strcmp(b + n - 5, ".onnx") == 0) n -= 5;
    char *s = malloc(n + 1);
    if (s) memcpy(s, b, n), s[n] = 0;
    return s;
}

/* Brings one model in line with disk. Returns the number of errors. */
static int sync_model(onyx_repo *r, const char *name, const char *mdir, const char *file) {
    char err[600] = "";
    candidate *cands = NULL;
    int nc = 0;
    uint64_t cfg_fp = 0;
    if (file) {
        cands = malloc(sizeof *cands);
        if (!cands) return 1;
        cands[0].version = 1;
        snprintf(cands[0].path, sizeof cands[0].path, "%s", file);
        nc = 1;
    } else {
        onyx_model_config cfg;
        if (config_load(mdir, &cfg, err, sizeof err) == 0) {
            nc = list_versions(mdir, &cfg, &cands, err, sizeof err);
            config_deinit(&cfg);
        } else {
            nc = -1;
        }
        char cpath[4200];
        snprintf(cpath, sizeof cpath, "%s/config.pbtxt", mdir);
        cfg_fp = file_fingerprint(cpath);
        if (cfg_fp == 0) cfg_fp = 1;
        if (nc == 0) nc = -1; /* nothing to serve: an error, keep what runs */
    }

    /* The current versions, retained so the table may change meanwhile. */
    pthread_mutex_lock(&r->mu);
    repo_model *m = find_model(r, name);
    if (!m) {
        m = calloc(1, sizeof *m);
        repo_model **nm = m ? realloc(r->models, (size_t)(r->n_models + 1) * sizeof *nm) : NULL;
        if (!m || !nm || !(m->name = strdup(name))) {
            if (nm) r->models = nm;
            if (m) free(m->name), free(m);
            pthread_mutex_unlock(&r->mu);
            free(cands);
            return 1;
        }
        r->models = nm;
        r->models[r->n_models++] = m;
        /* A model that appears later and fails to load must not take a
         * serving replica out of its load balancer: only the startup set
         * gates readiness. */
        m->required = !r->started;
    }
    m->seen = true;
    int n_old = m->nv;
    onyx_model_version **old = malloc(((size_t)n_old + 1) * sizeof *old);
    if (old)
        for (int i = 0; i < n_old; i++)
            old[i] = m->v[i], onyx_version_retain(old[i]);
    pthread_mutex_unlock(&r->mu);
    if (!old) {
        free(cands);
        return 1;
    }

    int errors = 0;
    onyx_model_version **next = NULL;
    int n_next = 0;
    if (nc < 0) {
        errors++;
        onyx_slog_write(r->log, ONYX_LOG_ERROR, NULL, "model '%s': %s", name, err);
    } else {
        err[0] = 0;
        next = calloc((size_t)nc + (size_t)n_old + 1, sizeof *next);
        for (int i = 0; next && i < nc; i++) {
            uint64_t fp = mix(file_fingerprint(cands[i].path), cfg_fp);
            onyx_model_version *cur = NULL;
            for (int k = 0; k < n_old; k++)
                if (old[k]->version == cands[i].version) cur = old[k];
            if (cur && cur->fingerprint == fp) {
                onyx_version_retain(cur);
                next[n_next++] = cur;
                continue;
            }
            char lerr[520];
            onyx_model_version *v =
                load_version(r, name, cands[i].version, cands[i].path, mdir, fp, lerr, sizeof lerr);
            if (v) {
                next[n_next++] = v;
                continue;
            }
            errors++;
            snprintf(err, sizeof err, "version %lld: %s", (long long)cands[i].version, lerr);
            onyx_slog_write(r->log, ONYX_LOG_ERROR, NULL, "model '%s' %s%s", name, err,
                            cur ? " (the loaded version keeps serving)" : "");
            if (cur) {
                onyx_version_retain(cur);
                next[n_next++] = cur;
            }
        }
        if (!next)
            errors++;
        else
            qsort(next, (size_t)n_next, sizeof *next, cmp_version);
    }

    /* Swap. */
    onyx_model_version **drop = NULL;
    int n_drop = 0;
    pthread_mutex_lock(&r->mu);
    free(m->error);
    m->error = errors ? strdup(err) : NULL;
    if (next) {
        drop = m->v;
        n_drop = m->nv;
        m->v = next;
        m->nv = n_next;
    }
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < n_drop; i++) {
        bool kept = false;
        for (int k = 0; k < n_next; k++)
            kept |= next[k] == drop[i];
        if (!kept)
            onyx_slog_write(r->log, ONYX_LOG_INFO, NULL, "unloading model '%s' version %lld", name,
                            (long long)drop[i]->version);
        onyx_version_release(drop[i]);
    }
    free(drop);
    for (int i = 0; i < n_old; i++)
        onyx_version_release(old[i]);
    free(old);
    free(cands);
    return errors;
}

int onyx_repo_reload(onyx_repo *r) {
    pthread_mutex_lock(&r->reload_mu);
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n_models; i++)
        r->models[i]->seen = false;
    pthread_mutex_unlock(&r->mu);
    int errors = 0;
    for (int i = 0; i < r->opt->n_model_files; i++) {
        char *name = file_stem(r->opt->model_files[i]);
        if (!name) continue;
        errors += sync_model(r, name, NULL, r->opt->model_files[i]);
        free(name);
    }
    if (r->opt->repository) {
        DIR *d = opendir(r->opt->repository);
        if (!d) {
            errors++;
            SLOG(r->log, ONYX_LOG_ERROR, "cannot read the model repository %s: %s",
                 r->opt->repository, strerror(errno));
            /* Keep everything: a transiently missing mount must not unload models. */
            pthread_mutex_lock(&r->mu);
            for (int i = 0; i < r->n_models; i++)
                r->models[i]->seen = true;
            pthread_mutex_unlock(&r->mu);
        } else {
            struct dirent *de;
            char **names = NULL;
            int n = 0;
            while ((de = readdir(d))) {
                if (de->d_name[0] == '.') continue;
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", r->opt->repository, de->d_name);
                struct stat st;
                if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
                char **nn = realloc(names, (size_t)(n + 1) * sizeof *nn);
                if (!nn) break;
                names = nn;
                names[n] = strdup(de->d_name);
                if (names[n]) n++;
            }
            closedir(d);
            for (int i = 0; i < n; i++) {
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", r->opt->repository, names[i]);
                errors += sync_model(r, names[i], path, NULL);
                free(names[i]);
            }
            free(names);
        }
    }
    /* Models whose source disappeared. */
    pthread_mutex_lock(&r->mu);
    repo_model **gone = malloc(((size_t)r->n_models + 1) * sizeof *gone);
    int n_gone = 0, keep = 0;
    for (int i = 0; i < r->n_models; i++) {
        if (r->models[i]->seen || !gone)
            r->models[keep++] = r->models[i];
        else
            gone[n_gone++] = r->models[i];
    }
    r->n_models = keep;
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < n_gone; i++) {
        SLOG(r->log, ONYX_LOG_INFO, "model '%s' removed from the repository", gone[i]->name);
        model_free(gone[i]);
    }
    free(gone);
    pthread_mutex_lock(&r->mu);
    r->started = true;
    pthread_mutex_unlock(&r->mu);
    pthread_mutex_unlock(&r->reload_mu);
    return errors;
}

int onyx_repo_acquire(onyx_repo *r, const char *name, int64_t version, onyx_model_version **out,
                      char *err, size_t cap) {
    *out = NULL;
    pthread_mutex_lock(&r->mu);
    repo_model *m = find_model(r, name);
    int status = 0;
    if (!m) {
        snprintf(err, cap, "unknown model: '%s'", name);
        status = 404;
    } else if (m->nv == 0) {
        snprintf(err, cap, "model '%s' is not ready%s%s", name, m->error ? ": " : "",
                 m->error ? m->error : "");
        status = 503;
    } else if (version <= 0) {
        *out = m->v[m->nv - 1];
    } else {
        for (int i = 0; i < m->nv; i++)
            if (m->v[i]->version == version) *out = m->v[i];
        if (!*out) {
            snprintf(err, cap, "unknown version %lld of model '%s'", (long long)version, name);
            status = 404;
        }
    }
    if (*out) onyx_version_retain(*out);
    pthread_mutex_unlock(&r->mu);
    return status;
}

static int info_fill(repo_model *m, onyx_model_info *out) {
    memset(out, 0, sizeof *out);
    out->name = strdup(m->name);
    out->error = m->error ? strdup(m->error) : NULL;
    out->state = strdup(m->nv ? "READY" : "UNAVAILABLE");
    out->versions = calloc((size_t)m->nv + 1, sizeof *out->versions);
    if (!out->name || !out->state || !out->versions || (m->error && !out->error)) {
        onyx_repo_info_free(out);
        return 503;
    }
    for (int i = 0; i < m->nv; i++) {
        out->versions[i] = m->v[i];
        onyx_version_retain(m->v[i]);
    }
    out->n_versions = m->nv;
    return 0;
}

int onyx_repo_info(onyx_repo *r, const char *name, onyx_model_info *out) {
    pthread_mutex_lock(&r->mu);
    repo_model *m = find_model(r, name);
    int st = m ? info_fill(m, out) : 404;
    pthread_mutex_unlock(&r->mu);
    return st;
}

static int cmp_info(const void *a, const void *b) {
    return strcmp(((const onyx_model_info *)a)->name, ((const onyx_model_info *)b)->name);
}

onyx_model_info *onyx_repo_list(onyx_repo *r, int *n) {
    pthread_mutex_lock(&r->mu);
    onyx_model_info *list = calloc((size_t)r->n_models + 1, sizeof *list);
    *n = 0;
    for (int i = 0; list && i < r->n_models; i++)
        if (info_fill(r->models[i], &list[*n]) == 0) (*n)++;
    pthread_mutex_unlock(&r->mu);
    if (list) qsort(list, (size_t)*n, sizeof *list, cmp_info);
    return list;
}

void onyx_repo_info_free(onyx_model_info *m) {
    for (int i = 0; i < m->n_versions; i++)
        onyx_version_release(m->versions[i]);
    free(m->versions);
    free(m->name);
    free(m->error);
    free(m->state);
    memset(m, 0, sizeof *m);
}

bool onyx_repo_all_ready(onyx_repo *r) {
    pthread_mutex_lock(&r->mu);
    bool ok = true;
    for (int i = 0; i < r->n_models; i++)
        ok &= r->models[i]->nv > 0 || !r->models[i]->required;
    pthread_mutex_unlock(&r->mu);
    return ok;
}
