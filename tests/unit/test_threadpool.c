/* test_threadpool.c — core_threadpool under stress: pools of 2 to 4 threads, random job
 * sizes and tile sizes, random work per tile and pauses long enough for workers to fall
 * asleep between jobs; every index of every job must run exactly once. Also run under TSan
 * (tests/run_tsan.sh). */
#include "core/threadpool.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int passed, failed;

typedef struct {
    int *hits;
    int64_t n;
    int spin;
} tp_job;

static void tp_fn(void *a, int64_t b, int64_t e)
{
    tp_job *j = a;
    for (int64_t i = b; i < e; i++) __atomic_add_fetch(&j->hits[i], 1, __ATOMIC_RELAXED);
    volatile int x = 0;
    for (int k = 0; k < j->spin; k++) x = x + k;
    (void)x;
}

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 4000;
    unsigned seed = 12345;
    int *hits = malloc(sizeof(int) * 3000);
    if (!hits) return 1;
    for (int nt = 1; nt <= 4; nt++) {
        core_threadpool *p = core_threadpool_create(nt);
        if (!p) { failed++; printf("FAIL: pool of %d threads\n", nt); continue; }
        int bad = 0;
        for (int it = 0; it < iters; it++) {
            seed = seed * 1103515245u + 12345u;
            int64_t n = 1 + (seed >> 8) % 3000;
            int64_t tile = (seed >> 20) % 5 == 0 ? 0 : 1 + (seed >> 4) % 97;
            memset(hits, 0, sizeof(int) * (size_t)n);
            tp_job j = {hits, n, (int)((seed >> 12) % 200)};
            core_threadpool_parallel_for(p, n, tile, tp_fn, &j);
            for (int64_t i = 0; i < n; i++)
                if (hits[i] != 1) {
                    if (bad++ < 5)
                        printf("FAIL threads %d job %d (n %lld, tile %lld): index %lld ran %d times\n", nt, it,
                               (long long)n, (long long)tile, (long long)i, hits[i]);
                    break;
                }
            if ((seed >> 16) % 500 == 0) usleep(300 + (seed >> 9) % 300); /* workers fall asleep */
        }
        if (bad) failed++;
        else passed++;
        core_threadpool_destroy(p);
    }
    free(hits);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
