/* tensor.c — dense tensors and reference-counted runtime values. */
#include "core/core.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int64_t core_shape_numel(int ndim, const int64_t *dims)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        if (!core_mul_size(n, dims[i], &n)) return -1;
    return n;
}

char *core_shape_str(int ndim, const int64_t *dims, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = 0;
    if (ndim == 0) { snprintf(buf, size, "scalar"); return buf; }
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? "x%lld" : "%lld", (long long)dims[i]);
    return buf;
}

static core_tensor *core_tensor_alloc_header(kiln_dtype dtype, int ndim, const int64_t *dims)
{
    if (ndim < 0 || ndim > KILN_MAX_DIMS) {
        core_error(KILN_ERR_SHAPE, "tensor rank %d is outside [0, %d]", ndim, KILN_MAX_DIMS);
        return NULL;
    }
    size_t es = core_dtype_size(dtype);
    if (!es) {
        core_error(KILN_ERR_DTYPE, "unsupported tensor dtype %d", (int)dtype);
        return NULL;
    }
    int64_t numel = core_shape_numel(ndim, dims), nbytes;
    if (numel < 0 || !core_mul_size(numel, (int64_t)es, &nbytes)) {
        char b[128];
        core_error(KILN_ERR_SHAPE, "invalid tensor shape %s", core_shape_str(ndim, dims, b, sizeof b));
        return NULL;
    }
    core_tensor *t = calloc(1, sizeof *t);
    if (!t) { core_oom(); return NULL; }
    t->dtype = dtype;
    t->ndim = ndim;
    if (ndim) memcpy(t->dims, dims, sizeof(int64_t) * (size_t)ndim);
    t->numel = numel;
    t->nbytes = (size_t)nbytes;
    return t;
}

core_tensor *core_tensor_create(kiln_dtype dtype, int ndim, const int64_t *dims)
{
    core_tensor *t = core_tensor_alloc_header(dtype, ndim, dims);
    if (!t) return NULL;
    /* 64-byte alignment keeps later SIMD kernels happy. */
    size_t sz = (t->nbytes + 63) & ~(size_t)63;
    if (sz < t->nbytes) { free(t); core_oom(); return NULL; }
    t->data = aligned_alloc(64, sz ? sz : 64);
    if (!t->data) { free(t); core_oom(); return NULL; }
    memset(t->data, 0, sz ? sz : 64);
    t->owns_data = true;
    if (dtype == KILN_DTYPE_STRING) {
        char **s = t->data;
        for (int64_t i = 0; i < t->numel; i++) {
            s[i] = core_strdup("");
            if (!s[i]) { core_tensor_destroy(t); core_oom(); return NULL; }
        }
    }
    return t;
}

core_tensor *core_tensor_wrap(kiln_dtype dtype, int ndim, const int64_t *dims, void *data)
{
    core_tensor *t = core_tensor_alloc_header(dtype, ndim, dims);
    if (!t) return NULL;
    t->data = data;
    t->owns_data = false;
    return t;
}

core_tensor *core_tensor_clone(const core_tensor *src)
{
    core_tensor *t = core_tensor_create(src->dtype, src->ndim, src->dims);
    if (!t) return NULL;
    if (src->dtype == KILN_DTYPE_STRING) {
        char *const *s = src->data;
        for (int64_t i = 0; i < src->numel; i++)
            if (!core_tensor_set_string(t, i, s[i] ? s[i] : "", s[i] ? strlen(s[i]) : 0)) {
                core_tensor_destroy(t);
                core_oom();
                return NULL;
            }
    } else if (src->nbytes) {
        memcpy(t->data, src->data, src->nbytes);
    }
    if (src->quant) {
        core_quant *q = calloc(1, sizeof *q);
        if (q) {
            *q = *src->quant;
            q->scale = q->count ? malloc(sizeof(float) * (size_t)q->count) : NULL;
            q->zero_point = q->count ? malloc(sizeof(int32_t) * (size_t)q->count) : NULL;
            if (q->count && q->scale && q->zero_point) {
                memcpy(q->scale, src->quant->scale, sizeof(float) * (size_t)q->count);
                memcpy(q->zero_point, src->quant->zero_point, sizeof(int32_t) * (size_t)q->count);
            }
            t->quant = q;
        }
    }
    if (src->name) t->name = core_strdup(src->name);
    return t;
}

bool core_tensor_set_string(core_tensor *t, int64_t i, const char *s, size_t len)
{
    char *d = core_strndup(s, len);
    if (!d) return false;
    char **arr = t->data;
    if (t->owns_data) free(arr[i]);
    arr[i] = d;
    return true;
}

/* ---- mapped tensors -------------------------------------------------------------------
 * The data pointers of live tensors marked with core_tensor_set_mapped (a multiset: two
 * tensors may borrow the same bytes), so that core_mapped_release only ever drops pages of
 * file-backed weights, never anonymous memory (which would read back as zeros). */
#define CT_MAP_BUCKETS 256

typedef struct ct_mapped {
    struct ct_mapped *next;
    const void *data;
    size_t nbytes;
} ct_mapped;

static pthread_mutex_t ct_map_mu = PTHREAD_MUTEX_INITIALIZER;
static ct_mapped *ct_map[CT_MAP_BUCKETS];

