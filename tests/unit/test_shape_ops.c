/* test_shape_ops.c - the data-movement and reduction ops (src/ops/shape.c,
 * tensor.c, gather.c, reduce.c, resize.c) on what the ONNX backend node tests
 * do not reach: the tiled transpose paths on odd sizes against a naive
 * permutation, STRING tensors through every copying op (ownership is
 * checked by the ASan build), hostile indices and shapes that must fail
 * cleanly, exact 64-bit integer reductions and saturating integer Resize.
 * Each case builds a one-node model in memory and runs it. */
#include "core/tensor.h"
#include "onyx.h"
#include "testmodel.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// Running one node (testmodel.h); a load failure fails the test

static onyx_status run_node(tm_run *h, tm_buf *node, int opset, int nin, const onyx_tensor_view *ins, int nout,
                            const onyx_dtype *out_types, int *failed) {
    onyx_status st = tm_run_node(h, node, opset, nin, ins, nout, out_types);
    if (!h->session) {
        fprintf(stderr, "  load: %s\n", h->err.message);
        *failed = 1;
    }
    return st;
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
    tm_run h;
    tm_buf node = tm_op("Transpose");
    tm_attr_ints(&node, "perm", r, perm);
    onyx_tensor_view in = tm_view(dt, r, dims, src);
    onyx_status st = RUN(&h, &node, 13, 1, &in, 1, &dt);
    CHECK(st == ONYX_OK);
    if (st == ONYX_OK) {
        CHECK(h.out[0].ndim == r);
        for (int k = 0; k < r; k++) CHECK(h.out[0].dims[k] == od[k]);
        CHECK(memcmp(h.out[0].data, want, (size_t)n * es) == 0);
    }
    tm_run_fini(&h);
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
    /* Attention's keys, (batch, tokens, heads, dim) -> (batch, heads, dim,
     * tokens): heads and dim merge into one axis, and the tiled transpose
     * runs per batch. */
    static const int64_t dk[4] = {2, 37, 3, 20}, pk[4] = {0, 2, 3, 1};
    static const int64_t dk1[4] = {1, 130, 12, 9};
    check_transpose(unit_failed_, ONYX_DTYPE_FLOAT, 4, dk, pk);
    check_transpose(unit_failed_, ONYX_DTYPE_FLOAT, 4, dk1, pk);
    check_transpose(unit_failed_, ONYX_DTYPE_UINT8, 4, dk1, pk);
}

// ----------------------------------------------------------------------------
// STRING tensors through the copying ops

static const char *const words[6] = {"alpha", "", "gamma", "delta", "epsilon", "zeta"};

UNIT_TEST(strings_transpose_concat_gather) {
    onyx_dtype S = ONYX_DTYPE_STRING;
    int64_t d23[2] = {2, 3};
    tm_run h;
    tm_buf node = tm_op("Transpose");
    onyx_tensor_view in = tm_view(S, 2, d23, words);
    CHECK(RUN(&h, &node, 13, 1, &in, 1, &S) == ONYX_OK);
    if (h.out[0].data) {
        char **o = h.out[0].data;
        CHECK(strcmp(o[0], "alpha") == 0 && strcmp(o[1], "delta") == 0 && strcmp(o[5], "zeta") == 0);
        CHECK(o[0] != words[0]); /* owned copies, not borrowed pointers */
    }
    tm_run_fini(&h);

    node = tm_op("Concat");
    tm_attr_int(&node, "axis", 0);
    onyx_tensor_view two[2] = {tm_view(S, 2, d23, words), tm_view(S, 2, d23, words)};
    CHECK(RUN(&h, &node, 13, 2, two, 1, &S) == ONYX_OK);
    CHECK(h.out[0].dims[0] == 4);
    if (h.out[0].data) CHECK(strcmp(((char **)h.out[0].data)[9], "delta") == 0);
    tm_run_fini(&h);

    node = tm_op("Gather");
    tm_attr_int(&node, "axis", 1);
    int64_t idx[2] = {-1, 0}, d2 = 2;
    onyx_tensor_view gin[2] = {tm_view(S, 2, d23, words), tm_view(ONYX_DTYPE_INT64, 1, &d2, idx)};
    CHECK(RUN(&h, &node, 13, 2, gin, 1, &S) == ONYX_OK);
    if (h.out[0].data) {
        char **o = h.out[0].data;
        CHECK(strcmp(o[0], "gamma") == 0 && strcmp(o[1], "alpha") == 0 && strcmp(o[2], "zeta") == 0);
    }
    tm_run_fini(&h);
}

