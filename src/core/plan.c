/* plan.c - record-then-place memory planning; see plan.h. */
#include "core/plan.h"

#include "base/arena.h"

#include <stdlib.h>
#include <string.h>

enum { PLAN_ALIGN = 64 };

onyx_status onyx_plan_init(onyx_plan *p, int n_slots) {
    memset(p, 0, sizeof *p);
    p->n_slots = n_slots;
    p->size = calloc((size_t)n_slots + 1, sizeof *p->size);
    p->offset = calloc((size_t)n_slots + 1, sizeof *p->offset);
    p->inside = malloc(((size_t)n_slots + 1) * sizeof *p->inside);
    p->inside_at = calloc((size_t)n_slots + 1, sizeof *p->inside_at);
    if (!p->size || !p->offset || !p->inside || !p->inside_at) {
        onyx_plan_deinit(p);
        return ONYX_ERR_OUT_OF_MEMORY;
    }
    for (int i = 0; i < n_slots; i++) p->inside[i] = -1;
    return ONYX_OK;
}

void onyx_plan_deinit(onyx_plan *p) {
    free(p->sig);
    free(p->size);
    free(p->offset);
    free(p->inside);
    free(p->inside_at);
    free(p->arena);
    memset(p, 0, sizeof *p);
}

bool onyx_plan_begin(onyx_plan *p, const onyx_graph *g, const onyx_value *const *cur) {
    int n = 0;
    for (int i = 0; i < g->n_inputs; i++) {
        const onyx_value *v = cur[g->inputs[i]];
        n += 1 + (v && v->kind == ONYX_KIND_TENSOR ? v->tensor.ndim : 0);
    }
    int64_t stack[64], *sig = n <= 64 ? stack : malloc((size_t)n * sizeof *sig);
    if (!sig) {
        p->ready = false;
        return false;
    }
    int k = 0;
    for (int i = 0; i < g->n_inputs; i++) {
        const onyx_value *v = cur[g->inputs[i]];
        bool t = v && v->kind == ONYX_KIND_TENSOR;
        sig[k++] = t ? v->tensor.ndim : -1 - (v ? (int)v->kind : 0);
        for (int d = 0; t && d < v->tensor.ndim; d++) sig[k++] = v->tensor.dims[d];
    }
    bool same = p->ready && p->n_sig == n && memcmp(p->sig, sig, (size_t)n * sizeof *sig) == 0;
    if (!same) {
        p->ready = false;
        free(p->sig);
        p->sig = malloc((size_t)n * sizeof *sig + 1);
        if (p->sig) memcpy(p->sig, sig, (size_t)n * sizeof *sig);
        p->n_sig = p->sig ? n : 0;
        memset(p->size, 0, (size_t)p->n_slots * sizeof *p->size);
        for (int i = 0; i < p->n_slots; i++) p->inside[i] = -1;
    }
    if (sig != stack) free(sig);
    return same;
}

typedef struct item {
    int slot;
    int first, last; /* node index range in which the tensor is alive */
    size_t size;
} item;

void onyx_plan_place_inside(onyx_plan *p, int slot, int into, size_t at) {
    if (slot < 0 || slot >= p->n_slots || into < 0 || into >= p->n_slots || slot == into) return;
    p->inside[slot] = into;
    p->inside_at[slot] = at;
}

/* Drops the requests of onyx_plan_place_inside that the layout cannot
 * honour: `slot` must be produced by a node, die at the node producing
 * `into` (so nothing reads it once that region is the output's) and fit
 * inside `into`; and no chains: a slot that holds pieces is not placed
 * inside another (both requests of a chain are dropped). `first` (n_slots)
 * receives, for each slot holding pieces, the first node producing one of
 * them, and -1 elsewhere. */
static void check_inside(onyx_plan *p, const onyx_graph *g, int *first) {
    for (int s = 0; s < p->n_slots; s++) first[s] = -1;
    for (int s = 0; s < p->n_slots; s++)
        if (p->inside[s] >= 0) first[p->inside[s]] = 0; /* marks a holder */
    for (int s = 0; s < p->n_slots; s++) {
        int t = p->inside[s];
        if (t < 0) continue;
        bool ok = p->size[s] && p->size[t] && g->slots[s].producer >= 0 &&
                  g->slots[t].producer >= 0 && g->slots[s].last_use == g->slots[t].producer &&
                  p->inside_at[s] + p->size[s] <= p->size[t] && p->inside[t] < 0 &&
                  first[s] < 0;
        if (!ok) p->inside[s] = -2; /* dropped; -1 once every check has read it */
    }
    for (int s = 0; s < p->n_slots; s++) {
        if (p->inside[s] == -2) p->inside[s] = -1;
        first[s] = -1;
    }
    for (int s = 0; s < p->n_slots; s++) {
        int t = p->inside[s];
        if (t >= 0 && (first[t] < 0 || g->slots[s].producer < first[t]))
            first[t] = g->slots[s].producer;
    }
}

static int by_size_desc(const void *a, const void *b) {
    const item *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->first - y->first;
}

size_t onyx_plan_finish(onyx_plan *p, const onyx_graph *g, size_t limit) {
    size_t total = 0;
    item *items = malloc(((size_t)p->n_slots + 1) * sizeof *items);
    int *placed = malloc(((size_t)p->n_slots + 1) * sizeof *placed);
    int *first_piece = malloc(((size_t)p->n_slots + 1) * sizeof *first_piece);
    if (!items || !placed || !first_piece) goto done;
    check_inside(p, g, first_piece);
    int n = 0;
    for (int s = 0; s < p->n_slots; s++) {
        if (!p->size[s] || g->slots[s].producer < 0 || p->inside[s] >= 0) continue;
        int first = g->slots[s].producer, last = g->slots[s].last_use;
        if (last < first) last = first;
        /* A slot holding pieces is live from the first of them on. */
        if (first_piece[s] >= 0 && first_piece[s] < first) first = first_piece[s];
        items[n++] =
            (item){s, first, last, (p->size[s] + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN};
    }
    qsort(items, (size_t)n, sizeof *items, by_size_desc);
    /* Greedy by size: each tensor goes to the lowest offset where it does not
     * overlap, in address and in time, a tensor placed before it. */
    int n_placed = 0;
    for (int i = 0; i < n; i++) {
        size_t off = 0;
        bool moved = true;
        while (moved) {
            moved = false;
            for (int j = 0; j < n_placed; j++) {
                const item *q = &items[placed[j]];
                if (q->last < items[i].first || items[i].last < q->first) continue;
                size_t qo = p->offset[q->slot];
                if (off < qo + q->size && qo < off + items[i].size) {
                    off = qo + q->size;
                    moved = true;
                }
            }
        }
        p->offset[items[i].slot] = off;
        placed[n_placed++] = i;
        if (off + items[i].size > total) total = off + items[i].size;
    }
    for (int s = 0; s < p->n_slots; s++)
        if (p->inside[s] >= 0) p->offset[s] = p->offset[p->inside[s]] + p->inside_at[s];
    if (limit && total > limit) goto done;
    free(p->arena);
    p->arena = NULL;
    p->arena_size = 0;
    /* The recording run's heap tensors are dead: give their memory back
     * rather than keep it resident beside the arena. */
    onyx_heap_trim();
    if (total && !(p->arena = aligned_alloc(PLAN_ALIGN, total))) goto done;
    p->arena_size = total;
    for (int s = 0; s < p->n_slots; s++)
        if (g->slots[s].producer < 0) p->size[s] = 0;
    p->ready = true;
done:
    free(items);
    free(placed);
    free(first_piece);
    return total;
}