static size_t ct_map_bucket(const void *p)
{
    return (size_t)(((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull) >> 56) % CT_MAP_BUCKETS;
}

bool core_tensor_set_mapped(core_tensor *t)
{
    if (!t || t->owns_data || t->mapped || !t->data || !t->nbytes) return false;
    ct_mapped *e = malloc(sizeof *e);
    if (!e) return false;
    e->data = t->data;
    e->nbytes = t->nbytes;
    size_t b = ct_map_bucket(t->data);
    pthread_mutex_lock(&ct_map_mu);
    e->next = ct_map[b];
    ct_map[b] = e;
    pthread_mutex_unlock(&ct_map_mu);
    t->mapped = true;
    return true;
}

static void ct_unmap(const core_tensor *t)
{
    size_t b = ct_map_bucket(t->data);
    pthread_mutex_lock(&ct_map_mu);
    for (ct_mapped **pp = &ct_map[b]; *pp; pp = &(*pp)->next) {
        ct_mapped *e = *pp;
        if (e->data == t->data) { /* all entries of one pointer lie in the same mapping */
            *pp = e->next;
            free(e);
            break;
        }
    }
    pthread_mutex_unlock(&ct_map_mu);
}

static size_t ct_drop(uintptr_t b, uintptr_t e)
{
    return e > b && madvise((void *)b, e - b, MADV_DONTNEED) == 0 ? e - b : 0;
}

size_t core_mapped_release(const void *p, size_t n, const void *const *keep, size_t n_keep)
{
    long ps = sysconf(_SC_PAGESIZE);
    if (!p || !n || ps <= 0) return 0;
    uintptr_t lo = (uintptr_t)p, hi = lo + n;
    if (hi < lo) return 0;
    size_t dropped = 0;
    pthread_mutex_lock(&ct_map_mu);
    const ct_mapped *e = ct_map[ct_map_bucket(p)];
    while (e && !(e->data == p && n <= e->nbytes)) e = e->next;
    if (e) {
        /* whole pages only: the partial first and last pages hold neighbouring bytes */
        uintptr_t b = (lo + (uintptr_t)ps - 1) & ~((uintptr_t)ps - 1), end = hi & ~((uintptr_t)ps - 1);
        uintptr_t run = b;
        size_t k = 0;
        for (uintptr_t pg = b; pg < end; pg += (uintptr_t)ps) {
            while (k < n_keep && (uintptr_t)keep[k] < pg) k++;
            if (k < n_keep && (uintptr_t)keep[k] < pg + (uintptr_t)ps) {
                dropped += ct_drop(run, pg);
                run = pg + (uintptr_t)ps;
            }
        }
        dropped += ct_drop(run, end);
    }
    pthread_mutex_unlock(&ct_map_mu);
    return dropped;
}

void core_tensor_destroy(core_tensor *t)
{
    if (!t) return;
    if (t->mapped) ct_unmap(t);
    if (t->owns_data) {
        if (t->dtype == KILN_DTYPE_STRING && t->data) {
            char **s = t->data;
            for (int64_t i = 0; i < t->numel; i++) free(s[i]);
        }
        free(t->data);
    }
    if (t->quant) {
        free(t->quant->scale);
        free(t->quant->zero_point);
        free(t->quant);
    }
    free(t->name);
    free(t);
}

/* ---- values ---- */

core_value *core_value_from_tensor(core_tensor *t)
{
    if (!t) return NULL;
    core_value *v = calloc(1, sizeof *v);
    if (!v) { core_tensor_destroy(t); core_oom(); return NULL; }
    v->kind = CORE_VALUE_TENSOR;
    v->refcount = 1;
    v->tensor = t;
    v->elem_dtype = t->dtype;
    return v;
}

core_value *core_value_sequence(kiln_dtype elem_dtype)
{
    core_value *v = calloc(1, sizeof *v);
    if (!v) { core_oom(); return NULL; }
    v->kind = CORE_VALUE_SEQUENCE;
    v->refcount = 1;
    v->elem_dtype = elem_dtype;
    return v;
}

core_value *core_value_none(void)
{
    core_value *v = calloc(1, sizeof *v);
    if (!v) { core_oom(); return NULL; }
    v->kind = CORE_VALUE_NONE;
    v->refcount = 1;
    return v;
}

bool core_value_seq_append(core_value *seq, core_value *item)
{
    core_value **n = realloc(seq->items, sizeof *n * (size_t)(seq->n_items + 1));
    if (!n) { core_oom(); return false; }
    seq->items = n;
    seq->items[seq->n_items++] = core_value_retain(item);
    return true;
}

/* Atomic counts: initializers are shared by contexts running on several threads. */
core_value *core_value_retain(core_value *v)
{
    if (v) __atomic_add_fetch(&v->refcount, 1, __ATOMIC_RELAXED);
    return v;
}

void core_value_release(core_value *v)
{
    if (!v || __atomic_sub_fetch(&v->refcount, 1, __ATOMIC_ACQ_REL) > 0) return;
    core_tensor_destroy(v->tensor);
    for (int64_t i = 0; i < v->n_items; i++) core_value_release(v->items[i]);
    free(v->items);
    free(v);
}
