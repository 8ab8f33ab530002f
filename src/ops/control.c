/* control.c - control flow: If, Loop and Scan. Each runs its GRAPH
 * attributes through onyx_exec_run_graph (a child frame that reads outer
 * values through captures) and moves the results into the node's outputs.
 * Does not own: frames and captures (core/exec.c), sequence ops (sequence.c).
 */
#include "core/graph.h" /* declared body output types, for zero-trip scan outputs */
#include "core/op.h"
#include "ops/util.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// Helpers

/* Copies the borrowed value v into output i. */
static onyx_status copy_value(onyx_exec *x, int i, const onyx_value *v) {
    if (!onyx_exec_wants_output(x, i)) return ONYX_OK;
    onyx_value tmp;
    onyx_status st = onyx_value_copy(&tmp, v);
    if (st) return onyx_exec_fail(x, st, "out of memory copying output %d", i);
    return onyx_op_put_value(x, i, &tmp);
}

/* Reads a one-element tensor as a truth value. */
static onyx_status read_cond(onyx_exec *x, const onyx_value *v, const char *what, bool *out) {
    if (!v || v->kind != ONYX_KIND_TENSOR || onyx_tensor_count(&v->tensor) != 1)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "%s must be a one-element tensor",
                              what);
    *out = onyx_tensor_get_i64(&v->tensor, 0) != 0;
    return ONYX_OK;
}

/* The declared element type and shape of output j of body graph g. A scan
 * output of a loop that ran zero times takes its element shape from here,
 * since no iteration produced one; unknown dims become 0 (the result is
 * empty either way). Fails when the element type is not declared. */
static onyx_status declared_output(onyx_exec *x, const onyx_graph *g, int j, onyx_dtype *dtype,
                                   int *ndim, int64_t *dims) {
    const onyx_slot *sl = &g->slots[g->outputs[j]];
    if (sl->dtype == ONYX_DTYPE_UNDEFINED || sl->kind == ONYX_KIND_SEQUENCE ||
        sl->kind == ONYX_KIND_MAP)
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED,
                              "zero iterations, and the body does not declare the tensor type of "
                              "scan output '%s'",
                              sl->name);
    *dtype = sl->dtype;
    *ndim = sl->ndim < 0 ? 0 : sl->ndim;
    for (int i = 0; i < *ndim; i++) dims[i] = sl->dims[i] < 0 ? 0 : sl->dims[i];
    return ONYX_OK;
}

/* Copies (or, for strings, moves) src into the slice `pos` of dst along
 * `axis`, where dst's shape is src's with dims[axis] = len inserted. String
 * pointers are moved: src's entries are set to NULL (src must own them). */
static void put_slice(onyx_tensor *dst, int axis, int64_t len, int64_t pos, onyx_tensor *src) {
    size_t es = onyx_dtype_size(src->dtype);
    int64_t outer = onyx_op_prod(src->dims, 0, axis);
    int64_t inner = onyx_op_prod(src->dims, axis, src->ndim);
    size_t row = (size_t)inner * es;
    if (!row) return;
    char *d = dst->data;
    const char *s = src->data;
    for (int64_t o = 0; o < outer; o++)
        memcpy(d + (size_t)(o * len + pos) * row, s + (size_t)o * row, row);
    if (src->dtype == ONYX_DTYPE_STRING) memset(src->data, 0, (size_t)(outer * inner) * es);
}

/* Copies slice `pos` along `axis` of src (dims[axis] == len) into the
 * buffer `dst` (rank one less). Strings are copied as borrowed pointers. */
static void get_slice(void *dst, const onyx_tensor *src, int axis, int64_t pos) {
    size_t es = onyx_dtype_size(src->dtype);
    int64_t len = src->dims[axis], outer = onyx_op_prod(src->dims, 0, axis);
    int64_t inner = onyx_op_prod(src->dims, axis + 1, src->ndim);
    size_t row = (size_t)inner * es;
    if (!row) return;
    char *d = dst;
    const char *s = src->data;
    for (int64_t o = 0; o < outer; o++)
        memcpy(d + (size_t)o * row, s + (size_t)(o * len + pos) * row, row);
}

// ----------------------------------------------------------------------------
// If

static onyx_status if_init(onyx_node *n, onyx_error *err) {
    const onyx_graph *t = onyx_attr_graph(n, "then_branch");
    const onyx_graph *e = onyx_attr_graph(n, "else_branch");
    if (!t || !e) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "then_branch and else_branch are required");
    if (onyx_graph_num_inputs(t) || onyx_graph_num_inputs(e))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "If branches take no inputs");
    if (onyx_graph_num_outputs(t) != onyx_graph_num_outputs(e))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "then_branch has %d outputs, else_branch %d",
                           onyx_graph_num_outputs(t), onyx_graph_num_outputs(e));
    if (onyx_graph_num_outputs(t) < n->n_out)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "the branches have %d outputs, the node %d",
                           onyx_graph_num_outputs(t), n->n_out);
    return ONYX_OK;
}

