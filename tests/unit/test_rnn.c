/* test_rnn.c - the recurrent (rnn.c) and quantization (quant.c) operators end
 * to end through the public API, on what the ONNX node tests leave out:
 * bidirectional LSTM with sequence_lens, peepholes, activation lists with
 * alpha/beta and clip; batch-major reverse GRU with linear_before_reset;
 * omitted outputs and thread counts; blocked int4 quantization, per-axis
 * uint16 dequantization to float16, per-channel QLinearConv, a
 * DynamicQuantizeLinear large enough to split over threads; bad inputs.
 * Expected values: onnxruntime 1.x (LSTM/GRU/RNN/DequantizeLinear; layout 1
 * through onnxruntime's layout 0 on transposed data), the ONNX reference
 * implementation where onnxruntime has no kernel (int4) or is inexact (its
 * u8s8 convolution saturates int16 pairs), and plain loops written here. */
#include "core/tensor.h"
#include "testmodel.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// A one-node model built in memory

enum { MAXIO = 9 };

/* One node; inputs/outputs named "" are omitted. Attributes are written as
 * tm_attr specs: "name=i:5", "name=f:0.5", "name=s:text", "name=S:a,b"
 * (strings), "name=F:0.1,0.2" (floats) or "name=I:1,2" (ints). Graph inputs
 * take their types from `types`. */
typedef struct model_spec {
    const char *op;
    int opset;
    const char *in[MAXIO];
    onyx_dtype types[MAXIO];
    const char *out[3];
    const char *attrs[8];
} model_spec;

static tm_buf build(const model_spec *ms) {
    tm_buf g = {0}, node = {0};
    for (int i = 0; i < MAXIO && ms->in[i]; i++)
        tm_str(&node, 1, ms->in[i]);
    for (int i = 0; i < 3 && ms->out[i]; i++)
        tm_str(&node, 2, ms->out[i]);
    tm_str(&node, 4, ms->op);
    for (int i = 0; i < 8 && ms->attrs[i]; i++)
        tm_attr(&node, ms->attrs[i]);
    tm_add_node(&g, &node);
    for (int i = 0; i < MAXIO && ms->in[i]; i++)
        if (ms->in[i][0]) tm_value(&g, 11, ms->in[i], ms->types[i], -1, NULL);
    for (int i = 0; i < 3 && ms->out[i]; i++)
        if (ms->out[i][0]) tm_io(&g, 12, ms->out[i], NULL);
    return tm_model(&g, ms->opset);
}

/* Loads the model, binds in[k] to the k-th non-empty input name and runs with
 * `threads` threads. The non-empty outputs are copied into out[0..) (heap
 * tensors the caller releases). Returns the load or run status; `err` says
 * why. */
static onyx_status run(const model_spec *ms, int threads, const onyx_tensor_view *in,
                       onyx_tensor *out, onyx_error *err) {
    tm_run h = {.bytes = build(ms)};
    const char *names[MAXIO], *onames[3];
    int n_in = 0, n_out = 0;
    for (int i = 0; i < MAXIO && ms->in[i]; i++)
        if (ms->in[i][0]) names[n_in++] = ms->in[i];
    for (int i = 0; i < 3 && ms->out[i]; i++)
        if (ms->out[i][0]) onames[n_out++] = ms->out[i];
    onyx_status st = tm_run_model(&h, threads, n_in, names, in, n_out, onames);
    for (int i = 0; !st && i < n_out; i++) {
        onyx_tensor t = {.dtype = h.out[i].dtype, .ndim = h.out[i].ndim, .data = h.out[i].data};
        memcpy(t.dims, h.out[i].dims, sizeof t.dims);
        st = onyx_tensor_copy(&out[i], &t);
    }
    *err = h.err;
    tm_run_fini(&h);
    return st;
}

/* The generator the expected values were computed from (same sequence in
 * the Python script): uniform in [-2, 2) times `scale`, exact in float. */
