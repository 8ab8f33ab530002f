/* testmodel.h - writes small ONNX models in protobuf wire format for the C
 * unit tests, so a test states its graph in a few lines instead of shipping
 * files, and loads and runs them through the public API (tm_run_*). Field
 * numbers are onnx.proto's. Header-only: every function is static inline, so
 * a test file pays only for what it uses; allocation failure aborts. */
#ifndef ONYX_TESTMODEL_H
#define ONYX_TESTMODEL_H

#include "onyx.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// Wire format

/* A growing byte buffer; {0} is empty. The owner frees p. */
typedef struct tm_buf {
    uint8_t *p;
    size_t n, cap;
} tm_buf;

static inline void tm_raw(tm_buf *b, const void *d, size_t n) {
    if (!n) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) abort();
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static inline void tm_varint(tm_buf *b, uint64_t v) {
    uint8_t c[10];
    int k = 0;
    while (v >= 0x80) c[k++] = (uint8_t)(v | 0x80), v >>= 7;
    c[k++] = (uint8_t)v;
    tm_raw(b, c, (size_t)k);
}

static inline void tm_tag(tm_buf *b, uint32_t field, int wire) {
    tm_varint(b, (uint64_t)field << 3 | (unsigned)wire);
}
static inline void tm_int(tm_buf *b, uint32_t field, int64_t v) {
    tm_tag(b, field, 0);
    tm_varint(b, (uint64_t)v);
}
static inline void tm_bytes(tm_buf *b, uint32_t field, const void *d, size_t n) {
    tm_tag(b, field, 2);
    tm_varint(b, n);
    tm_raw(b, d, n);
}
static inline void tm_str(tm_buf *b, uint32_t field, const char *s) { tm_bytes(b, field, s, strlen(s)); }
static inline void tm_f32(tm_buf *b, uint32_t field, float f) {
    tm_tag(b, field, 5);
    tm_raw(b, &f, 4);
}
static inline void tm_f64(tm_buf *b, uint32_t field, double f) {
    tm_tag(b, field, 1);
    tm_raw(b, &f, 8);
}
/* Appends `inner` as a sub-message and empties it (frees its bytes). */
static inline void tm_msg(tm_buf *b, uint32_t field, tm_buf *inner) {
    tm_bytes(b, field, inner->p, inner->n);
    free(inner->p);
    memset(inner, 0, sizeof *inner);
}
/* A packed repeated varint field. */
static inline void tm_packed_i64(tm_buf *b, uint32_t field, const int64_t *v, int n) {
    tm_buf in = {0};
    for (int i = 0; i < n; i++) tm_varint(&in, (uint64_t)v[i]);
    tm_msg(b, field, &in);
}

// ----------------------------------------------------------------------------
// Attributes (AttributeProto, NodeProto field 5; `type` is its AttributeType)

static inline void tm_attr_begin(tm_buf *a, const char *name, int type) {
    memset(a, 0, sizeof *a);
    tm_str(a, 1, name);
    tm_int(a, 20, type);
}
static inline void tm_attr_int(tm_buf *node, const char *name, int64_t v) {
    tm_buf a;
    tm_attr_begin(&a, name, 2);
    tm_int(&a, 3, v);
    tm_msg(node, 5, &a);
}
static inline void tm_attr_float(tm_buf *node, const char *name, float v) {
    tm_buf a;
    tm_attr_begin(&a, name, 1);
    tm_f32(&a, 2, v);
    tm_msg(node, 5, &a);
}
static inline void tm_attr_str(tm_buf *node, const char *name, const char *s) {
    tm_buf a;
    tm_attr_begin(&a, name, 3);
    tm_str(&a, 4, s);
    tm_msg(node, 5, &a);
}
static inline void tm_attr_ints(tm_buf *node, const char *name, int n, const int64_t *v) {
    tm_buf a;
    tm_attr_begin(&a, name, 7);
    for (int i = 0; i < n; i++) tm_int(&a, 8, v[i]);
    tm_msg(node, 5, &a);
}
static inline void tm_attr_floats(tm_buf *node, const char *name, int n, const float *v) {
    tm_buf a;
    tm_attr_begin(&a, name, 6);
    for (int i = 0; i < n; i++) tm_f32(&a, 7, v[i]);
    tm_msg(node, 5, &a);
}
static inline void tm_attr_strs(tm_buf *node, const char *name, int n, const char *const *v) {
    tm_buf a;
    tm_attr_begin(&a, name, 8);
    for (int i = 0; i < n; i++) tm_str(&a, 9, v[i]);
    tm_msg(node, 5, &a);
}
/* A subgraph attribute; the graph (consumed) is named after the attribute. */
static inline void tm_attr_graph(tm_buf *node, const char *name, tm_buf *graph) {
    tm_buf a;
    tm_attr_begin(&a, name, 5);
    tm_str(graph, 2, name);
    tm_msg(&a, 6, graph);
    tm_msg(node, 5, &a);
}
/* A TypeProto attribute (consumed), as Optional's "type". */
static inline void tm_attr_type(tm_buf *node, const char *name, tm_buf *type) {
    tm_buf a;
    tm_attr_begin(&a, name, 13);
    tm_msg(&a, 14, type);
    tm_msg(node, 5, &a);
}

