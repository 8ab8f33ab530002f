/* string.c - the string operator family (not yet populated). */
#include "core/op.h"

const onyx_op_schema onyx_ops_string[] = {
    {0},
};
