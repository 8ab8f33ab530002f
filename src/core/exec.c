/* exec.c - the executor: walks a graph's nodes in order over a frame of
 * values, serves ops their inputs, outputs, scratch and threads, and frees
 * each value after its last reader. Subgraphs (If/Loop/Scan bodies) run in
 * child frames that read outer values through their captures.
 */
#include "core/exec.h"

#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { SCRATCH_ALIGN = 64, MAX_DISCARD = 16, SUB_BATCH_BYTES = 64 << 10 };

typedef struct frame frame;
struct frame {
    const onyx_graph *g;
    onyx_value *own;         /* (n_slots) values computed here */
    const onyx_value **cur;  /* (n_slots) the value each slot has now */
    const frame *parent;
    bool planned;            /* outputs go to the session's plan arena */
    bool recording;          /* sizes are recorded into the plan */
    int64_t *prof_ns;        /* (n_nodes) sub-batch runs: profile sums, else NULL */
    double *prof_flops;      /* (n_nodes) */
};

typedef struct scratch_block {
    struct scratch_block *next;
    _Alignas(64) unsigned char data[];
} scratch_block;

struct onyx_exec {
    onyx_session *s;
    frame *f;
    const onyx_node *node;
    int node_index;
    onyx_error *err;
    size_t scratch_mark;
    double flops;            /* onyx_exec_add_flops during this node */
    scratch_block *extra;    /* scratch that did not fit the session block */
    onyx_value discard[MAX_DISCARD]; /* outputs the model omitted */
};

// ----------------------------------------------------------------------------
// Run-time services for ops

const onyx_value *onyx_exec_input_value(onyx_exec *x, int i) {
    if (i < 0 || i >= x->node->n_in || x->node->in[i] < 0) return NULL;
    return x->f->cur[x->node->in[i]];
}

const onyx_tensor *onyx_exec_input(onyx_exec *x, int i) {
    const onyx_value *v = onyx_exec_input_value(x, i);
    return v && v->kind == ONYX_KIND_TENSOR ? &v->tensor : NULL;
}

void onyx_exec_add_flops(onyx_exec *x, double flops) { x->flops += flops; }

bool onyx_exec_wants_output(onyx_exec *x, int i) {
    return i >= 0 && i < x->node->n_out && x->node->out[i] >= 0;
}

void onyx_exec_place_input(onyx_exec *x, int i, int o, size_t at) {
    if (!x->f->recording || i < 0 || i >= x->node->n_in || !onyx_exec_wants_output(x, o)) return;
    onyx_plan_place_inside(&x->s->plan, x->node->in[i], x->node->out[o], at);
}

onyx_value *onyx_exec_output_value(onyx_exec *x, int i) {
    onyx_value *v;
    if (onyx_exec_wants_output(x, i)) {
        int s = x->node->out[i];
        v = &x->f->own[s];
        x->f->cur[s] = v;
    } else {
        if (i < 0 || i >= MAX_DISCARD) return NULL;
        v = &x->discard[i];
    }
    onyx_value_clear(v);
    return v;
}

onyx_status onyx_exec_fail(onyx_exec *x, onyx_status status, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const onyx_node *n = x->node;
    if (n->name[0])
        return onyx_errorf(x->err, status, "node '%s' (%s): %s", n->name, n->op_type, msg);
    return onyx_errorf(x->err, status, "node #%d (%s): %s", x->node_index, n->op_type, msg);
}

