/* bundle.h - `onyx bundle` (one executable with models inside) and what the
 * other subcommands need to run from such an executable: model specs of the
 * form "bundle:NAME", loading them zero-copy, their settings and files.
 * Owns the command line side; the payload format is src/base/selfexe.h's.
 */
#ifndef ONYX_CLI_BUNDLE_H
#define ONYX_CLI_BUNDLE_H

#include "onyx.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ONYX_BUNDLE_PREFIX "bundle:"

/* `onyx bundle MODEL... [--config FILE] -o APP` and `onyx bundle --list APP`. */
int onyx_cli_bundle(int argc, char **argv);

/* The hook of main(): when the running executable carries bundled models,
 * rewrites argc and argv so that subcommands get their MODEL argument from it:
 * info/run/predict/bench get "bundle:<first model>" after the subcommand
 * name unless the next argument already names a model (a "bundle:" spec or
 * a path ending in ".onnx"); predict also gets the model's settings as
 * options placed before the user's (which therefore win); serve gets every
 * bundled model unless given models or --model-repository. The new argv is
 * malloc'ed and lives until exit. Returns ONYX_CLI_OK (argv unchanged when
 * there is no bundle), or an exit status after reporting a damaged bundle. */
int onyx_cli_bundle_argv(int *argc, char ***argv);

/* Whether `spec` is a "bundle:NAME" spec. */
bool onyx_cli_is_bundle_spec(const char *spec);

/* Loads a model from a path, or from the running executable for a
 * "bundle:NAME" spec: the bytes are mmap'ed from the executable file itself
 * (no copy, no temporary file) and stay mapped for the life of the process,
 * like the executable's own code. Same contract as onyx_model_load_file
 * otherwise: *out freed with onyx_model_free, err names the spec. */
onyx_status onyx_cli_load_model(const char *spec, const onyx_options *opts, onyx_model **out,
                                onyx_error *err);

/* onyx_cli_load_model for a subcommand, with default options but `threads`
 * intra-op threads; a failure is reported with onyx_cli_error (the message
 * names the spec) and gives NULL. */
onyx_model *onyx_cli_open_model(const char *spec, int threads);

/* Reads a whole file, or a file stored in the bundle for a "bundle:NAME"
 * spec (the "labels" setting of a bundled model is such a spec). The data
 * is NUL-terminated (*size excludes the NUL); the caller frees *out. */
onyx_status onyx_cli_read_file(const char *spec, uint8_t **out, size_t *size, onyx_error *err);

/* The settings of bundled model `spec` ("bundle:NAME") as parallel arrays of
 * malloc'ed strings, the keys and values that a config.pbtxt `parameters`
 * block gives (labels, preprocessing, image_size, ...); a "labels" value is
 * a spec for onyx_cli_read_file. The caller frees each string and both
 * arrays (free()). *n is 0 and the arrays NULL when there are none. */
onyx_status onyx_cli_bundle_settings(const char *spec, int *n, char ***keys, char ***values,
                                     onyx_error *err);

#endif /* ONYX_CLI_BUNDLE_H */
