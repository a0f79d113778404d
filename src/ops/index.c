/* index.c — reference kernels for ops driven by index tensors: Gather*, Scatter*,
 * TensorScatter, TopK, Unique, NonZero, OneHot. Every index is range-checked. */
#include "ops/ops.h"
#include "ops/util.h"
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAXD KILN_MAX_DIMS

#define GET_INPUT(var, i)                                                                    \
    core_tensor *var = ops_input(c, (i));                                                    \
    if (!var) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "input %d is missing or not a tensor", (i))

#define NEW_OUTPUT(var, i, dt, nd, dims)                                                     \
    core_tensor *var = ops_output(c, (i), (dt), (nd), (dims));                               \
    if (!var) return KILN_ERR_OUT_OF_MEMORY



static kiln_status check_index_dtype(ops_ctx *c, const core_tensor *t, const char *what)
{
    if (!core_dtype_is_int(t->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "%s must be int32 or int64, got %s", what,
                         core_dtype_name(t->dtype));
    return KILN_OK;
}

/* Reads index i of t and maps it into [0, dim) (negatives count from the end). */
static kiln_status load_index(ops_ctx *c, const core_tensor *t, int64_t i, int64_t dim, int64_t *out)
{
    int64_t v = core_load_i64(t->dtype, t->data, i);
    int64_t w = v < 0 ? v + dim : v;
    if (w < 0 || w >= dim)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "index %lld out of range for dim of size %lld",
                         (long long)v, (long long)dim);
    *out = w;
    return KILN_OK;
}

static kiln_status get_axis(ops_ctx *c, int64_t dflt, int r, int64_t *axis)
{
    int64_t a = ops_attr_int(c, "axis", dflt);
    if (r == 0 || a < -r || a >= r)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "axis %lld out of range for rank %d", (long long)a, r);
    *axis = a < 0 ? a + r : a;
    return KILN_OK;
}

static int64_t prod(const int64_t *d, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= d[i];
    return p;
}

/* ---- Gather, GatherElements, GatherND ----------------------------------------------------- */

static kiln_status gather_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    GET_INPUT(ind, 1);
    kiln_status st;
    int64_t axis = 0;
    if ((st = check_index_dtype(c, ind, "indices"))) return st;
    if ((st = get_axis(c, 0, x->ndim, &axis))) return st;
    int r = x->ndim, q = ind->ndim, ro = r - 1 + q;
    if (ro > MAXD) return ops_error(c, KILN_ERR_UNSUPPORTED, "output rank %d too large", ro);
    int64_t od[MAXD];
    int k = 0;
    for (int i = 0; i < axis; i++) od[k++] = x->dims[i];
    for (int i = 0; i < q; i++) od[k++] = ind->dims[i];
    for (int i = (int)axis + 1; i < r; i++) od[k++] = x->dims[i];
    int64_t outer = prod(x->dims, 0, (int)axis), dim = x->dims[axis];
    int64_t inner = prod(x->dims, (int)axis + 1, r), ni = ind->numel;
    int64_t *idx = core_malloc(sizeof(int64_t) * (size_t)(ni ? ni : 1));
    if (!idx) return KILN_ERR_OUT_OF_MEMORY;
    for (int64_t j = 0; j < ni; j++)
        if ((st = load_index(c, ind, j, dim, &idx[j]))) { free(idx); return st; }
    core_tensor *y = ops_output(c, 0, x->dtype, ro, od);
    if (!y) { free(idx); return KILN_ERR_OUT_OF_MEMORY; }
    for (int64_t o = 0; o < outer && !st; o++)
        for (int64_t j = 0; j < ni; j++)
            if (!ops_copy_elems(y, (o * ni + j) * inner, x, (o * dim + idx[j]) * inner, inner)) {
                st = KILN_ERR_OUT_OF_MEMORY;
                break;
            }
    free(idx);
    return st;
}

