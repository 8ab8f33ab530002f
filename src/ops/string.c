/* string.c - the string operators: StringNormalizer, StringConcat,
 * StringSplit, RegexFullMatch (RE2 patterns translated to POSIX extended
 * regular expressions) and TfIdfVectorizer (n-gram counts over int64 or
 * string pools). Strings are UTF-8, NUL-terminated; outputs are heap strings
 * owned by their tensors. Not here: tokenization (no such ONNX op in scope). */
#include "core/op.h"
#include "ops/util.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(...) onyx_exec_fail(x, ONYX_ERR_INVALID_ARGUMENT, __VA_ARGS__)
#define OOM() onyx_exec_fail(x, ONYX_ERR_OUT_OF_MEMORY, "out of memory")

static const char *str_or_empty(const char *s) {
    return s ? s : "";
}

static char *dup_range(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

// ----------------------------------------------------------------------------
// UTF-8 helpers and simple case mapping

/* Decodes one UTF-8 sequence at s; *len gets its byte length (1 for an
 * invalid byte, which decodes as itself). */
static uint32_t utf8_decode(const unsigned char *s, size_t *len) {
    unsigned c = s[0];
    int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n <= 1) {
        *len = 1;
        return c;
    }
    uint32_t cp = c & (0x7f >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *len = 1;
            return c;
        }
        cp = cp << 6 | (s[i] & 0x3f);
    }
    *len = (size_t)n;
    return cp;
}

static size_t utf8_encode(uint32_t cp, char *o) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Simple (one-to-one) Unicode case mapping for ASCII, Latin-1, Latin
 * Extended-A, Greek and Cyrillic; other code points map to themselves.
 * Locale-independent on purpose: the process locale is global state. */
static uint32_t to_lower(uint32_t c) {
    if ((c >= 'A' && c <= 'Z') || (c >= 0xc0 && c <= 0xde && c != 0xd7)) return c + 0x20;
    if (c >= 0x100 && c <= 0x17f) {
        if (c == 0x130) return 'i';
        if (c == 0x178) return 0xff;
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) return c & 1 ? c + 1 : c;
        if (c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17f) return c;
        return c & 1 ? c : c + 1;
    }
    if (c >= 0x391 && c <= 0x3a9 && c != 0x3a2) return c + 0x20;
    if (c >= 0x410 && c <= 0x42f) return c + 0x20;
    if (c >= 0x400 && c <= 0x40f) return c + 0x50;
    return c;
}

static uint32_t to_upper(uint32_t c) {
    if ((c >= 'a' && c <= 'z') || (c >= 0xe0 && c <= 0xfe && c != 0xf7)) return c - 0x20;
    if (c == 0xff) return 0x178;
    if (c >= 0x100 && c <= 0x17f) {
        if (c == 0x131) return 'I';
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) return c & 1 ? c : c - 1;
        if (c == 0x130 || c == 0x138 || c == 0x149 || c == 0x178) return c;
        if (c == 0x17f) return 'S';
        return c & 1 ? c - 1 : c;
    }
    if (c == 0x3c2) return 0x3a3;
    if (c >= 0x3b1 && c <= 0x3c9) return c - 0x20;
    if (c >= 0x430 && c <= 0x44f) return c - 0x20;
    if (c >= 0x450 && c <= 0x45f) return c - 0x50;
    return c;
}

/* Case-mapped heap copy of s (upper when `upper`); NULL when out of memory.
 * Every mapping above keeps or shrinks the UTF-8 length, so strlen(s) + 1
 * bytes suffice; invalid bytes are copied as they are. */
static char *case_map(const char *s, bool upper) {
    size_t n = strlen(s);
    char *o = malloc(n + 1);
    if (!o) return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n;) {
        size_t len;
        uint32_t c = utf8_decode((const unsigned char *)s + i, &len);
        if (len == 1 && (unsigned char)s[i] >= 0x80) {
            o[j++] = s[i++];
            continue;
        }
        char buf[4];
        size_t ml = utf8_encode(upper ? to_upper(c) : to_lower(c), buf);
        ONYX_ASSERT(ml <= len);
        memcpy(o + j, buf, ml);
        j += ml;
        i += len;
    }
    o[j] = 0;
    return o;
}

// ----------------------------------------------------------------------------
// StringNormalizer

typedef enum case_action { CASE_NONE, CASE_LOWER, CASE_UPPER, CASE_ACTION_COUNT } case_action;

