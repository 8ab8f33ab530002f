/* spatial.c - the spatial operator family (not yet populated). */
#include "core/op.h"

const onyx_op_schema onyx_ops_spatial[] = {
    {0},
};
