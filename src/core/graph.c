/* graph.c - builds the IR (graph.h) from a decoded ModelProto.
 *
 * Owns: name resolution with outer scopes, model-local function inlining,
 * op resolution and arity checks, subgraph compilation, topological order and
 * cycle detection, and value lifetimes. Every failure names the node, the op
 * and the cause. Does not own: decoding (src/onnx/) or running (exec.c).
 */
#include "core/graph.h"

#include "base/log.h"
#include "core/attr_table.h"
#include "core/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_FUNCTION_DEPTH = 32, MAX_GRAPH_DEPTH = 32 };

/* A node to build: the decoded node (possibly an inlined copy) and the opset
 * imports that resolve its domain (the model's, or its function's). */
typedef struct pending_node {
    const onyx_pb_node *pb;
    const onyx_pb_opset *opsets;
    int n_opsets;
} pending_node;

typedef struct scope scope;
struct scope {
    scope *parent;
    onyx_model *model;
    int depth;
    onyx_slot *slots; /* growable, copied into the arena at the end */
    int n_slots, cap_slots;
    int *captures;
    int n_captures, cap_captures;
    /* name -> slot, open addressing */
    const char **keys;
    int *vals;
    int hcap, hcount;
};

// ----------------------------------------------------------------------------
// Growable arrays and the name table

static int grow(void **arr, int *cap, int need, size_t elem) {
    if (need <= *cap) return 0;
    int nc = *cap ? *cap * 2 : 16;
    while (nc < need) nc *= 2;
    void *p = realloc(*arr, (size_t)nc * elem);
    if (!p) return -1;
    *arr = p;
    *cap = nc;
    return 0;
}

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int lookup_local(const scope *sc, const char *name) {
    if (!sc->hcap) return -1;
    for (uint64_t i = hash_str(name) & (uint64_t)(sc->hcap - 1);; i = (i + 1) & (uint64_t)(sc->hcap - 1)) {
        if (!sc->keys[i]) return -1;
        if (strcmp(sc->keys[i], name) == 0) return sc->vals[i];
    }
}

static int table_put(scope *sc, const char *name, int slot) {
    if (2 * (sc->hcount + 1) > sc->hcap) {
        int nc = sc->hcap ? sc->hcap * 2 : 64;
        const char **nk = calloc((size_t)nc, sizeof *nk);
        int *nv = calloc((size_t)nc, sizeof *nv);
        if (!nk || !nv) {
            free(nk);
            free(nv);
            return -1;
        }
        for (int i = 0; i < sc->hcap; i++) {
            if (!sc->keys[i]) continue;
            uint64_t j = hash_str(sc->keys[i]) & (uint64_t)(nc - 1);
            while (nk[j]) j = (j + 1) & (uint64_t)(nc - 1);
            nk[j] = sc->keys[i];
            nv[j] = sc->vals[i];
        }
        free(sc->keys);
        free(sc->vals);
        sc->keys = nk;
        sc->vals = nv;
        sc->hcap = nc;
    }
    uint64_t i = hash_str(name) & (uint64_t)(sc->hcap - 1);
    while (sc->keys[i]) i = (i + 1) & (uint64_t)(sc->hcap - 1);
    sc->keys[i] = name;
    sc->vals[i] = slot;
    sc->hcount++;
    return 0;
}

static void scope_deinit(scope *sc) {
    free(sc->slots);
    free(sc->captures);
    free(sc->keys);
    free(sc->vals);
}

/* Adds a slot named `name`; returns its index or -1 when out of memory. */
static int add_slot(scope *sc, const char *name) {
    if (grow((void **)&sc->slots, &sc->cap_slots, sc->n_slots + 1, sizeof *sc->slots)) return -1;
    int s = sc->n_slots++;
    onyx_slot *sl = &sc->slots[s];
    memset(sl, 0, sizeof *sl);
    sl->name = name;
    sl->ndim = -1;
    sl->producer = -1;
    sl->last_use = -1;
    sl->outer = -1;
    if (table_put(sc, name, s)) return -1;
    return s;
}

/* Resolves `name` in this scope, capturing it from an enclosing scope when it
 * is defined there. Returns the slot, -1 when undefined, -2 out of memory. */