/* Concat splits its output over threads in pieces that start and end
 * inside input rows (64K-element tasks over 3 rows of 3 inputs): the same
 * bytes on 1 and 3 threads as a plain row-by-row copy. */
UNIT_TEST(concat_parallel_pieces) {
    enum { OUTER = 3, INNER = 1000 };
    const int64_t widths[3] = {5, 7, 11}, total = OUTER * (5 + 7 + 11) * INNER;
    float *in[3], *want = malloc(sizeof(float) * (size_t)total);
    onyx_tensor_view views[3];
    int64_t dims[3][3];
    for (int i = 0; i < 3; i++) {
        int64_t n = OUTER * widths[i] * INNER;
        in[i] = malloc(sizeof(float) * (size_t)n);
        for (int64_t e = 0; e < n; e++) in[i][e] = (float)(i * 1000000 + e);
        dims[i][0] = OUTER, dims[i][1] = widths[i], dims[i][2] = INNER;
        views[i] = tm_view(ONYX_DTYPE_FLOAT, 3, dims[i], in[i]);
    }
    float *w = want;
    for (int o = 0; o < OUTER; o++)
        for (int i = 0; i < 3; i++, w += widths[i - 1] * INNER)
            memcpy(w, in[i] + o * widths[i] * INNER, sizeof(float) * (size_t)(widths[i] * INNER));
    onyx_dtype f = ONYX_DTYPE_FLOAT;
    for (int threads = 1; threads <= 3; threads += 2) {
        tm_run h;
        tm_buf node = tm_op("Concat");
        tm_attr_int(&node, "axis", 1);
        CHECK(tm_run_node_on(&h, threads, &node, 13, 3, views, 1, &f) == ONYX_OK);
        CHECK(h.out[0].dims[1] == 23);
        if (h.out[0].data) CHECK(memcmp(h.out[0].data, want, sizeof(float) * (size_t)total) == 0);
        tm_run_fini(&h);
    }
    for (int i = 0; i < 3; i++) free(in[i]);
    free(want);
}

UNIT_TEST(strings_pad_tile_expand_scatter) {
    onyx_dtype S = ONYX_DTYPE_STRING, I = ONYX_DTYPE_INT64;
    int64_t d3 = 3, d2 = 2;
    tm_run h;
    /* Pad with edge mode: ["a","a","alpha","","gamma","gamma","gamma"]. */
    tm_buf node = tm_op("Pad");
    tm_attr_str(&node, "mode", "edge");
    int64_t pads[2] = {1, 2};
    onyx_tensor_view pin[2] = {tm_view(S, 1, &d3, words), tm_view(I, 1, &d2, pads)};
    CHECK(RUN(&h, &node, 18, 2, pin, 1, &S) == ONYX_OK);
    if (h.out[0].data) {
        char **o = h.out[0].data;
        CHECK(h.out[0].dims[0] == 6);
        CHECK(strcmp(o[0], "alpha") == 0 && strcmp(o[2], "") == 0 && strcmp(o[5], "gamma") == 0);
    }
    tm_run_fini(&h);

    node = tm_op("Tile");
    int64_t reps[1] = {2}, one = 1;
    onyx_tensor_view tin[2] = {tm_view(S, 1, &d3, words), tm_view(I, 1, &one, reps)};
    CHECK(RUN(&h, &node, 13, 2, tin, 1, &S) == ONYX_OK);
    if (h.out[0].data) CHECK(strcmp(((char **)h.out[0].data)[3], "alpha") == 0);
    tm_run_fini(&h);

    node = tm_op("Expand");
    int64_t shape[2] = {2, 3};
    onyx_tensor_view ein[2] = {tm_view(S, 1, &d3, words), tm_view(I, 1, &d2, shape)};
    CHECK(RUN(&h, &node, 13, 2, ein, 1, &S) == ONYX_OK);
    if (h.out[0].data) CHECK(strcmp(((char **)h.out[0].data)[5], "gamma") == 0);
    tm_run_fini(&h);

    /* ScatterElements replaces (and frees) the strings it overwrites. */
    node = tm_op("ScatterElements");
    int64_t ind[2] = {2, 0};
    const char *upd[2] = {"new2", "new0"};
    onyx_tensor_view sin[3] = {tm_view(S, 1, &d3, words), tm_view(I, 1, &d2, ind), tm_view(S, 1, &d2, upd)};
    CHECK(RUN(&h, &node, 18, 3, sin, 1, &S) == ONYX_OK);
    if (h.out[0].data) {
        char **o = h.out[0].data;
        CHECK(strcmp(o[0], "new0") == 0 && strcmp(o[1], "") == 0 && strcmp(o[2], "new2") == 0);
    }
    tm_run_fini(&h);
}

