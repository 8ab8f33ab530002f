/* metrics.c - counters and histograms of the server, rendered in the
 * Prometheus text exposition format (version 0.0.4) at /metrics.
 *
 * Owns: the metric names (docs/server.md lists them with their Triton
 * equivalents) and their storage. Does not own: what is measured where
 * (sched.c, server.c call in).
 */
#include "server/server.h"

#include <event2/buffer.h>

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const double buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define N_BUCKETS (int)(sizeof buckets / sizeof buckets[0])

static const char *const reasons[] = {"bad_request", "not_found", "unavailable", "timeout",
                                      "internal"};
#define N_REASONS (int)(sizeof reasons / sizeof reasons[0])

typedef struct histo {
    uint64_t counts[N_BUCKETS + 1]; /* the last is +Inf */
    double sum;
    uint64_t n;
} histo;

typedef struct model_stats {
    char *model;
    int64_t version;
    uint64_t success, failure[N_REASONS], inferences, executions;
    uint64_t success_ns, failure_ns; /* request time of successes / failures */
    int64_t last_ms;                 /* wall clock of the last answer, ms since the epoch */
    uint64_t queue_us, compute_us, request_us;
    histo latency;
} model_stats;

typedef struct http_stats {
    char method[16];
    int status;
    uint64_t count;
} http_stats;

struct onyx_metrics {
    pthread_mutex_t mu;
    model_stats *m;
    int n, cap;
    http_stats *h;
    int nh, caph;
    histo http_latency;
};

onyx_metrics *onyx_metrics_new(void) {
    onyx_metrics *m = calloc(1, sizeof *m);
    if (m) pthread_mutex_init(&m->mu, NULL);
    return m;
}

void onyx_metrics_free(onyx_metrics *m) {
    if (!m) return;
    for (int i = 0; i < m->n; i++)
        free(m->m[i].model);
    free(m->m);
    free(m->h);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static void observe(histo *h, double s) {
    int b = 0;
    while (b < N_BUCKETS && s > buckets[b])
        b++;
    h->counts[b]++;
    h->sum += s;
    h->n++;
}

/* Caller holds m->mu. NULL when out of memory. */
static model_stats *stats_for(onyx_metrics *m, const char *model, int64_t v) {
    for (int i = 0; i < m->n; i++)
        if (m->m[i].version == v && strcmp(m->m[i].model, model) == 0) return &m->m[i];
    if (m->n == m->cap) {
        int nc = m->cap ? m->cap * 2 : 16;
        model_stats *ns = realloc(m->m, (size_t)nc * sizeof *ns);
        if (!ns) return NULL;
        m->m = ns;
        m->cap = nc;
    }
    model_stats *s = &m->m[m->n];
    memset(s, 0, sizeof *s);
    s->model = strdup(model);
    if (!s->model) return NULL;
    s->version = v;
    m->n++;
    return s;
}

void onyx_metrics_request(onyx_metrics *m, const char *model, int64_t v, bool ok,
                          const char *reason, int64_t items, int64_t queue_ns, int64_t compute_ns,
                          int64_t total_ns) {
    pthread_mutex_lock(&m->mu);
    model_stats *s = stats_for(m, model, v);
    if (s) {
        if (ok) {
            s->success++;
            s->inferences += (uint64_t)items;
            s->compute_us += (uint64_t)(compute_ns / 1000);
        } else {
            int r = N_REASONS - 1;
            for (int i = 0; i < N_REASONS; i++)
                if (strcmp(reasons[i], reason) == 0) r = i;
            s->failure[r]++;
        }
        s->queue_us += (uint64_t)(queue_ns > 0 ? queue_ns / 1000 : 0);
        s->request_us += (uint64_t)(total_ns / 1000);
        if (ok) s->success_ns += (uint64_t)total_ns;
        else s->failure_ns += (uint64_t)total_ns;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s->last_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        observe(&s->latency, (double)total_ns / 1e9);
    }
    pthread_mutex_unlock(&m->mu);
}

void onyx_metrics_exec(onyx_metrics *m, const char *model, int64_t v, int64_t batch) {
    (void)batch;
    pthread_mutex_lock(&m->mu);
    model_stats *s = stats_for(m, model, v);
    if (s) s->executions++;
    pthread_mutex_unlock(&m->mu);
}

void onyx_metrics_http(onyx_metrics *m, const char *method, int status, int64_t ns) {
    pthread_mutex_lock(&m->mu);
    observe(&m->http_latency, (double)ns / 1e9);
    http_stats *h = NULL;
    for (int i = 0; i < m->nh; i++)
        if (m->h[i].status == status && strcmp(m->h[i].method, method) == 0) h = &m->h[i];
    if (!h && m->nh < 256) {
        if (m->nh == m->caph) {
            int nc = m->caph ? m->caph * 2 : 16;
            http_stats *ns = realloc(m->h, (size_t)nc * sizeof *ns);
            if (ns) m->h = ns, m->caph = nc;
        }
        if (m->nh < m->caph) {
            h = &m->h[m->nh++];
            memset(h, 0, sizeof *h);
            snprintf(h->method, sizeof h->method, "%s", method);
            h->status = status;
        }
    }
    if (h) h->count++;
    pthread_mutex_unlock(&m->mu);
}

/* Model names come from file and directory names: escape for label values. */
static void label(struct evbuffer *b, const char *s) {
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            evbuffer_add_printf(b, "\\%c", *s);
        else if (*s == '\n')
            evbuffer_add(b, "\\n", 2);
        else
            evbuffer_add(b, s, 1);
    }
}

