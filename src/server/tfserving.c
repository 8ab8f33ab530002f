/* tfserving.c - TensorFlow Serving's REST API under /v1: model status,
 * metadata, and :predict with the row ("instances") and columnar ("inputs")
 * formats, {"b64": ...} binary values (encoded images for image inputs).
 *
 * Owns: the /v1 documents. Does not own: running (sched.c), element
 * conversion (codec.c), images (image.c).
 */
#include "server/codec.h"
#include "server/server.h"

#include <event2/buffer.h>
#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tctx {
    onyx_server *srv;
    onyx_http_request *req;
    json_t *root;
    onyx_owned own;
    bool rows; /* "instances" (answer "predictions") or "inputs" (answer "outputs") */
    int64_t n_rows;
    onyx_tensor_view *views;
    const char **names;
} tctx;

static void tctx_free(tctx *c) {
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

static json_t *first_leaf(json_t *j) {
    while (json_is_array(j) && json_array_size(j) > 0)
        j = json_array_get(j, 0);
    return j;
}

/* Appends every leaf of j (b64 objects) as decoded bytes. */
static int collect_b64(tctx *c, json_t *j, uint8_t **bytes, size_t *lens, int64_t *n, int64_t max,
                       char *err, size_t cap) {
    if (json_is_array(j)) {
        size_t i;
        json_t *x;
        json_array_foreach(j, i, x) {
            int st = collect_b64(c, x, bytes, lens, n, max, err, cap);
            if (st) return st;
        }
        return 0;
    }
    json_t *b = json_is_object(j) ? json_object_get(j, "b64") : NULL;
    if (!json_is_string(b)) BAD("image values must be {\"b64\": \"...\"} objects");
    if (*n >= max) BAD("too many images in one request (at most %lld)", (long long)max);
    uint8_t *dec;
    int64_t dl = onyx_base64_decode(json_string_value(b), json_string_length(b), &c->own, &dec);
    if (dl < 0) BAD("image %lld is not valid base64", (long long)*n);
    bytes[*n] = dec;
    lens[*n] = (size_t)dl;
    (*n)++;
    return 0;
}

/* Builds input `idx` from per-row values rows[0..n) or the columnar value col. */
static int build_input(tctx *c, onyx_model_version *v, int idx, json_t **rows, int64_t n,
                       json_t *col, char *err, size_t cap) {
    const onyx_io_info *io = &v->inputs[idx];
    onyx_tensor_view *tv = &c->views[idx];
    if (io->kind != ONYX_KIND_TENSOR)
        BAD("input '%s' of model '%s' is not a tensor; it cannot be fed over HTTP", io->name,
            v->name);
    json_t *leaf = first_leaf(rows ? rows[0] : col);
    if (json_is_object(leaf) && io->dtype != ONYX_DTYPE_STRING) {
        if (!onyx_server_is_image_input(v, io))
            BAD("input '%s' of model '%s' takes numbers, not binary values", io->name, v->name);
        const int64_t max = 4096;
        uint8_t **bytes = onyx_owned_alloc(&c->own, (size_t)max * sizeof *bytes);
        size_t *lens = onyx_owned_alloc(&c->own, (size_t)max * sizeof *lens);
        if (!bytes || !lens) BAD("out of memory");
        int64_t k = 0;
        for (int64_t r = 0; r < (rows ? n : 1); r++) {
            int st = collect_b64(c, rows ? rows[r] : col, bytes, lens, &k, max, err, cap);
            if (st) return st;
        }
        return onyx_server_images(v, io, (const uint8_t *const *)bytes, lens, k, &c->own, tv, err,
                                  cap);
    }
    int ndim;
    int64_t dims[ONYX_MAX_DIMS];
    char serr[200];
    int off = rows ? 1 : 0;
    if (onyx_json_shape(rows ? rows[0] : col, &ndim, dims + off, serr, sizeof serr) ||
        ndim + off > ONYX_MAX_DIMS)
        BAD("input '%s': %s", io->name, ndim + off > ONYX_MAX_DIMS ? "too many dimensions" : serr);
    if (rows) {
        dims[0] = n;
        ndim++;
        for (int64_t r = 1; r < n; r++) {
            int nd2;
            int64_t d2[ONYX_MAX_DIMS];
            if (onyx_json_shape(rows[r], &nd2, d2, serr, sizeof serr) || nd2 != ndim - 1 ||
                memcmp(d2, dims + 1, sizeof(int64_t) * (size_t)nd2) != 0)
                BAD("instance %lld of input '%s' has a different shape than instance 0",
                    (long long)r, io->name);
        }
    }
    bool ok = io->ndim < 0 || io->ndim == ndim;
    for (int d = 0; ok && io->ndim >= 0 && d < ndim; d++)
        if (io->dims[d] >= 0 && io->dims[d] != dims[d]) ok = false;
    if (!ok) {
        char want[160], got[160];
        BAD("input '%s' of model '%s' has shape %s; the model expects %s (-1: any)", io->name,
            v->name, onyx_dims_text(got, sizeof got, ndim, dims),
            onyx_dims_text(want, sizeof want, io->ndim, io->dims));
    }
    int64_t count = onyx_dims_count(ndim, dims);
    int64_t limit = c->srv->opt->max_tensor_elements;
    if (count < 0 || (limit > 0 && count > limit))
        BAD("input '%s' has more elements than the server's limit of %lld", io->name,
            (long long)limit);
    size_t esz = onyx_dtype_size(io->dtype);
    tv->dtype = io->dtype;
    tv->ndim = ndim;
    memcpy(tv->dims, dims, sizeof dims);
    tv->data = onyx_owned_alloc(&c->own, (size_t)count * esz);
    if (!tv->data) BAD("out of memory for input '%s'", io->name);
    char what[200];
    if (!rows) {
        snprintf(what, sizeof what, "input '%s'", io->name);
        return onyx_json_fill(col, io->dtype, tv->data, count, &c->own, what, err, cap) ? 400 : 0;
    }
    int64_t per = n ? count / n : 0;
    for (int64_t r = 0; r < n; r++) {
        snprintf(what, sizeof what, "instance %lld of input '%s'", (long long)r, io->name);
        if (onyx_json_fill(rows[r], io->dtype, (uint8_t *)tv->data + (size_t)(r * per) * esz, per,
                           &c->own, what, err, cap))
            return 400;
    }
    return 0;
}

static int t_prepare(onyx_job *j, onyx_job_inputs *in, char *err, size_t cap) {
    tctx *c = j->ctx;
    onyx_model_version *v = j->ver;
    if (c->req->body_len == 0)
        BAD("empty request body: send {\"instances\": [...]} or {\"inputs\": ...}");
    json_error_t je;
    c->root = json_loadb((const char *)c->req->body, c->req->body_len, 0, &je);
    if (!c->root)
        BAD("malformed JSON in the request body: %s (line %d, column %d)", je.text, je.line,
            je.column);
    if (!json_is_object(c->root)) BAD("the request body must be a JSON object");
    json_t *inst = json_object_get(c->root, "instances");
    json_t *cols = json_object_get(c->root, "inputs");
    if (!inst && !cols)
        BAD("the request needs \"instances\" (row format) or \"inputs\" (columnar)");
    if (inst && cols) BAD("give either \"instances\" or \"inputs\", not both");
    int ni = v->n_inputs;
    c->views = onyx_owned_alloc(&c->own, (size_t)ni * sizeof *c->views);
    c->names = onyx_owned_alloc(&c->own, (size_t)ni * sizeof *c->names);
    if (!c->views || !c->names) BAD("out of memory");
    for (int i = 0; i < ni; i++)
        c->names[i] = v->inputs[i].name, c->views[i].ndim = -1;
    if (inst) {
        c->rows = true;
        if (!json_is_array(inst) || json_array_size(inst) == 0)
            BAD("\"instances\" must be a non-empty list");
        int64_t n = (int64_t)json_array_size(inst);
        c->n_rows = n;
        json_t **rows = onyx_owned_alloc(&c->own, (size_t)n * sizeof *rows);
        if (!rows) BAD("out of memory");
        bool named = json_is_object(json_array_get(inst, 0)) &&
                     !json_object_get(json_array_get(inst, 0), "b64");
        if (!named && ni != 1)
            BAD("model '%s' has %d inputs: each instance must be an object naming them", v->name,
                ni);
        for (int k = 0; k < ni; k++) {
            for (int64_t r = 0; r < n; r++) {
                json_t *x = json_array_get(inst, (size_t)r);
                if (named) {
                    if (!json_is_object(x)) BAD("instance %lld must be an object", (long long)r);
                    rows[r] = json_object_get(x, v->inputs[k].name);
                    if (!rows[r]) {
                        if (v->inputs[k].optional) break;
                        BAD("instance %lld has no input '%s'", (long long)r, v->inputs[k].name);
                    }
                } else {
                    rows[r] = x;
                }
            }
            if (named && !json_object_get(json_array_get(inst, 0), v->inputs[k].name)) continue;
            int st = build_input(c, v, k, rows, n, NULL, err, cap);
            if (st) return st;
        }
        if (named) {
            const char *key;
            json_t *val;
            json_object_foreach(json_array_get(inst, 0), key, val) {
                bool known = false;
                for (int k = 0; k < ni; k++)
                    known |= strcmp(v->inputs[k].name, key) == 0;
                if (!known) BAD("model '%s' has no input '%s'", v->name, key);
            }
        }
    } else {
        bool named = json_is_object(cols) && !json_object_get(cols, "b64");
        if (!named && ni != 1)
            BAD("model '%s' has %d inputs: \"inputs\" must be an object naming them", v->name, ni);
        if (named) {
            const char *key;
            json_t *val;
            json_object_foreach(cols, key, val) {
                int k = -1;
                for (int q = 0; q < ni; q++)
                    if (strcmp(v->inputs[q].name, key) == 0) k = q;
                if (k < 0) BAD("model '%s' has no input '%s'", v->name, key);
                int st = build_input(c, v, k, NULL, 0, val, err, cap);
                if (st) return st;
            }
        } else {
            int st = build_input(c, v, 0, NULL, 0, cols, err, cap);
            if (st) return st;
        }
    }
    int w = 0;
    for (int k = 0; k < ni; k++) {
        if (c->views[k].ndim < 0) {
            if (!v->inputs[k].optional)
                BAD("missing input '%s' for model '%s'", v->inputs[k].name, v->name);
            continue;
        }
        c->views[w] = c->views[k];
        c->names[w] = c->names[k];
        w++;
    }
    in->n = w;
    in->names = c->names;
    in->views = c->views;
    in->n_outputs = 0;
    in->outputs = NULL;
    json_decref(c->root); /* the tensors own copies of their data */
    c->root = NULL;
    free(c->req->body); /* body_len stays for the access log */
    c->req->body = NULL;
    return 0;
}

/* A non-tensor value (ZipMap's sequence of maps) as JSON; the item `row` of a
 * sequence, or the whole value when row < 0. */
static void value_json(struct evbuffer *b, const onyx_value *v, int64_t row);

static void map_json(struct evbuffer *b, const onyx_value *v) {
    onyx_tensor_view keys, vt;
    onyx_value_tensor(v, &keys);
    const onyx_value *vals = onyx_value_map_values(v);
    bool tensor_vals = onyx_value_tensor(vals, &vt) == ONYX_OK;
    int64_t n = onyx_value_count(v);
    evbuffer_add(b, "{", 1);
    for (int64_t i = 0; i < n; i++) {
        if (i) evbuffer_add(b, ",", 1);
        if (keys.dtype == ONYX_DTYPE_STRING) {
            onyx_json_element(b, keys.dtype, keys.data, i);
        } else {
            evbuffer_add(b, "\"", 1);
            onyx_json_element(b, keys.dtype, keys.data, i);
            evbuffer_add(b, "\"", 1);
        }
        evbuffer_add(b, ":", 1);
        if (tensor_vals)
            onyx_json_element(b, vt.dtype, vt.data, i);
        else
            value_json(b, onyx_value_item(vals, i), -1);
    }
    evbuffer_add(b, "}", 1);
}

static void value_json(struct evbuffer *b, const onyx_value *v, int64_t row) {
    onyx_kind k = onyx_value_kind(v);
    if (k == ONYX_KIND_SEQUENCE) {
        if (row >= 0) {
            value_json(b, onyx_value_item(v, row), -1);
            return;
        }
        evbuffer_add(b, "[", 1);
        for (int64_t i = 0; i < onyx_value_count(v); i++) {
            if (i) evbuffer_add(b, ",", 1);
            value_json(b, onyx_value_item(v, i), -1);
        }
        evbuffer_add(b, "]", 1);
    } else if (k == ONYX_KIND_MAP) {
        map_json(b, v);
    } else if (k == ONYX_KIND_TENSOR) {
        onyx_tensor_view t;
        onyx_value_tensor(v, &t);
        if (t.ndim == 0)
            onyx_json_element(b, t.dtype, t.data, 0);
        else
            onyx_json_tensor(b, &t, true);
    } else {
        evbuffer_add(b, "null", 4);
    }
}

/* Row r of output o. */
static void row_json(struct evbuffer *b, const onyx_job_output *o, int64_t r) {
    if (!o->is_tensor) {
        value_json(b, o->value, r);
        return;
    }
    onyx_tensor_view t = o->view;
    size_t row = onyx_dtype_size(t.dtype);
    for (int d = 1; d < t.ndim; d++)
        row *= (size_t)t.dims[d];
    if (t.ndim == 1) {
        onyx_json_element(b, t.dtype, t.data, r);
        return;
    }
    onyx_tensor_view s = t;
    s.ndim = t.ndim - 1;
    memmove(s.dims, t.dims + 1, sizeof(int64_t) * (size_t)s.ndim);
    s.data = (char *)t.data + row * (size_t)r;
    onyx_json_tensor(b, &s, true);
}

static int64_t rows_of(const onyx_job_output *o) {
    if (o->is_tensor) return o->view.ndim >= 1 ? o->view.dims[0] : -1;
    return onyx_value_kind(o->value) == ONYX_KIND_SEQUENCE ? onyx_value_count(o->value) : -1;
}

static void t_finish(onyx_job *j, int status, const char *err, const onyx_job_output *outs,
                     int n_outs) {
    tctx *c = j->ctx;
    if (status) {
        onyx_http_respond_error(c->req, status, err);
        tctx_free(c);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    if (c->rows) {
        for (int o = 0; o < n_outs; o++) {
            if (rows_of(&outs[o]) != c->n_rows) {
                char msg[300];
                snprintf(msg, sizeof msg,
                         "output '%s' has no batch dimension of %lld rows; use the columnar "
                         "\"inputs\" format",
                         outs[o].name, (long long)c->n_rows);
                evbuffer_free(b);
                onyx_http_respond_error(c->req, 400, msg);
                tctx_free(c);
                return;
            }
        }
        evbuffer_add(b, "{\"predictions\":[", 16);
        for (int64_t r = 0; r < c->n_rows; r++) {
            if (r) evbuffer_add(b, ",", 1);
            if (n_outs == 1) {
                row_json(b, &outs[0], r);
                continue;
            }
            evbuffer_add(b, "{", 1);
            for (int o = 0; o < n_outs; o++) {
                if (o) evbuffer_add(b, ",", 1);
                onyx_json_quote(b, outs[o].name, strlen(outs[o].name));
                evbuffer_add(b, ":", 1);
                row_json(b, &outs[o], r);
            }
            evbuffer_add(b, "}", 1);
        }
        evbuffer_add(b, "]}", 2);
    } else {
        evbuffer_add(b, "{\"outputs\":", 11);
        if (n_outs != 1) evbuffer_add(b, "{", 1);
        for (int o = 0; o < n_outs; o++) {
            if (n_outs != 1) {
                if (o) evbuffer_add(b, ",", 1);
                onyx_json_quote(b, outs[o].name, strlen(outs[o].name));
                evbuffer_add(b, ":", 1);
            }
            if (outs[o].is_tensor) {
                if (outs[o].view.ndim == 0)
                    onyx_json_element(b, outs[o].view.dtype, outs[o].view.data, 0);
                else
                    onyx_json_tensor(b, &outs[o].view, true);
            } else {
                value_json(b, outs[o].value, -1);
            }
        }
        if (n_outs != 1) evbuffer_add(b, "}", 1);
        evbuffer_add(b, "}", 1);
    }
    onyx_http_respond(c->req, 200, "application/json", NULL, b);
    tctx_free(c);
}

static const onyx_job_ops tfs_ops = {t_prepare, t_finish};

// ----------------------------------------------------------------------------
// Status and metadata

static void status(onyx_server *s, onyx_http_request *req, const char *name, int64_t ver) {
    onyx_model_info info;
    char msg[300];
    if (onyx_repo_info(s->repo, name, &info) != 0) {
        snprintf(msg, sizeof msg, "Servable not found for request: Latest(%s)", name);
        onyx_http_respond_error(req, 404, msg);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, "{\"model_version_status\":[", 25);
    bool any = false;
    for (int i = 0; i < info.n_versions; i++) {
        if (ver > 0 && info.versions[i]->version != ver) continue;
        evbuffer_add_printf(b,
                            "%s{\"version\":\"%lld\",\"state\":\"AVAILABLE\",\"status\":"
                            "{\"error_code\":\"OK\",\"error_message\":\"\"}}",
                            any ? "," : "", (long long)info.versions[i]->version);
        any = true;
    }
    if (!any && info.error) {
        evbuffer_add(b,
                     "{\"version\":\"0\",\"state\":\"END\",\"status\":{\"error_code\":"
                     "\"UNKNOWN\",\"error_message\":",
                     72);
        onyx_json_quote(b, info.error, strlen(info.error));
        evbuffer_add(b, "}}", 2);
        any = true;
    }
    evbuffer_add(b, "]}", 2);
    onyx_repo_info_free(&info);
    if (!any && ver > 0) {
        evbuffer_free(b);
        snprintf(msg, sizeof msg, "Servable not found for request: Specific(%s, %lld)", name,
                 (long long)ver);
        onyx_http_respond_error(req, 404, msg);
        return;
    }
    onyx_http_respond(req, 200, "application/json", NULL, b);
}

static const char *tf_dtype(onyx_dtype t) {
    switch (t) {
    case ONYX_DTYPE_FLOAT:
        return "DT_FLOAT";
    case ONYX_DTYPE_DOUBLE:
        return "DT_DOUBLE";
    case ONYX_DTYPE_FLOAT16:
        return "DT_HALF";
    case ONYX_DTYPE_BFLOAT16:
        return "DT_BFLOAT16";
    case ONYX_DTYPE_INT8:
        return "DT_INT8";
    case ONYX_DTYPE_INT16:
        return "DT_INT16";
    case ONYX_DTYPE_INT32:
        return "DT_INT32";
    case ONYX_DTYPE_INT64:
        return "DT_INT64";
    case ONYX_DTYPE_UINT8:
        return "DT_UINT8";
    case ONYX_DTYPE_UINT16:
        return "DT_UINT16";
    case ONYX_DTYPE_UINT32:
        return "DT_UINT32";
    case ONYX_DTYPE_UINT64:
        return "DT_UINT64";
    case ONYX_DTYPE_BOOL:
        return "DT_BOOL";
    case ONYX_DTYPE_STRING:
        return "DT_STRING";
    default:
        return "DT_INVALID";
    }
}

static void sig_io(struct evbuffer *b, const onyx_io_info *ios, int n) {
    evbuffer_add(b, "{", 1);
    for (int i = 0; i < n; i++) {
        const onyx_io_info *io = &ios[i];
        if (i) evbuffer_add(b, ",", 1);
        onyx_json_quote(b, io->name, strlen(io->name));
        evbuffer_add_printf(b, ":{\"dtype\":\"%s\",\"tensor_shape\":{\"dim\":[",
                            io->kind == ONYX_KIND_TENSOR ? tf_dtype(io->dtype) : "DT_VARIANT");
        for (int d = 0; d < io->ndim; d++)
            evbuffer_add_printf(b, "%s{\"size\":\"%lld\",\"name\":\"\"}", d ? "," : "",
                                (long long)io->dims[d]);
        evbuffer_add_printf(b, "],\"unknown_rank\":%s},\"name\":", io->ndim < 0 ? "true" : "false");
        onyx_json_quote(b, io->name, strlen(io->name));
        evbuffer_add(b, "}", 1);
    }
    evbuffer_add(b, "}", 1);
}

static void metadata(onyx_server *s, onyx_http_request *req, const char *name, int64_t ver) {
    onyx_model_version *v;
    char err[600];
    int st = onyx_repo_acquire(s->repo, name, ver, &v, err, sizeof err);
    if (st) {
        onyx_http_respond_error(req, st, err);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, "{\"model_spec\":{\"name\":", 22);
    onyx_json_quote(b, v->name, strlen(v->name));
    evbuffer_add_printf(b,
                        ",\"signature_name\":\"\",\"version\":\"%lld\"},\"metadata\":{"
                        "\"signature_def\":{\"signature_def\":{\"serving_default\":{\"inputs\":",
                        (long long)v->version);
    sig_io(b, v->inputs, v->n_inputs);
    evbuffer_add(b, ",\"outputs\":", 11);
    sig_io(b, v->outputs, v->n_outputs);
    evbuffer_add_printf(b, ",\"method_name\":\"tensorflow/serving/predict\"}}}}}");
    onyx_version_release(v);
    onyx_http_respond(req, 200, "application/json", NULL, b);
}

// ----------------------------------------------------------------------------
// Routing

bool onyx_tfs_route(onyx_server *s, onyx_http_request *req) {
    const char *p = req->path;
    if (strncmp(p, "/v1/models/", 11) != 0) return false;
    char buf[1024];
    if (strlen(p + 11) >= sizeof buf) {
        onyx_http_respond_error(req, 414, "request path too long");
        return true;
    }
    strcpy(buf, p + 11);
    char *verb = NULL;
    char *slash = strchr(buf, '/');
    char *colon = strrchr(buf, ':');
    if (colon && (!slash || colon > slash || !strchr(colon, '/'))) {
        *colon = 0;
        verb = colon + 1;
    }
    slash = strchr(buf, '/');
    const char *name = buf;
    int64_t ver = 0;
    const char *tail = "";
    if (slash) {
        *slash = 0;
        char *rest = slash + 1;
        if (strncmp(rest, "versions/", 9) == 0) {
            char *vs = rest + 9, *e2 = strchr(vs, '/');
            if (e2) *e2 = 0, tail = e2 + 1;
            if (!*vs || strspn(vs, "0123456789") != strlen(vs) || strlen(vs) > 18 ||
                (ver = strtoll(vs, NULL, 10)) <= 0) {
                onyx_http_respond_error(req, 400, "model version must be a positive integer");
                return true;
            }
        } else if (strncmp(rest, "labels/", 7) == 0) {
            onyx_http_respond_error(req, 501, "version labels are not supported; use versions/N");
            return true;
        } else {
            tail = rest;
        }
    }
    if (!*name) return false;
    snprintf(req->log_model, sizeof req->log_model, "%s", name);
    bool get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
    if (verb) {
        if (*tail) return false;
        if (strcmp(verb, "predict") != 0) {
            char msg[200];
            snprintf(msg, sizeof msg, "':%s' is not supported; onyx serves ':predict'", verb);
            onyx_http_respond_error(req, 501, msg);
            return true;
        }
        if (strcmp(req->method, "POST") != 0) {
            onyx_http_respond_error(req, 405, "use POST for :predict");
            return true;
        }
        onyx_model_version *v;
        char err[600];
        int st = onyx_repo_acquire(s->repo, name, ver, &v, err, sizeof err);
        if (st) {
            onyx_http_respond_error(req, st, err);
            return true;
        }
        tctx *c = calloc(1, sizeof *c);
        if (!c) {
            onyx_version_release(v);
            onyx_http_respond_error(req, 503, "out of memory");
            return true;
        }
        c->srv = s;
        c->req = req;
        onyx_server_submit(s, req, v, &tfs_ops, c);
        return true;
    }
    if (!get) {
        onyx_http_respond_error(req, 405, "use GET for model status and metadata");
        return true;
    }
    if (!*tail)
        status(s, req, name, ver);
    else if (!strcmp(tail, "metadata"))
        metadata(s, req, name, ver);
    else
        return false;
    return true;
}
