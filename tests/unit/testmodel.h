/* testmodel.h - writes small ONNX models in protobuf wire format for C unit
 * tests, so a test states its graph in a few lines instead of shipping
 * files. Field numbers are onnx.proto's. Header-only (static functions). */
#ifndef ONYX_TESTMODEL_H
#define ONYX_TESTMODEL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tm_buf {
    uint8_t *p;
    size_t n, cap;
} tm_buf;

static void tm_raw(tm_buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void tm_varint(tm_buf *b, uint64_t v) {
    uint8_t c[10];
    int k = 0;
    do {
        c[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    tm_raw(b, c, (size_t)k);
}

static void tm_tag(tm_buf *b, uint32_t field, int wire) { tm_varint(b, (uint64_t)field << 3 | (unsigned)wire); }
static void tm_int(tm_buf *b, uint32_t field, int64_t v) {
    tm_tag(b, field, 0);
    tm_varint(b, (uint64_t)v);
}
static void tm_bytes(tm_buf *b, uint32_t field, const void *d, size_t n) {
    tm_tag(b, field, 2);
    tm_varint(b, n);
    tm_raw(b, d, n);
}
static void tm_str(tm_buf *b, uint32_t field, const char *s) { tm_bytes(b, field, s, strlen(s)); }
static void tm_f32(tm_buf *b, uint32_t field, float f) {
    tm_tag(b, field, 5);
    tm_raw(b, &f, 4);
}
/* Appends `inner` as a sub-message and empties it. */
static void tm_msg(tm_buf *b, uint32_t field, tm_buf *inner) {
    tm_bytes(b, field, inner->p, inner->n);
    free(inner->p);
    memset(inner, 0, sizeof *inner);
}

/* NodeProto from "Op in1,in2 -> out1" plus attributes "name=i:5",
 * "name=f:0.5", "name=s:text", "name=ints:1,2,3" (NULL-terminated list). */
static void tm_node(tm_buf *graph, const char *spec, const char *const *attrs) {
    tm_buf node = {0};
    char op[64], ins[256] = "", outs[256] = "";
    if (sscanf(spec, "%63s %255[^-]-> %255s", op, ins, outs) < 2) abort();
    char *save, *t;
    for (t = strtok_r(ins, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
        tm_str(&node, 1, strcmp(t, "_") == 0 ? "" : t);
    for (t = strtok_r(outs, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) tm_str(&node, 2, t);
    tm_str(&node, 4, op);
    for (int i = 0; attrs && attrs[i]; i++) {
        tm_buf at = {0};
        const char *eq = strchr(attrs[i], '='), *colon = strchr(eq, ':');
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(eq - attrs[i]), attrs[i]);
        tm_str(&at, 1, name);
        if (!strncmp(eq + 1, "ints", 4)) {
            for (const char *p = colon + 1; *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : "")
                tm_int(&at, 8, atoll(p));
            tm_int(&at, 20, 7);
        } else if (eq[1] == 'i') {
            tm_int(&at, 3, atoll(colon + 1));
            tm_int(&at, 20, 2);
        } else if (eq[1] == 'f') {
            tm_f32(&at, 2, (float)atof(colon + 1));
            tm_int(&at, 20, 1);
        } else {
            tm_str(&at, 4, colon + 1);
            tm_int(&at, 20, 3);
        }
        tm_msg(&node, 5, &at);
    }
    tm_msg(graph, 1, &node);
}

/* ValueInfoProto of a tensor; dims < 0 are symbolic ("d0", "d1", ...). */
static void tm_value(tm_buf *graph, uint32_t field, const char *name, int dtype, int ndim,
                     const int64_t *dims) {
    tm_buf vi = {0}, type = {0}, tt = {0}, shape = {0};
    tm_str(&vi, 1, name);
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
    tm_msg(&vi, 2, &type);
    tm_msg(graph, field, &vi);
}
static void tm_input(tm_buf *g, const char *name, int dtype, int ndim, const int64_t *dims) {
    tm_value(g, 11, name, dtype, ndim, dims);
}
static void tm_output(tm_buf *g, const char *name, int dtype, int ndim, const int64_t *dims) {
    tm_value(g, 12, name, dtype, ndim, dims);
}

/* A float initializer with raw_data. */
static void tm_init_f32(tm_buf *g, const char *name, int ndim, const int64_t *dims,
                        const float *data) {
    tm_buf t = {0};
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        tm_int(&t, 1, dims[i]);
        n *= dims[i];
    }
    tm_int(&t, 2, 1);
    tm_str(&t, 8, name);
    tm_bytes(&t, 9, data, (size_t)n * 4);
    tm_msg(g, 5, &t);
}

/* Wraps a graph into a ModelProto importing ai.onnx at `opset`. */
static tm_buf tm_model(tm_buf *graph, int opset) {
    tm_buf m = {0}, op = {0};
    tm_int(&m, 1, 8);
    tm_str(&op, 1, "");
    tm_int(&op, 2, opset);
    tm_msg(&m, 8, &op);
    tm_str(graph, 2, "test");
    tm_msg(&m, 7, graph);
    return m;
}

#endif