onyx_status onyx_exec_output(onyx_exec *x, int i, onyx_dtype dtype, int ndim, const int64_t *dims,
                             onyx_tensor **out) {
    *out = NULL;
    if (ndim < 0 || ndim > ONYX_MAX_DIMS)
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "output %d has rank %d (at most %d)", i,
                              ndim, ONYX_MAX_DIMS);
    if (!onyx_dtype_size(dtype))
        return onyx_exec_fail(x, ONYX_ERR_RUNTIME, "output %d has no element type", i);
    int64_t count = onyx_dims_count(ndim, dims);
    size_t bytes = onyx_dtype_bytes(dtype, count);
    if (count < 0 || bytes == SIZE_MAX)
        return onyx_exec_fail(x, ONYX_ERR_RUNTIME, "output %d has an invalid or too large shape",
                              i);
    onyx_session *s = x->s;
    if (s->memory_limit && bytes > s->memory_limit)
        return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY,
                              "output %d needs %zu bytes, over the memory limit of %zu", i, bytes,
                              s->memory_limit);
    if (s->physical_memory && bytes > s->physical_memory)
        return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY,
                              "output %d needs %zu bytes, more than this machine's memory", i,
                              bytes);
    onyx_value *v = onyx_exec_output_value(x, i);
    if (!v) return onyx_exec_fail(x, ONYX_ERR_RUNTIME, "output index %d out of range", i);
    v->kind = ONYX_KIND_TENSOR;
    onyx_tensor *t = &v->tensor;
    t->dtype = dtype;
    onyx_tensor_set_shape(t, ndim, dims);
    int slot = onyx_exec_wants_output(x, i) ? x->node->out[i] : -1;
    if (slot >= 0 && x->f->recording && bytes > s->plan.size[slot]) s->plan.size[slot] = bytes;
    if (slot >= 0 && x->f->planned && dtype != ONYX_DTYPE_STRING && bytes &&
        bytes <= s->plan.size[slot]) {
        t->data = s->plan.arena + s->plan.offset[slot];
    } else {
        /* Never NULL, even for empty tensors: ops may pass data to memcpy. */
        t->heap = dtype == ONYX_DTYPE_STRING ? calloc(1, bytes ? bytes : 1)
                                             : malloc(bytes ? bytes : 1);
        if (!t->heap) {
            v->kind = ONYX_KIND_NONE;
            return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory for %zu bytes",
                                  bytes);
        }
        t->data = t->heap;
    }
    *out = t;
    return ONYX_OK;
}

void *onyx_exec_scratch(onyx_exec *x, size_t bytes) {
    onyx_session *s = x->s;
    size_t need = (bytes + SCRATCH_ALIGN - 1) / SCRATCH_ALIGN * SCRATCH_ALIGN;
    if (need < bytes) return NULL;
    if (s->scratch && s->scratch_used + need <= s->scratch_cap) {
        void *p = s->scratch + s->scratch_used;
        s->scratch_used += need;
        return p;
    }
    if (s->scratch_used + need > s->scratch_want) s->scratch_want = s->scratch_used + need;
    scratch_block *b = aligned_alloc(SCRATCH_ALIGN, sizeof *b + need);
    if (!b) return NULL;
    b->next = x->extra;
    x->extra = b;
    return b->data;
}

void *onyx_exec_scratch_per_thread(onyx_exec *x, size_t bytes) {
    size_t threads = (size_t)onyx_exec_threads(x);
    if (bytes > SIZE_MAX / threads) return NULL;
    return onyx_exec_scratch(x, bytes * threads);
}

/* Drops the current node's scratch; at top level grows the session block to
 * what the node wanted, so the next run needs no extra blocks. */
static void scratch_reset(onyx_exec *x) {
    onyx_session *s = x->s;
    while (x->extra) {
        scratch_block *b = x->extra;
        x->extra = b->next;
        free(b);
    }
    s->scratch_used = x->scratch_mark;
    if (s->scratch_used == 0 && s->scratch_want > s->scratch_cap) {
        free(s->scratch);
        s->scratch_cap = (s->scratch_want + SCRATCH_ALIGN - 1) / SCRATCH_ALIGN * SCRATCH_ALIGN;
        s->scratch = aligned_alloc(SCRATCH_ALIGN, s->scratch_cap);
        if (!s->scratch) s->scratch_cap = 0;
    }
}

void onyx_exec_parallel(onyx_exec *x, int64_t n, int64_t grain, onyx_task_fn fn, void *ctx) {
    onyx_pool_run(x->s->pool, n, grain, fn, ctx);
}

int onyx_exec_threads(const onyx_exec *x) { return onyx_pool_threads(x->s->pool); }

/* A lane (see run_split) also stops when its parent session is aborted. */
static bool session_aborted(const onyx_session *s) {
    return atomic_load(&s->abort) || (s->parent && atomic_load(&s->parent->abort));
}

int onyx_exec_aborted(const onyx_exec *x) { return session_aborted(x->s); }

// ----------------------------------------------------------------------------
// Frames

