/* linear.c - LinearClassifier and LinearRegressor of ai.onnx.ml: scores
 * X W^T + b (computed in double), post-transformed. Binary classifiers with
 * one coefficient row follow onnxruntime (see onyx_ml_binary_scores). */
#include "ops/ml/ml.h"

#include <string.h>

typedef struct linear_attr {
    const float *coef;       /* (T, C) row-major, T targets/classes, C features */
    int64_t n_coef;
    const float *intercepts; /* (T) or NULL */
    int64_t n_intercepts;
    int64_t targets;         /* LinearRegressor only; 0 for the classifier */
    onyx_ml_labels labels;   /* LinearClassifier only */
    onyx_ml_post post;
} linear_attr;

static onyx_status init_common(onyx_node *n, linear_attr **out, onyx_error *err) {
    linear_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_ml_oom(err);
    a->n_coef = onyx_attr_floats(n, "coefficients", &a->coef);
    if (a->n_coef <= 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute coefficients is required");
    a->n_intercepts = onyx_attr_floats(n, "intercepts", &a->intercepts);
    if (a->n_intercepts <= 0) a->intercepts = NULL;
    onyx_status st = onyx_ml_post_parse(n, &a->post, err);
    if (st) return st;
    n->state = a;
    *out = a;
    return ONYX_OK;
}

onyx_status onyx_ml_init_linear_classifier(onyx_node *n, onyx_error *err) {
    linear_attr *a;
    onyx_status st = init_common(n, &a, err);
    if (st) return st;
    return onyx_ml_labels_parse(n, "classlabels_ints", "classlabels_strings", true, &a->labels,
                                err);
}

onyx_status onyx_ml_init_linear_regressor(onyx_node *n, onyx_error *err) {
    linear_attr *a;
    onyx_status st = init_common(n, &a, err);
    if (st) return st;
    a->targets = onyx_attr_int(n, "targets", 1);
    if (a->targets <= 0 || a->n_coef % a->targets != 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "%lld coefficients do not split into %lld targets",
                           (long long)a->n_coef, (long long)a->targets);
    if (a->intercepts && a->n_intercepts != a->targets)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "%lld intercepts for %lld targets",
                           (long long)a->n_intercepts, (long long)a->targets);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Scores

typedef struct linear_job {
    const linear_attr *a;
    const double *x; /* (N, C) */
    double *s;       /* (N, T) */
    int64_t c, t;
} linear_job;

static void linear_task(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const linear_job *j = ctx;
    for (int64_t r = begin; r < end; r++) {
        const double *xr = j->x + r * j->c;
        for (int64_t k = 0; k < j->t; k++) {
            const float *w = j->a->coef + k * j->c;
            double acc = j->a->intercepts ? j->a->intercepts[k] : 0.0;
            for (int64_t i = 0; i < j->c; i++) acc += xr[i] * w[i];
            j->s[r * j->t + k] = acc;
        }
    }
}

/* Computes the (rows, T) scores of input 0 into scratch; T is fixed by the
 * attributes (targets) or, for the classifier, by the number of features. */
static onyx_status linear_scores(const onyx_node *n, onyx_exec *x, int64_t *rows, int64_t *t,
                                 double **scores) {
    const linear_attr *a = n->state;
    const onyx_tensor *in = onyx_exec_input(x, 0);
    if (!in) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input X");
    int64_t c;
    onyx_status st = onyx_ml_rows(x, in, rows, &c);
    if (st) return st;
    if (c <= 0 || a->n_coef % c != 0)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "%lld input features do not match %lld coefficients",
                              (long long)c, (long long)a->n_coef);
    *t = a->n_coef / c;
    if (a->targets && *t != a->targets)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "the model has %lld coefficients per target, the input %lld features",
                              (long long)(a->n_coef / a->targets), (long long)c);
    if (a->intercepts && a->n_intercepts != *t)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "%lld intercepts for %lld classes",
                              (long long)a->n_intercepts, (long long)*t);
    const double *xd;
    if ((st = onyx_ml_input_f64(x, in, &xd))) return st;
    int64_t cnt = onyx_dims_count(2, (int64_t[]){*rows, *t});
    size_t bytes = cnt < 0 ? SIZE_MAX : onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, cnt ? cnt : 1);
    double *s = bytes == SIZE_MAX ? NULL : onyx_exec_scratch(x, bytes);
    if (!s) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory for the scores");
    linear_job j = {a, xd, s, c, *t};
    int64_t per_row = *t * c > 0 ? *t * c : 1;
    onyx_exec_parallel(x, *rows, 1 + 4096 / per_row, linear_task, &j);
    *scores = s;
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Ops

onyx_status onyx_ml_run_linear_classifier(const onyx_node *n, onyx_exec *x) {
    const linear_attr *a = n->state;
    int64_t rows, t;
    double *s;
    onyx_status st = linear_scores(n, x, &rows, &t, &s);
    if (st) return st;
    if (t == 1 && a->labels.n != 2)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "one coefficient row needs exactly 2 class labels, the model has %lld",
                              (long long)a->labels.n);
    if (t > 1 && a->labels.n != t)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "%lld class labels for %lld classes",
                              (long long)a->labels.n, (long long)t);
    int64_t zc = t == 1 ? 2 : t;
    onyx_tensor *z;
    if ((st = onyx_exec_output(x, 1, ONYX_DTYPE_FLOAT, 2, (int64_t[]){rows, zc}, &z))) return st;
    int64_t *idx = onyx_exec_scratch(x, sizeof *idx * (size_t)(rows ? rows : 1));
    if (!idx) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    float *zd = z->data;
    for (int64_t r = 0; r < rows; r++) {
        double *sr = s + r * t;
        if (t == 1) {
            /* Binary with one score for the positive class: the label comes
             * from the raw score, the scores are [1 - v, v] (onnxruntime). */
            idx[r] = sr[0] > 0 ? 1 : 0;
            onyx_ml_binary_scores(a->post, true, sr[0], zd + r * 2);
            continue;
        }
        int64_t best = 0;
        for (int64_t k = 1; k < t; k++)
            if (sr[k] > sr[best]) best = k;
        idx[r] = best;
        onyx_ml_post_row(a->post, sr, t);
        for (int64_t k = 0; k < t; k++) zd[r * t + k] = (float)sr[k];
    }
    return onyx_ml_labels_write(x, 0, &a->labels, rows, idx);
}

onyx_status onyx_ml_run_linear_regressor(const onyx_node *n, onyx_exec *x) {
    const linear_attr *a = n->state;
    int64_t rows, t;
    double *s;
    onyx_status st = linear_scores(n, x, &rows, &t, &s);
    if (st) return st;
    onyx_tensor *y;
    if ((st = onyx_exec_output(x, 0, ONYX_DTYPE_FLOAT, 2, (int64_t[]){rows, t}, &y))) return st;
    float *yd = y->data;
    for (int64_t r = 0; r < rows; r++) {
        double *sr = s + r * t;
        /* A single target only takes PROBIT, as in onnxruntime: a softmax or
         * a logistic over one regression value is not what a model means. */
        if (t > 1 || a->post == ONYX_ML_POST_PROBIT) onyx_ml_post_row(a->post, sr, t);
        for (int64_t k = 0; k < t; k++) yd[r * t + k] = (float)sr[k];
    }
    return ONYX_OK;
}
