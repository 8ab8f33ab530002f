/* npy.c - the NumPy .npy codec; see npy.h for the supported dialect.
 *
 * Owns: header parsing (a small parser for the Python dict literal NumPy
 * writes), descr <-> dtype mapping, byte swapping, UCS-4 <-> UTF-8 text.
 * Does not own: file-extension dispatch or .pb files (tensorfile.c).
 */
#include "io/npy.h"

#include "base/error.h"
#include "base/file.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c assumes a little-endian host"
#endif

/* NumPy itself refuses headers above 10000 bytes unless told otherwise; we
 * allow more (long structured descrs are rejected later anyway) but keep a
 * hard cap so a hostile length cannot make us scan gigabytes of text. */
#define NPY_MAX_HEADER ((size_t)1 << 20)
/* Header + preamble is padded to this many bytes, as NumPy does, so the data
 * of a mapped file is aligned for any element type. */
#define NPY_ALIGN 64

static const uint8_t npy_magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

// ----------------------------------------------------------------------------
// Descr: "<f4", "|b1", "<U7", ...

typedef enum npy_text { NPY_TEXT_NONE = 0, NPY_TEXT_UCS4, NPY_TEXT_BYTES } npy_text;

typedef struct npy_descr {
    onyx_dtype dtype;
    size_t itemsize; /* bytes per element in the file */
    size_t swap;     /* 0, or the unit to byte-swap (itemsize, or half for complex) */
    npy_text text;   /* string arrays: how elements are stored */
} npy_descr;

/* Parses a NumPy descr string. Returns false with a message in `err`. */
static bool parse_descr(const char *s, npy_descr *d, onyx_error *err) {
    memset(d, 0, sizeof *d);
    const char *p = s;
    bool big = false;
    if (*p == '<' || *p == '|' || *p == '=') {
        p++;
    } else if (*p == '>') {
        big = true;
        p++;
    }
    char kind = *p ? *p++ : 0;
    size_t size = 0;
    bool have_digits = false;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (size > ((size_t)1 << 40)) break; /* absurd; rejected below */
        size = size * 10 + (size_t)(*p - '0');
        have_digits = true;
    }
    if (*p || (!have_digits && kind != 'O')) goto bad;
    switch (kind) {
    case 'b':
        if (size == 1) d->dtype = ONYX_DTYPE_BOOL;
        break;
    case 'i':
        d->dtype = size == 1   ? ONYX_DTYPE_INT8
                   : size == 2 ? ONYX_DTYPE_INT16
                   : size == 4 ? ONYX_DTYPE_INT32
                   : size == 8 ? ONYX_DTYPE_INT64
                               : ONYX_DTYPE_UNDEFINED;
        break;
    case 'u':
        d->dtype = size == 1   ? ONYX_DTYPE_UINT8
                   : size == 2 ? ONYX_DTYPE_UINT16
                   : size == 4 ? ONYX_DTYPE_UINT32
                   : size == 8 ? ONYX_DTYPE_UINT64
                               : ONYX_DTYPE_UNDEFINED;
        break;
    case 'f':
        d->dtype = size == 2   ? ONYX_DTYPE_FLOAT16
                   : size == 4 ? ONYX_DTYPE_FLOAT
                   : size == 8 ? ONYX_DTYPE_DOUBLE
                               : ONYX_DTYPE_UNDEFINED;
        break;
    case 'c':
        d->dtype = size == 8    ? ONYX_DTYPE_COMPLEX64
                   : size == 16 ? ONYX_DTYPE_COMPLEX128
                                : ONYX_DTYPE_UNDEFINED;
        break;
    case 'U':
        if (size > ((size_t)1 << 30)) goto bad;
        d->dtype = ONYX_DTYPE_STRING;
        d->text = NPY_TEXT_UCS4;
        d->itemsize = size * 4;
        d->swap = big ? 4 : 0;
        return true;
    case 'S':
    case 'a':
        if (size > ((size_t)1 << 30)) goto bad;
        d->dtype = ONYX_DTYPE_STRING;
        d->text = NPY_TEXT_BYTES;
        d->itemsize = size;
        return true;
    case 'O':
        onyx_errorf(err, ONYX_ERR_UNSUPPORTED,
                    "object arrays (descr '%s') are pickles and are not supported; "
                    "save a numeric or str ('<U') array instead",
                    s);
        return false;
    default:
        break;
    }
    if (d->dtype == ONYX_DTYPE_UNDEFINED) goto bad;
    d->itemsize = size;
    if (big && size > 1) d->swap = kind == 'c' ? size / 2 : size;
    return true;
