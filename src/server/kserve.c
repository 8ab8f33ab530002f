/* kserve.c - the KServe v2 / Open Inference Protocol REST surface under /v2:
 * health, server and model metadata, model readiness and configuration,
 * repository index, and inference with JSON tensors and Triton's binary
 * tensor extension (Inference-Header-Content-Length), classification
 * extension and onyx's JSON form for non-tensor outputs.
 *
 * Owns: the /v2 documents and their validation. Does not own: running
 * (sched.c), image decoding (image.c), element conversion (codec.c).
 */
#include "core/tensor.h"
#include "server/codec.h"
#include "server/server.h"

#include <event2/buffer.h>
#include <jansson.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

// ----------------------------------------------------------------------------
// Small writers

static struct evbuffer *new_buf(void) {
    return evbuffer_new();
}

static void respond_json(onyx_http_request *req, int status, struct evbuffer *b) {
    onyx_http_respond(req, status, "application/json", NULL, b);
}

static void add_str(struct evbuffer *b, const char *s) {
    onyx_json_quote(b, s, strlen(s));
}

static void add_dims(struct evbuffer *b, int ndim, const int64_t *dims) {
    evbuffer_add(b, "[", 1);
    for (int i = 0; i < ndim; i++)
        evbuffer_add_printf(b, "%s%lld", i ? "," : "", (long long)dims[i]);
    evbuffer_add(b, "]", 1);
}

/* "sequence(map(int64,float))" and friends, for non-tensor metadata. */
static void type_text(const onyx_io_info *io, char *buf, size_t cap) {
    const char *dt = onyx_dtype_name(io->dtype);
    if (io->kind == ONYX_KIND_MAP)
        snprintf(buf, cap, "map(%s,%s)", onyx_dtype_name(io->key_dtype), dt);
    else if (io->kind == ONYX_KIND_SEQUENCE && io->elem_kind == ONYX_KIND_MAP)
        snprintf(buf, cap, "sequence(map(%s,%s))", onyx_dtype_name(io->key_dtype), dt);
    else if (io->kind == ONYX_KIND_SEQUENCE)
        snprintf(buf, cap, "sequence(%s)", dt);
    else
        snprintf(buf, cap, "%s", dt);
}

static void io_meta(struct evbuffer *b, const onyx_io_info *io) {
    evbuffer_add(b, "{\"name\":", 8);
    add_str(b, io->name);
    if (io->kind == ONYX_KIND_TENSOR || io->kind == ONYX_KIND_NONE) {
        const char *dt = onyx_kserve_dtype(io->dtype);
        evbuffer_add_printf(b, ",\"datatype\":\"%s\",\"shape\":", dt ? dt : "UNSUPPORTED");
        if (io->ndim < 0)
            evbuffer_add(b, "[-1]", 4);
        else
            add_dims(b, io->ndim, io->dims);
    } else {
        char t[96];
        type_text(io, t, sizeof t);
        /* Sequences of maps (scikit-learn ZipMap) are answered as JSON objects. */
        evbuffer_add_printf(
            b, ",\"datatype\":\"%s\",\"shape\":[-1],\"onyx_type\":\"%s\"",
            io->kind == ONYX_KIND_MAP || io->elem_kind == ONYX_KIND_MAP ? "MAP" : "SEQUENCE", t);
    }
    evbuffer_add(b, "}", 1);
}

// ----------------------------------------------------------------------------
// Metadata endpoints

static void server_metadata(onyx_server *s, onyx_http_request *req) {
    (void)s;
    struct evbuffer *b = new_buf();
    evbuffer_add_printf(b,
                        "{\"name\":\"onyx\",\"version\":\"%s\",\"extensions\":["
                        "\"binary_tensor_data\",\"classification\",\"model_configuration\","
                        "\"model_repository\",\"parameters\",\"statistics\"]}",
                        ONYX_VERSION);
    respond_json(req, 200, b);
}

static void model_metadata(onyx_server *s, onyx_http_request *req, const char *name, int64_t ver) {
    onyx_model_info info;
    if (onyx_repo_info(s->repo, name, &info) != 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "unknown model: '%s'", name);
        onyx_http_respond_error(req, 404, msg);
        return;
    }
    onyx_model_version *v = NULL;
    if (ver > 0) {
        for (int i = 0; i < info.n_versions; i++)
            if (info.versions[i]->version == ver) v = info.versions[i];
        if (!v) {
            char msg[300];
            snprintf(msg, sizeof msg, "unknown version %lld of model '%s'", (long long)ver, name);
            onyx_repo_info_free(&info);
            onyx_http_respond_error(req, 404, msg);
            return;
        }
    } else if (info.n_versions) {
        v = info.versions[info.n_versions - 1];
    }
    struct evbuffer *b = new_buf();
    evbuffer_add(b, "{\"name\":", 8);
    add_str(b, name);
    evbuffer_add(b, ",\"versions\":[", 13);
    for (int i = 0; i < info.n_versions; i++) {
        if (ver > 0 && info.versions[i] != v) continue;
        evbuffer_add_printf(b, "%s\"%lld\"", i && ver <= 0 ? "," : "",
                            (long long)info.versions[i]->version);
    }
    evbuffer_add(b, "],\"platform\":\"onnx_onnxv1\",\"inputs\":[", 37);
    for (int i = 0; v && i < v->n_inputs; i++) {
        if (i) evbuffer_add(b, ",", 1);
        io_meta(b, &v->inputs[i]);
    }
    evbuffer_add(b, "],\"outputs\":[", 13);
    for (int i = 0; v && i < v->n_outputs; i++) {
        if (i) evbuffer_add(b, ",", 1);
        io_meta(b, &v->outputs[i]);
    }
    evbuffer_add(b, "]", 1);
    evbuffer_add_printf(b, ",\"state\":\"%s\"", info.state);
    if (info.error) {
        evbuffer_add(b, ",\"error\":", 9);
        add_str(b, info.error);
    }
    evbuffer_add(b, "}", 1);
    onyx_repo_info_free(&info);
    respond_json(req, 200, b);
}