static void fill(unsigned *state, float *x, int n, float scale) {
    for (int i = 0; i < n; i++) {
        *state = *state * 1103515245u + 12345u;
        x[i] = ((float)((*state >> 8) & 0xffff) / 65536.0f * 4.0f - 2.0f) * scale;
    }
}

static bool same_shape(const onyx_tensor *t, int nd, const int64_t *dims) {
    if (t->ndim != nd) return false;
    for (int i = 0; i < nd; i++)
        if (t->dims[i] != dims[i]) return false;
    return true;
}

// ----------------------------------------------------------------------------
// Expected values

static const float lstm_y[32] = {
    0.135131493f,   0.860660553f,  0.177689165f,   0.817038357f,  -0.0667078644f, 0.328376859f,
    0.168958679f,   -0.244025603f, 0.268036187f,   1.09576976f,   0.179252401f,   1.09643292f,
    -0.0485514365f, 0.35447979f,   -0.0615122803f, -0.392451704f, 0.0747193396f,  0.112247244f,
    0.0f,           0.0f,          0.0607757792f,  0.179980278f,  0.0f,           0.0f,
    -0.0221678391f, 0.129420817f,  0.0f,           0.0f,          -0.092215091f,  0.136466369f,
    0.0f,           0.0f};
static const float lstm_yh[8] = {-0.0221678391f, 0.129420817f, 0.179252401f, 1.09643292f,
                                 -0.0667078644f, 0.328376859f, 0.168958679f, -0.244025603f};
static const float lstm_yc[8] = {-0.030841114f,  0.733637691f, 0.311748624f, 1.21825886f,
                                 -0.0930639356f, 1.2089684f,   0.279307246f, -0.575752616f};
static const float gru_y[18] = {
    -0.964707911f, -0.760814667f, 0.952606559f, -0.941805482f, -0.480382204f, 0.900188208f,
    -0.929022789f, 0.136131674f,  0.858478487f, -0.649573684f, -0.198186934f, 0.663305581f,
    0.0948598981f, -0.107668281f, 0.749257922f, 0.100348413f,  -0.691659451f, 0.306572527f};
static const float gru_yh[6] = {-0.964707911f, -0.760814667f, 0.952606559f,
                                -0.649573684f, -0.198186934f, 0.663305581f};
static const float rnn_yh[60] = {
    -0.868445814f, 0.943517685f,  -0.938807487f, -0.556686342f,  0.997866511f,   0.225149393f,
    0.983125687f,  0.718142152f,  -0.390154123f, 0.985589385f,   0.968480349f,   0.419200063f,
    0.957732797f,  0.395869851f,  -0.762147307f, -0.843424141f,  0.99374938f,    0.580582142f,
    0.950517416f,  -0.721301675f, 0.718824863f,  -0.0169076324f, -0.813318372f,  0.0244326591f,
    -0.313353956f, 0.870706916f,  0.484130859f,  -0.124204397f,  0.97482121f,    -0.0851863027f,
    0.709152222f,  0.018654108f,  0.99574852f,   0.872221708f,   -0.289021313f,  -0.928062856f,
    0.993068457f,  -0.736790538f, 0.935881257f,  0.721163034f,   0.370543957f,   -0.809937179f,
    0.880351305f,  -0.927400708f, 0.89368844f,   0.135924816f,   0.0814036131f,  0.510583162f,
    -0.306049168f, 0.0359523296f, 0.971207142f,  -0.988491178f,  -0.0598853827f, 0.864067435f,
    -0.453787744f, -0.367948711f, 0.155415416f,  -0.12506783f,   0.943747759f,   -0.472489655f};
static const int q_y[10] = {7, -8, -1, -2, 5, -8, 7, -6, -1, 2};
static const float dq_y[12] = {-0.100036621f, 500.0f,   3.27734375f,  0.0f,
                               29.90625f,     2.5f,     0.723144531f, INFINITY,
                               12.25f,        27168.0f, -3.27734375f, -10.0f};
