/* signal.c - the signal operators: DFT (17 and 20), STFT, the Hann, Hamming
 * and Blackman windows, MelWeightMatrix; and ImageDecoder (20), which decodes
 * through src/io/image.h and converts to the requested pixel format.
 * Transforms compute in double (radix-2 FFT, Bluestein for other lengths)
 * and round once to the output type. Not here: the image codecs themselves. */
#include "base/log.h"
#include "core/op.h"
#include "ops/util.h"
#include "io/image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(...) onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, __VA_ARGS__)
#define OOM() onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory")

#define PI 3.14159265358979323846

/* Transform lengths above this are refused (the Bluestein work buffer is
 * four times as long, in complex doubles). */
#define FFT_MAX_LEN ((int64_t)1 << 28)

// ----------------------------------------------------------------------------
// FFT: complex double in place; radix-2 for powers of two, Bluestein else

typedef struct fft_plan {
    int64_t n;         /* transform length */
    int64_t m;         /* power-of-two length of the inner radix-2 FFT */
    double *tw;        /* (m/2, 2) exp(-2 pi i k / m) */
    double *chirp;     /* Bluestein only: (n, 2) exp(-pi i k^2 / n) */
    double *chirp_fft; /* Bluestein only: (m, 2) FFT of the padded conj chirp */
    double *work;      /* Bluestein only: (m, 2) */
} fft_plan;

static bool is_pow2(int64_t n) {
    return n > 0 && (n & (n - 1)) == 0;
}

/* In-place radix-2 FFT of z (m complex values, m a power of two) with the
 * plan's twiddles; forward sign. */
static void fft_radix2(const fft_plan *p, double *z) {
    int64_t m = p->m;
    for (int64_t i = 1, j = 0; i < m; i++) {
        int64_t bit = m >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            double tr = z[2 * i], ti = z[2 * i + 1];
            z[2 * i] = z[2 * j];
            z[2 * i + 1] = z[2 * j + 1];
            z[2 * j] = tr;
            z[2 * j + 1] = ti;
        }
    }
    for (int64_t len = 2; len <= m; len <<= 1) {
        int64_t half = len / 2, step = m / len;
        for (int64_t s = 0; s < m; s += len) {
            for (int64_t k = 0; k < half; k++) {
                double wr = p->tw[2 * k * step], wi = p->tw[2 * k * step + 1];
                double *a = z + 2 * (s + k), *b = z + 2 * (s + k + half);
                double br = b[0] * wr - b[1] * wi, bi = b[0] * wi + b[1] * wr;
                b[0] = a[0] - br;
                b[1] = a[1] - bi;
                a[0] += br;
                a[1] += bi;
            }
        }
    }
}

/* Builds a plan for length n in scratch memory (valid until the op returns). */
static onyx_status fft_plan_init(onyx_exec *x, fft_plan *p, int64_t n) {
    memset(p, 0, sizeof *p);
    if (n < 1 || n > FFT_MAX_LEN) return FAIL("transform length %lld is outside [1, 2^28]", (long long)n);
    p->n = n;
    p->m = 1;
    if (is_pow2(n))
        p->m = n;
    else
        while (p->m < 2 * n - 1) p->m <<= 1;
    int64_t m = p->m;
    p->tw = onyx_exec_scratch(x, (size_t)(m / 2 + 1) * 2 * sizeof(double));
    if (!p->tw) return OOM();
    for (int64_t k = 0; k < m / 2; k++) {
        double a = -2.0 * PI * (double)k / (double)m;
        p->tw[2 * k] = cos(a);
        p->tw[2 * k + 1] = sin(a);
    }
    if (m == n) return ONYX_OK;
    p->chirp = onyx_exec_scratch(x, (size_t)n * 2 * sizeof(double));
    p->chirp_fft = onyx_exec_scratch(x, (size_t)m * 2 * sizeof(double));
    p->work = onyx_exec_scratch(x, (size_t)m * 2 * sizeof(double));
    if (!p->chirp || !p->chirp_fft || !p->work) return OOM();
    /* k^2 mod 2n keeps the angle small, so large k lose no precision. */
    uint64_t two_n = 2 * (uint64_t)n;
    for (int64_t k = 0; k < n; k++) {
        uint64_t r = ((uint64_t)k * (uint64_t)k) % two_n;
        double a = -PI * (double)r / (double)n;
        p->chirp[2 * k] = cos(a);
        p->chirp[2 * k + 1] = sin(a);
    }
    memset(p->chirp_fft, 0, (size_t)m * 2 * sizeof(double));
    for (int64_t k = 0; k < n; k++) {
        p->chirp_fft[2 * k] = p->chirp[2 * k];
        p->chirp_fft[2 * k + 1] = -p->chirp[2 * k + 1];
        if (k) {
            p->chirp_fft[2 * (m - k)] = p->chirp[2 * k];
            p->chirp_fft[2 * (m - k) + 1] = -p->chirp[2 * k + 1];
        }
    }
    fft_radix2(p, p->chirp_fft);
    return ONYX_OK;
}

