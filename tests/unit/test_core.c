/* test_core.c - the engine core through the public API: memory plan reuse
 * across runs and shapes, the memory limit, input validation, load-time
 * errors naming the node, and graph passes preserving results. */
#include "unit.h"

#include "onyx.h"
#include "testmodel.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

static onyx_model *load(tm_buf *m, int optimize, size_t limit, onyx_error *err) {
    onyx_options o;
    onyx_options_init(&o);
    o.threads = 2;
    o.optimize = optimize;
    o.memory_limit = limit;
    onyx_model *model = NULL;
    onyx_model_load_memory(m->p, m->n, NULL, &o, &model, err);
    return model;
}

/* y = Relu(x + x) * x over a symbolic 2-D shape. */
static tm_buf chain_model(void) {
    tm_buf g = {0};
    int64_t dyn[2] = {-1, -1};
    tm_node(&g, "Add x,x -> a", NULL);
    tm_node(&g, "Relu a -> r", NULL);
    tm_node(&g, "Mul r,x -> y", NULL);
    tm_input(&g, "x", 1, 2, dyn);
    tm_output(&g, "y", 1, 2, dyn);
    return tm_model(&g, 17);
}

static int run_chain(onyx_session *s, int64_t rows, int64_t cols, float seed, onyx_error *err) {
    float x[64];
    for (int64_t i = 0; i < rows * cols; i++) x[i] = seed * (float)(i % 7) - 2.0f;
    onyx_tensor_view in = {ONYX_DTYPE_FLOAT, 2, {rows, cols}, x}, out;
    const char *names[] = {"x"};
    if (onyx_session_run_tensors(s, 1, names, &in, 1, NULL, &out, err)) return -1;
    if (out.ndim != 2 || out.dims[0] != rows || out.dims[1] != cols) return -2;
    for (int64_t i = 0; i < rows * cols; i++) {
        float want = fmaxf(2 * x[i], 0.0f) * x[i];
        if (((float *)out.data)[i] != want) return -3;
    }
    return 0;
}

UNIT_TEST(core_plan_reused_across_runs_and_shapes) {
    tm_buf m = chain_model();
    onyx_error err = {0};
    onyx_model *model = load(&m, 1, 0, &err);
    CHECK(model != NULL);
    onyx_session *s = NULL;
    CHECK(onyx_session_new(model, NULL, &s, &err) == ONYX_OK);
    /* first run records, second uses the plan, then new shapes re-plan */
    CHECK(run_chain(s, 2, 3, 1.0f, &err) == 0);
    CHECK(run_chain(s, 2, 3, 0.5f, &err) == 0);
    CHECK(run_chain(s, 4, 5, 1.5f, &err) == 0);
    CHECK(run_chain(s, 4, 5, -1.0f, &err) == 0);
    CHECK(run_chain(s, 2, 3, 2.0f, &err) == 0);
    CHECK(run_chain(s, 0, 3, 2.0f, &err) == 0);
    onyx_session_free(s);
    onyx_model_free(model);
    free(m.p);
}

/* Concat's pieces written in place by their producers (the plan places a
 * piece that dies at the Concat inside its output): b dies there while
 * e1, e2 are made and die before it (they must not reuse b's bytes); d
 * appears twice; x is a graph input and a is read after the Concat (by z,
 * which needs y), so both are copied. y = Concat(b, x, d, d, a, e3) along
 * axis 1 of (1, n), z = a * c * max(y). Every run, recording or planned,
 * against the formulas. */
static tm_buf concat_model(void) {
    tm_buf g = {0};
    int64_t dyn[2] = {1, -1}, ydyn[2] = {1, -1};
    const char *axis1[] = {"axis=i:1", NULL};
    tm_node(&g, "Neg x -> b", NULL);
    tm_node(&g, "Abs x -> d", NULL);
    tm_node(&g, "Relu x -> a", NULL);
    tm_node(&g, "Add x,x -> c", NULL);
    tm_node(&g, "Mul x,x -> e1", NULL);
    tm_node(&g, "Add e1,x -> e2", NULL);
    tm_node(&g, "Sub e2,x -> e3", NULL);
    tm_node(&g, "Concat b,x,d,d,a,e3 -> y", axis1);
    tm_node(&g, "ReduceMax y -> ym", NULL);
    tm_node(&g, "Mul c,ym -> cm", NULL);
    tm_node(&g, "Mul a,cm -> z", NULL);
    tm_input(&g, "x", 1, 2, dyn);
    tm_output(&g, "y", 1, 2, ydyn);
    tm_output(&g, "z", 1, 2, dyn);
    return tm_model(&g, 17);
}

