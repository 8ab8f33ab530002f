/* test_onnx.c - the protobuf decoder, TensorProto conversion and the encoder
 * (src/onnx/). Wire bytes are built by hand here (packed and unpacked fields,
 * every data type, hostile lengths, truncation at every prefix, nesting
 * limits); when ONYX_NODE_DATA names the ONNX backend node test directory,
 * every model and .pb file there is decoded, converted and round-tripped too. */
#include "base/error.h"
#include "base/file.h"
#include "core/tensor.h"
#include "onnx/onnx.h"
#include "testmodel.h"
#include "unit.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

// ----------------------------------------------------------------------------
// Test inputs (written with testmodel.h)

/* An exact-size heap copy, so ASan sees any read past the end. */
static uint8_t *dup_exact(const uint8_t *p, size_t n) {
    uint8_t *d = malloc(n ? n : 1);
    if (!d) abort();
    if (n) memcpy(d, p, n);
    return d;
}

static onyx_pb_tensor *decode_tensor(const tm_buf *b, onyx_arena *a, onyx_error *err) {
    onyx_pb_tensor *t = NULL;
    if (onyx_pb_decode_tensor(b->p, b->n, a, &t, err)) return NULL;
    return t;
}

// ----------------------------------------------------------------------------
// Comparing runtime values

static int tensors_equal(const onyx_tensor *a, const onyx_tensor *b) {
    if (a->dtype != b->dtype || a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i]) return 0;
    int64_t n = onyx_tensor_count(a);
    if (a->dtype == ONYX_DTYPE_STRING) {
        for (int64_t i = 0; i < n; i++) {
            const char *x = ((char **)a->data)[i], *y = ((char **)b->data)[i];
            if (strcmp(x ? x : "", y ? y : "")) return 0;
        }
        return 1;
    }
    size_t nb = onyx_tensor_nbytes(a);
    return !nb || !memcmp(a->data, b->data, nb);
}

static int values_equal(const onyx_value *a, const onyx_value *b) {
    if (a->kind != b->kind || a->is_optional != b->is_optional) return 0;
    switch (a->kind) {
    case ONYX_KIND_TENSOR: return tensors_equal(&a->tensor, &b->tensor);
    case ONYX_KIND_SEQUENCE:
        if (a->n_items != b->n_items) return 0;
        for (int64_t i = 0; i < a->n_items; i++)
            if (!values_equal(&a->items[i], &b->items[i])) return 0;
        return 1;
    case ONYX_KIND_MAP:
        return tensors_equal(&a->tensor, &b->tensor) &&
               values_equal(a->map_values, b->map_values);
    default: return 1;
    }
}

// ----------------------------------------------------------------------------
// TensorProto fields, packed and unpacked

UNIT_TEST(onnx_tensor_typed_fields) {
    onyx_arena a;
    onyx_arena_init(&a);
    onyx_error err = {0};
    tm_buf b = {0};
    tm_int(&b, 1, 2); /* dims unpacked */
    tm_int(&b, 1, 3);
    tm_int(&b, 2, ONYX_DTYPE_FLOAT);
    tm_buf in = {0};
    for (int i = 0; i < 6; i++) {
        float f = (float)i * 0.5f;
        tm_raw(&in, &f, 4);
    }
    tm_msg(&b, 4, &in); /* float_data packed */
    tm_str(&b, 8, "weights");
    tm_str(&b, 12, "doc");
    tm_int(&b, 99, 5); /* an unknown field is skipped */
    onyx_pb_tensor *t = decode_tensor(&b, &a, &err);
    CHECK(t != NULL);
    if (t) {
        CHECK(t->ndims == 2 && t->dims[0] == 2 && t->dims[1] == 3);
        CHECK(t->n_float == 6 && t->float_data[5] == 2.5f);
        CHECK(!strcmp(t->name, "weights") && !strcmp(t->doc_string, "doc"));
        CHECK(!t->has_raw);
        onyx_tensor rt;
        CHECK(onyx_pb_tensor_to_tensor(t, NULL, NULL, &rt, &err) == ONYX_OK);
        CHECK(rt.heap != NULL && rt.dtype == ONYX_DTYPE_FLOAT && rt.ndim == 2);
        CHECK(((float *)rt.data)[3] == 1.5f);
        onyx_tensor_release(&rt);
    }
    free(b.p);
    onyx_arena_deinit(&a);
}

UNIT_TEST(onnx_packed_and_unpacked) {
    onyx_arena a;
    onyx_arena_init(&a);
    onyx_error err = {0};
    const int64_t vals[] = {1, -1, 300, INT64_MIN, INT64_MAX};
    const int64_t dims[] = {5};
    /* int64_data packed, dims packed */
    tm_buf p = {0};
    tm_packed_i64(&p, 1, dims, 1);
    tm_int(&p, 2, ONYX_DTYPE_INT64);
    tm_packed_i64(&p, 7, vals, 5);
    /* the same unpacked, split over two occurrences mixing both encodings */
    tm_buf u = {0};
    tm_int(&u, 1, 5);
    tm_int(&u, 2, ONYX_DTYPE_INT64);
    tm_int(&u, 7, vals[0]);
    tm_int(&u, 7, vals[1]);
    tm_packed_i64(&u, 7, vals + 2, 3);
    onyx_pb_tensor *tp = decode_tensor(&p, &a, &err), *tu = decode_tensor(&u, &a, &err);
    CHECK(tp && tu);
    if (tp && tu) {
        CHECK(tp->n_int64 == 5 && tu->n_int64 == 5);
        CHECK(!memcmp(tp->int64_data, vals, sizeof vals));
        CHECK(!memcmp(tu->int64_data, vals, sizeof vals));
        CHECK(tp->ndims == 1 && tu->ndims == 1 && tp->dims[0] == 5 && tu->dims[0] == 5);
    }
    /* floats and doubles as individual fixed-width fields */
    tm_buf f = {0};
    tm_int(&f, 1, 3);
    tm_int(&f, 2, ONYX_DTYPE_DOUBLE);
    tm_f64(&f, 10, 1.25);
    tm_f64(&f, 10, -2.0);
    tm_buf in = {0};
    double d = 1e300;
    tm_raw(&in, &d, 8);
    tm_msg(&f, 10, &in);
    tm_f32(&f, 4, 7.0f); /* float_data on a double tensor: kept, unused */
    onyx_pb_tensor *tf = decode_tensor(&f, &a, &err);
    CHECK(tf != NULL);
    if (tf) {
        CHECK(tf->n_double == 3 && tf->double_data[0] == 1.25 && tf->double_data[2] == 1e300);
        CHECK(tf->n_float == 1 && tf->float_data[0] == 7.0f);
        onyx_tensor rt;
        CHECK(onyx_pb_tensor_to_tensor(tf, NULL, NULL, &rt, &err) == ONYX_OK);
        CHECK(rt.dtype == ONYX_DTYPE_DOUBLE && ((double *)rt.data)[1] == -2.0);
        onyx_tensor_release(&rt);
    }
    /* uint64_data carries uint32 too, int32_data carries the small types */
    tm_buf g = {0};
    tm_int(&g, 1, 2);
    tm_int(&g, 2, ONYX_DTYPE_UINT32);
    tm_int(&g, 11, 4000000000LL);
    tm_int(&g, 11, 7);
    onyx_pb_tensor *tg = decode_tensor(&g, &a, &err);
    CHECK(tg && tg->n_uint64 == 2);
    if (tg) {
        onyx_tensor rt;
        CHECK(onyx_pb_tensor_to_tensor(tg, NULL, NULL, &rt, &err) == ONYX_OK);
        CHECK(((uint32_t *)rt.data)[0] == 4000000000u && ((uint32_t *)rt.data)[1] == 7);
        onyx_tensor_release(&rt);
    }
    free(p.p), free(u.p), free(f.p), free(g.p);
    onyx_arena_deinit(&a);
}

