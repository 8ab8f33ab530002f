/* onyx.h - the public C API of libonyx: load an ONNX model, run it.
 *
 * Owns: status codes, element types, model/session lifecycle, value views.
 * Does not own: image preprocessing, serving (those sit on top of this API).
 *
 * Threading: a loaded onyx_model is immutable and may be shared by any number
 * of sessions on any threads; one onyx_session must be used by one thread at a
 * time. Errors are values: every call returns an onyx_status, and the message
 * lands in the caller's onyx_error (never in a global).
 */
#ifndef ONYX_H
#define ONYX_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ONYX_VERSION "0.1.0"

/* ---------------------------------------------------------------------- */
/* Status and error detail                                                 */

typedef enum onyx_status {
    ONYX_OK = 0,
    ONYX_ERR_INVALID_ARGUMENT, /* the caller passed something unusable */
    ONYX_ERR_INVALID_MODEL,    /* the model file is malformed or inconsistent */
    ONYX_ERR_UNSUPPORTED,      /* valid ONNX that onyx does not implement */
    ONYX_ERR_OUT_OF_MEMORY,    /* allocation failed or a memory limit was hit */
    ONYX_ERR_IO,               /* a file could not be opened, mapped or read */
    ONYX_ERR_RUNTIME,          /* a kernel rejected its input at run time */
    ONYX_ERR_CANCELLED,        /* the run was aborted through onyx_session_abort */
    ONYX_STATUS_COUNT
} onyx_status;

/* Caller-owned error detail. Functions that take an `onyx_error *` fill it on
 * failure (it may be NULL when the caller does not want the message). */
typedef struct onyx_error {
    onyx_status status;
    char message[512];
} onyx_error;

/* A static string naming the status ("invalid model", ...). */
const char *onyx_status_name(onyx_status status);

/* ---------------------------------------------------------------------- */
/* Element types: the numbering is ONNX's TensorProto.DataType.            */

typedef enum onyx_dtype {
    ONYX_DTYPE_UNDEFINED = 0,
    ONYX_DTYPE_FLOAT = 1,
    ONYX_DTYPE_UINT8 = 2,
    ONYX_DTYPE_INT8 = 3,
    ONYX_DTYPE_UINT16 = 4,
    ONYX_DTYPE_INT16 = 5,
    ONYX_DTYPE_INT32 = 6,
    ONYX_DTYPE_INT64 = 7,
    ONYX_DTYPE_STRING = 8, /* elements are `char *`, NUL-terminated */
    ONYX_DTYPE_BOOL = 9,   /* one byte per element, 0 or 1 */
    ONYX_DTYPE_FLOAT16 = 10,
    ONYX_DTYPE_DOUBLE = 11,
    ONYX_DTYPE_UINT32 = 12,
    ONYX_DTYPE_UINT64 = 13,
    ONYX_DTYPE_COMPLEX64 = 14,
    ONYX_DTYPE_COMPLEX128 = 15,
    ONYX_DTYPE_BFLOAT16 = 16,
    ONYX_DTYPE_FLOAT8E4M3FN = 17,
    ONYX_DTYPE_FLOAT8E4M3FNUZ = 18,
    ONYX_DTYPE_FLOAT8E5M2 = 19,
    ONYX_DTYPE_FLOAT8E5M2FNUZ = 20,
    ONYX_DTYPE_UINT4 = 21, /* stored unpacked: one byte per element */
    ONYX_DTYPE_INT4 = 22,  /* stored unpacked: one byte per element */
    ONYX_DTYPE_FLOAT4E2M1 = 23, /* stored unpacked: one byte per element */
    ONYX_DTYPE_FLOAT8E8M0 = 24,
    ONYX_DTYPE_COUNT
} onyx_dtype;

/* Bytes per element in memory (0 for UNDEFINED). */
size_t onyx_dtype_size(onyx_dtype dtype);
/* ONNX spelling of the type: "float", "int64", "string", ... */
const char *onyx_dtype_name(onyx_dtype dtype);

/* ---------------------------------------------------------------------- */
/* Values                                                                  */

#define ONYX_MAX_DIMS 8

/* A dense tensor: row-major, contiguous. `data` is borrowed: whoever handed
 * out the view owns the memory (see each function). */
typedef struct onyx_tensor_view {
    onyx_dtype dtype;
    int ndim;
    int64_t dims[ONYX_MAX_DIMS];
    void *data;
} onyx_tensor_view;

