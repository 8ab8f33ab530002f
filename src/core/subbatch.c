/* subbatch.c - whether a graph is batch-separable: every output row i along
 * axis 0 depends only on row i of the inputs, so that a batch may run as
 * sub-batches whose outputs are slices of the full outputs (exec.c runs
 * them). Owns: that load-time analysis, a conservative whitelist of ops.
 */
#include "core/subbatch.h"

#include <stdlib.h>
#include <string.h>

typedef struct ctx {
    const onyx_graph *g;
    bool *batched; /* (n_slots) per-sample value, dim 0 = the batch */
    int *rank;     /* (n_slots) rank of a batched value */
} ctx;

static bool is(const onyx_node *n, const char *op) {
    return strcmp(n->op_type, op) == 0;
}

static bool any_of(const onyx_node *n, const char *const *ops) {
    for (; *ops; ops++)
        if (is(n, *ops)) return true;
    return false;
}

static bool B(const ctx *c, int s) {
    return s >= 0 && c->batched[s];
}

static const onyx_tensor *C(const ctx *c, int s) {
    const onyx_value *v = s >= 0 ? c->g->slots[s].constant : NULL;
    return v && v->kind == ONYX_KIND_TENSOR ? &v->tensor : NULL;
}

/* A constant that broadcasts into an output of rank r without extending
 * along axis 0. */
static bool const_nobatch(const ctx *c, int s, int r) {
    const onyx_tensor *t = C(c, s);
    return t && (t->ndim < r || (t->ndim >= 1 && t->dims[0] == 1));
}

/* Inputs from `from` on are omitted or constants. */
static bool rest_constant(const ctx *c, const onyx_node *n, int from) {
    for (int k = from; k < n->n_in; k++)
        if (n->in[k] >= 0 && !C(c, n->in[k])) return false;
    return true;
}

/* Outputs from `from` on are omitted. */
static bool rest_omitted(const onyx_node *n, int from) {
    for (int k = from; k < n->n_out; k++)
        if (n->out[k] >= 0) return false;
    return true;
}

static int norm_axis(int64_t axis, int r) {
    return (int)(axis < 0 ? axis + r : axis);
}

static const char *const UNARY[] = {"Relu",      "Sigmoid",    "Tanh",
                                    "Clip",      "LeakyRelu",  "HardSigmoid",
                                    "HardSwish", "Elu",        "Selu",
                                    "Softplus",  "Softsign",   "Abs",
                                    "Neg",       "Exp",        "Log",
                                    "Sqrt",      "Reciprocal", "Floor",
                                    "Ceil",      "Round",      "Erf",
                                    "Sin",       "Cos",        "Gelu",
                                    "Mish",      "Celu",       "ThresholdedRelu",
                                    "Sign",      "Not",        "Cast",
                                    "Identity",  "Dropout",    "LRN",
                                    NULL};
static const char *const ELEMENTWISE[] = {"Add", "Sub", "Mul",  "Div",   "Pow",   "Max",
                                          "Min", "Sum", "Mean", "PRelu", "Where", NULL};
static const char *const POOLS[] = {"MaxPool",       "AveragePool",  "LpPool", "GlobalAveragePool",
                                    "GlobalMaxPool", "GlobalLpPool", NULL};
static const char *const REDUCE[] = {
    "ReduceMean", "ReduceSum",    "ReduceMax",       "ReduceMin",       "ReduceProd", "ReduceL1",
    "ReduceL2",   "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", NULL};

/* Rank of node n's outputs when n is per-sample given what its inputs are,
 * else -1. */