static void head(struct evbuffer *b, const char *name, const char *type, const char *help) {
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void model_labels(struct evbuffer *b, const model_stats *s) {
    evbuffer_add(b, "model=\"", 7);
    label(b, s->model);
    evbuffer_add_printf(b, "\",version=\"%lld\"", (long long)s->version);
}

static void counter(onyx_metrics *m, struct evbuffer *b, const char *name, const char *help,
                    size_t offset) {
    head(b, name, "counter", help);
    for (int i = 0; i < m->n; i++) {
        evbuffer_add_printf(b, "%s{", name);
        model_labels(b, &m->m[i]);
        evbuffer_add_printf(
            b, "} %llu\n",
            (unsigned long long)*(const uint64_t *)((const char *)&m->m[i] + offset));
    }
}

static void histogram(struct evbuffer *b, const char *name, const histo *h, const model_stats *s) {
    uint64_t cum = 0;
    for (int k = 0; k <= N_BUCKETS; k++) {
        cum += h->counts[k];
        evbuffer_add_printf(b, "%s_bucket{", name);
        if (s) model_labels(b, s), evbuffer_add(b, ",", 1);
        if (k < N_BUCKETS)
            evbuffer_add_printf(b, "le=\"%g\"} %llu\n", buckets[k], (unsigned long long)cum);
        else
            evbuffer_add_printf(b, "le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    evbuffer_add_printf(b, "%s_sum", name);
    if (s) evbuffer_add(b, "{", 1), model_labels(b, s), evbuffer_add(b, "}", 1);
    evbuffer_add_printf(b, " %.9g\n%s_count", h->sum, name);
    if (s) evbuffer_add(b, "{", 1), model_labels(b, s), evbuffer_add(b, "}", 1);
    evbuffer_add_printf(b, " %llu\n", (unsigned long long)h->n);
}

void onyx_metrics_render(onyx_metrics *m, struct evbuffer *b, onyx_repo *repo, int64_t in_flight,
                         int64_t connections, int64_t queued) {
    int nmodels = 0;
    onyx_model_info *list = onyx_repo_list(repo, &nmodels);
    int loaded = 0;
    for (int i = 0; list && i < nmodels; i++)
        loaded += list[i].n_versions;

    pthread_mutex_lock(&m->mu);
    counter(m, b, "onyx_inference_request_success_total",
            "Inference requests answered successfully.", offsetof(model_stats, success));
    head(b, "onyx_inference_request_failure_total", "counter",
         "Inference requests that failed, by reason.");
    for (int i = 0; i < m->n; i++)
        for (int r = 0; r < N_REASONS; r++) {
            evbuffer_add(b, "onyx_inference_request_failure_total{", 37);
            model_labels(b, &m->m[i]);
            evbuffer_add_printf(b, ",reason=\"%s\"} %llu\n", reasons[r],
                                (unsigned long long)m->m[i].failure[r]);
        }
    counter(m, b, "onyx_inference_count_total", "Inferences performed (a batch of N counts N).",
            offsetof(model_stats, inferences));
    counter(m, b, "onyx_inference_exec_count_total",
            "Model executions (a dynamically batched run counts once).",
            offsetof(model_stats, executions));
    counter(m, b, "onyx_inference_queue_duration_us_total",
            "Cumulative time requests waited for a worker, microseconds.",
            offsetof(model_stats, queue_us));
    counter(m, b, "onyx_inference_compute_duration_us_total",
            "Cumulative model execution time of successful requests, microseconds.",
            offsetof(model_stats, compute_us));
    counter(m, b, "onyx_inference_request_duration_us_total",
            "Cumulative time from queueing to answer, microseconds.",
            offsetof(model_stats, request_us));
    head(b, "onyx_inference_request_duration_seconds", "histogram",
         "Inference request latency from queueing to answer.");
    for (int i = 0; i < m->n; i++)
        histogram(b, "onyx_inference_request_duration_seconds", &m->m[i].latency, &m->m[i]);
    head(b, "onyx_http_requests_total", "counter", "HTTP requests answered, by method and status.");
    for (int i = 0; i < m->nh; i++)
        evbuffer_add_printf(b, "onyx_http_requests_total{method=\"%s\",code=\"%d\"} %llu\n",
                            m->h[i].method, m->h[i].status, (unsigned long long)m->h[i].count);
    head(b, "onyx_http_request_duration_seconds", "histogram",
         "HTTP request latency (every endpoint), head received to reply queued.");
    histogram(b, "onyx_http_request_duration_seconds", &m->http_latency, NULL);
    pthread_mutex_unlock(&m->mu);

    head(b, "onyx_http_requests_in_flight", "gauge",
         "HTTP requests received and not yet answered.");
    evbuffer_add_printf(b, "onyx_http_requests_in_flight %lld\n", (long long)in_flight);
    head(b, "onyx_http_connections", "gauge", "Open client connections.");
    evbuffer_add_printf(b, "onyx_http_connections %lld\n", (long long)connections);
    head(b, "onyx_inference_queue_length", "gauge", "Inference requests waiting for a worker.");
    evbuffer_add_printf(b, "onyx_inference_queue_length %lld\n", (long long)queued);
    head(b, "onyx_models_loaded", "gauge", "Model versions loaded and serving.");
    evbuffer_add_printf(b, "onyx_models_loaded %d\n", loaded);
    head(b, "onyx_model_ready", "gauge", "1 for each loaded model version.");
    for (int i = 0; list && i < nmodels; i++)
        for (int k = 0; k < list[i].n_versions; k++) {
            evbuffer_add(b, "onyx_model_ready{model=\"", 24);
            label(b, list[i].name);
            evbuffer_add_printf(b, "\",version=\"%lld\"} 1\n",
                                (long long)list[i].versions[k]->version);
        }
    head(b, "onyx_model_load_error", "gauge",
         "1 for each model whose last load attempt failed (older versions may still serve).");
    for (int i = 0; list && i < nmodels; i++) {
        evbuffer_add(b, "onyx_model_load_error{model=\"", 29);
        label(b, list[i].name);
        evbuffer_add_printf(b, "\"} %d\n", list[i].error ? 1 : 0);
    }
    for (int i = 0; list && i < nmodels; i++)
        onyx_repo_info_free(&list[i]);
    free(list);
}

// ----------------------------------------------------------------------------
// Triton's statistics extension (JSON)

static void stat_pair(struct evbuffer *b, const char *name, uint64_t count, uint64_t ns,
                      bool comma) {
    evbuffer_add_printf(b, "%s\"%s\":{\"count\":%llu,\"ns\":%llu}", comma ? "," : "", name,
                        (unsigned long long)count, (unsigned long long)ns);
}

int onyx_metrics_stats_json(onyx_metrics *m, struct evbuffer *b, onyx_repo *repo,
                            const char *name, int64_t version) {
    int n = 0;
    onyx_model_info *list = onyx_repo_list(repo, &n);
    int found = 0;
    evbuffer_add(b, "{\"model_stats\":[", 16);
    pthread_mutex_lock(&m->mu);
    for (int i = 0; list && i < n; i++) {
        if (name && strcmp(list[i].name, name) != 0) continue;
        for (int k = 0; k < list[i].n_versions; k++) {
            int64_t v = list[i].versions[k]->version;
            if (version > 0 && v != version) continue;
            const model_stats *st = NULL;
            for (int q = 0; q < m->n; q++)
                if (m->m[q].version == v && strcmp(m->m[q].model, list[i].name) == 0) st = &m->m[q];
            model_stats zero;
            memset(&zero, 0, sizeof zero);
            if (!st) st = &zero;
            uint64_t fails = 0;
            for (int r = 0; r < N_REASONS; r++) fails += st->failure[r];
            evbuffer_add(b, found ? ",{\"name\":" : "{\"name\":", found ? 9 : 8);
            onyx_json_quote(b, list[i].name, strlen(list[i].name));
            evbuffer_add_printf(b,
                                ",\"version\":\"%lld\",\"last_inference\":%lld,"
                                "\"inference_count\":%llu,\"execution_count\":%llu,"
                                "\"inference_stats\":{",
                                (long long)v, (long long)st->last_ms,
                                (unsigned long long)st->inferences,
                                (unsigned long long)st->executions);
            stat_pair(b, "success", st->success, st->success_ns, false);
            stat_pair(b, "fail", fails, st->failure_ns, true);
            stat_pair(b, "queue", st->success + fails, st->queue_us * 1000, true);
            stat_pair(b, "compute_input", st->success, 0, true);
            stat_pair(b, "compute_infer", st->success, st->compute_us * 1000, true);
            stat_pair(b, "compute_output", st->success, 0, true);
            evbuffer_add(b, "},\"batch_stats\":[]}", 19);
            found++;
        }
    }
    pthread_mutex_unlock(&m->mu);
    evbuffer_add(b, "]}", 2);
    for (int i = 0; list && i < n; i++) onyx_repo_info_free(&list[i]);
    free(list);
    return found;
}