/* Runs every node of f->g. Values in f->own are released after their last
 * use; graph outputs stay. */
static onyx_status run_frame(onyx_session *s, frame *f, onyx_error *err) {
    const onyx_graph *g = f->g;
    onyx_exec x = {.s = s, .f = f, .err = err};
    for (int i = 0; i < g->n_nodes; i++) {
        const onyx_node *n = &g->nodes[i];
        x.node = n;
        x.node_index = i;
        if (session_aborted(s))
            return onyx_errorf(err, ONYX_ERR_CANCELLED, "the run was cancelled");
        for (int k = 0; k < n->n_in; k++) {
            if (n->in[k] >= 0 && !f->cur[n->in[k]])
                return onyx_exec_fail(&x, ONYX_ERR_RUNTIME, "input '%s' was not computed",
                                      g->slots[n->in[k]].name);
        }
        x.scratch_mark = s->scratch_used;
        if (err) err->message[0] = 0;
        bool timed = s->profile && !f->parent;
        struct timespec t0, t1;
        x.flops = 0;
        if (timed) clock_gettime(CLOCK_MONOTONIC, &t0);
        onyx_status st = n->op->run(n, &x);
        if (timed) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            onyx_profile_event ev = {
                n->op_type, n->name,
                (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec), x.flops};
            if (f->prof_ns) {
                f->prof_ns[i] += ev.ns;
                f->prof_flops[i] += ev.flops;
            } else {
                s->profile(s->profile_user, &ev);
            }
        }
        scratch_reset(&x);
        for (int k = 0; k < MAX_DISCARD; k++)
            if (x.discard[k].kind != ONYX_KIND_NONE || x.discard[k].items) onyx_value_clear(&x.discard[k]);
        if (st) {
            if (err && !err->message[0]) onyx_exec_fail(&x, st, "failed (%s)", onyx_status_name(st));
            return st;
        }
        /* Release what is dead after node i: inputs read for the last time,
         * and outputs nobody reads. */
        for (int k = 0; k < n->n_in; k++) {
            int sl = n->in[k];
            if (sl >= 0 && g->slots[sl].last_use == i && g->slots[sl].producer >= 0) {
                onyx_value_clear(&f->own[sl]);
                f->cur[sl] = NULL;
            }
        }
        for (int *p = g->implicit[i]; p && *p >= 0; p++) {
            if (g->slots[*p].last_use == i && g->slots[*p].producer >= 0) {
                onyx_value_clear(&f->own[*p]);
                f->cur[*p] = NULL;
            }
        }
        for (int k = 0; k < n->n_out; k++) {
            int sl = n->out[k];
            if (sl >= 0 && g->slots[sl].last_use < 0) {
                onyx_value_clear(&f->own[sl]);
                f->cur[sl] = NULL;
            }
        }
    }
    return ONYX_OK;
}

/* Points constants and captures of frame f at their values. */
static void bind_fixed(frame *f) {
    const onyx_graph *g = f->g;
    for (int s = 0; s < g->n_slots; s++)
        if (g->slots[s].constant && !f->cur[s]) f->cur[s] = g->slots[s].constant;
    for (int c = 0; c < g->n_captures; c++) {
        int s = g->captures[c];
        f->cur[s] = f->parent ? f->parent->cur[g->slots[s].outer] : NULL;
    }
}

onyx_status onyx_exec_run_graph(onyx_exec *x, const onyx_graph *g, int n_inputs,
                                const onyx_value *const *inputs, onyx_value *outputs) {
    if (n_inputs != g->n_inputs)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_MODEL, "subgraph takes %d inputs, given %d",
                              g->n_inputs, n_inputs);
    onyx_status st = ONYX_OK;
    frame f = {.g = g, .parent = x->f};
    f.own = calloc((size_t)g->n_slots + 1, sizeof *f.own);
    f.cur = calloc((size_t)g->n_slots + 1, sizeof *f.cur);
    if (!f.own || !f.cur) {
        st = onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int i = 0; i < n_inputs; i++) f.cur[g->inputs[i]] = inputs[i];
    bind_fixed(&f);
    if ((st = run_frame(x->s, &f, x->err))) goto done;
    for (int j = 0; j < g->n_outputs; j++) {
        int sl = g->outputs[j];
        if (!f.cur[sl]) {
            st = onyx_exec_fail(x, ONYX_ERR_RUNTIME, "subgraph output '%s' was not computed",
                                g->slots[sl].name);
            goto done;
        }
        st = f.cur[sl] == &f.own[sl] ? onyx_value_take(&outputs[j], &f.own[sl])
                                     : onyx_value_copy(&outputs[j], f.cur[sl]);
        if (st) {
            st = onyx_exec_fail(x, st, "out of memory copying subgraph outputs");
            goto done;
        }
    }
