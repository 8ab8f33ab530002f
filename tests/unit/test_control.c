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
#include "unit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// ----------------------------------------------------------------------------
// A protobuf writer for ModelProto / GraphProto / NodeProto

typedef struct wb {
    uint8_t *p;
    size_t n, cap;
} wb;

static void wb_raw(wb *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n) cap *= 2;
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
    while (v >= 0x80) t[k++] = (uint8_t)(v | 0x80), v >>= 7;
    t[k++] = (uint8_t)v;
    wb_raw(b, t, (size_t)k);
}

static void wb_tag(wb *b, uint32_t num, int wire) { wb_varint(b, (uint64_t)num << 3 | (unsigned)wire); }

static void wb_int(wb *b, uint32_t num, int64_t v) {
    wb_tag(b, num, 0);
    wb_varint(b, (uint64_t)v);
}

static void wb_bytes(wb *b, uint32_t num, const void *d, size_t n) {
    wb_tag(b, num, 2);
    wb_varint(b, n);
    wb_raw(b, d, n);
}

static void wb_str(wb *b, uint32_t num, const char *s) { wb_bytes(b, num, s, strlen(s)); }

/* Writes `inner` as a sub-message and frees it. */
static void wb_msg(wb *b, uint32_t num, wb *inner) {
    wb_bytes(b, num, inner->p, inner->n);
    free(inner->p);
    memset(inner, 0, sizeof *inner);
}

/* TypeProto of a tensor; ndim < 0 leaves the shape out. */
static wb tp_tensor(onyx_dtype dt, int ndim, const int64_t *dims) {
    wb t = {0}, tt = {0}, sh = {0};
    wb_int(&tt, 1, dt);
    if (ndim >= 0) {
        for (int i = 0; i < ndim; i++) {
            wb d = {0};
            wb_int(&d, 1, dims[i]);
            wb_msg(&sh, 1, &d);
        }
        wb_msg(&tt, 2, &sh);
    }
    wb_msg(&t, 1, &tt);
    return t;
}

/* TypeProto of a sequence (field 4) or optional (field 9) of `elem`. */
static wb tp_wrap(uint32_t field, wb elem) {
    wb t = {0}, s = {0};
    wb_msg(&s, 1, &elem);
    wb_msg(&t, field, &s);
    return t;
}
#define tp_seq(e) tp_wrap(4, e)
#define tp_opt(e) tp_wrap(9, e)

/* A graph input (field 11) or output (12); type NULL declares no type. */
static void add_io(wb *g, uint32_t field, const char *name, wb *type) {
    wb vi = {0};
    wb_str(&vi, 1, name);
    if (type) wb_msg(&vi, 2, type);
    wb_msg(g, field, &vi);
}

static void add_init(wb *g, const char *name, onyx_dtype dt, int ndim, const int64_t *dims,
                     const void *data) {
    wb t = {0};
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        wb_int(&t, 1, dims[i]);
        n *= dims[i];
    }
    wb_int(&t, 2, dt);
    wb_str(&t, 8, name);
    wb_bytes(&t, 9, data, (size_t)n * onyx_dtype_size(dt));
    wb_msg(g, 5, &t);
}

static void add_scalar_i64(wb *g, const char *name, int64_t v) {
    add_init(g, name, ONYX_DTYPE_INT64, 0, NULL, &v);
}

/* A node; `ins` and `outs` are space-separated names, "-" for an omitted one. */
static wb node(const char *op, const char *ins, const char *outs) {
    wb n = {0};
    for (int f = 1; f <= 2; f++) {
        const char *s = f == 1 ? ins : outs;
        while (s && *s) {
            while (*s == ' ') s++;
            size_t len = strcspn(s, " ");
            if (!len) break;
            if (len == 1 && *s == '-')
                wb_bytes(&n, (uint32_t)f, "", 0);
            else
                wb_bytes(&n, (uint32_t)f, s, len);
            s += len;
        }
    }
    wb_str(&n, 4, op);
    return n;
}

static void attr_begin(wb *a, const char *name, int type) {
    memset(a, 0, sizeof *a);
    wb_str(a, 1, name);
    wb_int(a, 20, type);
}

