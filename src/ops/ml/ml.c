/* ml.c - the ai.onnx.ml operator family (not yet populated). */
#include "core/op.h"

const onyx_op_schema onyx_ops_ml[] = {
    {0},
};
