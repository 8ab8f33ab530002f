/* op.h - the contract between the engine and an operator.
 *
 * Owns: the schema row every op family contributes to the registry, the node
 * as an op sees it, attribute access, and the run-time services an op may use
 * (inputs, output allocation, scratch memory, the thread pool, subgraphs).
 * Does not own: resolution (registry.c), scheduling and memory (exec.c).
 *
 * Node lifecycle: at load, `init` validates and parses attributes once into
 * `node->state` (allocated with onyx_node_alloc, freed with the model); per
 * request, `run` reads inputs, computes output shapes, allocates each output
 * with onyx_exec_output and fills it. `run` must not write to node or state:
 * a loaded model is shared by concurrent sessions.
 */
#ifndef ONYX_OP_H
#define ONYX_OP_H

#include "base/error.h"
#include "base/pool.h"
#include "core/tensor.h"
#include "onnx/onnx.h"

typedef struct onyx_node onyx_node;
typedef struct onyx_exec onyx_exec;
typedef struct onyx_graph onyx_graph;

/* Bit masks over onyx_dtype for `types` below. */
#define ONYX_T(t) ((uint64_t)1 << (t))
#define ONYX_T_FLOATS                                                                   \
    (ONYX_T(ONYX_DTYPE_FLOAT) | ONYX_T(ONYX_DTYPE_DOUBLE) | ONYX_T(ONYX_DTYPE_FLOAT16) | \
     ONYX_T(ONYX_DTYPE_BFLOAT16))
#define ONYX_T_SINTS                                                                   \
    (ONYX_T(ONYX_DTYPE_INT8) | ONYX_T(ONYX_DTYPE_INT16) | ONYX_T(ONYX_DTYPE_INT32) | \
     ONYX_T(ONYX_DTYPE_INT64))
#define ONYX_T_UINTS                                                                     \
    (ONYX_T(ONYX_DTYPE_UINT8) | ONYX_T(ONYX_DTYPE_UINT16) | ONYX_T(ONYX_DTYPE_UINT32) | \
     ONYX_T(ONYX_DTYPE_UINT64))
#define ONYX_T_INTS (ONYX_T_SINTS | ONYX_T_UINTS)
#define ONYX_T_NUMERIC (ONYX_T_FLOATS | ONYX_T_INTS)
#define ONYX_T_ALL (~(uint64_t)0)

/* One registry row. A family file (src/ops/<family>.c) defines a table
 * `const onyx_op_schema onyx_ops_<family>[]` ending with a zeroed row. */
typedef struct onyx_op_schema {
    const char *domain;   /* "" (ai.onnx), "ai.onnx.ml", "com.microsoft", ... */
    const char *op_type;
    int since_version;    /* this row serves opsets since_version .. next row's - 1 */
    int min_inputs, max_inputs;   /* max_inputs -1: variadic */
    int min_outputs, max_outputs; /* max_outputs -1: variadic */
    uint64_t types;       /* accepted element types of input 0 (0: not checked) */
    /* Parses attributes into node->state; NULL when there are none to parse.
     * Errors name the attribute; the engine prefixes node and op. */
    onyx_status (*init)(onyx_node *n, onyx_error *err);
    onyx_status (*run)(const onyx_node *n, onyx_exec *x);
    unsigned flags;       /* ONYX_OP_* below */
} onyx_op_schema;

/* The op applies node->act to its float32 output (graph passes may then fuse
 * a following activation node into it). */
#define ONYX_OP_FUSES_ACT 1u
/* The op reads input 0's data only with memcpy (any alignment), never as
 * typed elements: a misaligned initializer there may stay a view into the
 * model file instead of an aligned copy (model.c), so that a run faults in
 * only what it reads (Gather on an embedding table: a few rows). */
#define ONYX_OP_BYTEWISE_IN0 2u