static void attr_int(wb *n, const char *name, int64_t v) {
    wb a;
    attr_begin(&a, name, 2);
    wb_int(&a, 3, v);
    wb_msg(n, 5, &a);
}

static void attr_ints(wb *n, const char *name, int cnt, const int64_t *v) {
    wb a;
    attr_begin(&a, name, 7);
    for (int i = 0; i < cnt; i++) wb_int(&a, 8, v[i]);
    wb_msg(n, 5, &a);
}

static void attr_graph(wb *n, const char *name, wb *g) {
    wb a;
    attr_begin(&a, name, 5);
    wb_str(g, 2, name);
    wb_msg(&a, 6, g);
    wb_msg(n, 5, &a);
}

static void attr_type(wb *n, const char *name, wb *tp) {
    wb a;
    attr_begin(&a, name, 13);
    wb_msg(&a, 14, tp);
    wb_msg(n, 5, &a);
}

static void add_node(wb *g, wb *n) { wb_msg(g, 1, n); }

// ----------------------------------------------------------------------------
// Running a model

typedef struct run {
    wb bytes;
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
static onyx_status run_graph(run *r, wb *g, int opset, int nin, const char *const *names,
                             int nout) {
    wb op = {0};
    wb_str(g, 2, "test");
    wb_int(&r->bytes, 1, 8);
    wb_str(&op, 1, "");
    wb_int(&op, 2, opset);
    wb_msg(&r->bytes, 8, &op);
    wb_msg(&r->bytes, 7, g);
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

static bool floats_eq(const onyx_tensor_view *tv, const float *want, int64_t n) {
    return memcmp(tv->data, want, (size_t)n * sizeof(float)) == 0;
}

// ----------------------------------------------------------------------------
// Loop

/* Loop(M, "", x) with a body that adds an outer-scope delta to x and scans
 * out x and the iteration number. */
static wb loop_sum_graph(void) {
    static const int64_t d2[1] = {2};
    wb body = {0}, g = {0}, n;
    wb t;
    t = tp_tensor(ONYX_DTYPE_INT64, 0, NULL), add_io(&body, 11, "i", &t);
    t = tp_tensor(ONYX_DTYPE_BOOL, 0, NULL), add_io(&body, 11, "c", &t);
    t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d2), add_io(&body, 11, "x_in", &t);
    n = node("Identity", "c", "c_out"), add_node(&body, &n);
    n = node("Add", "x_in delta", "x_out"), add_node(&body, &n);
    n = node("Identity", "x_in", "scan_x"), add_node(&body, &n);
    n = node("Identity", "i", "scan_i"), add_node(&body, &n);
    add_io(&body, 12, "c_out", NULL);
    add_io(&body, 12, "x_out", NULL);
    t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d2), add_io(&body, 12, "scan_x", &t);
    t = tp_tensor(ONYX_DTYPE_INT64, 0, NULL), add_io(&body, 12, "scan_i", &t);

    t = tp_tensor(ONYX_DTYPE_INT64, 0, NULL), add_io(&g, 11, "M", &t);
    t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d2), add_io(&g, 11, "x0", &t);
    t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d2), add_io(&g, 11, "delta", &t);
    n = node("Loop", "M - x0", "x_final xs is");
    attr_graph(&n, "body", &body);
    add_node(&g, &n);
    add_io(&g, 12, "x_final", NULL);
    add_io(&g, 12, "xs", NULL);
    add_io(&g, 12, "is", NULL);
    return g;
}