static void model_ready(onyx_server *s, onyx_http_request *req, const char *name, int64_t ver) {
    onyx_model_version *v;
    char err[600];
    int st = onyx_repo_acquire(s->repo, name, ver, &v, err, sizeof err);
    if (st) {
        onyx_http_respond_error(req, st == 404 ? 404 : 503, err);
        return;
    }
    onyx_version_release(v);
    onyx_http_respond(req, 200, "application/json", NULL, NULL);
}

static void config_io(struct evbuffer *b, const onyx_model_version *v, bool outputs) {
    int n = outputs ? v->n_outputs : v->n_inputs;
    const onyx_io_info *ios = outputs ? v->outputs : v->inputs;
    int batch = v->cfg.max_batch_size > 0;
    for (int i = 0; i < n; i++) {
        const onyx_io_info *io = &ios[i];
        const char *dt = onyx_kserve_dtype(io->dtype);
        evbuffer_add_printf(b, "%s{\"name\":", i ? "," : "");
        add_str(b, io->name);
        evbuffer_add_printf(b, ",\"data_type\":\"TYPE_%s\",\"dims\":",
                            !dt                        ? "INVALID"
                            : strcmp(dt, "BYTES") == 0 ? "STRING"
                                                       : dt);
        if (io->ndim < 0)
            evbuffer_add(b, "[-1]", 4);
        else if (io->ndim >= batch)
            add_dims(b, io->ndim - batch, io->dims + batch);
        else
            evbuffer_add(b, "[]", 2);
        evbuffer_add(b, "}", 1);
    }
}

static void model_config(onyx_server *s, onyx_http_request *req, const char *name, int64_t ver) {
    onyx_model_version *v;
    char err[600];
    int st = onyx_repo_acquire(s->repo, name, ver, &v, err, sizeof err);
    if (st) {
        onyx_http_respond_error(req, st, err);
        return;
    }
    const onyx_model_config *c = &v->cfg;
    struct evbuffer *b = new_buf();
    evbuffer_add(b, "{\"name\":", 8);
    add_str(b, v->name);
    evbuffer_add_printf(b,
                        ",\"platform\":\"onnxruntime_onnx\",\"backend\":\"onyx\","
                        "\"max_batch_size\":%d,\"input\":[",
                        c->max_batch_size);
    config_io(b, v, false);
    evbuffer_add(b, "],\"output\":[", 12);
    config_io(b, v, true);
    evbuffer_add(b, "]", 1);
    if (c->dynamic_batching) {
        evbuffer_add(b, ",\"dynamic_batching\":{\"preferred_batch_size\":[", 45);
        for (int i = 0; i < c->n_preferred; i++)
            evbuffer_add_printf(b, "%s%d", i ? "," : "", c->preferred[i]);
        evbuffer_add_printf(b, "],\"max_queue_delay_microseconds\":%lld}",
                            (long long)c->max_queue_delay_us);
    }
    evbuffer_add_printf(b, ",\"instance_group\":[{\"count\":%d,\"kind\":\"KIND_CPU\"}]",
                        c->instance_count > 0 ? c->instance_count : s->opt->workers);
    if (c->policy == ONYX_POLICY_ALL)
        evbuffer_add_printf(b, ",\"version_policy\":{\"all\":{}}");
    else if (c->policy == ONYX_POLICY_LATEST)
        evbuffer_add_printf(b, ",\"version_policy\":{\"latest\":{\"num_versions\":%d}}",
                            c->latest_n);
    else {
        evbuffer_add(b, ",\"version_policy\":{\"specific\":{\"versions\":[", 41);
        for (int i = 0; i < c->n_specific; i++)
            evbuffer_add_printf(b, "%s%lld", i ? "," : "", (long long)c->specific[i]);
        evbuffer_add(b, "]}}", 3);
    }
    evbuffer_add(b, ",\"parameters\":{", 15);
    for (int i = 0; i < c->n_params; i++) {
        if (i) evbuffer_add(b, ",", 1);
        add_str(b, c->param_keys[i]);
        evbuffer_add(b, ":{\"string_value\":", 17);
        add_str(b, c->param_values[i]);
        evbuffer_add(b, "}", 1);
    }
    evbuffer_add(b, "}}", 2);
    onyx_version_release(v);
    respond_json(req, 200, b);
}

static void repository_index(onyx_server *s, onyx_http_request *req) {
    int n = 0;
    onyx_model_info *list = onyx_repo_list(s->repo, &n);
    struct evbuffer *b = new_buf();
    evbuffer_add(b, "[", 1);
    bool first = true;
    for (int i = 0; list && i < n; i++) {
        onyx_model_info *m = &list[i];
        for (int k = 0; k < m->n_versions || (k == 0 && m->n_versions == 0); k++) {
            evbuffer_add(b, first ? "{\"name\":" : ",{\"name\":", first ? 8 : 9);
            first = false;
            add_str(b, m->name);
            if (m->n_versions)
                evbuffer_add_printf(b, ",\"version\":\"%lld\",\"state\":\"READY\"",
                                    (long long)m->versions[k]->version);
            else
                evbuffer_add(b, ",\"state\":\"UNAVAILABLE\"", 22);
            if (m->error) {
                evbuffer_add(b, ",\"reason\":", 10);
                add_str(b, m->error);
            }
            evbuffer_add(b, "}", 1);
        }
        onyx_repo_info_free(m);
    }
    free(list);
    evbuffer_add(b, "]", 1);
    respond_json(req, 200, b);
}

