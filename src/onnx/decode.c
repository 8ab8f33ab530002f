/* decode.c - the protobuf wire reader and the decoders of the ONNX messages.
 *
 * Owns: turning serialized ModelProto, TensorProto, SequenceProto, MapProto
 * and OptionalProto bytes into the onyx_pb_* views of onnx.h (field numbers
 * from onnx-ml.proto / onnx-data.proto, onnx 1.19). Does not own: what the
 * messages mean (core/graph.c) nor tensor conversion (convert.c).
 *
 * The input is hostile: every tag, varint and length is checked against the
 * end of the enclosing message before anything is read, nesting is limited to
 * ONYX_PB_MAX_DEPTH, and no byte at or beyond `size` is ever touched. Each
 * message is read in two linear passes: the first counts the elements of its
 * repeated fields (skipping payloads), the second allocates exact arrays in
 * the arena and fills them. Packed and unpacked repeated scalars are both
 * accepted, as protobuf requires of parsers.
 *
 * Defaults for absent fields: names, op types, domains and overloads are ""
 * (never NULL); doc strings, producer name/version, the model's domain and
 * type denotations are NULL. A singular field given twice keeps the last
 * value (sub-messages are replaced, not merged). Unknown fields are skipped;
 * groups, a wrong wire type for a known field, and TensorProto.segment are
 * errors.
 */
#include "onnx/onnx.h"

#include "base/error.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

// ----------------------------------------------------------------------------
// Wire format

enum {
    WIRE_VARINT = 0,
    WIRE_I64 = 1,
    WIRE_LEN = 2,
    WIRE_SGROUP = 3,
    WIRE_EGROUP = 4,
    WIRE_I32 = 5,
};

typedef struct pb_ctx {
    const uint8_t *data; /* (size) the whole input */
    size_t size;
    onyx_arena *arena;
    onyx_error *err;
    int depth;           /* messages entered, the top-level one included */
    bool mapped;         /* data is a private read-only file mapping */
} pb_ctx;

/* Field names per message, for error messages only. */
typedef struct pb_fname {
    uint32_t num;
    const char *name;
} pb_fname;

typedef struct pb_msg {
    const char *name;
    const pb_fname *fields; /* terminated by {0, NULL} */
} pb_msg;

/* One field as read from the wire. */
typedef struct pb_field {
    uint32_t num;    /* 0 once the message is exhausted */
    int wire;
    size_t at;       /* offset of the tag in the input */
    uint64_t u;      /* VARINT, I64 and I32 payloads */
    size_t off, len; /* LEN payload: [off, off + len) */
} pb_field;

typedef onyx_status (*pb_dec_fn)(pb_ctx *c, size_t pos, size_t end, void *out);

static const char *field_name(const pb_msg *m, uint32_t num, char *buf, size_t cap) {
    for (const pb_fname *f = m->fields; f->name; f++)
        if (f->num == num) return f->name;
    snprintf(buf, cap, "field %u", (unsigned)num);
    return buf;
}

/* Formats "<Message>.<field> at byte <at>: <detail>" into the error. */
static onyx_status bad(pb_ctx *c, onyx_status st, const pb_msg *m, uint32_t num, size_t at,
                       const char *fmt, ...) ONYX_PRINTF(6, 7);
