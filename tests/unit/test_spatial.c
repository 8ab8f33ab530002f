/* test_spatial.c - the attention, loss, spatial and misc operators
 * (src/ops/attention.c, loss.c, spatial.c, misc.c) on what the ONNX backend
 * node tests do not reach: Attention's blocked multi-threaded path at
 * BERT-like sizes against a naive double-precision twin, DeformConv with
 * zero offsets against a naive convolution, Einsum chains against naive
 * sums, and hostile inputs (indices, boxes, grids, shapes, equations) that
 * must fail cleanly or stay in bounds (the ASan build checks the latter).
 * Each case builds a one-node model in memory and runs it. */
#include "core/tensor.h"
#include "onyx.h"
#include "unit.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// A one-node ModelProto writer

typedef struct wb {
    uint8_t *p;
    size_t n, cap;
} wb;

static void wb_raw(wb *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) abort();
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void wb_varint(wb *b, uint64_t v) {
    uint8_t t[10];
    int k = 0;
    while (v >= 0x80)
        t[k++] = (uint8_t)(v | 0x80), v >>= 7;
    t[k++] = (uint8_t)v;
    wb_raw(b, t, (size_t)k);
}

static void wb_tag(wb *b, uint32_t num, int wire) {
    wb_varint(b, (uint64_t)num << 3 | (unsigned)wire);
}

static void wb_int(wb *b, uint32_t num, int64_t v) {
    wb_tag(b, num, 0);
    wb_varint(b, (uint64_t)v);
}

static void wb_bytes(wb *b, uint32_t num, const void *d, size_t n) {
    wb_tag(b, num, 2);
    wb_varint(b, n);
    wb_raw(b, d, n);
}

static void wb_str(wb *b, uint32_t num, const char *s) {
    wb_bytes(b, num, s, strlen(s));
}

static void wb_msg(wb *b, uint32_t num, wb *inner) {
    wb_bytes(b, num, inner->p, inner->n);
    free(inner->p);
    memset(inner, 0, sizeof *inner);
}

static void attr_int(wb *node, const char *name, int64_t v) {
    wb a = {0};
    wb_str(&a, 1, name);
    wb_int(&a, 3, v);
    wb_int(&a, 20, 2);
    wb_msg(node, 5, &a);
}

static void attr_float(wb *node, const char *name, float v) {
    wb a = {0};
    wb_str(&a, 1, name);
    wb_tag(&a, 2, 5);
    wb_raw(&a, &v, 4);
    wb_int(&a, 20, 1);
    wb_msg(node, 5, &a);
}

static void attr_ints(wb *node, const char *name, int n, const int64_t *v) {
    wb a = {0};
    wb_str(&a, 1, name);
    for (int i = 0; i < n; i++)
        wb_int(&a, 8, v[i]);
    wb_int(&a, 20, 7);
    wb_msg(node, 5, &a);
}

static void attr_str(wb *node, const char *name, const char *s) {
    wb a = {0};
    wb_str(&a, 1, name);
    wb_str(&a, 4, s);
    wb_int(&a, 20, 3);
    wb_msg(node, 5, &a);
}

static void value_info(wb *g, uint32_t field, const char *name, onyx_dtype dt) {
    wb vi = {0}, tp = {0}, tt = {0};
    wb_str(&vi, 1, name);
    wb_int(&tt, 1, dt);
    wb_msg(&tp, 1, &tt);
    wb_msg(&vi, 2, &tp);
    wb_msg(g, field, &vi);
}

static const char *const in_names[] = {"i0", "i1", "i2", "i3", "i4", "i5", "i6"};
static const char *const out_names[] = {"o0", "o1", "o2", "o3"};

/* Wraps `node` into a ModelProto at `opset`; an input whose type is
 * ONYX_DTYPE_UNDEFINED is written as an omitted ("") node input. */
static void build_model(wb *m, wb *node, int opset, int nin, const onyx_dtype *in_types, int nout,
                        const onyx_dtype *out_types) {
    wb g = {0}, op = {0};
    for (int i = 0; i < nin; i++)
        wb_str(node, 1, in_types[i] == ONYX_DTYPE_UNDEFINED ? "" : in_names[i]);
    for (int i = 0; i < nout; i++)
        wb_str(node, 2, out_names[i]);
    wb_msg(&g, 1, node);
    wb_str(&g, 2, "g");
    for (int i = 0; i < nin; i++)
        if (in_types[i] != ONYX_DTYPE_UNDEFINED) value_info(&g, 11, in_names[i], in_types[i]);
    for (int i = 0; i < nout; i++)
        value_info(&g, 12, out_names[i], out_types[i]);
    wb_int(m, 1, 8);
    wb_str(&op, 1, "");
    wb_int(&op, 2, opset);
    wb_msg(m, 8, &op);
    wb_msg(m, 7, &g);
}

typedef struct harness {
    wb bytes;
    onyx_model *model;
    onyx_session *session;
    onyx_tensor_view out[4];
    onyx_error err;
} harness;

static onyx_tensor_view view(onyx_dtype dt, int ndim, const int64_t *dims, const void *data) {
    onyx_tensor_view v = {.dtype = dt, .ndim = ndim, .data = (void *)data};
    for (int k = 0; k < ndim; k++)
        v.dims[k] = dims[k];
    return v;
}