static kiln_status gather_elements_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    GET_INPUT(ind, 1);
    kiln_status st;
    int64_t axis = 0;
    if ((st = check_index_dtype(c, ind, "indices"))) return st;
    if ((st = get_axis(c, 0, x->ndim, &axis))) return st;
    int r = x->ndim;
    if (ind->ndim != r)
        return ops_error(c, KILN_ERR_SHAPE, "indices have %d dims, data has %d", ind->ndim, r);
    for (int i = 0; i < r; i++)
        if (i != axis && ind->dims[i] > x->dims[i])
            return ops_error(c, KILN_ERR_SHAPE, "indices dim %d is %lld, data's is %lld", i,
                             (long long)ind->dims[i], (long long)x->dims[i]);
    NEW_OUTPUT(y, 0, x->dtype, r, ind->dims);
    if (y->numel == 0) return KILN_OK;
    int64_t xs[MAXD], idx[MAXD] = {0};
    ops_contiguous_strides(r, x->dims, xs);
    int64_t i = 0;
    do {
        int64_t off = 0, k = 0;
        for (int d = 0; d < r; d++)
            if (d != axis) off += idx[d] * xs[d];
        if ((st = load_index(c, ind, i, x->dims[axis], &k))) return st;
        if (!ops_copy_elems(y, i, x, off + k * xs[axis], 1)) return KILN_ERR_OUT_OF_MEMORY;
        i++;
    } while (ops_index_next(r, ind->dims, idx));
    return KILN_OK;
}

static kiln_status gather_nd_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    GET_INPUT(ind, 1);
    kiln_status st;
    if ((st = check_index_dtype(c, ind, "indices"))) return st;
    int r = x->ndim, q = ind->ndim;
    int64_t b = ops_attr_int(c, "batch_dims", 0);
    if (q < 1 || r < 1) return ops_error(c, KILN_ERR_SHAPE, "data and indices need rank >= 1");
    if (b < 0 || b >= q || b >= r)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "batch_dims %lld invalid for ranks %d and %d",
                         (long long)b, r, q);
    int64_t m = ind->dims[q - 1];
    if (m < 1 || m > r - b)
        return ops_error(c, KILN_ERR_SHAPE, "indices last dim %lld must be in [1, %lld]", (long long)m,
                         (long long)(r - b));
    for (int i = 0; i < b; i++)
        if (ind->dims[i] != x->dims[i])
            return ops_error(c, KILN_ERR_SHAPE, "batch dim %d differs: indices %lld, data %lld", i,
                             (long long)ind->dims[i], (long long)x->dims[i]);
    int64_t od[MAXD];
    int ro = 0;
    for (int i = 0; i < q - 1; i++) od[ro++] = ind->dims[i];
    for (int i = (int)(b + m); i < r; i++) {
        if (ro >= MAXD) return ops_error(c, KILN_ERR_UNSUPPORTED, "output rank too large");
        od[ro++] = x->dims[i];
    }
    NEW_OUTPUT(y, 0, x->dtype, ro, od);
    int64_t xs[MAXD];
    ops_contiguous_strides(r, x->dims, xs);
    int64_t nb = prod(x->dims, 0, (int)b), xblock = prod(x->dims, (int)b, r);
    int64_t nt = prod(ind->dims, (int)b, q - 1), inner = prod(x->dims, (int)(b + m), r);
    for (int64_t bi = 0; bi < nb; bi++)
        for (int64_t t = 0; t < nt; t++) {
            int64_t tup = (bi * nt + t) * m, off = bi * xblock, k = 0;
            for (int j = 0; j < m; j++) {
                if ((st = load_index(c, ind, tup + j, x->dims[b + j], &k))) return st;
                off += k * xs[b + j];
            }
            if (!ops_copy_elems(y, (bi * nt + t) * inner, x, off, inner)) return KILN_ERR_OUT_OF_MEMORY;
        }
    return KILN_OK;
}

/* ---- scatter family -------------------------------------------------------------------------- */

enum { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN };

static kiln_status get_reduction(ops_ctx *c, int *red)
{
    const char *s = ops_attr_string(c, "reduction", "none");
    if (!strcmp(s, "none")) *red = RED_NONE;
    else if (!strcmp(s, "add")) *red = RED_ADD;
    else if (!strcmp(s, "mul")) *red = RED_MUL;
    else if (!strcmp(s, "max")) *red = RED_MAX;
    else if (!strcmp(s, "min")) *red = RED_MIN;
    else return ops_error(c, KILN_ERR_UNSUPPORTED, "unknown reduction '%s'", s);
    return KILN_OK;
}

