/* tensor.c - heap ownership of tensors and values, and broadcasting.
 * Element-type facts and conversions live in dtype.c. */
#include "core/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t onyx_dims_count(int ndim, const int64_t *dims) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0) return -1;
        if (dims[i] && n > INT64_MAX / dims[i]) return -1;
        n *= dims[i];
    }
    return n;
}

const char *onyx_dims_text(char *buf, size_t cap, int ndim, const int64_t *dims) {
    size_t at = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && at < cap; i++)
        at += (size_t)snprintf(buf + at, cap - at, i ? ",%lld" : "%lld", (long long)dims[i]);
    if (at < cap) snprintf(buf + at, cap - at, "]");
    return buf;
}

int64_t onyx_tensor_count(const onyx_tensor *t) { return onyx_dims_count(t->ndim, t->dims); }

size_t onyx_tensor_nbytes(const onyx_tensor *t) {
    return onyx_dtype_bytes(t->dtype, onyx_tensor_count(t));
}

void onyx_tensor_set_shape(onyx_tensor *t, int ndim, const int64_t *dims) {
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->dims[i] = dims[i];
}

onyx_status onyx_tensor_alloc(onyx_tensor *t, onyx_dtype dtype, int ndim, const int64_t *dims) {
    memset(t, 0, sizeof *t);
    if (ndim < 0 || ndim > ONYX_MAX_DIMS) return ONYX_ERR_INVALID_ARGUMENT;
    int64_t n = onyx_dims_count(ndim, dims);
    size_t bytes = onyx_dtype_bytes(dtype, n);
    if (n < 0 || bytes == SIZE_MAX || !onyx_dtype_size(dtype)) return ONYX_ERR_INVALID_ARGUMENT;
    t->dtype = dtype;
    onyx_tensor_set_shape(t, ndim, dims);
    if (bytes) {
        t->heap = calloc(1, bytes);
        if (!t->heap) {
            memset(t, 0, sizeof *t);
            return ONYX_ERR_OUT_OF_MEMORY;
        }
        t->data = t->heap;
    }
    return ONYX_OK;
}

void onyx_tensor_release(onyx_tensor *t) {
    if (t->heap) {
        if (t->dtype == ONYX_DTYPE_STRING) {
            char **s = t->heap;
            int64_t n = onyx_tensor_count(t);
            for (int64_t i = 0; i < n; i++) free(s[i]);
        }
        free(t->heap);
    }
    memset(t, 0, sizeof *t);
}

onyx_status onyx_tensor_copy(onyx_tensor *dst, const onyx_tensor *src) {
    onyx_status st = onyx_tensor_alloc(dst, src->dtype, src->ndim, src->dims);
    if (st) return st;
    int64_t n = onyx_tensor_count(src);
    if (src->dtype == ONYX_DTYPE_STRING) {
        char *const *s = src->data;
        char **d = dst->data;
        for (int64_t i = 0; i < n; i++) {
            const char *v = s[i] ? s[i] : "";
            size_t len = strlen(v);
            d[i] = malloc(len + 1);
            if (!d[i]) {
                onyx_tensor_release(dst);
                return ONYX_ERR_OUT_OF_MEMORY;
            }
            memcpy(d[i], v, len + 1);
        }
    } else if (n) {
        memcpy(dst->data, src->data, onyx_tensor_nbytes(src));
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Broadcasting

onyx_status onyx_broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b, int *nout,
                                 int64_t *out) {
    int n = na > nb ? na : nb;
    if (n > ONYX_MAX_DIMS) return ONYX_ERR_INVALID_ARGUMENT;
    for (int i = 0; i < n; i++) {
        int64_t da = i < n - na ? 1 : a[i - (n - na)];
        int64_t db = i < n - nb ? 1 : b[i - (n - nb)];
        if (da == db || db == 1)
            out[i] = da;
        else if (da == 1)
            out[i] = db;
        else
            return ONYX_ERR_INVALID_ARGUMENT;
    }
    *nout = n;
    return ONYX_OK;
}

void onyx_broadcast_strides(const onyx_tensor *t, int ndim, const int64_t *dims, int64_t *strides) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        int ti = i - (ndim - t->ndim);
        if (ti < 0) {
            strides[i] = 0;
            continue;
        }
        strides[i] = (t->dims[ti] == 1 && dims[i] != 1) ? 0 : s;
        s *= t->dims[ti];
    }
}

// ----------------------------------------------------------------------------
// Values

void onyx_value_clear(onyx_value *v) {
    if (!v) return;
    onyx_tensor_release(&v->tensor);
    for (int64_t i = 0; i < v->n_items; i++) onyx_value_clear(&v->items[i]);
    free(v->items);
    if (v->map_values) {
        onyx_value_clear(v->map_values);
        free(v->map_values);
    }
    memset(v, 0, sizeof *v);
}

onyx_status onyx_value_copy(onyx_value *dst, const onyx_value *src) {
    memset(dst, 0, sizeof *dst);
    dst->kind = src->kind;
    dst->elem_type = src->elem_type;
    dst->is_optional = src->is_optional;
    onyx_status st = ONYX_OK;
    if (src->kind == ONYX_KIND_TENSOR || src->kind == ONYX_KIND_MAP) {
        if ((st = onyx_tensor_copy(&dst->tensor, &src->tensor))) goto fail;
    }
    if (src->n_items) {
        dst->items = calloc((size_t)src->n_items, sizeof *dst->items);
        if (!dst->items) {
            st = ONYX_ERR_OUT_OF_MEMORY;
            goto fail;
        }
        dst->n_items = src->n_items;
        for (int64_t i = 0; i < src->n_items; i++)
            if ((st = onyx_value_copy(&dst->items[i], &src->items[i]))) goto fail;
    }
    if (src->map_values) {
        dst->map_values = calloc(1, sizeof *dst->map_values);
        if (!dst->map_values) {
            st = ONYX_ERR_OUT_OF_MEMORY;
            goto fail;
        }
        if ((st = onyx_value_copy(dst->map_values, src->map_values))) goto fail;
    }
    return ONYX_OK;
fail:
    onyx_value_clear(dst);
    return st;
}