/* Forward DFT of z (n complex values) in place; `inverse` gives the
 * unnormalized inverse (conjugate trick). */
static void fft_run(const fft_plan *p, double *z, bool inverse) {
    int64_t n = p->n, m = p->m;
    if (inverse)
        for (int64_t k = 0; k < n; k++) z[2 * k + 1] = -z[2 * k + 1];
    if (m == n) {
        fft_radix2(p, z);
    } else {
        double *w = p->work;
        const double *c = p->chirp;
        for (int64_t k = 0; k < n; k++) {
            w[2 * k] = z[2 * k] * c[2 * k] - z[2 * k + 1] * c[2 * k + 1];
            w[2 * k + 1] = z[2 * k] * c[2 * k + 1] + z[2 * k + 1] * c[2 * k];
        }
        memset(w + 2 * n, 0, (size_t)(m - n) * 2 * sizeof(double));
        fft_radix2(p, w);
        /* Pointwise product, then an inverse FFT by conjugation. */
        for (int64_t k = 0; k < m; k++) {
            double ar = w[2 * k], ai = w[2 * k + 1];
            double br = p->chirp_fft[2 * k], bi = p->chirp_fft[2 * k + 1];
            w[2 * k] = ar * br - ai * bi;
            w[2 * k + 1] = -(ar * bi + ai * br);
        }
        fft_radix2(p, w);
        double scale = 1.0 / (double)m;
        for (int64_t k = 0; k < n; k++) {
            double vr = w[2 * k] * scale, vi = -w[2 * k + 1] * scale;
            z[2 * k] = vr * c[2 * k] - vi * c[2 * k + 1];
            z[2 * k + 1] = vr * c[2 * k + 1] + vi * c[2 * k];
        }
    }
    if (inverse)
        for (int64_t k = 0; k < n; k++) z[2 * k + 1] = -z[2 * k + 1];
}

// ----------------------------------------------------------------------------
// Shared input helpers

/* Reads an optional scalar (or 1-element) integer input; *present false when
 * omitted. */
static onyx_status scalar_int(onyx_exec *x, int i, const char *what, bool *present, int64_t *v) {
    const onyx_tensor *t = onyx_exec_input(x, i);
    *present = false;
    if (!t) return ONYX_OK;
    if (t->dtype != ONYX_DTYPE_INT32 && t->dtype != ONYX_DTYPE_INT64)
        return FAIL("%s must be int32 or int64, got %s", what, onyx_dtype_name(t->dtype));
    if (onyx_tensor_count(t) != 1 || t->ndim > 1)
        return FAIL("%s must be a scalar", what);
    *v = onyx_tensor_get_i64(t, 0);
    *present = true;
    return ONYX_OK;
}

