/* signal.c - the signal operator family (not yet populated). */
#include "core/op.h"

const onyx_op_schema onyx_ops_signal[] = {
    {0},
};
