/* test_control.c - If/Loop/Scan (src/ops/control.c) and the sequence and
 * optional ops (src/ops/sequence.c) on what the ONNX backend node tests do
 * not reach: zero-trip loops, loops without M or cond, string values moved
 * through loop-carried and scan outputs, Scan axes and directions against a
 * naive recurrence, Scan-8 sequence_lens padding, outer-scope captures,
 * negative positions, clean failures, and cancellation of a running loop.
 * Ownership of values is checked by the ASan build. Each case writes a small
 * ModelProto (with subgraphs) in memory, loads and runs it. */
#include "core/tensor.h"
#include "onyx.h"
#include "testmodel.h"
#include "unit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// ----------------------------------------------------------------------------
// Running a model

typedef struct run {
    tm_buf bytes;
    onyx_model *m;
    onyx_session *s;
    const onyx_value *out[8];
    onyx_value *in[8];
    int n_in;
    onyx_error err;
} run;

/* Owned tensor value for an input (freed by fini). */
static onyx_value *in_tensor(run *r, onyx_dtype dt, int ndim, const int64_t *dims,
                             const void *data) {
    onyx_tensor_view v = {.dtype = dt, .ndim = ndim, .data = (void *)data};
    for (int i = 0; i < ndim; i++) v.dims[i] = dims[i];
    onyx_value *out = NULL;
    if (onyx_value_new_tensor(&v, &out)) abort();
    r->in[r->n_in++] = out;
    return out;
}

/* Loads graph g (consumed) at `opset` and runs it with inputs in[] bound by
 * name; the graph's outputs land in r->out. */
static onyx_status run_graph(run *r, tm_buf *g, int opset, int nin, const char *const *names,
                             int nout) {
    r->bytes = tm_model(g, opset);
    onyx_status st = onyx_model_load_memory(r->bytes.p, r->bytes.n, NULL, NULL, &r->m, &r->err);
    if (st) {
        fprintf(stderr, "  load: %s\n", r->err.message);
        return st;
    }
    onyx_options o;
    onyx_options_init(&o);
    o.threads = 1;
    if ((st = onyx_session_new(r->m, &o, &r->s, &r->err))) return st;
    st = onyx_session_run(r->s, nin, names, (const onyx_value *const *)r->in, nout, NULL, r->out,
                          &r->err);
    return st;
}

/* run_graph that must succeed: checks it, printing the error if not. */
static bool run_ok(int *unit_failed_, run *r, tm_buf *g, int opset, int nin,
                   const char *const *names, int nout) {
    onyx_status st = run_graph(r, g, opset, nin, names, nout);
    CHECK(st == ONYX_OK);
    if (st) fprintf(stderr, "  %s\n", r->err.message);
    return st == ONYX_OK;
}

static void fini(run *r) {
    onyx_session_free(r->s);
    onyx_model_free(r->m);
    for (int i = 0; i < r->n_in; i++) onyx_value_free(r->in[i]);
    free(r->bytes.p);
}

/* Checks that v is a tensor of type dt and shape dims; returns its view. */
static bool is_tensor(const onyx_value *v, onyx_dtype dt, int ndim, const int64_t *dims,
                      onyx_tensor_view *tv) {
    if (!v || onyx_value_tensor(v, tv) || onyx_value_kind(v) != ONYX_KIND_TENSOR) return false;
    if (tv->dtype != dt || tv->ndim != ndim) return false;
    for (int i = 0; i < ndim; i++)
        if (tv->dims[i] != dims[i]) return false;
    return true;
}

/* Checks that v is a float tensor of shape dims holding exactly `want`. */
static bool is_floats(const onyx_value *v, int ndim, const int64_t *dims, const float *want) {
    onyx_tensor_view tv;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= dims[i];
    return is_tensor(v, ONYX_DTYPE_FLOAT, ndim, dims, &tv) &&
           (n == 0 || memcmp(tv.data, want, (size_t)n * sizeof(float)) == 0);
}

// ----------------------------------------------------------------------------
// Loop

/* The start of a Loop body: inputs i (iteration) and c (condition), and c
 * passed through as the first output. */
static void loop_body(tm_buf *body) {
    tm_input(body, "i", ONYX_DTYPE_INT64, 0, NULL);
    tm_input(body, "c", ONYX_DTYPE_BOOL, 0, NULL);
    tm_node(body, "Identity c -> c_out", NULL);
    tm_io(body, 12, "c_out", NULL);
}

/* Loop(M, "", x) with a body that adds an outer-scope delta to x and scans
 * out x and the iteration number. */