typedef struct normalizer_attr {
    case_action action;
    bool case_sensitive;
    int64_t n_stop;
    const char **stop; /* (n_stop) as given, or lower-cased when case-insensitive */
} normalizer_attr;

static onyx_status init_normalizer(onyx_node *n, onyx_error *err) {
    normalizer_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    static const char *const actions[CASE_ACTION_COUNT] = {"NONE", "LOWER", "UPPER"};
    const char *act = onyx_attr_string(n, "case_change_action", "NONE");
    int c = onyx_op_lookup(act, actions, CASE_ACTION_COUNT);
    if (c < 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL,
                           "attribute 'case_change_action' is '%s' (NONE, LOWER or UPPER)", act);
    a->action = (case_action)c;
    a->case_sensitive = onyx_attr_int(n, "is_case_sensitive", 0) != 0;
    const onyx_pb_attr *sw = onyx_attr_find(n, "stopwords");
    if (sw && sw->n_strings) {
        a->n_stop = (int64_t)sw->n_strings;
        a->stop = onyx_node_alloc(n, sw->n_strings * sizeof *a->stop);
        if (!a->stop) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        for (size_t i = 0; i < sw->n_strings; i++) {
            const char *w = sw->strings[i].s ? sw->strings[i].s : "";
            if (!a->case_sensitive) {
                char *l = case_map(w, false);
                if (!l) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
                char *copy = onyx_node_alloc(n, strlen(l) + 1);
                if (copy) strcpy(copy, l);
                free(l);
                if (!copy) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
                w = copy;
            }
            a->stop[i] = w;
        }
    }
    n->state = a;
    return ONYX_OK;
}

/* Whether s is a stopword (compared lower-cased when case-insensitive). */
static int is_stopword(const normalizer_attr *a, const char *s) {
    if (!a->n_stop) return 0;
    char *l = NULL;
    if (!a->case_sensitive) {
        l = case_map(s, false);
        if (!l) return -1;
        s = l;
    }
    int hit = 0;
    for (int64_t i = 0; i < a->n_stop && !hit; i++) hit = strcmp(a->stop[i], s) == 0;
    free(l);
    return hit;
}

/* X (C) or (1, C) -> the elements that are not stopwords, case-changed;
 * (1) / (1, 1) holding "" when none is left, as the spec says. */
