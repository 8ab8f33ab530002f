/* dtype.c - element-type facts (size, name, class) and conversions between
 * every pair of element types with ONNX Cast semantics, including the small
 * float formats (fp16, bf16, fp8 variants, e8m0, fp4) and 4-bit integers.
 * Does not own tensors or their memory (tensor.c). */
#include "core/tensor.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// Type facts

static const struct {
    const char *name;
    uint8_t size;
} dtype_info[] = {
    [ONYX_DTYPE_UNDEFINED] = {"undefined", 0},
    [ONYX_DTYPE_FLOAT] = {"float", 4},
    [ONYX_DTYPE_UINT8] = {"uint8", 1},
    [ONYX_DTYPE_INT8] = {"int8", 1},
    [ONYX_DTYPE_UINT16] = {"uint16", 2},
    [ONYX_DTYPE_INT16] = {"int16", 2},
    [ONYX_DTYPE_INT32] = {"int32", 4},
    [ONYX_DTYPE_INT64] = {"int64", 8},
    [ONYX_DTYPE_STRING] = {"string", sizeof(char *)},
    [ONYX_DTYPE_BOOL] = {"bool", 1},
    [ONYX_DTYPE_FLOAT16] = {"float16", 2},
    [ONYX_DTYPE_DOUBLE] = {"double", 8},
    [ONYX_DTYPE_UINT32] = {"uint32", 4},
    [ONYX_DTYPE_UINT64] = {"uint64", 8},
    [ONYX_DTYPE_COMPLEX64] = {"complex64", 8},
    [ONYX_DTYPE_COMPLEX128] = {"complex128", 16},
    [ONYX_DTYPE_BFLOAT16] = {"bfloat16", 2},
    [ONYX_DTYPE_FLOAT8E4M3FN] = {"float8e4m3fn", 1},
    [ONYX_DTYPE_FLOAT8E4M3FNUZ] = {"float8e4m3fnuz", 1},
    [ONYX_DTYPE_FLOAT8E5M2] = {"float8e5m2", 1},
    [ONYX_DTYPE_FLOAT8E5M2FNUZ] = {"float8e5m2fnuz", 1},
    [ONYX_DTYPE_UINT4] = {"uint4", 1},
    [ONYX_DTYPE_INT4] = {"int4", 1},
    [ONYX_DTYPE_FLOAT4E2M1] = {"float4e2m1", 1},
    [ONYX_DTYPE_FLOAT8E8M0] = {"float8e8m0", 1},
};
static_assert(sizeof dtype_info / sizeof dtype_info[0] == ONYX_DTYPE_COUNT,
              "dtype_info must cover onyx_dtype");

size_t onyx_dtype_size(onyx_dtype t) {
    return (unsigned)t < ONYX_DTYPE_COUNT ? dtype_info[t].size : 0;
}

const char *onyx_dtype_name(onyx_dtype t) {
    return (unsigned)t < ONYX_DTYPE_COUNT ? dtype_info[t].name : "invalid";
}

size_t onyx_dtype_bytes(onyx_dtype t, int64_t count) {
    size_t size = onyx_dtype_size(t);
    if (count < 0 || (uint64_t)count > SIZE_MAX) return SIZE_MAX;
    if (size && (size_t)count > SIZE_MAX / size) return SIZE_MAX;
    return (size_t)count * size;
}

bool onyx_dtype_is_float(onyx_dtype t) {
    switch (t) {
    case ONYX_DTYPE_FLOAT: case ONYX_DTYPE_DOUBLE: case ONYX_DTYPE_FLOAT16:
    case ONYX_DTYPE_BFLOAT16: case ONYX_DTYPE_FLOAT8E4M3FN: case ONYX_DTYPE_FLOAT8E4M3FNUZ:
    case ONYX_DTYPE_FLOAT8E5M2: case ONYX_DTYPE_FLOAT8E5M2FNUZ: case ONYX_DTYPE_FLOAT4E2M1:
    case ONYX_DTYPE_FLOAT8E8M0:
        return true;
    default:
        return false;
    }
}

