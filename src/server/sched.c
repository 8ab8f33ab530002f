/* sched.c - the inference worker pool: one FIFO of jobs, `workers` threads,
 * each with its own session per model version. A worker takes the oldest job
 * whose version has a free instance, parses it (prepare), merges compatible
 * jobs of a dynamically batched version up to max_batch_size within the
 * queue delay, runs the model once, splits the outputs and answers (finish).
 *
 * Owns: queueing, batching, deadlines (a watchdog aborts overdue runs).
 * Does not own: protocols (their prepare/finish), the models (repo.c).
 */
#include "core/tensor.h"
#include "server/server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct worker {
    struct onyx_sched *s;
    int id;
    pthread_t thread;
    pthread_mutex_t mu; /* guards cur/deadline against the watchdog */
    onyx_session *cur;  /* the session running now, or NULL */
    int64_t deadline;   /* of the current run, 0: none */
    bool aborted;
} worker;

struct onyx_sched {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    onyx_job *head, *tail;
    int64_t queued;
    int max_queue;
    bool stop;
    int n_workers;
    worker *w;
    const onyx_slog *log;
    onyx_metrics *metrics;
};

// ----------------------------------------------------------------------------
// Queue (callers hold s->mu)

static void unlink_job(onyx_sched *s, onyx_job *j) {
    if (j->prev)
        j->prev->next = j->next;
    else
        s->head = j->next;
    if (j->next)
        j->next->prev = j->prev;
    else
        s->tail = j->prev;
    j->next = j->prev = NULL;
    s->queued--;
}

static void push_front(onyx_sched *s, onyx_job *j) {
    j->prev = NULL;
    j->next = s->head;
    if (s->head)
        s->head->prev = j;
    else
        s->tail = j;
    s->head = j;
    s->queued++;
}

static bool has_capacity(const onyx_model_version *v) {
    return v->cfg.instance_count <= 0 || atomic_load(&v->running) < v->cfg.instance_count;
}

static onyx_job *pick(onyx_sched *s) {
    for (onyx_job *j = s->head; j; j = j->next)
        if (has_capacity(j->ver)) return j;
    return NULL;
}

bool onyx_sched_submit(onyx_sched *s, onyx_job *j) {
    pthread_mutex_lock(&s->mu);
    if (s->queued >= s->max_queue || s->stop) {
        pthread_mutex_unlock(&s->mu);
        return false;
    }
    j->enqueue_ns = onyx_now_ns();
    j->prev = s->tail;
    j->next = NULL;
    if (s->tail)
        s->tail->next = j;
    else
        s->head = j;
    s->tail = j;
    s->queued++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return true;
}

int64_t onyx_sched_queued(onyx_sched *s) {
    pthread_mutex_lock(&s->mu);
    int64_t n = s->queued;
    pthread_mutex_unlock(&s->mu);
    return n;
}

// ----------------------------------------------------------------------------
// Completion

static const char *reason_of(int status) {
    switch (status) {
    case 400:
        return "bad_request";
    case 404:
        return "not_found";
    case 503:
        return "unavailable";
    case 504:
        return "timeout";
    default:
        return "internal";
    }
}

static void complete(onyx_sched *s, onyx_job *j, int status, const char *err,
                     const onyx_job_output *outs, int n) {
    j->end_ns = onyx_now_ns();
    int64_t items = j->batch > 0 ? j->batch : 1;
    int64_t queue_ns = (j->start_ns ? j->start_ns : j->end_ns) - j->enqueue_ns;
    onyx_metrics_request(s->metrics, j->ver->name, j->ver->version, status == 0, reason_of(status),
                         items, queue_ns, j->compute_ns, j->end_ns - j->enqueue_ns);
    j->ops->finish(j, status, err, outs, n);
    onyx_version_release(j->ver);
    free(j);
}

// ----------------------------------------------------------------------------
// Batching

static bool same_inputs(const onyx_job *a, const onyx_job *b) {
    if (a->in.n != b->in.n || a->in.n_outputs != b->in.n_outputs) return false;
    for (int i = 0; i < a->in.n_outputs; i++)
        if (strcmp(a->in.outputs[i], b->in.outputs[i]) != 0) return false;
    for (int i = 0; i < a->in.n; i++) {
        const onyx_tensor_view *x = &a->in.views[i], *y = &b->in.views[i];
        if (strcmp(a->in.names[i], b->in.names[i]) != 0 || x->dtype != y->dtype ||
            x->ndim != y->ndim || x->ndim < 1)
            return false;
        for (int d = 1; d < x->ndim; d++)
            if (x->dims[d] != y->dims[d]) return false;
    }
    return true;
}