static onyx_status scalar_float(onyx_exec *x, int i, const char *what, double *v) {
    const onyx_tensor *t = onyx_exec_input(x, i);
    if (!t) return FAIL("missing input %s", what);
    if (!onyx_dtype_is_float(t->dtype))
        return FAIL("%s must be a float type, got %s", what, onyx_dtype_name(t->dtype));
    if (onyx_tensor_count(t) != 1 || t->ndim > 1) return FAIL("%s must be a scalar", what);
    *v = onyx_tensor_get_f64(t, 0);
    return ONYX_OK;
}

/* Converts double values to the output tensor's type. */
static onyx_status store_doubles(onyx_exec *x, onyx_tensor *out, const double *v, int64_t n) {
    onyx_status st = onyx_convert(out->dtype, out->data, ONYX_DTYPE_DOUBLE, v, n, false);
    if (st) return onyx_exec_fail(x, st, "cannot convert the result to %s", onyx_dtype_name(out->dtype));
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// DFT

typedef struct dft_attr {
    int64_t axis; /* opset 17 only; opset 20 takes it as input 2 */
    bool inverse, onesided;
} dft_attr;

static onyx_status init_dft(onyx_node *n, onyx_error *err) {
    dft_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->axis = onyx_attr_int(n, "axis", 1);
    int64_t inv = onyx_attr_int(n, "inverse", 0), one = onyx_attr_int(n, "onesided", 0);
    if ((inv != 0 && inv != 1) || (one != 0 && one != 1))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attributes 'inverse' and 'onesided' must be 0 or 1");
    a->inverse = inv;
    a->onesided = one;
    n->state = a;
    return ONYX_OK;
}

/* input (..., N at axis, ..., 1|2): each 1-D signal along `axis` is cut or
 * zero-padded to L = dft_length and transformed; output (..., L or L/2+1,
 * ..., 2). An inverse transform divides by L. As the ONNX reference, a
 * onesided inverse keeps the first L/2+1 values of the full inverse. */
static onyx_status run_dft(const onyx_node *nd, onyx_exec *x) {
    const dft_attr *a = nd->state;
    const onyx_tensor *X = onyx_exec_input(x, 0);
    if (!X) return FAIL("missing input");
    if (!onyx_dtype_is_float(X->dtype)) return FAIL("input must be a float type, got %s", onyx_dtype_name(X->dtype));
    int r = X->ndim;
    if (r < 2) return FAIL("input must have rank >= 2 (signal dims, then 1 or 2), got %d", r);
    int64_t comp = X->dims[r - 1];
    if (comp != 1 && comp != 2) return FAIL("last dimension must be 1 (real) or 2 (complex), got %lld", (long long)comp);
    int64_t axis = a->axis;
    bool present;
    onyx_status st;
    if (nd->opset >= 20) {
        axis = -2;
        int64_t v;
        if ((st = scalar_int(x, 2, "axis", &present, &v))) return st;
        if (present) axis = v;
    }
    if (axis < -r || axis > r - 2 || axis == -1)
        return FAIL("axis %lld is outside [-%d, -2] and [0, %d]", (long long)axis, r, r - 2);
    if (axis < 0) axis += r;
    int64_t N = X->dims[axis], L = N;
    int64_t v;
    if ((st = scalar_int(x, 1, "dft_length", &present, &v))) return st;
    if (present) L = v;
    if (L < 1) return FAIL("dft_length must be positive, got %lld", (long long)L);
    int64_t out_len = a->onesided ? L / 2 + 1 : L;

    int64_t dims[ONYX_MAX_DIMS];
    memcpy(dims, X->dims, sizeof dims);
    dims[axis] = out_len;
    dims[r - 1] = 2;
    onyx_tensor *Y;
    if ((st = onyx_exec_output(x, 0, X->dtype, r, dims, &Y))) return st;
    int64_t outer = onyx_op_prod(X->dims, 0, (int)axis);
    int64_t inner = onyx_op_prod(X->dims, (int)axis + 1, r - 1);
    if (outer == 0 || inner == 0 || out_len == 0) return ONYX_OK;

    fft_plan plan;
    if ((st = fft_plan_init(x, &plan, L))) return st;
    int64_t count = onyx_tensor_count(X), ycount = onyx_tensor_count(Y);
    double *in = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, count));
    double *out = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, ycount));
    double *z = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, 2 * L));
    if ((count && !in) || !out || !z) return OOM();
    if (count) onyx_convert(ONYX_DTYPE_DOUBLE, in, X->dtype, X->data, count, false);
    int64_t take = N < L ? N : L;
    double scale = a->inverse ? 1.0 / (double)L : 1.0;
    for (int64_t o = 0; o < outer; o++) {
        if (onyx_exec_aborted(x)) return onyx_exec_fail(x, ONYX_ERR_CANCELLED, "cancelled");
        for (int64_t i = 0; i < inner; i++) {
            const double *src = in + (o * N * inner + i) * comp;
            for (int64_t k = 0; k < take; k++) {
                z[2 * k] = src[k * inner * comp];
                z[2 * k + 1] = comp == 2 ? src[k * inner * comp + 1] : 0.0;
            }
            for (int64_t k = take; k < L; k++) z[2 * k] = z[2 * k + 1] = 0.0;
            fft_run(&plan, z, a->inverse);
            double *dst = out + (o * out_len * inner + i) * 2;
            for (int64_t k = 0; k < out_len; k++) {
                dst[k * inner * 2] = z[2 * k] * scale;
                dst[k * inner * 2 + 1] = z[2 * k + 1] * scale;
            }
        }
    }
    return store_doubles(x, Y, out, ycount);
}

