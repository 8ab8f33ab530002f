/* ml.c - the ai.onnx.ml family: its registry table, and the pieces its ops
 * share (post-transforms, labels, input conversion, attribute readers, the
 * sorted key index). The ops themselves live in linear.c, svm.c, tree.c,
 * transform.c and encode.c of this folder. */
#include "ops/ml/ml.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// Post-transforms

static const char *const post_names[ONYX_ML_POST_COUNT] = {"NONE", "SOFTMAX", "LOGISTIC",
                                                           "SOFTMAX_ZERO", "PROBIT"};

onyx_status onyx_ml_post_parse(const onyx_node *n, onyx_ml_post *out, onyx_error *err) {
    const char *s = onyx_attr_string(n, "post_transform", "NONE");
    int p = onyx_op_lookup(s, post_names, ONYX_ML_POST_COUNT);
    if (p >= 0) {
        *out = (onyx_ml_post)p;
        return ONYX_OK;
    }
    return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                       "attribute post_transform: '%s' is not one of NONE, SOFTMAX, LOGISTIC, "
                       "SOFTMAX_ZERO, PROBIT",
                       s);
}

double onyx_ml_logistic(double v) {
    if (v >= 0) return 1.0 / (1.0 + exp(-v));
    double e = exp(v); /* no overflow for very negative v */
    return e / (1.0 + e);
}

double onyx_ml_probit(double v) {
    const double a = 0.147, pi = 3.14159265358979323846;
    double x = 2.0 * v - 1.0;
    double sgn = x < 0 ? -1.0 : 1.0;
    double ln = log((1.0 - x) * (1.0 + x));
    double t = 2.0 / (pi * a) + 0.5 * ln;
    double r = sgn * sqrt(-t + sqrt(t * t - ln / a));
    return 1.41421356237309504880 * r;
}

static void softmax(double *s, int64_t n, bool skip_zeros) {
    double mx = -INFINITY, sum = 0;
    for (int64_t i = 0; i < n; i++)
        if (s[i] > mx) mx = s[i];
    /* SOFTMAX_ZERO leaves (near-)zero scores out of the sum, as onnxruntime
     * does: a class no tree voted for keeps a zero probability. */
    double scale_zero = exp(-mx);
    for (int64_t i = 0; i < n; i++) {
        if (skip_zeros && fabs(s[i]) <= 1e-7) {
            s[i] *= scale_zero;
            continue;
        }
        s[i] = exp(s[i] - mx);
        sum += s[i];
    }
    if (sum == 0) {
        for (int64_t i = 0; i < n; i++) s[i] = 0.5; /* the ONNX reference's choice */
        return;
    }
    for (int64_t i = 0; i < n; i++) s[i] /= sum;
}

void onyx_ml_post_row(onyx_ml_post p, double *s, int64_t n) {
    switch (p) {
    case ONYX_ML_POST_SOFTMAX: softmax(s, n, false); break;
    case ONYX_ML_POST_SOFTMAX_ZERO: softmax(s, n, true); break;
    case ONYX_ML_POST_LOGISTIC:
        for (int64_t i = 0; i < n; i++) s[i] = onyx_ml_logistic(s[i]);
        break;
    case ONYX_ML_POST_PROBIT:
        for (int64_t i = 0; i < n; i++) s[i] = onyx_ml_probit(s[i]);
        break;
    default: break;
    }
}

void onyx_ml_binary_scores(onyx_ml_post p, bool all_positive, double s, float *out2) {
    double v[2];
    if (p == ONYX_ML_POST_LOGISTIC) {
        v[1] = onyx_ml_logistic(s);
        v[0] = 1.0 - v[1];
    } else {
        v[0] = all_positive ? 1.0 - s : -s;
        v[1] = s;
        onyx_ml_post_row(p, v, 2);
    }
    out2[0] = (float)v[0];
    out2[1] = (float)v[1];
}

// ----------------------------------------------------------------------------
// Labels

int64_t onyx_ml_attr_strings(const onyx_node *n, const char *name, const onyx_pb_string **out) {
    const onyx_pb_attr *a = onyx_attr_find(n, name);
    *out = NULL;
    if (!a) return -1;
    *out = a->strings;
    return (int64_t)a->n_strings;
}

onyx_status onyx_ml_labels_parse(const onyx_node *n, const char *ints_name,
                                 const char *strings_name, bool required, onyx_ml_labels *out,
                                 onyx_error *err) {
    memset(out, 0, sizeof *out);
    const int64_t *ints = NULL;
    const onyx_pb_string *strs = NULL;
    int64_t ni = onyx_attr_ints(n, ints_name, &ints);
    int64_t ns = onyx_ml_attr_strings(n, strings_name, &strs);
    if (ni > 0 && ns > 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "both %s and %s are set", ints_name,
                           strings_name);
    if (ni > 0) {
        out->n = ni;
        out->ints = ints;
    } else if (ns > 0) {
        out->n = ns;
        out->strings = strs;
    } else if (required) {
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "one of %s or %s is required", ints_name,
                           strings_name);
    }
    return ONYX_OK;
}

