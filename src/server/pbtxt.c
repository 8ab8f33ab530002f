/* pbtxt.c - protobuf text format reader: tokenizer (comments, string
 * literals with C escapes and adjacent concatenation, numbers, identifiers)
 * and a recursive-descent parser into onyx_pb_msg trees (depth-limited).
 *
 * Owns: syntax only; unknown field names are kept for the caller to judge.
 */
#include "server/pbtxt.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32

typedef struct lexer {
    const char *p, *end;
    int line;
    char *err;
    size_t cap;
    bool failed;
} lexer;

static void fail(lexer *lx, const char *fmt, ...) {
    if (lx->failed) return;
    lx->failed = true;
    int n = snprintf(lx->err, lx->cap, "line %d: ", lx->line);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < lx->cap) vsnprintf(lx->err + n, lx->cap - (size_t)n, fmt, ap);
    va_end(ap);
}

static void skip_space(lexer *lx) {
    while (lx->p < lx->end) {
        char c = *lx->p;
        if (c == '\n') {
            lx->line++;
            lx->p++;
        } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
            lx->p++;
        } else if (c == '#') {
            while (lx->p < lx->end && *lx->p != '\n')
                lx->p++;
        } else {
            break;
        }
    }
}

static bool peek(lexer *lx, char c) {
    skip_space(lx);
    return lx->p < lx->end && *lx->p == c;
}

static bool accept(lexer *lx, char c) {
    if (!peek(lx, c)) return false;
    lx->p++;
    return true;
}

static bool ident_char(char c) {
    return isalnum((unsigned char)c) || c == '_';
}

/* An identifier (field name); malloc'ed or NULL. Extension names in [..] are
 * read as one token too. */
static char *read_ident(lexer *lx) {
    skip_space(lx);
    const char *s = lx->p;
    if (lx->p < lx->end && *lx->p == '[') {
        while (lx->p < lx->end && *lx->p != ']' && *lx->p != '\n')
            lx->p++;
        if (lx->p >= lx->end || *lx->p != ']') return fail(lx, "unterminated extension name"), NULL;
        lx->p++;
    } else {
        if (lx->p >= lx->end || !(isalpha((unsigned char)*lx->p) || *lx->p == '_'))
            return fail(lx, "expected a field name"), NULL;
        while (lx->p < lx->end && ident_char(*lx->p))
            lx->p++;
    }
    size_t n = (size_t)(lx->p - s);
    char *out = malloc(n + 1);
    if (!out) return fail(lx, "out of memory"), NULL;
    memcpy(out, s, n);
    out[n] = 0;
    return out;
}

/* Appends one string literal's contents to buf (grown); false on error. */
static bool read_string(lexer *lx, char **buf, size_t *len, size_t *cap) {
    char q = *lx->p++;
    while (lx->p < lx->end && *lx->p != q) {
        char c = *lx->p++;
        if (c == '\n') return fail(lx, "newline inside a string"), false;
        if (c == '\\') {
            if (lx->p >= lx->end) break;
            char e = *lx->p++;
            switch (e) {
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            case 'a':
                c = '\a';
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'v':
                c = '\v';
                break;
            case 'x': {
                int v = 0, k = 0;
                while (k < 2 && lx->p < lx->end && isxdigit((unsigned char)*lx->p)) {
                    char h = *lx->p++;
                    v = v * 16 + (isdigit((unsigned char)h) ? h - '0' : (tolower(h) - 'a' + 10));
                    k++;
                }
                if (!k) return fail(lx, "bad \\x escape"), false;
                c = (char)v;
                break;
            }
            default:
                if (e >= '0' && e <= '7') {
                    int v = e - '0', k = 1;
                    while (k < 3 && lx->p < lx->end && *lx->p >= '0' && *lx->p <= '7')
                        v = v * 8 + (*lx->p++ - '0'), k++;
                    c = (char)v;
                } else {
                    c = e; /* \" \' \\ \? */
                }
            }
        }
        if (*len + 2 > *cap) {
            size_t nc = *cap ? *cap * 2 : 32;
            char *nb = realloc(*buf, nc);
            if (!nb) return fail(lx, "out of memory"), false;
            *buf = nb, *cap = nc;
        }
        (*buf)[(*len)++] = c;
    }
    if (lx->p >= lx->end) return fail(lx, "unterminated string"), false;
    lx->p++;
    return true;
}