static void stats(onyx_server *s, onyx_http_request *req, const char *name, int64_t ver) {
    struct evbuffer *b = new_buf();
    int n = onyx_metrics_stats_json(s->metrics, b, s->repo, name, ver);
    if (name && n == 0) {
        evbuffer_free(b);
        char msg[300];
        if (ver > 0)
            snprintf(msg, sizeof msg, "unknown version %lld of model '%s'", (long long)ver, name);
        else snprintf(msg, sizeof msg, "unknown model: '%s'", name);
        onyx_http_respond_error(req, 404, msg);
        return;
    }
    respond_json(req, 200, b);
}

// ----------------------------------------------------------------------------
// Inference: request state

typedef struct kctx {
    onyx_server *srv;
    onyx_http_request *req;
    json_t *root;
    onyx_owned own;
    char *id;
    onyx_tensor_view *views; /* (n_inputs) in model order */
    const char **names;      /* (n_inputs) */
    const char **out_names;  /* requested, in model order */
    int n_out;               /* 0: all */
    int *resp_order;         /* (n_resp) model output index per response position */
    int n_resp;
    signed char *binary; /* (n_outputs) -1 default, 0 JSON, 1 binary */
    int *classification; /* (n_outputs) 0: none */
    bool binary_default;
} kctx;

static void kctx_free(kctx *c) {
    if (!c) return;
    if (c->root) json_decref(c->root);
    onyx_owned_free(&c->own);
    free(c);
}

#define BAD(...)                                                                                   \
    do {                                                                                           \
        snprintf(err, cap, __VA_ARGS__);                                                           \
        return 400;                                                                                \
    } while (0)

static int read_bool_param(json_t *params, const char *key, signed char *out, char *err,
                           size_t cap) {
    json_t *p = params ? json_object_get(params, key) : NULL;
    if (!p) return 0;
    if (!json_is_boolean(p)) BAD("parameter '%s' must be a boolean", key);
    *out = json_is_true(p) ? 1 : 0;
    return 0;
}

/* Parses the BYTES elements of a binary input: 4-byte little-endian length
 * then the bytes, `n` times, exactly filling [p, p+len). */
static int binary_strings(const uint8_t *p, size_t len, int64_t n, onyx_owned *own, char **out,
                          size_t *lens, const char *name, char *err, size_t cap) {
    size_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        if (len - at < 4)
            BAD("binary data of input '%s' ends inside element %lld", name, (long long)i);
        uint32_t l = (uint32_t)p[at] | (uint32_t)p[at + 1] << 8 | (uint32_t)p[at + 2] << 16 |
                     (uint32_t)p[at + 3] << 24;
        at += 4;
        if (l > len - at)
            BAD("binary data of input '%s' ends inside element %lld", name, (long long)i);
        char *s = onyx_owned_alloc(own, (size_t)l + 1);
        if (!s) BAD("out of memory");
        memcpy(s, p + at, l);
        s[l] = 0;
        out[i] = s;
        if (lens) lens[i] = l;
        at += l;
    }
    if (at != len)
        BAD("binary data of input '%s' is longer than its %lld elements", name, (long long)n);
    return 0;
}

static int find_io(const onyx_io_info *ios, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(ios[i].name, name) == 0) return i;
    return -1;
}