/* Every small type through int32_data, following onnx.numpy_helper.to_array. */
UNIT_TEST(onnx_int32_data_types) {
    onyx_arena a;
    onyx_arena_init(&a);
    onyx_error err = {0};
    struct {
        onyx_dtype dt;
        int n;            /* elements */
        int32_t in[4];    /* int32_data */
        int nin;
        uint8_t want[8];  /* expected bytes */
        int nwant;
    } cases[] = {
        {ONYX_DTYPE_INT8, 3, {-3, 127, -128}, 3, {0xfd, 0x7f, 0x80}, 3},
        {ONYX_DTYPE_UINT8, 2, {255, 1}, 2, {0xff, 0x01}, 2},
        {ONYX_DTYPE_INT16, 2, {-2, 300}, 2, {0xfe, 0xff, 0x2c, 0x01}, 4},
        {ONYX_DTYPE_UINT16, 1, {65535}, 1, {0xff, 0xff}, 2},
        {ONYX_DTYPE_FLOAT16, 2, {0x3c00, 0xc000}, 2, {0x00, 0x3c, 0x00, 0xc0}, 4},
        {ONYX_DTYPE_BFLOAT16, 1, {0x3f80}, 1, {0x80, 0x3f}, 2},
        {ONYX_DTYPE_BOOL, 3, {1, 0, 5}, 3, {1, 0, 1}, 3},
        {ONYX_DTYPE_FLOAT8E4M3FN, 2, {0x38, 0xff}, 2, {0x38, 0xff}, 2},
        {ONYX_DTYPE_FLOAT8E8M0, 1, {0x7f}, 1, {0x7f}, 1},
        {ONYX_DTYPE_INT32, 1, {-5}, 1, {0xfb, 0xff, 0xff, 0xff}, 4},
        /* 4-bit: one packed byte per int32, low nibble first; odd count */
        {ONYX_DTYPE_INT4, 3, {0x9f, 0x07}, 2, {0xff, 0xf9, 0x07}, 3},
        {ONYX_DTYPE_UINT4, 4, {0x9f, 0x21}, 2, {0x0f, 0x09, 0x01, 0x02}, 4},
        {ONYX_DTYPE_FLOAT4E2M1, 2, {0x71}, 1, {0x01, 0x07}, 2},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        tm_buf b = {0};
        tm_int(&b, 1, cases[k].n);
        tm_int(&b, 2, cases[k].dt);
        for (int i = 0; i < cases[k].nin; i++) tm_int(&b, 5, cases[k].in[i]);
        onyx_pb_tensor *t = decode_tensor(&b, &a, &err);
        onyx_tensor rt = {0};
        int ok = t && onyx_pb_tensor_to_tensor(t, NULL, NULL, &rt, &err) == ONYX_OK &&
                 onyx_tensor_nbytes(&rt) == (size_t)cases[k].nwant &&
                 !memcmp(rt.data, cases[k].want, (size_t)cases[k].nwant);
        if (!ok) fprintf(stderr, "  int32_data case %zu (%s) wrong\n", k, onyx_dtype_name(cases[k].dt));
        CHECK(ok);
        onyx_tensor_release(&rt);
        /* One value too many is an error naming the tensor's field. */
        tm_int(&b, 5, 0);
        if (cases[k].dt == ONYX_DTYPE_INT4) tm_int(&b, 5, 0);
        t = decode_tensor(&b, &a, &err);
        CHECK(t && onyx_pb_tensor_to_tensor(t, NULL, NULL, &rt, &err) == ONYX_ERR_INVALID_MODEL);
        CHECK(strstr(err.message, "int32_data") != NULL);
        free(b.p);
    }
    onyx_arena_deinit(&a);
}

// ----------------------------------------------------------------------------
// raw_data: sizes, zero copy, 4-bit unpacking

UNIT_TEST(onnx_raw_size_checked) {
    onyx_arena a;
    onyx_arena_init(&a);
    onyx_error err = {0};
    for (int extra = -1; extra <= 1; extra++) {
        tm_buf b = {0};
        tm_int(&b, 1, 2);
        tm_int(&b, 1, 3);
        tm_int(&b, 2, ONYX_DTYPE_FLOAT);
        tm_str(&b, 8, "conv1.weight");
        uint8_t raw[28] = {0};
        tm_bytes(&b, 9, raw, (size_t)(24 + extra * 4));
        onyx_pb_tensor *t = decode_tensor(&b, &a, &err);
        CHECK(t && t->has_raw && t->raw_size == (size_t)(24 + extra * 4));
        onyx_tensor rt;
        onyx_status st = t ? onyx_pb_tensor_to_tensor(t, NULL, NULL, &rt, &err) : ONYX_ERR_RUNTIME;
        if (extra) {
            CHECK(st == ONYX_ERR_INVALID_MODEL);
            CHECK(strstr(err.message, "conv1.weight") && strstr(err.message, "(2, 3)"));
        } else {
            CHECK(st == ONYX_OK);
            onyx_tensor_release(&rt);
        }
        free(b.p);
    }
    onyx_arena_deinit(&a);
}

UNIT_TEST(onnx_raw_zero_copy) {
    onyx_arena a;
    onyx_arena_init(&a);
    onyx_error err = {0};
    float vals[4] = {1, 2, 3, 4};
    tm_buf b = {0};
    tm_int(&b, 1, 4);
    tm_int(&b, 2, ONYX_DTYPE_FLOAT);
    tm_bytes(&b, 9, vals, sizeof vals);
    uint8_t *buf = malloc(b.n + 8);
    int saw_in_place = 0, saw_copy = 0;
    for (size_t shift = 0; shift < 4; shift++) {
        memcpy(buf + shift, b.p, b.n);
        onyx_pb_tensor *t = NULL;
        CHECK(onyx_pb_decode_tensor(buf + shift, b.n, &a, &t, &err) == ONYX_OK);
        if (!t) continue;
        CHECK(t->raw >= buf + shift && t->raw + t->raw_size <= buf + shift + b.n);
        onyx_tensor rt;
        CHECK(onyx_pb_tensor_to_tensor(t, NULL, NULL, &rt, &err) == ONYX_OK);
        if (rt.heap) {
            saw_copy = 1;
            CHECK(rt.data == rt.heap);
        } else {
            saw_in_place = 1;
            CHECK(rt.data == (void *)t->raw && ((uintptr_t)rt.data & 3) == 0);
        }
        CHECK(!memcmp(rt.data, vals, sizeof vals));
        onyx_tensor_release(&rt);
    }
    CHECK(saw_in_place && saw_copy);
    free(buf);
    free(b.p);
    onyx_arena_deinit(&a);
}

static void fill_elements(onyx_dtype dt, void *data, int64_t n) {
    uint8_t *p = data;
    size_t esz = onyx_dtype_size(dt);
    for (size_t i = 0; i < (size_t)n * esz; i++) p[i] = (uint8_t)(i * 37 + 11);
    for (int64_t i = 0; i < n; i++) {
        if (dt == ONYX_DTYPE_BOOL) p[i] = i % 3 == 0;
        if (dt == ONYX_DTYPE_INT4) p[i] = (uint8_t)(int8_t)((i * 5) % 16 - 8);
        if (dt == ONYX_DTYPE_UINT4 || dt == ONYX_DTYPE_FLOAT4E2M1) p[i] = (uint8_t)((i * 5) % 16);
    }
}

UNIT_TEST(onnx_roundtrip_every_dtype) {
    onyx_arena a;
    onyx_arena_init(&a);
    onyx_error err = {0};
    static const char *const strs[] = {"", "a", "hello world", "\xc3\xa9t\xc3\xa9", "x", "yz", "7"};
    for (int dt = 1; dt < ONYX_DTYPE_COUNT; dt++) {
        for (int64_t n = 0; n <= 7; n += 7) {
            int64_t dims[2] = {1, n};
            onyx_tensor_view v = {(onyx_dtype)dt, 2, {1, n}, NULL};
            void *data = calloc((size_t)(n ? n : 1), onyx_dtype_size((onyx_dtype)dt));
            if (dt == ONYX_DTYPE_STRING)
                for (int64_t i = 0; i < n; i++) ((const char **)data)[i] = strs[i];
            else
                fill_elements((onyx_dtype)dt, data, n);
            v.data = n ? data : NULL;
            onyx_buf buf = {0};
            CHECK(onyx_pb_encode_tensor(&buf, "t", &v) == ONYX_OK);
            if (dt == ONYX_DTYPE_INT4 && n == 7) {
                /* 7 elements pack into 4 bytes: the last byte's high nibble is 0. */
                CHECK(buf.len >= 4 && buf.data[buf.len - 5] == 4);
            }
            uint8_t *copy = dup_exact(buf.data, buf.len);
            onyx_pb_tensor *t = NULL;
            onyx_tensor rt = {0};
            int ok = onyx_pb_decode_tensor(copy, buf.len, &a, &t, &err) == ONYX_OK &&
                     !strcmp(t->name, "t") && t->data_type == dt &&
                     onyx_pb_tensor_to_tensor(t, NULL, NULL, &rt, &err) == ONYX_OK;
            onyx_tensor want = {(onyx_dtype)dt, 2, {1, n}, v.data, NULL};
            (void)dims;
            ok = ok && tensors_equal(&rt, &want);
            if (!ok)
                fprintf(stderr, "  round trip of %s x%lld failed: %s\n",
                        onyx_dtype_name((onyx_dtype)dt), (long long)n, err.message);
            CHECK(ok);
            onyx_tensor_release(&rt);
            free(copy);
            free(buf.data);
            free(data);
        }
    }
    onyx_arena_deinit(&a);
}

