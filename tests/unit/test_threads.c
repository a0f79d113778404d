/* test_threads.c — one model shared by several threads, one context each: every thread
 * must reproduce the single-threaded result exactly (the engine is read-only). */
#include "kiln.h"
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define N_THREADS 4
#define N_RUNS 25

static kiln_model *model;
static float input[2 * 3 * 8 * 8];
static float expected[2 * 10];
static int thread_failures[N_THREADS];

static int run_once(kiln_context *c, float *out)
{
    int64_t dims[4] = {2, 3, 8, 8};
    kiln_tensor_view v;
    if (kiln_context_set_input(c, "x", KILN_DTYPE_FLOAT, 4, dims, input, sizeof input)) return -1;
    if (kiln_context_run(c)) return -1;
    if (kiln_context_get_output(c, "y", &v) || v.nbytes != sizeof expected) return -1;
    memcpy(out, v.data, sizeof expected);
    return 0;
}

static void *worker(void *arg)
{
    int id = (int)(long)arg;
    kiln_context *c = NULL;
    float out[20];
    if (kiln_context_create(model, &c)) { thread_failures[id] = N_RUNS; return NULL; }
    for (int r = 0; r < N_RUNS; r++)
        if (run_once(c, out) || memcmp(out, expected, sizeof out)) thread_failures[id]++;
    kiln_context_destroy(c);
    return NULL;
}

int main(void)
{
    int passed = 0, failed = 0;
    for (size_t i = 0; i < sizeof input / sizeof input[0]; i++) input[i] = (float)((i * 37) % 17) / 17.0f - 0.5f;
    if (kiln_model_load_file("tests/data/symbolic_batch.onnx", NULL, &model)) {
        printf("load: %s\n0 passed, 1 failed\n", kiln_last_error());
        return 1;
    }
    kiln_context *c = NULL;
    if (kiln_context_create(model, &c) || run_once(c, expected)) {
        printf("reference run: %s\n0 passed, 1 failed\n", kiln_last_error());
        return 1;
    }
    kiln_context_destroy(c);
    pthread_t th[N_THREADS];
    for (long i = 0; i < N_THREADS; i++) pthread_create(&th[i], NULL, worker, (void *)i);
    for (int i = 0; i < N_THREADS; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < N_THREADS; i++) {
        if (thread_failures[i]) { failed++; printf("FAIL thread %d: %d of %d runs differ or failed\n", i, thread_failures[i], N_RUNS); }
        else passed++;
    }
    kiln_model_destroy(model);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
