/* convert.c - decoded TensorProto, SparseTensorProto, SequenceProto, MapProto
 * and OptionalProto to runtime tensors and values.
 *
 * Owns: the storage rules of onnx.proto per data type (which typed field holds
 * which type, raw_data layout, 4-bit packing), external data references and
 * their path checks, and zero-copy placement of aligned raw bytes. Does not
 * own: decoding (decode.c) nor file mapping (the caller's `resolve`), only
 * giving back the mapped pages of bytes it copied (onyx_pages_drop).
 */
#include "onnx/onnx.h"

#include "base/error.h"
#include "base/file.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* raw_data is little-endian; the zero-copy path reads it in place. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "onyx reads little-endian tensor data in place: big-endian hosts are not supported"
#endif

// ----------------------------------------------------------------------------
// Helpers

static const char *tname(const onyx_pb_tensor *pb) {
    return pb->name && pb->name[0] ? pb->name : "(unnamed)";
}

static const char *dims_str(char *buf, size_t cap, int ndim, const int64_t *dims) {
    size_t n = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, i ? ", %lld" : "%lld", (long long)dims[i]);
    if (n < cap) snprintf(buf + n, cap - n, ")");
    return buf;
}

static bool is_4bit(int32_t dt) {
    return dt == ONYX_DTYPE_UINT4 || dt == ONYX_DTYPE_INT4 || dt == ONYX_DTYPE_FLOAT4E2M1;
}

/* Element j of 4-bit data packed two per byte, low nibble first, stored one
 * per byte: INT4 sign-extended to int8, UINT4 and FLOAT4E2M1 as 0..15. */
static uint8_t nibble(int32_t dt, uint8_t byte, size_t j) {
    uint8_t v = (j & 1) ? (uint8_t)(byte >> 4) : (uint8_t)(byte & 0x0f);
    if (dt == ONYX_DTYPE_INT4 && (v & 0x08)) v |= 0xf0;
    return v;
}

/* Validates dims and computes the element count and byte size of the
 * runtime tensor. */
static onyx_status check_shape(const char *what, const char *name, int32_t dt, int ndim,
                               const int64_t *dims, int64_t *count, size_t *nbytes,
                               onyx_error *err) {
    if (dt == ONYX_DTYPE_UNDEFINED)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "%s '%s' has no data_type", what, name);
    if (dt < 0 || dt >= ONYX_DTYPE_COUNT || !onyx_dtype_size((onyx_dtype)dt))
        return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "%s '%s' has unsupported data type %d",
                           what, name, (int)dt);
    if (ndim < 0 || ndim > ONYX_MAX_DIMS)
        return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "%s '%s' has %d dims; onyx supports up to %d",
                           what, name, ndim, ONYX_MAX_DIMS);
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "%s '%s' has negative dim %lld", what,
                               name, (long long)dims[i]);
        if (dims[i] && n > INT64_MAX / dims[i])
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "%s '%s': element count overflows",
                               what, name);
        n *= dims[i];
    }
    size_t esz = onyx_dtype_size((onyx_dtype)dt);
    if ((uint64_t)n > SIZE_MAX / esz)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "%s '%s': %lld elements overflow memory",
                           what, name, (long long)n);
    *count = n;
    *nbytes = (size_t)n * esz;
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// External data

/* A location must be relative and must not climb out of the model's
 * directory: no leading '/', no "..", either separator style. */
static bool safe_location(const char *p) {
    if (!p[0] || p[0] == '/' || p[0] == '\\') return false;
    const char *s = p;
    for (;;) {
        const char *e = s;
        while (*e && *e != '/' && *e != '\\') e++;
        if (e - s == 2 && s[0] == '.' && s[1] == '.') return false;
        if (!*e) return true;
        s = e + 1;
    }
}

/* Parses a non-negative decimal integer string; false on anything else. */
static bool parse_size(const char *s, size_t *out) {
    if (!*s) return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    if (v > SIZE_MAX) return false;
    *out = (size_t)v;
    return true;
}

