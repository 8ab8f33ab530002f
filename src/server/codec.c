/* codec.c - JSON <-> tensor element conversion for the HTTP protocols (see
 * codec.h), base64, and per-request allocation lists.
 *
 * Owns: number formatting and range checks. Does not own: protocol fields.
 */
#include "server/codec.h"

#include "core/tensor.h"
#include "server/http.h"

#include <event2/buffer.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// Owned allocations

void *onyx_owned_alloc(onyx_owned *o, size_t size) {
    if (o->n == o->cap) {
        int nc = o->cap ? o->cap * 2 : 16;
        void **np = realloc(o->p, (size_t)nc * sizeof *np);
        if (!np) return NULL;
        o->p = np;
        o->cap = nc;
    }
    void *p = malloc(size ? size : 1);
    if (p) o->p[o->n++] = p;
    return p;
}

void onyx_owned_free(onyx_owned *o) {
    for (int i = 0; i < o->n; i++)
        free(o->p[i]);
    free(o->p);
    memset(o, 0, sizeof *o);
}

// ----------------------------------------------------------------------------
// JSON -> elements

int onyx_json_shape(json_t *j, int *ndim, int64_t *dims, char *err, size_t cap) {
    *ndim = 0;
    json_t *cur = j;
    while (json_is_array(cur)) {
        if (*ndim >= ONYX_MAX_DIMS) {
            snprintf(err, cap, "arrays nested deeper than %d levels", ONYX_MAX_DIMS);
            return -1;
        }
        dims[(*ndim)++] = (int64_t)json_array_size(cur);
        if (json_array_size(cur) == 0) break;
        cur = json_array_get(cur, 0);
    }
    return 0;
}

typedef struct fill_state {
    onyx_dtype t;
    uint8_t *dst;
    int64_t n, at;
    onyx_owned *own;
    const char *what;
    char *err;
    size_t cap;
} fill_state;

static int leaf(fill_state *f, json_t *v) {
    if (f->at >= f->n) {
        snprintf(f->err, f->cap, "%s has more values than its shape holds (%lld)", f->what,
                 (long long)f->n);
        return -1;
    }
    int64_t i = f->at++;
    onyx_dtype t = f->t;
    if (t == ONYX_DTYPE_STRING) {
        const char *s = NULL;
        size_t len = 0;
        uint8_t *dec = NULL;
        if (json_is_string(v)) {
            s = json_string_value(v);
            len = json_string_length(v);
        } else if (json_is_object(v) && json_is_string(json_object_get(v, "b64")) &&
                   json_object_size(v) == 1) {
            json_t *b = json_object_get(v, "b64");
            int64_t dl =
                onyx_base64_decode(json_string_value(b), json_string_length(b), f->own, &dec);
            if (dl < 0) {
                snprintf(f->err, f->cap, "%s: value %lld is not valid base64", f->what,
                         (long long)i);
                return -1;
            }
            s = (const char *)dec;
            len = (size_t)dl;
        } else {
            snprintf(f->err, f->cap, "%s: value %lld must be a string", f->what, (long long)i);
            return -1;
        }
        char *copy = dec ? (char *)dec : onyx_owned_alloc(f->own, len + 1);
        if (!copy) {
            snprintf(f->err, f->cap, "out of memory");
            return -1;
        }
        if (!dec) memcpy(copy, s, len), copy[len] = 0;
        ((char **)f->dst)[i] = copy;
        return 0;
    }
    if (t == ONYX_DTYPE_BOOL) {
        if (!json_is_boolean(v)) {
            snprintf(f->err, f->cap, "%s: value %lld must be true or false", f->what, (long long)i);
            return -1;
        }
        f->dst[i] = json_is_true(v) ? 1 : 0;
        return 0;
    }
    if (onyx_dtype_is_float(t)) {
        double d;
        if (json_is_number(v)) {
            d = json_number_value(v);
        } else if (json_is_string(v) &&
                   (!strcmp(json_string_value(v), "NaN") || !strcmp(json_string_value(v), "nan"))) {
            d = NAN;
        } else if (json_is_string(v) && (!strcmp(json_string_value(v), "Infinity") ||
                                         !strcmp(json_string_value(v), "inf"))) {
            d = INFINITY;
        } else if (json_is_string(v) && (!strcmp(json_string_value(v), "-Infinity") ||
                                         !strcmp(json_string_value(v), "-inf"))) {
            d = -INFINITY;
        } else {
            snprintf(f->err, f->cap, "%s: value %lld must be a number", f->what, (long long)i);
            return -1;
        }
        switch (t) {
        case ONYX_DTYPE_FLOAT:
            ((float *)f->dst)[i] = (float)d;
            break;
        case ONYX_DTYPE_DOUBLE:
            ((double *)f->dst)[i] = d;
            break;
        case ONYX_DTYPE_FLOAT16:
            ((uint16_t *)f->dst)[i] = onyx_f32_to_f16((float)d);
            break;
        case ONYX_DTYPE_BFLOAT16:
            ((uint16_t *)f->dst)[i] = onyx_f32_to_bf16((float)d);
            break;
        default: {
            float x = (float)d;
            onyx_convert(t, f->dst + i * onyx_dtype_size(t), ONYX_DTYPE_FLOAT, &x, 1, true);
        }
        }
        return 0;
    }
    /* Integers: JSON integers only, range-checked. */
    if (!json_is_integer(v)) {
        snprintf(f->err, f->cap, "%s: value %lld must be an integer", f->what, (long long)i);
        return -1;
    }
    long long x = json_integer_value(v);
    long long lo = 0, hi = 0;
    switch (t) {
    case ONYX_DTYPE_INT8:
        lo = INT8_MIN, hi = INT8_MAX;
        break;
    case ONYX_DTYPE_INT16:
        lo = INT16_MIN, hi = INT16_MAX;
        break;
    case ONYX_DTYPE_INT32:
        lo = INT32_MIN, hi = INT32_MAX;
        break;
    case ONYX_DTYPE_INT64:
        lo = INT64_MIN, hi = INT64_MAX;
        break;
    case ONYX_DTYPE_UINT8:
        hi = UINT8_MAX;
        break;
    case ONYX_DTYPE_UINT16:
        hi = UINT16_MAX;
        break;
    case ONYX_DTYPE_UINT32:
        hi = UINT32_MAX;
        break;
    case ONYX_DTYPE_UINT64:
        hi = INT64_MAX;
        break;
    default:
        snprintf(f->err, f->cap, "%s: element type %s cannot be read from JSON", f->what,
                 onyx_dtype_name(t));
        return -1;
    }
    if (x < lo || x > hi) {
        snprintf(f->err, f->cap, "%s: value %lld (%lld) is out of range for %s", f->what,
                 (long long)i, x, onyx_dtype_name(t));
        return -1;
    }
    int64_t w = x;
    onyx_convert(t, f->dst + i * onyx_dtype_size(t), ONYX_DTYPE_INT64, &w, 1, false);
    return 0;
}