static onyx_status if_run(const onyx_node *n, onyx_exec *x) {
    bool cond;
    onyx_status st = read_cond(x, onyx_exec_input_value(x, 0), "cond", &cond);
    if (st) return st;
    const onyx_graph *g = onyx_attr_graph(n, cond ? "then_branch" : "else_branch");
    int no = onyx_graph_num_outputs(g);
    onyx_value *outs = onyx_op_values_new(no);
    if (!outs) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    if ((st = onyx_exec_run_graph(x, g, 0, NULL, outs))) goto done;
    for (int i = 0; i < n->n_out; i++)
        if ((st = onyx_op_put_value(x, i, &outs[i]))) goto done;
done:
    onyx_op_values_free(outs, no);
    return st;
}

// ----------------------------------------------------------------------------
// Scan output accumulation shared by Loop (unknown length) and Scan.

/* One scan output being stacked along a new axis 0 while the number of
 * iterations is not known yet (Loop). `data` grows by doubling. */
typedef struct stack_acc {
    onyx_dtype dtype;
    int ndim;                      /* of one element */
    int64_t dims[ONYX_MAX_DIMS];   /* of one element */
    size_t elem_bytes;             /* bytes per element tensor */
    int64_t n;                     /* elements stacked */
    char *data;                    /* (n, dims...) heap; strings owned */
    size_t cap;                    /* bytes */
} stack_acc;

static void stack_free(stack_acc *a) {
    if (a->dtype == ONYX_DTYPE_STRING && a->data) {
        char **s = (char **)(void *)a->data;
        size_t count = a->elem_bytes / sizeof(char *) * (size_t)a->n;
        for (size_t i = 0; i < count; i++) free(s[i]);
    }
    free(a->data);
    memset(a, 0, sizeof *a);
}

/* Appends tensor t (owned; its strings are moved) to the stack. */
static onyx_status stack_push(onyx_exec *x, stack_acc *a, int k, onyx_tensor *t) {
    if (a->n == 0) {
        if (t->ndim + 1 > ONYX_MAX_DIMS)
            return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "scan output %d has rank %d (at most %d)",
                                  k, t->ndim + 1, ONYX_MAX_DIMS);
        a->dtype = t->dtype;
        a->ndim = t->ndim;
        memcpy(a->dims, t->dims, sizeof a->dims);
        a->elem_bytes = onyx_tensor_nbytes(t);
    } else if (t->dtype != a->dtype || t->ndim != a->ndim ||
               memcmp(t->dims, a->dims, (size_t)t->ndim * sizeof t->dims[0]) != 0) {
        return onyx_exec_fail(x, ONYX_ERR_RUNTIME,
                              "scan output %d changes type or shape at iteration %lld", k,
                              (long long)a->n);
    }
    size_t used = (size_t)a->n * a->elem_bytes;
    if (a->elem_bytes > SIZE_MAX - used)
        return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "scan output %d is too large", k);
    if (used + a->elem_bytes > a->cap) {
        size_t cap = a->cap ? a->cap : a->elem_bytes * 4;
        while (cap < used + a->elem_bytes) cap = cap > SIZE_MAX / 2 ? used + a->elem_bytes : cap * 2;
        char *p = realloc(a->data, cap);
        if (!p) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory for scan output %d", k);
        a->data = p;
        a->cap = cap;
    }
    if (a->elem_bytes) {
        memcpy(a->data + used, t->data, a->elem_bytes);
        if (t->dtype == ONYX_DTYPE_STRING) memset(t->data, 0, a->elem_bytes);
    }
    a->n++;
    return ONYX_OK;
}

/* Moves the stack into output i as a tensor of shape (n, dims...). */
static onyx_status stack_finish(onyx_exec *x, stack_acc *a, int i) {
    if (!onyx_exec_wants_output(x, i)) {
        stack_free(a);
        return ONYX_OK;
    }
    onyx_value v = {.kind = ONYX_KIND_TENSOR};
    v.tensor.dtype = a->dtype;
    v.tensor.ndim = a->ndim + 1;
    v.tensor.dims[0] = a->n;
    memcpy(v.tensor.dims + 1, a->dims, (size_t)a->ndim * sizeof a->dims[0]);
    if (a->n && a->elem_bytes) {
        v.tensor.data = a->data;
        v.tensor.heap = a->data;
    } else {
        free(a->data);
    }
    memset(a, 0, sizeof *a);
    return onyx_op_put_value(x, i, &v);
}

/* Output i as an empty stack of body output j's declared element type. */
static onyx_status empty_scan_output(onyx_exec *x, const onyx_graph *body, int j, int i, int axis) {
    onyx_dtype dt;
    int nd;
    int64_t d[ONYX_MAX_DIMS + 1];
    onyx_status st = declared_output(x, body, j, &dt, &nd, d);
    if (st) return st;
    if (nd + 1 > ONYX_MAX_DIMS)
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "scan output %d has rank %d (at most %d)",
                              i, nd + 1, ONYX_MAX_DIMS);
    if (axis < 0) axis += nd + 1;
    if (axis < 0 || axis > nd) axis = 0;
    memmove(d + axis + 1, d + axis, (size_t)(nd - axis) * sizeof d[0]);
    d[axis] = 0;
    onyx_tensor *t;
    return onyx_exec_output(x, i, dt, nd + 1, d, &t);
}

