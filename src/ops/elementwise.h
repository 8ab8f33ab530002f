/* elementwise.h - the broadcasting map shared by the elementwise families
 * (elementwise.c, math.c, logic.c, activation.c): output shape, strided
 * iteration, thread split and small-float conversion around typed row kernels.
 * Does not own any operator; the families own their kernels and schema rows. */
#ifndef ONYX_OPS_ELEMENTWISE_H
#define ONYX_OPS_ELEMENTWISE_H

#include "core/op.h"
#include "kernels/ew.h"

#define ONYX_EW_MAX_IN 3

/* A row kernel computes n output elements. p[0] is the output (stride 1),
 * p[1..n_in] the inputs; s[k] is operand k's element stride along the row:
 * 0 when broadcast along it, 1 when contiguous, anything else in general.
 * Operands of the small float types (float16, bfloat16, float8, float4,
 * e8m0) are presented to the kernel as float32 (see onyx_ew_compute_type):
 * the map converts them in blocks around the call. `ctx` is shared by all
 * threads and must only be read, except by kernels on STRING operands,
 * which run on one thread. */
typedef void (*onyx_ew_row_fn)(void *ctx, char *const *p, const int64_t *s, int64_t n);

/* The element type a row kernel sees for operands of type t: FLOAT for the
 * small float types, t otherwise. */
onyx_dtype onyx_ew_compute_type(onyx_dtype t);

/* The numpy broadcast of the shapes of in[0..n); fails (message through x)
 * naming the shapes when they are incompatible. */
onyx_status onyx_ew_shape(onyx_exec *x, int n, const onyx_tensor *const *in, int *ndim,
                          int64_t *dims);

/* Flags of onyx_ew_map. */
#define ONYX_EW_RAW 1u    /* no float32 conversion: the kernel sees stored bytes */
#define ONYX_EW_SERIAL 2u /* run on the calling thread only */

/* Runs `row` over all of `out`, with in[0..n_in) broadcast to out's shape
 * (the caller has checked that they broadcast). `out` may be one of the
 * inputs when it has the full shape (in-place accumulation). Large maps are
 * split over the session's threads; maps with a STRING operand run inline.
 * p[] always has ONYX_EW_MAX_IN + 1 entries (unused ones NULL). */
onyx_status onyx_ew_map(onyx_exec *x, onyx_ew_row_fn row, void *ctx, unsigned flags,
                        onyx_tensor *out, int n_in, const onyx_tensor *const *in);

/* The float32 fast paths: out = op(in) (onyx_ew_kernels.unary) and out =
 * act(in) (onyx_conv_kernels.act) for in and out float32 with the same
 * element count, contiguous; split over the session's threads. */
void onyx_ew_unary_f32(onyx_exec *x, onyx_ew_unop op, const onyx_tensor *in, onyx_tensor *out);
void onyx_ew_act_f32(onyx_exec *x, const onyx_act *act, const onyx_tensor *in, onyx_tensor *out);

/* Opset < 7 binary ops with broadcast=1 and an explicit axis align B's dims
 * with A's starting at `axis`. From init: the axis to align at, or
 * ONYX_EW_NO_AXIS when numpy (suffix) alignment applies. */
#define ONYX_EW_NO_AXIS INT32_MIN
int onyx_ew_legacy_axis(const onyx_node *n);
/* Fills *view with b's data and its shape padded with trailing 1s so that
 * it starts at `axis` of a; a plain copy of b when axis is ONYX_EW_NO_AXIS. */
onyx_status onyx_ew_align(onyx_exec *x, int axis, const onyx_tensor *a, const onyx_tensor *b,
                          onyx_tensor *view);

// ----------------------------------------------------------------------------
// Building blocks of typed row kernels

/* True when v < 0, written so that unsigned types draw no warning. */
#define ONYX_EW_NEG(v) (!((v) > 0) && (v) != 0)

/* The four stride cases of a binary row; EXPR reads `a` (T) and `b` (TB) and
 * is stored to o[i]. Expects `o`, `p`, `s` and `n` of a row kernel in scope. */
#define ONYX_EW_BIN(T, TB, EXPR)                                                           \
    do {                                                                                   \
        const T *A_ = (const T *)(const void *)p[1];                                       \
        const TB *B_ = (const TB *)(const void *)p[2];                                     \
        int64_t sa_ = s[1], sb_ = s[2];                                                    \
        if (sa_ == 1 && sb_ == 1) {                                                        \
            for (int64_t i = 0; i < n; i++) {                                              \
                T a = A_[i];                                                               \
                TB b = B_[i];                                                              \
                o[i] = (EXPR);                                                             \
            }                                                                              \
        } else if (sa_ == 1 && sb_ == 0) {                                                 \
            TB b = B_[0];                                                                  \
            for (int64_t i = 0; i < n; i++) {                                              \
                T a = A_[i];                                                               \
                o[i] = (EXPR);                                                             \
            }                                                                              \
        } else if (sa_ == 0 && sb_ == 1) {                                                 \
            T a = A_[0];                                                                   \
            for (int64_t i = 0; i < n; i++) {                                              \
                TB b = B_[i];                                                              \
                o[i] = (EXPR);                                                             \
            }                                                                              \
        } else {                                                                           \
            for (int64_t i = 0; i < n; i++) {                                              \
                T a = A_[i * sa_];                                                         \
                TB b = B_[i * sb_];                                                        \
                o[i] = (EXPR);                                                             \
            }                                                                              \
        }                                                                                  \
    } while (0)

/* Integer types: X(ENUM, T, W, S): W is the unsigned type arithmetic wraps
 * in (no signed overflow, no int promotion surprises), S whether T is signed. */
#define ONYX_EW_INT_TYPES(X)                                                               \
    X(INT8, int8_t, uint32_t, 1) X(INT16, int16_t, uint32_t, 1)                            \
    X(INT32, int32_t, uint32_t, 1) X(INT64, int64_t, uint64_t, 1)                          \
    X(UINT8, uint8_t, uint32_t, 0) X(UINT16, uint16_t, uint32_t, 0)                        \
    X(UINT32, uint32_t, uint32_t, 0) X(UINT64, uint64_t, uint64_t, 0)

/* Float types: X(ENUM, T, SFX) with SFX the libm suffix. */
#define ONYX_EW_FLOAT_TYPES(X) X(FLOAT, float, f) X(DOUBLE, double, )

/* The cases of a switch over a compute type, one per type of both lists
 * above: each runs ONYX_EW_CASE(ENUM, T), which the caller defines around
 * the use, then breaks. */
#define ONYX_EW_CASE_INT_(ENUM, T, W, S) \
    case ONYX_DTYPE_##ENUM: ONYX_EW_CASE(ENUM, T); break;
#define ONYX_EW_CASE_FLOAT_(ENUM, T, SFX) \
    case ONYX_DTYPE_##ENUM: ONYX_EW_CASE(ENUM, T); break;
#define ONYX_EW_TYPE_CASES \
    ONYX_EW_INT_TYPES(ONYX_EW_CASE_INT_) ONYX_EW_FLOAT_TYPES(ONYX_EW_CASE_FLOAT_)

#endif
