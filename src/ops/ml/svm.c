/* svm.c - SVMClassifier and SVMRegressor of ai.onnx.ml: libsvm models
 * (support vectors, one-vs-one decision values, votes, Platt-scaled pairwise
 * probabilities coupled into class probabilities) and liblinear models
 * (one coefficient row per class). Arithmetic is in double, like libsvm. */
#include "ops/ml/ml.h"

#include <math.h>
#include <string.h>

typedef enum svm_kernel { K_LINEAR, K_POLY, K_RBF, K_SIGMOID } svm_kernel;

typedef struct svm_attr {
    svm_kernel kernel;
    double gamma, coef0, degree;
    bool svc;                 /* support vectors (libsvm) rather than liblinear */
    int64_t features;         /* F */
    int64_t vectors;          /* V support vectors */
    const float *sv;          /* (V, F) */
    const float *coef;        /* SVC classifier: (L - 1, V); regressor: (V); linear: (L, F) or (F) */
    int64_t n_coef;
    const float *rho;         /* classifier SVC: (L (L - 1) / 2); else (1) */
    const float *prob_a, *prob_b; /* (L (L - 1) / 2) or NULL */
    int64_t classes;          /* L */
    int64_t *start;           /* (L) first support vector of each class */
    const int64_t *per_class; /* (L) support vectors of each class */
    bool all_positive;        /* every coefficient >= 0 */
    bool one_class;           /* regressor: one-class SVM, outputs +-1 */
    onyx_ml_labels labels;
    onyx_ml_post post;
} svm_attr;

static double kernel_dot(const svm_attr *a, const double *x, const float *v) {
    int64_t f = a->features;
    double s = 0;
    if (a->kernel == K_RBF) {
        for (int64_t i = 0; i < f; i++) {
            double d = x[i] - v[i];
            s += d * d;
        }
        return exp(-a->gamma * s);
    }
    for (int64_t i = 0; i < f; i++) s += x[i] * v[i];
    switch (a->kernel) {
    case K_POLY: return pow(a->gamma * s + a->coef0, a->degree);
    case K_SIGMOID: return tanh(a->gamma * s + a->coef0);
    default: return s;
    }
}

static onyx_status init_common(onyx_node *n, svm_attr **out, onyx_error *err) {
    svm_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_ml_oom(err);
    static const char *const kernels[] = {"LINEAR", "POLY", "RBF", "SIGMOID"};
    const char *k = onyx_attr_string(n, "kernel_type", "LINEAR");
    int kind = onyx_op_lookup(k, kernels, 4);
    if (kind < 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "attribute kernel_type: '%s' is not LINEAR, POLY, RBF or SIGMOID", k);
    a->kernel = (svm_kernel)kind;
    const float *kp;
    int64_t nkp = onyx_attr_floats(n, "kernel_params", &kp);
    if (nkp > 0 && nkp < 3)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "attribute kernel_params needs gamma, coef0 and degree");
    if (nkp >= 3) {
        a->gamma = kp[0];
        a->coef0 = kp[1];
        a->degree = kp[2];
    }
    a->n_coef = onyx_attr_floats(n, "coefficients", &a->coef);
    if (a->n_coef <= 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute coefficients is required");
    a->all_positive = true;
    for (int64_t i = 0; i < a->n_coef; i++)
        if (a->coef[i] < 0) a->all_positive = false;
    onyx_status st = onyx_ml_post_parse(n, &a->post, err);
    if (st) return st;
    n->state = a;
    *out = a;
    return ONYX_OK;
}

/* The support vectors: V vectors of F features. */
static onyx_status init_vectors(onyx_node *n, svm_attr *a, onyx_error *err) {
    int64_t nsv = onyx_attr_floats(n, "support_vectors", &a->sv);
    if (nsv <= 0 || nsv % a->vectors != 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "attribute support_vectors (%lld values) does not hold %lld vectors",
                           (long long)(nsv > 0 ? nsv : 0), (long long)a->vectors);
    a->features = nsv / a->vectors;
    a->svc = true;
    return ONYX_OK;
}

