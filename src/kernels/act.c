/* act.c - fused activation epilogues; see act.h. The formulas are the ONNX
 * operators' own (Relu, Clip, LeakyRelu, Sigmoid, HardSigmoid, HardSwish,
 * Tanh; SiLU is x * Sigmoid(x)) so that fusing never changes a result beyond float rounding. */
#include "kernels/act.h"

#include <math.h>

void onyx_act_apply(const onyx_act *act, float *x, int64_t n) {
    const float a = act->a, b = act->b;
    switch (act->kind) {
    case ONYX_ACT_NONE:
    case ONYX_ACT_KIND_COUNT:
        return;
    case ONYX_ACT_RELU:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] < 0.0f ? 0.0f : x[i]; /* NaN passes */
        return;
    case ONYX_ACT_CLIP:
        for (int64_t i = 0; i < n; i++) {
            float v = x[i] < a ? a : x[i];
            x[i] = v > b ? b : v;
        }
        return;
    case ONYX_ACT_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++) x[i] = x[i] >= 0.0f ? x[i] : a * x[i];
        return;
    case ONYX_ACT_SIGMOID:
        for (int64_t i = 0; i < n; i++) x[i] = onyx_sigmoidf(x[i]);
        return;
    case ONYX_ACT_HARD_SIGMOID:
        for (int64_t i = 0; i < n; i++) {
            float v = a * x[i] + b;
            x[i] = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
        }
        return;
    case ONYX_ACT_HARD_SWISH:
        for (int64_t i = 0; i < n; i++) {
            float v = x[i] / 6.0f + 0.5f;
            x[i] *= v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
        }
        return;
    case ONYX_ACT_TANH:
        for (int64_t i = 0; i < n; i++) x[i] = tanhf(x[i]);
        return;
    case ONYX_ACT_SILU:
        for (int64_t i = 0; i < n; i++) x[i] = onyx_siluf(x[i]);
        return;
    }
}