static const int qc_x[32] = {241, 39,  32,  63,  83,  188, 26,  213, 181, 179, 5,
                             13,  0,   226, 227, 168, 23,  231, 79,  203, 18,  238,
                             137, 234, 53,  103, 58,  115, 85,  183, 239, 148};
static const int qc_w[54] = {-110, -53, -100, 5,   78, 48,   40, -81, -28, 51,  -71, -97, 0,    -37,
                             -113, 91,  -15,  -19, 23, 112,  92, 43,  -26, -79, 78,  34,  17,   99,
                             -107, -71, -12,  -66, -9, -119, 22, -14, -90, 6,   76,  54,  -107, 113,
                             72,   -52, 64,   87,  10, -37,  23, -25, 3,   98,  50,  11};
static const int qc_y[12] = {75, 115, 17, 0, 84, 17, 70, 255, 115, 210, 160, 213};

static const float rnn0_y[16] = {
    0.0f, 0.0f, -0.999884605f, 0.977889061f, 0.0f, 0.0f, 0.999983788f, 0.894665599f,
    0.0f, 0.0f, -0.968355775f, -0.9845438f,  0.0f, 0.0f, 0.989934802f, 0.0247907639f};
static const float rnn0_yh[8] = {0.0f, 0.0f, -0.968355775f, -0.9845438f,
                                 0.0f, 0.0f, 0.999983788f,  0.894665599f};

// ----------------------------------------------------------------------------
// Tests

/* Compares a float tensor with expected values. */
static void check_f32(int *unit_failed_, const onyx_tensor *t, const float *want, int n,
                      double tol) {
    CHECK(t->dtype == ONYX_DTYPE_FLOAT && onyx_tensor_count(t) == n);
    if (t->dtype != ONYX_DTYPE_FLOAT || onyx_tensor_count(t) != n) return;
    const float *got = t->data;
    for (int i = 0; i < n; i++)
        CHECK_NEAR(got[i], want[i], tol);
}

#define F ONYX_DTYPE_FLOAT

UNIT_TEST(rnn_lstm_bidirectional_seqlens_activations) {
    enum { T = 4, N = 2, I = 3, H = 2, D = 2 };
    float X[T * N * I], W[D * 4 * H * I], R[D * 4 * H * H], B[D * 8 * H], h0[D * N * H],
        c0[D * N * H], P[D * 3 * H];
    unsigned s = 7;
    fill(&s, X, T * N * I, 0.5f);
    fill(&s, W, D * 4 * H * I, 0.5f);
    fill(&s, R, D * 4 * H * H, 0.5f);
    fill(&s, B, D * 8 * H, 0.5f);
    fill(&s, h0, D * N * H, 0.5f);
    fill(&s, c0, D * N * H, 0.5f);
    fill(&s, P, D * 3 * H, 0.5f);
    const int32_t sl[N] = {4, 2};
    const int64_t xd[3] = {T, N, I}, wd[3] = {D, 4 * H, I}, rd[3] = {D, 4 * H, H},
                  bd[2] = {D, 8 * H}, ld[1] = {N}, hd[3] = {D, N, H}, pd[2] = {D, 3 * H},
                  yd[4] = {T, D, N, H};
    const onyx_tensor_view in[8] = {tm_view(F, 3, xd, X),
                                    tm_view(F, 3, wd, W),
                                    tm_view(F, 3, rd, R),
                                    tm_view(F, 2, bd, B),
                                    tm_view(ONYX_DTYPE_INT32, 1, ld, sl),
                                    tm_view(F, 3, hd, h0),
                                    tm_view(F, 3, hd, c0),
                                    tm_view(F, 2, pd, P)};
    const model_spec ms = {"LSTM",
                           13,
                           {"X", "W", "R", "B", "sl", "h0", "c0", "P"},
                           {F, F, F, F, ONYX_DTYPE_INT32, F, F, F},
                           {"Y", "Y_h", "Y_c"},
                           {"hidden_size=i:2", "direction=s:bidirectional",
                            "activations=S:HardSigmoid,LeakyRelu,Elu,Sigmoid,Tanh,Softsign",
                            "activation_alpha=F:0.3,0.2,0.9", "activation_beta=F:0.45",
                            "clip=f:1.5"}};
    for (int threads = 1; threads <= 2; threads++) {
        onyx_tensor out[3] = {0};
        onyx_error err;
        CHECK(run(&ms, threads, in, out, &err) == ONYX_OK);
        CHECK(same_shape(&out[0], 4, yd) && same_shape(&out[1], 3, hd) &&
              same_shape(&out[2], 3, hd));
        check_f32(unit_failed_, &out[0], lstm_y, 32, 1e-5);
        check_f32(unit_failed_, &out[1], lstm_yh, 8, 1e-5);
        check_f32(unit_failed_, &out[2], lstm_yc, 8, 1e-5);
        for (int i = 0; i < 3; i++)
            onyx_tensor_release(&out[i]);
    }
}