// ----------------------------------------------------------------------------
// Loop
//
// Node inputs (M, cond, v_initial...) and outputs (v_final..., scan...).
// Body inputs (iteration_num, cond, carried...) and outputs
// (cond, carried..., scan...). The body's cond output decides whether the
// next iteration runs even when the node's cond input is omitted: the spec
// calls that value "ignored", but onnxruntime (the oracle users compare
// against) honors it, and it is the only way such a loop can end.

typedef struct loop_state {
    int n_carried;   /* N */
    int n_scan;      /* K */
} loop_state;

static onyx_status loop_init(onyx_node *n, onyx_error *err) {
    const onyx_graph *body = onyx_attr_graph(n, "body");
    if (!body) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute body is required");
    int bi = onyx_graph_num_inputs(body), bo = onyx_graph_num_outputs(body);
    if (bi < 2)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "body has %d inputs, needs at least 2 (iteration_num, cond)", bi);
    int N = bi - 2;
    if ((N > 0 && n->n_in != 2 + N) || (N == 0 && n->n_in > 2))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "the body carries %d values, the node gives %d initial values", N,
                           n->n_in > 2 ? n->n_in - 2 : 0);
    if (bo < 1 + N)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "body has %d outputs, needs cond and %d carried values", bo, N);
    int K = bo - 1 - N;
    if (n->n_out > N + K)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "the node has %d outputs, the body gives %d",
                           n->n_out, N + K);
    loop_state *s = onyx_node_alloc(n, sizeof *s);
    if (!s) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    s->n_carried = N;
    s->n_scan = K;
    n->state = s;
    return ONYX_OK;
}

static onyx_status loop_run(const onyx_node *n, onyx_exec *x) {
    const loop_state *ls = n->state;
    const onyx_graph *body = onyx_attr_graph(n, "body");
    int N = ls->n_carried, K = ls->n_scan, bi = 2 + N, bo = 1 + N + K;
    onyx_status st = ONYX_OK;

    int64_t max_trip = INT64_MAX;
    const onyx_value *mv = onyx_exec_input_value(x, 0);
    if (mv) {
        if (mv->kind != ONYX_KIND_TENSOR || onyx_tensor_count(&mv->tensor) != 1)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "M must be a one-element tensor");
        max_trip = onyx_tensor_get_i64(&mv->tensor, 0);
    }
    bool cond = true;
    const onyx_value *cv = onyx_exec_input_value(x, 1);
    if (cv && (st = read_cond(x, cv, "cond", &cond))) return st;
    for (int i = 0; i < N; i++)
        if (!onyx_exec_input_value(x, 2 + i))
            return onyx_exec_fail(x, ONYX_ERR_INVALID_MODEL, "loop-carried input %d is missing", i);

    const onyx_value **in = calloc((size_t)bi, sizeof *in);
    onyx_value *prev = onyx_op_values_new(bo), *outs = onyx_op_values_new(bo);
    stack_acc *acc = calloc((size_t)K + 1, sizeof *acc);
    if (!in || !prev || !outs || !acc) {
        st = onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    /* The iteration number and cond are scalars on the stack: the body
     * reads them as borrowed inputs and copies them if it returns them. */
    int64_t iter = 0;
    uint8_t cond_byte = 1;
    onyx_value iter_v = {.kind = ONYX_KIND_TENSOR}, cond_v = {.kind = ONYX_KIND_TENSOR};
    iter_v.tensor.dtype = ONYX_DTYPE_INT64;
    iter_v.tensor.data = &iter;
    cond_v.tensor.dtype = ONYX_DTYPE_BOOL;
    cond_v.tensor.data = &cond_byte;
    in[0] = &iter_v;
    in[1] = &cond_v;
    for (int i = 0; i < N; i++) in[2 + i] = onyx_exec_input_value(x, 2 + i);

    for (; iter < max_trip && cond; iter++) {
        if (onyx_exec_aborted(x)) {
            st = onyx_exec_fail(x, ONYX_ERR_CANCELLED, "cancelled at iteration %lld",
                                (long long)iter);
            goto done;
        }
        cond_byte = cond;
        if ((st = onyx_exec_run_graph(x, body, bi, in, outs))) goto done;
        if ((st = read_cond(x, &outs[0], "the body's cond output", &cond))) goto done;
        for (int k = 0; k < K; k++) {
            onyx_value *v = &outs[1 + N + k];
            if (v->kind != ONYX_KIND_TENSOR) {
                st = onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "scan output %d is not a tensor", k);
                goto done;
            }
            if ((st = stack_push(x, &acc[k], k, &v->tensor))) goto done;
        }
        /* This iteration's carried outputs feed the next one. */
        for (int j = 0; j < bo; j++) onyx_value_clear(&prev[j]);
        onyx_value *t = prev;
        prev = outs;
        outs = t;
        for (int i = 0; i < N; i++) in[2 + i] = &prev[1 + i];
    }

    for (int i = 0; i < N && i < n->n_out; i++) {
        if (iter > 0)
            st = onyx_op_put_value(x, i, &prev[1 + i]);
        else
            st = copy_value(x, i, in[2 + i]);
        if (st) goto done;
    }
    for (int k = 0; k < K && N + k < n->n_out; k++) {
        if (acc[k].n == 0) {
            if (onyx_exec_wants_output(x, N + k) &&
                (st = empty_scan_output(x, body, 1 + N + k, N + k, 0)))
                goto done;
        } else if ((st = stack_finish(x, &acc[k], N + k))) {
            goto done;
        }
    }