UNIT_TEST(strings_unique_sorted_and_first_seen) {
    onyx_dtype S = ONYX_DTYPE_STRING, I = ONYX_DTYPE_INT64;
    const char *v[6] = {"b", "a", "b", "c", "a", "b"};
    int64_t d6 = 6;
    onyx_dtype outs[4] = {S, I, I, I};
    tm_run h;
    tm_buf node = tm_op("Unique");
    tm_attr_int(&node, "sorted", 0);
    onyx_tensor_view in = tm_view(S, 1, &d6, v);
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
    tm_run_fini(&h);
}

// ----------------------------------------------------------------------------
// Hostile inputs fail with a status, never touch memory out of bounds

UNIT_TEST(bad_indices_and_shapes_fail_cleanly) {
    onyx_dtype F = ONYX_DTYPE_FLOAT, I = ONYX_DTYPE_INT64;
    float data[6] = {1, 2, 3, 4, 5, 6};
    int64_t d23[2] = {2, 3}, d1 = 1, d2 = 2;
    tm_run h;

    int64_t bad[1] = {3};
    tm_buf node = tm_op("Gather");
    tm_attr_int(&node, "axis", 1);
    onyx_tensor_view gin[2] = {tm_view(F, 2, d23, data), tm_view(I, 1, &d1, bad)};
    CHECK(RUN(&h, &node, 13, 2, gin, 1, &F) != ONYX_OK);
    CHECK(strstr(h.err.message, "out of range") != NULL);
    tm_run_fini(&h);

    int64_t neg[1] = {-4};
    node = tm_op("GatherElements");
    tm_attr_int(&node, "axis", 1);
    int64_t d21[2] = {2, 1};
    int64_t ind2[2] = {0, -4};
    onyx_tensor_view ein[2] = {tm_view(F, 2, d23, data), tm_view(I, 2, d21, ind2)};
    CHECK(RUN(&h, &node, 13, 2, ein, 1, &F) != ONYX_OK);
    tm_run_fini(&h);
    (void)neg;

    node = tm_op("ScatterND");
    int64_t tup[2] = {1, 3}, d12[2] = {1, 2};
    float upd[1] = {9};
    onyx_tensor_view sin[3] = {tm_view(F, 2, d23, data), tm_view(I, 2, d12, tup), tm_view(F, 1, &d1, upd)};
    CHECK(RUN(&h, &node, 18, 3, sin, 1, &F) != ONYX_OK);
    tm_run_fini(&h);

    int64_t two_infer[2] = {-1, -1};
    node = tm_op("Reshape");
    onyx_tensor_view rin[2] = {tm_view(F, 2, d23, data), tm_view(I, 1, &d2, two_infer)};
    CHECK(RUN(&h, &node, 14, 2, rin, 1, &F) != ONYX_OK);
    tm_run_fini(&h);

    int64_t wrong[2] = {4, 2};
    node = tm_op("Reshape");
    onyx_tensor_view rin2[2] = {tm_view(F, 2, d23, data), tm_view(I, 1, &d2, wrong)};
    CHECK(RUN(&h, &node, 14, 2, rin2, 1, &F) != ONYX_OK);
    tm_run_fini(&h);

    int64_t axes[1] = {5};
    node = tm_op("Unsqueeze");
    onyx_tensor_view uin[2] = {tm_view(F, 2, d23, data), tm_view(I, 1, &d1, axes)};
    CHECK(RUN(&h, &node, 13, 2, uin, 1, &F) != ONYX_OK);
    tm_run_fini(&h);

    node = tm_op("Split");
    tm_attr_int(&node, "axis", 1);
    onyx_dtype two_f[2] = {F, F};
    onyx_tensor_view spin = tm_view(F, 2, d23, data);
    CHECK(RUN(&h, &node, 13, 1, &spin, 2, two_f) != ONYX_OK); /* 3 does not split in 2 */
    tm_run_fini(&h);
}

