/* test_subbatch.c - batch-split runs (onyx_options.sub_batch): a per-sample
 * CNN is found separable and gives the same results (to rounding) in
 * sub-batches of any size as in one run, the profiler still sees one event per node; graphs whose
 * rows mix along axis 0 are found non-separable and still run correctly. */
#include "core/exec.h"
#include "core/graph.h"
#include "testmodel.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

enum {
    TAIL_GEMM,
    TAIL_MIXED,
    TAIL_RESHAPE_ALL,
    TAIL_MATMUL_INPUT_B,
    TAIL_CONCAT0,
    TAIL_REDUCE0,
    TAIL_UNBATCHED_INPUT,
    TAIL_COUNT
};

/* x [N,2,5,5] -> Conv(3x3, pads 1) -> Relu -> r [N,3,5,5] -> a tail. */
static tm_buf cnn(int tail) {
    static float w[3 * 2 * 3 * 3], b[3], gw[3 * 4], gc[4], mb[150 * 4];
    for (int i = 0; i < 54; i++)
        w[i] = (float)((i * 29) % 13) / 13.0f - 0.5f;
    for (int i = 0; i < 3; i++)
        b[i] = 0.1f * (float)i - 0.1f;
    for (int i = 0; i < 12; i++)
        gw[i] = (float)((i * 7) % 5) / 5.0f - 0.4f;
    for (int i = 0; i < 4; i++)
        gc[i] = 0.25f * (float)i;
    for (int i = 0; i < 600; i++)
        mb[i] = (float)((i * 13) % 7) / 7.0f - 0.5f;
    tm_buf g = {0};
    int64_t xd[4] = {-1, 2, 5, 5}, wd[4] = {3, 2, 3, 3}, bd[1] = {3}, gwd[2] = {3, 4}, gcd[1] = {4},
            dyn1[1] = {-1}, dyn2[2] = {-1, -1}, dyn4[4] = {-1, -1, -1, -1};
    const char *conv_attrs[] = {"pads=ints:1,1,1,1", NULL};
    tm_node(&g, "Conv x,w,b -> c", conv_attrs);
    tm_node(&g, "Relu c -> r", NULL);
    tm_init_f32(&g, "w", 4, wd, w);
    tm_init_f32(&g, "b", 1, bd, b);
    tm_input(&g, "x", 1, 4, xd);
    switch (tail) {
    case TAIL_GEMM:
        tm_node(&g, "GlobalAveragePool r -> p", NULL);
        tm_node(&g, "Flatten p -> f", NULL);
        tm_node(&g, "Gemm f,gw,gc -> y", NULL);
        tm_init_f32(&g, "gw", 2, gwd, gw);
        tm_init_f32(&g, "gc", 1, gcd, gc);
        tm_output(&g, "y", 1, 2, dyn2);
        break;
    case TAIL_MIXED: {
        /* per-sample ops away from axis 0: Concat on channels, Transpose
         * keeping axis 0, Reshape [0, -1], Softmax, MatMul by a constant */
        int64_t shape[2] = {0, -1}, sd = 2, mbd[2] = {150, 4};
        const char *cat[] = {"axis=i:1", NULL}, *perm[] = {"perm=ints:0,2,3,1", NULL};
        tm_node(&g, "Concat r,c -> k", cat);
        tm_node(&g, "Transpose k -> t", perm);
        tm_node(&g, "Reshape t,shp -> f", NULL);
        tm_node(&g, "Softmax f -> sm", NULL);
        tm_node(&g, "MatMul sm,mb -> y", NULL);
        tm_init(&g, "shp", ONYX_DTYPE_INT64, 1, &sd, shape);
        tm_init_f32(&g, "mb", 2, mbd, mb);
        tm_output(&g, "y", 1, 2, dyn2);
        break;
    }
    case TAIL_RESHAPE_ALL: {
        int64_t shape = -1, sd = 1;
        tm_node(&g, "Reshape r,shp -> y", NULL);
        tm_init(&g, "shp", ONYX_DTYPE_INT64, 1, &sd, &shape);
        tm_output(&g, "y", 1, 1, dyn1);
        break;
    }
    case TAIL_MATMUL_INPUT_B: {
        int64_t bmd[2] = {-1, 4};
        tm_node(&g, "Flatten r -> f", NULL);
        tm_node(&g, "MatMul f,bm -> y", NULL);
        tm_input(&g, "bm", 1, 2, bmd);
        tm_output(&g, "y", 1, 2, dyn2);
        break;
    }
    case TAIL_CONCAT0: {
        const char *attrs[] = {"axis=i:0", NULL};
        tm_node(&g, "Concat r,c -> y", attrs);
        tm_output(&g, "y", 1, 4, dyn4);
        break;
    }
    case TAIL_REDUCE0: {
        const char *attrs[] = {"axes=ints:0", NULL};
        tm_node(&g, "ReduceMean r -> y", attrs);
        tm_output(&g, "y", 1, 4, dyn4);
        break;
    }
    case TAIL_UNBATCHED_INPUT: {
        int64_t zd[3] = {3, 5, 5};
        tm_node(&g, "Add r,z -> y", NULL);
        tm_input(&g, "z", 1, 3, zd);
        tm_output(&g, "y", 1, 4, dyn4);
        break;
    }
    }
    return tm_model(&g, 17);
}