static int node_rank(const ctx *c, const onyx_node *n, bool *has_conv) {
    int x = n->n_in > 0 ? n->in[0] : -1;
    int r = B(c, x) ? c->rank[x] : -1;
    if (is(n, "Conv") || is(n, "ConvTranspose")) {
        /* W and B constants; Conv's fused residual sum (passes.c) is a
         * per-sample value of the output's rank. */
        if (r < 3 || n->n_in < 2 || n->n_in > 4 || !C(c, n->in[1]) || !rest_omitted(n, 1))
            return -1;
        if (n->n_in > 2 && n->in[2] >= 0 && !C(c, n->in[2])) return -1;
        if (n->n_in > 3 && n->in[3] >= 0 &&
            !(is(n, "Conv") && B(c, n->in[3]) && c->rank[n->in[3]] == r))
            return -1;
        *has_conv = true;
        return r;
    }
    if (any_of(n, UNARY)) {
        if (r < 1 || !rest_constant(c, n, 1)) return -1;
        if (!is(n, "Dropout") && !rest_omitted(n, 1)) return -1;
        return r;
    }
    if (is(n, "BatchNormalization") || is(n, "InstanceNormalization")) {
        if (r < 2 || !rest_constant(c, n, 1) || !rest_omitted(n, 1) ||
            onyx_attr_int(n, "training_mode", 0) != 0)
            return -1;
        return r;
    }
    if (is(n, "LayerNormalization")) {
        int axis = norm_axis(onyx_attr_int(n, "axis", -1), r);
        return r >= 2 && axis >= 1 && axis < r && rest_constant(c, n, 1) ? r : -1;
    }
    if (any_of(n, POOLS)) {
        /* MaxPool's Indices count across the batch: they must be omitted. */
        return r >= 3 && rest_omitted(n, 1) && n->n_in == 1 ? r : -1;
    }
    if (is(n, "Flatten")) {
        return r >= 1 && norm_axis(onyx_attr_int(n, "axis", 1), r) == 1 ? 2 : -1;
    }
    if (is(n, "Gemm")) {
        if (r != 2 || onyx_attr_int(n, "transA", 0) != 0 || n->n_in < 2 || !C(c, n->in[1]))
            return -1;
        if (n->n_in > 2 && n->in[2] >= 0 && !const_nobatch(c, n->in[2], 2)) return -1;
        return 2;
    }
    if (is(n, "MatMul")) {
        const onyx_tensor *b = n->n_in >= 2 ? C(c, n->in[1]) : NULL;
        if (r < 2 || !b || b->ndim != 2 || n->n_in > 3) return -1;
        if (n->n_in > 2 && n->in[2] >= 0 && !const_nobatch(c, n->in[2], r)) return -1;
        return r;
    }
    if (any_of(n, ELEMENTWISE)) {
        int out = 0, nb = 0;
        for (int k = 0; k < n->n_in; k++) {
            int s = n->in[k];
            const onyx_tensor *t = C(c, s);
            if (B(c, s)) {
                nb++;
                if (c->rank[s] > out) out = c->rank[s];
            } else if (t) {
                if (t->ndim > out) out = t->ndim;
            } else {
                return -1;
            }
        }
        if (!nb || out < 1) return -1;
        for (int k = 0; k < n->n_in; k++) {
            int s = n->in[k];
            if (B(c, s) ? c->rank[s] != out : !const_nobatch(c, s, out)) return -1;
        }
        return out;
    }
    if (is(n, "Concat")) {
        for (int k = 0; k < n->n_in; k++)
            if (!B(c, n->in[k]) || c->rank[n->in[k]] != r) return -1;
        const onyx_pb_attr *a = onyx_attr_find(n, "axis");
        return r >= 1 && a && norm_axis(onyx_attr_int(n, "axis", 0), r) >= 1 ? r : -1;
    }
    if (is(n, "Softmax") || is(n, "LogSoftmax") || is(n, "Hardmax")) {
        int axis = norm_axis(onyx_attr_int(n, "axis", n->opset >= 13 ? -1 : 1), r);
        return r >= 2 && axis >= 1 && axis < r ? r : -1;
    }
    if (any_of(n, REDUCE)) {
        if (r < 2) return -1;
        const int64_t *axes = NULL;
        int64_t na = onyx_attr_ints(n, "axes", &axes);
        if (n->n_in >= 2 && n->in[1] >= 0) {
            const onyx_tensor *t = C(c, n->in[1]);
            if (na >= 0 || !t || t->dtype != ONYX_DTYPE_INT64 || t->ndim != 1) return -1;
            axes = t->data;
            na = t->dims[0];
        }
        if (na <= 0 || na > r) return -1; /* absent or empty: every axis */
        for (int64_t k = 0; k < na; k++) {
            int a = norm_axis(axes[k], r);
            if (a < 1 || a >= r) return -1;
            for (int64_t j = 0; j < k; j++)
                if (norm_axis(axes[j], r) == a) return -1;
        }
        return onyx_attr_int(n, "keepdims", 1) ? r : r - (int)na;
    }
    if (is(n, "Split")) {
        if (r < 2 || norm_axis(onyx_attr_int(n, "axis", 0), r) < 1 || !rest_constant(c, n, 1))
            return -1;
        return r;
    }
    if (is(n, "Transpose")) {
        const int64_t *perm = NULL;
        return r >= 1 && onyx_attr_ints(n, "perm", &perm) == r && perm[0] == 0 ? r : -1;
    }
    if (is(n, "Reshape")) {
        const onyx_tensor *t = n->n_in == 2 ? C(c, n->in[1]) : NULL;
        if (r < 1 || !t || t->dtype != ONYX_DTYPE_INT64 || t->ndim != 1 || t->dims[0] < 1 ||
            t->dims[0] > ONYX_MAX_DIMS || onyx_attr_int(n, "allowzero", 0) != 0)
            return -1;
        const int64_t *shape = t->data;
        int minus = 0;
        for (int64_t k = 0; k < t->dims[0]; k++) {
            if (shape[k] < -1 || (shape[k] == 0 && k >= r)) return -1;
            minus += shape[k] == -1;
        }
        return shape[0] == 0 && minus <= 1 ? (int)t->dims[0] : -1;
    }
    return -1;
}

