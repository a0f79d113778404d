/* threadpool.c — worker threads that split a loop into tiles; the caller takes part.
 *
 * A job is posted by bumping `posted`; workers take tiles from a shared counter. The caller
 * never waits for a worker to arrive: it takes tiles itself, and once every tile is claimed
 * it closes the job and waits only for tiles still running. A worker that comes late (it
 * was asleep, or descheduled) finds the job closed and goes back to waiting, so a sleeping
 * worker costs the caller one futex wake-up call, not a wake-up latency.
 *
 * Between jobs a worker spins for a while (the jobs of one inference come every few
 * microseconds, and being woken from a futex costs more than that), then sleeps on a
 * condition variable, so an idle pool uses no CPU.
 *
 * Job fields (fn, arg, n, tile, n_tiles) are written by the caller only while no worker is
 * `inside` a job. A worker enters by incrementing `inside` and then checking that the job
 * it saw posted is still `open`; the caller closes a job (open = 0) before it next checks
 * `inside`. Both sides use sequentially consistent operations there (a Dekker pair): either
 * the caller sees the worker inside and waits for it to leave, or the worker sees the job
 * closed and touches nothing. */
#include "core/threadpool.h"
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
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

/* How long an idle worker polls for the next job before sleeping, and how long the caller
 * polls for running tiles before sleeping. */
#define POOL_SPIN_NS 200000L

#define POOL_SEQ __ATOMIC_SEQ_CST

struct core_threadpool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    /* the current job: written by the caller while the job is closed and nobody is inside */
    void (*fn)(void *, int64_t, int64_t);
    void *arg;
    int64_t n, tile, n_tiles;
    /* what idle workers poll: its own cache line, written once per job */
    alignas(64) uint64_t posted; /* atomic: generation of the last posted job (0: none) */
    uint64_t open;               /* atomic: == posted while its job takes workers, else 0 */
    bool stop;                   /* atomic */
    alignas(64) int64_t next_tile; /* atomic: next tile to take */
    int64_t done_tiles;            /* atomic: tiles finished */
    alignas(64) int inside;        /* atomic: workers that may be reading the job fields */
    int sleepers;                  /* atomic, changed under mu: workers waiting on work_cv */
    bool caller_waiting;           /* atomic, changed under mu: the caller waits on done_cv */
};

static int64_t pool_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Runs tiles of the current job until none is left; returns how many it ran. */
static int64_t pool_work(core_threadpool *p)
{
    int64_t did = 0;
    for (;;) {
        int64_t t = __atomic_fetch_add(&p->next_tile, 1, __ATOMIC_RELAXED);
        if (t >= p->n_tiles) break;
        int64_t b = t * p->tile, e = b + p->tile;
        if (e > p->n) e = p->n;
        p->fn(p->arg, b, e);
        did++;
    }
    return did;
}

/* Wait until a job newer than `seen` is posted (or stop); spin first, then sleep. */
static void pool_wait_work(core_threadpool *p, uint64_t seen)
{
    int64_t until = pool_now_ns() + POOL_SPIN_NS;
    for (int i = 0;; i++) {
        if (__atomic_load_n(&p->posted, __ATOMIC_ACQUIRE) != seen || __atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
            return;
        POOL_PAUSE();
        if ((i & 255) == 255 && pool_now_ns() > until) break;
    }
    pthread_mutex_lock(&p->mu);
    __atomic_add_fetch(&p->sleepers, 1, POOL_SEQ);
    /* seq_cst with the caller's post-then-read-sleepers: one of us sees the other */
    while (__atomic_load_n(&p->posted, POOL_SEQ) == seen && !__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE))
        pthread_cond_wait(&p->work_cv, &p->mu);
    __atomic_sub_fetch(&p->sleepers, 1, POOL_SEQ);
    pthread_mutex_unlock(&p->mu);
}

static void *pool_main(void *arg)
{
    core_threadpool *p = arg;
    uint64_t seen = 0;
    for (;;) {
        pool_wait_work(p, seen);
        if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) break;
        seen = __atomic_load_n(&p->posted, __ATOMIC_ACQUIRE);
        __atomic_add_fetch(&p->inside, 1, POOL_SEQ);
        if (__atomic_load_n(&p->open, POOL_SEQ) == seen) {
            int64_t n_tiles = p->n_tiles;
            int64_t did = pool_work(p);
            if (did > 0 && __atomic_add_fetch(&p->done_tiles, did, POOL_SEQ) == n_tiles &&
                __atomic_load_n(&p->caller_waiting, POOL_SEQ)) {
                pthread_mutex_lock(&p->mu);
                pthread_cond_signal(&p->done_cv);
                pthread_mutex_unlock(&p->mu);
            }
        }
        __atomic_sub_fetch(&p->inside, 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

core_threadpool *core_threadpool_create(int n_threads)
{
    if (n_threads < 1) n_threads = 1;
    core_threadpool *p = aligned_alloc(64, (sizeof *p + 63) & ~(size_t)63);
    if (!p) { core_oom(); return NULL; }
    memset(p, 0, sizeof *p);
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
    __atomic_store_n(&p->stop, true, POOL_SEQ);
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
    /* A worker may still be leaving the previous job (it came late and found it closed):
     * the fields are its until it has left. Almost always already 0. */
    for (int i = 0; __atomic_load_n(&p->inside, POOL_SEQ) > 0; i++) {
        POOL_PAUSE();
        if ((i & 1023) == 1023) sched_yield();
    }
    p->fn = fn;
    p->arg = arg;
    p->n = n;
    p->tile = tile;
    p->n_tiles = n_tiles;
    __atomic_store_n(&p->next_tile, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&p->done_tiles, 0, __ATOMIC_RELAXED);
    uint64_t gen = __atomic_load_n(&p->posted, __ATOMIC_RELAXED) + 1;
    __atomic_store_n(&p->open, gen, __ATOMIC_RELAXED);
    __atomic_store_n(&p->posted, gen, POOL_SEQ); /* publishes the job */
    if (__atomic_load_n(&p->sleepers, POOL_SEQ) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->work_cv);
        pthread_mutex_unlock(&p->mu);
    }
    int64_t did = pool_work(p);
    /* every tile is claimed: latecomers must not enter */
    __atomic_store_n(&p->open, 0, POOL_SEQ);
    if (__atomic_add_fetch(&p->done_tiles, did, POOL_SEQ) == n_tiles) return;
    /* tiles still running on workers: spin, then sleep until the last one signals */
    int64_t until = pool_now_ns() + POOL_SPIN_NS;
    for (int i = 0; __atomic_load_n(&p->done_tiles, __ATOMIC_ACQUIRE) < n_tiles; i++) {
        POOL_PAUSE();
        if ((i & 255) == 255 && pool_now_ns() > until) {
            pthread_mutex_lock(&p->mu);
            __atomic_store_n(&p->caller_waiting, true, POOL_SEQ);
            while (__atomic_load_n(&p->done_tiles, POOL_SEQ) < n_tiles) pthread_cond_wait(&p->done_cv, &p->mu);
            __atomic_store_n(&p->caller_waiting, false, __ATOMIC_RELAXED);
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