done:
    if (acc)
        for (int k = 0; k < K; k++) stack_free(&acc[k]);
    free(acc);
    onyx_op_values_free(prev, bo);
    onyx_op_values_free(outs, bo);
    free(in);
    return st;
}

// ----------------------------------------------------------------------------
// Scan
//
// Opset 9+: inputs (state..., scan_in...), body (state..., elem...) ->
// (state..., scan_elem...), outputs (final_state..., scan_out...). Each
// scan input is iterated along its own axis and direction; each scan output
// is stacked along its own axis and direction.
// Opset 8: a leading optional sequence_lens input; every input has a batch
// axis 0 and scan inputs are iterated along axis 1; each batch entry runs
// the recurrence separately (over its own length), and scan outputs are
// zero-padded to the longest sequence.

typedef struct scan_state {
    int n_state, n_in, n_out;  /* N, M, K */
    int v8;                    /* opset 8 semantics */
    int64_t *in_axis, *in_dir; /* (M) */
    int64_t *out_axis, *out_dir; /* (K) */
} scan_state;

static onyx_status read_list(onyx_node *n, const char *name, int count, int64_t **out,
                             onyx_error *err) {
    *out = onyx_node_alloc(n, sizeof(int64_t) * ((size_t)count + 1));
    if (!*out) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    const int64_t *v;
    int64_t nv = onyx_attr_ints(n, name, &v);
    if (nv < 0) return ONYX_OK;
    if (nv != count)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute %s has %lld entries, expected %d",
                           name, (long long)nv, count);
    memcpy(*out, v, sizeof(int64_t) * (size_t)count);
    return ONYX_OK;
}

static onyx_status scan_init(onyx_node *n, onyx_error *err) {
    const onyx_graph *body = onyx_attr_graph(n, "body");
    if (!body) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute body is required");
    const onyx_pb_attr *a = onyx_attr_find(n, "num_scan_inputs");
    if (!a || a->type != ONYX_PB_ATTR_INT)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute num_scan_inputs is required");
    scan_state *s = onyx_node_alloc(n, sizeof *s);
    if (!s) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    s->v8 = n->op->since_version < 9;
    int lead = s->v8 ? 1 : 0;
    int bi = onyx_graph_num_inputs(body), bo = onyx_graph_num_outputs(body);
    if (a->i < 1 || a->i > bi)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "num_scan_inputs %lld is out of range",
                           (long long)a->i);
    s->n_in = (int)a->i;
    s->n_state = bi - s->n_in;
    s->n_out = bo - s->n_state;
    if (n->n_in != lead + bi)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "the node has %d inputs, the body takes %d%s",
                           n->n_in, bi, lead ? " (plus sequence_lens)" : "");
    if (s->n_out < 0 || n->n_out > bo)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "the body has %d outputs for %d states", bo,
                           s->n_state);
    onyx_status st;
    if (s->v8) {
        /* Axes are fixed (batch 0, sequence 1) and outputs run forward:
         * the lists stay zero (absent), only input directions exist. */
        if ((st = read_list(n, "directions", s->n_in, &s->in_dir, err))) return st;
        if ((st = read_list(n, "", s->n_in, &s->in_axis, err))) return st;
        if ((st = read_list(n, "", s->n_out, &s->out_axis, err))) return st;
        if ((st = read_list(n, "", s->n_out, &s->out_dir, err))) return st;
    } else {
        if ((st = read_list(n, "scan_input_axes", s->n_in, &s->in_axis, err))) return st;
        if ((st = read_list(n, "scan_input_directions", s->n_in, &s->in_dir, err))) return st;
        if ((st = read_list(n, "scan_output_axes", s->n_out, &s->out_axis, err))) return st;
        if ((st = read_list(n, "scan_output_directions", s->n_out, &s->out_dir, err))) return st;
    }
    for (int i = 0; i < s->n_in; i++)
        if (s->in_dir[i] != 0 && s->in_dir[i] != 1)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "scan input direction %lld is not 0 or 1",
                               (long long)s->in_dir[i]);
    for (int k = 0; k < s->n_out; k++)
        if (s->out_dir[k] != 0 && s->out_dir[k] != 1)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                               "scan output direction %lld is not 0 or 1", (long long)s->out_dir[k]);
    n->state = s;
    return ONYX_OK;
}

/* One run of the recurrence over `len` steps. The caller supplies initial
 * states (borrowed) and scan inputs as tensors with the iterated axis; per
 * step, each scan output element is handed to `emit` (which may move its
 * strings). Final states land in `final` (heap-owned, n_state values). */