static onyx_status external_bytes(const onyx_pb_tensor *pb, onyx_pb_external_fn resolve,
                                  void *user, const uint8_t **data, size_t *size,
                                  onyx_error *err) {
    const char *location = NULL, *offset_s = NULL, *length_s = NULL;
    for (int i = 0; i < pb->n_external; i++) {
        const onyx_pb_kv *kv = &pb->external[i];
        if (!strcmp(kv->key, "location")) location = kv->value;
        else if (!strcmp(kv->key, "offset")) offset_s = kv->value;
        else if (!strcmp(kv->key, "length")) length_s = kv->value;
    }
    if (!location)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "tensor '%s': external data without a location", tname(pb));
    if (!safe_location(location))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "tensor '%s': external data location '%s' must be a relative path "
                           "inside the model's directory",
                           tname(pb), location);
    size_t offset = 0, length = 0;
    if (offset_s && !parse_size(offset_s, &offset))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "tensor '%s': bad external data offset '%s'", tname(pb), offset_s);
    if (length_s && !parse_size(length_s, &length))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "tensor '%s': bad external data length '%s'", tname(pb), length_s);
    if (!resolve)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT,
                           "tensor '%s' keeps its data in external file '%s', but no model "
                           "directory is known to find it",
                           tname(pb), location);
    const uint8_t *file = NULL;
    size_t file_size = 0;
    onyx_status st = resolve(user, location, &file, &file_size, err);
    if (st) {
        if (err) onyx_error_prefix(err, "tensor '%s'", tname(pb));
        return st;
    }
    if (offset > file_size)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "tensor '%s': external data offset %zu is beyond the end of '%s' "
                           "(%zu bytes)",
                           tname(pb), offset, location, file_size);
    if (!length_s) length = file_size - offset;
    if (length > file_size - offset)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "tensor '%s': external data [%zu, +%zu) exceeds '%s' (%zu bytes)",
                           tname(pb), offset, length, location, file_size);
    *data = file ? file + offset : NULL;
    *size = length;
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// TensorProto

static onyx_status count_mismatch(const onyx_pb_tensor *pb, const char *field, size_t have,
                                  size_t want, onyx_error *err) {
    char d[160];
    return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                       "tensor '%s' (%s, dims %s) has %zu values in %s, expected %zu", tname(pb),
                       onyx_dtype_name((onyx_dtype)pb->data_type),
                       dims_str(d, sizeof d, pb->ndims, pb->dims), have, field, want);
}

static onyx_status alloc_out(const onyx_pb_tensor *pb, onyx_tensor *out, onyx_error *err) {
    onyx_status st = onyx_tensor_alloc(out, (onyx_dtype)pb->data_type, pb->ndims, pb->dims);
    if (st)
        return onyx_errorf(err, st, "tensor '%s': cannot allocate its data (%s)", tname(pb),
                           onyx_status_name(st));
    return ONYX_OK;
}

static onyx_status strings_to_tensor(const onyx_pb_tensor *pb, int64_t n, onyx_tensor *out,
                                     onyx_error *err) {
    if (pb->has_raw || pb->data_location == 1)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "string tensor '%s' must keep its values in string_data", tname(pb));
    if (pb->n_string != (uint64_t)n)
        return count_mismatch(pb, "string_data", pb->n_string, (size_t)n, err);
    onyx_status st = alloc_out(pb, out, err);
    if (st) return st;
    char **s = out->data;
    for (int64_t i = 0; i < n; i++) {
        const onyx_pb_string *v = &pb->string_data[i];
        s[i] = malloc(v->len + 1);
        if (!s[i]) {
            onyx_tensor_release(out);
            return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "tensor '%s': out of memory",
                               tname(pb));
        }
        if (v->len) memcpy(s[i], v->s, v->len);
        s[i][v->len] = 0;
    }
    return ONYX_OK;
}

