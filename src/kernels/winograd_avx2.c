/* winograd_avx2.c - AVX2+FMA input and output tile transforms of Winograd
 * F(4x4, 3x3) (winograd.h): eight tiles at a time, one per lane. Tiles are
 * gathered and scattered through 8x8 transposes; the arithmetic is that of
 * the generic twins in winograd.c (same operation order up to FMA
 * contraction). Only reached when dispatch.c found AVX2 and FMA. */
#include "kernels/winograd.h"
#include "kernels/winograd_weights.h"

#include "kernels/act.h"
#include "kernels/conv_avx2.h"

#include <immintrin.h>

/* out[i*os] = (B^T in)[i] over 6 vectors at stride s (as bt6 in winograd.c). */
static inline void bt6v(const __m256 *in, int s, __m256 *out, int os) {
    const __m256 two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f),
                 five = _mm256_set1_ps(5.0f);
    __m256 d0 = in[0], d1 = in[s], d2 = in[2 * s], d3 = in[3 * s], d4 = in[4 * s], d5 = in[5 * s];
    __m256 d4m2 = _mm256_sub_ps(d4, d2);
    out[0] = _mm256_add_ps(_mm256_fnmadd_ps(five, d2, _mm256_mul_ps(four, d0)), d4);
    out[os] = _mm256_fnmadd_ps(four, _mm256_add_ps(d1, d2), _mm256_add_ps(d3, d4));
    out[2 * os] = _mm256_fmadd_ps(four, _mm256_sub_ps(d1, d2), _mm256_sub_ps(d4, d3));
    out[3 * os] = _mm256_fmadd_ps(two, _mm256_sub_ps(d3, d1), d4m2);
    out[4 * os] = _mm256_fmadd_ps(two, _mm256_sub_ps(d1, d3), d4m2);
    out[5 * os] = _mm256_add_ps(_mm256_fnmadd_ps(five, d3, _mm256_mul_ps(four, d1)), d5);
}

/* out[i*os] = (A^T in)[i] over 6 vectors at stride s, 4 results. */
static inline void at6v(const __m256 *in, int s, __m256 *out, int os) {
    __m256 m0 = in[0], m1 = in[s], m2 = in[2 * s], m3 = in[3 * s], m4 = in[4 * s], m5 = in[5 * s];
    __m256 a = _mm256_add_ps(m1, m2), b = _mm256_sub_ps(m1, m2);
    __m256 c = _mm256_add_ps(m3, m4), d = _mm256_sub_ps(m3, m4);
    out[0] = _mm256_add_ps(_mm256_add_ps(m0, a), c);
    out[os] = _mm256_fmadd_ps(_mm256_set1_ps(2.0f), d, b);
    out[2 * os] = _mm256_fmadd_ps(_mm256_set1_ps(4.0f), c, a);
    out[3 * os] = _mm256_add_ps(_mm256_fmadd_ps(_mm256_set1_ps(8.0f), d, b), m5);
}

/* Padded-input offset of tile t's corner for channel c. */
static inline int64_t tile_offset(const onyx_wino_geom *g, int64_t c, int64_t t) {
    int64_t per = g->th * g->tw, n = t / per, r = t % per, ti = r / g->tw, tj = r % g->tw;
    return ((n * g->c + c) * g->hp + 4 * ti) * g->wp + 4 * tj;
}

static void input_avx2(const onyx_wino_geom *g, const float *xp, int64_t c0, int64_t c1,
                       int64_t t0, int64_t nt, float *v, int64_t xi_stride, int64_t ldv) {
    for (int64_t tb = 0; tb < nt; tb += 8) {
        int64_t off[8];
        for (int l = 0; l < 8; l++) {
            int64_t t = tb + l < nt ? t0 + tb + l : t0 + nt - 1; /* spare lanes repeat */
            off[l] = tile_offset(g, 0, t);
        }
        const int64_t plane = g->hp * g->wp;
        for (int64_t c = c0; c < c1; c++) {
            const float *xc = xp + c * plane;
            __m256 d[36], tmp[36];
            for (int r = 0; r < 6; r++) {
                __m256 rows[8], cols[8];
                for (int l = 0; l < 8; l++) rows[l] = _mm256_loadu_ps(xc + off[l] + r * g->wp);
                onyx_avx2_transpose8(rows, cols);
                for (int j = 0; j < 6; j++) d[r * 6 + j] = cols[j];
            }
            for (int j = 0; j < 6; j++) bt6v(d + j, 6, tmp + j, 6);
            float *dst = v + c * ldv + tb;
            for (int i = 0; i < 6; i++) {
                __m256 r[6];
                bt6v(tmp + 6 * i, 1, r, 1);
                for (int j = 0; j < 6; j++) _mm256_storeu_ps(dst + (i * 6 + j) * xi_stride, r[j]);
            }
        }
    }
}

/* output_avx2 with the activation kind a constant in the common cases, so
 * that its switch folds away instead of running per vector. */