/* Whether every tensor inside v owns its memory (heap != NULL or empty). */
static bool value_owned(const onyx_value *v) {
    if ((v->kind == ONYX_KIND_TENSOR || v->kind == ONYX_KIND_MAP) && v->tensor.data &&
        !v->tensor.heap)
        return false;
    for (int64_t i = 0; i < v->n_items; i++)
        if (!value_owned(&v->items[i])) return false;
    return !v->map_values || value_owned(v->map_values);
}

onyx_status onyx_value_take(onyx_value *dst, onyx_value *src) {
    if (dst == src) return ONYX_OK;
    onyx_value_clear(dst);
    if (value_owned(src)) {
        *dst = *src;
        memset(src, 0, sizeof *src);
        return ONYX_OK;
    }
    onyx_status st = onyx_value_copy(dst, src);
    onyx_value_clear(src);
    return st;
}

void onyx_tensor_to_view(const onyx_tensor *t, onyx_tensor_view *v) {
    memset(v, 0, sizeof *v);
    v->dtype = t->dtype;
    v->ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++) v->dims[i] = t->dims[i];
    v->data = t->data;
}

// ----------------------------------------------------------------------------
// Public value API (onyx.h)

onyx_kind onyx_value_kind(const onyx_value *v) { return v ? v->kind : ONYX_KIND_NONE; }

onyx_status onyx_value_tensor(const onyx_value *v, onyx_tensor_view *out) {
    if (!v || (v->kind != ONYX_KIND_TENSOR && v->kind != ONYX_KIND_MAP))
        return ONYX_ERR_INVALID_ARGUMENT;
    onyx_tensor_to_view(&v->tensor, out);
    return ONYX_OK;
}

int64_t onyx_value_count(const onyx_value *v) {
    if (!v) return 0;
    if (v->kind == ONYX_KIND_SEQUENCE) return v->n_items;
    if (v->kind == ONYX_KIND_MAP) return onyx_tensor_count(&v->tensor);
    return 0;
}

const onyx_value *onyx_value_item(const onyx_value *v, int64_t i) {
    if (!v || v->kind != ONYX_KIND_SEQUENCE || i < 0 || i >= v->n_items) return NULL;
    return &v->items[i];
}

const onyx_value *onyx_value_map_values(const onyx_value *v) {
    return v && v->kind == ONYX_KIND_MAP ? v->map_values : NULL;
}

onyx_dtype onyx_value_elem_type(const onyx_value *v) {
    if (!v) return ONYX_DTYPE_UNDEFINED;
    if (v->kind == ONYX_KIND_SEQUENCE) return v->elem_type;
    return v->tensor.dtype;
}

onyx_status onyx_value_new_tensor(const onyx_tensor_view *t, onyx_value **out) {
    *out = NULL;
    onyx_value *v = calloc(1, sizeof *v);
    if (!v) return ONYX_ERR_OUT_OF_MEMORY;
    onyx_tensor src = {.dtype = t->dtype, .ndim = t->ndim, .data = t->data};
    if (t->ndim < 0 || t->ndim > ONYX_MAX_DIMS) {
        free(v);
        return ONYX_ERR_INVALID_ARGUMENT;
    }
    for (int i = 0; i < t->ndim; i++) src.dims[i] = t->dims[i];
    onyx_status st = onyx_tensor_copy(&v->tensor, &src);
    if (st) {
        free(v);
        return st;
    }
    v->kind = ONYX_KIND_TENSOR;
    *out = v;
    return ONYX_OK;
}

onyx_status onyx_value_new_sequence(onyx_dtype elem_type, onyx_value **items, int64_t n,
                                    onyx_value **out) {
    *out = NULL;
    onyx_value *v = calloc(1, sizeof *v);
    onyx_value *arr = n > 0 ? calloc((size_t)n, sizeof *arr) : NULL;
    if (!v || (n > 0 && !arr)) {
        free(v);
        free(arr);
        for (int64_t i = 0; i < n; i++) onyx_value_free(items[i]);
        return ONYX_ERR_OUT_OF_MEMORY;
    }
    for (int64_t i = 0; i < n; i++) {
        arr[i] = *items[i];
        free(items[i]);
    }
    v->kind = ONYX_KIND_SEQUENCE;
    v->elem_type = elem_type;
    v->items = arr;
    v->n_items = n;
    *out = v;
    return ONYX_OK;
}

onyx_status onyx_value_new_map(onyx_value *keys, onyx_value *values, onyx_value **out) {
    *out = NULL;
    onyx_value *v = calloc(1, sizeof *v);
    if (!v || !keys || keys->kind != ONYX_KIND_TENSOR) {
        free(v);
        onyx_value_free(keys);
        onyx_value_free(values);
        return v ? ONYX_ERR_INVALID_ARGUMENT : ONYX_ERR_OUT_OF_MEMORY;
    }
    v->kind = ONYX_KIND_MAP;
    v->tensor = keys->tensor;
    free(keys);
    v->map_values = values;
    *out = v;
    return ONYX_OK;
}

onyx_status onyx_value_new_none(onyx_value **out) {
    *out = calloc(1, sizeof **out);
    return *out ? ONYX_OK : ONYX_ERR_OUT_OF_MEMORY;
}

void onyx_value_free(onyx_value *v) {
    if (!v) return;
    onyx_value_clear(v);
    free(v);
}
