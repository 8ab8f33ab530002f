/* transform.c - the feature transforms of ai.onnx.ml: Normalizer, Scaler,
 * Binarizer, Imputer, OneHotEncoder, ArrayFeatureExtractor and
 * FeatureVectorizer. Shapes and edge cases follow onnxruntime (a 1-D input
 * is one row; a zero divisor leaves a row as it is). */
#include "ops/ml/ml.h"

#include <math.h>
#include <string.h>

/* The size of the last axis (1 for a scalar). */
static int64_t last_dim(const onyx_tensor *t) { return t->ndim ? t->dims[t->ndim - 1] : 1; }

static const onyx_tensor *input0(onyx_exec *x) {
    const onyx_tensor *t = onyx_exec_input(x, 0);
    if (!t) onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input X");
    return t;
}

// ----------------------------------------------------------------------------
// Normalizer

enum { NORM_MAX, NORM_L1, NORM_L2 };

onyx_status onyx_ml_init_normalizer(onyx_node *n, onyx_error *err) {
    int *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_ml_oom(err);
    static const char *const norms[] = {"MAX", "L1", "L2"}; /* NORM_* order */
    const char *s = onyx_attr_string(n, "norm", "MAX");
    if ((*a = onyx_op_lookup(s, norms, 3)) < 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute norm: '%s' is not MAX, L1 or L2", s);
    n->state = a;
    return ONYX_OK;
}

onyx_status onyx_ml_run_normalizer(const onyx_node *n, onyx_exec *x) {
    int norm = *(const int *)n->state;
    const onyx_tensor *in = input0(x);
    if (!in) return ONYX_ERR_INVALID_ARGUMENT;
    int64_t rows, c;
    onyx_status st = onyx_ml_rows(x, in, &rows, &c);
    if (st) return st;
    const double *xd;
    if ((st = onyx_ml_input_f64(x, in, &xd))) return st;
    onyx_tensor *y;
    if ((st = onyx_exec_output(x, 0, ONYX_DTYPE_FLOAT, in->ndim, in->dims, &y))) return st;
    float *yd = y->data;
    for (int64_t r = 0; r < rows; r++) {
        const double *xr = xd + r * c;
        double d = 0;
        for (int64_t i = 0; i < c; i++) {
            if (norm == NORM_MAX) d = (i == 0 || xr[i] > d) ? xr[i] : d;
            else if (norm == NORM_L1) d += fabs(xr[i]);
            else d += xr[i] * xr[i];
        }
        if (norm == NORM_L2) d = sqrt(d);
        if (d == 0) d = 1; /* "if the divisor is zero, Y == X" */
        for (int64_t i = 0; i < c; i++) yd[r * c + i] = (float)(xr[i] / d);
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Scaler: Y = (X - offset) * scale along the last axis

typedef struct scaler_attr {
    const float *offset, *scale;
    int64_t n_offset, n_scale;
} scaler_attr;

onyx_status onyx_ml_init_scaler(onyx_node *n, onyx_error *err) {
    scaler_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_ml_oom(err);
    a->n_offset = onyx_attr_floats(n, "offset", &a->offset);
    a->n_scale = onyx_attr_floats(n, "scale", &a->scale);
    n->state = a;
    return ONYX_OK;
}

/* Value i of a per-feature attribute of length 1 or C (absent: def). */
static double per_feature(const float *v, int64_t nv, int64_t i, double def) {
    if (nv <= 0) return def;
    return nv == 1 ? v[0] : v[i];
}

static onyx_status check_per_feature(onyx_exec *x, const char *name, int64_t nv, int64_t c) {
    if (nv <= 1 || nv == c) return ONYX_OK;
    return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                          "attribute %s has %lld values for %lld features", name, (long long)nv,
                          (long long)c);
}

onyx_status onyx_ml_run_scaler(const onyx_node *n, onyx_exec *x) {
    const scaler_attr *a = n->state;
    const onyx_tensor *in = input0(x);
    if (!in) return ONYX_ERR_INVALID_ARGUMENT;
    int64_t c = last_dim(in), count = onyx_tensor_count(in);
    onyx_status st;
    if ((st = check_per_feature(x, "offset", a->n_offset, c)) ||
        (st = check_per_feature(x, "scale", a->n_scale, c)))
        return st;
    const double *xd;
    if ((st = onyx_ml_input_f64(x, in, &xd))) return st;
    onyx_tensor *y;
    if ((st = onyx_exec_output(x, 0, ONYX_DTYPE_FLOAT, in->ndim, in->dims, &y))) return st;
    float *yd = y->data;
    for (int64_t i = 0; i < count; i++) {
        int64_t f = c ? i % c : 0;
        yd[i] = (float)((xd[i] - per_feature(a->offset, a->n_offset, f, 0.0)) *
                        per_feature(a->scale, a->n_scale, f, 1.0));
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Binarizer: 1 where X > threshold, else 0 (NaN gives 0), in X's type

onyx_status onyx_ml_init_binarizer(onyx_node *n, onyx_error *err) {
    double *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_ml_oom(err);
    *a = onyx_attr_float(n, "threshold", 0.0f);
    n->state = a;
    return ONYX_OK;
}

onyx_status onyx_ml_run_binarizer(const onyx_node *n, onyx_exec *x) {
    double th = *(const double *)n->state;
    const onyx_tensor *in = input0(x);
    if (!in) return ONYX_ERR_INVALID_ARGUMENT;
    int64_t count = onyx_tensor_count(in);
    const double *xd;
    onyx_status st = onyx_ml_input_f64(x, in, &xd);
    if (st) return st;
    onyx_tensor *y;
    if ((st = onyx_exec_output(x, 0, in->dtype, in->ndim, in->dims, &y))) return st;
    double *b = (double *)xd; /* scratch we own: reuse it for the 0/1 values */
    for (int64_t i = 0; i < count; i++) b[i] = xd[i] > th ? 1.0 : 0.0;
    if (onyx_convert(in->dtype, y->data, ONYX_DTYPE_DOUBLE, b, count, false))
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "output type %s",
                              onyx_dtype_name(in->dtype));
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Imputer: replaces one value (NaN included) by a per-feature value

typedef struct imputer_attr {
    const float *fvals;
    int64_t n_f;
    float freplace;
    const int64_t *ivals;
    int64_t n_i;
    int64_t ireplace;
} imputer_attr;

onyx_status onyx_ml_init_imputer(onyx_node *n, onyx_error *err) {
    imputer_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_ml_oom(err);
    a->n_f = onyx_attr_floats(n, "imputed_value_floats", &a->fvals);
    a->n_i = onyx_attr_ints(n, "imputed_value_int64s", &a->ivals);
    a->freplace = onyx_attr_float(n, "replaced_value_float", 0.0f);
    a->ireplace = onyx_attr_int(n, "replaced_value_int64", 0);
    if (a->n_f <= 0 && a->n_i <= 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "one of imputed_value_floats or imputed_value_int64s is required");
    n->state = a;
    return ONYX_OK;
}

onyx_status onyx_ml_run_imputer(const onyx_node *n, onyx_exec *x) {
    const imputer_attr *a = n->state;
    const onyx_tensor *in = input0(x);
    if (!in) return ONYX_ERR_INVALID_ARGUMENT;
    bool fl = in->dtype == ONYX_DTYPE_FLOAT || in->dtype == ONYX_DTYPE_DOUBLE;
    int64_t nv = fl ? a->n_f : a->n_i, c = last_dim(in), count = onyx_tensor_count(in);
    if (nv <= 0)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "%s input needs attribute %s",
                              onyx_dtype_name(in->dtype),
                              fl ? "imputed_value_floats" : "imputed_value_int64s");
    onyx_status st = check_per_feature(x, fl ? "imputed_value_floats" : "imputed_value_int64s",
                                       nv, c);
    if (st) return st;
    onyx_tensor *y;
    if ((st = onyx_exec_output(x, 0, in->dtype, in->ndim, in->dims, &y))) return st;
    for (int64_t i = 0; i < count; i++) {
        int64_t f = c ? i % c : 0, k = nv == 1 ? 0 : f;
        switch (in->dtype) {
        case ONYX_DTYPE_FLOAT: {
            float v = ((const float *)in->data)[i];
            bool hit = isnan(a->freplace) ? isnan(v) : v == a->freplace;
            ((float *)y->data)[i] = hit ? a->fvals[k] : v;
            break;
        }
        case ONYX_DTYPE_DOUBLE: {
            double v = ((const double *)in->data)[i];
            bool hit = isnan(a->freplace) ? isnan(v) : v == (double)a->freplace;
            ((double *)y->data)[i] = hit ? a->fvals[k] : v;
            break;
        }
        case ONYX_DTYPE_INT64: {
            int64_t v = ((const int64_t *)in->data)[i];
            ((int64_t *)y->data)[i] = v == a->ireplace ? a->ivals[k] : v;
            break;
        }
        default: {
            int32_t v = ((const int32_t *)in->data)[i];
            ((int32_t *)y->data)[i] = v == a->ireplace ? (int32_t)a->ivals[k] : v;
            break;
        }
        }
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// OneHotEncoder: X (...) -> Y (..., K) float

typedef struct onehot_attr {
    onyx_ml_index ix;
    bool strings;
    int64_t k;
    bool zeros; /* an unknown category gives a zero row (else an error) */
} onehot_attr;

onyx_status onyx_ml_init_one_hot_encoder(onyx_node *n, onyx_error *err) {
    onehot_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_ml_oom(err);
    const int64_t *ints;
    const onyx_pb_string *strs;
    int64_t ni = onyx_attr_ints(n, "cats_int64s", &ints);
    int64_t ns = onyx_ml_attr_strings(n, "cats_strings", &strs);
    a->zeros = onyx_attr_int(n, "zeros", 1) != 0;
    if ((ni > 0) == (ns > 0))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "exactly one of cats_int64s and cats_strings must be set");
    onyx_status st;
    if (ni > 0) {
        a->k = ni;
        st = onyx_ml_index_build(n, ONYX_ML_KEY_INT, ints, ni, false, &a->ix, err);
    } else {
        a->k = ns;
        a->strings = true;
        const char **keys = onyx_node_alloc(n, sizeof *keys * (size_t)ns);
        if (!keys) return onyx_ml_oom(err);
        for (int64_t i = 0; i < ns; i++) keys[i] = strs[i].s;
        st = onyx_ml_index_build(n, ONYX_ML_KEY_STRING, keys, ns, false, &a->ix, err);
    }
    if (st) return st;
    n->state = a;
    return ONYX_OK;
}

/* The category position of element i of t, or -1. Floats are truncated
 * toward zero, as onnxruntime casts them. */
static int64_t onehot_find(const onehot_attr *a, const onyx_tensor *t, int64_t i) {
    switch (t->dtype) {
    case ONYX_DTYPE_STRING: return onyx_ml_find_string(&a->ix, ((char *const *)t->data)[i]);
    case ONYX_DTYPE_INT64: return onyx_ml_find_int(&a->ix, ((const int64_t *)t->data)[i]);
    case ONYX_DTYPE_INT32: return onyx_ml_find_int(&a->ix, ((const int32_t *)t->data)[i]);
    default: {
        double v = onyx_tensor_get_f64(t, i);
        if (!(v > -9.2e18 && v < 9.2e18)) return -1;
        return onyx_ml_find_int(&a->ix, (int64_t)v);
    }
    }
}

onyx_status onyx_ml_run_one_hot_encoder(const onyx_node *n, onyx_exec *x) {
    const onehot_attr *a = n->state;
    const onyx_tensor *in = input0(x);
    if (!in) return ONYX_ERR_INVALID_ARGUMENT;
    if ((in->dtype == ONYX_DTYPE_STRING) != a->strings)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "%s input with %s categories",
                              onyx_dtype_name(in->dtype), a->strings ? "string" : "integer");
    if (in->ndim >= ONYX_MAX_DIMS)
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "input of rank %d", in->ndim);
    int64_t dims[ONYX_MAX_DIMS];
    memcpy(dims, in->dims, sizeof *dims * (size_t)in->ndim);
    dims[in->ndim] = a->k;
    onyx_tensor *y;
    onyx_status st = onyx_exec_output(x, 0, ONYX_DTYPE_FLOAT, in->ndim + 1, dims, &y);
    if (st) return st;
    int64_t count = onyx_tensor_count(in);
    float *yd = y->data;
    memset(yd, 0, onyx_tensor_nbytes(y));
    for (int64_t i = 0; i < count; i++) {
        int64_t k = onehot_find(a, in, i);
        if (k >= 0) {
            yd[i * a->k + k] = 1.0f;
        } else if (!a->zeros) {
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "element %lld is not a known category (and zeros is 0)",
                                  (long long)i);
        }
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// ArrayFeatureExtractor: X[..., Y] along the last axis

onyx_status onyx_ml_init_array_feature_extractor(onyx_node *n, onyx_error *err) {
    (void)n;
    (void)err;
    return ONYX_OK;
}

onyx_status onyx_ml_run_array_feature_extractor(const onyx_node *n, onyx_exec *x) {
    (void)n;
    const onyx_tensor *in = input0(x), *ix = onyx_exec_input(x, 1);
    if (!in) return ONYX_ERR_INVALID_ARGUMENT;
    if (!ix || ix->dtype != ONYX_DTYPE_INT64)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "input Y must be int64 indices");
    if (in->ndim == 0) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "input X is a scalar");
    int64_t c = last_dim(in), k = onyx_tensor_count(ix), outer = c ? onyx_tensor_count(in) / c : 0;
    const int64_t *idx = ix->data;
    for (int64_t j = 0; j < k; j++)
        if (idx[j] < 0 || idx[j] >= c)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "index %lld is out of range for %lld features",
                                  (long long)idx[j], (long long)c);
    int64_t dims[ONYX_MAX_DIMS];
    int nd = in->ndim;
    if (nd == 1) {
        nd = 2;
        dims[0] = 1; /* a vector is one row (onnxruntime) */
    } else {
        memcpy(dims, in->dims, sizeof *dims * (size_t)(nd - 1));
    }
    dims[nd - 1] = k;
    onyx_tensor *y;
    onyx_status st = onyx_exec_output(x, 0, in->dtype, nd, dims, &y);
    if (st) return st;
    size_t es = onyx_dtype_size(in->dtype);
    for (int64_t r = 0; r < outer; r++) {
        for (int64_t j = 0; j < k; j++) {
            const char *src = (const char *)in->data + (size_t)(r * c + idx[j]) * es;
            char *dst = (char *)y->data + (size_t)(r * k + j) * es;
            if (in->dtype != ONYX_DTYPE_STRING) {
                memcpy(dst, src, es);
                continue;
            }
            const char *s = *(char *const *)(const void *)src;
            char *cpy = strdup(s ? s : "");
            if (!cpy) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
            memcpy(dst, &cpy, sizeof cpy);
        }
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// FeatureVectorizer: concatenates [N, C_i] inputs cut or zero-padded to
// inputdimensions[i] columns

typedef struct fv_attr {
    const int64_t *dims;
    int64_t n, total;
} fv_attr;

onyx_status onyx_ml_init_feature_vectorizer(onyx_node *n, onyx_error *err) {
    fv_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_ml_oom(err);
    a->n = onyx_attr_ints(n, "inputdimensions", &a->dims);
    if (a->n != n->n_in) return onyx_ml_check_len("inputdimensions", a->n, n->n_in, err);
    for (int64_t i = 0; i < a->n; i++) {
        if (a->dims[i] < 0 || a->dims[i] > INT32_MAX)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "inputdimensions[%lld] = %lld",
                               (long long)i, (long long)a->dims[i]);
        a->total += a->dims[i];
    }
    n->state = a;
    return ONYX_OK;
}

onyx_status onyx_ml_run_feature_vectorizer(const onyx_node *n, onyx_exec *x) {
    const fv_attr *a = n->state;
    int64_t rows = -1;
    for (int i = 0; i < n->n_in; i++) {
        const onyx_tensor *t = onyx_exec_input(x, i);
        if (!t) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input %d", i);
        int64_t r = t->ndim <= 1 ? 1 : t->dims[0];
        if (rows >= 0 && r != rows)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "input %d has %lld rows, input 0 has %lld", i, (long long)r,
                                  (long long)rows);
        rows = r;
    }
    onyx_tensor *y;
    onyx_status st = onyx_exec_output(x, 0, ONYX_DTYPE_FLOAT, 2, (int64_t[]){rows, a->total}, &y);
    if (st) return st;
    float *yd = y->data;
    memset(yd, 0, onyx_tensor_nbytes(y));
    int64_t off = 0;
    for (int i = 0; i < n->n_in; i++) {
        const onyx_tensor *t = onyx_exec_input(x, i);
        const double *td;
        if ((st = onyx_ml_input_f64(x, t, &td))) return st;
        int64_t c = rows ? onyx_tensor_count(t) / rows : 0, w = c < a->dims[i] ? c : a->dims[i];
        for (int64_t r = 0; r < rows; r++)
            for (int64_t j = 0; j < w; j++) yd[r * a->total + off + j] = (float)td[r * c + j];
        off += a->dims[i];
    }
    return ONYX_OK;
}