// ----------------------------------------------------------------------------
// STFT

typedef struct stft_attr {
    bool onesided;
} stft_attr;

static onyx_status init_stft(onyx_node *n, onyx_error *err) {
    stft_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    int64_t one = onyx_attr_int(n, "onesided", 1);
    if (one != 0 && one != 1) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'onesided' must be 0 or 1");
    a->onesided = one;
    n->state = a;
    return ONYX_OK;
}

/* signal (B, len, 1|2), frame_step, window (W)?, frame_length? ->
 * (B, frames, bins, 2) with frames = 1 + (len - W) / frame_step and bins
 * W/2+1 (onesided) or W. Each frame is weighted by the window (ones when
 * absent) before its DFT. */
static onyx_status run_stft(const onyx_node *nd, onyx_exec *x) {
    const stft_attr *a = nd->state;
    const onyx_tensor *S = onyx_exec_input(x, 0), *Wn = onyx_exec_input(x, 2);
    if (!S) return FAIL("missing input signal");
    if (!onyx_dtype_is_float(S->dtype)) return FAIL("signal must be a float type, got %s", onyx_dtype_name(S->dtype));
    if (S->ndim != 3 || (S->dims[2] != 1 && S->dims[2] != 2))
        return FAIL("signal must be (batch, length, 1 or 2), got rank %d", S->ndim);
    int64_t B = S->dims[0], len = S->dims[1], comp = S->dims[2];
    bool present;
    int64_t step, flen = -1;
    onyx_status st;
    if ((st = scalar_int(x, 1, "frame_step", &present, &step))) return st;
    if (!present) return FAIL("missing input frame_step");
    if (step < 1) return FAIL("frame_step must be positive, got %lld", (long long)step);
    if ((st = scalar_int(x, 3, "frame_length", &present, &flen))) return st;
    if (!present) flen = -1;
    if (Wn) {
        if (Wn->ndim != 1) return FAIL("window must be 1-D, got rank %d", Wn->ndim);
        if (!onyx_dtype_is_float(Wn->dtype)) return FAIL("window must be a float type");
        if (flen >= 0 && flen != Wn->dims[0])
            return FAIL("frame_length %lld differs from the window length %lld", (long long)flen,
                        (long long)Wn->dims[0]);
        flen = Wn->dims[0];
    }
    if (flen < 0) flen = len;
    if (flen < 1) return FAIL("frame_length must be positive, got %lld", (long long)flen);
    if (flen > len) return FAIL("frame_length %lld exceeds the signal length %lld", (long long)flen, (long long)len);
    int64_t frames = 1 + (len - flen) / step, bins = a->onesided ? flen / 2 + 1 : flen;
    int64_t dims[4] = {B, frames, bins, 2};
    onyx_tensor *Y;
    if ((st = onyx_exec_output(x, 0, S->dtype, 4, dims, &Y))) return st;
    int64_t count = onyx_tensor_count(S), ycount = onyx_tensor_count(Y);
    if (ycount == 0) return ONYX_OK;
    fft_plan plan;
    if ((st = fft_plan_init(x, &plan, flen))) return st;
    double *in = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, count));
    double *out = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, ycount));
    double *w = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, flen));
    double *z = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, 2 * flen));
    if (!in || !out || !w || !z) return OOM();
    onyx_convert(ONYX_DTYPE_DOUBLE, in, S->dtype, S->data, count, false);
    if (Wn)
        onyx_convert(ONYX_DTYPE_DOUBLE, w, Wn->dtype, Wn->data, flen, false);
    else
        for (int64_t k = 0; k < flen; k++) w[k] = 1.0;
    for (int64_t b = 0; b < B; b++) {
        if (onyx_exec_aborted(x)) return onyx_exec_fail(x, ONYX_ERR_CANCELLED, "cancelled");
        for (int64_t f = 0; f < frames; f++) {
            const double *src = in + (b * len + f * step) * comp;
            for (int64_t k = 0; k < flen; k++) {
                z[2 * k] = src[k * comp] * w[k];
                z[2 * k + 1] = comp == 2 ? src[k * comp + 1] * w[k] : 0.0;
            }
            fft_run(&plan, z, false);
            memcpy(out + ((b * frames + f) * bins) * 2, z, (size_t)bins * 2 * sizeof(double));
        }
    }
    return store_doubles(x, Y, out, ycount);
}