static int run_concat(onyx_session *s, int64_t n, float seed, onyx_error *err) {
    float x[64];
    for (int64_t i = 0; i < n; i++) x[i] = seed * (float)(i % 5) - 1.5f;
    onyx_tensor_view in = {ONYX_DTYPE_FLOAT, 2, {1, n}, x}, out[2];
    const char *names[] = {"x"};
    if (onyx_session_run_tensors(s, 1, names, &in, 2, NULL, out, err)) return -1;
    if (out[0].dims[1] != 6 * n || out[1].dims[1] != n) return -2;
    const float *y = out[0].data, *z = out[1].data;
    float ym = -INFINITY;
    for (int64_t i = 0; i < 6 * n; i++) ym = fmaxf(ym, y[i]);
    for (int64_t i = 0; i < n; i++) {
        float piece[6] = {-x[i], x[i], fabsf(x[i]), fabsf(x[i]), fmaxf(x[i], 0.0f),
                          (x[i] * x[i] + x[i]) - x[i]};
        for (int k = 0; k < 6; k++)
            if (y[k * n + i] != piece[k]) return -3;
        if (z[i] != fmaxf(x[i], 0.0f) * ((x[i] + x[i]) * ym)) return -4;
    }
    return 0;
}

/* A run of a model with input width n (run_concat, run_view): 0 when the
 * outputs match the formulas. */
typedef int (*sized_run)(onyx_session *s, int64_t n, float seed, onyx_error *err);

/* Model m without and with the graph passes, in one session each: three
 * runs at width n1 (the first records the plan, the others use it), then
 * two at n2 (a new plan), with the given input seeds. Frees m. */
static void check_planned_runs(tm_buf *m, sized_run run, int64_t n1, int64_t n2,
                               const float seeds[5], int *unit_failed_) {
    onyx_error err = {0};
    for (int optimize = 0; optimize < 2; optimize++) {
        onyx_model *model = load(m, optimize, 0, &err);
        CHECK(model != NULL);
        onyx_session *s = NULL;
        CHECK(onyx_session_new(model, NULL, &s, &err) == ONYX_OK);
        for (int r = 0; r < 5; r++) CHECK(run(s, r < 3 ? n1 : n2, seeds[r], &err) == 0);
        onyx_session_free(s);
        onyx_model_free(model);
    }
    free(m->p);
}

UNIT_TEST(core_concat_pieces_in_place) {
    tm_buf m = concat_model();
    static const float seeds[5] = {1.0f, 0.5f, -2.0f, 1.25f, -0.75f};
    check_planned_runs(&m, run_concat, 7, 33, seeds, unit_failed_);
}

/* Reshape, Flatten, Squeeze, Unsqueeze and Identity hand their input on:
 * the plan has each input made where its output goes (it dies there), the
 * op then copies nothing. A chain of them between real ops, the last one a
 * graph output, and a Reshape whose input r lives on after its output q
 * dies (r is read at the end, after tensors that may reuse q's bytes). */
