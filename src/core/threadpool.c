/* threadpool.c — worker threads that split a loop into tiles; the caller takes part. */
#include "core/threadpool.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct core_threadpool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    /* the current job */
    void (*fn)(void *, int64_t, int64_t);
    void *arg;
    int64_t n, tile, n_tiles;
    int64_t next_tile;     /* atomic: next tile to take */
    int active;            /* workers still inside the current job */
    uint64_t generation;   /* bumps when a job is posted */
    bool stop;
};

static void pool_work(core_threadpool *p)
{
    for (;;) {
        int64_t t = __atomic_fetch_add(&p->next_tile, 1, __ATOMIC_RELAXED);
        if (t >= p->n_tiles) break;
        int64_t b = t * p->tile, e = b + p->tile;
        if (e > p->n) e = p->n;
        p->fn(p->arg, b, e);
    }
}

static void *pool_main(void *arg)
{
    core_threadpool *p = arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->work_cv, &p->mu);
        if (p->stop) break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        pool_work(p);
        pthread_mutex_lock(&p->mu);
        if (--p->active == 0) pthread_cond_signal(&p->done_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

core_threadpool *core_threadpool_create(int n_threads)
{
    if (n_threads < 1) n_threads = 1;
    core_threadpool *p = calloc(1, sizeof *p);
    if (!p) { core_oom(); return NULL; }
    p->n_threads = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work_cv, NULL);
    pthread_cond_init(&p->done_cv, NULL);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
        if (!p->threads) { core_threadpool_destroy(p); core_oom(); return NULL; }
        for (int i = 0; i < n_threads - 1; i++) {
            if (pthread_create(&p->threads[i], NULL, pool_main, p)) {
                p->n_threads = i + 1; /* destroy joins the ones that started */
                core_threadpool_destroy(p);
                core_error(KILN_ERR_RUNTIME, "cannot start worker thread %d of %d", i + 1, n_threads - 1);
                return NULL;
            }
        }
    }
    return p;
}

void core_threadpool_destroy(core_threadpool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; p->threads && i < p->n_threads - 1; i++) pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work_cv);
    pthread_cond_destroy(&p->done_cv);
    free(p);
}

int core_threadpool_size(const core_threadpool *p) { return p ? p->n_threads : 1; }

void core_threadpool_parallel_for(core_threadpool *p, int64_t n, int64_t tile,
                                  void (*fn)(void *arg, int64_t begin, int64_t end), void *arg)
{
    if (n <= 0) return;
    if (!p || p->n_threads == 1) { fn(arg, 0, n); return; }
    if (tile <= 0) {
        int64_t want = (int64_t)p->n_threads * 4;
        tile = (n + want - 1) / want;
    }
    int64_t n_tiles = (n + tile - 1) / tile;
    if (n_tiles == 1) { fn(arg, 0, n); return; }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->tile = tile;
    p->n_tiles = n_tiles;
    p->next_tile = 0;
    p->active = p->n_threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    pool_work(p);
    pthread_mutex_lock(&p->mu);
    while (p->active > 0) pthread_cond_wait(&p->done_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

int core_physical_cores(void)
{
    /* Count distinct (physical id, core id) pairs; fall back to online CPUs. */
    FILE *f = fopen("/proc/cpuinfo", "r");
    int n = 0;
    if (f) {
        char line[256];
        int phys = 0, pairs[1024][2], np = 0;
        while (fgets(line, sizeof line, f)) {
            int v;
            if (sscanf(line, "physical id : %d", &v) == 1) phys = v;
            else if (sscanf(line, "core id : %d", &v) == 1) {
                bool seen = false;
                for (int i = 0; i < np; i++) if (pairs[i][0] == phys && pairs[i][1] == v) seen = true;
                if (!seen && np < 1024) { pairs[np][0] = phys; pairs[np][1] = v; np++; }
            }
        }
        fclose(f);
        n = np;
    }
    if (n <= 0) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}