UNIT_TEST(loop_trip_count_scan_outputs_and_capture) {
    static const int64_t d2[1] = {2};
    static const char *const names[] = {"M", "x0", "delta"};
    const int64_t trips = 4;
    const float x0[2] = {1, -2}, delta[2] = {0.5f, 3};
    run r = {0};
    in_tensor(&r, ONYX_DTYPE_INT64, 0, NULL, &trips);
    in_tensor(&r, ONYX_DTYPE_FLOAT, 1, d2, x0);
    in_tensor(&r, ONYX_DTYPE_FLOAT, 1, d2, delta);
    wb g = loop_sum_graph();
    onyx_status st = run_graph(&r, &g, 13, 3, names, 3);
    CHECK(st == ONYX_OK);
    if (!st) {
        onyx_tensor_view tv;
        const float want_final[2] = {3, 10};
        CHECK(is_tensor(r.out[0], ONYX_DTYPE_FLOAT, 1, d2, &tv) && floats_eq(&tv, want_final, 2));
        const int64_t d42[2] = {4, 2}, d4[1] = {4};
        float want_xs[8];
        for (int k = 0; k < 4; k++) {
            want_xs[2 * k] = x0[0] + (float)k * delta[0];
            want_xs[2 * k + 1] = x0[1] + (float)k * delta[1];
        }
        CHECK(is_tensor(r.out[1], ONYX_DTYPE_FLOAT, 2, d42, &tv) && floats_eq(&tv, want_xs, 8));
        CHECK(is_tensor(r.out[2], ONYX_DTYPE_INT64, 1, d4, &tv));
        for (int k = 0; k < 4 && tv.data; k++) CHECK(((int64_t *)tv.data)[k] == k);
    } else {
        fprintf(stderr, "  %s\n", r.err.message);
    }
    fini(&r);
}

UNIT_TEST(loop_zero_trips_gives_initial_values_and_empty_scans) {
    static const int64_t d2[1] = {2};
    static const char *const names[] = {"M", "x0", "delta"};
    const int64_t trips = 0;
    const float x0[2] = {1, -2}, delta[2] = {0.5f, 3};
    run r = {0};
    in_tensor(&r, ONYX_DTYPE_INT64, 0, NULL, &trips);
    in_tensor(&r, ONYX_DTYPE_FLOAT, 1, d2, x0);
    in_tensor(&r, ONYX_DTYPE_FLOAT, 1, d2, delta);
    wb g = loop_sum_graph();
    onyx_status st = run_graph(&r, &g, 13, 3, names, 3);
    CHECK(st == ONYX_OK);
    if (!st) {
        onyx_tensor_view tv;
        CHECK(is_tensor(r.out[0], ONYX_DTYPE_FLOAT, 1, d2, &tv) && floats_eq(&tv, x0, 2));
        const int64_t d02[2] = {0, 2}, d0[1] = {0};
        CHECK(is_tensor(r.out[1], ONYX_DTYPE_FLOAT, 2, d02, &tv));
        CHECK(is_tensor(r.out[2], ONYX_DTYPE_INT64, 1, d0, &tv));
    }
    fini(&r);
}

/* Loop with neither M nor cond (or with cond only): the body's cond output
 * (i < 3) ends it after the iteration with i == 3. */
static void check_while(int *unit_failed_, const char *loop_inputs) {
    static const char *const names[] = {"go"};
    const uint8_t go = 1;
    const int64_t three = 3;
    run r = {0};
    in_tensor(&r, ONYX_DTYPE_BOOL, 0, NULL, &go);
    wb body = {0}, g = {0}, n, t;
    t = tp_tensor(ONYX_DTYPE_INT64, 0, NULL), add_io(&body, 11, "i", &t);
    t = tp_tensor(ONYX_DTYPE_BOOL, 0, NULL), add_io(&body, 11, "c", &t);
    n = node("Less", "i three", "c_out"), add_node(&body, &n);
    n = node("Identity", "i", "scan_i"), add_node(&body, &n);
    add_io(&body, 12, "c_out", NULL);
    add_io(&body, 12, "scan_i", NULL);
    t = tp_tensor(ONYX_DTYPE_BOOL, 0, NULL), add_io(&g, 11, "go", &t);
    add_scalar_i64(&g, "three", three);
    n = node("Loop", loop_inputs, "is");
    attr_graph(&n, "body", &body);
    add_node(&g, &n);
    add_io(&g, 12, "is", NULL);
    onyx_status st = run_graph(&r, &g, 16, 1, names, 1);
    CHECK(st == ONYX_OK);
    onyx_tensor_view tv;
    const int64_t d4[1] = {4};
    if (!st) CHECK(is_tensor(r.out[0], ONYX_DTYPE_INT64, 1, d4, &tv));
    for (int k = 0; !st && k < 4; k++) CHECK(((int64_t *)tv.data)[k] == k);
    fini(&r);
}

