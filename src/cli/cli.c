/* cli.c - helpers shared by the subcommands: one-line error reporting,
 * option matching, integer parsing and type formatting (see cli.h).
 */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void verror(const char *fmt, va_list ap) {
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* Fold the message onto one line: scripts read the last stderr line. */
    fputs("onyx: error: ", stderr);
    for (const char *p = msg; *p; p++) {
        if (*p == '\n') {
            if (p[1]) fputs("; ", stderr);
        } else if (*p != '\r') {
            fputc(*p, stderr);
        }
    }
    fputc('\n', stderr);
}

void onyx_cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    verror(fmt, ap);
    va_end(ap);
}

int onyx_cli_usage_error(const char *usage, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    verror(fmt, ap);
    va_end(ap);
    fputs(usage, stderr);
    return ONYX_CLI_USAGE;
}

int onyx_cli_option(int argc, char **argv, int *i, const char *short_name, const char *long_name,
                    const char **value) {
    const char *a = argv[*i];
    bool is_short = short_name && strcmp(a, short_name) == 0;
    bool is_long = long_name && strcmp(a, long_name) == 0;
    if (!value) return is_short || is_long;
    if (!is_short && !is_long) {
        size_t n = long_name ? strlen(long_name) : 0;
        if (n && strncmp(a, long_name, n) == 0 && a[n] == '=') {
            *value = a + n + 1;
            return 1;
        }
        return 0;
    }
    if (*i + 1 >= argc) {
        onyx_cli_error("option %s needs a value", a);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

bool onyx_cli_parse_int(const char *s, int *out) {
    long v = 0;
    if (!*s) return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        v = v * 10 + (*s - '0');
        if (v > 1000000000L) return false;
    }
    *out = (int)v;
    return true;
}

const char *onyx_cli_kind_name(onyx_kind kind) {
    switch (kind) {
    case ONYX_KIND_TENSOR:
        return "tensor";
    case ONYX_KIND_SEQUENCE:
        return "sequence";
    case ONYX_KIND_MAP:
        return "map";
    case ONYX_KIND_NONE:
        return "optional";
    default:
        return "unknown";
    }
}

/* Appends with truncation; `*len` tracks the would-be length. */
static void cat(char *buf, size_t cap, size_t *len, const char *s) {
    size_t n = strlen(s);
    if (*len < cap) {
        size_t room = cap - *len - 1;
        memcpy(buf + *len, s, n < room ? n : room);
        buf[*len + (n < room ? n : room)] = 0;
    }
    *len += n;
}

static const char *dtype_or_any(onyx_dtype t) {
    return t == ONYX_DTYPE_UNDEFINED ? "?" : onyx_dtype_name(t);
}

void onyx_cli_format_type(const onyx_io_info *io, char *buf, size_t cap) {
    size_t len = 0;
    if (cap == 0) return;
    buf[0] = 0;
    switch (io->kind) {
    case ONYX_KIND_TENSOR:
        cat(buf, cap, &len, dtype_or_any(io->dtype));
        if (io->ndim < 0) {
            cat(buf, cap, &len, "[...]");
            break;
        }
        cat(buf, cap, &len, "[");
        for (int i = 0; i < io->ndim && i < ONYX_MAX_DIMS; i++) {
            char d[32];
            if (io->dim_names[i])
                cat(buf, cap, &len, io->dim_names[i]);
            else if (io->dims[i] >= 0) {
                snprintf(d, sizeof d, "%lld", (long long)io->dims[i]);
                cat(buf, cap, &len, d);
            } else
                cat(buf, cap, &len, "?");
            if (i + 1 < io->ndim) cat(buf, cap, &len, ",");
        }
        cat(buf, cap, &len, "]");
        break;
    case ONYX_KIND_SEQUENCE:
        cat(buf, cap, &len, "sequence(");
        if (io->elem_kind == ONYX_KIND_MAP) {
            cat(buf, cap, &len, "map(");
            cat(buf, cap, &len, dtype_or_any(io->key_dtype));
            cat(buf, cap, &len, ",");
            cat(buf, cap, &len, dtype_or_any(io->dtype));
            cat(buf, cap, &len, ")");
        } else {
            cat(buf, cap, &len, dtype_or_any(io->dtype));
        }
        cat(buf, cap, &len, ")");
        break;
    case ONYX_KIND_MAP:
        cat(buf, cap, &len, "map(");
        cat(buf, cap, &len, dtype_or_any(io->key_dtype));
        cat(buf, cap, &len, ",");
        cat(buf, cap, &len, dtype_or_any(io->dtype));
        cat(buf, cap, &len, ")");
        break;
    default:
        cat(buf, cap, &len, "optional(");
        cat(buf, cap, &len, dtype_or_any(io->dtype));
        cat(buf, cap, &len, ")");
        break;
    }
}