static tm_buf loop_sum_graph(void) {
    static const int64_t d2[1] = {2};
    tm_buf body = {0}, g = {0}, n;
    loop_body(&body);
    tm_input(&body, "x_in", ONYX_DTYPE_FLOAT, 1, d2);
    tm_node(&body, "Add x_in,delta -> x_out", NULL);
    tm_node(&body, "Identity x_in -> scan_x", NULL);
    tm_node(&body, "Identity i -> scan_i", NULL);
    tm_io(&body, 12, "x_out", NULL);
    tm_output(&body, "scan_x", ONYX_DTYPE_FLOAT, 1, d2);
    tm_output(&body, "scan_i", ONYX_DTYPE_INT64, 0, NULL);

    tm_input(&g, "M", ONYX_DTYPE_INT64, 0, NULL);
    tm_input(&g, "x0", ONYX_DTYPE_FLOAT, 1, d2);
    tm_input(&g, "delta", ONYX_DTYPE_FLOAT, 1, d2);
    n = tm_node_new("Loop M,_,x0 -> x_final,xs,is");
    tm_attr_graph(&n, "body", &body);
    tm_add_node(&g, &n);
    tm_io(&g, 12, "x_final", NULL);
    tm_io(&g, 12, "xs", NULL);
    tm_io(&g, 12, "is", NULL);
    return g;
}

/* Runs loop_sum_graph for `trips` iterations: x_final is want_final, xs
 * stacks x before each step and is the iteration numbers. */
static void check_loop_sum(int *unit_failed_, int64_t trips, const float *want_final) {
    static const int64_t d2[1] = {2};
    static const char *const names[] = {"M", "x0", "delta"};
    const float x0[2] = {1, -2}, delta[2] = {0.5f, 3};
    run r = {0};
    in_tensor(&r, ONYX_DTYPE_INT64, 0, NULL, &trips);
    in_tensor(&r, ONYX_DTYPE_FLOAT, 1, d2, x0);
    in_tensor(&r, ONYX_DTYPE_FLOAT, 1, d2, delta);
    tm_buf g = loop_sum_graph();
    if (run_ok(unit_failed_, &r, &g, 13, 3, names, 3)) {
        onyx_tensor_view tv;
        CHECK(is_floats(r.out[0], 1, d2, want_final));
        const int64_t dxs[2] = {trips, 2}, dis[1] = {trips};
        float want_xs[8];
        for (int k = 0; k < trips; k++) {
            want_xs[2 * k] = x0[0] + (float)k * delta[0];
            want_xs[2 * k + 1] = x0[1] + (float)k * delta[1];
        }
        CHECK(is_floats(r.out[1], 2, dxs, want_xs));
        CHECK(is_tensor(r.out[2], ONYX_DTYPE_INT64, 1, dis, &tv));
        for (int k = 0; k < trips && tv.data; k++) CHECK(((int64_t *)tv.data)[k] == k);
    }
    fini(&r);
}

UNIT_TEST(loop_trip_count_scan_outputs_and_capture) {
    check_loop_sum(unit_failed_, 4, (const float[]){3, 10});
}

UNIT_TEST(loop_zero_trips_gives_initial_values_and_empty_scans) {
    check_loop_sum(unit_failed_, 0, (const float[]){1, -2}); /* x0 */
}

/* Loop with neither M nor cond (or with cond only): the body's cond output
 * (i < 3) ends it after the iteration with i == 3. */
static void check_while(int *unit_failed_, const char *loop) {
    static const char *const names[] = {"go"};
    const uint8_t go = 1;
    const int64_t three = 3;
    run r = {0};
    in_tensor(&r, ONYX_DTYPE_BOOL, 0, NULL, &go);
    tm_buf body = {0}, g = {0}, n;
    tm_input(&body, "i", ONYX_DTYPE_INT64, 0, NULL);
    tm_input(&body, "c", ONYX_DTYPE_BOOL, 0, NULL);
    tm_node(&body, "Less i,three -> c_out", NULL);
    tm_node(&body, "Identity i -> scan_i", NULL);
    tm_io(&body, 12, "c_out", NULL);
    tm_io(&body, 12, "scan_i", NULL);
    tm_input(&g, "go", ONYX_DTYPE_BOOL, 0, NULL);
    tm_init_i64(&g, "three", three);
    n = tm_node_new(loop);
    tm_attr_graph(&n, "body", &body);
    tm_add_node(&g, &n);
    tm_io(&g, 12, "is", NULL);
    onyx_status st = run_graph(&r, &g, 16, 1, names, 1);
    CHECK(st == ONYX_OK);
    onyx_tensor_view tv;
    const int64_t d4[1] = {4};
    if (!st) CHECK(is_tensor(r.out[0], ONYX_DTYPE_INT64, 1, d4, &tv));
    for (int k = 0; !st && k < 4; k++) CHECK(((int64_t *)tv.data)[k] == k);
    fini(&r);
}

UNIT_TEST(loop_without_trip_count) {
    check_while(unit_failed_, "Loop _,_ -> is");
    check_while(unit_failed_, "Loop _,go -> is");
}

