/* tensorfile.c - one value per file, by extension: .npy through npy.c, .pb
 * through the ONNX protobuf decoder/encoder (src/onnx/). Owns turning decoded
 * Sequence/Map/Optional protos into runtime values, and external-data lookup
 * next to a .pb file. Does not own the wire formats themselves.
 */
#include "io/tensorfile.h"

#include "base/arena.h"
#include "base/error.h"
#include "base/file.h"
#include "core/tensor.h"
#include "io/npy.h"
#include "onnx/onnx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

onyx_tensorfile_format onyx_tensorfile_format_of(const char *path) {
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash)) return ONYX_TENSORFILE_UNKNOWN;
    if (strcasecmp(dot, ".npy") == 0) return ONYX_TENSORFILE_NPY;
    if (strcasecmp(dot, ".pb") == 0) return ONYX_TENSORFILE_PB;
    return ONYX_TENSORFILE_UNKNOWN;
}

// ----------------------------------------------------------------------------
// External data of .pb tensors: files next to the .pb, mapped once each.

#define MAX_EXTERNAL_FILES 16

typedef struct ext_ctx {
    char dir[4096];                        /* directory of the .pb, with trailing '/' or "" */
    onyx_mapping maps[MAX_EXTERNAL_FILES]; /* mapped data files */
    char *names[MAX_EXTERNAL_FILES];       /* their locations, malloc'ed */
    int n;
} ext_ctx;

static void ext_release(ext_ctx *c) {
    for (int i = 0; i < c->n; i++) {
        onyx_file_unmap(&c->maps[i]);
        free(c->names[i]);
    }
    c->n = 0;
}

/* Callback for onyx_pb_tensor_to_tensor: the bytes of external file
 * `location`, which must be a relative path that stays inside the directory. */
static onyx_status ext_lookup(void *ctx, const char *location, const uint8_t **data, size_t *size,
                              onyx_error *err) {
    ext_ctx *c = ctx;
    if (location[0] == '/' || strcmp(location, "..") == 0 || strncmp(location, "../", 3) == 0 ||
        strstr(location, "/../") ||
        (strlen(location) >= 3 && strcmp(location + strlen(location) - 3, "/..") == 0))
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT,
                           "external data location '%s' leaves the tensor file's directory",
                           location);
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->names[i], location) == 0) {
            *data = c->maps[i].data;
            *size = c->maps[i].size;
            return ONYX_OK;
        }
    if (c->n == MAX_EXTERNAL_FILES)
        return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "too many external data files");
    char path[8192];
    if ((size_t)snprintf(path, sizeof path, "%s%s", c->dir, location) >= sizeof path)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "external data path too long");
    size_t len = strlen(location);
    char *name = malloc(len + 1);
    if (!name) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(name, location, len + 1);
    onyx_status st = onyx_file_map(path, &c->maps[c->n], err);
    if (st) {
        free(name);
        return st;
    }
    c->names[c->n] = name;
    *data = c->maps[c->n].data;
    *size = c->maps[c->n].size;
    c->n++;
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Decoded protos -> runtime values. Recursion depth is bounded by the
// decoder's nesting limit (ONYX_PB_MAX_DEPTH).

typedef struct conv_ctx {
    ext_ctx ext;
} conv_ctx;

static onyx_status from_sequence(conv_ctx *c, const onyx_pb_sequence *s, onyx_dtype hint,
                                 onyx_value *out, onyx_error *err);
static onyx_status from_map(conv_ctx *c, const onyx_pb_map *m, onyx_value *out, onyx_error *err);
static onyx_status from_optional(conv_ctx *c, const onyx_pb_optional *o, onyx_dtype hint,
                                 onyx_value *out, onyx_error *err);

/* A TensorProto as a heap-owned TENSOR value. */
static onyx_status from_tensor(conv_ctx *c, const onyx_pb_tensor *pb, onyx_value *out,
                               onyx_error *err) {
    memset(out, 0, sizeof *out);
    onyx_tensor t;
    onyx_status st = onyx_pb_tensor_to_tensor(pb, ext_lookup, &c->ext, &t, err);
    if (st) return st;
    if (!t.heap && t.data) {
        /* The converter may borrow bytes from the mapped file; own them. */
        onyx_tensor copy;
        st = onyx_tensor_copy(&copy, &t);
        if (st) return onyx_errorf(err, st, "out of memory copying a tensor");
        t = copy;
    }
    out->kind = ONYX_KIND_TENSOR;
    out->tensor = t;
    return ONYX_OK;
}