bad:
    onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "unsupported .npy descr '%s'", s);
    return false;
}

// ----------------------------------------------------------------------------
// Header: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"

typedef struct hdr_parser {
    const char *p, *end;
} hdr_parser;

static void hp_ws(hdr_parser *h) {
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r'))
        h->p++;
}

static bool hp_peek(hdr_parser *h, char c) {
    hp_ws(h);
    return h->p < h->end && *h->p == c;
}

static bool hp_eat(hdr_parser *h, char c) {
    if (!hp_peek(h, c)) return false;
    h->p++;
    return true;
}

/* A quoted Python string without escapes (NumPy never writes any in the
 * three keys it uses) into buf[cap]. */
static bool hp_string(hdr_parser *h, char *buf, size_t cap) {
    hp_ws(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) return false;
    char q = *h->p++;
    size_t n = 0;
    while (h->p < h->end && *h->p != q) {
        if (*h->p == '\\' || n + 1 >= cap) return false;
        buf[n++] = *h->p++;
    }
    if (h->p >= h->end) return false;
    h->p++;
    buf[n] = 0;
    return true;
}

static bool hp_word(hdr_parser *h, const char *w) {
    hp_ws(h);
    size_t n = strlen(w);
    if ((size_t)(h->end - h->p) < n || memcmp(h->p, w, n) != 0) return false;
    const char *after = h->p + n;
    if (after < h->end && ((*after >= 'A' && *after <= 'Z') || (*after >= 'a' && *after <= 'z') ||
                           (*after >= '0' && *after <= '9') || *after == '_'))
        return false;
    h->p = after;
    return true;
}

/* A non-negative integer (Python 2 files may add an 'L' suffix). */
static bool hp_dim(hdr_parser *h, int64_t *out) {
    hp_ws(h);
    int64_t v = 0;
    const char *start = h->p;
    while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
        int digit = *h->p++ - '0';
        if (v > (INT64_MAX - digit) / 10) return false;
        v = v * 10 + digit;
    }
    if (h->p == start) return false;
    if (h->p < h->end && *h->p == 'L') h->p++;
    *out = v;
    return true;
}

typedef struct npy_header {
    npy_descr descr;
    int ndim;
    int64_t dims[ONYX_MAX_DIMS];
} npy_header;

static onyx_status parse_header(const char *text, size_t len, npy_header *hd, onyx_error *err) {
    hdr_parser h = {text, text + len};
    bool have_descr = false, have_order = false, have_shape = false;
    memset(hd, 0, sizeof *hd);
    if (!hp_eat(&h, '{')) goto syntax;
    while (!hp_eat(&h, '}')) {
        char key[32];
        if (!hp_string(&h, key, sizeof key) || !hp_eat(&h, ':')) goto syntax;
        if (strcmp(key, "descr") == 0 && !have_descr) {
            char descr[64];
            if (hp_peek(&h, '['))
                return onyx_errorf(err, ONYX_ERR_UNSUPPORTED,
                                   "structured .npy arrays (record descr) are not supported");
            if (!hp_string(&h, descr, sizeof descr)) goto syntax;
            if (!parse_descr(descr, &hd->descr, err))
                return err ? err->status : ONYX_ERR_UNSUPPORTED;
            have_descr = true;
        } else if (strcmp(key, "fortran_order") == 0 && !have_order) {
            if (hp_word(&h, "True"))
                return onyx_errorf(err, ONYX_ERR_UNSUPPORTED,
                                   ".npy arrays in Fortran order are not supported; save "
                                   "np.ascontiguousarray(a) instead");
            if (!hp_word(&h, "False")) goto syntax;
            have_order = true;
        } else if (strcmp(key, "shape") == 0 && !have_shape) {
            if (!hp_eat(&h, '(')) goto syntax;
            while (!hp_eat(&h, ')')) {
                int64_t d;
                if (!hp_dim(&h, &d)) goto syntax;
                if (hd->ndim == ONYX_MAX_DIMS)
                    return onyx_errorf(err, ONYX_ERR_UNSUPPORTED,
                                       ".npy array has more than %d dimensions", ONYX_MAX_DIMS);
                hd->dims[hd->ndim++] = d;
                if (!hp_eat(&h, ',') && !hp_peek(&h, ')')) goto syntax;
            }
            have_shape = true;
        } else {
            return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT,
                               "bad .npy header: unexpected or repeated key '%s'", key);
        }
        if (!hp_eat(&h, ',') && !hp_peek(&h, '}')) goto syntax;
    }
    /* NumPy pads with spaces and ends with '\n'; some writers pad with NULs. */
    for (; h.p < h.end; h.p++)
        if (*h.p != ' ' && *h.p != '\n' && *h.p != '\r' && *h.p != '\t' && *h.p != 0) goto syntax;
    if (!have_descr || !have_order || !have_shape)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "bad .npy header: missing '%s'",
                           !have_descr   ? "descr"
                           : !have_order ? "fortran_order"
                                         : "shape");
    return ONYX_OK;