UNIT_TEST(onnx_encode_matches_onnx_bytes) {
    /* onnx.numpy_helper.from_array(np.array([[1, 2]], np.float32), "x")
     * .SerializeToString() */
    static const uint8_t want[] = {0x08, 0x01, 0x08, 0x02, 0x10, 0x01, 0x42, 0x01, 0x78,
                                   0x4a, 0x08, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40};
    float d[2] = {1, 2};
    onyx_tensor_view v = {ONYX_DTYPE_FLOAT, 2, {1, 2}, d};
    onyx_buf buf = {0};
    CHECK(onyx_pb_encode_tensor(&buf, "x", &v) == ONYX_OK);
    CHECK(buf.len == sizeof want && !memcmp(buf.data, want, sizeof want));
    /* Bad arguments leave the buffer as it was. */
    size_t len = buf.len;
    onyx_tensor_view bad = {ONYX_DTYPE_FLOAT, 1, {3}, NULL};
    CHECK(onyx_pb_encode_tensor(&buf, "x", &bad) == ONYX_ERR_INVALID_ARGUMENT);
    bad.dtype = ONYX_DTYPE_UNDEFINED;
    bad.data = d;
    CHECK(onyx_pb_encode_tensor(&buf, "x", &bad) == ONYX_ERR_INVALID_ARGUMENT);
    CHECK(buf.len == len);
    free(buf.data);
}

// ----------------------------------------------------------------------------
// Hostile input

static onyx_status decode_model_bytes(const tm_buf *b, onyx_error *err) {
    onyx_arena a;
    onyx_arena_init(&a);
    uint8_t *copy = dup_exact(b->p, b->n);
    onyx_pb_model *m = NULL;
    onyx_status st = onyx_pb_decode_model(copy, b->n, &a, &m, err);
    free(copy);
    onyx_arena_deinit(&a);
    return st;
}

UNIT_TEST(onnx_hostile_lengths) {
    onyx_error err = {0};
    onyx_arena a;
    onyx_arena_init(&a);
    /* raw_data claims 99999 bytes */
    tm_buf b = {0};
    tm_int(&b, 2, 1);
    tm_tag(&b, 9, 2);
    tm_varint(&b, 99999);
    uint8_t junk[6] = {1, 2, 3, 4, 5, 6};
    tm_raw(&b, junk, sizeof junk);
    onyx_pb_tensor *t = NULL;
    CHECK(onyx_pb_decode_tensor(b.p, b.n, &a, &t, &err) == ONYX_ERR_INVALID_MODEL && !t);
    CHECK(strstr(err.message, "TensorProto.raw_data at byte 2: length 99999 exceeds the 6 bytes left") !=
          NULL);
    free(b.p);

    /* lengths near 2^64 */
    tm_buf h = {0};
    tm_tag(&h, 7, 2);
    tm_varint(&h, UINT64_MAX);
    CHECK(decode_model_bytes(&h, &err) == ONYX_ERR_INVALID_MODEL);
    free(h.p);

    /* a varint of 11 bytes, and a 10-byte one overflowing 64 bits */
    static const uint8_t long_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 0xff, 0xff, 0xff, 0x01};
    static const uint8_t ovf_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                         0xff, 0xff, 0xff, 0xff, 0x02};
    static const uint8_t max_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                         0xff, 0xff, 0xff, 0xff, 0x01};
    tm_buf v = {0};
    tm_raw(&v, long_varint, sizeof long_varint);
    CHECK(decode_model_bytes(&v, &err) == ONYX_ERR_INVALID_MODEL);
    v.n = 0;
    tm_raw(&v, ovf_varint, sizeof ovf_varint);
    CHECK(decode_model_bytes(&v, &err) == ONYX_ERR_INVALID_MODEL);
    v.n = 0;
    tm_raw(&v, max_varint, sizeof max_varint);
    onyx_pb_model *m = NULL;
    CHECK(onyx_pb_decode_model(v.p, v.n, &a, &m, &err) == ONYX_OK && m && m->ir_version == -1);
    free(v.p);

    /* groups, wire types 6/7, field number 0, truncated fixed32 */
    static const uint8_t group[] = {0x0b, 0x0c};        /* field 1 start/end group */
    static const uint8_t wire6[] = {0x0e, 0x00};
    static const uint8_t field0[] = {0x00, 0x00};
    static const uint8_t short_f32[] = {0x25, 0x00, 0x00}; /* TensorProto field 4 fixed32 */
    const struct {
        const uint8_t *p;
        size_t n;
        const char *msg;
    } bad[] = {{group, 2, "groups"},
               {wire6, 2, "wire type 6"},
               {field0, 2, "field number 0"},
               {short_f32, 3, "needs 4 bytes"}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        uint8_t *copy = dup_exact(bad[k].p, bad[k].n);
        t = NULL;
        CHECK(onyx_pb_decode_tensor(copy, bad[k].n, &a, &t, &err) == ONYX_ERR_INVALID_MODEL);
        CHECK(strstr(err.message, bad[k].msg) != NULL);
        free(copy);
    }

    /* a known field with the wrong wire type */
    tm_buf w = {0};
    tm_str(&w, 2, "x"); /* data_type as bytes */
    CHECK(onyx_pb_decode_tensor(w.p, w.n, &a, &t, &err) == ONYX_ERR_INVALID_MODEL);
    CHECK(strstr(err.message, "TensorProto.data_type") != NULL);
    free(w.p);

    /* packed varints cut in the middle, packed floats of a bad length */
    tm_buf pk = {0};
    static const uint8_t cut[] = {0x01, 0x80};
    tm_bytes(&pk, 7, cut, 2);
    CHECK(onyx_pb_decode_tensor(pk.p, pk.n, &a, &t, &err) == ONYX_ERR_INVALID_MODEL);
    pk.n = 0;
    tm_bytes(&pk, 4, cut, 2);
    CHECK(onyx_pb_decode_tensor(pk.p, pk.n, &a, &t, &err) == ONYX_ERR_INVALID_MODEL);
    free(pk.p);

    /* segment is unsupported */
    tm_buf sg = {0};
    tm_buf sgi = {0};
    tm_int(&sgi, 1, 0);
    tm_msg(&sg, 3, &sgi);
    CHECK(onyx_pb_decode_tensor(sg.p, sg.n, &a, &t, &err) == ONYX_ERR_UNSUPPORTED);
    free(sg.p);

    /* NULL data with a size, and empty input */
    CHECK(onyx_pb_decode_tensor(NULL, 3, &a, &t, &err) == ONYX_ERR_INVALID_ARGUMENT);
    CHECK(onyx_pb_decode_model(NULL, 0, &a, &m, &err) == ONYX_OK && m && !m->graph);
    onyx_arena_deinit(&a);
}

/* TypeProto nested `levels` deep in a model's graph input. */
static void nested_type_model(tm_buf *model, int levels) {
    tm_buf type = tm_type_tensor(ONYX_DTYPE_FLOAT, -1, NULL), graph = {0};
    for (int i = 0; i < levels; i++) type = tm_type_seq(type);
    tm_io(&graph, 11, "x", &type);
    tm_msg(model, 7, &graph);
}