static const onyx_tensor_view omitted = {.dtype = ONYX_DTYPE_UNDEFINED};

/* Loads `node`; returns the load status (the message is in h->err). */
static onyx_status load_node(harness *h, wb *node, int opset, int nin, const onyx_tensor_view *ins,
                             int nout, const onyx_dtype *out_types) {
    onyx_dtype it[7];
    for (int i = 0; i < nin; i++)
        it[i] = ins[i].dtype;
    memset(h, 0, sizeof *h);
    build_model(&h->bytes, node, opset, nin, it, nout, out_types);
    return onyx_model_load_memory(h->bytes.p, h->bytes.n, NULL, NULL, &h->model, &h->err);
}

/* Runs `node` on the given inputs (omitted ones skipped) with `threads`
 * threads; returns the run's status (load failures fail the test). */
static onyx_status run_node(harness *h, wb *node, int opset, int nin, const onyx_tensor_view *ins,
                            int nout, const onyx_dtype *out_types, int threads, int *failed) {
    onyx_status st = load_node(h, node, opset, nin, ins, nout, out_types);
    if (st) {
        fprintf(stderr, "  load: %s\n", h->err.message);
        *failed = 1;
        return st;
    }
    onyx_options o;
    onyx_options_init(&o);
    o.threads = threads;
    st = onyx_session_new(h->model, &o, &h->session, &h->err);
    if (st) {
        *failed = 1;
        return st;
    }
    const char *names[7];
    onyx_tensor_view given[7];
    int n = 0;
    for (int i = 0; i < nin; i++)
        if (ins[i].dtype != ONYX_DTYPE_UNDEFINED) names[n] = in_names[i], given[n++] = ins[i];
    return onyx_session_run_tensors(h->session, n, names, given, nout, out_names, h->out, &h->err);
}

static void fini(harness *h) {
    onyx_session_free(h->session);
    onyx_model_free(h->model);
    free(h->bytes.p);
}

static wb op_node(const char *op) {
    wb n = {0};
    wb_str(&n, 4, op);
    return n;
}

#define RUN(h, node, opset, nin, ins, nout, types)                                                 \
    run_node(h, node, opset, nin, ins, nout, types, 1, unit_failed_)
#define RUN_T(h, node, opset, nin, ins, nout, types, threads)                                      \
    run_node(h, node, opset, nin, ins, nout, types, threads, unit_failed_)

