/* test_dtype.c - element-type facts and conversions (dtype.c): exhaustive
 * float16 checks against the compiler's own _Float16, float8/float4 codes
 * from the ONNX backend test data, and Cast's integer/bool/string rules. */
#include "core/tensor.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

__extension__ typedef _Float16 half_ref; /* gcc's IEEE binary16, the oracle */

static float ref_f16_to_f32(uint16_t h) {
    half_ref v;
    memcpy(&v, &h, 2);
    return (float)v;
}

static uint16_t ref_f32_to_f16(float f) {
    half_ref v = (half_ref)f;
    uint16_t h;
    memcpy(&h, &v, 2);
    return h;
}

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

UNIT_TEST(dtype_facts) {
    CHECK(onyx_dtype_size(ONYX_DTYPE_FLOAT) == 4);
    CHECK(onyx_dtype_size(ONYX_DTYPE_STRING) == sizeof(char *));
    CHECK(onyx_dtype_size(ONYX_DTYPE_INT4) == 1);
    CHECK(onyx_dtype_size(ONYX_DTYPE_COMPLEX128) == 16);
    CHECK(onyx_dtype_size(ONYX_DTYPE_UNDEFINED) == 0);
    CHECK(onyx_dtype_size((onyx_dtype)99) == 0);
    CHECK(strcmp(onyx_dtype_name(ONYX_DTYPE_FLOAT8E4M3FNUZ), "float8e4m3fnuz") == 0);
    CHECK(strcmp(onyx_dtype_name(ONYX_DTYPE_INT64), "int64") == 0);
    CHECK(onyx_dtype_is_float(ONYX_DTYPE_BFLOAT16) && !onyx_dtype_is_float(ONYX_DTYPE_INT8));
    CHECK(onyx_dtype_is_signed_int(ONYX_DTYPE_INT4) && !onyx_dtype_is_signed_int(ONYX_DTYPE_BOOL));
    CHECK(onyx_dtype_is_unsigned_int(ONYX_DTYPE_UINT64) &&
          !onyx_dtype_is_unsigned_int(ONYX_DTYPE_BOOL));
    CHECK(onyx_dtype_is_valid(24) && !onyx_dtype_is_valid(0) && !onyx_dtype_is_valid(25));
    CHECK(onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, 3) == 24);
    CHECK(onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, INT64_MAX) == SIZE_MAX);
    CHECK(onyx_dtype_bytes(ONYX_DTYPE_DOUBLE, -1) == SIZE_MAX);
}

UNIT_TEST(dtype_f16_all_bit_patterns) {
    int bad_decode = 0, bad_trip = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float ours = onyx_f16_to_f32((uint16_t)h), ref = ref_f16_to_f32((uint16_t)h);
        if (isnan(ref)) {
            if (!isnan(ours)) bad_decode++;
            if (!isnan(onyx_f16_to_f32(onyx_f32_to_f16(ours)))) bad_trip++;
            continue;
        }
        if (bits(ours) != bits(ref)) bad_decode++;
        if (onyx_f32_to_f16(ours) != h) bad_trip++;
    }
    CHECK(bad_decode == 0);
    CHECK(bad_trip == 0);
}

