/* test_elementwise.c - the elementwise families end to end through the public
 * API, on what the ONNX node tests leave out: tensors large enough to split
 * over threads, odd broadcast shapes, small-float blocks longer than one
 * conversion block, integer wrap-around and division by zero, variadic folds,
 * string Where, legacy broadcast, Softmax over an inner axis. Expected values
 * come from plain scalar loops written here (and gcc's _Float16). */
#include "core/tensor.h"
#include "testmodel.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// A one-node model built in memory

/* Attributes of the node are tm_attr specs: "name=i:5", "name=f:0.5",
 * "name=s:text". */
typedef struct model_spec {
    const char *op;
    int opset;
    int n_in;
    onyx_dtype in_types[4];
    const char *attrs[4];
    const char *then; /* a second, unary node applied to the first's output */
    onyx_dtype out_type; /* declared type of the graph output, or UNDEFINED */
} model_spec;

static const char *const in_names[4] = {"x0", "x1", "x2", "x3"};

static tm_buf build(const model_spec *ms) {
    tm_buf g = {0}, node = {0};
    for (int i = 0; i < ms->n_in; i++) tm_str(&node, 1, in_names[i]);
    tm_str(&node, 2, ms->then ? "t" : "y");
    tm_str(&node, 4, ms->op);
    for (int i = 0; i < 4 && ms->attrs[i]; i++) tm_attr(&node, ms->attrs[i]);
    tm_add_node(&g, &node);
    if (ms->then) {
        char spec[64];
        snprintf(spec, sizeof spec, "%s t -> y", ms->then);
        tm_node(&g, spec, NULL);
    }
    for (int i = 0; i < ms->n_in; i++) tm_value(&g, 11, in_names[i], ms->in_types[i], -1, NULL);
    if (ms->out_type) tm_value(&g, 12, "y", ms->out_type, -1, NULL);
    else tm_io(&g, 12, "y", NULL);
    return tm_model(&g, ms->opset);
}

/* Runs the model on `in` with `threads` threads; the output is copied into
 * a heap tensor the caller releases. Returns the run's status. */
static onyx_status run_nodes(const model_spec *ms, int threads, const onyx_tensor_view *in,
                             onyx_tensor *out, int *n_nodes) {
    tm_run h = {.bytes = build(ms)};
    memset(out, 0, sizeof *out);
    onyx_status st = tm_run_model(&h, threads, ms->n_in, in_names, in, 1, NULL);
    if (h.model && n_nodes) *n_nodes = onyx_model_num_nodes(h.model);
    if (!st) {
        onyx_tensor t = {.dtype = h.out[0].dtype, .ndim = h.out[0].ndim, .data = h.out[0].data};
        memcpy(t.dims, h.out[0].dims, sizeof t.dims);
        st = onyx_tensor_copy(out, &t);
    }
    if (st) fprintf(stderr, "  %s: %s\n", ms->op, h.err.message);
    tm_run_fini(&h);
    return st;
}

static onyx_status run(const model_spec *ms, int threads, const onyx_tensor_view *in,
                       onyx_tensor *out) {
    return run_nodes(ms, threads, in, out, NULL);
}

/* Offset into a tensor of shape (nd, dims) broadcast to the index `idx` of
 * an output of rank `ond`: the plain numpy rule, one axis at a time. */
static int64_t bcast_offset(int nd, const int64_t *dims, int ond, const int64_t *idx) {
    int64_t off = 0;
    for (int d = 0; d < nd; d++) {
        int64_t i = idx[ond - nd + d];
        off = off * dims[d] + (dims[d] == 1 ? 0 : i);
    }
    return off;
}

static void next_index(int nd, const int64_t *dims, int64_t *idx) {
    for (int d = nd - 1; d >= 0; d--) {
        if (++idx[d] < dims[d]) return;
        idx[d] = 0;
    }
}

static float frand(unsigned *state) {
    *state = *state * 1103515245u + 12345u;
    return (float)((*state >> 8) & 0xffff) / 65536.0f * 4.0f - 2.0f;
}

// ----------------------------------------------------------------------------
// Tests