/* One input of the request into c->views[idx]. */
static int read_input(kctx *c, onyx_model_version *v, json_t *in, const uint8_t *bin,
                      size_t bin_len, size_t *bin_at, char *err, size_t cap) {
    const char *mname = v->name;
    json_t *jname = json_object_get(in, "name");
    if (!json_is_string(jname)) BAD("every input needs a string 'name'");
    const char *name = json_string_value(jname);
    int idx = find_io(v->inputs, v->n_inputs, name);
    if (idx < 0) BAD("unexpected inference input '%s' for model '%s'", name, mname);
    if (c->views[idx].ndim >= 0) BAD("input '%s' is given twice", name);
    const onyx_io_info *io = &v->inputs[idx];
    if (io->kind != ONYX_KIND_TENSOR)
        BAD("input '%s' of model '%s' is not a tensor; it cannot be fed over HTTP", name, mname);
    json_t *jdt = json_object_get(in, "datatype");
    if (!json_is_string(jdt)) BAD("input '%s' needs a string 'datatype'", name);
    const char *dts = json_string_value(jdt);
    onyx_dtype dt = onyx_kserve_dtype_parse(dts);
    if (dt == ONYX_DTYPE_UNDEFINED || strncmp(dts, "TYPE_", 5) == 0)
        BAD("input '%s' has unknown datatype '%s'", name, dts);
    json_t *jshape = json_object_get(in, "shape");
    if (!json_is_array(jshape)) BAD("input '%s' needs a 'shape' array", name);
    int ndim = (int)json_array_size(jshape);
    if (ndim > ONYX_MAX_DIMS) BAD("input '%s' has more than %d dimensions", name, ONYX_MAX_DIMS);
    int64_t dims[ONYX_MAX_DIMS];
    for (int d = 0; d < ndim; d++) {
        json_t *x = json_array_get(jshape, (size_t)d);
        if (!json_is_integer(x) || json_integer_value(x) < 0)
            BAD("shape of input '%s' must hold non-negative integers", name);
        dims[d] = json_integer_value(x);
    }
    int64_t count = onyx_dims_count(ndim, dims);
    if (count < 0) BAD("shape of input '%s' overflows", name);
    int64_t limit = c->srv->opt->max_tensor_elements;
    if (limit > 0 && count > limit)
        BAD("input '%s' has %lld elements, more than the server's limit of %lld "
            "(--max-tensor-elements)",
            name, (long long)count, (long long)limit);
    json_t *params = json_object_get(in, "parameters");
    if (params && !json_is_object(params))
        BAD("'parameters' of input '%s' must be an object", name);
    json_t *bsz = params ? json_object_get(params, "binary_data_size") : NULL;
    const uint8_t *raw = NULL;
    size_t raw_len = 0;
    if (bsz) {
        if (!json_is_integer(bsz) || json_integer_value(bsz) < 0)
            BAD("binary_data_size of input '%s' must be a non-negative integer", name);
        uint64_t want = (uint64_t)json_integer_value(bsz);
        if (want > bin_len - *bin_at)
            BAD("unexpected end of the binary data: input '%s' needs %llu bytes but %zu remain",
                name, (unsigned long long)want, bin_len - *bin_at);
        raw = bin + *bin_at;
        raw_len = (size_t)want;
        *bin_at += raw_len;
    } else if (!json_object_get(in, "data")) {
        BAD("input '%s' has neither 'data' nor a binary_data_size parameter", name);
    }

    /* Encoded images for a numeric image input. */
    if (dt == ONYX_DTYPE_STRING && io->dtype != ONYX_DTYPE_STRING) {
        if (!onyx_server_is_image_input(v, io))
            BAD("input '%s' data-type is 'BYTES', but model '%s' expects '%s'", name, mname,
                onyx_kserve_dtype(io->dtype) ? onyx_kserve_dtype(io->dtype) : "?");
        int64_t nimg = count;
        if (nimg < 1 || nimg > 4096) BAD("input '%s' must hold 1 to 4096 images", name);
        char **strs = onyx_owned_alloc(&c->own, (size_t)nimg * sizeof *strs);
        size_t *lens = onyx_owned_alloc(&c->own, (size_t)nimg * sizeof *lens);
        if (!strs || !lens) BAD("out of memory");
        if (raw) {
            int st = binary_strings(raw, raw_len, nimg, &c->own, strs, lens, name, err, cap);
            if (st) return st;
        } else {
            /* JSON cannot carry raw bytes: image strings are base64. */
            json_t *data = json_object_get(in, "data");
            char **b64 = onyx_owned_alloc(&c->own, (size_t)nimg * sizeof *b64);
            if (!b64) BAD("out of memory");
            char what[200];
            snprintf(what, sizeof what, "input '%s'", name);
            if (onyx_json_fill(data, ONYX_DTYPE_STRING, b64, nimg, &c->own, what, err, cap))
                return 400;
            for (int64_t i = 0; i < nimg; i++) {
                uint8_t *dec;
                int64_t dl = onyx_base64_decode(b64[i], strlen(b64[i]), &c->own, &dec);
                if (dl < 0)
                    BAD("image %lld of input '%s' is not base64 (JSON image data must be "
                        "base64; or send binary data)",
                        (long long)i, name);
                strs[i] = (char *)dec;
                lens[i] = (size_t)dl;
            }
        }
        int st = onyx_server_images(v, io, (const uint8_t *const *)strs, lens, nimg, &c->own,
                                    &c->views[idx], err, cap);
        return st;
    }

    if (dt != io->dtype)
        BAD("input '%s' data-type is '%s', but model '%s' expects '%s'", name, dts, mname,
            onyx_kserve_dtype(io->dtype) ? onyx_kserve_dtype(io->dtype)
                                         : onyx_dtype_name(io->dtype));
    bool shape_ok = io->ndim < 0 || io->ndim == ndim;
    for (int d = 0; shape_ok && io->ndim >= 0 && d < ndim; d++)
        if (io->dims[d] >= 0 && io->dims[d] != dims[d]) shape_ok = false;
    if (!shape_ok) {
        char want[200], got[200];
        onyx_dims_text(want, sizeof want, io->ndim, io->dims);
        onyx_dims_text(got, sizeof got, ndim, dims);
        BAD("unexpected shape for input '%s' for model '%s'. Expected %s, got %s", name, mname,
            want, got);
    }
    size_t esz = onyx_dtype_size(dt);
    onyx_tensor_view *tv = &c->views[idx];
    tv->dtype = dt;
    tv->ndim = ndim;
    memcpy(tv->dims, dims, sizeof dims);
    tv->data = onyx_owned_alloc(&c->own, (size_t)count * esz);
    if (!tv->data) BAD("out of memory for input '%s'", name);
    if (raw) {
        if (dt == ONYX_DTYPE_STRING) {
            int st = binary_strings(raw, raw_len, count, &c->own, tv->data, NULL, name, err, cap);
            if (st) return st;
        } else {
            if (raw_len != (size_t)count * esz)
                BAD("input '%s' has %zu bytes of binary data; shape %lld x %s needs %zu", name,
                    raw_len, (long long)count, dts, (size_t)count * esz);
            memcpy(tv->data, raw, raw_len);
        }
    } else {
        char what[200];
        snprintf(what, sizeof what, "input '%s'", name);
        if (onyx_json_fill(json_object_get(in, "data"), dt, tv->data, count, &c->own, what, err,
                           cap))
            return 400;
    }
    return 0;
}