// ----------------------------------------------------------------------------
// Slice with extreme bounds and negative steps

UNIT_TEST(slice_extreme_bounds) {
    onyx_dtype F = ONYX_DTYPE_FLOAT, I = ONYX_DTYPE_INT64;
    float data[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    int64_t d10 = 10, d1 = 1;
    int64_t starts[1] = {INT64_MAX}, ends[1] = {INT64_MIN}, axes[1] = {0}, steps[1] = {-3};
    tm_run h;
    tm_buf node = tm_op("Slice");
    onyx_tensor_view in[5] = {tm_view(F, 1, &d10, data), tm_view(I, 1, &d1, starts), tm_view(I, 1, &d1, ends),
                              tm_view(I, 1, &d1, axes), tm_view(I, 1, &d1, steps)};
    CHECK(RUN(&h, &node, 13, 5, in, 1, &F) == ONYX_OK);
    CHECK(h.out[0].dims[0] == 4);
    if (h.out[0].data) {
        const float *o = h.out[0].data;
        CHECK(o[0] == 9 && o[1] == 6 && o[2] == 3 && o[3] == 0);
    }
    tm_run_fini(&h);
}

/* A negative-step start before the axis clamps to 0 (the spec, onnxruntime),
 * where numpy slicing would give nothing. */
UNIT_TEST(slice_negative_step_start_clamps_to_zero) {
    onyx_dtype F = ONYX_DTYPE_FLOAT, I = ONYX_DTYPE_INT64;
    float data[1] = {5};
    int64_t d1 = 1, starts[1] = {-7}, ends[1] = {INT64_MIN}, axes[1] = {0}, steps[1] = {-1};
    tm_run h;
    tm_buf node = tm_op("Slice");
    onyx_tensor_view in[5] = {tm_view(F, 1, &d1, data), tm_view(I, 1, &d1, starts), tm_view(I, 1, &d1, ends),
                              tm_view(I, 1, &d1, axes), tm_view(I, 1, &d1, steps)};
    CHECK(RUN(&h, &node, 13, 5, in, 1, &F) == ONYX_OK);
    CHECK(h.out[0].ndim == 1 && h.out[0].dims[0] == 1);
    if (h.out[0].data && h.out[0].dims[0] == 1) CHECK(((const float *)h.out[0].data)[0] == 5);
    tm_run_fini(&h);
}

// ----------------------------------------------------------------------------
// Integer reductions stay exact in 64 bits

UNIT_TEST(reduce_int64_exact) {
    onyx_dtype I = ONYX_DTYPE_INT64, U = ONYX_DTYPE_UINT64;
    int64_t big[3] = {(int64_t)1 << 60, 1, 3}, d3 = 3;
    tm_run h;
    tm_buf node = tm_op("ReduceSum");
    tm_attr_int(&node, "keepdims", 0);
    onyx_tensor_view in = tm_view(I, 1, &d3, big);
    CHECK(RUN(&h, &node, 13, 1, &in, 1, &I) == ONYX_OK);
    if (h.out[0].data) CHECK(*(const int64_t *)h.out[0].data == ((int64_t)1 << 60) + 4);
    tm_run_fini(&h);

    uint64_t ub[3] = {UINT64_MAX - 1, UINT64_MAX, 5};
    node = tm_op("ReduceMax");
    tm_attr_int(&node, "keepdims", 0);
    in = tm_view(U, 1, &d3, ub);
    CHECK(RUN(&h, &node, 18, 1, &in, 1, &U) == ONYX_OK);
    if (h.out[0].data) CHECK(*(const uint64_t *)h.out[0].data == UINT64_MAX);
    tm_run_fini(&h);

    node = tm_op("ReduceMin");
    tm_attr_int(&node, "keepdims", 0);
    CHECK(RUN(&h, &node, 18, 1, &in, 1, &U) == ONYX_OK);
    if (h.out[0].data) CHECK(*(const uint64_t *)h.out[0].data == 5);
    tm_run_fini(&h);
}

// ----------------------------------------------------------------------------
// Resize of uint8 rounds half to even and saturates, like the reference

UNIT_TEST(resize_uint8_linear_rounding) {
    onyx_dtype B = ONYX_DTYPE_UINT8, F = ONYX_DTYPE_FLOAT;
    uint8_t data[2] = {0, 255};
    int64_t d114[4] = {1, 1, 1, 2}, d4 = 4;
    float scales[4] = {1, 1, 1, 2};
    tm_run h;
    tm_buf node = tm_op("Resize");
    tm_attr_str(&node, "mode", "linear");
    tm_attr_str(&node, "coordinate_transformation_mode", "align_corners");
    onyx_tensor_view in[3] = {tm_view(B, 4, d114, data), tm_view(F, 1, &d4, scales), tm_view(F, 1, &d4, scales)};
    in[1].ndim = 1;
    in[1].dims[0] = 0; /* empty roi */
    CHECK(RUN(&h, &node, 13, 3, in, 1, &B) == ONYX_OK);
    CHECK(h.out[0].dims[3] == 4);
    if (h.out[0].data) {
        const uint8_t *o = h.out[0].data;
        /* align_corners over 4 outputs: 0, 85, 170, 255 exactly. */
        CHECK(o[0] == 0 && o[1] == 85 && o[2] == 170 && o[3] == 255);
    }
    tm_run_fini(&h);
}

// ----------------------------------------------------------------------------
// TopK: k = 0 and ties broken by the lower index

UNIT_TEST(topk_ties_and_empty) {
    onyx_dtype F = ONYX_DTYPE_FLOAT, I = ONYX_DTYPE_INT64;
    float data[5] = {1, 3, 3, 2, 3};
    int64_t d5 = 5, d1 = 1, k3[1] = {3}, k0[1] = {0};
    onyx_dtype outs[2] = {F, I};
    tm_run h;
    tm_buf node = tm_op("TopK");
    onyx_tensor_view in[2] = {tm_view(F, 1, &d5, data), tm_view(I, 1, &d1, k3)};
    CHECK(RUN(&h, &node, 11, 2, in, 2, outs) == ONYX_OK);
    if (h.out[1].data) {
        const int64_t *ix = h.out[1].data;
        CHECK(ix[0] == 1 && ix[1] == 2 && ix[2] == 4);
    }
    tm_run_fini(&h);

    node = tm_op("TopK");
    in[1] = tm_view(I, 1, &d1, k0);
    CHECK(RUN(&h, &node, 11, 2, in, 2, outs) == ONYX_OK);
    CHECK(h.out[0].ndim == 1 && h.out[0].dims[0] == 0);
    tm_run_fini(&h);
}

// ----------------------------------------------------------------------------
// Constant in all its attribute forms, ConstantOfShape's default

UNIT_TEST(constant_attribute_forms) {
    onyx_dtype F = ONYX_DTYPE_FLOAT, I = ONYX_DTYPE_INT64, S = ONYX_DTYPE_STRING;
    tm_run h;
    static const float fv[3] = {1.5f, -2, 0.25f};
    tm_buf node = tm_op("Constant");
    tm_attr_floats(&node, "value_floats", 3, fv);
    CHECK(RUN(&h, &node, 13, 0, NULL, 1, &F) == ONYX_OK);
    CHECK(h.out[0].ndim == 1 && h.out[0].dims[0] == 3);
    if (h.out[0].data) CHECK(((const float *)h.out[0].data)[1] == -2);
    tm_run_fini(&h);

    static const int64_t iv[2] = {7, -9};
    node = tm_op("Constant");
    tm_attr_ints(&node, "value_ints", 2, iv);
    CHECK(RUN(&h, &node, 13, 0, NULL, 1, &I) == ONYX_OK);
    if (h.out[0].data) CHECK(((const int64_t *)h.out[0].data)[1] == -9);
    tm_run_fini(&h);

    node = tm_op("Constant");
    tm_attr_int(&node, "value_int", 42);
    CHECK(RUN(&h, &node, 13, 0, NULL, 1, &I) == ONYX_OK);
    CHECK(h.out[0].ndim == 0);
    if (h.out[0].data) CHECK(*(const int64_t *)h.out[0].data == 42);
    tm_run_fini(&h);

    static const char *const sv[2] = {"cat", "dog"};
    node = tm_op("Constant");
    tm_attr_strs(&node, "value_strings", 2, sv);
    CHECK(RUN(&h, &node, 13, 0, NULL, 1, &S) == ONYX_OK);
    if (h.out[0].data) CHECK(strcmp(((char **)h.out[0].data)[1], "dog") == 0);
    tm_run_fini(&h);

    /* sparse_value: values [2.5, -1] at linear indices [1, 4] of a 2x3. */
    node = tm_op("Constant");
    {
        tm_buf a = {0}, sp = {0}, vals = {0}, idx = {0};
        tm_int(&vals, 1, 2);
        tm_int(&vals, 2, ONYX_DTYPE_FLOAT);
        float v2[2] = {2.5f, -1};
        tm_bytes(&vals, 9, v2, sizeof v2);
        tm_int(&idx, 1, 2);
        tm_int(&idx, 2, ONYX_DTYPE_INT64);
        tm_int(&idx, 7, 1);
        tm_int(&idx, 7, 4);
        tm_msg(&sp, 1, &vals);
        tm_msg(&sp, 2, &idx);
        tm_int(&sp, 3, 2);
        tm_int(&sp, 3, 3);
        tm_str(&a, 1, "sparse_value");
        tm_msg(&a, 22, &sp);
        tm_int(&a, 20, 11);
        tm_msg(&node, 5, &a);
    }
    CHECK(RUN(&h, &node, 13, 0, NULL, 1, &F) == ONYX_OK);
    CHECK(h.out[0].ndim == 2 && h.out[0].dims[1] == 3);
    if (h.out[0].data) {
        const float *o = h.out[0].data;
        CHECK(o[0] == 0 && o[1] == 2.5f && o[4] == -1 && o[5] == 0);
    }
    tm_run_fini(&h);

    int64_t shape[2] = {2, 2}, d2 = 2;
    node = tm_op("ConstantOfShape");
    onyx_tensor_view in = tm_view(I, 1, &d2, shape);
    CHECK(RUN(&h, &node, 20, 1, &in, 1, &F) == ONYX_OK);
    CHECK(h.out[0].dtype == F && h.out[0].dims[0] == 2 && h.out[0].dims[1] == 2);
    if (h.out[0].data) CHECK(((const float *)h.out[0].data)[3] == 0);
    tm_run_fini(&h);
}

// ----------------------------------------------------------------------------
// Upsample-7 and Resize-10 keep the original (asymmetric) semantics;
// expected values from onnxruntime

UNIT_TEST(upsample7_and_resize10_asymmetric) {
    onyx_dtype F = ONYX_DTYPE_FLOAT;
    float data[4] = {0, 10, 20, 40};
    int64_t d1122[4] = {1, 1, 2, 2}, d4 = 4;
    tm_run h;
    static const float sc7[4] = {1, 1, 2, 1.5f};
    tm_buf node = tm_op("Upsample");
    tm_attr_str(&node, "mode", "nearest");
    tm_attr_floats(&node, "scales", 4, sc7);
    onyx_tensor_view in = tm_view(F, 4, d1122, data);
    CHECK(RUN(&h, &node, 7, 1, &in, 1, &F) == ONYX_OK);
    CHECK(h.out[0].dims[2] == 4 && h.out[0].dims[3] == 3);
    if (h.out[0].data) {
        static const float want[12] = {0, 0, 10, 0, 0, 10, 20, 20, 40, 20, 20, 40};
        CHECK(memcmp(h.out[0].data, want, sizeof want) == 0);
    }
    tm_run_fini(&h);

    float sc10[4] = {1, 1, 2, 2};
    node = tm_op("Resize");
    tm_attr_str(&node, "mode", "linear");
    onyx_tensor_view rin[2] = {tm_view(F, 4, d1122, data), tm_view(F, 1, &d4, sc10)};
    CHECK(RUN(&h, &node, 10, 2, rin, 1, &F) == ONYX_OK);
    if (h.out[0].data) {
        static const float want[16] = {0, 5, 10, 10, 10, 17.5f, 25, 25, 20, 30, 40, 40, 20, 30, 40, 40};
        const float *o = h.out[0].data;
        for (int i = 0; i < 16; i++) CHECK_NEAR(o[i], want[i], 1e-5);
    }
    tm_run_fini(&h);

    float scd[4] = {1, 1, 0.6f, 3};
    node = tm_op("Resize");
    onyx_tensor_view din[2] = {tm_view(F, 4, d1122, data), tm_view(F, 1, &d4, scd)};
    CHECK(RUN(&h, &node, 10, 2, din, 1, &F) == ONYX_OK);
    CHECK(h.out[0].dims[2] == 1 && h.out[0].dims[3] == 6);
    if (h.out[0].data) {
        static const float want[6] = {0, 0, 0, 10, 10, 10};
        CHECK(memcmp(h.out[0].data, want, sizeof want) == 0);
    }
    tm_run_fini(&h);
}