done:
    if (st && outputs)
        for (int j = 0; j < g->n_outputs; j++) onyx_value_clear(&outputs[j]);
    if (f.own)
        for (int sl = 0; sl < g->n_slots; sl++) onyx_value_clear(&f.own[sl]);
    free(f.own);
    free(f.cur);
    return st;
}

onyx_status onyx_exec_run_node(const onyx_graph *g, const onyx_node *n, size_t max_bytes,
                               onyx_value *out, onyx_error *err) {
    for (int k = 0; k < n->n_out; k++) onyx_value_clear(&out[k]);
    /* A session of its own: no pool (one thread), no plan (outputs on the
     * heap), and the output size bound as its memory limit. */
    onyx_session s = {.memory_limit = max_bytes ? max_bytes : 1};
    frame f = {.g = g};
    onyx_exec x = {.s = &s, .f = &f, .node = n, .err = err};
    onyx_status st = ONYX_OK;
    f.own = calloc((size_t)g->n_slots + 1, sizeof *f.own);
    f.cur = calloc((size_t)g->n_slots + 1, sizeof *f.cur);
    if (!f.own || !f.cur) {
        st = onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int k = 0; k < n->n_in; k++) {
        int sl = n->in[k];
        if (sl < 0) continue;
        if (!g->slots[sl].constant) {
            st = onyx_exec_fail(&x, ONYX_ERR_RUNTIME, "input '%s' is not a constant",
                                g->slots[sl].name);
            goto done;
        }
        f.cur[sl] = g->slots[sl].constant;
    }
    if (err) err->message[0] = 0;
    st = n->op->run(n, &x);
    scratch_reset(&x);
    for (int k = 0; k < MAX_DISCARD; k++) onyx_value_clear(&x.discard[k]);
    if (st) {
        if (err && !err->message[0]) onyx_exec_fail(&x, st, "failed (%s)", onyx_status_name(st));
        goto done;
    }
    for (int k = 0; k < n->n_out && !st; k++) {
        int sl = n->out[k];
        if (sl < 0) continue;
        if (f.cur[sl] != &f.own[sl])
            st = onyx_exec_fail(&x, ONYX_ERR_RUNTIME, "output %d was not computed", k);
        else if (onyx_value_take(&out[k], &f.own[sl]))
            st = onyx_exec_fail(&x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    }
done:
    if (st)
        for (int k = 0; k < n->n_out; k++) onyx_value_clear(&out[k]);
    if (f.own)
        for (int k = 0; k < n->n_out; k++)
            if (n->out[k] >= 0) onyx_value_clear(&f.own[n->out[k]]);
    free(f.own);
    free(f.cur);
    free(s.scratch);
    return st;
}

/* Runs the top-level frame f with the plan for the current input shapes
 * (recording one first when there is none). */
static onyx_status run_planned(onyx_session *s, frame *f, onyx_error *err) {
    const onyx_graph *g = f->g;
    bind_fixed(f);
    bool use_plan = onyx_plan_begin(&s->plan, g, s->cur);
    f->planned = use_plan;
    f->recording = !use_plan;
    onyx_status st = run_frame(s, f, err);
    if (!st && !use_plan) {
        size_t need = onyx_plan_finish(&s->plan, g, s->memory_limit);
        if (s->memory_limit && need > s->memory_limit)
            st = onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY,
                             "activations for these input shapes need %zu bytes, over the memory "
                             "limit of %zu",
                             need, s->memory_limit);
    }
    return st;
}