static int k_prepare(onyx_job *j, onyx_job_inputs *in, char *err, size_t cap) {
    kctx *c = j->ctx;
    onyx_model_version *v = j->ver;
    onyx_http_request *req = c->req;
    size_t hlen = req->body_len;
    const char *hv = onyx_http_header_get(req, "Inference-Header-Content-Length");
    if (hv) {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(hv, &end, 10);
        if (!*hv || *end || errno || x > req->body_len)
            BAD("Inference-Header-Content-Length %s is not within the %zu-byte body", hv,
                req->body_len);
        hlen = (size_t)x;
    }
    const char *enc = onyx_http_header_get(req, "Content-Encoding");
    if (enc && strcasecmp(enc, "identity") != 0)
        BAD("Content-Encoding '%s' is not supported; send the body uncompressed", enc);
    if (hlen == 0) BAD("empty request body: an inference request is a JSON object");
    json_error_t je;
    c->root = json_loadb((const char *)req->body, hlen, JSON_REJECT_DUPLICATES, &je);
    if (!c->root)
        BAD("malformed JSON in the request body: %s (line %d, column %d)%s", je.text, je.line,
            je.column,
            strstr(je.text, "too big integer")
                ? "; integers above 2^63-1 (UINT64) must be sent as binary data"
                : "");
    if (!json_is_object(c->root)) BAD("the request body must be a JSON object");
    json_t *id = json_object_get(c->root, "id");
    if (id) {
        if (!json_is_string(id)) BAD("'id' must be a string");
        c->id = (char *)json_string_value(id);
    }
    json_t *params = json_object_get(c->root, "parameters");
    if (params && !json_is_object(params)) BAD("'parameters' must be an object");
    signed char bd = 0;
    if (read_bool_param(params, "binary_data_output", &bd, err, cap)) return 400;
    c->binary_default = bd == 1;
    json_t *inputs = json_object_get(c->root, "inputs");
    if (!json_is_array(inputs) || json_array_size(inputs) == 0)
        BAD("the request needs a non-empty 'inputs' array");

    int ni = v->n_inputs, no = v->n_outputs;
    c->views = onyx_owned_alloc(&c->own, (size_t)ni * sizeof *c->views);
    c->names = onyx_owned_alloc(&c->own, (size_t)ni * sizeof *c->names);
    c->out_names = onyx_owned_alloc(&c->own, (size_t)no * sizeof *c->out_names);
    c->resp_order = onyx_owned_alloc(&c->own, (size_t)no * sizeof *c->resp_order);
    c->binary = onyx_owned_alloc(&c->own, (size_t)no);
    c->classification = onyx_owned_alloc(&c->own, (size_t)no * sizeof *c->classification);
    if (!c->views || !c->names || !c->out_names || !c->resp_order || !c->binary ||
        !c->classification)
        BAD("out of memory");
    for (int i = 0; i < ni; i++)
        c->views[i].ndim = -1, c->names[i] = v->inputs[i].name;
    memset(c->binary, 0xff, (size_t)no);
    memset(c->classification, 0, (size_t)no * sizeof *c->classification);

    const uint8_t *bin = req->body + hlen;
    size_t bin_len = req->body_len - hlen, bin_at = 0;
    size_t i;
    json_t *x;
    json_array_foreach(inputs, i, x) {
        if (!json_is_object(x)) BAD("every element of 'inputs' must be an object");
        int st = read_input(c, v, x, bin, bin_len, &bin_at, err, cap);
        if (st) return st;
    }
    if (bin_at != bin_len)
        BAD("unexpected additional input data for model '%s': %zu bytes after the inputs' "
            "binary data",
            v->name, bin_len - bin_at);
    int given = 0;
    for (int k = 0; k < ni; k++)
        given += c->views[k].ndim >= 0;
    for (int k = 0; k < ni; k++)
        if (c->views[k].ndim < 0 && !v->inputs[k].optional)
            BAD("expected %d inputs but got %d inputs for model '%s': missing '%s'", ni, given,
                v->name, v->inputs[k].name);

    /* Requested outputs. */
    json_t *outs = json_object_get(c->root, "outputs");
    if (outs && !json_is_array(outs)) BAD("'outputs' must be an array");
    bool want[256] = {false};
    if (outs && json_array_size(outs) > 0) {
        json_array_foreach(outs, i, x) {
            json_t *jn = json_is_object(x) ? json_object_get(x, "name") : NULL;
            if (!json_is_string(jn)) BAD("every requested output needs a string 'name'");
            int k = find_io(v->outputs, no, json_string_value(jn));
            if (k < 0)
                BAD("unexpected inference output '%s' for model '%s'", json_string_value(jn),
                    v->name);
            if (k < 256 && want[k]) BAD("output '%s' is requested twice", json_string_value(jn));
            if (k < 256) want[k] = true;
            c->resp_order[c->n_resp++] = k;
            json_t *op = json_object_get(x, "parameters");
            if (op && !json_is_object(op))
                BAD("'parameters' of output '%s' must be an object", json_string_value(jn));
            if (read_bool_param(op, "binary_data", &c->binary[k], err, cap)) return 400;
            json_t *cl = op ? json_object_get(op, "classification") : NULL;
            if (cl) {
                if (!json_is_integer(cl) || json_integer_value(cl) < 1 ||
                    json_integer_value(cl) > 1 << 20)
                    BAD("classification of output '%s' must be a positive integer",
                        json_string_value(jn));
                if (v->outputs[k].kind != ONYX_KIND_TENSOR)
                    BAD("classification needs a tensor output; '%s' is not one",
                        json_string_value(jn));
                c->classification[k] = (int)json_integer_value(cl);
            }
        }
        for (int k = 0; k < no; k++)
            if (k >= 256 || want[k]) c->out_names[c->n_out++] = v->outputs[k].name;
    } else {
        for (int k = 0; k < no; k++)
            c->resp_order[c->n_resp++] = k;
    }
    in->n = ni;
    in->names = c->names;
    in->views = c->views;
    /* Optional inputs left out are not bound. */
    int w = 0;
    for (int k = 0; k < ni; k++) {
        if (c->views[k].ndim < 0) continue;
        c->views[w] = c->views[k];
        c->names[w] = c->names[k];
        w++;
    }
    in->n = w;
    in->n_outputs = c->n_out;
    in->outputs = c->n_out ? c->out_names : NULL;
    /* The tensors own copies of their data: the JSON tree (about ten times
     * the body) goes now rather than while the job waits or runs. */
    if (c->id) {
        size_t n = strlen(c->id);
        char *id = onyx_owned_alloc(&c->own, n + 1);
        if (!id) BAD("out of memory");
        memcpy(id, c->id, n + 1);
        c->id = id;
    }
    json_decref(c->root);
    c->root = NULL;
    free(req->body); /* body_len stays for the access log */
    req->body = NULL;
    return 0;
}