UNIT_TEST(loop_strings_carried_and_scanned) {
    static const int64_t d2[1] = {2};
    static const char *const names[] = {"M", "s0"};
    const int64_t trips = 3;
    const char *s0[2] = {"alpha", ""};
    run r = {0};
    in_tensor(&r, ONYX_DTYPE_INT64, 0, NULL, &trips);
    in_tensor(&r, ONYX_DTYPE_STRING, 1, d2, s0);
    tm_buf body = {0}, g = {0}, n;
    loop_body(&body);
    tm_input(&body, "s", ONYX_DTYPE_STRING, 1, d2);
    tm_node(&body, "Identity s -> s_out", NULL);
    tm_node(&body, "Identity s -> scan", NULL);
    tm_io(&body, 12, "s_out", NULL);
    tm_io(&body, 12, "scan", NULL);
    tm_input(&g, "M", ONYX_DTYPE_INT64, 0, NULL);
    tm_input(&g, "s0", ONYX_DTYPE_STRING, 1, d2);
    n = tm_node_new("Loop M,_,s0 -> s_final,ss");
    tm_attr_graph(&n, "body", &body);
    tm_add_node(&g, &n);
    tm_io(&g, 12, "s_final", NULL);
    tm_io(&g, 12, "ss", NULL);
    if (run_ok(unit_failed_, &r, &g, 13, 2, names, 2)) {
        onyx_tensor_view tv;
        const int64_t d32[2] = {3, 2};
        CHECK(is_tensor(r.out[0], ONYX_DTYPE_STRING, 1, d2, &tv));
        char **p = tv.data;
        CHECK(p && !strcmp(p[0], "alpha") && (!p[1] || !p[1][0]));
        CHECK(is_tensor(r.out[1], ONYX_DTYPE_STRING, 2, d32, &tv));
        p = tv.data;
        for (int k = 0; p && k < 3; k++) CHECK(!strcmp(p[2 * k], "alpha") && (!p[2 * k + 1] || !p[2 * k + 1][0]));
    }
    fini(&r);
}

typedef struct abort_job {
    onyx_session **s;
} abort_job;

static void *abort_later(void *arg) {
    abort_job *j = arg;
    struct timespec ts = {0, 30 * 1000 * 1000};
    nanosleep(&ts, NULL);
    onyx_session_abort(*j->s);
    return NULL;
}

UNIT_TEST(loop_is_cancelled_by_session_abort) {
    static const int64_t d1[1] = {1};
    static const char *const names[] = {"M", "x0"};
    const int64_t trips = 5 * 1000 * 1000; /* seconds of work if not cancelled */
    const float x0[1] = {0};
    run r = {0};
    in_tensor(&r, ONYX_DTYPE_INT64, 0, NULL, &trips);
    in_tensor(&r, ONYX_DTYPE_FLOAT, 1, d1, x0);
    tm_buf body = {0}, g = {0}, n;
    loop_body(&body);
    tm_input(&body, "x", ONYX_DTYPE_FLOAT, 1, d1);
    tm_node(&body, "Identity x -> x_out", NULL);
    tm_io(&body, 12, "x_out", NULL);
    tm_input(&g, "M", ONYX_DTYPE_INT64, 0, NULL);
    tm_input(&g, "x0", ONYX_DTYPE_FLOAT, 1, d1);
    n = tm_node_new("Loop M,_,x0 -> x_final");
    tm_attr_graph(&n, "body", &body);
    tm_add_node(&g, &n);
    tm_io(&g, 12, "x_final", NULL);

    /* Load first, then run with an aborting thread. */
    r.bytes = tm_model(&g, 13);
    onyx_status st = onyx_model_load_memory(r.bytes.p, r.bytes.n, NULL, NULL, &r.m, &r.err);
    CHECK(st == ONYX_OK);
    if (!st) st = onyx_session_new(r.m, NULL, &r.s, &r.err);
    CHECK(st == ONYX_OK);
    if (!st) {
        abort_job j = {&r.s};
        pthread_t th;
        CHECK(pthread_create(&th, NULL, abort_later, &j) == 0);
        st = onyx_session_run(r.s, 2, names, (const onyx_value *const *)r.in, 1, NULL, r.out,
                              &r.err);
        pthread_join(th, NULL);
        CHECK(st == ONYX_ERR_CANCELLED);
    }
    fini(&r);
}

// ----------------------------------------------------------------------------
// Scan

/* Scan-9+: state s (3), inputs a (3, L) scanned along axis 1 forward and
 * b (L, 3) along axis 0 backward; s' = s + a_t + b_t. Outputs: s' stacked
 * along axis 1 in reverse (3, L), and a_t stacked along axis 0 (L, 3). */
