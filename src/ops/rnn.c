/* rnn.c - recurrent operators: RNN, GRU and LSTM (opsets 1 to 22) with every
 * direction, both layouts, activation lists with alpha/beta, clip,
 * sequence_lens, initial states, peepholes and optional outputs. float32 and
 * double compute natively; float16 and bfloat16 compute in float32.
 * Does not own: the matrix products (src/kernels/gemm.c). */
#include "core/op.h"
#include "kernels/dispatch.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <math.h>

/* ---------------------------------------------------------------------- */
/* Attributes                                                              */

typedef enum rnn_kind { KIND_RNN, KIND_GRU, KIND_LSTM } rnn_kind;

typedef enum act_kind {
    ACT_RELU,
    ACT_TANH,
    ACT_SIGMOID,
    ACT_AFFINE,
    ACT_LEAKYRELU,
    ACT_THRESHOLDEDRELU,
    ACT_SCALEDTANH,
    ACT_HARDSIGMOID,
    ACT_ELU,
    ACT_SOFTSIGN,
    ACT_SOFTPLUS,
    ACT_COUNT
} act_kind;

/* Which activations take alpha/beta from activation_alpha/activation_beta,
 * and their defaults (those of the ONNX operators of the same name). Values
 * are consumed in list order by the activations that take them, as
 * onnxruntime does. */
static const struct act_info {
    const char *name;
    bool has_alpha, has_beta;
    float alpha, beta;
} act_info[] = {
    [ACT_RELU] = {"Relu", false, false, 0.0f, 0.0f},
    [ACT_TANH] = {"Tanh", false, false, 0.0f, 0.0f},
    [ACT_SIGMOID] = {"Sigmoid", false, false, 0.0f, 0.0f},
    [ACT_AFFINE] = {"Affine", true, true, 1.0f, 0.0f},
    [ACT_LEAKYRELU] = {"LeakyRelu", true, false, 0.01f, 0.0f},
    [ACT_THRESHOLDEDRELU] = {"ThresholdedRelu", true, false, 1.0f, 0.0f},
    [ACT_SCALEDTANH] = {"ScaledTanh", true, true, 1.0f, 1.0f},
    [ACT_HARDSIGMOID] = {"HardSigmoid", true, true, 0.2f, 0.5f},
    [ACT_ELU] = {"Elu", true, false, 1.0f, 0.0f},
    [ACT_SOFTSIGN] = {"Softsign", false, false, 0.0f, 0.0f},
    [ACT_SOFTPLUS] = {"Softplus", false, false, 0.0f, 0.0f},
};
static_assert(sizeof act_info / sizeof act_info[0] == ACT_COUNT, "act_info covers act_kind");

typedef struct rnn_act {
    act_kind kind;
    float alpha, beta;
} rnn_act;

typedef struct rnn_attrs {
    rnn_kind kind;
    int gates;        /* 1 (RNN), 3 (GRU: z r h), 4 (LSTM: i o f c) */
    int n_acts;       /* activations per direction: 1, 2 or 3 */
    int64_t hidden;   /* hidden_size attribute; 0 when absent */
    int dirs;         /* 1 or 2 */
    bool reverse;     /* direction "reverse" (with dirs == 1) */
    bool batch_major; /* layout 1: X (N, T, I), Y (N, T, D, H), states (N, D, H) */
    bool linear_before_reset;
    bool input_forget;
    float clip;        /* 0: no clipping */
    rnn_act act[2][3]; /* [direction][f, g, h] */
} rnn_attrs;