/* The sub-batch size for the inputs bound in s->cur, or 0 to run the batch
 * whole: the graph must be separable, every input a tensor with the same
 * dim 0 N > 1. Auto (sub_batch 0), for graphs with convolutions only: one
 * sample at a time when a sample's inputs take SUB_BATCH_BYTES or more (an
 * image: its activations are large, and a layer's output is then still in
 * cache when the next layer reads it; at batch 8 that made MobileNetV2,
 * EfficientNet-B0 ~10% faster), else as many samples as make up about
 * SUB_BATCH_BYTES of inputs, so that small inputs do not pay the per-run
 * overhead once per sample. */
static int64_t sub_batch_size(const onyx_session *s, int64_t *batch) {
    const onyx_graph *g = s->model->graph;
    if (s->sub_batch < 0 || !s->model->batch_separable) return 0;
    if (s->sub_batch == 0 && !s->model->batch_has_conv) return 0;
    int64_t n = -1;
    size_t row = 0; /* input bytes per sample */
    for (int i = 0; i < g->n_inputs; i++) {
        const onyx_value *v = s->cur[g->inputs[i]];
        if (!v || v->kind != ONYX_KIND_TENSOR || v->tensor.ndim < 1 ||
            v->tensor.dtype == ONYX_DTYPE_STRING)
            return 0;
        if (n >= 0 && v->tensor.dims[0] != n) return 0;
        n = v->tensor.dims[0];
        if (n > 0) row += onyx_tensor_nbytes(&v->tensor) / (size_t)n;
    }
    int64_t want = s->sub_batch;
    if (want == 0) want = row >= SUB_BATCH_BYTES ? 1 : (int64_t)(SUB_BATCH_BYTES / (row ? row : 1));
    if (n <= 1 || want >= n) return 0;
    /* The largest size <= want dividing n: every sub-batch has one shape,
     * and so one memory plan. */
    int64_t sb = want;
    while (n % sb) sb--;
    *batch = n;
    return sb;
}

/* Drops every value of the top-level frame and unbinds every slot. */
static void frame_reset(onyx_session *s) {
    const onyx_graph *g = s->model->graph;
    for (int i = 0; i < g->n_slots; i++) {
        onyx_value_clear(&s->own[i]);
        s->cur[i] = NULL;
    }
}

/* Binds slice c (samples [c*sb, c*sb+sb)) of the inputs `in` to s's graph
 * inputs, through views kept in s->sb_in. */
static void bind_slice(onyx_session *s, const onyx_value *const *in, int64_t c, int64_t sb) {
    const onyx_graph *g = s->model->graph;
    for (int i = 0; i < g->n_inputs; i++) {
        const onyx_tensor *t = &in[i]->tensor;
        onyx_value *v = &s->sb_in[i];
        memset(v, 0, sizeof *v);
        v->kind = ONYX_KIND_TENSOR;
        v->tensor.dtype = t->dtype;
        onyx_tensor_set_shape(&v->tensor, t->ndim, t->dims);
        v->tensor.dims[0] = sb;
        size_t row = onyx_tensor_nbytes(&v->tensor);
        v->tensor.data = (unsigned char *)t->data + (size_t)c * row;
        s->cur[g->inputs[i]] = v;
    }
}

/* The full outputs of a split batch, laid out by its first slice. */
typedef struct split_out {
    onyx_tensor *t;  /* (n_outputs) */
    size_t *chunk;   /* (n_outputs) bytes of one slice's output */
} split_out;

/* Copies slice c's outputs (computed in session s) into place, checking
 * they have the first slice's shape. */
static onyx_status gather_slice(onyx_session *s, const split_out *o, int64_t c, onyx_error *err) {
    const onyx_graph *g = s->model->graph;
    for (int j = 0; j < g->n_outputs; j++) {
        const onyx_value *v = s->cur[g->outputs[j]];
        const onyx_tensor *t = v && v->kind == ONYX_KIND_TENSOR ? &v->tensor : NULL;
        const onyx_tensor *full = &o->t[j];
        if (!t || t->ndim != full->ndim || t->dtype != full->dtype ||
            onyx_tensor_nbytes(t) != o->chunk[j] ||
            memcmp(t->dims + 1, full->dims + 1, (size_t)(t->ndim - 1) * sizeof *t->dims) != 0)
            return onyx_errorf(err, ONYX_ERR_RUNTIME,
                               "output '%s' has a different shape in sub-batch %lld",
                               g->slots[g->outputs[j]].name, (long long)c);
        if (o->chunk[j])
            memcpy((unsigned char *)full->data + (size_t)c * o->chunk[j], t->data, o->chunk[j]);
    }
    return ONYX_OK;
}

