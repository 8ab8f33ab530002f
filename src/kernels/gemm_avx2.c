/* gemm_avx2.c - the AVX2+FMA single-precision GEMM micro-kernel: a 6 x 16
 * register tile (12 ymm accumulators) over packed panels, as described at
 * the micro-kernel boundary in gemm.h, plain and with the fused bias +
 * addend + activation epilogue (which also stores partial-height tiles).
 * Only reached when dispatch.c found AVX2 and FMA on this CPU. */
#include "kernels/gemm.h"

#include "kernels/conv_avx2.h"

#include <immintrin.h>

enum { MR = 6, NR = 16 };
/* Vectors per group of the epilogue's activation pass (EPI_STORE). */
#define ONYX_EPI_GRP 4

/* The k loop of a 6 x (8*V) tile: V = 2 (full), or V = 1 (half: the first
 * 8 columns of each 16-wide strip row), where even and odd steps go to two
 * accumulator sets so that 12 FMA chains hide the FMA latency; they are
 * summed after the loop. */
#define KLOOP(V, BS)                                                                       \
    __m256 acc[MR][2];                                                                     \
    _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) acc[i][0] = acc[i][1] =          \
        _mm256_setzero_ps();                                                               \
    if (V == 2) {                                                                          \
        for (int64_t p = 0; p < kc; p++) {                                                 \
            __m256 b0 = _mm256_loadu_ps(b + p * (BS));                                     \
            __m256 b1 = _mm256_loadu_ps(b + p * (BS) + 8);                                 \
            const float *ap = a + p * MR;                                                  \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                        \
                __m256 ai = _mm256_broadcast_ss(ap + i);                                   \
                acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);                            \
                acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);                            \
            }                                                                              \
        }                                                                                  \
    } else {                                                                               \
        int64_t p = 0;                                                                     \
        for (; p + 2 <= kc; p += 2) {                                                      \
            __m256 b0 = _mm256_loadu_ps(b + p * NR), b1 = _mm256_loadu_ps(b + p * NR + NR); \
            const float *ap = a + p * MR;                                                  \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                        \
                acc[i][0] = _mm256_fmadd_ps(_mm256_broadcast_ss(ap + i), b0, acc[i][0]);   \
                acc[i][1] = _mm256_fmadd_ps(_mm256_broadcast_ss(ap + MR + i), b1, acc[i][1]); \
            }                                                                              \
        }                                                                                  \
        if (p < kc) {                                                                      \
            __m256 b0 = _mm256_loadu_ps(b + p * NR);                                       \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) acc[i][0] =              \
                _mm256_fmadd_ps(_mm256_broadcast_ss(a + p * MR + i), b0, acc[i][0]);       \
        }                                                                                  \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) acc[i][0] =                  \
            _mm256_add_ps(acc[i][0], acc[i][1]);                                           \
    }

#define UKERNEL(NAME, V)                                                                   \
    static void NAME(int64_t kc, const float *restrict a, const float *restrict b,          \
                     float *restrict c, int64_t ldc, float alpha, float beta) {            \
        KLOOP(V, NR)                                                                         \
        __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);                      \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                            \
            _Pragma("GCC unroll 2") for (int v = 0; v < V; v++) {                          \
                float *ci = c + i * ldc + 8 * v;                                           \
                __m256 r = _mm256_mul_ps(va, acc[i][v]);                                   \
                if (beta != 0.0f) r = _mm256_fmadd_ps(vb, _mm256_loadu_ps(ci), r);         \
                _mm256_storeu_ps(ci, r);                                                   \
            }                                                                              \
        }                                                                                  \
    }

/* Stores the tile's rows: acc (+ old c) (+ bias) (+ sum), activated as
 * KIND. With a constant KIND the activation's switch folds away: one copy
 * per common kind, instead of a dispatch per vector. Relu and Clip are
 * applied before the store; the costly kinds (SiLU, Sigmoid, Tanh, ...) in
 * a second pass over the stored rows (in L1), 4 vectors at a time through
 * onyx_avx2_act_n so that their dependency chains overlap while no
 * accumulator is live (applied with the 12 accumulators live, they spill). */
