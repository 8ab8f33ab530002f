/* server.h - what the server's parts share: the options of `onyx serve`, the
 * structured logger, the model repository (loaded model versions with
 * reference counts, hot reload), the inference scheduler (worker pool with
 * dynamic batching) and the metrics registry.
 *
 * Owns: the interfaces between the src/server files. Does not own: HTTP framing
 * (http.h) or the library (include/onyx.h).
 */
#ifndef ONYX_SERVER_H
#define ONYX_SERVER_H

#include "onyx.h"
#include "server/codec.h"
#include "server/http.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

// ----------------------------------------------------------------------------
// Options (filled by src/cli/serve.c)

typedef struct onyx_server_options {
    const char *host;
    int port;
    const char *const *model_files; /* (n_model_files) served as <stem>, version 1 */
    int n_model_files;
    const char *repository; /* Triton layout, or NULL */
    int workers;            /* inference threads */
    int intra_op_threads;   /* threads of each session */
    int poll_interval_s;    /* 0: reload only on SIGHUP */
    size_t max_body_bytes;
    size_t max_inflight_bytes;   /* request bodies held at once, summed */
    int64_t max_tensor_elements; /* per input tensor */
    int max_queue;               /* requests waiting for a worker */
    int max_connections;
    int request_timeout_ms; /* queue wait + run; 0: none */
    int idle_timeout_s;
    int shutdown_timeout_s; /* drain limit on SIGTERM */
    int drain_delay_s;      /* on SIGTERM: not ready, still serving, for this long */
    int max_batch_size;     /* for MODEL files: dynamic batching when > 0 */
    int64_t batch_delay_us; /* for MODEL files */
    onyx_log_level log_level;
    bool access_log;
    bool log_json; /* JSON lines (default) or plain text */
} onyx_server_options;

void onyx_server_options_init(onyx_server_options *o);
/* Runs until SIGTERM/SIGINT; returns 0 after a clean drain, 1 when the
 * server could not start (the reason was logged). */
int onyx_server_run(const onyx_server_options *o);

// ----------------------------------------------------------------------------
// Logging: one line per event on stderr, JSON ({"ts","level","msg",...}) or
// text. Thread-safe (one fwrite per line).

typedef struct onyx_slog {
    onyx_log_level level;
    bool json;
} onyx_slog;

/* Logs `msg` with optional extra fields: `fields` is NULL or a string of
 * JSON members without braces (`"model":"x","version":1`). */
