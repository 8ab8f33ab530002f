/* resize.c - the resize operator family (not yet populated). */
#include "core/op.h"

const onyx_op_schema onyx_ops_resize[] = {
    {0},
};
