/* test_signal.c - the signal, random, string and training families beyond
 * the ONNX node tests: DFT/STFT on sizes the radix-2 and Bluestein paths
 * both take (1, 2, 3, 5, 7, 17, 63, 64, 100...) against a direct O(n^2) sum
 * in double, axes with inner strides, onesided/inverse/dft_length; window
 * and MelWeightMatrix edge cases; the numpy-compatible generator against
 * values printed by numpy; seeded/unseeded random ops; the RE2 -> POSIX
 * translation, UTF-8 case mapping, whitespace splitting and string
 * TfIdfVectorizer pools. Each case runs a one-node model built in memory. */
#include "ops/rng.h"
#include "onyx.h"
#include "testmodel.h"
#include "unit.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846

// ----------------------------------------------------------------------------
// DFT against a direct sum

/* x (outer, N, inner, comp) -> y (outer, out_len, inner, 2) by the
 * definition, in double. */
static void direct_dft(const double *x, int64_t outer, int64_t N, int64_t inner, int comp, int64_t L, bool inverse,
                       bool onesided, double *y) {
    int64_t out_len = onesided ? L / 2 + 1 : L, take = N < L ? N : L;
    double sign = inverse ? 1.0 : -1.0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++)
            for (int64_t k = 0; k < out_len; k++) {
                double re = 0, im = 0;
                for (int64_t n = 0; n < take; n++) {
                    const double *v = x + ((o * N + n) * inner + i) * comp;
                    double a = sign * 2 * PI * (double)((k * n) % L) / (double)L, c = cos(a), s = sin(a);
                    double vr = v[0], vi = comp == 2 ? v[1] : 0;
                    re += vr * c - vi * s;
                    im += vr * s + vi * c;
                }
                double *d = y + ((o * out_len + k) * inner + i) * 2;
                d[0] = inverse ? re / (double)L : re;
                d[1] = inverse ? im / (double)L : im;
            }
}

static void check_dft(int *unit_failed_, int64_t outer, int64_t N, int64_t inner, int comp, int64_t L, bool inverse,
                      bool onesided, int opset) {
    int64_t count = outer * N * inner * comp;
    double *x = malloc((size_t)count * sizeof(double));
    for (int64_t i = 0; i < count; i++) x[i] = sin(0.37 * (double)i) + 0.25 * cos(1.3 * (double)(i * i % 17));
    int64_t out_len = onesided ? L / 2 + 1 : L, ycount = outer * out_len * inner * 2;
    double *want = malloc((size_t)ycount * sizeof(double));
    direct_dft(x, outer, N, inner, comp, L, inverse, onesided, want);
    int64_t dims[4] = {outer, N, inner, comp}, one = 1, axis = 1;
    int64_t Lv = L;
    onyx_tensor_view ins[3] = {tm_view(ONYX_DTYPE_DOUBLE, 4, dims, x)};
    if (L != N) ins[1] = tm_view(ONYX_DTYPE_INT64, 0, &one, &Lv);
    tm_buf node = tm_op("DFT");
    if (inverse) tm_attr_int(&node, "inverse", 1);
    if (onesided) tm_attr_int(&node, "onesided", 1);
    int nin = 2;
    if (opset >= 20) {
        ins[2] = tm_view(ONYX_DTYPE_INT64, 0, &one, &axis);
        nin = 3;
    } else {
        tm_attr_int(&node, "axis", 1);
    }
    tm_run h;
    onyx_dtype ot = ONYX_DTYPE_DOUBLE;
    onyx_status st = tm_run_node(&h, &node, opset, nin, ins, 1, &ot);
    CHECK(st == ONYX_OK);
    if (st) fprintf(stderr, "  %s\n", h.err.message);
    if (st == ONYX_OK) {
        CHECK(h.out[0].ndim == 4 && h.out[0].dims[1] == out_len && h.out[0].dims[3] == 2);
        const double *y = h.out[0].data;
        double worst = 0, scale = 1;
        for (int64_t i = 0; i < ycount; i++) scale = fmax(scale, fabs(want[i]));
        for (int64_t i = 0; i < ycount; i++) worst = fmax(worst, fabs(y[i] - want[i]));
        if (worst > 1e-12 * scale * (double)(N + L))
            fprintf(stderr, "  DFT N=%lld L=%lld comp=%d inverse=%d onesided=%d: error %g\n", (long long)N,
                    (long long)L, comp, inverse, onesided, worst);
        CHECK(worst <= 1e-12 * scale * (double)(N + L));
    }
    tm_run_fini(&h);
    free(x);
    free(want);
}

