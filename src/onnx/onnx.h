/* onnx.h - zero-copy decoded views of ONNX protobuf messages.
 *
 * Owns: the in-memory shape of ModelProto and everything under it, as decoded
 * by decode.c from the protobuf wire format, and the TensorProto encoder.
 * Does not own: graph semantics (src/core/graph.c turns these into the IR).
 *
 * Memory: every struct and array here is allocated from one onyx_arena passed
 * to the decoder; freeing the arena frees the whole decoded model. Strings
 * (names, op types, string attributes) are copied into the arena and
 * NUL-terminated (`*_len` keeps the true length, since protobuf strings may
 * hold NUL bytes). Bulk tensor bytes (raw_data) are NOT copied: `raw` points
 * into the caller's buffer (the mmap'ed file), which must outlive the decode.
 * Repeated numeric fields (float_data, int64_data, ...) are decoded into
 * arena arrays, since varint packing cannot be referenced in place.
 */
#ifndef ONYX_ONNX_H
#define ONYX_ONNX_H

#include "base/arena.h"
#include "core/tensor.h"
#include "onyx.h"

#include <stddef.h>
#include <stdint.h>

typedef struct onyx_pb_graph onyx_pb_graph;
typedef struct onyx_pb_type onyx_pb_type;

typedef struct onyx_pb_string {
    const char *s; /* NUL-terminated copy in the arena */
    size_t len;
} onyx_pb_string;

typedef struct onyx_pb_kv { /* StringStringEntryProto */
    const char *key;
    const char *value;
} onyx_pb_kv;

/* ---------------------------------------------------------------------- */
/* TensorProto                                                             */

typedef struct onyx_pb_tensor {
    const char *name;       /* "" when absent */
    int32_t data_type;      /* TensorProto.DataType (== onyx_dtype) */
    int ndims;
    int64_t *dims;          /* (ndims) */
    const uint8_t *raw;     /* raw_data in place (unaligned), or NULL */
    size_t raw_size;
    int has_raw;            /* raw_data field present (possibly empty) */
    int raw_mapped;         /* raw lies in a private read-only file mapping */
    /* typed repeated fields, each NULL/0 when absent */
    float *float_data; size_t n_float;
    int32_t *int32_data; size_t n_int32;     /* also int8/16, uint8/16, bool, fp16, bf16, fp8, int4 */
    onyx_pb_string *string_data; size_t n_string;
    int64_t *int64_data; size_t n_int64;
    double *double_data; size_t n_double;
    uint64_t *uint64_data; size_t n_uint64;  /* also uint32 */
    /* external data: data_location == 1 */
    int data_location;
    onyx_pb_kv *external; int n_external;    /* location, offset, length, checksum */
    const char *doc_string;
} onyx_pb_tensor;

typedef struct onyx_pb_sparse_tensor {
    onyx_pb_tensor values;  /* 1-D, NNZ values */
    onyx_pb_tensor indices; /* [NNZ] linearized or [NNZ, rank] */
    int ndims;
    int64_t *dims;
} onyx_pb_sparse_tensor;

/* ---------------------------------------------------------------------- */
/* TypeProto                                                               */

typedef enum onyx_pb_type_kind {
    ONYX_PB_TYPE_NONE = 0,   /* TypeProto with no value set */
    ONYX_PB_TYPE_TENSOR,
    ONYX_PB_TYPE_SEQUENCE,
    ONYX_PB_TYPE_MAP,
    ONYX_PB_TYPE_OPTIONAL,
    ONYX_PB_TYPE_SPARSE_TENSOR,
    ONYX_PB_TYPE_KIND_COUNT
} onyx_pb_type_kind;

typedef struct onyx_pb_dim {
    int64_t value;          /* -1 when dim_param or unset */
    const char *param;      /* dim_param, or NULL */
} onyx_pb_dim;

struct onyx_pb_type {
    onyx_pb_type_kind kind;
    int32_t elem_type;      /* TENSOR / SPARSE_TENSOR */
    int has_shape;          /* shape field present: ndims valid (0 = scalar) */
    int ndims;
    onyx_pb_dim *dims;      /* (ndims) */
    int32_t key_type;       /* MAP */
    onyx_pb_type *elem;     /* SEQUENCE and OPTIONAL element, MAP value */
    const char *denotation;
};