UNIT_TEST(ew_add_broadcast_threads) {
    /* (64, 1, 300) + (70, 300) -> (64, 70, 300): 1.3M elements, split over
     * threads; single- and multi-threaded runs must agree with the loop. */
    const int64_t da[3] = {64, 1, 300}, db[2] = {70, 300}, dout[3] = {64, 70, 300};
    float *a = malloc(64 * 300 * sizeof *a), *b = malloc(70 * 300 * sizeof *b);
    unsigned seed = 1;
    for (int i = 0; i < 64 * 300; i++) a[i] = frand(&seed);
    for (int i = 0; i < 70 * 300; i++) b[i] = frand(&seed);
    onyx_tensor_view in[2] = {tm_view(ONYX_DTYPE_FLOAT, 3, da, a), tm_view(ONYX_DTYPE_FLOAT, 2, db, b)};
    model_spec ms = {"Add", 17, 2, {ONYX_DTYPE_FLOAT, ONYX_DTYPE_FLOAT}, {0}};
    for (int threads = 1; threads <= 3; threads += 2) {
        onyx_tensor y;
        CHECK(run(&ms, threads, in, &y) == ONYX_OK);
        CHECK(y.ndim == 3 && y.dims[0] == 64 && y.dims[1] == 70 && y.dims[2] == 300);
        if (!y.data) continue;
        int64_t idx[3] = {0}, bad = 0;
        for (int64_t i = 0; i < 64 * 70 * 300; i++, next_index(3, dout, idx)) {
            float want = a[bcast_offset(3, da, 3, idx)] + b[bcast_offset(2, db, 3, idx)];
            bad += ((float *)y.data)[i] != want;
        }
        CHECK(bad == 0);
        onyx_tensor_release(&y);
    }
    free(a);
    free(b);
}

UNIT_TEST(ew_odd_broadcast_shapes) {
    /* (5, 1, 3, 1) * (1, 7, 1, 2): every axis broadcast one way or the other. */
    const int64_t da[4] = {5, 1, 3, 1}, db[4] = {1, 7, 1, 2}, dout[4] = {5, 7, 3, 2};
    double a[15], b[14];
    for (int i = 0; i < 15; i++) a[i] = i + 1;
    for (int i = 0; i < 14; i++) b[i] = 0.5 * i - 3;
    onyx_tensor_view in[2] = {tm_view(ONYX_DTYPE_DOUBLE, 4, da, a), tm_view(ONYX_DTYPE_DOUBLE, 4, db, b)};
    model_spec ms = {"Sub", 14, 2, {ONYX_DTYPE_DOUBLE, ONYX_DTYPE_DOUBLE}, {0}};
    onyx_tensor y;
    CHECK(run(&ms, 2, in, &y) == ONYX_OK);
    if (y.data) {
        int64_t idx[4] = {0}, bad = 0;
        for (int64_t i = 0; i < 210; i++, next_index(4, dout, idx))
            bad += ((double *)y.data)[i] !=
                   a[bcast_offset(4, da, 4, idx)] - b[bcast_offset(4, db, 4, idx)];
        CHECK(bad == 0);
    }
    onyx_tensor_release(&y);
    /* Incompatible shapes fail with a status, not an abort. */
    const int64_t dc[2] = {2, 1};
    onyx_tensor_view bad_in[2] = {in[0], tm_view(ONYX_DTYPE_DOUBLE, 2, dc, b)};
    CHECK(run(&ms, 1, bad_in, &y) == ONYX_ERR_INVALID_ARGUMENT);
}