/* y[yi..yi+n) = red(y[..], u[ui..]). Integer add/mul wrap around like two's complement. */
static bool apply_update(core_tensor *y, int64_t yi, const core_tensor *u, int64_t ui, int64_t n, int red)
{
    if (red == RED_NONE) return ops_copy_elems(y, yi, u, ui, n);
#define RED_FLOAT(T)                                                                         \
    {                                                                                        \
        T *yp = (T *)y->data + yi;                                                           \
        const T *up = (const T *)u->data + ui;                                               \
        for (int64_t k = 0; k < n; k++) {                                                    \
            T a = yp[k], b = up[k];                                                          \
            yp[k] = red == RED_ADD ? a + b : red == RED_MUL ? a * b                          \
                  : red == RED_MAX ? (a > b ? a : b) : (a < b ? a : b);                      \
        }                                                                                    \
        return true;                                                                         \
    }
#define RED_INT(T)                                                                           \
    {                                                                                        \
        T *yp = (T *)y->data + yi;                                                           \
        const T *up = (const T *)u->data + ui;                                               \
        for (int64_t k = 0; k < n; k++) {                                                    \
            T a = yp[k], b = up[k];                                                          \
            yp[k] = red == RED_ADD   ? (T)((uint64_t)a + (uint64_t)b)                        \
                  : red == RED_MUL   ? (T)((uint64_t)a * (uint64_t)b)                        \
                  : red == RED_MAX   ? (a > b ? a : b)                                       \
                                     : (a < b ? a : b);                                      \
        }                                                                                    \
        return true;                                                                         \
    }
    switch (y->dtype) {
    case KILN_DTYPE_FLOAT: RED_FLOAT(float)
    case KILN_DTYPE_DOUBLE: RED_FLOAT(double)
    case KILN_DTYPE_INT8: RED_INT(int8_t)
    case KILN_DTYPE_INT16: RED_INT(int16_t)
    case KILN_DTYPE_INT32: RED_INT(int32_t)
    case KILN_DTYPE_INT64: RED_INT(int64_t)
    case KILN_DTYPE_UINT8: RED_INT(uint8_t)
    case KILN_DTYPE_UINT16: RED_INT(uint16_t)
    case KILN_DTYPE_UINT32: RED_INT(uint32_t)
    case KILN_DTYPE_UINT64: RED_INT(uint64_t)
    case KILN_DTYPE_BOOL: {
        uint8_t *yp = (uint8_t *)y->data + yi;
        const uint8_t *up = (const uint8_t *)u->data + ui;
        for (int64_t k = 0; k < n; k++) {
            bool a = yp[k] != 0, b = up[k] != 0;
            yp[k] = (red == RED_ADD || red == RED_MAX) ? (a || b) : (a && b);
        }
        return true;
    }
    default:
        break;
    }
#undef RED_FLOAT
#undef RED_INT
    for (int64_t k = 0; k < n; k++) {
        double a = core_load_f64(y->dtype, y->data, yi + k), b = core_load_f64(u->dtype, u->data, ui + k);
        double v = red == RED_ADD ? a + b : red == RED_MUL ? a * b : red == RED_MAX ? (a > b ? a : b) : (a < b ? a : b);
        core_store_f64(y->dtype, y->data, yi + k, v);
    }
    return true;
}