static int prepare(onyx_sched *s, onyx_job *j) {
    (void)s;
    char err[512] = "";
    int st = j->ops->prepare(j, &j->in, err, sizeof err);
    if (st) {
        complete(s, j, st, err, NULL, 0);
        return -1;
    }
    j->prepared = true;
    const onyx_model_config *c = &j->ver->cfg;
    j->batch = 0;
    if (c->max_batch_size > 0 && j->in.n > 0) {
        j->batch = j->in.views[0].ndim > 0 ? j->in.views[0].dims[0] : 0;
        for (int i = 0; i < j->in.n; i++) {
            if (j->in.views[i].ndim < 1 || j->in.views[i].dims[0] != j->batch) {
                snprintf(err, sizeof err,
                         "input '%s': every input of model '%s' needs the same batch size as its "
                         "first dimension",
                         j->in.names[i], j->ver->name);
                complete(s, j, 400, err, NULL, 0);
                return -1;
            }
        }
        if (j->batch > c->max_batch_size || j->batch < 1) {
            snprintf(err, sizeof err,
                     "inference request batch-size must be <= %d for '%s' (got %lld)",
                     c->max_batch_size, j->ver->name, (long long)j->batch);
            complete(s, j, 400, err, NULL, 0);
            return -1;
        }
    }
    return 0;
}

/* Adds compatible queued jobs of the same version to jobs[0..*n). */
static void gather(onyx_sched *s, onyx_job **jobs, int *n, int64_t *total) {
    onyx_model_version *v = jobs[0]->ver;
    const onyx_model_config *c = &v->cfg;
    int64_t target = c->max_batch_size;
    if (c->n_preferred) {
        target = 0;
        for (int i = 0; i < c->n_preferred; i++)
            if (c->preferred[i] > target) target = c->preferred[i];
    }
    int64_t until = jobs[0]->enqueue_ns + c->max_queue_delay_us * 1000;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        bool restart = false;
        for (onyx_job *q = s->head; q && *total < c->max_batch_size; q = q->next) {
            if (q->ver != v) continue;
            if (q->prepared) {
                if (same_inputs(jobs[0], q) && *total + q->batch <= c->max_batch_size) {
                    unlink_job(s, q);
                    q->start_ns = onyx_now_ns();
                    jobs[(*n)++] = q;
                    *total += q->batch;
                    restart = true;
                    break;
                }
                continue;
            }
            unlink_job(s, q);
            q->start_ns = onyx_now_ns();
            pthread_mutex_unlock(&s->mu);
            int bad = prepare(s, q);
            pthread_mutex_lock(&s->mu);
            if (!bad) {
                if (same_inputs(jobs[0], q) && *total + q->batch <= c->max_batch_size) {
                    jobs[(*n)++] = q;
                    *total += q->batch;
                } else {
                    q->start_ns = 0;
                    push_front(s, q); /* another worker or a later batch takes it */
                    pthread_cond_broadcast(&s->cv);
                }
            }
            restart = true;
            break;
        }
        if (restart && *total < c->max_batch_size) continue;
        int64_t now = onyx_now_ns();
        if (*total >= target || now >= until || s->stop) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t wait = until - now;
        ts.tv_sec += wait / 1000000000;
        ts.tv_nsec += wait % 1000000000;
        if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
}

// ----------------------------------------------------------------------------
// Running

static void fail_all(onyx_sched *s, onyx_job **jobs, int n, int status, const char *msg) {
    for (int i = 0; i < n; i++)
        complete(s, jobs[i], status, msg, NULL, 0);
}