UNIT_TEST(rnn_gru_reverse_batch_major_linear_before_reset) {
    enum { T = 3, N = 2, I = 2, H = 3 };
    float X[N * T * I], W[3 * H * I], R[3 * H * H], B[6 * H], h0[N * H];
    unsigned s = 11;
    fill(&s, X, N * T * I, 0.8f);
    fill(&s, W, 3 * H * I, 0.8f);
    fill(&s, R, 3 * H * H, 0.8f);
    fill(&s, B, 6 * H, 0.8f);
    fill(&s, h0, N * H, 0.8f);
    const int64_t xd[3] = {N, T, I}, wd[3] = {1, 3 * H, I}, rd[3] = {1, 3 * H, H},
                  bd[2] = {1, 6 * H}, hd[3] = {N, 1, H}, yd[4] = {N, T, 1, H};
    const onyx_tensor_view in[5] = {tm_view(F, 3, xd, X), tm_view(F, 3, wd, W), tm_view(F, 3, rd, R),
                                    tm_view(F, 2, bd, B), tm_view(F, 3, hd, h0)};
    const model_spec ms = {
        "GRU",
        14,
        {"X", "W", "R", "B", "", "h0"},
        {F, F, F, F, F, F},
        {"Y", "Y_h"},
        {"hidden_size=i:3", "direction=s:reverse", "linear_before_reset=i:1", "layout=i:1"}};
    onyx_tensor out[2] = {0};
    onyx_error err;
    CHECK(run(&ms, 1, in, out, &err) == ONYX_OK);
    CHECK(same_shape(&out[0], 4, yd) && same_shape(&out[1], 3, hd));
    check_f32(unit_failed_, &out[0], gru_y, 18, 1e-5);
    check_f32(unit_failed_, &out[1], gru_yh, 6, 1e-5);
    for (int i = 0; i < 2; i++)
        onyx_tensor_release(&out[i]);
}

UNIT_TEST(rnn_only_final_state_threads) {
    /* Y omitted; sizes past the GEMM's small-matrix paths. */
    enum { T = 6, N = 3, I = 17, H = 20 };
    static float X[T * N * I], W[H * I], R[H * H];
    unsigned s = 3;
    fill(&s, X, T * N * I, 0.5f);
    fill(&s, W, H * I, 0.3f);
    fill(&s, R, H * H, 0.3f);
    const int64_t xd[3] = {T, N, I}, wd[3] = {1, H, I}, rd[3] = {1, H, H}, hd[3] = {1, N, H};
    const onyx_tensor_view in[3] = {tm_view(F, 3, xd, X), tm_view(F, 3, wd, W), tm_view(F, 3, rd, R)};
    const model_spec ms = {"RNN",     13,          {"X", "W", "R"},
                           {F, F, F}, {"", "Y_h"}, {"hidden_size=i:20"}};
    for (int threads = 1; threads <= 2; threads++) {
        onyx_tensor out[1] = {0};
        onyx_error err;
        CHECK(run(&ms, threads, in, out, &err) == ONYX_OK);
        CHECK(same_shape(&out[0], 3, hd));
        check_f32(unit_failed_, &out[0], rnn_yh, 60, 1e-5);
        onyx_tensor_release(&out[0]);
    }
}