/* Lays out the full outputs, kept by s, from the first slice's (in
 * from->cur: s itself or a lane); *fallback when an output is not
 * batch-major, so the split does not apply. */
static onyx_status layout_outputs(onyx_session *s, const onyx_session *from, int64_t n,
                                  int64_t sb, split_out *o, bool *fallback, onyx_error *err) {
    const onyx_graph *g = s->model->graph;
    for (int j = 0; j < g->n_outputs; j++) {
        const onyx_value *v = from->cur[g->outputs[j]];
        const onyx_tensor *t = v && v->kind == ONYX_KIND_TENSOR ? &v->tensor : NULL;
        if (!t || t->ndim < 1 || t->dims[0] != sb || t->dtype == ONYX_DTYPE_STRING) {
            *fallback = true;
            return ONYX_OK;
        }
        o->t[j].dtype = t->dtype;
        onyx_tensor_set_shape(&o->t[j], t->ndim, t->dims);
        o->t[j].dims[0] = n;
        o->chunk[j] = onyx_tensor_nbytes(t);
        size_t bytes = o->chunk[j] * (size_t)(n / sb);
        if (s->memory_limit && bytes > s->memory_limit)
            return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY,
                               "output '%s' needs %zu bytes, over the memory limit of %zu",
                               g->slots[g->outputs[j]].name, bytes, s->memory_limit);
        if (bytes > s->sb_cap[j]) {
            free(s->sb_out[j]);
            s->sb_cap[j] = 0;
            if (!(s->sb_out[j] = malloc(bytes)))
                return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY,
                                   "out of memory for %zu bytes of outputs", bytes);
            s->sb_cap[j] = bytes;
        }
        o->t[j].data = s->sb_out[j];
    }
    return ONYX_OK;
}

/* Runs slice c on session s in frame f and gathers its outputs (o NULL:
 * leaves them in s). */
static onyx_status run_slice(onyx_session *s, frame *f, const onyx_value *const *in, int64_t c,
                             int64_t sb, const split_out *o, onyx_error *err) {
    frame_reset(s);
    bind_slice(s, in, c, sb);
    f->planned = f->recording = false;
    onyx_status st = run_planned(s, f, err);
    return st || !o ? st : gather_slice(s, o, c, err);
}

// ----------------------------------------------------------------------------
// Lanes: slices of a split batch run side by side, one per pool thread, each
// in a single-threaded child session with its own plan and scratch. A batch
// of images then scales with threads the way separate processes would, where
// splitting each layer of one image over threads leaves them waiting at
// every layer's end.

typedef struct lane_job {
    onyx_session *s;               /* the parent */
    const onyx_value *const *in;
    const split_out *out;          /* NULL: the first round (see run_lanes) */
    int64_t sb, end;
    atomic_llong next;             /* the next slice to take; slices < end */
    atomic_int failed;
    onyx_status *st;               /* (lanes) */
    onyx_error *err;               /* (lanes) */
    int64_t *prof_ns;              /* (lanes * n_nodes) when profiling */
    double *prof_flops;
} lane_job;

/* Runs slice c on lane li (its frame, error and profile slot); false when
 * it failed (the job is then marked failed). */
static bool lane_slice(lane_job *j, int li, int64_t c) {
    onyx_session *l = j->s->lanes[li];
    const int nn = j->s->model->graph->n_nodes;
    frame f = {.g = l->model->graph, .own = l->own, .cur = l->cur};
    if (j->prof_ns) {
        f.prof_ns = j->prof_ns + (size_t)li * (size_t)nn;
        f.prof_flops = j->prof_flops + (size_t)li * (size_t)nn;
    }
    onyx_status st = session_aborted(l)
                         ? onyx_errorf(&j->err[li], ONYX_ERR_CANCELLED, "the run was cancelled")
                         : run_slice(l, &f, j->in, c, j->sb, j->out, &j->err[li]);
    if (st) {
        j->st[li] = st;
        atomic_store(&j->failed, 1);
    }
    return !st;
}

/* A later round: lane `thread` takes slices until none is left, gathering
 * each. */
