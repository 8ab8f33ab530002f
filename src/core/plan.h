/* plan.h - activation memory planned from tensor lifetimes.
 *
 * The first run for a given set of input shapes allocates each tensor on the
 * heap and records its size; from those sizes and the graph's lifetimes the
 * planner lays all tensors into one arena, reusing bytes whose tensors are
 * dead. Later runs with the same input shapes place each output at its
 * planned offset (a tensor that outgrows its place, as data-dependent shapes
 * may, falls back to the heap). A node may ask during the recording run for
 * an input to be placed inside its output (onyx_exec_place_input: a
 * Concat's pieces), which saves it the copy once the plan is in use. Owns:
 * the record, the layout, the arena.
 */
#ifndef ONYX_PLAN_H
#define ONYX_PLAN_H

#include "core/graph.h"

typedef struct onyx_plan {
    int n_slots;
    /* the input shapes this plan is for */
    int n_sig;
    int64_t *sig;             /* (n_sig) rank and dims of each input, flattened */
    bool ready;               /* offsets valid for `sig` */
    size_t *size;             /* (n_slots) bytes recorded / planned; 0 = not planned */
    size_t *offset;           /* (n_slots) */
    int *inside;              /* (n_slots) slot to place it in, or -1 */
    size_t *inside_at;        /* (n_slots) byte offset in that slot */
    unsigned char *arena;     /* 64-byte aligned */
    size_t arena_size;
} onyx_plan;

onyx_status onyx_plan_init(onyx_plan *p, int n_slots);
void onyx_plan_deinit(onyx_plan *p);

/* Builds the signature of the current inputs; returns true when it equals
 * the plan's (then the plan may be used), else resets the plan to record
 * for the new signature. */
bool onyx_plan_begin(onyx_plan *p, const onyx_graph *g, const onyx_value *const *cur);
/* Asks that `slot` be placed `at` bytes into slot `into` (recording runs).
 * onyx_plan_finish honours it when `slot` dies at the node that produces
 * `into`, fits inside it, and neither is part of another such request. */
void onyx_plan_place_inside(onyx_plan *p, int slot, int into, size_t at);
/* After a successful recording run: lays out the arena and returns its size.
 * When that exceeds `limit` (non-zero) or memory runs out, the plan stays
 * unused; the caller decides whether that is an error. */
size_t onyx_plan_finish(onyx_plan *p, const onyx_graph *g, size_t limit);

#endif