typedef struct onyx_pb_value_info {
    const char *name;
    onyx_pb_type *type;     /* NULL when the field is absent */
    const char *doc_string;
} onyx_pb_value_info;

/* ---------------------------------------------------------------------- */
/* AttributeProto and NodeProto                                            */

typedef enum onyx_pb_attr_type { /* AttributeProto.AttributeType */
    ONYX_PB_ATTR_UNDEFINED = 0,
    ONYX_PB_ATTR_FLOAT = 1,
    ONYX_PB_ATTR_INT = 2,
    ONYX_PB_ATTR_STRING = 3,
    ONYX_PB_ATTR_TENSOR = 4,
    ONYX_PB_ATTR_GRAPH = 5,
    ONYX_PB_ATTR_FLOATS = 6,
    ONYX_PB_ATTR_INTS = 7,
    ONYX_PB_ATTR_STRINGS = 8,
    ONYX_PB_ATTR_TENSORS = 9,
    ONYX_PB_ATTR_GRAPHS = 10,
    ONYX_PB_ATTR_SPARSE_TENSOR = 11,
    ONYX_PB_ATTR_SPARSE_TENSORS = 12,
    ONYX_PB_ATTR_TYPE_PROTO = 13,
    ONYX_PB_ATTR_TYPE_PROTOS = 14,
    ONYX_PB_ATTR_TYPE_COUNT
} onyx_pb_attr_type;

typedef struct onyx_pb_attr {
    const char *name;
    const char *ref_attr_name; /* inside FunctionProto bodies, or NULL */
    int32_t type;              /* onyx_pb_attr_type; inferred from the set field when 0 */
    float f;
    int64_t i;
    onyx_pb_string s;
    onyx_pb_tensor *t;
    onyx_pb_graph *g;
    onyx_pb_sparse_tensor *sparse_tensor;
    onyx_pb_type *tp;
    float *floats; size_t n_floats;
    int64_t *ints; size_t n_ints;
    onyx_pb_string *strings; size_t n_strings;
    onyx_pb_tensor *tensors; size_t n_tensors;
    onyx_pb_graph **graphs; size_t n_graphs;
    onyx_pb_sparse_tensor *sparse_tensors; size_t n_sparse_tensors;
    onyx_pb_type **type_protos; size_t n_type_protos;
} onyx_pb_attr;

typedef struct onyx_pb_node {
    const char *name;        /* "" when absent */
    const char *op_type;
    const char *domain;      /* "" for ai.onnx ("ai.onnx" is normalized to "") */
    const char *overload;
    int n_inputs;
    const char **inputs;     /* "" marks an omitted optional input */
    int n_outputs;
    const char **outputs;    /* "" marks an omitted optional output */
    int n_attrs;
    onyx_pb_attr *attrs;
} onyx_pb_node;

/* ---------------------------------------------------------------------- */
/* GraphProto, FunctionProto, ModelProto                                   */

struct onyx_pb_graph {
    const char *name;
    int n_nodes;
    onyx_pb_node *nodes;
    int n_initializers;
    onyx_pb_tensor *initializers;
    int n_sparse_initializers;
    onyx_pb_sparse_tensor *sparse_initializers;
    int n_inputs;
    onyx_pb_value_info *inputs;
    int n_outputs;
    onyx_pb_value_info *outputs;
    int n_value_infos;
    onyx_pb_value_info *value_infos;
    const char *doc_string;
};

typedef struct onyx_pb_opset {
    const char *domain;      /* "" for ai.onnx ("ai.onnx" is normalized to "") */
    int64_t version;
} onyx_pb_opset;

typedef struct onyx_pb_function {
    const char *name;
    const char *domain;
    const char *overload;
    int n_inputs;
    const char **inputs;
    int n_outputs;
    const char **outputs;
    int n_attributes;
    const char **attributes;      /* attribute names without defaults */
    int n_attribute_protos;
    onyx_pb_attr *attribute_protos; /* attributes with default values */
    int n_nodes;
    onyx_pb_node *nodes;
    int n_opsets;
    onyx_pb_opset *opsets;
} onyx_pb_function;

typedef struct onyx_pb_model {
    int64_t ir_version;
    int n_opsets;
    onyx_pb_opset *opsets;
    const char *producer_name;
    const char *producer_version;
    const char *domain;
    int64_t model_version;
    const char *doc_string;
    onyx_pb_graph *graph;         /* NULL when absent (an error for a model) */
    int n_metadata;
    onyx_pb_kv *metadata;
    int n_functions;
    onyx_pb_function *functions;
} onyx_pb_model;

