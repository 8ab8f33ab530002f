/* server.c - `onyx serve` as a whole: wires the HTTP layer, the repository,
 * the scheduler and the metrics together; routes the endpoints that belong
 * to no protocol (/metrics, /openapi.yaml, the embedded web page of
 * ui_assets.h); signals (SIGTERM/SIGINT drain and exit, SIGHUP reloads), the
 * reload thread, the timeout watchdog, the structured log and the access log.
 *
 * Owns: process lifecycle of the server. Does not own: protocol documents
 * (kserve.c, tfserving.c) or command-line parsing (src/cli/serve.c).
 */
#include "base/file.h"
#include "server/server.h"
#include "server/ui_assets.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void onyx_server_options_init(onyx_server_options *o) {
    memset(o, 0, sizeof *o);
    o->host = "0.0.0.0";
    o->port = 8000;
    o->workers = onyx_cpu_count();
    o->intra_op_threads = 1;
    o->max_body_bytes = (size_t)64 << 20;
    o->max_inflight_bytes = (size_t)1 << 30;
    o->max_tensor_elements = (int64_t)1 << 27;
    o->max_queue = 1024;
    o->max_connections = 1024;
    o->request_timeout_ms = 60000;
    o->idle_timeout_s = 65;
    o->shutdown_timeout_s = 30;
    o->batch_delay_us = 1000;
    o->log_level = ONYX_LOG_INFO;
    o->access_log = true;
    o->log_json = true;
}

// ----------------------------------------------------------------------------
// Logging

static const char *level_name(onyx_log_level l) {
    switch (l) {
    case ONYX_LOG_ERROR:
        return "error";
    case ONYX_LOG_WARN:
        return "warn";
    case ONYX_LOG_INFO:
        return "info";
    default:
        return "debug";
    }
}

void onyx_slog_write(const onyx_slog *l, onyx_log_level level, const char *fields, const char *fmt,
                     ...) {
    if (level > l->level) return;
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    struct evbuffer *b = evbuffer_new();
    if (!b) return;
    if (l->json) {
        evbuffer_add_printf(b, "{\"ts\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":", when,
                            ts.tv_nsec / 1000000, level_name(level));
        onyx_json_quote(b, msg, strlen(msg));
        if (fields && *fields) evbuffer_add_printf(b, ",%s", fields);
        evbuffer_add(b, "}\n", 2);
    } else {
        evbuffer_add_printf(b, "%s.%03ldZ %-5s %s", when, ts.tv_nsec / 1000000, level_name(level),
                            msg);
        /* The JSON members as key=value pairs: keys lose their quotes, values
         * keep JSON spelling. */
        bool in_str = false, in_key = false, expect_key = true;
        for (const char *p = fields; p && *p; p++) {
            char c = *p;
            if (in_str) {
                if (c == '\\' && p[1]) {
                    evbuffer_add(b, p, 2);
                    p++;
                } else if (c == '"') {
                    in_str = false;
                    if (!in_key) evbuffer_add(b, "\"", 1);
                    in_key = false;
                } else {
                    evbuffer_add(b, &c, 1);
                }
            } else if (c == '"') {
                in_str = true;
                if (expect_key)
                    evbuffer_add(b, " ", 1), in_key = true, expect_key = false;
                else
                    evbuffer_add(b, "\"", 1);
            } else if (c == ':') {
                evbuffer_add(b, "=", 1);
            } else if (c == ',') {
                expect_key = true;
            } else {
                evbuffer_add(b, &c, 1);
            }
        }
        evbuffer_add(b, "\n", 1);
    }
    size_t n = evbuffer_get_length(b);
    const char *p = (const char *)evbuffer_pullup(b, -1);
    if (p) fwrite(p, 1, n, stderr); /* one write per line: lines never interleave */
    evbuffer_free(b);
}

static void library_log(void *user, onyx_log_level level, const char *message) {
    onyx_slog_write(user, level, "\"source\":\"library\"", "%s", message);
}

// ----------------------------------------------------------------------------
// Shared by the protocols

int onyx_http_status_of(onyx_status st) {
    switch (st) {
    case ONYX_OK:
        return 200;
    case ONYX_ERR_INVALID_ARGUMENT:
    case ONYX_ERR_RUNTIME:
        return 400;
    case ONYX_ERR_OUT_OF_MEMORY:
    case ONYX_ERR_CANCELLED:
        return 503;
    case ONYX_ERR_UNSUPPORTED:
        return 501;
    default:
        return 500;
    }
}

