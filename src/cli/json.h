/* json.h - a small streaming JSON writer for the command-line tool (info
 * --json, sequence/map outputs of run). Owns string escaping and number
 * formatting; does not parse JSON (the server uses jansson for that).
 */
#ifndef ONYX_CLI_JSON_H
#define ONYX_CLI_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define ONYX_JSON_MAX_DEPTH 64

/* Writer state. Values are written in document order; the writer inserts
 * commas, ':' and (when `pretty`) newlines and two-space indentation. Write
 * errors are sticky in the FILE (check ferror) rather than returned here. */
typedef struct onyx_json {
    FILE *f;
    bool pretty;
    int depth;
    bool after_key;
    int compact_at;                      /* depth from which containers stay on one line, or 0 */
    bool has_items[ONYX_JSON_MAX_DEPTH]; /* per open container: a value was written */
} onyx_json;

void onyx_json_init(onyx_json *j, FILE *f, bool pretty);
void onyx_json_begin_object(onyx_json *j);
void onyx_json_end_object(onyx_json *j);
void onyx_json_begin_array(onyx_json *j);
/* An array written on one line even in pretty mode (long numeric data). */
void onyx_json_begin_array_compact(onyx_json *j);
void onyx_json_end_array(onyx_json *j);
/* An object key; the next call writes its value. */
void onyx_json_key(onyx_json *j, const char *key);
/* A string value, escaped: '"', '\\' and control characters are escaped,
 * and bytes that are not valid UTF-8 become U+FFFD so the output is always
 * valid JSON. NULL writes null. */
void onyx_json_string(onyx_json *j, const char *s);
void onyx_json_int(onyx_json *j, int64_t v);
void onyx_json_uint(onyx_json *j, uint64_t v);
/* Numbers in the shortest form that reads back to the same float / double.
 * NaN and infinities, which JSON cannot express, are written as NaN,
 * Infinity and -Infinity (what Python's json module reads and writes). */
void onyx_json_float(onyx_json *j, float v);
void onyx_json_double(onyx_json *j, double v);
void onyx_json_bool(onyx_json *j, bool v);
void onyx_json_null(onyx_json *j);
/* Ends the document with a newline. */
void onyx_json_finish(onyx_json *j);

#endif /* ONYX_CLI_JSON_H */