static kiln_status scatter_elements_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    GET_INPUT(ind, 1);
    GET_INPUT(u, 2);
    kiln_status st;
    int64_t axis = 0;
    int red;
    if ((st = check_index_dtype(c, ind, "indices"))) return st;
    if ((st = get_axis(c, 0, x->ndim, &axis))) return st;
    if ((st = get_reduction(c, &red))) return st;
    if (red != RED_NONE && (x->dtype == KILN_DTYPE_STRING || !core_dtype_size(x->dtype)))
        return ops_error(c, KILN_ERR_DTYPE, "reduction on %s", core_dtype_name(x->dtype));
    int r = x->ndim;
    if (u->dtype != x->dtype)
        return ops_error(c, KILN_ERR_DTYPE, "updates are %s, data is %s", core_dtype_name(u->dtype),
                         core_dtype_name(x->dtype));
    if (ind->ndim != r || u->ndim != r)
        return ops_error(c, KILN_ERR_SHAPE, "indices/updates have %d/%d dims, data has %d", ind->ndim,
                         u->ndim, r);
    for (int i = 0; i < r; i++) {
        if (u->dims[i] != ind->dims[i])
            return ops_error(c, KILN_ERR_SHAPE, "updates dim %d is %lld, indices' is %lld", i,
                             (long long)u->dims[i], (long long)ind->dims[i]);
        if (i != axis && ind->dims[i] > x->dims[i])
            return ops_error(c, KILN_ERR_SHAPE, "indices dim %d is %lld, data's is %lld", i,
                             (long long)ind->dims[i], (long long)x->dims[i]);
    }
    NEW_OUTPUT(y, 0, x->dtype, r, x->dims);
    if (!ops_copy_elems(y, 0, x, 0, x->numel)) return KILN_ERR_OUT_OF_MEMORY;
    if (ind->numel == 0) return KILN_OK;
    int64_t xs[MAXD], idx[MAXD] = {0}, i = 0;
    ops_contiguous_strides(r, x->dims, xs);
    do {
        int64_t off = 0, k = 0;
        for (int d = 0; d < r; d++)
            if (d != axis) off += idx[d] * xs[d];
        if ((st = load_index(c, ind, i, x->dims[axis], &k))) return st;
        if (!apply_update(y, off + k * xs[axis], u, i, 1, red)) return KILN_ERR_OUT_OF_MEMORY;
        i++;
    } while (ops_index_next(r, ind->dims, idx));
    return KILN_OK;
}

static kiln_status scatter_nd_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    GET_INPUT(ind, 1);
    GET_INPUT(u, 2);
    kiln_status st;
    int red;
    if ((st = check_index_dtype(c, ind, "indices"))) return st;
    if ((st = get_reduction(c, &red))) return st;
    if (red != RED_NONE && (x->dtype == KILN_DTYPE_STRING || !core_dtype_size(x->dtype)))
        return ops_error(c, KILN_ERR_DTYPE, "reduction on %s", core_dtype_name(x->dtype));
    if (u->dtype != x->dtype)
        return ops_error(c, KILN_ERR_DTYPE, "updates are %s, data is %s", core_dtype_name(u->dtype),
                         core_dtype_name(x->dtype));
    int r = x->ndim, q = ind->ndim;
    if (q < 1 || r < 1) return ops_error(c, KILN_ERR_SHAPE, "data and indices need rank >= 1");
    int64_t m = ind->dims[q - 1];
    if (m > r) return ops_error(c, KILN_ERR_SHAPE, "indices last dim %lld exceeds data rank %d", (long long)m, r);
    /* updates shape = indices.shape[:-1] + data.shape[m:] */
    int ur = q - 1 + r - (int)m;
    bool ok = u->ndim == ur;
    for (int i = 0; ok && i < q - 1; i++) ok = u->dims[i] == ind->dims[i];
    for (int i = (int)m; ok && i < r; i++) ok = u->dims[q - 1 + i - m] == x->dims[i];
    if (!ok) return ops_error(c, KILN_ERR_SHAPE, "updates shape does not match indices and data");
    NEW_OUTPUT(y, 0, x->dtype, r, x->dims);
    if (!ops_copy_elems(y, 0, x, 0, x->numel)) return KILN_ERR_OUT_OF_MEMORY;
    int64_t xs[MAXD];
    ops_contiguous_strides(r, x->dims, xs);
    int64_t nt = prod(ind->dims, 0, q - 1), inner = prod(x->dims, (int)m, r);
    for (int64_t t = 0; t < nt; t++) {
        int64_t off = 0, k = 0;
        for (int j = 0; j < m; j++) {
            if ((st = load_index(c, ind, t * m + j, x->dims[j], &k))) return st;
            off += k * xs[j];
        }
        if (!apply_update(y, off, u, t * inner, inner, red)) return KILN_ERR_OUT_OF_MEMORY;
    }
    return KILN_OK;
}