/* Places raw little-endian bytes (raw_data or external) into `out`: in place
 * when aligned, unless they are in a file mapping (`mapped`) and small
 * (ONYX_PB_VIEW_MIN_BYTES). When it copies them out of a file mapping, the
 * source pages are given back: a misaligned weight would otherwise be
 * resident twice. */
static onyx_status raw_to_tensor(const onyx_pb_tensor *pb, const uint8_t *src, size_t src_size,
                                 int64_t n, size_t nbytes, bool own, bool mapped,
                                 onyx_tensor *out, onyx_error *err) {
    int32_t dt = pb->data_type;
    size_t want = is_4bit(dt) ? (size_t)(((uint64_t)n + 1) / 2) : nbytes;
    if (src_size != want) {
        char d[160];
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "tensor '%s': raw_data holds %zu bytes, but dims %s of %s need %zu",
                           tname(pb), src_size, dims_str(d, sizeof d, pb->ndims, pb->dims),
                           onyx_dtype_name((onyx_dtype)dt), want);
    }
    if (n == 0) return ONYX_OK;
    bool in_place = !own && !is_4bit(dt);
    if (in_place && dt == ONYX_DTYPE_BOOL) {
        /* Runtime booleans are 0/1: anything else is normalized in a copy. */
        for (size_t i = 0; i < src_size && in_place; i++) in_place = src[i] <= 1;
    }
    size_t esz = onyx_dtype_size((onyx_dtype)dt), align = esz > 8 ? 8 : esz;
    if (mapped && nbytes < ONYX_PB_VIEW_MIN_BYTES) in_place = false;
    if (in_place && ((uintptr_t)src & (align - 1)) == 0) {
        /* Zero copy: the model is immutable, so the tensor never writes here. */
        out->data = (void *)(uintptr_t)src;
        out->heap = NULL;
        return ONYX_OK;
    }
    onyx_status st = alloc_out(pb, out, err);
    if (st) return st;
    uint8_t *dst = out->data;
    /* A large copy's fresh pages in one call rather than a fault each. */
    if (nbytes >= ((size_t)64 << 10)) onyx_pages_populate(dst, nbytes);
    if (is_4bit(dt)) {
        for (size_t j = 0; j < (size_t)n; j++) dst[j] = nibble(dt, src[j / 2], j);
    } else if (dt == ONYX_DTYPE_BOOL) {
        for (size_t j = 0; j < (size_t)n; j++) dst[j] = src[j] != 0;
    } else if (mapped) {
        /* A block at a time, each block's file pages given back once
         * copied: the file and the copy are never both resident (the pages
         * that straddle two blocks go with the whole range below). */
        enum { BLOCK = 1 << 20 };
        for (size_t off = 0; off < nbytes; off += BLOCK) {
            size_t len = nbytes - off < BLOCK ? nbytes - off : BLOCK;
            memcpy(dst + off, src + off, len);
            onyx_pages_drop(src + off, len);
        }
    } else {
        memcpy(dst, src, nbytes);
    }
    if (mapped) onyx_pages_drop(src, src_size);
    return ONYX_OK;
}

