/* error.h - filling an onyx_error, status names, and ONYX_ASSERT for
 * internal invariants (never for conditions caused by input). */
#ifndef ONYX_ERROR_H
#define ONYX_ERROR_H

#include "onyx.h"

#if defined(__GNUC__)
#define ONYX_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define ONYX_PRINTF(a, b)
#endif

/* Formats the message into `e` (which may be NULL) and returns `status`, so
 * call sites read `return onyx_errorf(err, ONYX_ERR_IO, "...", ...);`. */
onyx_status onyx_errorf(onyx_error *e, onyx_status status, const char *fmt, ...) ONYX_PRINTF(3, 4);
/* Prepends "prefix: " to the message already in `e`; returns e->status. */
onyx_status onyx_error_prefix(onyx_error *e, const char *fmt, ...) ONYX_PRINTF(2, 3);

void onyx_assert_fail(const char *expr, const char *file, int line);
#define ONYX_ASSERT(x) ((x) ? (void)0 : onyx_assert_fail(#x, __FILE__, __LINE__))

#endif