/* A scalar value into f->text. */
static bool read_scalar(lexer *lx, onyx_pb_field *f) {
    skip_space(lx);
    if (lx->p >= lx->end) return fail(lx, "expected a value for '%s'", f->name), false;
    char c = *lx->p;
    if (c == '"' || c == '\'') {
        char *buf = NULL;
        size_t len = 0, cap = 0;
        while (peek(lx, '"') || peek(lx, '\'')) {
            if (!read_string(lx, &buf, &len, &cap)) {
                free(buf);
                return false;
            }
        }
        if (!buf && !(buf = malloc(1))) return fail(lx, "out of memory"), false;
        buf[len] = 0;
        f->text = buf;
        f->quoted = true;
        return true;
    }
    const char *s = lx->p;
    if (c == '-' || c == '+') lx->p++;
    while (lx->p < lx->end &&
           (ident_char(*lx->p) || *lx->p == '.' ||
            ((*lx->p == '-' || *lx->p == '+') && (lx->p[-1] == 'e' || lx->p[-1] == 'E'))))
        lx->p++;
    if (lx->p == s || (lx->p == s + 1 && (c == '-' || c == '+')))
        return fail(lx, "expected a value for '%s'", f->name), false;
    size_t n = (size_t)(lx->p - s);
    f->text = malloc(n + 1);
    if (!f->text) return fail(lx, "out of memory"), false;
    memcpy(f->text, s, n);
    f->text[n] = 0;
    return true;
}

static bool parse_msg(lexer *lx, onyx_pb_msg *m, char close, int depth);

static onyx_pb_field *add_field(lexer *lx, onyx_pb_msg *m, const char *name) {
    onyx_pb_field *nf = realloc(m->fields, (size_t)(m->n + 1) * sizeof *nf);
    if (!nf) return fail(lx, "out of memory"), NULL;
    m->fields = nf;
    onyx_pb_field *f = &nf[m->n++];
    memset(f, 0, sizeof *f);
    f->line = lx->line;
    f->name = strdup(name);
    if (!f->name) return fail(lx, "out of memory"), NULL;
    return f;
}

/* One value (scalar or message) for a field named `name`. */
static bool parse_value(lexer *lx, onyx_pb_msg *m, const char *name, int depth) {
    onyx_pb_field *f = add_field(lx, m, name);
    if (!f) return false;
    if (peek(lx, '{') || peek(lx, '<')) {
        char open = *lx->p++;
        if (depth >= MAX_DEPTH) return fail(lx, "messages nested too deeply"), false;
        f->is_msg = true;
        return parse_msg(lx, &f->msg, open == '{' ? '}' : '>', depth + 1);
    }
    return read_scalar(lx, f);
}

static bool parse_msg(lexer *lx, onyx_pb_msg *m, char close, int depth) {
    for (;;) {
        skip_space(lx);
        if (lx->p >= lx->end) {
            if (close) return fail(lx, "missing '%c'", close), false;
            return true;
        }
        if (close && *lx->p == close) {
            lx->p++;
            return true;
        }
        char *name = read_ident(lx);
        if (!name) return false;
        bool colon = accept(lx, ':');
        bool ok = true;
        if (accept(lx, '[')) {
            if (!accept(lx, ']')) {
                do {
                    ok = parse_value(lx, m, name, depth);
                } while (ok && accept(lx, ','));
                if (ok && !accept(lx, ']')) {
                    fail(lx, "expected ']' in the list of '%s'", name);
                    ok = false;
                }
            }
        } else if (!colon && !peek(lx, '{') && !peek(lx, '<')) {
            fail(lx, "expected ':' or '{' after '%s'", name);
            ok = false;
        } else {
            ok = parse_value(lx, m, name, depth);
        }
        free(name);
        if (!ok) return false;
        if (!accept(lx, ';')) accept(lx, ',');
    }
}

int onyx_pb_parse(const char *text, size_t len, onyx_pb_msg *out, char *err, size_t cap) {
    memset(out, 0, sizeof *out);
    lexer lx = {text, text + len, 1, err, cap, false};
    if (cap) err[0] = 0;
    if (!parse_msg(&lx, out, 0, 0) || lx.failed) return -1;
    return 0;
}

void onyx_pb_free(onyx_pb_msg *m) {
    for (int i = 0; i < m->n; i++) {
        free(m->fields[i].name);
        free(m->fields[i].text);
        onyx_pb_free(&m->fields[i].msg);
    }
    free(m->fields);
    m->fields = NULL;
    m->n = 0;
}

const onyx_pb_field *onyx_pb_next(const onyx_pb_msg *m, const char *name, int *it) {
    for (int i = *it; i < m->n; i++) {
        if (strcmp(m->fields[i].name, name) == 0) {
            *it = i + 1;
            return &m->fields[i];
        }
    }
    *it = m->n;
    return NULL;
}

int onyx_pb_int(const onyx_pb_field *f, int64_t *out) {
    if (f->is_msg || !f->text || !*f->text) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(f->text, &end, 0);
    if (*end || errno) return -1;
    *out = v;
    return 0;
}

int onyx_pb_bool(const onyx_pb_field *f, bool *out) {
    if (f->is_msg || !f->text) return -1;
    if (!strcmp(f->text, "true") || !strcmp(f->text, "True") || !strcmp(f->text, "t") ||
        !strcmp(f->text, "1"))
        return *out = true, 0;
    if (!strcmp(f->text, "false") || !strcmp(f->text, "False") || !strcmp(f->text, "f") ||
        !strcmp(f->text, "0"))
        return *out = false, 0;
    return -1;
}