/* Converts the typed repeated field that onnx.proto assigns to the type. */
static onyx_status typed_to_tensor(const onyx_pb_tensor *pb, int64_t n, onyx_tensor *out,
                                   onyx_error *err) {
    int32_t dt = pb->data_type;
    size_t un = (size_t)n;
    const char *field;
    size_t have, want = un;
    switch (dt) {
    case ONYX_DTYPE_FLOAT: field = "float_data", have = pb->n_float; break;
    case ONYX_DTYPE_COMPLEX64: field = "float_data", have = pb->n_float, want = 2 * un; break;
    case ONYX_DTYPE_DOUBLE: field = "double_data", have = pb->n_double; break;
    case ONYX_DTYPE_COMPLEX128: field = "double_data", have = pb->n_double, want = 2 * un; break;
    case ONYX_DTYPE_INT64: field = "int64_data", have = pb->n_int64; break;
    case ONYX_DTYPE_UINT32:
    case ONYX_DTYPE_UINT64: field = "uint64_data", have = pb->n_uint64; break;
    default:
        /* Everything else travels in int32_data, 4-bit types two per entry. */
        field = "int32_data", have = pb->n_int32;
        if (is_4bit(dt)) want = (un + 1) / 2;
        break;
    }
    if (have != want) return count_mismatch(pb, field, have, want, err);
    if (n == 0) return ONYX_OK;
    onyx_status st = alloc_out(pb, out, err);
    if (st) return st;
    void *dst = out->data;
    switch (dt) {
    case ONYX_DTYPE_FLOAT:
    case ONYX_DTYPE_COMPLEX64: memcpy(dst, pb->float_data, want * sizeof(float)); break;
    case ONYX_DTYPE_DOUBLE:
    case ONYX_DTYPE_COMPLEX128: memcpy(dst, pb->double_data, want * sizeof(double)); break;
    case ONYX_DTYPE_INT64: memcpy(dst, pb->int64_data, un * sizeof(int64_t)); break;
    case ONYX_DTYPE_UINT64: memcpy(dst, pb->uint64_data, un * sizeof(uint64_t)); break;
    case ONYX_DTYPE_UINT32:
        for (size_t i = 0; i < un; i++) ((uint32_t *)dst)[i] = (uint32_t)pb->uint64_data[i];
        break;
    case ONYX_DTYPE_INT32: memcpy(dst, pb->int32_data, un * sizeof(int32_t)); break;
    case ONYX_DTYPE_INT16:
    case ONYX_DTYPE_UINT16:
    case ONYX_DTYPE_FLOAT16:
    case ONYX_DTYPE_BFLOAT16:
        /* The low 16 bits are the value's bit pattern. */
        for (size_t i = 0; i < un; i++)
            ((uint16_t *)dst)[i] = (uint16_t)(uint32_t)pb->int32_data[i];
        break;
    case ONYX_DTYPE_BOOL:
        for (size_t i = 0; i < un; i++) ((uint8_t *)dst)[i] = pb->int32_data[i] != 0;
        break;
    default:
        if (is_4bit(dt)) {
            for (size_t j = 0; j < un; j++)
                ((uint8_t *)dst)[j] = nibble(dt, (uint8_t)(uint32_t)pb->int32_data[j / 2], j);
        } else if (onyx_dtype_size((onyx_dtype)dt) == 1) {
            /* int8, uint8 and the 8-bit floats: the low byte. */
            for (size_t i = 0; i < un; i++)
                ((uint8_t *)dst)[i] = (uint8_t)(uint32_t)pb->int32_data[i];
        } else {
            onyx_tensor_release(out);
            return onyx_errorf(err, ONYX_ERR_UNSUPPORTED,
                               "tensor '%s': data type %s cannot be read from int32_data",
                               tname(pb), onyx_dtype_name((onyx_dtype)dt));
        }
        break;
    }
    return ONYX_OK;
}

/* The conversion behind onyx_pb_tensor_to_tensor; `own` forces heap memory
 * (for values that must outlive the decoded buffer). */
static onyx_status to_tensor(const onyx_pb_tensor *pb, onyx_pb_external_fn resolve, void *user,
                             bool own, onyx_tensor *out, onyx_error *err) {
    memset(out, 0, sizeof *out);
    int64_t n;
    size_t nbytes;
    onyx_status st = check_shape("tensor", tname(pb), pb->data_type, pb->ndims, pb->dims, &n,
                                 &nbytes, err);
    if (st) return st;
    if (pb->data_type == ONYX_DTYPE_STRING) st = strings_to_tensor(pb, n, out, err);
    else if (pb->data_location == 1) {
        const uint8_t *src = NULL;
        size_t src_size = 0;
        st = external_bytes(pb, resolve, user, &src, &src_size, err);
        if (!st) st = raw_to_tensor(pb, src, src_size, n, nbytes, own, true, out, err);
    } else if (pb->data_location != 0) {
        st = onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "tensor '%s' has unknown data_location %d",
                         tname(pb), pb->data_location);
    } else if (pb->has_raw) {
        st = raw_to_tensor(pb, pb->raw, pb->raw_size, n, nbytes, own, pb->raw_mapped != 0, out,
                           err);
    } else {
        st = typed_to_tensor(pb, n, out, err);
    }
    if (st) {
        onyx_tensor_release(out);
        return st;
    }
    out->dtype = (onyx_dtype)pb->data_type;
    onyx_tensor_set_shape(out, pb->ndims, pb->dims);
    return ONYX_OK;
}