onyx_status onyx_ml_labels_write(onyx_exec *x, int i, const onyx_ml_labels *l, int64_t rows,
                                 const int64_t *idx) {
    onyx_tensor *y;
    onyx_dtype dt = l->strings ? ONYX_DTYPE_STRING : ONYX_DTYPE_INT64;
    onyx_status st = onyx_exec_output(x, i, dt, 1, &rows, &y);
    if (st) return st;
    for (int64_t r = 0; r < rows; r++) {
        int64_t k = idx[r];
        bool ok = k >= 0 && k < l->n;
        if (!l->strings) {
            ((int64_t *)y->data)[r] = ok ? l->ints[k] : 0;
            continue;
        }
        char *c = strdup(ok ? l->strings[k].s : "");
        if (!c) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        ((char **)y->data)[r] = c;
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Inputs

onyx_status onyx_ml_rows(onyx_exec *x, const onyx_tensor *t, int64_t *rows, int64_t *cols) {
    if (t->ndim == 1) {
        *rows = 1;
        *cols = t->dims[0];
    } else if (t->ndim == 2) {
        *rows = t->dims[0];
        *cols = t->dims[1];
    } else {
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "input must be [N, C] or [C], got a tensor of rank %d", t->ndim);
    }
    return ONYX_OK;
}

onyx_status onyx_ml_input_f64(onyx_exec *x, const onyx_tensor *t, const double **out) {
    int64_t n = onyx_tensor_count(t);
    size_t bytes = onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, n > 0 ? n : 1);
    double *d = bytes == SIZE_MAX ? NULL : onyx_exec_scratch(x, bytes);
    if (!d) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory converting the input");
    if (t->dtype == ONYX_DTYPE_STRING ||
        onyx_convert(ONYX_DTYPE_DOUBLE, d, t->dtype, t->data, n, false))
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "input of type %s is not supported",
                              onyx_dtype_name(t->dtype));
    *out = d;
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Attributes

onyx_status onyx_ml_oom(onyx_error *err) {
    return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
}

onyx_status onyx_ml_tensor_f64(onyx_node *n, const onyx_tensor *t, double **out,
                               onyx_error *err) {
    int64_t count = onyx_tensor_count(t);
    size_t bytes = onyx_tensor_nbytes(t);
    size_t want = onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, count > 0 ? count : 1);
    if (t->dtype == ONYX_DTYPE_STRING || !onyx_dtype_is_valid(t->dtype))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "a numeric tensor is expected, not %s",
                           onyx_dtype_name(t->dtype));
    if (want == SIZE_MAX || bytes == SIZE_MAX)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "tensor too large");
    double *d = onyx_node_alloc(n, want);
    /* The tensor may point into the mapped file at any alignment: copy its
     * bytes to aligned memory before reading them as numbers. */
    void *tmp = malloc(bytes ? bytes : 1);
    if (!d || !tmp) {
        free(tmp);
        return onyx_ml_oom(err);
    }
    if (bytes) memcpy(tmp, t->data, bytes);
    onyx_status st = onyx_convert(ONYX_DTYPE_DOUBLE, d, t->dtype, tmp, count, false);
    free(tmp);
    if (st)
        return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "tensor of type %s cannot be read",
                           onyx_dtype_name(t->dtype));
    *out = d;
    return ONYX_OK;
}

onyx_status onyx_ml_attr_f64s(onyx_node *n, const char *name, const char *tensor_name,
                              double **out, int64_t *count, onyx_error *err) {
    const float *f = NULL;
    int64_t nf = onyx_attr_floats(n, name, &f);
    onyx_tensor t;
    bool found = false;
    onyx_status st;
    *out = NULL;
    *count = -1;
    if (tensor_name && (st = onyx_attr_tensor(n, tensor_name, &t, &found, err))) return st;
    if (found && onyx_tensor_count(&t) > 0) {
        if (nf > 0)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "both %s and %s are set", name,
                               tensor_name);
        if ((st = onyx_ml_tensor_f64(n, &t, out, err)))
            return onyx_error_prefix(err, "attribute %s", tensor_name);
        *count = onyx_tensor_count(&t);
        return ONYX_OK;
    }
    if (nf < 0) return ONYX_OK;
    double *d = onyx_node_alloc(n, sizeof *d * (size_t)(nf > 0 ? nf : 1));
    if (!d) return onyx_ml_oom(err);
    for (int64_t i = 0; i < nf; i++) d[i] = f[i];
    *out = d;
    *count = nf;
    return ONYX_OK;
}

