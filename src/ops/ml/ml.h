/* ml.h - what the files of the ai.onnx.ml family (src/ops/ml/) share:
 * score post-transforms, class labels, attribute readers, sorted key
 * lookups, and the init/run entry points that ml.c lists in the registry.
 * Internal to src/ops/ml/; the engine only sees the table onyx_ops_ml. */
#ifndef ONYX_OPS_ML_H
#define ONYX_OPS_ML_H

#include "core/op.h"
#include "ops/util.h"

#include <stdbool.h>
#include <stdint.h>

// ----------------------------------------------------------------------------
// Post-transforms of classifier/regressor scores. The order is the integer
// encoding of TreeEnsemble's post_transform attribute.

typedef enum onyx_ml_post {
    ONYX_ML_POST_NONE = 0,
    ONYX_ML_POST_SOFTMAX,
    ONYX_ML_POST_LOGISTIC,
    ONYX_ML_POST_SOFTMAX_ZERO,
    ONYX_ML_POST_PROBIT,
    ONYX_ML_POST_COUNT
} onyx_ml_post;

/* Parses the string attribute post_transform (default NONE). */
onyx_status onyx_ml_post_parse(const onyx_node *n, onyx_ml_post *out, onyx_error *err);
double onyx_ml_logistic(double v);
/* sqrt(2) * erfinv(2v - 1) with the erfinv approximation onnxruntime and the
 * ONNX reference use (Winitzki, a = 0.147), so that scores agree with them. */
double onyx_ml_probit(double v);
/* Applies `p` to one row of `n` scores in place. SOFTMAX/SOFTMAX_ZERO work
 * on the whole row, LOGISTIC/PROBIT on each score. */
void onyx_ml_post_row(onyx_ml_post p, double *s, int64_t n);
/* The two columns onnxruntime writes for a binary classifier that produced
 * a single score s for the positive class: [1 - v, v] with v = s, or
 * v = logistic(s) under LOGISTIC, when the model's weights are all positive
 * (s is a probability); [-s, s] transformed by `p` otherwise. */
void onyx_ml_binary_scores(onyx_ml_post p, bool all_positive, double s, float *out2);

// ----------------------------------------------------------------------------
// Class labels: classlabels_ints/int64s or classlabels_strings

typedef struct onyx_ml_labels {
    int64_t n;                     /* 0 when absent */
    const int64_t *ints;           /* (n) or NULL */
    const onyx_pb_string *strings; /* (n) or NULL */
} onyx_ml_labels;

/* Reads one of the two label attributes (both present is an error; neither
 * is an error when `required`). */
onyx_status onyx_ml_labels_parse(const onyx_node *n, const char *ints_name,
                                 const char *strings_name, bool required, onyx_ml_labels *out,
                                 onyx_error *err);
/* Allocates output `i` as labels (int64 or string) of shape [rows] and
 * writes labels[idx[r]] into row r. */
onyx_status onyx_ml_labels_write(onyx_exec *x, int i, const onyx_ml_labels *l, int64_t rows,
                                 const int64_t *idx);

// ----------------------------------------------------------------------------
// Inputs

/* Rows and features of a [N, C] input, or of a [C] input seen as one row.
 * Other ranks fail (naming the op). */
onyx_status onyx_ml_rows(onyx_exec *x, const onyx_tensor *t, int64_t *rows, int64_t *cols);
/* The elements of a numeric tensor as doubles, in scratch memory valid
 * until the op returns. */
onyx_status onyx_ml_input_f64(onyx_exec *x, const onyx_tensor *t, const double **out);

// ----------------------------------------------------------------------------
// Attributes (init time)

/* Records "out of memory" in err and returns ONYX_ERR_OUT_OF_MEMORY. */
onyx_status onyx_ml_oom(onyx_error *err);

/* STRINGS attribute: the count and a borrowed array, or -1 when absent. */
int64_t onyx_ml_attr_strings(const onyx_node *n, const char *name, const onyx_pb_string **out);
/* The elements of a numeric tensor (possibly unaligned, as TENSOR attributes
 * mapped from the file are) as doubles allocated on the node. */
