/* codec.h - tensor <-> JSON conversions shared by the KServe v2 and TF
 * Serving protocols: flattening nested JSON arrays into typed elements (with
 * range checks), inferring shapes, writing tensors as flat or nested JSON,
 * base64, and a list of allocations a request owns.
 *
 * Owns: the JSON spelling of values. Does not own: protocol documents.
 */
#ifndef ONYX_SERVER_CODEC_H
#define ONYX_SERVER_CODEC_H

#include "core/tensor.h" /* onyx_dims_count */
#include "onyx.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/* Allocations owned by one request, freed together. */
typedef struct onyx_owned {
    void **p;
    int n, cap;
} onyx_owned;

/* malloc(size) recorded in `o` (size 0 allowed); NULL when out of memory. */
void *onyx_owned_alloc(onyx_owned *o, size_t size);
void onyx_owned_free(onyx_owned *o);

/* Shape of nested JSON arrays: *ndim and dims (checks that the nesting is
 * rectangular). A scalar has ndim 0. `leaf_object` says whether objects are
 * leaves ({"b64": ...}). Returns 0 or -1 with err. */
int onyx_json_shape(json_t *j, int *ndim, int64_t *dims, char *err, size_t cap);

/* Writes the leaves of `j` (nested arrays in row-major order, or a scalar)
 * as `n` elements of `t` into dst (for STRING: char * into memory from `own`).
 * `what` names the value in messages. Fails (-1, err) when the count differs
 * from n, a leaf has the wrong JSON type or is out of the type's range. */
int onyx_json_fill(json_t *j, onyx_dtype t, void *dst, int64_t n, onyx_owned *own, const char *what,
                   char *err, size_t cap);

/* Appends a tensor's elements as JSON: a flat array (nested = false) or
 * arrays nested by the shape. Floats use the shortest text that reads back
 * exactly; NaN/Infinity/-Infinity as Python's json writes them. STRING
 * elements are JSON strings (invalid UTF-8 replaced). Types without a JSON
 * spelling (complex) are written as null. */
void onyx_json_tensor(struct evbuffer *b, const onyx_tensor_view *t, bool nested);
/* Element i of `t` as a JSON value (numbers, strings, booleans). */
void onyx_json_element(struct evbuffer *b, onyx_dtype t, const void *data, int64_t i);

/* Base64 (standard alphabet, padding optional, whitespace ignored). Decodes
 * into a new allocation from `own`; returns the length or -1. */
int64_t onyx_base64_decode(const char *s, size_t n, onyx_owned *own, uint8_t **out);
void onyx_base64_encode(struct evbuffer *b, const uint8_t *p, size_t n);

#endif