UNIT_TEST(signal_dft_sizes_against_direct_sum) {
    static const int64_t sizes[] = {1, 2, 3, 4, 5, 7, 8, 12, 17, 63, 64, 100, 127, 128, 243};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int64_t n = sizes[i];
        check_dft(unit_failed_, 2, n, 3, 1, n, false, false, 20);
        check_dft(unit_failed_, 1, n, 2, 2, n, false, false, 20);
        check_dft(unit_failed_, 2, n, 1, 2, n, true, false, 17);
        check_dft(unit_failed_, 1, n, 3, 1, n, false, true, 17);
    }
}

UNIT_TEST(signal_dft_length_pads_and_truncates) {
    check_dft(unit_failed_, 2, 10, 3, 1, 16, false, false, 20); /* zero-padded to a power of two */
    check_dft(unit_failed_, 2, 10, 1, 2, 7, false, true, 20);   /* truncated, Bluestein */
    check_dft(unit_failed_, 1, 33, 2, 2, 50, true, false, 17);
}

UNIT_TEST(signal_dft_rejects_bad_input) {
    double x[8] = {0};
    int64_t dims[3] = {2, 2, 2}, one = 1, bad_axis = 2, zero = 0;
    onyx_dtype ot = ONYX_DTYPE_DOUBLE;
    tm_run h;
    /* The last axis holds real/imaginary parts, so it cannot be the DFT axis. */
    onyx_tensor_view ins[3] = {tm_view(ONYX_DTYPE_DOUBLE, 3, dims, x), {0}, tm_view(ONYX_DTYPE_INT64, 0, &one, &bad_axis)};
    tm_buf node = tm_op("DFT");
    CHECK(tm_run_node(&h, &node, 20, 3, ins, 1, &ot) == ONYX_ERR_INVALID_ARGUMENT);
    tm_run_fini(&h);
    ins[1] = tm_view(ONYX_DTYPE_INT64, 0, &one, &zero);
    ins[2].dtype = ONYX_DTYPE_UNDEFINED;
    node = tm_op("DFT");
    CHECK(tm_run_node(&h, &node, 20, 2, ins, 1, &ot) == ONYX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(h.err.message, "dft_length") != NULL);
    tm_run_fini(&h);
    int64_t dims3[3] = {2, 2, 3}; /* last dim 3: neither real nor complex */
    double y[12] = {0};
    ins[0] = tm_view(ONYX_DTYPE_DOUBLE, 3, dims3, y);
    ins[1].dtype = ONYX_DTYPE_UNDEFINED;
    node = tm_op("DFT");
    CHECK(tm_run_node(&h, &node, 20, 1, ins, 1, &ot) == ONYX_ERR_INVALID_ARGUMENT);
    tm_run_fini(&h);
}

// ----------------------------------------------------------------------------
// STFT

