/* training.c - the optimizer operators of ai.onnx.preview.training (opset
 * 1): Adagrad, Adam and Momentum (standard and Nesterov). Each updates n
 * tensors at once: inputs R, T, then X1..Xn, G1..Gn and the state tensors;
 * outputs the new X's, then the new states. Arithmetic is double, rounded
 * once to the tensor type. Not here: gradient computation (Gradient op). */
#include "core/op.h"

#include <math.h>
#include <string.h>

#define FAIL(...) onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, __VA_ARGS__)
#define OOM() onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory")

typedef enum optim_kind { OPT_ADAGRAD, OPT_ADAM, OPT_MOMENTUM, OPT_KIND_COUNT } optim_kind;

typedef struct optim_attr {
    optim_kind kind;
    int n_state;         /* state tensors per X: Adagrad 1 (H), Momentum 1 (V), Adam 2 (V, H) */
    double norm_coefficient, norm_coefficient_post;
    double decay_factor, epsilon; /* Adagrad, Adam (epsilon) */
    double alpha, beta;           /* Adam, Momentum */
    bool nesterov;                /* Momentum */
} optim_attr;

static onyx_status init_optim(onyx_node *n, onyx_error *err, optim_kind kind) {
    optim_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->kind = kind;
    a->n_state = kind == OPT_ADAM ? 2 : 1;
    a->norm_coefficient = onyx_attr_float(n, "norm_coefficient", 0.0f);
    a->norm_coefficient_post = onyx_attr_float(n, "norm_coefficient_post", 0.0f);
    a->decay_factor = onyx_attr_float(n, "decay_factor", 0.0f);
    a->epsilon = onyx_attr_float(n, "epsilon", 1e-6f);
    a->alpha = onyx_attr_float(n, "alpha", 0.9f);
    a->beta = onyx_attr_float(n, "beta", 0.999f);
    if (kind == OPT_MOMENTUM) {
        static const char *const required[] = {"alpha", "beta", "mode", "norm_coefficient"};
        for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
            if (!onyx_attr_find(n, required[i]))
                return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "missing attribute '%s'", required[i]);
        const char *mode = onyx_attr_string(n, "mode", "");
        if (strcmp(mode, "nesterov") == 0)
            a->nesterov = true;
        else if (strcmp(mode, "standard") != 0)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'mode' is '%s' (standard or nesterov)", mode);
    }
    int per = 2 + a->n_state; /* X, G, states */
    if ((n->n_in - 2) % per != 0 || n->n_in - 2 < per)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "expected 2 + %d*n inputs, got %d", per, n->n_in);
    int count = (n->n_in - 2) / per;
    if (n->n_out != count * (1 + a->n_state))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "expected %d outputs for %d tensors, got %d",
                           count * (1 + a->n_state), count, n->n_out);
    n->state = a;
    return ONYX_OK;
}

static onyx_status init_adagrad(onyx_node *n, onyx_error *err) {
    return init_optim(n, err, OPT_ADAGRAD);
}
static onyx_status init_adam(onyx_node *n, onyx_error *err) {
    return init_optim(n, err, OPT_ADAM);
}
static onyx_status init_momentum(onyx_node *n, onyx_error *err) {
    return init_optim(n, err, OPT_MOMENTUM);
}

/* Reads a tensor as doubles into scratch; NULL when out of memory. */
static double *as_doubles(onyx_exec *x, const onyx_tensor *t) {
    int64_t n = onyx_tensor_count(t);
    double *d = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, n + 1));
    if (d && n) onyx_convert(ONYX_DTYPE_DOUBLE, d, t->dtype, t->data, n, false);
    return d;
}

static bool same_shape(const onyx_tensor *a, const onyx_tensor *b) {
    return a->ndim == b->ndim && memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->ndim) == 0;
}

/* Adagrad:  r' = r / (1 + t * decay); g' = g + norm * x; h' = h + g'^2;
 *           x' = x - r' * g' / (sqrt(h') + eps).
 * Momentum: g' = g + norm * x; v' = alpha * v + (t > 0 ? beta : 1) * g';
 *           x' = x - r * v' (standard) or x - r * (g' + alpha * v') (Nesterov).
 * Adam:     g' = g + norm * x; v' = alpha v + (1 - alpha) g';
 *           h' = beta h + (1 - beta) g'^2;
 *           r' = t > 0 ? r sqrt(1 - beta^t) / (1 - alpha^t) : r;
 *           x' = (1 - norm_post) (x - r' v' / (sqrt(h') + eps)). */
