/* cli.h - what the `onyx` subcommands share: their entry points, exit codes,
 * option parsing, error reporting and type formatting. Owns nothing that the
 * library needs; only src/cli may call exit() (and only main.c does).
 */
#ifndef ONYX_CLI_H
#define ONYX_CLI_H

#include "onyx.h"

#include <stdbool.h>
#include <stddef.h>

/* Exit statuses of every subcommand. */
enum {
    ONYX_CLI_OK = 0,    /* success */
    ONYX_CLI_FAIL = 1,  /* the work failed: bad model, bad input file, I/O */
    ONYX_CLI_USAGE = 2, /* bad command line, or a subcommand not implemented */
};

/* Subcommands: argv[0] is the subcommand name. They return an exit status. */
int onyx_cli_info(int argc, char **argv);
int onyx_cli_run(int argc, char **argv);
int onyx_cli_predict(int argc, char **argv);
int onyx_cli_bench(int argc, char **argv);
int onyx_cli_serve(int argc, char **argv);

/* Prints "onyx: error: <message>" as one line on stderr (newlines in the
 * message, which may come from the library, are folded into "; "). */
void onyx_cli_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* onyx_cli_error, then `usage` on stderr; returns ONYX_CLI_USAGE (for
 * argument parsers: `return onyx_cli_usage_error(usage, "...", ...);`). */
int onyx_cli_usage_error(const char *usage, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Matches argv[*i] against an option spelled `short_name` ("-o", may be NULL)
 * or `long_name` ("--output"). Options taking a value (`value` non-NULL)
 * accept "-o V", "--output V" and "--output=V"; flags (`value` NULL) accept
 * only the bare spelling. Returns 1 on a match (advancing *i past a separate
 * value), 0 if argv[*i] is something else, -1 after reporting a missing
 * value. */
int onyx_cli_option(int argc, char **argv, int *i, const char *short_name, const char *long_name,
                    const char **value);

/* Parses a non-negative decimal int; false if `s` is not one. */
bool onyx_cli_parse_int(const char *s, int *out);

/* Formats a graph input/output type the way `onyx info` prints it:
 * "float[N,3,224,224]" (symbolic dims by name, "?" for unknown ones, "float[]"
 * for a scalar, "float[...]" when the rank is unknown), "sequence(float)",
 * "map(string,float)", "optional(float)". */
void onyx_cli_format_type(const onyx_io_info *io, char *buf, size_t cap);

/* Short name of a value kind for messages and JSON: "tensor", "sequence",
 * "map", "optional". */
const char *onyx_cli_kind_name(onyx_kind kind);

#endif /* ONYX_CLI_H */
