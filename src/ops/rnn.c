/* rnn.c - the rnn operator family (not yet populated). */
#include "core/op.h"

const onyx_op_schema onyx_ops_rnn[] = {
    {0},
};