syntax:
    return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "bad .npy header at byte %zu of \"%.*s\"",
                       (size_t)(h.p - text), (int)(len < 200 ? len : 200), text);
}

// ----------------------------------------------------------------------------
// UTF-8 <-> code points

/* Appends code point c to buf as UTF-8 (buf has room for 4 bytes);
 * surrogates and values beyond U+10FFFF become U+FFFD. Returns bytes written. */
static size_t utf8_put(uint8_t *buf, uint32_t c) {
    if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) c = 0xFFFD;
    if (c < 0x80) {
        buf[0] = (uint8_t)c;
        return 1;
    }
    if (c < 0x800) {
        buf[0] = (uint8_t)(0xC0 | (c >> 6));
        buf[1] = (uint8_t)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        buf[0] = (uint8_t)(0xE0 | (c >> 12));
        buf[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
        buf[2] = (uint8_t)(0x80 | (c & 0x3F));
        return 3;
    }
    buf[0] = (uint8_t)(0xF0 | (c >> 18));
    buf[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
    buf[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
    buf[3] = (uint8_t)(0x80 | (c & 0x3F));
    return 4;
}

/* Decodes one code point from s (NUL-terminated); a malformed sequence
 * yields U+FFFD and consumes one byte. Advances *s. */
static uint32_t utf8_get(const uint8_t **s) {
    const uint8_t *p = *s;
    uint32_t c = p[0];
    int n = c < 0x80             ? 0
            : (c & 0xE0) == 0xC0 ? 1
            : (c & 0xF0) == 0xE0 ? 2
            : (c & 0xF8) == 0xF0 ? 3
                                 : -1;
    if (n < 0) goto bad;
    c &= n == 0 ? 0x7F : n == 1 ? 0x1F : n == 2 ? 0x0F : 0x07;
    for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xC0) != 0x80) goto bad; /* also stops at the NUL */
        c = (c << 6) | (p[i] & 0x3F);
    }
    /* Overlong forms, surrogates and out-of-range values are malformed. */
    if ((n == 1 && c < 0x80) || (n == 2 && c < 0x800) || (n == 3 && c < 0x10000) || c > 0x10FFFF ||
        (c >= 0xD800 && c <= 0xDFFF))
        goto bad;
    *s = p + n + 1;
    return c;
bad:
    *s = p + 1;
    return 0xFFFD;
}

// ----------------------------------------------------------------------------
// Decoding

static uint32_t rd_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void swap_bytes(uint8_t *p, size_t nbytes, size_t unit) {
    for (size_t off = 0; off + unit <= nbytes; off += unit)
        for (size_t i = 0, j = unit - 1; i < j; i++, j--) {
            uint8_t t = p[off + i];
            p[off + i] = p[off + j];
            p[off + j] = t;
        }
}