onyx_status onyx_pb_tensor_to_tensor(const onyx_pb_tensor *pb, onyx_pb_external_fn resolve,
                                     void *user, onyx_tensor *out, onyx_error *err) {
    return to_tensor(pb, resolve, user, false, out, err);
}

// ----------------------------------------------------------------------------
// SparseTensorProto

onyx_status onyx_pb_sparse_to_tensor(const onyx_pb_sparse_tensor *pb,
                                     onyx_pb_external_fn resolve, void *user, onyx_tensor *out,
                                     onyx_error *err) {
    const char *name = tname(&pb->values);
    onyx_tensor values = {0}, indices = {0};
    int64_t n, nnz;
    size_t nbytes;
    memset(out, 0, sizeof *out);
    onyx_status st = check_shape("sparse tensor", name, pb->values.data_type, pb->ndims, pb->dims,
                                 &n, &nbytes, err);
    if (st) return st;
    if ((st = to_tensor(&pb->values, resolve, user, false, &values, err))) goto fail;
    if ((st = to_tensor(&pb->indices, resolve, user, false, &indices, err))) goto fail;
    nnz = onyx_tensor_count(&values);
    int rank = pb->ndims;
    bool linear = indices.ndim == 1;
    if (values.ndim != 1 || indices.dtype != ONYX_DTYPE_INT64 || indices.dims[0] != nnz ||
        !(linear || (indices.ndim == 2 && indices.dims[1] == rank))) {
        st = onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                         "sparse tensor '%s': values must be 1-D and indices int64 of shape "
                         "[NNZ] or [NNZ, %d]",
                         name, rank);
        goto fail;
    }
    if ((st = onyx_tensor_alloc(out, values.dtype, pb->ndims, pb->dims))) {
        st = onyx_errorf(err, st, "sparse tensor '%s': cannot allocate it", name);
        goto fail;
    }
    size_t esz = onyx_dtype_size(values.dtype);
    const int64_t *idx = indices.data;
    for (int64_t k = 0; k < nnz; k++) {
        int64_t at = 0;
        if (linear) {
            at = idx[k];
        } else {
            for (int j = 0; j < rank; j++) {
                int64_t c = idx[k * rank + j];
                if (c < 0 || c >= pb->dims[j]) {
                    at = -1;
                    break;
                }
                at = at * pb->dims[j] + c;
            }
        }
        if (at < 0 || at >= n) {
            st = onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                             "sparse tensor '%s': index of value %lld is out of range", name,
                             (long long)k);
            goto fail;
        }
        if (values.dtype == ONYX_DTYPE_STRING) {
            char **d = out->data;
            const char *v = ((char *const *)values.data)[k];
            size_t len = strlen(v);
            free(d[at]); /* a repeated index keeps the last value */
            d[at] = malloc(len + 1);
            if (!d[at]) {
                st = onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "sparse tensor '%s': out of memory",
                                 name);
                goto fail;
            }
            memcpy(d[at], v, len + 1);
        } else {
            memcpy((char *)out->data + (size_t)at * esz,
                   (const char *)values.data + (size_t)k * esz, esz);
        }
    }
    onyx_tensor_release(&values);
    onyx_tensor_release(&indices);
    return ONYX_OK;
fail:
    onyx_tensor_release(out);
    onyx_tensor_release(&indices);
    onyx_tensor_release(&values);
    return st;
}