/* An attribute from "name=KIND:value": KIND i (int), f (float), s (string:
 * the rest of the text), or a comma-separated list: ints or I, floats or F,
 * strs or S ("name=ints:1,2,3", "name=S:Tanh,,Relu"). */
static inline void tm_attr(tm_buf *node, const char *spec) {
    const char *eq = strchr(spec, '='), *colon = eq ? strchr(eq, ':') : NULL;
    if (!colon) abort();
    char name[64], kind[8];
    snprintf(name, sizeof name, "%.*s", (int)(eq - spec), spec);
    snprintf(kind, sizeof kind, "%.*s", (int)(colon - eq - 1), eq + 1);
    const char *v = colon + 1;
    if (!strcmp(kind, "i")) {
        tm_attr_int(node, name, atoll(v));
        return;
    }
    if (!strcmp(kind, "f")) {
        tm_attr_float(node, name, (float)atof(v));
        return;
    }
    if (!strcmp(kind, "s")) {
        tm_attr_str(node, name, v);
        return;
    }
    int type = !strcmp(kind, "ints") || !strcmp(kind, "I")     ? 7
               : !strcmp(kind, "floats") || !strcmp(kind, "F") ? 6
               : !strcmp(kind, "strs") || !strcmp(kind, "S")   ? 8
                                                               : 0;
    if (!type) abort();
    tm_buf a;
    tm_attr_begin(&a, name, type);
    while (*v) {
        size_t len = strcspn(v, ",");
        char item[64];
        snprintf(item, sizeof item, "%.*s", (int)len, v);
        if (type == 8) tm_bytes(&a, 9, v, len);
        else if (type == 6) tm_f32(&a, 7, (float)atof(item));
        else tm_int(&a, 8, atoll(item));
        v += len + (v[len] == ',');
    }
    tm_msg(node, 5, &a);
}

// ----------------------------------------------------------------------------
// Nodes (GraphProto field 1)

/* Names from [s, end) separated by commas or spaces, "_" for an omitted
 * (empty) one, as repeated field `field`. */
static inline void tm_names(tm_buf *node, uint32_t field, const char *s, const char *end) {
    while (s < end) {
        s += strspn(s, ", ");
        if (s >= end) break;
        size_t len = strcspn(s, ", ");
        if (len > (size_t)(end - s)) len = (size_t)(end - s);
        if (len == 1 && *s == '_') tm_bytes(node, field, "", 0);
        else tm_bytes(node, field, s, len);
        s += len;
    }
}

/* A NodeProto with only its op_type; a one-node runner adds the rest. */
static inline tm_buf tm_op(const char *op) {
    tm_buf n = {0};
    tm_str(&n, 4, op);
    return n;
}

/* A NodeProto from "Op in1,in2 -> out1,out2" ("_" omits an input; no
 * inputs: "Op -> y"), for attributes to be added before tm_add_node. */
static inline tm_buf tm_node_new(const char *spec) {
    tm_buf n = {0};
    size_t oplen = strcspn(spec, " ");
    const char *arrow = strstr(spec, "->"), *end = spec + strlen(spec);
    tm_names(&n, 1, spec + oplen, arrow ? arrow : end);
    if (arrow) tm_names(&n, 2, arrow + 2, end);
    tm_bytes(&n, 4, spec, oplen);
    return n;
}

/* Appends `node` (consumed) to `graph`. */
static inline void tm_add_node(tm_buf *graph, tm_buf *node) { tm_msg(graph, 1, node); }

/* tm_node_new(spec) with the attributes of tm_attr (NULL-terminated list,
 * or NULL), appended to `graph`. */
static inline void tm_node(tm_buf *graph, const char *spec, const char *const *attrs) {
    tm_buf n = tm_node_new(spec);
    for (int i = 0; attrs && attrs[i]; i++) tm_attr(&n, attrs[i]);
    tm_add_node(graph, &n);
}