/* Converts n text elements of the file into malloc'ed UTF-8 strings. */
static onyx_status decode_text(const npy_descr *d, const uint8_t *src, int64_t n, char **dst,
                               onyx_error *err) {
    size_t chars = d->text == NPY_TEXT_UCS4 ? d->itemsize / 4 : d->itemsize;
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *e = src + (size_t)i * d->itemsize;
        /* NumPy drops trailing NULs of fixed-width text when reading items. */
        size_t len = chars;
        if (d->text == NPY_TEXT_UCS4) {
            while (len > 0) {
                uint32_t c = rd_u32le(e + 4 * (len - 1));
                if (c != 0) break;
                len--;
            }
        } else {
            while (len > 0 && e[len - 1] == 0)
                len--;
        }
        size_t cap = d->text == NPY_TEXT_UCS4 ? len * 4 + 1 : len + 1;
        uint8_t *s = malloc(cap);
        if (!s) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory decoding text");
        size_t w = 0;
        if (d->text == NPY_TEXT_UCS4) {
            for (size_t k = 0; k < len; k++) {
                uint8_t cb[4];
                memcpy(cb, e + 4 * k, 4);
                if (d->swap) swap_bytes(cb, 4, 4);
                uint32_t c = rd_u32le(cb);
                /* A C string cannot hold NUL; NumPy text would keep it, so
                 * refuse rather than silently truncate. */
                if (c == 0) {
                    free(s);
                    return onyx_errorf(err, ONYX_ERR_UNSUPPORTED,
                                       "string element %lld contains a NUL character",
                                       (long long)i);
                }
                w += utf8_put(s + w, c);
            }
        } else {
            if (memchr(e, 0, len)) {
                free(s);
                return onyx_errorf(err, ONYX_ERR_UNSUPPORTED,
                                   "string element %lld contains a NUL byte", (long long)i);
            }
            memcpy(s, e, len);
            w = len;
        }
        s[w] = 0;
        dst[i] = (char *)s;
    }
    return ONYX_OK;
}

onyx_status onyx_npy_decode(const uint8_t *data, size_t size, onyx_tensor *out, onyx_error *err) {
    memset(out, 0, sizeof *out);
    if (size < 10 || memcmp(data, npy_magic, sizeof npy_magic) != 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "not a .npy file (bad magic)");
    unsigned major = data[6], minor = data[7];
    size_t hlen, off;
    if (major == 1) {
        hlen = (size_t)data[8] | (size_t)data[9] << 8;
        off = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12) return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "truncated .npy header");
        hlen = rd_u32le(data + 8);
        off = 12;
    } else {
        return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "unsupported .npy format version %u.%u",
                           major, minor);
    }
    if (hlen > NPY_MAX_HEADER)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, ".npy header length %zu is too large",
                           hlen);
    if (hlen > size - off)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT,
                           "truncated .npy header: %zu bytes announced, %zu present", hlen,
                           size - off);
    /* Versions 1 and 2 are latin-1 text, 3 is UTF-8; the keys and values we
     * accept are ASCII either way. */
    npy_header hd;
    onyx_status st = parse_header((const char *)data + off, hlen, &hd, err);
    if (st) return st;
    off += hlen;

    int64_t count = onyx_dims_count(hd.ndim, hd.dims);
    if (count < 0)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, ".npy shape has too many elements");
    const npy_descr *d = &hd.descr;
    if (d->itemsize && (uint64_t)count > (uint64_t)(SIZE_MAX / d->itemsize))
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, ".npy data size overflows");
    size_t need = (size_t)count * d->itemsize;
    if (need > size - off)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT,
                           "truncated .npy data: shape needs %zu bytes, file has %zu", need,
                           size - off);

    st = onyx_tensor_alloc(out, d->dtype, hd.ndim, hd.dims);
    if (st)
        return onyx_errorf(err, st, "cannot allocate a %lld-element %s tensor", (long long)count,
                           onyx_dtype_name(d->dtype));
    const uint8_t *src = data + off;
    if (d->text) {
        st = decode_text(d, src, count, out->data, err);
        if (st) goto fail;
    } else if (need) {
        memcpy(out->data, src, need);
        if (d->swap) swap_bytes(out->data, need, d->swap);
        if (d->dtype == ONYX_DTYPE_BOOL) {
            uint8_t *b = out->data;
            for (size_t i = 0; i < need; i++)
                b[i] = b[i] != 0;
        }
    }
    return ONYX_OK;
fail:
    onyx_tensor_release(out);
    return st;
}

onyx_status onyx_npy_load(const char *path, onyx_tensor *out, onyx_error *err) {
    memset(out, 0, sizeof *out);
    onyx_mapping map;
    onyx_status st = onyx_file_map(path, &map, err);
    if (st) return st;
    st = onyx_npy_decode(map.data, map.size, out, err);
    onyx_file_unmap(&map);
    if (st) onyx_error_prefix(err, "%s", path);
    return st;
}