onyx_status onyx_ml_init_svm_classifier(onyx_node *n, onyx_error *err) {
    svm_attr *a;
    onyx_status st = init_common(n, &a, err);
    if (st) return st;
    if ((st = onyx_ml_labels_parse(n, "classlabels_ints", "classlabels_strings", true,
                                   &a->labels, err)))
        return st;
    int64_t L = a->classes = a->labels.n;
    if (L > 65535)
        return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "%lld classes (at most 65535)",
                           (long long)L);
    int64_t npairs = L * (L - 1) / 2, nrho;
    if ((nrho = onyx_attr_floats(n, "rho", &a->rho)) <= 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute rho is required");
    int64_t npa = onyx_attr_floats(n, "prob_a", &a->prob_a);
    int64_t npb = onyx_attr_floats(n, "prob_b", &a->prob_b);
    if (npa != npb)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "prob_a and prob_b differ in length");
    if (npa <= 0) a->prob_a = a->prob_b = NULL;

    int64_t nvpc = onyx_attr_ints(n, "vectors_per_class", &a->per_class);
    int64_t v = 0;
    for (int64_t i = 0; i < nvpc; i++) {
        if (a->per_class[i] < 0 || a->per_class[i] > INT64_MAX / 2 - v)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "bad vectors_per_class");
        v += a->per_class[i];
    }
    if (v == 0) {
        /* liblinear: one coefficient row per class, rho[0] as the bias */
        if (a->n_coef % L != 0)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                               "%lld coefficients do not split into %lld classes",
                               (long long)a->n_coef, (long long)L);
        a->features = a->n_coef / L;
        a->kernel = K_LINEAR;
        return ONYX_OK;
    }
    a->vectors = v;
    if (nvpc != L) return onyx_ml_check_len("vectors_per_class", nvpc, L, err);
    if (L < 2)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "a support vector classifier needs 2 classes");
    if ((st = init_vectors(n, a, err))) return st;
    if (a->n_coef / (L - 1) < v)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "attribute coefficients has %lld values, expected (%lld - 1) x %lld",
                           (long long)a->n_coef, (long long)L, (long long)v);
    if (nrho < npairs)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute rho has %lld values, expected %lld",
                           (long long)nrho, (long long)npairs);
    if (a->prob_a && npa < npairs)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "attribute prob_a has %lld values, expected %lld", (long long)npa,
                           (long long)npairs);
    a->start = onyx_node_alloc(n, sizeof *a->start * (size_t)L);
    if (!a->start) return onyx_ml_oom(err);
    for (int64_t i = 0, s = 0; i < L; i++) {
        a->start[i] = s;
        s += a->per_class[i];
    }
    return ONYX_OK;
}

