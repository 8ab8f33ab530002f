/* loss.c - the loss operators: NegativeLogLikelihoodLoss and
 * SoftmaxCrossEntropyLoss (reductions none/sum/mean, class weights,
 * ignore_index, N-D inputs, the optional log_prob output).
 * Both compute in double and round once to the input type. */
#include "core/op.h"

#include <math.h>
#include <string.h>

typedef enum loss_reduction { LOSS_NONE, LOSS_SUM, LOSS_MEAN, LOSS_REDUCTION_COUNT } loss_reduction;

typedef struct loss_attr {
    loss_reduction reduction;
    bool has_ignore;
    int64_t ignore_index;
    bool softmax; /* SoftmaxCrossEntropyLoss: log-softmax over C first */
} loss_attr;

static onyx_status init_loss(onyx_node *n, onyx_error *err, bool softmax) {
    loss_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    const char *r = onyx_attr_string(n, "reduction", "mean");
    if (strcmp(r, "none") == 0)
        a->reduction = LOSS_NONE;
    else if (strcmp(r, "sum") == 0)
        a->reduction = LOSS_SUM;
    else if (strcmp(r, "mean") == 0)
        a->reduction = LOSS_MEAN;
    else
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "reduction must be none, sum or mean, got '%s'", r);
    a->has_ignore = onyx_attr_find(n, "ignore_index") != NULL;
    a->ignore_index = onyx_attr_int(n, "ignore_index", 0);
    a->softmax = softmax;
    n->state = a;
    return ONYX_OK;
}

static onyx_status init_nll(onyx_node *n, onyx_error *err) {
    return init_loss(n, err, false);
}
static onyx_status init_sce(onyx_node *n, onyx_error *err) {
    return init_loss(n, err, true);
}

/* input (N, C, d1..dk) and target (N, d1..dk): the loss of element (i, d)
 * is -w[t] * x[i, t, d] (x the log-probabilities), t = target[i, d]; ignored
 * targets weigh 0. "mean" divides by the sum of the applied weights. */
static onyx_status run_loss(const onyx_node *nd, onyx_exec *x) {
    const loss_attr *at = nd->state;
    const onyx_tensor *X = onyx_exec_input(x, 0), *Tg = onyx_exec_input(x, 1),
                      *W = onyx_exec_input(x, 2);
    if (!X || !Tg) return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "missing input");
    if (!onyx_dtype_is_float(X->dtype))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "input must be a float type, got %s",
                              onyx_dtype_name(X->dtype));
    if (Tg->dtype != ONYX_DTYPE_INT32 && Tg->dtype != ONYX_DTYPE_INT64)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "target must be int32 or int64, got %s",
                              onyx_dtype_name(Tg->dtype));
    if (X->ndim < 2)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "input must be (N, C, ...), got rank %d", X->ndim);
    int64_t N = X->dims[0], C = X->dims[1], D = 1;
    bool shape_ok = Tg->ndim == X->ndim - 1 && Tg->dims[0] == N;
    for (int d = 2; d < X->ndim && shape_ok; d++) {
        shape_ok = Tg->dims[d - 1] == X->dims[d];
        D *= X->dims[d];
    }
    if (!shape_ok)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "target shape must be the input shape without dimension 1");
    if (W && (W->dtype != X->dtype || W->ndim != 1 || W->dims[0] != C))
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                              "weight must be a 1-D tensor of %lld %s values", (long long)C,
                              onyx_dtype_name(X->dtype));

    onyx_tensor *L, *LP = NULL;
    onyx_status st = at->reduction == LOSS_NONE
                         ? onyx_exec_output(x, 0, X->dtype, Tg->ndim, Tg->dims, &L)
                         : onyx_exec_output(x, 0, X->dtype, 0, NULL, &L);
    if (st) return st;
    bool want_lp = at->softmax && nd->n_out > 1 && onyx_exec_wants_output(x, 1);
    if (want_lp && (st = onyx_exec_output(x, 1, X->dtype, X->ndim, X->dims, &LP))) return st;

    int64_t count = onyx_tensor_count(X), nt = N * D;
    double *lp = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, count + 1));
    double *loss = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, nt + 1));
    double *w = W ? onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, C + 1)) : NULL;
    if (!lp || !loss || (W && !w))
        return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    if (count) onyx_convert(ONYX_DTYPE_DOUBLE, lp, X->dtype, X->data, count, false);
    if (W && C) onyx_convert(ONYX_DTYPE_DOUBLE, w, W->dtype, W->data, C, false);

    /* log-softmax over C at every (i, d). */
    if (at->softmax && C > 0) {
        for (int64_t i = 0; i < N; i++)
            for (int64_t d = 0; d < D; d++) {
                double *p = lp + i * C * D + d;
                double mx = -INFINITY, sum = 0;
                for (int64_t c = 0; c < C; c++)
                    mx = p[c * D] > mx ? p[c * D] : mx;
                for (int64_t c = 0; c < C; c++)
                    sum += exp(p[c * D] - mx);
                double lse = mx + log(sum);
                for (int64_t c = 0; c < C; c++)
                    p[c * D] -= lse;
            }
    }
    if (LP) onyx_convert(LP->dtype, LP->data, ONYX_DTYPE_DOUBLE, lp, count, false);

    double total = 0, wsum = 0;
    for (int64_t i = 0; i < N; i++)
        for (int64_t d = 0; d < D; d++) {
            int64_t t = onyx_tensor_get_i64(Tg, i * D + d);
            double l = 0, wt = 0;
            if (!(at->has_ignore && t == at->ignore_index)) {
                if (t < 0 || t >= C)
                    return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                          "target %lld at position %lld is outside [0, %lld)",
                                          (long long)t, (long long)(i * D + d), (long long)C);
                wt = w ? w[t] : 1.0;
                l = -wt * lp[(i * C + t) * D + d];
            }
            loss[i * D + d] = l;
            total += l;
            wsum += wt;
        }
    if (at->reduction == LOSS_NONE) {
        onyx_convert(L->dtype, L->data, ONYX_DTYPE_DOUBLE, loss, nt, false);
        return ONYX_OK;
    }
    double r = at->reduction == LOSS_SUM ? total : total / wsum;
    onyx_convert(L->dtype, L->data, ONYX_DTYPE_DOUBLE, &r, 1, false);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Registry rows

#define T_LOSS                                                                                     \
    (ONYX_T(ONYX_DTYPE_FLOAT) | ONYX_T(ONYX_DTYPE_DOUBLE) | ONYX_T(ONYX_DTYPE_FLOAT16) |           \
     ONYX_T(ONYX_DTYPE_BFLOAT16))

const onyx_op_schema onyx_ops_loss[] = {
    {"", "NegativeLogLikelihoodLoss", 12, 2, 3, 1, 1, T_LOSS, init_nll, run_loss, 0},
    {"", "NegativeLogLikelihoodLoss", 13, 2, 3, 1, 1, T_LOSS, init_nll, run_loss, 0},
    {"", "NegativeLogLikelihoodLoss", 22, 2, 3, 1, 1, T_LOSS, init_nll, run_loss, 0},
    {"", "SoftmaxCrossEntropyLoss", 12, 2, 3, 1, 2, T_LOSS, init_sce, run_loss, 0},
    {"", "SoftmaxCrossEntropyLoss", 13, 2, 3, 1, 2, T_LOSS, init_sce, run_loss, 0},
    {0},
};
