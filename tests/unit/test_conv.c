/* test_conv.c - Conv and ConvTranspose end to end through the public API on
 * what the ONNX node tests leave out: 1-D/3-D, groups (the depthwise and the
 * per-group task paths), pointwise, asymmetric pads, dilations with strides,
 * SAME_LOWER, batches, several threads, float16 and double, a fused Relu,
 * column matrices larger than one im2col band, and constant weights (the
 * prepacked paths: implicit im2col with column phases for strides, stems,
 * downsampling, groups, depthwise).
 * Expected values come from direct convolution loops written here. */
#include "core/tensor.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// A Conv model built in memory

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

static void wb_str(wb *b, uint32_t num, const char *s) {
    wb_tag(b, num, 2);
    wb_varint(b, strlen(s));
    wb_raw(b, s, strlen(s));
}

static void wb_msg(wb *b, uint32_t num, wb *inner) {
    wb_tag(b, num, 2);
    wb_varint(b, inner->n);
    wb_raw(b, inner->p, inner->n);
    free(inner->p);
    memset(inner, 0, sizeof *inner);
}

/* One convolution case. Arrays hold nd values (pads 2*nd); a zero first
 * entry means "attribute absent". */
typedef struct conv_case {
    bool transpose;
    int nd;
    int64_t n, c, k, group;
    int64_t in[3], kern[3], strides[3], dil[3], pads[6], opad[3];
    const char *auto_pad; /* NULL: NOTSET */
    bool bias, relu;
    onyx_dtype dtype;
    bool const_w; /* W and B are initializers (prepacked at load) */
} conv_case;

static void attr_ints(wb *node, const char *name, int n, const int64_t *v) {
    wb at = {0};
    wb_str(&at, 1, name);
    for (int i = 0; i < n; i++) wb_int(&at, 8, v[i]);
    wb_int(&at, 20, 7);
    wb_msg(node, 5, &at);
}

static void input_info(wb *g, uint32_t field, const char *name, onyx_dtype t) {
    wb vi = {0}, type = {0}, tt = {0};
    wb_int(&tt, 1, t);
    wb_msg(&type, 1, &tt);
    wb_str(&vi, 1, name);
    wb_msg(&vi, 2, &type);
    wb_msg(g, field, &vi);
}

/* A float32 initializer `name` of shape dims[0..nd). */
static void initializer(wb *g, const char *name, int nd, const int64_t *dims, const float *v) {
    wb t = {0};
    int64_t count = 1;
    for (int i = 0; i < nd; i++) {
        wb_int(&t, 1, dims[i]);
        count *= dims[i];
    }
    wb_int(&t, 2, ONYX_DTYPE_FLOAT);
    wb_str(&t, 8, name);
    wb_tag(&t, 9, 2);
    wb_varint(&t, (uint64_t)count * sizeof(float));
    wb_raw(&t, v, (size_t)count * sizeof(float));
    wb_msg(g, 5, &t);
}

static void build(const conv_case *cc, wb *m, const int64_t *wdims, const float *w,
                  const float *b) {
    wb_int(m, 1, 8);
    wb op = {0}, g = {0}, node = {0}, at = {0};
    wb_str(&op, 1, "");
    wb_int(&op, 2, 22);
    wb_msg(m, 8, &op);
    wb_str(&node, 1, "x");
    wb_str(&node, 1, "w");
    if (cc->bias) wb_str(&node, 1, "b");
    wb_str(&node, 2, cc->relu ? "t" : "y");
    wb_str(&node, 4, cc->transpose ? "ConvTranspose" : "Conv");
    if (cc->group != 1) {
        wb_str(&at, 1, "group");
        wb_int(&at, 3, cc->group);
        wb_int(&at, 20, 2);
        wb_msg(&node, 5, &at);
    }
    if (cc->auto_pad) {
        wb_str(&at, 1, "auto_pad");
        wb_str(&at, 4, cc->auto_pad);
        wb_int(&at, 20, 3);
        wb_msg(&node, 5, &at);
    }
    if (cc->strides[0]) attr_ints(&node, "strides", cc->nd, cc->strides);
    if (cc->dil[0]) attr_ints(&node, "dilations", cc->nd, cc->dil);
    if (cc->pads[0] || cc->pads[cc->nd]) attr_ints(&node, "pads", 2 * cc->nd, cc->pads);
    if (cc->opad[0]) attr_ints(&node, "output_padding", cc->nd, cc->opad);
    wb_msg(&g, 1, &node);
    if (cc->relu) {
        wb_str(&node, 1, "t");
        wb_str(&node, 2, "y");
        wb_str(&node, 4, "Relu");
        wb_msg(&g, 1, &node);
    }
    wb_str(&g, 2, "g");
    input_info(&g, 11, "x", cc->dtype);
    if (cc->const_w) {
        initializer(&g, "w", cc->nd + 2, wdims, w);
        if (cc->bias) initializer(&g, "b", 1, &cc->k, b);
    } else {
        input_info(&g, 11, "w", cc->dtype);
        if (cc->bias) input_info(&g, 11, "b", cc->dtype);
    }
    input_info(&g, 12, "y", cc->dtype);
    wb_msg(m, 7, &g);
}