static onyx_status bad(pb_ctx *c, onyx_status st, const pb_msg *m, uint32_t num, size_t at,
                       const char *fmt, ...) {
    char detail[320], fbuf[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    if (num)
        return onyx_errorf(c->err, st, "%s.%s at byte %zu: %s", m->name,
                           field_name(m, num, fbuf, sizeof fbuf), at, detail);
    return onyx_errorf(c->err, st, "%s at byte %zu: %s", m->name, at, detail);
}

static onyx_status oom(pb_ctx *c, const pb_msg *m, const pb_field *f) {
    return bad(c, ONYX_ERR_OUT_OF_MEMORY, m, f->num, f->at, "out of memory");
}

/* Reads a varint from d[*pos, end). Returns 0, -1 when truncated, -2 when it
 * is longer than 10 bytes or overflows 64 bits. */
static int read_varint(const uint8_t *d, size_t *pos, size_t end, uint64_t *out) {
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (*pos >= end) return -1;
        uint8_t b = d[(*pos)++];
        if (i == 9 && b > 1) return -2;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -2;
}

static uint64_t read_le(const uint8_t *d, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | d[i];
    return v;
}

/* Two's complement reinterpretations without implementation-defined casts. */
static int64_t to_i64(uint64_t u) { return u <= INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1; }
static int32_t to_i32(uint64_t u) {
    uint32_t w = (uint32_t)u;
    return w <= INT32_MAX ? (int32_t)w : -(int32_t)(~w) - 1;
}

/* Reads the next field of the message ending at `end`; f->num is 0 at the end. */
static onyx_status pb_next(pb_ctx *c, const pb_msg *m, size_t *pos, size_t end, pb_field *f) {
    memset(f, 0, sizeof *f);
    if (*pos >= end) return ONYX_OK;
    f->at = *pos;
    uint64_t tag;
    int r = read_varint(c->data, pos, end, &tag);
    if (r)
        return bad(c, ONYX_ERR_INVALID_MODEL, m, 0, f->at,
                   r == -1 ? "field tag truncated by the end of the message"
                           : "field tag varint longer than 10 bytes");
    if (tag > UINT32_MAX || (tag >> 3) == 0)
        return bad(c, ONYX_ERR_INVALID_MODEL, m, 0, f->at, "invalid field number %llu",
                   (unsigned long long)(tag >> 3));
    f->num = (uint32_t)(tag >> 3);
    f->wire = (int)(tag & 7);
    size_t left = end - *pos;
    switch (f->wire) {
    case WIRE_VARINT:
        r = read_varint(c->data, pos, end, &f->u);
        if (r)
            return bad(c, ONYX_ERR_INVALID_MODEL, m, f->num, f->at,
                       r == -1 ? "varint truncated by the end of the message"
                               : "varint longer than 10 bytes");
        return ONYX_OK;
    case WIRE_I64:
    case WIRE_I32: {
        size_t n = f->wire == WIRE_I64 ? 8 : 4;
        if (left < n)
            return bad(c, ONYX_ERR_INVALID_MODEL, m, f->num, f->at,
                       "fixed-width value needs %zu bytes, %zu left", n, left);
        f->u = read_le(c->data + *pos, (int)n);
        *pos += n;
        return ONYX_OK;
    }
    case WIRE_LEN: {
        uint64_t len;
        r = read_varint(c->data, pos, end, &len);
        if (r)
            return bad(c, ONYX_ERR_INVALID_MODEL, m, f->num, f->at,
                       r == -1 ? "length truncated by the end of the message"
                               : "length varint longer than 10 bytes");
        left = end - *pos;
        if (len > left)
            return bad(c, ONYX_ERR_INVALID_MODEL, m, f->num, f->at,
                       "length %llu exceeds the %zu bytes left", (unsigned long long)len, left);
        f->off = *pos;
        f->len = (size_t)len;
        *pos += (size_t)len;
        return ONYX_OK;
    }
    case WIRE_SGROUP:
    case WIRE_EGROUP:
        return bad(c, ONYX_ERR_INVALID_MODEL, m, f->num, f->at,
                   "protobuf groups (wire type %d) are not supported", f->wire);
    default:
        return bad(c, ONYX_ERR_INVALID_MODEL, m, f->num, f->at, "invalid wire type %d",
                   f->wire);
    }
}

static onyx_status want(pb_ctx *c, const pb_msg *m, const pb_field *f, int wire) {
    if (f->wire == wire) return ONYX_OK;
    return bad(c, ONYX_ERR_INVALID_MODEL, m, f->num, f->at, "wire type %d, expected %d", f->wire,
               wire);
}

// ----------------------------------------------------------------------------
// Field readers

static onyx_status get_i64(pb_ctx *c, const pb_msg *m, const pb_field *f, int64_t *out) {
    onyx_status st = want(c, m, f, WIRE_VARINT);
    if (!st) *out = to_i64(f->u);
    return st;
}

static onyx_status get_i32(pb_ctx *c, const pb_msg *m, const pb_field *f, int32_t *out) {
    onyx_status st = want(c, m, f, WIRE_VARINT);
    if (!st) *out = to_i32(f->u);
    return st;
}

static onyx_status get_f32(pb_ctx *c, const pb_msg *m, const pb_field *f, float *out) {
    onyx_status st = want(c, m, f, WIRE_I32);
    if (!st) {
        uint32_t w = (uint32_t)f->u;
        memcpy(out, &w, sizeof w);
    }
    return st;
}

/* A string or bytes field, copied into the arena and NUL-terminated. */
static onyx_status get_pbstr(pb_ctx *c, const pb_msg *m, const pb_field *f, onyx_pb_string *out) {
    onyx_status st = want(c, m, f, WIRE_LEN);
    if (st) return st;
    char *s = onyx_arena_strndup(c->arena, (const char *)c->data + f->off, f->len);
    if (!s) return oom(c, m, f);
    out->s = s;
    out->len = f->len;
    return ONYX_OK;
}

static onyx_status get_str(pb_ctx *c, const pb_msg *m, const pb_field *f, const char **out) {
    onyx_pb_string s = {NULL, 0};
    onyx_status st = get_pbstr(c, m, f, &s);
    if (!st) *out = s.s;
    return st;
}

/* Operator set domains: "ai.onnx" is another spelling of the default "". */
static onyx_status get_domain(pb_ctx *c, const pb_msg *m, const pb_field *f, const char **out) {
    onyx_pb_string s = {NULL, 0};
    onyx_status st = get_pbstr(c, m, f, &s);
    if (st) return st;
    *out = (s.len == 7 && memcmp(s.s, "ai.onnx", 7) == 0) ? "" : s.s;
    return ONYX_OK;
}

/* Decodes the sub-message in f's payload into `out` with `fn`, one level
 * deeper. */
static onyx_status sub(pb_ctx *c, const pb_msg *m, const pb_field *f, pb_dec_fn fn, void *out) {
    onyx_status st = want(c, m, f, WIRE_LEN);
    if (st) return st;
    if (c->depth >= ONYX_PB_MAX_DEPTH)
        return bad(c, ONYX_ERR_INVALID_MODEL, m, f->num, f->at,
                   "messages nested deeper than %d levels", ONYX_PB_MAX_DEPTH);
    c->depth++;
    st = fn(c, f->off, f->off + f->len, out);
    c->depth--;
    return st;
}

/* Like sub() into a new zeroed arena object of `size` bytes, which it
 * returns (NULL on failure, with *st set). */
static void *sub_new(pb_ctx *c, const pb_msg *m, const pb_field *f, pb_dec_fn fn, size_t size,
                     onyx_status *st) {
    void *p = onyx_arena_alloc(c->arena, size);
    if (!p) {
        *st = oom(c, m, f);
        return NULL;
    }
    *st = sub(c, m, f, fn, p);
    return *st ? NULL : p;
}

// ----------------------------------------------------------------------------
// Repeated fields: a counting pass, then exact arrays

typedef enum rep_kind {
    REP_LEN,    /* strings, bytes and messages: one element per occurrence */
    REP_VARINT, /* int32/int64/uint64/enum: packed or not */
    REP_I32,    /* float */
    REP_I64,    /* double */
} rep_kind;

typedef struct pb_rep {
    uint32_t num;
    rep_kind kind;
    size_t n;  /* element count found by pb_count */
    size_t i;  /* elements filled so far */
    void *arr; /* (n) allocated by pb_alloc_reps */
} pb_rep;

static const int rep_wire[] = {WIRE_LEN, WIRE_VARINT, WIRE_I32, WIRE_I64};

/* Counts the elements of every repeated field in reps[] over the message
 * [pos, end). Wire-type mismatches are not counted: the filling pass reports
 * them. */
static onyx_status pb_count(pb_ctx *c, const pb_msg *m, size_t pos, size_t end, pb_rep *reps,
                            int nrep) {
    pb_field f;
    onyx_status st;
    while (!(st = pb_next(c, m, &pos, end, &f)) && f.num) {
        pb_rep *r = NULL;
        for (int k = 0; k < nrep; k++)
            if (reps[k].num == f.num) r = &reps[k];
        if (!r) continue;
        if (f.wire == rep_wire[r->kind]) {
            r->n++;
        } else if (f.wire == WIRE_LEN && r->kind == REP_VARINT) {
            /* Packed varints: one element per byte without the continuation bit. */
            const uint8_t *p = c->data + f.off;
            size_t n = 0;
            for (size_t j = 0; j < f.len; j++) n += !(p[j] & 0x80);
            if (f.len && (p[f.len - 1] & 0x80))
                return bad(c, ONYX_ERR_INVALID_MODEL, m, f.num, f.at,
                           "packed varints truncated by the end of the field");
            r->n += n;
        } else if (f.wire == WIRE_LEN) {
            size_t w = r->kind == REP_I32 ? 4 : 8;
            if (f.len % w)
                return bad(c, ONYX_ERR_INVALID_MODEL, m, f.num, f.at,
                           "packed length %zu is not a multiple of %zu", f.len, w);
            r->n += f.len / w;
        }
    }
    return st;
}

/* Allocates reps[k].arr with reps[k].n elements of elem[k] bytes each. */
static onyx_status pb_alloc_reps(pb_ctx *c, const pb_msg *m, pb_rep *reps, const size_t *elem,
                                 int nrep, size_t at) {
    for (int k = 0; k < nrep; k++) {
        reps[k].arr = NULL;
        if (!reps[k].n) continue;
        reps[k].arr = onyx_arena_calloc(c->arena, reps[k].n, elem[k]);
        if (!reps[k].arr)
            return bad(c, ONYX_ERR_OUT_OF_MEMORY, m, reps[k].num, at,
                       "out of memory for %zu elements", reps[k].n);
    }
    return ONYX_OK;
}

/* Checks that a count fits the `int` count fields of onnx.h. */
static onyx_status int_count(pb_ctx *c, const pb_msg *m, const pb_rep *r, size_t at, int *out) {
    if (r->n > INT_MAX)
        return bad(c, ONYX_ERR_INVALID_MODEL, m, r->num, at, "%zu elements exceed the limit of %d",
                   r->n, INT_MAX);
    *out = (int)r->n;
    return ONYX_OK;
}

/* The next element slot of r (element size `elem`), or NULL if the counting
 * pass saw fewer (which would be a bug, reported rather than overflowed). */
static void *rep_slot(pb_ctx *c, const pb_msg *m, const pb_field *f, pb_rep *r, size_t elem,
                      onyx_status *st) {
    if (r->i >= r->n) {
        *st = bad(c, ONYX_ERR_INVALID_MODEL, m, f->num, f->at, "element count changed");
        return NULL;
    }
    *st = ONYX_OK;
    return (char *)r->arr + r->i++ * elem;
}

/* Scalar element types of repeated numeric fields. */
typedef enum scalar_kind { SK_I64, SK_I32, SK_U64, SK_F32, SK_F64 } scalar_kind;

static void store_scalar(scalar_kind k, void *slot, uint64_t u) {
    switch (k) {
    case SK_I64: *(int64_t *)slot = to_i64(u); break;
    case SK_I32: *(int32_t *)slot = to_i32(u); break;
    case SK_U64: *(uint64_t *)slot = u; break;
    case SK_F32: {
        uint32_t w = (uint32_t)u;
        memcpy(slot, &w, 4);
        break;
    }
    case SK_F64: memcpy(slot, &u, 8); break;
    }
}

static size_t scalar_size(scalar_kind k) {
    return k == SK_I32 || k == SK_F32 ? 4 : 8;
}

/* Appends the element(s) of one occurrence of a repeated scalar field,
 * packed (LEN) or not. */
static onyx_status rep_scalars(pb_ctx *c, const pb_msg *m, const pb_field *f, pb_rep *r,
                               scalar_kind k) {
    size_t esz = scalar_size(k);
    onyx_status st;
    if (f->wire != WIRE_LEN) {
        if ((st = want(c, m, f, rep_wire[r->kind]))) return st;
        void *slot = rep_slot(c, m, f, r, esz, &st);
        if (slot) store_scalar(k, slot, f->u);
        return st;
    }
    size_t pos = f->off, end = f->off + f->len;
    while (pos < end) {
        uint64_t u;
        if (r->kind == REP_VARINT) {
            if (read_varint(c->data, &pos, end, &u))
                return bad(c, ONYX_ERR_INVALID_MODEL, m, f->num, f->at,
                           "malformed packed varint at byte %zu", pos);
        } else {
            size_t w = r->kind == REP_I32 ? 4 : 8;
            if (end - pos < w)
                return bad(c, ONYX_ERR_INVALID_MODEL, m, f->num, f->at,
                           "packed value truncated");
            u = read_le(c->data + pos, (int)w);
            pos += w;
        }
        void *slot = rep_slot(c, m, f, r, esz, &st);
        if (!slot) return st;
        store_scalar(k, slot, u);
    }
    return ONYX_OK;
}

/* Appends one occurrence of a repeated message field, decoded in place. */
static onyx_status rep_msg(pb_ctx *c, const pb_msg *m, const pb_field *f, pb_rep *r, size_t elem,
                           pb_dec_fn fn) {
    onyx_status st;
    if ((st = want(c, m, f, WIRE_LEN))) return st;
    void *slot = rep_slot(c, m, f, r, elem, &st);
    if (!slot) return st;
    return sub(c, m, f, fn, slot);
}

/* Appends one occurrence of a repeated message field stored by pointer
 * (the array elements are pointers to new objects of `size` bytes). */
static onyx_status rep_msg_ptr(pb_ctx *c, const pb_msg *m, const pb_field *f, pb_rep *r,
                               size_t size, pb_dec_fn fn) {
    onyx_status st;
    if ((st = want(c, m, f, WIRE_LEN))) return st;
    void *slot = rep_slot(c, m, f, r, sizeof(void *), &st);
    if (!slot) return st;
    void *p = sub_new(c, m, f, fn, size, &st);
    if (p) memcpy(slot, &p, sizeof p);
    return st;
}

static onyx_status rep_pbstr(pb_ctx *c, const pb_msg *m, const pb_field *f, pb_rep *r) {
    onyx_status st;
    if ((st = want(c, m, f, WIRE_LEN))) return st;
    onyx_pb_string *slot = rep_slot(c, m, f, r, sizeof *slot, &st);
    if (!slot) return st;
    return get_pbstr(c, m, f, slot);
}

static onyx_status rep_str(pb_ctx *c, const pb_msg *m, const pb_field *f, pb_rep *r) {
    onyx_status st;
    if ((st = want(c, m, f, WIRE_LEN))) return st;
    const char **slot = rep_slot(c, m, f, r, sizeof *slot, &st);
    if (!slot) return st;
    return get_str(c, m, f, slot);
}

/* The fill loop shared by every decoder: `for each field` with the status. */
#define FOR_FIELDS(c, m, pos, end, f, st) \
    while (!((st) = pb_next((c), (m), &(pos), (end), &(f))) && (f).num)

// ----------------------------------------------------------------------------
// Small messages: StringStringEntryProto, OperatorSetIdProto

static const pb_msg kv_msg = {"StringStringEntryProto", (const pb_fname[]){
    {1, "key"}, {2, "value"}, {0, NULL}}};

static onyx_status dec_kv(pb_ctx *c, size_t pos, size_t end, void *out) {
    onyx_pb_kv *kv = out;
    const pb_msg *m = &kv_msg;
    kv->key = kv->value = "";
    pb_field f;
    onyx_status st;
    FOR_FIELDS(c, m, pos, end, f, st) {
        if (f.num == 1) st = get_str(c, m, &f, &kv->key);
        else if (f.num == 2) st = get_str(c, m, &f, &kv->value);
        if (st) return st;
    }
    return st;
}

static const pb_msg opset_msg = {"OperatorSetIdProto", (const pb_fname[]){
    {1, "domain"}, {2, "version"}, {0, NULL}}};

static onyx_status dec_opset(pb_ctx *c, size_t pos, size_t end, void *out) {
    onyx_pb_opset *o = out;
    const pb_msg *m = &opset_msg;
    o->domain = "";
    pb_field f;
    onyx_status st;
    FOR_FIELDS(c, m, pos, end, f, st) {
        if (f.num == 1) st = get_domain(c, m, &f, &o->domain);
        else if (f.num == 2) st = get_i64(c, m, &f, &o->version);
        if (st) return st;
    }
    return st;
}

// ----------------------------------------------------------------------------
// TensorProto and SparseTensorProto

static const pb_msg tensor_msg = {"TensorProto", (const pb_fname[]){
    {1, "dims"}, {2, "data_type"}, {3, "segment"}, {4, "float_data"}, {5, "int32_data"},
    {6, "string_data"}, {7, "int64_data"}, {8, "name"}, {9, "raw_data"}, {10, "double_data"},
    {11, "uint64_data"}, {12, "doc_string"}, {13, "external_data"}, {14, "data_location"},
    {16, "metadata_props"}, {0, NULL}}};

static onyx_status dec_tensor(pb_ctx *c, size_t pos, size_t end, void *out) {
    onyx_pb_tensor *t = out;
    const pb_msg *m = &tensor_msg;
    enum { DIMS, FLOATS, INT32S, STRINGS, INT64S, DOUBLES, UINT64S, EXTERNAL, NREP };
    pb_rep r[NREP] = {{1, REP_VARINT, 0, 0, 0}, {4, REP_I32, 0, 0, 0}, {5, REP_VARINT, 0, 0, 0},
                      {6, REP_LEN, 0, 0, 0},    {7, REP_VARINT, 0, 0, 0}, {10, REP_I64, 0, 0, 0},
                      {11, REP_VARINT, 0, 0, 0}, {13, REP_LEN, 0, 0, 0}};
    static const size_t esz[NREP] = {sizeof(int64_t),        sizeof(float),   sizeof(int32_t),
                                     sizeof(onyx_pb_string), sizeof(int64_t), sizeof(double),
                                     sizeof(uint64_t),       sizeof(onyx_pb_kv)};
    onyx_status st;
    size_t start = pos;
    t->name = "";
    if ((st = pb_count(c, m, pos, end, r, NREP))) return st;
    if ((st = pb_alloc_reps(c, m, r, esz, NREP, start))) return st;
    if ((st = int_count(c, m, &r[DIMS], start, &t->ndims))) return st;
    if ((st = int_count(c, m, &r[EXTERNAL], start, &t->n_external))) return st;
    t->dims = r[DIMS].arr;
    t->float_data = r[FLOATS].arr, t->n_float = r[FLOATS].n;
    t->int32_data = r[INT32S].arr, t->n_int32 = r[INT32S].n;
    t->string_data = r[STRINGS].arr, t->n_string = r[STRINGS].n;
    t->int64_data = r[INT64S].arr, t->n_int64 = r[INT64S].n;
    t->double_data = r[DOUBLES].arr, t->n_double = r[DOUBLES].n;
    t->uint64_data = r[UINT64S].arr, t->n_uint64 = r[UINT64S].n;
    t->external = r[EXTERNAL].arr;

    pb_field f;
    FOR_FIELDS(c, m, pos, end, f, st) {
        switch (f.num) {
        case 1: st = rep_scalars(c, m, &f, &r[DIMS], SK_I64); break;
        case 2: st = get_i32(c, m, &f, &t->data_type); break;
        case 3:
            st = bad(c, ONYX_ERR_UNSUPPORTED, m, f.num, f.at,
                     "segmented tensors are not supported");
            break;
        case 4: st = rep_scalars(c, m, &f, &r[FLOATS], SK_F32); break;
        case 5: st = rep_scalars(c, m, &f, &r[INT32S], SK_I32); break;
        case 6: st = rep_pbstr(c, m, &f, &r[STRINGS]); break;
        case 7: st = rep_scalars(c, m, &f, &r[INT64S], SK_I64); break;
        case 8: st = get_str(c, m, &f, &t->name); break;
        case 9:
            if (!(st = want(c, m, &f, WIRE_LEN))) {
                t->raw = c->data + f.off;
                t->raw_size = f.len;
                t->has_raw = 1;
                t->raw_mapped = c->mapped;
            }
            break;
        case 10: st = rep_scalars(c, m, &f, &r[DOUBLES], SK_F64); break;
        case 11: st = rep_scalars(c, m, &f, &r[UINT64S], SK_U64); break;
        case 12: st = get_str(c, m, &f, &t->doc_string); break;
        case 13: st = rep_msg(c, m, &f, &r[EXTERNAL], sizeof(onyx_pb_kv), dec_kv); break;
        case 14: {
            int32_t v = 0;
            st = get_i32(c, m, &f, &v);
            t->data_location = v;
            break;
        }
        default: break;
        }
        if (st) return st;
    }
    return st;
}

static const pb_msg sparse_msg = {"SparseTensorProto", (const pb_fname[]){
    {1, "values"}, {2, "indices"}, {3, "dims"}, {0, NULL}}};

static onyx_status dec_sparse(pb_ctx *c, size_t pos, size_t end, void *out) {
    onyx_pb_sparse_tensor *sp = out;
    const pb_msg *m = &sparse_msg;
    pb_rep r[1] = {{3, REP_VARINT, 0, 0, 0}};
    static const size_t esz[1] = {sizeof(int64_t)};
    onyx_status st;
    size_t start = pos;
    sp->values.name = sp->indices.name = "";
    if ((st = pb_count(c, m, pos, end, r, 1))) return st;
    if ((st = pb_alloc_reps(c, m, r, esz, 1, start))) return st;
    if ((st = int_count(c, m, &r[0], start, &sp->ndims))) return st;
    sp->dims = r[0].arr;
    pb_field f;
    FOR_FIELDS(c, m, pos, end, f, st) {
        switch (f.num) {
        case 1:
            memset(&sp->values, 0, sizeof sp->values);
            st = sub(c, m, &f, dec_tensor, &sp->values);
            break;
        case 2:
            memset(&sp->indices, 0, sizeof sp->indices);
            st = sub(c, m, &f, dec_tensor, &sp->indices);
            break;
        case 3: st = rep_scalars(c, m, &f, &r[0], SK_I64); break;
        default: break;
        }
        if (st) return st;
    }
    return st;
}

// ----------------------------------------------------------------------------
// TypeProto (flattened into one onyx_pb_type), ValueInfoProto

static const pb_msg dim_msg = {"TensorShapeProto.Dimension", (const pb_fname[]){
    {1, "dim_value"}, {2, "dim_param"}, {3, "denotation"}, {0, NULL}}};

static onyx_status dec_dim(pb_ctx *c, size_t pos, size_t end, void *out) {
    onyx_pb_dim *d = out;
    const pb_msg *m = &dim_msg;
    d->value = -1;
    pb_field f;
    onyx_status st;
    FOR_FIELDS(c, m, pos, end, f, st) {
        if (f.num == 1) {
            int64_t v = 0;
            if (!(st = get_i64(c, m, &f, &v))) {
                /* dim_value and dim_param are a oneof: the last one wins. */
                d->value = v >= 0 ? v : -1;
                d->param = NULL;
            }
        } else if (f.num == 2) {
            if (!(st = get_str(c, m, &f, &d->param))) d->value = -1;
        }
        if (st) return st;
    }
    return st;
}

static const pb_msg shape_msg = {"TensorShapeProto", (const pb_fname[]){{1, "dim"}, {0, NULL}}};

static onyx_status dec_shape(pb_ctx *c, size_t pos, size_t end, void *out) {
    onyx_pb_type *t = out;
    const pb_msg *m = &shape_msg;
    pb_rep r[1] = {{1, REP_LEN, 0, 0, 0}};
    static const size_t esz[1] = {sizeof(onyx_pb_dim)};
    onyx_status st;
    size_t start = pos;
    if ((st = pb_count(c, m, pos, end, r, 1))) return st;
    if ((st = pb_alloc_reps(c, m, r, esz, 1, start))) return st;
    if ((st = int_count(c, m, &r[0], start, &t->ndims))) return st;
    t->dims = r[0].arr;
    t->has_shape = 1;
    pb_field f;
    FOR_FIELDS(c, m, pos, end, f, st) {
        if (f.num == 1) st = rep_msg(c, m, &f, &r[0], sizeof(onyx_pb_dim), dec_dim);
        if (st) return st;
    }
    return st;
}

static onyx_status dec_type(pb_ctx *c, size_t pos, size_t end, void *out);

/* TypeProto.Tensor and TypeProto.SparseTensor share their layout. */
static const pb_fname type_tensor_fields[] = {{1, "elem_type"}, {2, "shape"}, {0, NULL}};
static const pb_msg type_tensor_msg = {"TypeProto.Tensor", type_tensor_fields};
static const pb_msg type_sparse_msg = {"TypeProto.SparseTensor", type_tensor_fields};

static onyx_status type_tensor(pb_ctx *c, const pb_msg *m, size_t pos, size_t end,
                               onyx_pb_type *t) {
    pb_field f;
    onyx_status st;
    FOR_FIELDS(c, m, pos, end, f, st) {
        if (f.num == 1) {
            st = get_i32(c, m, &f, &t->elem_type);
        } else if (f.num == 2) {
            t->ndims = 0;
            t->dims = NULL;
            st = sub(c, m, &f, dec_shape, t);
        }
        if (st) return st;
    }
    return st;
}

static onyx_status dec_type_tensor(pb_ctx *c, size_t pos, size_t end, void *out) {
    return type_tensor(c, &type_tensor_msg, pos, end, out);
}

static onyx_status dec_type_sparse(pb_ctx *c, size_t pos, size_t end, void *out) {
    return type_tensor(c, &type_sparse_msg, pos, end, out);
}

/* TypeProto.Sequence and TypeProto.Optional: one TypeProto elem_type = 1. */
static const pb_fname type_elem_fields[] = {{1, "elem_type"}, {0, NULL}};
static const pb_msg type_seq_msg = {"TypeProto.Sequence", type_elem_fields};
static const pb_msg type_opt_msg = {"TypeProto.Optional", type_elem_fields};

static onyx_status type_elem(pb_ctx *c, const pb_msg *m, size_t pos, size_t end, onyx_pb_type *t) {
    pb_field f;
    onyx_status st;
    FOR_FIELDS(c, m, pos, end, f, st) {
        if (f.num == 1) t->elem = sub_new(c, m, &f, dec_type, sizeof *t->elem, &st);
        if (st) return st;
    }
    return st;
}

static onyx_status dec_type_seq(pb_ctx *c, size_t pos, size_t end, void *out) {
    return type_elem(c, &type_seq_msg, pos, end, out);
}

static onyx_status dec_type_opt(pb_ctx *c, size_t pos, size_t end, void *out) {
    return type_elem(c, &type_opt_msg, pos, end, out);
}

static const pb_msg type_map_msg = {"TypeProto.Map", (const pb_fname[]){
    {1, "key_type"}, {2, "value_type"}, {0, NULL}}};

static onyx_status dec_type_map(pb_ctx *c, size_t pos, size_t end, void *out) {
    onyx_pb_type *t = out;
    const pb_msg *m = &type_map_msg;
    pb_field f;
    onyx_status st;
    FOR_FIELDS(c, m, pos, end, f, st) {
        if (f.num == 1) st = get_i32(c, m, &f, &t->key_type);
        else if (f.num == 2) t->elem = sub_new(c, m, &f, dec_type, sizeof *t->elem, &st);
        if (st) return st;
    }
    return st;
}

static const pb_msg type_msg = {"TypeProto", (const pb_fname[]){
    {1, "tensor_type"}, {4, "sequence_type"}, {5, "map_type"}, {6, "denotation"},
    {7, "opaque_type"}, {8, "sparse_tensor_type"}, {9, "optional_type"}, {0, NULL}}};

static onyx_status dec_type(pb_ctx *c, size_t pos, size_t end, void *out) {
    onyx_pb_type *t = out;
    const pb_msg *m = &type_msg;
    pb_field f;
    onyx_status st;
    FOR_FIELDS(c, m, pos, end, f, st) {
        onyx_pb_type_kind kind = ONYX_PB_TYPE_NONE;
        pb_dec_fn fn = NULL;
        switch (f.num) {
        case 1: kind = ONYX_PB_TYPE_TENSOR, fn = dec_type_tensor; break;
        case 4: kind = ONYX_PB_TYPE_SEQUENCE, fn = dec_type_seq; break;
        case 5: kind = ONYX_PB_TYPE_MAP, fn = dec_type_map; break;
        case 7: break; /* opaque: no kind onyx can run; leaves NONE */
        case 8: kind = ONYX_PB_TYPE_SPARSE_TENSOR, fn = dec_type_sparse; break;
        case 9: kind = ONYX_PB_TYPE_OPTIONAL, fn = dec_type_opt; break;
        case 6: st = get_str(c, m, &f, &t->denotation); break;
        default: continue;
        }
        if (!st && f.num != 6) {
            /* The value is a oneof: a later member replaces an earlier one. */
            const char *denotation = t->denotation;
            memset(t, 0, sizeof *t);
            t->denotation = denotation;
            t->kind = kind;
            if (fn) st = sub(c, m, &f, fn, t);
            else st = want(c, m, &f, WIRE_LEN);
        }
        if (st) return st;
    }
    return st;
}

static const pb_msg value_info_msg = {"ValueInfoProto", (const pb_fname[]){
    {1, "name"}, {2, "type"}, {3, "doc_string"}, {4, "metadata_props"}, {0, NULL}}};

static onyx_status dec_value_info(pb_ctx *c, size_t pos, size_t end, void *out) {
    onyx_pb_value_info *v = out;
    const pb_msg *m = &value_info_msg;
    v->name = "";
    pb_field f;
    onyx_status st;
    FOR_FIELDS(c, m, pos, end, f, st) {
        if (f.num == 1) st = get_str(c, m, &f, &v->name);
        else if (f.num == 2) v->type = sub_new(c, m, &f, dec_type, sizeof *v->type, &st);
        else if (f.num == 3) st = get_str(c, m, &f, &v->doc_string);
        if (st) return st;
    }
    return st;
}

// ----------------------------------------------------------------------------
// AttributeProto, NodeProto, GraphProto

static onyx_status dec_graph(pb_ctx *c, size_t pos, size_t end, void *out);

static const pb_msg attr_msg = {"AttributeProto", (const pb_fname[]){
    {1, "name"}, {2, "f"}, {3, "i"}, {4, "s"}, {5, "t"}, {6, "g"}, {7, "floats"}, {8, "ints"},
    {9, "strings"}, {10, "tensors"}, {11, "graphs"}, {13, "doc_string"}, {14, "tp"},
    {15, "type_protos"}, {20, "type"}, {21, "ref_attr_name"}, {22, "sparse_tensor"},
    {23, "sparse_tensors"}, {0, NULL}}};

static onyx_status dec_attr(pb_ctx *c, size_t pos, size_t end, void *out) {
    onyx_pb_attr *a = out;
    const pb_msg *m = &attr_msg;
    enum { FLOATS, INTS, STRINGS, TENSORS, GRAPHS, SPARSES, TYPES, NREP };
    pb_rep r[NREP] = {{7, REP_I32, 0, 0, 0},  {8, REP_VARINT, 0, 0, 0}, {9, REP_LEN, 0, 0, 0},
                      {10, REP_LEN, 0, 0, 0}, {11, REP_LEN, 0, 0, 0},   {23, REP_LEN, 0, 0, 0},
                      {15, REP_LEN, 0, 0, 0}};
    static const size_t esz[NREP] = {sizeof(float),          sizeof(int64_t),
                                     sizeof(onyx_pb_string), sizeof(onyx_pb_tensor),
                                     sizeof(onyx_pb_graph *), sizeof(onyx_pb_sparse_tensor),
                                     sizeof(onyx_pb_type *)};
    /* Which singular value fields were seen, to infer a missing `type`. */
    int has_f = 0, has_i = 0, has_s = 0;
    onyx_status st;
    size_t start = pos;
    a->name = "";
    if ((st = pb_count(c, m, pos, end, r, NREP))) return st;
    if ((st = pb_alloc_reps(c, m, r, esz, NREP, start))) return st;
    a->floats = r[FLOATS].arr, a->n_floats = r[FLOATS].n;
    a->ints = r[INTS].arr, a->n_ints = r[INTS].n;
    a->strings = r[STRINGS].arr, a->n_strings = r[STRINGS].n;
    a->tensors = r[TENSORS].arr, a->n_tensors = r[TENSORS].n;
    a->graphs = r[GRAPHS].arr, a->n_graphs = r[GRAPHS].n;
    a->sparse_tensors = r[SPARSES].arr, a->n_sparse_tensors = r[SPARSES].n;
    a->type_protos = r[TYPES].arr, a->n_type_protos = r[TYPES].n;

    pb_field f;
    FOR_FIELDS(c, m, pos, end, f, st) {
        switch (f.num) {
        case 1: st = get_str(c, m, &f, &a->name); break;
        case 2:
            st = get_f32(c, m, &f, &a->f);
            has_f = 1;
            break;
        case 3:
            st = get_i64(c, m, &f, &a->i);
            has_i = 1;
            break;
        case 4:
            st = get_pbstr(c, m, &f, &a->s);
            has_s = 1;
            break;
        case 5: a->t = sub_new(c, m, &f, dec_tensor, sizeof *a->t, &st); break;
        case 6: a->g = sub_new(c, m, &f, dec_graph, sizeof *a->g, &st); break;
        case 7: st = rep_scalars(c, m, &f, &r[FLOATS], SK_F32); break;
        case 8: st = rep_scalars(c, m, &f, &r[INTS], SK_I64); break;
        case 9: st = rep_pbstr(c, m, &f, &r[STRINGS]); break;
        case 10: st = rep_msg(c, m, &f, &r[TENSORS], sizeof(onyx_pb_tensor), dec_tensor); break;
        case 11: st = rep_msg_ptr(c, m, &f, &r[GRAPHS], sizeof(onyx_pb_graph), dec_graph); break;
        case 14: a->tp = sub_new(c, m, &f, dec_type, sizeof *a->tp, &st); break;
        case 15: st = rep_msg_ptr(c, m, &f, &r[TYPES], sizeof(onyx_pb_type), dec_type); break;
        case 20: st = get_i32(c, m, &f, &a->type); break;
        case 21: st = get_str(c, m, &f, &a->ref_attr_name); break;
        case 22:
            a->sparse_tensor = sub_new(c, m, &f, dec_sparse, sizeof *a->sparse_tensor, &st);
            break;
        case 23:
            st = rep_msg(c, m, &f, &r[SPARSES], sizeof(onyx_pb_sparse_tensor), dec_sparse);
            break;
        default: break;
        }
        if (st) return st;
    }
    if (st) return st;

    if (a->type < 0 || a->type >= ONYX_PB_ATTR_TYPE_COUNT)
        return bad(c, ONYX_ERR_INVALID_MODEL, m, 20, start, "attribute '%s' has unknown type %d",
                   a->name, (int)a->type);
    if (a->type == ONYX_PB_ATTR_UNDEFINED) {
        /* IR version 1 had no `type`: the value field that is set says it. */
        const struct {
            int set;
            onyx_pb_attr_type type;
        } cand[] = {
            {has_f, ONYX_PB_ATTR_FLOAT},
            {has_i, ONYX_PB_ATTR_INT},
            {has_s, ONYX_PB_ATTR_STRING},
            {a->t != NULL, ONYX_PB_ATTR_TENSOR},
            {a->g != NULL, ONYX_PB_ATTR_GRAPH},
            {a->sparse_tensor != NULL, ONYX_PB_ATTR_SPARSE_TENSOR},
            {a->tp != NULL, ONYX_PB_ATTR_TYPE_PROTO},
            {a->n_floats > 0, ONYX_PB_ATTR_FLOATS},
            {a->n_ints > 0, ONYX_PB_ATTR_INTS},
            {a->n_strings > 0, ONYX_PB_ATTR_STRINGS},
            {a->n_tensors > 0, ONYX_PB_ATTR_TENSORS},
            {a->n_graphs > 0, ONYX_PB_ATTR_GRAPHS},
            {a->n_sparse_tensors > 0, ONYX_PB_ATTR_SPARSE_TENSORS},
            {a->n_type_protos > 0, ONYX_PB_ATTR_TYPE_PROTOS},
        };
        int found = 0;
        for (size_t k = 0; k < sizeof cand / sizeof cand[0]; k++) {
            if (!cand[k].set) continue;
            if (found)
                return bad(c, ONYX_ERR_INVALID_MODEL, m, 0, start,
                           "attribute '%s' has no type and more than one value field", a->name);
            a->type = cand[k].type;
            found = 1;
        }
    }
    /* An unset string field is protobuf's empty string, never NULL: every
     * reader of a STRING attribute gets a real (NUL-terminated) string. */
    if (a->type == ONYX_PB_ATTR_STRING && !a->s.s) a->s.s = "";
    return ONYX_OK;
}

static const pb_msg node_msg = {"NodeProto", (const pb_fname[]){
    {1, "input"}, {2, "output"}, {3, "name"}, {4, "op_type"}, {5, "attribute"},
    {6, "doc_string"}, {7, "domain"}, {8, "overload"}, {9, "metadata_props"},
    {10, "device_configurations"}, {0, NULL}}};

static onyx_status dec_node(pb_ctx *c, size_t pos, size_t end, void *out) {
    onyx_pb_node *n = out;
    const pb_msg *m = &node_msg;
    enum { INPUTS, OUTPUTS, ATTRS, NREP };
    pb_rep r[NREP] = {{1, REP_LEN, 0, 0, 0}, {2, REP_LEN, 0, 0, 0}, {5, REP_LEN, 0, 0, 0}};
    static const size_t esz[NREP] = {sizeof(const char *), sizeof(const char *),
                                     sizeof(onyx_pb_attr)};
    onyx_status st;
    size_t start = pos;
    n->name = n->op_type = n->domain = n->overload = "";
    if ((st = pb_count(c, m, pos, end, r, NREP))) return st;
    if ((st = pb_alloc_reps(c, m, r, esz, NREP, start))) return st;
    if ((st = int_count(c, m, &r[INPUTS], start, &n->n_inputs))) return st;
    if ((st = int_count(c, m, &r[OUTPUTS], start, &n->n_outputs))) return st;
    if ((st = int_count(c, m, &r[ATTRS], start, &n->n_attrs))) return st;
    n->inputs = r[INPUTS].arr;
    n->outputs = r[OUTPUTS].arr;
    n->attrs = r[ATTRS].arr;
    pb_field f;
    FOR_FIELDS(c, m, pos, end, f, st) {
        switch (f.num) {
        case 1: st = rep_str(c, m, &f, &r[INPUTS]); break;
        case 2: st = rep_str(c, m, &f, &r[OUTPUTS]); break;
        case 3: st = get_str(c, m, &f, &n->name); break;
        case 4: st = get_str(c, m, &f, &n->op_type); break;
        case 5: st = rep_msg(c, m, &f, &r[ATTRS], sizeof(onyx_pb_attr), dec_attr); break;
        case 7: st = get_domain(c, m, &f, &n->domain); break;
        case 8: st = get_str(c, m, &f, &n->overload); break;
        default: break;
        }
        if (st) return st;
    }
    return st;
}

static const pb_msg graph_msg = {"GraphProto", (const pb_fname[]){
    {1, "node"}, {2, "name"}, {5, "initializer"}, {10, "doc_string"}, {11, "input"},
    {12, "output"}, {13, "value_info"}, {14, "quantization_annotation"},
    {15, "sparse_initializer"}, {16, "metadata_props"}, {0, NULL}}};

static onyx_status dec_graph(pb_ctx *c, size_t pos, size_t end, void *out) {
    onyx_pb_graph *g = out;
    const pb_msg *m = &graph_msg;
    enum { NODES, INITS, SPARSES, INPUTS, OUTPUTS, INFOS, NREP };
    pb_rep r[NREP] = {{1, REP_LEN, 0, 0, 0},  {5, REP_LEN, 0, 0, 0},  {15, REP_LEN, 0, 0, 0},
                      {11, REP_LEN, 0, 0, 0}, {12, REP_LEN, 0, 0, 0}, {13, REP_LEN, 0, 0, 0}};
    static const size_t esz[NREP] = {sizeof(onyx_pb_node),          sizeof(onyx_pb_tensor),
                                     sizeof(onyx_pb_sparse_tensor), sizeof(onyx_pb_value_info),
                                     sizeof(onyx_pb_value_info),    sizeof(onyx_pb_value_info)};
    onyx_status st;
    size_t start = pos;
    g->name = "";
    if ((st = pb_count(c, m, pos, end, r, NREP))) return st;
    if ((st = pb_alloc_reps(c, m, r, esz, NREP, start))) return st;
    if ((st = int_count(c, m, &r[NODES], start, &g->n_nodes))) return st;
    if ((st = int_count(c, m, &r[INITS], start, &g->n_initializers))) return st;
    if ((st = int_count(c, m, &r[SPARSES], start, &g->n_sparse_initializers))) return st;
    if ((st = int_count(c, m, &r[INPUTS], start, &g->n_inputs))) return st;
    if ((st = int_count(c, m, &r[OUTPUTS], start, &g->n_outputs))) return st;
    if ((st = int_count(c, m, &r[INFOS], start, &g->n_value_infos))) return st;
    g->nodes = r[NODES].arr;
    g->initializers = r[INITS].arr;
    g->sparse_initializers = r[SPARSES].arr;
    g->inputs = r[INPUTS].arr;
    g->outputs = r[OUTPUTS].arr;
    g->value_infos = r[INFOS].arr;
    pb_field f;
    FOR_FIELDS(c, m, pos, end, f, st) {
        switch (f.num) {
        case 1: st = rep_msg(c, m, &f, &r[NODES], sizeof(onyx_pb_node), dec_node); break;
        case 2: st = get_str(c, m, &f, &g->name); break;
        case 5: st = rep_msg(c, m, &f, &r[INITS], sizeof(onyx_pb_tensor), dec_tensor); break;
        case 10: st = get_str(c, m, &f, &g->doc_string); break;
        case 11:
            st = rep_msg(c, m, &f, &r[INPUTS], sizeof(onyx_pb_value_info), dec_value_info);
            break;
        case 12:
            st = rep_msg(c, m, &f, &r[OUTPUTS], sizeof(onyx_pb_value_info), dec_value_info);
            break;
        case 13:
            st = rep_msg(c, m, &f, &r[INFOS], sizeof(onyx_pb_value_info), dec_value_info);
            break;
        case 15:
            st = rep_msg(c, m, &f, &r[SPARSES], sizeof(onyx_pb_sparse_tensor), dec_sparse);
            break;
        default: break;
        }
        if (st) return st;
    }
    return st;
}

// ----------------------------------------------------------------------------
// FunctionProto, ModelProto

static const pb_msg function_msg = {"FunctionProto", (const pb_fname[]){
    {1, "name"}, {4, "input"}, {5, "output"}, {6, "attribute"}, {7, "node"},
    {8, "doc_string"}, {9, "opset_import"}, {10, "domain"}, {11, "attribute_proto"},
    {12, "value_info"}, {13, "overload"}, {14, "metadata_props"}, {0, NULL}}};

static onyx_status dec_function(pb_ctx *c, size_t pos, size_t end, void *out) {
    onyx_pb_function *fn = out;
    const pb_msg *m = &function_msg;
    enum { INPUTS, OUTPUTS, ATTRS, ATTR_PROTOS, NODES, OPSETS, NREP };
    pb_rep r[NREP] = {{4, REP_LEN, 0, 0, 0},  {5, REP_LEN, 0, 0, 0}, {6, REP_LEN, 0, 0, 0},
                      {11, REP_LEN, 0, 0, 0}, {7, REP_LEN, 0, 0, 0}, {9, REP_LEN, 0, 0, 0}};
    static const size_t esz[NREP] = {sizeof(const char *), sizeof(const char *),
                                     sizeof(const char *), sizeof(onyx_pb_attr),
                                     sizeof(onyx_pb_node), sizeof(onyx_pb_opset)};
    onyx_status st;
    size_t start = pos;
    fn->name = fn->domain = fn->overload = "";
    if ((st = pb_count(c, m, pos, end, r, NREP))) return st;
    if ((st = pb_alloc_reps(c, m, r, esz, NREP, start))) return st;
    if ((st = int_count(c, m, &r[INPUTS], start, &fn->n_inputs))) return st;
    if ((st = int_count(c, m, &r[OUTPUTS], start, &fn->n_outputs))) return st;
    if ((st = int_count(c, m, &r[ATTRS], start, &fn->n_attributes))) return st;
    if ((st = int_count(c, m, &r[ATTR_PROTOS], start, &fn->n_attribute_protos))) return st;
    if ((st = int_count(c, m, &r[NODES], start, &fn->n_nodes))) return st;
    if ((st = int_count(c, m, &r[OPSETS], start, &fn->n_opsets))) return st;
    fn->inputs = r[INPUTS].arr;
    fn->outputs = r[OUTPUTS].arr;
    fn->attributes = r[ATTRS].arr;
    fn->attribute_protos = r[ATTR_PROTOS].arr;
    fn->nodes = r[NODES].arr;
    fn->opsets = r[OPSETS].arr;
    pb_field f;
    FOR_FIELDS(c, m, pos, end, f, st) {
        switch (f.num) {
        case 1: st = get_str(c, m, &f, &fn->name); break;
        case 4: st = rep_str(c, m, &f, &r[INPUTS]); break;
        case 5: st = rep_str(c, m, &f, &r[OUTPUTS]); break;
        case 6: st = rep_str(c, m, &f, &r[ATTRS]); break;
        case 7: st = rep_msg(c, m, &f, &r[NODES], sizeof(onyx_pb_node), dec_node); break;
        case 9: st = rep_msg(c, m, &f, &r[OPSETS], sizeof(onyx_pb_opset), dec_opset); break;
        case 10: st = get_domain(c, m, &f, &fn->domain); break;
        case 11:
            st = rep_msg(c, m, &f, &r[ATTR_PROTOS], sizeof(onyx_pb_attr), dec_attr);
            break;
        case 13: st = get_str(c, m, &f, &fn->overload); break;
        default: break;
        }
        if (st) return st;
    }
    return st;
}

static const pb_msg model_msg = {"ModelProto", (const pb_fname[]){
    {1, "ir_version"}, {2, "producer_name"}, {3, "producer_version"}, {4, "domain"},
    {5, "model_version"}, {6, "doc_string"}, {7, "graph"}, {8, "opset_import"},
    {14, "metadata_props"}, {20, "training_info"}, {25, "functions"}, {26, "configuration"},
    {0, NULL}}};

static onyx_status dec_model(pb_ctx *c, size_t pos, size_t end, void *out) {
    onyx_pb_model *mo = out;
    const pb_msg *m = &model_msg;
    enum { OPSETS, METADATA, FUNCTIONS, NREP };
    pb_rep r[NREP] = {{8, REP_LEN, 0, 0, 0}, {14, REP_LEN, 0, 0, 0}, {25, REP_LEN, 0, 0, 0}};
    static const size_t esz[NREP] = {sizeof(onyx_pb_opset), sizeof(onyx_pb_kv),
                                     sizeof(onyx_pb_function)};
    onyx_status st;
    size_t start = pos;
    if ((st = pb_count(c, m, pos, end, r, NREP))) return st;
    if ((st = pb_alloc_reps(c, m, r, esz, NREP, start))) return st;
    if ((st = int_count(c, m, &r[OPSETS], start, &mo->n_opsets))) return st;
    if ((st = int_count(c, m, &r[METADATA], start, &mo->n_metadata))) return st;
    if ((st = int_count(c, m, &r[FUNCTIONS], start, &mo->n_functions))) return st;
    mo->opsets = r[OPSETS].arr;
    mo->metadata = r[METADATA].arr;
    mo->functions = r[FUNCTIONS].arr;
    pb_field f;
    FOR_FIELDS(c, m, pos, end, f, st) {
        switch (f.num) {
        case 1: st = get_i64(c, m, &f, &mo->ir_version); break;
        case 2: st = get_str(c, m, &f, &mo->producer_name); break;
        case 3: st = get_str(c, m, &f, &mo->producer_version); break;
        case 4: st = get_str(c, m, &f, &mo->domain); break;
        case 5: st = get_i64(c, m, &f, &mo->model_version); break;
        case 6: st = get_str(c, m, &f, &mo->doc_string); break;
        case 7: mo->graph = sub_new(c, m, &f, dec_graph, sizeof *mo->graph, &st); break;
        case 8: st = rep_msg(c, m, &f, &r[OPSETS], sizeof(onyx_pb_opset), dec_opset); break;
        case 14: st = rep_msg(c, m, &f, &r[METADATA], sizeof(onyx_pb_kv), dec_kv); break;
        case 25:
            st = rep_msg(c, m, &f, &r[FUNCTIONS], sizeof(onyx_pb_function), dec_function);
            break;
        default: break;
        }
        if (st) return st;
    }
    return st;
}

// ----------------------------------------------------------------------------
// SequenceProto, MapProto, OptionalProto (onnx-data.proto)

static onyx_status dec_map(pb_ctx *c, size_t pos, size_t end, void *out);
static onyx_status dec_optional(pb_ctx *c, size_t pos, size_t end, void *out);

static const pb_msg sequence_msg = {"SequenceProto", (const pb_fname[]){
    {1, "name"}, {2, "elem_type"}, {3, "tensor_values"}, {4, "sparse_tensor_values"},
    {5, "sequence_values"}, {6, "map_values"}, {7, "optional_values"}, {0, NULL}}};

static onyx_status dec_sequence(pb_ctx *c, size_t pos, size_t end, void *out) {
    onyx_pb_sequence *s = out;
    const pb_msg *m = &sequence_msg;
    enum { TENSORS, SPARSES, SEQUENCES, MAPS, OPTIONALS, NREP };
    pb_rep r[NREP] = {{3, REP_LEN, 0, 0, 0}, {4, REP_LEN, 0, 0, 0}, {5, REP_LEN, 0, 0, 0},
                      {6, REP_LEN, 0, 0, 0}, {7, REP_LEN, 0, 0, 0}};
    static const size_t esz[NREP] = {sizeof(onyx_pb_tensor), sizeof(onyx_pb_sparse_tensor),
                                     sizeof(onyx_pb_sequence), sizeof(onyx_pb_map),
                                     sizeof(onyx_pb_optional)};
    onyx_status st;
    size_t start = pos;
    s->name = "";
    if ((st = pb_count(c, m, pos, end, r, NREP))) return st;
    if ((st = pb_alloc_reps(c, m, r, esz, NREP, start))) return st;
    if ((st = int_count(c, m, &r[TENSORS], start, &s->n_tensors))) return st;
    if ((st = int_count(c, m, &r[SPARSES], start, &s->n_sparse))) return st;
    if ((st = int_count(c, m, &r[SEQUENCES], start, &s->n_sequences))) return st;
    if ((st = int_count(c, m, &r[MAPS], start, &s->n_maps))) return st;
    if ((st = int_count(c, m, &r[OPTIONALS], start, &s->n_optionals))) return st;
    s->tensors = r[TENSORS].arr;
    s->sparse = r[SPARSES].arr;
    s->sequences = r[SEQUENCES].arr;
    s->maps = r[MAPS].arr;
    s->optionals = r[OPTIONALS].arr;
    pb_field f;
    FOR_FIELDS(c, m, pos, end, f, st) {
        switch (f.num) {
        case 1: st = get_str(c, m, &f, &s->name); break;
        case 2: st = get_i32(c, m, &f, &s->elem_type); break;
        case 3: st = rep_msg(c, m, &f, &r[TENSORS], sizeof(onyx_pb_tensor), dec_tensor); break;
        case 4:
            st = rep_msg(c, m, &f, &r[SPARSES], sizeof(onyx_pb_sparse_tensor), dec_sparse);
            break;
        case 5:
            st = rep_msg(c, m, &f, &r[SEQUENCES], sizeof(onyx_pb_sequence), dec_sequence);
            break;
        case 6: st = rep_msg(c, m, &f, &r[MAPS], sizeof(onyx_pb_map), dec_map); break;
        case 7:
            st = rep_msg(c, m, &f, &r[OPTIONALS], sizeof(onyx_pb_optional), dec_optional);
            break;
        default: break;
        }
        if (st) return st;
    }
    return st;
}

static const pb_msg map_msg = {"MapProto", (const pb_fname[]){
    {1, "name"}, {2, "key_type"}, {3, "keys"}, {4, "string_keys"}, {5, "values"}, {0, NULL}}};

static onyx_status dec_map(pb_ctx *c, size_t pos, size_t end, void *out) {
    onyx_pb_map *mp = out;
    const pb_msg *m = &map_msg;
    enum { KEYS, STRING_KEYS, NREP };
    pb_rep r[NREP] = {{3, REP_VARINT, 0, 0, 0}, {4, REP_LEN, 0, 0, 0}};
    static const size_t esz[NREP] = {sizeof(int64_t), sizeof(onyx_pb_string)};
    onyx_status st;
    size_t start = pos;
    mp->name = "";
    mp->values.name = "";
    if ((st = pb_count(c, m, pos, end, r, NREP))) return st;
    if ((st = pb_alloc_reps(c, m, r, esz, NREP, start))) return st;
    mp->keys = r[KEYS].arr, mp->n_keys = r[KEYS].n;
    mp->string_keys = r[STRING_KEYS].arr, mp->n_string_keys = r[STRING_KEYS].n;
    pb_field f;
    FOR_FIELDS(c, m, pos, end, f, st) {
        switch (f.num) {
        case 1: st = get_str(c, m, &f, &mp->name); break;
        case 2: st = get_i32(c, m, &f, &mp->key_type); break;
        case 3: st = rep_scalars(c, m, &f, &r[KEYS], SK_I64); break;
        case 4: st = rep_pbstr(c, m, &f, &r[STRING_KEYS]); break;
        case 5:
            memset(&mp->values, 0, sizeof mp->values);
            st = sub(c, m, &f, dec_sequence, &mp->values);
            break;
        default: break;
        }
        if (st) return st;
    }
    return st;
}

static const pb_msg optional_msg = {"OptionalProto", (const pb_fname[]){
    {1, "name"}, {2, "elem_type"}, {3, "tensor_value"}, {4, "sparse_tensor_value"},
    {5, "sequence_value"}, {6, "map_value"}, {7, "optional_value"}, {0, NULL}}};

static onyx_status dec_optional(pb_ctx *c, size_t pos, size_t end, void *out) {
    onyx_pb_optional *o = out;
    const pb_msg *m = &optional_msg;
    o->name = "";
    pb_field f;
    onyx_status st;
    FOR_FIELDS(c, m, pos, end, f, st) {
        switch (f.num) {
        case 1: st = get_str(c, m, &f, &o->name); break;
        case 2: st = get_i32(c, m, &f, &o->elem_type); break;
        case 3: o->tensor = sub_new(c, m, &f, dec_tensor, sizeof *o->tensor, &st); break;
        case 4: o->sparse = sub_new(c, m, &f, dec_sparse, sizeof *o->sparse, &st); break;
        case 5:
            o->sequence = sub_new(c, m, &f, dec_sequence, sizeof *o->sequence, &st);
            break;
        case 6: o->map = sub_new(c, m, &f, dec_map, sizeof *o->map, &st); break;
        case 7:
            o->optional = sub_new(c, m, &f, dec_optional, sizeof *o->optional, &st);
            break;
        default: break;
        }
        if (st) return st;
    }
    return st;
}

// ----------------------------------------------------------------------------
// Entry points

/* Decodes a top-level message of `size` bytes into a new arena object and
 * returns it; NULL on failure with *st set. Partial results of a failed decode
 * stay in the arena until it is freed. */
static void *decode_top(const uint8_t *data, size_t size, bool mapped, onyx_arena *arena,
                        pb_dec_fn fn, size_t obj_size, int has_out, onyx_status *st,
                        onyx_error *err) {
    if (!has_out || !arena || (!data && size)) {
        *st = onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "protobuf decode: invalid arguments");
        return NULL;
    }
    void *obj = onyx_arena_alloc(arena, obj_size);
    if (!obj) {
        *st = onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "protobuf decode: out of memory");
        return NULL;
    }
    pb_ctx c = {data, size, arena, err, 1, mapped};
    *st = fn(&c, 0, size, obj);
    return *st ? NULL : obj;
}

