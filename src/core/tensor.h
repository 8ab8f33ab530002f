/* tensor.h - runtime tensors and values, element-type facts and conversions.
 *
 * Owns: onyx_tensor (dense, row-major, contiguous), onyx_value (tensor,
 * sequence, map or none), heap ownership of their memory, fp16/bf16/fp8
 * conversions, and broadcasting arithmetic shared by all ops.
 * Does not own: where activation memory comes from (plan.c / exec.c).
 *
 * Shape letters, fixed project-wide: N batch, C channels, H height, W width,
 * K output channels (Conv weights are (K, C/group, kH, kW)). For GEMM, M x K
 * times K x N gives M x N: say "GEMM M/N/K" when that meaning is intended.
 *
 * Storage: every type is stored one element per onyx_dtype_size() bytes.
 * BOOL is one byte (0/1); 4-bit types (INT4, UINT4, FLOAT4E2M1) are stored
 * unpacked, one byte per element (the .pb codec packs/unpacks); STRING
 * elements are `char *` (NUL-terminated, heap-owned by the tensor).
 */
#ifndef ONYX_TENSOR_H
#define ONYX_TENSOR_H

#include "onyx.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------- */
/* Tensor                                                                  */

typedef struct onyx_tensor {
    onyx_dtype dtype;
    int ndim;
    int64_t dims[ONYX_MAX_DIMS];
    void *data;  /* (dims...) row-major; may be NULL when count is 0 */
    void *heap;  /* non-NULL when this tensor owns a malloc'ed block (== data) */
} onyx_tensor;

/* Element count; 1 for a scalar (ndim 0). */
int64_t onyx_tensor_count(const onyx_tensor *t);
size_t onyx_tensor_nbytes(const onyx_tensor *t);
/* Element count of dims[0..ndim), or -1 if it overflows int64 or a dim is < 0. */
int64_t onyx_dims_count(int ndim, const int64_t *dims);
/* Writes dims[0..ndim) as "[2,3,224,224]" ("[]" for none) into buf, cut to
 * cap bytes; returns buf, for error messages. */
const char *onyx_dims_text(char *buf, size_t cap, int ndim, const int64_t *dims);
/* Bytes for `count` elements of `dtype`, or SIZE_MAX on overflow. */
size_t onyx_dtype_bytes(onyx_dtype dtype, int64_t count);

bool onyx_dtype_is_float(onyx_dtype t);    /* float, double, fp16, bf16, fp8 */
bool onyx_dtype_is_signed_int(onyx_dtype t);
bool onyx_dtype_is_unsigned_int(onyx_dtype t); /* bool excluded */
bool onyx_dtype_is_valid(int32_t t);       /* a defined onyx_dtype value */

/* Allocates data on the heap (zeroed) for the given shape; t->heap owns it.
 * Strings get NULL pointers (treated as ""). ONYX_ERR_OUT_OF_MEMORY or
 * ONYX_ERR_INVALID_ARGUMENT (bad dims) on failure, with t left empty. */
onyx_status onyx_tensor_alloc(onyx_tensor *t, onyx_dtype dtype, int ndim, const int64_t *dims);
/* Frees what t owns (strings included) and leaves it empty. */
void onyx_tensor_release(onyx_tensor *t);
/* Deep copy into a new heap tensor (strings duplicated). */
onyx_status onyx_tensor_copy(onyx_tensor *dst, const onyx_tensor *src);
void onyx_tensor_set_shape(onyx_tensor *t, int ndim, const int64_t *dims);

/* Reads element i of an integer or float tensor as int64 / double (for
 * shape-like inputs: Reshape's shape, Slice's starts, ...). */
int64_t onyx_tensor_get_i64(const onyx_tensor *t, int64_t i);
double onyx_tensor_get_f64(const onyx_tensor *t, int64_t i);
/* Converts `n` elements between any two numeric/bool/string types, as ONNX
 * Cast does (saturate applies to float8 targets). */
onyx_status onyx_convert(onyx_dtype to, void *dst, onyx_dtype from, const void *src, int64_t n,
                         bool saturate);

/* ---------------------------------------------------------------------- */
/* Half precision and friends                                              */

float onyx_f16_to_f32(uint16_t h);
uint16_t onyx_f32_to_f16(float f);  /* round to nearest even */
float onyx_bf16_to_f32(uint16_t h);
uint16_t onyx_f32_to_bf16(float f); /* round to nearest even */
float onyx_f8_to_f32(onyx_dtype t, uint8_t v);
uint8_t onyx_f32_to_f8(onyx_dtype t, float f, bool saturate);
float onyx_f4_to_f32(uint8_t v);
uint8_t onyx_f32_to_f4(float f);

/* ---------------------------------------------------------------------- */
/* Broadcasting (numpy rules, as ONNX multidirectional broadcasting)       */

/* Output shape of broadcasting a with b; ONYX_ERR_RUNTIME-style failure is
 * reported as ONYX_ERR_INVALID_ARGUMENT when the shapes are incompatible. */
onyx_status onyx_broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b, int *nout,
                                 int64_t *out);
/* Element strides of `t` viewed at the broadcast shape (ndim, dims):
 * stride 0 along broadcast axes. `strides` has `ndim` entries. */
void onyx_broadcast_strides(const onyx_tensor *t, int ndim, const int64_t *dims,
                            int64_t *strides);

/* ---------------------------------------------------------------------- */
/* Values: the definition of the public opaque onyx_value                   */

struct onyx_value {
    onyx_kind kind;
    onyx_tensor tensor;      /* TENSOR: the tensor; MAP: the keys (1-D) */
    onyx_value *items;       /* SEQUENCE: items (heap array, owned) */
    int64_t n_items;
    onyx_value *map_values;  /* MAP: values, a 1-D TENSOR or a SEQUENCE (owned) */
    onyx_dtype elem_type;    /* SEQUENCE: element type, known when empty too */
    bool is_optional;        /* declared optional (an empty one is kind NONE) */
};

/* Frees everything the value owns and leaves it kind NONE. */
void onyx_value_clear(onyx_value *v);
/* Deep copy into heap-owned memory. */
onyx_status onyx_value_copy(onyx_value *dst, const onyx_value *src);
/* Moves src into dst (dst cleared first); src is left NONE. Memory that src
 * did not own (arena, model constants, caller inputs) is copied to the heap
 * so that dst always owns what it holds. */
onyx_status onyx_value_take(onyx_value *dst, onyx_value *src);
/* A view of an internal tensor as a public one (borrowed). */
void onyx_tensor_to_view(const onyx_tensor *t, onyx_tensor_view *v);

#endif
