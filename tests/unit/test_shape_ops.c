/* test_shape_ops.c - the data-movement and reduction ops (src/ops/shape.c,
 * tensor.c, gather.c, reduce.c, resize.c) on what the ONNX backend node tests
 * do not reach: the tiled transpose paths on odd sizes against a naive
 * permutation, STRING tensors through every copying op (ownership is
 * checked by the ASan build), hostile indices and shapes that must fail
 * cleanly, exact 64-bit integer reductions and saturating integer Resize.
 * Each case builds a one-node model in memory and runs it. */
#include "core/tensor.h"
#include "onyx.h"
#include "unit.h"

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

static void wb_msg(wb *b, uint32_t num, wb *inner) {
    wb_bytes(b, num, inner->p, inner->n);
    free(inner->p);
    memset(inner, 0, sizeof *inner);
}

/* Attributes of the node under construction (AttributeProto fields). */
static void attr_int(wb *node, const char *name, int64_t v) {
    wb a = {0};
    wb_str(&a, 1, name);
    wb_int(&a, 3, v);
    wb_int(&a, 20, 2);
    wb_msg(node, 5, &a);
}

static void attr_ints(wb *node, const char *name, int n, const int64_t *v) {
    wb a = {0};
    wb_str(&a, 1, name);
    for (int i = 0; i < n; i++) wb_int(&a, 8, v[i]);
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

static void attr_floats(wb *node, const char *name, int n, const float *v) {
    wb a = {0};
    wb_str(&a, 1, name);
    for (int i = 0; i < n; i++) {
        wb_tag(&a, 7, 5);
        wb_raw(&a, &v[i], 4);
    }
    wb_int(&a, 20, 6);
    wb_msg(node, 5, &a);
}

static void attr_strs(wb *node, const char *name, int n, const char *const *v) {
    wb a = {0};
    wb_str(&a, 1, name);
    for (int i = 0; i < n; i++) wb_str(&a, 9, v[i]);
    wb_int(&a, 20, 8);
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

static const char *const in_names[] = {"i0", "i1", "i2", "i3", "i4"};
static const char *const out_names[] = {"o0", "o1", "o2", "o3"};

/* Wraps `node` (op_type and attributes already written, inputs/outputs
 * added here) into a ModelProto at `opset`. Returns the bytes in *m. */
static void build_model(wb *m, wb *node, int opset, int nin, const onyx_dtype *in_types, int nout,
                        const onyx_dtype *out_types) {
    wb g = {0}, op = {0};
    for (int i = 0; i < nin; i++) wb_str(node, 1, in_names[i]);
    for (int i = 0; i < nout; i++) wb_str(node, 2, out_names[i]);
    wb_msg(&g, 1, node);
    wb_str(&g, 2, "g");
    for (int i = 0; i < nin; i++) value_info(&g, 11, in_names[i], in_types[i]);
    for (int i = 0; i < nout; i++) value_info(&g, 12, out_names[i], out_types[i]);
    wb_int(m, 1, 8);
    wb_str(&op, 1, "");
    wb_int(&op, 2, opset);
    wb_msg(m, 8, &op);
    wb_msg(m, 7, &g);
}

/* A loaded one-node model with a session; outputs stay valid until fini. */
typedef struct harness {
    wb bytes;
    onyx_model *model;
    onyx_session *session;
    onyx_tensor_view out[4];
    onyx_error err;
} harness;

static onyx_tensor_view view(onyx_dtype dt, int ndim, const int64_t *dims, const void *data) {
    onyx_tensor_view v = {.dtype = dt, .ndim = ndim, .data = (void *)data};
    for (int k = 0; k < ndim; k++) v.dims[k] = dims[k];
    return v;
}

/* Runs `node` on the given inputs; returns the run's status (load failures
 * count as failures of the test). */
static onyx_status run_node(harness *h, wb *node, int opset, int nin, const onyx_tensor_view *ins,
                            int nout, const onyx_dtype *out_types, int *failed) {
    onyx_dtype it[5];
    for (int i = 0; i < nin; i++) it[i] = ins[i].dtype;
    memset(h, 0, sizeof *h);
    build_model(&h->bytes, node, opset, nin, it, nout, out_types);
    onyx_status st = onyx_model_load_memory(h->bytes.p, h->bytes.n, NULL, NULL, &h->model, &h->err);
    if (st) {
        fprintf(stderr, "  load: %s\n", h->err.message);
        *failed = 1;
        return st;
    }
    onyx_options o;
    onyx_options_init(&o);
    o.threads = 1;
    st = onyx_session_new(h->model, &o, &h->session, &h->err);
    if (st) {
        *failed = 1;
        return st;
    }
    return onyx_session_run_tensors(h->session, nin, in_names, ins, nout, out_names, h->out, &h->err);
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

#define RUN(h, node, opset, nin, ins, nout, types) run_node(h, node, opset, nin, ins, nout, types, unit_failed_)

// ----------------------------------------------------------------------------
// Transpose: tiled and generic paths against a naive permutation

static void check_transpose(int *unit_failed_, onyx_dtype dt, int r, const int64_t *dims, const int64_t *perm) {
    size_t es = onyx_dtype_size(dt);
    int64_t n = 1;
    for (int k = 0; k < r; k++) n *= dims[k];
    uint8_t *src = malloc((size_t)n * es), *want = malloc((size_t)n * es);
    for (size_t i = 0; i < (size_t)n * es; i++) src[i] = (uint8_t)(i * 131 + 7);
    int64_t od[8], istr[8], s = 1;
    for (int k = r - 1; k >= 0; k--) istr[k] = s, s *= dims[k];
    for (int k = 0; k < r; k++) od[k] = dims[perm[k]];
    for (int64_t i = 0; i < n; i++) {
        int64_t rem = i, off = 0;
        for (int k = r - 1; k >= 0; k--) {
            off += (rem % od[k]) * istr[perm[k]];
            rem /= od[k];
        }
        memcpy(want + (size_t)i * es, src + (size_t)off * es, es);
    }
    harness h;
    wb node = op_node("Transpose");
    attr_ints(&node, "perm", r, perm);
    onyx_tensor_view in = view(dt, r, dims, src);
    onyx_status st = RUN(&h, &node, 13, 1, &in, 1, &dt);
    CHECK(st == ONYX_OK);
    if (st == ONYX_OK) {
        CHECK(h.out[0].ndim == r);
        for (int k = 0; k < r; k++) CHECK(h.out[0].dims[k] == od[k]);
        CHECK(memcmp(h.out[0].data, want, (size_t)n * es) == 0);
    }
    fini(&h);
    free(src);
    free(want);
}

UNIT_TEST(transpose_nchw_nhwc_odd_sizes) {
    static const int64_t to_nhwc[4] = {0, 2, 3, 1}, to_nchw[4] = {0, 3, 1, 2};
    static const int64_t shapes[][4] = {{1, 3, 7, 17}, {2, 5, 1, 63}, {1, 64, 33, 1}, {3, 1, 1, 1}, {2, 17, 9, 7}};
    static const onyx_dtype types[] = {ONYX_DTYPE_FLOAT, ONYX_DTYPE_UINT8, ONYX_DTYPE_FLOAT16, ONYX_DTYPE_INT64,
                                       ONYX_DTYPE_COMPLEX128};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            check_transpose(unit_failed_, types[t], 4, shapes[s], to_nhwc);
            check_transpose(unit_failed_, types[t], 4, shapes[s], to_nchw);
        }
}

UNIT_TEST(transpose_general_permutations) {
    static const int64_t d3[3] = {7, 1, 33}, p3[3] = {2, 0, 1};
    static const int64_t d5[5] = {2, 3, 4, 5, 6}, p5[5] = {4, 2, 0, 3, 1};
    static const int64_t d2[2] = {63, 65}, p2[2] = {1, 0};
    check_transpose(unit_failed_, ONYX_DTYPE_FLOAT, 3, d3, p3);
    check_transpose(unit_failed_, ONYX_DTYPE_INT16, 5, d5, p5);
    check_transpose(unit_failed_, ONYX_DTYPE_DOUBLE, 2, d2, p2);
    check_transpose(unit_failed_, ONYX_DTYPE_BOOL, 2, d2, p2);
}

// ----------------------------------------------------------------------------
// STRING tensors through the copying ops

static const char *const words[6] = {"alpha", "", "gamma", "delta", "epsilon", "zeta"};

UNIT_TEST(strings_transpose_concat_gather) {
    onyx_dtype S = ONYX_DTYPE_STRING;
    int64_t d23[2] = {2, 3};
    harness h;
    wb node = op_node("Transpose");
    onyx_tensor_view in = view(S, 2, d23, words);
    CHECK(RUN(&h, &node, 13, 1, &in, 1, &S) == ONYX_OK);
    if (h.out[0].data) {
        char **o = h.out[0].data;
        CHECK(strcmp(o[0], "alpha") == 0 && strcmp(o[1], "delta") == 0 && strcmp(o[5], "zeta") == 0);
        CHECK(o[0] != words[0]); /* owned copies, not borrowed pointers */
    }
    fini(&h);

    node = op_node("Concat");
    attr_int(&node, "axis", 0);
    onyx_tensor_view two[2] = {view(S, 2, d23, words), view(S, 2, d23, words)};
    CHECK(RUN(&h, &node, 13, 2, two, 1, &S) == ONYX_OK);
    CHECK(h.out[0].dims[0] == 4);
    if (h.out[0].data) CHECK(strcmp(((char **)h.out[0].data)[9], "delta") == 0);
    fini(&h);

    node = op_node("Gather");
    attr_int(&node, "axis", 1);
    int64_t idx[2] = {-1, 0}, d2 = 2;
    onyx_tensor_view gin[2] = {view(S, 2, d23, words), view(ONYX_DTYPE_INT64, 1, &d2, idx)};
    CHECK(RUN(&h, &node, 13, 2, gin, 1, &S) == ONYX_OK);
    if (h.out[0].data) {
        char **o = h.out[0].data;
        CHECK(strcmp(o[0], "gamma") == 0 && strcmp(o[1], "alpha") == 0 && strcmp(o[2], "zeta") == 0);
    }
    fini(&h);
}

UNIT_TEST(strings_pad_tile_expand_scatter) {
    onyx_dtype S = ONYX_DTYPE_STRING, I = ONYX_DTYPE_INT64;
    int64_t d3 = 3, d2 = 2;
    harness h;
    /* Pad with edge mode: ["a","a","alpha","","gamma","gamma","gamma"]. */
    wb node = op_node("Pad");
    attr_str(&node, "mode", "edge");
    int64_t pads[2] = {1, 2};
    onyx_tensor_view pin[2] = {view(S, 1, &d3, words), view(I, 1, &d2, pads)};
    CHECK(RUN(&h, &node, 18, 2, pin, 1, &S) == ONYX_OK);
    if (h.out[0].data) {
        char **o = h.out[0].data;
        CHECK(h.out[0].dims[0] == 6);
        CHECK(strcmp(o[0], "alpha") == 0 && strcmp(o[2], "") == 0 && strcmp(o[5], "gamma") == 0);
    }
    fini(&h);

    node = op_node("Tile");
    int64_t reps[1] = {2}, one = 1;
    onyx_tensor_view tin[2] = {view(S, 1, &d3, words), view(I, 1, &one, reps)};
    CHECK(RUN(&h, &node, 13, 2, tin, 1, &S) == ONYX_OK);
    if (h.out[0].data) CHECK(strcmp(((char **)h.out[0].data)[3], "alpha") == 0);
    fini(&h);

    node = op_node("Expand");
    int64_t shape[2] = {2, 3};
    onyx_tensor_view ein[2] = {view(S, 1, &d3, words), view(I, 1, &d2, shape)};
    CHECK(RUN(&h, &node, 13, 2, ein, 1, &S) == ONYX_OK);
    if (h.out[0].data) CHECK(strcmp(((char **)h.out[0].data)[5], "gamma") == 0);
    fini(&h);

    /* ScatterElements replaces (and frees) the strings it overwrites. */
    node = op_node("ScatterElements");
    int64_t ind[2] = {2, 0};
    const char *upd[2] = {"new2", "new0"};
    onyx_tensor_view sin[3] = {view(S, 1, &d3, words), view(I, 1, &d2, ind), view(S, 1, &d2, upd)};
    CHECK(RUN(&h, &node, 18, 3, sin, 1, &S) == ONYX_OK);
    if (h.out[0].data) {
        char **o = h.out[0].data;
        CHECK(strcmp(o[0], "new0") == 0 && strcmp(o[1], "") == 0 && strcmp(o[2], "new2") == 0);
    }
    fini(&h);
}

UNIT_TEST(strings_unique_sorted_and_first_seen) {
    onyx_dtype S = ONYX_DTYPE_STRING, I = ONYX_DTYPE_INT64;
    const char *v[6] = {"b", "a", "b", "c", "a", "b"};
    int64_t d6 = 6;
    onyx_dtype outs[4] = {S, I, I, I};
    harness h;
    wb node = op_node("Unique");
    attr_int(&node, "sorted", 0);
    onyx_tensor_view in = view(S, 1, &d6, v);
    CHECK(RUN(&h, &node, 11, 1, &in, 4, outs) == ONYX_OK);
    if (h.out[0].data) {
        char **y = h.out[0].data;
        const int64_t *first = h.out[1].data, *inv = h.out[2].data, *cnt = h.out[3].data;
        CHECK(h.out[0].dims[0] == 3);
        CHECK(strcmp(y[0], "b") == 0 && strcmp(y[1], "a") == 0 && strcmp(y[2], "c") == 0);
        CHECK(first[0] == 0 && first[1] == 1 && first[2] == 3);
        CHECK(inv[0] == 0 && inv[1] == 1 && inv[3] == 2 && inv[5] == 0);
        CHECK(cnt[0] == 3 && cnt[1] == 2 && cnt[2] == 1);
    }
    fini(&h);
}

// ----------------------------------------------------------------------------
// Hostile inputs fail with a status, never touch memory out of bounds

UNIT_TEST(bad_indices_and_shapes_fail_cleanly) {
    onyx_dtype F = ONYX_DTYPE_FLOAT, I = ONYX_DTYPE_INT64;
    float data[6] = {1, 2, 3, 4, 5, 6};
    int64_t d23[2] = {2, 3}, d1 = 1, d2 = 2;
    harness h;

    int64_t bad[1] = {3};
    wb node = op_node("Gather");
    attr_int(&node, "axis", 1);
    onyx_tensor_view gin[2] = {view(F, 2, d23, data), view(I, 1, &d1, bad)};
    CHECK(RUN(&h, &node, 13, 2, gin, 1, &F) != ONYX_OK);
    CHECK(strstr(h.err.message, "out of range") != NULL);
    fini(&h);

    int64_t neg[1] = {-4};
    node = op_node("GatherElements");
    attr_int(&node, "axis", 1);
    int64_t d21[2] = {2, 1};
    int64_t ind2[2] = {0, -4};
    onyx_tensor_view ein[2] = {view(F, 2, d23, data), view(I, 2, d21, ind2)};
    CHECK(RUN(&h, &node, 13, 2, ein, 1, &F) != ONYX_OK);
    fini(&h);
    (void)neg;

    node = op_node("ScatterND");
    int64_t tup[2] = {1, 3}, d12[2] = {1, 2};
    float upd[1] = {9};
    onyx_tensor_view sin[3] = {view(F, 2, d23, data), view(I, 2, d12, tup), view(F, 1, &d1, upd)};
    CHECK(RUN(&h, &node, 18, 3, sin, 1, &F) != ONYX_OK);
    fini(&h);

    int64_t two_infer[2] = {-1, -1};
    node = op_node("Reshape");
    onyx_tensor_view rin[2] = {view(F, 2, d23, data), view(I, 1, &d2, two_infer)};
    CHECK(RUN(&h, &node, 14, 2, rin, 1, &F) != ONYX_OK);
    fini(&h);

    int64_t wrong[2] = {4, 2};
    node = op_node("Reshape");
    onyx_tensor_view rin2[2] = {view(F, 2, d23, data), view(I, 1, &d2, wrong)};
    CHECK(RUN(&h, &node, 14, 2, rin2, 1, &F) != ONYX_OK);
    fini(&h);

    int64_t axes[1] = {5};
    node = op_node("Unsqueeze");
    onyx_tensor_view uin[2] = {view(F, 2, d23, data), view(I, 1, &d1, axes)};
    CHECK(RUN(&h, &node, 13, 2, uin, 1, &F) != ONYX_OK);
    fini(&h);

    node = op_node("Split");
    attr_int(&node, "axis", 1);
    onyx_dtype two_f[2] = {F, F};
    onyx_tensor_view spin = view(F, 2, d23, data);
    CHECK(RUN(&h, &node, 13, 1, &spin, 2, two_f) != ONYX_OK); /* 3 does not split in 2 */
    fini(&h);
}

// ----------------------------------------------------------------------------
// Slice with extreme bounds and negative steps

UNIT_TEST(slice_extreme_bounds) {
    onyx_dtype F = ONYX_DTYPE_FLOAT, I = ONYX_DTYPE_INT64;
    float data[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    int64_t d10 = 10, d1 = 1;
    int64_t starts[1] = {INT64_MAX}, ends[1] = {INT64_MIN}, axes[1] = {0}, steps[1] = {-3};
    harness h;
    wb node = op_node("Slice");
    onyx_tensor_view in[5] = {view(F, 1, &d10, data), view(I, 1, &d1, starts), view(I, 1, &d1, ends),
                              view(I, 1, &d1, axes), view(I, 1, &d1, steps)};
    CHECK(RUN(&h, &node, 13, 5, in, 1, &F) == ONYX_OK);
    CHECK(h.out[0].dims[0] == 4);
    if (h.out[0].data) {
        const float *o = h.out[0].data;
        CHECK(o[0] == 9 && o[1] == 6 && o[2] == 3 && o[3] == 0);
    }
    fini(&h);
}

/* A negative-step start before the axis clamps to 0 (the spec, onnxruntime),
 * where numpy slicing would give nothing. */
UNIT_TEST(slice_negative_step_start_clamps_to_zero) {
    onyx_dtype F = ONYX_DTYPE_FLOAT, I = ONYX_DTYPE_INT64;
    float data[1] = {5};
    int64_t d1 = 1, starts[1] = {-7}, ends[1] = {INT64_MIN}, axes[1] = {0}, steps[1] = {-1};
    harness h;
    wb node = op_node("Slice");
    onyx_tensor_view in[5] = {view(F, 1, &d1, data), view(I, 1, &d1, starts), view(I, 1, &d1, ends),
                              view(I, 1, &d1, axes), view(I, 1, &d1, steps)};
    CHECK(RUN(&h, &node, 13, 5, in, 1, &F) == ONYX_OK);
    CHECK(h.out[0].ndim == 1 && h.out[0].dims[0] == 1);
    if (h.out[0].data && h.out[0].dims[0] == 1) CHECK(((const float *)h.out[0].data)[0] == 5);
    fini(&h);
}

// ----------------------------------------------------------------------------
// Integer reductions stay exact in 64 bits

UNIT_TEST(reduce_int64_exact) {
    onyx_dtype I = ONYX_DTYPE_INT64, U = ONYX_DTYPE_UINT64;
    int64_t big[3] = {(int64_t)1 << 60, 1, 3}, d3 = 3;
    harness h;
    wb node = op_node("ReduceSum");
    attr_int(&node, "keepdims", 0);
    onyx_tensor_view in = view(I, 1, &d3, big);
    CHECK(RUN(&h, &node, 13, 1, &in, 1, &I) == ONYX_OK);
    if (h.out[0].data) CHECK(*(const int64_t *)h.out[0].data == ((int64_t)1 << 60) + 4);
    fini(&h);

    uint64_t ub[3] = {UINT64_MAX - 1, UINT64_MAX, 5};
    node = op_node("ReduceMax");
    attr_int(&node, "keepdims", 0);
    in = view(U, 1, &d3, ub);
    CHECK(RUN(&h, &node, 18, 1, &in, 1, &U) == ONYX_OK);
    if (h.out[0].data) CHECK(*(const uint64_t *)h.out[0].data == UINT64_MAX);
    fini(&h);

    node = op_node("ReduceMin");
    attr_int(&node, "keepdims", 0);
    CHECK(RUN(&h, &node, 18, 1, &in, 1, &U) == ONYX_OK);
    if (h.out[0].data) CHECK(*(const uint64_t *)h.out[0].data == 5);
    fini(&h);
}

// ----------------------------------------------------------------------------
// Resize of uint8 rounds half to even and saturates, like the reference

UNIT_TEST(resize_uint8_linear_rounding) {
    onyx_dtype B = ONYX_DTYPE_UINT8, F = ONYX_DTYPE_FLOAT;
    uint8_t data[2] = {0, 255};
    int64_t d114[4] = {1, 1, 1, 2}, d4 = 4;
    float scales[4] = {1, 1, 1, 2};
    harness h;
    wb node = op_node("Resize");
    attr_str(&node, "mode", "linear");
    attr_str(&node, "coordinate_transformation_mode", "align_corners");
    onyx_tensor_view in[3] = {view(B, 4, d114, data), view(F, 1, &d4, scales), view(F, 1, &d4, scales)};
    in[1].ndim = 1;
    in[1].dims[0] = 0; /* empty roi */
    CHECK(RUN(&h, &node, 13, 3, in, 1, &B) == ONYX_OK);
    CHECK(h.out[0].dims[3] == 4);
    if (h.out[0].data) {
        const uint8_t *o = h.out[0].data;
        /* align_corners over 4 outputs: 0, 85, 170, 255 exactly. */
        CHECK(o[0] == 0 && o[1] == 85 && o[2] == 170 && o[3] == 255);
    }
    fini(&h);
}

// ----------------------------------------------------------------------------
// TopK: k = 0 and ties broken by the lower index

UNIT_TEST(topk_ties_and_empty) {
    onyx_dtype F = ONYX_DTYPE_FLOAT, I = ONYX_DTYPE_INT64;
    float data[5] = {1, 3, 3, 2, 3};
    int64_t d5 = 5, d1 = 1, k3[1] = {3}, k0[1] = {0};
    onyx_dtype outs[2] = {F, I};
    harness h;
    wb node = op_node("TopK");
    onyx_tensor_view in[2] = {view(F, 1, &d5, data), view(I, 1, &d1, k3)};
    CHECK(RUN(&h, &node, 11, 2, in, 2, outs) == ONYX_OK);
    if (h.out[1].data) {
        const int64_t *ix = h.out[1].data;
        CHECK(ix[0] == 1 && ix[1] == 2 && ix[2] == 4);
    }
    fini(&h);

    node = op_node("TopK");
    in[1] = view(I, 1, &d1, k0);
    CHECK(RUN(&h, &node, 11, 2, in, 2, outs) == ONYX_OK);
    CHECK(h.out[0].ndim == 1 && h.out[0].dims[0] == 0);
    fini(&h);
}

// ----------------------------------------------------------------------------
// Constant in all its attribute forms, ConstantOfShape's default

UNIT_TEST(constant_attribute_forms) {
    onyx_dtype F = ONYX_DTYPE_FLOAT, I = ONYX_DTYPE_INT64, S = ONYX_DTYPE_STRING;
    harness h;
    static const float fv[3] = {1.5f, -2, 0.25f};
    wb node = op_node("Constant");
    attr_floats(&node, "value_floats", 3, fv);
    CHECK(RUN(&h, &node, 13, 0, NULL, 1, &F) == ONYX_OK);
    CHECK(h.out[0].ndim == 1 && h.out[0].dims[0] == 3);
    if (h.out[0].data) CHECK(((const float *)h.out[0].data)[1] == -2);
    fini(&h);

    static const int64_t iv[2] = {7, -9};
    node = op_node("Constant");
    attr_ints(&node, "value_ints", 2, iv);
    CHECK(RUN(&h, &node, 13, 0, NULL, 1, &I) == ONYX_OK);
    if (h.out[0].data) CHECK(((const int64_t *)h.out[0].data)[1] == -9);
    fini(&h);

    node = op_node("Constant");
    attr_int(&node, "value_int", 42);
    CHECK(RUN(&h, &node, 13, 0, NULL, 1, &I) == ONYX_OK);
    CHECK(h.out[0].ndim == 0);
    if (h.out[0].data) CHECK(*(const int64_t *)h.out[0].data == 42);
    fini(&h);

    static const char *const sv[2] = {"cat", "dog"};
    node = op_node("Constant");
    attr_strs(&node, "value_strings", 2, sv);
    CHECK(RUN(&h, &node, 13, 0, NULL, 1, &S) == ONYX_OK);
    if (h.out[0].data) CHECK(strcmp(((char **)h.out[0].data)[1], "dog") == 0);
    fini(&h);

    /* sparse_value: values [2.5, -1] at linear indices [1, 4] of a 2x3. */
    node = op_node("Constant");
    {
        wb a = {0}, sp = {0}, vals = {0}, idx = {0};
        wb_int(&vals, 1, 2);
        wb_int(&vals, 2, ONYX_DTYPE_FLOAT);
        float v2[2] = {2.5f, -1};
        wb_bytes(&vals, 9, v2, sizeof v2);
        wb_int(&idx, 1, 2);
        wb_int(&idx, 2, ONYX_DTYPE_INT64);
        wb_int(&idx, 7, 1);
        wb_int(&idx, 7, 4);
        wb_msg(&sp, 1, &vals);
        wb_msg(&sp, 2, &idx);
        wb_int(&sp, 3, 2);
        wb_int(&sp, 3, 3);
        wb_str(&a, 1, "sparse_value");
        wb_msg(&a, 22, &sp);
        wb_int(&a, 20, 11);
        wb_msg(&node, 5, &a);
    }
    CHECK(RUN(&h, &node, 13, 0, NULL, 1, &F) == ONYX_OK);
    CHECK(h.out[0].ndim == 2 && h.out[0].dims[1] == 3);
    if (h.out[0].data) {
        const float *o = h.out[0].data;
        CHECK(o[0] == 0 && o[1] == 2.5f && o[4] == -1 && o[5] == 0);
    }
    fini(&h);

    int64_t shape[2] = {2, 2}, d2 = 2;
    node = op_node("ConstantOfShape");
    onyx_tensor_view in = view(I, 1, &d2, shape);
    CHECK(RUN(&h, &node, 20, 1, &in, 1, &F) == ONYX_OK);
    CHECK(h.out[0].dtype == F && h.out[0].dims[0] == 2 && h.out[0].dims[1] == 2);
    if (h.out[0].data) CHECK(((const float *)h.out[0].data)[3] == 0);
    fini(&h);
}

// ----------------------------------------------------------------------------
// Upsample-7 and Resize-10 keep the original (asymmetric) semantics;
// expected values from onnxruntime

UNIT_TEST(upsample7_and_resize10_asymmetric) {
    onyx_dtype F = ONYX_DTYPE_FLOAT;
    float data[4] = {0, 10, 20, 40};
    int64_t d1122[4] = {1, 1, 2, 2}, d4 = 4;
    harness h;
    static const float sc7[4] = {1, 1, 2, 1.5f};
    wb node = op_node("Upsample");
    attr_str(&node, "mode", "nearest");
    attr_floats(&node, "scales", 4, sc7);
    onyx_tensor_view in = view(F, 4, d1122, data);
    CHECK(RUN(&h, &node, 7, 1, &in, 1, &F) == ONYX_OK);
    CHECK(h.out[0].dims[2] == 4 && h.out[0].dims[3] == 3);
    if (h.out[0].data) {
        static const float want[12] = {0, 0, 10, 0, 0, 10, 20, 20, 40, 20, 20, 40};
        CHECK(memcmp(h.out[0].data, want, sizeof want) == 0);
    }
    fini(&h);

    float sc10[4] = {1, 1, 2, 2};
    node = op_node("Resize");
    attr_str(&node, "mode", "linear");
    onyx_tensor_view rin[2] = {view(F, 4, d1122, data), view(F, 1, &d4, sc10)};
    CHECK(RUN(&h, &node, 10, 2, rin, 1, &F) == ONYX_OK);
    if (h.out[0].data) {
        static const float want[16] = {0, 5, 10, 10, 10, 17.5f, 25, 25, 20, 30, 40, 40, 20, 30, 40, 40};
        const float *o = h.out[0].data;
        for (int i = 0; i < 16; i++) CHECK_NEAR(o[i], want[i], 1e-5);
    }
    fini(&h);

    float scd[4] = {1, 1, 0.6f, 3};
    node = op_node("Resize");
    onyx_tensor_view din[2] = {view(F, 4, d1122, data), view(F, 1, &d4, scd)};
    CHECK(RUN(&h, &node, 10, 2, din, 1, &F) == ONYX_OK);
    CHECK(h.out[0].dims[2] == 1 && h.out[0].dims[3] == 6);
    if (h.out[0].data) {
        static const float want[6] = {0, 0, 0, 10, 10, 10};
        CHECK(memcmp(h.out[0].data, want, sizeof want) == 0);
    }
    fini(&h);
}