static int resolve(scope *sc, const char *name) {
    int s = lookup_local(sc, name);
    if (s >= 0) return s;
    if (!sc->parent) return -1;
    int outer = resolve(sc->parent, name);
    if (outer < 0) return outer;
    s = add_slot(sc, name);
    if (s < 0) return -2;
    if (grow((void **)&sc->captures, &sc->cap_captures, sc->n_captures + 1, sizeof(int)))
        return -2;
    sc->captures[sc->n_captures++] = s;
    onyx_slot *sl = &sc->slots[s];
    const onyx_slot *os = &sc->parent->slots[outer];
    sl->outer = outer;
    sl->kind = os->kind;
    sl->dtype = os->dtype;
    sl->ndim = os->ndim;
    memcpy(sl->dims, os->dims, sizeof sl->dims);
    return s;
}

// ----------------------------------------------------------------------------
// Declared types

static void apply_type(onyx_slot *sl, const onyx_pb_type *t) {
    if (!t) return;
    const onyx_pb_type *tt = t;
    if (tt->kind == ONYX_PB_TYPE_OPTIONAL) {
        sl->optional = true;
        if (!tt->elem) return;
        tt = tt->elem;
    }
    switch (tt->kind) {
    case ONYX_PB_TYPE_TENSOR:
    case ONYX_PB_TYPE_SPARSE_TENSOR:
        sl->kind = ONYX_KIND_TENSOR;
        if (onyx_dtype_is_valid(tt->elem_type)) sl->dtype = (onyx_dtype)tt->elem_type;
        if (tt->has_shape && tt->ndims <= ONYX_MAX_DIMS) {
            sl->ndim = tt->ndims;
            for (int i = 0; i < tt->ndims; i++) {
                sl->dims[i] = tt->dims[i].value >= 0 && !tt->dims[i].param ? tt->dims[i].value : -1;
                sl->dim_names[i] = tt->dims[i].param;
            }
        }
        break;
    case ONYX_PB_TYPE_SEQUENCE:
        sl->kind = ONYX_KIND_SEQUENCE;
        if (!tt->elem) break;
        if (tt->elem->kind == ONYX_PB_TYPE_TENSOR) sl->elem_kind = ONYX_KIND_TENSOR;
        if (tt->elem->kind == ONYX_PB_TYPE_MAP) {
            /* sequence(map(K, V)): ZipMap's output */
            sl->elem_kind = ONYX_KIND_MAP;
            if (onyx_dtype_is_valid(tt->elem->key_type)) sl->key_dtype = (onyx_dtype)tt->elem->key_type;
            const onyx_pb_type *v = tt->elem->elem;
            if (v && onyx_dtype_is_valid(v->elem_type)) sl->dtype = (onyx_dtype)v->elem_type;
        } else if (onyx_dtype_is_valid(tt->elem->elem_type)) {
            sl->dtype = (onyx_dtype)tt->elem->elem_type;
        }
        break;
    case ONYX_PB_TYPE_MAP:
        sl->kind = ONYX_KIND_MAP;
        if (onyx_dtype_is_valid(tt->key_type)) sl->key_dtype = (onyx_dtype)tt->key_type;
        if (tt->elem && onyx_dtype_is_valid(tt->elem->elem_type))
            sl->dtype = (onyx_dtype)tt->elem->elem_type;
        break;
    default:
        break;
    }
}

// ----------------------------------------------------------------------------
// Constants

onyx_status onyx_model_keep_constant(onyx_model *m, onyx_value *v, onyx_error *err) {
    if (grow((void **)&m->constants, &m->cap_constants, m->n_constants + 1, sizeof *m->constants))
        return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    m->constants[m->n_constants++] = v;
    return ONYX_OK;
}

