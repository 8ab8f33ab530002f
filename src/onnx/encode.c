/* encode.c - serializes tensors and values as TensorProto, SequenceProto,
 * MapProto and OptionalProto (for `onyx run --format pb`).
 *
 * Owns: the protobuf writer and the onyx_buf growth. Does not own: files
 * (src/io writes the bytes). Output mirrors onnx.numpy_helper: dims, data_type,
 * name, then raw_data for numeric types (4-bit types packed two per byte, low
 * nibble first) or string_data for strings; field order is by number, so a
 * plain tensor serializes byte-for-byte as onnx does.
 */
#include "onnx/onnx.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum { WIRE_VARINT = 0, WIRE_LEN = 2 };

// ----------------------------------------------------------------------------
// Buffer and wire primitives

static onyx_status reserve(onyx_buf *b, size_t extra) {
    if (extra > SIZE_MAX - b->len) return ONYX_ERR_OUT_OF_MEMORY;
    size_t need = b->len + extra;
    if (need <= b->cap) return ONYX_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) return ONYX_ERR_OUT_OF_MEMORY;
    b->data = p;
    b->cap = cap;
    return ONYX_OK;
}

static int varint_size(uint64_t v) {
    int n = 1;
    while (v >= 0x80) v >>= 7, n++;
    return n;
}

static void write_varint(uint8_t *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p = (uint8_t)v;
}

static onyx_status put_varint(onyx_buf *b, uint64_t v) {
    onyx_status st = reserve(b, 10);
    if (st) return st;
    write_varint(b->data + b->len, v);
    b->len += (size_t)varint_size(v);
    return ONYX_OK;
}

static onyx_status put_tag(onyx_buf *b, uint32_t num, int wire) {
    return put_varint(b, (uint64_t)num << 3 | (uint64_t)wire);
}

static onyx_status put_varint_field(onyx_buf *b, uint32_t num, uint64_t v) {
    onyx_status st = put_tag(b, num, WIRE_VARINT);
    return st ? st : put_varint(b, v);
}

static onyx_status put_bytes_field(onyx_buf *b, uint32_t num, const void *p, size_t n) {
    onyx_status st;
    if ((st = put_tag(b, num, WIRE_LEN)) || (st = put_varint(b, n)) || (st = reserve(b, n)))
        return st;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return ONYX_OK;
}

/* A nested message: msg_begin writes the tag and returns where the body
 * starts; msg_end inserts the body's length in front of it. */
static onyx_status msg_begin(onyx_buf *b, uint32_t num, size_t *mark) {
    onyx_status st = put_tag(b, num, WIRE_LEN);
    *mark = b->len;
    return st;
}

