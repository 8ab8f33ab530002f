/* rows.c - the generic C twins of the row kernels of rows.h: softmax, layer
 * normalization (sums in double) and a row add, over one float32 row. The
 * reference the ISA variants (rows_avx2.c) are tested against. */
#include "kernels/rows.h"

#include <math.h>

static void softmax_generic(const float *x, float *y, int64_t n, bool log_) {
    float mx = x[0];
    for (int64_t k = 1; k < n; k++)
        if (x[k] > mx) mx = x[k];
    double sum = 0;
    if (!log_) {
        for (int64_t k = 0; k < n; k++) {
            float e = expf(x[k] - mx);
            y[k] = e;
            sum += e;
        }
        float inv = (float)(1.0 / sum);
        for (int64_t k = 0; k < n; k++) y[k] *= inv;
        return;
    }
    for (int64_t k = 0; k < n; k++) sum += expf(x[k] - mx);
    float lse = mx + (float)log(sum);
    for (int64_t k = 0; k < n; k++) y[k] = x[k] - lse;
}

static void layernorm_generic(const float *x, float *y, int64_t n, float eps, const float *scale,
                              const float *bias, bool rms, float *mean_out, float *inv_out) {
    double mean = 0, var = 0;
    if (!rms) {
        for (int64_t i = 0; i < n; i++) mean += x[i];
        mean /= (double)n;
    }
    for (int64_t i = 0; i < n; i++) {
        double d = (double)x[i] - mean;
        var += d * d;
    }
    var /= (double)n;
    double inv = 1.0 / sqrt(var + eps);
    if (mean_out) *mean_out = (float)mean;
    if (inv_out) *inv_out = (float)inv;
    for (int64_t i = 0; i < n; i++) {
        double v = ((double)x[i] - mean) * inv;
        if (scale) v *= scale[i];
        if (bias) v += bias[i];
        y[i] = (float)v;
    }
}

static void add_generic(float *y, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += b[i];
}

static void max3s2_generic(const float *x, int64_t ld, int64_t kh, float *y, int64_t n) {
    for (int64_t o = 0; o < n; o++) {
        float col[3];
        for (int t = 0; t < 3; t++) {
            const float *r = x + 2 * o + t;
            float m = r[0];
            for (int64_t i = 1; i < kh; i++) m = r[i * ld] > m ? r[i * ld] : m;
            col[t] = m;
        }
        float m = col[0];
        m = col[1] > m ? col[1] : m;
        m = col[2] > m ? col[2] : m;
        y[o] = m;
    }
}

static double sum_generic(const float *x, int64_t n) {
    /* Four independent sums: the adds pipeline. */
    double s4[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int q = 0; q < 4; q++) s4[q] += (double)x[i + q];
    double s = (s4[0] + s4[1]) + (s4[2] + s4[3]);
    for (; i < n; i++) s += x[i];
    return s;
}

const onyx_row_kernels onyx_row_kernels_generic = {"generic", softmax_generic, layernorm_generic,
                                                   add_generic, max3s2_generic, sum_generic};