bool onyx_dtype_is_signed_int(onyx_dtype t) {
    return t == ONYX_DTYPE_INT8 || t == ONYX_DTYPE_INT16 || t == ONYX_DTYPE_INT32 ||
           t == ONYX_DTYPE_INT64 || t == ONYX_DTYPE_INT4;
}

bool onyx_dtype_is_unsigned_int(onyx_dtype t) {
    return t == ONYX_DTYPE_UINT8 || t == ONYX_DTYPE_UINT16 || t == ONYX_DTYPE_UINT32 ||
           t == ONYX_DTYPE_UINT64 || t == ONYX_DTYPE_UINT4;
}

bool onyx_dtype_is_valid(int32_t t) { return t > ONYX_DTYPE_UNDEFINED && t < ONYX_DTYPE_COUNT; }

// ----------------------------------------------------------------------------
// float16 and bfloat16 (bit manipulation; round to nearest even)

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float onyx_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000 | (mant << 13)); /* inf, NaN */
    if (exp == 0) {
        /* Zero or subnormal: mant * 2^-24, exact in float. */
        float v = (float)mant * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t onyx_f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    x &= 0x7fffffff;
    if (x >= 0x7f800000) /* inf stays inf; NaN stays a quiet NaN with its top payload */
        return sign | 0x7c00 | (x > 0x7f800000 ? 0x200 | ((x >> 13) & 0x3ff) : 0);
    if (x >= 0x477ff000) return sign | 0x7c00; /* >= 65520 rounds to infinity */
    if (x < 0x38800000) {
        /* Below the smallest normal half (2^-14): adding 0.5 makes the FPU
         * round at the 2^-24 granularity of half subnormals (to nearest even),
         * and the low mantissa bits of the sum are the half's bits. */
        float v = bits_f32(x) + 0.5f;
        return sign | (uint16_t)(f32_bits(v) - 0x3f000000);
    }
    uint32_t odd = (x >> 13) & 1;
    x += ((uint32_t)(15 - 127) << 23) + 0xfff + odd; /* rebias, round to nearest even */
    return sign | (uint16_t)(x >> 13);
}

float onyx_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t onyx_f32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

// ----------------------------------------------------------------------------
// float8 and float4: one generic small-float codec driven by a format row

typedef struct minifloat {
    int ebits, mbits, bias;
    bool ieee;      /* all-ones exponent is inf/NaN (E5M2) */
    bool uz;        /* 0x80 is the only NaN; no negative zero (FNUZ) */
    bool fn;        /* only S.1111.111 is NaN, no inf (E4M3FN) */
    uint8_t nan;    /* positive NaN code; for fp4 (no NaN) the code NaN maps to */
    uint8_t maxc;   /* code of the largest finite value */
    double max;
} minifloat;

static const minifloat mf_e4m3fn = {4, 3, 7, false, false, true, 0x7f, 0x7e, 448.0};
static const minifloat mf_e4m3fnuz = {4, 3, 8, false, true, false, 0x80, 0x7f, 240.0};
static const minifloat mf_e5m2 = {5, 2, 15, true, false, false, 0x7e, 0x7b, 57344.0};
static const minifloat mf_e5m2fnuz = {5, 2, 16, false, true, false, 0x80, 0x7f, 57344.0};
static const minifloat mf_e2m1 = {2, 1, 1, false, false, false, 0x08, 0x07, 6.0};

static const minifloat *mf_format(onyx_dtype t) {
    switch (t) {
    case ONYX_DTYPE_FLOAT8E4M3FN: return &mf_e4m3fn;
    case ONYX_DTYPE_FLOAT8E4M3FNUZ: return &mf_e4m3fnuz;
    case ONYX_DTYPE_FLOAT8E5M2: return &mf_e5m2;
    case ONYX_DTYPE_FLOAT8E5M2FNUZ: return &mf_e5m2fnuz;
    case ONYX_DTYPE_FLOAT4E2M1: return &mf_e2m1;
    default: return NULL;
    }
}

