/* pool.c - fixed worker threads with spin-then-sleep; see pool.h. */
#include "base/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

enum { SPIN_ROUNDS = 20000 };

typedef struct worker {
    onyx_pool *pool;
    int index;
    pthread_t thread;
} worker;

struct onyx_pool {
    int threads;
    worker *workers; /* (threads - 1) */
    pthread_mutex_t mu;
    pthread_cond_t wake;
    atomic_uint generation; /* bumped for each job */
    atomic_int stop;
    atomic_int busy;        /* 1 while a job runs: nested runs go inline */
    /* current job */
    onyx_task_fn fn;
    void *ctx;
    int64_t n, chunk;
    atomic_llong next;      /* next chunk start */
    atomic_int pending;     /* workers still on the job */
};

static void do_chunks(onyx_pool *p, int thread) {
    for (;;) {
        int64_t b = atomic_fetch_add_explicit(&p->next, p->chunk, memory_order_relaxed);
        if (b >= p->n) break;
        int64_t e = b + p->chunk < p->n ? b + p->chunk : p->n;
        p->fn(p->ctx, b, e, thread);
    }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    onyx_pool *p = w->pool;
    unsigned seen = 0; /* no job can be posted before onyx_pool_new returns */
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
               !atomic_load(&p->stop)) {
            if (++spins < SPIN_ROUNDS) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = g;
        do_chunks(p, w->index);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
}

onyx_pool *onyx_pool_new(int threads) {
    if (threads < 1) threads = 1;
    onyx_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->threads = threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (threads > 1) {
        p->workers = calloc((size_t)threads - 1, sizeof *p->workers);
        if (!p->workers) goto fail;
        for (int i = 0; i < threads - 1; i++) {
            p->workers[i].pool = p;
            p->workers[i].index = i + 1;
            if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i]) != 0) {
                p->threads = i + 1; /* join the ones that started */
                goto fail;
            }
        }
    }
    return p;
fail:
    onyx_pool_free(p);
    return NULL;
}

void onyx_pool_free(onyx_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    if (p->workers)
        for (int i = 0; i < p->threads - 1; i++) pthread_join(p->workers[i].thread, NULL);
    free(p->workers);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int onyx_pool_threads(const onyx_pool *p) { return p ? p->threads : 1; }

void onyx_pool_run(onyx_pool *p, int64_t n, int64_t grain, onyx_task_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int busy = 0;
    if (!p || p->threads == 1 || n <= grain ||
        !atomic_compare_exchange_strong(&p->busy, &busy, 1)) {
        fn(ctx, 0, n, 0);
        return;
    }
    /* Chunks: about 4 per thread for balance, never below `grain`. */
    int64_t chunk = (n + (int64_t)p->threads * 4 - 1) / ((int64_t)p->threads * 4);
    if (chunk < grain) chunk = grain;
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->chunk = chunk;
    atomic_store(&p->next, 0);
    atomic_store(&p->pending, p->threads - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    do_chunks(p, 0);
    /* Wait for the workers; after a bounded spin, yield the core: a worker
     * that was descheduled (an oversubscribed machine) needs it to finish. */
    for (int spins = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; spins++) {
        if (spins < SPIN_ROUNDS)
            cpu_relax();
        else
            sched_yield();
    }
    atomic_store(&p->busy, 0);
}
