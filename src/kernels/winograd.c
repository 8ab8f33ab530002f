/* winograd.c - the portable parts of Winograd F(4x4, 3x3) (winograd.h):
 * weight transform, padded input copy, and the generic C twins of the input
 * and output tile transforms, which are the reference for the ISA variants.
 * The matrices are Lavin & Gray's for the points 0, +-1, +-2, infinity. */
#include "kernels/winograd.h"
#include "kernels/winograd_weights.h"

#include "kernels/act.h"

#include <string.h>

// ----------------------------------------------------------------------------
// Weights and geometry

void onyx_winograd_weights(const float *w, int64_t k, int64_t c, float *u) {
    onyx_wino_weights_impl(w, k, c, u);
}

onyx_wino_geom onyx_wino_geom_of(int64_t c, int64_t k, int64_t h, int64_t w, int64_t ph,
                                 int64_t pw, int64_t oh, int64_t ow) {
    onyx_wino_geom g = {c, k, h, w, ph, pw, oh, ow, (oh + 3) / 4, (ow + 3) / 4, 0, 0};
    g.hp = 4 * g.th + 2;
    g.wp = 4 * g.tw + 4;
    return g;
}

void onyx_winograd_pad(const onyx_wino_geom *g, const float *x, float *xp, int64_t p0,
                       int64_t p1) {
    /* Columns j of a padded row with 0 <= j - pw < w. */
    int64_t lo = g->pw < g->wp ? g->pw : g->wp;
    int64_t hi = g->pw + g->w < g->wp ? g->pw + g->w : g->wp;
    for (int64_t c = p0; c < p1; c++)
        for (int64_t i = 0; i < g->hp; i++) {
            float *d = xp + (c * g->hp + i) * g->wp;
            int64_t ih = i - g->ph;
            if (ih < 0 || ih >= g->h || hi <= lo) {
                memset(d, 0, (size_t)g->wp * sizeof(float));
                continue;
            }
            memset(d, 0, (size_t)lo * sizeof(float));
            memcpy(d + lo, x + (c * g->h + ih) * g->w + (lo - g->pw),
                   (size_t)(hi - lo) * sizeof(float));
            memset(d + hi, 0, (size_t)(g->wp - hi) * sizeof(float));
        }
}

// ----------------------------------------------------------------------------
// Generic tile transforms

/* The top-left corner of tile t, channel c, in the padded input. */
static const float *tile_at(const onyx_wino_geom *g, const float *xp, int64_t c, int64_t t) {
    int64_t per = g->th * g->tw, n = t / per, r = t % per, ti = r / g->tw, tj = r % g->tw;
    return xp + ((n * g->c + c) * g->hp + 4 * ti) * g->wp + 4 * tj;
}

/* out[i] = (B^T in)[i] for 6 values at stride s. */
static void bt6(const float *in, int s, float *out, int os) {
    float d0 = in[0], d1 = in[s], d2 = in[2 * s], d3 = in[3 * s], d4 = in[4 * s], d5 = in[5 * s];
    out[0] = 4.0f * d0 - 5.0f * d2 + d4;
    out[os] = -4.0f * d1 - 4.0f * d2 + d3 + d4;
    out[2 * os] = 4.0f * d1 - 4.0f * d2 - d3 + d4;
    out[3 * os] = -2.0f * d1 - d2 + 2.0f * d3 + d4;
    out[4 * os] = 2.0f * d1 - d2 - 2.0f * d3 + d4;
    out[5 * os] = 4.0f * d1 - 5.0f * d3 + d5;
}

/* out[i] = (A^T in)[i] for 6 values at stride s, 4 results. */
static void at6(const float *in, int s, float *out, int os) {
    float m0 = in[0], m1 = in[s], m2 = in[2 * s], m3 = in[3 * s], m4 = in[4 * s], m5 = in[5 * s];
    float a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
    out[0] = m0 + a + c;
    out[os] = b + 2.0f * d;
    out[2 * os] = a + 4.0f * c;
    out[3 * os] = b + 8.0f * d + m5;
}

static void input_generic(const onyx_wino_geom *g, const float *xp, int64_t c0, int64_t c1,
                          int64_t t0, int64_t nt, float *v, int64_t xi_stride, int64_t ldv) {
    for (int64_t c = c0; c < c1; c++)
        for (int64_t t = t0; t < t0 + nt; t++) {
            const float *d = tile_at(g, xp, c, t);
            float tmp[36], r[36];
            for (int j = 0; j < 6; j++) bt6(d + j, (int)g->wp, tmp + j, 6); /* B^T d */
            for (int i = 0; i < 6; i++) bt6(tmp + 6 * i, 1, r + 6 * i, 1);  /* (.) B */
            for (int xi = 0; xi < 36; xi++) v[xi * xi_stride + c * ldv + (t - t0)] = r[xi];
        }
}

static void output_generic(const onyx_wino_geom *g, const float *m, int64_t xi_stride,
                           int64_t ldm, int64_t k0, int64_t k1, int64_t t0, int64_t nt,
                           const float *bias, const float *sum, const onyx_act *act,
                           float *y) {
    const bool has_act = act && act->kind != ONYX_ACT_NONE;
    for (int64_t k = k0; k < k1; k++)
        for (int64_t t = t0; t < t0 + nt; t++) {
            float in[36], tmp[24], o[16];
            for (int xi = 0; xi < 36; xi++) in[xi] = m[xi * xi_stride + k * ldm + (t - t0)];
            for (int j = 0; j < 6; j++) at6(in + j, 6, tmp + j, 6);  /* A^T m: (4, 6) */
            for (int i = 0; i < 4; i++) at6(tmp + 6 * i, 1, o + 4 * i, 1); /* (.) A */
            float b = bias ? bias[k] : 0.0f;
            int64_t per = g->th * g->tw, n = t / per, ti = t % per / g->tw, tj = t % g->tw;
            int64_t rows = g->oh - 4 * ti < 4 ? g->oh - 4 * ti : 4;
            int64_t cols = g->ow - 4 * tj < 4 ? g->ow - 4 * tj : 4;
            for (int64_t i = 0; i < rows; i++) {
                int64_t at = ((n * g->k + k) * g->oh + 4 * ti + i) * g->ow + 4 * tj;
                float *yr = y + at;
                for (int64_t j = 0; j < cols; j++) yr[j] = o[4 * i + j] + b;
                if (sum)
                    for (int64_t j = 0; j < cols; j++) yr[j] += sum[at + j];
                if (has_act) onyx_act_apply(act, yr, cols);
            }
        }
}

const onyx_winograd_kernels onyx_winograd_generic = {"generic", input_generic, output_generic,
                                                    onyx_winograd_weights};