UNIT_TEST(ew_integer_edges) {
    const int64_t d[1] = {6};
    int32_t a[6] = {INT32_MAX, INT32_MIN, 7, -7, 7, -7};
    int32_t b[6] = {1, -1, 0, 2, -2, 0};
    onyx_tensor_view in[2] = {tm_view(ONYX_DTYPE_INT32, 1, d, a), tm_view(ONYX_DTYPE_INT32, 1, d, b)};
    onyx_tensor y;
    model_spec add = {"Add", 14, 2, {ONYX_DTYPE_INT32, ONYX_DTYPE_INT32}, {0}};
    CHECK(run(&add, 1, in, &y) == ONYX_OK);
    if (y.data) CHECK(((int32_t *)y.data)[0] == INT32_MIN && ((int32_t *)y.data)[1] == INT32_MAX);
    onyx_tensor_release(&y);
    /* Division by zero gives 0 and INT_MIN / -1 wraps: no trap. */
    model_spec div = {"Div", 14, 2, {ONYX_DTYPE_INT32, ONYX_DTYPE_INT32}, {0}};
    CHECK(run(&div, 1, in, &y) == ONYX_OK);
    if (y.data) {
        const int32_t *o = y.data;
        CHECK(o[0] == INT32_MAX && o[1] == INT32_MIN && o[2] == 0 && o[3] == -3 && o[4] == -3);
    }
    onyx_tensor_release(&y);
    /* Mod: fmod=0 takes the divisor's sign (numpy), fmod=1 the dividend's (C). */
    model_spec mod = {"Mod", 13, 2, {ONYX_DTYPE_INT32, ONYX_DTYPE_INT32}, {0}};
    CHECK(run(&mod, 1, in, &y) == ONYX_OK);
    if (y.data) {
        const int32_t *o = y.data;
        CHECK(o[2] == 0 && o[3] == 1 && o[4] == -1 && o[5] == 0);
    }
    onyx_tensor_release(&y);
    model_spec fmod = {"Mod", 13, 2, {ONYX_DTYPE_INT32, ONYX_DTYPE_INT32}, {"fmod=i:1"}};
    CHECK(run(&fmod, 1, in, &y) == ONYX_OK);
    if (y.data) {
        const int32_t *o = y.data;
        CHECK(o[3] == -1 && o[4] == 1);
    }
    onyx_tensor_release(&y);
    /* uint8 multiply wraps modulo 256 (no int promotion surprises). */
    uint8_t u[2] = {200, 255}, v[2] = {3, 255};
    const int64_t d2[1] = {2};
    onyx_tensor_view uin[2] = {tm_view(ONYX_DTYPE_UINT8, 1, d2, u), tm_view(ONYX_DTYPE_UINT8, 1, d2, v)};
    model_spec mul = {"Mul", 14, 2, {ONYX_DTYPE_UINT8, ONYX_DTYPE_UINT8}, {0}};
    CHECK(run(&mul, 1, uin, &y) == ONYX_OK);
    if (y.data) CHECK(((uint8_t *)y.data)[0] == 88 && ((uint8_t *)y.data)[1] == 1);
    onyx_tensor_release(&y);
}

__extension__ typedef _Float16 half_ref;

UNIT_TEST(ew_float16_blocks) {
    /* (3, 1000) * (1000,) in float16: rows longer than a conversion block, a
     * broadcast operand; each product rounds once to half (gcc's _Float16
     * does the same: float product, one rounding). */
    const int64_t da[2] = {3, 1000}, db[1] = {1000};
    uint16_t a[3000], b[1000];
    unsigned seed = 7;
    for (int i = 0; i < 3000; i++) a[i] = onyx_f32_to_f16(frand(&seed));
    for (int i = 0; i < 1000; i++) b[i] = onyx_f32_to_f16(frand(&seed));
    onyx_tensor_view in[2] = {tm_view(ONYX_DTYPE_FLOAT16, 2, da, a),
                              tm_view(ONYX_DTYPE_FLOAT16, 1, db, b)};
    model_spec ms = {"Mul", 14, 2, {ONYX_DTYPE_FLOAT16, ONYX_DTYPE_FLOAT16}, {0}};
    onyx_tensor y;
    CHECK(run(&ms, 2, in, &y) == ONYX_OK);
    if (y.data) {
        int bad = 0;
        for (int i = 0; i < 3000; i++) {
            half_ref x, z, p;
            memcpy(&x, &a[i], 2);
            memcpy(&z, &b[i % 1000], 2);
            p = x * z;
            uint16_t want;
            memcpy(&want, &p, 2);
            bad += ((uint16_t *)y.data)[i] != want;
        }
        CHECK(bad == 0);
    }
    onyx_tensor_release(&y);
}