static tm_buf view_model(void) {
    tm_buf g = {0};
    int64_t xd[2] = {2, -1}, yd[1] = {-1}, wd[2] = {2, -1};
    const char *flat[] = {"axis=i:0", NULL};
    tm_node(&g, "Relu x -> r", NULL);
    tm_node(&g, "Neg r -> n", NULL);
    tm_node(&g, "Flatten n -> f", flat);
    tm_node(&g, "Unsqueeze f,ax -> u", NULL);
    tm_node(&g, "Squeeze u,ax -> s", NULL);
    tm_node(&g, "Identity s -> i", NULL);
    tm_node(&g, "Exp i -> e", NULL);
    tm_node(&g, "Reshape e,shp -> y", NULL);
    tm_node(&g, "Reshape r,shp2 -> q", NULL);
    tm_node(&g, "Exp q -> qe", NULL);
    tm_node(&g, "ReduceMax y -> ym", NULL);
    tm_node(&g, "Mul qe,ym -> t1", NULL);
    tm_node(&g, "Add t1,x -> t2", NULL);
    tm_node(&g, "Reshape t2,shp2 -> w1", NULL);
    tm_node(&g, "Add w1,r -> w", NULL);
    int64_t zero = 0, m1 = -1, shp2[2] = {2, -1}, one = 1, two = 2;
    tm_init(&g, "ax", ONYX_DTYPE_INT64, 1, &one, &zero);
    tm_init(&g, "shp", ONYX_DTYPE_INT64, 1, &one, &m1);
    tm_init(&g, "shp2", ONYX_DTYPE_INT64, 1, &two, shp2);
    tm_input(&g, "x", 1, 2, xd);
    tm_output(&g, "y", 1, 1, yd);
    tm_output(&g, "w", 1, 2, wd);
    return tm_model(&g, 17);
}

static int run_view(onyx_session *s, int64_t n, float seed, onyx_error *err) {
    float x[64];
    for (int64_t i = 0; i < 2 * n; i++) x[i] = seed * (float)(i % 5) - 1.0f;
    onyx_tensor_view in = {ONYX_DTYPE_FLOAT, 2, {2, n}, x}, out[2];
    const char *names[] = {"x"};
    if (onyx_session_run_tensors(s, 1, names, &in, 2, NULL, out, err)) return -1;
    if (out[0].ndim != 1 || out[0].dims[0] != 2 * n || out[1].dims[1] != n) return -2;
    const float *y = out[0].data, *w = out[1].data;
    float ym = -INFINITY;
    for (int64_t i = 0; i < 2 * n; i++) ym = fmaxf(ym, y[i]);
    for (int64_t i = 0; i < 2 * n; i++) {
        float r = fmaxf(x[i], 0.0f), want = (expf(r) * ym + x[i]) + r;
        /* Exp within a few ulp of libm's (the vectorized kernel's) */
        if (fabsf(y[i] - expf(-r)) > 1e-6f * expf(-r) || fabsf(w[i] - want) > 1e-5f * fabsf(want))
            return -3;
    }
    return 0;
}

UNIT_TEST(core_reshapes_hand_their_input_on) {
    tm_buf m = view_model();
    static const float seeds[5] = {1.0f, -0.5f, 2.0f, 0.75f, -1.25f};
    check_planned_runs(&m, run_view, 5, 17, seeds, unit_failed_);
}

UNIT_TEST(core_memory_limit_is_an_error_not_a_crash) {
    tm_buf m = chain_model();
    onyx_error err = {0};
    onyx_model *model = load(&m, 1, 128, &err);
    onyx_session *s = NULL;
    CHECK(model && onyx_session_new(model, NULL, &s, &err) == ONYX_OK);
    CHECK(run_chain(s, 8, 8, 1.0f, &err) == -1); /* 3 tensors of 256 bytes */
    CHECK(err.status == ONYX_ERR_OUT_OF_MEMORY && strstr(err.message, "memory limit"));
    CHECK(run_chain(s, 2, 2, 1.0f, &err) == 0); /* small shapes still run */
    onyx_session_free(s);
    onyx_model_free(model);
    free(m.p);
}

/* A graph with no inputs, outputs or nodes loads, and runs to nothing (its
 * empty slot table was a memcpy from NULL: UBSan, found by fuzzing). */
UNIT_TEST(core_empty_graph) {
    tm_buf g = {0};
    tm_buf m = tm_model(&g, 17);
    onyx_error err = {0};
    onyx_model *model = NULL;
    onyx_session *s = NULL;
    CHECK(onyx_model_load_memory(m.p, m.n, NULL, NULL, &model, &err) == ONYX_OK);
    CHECK(model && onyx_model_num_inputs(model) == 0 && onyx_model_num_outputs(model) == 0);
    CHECK(model && onyx_session_new(model, NULL, &s, &err) == ONYX_OK);
    CHECK(s && onyx_session_run_tensors(s, 0, NULL, NULL, 0, NULL, NULL, &err) == ONYX_OK);
    onyx_session_free(s);
    onyx_model_free(model);
    free(m.p);
    free(g.p);
}

