/* json.c - the streaming JSON writer; see json.h. Owns escaping and number
 * formatting only: the caller decides the document's shape.
 */
#include "cli/json.h"

#include "base/error.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void onyx_json_init(onyx_json *j, FILE *f, bool pretty) {
    memset(j, 0, sizeof *j);
    j->f = f;
    j->pretty = pretty;
}

static bool in_compact(const onyx_json *j) {
    return j->compact_at && j->depth >= j->compact_at;
}

static void newline_indent(onyx_json *j) {
    if (!j->pretty || in_compact(j)) return;
    fputc('\n', j->f);
    for (int i = 0; i < j->depth; i++)
        fputs("  ", j->f);
}

/* Called before every value and key: separates it from the previous one. */
static void before_value(onyx_json *j) {
    if (j->after_key) {
        j->after_key = false;
        return;
    }
    if (j->depth == 0) return;
    if (j->has_items[j->depth - 1]) fputs(j->pretty && in_compact(j) ? ", " : ",", j->f);
    j->has_items[j->depth - 1] = true;
    newline_indent(j);
}

static void open_container(onyx_json *j, char c) {
    before_value(j);
    ONYX_ASSERT(j->depth < ONYX_JSON_MAX_DEPTH);
    fputc(c, j->f);
    j->has_items[j->depth++] = false;
}

static void close_container(onyx_json *j, char c) {
    ONYX_ASSERT(j->depth > 0 && !j->after_key);
    bool compact = in_compact(j);
    bool had = j->has_items[--j->depth];
    if (had && !compact) newline_indent(j);
    if (j->compact_at > j->depth) j->compact_at = 0;
    fputc(c, j->f);
}

void onyx_json_begin_object(onyx_json *j) {
    open_container(j, '{');
}
void onyx_json_end_object(onyx_json *j) {
    close_container(j, '}');
}
void onyx_json_begin_array(onyx_json *j) {
    open_container(j, '[');
}
void onyx_json_end_array(onyx_json *j) {
    close_container(j, ']');
}

void onyx_json_begin_array_compact(onyx_json *j) {
    open_container(j, '[');
    if (!j->compact_at) j->compact_at = j->depth;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if it is malformed
 * (overlong, surrogate, beyond U+10FFFF, truncated). */
static int utf8_valid_len(const unsigned char *p) {
    unsigned c = p[0];
    int n;
    uint32_t cp;
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0)
        n = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0)
        n = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0)
        n = 4, cp = c & 0x07;
    else
        return 0;
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0; /* also stops at the NUL */
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

static void write_escaped(FILE *f, const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    while (*p) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc((int)c, f);
            p++;
        } else if (c < 0x20) {
            switch (c) {
            case '\n':
                fputs("\\n", f);
                break;
            case '\r':
                fputs("\\r", f);
                break;
            case '\t':
                fputs("\\t", f);
                break;
            case '\b':
                fputs("\\b", f);
                break;
            case '\f':
                fputs("\\f", f);
                break;
            default:
                fprintf(f, "\\u%04x", c);
                break;
            }
            p++;
        } else {
            int n = utf8_valid_len(p);
            if (n == 0) {
                fputs("\\ufffd", f);
                p++;
            } else {
                fwrite(p, 1, (size_t)n, f);
                p += n;
            }
        }
    }
    fputc('"', f);
}

void onyx_json_key(onyx_json *j, const char *key) {
    before_value(j);
    write_escaped(j->f, key ? key : "");
    fputs(j->pretty ? ": " : ":", j->f);
    j->after_key = true;
}

void onyx_json_string(onyx_json *j, const char *s) {
    if (!s) {
        onyx_json_null(j);
        return;
    }
    before_value(j);
    write_escaped(j->f, s);
}

void onyx_json_int(onyx_json *j, int64_t v) {
    before_value(j);
    fprintf(j->f, "%" PRId64, v);
}

void onyx_json_uint(onyx_json *j, uint64_t v) {
    before_value(j);
    fprintf(j->f, "%" PRIu64, v);
}

static bool write_nonfinite(FILE *f, double v) {
    if (isnan(v))
        fputs("NaN", f);
    else if (isinf(v))
        fputs(v > 0 ? "Infinity" : "-Infinity", f);
    else
        return false;
    return true;
}

void onyx_json_float(onyx_json *j, float v) {
    before_value(j);
    if (write_nonfinite(j->f, v)) return;
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    fputs(buf, j->f);
}

void onyx_json_double(onyx_json *j, double v) {
    before_value(j);
    if (write_nonfinite(j->f, v)) return;
    char buf[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    fputs(buf, j->f);
}

void onyx_json_bool(onyx_json *j, bool v) {
    before_value(j);
    fputs(v ? "true" : "false", j->f);
}

void onyx_json_null(onyx_json *j) {
    before_value(j);
    fputs("null", j->f);
}

void onyx_json_finish(onyx_json *j) {
    fputc('\n', j->f);
}
