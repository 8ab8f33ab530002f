/* pbtxt.h - a reader for protobuf text format (what Triton's config.pbtxt is
 * written in) into a generic tree of fields, without a schema.
 *
 * Owns: tokens, strings and nesting. Does not own: what the fields mean
 * (repo.c reads the model configuration out of the tree).
 */
#ifndef ONYX_SERVER_PBTXT_H
#define ONYX_SERVER_PBTXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct onyx_pb_field onyx_pb_field;

/* A message: its fields in file order; a list value `f: [a, b]` becomes
 * repeated fields f: a, f: b. */
typedef struct onyx_pb_msg {
    int n;
    onyx_pb_field *fields; /* (n) */
} onyx_pb_msg;

struct onyx_pb_field {
    char *name;
    bool is_msg;
    char *text;      /* scalar: string contents (unescaped) or the bare token */
    bool quoted;     /* the scalar was a string literal */
    onyx_pb_msg msg; /* is_msg: the nested message */
    int line;        /* 1-based, for messages */
};

/* Parses `len` bytes of text. Returns 0 on success; otherwise -1 with
 * "line N: what" in err. *out is freed with onyx_pb_free either way. */
int onyx_pb_parse(const char *text, size_t len, onyx_pb_msg *out, char *err, size_t cap);
void onyx_pb_free(onyx_pb_msg *m);

/* The next field named `name` at index >= *it (start with *it = 0); advances
 * *it past it. NULL when there is none. */
const onyx_pb_field *onyx_pb_next(const onyx_pb_msg *m, const char *name, int *it);
/* Scalar readers: 0 on success, -1 when the field is not that kind of value. */
int onyx_pb_int(const onyx_pb_field *f, int64_t *out);
int onyx_pb_bool(const onyx_pb_field *f, bool *out);

#endif