UNIT_TEST(dtype_f32_to_f16_rounding) {
    /* Every value halfway between two neighbouring halves, and one float ulp
     * either side of it: the cases round-to-nearest-even gets wrong first. */
    int bad = 0;
    for (uint32_t h = 0; h < 0x7c00; h++) {
        double lo = ref_f16_to_f32((uint16_t)h);
        double hi = h + 1 < 0x7c00 ? ref_f16_to_f32((uint16_t)(h + 1)) : 65536.0;
        float mid = (float)((lo + hi) / 2);
        float cases[3] = {mid, nextafterf(mid, 0), nextafterf(mid, INFINITY)};
        for (int k = 0; k < 3; k++)
            for (int s = 0; s < 2; s++) {
                float f = s ? -cases[k] : cases[k];
                if (onyx_f32_to_f16(f) != ref_f32_to_f16(f)) bad++;
            }
    }
    /* A sparse sweep over all float bit patterns (NaNs only checked as NaN). */
    for (uint64_t u = 0; u < 0x100000000ull; u += 4099) {
        float f = from_bits((uint32_t)u);
        uint16_t ours = onyx_f32_to_f16(f), ref = ref_f32_to_f16(f);
        if (isnan(f) ? !isnan(onyx_f16_to_f32(ours)) : ours != ref) bad++;
    }
    CHECK(bad == 0);
    CHECK(onyx_f32_to_f16(65519.0f) == 0x7bff);
    CHECK(onyx_f32_to_f16(65520.0f) == 0x7c00);
    CHECK(onyx_f32_to_f16(-0.0f) == 0x8000);
}