static onyx_status rnn_init(onyx_node *n, onyx_error *err) {
    rnn_attrs *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    static const act_kind defaults[3] = {ACT_SIGMOID, ACT_TANH, ACT_TANH};
    if (strcmp(n->op_type, "RNN") == 0) {
        a->kind = KIND_RNN, a->gates = 1, a->n_acts = 1;
    } else if (strcmp(n->op_type, "GRU") == 0) {
        a->kind = KIND_GRU, a->gates = 3, a->n_acts = 2;
    } else {
        a->kind = KIND_LSTM, a->gates = 4, a->n_acts = 3;
    }

    /* GRU-1 spells its default "foward"; absent means forward everywhere. */
    const char *dir = onyx_attr_string(n, "direction", "forward");
    a->dirs = 1;
    if (strcmp(dir, "bidirectional") == 0)
        a->dirs = 2;
    else if (strcmp(dir, "reverse") == 0)
        a->reverse = true;
    else if (strcmp(dir, "forward") != 0 && strcmp(dir, "foward") != 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'direction' is '%s'", dir);

    a->hidden = onyx_attr_int(n, "hidden_size", 0);
    if (a->hidden < 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'hidden_size' is %lld",
                           (long long)a->hidden);
    int64_t layout = onyx_attr_int(n, "layout", 0);
    if (layout != 0 && layout != 1)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'layout' is %lld",
                           (long long)layout);
    a->batch_major = layout == 1;
    a->linear_before_reset = onyx_attr_int(n, "linear_before_reset", 0) != 0;
    a->input_forget = onyx_attr_int(n, "input_forget", 0) != 0;
    if (onyx_attr_find(n, "clip")) {
        a->clip = onyx_attr_float(n, "clip", 0.0f);
        if (!(a->clip > 0.0f))
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'clip' must be positive");
    }

    const onyx_pb_attr *names = onyx_attr_find(n, "activations");
    const float *alphas = NULL, *betas = NULL;
    int64_t n_alpha = onyx_attr_floats(n, "activation_alpha", &alphas);
    int64_t n_beta = onyx_attr_floats(n, "activation_beta", &betas);
    int64_t ia = 0, ib = 0;
    size_t listed = names && names->type == ONYX_PB_ATTR_STRINGS ? names->n_strings : 0;
    /* RNN's default is Tanh; a list may name one direction's set and serve both. */
    if (listed && listed != (size_t)a->n_acts && listed != (size_t)(a->n_acts * a->dirs))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "attribute 'activations' has %zu names, expected %d", listed,
                           a->n_acts * a->dirs);
    for (int d = 0; d < a->dirs; d++) {
        for (int k = 0; k < a->n_acts; k++) {
            rnn_act *r = &a->act[d][k];
            size_t idx = (size_t)(d * a->n_acts + k);
            if (!listed) {
                r->kind = a->kind == KIND_RNN ? ACT_TANH : defaults[k];
                continue;
            }
            if (idx >= listed) { /* one set given for both directions */
                *r = a->act[0][k];
                continue;
            }
            const char *s = names->strings[idx].s ? names->strings[idx].s : "";
            int kind = -1;
            for (int q = 0; q < ACT_COUNT; q++)
                if (strcasecmp(s, act_info[q].name) == 0) kind = q;
            if (kind < 0)
                return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "activation '%s' is not supported",
                                   s);
            r->kind = (act_kind)kind;
            r->alpha = act_info[kind].alpha;
            r->beta = act_info[kind].beta;
            if (act_info[kind].has_alpha && ia < n_alpha) r->alpha = alphas[ia++];
            if (act_info[kind].has_beta && ib < n_beta) r->beta = betas[ib++];
        }
    }
    n->state = a;
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* The recurrence, one definition per compute type                        */

/* Everything a direction loop needs. Pointers are to compute-type arrays
 * (float or double); Y/Yh/Yc are NULL when that output is not wanted. */
typedef struct rnn_job {
    const rnn_attrs *a;
    onyx_exec *x;
    int64_t steps, N, I, H; /* steps, batch, input size, hidden size */
    const int32_t *lens;    /* (N) steps per batch item, or NULL: all T */
    const void *X;          /* (T, N, I), or (N, T, I) batch-major */
    const void *W;          /* (D, G*H, I) */
    const void *R;          /* (D, G*H, H) */
    const void *B;          /* (D, 2*G*H) or NULL */
    const void *h0, *c0;    /* (D, N, H) or (N, D, H) batch-major; NULL: zeros */
    const void *P;          /* (D, 3*H) LSTM peepholes (i, o, f) or NULL */
    void *Y;                /* (T, D, N, H) or (N, T, D, H) batch-major */
    void *Yh, *Yc;          /* (D, N, H) or (N, D, H) batch-major */
    onyx_parallel par;
    const onyx_sgemm_kernel *kern;
    void *work; /* sgemm workspace */
} rnn_job;