void onyx_server_submit(onyx_server *s, onyx_http_request *req, onyx_model_version *ver,
                        const onyx_job_ops *ops, void *ctx) {
    onyx_job *j = calloc(1, sizeof *j);
    if (!j) {
        ops->finish(&(onyx_job){.ops = ops, .ctx = ctx, .ver = ver}, 503, "out of memory", NULL, 0);
        onyx_version_release(ver);
        return;
    }
    j->ops = ops;
    j->ctx = ctx;
    j->ver = ver;
    if (s->opt->request_timeout_ms > 0)
        j->deadline_ns = onyx_now_ns() + (int64_t)s->opt->request_timeout_ms * 1000000;
    (void)req;
    if (!onyx_sched_submit(s->sched, j)) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "inference queue is full (%d requests waiting, --max-queue); retry later",
                 s->opt->max_queue);
        onyx_metrics_request(s->metrics, ver->name, ver->version, false, "unavailable", 1, 0, 0, 0);
        ops->finish(j, 503, msg, NULL, 0);
        onyx_version_release(ver);
        free(j);
    }
}

// ----------------------------------------------------------------------------
// Routing

static void handle(void *user, onyx_http_request *req) {
    onyx_server *s = user;
    if (onyx_kserve_route(s, req)) return;
    if (onyx_tfs_route(s, req)) return;
    const char *p = req->path;
    bool get = !strcmp(req->method, "GET") || !strcmp(req->method, "HEAD");
    if (!strcmp(p, "/metrics")) {
        if (!get) {
            onyx_http_respond_error(req, 405, "use GET /metrics");
            return;
        }
        struct evbuffer *b = evbuffer_new();
        onyx_metrics_render(s->metrics, b, s->repo, onyx_http_in_flight(s->http),
                            onyx_http_connections(s->http), onyx_sched_queued(s->sched));
        onyx_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, b);
        return;
    }
    if (!strcmp(p, "/openapi.yaml") || !strcmp(p, "/v2/openapi.yaml")) {
        struct evbuffer *b = evbuffer_new();
        for (int i = 0; onyx_openapi_yaml[i]; i++)
            evbuffer_add(b, onyx_openapi_yaml[i], strlen(onyx_openapi_yaml[i]));
        onyx_http_respond(req, 200, "application/yaml", NULL, b);
        return;
    }
    /* The embedded web page (web/, issue 6): "/", "/ui", "/ui/NAME". */
    const onyx_asset *a = onyx_ui_find(p);
    if (a) {
        if (!get) {
            onyx_http_respond_error(req, 405, "use GET for the web page");
            return;
        }
        struct evbuffer *b = evbuffer_new();
        if (b) evbuffer_add_reference(b, a->data, a->size, NULL, NULL); /* static storage */
        onyx_http_respond(req, 200, a->content_type, "Cache-Control: no-cache\r\n", b);
        return;
    }
    char msg[300];
    snprintf(msg, sizeof msg, "no such endpoint: %s %s", req->method, p);
    onyx_http_respond_error(req, 404, msg);
}

static void access_log(void *user, const onyx_http_request *req, int status, size_t bytes_out,
                       int64_t ns) {
    onyx_server *s = user;
    onyx_metrics_http(s->metrics, req->method, status, ns);
    onyx_log_level lv = status >= 500 ? ONYX_LOG_WARN : ONYX_LOG_INFO;
    if (!s->opt->access_log || lv > s->log.level) return;
    struct evbuffer *f = evbuffer_new();
    if (!f) return;
    evbuffer_add(f, "\"remote\":", 9);
    onyx_json_quote(f, req->remote, strlen(req->remote));
    evbuffer_add_printf(f, ",\"method\":\"%s\",\"path\":", req->method);
    onyx_json_quote(f, req->path ? req->path : "-", strlen(req->path ? req->path : "-"));
    evbuffer_add_printf(f, ",\"status\":%d,\"bytes_in\":%zu,\"bytes_out\":%zu,\"ms\":%.3f", status,
                        req->body_len, bytes_out, (double)ns / 1e6);
    if (req->log_model[0]) {
        evbuffer_add(f, ",\"model\":", 9);
        onyx_json_quote(f, req->log_model, strlen(req->log_model));
    }
    if (req->log_error[0]) {
        evbuffer_add(f, ",\"error\":", 9);
        onyx_json_quote(f, req->log_error, strlen(req->log_error));
    }
    evbuffer_add(f, "", 1);
    const char *fields = (const char *)evbuffer_pullup(f, -1);
    onyx_slog_write(&s->log, lv, fields, "access");
    evbuffer_free(f);
}