UNIT_TEST(signal_stft_against_direct_sum) {
    enum { B = 2, LEN = 40, FL = 7, STEP = 3 };
    double sig[B * LEN], win[FL];
    for (int i = 0; i < B * LEN; i++) sig[i] = cos(0.21 * i) + 0.1 * (i % 5);
    for (int k = 0; k < FL; k++) win[k] = 0.5 - 0.5 * cos(2 * PI * k / FL);
    int64_t sdims[3] = {B, LEN, 1}, wdims[1] = {FL}, one = 1, step = STEP;
    onyx_tensor_view ins[3] = {tm_view(ONYX_DTYPE_DOUBLE, 3, sdims, sig), tm_view(ONYX_DTYPE_INT64, 0, &one, &step),
                               tm_view(ONYX_DTYPE_DOUBLE, 1, wdims, win)};
    tm_buf node = tm_op("STFT");
    tm_run h;
    onyx_dtype ot = ONYX_DTYPE_DOUBLE;
    onyx_status st = tm_run_node(&h, &node, 17, 3, ins, 1, &ot);
    CHECK(st == ONYX_OK);
    int frames = 1 + (LEN - FL) / STEP, bins = FL / 2 + 1;
    if (st == ONYX_OK) {
        CHECK(h.out[0].ndim == 4 && h.out[0].dims[1] == frames && h.out[0].dims[2] == bins);
        const double *y = h.out[0].data;
        double worst = 0;
        for (int b = 0; b < B; b++)
            for (int f = 0; f < frames; f++)
                for (int k = 0; k < bins; k++) {
                    double re = 0, im = 0;
                    for (int n = 0; n < FL; n++) {
                        double v = sig[b * LEN + f * STEP + n] * win[n], a = -2 * PI * k * n / FL;
                        re += v * cos(a);
                        im += v * sin(a);
                    }
                    const double *d = y + ((b * frames + f) * bins + k) * 2;
                    worst = fmax(worst, fmax(fabs(d[0] - re), fabs(d[1] - im)));
                }
        CHECK(worst < 1e-12);
    }
    tm_run_fini(&h);
    /* A frame longer than the signal is refused. */
    int64_t big = LEN + 1;
    onyx_tensor_view ins2[4] = {ins[0], ins[1], {0}, tm_view(ONYX_DTYPE_INT64, 0, &one, &big)};
    node = tm_op("STFT");
    CHECK(tm_run_node(&h, &node, 17, 4, ins2, 1, &ot) == ONYX_ERR_INVALID_ARGUMENT);
    tm_run_fini(&h);
}

// ----------------------------------------------------------------------------
// Windows and MelWeightMatrix

UNIT_TEST(signal_windows_edge_cases) {
    static const char *const ops[] = {"HannWindow", "HammingWindow", "BlackmanWindow"};
    int64_t one = 1, size1 = 1, size0 = 0, size5 = 5;
    for (int o = 0; o < 3; o++) {
        tm_run h;
        onyx_dtype ot = ONYX_DTYPE_FLOAT;
        /* Symmetric, length 1: [1] rather than 0/0. */
        onyx_tensor_view in = tm_view(ONYX_DTYPE_INT64, 0, &one, &size1);
        tm_buf node = tm_op(ops[o]);
        tm_attr_int(&node, "periodic", 0);
        CHECK(tm_run_node(&h, &node, 17, 1, &in, 1, &ot) == ONYX_OK);
        CHECK(h.out[0].dims[0] == 1 && ((float *)h.out[0].data)[0] == 1.0f);
        tm_run_fini(&h);
        in = tm_view(ONYX_DTYPE_INT64, 0, &one, &size0);
        node = tm_op(ops[o]);
        CHECK(tm_run_node(&h, &node, 17, 1, &in, 1, &ot) == ONYX_OK);
        CHECK(h.out[0].ndim == 1 && h.out[0].dims[0] == 0);
        tm_run_fini(&h);
        /* Periodic length 5 against the closed form, in double. */
        in = tm_view(ONYX_DTYPE_INT64, 0, &one, &size5);
        node = tm_op(ops[o]);
        tm_attr_int(&node, "output_datatype", ONYX_DTYPE_DOUBLE);
        ot = ONYX_DTYPE_DOUBLE;
        CHECK(tm_run_node(&h, &node, 17, 1, &in, 1, &ot) == ONYX_OK);
        for (int k = 0; k < 5 && h.out[0].data; k++) {
            double t = 2 * PI * k / 5, want = o == 0   ? 0.5 - 0.5 * cos(t)
                                              : o == 1 ? 25.0 / 46 - 21.0 / 46 * cos(t)
                                                       : 0.42 - 0.5 * cos(t) + 0.08 * cos(2 * t);
            CHECK_NEAR(((double *)h.out[0].data)[k], want, 1e-15);
        }
        tm_run_fini(&h);
    }
    /* An unsupported output_datatype fails at load. */
    tm_run h;
    onyx_dtype ot = ONYX_DTYPE_STRING;
    onyx_tensor_view in = tm_view(ONYX_DTYPE_INT64, 0, &one, &size5);
    tm_buf node = tm_op("HannWindow");
    tm_attr_int(&node, "output_datatype", ONYX_DTYPE_STRING);
    CHECK(tm_run_node(&h, &node, 17, 1, &in, 1, &ot) == ONYX_ERR_INVALID_MODEL);
    tm_run_fini(&h);
}