/* ---------------------------------------------------------------------- */
/* Sequence, Map and Optional protos (inputs/outputs of `onyx run`)        */

typedef struct onyx_pb_sequence onyx_pb_sequence;
typedef struct onyx_pb_map onyx_pb_map;
typedef struct onyx_pb_optional onyx_pb_optional;

typedef enum onyx_pb_elem_type { /* SequenceProto/OptionalProto.DataType */
    ONYX_PB_ELEM_UNDEFINED = 0,
    ONYX_PB_ELEM_TENSOR = 1,
    ONYX_PB_ELEM_SPARSE_TENSOR = 2,
    ONYX_PB_ELEM_SEQUENCE = 3,
    ONYX_PB_ELEM_MAP = 4,
    ONYX_PB_ELEM_OPTIONAL = 5,
    ONYX_PB_ELEM_COUNT
} onyx_pb_elem_type;

struct onyx_pb_sequence {
    const char *name;
    int32_t elem_type;               /* onyx_pb_elem_type */
    int n_tensors; onyx_pb_tensor *tensors;
    int n_sparse; onyx_pb_sparse_tensor *sparse;
    int n_sequences; onyx_pb_sequence *sequences;
    int n_maps; onyx_pb_map *maps;
    int n_optionals; onyx_pb_optional *optionals;
};

struct onyx_pb_map {
    const char *name;
    int32_t key_type;
    int64_t *keys; size_t n_keys;           /* integer keys */
    onyx_pb_string *string_keys; size_t n_string_keys;
    onyx_pb_sequence values;
};

struct onyx_pb_optional {
    const char *name;
    int32_t elem_type;               /* onyx_pb_elem_type; UNDEFINED = empty */
    onyx_pb_tensor *tensor;
    onyx_pb_sparse_tensor *sparse;
    onyx_pb_sequence *sequence;
    onyx_pb_map *map;
    onyx_pb_optional *optional;
};

/* ---------------------------------------------------------------------- */
/* Decoding. Each returns ONYX_OK, or ONYX_ERR_INVALID_MODEL with a message
 * in `err` saying which message/field was malformed and at which byte offset.
 * All lengths are bounds-checked against `size`; nesting depth is limited
 * (ONYX_PB_MAX_DEPTH) so hostile input cannot exhaust the stack. The result
 * lives in `arena` and points into `data` (which must outlive it). */

#define ONYX_PB_MAX_DEPTH 64

onyx_status onyx_pb_decode_model(const uint8_t *data, size_t size, onyx_arena *arena,
                                 onyx_pb_model **out, onyx_error *err);
/* onyx_pb_decode_model for bytes that are a private read-only file mapping
 * (onyx_file_map): its tensors are marked raw_mapped, so that converting one
 * by copy gives the pages of its source bytes back (onyx_pages_drop). */
onyx_status onyx_pb_decode_model_mapped(const uint8_t *data, size_t size, onyx_arena *arena,
                                        onyx_pb_model **out, onyx_error *err);
onyx_status onyx_pb_decode_tensor(const uint8_t *data, size_t size, onyx_arena *arena,
                                  onyx_pb_tensor **out, onyx_error *err);
onyx_status onyx_pb_decode_sequence(const uint8_t *data, size_t size, onyx_arena *arena,
                                    onyx_pb_sequence **out, onyx_error *err);
onyx_status onyx_pb_decode_map(const uint8_t *data, size_t size, onyx_arena *arena,
                               onyx_pb_map **out, onyx_error *err);
onyx_status onyx_pb_decode_optional(const uint8_t *data, size_t size, onyx_arena *arena,
                                    onyx_pb_optional **out, onyx_error *err);

/* ---------------------------------------------------------------------- */
/* Conversion to runtime tensors and values (convert.c)                    */

/* Maps an external data `location` (a relative path, already checked to hold
 * no ".." component and not to be absolute) to the bytes of that file, which
 * must stay valid as long as the tensors made from them, mapped private and
 * read-only (onyx_file_map): after copying bytes out of it the conversion
 * gives their pages back (onyx_pages_drop). Returns ONYX_OK or a status with
 * the reason in `err`. */