typedef struct scan_run {
    onyx_exec *x;
    const onyx_graph *body;
    const scan_state *s;
    const onyx_value **state;   /* (N) initial states */
    const onyx_tensor *scan_in; /* (M) scan inputs */
    const int *axis;            /* (M) normalized iterated axis */
    int64_t len;
    onyx_status (*emit)(void *ctx, int k, int64_t step, onyx_tensor *elem);
    void *ctx;
} scan_run;

static onyx_status scan_recur(const scan_run *r, onyx_value *final) {
    onyx_exec *x = r->x;
    const scan_state *s = r->s;
    int N = s->n_state, M = s->n_in, K = s->n_out, bi = N + M, bo = N + K;
    onyx_status st = ONYX_OK;
    const onyx_value **in = calloc((size_t)bi + 1, sizeof *in);
    onyx_value *prev = onyx_op_values_new(bo), *outs = onyx_op_values_new(bo);
    onyx_value *elems = onyx_op_values_new(M); /* borrowed views: never cleared */
    void **bufs = calloc((size_t)M + 1, sizeof *bufs);
    if (!in || !prev || !outs || !elems || !bufs) {
        st = onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int j = 0; j < M; j++) {
        const onyx_tensor *t = &r->scan_in[j];
        onyx_tensor *e = &elems[j].tensor;
        elems[j].kind = ONYX_KIND_TENSOR;
        e->dtype = t->dtype;
        e->ndim = t->ndim - 1;
        for (int d = 0, o = 0; d < t->ndim; d++)
            if (d != r->axis[j]) e->dims[o++] = t->dims[d];
        if (r->axis[j] != 0) {
            size_t bytes = onyx_tensor_nbytes(e);
            bufs[j] = malloc(bytes ? bytes : 1);
            if (!bufs[j]) {
                st = onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
                goto done;
            }
        }
        in[N + j] = &elems[j];
    }
    for (int i = 0; i < N; i++) in[i] = r->state[i];

    for (int64_t step = 0; step < r->len; step++) {
        if (onyx_exec_aborted(x)) {
            st = onyx_exec_fail(x, ONYX_ERR_CANCELLED, "cancelled at step %lld", (long long)step);
            goto done;
        }
        for (int j = 0; j < M; j++) {
            const onyx_tensor *t = &r->scan_in[j];
            int64_t pos = s->in_dir[j] ? r->len - 1 - step : step;
            onyx_tensor *e = &elems[j].tensor;
            if (r->axis[j] == 0) {
                e->data = (char *)t->data + (size_t)pos * onyx_tensor_nbytes(e);
            } else {
                get_slice(bufs[j], t, r->axis[j], pos);
                e->data = bufs[j];
            }
        }
        if ((st = onyx_exec_run_graph(x, r->body, bi, in, outs))) goto done;
        for (int k = 0; k < K; k++) {
            if (outs[N + k].kind != ONYX_KIND_TENSOR) {
                st = onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "scan output %d is not a tensor", k);
                goto done;
            }
            if ((st = r->emit(r->ctx, k, step, &outs[N + k].tensor))) goto done;
        }
        for (int j = 0; j < bo; j++) onyx_value_clear(&prev[j]);
        onyx_value *t = prev;
        prev = outs;
        outs = t;
        for (int i = 0; i < N; i++) in[i] = &prev[i];
    }
    for (int i = 0; i < N; i++) {
        st = r->len > 0 ? onyx_value_take(&final[i], &prev[i])
                        : onyx_value_copy(&final[i], r->state[i]);
        if (st) {
            st = onyx_exec_fail(x, st, "out of memory");
            goto done;
        }
    }
done:
    if (bufs)
        for (int j = 0; j < M; j++) free(bufs[j]);
    free(bufs);
    free(elems); /* views only */
    onyx_op_values_free(prev, bo);
    onyx_op_values_free(outs, bo);
    free(in);
    return st;
}

/* Opset 9+ emit: output N+k has the element shape with len inserted at
 * its axis; allocated at the first step. */
typedef struct scan9_ctx {
    onyx_exec *x;
    const scan_state *s;
    int64_t len;
    onyx_tensor **out;  /* (K) NULL until the first step */
    int *axis;          /* (K) normalized */
} scan9_ctx;