UNIT_TEST(signal_mel_rejects_edges_above_nyquist) {
    int64_t one = 1, bins = 8, dft = 16, rate = 8000;
    float lo = 0, hi = 7900; /* above the 4000 Hz Nyquist frequency */
    onyx_tensor_view ins[5] = {tm_view(ONYX_DTYPE_INT64, 0, &one, &bins), tm_view(ONYX_DTYPE_INT64, 0, &one, &dft),
                               tm_view(ONYX_DTYPE_INT64, 0, &one, &rate), tm_view(ONYX_DTYPE_FLOAT, 0, &one, &lo),
                               tm_view(ONYX_DTYPE_FLOAT, 0, &one, &hi)};
    tm_run h;
    onyx_dtype ot = ONYX_DTYPE_FLOAT;
    tm_buf node = tm_op("MelWeightMatrix");
    CHECK(tm_run_node(&h, &node, 17, 5, ins, 1, &ot) == ONYX_ERR_INVALID_ARGUMENT);
    CHECK(strstr(h.err.message, "Nyquist") != NULL);
    tm_run_fini(&h);
}

// ----------------------------------------------------------------------------
// The generator against numpy (values printed by numpy 2.4)

UNIT_TEST(random_generator_matches_numpy) {
    onyx_mt19937 mt;
    onyx_mt_seed(&mt, 0);
    CHECK(onyx_mt_double(&mt) == 0.5488135039273248);
    CHECK(onyx_mt_double(&mt) == 0.7151893663724195);
    CHECK(onyx_mt_double(&mt) == 0.6027633760716439);
    onyx_mt_seed(&mt, 0);
    static const double normals[5] = {1.764052345967664, 0.4001572083672233, 0.9787379841057392,
                                      2.240893199201458, 1.8675579901499675};
    for (int i = 0; i < 5; i++) CHECK(onyx_mt_gauss(&mt) == normals[i]);
    /* RandomState(42).binomial(1, p) */
    static const double p[10] = {0.0, 1.0, 0.3, 0.7, 0.5, 0.5, 0.9, 0.1, 0.5, 0.5};
    static const int draws[10] = {0, 1, 1, 1, 0, 0, 1, 0, 1, 1};
    onyx_mt_seed(&mt, 42);
    for (int i = 0; i < 10; i++) CHECK(onyx_mt_bernoulli(&mt, p[i]) == draws[i]);
    onyx_mt_seed(&mt, 4294967295u);
    CHECK(onyx_mt_double(&mt) == 0.0976320289940138);
}

