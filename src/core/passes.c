/* passes.c - graph rewrites at load, before node init: dropping no-op nodes
 * (Identity, inference Dropout); evaluating nodes whose inputs are all
 * constants (constant folding, Shape of inputs with static shapes); folding
 * BatchNormalization into the Conv before it; fusing a constant bias Add
 * into MatMul, a residual Add into Conv, an activation (SiLU included) into
 * the op that feeds it; replacing the Erf form of GELU and the decomposed
 * LayerNorm by their single ops.
 * Each pass keeps the model's meaning exactly; a pattern that does not match
 * every condition is left alone.
 * Does not own: kernels' own prepacking (their init does it).
 */
#include "core/exec.h"
#include "core/graph.h"
#include "core/registry.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// Rewiring helpers

static bool is_op(const onyx_node *n, const char *op_type) {
    return n->op && n->domain[0] == 0 && strcmp(n->op_type, op_type) == 0;
}

static bool is_graph_output(const onyx_graph *g, int slot) {
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i] == slot) return true;
    return false;
}

static bool is_graph_input(const onyx_graph *g, int slot) {
    for (int i = 0; i < g->n_inputs; i++)
        if (g->inputs[i] == slot) return true;
    return false;
}

/* Number of reads of `slot` by live nodes (subgraph captures included). */
static int count_uses(const onyx_graph *g, int slot) {
    int uses = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const onyx_node *n = &g->nodes[i];
        if (!n->op) continue;
        for (int k = 0; k < n->n_in; k++) uses += n->in[k] == slot;
        for (int *p = g->implicit[i]; p && *p >= 0; p++) uses += *p == slot;
    }
    return uses;
}

/* Makes every reader of slot `from` read `to` instead, including the
 * captures of subgraphs of this graph's nodes. */
static void rewire(onyx_graph *g, int from, int to) {
    for (int i = 0; i < g->n_nodes; i++) {
        onyx_node *n = &g->nodes[i];
        if (!n->op) continue;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] == from) n->in[k] = to;
        for (int *p = g->implicit[i]; p && *p >= 0; p++)
            if (*p == from) *p = to;
        if (!n->subgraphs) continue;
        for (int a = 0; a < n->n_attrs; a++) {
            onyx_graph *sub = (onyx_graph *)n->subgraphs[a];
            if (!sub) continue;
            for (int c = 0; c < sub->n_captures; c++)
                if (sub->slots[sub->captures[c]].outer == from) sub->slots[sub->captures[c]].outer = to;
        }
    }
}

/* Drops removed nodes (op == NULL) from the node list, and recomputes the
 * producers and last uses (node indices shift). */
static void compact(onyx_graph *g) {
    int k = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (!g->nodes[i].op) continue;
        g->nodes[k] = g->nodes[i];
        g->implicit[k] = g->implicit[i];
        k++;
    }
    g->n_nodes = k;
    onyx_graph_lifetimes(g);
}

/* Appends a slot holding constant `v` (owned by the model from now on). */
static int add_constant(onyx_model *m, onyx_graph *g, const char *name, onyx_value *v,
                        onyx_error *err) {
    onyx_slot *slots = onyx_arena_calloc(&m->arena, (size_t)g->n_slots + 2, sizeof *slots);
    if (!slots || onyx_model_keep_constant(m, v, err)) {
        if (!slots) onyx_value_free(v);
        return -1;
    }
    memcpy(slots, g->slots, (size_t)g->n_slots * sizeof *slots);
    g->slots = slots;
    int s = g->n_slots++;
    onyx_slot *sl = &slots[s];
    sl->name = name;
    sl->kind = ONYX_KIND_TENSOR;
    sl->dtype = v->tensor.dtype;
    sl->ndim = v->tensor.ndim;
    memcpy(sl->dims, v->tensor.dims, sizeof sl->dims);
    sl->producer = -1;
    sl->last_use = -1;
    sl->outer = -1;
    sl->constant = v;
    return s;
}

/* Slot s holds a value known at load: a constant that the caller cannot
 * replace (an initializer that is also a graph input is only a default,
 * which passes must not bake in; onnxruntime does the same). */
static bool fixed_constant(const onyx_graph *g, int s) {
    return s >= 0 && g->slots[s].constant && !is_graph_input(g, s);
}

/* The tensor in `slot` when it is a fixed constant, else NULL. */
static const onyx_tensor *const_tensor(const onyx_graph *g, int slot) {
    if (!fixed_constant(g, slot)) return NULL;
    const onyx_value *v = g->slots[slot].constant;
    return v->kind == ONYX_KIND_TENSOR ? &v->tensor : NULL;
}

static const float *const_f32(const onyx_graph *g, int slot, int64_t count) {
    const onyx_tensor *t = const_tensor(g, slot);
    if (!t || t->dtype != ONYX_DTYPE_FLOAT || onyx_tensor_count(t) != count) return NULL;
    return t->data;
}