UNIT_TEST(onnx_depth_limit) {
    onyx_error err = {0};
    onyx_arena a;
    onyx_arena_init(&a);
    tm_buf ok = {0}, deep = {0};
    nested_type_model(&ok, 10);
    nested_type_model(&deep, 5000);
    onyx_pb_model *m = NULL;
    CHECK(onyx_pb_decode_model(ok.p, ok.n, &a, &m, &err) == ONYX_OK);
    if (m && m->graph && m->graph->n_inputs == 1) {
        const onyx_pb_type *t = m->graph->inputs[0].type;
        int depth = 0;
        while (t && t->kind == ONYX_PB_TYPE_SEQUENCE) t = t->elem, depth++;
        CHECK(depth == 10 && t && t->kind == ONYX_PB_TYPE_TENSOR && !t->has_shape);
    }
    CHECK(onyx_pb_decode_model(deep.p, deep.n, &a, &m, &err) == ONYX_ERR_INVALID_MODEL);
    CHECK(strstr(err.message, "nested deeper") != NULL);
    free(ok.p);
    free(deep.p);
    onyx_arena_deinit(&a);
}

// ----------------------------------------------------------------------------
// A model exercising every message, attribute kind and nested graphs

static void tensor_msg(tm_buf *out, uint32_t field, const char *name, float v) {
    tm_buf t = {0};
    tm_int(&t, 2, ONYX_DTYPE_FLOAT);
    tm_str(&t, 8, name);
    tm_bytes(&t, 9, &v, 4);
    tm_msg(out, field, &t);
}

/* A graph with one Identity-like node `op` producing `out` from `in`. */
static void branch_graph(tm_buf *out, uint32_t field, const char *name, const char *op) {
    tm_buf g = {0}, node = {0}, attr = {0}, vo = {0};
    tm_str(&node, 2, "y");
    tm_str(&node, 4, op);
    tm_str(&attr, 1, "value");
    tm_int(&attr, 20, ONYX_PB_ATTR_TENSOR);
    tensor_msg(&attr, 5, "c", 3.5f);
    tm_msg(&node, 5, &attr);
    tm_msg(&g, 1, &node);
    tm_str(&g, 2, name);
    tm_str(&vo, 1, "y");
    tm_msg(&g, 12, &vo);
    tm_msg(out, field, &g);
}

static void build_model(tm_buf *m) {
    tm_int(m, 1, 8);
    tm_str(m, 2, "onyx-test");
    tm_str(m, 3, "1.0");
    tm_int(m, 5, 42);
    tm_opset(m, "ai.onnx", 13);
    tm_opset(m, "ai.onnx.ml", 3);
    tm_buf kv = {0};
    tm_str(&kv, 1, "author");
    tm_str(&kv, 2, "me");
    tm_msg(m, 14, &kv);

    tm_buf g = {0};
    /* input x: float [N, 3] */
    tm_buf vi = {0}, type = {0}, tt = {0}, shape = {0}, d = {0};
    tm_str(&d, 2, "N");
    tm_msg(&shape, 1, &d);
    tm_int(&d, 1, 3);
    tm_msg(&shape, 1, &d);
    tm_int(&tt, 1, ONYX_DTYPE_FLOAT);
    tm_msg(&tt, 2, &shape);
    tm_msg(&type, 1, &tt);
    tm_str(&type, 6, "IMAGE");
    tm_str(&vi, 1, "x");
    tm_msg(&vi, 2, &type);
    tm_msg(&g, 11, &vi);
    /* cond: bool scalar (empty shape) */
    tm_int(&tt, 1, ONYX_DTYPE_BOOL);
    tm_msg(&tt, 2, &shape);
    tm_msg(&type, 1, &tt);
    tm_str(&vi, 1, "cond");
    tm_msg(&vi, 2, &type);
    tm_msg(&g, 11, &vi);
    /* output: a sequence of optional tensors, a map */
    tm_buf seq = {0}, opt = {0}, inner = {0}, mp = {0};
    tm_int(&tt, 1, ONYX_DTYPE_INT64);
    tm_msg(&inner, 1, &tt);
    tm_msg(&opt, 1, &inner);
    tm_msg(&type, 9, &opt);
    tm_msg(&seq, 1, &type);
    tm_msg(&inner, 4, &seq);
    tm_str(&vi, 1, "out");
    tm_msg(&vi, 2, &inner);
    tm_msg(&g, 12, &vi);
    tm_int(&mp, 1, ONYX_DTYPE_STRING);
    tm_int(&tt, 1, ONYX_DTYPE_FLOAT);
    tm_msg(&type, 1, &tt);
    tm_msg(&mp, 2, &type);
    tm_msg(&inner, 5, &mp);
    tm_str(&vi, 1, "probs");
    tm_msg(&vi, 2, &inner);
    tm_msg(&g, 12, &vi);
    /* initializer */
    tensor_msg(&g, 5, "w", 2.0f);
    /* sparse initializer: dims [2, 2], value 9 at (1, 0) */
    tm_buf sp = {0}, vals = {0}, idx = {0};
    tm_int(&vals, 1, 1);
    tm_int(&vals, 2, ONYX_DTYPE_FLOAT);
    tm_f32(&vals, 4, 9.0f);
    tm_str(&vals, 8, "s");
    tm_msg(&sp, 1, &vals);
    tm_int(&idx, 1, 1);
    tm_int(&idx, 1, 2);
    tm_int(&idx, 2, ONYX_DTYPE_INT64);
    const int64_t coord[2] = {1, 0};
    tm_packed_i64(&idx, 7, coord, 2);
    tm_msg(&sp, 2, &idx);
    tm_int(&sp, 3, 2);
    tm_int(&sp, 3, 2);
    tm_msg(&g, 15, &sp);

    /* If node with then/else branches and attributes of every kind */
    tm_buf node = {0}, at = {0};
    tm_str(&node, 1, "cond");
    tm_str(&node, 1, "");
    tm_str(&node, 2, "y");
    tm_str(&node, 3, "if0");
    tm_str(&node, 4, "If");
    tm_str(&node, 7, "ai.onnx");
    tm_str(&at, 1, "then_branch");
    tm_int(&at, 20, ONYX_PB_ATTR_GRAPH);
    branch_graph(&at, 6, "then", "Constant");
    tm_msg(&node, 5, &at);
    tm_str(&at, 1, "else_branch");
    branch_graph(&at, 6, "else", "Constant"); /* type inferred from g */
    tm_msg(&node, 5, &at);
    tm_str(&at, 1, "f");
    tm_f32(&at, 2, 0.25f);
    tm_msg(&node, 5, &at);
    tm_str(&at, 1, "i");
    tm_int(&at, 3, -7);
    tm_msg(&node, 5, &at);
    tm_str(&at, 1, "s");
    tm_bytes(&at, 4, "a\0b", 3);
    tm_msg(&node, 5, &at);
    tm_str(&at, 1, "s_unset"); /* typed STRING, no value */
    tm_int(&at, 20, ONYX_PB_ATTR_STRING);
    tm_msg(&node, 5, &at);
    tm_str(&at, 1, "ints");
    const int64_t ints[3] = {1, -2, 3};
    tm_packed_i64(&at, 8, ints, 3);
    tm_msg(&node, 5, &at);
    tm_str(&at, 1, "ints_unpacked");
    tm_int(&at, 8, 4);
    tm_int(&at, 8, 5);
    tm_msg(&node, 5, &at);
    tm_str(&at, 1, "floats");
    tm_f32(&at, 7, 1.5f);
    tm_f32(&at, 7, 2.5f);
    tm_msg(&node, 5, &at);
    tm_str(&at, 1, "strings");
    tm_str(&at, 9, "p");
    tm_str(&at, 9, "q");
    tm_msg(&node, 5, &at);
    tm_str(&at, 1, "tensors");
    tensor_msg(&at, 10, "t0", 1.0f);
    tensor_msg(&at, 10, "t1", 2.0f);
    tm_msg(&node, 5, &at);
    tm_str(&at, 1, "graphs");
    branch_graph(&at, 11, "g0", "Constant");
    branch_graph(&at, 11, "g1", "Constant");
    tm_msg(&node, 5, &at);
    tm_str(&at, 1, "tp");
    tm_int(&tt, 1, ONYX_DTYPE_INT8);
    tm_msg(&type, 1, &tt);
    tm_msg(&at, 14, &type);
    tm_msg(&node, 5, &at);
    tm_str(&at, 1, "ref");
    tm_int(&at, 20, ONYX_PB_ATTR_INT);
    tm_str(&at, 21, "outer");
    tm_msg(&node, 5, &at);
    tm_msg(&g, 1, &node);
    tm_str(&g, 2, "main");
    tm_msg(m, 7, &g);

    /* a function */
    tm_buf fn = {0};
    tm_str(&fn, 1, "MyFn");
    tm_str(&fn, 10, "custom");
    tm_str(&fn, 4, "a");
    tm_str(&fn, 5, "b");
    tm_str(&fn, 6, "alpha");
    tm_str(&node, 1, "a");
    tm_str(&node, 2, "b");
    tm_str(&node, 4, "Relu");
    tm_msg(&fn, 7, &node);
    tm_buf op = {0};
    tm_str(&op, 1, "");
    tm_int(&op, 2, 18);
    tm_msg(&fn, 9, &op);
    tm_msg(m, 25, &fn);
}

