/* loss.c - the loss operator family (not yet populated). */
#include "core/op.h"

const onyx_op_schema onyx_ops_loss[] = {
    {0},
};