/* Converts an initializer into a model-owned constant value. */
static onyx_status make_constant(onyx_model *m, const onyx_pb_tensor *pb, const onyx_value **out,
                                 onyx_error *err) {
    onyx_value *v = calloc(1, sizeof *v);
    if (!v) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    onyx_status st = onyx_pb_tensor_to_tensor(pb, onyx_model_external, m, &v->tensor, err);
    if (st) {
        free(v);
        return onyx_error_prefix(err, "initializer '%s'", pb->name);
    }
    v->kind = ONYX_KIND_TENSOR;
    if ((st = onyx_model_keep_constant(m, v, err))) {
        onyx_value_free(v);
        return st;
    }
    *out = v;
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Model-local function inlining

typedef struct expander {
    onyx_model *m;
    pending_node *nodes;
    int n, cap;
    int counter;
} expander;

static const onyx_pb_function *find_function(const onyx_pb_model *pb, const char *domain,
                                             const char *name) {
    for (int i = 0; i < pb->n_functions; i++) {
        const onyx_pb_function *f = &pb->functions[i];
        if (strcmp(f->name, name) == 0 && strcmp(f->domain, domain) == 0) return f;
    }
    return NULL;
}

/* Name of a value inside an inlined body: formals map to the call's actual
 * names, everything else gets the expansion's unique prefix. */
static const char *rename_value(onyx_arena *a, const onyx_pb_function *f, const onyx_pb_node *call,
                                const char *prefix, const char *name) {
    if (!name[0]) return name;
    for (int i = 0; i < f->n_inputs; i++)
        if (strcmp(f->inputs[i], name) == 0) return i < call->n_inputs ? call->inputs[i] : "";
    for (int i = 0; i < f->n_outputs; i++)
        if (strcmp(f->outputs[i], name) == 0) return i < call->n_outputs ? call->outputs[i] : "";
    size_t lp = strlen(prefix), ln = strlen(name);
    char *s = onyx_arena_alloc(a, lp + ln + 1);
    if (!s) return NULL;
    memcpy(s, prefix, lp);
    memcpy(s + lp, name, ln + 1);
    return s;
}

static onyx_status expand_nodes(expander *ex, const onyx_pb_node *nodes, int n_nodes,
                                const onyx_pb_opset *opsets, int n_opsets, int depth,
                                onyx_error *err);

static onyx_status inline_call(expander *ex, const onyx_pb_function *f, const onyx_pb_node *call,
                               int depth, onyx_error *err) {
    onyx_arena *a = &ex->m->arena;
    if (depth >= MAX_FUNCTION_DEPTH)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "function %s: calls nest deeper than %d (recursive?)", f->name,
                           MAX_FUNCTION_DEPTH);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%s/%d/", f->name, ex->counter++);
    char *pfx = onyx_arena_strdup(a, prefix);
    onyx_pb_node *body = onyx_arena_calloc(a, (size_t)f->n_nodes, sizeof *body);
    if (!pfx || (f->n_nodes && !body)) goto oom;
    for (int i = 0; i < f->n_nodes; i++) {
        const onyx_pb_node *src = &f->nodes[i];
        onyx_pb_node *dst = &body[i];
        *dst = *src;
        dst->inputs = onyx_arena_calloc(a, (size_t)src->n_inputs + 1, sizeof(char *));
        dst->outputs = onyx_arena_calloc(a, (size_t)src->n_outputs + 1, sizeof(char *));
        dst->attrs = onyx_arena_calloc(a, (size_t)src->n_attrs + 1, sizeof *dst->attrs);
        if (!dst->inputs || !dst->outputs || !dst->attrs) goto oom;
        for (int k = 0; k < src->n_inputs; k++)
            if (!(dst->inputs[k] = rename_value(a, f, call, pfx, src->inputs[k]))) goto oom;
        for (int k = 0; k < src->n_outputs; k++)
            if (!(dst->outputs[k] = rename_value(a, f, call, pfx, src->outputs[k]))) goto oom;
        /* Attributes referring to the function's own (ref_attr_name) take
         * the call's value, else the function's default, else vanish. */
        int na = 0;
        for (int k = 0; k < src->n_attrs; k++) {
            const onyx_pb_attr *at = &src->attrs[k];
            if (!at->ref_attr_name || !at->ref_attr_name[0]) {
                dst->attrs[na++] = *at;
                continue;
            }
            const onyx_pb_attr *val = NULL;
            for (int j = 0; j < call->n_attrs && !val; j++)
                if (strcmp(call->attrs[j].name, at->ref_attr_name) == 0) val = &call->attrs[j];
            for (int j = 0; j < f->n_attribute_protos && !val; j++)
                if (strcmp(f->attribute_protos[j].name, at->ref_attr_name) == 0)
                    val = &f->attribute_protos[j];
            if (!val) continue;
            dst->attrs[na] = *val;
            dst->attrs[na].name = at->name;
            dst->attrs[na].ref_attr_name = NULL;
            na++;
        }
        dst->n_attrs = na;
    }
    return expand_nodes(ex, body, f->n_nodes, f->opsets, f->n_opsets, depth + 1, err);
oom:
    return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory inlining function %s", f->name);
}