static kiln_status tensor_scatter_run(ops_ctx *c)
{
    GET_INPUT(past, 0);
    GET_INPUT(upd, 1);
    const core_tensor *wi = ops_input(c, 2);
    int r = past->ndim;
    kiln_status st;
    int64_t axis = 0;
    if ((st = get_axis(c, -2, r, &axis))) return st;
    if (axis == 0) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "axis must not be the batch axis 0");
    const char *mode = ops_attr_string(c, "mode", "linear");
    bool circular = !strcmp(mode, "circular");
    if (!circular && strcmp(mode, "linear")) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "unknown mode '%s'", mode);
    if (upd->dtype != past->dtype)
        return ops_error(c, KILN_ERR_DTYPE, "update is %s, past_cache is %s", core_dtype_name(upd->dtype),
                         core_dtype_name(past->dtype));
    if (upd->ndim != r) return ops_error(c, KILN_ERR_SHAPE, "update has %d dims, past_cache %d", upd->ndim, r);
    for (int i = 0; i < r; i++)
        if (i == axis ? upd->dims[i] > past->dims[i] : upd->dims[i] != past->dims[i])
            return ops_error(c, KILN_ERR_SHAPE, "update dim %d is %lld, past_cache's is %lld", i,
                             (long long)upd->dims[i], (long long)past->dims[i]);
    int64_t batch = past->dims[0];
    if (wi) {
        if ((st = check_index_dtype(c, wi, "write_indices"))) return st;
        if (wi->numel != batch)
            return ops_error(c, KILN_ERR_SHAPE, "write_indices has %lld values for batch %lld",
                             (long long)wi->numel, (long long)batch);
    }
    NEW_OUTPUT(y, 0, past->dtype, r, past->dims);
    if (!ops_copy_elems(y, 0, past, 0, past->numel)) return KILN_ERR_OUT_OF_MEMORY;
    int64_t pre = prod(past->dims, 0, (int)axis), inner = prod(past->dims, (int)axis + 1, r);
    int64_t maxlen = past->dims[axis], seq = upd->dims[axis];
    int64_t per_batch = batch ? pre / batch : 0;
    for (int64_t p = 0; p < pre; p++) {
        int64_t b = p / per_batch, w = wi ? core_load_i64(wi->dtype, wi->data, b) : 0;
        if (w < 0) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "write_indices[%lld] is %lld", (long long)b, (long long)w);
        for (int64_t s = 0; s < seq; s++) {
            int64_t ci = w + s;
            if (circular) ci %= maxlen;
            else if (ci >= maxlen)
                return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "write index %lld beyond max_sequence_length %lld",
                                 (long long)ci, (long long)maxlen);
            if (!ops_copy_elems(y, (p * maxlen + ci) * inner, upd, (p * seq + s) * inner, inner))
                return KILN_ERR_OUT_OF_MEMORY;
        }
    }
    return KILN_OK;
}

/* ---- sorting ---------------------------------------------------------------------------------
 * A stable merge sort of index arrays with a context comparator (qsort_r is not C11). */

typedef int (*cmp_fn)(const void *ctx, int64_t a, int64_t b);

static void merge_sort(int64_t *a, int64_t *tmp, int64_t n, cmp_fn cmp, const void *ctx)
{
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = cmp(ctx, a[j], a[i]) < 0 ? a[j++] : a[i++];
            while (i < mid) tmp[k++] = a[i++];
            while (j < hi) tmp[k++] = a[j++];
        }
        memcpy(a, tmp, sizeof(int64_t) * (size_t)n);
    }
}

/* Total order on elements of one tensor: NaN sorts above every number. */
static int cmp_elems(const core_tensor *t, int64_t i, int64_t j)
{
    kiln_dtype dt = t->dtype;
    if (dt == KILN_DTYPE_STRING) {
        int r = strcmp(ops_str_at(t, i), ops_str_at(t, j));
        return (r > 0) - (r < 0);
    }
    if (dt == KILN_DTYPE_UINT64) {
        uint64_t a = ((const uint64_t *)t->data)[i], b = ((const uint64_t *)t->data)[j];
        return (a > b) - (a < b);
    }
    if (dt == KILN_DTYPE_FLOAT) {
        float a = ((const float *)t->data)[i], b = ((const float *)t->data)[j];
        if (isnan(a) || isnan(b)) return isnan(a) - isnan(b);
        return (a > b) - (a < b);
    }
    if (core_dtype_is_float(dt)) {
        double a = core_load_f64(dt, t->data, i), b = core_load_f64(dt, t->data, j);
        if (isnan(a) || isnan(b)) return isnan(a) - isnan(b);
        return (a > b) - (a < b);
    }
    int64_t a = core_load_i64(dt, t->data, i), b = core_load_i64(dt, t->data, j);
    return (a > b) - (a < b);
}