onyx_status onyx_ml_check_len(const char *name, int64_t have, int64_t want, onyx_error *err) {
    if (have == want) return ONYX_OK;
    if (have < 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute %s is missing (%lld expected)",
                           name, (long long)want);
    return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute %s has %lld entries, expected %lld",
                       name, (long long)have, (long long)want);
}

// ----------------------------------------------------------------------------
// Sorted key index

typedef struct key_entry {
    union {
        int64_t i;
        double f;
        const char *s;
    } k;
    int64_t pos;
} key_entry;

static int cmp_pos(const key_entry *a, const key_entry *b) {
    return (a->pos > b->pos) - (a->pos < b->pos);
}

static int cmp_int(const void *pa, const void *pb) {
    const key_entry *a = pa, *b = pb;
    if (a->k.i != b->k.i) return a->k.i < b->k.i ? -1 : 1;
    return cmp_pos(a, b);
}

static int cmp_float(const void *pa, const void *pb) {
    const key_entry *a = pa, *b = pb;
    if (a->k.f != b->k.f) return a->k.f < b->k.f ? -1 : 1;
    return cmp_pos(a, b);
}

static int cmp_string(const void *pa, const void *pb) {
    const key_entry *a = pa, *b = pb;
    int c = strcmp(a->k.s, b->k.s);
    return c ? c : cmp_pos(a, b);
}

static bool same_key(onyx_ml_key kind, const key_entry *a, const key_entry *b) {
    switch (kind) {
    case ONYX_ML_KEY_INT: return a->k.i == b->k.i;
    case ONYX_ML_KEY_FLOAT: return a->k.f == b->k.f;
    default: return strcmp(a->k.s, b->k.s) == 0;
    }
}

onyx_status onyx_ml_index_build(onyx_node *n, onyx_ml_key kind, const void *keys, int64_t count,
                                bool last_wins, onyx_ml_index *out, onyx_error *err) {
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->nan_pos = -1;
    if (count <= 0) return ONYX_OK;
    if ((uint64_t)count > SIZE_MAX / sizeof(key_entry))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "too many keys");
    key_entry *e = malloc(sizeof *e * (size_t)count);
    if (!e) return onyx_ml_oom(err);
    int64_t m = 0;
    for (int64_t i = 0; i < count; i++) {
        key_entry *k = &e[m];
        k->pos = i;
        if (kind == ONYX_ML_KEY_INT) {
            k->k.i = ((const int64_t *)keys)[i];
        } else if (kind == ONYX_ML_KEY_FLOAT) {
            k->k.f = ((const double *)keys)[i];
            if (isnan(k->k.f)) {
                if (out->nan_pos < 0 || last_wins) out->nan_pos = i;
                continue;
            }
        } else {
            const char *s = ((const char *const *)keys)[i];
            k->k.s = s ? s : "";
        }
        m++;
    }
    qsort(e, (size_t)m, sizeof *e,
          kind == ONYX_ML_KEY_INT ? cmp_int : kind == ONYX_ML_KEY_FLOAT ? cmp_float : cmp_string);
    /* Keep one entry per key: the first of each run of equal keys (sorted by
     * position), or the last one. */
    int64_t d = 0;
    for (int64_t i = 0; i < m;) {
        int64_t j = i;
        while (j + 1 < m && same_key(kind, &e[i], &e[j + 1])) j++;
        e[d++] = e[last_wins ? j : i];
        i = j + 1;
    }
    size_t cnt = (size_t)(d > 0 ? d : 1);
    int64_t *pos = onyx_node_alloc(n, sizeof *pos * cnt);
    void *kk = onyx_node_alloc(n, kind == ONYX_ML_KEY_STRING ? sizeof(char *) * cnt
                                                             : sizeof(int64_t) * cnt);
    if (!pos || !kk) {
        free(e);
        return onyx_ml_oom(err);
    }
    for (int64_t i = 0; i < d; i++) {
        pos[i] = e[i].pos;
        if (kind == ONYX_ML_KEY_INT) ((int64_t *)kk)[i] = e[i].k.i;
        else if (kind == ONYX_ML_KEY_FLOAT) ((double *)kk)[i] = e[i].k.f;
        else ((const char **)kk)[i] = e[i].k.s;
    }
    free(e);
    out->n = d;
    out->pos = pos;
    if (kind == ONYX_ML_KEY_INT) out->ikeys = kk;
    else if (kind == ONYX_ML_KEY_FLOAT) out->fkeys = kk;
    else out->skeys = kk;
    return ONYX_OK;
}

