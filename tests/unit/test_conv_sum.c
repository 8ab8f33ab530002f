/* test_conv_sum.c - Relu(Add(Conv(X, W, B), S)) end to end: with the graph
 * pass that fuses the Add into the Conv,
 * this runs conv.c's residual input on each Conv path (Winograd, pointwise,
 * strided im2col, depthwise, groups, 3-D, broadcast S, an S that widens the
 * output, shapes that do not broadcast); without it, the unfused ops.
 * Expected values come from a direct convolution loop in double. */
#include "testmodel.h"
#include "unit.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

typedef struct sum_case {
    int nd;                  /* spatial axes: 2 or 3 */
    int64_t n, c, k, group;
    int64_t in[3], kern[3], stride, pad;
    int64_t s_dims[5];       /* S's shape (nd + 2 values) */
    bool s_first;            /* Add(S, conv) instead of Add(conv, S) */
    bool relu;
} sum_case;

static float frand(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static int64_t count_of(int nd, const int64_t *d) {
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= d[i];
    return n;
}

/* Direct convolution in double: y (n, k, out...). */
static void conv_ref(const sum_case *t, const float *x, const float *w, const float *b,
                     const int64_t *out, double *y) {
    const int nd = t->nd;
    const int64_t cg = t->c / t->group, kg = t->k / t->group;
    const int64_t osz = count_of(nd, out), isz = count_of(nd, t->in), ksz = count_of(nd, t->kern);
    for (int64_t n = 0; n < t->n; n++)
        for (int64_t k = 0; k < t->k; k++)
            for (int64_t o = 0; o < osz; o++) {
                int64_t oi[3], r = o;
                for (int d = nd - 1; d >= 0; d--) oi[d] = r % out[d], r /= out[d];
                double s = b[k];
                for (int64_t ci = 0; ci < cg; ci++)
                    for (int64_t q = 0; q < ksz; q++) {
                        int64_t ki[3], rq = q, at = 0;
                        bool inside = true;
                        for (int d = nd - 1; d >= 0; d--) ki[d] = rq % t->kern[d], rq /= t->kern[d];
                        for (int d = 0; d < nd; d++) {
                            int64_t i = oi[d] * t->stride + ki[d] - t->pad;
                            if (i < 0 || i >= t->in[d]) inside = false;
                            at = at * t->in[d] + i;
                        }
                        if (!inside) continue;
                        int64_t c = k / kg * cg + ci;
                        s += (double)w[(k * cg + ci) * ksz + q] * x[(n * t->c + c) * isz + at];
                    }
                y[(n * t->k + k) * osz + o] = s;
            }
}

/* Builds and runs the model; returns the run status, *y the output view. */
static onyx_status run_case(const sum_case *t, tm_run *h, const float *x, const float *w,
                            const float *b, const float *s) {
    const int nd = t->nd, rank = nd + 2;
    memset(h, 0, sizeof *h);
    tm_buf g = {0};
    int64_t wd[5] = {t->k, t->c / t->group}, xd[5] = {t->n, t->c}, bd[1] = {t->k};
    for (int d = 0; d < nd; d++) wd[d + 2] = t->kern[d], xd[d + 2] = t->in[d];
    tm_init_f32(&g, "W", rank, wd, w);
    tm_init_f32(&g, "B", 1, bd, b);
    char pads[64], strides[64], group[32];
    snprintf(pads, sizeof pads, nd == 2 ? "pads=ints:%lld,%lld,%lld,%lld" : "pads=ints:%lld,%lld,%lld,%lld,%lld,%lld",
             (long long)t->pad, (long long)t->pad, (long long)t->pad, (long long)t->pad,
             (long long)t->pad, (long long)t->pad);
    snprintf(strides, sizeof strides, nd == 2 ? "strides=ints:%lld,%lld" : "strides=ints:%lld,%lld,%lld",
             (long long)t->stride, (long long)t->stride, (long long)t->stride);
    snprintf(group, sizeof group, "group=i:%lld", (long long)t->group);
    const char *attrs[] = {pads, strides, group, NULL};
    tm_node(&g, "Conv X,W,B -> c", attrs);
    tm_node(&g, t->s_first ? "Add S,c -> a" : "Add c,S -> a", NULL);
    tm_node(&g, t->relu ? "Relu a -> y" : "Identity a -> y", NULL);
    tm_input(&g, "X", ONYX_DTYPE_FLOAT, rank, xd);
    tm_input(&g, "S", ONYX_DTYPE_FLOAT, rank, t->s_dims);
    tm_value(&g, 12, "y", ONYX_DTYPE_FLOAT, -1, NULL);
    h->bytes = tm_model(&g, 17);
    const char *in_names[2] = {"X", "S"}, *out_names[1] = {"y"};
    onyx_tensor_view ins[2] = {tm_view(ONYX_DTYPE_FLOAT, rank, xd, x),
                               tm_view(ONYX_DTYPE_FLOAT, rank, t->s_dims, s)};
    return tm_run_model(h, 2, 2, in_names, ins, 1, out_names);
}

/* Runs case t and compares with conv_ref + broadcast S (+ Relu). */
static int check_case(const sum_case *t, unsigned seed) {
    const int nd = t->nd, rank = nd + 2;
    int64_t out[3];
    for (int d = 0; d < nd; d++) out[d] = (t->in[d] + 2 * t->pad - t->kern[d]) / t->stride + 1;
    int64_t cd[5] = {t->n, t->k};
    for (int d = 0; d < nd; d++) cd[d + 2] = out[d];
    int64_t nx = t->n * t->c * count_of(nd, t->in), nw = t->k * (t->c / t->group) * count_of(nd, t->kern);
    int64_t nc = count_of(rank, cd), ns = count_of(rank, t->s_dims);
    float *x = malloc(sizeof(float) * (size_t)nx), *w = malloc(sizeof(float) * (size_t)nw);
    float *b = malloc(sizeof(float) * (size_t)t->k), *s = malloc(sizeof(float) * (size_t)ns);
    double *ref = malloc(sizeof(double) * (size_t)nc);
    for (int64_t i = 0; i < nx; i++) x[i] = frand(&seed);
    for (int64_t i = 0; i < nw; i++) w[i] = 0.5f * frand(&seed);
    for (int64_t i = 0; i < t->k; i++) b[i] = frand(&seed);
    for (int64_t i = 0; i < ns; i++) s[i] = 2.0f * frand(&seed);
    conv_ref(t, x, w, b, out, ref);
    tm_run h;
    onyx_status st = run_case(t, &h, x, w, b, s);
    int ok = 1;
    /* The broadcast shape, or failure when the shapes do not broadcast. */
    int64_t yd[5];
    bool fits = true;
    for (int d = 0; d < rank; d++) {
        int64_t a = cd[d], e = t->s_dims[d];
        fits = fits && (a == e || a == 1 || e == 1);
        yd[d] = a == 1 ? e : a;
    }
    if (!fits) {
        ok = st != ONYX_OK;
        if (!ok) fprintf(stderr, "  shapes that do not broadcast ran\n");
    } else if (st) {
        fprintf(stderr, "  run failed: %s\n", h.err.message);
        ok = 0;
    } else if (h.out[0].ndim != rank || count_of(rank, h.out[0].dims) != count_of(rank, yd)) {
        fprintf(stderr, "  output has the wrong shape\n");
        ok = 0;
    } else {
        const float *y = h.out[0].data;
        int64_t ny = count_of(rank, yd);
        for (int64_t i = 0; i < ny && ok; i++) {
            int64_t r = i, ci = 0, si = 0, cm = 1, sm = 1;
            for (int d = rank - 1; d >= 0; d--) {
                int64_t v = r % yd[d];
                r /= yd[d];
                ci += (cd[d] == 1 ? 0 : v) * cm;
                si += (t->s_dims[d] == 1 ? 0 : v) * sm;
                cm *= cd[d];
                sm *= t->s_dims[d];
            }
            double e = ref[ci] + s[si];
            if (t->relu && e < 0) e = 0;
            if (!(fabs(e - y[i]) <= 1e-4)) {
                fprintf(stderr, "  y[%lld] = %g, want %g\n", (long long)i, y[i], e);
                ok = 0;
            }
        }
    }
    tm_run_fini(&h);
    free(x);
    free(w);
    free(b);
    free(s);
    free(ref);
    return ok;
}

UNIT_TEST(conv_residual_sum) {
    static const sum_case cases[] = {
        /* Winograd (3x3 stride 1, constant W), with Add(S, conv) */
        {2, 1, 8, 16, 1, {10, 10}, {3, 3}, 1, 1, {1, 16, 10, 10}, true, true},
        {2, 2, 8, 8, 1, {9, 13}, {3, 3}, 1, 1, {2, 8, 9, 13}, false, true},
        /* pointwise, strided im2col, 7x7 stem-like */
        {2, 2, 16, 24, 1, {7, 7}, {1, 1}, 1, 0, {2, 24, 7, 7}, false, true},
        {2, 1, 4, 8, 1, {13, 13}, {3, 3}, 2, 1, {1, 8, 7, 7}, false, false},
        {2, 1, 3, 8, 1, {20, 20}, {7, 7}, 2, 3, {1, 8, 10, 10}, false, true},
        /* depthwise (3x3 stride 1 four-row kernel, and stride 2) */
        {2, 1, 8, 8, 8, {12, 37}, {3, 3}, 1, 1, {1, 8, 12, 37}, false, true},
        {2, 2, 6, 6, 6, {11, 11}, {3, 3}, 2, 1, {2, 6, 6, 6}, true, true},
        /* groups (a task per pair) */
        {2, 4, 8, 12, 2, {6, 6}, {3, 3}, 1, 1, {4, 12, 6, 6}, false, true},
        /* 3-D */
        {3, 1, 3, 4, 1, {5, 6, 4}, {3, 3, 3}, 1, 1, {1, 4, 5, 6, 4}, false, true},
        /* S broadcast onto the convolution: per channel, and widening N */
        {2, 1, 16, 24, 1, {7, 7}, {1, 1}, 1, 0, {1, 24, 1, 1}, false, true},
        {2, 1, 8, 8, 1, {5, 5}, {3, 3}, 1, 1, {3, 8, 5, 5}, false, true},
        {2, 2, 8, 8, 1, {5, 5}, {3, 3}, 1, 1, {1, 1, 5, 1}, true, false},
        /* shapes that do not broadcast */
        {2, 1, 8, 8, 1, {5, 5}, {3, 3}, 1, 1, {1, 8, 3, 3}, false, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int ok = check_case(&cases[i], 100u + (unsigned)i);
        if (!ok) fprintf(stderr, "  conv_residual_sum case %zu failed\n", i);
        CHECK(ok);
    }
}