// ----------------------------------------------------------------------------
// Identity and inference Dropout

static void drop_noops(onyx_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        onyx_node *n = &g->nodes[i];
        bool noop = is_op(n, "Identity") && n->n_in == 1;
        if (is_op(n, "Dropout") && n->n_in >= 1 && (n->n_out < 2 || n->out[1] < 0)) {
            /* training_mode (opset 12+) must be absent or a constant false */
            const onyx_tensor *tm = n->n_in >= 3 ? const_tensor(g, n->in[2]) : NULL;
            bool training = n->n_in >= 3 && n->in[2] >= 0 &&
                            (!tm || onyx_tensor_count(tm) != 1 || onyx_tensor_get_i64(tm, 0));
            noop = !training && onyx_attr_int(n, "is_test", 1) != 0;
        }
        if (!noop || n->in[0] < 0 || n->out[0] < 0 || is_graph_output(g, n->out[0])) continue;
        rewire(g, n->out[0], n->in[0]);
        n->op = NULL;
    }
}

// ----------------------------------------------------------------------------
// Constant folding

/* Ops whose result is not a function of their inputs and attributes alone:
 * never folded (a seeded generator restarts per run, but its draws are
 * still the run's to make). */
static const char *const random_ops[] = {
    "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli",
    "Multinomial",
};

/* Folded outputs may take this many times the bytes of the node's inputs,
 * or FOLD_MIN_BYTES whichever is larger: DequantizeLinear of int8 weights
 * (4x) folds, an Expand or Tile that blows a small constant up does not,
 * so that folding never costs much more memory than the weights. */
enum { FOLD_GROWTH = 4, FOLD_MIN_BYTES = 1 << 20 };

/* Whether node n may be evaluated at load; *in_bytes receives the bytes of
 * its inputs. */
static bool foldable(const onyx_graph *g, const onyx_node *n, size_t *in_bytes) {
    *in_bytes = 0;
    if (!n->op || n->subgraphs || n->n_out < 1) return false;
    /* A node without inputs is a generator: only Constant is known safe. */
    if (n->n_in == 0 && !is_op(n, "Constant")) return false;
    for (size_t i = 0; i < sizeof random_ops / sizeof *random_ops; i++)
        if (is_op(n, random_ops[i])) return false;
    for (int k = 0; k < n->n_in; k++) {
        if (n->in[k] < 0) continue;
        if (!fixed_constant(g, n->in[k])) return false;
        const onyx_value *v = g->slots[n->in[k]].constant;
        if (v->kind != ONYX_KIND_TENSOR) return false;
        *in_bytes += onyx_tensor_nbytes(&v->tensor);
    }
    bool any = false;
    for (int k = 0; k < n->n_out; k++) any |= n->out[k] >= 0;
    return any;
}

/* Makes slot s the constant v (model-owned from now on): its readers need
 * no rewiring, and its type and shape become v's. */
static onyx_status set_constant(onyx_model *m, onyx_graph *g, int s, onyx_value *v,
                                onyx_error *err) {
    if (onyx_model_keep_constant(m, v, err)) {
        onyx_value_free(v);
        return ONYX_ERR_OUT_OF_MEMORY;
    }
    onyx_slot *sl = &g->slots[s];
    sl->constant = v;
    sl->kind = ONYX_KIND_TENSOR;
    sl->optional = false;
    sl->dtype = v->tensor.dtype;
    sl->ndim = v->tensor.ndim;
    memcpy(sl->dims, v->tensor.dims, sizeof sl->dims);
    memset(sl->dim_names, 0, sizeof sl->dim_names);
    return ONYX_OK;
}

/* Evaluates node n (all inputs constant) and makes its outputs constants.
 * Returns ONYX_OK with *folded false when n cannot be folded (its init or
 * run fails, an output is not a plain tensor or too large): n then stays,
 * and reports the same failure, if any, at init or run time. Fails only
 * when out of memory while keeping the results. */
