/* activation.c - the activation operator family (not yet populated). */
#include "core/op.h"

const onyx_op_schema onyx_ops_activation[] = {
    {0},
};