static onyx_status run_normalizer(const onyx_node *nd, onyx_exec *x) {
    const normalizer_attr *a = nd->state;
    const onyx_tensor *X = onyx_exec_input(x, 0);
    if (!X) return FAIL("missing input");
    if (X->dtype != ONYX_DTYPE_STRING) return FAIL("input must be string, got %s", onyx_dtype_name(X->dtype));
    if (!(X->ndim == 1 || (X->ndim == 2 && X->dims[0] == 1)))
        return FAIL("input must be (C) or (1, C)");
    int64_t C = X->dims[X->ndim - 1];
    char *const *in = X->data;
    uint8_t *keep = onyx_exec_scratch(x, (size_t)C + 1);
    if (!keep) return OOM();
    int64_t kept = 0;
    for (int64_t i = 0; i < C; i++) {
        int s = is_stopword(a, str_or_empty(in[i]));
        if (s < 0) return OOM();
        keep[i] = !s;
        kept += keep[i];
    }
    int64_t dims[2] = {1, kept ? kept : 1};
    onyx_tensor *Y;
    onyx_status st = X->ndim == 1 ? onyx_exec_output(x, 0, ONYX_DTYPE_STRING, 1, dims + 1, &Y)
                                  : onyx_exec_output(x, 0, ONYX_DTYPE_STRING, 2, dims, &Y);
    if (st) return st;
    char **out = Y->data;
    if (!kept) {
        if (!(out[0] = dup_range("", 0))) return OOM();
        return ONYX_OK;
    }
    for (int64_t i = 0, j = 0; i < C; i++) {
        if (!keep[i]) continue;
        const char *s = str_or_empty(in[i]);
        out[j] = a->action == CASE_NONE ? dup_range(s, strlen(s)) : case_map(s, a->action == CASE_UPPER);
        if (!out[j++]) return OOM();
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// StringConcat

static onyx_status run_concat(const onyx_node *nd, onyx_exec *x) {
    const onyx_tensor *A = onyx_exec_input(x, 0), *B = onyx_exec_input(x, 1);
    if (!A || !B) return FAIL("missing input");
    if (A->dtype != ONYX_DTYPE_STRING || B->dtype != ONYX_DTYPE_STRING) return FAIL("inputs must be string tensors");
    int nd_out;
    int64_t dims[ONYX_MAX_DIMS];
    if (onyx_broadcast_shape(A->ndim, A->dims, B->ndim, B->dims, &nd_out, dims))
        return FAIL("shapes cannot be broadcast together");
    onyx_tensor *Y;
    onyx_status st = onyx_exec_output(x, 0, ONYX_DTYPE_STRING, nd_out, dims, &Y);
    if (st) return st;
    int64_t sa[ONYX_MAX_DIMS], sb[ONYX_MAX_DIMS], idx[ONYX_MAX_DIMS] = {0};
    onyx_broadcast_strides(A, nd_out, dims, sa);
    onyx_broadcast_strides(B, nd_out, dims, sb);
    int64_t count = onyx_tensor_count(Y), ia = 0, ib = 0;
    char *const *pa = A->data, *const *pb = B->data;
    char **out = Y->data;
    for (int64_t i = 0; i < count; i++) {
        const char *s = str_or_empty(pa[ia]), *t = str_or_empty(pb[ib]);
        size_t ls = strlen(s), lt = strlen(t);
        char *o = malloc(ls + lt + 1);
        if (!o) return OOM();
        memcpy(o, s, ls);
        memcpy(o + ls, t, lt + 1);
        out[i] = o;
        for (int d = nd_out - 1; d >= 0; d--) {
            ia += sa[d];
            ib += sb[d];
            if (++idx[d] < dims[d]) break;
            ia -= sa[d] * dims[d];
            ib -= sb[d] * dims[d];
            idx[d] = 0;
        }
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// StringSplit

typedef struct split_attr {
    const char *delim; /* NULL: split on runs of whitespace */
    size_t delim_len;
    int64_t maxsplit;  /* < 0: unlimited */
} split_attr;

static onyx_status init_split(onyx_node *n, onyx_error *err) {
    split_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    const onyx_pb_attr *d = onyx_attr_find(n, "delimiter");
    if (d && d->s.len) {
        if (memchr(d->s.s, 0, d->s.len)) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "delimiter contains a NUL byte");
        a->delim = d->s.s;
        a->delim_len = d->s.len;
    }
    a->maxsplit = onyx_attr_find(n, "maxsplit") ? onyx_attr_int(n, "maxsplit", -1) : -1;
    n->state = a;
    return ONYX_OK;
}

/* Python's str.isspace() code points. */
static bool is_space(uint32_t c) {
    return (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f ||
           c == 0x3000;
}

/* Splits s as Python's str.split(delim, maxsplit) does; calls emit for
 * each part (when `emit` is NULL, only counts). Returns the part count, or
 * -1 when emit fails. */
typedef struct split_sink {
    char **out;
    int64_t n;
} split_sink;

static int64_t split_one(const split_attr *a, const char *s, split_sink *sink) {
    int64_t parts = 0;
    size_t n = strlen(s);
#define EMIT(p, len)                                                               \
    do {                                                                           \
        if (sink) {                                                                \
            if (!(sink->out[sink->n++] = dup_range((p), (len)))) return -1;        \
        }                                                                          \
        parts++;                                                                   \
    } while (0)
    if (a->delim) {
        size_t start = 0;
        for (size_t i = 0; i + a->delim_len <= n;) {
            if ((a->maxsplit < 0 || parts < a->maxsplit) && memcmp(s + i, a->delim, a->delim_len) == 0) {
                EMIT(s + start, i - start);
                i += a->delim_len;
                start = i;
            } else {
                i++;
            }
        }
        EMIT(s + start, n - start);
        return parts;
    }
    size_t i = 0;
    for (;;) {
        size_t len;
        while (i < n && is_space(utf8_decode((const unsigned char *)s + i, &len))) i += len;
        if (i >= n) break;
        if (a->maxsplit >= 0 && parts == a->maxsplit) {
            /* The remainder keeps its trailing whitespace, as in Python. */
            EMIT(s + i, n - i);
            break;
        }
        size_t start = i;
        while (i < n && !is_space(utf8_decode((const unsigned char *)s + i, &len))) i += len;
        EMIT(s + start, i - start);
    }
    return parts;
#undef EMIT
}

/* X (...) -> Y (..., max parts) padded with "", Z (...) the part counts. */
static onyx_status run_split(const onyx_node *nd, onyx_exec *x) {
    const split_attr *a = nd->state;
    const onyx_tensor *X = onyx_exec_input(x, 0);
    if (!X) return FAIL("missing input");
    if (X->dtype != ONYX_DTYPE_STRING) return FAIL("input must be string, got %s", onyx_dtype_name(X->dtype));
    if (X->ndim >= ONYX_MAX_DIMS) return FAIL("input rank %d is too high", X->ndim);
    int64_t count = onyx_tensor_count(X), most = 0;
    char *const *in = X->data;
    onyx_tensor *Y, *Z;
    onyx_status st = onyx_exec_output(x, 1, ONYX_DTYPE_INT64, X->ndim, X->dims, &Z);
    if (st) return st;
    int64_t *nz = Z->data;
    for (int64_t i = 0; i < count; i++) {
        nz[i] = split_one(a, str_or_empty(in[i]), NULL);
        if (nz[i] > most) most = nz[i];
    }
    int64_t dims[ONYX_MAX_DIMS];
    memcpy(dims, X->dims, sizeof(int64_t) * (size_t)X->ndim);
    dims[X->ndim] = most;
    if ((st = onyx_exec_output(x, 0, ONYX_DTYPE_STRING, X->ndim + 1, dims, &Y))) return st;
    char **out = Y->data;
    for (int64_t i = 0; i < count; i++) {
        split_sink sink = {out + i * most, 0};
        if (split_one(a, str_or_empty(in[i]), &sink) < 0) return OOM();
        for (int64_t k = sink.n; k < most; k++)
            if (!(out[i * most + k] = dup_range("", 0))) return OOM();
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// RegexFullMatch: RE2 syntax -> POSIX ERE
//
// Supported subset: literals, ., [...] (with \d \w \s and escaped
// punctuation inside), |, (), (?:...), (?P<name>...), * + ? {n} {n,} {n,m}
// and their lazy forms (laziness does not change a full match), ^ $,
// \d \D \w \W \s \S (ASCII, as RE2), \b \B (GNU regex), \t \n \r \f \v,
// \xHH, escaped punctuation, and a leading (?i). Unsupported: Unicode
// classes (\pL), \A \z, \Q..\E, other flags; such patterns fail at load.
// '.' and classes match single bytes, not UTF-8 characters.

typedef struct regex_attr {
    char *posix; /* "^(translated)$" */
    int flags;   /* REG_EXTENDED | REG_NOSUB [| REG_ICASE] */
} regex_attr;

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_puts(sbuf *b, const char *s) {
    sb_putn(b, s, strlen(s));
}

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Translates an escape (p points after the backslash) outside brackets;
 * returns the bytes consumed, 0 when unsupported. */
static size_t esc_outside(const char *p, sbuf *b, const char **why) {
    char c = p[0];
    switch (c) {
    case 'd': sb_puts(b, "[0-9]"); return 1;
    case 'D': sb_puts(b, "[^0-9]"); return 1;
    case 'w': sb_puts(b, "[0-9A-Za-z_]"); return 1;
    case 'W': sb_puts(b, "[^0-9A-Za-z_]"); return 1;
    case 's': sb_puts(b, "[\t\n\f\r ]"); return 1;
    case 'S': sb_puts(b, "[^\t\n\f\r ]"); return 1;
    case 'b': sb_puts(b, "\\b"); return 1;
    case 'B': sb_puts(b, "\\B"); return 1;
    case 't': sb_puts(b, "\t"); return 1;
    case 'n': sb_puts(b, "\n"); return 1;
    case 'r': sb_puts(b, "\r"); return 1;
    case 'f': sb_puts(b, "\f"); return 1;
    case 'v': sb_puts(b, "\v"); return 1;
    case 'x': {
        int h = hexval(p[1]), l = h >= 0 ? hexval(p[2]) : -1;
        if (h < 0 || l < 0) break;
        char ch = (char)(h * 16 + l);
        if (ch == 0) break;
        if (strchr(".[]()*+?{}|^$\\", ch)) sb_putn(b, "\\", 1);
        sb_putn(b, &ch, 1);
        return 3;
    }
    default:
        if (c && strchr(".[]()*+?{}|^$\\-/#&~!@%=:;,<>'\"`_ ", c)) {
            if (strchr(".[]()*+?{}|^$\\", c)) sb_putn(b, "\\", 1);
            sb_putn(b, &c, 1);
            return 1;
        }
        break;
    }
    *why = "unsupported escape";
    return 0;
}

/* Translates a bracket expression starting at p ('['); returns bytes
 * consumed or 0. POSIX brackets treat backslash literally, so escapes are
 * resolved here and the special members ']' '^' '-' are placed where POSIX
 * reads them literally. */
static size_t bracket(const char *p, sbuf *b, const char **why) {
    size_t i = 1;
    bool neg = false, has_rb = false, has_caret = false, has_dash = false;
    sbuf body = {0};
    if (p[i] == '^') {
        neg = true;
        i++;
    }
    bool first = true;
    for (;; first = false) {
        char c = p[i];
        if (!c) {
            *why = "unterminated [";
            goto fail;
        }
        if (c == ']' && !first) break;
        if (c == '[' && p[i + 1] == ':') {
            const char *e = strstr(p + i + 2, ":]");
            if (!e) {
                *why = "bad character class";
                goto fail;
            }
            sb_putn(&body, p + i, (size_t)(e + 2 - (p + i)));
            i = (size_t)(e + 2 - p);
            continue;
        }
        char lit;
        if (c == '\\') {
            char e = p[i + 1];
            if (e == 'd') {
                sb_puts(&body, "0-9");
                i += 2;
                continue;
            }
            if (e == 'w') {
                sb_puts(&body, "0-9A-Za-z_");
                i += 2;
                continue;
            }
            if (e == 's') {
                sb_puts(&body, "\t\n\f\r ");
                i += 2;
                continue;
            }
            if (e == 't' || e == 'n' || e == 'r' || e == 'f' || e == 'v') {
                lit = e == 't' ? '\t' : e == 'n' ? '\n' : e == 'r' ? '\r' : e == 'f' ? '\f' : '\v';
                i += 2;
            } else if (e && !((e >= '0' && e <= '9') || (e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z'))) {
                lit = e;
                i += 2;
            } else {
                *why = "unsupported escape inside []";
                goto fail;
            }
        } else {
            lit = c;
            i++;
        }
        /* A range a-z (unescaped '-' between two literals). */
        if (p[i] == '-' && p[i + 1] && p[i + 1] != ']' && p[i + 1] != '\\' && lit != ']' && lit != '^' &&
            lit != '-') {
            char hi = p[i + 1];
            sb_putn(&body, &lit, 1);
            sb_putn(&body, "-", 1);
            sb_putn(&body, &hi, 1);
            i += 2;
            continue;
        }
        if (lit == ']')
            has_rb = true;
        else if (lit == '^')
            has_caret = true;
        else if (lit == '-')
            has_dash = true;
        else
            sb_putn(&body, &lit, 1);
    }
    if (body.oom) {
        *why = "out of memory";
        goto fail;
    }
    if (!body.n && !has_rb && !has_dash && has_caret && !neg) {
        sb_puts(b, "\\^");
    } else {
        sb_puts(b, neg ? "[^" : "[");
        if (has_rb) sb_puts(b, "]");
        if (body.n) sb_putn(b, body.p, body.n);
        if (has_caret) sb_puts(b, "^");
        if (has_dash) sb_puts(b, "-");
        sb_puts(b, "]");
    }
    free(body.p);
    return i + 1;
fail:
    free(body.p);
    return 0;
}

/* RE2 pattern -> anchored POSIX ERE in *out (heap); NULL *why on success. */
static char *translate_re2(const char *p, int *flags, const char **why) {
    sbuf b = {0};
    *flags = REG_EXTENDED | REG_NOSUB;
    *why = NULL;
    if (strncmp(p, "(?i)", 4) == 0) {
        *flags |= REG_ICASE;
        p += 4;
    }
    sb_puts(&b, "^(");
    for (size_t i = 0; p[i];) {
        char c = p[i];
        if (c == '\\') {
            size_t k = esc_outside(p + i + 1, &b, why);
            if (!k) goto fail;
            i += 1 + k;
        } else if (c == '[') {
            size_t k = bracket(p + i, &b, why);
            if (!k) goto fail;
            i += k;
        } else if (c == '(' && p[i + 1] == '?') {
            if (p[i + 2] == ':') {
                i += 3;
            } else if (p[i + 2] == 'P' && p[i + 3] == '<') {
                const char *e = strchr(p + i + 4, '>');
                if (!e) {
                    *why = "bad named group";
                    goto fail;
                }
                i = (size_t)(e + 1 - p);
            } else {
                *why = "unsupported (? group";
                goto fail;
            }
            sb_puts(&b, "(");
        } else if ((c == '*' || c == '+' || c == '?' || c == '}') && p[i + 1] == '?') {
            /* A lazy quantifier: for a full match the same as greedy. */
            sb_putn(&b, &c, 1);
            i += 2;
        } else {
            sb_putn(&b, &c, 1);
            i++;
        }
    }
    sb_puts(&b, ")$");
    if (b.oom) {
        *why = "out of memory";
        goto fail;
    }
    return b.p;
fail:
    free(b.p);
    return NULL;
}

static onyx_status init_regex(onyx_node *n, onyx_error *err) {
    regex_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    const onyx_pb_attr *pat = onyx_attr_find(n, "pattern");
    if (!pat) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "missing attribute 'pattern'");
    if (memchr(pat->s.s, 0, pat->s.len)) return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "pattern contains a NUL byte");
    const char *why;
    char *t = translate_re2(pat->s.s, &a->flags, &why);
    if (!t) return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "pattern '%s': %s", pat->s.s, why);
    /* Compile once to reject bad patterns at load; runs compile their own
     * copy (regex_t needs a regfree that no model teardown would call). */
    regex_t re;
    int rc = regcomp(&re, t, a->flags);
    if (rc) {
        char msg[128];
        regerror(rc, &re, msg, sizeof msg);
        free(t);
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "pattern '%s': %s", pat->s.s, msg);
    }
    regfree(&re);
    a->posix = onyx_node_alloc(n, strlen(t) + 1);
    if (a->posix) strcpy(a->posix, t);
    free(t);
    if (!a->posix) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    n->state = a;
    return ONYX_OK;
}

static onyx_status run_regex(const onyx_node *nd, onyx_exec *x) {
    const regex_attr *a = nd->state;
    const onyx_tensor *X = onyx_exec_input(x, 0);
    if (!X) return FAIL("missing input");
    if (X->dtype != ONYX_DTYPE_STRING) return FAIL("input must be string, got %s", onyx_dtype_name(X->dtype));
    onyx_tensor *Y;
    onyx_status st = onyx_exec_output(x, 0, ONYX_DTYPE_BOOL, X->ndim, X->dims, &Y);
    if (st) return st;
    int64_t count = onyx_tensor_count(X);
    if (!count) return ONYX_OK;
    regex_t re;
    if (regcomp(&re, a->posix, a->flags)) return onyx_exec_fail(x, ONYX_ERR_RUNTIME, "cannot compile the pattern");
    char *const *in = X->data;
    uint8_t *out = Y->data;
    for (int64_t i = 0; i < count; i++) out[i] = regexec(&re, str_or_empty(in[i]), 0, NULL, 0) == 0;
    regfree(&re);
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// TfIdfVectorizer

typedef enum tfidf_mode { TFIDF_TF, TFIDF_IDF, TFIDF_TFIDF, TFIDF_MODE_COUNT } tfidf_mode;

/* One pool n-gram: its items start at pool index `start`; `id` is its
 * 1-based n-gram id (ngram_indexes[id - 1] is its output column). */
typedef struct gram {
    int64_t start;
    int64_t id;
} gram;

typedef struct tfidf_attr {
    tfidf_mode mode;
    int64_t min_n, max_n, max_skip;
    int64_t out_size;
    const int64_t *indexes;   /* ngram_indexes */
    const float *weights;     /* (out_size) or NULL */
    const int64_t *pool_i64;  /* exactly one of the pools is set */
    const onyx_pb_string *pool_str;
    int64_t n_grams[ONYX_MAX_DIMS + 1];  /* per size n (index n), sorted */
    gram *grams[ONYX_MAX_DIMS + 1];
} tfidf_attr;

/* Sizes are bounded: n-grams longer than this are refused at load. */
#define TFIDF_MAX_N ONYX_MAX_DIMS

static int cmp_pool(const tfidf_attr *a, int64_t i, int64_t j, int64_t n) {
    for (int64_t k = 0; k < n; k++) {
        int c;
        if (a->pool_i64)
            c = a->pool_i64[i + k] < a->pool_i64[j + k] ? -1 : a->pool_i64[i + k] > a->pool_i64[j + k];
        else
            c = strcmp(a->pool_str[i + k].s, a->pool_str[j + k].s);
        if (c) return c;
    }
    return 0;
}

/* Insertion into sorted order (pools are small and sorted once at load);
 * equal n-grams keep the later id, as the reference's trie does. */
static void gram_insert(const tfidf_attr *a, gram *g, int64_t *count, int64_t n, gram v) {
    int64_t lo = 0, hi = *count;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        int c = cmp_pool(a, g[mid].start, v.start, n);
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < *count && cmp_pool(a, g[lo].start, v.start, n) == 0) {
        g[lo].id = v.id;
        return;
    }
    memmove(g + lo + 1, g + lo, (size_t)(*count - lo) * sizeof *g);
    g[lo] = v;
    (*count)++;
}

static onyx_status init_tfidf(onyx_node *n, onyx_error *err) {
    tfidf_attr *a = onyx_node_alloc(n, sizeof *a);
    if (!a) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
    static const char *const modes[TFIDF_MODE_COUNT] = {"TF", "IDF", "TFIDF"};
    const char *mode = onyx_attr_string(n, "mode", "");
    int m = onyx_op_lookup(mode, modes, TFIDF_MODE_COUNT);
    if (m < 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "attribute 'mode' is '%s' (TF, IDF or TFIDF)", mode);
    a->mode = (tfidf_mode)m;
    a->min_n = onyx_attr_int(n, "min_gram_length", 0);
    a->max_n = onyx_attr_int(n, "max_gram_length", 0);
    a->max_skip = onyx_attr_int(n, "max_skip_count", 0);
    if (a->min_n < 1 || a->max_n < a->min_n || a->max_n > TFIDF_MAX_N)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "gram lengths must satisfy 1 <= min <= max <= %d",
                           TFIDF_MAX_N);
    if (a->max_skip < 0 || a->max_skip > (1 << 20))
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "max_skip_count must be >= 0");
    const int64_t *counts;
    int64_t n_counts = onyx_attr_ints(n, "ngram_counts", &counts);
    int64_t n_idx = onyx_attr_ints(n, "ngram_indexes", &a->indexes);
    if (n_counts < 1 || n_idx < 1)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "missing attribute ngram_counts or ngram_indexes");
    int64_t total;
    const onyx_pb_attr *ps = onyx_attr_find(n, "pool_strings");
    int64_t n_pi = onyx_attr_ints(n, "pool_int64s", &a->pool_i64);
    if (n_pi > 0 && ps && ps->n_strings)
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "both pool_int64s and pool_strings are set");
    if (n_pi > 0) {
        total = n_pi;
    } else if (ps && ps->n_strings) {
        a->pool_i64 = NULL;
        a->pool_str = ps->strings;
        total = (int64_t)ps->n_strings;
    } else {
        return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "one of pool_int64s or pool_strings is required");
    }
    a->out_size = 0;
    for (int64_t i = 0; i < n_idx; i++) {
        if (a->indexes[i] < 0 || a->indexes[i] >= (int64_t)1 << 31)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "ngram_indexes[%lld] is out of range", (long long)i);
        if (a->indexes[i] + 1 > a->out_size) a->out_size = a->indexes[i] + 1;
    }
    const float *w;
    int64_t n_w = onyx_attr_floats(n, "weights", &w);
    if (n_w > 0) {
        if (n_w < a->out_size)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "weights has %lld values for %lld outputs",
                               (long long)n_w, (long long)a->out_size);
        a->weights = w;
    }
    /* ngram_counts[i] is where the (i+1)-grams start in the pool; ids run
     * over every pool n-gram, counted or not. */
    int64_t id = 1;
    for (int64_t i = 0; i < n_counts; i++) {
        int64_t size = i + 1, start = counts[i], end = i + 1 < n_counts ? counts[i + 1] : total;
        if (start < 0 || end < start || end > total)
            return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "ngram_counts is not an increasing list of pool offsets");
        int64_t ng = (end - start) / size;
        if (size < a->min_n || size > a->max_n) {
            id += ng;
            continue;
        }
        gram *g = onyx_node_alloc(n, (size_t)(ng ? ng : 1) * sizeof *g);
        if (!g) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        a->grams[size] = g;
        for (int64_t k = 0; k < ng; k++, id++) {
            if (id - 1 >= n_idx)
                return onyx_errorf(err, ONYX_ERR_INVALID_MODEL, "ngram_indexes has fewer entries than the pool has n-grams");
            gram v = {start + k * size, id};
            gram_insert(a, g, &a->n_grams[size], size, v);
        }
    }
    n->state = a;
    return ONYX_OK;
}

