/* threadpool.c — worker threads that split a loop into tiles; the caller takes part.
 * Between jobs a worker spins for a short while (jobs of one inference come every few
 * microseconds, and a futex wake-up costs more than that) and then sleeps on a condition
 * variable, so an idle pool uses no CPU. */
#include "core/threadpool.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define POOL_PAUSE() _mm_pause()
#else
#define POOL_PAUSE() ((void)0)
#endif

/* How long an idle thread polls before sleeping. */
#define POOL_SPIN_NS 100000L

struct core_threadpool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    /* the current job; written by the caller before `generation` is bumped */
    void (*fn)(void *, int64_t, int64_t);
    void *arg;
    int64_t n, tile, n_tiles;
    int64_t next_tile;     /* atomic: next tile to take */
    int active;            /* atomic: workers still inside the current job */
    uint64_t generation;   /* atomic: bumped when a job is posted */
    int sleepers;          /* under mu: workers waiting on work_cv */
    bool caller_waiting;   /* under mu: the caller waits on done_cv */
    bool stop;             /* atomic */
};

static int64_t pool_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

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

/* Wait until the generation differs from `seen` (or stop); spin first, then sleep. */
static void pool_wait_work(core_threadpool *p, uint64_t seen)
{
    int64_t until = pool_now_ns() + POOL_SPIN_NS;
    for (int i = 0;; i++) {
        if (__atomic_load_n(&p->generation, __ATOMIC_ACQUIRE) != seen || __atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
            return;
        POOL_PAUSE();
        if ((i & 255) == 255 && pool_now_ns() > until) break;
    }
    pthread_mutex_lock(&p->mu);
    p->sleepers++;
    while (__atomic_load_n(&p->generation, __ATOMIC_ACQUIRE) == seen && !__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
        pthread_cond_wait(&p->work_cv, &p->mu);
    p->sleepers--;
    pthread_mutex_unlock(&p->mu);
}

static void *pool_main(void *arg)
{
    core_threadpool *p = arg;
    uint64_t seen = 0;
    for (;;) {
        pool_wait_work(p, seen);
        if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) break;
        seen = __atomic_load_n(&p->generation, __ATOMIC_ACQUIRE);
        pool_work(p);
        if (__atomic_sub_fetch(&p->active, 1, __ATOMIC_ACQ_REL) == 0) {
            pthread_mutex_lock(&p->mu);
            if (p->caller_waiting) pthread_cond_signal(&p->done_cv);
            pthread_mutex_unlock(&p->mu);
        }
    }
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
    __atomic_store_n(&p->stop, true, __ATOMIC_RELEASE);
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
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->tile = tile;
    p->n_tiles = n_tiles;
    __atomic_store_n(&p->next_tile, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&p->active, p->n_threads - 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&p->generation, 1, __ATOMIC_RELEASE); /* publishes the job */
    pthread_mutex_lock(&p->mu);
    if (p->sleepers > 0) pthread_cond_broadcast(&p->work_cv);
    pthread_mutex_unlock(&p->mu);
    pool_work(p);
    int64_t until = pool_now_ns() + POOL_SPIN_NS;
    for (int i = 0; __atomic_load_n(&p->active, __ATOMIC_ACQUIRE) > 0; i++) {
        POOL_PAUSE();
        if ((i & 255) == 255 && pool_now_ns() > until) {
            pthread_mutex_lock(&p->mu);
            p->caller_waiting = true;
            while (__atomic_load_n(&p->active, __ATOMIC_ACQUIRE) > 0) pthread_cond_wait(&p->done_cv, &p->mu);
            p->caller_waiting = false;
            pthread_mutex_unlock(&p->mu);
            break;
        }
    }
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