static onyx_status scan9_emit(void *ctx, int k, int64_t step, onyx_tensor *e) {
    scan9_ctx *c = ctx;
    onyx_exec *x = c->x;
    int idx = c->s->n_state + k;
    if (!onyx_exec_wants_output(x, idx)) return ONYX_OK;
    if (!c->out[k]) {
        int r = e->ndim + 1;
        if (r > ONYX_MAX_DIMS)
            return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "scan output %d has rank %d (at most %d)",
                                  k, r, ONYX_MAX_DIMS);
        int64_t a = c->s->out_axis[k];
        if (!onyx_op_norm_axis(a, r, &c->axis[k]))
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "scan_output_axes[%d] = %lld is out of range for rank %d", k,
                                  (long long)a, r);
        int64_t d[ONYX_MAX_DIMS];
        for (int i = 0, o = 0; i < r; i++) d[i] = i == c->axis[k] ? c->len : e->dims[o++];
        onyx_status st = onyx_exec_output(x, idx, e->dtype, r, d, &c->out[k]);
        if (st) return st;
    } else {
        const onyx_tensor *o = c->out[k];
        bool ok = o->dtype == e->dtype && o->ndim == e->ndim + 1;
        for (int i = 0, j = 0; ok && i < o->ndim; i++)
            if (i != c->axis[k]) ok = o->dims[i] == e->dims[j++];
        if (!ok)
            return onyx_exec_fail(x, ONYX_ERR_RUNTIME,
                                  "scan output %d changes type or shape at step %lld", k,
                                  (long long)step);
    }
    int64_t pos = c->s->out_dir[k] ? c->len - 1 - step : step;
    put_slice(c->out[k], c->axis[k], c->len, pos, e);
    return ONYX_OK;
}

static onyx_status scan9_run(const onyx_node *n, onyx_exec *x) {
    const scan_state *s = n->state;
    const onyx_graph *body = onyx_attr_graph(n, "body");
    int N = s->n_state, M = s->n_in, K = s->n_out;
    onyx_status st = ONYX_OK;
    const onyx_value **state = calloc((size_t)N + 1, sizeof *state);
    onyx_tensor *scan_in = calloc((size_t)M + 1, sizeof *scan_in);
    int *axis = calloc((size_t)M + (size_t)K + 1, sizeof *axis);
    onyx_tensor **out = calloc((size_t)K + 1, sizeof *out);
    onyx_value *final = onyx_op_values_new(N);
    if (!state || !scan_in || !axis || !out || !final) {
        st = onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int i = 0; i < N; i++) {
        state[i] = onyx_exec_input_value(x, i);
        if (!state[i]) {
            st = onyx_exec_fail(x, ONYX_ERR_INVALID_MODEL, "initial state %d is missing", i);
            goto done;
        }
    }
    int64_t len = -1;
    for (int j = 0; j < M; j++) {
        const onyx_tensor *t = onyx_exec_input(x, N + j);
        if (!t) {
            st = onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "scan input %d is not a tensor", j);
            goto done;
        }
        int64_t a = s->in_axis[j];
        if (!onyx_op_norm_axis(a, t->ndim, &axis[j])) {
            st = onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                "scan_input_axes[%d] = %lld is out of range for rank %d", j,
                                (long long)a, t->ndim);
            goto done;
        }
        if (len >= 0 && t->dims[axis[j]] != len) {
            st = onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                "scan input %d has %lld steps, scan input 0 has %lld", j,
                                (long long)t->dims[axis[j]], (long long)len);
            goto done;
        }
        len = t->dims[axis[j]];
        scan_in[j] = *t;
    }
    scan9_ctx c = {.x = x, .s = s, .len = len, .out = out, .axis = axis + M};
    scan_run r = {.x = x, .body = body, .s = s, .state = state, .scan_in = scan_in, .axis = axis,
                  .len = len, .emit = scan9_emit, .ctx = &c};
    if ((st = scan_recur(&r, final))) goto done;
    for (int i = 0; i < N && i < n->n_out; i++)
        if ((st = onyx_op_put_value(x, i, &final[i]))) goto done;
    for (int k = 0; k < K && N + k < n->n_out; k++)
        if (!out[k] && onyx_exec_wants_output(x, N + k) &&
            (st = empty_scan_output(x, body, N + k, N + k, (int)s->out_axis[k])))
            goto done;
done:
    onyx_op_values_free(final, N);
    free(out);
    free(axis);
    free(scan_in);
    free(state);
    return st;
}

/* Opset 8 emit: output N+k is (B, max_len, elem...), zero-filled at its
 * allocation so that steps past a short sequence read as padding. */
typedef struct scan8_ctx {
    onyx_exec *x;
    const scan_state *s;
    int64_t batch, b, max_len;
    onyx_tensor **out;  /* (K) */
} scan8_ctx;

static onyx_status scan8_emit(void *ctx, int k, int64_t step, onyx_tensor *e) {
    scan8_ctx *c = ctx;
    onyx_exec *x = c->x;
    if (!onyx_exec_wants_output(x, c->s->n_state + k)) return ONYX_OK;
    if (!c->out[k]) {
        int r = e->ndim + 2;
        if (r > ONYX_MAX_DIMS)
            return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "scan output %d has rank %d (at most %d)",
                                  k, r, ONYX_MAX_DIMS);
        int64_t d[ONYX_MAX_DIMS] = {c->batch, c->max_len};
        memcpy(d + 2, e->dims, (size_t)e->ndim * sizeof d[0]);
        onyx_status st = onyx_exec_output(x, c->s->n_state + k, e->dtype, r, d, &c->out[k]);
        if (st) return st;
        size_t nb = onyx_tensor_nbytes(c->out[k]);
        if (nb) memset(c->out[k]->data, 0, nb);
    }
    onyx_tensor *o = c->out[k];
    bool ok = o->dtype == e->dtype && o->ndim == e->ndim + 2;
    for (int i = 0; ok && i < e->ndim; i++) ok = o->dims[i + 2] == e->dims[i];
    if (!ok)
        return onyx_exec_fail(x, ONYX_ERR_RUNTIME,
                              "scan output %d changes type or shape at batch %lld step %lld", k,
                              (long long)c->b, (long long)step);
    /* Viewed as (B * max_len, elem...), the slot is row b * max_len + step. */
    onyx_tensor flat = *o;
    flat.ndim = e->ndim + 1;
    flat.dims[0] = c->batch * c->max_len;
    memcpy(flat.dims + 1, e->dims, (size_t)e->ndim * sizeof e->dims[0]);
    put_slice(&flat, 0, flat.dims[0], c->b * c->max_len + step, e);
    return ONYX_OK;
}