UNIT_TEST(scan_axes_and_directions_against_naive) {
    enum { L = 5 };
    static const int64_t d3[1] = {3}, d3L[2] = {3, L}, dL3[2] = {L, 3};
    static const char *const names[] = {"s0", "a", "b"};
    float s0[3] = {1, 2, 3}, a[3 * L], b[L * 3];
    for (int i = 0; i < 3 * L; i++) a[i] = (float)(i * 7 % 11) - 5, b[i] = (float)(i * 5 % 13) / 4;
    run r = {0};
    in_tensor(&r, ONYX_DTYPE_FLOAT, 1, d3, s0);
    in_tensor(&r, ONYX_DTYPE_FLOAT, 2, d3L, a);
    in_tensor(&r, ONYX_DTYPE_FLOAT, 2, dL3, b);
    tm_buf body = {0}, g = {0}, n;
    tm_input(&body, "s", ONYX_DTYPE_FLOAT, 1, d3);
    tm_input(&body, "at", ONYX_DTYPE_FLOAT, 1, d3);
    tm_input(&body, "bt", ONYX_DTYPE_FLOAT, 1, d3);
    tm_node(&body, "Add s,at -> u", NULL);
    tm_node(&body, "Add u,bt -> s_out", NULL);
    tm_node(&body, "Identity s_out -> o1", NULL);
    tm_node(&body, "Identity at -> o2", NULL);
    tm_io(&body, 12, "s_out", NULL);
    tm_io(&body, 12, "o1", NULL);
    tm_io(&body, 12, "o2", NULL);
    tm_input(&g, "s0", ONYX_DTYPE_FLOAT, 1, d3);
    tm_input(&g, "a", ONYX_DTYPE_FLOAT, 2, d3L);
    tm_input(&g, "b", ONYX_DTYPE_FLOAT, 2, dL3);
    n = tm_node_new("Scan s0,a,b -> s_final,y1,y2");
    tm_attr_graph(&n, "body", &body);
    tm_attr_int(&n, "num_scan_inputs", 2);
    tm_attr_ints(&n, "scan_input_axes", 2, (const int64_t[]){-1, 0});
    tm_attr_ints(&n, "scan_input_directions", 2, (const int64_t[]){0, 1});
    tm_attr_ints(&n, "scan_output_axes", 2, (const int64_t[]){1, 0});
    tm_attr_ints(&n, "scan_output_directions", 2, (const int64_t[]){1, 0});
    tm_add_node(&g, &n);
    tm_io(&g, 12, "s_final", NULL);
    tm_io(&g, 12, "y1", NULL);
    tm_io(&g, 12, "y2", NULL);

    /* The naive recurrence. */
    float s[3], y1[3 * L], y2[L * 3];
    memcpy(s, s0, sizeof s);
    for (int step = 0; step < L; step++) {
        int tb = L - 1 - step, ty = L - 1 - step;
        for (int k = 0; k < 3; k++) {
            s[k] += a[k * L + step] + b[tb * 3 + k];
            y1[k * L + ty] = s[k];
            y2[step * 3 + k] = a[k * L + step];
        }
    }
    if (run_ok(unit_failed_, &r, &g, 16, 3, names, 3)) {
        CHECK(is_floats(r.out[0], 1, d3, s));
        CHECK(is_floats(r.out[1], 2, d3L, y1));
        CHECK(is_floats(r.out[2], 2, dL3, y2));
    }
    fini(&r);
}

/* Scan-8: batch of 2, max length 3, sequence_lens {3, 1}; the short entry's
 * outputs are zero-padded and its state stops after one step. */
static void check_scan8(int *unit_failed_, int reverse) {
    static const int64_t d21[2] = {2, 1}, d231[3] = {2, 3, 1}, d2[1] = {2};
    static const char *const names[] = {"lens", "s0", "x"};
    const int64_t lens[2] = {3, 1};
    const float s0[2] = {0, 100}, x[6] = {1, 2, 3, 10, 20, 30};
    run r = {0};
    in_tensor(&r, ONYX_DTYPE_INT64, 1, d2, lens);
    in_tensor(&r, ONYX_DTYPE_FLOAT, 2, d21, s0);
    in_tensor(&r, ONYX_DTYPE_FLOAT, 3, d231, x);
    tm_buf body = {0}, g = {0}, n;
    static const int64_t d1[1] = {1};
    tm_input(&body, "s", ONYX_DTYPE_FLOAT, 1, d1);
    tm_input(&body, "xt", ONYX_DTYPE_FLOAT, 1, d1);
    tm_node(&body, "Add s,xt -> s_out", NULL);
    tm_node(&body, "Identity s_out -> y", NULL);
    tm_io(&body, 12, "s_out", NULL);
    tm_io(&body, 12, "y", NULL);
    tm_input(&g, "lens", ONYX_DTYPE_INT64, 1, d2);
    tm_input(&g, "s0", ONYX_DTYPE_FLOAT, 2, d21);
    tm_input(&g, "x", ONYX_DTYPE_FLOAT, 3, d231);
    n = tm_node_new("Scan lens,s0,x -> s_final,ys");
    tm_attr_graph(&n, "body", &body);
    tm_attr_int(&n, "num_scan_inputs", 1);
    if (reverse) tm_attr_ints(&n, "directions", 1, (const int64_t[]){1});
    tm_add_node(&g, &n);
    tm_io(&g, 12, "s_final", NULL);
    tm_io(&g, 12, "ys", NULL);
    if (run_ok(unit_failed_, &r, &g, 8, 3, names, 2)) {
        const float want_s[2] = {6, 110};
        const float fwd[6] = {1, 3, 6, 110, 0, 0}, rev[6] = {3, 5, 6, 110, 0, 0};
        CHECK(is_floats(r.out[0], 2, d21, want_s));
        CHECK(is_floats(r.out[1], 3, d231, reverse ? rev : fwd));
    }
    fini(&r);
}

