/* cache.c — process-wide cache of packed/transformed weights, keyed by the weights pointer,
 * a layout kind and its parameters. A stop-gap until plan-time packing exists: kernels are
 * stateless per call, so this is where work done once per weight tensor is kept. */
#include "cpu/cpu.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CC_MAX_PARAMS 8
#define CC_BUCKETS 1024

typedef struct cc_entry {
    struct cc_entry *next;
    const float *w;
    size_t w_floats;
    int kind, n_params;
    int64_t params[CC_MAX_PARAMS];
    uint64_t fingerprint;
    size_t floats;
    float *data;
} cc_entry;

static pthread_mutex_t cc_mu = PTHREAD_MUTEX_INITIALIZER;
static cc_entry *cc_buckets[CC_BUCKETS];
static size_t cc_bytes;

/* The elements the fingerprint reads: 61 spread evenly over the tensor (i = 0, step, ...)
 * plus the last one. Returns how many indices it wrote to idx (at most CC_SAMPLES). */
#define CC_SAMPLES 63

static int cc_samples(size_t n, size_t idx[CC_SAMPLES])
{
    int k = 0;
    if (n == 0) return 0;
    size_t step = n / 61 + 1;
    for (size_t i = 0; i < n && k < CC_SAMPLES - 1; i += step) idx[k++] = i;
    idx[k++] = n - 1;
    return k;
}

/* Hash of the sampled values: a freed tensor's address reused by different weights of the
 * same size is caught unless all samples agree. */
static uint64_t cc_fingerprint(const float *w, size_t n)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)n;
    size_t idx[CC_SAMPLES];
    int k = cc_samples(n, idx);
    for (int i = 0; i < k; i++) {
        uint32_t bits;
        memcpy(&bits, w + idx[i], 4);
        h = (h ^ bits) * 1099511628211ull;
    }
    return h;
}

/* A new entry holds everything the kernel needs from w: when w is a weight borrowed from a
 * clean file mapping (core_tensor_set_mapped), hand its pages back to the OS. They are
 * re-read from the file if anything touches them again (the reference kernel, another
 * node, another ISA's packing), so this only lowers resident memory, which otherwise holds
 * each such weight twice. The pages the fingerprint samples stay, so that the lookups of
 * later runs do not fault anything back in. */
static void cc_release_source(const float *w, size_t w_floats)
{
    size_t idx[CC_SAMPLES];
    const void *keep[CC_SAMPLES];
    int k = cc_samples(w_floats, idx);
    for (int i = 0; i < k; i++) keep[i] = w + idx[i];
    core_mapped_release(w, w_floats * sizeof(float), keep, (size_t)k);
}

static size_t cc_bucket(const float *w, int kind)
{
    uint64_t x = (uint64_t)(uintptr_t)w * 0x9E3779B97F4A7C15ull + (uint64_t)kind;
    return (size_t)(x >> 40) % CC_BUCKETS;
}

static bool cc_match(const cc_entry *e, const float *w, size_t w_floats, int kind,
                     const int64_t *params, int n_params, uint64_t fp)
{
    if (e->w != w || e->w_floats != w_floats || e->kind != kind || e->n_params != n_params ||
        e->fingerprint != fp)
        return false;
    for (int i = 0; i < n_params; i++)
        if (e->params[i] != params[i]) return false;
    return true;
}

static cc_entry *cc_find(size_t bkt, const float *w, size_t w_floats, int kind,
                         const int64_t *params, int n_params, uint64_t fp)
{
    for (cc_entry *e = cc_buckets[bkt]; e; e = e->next)
        if (cc_match(e, w, w_floats, kind, params, n_params, fp)) return e;
    return NULL;
}

const float *cpu_cache_get(const float *w, size_t w_floats, int kind, const int64_t *params,
                           int n_params, size_t floats, cpu_cache_build_fn build, void *ctx,
                           bool *owned)
{
    *owned = false;
    if (n_params > CC_MAX_PARAMS) n_params = CC_MAX_PARAMS;
    /* packings depend on the GEMM tile of the current microkernels (6x16 AVX2, 14x32
     * AVX-512): the key carries it, so buffers of different layouts never mix */
    const cpu_ukernels *uk = cpu_ukernels_get();
    kind = (kind & 0xFF) | (uk->gemm_mr << 8 | uk->gemm_nr) << 8;
    uint64_t fp = cc_fingerprint(w, w_floats);
    size_t bkt = cc_bucket(w, kind);
    pthread_mutex_lock(&cc_mu);
    cc_entry *e = cc_find(bkt, w, w_floats, kind, params, n_params, fp);
    bool full = cc_bytes + floats * sizeof(float) > CPU_CACHE_MAX_BYTES;
    pthread_mutex_unlock(&cc_mu);
    if (e) return e->data;
    /* build outside the lock: another thread may build the same entry meanwhile, and then
     * ours is dropped */
    float *data = cpu_alloc_floats(floats);
    if (!data) return NULL;
    build(ctx, data);
    if (full) {
        *owned = true;
        return data;
    }
    cc_entry *ne = calloc(1, sizeof *ne);
    if (!ne) {
        *owned = true;
        return data;
    }
    ne->w = w;
    ne->w_floats = w_floats;
    ne->kind = kind;
    ne->n_params = n_params;
    memcpy(ne->params, params, (size_t)n_params * sizeof(int64_t));
    ne->fingerprint = fp;
    ne->floats = floats;
    ne->data = data;
    pthread_mutex_lock(&cc_mu);
    e = cc_find(bkt, w, w_floats, kind, params, n_params, fp);
    if (!e) {
        ne->next = cc_buckets[bkt];
        cc_buckets[bkt] = ne;
        cc_bytes += floats * sizeof(float);
        e = ne;
        ne = NULL;
    }
    pthread_mutex_unlock(&cc_mu);
    if (ne) {
        free(ne->data);
        free(ne);
    } else {
        cc_release_source(w, w_floats);
    }
    return e->data;
}

void cpu_cache_clear(void)
{
    pthread_mutex_lock(&cc_mu);
    for (size_t i = 0; i < CC_BUCKETS; i++) {
        cc_entry *e = cc_buckets[i];
        while (e) {
            cc_entry *n = e->next;
            free(e->data);
            free(e);
            e = n;
        }
        cc_buckets[i] = NULL;
    }
    cc_bytes = 0;
    pthread_mutex_unlock(&cc_mu);
}

size_t cpu_cache_bytes(void)
{
    pthread_mutex_lock(&cc_mu);
    size_t b = cc_bytes;
    pthread_mutex_unlock(&cc_mu);
    return b;
}

/* Free everything at exit so leak checkers stay quiet. */
__attribute__((destructor)) static void cc_at_exit(void) { cpu_cache_clear(); }