static onyx_status expand_nodes(expander *ex, const onyx_pb_node *nodes, int n_nodes,
                                const onyx_pb_opset *opsets, int n_opsets, int depth,
                                onyx_error *err) {
    for (int i = 0; i < n_nodes; i++) {
        const onyx_pb_node *pn = &nodes[i];
        const onyx_pb_function *f = find_function(ex->m->pb, pn->domain, pn->op_type);
        if (f) {
            onyx_status st = inline_call(ex, f, pn, depth, err);
            if (st) return st;
            continue;
        }
        if (grow((void **)&ex->nodes, &ex->cap, ex->n + 1, sizeof *ex->nodes))
            return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        ex->nodes[ex->n++] = (pending_node){pn, opsets, n_opsets};
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Graph building

static onyx_status build_graph(onyx_model *m, const onyx_pb_graph *pg, scope *parent, int depth,
                               onyx_graph **out, onyx_error *err);

static const char *node_label(const onyx_pb_node *pn, int index, char *buf, size_t len) {
    if (pn->name[0])
        snprintf(buf, len, "node '%s' (%s)", pn->name, pn->op_type);
    else
        snprintf(buf, len, "node #%d (%s)", index, pn->op_type);
    return buf;
}

static int64_t domain_opset(const pending_node *p, const char *domain) {
    for (int i = 0; i < p->n_opsets; i++)
        if (strcmp(p->opsets[i].domain, domain) == 0) return p->opsets[i].version;
    return -1;
}

static bool is_graph_attr(const onyx_pb_attr *a) { return a->type == ONYX_PB_ATTR_GRAPH && a->g; }

static const char *const attr_type_names[] = {
    "undefined", "float", "int", "string", "tensor", "graph", "floats", "ints", "strings",
    "tensors", "graphs", "sparse tensor", "sparse tensors", "type proto", "type protos",
};
_Static_assert(sizeof attr_type_names / sizeof attr_type_names[0] == ONYX_PB_ATTR_TYPE_COUNT,
               "attr_type_names must cover onyx_pb_attr_type");

static const char *attr_type_name(int32_t t) {
    return t >= 0 && t < ONYX_PB_ATTR_TYPE_COUNT ? attr_type_names[t] : "unknown";
}

/* Checks the node's attributes against the ONNX schema of the operator
 * version its opset selects: no unknown names, no wrong types, no missing
 * required ones. Ops outside the ONNX domains (no schema) are not checked. */
static onyx_status check_attributes(const onyx_pb_node *pn, int64_t opset, const char *label,
                                    onyx_error *err) {
    const onyx_op_attrs *best = NULL;
    for (const onyx_op_attrs *r = onyx_attr_table; r->op_type; r++) {
        if (strcmp(r->op_type, pn->op_type) || strcmp(r->domain, pn->domain)) continue;
        if (r->since_version <= opset && (!best || r->since_version > best->since_version)) best = r;
    }
    if (!best) return ONYX_OK;
    for (int a = 0; a < pn->n_attrs; a++) {
        const onyx_pb_attr *at = &pn->attrs[a];
        const onyx_attr_decl *d = NULL;
        for (int k = 0; k < best->n_attrs && !d; k++)
            if (strcmp(best->attrs[k].name, at->name) == 0) d = &best->attrs[k];
        if (!d)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                               "%s: unknown attribute '%s' for %s-%d", label, at->name,
                               pn->op_type, best->since_version);
        if ((int32_t)d->type != at->type)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                               "%s: attribute '%s' must be of type %s, the model gives %s", label,
                               at->name, attr_type_name((int32_t)d->type), attr_type_name(at->type));
    }
    for (int k = 0; k < best->n_attrs; k++) {
        if (!best->attrs[k].required) continue;
        bool found = false;
        for (int a = 0; a < pn->n_attrs && !found; a++) found = !strcmp(pn->attrs[a].name, best->attrs[k].name);
        if (!found)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "%s: required attribute '%s' is missing",
                               label, best->attrs[k].name);
    }
    return ONYX_OK;
}