UNIT_TEST(rnn_empty_sequence_has_zero_state) {
    /* sequence_lens 0: zero outputs and a zero final state (onnxruntime),
     * not initial_h, in both directions. */
    enum { T = 2, N = 2, I = 2, H = 2 };
    float X[T * N * I], W[2 * H * I], R[2 * H * H], h0[2 * N * H];
    unsigned s = 21;
    fill(&s, X, T * N * I, 1.0f);
    fill(&s, W, 2 * H * I, 1.0f);
    fill(&s, R, 2 * H * H, 1.0f);
    fill(&s, h0, 2 * N * H, 1.0f);
    const int32_t sl[N] = {0, 2};
    const int64_t xd[3] = {T, N, I}, wd[3] = {2, H, I}, rd[3] = {2, H, H}, ld[1] = {N},
                  hd[3] = {2, N, H};
    const onyx_tensor_view in[5] = {tm_view(F, 3, xd, X), tm_view(F, 3, wd, W), tm_view(F, 3, rd, R),
                                    tm_view(ONYX_DTYPE_INT32, 1, ld, sl), tm_view(F, 3, hd, h0)};
    const model_spec ms = {"RNN",
                           13,
                           {"X", "W", "R", "", "sl", "h0"},
                           {F, F, F, F, ONYX_DTYPE_INT32, F},
                           {"Y", "Y_h"},
                           {"hidden_size=i:2", "direction=s:bidirectional"}};
    onyx_tensor out[2] = {0};
    onyx_error err;
    CHECK(run(&ms, 1, in, out, &err) == ONYX_OK);
    check_f32(unit_failed_, &out[0], rnn0_y, 16, 1e-5);
    check_f32(unit_failed_, &out[1], rnn0_yh, 8, 1e-5);
    for (int i = 0; i < 2; i++)
        onyx_tensor_release(&out[i]);
}

UNIT_TEST(rnn_rejects_bad_models_and_inputs) {
    float X[6] = {0}, W[12] = {0}, R[4] = {0};
    const int64_t xd[3] = {1, 2, 3}, wd[3] = {1, 4, 3}, bad[3] = {1, 4, 2}, rd[3] = {1, 4, 1};
    onyx_tensor_view in[3] = {tm_view(F, 3, xd, X), tm_view(F, 3, bad, W), tm_view(F, 3, rd, R)};
    model_spec ms = {"LSTM", 13, {"X", "W", "R"}, {F, F, F}, {"Y"}, {"hidden_size=i:1"}};
    onyx_tensor out[1] = {0};
    onyx_error err;
    CHECK(run(&ms, 1, in, out, &err) == ONYX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "W") != NULL);
    in[1] = tm_view(F, 3, wd, W);
    ms.attrs[1] = "direction=s:sideways";
    CHECK(run(&ms, 1, in, out, &err) == ONYX_ERR_INVALID_MODEL);
    ms.attrs[1] = "activations=S:Swish,Tanh,Tanh";
    CHECK(run(&ms, 1, in, out, &err) == ONYX_ERR_UNSUPPORTED);
    ms.attrs[1] = "activations=S:Sigmoid,Tanh";
    CHECK(run(&ms, 1, in, out, &err) == ONYX_ERR_INVALID_MODEL);
}