/* ---- TopK ------------------------------------------------------------------------------------ */

typedef struct topk_ctx {
    const core_tensor *x;
    int64_t base, stride;
    bool largest;
} topk_ctx;

static int topk_cmp(const void *p, int64_t a, int64_t b)
{
    const topk_ctx *t = p;
    int r = cmp_elems(t->x, t->base + a * t->stride, t->base + b * t->stride);
    return t->largest ? -r : r;
}

static kiln_status topk_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    kiln_status st;
    int64_t axis = 0, k = 0;
    if ((st = get_axis(c, -1, x->ndim, &axis))) return st;
    if (ops_opset(c) < 10) {
        k = ops_attr_int(c, "k", -1);
    } else {
        const core_tensor *kt = ops_input(c, 1);
        if (!kt || !core_dtype_is_int(kt->dtype) || kt->numel != 1)
            return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "K must be a 1-element integer tensor");
        k = core_load_i64(kt->dtype, kt->data, 0);
    }
    int r = x->ndim;
    int64_t dim = x->dims[axis];
    if (k < 0 || k > dim)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "k %lld out of range for axis of size %lld",
                         (long long)k, (long long)dim);
    if (x->dtype == KILN_DTYPE_STRING) return ops_error(c, KILN_ERR_DTYPE, "TopK does not take strings");
    topk_ctx ctx = {x, 0, prod(x->dims, (int)axis + 1, r), ops_attr_int(c, "largest", 1) != 0};
    int64_t od[MAXD];
    memcpy(od, x->dims, sizeof(int64_t) * (size_t)r);
    od[axis] = k;
    NEW_OUTPUT(vals, 0, x->dtype, r, od);
    NEW_OUTPUT(inds, 1, KILN_DTYPE_INT64, r, od);
    if (vals->numel == 0) return KILN_OK;
    int64_t outer = prod(x->dims, 0, (int)axis), inner = ctx.stride;
    int64_t *ord = core_malloc(sizeof(int64_t) * 2 * (size_t)dim);
    if (!ord) return KILN_ERR_OUT_OF_MEMORY;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            ctx.base = o * dim * inner + i;
            for (int64_t j = 0; j < dim; j++) ord[j] = j;
            merge_sort(ord, ord + dim, dim, topk_cmp, &ctx);
            for (int64_t j = 0; j < k; j++) {
                int64_t yo = (o * k + j) * inner + i;
                ops_copy_elems(vals, yo, x, ctx.base + ord[j] * inner, 1);
                ((int64_t *)inds->data)[yo] = ord[j];
            }
        }
    free(ord);
    return KILN_OK;
}

/* ---- Unique ---------------------------------------------------------------------------------
 * Items are single elements (no axis) or slices along `axis`, compared lexicographically. */

typedef struct unique_ctx {
    const core_tensor *x;
    int64_t outer, dim, inner;
} unique_ctx;

static int unique_cmp(const void *p, int64_t a, int64_t b)
{
    const unique_ctx *u = p;
    for (int64_t o = 0; o < u->outer; o++)
        for (int64_t i = 0; i < u->inner; i++) {
            int r = cmp_elems(u->x, (o * u->dim + a) * u->inner + i, (o * u->dim + b) * u->inner + i);
            if (r) return r;
        }
    return 0;
}

static int cmp_i64(const void *p, int64_t a, int64_t b)
{
    const int64_t *v = p;
    return (v[a] > v[b]) - (v[a] < v[b]);
}