UNIT_TEST(loop_without_trip_count) {
    check_while(unit_failed_, "- -");
    check_while(unit_failed_, "- go");
}

UNIT_TEST(loop_strings_carried_and_scanned) {
    static const int64_t d2[1] = {2};
    static const char *const names[] = {"M", "s0"};
    const int64_t trips = 3;
    const char *s0[2] = {"alpha", ""};
    run r = {0};
    in_tensor(&r, ONYX_DTYPE_INT64, 0, NULL, &trips);
    in_tensor(&r, ONYX_DTYPE_STRING, 1, d2, s0);
    wb body = {0}, g = {0}, n, t;
    t = tp_tensor(ONYX_DTYPE_INT64, 0, NULL), add_io(&body, 11, "i", &t);
    t = tp_tensor(ONYX_DTYPE_BOOL, 0, NULL), add_io(&body, 11, "c", &t);
    t = tp_tensor(ONYX_DTYPE_STRING, 1, d2), add_io(&body, 11, "s", &t);
    n = node("Identity", "c", "c_out"), add_node(&body, &n);
    n = node("Identity", "s", "s_out"), add_node(&body, &n);
    n = node("Identity", "s", "scan"), add_node(&body, &n);
    add_io(&body, 12, "c_out", NULL);
    add_io(&body, 12, "s_out", NULL);
    add_io(&body, 12, "scan", NULL);
    t = tp_tensor(ONYX_DTYPE_INT64, 0, NULL), add_io(&g, 11, "M", &t);
    t = tp_tensor(ONYX_DTYPE_STRING, 1, d2), add_io(&g, 11, "s0", &t);
    n = node("Loop", "M - s0", "s_final ss");
    attr_graph(&n, "body", &body);
    add_node(&g, &n);
    add_io(&g, 12, "s_final", NULL);
    add_io(&g, 12, "ss", NULL);
    onyx_status st = run_graph(&r, &g, 13, 2, names, 2);
    CHECK(st == ONYX_OK);
    if (!st) {
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
    wb body = {0}, g = {0}, n, t;
    t = tp_tensor(ONYX_DTYPE_INT64, 0, NULL), add_io(&body, 11, "i", &t);
    t = tp_tensor(ONYX_DTYPE_BOOL, 0, NULL), add_io(&body, 11, "c", &t);
    t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d1), add_io(&body, 11, "x", &t);
    n = node("Identity", "c", "c_out"), add_node(&body, &n);
    n = node("Identity", "x", "x_out"), add_node(&body, &n);
    add_io(&body, 12, "c_out", NULL);
    add_io(&body, 12, "x_out", NULL);
    t = tp_tensor(ONYX_DTYPE_INT64, 0, NULL), add_io(&g, 11, "M", &t);
    t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d1), add_io(&g, 11, "x0", &t);
    n = node("Loop", "M - x0", "x_final");
    attr_graph(&n, "body", &body);
    add_node(&g, &n);
    add_io(&g, 12, "x_final", NULL);

    /* Load first, then run with an aborting thread. */
    wb op = {0};
    wb_str(&g, 2, "test");
    wb_int(&r.bytes, 1, 8);
    wb_str(&op, 1, "");
    wb_int(&op, 2, 13);
    wb_msg(&r.bytes, 8, &op);
    wb_msg(&r.bytes, 7, &g);
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
    wb body = {0}, g = {0}, n, t;
    t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d3), add_io(&body, 11, "s", &t);
    t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d3), add_io(&body, 11, "at", &t);
    t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d3), add_io(&body, 11, "bt", &t);
    n = node("Add", "s at", "u"), add_node(&body, &n);
    n = node("Add", "u bt", "s_out"), add_node(&body, &n);
    n = node("Identity", "s_out", "o1"), add_node(&body, &n);
    n = node("Identity", "at", "o2"), add_node(&body, &n);
    add_io(&body, 12, "s_out", NULL);
    add_io(&body, 12, "o1", NULL);
    add_io(&body, 12, "o2", NULL);
    t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d3), add_io(&g, 11, "s0", &t);
    t = tp_tensor(ONYX_DTYPE_FLOAT, 2, d3L), add_io(&g, 11, "a", &t);
    t = tp_tensor(ONYX_DTYPE_FLOAT, 2, dL3), add_io(&g, 11, "b", &t);
    n = node("Scan", "s0 a b", "s_final y1 y2");
    attr_graph(&n, "body", &body);
    attr_int(&n, "num_scan_inputs", 2);
    attr_ints(&n, "scan_input_axes", 2, (const int64_t[]){-1, 0});
    attr_ints(&n, "scan_input_directions", 2, (const int64_t[]){0, 1});
    attr_ints(&n, "scan_output_axes", 2, (const int64_t[]){1, 0});
    attr_ints(&n, "scan_output_directions", 2, (const int64_t[]){1, 0});
    add_node(&g, &n);
    add_io(&g, 12, "s_final", NULL);
    add_io(&g, 12, "y1", NULL);
    add_io(&g, 12, "y2", NULL);

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
    onyx_status st = run_graph(&r, &g, 16, 3, names, 3);
    CHECK(st == ONYX_OK);
    if (!st) {
        onyx_tensor_view tv;
        CHECK(is_tensor(r.out[0], ONYX_DTYPE_FLOAT, 1, d3, &tv) && floats_eq(&tv, s, 3));
        CHECK(is_tensor(r.out[1], ONYX_DTYPE_FLOAT, 2, d3L, &tv) && floats_eq(&tv, y1, 3 * L));
        CHECK(is_tensor(r.out[2], ONYX_DTYPE_FLOAT, 2, dL3, &tv) && floats_eq(&tv, y2, 3 * L));
    } else {
        fprintf(stderr, "  %s\n", r.err.message);
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
    wb body = {0}, g = {0}, n, t;
    static const int64_t d1[1] = {1};
    t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d1), add_io(&body, 11, "s", &t);
    t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d1), add_io(&body, 11, "xt", &t);
    n = node("Add", "s xt", "s_out"), add_node(&body, &n);
    n = node("Identity", "s_out", "y"), add_node(&body, &n);
    add_io(&body, 12, "s_out", NULL);
    add_io(&body, 12, "y", NULL);
    t = tp_tensor(ONYX_DTYPE_INT64, 1, d2), add_io(&g, 11, "lens", &t);
    t = tp_tensor(ONYX_DTYPE_FLOAT, 2, d21), add_io(&g, 11, "s0", &t);
    t = tp_tensor(ONYX_DTYPE_FLOAT, 3, d231), add_io(&g, 11, "x", &t);
    n = node("Scan", "lens s0 x", "s_final ys");
    attr_graph(&n, "body", &body);
    attr_int(&n, "num_scan_inputs", 1);
    if (reverse) attr_ints(&n, "directions", 1, (const int64_t[]){1});
    add_node(&g, &n);
    add_io(&g, 12, "s_final", NULL);
    add_io(&g, 12, "ys", NULL);
    onyx_status st = run_graph(&r, &g, 8, 3, names, 2);
    CHECK(st == ONYX_OK);
    if (!st) {
        onyx_tensor_view tv;
        const float want_s[2] = {6, 110};
        const float fwd[6] = {1, 3, 6, 110, 0, 0}, rev[6] = {3, 5, 6, 110, 0, 0};
        CHECK(is_tensor(r.out[0], ONYX_DTYPE_FLOAT, 2, d21, &tv) && floats_eq(&tv, want_s, 2));
        CHECK(is_tensor(r.out[1], ONYX_DTYPE_FLOAT, 3, d231, &tv) &&
              floats_eq(&tv, reverse ? rev : fwd, 6));
    } else {
        fprintf(stderr, "  %s\n", r.err.message);
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
        wb then_g = {0}, else_g = {0}, g = {0}, n, t;
        n = node("SequenceConstruct", "a b", "seq_t"), add_node(&then_g, &n);
        t = tp_seq(tp_tensor(ONYX_DTYPE_FLOAT, -1, NULL)), add_io(&then_g, 12, "seq_t", &t);
        n = node("SequenceEmpty", "", "seq_e"), add_node(&else_g, &n);
        t = tp_seq(tp_tensor(ONYX_DTYPE_FLOAT, -1, NULL)), add_io(&else_g, 12, "seq_e", &t);
        t = tp_tensor(ONYX_DTYPE_BOOL, 0, NULL), add_io(&g, 11, "c", &t);
        t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d2), add_io(&g, 11, "a", &t);
        t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d1), add_io(&g, 11, "b", &t);
        n = node("If", "c", "seq");
        attr_graph(&n, "then_branch", &then_g);
        attr_graph(&n, "else_branch", &else_g);
        add_node(&g, &n);
        t = tp_seq(tp_tensor(ONYX_DTYPE_FLOAT, -1, NULL)), add_io(&g, 12, "seq", &t);
        onyx_status st = run_graph(&r, &g, 16, 3, names, 1);
        CHECK(st == ONYX_OK);
        if (!st) {
            CHECK(onyx_value_kind(r.out[0]) == ONYX_KIND_SEQUENCE);
            CHECK(onyx_value_elem_type(r.out[0]) == ONYX_DTYPE_FLOAT);
            CHECK(onyx_value_count(r.out[0]) == (c ? 2 : 0));
            onyx_tensor_view tv;
            if (c) {
                CHECK(is_tensor(onyx_value_item(r.out[0], 0), ONYX_DTYPE_FLOAT, 1, d2, &tv) &&
                      floats_eq(&tv, a, 2));
                CHECK(is_tensor(onyx_value_item(r.out[0], 1), ONYX_DTYPE_FLOAT, 1, d1, &tv) &&
                      floats_eq(&tv, b, 1));
            }
        } else {
            fprintf(stderr, "  %s\n", r.err.message);
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
    wb g = {0}, n, t;
    for (int i = 0; i < 4; i++) {
        t = tp_tensor(ONYX_DTYPE_FLOAT, 2, i == 0 ? da : i == 1 ? db : i == 2 ? dc : dd);
        add_io(&g, 11, names[i], &t);
    }
    add_scalar_i64(&g, "minus1", -1);
    n = node("SequenceConstruct", "a b c", "s1"), add_node(&g, &n);
    n = node("SequenceInsert", "s1 d minus1", "s2"), add_node(&g, &n);
    n = node("SequenceErase", "s2", "s3"), add_node(&g, &n);
    n = node("SequenceLength", "s3", "len"), add_node(&g, &n);
    n = node("SequenceAt", "s3 minus1", "last"), add_node(&g, &n);
    n = node("ConcatFromSequence", "s3", "cat");
    attr_int(&n, "axis", 0);
    add_node(&g, &n);
    add_io(&g, 12, "len", NULL);
    add_io(&g, 12, "last", NULL);
    add_io(&g, 12, "cat", NULL);
    onyx_status st = run_graph(&r, &g, 13, 4, names, 3);
    CHECK(st == ONYX_OK);
    if (!st) {
        onyx_tensor_view tv;
        CHECK(is_tensor(r.out[0], ONYX_DTYPE_INT64, 0, NULL, &tv) && *(int64_t *)tv.data == 3);
        CHECK(is_tensor(r.out[1], ONYX_DTYPE_FLOAT, 2, dd, &tv) && floats_eq(&tv, d, 2));
        const int64_t d42[2] = {4, 2};
        const float want[8] = {1, 2, 3, 4, 5, 6, 7, 8};
        CHECK(is_tensor(r.out[2], ONYX_DTYPE_FLOAT, 2, d42, &tv) && floats_eq(&tv, want, 8));
    } else {
        fprintf(stderr, "  %s\n", r.err.message);
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
    wb g = {0}, n, t;
    t = tp_tensor(dt, 2, d53), add_io(&g, 11, "x", &t);
    add_scalar_i64(&g, "two", 2);
    n = node("SplitToSequence", "x two", "s1"), add_node(&g, &n);
    n = node("SequenceLength", "s1", "n1"), add_node(&g, &n);
    n = node("ConcatFromSequence", "s1", "y1");
    attr_int(&n, "axis", -2);
    add_node(&g, &n);
    n = node("SplitToSequence", "x", "s2");
    attr_int(&n, "axis", 1);
    attr_int(&n, "keepdims", 0);
    add_node(&g, &n);
    n = node("SequenceAt", "s2 two", "col2"), add_node(&g, &n);
    n = node("ConcatFromSequence", "s2", "y2");
    attr_int(&n, "axis", -1);
    attr_int(&n, "new_axis", 1);
    add_node(&g, &n);
    add_io(&g, 12, "n1", NULL);
    add_io(&g, 12, "y1", NULL);
    add_io(&g, 12, "col2", NULL);
    add_io(&g, 12, "y2", NULL);
    onyx_status st = run_graph(&r, &g, 13, 1, names, 4);
    CHECK(st == ONYX_OK);
    if (!st) {
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
    } else {
        fprintf(stderr, "  %s\n", r.err.message);
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
        wb g = {0}, n, t;
        t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d1), add_io(&g, 11, "a", &t);
        t = tp_tensor(ONYX_DTYPE_INT64, 0, NULL), add_io(&g, 11, "p", &t);
        n = node("SequenceConstruct", "a a a", "s"), add_node(&g, &n);
        n = node("SequenceAt", "s p", "y"), add_node(&g, &n);
        add_io(&g, 12, "y", NULL);
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
        wb body = {0}, g = {0}, n, t;
        t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d2), add_io(&body, 11, "e", &t);
        t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d2), add_io(&body, 11, "kk", &t);
        n = node("Add", "e kk", "o"), add_node(&body, &n);
        t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d2), add_io(&body, 12, "o", &t);
        t = tp_seq(tp_tensor(ONYX_DTYPE_FLOAT, 1, d2)), add_io(&g, 11, "s", &t);
        t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d2), add_io(&g, 11, "k", &t);
        n = node("SequenceMap", "s k", "out");
        attr_graph(&n, "body", &body);
        add_node(&g, &n);
        add_io(&g, 12, "out", NULL);
        onyx_status st = run_graph(&r, &g, 17, 2, names, 1);
        CHECK(st == ONYX_OK);
        if (!st) {
            CHECK(onyx_value_kind(r.out[0]) == ONYX_KIND_SEQUENCE);
            CHECK(onyx_value_elem_type(r.out[0]) == ONYX_DTYPE_FLOAT);
            CHECK(onyx_value_count(r.out[0]) == (empty ? 0 : 2));
            onyx_tensor_view tv;
            const float w0[2] = {11, 22}, w1[2] = {13, 24};
            if (!empty) {
                CHECK(is_tensor(onyx_value_item(r.out[0], 0), ONYX_DTYPE_FLOAT, 1, d2, &tv) &&
                      floats_eq(&tv, w0, 2));
                CHECK(is_tensor(onyx_value_item(r.out[0], 1), ONYX_DTYPE_FLOAT, 1, d2, &tv) &&
                      floats_eq(&tv, w1, 2));
            }
        } else {
            fprintf(stderr, "  %s\n", r.err.message);
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
    wb g = {0}, n, t;
    t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d2), add_io(&g, 11, "x", &t);
    n = node("Optional", "x", "full"), add_node(&g, &n);
    n = node("Optional", "", "none");
    t = tp_seq(tp_tensor(ONYX_DTYPE_FLOAT, -1, NULL));
    attr_type(&n, "type", &t);
    add_node(&g, &n);
    n = node("OptionalHasElement", "full", "h1"), add_node(&g, &n);
    n = node("OptionalHasElement", "none", "h2"), add_node(&g, &n);
    n = node("OptionalHasElement", "", "h3"), add_node(&g, &n);
    n = node("OptionalGetElement", "full", "got"), add_node(&g, &n);
    add_io(&g, 12, "h1", NULL);
    add_io(&g, 12, "h2", NULL);
    add_io(&g, 12, "h3", NULL);
    add_io(&g, 12, "got", NULL);
    add_io(&g, 12, "none", NULL);
    onyx_status st = run_graph(&r, &g, 18, 1, names, 5);
    CHECK(st == ONYX_OK);
    if (!st) {
        onyx_tensor_view tv;
        CHECK(is_tensor(r.out[0], ONYX_DTYPE_BOOL, 0, NULL, &tv) && *(uint8_t *)tv.data == 1);
        CHECK(is_tensor(r.out[1], ONYX_DTYPE_BOOL, 0, NULL, &tv) && *(uint8_t *)tv.data == 0);
        CHECK(is_tensor(r.out[2], ONYX_DTYPE_BOOL, 0, NULL, &tv) && *(uint8_t *)tv.data == 0);
        CHECK(is_tensor(r.out[3], ONYX_DTYPE_FLOAT, 1, d2, &tv) && floats_eq(&tv, x, 2));
        CHECK(onyx_value_kind(r.out[4]) == ONYX_KIND_NONE);
    } else {
        fprintf(stderr, "  %s\n", r.err.message);
    }
    fini(&r);
}