// ----------------------------------------------------------------------------
// Reference convolutions (double)

static float frand(unsigned *state) {
    *state = *state * 1103515245u + 12345u;
    return (float)((*state >> 8) & 0xffff) / 65536.0f * 2.0f - 1.0f;
}

/* Spatial geometry of a case: output sizes and leading pads. */
static void geometry(const conv_case *cc, int64_t *out, int64_t *pad) {
    for (int d = 0; d < cc->nd; d++) {
        int64_t s = cc->strides[0] ? cc->strides[d] : 1, dl = cc->dil[0] ? cc->dil[d] : 1;
        int64_t ek = (cc->kern[d] - 1) * dl + 1, in = cc->in[d];
        int64_t pb = cc->pads[d], pe = cc->pads[d + cc->nd];
        if (cc->transpose) {
            out[d] = s * (in - 1) + (cc->opad[0] ? cc->opad[d] : 0) + ek - pb - pe;
            pad[d] = pb;
        } else if (cc->auto_pad) {
            out[d] = (in + s - 1) / s;
            int64_t total = (out[d] - 1) * s + ek - in;
            if (total < 0) total = 0;
            pad[d] = strcmp(cc->auto_pad, "SAME_UPPER") == 0 ? total / 2 : total - total / 2;
        } else {
            out[d] = (in + pb + pe - ek) / s + 1;
            pad[d] = pb;
        }
    }
}

/* Visits every (output position, kernel tap, input position) triple of
 * one (image, out channel, in channel) pair in up to 3 spatial axes, padded
 * to 3 with unit axes. Conv: y[o] += x[o*s + t*d - p]; ConvTranspose:
 * y[i*s + t*d - p] += x[i]. */
