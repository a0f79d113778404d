/* util.c — helpers shared by reference kernels (see util.h). */
#include "ops/util.h"
#include <string.h>

int64_t ops_axis(int64_t axis, int ndim)
{
    if (axis < 0) axis += ndim;
    if (axis < 0 || axis >= (ndim > 0 ? ndim : 1)) return -1;
    return axis;
}

bool ops_broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b, int *nout,
                         int64_t *out)
{
    int n = na > nb ? na : nb;
    if (n > KILN_MAX_DIMS) return false;
    for (int i = 0; i < n; i++) {
        int64_t da = i < n - na ? 1 : a[i - (n - na)];
        int64_t db = i < n - nb ? 1 : b[i - (n - nb)];
        if (da == db || db == 1) out[i] = da;
        else if (da == 1) out[i] = db;
        else return false;
    }
    *nout = n;
    return true;
}

void ops_broadcast_strides(int nin, const int64_t *in_dims, int nout, const int64_t *out_dims,
                           int64_t *strides)
{
    int64_t s = 1;
    for (int i = nout - 1; i >= 0; i--) {
        int j = i - (nout - nin);
        if (j < 0) { strides[i] = 0; continue; }
        strides[i] = (in_dims[j] == 1 && out_dims[i] != 1) ? 0 : s;
        if (in_dims[j] == 1) strides[i] = 0;
        s *= in_dims[j];
    }
}

void ops_contiguous_strides(int ndim, const int64_t *dims, int64_t *strides)
{
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) { strides[i] = s; s *= dims[i]; }
}

bool ops_index_next(int ndim, const int64_t *dims, int64_t *idx)
{
    for (int i = ndim - 1; i >= 0; i--) {
        if (++idx[i] < dims[i]) return true;
        idx[i] = 0;
    }
    return false;
}

int64_t ops_tensor_i64s(const core_tensor *t, int64_t *out, int64_t max)
{
    if (!t) { core_error(KILN_ERR_INVALID_ARGUMENT, "missing integer tensor"); return -1; }
    if (!core_dtype_is_int(t->dtype)) {
        core_error(KILN_ERR_DTYPE, "expected an integer tensor, got %s", core_dtype_name(t->dtype));
        return -1;
    }
    if (t->numel > max) {
        core_error(KILN_ERR_SHAPE, "integer tensor has %lld values, at most %lld allowed",
                   (long long)t->numel, (long long)max);
        return -1;
    }
    for (int64_t i = 0; i < t->numel; i++) out[i] = core_load_i64(t->dtype, t->data, i);
    return t->numel;
}

double ops_scalar_f64(const core_tensor *t)
{
    return t && t->numel > 0 ? core_load_f64(t->dtype, t->data, 0) : 0.0;
}

int64_t ops_scalar_i64(const core_tensor *t)
{
    return t && t->numel > 0 ? core_load_i64(t->dtype, t->data, 0) : 0;
}

const char *ops_str_at(const core_tensor *t, int64_t i)
{
    const char *s = ((char *const *)t->data)[i];
    return s ? s : "";
}

bool ops_copy_elems(core_tensor *dst, int64_t di, const core_tensor *src, int64_t si, int64_t n)
{
    if (n <= 0) return true;
    if (src->dtype == KILN_DTYPE_STRING) {
        for (int64_t k = 0; k < n; k++) {
            const char *s = ops_str_at(src, si + k);
            if (!core_tensor_set_string(dst, di + k, s, strlen(s))) { core_oom(); return false; }
        }
        return true;
    }
    size_t esz = core_dtype_size(src->dtype);
    char *d = (char *)dst->data + (size_t)di * esz;
    const char *s = (const char *)src->data + (size_t)si * esz;
    if (d != s) memmove(d, s, (size_t)n * esz); /* equal: already in place (elided Concat) */
    return true;
}