/* Resolves op, checks arity, compiles subgraphs and runs init for node i. */
static onyx_status build_node(onyx_model *m, scope *sc, const pending_node *p, int index,
                              onyx_node *n, int **implicit, int depth, onyx_error *err) {
    const onyx_pb_node *pn = p->pb;
    char label[300];
    node_label(pn, index, label, sizeof label);
    n->name = pn->name;
    n->op_type = pn->op_type;
    n->domain = pn->domain;
    n->arena = &m->arena;
    n->model = m;
    n->attrs = pn->attrs;
    n->n_attrs = pn->n_attrs;
    int64_t opset = domain_opset(p, pn->domain);
    if (opset < 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "%s: domain '%s' is not imported by the model",
                           label, pn->domain[0] ? pn->domain : "ai.onnx");
    n->opset = (int)opset;
    int min_version = 0;
    n->op = onyx_registry_find(pn->domain, pn->op_type, opset, &min_version);
    if (!n->op) {
        if (min_version)
            return onyx_errorf(err, ONYX_ERR_UNSUPPORTED,
                               "%s: operator %s needs opset %d or newer, the model imports %s "
                               "opset %lld",
                               label, pn->op_type, min_version,
                               pn->domain[0] ? pn->domain : "ai.onnx", (long long)opset);
        return onyx_errorf(err, ONYX_ERR_UNSUPPORTED,
                           "%s: unknown operator %s in domain '%s' (opset %lld)", label,
                           pn->op_type, pn->domain[0] ? pn->domain : "ai.onnx", (long long)opset);
    }
    const onyx_op_schema *op = n->op;
    onyx_status ast = check_attributes(pn, opset, label, err);
    if (ast) return ast;
    /* Trailing omitted inputs/outputs do not count toward arity. */
    int ni = pn->n_inputs, no = pn->n_outputs;
    while (ni > 0 && !pn->inputs[ni - 1][0]) ni--;
    while (no > 0 && !pn->outputs[no - 1][0]) no--;
    if (ni < op->min_inputs || (op->max_inputs >= 0 && ni > op->max_inputs))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "%s: has %d inputs, %s-%d takes %d to %d",
                           label, ni, pn->op_type, op->since_version, op->min_inputs,
                           op->max_inputs);
    if (no < op->min_outputs || (op->max_outputs >= 0 && no > op->max_outputs))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "%s: has %d outputs, %s-%d gives %d to %d",
                           label, no, pn->op_type, op->since_version, op->min_outputs,
                           op->max_outputs);
    n->n_in = ni;
    n->n_out = no;
    n->in = onyx_arena_calloc(&m->arena, (size_t)ni + 1, sizeof(int));
    n->out = onyx_arena_calloc(&m->arena, (size_t)no + 1, sizeof(int));
    if (!n->in || !n->out) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < ni; i++) {
        if (!pn->inputs[i][0]) {
            n->in[i] = -1;
            continue;
        }
        int s = resolve(sc, pn->inputs[i]);
        if (s == -2) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        if (s < 0)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                               "%s: input '%s' is not produced by any node, graph input or "
                               "initializer",
                               label, pn->inputs[i]);
        n->in[i] = s;
    }
    for (int i = 0; i < no; i++) n->out[i] = pn->outputs[i][0] ? lookup_local(sc, pn->outputs[i]) : -1;

    /* Subgraphs: compiled with this scope as parent; the outer values they
     * read become implicit inputs of this node (for ordering and lifetimes). */
    int n_graphs = 0;
    for (int a = 0; a < pn->n_attrs; a++) n_graphs += is_graph_attr(&pn->attrs[a]);
    *implicit = NULL;
    if (n_graphs) {
        n->subgraphs = onyx_arena_calloc(&m->arena, (size_t)pn->n_attrs, sizeof *n->subgraphs);
        if (!n->subgraphs) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        int *imp = NULL, nimp = 0, cimp = 0;
        for (int a = 0; a < pn->n_attrs; a++) {
            if (!is_graph_attr(&pn->attrs[a])) continue;
            onyx_graph *g = NULL;
            onyx_status st = build_graph(m, pn->attrs[a].g, sc, depth + 1, &g, err);
            if (st) {
                free(imp);
                return onyx_error_prefix(err, "%s: attribute %s", label, pn->attrs[a].name);
            }
            n->subgraphs[a] = g;
            for (int c = 0; c < g->n_captures; c++) {
                int outer = g->slots[g->captures[c]].outer;
                if (grow((void **)&imp, &cimp, nimp + 2, sizeof(int))) {
                    free(imp);
                    return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
                }
                imp[nimp++] = outer;
            }
        }
        if (nimp) {
            int *arr = onyx_arena_calloc(&m->arena, (size_t)nimp + 1, sizeof(int));
            if (!arr) {
                free(imp);
                return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
            }
            memcpy(arr, imp, (size_t)nimp * sizeof(int));
            arr[nimp] = -1;
            *implicit = arr;
        }
        free(imp);
    }

    if (op->types && ni > 0 && n->in[0] >= 0) {
        onyx_dtype t = sc->slots[n->in[0]].dtype;
        if (t != ONYX_DTYPE_UNDEFINED && !(op->types & ONYX_T(t)))
            return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "%s: input type %s is not supported",
                               label, onyx_dtype_name(t));
    }
    return ONYX_OK;
}