static void reference(const conv_case *cc, const float *x, const float *w, const float *b,
                      double *y, double *mag, const int64_t *out) {
    int64_t pad[3] = {0}, o3[3] = {1, 1, 1}, i3[3] = {1, 1, 1}, k3[3] = {1, 1, 1};
    int64_t s3[3] = {1, 1, 1}, d3[3] = {1, 1, 1}, p3[3] = {0};
    int64_t tmp[3];
    geometry(cc, tmp, pad);
    int off = 3 - cc->nd;
    for (int d = 0; d < cc->nd; d++) {
        o3[off + d] = out[d];
        i3[off + d] = cc->in[d];
        k3[off + d] = cc->kern[d];
        s3[off + d] = cc->strides[0] ? cc->strides[d] : 1;
        d3[off + d] = cc->dil[0] ? cc->dil[d] : 1;
        p3[off + d] = pad[d];
    }
    int64_t osz = o3[0] * o3[1] * o3[2], isz = i3[0] * i3[1] * i3[2], ksz = k3[0] * k3[1] * k3[2];
    int64_t cg = cc->c / cc->group, kg = cc->k / cc->group;
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t k = 0; k < cc->k; k++) {
            double *yk = y + (n * cc->k + k) * osz, *mk = mag + (n * cc->k + k) * osz;
            for (int64_t i = 0; i < osz; i++) yk[i] = b ? b[k] : 0.0;
            for (int64_t i = 0; i < osz; i++) mk[i] = b ? fabs(b[k]) : 0.0;
            int64_t gi = k / kg;
            for (int64_t c = 0; c < cg; c++) {
                int64_t ci = gi * cg + c;
                const float *xc = x + (n * cc->c + ci) * isz;
                /* Conv W: (K, C/g, k...); ConvTranspose W: (C, K/g, k...). */
                const float *wk = cc->transpose ? w + (ci * kg + k % kg) * ksz : w + (k * cg + c) * ksz;
                int64_t grid[3] = {cc->transpose ? i3[0] : o3[0], cc->transpose ? i3[1] : o3[1],
                                   cc->transpose ? i3[2] : o3[2]};
                for (int64_t a0 = 0; a0 < grid[0]; a0++)
                    for (int64_t a1 = 0; a1 < grid[1]; a1++)
                        for (int64_t a2 = 0; a2 < grid[2]; a2++)
                            for (int64_t t0 = 0; t0 < k3[0]; t0++)
                                for (int64_t t1 = 0; t1 < k3[1]; t1++)
                                    for (int64_t t2 = 0; t2 < k3[2]; t2++) {
                                        int64_t q0 = a0 * s3[0] + t0 * d3[0] - p3[0];
                                        int64_t q1 = a1 * s3[1] + t1 * d3[1] - p3[1];
                                        int64_t q2 = a2 * s3[2] + t2 * d3[2] - p3[2];
                                        const int64_t *lim = cc->transpose ? o3 : i3;
                                        if (q0 < 0 || q1 < 0 || q2 < 0 || q0 >= lim[0] ||
                                            q1 >= lim[1] || q2 >= lim[2])
                                            continue;
                                        double wv = wk[(t0 * k3[1] + t1) * k3[2] + t2];
                                        int64_t a = (a0 * grid[1] + a1) * grid[2] + a2;
                                        int64_t q = (q0 * lim[1] + q1) * lim[2] + q2;
                                        if (cc->transpose) {
                                            yk[q] += wv * xc[a];
                                            mk[q] += fabs(wv * xc[a]);
                                        } else {
                                            yk[a] += wv * xc[q];
                                            mk[a] += fabs(wv * xc[q]);
                                        }
                                    }
            }
            if (cc->relu)
                for (int64_t i = 0; i < osz; i++) yk[i] = yk[i] > 0 ? yk[i] : 0;
        }
}

/* Runs case cc on `threads` threads and compares with the reference;
 * returns 1 on a match. */