static void par_run(void *par_ctx, int64_t n, int64_t grain, onyx_task_fn fn, void *ctx) {
    onyx_exec_parallel(par_ctx, n, grain, fn, ctx);
}

/* c (m, n) = a (m, k) * b^T (b is (n, k)) + beta * c. */
static void mm_f32(const rnn_job *j, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                   const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    onyx_sgemm(j->kern, false, true, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc, &j->par, j->work);
}

static void mm_f64(const rnn_job *j, int64_t m, int64_t n, int64_t k, const double *a, int64_t lda,
                   const double *b, int64_t ldb, double beta, double *c, int64_t ldc) {
    onyx_dgemm(false, true, m, n, k, 1.0, a, lda, b, ldb, beta, c, ldc, &j->par);
}

/* DEFINE_RNN(T, S) defines, for compute type T with suffix S:
 *   act_S(act, v, n, clip)   v = act(clip(v)) in place (clip 0: none)
 *   dir_S(job, d, scratch)   runs direction d and writes its outputs
 * The scratch block holds, in T elements:
 *   xw (T*N, G*H)  input projections, biases folded in
 *   hr (N, G*H)    recurrent projections of the previous state
 *   h, c (N, H)    the state; tmp, tmp2 (N, H) per-step temporaries */
#define DEFINE_RNN(T, S, EXP, TANH, LOG1P, FABS)                                                   \
    static void act_##S(const rnn_act *a, T *v, int64_t n, T clip) {                               \
        if (clip > 0)                                                                              \
            for (int64_t i = 0; i < n; i++)                                                        \
                v[i] = v[i] < -clip ? -clip : v[i] > clip ? clip : v[i];                           \
        const T al = (T)a->alpha, be = (T)a->beta;                                                 \
        switch (a->kind) {                                                                         \
        case ACT_RELU:                                                                             \
            for (int64_t i = 0; i < n; i++)                                                        \
                v[i] = v[i] > 0 ? v[i] : 0;                                                        \
            break;                                                                                 \
        case ACT_TANH:                                                                             \
            for (int64_t i = 0; i < n; i++)                                                        \
                v[i] = TANH(v[i]);                                                                 \
            break;                                                                                 \
        case ACT_SIGMOID:                                                                          \
            for (int64_t i = 0; i < n; i++)                                                        \
                v[i] = 1 / (1 + EXP(-v[i]));                                                       \
            break;                                                                                 \
        case ACT_AFFINE:                                                                           \
            for (int64_t i = 0; i < n; i++)                                                        \
                v[i] = al * v[i] + be;                                                             \
            break;                                                                                 \
        case ACT_LEAKYRELU:                                                                        \
            for (int64_t i = 0; i < n; i++)                                                        \
                v[i] = v[i] >= 0 ? v[i] : al * v[i];                                               \
            break;                                                                                 \
        case ACT_THRESHOLDEDRELU:                                                                  \
            for (int64_t i = 0; i < n; i++)                                                        \
                v[i] = v[i] > al ? v[i] : 0;                                                       \
            break;                                                                                 \
        case ACT_SCALEDTANH:                                                                       \
            for (int64_t i = 0; i < n; i++)                                                        \
                v[i] = al * TANH(be * v[i]);                                                       \
            break;                                                                                 \
        case ACT_HARDSIGMOID:                                                                      \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T y = al * v[i] + be;                                                              \
                v[i] = y < 0 ? 0 : y > 1 ? 1 : y;                                                  \
            }                                                                                      \
            break;                                                                                 \
        case ACT_ELU:                                                                              \
            for (int64_t i = 0; i < n; i++)                                                        \
                v[i] = v[i] >= 0 ? v[i] : al * (EXP(v[i]) - 1);                                    \
            break;                                                                                 \
        case ACT_SOFTSIGN:                                                                         \
            for (int64_t i = 0; i < n; i++)                                                        \
                v[i] = v[i] / (1 + FABS(v[i]));                                                    \
            break;                                                                                 \
        case ACT_SOFTPLUS:                                                                         \
            for (int64_t i = 0; i < n; i++)                                                        \
                v[i] = v[i] > 0 ? v[i] + LOG1P(EXP(-v[i])) : LOG1P(EXP(v[i]));                     \
            break;                                                                                 \
        case ACT_COUNT:                                                                            \
            break;                                                                                 \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    static onyx_status dir_##S(const rnn_job *j, int d, T *scratch) {                              \
        const rnn_attrs *a = j->a;                                                                 \
        const int64_t Tn = j->steps, N = j->N, I = j->I, H = j->H, GH = a->gates * H;              \
        const int D = a->dirs;                                                                     \
        const bool bm = a->batch_major, rev = d == 1 || a->reverse;                                \
        const bool gru_lbr = a->kind == KIND_GRU && a->linear_before_reset;                        \
        const bool gru_std = a->kind == KIND_GRU && !a->linear_before_reset;                       \
        const T clip = (T)a->clip;                                                                 \
        const rnn_act *f = &a->act[d][0], *g = &a->act[d][1], *hact = &a->act[d][2];               \
        const T *W = (const T *)j->W + d * GH * I;                                                 \
        const T *R = (const T *)j->R + d * GH * H;                                                 \
        const T *Wb = j->B ? (const T *)j->B + d * 2 * GH : NULL;                                  \
        const T *Rb = Wb ? Wb + GH : NULL;                                                         \
        const T *P = j->P ? (const T *)j->P + d * 3 * H : NULL;                                    \
        T *xw = scratch, *hr = xw + Tn * N * GH, *h = hr + N * GH, *c = h + N * H;                 \
        T *tmp = c + N * H, *tmp2 = tmp + N * H;                                                   \
                                                                                                   \
        /* Input projections of every step at once; rows follow X's layout. */                     \
        mm_##S(j, Tn *N, GH, I, (const T *)j->X, I, W, I, 0, xw, GH);                              \
        if (Wb) {                                                                                  \
            /* GRU with linear_before_reset keeps Rb of the h gate apart. */                       \
            int64_t fold = gru_lbr ? 2 * H : GH;                                                   \
            for (int64_t r = 0; r < Tn * N; r++) {                                                 \
                T *row = xw + r * GH;                                                              \
                for (int64_t q = 0; q < GH; q++)                                                   \
                    row[q] += Wb[q];                                                               \
                for (int64_t q = 0; q < fold; q++)                                                 \
                    row[q] += Rb[q];                                                               \
            }                                                                                      \
        }                                                                                          \
        memset(tmp, 0, (size_t)(N * H) * sizeof(T));                                               \
        for (int64_t b = 0; b < N; b++) {                                                          \
            int64_t off = (bm ? b * D + d : d * N + b) * H;                                        \
            for (int64_t q = 0; q < H; q++) {                                                      \
                h[b * H + q] = j->h0 ? ((const T *)j->h0)[off + q] : 0;                            \
                c[b * H + q] = j->c0 ? ((const T *)j->c0)[off + q] : 0;                            \
            }                                                                                      \
        }                                                                                          \
                                                                                                   \
        for (int64_t s = 0; s < Tn; s++) {                                                         \
            if (onyx_exec_aborted(j->x))                                                           \
                return onyx_exec_fail(j->x, ONYX_ERR_CANCELLED, "the run was cancelled");          \
            const int64_t t = rev ? Tn - 1 - s : s;                                                \
            /* hr = h * R^T; the standard GRU defers its h gate until r is known. */               \
            mm_##S(j, N, gru_std ? 2 * H : GH, H, h, H, R, H, 0, hr, GH);                          \
            for (int64_t b = 0; b < N; b++) {                                                      \
                if (j->lens && t >= j->lens[b]) continue;                                          \
                const T *xr = xw + (bm ? b * Tn + t : t * N + b) * GH;                             \
                T *gt = hr + b * GH, *hb = h + b * H, *cb = c + b * H;                             \
                if (a->kind == KIND_RNN) {                                                         \
                    for (int64_t q = 0; q < H; q++)                                                \
                        hb[q] = xr[q] + gt[q];                                                     \
                    act_##S(f, hb, H, clip);                                                       \
                } else if (a->kind == KIND_GRU) {                                                  \
                    T *z = gt, *r = gt + H, *hh = gt + 2 * H;                                      \
                    for (int64_t q = 0; q < 2 * H; q++)                                            \
                        gt[q] += xr[q];                                                            \
                    act_##S(f, z, 2 * H, clip);                                                    \
                    if (gru_lbr) {                                                                 \
                        for (int64_t q = 0; q < H; q++)                                            \
                            hh[q] = xr[2 * H + q] + r[q] * (hh[q] + (Rb ? Rb[2 * H + q] : 0));     \
                        act_##S(g, hh, H, clip);                                                   \
                        for (int64_t q = 0; q < H; q++)                                            \
                            hb[q] = (1 - z[q]) * hh[q] + z[q] * hb[q];                             \
                    } else {                                                                       \
                        for (int64_t q = 0; q < H; q++)                                            \
                            tmp[b * H + q] = r[q] * hb[q];                                         \
                    }                                                                              \
                } else {                                                                           \
                    T *gi = gt, *go = gt + H, *gf = gt + 2 * H, *gc = gt + 3 * H;                  \
                    for (int64_t q = 0; q < GH; q++)                                               \
                        gt[q] += xr[q];                                                            \
                    if (P)                                                                         \
                        for (int64_t q = 0; q < H; q++) {                                          \
                            gi[q] += P[q] * cb[q];                                                 \
                            gf[q] += P[2 * H + q] * cb[q];                                         \
                        }                                                                          \
                    act_##S(f, gi, H, clip);                                                       \
                    if (a->input_forget)                                                           \
                        for (int64_t q = 0; q < H; q++)                                            \
                            gf[q] = 1 - gi[q];                                                     \
                    else                                                                           \
                        act_##S(f, gf, H, clip);                                                   \
                    act_##S(g, gc, H, clip);                                                       \
                    for (int64_t q = 0; q < H; q++)                                                \
                        cb[q] = gf[q] * cb[q] + gi[q] * gc[q];                                     \
                    if (P)                                                                         \
                        for (int64_t q = 0; q < H; q++)                                            \
                            go[q] += P[H + q] * cb[q];                                             \
                    act_##S(f, go, H, clip);                                                       \
                    T *hc = tmp + b * H;                                                           \
                    memcpy(hc, cb, (size_t)H * sizeof(T));                                         \
                    act_##S(hact, hc, H, 0);                                                       \
                    for (int64_t q = 0; q < H; q++)                                                \
                        hb[q] = go[q] * hc[q];                                                     \
                }                                                                                  \
            }                                                                                      \
            if (gru_std) {                                                                         \
                /* tmp = r (.) h for every item; tmp2 = tmp * Rh^T. */                             \
                mm_##S(j, N, H, H, tmp, H, R + 2 * H * H, H, 0, tmp2, H);                          \
                for (int64_t b = 0; b < N; b++) {                                                  \
                    if (j->lens && t >= j->lens[b]) continue;                                      \
                    const T *xr = xw + (bm ? b * Tn + t : t * N + b) * GH + 2 * H;                 \
                    T *z = hr + b * GH, *hh = tmp2 + b * H, *hb = h + b * H;                       \
                    for (int64_t q = 0; q < H; q++)                                                \
                        hh[q] += xr[q];                                                            \
                    act_##S(g, hh, H, clip);                                                       \
                    for (int64_t q = 0; q < H; q++)                                                \
                        hb[q] = (1 - z[q]) * hh[q] + z[q] * hb[q];                                 \
                }                                                                                  \
            }                                                                                      \
            if (j->Y) {                                                                            \
                for (int64_t b = 0; b < N; b++) {                                                  \
                    int64_t row = bm ? (b * Tn + t) * D + d : (t * D + d) * N + b;                 \
                    T *y = (T *)j->Y + row * H;                                                    \
                    if (j->lens && t >= j->lens[b])                                                \
                        memset(y, 0, (size_t)H * sizeof(T));                                       \
                    else                                                                           \
                        memcpy(y, h + b * H, (size_t)H * sizeof(T));                               \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        /* An empty sequence has a zero final state, as in onnxruntime. */                         \
        for (int64_t b = 0; b < N; b++) {                                                          \
            int64_t off = (bm ? b * D + d : d * N + b) * H;                                        \
            if (j->lens && j->lens[b] == 0) {                                                      \
                memset(h + b * H, 0, (size_t)H * sizeof(T));                                       \
                memset(c + b * H, 0, (size_t)H * sizeof(T));                                       \
            }                                                                                      \
            if (j->Yh) memcpy((T *)j->Yh + off, h + b * H, (size_t)H * sizeof(T));                 \
            if (j->Yc) memcpy((T *)j->Yc + off, c + b * H, (size_t)H * sizeof(T));                 \
        }                                                                                          \
        return ONYX_OK;                                                                            \
    }

DEFINE_RNN(float, f32, expf, tanhf, log1pf, fabsf)
DEFINE_RNN(double, f64, exp, tanh, log1p, fabs)

/* ---------------------------------------------------------------------- */
/* Running a node                                                          */

/* Formats dims as "(2, 3, 4)" into buf. */
static const char *dims_str(char *buf, size_t len, int nd, const int64_t *dims) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "(");
    for (int i = 0; i < nd && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (o < len) snprintf(buf + o, len - o, ")");
    return buf;
}

/* Fails unless t (when present) has dtype `dt` and shape want[0..nd). */
static onyx_status check(onyx_exec *x, const onyx_tensor *t, const char *what, onyx_dtype dt,
                         int nd, const int64_t *want) {
    if (!t) return ONYX_OK;
    if (t->dtype != dt)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "%s is %s, expected %s", what,
                              onyx_dtype_name(t->dtype), onyx_dtype_name(dt));
    bool ok = t->ndim == nd;
    for (int i = 0; ok && i < nd; i++)
        ok = t->dims[i] == want[i];
    if (!ok) {
        char got[128], exp[128];
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "%s has shape %s, expected %s", what,
                              dims_str(got, sizeof got, t->ndim, t->dims),
                              dims_str(exp, sizeof exp, nd, want));
    }
    return ONYX_OK;
}