/* Runs each node's init (after graph passes have settled the inputs). */
static onyx_status init_nodes(onyx_graph *g, onyx_error *err) {
    for (int i = 0; i < g->n_nodes; i++) g->nodes[i].graph = g;
    for (int i = 0; i < g->n_nodes; i++) {
        onyx_node *n = &g->nodes[i];
        if (!n->op->init) continue;
        onyx_status st = n->op->init(n, err);
        if (st) {
            if (n->name[0]) return onyx_error_prefix(err, "node '%s' (%s)", n->name, n->op_type);
            return onyx_error_prefix(err, "node #%d (%s)", i, n->op_type);
        }
    }
    return ONYX_OK;
}

void onyx_graph_lifetimes(onyx_graph *g) {
    for (int s = 0; s < g->n_slots; s++) {
        g->slots[s].producer = -1;
        g->slots[s].last_use = -1;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const onyx_node *n = &g->nodes[i];
        if (!n->op) continue; /* removed by a pass, not yet compacted */
        for (int k = 0; k < n->n_out; k++)
            if (n->out[k] >= 0) g->slots[n->out[k]].producer = i;
        for (int k = 0; k < n->n_in; k++)
            if (n->in[k] >= 0) g->slots[n->in[k]].last_use = i;
        for (int *p = g->implicit[i]; p && *p >= 0; p++) g->slots[*p].last_use = i;
    }
    for (int i = 0; i < g->n_outputs; i++) g->slots[g->outputs[i]].last_use = g->n_nodes;
}

/* Kahn's algorithm over node indices; order[] receives the sorted indices.
 * Fails on a cycle, naming one node on it. */
static onyx_status topo_sort(const scope *sc, const pending_node *pend, onyx_node *nodes,
                             int **implicit, int n, int *order, onyx_error *err) {
    onyx_status st = ONYX_OK;
    int *indeg = calloc((size_t)n + 1, sizeof(int));
    int *head = calloc((size_t)n + 1, sizeof(int));   /* adjacency: first edge per producer */
    int n_edges = 0;
    for (int i = 0; i < n; i++) {
        n_edges += nodes[i].n_in;
        for (int *p = implicit[i]; p && *p >= 0; p++) n_edges++;
    }
    int *next = calloc((size_t)n_edges + 1, sizeof(int)), *to = calloc((size_t)n_edges + 1, sizeof(int));
    int *queue = calloc((size_t)n + 1, sizeof(int));
    if (!indeg || !head || !next || !to || !queue) {
        st = onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) head[i] = -1;
    int e = 0;
    for (int i = 0; i < n; i++) {
        int n_dep = nodes[i].n_in;
        for (int *p = implicit[i]; p && *p >= 0; p++) n_dep++;
        for (int k = 0; k < n_dep; k++) {
            int s = k < nodes[i].n_in ? nodes[i].in[k] : implicit[i][k - nodes[i].n_in];
            int prod = s >= 0 ? sc->slots[s].producer : -1;
            if (prod < 0) continue;
            to[e] = i;
            next[e] = head[prod];
            head[prod] = e++;
            indeg[i]++;
        }
    }
    int qh = 0, qt = 0, done_n = 0;
    for (int i = 0; i < n; i++)
        if (!indeg[i]) queue[qt++] = i;
    while (qh < qt) {
        int v = queue[qh++];
        order[done_n++] = v;
        for (int x = head[v]; x >= 0; x = next[x])
            if (--indeg[to[x]] == 0) queue[qt++] = to[x];
    }
    if (done_n < n) {
        int bad = 0;
        for (int i = 0; i < n; i++)
            if (indeg[i]) {
                bad = i;
                break;
            }
        char label[300];
        st = onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "the graph has a cycle through %s",
                         node_label(pend[bad].pb, bad, label, sizeof label));
    }