UNIT_TEST(quant_blocked_int4) {
    float x[10];
    unsigned s = 5;
    fill(&s, x, 10, 8.0f);
    const float sc[4] = {0.5f, 1.5f, 0.25f, 2.0f};
    const int8_t zp[4] = {1, -2, 0, 3}; /* int4, one byte per element */
    const int64_t xd[2] = {2, 5}, sd[2] = {2, 2};
    const onyx_tensor_view in[3] = {tm_view(F, 2, xd, x), tm_view(F, 2, sd, sc),
                                    tm_view(ONYX_DTYPE_INT4, 2, sd, zp)};
    const model_spec ms = {"QuantizeLinear",        21,    {"x", "s", "z"},
                           {F, F, ONYX_DTYPE_INT4}, {"y"}, {"axis=i:1", "block_size=i:3"}};
    onyx_tensor out[1] = {0};
    onyx_error err;
    CHECK(run(&ms, 1, in, out, &err) == ONYX_OK);
    CHECK(out[0].dtype == ONYX_DTYPE_INT4 && same_shape(&out[0], 2, xd));
    for (int i = 0; out[0].data && i < 10; i++)
        CHECK(((int8_t *)out[0].data)[i] == q_y[i]);
    onyx_tensor_release(&out[0]);
}

UNIT_TEST(quant_dequantize_axis_uint16_to_float16) {
    const uint16_t x[12] = {0, 1000, 65535, 7, 30000, 5, 40000, 65000, 12345, 54321, 1, 2};
    const float scf[4] = {0.001f, 0.5f, 0.0001f, 2.0f};
    uint16_t sc[4];
    for (int i = 0; i < 4; i++)
        sc[i] = onyx_f32_to_f16(scf[i]);
    const uint16_t zp[4] = {100, 0, 32768, 7};
    const int64_t xd[2] = {3, 4}, sd[1] = {4};
    const onyx_tensor_view in[3] = {tm_view(ONYX_DTYPE_UINT16, 2, xd, x),
                                    tm_view(ONYX_DTYPE_FLOAT16, 1, sd, sc),
                                    tm_view(ONYX_DTYPE_UINT16, 1, sd, zp)};
    const model_spec ms = {"DequantizeLinear",
                           21,
                           {"x", "s", "z"},
                           {ONYX_DTYPE_UINT16, ONYX_DTYPE_FLOAT16, ONYX_DTYPE_UINT16},
                           {"y"},
                           {"axis=i:1"}};
    onyx_tensor out[1] = {0};
    onyx_error err;
    CHECK(run(&ms, 1, in, out, &err) == ONYX_OK);
    CHECK(out[0].dtype == ONYX_DTYPE_FLOAT16 && same_shape(&out[0], 2, xd));
    for (int i = 0; out[0].data && i < 12; i++)
        CHECK(onyx_f16_to_f32(((uint16_t *)out[0].data)[i]) == dq_y[i]);
    onyx_tensor_release(&out[0]);
}

UNIT_TEST(quant_qlinearconv_per_channel_u8s8) {
    uint8_t x[32];
    int8_t w[54];
    for (int i = 0; i < 32; i++)
        x[i] = (uint8_t)qc_x[i];
    for (int i = 0; i < 54; i++)
        w[i] = (int8_t)qc_w[i];
    const float xs = 0.05f, ws[3] = {0.01f, 0.02f, 0.005f}, ys = 0.2f;
    const uint8_t xz = 10, yz = 128;
    const int8_t wz[3] = {0, 0, 0};
    const int32_t b[3] = {100, -200, 50};
    const int64_t xd[4] = {1, 2, 4, 4}, wd[4] = {3, 2, 3, 3}, cd[1] = {3}, yd[4] = {1, 3, 2, 2};
    const onyx_tensor_view in[9] = {tm_view(ONYX_DTYPE_UINT8, 4, xd, x),
                                    tm_view(F, 0, NULL, &xs),
                                    tm_view(ONYX_DTYPE_UINT8, 0, NULL, &xz),
                                    tm_view(ONYX_DTYPE_INT8, 4, wd, w),
                                    tm_view(F, 1, cd, ws),
                                    tm_view(ONYX_DTYPE_INT8, 1, cd, wz),
                                    tm_view(F, 0, NULL, &ys),
                                    tm_view(ONYX_DTYPE_UINT8, 0, NULL, &yz),
                                    tm_view(ONYX_DTYPE_INT32, 1, cd, b)};
    const model_spec ms = {"QLinearConv",
                           10,
                           {"x", "xs", "xz", "w", "ws", "wz", "ys", "yz", "b"},
                           {ONYX_DTYPE_UINT8, F, ONYX_DTYPE_UINT8, ONYX_DTYPE_INT8, F,
                            ONYX_DTYPE_INT8, F, ONYX_DTYPE_UINT8, ONYX_DTYPE_INT32},
                           {"y"},
                           {"pads=I:1,1,1,1", "strides=I:2,2"}};
    for (int threads = 1; threads <= 2; threads++) {
        onyx_tensor out[1] = {0};
        onyx_error err;
        CHECK(run(&ms, threads, in, out, &err) == ONYX_OK);
        CHECK(out[0].dtype == ONYX_DTYPE_UINT8 && same_shape(&out[0], 4, yd));
        for (int i = 0; out[0].data && i < 12; i++)
            CHECK(((uint8_t *)out[0].data)[i] == qc_y[i]);
        onyx_tensor_release(&out[0]);
    }
}