void onyx_slog_write(const onyx_slog *l, onyx_log_level level, const char *fields, const char *fmt,
                     ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
#define SLOG(l, lv, ...) onyx_slog_write((l), (lv), NULL, __VA_ARGS__)

// ----------------------------------------------------------------------------
// Model configuration (Triton's config.pbtxt subset; repo.c)

typedef enum onyx_version_policy {
    ONYX_POLICY_LATEST = 0, /* the latest `latest_n` versions (default 1) */
    ONYX_POLICY_ALL,
    ONYX_POLICY_SPECIFIC,
    ONYX_POLICY_COUNT
} onyx_version_policy;

typedef struct onyx_io_spec {
    char *name;
    onyx_dtype dtype; /* UNDEFINED when not given */
    int ndim;         /* -1 when dims not given; excludes the batch dim */
    int64_t dims[ONYX_MAX_DIMS];
} onyx_io_spec;

typedef struct onyx_model_config {
    char *name;
    int max_batch_size; /* > 0: dim 0 of every input and output is the batch */
    bool dynamic_batching;
    int n_preferred;
    int preferred[16];
    int64_t max_queue_delay_us;
    int instance_count; /* concurrent runs of a version; 0: one per worker */
    onyx_version_policy policy;
    int latest_n;
    int n_specific;
    int64_t *specific; /* (n_specific) */
    int n_inputs, n_outputs;
    onyx_io_spec *inputs, *outputs;
    int n_params;
    char **param_keys, **param_values; /* (n_params) */
    char *default_model_filename;      /* "model.onnx" */
} onyx_model_config;

/* The value of parameter `key`, or NULL. */
const char *onyx_config_param(const onyx_model_config *c, const char *key);

// ----------------------------------------------------------------------------
// Loaded model versions (repo.c)

/* One loaded version: immutable after load except for the reference count,
 * the per-worker sessions (slot w touched only by worker w) and `running`. */
typedef struct onyx_model_version {
    atomic_int refs;
    char *name;
    int64_t version;
    char *path;
    onyx_model *model;
    onyx_model_config cfg;
    int n_inputs, n_outputs;
    onyx_io_info *inputs, *outputs; /* (n_inputs), (n_outputs) */
    char **labels;                  /* (n_labels) from the "labels" parameter, or NULL */
    int n_labels;
    onyx_session **sessions; /* (n_sessions) one per worker, made on first use */
    int n_sessions;
    int intra_op_threads;
    atomic_int running;   /* runs in progress (instance_group limit) */
    int64_t loaded_at;    /* wall clock seconds */
    uint64_t fingerprint; /* identity of model + config files */
} onyx_model_version;

typedef struct onyx_repo onyx_repo;

onyx_repo *onyx_repo_new(const onyx_server_options *o, const onyx_slog *log);
void onyx_repo_free(onyx_repo *r);

/* (Re)scans the sources: loads new and changed versions, unloads removed
 * ones. A version that fails to load leaves the old one serving and the error
 * on the model. Returns the number of load errors of this scan. Serialized
 * internally; any thread. */
int onyx_repo_reload(onyx_repo *r);

/* Takes a reference to version `version` of `name` (<= 0: the highest loaded
 * one). Returns 0, or an HTTP status (404, 503) with the reason in err. */
int onyx_repo_acquire(onyx_repo *r, const char *name, int64_t version, onyx_model_version **out,
                      char *err, size_t cap);
void onyx_version_retain(onyx_model_version *v);
void onyx_version_release(onyx_model_version *v);

/* A snapshot of one model for metadata and listings. Freed with
 * onyx_repo_info_free. */
typedef struct onyx_model_info {
    char *name;
    int n_versions;
    onyx_model_version **versions; /* (n_versions) ascending, retained */
    char *error;                   /* last load error or NULL */
    char *state;                   /* "READY", "UNAVAILABLE" */
} onyx_model_info;

/* 0 with *out filled, or 404 when no such model (known even if unloaded). */
int onyx_repo_info(onyx_repo *r, const char *name, onyx_model_info *out);
/* All models, sorted by name; *n set. Free each with onyx_repo_info_free, then the array. */
onyx_model_info *onyx_repo_list(onyx_repo *r, int *n);
void onyx_repo_info_free(onyx_model_info *m);
/* Whether every model known at startup has a loaded version (models added
 * later that fail to load are reported, but do not make the server unready). */
bool onyx_repo_all_ready(onyx_repo *r);

/* The session of worker `w` for `v`, created on first use (NULL with err). */
onyx_session *onyx_version_session(onyx_model_version *v, int w, onyx_error *err);

/* KServe spelling of a dtype ("FP32", "BYTES", ...); NULL when it has none. */
const char *onyx_kserve_dtype(onyx_dtype t);
/* The dtype for a KServe / Triton config spelling (also TYPE_FP32); UNDEFINED if none. */
onyx_dtype onyx_kserve_dtype_parse(const char *s);

// ----------------------------------------------------------------------------
// Scheduler (sched.c): a FIFO of jobs served by `workers` threads. A job is
// parsed (prepare) and answered (finish) on the worker, so the event thread
// only moves bytes. Jobs of a dynamically batched version are merged.

typedef struct onyx_job onyx_job;

/* Prepared input tensors of a job: views into memory the job owns. */
typedef struct onyx_job_inputs {
    int n;
    const char **names;      /* (n) borrowed from the version's io info */
    onyx_tensor_view *views; /* (n) */
    int n_outputs;           /* 0: all outputs */
    const char **outputs;    /* (n_outputs) borrowed from the version */
} onyx_job_inputs;

/* One output handed to finish: `value` for any kind (unbatched runs), and
 * `view` filled for tensors (a slice of the batch when batched). */
typedef struct onyx_job_output {
    const char *name;
    const onyx_value *value; /* NULL for sliced tensors */
    onyx_tensor_view view;
    bool is_tensor;
} onyx_job_output;

typedef struct onyx_job_ops {
    /* Parses the request into `in` (worker thread). Returns 0 or an HTTP
     * status with the message in err. */
    int (*prepare)(onyx_job *j, onyx_job_inputs *in, char *err, size_t cap);
    /* Answers the request: status 0 with outputs, or an error status and
     * message. Must respond and free the protocol state; the scheduler then
     * frees the job. Outputs are valid only during the call. */
    void (*finish)(onyx_job *j, int status, const char *err, const onyx_job_output *outs,
                   int n_outs);
} onyx_job_ops;

struct onyx_job {
    const onyx_job_ops *ops;
    void *ctx;               /* protocol state */
    onyx_model_version *ver; /* retained; released by the scheduler */
    onyx_job_inputs in;
    int64_t batch; /* dim 0 of the inputs when the version batches */
    bool prepared;
    int64_t enqueue_ns, start_ns, compute_ns, end_ns;
    int64_t deadline_ns; /* 0: none */
    int64_t batch_total; /* size of the run it was part of */
    onyx_job *next, *prev;
};

typedef struct onyx_sched onyx_sched;
typedef struct onyx_metrics onyx_metrics;

onyx_sched *onyx_sched_new(int workers, int max_queue, const onyx_slog *log, onyx_metrics *m);
/* Stops the workers after the queue is empty and joins them. */
void onyx_sched_free(onyx_sched *s);
/* Queues `j` (taking it). Returns false when the queue is full (the caller
 * still owns j). */
bool onyx_sched_submit(onyx_sched *s, onyx_job *j);
/* Aborts runs past their deadline; call periodically (any thread). */
void onyx_sched_watchdog(onyx_sched *s);
int64_t onyx_sched_queued(onyx_sched *s);

// ----------------------------------------------------------------------------
// Metrics (metrics.c): Prometheus text exposition.

onyx_metrics *onyx_metrics_new(void);
void onyx_metrics_free(onyx_metrics *m);
/* One answered inference request of `model` (version v): ok or failed with a
 * reason ("bad_request", "not_found", "unavailable", "internal", "timeout"). */
void onyx_metrics_request(onyx_metrics *m, const char *model, int64_t v, bool ok,
                          const char *reason, int64_t items, int64_t queue_ns, int64_t compute_ns,
                          int64_t total_ns);
/* One model execution of `batch` items. */
void onyx_metrics_exec(onyx_metrics *m, const char *model, int64_t v, int64_t batch);
/* One HTTP reply (every endpoint). */
void onyx_metrics_http(onyx_metrics *m, const char *method, int status, int64_t ns);
/* Appends Triton's statistics document ({"model_stats": [...]}) for the
 * loaded versions of `name` (NULL: all models; version <= 0: all versions).
 * Returns the number of entries written. */
int onyx_metrics_stats_json(onyx_metrics *m, struct evbuffer *b, onyx_repo *repo,
                            const char *name, int64_t version);
/* Appends the exposition; the gauges come from the caller. */
void onyx_metrics_render(onyx_metrics *m, struct evbuffer *b, onyx_repo *repo, int64_t in_flight,
                         int64_t connections, int64_t queued);

// ----------------------------------------------------------------------------
// Protocols (kserve.c, tfserving.c). Handlers run on the event thread and
// answer (now, or later from a worker).

typedef struct onyx_server {
    const onyx_server_options *opt;
    onyx_slog log;
    onyx_repo *repo;
    onyx_sched *sched;
    onyx_metrics *metrics;
    onyx_http *http;
    atomic_bool draining;
} onyx_server;

/* Routes under /v2; returns false if the path is not one of them. */
bool onyx_kserve_route(onyx_server *s, onyx_http_request *req);
/* Routes under /v1; returns false if the path is not one of them. */
bool onyx_tfs_route(onyx_server *s, onyx_http_request *req);

/* Shared by both protocols: queues an inference job for `ver` (retained by
 * the caller, taken by the job) and answers 503 itself when the queue is full. */
void onyx_server_submit(onyx_server *s, onyx_http_request *req, onyx_model_version *ver,
                        const onyx_job_ops *ops, void *ctx);
/* The HTTP status for a library status (400 for input problems, 500 else). */
int onyx_http_status_of(onyx_status st);

/* The OpenAPI document (openapi.c): its lines, NULL-terminated. */
extern const char *const onyx_openapi_yaml[];

/* Image preprocessing for a model input fed with encoded images (image.c):
 * decodes `n` images and writes the input tensor (n, C, H, W) or (n, H, W, C)
 * into *out, its data allocated from `own`. The settings come from the
 * model's shape and config parameters (docs/server.md). Returns 0 or 400
 * with err. */
int onyx_server_images(const onyx_model_version *v, const onyx_io_info *in,
                       const uint8_t *const *bytes, const size_t *lens, int64_t n, onyx_owned *own,
                       onyx_tensor_view *out, char *err, size_t cap);
/* Whether input `in` of `v` can take encoded images (a float/uint8 tensor of
 * rank 4, or rank 3 without batch). */
bool onyx_server_is_image_input(const onyx_model_version *v, const onyx_io_info *in);

#endif