// ----------------------------------------------------------------------------
// Windows: Hann, Hamming, Blackman

typedef enum window_kind { WIN_HANN, WIN_HAMMING, WIN_BLACKMAN, WIN_KIND_COUNT } window_kind;

typedef struct window_attr {
    window_kind kind;
    onyx_dtype dtype;
    bool periodic;
} window_attr;

#define T_WINDOW_OUT                                                                            \
    (ONYX_T_INTS | ONYX_T(ONYX_DTYPE_FLOAT) | ONYX_T(ONYX_DTYPE_DOUBLE) | ONYX_T(ONYX_DTYPE_FLOAT16) | \
     ONYX_T(ONYX_DTYPE_BFLOAT16))

/* Reads output_datatype (default float) and checks it against `allowed`. */
static onyx_status output_datatype(onyx_node *n, uint64_t allowed, onyx_dtype *out, onyx_error *err) {
    int64_t t = onyx_attr_int(n, "output_datatype", ONYX_DTYPE_FLOAT);
    if (t <= 0 || t >= ONYX_DTYPE_COUNT || !(allowed & ONYX_T(t)))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'output_datatype' %lld is not supported",
                           (long long)t);
    *out = (onyx_dtype)t;
    return ONYX_OK;
}

static onyx_status init_window(onyx_node *n, onyx_error *err, window_kind kind) {
    window_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    a->kind = kind;
    onyx_status st = output_datatype(n, T_WINDOW_OUT, &a->dtype, err);
    if (st) return st;
    int64_t p = onyx_attr_int(n, "periodic", 1);
    if (p != 0 && p != 1) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'periodic' must be 0 or 1");
    a->periodic = p;
    n->state = a;
    return ONYX_OK;
}
static onyx_status init_hann(onyx_node *n, onyx_error *err) {
    return init_window(n, err, WIN_HANN);
}
static onyx_status init_hamming(onyx_node *n, onyx_error *err) {
    return init_window(n, err, WIN_HAMMING);
}
static onyx_status init_blackman(onyx_node *n, onyx_error *err) {
    return init_window(n, err, WIN_BLACKMAN);
}