UNIT_TEST(core_inputs_are_validated) {
    tm_buf g = {0};
    int64_t fixed[2] = {2, 3};
    tm_node(&g, "Relu x -> y", NULL);
    tm_input(&g, "x", 1, 2, fixed);
    tm_output(&g, "y", 1, 2, fixed);
    tm_buf m = tm_model(&g, 17);
    onyx_error err = {0};
    onyx_model *model = load(&m, 1, 0, &err);
    onyx_session *s = NULL;
    CHECK(model && onyx_session_new(model, NULL, &s, &err) == ONYX_OK);
    float x[6] = {0};
    int64_t xi[6] = {0};
    const char *names[] = {"x"}, *bad[] = {"nope"};
    onyx_tensor_view out;
    onyx_tensor_view wrong_type = {ONYX_DTYPE_INT64, 2, {2, 3}, xi};
    CHECK(onyx_session_run_tensors(s, 1, names, &wrong_type, 1, NULL, &out, &err) ==
          ONYX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "'x'") && strstr(err.message, "float"));
    onyx_tensor_view wrong_shape = {ONYX_DTYPE_FLOAT, 2, {3, 2}, x};
    CHECK(onyx_session_run_tensors(s, 1, names, &wrong_shape, 1, NULL, &out, &err) ==
          ONYX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "[2,3]") && strstr(err.message, "[3,2]"));
    onyx_tensor_view ok = {ONYX_DTYPE_FLOAT, 2, {2, 3}, x};
    CHECK(onyx_session_run_tensors(s, 1, bad, &ok, 1, NULL, &out, &err) == ONYX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "nope") != NULL);
    CHECK(onyx_session_run_tensors(s, 0, names, &ok, 1, NULL, &out, &err) == ONYX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(err.message, "missing") != NULL);
    CHECK(onyx_session_run_tensors(s, 1, names, &ok, 1, NULL, &out, &err) == ONYX_OK);
    onyx_session_free(s);
    onyx_model_free(model);
    free(m.p);
}

/* Loads a one-graph model and returns the error message (empty on success). */
static const char *load_error(tm_buf *g, int opset, onyx_error *err) {
    int64_t d[1] = {4};
    tm_input(g, "x", 1, 1, d);
    tm_output(g, "y", 1, 1, d);
    tm_buf m = tm_model(g, opset);
    memset(err, 0, sizeof *err);
    onyx_model *model = load(&m, 1, 0, err);
    onyx_model_free(model);
    free(m.p);
    return err->message;
}

UNIT_TEST(core_load_errors_name_node_and_cause) {
    onyx_error err;
    tm_buf g = {0};
    tm_node(&g, "Relu y -> a", NULL);
    tm_node(&g, "Relu a -> y", NULL);
    CHECK(strstr(load_error(&g, 17, &err), "cycle"));
    tm_buf g2 = {0};
    tm_node(&g2, "Add x,ghost -> y", NULL);
    CHECK(strstr(load_error(&g2, 17, &err), "'ghost'"));
    tm_buf g3 = {0};
    tm_node(&g3, "Frobnicate x -> y", NULL);
    CHECK(strstr(load_error(&g3, 17, &err), "unknown operator Frobnicate"));
    CHECK(err.status == ONYX_ERR_UNSUPPORTED);
    tm_buf g4 = {0};
    tm_node(&g4, "Relu x,x -> y", NULL);
    CHECK(strstr(load_error(&g4, 17, &err), "has 2 inputs"));
    tm_buf g5 = {0};
    tm_node(&g5, "Gelu x -> y", NULL); /* Gelu is opset 20 */
    CHECK(strstr(load_error(&g5, 17, &err), "needs opset 20"));
    tm_buf g6 = {0};
    tm_node(&g6, "Relu x -> y", NULL);
    tm_node(&g6, "Relu x -> y", NULL);
    CHECK(strstr(load_error(&g6, 17, &err), "already produced"));
}

