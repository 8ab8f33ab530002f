/* exec.h - sessions and the executor: the mutable side of running a model.
 *
 * Owns: value frames, walking nodes in order, releasing values after their
 * last use, output allocation from the memory plan, scratch memory, subgraph
 * frames, cancellation. Does not own: the plan's layout algorithm (plan.c).
 */
#ifndef ONYX_EXEC_H
#define ONYX_EXEC_H

#include "core/graph.h"
#include "core/plan.h"

#include <stdatomic.h>

struct onyx_session {
    const onyx_model *model;
    onyx_pool *pool;
    atomic_int abort;
    size_t memory_limit;
    size_t physical_memory;   /* no single tensor may be larger (0: unknown) */
    /* the top-level frame's storage: own[s] holds values computed in this
     * run; cur[s] points at the value slot s currently has (own, a caller
     * input or a model constant) */
    onyx_value *own;          /* (n_slots) */
    const onyx_value **cur;   /* (n_slots) */
    onyx_plan plan;
    /* scratch: one block reused node after node */
    unsigned char *scratch;
    size_t scratch_cap, scratch_used, scratch_want;
    onyx_value *views;        /* (n_outputs) for onyx_session_run_tensors */
    onyx_profile_fn profile;  /* per-node timing callback, or NULL */
    void *profile_user;
    /* sub-batch runs (onyx_options.sub_batch): per graph input, the view of
     * the current slice; per graph output, the full output's storage */
    int sub_batch;
    onyx_value *sb_in;        /* (n_inputs) */
    void **sb_out;            /* (n_outputs) */
    size_t *sb_cap;           /* (n_outputs) bytes of sb_out[j] */
    /* lanes: single-threaded child sessions that run slices of a split
     * batch side by side (exec.c), created on first use; a lane's parent
     * is the session it works for (its abort stops the lane too) */
    onyx_session **lanes;
    int n_lanes;
    const onyx_session *parent;
};

/* Frees the lanes of s (onyx_session_free). */
void onyx_exec_free_lanes(onyx_session *s);

/* Runs the top-level graph with the inputs bound in s->cur. */
onyx_status onyx_exec_run_session(onyx_session *s, onyx_error *err);

/* Runs node n of graph g once, at load and outside any session, for
 * constant folding (passes.c): every input n reads must be a constant of g
 * (slot->constant), n must have been initialized, and it must not run
 * subgraphs. One thread; no output may be larger than max_bytes (the node
 * then fails with ONYX_ERR_OUT_OF_MEMORY). On success out[k] (n->n_out
 * values, kind NONE for omitted outputs) receive heap-owned values that the
 * caller clears; on failure they are left cleared and err says why. */
onyx_status onyx_exec_run_node(const onyx_graph *g, const onyx_node *n, size_t max_bytes,
                               onyx_value *out, onyx_error *err);

#endif