static onyx_status fold_node(onyx_model *m, onyx_graph *g, onyx_node *n, size_t in_bytes,
                             bool *folded, onyx_error *err) {
    *folded = false;
    size_t limit = FOLD_MIN_BYTES;
    if (in_bytes <= SIZE_MAX / FOLD_GROWTH && in_bytes * FOLD_GROWTH > limit)
        limit = in_bytes * FOLD_GROWTH;
    /* A private copy of the node: its state is this evaluation's only.
     * Without a graph it sees no constants at init, so it prepacks nothing
     * and releases no constant's memory (onyx_node_constant). */
    onyx_node tmp = *n;
    tmp.graph = NULL;
    tmp.state = NULL;
    onyx_error scratch_err = {0};
    onyx_value *out = calloc((size_t)n->n_out, sizeof *out);
    if (!out) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory folding constants");
    onyx_status st = ONYX_OK;
    int kept = m->n_constants;
    bool ran = (!tmp.op->init || !tmp.op->init(&tmp, &scratch_err)) &&
               !onyx_exec_run_node(g, &tmp, limit, out, &scratch_err);
    /* Tensors the evaluation's init converted from attributes (Constant's
     * value) are its own: the results are copies, and a node left unfolded
     * gets its own init later. */
    for (int i = kept; i < m->n_constants; i++) onyx_value_free(m->constants[i]);
    m->n_constants = kept;
    if (!ran) goto done;
    size_t out_bytes = 0;
    for (int k = 0; k < n->n_out; k++) {
        if (n->out[k] < 0) continue;
        if (out[k].kind != ONYX_KIND_TENSOR || out[k].is_optional) goto done;
        out_bytes += onyx_tensor_nbytes(&out[k].tensor);
    }
    if (out_bytes > limit) goto done;
    for (int k = 0; k < n->n_out; k++) {
        if (n->out[k] < 0) continue;
        onyx_value *v = malloc(sizeof *v);
        if (!v) {
            st = onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory folding constants");
            goto done;
        }
        *v = out[k];
        memset(&out[k], 0, sizeof out[k]);
        if ((st = set_constant(m, g, n->out[k], v, err))) goto done;
    }
    n->op = NULL;
    *folded = true;
done:
    for (int k = 0; k < n->n_out; k++) onyx_value_clear(&out[k]);
    free(out);
    return st;
}

/* Shape and Size of a top-level graph input whose declared shape is fully
 * static: the session checks inputs against their declared shapes, so the
 * result is known at load. Values inside the graph have no shapes at load
 * (there is no shape inference), and subgraph inputs are not checked. */
static onyx_status fold_static_shape(onyx_model *m, onyx_graph *g, onyx_node *n, bool *folded,
                                     onyx_error *err) {
    *folded = false;
    bool shape = is_op(n, "Shape"), size = is_op(n, "Size");
    if ((!shape && !size) || n->n_in != 1 || n->n_out != 1 || n->out[0] < 0) return ONYX_OK;
    int s = n->in[0];
    if (s < 0 || !is_graph_input(g, s)) return ONYX_OK;
    const onyx_slot *sl = &g->slots[s];
    if (sl->constant || sl->optional || sl->kind != ONYX_KIND_TENSOR || sl->ndim < 0)
        return ONYX_OK;
    int64_t count = onyx_dims_count(sl->ndim, sl->dims);
    if (count < 0) return ONYX_OK; /* a dim is symbolic */
    int64_t start = 0, end = sl->ndim;
    if (shape && n->opset >= 15) {
        start = onyx_attr_int(n, "start", 0);
        end = onyx_attr_int(n, "end", sl->ndim);
        start = start < 0 ? start + sl->ndim : start;
        end = end < 0 ? end + sl->ndim : end;
        start = start < 0 ? 0 : start > sl->ndim ? sl->ndim : start;
        end = end < 0 ? 0 : end > sl->ndim ? sl->ndim : end;
    }
    int64_t len = end > start ? end - start : 0;
    onyx_value *v = calloc(1, sizeof *v);
    if (!v || onyx_tensor_alloc(&v->tensor, ONYX_DTYPE_INT64, shape ? 1 : 0, &len)) {
        free(v);
        return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory folding constants");
    }
    v->kind = ONYX_KIND_TENSOR;
    int64_t *o = v->tensor.data;
    if (shape)
        for (int64_t i = 0; i < len; i++) o[i] = sl->dims[start + i];
    else
        o[0] = count;
    onyx_status st = set_constant(m, g, n->out[0], v, err);
    if (st) return onyx_errorf(err, st, "out of memory folding constants");
    n->op = NULL;
    *folded = true;
    return ONYX_OK;
}

/* Evaluates, in node order, every node whose inputs are all constants
 * (initializers, Constant nodes, nodes folded before it) and replaces it by
 * its results, so that the passes after it and the ops' init (prepacking)
 * see constant weights where the model computes them from constants:
 * Transpose or Cast of weights (tf2onnx), DequantizeLinear of quantized
 * weights (QDQ models), Constant -> Unsqueeze -> Concat shape chains. */