typedef struct tfidf_row {
    const tfidf_attr *a;
    const onyx_tensor *X;
    int64_t base; /* first element of the row */
} tfidf_row;

/* Compares pool n-gram g (size n) with the input items at pos, pos+d, ...;
 * returns <0, 0, >0 like strcmp (pool minus input). */
static int cmp_input(const tfidf_row *r, int64_t g, int64_t pos, int64_t d, int64_t n) {
    const tfidf_attr *a = r->a;
    for (int64_t k = 0; k < n; k++) {
        int64_t at = r->base + pos + k * d;
        int c;
        if (a->pool_i64) {
            int64_t v = onyx_tensor_get_i64(r->X, at), p = a->pool_i64[g + k];
            c = p < v ? -1 : p > v;
        } else {
            c = strcmp(a->pool_str[g + k].s, str_or_empty(((char *const *)r->X->data)[at]));
        }
        if (c) return c;
    }
    return 0;
}

static int64_t find_gram(const tfidf_row *r, int64_t n, int64_t pos, int64_t d) {
    const gram *g = r->a->grams[n];
    int64_t lo = 0, hi = r->a->n_grams[n];
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        int c = cmp_input(r, g[mid].start, pos, d, n);
        if (!c) return g[mid].id;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

/* X (C) or (B, C), int32/int64/string -> Y (out_size) or (B, out_size):
 * counts of every pool n-gram whose items appear at positions
 * s, s + d, ..., d in 1 .. max_skip_count + 1 (unigrams counted once),
 * then weighted by mode. */
static onyx_status run_tfidf(const onyx_node *nd, onyx_exec *x) {
    const tfidf_attr *a = nd->state;
    const onyx_tensor *X = onyx_exec_input(x, 0);
    if (!X) return FAIL("missing input");
    bool is_str = X->dtype == ONYX_DTYPE_STRING;
    if (!is_str && X->dtype != ONYX_DTYPE_INT32 && X->dtype != ONYX_DTYPE_INT64)
        return FAIL("input must be string, int32 or int64, got %s", onyx_dtype_name(X->dtype));
    if (is_str != (a->pool_str != NULL))
        return FAIL("input type %s does not match the pool (%s)", onyx_dtype_name(X->dtype),
                    a->pool_str ? "pool_strings" : "pool_int64s");
    if (X->ndim > 2) return FAIL("input must be (C) or (B, C), got rank %d", X->ndim);
    int64_t B = X->ndim == 2 ? X->dims[0] : 1, C = X->ndim == 0 ? 1 : X->dims[X->ndim - 1];
    if (X->ndim == 2 && B < 1) return FAIL("input batch must be >= 1");
    int64_t dims[2] = {B, a->out_size};
    onyx_tensor *Y;
    onyx_status st = X->ndim == 2 ? onyx_exec_output(x, 0, ONYX_DTYPE_FLOAT, 2, dims, &Y)
                                  : onyx_exec_output(x, 0, ONYX_DTYPE_FLOAT, 1, dims + 1, &Y);
    if (st) return st;
    float *y = Y->data;
    memset(y, 0, (size_t)(B * a->out_size) * sizeof(float));
    for (int64_t b = 0; b < B; b++) {
        tfidf_row r = {a, X, b * C};
        float *row = y + b * a->out_size;
        int64_t start_n = a->min_n;
        for (int64_t d = 1; d <= a->max_skip + 1; d++) {
            for (int64_t s = 0; s < C; s++) {
                for (int64_t n = start_n; n <= a->max_n; n++) {
                    if (s + (n - 1) * d >= C) break;
                    int64_t id = a->n_grams[n] ? find_gram(&r, n, s, d) : 0;
                    if (id) row[a->indexes[id - 1]] += 1;
                }
            }
            if (start_n == 1) {
                start_n = 2;
                if (start_n > a->max_n) break;
            }
        }
        for (int64_t i = 0; i < a->out_size; i++) {
            float f = row[i];
            if (a->mode == TFIDF_IDF)
                row[i] = f > 0 ? (a->weights ? a->weights[i] : 1.0f) : 0.0f;
            else if (a->mode == TFIDF_TFIDF && a->weights)
                row[i] = a->weights[i] * f;
        }
    }
    return ONYX_OK;
}

// ----------------------------------------------------------------------------
// Registry rows

#define T_STR ONYX_T(ONYX_DTYPE_STRING)

const onyx_op_schema onyx_ops_string[] = {
    {"", "StringNormalizer", 10, 1, 1, 1, 1, T_STR, init_normalizer, run_normalizer, 0},
    {"", "StringConcat", 20, 2, 2, 1, 1, T_STR, NULL, run_concat, 0},
    {"", "StringSplit", 20, 1, 1, 2, 2, T_STR, init_split, run_split, 0},
    {"", "RegexFullMatch", 20, 1, 1, 1, 1, T_STR, init_regex, run_regex, 0},
    {"", "TfIdfVectorizer", 9, 1, 1, 1, 1,
     T_STR | ONYX_T(ONYX_DTYPE_INT32) | ONYX_T(ONYX_DTYPE_INT64), init_tfidf, run_tfidf, 0},
    {0},
};