// ----------------------------------------------------------------------------
// SequenceProto, MapProto, OptionalProto to values

static onyx_status seq_to_value(const onyx_pb_sequence *pb, onyx_value *out, onyx_error *err);
static onyx_status map_to_value(const onyx_pb_map *pb, onyx_value *out, onyx_error *err);
static onyx_status opt_to_value(const onyx_pb_optional *pb, onyx_value *out, onyx_error *err);

static const char *const elem_names[] = {"undefined", "tensor", "sparse tensor", "sequence", "map",
                                         "optional"};
_Static_assert(sizeof elem_names / sizeof elem_names[0] == ONYX_PB_ELEM_COUNT,
               "elem_names must cover onyx_pb_elem_type");

static onyx_status tensor_value(const onyx_pb_tensor *pb, onyx_value *out, onyx_error *err) {
    out->kind = ONYX_KIND_TENSOR;
    return to_tensor(pb, NULL, NULL, true, &out->tensor, err);
}

static onyx_status sparse_value(const onyx_pb_sparse_tensor *pb, onyx_value *out,
                                onyx_error *err) {
    out->kind = ONYX_KIND_TENSOR;
    return onyx_pb_sparse_to_tensor(pb, NULL, NULL, &out->tensor, err);
}

static onyx_status seq_to_value(const onyx_pb_sequence *pb, onyx_value *out, onyx_error *err) {
    memset(out, 0, sizeof *out);
    const char *name = pb->name && pb->name[0] ? pb->name : "(unnamed)";
    const int counts[ONYX_PB_ELEM_COUNT] = {0, pb->n_tensors, pb->n_sparse, pb->n_sequences,
                                            pb->n_maps, pb->n_optionals};
    int kind = pb->elem_type, held = 0;
    for (int k = 1; k < ONYX_PB_ELEM_COUNT; k++) {
        if (!counts[k]) continue;
        if (held)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "sequence '%s' mixes %s and %s items",
                               name, elem_names[held], elem_names[k]);
        held = k;
    }
    if (kind < 0 || kind >= ONYX_PB_ELEM_COUNT)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "sequence '%s' has unknown elem_type %d",
                           name, kind);
    if (kind == ONYX_PB_ELEM_UNDEFINED) kind = held ? held : ONYX_PB_ELEM_TENSOR;
    if (held && held != kind)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "sequence '%s' declares %s items but holds %s items", name,
                           elem_names[kind], elem_names[held]);
    int n = counts[kind];
    out->kind = ONYX_KIND_SEQUENCE;
    if (n) {
        out->items = calloc((size_t)n, sizeof *out->items);
        if (!out->items)
            return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "sequence '%s': out of memory", name);
        out->n_items = n;
    }
    onyx_status st = ONYX_OK;
    for (int i = 0; i < n; i++) {
        onyx_value *it = &out->items[i];
        switch (kind) {
        case ONYX_PB_ELEM_TENSOR: st = tensor_value(&pb->tensors[i], it, err); break;
        case ONYX_PB_ELEM_SPARSE_TENSOR: st = sparse_value(&pb->sparse[i], it, err); break;
        case ONYX_PB_ELEM_SEQUENCE: st = seq_to_value(&pb->sequences[i], it, err); break;
        case ONYX_PB_ELEM_MAP: st = map_to_value(&pb->maps[i], it, err); break;
        default: st = opt_to_value(&pb->optionals[i], it, err); break;
        }
        if (st) {
            if (err) onyx_error_prefix(err, "sequence '%s' item %d", name, i);
            goto fail;
        }
        if (it->kind != ONYX_KIND_TENSOR) continue;
        if (out->elem_type == ONYX_DTYPE_UNDEFINED) {
            out->elem_type = it->tensor.dtype;
        } else if (out->elem_type != it->tensor.dtype) {
            st = onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "sequence '%s' mixes %s and %s tensors",
                             name, onyx_dtype_name(out->elem_type),
                             onyx_dtype_name(it->tensor.dtype));
            goto fail;
        }
    }
    return ONYX_OK;