done:
    free(indeg);
    free(head);
    free(next);
    free(to);
    free(queue);
    return st;
}

static onyx_status build_graph(onyx_model *m, const onyx_pb_graph *pg, scope *parent, int depth,
                               onyx_graph **out, onyx_error *err) {
    onyx_status st = ONYX_OK;
    scope sc = {.parent = parent, .model = m, .depth = depth};
    expander ex = {.m = m};
    onyx_node *nodes = NULL;
    int **implicit = NULL, *order = NULL;
    onyx_graph *g = NULL;
    char label[300];
    if (depth > MAX_GRAPH_DEPTH)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "subgraphs nest deeper than %d",
                           MAX_GRAPH_DEPTH);

    /* Graph inputs, then initializers (an initializer named like an input
     * is that input's default value). */
    for (int i = 0; i < pg->n_inputs; i++) {
        const onyx_pb_value_info *vi = &pg->inputs[i];
        if (lookup_local(&sc, vi->name) >= 0) {
            st = onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "graph input '%s' is declared twice",
                             vi->name);
            goto fail;
        }
        int s = add_slot(&sc, vi->name);
        if (s < 0) goto oom;
        apply_type(&sc.slots[s], vi->type);
    }
    for (int i = 0; i < pg->n_initializers; i++) {
        const onyx_pb_tensor *t = &pg->initializers[i];
        int s = lookup_local(&sc, t->name);
        if (s >= 0 && s >= pg->n_inputs) {
            st = onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "initializer '%s' is declared twice",
                             t->name);
            goto fail;
        }
        if (s < 0 && (s = add_slot(&sc, t->name)) < 0) goto oom;
        const onyx_value *c = NULL;
        if ((st = make_constant(m, t, &c, err))) goto fail;
        onyx_slot *sl = &sc.slots[s];
        sl->constant = c;
        sl->kind = ONYX_KIND_TENSOR;
        sl->dtype = c->tensor.dtype;
        sl->ndim = c->tensor.ndim;
        memcpy(sl->dims, c->tensor.dims, sizeof sl->dims);
    }
    if (pg->n_sparse_initializers) {
        st = onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "sparse initializers are not supported");
        goto fail;
    }

    /* Inline model-local functions, then give every node output a slot. */
    if ((st = expand_nodes(&ex, pg->nodes, pg->n_nodes, m->pb->opsets, m->pb->n_opsets, 0, err)))
        goto fail;
    for (int i = 0; i < ex.n; i++) {
        const onyx_pb_node *pn = ex.nodes[i].pb;
        for (int k = 0; k < pn->n_outputs; k++) {
            const char *name = pn->outputs[k];
            if (!name[0]) continue;
            if (lookup_local(&sc, name) >= 0) {
                st = onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                                 "%s: output '%s' is already produced elsewhere in the graph",
                                 node_label(pn, i, label, sizeof label), name);
                goto fail;
            }
            int s = add_slot(&sc, name);
            if (s < 0) goto oom;
            sc.slots[s].producer = i;
        }
    }
    for (int i = 0; i < pg->n_value_infos; i++) {
        int s = lookup_local(&sc, pg->value_infos[i].name);
        if (s >= 0 && !sc.slots[s].constant) apply_type(&sc.slots[s], pg->value_infos[i].type);
    }
    for (int i = 0; i < pg->n_outputs; i++) {
        int s = lookup_local(&sc, pg->outputs[i].name);
        if (s >= 0) apply_type(&sc.slots[s], pg->outputs[i].type);
    }

    nodes = calloc((size_t)ex.n + 1, sizeof *nodes);
    implicit = calloc((size_t)ex.n + 1, sizeof *implicit);
    order = calloc((size_t)ex.n + 1, sizeof *order);
    if (!nodes || !implicit || !order) goto oom;
    for (int i = 0; i < ex.n; i++)
        if ((st = build_node(m, &sc, &ex.nodes[i], i, &nodes[i], &implicit[i], depth, err)))
            goto fail;

    /* Graph outputs may name any visible value, outer ones included. */
    int *outs = onyx_arena_calloc(&m->arena, (size_t)pg->n_outputs + 1, sizeof(int));
    if (!outs) goto oom;
    for (int i = 0; i < pg->n_outputs; i++) {
        int s = resolve(&sc, pg->outputs[i].name);
        if (s == -2) goto oom;
        if (s < 0) {
            st = onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                             "graph output '%s' is not produced by any node, input or initializer",
                             pg->outputs[i].name);
            goto fail;
        }
        outs[i] = s;
    }

    if ((st = topo_sort(&sc, ex.nodes, nodes, implicit, ex.n, order, err))) goto fail;

    /* Assemble the graph in the arena, nodes in sorted order. */
    g = onyx_arena_alloc(&m->arena, sizeof *g);
    if (!g) goto oom;
    g->name = pg->name;
    g->n_nodes = ex.n;
    g->nodes = onyx_arena_calloc(&m->arena, (size_t)ex.n + 1, sizeof *g->nodes);
    g->implicit = onyx_arena_calloc(&m->arena, (size_t)ex.n + 1, sizeof *g->implicit);
    g->n_slots = sc.n_slots;
    g->slots = onyx_arena_calloc(&m->arena, (size_t)sc.n_slots + 1, sizeof *g->slots);
    g->n_captures = sc.n_captures;
    g->captures = onyx_arena_calloc(&m->arena, (size_t)sc.n_captures + 1, sizeof(int));
    g->n_inputs = pg->n_inputs;
    g->inputs = onyx_arena_calloc(&m->arena, (size_t)pg->n_inputs + 1, sizeof(int));
    if (!g->nodes || !g->implicit || !g->slots || !g->captures || !g->inputs) goto oom;
    for (int i = 0; i < ex.n; i++) {
        g->nodes[i] = nodes[order[i]];
        g->implicit[i] = implicit[order[i]];
    }
    if (sc.n_slots) memcpy(g->slots, sc.slots, (size_t)sc.n_slots * sizeof *g->slots);
    if (sc.n_captures) memcpy(g->captures, sc.captures, (size_t)sc.n_captures * sizeof(int));
    for (int i = 0; i < pg->n_inputs; i++) {
        g->inputs[i] = i; /* inputs were added first */
        if (!g->slots[i].constant) g->n_required++;
    }
    g->n_outputs = pg->n_outputs;
    g->outputs = outs;

    if (m->opts.optimize && (st = onyx_graph_optimize(m, g, !parent, err))) goto fail;
    onyx_graph_lifetimes(g);
    if (!parent) onyx_model_unalign_bytewise(m, g);
    if ((st = init_nodes(g, err))) goto fail;
    g->parent = NULL; /* set by the caller for subgraphs */
    *out = g;
    goto done;
