/* threadpool.h — a fixed set of worker threads that split loops into tiles. The caller
 * takes part, so a pool of N threads uses N-1 workers plus the calling thread; idle
 * workers sleep (no spinning beyond a short grace period), and the caller never waits for
 * a sleeping worker to wake: it runs the tiles nobody has taken itself. One pool serves one
 * context, used by one thread at a time. */
#ifndef KILN_THREADPOOL_H
#define KILN_THREADPOOL_H

#include "core/core.h"

typedef struct core_threadpool core_threadpool;

/* n_threads >= 1 (the exact number of threads that will run work). NULL on failure. */
core_threadpool *core_threadpool_create(int n_threads);
void core_threadpool_destroy(core_threadpool *pool);
int core_threadpool_size(const core_threadpool *pool); /* 1 for NULL */

/* Calls fn(arg, begin, end) over disjoint ranges covering [0, n), each of at most `tile`
 * items (tile <= 0: n split evenly into about 4 tiles per thread), and returns when all
 * are done. pool NULL or size 1: runs fn(arg, 0, n) inline. Not reentrant: fn must not
 * call parallel_for on the same pool. */
void core_threadpool_parallel_for(core_threadpool *pool, int64_t n, int64_t tile,
                                  void (*fn)(void *arg, int64_t begin, int64_t end), void *arg);

/* Physical cores of this machine (the default thread count), at least 1. */
int core_physical_cores(void);

#endif