// ----------------------------------------------------------------------------
// Reload thread

typedef struct reloader {
    onyx_server *s;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool requested, stop, started;
} reloader;

static void *reload_main(void *arg) {
    reloader *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        if (!r->requested) {
            if (r->s->opt->poll_interval_s > 0) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += r->s->opt->poll_interval_s;
                pthread_cond_timedwait(&r->cv, &r->mu, &ts);
            } else {
                pthread_cond_wait(&r->cv, &r->mu);
            }
            if (r->stop) break;
        }
        bool by_signal = r->requested;
        r->requested = false;
        pthread_mutex_unlock(&r->mu);
        if (by_signal) SLOG(&r->s->log, ONYX_LOG_INFO, "reloading the models (SIGHUP)");
        int errors = onyx_repo_reload(r->s->repo);
        if (by_signal)
            SLOG(&r->s->log, errors ? ONYX_LOG_WARN : ONYX_LOG_INFO,
                 "reload finished with %d error%s", errors, errors == 1 ? "" : "s");
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void reload_request(reloader *r) {
    pthread_mutex_lock(&r->mu);
    r->requested = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

// ----------------------------------------------------------------------------
// Lifecycle

typedef struct runtime {
    onyx_server *s;
    struct event_base *base;
    reloader *rl;
    struct event *shutdown_timer;
    struct event *delay_timer;
    bool clean;
} runtime;

static void on_drained(void *arg) {
    runtime *rt = arg;
    rt->clean = true;
    SLOG(&rt->s->log, ONYX_LOG_INFO, "drained: every request answered; exiting");
    event_base_loopexit(rt->base, NULL);
}

static void shutdown_timeout_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    runtime *rt = arg;
    SLOG(&rt->s->log, ONYX_LOG_WARN, "shutdown timeout: %lld requests still in flight, exiting",
         (long long)onyx_http_in_flight(rt->s->http));
    event_base_loopbreak(rt->base);
}

static void start_drain(runtime *rt, const char *why) {
    onyx_server *s = rt->s;
    SLOG(&s->log, ONYX_LOG_INFO,
         "%s: no longer accepting connections; finishing %lld requests in flight", why,
         (long long)onyx_http_in_flight(s->http));
    struct timeval tv = {s->opt->shutdown_timeout_s, 0};
    rt->shutdown_timer = evtimer_new(rt->base, shutdown_timeout_cb, rt);
    if (rt->shutdown_timer) evtimer_add(rt->shutdown_timer, &tv);
    onyx_http_drain(s->http, on_drained, rt);
}

static void drain_now_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    start_drain(arg, "drain delay over");
}

