/* log.c - process-wide log sink. The sink is the one piece of process state
 * in the library: it is set once at startup, before any model is loaded. */
#include "base/log.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const level_names[] = {"error", "warn", "info", "debug"};
_Static_assert(sizeof level_names / sizeof level_names[0] == ONYX_LOG_LEVEL_COUNT, "levels");

static void log_stderr(void *user, onyx_log_level level, const char *message) {
    (void)user;
    fprintf(stderr, "onyx: %s: %s\n", level_names[level], message);
}

static onyx_log_fn log_fn = log_stderr;
static void *log_user;
static onyx_log_level log_max = ONYX_LOG_WARN;

void onyx_set_log(onyx_log_fn fn, void *user, onyx_log_level max_level) {
    log_fn = fn ? fn : log_stderr;
    log_user = user;
    log_max = max_level;
}

void onyx_log(onyx_log_level level, const char *fmt, ...) {
    if (level > log_max) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_fn(log_user, level, msg);
}