// ----------------------------------------------------------------------------
// Inference: response

static void add_binary_strings(struct evbuffer *bin, const onyx_tensor_view *t, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const char *s = ((const char *const *)t->data)[i];
        if (!s) s = "";
        uint32_t l = (uint32_t)strlen(s);
        uint8_t le[4] = {(uint8_t)l, (uint8_t)(l >> 8), (uint8_t)(l >> 16), (uint8_t)(l >> 24)};
        evbuffer_add(bin, le, 4);
        evbuffer_add(bin, s, l);
    }
}

/* A non-tensor value as JSON: maps as objects keyed by their keys' text,
 * sequences as arrays, tensors as nested arrays. */
static void value_json(struct evbuffer *b, const onyx_value *v) {
    onyx_kind k = onyx_value_kind(v);
    if (k == ONYX_KIND_TENSOR) {
        onyx_tensor_view t;
        onyx_value_tensor(v, &t);
        if (t.ndim == 0)
            onyx_json_element(b, t.dtype, t.data, 0);
        else
            onyx_json_tensor(b, &t, true);
    } else if (k == ONYX_KIND_SEQUENCE) {
        evbuffer_add(b, "[", 1);
        int64_t n = onyx_value_count(v);
        for (int64_t i = 0; i < n; i++) {
            if (i) evbuffer_add(b, ",", 1);
            value_json(b, onyx_value_item(v, i));
        }
        evbuffer_add(b, "]", 1);
    } else if (k == ONYX_KIND_MAP) {
        onyx_tensor_view keys;
        onyx_value_tensor(v, &keys);
        const onyx_value *vals = onyx_value_map_values(v);
        onyx_tensor_view vt;
        bool tensor_vals =
            onyx_value_kind(vals) == ONYX_KIND_TENSOR && onyx_value_tensor(vals, &vt) == ONYX_OK;
        int64_t n = onyx_value_count(v);
        evbuffer_add(b, "{", 1);
        for (int64_t i = 0; i < n; i++) {
            if (i) evbuffer_add(b, ",", 1);
            if (keys.dtype == ONYX_DTYPE_STRING) {
                onyx_json_element(b, keys.dtype, keys.data, i);
            } else {
                struct evbuffer *kb = evbuffer_new();
                onyx_json_element(kb, keys.dtype, keys.data, i);
                size_t kl = evbuffer_get_length(kb);
                char *ks = (char *)evbuffer_pullup(kb, -1);
                onyx_json_quote(b, ks ? ks : "", ks ? kl : 0);
                evbuffer_free(kb);
            }
            evbuffer_add(b, ":", 1);
            if (tensor_vals)
                onyx_json_element(b, vt.dtype, vt.data, i);
            else
                value_json(b, onyx_value_item(vals, i));
        }
        evbuffer_add(b, "}", 1);
    } else {
        evbuffer_add(b, "null", 4);
    }
}

typedef struct scored {
    double v;
    int64_t i;
} scored;

