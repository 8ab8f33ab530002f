/* attention.c - the attention operator family (not yet populated). */
#include "core/op.h"

const onyx_op_schema onyx_ops_attention[] = {
    {0},
};