fail:
    onyx_value_clear(out);
    return st;
}

static bool is_int_key(int32_t t) {
    switch (t) {
    case ONYX_DTYPE_INT8:
    case ONYX_DTYPE_INT16:
    case ONYX_DTYPE_INT32:
    case ONYX_DTYPE_INT64:
    case ONYX_DTYPE_UINT8:
    case ONYX_DTYPE_UINT16:
    case ONYX_DTYPE_UINT32:
    case ONYX_DTYPE_UINT64: return true;
    default: return false;
    }
}

/* Builds the 1-D keys tensor of a map. */
static onyx_status map_keys(const onyx_pb_map *pb, const char *name, onyx_tensor *keys,
                            int64_t *count, onyx_error *err) {
    int32_t kt = pb->key_type;
    if (kt == ONYX_DTYPE_UNDEFINED) kt = pb->n_string_keys ? ONYX_DTYPE_STRING : ONYX_DTYPE_INT64;
    bool strings = kt == ONYX_DTYPE_STRING;
    if (!strings && !is_int_key(kt))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "map '%s': key_type %d is not an integer or string type", name,
                           (int)kt);
    if (strings ? pb->n_keys != 0 : pb->n_string_keys != 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "map '%s': keys do not match key_type %s", name,
                           onyx_dtype_name((onyx_dtype)kt));
    size_t n = strings ? pb->n_string_keys : pb->n_keys;
    if (n > INT64_MAX)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "map '%s': too many keys", name);
    int64_t dim = (int64_t)n;
    onyx_status st = onyx_tensor_alloc(keys, (onyx_dtype)kt, 1, &dim);
    if (st) return onyx_errorf(err, st, "map '%s': cannot allocate its keys", name);
    for (size_t i = 0; i < n; i++) {
        if (strings) {
            const onyx_pb_string *s = &pb->string_keys[i];
            char *c = malloc(s->len + 1);
            if (!c) {
                onyx_tensor_release(keys);
                return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "map '%s': out of memory", name);
            }
            if (s->len) memcpy(c, s->s, s->len);
            c[s->len] = 0;
            ((char **)keys->data)[i] = c;
            continue;
        }
        uint64_t v = (uint64_t)pb->keys[i]; /* narrowed by bit pattern, as numpy does */
        switch (kt) {
        case ONYX_DTYPE_INT8:
        case ONYX_DTYPE_UINT8: ((uint8_t *)keys->data)[i] = (uint8_t)v; break;
        case ONYX_DTYPE_INT16:
        case ONYX_DTYPE_UINT16: ((uint16_t *)keys->data)[i] = (uint16_t)v; break;
        case ONYX_DTYPE_INT32:
        case ONYX_DTYPE_UINT32: ((uint32_t *)keys->data)[i] = (uint32_t)v; break;
        default: ((uint64_t *)keys->data)[i] = v; break;
        }
    }
    *count = dim;
    return ONYX_OK;
}

/* When every value is a scalar tensor of one type, the map's values become
 * one 1-D tensor; returns false (seq untouched) otherwise. */
static onyx_status flatten_scalars(onyx_value *seq, onyx_value *dst, bool *done) {
    *done = false;
    int64_t n = seq->n_items;
    if (!n) return ONYX_OK;
    for (int64_t i = 0; i < n; i++) {
        const onyx_value *it = &seq->items[i];
        if (it->kind != ONYX_KIND_TENSOR || it->tensor.ndim != 0 ||
            it->tensor.dtype != seq->items[0].tensor.dtype)
            return ONYX_OK;
    }
    onyx_dtype dt = seq->items[0].tensor.dtype;
    size_t esz = onyx_dtype_size(dt);
    onyx_status st = onyx_tensor_alloc(&dst->tensor, dt, 1, &n);
    if (st) return st;
    for (int64_t i = 0; i < n; i++) {
        onyx_tensor *t = &seq->items[i].tensor;
        if (dt == ONYX_DTYPE_STRING) {
            /* Move the string: the item gives up its pointer. */
            char **s = t->data;
            ((char **)dst->tensor.data)[i] = s[0];
            s[0] = NULL;
        } else {
            memcpy((char *)dst->tensor.data + (size_t)i * esz, t->data, esz);
        }
    }
    dst->kind = ONYX_KIND_TENSOR;
    *done = true;
    return ONYX_OK;
}