UNIT_TEST(scan8_sequence_lens_and_directions) {
    check_scan8(unit_failed_, 0);
    check_scan8(unit_failed_, 1);
}

// ----------------------------------------------------------------------------
// If

/* If(c): then SequenceConstruct(a, b) of outer values; else SequenceEmpty. */
UNIT_TEST(if_sequence_outputs_from_outer_scope) {
    static const int64_t d2[1] = {2}, d1[1] = {1};
    static const char *const names[] = {"c", "a", "b"};
    const float a[2] = {1, 2}, b[1] = {7};
    for (int c = 0; c < 2; c++) {
        const uint8_t cond = (uint8_t)c;
        run r = {0};
        in_tensor(&r, ONYX_DTYPE_BOOL, 0, NULL, &cond);
        in_tensor(&r, ONYX_DTYPE_FLOAT, 1, d2, a);
        in_tensor(&r, ONYX_DTYPE_FLOAT, 1, d1, b);
        tm_buf then_g = {0}, else_g = {0}, g = {0}, n, t;
        tm_node(&then_g, "SequenceConstruct a,b -> seq_t", NULL);
        t = tm_type_seq(tm_type_tensor(ONYX_DTYPE_FLOAT, -1, NULL)), tm_io(&then_g, 12, "seq_t", &t);
        tm_node(&else_g, "SequenceEmpty -> seq_e", NULL);
        t = tm_type_seq(tm_type_tensor(ONYX_DTYPE_FLOAT, -1, NULL)), tm_io(&else_g, 12, "seq_e", &t);
        tm_input(&g, "c", ONYX_DTYPE_BOOL, 0, NULL);
        tm_input(&g, "a", ONYX_DTYPE_FLOAT, 1, d2);
        tm_input(&g, "b", ONYX_DTYPE_FLOAT, 1, d1);
        n = tm_node_new("If c -> seq");
        tm_attr_graph(&n, "then_branch", &then_g);
        tm_attr_graph(&n, "else_branch", &else_g);
        tm_add_node(&g, &n);
        t = tm_type_seq(tm_type_tensor(ONYX_DTYPE_FLOAT, -1, NULL)), tm_io(&g, 12, "seq", &t);
        if (run_ok(unit_failed_, &r, &g, 16, 3, names, 1)) {
            CHECK(onyx_value_kind(r.out[0]) == ONYX_KIND_SEQUENCE);
            CHECK(onyx_value_elem_type(r.out[0]) == ONYX_DTYPE_FLOAT);
            CHECK(onyx_value_count(r.out[0]) == (c ? 2 : 0));
            if (c) {
                CHECK(is_floats(onyx_value_item(r.out[0], 0), 1, d2, a));
                CHECK(is_floats(onyx_value_item(r.out[0], 1), 1, d1, b));
            }
        }
        fini(&r);
    }
}

// ----------------------------------------------------------------------------
// Sequence ops

/* Construct [a, b, c], insert d at -1 ([a, b, d, c]), erase the last
 * ([a, b, d]), then length, At(-1) and Concat along axis 0. */