UNIT_TEST(optional_get_element_of_empty_fails) {
    run r = {0};
    wb g = {0}, n, t;
    n = node("Optional", "", "none");
    t = tp_tensor(ONYX_DTYPE_FLOAT, -1, NULL);
    attr_type(&n, "type", &t);
    add_node(&g, &n);
    n = node("OptionalGetElement", "none", "y"), add_node(&g, &n);
    add_io(&g, 12, "y", NULL);
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
    wb then_g = {0}, else_g = {0}, body = {0}, g = {0}, n, t;
    /* odd iterations add delta, even ones double x */
    n = node("Add", "x delta", "y_t"), add_node(&then_g, &n);
    add_io(&then_g, 12, "y_t", NULL);
    n = node("Add", "x x", "y_e"), add_node(&else_g, &n);
    add_io(&else_g, 12, "y_e", NULL);
    t = tp_tensor(ONYX_DTYPE_INT64, 0, NULL), add_io(&body, 11, "i", &t);
    t = tp_tensor(ONYX_DTYPE_BOOL, 0, NULL), add_io(&body, 11, "c", &t);
    t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d1), add_io(&body, 11, "x", &t);
    n = node("Mod", "i two", "m"), add_node(&body, &n);
    n = node("Equal", "m one", "odd"), add_node(&body, &n);
    n = node("If", "odd", "x_out");
    attr_graph(&n, "then_branch", &then_g);
    attr_graph(&n, "else_branch", &else_g);
    add_node(&body, &n);
    n = node("Identity", "c", "c_out"), add_node(&body, &n);
    add_io(&body, 12, "c_out", NULL);
    add_io(&body, 12, "x_out", NULL);
    t = tp_tensor(ONYX_DTYPE_INT64, 0, NULL), add_io(&g, 11, "M", &t);
    t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d1), add_io(&g, 11, "x0", &t);
    t = tp_tensor(ONYX_DTYPE_FLOAT, 1, d1), add_io(&g, 11, "delta", &t);
    add_scalar_i64(&g, "two", 2);
    add_scalar_i64(&g, "one", 1);
    n = node("Loop", "M - x0", "x_final");
    attr_graph(&n, "body", &body);
    add_node(&g, &n);
    add_io(&g, 12, "x_final", NULL);
    onyx_status st = run_graph(&r, &g, 13, 3, names, 1);
    CHECK(st == ONYX_OK);
    if (!st) {
        /* i=0: 2, i=1: 12, i=2: 24, i=3: 34, i=4: 68 */
        const float want[1] = {68};
        onyx_tensor_view tv;
        CHECK(is_tensor(r.out[0], ONYX_DTYPE_FLOAT, 1, d1, &tv) && floats_eq(&tv, want, 1));
    } else {
        fprintf(stderr, "  %s\n", r.err.message);
    }
    fini(&r);
}