static inline __attribute__((always_inline)) void output_body(
    const onyx_wino_geom *g, const float *m, int64_t xi_stride, int64_t ldm, int64_t k0,
    int64_t k1, int64_t t0, int64_t nt, const float *bias, const float *sum, const onyx_act *act,
    onyx_act_kind kind, float *y) {
    const bool vec = onyx_avx2_act_vectorized(kind);
    onyx_avx2_act_params ap = onyx_avx2_act_params_of(act);
    ap.kind = kind;
    const int64_t per = g->th * g->tw;
    for (int64_t tb = 0; tb < nt; tb += 8) {
        int lanes = nt - tb < 8 ? (int)(nt - tb) : 8;
        int64_t base[8], rows[8], cols[8];
        for (int l = 0; l < lanes; l++) {
            int64_t t = t0 + tb + l, n = t / per, ti = t % per / g->tw, tj = t % g->tw;
            base[l] = (n * g->k * g->oh + 4 * ti) * g->ow + 4 * tj;
            rows[l] = g->oh - 4 * ti < 4 ? g->oh - 4 * ti : 4;
            cols[l] = g->ow - 4 * tj < 4 ? g->ow - 4 * tj : 4;
        }
        for (int64_t k = k0; k < k1; k++) {
            const float *src = m + k * ldm + tb;
            __m256 in[36], tmp[24], o[16];
            for (int xi = 0; xi < 36; xi++) in[xi] = _mm256_loadu_ps(src + xi * xi_stride);
            for (int j = 0; j < 6; j++) at6v(in + j, 6, tmp + j, 6);
            for (int i = 0; i < 4; i++) at6v(tmp + 6 * i, 1, o + 4 * i, 1);
            __m256 vb = _mm256_set1_ps(bias ? bias[k] : 0.0f);
            for (int q = 0; q < 16; q++) o[q] = _mm256_add_ps(o[q], vb);
            /* Rows (0, 1) then (2, 3) of every lane's tile: out[l] holds
             * row i in its low half and row i+1 in its high half. The
             * addend and the activation apply there, in the layout of y. */
            const int64_t koff = k * g->oh * g->ow;
            float *yk = y + koff;
            const float *sk = sum ? sum + koff : NULL;
            for (int half = 0; half < 2; half++) {
                __m256 out[8];
                onyx_avx2_transpose8(o + 8 * half, out);
                for (int l = 0; l < lanes; l++) {
                    const int64_t at = base[l] + (2 * half) * g->ow;
                    float *p = yk + at;
                    const bool full = rows[l] == 4 && cols[l] == 4;
                    if (sk) {
                        const float *s = sk + at;
                        __m256 sv;
                        if (full) {
                            sv = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_loadu_ps(s)),
                                                      _mm_loadu_ps(s + g->ow), 1);
                        } else {
                            float st[8] = {0};
                            for (int i = 0; i < 2 && 2 * half + i < rows[l]; i++)
                                for (int j = 0; j < cols[l]; j++) st[4 * i + j] = s[i * g->ow + j];
                            sv = _mm256_loadu_ps(st);
                        }
                        out[l] = _mm256_add_ps(out[l], sv);
                    }
                    if (vec) out[l] = onyx_avx2_act(&ap, out[l]);
                    if (full) {
                        _mm_storeu_ps(p, _mm256_castps256_ps128(out[l]));
                        _mm_storeu_ps(p + g->ow, _mm256_extractf128_ps(out[l], 1));
                        continue;
                    }
                    float tmpf[8];
                    _mm256_storeu_ps(tmpf, out[l]);
                    for (int i = 0; i < 2 && 2 * half + i < rows[l]; i++)
                        for (int j = 0; j < cols[l]; j++) p[i * g->ow + j] = tmpf[4 * i + j];
                }
            }
            if (!vec && kind != ONYX_ACT_NONE)
                for (int l = 0; l < lanes; l++)
                    for (int i = 0; i < rows[l]; i++)
                        onyx_act_apply(act, yk + base[l] + i * g->ow, cols[l]);
        }
    }
}

static void output_avx2(const onyx_wino_geom *g, const float *m, int64_t xi_stride,
                        int64_t ldm, int64_t k0, int64_t k1, int64_t t0, int64_t nt,
                        const float *bias, const float *sum, const onyx_act *act,
                        float *y) {
    const onyx_act_kind kind = act ? act->kind : ONYX_ACT_NONE;
#define OUTPUT_BODY(K) output_body(g, m, xi_stride, ldm, k0, k1, t0, nt, bias, sum, act, K, y)
    ONYX_AVX2_BY_ACT(kind, OUTPUT_BODY)
#undef OUTPUT_BODY
}

/* The generic transform's code compiled for AVX (4 doubles a vector). */
static void weights_avx2(const float *w, int64_t k, int64_t c, float *u) {
    onyx_wino_weights_impl(w, k, c, u);
}

const onyx_winograd_kernels onyx_winograd_avx2 = {"avx2", input_avx2, output_avx2, weights_avx2};