static float mf_decode(const minifloat *f, uint8_t v) {
    int nbits = 1 + f->ebits + f->mbits;
    v &= (uint8_t)((1u << nbits) - 1);
    unsigned sign = v >> (nbits - 1);
    unsigned emask = (1u << f->ebits) - 1, mmask = (1u << f->mbits) - 1;
    unsigned e = (v >> f->mbits) & emask, m = v & mmask;
    if (f->uz && v == 0x80) return NAN;
    if (f->ieee && e == emask) return m ? NAN : (sign ? -INFINITY : INFINITY);
    if (f->fn && e == emask && m == mmask) return NAN;
    float r = e ? ldexpf(1.0f + (float)m / (float)(1u << f->mbits), (int)e - f->bias)
                : ldexpf((float)m, 1 - f->bias - f->mbits);
    return sign ? -r : r;
}

/* Rounds a non-negative double to the nearest integer, ties to even, without
 * depending on the FPU rounding mode. */
static double round_even(double q) {
    double fl = floor(q), d = q - fl;
    if (d > 0.5 || (d == 0.5 && fmod(fl, 2.0) != 0.0)) fl += 1.0;
    return fl;
}

static uint8_t mf_overflow(const minifloat *f, uint8_t sign, bool saturate) {
    if (saturate || f == &mf_e2m1) return sign | f->maxc; /* fp4 has no inf or NaN */
    if (f->ieee) return sign | (uint8_t)(((1u << f->ebits) - 1) << f->mbits); /* inf */
    return f->uz ? f->nan : (uint8_t)(sign | f->nan);
}

static uint8_t mf_encode(const minifloat *f, double x, bool saturate) {
    uint8_t sign = signbit(x) ? (uint8_t)(1u << (f->ebits + f->mbits)) : 0;
    if (isnan(x)) return (f->uz || f == &mf_e2m1) ? f->nan : (uint8_t)(sign | f->nan);
    double a = fabs(x);
    if (isinf(a)) return mf_overflow(f, sign, saturate);
    if (a == 0) return f->uz ? 0 : sign;
    int e;
    frexp(a, &e);
    int E = e - 1, emin = 1 - f->bias;
    if (E < emin) E = emin;
    double r = round_even(ldexp(a, f->mbits - E)); /* in units of the quantum 2^(E-mbits) */
    if (ldexp(r, E - f->mbits) > f->max) return mf_overflow(f, sign, saturate);
    if (r == 0) return f->uz ? 0 : sign;
    /* Subnormals, normals and a carry into the next binade all fall out of
     * one formula: the code is (E - emin) binades of 2^mbits steps, plus r. */
    return (uint8_t)(sign | (((unsigned)(E - emin) << f->mbits) + (unsigned)r));
}

/* float8e8m0: an 8-bit exponent, value 2^(v-127); 0xFF is NaN. Rounding as
 * ONNX's reference: "up" rounds any fraction up (CUDA's behaviour). */
static float e8m0_decode(uint8_t v) { return v == 0xff ? NAN : ldexpf(1.0f, (int)v - 127); }

static uint8_t e8m0_encode_up(float f, bool saturate) {
    uint32_t x = f32_bits(f), e = (x >> 23) & 0xff;
    if (e == 0xff) return 0xff;
    if ((x & 0x7fffff) && !(saturate && e == 0xfe)) e++;
    return (uint8_t)e;
}

float onyx_f8_to_f32(onyx_dtype t, uint8_t v) {
    if (t == ONYX_DTYPE_FLOAT8E8M0) return e8m0_decode(v);
    const minifloat *f = mf_format(t);
    return f ? mf_decode(f, v) : NAN;
}

uint8_t onyx_f32_to_f8(onyx_dtype t, float v, bool saturate) {
    if (t == ONYX_DTYPE_FLOAT8E8M0) return e8m0_encode_up(v, saturate);
    const minifloat *f = mf_format(t);
    return f ? mf_encode(f, v, saturate) : 0;
}