static onyx_status scan8_run(const onyx_node *n, onyx_exec *x) {
    const scan_state *s = n->state;
    const onyx_graph *body = onyx_attr_graph(n, "body");
    int N = s->n_state, M = s->n_in, K = s->n_out;
    onyx_status st = ONYX_OK;
    const onyx_tensor **init = calloc((size_t)N + 1, sizeof *init);
    onyx_value *views = onyx_op_values_new(N); /* borrowed views: never cleared */
    const onyx_value **state = calloc((size_t)N + 1, sizeof *state);
    onyx_tensor *scan_in = calloc((size_t)M + 1, sizeof *scan_in);
    const onyx_tensor **full = calloc((size_t)M + 1, sizeof *full);
    int *axis = calloc((size_t)M + 1, sizeof *axis);
    onyx_tensor **out = calloc((size_t)K + 1, sizeof *out);
    onyx_tensor **fout = calloc((size_t)N + 1, sizeof *fout);
    onyx_value *final = onyx_op_values_new(N);
    if (!init || !views || !state || !scan_in || !full || !axis || !out || !fout || !final) {
        st = onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    int64_t batch = -1, max_len = -1;
    for (int j = 0; j < M; j++) {
        const onyx_tensor *t = onyx_exec_input(x, 1 + N + j);
        if (!t || t->ndim < 2) {
            st = onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                "scan input %d must be a tensor of rank >= 2 (batch, sequence, ...)",
                                j);
            goto done;
        }
        if ((batch >= 0 && t->dims[0] != batch) || (max_len >= 0 && t->dims[1] != max_len)) {
            st = onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                "scan inputs disagree on batch size or sequence length");
            goto done;
        }
        batch = t->dims[0];
        max_len = t->dims[1];
        full[j] = t;
    }
    for (int i = 0; i < N; i++) {
        init[i] = onyx_exec_input(x, 1 + i);
        if (!init[i] || init[i]->ndim < 1 || init[i]->dims[0] != batch) {
            st = onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                "initial state %d must be a tensor with batch size %lld", i,
                                (long long)batch);
            goto done;
        }
    }
    const onyx_tensor *lens = onyx_exec_input(x, 0);
    if (lens && onyx_tensor_count(lens) != batch) {
        st = onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                            "sequence_lens has %lld entries for batch size %lld",
                            (long long)onyx_tensor_count(lens), (long long)batch);
        goto done;
    }
    scan8_ctx c = {.x = x, .s = s, .batch = batch, .max_len = max_len, .out = out};
    for (int64_t b = 0; b < batch; b++) {
        int64_t len = lens ? onyx_tensor_get_i64(lens, b) : max_len;
        if (len < 0 || len > max_len) {
            st = onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                "sequence_lens[%lld] = %lld is outside [0, %lld]", (long long)b,
                                (long long)len, (long long)max_len);
            goto done;
        }
        /* Batch entry b of every input, as views without the batch axis;
         * scan inputs are cut to this entry's length. */
        for (int i = 0; i < N; i++) {
            onyx_tensor *v = &views[i].tensor;
            views[i].kind = ONYX_KIND_TENSOR;
            v->dtype = init[i]->dtype;
            v->ndim = init[i]->ndim - 1;
            memcpy(v->dims, init[i]->dims + 1, (size_t)v->ndim * sizeof v->dims[0]);
            v->data = (char *)init[i]->data + (size_t)b * onyx_tensor_nbytes(v);
            v->heap = NULL;
            state[i] = &views[i];
        }
        for (int j = 0; j < M; j++) {
            onyx_tensor *v = &scan_in[j];
            v->dtype = full[j]->dtype;
            v->ndim = full[j]->ndim - 1;
            memcpy(v->dims, full[j]->dims + 1, (size_t)v->ndim * sizeof v->dims[0]);
            v->data = (char *)full[j]->data + (size_t)b * onyx_tensor_nbytes(v);
            v->heap = NULL;
            v->dims[0] = len;
            axis[j] = 0;
        }
        c.b = b;
        scan_run r = {.x = x, .body = body, .s = s, .state = state, .scan_in = scan_in,
                      .axis = axis, .len = len, .emit = scan8_emit, .ctx = &c};
        if ((st = scan_recur(&r, final))) goto done;
        for (int i = 0; i < N; i++) {
            onyx_tensor *f = &final[i].tensor;
            if (final[i].kind != ONYX_KIND_TENSOR || f->ndim + 1 > ONYX_MAX_DIMS) {
                st = onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "state %d is not a tensor of rank < %d",
                                    i, ONYX_MAX_DIMS);
                goto done;
            }
            if (!onyx_exec_wants_output(x, i)) {
                onyx_value_clear(&final[i]);
                continue;
            }
            if (!fout[i]) {
                int64_t d[ONYX_MAX_DIMS] = {batch};
                memcpy(d + 1, f->dims, (size_t)f->ndim * sizeof d[0]);
                if ((st = onyx_exec_output(x, i, f->dtype, f->ndim + 1, d, &fout[i]))) goto done;
            }
            bool ok = fout[i]->dtype == f->dtype && fout[i]->ndim == f->ndim + 1;
            for (int d = 0; ok && d < f->ndim; d++) ok = fout[i]->dims[d + 1] == f->dims[d];
            if (!ok) {
                st = onyx_exec_fail(x, ONYX_ERR_RUNTIME,
                                    "final state %d differs in type or shape across the batch", i);
                goto done;
            }
            put_slice(fout[i], 0, batch, b, f);
            onyx_value_clear(&final[i]);
        }
    }
    for (int i = 0; i < N && batch == 0; i++) {
        if (!onyx_exec_wants_output(x, i)) continue;
        int64_t d[ONYX_MAX_DIMS];
        memcpy(d, init[i]->dims, sizeof d);
        if ((st = onyx_exec_output(x, i, init[i]->dtype, init[i]->ndim, d, &fout[i]))) goto done;
    }
    for (int k = 0; k < K; k++) {
        if (out[k] || !onyx_exec_wants_output(x, N + k)) continue;
        /* No step ran at all: (batch, max_len, elem...) of the declared type, zeroed. */
        onyx_dtype dt;
        int nd;
        int64_t d[ONYX_MAX_DIMS + 2];
        if ((st = declared_output(x, body, N + k, &dt, &nd, d + 2))) goto done;
        if (nd + 2 > ONYX_MAX_DIMS) {
            st = onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "scan output %d has too high a rank", k);
            goto done;
        }
        d[0] = batch;
        d[1] = max_len;
        if ((st = onyx_exec_output(x, N + k, dt, nd + 2, d, &out[k]))) goto done;
        size_t nb = onyx_tensor_nbytes(out[k]);
        if (nb) memset(out[k]->data, 0, nb);
    }