static int walk(fill_state *f, json_t *j, int depth) {
    if (!json_is_array(j)) return leaf(f, j);
    if (depth > 64) {
        snprintf(f->err, f->cap, "%s: arrays nested too deeply", f->what);
        return -1;
    }
    size_t i;
    json_t *v;
    json_array_foreach(j, i, v) {
        if (walk(f, v, depth + 1)) return -1;
    }
    return 0;
}

int onyx_json_fill(json_t *j, onyx_dtype t, void *dst, int64_t n, onyx_owned *own, const char *what,
                   char *err, size_t cap) {
    fill_state f = {t, dst, n, 0, own, what, err, cap};
    if (walk(&f, j, 0)) return -1;
    if (f.at != n) {
        snprintf(err, cap, "%s has %lld values but its shape holds %lld", what, (long long)f.at,
                 (long long)n);
        return -1;
    }
    return 0;
}

// ----------------------------------------------------------------------------
// Elements -> JSON

static int fmt_float(char *buf, size_t cap, float x) {
    if (isnan(x)) return snprintf(buf, cap, "NaN");
    if (isinf(x)) return snprintf(buf, cap, x > 0 ? "Infinity" : "-Infinity");
    for (int p = 6; p < 9; p++) {
        int n = snprintf(buf, cap, "%.*g", p, (double)x);
        if (strtof(buf, NULL) == x) return n;
    }
    return snprintf(buf, cap, "%.9g", (double)x);
}

static int fmt_double(char *buf, size_t cap, double x) {
    if (isnan(x)) return snprintf(buf, cap, "NaN");
    if (isinf(x)) return snprintf(buf, cap, x > 0 ? "Infinity" : "-Infinity");
    for (int p = 15; p < 17; p++) {
        int n = snprintf(buf, cap, "%.*g", p, x);
        if (strtod(buf, NULL) == x) return n;
    }
    return snprintf(buf, cap, "%.17g", x);
}