static onyx_status msg_end(onyx_buf *b, size_t mark) {
    size_t body = b->len - mark;
    int k = varint_size(body);
    onyx_status st = reserve(b, (size_t)k);
    if (st) return st;
    memmove(b->data + mark + k, b->data + mark, body);
    write_varint(b->data + mark, body);
    b->len += (size_t)k;
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// TensorProto

static bool is_4bit(onyx_dtype dt) {
    return dt == ONYX_DTYPE_UINT4 || dt == ONYX_DTYPE_INT4 || dt == ONYX_DTYPE_FLOAT4E2M1;
}

/* Writes the fields of a TensorProto (no framing). */
static onyx_status tensor_body(onyx_buf *b, const char *name, const onyx_tensor_view *t) {
    if (t->dtype <= ONYX_DTYPE_UNDEFINED || t->dtype >= ONYX_DTYPE_COUNT ||
        !onyx_dtype_size(t->dtype) || t->ndim < 0 || t->ndim > ONYX_MAX_DIMS)
        return ONYX_ERR_INVALID_ARGUMENT;
    int64_t n = onyx_dims_count(t->ndim, t->dims);
    size_t esz = onyx_dtype_size(t->dtype);
    if (n < 0 || (uint64_t)n > SIZE_MAX / esz || (n && !t->data)) return ONYX_ERR_INVALID_ARGUMENT;
    size_t un = (size_t)n;
    onyx_status st;
    for (int i = 0; i < t->ndim; i++)
        if ((st = put_varint_field(b, 1, (uint64_t)t->dims[i]))) return st;
    if ((st = put_varint_field(b, 2, (uint64_t)t->dtype))) return st;
    if (t->dtype == ONYX_DTYPE_STRING) {
        char *const *s = t->data;
        for (size_t i = 0; i < un; i++) {
            const char *v = s[i] ? s[i] : "";
            if ((st = put_bytes_field(b, 6, v, strlen(v)))) return st;
        }
    }
    if (name && name[0] && (st = put_bytes_field(b, 8, name, strlen(name)))) return st;
    if (t->dtype == ONYX_DTYPE_STRING) return ONYX_OK;

    const uint8_t *src = t->data;
    size_t raw = is_4bit(t->dtype) ? (un + 1) / 2 : un * esz;
    if ((st = put_tag(b, 9, WIRE_LEN)) || (st = put_varint(b, raw)) || (st = reserve(b, raw)))
        return st;
    uint8_t *dst = b->data + b->len;
    if (is_4bit(t->dtype)) {
        for (size_t i = 0; i < raw; i++) {
            uint8_t lo = src[2 * i] & 0x0f;
            uint8_t hi = 2 * i + 1 < un ? (uint8_t)(src[2 * i + 1] & 0x0f) : 0;
            dst[i] = (uint8_t)(lo | hi << 4);
        }
    } else if (t->dtype == ONYX_DTYPE_BOOL) {
        for (size_t i = 0; i < un; i++) dst[i] = src[i] != 0;
    } else if (raw) {
        memcpy(dst, src, raw);
    }
    b->len += raw;
    return ONYX_OK;
}

static void view_of(const onyx_tensor *t, onyx_tensor_view *v) {
    memset(v, 0, sizeof *v);
    v->dtype = t->dtype;
    v->ndim = t->ndim;
    for (int i = 0; i < t->ndim && i < ONYX_MAX_DIMS; i++) v->dims[i] = t->dims[i];
    v->data = t->data;
}

static onyx_status tensor_msg(onyx_buf *b, uint32_t num, const onyx_tensor_view *t) {
    size_t mark;
    onyx_status st = msg_begin(b, num, &mark);
    if (!st) st = tensor_body(b, NULL, t);
    return st ? st : msg_end(b, mark);
}

// ----------------------------------------------------------------------------
// SequenceProto, MapProto, OptionalProto

enum { ELEM_TENSOR = 1, ELEM_SEQUENCE = 3, ELEM_MAP = 4, ELEM_OPTIONAL = 5 };

static onyx_status value_body(onyx_buf *b, const char *name, const onyx_value *v, bool as_optional,
                              int depth);

/* The SequenceProto/OptionalProto element kind a value is written as. */
static int elem_kind(const onyx_value *v) {
    if (v->is_optional || v->kind == ONYX_KIND_NONE) return ELEM_OPTIONAL;
    if (v->kind == ONYX_KIND_SEQUENCE) return ELEM_SEQUENCE;
    if (v->kind == ONYX_KIND_MAP) return ELEM_MAP;
    return ELEM_TENSOR;
}

/* SequenceProto fields for each element kind: tensor_values = 3, ... */
static uint32_t seq_field(int kind) {
    return kind == ELEM_TENSOR ? 3u : kind == ELEM_SEQUENCE ? 5u : kind == ELEM_MAP ? 6u : 7u;
}

static onyx_status sequence_body(onyx_buf *b, const char *name, const onyx_value *v, int depth) {
    onyx_status st;
    if (v->n_items < 0 || (v->n_items && !v->items)) return ONYX_ERR_INVALID_ARGUMENT;
    int kind = v->n_items ? elem_kind(&v->items[0]) : ELEM_TENSOR;
    if (name && name[0] && (st = put_bytes_field(b, 1, name, strlen(name)))) return st;
    if ((st = put_varint_field(b, 2, (uint64_t)kind))) return st;
    for (int64_t i = 0; i < v->n_items; i++) {
        const onyx_value *it = &v->items[i];
        if (elem_kind(it) != kind) return ONYX_ERR_INVALID_ARGUMENT;
        size_t mark;
        if ((st = msg_begin(b, seq_field(kind), &mark))) return st;
        if ((st = value_body(b, NULL, it, kind == ELEM_OPTIONAL, depth + 1))) return st;
        if ((st = msg_end(b, mark))) return st;
    }
    return ONYX_OK;
}

static bool is_int_key(onyx_dtype t) {
    return t == ONYX_DTYPE_INT8 || t == ONYX_DTYPE_INT16 || t == ONYX_DTYPE_INT32 ||
           t == ONYX_DTYPE_INT64 || t == ONYX_DTYPE_UINT8 || t == ONYX_DTYPE_UINT16 ||
           t == ONYX_DTYPE_UINT32 || t == ONYX_DTYPE_UINT64;
}

/* Key i of an integer keys tensor, as the int64 MapProto.keys holds it. */
static uint64_t key_at(const onyx_tensor *t, int64_t i) {
    const void *d = t->data;
    switch (t->dtype) {
    case ONYX_DTYPE_INT8: return (uint64_t)(int64_t)((const int8_t *)d)[i];
    case ONYX_DTYPE_INT16: return (uint64_t)(int64_t)((const int16_t *)d)[i];
    case ONYX_DTYPE_INT32: return (uint64_t)(int64_t)((const int32_t *)d)[i];
    case ONYX_DTYPE_UINT8: return ((const uint8_t *)d)[i];
    case ONYX_DTYPE_UINT16: return ((const uint16_t *)d)[i];
    case ONYX_DTYPE_UINT32: return ((const uint32_t *)d)[i];
    default: return ((const uint64_t *)d)[i]; /* INT64, UINT64 */
    }
}

static onyx_status map_body(onyx_buf *b, const char *name, const onyx_value *v, int depth) {
    const onyx_tensor *keys = &v->tensor;
    const onyx_value *vals = v->map_values;
    int64_t n = onyx_dims_count(keys->ndim, keys->dims);
    bool int_keys = keys->dtype != ONYX_DTYPE_STRING;
    if (keys->ndim != 1 || n < 0 || (n && !keys->data) || !vals ||
        (int_keys && !is_int_key(keys->dtype)))
        return ONYX_ERR_INVALID_ARGUMENT;
    onyx_status st;
    if (name && name[0] && (st = put_bytes_field(b, 1, name, strlen(name)))) return st;
    if ((st = put_varint_field(b, 2, (uint64_t)keys->dtype))) return st;
    for (int64_t i = 0; i < n; i++) {
        if (keys->dtype == ONYX_DTYPE_STRING) {
            const char *s = ((char *const *)keys->data)[i];
            if (!s) s = "";
            if ((st = put_bytes_field(b, 4, s, strlen(s)))) return st;
        } else if ((st = put_varint_field(b, 3, key_at(keys, i)))) {
            return st;
        }
    }
    size_t mark;
    if ((st = msg_begin(b, 5, &mark))) return st;
    if (vals->kind == ONYX_KIND_TENSOR && !vals->is_optional) {
        /* A 1-D tensor of values: one scalar TensorProto per entry. */
        const onyx_tensor *t = &vals->tensor;
        size_t esz = onyx_dtype_size(t->dtype);
        if (t->ndim != 1 || t->dims[0] != n || !esz || (n && !t->data))
            return ONYX_ERR_INVALID_ARGUMENT;
        if ((st = put_varint_field(b, 2, ELEM_TENSOR))) return st;
        for (int64_t i = 0; i < n; i++) {
            onyx_tensor_view e = {t->dtype, 0, {0}, (char *)t->data + (size_t)i * esz};
            if ((st = tensor_msg(b, 3, &e))) return st;
        }
    } else if (vals->kind == ONYX_KIND_SEQUENCE && !vals->is_optional && vals->n_items == n) {
        if ((st = sequence_body(b, NULL, vals, depth + 1))) return st;
    } else {
        return ONYX_ERR_INVALID_ARGUMENT;
    }
    return msg_end(b, mark);
}

static onyx_status optional_body(onyx_buf *b, const char *name, const onyx_value *v, int depth) {
    onyx_status st;
    if (name && name[0] && (st = put_bytes_field(b, 1, name, strlen(name)))) return st;
    if (v->kind == ONYX_KIND_NONE) return ONYX_OK; /* elem_type UNDEFINED: empty */
    int kind = v->kind == ONYX_KIND_TENSOR ? ELEM_TENSOR
               : v->kind == ONYX_KIND_SEQUENCE ? ELEM_SEQUENCE
                                               : ELEM_MAP;
    /* OptionalProto: tensor_value = 3, sequence_value = 5, map_value = 6. */
    uint32_t field = kind == ELEM_TENSOR ? 3u : kind == ELEM_SEQUENCE ? 5u : 6u;
    size_t mark;
    if ((st = put_varint_field(b, 2, (uint64_t)kind))) return st;
    if ((st = msg_begin(b, field, &mark))) return st;
    if ((st = value_body(b, NULL, v, false, depth + 1))) return st;
    return msg_end(b, mark);
}

/* Writes the body of the message that represents `v`: OptionalProto when
 * as_optional, else TensorProto, SequenceProto or MapProto by kind. */
static onyx_status value_body(onyx_buf *b, const char *name, const onyx_value *v, bool as_optional,
                              int depth) {
    if (depth > ONYX_PB_MAX_DEPTH || (unsigned)v->kind >= ONYX_KIND_COUNT)
        return ONYX_ERR_INVALID_ARGUMENT;
    if (as_optional) return optional_body(b, name, v, depth);
    switch (v->kind) {
    case ONYX_KIND_TENSOR: {
        onyx_tensor_view tv;
        view_of(&v->tensor, &tv);
        return tensor_body(b, name, &tv);
    }
    case ONYX_KIND_SEQUENCE: return sequence_body(b, name, v, depth);
    case ONYX_KIND_MAP: return map_body(b, name, v, depth);
    default: return ONYX_ERR_INVALID_ARGUMENT; /* NONE is only written as an optional */
    }
}

// ----------------------------------------------------------------------------
// Entry points: append one top-level message to `out`. On failure out->len
// is restored (out->data stays allocated for the caller to free).

onyx_status onyx_pb_encode_tensor(onyx_buf *out, const char *name, const onyx_tensor_view *t) {
    if (!out || !t) return ONYX_ERR_INVALID_ARGUMENT;
    size_t len0 = out->len;
    onyx_status st = tensor_body(out, name, t);
    if (st) out->len = len0;
    return st;
}

onyx_status onyx_pb_encode_value(onyx_buf *out, const char *name, const onyx_value *v) {
    if (!out || !v) return ONYX_ERR_INVALID_ARGUMENT;
    size_t len0 = out->len;
    bool as_optional = v->is_optional || v->kind == ONYX_KIND_NONE;
    onyx_status st = value_body(out, name, v, as_optional, 1);
    if (st) out->len = len0;
    return st;
}