/* Calls `fn` for item i of a SequenceProto's active list. */
static onyx_status sequence_item(conv_ctx *c, const onyx_pb_sequence *s, int32_t kind, int i,
                                 onyx_value *out, onyx_error *err) {
    switch (kind) {
    case ONYX_PB_ELEM_TENSOR:
        return from_tensor(c, &s->tensors[i], out, err);
    case ONYX_PB_ELEM_SEQUENCE:
        return from_sequence(c, &s->sequences[i], ONYX_DTYPE_UNDEFINED, out, err);
    case ONYX_PB_ELEM_MAP:
        return from_map(c, &s->maps[i], out, err);
    case ONYX_PB_ELEM_OPTIONAL:
        return from_optional(c, &s->optionals[i], ONYX_DTYPE_UNDEFINED, out, err);
    default:
        return onyx_errorf(err, ONYX_ERR_UNSUPPORTED,
                           "sequence of element type %d is not supported", (int)kind);
    }
}

static onyx_status from_sequence(conv_ctx *c, const onyx_pb_sequence *s, onyx_dtype hint,
                                 onyx_value *out, onyx_error *err) {
    memset(out, 0, sizeof *out);
    int32_t kind = s->elem_type;
    int n = 0;
    if (kind == ONYX_PB_ELEM_UNDEFINED) {
        /* Writers that leave elem_type unset: infer it from the filled list. */
        kind = s->n_tensors     ? ONYX_PB_ELEM_TENSOR
               : s->n_sequences ? ONYX_PB_ELEM_SEQUENCE
               : s->n_maps      ? ONYX_PB_ELEM_MAP
               : s->n_optionals ? ONYX_PB_ELEM_OPTIONAL
               : s->n_sparse    ? ONYX_PB_ELEM_SPARSE_TENSOR
                                : ONYX_PB_ELEM_TENSOR;
    }
    switch (kind) {
    case ONYX_PB_ELEM_TENSOR:
        n = s->n_tensors;
        break;
    case ONYX_PB_ELEM_SEQUENCE:
        n = s->n_sequences;
        break;
    case ONYX_PB_ELEM_MAP:
        n = s->n_maps;
        break;
    case ONYX_PB_ELEM_OPTIONAL:
        n = s->n_optionals;
        break;
    case ONYX_PB_ELEM_SPARSE_TENSOR:
        return onyx_errorf(err, ONYX_ERR_UNSUPPORTED,
                           "sequences of sparse tensors are not supported");
    default:
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "SequenceProto has bad elem_type %d",
                           (int)s->elem_type);
    }
    onyx_value *items = n ? calloc((size_t)n, sizeof *items) : NULL;
    if (n && !items) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    onyx_status st = ONYX_OK;
    for (int i = 0; i < n; i++) {
        if ((st = sequence_item(c, s, kind, i, &items[i], err))) {
            onyx_error_prefix(err, "sequence item %d", i);
            for (int k = 0; k < i; k++)
                onyx_value_clear(&items[k]);
            free(items);
            return st;
        }
    }
    out->kind = ONYX_KIND_SEQUENCE;
    out->items = items;
    out->n_items = n;
    out->elem_type = hint;
    if (n && kind == ONYX_PB_ELEM_TENSOR) out->elem_type = items[0].tensor.dtype;
    return ONYX_OK;
}

/* Map values whose items are all one-element tensors of one type become a
 * 1-D tensor, the runtime's form for map(K, scalar). */
static onyx_status collapse_scalars(onyx_value *seq, onyx_error *err) {
    if (seq->kind != ONYX_KIND_SEQUENCE || seq->n_items == 0) return ONYX_OK;
    onyx_dtype dt =
        seq->items[0].kind == ONYX_KIND_TENSOR ? seq->items[0].tensor.dtype : ONYX_DTYPE_UNDEFINED;
    for (int64_t i = 0; i < seq->n_items; i++) {
        const onyx_value *it = &seq->items[i];
        if (it->kind != ONYX_KIND_TENSOR || it->tensor.dtype != dt ||
            onyx_tensor_count(&it->tensor) != 1)
            return ONYX_OK;
    }
    onyx_tensor t;
    int64_t n = seq->n_items;
    onyx_status st = onyx_tensor_alloc(&t, dt, 1, &n);
    if (st) return onyx_errorf(err, st, "out of memory");
    size_t esz = onyx_dtype_size(dt);
    for (int64_t i = 0; i < n; i++) {
        onyx_tensor *src = &seq->items[i].tensor;
        if (dt == ONYX_DTYPE_STRING) {
            /* Move the string instead of copying it. */
            ((char **)t.data)[i] = ((char **)src->data)[0];
            ((char **)src->data)[0] = NULL;
        } else {
            memcpy((uint8_t *)t.data + (size_t)i * esz, src->data, esz);
        }
    }
    onyx_value_clear(seq);
    seq->kind = ONYX_KIND_TENSOR;
    seq->tensor = t;
    return ONYX_OK;
}