static onyx_status map_to_value(const onyx_pb_map *pb, onyx_value *out, onyx_error *err) {
    memset(out, 0, sizeof *out);
    const char *name = pb->name && pb->name[0] ? pb->name : "(unnamed)";
    onyx_value seq = {0};
    int64_t nkeys = 0;
    bool flat = false;
    out->kind = ONYX_KIND_MAP;
    onyx_status st = map_keys(pb, name, &out->tensor, &nkeys, err);
    if (st) goto fail;
    if ((st = seq_to_value(&pb->values, &seq, err))) {
        if (err) onyx_error_prefix(err, "map '%s'", name);
        goto fail;
    }
    if (seq.n_items != nkeys) {
        st = onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "map '%s' has %lld keys but %lld values",
                         name, (long long)nkeys, (long long)seq.n_items);
        goto fail;
    }
    out->map_values = calloc(1, sizeof *out->map_values);
    if (!out->map_values) {
        st = onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "map '%s': out of memory", name);
        goto fail;
    }
    if ((st = flatten_scalars(&seq, out->map_values, &flat))) {
        st = onyx_errorf(err, st, "map '%s': cannot allocate its values", name);
        goto fail;
    }
    if (flat) {
        onyx_value_clear(&seq);
    } else {
        *out->map_values = seq; /* the map takes the sequence over */
    }
    return ONYX_OK;
fail:
    onyx_value_clear(&seq);
    onyx_value_clear(out);
    return st;
}

static onyx_status opt_to_value(const onyx_pb_optional *pb, onyx_value *out, onyx_error *err) {
    memset(out, 0, sizeof *out);
    const char *name = pb->name && pb->name[0] ? pb->name : "(unnamed)";
    int kind = pb->elem_type;
    const void *present[ONYX_PB_ELEM_COUNT] = {NULL, pb->tensor, pb->sparse, pb->sequence,
                                               pb->map, pb->optional};
    onyx_status st = ONYX_OK;
    if (kind < 0 || kind >= ONYX_PB_ELEM_COUNT)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "optional '%s' has unknown elem_type %d",
                           name, kind);
    if (kind != ONYX_PB_ELEM_UNDEFINED && !present[kind])
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "optional '%s' declares a %s but holds none", name, elem_names[kind]);
    switch (kind) {
    case ONYX_PB_ELEM_UNDEFINED: break; /* an empty optional */
    case ONYX_PB_ELEM_TENSOR: st = tensor_value(pb->tensor, out, err); break;
    case ONYX_PB_ELEM_SPARSE_TENSOR: st = sparse_value(pb->sparse, out, err); break;
    case ONYX_PB_ELEM_SEQUENCE: st = seq_to_value(pb->sequence, out, err); break;
    case ONYX_PB_ELEM_MAP: st = map_to_value(pb->map, out, err); break;
    default: st = opt_to_value(pb->optional, out, err); break;
    }
    if (st) {
        onyx_value_clear(out);
        return st;
    }
    out->is_optional = true;
    return ONYX_OK;
}

onyx_status onyx_pb_sequence_to_value(const onyx_pb_sequence *pb, onyx_value *out,
                                      onyx_error *err) {
    return seq_to_value(pb, out, err);
}

onyx_status onyx_pb_map_to_value(const onyx_pb_map *pb, onyx_value *out, onyx_error *err) {
    return map_to_value(pb, out, err);
}

onyx_status onyx_pb_optional_to_value(const onyx_pb_optional *pb, onyx_value *out,
                                      onyx_error *err) {
    return opt_to_value(pb, out, err);
}