/* w[k] over k in [0, size) with N = size (periodic) or size - 1 (symmetric):
 * Hann sin^2(pi k / N); Hamming 25/46 - 21/46 cos(2 pi k / N); Blackman
 * 0.42 - 0.5 cos(2 pi k / N) + 0.08 cos(4 pi k / N). A symmetric window of
 * length 1 is [1] (N would be 0), as torch gives. */
static onyx_status run_window(const onyx_node *nd, onyx_exec *x) {
    const window_attr *a = nd->state;
    bool present;
    int64_t size;
    onyx_status st = scalar_int(x, 0, "size", &present, &size);
    if (st) return st;
    if (!present) return FAIL("missing input size");
    if (size < 0) return FAIL("size must be >= 0, got %lld", (long long)size);
    onyx_tensor *Y;
    if ((st = onyx_exec_output(x, 0, a->dtype, 1, &size, &Y))) return st;
    if (size == 0) return ONYX_OK;
    double *w = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, size));
    if (!w) return OOM();
    double N = (double)(a->periodic ? size : size - 1);
    for (int64_t k = 0; k < size; k++) {
        double t = (double)k;
        if (N == 0) {
            w[k] = 1.0;
            continue;
        }
        switch (a->kind) {
        case WIN_HANN: {
            double s = sin(t * PI / N);
            w[k] = s * s;
            break;
        }
        case WIN_HAMMING:
            w[k] = 25.0 / 46.0 - cos(t * PI * 2 / N) * (1.0 - 25.0 / 46.0);
            break;
        default:
            w[k] = cos(t * (PI * 2) / N) * -0.5 + cos(t * (PI * 4) / N) * 0.08 + 0.42;
            break;
        }
    }
    return store_doubles(x, Y, w, size);
}

// ----------------------------------------------------------------------------
// MelWeightMatrix

typedef struct mel_attr {
    onyx_dtype dtype;
} mel_attr;

static onyx_status init_mel(onyx_node *n, onyx_error *err) {
    mel_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    onyx_status st = output_datatype(n, T_WINDOW_OUT, &a->dtype, err);
    if (st) return st;
    n->state = a;
    return ONYX_OK;
}

/* Python's float floor division a // b (numpy's divmod rule). */
static double floor_div(double a, double b) {
    double mod = fmod(a, b), div = (a - mod) / b;
    if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1.0;
    if (div == 0) return copysign(0.0, a / b);
    double fl = floor(div);
    return div - fl > 0.5 ? fl + 1.0 : fl;
}

/* (dft_length/2 + 1, num_mel_bins) triangles with peak 1. The band edges
 * follow the ONNX reference exactly, including its mel step of
 * (high - low) / (num_mel_bins + 2) and the bin index
 * floor((dft_length + 1) * f / sample_rate); the mel edges are computed in
 * float32 for float32/float16 edge inputs, as the reference does. */