oom:
    st = onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory building graph");
fail:
    g = NULL;
done:
    free(nodes);
    free(implicit);
    free(order);
    free(ex.nodes);
    scope_deinit(&sc);
    return st;
}

// ----------------------------------------------------------------------------
// Entry points

/* Links every subgraph to its parent (build_graph cannot: the parent is
 * assembled after its children). */
static void link_parents(onyx_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        onyx_node *n = &g->nodes[i];
        if (!n->subgraphs) continue;
        for (int a = 0; a < n->n_attrs; a++) {
            onyx_graph *sub = (onyx_graph *)n->subgraphs[a];
            if (!sub) continue;
            sub->parent = g;
            link_parents(sub);
        }
    }
}

onyx_status onyx_graph_build(onyx_model *m, onyx_error *err) {
    if (!m->pb->graph) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "the model has no graph");
    for (int i = 0; i < m->pb->n_opsets; i++) {
        const onyx_pb_opset *o = &m->pb->opsets[i];
        int64_t max = onyx_registry_max_opset(o->domain);
        if (max >= 0 && o->version > max)
            return onyx_errorf(err, ONYX_ERR_UNSUPPORTED,
                               "the model imports %s opset %lld; onyx supports up to opset %lld",
                               o->domain[0] ? o->domain : "ai.onnx", (long long)o->version,
                               (long long)max);
        if (o->version < 1)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "the model imports %s opset %lld",
                               o->domain[0] ? o->domain : "ai.onnx", (long long)o->version);
    }
    onyx_status st = build_graph(m, m->pb->graph, NULL, 0, &m->graph, err);
    if (st) return st;
    link_parents(m->graph);
    return ONYX_OK;
}

void onyx_model_release_graph(onyx_model *m) {
    for (int i = 0; i < m->n_constants; i++) onyx_value_free(m->constants[i]);
    free(m->constants);
    m->constants = NULL;
    m->n_constants = m->cap_constants = 0;
    m->graph = NULL;
}