static kiln_status unique_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    bool sorted = ops_attr_int(c, "sorted", 1) != 0, has_axis = ops_has_attr(c, "axis");
    int r = x->ndim;
    int64_t axis = 0;
    kiln_status st = KILN_OK;
    unique_ctx u = {x, 1, x->numel, 1};
    if (has_axis) {
        if ((st = get_axis(c, 0, r, &axis))) return st;
        u.outer = prod(x->dims, 0, (int)axis);
        u.dim = x->dims[axis];
        u.inner = prod(x->dims, (int)axis + 1, r);
    }
    int64_t n = u.dim;
    /* ord/tmp: item order; rep/cnt: per group; inv: per item; gorder/gtmp: group order */
    int64_t *buf = core_malloc(sizeof(int64_t) * 7 * (size_t)(n ? n : 1));
    if (!buf) return KILN_ERR_OUT_OF_MEMORY;
    int64_t *ord = buf, *tmp = buf + n, *rep = buf + 2 * n, *cnt = buf + 3 * n, *inv = buf + 4 * n;
    int64_t *gorder = buf + 5 * n, *gpos = buf + 6 * n;
    for (int64_t i = 0; i < n; i++) ord[i] = i;
    merge_sort(ord, tmp, n, unique_cmp, &u);
    int64_t ng = 0;
    for (int64_t i = 0; i < n; i++) {
        if (ng == 0 || unique_cmp(&u, rep[ng - 1], ord[i]) != 0) {
            rep[ng] = ord[i];
            cnt[ng] = 0;
            ng++;
        }
        cnt[ng - 1]++;
        inv[ord[i]] = ng - 1; /* sorted group id, remapped below */
    }
    for (int64_t g = 0; g < ng; g++) gorder[g] = g;
    if (!sorted) merge_sort(gorder, tmp, ng, cmp_i64, rep); /* by first occurrence */
    for (int64_t g = 0; g < ng; g++) gpos[gorder[g]] = g;
    int64_t od[MAXD];
    int ond = 1;
    if (has_axis) {
        memcpy(od, x->dims, sizeof(int64_t) * (size_t)r);
        od[axis] = ng;
        ond = r;
    } else {
        od[0] = ng;
    }
    core_tensor *y = ops_output(c, 0, x->dtype, ond, od);
    int no = ops_n_outputs(c);
    core_tensor *yi = no > 1 ? ops_output(c, 1, KILN_DTYPE_INT64, 1, &ng) : NULL;
    core_tensor *yinv = no > 2 ? ops_output(c, 2, KILN_DTYPE_INT64, 1, &n) : NULL;
    core_tensor *ycnt = no > 3 ? ops_output(c, 3, KILN_DTYPE_INT64, 1, &ng) : NULL;
    if (!y || (no > 1 && !yi) || (no > 2 && !yinv) || (no > 3 && !ycnt)) {
        free(buf);
        return KILN_ERR_OUT_OF_MEMORY;
    }
    for (int64_t g = 0; g < ng && !st; g++) {
        int64_t src = rep[gorder[g]];
        for (int64_t o = 0; o < u.outer; o++)
            if (!ops_copy_elems(y, (o * ng + g) * u.inner, x, (o * n + src) * u.inner, u.inner)) {
                st = KILN_ERR_OUT_OF_MEMORY;
                break;
            }
        if (yi) ((int64_t *)yi->data)[g] = src;
        if (ycnt) ((int64_t *)ycnt->data)[g] = cnt[gorder[g]];
    }
    if (yinv)
        for (int64_t i = 0; i < n; i++) ((int64_t *)yinv->data)[i] = gpos[inv[i]];
    free(buf);
    return st;
}

/* ---- NonZero, OneHot ------------------------------------------------------------------------ */

static bool elem_nonzero(const core_tensor *t, int64_t i)
{
    if (core_dtype_is_float(t->dtype)) return core_load_f64(t->dtype, t->data, i) != 0;
    size_t esz = core_dtype_size(t->dtype);
    const unsigned char *p = (const unsigned char *)t->data + (size_t)i * esz;
    for (size_t k = 0; k < esz; k++)
        if (p[k]) return true;
    return false;
}