static const onyx_pb_attr *find_attr(const onyx_pb_node *n, const char *name) {
    for (int i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name)) return &n->attrs[i];
    return NULL;
}

UNIT_TEST(onnx_model_every_message) {
    onyx_error err = {0};
    onyx_arena a;
    onyx_arena_init(&a);
    tm_buf b = {0};
    build_model(&b);
    uint8_t *copy = dup_exact(b.p, b.n);
    onyx_pb_model *m = NULL;
    CHECK(onyx_pb_decode_model(copy, b.n, &a, &m, &err) == ONYX_OK);
    if (!m || !m->graph) {
        fprintf(stderr, "  %s\n", err.message);
        CHECK(0);
        goto done;
    }
    CHECK(m->ir_version == 8 && m->model_version == 42);
    CHECK(!strcmp(m->producer_name, "onyx-test") && !strcmp(m->producer_version, "1.0"));
    CHECK(m->n_opsets == 2 && !strcmp(m->opsets[0].domain, "") && m->opsets[0].version == 13);
    CHECK(!strcmp(m->opsets[1].domain, "ai.onnx.ml") && m->opsets[1].version == 3);
    CHECK(m->n_metadata == 1 && !strcmp(m->metadata[0].key, "author"));
    const onyx_pb_graph *g = m->graph;
    CHECK(!strcmp(g->name, "main") && g->n_nodes == 1 && g->n_inputs == 2 && g->n_outputs == 2);
    const onyx_pb_type *tx = g->inputs[0].type;
    CHECK(tx && tx->kind == ONYX_PB_TYPE_TENSOR && tx->elem_type == ONYX_DTYPE_FLOAT);
    CHECK(tx && tx->has_shape && tx->ndims == 2 && tx->dims[0].value == -1 &&
          !strcmp(tx->dims[0].param, "N") && tx->dims[1].value == 3 && !tx->dims[1].param);
    CHECK(tx && !strcmp(tx->denotation, "IMAGE"));
    const onyx_pb_type *tc = g->inputs[1].type;
    CHECK(tc && tc->elem_type == ONYX_DTYPE_BOOL && tc->has_shape && tc->ndims == 0);
    const onyx_pb_type *to = g->outputs[0].type;
    CHECK(to && to->kind == ONYX_PB_TYPE_SEQUENCE && to->elem &&
          to->elem->kind == ONYX_PB_TYPE_OPTIONAL && to->elem->elem &&
          to->elem->elem->elem_type == ONYX_DTYPE_INT64);
    const onyx_pb_type *tm = g->outputs[1].type;
    CHECK(tm && tm->kind == ONYX_PB_TYPE_MAP && tm->key_type == ONYX_DTYPE_STRING && tm->elem &&
          tm->elem->elem_type == ONYX_DTYPE_FLOAT);
    CHECK(g->n_initializers == 1 && !strcmp(g->initializers[0].name, "w"));
    CHECK(g->n_sparse_initializers == 1);
    if (g->n_sparse_initializers == 1) {
        onyx_tensor dense;
        CHECK(onyx_pb_sparse_to_tensor(&g->sparse_initializers[0], NULL, NULL, &dense, &err) ==
              ONYX_OK);
        const float want[4] = {0, 0, 9, 0};
        CHECK(dense.ndim == 2 && !memcmp(dense.data, want, sizeof want));
        onyx_tensor_release(&dense);
    }

    const onyx_pb_node *n = &g->nodes[0];
    CHECK(!strcmp(n->op_type, "If") && !strcmp(n->name, "if0") && !strcmp(n->domain, ""));
    CHECK(n->n_inputs == 2 && !strcmp(n->inputs[1], "") && n->n_outputs == 1);
    const onyx_pb_attr *at = find_attr(n, "then_branch");
    CHECK(at && at->type == ONYX_PB_ATTR_GRAPH && at->g && !strcmp(at->g->name, "then"));
    if (at && at->g && at->g->n_nodes == 1) {
        const onyx_pb_attr *v = find_attr(&at->g->nodes[0], "value");
        CHECK(v && v->type == ONYX_PB_ATTR_TENSOR && v->t);
        if (v && v->t) {
            onyx_tensor t;
            CHECK(onyx_pb_tensor_to_tensor(v->t, NULL, NULL, &t, &err) == ONYX_OK);
            CHECK(t.ndim == 0 && *(float *)t.data == 3.5f);
            onyx_tensor_release(&t);
        }
    }
    at = find_attr(n, "else_branch");
    CHECK(at && at->type == ONYX_PB_ATTR_GRAPH && at->g && !strcmp(at->g->name, "else"));
    at = find_attr(n, "f");
    CHECK(at && at->type == ONYX_PB_ATTR_FLOAT && at->f == 0.25f);
    at = find_attr(n, "i");
    CHECK(at && at->type == ONYX_PB_ATTR_INT && at->i == -7);
    at = find_attr(n, "s");
    CHECK(at && at->type == ONYX_PB_ATTR_STRING && at->s.len == 3 && !memcmp(at->s.s, "a\0b", 4));
    at = find_attr(n, "s_unset"); /* protobuf's default: "", not NULL */
    CHECK(at && at->type == ONYX_PB_ATTR_STRING && at->s.len == 0 && at->s.s && !*at->s.s);
    at = find_attr(n, "ints");
    CHECK(at && at->type == ONYX_PB_ATTR_INTS && at->n_ints == 3 && at->ints[1] == -2);
    at = find_attr(n, "ints_unpacked");
    CHECK(at && at->type == ONYX_PB_ATTR_INTS && at->n_ints == 2 && at->ints[1] == 5);
    at = find_attr(n, "floats");
    CHECK(at && at->type == ONYX_PB_ATTR_FLOATS && at->n_floats == 2 && at->floats[1] == 2.5f);
    at = find_attr(n, "strings");
    CHECK(at && at->type == ONYX_PB_ATTR_STRINGS && at->n_strings == 2 &&
          !strcmp(at->strings[1].s, "q"));
    at = find_attr(n, "tensors");
    CHECK(at && at->type == ONYX_PB_ATTR_TENSORS && at->n_tensors == 2 &&
          !strcmp(at->tensors[1].name, "t1"));
    at = find_attr(n, "graphs");
    CHECK(at && at->type == ONYX_PB_ATTR_GRAPHS && at->n_graphs == 2 &&
          !strcmp(at->graphs[1]->name, "g1"));
    at = find_attr(n, "tp");
    CHECK(at && at->type == ONYX_PB_ATTR_TYPE_PROTO && at->tp &&
          at->tp->elem_type == ONYX_DTYPE_INT8);
    at = find_attr(n, "ref");
    CHECK(at && at->type == ONYX_PB_ATTR_INT && !strcmp(at->ref_attr_name, "outer"));

    CHECK(m->n_functions == 1);
    if (m->n_functions == 1) {
        const onyx_pb_function *f = &m->functions[0];
        CHECK(!strcmp(f->name, "MyFn") && !strcmp(f->domain, "custom"));
        CHECK(f->n_inputs == 1 && f->n_outputs == 1 && f->n_attributes == 1);
        CHECK(f->n_nodes == 1 && !strcmp(f->nodes[0].op_type, "Relu"));
        CHECK(f->n_opsets == 1 && f->opsets[0].version == 18);
    }
done:
    free(copy);
    free(b.p);
    onyx_arena_deinit(&a);
}