float *ops_tensor_f32(const core_tensor *t, bool *owned)
{
    *owned = false;
    if (t->dtype == KILN_DTYPE_FLOAT) return (float *)t->data;
    float *p = core_malloc((size_t)(t->numel > 0 ? t->numel : 1) * sizeof(float));
    if (!p) { core_oom(); return NULL; }
    *owned = true;
    if (t->dtype == KILN_DTYPE_FLOAT16) {
        const uint16_t *s = t->data;
        for (int64_t i = 0; i < t->numel; i++) p[i] = core_f16_to_f32(s[i]);
    } else if (t->dtype == KILN_DTYPE_BFLOAT16) {
        const uint16_t *s = t->data;
        for (int64_t i = 0; i < t->numel; i++) p[i] = core_bf16_to_f32(s[i]);
    } else {
        for (int64_t i = 0; i < t->numel; i++) p[i] = (float)core_load_f64(t->dtype, t->data, i);
    }
    return p;
}

void ops_store_f32(core_tensor *t, const float *src, int64_t n)
{
    if (t->dtype == KILN_DTYPE_FLOAT) {
        if ((const void *)src != t->data) memcpy(t->data, src, (size_t)n * sizeof(float));
    } else if (t->dtype == KILN_DTYPE_FLOAT16) {
        uint16_t *d = t->data;
        for (int64_t i = 0; i < n; i++) d[i] = core_f32_to_f16(src[i]);
    } else if (t->dtype == KILN_DTYPE_BFLOAT16) {
        uint16_t *d = t->data;
        for (int64_t i = 0; i < n; i++) d[i] = core_f32_to_bf16(src[i]);
    } else {
        for (int64_t i = 0; i < n; i++) core_store_f64(t->dtype, t->data, i, src[i]);
    }
}

bool ops_attr_ints_n(const ops_ctx *c, const char *name, int n, int64_t dflt, int64_t minval, int64_t *out)
{
    int64_t cnt = 0;
    const int64_t *v = ops_attr_ints(c, name, &cnt);
    if (!v) {
        for (int i = 0; i < n; i++) out[i] = dflt;
        return true;
    }
    if (cnt != n) return false;
    for (int i = 0; i < n; i++) {
        if (v[i] < minval || v[i] > INT32_MAX) return false;
        out[i] = v[i];
    }
    return true;
}

/* ---- channels-last <-> channels-first ---------------------------------------------------- */

/* Copy between [N, S, C] and [N, C, S] (S = product of spatial dims) with element size es;
 * to_first: src is [N, S, C]. */
static void ops_cl_copy(const char *src, char *dst, int64_t N, int64_t S, int64_t C, size_t es,
                        bool to_first)
{
    for (int64_t n = 0; n < N; n++) {
        const char *sb = src + (size_t)(n * S * C) * es;
        char *db = dst + (size_t)(n * S * C) * es;
        for (int64_t s = 0; s < S; s++)
            for (int64_t ch = 0; ch < C; ch++) {
                size_t cl = (size_t)(s * C + ch) * es, cf = (size_t)(ch * S + s) * es;
                if (to_first) memcpy(db + cf, sb + cl, es);
                else memcpy(db + cl, sb + cf, es);
            }
    }
}

core_tensor *ops_to_channels_first(const core_tensor *t)
{
    if (!t || t->ndim < 3 || t->dtype == KILN_DTYPE_STRING) return NULL;
    size_t es = core_dtype_size(t->dtype);
    if (es == 0) return NULL;
    int64_t d[KILN_MAX_DIMS], S = 1;
    d[0] = t->dims[0];
    d[1] = t->dims[t->ndim - 1];
    for (int i = 1; i < t->ndim - 1; i++) {
        d[i + 1] = t->dims[i];
        S *= t->dims[i];
    }
    core_tensor *r = core_tensor_create(t->dtype, t->ndim, d);
    if (!r) return NULL;
    if (t->numel > 0) ops_cl_copy(t->data, r->data, d[0], S, d[1], es, true);
    return r;
}

void ops_from_channels_first(const core_tensor *src, core_tensor *dst)
{
    size_t es = core_dtype_size(src->dtype);
    if (src->numel != dst->numel || src->numel == 0 || src->ndim < 3 || es == 0) return;
    int64_t S = 1;
    for (int i = 2; i < src->ndim; i++) S *= src->dims[i];
    ops_cl_copy(src->data, dst->data, src->dims[0], S, src->dims[1], es, false);
}
