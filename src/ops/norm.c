/* norm.c - the norm operator family (not yet populated). */
#include "core/op.h"

const onyx_op_schema onyx_ops_norm[] = {
    {0},
};
