/* gather.c - the gather operator family (not yet populated). */
#include "core/op.h"

const onyx_op_schema onyx_ops_gather[] = {
    {0},
};