bool onyx_subbatch_analyze(const onyx_graph *g, bool *has_conv) {
    *has_conv = false;
    if (g->n_inputs < 1 || g->n_outputs < 1) return false;
    ctx c = {.g = g};
    c.batched = calloc((size_t)g->n_slots + 1, sizeof *c.batched);
    c.rank = calloc((size_t)g->n_slots + 1, sizeof *c.rank);
    bool ok = c.batched && c.rank;
    const char *name0 = NULL;
    bool named = false, unnamed = false;
    for (int i = 0; ok && i < g->n_inputs; i++) {
        const onyx_slot *sl = &g->slots[g->inputs[i]];
        if (sl->constant || sl->kind != ONYX_KIND_TENSOR || sl->optional || sl->ndim < 1 ||
            sl->dims[0] >= 0) {
            ok = false;
            break;
        }
        if (sl->dim_names[0]) {
            if (named && strcmp(name0, sl->dim_names[0]) != 0) ok = false;
            name0 = sl->dim_names[0];
            named = true;
        } else {
            unnamed = true;
        }
        c.batched[g->inputs[i]] = true;
        c.rank[g->inputs[i]] = sl->ndim;
    }
    /* Either one name for every input's dim 0, or none named. */
    if (named && unnamed) ok = false;
    for (int i = 0; ok && i < g->n_nodes; i++) {
        const onyx_node *n = &g->nodes[i];
        if (!n->op || n->subgraphs || (g->implicit && g->implicit[i] && g->implicit[i][0] >= 0) ||
            (n->domain[0] && strcmp(n->domain, "ai.onnx") != 0)) {
            ok = false;
            break;
        }
        int r = node_rank(&c, n, has_conv);
        if (r < 1) {
            ok = false;
            break;
        }
        for (int k = 0; k < n->n_out; k++) {
            int s = n->out[k];
            if (s < 0) continue;
            if (g->slots[s].kind != ONYX_KIND_TENSOR && g->slots[s].kind != ONYX_KIND_NONE) {
                ok = false;
                break;
            }
            c.batched[s] = true;
            c.rank[s] = r;
        }
    }
    for (int j = 0; ok && j < g->n_outputs; j++)
        if (!c.batched[g->outputs[j]] || g->slots[g->outputs[j]].dtype == ONYX_DTYPE_STRING)
            ok = false;
    free(c.batched);
    free(c.rank);
    if (!ok) *has_conv = false;
    return ok;
}