onyx_status onyx_ml_tensor_f64(onyx_node *n, const onyx_tensor *t, double **out,
                               onyx_error *err);
/* FLOATS attribute `name`, or else TENSOR attribute `tensor_name` (may be
 * NULL), as doubles allocated on the node; *count is -1 when neither is
 * present. Both present is an error. */
onyx_status onyx_ml_attr_f64s(onyx_node *n, const char *name, const char *tensor_name,
                              double **out, int64_t *count, onyx_error *err);
/* Checks that an INTS/FLOATS-like attribute has `want` entries. */
onyx_status onyx_ml_check_len(const char *name, int64_t have, int64_t want, onyx_error *err);

// ----------------------------------------------------------------------------
// Sorted key index: key -> position in the attribute list

typedef enum onyx_ml_key { ONYX_ML_KEY_INT, ONYX_ML_KEY_FLOAT, ONYX_ML_KEY_STRING } onyx_ml_key;

typedef struct onyx_ml_index {
    onyx_ml_key kind;
    int64_t n;            /* distinct keys */
    const int64_t *ikeys; /* INT: (n) sorted */
    const double *fkeys;  /* FLOAT: (n) sorted, NaN excluded */
    const char **skeys;   /* STRING: (n) sorted by strcmp */
    const int64_t *pos;   /* (n) position of each key in the source list */
    int64_t nan_pos;      /* FLOAT: position of a NaN key, or -1 */
} onyx_ml_index;

/* Builds an index over `count` keys: int64_t, double or `const char *`
 * (NULL reads as "") elements of `keys`. Among repeated keys the first
 * position wins, or the last one when `last_wins`. Memory lives on the node. */
onyx_status onyx_ml_index_build(onyx_node *n, onyx_ml_key kind, const void *keys, int64_t count,
                                bool last_wins, onyx_ml_index *out, onyx_error *err);
/* Position of the key, or -1. A NaN finds a NaN key. */
int64_t onyx_ml_find_int(const onyx_ml_index *ix, int64_t k);
int64_t onyx_ml_find_float(const onyx_ml_index *ix, double k);
int64_t onyx_ml_find_string(const onyx_ml_index *ix, const char *k);

// ----------------------------------------------------------------------------
// The operators (one init/run pair per op; files in parentheses)

#define ONYX_ML_OP(name)                                              \
    onyx_status onyx_ml_init_##name(onyx_node *n, onyx_error *err); \
    onyx_status onyx_ml_run_##name(const onyx_node *n, onyx_exec *x);

ONYX_ML_OP(linear_classifier)     /* linear.c */
ONYX_ML_OP(linear_regressor)      /* linear.c */
ONYX_ML_OP(svm_classifier)        /* svm.c */
ONYX_ML_OP(svm_regressor)         /* svm.c */
ONYX_ML_OP(tree_classifier)       /* tree.c */
ONYX_ML_OP(tree_regressor)        /* tree.c */
ONYX_ML_OP(tree_ensemble)         /* tree.c */
ONYX_ML_OP(normalizer)            /* transform.c */
ONYX_ML_OP(scaler)                /* transform.c */
ONYX_ML_OP(binarizer)             /* transform.c */
ONYX_ML_OP(imputer)               /* transform.c */
ONYX_ML_OP(one_hot_encoder)       /* transform.c */
ONYX_ML_OP(array_feature_extractor) /* transform.c */
ONYX_ML_OP(feature_vectorizer)    /* transform.c */
ONYX_ML_OP(label_encoder)         /* encode.c */
ONYX_ML_OP(category_mapper)       /* encode.c */
ONYX_ML_OP(zipmap)                /* encode.c */
ONYX_ML_OP(cast_map)              /* encode.c */
ONYX_ML_OP(dict_vectorizer)       /* encode.c */

#undef ONYX_ML_OP

#endif