float onyx_f4_to_f32(uint8_t v) { return mf_decode(&mf_e2m1, v); }
uint8_t onyx_f32_to_f4(float v) { return mf_encode(&mf_e2m1, v, true); }

// ----------------------------------------------------------------------------
// Reading one element

/* A widened element: which member is valid is the element's kind. */
enum { K_F, K_I, K_U };
typedef union wide {
    double f;
    int64_t i;
    uint64_t u;
} wide;

static int64_t int4_value(uint8_t v) { return (int64_t)((v & 0xf) ^ 8) - 8; }

/* Float to int64 as x86 does it (and so numpy and onnxruntime): truncation
 * toward zero, with NaN and out-of-range values giving INT64_MIN rather than
 * C's undefined behaviour. */
static int64_t f2i(double v) {
    if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0)) return INT64_MIN;
    return (int64_t)v;
}

static uint64_t f2u(double v) {
    if (v >= 9223372036854775808.0 && v < 18446744073709551616.0)
        return (uint64_t)(v - 9223372036854775808.0) | ((uint64_t)1 << 63);
    return (uint64_t)f2i(v);
}

/* Element i of a numeric/bool tensor; *kind tells which member is set.
 * Strings and complex read as 0. */
static wide read1(onyx_dtype t, const void *p, int64_t i, int *kind) {
    wide w = {0};
    *kind = K_F;
    switch (t) {
    case ONYX_DTYPE_FLOAT: w.f = ((const float *)p)[i]; break;
    case ONYX_DTYPE_DOUBLE: w.f = ((const double *)p)[i]; break;
    case ONYX_DTYPE_FLOAT16: w.f = onyx_f16_to_f32(((const uint16_t *)p)[i]); break;
    case ONYX_DTYPE_BFLOAT16: w.f = onyx_bf16_to_f32(((const uint16_t *)p)[i]); break;
    case ONYX_DTYPE_FLOAT8E4M3FN: case ONYX_DTYPE_FLOAT8E4M3FNUZ: case ONYX_DTYPE_FLOAT8E5M2:
    case ONYX_DTYPE_FLOAT8E5M2FNUZ: case ONYX_DTYPE_FLOAT8E8M0:
        w.f = onyx_f8_to_f32(t, ((const uint8_t *)p)[i]);
        break;
    case ONYX_DTYPE_FLOAT4E2M1: w.f = onyx_f4_to_f32(((const uint8_t *)p)[i]); break;
    case ONYX_DTYPE_INT8: *kind = K_I; w.i = ((const int8_t *)p)[i]; break;
    case ONYX_DTYPE_INT16: *kind = K_I; w.i = ((const int16_t *)p)[i]; break;
    case ONYX_DTYPE_INT32: *kind = K_I; w.i = ((const int32_t *)p)[i]; break;
    case ONYX_DTYPE_INT64: *kind = K_I; w.i = ((const int64_t *)p)[i]; break;
    case ONYX_DTYPE_INT4: *kind = K_I; w.i = int4_value(((const uint8_t *)p)[i]); break;
    case ONYX_DTYPE_BOOL: *kind = K_I; w.i = ((const uint8_t *)p)[i] != 0; break;
    case ONYX_DTYPE_UINT8: *kind = K_U; w.u = ((const uint8_t *)p)[i]; break;
    case ONYX_DTYPE_UINT16: *kind = K_U; w.u = ((const uint16_t *)p)[i]; break;
    case ONYX_DTYPE_UINT32: *kind = K_U; w.u = ((const uint32_t *)p)[i]; break;
    case ONYX_DTYPE_UINT64: *kind = K_U; w.u = ((const uint64_t *)p)[i]; break;
    case ONYX_DTYPE_UINT4: *kind = K_U; w.u = ((const uint8_t *)p)[i] & 0xf; break;
    default: *kind = K_I; break;
    }
    return w;
}

int64_t onyx_tensor_get_i64(const onyx_tensor *t, int64_t i) {
    int kind;
    wide w = read1(t->dtype, t->data, i, &kind);
    return kind == K_F ? f2i(w.f) : w.i; /* K_U shares the bits of K_I */
}