UNIT_TEST(onnx_attr_type_conflict) {
    onyx_error err = {0};
    tm_buf m = {0}, g = {0}, node = {0}, at = {0};
    tm_str(&at, 1, "x");
    tm_int(&at, 3, 1);
    tm_f32(&at, 2, 1.0f); /* two value fields and no type */
    tm_msg(&node, 5, &at);
    tm_msg(&g, 1, &node);
    tm_msg(&m, 7, &g);
    CHECK(decode_model_bytes(&m, &err) == ONYX_ERR_INVALID_MODEL);
    CHECK(strstr(err.message, "more than one value") != NULL);
    free(m.p);
    tm_buf m2 = {0};
    tm_str(&at, 1, "x");
    tm_int(&at, 20, 99);
    tm_msg(&node, 5, &at);
    tm_msg(&g, 1, &node);
    tm_msg(&m2, 7, &g);
    CHECK(decode_model_bytes(&m2, &err) == ONYX_ERR_INVALID_MODEL);
    CHECK(strstr(err.message, "unknown type 99") != NULL);
    free(m2.p);
}

/* Decodes every prefix of `data` from an exact-size copy: an error or a
 * success, never a crash or an out-of-bounds read (run under ASan). */
static int decode_every_prefix(const uint8_t *data, size_t size) {
    int errors = 0;
    for (size_t n = 0; n < size; n++) {
        onyx_arena a;
        onyx_arena_init(&a);
        uint8_t *copy = dup_exact(data, n);
        onyx_pb_model *m = NULL;
        onyx_error err = {0};
        if (onyx_pb_decode_model(copy, n, &a, &m, &err)) {
            errors++;
            if (m || !err.message[0]) errors = -1000000; /* failure must say why */
        }
        free(copy);
        onyx_arena_deinit(&a);
    }
    return errors;
}

UNIT_TEST(onnx_truncated_prefixes) {
    tm_buf b = {0};
    build_model(&b);
    int errors = decode_every_prefix(b.p, b.n);
    /* Most prefixes cut a length-delimited field and must fail. */
    CHECK(errors > (int)b.n / 2);
    free(b.p);
}

// ----------------------------------------------------------------------------
// External data

typedef struct ext_file {
    const char *name;
    const uint8_t *data;
    size_t size;
    int calls;
} ext_file;

static onyx_status ext_resolve(void *user, const char *location, const uint8_t **data,
                               size_t *size, onyx_error *err) {
    ext_file *f = user;
    f->calls++;
    if (strcmp(location, f->name))
        return onyx_errorf(err, ONYX_ERR_IO, "no file %s", location);
    *data = f->data;
    *size = f->size;
    return ONYX_OK;
}

/* A float tensor of `n` elements stored at `loc` (`off`, `len`). */
static onyx_status ext_tensor_n(int64_t n, const char *loc, const char *off, const char *len,
                                ext_file *f, onyx_tensor *out, onyx_error *err) {
    onyx_arena a;
    onyx_arena_init(&a);
    tm_buf b = {0}, kv = {0};
    tm_int(&b, 1, n);
    tm_int(&b, 2, ONYX_DTYPE_FLOAT);
    tm_str(&b, 8, "ext");
    if (loc) {
        tm_str(&kv, 1, "location");
        tm_str(&kv, 2, loc);
        tm_msg(&b, 13, &kv);
    }
    if (off) {
        tm_str(&kv, 1, "offset");
        tm_str(&kv, 2, off);
        tm_msg(&b, 13, &kv);
    }
    if (len) {
        tm_str(&kv, 1, "length");
        tm_str(&kv, 2, len);
        tm_msg(&b, 13, &kv);
    }
    tm_int(&b, 14, 1);
    onyx_pb_tensor *t = decode_tensor(&b, &a, err);
    onyx_status st = t ? onyx_pb_tensor_to_tensor(t, f ? ext_resolve : NULL, f, out, err)
                       : ONYX_ERR_INVALID_MODEL;
    free(b.p);
    onyx_arena_deinit(&a);
    return st;
}

static onyx_status ext_tensor(const char *loc, const char *off, const char *len, ext_file *f,
                              onyx_tensor *out, onyx_error *err) {
    return ext_tensor_n(3, loc, off, len, f, out, err);
}