UNIT_TEST(quant_dynamic_quantize_threads) {
    /* Large enough for several min/max chunks and quantization tasks. */
    enum { NX = 70001 };
    float *x = malloc(NX * sizeof *x);
    unsigned s = 13;
    fill(&s, x, NX, 3.0f);
    x[NX / 2] = -7.25f; /* the minimum sits in the middle chunk */
    const int64_t xd[1] = {NX};
    const onyx_tensor_view in[1] = {tm_view(F, 1, xd, x)};
    const model_spec ms = {"DynamicQuantizeLinear",          11, {"x"}, {F},
                           {"y", "y_scale", "y_zero_point"}, {0}};
    float lo = 0.0f, hi = 0.0f;
    for (int i = 0; i < NX; i++)
        lo = x[i] < lo ? x[i] : lo, hi = x[i] > hi ? x[i] : hi;
    float scale = (hi - lo) / 255.0f;
    float zp = nearbyintf(fminf(fmaxf(0.0f - lo / scale, 0.0f), 255.0f));
    onyx_tensor out[3] = {0};
    onyx_error err;
    CHECK(run(&ms, 2, in, out, &err) == ONYX_OK);
    CHECK(out[0].dtype == ONYX_DTYPE_UINT8 && same_shape(&out[0], 1, xd));
    CHECK(out[1].dtype == F && out[1].ndim == 0 && out[2].ndim == 0);
    if (out[0].data && out[1].data && out[2].data) {
        CHECK(*(float *)out[1].data == scale);
        CHECK(*(uint8_t *)out[2].data == (uint8_t)zp);
        int bad = 0;
        for (int i = 0; i < NX; i++) {
            float v = fminf(fmaxf(nearbyintf(x[i] / scale) + zp, 0.0f), 255.0f);
            bad += ((uint8_t *)out[0].data)[i] != (uint8_t)v;
        }
        CHECK(bad == 0);
    }
    for (int i = 0; i < 3; i++)
        onyx_tensor_release(&out[i]);
    free(x);
}

UNIT_TEST(quant_rejects_bad_scales) {
    const float x[6] = {0}, sc[2] = {1.0f, 2.0f};
    const int64_t xd[2] = {2, 3}, sd[1] = {2};
    const onyx_tensor_view in[2] = {tm_view(F, 2, xd, x), tm_view(F, 1, sd, sc)};
    const model_spec ms = {"QuantizeLinear", 13, {"x", "s"}, {F, F}, {"y"}, {"axis=i:1"}};
    onyx_tensor out[1] = {0};
    onyx_error err;
    CHECK(run(&ms, 1, in, out, &err) == ONYX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "scale") != NULL);
}