UNIT_TEST(ew_variadic) {
    /* Sum/Mean/Max of (2,3), (3,), (1,1), (2,1): folded in order. */
    const int64_t d0[2] = {2, 3}, d1[1] = {3}, d2[2] = {1, 1}, d3[2] = {2, 1};
    float x0[6] = {1, 2, 3, 4, 5, 6}, x1[3] = {10, 20, 30}, x2[1] = {100}, x3[2] = {NAN, -1};
    onyx_tensor_view in[4] = {tm_view(ONYX_DTYPE_FLOAT, 2, d0, x0), tm_view(ONYX_DTYPE_FLOAT, 1, d1, x1),
                              tm_view(ONYX_DTYPE_FLOAT, 2, d2, x2), tm_view(ONYX_DTYPE_FLOAT, 2, d3, x3)};
    model_spec ms = {"Sum", 13, 3, {ONYX_DTYPE_FLOAT, ONYX_DTYPE_FLOAT, ONYX_DTYPE_FLOAT}, {0}};
    onyx_tensor y;
    CHECK(run(&ms, 1, in, &y) == ONYX_OK);
    if (y.data) {
        const float *o = y.data;
        CHECK(o[0] == 111 && o[2] == 133 && o[5] == 136);
    }
    onyx_tensor_release(&y);
    ms.op = "Mean";
    CHECK(run(&ms, 1, in, &y) == ONYX_OK);
    if (y.data) CHECK_NEAR(((float *)y.data)[4], 125.0 / 3, 1e-5);
    onyx_tensor_release(&y);
    /* Max propagates NaN, as numpy's maximum does. */
    model_spec mx = {"Max", 13, 4, {ONYX_DTYPE_FLOAT, ONYX_DTYPE_FLOAT, ONYX_DTYPE_FLOAT,
                                    ONYX_DTYPE_FLOAT}, {0}};
    CHECK(run(&mx, 1, in, &y) == ONYX_OK);
    if (y.data) {
        const float *o = y.data;
        CHECK(isnan(o[0]) && isnan(o[2]) && o[3] == 100 && o[5] == 100);
    }
    onyx_tensor_release(&y);
}

UNIT_TEST(ew_where_strings) {
    const int64_t dc[2] = {2, 1}, dx[1] = {3};
    uint8_t c[2] = {1, 0};
    const char *xs[3] = {"a", "bb", "ccc"}, *ys[1] = {"z"};
    onyx_tensor_view in[3] = {tm_view(ONYX_DTYPE_BOOL, 2, dc, c), tm_view(ONYX_DTYPE_STRING, 1, dx, xs),
                              tm_view(ONYX_DTYPE_STRING, 0, NULL, ys)};
    model_spec ms = {"Where", 16, 3, {ONYX_DTYPE_BOOL, ONYX_DTYPE_STRING, ONYX_DTYPE_STRING},
                     {0}};
    onyx_tensor y;
    CHECK(run(&ms, 2, in, &y) == ONYX_OK);
    if (y.data) {
        char **o = y.data;
        CHECK(y.ndim == 2 && y.dims[0] == 2 && y.dims[1] == 3);
        CHECK(!strcmp(o[0], "a") && !strcmp(o[2], "ccc") && !strcmp(o[3], "z") &&
              !strcmp(o[5], "z"));
    }
    onyx_tensor_release(&y);
}

UNIT_TEST(ew_legacy_broadcast_axis) {
    /* Opset 6 Add with broadcast=1, axis=1: B (3, 4) aligns with A's axes 1-2. */
    const int64_t da[4] = {2, 3, 4, 5}, db[2] = {3, 4};
    float a[120], b[12];
    for (int i = 0; i < 120; i++) a[i] = (float)i;
    for (int i = 0; i < 12; i++) b[i] = (float)(1000 * i);
    onyx_tensor_view in[2] = {tm_view(ONYX_DTYPE_FLOAT, 4, da, a), tm_view(ONYX_DTYPE_FLOAT, 2, db, b)};
    model_spec ms = {"Add", 6, 2, {ONYX_DTYPE_FLOAT, ONYX_DTYPE_FLOAT},
                     {"broadcast=i:1", "axis=i:1"}};
    onyx_tensor y;
    CHECK(run(&ms, 1, in, &y) == ONYX_OK);
    if (y.data) {
        int bad = 0;
        for (int i = 0; i < 120; i++) bad += ((float *)y.data)[i] != a[i] + b[(i / 5) % 12];
        CHECK(bad == 0);
    }
    onyx_tensor_release(&y);
}

