/* scratch.c — per-thread scratch buffers for the fast kernels' packing and transform
 * space: grown on demand, kept for the thread's life (freed by a pthread key destructor),
 * so the run path does not malloc (and page-fault) several MB per GEMM call. */
#include "cpu/cpu.h"
#include <pthread.h>
#include <stdlib.h>

#define CPU_SCRATCH_SLOTS 4

typedef struct cpu_scratch_set {
    float *buf[CPU_SCRATCH_SLOTS];
    size_t cap[CPU_SCRATCH_SLOTS]; /* floats */
} cpu_scratch_set;

static pthread_key_t cpu_scratch_key;
static pthread_once_t cpu_scratch_once = PTHREAD_ONCE_INIT;
static int cpu_scratch_key_ok;

static void cpu_scratch_free(void *p)
{
    cpu_scratch_set *s = p;
    for (int i = 0; s && i < CPU_SCRATCH_SLOTS; i++) free(s->buf[i]);
    free(s);
}

static void cpu_scratch_init(void) { cpu_scratch_key_ok = pthread_key_create(&cpu_scratch_key, cpu_scratch_free) == 0; }

float *cpu_scratch_floats(int slot, size_t n)
{
    pthread_once(&cpu_scratch_once, cpu_scratch_init);
    if (!cpu_scratch_key_ok || slot < 0 || slot >= CPU_SCRATCH_SLOTS) return NULL;
    cpu_scratch_set *s = pthread_getspecific(cpu_scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || pthread_setspecific(cpu_scratch_key, s)) { free(s); return NULL; }
    }
    if (n == 0) n = 1;
    if (n > s->cap[slot]) {
        size_t want = n + n / 4; /* some headroom: shapes vary a little between layers */
        float *p = cpu_alloc_floats(want);
        if (!p) return NULL;
        free(s->buf[slot]);
        s->buf[slot] = p;
        s->cap[slot] = want;
    }
    return s->buf[slot];
}