UNIT_TEST(onnx_external_data) {
    onyx_error err = {0};
    _Alignas(16) float file[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    ext_file f = {"weights.bin", (const uint8_t *)file, sizeof file, 0};
    onyx_tensor t;
    /* Zero copy into the file for a tensor of ONYX_PB_VIEW_MIN_BYTES... */
    enum { BIG = (int)(ONYX_PB_VIEW_MIN_BYTES / sizeof(float)) };
    static _Alignas(16) float big[BIG + 4];
    for (int i = 0; i < BIG + 4; i++) big[i] = (float)i;
    ext_file fb = {"weights.bin", (const uint8_t *)big, sizeof big, 0};
    char len[32];
    snprintf(len, sizeof len, "%zu", ONYX_PB_VIEW_MIN_BYTES);
    CHECK(ext_tensor_n(BIG, "weights.bin", "16", len, &fb, &t, &err) == ONYX_OK);
    CHECK(t.heap == NULL && t.data == (void *)&big[4]);
    onyx_tensor_release(&t);
    /* ... and a copy for a smaller one: a view would keep the file's pages
     * around it resident (onnx.h). */
    CHECK(ext_tensor("weights.bin", "16", "12", &f, &t, &err) == ONYX_OK);
    CHECK(t.heap != NULL && ((float *)t.data)[0] == 4 && ((float *)t.data)[2] == 6);
    onyx_tensor_release(&t);
    CHECK(ext_tensor("weights.bin", "20", NULL, &f, &t, &err) == ONYX_OK); /* to the end */
    CHECK(((float *)t.data)[2] == 7);
    onyx_tensor_release(&t);
    CHECK(ext_tensor("weights.bin", "2", "12", &f, &t, &err) == ONYX_OK); /* unaligned: copied */
    CHECK(t.heap != NULL);
    onyx_tensor_release(&t);

    const struct {
        const char *loc, *off, *len;
        onyx_status st;
        const char *msg;
    } bad[] = {
        {"../weights.bin", "0", "12", ONYX_ERR_INVALID_MODEL, "relative path"},
        {"a/../../x", "0", "12", ONYX_ERR_INVALID_MODEL, "relative path"},
        {"..\\x", "0", "12", ONYX_ERR_INVALID_MODEL, "relative path"},
        {"/etc/passwd", "0", "12", ONYX_ERR_INVALID_MODEL, "relative path"},
        {"", "0", "12", ONYX_ERR_INVALID_MODEL, "relative path"},
        {NULL, "0", "12", ONYX_ERR_INVALID_MODEL, "without a location"},
        {"weights.bin", "33", NULL, ONYX_ERR_INVALID_MODEL, "beyond the end"},
        {"weights.bin", "24", "12", ONYX_ERR_INVALID_MODEL, "exceeds"},
        {"weights.bin", "0", "18446744073709551615", ONYX_ERR_INVALID_MODEL, "exceeds"},
        {"weights.bin", "0", "99999999999999999999999", ONYX_ERR_INVALID_MODEL, "bad external"},
        {"weights.bin", "-4", "12", ONYX_ERR_INVALID_MODEL, "bad external"},
        {"weights.bin", "0", "16", ONYX_ERR_INVALID_MODEL, "raw_data holds 16 bytes"},
        {"other.bin", "0", "12", ONYX_ERR_IO, "no file other.bin"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        onyx_status st = ext_tensor(bad[k].loc, bad[k].off, bad[k].len, &f, &t, &err);
        int ok = st == bad[k].st && strstr(err.message, bad[k].msg) && !t.data && !t.heap;
        if (!ok) fprintf(stderr, "  external case %zu: %d %s\n", k, (int)st, err.message);
        CHECK(ok);
    }
    /* No resolver: external data cannot be found. */
    CHECK(ext_tensor("weights.bin", "0", "12", NULL, &t, &err) == ONYX_ERR_INVALID_ARGUMENT);
}

// ----------------------------------------------------------------------------
// Sparse tensors

UNIT_TEST(onnx_sparse_tensor) {
    onyx_error err = {0};
    onyx_arena a;
    onyx_arena_init(&a);
    for (int coords = 0; coords <= 2; coords++) {
        tm_buf sp = {0}, vals = {0}, idx = {0};
        tm_int(&vals, 1, 2);
        tm_int(&vals, 2, ONYX_DTYPE_INT32);
        tm_int(&vals, 5, 5);
        tm_int(&vals, 5, -6);
        tm_msg(&sp, 1, &vals);
        tm_int(&idx, 1, 2);
        if (coords) tm_int(&idx, 1, 2);
        tm_int(&idx, 2, ONYX_DTYPE_INT64);
        if (coords == 0) {
            const int64_t lin[2] = {1, 10};
            tm_packed_i64(&idx, 7, lin, 2);
        } else {
            const int64_t c[4] = {0, 1, 2, coords == 1 ? 2 : 4}; /* (2, 4) is out of range */
            tm_packed_i64(&idx, 7, c, 4);
        }
        tm_msg(&sp, 2, &idx);
        const int64_t dims[2] = {3, 4};
        tm_packed_i64(&sp, 3, dims, 2);
        tm_buf opt = {0};
        tm_int(&opt, 2, ONYX_PB_ELEM_SPARSE_TENSOR);
        tm_msg(&opt, 4, &sp);
        onyx_pb_optional *o = NULL;
        CHECK(onyx_pb_decode_optional(opt.p, opt.n, &a, &o, &err) == ONYX_OK && o && o->sparse);
        onyx_value v;
        onyx_status st = onyx_pb_optional_to_value(o, &v, &err);
        if (coords == 2) {
            CHECK(st == ONYX_ERR_INVALID_MODEL && strstr(err.message, "out of range"));
        } else {
            CHECK(st == ONYX_OK && v.kind == ONYX_KIND_TENSOR && v.is_optional);
            const int32_t *d = v.tensor.data;
            CHECK(v.tensor.ndim == 2 && d[1] == 5 && d[10] == -6 && d[0] == 0 && d[11] == 0);
            onyx_value_clear(&v);
        }
        free(opt.p);
    }
    onyx_arena_deinit(&a);
}

// ----------------------------------------------------------------------------
// Sequence, map and optional values

static onyx_value tensor_value(onyx_dtype dt, int ndim, const int64_t *dims, const void *data) {
    onyx_value v;
    memset(&v, 0, sizeof v);
    v.kind = ONYX_KIND_TENSOR;
    onyx_tensor_alloc(&v.tensor, dt, ndim, dims);
    if (dt == ONYX_DTYPE_STRING) {
        for (int64_t i = 0; i < onyx_tensor_count(&v.tensor); i++)
            ((char **)v.tensor.data)[i] = strdup(((const char *const *)data)[i]);
    } else if (onyx_tensor_nbytes(&v.tensor)) {
        memcpy(v.tensor.data, data, onyx_tensor_nbytes(&v.tensor));
    }
    return v;
}

/* A sequence of n zeroed items (filled by the caller). */
static onyx_value seq_value(onyx_dtype elem_type, int64_t n) {
    onyx_value v;
    memset(&v, 0, sizeof v);
    v.kind = ONYX_KIND_SEQUENCE;
    v.elem_type = elem_type;
    v.n_items = n;
    if (n) v.items = calloc((size_t)n, sizeof *v.items);
    return v;
}

/* A map of the keys and values tensor values (both moved in). */
static onyx_value map_value(onyx_value keys, onyx_value values) {
    onyx_value v;
    memset(&v, 0, sizeof v);
    v.kind = ONYX_KIND_MAP;
    v.tensor = keys.tensor;
    v.map_values = calloc(1, sizeof *v.map_values);
    *v.map_values = values;
    return v;
}

/* Encodes v, decodes it as `kind` ('s' sequence, 'm' map, 'o' optional),
 * converts it back and compares. */
static int value_roundtrip(const onyx_value *v, char kind) {
    onyx_buf buf = {0};
    onyx_error err = {0};
    onyx_arena a;
    onyx_arena_init(&a);
    onyx_value back;
    memset(&back, 0, sizeof back);
    int ok = onyx_pb_encode_value(&buf, "v", v) == ONYX_OK;
    uint8_t *copy = ok ? dup_exact(buf.data, buf.len) : NULL;
    onyx_status st = ONYX_ERR_RUNTIME;
    if (ok && kind == 's') {
        onyx_pb_sequence *s;
        if (!(st = onyx_pb_decode_sequence(copy, buf.len, &a, &s, &err)))
            st = onyx_pb_sequence_to_value(s, &back, &err);
    } else if (ok && kind == 'm') {
        onyx_pb_map *m;
        if (!(st = onyx_pb_decode_map(copy, buf.len, &a, &m, &err)))
            st = onyx_pb_map_to_value(m, &back, &err);
    } else if (ok) {
        onyx_pb_optional *o;
        if (!(st = onyx_pb_decode_optional(copy, buf.len, &a, &o, &err)))
            st = onyx_pb_optional_to_value(o, &back, &err);
    }
    ok = ok && st == ONYX_OK && values_equal(v, &back);
    if (!ok) fprintf(stderr, "  value round trip (%c): %s\n", kind, err.message);
    onyx_value_clear(&back);
    free(copy);
    free(buf.data);
    onyx_arena_deinit(&a);
    return ok;
}

UNIT_TEST(onnx_values_roundtrip) {
    const float f6[6] = {1, 2, 3, 4, 5, 6};
    const int64_t d23[2] = {2, 3}, d3[1] = {3}, d2[1] = {2};

    onyx_value seq = seq_value(ONYX_DTYPE_FLOAT, 2);
    seq.items[0] = tensor_value(ONYX_DTYPE_FLOAT, 2, d23, f6);
    seq.items[1] = tensor_value(ONYX_DTYPE_FLOAT, 1, d3, f6 + 3);
    CHECK(value_roundtrip(&seq, 's'));

    /* optional wrapping the sequence; then an empty optional */
    seq.is_optional = true;
    CHECK(value_roundtrip(&seq, 'o'));
    seq.is_optional = false;
    onyx_value none;
    memset(&none, 0, sizeof none);
    none.is_optional = true;
    CHECK(value_roundtrip(&none, 'o'));
    onyx_value opt_t = tensor_value(ONYX_DTYPE_INT64, 1, d2, d23);
    opt_t.is_optional = true;
    CHECK(value_roundtrip(&opt_t, 'o'));
    onyx_value_clear(&opt_t);

    /* empty sequence */
    onyx_value empty = seq_value(ONYX_DTYPE_UNDEFINED, 0);
    CHECK(value_roundtrip(&empty, 's'));

    /* map<int64, float> with 1-D tensor values; map<string, float> */
    const int64_t keys[3] = {5, -1, 1LL << 40};
    onyx_value map = map_value(tensor_value(ONYX_DTYPE_INT64, 1, d3, keys),
                               tensor_value(ONYX_DTYPE_FLOAT, 1, d3, f6));
    CHECK(value_roundtrip(&map, 'm'));
    const char *skeys[3] = {"cat", "dog", ""};
    onyx_value smap = map_value(tensor_value(ONYX_DTYPE_STRING, 1, d3, skeys),
                                tensor_value(ONYX_DTYPE_STRING, 1, d3, skeys));
    CHECK(value_roundtrip(&smap, 'm'));

    /* a sequence of maps (ZipMap's output) and a sequence of sequences */
    onyx_value seqmaps = seq_value(ONYX_DTYPE_UNDEFINED, 2);
    seqmaps.items[0] = map;
    seqmaps.items[1] = smap;
    CHECK(value_roundtrip(&seqmaps, 's'));
    onyx_value seqseq = seq_value(ONYX_DTYPE_UNDEFINED, 2);
    seqseq.items[0] = seq;
    seqseq.items[1] = empty;
    CHECK(value_roundtrip(&seqseq, 's'));
    onyx_value_clear(&seqseq);
    onyx_value_clear(&seqmaps);
}

UNIT_TEST(onnx_values_rejected) {
    onyx_error err = {0};
    onyx_arena a;
    onyx_arena_init(&a);
    onyx_value v;
    /* a map with 2 keys and 1 value */
    tm_buf m = {0}, seq = {0}, t = {0};
    tm_int(&m, 2, ONYX_DTYPE_INT64);
    tm_int(&m, 3, 1);
    tm_int(&m, 3, 2);
    tm_int(&seq, 2, ONYX_PB_ELEM_TENSOR);
    tm_int(&t, 2, ONYX_DTYPE_FLOAT);
    tm_f32(&t, 4, 1.0f);
    tm_msg(&seq, 3, &t);
    tm_msg(&m, 5, &seq);
    onyx_pb_map *pm = NULL;
    CHECK(onyx_pb_decode_map(m.p, m.n, &a, &pm, &err) == ONYX_OK);
    CHECK(pm && onyx_pb_map_to_value(pm, &v, &err) == ONYX_ERR_INVALID_MODEL);
    CHECK(strstr(err.message, "2 keys but 1 values") != NULL && v.kind == ONYX_KIND_NONE);
    free(m.p);
    /* a sequence whose elem_type disagrees with its items */
    tm_buf s = {0};
    tm_int(&s, 2, ONYX_PB_ELEM_MAP);
    tm_int(&t, 2, ONYX_DTYPE_FLOAT);
    tm_msg(&s, 3, &t);
    onyx_pb_sequence *ps = NULL;
    CHECK(onyx_pb_decode_sequence(s.p, s.n, &a, &ps, &err) == ONYX_OK);
    CHECK(ps && onyx_pb_sequence_to_value(ps, &v, &err) == ONYX_ERR_INVALID_MODEL);
    free(s.p);
    /* a sequence of tensors of two types */
    tm_buf s2 = {0};
    tm_int(&s2, 2, ONYX_PB_ELEM_TENSOR);
    tm_int(&t, 2, ONYX_DTYPE_FLOAT);
    tm_f32(&t, 4, 1.0f);
    tm_msg(&s2, 3, &t);
    tm_int(&t, 2, ONYX_DTYPE_INT64);
    tm_int(&t, 7, 1);
    tm_msg(&s2, 3, &t);
    CHECK(onyx_pb_decode_sequence(s2.p, s2.n, &a, &ps, &err) == ONYX_OK);
    CHECK(ps && onyx_pb_sequence_to_value(ps, &v, &err) == ONYX_ERR_INVALID_MODEL);
    CHECK(strstr(err.message, "mixes") != NULL);
    free(s2.p);
    /* an optional declaring a tensor it does not hold */
    tm_buf o = {0};
    tm_int(&o, 2, ONYX_PB_ELEM_TENSOR);
    onyx_pb_optional *po = NULL;
    CHECK(onyx_pb_decode_optional(o.p, o.n, &a, &po, &err) == ONYX_OK);
    CHECK(po && onyx_pb_optional_to_value(po, &v, &err) == ONYX_ERR_INVALID_MODEL);
    free(o.p);
    onyx_arena_deinit(&a);
}

// ----------------------------------------------------------------------------
// The ONNX backend node test data (ONYX_NODE_DATA=.../onnx/backend/test/data/node)

typedef struct node_stats {
    int models, pb_files, identical, failures;
} node_stats;

/* Decodes a .pb of the kind `type` declares, converts it, re-encodes,
 * decodes and converts again, and compares the two values. */
static void check_pb_file(const char *path, const onyx_pb_type *type, node_stats *ns) {
    onyx_mapping map;
    onyx_error err = {0};
    if (onyx_file_map(path, &map, &err)) return;
    onyx_arena a;
    onyx_arena_init(&a);
    onyx_value v, back;
    memset(&v, 0, sizeof v);
    memset(&back, 0, sizeof back);
    onyx_buf buf = {0};
    onyx_pb_type_kind kind = type ? type->kind : ONYX_PB_TYPE_TENSOR;
    onyx_status st;
    char k = kind == ONYX_PB_TYPE_SEQUENCE ? 's' : kind == ONYX_PB_TYPE_MAP ? 'm'
                                        : kind == ONYX_PB_TYPE_OPTIONAL       ? 'o'
                                                                              : 't';
    for (int pass = 0; pass < 2; pass++) {
        const uint8_t *data = pass ? buf.data : map.data;
        size_t size = pass ? buf.len : map.size;
        onyx_value *out = pass ? &back : &v;
        if (k == 's') {
            onyx_pb_sequence *s;
            if (!(st = onyx_pb_decode_sequence(data, size, &a, &s, &err)))
                st = onyx_pb_sequence_to_value(s, out, &err);
        } else if (k == 'm') {
            onyx_pb_map *m;
            if (!(st = onyx_pb_decode_map(data, size, &a, &m, &err)))
                st = onyx_pb_map_to_value(m, out, &err);
        } else if (k == 'o') {
            onyx_pb_optional *o;
            if (!(st = onyx_pb_decode_optional(data, size, &a, &o, &err)))
                st = onyx_pb_optional_to_value(o, out, &err);
        } else {
            onyx_pb_tensor *t;
            if (!(st = onyx_pb_decode_tensor(data, size, &a, &t, &err))) {
                out->kind = ONYX_KIND_TENSOR;
                st = onyx_pb_tensor_to_tensor(t, NULL, NULL, &out->tensor, &err);
                if (!st && pass == 0) {
                    onyx_tensor_view tv;
                    onyx_tensor_to_view(&out->tensor, &tv);
                    st = onyx_pb_encode_tensor(&buf, t->name, &tv);
                    if (!st && buf.len == map.size && !memcmp(buf.data, map.data, map.size))
                        ns->identical++;
                }
            }
        }
        if (!st && pass == 0 && k != 't') st = onyx_pb_encode_value(&buf, "v", &v);
        if (st) break;
    }
    if (st || !values_equal(&v, &back)) {
        fprintf(stderr, "  %s: %s\n", path, st ? err.message : "round trip differs");
        ns->failures++;
    }
    ns->pb_files++;
    /* The borrowed tensor of pass 0 may point into the mapping: clear first. */
    onyx_value_clear(&v);
    onyx_value_clear(&back);
    free(buf.data);
    onyx_arena_deinit(&a);
    onyx_file_unmap(&map);
}

static void check_node_dir(const char *root, const char *name, node_stats *ns) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/model.onnx", root, name);
    onyx_mapping map;
    onyx_error err = {0};
    if (onyx_file_map(path, &map, &err)) return;
    onyx_arena a;
    onyx_arena_init(&a);
    onyx_pb_model *m = NULL;
    if (onyx_pb_decode_model(map.data, map.size, &a, &m, &err) || !m->graph) {
        fprintf(stderr, "  %s: %s\n", path, err.message);
        ns->failures++;
        goto done;
    }
    ns->models++;
    for (int i = 0; i < m->graph->n_initializers; i++) {
        onyx_tensor t;
        if (onyx_pb_tensor_to_tensor(&m->graph->initializers[i], NULL, NULL, &t, &err)) {
            fprintf(stderr, "  %s: %s\n", path, err.message);
            ns->failures++;
        }
        onyx_tensor_release(&t);
    }
    for (int io = 0; io < 2; io++) {
        int n = io ? m->graph->n_outputs : m->graph->n_inputs;
        const onyx_pb_value_info *vi = io ? m->graph->outputs : m->graph->inputs;
        for (int i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/%s/test_data_set_0/%s_%d.pb", root, name,
                     io ? "output" : "input", i);
            check_pb_file(path, vi[i].type, ns);
        }
    }
done:
    onyx_arena_deinit(&a);
    onyx_file_unmap(&map);
}