static kiln_status nonzero_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    if (x->dtype == KILN_DTYPE_STRING) return ops_error(c, KILN_ERR_DTYPE, "NonZero does not take strings");
    int r = x->ndim;
    int64_t nnz = 0;
    for (int64_t i = 0; i < x->numel; i++) nnz += elem_nonzero(x, i);
    /* A scalar is treated as a 1-element vector (as ONNX Runtime does). */
    int64_t od[2] = {r > 0 ? r : 1, nnz};
    NEW_OUTPUT(y, 0, KILN_DTYPE_INT64, 2, od);
    if (nnz == 0) return KILN_OK;
    int64_t *yp = y->data, idx[MAXD] = {0}, j = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        if (elem_nonzero(x, i)) {
            if (r == 0) yp[j] = 0;
            for (int d = 0; d < r; d++) yp[d * nnz + j] = idx[d];
            j++;
        }
        if (r > 0) ops_index_next(r, x->dims, idx);
    }
    return KILN_OK;
}

static int64_t load_int_any(const core_tensor *t, int64_t i)
{
    if (core_dtype_is_float(t->dtype)) {
        double v = core_load_f64(t->dtype, t->data, i);
        if (!(v == v)) return INT64_MIN;
        if (v >= 9.2e18) return INT64_MAX;
        if (v <= -9.2e18) return INT64_MIN;
        return (int64_t)v;
    }
    return core_load_i64(t->dtype, t->data, i);
}

static kiln_status onehot_run(ops_ctx *c)
{
    GET_INPUT(ind, 0);
    GET_INPUT(dep, 1);
    GET_INPUT(vals, 2);
    if (ind->dtype == KILN_DTYPE_STRING || dep->dtype == KILN_DTYPE_STRING || dep->dtype == KILN_DTYPE_BOOL)
        return ops_error(c, KILN_ERR_DTYPE, "indices and depth must be numeric");
    if (dep->numel != 1) return ops_error(c, KILN_ERR_SHAPE, "depth has %lld values, expected 1", (long long)dep->numel);
    if (vals->numel != 2) return ops_error(c, KILN_ERR_SHAPE, "values has %lld values, expected 2", (long long)vals->numel);
    int64_t depth = load_int_any(dep, 0);
    if (depth < 0 || depth > ((int64_t)1 << 40))
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "depth %lld invalid", (long long)depth);
    int r = ind->ndim;
    if (r + 1 > MAXD) return ops_error(c, KILN_ERR_UNSUPPORTED, "output rank too large");
    int64_t axis = ops_attr_int(c, "axis", -1);
    if (axis < -(r + 1) || axis > r)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "axis %lld out of range for output rank %d",
                         (long long)axis, r + 1);
    if (axis < 0) axis += r + 1;
    int64_t od[MAXD];
    for (int i = 0, k = 0; i <= r; i++) od[i] = i == axis ? depth : ind->dims[k++];
    NEW_OUTPUT(y, 0, vals->dtype, r + 1, od);
    int64_t outer = prod(ind->dims, 0, (int)axis), inner = prod(ind->dims, (int)axis, r);
    for (int64_t i = 0; i < y->numel; i++)
        if (!ops_copy_elems(y, i, vals, 0, 1)) return KILN_ERR_OUT_OF_MEMORY;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t v = load_int_any(ind, o * inner + i);
            if (v < 0 && v != INT64_MIN) v += depth;
            if (v < 0 || v >= depth) continue; /* out of range: the row stays all off_value */
            if (!ops_copy_elems(y, (o * depth + v) * inner + i, vals, 1, 1)) return KILN_ERR_OUT_OF_MEMORY;
        }
    return KILN_OK;
}

const ops_schema ops_table_index[] = {
    {"Gather", "", 1, gather_run},
    {"GatherElements", "", 11, gather_elements_run},
    {"GatherND", "", 11, gather_nd_run},
    {"Scatter", "", 9, scatter_elements_run},
    {"ScatterElements", "", 11, scatter_elements_run},
    {"ScatterND", "", 11, scatter_nd_run},
    {"TensorScatter", "", 24, tensor_scatter_run},
    {"TopK", "", 1, topk_run},
    {"Unique", "", 11, unique_run},
    {"NonZero", "", 9, nonzero_run},
    {"OneHot", "", 9, onehot_run},
    OPS_TABLE_END
};