typedef enum onyx_kind {
    ONYX_KIND_NONE = 0, /* an absent value, or an empty optional */
    ONYX_KIND_TENSOR,
    ONYX_KIND_SEQUENCE,
    ONYX_KIND_MAP,
    ONYX_KIND_COUNT
} onyx_kind;

/* Values passed to and returned by a session. Sequences and maps (ZipMap,
 * SplitToSequence, ...) are read through the accessors below. */
typedef struct onyx_value onyx_value;

onyx_kind onyx_value_kind(const onyx_value *v);
/* Tensor view of a TENSOR value (or of a MAP's keys); ONYX_ERR_INVALID_ARGUMENT otherwise. */
onyx_status onyx_value_tensor(const onyx_value *v, onyx_tensor_view *out);
/* Number of items of a SEQUENCE, or of entries of a MAP. */
int64_t onyx_value_count(const onyx_value *v);
/* Item i of a SEQUENCE; NULL when out of range. Borrowed from `v`. */
const onyx_value *onyx_value_item(const onyx_value *v, int64_t i);
/* The values of a MAP (a TENSOR or SEQUENCE value). Borrowed from `v`. */
const onyx_value *onyx_value_map_values(const onyx_value *v);
/* Element type of an empty sequence, or of a sequence's tensors. */
onyx_dtype onyx_value_elem_type(const onyx_value *v);

/* Owned values, for callers that build inputs of kind SEQUENCE/MAP. The tensor
 * data is copied. Free with onyx_value_free (accepts NULL). */
onyx_status onyx_value_new_tensor(const onyx_tensor_view *t, onyx_value **out);
onyx_status onyx_value_new_sequence(onyx_dtype elem_type, onyx_value **items, int64_t n,
                                    onyx_value **out); /* takes ownership of items */
onyx_status onyx_value_new_map(onyx_value *keys, onyx_value *values,
                               onyx_value **out); /* takes ownership of both */
onyx_status onyx_value_new_none(onyx_value **out);
void onyx_value_free(onyx_value *v);

/* ---------------------------------------------------------------------- */
/* Model                                                                   */

typedef struct onyx_options {
    int threads;           /* intra-op threads; 0 = cores this process may use */
    size_t memory_limit;   /* activation memory limit in bytes; 0 = unlimited */
    int optimize;          /* graph passes at load: 1 (default) or 0 */
    /* Runs of a batch through a per-sample graph (every output row along
     * axis 0 depends only on the same input row: CNNs) in sub-batches that
     * keep activations in cache: 0 (default) when it pays, -1 never, k > 0
     * sub-batches of at most k samples whenever the graph allows. Results
     * are the same either way. */
    int sub_batch;
} onyx_options;

/* Fills `o` with the defaults. */
void onyx_options_init(onyx_options *o);

typedef struct onyx_model onyx_model;

/* Maps `path` and loads the model. On success *out owns the mapping; free it
 * with onyx_model_free. On failure *out is NULL and `err` says why, naming the
 * node, op and cause when a node is at fault. `opts` may be NULL. */
onyx_status onyx_model_load_file(const char *path, const onyx_options *opts, onyx_model **out,
                                 onyx_error *err);
/* Same, from memory. The bytes are borrowed: they must stay valid and unchanged
 * until onyx_model_free. `dir` (may be NULL) resolves external data files. */
onyx_status onyx_model_load_memory(const void *data, size_t size, const char *dir,
                                   const onyx_options *opts, onyx_model **out, onyx_error *err);
void onyx_model_free(onyx_model *m);

/* Description of a graph input or output. Strings are borrowed from the model. */
typedef struct onyx_io_info {
    const char *name;
    onyx_kind kind;        /* TENSOR, SEQUENCE, MAP or NONE (optional) */
    onyx_dtype dtype;      /* element type (tensor), or the sequence's/map value's */
    onyx_dtype key_dtype;  /* MAP, or a SEQUENCE of maps */
    onyx_kind elem_kind;   /* SEQUENCE: kind of its elements (TENSOR or MAP); NONE if unknown */
    int optional;          /* declared optional(...): an empty (NONE) value is allowed */
    int ndim;              /* -1 when the rank is unknown */
    int64_t dims[ONYX_MAX_DIMS];      /* -1 for a symbolic or unknown dim */
    const char *dim_names[ONYX_MAX_DIMS]; /* symbolic name or NULL */
} onyx_io_info;