static int check_case(const conv_case *cc, int threads, unsigned seed) {
    int64_t out[3], pad[3];
    geometry(cc, out, pad);
    int64_t isz = 1, osz = 1, ksz = 1;
    for (int d = 0; d < cc->nd; d++) {
        isz *= cc->in[d];
        osz *= out[d];
        ksz *= cc->kern[d];
    }
    int64_t nx = cc->n * cc->c * isz, nw = (cc->transpose ? cc->c * (cc->k / cc->group)
                                                         : cc->k * (cc->c / cc->group)) * ksz;
    int64_t ny = cc->n * cc->k * osz;
    float *x = malloc(sizeof(float) * (size_t)nx), *w = malloc(sizeof(float) * (size_t)nw);
    float *b = malloc(sizeof(float) * (size_t)cc->k);
    double *want = malloc(sizeof(double) * (size_t)ny), *mag = malloc(sizeof(double) * (size_t)ny);
    size_t es = onyx_dtype_size(cc->dtype);
    void *xt = malloc(es * (size_t)nx), *wt = malloc(es * (size_t)nw), *bt = malloc(es * (size_t)cc->k);
    for (int64_t i = 0; i < nx; i++) x[i] = frand(&seed);
    for (int64_t i = 0; i < nw; i++) w[i] = frand(&seed);
    for (int64_t i = 0; i < cc->k; i++) b[i] = frand(&seed);
    /* Round inputs to the tested type first so the reference sees them too. */
    onyx_convert(cc->dtype, xt, ONYX_DTYPE_FLOAT, x, nx, false);
    onyx_convert(cc->dtype, wt, ONYX_DTYPE_FLOAT, w, nw, false);
    onyx_convert(cc->dtype, bt, ONYX_DTYPE_FLOAT, b, cc->k, false);
    onyx_convert(ONYX_DTYPE_FLOAT, x, cc->dtype, xt, nx, false);
    onyx_convert(ONYX_DTYPE_FLOAT, w, cc->dtype, wt, nw, false);
    onyx_convert(ONYX_DTYPE_FLOAT, b, cc->dtype, bt, cc->k, false);
    reference(cc, x, w, cc->bias ? b : NULL, want, mag, out);

    int64_t wdims[5] = {cc->transpose ? cc->c : cc->k,
                        cc->transpose ? cc->k / cc->group : cc->c / cc->group};
    for (int d = 0; d < cc->nd; d++) wdims[d + 2] = cc->kern[d];
    wb m = {0};
    build(cc, &m, wdims, w, b);
    onyx_options o;
    onyx_options_init(&o);
    o.threads = threads;
    onyx_model *model = NULL;
    onyx_session *s = NULL;
    onyx_error err = {0};
    onyx_status st = onyx_model_load_memory(m.p, m.n, NULL, &o, &model, &err);
    if (!st) st = onyx_session_new(model, &o, &s, &err);
    const char *names[3] = {"x", "w", "b"};
    onyx_tensor_view in[3] = {{cc->dtype, cc->nd + 2, {cc->n, cc->c}, xt},
                              {cc->dtype, cc->nd + 2, {0}, wt},
                              {cc->dtype, 1, {cc->k}, bt}};
    in[1].dims[0] = cc->transpose ? cc->c : cc->k;
    in[1].dims[1] = cc->transpose ? cc->k / cc->group : cc->c / cc->group;
    for (int d = 0; d < cc->nd; d++) {
        in[0].dims[d + 2] = cc->in[d];
        in[1].dims[d + 2] = cc->kern[d];
    }
    onyx_tensor_view y = {0};
    int n_in = cc->const_w ? 1 : cc->bias ? 3 : 2;
    if (!st) st = onyx_session_run_tensors(s, n_in, names, in, 1, NULL, &y, &err);
    int ok = st == ONYX_OK;
    if (!ok) fprintf(stderr, "  run failed: %s\n", err.message);
    if (ok && (y.ndim != cc->nd + 2 || y.dims[0] != cc->n || y.dims[1] != cc->k)) ok = 0;
    for (int d = 0; ok && d < cc->nd; d++) ok = y.dims[d + 2] == out[d];
    if (ok) {
        double *got = malloc(sizeof(double) * (size_t)ny);
        onyx_convert(ONYX_DTYPE_DOUBLE, got, cc->dtype, y.data, ny, false);
        /* Relative to the result, and to the sum of the magnitudes of its
         * terms: Winograd's transforms mix partial sums several times the
         * result's size, so its rounding error scales with the terms
         * (float's 6e-8 times a growth of up to ~100 for F(4x4, 3x3)). */
        double tol = cc->dtype == ONYX_DTYPE_FLOAT16 ? 2e-2 : 1e-4;
        for (int64_t i = 0; i < ny && ok; i++)
            if (!(fabs(got[i] - want[i]) <= tol * (1 + fabs(want[i])) + 1e-5 * mag[i])) {
                fprintf(stderr, "  %s nd=%d group=%lld threads=%d: y[%lld] = %g, want %g (terms %g)\n",
                        cc->transpose ? "ConvTranspose" : "Conv", cc->nd, (long long)cc->group,
                        threads, (long long)i, got[i], want[i], mag[i]);
                ok = 0;
            }
        free(got);
    }
    onyx_session_free(s);
    onyx_model_free(model);
    free(m.p);
    free(x);
    free(w);
    free(b);
    free(want);
    free(mag);
    free(xt);
    free(wt);
    free(bt);
    return ok;
}

// ----------------------------------------------------------------------------
// Tests

#define F32 ONYX_DTYPE_FLOAT