#define DECODE_ENTRY(fn_name, type, dec)                                                      \
    onyx_status fn_name(const uint8_t *data, size_t size, onyx_arena *arena, type **out,      \
                        onyx_error *err) {                                                    \
        onyx_status st;                                                                       \
        type *obj =                                                                           \
            decode_top(data, size, false, arena, dec, sizeof(type), out != NULL, &st, err);   \
        if (out) *out = obj;                                                                  \
        return st;                                                                            \
    }

DECODE_ENTRY(onyx_pb_decode_model, onyx_pb_model, dec_model)
DECODE_ENTRY(onyx_pb_decode_tensor, onyx_pb_tensor, dec_tensor)
DECODE_ENTRY(onyx_pb_decode_sequence, onyx_pb_sequence, dec_sequence)
DECODE_ENTRY(onyx_pb_decode_map, onyx_pb_map, dec_map)
DECODE_ENTRY(onyx_pb_decode_optional, onyx_pb_optional, dec_optional)

onyx_status onyx_pb_decode_model_mapped(const uint8_t *data, size_t size, onyx_arena *arena,
                                        onyx_pb_model **out, onyx_error *err) {
    onyx_status st;
    onyx_pb_model *obj =
        decode_top(data, size, true, arena, dec_model, sizeof *obj, out != NULL, &st, err);
    if (out) *out = obj;
    return st;
}