static onyx_status fold_constants(onyx_model *m, onyx_graph *g, bool checked_inputs,
                                  onyx_error *err) {
    for (int i = 0; i < g->n_nodes; i++) {
        onyx_node *n = &g->nodes[i];
        if (!n->op) continue;
        bool folded = false;
        size_t in_bytes;
        onyx_status st = ONYX_OK;
        if (checked_inputs) st = fold_static_shape(m, g, n, &folded, err);
        if (!st && !folded && foldable(g, n, &in_bytes))
            st = fold_node(m, g, n, in_bytes, &folded, err);
        if (st) return st;
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Conv + BatchNormalization

/* d[j] = x[j] * s for j < n; d may be x (in place), or not overlap it.
 * Eight at a time in a block the compiler turns into vector code (at -O2 it
 * does not vectorize a loop of unknown length), so folding a large model's
 * weights runs at memory speed. */
static void scale_row(float *d, const float *x, int64_t n, float s) {
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
        float t[8];
        for (int q = 0; q < 8; q++) t[q] = x[j + q] * s;
        for (int q = 0; q < 8; q++) d[j + q] = t[q];
    }
    for (; j < n; j++) d[j] = x[j] * s;
}

/* Y = BN(Conv(X, W, B)) with constant parameters becomes Conv(X, W', B'):
 * W'[k] = W[k] * s[k], B'[k] = (B[k] - mean[k]) * s[k] + bias[k], with
 * s = scale / sqrt(var + epsilon). */
static onyx_status fold_batchnorm(onyx_model *m, onyx_graph *g, onyx_error *err) {
    for (int i = 0; i < g->n_nodes; i++) {
        onyx_node *bn = &g->nodes[i];
        if (!is_op(bn, "BatchNormalization") || bn->n_in != 5 || bn->n_out != 1 ||
            onyx_attr_int(bn, "training_mode", 0) != 0 || bn->in[0] < 0)
            continue;
        int y = bn->in[0];
        int p = g->slots[y].producer;
        if (p < 0 || p >= g->n_nodes) continue;
        onyx_node *conv = &g->nodes[p];
        if (!is_op(conv, "Conv") || conv->n_out != 1 || conv->out[0] != y || conv->n_in < 2 ||
            is_graph_output(g, y) || count_uses(g, y) != 1)
            continue;
        const onyx_tensor *w = const_tensor(g, conv->in[1]);
        if (!w || w->dtype != ONYX_DTYPE_FLOAT || w->ndim < 3) continue;
        int64_t k = w->dims[0], per = onyx_tensor_count(w) / (k ? k : 1);
        const float *b = conv->n_in >= 3 && conv->in[2] >= 0 ? const_f32(g, conv->in[2], k) : NULL;
        if (conv->n_in >= 3 && conv->in[2] >= 0 && !b) continue;
        const float *scale = const_f32(g, bn->in[1], k), *bias = const_f32(g, bn->in[2], k);
        const float *mean = const_f32(g, bn->in[3], k), *var = const_f32(g, bn->in[4], k);
        if (!scale || !bias || !mean || !var) continue;
        float eps = onyx_attr_float(bn, "epsilon", 1e-5f);

        /* A W the load already copied (misaligned in the file) that only
         * this Conv reads is folded where it is, instead of into a new copy. */
        int ws_slot = conv->in[1];
        bool in_place = w->heap && count_uses(g, ws_slot) == 1 && !is_graph_output(g, ws_slot);
        onyx_value *nw = in_place ? NULL : calloc(1, sizeof *nw), *nb = calloc(1, sizeof *nb);
        int64_t bdims[1] = {k};
        if ((!in_place && (!nw || onyx_tensor_alloc(&nw->tensor, ONYX_DTYPE_FLOAT, w->ndim,
                                                    w->dims))) ||
            !nb || onyx_tensor_alloc(&nb->tensor, ONYX_DTYPE_FLOAT, 1, bdims)) {
            onyx_value_free(nw);
            onyx_value_free(nb);
            return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory folding batch norm");
        }
        if (nw) {
            nw->kind = ONYX_KIND_TENSOR;
            /* its fresh pages in one call, not a fault each */
            onyx_pages_populate(nw->tensor.data, onyx_tensor_nbytes(&nw->tensor));
        }
        nb->kind = ONYX_KIND_TENSOR;
        /* (in place: the model owns the copy, so writing it is safe) */
        float *wd = in_place ? (float *)w->data : nw->tensor.data, *bd = nb->tensor.data;
        const float *ws = w->data;
        for (int64_t o = 0; o < k; o++) {
            float s = scale[o] / sqrtf(var[o] + eps);
            scale_row(wd + o * per, ws + o * per, per, s);
            bd[o] = ((b ? b[o] : 0.0f) - mean[o]) * s + bias[o];
        }
        int sw = in_place ? ws_slot : add_constant(m, g, g->slots[ws_slot].name, nw, err);
        if (sw < 0) {
            onyx_value_free(nb);
            return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory folding batch norm");
        }
        int sb = add_constant(m, g, g->slots[bn->in[2]].name, nb, err);
        if (sb < 0) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory folding batch norm");
        /* node->in has room for n_in + 1 entries (graph.c), so B fits. */
        conv->in[1] = sw;
        conv->in[2] = sb;
        if (conv->n_in < 3) conv->n_in = 3;
        conv->out[0] = bn->out[0];
        bn->op = NULL;
        onyx_graph_lifetimes(g);
        /* the replaced weights go now, before the next fold allocates */
        onyx_model_release_unused(m, g);
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Element types of intermediate values

/* Ops whose (first) output has the element type of their first typed input
 * (the data input): enough to know that the values between the float32
 * layers of a network are float32 when the model declares only its inputs. */
static const char *const same_type_ops[] = {
    "Abs", "Add", "AveragePool", "BatchNormalization", "Clip", "Concat", "Conv", "Div", "Elu",
    "Erf", "Exp", "Flatten", "Gelu", "Gemm", "GlobalAveragePool", "GlobalMaxPool",
    "HardSigmoid", "HardSwish", "LayerNormalization", "LeakyRelu", "MatMul", "Max", "MaxPool",
    "Min", "Mul", "Neg", "Pad", "Pow", "PRelu", "ReduceMean", "Relu", "Reshape", "Resize",
    "Sigmoid", "Slice", "Softmax", "Split", "Sqrt", "Squeeze", "Sub", "Sum", "Tanh",
    "Transpose", "Unsqueeze",
};

static bool keeps_type(const onyx_node *n) {
    if (!n->op || n->domain[0]) return false;
    for (size_t i = 0; i < sizeof same_type_ops / sizeof *same_type_ops; i++)
        if (!strcmp(n->op_type, same_type_ops[i])) return true;
    return false;
}

/* The element type of every slot: declared (inputs, constants, value_info)
 * or carried forward through keeps_type ops in node order; UNDEFINED where
 * unknown. NULL when out of memory (callers then fuse nothing). */
static onyx_dtype *infer_types(const onyx_graph *g) {
    onyx_dtype *t = malloc((size_t)(g->n_slots ? g->n_slots : 1) * sizeof *t);
    if (!t) return NULL;
    for (int s = 0; s < g->n_slots; s++) t[s] = g->slots[s].dtype;
    for (int i = 0; i < g->n_nodes; i++) {
        const onyx_node *n = &g->nodes[i];
        if (!keeps_type(n)) continue;
        onyx_dtype in = ONYX_DTYPE_UNDEFINED;
        for (int k = 0; k < n->n_in && in == ONYX_DTYPE_UNDEFINED; k++)
            if (n->in[k] >= 0) in = t[n->in[k]];
        /* Only Split's outputs all share the data type (BatchNormalization's
         * and LayerNormalization's statistics may not). */
        int outs = strcmp(n->op_type, "Split") ? 1 : n->n_out;
        for (int k = 0; k < outs && k < n->n_out; k++)
            if (n->out[k] >= 0 && t[n->out[k]] == ONYX_DTYPE_UNDEFINED) t[n->out[k]] = in;
    }
    return t;
}

/* Whether node `p` produces `y` as its single output, read once, by a
 * node that may absorb it: the producer side of every fusion below. */
static bool fusable_producer(const onyx_graph *g, int p, int y, int readers) {
    if (p < 0 || p >= g->n_nodes) return false;
    const onyx_node *op = &g->nodes[p];
    return op->op && op->n_out == 1 && op->out[0] == y && !is_graph_output(g, y) &&
           count_uses(g, y) == readers;
}

/* The node producing `slot` when it is a live `op_type` node with one output
 * that only one node reads and that is not a graph output; else NULL. */
static onyx_node *sole_producer(onyx_graph *g, int slot, const char *op_type) {
    int p = slot >= 0 ? g->slots[slot].producer : -1;
    if (!fusable_producer(g, p, slot, 1) || !is_op(&g->nodes[p], op_type)) return NULL;
    return &g->nodes[p];
}

// ----------------------------------------------------------------------------
// Residual sum into Conv

/* Add(Conv(X, W, B), S) becomes Conv(X, W, B, S): a fourth input that
 * ops/conv.c adds before the fused activation (so a Relu after the Add fuses
 * too). The Conv moves to the Add's place in the node order, where S is
 * ready. Shapes are not known here; conv.c broadcasts S when it differs from
 * the convolution's shape. */
static onyx_status fuse_conv_sum(onyx_model *m, onyx_graph *g, const onyx_dtype *types,
                                 onyx_error *err) {
    for (int i = 0; i < g->n_nodes; i++) {
        onyx_node *add = &g->nodes[i];
        if (!is_op(add, "Add") || add->opset < 7 || add->n_in != 2 || add->n_out != 1 ||
            add->in[0] < 0 || add->in[1] < 0 || add->in[0] == add->in[1] ||
            types[add->out[0]] != ONYX_DTYPE_FLOAT)
            continue;
        for (int k = 0; k < 2; k++) {
            int y = add->in[k];
            onyx_node *conv = sole_producer(g, y, "Conv");
            if (!conv || conv->n_in > 3 || conv->act.kind != ONYX_ACT_NONE ||
                types[y] != ONYX_DTYPE_FLOAT)
                continue;
            int *in = onyx_arena_alloc(&m->arena, 4 * sizeof *in);
            if (!in) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory fusing Add");
            for (int j = 0; j < 3; j++) in[j] = j < conv->n_in ? conv->in[j] : -1;
            in[3] = add->in[1 - k];
            onyx_node fused = *conv;
            fused.in = in;
            fused.n_in = 4;
            fused.out = add->out;
            conv->op = NULL;
            *add = fused;
            onyx_graph_lifetimes(g);
            break;
        }
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Activation fusion

/* Reads the activation computed by node `n` into *act; false when `n` is
 * not a fusable float activation (Clip needs constant bounds). */
static bool activation_of(const onyx_graph *g, const onyx_node *n, onyx_act *act) {
    act->a = act->b = 0.0f;
    if (n->n_in < 1 || n->n_out != 1) return false;
    if (is_op(n, "Relu")) {
        act->kind = ONYX_ACT_RELU;
    } else if (is_op(n, "LeakyRelu")) {
        act->kind = ONYX_ACT_LEAKY_RELU;
        act->a = onyx_attr_float(n, "alpha", 0.01f);
    } else if (is_op(n, "Sigmoid")) {
        act->kind = ONYX_ACT_SIGMOID;
    } else if (is_op(n, "Tanh")) {
        act->kind = ONYX_ACT_TANH;
    } else if (is_op(n, "HardSigmoid")) {
        act->kind = ONYX_ACT_HARD_SIGMOID;
        act->a = onyx_attr_float(n, "alpha", 0.2f);
        act->b = onyx_attr_float(n, "beta", 0.5f);
    } else if (is_op(n, "HardSwish")) {
        act->kind = ONYX_ACT_HARD_SWISH;
    } else if (is_op(n, "Clip")) {
        act->kind = ONYX_ACT_CLIP;
        if (n->opset < 11) {
            act->a = onyx_attr_float(n, "min", -INFINITY);
            act->b = onyx_attr_float(n, "max", INFINITY);
            return true;
        }
        act->a = -INFINITY;
        act->b = INFINITY;
        for (int k = 1; k < 3 && k < n->n_in; k++) {
            if (n->in[k] < 0) continue;
            const float *v = const_f32(g, n->in[k], 1);
            if (!v) return false;
            if (k == 1) act->a = *v;
            else act->b = *v;
        }
    } else {
        return false;
    }
    return true;
}

/* The producer of `y` when it applies fused activations, has none yet, and
 * `readers` nodes read y; else NULL. */
static onyx_node *act_target(onyx_graph *g, const onyx_dtype *types, int y, int readers) {
    int p = y >= 0 ? g->slots[y].producer : -1;
    if (!fusable_producer(g, p, y, readers) || types[y] != ONYX_DTYPE_FLOAT) return NULL;
    onyx_node *op = &g->nodes[p];
    if (!(op->op->flags & ONYX_OP_FUSES_ACT) || op->act.kind != ONYX_ACT_NONE) return NULL;
    return op;
}

/* X -> Op -> Act becomes X -> Op[act] when Op applies fused activations,
 * its output is float32, and Act is its only reader. */
static void fuse_activations(onyx_graph *g, const onyx_dtype *types) {
    for (int i = 0; i < g->n_nodes; i++) {
        onyx_node *a = &g->nodes[i];
        onyx_act act;
        if (!a->op || !activation_of(g, a, &act) || a->in[0] < 0) continue;
        onyx_node *op = act_target(g, types, a->in[0], 1);
        if (!op) continue;
        op->act = act;
        op->out[0] = a->out[0];
        a->op = NULL;
        onyx_graph_lifetimes(g);
    }
}

/* Mul(X, Sigmoid(X)) (SiLU, as torch exports it) becomes Op[silu] when X
 * comes from an op that fuses activations and is read only by the two. */
static void fuse_silu(onyx_graph *g, const onyx_dtype *types) {
    for (int i = 0; i < g->n_nodes; i++) {
        onyx_node *mul = &g->nodes[i];
        if (!is_op(mul, "Mul") || mul->n_in != 2 || mul->n_out != 1) continue;
        for (int k = 0; k < 2; k++) {
            int x = mul->in[1 - k];
            onyx_node *sig = sole_producer(g, mul->in[k], "Sigmoid");
            if (x < 0 || !sig || sig->n_in != 1 || sig->in[0] != x) continue;
            onyx_node *op = act_target(g, types, x, 2);
            if (!op) continue;
            op->act.kind = ONYX_ACT_SILU;
            op->out[0] = mul->out[0];
            sig->op = NULL;
            mul->op = NULL;
            onyx_graph_lifetimes(g);
            break;
        }
    }
}

// ----------------------------------------------------------------------------
// MatMul + bias

/* Add(MatMul(A, W), b) (either operand order) with a constant float32 2-D W
 * [K, N] and a constant float32 1-D b [N] becomes MatMul(A, W, b): matmul.c
 * adds b to each row of the product while it is in cache. The product has
 * N columns, so the Add's broadcast shape is the product's own. */
static void fuse_matmul_bias(onyx_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        onyx_node *add = &g->nodes[i];
        if (!is_op(add, "Add") || add->n_in != 2 || add->n_out != 1) continue;
        for (int side = 0; side < 2; side++) {
            int y = add->in[side], bs = add->in[1 - side];
            onyx_node *mm = bs >= 0 ? sole_producer(g, y, "MatMul") : NULL;
            if (!mm || mm->n_in != 2 || mm->act.kind != ONYX_ACT_NONE) continue;
            const onyx_tensor *w = const_tensor(g, mm->in[1]), *b = const_tensor(g, bs);
            if (!w || w->dtype != ONYX_DTYPE_FLOAT || w->ndim != 2 || !b || b->ndim != 1 ||
                b->dtype != ONYX_DTYPE_FLOAT || b->dims[0] != w->dims[1])
                continue;
            /* node->in has room for n_in + 1 entries (graph.c). */
            mm->in[2] = bs;
            mm->n_in = 3;
            mm->out[0] = add->out[0];
            add->op = NULL;
            onyx_graph_lifetimes(g);
            break;
        }
    }
}

// ----------------------------------------------------------------------------
// Transformer patterns: the Erf GELU and the decomposed LayerNorm

/* The value of a constant float32 scalar (one element) in `slot`. */
static bool const_scalar(const onyx_graph *g, int slot, float *v) {
    const float *p = const_f32(g, slot, 1);
    if (p) *v = *p;
    return p != NULL;
}

/* For a two-input node: which input holds a constant float32 scalar equal
 * to `want` (within tol): 0 or 1, else -1. */
static int scalar_side(const onyx_graph *g, const onyx_node *n, float want, float tol) {
    if (n->n_in != 2) return -1;
    for (int k = 0; k < 2; k++) {
        float v;
        if (const_scalar(g, n->in[k], &v) && fabsf(v - want) <= tol) return k;
    }
    return -1;
}

/* Turns node n into the internal op (op_type, opset) of the registry. */
static bool become(onyx_node *n, const char *op_type, int opset) {
    const onyx_op_schema *op = onyx_registry_find("", op_type, opset, NULL);
    if (!op) return false;
    n->op = op;
    n->op_type = op->op_type;
    n->opset = opset;
    n->n_attrs = 0;
    n->attrs = NULL;
    return true;
}

/* Mul(Mul(x, Add(Erf(Div(x, sqrt 2)), 1)), 0.5) (torch's export of the exact
 * GELU, commutative operands in either order) becomes Gelu(x) (ai.onnx
 * opset 20, approximate "none"), which computes the same formula. */
static void fuse_gelu(onyx_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        onyx_node *half = &g->nodes[i];
        if (!half->op || !is_op(half, "Mul") || half->n_out != 1) continue;
        int hs = scalar_side(g, half, 0.5f, 0.0f);
        if (hs < 0) continue;
        onyx_node *mul = sole_producer(g, half->in[1 - hs], "Mul");
        if (!mul || mul->n_in != 2) continue;
        for (int side = 0; side < 2; side++) {
            int xs = mul->in[side];
            onyx_node *add = sole_producer(g, mul->in[1 - side], "Add");
            int as = add ? scalar_side(g, add, 1.0f, 0.0f) : -1;
            onyx_node *erf = as >= 0 ? sole_producer(g, add->in[1 - as], "Erf") : NULL;
            onyx_node *div = erf && erf->n_in == 1 ? sole_producer(g, erf->in[0], "Div") : NULL;
            if (!div || div->n_in != 2 || div->in[0] != xs) continue;
            float c;
            if (!const_scalar(g, div->in[1], &c) || fabsf(c - 1.41421356f) > 1e-6f) continue;
            if (!become(half, "Gelu", 20)) return;
            half->in[0] = xs;
            half->n_in = 1;
            mul->op = add->op = erf->op = div->op = NULL;
            onyx_graph_lifetimes(g);
            break;
        }
    }
}

/* The affine LayerNorm torch exports below opset 17 (axis -1):
 *   m = ReduceMean(x), d = Sub(x, m), v = ReduceMean(Pow(d, 2)),
 *   y = Add(Mul(Div(d, Sqrt(Add(v, eps))), gamma), beta)
 * with constant 1-D gamma and beta becomes LayerNormalization(x, gamma,
 * beta, axis=-1, epsilon=eps) (opset 17). */
static bool reduces_last_axis(const onyx_graph *g, const onyx_node *n) {
    if (!n->op || !is_op(n, "ReduceMean") || n->n_out != 1 || onyx_attr_int(n, "keepdims", 1) != 1)
        return false;
    const int64_t *axes = NULL;
    int64_t count = onyx_attr_ints(n, "axes", &axes);
    if (n->n_in >= 2 && n->in[1] >= 0) {
        const onyx_tensor *t = const_tensor(g, n->in[1]);
        if (!t || t->dtype != ONYX_DTYPE_INT64 || onyx_tensor_count(t) != 1) return false;
        axes = t->data;
        count = 1;
    }
    if (count != 1) return false;
    int nd = n->in[0] >= 0 ? g->slots[n->in[0]].ndim : -1;
    return axes[0] == -1 || (nd > 0 && axes[0] == nd - 1);
}

static onyx_status fuse_layernorm(onyx_model *m, onyx_graph *g, onyx_error *err) {
    for (int i = 0; i < g->n_nodes; i++) {
        onyx_node *add_b = &g->nodes[i];
        if (!add_b->op || !is_op(add_b, "Add") || add_b->n_in != 2 || add_b->n_out != 1) continue;
        for (int side = 0; side < 2; side++) {
            int beta = add_b->in[1 - side];
            const onyx_tensor *bt = const_tensor(g, beta);
            onyx_node *mul_g = sole_producer(g, add_b->in[side], "Mul");
            if (!bt || bt->dtype != ONYX_DTYPE_FLOAT || bt->ndim != 1 || !mul_g || mul_g->n_in != 2)
                continue;
            int gs = -1;
            for (int k = 0; k < 2 && gs < 0; k++) {
                const onyx_tensor *t = const_tensor(g, mul_g->in[k]);
                if (t && t->dtype == ONYX_DTYPE_FLOAT && t->ndim == 1 && t->dims[0] == bt->dims[0])
                    gs = k;
            }
            if (gs < 0) continue;
            int gamma = mul_g->in[gs];
            onyx_node *div = sole_producer(g, mul_g->in[1 - gs], "Div");
            onyx_node *sqr = div && div->n_in == 2 ? sole_producer(g, div->in[1], "Sqrt") : NULL;
            onyx_node *add_e = sqr && sqr->n_in == 1 ? sole_producer(g, sqr->in[0], "Add") : NULL;
            int es = add_e ? scalar_side(g, add_e, 0.0f, INFINITY) : -1;
            onyx_node *var = es >= 0 ? sole_producer(g, add_e->in[1 - es], "ReduceMean") : NULL;
            onyx_node *pow = var && reduces_last_axis(g, var) ? sole_producer(g, var->in[0], "Pow")
                                                              : NULL;
            if (!pow || scalar_side(g, pow, 2.0f, 0.0f) != 1) continue;
            /* d = Sub(x, mean) feeds exactly Pow and Div. */
            int d = div->in[0];
            if (pow->in[0] != d || d < 0 || is_graph_output(g, d) || count_uses(g, d) != 2)
                continue;
            int p = g->slots[d].producer;
            onyx_node *sub = p >= 0 && p < g->n_nodes ? &g->nodes[p] : NULL;
            if (!sub || !sub->op || !is_op(sub, "Sub") || sub->n_in != 2 || sub->n_out != 1)
                continue;
            onyx_node *mean = sole_producer(g, sub->in[1], "ReduceMean");
            if (!mean || !reduces_last_axis(g, mean) || mean->in[0] != sub->in[0]) continue;
            float eps = -1.0f;
            if (!const_scalar(g, add_e->in[es], &eps) || !(eps >= 0.0f)) continue;
            onyx_pb_attr *attrs = onyx_arena_calloc(&m->arena, 2, sizeof *attrs);
            if (!attrs) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory fusing LayerNorm");
            int x = sub->in[0];
            if (!become(add_b, "LayerNormalization", 17)) return ONYX_OK;
            attrs[0] = (onyx_pb_attr){.name = "axis", .type = ONYX_PB_ATTR_INT, .i = -1};
            attrs[1] = (onyx_pb_attr){.name = "epsilon", .type = ONYX_PB_ATTR_FLOAT, .f = eps};
            add_b->attrs = attrs;
            add_b->n_attrs = 2;
            /* node->in has room for n_in + 1 entries (graph.c): 3 fit. */
            add_b->in[0] = x;
            add_b->in[1] = gamma;
            add_b->in[2] = beta;
            add_b->n_in = 3;
            mean->op = sub->op = pow->op = var->op = add_e->op = sqr->op = div->op = NULL;
            mul_g->op = NULL;
            onyx_graph_lifetimes(g);
            break;
        }
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------

onyx_status onyx_graph_optimize(onyx_model *m, onyx_graph *g, bool checked_inputs,
                                onyx_error *err) {
    onyx_graph_lifetimes(g);
    drop_noops(g);
    compact(g);
    onyx_status st = fold_constants(m, g, checked_inputs, err);
    compact(g);
    if (st) return st;
    st = fold_batchnorm(m, g, err);
    compact(g);
    if (st) return st;
    fuse_matmul_bias(g);
    compact(g);
    fuse_gelu(g);
    compact(g);
    st = fuse_layernorm(m, g, err);
    compact(g);
    if (st) return st;
    /* after the passes that add constants: one entry per slot */
    onyx_dtype *types = infer_types(g);
    if (!types) return ONYX_OK;
    st = fuse_conv_sum(m, g, types, err);
    compact(g);
    if (!st) {
        fuse_silu(g, types);
        fuse_activations(g, types);
        compact(g);
    }
    free(types);
    return st;
}