UNIT_TEST(random_ops_seeded_and_unseeded) {
    int64_t shape[2] = {3, 4};
    onyx_dtype ot = ONYX_DTYPE_FLOAT;
    float first[12], second[12];
    for (int seeded = 0; seeded < 2; seeded++) {
        tm_run h;
        tm_buf node = tm_op("RandomNormal");
        tm_attr_ints(&node, "shape", 2, shape);
        if (seeded) tm_attr_float(&node, "seed", 5.0f);
        CHECK(tm_run_node(&h, &node, 22, 0, NULL, 1, &ot) == ONYX_OK);
        if (h.out[0].data) memcpy(first, h.out[0].data, sizeof first);
        /* A second run of the same session. */
        onyx_tensor_view out;
        CHECK(onyx_session_run_tensors(h.session, 0, NULL, NULL, 1, h.out_names, &out, &h.err) == ONYX_OK);
        if (out.data) memcpy(second, out.data, sizeof second);
        CHECK((memcmp(first, second, sizeof first) == 0) == (seeded == 1));
        tm_run_fini(&h);
    }
    /* Multinomial: a class with all the mass is always drawn. */
    float logits[6] = {-1000, 3, -1000, 0, -1000, -1000};
    int64_t ldims[2] = {2, 3};
    onyx_tensor_view in = tm_view(ONYX_DTYPE_FLOAT, 2, ldims, logits);
    tm_run h;
    tm_buf node = tm_op("Multinomial");
    tm_attr_int(&node, "sample_size", 50);
    tm_attr_int(&node, "dtype", ONYX_DTYPE_INT64);
    ot = ONYX_DTYPE_INT64;
    CHECK(tm_run_node(&h, &node, 7, 1, &in, 1, &ot) == ONYX_OK);
    CHECK(h.out[0].ndim == 2 && h.out[0].dims[0] == 2 && h.out[0].dims[1] == 50);
    for (int i = 0; i < 100 && h.out[0].data; i++) CHECK(((int64_t *)h.out[0].data)[i] == (i < 50 ? 1 : 0));
    tm_run_fini(&h);
    /* Bernoulli refuses probabilities outside [0, 1]. */
    float probs[3] = {0.5f, 1.5f, 0.1f};
    int64_t pd[1] = {3};
    in = tm_view(ONYX_DTYPE_FLOAT, 1, pd, probs);
    node = tm_op("Bernoulli");
    ot = ONYX_DTYPE_FLOAT;
    CHECK(tm_run_node(&h, &node, 15, 1, &in, 1, &ot) == ONYX_ERR_INVALID_ARGUMENT);
    tm_run_fini(&h);
}

// ----------------------------------------------------------------------------
// Strings

/* Runs `node` on a 1-D string input; StringSplit (two outputs) passes
 * nout 2, the second output being int64. */
static onyx_status run_strings(tm_run *h, tm_buf *node, int opset, int n, const char *const *s, onyx_dtype ot,
                               int nout) {
    int64_t dims[1] = {n};
    onyx_tensor_view in = tm_view(ONYX_DTYPE_STRING, 1, dims, s);
    return tm_run_node(h, node, opset, 1, &in, nout, (onyx_dtype[]){ot, ONYX_DTYPE_INT64});
}