UNIT_TEST(onnx_node_test_data) {
    const char *root = getenv("ONYX_NODE_DATA");
    if (!root || !*root) {
        fprintf(stderr, "  (skipped: set ONYX_NODE_DATA to the ONNX node test directory)\n");
        return;
    }
    DIR *d = opendir(root);
    CHECK(d != NULL);
    if (!d) return;
    node_stats ns = {0};
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') check_node_dir(root, e->d_name, &ns);
    closedir(d);
    fprintf(stderr, "  node data: %d models, %d .pb files (%d tensors re-encoded byte-identical)\n",
            ns.models, ns.pb_files, ns.identical);
    CHECK(ns.models > 1000 && ns.failures == 0);

    /* Truncation of small real models with nested graphs. */
    static const char *const small[] = {"test_if", "test_loop11", "test_scan9_sum",
                                        "test_sequence_map_add_2_sequences",
                                        "test_optional_get_element_optional_sequence",
                                        "test_ai_onnx_ml_label_encoder_tensor_mapping"};
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/model.onnx", root, small[i]);
        uint8_t *data;
        size_t size;
        onyx_error err;
        if (onyx_file_read(path, &data, &size, &err)) continue;
        if (size < 8192) CHECK(decode_every_prefix(data, size) > 0);
        free(data);
    }
}
