/* act.h - activations applied in place to float32 buffers: the epilogue of
 * ops carrying a fused activation (op.h: onyx_act). Generic C, written so
 * the compiler vectorizes it; the one definition of each fused formula. */
#ifndef ONYX_ACT_H
#define ONYX_ACT_H

#include "core/op.h"

/* x[0..n) = act(x[0..n)). Thread-safe; call on each thread's own range. */
void onyx_act_apply(const onyx_act *act, float *x, int64_t n);

#endif