static onyx_status run_mel(const onyx_node *nd, onyx_exec *x) {
    const mel_attr *a = nd->state;
    int64_t bins, dft_length, rate;
    bool p1, p2, p3;
    onyx_status st;
    if ((st = scalar_int(x, 0, "num_mel_bins", &p1, &bins)) || (st = scalar_int(x, 1, "dft_length", &p2, &dft_length)) ||
        (st = scalar_int(x, 2, "sample_rate", &p3, &rate)))
        return st;
    if (!p1 || !p2 || !p3) return FAIL("missing input");
    double lo, hi;
    if ((st = scalar_float(x, 3, "lower_edge_hertz", &lo)) || (st = scalar_float(x, 4, "upper_edge_hertz", &hi)))
        return st;
    if (bins < 1 || bins > (1 << 24)) return FAIL("num_mel_bins must be in [1, 2^24], got %lld", (long long)bins);
    if (dft_length < 1 || dft_length > FFT_MAX_LEN) return FAIL("dft_length %lld is out of range", (long long)dft_length);
    if (rate < 1) return FAIL("sample_rate must be positive, got %lld", (long long)rate);
    if (!(lo >= 0) || !(hi > lo)) return FAIL("edges must satisfy 0 <= lower_edge_hertz < upper_edge_hertz");
    int64_t nspec = dft_length / 2 + 1;
    int64_t dims[2] = {nspec, bins};
    onyx_tensor *Y;
    if ((st = onyx_exec_output(x, 0, a->dtype, 2, dims, &Y))) return st;
    double low_mel, mel_step;
    if (onyx_exec_input(x, 3)->dtype == ONYX_DTYPE_DOUBLE) {
        low_mel = 2595 * log10(1 + lo / 700);
        double high_mel = 2595 * log10(1 + hi / 700);
        mel_step = (high_mel - low_mel) / (double)(bins + 2);
    } else {
        float l = 2595.0f * log10f(1.0f + (float)lo / 700.0f), h = 2595.0f * log10f(1.0f + (float)hi / 700.0f);
        low_mel = l;
        mel_step = (float)((h - l) / (float)(bins + 2));
    }
    int64_t *edge = onyx_exec_scratch(x, (size_t)(bins + 2) * sizeof(int64_t));
    double *w = onyx_exec_scratch(x, onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, nspec * bins));
    if (!edge || !w) return OOM();
    for (int64_t i = 0; i < bins + 2; i++) {
        double f = (double)i * mel_step + low_mel;
        f = 700 * (pow(10, f / 2595) - 1);
        double e = floor_div((double)(dft_length + 1) * f, (double)rate);
        if (!(e >= 0 && e < (double)nspec))
            return FAIL("band edge %lld falls at bin %g, outside [0, %lld): upper_edge_hertz is above "
                        "the Nyquist frequency",
                        (long long)i, e, (long long)nspec);
        edge[i] = (int64_t)e;
    }
    memset(w, 0, (size_t)(nspec * bins) * sizeof(double));
    for (int64_t i = 0; i < bins; i++) {
        int64_t l = edge[i], c = edge[i + 1], h = edge[i + 2];
        if (c == l)
            w[c * bins + i] = 1;
        else
            for (int64_t j = l; j <= c; j++) w[j * bins + i] = (double)(j - l) / (double)(c - l);
        for (int64_t j = c; j < h; j++) w[j * bins + i] = (double)(h - j) / (double)(h - c);
    }
    return store_doubles(x, Y, w, nspec * bins);
}

// ----------------------------------------------------------------------------
// ImageDecoder

typedef enum pixel_format { PIX_RGB, PIX_BGR, PIX_GRAY, PIX_FORMAT_COUNT } pixel_format;

typedef struct image_attr {
    pixel_format format;
} image_attr;