UNIT_TEST(sequence_insert_erase_at_concat) {
    static const int64_t da[2] = {1, 2}, db[2] = {2, 2}, dc[2] = {3, 2}, dd[2] = {1, 2};
    static const char *const names[] = {"a", "b", "c", "d"};
    const float a[2] = {1, 2}, b[4] = {3, 4, 5, 6}, c[6] = {9, 9, 9, 9, 9, 9}, d[2] = {7, 8};
    run r = {0};
    in_tensor(&r, ONYX_DTYPE_FLOAT, 2, da, a);
    in_tensor(&r, ONYX_DTYPE_FLOAT, 2, db, b);
    in_tensor(&r, ONYX_DTYPE_FLOAT, 2, dc, c);
    in_tensor(&r, ONYX_DTYPE_FLOAT, 2, dd, d);
    tm_buf g = {0}, n;
    for (int i = 0; i < 4; i++)
        tm_input(&g, names[i], ONYX_DTYPE_FLOAT, 2, i == 0 ? da : i == 1 ? db : i == 2 ? dc : dd);
    tm_init_i64(&g, "minus1", -1);
    tm_node(&g, "SequenceConstruct a,b,c -> s1", NULL);
    tm_node(&g, "SequenceInsert s1,d,minus1 -> s2", NULL);
    tm_node(&g, "SequenceErase s2 -> s3", NULL);
    tm_node(&g, "SequenceLength s3 -> len", NULL);
    tm_node(&g, "SequenceAt s3,minus1 -> last", NULL);
    n = tm_node_new("ConcatFromSequence s3 -> cat");
    tm_attr_int(&n, "axis", 0);
    tm_add_node(&g, &n);
    tm_io(&g, 12, "len", NULL);
    tm_io(&g, 12, "last", NULL);
    tm_io(&g, 12, "cat", NULL);
    if (run_ok(unit_failed_, &r, &g, 13, 4, names, 3)) {
        onyx_tensor_view tv;
        CHECK(is_tensor(r.out[0], ONYX_DTYPE_INT64, 0, NULL, &tv) && *(int64_t *)tv.data == 3);
        CHECK(is_floats(r.out[1], 2, dd, d));
        const int64_t d42[2] = {4, 2};
        const float want[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        CHECK(is_floats(r.out[2], 2, d42, want));
    }
    fini(&r);
}

/* SplitToSequence and ConcatFromSequence are inverses: uneven scalar split
 * along axis 0 concatenated at axis -2, and keepdims=0 unit splits along
 * axis 1 stacked back with new_axis at -1. Run on floats and strings. */
static void check_split_concat(int *unit_failed_, onyx_dtype dt) {
    static const int64_t d53[2] = {5, 3};
    static const char *const names[] = {"x"};
    float xf[15];
    const char *xs[15];
    static const char *const words[] = {"a", "bb", "", "dddd", "e"};
    for (int i = 0; i < 15; i++) xf[i] = (float)i * 1.5f, xs[i] = words[i % 5];
    const void *data = dt == ONYX_DTYPE_STRING ? (const void *)xs : (const void *)xf;
    run r = {0};
    in_tensor(&r, dt, 2, d53, data);
    tm_buf g = {0}, n;
    tm_input(&g, "x", dt, 2, d53);
    tm_init_i64(&g, "two", 2);
    tm_node(&g, "SplitToSequence x,two -> s1", NULL);
    tm_node(&g, "SequenceLength s1 -> n1", NULL);
    n = tm_node_new("ConcatFromSequence s1 -> y1");
    tm_attr_int(&n, "axis", -2);
    tm_add_node(&g, &n);
    n = tm_node_new("SplitToSequence x -> s2");
    tm_attr_int(&n, "axis", 1);
    tm_attr_int(&n, "keepdims", 0);
    tm_add_node(&g, &n);
    tm_node(&g, "SequenceAt s2,two -> col2", NULL);
    n = tm_node_new("ConcatFromSequence s2 -> y2");
    tm_attr_int(&n, "axis", -1);
    tm_attr_int(&n, "new_axis", 1);
    tm_add_node(&g, &n);
    tm_io(&g, 12, "n1", NULL);
    tm_io(&g, 12, "y1", NULL);
    tm_io(&g, 12, "col2", NULL);
    tm_io(&g, 12, "y2", NULL);
    if (run_ok(unit_failed_, &r, &g, 13, 1, names, 4)) {
        onyx_tensor_view tv;
        CHECK(is_tensor(r.out[0], ONYX_DTYPE_INT64, 0, NULL, &tv) && *(int64_t *)tv.data == 3);
        const int64_t d5[1] = {5};
        for (int o = 1; o <= 3; o++) {
            bool col = o == 2;
            bool ok = is_tensor(r.out[o], dt, col ? 1 : 2, col ? d5 : d53, &tv);
            CHECK(ok);
            if (!ok) continue;
            for (int i = 0; i < (col ? 5 : 15); i++) {
                int src = col ? i * 3 + 2 : i;
                if (dt == ONYX_DTYPE_STRING) {
                    const char *got = ((char **)tv.data)[i];
                    CHECK(!strcmp(got ? got : "", xs[src]));
                } else {
                    CHECK(((float *)tv.data)[i] == xf[src]);
                }
            }
        }
    }
    fini(&r);
}

UNIT_TEST(split_to_sequence_concat_roundtrip) {
    check_split_concat(unit_failed_, ONYX_DTYPE_FLOAT);
    check_split_concat(unit_failed_, ONYX_DTYPE_STRING);
}

UNIT_TEST(sequence_bad_position_fails_cleanly) {
    static const int64_t d1[1] = {1};
    static const char *const names[] = {"a", "p"};
    const float a[1] = {1};
    const int64_t positions[] = {3, -4, 100};
    for (size_t k = 0; k < sizeof positions / sizeof positions[0]; k++) {
        run r = {0};
        in_tensor(&r, ONYX_DTYPE_FLOAT, 1, d1, a);
        in_tensor(&r, ONYX_DTYPE_INT64, 0, NULL, &positions[k]);
        tm_buf g = {0};
        tm_input(&g, "a", ONYX_DTYPE_FLOAT, 1, d1);
        tm_input(&g, "p", ONYX_DTYPE_INT64, 0, NULL);
        tm_node(&g, "SequenceConstruct a,a,a -> s", NULL);
        tm_node(&g, "SequenceAt s,p -> y", NULL);
        tm_io(&g, 12, "y", NULL);
        onyx_status st = run_graph(&r, &g, 13, 2, names, 1);
        CHECK(st == ONYX_ERR_INVALID_ARGUMENT);
        CHECK(strstr(r.err.message, "SequenceAt") && strstr(r.err.message, "out of range"));
        fini(&r);
    }
}

/* SequenceMap over an empty sequence yields an empty sequence typed from the
 * body; over [x, y] with a tensor operand it maps Add. */
UNIT_TEST(sequence_map_empty_and_broadcast_operand) {
    static const int64_t d2[1] = {2};
    static const char *const names[] = {"s", "k"};
    const float x[2] = {1, 2}, y[2] = {3, 4}, k[2] = {10, 20};
    for (int empty = 0; empty < 2; empty++) {
        run r = {0};
        onyx_value *items[2] = {NULL, NULL};
        onyx_tensor_view vx = {.dtype = ONYX_DTYPE_FLOAT, .ndim = 1, .dims = {2}, .data = (void *)x};
        onyx_tensor_view vy = {.dtype = ONYX_DTYPE_FLOAT, .ndim = 1, .dims = {2}, .data = (void *)y};
        if (!empty) {
            CHECK(onyx_value_new_tensor(&vx, &items[0]) == ONYX_OK);
            CHECK(onyx_value_new_tensor(&vy, &items[1]) == ONYX_OK);
        }
        onyx_value *seq = NULL;
        CHECK(onyx_value_new_sequence(ONYX_DTYPE_FLOAT, items, empty ? 0 : 2, &seq) == ONYX_OK);
        r.in[r.n_in++] = seq;
        in_tensor(&r, ONYX_DTYPE_FLOAT, 1, d2, k);
        tm_buf body = {0}, g = {0}, n, t;
        tm_input(&body, "e", ONYX_DTYPE_FLOAT, 1, d2);
        tm_input(&body, "kk", ONYX_DTYPE_FLOAT, 1, d2);
        tm_node(&body, "Add e,kk -> o", NULL);
        tm_output(&body, "o", ONYX_DTYPE_FLOAT, 1, d2);
        t = tm_type_seq(tm_type_tensor(ONYX_DTYPE_FLOAT, 1, d2)), tm_io(&g, 11, "s", &t);
        tm_input(&g, "k", ONYX_DTYPE_FLOAT, 1, d2);
        n = tm_node_new("SequenceMap s,k -> out");
        tm_attr_graph(&n, "body", &body);
        tm_add_node(&g, &n);
        tm_io(&g, 12, "out", NULL);
        if (run_ok(unit_failed_, &r, &g, 17, 2, names, 1)) {
            CHECK(onyx_value_kind(r.out[0]) == ONYX_KIND_SEQUENCE);
            CHECK(onyx_value_elem_type(r.out[0]) == ONYX_DTYPE_FLOAT);
            CHECK(onyx_value_count(r.out[0]) == (empty ? 0 : 2));
            const float w0[2] = {11, 22}, w1[2] = {13, 24};
            if (!empty) {
                CHECK(is_floats(onyx_value_item(r.out[0], 0), 1, d2, w0));
                CHECK(is_floats(onyx_value_item(r.out[0], 1), 1, d2, w1));
            }
        }
        fini(&r);
    }
}

// ----------------------------------------------------------------------------
// Optional

UNIT_TEST(optional_construct_has_get) {
    static const int64_t d2[1] = {2};
    static const char *const names[] = {"x"};
    const float x[2] = {5, 6};
    run r = {0};
    in_tensor(&r, ONYX_DTYPE_FLOAT, 1, d2, x);
    tm_buf g = {0}, n, t;
    tm_input(&g, "x", ONYX_DTYPE_FLOAT, 1, d2);
    tm_node(&g, "Optional x -> full", NULL);
    n = tm_node_new("Optional -> none");
    t = tm_type_seq(tm_type_tensor(ONYX_DTYPE_FLOAT, -1, NULL));
    tm_attr_type(&n, "type", &t);
    tm_add_node(&g, &n);
    tm_node(&g, "OptionalHasElement full -> h1", NULL);
    tm_node(&g, "OptionalHasElement none -> h2", NULL);
    tm_node(&g, "OptionalHasElement -> h3", NULL);
    tm_node(&g, "OptionalGetElement full -> got", NULL);
    tm_io(&g, 12, "h1", NULL);
    tm_io(&g, 12, "h2", NULL);
    tm_io(&g, 12, "h3", NULL);
    tm_io(&g, 12, "got", NULL);
    tm_io(&g, 12, "none", NULL);
    if (run_ok(unit_failed_, &r, &g, 18, 1, names, 5)) {
        onyx_tensor_view tv;
        CHECK(is_tensor(r.out[0], ONYX_DTYPE_BOOL, 0, NULL, &tv) && *(uint8_t *)tv.data == 1);
        CHECK(is_tensor(r.out[1], ONYX_DTYPE_BOOL, 0, NULL, &tv) && *(uint8_t *)tv.data == 0);
        CHECK(is_tensor(r.out[2], ONYX_DTYPE_BOOL, 0, NULL, &tv) && *(uint8_t *)tv.data == 0);
        CHECK(is_floats(r.out[3], 1, d2, x));
        CHECK(onyx_value_kind(r.out[4]) == ONYX_KIND_NONE);
    }
    fini(&r);
}

UNIT_TEST(optional_get_element_of_empty_fails) {
    run r = {0};
    tm_buf g = {0}, n, t;
    n = tm_node_new("Optional -> none");
    t = tm_type_tensor(ONYX_DTYPE_FLOAT, -1, NULL);
    tm_attr_type(&n, "type", &t);
    tm_add_node(&g, &n);
    tm_node(&g, "OptionalGetElement none -> y", NULL);
    tm_io(&g, 12, "y", NULL);
    onyx_status st = run_graph(&r, &g, 18, 0, NULL, 1);
    CHECK(st == ONYX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(r.err.message, "empty") != NULL);
    fini(&r);
}

/* A Loop body holding an If whose branches read a top-level input (a
 * capture through two scopes) and the body's own carried value. */
UNIT_TEST(loop_with_nested_if_reading_two_scopes_up) {
    static const int64_t d1[1] = {1};
    static const char *const names[] = {"M", "x0", "delta"};
    const int64_t trips = 5;
    const float x0[1] = {1}, delta[1] = {10};
    run r = {0};
    in_tensor(&r, ONYX_DTYPE_INT64, 0, NULL, &trips);
    in_tensor(&r, ONYX_DTYPE_FLOAT, 1, d1, x0);
    in_tensor(&r, ONYX_DTYPE_FLOAT, 1, d1, delta);
    tm_buf then_g = {0}, else_g = {0}, body = {0}, g = {0}, n;
    /* odd iterations add delta, even ones double x */
    tm_node(&then_g, "Add x,delta -> y_t", NULL);
    tm_io(&then_g, 12, "y_t", NULL);
    tm_node(&else_g, "Add x,x -> y_e", NULL);
    tm_io(&else_g, 12, "y_e", NULL);
    tm_input(&body, "i", ONYX_DTYPE_INT64, 0, NULL);
    tm_input(&body, "c", ONYX_DTYPE_BOOL, 0, NULL);
    tm_input(&body, "x", ONYX_DTYPE_FLOAT, 1, d1);
    tm_node(&body, "Mod i,two -> m", NULL);
    tm_node(&body, "Equal m,one -> odd", NULL);
    n = tm_node_new("If odd -> x_out");
    tm_attr_graph(&n, "then_branch", &then_g);
    tm_attr_graph(&n, "else_branch", &else_g);
    tm_add_node(&body, &n);
    tm_node(&body, "Identity c -> c_out", NULL);
    tm_io(&body, 12, "c_out", NULL);
    tm_io(&body, 12, "x_out", NULL);
    tm_input(&g, "M", ONYX_DTYPE_INT64, 0, NULL);
    tm_input(&g, "x0", ONYX_DTYPE_FLOAT, 1, d1);
    tm_input(&g, "delta", ONYX_DTYPE_FLOAT, 1, d1);
    tm_init_i64(&g, "two", 2);
    tm_init_i64(&g, "one", 1);
    n = tm_node_new("Loop M,_,x0 -> x_final");
    tm_attr_graph(&n, "body", &body);
    tm_add_node(&g, &n);
    tm_io(&g, 12, "x_final", NULL);
    if (run_ok(unit_failed_, &r, &g, 13, 3, names, 1)) {
        /* i=0: 2, i=1: 12, i=2: 24, i=3: 34, i=4: 68 */
        const float want[1] = {68};
        CHECK(is_floats(r.out[0], 1, d1, want));
    }
    fini(&r);
}