/* Deterministic values in [-1, 1). */
static void fill(float *p, int64_t n, uint32_t seed) {
    uint32_t s = seed * 2654435761u + 1;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)((s >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

static const onyx_dtype F = ONYX_DTYPE_FLOAT, I64 = ONYX_DTYPE_INT64;

// ----------------------------------------------------------------------------
// Attention: blocked path against a naive twin

typedef struct attn_case {
    bool three;
    int64_t B, Hq, Hkv, Sq, Skv, P, D, Dv;
    bool causal, mask;
    float softcap;
} attn_case;

/* Naive attention in double over 4-D views; q/k/v/y index functions handle
 * the 3-D layout. mask is (Sq, T) additive or NULL. */
static void naive_attention(const attn_case *c, const float *q, const float *k, const float *v,
                            const float *pk, const float *pv, const float *mask, double *y) {
    int64_t T = c->P + c->Skv, reps = c->Hq / c->Hkv;
    double *s = malloc(sizeof(double) * (size_t)T);
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t h = 0; h < c->Hq; h++) {
            int64_t hk = h / reps;
            for (int64_t i = 0; i < c->Sq; i++) {
                double mx = -INFINITY;
                for (int64_t j = 0; j < T; j++) {
                    double acc = 0;
                    for (int64_t d = 0; d < c->D; d++) {
                        double qv = c->three ? q[(b * c->Sq + i) * c->Hq * c->D + h * c->D + d]
                                             : q[((b * c->Hq + h) * c->Sq + i) * c->D + d];
                        double kv;
                        if (j < c->P)
                            kv = pk[((b * c->Hkv + hk) * c->P + j) * c->D + d];
                        else if (c->three)
                            kv = k[(b * c->Skv + j - c->P) * c->Hkv * c->D + hk * c->D + d];
                        else
                            kv = k[((b * c->Hkv + hk) * c->Skv + j - c->P) * c->D + d];
                        acc += qv * kv;
                    }
                    acc /= sqrt((double)c->D);
                    if (mask) acc += mask[i * T + j];
                    if (c->causal && j > i + c->P) acc = -INFINITY;
                    if (c->softcap > 0) acc = c->softcap * tanh(acc / c->softcap);
                    s[j] = acc;
                    if (acc > mx) mx = acc;
                }
                double sum = 0;
                for (int64_t j = 0; j < T; j++)
                    sum += (s[j] = exp(s[j] - mx));
                for (int64_t d = 0; d < c->Dv; d++) {
                    double acc = 0;
                    for (int64_t j = 0; j < T; j++) {
                        double vv;
                        if (j < c->P)
                            vv = pv[((b * c->Hkv + hk) * c->P + j) * c->Dv + d];
                        else if (c->three)
                            vv = v[(b * c->Skv + j - c->P) * c->Hkv * c->Dv + hk * c->Dv + d];
                        else
                            vv = v[((b * c->Hkv + hk) * c->Skv + j - c->P) * c->Dv + d];
                        acc += s[j] / sum * vv;
                    }
                    int64_t yi = c->three ? (b * c->Sq + i) * c->Hq * c->Dv + h * c->Dv + d
                                          : ((b * c->Hq + h) * c->Sq + i) * c->Dv + d;
                    y[yi] = acc;
                }
            }
        }
    free(s);
}

static void check_attention(int *unit_failed_, const attn_case *c, int threads) {
    int64_t T = c->P + c->Skv;
    int64_t nq = c->B * c->Hq * c->Sq * c->D, nk = c->B * c->Hkv * c->Skv * c->D;
    int64_t nv = c->B * c->Hkv * c->Skv * c->Dv, ny = c->B * c->Hq * c->Sq * c->Dv;
    int64_t npk = c->B * c->Hkv * c->P * c->D, npv = c->B * c->Hkv * c->P * c->Dv;
    float *q = malloc(sizeof(float) * (size_t)nq), *k = malloc(sizeof(float) * (size_t)nk);
    float *v = malloc(sizeof(float) * (size_t)nv), *m = malloc(sizeof(float) * (size_t)(c->Sq * T));
    float *pk = malloc(sizeof(float) * (size_t)(npk + 1)),
          *pv = malloc(sizeof(float) * (size_t)(npv + 1));
    double *want = malloc(sizeof(double) * (size_t)ny);
    fill(q, nq, 1), fill(k, nk, 2), fill(v, nv, 3), fill(m, c->Sq * T, 4), fill(pk, npk, 5),
        fill(pv, npv, 6);
    naive_attention(c, q, k, v, pk, pv, c->mask ? m : NULL, want);

    int64_t qd[4], kd[4], vd[4], md[2] = {c->Sq, T}, pkd[4] = {c->B, c->Hkv, c->P, c->D},
                                 pvd[4] = {c->B, c->Hkv, c->P, c->Dv};
    int r = c->three ? 3 : 4;
    if (c->three) {
        qd[0] = kd[0] = vd[0] = c->B;
        qd[1] = c->Sq, kd[1] = vd[1] = c->Skv;
        qd[2] = c->Hq * c->D, kd[2] = c->Hkv * c->D, vd[2] = c->Hkv * c->Dv;
    } else {
        qd[0] = kd[0] = vd[0] = c->B;
        qd[1] = c->Hq, kd[1] = vd[1] = c->Hkv;
        qd[2] = c->Sq, kd[2] = vd[2] = c->Skv;
        qd[3] = kd[3] = c->D, vd[3] = c->Dv;
    }
    onyx_tensor_view ins[6] = {view(F, r, qd, q),
                               view(F, r, kd, k),
                               view(F, r, vd, v),
                               c->mask ? view(F, 2, md, m) : omitted,
                               c->P ? view(F, 4, pkd, pk) : omitted,
                               c->P ? view(F, 4, pvd, pv) : omitted};
    int nin = c->P ? 6 : c->mask ? 4 : 3;
    onyx_dtype outs[3] = {F, F, F};
    wb node = op_node("Attention");
    if (c->three) {
        attr_int(&node, "q_num_heads", c->Hq);
        attr_int(&node, "kv_num_heads", c->Hkv);
    }
    if (c->causal) attr_int(&node, "is_causal", 1);
    if (c->softcap > 0) attr_float(&node, "softcap", c->softcap);
    harness h;
    onyx_status st = RUN_T(&h, &node, 23, nin, ins, c->P ? 3 : 1, outs, threads);
    CHECK(st == ONYX_OK);
    if (st == ONYX_OK) {
        const float *y = h.out[0].data;
        double worst = 0;
        for (int64_t i = 0; i < ny; i++) {
            double e = fabs(y[i] - want[i]);
            if (!(e <= worst)) worst = e;
        }
        CHECK_NEAR(worst, 0.0, 2e-5);
        if (c->P) {
            /* present_key = concat(past_key, K) along the sequence. */
            const float *o = h.out[1].data;
            CHECK(h.out[1].dims[2] == T);
            CHECK(o[0] == pk[0]);
            if (!c->three) CHECK(o[c->P * c->D] == k[0]);
        }
    }
    fini(&h);
    free(q), free(k), free(v), free(m), free(pk), free(pv), free(want);
}

UNIT_TEST(attention_bert_like_blocks_and_threads) {
    /* Sq > 64 exercises several query blocks per head; 2 threads with
     * B*H small splits rows across threads. */
    attn_case c1 = {
        .three = true, .B = 1, .Hq = 4, .Hkv = 4, .Sq = 97, .Skv = 97, .D = 16, .Dv = 16};
    check_attention(unit_failed_, &c1, 2);
    check_attention(unit_failed_, &c1, 1);
    attn_case c2 = {.B = 2,
                    .Hq = 6,
                    .Hkv = 2,
                    .Sq = 33,
                    .Skv = 41,
                    .D = 24,
                    .Dv = 7,
                    .causal = true,
                    .mask = true};
    check_attention(unit_failed_, &c2, 2);
    attn_case c3 = {.three = true,
                    .B = 3,
                    .Hq = 4,
                    .Hkv = 1,
                    .Sq = 1,
                    .Skv = 1,
                    .P = 17,
                    .D = 8,
                    .Dv = 8,
                    .causal = true,
                    .softcap = 5.0f};
    check_attention(unit_failed_, &c3, 2);
    attn_case c4 = {
        .B = 1, .Hq = 2, .Hkv = 2, .Sq = 5, .Skv = 3, .P = 4, .D = 3, .Dv = 5, .mask = true};
    check_attention(unit_failed_, &c4, 1);
}

/* A query row whose boolean mask is all false: softmax over scores that are
 * all -inf is 0/0, NaN in the ONNX reference (onnxruntime writes zeros).
 * The row's exp saw a NaN argument, whose conversion to an exponent was
 * undefined behaviour (UBSan, found by fuzzing); the other row is exact. */
UNIT_TEST(attention_fully_masked_row) {
    float q[8] = {1, 1, 1, 1, 1, 1, 1, 1}, v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint8_t mask[4] = {0, 0, 1, 1};
    int64_t d[4] = {1, 1, 2, 4}, md[2] = {2, 2};
    onyx_tensor_view ins[4] = {view(F, 4, d, q), view(F, 4, d, q), view(F, 4, d, v),
                               view(ONYX_DTYPE_BOOL, 2, md, mask)};
    onyx_dtype o = F;
    harness h;
    wb node = op_node("Attention");
    CHECK(RUN(&h, &node, 23, 4, ins, 1, &o) == ONYX_OK);
    const float *y = h.out[0].data;
    for (int j = 0; y && j < 4; j++) {
        CHECK(isnan(y[j]));
        CHECK_NEAR(y[4 + j], (v[j] + v[4 + j]) / 2, 1e-6); /* equal scores: the mean */
    }
    fini(&h);
}

UNIT_TEST(attention_rejects_bad_shapes) {
    float buf[256] = {0};
    harness h;
    onyx_dtype o = F;
    /* 3-D inputs without head counts. */
    int64_t d3[3] = {1, 2, 8};
    onyx_tensor_view in3[3] = {view(F, 3, d3, buf), view(F, 3, d3, buf), view(F, 3, d3, buf)};
    wb node = op_node("Attention");
    CHECK(RUN(&h, &node, 23, 3, in3, 1, &o) == ONYX_ERR_INVALID_ARGUMENT);
    fini(&h);
    /* q_num_heads not a multiple of kv_num_heads. */
    node = op_node("Attention");
    attr_int(&node, "q_num_heads", 4);
    attr_int(&node, "kv_num_heads", 8);
    int64_t dk[3] = {1, 2, 16};
    onyx_tensor_view in3b[3] = {view(F, 3, d3, buf), view(F, 3, dk, buf), view(F, 3, dk, buf)};
    CHECK(RUN(&h, &node, 23, 3, in3b, 1, &o) == ONYX_ERR_INVALID_ARGUMENT);
    fini(&h);
    /* A mask wider than the keys, and a mask that does not broadcast. */
    int64_t d4[4] = {1, 2, 3, 4}, mw[2] = {3, 5}, mb[3] = {3, 3, 4};
    onyx_tensor_view in4[4] = {view(F, 4, d4, buf), view(F, 4, d4, buf), view(F, 4, d4, buf),
                               view(F, 2, mw, buf)};
    node = op_node("Attention");
    CHECK(RUN(&h, &node, 23, 4, in4, 1, &o) == ONYX_ERR_INVALID_ARGUMENT);
    fini(&h);
    in4[3] = view(F, 3, mb, buf);
    node = op_node("Attention");
    CHECK(RUN(&h, &node, 23, 4, in4, 1, &o) == ONYX_ERR_INVALID_ARGUMENT);
    fini(&h);
    /* past_key without past_value, and a past_key of the wrong head size. */
    int64_t pd[4] = {1, 2, 5, 3};
    onyx_tensor_view in6[6] = {view(F, 4, d4, buf), view(F, 4, d4, buf),
                               view(F, 4, d4, buf), omitted,
                               view(F, 4, pd, buf), view(F, 4, pd, buf)};
    node = op_node("Attention");
    CHECK(RUN(&h, &node, 23, 6, in6, 1, &o) == ONYX_ERR_INVALID_ARGUMENT);
    fini(&h);
    node = op_node("Attention");
    attr_int(&node, "qk_matmul_output_mode", 7);
    CHECK(load_node(&h, &node, 23, 3, in4, 1, &o) != ONYX_OK);
    fini(&h);
}

UNIT_TEST(rotary_embedding_rejects_bad_positions) {
    float x[2 * 2 * 3 * 4] = {0}, cache[10 * 2] = {0};
    int64_t xd[4] = {2, 2, 3, 4}, cd[2] = {10, 2}, pd[2] = {2, 3};
    int64_t pos[6] = {0, 1, 2, 3, 10, 5};
    onyx_tensor_view ins[4] = {view(F, 4, xd, x), view(F, 2, cd, cache), view(F, 2, cd, cache),
                               view(I64, 2, pd, pos)};
    harness h;
    wb node = op_node("RotaryEmbedding");
    CHECK(RUN(&h, &node, 23, 4, ins, 1, &F) == ONYX_ERR_INVALID_ARGUMENT);
    fini(&h);
    pos[4] = -1;
    node = op_node("RotaryEmbedding");
    CHECK(RUN(&h, &node, 23, 4, ins, 1, &F) == ONYX_ERR_INVALID_ARGUMENT);
    fini(&h);
    pos[4] = 9;
    node = op_node("RotaryEmbedding");
    CHECK(RUN(&h, &node, 23, 4, ins, 1, &F) == ONYX_OK);
    fini(&h);
}

// ----------------------------------------------------------------------------
// Losses

UNIT_TEST(loss_targets_out_of_range_fail) {
    float x[2 * 3] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
    int64_t xd[2] = {2, 3}, td = 2;
    int64_t t[2] = {1, 3};
    onyx_tensor_view ins[2] = {view(F, 2, xd, x), view(I64, 1, &td, t)};
    harness h;
    wb node = op_node("NegativeLogLikelihoodLoss");
    CHECK(RUN(&h, &node, 13, 2, ins, 1, &F) == ONYX_ERR_INVALID_ARGUMENT);
    fini(&h);
    /* The same target ignored: loss = -x[0][1] / 1 (mean over one weight). */
    node = op_node("NegativeLogLikelihoodLoss");
    attr_int(&node, "ignore_index", 3);
    CHECK(RUN(&h, &node, 13, 2, ins, 1, &F) == ONYX_OK);
    if (h.out[0].data) CHECK_NEAR(*(float *)h.out[0].data, -0.2, 1e-6);
    fini(&h);
    t[1] = -7;
    node = op_node("SoftmaxCrossEntropyLoss");
    attr_int(&node, "ignore_index", -1);
    CHECK(RUN(&h, &node, 13, 2, ins, 1, &F) == ONYX_ERR_INVALID_ARGUMENT);
    fini(&h);
}

// ----------------------------------------------------------------------------
// GridSample, RoiAlign, MaxRoiPool, NonMaxSuppression

UNIT_TEST(grid_sample_hostile_coordinates_stay_in_bounds) {
    float x[1 * 2 * 3 * 4];
    fill(x, 24, 7);
    float g[1 * 2 * 4 * 2] = {NAN,   0.5f, INFINITY, -INFINITY, 1e30f,  -1e30f, 3.5f,  -7.25f,
                              -1.0f, 1.0f, 0.0f,     0.0f,      1e-30f, NAN,    -3.0f, 2.0f};
    int64_t xd[4] = {1, 2, 3, 4}, gd[4] = {1, 2, 4, 2};
    static const char *const modes[3] = {"linear", "nearest", "cubic"};
    static const char *const pads[3] = {"zeros", "border", "reflection"};
    for (int m = 0; m < 3; m++)
        for (int p = 0; p < 3; p++)
            for (int a = 0; a < 2; a++) {
                wb node = op_node("GridSample");
                attr_str(&node, "mode", modes[m]);
                attr_str(&node, "padding_mode", pads[p]);
                attr_int(&node, "align_corners", a);
                onyx_tensor_view ins[2] = {view(F, 4, xd, x), view(F, 4, gd, g)};
                harness h;
                CHECK(RUN(&h, &node, 22, 2, ins, 1, &F) == ONYX_OK);
                if (h.out[0].data) {
                    const float *y = h.out[0].data;
                    /* Border/reflection nearest/linear never leave X's range. */
                    if (p && m < 2)
                        for (int i = 0; i < 16; i++)
                            CHECK(fabsf(y[i]) <= 1.0f);
                    /* (0, 0) with align_corners samples between the centers. */
                    CHECK(isfinite(y[5]));
                }
                fini(&h);
            }
    /* Opset 16 names the modes bilinear/bicubic and takes 4-D only. */
    wb node = op_node("GridSample");
    attr_str(&node, "mode", "linear");
    onyx_tensor_view ins[2] = {view(F, 4, xd, x), view(F, 4, gd, g)};
    harness h;
    CHECK(load_node(&h, &node, 16, 2, ins, 1, &F) != ONYX_OK);
    fini(&h);
}

UNIT_TEST(roi_ops_reject_bad_boxes) {
    float x[1 * 1 * 4 * 4];
    for (int i = 0; i < 16; i++)
        x[i] = (float)i;
    int64_t xd[4] = {1, 1, 4, 4}, rd[2] = {1, 4}, bd = 1;
    float roi[4] = {0, 0, 3, 3};
    int64_t bi[1] = {1};
    onyx_tensor_view ins[3] = {view(F, 4, xd, x), view(F, 2, rd, roi), view(I64, 1, &bd, bi)};
    harness h;
    wb node = op_node("RoiAlign");
    CHECK(RUN(&h, &node, 16, 3, ins, 1, &F) == ONYX_ERR_INVALID_ARGUMENT);
    fini(&h);
    bi[0] = 0;
    roi[2] = INFINITY;
    node = op_node("RoiAlign");
    CHECK(RUN(&h, &node, 16, 3, ins, 1, &F) == ONYX_ERR_INVALID_ARGUMENT);
    fini(&h);
    /* A huge box finishes (sampling is capped) and stays finite. */
    roi[0] = -1e9f, roi[1] = -1e9f, roi[2] = 1e9f, roi[3] = 1e9f;
    node = op_node("RoiAlign");
    CHECK(RUN(&h, &node, 16, 3, ins, 1, &F) == ONYX_OK);
    if (h.out[0].data) CHECK(isfinite(*(float *)h.out[0].data));
    fini(&h);

    /* MaxRoiPool: the whole image in one bin is its maximum; a bad batch
     * index fails. */
    float r5[5] = {0, 0, 0, 3, 3};
    int64_t r5d[2] = {1, 5};
    onyx_tensor_view mins[2] = {view(F, 4, xd, x), view(F, 2, r5d, r5)};
    node = op_node("MaxRoiPool");
    int64_t ps[2] = {1, 1};
    attr_ints(&node, "pooled_shape", 2, ps);
    CHECK(RUN(&h, &node, 22, 2, mins, 1, &F) == ONYX_OK);
    if (h.out[0].data) CHECK(*(float *)h.out[0].data == 15.0f);
    fini(&h);
    r5[0] = 1;
    node = op_node("MaxRoiPool");
    attr_ints(&node, "pooled_shape", 2, ps);
    CHECK(RUN(&h, &node, 22, 2, mins, 1, &F) == ONYX_ERR_INVALID_ARGUMENT);
    fini(&h);
    r5[0] = NAN;
    node = op_node("MaxRoiPool");
    attr_ints(&node, "pooled_shape", 2, ps);
    CHECK(RUN(&h, &node, 22, 2, mins, 1, &F) == ONYX_ERR_INVALID_ARGUMENT);
    fini(&h);
}

UNIT_TEST(nms_limits_nan_and_shapes) {
    /* Boxes 0 and 1 overlap (IoU 0.81), box 2 is apart; box 3 has a NaN score. */
    float boxes[4 * 4] = {0, 0, 10, 10, 1, 1, 10, 10, 20, 20, 30, 30, 0, 0, 1, 1};
    float scores[4] = {0.9f, 0.95f, 0.5f, NAN};
    int64_t bd[3] = {1, 4, 4}, sd[3] = {1, 1, 4}, one = 1;
    int64_t maxo[1] = {INT64_MAX};
    float iou[1] = {0.5f};
    onyx_tensor_view ins[4] = {view(F, 3, bd, boxes), view(F, 3, sd, scores),
                               view(I64, 1, &one, maxo), view(F, 1, &one, iou)};
    harness h;
    wb node = op_node("NonMaxSuppression");
    CHECK(RUN(&h, &node, 11, 4, ins, 1, &I64) == ONYX_OK);
    if (h.out[0].data) {
        const int64_t *y = h.out[0].data;
        CHECK(h.out[0].dims[0] == 3 && h.out[0].dims[1] == 3);
        CHECK(y[2] == 1 && y[5] == 2 && y[8] == 3); /* by score; NaN last */
    }
    fini(&h);
    /* Scores that do not match the boxes fail. */
    int64_t sbad[3] = {1, 1, 3};
    ins[1] = view(F, 3, sbad, scores);
    node = op_node("NonMaxSuppression");
    CHECK(RUN(&h, &node, 11, 4, ins, 1, &I64) == ONYX_ERR_INVALID_ARGUMENT);
    fini(&h);
}

// ----------------------------------------------------------------------------
// Col2Im, CenterCropPad, TensorScatter

UNIT_TEST(col2im_and_crop_and_scatter_edges) {
    harness h;
    /* Col2Im: a block count that does not match the shapes fails. */
    float col[1 * 4 * 5] = {0};
    int64_t cd[3] = {1, 4, 5}, two = 2, img[2] = {3, 3}, blk[2] = {2, 2};
    onyx_tensor_view cins[3] = {view(F, 3, cd, col), view(I64, 1, &two, img),
                                view(I64, 1, &two, blk)};
    wb node = op_node("Col2Im");
    CHECK(RUN(&h, &node, 18, 3, cins, 1, &F) == ONYX_ERR_INVALID_ARGUMENT);
    fini(&h);
    blk[1] = 0;
    node = op_node("Col2Im");
    CHECK(RUN(&h, &node, 18, 3, cins, 1, &F) == ONYX_ERR_INVALID_ARGUMENT);
    fini(&h);

    /* CenterCropPad on strings: crop one axis, pad the other with "". */
    const char *words[6] = {"a", "b", "c", "d", "e", "f"};
    int64_t wd[2] = {3, 2}, shp[2] = {1, 4};
    onyx_tensor_view sins[2] = {view(ONYX_DTYPE_STRING, 2, wd, words), view(I64, 1, &two, shp)};
    onyx_dtype S = ONYX_DTYPE_STRING;
    node = op_node("CenterCropPad");
    CHECK(RUN(&h, &node, 18, 2, sins, 1, &S) == ONYX_OK);
    if (h.out[0].data) {
        char **o = h.out[0].data;
        CHECK(h.out[0].dims[0] == 1 && h.out[0].dims[1] == 4);
        CHECK((!o[0] || !*o[0]) && strcmp(o[1], "c") == 0 && strcmp(o[2], "d") == 0);
        CHECK(o[1] != words[2]);
    }
    fini(&h);

    /* TensorScatter: linear writes past the end fail; circular wraps,
     * negative indices included. */
    float past[2 * 4] = {0, 1, 2, 3, 4, 5, 6, 7}, upd[2 * 2] = {10, 11, 12, 13};
    int64_t pd[2] = {2, 4}, ud[2] = {2, 2}, wi[2] = {3, -1};
    onyx_tensor_view tins[3] = {view(F, 2, pd, past), view(F, 2, ud, upd), view(I64, 1, &two, wi)};
    node = op_node("TensorScatter");
    attr_int(&node, "axis", 1);
    CHECK(RUN(&h, &node, 24, 3, tins, 1, &F) == ONYX_ERR_INVALID_ARGUMENT);
    fini(&h);
    node = op_node("TensorScatter");
    attr_int(&node, "axis", 1);
    attr_str(&node, "mode", "circular");
    CHECK(RUN(&h, &node, 24, 3, tins, 1, &F) == ONYX_OK);
    if (h.out[0].data) {
        const float *y = h.out[0].data;
        CHECK(y[3] == 10 && y[0] == 11 && y[1] == 1); /* batch 0 at 3, 0 */
        CHECK(y[7] == 12 && y[4] == 13 && y[5] == 5); /* batch 1 at -1 = 3, 0 */
    }
    fini(&h);
    node = op_node("TensorScatter");
    attr_int(&node, "axis", 0);
    CHECK(RUN(&h, &node, 24, 3, tins, 1, &F) == ONYX_ERR_INVALID_ARGUMENT);
    fini(&h);
    /* Extreme write indices wrap without overflow: INT64_MAX % 4 = 3. */
    wi[0] = INT64_MAX, wi[1] = INT64_MIN;
    node = op_node("TensorScatter");
    attr_int(&node, "axis", 1);
    attr_str(&node, "mode", "circular");
    CHECK(RUN(&h, &node, 24, 3, tins, 1, &F) == ONYX_OK);
    if (h.out[0].data) {
        const float *y = h.out[0].data;
        CHECK(y[3] == 10 && y[0] == 11);
        CHECK(y[4] == 12 && y[5] == 13); /* INT64_MIN % 4 = 0 */
    }
    fini(&h);
    /* Col2Im pads near INT64_MAX are refused at load. */
    node = op_node("Col2Im");
    int64_t huge[4] = {INT64_MAX, 0, 0, 0};
    attr_ints(&node, "pads", 4, huge);
    CHECK(load_node(&h, &node, 18, 3, cins, 1, &F) != ONYX_OK);
    fini(&h);
}

// ----------------------------------------------------------------------------
// DeformConv with zero offsets is a convolution

UNIT_TEST(deform_conv_zero_offsets_is_conv) {
    enum { N = 2, C = 4, H = 7, W = 9, OC = 6, KH = 3, KW = 2, G = 2 };
    int64_t pads[4] = {1, 0, 2, 1}, strides[2] = {2, 1}, dil[2] = {1, 2};
    int64_t oh = (H + pads[0] + pads[2] - ((KH - 1) * dil[0] + 1)) / strides[0] + 1;
    int64_t ow = (W + pads[1] + pads[3] - ((KW - 1) * dil[1] + 1)) / strides[1] + 1;
    float *x = malloc(sizeof(float) * N * C * H * W),
          *w = malloc(sizeof(float) * OC * (C / G) * KH * KW);
    float b[OC];
    float *off = calloc((size_t)(N * 2 * KH * KW * oh * ow), sizeof(float));
    fill(x, N * C * H * W, 11), fill(w, OC * (C / G) * KH * KW, 12), fill(b, OC, 13);
    int64_t xd[4] = {N, C, H, W}, wd[4] = {OC, C / G, KH, KW}, bd = OC,
            od[4] = {N, 2 * KH * KW, oh, ow};
    onyx_tensor_view ins[4] = {view(F, 4, xd, x), view(F, 4, wd, w), view(F, 4, od, off),
                               view(F, 1, &bd, b)};
    wb node = op_node("DeformConv");
    attr_int(&node, "group", G);
    attr_ints(&node, "pads", 4, pads);
    attr_ints(&node, "strides", 2, strides);
    attr_ints(&node, "dilations", 2, dil);
    harness h;
    CHECK(RUN_T(&h, &node, 22, 4, ins, 1, &F, 2) == ONYX_OK);
    if (h.out[0].data) {
        const float *y = h.out[0].data;
        double worst = 0;
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++)
                for (int64_t i = 0; i < oh; i++)
                    for (int64_t j = 0; j < ow; j++) {
                        double acc = b[o];
                        int g = o / (OC / G);
                        for (int c = 0; c < C / G; c++)
                            for (int ki = 0; ki < KH; ki++)
                                for (int kj = 0; kj < KW; kj++) {
                                    int64_t yy = i * strides[0] - pads[0] + ki * dil[0];
                                    int64_t xx = j * strides[1] - pads[1] + kj * dil[1];
                                    if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                                    acc += (double)w[((o * (C / G) + c) * KH + ki) * KW + kj] *
                                           x[((n * C + g * (C / G) + c) * H + yy) * W + xx];
                                }
                        double e = fabs(acc - y[((n * OC + o) * oh + i) * ow + j]);
                        if (e > worst) worst = e;
                    }
        CHECK_NEAR(worst, 0.0, 1e-5);
    }
    fini(&h);
    free(x), free(w), free(off);
}

