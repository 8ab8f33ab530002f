/* main.c - the `onyx` executable: global options (--help, --version) and
 * dispatch to subcommands. The only translation unit that calls exit().
 */
#include "base/selfexe.h"
#include "cli/bundle.h"
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ONYX_COMMIT
#define ONYX_COMMIT "unknown"
#endif
/* Build description for --version; the Makefile passes the flags. */
#ifndef ONYX_BUILD_FLAGS
#define ONYX_BUILD_FLAGS "flags unknown"
#endif
#if defined(__clang__)
#define ONYX_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define ONYX_COMPILER "gcc " __VERSION__
#else
#define ONYX_COMPILER "unknown compiler"
#endif

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv); /* NULL: not implemented yet */
    const char *usage;
} command;

static const command commands[] = {
    {"info", onyx_cli_info, "info    MODEL [--json]"},
    {"run", onyx_cli_run,
     "run     MODEL [-i [NAME=]PATH]... [-o DIR] [--format npy|pb] [--threads N]"},
    {"predict", onyx_cli_predict,
     "predict MODEL IMAGE... [--top K] [--labels FILE] [--preprocess PRESET] ..."},
    {"serve", onyx_cli_serve,
     "serve   [MODEL... | --model-repository DIR] [--host H] [--port P] [--threads N] ..."},
    {"bench", onyx_cli_bench,
     "bench   MODEL [--threads N] [--batch B] [--iterations K] [--shape NAME=DIMS] [--json]"},
    {"bundle", onyx_cli_bundle, "bundle  MODEL... [--config FILE] -o APP | --list APP"},
};

static void usage(FILE *f) {
    fputs("usage: onyx COMMAND [ARGS]\n\ncommands:\n", f);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  onyx %s%s\n", commands[i].usage,
                commands[i].fn ? "" : "   (not implemented yet)");
    fputs("\nonyx --version     version, commit and CPU features\n"
          "onyx COMMAND --help for the options of a command\n",
          f);
}

int main(int argc, char **argv) {
    /* An executable written by `onyx bundle` carries models: supply the
     * MODEL argument of subcommands from it (cli/bundle.c). No-op otherwise. */
    int bundle_status = onyx_cli_bundle_argv(&argc, &argv);
    if (bundle_status != ONYX_CLI_OK) return bundle_status;
    if (argc < 2) {
        usage(stderr);
        return ONYX_CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return ONYX_CLI_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        char libs[512];
        int static_libs = onyx_selfexe_shared_objects(libs, sizeof libs);
        printf("onyx %s (commit %s)\nbuild: %s, %s, third-party libraries %s; shared: %s\n"
               "cpu: %s\n",
               ONYX_VERSION, ONYX_COMMIT, ONYX_COMPILER, ONYX_BUILD_FLAGS,
               static_libs ? "static" : "dynamic", libs[0] ? libs : "none", onyx_cpu_features());
        return ONYX_CLI_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(cmd, commands[i].name) != 0) continue;
        if (!commands[i].fn) {
            fprintf(stderr, "onyx: '%s' is not implemented yet\n", cmd);
            return ONYX_CLI_USAGE;
        }
        int status = commands[i].fn(argc - 1, argv + 1);
        if (fflush(stdout) != 0 && status == ONYX_CLI_OK) {
            onyx_cli_error("cannot write to standard output");
            status = ONYX_CLI_FAIL;
        }
        exit(status);
    }
    onyx_cli_error("unknown command '%s' (see onyx --help)", cmd);
    return ONYX_CLI_USAGE;
}
