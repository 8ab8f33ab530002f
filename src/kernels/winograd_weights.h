/* winograd_weights.h - the body of the Winograd weight transform U = G g
 * G^T (winograd.h), included by winograd.c (the generic twin) and
 * winograd_avx2.c, so that each compiles the same double arithmetic for its
 * own vector width and the results agree to the bit. */
#ifndef ONYX_WINOGRAD_WEIGHTS_H
#define ONYX_WINOGRAD_WEIGHTS_H

#include <stdint.h>
#include <string.h>

enum { WBLOCK = 64 }; /* (k, c) pairs transformed together */

/* o[r][q] = (G (a[q], b[q], c[q])^T)[r] for the WBLOCK pairs q, G (6 x 3)
 * of the points 0, +-1, +-2, infinity: rows (1/4, 0, 0), -(1, 1, 1)/6,
 * -(1, -1, 1)/6, (1/24, 1/12, 1/6), (1/24, -1/12, 1/6), (0, 0, 1), with the
 * shared sums taken once. Each line is a loop over q of the same double
 * operations the scalar form would do, so the compiler runs it on vectors
 * and the result is the same to the bit. */
static inline void wino_g_times(const double *a, const double *b, const double *c, double o[6][WBLOCK]) {
    const double r4 = 1.0 / 4, r6 = 1.0 / 6, r12 = 1.0 / 12, r24 = 1.0 / 24;
    for (int q = 0; q < WBLOCK; q++) {
        double s = a[q] + c[q], p = a[q] * r24 + c[q] * r6, t = b[q] * r12;
        o[0][q] = a[q] * r4;
        o[1][q] = -(s + b[q]) * r6;
        o[2][q] = -(s - b[q]) * r6;
        o[3][q] = p + t;
        o[4][q] = p - t;
        o[5][q] = c[q];
    }
}

/* U = G g G^T per (k, c), in double, WBLOCK (k, c) pairs at a time laid out
 * across the pairs (each tap, each intermediate a row of WBLOCK), so that
 * the arithmetic runs on vectors and each of the 36 planes of u is written
 * in runs, not one float per plane per pair. */
static inline void onyx_wino_weights_impl(const float *w, int64_t k, int64_t c, float *u) {
    const int64_t plane = k * c;
    double g[9][WBLOCK];    /* the taps of the block's pairs */
    double t[3][6][WBLOCK]; /* t[j] = G g[:, j] */
    double r[6][WBLOCK];    /* row i of (G g) G^T */
    float res[36][WBLOCK];
    for (int64_t kc0 = 0; kc0 < plane; kc0 += WBLOCK) {
        const int64_t nb = plane - kc0 < WBLOCK ? plane - kc0 : WBLOCK;
        for (int64_t q = 0; q < nb; q++)
            for (int e = 0; e < 9; e++) g[e][q] = w[(kc0 + q) * 9 + e];
        for (int64_t q = nb; q < WBLOCK; q++)
            for (int e = 0; e < 9; e++) g[e][q] = 0.0;
        for (int j = 0; j < 3; j++) wino_g_times(g[j], g[3 + j], g[6 + j], t[j]);
        for (int i = 0; i < 6; i++) {
            wino_g_times(t[0][i], t[1][i], t[2][i], r);
            for (int j = 0; j < 6; j++)
                for (int q = 0; q < WBLOCK; q++) res[i * 6 + j][q] = (float)r[j][q];
        }
        for (int x = 0; x < 36; x++) memcpy(u + x * plane + kc0, res[x], (size_t)nb * sizeof(float));
    }
}

#endif