double onyx_tensor_get_f64(const onyx_tensor *t, int64_t i) {
    int kind;
    wide w = read1(t->dtype, t->data, i, &kind);
    return kind == K_F ? w.f : kind == K_I ? (double)w.i : (double)w.u;
}

// ----------------------------------------------------------------------------
// Strings

/* Parses a string the way Cast does: decimal or scientific notation, and
 * case-insensitive "INF", "+INF", "-INF", "NaN" (strtod accepts these).
 * Integer targets parse integers exactly when the whole string is one. */
static wide parse_string(const char *s, int kind) {
    wide w = {0};
    if (!s) s = "";
    char *end;
    if (kind == K_I || kind == K_U) {
        errno = 0;
        if (kind == K_I)
            w.i = strtoll(s, &end, 10);
        else
            w.u = strtoull(s, &end, 10);
        while (isspace((unsigned char)*end)) end++;
        if (end != s && !*end && !errno && !(kind == K_U && strchr(s, '-'))) return w;
        double d = strtod(s, NULL);
        if (kind == K_I)
            w.i = f2i(d);
        else
            w.u = f2u(d);
        return w;
    }
    w.f = strtod(s, NULL);
    return w;
}

/* Whether `text` read back as `t` gives exactly `v`. */
static bool round_trips(onyx_dtype t, const char *text, double v) {
    double back = strtod(text, NULL);
    switch (t) {
    case ONYX_DTYPE_DOUBLE: return back == v;
    case ONYX_DTYPE_FLOAT16: return onyx_f32_to_f16((float)back) == onyx_f32_to_f16((float)v);
    case ONYX_DTYPE_BFLOAT16: return onyx_f32_to_bf16((float)back) == onyx_f32_to_bf16((float)v);
    default: return (float)back == (float)v;
    }
}

/* Formats a float the way onnxruntime's Cast does for NaN and infinities, and
 * otherwise in the shortest %g form that reads back to the same value of the
 * source type (as numpy prints it). Returns a malloc'ed string or NULL. */
static char *format_float(onyx_dtype src, double v) {
    char buf[64];
    if (isnan(v))
        snprintf(buf, sizeof buf, "NaN");
    else if (isinf(v))
        snprintf(buf, sizeof buf, v < 0 ? "-INF" : "INF");
    else
        for (int prec = 1; prec <= 17; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, v);
            if (round_trips(src, buf, v)) break;
        }
    size_t len = strlen(buf);
    char *s = malloc(len + 1);
    if (s) memcpy(s, buf, len + 1);
    return s;
}

static char *format_wide(onyx_dtype src, wide w, int kind) {
    if (kind == K_F) return format_float(src, w.f);
    char buf[32];
    if (kind == K_I)
        snprintf(buf, sizeof buf, "%" PRId64, w.i);
    else
        snprintf(buf, sizeof buf, "%" PRIu64, w.u);
    size_t len = strlen(buf);
    char *s = malloc(len + 1);
    if (s) memcpy(s, buf, len + 1);
    return s;
}

// ----------------------------------------------------------------------------
// Conversion: a chunk is widened into a buffer, then narrowed into the target

#define CHUNK 256

/* Widens src[0..n) into w; returns the kind. `want` is the kind a string
 * should be parsed as. */