static void lane_task(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)begin;
    (void)end;
    lane_job *j = ctx;
    while (!atomic_load(&j->failed)) {
        int64_t c = atomic_fetch_add(&j->next, 1);
        if (c >= j->end || !lane_slice(j, thread, c)) break;
    }
    frame_reset(j->s->lanes[thread]);
}

/* The first round: lane i runs slice i and keeps its outputs (their layout
 * is not known yet), whichever thread runs task i. */
static void lane_first_task(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    lane_job *j = ctx;
    for (int64_t i = begin; i < end && !atomic_load(&j->failed); i++) lane_slice(j, (int)i, i);
}

/* Creates the lanes of s (one per pool thread) on first use. */
static onyx_status make_lanes(onyx_session *s, int lanes, onyx_error *err) {
    if (s->n_lanes >= lanes) return ONYX_OK;
    onyx_session **a = realloc(s->lanes, (size_t)lanes * sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    s->lanes = a;
    onyx_options o;
    onyx_options_init(&o);
    o.threads = 1;
    o.sub_batch = -1;
    o.memory_limit = s->memory_limit;
    for (; s->n_lanes < lanes; s->n_lanes++) {
        onyx_status st = onyx_session_new(s->model, &o, &s->lanes[s->n_lanes], err);
        if (st) return st;
        s->lanes[s->n_lanes]->parent = s;
    }
    return ONYX_OK;
}

void onyx_exec_free_lanes(onyx_session *s) {
    for (int i = 0; i < s->n_lanes; i++) onyx_session_free(s->lanes[i]);
    free(s->lanes);
    s->lanes = NULL;
    s->n_lanes = 0;
}

/* Runs slices [c0, c0 + count) on `lanes` lanes; their profile times are
 * added into f's. o NULL: the first round, slices [0, lanes), whose
 * outputs stay in the lanes. */
static onyx_status run_lanes(onyx_session *s, frame *f, const onyx_value *const *in, int64_t c0,
                             int64_t count, int64_t sb, const split_out *o, int lanes,
                             onyx_error *err) {
    const int nn = s->model->graph->n_nodes;
    onyx_status st = make_lanes(s, lanes, err);
    if (st) return st;
    lane_job j = {.s = s, .in = in, .out = o, .sb = sb, .end = c0 + count};
    atomic_init(&j.next, c0);
    atomic_init(&j.failed, 0);
    j.st = calloc((size_t)lanes, sizeof *j.st);
    j.err = calloc((size_t)lanes, sizeof *j.err);
    if (f->prof_ns) {
        j.prof_ns = calloc((size_t)lanes * (size_t)nn + 1, sizeof *j.prof_ns);
        j.prof_flops = calloc((size_t)lanes * (size_t)nn + 1, sizeof *j.prof_flops);
    }
    if (!j.st || !j.err || (f->prof_ns && (!j.prof_ns || !j.prof_flops))) {
        st = onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    /* A lane times its nodes when the parent does; the sums go to the job. */
    for (int i = 0; i < s->n_lanes; i++) s->lanes[i]->profile = s->profile;
    onyx_pool_run(s->pool, lanes, 1, o ? lane_task : lane_first_task, &j);
    for (int i = 0; i < lanes && !st; i++)
        if (j.st[i]) {
            st = j.st[i];
            if (err) *err = j.err[i];
        }
    if (f->prof_ns)
        for (int i = 0; i < lanes; i++)
            for (int k = 0; k < nn; k++) {
                f->prof_ns[k] += j.prof_ns[(size_t)i * (size_t)nn + (size_t)k];
                f->prof_flops[k] += j.prof_flops[(size_t)i * (size_t)nn + (size_t)k];
            }
done:
    free(j.st);
    free(j.err);
    free(j.prof_ns);
    free(j.prof_flops);
    return st;
}

/* Runs the batch of n samples as n / sb runs over slices of the inputs
 * (contiguous along axis 0), each output's slices gathered into a full
 * output kept by the session. With several threads and at least a slice
 * per thread, the slices run on lanes in rounds of one per thread (lane 0's
 * first slice lays out the outputs) and a remainder smaller than a round
 * runs here, split over the threads layer by layer; with one thread every
 * slice runs here. *fallback is set when the first slice shows the split
 * does not apply (then nothing was gathered). */
static onyx_status run_split(onyx_session *s, int64_t n, int64_t sb, bool *fallback,
                             onyx_error *err) {
    const onyx_graph *g = s->model->graph;
    onyx_status st = ONYX_OK;
    bool lanes_hold = false; /* the lanes hold the first round's outputs */
    *fallback = false;
    const onyx_value **in = calloc((size_t)g->n_inputs + 1, sizeof *in);
    split_out o = {calloc((size_t)g->n_outputs + 1, sizeof *o.t),
                   calloc((size_t)g->n_outputs + 1, sizeof *o.chunk)};
    frame f = {.g = g, .own = s->own, .cur = s->cur};
    if (s->profile) {
        f.prof_ns = calloc((size_t)g->n_nodes + 1, sizeof *f.prof_ns);
        f.prof_flops = calloc((size_t)g->n_nodes + 1, sizeof *f.prof_flops);
    }
    if (!in || !o.t || !o.chunk || (s->profile && (!f.prof_ns || !f.prof_flops))) {
        st = onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int i = 0; i < g->n_inputs; i++) in[i] = s->cur[g->inputs[i]];
    const int64_t slices = n / sb;
    const int threads = onyx_pool_threads(s->pool);
    int64_t c;
    if (threads > 1 && slices >= threads) {
        /* The first round on lanes too; lane 0's outputs lay them out. */
        lanes_hold = true;
        if ((st = run_lanes(s, &f, in, 0, threads, sb, NULL, threads, err))) goto done;
        if ((st = layout_outputs(s, s->lanes[0], n, sb, &o, fallback, err)) || *fallback)
            goto done;
        for (int i = 0; i < threads; i++)
            if ((st = gather_slice(s->lanes[i], &o, i, err))) goto done;
        for (int i = 0; i < threads; i++) frame_reset(s->lanes[i]);
        lanes_hold = false;
        c = threads;
        int64_t rounds = (slices - c) / threads * threads;
        if (rounds && (st = run_lanes(s, &f, in, c, rounds, sb, &o, threads, err))) goto done;
        c += rounds;
    } else {
        frame_reset(s);
        bind_slice(s, in, 0, sb);
        if ((st = run_planned(s, &f, err))) goto done;
        if ((st = layout_outputs(s, s, n, sb, &o, fallback, err)) || *fallback) goto done;
        if ((st = gather_slice(s, &o, 0, err))) goto done;
        c = 1;
    }
    for (; c < slices; c++)
        if ((st = run_slice(s, &f, in, c, sb, &o, err))) goto done;
    frame_reset(s);
    for (int i = 0; i < g->n_inputs; i++) s->cur[g->inputs[i]] = in[i];
    bind_fixed(&f);
    for (int j = 0; j < g->n_outputs; j++) {
        int sl = g->outputs[j];
        s->own[sl].kind = ONYX_KIND_TENSOR;
        s->own[sl].tensor = o.t[j]; /* borrowed: heap NULL, the session keeps sb_out[j] */
        s->cur[sl] = &s->own[sl];
    }
    if (s->profile)
        for (int i = 0; i < g->n_nodes; i++) {
            onyx_profile_event ev = {g->nodes[i].op_type, g->nodes[i].name, f.prof_ns[i],
                                     f.prof_flops[i]};
            s->profile(s->profile_user, &ev);
        }
done:
    for (int i = 0; lanes_hold && i < s->n_lanes; i++) frame_reset(s->lanes[i]);
    if (st || *fallback) {
        frame_reset(s);
        for (int i = 0; in && i < g->n_inputs; i++) s->cur[g->inputs[i]] = in[i];
    }
    free(in);
    free(o.t);
    free(o.chunk);
    free(f.prof_ns);
    free(f.prof_flops);
    return st;
}

onyx_status onyx_exec_run_session(onyx_session *s, onyx_error *err) {
    const onyx_graph *g = s->model->graph;
    int64_t n = 0, sb = sub_batch_size(s, &n);
    if (sb) {
        bool fallback = false;
        onyx_status st = run_split(s, n, sb, &fallback, err);
        if (st || !fallback) return st;
    }
    frame f = {.g = g, .own = s->own, .cur = s->cur};
    return run_planned(s, &f, err);
}