// ----------------------------------------------------------------------------
// Encoding

/* Where encoded bytes go: a FILE, or a growing malloc'ed buffer. */
typedef struct npy_sink {
    FILE *f;
    uint8_t *buf;
    size_t len, cap;
    bool failed;
} npy_sink;

static void sink_put(npy_sink *s, const void *p, size_t n) {
    if (s->failed || n == 0) return;
    if (s->f) {
        if (fwrite(p, 1, n, s->f) != n) s->failed = true;
        return;
    }
    if (n > s->cap - s->len) {
        size_t cap = s->cap ? s->cap : 4096;
        while (n > cap - s->len) {
            if (cap > SIZE_MAX / 2) {
                s->failed = true;
                return;
            }
            cap *= 2;
        }
        uint8_t *nb = realloc(s->buf, cap);
        if (!nb) {
            s->failed = true;
            return;
        }
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
}

/* The descr written for `t`, and the type its elements are converted to
 * (FLOAT for types NumPy cannot name). */
static const char *write_descr(onyx_dtype t, onyx_dtype *as) {
    *as = t;
    switch (t) {
    case ONYX_DTYPE_FLOAT:
        return "<f4";
    case ONYX_DTYPE_DOUBLE:
        return "<f8";
    case ONYX_DTYPE_FLOAT16:
        return "<f2";
    case ONYX_DTYPE_INT8:
        return "|i1";
    case ONYX_DTYPE_UINT8:
        return "|u1";
    case ONYX_DTYPE_INT16:
        return "<i2";
    case ONYX_DTYPE_UINT16:
        return "<u2";
    case ONYX_DTYPE_INT32:
        return "<i4";
    case ONYX_DTYPE_UINT32:
        return "<u4";
    case ONYX_DTYPE_INT64:
        return "<i8";
    case ONYX_DTYPE_UINT64:
        return "<u8";
    case ONYX_DTYPE_BOOL:
        return "|b1";
    case ONYX_DTYPE_COMPLEX64:
        return "<c8";
    case ONYX_DTYPE_COMPLEX128:
        return "<c16";
    case ONYX_DTYPE_INT4:
        return "|i1"; /* unpacked: one byte per element */
    case ONYX_DTYPE_UINT4:
        return "|u1"; /* unpacked: one byte per element */
    case ONYX_DTYPE_BFLOAT16:
    case ONYX_DTYPE_FLOAT8E4M3FN:
    case ONYX_DTYPE_FLOAT8E4M3FNUZ:
    case ONYX_DTYPE_FLOAT8E5M2:
    case ONYX_DTYPE_FLOAT8E5M2FNUZ:
    case ONYX_DTYPE_FLOAT4E2M1:
    case ONYX_DTYPE_FLOAT8E8M0:
        *as = ONYX_DTYPE_FLOAT;
        return "<f4";
    default:
        return NULL;
    }
}

static size_t utf8_count(const char *s) {
    const uint8_t *p = (const uint8_t *)(s ? s : "");
    size_t n = 0;
    while (*p) {
        utf8_get(&p);
        n++;
    }
    return n;
}

static onyx_status npy_write(npy_sink *s, const onyx_tensor_view *t, onyx_error *err) {
    if (t->ndim < 0 || t->ndim > ONYX_MAX_DIMS)
        return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "tensor rank %d out of range", t->ndim);
    int64_t count = onyx_dims_count(t->ndim, t->dims);
    if (count < 0) return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "bad tensor shape");

    char descr[32];
    onyx_dtype as = t->dtype;
    size_t maxchars = 0;
    if (t->dtype == ONYX_DTYPE_STRING) {
        char *const *str = t->data;
        for (int64_t i = 0; i < count; i++) {
            size_t n = utf8_count(str[i]);
            if (n > maxchars) maxchars = n;
        }
        if (maxchars == 0) maxchars = 1; /* NumPy's width for all-empty text */
        if ((uint64_t)count > (uint64_t)(SIZE_MAX / 4 / maxchars))
            return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "string tensor too large");
        snprintf(descr, sizeof descr, "<U%zu", maxchars);
    } else {
        const char *d = write_descr(t->dtype, &as);
        if (!d)
            return onyx_errorf(err, ONYX_ERR_UNSUPPORTED, "cannot write %s tensors as .npy",
                               onyx_dtype_name(t->dtype));
        snprintf(descr, sizeof descr, "%s", d);
    }

    /* Header: the dict, padded with spaces so that preamble + header is a
     * multiple of NPY_ALIGN, ending in '\n'. With at most ONYX_MAX_DIMS dims
     * it is always far below 65535 bytes, so format 1.0 suffices. */
    char hdr[512];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < t->ndim; i++)
        n += snprintf(hdr + n, sizeof hdr - (size_t)n, "%lld%s", (long long)t->dims[i],
                      t->ndim == 1 || i + 1 < t->ndim ? ", " : "");
    if (t->ndim == 1) n -= 1; /* "(3,)" rather than "(3, )" */
    n += snprintf(hdr + n, sizeof hdr - (size_t)n, "), }");
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (NPY_ALIGN - total % NPY_ALIGN) % NPY_ALIGN;
    ONYX_ASSERT((size_t)n + pad + 1 < sizeof hdr);
    memset(hdr + n, ' ', pad);
    hdr[(size_t)n + pad] = '\n';
    size_t hlen = (size_t)n + pad + 1;
    uint8_t pre[10];
    memcpy(pre, npy_magic, 6);
    pre[6] = 1;
    pre[7] = 0;
    pre[8] = (uint8_t)(hlen & 0xFF);
    pre[9] = (uint8_t)(hlen >> 8);
    sink_put(s, pre, sizeof pre);
    sink_put(s, hdr, hlen);

    if (t->dtype == ONYX_DTYPE_STRING) {
        char *const *str = t->data;
        uint32_t *row = calloc(maxchars, 4);
        if (!row) return onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory");
        for (int64_t i = 0; i < count && !s->failed; i++) {
            memset(row, 0, maxchars * 4);
            const uint8_t *p = (const uint8_t *)(str[i] ? str[i] : "");
            for (size_t k = 0; *p; k++)
                row[k] = utf8_get(&p); /* little-endian host */
            sink_put(s, row, maxchars * 4);
        }
        free(row);
    } else if (as != t->dtype) {
        /* Widen in blocks so a large output needs no second full copy. */
        float block[1024];
        size_t esz = onyx_dtype_size(t->dtype);
        for (int64_t i = 0; i < count && !s->failed; i += 1024) {
            int64_t m = count - i < 1024 ? count - i : 1024;
            onyx_status st = onyx_convert(ONYX_DTYPE_FLOAT, block, t->dtype,
                                          (const uint8_t *)t->data + (size_t)i * esz, m, false);
            if (st)
                return onyx_errorf(err, st, "cannot convert %s to float",
                                   onyx_dtype_name(t->dtype));
            sink_put(s, block, (size_t)m * sizeof(float));
        }
    } else {
        size_t bytes = onyx_dtype_bytes(t->dtype, count);
        if (bytes == SIZE_MAX)
            return onyx_errorf(err, ONYX_ERR_INVALID_ARGUMENT, "tensor too large");
        sink_put(s, t->data, bytes);
    }
    return ONYX_OK;
}

onyx_status onyx_npy_encode(const onyx_tensor_view *t, uint8_t **out, size_t *size,
                            onyx_error *err) {
    *out = NULL;
    *size = 0;
    npy_sink s = {0};
    onyx_status st = npy_write(&s, t, err);
    if (!st && s.failed)
        st = onyx_errorf(err, ONYX_ERR_OUT_OF_MEMORY, "out of memory encoding .npy");
    if (st) {
        free(s.buf);
        return st;
    }
    *out = s.buf;
    *size = s.len;
    return ONYX_OK;
}

onyx_status onyx_npy_save(const char *path, const onyx_tensor_view *t, onyx_error *err) {
    FILE *f = fopen(path, "wb");
    if (!f) return onyx_errorf(err, ONYX_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    npy_sink s = {.f = f};
    onyx_status st = npy_write(&s, t, err);
    if (fclose(f) != 0) s.failed = true;
    if (!st && s.failed)
        st = onyx_errorf(err, ONYX_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    else if (st)
        onyx_error_prefix(err, "%s", path);
    if (st) remove(path);
    return st;
}