static void signal_cb(evutil_socket_t sig, short what, void *arg) {
    (void)what;
    runtime *rt = arg;
    onyx_server *s = rt->s;
    if (sig == SIGHUP) {
        reload_request(rt->rl);
        return;
    }
    if (atomic_load(&s->draining)) {
        SLOG(&s->log, ONYX_LOG_WARN, "second signal: exiting without waiting");
        event_base_loopbreak(rt->base);
        return;
    }
    atomic_store(&s->draining, true);
    if (s->opt->drain_delay_s > 0 && !rt->delay_timer) {
        SLOG(&s->log, ONYX_LOG_INFO,
             "%s: reporting not ready; serving %d more second%s before draining",
             sig == SIGTERM ? "SIGTERM" : "SIGINT", s->opt->drain_delay_s,
             s->opt->drain_delay_s == 1 ? "" : "s");
        struct timeval tv = {s->opt->drain_delay_s, 0};
        rt->delay_timer = evtimer_new(rt->base, drain_now_cb, rt);
        if (rt->delay_timer) {
            evtimer_add(rt->delay_timer, &tv);
            return;
        }
    }
    start_drain(rt, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void watchdog_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    onyx_sched_watchdog(arg);
}

int onyx_server_run(const onyx_server_options *o) {
    onyx_server srv;
    memset(&srv, 0, sizeof srv);
    srv.opt = o;
    srv.log.level = o->log_level;
    srv.log.json = o->log_json;
    atomic_init(&srv.draining, false);
    onyx_set_log(library_log, &srv.log,
                 o->log_level < ONYX_LOG_WARN ? o->log_level : ONYX_LOG_WARN);
    runtime rt;
    memset(&rt, 0, sizeof rt);
    rt.s = &srv;
    reloader rl;
    memset(&rl, 0, sizeof rl);
    rl.s = &srv;
    pthread_mutex_init(&rl.mu, NULL);
    pthread_cond_init(&rl.cv, NULL);
    rt.rl = &rl;
    struct event *sigs[4] = {NULL, NULL, NULL, NULL}, *wd = NULL;
    int rc = 1;

    /* SIGPIPE would kill the process when a client vanishes mid-write. */
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0) {
        SLOG(&srv.log, ONYX_LOG_ERROR, "libevent has no pthreads support");
        goto done;
    }
    srv.metrics = onyx_metrics_new();
    srv.repo = onyx_repo_new(o, &srv.log);
    if (!srv.metrics || !srv.repo) goto done;
    SLOG(&srv.log, ONYX_LOG_INFO,
         "onyx %s: loading models (%d worker%s, %d intra-op thread%s each)", ONYX_VERSION,
         o->workers, o->workers == 1 ? "" : "s", o->intra_op_threads,
         o->intra_op_threads == 1 ? "" : "s");
    int errors = onyx_repo_reload(srv.repo);
    if (errors) {
        SLOG(&srv.log, ONYX_LOG_ERROR, "%d model%s failed to load; not starting", errors,
             errors == 1 ? "" : "s");
        goto done;
    }
    int n_models = 0;
    onyx_model_info *list = onyx_repo_list(srv.repo, &n_models);
    for (int i = 0; list && i < n_models; i++)
        onyx_repo_info_free(&list[i]);
    free(list);
    if (n_models == 0) SLOG(&srv.log, ONYX_LOG_WARN, "no models to serve");
    srv.sched = onyx_sched_new(o->workers, o->max_queue, &srv.log, srv.metrics);
    rt.base = event_base_new();
    if (!srv.sched || !rt.base) {
        SLOG(&srv.log, ONYX_LOG_ERROR, "cannot start the workers or the event loop");
        goto done;
    }
    onyx_http_limits lim = {64 << 10, o->max_body_bytes, o->max_connections, o->idle_timeout_s,
                            o->max_inflight_bytes};
    char err[300];
    srv.http =
        onyx_http_new(rt.base, o->host, o->port, &lim, handle, access_log, &srv, err, sizeof err);
    if (!srv.http) {
        SLOG(&srv.log, ONYX_LOG_ERROR, "%s", err);
        goto done;
    }
    const int signals[4] = {SIGTERM, SIGINT, SIGHUP, 0};
    for (int i = 0; signals[i]; i++) {
        sigs[i] = evsignal_new(rt.base, signals[i], signal_cb, &rt);
        if (sigs[i]) evsignal_add(sigs[i], NULL);
    }
    wd = event_new(rt.base, -1, EV_PERSIST, watchdog_cb, srv.sched);
    struct timeval wtv = {0, 100000};
    if (wd) event_add(wd, &wtv);
    if (pthread_create(&rl.thread, NULL, reload_main, &rl) == 0) rl.started = true;
    char fields[160];
    snprintf(fields, sizeof fields, "\"host\":\"%s\",\"port\":%d,\"models\":%d", o->host,
             onyx_http_port(srv.http), n_models);
    onyx_slog_write(&srv.log, ONYX_LOG_INFO, fields, "listening on %s:%d", o->host,
                    onyx_http_port(srv.http));
    event_base_dispatch(rt.base);
    rc = rt.clean ? 0 : 1;
done:
    if (rl.started) {
        pthread_mutex_lock(&rl.mu);
        rl.stop = true;
        pthread_cond_signal(&rl.cv);
        pthread_mutex_unlock(&rl.mu);
        pthread_join(rl.thread, NULL);
    }
    onyx_sched_free(srv.sched); /* answers what is still queued, then joins */
    for (int i = 0; i < 4; i++)
        if (sigs[i]) event_free(sigs[i]);
    if (wd) event_free(wd);
    if (rt.shutdown_timer) event_free(rt.shutdown_timer);
    if (rt.delay_timer) event_free(rt.delay_timer);
    onyx_http_free(srv.http);
    if (rt.base) event_base_free(rt.base);
    onyx_repo_free(srv.repo);
    onyx_metrics_free(srv.metrics);
    pthread_cond_destroy(&rl.cv);
    pthread_mutex_destroy(&rl.mu);
    onyx_set_log(NULL, NULL, ONYX_LOG_WARN);
    return rc;
}