/* Input data in the compute type: borrowed when it already is, else a
 * converted copy in scratch. NULL for an absent input; *st set on failure. */
static const void *as_compute(onyx_exec *x, const onyx_tensor *t, onyx_dtype ct, onyx_status *st) {
    if (!t || *st) return NULL;
    if (t->dtype == ct) return t->data;
    int64_t n = onyx_tensor_count(t);
    void *buf = onyx_exec_scratch(x, onyx_dtype_bytes(ct, n) + 1);
    if (!buf) {
        *st = onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory converting inputs");
        return NULL;
    }
    *st = onyx_convert(ct, buf, t->dtype, t->data, n, false);
    if (*st) onyx_exec_fail(x, *st, "cannot convert %s input", onyx_dtype_name(t->dtype));
    return buf;
}

/* Allocates output i when wanted and returns where the compute-type result
 * goes (the output itself, or scratch converted afterwards). */
static onyx_status want_output(onyx_exec *x, int i, onyx_dtype dt, onyx_dtype ct, int nd,
                               const int64_t *dims, onyx_tensor **out, void **dst) {
    *out = NULL;
    *dst = NULL;
    if (!onyx_exec_wants_output(x, i)) return ONYX_OK;
    onyx_status st = onyx_exec_output(x, i, dt, nd, dims, out);
    if (st) return st;
    if (dt == ct) {
        *dst = (*out)->data;
        return ONYX_OK;
    }
    *dst = onyx_exec_scratch(x, onyx_dtype_bytes(ct, onyx_tensor_count(*out)) + 1);
    if (!*dst) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    return ONYX_OK;
}