static int widen(onyx_dtype from, const void *src, int64_t n, wide *w, int want) {
    int kind = K_F;
#define WIDEN(ENUM, T, K, MEMBER, EXPR)                                                    \
    case ONYX_DTYPE_##ENUM: {                                                              \
        const T *s = src;                                                                  \
        for (int64_t i = 0; i < n; i++) w[i].MEMBER = EXPR;                                \
        return K;                                                                          \
    }
    switch (from) {
        WIDEN(FLOAT, float, K_F, f, s[i])
        WIDEN(DOUBLE, double, K_F, f, s[i])
        WIDEN(FLOAT16, uint16_t, K_F, f, onyx_f16_to_f32(s[i]))
        WIDEN(BFLOAT16, uint16_t, K_F, f, onyx_bf16_to_f32(s[i]))
        WIDEN(FLOAT8E4M3FN, uint8_t, K_F, f, mf_decode(&mf_e4m3fn, s[i]))
        WIDEN(FLOAT8E4M3FNUZ, uint8_t, K_F, f, mf_decode(&mf_e4m3fnuz, s[i]))
        WIDEN(FLOAT8E5M2, uint8_t, K_F, f, mf_decode(&mf_e5m2, s[i]))
        WIDEN(FLOAT8E5M2FNUZ, uint8_t, K_F, f, mf_decode(&mf_e5m2fnuz, s[i]))
        WIDEN(FLOAT8E8M0, uint8_t, K_F, f, e8m0_decode(s[i]))
        WIDEN(FLOAT4E2M1, uint8_t, K_F, f, mf_decode(&mf_e2m1, s[i]))
        WIDEN(INT8, int8_t, K_I, i, s[i])
        WIDEN(INT16, int16_t, K_I, i, s[i])
        WIDEN(INT32, int32_t, K_I, i, s[i])
        WIDEN(INT64, int64_t, K_I, i, s[i])
        WIDEN(INT4, uint8_t, K_I, i, int4_value(s[i]))
        WIDEN(BOOL, uint8_t, K_I, i, s[i] != 0)
        WIDEN(UINT8, uint8_t, K_U, u, s[i])
        WIDEN(UINT16, uint16_t, K_U, u, s[i])
        WIDEN(UINT32, uint32_t, K_U, u, s[i])
        WIDEN(UINT64, uint64_t, K_U, u, s[i])
        WIDEN(UINT4, uint8_t, K_U, u, s[i] & 0xf)
    case ONYX_DTYPE_STRING: {
        char *const *s = src;
        for (int64_t i = 0; i < n; i++) w[i] = parse_string(s[i], want);
        return want;
    }
    default:
        break;
    }
#undef WIDEN
    return kind;
}

/* Narrows w[0..n) of `kind` into dst. Integer targets wrap (two's
 * complement) as Cast specifies; floats go to int64 first (truncation). */
static void narrow(onyx_dtype to, void *dst, const wide *w, int64_t n, int kind, bool saturate) {
    /* EXPR sees `v`: the element as double (F), int64 (I) or uint64 (U). */
#define NARROW(ENUM, T, EXPR_F, EXPR_I, EXPR_U)                                            \
    case ONYX_DTYPE_##ENUM: {                                                              \
        T *d = dst;                                                                        \
        if (kind == K_F)                                                                   \
            for (int64_t i = 0; i < n; i++) {                                              \
                double v = w[i].f;                                                         \
                d[i] = (T)(EXPR_F);                                                        \
            }                                                                              \
        else if (kind == K_I)                                                              \
            for (int64_t i = 0; i < n; i++) {                                              \
                int64_t v = w[i].i;                                                        \
                d[i] = (T)(EXPR_I);                                                        \
            }                                                                              \
        else                                                                               \
            for (int64_t i = 0; i < n; i++) {                                              \
                uint64_t v = w[i].u;                                                       \
                d[i] = (T)(EXPR_U);                                                        \
            }                                                                              \
        return;                                                                            \
    }
#define NARROW_INT(ENUM, T) NARROW(ENUM, T, (uint64_t)f2i(v), (uint64_t)v, v)
#define NARROW_FLT(ENUM, T, ENC) NARROW(ENUM, T, ENC((float)v), ENC((float)v), ENC((float)v))
#define NARROW_F8(ENUM, F)                                                                 \
    NARROW(ENUM, uint8_t, mf_encode(F, v, saturate), mf_encode(F, (double)v, saturate),   \
           mf_encode(F, (double)v, saturate))