UNIT_TEST(string_regex_translation) {
    static const struct {
        const char *pattern, *text;
        bool match;
    } cases[] = {
        {"\\d+", "12345", true},       {"\\d+", "12a", false},       {"[^\\s]+", "abc", true},
        {"[^\\s]+", "a c", false},     {"(?i)abc", "AbC", true},     {"a.*?b", "axxb", true},
        {"[\\]a]+", "a]a", true},      {"[a\\-z]+", "a-z", true},    {"[a\\-z]+", "b", false},
        {"x{2,3}", "xxxx", false},     {"(?:ab)+", "abab", true},    {"\\x41\\.", "A.", true},
        {"a|b", "b", true},            {"\\w+@\\w+\\.com", "me@x.com", true},
        {"(?P<year>\\d{4})-\\d\\d", "2024-05", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tm_run h;
        tm_buf node = tm_op("RegexFullMatch");
        tm_attr_str(&node, "pattern", cases[i].pattern);
        const char *t[1] = {cases[i].text};
        onyx_status st = run_strings(&h, &node, 20, 1, t, ONYX_DTYPE_BOOL, 1);
        CHECK(st == ONYX_OK);
        if (st == ONYX_OK && ((uint8_t *)h.out[0].data)[0] != cases[i].match)
            fprintf(stderr, "  pattern %s on %s\n", cases[i].pattern, cases[i].text);
        CHECK(st == ONYX_OK && ((uint8_t *)h.out[0].data)[0] == cases[i].match);
        tm_run_fini(&h);
    }
    /* Outside the supported subset: refused at load with the reason. */
    tm_run h;
    tm_buf node = tm_op("RegexFullMatch");
    tm_attr_str(&node, "pattern", "\\pL+");
    const char *t[1] = {"x"};
    CHECK(run_strings(&h, &node, 20, 1, t, ONYX_DTYPE_BOOL, 1) == ONYX_ERR_UNSUPPORTED);
    tm_run_fini(&h);
    node = tm_op("RegexFullMatch");
    tm_attr_str(&node, "pattern", "(unclosed");
    CHECK(run_strings(&h, &node, 20, 1, t, ONYX_DTYPE_BOOL, 1) == ONYX_ERR_INVALID_MODEL);
    tm_run_fini(&h);
    /* An empty pattern matches the empty string only, whether its value is
     * written as "" or left out of a STRING attribute (decoded as "": it
     * was a NULL string that crashed the load, found by fuzzing); an
     * attribute of another type is refused. */
    const char *e[2] = {"", "x"};
    node = tm_op("RegexFullMatch");
    tm_attr_str(&node, "pattern", "");
    CHECK(run_strings(&h, &node, 20, 2, e, ONYX_DTYPE_BOOL, 1) == ONYX_OK);
    CHECK(h.out[0].data && ((uint8_t *)h.out[0].data)[0] == 1 && ((uint8_t *)h.out[0].data)[1] == 0);
    tm_run_fini(&h);
    node = tm_op("RegexFullMatch");
    tm_buf bare;
    tm_attr_begin(&bare, "pattern", 3); /* STRING, no value */
    tm_msg(&node, 5, &bare);
    CHECK(run_strings(&h, &node, 20, 2, e, ONYX_DTYPE_BOOL, 1) == ONYX_OK);
    CHECK(h.out[0].data && ((uint8_t *)h.out[0].data)[0] == 1 && ((uint8_t *)h.out[0].data)[1] == 0);
    tm_run_fini(&h);
    node = tm_op("RegexFullMatch");
    tm_attr_int(&node, "pattern", 3);
    CHECK(run_strings(&h, &node, 20, 1, t, ONYX_DTYPE_BOOL, 1) == ONYX_ERR_INVALID_MODEL);
    tm_run_fini(&h);
}

UNIT_TEST(string_split_whitespace_rules) {
    /* Python: "  a\u2003b\tc  ".split(None, 1) == ['a', 'b\tc  '] */
    const char *s[2] = {"  a\xe2\x80\x83" "b\tc  ", ""};
    tm_run h;
    tm_buf node = tm_op("StringSplit");
    tm_attr_int(&node, "maxsplit", 1);
    CHECK(run_strings(&h, &node, 20, 2, s, ONYX_DTYPE_STRING, 2) == ONYX_OK);
    if (h.out[0].data) {
        char **y = h.out[0].data;
        int64_t *z = h.out[1].data;
        CHECK(h.out[0].dims[1] == 2);
        CHECK(strcmp(y[0], "a") == 0 && strcmp(y[1], "b\tc  ") == 0);
        CHECK(z[0] == 2 && z[1] == 0 && strcmp(y[2], "") == 0 && strcmp(y[3], "") == 0);
    }
    tm_run_fini(&h);
    /* A multi-character delimiter; "" splits into one empty part. */
    const char *d[2] = {"a::b::::c", ""};
    node = tm_op("StringSplit");
    tm_attr_str(&node, "delimiter", "::");
    CHECK(run_strings(&h, &node, 20, 2, d, ONYX_DTYPE_STRING, 2) == ONYX_OK);
    if (h.out[0].data) {
        char **y = h.out[0].data;
        int64_t *z = h.out[1].data;
        CHECK(h.out[0].dims[1] == 4 && z[0] == 4 && z[1] == 1);
        CHECK(strcmp(y[0], "a") == 0 && strcmp(y[1], "b") == 0 && strcmp(y[2], "") == 0 && strcmp(y[3], "c") == 0);
    }
    tm_run_fini(&h);
}

UNIT_TEST(string_normalizer_utf8_case) {
    const char *s[3] = {"\xc3\x80pfel stra\xc3\x9f" "e", "\xd0\x9c\xd0\xbe\xd1\x81\xd0\xba\xd0\xb2\xd0\xb0", "IGNORED"};
    const char *stop[1] = {"ignored"};
    tm_run h;
    tm_buf node = tm_op("StringNormalizer");
    tm_attr_str(&node, "case_change_action", "UPPER");
    tm_attr_strs(&node, "stopwords", 1, stop);
    CHECK(run_strings(&h, &node, 10, 3, s, ONYX_DTYPE_STRING, 1) == ONYX_OK);
    if (h.out[0].data) {
        char **y = h.out[0].data;
        CHECK(h.out[0].dims[0] == 2);
        /* "Àpfel straße" -> "ÀPFEL STRAßE" (ß has no one-to-one upper case). */
        CHECK(strcmp(y[0], "\xc3\x80PFEL STRA\xc3\x9f" "E") == 0);
        /* "Москва" -> "МОСКВА" */
        CHECK(strcmp(y[1], "\xd0\x9c\xd0\x9e\xd0\xa1\xd0\x9a\xd0\x92\xd0\x90") == 0);
    }
    tm_run_fini(&h);
}

UNIT_TEST(string_tfidf_string_pool) {
    /* Unigrams {a, b}, bigrams {(a, b), (b, c)}; IDF and TFIDF weights. */
    const char *pool[6] = {"a", "b", "a", "b", "b", "c"};
    int64_t counts[2] = {0, 2}, indexes[4] = {0, 1, 2, 3};
    const char *x[7] = {"a", "b", "c", "a", "x", "b", "a"};
    static const float weights[4] = {0.5f, 2.0f, 3.0f, 4.0f};
    static const float want_tf[4] = {3, 2, 1, 1}, want_idf[4] = {0.5f, 2, 3, 4}, want_tfidf[4] = {1.5f, 4, 3, 4};
    static const char *const modes[3] = {"TF", "IDF", "TFIDF"};
    const float *wants[3] = {want_tf, want_idf, want_tfidf};
    for (int m = 0; m < 3; m++) {
        tm_run h;
        tm_buf node = tm_op("TfIdfVectorizer");
        tm_attr_str(&node, "mode", modes[m]);
        tm_attr_int(&node, "min_gram_length", 1);
        tm_attr_int(&node, "max_gram_length", 2);
        tm_attr_int(&node, "max_skip_count", 0);
        tm_attr_ints(&node, "ngram_counts", 2, counts);
        tm_attr_ints(&node, "ngram_indexes", 4, indexes);
        tm_attr_strs(&node, "pool_strings", 6, pool);
        if (m) tm_attr_floats(&node, "weights", 4, weights);
        CHECK(run_strings(&h, &node, 9, 7, x, ONYX_DTYPE_FLOAT, 1) == ONYX_OK);
        if (h.out[0].data)
            for (int i = 0; i < 4; i++) CHECK(((float *)h.out[0].data)[i] == wants[m][i]);
        tm_run_fini(&h);
    }
}