static onyx_status from_map(conv_ctx *c, const onyx_pb_map *m, onyx_value *out, onyx_error *err) {
    memset(out, 0, sizeof *out);
    onyx_dtype kt = (onyx_dtype)m->key_type;
    bool str = kt == ONYX_DTYPE_STRING;
    if (!str && !(onyx_dtype_is_signed_int(kt) || onyx_dtype_is_unsigned_int(kt)))
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "MapProto has bad key_type %d",
                           (int)m->key_type);
    int64_t n = (int64_t)(str ? m->n_string_keys : m->n_keys);
    onyx_value *vals = calloc(1, sizeof *vals);
    if (!vals) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    onyx_status st = onyx_tensor_alloc(&out->tensor, kt, 1, &n);
    if (st) {
        st = onyx_errorf(err, st, "out of memory");
        goto fail;
    }
    if (str) {
        char **keys = out->tensor.data;
        for (int64_t i = 0; i < n; i++) {
            const onyx_pb_string *s = &m->string_keys[i];
            if (memchr(s->s, 0, s->len)) {
                st = onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "map key %lld contains a NUL byte",
                                 (long long)i);
                goto fail;
            }
            if (!(keys[i] = malloc(s->len + 1))) {
                st = onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
                goto fail;
            }
            memcpy(keys[i], s->s, s->len + 1);
        }
    } else if (n &&
               (st = onyx_convert(kt, out->tensor.data, ONYX_DTYPE_INT64, m->keys, n, false))) {
        st = onyx_errorf(err, st, "cannot convert map keys to %s", onyx_dtype_name(kt));
        goto fail;
    }
    if ((st = from_sequence(c, &m->values, ONYX_DTYPE_UNDEFINED, vals, err))) {
        onyx_error_prefix(err, "map values");
        goto fail;
    }
    if (vals->n_items != n) {
        st = onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "MapProto has %lld keys but %lld values",
                         (long long)n, (long long)vals->n_items);
        goto fail;
    }
    if ((st = collapse_scalars(vals, err))) goto fail;
    out->kind = ONYX_KIND_MAP;
    out->map_values = vals;
    return ONYX_OK;
fail:
    onyx_value_clear(vals);
    free(vals);
    onyx_tensor_release(&out->tensor);
    memset(out, 0, sizeof *out);
    return st;
}

static onyx_status from_optional(conv_ctx *c, const onyx_pb_optional *o, onyx_dtype hint,
                                 onyx_value *out, onyx_error *err) {
    memset(out, 0, sizeof *out);
    /* elem_type says what the optional may hold; a missing value field means
     * it is empty (as onnx.numpy_helper.to_optional reads it): kind NONE. */
    onyx_status st = ONYX_OK;
    switch (o->elem_type) {
    case ONYX_PB_ELEM_UNDEFINED:
        break;
    case ONYX_PB_ELEM_TENSOR:
        if (o->tensor) st = from_tensor(c, o->tensor, out, err);
        break;
    case ONYX_PB_ELEM_SEQUENCE:
        if (o->sequence) st = from_sequence(c, o->sequence, hint, out, err);
        break;
    case ONYX_PB_ELEM_MAP:
        if (o->map) st = from_map(c, o->map, out, err);
        break;
    case ONYX_PB_ELEM_OPTIONAL:
        if (o->optional) st = from_optional(c, o->optional, hint, out, err);
        break;
    default:
        return onyx_errorf(err, ONYX_ERR_UNSUPPORTED,
                           "optional of element type %d is not supported", (int)o->elem_type);
    }
    if (!st) out->is_optional = true;
    return st;
}

// ----------------------------------------------------------------------------
// Load