static onyx_status rnn_run(const onyx_node *n, onyx_exec *x) {
    const rnn_attrs *a = n->state;
    const onyx_tensor *X = onyx_exec_input(x, 0), *W = onyx_exec_input(x, 1),
                      *R = onyx_exec_input(x, 2), *B = onyx_exec_input(x, 3),
                      *L = onyx_exec_input(x, 4), *h0 = onyx_exec_input(x, 5);
    const onyx_tensor *c0 = a->kind == KIND_LSTM ? onyx_exec_input(x, 6) : NULL;
    const onyx_tensor *P = a->kind == KIND_LSTM ? onyx_exec_input(x, 7) : NULL;
    if (!X || !W || !R)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "X, W and R are required");
    if (X->ndim != 3)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "X must be 3-D, got %d-D", X->ndim);
    const onyx_dtype dt = X->dtype;
    if (dt != ONYX_DTYPE_FLOAT && dt != ONYX_DTYPE_DOUBLE && dt != ONYX_DTYPE_FLOAT16 &&
        dt != ONYX_DTYPE_BFLOAT16)
        return onyx_exec_fail(x, ONYX_ERR_UNSUPPORTED, "X of type %s", onyx_dtype_name(dt));
    const onyx_dtype ct = dt == ONYX_DTYPE_DOUBLE ? ONYX_DTYPE_DOUBLE : ONYX_DTYPE_FLOAT;
    const bool bm = a->batch_major;
    const int64_t D = a->dirs, G = a->gates;
    const int64_t Tn = bm ? X->dims[1] : X->dims[0], N = bm ? X->dims[0] : X->dims[1];
    const int64_t I = X->dims[2];
    if (W->ndim != 3)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "W must be 3-D, got %d-D", W->ndim);
    if (W->dims[1] % G)
        return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, "W dim 1 (%lld) is not %lld * hidden",
                              (long long)W->dims[1], (long long)G);
    const int64_t H = a->hidden ? a->hidden : W->dims[1] / G;
    /* Sizes are bounded by the input tensors, which already exist. */
    onyx_status st;
    int64_t wd[3] = {D, G * H, I}, rd[3] = {D, G * H, H}, bd[2] = {D, 2 * G * H}, ld[1] = {N};
    int64_t sd[3] = {bm ? N : D, bm ? D : N, H}, pd[2] = {D, 3 * H};
    if ((st = check(x, W, "W", dt, 3, wd)) || (st = check(x, R, "R", dt, 3, rd)) ||
        (st = check(x, B, "B", dt, 2, bd)) ||
        (st = check(x, L, "sequence_lens", ONYX_DTYPE_INT32, 1, ld)) ||
        (st = check(x, h0, "initial_h", dt, 3, sd)) ||
        (st = check(x, c0, "initial_c", dt, 3, sd)) || (st = check(x, P, "P", dt, 2, pd)))
        return st;
    const int32_t *lens = L ? L->data : NULL;
    for (int64_t b = 0; lens && b < N; b++)
        if (lens[b] < 0 || lens[b] > Tn)
            return onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT,
                                  "sequence_lens[%lld] = %d is outside [0, %lld]", (long long)b,
                                  (int)lens[b], (long long)Tn);

    rnn_job j = {.a = a, .x = x, .steps = Tn, .N = N, .I = I, .H = H, .lens = lens};
    st = ONYX_OK;
    j.X = as_compute(x, X, ct, &st);
    j.W = as_compute(x, W, ct, &st);
    j.R = as_compute(x, R, ct, &st);
    j.B = as_compute(x, B, ct, &st);
    j.h0 = as_compute(x, h0, ct, &st);
    j.c0 = as_compute(x, c0, ct, &st);
    j.P = as_compute(x, P, ct, &st);
    if (st) return st;

    onyx_tensor *Y, *Yh, *Yc = NULL;
    int64_t yd[4] = {bm ? N : Tn, bm ? Tn : D, bm ? D : N, H};
    if ((st = want_output(x, 0, dt, ct, 4, yd, &Y, &j.Y)) ||
        (st = want_output(x, 1, dt, ct, 3, sd, &Yh, &j.Yh)))
        return st;
    if (a->kind == KIND_LSTM && (st = want_output(x, 2, dt, ct, 3, sd, &Yc, &j.Yc))) return st;

    int threads = onyx_exec_threads(x);
    j.par = (onyx_parallel){par_run, x, threads};
    j.kern = onyx_kernels_get()->sgemm;
    size_t ws = 64;
    if (ct == ONYX_DTYPE_FLOAT) {
        size_t w1 = onyx_sgemm_workspace(Tn * N, G * H, I, threads);
        size_t w2 = onyx_sgemm_workspace(N, G * H, H, threads);
        ws += w1 > w2 ? w1 : w2;
    }
    /* xw (T*N, G*H), hr (N, G*H), h, c, tmp, tmp2 (N, H). */
    int64_t cells = onyx_dims_count(2, (int64_t[]){Tn * N + N, G * H});
    size_t bytes = cells < 0 ? SIZE_MAX : onyx_dtype_bytes(ct, cells + 4 * N * H);
    void *scratch = bytes == SIZE_MAX ? NULL : onyx_exec_scratch(x, bytes);
    j.work = onyx_exec_scratch(x, ws);
    if (!scratch || !j.work) return onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory");

    for (int d = 0; d < D; d++) {
        st = ct == ONYX_DTYPE_FLOAT ? dir_f32(&j, d, scratch) : dir_f64(&j, d, scratch);
        if (st) return st;
    }

    onyx_tensor *outs[3] = {Y, Yh, Yc};
    void *srcs[3] = {j.Y, j.Yh, j.Yc};
    for (int i = 0; i < 3; i++) {
        if (!outs[i] || dt == ct) continue;
        st = onyx_convert(dt, outs[i]->data, ct, srcs[i], onyx_tensor_count(outs[i]), false);
        if (st) return onyx_exec_fail(x, st, "cannot convert output %d", i);
    }
    return ONYX_OK;
}