static int cmp_scored(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? 1 : -1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Triton's classification extension: the top K of each row (the last
 * dimension holds the classes) as "value:index[:label]" strings (BYTES, the
 * output's shape with the last dimension replaced by K). */
static void classification(struct evbuffer *b, struct evbuffer *bin, const onyx_model_version *v,
                           const onyx_tensor_view *t, int k, bool binary) {
    /* Classes are the last dimension; every other dimension indexes rows. */
    int64_t total = onyx_dims_count(t->ndim, t->dims);
    int64_t cols = t->ndim >= 1 ? t->dims[t->ndim - 1] : 1;
    int64_t rows = cols ? total / cols : 0;
    if (k > cols) k = (int)cols;
    evbuffer_add_printf(b, ",\"datatype\":\"BYTES\",\"shape\":[");
    for (int d = 0; d + 1 < t->ndim; d++)
        evbuffer_add_printf(b, "%lld,", (long long)t->dims[d]);
    evbuffer_add_printf(b, "%d]", k);
    scored *sc = malloc(((size_t)cols + 1) * sizeof *sc);
    struct evbuffer *strs = evbuffer_new();
    char **texts = calloc((size_t)(rows * k) + 1, sizeof *texts);
    int64_t nt = 0;
    for (int64_t r = 0; sc && texts && r < rows; r++) {
        for (int64_t c = 0; c < cols; c++) {
            int64_t idx = r * cols + c;
            double x;
            float f;
            onyx_convert(ONYX_DTYPE_FLOAT, &f, t->dtype,
                         (const uint8_t *)t->data + (size_t)idx * onyx_dtype_size(t->dtype), 1,
                         false);
            x = t->dtype == ONYX_DTYPE_DOUBLE ? ((const double *)t->data)[idx] : f;
            sc[c].v = x, sc[c].i = c;
        }
        qsort(sc, (size_t)cols, sizeof *sc, cmp_scored);
        for (int q = 0; q < k; q++) {
            char buf[512];
            const char *lab = sc[q].i < v->n_labels ? v->labels[sc[q].i] : NULL;
            snprintf(buf, sizeof buf, "%f:%lld%s%s", sc[q].v, (long long)sc[q].i, lab ? ":" : "",
                     lab ? lab : "");
            texts[nt++] = strdup(buf);
        }
    }
    onyx_tensor_view st = {ONYX_DTYPE_STRING, 1, {nt}, texts};
    if (binary) {
        size_t before = evbuffer_get_length(bin);
        add_binary_strings(bin, &st, nt);
        evbuffer_add_printf(b, ",\"parameters\":{\"binary_data_size\":%zu}",
                            evbuffer_get_length(bin) - before);
    } else {
        evbuffer_add(b, ",\"data\":", 8);
        onyx_json_tensor(b, &st, false);
    }
    for (int64_t i = 0; texts && i < nt; i++)
        free(texts[i]);
    free(texts);
    free(sc);
    evbuffer_free(strs);
}

static void k_finish(onyx_job *j, int status, const char *err, const onyx_job_output *outs,
                     int n_outs) {
    kctx *c = j->ctx;
    onyx_http_request *req = c->req;
    onyx_model_version *v = j->ver;
    if (status) {
        onyx_http_respond_error(req, status, err);
        kctx_free(c);
        return;
    }
    struct evbuffer *b = evbuffer_new(), *bin = evbuffer_new();
    evbuffer_add(b, "{\"model_name\":", 14);
    add_str(b, v->name);
    evbuffer_add_printf(b, ",\"model_version\":\"%lld\"", (long long)v->version);
    if (c->id) {
        evbuffer_add(b, ",\"id\":", 6);
        add_str(b, c->id);
    }
    evbuffer_add(b, ",\"outputs\":[", 12);
    for (int r = 0; r < c->n_resp; r++) {
        int k = c->resp_order[r];
        const onyx_job_output *o = NULL;
        for (int q = 0; q < n_outs; q++)
            if (strcmp(outs[q].name, v->outputs[k].name) == 0) o = &outs[q];
        if (!o) continue;
        if (r) evbuffer_add(b, ",", 1);
        evbuffer_add(b, "{\"name\":", 8);
        add_str(b, o->name);
        bool binary = c->binary[k] == 1 || (c->binary[k] < 0 && c->binary_default);
        if (o->is_tensor && c->classification[k]) {
            classification(b, bin, v, &o->view, c->classification[k], binary);
        } else if (o->is_tensor) {
            const onyx_tensor_view *t = &o->view;
            const char *dt = onyx_kserve_dtype(t->dtype);
            evbuffer_add_printf(b, ",\"datatype\":\"%s\",\"shape\":", dt ? dt : "BYTES");
            add_dims(b, t->ndim, t->dims);
            int64_t n = onyx_dims_count(t->ndim, t->dims);
            if (binary && dt) {
                size_t before = evbuffer_get_length(bin);
                if (t->dtype == ONYX_DTYPE_STRING)
                    add_binary_strings(bin, t, n);
                else
                    evbuffer_add(bin, t->data, (size_t)n * onyx_dtype_size(t->dtype));
                evbuffer_add_printf(b, ",\"parameters\":{\"binary_data_size\":%zu}",
                                    evbuffer_get_length(bin) - before);
            } else {
                evbuffer_add(b, ",\"data\":", 8);
                onyx_json_tensor(b, t, false);
            }
        } else {
            /* Sequences and maps: always JSON (no binary form), see docs/server.md. */
            onyx_kind kind = onyx_value_kind(o->value);
            const onyx_value *first = kind == ONYX_KIND_SEQUENCE && onyx_value_count(o->value) > 0
                                          ? onyx_value_item(o->value, 0)
                                          : NULL;
            bool maps =
                kind == ONYX_KIND_MAP || (first && onyx_value_kind(first) == ONYX_KIND_MAP) ||
                v->outputs[k].kind == ONYX_KIND_MAP || v->outputs[k].elem_kind == ONYX_KIND_MAP;
            int64_t n = kind == ONYX_KIND_SEQUENCE ? onyx_value_count(o->value) : 1;
            evbuffer_add_printf(b, ",\"datatype\":\"%s\",\"shape\":[%lld],\"data\":",
                                maps ? "MAP" : "SEQUENCE", (long long)n);
            if (kind == ONYX_KIND_SEQUENCE)
                value_json(b, o->value);
            else {
                evbuffer_add(b, "[", 1);
                value_json(b, o->value);
                evbuffer_add(b, "]", 1);
            }
        }
        evbuffer_add(b, "}", 1);
    }
    evbuffer_add(b, "]}", 2);
    size_t blen = evbuffer_get_length(bin);
    if (blen) {
        char hdr[96];
        snprintf(hdr, sizeof hdr, "Inference-Header-Content-Length: %zu\r\n",
                 evbuffer_get_length(b));
        evbuffer_add_buffer(b, bin);
        evbuffer_free(bin);
        onyx_http_respond(req, 200, "application/octet-stream", hdr, b);
    } else {
        evbuffer_free(bin);
        onyx_http_respond(req, 200, "application/json", NULL, b);
    }
    kctx_free(c);
}

static const onyx_job_ops kserve_ops = {k_prepare, k_finish};

static void infer(onyx_server *s, onyx_http_request *req, const char *name, int64_t ver) {
    onyx_model_version *v;
    char err[600];
    int st = onyx_repo_acquire(s->repo, name, ver, &v, err, sizeof err);
    if (st) {
        onyx_http_respond_error(req, st, err);
        return;
    }
    kctx *c = calloc(1, sizeof *c);
    if (!c) {
        onyx_version_release(v);
        onyx_http_respond_error(req, 503, "out of memory");
        return;
    }
    c->srv = s;
    c->req = req;
    onyx_server_submit(s, req, v, &kserve_ops, c);
}

// ----------------------------------------------------------------------------
// Routing

static bool parse_version(const char *s, int64_t *out) {
    if (!*s || strlen(s) > 18 || strspn(s, "0123456789") != strlen(s)) return false;
    *out = strtoll(s, NULL, 10);
    return *out > 0;
}

static bool method_is(onyx_http_request *req, const char *m) {
    if (strcmp(req->method, m) == 0 || (strcmp(m, "GET") == 0 && !strcmp(req->method, "HEAD")))
        return true;
    char msg[160];
    snprintf(msg, sizeof msg, "method %s is not allowed on %s (use %s)", req->method, req->path, m);
    onyx_http_respond_error(req, 405, msg);
    return false;
}

bool onyx_kserve_route(onyx_server *s, onyx_http_request *req) {
    const char *p = req->path;
    if (strncmp(p, "/v2", 3) != 0 || (p[3] && p[3] != '/')) return false;
    if (strcmp(p, "/v2/openapi.yaml") == 0) return false;
    /* Split into at most 7 segments after /v2. */
    char buf[1024];
    if (strlen(p) >= sizeof buf) {
        onyx_http_respond_error(req, 414, "request path too long");
        return true;
    }
    strcpy(buf, p + 3);
    char *seg[8];
    int n = 0;
    for (char *t = buf; *t && n < 8;) {
        if (*t == '/') {
            *t++ = 0;
            continue;
        }
        seg[n++] = t;
        while (*t && *t != '/')
            t++;
    }
    if (n == 0) {
        if (method_is(req, "GET")) server_metadata(s, req);
        return true;
    }
    if (n == 2 && strcmp(seg[0], "health") == 0) {
        if (strcmp(seg[1], "live") == 0) {
            if (method_is(req, "GET")) onyx_http_respond(req, 200, "application/json", NULL, NULL);
            return true;
        }
        if (strcmp(seg[1], "ready") == 0) {
            if (!method_is(req, "GET")) return true;
            if (atomic_load(&s->draining))
                onyx_http_respond_error(req, 503, "server is shutting down");
            else if (!onyx_repo_all_ready(s->repo))
                onyx_http_respond_error(req, 503, "not every model is loaded");
            else
                onyx_http_respond(req, 200, "application/json", NULL, NULL);
            return true;
        }
    }
    if (n == 2 && strcmp(seg[0], "repository") == 0 && strcmp(seg[1], "index") == 0) {
        if (method_is(req, "POST")) repository_index(s, req);
        return true;
    }
    if (n == 2 && strcmp(seg[0], "models") == 0 && strcmp(seg[1], "stats") == 0) {
        if (method_is(req, "GET")) stats(s, req, NULL, 0);
        return true;
    }
    if (n >= 2 && strcmp(seg[0], "models") == 0) {
        const char *name = seg[1];
        int64_t ver = 0;
        int at = 2;
        if (n >= 4 && strcmp(seg[2], "versions") == 0) {
            if (!parse_version(seg[3], &ver)) {
                onyx_http_respond_error(req, 400, "model version must be a positive integer");
                return true;
            }
            at = 4;
        }
        const char *tail = at < n ? seg[at] : "";
        snprintf(req->log_model, sizeof req->log_model, "%s", name);
        if (at + 1 < n) {
            /* fall through to 404 */
        } else if (!*tail) {
            if (method_is(req, "GET")) model_metadata(s, req, name, ver);
            return true;
        } else if (strcmp(tail, "ready") == 0) {
            if (method_is(req, "GET")) model_ready(s, req, name, ver);
            return true;
        } else if (strcmp(tail, "config") == 0) {
            if (method_is(req, "GET")) model_config(s, req, name, ver);
            return true;
        } else if (strcmp(tail, "stats") == 0) {
            if (method_is(req, "GET")) stats(s, req, name, ver);
            return true;
        } else if (strcmp(tail, "infer") == 0) {
            if (method_is(req, "POST")) infer(s, req, name, ver);
            return true;
        }
    }
    char msg[300];
    snprintf(msg, sizeof msg, "no such endpoint: %s %s", req->method, req->path);
    onyx_http_respond_error(req, 404, msg);
    return true;
}
