/* info.c - `onyx info MODEL [--json]`: describes a model (producer, IR
 * version, opsets, graph name, inputs/outputs with types and shapes, node
 * count, metadata) as text or as one JSON object. Read-only; runs nothing.
 */
#include "cli/bundle.h"
#include "cli/cli.h"
#include "cli/json.h"

#include <stdio.h>
#include <string.h>

static const char info_usage[] = "usage: onyx info MODEL [--json]\n";

static const char *domain_label(const char *d) {
    return *d ? d : "ai.onnx";
}

// ----------------------------------------------------------------------------
// Text

static void print_ios(const onyx_model *m, bool outputs) {
    int n = outputs ? onyx_model_num_outputs(m) : onyx_model_num_inputs(m);
    printf("%s (%d):\n", outputs ? "outputs" : "inputs", n);
    for (int i = 0; i < n; i++) {
        onyx_io_info io;
        if ((outputs ? onyx_model_output(m, i, &io) : onyx_model_input(m, i, &io)) != ONYX_OK)
            continue;
        char type[512];
        onyx_cli_format_type(&io, type, sizeof type);
        printf("  %-24s %s\n", io.name, type);
    }
}

static void print_text(const char *path, const onyx_model *m) {
    const char *producer = onyx_model_producer(m);
    const char *graph = onyx_model_graph_name(m);
    printf("model:      %s\n", path);
    const char *version = onyx_model_producer_version(m);
    printf("producer:   %s%s%s\n", producer && *producer ? producer : "(none)", version ? " " : "",
           version ? version : "");
    printf("ir_version: %lld\n", (long long)onyx_model_ir_version(m));
    printf("opsets:     ");
    bool first = true;
    for (int i = 0; i < onyx_model_num_opsets(m); i++) {
        const char *d;
        int64_t v;
        onyx_model_opset_at(m, i, &d, &v);
        printf("%s%s %lld", first ? "" : ", ", domain_label(d), (long long)v);
        first = false;
    }
    printf("%s\n", first ? "(none)" : "");
    printf("graph:      %s\n", graph && *graph ? graph : "(unnamed)");
    printf("nodes:      %d\n", onyx_model_num_nodes(m));
    print_ios(m, false);
    print_ios(m, true);
    int nmeta = onyx_model_num_metadata(m);
    if (nmeta > 0) {
        printf("metadata (%d):\n", nmeta);
        for (int i = 0; i < nmeta; i++) {
            const char *k = NULL, *v = NULL;
            onyx_model_metadata(m, i, &k, &v);
            printf("  %s = %s\n", k ? k : "", v ? v : "");
        }
    }
}

// ----------------------------------------------------------------------------
// JSON

static void json_io(onyx_json *j, const onyx_io_info *io) {
    onyx_json_begin_object(j);
    onyx_json_key(j, "name");
    onyx_json_string(j, io->name);
    onyx_json_key(j, "kind");
    onyx_json_string(j, onyx_cli_kind_name(io->kind));
    onyx_json_key(j, "dtype");
    if (io->dtype == ONYX_DTYPE_UNDEFINED)
        onyx_json_null(j);
    else
        onyx_json_string(j, onyx_dtype_name(io->dtype));
    if (io->kind == ONYX_KIND_MAP) {
        onyx_json_key(j, "key_dtype");
        if (io->key_dtype == ONYX_DTYPE_UNDEFINED)
            onyx_json_null(j);
        else
            onyx_json_string(j, onyx_dtype_name(io->key_dtype));
    }
    onyx_json_key(j, "shape");
    if (io->kind != ONYX_KIND_TENSOR || io->ndim < 0) {
        onyx_json_null(j);
    } else {
        onyx_json_begin_array_compact(j);
        for (int d = 0; d < io->ndim && d < ONYX_MAX_DIMS; d++) {
            if (io->dim_names[d])
                onyx_json_string(j, io->dim_names[d]);
            else if (io->dims[d] >= 0)
                onyx_json_int(j, io->dims[d]);
            else
                onyx_json_null(j);
        }
        onyx_json_end_array(j);
    }
    onyx_json_end_object(j);
}

static void json_ios(onyx_json *j, const onyx_model *m, bool outputs) {
    int n = outputs ? onyx_model_num_outputs(m) : onyx_model_num_inputs(m);
    onyx_json_key(j, outputs ? "outputs" : "inputs");
    onyx_json_begin_array(j);
    for (int i = 0; i < n; i++) {
        onyx_io_info io;
        if ((outputs ? onyx_model_output(m, i, &io) : onyx_model_input(m, i, &io)) == ONYX_OK)
            json_io(j, &io);
    }
    onyx_json_end_array(j);
}

static void print_json(const char *path, const onyx_model *m) {
    onyx_json j;
    onyx_json_init(&j, stdout, true);
    onyx_json_begin_object(&j);
    onyx_json_key(&j, "path");
    onyx_json_string(&j, path);
    onyx_json_key(&j, "producer");
    onyx_json_string(&j, onyx_model_producer(m));
    onyx_json_key(&j, "producer_version");
    onyx_json_string(&j, onyx_model_producer_version(m));
    onyx_json_key(&j, "ir_version");
    onyx_json_int(&j, onyx_model_ir_version(m));
    onyx_json_key(&j, "opsets");
    onyx_json_begin_object(&j);
    for (int i = 0; i < onyx_model_num_opsets(m); i++) {
        const char *d;
        int64_t v;
        onyx_model_opset_at(m, i, &d, &v);
        onyx_json_key(&j, domain_label(d));
        onyx_json_int(&j, v);
    }
    onyx_json_end_object(&j);
    onyx_json_key(&j, "graph_name");
    onyx_json_string(&j, onyx_model_graph_name(m));
    onyx_json_key(&j, "node_count");
    onyx_json_int(&j, onyx_model_num_nodes(m));
    json_ios(&j, m, false);
    json_ios(&j, m, true);
    onyx_json_key(&j, "metadata");
    onyx_json_begin_object(&j);
    int nmeta = onyx_model_num_metadata(m);
    for (int i = 0; i < nmeta; i++) {
        const char *k = NULL, *v = NULL;
        onyx_model_metadata(m, i, &k, &v);
        onyx_json_key(&j, k ? k : "");
        onyx_json_string(&j, v ? v : "");
    }
    onyx_json_end_object(&j);
    onyx_json_end_object(&j);
    onyx_json_finish(&j);
}

int onyx_cli_info(int argc, char **argv) {
    const char *path = NULL;
    bool json = false, options_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!options_done && a[0] == '-' && a[1]) {
            if (strcmp(a, "--") == 0) {
                options_done = true;
            } else if (onyx_cli_option(argc, argv, &i, NULL, "--json", NULL) == 1) {
                json = true;
            } else if (onyx_cli_option(argc, argv, &i, "-h", "--help", NULL) == 1) {
                fputs(info_usage, stdout);
                return ONYX_CLI_OK;
            } else {
                return onyx_cli_usage_error(info_usage, "info: unknown option '%s'", a);
            }
        } else if (!path) {
            path = a;
        } else {
            onyx_cli_error("info: more than one MODEL given ('%s' and '%s')", path, a);
            return ONYX_CLI_USAGE;
        }
    }
    if (!path) {
        return onyx_cli_usage_error(info_usage, "info: no MODEL given");
    }

    onyx_model *m = onyx_cli_open_model(path, 1); /* nothing runs: no pool of workers */
    if (!m) return ONYX_CLI_FAIL;
    if (json)
        print_json(path, m);
    else
        print_text(path, m);
    onyx_model_free(m);
    return ONYX_CLI_OK;
}
