/* pool.h - the fixed thread pool that kernels split work on.
 *
 * Owns: worker threads and parallel-for. Workers spin briefly after a job,
 * then sleep on a condition variable, so an idle pool burns no CPU. Does not
 * own: what the work is (kernels pass a function and a context). */
#ifndef ONYX_POOL_H
#define ONYX_POOL_H

#include <stdint.h>

typedef struct onyx_pool onyx_pool;

/* Processes items [begin, end); `thread` is in [0, threads). */
typedef void (*onyx_task_fn)(void *ctx, int64_t begin, int64_t end, int thread);

/* A pool of `threads` threads in all, the caller of onyx_pool_run included
 * (so threads - 1 workers). Returns NULL when threads cannot be created.
 * Free with onyx_pool_free (accepts NULL). */
onyx_pool *onyx_pool_new(int threads);
void onyx_pool_free(onyx_pool *p);
int onyx_pool_threads(const onyx_pool *p);

/* Runs fn over [0, n) in chunks of at least `grain` items on all threads and
 * returns when every item is done. p may be NULL (runs inline). Not
 * reentrant: a task must not call onyx_pool_run on the same pool (nested
 * calls run inline). */
void onyx_pool_run(onyx_pool *p, int64_t n, int64_t grain, onyx_task_fn fn, void *ctx);

#endif
