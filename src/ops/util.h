/* util.h - helpers shared by the operator families in src/ops/: axes,
 * shapes and enum-valued strings read from attributes or inputs, STRING
 * ownership after element moves, the strided copy behind the layout ops, and
 * the value outputs of the control-flow, sequence and optional ops.
 * Does not own any operator, nor tensor/value memory rules (core/tensor.c). */
#ifndef ONYX_OPS_UTIL_H
#define ONYX_OPS_UTIL_H

#include "core/op.h"

#include <stdbool.h>

// ----------------------------------------------------------------------------
// Shapes and axes

/* Product of d[from..to); 1 when the range is empty. The dims come from a
 * tensor that exists, so the product cannot overflow. */
int64_t onyx_op_prod(const int64_t *d, int from, int to);

/* Normalizes axis `a` against `rank` (valid: [-rank, rank)) into *out;
 * false when out of range. */
bool onyx_op_norm_axis(int64_t a, int rank, int *out);

/* Reads an axes list, from the 1-D input `in` when given, else attr[0..n_attr),
 * into axes[0..*n) normalized against `rank`. Fails (through x) on too many
 * axes, one out of range or a repeated one. axes has ONYX_MAX_DIMS entries. */
onyx_status onyx_op_read_axes(onyx_exec *x, const int64_t *attr, int64_t n_attr,
                              const onyx_tensor *in, int rank, int *axes, int *n);

/* Reads the shape input `sh` (at most ONYX_MAX_DIMS entries, none negative;
 * 1-D, or also 0-D when scalar_ok) into dims[0..*n). Fails through x. */
onyx_status onyx_op_read_shape(onyx_exec *x, const onyx_tensor *sh, bool scalar_ok, int64_t *dims,
                               int *n);

/* The index of s in names[0..n), or -1 (for string attributes naming one
 * of an enum's values, listed in the enum's order). */
int onyx_op_lookup(const char *s, const char *const *names, int n);

/* The "axis" attribute of an op that has no other, parsed once by init into
 * node->state (use as the schema row's init). */
typedef struct onyx_op_axis {
    int64_t axis;
    bool has_axis; /* given by the model, not the default */
} onyx_op_axis;
onyx_status onyx_op_axis_init0(onyx_node *n, onyx_error *err); /* default 0 */
onyx_status onyx_op_axis_init1(onyx_node *n, onyx_error *err); /* default 1 */

// ----------------------------------------------------------------------------
// Element moves

/* After pointer copies into a STRING tensor, replaces every borrowed pointer
 * with an owned copy (other dtypes: nothing to do). On failure the
 * not-yet-copied tail is set to NULL, so releasing the tensor frees only what
 * it owns, and the failure is recorded through x. */
onyx_status onyx_op_own_strings(onyx_exec *x, onyx_tensor *t);

/* Copies n elements of type dt from src to dst; strings are duplicated (NULL
 * stays NULL), and dst strings must start NULL so that a failure leaves only
 * owned copies. False when out of memory. */
bool onyx_op_copy_elems(void *dst, const void *src, int64_t n, onyx_dtype dt);

/* Copies all of src's elements into dst (same dtype and count; dst strings
 * start NULL, as onyx_exec_output leaves them). Fails through x. */
onyx_status onyx_op_copy_data(onyx_exec *x, onyx_tensor *dst, const onyx_tensor *src);

/* Output 0 as input 0's elements unchanged (Reshape, Flatten, Squeeze,
 * Unsqueeze, Identity): asks the memory plan to have the input produced
 * where the output goes (onyx_exec_place_input), so that on planned runs
 * nothing moves; copies when it is elsewhere. */
onyx_status onyx_op_copy_through(onyx_exec *x, onyx_tensor *out, const onyx_tensor *in);

/* The most axes onyx_op_strided_copy takes (Tile views each axis as two). */
#define ONYX_OP_STRIDED_MAX_DIMS (2 * ONYX_MAX_DIMS)

/* Fills contiguous dst, laid out as dims[0..ndim), from src through per-axis
 * input element strides (negative or zero allowed): dst[i...] =
 * src[sum_k i_k * strides[k]], elements of `es` bytes (STRING pointers are
 * copied as they are: follow with onyx_op_own_strings). Size-1 axes are
 * dropped and axes contiguous in the input merged; transposes of the last two
 * axes go through cache tiles. Split over the session's threads. */
void onyx_op_strided_copy(onyx_exec *x, void *dst, const void *src, size_t es, int ndim,
                          const int64_t *dims, const int64_t *strides);

// ----------------------------------------------------------------------------
// Values (sequence, optional and control-flow outputs)

/* Moves the heap-owned value v into output i, or drops it when the model
 * omitted that output; v is left NONE either way. */
onyx_status onyx_op_put_value(onyx_exec *x, int i, onyx_value *v);

/* A zeroed array of n values (at least one, so n == 0 is not NULL), freed
 * with onyx_op_values_free; NULL when out of memory. */
onyx_value *onyx_op_values_new(int n);
/* Clears values[0..n) and frees the array (NULL allowed). */
void onyx_op_values_free(onyx_value *values, int n);

#endif