// ----------------------------------------------------------------------------
// Types and value infos

/* TypeProto of a tensor; ndim < 0 leaves the shape out, dims < 0 are
 * symbolic ("d0", "d1", ...). */
static inline tm_buf tm_type_tensor(int dtype, int ndim, const int64_t *dims) {
    tm_buf type = {0}, tt = {0}, shape = {0};
    tm_int(&tt, 1, dtype);
    if (ndim >= 0) {
        for (int i = 0; i < ndim; i++) {
            tm_buf d = {0};
            char sym[16];
            snprintf(sym, sizeof sym, "d%d", i);
            if (dims[i] >= 0) tm_int(&d, 1, dims[i]);
            else tm_str(&d, 2, sym);
            tm_msg(&shape, 1, &d);
        }
        tm_msg(&tt, 2, &shape);
    }
    tm_msg(&type, 1, &tt);
    return type;
}
/* TypeProto of a sequence (field 4) or optional (field 9) of `elem`. */
static inline tm_buf tm_type_wrap(uint32_t field, tm_buf elem) {
    tm_buf type = {0}, inner = {0};
    tm_msg(&inner, 1, &elem);
    tm_msg(&type, field, &inner);
    return type;
}
static inline tm_buf tm_type_seq(tm_buf elem) { return tm_type_wrap(4, elem); }
static inline tm_buf tm_type_opt(tm_buf elem) { return tm_type_wrap(9, elem); }

/* A graph input (field 11), output (12) or value_info (13); `type`
 * (consumed) may be NULL for an untyped one. */
static inline void tm_io(tm_buf *graph, uint32_t field, const char *name, tm_buf *type) {
    tm_buf vi = {0};
    tm_str(&vi, 1, name);
    if (type) tm_msg(&vi, 2, type);
    tm_msg(graph, field, &vi);
}
/* A tensor value info (shape as in tm_type_tensor). */
static inline void tm_value(tm_buf *graph, uint32_t field, const char *name, int dtype, int ndim,
                            const int64_t *dims) {
    tm_buf type = tm_type_tensor(dtype, ndim, dims);
    tm_io(graph, field, name, &type);
}
static inline void tm_input(tm_buf *g, const char *name, int dtype, int ndim, const int64_t *dims) {
    tm_value(g, 11, name, dtype, ndim, dims);
}
static inline void tm_output(tm_buf *g, const char *name, int dtype, int ndim, const int64_t *dims) {
    tm_value(g, 12, name, dtype, ndim, dims);
}

// ----------------------------------------------------------------------------
// Initializers (GraphProto field 5)

/* An initializer of any fixed-size type, its elements in raw_data. */
static inline void tm_init(tm_buf *g, const char *name, onyx_dtype dtype, int ndim, const int64_t *dims,
                           const void *data) {
    tm_buf t = {0};
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        tm_int(&t, 1, dims[i]);
        n *= dims[i];
    }
    tm_int(&t, 2, dtype);
    tm_str(&t, 8, name);
    tm_bytes(&t, 9, data, (size_t)n * onyx_dtype_size(dtype));
    tm_msg(g, 5, &t);
}
static inline void tm_init_f32(tm_buf *g, const char *name, int ndim, const int64_t *dims,
                               const float *data) {
    tm_init(g, name, ONYX_DTYPE_FLOAT, ndim, dims, data);
}
/* An int64 scalar initializer. */
static inline void tm_init_i64(tm_buf *g, const char *name, int64_t v) {
    tm_init(g, name, ONYX_DTYPE_INT64, 0, NULL, &v);
}

// ----------------------------------------------------------------------------
// Models

/* Appends an opset import of `domain` ("" is ai.onnx) to a ModelProto. */
static inline void tm_opset(tm_buf *model, const char *domain, int64_t version) {
    tm_buf op = {0};
    tm_str(&op, 1, domain);
    tm_int(&op, 2, version);
    tm_msg(model, 8, &op);
}

/* Wraps `graph` (consumed, named "test") into a ModelProto of IR version 8
 * importing ai.onnx at `opset` and each of the n_extra domains[i] at
 * versions[i]. The caller frees the result's p. */