done:
    onyx_op_values_free(final, N);
    free(fout);
    free(out);
    free(axis);
    free(full);
    free(scan_in);
    free(state);
    free(views);
    free(init);
    return st;
}

// ----------------------------------------------------------------------------
// Registry

#define ROW(op, v, mi, xi, mo, xo, init, run) {"", op, v, mi, xi, mo, xo, 0, init, run, 0}

const onyx_op_schema onyx_ops_control[] = {
    ROW("If", 1, 1, 1, 1, -1, if_init, if_run),
    ROW("If", 11, 1, 1, 1, -1, if_init, if_run),
    ROW("If", 13, 1, 1, 1, -1, if_init, if_run),
    ROW("If", 16, 1, 1, 1, -1, if_init, if_run),
    ROW("If", 19, 1, 1, 1, -1, if_init, if_run),
    ROW("If", 21, 1, 1, 1, -1, if_init, if_run),
    ROW("If", 23, 1, 1, 1, -1, if_init, if_run),
    ROW("If", 24, 1, 1, 1, -1, if_init, if_run),
    ROW("Loop", 1, 0, -1, 1, -1, loop_init, loop_run),
    ROW("Loop", 11, 0, -1, 1, -1, loop_init, loop_run),
    ROW("Loop", 13, 0, -1, 1, -1, loop_init, loop_run),
    ROW("Loop", 16, 0, -1, 1, -1, loop_init, loop_run),
    ROW("Loop", 19, 0, -1, 1, -1, loop_init, loop_run),
    ROW("Loop", 21, 0, -1, 1, -1, loop_init, loop_run),
    ROW("Loop", 23, 0, -1, 1, -1, loop_init, loop_run),
    ROW("Loop", 24, 0, -1, 1, -1, loop_init, loop_run),
    ROW("Scan", 8, 2, -1, 1, -1, scan_init, scan8_run),
    ROW("Scan", 9, 1, -1, 1, -1, scan_init, scan9_run),
    ROW("Scan", 11, 1, -1, 1, -1, scan_init, scan9_run),
    ROW("Scan", 16, 1, -1, 1, -1, scan_init, scan9_run),
    ROW("Scan", 19, 1, -1, 1, -1, scan_init, scan9_run),
    ROW("Scan", 21, 1, -1, 1, -1, scan_init, scan9_run),
    ROW("Scan", 23, 1, -1, 1, -1, scan_init, scan9_run),
    ROW("Scan", 24, 1, -1, 1, -1, scan_init, scan9_run),
    {0},
};