typedef struct counter {
    int events;
} counter;

static void count_event(void *user, const onyx_profile_event *e) {
    (void)e;
    ((counter *)user)->events++;
}

/* Runs the model at batch n with the given sub_batch option; copies the
 * first output into out (at most cap floats) and returns its element count,
 * or -1. *separable receives the model's analysis; *events the profiler's
 * event count of the run. */
/* Lanes the last run() created (exec.c runs slices side by side on them). */
static int lanes_used;

static int64_t run(const tm_buf *m, int tail, int sub_batch, int64_t n, float *out, int64_t cap,
                   bool *separable, int *events) {
    onyx_options o;
    onyx_options_init(&o);
    o.threads = 2;
    o.sub_batch = sub_batch;
    onyx_error err = {0};
    onyx_model *model = NULL;
    onyx_session *s = NULL;
    int64_t got = -1;
    float x[8 * 2 * 5 * 5], bm[75 * 4], z[75];
    for (int i = 0; i < 8 * 50; i++)
        x[i] = (float)((i * 17) % 23) / 23.0f - 0.45f;
    for (int i = 0; i < 300; i++)
        bm[i] = (float)((i * 11) % 9) / 9.0f - 0.5f;
    for (int i = 0; i < 75; i++)
        z[i] = (float)(i % 5) - 2.0f;
    if (onyx_model_load_memory(m->p, m->n, NULL, &o, &model, &err)) goto done;
    *separable = model->batch_separable;
    if (onyx_session_new(model, NULL, &s, &err)) goto done;
    counter c = {0};
    onyx_session_set_profiler(s, count_event, &c);
    onyx_tensor_view in[2] = {{ONYX_DTYPE_FLOAT, 4, {n, 2, 5, 5}, x}}, y;
    const char *names[2] = {"x"};
    int n_in = 1;
    if (tail == TAIL_MATMUL_INPUT_B)
        in[1] = (onyx_tensor_view){ONYX_DTYPE_FLOAT, 2, {75, 4}, bm}, names[1] = "bm", n_in = 2;
    if (tail == TAIL_UNBATCHED_INPUT)
        in[1] = (onyx_tensor_view){ONYX_DTYPE_FLOAT, 3, {3, 5, 5}, z}, names[1] = "z", n_in = 2;
    /* twice: the second run uses the memory plan the first recorded */
    for (int k = 0; k < 2; k++) {
        c.events = 0;
        if (onyx_session_run_tensors(s, n_in, names, in, 1, NULL, &y, &err)) goto done;
    }
    *events = c.events;
    lanes_used = s->n_lanes;
    int64_t count = 1;
    for (int d = 0; d < y.ndim; d++)
        count *= y.dims[d];
    if (count > cap) goto done;
    memcpy(out, y.data, (size_t)count * sizeof *out);
    got = count;
done:
    onyx_session_free(s);
    onyx_model_free(model);
    return got;
}

UNIT_TEST(subbatch_cnn_same_results_in_any_split) {
    static float want[8 * 4], got[8 * 4];
    bool sep = false;
    int ev_whole = 0, ev = 0;
    for (int tail = TAIL_GEMM; tail <= TAIL_MIXED; tail++) {
        tm_buf m = cnn(tail);
        for (int64_t n = 1; n <= 6; n++) {
            int64_t cw = run(&m, tail, -1, n, want, 32, &sep, &ev_whole);
            CHECK(cw == n * 4 && sep);
            for (int sb = 0; sb <= 4; sb++) {
                memset(got, 0, sizeof got);
                int64_t cg = run(&m, tail, sb, n, got, 32, &sep, &ev);
                float worst = 0;
                for (int64_t k = 0; k < cw && k < cg; k++) {
                    float d = got[k] > want[k] ? got[k] - want[k] : want[k] - got[k];
                    if (d > worst) worst = d;
                }
                /* kernels may pick another path at another batch (a GEMM of
                 * one row): rounding may differ in the last bit */
                CHECK(cg == cw && worst <= 1e-5f);
                CHECK(ev == ev_whole && ev > 0); /* one event per node, split or not */
                /* one sample per slice on two threads: after the first
                 * slice, a round of one per thread ran on lanes */
                if (sb == 1 && n >= 3) CHECK(lanes_used == 2);
            }
        }
        free(m.p);
    }
}

UNIT_TEST(subbatch_rows_mixing_graphs_are_not_separable) {
    static float want[8 * 150 * 2], got[8 * 150 * 2];
    for (int tail = TAIL_RESHAPE_ALL; tail < TAIL_COUNT; tail++) {
        tm_buf m = cnn(tail);
        bool sep = true;
        int ev = 0;
        int64_t cw = run(&m, tail, -1, 4, want, 8 * 300, &sep, &ev);
        CHECK(cw > 0 && !sep);
        memset(got, 0, sizeof got);
        int64_t cg = run(&m, tail, 1, 4, got, 8 * 300, &sep, &ev);
        CHECK(cg == cw && cw > 0 && memcmp(got, want, (size_t)cw * sizeof *got) == 0);
        free(m.p);
    }
    /* auto mode splits the separable one */
    tm_buf m = cnn(TAIL_GEMM);
    bool sep = false;
    int ev = 0;
    CHECK(run(&m, TAIL_GEMM, 0, 4, want, 32, &sep, &ev) == 16 && sep);
    free(m.p);
}
