/* act.h - activations applied in place to float32 buffers: the epilogue of
 * ops carrying a fused activation (op.h: onyx_act). Generic C, written so
 * the compiler vectorizes it; the one definition of each fused formula. */
#ifndef ONYX_ACT_H
#define ONYX_ACT_H

#include "core/op.h"

#include <math.h>

/* x[0..n) = act(x[0..n)). Thread-safe; call on each thread's own range. */
void onyx_act_apply(const onyx_act *act, float *x, int64_t n);

/* sigmoid(x) = 1 / (1 + e^-x), as e / (1 + e) for x < 0 and 1 / (1 + e)
 * for x >= 0 with e = e^-|x|: no overflow, so results below 2^-126 stay
 * denormal instead of 0 (the AVX2 variant computes the same way). */
static inline float onyx_sigmoidf(float x) {
    float e = expf(-fabsf(x));
    float num = x < 0.0f ? e : 1.0f; /* both computed: a select, not a branch */
    return num / (1.0f + e);
}

/* silu(x) = x sigmoid(x); silu(-inf) = -0, not -inf * 0 (x is clamped at
 * -109, where sigmoid(x) is 0). */
static inline float onyx_siluf(float x) {
    return (x < -109.0f ? -109.0f : x) * onyx_sigmoidf(x); /* NaN passes */
}

#endif
