/* subbatch.h - batch separability of a graph: whether a batch may run as
 * sub-batches along axis 0 (exec.c) with the same results.
 * Owns: the load-time analysis (subbatch.c). Does not own: running it.
 */
#ifndef ONYX_SUBBATCH_H
#define ONYX_SUBBATCH_H

#include "core/graph.h"

/* True when every graph input is a tensor whose dim 0 is the same symbolic
 * batch and every node is a whitelisted per-sample op (output row i along
 * axis 0 depends only on input row i), so that running rows [a, b) of the
 * inputs gives rows [a, b) of every output. Conservative: anything not
 * known to be per-sample makes the graph non-separable. *has_conv says
 * whether the graph has a Conv/ConvTranspose (a separable one only). */
bool onyx_subbatch_analyze(const onyx_graph *g, bool *has_conv);

#endif