UNIT_TEST(conv_shapes_and_paths) {
    const conv_case cases[] = {
        /* 2-D with asymmetric pads, strides and dilations, bias, batch 2 */
        {false, 2, 2, 3, 5, 1, {9, 11}, {3, 2}, {2, 1}, {1, 2}, {1, 0, 2, 1}, {0}, NULL, true, false, F32},
        /* pointwise (no im2col) and a fused Relu */
        {false, 2, 1, 17, 7, 1, {5, 6}, {1, 1}, {0}, {0}, {0}, {0}, NULL, true, true, F32},
        /* depthwise 3x3 stride 2, SAME_UPPER, channel multiplier 2 */
        {false, 2, 1, 6, 12, 6, {13, 10}, {3, 3}, {2, 2}, {0}, {0}, {0}, "SAME_UPPER", true, false, F32},
        /* grouped, enough (image, group) pairs for the per-task path */
        {false, 2, 3, 8, 12, 4, {7, 7}, {3, 3}, {1, 1}, {0}, {1, 1, 1, 1}, {0}, NULL, true, true, F32},
        /* 1-D with SAME_LOWER and stride 3 */
        {false, 1, 2, 4, 3, 1, {23}, {4}, {3}, {0}, {0}, {0}, "SAME_LOWER", false, false, F32},
        /* 3-D, dilated, grouped */
        {false, 3, 1, 4, 6, 2, {5, 6, 7}, {2, 3, 2}, {1, 2, 1}, {2, 1, 1}, {0, 1, 1, 1, 0, 0}, {0}, NULL, true, false, F32},
        /* a larger 2-D that spans several GEMM tiles */
        {false, 2, 1, 19, 70, 1, {21, 23}, {3, 3}, {0}, {0}, {1, 1, 1, 1}, {0}, NULL, true, false, F32},
        /* a column matrix over the 16 MB band budget (two bands) */
        {false, 3, 1, 8, 4, 1, {32, 32, 32}, {3, 3, 3}, {0}, {0}, {1, 1, 1, 1, 1, 1}, {0}, NULL, true, false, F32},
        /* float16 and double */
        {false, 2, 1, 3, 4, 1, {6, 7}, {3, 3}, {0}, {0}, {1, 1, 1, 1}, {0}, NULL, true, false, ONYX_DTYPE_FLOAT16},
        {false, 2, 2, 4, 6, 2, {6, 5}, {2, 3}, {2, 1}, {0}, {0}, {0}, NULL, true, false, ONYX_DTYPE_DOUBLE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int threads = 1; threads <= 3; threads += 2) CHECK(check_case(&cases[i], threads, 7 + (unsigned)i));
}

#define CONST true

UNIT_TEST(conv_constant_weights) {
    /* Each case's geometry is what one of the float32 fast paths serves. */
    const conv_case cases[] = {
        /* 3x3 stride 1 pad 1, batch 2, fused Relu (ResNet/SqueezeNet body) */
        {false, 2, 2, 19, 21, 1, {15, 17}, {3, 3}, {0}, {0}, {1, 1, 1, 1}, {0}, NULL, true, true, F32, CONST},
        /* Winograd: no pads, asymmetric pads with odd sizes, tiles of several
         * images in one block, several blocks of tiles */
        {false, 2, 1, 8, 9, 1, {10, 11}, {3, 3}, {0}, {0}, {0}, {0}, NULL, true, false, F32, CONST},
        {false, 2, 3, 5, 17, 1, {9, 14}, {3, 3}, {1, 1}, {1, 1}, {2, 0, 1, 2}, {0}, NULL, false, true, F32, CONST},
        {false, 2, 1, 64, 64, 1, {48, 45}, {3, 3}, {0}, {0}, {1, 1, 1, 1}, {0}, NULL, true, true, F32, CONST},
        /* 3x3 stride 2 with asymmetric pads: column phases */
        {false, 2, 1, 5, 18, 1, {16, 19}, {3, 3}, {2, 2}, {0}, {1, 0, 0, 1}, {0}, NULL, true, false, F32, CONST},
        /* 7x7 stride 2 pad 3 stem on 3 channels */
        {false, 2, 1, 3, 16, 1, {23, 21}, {7, 7}, {2, 2}, {0}, {3, 3, 3, 3}, {0}, NULL, true, true, F32, CONST},
        /* 1x1 stride 2 (downsample), no bias; and plain pointwise with odd sizes */
        {false, 2, 2, 24, 40, 1, {13, 13}, {1, 1}, {2, 2}, {0}, {0}, {0}, NULL, false, false, F32, CONST},
        {false, 2, 1, 37, 70, 1, {9, 7}, {1, 1}, {0}, {0}, {0}, {0}, NULL, true, true, F32, CONST},
        /* stride 3 with dilation 2 */
        {false, 2, 1, 4, 7, 1, {17, 20}, {3, 2}, {3, 3}, {2, 2}, {2, 1, 1, 2}, {0}, NULL, true, false, F32, CONST},
        /* grouped, many pairs (per-pair tasks), stride 2 */
        {false, 2, 3, 8, 12, 4, {9, 11}, {3, 3}, {2, 2}, {0}, {1, 1, 1, 1}, {0}, NULL, true, true, F32, CONST},
        /* 1-D, stride 2 */
        {false, 1, 2, 6, 9, 1, {31}, {5}, {2}, {0}, {2, 2}, {0}, NULL, true, false, F32, CONST},
        /* depthwise 3x3 stride 1 and 2, 5x5 stride 2, dilated; widths around
         * the vector sizes (8, 32) */
        {false, 2, 2, 6, 6, 6, {13, 37}, {3, 3}, {0}, {0}, {1, 1, 1, 1}, {0}, NULL, true, true, F32, CONST},
        {false, 2, 1, 5, 5, 5, {16, 33}, {3, 3}, {2, 2}, {0}, {1, 1, 1, 1}, {0}, NULL, true, false, F32, CONST},
        {false, 2, 1, 4, 4, 4, {19, 70}, {5, 5}, {2, 2}, {0}, {2, 2, 2, 2}, {0}, NULL, true, true, F32, CONST},
        {false, 2, 1, 3, 6, 3, {11, 9}, {3, 3}, {1, 1}, {2, 2}, {2, 1, 2, 1}, {0}, NULL, false, false, F32, CONST},
        {false, 2, 1, 2, 2, 2, {7, 8}, {3, 3}, {1, 1}, {0}, {0}, {0}, NULL, true, false, F32, CONST},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int threads = 1; threads <= 2; threads++) CHECK(check_case(&cases[i], threads, 31 + (unsigned)i));
}

UNIT_TEST(convtranspose_shapes) {
    const conv_case cases[] = {
        /* 2-D stride 2 with pads and output_padding, bias */
        {true, 2, 2, 3, 4, 1, {5, 4}, {3, 3}, {2, 2}, {0}, {1, 0, 1, 1}, {1, 1}, NULL, true, false, F32},
        /* grouped, dilated */
        {true, 2, 1, 4, 6, 2, {4, 5}, {2, 3}, {1, 2}, {2, 1}, {0}, {0}, NULL, true, false, F32},
        /* 1-D and 3-D */
        {true, 1, 1, 2, 3, 1, {7}, {3}, {3}, {0}, {0}, {0}, NULL, false, false, F32},
        {true, 3, 1, 2, 2, 1, {3, 4, 2}, {2, 2, 3}, {2, 1, 2}, {0}, {0}, {0}, NULL, true, false, F32},
        /* a column matrix over the band budget */
        {true, 3, 1, 4, 8, 1, {32, 32, 32}, {3, 3, 3}, {0}, {0}, {1, 1, 1, 1, 1, 1}, {0}, NULL, true, false, F32},
        /* pointwise (direct GEMM into Y) and double */
        {true, 2, 1, 5, 3, 1, {4, 4}, {1, 1}, {0}, {0}, {0}, {0}, NULL, true, false, F32},
        {true, 2, 1, 2, 2, 1, {3, 3}, {2, 2}, {2, 2}, {0}, {0}, {0}, NULL, true, false, ONYX_DTYPE_DOUBLE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int threads = 1; threads <= 3; threads += 2) CHECK(check_case(&cases[i], threads, 99 + (unsigned)i));
}