/* An activation fused into a node's output by passes.c. Ops whose schema
 * has ONYX_OP_FUSES_ACT apply it in their epilogue with onyx_act_apply
 * (src/kernels/act.h). */
typedef enum onyx_act_kind {
    ONYX_ACT_NONE = 0,
    ONYX_ACT_RELU,
    ONYX_ACT_CLIP,          /* a = min, b = max */
    ONYX_ACT_LEAKY_RELU,    /* a = alpha */
    ONYX_ACT_SIGMOID,
    ONYX_ACT_HARD_SIGMOID,  /* a = alpha, b = beta */
    ONYX_ACT_HARD_SWISH,
    ONYX_ACT_TANH,
    ONYX_ACT_SILU,          /* x * sigmoid(x): Mul(x, Sigmoid(x)), Swish with alpha 1 */
    ONYX_ACT_KIND_COUNT
} onyx_act_kind;

typedef struct onyx_act {
    onyx_act_kind kind;
    float a, b;
} onyx_act;

/* ---------------------------------------------------------------------- */
/* The node                                                                */

struct onyx_node {
    const char *name;     /* "" when the model gave none */
    const char *op_type;
    const char *domain;
    int opset;            /* the model's opset for this node's domain */
    const onyx_op_schema *op;
    int n_in, n_out;
    int *in;              /* (n_in) value slots; -1 for an omitted optional input */
    int *out;             /* (n_out) value slots; -1 for an omitted optional output */
    const onyx_pb_attr *attrs;
    int n_attrs;
    const onyx_graph **subgraphs; /* (n_attrs) compiled GRAPH attributes, else NULL */
    onyx_act act;         /* fused activation (ONYX_OP_FUSES_ACT ops only) */
    void *state;          /* parsed attributes, from init */
    onyx_arena *arena;    /* the model's arena; for onyx_node_alloc during init */
    struct onyx_model *model; /* the owning model (for init-time helpers) */
    const onyx_graph *graph;  /* the graph the node belongs to */
};

/* Zeroed memory that lives as long as the model; NULL when out of memory. */
void *onyx_node_alloc(onyx_node *n, size_t size);
/* Like onyx_node_alloc, for packed weights: but the memory's contents are
 * undefined (the caller writes every byte), and a large block is made, where
 * it can be, of pages that the load's released copies gave back (model.c),
 * so that it costs no fresh pages. NULL when out of memory. */
void *onyx_node_alloc_packed(onyx_node *n, size_t size);

/* Input i when it is a constant known at load (an initializer, after graph
 * passes), else NULL. For init to prepack weights; the tensor lives as long
 * as the model. */
const onyx_tensor *onyx_node_constant(const onyx_node *n, int i);

/* From init, once the op has packed or copied what it needs of constant
 * input i (onyx_node_constant): the engine may give the constant's memory
 * back when no other node, graph output or subgraph reads it. The tensor
 * keeps its dtype, dims and data address (run may compare that address with
 * the one it packed from), but with `reread` false run must never read its
 * data again, which may then read as zeros. With `reread` true run may still
 * read it on uncommon paths (shapes the packed form does not serve), and only
 * memory that comes back intact when read (pages of the model file) is
 * given back. */
void onyx_node_release_constant(onyx_node *n, int i, bool reread);

/* ---------------------------------------------------------------------- */
/* Attributes (all lookups by name; absent -> default)                      */

const onyx_pb_attr *onyx_attr_find(const onyx_node *n, const char *name);
int64_t onyx_attr_int(const onyx_node *n, const char *name, int64_t def);
float onyx_attr_float(const onyx_node *n, const char *name, float def);
/* NUL-terminated string attribute (borrowed from the model), or def. */
const char *onyx_attr_string(const onyx_node *n, const char *name, const char *def);
/* Number of ints/floats and a borrowed pointer, or -1 when absent. */
int64_t onyx_attr_ints(const onyx_node *n, const char *name, const int64_t **out);
int64_t onyx_attr_floats(const onyx_node *n, const char *name, const float **out);
/* A TENSOR attribute converted to a runtime tensor that lives as long as the
 * model (call from init). ONYX_ERR_INVALID_MODEL when malformed; `found` is
 * set to false (and ONYX_OK returned) when absent. */
