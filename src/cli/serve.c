/* serve.c - `onyx serve [MODEL.onnx... | --model-repository DIR]`: parses
 * the command line into onyx_server_options and runs the model server
 * (src/server/). Exit status 0 after a graceful shutdown.
 *
 * Owns: option names, defaults shown in --help. Does not own: serving.
 */
#include "cli/cli.h"
#include "server/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char serve_usage[] =
    "usage: onyx serve [MODEL.onnx...] [--model-repository DIR] [options]\n"
    "\n"
    "Serves ONNX models over HTTP: KServe v2 / Open Inference Protocol (/v2, with\n"
    "Triton's binary tensor extension), TF Serving REST (/v1), Prometheus /metrics.\n"
    "MODEL files are served as <file name without .onnx>, version 1. A repository\n"
    "uses Triton's layout: DIR/<model>/<version>/model.onnx [+ DIR/<model>/config.pbtxt].\n"
    "SIGHUP reloads changed models; SIGTERM/SIGINT finish in-flight requests and exit.\n"
    "\n"
    "  --host H                  address to listen on (default 0.0.0.0)\n"
    "  --port P                  TCP port (default 8000; 0 picks a free one)\n"
    "  --threads N               inference workers (default: cores available)\n"
    "  --intra-op-threads N      threads per model run (default 1: the workers\n"
    "                            already use the cores across requests)\n"
    "  --model-repository DIR    Triton-style model repository\n"
    "  --poll-interval S         also rescan the models every S seconds (default 0: off)\n"
    "  --max-batch-size N        dynamic batching of MODEL files up to N (default off)\n"
    "  --batch-delay-us U        how long a batch waits to fill (default 1000)\n"
    "  --max-body-mb N           largest request body (default 64)\n"
    "  --max-inflight-mb N       request bodies held at once, summed, before 503\n"
    "                            (default 1024; 0: no limit)\n"
    "  --max-tensor-elements N   largest input tensor (default 134217728)\n"
    "  --max-queue N             requests waiting for a worker before 503 (default 1024)\n"
    "  --max-connections N       open connections before 503 (default 1024)\n"
    "  --request-timeout-ms N    queue wait + run limit, 503 after (default 60000; 0: none)\n"
    "  --idle-timeout S          keep-alive idle limit (default 65)\n"
    "  --shutdown-timeout S      longest drain on SIGTERM (default 30)\n"
    "  --drain-delay S           on SIGTERM, report not ready but keep serving for S\n"
    "                            seconds before draining (default 0; 5 behind a\n"
    "                            Kubernetes Service, so endpoints update first)\n"
    "  --log-level L             error, warn, info (default) or debug\n"
    "  --log-format F            json (default) or text\n"
    "  --no-access-log           no line per request\n";

static int int_opt(const char *name, const char *v, int lo, int hi, int *out) {
    int x;
    if (!onyx_cli_parse_int(v, &x) || x < lo || x > hi) {
        onyx_cli_error("%s must be an integer in [%d, %d], got '%s'", name, lo, hi, v);
        return -1;
    }
    *out = x;
    return 0;
}

int onyx_cli_serve(int argc, char **argv) {
    onyx_server_options o;
    onyx_server_options_init(&o);
    const char **files = calloc((size_t)argc + 1, sizeof *files);
    if (!files) {
        onyx_cli_error("out of memory");
        return ONYX_CLI_FAIL;
    }
    int n_files = 0, status = ONYX_CLI_USAGE, body_mb = 64, inflight_mb = 1024;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        int x, r;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(serve_usage, stdout);
            status = ONYX_CLI_OK;
            goto out;
        }
#define OPT(long_name) ((r = onyx_cli_option(argc, argv, &i, NULL, long_name, &v)) != 0)
#define INT(long_name, lo, hi, dst)                                                                \
    if (OPT(long_name)) {                                                                          \
        if (r < 0 || int_opt(long_name, v, lo, hi, &x)) goto out;                                  \
        dst = x;                                                                                   \
        continue;                                                                                  \
    }
        if (OPT("--host")) {
            if (r < 0) goto out;
            o.host = v;
            continue;
        }
        if (OPT("--model-repository")) {
            if (r < 0) goto out;
            o.repository = v;
            continue;
        }
        INT("--port", 0, 65535, o.port)
        INT("--threads", 1, 1024, o.workers)
        INT("--intra-op-threads", 0, 1024, o.intra_op_threads)
        INT("--poll-interval", 0, 86400, o.poll_interval_s)
        INT("--max-batch-size", 0, 1 << 20, o.max_batch_size)
        INT("--batch-delay-us", 0, 60000000, o.batch_delay_us)
        INT("--max-body-mb", 1, 1 << 20, body_mb)
        INT("--max-inflight-mb", 0, 1 << 24, inflight_mb)
        INT("--max-tensor-elements", 1, 2147483647, o.max_tensor_elements)
        INT("--max-queue", 1, 1 << 24, o.max_queue)
        INT("--max-connections", 1, 1 << 20, o.max_connections)
        INT("--request-timeout-ms", 0, 86400000, o.request_timeout_ms)
        INT("--idle-timeout", 1, 86400, o.idle_timeout_s)
        INT("--shutdown-timeout", 0, 86400, o.shutdown_timeout_s)
        INT("--drain-delay", 0, 3600, o.drain_delay_s)
        if (OPT("--log-level")) {
            if (r < 0) goto out;
            if (!strcmp(v, "error"))
                o.log_level = ONYX_LOG_ERROR;
            else if (!strcmp(v, "warn"))
                o.log_level = ONYX_LOG_WARN;
            else if (!strcmp(v, "info"))
                o.log_level = ONYX_LOG_INFO;
            else if (!strcmp(v, "debug"))
                o.log_level = ONYX_LOG_DEBUG;
            else {
                onyx_cli_error("--log-level must be error, warn, info or debug");
                goto out;
            }
            continue;
        }
        if (OPT("--log-format")) {
            if (r < 0) goto out;
            if (!strcmp(v, "json"))
                o.log_json = true;
            else if (!strcmp(v, "text"))
                o.log_json = false;
            else {
                onyx_cli_error("--log-format must be json or text");
                goto out;
            }
            continue;
        }
        if (!strcmp(argv[i], "--no-access-log")) {
            o.access_log = false;
            continue;
        }
#undef INT
#undef OPT
        if (argv[i][0] == '-' && argv[i][1]) {
            onyx_cli_error("unknown option '%s' (see onyx serve --help)", argv[i]);
            goto out;
        }
        files[n_files++] = argv[i];
    }
    if (n_files == 0 && !o.repository) {
        onyx_cli_error("give MODEL files or --model-repository DIR (see onyx serve --help)");
        goto out;
    }
    o.max_body_bytes = (size_t)body_mb << 20;
    o.max_inflight_bytes = (size_t)inflight_mb << 20;
    o.model_files = files;
    o.n_model_files = n_files;
    status = onyx_server_run(&o) == 0 ? ONYX_CLI_OK : ONYX_CLI_FAIL;
out:
    free(files);
    return status;
}
