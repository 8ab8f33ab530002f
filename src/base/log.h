/* log.h - the library's log sink (installed with onyx_set_log). */
#ifndef ONYX_LOG_H
#define ONYX_LOG_H

#include "base/error.h"

void onyx_log(onyx_log_level level, const char *fmt, ...) ONYX_PRINTF(2, 3);

#endif
