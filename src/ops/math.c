/* math.c - the math operator family (not yet populated). */
#include "core/op.h"

const onyx_op_schema onyx_ops_math[] = {
    {0},
};