typedef onyx_status (*onyx_pb_external_fn)(void *user, const char *location,
                                           const uint8_t **data, size_t *size, onyx_error *err);

/* Converts a decoded TensorProto to a runtime tensor. When the data is
 * raw_data (or external) and its address is aligned for the element type,
 * out->data points in place (into the decoded buffer or the resolved file) and
 * out->heap is NULL: zero copy; except that bytes in a file mapping shorter
 * than ONYX_PB_VIEW_MIN_BYTES are copied. Otherwise the data is copied or converted into
 * heap memory owned by out->heap (release with onyx_tensor_release). 4-bit
 * types are unpacked to one byte per element (low nibble first; INT4 sign
 * extended); STRING elements are malloc'ed copies. The element count must
 * match dims exactly. `resolve` may be NULL when external data is not allowed.
 * ONYX_ERR_INVALID_MODEL (naming the tensor), ONYX_ERR_UNSUPPORTED,
 * ONYX_ERR_OUT_OF_MEMORY; `out` is left empty on failure. */
onyx_status onyx_pb_tensor_to_tensor(const onyx_pb_tensor *pb, onyx_pb_external_fn resolve,
                                     void *user, onyx_tensor *out, onyx_error *err);
/* Densifies a SparseTensorProto (indices [NNZ] linearized or [NNZ, rank])
 * into a new heap tensor of shape `dims`, zero elsewhere. */
onyx_status onyx_pb_sparse_to_tensor(const onyx_pb_sparse_tensor *pb,
                                     onyx_pb_external_fn resolve, void *user, onyx_tensor *out,
                                     onyx_error *err);
/* Convert SequenceProto / MapProto / OptionalProto files (inputs of `onyx
 * run`) to values that own all their memory (release with onyx_value_clear).
 * A map's keys become a 1-D tensor; its values a 1-D tensor when they are
 * scalars of one type, else a SEQUENCE. An empty optional is kind NONE with
 * is_optional set. */
onyx_status onyx_pb_sequence_to_value(const onyx_pb_sequence *pb, onyx_value *out,
                                      onyx_error *err);
onyx_status onyx_pb_map_to_value(const onyx_pb_map *pb, onyx_value *out, onyx_error *err);
onyx_status onyx_pb_optional_to_value(const onyx_pb_optional *pb, onyx_value *out,
                                      onyx_error *err);

/* ---------------------------------------------------------------------- */
/* Encoding (for `onyx run --format pb`). Writes a serialized proto into a
 * malloc'ed buffer that the caller frees; NULL data is allowed only for empty
 * tensors. String tensors take `char **` elements. */

typedef struct onyx_buf {
    uint8_t *data; /* malloc'ed; the caller frees */
    size_t len, cap;
} onyx_buf;

onyx_status onyx_pb_encode_tensor(onyx_buf *out, const char *name, const onyx_tensor_view *t);
/* Encodes a SequenceProto / MapProto / OptionalProto from a public value. */
onyx_status onyx_pb_encode_value(onyx_buf *out, const char *name, const onyx_value *v);

/* ---------------------------------------------------------------------- */
/* Conversion to runtime values (convert.c)                                 */

struct onyx_tensor;
/* A tensor in a file mapping smaller than this is copied, not viewed in
 * place. A view's first read maps the page-cache pages around it into the
 * process (a whole large folio, up to 2 MB, on recent kernels), so a few KB
 * of bias or LayerNorm scale read at every run kept megabytes of the
 * released weights beside it resident (BERT-base: 58 MB of file pages after
 * the first run). The copies cost at most this much each. */
#define ONYX_PB_VIEW_MIN_BYTES ((size_t)64 << 10)
/* Maps an external-data location to bytes that outlive the tensor. */
typedef onyx_status (*onyx_pb_external_fn)(void *user, const char *location,
                                           const uint8_t **data, size_t *size, onyx_error *err);
/* Converts a decoded TensorProto to a runtime tensor: in place when the data
 * is raw/external and aligned for its type (out->heap NULL), else a heap copy
 * owned by out->heap. Fails when the data size does not match the dims. */
onyx_status onyx_pb_tensor_to_tensor(const onyx_pb_tensor *pb, onyx_pb_external_fn resolve,
                                     void *user, struct onyx_tensor *out, onyx_error *err);

#endif /* ONYX_ONNX_H */