UNIT_TEST(ew_pow_mixed_types) {
    const int64_t d[1] = {4};
    int32_t base[4] = {2, 3, -2, 9};
    float e[4] = {3, 2, 3, 0.5f};
    onyx_tensor_view in[2] = {tm_view(ONYX_DTYPE_INT32, 1, d, base), tm_view(ONYX_DTYPE_FLOAT, 1, d, e)};
    model_spec ms = {"Pow", 15, 2, {ONYX_DTYPE_INT32, ONYX_DTYPE_FLOAT}, {0}};
    onyx_tensor y;
    CHECK(run(&ms, 1, in, &y) == ONYX_OK);
    if (y.data) {
        const int32_t *o = y.data;
        CHECK(o[0] == 8 && o[1] == 9 && o[2] == -8 && o[3] == 3);
    }
    onyx_tensor_release(&y);
    float fb[4] = {1.5f, -2, 4, 10};
    int64_t ie[4] = {2, 3, -1, 0};
    onyx_tensor_view in2[2] = {tm_view(ONYX_DTYPE_FLOAT, 1, d, fb), tm_view(ONYX_DTYPE_INT64, 1, d, ie)};
    model_spec ms2 = {"Pow", 15, 2, {ONYX_DTYPE_FLOAT, ONYX_DTYPE_INT64}, {0}};
    CHECK(run(&ms2, 1, in2, &y) == ONYX_OK);
    if (y.data) {
        const float *o = y.data;
        CHECK(o[0] == 2.25f && o[1] == -8 && o[2] == 0.25f && o[3] == 1);
    }
    onyx_tensor_release(&y);
}

UNIT_TEST(ew_cast_parallel) {
    enum { N = 200003 };
    const int64_t d[1] = {N};
    float *a = malloc(N * sizeof *a);
    for (int i = 0; i < N; i++) a[i] = (float)(i - N / 2) * 0.75f;
    onyx_tensor_view in[1] = {tm_view(ONYX_DTYPE_FLOAT, 1, d, a)};
    model_spec ms = {"Cast", 13, 1, {ONYX_DTYPE_FLOAT}, {"to=i:6"}};
    onyx_tensor y;
    CHECK(run(&ms, 3, in, &y) == ONYX_OK);
    if (y.data) {
        int bad = 0;
        for (int i = 0; i < N; i++) bad += ((int32_t *)y.data)[i] != (int32_t)a[i];
        CHECK(bad == 0 && y.dtype == ONYX_DTYPE_INT32);
    }
    onyx_tensor_release(&y);
    model_spec str = {"Cast", 13, 1, {ONYX_DTYPE_FLOAT}, {"to=i:8"}};
    in[0].dims[0] = 3;
    CHECK(run(&str, 1, in, &y) == ONYX_OK);
    if (y.data) CHECK(!strcmp(((char **)y.data)[0], "-75000.75"));
    onyx_tensor_release(&y);
    free(a);
}

static void softmax_ref(const float *x, double *y, int64_t outer, int64_t len, int64_t inner) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double mx = -INFINITY, sum = 0;
            for (int64_t k = 0; k < len; k++) mx = fmax(mx, x[(o * len + k) * inner + i]);
            for (int64_t k = 0; k < len; k++) sum += exp(x[(o * len + k) * inner + i] - mx);
            for (int64_t k = 0; k < len; k++)
                y[(o * len + k) * inner + i] = exp(x[(o * len + k) * inner + i] - mx) / sum;
        }
}