/* Runs Conv -> BatchNormalization -> Relu (3 -> 2 channels, 5x5) with graph
 * passes on or off into got (50 values) and returns the node count after
 * the passes, or -1. With feed_scale the BN scale, an initializer, is also
 * a graph input (a default the caller may replace), and the run feeds
 * another scale. */
static int run_conv_bn(int optimize, bool feed_scale, float *got, int *unit_failed_) {
    float w[2 * 3 * 3 * 3], b[2] = {0.1f, -0.2f}, sc[2] = {1.5f, 0.7f}, bi[2] = {0.3f, -0.1f},
                            mean[2] = {0.2f, -0.4f}, var[2] = {0.9f, 1.3f}, fed[2] = {-2.0f, 3.0f},
                            x[3 * 5 * 5];
    for (int i = 0; i < 54; i++) w[i] = (float)((i * 37) % 11) / 11.0f - 0.5f;
    for (int i = 0; i < 75; i++) x[i] = (float)((i * 13) % 17) / 17.0f - 0.5f;
    tm_buf g = {0};
    int64_t wd[4] = {2, 3, 3, 3}, cd[1] = {2}, xd[4] = {1, 3, 5, 5}, yd[4] = {1, 2, 5, 5};
    const char *conv_attrs[] = {"pads=ints:1,1,1,1", NULL};
    tm_node(&g, "Conv x,w,b -> c", conv_attrs);
    tm_node(&g, "BatchNormalization c,s,bi,m,v -> n", NULL);
    tm_node(&g, "Relu n -> y", NULL);
    tm_init_f32(&g, "w", 4, wd, w);
    tm_init_f32(&g, "b", 1, cd, b);
    tm_init_f32(&g, "s", 1, cd, sc);
    tm_init_f32(&g, "bi", 1, cd, bi);
    tm_init_f32(&g, "m", 1, cd, mean);
    tm_init_f32(&g, "v", 1, cd, var);
    tm_input(&g, "x", 1, 4, xd);
    if (feed_scale) tm_input(&g, "s", 1, 1, cd);
    tm_output(&g, "y", 1, 4, yd);
    tm_buf m = tm_model(&g, 17);
    onyx_error err = {0};
    onyx_model *model = load(&m, optimize, 0, &err);
    CHECK(model != NULL);
    if (!model) {
        free(m.p);
        return -1;
    }
    int nodes = onyx_model_num_nodes(model);
    onyx_session *s = NULL;
    onyx_session_new(model, NULL, &s, &err);
    onyx_tensor_view in[2] = {{ONYX_DTYPE_FLOAT, 4, {1, 3, 5, 5}, x},
                              {ONYX_DTYPE_FLOAT, 1, {2}, fed}},
                     out;
    const char *names[] = {"x", "s"};
    CHECK(onyx_session_run_tensors(s, feed_scale ? 2 : 1, names, in, 1, NULL, &out, &err) ==
          ONYX_OK);
    memcpy(got, out.data, 50 * sizeof *got);
    onyx_session_free(s);
    onyx_model_free(model);
    free(m.p);
    return nodes;
}

static double max_diff(const float *a, const float *b, int n) {
    double worst = 0;
    for (int i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - b[i]));
    return worst;
}

UNIT_TEST(core_passes_fold_and_fuse_without_changing_results) {
    float got[2][50];
    int nodes[2];
    for (int opt = 0; opt < 2; opt++) nodes[opt] = run_conv_bn(opt, false, got[opt], unit_failed_);
    CHECK(nodes[0] == 3 && nodes[1] == 1);
    CHECK_NEAR(max_diff(got[0], got[1], 50), 0.0, 1e-5);
}

/* A fed BN scale must win over its initializer with passes on as off: the
 * passes may not fold a replaceable default. */
UNIT_TEST(core_passes_leave_overridable_initializers_alone) {
    float got[2][50], unfed[50];
    for (int opt = 0; opt < 2; opt++) run_conv_bn(opt, true, got[opt], unit_failed_);
    run_conv_bn(1, false, unfed, unit_failed_);
    CHECK_NEAR(max_diff(got[0], got[1], 50), 0.0, 1e-5);
    CHECK(max_diff(got[1], unfed, 50) > 0.1); /* the fed scale mattered */
}