static inline tm_buf tm_model_domains(tm_buf *graph, int opset, int n_extra, const char *const *domains,
                                      const int64_t *versions) {
    tm_buf m = {0};
    tm_int(&m, 1, 8);
    tm_opset(&m, "", opset);
    for (int i = 0; i < n_extra; i++) tm_opset(&m, domains[i], versions[i]);
    tm_str(graph, 2, "test");
    tm_msg(&m, 7, graph);
    return m;
}
static inline tm_buf tm_model(tm_buf *graph, int opset) { return tm_model_domains(graph, opset, 0, NULL, NULL); }

// ----------------------------------------------------------------------------
// Loading and running

enum { TM_MAX_IO = 8 };

/* A loaded model with a session. Output views stay valid until tm_run_fini;
 * err says why the last step failed. Start from {0} or let tm_run_* clear it. */
typedef struct tm_run {
    tm_buf bytes; /* the model; borrowed by `model` */
    onyx_model *model;
    onyx_session *session;
    const char *in_names[TM_MAX_IO], *out_names[TM_MAX_IO];
    char names[2 * TM_MAX_IO][4];
    onyx_tensor_view out[TM_MAX_IO];
    onyx_error err;
} tm_run;

/* A tensor view over caller-owned data. */
static inline onyx_tensor_view tm_view(onyx_dtype dtype, int ndim, const int64_t *dims, const void *data) {
    onyx_tensor_view v = {.dtype = dtype, .ndim = ndim, .data = (void *)data};
    for (int k = 0; k < ndim; k++) v.dims[k] = dims[k];
    return v;
}

/* Loads h->bytes with `threads` intra-op threads and runs it on the nin named
 * inputs, filling h->out with the nout outputs `out_names` (NULL: the
 * graph's, in order). Returns the load, session or run status; h->model and
 * h->session tell which step failed. */
static inline onyx_status tm_run_model(tm_run *h, int threads, int nin, const char *const *in_names,
                                       const onyx_tensor_view *ins, int nout, const char *const *out_names) {
    onyx_options o;
    onyx_options_init(&o);
    o.threads = threads;
    onyx_status st = onyx_model_load_memory(h->bytes.p, h->bytes.n, NULL, &o, &h->model, &h->err);
    if (st) return st;
    if ((st = onyx_session_new(h->model, &o, &h->session, &h->err))) return st;
    return onyx_session_run_tensors(h->session, nin, in_names, ins, nout, out_names, h->out, &h->err);
}

/* Runs one node (`node` consumed: op_type and attributes written) on
 * `threads` threads on graph inputs "i0".."i<nin-1>" (an input whose dtype
 * is UNDEFINED is omitted: "") and outputs "o0".. of the given types, at
 * ai.onnx `opset`. The graph declares element types only. Returns as
 * tm_run_model. */
static inline onyx_status tm_run_node_on(tm_run *h, int threads, tm_buf *node, int opset, int nin,
                                         const onyx_tensor_view *ins, int nout,
                                         const onyx_dtype *out_types) {
    memset(h, 0, sizeof *h);
    if (nin > TM_MAX_IO || nout > TM_MAX_IO) abort();
    tm_buf g = {0};
    onyx_tensor_view bound[TM_MAX_IO];
    int nb = 0;
    for (int i = 0; i < nin + nout; i++)
        snprintf(h->names[i], sizeof h->names[i], "%c%d", i < nin ? 'i' : 'o', i < nin ? i : i - nin);
    for (int i = 0; i < nin; i++) tm_str(node, 1, ins[i].dtype ? h->names[i] : "");
    for (int i = 0; i < nout; i++) tm_str(node, 2, h->out_names[i] = h->names[nin + i]);
    tm_add_node(&g, node);
    for (int i = 0; i < nin; i++) {
        if (!ins[i].dtype) continue;
        tm_value(&g, 11, h->names[i], ins[i].dtype, -1, NULL);
        h->in_names[nb] = h->names[i];
        bound[nb++] = ins[i];
    }
    for (int i = 0; i < nout; i++) tm_value(&g, 12, h->out_names[i], out_types[i], -1, NULL);
    h->bytes = tm_model(&g, opset);
    return tm_run_model(h, threads, nb, h->in_names, bound, nout, h->out_names);
}

/* tm_run_node_on with one thread. */
static inline onyx_status tm_run_node(tm_run *h, tm_buf *node, int opset, int nin, const onyx_tensor_view *ins,
                                      int nout, const onyx_dtype *out_types) {
    return tm_run_node_on(h, 1, node, opset, nin, ins, nout, out_types);
}

static inline void tm_run_fini(tm_run *h) {
    onyx_session_free(h->session);
    onyx_model_free(h->model);
    free(h->bytes.p);
    memset(h, 0, sizeof *h);
}

#endif