int onyx_model_num_inputs(const onyx_model *m);
int onyx_model_num_outputs(const onyx_model *m);
/* Info of input/output i; ONYX_ERR_INVALID_ARGUMENT when out of range. */
onyx_status onyx_model_input(const onyx_model *m, int i, onyx_io_info *out);
onyx_status onyx_model_output(const onyx_model *m, int i, onyx_io_info *out);

/* Model metadata, borrowed from the model; NULL when absent. */
const char *onyx_model_producer(const onyx_model *m);   /* "pytorch" */
const char *onyx_model_producer_version(const onyx_model *m); /* "2.5.0" */
const char *onyx_model_graph_name(const onyx_model *m);
int64_t onyx_model_ir_version(const onyx_model *m);
/* The opset imported for `domain` ("" is ai.onnx), or -1. */
int64_t onyx_model_opset(const onyx_model *m, const char *domain);
/* The model's opset imports, i in [0, onyx_model_num_opsets). */
int onyx_model_num_opsets(const onyx_model *m);
void onyx_model_opset_at(const onyx_model *m, int i, const char **domain, int64_t *version);
int onyx_model_num_metadata(const onyx_model *m);
void onyx_model_metadata(const onyx_model *m, int i, const char **key, const char **value);
/* Number of nodes after graph passes. */
int onyx_model_num_nodes(const onyx_model *m);

/* ---------------------------------------------------------------------- */
/* Session                                                                 */

typedef struct onyx_session onyx_session;

/* A session holds the mutable state of runs: activation memory, thread pool,
 * the last outputs. The model must outlive it. */
onyx_status onyx_session_new(const onyx_model *m, const onyx_options *opts, onyx_session **out,
                             onyx_error *err);
void onyx_session_free(onyx_session *s);

/* Runs the graph. inputs[i] binds to the graph input named names[i] (all
 * graph inputs without an initializer must be bound). Tensor inputs are
 * borrowed for the duration of the call. On success outputs[j] receives the
 * graph output named output_names[j] (or output j when output_names is NULL
 * and n_outputs equals the graph's output count); the values are owned by the
 * session and stay valid until its next run or its free. */
onyx_status onyx_session_run(onyx_session *s, int n_inputs, const char *const *names,
                             const onyx_value *const *inputs, int n_outputs,
                             const char *const *output_names, const onyx_value **outputs,
                             onyx_error *err);

/* Convenience for tensor-only models: like onyx_session_run with views. */
onyx_status onyx_session_run_tensors(onyx_session *s, int n_inputs, const char *const *names,
                                     const onyx_tensor_view *inputs, int n_outputs,
                                     const char *const *output_names, onyx_tensor_view *outputs,
                                     onyx_error *err);

/* Per-node timing: when set, fn is called after each top-level node of every
 * run. fn NULL turns it off. Costs two clock reads per node. */
typedef struct onyx_profile_event {
    const char *op_type;
    const char *node_name; /* "" when unnamed */
    int64_t ns;            /* wall time */
    double flops;          /* floating-point operations of the direct algorithm
                              (2 per multiply-add) for Conv, ConvTranspose, Gemm
                              and MatMul; 0 for other ops */
} onyx_profile_event;
typedef void (*onyx_profile_fn)(void *user, const onyx_profile_event *event);
void onyx_session_set_profiler(onyx_session *s, onyx_profile_fn fn, void *user);

/* Asks a run in progress on another thread to stop; it returns ONYX_ERR_CANCELLED. */
void onyx_session_abort(onyx_session *s);

/* ---------------------------------------------------------------------- */
/* Logging                                                                 */

typedef enum onyx_log_level {
    ONYX_LOG_ERROR = 0,
    ONYX_LOG_WARN,
    ONYX_LOG_INFO,
    ONYX_LOG_DEBUG,
    ONYX_LOG_LEVEL_COUNT
} onyx_log_level;

typedef void (*onyx_log_fn)(void *user, onyx_log_level level, const char *message);
/* Installs the process-wide log sink (default: stderr at WARN and above).
 * Set once at startup, before models are loaded. */
void onyx_set_log(onyx_log_fn fn, void *user, onyx_log_level max_level);

/* CPU features in use, e.g. "avx2 fma avx512f amx-bf16". Static string. */
const char *onyx_cpu_features(void);

#ifdef __cplusplus
}
#endif
#endif /* ONYX_H */