static void run_jobs(worker *w, onyx_job **jobs, int n, int64_t total) {
    onyx_sched *s = w->s;
    onyx_job *j0 = jobs[0];
    onyx_model_version *v = j0->ver;
    onyx_error e;
    memset(&e, 0, sizeof e);
    char msg[700];
    void **tmp = NULL;
    onyx_value *vals = NULL;
    const onyx_value **vptr = NULL, **outs = NULL;
    onyx_job_output *jo = NULL;
    int n_in = j0->in.n;
    int n_out = j0->in.n_outputs ? j0->in.n_outputs : v->n_outputs;

    onyx_session *sess = onyx_version_session(v, w->id, &e);
    if (!sess) {
        snprintf(msg, sizeof msg, "cannot create a session for '%s': %s", v->name, e.message);
        fail_all(s, jobs, n, 500, msg);
        return;
    }
    tmp = calloc((size_t)n_in + 1, sizeof *tmp);
    vals = calloc((size_t)n_in + 1, sizeof *vals);
    vptr = calloc((size_t)n_in + 1, sizeof *vptr);
    outs = calloc((size_t)n_out + 1, sizeof *outs);
    jo = calloc((size_t)n_out + 1, sizeof *jo);
    if (!tmp || !vals || !vptr || !outs || !jo) {
        fail_all(s, jobs, n, 503, "out of memory");
        goto done;
    }
    for (int i = 0; i < n_in; i++) {
        onyx_tensor_view tv = j0->in.views[i];
        if (n > 1) { /* concatenate along dim 0 */
            size_t row = onyx_dtype_size(tv.dtype);
            for (int d = 1; d < tv.ndim; d++)
                row *= (size_t)tv.dims[d];
            tmp[i] = malloc(row * (size_t)total + 1);
            if (!tmp[i]) {
                fail_all(s, jobs, n, 503, "out of memory for the batch");
                goto done;
            }
            size_t off = 0;
            for (int k = 0; k < n; k++) {
                size_t bytes = row * (size_t)jobs[k]->batch;
                if (bytes) memcpy((char *)tmp[i] + off, jobs[k]->in.views[i].data, bytes);
                off += bytes;
            }
            tv.dims[0] = total;
            tv.data = tmp[i];
        }
        vals[i].kind = ONYX_KIND_TENSOR;
        vals[i].tensor.dtype = tv.dtype;
        vals[i].tensor.ndim = tv.ndim;
        memcpy(vals[i].tensor.dims, tv.dims, sizeof tv.dims);
        vals[i].tensor.data = tv.data;
        vptr[i] = &vals[i];
    }
    int64_t deadline = 0;
    for (int k = 0; k < n; k++)
        if (jobs[k]->deadline_ns && (!deadline || jobs[k]->deadline_ns < deadline))
            deadline = jobs[k]->deadline_ns;
    pthread_mutex_lock(&w->mu);
    w->cur = sess;
    w->deadline = deadline;
    w->aborted = false;
    pthread_mutex_unlock(&w->mu);
    int64_t t0 = onyx_now_ns();
    onyx_status st = onyx_session_run(sess, n_in, j0->in.names, vptr, n_out,
                                      j0->in.n_outputs ? j0->in.outputs : NULL, outs, &e);
    int64_t t1 = onyx_now_ns();
    pthread_mutex_lock(&w->mu);
    bool timed_out = w->aborted;
    w->cur = NULL;
    w->deadline = 0;
    pthread_mutex_unlock(&w->mu);
    for (int k = 0; k < n; k++)
        jobs[k]->compute_ns = t1 - t0, jobs[k]->batch_total = total;
    onyx_metrics_exec(s->metrics, v->name, v->version, n > 1 || total > 0 ? total : 1);
    if (st != ONYX_OK) {
        if (st == ONYX_ERR_CANCELLED && timed_out)
            snprintf(msg, sizeof msg,
                     "request timed out while running on '%s' (--request-timeout-ms)", v->name);
        else
            snprintf(msg, sizeof msg, "%s", e.message);
        int code = st == ONYX_ERR_CANCELLED ? 503 : onyx_http_status_of(st);
        fail_all(s, jobs, n, code, msg);
        goto done;
    }
    const char *const *onames = j0->in.n_outputs ? j0->in.outputs : NULL;
    for (int o = 0; o < n_out; o++) {
        jo[o].name = onames ? onames[o] : v->outputs[o].name;
        jo[o].value = outs[o];
        jo[o].is_tensor = onyx_value_kind(outs[o]) == ONYX_KIND_TENSOR;
        if (jo[o].is_tensor) onyx_value_tensor(outs[o], &jo[o].view);
    }
    if (n == 1) {
        complete(s, j0, 0, NULL, jo, n_out);
        goto done;
    }
    for (int o = 0; o < n_out; o++) {
        if (!jo[o].is_tensor || jo[o].view.ndim < 1 || jo[o].view.dims[0] != total) {
            snprintf(msg, sizeof msg,
                     "output '%s' of '%s' has no batch dimension of %lld: the batched requests "
                     "cannot be split (set max_batch_size 0)",
                     jo[o].name, v->name, (long long)total);
            fail_all(s, jobs, n, 500, msg);
            goto done;
        }
    }
    int64_t at = 0;
    for (int k = 0; k < n; k++) {
        onyx_job_output *part = calloc((size_t)n_out + 1, sizeof *part);
        if (!part) {
            complete(s, jobs[k], 503, "out of memory", NULL, 0);
            at += jobs[k]->batch;
            continue;
        }
        for (int o = 0; o < n_out; o++) {
            part[o] = jo[o];
            part[o].value = NULL;
            size_t row = onyx_dtype_size(jo[o].view.dtype);
            for (int d = 1; d < jo[o].view.ndim; d++)
                row *= (size_t)jo[o].view.dims[d];
            part[o].view.dims[0] = jobs[k]->batch;
            part[o].view.data = (char *)jo[o].view.data + row * (size_t)at;
        }
        at += jobs[k]->batch;
        complete(s, jobs[k], 0, NULL, part, n_out);
        free(part);
    }
done:
    if (tmp)
        for (int i = 0; i < n_in; i++)
            free(tmp[i]);
    free(tmp);
    free(vals);
    free(vptr);
    free(outs);
    free(jo);
}