UNIT_TEST(ew_softmax_axes) {
    /* (2, 5000, 3) along axis 1 (opset 13): lanes of stride 3, threads. */
    const int64_t d[3] = {2, 5000, 3};
    enum { N = 30000 };
    float *x = malloc(N * sizeof *x);
    double *want = malloc(N * sizeof *want);
    unsigned seed = 3;
    for (int i = 0; i < N; i++) x[i] = 4 * frand(&seed);
    onyx_tensor_view in[1] = {tm_view(ONYX_DTYPE_FLOAT, 3, d, x)};
    model_spec ms = {"Softmax", 13, 1, {ONYX_DTYPE_FLOAT}, {"axis=i:1"}};
    onyx_tensor y;
    CHECK(run(&ms, 2, in, &y) == ONYX_OK);
    softmax_ref(x, want, 2, 5000, 3);
    if (y.data) {
        double worst = 0;
        for (int i = 0; i < N; i++) worst = fmax(worst, fabs(((float *)y.data)[i] - want[i]));
        CHECK(worst < 1e-7);
    }
    onyx_tensor_release(&y);
    /* Opset 11, axis 1: the input is coerced to (2, 15000). */
    model_spec old = {"Softmax", 11, 1, {ONYX_DTYPE_FLOAT}, {"axis=i:1"}};
    CHECK(run(&old, 1, in, &y) == ONYX_OK);
    softmax_ref(x, want, 2, 15000, 1);
    if (y.data) {
        double worst = 0;
        for (int i = 0; i < N; i++) worst = fmax(worst, fabs(((float *)y.data)[i] - want[i]));
        CHECK(worst < 1e-8);
    }
    onyx_tensor_release(&y);
    free(x);
    free(want);
}

UNIT_TEST(ew_unary_large) {
    /* Sigmoid and Exp over 100k elements with threads, against libm in double. */
    enum { N = 100000 };
    const int64_t d[1] = {N};
    float *x = malloc(N * sizeof *x);
    unsigned seed = 11;
    for (int i = 0; i < N; i++) x[i] = 10 * frand(&seed);
    onyx_tensor_view in[1] = {tm_view(ONYX_DTYPE_FLOAT, 1, d, x)};
    model_spec ms = {"Sigmoid", 13, 1, {ONYX_DTYPE_FLOAT}, {0}};
    onyx_tensor y;
    CHECK(run(&ms, 2, in, &y) == ONYX_OK);
    if (y.data) {
        double worst = 0;
        for (int i = 0; i < N; i++)
            worst = fmax(worst, fabs(((float *)y.data)[i] - 1 / (1 + exp(-(double)x[i]))));
        CHECK(worst < 1e-6);
    }
    onyx_tensor_release(&y);
    model_spec ge = {"Gelu", 20, 1, {ONYX_DTYPE_FLOAT}, {"approximate=s:tanh"}};
    CHECK(run(&ge, 2, in, &y) == ONYX_OK);
    if (y.data) {
        double worst = 0;
        for (int i = 0; i < N; i++) {
            double v = x[i];
            double want = 0.5 * v * (1 + tanh(sqrt(2 / 3.14159265358979323846) *
                                              (v + 0.044715 * v * v * v)));
            worst = fmax(worst, fabs(((float *)y.data)[i] - want));
        }
        CHECK(worst < 1e-5);
    }
    onyx_tensor_release(&y);
    free(x);
}

UNIT_TEST(ew_fused_activation) {
    /* Add then Relu on a declared float output: the pass fuses the Relu into
     * the Add, whose rows apply it; values must match the unfused pair. */
    const int64_t d[2] = {3, 50000};
    enum { N = 150000 };
    float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    unsigned seed = 5;
    for (int i = 0; i < N; i++) a[i] = frand(&seed), b[i] = frand(&seed);
    onyx_tensor_view in[2] = {tm_view(ONYX_DTYPE_FLOAT, 2, d, a), tm_view(ONYX_DTYPE_FLOAT, 2, d, b)};
    model_spec ms = {"Add", 17, 2, {ONYX_DTYPE_FLOAT, ONYX_DTYPE_FLOAT}, {0}, "Relu",
                     ONYX_DTYPE_FLOAT};
    onyx_tensor y;
    int nodes = 0;
    CHECK(run_nodes(&ms, 2, in, &y, &nodes) == ONYX_OK);
    CHECK(nodes == 1);
    if (y.data) {
        int bad = 0;
        for (int i = 0; i < N; i++) {
            float v = a[i] + b[i];
            bad += ((float *)y.data)[i] != (v > 0 ? v : 0);
        }
        CHECK(bad == 0);
    }
    onyx_tensor_release(&y);
    free(a);
    free(b);
}