onyx_status onyx_attr_tensor(onyx_node *n, const char *name, onyx_tensor *out, bool *found,
                             onyx_error *err);
/* The compiled subgraph of GRAPH attribute `name`, or NULL when absent. */
const onyx_graph *onyx_attr_graph(const onyx_node *n, const char *name);

/* ---------------------------------------------------------------------- */
/* Run-time services                                                       */

/* Input i as a tensor; NULL when omitted or i >= n_in. A non-tensor input
 * (sequence, map) also gives NULL: use onyx_exec_input_value. */
const onyx_tensor *onyx_exec_input(onyx_exec *x, int i);
const onyx_value *onyx_exec_input_value(onyx_exec *x, int i);

/* Allocates output i with the given type and shape and returns it in *out
 * (data uninitialized, except strings which start NULL). When the output was
 * omitted by the model, *out is a scratch tensor that is discarded after the
 * node. Fails (with the message set) on a bad shape or the memory limit. */
onyx_status onyx_exec_output(onyx_exec *x, int i, onyx_dtype dtype, int ndim,
                             const int64_t *dims, onyx_tensor **out);
/* Output i as a value for sequence/map/optional results: the op fills it
 * with heap-owned content (onyx_value_take, onyx_tensor_alloc). */
onyx_value *onyx_exec_output_value(onyx_exec *x, int i);
/* Whether output i is consumed (not omitted by the model). */
bool onyx_exec_wants_output(onyx_exec *x, int i);
/* Asks the memory plan to have input i produced `at` bytes into output o
 * on later runs with these input shapes (a Concat whose inputs are its
 * output's consecutive pieces). The op must still check whether the input
 * is there (the request may not be honoured) and copy it when it is not. */
void onyx_exec_place_input(onyx_exec *x, int i, int o, size_t at);

/* Records a failure that names the node and op, and returns `status`. */
onyx_status onyx_exec_fail(onyx_exec *x, onyx_status status, const char *fmt, ...)
    ONYX_PRINTF(3, 4);

/* Scratch memory valid until the op returns; NULL when out of memory. */
void *onyx_exec_scratch(onyx_exec *x, size_t bytes);
/* `bytes` of scratch for each of the session's threads, thread t's at
 * t * bytes (a parallel task's own workspace); NULL when out of memory or
 * when the total overflows. */
void *onyx_exec_scratch_per_thread(onyx_exec *x, size_t bytes);

/* Parallel-for on the session's pool (inline when single-threaded). */
void onyx_exec_parallel(onyx_exec *x, int64_t n, int64_t grain, onyx_task_fn fn, void *ctx);
int onyx_exec_threads(const onyx_exec *x);

/* Counts floating-point operations the node performed, for the profiler
 * (onyx_session_set_profiler): compute-bound ops report the direct
 * algorithm's count (2 per multiply-add), whatever algorithm they ran. */
void onyx_exec_add_flops(onyx_exec *x, double flops);
/* Non-zero when the run was aborted: long loops should check and return
 * ONYX_ERR_CANCELLED. */
int onyx_exec_aborted(const onyx_exec *x);

/* Runs subgraph g (from onyx_attr_graph) with the given inputs (borrowed;
 * n_inputs must equal the graph's input count) and outer-scope values taken
 * from the current frame. On success outputs[0..graph outputs) receive
 * heap-owned values (the caller clears them). */
onyx_status onyx_exec_run_graph(onyx_exec *x, const onyx_graph *g, int n_inputs,
                                const onyx_value *const *inputs, onyx_value *outputs);
int onyx_graph_num_inputs(const onyx_graph *g);
int onyx_graph_num_outputs(const onyx_graph *g);

#endif
