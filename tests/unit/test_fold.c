/* test_fold.c - constant folding at load (passes.c): nodes whose inputs are
 * all constants disappear with results unchanged, Shape of a statically
 * shaped input folds, and what must stay (random generators, blow-ups,
 * overridable defaults, symbolic shapes) stays. */
#include "unit.h"

#include "onyx.h"
#include "testmodel.h"

#include <stdbool.h>
#include <string.h>

/* One output, copied: float32 or int64 elements as doubles (first 64). */
typedef struct fold_out {
    onyx_dtype dtype;
    int ndim;
    int64_t dims[4];
    double v[64];
} fold_out;

/* Loads m (optimized or not) with one thread and runs it on the named
 * inputs; out receives the graph's first n_out outputs. Returns the node
 * count after the passes, -1 on error. */
static int load_run(tm_buf *m, int optimize, int n_in, const char *const *names,
                    const onyx_tensor_view *ins, int n_out, fold_out *out) {
    onyx_options o;
    onyx_options_init(&o);
    o.threads = 1;
    o.optimize = optimize;
    onyx_model *model = NULL;
    onyx_session *s = NULL;
    onyx_error err = {0};
    onyx_tensor_view views[4];
    int nodes = -1;
    if (onyx_model_load_memory(m->p, m->n, NULL, &o, &model, &err) ||
        onyx_session_new(model, &o, &s, &err) ||
        onyx_session_run_tensors(s, n_in, names, ins, n_out, NULL, views, &err)) {
        fprintf(stderr, "  %s\n", err.message);
        goto done;
    }
    nodes = onyx_model_num_nodes(model);
    for (int j = 0; j < n_out; j++) {
        memset(&out[j], 0, sizeof out[j]);
        out[j].dtype = views[j].dtype;
        out[j].ndim = views[j].ndim;
        int64_t count = 1;
        for (int d = 0; d < views[j].ndim; d++) count *= out[j].dims[d] = views[j].dims[d];
        for (int64_t i = 0; i < count && i < 64; i++)
            out[j].v[i] = views[j].dtype == ONYX_DTYPE_FLOAT
                              ? ((const float *)views[j].data)[i]
                              : (double)((const int64_t *)views[j].data)[i];
    }
done:
    onyx_session_free(s);
    onyx_model_free(model);
    return nodes;
}

static bool same_out(const fold_out *a, const fold_out *b, double tol) {
    if (a->dtype != b->dtype || a->ndim != b->ndim) return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->dims[d] != b->dims[d]) return false;
    for (int i = 0; i < 64; i++)
        if (!(fabs(a->v[i] - b->v[i]) <= tol)) return false;
    return true;
}

/* z = MatMul(Reshape(MatMul(x, Transpose(W)), Concat(Unsqueeze(4), [2])),
 *            DequantizeLinear(Wq, scale, zp)), with the Concat also a graph
 * output: everything but the two MatMuls and the Reshape is constant. */
UNIT_TEST(fold_constant_chains_without_changing_results) {
    float w[4 * 3], x[2 * 3], scale = 0.05f;
    int8_t wq[2 * 3] = {-128, -7, 0, 5, 90, 127}, zp = 3;
    int64_t axes[1] = {0};
    for (int i = 0; i < 12; i++) w[i] = (float)((i * 7) % 5) - 2.0f;
    for (int i = 0; i < 6; i++) x[i] = 0.25f * (float)i - 0.5f;
    fold_out got[2][2];
    int nodes[2];
    for (int opt = 0; opt < 2; opt++) {
        tm_buf g = {0};
        int64_t wd[2] = {4, 3}, xd[2] = {2, 3}, qd[2] = {2, 3}, ad[1] = {1}, sd[1] = {2},
                zd[2] = {4, 3};
        const char *perm[] = {"perm=ints:1,0", NULL}, *four[] = {"value_int=i:4", NULL},
                   *two[] = {"value_ints=ints:2", NULL}, *cat[] = {"axis=i:0", NULL};
        tm_node(&g, "Transpose w -> wt", perm);
        tm_node(&g, "MatMul x,wt -> mm", NULL);
        tm_node(&g, "Constant -> c4", four);
        tm_node(&g, "Unsqueeze c4,axes -> u4", NULL);
        tm_node(&g, "Constant -> c2", two);
        tm_node(&g, "Concat u4,c2 -> shape", cat);
        tm_node(&g, "Reshape mm,shape -> r", NULL);
        tm_node(&g, "DequantizeLinear wq,scale,zp -> dq", NULL);
        tm_node(&g, "MatMul r,dq -> z", NULL);
        tm_init_f32(&g, "w", 2, wd, w);
        tm_init(&g, "wq", ONYX_DTYPE_INT8, 2, qd, wq);
        tm_init_f32(&g, "scale", 0, NULL, &scale);
        tm_init(&g, "zp", ONYX_DTYPE_INT8, 0, NULL, &zp);
        tm_init(&g, "axes", ONYX_DTYPE_INT64, 1, ad, axes);
        tm_input(&g, "x", ONYX_DTYPE_FLOAT, 2, xd);
        tm_output(&g, "z", ONYX_DTYPE_FLOAT, 2, zd);
        tm_output(&g, "shape", ONYX_DTYPE_INT64, 1, sd);
        tm_buf m = tm_model(&g, 17);
        onyx_tensor_view in = tm_view(ONYX_DTYPE_FLOAT, 2, xd, x);
        const char *names[] = {"x"};
        nodes[opt] = load_run(&m, opt, 1, names, &in, 2, got[opt]);
        free(m.p);
    }
    CHECK(nodes[0] == 9);
    CHECK(nodes[1] == 3);
    CHECK(same_out(&got[0][0], &got[1][0], 1e-5));
    CHECK(same_out(&got[0][1], &got[1][1], 0));
    CHECK(got[1][1].ndim == 1 && got[1][1].v[0] == 4 && got[1][1].v[1] == 2);
    CHECK(got[1][0].ndim == 2 && got[1][0].dims[0] == 4 && got[1][0].dims[1] == 3);
}