onyx_status onyx_ml_init_svm_regressor(onyx_node *n, onyx_error *err) {
    svm_attr *a;
    onyx_status st = init_common(n, &a, err);
    if (st) return st;
    if (onyx_attr_floats(n, "rho", &a->rho) <= 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute rho is required");
    a->one_class = onyx_attr_int(n, "one_class", 0) != 0;
    int64_t v = onyx_attr_int(n, "n_supports", 0);
    if (v < 0) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute n_supports is negative");
    if (v == 0) {
        a->features = a->n_coef;
        a->kernel = K_LINEAR;
        return ONYX_OK;
    }
    a->vectors = v;
    if ((st = init_vectors(n, a, err))) return st;
    if (a->n_coef < v)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "attribute coefficients has %lld values for %lld support vectors",
                           (long long)a->n_coef, (long long)v);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Pairwise coupling (Wu, Lin and Weng 2004, "Probability estimates for
// multi-class classification by pairwise coupling", method 2, as in libsvm)

static void couple(int64_t k, const double *r, double *p, double *q, double *qp) {
    int64_t max_iter = k > 100 ? k : 100;
    double eps = 0.005 / (double)k;
    for (int64_t t = 0; t < k; t++) {
        p[t] = 1.0 / (double)k;
        q[t * k + t] = 0;
        for (int64_t j = 0; j < t; j++) {
            q[t * k + t] += r[j * k + t] * r[j * k + t];
            q[t * k + j] = q[j * k + t];
        }
        for (int64_t j = t + 1; j < k; j++) {
            q[t * k + t] += r[j * k + t] * r[j * k + t];
            q[t * k + j] = -r[j * k + t] * r[t * k + j];
        }
    }
    for (int64_t iter = 0; iter < max_iter; iter++) {
        double pqp = 0, max_error = 0;
        for (int64_t t = 0; t < k; t++) {
            qp[t] = 0;
            for (int64_t j = 0; j < k; j++) qp[t] += q[t * k + j] * p[j];
            pqp += p[t] * qp[t];
        }
        for (int64_t t = 0; t < k; t++) {
            double e = fabs(qp[t] - pqp);
            if (e > max_error) max_error = e;
        }
        if (max_error < eps) break;
        for (int64_t t = 0; t < k; t++) {
            double diff = (-qp[t] + pqp) / q[t * k + t];
            p[t] += diff;
            pqp = (pqp + diff * (diff * q[t * k + t] + 2 * qp[t])) / (1 + diff) / (1 + diff);
            for (int64_t j = 0; j < k; j++) {
                qp[j] = (qp[j] + diff * q[t * k + j]) / (1 + diff);
                p[j] /= (1 + diff);
            }
        }
    }
}

// ----------------------------------------------------------------------------
// SVMClassifier

typedef struct svc_job {
    const svm_attr *a;
    const double *x; /* (N, F) */
    float *z;        /* (N, zc) */
    int64_t zc;
    int64_t *label;  /* (N) class index */
    double *work;    /* per thread: `per` doubles */
    int64_t per;
} svc_job;

static void svc_row(const svc_job *j, const double *x, float *z, int64_t *label, double *w) {
    const svm_attr *a = j->a;
    int64_t L = a->classes, V = a->vectors, np = L * (L - 1) / 2;
    double *k = w, *dec = k + V, *votes = dec + np, *r = votes + L, *p = r + L * L;
    double *q = p + L, *qp = q + L * L;
    for (int64_t v = 0; v < V; v++) k[v] = kernel_dot(a, x, a->sv + v * a->features);
    for (int64_t c = 0; c < L; c++) votes[c] = 0;
    int64_t pi = 0;
    for (int64_t i = 0; i < L; i++) {
        for (int64_t jj = i + 1; jj < L; jj++, pi++) {
            /* Coefficients of pair (i, j): row j - 1 over class i's vectors
             * and row i over class j's vectors (libsvm's sv_coef layout). */
            double s = a->rho[pi];
            const float *ci = a->coef + (jj - 1) * V + a->start[i];
            const float *cj = a->coef + i * V + a->start[jj];
            for (int64_t m = 0; m < a->per_class[i]; m++) s += ci[m] * k[a->start[i] + m];
            for (int64_t m = 0; m < a->per_class[jj]; m++) s += cj[m] * k[a->start[jj] + m];
            dec[pi] = s;
            votes[s > 0 ? i : jj] += 1;
        }
    }
    int64_t best = 0;
    for (int64_t c = 1; c < L; c++)
        if (votes[c] > votes[best]) best = c;
    *label = best;
    if (a->prob_a) {
        pi = 0;
        for (int64_t i = 0; i < L; i++) {
            for (int64_t jj = i + 1; jj < L; jj++, pi++) {
                /* Platt scaling: P(class i | pair) = 1 / (1 + exp(A f + B)) */
                double v = onyx_ml_logistic(-(dec[pi] * a->prob_a[pi] + a->prob_b[pi]));
                v = v < 1e-7 ? 1e-7 : v > 1 - 1e-7 ? 1 - 1e-7 : v;
                r[i * L + jj] = v;
                r[jj * L + i] = 1 - v;
            }
        }
        /* two classes go through the coupling too, as in scikit-learn's
         * libsvm (whose answer differs from r[0][1] by up to ~1e-3) */
        couple(L, r, p, q, qp);
        onyx_ml_post_row(a->post, p, L);
        for (int64_t c = 0; c < L; c++) z[c] = (float)p[c];
    } else if (L == 2) {
        double v[2] = {-dec[0], dec[0]};
        onyx_ml_post_row(a->post, v, 2);
        z[0] = (float)v[0];
        z[1] = (float)v[1];
    } else {
        onyx_ml_post_row(a->post, dec, np);
        for (int64_t c = 0; c < np; c++) z[c] = (float)dec[c];
    }
}

static void linear_row(const svc_job *j, const double *x, float *z, int64_t *label, double *w) {
    const svm_attr *a = j->a;
    int64_t L = a->classes, best = 0;
    for (int64_t c = 0; c < L; c++) {
        w[c] = a->rho[0] + kernel_dot(a, x, a->coef + c * a->features);
        if (w[c] > w[best]) best = c;
    }
    /* onnxruntime's rule for two classes without probabilities */
    if (L == 2 && !a->prob_a) {
        double mx = w[best];
        if ((a->all_positive && mx >= 0.5) || (!a->all_positive && mx > 0)) best = 1;
    }
    *label = best;
    onyx_ml_post_row(a->post, w, L);
    for (int64_t c = 0; c < L; c++) z[c] = (float)w[c];
}

static void svc_task(void *ctx, int64_t begin, int64_t end, int thread) {
    const svc_job *j = ctx;
    double *w = j->work + (int64_t)thread * j->per;
    for (int64_t r = begin; r < end; r++) {
        const double *x = j->x + r * j->a->features;
        if (j->a->svc) svc_row(j, x, j->z + r * j->zc, j->label + r, w);
        else linear_row(j, x, j->z + r * j->zc, j->label + r, w);
    }
}

/* Checks the input against the model's feature count and converts it. */
static onyx_status svm_input(onyx_exec *x, const svm_attr *a, int64_t *rows,
                             const double **out) {
    const onyx_tensor *in = onyx_exec_input(x, 0);
    int64_t c;
    if (!in) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input X");
    onyx_status st = onyx_ml_rows(x, in, rows, &c);
    if (st) return st;
    if (c != a->features)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "the input has %lld features, the model %lld", (long long)c,
                              (long long)a->features);
    return onyx_ml_input_f64(x, in, out);
}

onyx_status onyx_ml_run_svm_classifier(const onyx_node *n, onyx_exec *x) {
    const svm_attr *a = n->state;
    int64_t rows, L = a->classes, np = L * (L - 1) / 2;
    const double *xd;
    onyx_status st = svm_input(x, a, &rows, &xd);
    if (st) return st;
    int64_t zc = L;
    if (a->svc && !a->prob_a) zc = L > 2 ? np : 2;
    onyx_tensor *z;
    if ((st = onyx_exec_output(x, 1, ONYX_DTYPE_FLOAT, 2, (int64_t[]){rows, zc}, &z))) return st;
    /* per-thread work: kernels, decisions, votes, pairwise r, p, Q, Qp */
    int64_t per = a->svc ? a->vectors + np + 3 * L + 2 * L * L : L;
    int64_t threads = onyx_exec_threads(x) > 0 ? onyx_exec_threads(x) : 1;
    int64_t cnt = onyx_dims_count(2, (int64_t[]){threads, per});
    size_t bytes = cnt < 0 ? SIZE_MAX : onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, cnt);
    double *work = bytes == SIZE_MAX ? NULL : onyx_exec_scratch(x, bytes);
    int64_t *label = onyx_exec_scratch(x, sizeof *label * (size_t)(rows ? rows : 1));
    if (!work || !label) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    svc_job j = {a, xd, z->data, zc, label, work, per};
    int64_t cost = (a->svc ? a->vectors : L) * a->features;
    onyx_exec_parallel(x, rows, 1 + 4096 / (cost > 0 ? cost : 1), svc_task, &j);
    return onyx_ml_labels_write(x, 0, &a->labels, rows, label);
}