#define I4(x) ((((x) & 0xf) ^ 8) - 8)
    switch (to) {
        NARROW(FLOAT, float, v, v, v)
        NARROW(DOUBLE, double, v, v, v)
        NARROW_FLT(FLOAT16, uint16_t, onyx_f32_to_f16)
        NARROW_FLT(BFLOAT16, uint16_t, onyx_f32_to_bf16)
        NARROW_F8(FLOAT8E4M3FN, &mf_e4m3fn)
        NARROW_F8(FLOAT8E4M3FNUZ, &mf_e4m3fnuz)
        NARROW_F8(FLOAT8E5M2, &mf_e5m2)
        NARROW_F8(FLOAT8E5M2FNUZ, &mf_e5m2fnuz)
        NARROW(FLOAT4E2M1, uint8_t, mf_encode(&mf_e2m1, v, true),
               mf_encode(&mf_e2m1, (double)v, true), mf_encode(&mf_e2m1, (double)v, true))
        NARROW(FLOAT8E8M0, uint8_t, e8m0_encode_up((float)v, saturate),
               e8m0_encode_up((float)v, saturate), e8m0_encode_up((float)v, saturate))
        NARROW_INT(INT8, int8_t)
        NARROW_INT(INT16, int16_t)
        NARROW_INT(INT32, int32_t)
        NARROW_INT(INT64, int64_t)
        NARROW_INT(UINT8, uint8_t)
        NARROW_INT(UINT16, uint16_t)
        NARROW_INT(UINT32, uint32_t)
        NARROW(UINT64, uint64_t, f2u(v), (uint64_t)v, v)
        NARROW(INT4, int8_t, I4(f2i(v)), I4(v), I4((int64_t)(v & 0xf)))
        NARROW(UINT4, uint8_t, (uint64_t)f2i(v) & 0xf, (uint64_t)v & 0xf, v & 0xf)
        NARROW(BOOL, uint8_t, v != 0, v != 0, v != 0)
    default:
        return;
    }
#undef NARROW
#undef NARROW_INT
#undef NARROW_FLT
#undef NARROW_F8
#undef I4
}

static bool convertible(onyx_dtype t) {
    return onyx_dtype_is_valid(t) && t != ONYX_DTYPE_COMPLEX64 && t != ONYX_DTYPE_COMPLEX128;
}

static int kind_of(onyx_dtype t) {
    if (onyx_dtype_is_float(t) || t == ONYX_DTYPE_STRING) return K_F;
    return onyx_dtype_is_unsigned_int(t) ? K_U : K_I;
}

/* String targets: dst slots must hold NULL or heap strings (freed here). */
onyx_status onyx_convert(onyx_dtype to, void *dst, onyx_dtype from, const void *src, int64_t n,
                         bool saturate) {
    if (!convertible(to) || !convertible(from)) return ONYX_ERR_UNSUPPORTED;
    if (n <= 0) return ONYX_OK;
    if (to == from && to != ONYX_DTYPE_STRING) {
        if (dst != src) memmove(dst, src, onyx_dtype_bytes(to, n));
        return ONYX_OK;
    }
    if (to == ONYX_DTYPE_STRING) {
        char **d = dst;
        for (int64_t i = 0; i < n; i++) {
            char *s;
            if (from == ONYX_DTYPE_STRING) {
                const char *v = ((char *const *)src)[i];
                if (!v) v = "";
                size_t len = strlen(v);
                s = malloc(len + 1);
                if (s) memcpy(s, v, len + 1);
            } else {
                int kind;
                wide w = read1(from, src, i, &kind);
                s = format_wide(from, w, kind);
            }
            if (!s) return ONYX_ERR_OUT_OF_MEMORY;
            free(d[i]);
            d[i] = s;
        }
        return ONYX_OK;
    }
    wide w[CHUNK];
    size_t from_size = onyx_dtype_size(from), to_size = onyx_dtype_size(to);
    int want = kind_of(to);
    for (int64_t i = 0; i < n; i += CHUNK) {
        int64_t m = n - i < CHUNK ? n - i : CHUNK;
        int kind = widen(from, (const char *)src + (size_t)i * from_size, m, w, want);
        narrow(to, (char *)dst + (size_t)i * to_size, w, m, kind, saturate);
    }
    return ONYX_OK;
}