// ----------------------------------------------------------------------------
// Einsum and Det

UNIT_TEST(einsum_chain_against_naive_sums) {
    /* "ab,bc,cd->da": a three-operand chain with a transposed result. */
    enum { A = 3, Bn = 5, Cn = 4, Dn = 2 };
    float p[A * Bn], q[Bn * Cn], r[Cn * Dn];
    fill(p, A * Bn, 21), fill(q, Bn * Cn, 22), fill(r, Cn * Dn, 23);
    int64_t pd[2] = {A, Bn}, qd[2] = {Bn, Cn}, rd[2] = {Cn, Dn};
    onyx_tensor_view ins[3] = {view(F, 2, pd, p), view(F, 2, qd, q), view(F, 2, rd, r)};
    wb node = op_node("Einsum");
    attr_str(&node, "equation", "ab, bc ,cd->da");
    harness h;
    CHECK(RUN(&h, &node, 12, 3, ins, 1, &F) == ONYX_OK);
    if (h.out[0].data) {
        const float *y = h.out[0].data;
        CHECK(h.out[0].dims[0] == Dn && h.out[0].dims[1] == A);
        for (int d = 0; d < Dn; d++)
            for (int a = 0; a < A; a++) {
                double s = 0;
                for (int b = 0; b < Bn; b++)
                    for (int c = 0; c < Cn; c++)
                        s += (double)p[a * Bn + b] * q[b * Cn + c] * r[c * Dn + d];
                CHECK_NEAR(y[d * A + a], s, 1e-5);
            }
    }
    fini(&h);
    /* Trace in implicit mode ("ii" sums the diagonal) on int64. */
    int64_t m[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, md[2] = {3, 3};
    onyx_tensor_view tin = view(I64, 2, md, m);
    node = op_node("Einsum");
    attr_str(&node, "equation", "ii");
    CHECK(RUN(&h, &node, 12, 1, &tin, 1, &I64) == ONYX_OK);
    if (h.out[0].data) CHECK(h.out[0].ndim == 0 && *(int64_t *)h.out[0].data == 15);
    fini(&h);
    /* Bad equations fail at load; wrong arity or sizes fail at run. */
    static const char *const bad[] = {"ij,jk->ik1", "i.j->i", "ij->ii", "ij->k", "i..j->i"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        node = op_node("Einsum");
        attr_str(&node, "equation", bad[i]);
        CHECK(load_node(&h, &node, 12, 1, &tin, 1, &I64) != ONYX_OK);
        fini(&h);
    }
    node = op_node("Einsum");
    attr_str(&node, "equation", "ij,jk->ik");
    CHECK(RUN(&h, &node, 12, 1, &tin, 1, &I64) == ONYX_ERR_INVALID_ARGUMENT);
    fini(&h);
    int64_t m2[6] = {0}, m2d[2] = {2, 3};
    onyx_tensor_view two[2] = {view(I64, 2, md, m), view(I64, 2, m2d, m2)};
    node = op_node("Einsum");
    attr_str(&node, "equation", "ij,jk->ik");
    CHECK(RUN(&h, &node, 12, 2, two, 1, &I64) == ONYX_ERR_INVALID_ARGUMENT);
    fini(&h);
}

UNIT_TEST(det_pivots_and_singular) {
    /* det([[0,1],[1,0]]) = -1 needs a row swap; a singular matrix gives 0;
     * det of a 3x3 with known value 49. */
    float a[4 + 4] = {0, 1, 1, 0, 1, 2, 2, 4};
    int64_t ad[3] = {2, 2, 2};
    onyx_tensor_view in = view(F, 3, ad, a);
    harness h;
    wb node = op_node("Det");
    CHECK(RUN(&h, &node, 22, 1, &in, 1, &F) == ONYX_OK);
    if (h.out[0].data) {
        const float *y = h.out[0].data;
        CHECK(h.out[0].ndim == 1 && h.out[0].dims[0] == 2);
        CHECK_NEAR(y[0], -1.0, 1e-6);
        CHECK_NEAR(y[1], 0.0, 1e-6);
    }
    fini(&h);
    double b[9] = {2, -3, 1, 2, 0, -1, 1, 4, 5};
    int64_t bd[2] = {3, 3};
    onyx_dtype D = ONYX_DTYPE_DOUBLE;
    in = view(D, 2, bd, b);
    node = op_node("Det");
    CHECK(RUN(&h, &node, 22, 1, &in, 1, &D) == ONYX_OK);
    if (h.out[0].data) CHECK_NEAR(*(double *)h.out[0].data, 49.0, 1e-9);
    fini(&h);
    int64_t nd[2] = {2, 3};
    in = view(D, 2, nd, b);
    node = op_node("Det");
    CHECK(RUN(&h, &node, 22, 1, &in, 1, &D) == ONYX_ERR_INVALID_ARGUMENT);
    fini(&h);
}