void onyx_json_element(struct evbuffer *b, onyx_dtype t, const void *data, int64_t i) {
    char buf[40];
    int n;
    switch (t) {
    case ONYX_DTYPE_FLOAT:
        n = fmt_float(buf, sizeof buf, ((const float *)data)[i]);
        break;
    case ONYX_DTYPE_DOUBLE:
        n = fmt_double(buf, sizeof buf, ((const double *)data)[i]);
        break;
    case ONYX_DTYPE_FLOAT16:
        n = fmt_float(buf, sizeof buf, onyx_f16_to_f32(((const uint16_t *)data)[i]));
        break;
    case ONYX_DTYPE_BFLOAT16:
        n = fmt_float(buf, sizeof buf, onyx_bf16_to_f32(((const uint16_t *)data)[i]));
        break;
    case ONYX_DTYPE_BOOL:
        n = snprintf(buf, sizeof buf, "%s", ((const uint8_t *)data)[i] ? "true" : "false");
        break;
    case ONYX_DTYPE_INT8:
        n = snprintf(buf, sizeof buf, "%d", ((const int8_t *)data)[i]);
        break;
    case ONYX_DTYPE_INT16:
        n = snprintf(buf, sizeof buf, "%d", ((const int16_t *)data)[i]);
        break;
    case ONYX_DTYPE_INT32:
        n = snprintf(buf, sizeof buf, "%d", ((const int32_t *)data)[i]);
        break;
    case ONYX_DTYPE_INT64:
        n = snprintf(buf, sizeof buf, "%lld", (long long)((const int64_t *)data)[i]);
        break;
    case ONYX_DTYPE_UINT8:
        n = snprintf(buf, sizeof buf, "%u", ((const uint8_t *)data)[i]);
        break;
    case ONYX_DTYPE_UINT16:
        n = snprintf(buf, sizeof buf, "%u", ((const uint16_t *)data)[i]);
        break;
    case ONYX_DTYPE_UINT32:
        n = snprintf(buf, sizeof buf, "%u", ((const uint32_t *)data)[i]);
        break;
    case ONYX_DTYPE_UINT64:
        n = snprintf(buf, sizeof buf, "%llu", (unsigned long long)((const uint64_t *)data)[i]);
        break;
    case ONYX_DTYPE_STRING: {
        const char *s = ((const char *const *)data)[i];
        if (!s) s = "";
        onyx_json_quote(b, s, strlen(s));
        return;
    }
    default: {
        /* fp8 / 4-bit types: through float; complex has no JSON spelling */
        if (onyx_dtype_is_float(t) || t == ONYX_DTYPE_INT4 || t == ONYX_DTYPE_UINT4) {
            float x;
            onyx_convert(ONYX_DTYPE_FLOAT, &x, t,
                         (const uint8_t *)data + (size_t)i * onyx_dtype_size(t), 1, false);
            n = fmt_float(buf, sizeof buf, x);
        } else {
            n = snprintf(buf, sizeof buf, "null");
        }
    }
    }
    evbuffer_add(b, buf, (size_t)n);
}

static void nested(struct evbuffer *b, const onyx_tensor_view *t, int d, int64_t *at) {
    if (d == t->ndim) {
        onyx_json_element(b, t->dtype, t->data, (*at)++);
        return;
    }
    evbuffer_add(b, "[", 1);
    for (int64_t i = 0; i < t->dims[d]; i++) {
        if (i) evbuffer_add(b, ",", 1);
        nested(b, t, d + 1, at);
    }
    evbuffer_add(b, "]", 1);
}

void onyx_json_tensor(struct evbuffer *b, const onyx_tensor_view *t, bool nest) {
    int64_t n = onyx_dims_count(t->ndim, t->dims);
    if (nest) {
        int64_t at = 0;
        nested(b, t, 0, &at);
        return;
    }
    evbuffer_add(b, "[", 1);
    for (int64_t i = 0; i < n; i++) {
        if (i) evbuffer_add(b, ",", 1);
        onyx_json_element(b, t->dtype, t->data, i);
    }
    evbuffer_add(b, "]", 1);
}

// ----------------------------------------------------------------------------
// Base64

static int b64val(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

int64_t onyx_base64_decode(const char *s, size_t n, onyx_owned *own, uint8_t **out) {
    uint8_t *o = onyx_owned_alloc(own, n / 4 * 3 + 4);
    if (!o) return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t len = 0;
    bool pad = false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        if (c == '=') {
            pad = true;
            continue;
        }
        int v = b64val(c);
        if (v < 0 || pad) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[len++] = (uint8_t)(acc >> bits);
        }
    }
    if (bits >= 6) return -1; /* a lone sixth of a byte */
    o[len] = 0;
    *out = o;
    return (int64_t)len;
}

void onyx_base64_encode(struct evbuffer *b, const uint8_t *p, size_t n) {
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char q[4];
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n) v |= p[i + 2];
        q[0] = a[v >> 18];
        q[1] = a[(v >> 12) & 63];
        q[2] = i + 1 < n ? a[(v >> 6) & 63] : '=';
        q[3] = i + 2 < n ? a[v & 63] : '=';
        evbuffer_add(b, q, 4);
    }
}