static void process(worker *w, onyx_job *j) {
    onyx_sched *s = w->s;
    if (j->deadline_ns && onyx_now_ns() > j->deadline_ns) {
        complete(s, j, 503, "request timed out while waiting in the queue (--request-timeout-ms)",
                 NULL, 0);
        return;
    }
    if (!j->prepared && prepare(s, j)) return;
    const onyx_model_config *c = &j->ver->cfg;
    int cap = c->max_batch_size > 0 && c->dynamic_batching ? c->max_batch_size : 1;
    onyx_job **jobs = calloc((size_t)cap, sizeof *jobs);
    if (!jobs) {
        complete(s, j, 503, "out of memory", NULL, 0);
        return;
    }
    jobs[0] = j;
    int n = 1;
    int64_t total = j->batch;
    if (cap > 1 && total < c->max_batch_size) gather(s, jobs, &n, &total);
    run_jobs(w, jobs, n, total);
    free(jobs);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    onyx_sched *s = w->s;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        onyx_job *j = pick(s);
        if (!j) {
            if (s->stop && !s->head) break;
            pthread_cond_wait(&s->cv, &s->mu);
            continue;
        }
        unlink_job(s, j);
        j->start_ns = onyx_now_ns();
        onyx_model_version *v = j->ver;
        onyx_version_retain(v);
        atomic_fetch_add(&v->running, 1);
        pthread_mutex_unlock(&s->mu);
        process(w, j);
        atomic_fetch_sub(&v->running, 1);
        onyx_version_release(v);
        pthread_mutex_lock(&s->mu);
        pthread_cond_broadcast(&s->cv); /* an instance became free */
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

void onyx_sched_watchdog(onyx_sched *s) {
    int64_t now = onyx_now_ns();
    for (int i = 0; i < s->n_workers; i++) {
        worker *w = &s->w[i];
        pthread_mutex_lock(&w->mu);
        if (w->cur && w->deadline && now > w->deadline && !w->aborted) {
            onyx_session_abort(w->cur);
            w->aborted = true;
        }
        pthread_mutex_unlock(&w->mu);
    }
}

onyx_sched *onyx_sched_new(int workers, int max_queue, const onyx_slog *log, onyx_metrics *m) {
    onyx_sched *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->max_queue = max_queue;
    s->log = log;
    s->metrics = m;
    s->w = calloc((size_t)workers, sizeof *s->w);
    if (!s->w) {
        free(s);
        return NULL;
    }
    for (int i = 0; i < workers; i++) {
        worker *w = &s->w[i];
        w->s = s;
        w->id = i;
        pthread_mutex_init(&w->mu, NULL);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            SLOG(log, ONYX_LOG_ERROR, "cannot start worker thread %d", i);
            pthread_mutex_destroy(&w->mu);
            break;
        }
        s->n_workers++;
    }
    if (s->n_workers == 0) {
        onyx_sched_free(s);
        return NULL;
    }
    return s;
}

void onyx_sched_free(onyx_sched *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < s->n_workers; i++) {
        pthread_join(s->w[i].thread, NULL);
        pthread_mutex_destroy(&s->w[i].mu);
    }
    free(s->w);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