/* RandomUniform, an Expand to 4 MB from 12 bytes, and a node reading an
 * initializer that is also a graph input (a default the caller may
 * replace) are not folded; results stay right. */
UNIT_TEST(fold_leaves_random_blowups_and_defaults) {
    float one = 1.0f, dflt[2] = {1.0f, 2.0f}, given[2] = {5.0f, 7.0f};
    int64_t big[1] = {1 << 20};
    tm_buf g = {0};
    int64_t sd[1] = {1}, dd[1] = {2}, rd[2] = {1, 1};
    const char *rnd[] = {"shape=ints:1,1", NULL}, *keep[] = {"keepdims=i:0", NULL};
    tm_node(&g, "RandomUniform -> rand", rnd);
    tm_node(&g, "Expand one,big -> e", NULL);
    tm_node(&g, "ReduceSum e -> total", keep);
    tm_node(&g, "Neg d -> nd", NULL);
    tm_init_f32(&g, "one", 1, sd, &one);
    tm_init(&g, "big", ONYX_DTYPE_INT64, 1, sd, big);
    tm_input(&g, "d", ONYX_DTYPE_FLOAT, 1, dd);
    tm_init_f32(&g, "d", 1, dd, dflt);
    tm_output(&g, "rand", ONYX_DTYPE_FLOAT, 2, rd);
    tm_output(&g, "total", ONYX_DTYPE_FLOAT, 0, NULL);
    tm_output(&g, "nd", ONYX_DTYPE_FLOAT, 1, dd);
    tm_buf m = tm_model(&g, 17);
    onyx_tensor_view in = tm_view(ONYX_DTYPE_FLOAT, 1, dd, given);
    const char *names[] = {"d"};
    fold_out out[3];
    CHECK(load_run(&m, 1, 1, names, &in, 3, out) == 4);
    CHECK(out[0].ndim == 2 && out[0].v[0] >= 0.0 && out[0].v[0] < 1.0);
    CHECK_NEAR(out[1].v[0], 1048576.0, 0.0);
    CHECK(out[2].v[0] == -5.0 && out[2].v[1] == -7.0);
    free(m.p);
}

/* Shape and Size of an input with a static declared shape fold (the
 * session checks inputs against it); of a symbolic one they stay. */
UNIT_TEST(fold_shape_of_static_inputs) {
    float x[6] = {0};
    for (int sym = 0; sym < 2; sym++) {
        tm_buf g = {0};
        int64_t xd[2] = {sym ? -1 : 2, 3}, real[2] = {2, 3}, one[1] = {1}, two[1] = {2};
        const char *tail[] = {"start=i:-1", NULL};
        tm_node(&g, "Shape x -> s", NULL);
        tm_node(&g, "Shape x -> last", tail);
        tm_node(&g, "Size x -> n", NULL);
        tm_input(&g, "x", ONYX_DTYPE_FLOAT, 2, xd);
        tm_output(&g, "s", ONYX_DTYPE_INT64, 1, two);
        tm_output(&g, "last", ONYX_DTYPE_INT64, 1, one);
        tm_output(&g, "n", ONYX_DTYPE_INT64, 0, NULL);
        tm_buf m = tm_model(&g, 17);
        onyx_tensor_view in = tm_view(ONYX_DTYPE_FLOAT, 2, real, x);
        const char *names[] = {"x"};
        fold_out out[3];
        CHECK(load_run(&m, 1, 1, names, &in, 3, out) == (sym ? 3 : 0));
        CHECK(out[0].ndim == 1 && out[0].dims[0] == 2 && out[0].v[0] == 2 && out[0].v[1] == 3);
        CHECK(out[1].ndim == 1 && out[1].dims[0] == 1 && out[1].v[0] == 3);
        CHECK(out[2].ndim == 0 && out[2].v[0] == 6);
        free(m.p);
    }
}