// ----------------------------------------------------------------------------
// SVMRegressor

typedef struct svr_job {
    const svm_attr *a;
    const double *x;
    float *y;
} svr_job;

static void svr_task(void *ctx, int64_t begin, int64_t end, int thread) {
    (void)thread;
    const svr_job *j = ctx;
    const svm_attr *a = j->a;
    for (int64_t r = begin; r < end; r++) {
        const double *x = j->x + r * a->features;
        double s = a->rho[0];
        if (a->svc) {
            for (int64_t v = 0; v < a->vectors; v++)
                s += a->coef[v] * kernel_dot(a, x, a->sv + v * a->features);
        } else {
            s += kernel_dot(a, x, a->coef);
        }
        if (a->one_class) s = s > 0 ? 1.0 : -1.0;
        else if (a->post == ONYX_ML_POST_PROBIT) s = onyx_ml_probit(s);
        j->y[r] = (float)s;
    }
}

onyx_status onyx_ml_run_svm_regressor(const onyx_node *n, onyx_exec *x) {
    const svm_attr *a = n->state;
    int64_t rows;
    const double *xd;
    onyx_status st = svm_input(x, a, &rows, &xd);
    if (st) return st;
    onyx_tensor *y;
    st = onyx_exec_output(x, 0, ONYX_DTYPE_FLOAT, 2, (int64_t[]){rows, 1}, &y);
    if (st) return st;
    svr_job j = {a, xd, y->data};
    int64_t cost = (a->svc ? a->vectors : 1) * a->features;
    onyx_exec_parallel(x, rows, 1 + 4096 / (cost > 0 ? cost : 1), svr_task, &j);
    return ONYX_OK;
}