#define EPI_STORE(V, KIND)                                                                 \
    {                                                                                      \
        onyx_avx2_act_params q_ = ap;                                                      \
        q_.kind = (KIND);                                                                  \
        const bool act_ = onyx_avx2_act_vectorized(q_.kind);                               \
        const bool cheap_ = q_.kind == ONYX_ACT_RELU || q_.kind == ONYX_ACT_CLIP;          \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                            \
            if (i >= rows) break;                                                          \
            __m256 bi = epi->bias ? _mm256_broadcast_ss(epi->bias + i) : _mm256_setzero_ps(); \
            _Pragma("GCC unroll 2") for (int v = 0; v < V; v++) {                          \
                float *ci = c + i * ldc + 8 * v;                                           \
                __m256 r = acc[i][v];                                                      \
                if (epi->accumulate) r = _mm256_add_ps(r, _mm256_loadu_ps(ci));            \
                if (epi->bias) r = _mm256_add_ps(r, bi);                                   \
                if (epi->sum)                                                              \
                    r = _mm256_add_ps(r, _mm256_loadu_ps(epi->sum + i * epi->lds + 8 * v)); \
                if (act_ && cheap_) r = onyx_avx2_act(&q_, r);                             \
                _mm256_storeu_ps(ci, r);                                                   \
            }                                                                              \
        }                                                                                  \
        if (act_ && !cheap_) {                                                             \
            enum { RG = ONYX_EPI_GRP / V };                                                \
            int i0 = 0;                                                                    \
            for (; i0 + RG <= rows; i0 += RG) {                                            \
                __m256 g_[ONYX_EPI_GRP];                                                   \
                _Pragma("GCC unroll 8") for (int j = 0; j < ONYX_EPI_GRP; j++)             \
                    g_[j] = _mm256_loadu_ps(c + (i0 + j / V) * ldc + 8 * (j % V));         \
                onyx_avx2_act_n(&q_, g_, ONYX_EPI_GRP);                                    \
                _Pragma("GCC unroll 8") for (int j = 0; j < ONYX_EPI_GRP; j++)             \
                    _mm256_storeu_ps(c + (i0 + j / V) * ldc + 8 * (j % V), g_[j]);         \
            }                                                                              \
            for (; i0 < rows; i0++) {                                                      \
                __m256 g_[V];                                                              \
                _Pragma("GCC unroll 2") for (int v = 0; v < V; v++)                        \
                    g_[v] = _mm256_loadu_ps(c + i0 * ldc + 8 * v);                         \
                onyx_avx2_act_n(&q_, g_, V);                                               \
                _Pragma("GCC unroll 2") for (int v = 0; v < V; v++)                        \
                    _mm256_storeu_ps(c + i0 * ldc + 8 * v, g_[v]);                         \
            }                                                                              \
        }                                                                                  \
    }