UNIT_TEST(dtype_bf16) {
    CHECK(onyx_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(onyx_f32_to_bf16(from_bits(0x3f808000)) == 0x3f80); /* tie, even stays */
    CHECK(onyx_f32_to_bf16(from_bits(0x3f818000)) == 0x3f82); /* tie, odd rounds up */
    CHECK(onyx_f32_to_bf16(from_bits(0x3f808001)) == 0x3f81);
    CHECK(onyx_f32_to_bf16(from_bits(0x7f7fffff)) == 0x7f80); /* overflows to inf */
    CHECK(isnan(onyx_bf16_to_f32(onyx_f32_to_bf16(NAN))));
    CHECK(onyx_bf16_to_f32(0xc000) == -2.0f);
    for (uint32_t h = 0; h < 65536; h++) {
        float f = onyx_bf16_to_f32((uint16_t)h);
        if (!isnan(f) && onyx_f32_to_bf16(f) != h) {
            CHECK(onyx_f32_to_bf16(f) == h);
            break;
        }
    }
}

/* Inputs and expected codes of the ONNX backend tests test_cast_FLOAT_to_*
 * and test_cast_no_saturate_FLOAT_to_* (onnx 1.19). */
static const float f8_in[15] = {0.47892547f, 0.48033667f, 0.49968487f, 0.81910545f, 0.47031248f,
                                0.72290379f, 1e6f,        1e-7f,       NAN,         INFINITY,
                                INFINITY,    -INFINITY,   -1e-7f,      1e-7f,       -1e6f};

static void check_codes(int *unit_failed_, onyx_dtype t, bool saturate, const char *hex) {
    for (int i = 0; i < 15; i++) {
        unsigned want;
        sscanf(hex + 2 * i, "%2x", &want);
        uint8_t got = onyx_f32_to_f8(t, f8_in[i], saturate);
        if (got != want) {
            fprintf(stderr, "  %s sat=%d [%d]: got %02x want %02x\n", onyx_dtype_name(t),
                    saturate, i, got, want);
            *unit_failed_ = 1;
        }
    }
}

UNIT_TEST(dtype_f8_onnx_codes) {
    check_codes(unit_failed_, ONYX_DTYPE_FLOAT8E4M3FN, false, "2f2f30352f347f007f7f7fff8000ff");
    check_codes(unit_failed_, ONYX_DTYPE_FLOAT8E4M3FNUZ, false, "3737383d373c800080808080000080");
    check_codes(unit_failed_, ONYX_DTYPE_FLOAT8E5M2, false, "3838383b383a7c007e7c7cfc8000fc");
    check_codes(unit_failed_, ONYX_DTYPE_FLOAT8E5M2FNUZ, false, "3c3c3c3f3c3e800080808080000080");
    check_codes(unit_failed_, ONYX_DTYPE_FLOAT8E5M2, true, "3838383b383a7b007e7b7bfb8000fb");
    CHECK(onyx_f32_to_f8(ONYX_DTYPE_FLOAT8E4M3FN, 1e6f, true) == 0x7e);
    CHECK(onyx_f32_to_f8(ONYX_DTYPE_FLOAT8E4M3FN, 464.0f, false) == 0x7e); /* tie to even */
    CHECK(onyx_f32_to_f8(ONYX_DTYPE_FLOAT8E4M3FN, 465.0f, false) == 0x7f); /* NaN */
}

UNIT_TEST(dtype_f8_decode) {
    CHECK(onyx_f8_to_f32(ONYX_DTYPE_FLOAT8E4M3FN, 0x7e) == 448.0f);
    CHECK(onyx_f8_to_f32(ONYX_DTYPE_FLOAT8E4M3FN, 0x01) == 0x1p-9f);
    CHECK(isnan(onyx_f8_to_f32(ONYX_DTYPE_FLOAT8E4M3FN, 0xff)));
    CHECK(onyx_f8_to_f32(ONYX_DTYPE_FLOAT8E4M3FNUZ, 0x7f) == 240.0f);
    CHECK(onyx_f8_to_f32(ONYX_DTYPE_FLOAT8E4M3FNUZ, 0x01) == 0x1p-10f);
    CHECK(isnan(onyx_f8_to_f32(ONYX_DTYPE_FLOAT8E4M3FNUZ, 0x80)));
    CHECK(onyx_f8_to_f32(ONYX_DTYPE_FLOAT8E5M2, 0x7b) == 57344.0f);
    CHECK(isinf(onyx_f8_to_f32(ONYX_DTYPE_FLOAT8E5M2, 0xfc)));
    CHECK(onyx_f8_to_f32(ONYX_DTYPE_FLOAT8E5M2FNUZ, 0x01) == 0x1p-17f);
    CHECK(onyx_f8_to_f32(ONYX_DTYPE_FLOAT8E8M0, 127) == 1.0f);
    CHECK(onyx_f8_to_f32(ONYX_DTYPE_FLOAT8E8M0, 0) == 0x1p-127f);
    /* Every finite code survives decode + encode in every format. */
    onyx_dtype f8[4] = {ONYX_DTYPE_FLOAT8E4M3FN, ONYX_DTYPE_FLOAT8E4M3FNUZ, ONYX_DTYPE_FLOAT8E5M2,
                        ONYX_DTYPE_FLOAT8E5M2FNUZ};
    for (int k = 0; k < 4; k++)
        for (int c = 0; c < 256; c++) {
            float v = onyx_f8_to_f32(f8[k], (uint8_t)c);
            if (isnan(v) || isinf(v)) continue;
            if (onyx_f32_to_f8(f8[k], v, false) != c) {
                fprintf(stderr, "  %s code %02x -> %g\n", onyx_dtype_name(f8[k]), c, v);
                *unit_failed_ = 1;
            }
        }
}

UNIT_TEST(dtype_f4_and_e8m0) {
    /* test_cast_FLOAT_to_FLOAT4E2M1, unpacked. */
    const float in[15] = {0.48f, 0.25f, 1.05f, -3.5f, -8.0f, 9.0f, 1e6f, 1e-7f,
                          NAN,   INFINITY, INFINITY, -INFINITY, -4.0f, 0.01f, -0.0f};
    const uint8_t want[15] = {1, 0, 2, 0xe, 0xf, 7, 7, 0, 8, 7, 7, 0xf, 0xe, 0, 8};
    for (int i = 0; i < 15; i++) CHECK(onyx_f32_to_f4(in[i]) == want[i]);
    for (int c = 0; c < 16; c++) CHECK(onyx_f32_to_f4(onyx_f4_to_f32((uint8_t)c)) == c);
    CHECK(onyx_f4_to_f32(0x7) == 6.0f && onyx_f4_to_f32(0x1) == 0.5f);
    /* test_cast_e8m0_FLOAT_to_FLOAT8E8M0 (round up, saturate). */
    const float e_in[8] = {0.0f, 0.124f, 0.25f, 0.5f, 1.1f, 2.0f, 4.0f, 8.0f};
    const uint8_t e_want[8] = {0x00, 0x7c, 0x7d, 0x7e, 0x80, 0x80, 0x81, 0x82};
    for (int i = 0; i < 8; i++)
        CHECK(onyx_f32_to_f8(ONYX_DTYPE_FLOAT8E8M0, e_in[i], true) == e_want[i]);
}

UNIT_TEST(dtype_convert_numeric) {
    const float f[6] = {200.0f, -1.5f, 2.7f, -0.0f, 300.0f, NAN};
    int8_t i8[6];
    uint8_t u8[6], b[6];
    CHECK(onyx_convert(ONYX_DTYPE_INT8, i8, ONYX_DTYPE_FLOAT, f, 5, true) == ONYX_OK);
    CHECK(i8[0] == -56 && i8[1] == -1 && i8[2] == 2 && i8[3] == 0 && i8[4] == 44);
    const float neg[1] = {-1.0f};
    CHECK(onyx_convert(ONYX_DTYPE_UINT8, u8, ONYX_DTYPE_FLOAT, neg, 1, true) == ONYX_OK);
    CHECK(u8[0] == 255);
    CHECK(onyx_convert(ONYX_DTYPE_BOOL, b, ONYX_DTYPE_FLOAT, f, 6, true) == ONYX_OK);
    CHECK(b[0] == 1 && b[3] == 0 && b[5] == 1);
    const int16_t s16[2] = {200, -129};
    CHECK(onyx_convert(ONYX_DTYPE_INT8, i8, ONYX_DTYPE_INT16, s16, 2, true) == ONYX_OK);
    CHECK(i8[0] == -56 && i8[1] == 127);
    /* test_cast_FLOAT_to_INT4 / UINT4: values wrap to four bits. */
    float r[25];
    int8_t i4[25];
    uint8_t u4[25];
    for (int i = 0; i < 25; i++) r[i] = (float)(i - 9);
    CHECK(onyx_convert(ONYX_DTYPE_INT4, i4, ONYX_DTYPE_FLOAT, r, 25, true) == ONYX_OK);
    CHECK(onyx_convert(ONYX_DTYPE_UINT4, u4, ONYX_DTYPE_FLOAT, r, 25, true) == ONYX_OK);
    CHECK(i4[0] == 7 && i4[1] == -8 && i4[17] == -8 && i4[24] == -1 && i4[16] == 7);
    CHECK(u4[0] == 7 && u4[8] == 15 && u4[24] == 15 && u4[9] == 0);
    /* int4 reads the low nibble, sign-extended whatever the high bits hold. */
    const uint8_t raw4[2] = {0x0f, 0xf8};
    int32_t w[2];
    CHECK(onyx_convert(ONYX_DTYPE_INT32, w, ONYX_DTYPE_INT4, raw4, 2, true) == ONYX_OK);
    CHECK(w[0] == -1 && w[1] == -8);
    const uint64_t big[2] = {UINT64_MAX, 1ull << 63};
    double d[2];
    int64_t i64[2];
    CHECK(onyx_convert(ONYX_DTYPE_DOUBLE, d, ONYX_DTYPE_UINT64, big, 2, true) == ONYX_OK);
    CHECK(d[0] == 18446744073709551616.0 && d[1] == 9223372036854775808.0);
    CHECK(onyx_convert(ONYX_DTYPE_INT64, i64, ONYX_DTYPE_UINT64, big, 2, true) == ONYX_OK);
    CHECK(i64[0] == -1 && i64[1] == INT64_MIN);
    uint16_t h[3];
    const double dd[3] = {1.0, 65504.0, 1e10};
    CHECK(onyx_convert(ONYX_DTYPE_FLOAT16, h, ONYX_DTYPE_DOUBLE, dd, 3, true) == ONYX_OK);
    CHECK(h[0] == 0x3c00 && h[1] == 0x7bff && h[2] == 0x7c00);
    CHECK(onyx_convert(ONYX_DTYPE_FLOAT, d, ONYX_DTYPE_COMPLEX64, f, 1, true) ==
          ONYX_ERR_UNSUPPORTED);
    /* More than one chunk. */
    enum { N = 1000 };
    int32_t *src = malloc(N * sizeof *src);
    float *dst = malloc(N * sizeof *dst);
    for (int i = 0; i < N; i++) src[i] = i * 3 - 500;
    CHECK(onyx_convert(ONYX_DTYPE_FLOAT, dst, ONYX_DTYPE_INT32, src, N, true) == ONYX_OK);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += dst[i] != (float)(i * 3 - 500);
    CHECK(bad == 0);
    free(src);
    free(dst);
}

UNIT_TEST(dtype_convert_strings) {
    const char *in[7] = {"3.14", "+INF", "-inf", "NaN", "1e-5", "1E8", "100.5"};
    float f[7];
    CHECK(onyx_convert(ONYX_DTYPE_FLOAT, f, ONYX_DTYPE_STRING, in, 7, true) == ONYX_OK);
    CHECK(f[0] == 3.14f && isinf(f[1]) && f[1] > 0 && isinf(f[2]) && f[2] < 0 && isnan(f[3]));
    CHECK(f[4] == 1e-5f && f[5] == 1e8f);
    int64_t i[7];
    CHECK(onyx_convert(ONYX_DTYPE_INT64, i, ONYX_DTYPE_STRING, in + 6, 1, true) == ONYX_OK);
    CHECK(i[0] == 100);
    const char *big[1] = {"9007199254740993"}; /* 2^53 + 1: exact, not through double */
    CHECK(onyx_convert(ONYX_DTYPE_INT64, i, ONYX_DTYPE_STRING, big, 1, true) == ONYX_OK);
    CHECK(i[0] == 9007199254740993LL);

    const float v[5] = {0.1f, 1.0f, NAN, -INFINITY, 314.15926f};
    char *s[5] = {0};
    CHECK(onyx_convert(ONYX_DTYPE_STRING, s, ONYX_DTYPE_FLOAT, v, 5, true) == ONYX_OK);
    CHECK(s[0] && strcmp(s[0], "0.1") == 0);
    CHECK(s[1] && strcmp(s[1], "1") == 0);
    CHECK(s[2] && strcmp(s[2], "NaN") == 0);
    CHECK(s[3] && strcmp(s[3], "-INF") == 0);
    CHECK(s[4] && strcmp(s[4], "314.15927") == 0);
    const int32_t n[2] = {-7, 42};
    CHECK(onyx_convert(ONYX_DTYPE_STRING, s, ONYX_DTYPE_INT32, n, 2, true) == ONYX_OK);
    CHECK(strcmp(s[0], "-7") == 0 && strcmp(s[1], "42") == 0);
    for (int k = 0; k < 5; k++) free(s[k]);
}

UNIT_TEST(dtype_get_element) {
    const double d[2] = {-2.9, 7.5};
    onyx_tensor t = {.dtype = ONYX_DTYPE_DOUBLE, .ndim = 1, .dims = {2}, .data = (void *)d};
    CHECK(onyx_tensor_get_i64(&t, 0) == -2 && onyx_tensor_get_i64(&t, 1) == 7);
    CHECK(onyx_tensor_get_f64(&t, 1) == 7.5);
    const uint16_t h[1] = {0x3e00}; /* 1.5 */
    onyx_tensor th = {.dtype = ONYX_DTYPE_FLOAT16, .ndim = 1, .dims = {1}, .data = (void *)h};
    CHECK(onyx_tensor_get_f64(&th, 0) == 1.5);
    const uint32_t u[1] = {4000000000u};
    onyx_tensor tu = {.dtype = ONYX_DTYPE_UINT32, .ndim = 1, .dims = {1}, .data = (void *)u};
    CHECK(onyx_tensor_get_i64(&tu, 0) == 4000000000LL);
    CHECK(onyx_tensor_get_f64(&tu, 0) == 4e9);
}