/* ---------------------------------------------------------------------- */
/* Registry rows                                                           */

#define T_RNN (ONYX_T(ONYX_DTYPE_FLOAT) | ONYX_T(ONYX_DTYPE_DOUBLE) | ONYX_T(ONYX_DTYPE_FLOAT16))
#define T_RNN22 (T_RNN | ONYX_T(ONYX_DTYPE_BFLOAT16))
#define ROW(op, v, xi, xo, types)                                                                  \
    { "", op, v, 3, xi, 0, xo, types, rnn_init, rnn_run }

const onyx_op_schema onyx_ops_rnn[] = {
    ROW("RNN", 1, 6, 2, T_RNN),     ROW("RNN", 7, 6, 2, T_RNN),
    ROW("RNN", 14, 6, 2, T_RNN),    ROW("RNN", 22, 6, 2, T_RNN22),
    ROW("GRU", 1, 6, 2, T_RNN),     ROW("GRU", 3, 6, 2, T_RNN),
    ROW("GRU", 7, 6, 2, T_RNN),     ROW("GRU", 14, 6, 2, T_RNN),
    ROW("GRU", 22, 6, 2, T_RNN22),  ROW("LSTM", 1, 8, 3, T_RNN),
    ROW("LSTM", 7, 8, 3, T_RNN),    ROW("LSTM", 14, 8, 3, T_RNN),
    ROW("LSTM", 22, 8, 3, T_RNN22), {0},
};