UNIT_TEST(ew_float32_fast_paths) {
    /* The float32 routes to kernels/ew.h, with threads: a channel scale
     * (1, C, 1, 1) * (2, C, H, W), a bias (W) + (2, C, H, W) contiguous along
     * the row, Pow by the constant exponents, Erf and Gelu. */
    enum { C = 40, H = 30, W = 35, N = 2 * C * H * W };
    const int64_t dx[4] = {2, C, H, W}, ds[4] = {1, C, 1, 1}, dbias[1] = {W}, d0[1] = {1};
    float *x = malloc(N * sizeof *x), s[C], bias[W];
    unsigned seed = 3;
    for (int i = 0; i < N; i++) x[i] = frand(&seed);
    for (int i = 0; i < C; i++) s[i] = frand(&seed);
    for (int i = 0; i < W; i++) bias[i] = frand(&seed);
    onyx_tensor y;
    model_spec mul = {"Mul", 14, 2, {ONYX_DTYPE_FLOAT, ONYX_DTYPE_FLOAT}, {0}};
    onyx_tensor_view in[2] = {tm_view(ONYX_DTYPE_FLOAT, 4, dx, x),
                              tm_view(ONYX_DTYPE_FLOAT, 4, ds, s)};
    CHECK(run(&mul, 2, in, &y) == ONYX_OK);
    if (y.data) {
        int bad = 0;
        for (int i = 0; i < N; i++) bad += ((float *)y.data)[i] != x[i] * s[(i / (H * W)) % C];
        CHECK(bad == 0);
    }
    onyx_tensor_release(&y);
    model_spec add = {"Add", 14, 2, {ONYX_DTYPE_FLOAT, ONYX_DTYPE_FLOAT}, {0}};
    in[1] = tm_view(ONYX_DTYPE_FLOAT, 1, dbias, bias);
    CHECK(run(&add, 2, in, &y) == ONYX_OK);
    if (y.data) {
        int bad = 0;
        for (int i = 0; i < N; i++) bad += ((float *)y.data)[i] != x[i] + bias[i % W];
        CHECK(bad == 0);
    }
    onyx_tensor_release(&y);
    static const float exps[4] = {2.0f, 0.5f, 3.0f, 1.0f};
    model_spec pw = {"Pow", 15, 2, {ONYX_DTYPE_FLOAT, ONYX_DTYPE_FLOAT}, {0}};
    for (int e = 0; e < 4; e++) {
        in[1] = tm_view(ONYX_DTYPE_FLOAT, 1, d0, (void *)&exps[e]);
        CHECK(run(&pw, 2, in, &y) == ONYX_OK);
        if (!y.data) continue;
        double worst = 0;
        for (int i = 0; i < N; i++) {
            double want = pow((double)x[i], (double)exps[e]);
            float got = ((float *)y.data)[i];
            if (isnan(want) != isnan(got)) worst = 1;
            else if (!isnan(want)) worst = fmax(worst, fabs(got - want) / fmax(1e-30, fabs(want)));
        }
        CHECK(worst < 3e-7);
        onyx_tensor_release(&y);
    }
    model_spec erf_m = {"Erf", 13, 1, {ONYX_DTYPE_FLOAT}, {0}};
    model_spec gelu = {"Gelu", 20, 1, {ONYX_DTYPE_FLOAT}, {0}};
    for (int k = 0; k < 2; k++) {
        CHECK(run(k ? &gelu : &erf_m, 2, in, &y) == ONYX_OK);
        if (!y.data) continue;
        double worst = 0;
        for (int i = 0; i < N; i++) {
            double want = k ? 0.5 * x[i] * (1 + erf(x[i] / sqrt(2.0))) : erf(x[i]);
            worst = fmax(worst, fabs(((float *)y.data)[i] - want));
        }
        CHECK(worst < 3e-7);
        onyx_tensor_release(&y);
    }
    free(x);
}