static onyx_status load_pb(const char *path, const onyx_io_info *hint, onyx_value *out,
                           onyx_error *err) {
    onyx_mapping map = {0};
    onyx_arena arena;
    onyx_arena_init(&arena);
    conv_ctx c;
    memset(&c, 0, sizeof c);
    const char *slash = strrchr(path, '/');
    if (slash && (size_t)(slash - path + 1) < sizeof c.ext.dir)
        memcpy(c.ext.dir, path, (size_t)(slash - path + 1));

    onyx_status st = onyx_file_map(path, &map, err);
    if (st) goto done;
    onyx_kind kind = hint ? hint->kind : ONYX_KIND_TENSOR;
    onyx_dtype dtype = hint ? hint->dtype : ONYX_DTYPE_UNDEFINED;
    switch (kind) {
    case ONYX_KIND_SEQUENCE: {
        onyx_pb_sequence *s;
        if (!(st = onyx_pb_decode_sequence(map.data, map.size, &arena, &s, err)))
            st = from_sequence(&c, s, dtype, out, err);
        break;
    }
    case ONYX_KIND_MAP: {
        onyx_pb_map *m;
        if (!(st = onyx_pb_decode_map(map.data, map.size, &arena, &m, err)))
            st = from_map(&c, m, out, err);
        break;
    }
    case ONYX_KIND_NONE: {
        onyx_pb_optional *o;
        if (!(st = onyx_pb_decode_optional(map.data, map.size, &arena, &o, err)))
            st = from_optional(&c, o, dtype, out, err);
        break;
    }
    default: {
        onyx_pb_tensor *t;
        if (!(st = onyx_pb_decode_tensor(map.data, map.size, &arena, &t, err)))
            st = from_tensor(&c, t, out, err);
        if (st) {
            /* The public input info does not say whether a tensor input is
             * declared optional, and an OptionalProto never reads as a valid
             * TensorProto (its name lands in dims, its value in the unused
             * `segment` field, so sizes disagree): try it before failing. */
            onyx_error first = err ? *err : (onyx_error){0};
            onyx_pb_optional *o;
            if (!onyx_pb_decode_optional(map.data, map.size, &arena, &o, NULL) &&
                o->elem_type != ONYX_PB_ELEM_UNDEFINED && !from_optional(&c, o, dtype, out, NULL))
                st = ONYX_OK;
            else if (err)
                *err = first;
        }
        break;
    }
    }
    if (st) onyx_error_prefix(err, "%s", path);
done:
    ext_release(&c.ext);
    onyx_arena_deinit(&arena);
    onyx_file_unmap(&map);
    return st;
}

onyx_status onyx_tensorfile_load(const char *path, const onyx_io_info *hint, onyx_value **out,
                                 onyx_error *err) {
    *out = NULL;
    onyx_value *v = calloc(1, sizeof *v);
    if (!v) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    onyx_status st;
    switch (onyx_tensorfile_format_of(path)) {
    case ONYX_TENSORFILE_NPY:
        st = onyx_npy_load(path, &v->tensor, err);
        if (!st) v->kind = ONYX_KIND_TENSOR;
        break;
    case ONYX_TENSORFILE_PB:
        st = load_pb(path, hint, v, err);
        break;
    default:
        st = onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT,
                         "%s: unknown tensor file type (expected a .npy or .pb file)", path);
        break;
    }
    if (st) {
        onyx_value_free(v);
        return st;
    }
    *out = v;
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Save

onyx_status onyx_tensorfile_save(const char *path, onyx_tensorfile_format fmt, const char *name,
                                 const onyx_value *v, onyx_error *err) {
    if (fmt == ONYX_TENSORFILE_NPY) {
        if (v->kind != ONYX_KIND_TENSOR)
            return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "%s: a %s cannot be stored as .npy",
                               path,
                               v->kind == ONYX_KIND_SEQUENCE ? "sequence"
                               : v->kind == ONYX_KIND_MAP    ? "map"
                                                             : "missing optional value");
        onyx_tensor_view view;
        onyx_tensor_to_view(&v->tensor, &view);
        return onyx_npy_save(path, &view, err);
    }
    if (fmt != ONYX_TENSORFILE_PB)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "%s: unknown tensor file format", path);

    onyx_buf buf = {0};
    onyx_status st;
    if (v->kind == ONYX_KIND_TENSOR && !v->is_optional) {
        onyx_tensor_view view;
        onyx_tensor_to_view(&v->tensor, &view);
        st = onyx_pb_encode_tensor(&buf, name, &view);
    } else {
        st = onyx_pb_encode_value(&buf, name, v);
    }
    if (st) {
        free(buf.data);
        return onyx_errorf(err, st, "%s: cannot encode the value as protobuf", path);
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        int e = errno;
        free(buf.data);
        return onyx_errorf(err, ONYX_ERR_IO, "cannot create %s: %s", path, strerror(e));
    }
    size_t wrote = buf.len ? fwrite(buf.data, 1, buf.len, f) : 0;
    int e = errno;
    int closed = fclose(f);
    free(buf.data);
    if (wrote != buf.len || closed != 0) {
        remove(path);
        return onyx_errorf(err, ONYX_ERR_IO, "cannot write %s: %s", path, strerror(e));
    }
    return ONYX_OK;
}