int64_t onyx_ml_find_int(const onyx_ml_index *ix, int64_t k) {
    int64_t lo = 0, hi = ix->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (ix->ikeys[mid] < k) lo = mid + 1;
        else hi = mid;
    }
    return lo < ix->n && ix->ikeys[lo] == k ? ix->pos[lo] : -1;
}

int64_t onyx_ml_find_float(const onyx_ml_index *ix, double k) {
    if (isnan(k)) return ix->nan_pos;
    int64_t lo = 0, hi = ix->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (ix->fkeys[mid] < k) lo = mid + 1;
        else hi = mid;
    }
    return lo < ix->n && ix->fkeys[lo] == k ? ix->pos[lo] : -1;
}

int64_t onyx_ml_find_string(const onyx_ml_index *ix, const char *k) {
    if (!k) k = "";
    int64_t lo = 0, hi = ix->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (strcmp(ix->skeys[mid], k) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo < ix->n && strcmp(ix->skeys[lo], k) == 0 ? ix->pos[lo] : -1;
}

// ----------------------------------------------------------------------------
// Registry rows

#define T_(x) ONYX_T(ONYX_DTYPE_##x)
#define T_NUM4 (T_(FLOAT) | T_(DOUBLE) | T_(INT64) | T_(INT32))
#define T_STR T_(STRING)

#define ROW(NAME, V, IN_MIN, IN_MAX, OUT_MIN, OUT_MAX, TYPES, FN)                        \
    {"ai.onnx.ml", NAME, V, IN_MIN, IN_MAX, OUT_MIN, OUT_MAX, TYPES, onyx_ml_init_##FN, \
     onyx_ml_run_##FN, 0}

const onyx_op_schema onyx_ops_ml[] = {
    ROW("ArrayFeatureExtractor", 1, 2, 2, 1, 1, T_NUM4 | T_STR, array_feature_extractor),
    ROW("Binarizer", 1, 1, 1, 1, 1, T_NUM4, binarizer),
    ROW("CastMap", 1, 1, 1, 1, 1, 0, cast_map),
    ROW("CategoryMapper", 1, 1, 1, 1, 1, T_(INT64) | T_STR, category_mapper),
    ROW("DictVectorizer", 1, 1, 1, 1, 1, 0, dict_vectorizer),
    ROW("FeatureVectorizer", 1, 1, -1, 1, 1, T_NUM4, feature_vectorizer),
    ROW("Imputer", 1, 1, 1, 1, 1, T_NUM4, imputer),
    ROW("LabelEncoder", 1, 1, 1, 1, 1, T_(INT64) | T_STR, label_encoder),
    ROW("LabelEncoder", 2, 1, 1, 1, 1, T_(INT64) | T_(FLOAT) | T_STR, label_encoder),
    ROW("LabelEncoder", 4, 1, 1, 1, 1,
        T_(INT64) | T_(INT32) | T_(INT16) | T_(FLOAT) | T_(DOUBLE) | T_STR, label_encoder),
    ROW("LinearClassifier", 1, 1, 1, 1, 2, T_NUM4, linear_classifier),
    ROW("LinearRegressor", 1, 1, 1, 1, 1, T_NUM4, linear_regressor),
    ROW("Normalizer", 1, 1, 1, 1, 1, T_NUM4, normalizer),
    ROW("OneHotEncoder", 1, 1, 1, 1, 1, T_NUM4 | T_STR, one_hot_encoder),
    ROW("SVMClassifier", 1, 1, 1, 1, 2, T_NUM4, svm_classifier),
    ROW("SVMRegressor", 1, 1, 1, 1, 1, T_NUM4, svm_regressor),
    ROW("Scaler", 1, 1, 1, 1, 1, T_NUM4, scaler),
    ROW("TreeEnsemble", 5, 1, 1, 1, 1, T_(FLOAT) | T_(DOUBLE) | T_(FLOAT16), tree_ensemble),
    /* ONNX deprecates these two in ai.onnx.ml opset 5 (onnxruntime rejects
     * them there); onyx keeps running them with the opset-3 semantics. */
    ROW("TreeEnsembleClassifier", 1, 1, 1, 1, 2, T_NUM4, tree_classifier),
    ROW("TreeEnsembleClassifier", 3, 1, 1, 1, 2, T_NUM4, tree_classifier),
    ROW("TreeEnsembleRegressor", 1, 1, 1, 1, 1, T_NUM4, tree_regressor),
    ROW("TreeEnsembleRegressor", 3, 1, 1, 1, 1, T_NUM4, tree_regressor),
    ROW("ZipMap", 1, 1, 1, 1, 1, T_(FLOAT), zipmap),
    {0},
};