/* The fused epilogue after KLOOP(V, ...), one copy per common activation. */
#define EPI_STORE_1(KIND) EPI_STORE(1, KIND)
#define EPI_STORE_2(KIND) EPI_STORE(2, KIND)
#define EPI_SWITCH(V)                                                                      \
    const onyx_avx2_act_params ap = onyx_avx2_act_params_of(epi->act);                     \
    const int rows = epi->rows;                                                            \
    ONYX_AVX2_BY_ACT(ap.kind, EPI_STORE_##V)

#define UKERNEL_EPI(NAME, V)                                                               \
    static void NAME(int64_t kc, const float *restrict a, const float *restrict b,          \
                     float *restrict c, int64_t ldc, const onyx_sgemm_epi *epi) {          \
        KLOOP(V, NR)                                                                       \
        EPI_SWITCH(V)                                                                      \
    }

/* B read in place, rows ldb apart (a 1x1 convolution's image). */
static void ukernel_avx2_epi_ldb(int64_t kc, const float *restrict a, const float *restrict b,
                                 int64_t ldb, float *restrict c, int64_t ldc,
                                 const onyx_sgemm_epi *epi) {
    KLOOP(2, ldb)
    EPI_SWITCH(2)
}

/* The narrow last strip: each column's 6 rows in one vector (the A strip's
 * depth p is a[p*6 .. p*6+6), loaded 8 wide: the 2 extra lanes are the
 * next depth's and are never stored; the last depth is loaded masked so
 * that nothing past the strip is read), times B's value broadcast. U
 * depths in flight per column keep enough FMA chains for 1-2 columns. */
#define NARROW_LOOP(COLS, U)                                                               \
    {                                                                                      \
        __m256 acc_[COLS][U];                                                              \
        _Pragma("GCC unroll 16") for (int j = 0; j < COLS; j++)                            \
            _Pragma("GCC unroll 4") for (int u = 0; u < U; u++) acc_[j][u] =               \
                _mm256_setzero_ps();                                                       \
        int64_t p = 0;                                                                     \
        for (; p + U < kc; p += U) {                                                       \
            _Pragma("GCC unroll 4") for (int u = 0; u < U; u++) {                          \
                __m256 av = _mm256_loadu_ps(a + (p + u) * MR);                             \
                _Pragma("GCC unroll 16") for (int j = 0; j < COLS; j++) acc_[j][u] =       \
                    _mm256_fmadd_ps(av, _mm256_broadcast_ss(b + (p + u) * ldb + j),        \
                                    acc_[j][u]);                                           \
            }                                                                              \
        }                                                                                  \
        for (; p < kc; p++) {                                                              \
            __m256 av = p + 1 < kc ? _mm256_loadu_ps(a + p * MR)                           \
                                   : _mm256_maskload_ps(a + p * MR, six);                  \
            _Pragma("GCC unroll 16") for (int j = 0; j < COLS; j++) acc_[j][0] =           \
                _mm256_fmadd_ps(av, _mm256_broadcast_ss(b + p * ldb + j), acc_[j][0]);     \
        }                                                                                  \
        _Pragma("GCC unroll 16") for (int j = 0; j < COLS; j++) {                          \
            _Pragma("GCC unroll 4") for (int u = 1; u < U; u++) acc_[j][0] =               \
                _mm256_add_ps(acc_[j][0], acc_[j][u]);                                     \
            acc[j] = acc_[j][0];                                                           \
        }                                                                                  \
    }

static void ukernel_avx2_narrow(int64_t kc, const float *restrict a, const float *restrict b,
                                int64_t ldb, int cols, int rows, float *restrict c,
                                int64_t ldc, float alpha, float beta,
                                const onyx_sgemm_epi *epi) {
    const __m256i six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
    __m256 acc[ONYX_SGEMM_NARROW];
    switch (cols) {
    case 1: NARROW_LOOP(1, 4) break;
    case 2: NARROW_LOOP(2, 4) break;
    case 3: NARROW_LOOP(3, 2) break;
    default: NARROW_LOOP(4, 2) break;
    }
    float t[8] = {0}, bias[8] = {0};
    if (epi && epi->bias)
        for (int i = 0; i < rows; i++) bias[i] = epi->bias[i];
    const onyx_avx2_act_params ap = onyx_avx2_act_params_of(epi ? epi->act : NULL);
    for (int j = 0; j < cols; j++) {
        __m256 r = acc[j];
        if (epi) { /* the order of EPI_STORE: + old c, + bias, + addend */
            if (epi->accumulate) {
                for (int i = 0; i < rows; i++) t[i] = c[i * ldc + j];
                r = _mm256_add_ps(r, _mm256_loadu_ps(t));
            }
            if (epi->bias) r = _mm256_add_ps(r, _mm256_loadu_ps(bias));
            if (epi->sum) {
                for (int i = 0; i < rows; i++) t[i] = epi->sum[i * epi->lds + j];
                r = _mm256_add_ps(r, _mm256_loadu_ps(t));
            }
            if (onyx_avx2_act_vectorized(ap.kind)) r = onyx_avx2_act(&ap, r);
        } else {
            r = _mm256_mul_ps(r, _mm256_set1_ps(alpha));
        }
        _mm256_storeu_ps(t, r);
        for (int i = 0; i < rows; i++)
            c[i * ldc + j] = epi || beta == 0.0f ? t[i] : t[i] + beta * c[i * ldc + j];
    }
}

/* One row of A against packed strips (onyx_sgemm_ukernel_row_fn): four
 * strips at a time, so that eight FMA chains overlap and four streams of B
 * are in flight; a remaining strip alone, its depth split over two
 * accumulator pairs. */
static void row_avx2(int64_t kc, const float *restrict a, const float *restrict b,
                     int64_t strips, float *restrict y, bool accumulate) {
    const int64_t ss = kc * NR;
    int64_t s = 0;
    for (; s + 4 <= strips; s += 4) {
        const float *bs = b + s * ss;
        float *ys = y + s * NR;
        __m256 acc[4][2];
        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
            _Pragma("GCC unroll 2") for (int v = 0; v < 2; v++) acc[q][v] =
                accumulate ? _mm256_loadu_ps(ys + q * NR + 8 * v) : _mm256_setzero_ps();
        for (int64_t p = 0; p < kc; p++) {
            __m256 av = _mm256_broadcast_ss(a + p);
            _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
                _Pragma("GCC unroll 2") for (int v = 0; v < 2; v++) acc[q][v] =
                    _mm256_fmadd_ps(av, _mm256_loadu_ps(bs + q * ss + p * NR + 8 * v), acc[q][v]);
        }
        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
            _Pragma("GCC unroll 2") for (int v = 0; v < 2; v++)
                _mm256_storeu_ps(ys + q * NR + 8 * v, acc[q][v]);
    }
    for (; s < strips; s++) {
        const float *bs = b + s * ss;
        float *ys = y + s * NR;
        __m256 acc[2][2];
        acc[0][0] = accumulate ? _mm256_loadu_ps(ys) : _mm256_setzero_ps();
        acc[0][1] = accumulate ? _mm256_loadu_ps(ys + 8) : _mm256_setzero_ps();
        acc[1][0] = acc[1][1] = _mm256_setzero_ps();
        int64_t p = 0;
        for (; p + 2 <= kc; p += 2)
            _Pragma("GCC unroll 2") for (int u = 0; u < 2; u++) {
                __m256 av = _mm256_broadcast_ss(a + p + u);
                acc[u][0] = _mm256_fmadd_ps(av, _mm256_loadu_ps(bs + (p + u) * NR), acc[u][0]);
                acc[u][1] = _mm256_fmadd_ps(av, _mm256_loadu_ps(bs + (p + u) * NR + 8), acc[u][1]);
            }
        if (p < kc) {
            __m256 av = _mm256_broadcast_ss(a + p);
            acc[0][0] = _mm256_fmadd_ps(av, _mm256_loadu_ps(bs + p * NR), acc[0][0]);
            acc[0][1] = _mm256_fmadd_ps(av, _mm256_loadu_ps(bs + p * NR + 8), acc[0][1]);
        }
        _mm256_storeu_ps(ys, _mm256_add_ps(acc[0][0], acc[1][0]));
        _mm256_storeu_ps(ys + 8, _mm256_add_ps(acc[0][1], acc[1][1]));
    }
}

UKERNEL(ukernel_avx2, 2)
UKERNEL(ukernel_avx2_half, 1)
UKERNEL_EPI(ukernel_avx2_epi, 2)
UKERNEL_EPI(ukernel_avx2_half_epi, 1)

/* One full 6-row strip of A: dst[p * 6 + r] = src[r][p]. Eight depths at a
 * time: the 6 x 8 block (two zero rows making it 8 x 8) is transposed in
 * registers, and the eight 6-float columns are stored with 8-wide stores
 * that overlap (each one's two spare lanes are rewritten by the next; the
 * last is masked), so the strip is read and written a vector at a time. */
static void pack_a_strip_avx2(const float *const *src, int64_t kc, float *d) {
    const __m256 z = _mm256_setzero_ps();
    const __m256i six = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, 0, 0);
    int64_t p = 0;
    for (; p + 8 <= kc; p += 8, d += 48) {
        __m256 r0 = _mm256_loadu_ps(src[0] + p), r1 = _mm256_loadu_ps(src[1] + p);
        __m256 r2 = _mm256_loadu_ps(src[2] + p), r3 = _mm256_loadu_ps(src[3] + p);
        __m256 r4 = _mm256_loadu_ps(src[4] + p), r5 = _mm256_loadu_ps(src[5] + p);
        __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
        __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
        __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
        /* s0..s3: rows 0-3 of depths (0|4), (1|5), (2|6), (3|7); s4..s7:
         * rows 4-5 and two zeros of the same depths */
        __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
        __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
        __m256 s4 = _mm256_shuffle_ps(t4, z, 0x44), s5 = _mm256_shuffle_ps(t4, z, 0xEE);
        __m256 s6 = _mm256_shuffle_ps(t5, z, 0x44), s7 = _mm256_shuffle_ps(t5, z, 0xEE);
        _mm256_storeu_ps(d + 0, _mm256_permute2f128_ps(s0, s4, 0x20));
        _mm256_storeu_ps(d + 6, _mm256_permute2f128_ps(s1, s5, 0x20));
        _mm256_storeu_ps(d + 12, _mm256_permute2f128_ps(s2, s6, 0x20));
        _mm256_storeu_ps(d + 18, _mm256_permute2f128_ps(s3, s7, 0x20));
        _mm256_storeu_ps(d + 24, _mm256_permute2f128_ps(s0, s4, 0x31));
        _mm256_storeu_ps(d + 30, _mm256_permute2f128_ps(s1, s5, 0x31));
        _mm256_storeu_ps(d + 36, _mm256_permute2f128_ps(s2, s6, 0x31));
        _mm256_maskstore_ps(d + 42, six, _mm256_permute2f128_ps(s3, s7, 0x31));
    }
    for (; p < kc; p++, d += 6)
        for (int r = 0; r < 6; r++) d[r] = src[r][p];
}

const onyx_sgemm_kernel onyx_sgemm_kernel_avx2 = {"avx2",           MR,
                                                  NR,               ukernel_avx2,
                                                  ukernel_avx2_epi, ukernel_avx2_half,
                                                  ukernel_avx2_half_epi, true,
                                                  ukernel_avx2_epi_ldb,
                                                  pack_a_strip_avx2,
                                                  ukernel_avx2_narrow,
                                                  row_avx2};
