/* graph.h - the graph IR: value slots, nodes in topological order, subgraphs
 * with their outer-scope captures, and the loaded model that owns them.
 *
 * Owns: building the IR from a decoded ModelProto (name resolution, function
 * inlining, op resolution through the registry, arity checks, cycle
 * detection, node init) and value lifetimes. Does not own: running it (exec.c).
 */
#ifndef ONYX_GRAPH_H
#define ONYX_GRAPH_H

#include "base/arena.h"
#include "base/file.h"
#include "core/op.h"

/* Static facts about one value slot of a graph. */
typedef struct onyx_slot {
    const char *name;
    onyx_kind kind;        /* from the declared type; NONE when unknown */
    bool optional;         /* declared optional(...): an empty value is allowed */
    onyx_dtype dtype;      /* UNDEFINED when unknown; a MAP's value type */
    onyx_dtype key_dtype;  /* MAP, or a SEQUENCE of maps */
    onyx_kind elem_kind;   /* SEQUENCE: kind of its elements */
    int ndim;              /* -1 when unknown */
    int64_t dims[ONYX_MAX_DIMS];     /* -1 for symbolic/unknown dims */
    const char *dim_names[ONYX_MAX_DIMS];
    int producer;          /* node index, or -1 (input, constant, capture) */
    int last_use;          /* last node index reading it; n_nodes when a graph output */
    const onyx_value *constant; /* initializer or folded constant, else NULL */
    int outer;             /* capture: the slot in the parent graph, else -1 */
} onyx_slot;

struct onyx_graph {
    const onyx_graph *parent;
    const char *name;
    int n_slots;
    onyx_slot *slots;      /* (n_slots) */
    int n_nodes;
    onyx_node *nodes;      /* (n_nodes) topologically sorted */
    int **implicit;        /* (n_nodes) per node: outer slots its subgraphs read, -1 ended */
    int n_inputs;
    int *inputs;           /* (n_inputs) slots bound by the caller */
    int n_required;        /* inputs without an initializer default */
    int n_outputs;
    int *outputs;          /* (n_outputs) slots */
    int n_captures;
    int *captures;         /* (n_captures) local slots whose value comes from the parent */
};

/* Pages of load-time copies that no run reads, handed on to the packed
 * weights made later in the same load (model.c). */
typedef struct onyx_page_pool onyx_page_pool;

struct onyx_model {
    onyx_options opts;
    onyx_mapping map;          /* the model file, when loaded from a path */
    const uint8_t *bytes;      /* the serialized model (mapped or borrowed) */
    size_t size;
    char *dir;                 /* directory for external data, or NULL */
    onyx_arena arena;          /* decoded protos, IR, constants' metadata */
    onyx_pb_model *pb;
    onyx_graph *graph;
    onyx_value **constants;    /* owned constant values, freed with the model */
    int n_constants, cap_constants;
    onyx_mapping *externals;   /* mmap'ed external data files */
    char **external_names;
    int n_externals;
    bool batch_separable;      /* a batch may run in sub-batches (subbatch.c) */
    bool batch_has_conv;       /* ... and the graph has convolutions */
    onyx_page_pool *pages;     /* load-time page recycling (model.c), or NULL */
};

/* Builds model->graph from model->pb. Errors name the node, op and cause. */
onyx_status onyx_graph_build(onyx_model *m, onyx_error *err);

/* Recomputes producer and last_use of every slot from the node list. */
void onyx_graph_lifetimes(onyx_graph *g);

/* Graph passes (passes.c), run after building and before node init: they
 * may remove nodes, rewire inputs and add constants. `checked_inputs`: the
 * session checks g's inputs against their declared shapes (the top-level
 * graph), so a static declared shape is a known one. */
onyx_status onyx_graph_optimize(onyx_model *m, onyx_graph *g, bool checked_inputs,
                                onyx_error *err);

/* Hands a heap value to the model, which frees it with the model. */
onyx_status onyx_model_keep_constant(onyx_model *m, onyx_value *v, onyx_error *err);

/* Gives back the memory of g's constants that no node, graph output or
 * subgraph reads (weights a graph pass replaced), subgraphs included; their
 * addresses stay valid (model.c). Idempotent. */
void onyx_model_release_unused(const onyx_model *m, const onyx_graph *g);

/* An initializer of the top-level graph g that the load copied only because
 * its bytes in the mapped file are misaligned, and that only ops copying
 * bytes read (ONYX_OP_BYTEWISE_IN0), goes back to being a view into the
 * file: the copy is freed, and a run faults in only the pages it reads. The
 * copy must still equal the file's bytes (a graph pass may have given a new
 * value the initializer's name). Called after the passes and before node
 * init, so that the copy (BERT-base's word embeddings: 94 MB) is gone
 * before the packed weights are made: the load's peak is not both. */
void onyx_model_unalign_bytewise(onyx_model *m, const onyx_graph *g);

/* Runs every node's init-time cleanup and frees owned constants. */
void onyx_model_release_graph(onyx_model *m);

/* Resolves an external-data location relative to the model directory,
 * mapping the file once (callback for onyx_pb_tensor_to_tensor). */
onyx_status onyx_model_external(void *model, const char *location, const uint8_t **data,
                                size_t *size, onyx_error *err);

#endif