static onyx_status run_optim(const onyx_node *nd, onyx_exec *x) {
    const optim_attr *a = nd->state;
    const onyx_tensor *R = onyx_exec_input(x, 0), *T = onyx_exec_input(x, 1);
    if (!R || !T) return FAIL("missing input R or T");
    if ((R->dtype != ONYX_DTYPE_FLOAT && R->dtype != ONYX_DTYPE_DOUBLE) || onyx_tensor_count(R) != 1)
        return FAIL("R must be a float or double scalar");
    if (T->dtype != ONYX_DTYPE_INT64 || onyx_tensor_count(T) != 1) return FAIL("T must be an int64 scalar");
    double r = onyx_tensor_get_f64(R, 0);
    int64_t t = onyx_tensor_get_i64(T, 0);
    int per = 2 + a->n_state, count = (nd->n_in - 2) / per;
    for (int k = 0; k < count; k++) {
        const onyx_tensor *in[4] = {0};
        for (int j = 0; j < per; j++) {
            in[j] = onyx_exec_input(x, 2 + j * count + k);
            if (!in[j]) return FAIL("missing input %d", 2 + j * count + k);
            if (in[j]->dtype != ONYX_DTYPE_FLOAT && in[j]->dtype != ONYX_DTYPE_DOUBLE)
                return FAIL("input %d must be float or double, got %s", 2 + j * count + k,
                            onyx_dtype_name(in[j]->dtype));
            if (!same_shape(in[j], in[0]))
                return FAIL("input %d has a different shape from X%d", 2 + j * count + k, k + 1);
        }
        int64_t n = onyx_tensor_count(in[0]);
        double *X = as_doubles(x, in[0]), *G = as_doubles(x, in[1]), *S1 = as_doubles(x, in[2]),
               *S2 = a->n_state > 1 ? as_doubles(x, in[3]) : NULL;
        if (!X || !G || !S1 || (a->n_state > 1 && !S2)) return OOM();
        double radj = r;
        if (a->kind == OPT_ADAGRAD) radj = r / (1.0 + (double)t * a->decay_factor);
        if (a->kind == OPT_ADAM && t > 0)
            radj = r * sqrt(1.0 - pow(a->beta, (double)t)) / (1.0 - pow(a->alpha, (double)t));
        double beta_adj = t > 0 ? a->beta : 1.0;
        for (int64_t i = 0; i < n; i++) {
            double g = a->norm_coefficient * X[i] + G[i];
            switch (a->kind) {
            case OPT_ADAGRAD:
                S1[i] += g * g;
                X[i] -= radj * g / (sqrt(S1[i]) + a->epsilon);
                break;
            case OPT_MOMENTUM:
                S1[i] = a->alpha * S1[i] + beta_adj * g;
                X[i] -= a->nesterov ? r * (g + a->alpha * S1[i]) : r * S1[i];
                break;
            default:
                S1[i] = a->alpha * S1[i] + (1.0 - a->alpha) * g;
                S2[i] = a->beta * S2[i] + (1.0 - a->beta) * g * g;
                X[i] = (1.0 - a->norm_coefficient_post) * (X[i] - radj * (S1[i] / (sqrt(S2[i]) + a->epsilon)));
                break;
            }
        }
        /* Outputs: X'_k at k, state j at (1 + j) * count + k. */
        const double *res[3] = {X, S1, S2};
        for (int j = 0; j < 1 + a->n_state; j++) {
            const onyx_tensor *like = in[j == 0 ? 0 : j + 1];
            onyx_tensor *out;
            onyx_status st = onyx_exec_output(x, j * count + k, like->dtype, like->ndim, like->dims, &out);
            if (st) return st;
            if (n) onyx_convert(out->dtype, out->data, ONYX_DTYPE_DOUBLE, res[j], n, false);
        }
    }
    return ONYX_OK;
}

#define T_OPT (ONYX_T(ONYX_DTYPE_FLOAT) | ONYX_T(ONYX_DTYPE_DOUBLE))

const onyx_op_schema onyx_ops_training[] = {
    {"ai.onnx.preview.training", "Adagrad", 1, 5, -1, 2, -1, T_OPT, init_adagrad, run_optim, 0},
    {"ai.onnx.preview.training", "Adam", 1, 6, -1, 3, -1, T_OPT, init_adam, run_optim, 0},
    {"ai.onnx.preview.training", "Momentum", 1, 5, -1, 2, -1, T_OPT, init_momentum, run_optim, 0},
    {0},
};
