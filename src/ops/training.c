/* training.c - the training operator family (not yet populated). */
#include "core/op.h"

const onyx_op_schema onyx_ops_training[] = {
    {0},
};
