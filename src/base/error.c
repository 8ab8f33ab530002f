/* error.c - error detail formatting; see error.h. */
#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const status_names[] = {
    "ok",          "invalid argument", "invalid model", "unsupported",
    "out of memory", "i/o error",      "runtime error", "cancelled",
};
_Static_assert(sizeof status_names / sizeof status_names[0] == ONYX_STATUS_COUNT,
               "status_names must cover onyx_status");

const char *onyx_status_name(onyx_status s) {
    return (unsigned)s < ONYX_STATUS_COUNT ? status_names[s] : "unknown status";
}

onyx_status onyx_errorf(onyx_error *e, onyx_status status, const char *fmt, ...) {
    if (!e) return status;
    e->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return status;
}

onyx_status onyx_error_prefix(onyx_error *e, const char *fmt, ...) {
    if (!e) return ONYX_ERR_RUNTIME;
    char prefix[256], old[sizeof e->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, e->message, sizeof old);
    size_t lp = strlen(prefix), lo = strnlen(old, sizeof old - 1);
    if (lp > sizeof e->message - 3) lp = sizeof e->message - 3;
    if (lo > sizeof e->message - 3 - lp) lo = sizeof e->message - 3 - lp;
    memcpy(e->message, prefix, lp);
    memcpy(e->message + lp, ": ", 2);
    memcpy(e->message + lp + 2, old, lo);
    e->message[lp + 2 + lo] = 0;
    return e->status;
}

void onyx_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "onyx: internal error: assertion `%s` failed at %s:%d\n", expr, file, line);
    abort();
}
