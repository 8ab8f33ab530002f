/* attr.c - attribute lookups for ops (op.h). Attributes are read at load by
 * each op's init; these helpers never fail: absent means the default. */
#include "core/graph.h"

#include <stdlib.h>
#include <string.h>

void *onyx_node_alloc(onyx_node *n, size_t size) { return onyx_arena_alloc(n->arena, size); }

const onyx_tensor *onyx_node_constant(const onyx_node *n, int i) {
    if (i < 0 || i >= n->n_in || n->in[i] < 0 || !n->graph) return NULL;
    const onyx_value *v = n->graph->slots[n->in[i]].constant;
    return v && v->kind == ONYX_KIND_TENSOR ? &v->tensor : NULL;
}

const onyx_pb_attr *onyx_attr_find(const onyx_node *n, const char *name) {
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
    return NULL;
}

int64_t onyx_attr_int(const onyx_node *n, const char *name, int64_t def) {
    const onyx_pb_attr *a = onyx_attr_find(n, name);
    return a && a->type == ONYX_PB_ATTR_INT ? a->i : def;
}

float onyx_attr_float(const onyx_node *n, const char *name, float def) {
    const onyx_pb_attr *a = onyx_attr_find(n, name);
    if (!a) return def;
    if (a->type == ONYX_PB_ATTR_FLOAT) return a->f;
    if (a->type == ONYX_PB_ATTR_INT) return (float)a->i;
    return def;
}

const char *onyx_attr_string(const onyx_node *n, const char *name, const char *def) {
    const onyx_pb_attr *a = onyx_attr_find(n, name);
    return a && a->type == ONYX_PB_ATTR_STRING && a->s.s ? a->s.s : def;
}

int64_t onyx_attr_ints(const onyx_node *n, const char *name, const int64_t **out) {
    const onyx_pb_attr *a = onyx_attr_find(n, name);
    if (!a || a->type != ONYX_PB_ATTR_INTS) {
        *out = NULL;
        return -1;
    }
    *out = a->ints;
    return (int64_t)a->n_ints;
}

int64_t onyx_attr_floats(const onyx_node *n, const char *name, const float **out) {
    const onyx_pb_attr *a = onyx_attr_find(n, name);
    if (!a || a->type != ONYX_PB_ATTR_FLOATS) {
        *out = NULL;
        return -1;
    }
    *out = a->floats;
    return (int64_t)a->n_floats;
}

onyx_status onyx_attr_tensor(onyx_node *n, const char *name, onyx_tensor *out, bool *found,
                             onyx_error *err) {
    memset(out, 0, sizeof *out);
    const onyx_pb_attr *a = onyx_attr_find(n, name);
    *found = a && a->type == ONYX_PB_ATTR_TENSOR && a->t;
    if (!*found) return ONYX_OK;
    onyx_value *v = calloc(1, sizeof *v);
    if (!v) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    onyx_status st = onyx_pb_tensor_to_tensor(a->t, onyx_model_external, n->model, &v->tensor, err);
    if (st) {
        free(v);
        return onyx_error_prefix(err, "attribute %s", name);
    }
    v->kind = ONYX_KIND_TENSOR;
    if ((st = onyx_model_keep_constant(n->model, v, err))) {
        onyx_value_free(v);
        return st;
    }
    *out = v->tensor; /* a borrowed view: the model owns the memory */
    out->heap = NULL;
    return ONYX_OK;
}

const onyx_graph *onyx_attr_graph(const onyx_node *n, const char *name) {
    if (!n->subgraphs) return NULL;
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0) return n->subgraphs[i];
    return NULL;
}

int onyx_graph_num_inputs(const onyx_graph *g) { return g->n_inputs; }
int onyx_graph_num_outputs(const onyx_graph *g) { return g->n_outputs; }