static onyx_status init_image(onyx_node *n, onyx_error *err) {
    image_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    static const char *const formats[PIX_FORMAT_COUNT] = {"RGB", "BGR", "Grayscale"};
    const char *f = onyx_attr_string(n, "pixel_format", "RGB");
    int p = onyx_op_lookup(f, formats, PIX_FORMAT_COUNT);
    if (p < 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'pixel_format' is '%s' (RGB, BGR or Grayscale)", f);
    a->format = (pixel_format)p;
    n->state = a;
    return ONYX_OK;
}

/* Pillow's RGB -> L: ITU-R 601-2 luma in 16-bit fixed point, rounded. */
static uint8_t luma(const uint8_t *p) {
    return (uint8_t)((p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >> 16);
}

/* encoded_stream (bytes) -> (H, W, 3) for RGB/BGR or (H, W, 1) for
 * Grayscale. Gray sources are replicated to RGB; alpha is dropped (Pillow's
 * convert). As the spec says, data that cannot be decoded gives an empty
 * (0, 0, C) image; the reason goes to the log. The EXIF orientation is not
 * applied (the reference, Pillow's Image.open, does not either). */
static onyx_status run_image(const onyx_node *nd, onyx_exec *x) {
    const image_attr *a = nd->state;
    const onyx_tensor *E = onyx_exec_input(x, 0);
    if (!E) return FAIL("missing input encoded_stream");
    if (E->dtype != ONYX_DTYPE_UINT8) return FAIL("encoded_stream must be uint8, got %s", onyx_dtype_name(E->dtype));
    if (E->ndim != 1) return FAIL("encoded_stream must be 1-D, got rank %d", E->ndim);
    int64_t C = a->format == PIX_GRAY ? 1 : 3;
    onyx_image img = {0};
    onyx_error err = {0};
    onyx_status st = onyx_image_decode(E->data, (size_t)E->dims[0], NULL, &img, &err);
    onyx_tensor *Y;
    if (st == ONYX_ERR_OUT_OF_MEMORY) return onyx_exec_fail(x, st, "%s", err.message);
    if (st) {
        onyx_log(ONYX_LOG_WARN, "ImageDecoder node '%s': %s; the output is empty", nd->name, err.message);
        int64_t dims[3] = {0, 0, C};
        return onyx_exec_output(x, 0, ONYX_DTYPE_UINT8, 3, dims, &Y);
    }
    int64_t dims[3] = {img.height, img.width, C};
    if ((st = onyx_exec_output(x, 0, ONYX_DTYPE_UINT8, 3, dims, &Y))) goto done;
    int64_t npix = (int64_t)img.width * img.height;
    const uint8_t *s = img.pixels;
    uint8_t *d = Y->data;
    int ch = img.channels;
    for (int64_t i = 0; i < npix; i++, s += ch) {
        if (a->format == PIX_GRAY) {
            d[i] = ch == 1 ? s[0] : luma(s);
        } else {
            uint8_t r = s[0], g = ch == 1 ? s[0] : s[1], b = ch == 1 ? s[0] : s[2];
            d[3 * i] = a->format == PIX_BGR ? b : r;
            d[3 * i + 1] = g;
            d[3 * i + 2] = a->format == PIX_BGR ? r : b;
        }
    }
done:
    onyx_image_deinit(&img);
    return st;
}

// ----------------------------------------------------------------------------
// Registry rows

#define T_DFT ONYX_T_FLOATS
#define T_IDX (ONYX_T(ONYX_DTYPE_INT32) | ONYX_T(ONYX_DTYPE_INT64))

const onyx_op_schema onyx_ops_signal[] = {
    {"", "DFT", 17, 1, 2, 1, 1, T_DFT, init_dft, run_dft, 0},
    {"", "DFT", 20, 1, 3, 1, 1, T_DFT, init_dft, run_dft, 0},
    {"", "STFT", 17, 2, 4, 1, 1, T_DFT, init_stft, run_stft, 0},
    {"", "HannWindow", 17, 1, 1, 1, 1, T_IDX, init_hann, run_window, 0},
    {"", "HammingWindow", 17, 1, 1, 1, 1, T_IDX, init_hamming, run_window, 0},
    {"", "BlackmanWindow", 17, 1, 1, 1, 1, T_IDX, init_blackman, run_window, 0},
    {"", "MelWeightMatrix", 17, 5, 5, 1, 1, T_IDX, init_mel, run_mel, 0},
    {"", "ImageDecoder", 20, 1, 1, 1, 1, ONYX_T(ONYX_DTYPE_UINT8), init_image, run_image, 0},
    {0},
};
