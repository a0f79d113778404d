/* shape.c — reference kernels for ops that move or replicate elements without arithmetic:
 * Reshape, Transpose, Concat, Split, Slice, Pad, Expand, Tile, constants, Dropout, ... */
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

/* ---- element movement ------------------------------------------------------------------ */



static bool copy_all(core_tensor *dst, const core_tensor *src)
{
    return ops_copy_elems(dst, 0, src, 0, src->numel < dst->numel ? src->numel : dst->numel);
}

/* Copies a box of `dims` elements: element at index idx is read from src offset
 * soff + sum(idx*ss) and written to dst offset doff + sum(idx*ds). Source strides may be
 * zero (broadcast) or negative (reversed slices). Adjacent dims that are contiguous in
 * both tensors are merged so the inner loop is as long as possible. */
static bool copy_box(core_tensor *dst, int64_t doff, const int64_t *ds, const core_tensor *src,
                     int64_t soff, const int64_t *ss, int ndim, const int64_t *dims)
{
    int64_t d[2 * MAXD], a[2 * MAXD], b[2 * MAXD], idx[2 * MAXD];
    int n = 0;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] == 0) return true;
        if (dims[i] == 1) continue;
        if (n > 0 && a[n - 1] == ss[i] * dims[i] && b[n - 1] == ds[i] * dims[i]) {
            d[n - 1] *= dims[i];
            a[n - 1] = ss[i];
            b[n - 1] = ds[i];
        } else {
            d[n] = dims[i];
            a[n] = ss[i];
            b[n] = ds[i];
            n++;
        }
    }
    if (n == 0) { d[0] = 1; a[0] = 1; b[0] = 1; n = 1; }
    for (int i = 0; i < n; i++) idx[i] = 0;
    const int64_t inner = d[n - 1], sa = a[n - 1], sb = b[n - 1];
    const bool is_str = src->dtype == KILN_DTYPE_STRING;
    const size_t esz = core_dtype_size(src->dtype);
    const char *sp = (const char *)src->data;
    char *dp = (char *)dst->data;
    int64_t so = soff, dof = doff;
    for (;;) {
        if (is_str) {
            for (int64_t j = 0; j < inner; j++) {
                const char *s = ops_str_at(src, so + j * sa);
                if (!core_tensor_set_string(dst, dof + j * sb, s, strlen(s))) return false;
            }
        } else if (sa == 1 && sb == 1) {
            memcpy(dp + (size_t)dof * esz, sp + (size_t)so * esz, (size_t)inner * esz);
        } else {
            switch (esz) {
#define COPY_STRIDED(T)                                                                      \
    {                                                                                        \
        const T *s_ = (const T *)sp + so;                                                    \
        T *d_ = (T *)dp + dof;                                                               \
        for (int64_t j = 0; j < inner; j++) d_[j * sb] = s_[j * sa];                         \
    }                                                                                        \
    break;
            case 1: COPY_STRIDED(uint8_t)
            case 2: COPY_STRIDED(uint16_t)
            case 4: COPY_STRIDED(uint32_t)
            case 8: COPY_STRIDED(uint64_t)
#undef COPY_STRIDED
            default:
                for (int64_t j = 0; j < inner; j++)
                    memcpy(dp + (size_t)(dof + j * sb) * esz, sp + (size_t)(so + j * sa) * esz, esz);
            }
        }
        int k = n - 2;
        for (; k >= 0; k--) {
            idx[k]++;
            so += a[k];
            dof += b[k];
            if (idx[k] < d[k]) break;
            so -= a[k] * d[k];
            dof -= b[k] * d[k];
            idx[k] = 0;
        }
        if (k < 0) break;
    }
    return true;
}

/* An element value held as raw bytes (numeric) or a string, used to fill tensors. */
typedef struct elem_value {
    unsigned char bytes[16];
    const char *str;
} elem_value;

static void elem_from_f64(elem_value *v, kiln_dtype dt, double x)
{
    memset(v, 0, sizeof *v);
    v->str = "";
    if (dt != KILN_DTYPE_STRING && core_dtype_size(dt) <= sizeof v->bytes && core_dtype_size(dt) > 0)
        core_store_f64(dt, v->bytes, 0, x);
}

/* Element i of t as a fill value converted to dtype dt (numeric conversions go through
 * double; strings only to strings). */
static bool elem_from_tensor(elem_value *v, kiln_dtype dt, const core_tensor *t, int64_t i)
{
    memset(v, 0, sizeof *v);
    v->str = "";
    if (t->dtype == dt) {
        if (dt == KILN_DTYPE_STRING) v->str = ops_str_at(t, i);
        else {
            size_t esz = core_dtype_size(dt);
            if (esz == 0 || esz > sizeof v->bytes) return false;
            memcpy(v->bytes, (const char *)t->data + (size_t)i * esz, esz);
        }
        return true;
    }
    if (dt == KILN_DTYPE_STRING || t->dtype == KILN_DTYPE_STRING) return false;
    elem_from_f64(v, dt, core_load_f64(t->dtype, t->data, i));
    return true;
}

static bool fill_range(core_tensor *t, int64_t start, int64_t n, const elem_value *v)
{
    if (t->dtype == KILN_DTYPE_STRING) {
        size_t len = strlen(v->str);
        for (int64_t i = 0; i < n; i++)
            if (!core_tensor_set_string(t, start + i, v->str, len)) return false;
        return true;
    }
    size_t esz = core_dtype_size(t->dtype);
    char *p = (char *)t->data + (size_t)start * esz;
    bool zero = true;
    for (size_t k = 0; k < esz; k++) zero = zero && v->bytes[k] == 0;
    if (zero) { memset(p, 0, (size_t)n * esz); return true; }
    for (int64_t i = 0; i < n; i++) memcpy(p + (size_t)i * esz, v->bytes, esz);
    return true;
}

/* Reads an integer tensor (any int dtype, any rank) into out[0..max). */
static kiln_status read_ints(ops_ctx *c, const core_tensor *t, const char *what, int64_t *out,
                             int64_t max, int64_t *n)
{
    if (!t) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "%s is missing", what);
    if (!core_dtype_is_int(t->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "%s must be an integer tensor, got %s", what,
                         core_dtype_name(t->dtype));
    if (t->numel > max)
        return ops_error(c, KILN_ERR_SHAPE, "%s has %lld values, at most %lld supported", what,
                         (long long)t->numel, (long long)max);
    for (int64_t i = 0; i < t->numel; i++) out[i] = core_load_i64(t->dtype, t->data, i);
    *n = t->numel;
    return KILN_OK;
}

/* Reads an ints attribute into out[0..max). Absent -> *n = 0 and *present = false. */
static kiln_status attr_ints(ops_ctx *c, const char *name, int64_t *out, int64_t max, int64_t *n,
                             bool *present)
{
    const int64_t *v = ops_attr_ints(c, name, n);
    if (present) *present = ops_has_attr(c, name);
    if (*n > max)
        return ops_error(c, KILN_ERR_SHAPE, "attribute '%s' has %lld values, at most %lld supported",
                         name, (long long)*n, (long long)max);
    for (int64_t i = 0; i < *n; i++) out[i] = v[i];
    return KILN_OK;
}

static char *dims_str(int ndim, const int64_t *dims, char *buf, size_t size)
{
    return core_shape_str(ndim, dims, buf, size);
}

/* Normalizes a list of axes against rank r; rejects out-of-range and repeated axes. */
static kiln_status norm_axes(ops_ctx *c, int64_t *axes, int64_t n, int r, const char *what)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t a = axes[i];
        if (a < -r || a >= r || r == 0)
            return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "%s value %lld out of range for rank %d",
                             what, (long long)a, r);
        if (a < 0) a += r;
        for (int64_t j = 0; j < i; j++)
            if (axes[j] == a)
                return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "%s repeats axis %lld", what,
                                 (long long)a);
        axes[i] = a;
    }
    return KILN_OK;
}

/* The output of a Reshape-like op (input 0's elements in order, a new shape). When input 0
 * dies here and nobody else holds it, the output takes over its buffer (no copy: these ops
 * are pure metadata); else the elements are copied. */
static kiln_status make_output_copy(ops_ctx *c, const core_tensor *x, int ndim, const int64_t *dims)
{
    if (ops_input(c, 0) == x) {
        core_tensor *t;
        kiln_status st = ops_output_donated(c, 0, 0, ndim, dims, &t);
        if (st || t) return st;
    }
    NEW_OUTPUT(y, 0, x->dtype, ndim, dims);
    if (y->numel != x->numel)
        return ops_error(c, KILN_ERR_INTERNAL, "reshape size mismatch");
    return copy_all(y, x) ? KILN_OK : KILN_ERR_OUT_OF_MEMORY;
}

/* ---- Identity, Constant, Shape, Size ---------------------------------------------------- */

static kiln_status identity_run(ops_ctx *c)
{
    core_value *v = ops_input_value(c, 0);
    if (!v) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "input 0 is missing");
    return ops_set_output(c, 0, core_value_retain(v));
}

static kiln_status constant_run(ops_ctx *c)
{
    const ir_attr *a;
    /* The importer densifies sparse_value into a->t. */
    if (((a = ops_attr(c, "value")) || (a = ops_attr(c, "sparse_value"))) && a->t) {
        core_tensor *t = core_tensor_clone(a->t);
        if (!t) return KILN_ERR_OUT_OF_MEMORY;
        core_value *v = core_value_from_tensor(t);
        if (!v) { core_tensor_destroy(t); return KILN_ERR_OUT_OF_MEMORY; }
        return ops_set_output(c, 0, v);
    }
    if ((a = ops_attr(c, "value_float"))) {
        NEW_OUTPUT(y, 0, KILN_DTYPE_FLOAT, 0, NULL);
        ((float *)y->data)[0] = a->f;
        return KILN_OK;
    }
    if ((a = ops_attr(c, "value_int"))) {
        NEW_OUTPUT(y, 0, KILN_DTYPE_INT64, 0, NULL);
        ((int64_t *)y->data)[0] = a->i;
        return KILN_OK;
    }
    if ((a = ops_attr(c, "value_floats"))) {
        int64_t n = a->n;
        NEW_OUTPUT(y, 0, KILN_DTYPE_FLOAT, 1, &n);
        if (n) memcpy(y->data, a->floats, (size_t)n * sizeof(float));
        return KILN_OK;
    }
    if ((a = ops_attr(c, "value_ints"))) {
        int64_t n = a->n;
        NEW_OUTPUT(y, 0, KILN_DTYPE_INT64, 1, &n);
        if (n) memcpy(y->data, a->ints, (size_t)n * sizeof(int64_t));
        return KILN_OK;
    }
    if ((a = ops_attr(c, "value_string"))) {
        NEW_OUTPUT(y, 0, KILN_DTYPE_STRING, 0, NULL);
        const char *s = a->s ? a->s : "";
        return core_tensor_set_string(y, 0, s, a->s ? a->s_len : 0) ? KILN_OK : KILN_ERR_OUT_OF_MEMORY;
    }
    if ((a = ops_attr(c, "value_strings"))) {
        int64_t n = a->n;
        NEW_OUTPUT(y, 0, KILN_DTYPE_STRING, 1, &n);
        for (int64_t i = 0; i < n; i++) {
            const char *s = a->strings && a->strings[i] ? a->strings[i] : "";
            if (!core_tensor_set_string(y, i, s, strlen(s))) return KILN_ERR_OUT_OF_MEMORY;
        }
        return KILN_OK;
    }
    if (ops_has_attr(c, "sparse_value"))
        return ops_error(c, KILN_ERR_INVALID_MODEL, "sparse_value holds no tensor");
    return ops_error(c, KILN_ERR_INVALID_MODEL, "no value attribute");
}

static kiln_status shape_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    int64_t r = x->ndim;
    int64_t start = ops_attr_int(c, "start", 0), end = ops_attr_int(c, "end", r);
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = start < 0 ? 0 : start > r ? r : start;
    end = end < 0 ? 0 : end > r ? r : end;
    int64_t n = end > start ? end - start : 0;
    NEW_OUTPUT(y, 0, KILN_DTYPE_INT64, 1, &n);
    for (int64_t i = 0; i < n; i++) ((int64_t *)y->data)[i] = x->dims[start + i];
    return KILN_OK;
}

static kiln_status size_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    NEW_OUTPUT(y, 0, KILN_DTYPE_INT64, 0, NULL);
    ((int64_t *)y->data)[0] = x->numel;
    return KILN_OK;
}

/* ---- Reshape, Flatten, Squeeze, Unsqueeze ---------------------------------------------- */

static kiln_status reshape_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    int64_t shp[MAXD], n = 0;
    kiln_status st;
    if (ops_opset(c) < 5) st = attr_ints(c, "shape", shp, MAXD, &n, NULL);
    else st = read_ints(c, ops_input(c, 1), "shape (input 1)", shp, MAXD, &n);
    if (st) return st;
    bool allowzero = ops_attr_int(c, "allowzero", 0) != 0;
    int64_t out[MAXD], known = 1;
    int neg = -1;
    bool has_zero = false;
    for (int i = 0; i < n; i++) {
        int64_t v = shp[i];
        if (v == -1) {
            if (neg >= 0) return ops_error(c, KILN_ERR_SHAPE, "shape has more than one -1");
            neg = i;
            out[i] = 1;
            continue;
        }
        if (v == 0 && !allowzero) {
            if (i >= x->ndim)
                return ops_error(c, KILN_ERR_SHAPE, "shape[%d] is 0 but the input has only %d dims",
                                 i, x->ndim);
            v = x->dims[i];
        } else if (v < 0) {
            return ops_error(c, KILN_ERR_SHAPE, "shape[%d] is %lld", i, (long long)v);
        }
        if (v == 0) has_zero = true;
        out[i] = v;
        if (!core_mul_size(known, v, &known))
            return ops_error(c, KILN_ERR_SHAPE, "shape overflows");
    }
    if (neg >= 0) {
        if (has_zero && allowzero)
            return ops_error(c, KILN_ERR_SHAPE, "shape has both 0 and -1 with allowzero=1");
        if (known == 0) {
            /* ambiguous for an empty input, impossible otherwise (numpy and ORT agree) */
            return ops_error(c, KILN_ERR_SHAPE, "cannot infer -1: the other dims multiply to 0");
        } else {
            if (x->numel % known)
                return ops_error(c, KILN_ERR_SHAPE, "cannot reshape %lld elements with -1 (rest %lld)",
                                 (long long)x->numel, (long long)known);
            out[neg] = x->numel / known;
        }
    } else if (known != x->numel) {
        char b1[128], b2[128];
        return ops_error(c, KILN_ERR_SHAPE, "cannot reshape %s into %s",
                         dims_str(x->ndim, x->dims, b1, sizeof b1), dims_str((int)n, out, b2, sizeof b2));
    }
    return make_output_copy(c, x, (int)n, out);
}

static kiln_status flatten_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    int64_t axis = ops_attr_int(c, "axis", 1);
    int r = x->ndim;
    if (axis < -r || axis > r)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "axis %lld out of range for rank %d",
                         (long long)axis, r);
    if (axis < 0) axis += r;
    int64_t d[2] = {1, 1};
    for (int i = 0; i < r; i++) d[i < axis ? 0 : 1] *= x->dims[i];
    return make_output_copy(c, x, 2, d);
}

static kiln_status squeeze_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    int64_t axes[MAXD], n = 0;
    bool given = false;
    kiln_status st;
    if (ops_opset(c) < 13) {
        st = attr_ints(c, "axes", axes, MAXD, &n, &given);
    } else {
        const core_tensor *ax = ops_input(c, 1);
        given = ax != NULL;
        st = ax ? read_ints(c, ax, "axes (input 1)", axes, MAXD, &n) : KILN_OK;
    }
    if (st) return st;
    if ((st = norm_axes(c, axes, n, x->ndim, "axes"))) return st;
    bool drop[MAXD] = {false};
    if (!given) {
        for (int i = 0; i < x->ndim; i++) drop[i] = x->dims[i] == 1;
    } else {
        for (int64_t i = 0; i < n; i++) {
            if (x->dims[axes[i]] != 1)
                return ops_error(c, KILN_ERR_SHAPE, "cannot squeeze axis %lld of size %lld",
                                 (long long)axes[i], (long long)x->dims[axes[i]]);
            drop[axes[i]] = true;
        }
    }
    int64_t out[MAXD];
    int m = 0;
    for (int i = 0; i < x->ndim; i++)
        if (!drop[i]) out[m++] = x->dims[i];
    return make_output_copy(c, x, m, out);
}

static kiln_status unsqueeze_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    int64_t axes[MAXD], n = 0;
    kiln_status st;
    if (ops_opset(c) < 13) st = attr_ints(c, "axes", axes, MAXD, &n, NULL);
    else st = read_ints(c, ops_input(c, 1), "axes (input 1)", axes, MAXD, &n);
    if (st) return st;
    int64_t r = x->ndim + n;
    if (r > MAXD) return ops_error(c, KILN_ERR_UNSUPPORTED, "output rank %lld too large", (long long)r);
    if ((st = norm_axes(c, axes, n, (int)r, "axes"))) return st;
    bool ins[MAXD] = {false};
    for (int64_t i = 0; i < n; i++) ins[axes[i]] = true;
    int64_t out[MAXD];
    int k = 0;
    for (int i = 0; i < r; i++) out[i] = ins[i] ? 1 : x->dims[k++];
    return make_output_copy(c, x, (int)r, out);
}

/* ---- Transpose, Concat, Split ------------------------------------------------------------ */

static kiln_status transpose_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    int r = x->ndim;
    int64_t perm[MAXD], n = 0;
    bool given;
    kiln_status st = attr_ints(c, "perm", perm, MAXD, &n, &given);
    if (st) return st;
    if (!given || n == 0) {
        n = r;
        for (int i = 0; i < r; i++) perm[i] = r - 1 - i;
    }
    if (n != r)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "perm has %lld entries for rank %d", (long long)n, r);
    if ((st = norm_axes(c, perm, n, r, "perm"))) return st;
    int64_t xs[MAXD], ys[MAXD], ss[MAXD], od[MAXD];
    ops_contiguous_strides(r, x->dims, xs);
    for (int i = 0; i < r; i++) { od[i] = x->dims[perm[i]]; ss[i] = xs[perm[i]]; }
    NEW_OUTPUT(y, 0, x->dtype, r, od);
    ops_contiguous_strides(r, od, ys);
    return copy_box(y, 0, ys, x, 0, ss, r, od) ? KILN_OK : KILN_ERR_OUT_OF_MEMORY;
}

static kiln_status concat_run(ops_ctx *c)
{
    int ni = ops_n_inputs(c);
    const core_tensor *x0 = NULL;
    for (int i = 0; i < ni && !x0; i++) x0 = ops_input(c, i);
    if (!x0) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "no inputs");
    int r = x0->ndim;
    if (!ops_has_attr(c, "axis") && ops_opset(c) >= 4)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "missing attribute 'axis'");
    int64_t axis = ops_attr_int(c, "axis", 1);
    if (r == 0) return ops_error(c, KILN_ERR_SHAPE, "cannot concatenate scalars");
    if (axis < -r || axis >= r)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "axis %lld out of range for rank %d",
                         (long long)axis, r);
    if (axis < 0) axis += r;
    int64_t od[MAXD];
    memcpy(od, x0->dims, sizeof(int64_t) * (size_t)r);
    od[axis] = 0;
    for (int i = 0; i < ni; i++) {
        const core_tensor *x = ops_input(c, i);
        if (!x) continue;
        if (x->dtype != x0->dtype)
            return ops_error(c, KILN_ERR_DTYPE, "input %d is %s, input 0 is %s", i,
                             core_dtype_name(x->dtype), core_dtype_name(x0->dtype));
        if (x->ndim != r)
            return ops_error(c, KILN_ERR_SHAPE, "input %d has %d dims, expected %d", i, x->ndim, r);
        for (int k = 0; k < r; k++)
            if (k != axis && x->dims[k] != x0->dims[k])
                return ops_error(c, KILN_ERR_SHAPE, "input %d dim %d is %lld, expected %lld", i, k,
                                 (long long)x->dims[k], (long long)x0->dims[k]);
        od[axis] += x->dims[axis];
    }
    NEW_OUTPUT(y, 0, x0->dtype, r, od);
    int64_t ys[MAXD], xs[MAXD], off = 0;
    ops_contiguous_strides(r, od, ys);
    for (int i = 0; i < ni; i++) {
        const core_tensor *x = ops_input(c, i);
        if (!x) continue;
        ops_contiguous_strides(r, x->dims, xs);
        if (!copy_box(y, off * ys[axis], ys, x, 0, xs, r, x->dims)) return KILN_ERR_OUT_OF_MEMORY;
        off += x->dims[axis];
    }
    return KILN_OK;
}

static kiln_status split_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    int r = x->ndim, no = ops_n_outputs(c);
    int64_t axis = ops_attr_int(c, "axis", 0);
    if (r == 0) return ops_error(c, KILN_ERR_SHAPE, "cannot split a scalar");
    if (axis < -r || axis >= r)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "axis %lld out of range for rank %d",
                         (long long)axis, r);
    if (axis < 0) axis += r;
    if (no <= 0) return KILN_OK;
    int64_t dim = x->dims[axis];
    int64_t *sizes = core_calloc((size_t)no, sizeof(int64_t));
    if (!sizes) return KILN_ERR_OUT_OF_MEMORY;
    kiln_status st = KILN_OK;
    const core_tensor *sp = ops_input(c, 1);
    int64_t ns = 0;
    const int64_t *sa = ops_attr_ints(c, "split", &ns);
    if (sp) {
        if (!core_dtype_is_int(sp->dtype) || sp->numel != no) {
            st = ops_error(c, KILN_ERR_INVALID_ARGUMENT, "split input has %lld values for %d outputs",
                           (long long)sp->numel, no);
            goto done;
        }
        for (int i = 0; i < no; i++) sizes[i] = core_load_i64(sp->dtype, sp->data, i);
    } else if (sa && ns > 0) {
        if (ns != no) {
            st = ops_error(c, KILN_ERR_INVALID_ARGUMENT, "split attribute has %lld values for %d outputs",
                           (long long)ns, no);
            goto done;
        }
        for (int i = 0; i < no; i++) sizes[i] = sa[i];
    } else if (ops_has_attr(c, "num_outputs")) {
        int64_t nout = ops_attr_int(c, "num_outputs", no);
        if (nout != no || nout <= 0) {
            st = ops_error(c, KILN_ERR_INVALID_ARGUMENT, "num_outputs %lld but the node has %d outputs",
                           (long long)nout, no);
            goto done;
        }
        int64_t chunk = (dim + nout - 1) / nout, left = dim;
        for (int i = 0; i < no; i++) {
            sizes[i] = chunk < left ? chunk : left;
            left -= sizes[i];
        }
    } else {
        if (dim % no) {
            st = ops_error(c, KILN_ERR_SHAPE, "dim %lld of size %lld does not split evenly into %d",
                           (long long)axis, (long long)dim, no);
            goto done;
        }
        for (int i = 0; i < no; i++) sizes[i] = dim / no;
    }
    for (int i = 0; i < no; i++)
        if (sizes[i] < 0) {
            st = ops_error(c, KILN_ERR_INVALID_ARGUMENT, "split[%d] is %lld", i, (long long)sizes[i]);
            goto done;
        }
    int64_t total = 0;
    for (int i = 0; i < no; i++) {
        total += sizes[i];
        if (total > dim) break;
    }
    if (total != dim) {
        st = ops_error(c, KILN_ERR_SHAPE, "split sizes sum to %lld, dim %lld is %lld", (long long)total,
                       (long long)axis, (long long)dim);
        goto done;
    }
    int64_t xs[MAXD], ys[MAXD], od[MAXD], off = 0;
    ops_contiguous_strides(r, x->dims, xs);
    for (int i = 0; i < no; i++) {
        memcpy(od, x->dims, sizeof(int64_t) * (size_t)r);
        od[axis] = sizes[i];
        core_tensor *y = ops_output(c, i, x->dtype, r, od);
        if (!y) { st = KILN_ERR_OUT_OF_MEMORY; goto done; }
        ops_contiguous_strides(r, od, ys);
        if (!copy_box(y, 0, ys, x, off * xs[axis], xs, r, od)) { st = KILN_ERR_OUT_OF_MEMORY; goto done; }
        off += sizes[i];
    }
done:
    free(sizes);
    return st;
}

/* ---- Slice ------------------------------------------------------------------------------ */

static kiln_status slice_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    int r = x->ndim;
    int64_t starts[MAXD], ends[MAXD], axes[MAXD], steps[MAXD];
    int64_t ns = 0, ne = 0, na = 0, nst = 0;
    bool has_axes = false, has_steps = false;
    kiln_status st;
    if (ops_opset(c) < 10) {
        if ((st = attr_ints(c, "starts", starts, MAXD, &ns, NULL))) return st;
        if ((st = attr_ints(c, "ends", ends, MAXD, &ne, NULL))) return st;
        if ((st = attr_ints(c, "axes", axes, MAXD, &na, &has_axes))) return st;
    } else {
        if ((st = read_ints(c, ops_input(c, 1), "starts", starts, MAXD, &ns))) return st;
        if ((st = read_ints(c, ops_input(c, 2), "ends", ends, MAXD, &ne))) return st;
        if (ops_input(c, 3)) {
            has_axes = true;
            if ((st = read_ints(c, ops_input(c, 3), "axes", axes, MAXD, &na))) return st;
        }
        if (ops_input(c, 4)) {
            has_steps = true;
            if ((st = read_ints(c, ops_input(c, 4), "steps", steps, MAXD, &nst))) return st;
        }
    }
    if (ns != ne)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "starts has %lld values, ends %lld",
                         (long long)ns, (long long)ne);
    if (!has_axes) {
        if (ns > r)
            return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "%lld starts for rank %d", (long long)ns, r);
        na = ns;
        for (int i = 0; i < ns; i++) axes[i] = i;
    }
    if (!has_steps) {
        nst = ns;
        for (int i = 0; i < ns; i++) steps[i] = 1;
    }
    if (na != ns || nst != ns)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "starts/ends/axes/steps lengths differ (%lld/%lld/%lld/%lld)",
                         (long long)ns, (long long)ne, (long long)na, (long long)nst);
    if ((st = norm_axes(c, axes, na, r, "axes"))) return st;
    int64_t xs[MAXD], ss[MAXD], od[MAXD], ys[MAXD], soff = 0;
    ops_contiguous_strides(r, x->dims, xs);
    for (int i = 0; i < r; i++) { od[i] = x->dims[i]; ss[i] = xs[i]; }
    for (int i = 0; i < ns; i++) {
        int64_t ax = axes[i], d = x->dims[ax], s = starts[i], e = ends[i], t = steps[i];
        if (t == 0) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "steps[%d] is 0", i);
        /* A step longer than the dim picks at most one element, like any other such step:
         * clamping it keeps the arithmetic below free of overflow. */
        if (t > d + 1) t = d + 1;
        if (t < -(d + 1)) t = -(d + 1);
        if (s < 0) s += d;
        if (e < 0) e += d;
        int64_t cnt;
        if (t > 0) {
            s = s < 0 ? 0 : s > d ? d : s;
            e = e < 0 ? 0 : e > d ? d : e;
            cnt = e > s ? (e - s + t - 1) / t : 0;
        } else {
            s = s < 0 ? 0 : s > d - 1 ? d - 1 : s;
            e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
            cnt = s > e ? (s - e + (-t) - 1) / (-t) : 0;
        }
        od[ax] = cnt;
        ss[ax] = xs[ax] * t;
        if (cnt > 0) soff += s * xs[ax];
    }
    NEW_OUTPUT(y, 0, x->dtype, r, od);
    ops_contiguous_strides(r, od, ys);
    return copy_box(y, 0, ys, x, soff, ss, r, od) ? KILN_OK : KILN_ERR_OUT_OF_MEMORY;
}

/* ---- Expand, Tile ------------------------------------------------------------------------ */

static kiln_status expand_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    int64_t shp[MAXD], n = 0;
    kiln_status st = read_ints(c, ops_input(c, 1), "shape (input 1)", shp, MAXD, &n);
    if (st) return st;
    for (int i = 0; i < n; i++)
        if (shp[i] < 0) return ops_error(c, KILN_ERR_SHAPE, "shape[%d] is %lld", i, (long long)shp[i]);
    int64_t od[MAXD], ss[MAXD], ys[MAXD];
    int r;
    if (!ops_broadcast_shape(x->ndim, x->dims, (int)n, shp, &r, od)) {
        char b1[128], b2[128];
        return ops_error(c, KILN_ERR_SHAPE, "cannot expand %s to %s",
                         dims_str(x->ndim, x->dims, b1, sizeof b1), dims_str((int)n, shp, b2, sizeof b2));
    }
    ops_broadcast_strides(x->ndim, x->dims, r, od, ss);
    NEW_OUTPUT(y, 0, x->dtype, r, od);
    ops_contiguous_strides(r, od, ys);
    return copy_box(y, 0, ys, x, 0, ss, r, od) ? KILN_OK : KILN_ERR_OUT_OF_MEMORY;
}

static kiln_status tile_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    int r = x->ndim;
    int64_t rep[MAXD], n = 0;
    kiln_status st = read_ints(c, ops_input(c, 1), "repeats (input 1)", rep, MAXD, &n);
    if (st) return st;
    if (n != r)
        return ops_error(c, KILN_ERR_SHAPE, "repeats has %lld values for rank %d", (long long)n, r);
    int64_t od[MAXD], xs[MAXD];
    for (int i = 0; i < r; i++) {
        if (rep[i] < 0) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "repeats[%d] is %lld", i, (long long)rep[i]);
        if (!core_mul_size(x->dims[i], rep[i], &od[i])) return ops_error(c, KILN_ERR_SHAPE, "output too large");
    }
    NEW_OUTPUT(y, 0, x->dtype, r, od);
    /* Output index i*d + j along each axis is the row-major order of a (repeat, dim) pair:
     * a 2r-dim view whose repeat dims read the input with stride 0. */
    int64_t vd[2 * MAXD], vs[2 * MAXD], vys[2 * MAXD];
    ops_contiguous_strides(r, x->dims, xs);
    for (int i = 0; i < r; i++) {
        vd[2 * i] = rep[i];
        vd[2 * i + 1] = x->dims[i];
        vs[2 * i] = 0;
        vs[2 * i + 1] = xs[i];
    }
    ops_contiguous_strides(2 * r, vd, vys);
    return copy_box(y, 0, vys, x, 0, vs, 2 * r, vd) ? KILN_OK : KILN_ERR_OUT_OF_MEMORY;
}

/* ---- Pad, CenterCropPad ------------------------------------------------------------------ */

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

static int64_t pad_source(int mode, int64_t k, int64_t len)
{
    if (k >= 0 && k < len) return k;
    switch (mode) {
    case PAD_EDGE: return k < 0 ? 0 : len - 1;
    case PAD_WRAP: { int64_t m = k % len; return m < 0 ? m + len : m; }
    case PAD_REFLECT: {
        if (len == 1) return 0;
        int64_t p = 2 * (len - 1), m = k % p;
        if (m < 0) m += p;
        return m < len ? m : p - m;
    }
    default: return -1;
    }
}

static kiln_status pad_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    int r = x->ndim, opset = ops_opset(c);
    int64_t pads[2 * MAXD], np = 0, axes[MAXD], na = 0;
    elem_value val;
    kiln_status st;
    const char *ms = ops_attr_string(c, "mode", "constant");
    int mode;
    if (!strcmp(ms, "constant")) mode = PAD_CONSTANT;
    else if (!strcmp(ms, "reflect")) mode = PAD_REFLECT;
    else if (!strcmp(ms, "edge")) mode = PAD_EDGE;
    else if (!strcmp(ms, "wrap")) mode = PAD_WRAP;
    else return ops_error(c, KILN_ERR_UNSUPPORTED, "unknown mode '%s'", ms);
    if (opset < 11) {
        const char *pname = opset < 2 && ops_has_attr(c, "paddings") ? "paddings" : "pads";
        if ((st = attr_ints(c, pname, pads, 2 * MAXD, &np, NULL))) return st;
        elem_from_f64(&val, x->dtype, ops_attr_float(c, "value", 0.0f));
    } else {
        if ((st = read_ints(c, ops_input(c, 1), "pads (input 1)", pads, 2 * MAXD, &np))) return st;
        const core_tensor *cv = ops_input(c, 2);
        if (cv && cv->numel > 0) {
            if (!elem_from_tensor(&val, x->dtype, cv, 0))
                return ops_error(c, KILN_ERR_DTYPE, "constant_value is %s, data is %s",
                                 core_dtype_name(cv->dtype), core_dtype_name(x->dtype));
        } else {
            elem_from_f64(&val, x->dtype, 0.0);
        }
        if (ops_input(c, 3) && (st = read_ints(c, ops_input(c, 3), "axes (input 3)", axes, MAXD, &na)))
            return st;
        if (!ops_input(c, 3)) na = -1;
    }
    if (opset < 11 || na < 0) {
        na = r;
        for (int i = 0; i < r; i++) axes[i] = i;
    }
    if (np != 2 * na)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "pads has %lld values, expected %lld",
                         (long long)np, (long long)(2 * na));
    if ((st = norm_axes(c, axes, na, r, "axes"))) return st;
    int64_t beg[MAXD] = {0}, end[MAXD] = {0}, od[MAXD];
    for (int i = 0; i < na; i++) { beg[axes[i]] = pads[i]; end[axes[i]] = pads[i + na]; }
    /* Negative pads crop the input first; the cropped region is then padded. */
    int64_t lo[MAXD], len[MAXD], pb[MAXD], total = 0;
    for (int i = 0; i < r; i++) {
        int64_t d = x->dims[i];
        lo[i] = beg[i] < 0 ? -beg[i] : 0;
        len[i] = d - lo[i] - (end[i] < 0 ? -end[i] : 0);
        pb[i] = beg[i] > 0 ? beg[i] : 0;
        if (len[i] < 0 || beg[i] > INT32_MAX || end[i] > INT32_MAX)
            return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "pads %lld,%lld invalid for dim %d of size %lld",
                             (long long)beg[i], (long long)end[i], i, (long long)d);
        od[i] = len[i] + pb[i] + (end[i] > 0 ? end[i] : 0);
        if (mode != PAD_CONSTANT && len[i] == 0 && od[i] > 0)
            return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "cannot %s-pad an empty dim %d", ms, i);
        total += od[i];
    }
    NEW_OUTPUT(y, 0, x->dtype, r, od);
    if (y->numel == 0) return KILN_OK;
    if (r == 0) return copy_all(y, x) ? KILN_OK : KILN_ERR_OUT_OF_MEMORY;
    /* Per axis: output index -> input index, or -1 for the constant. */
    int64_t *map = core_malloc(sizeof(int64_t) * (size_t)total);
    if (!map) return KILN_ERR_OUT_OF_MEMORY;
    int64_t *mp[MAXD], xs[MAXD], idx[MAXD] = {0};
    ops_contiguous_strides(r, x->dims, xs);
    int64_t o = 0;
    for (int i = 0; i < r; i++) {
        mp[i] = map + o;
        for (int64_t k = 0; k < od[i]; k++) {
            int64_t s = pad_source(mode, k - pb[i], len[i]);
            mp[i][k] = s < 0 ? -1 : lo[i] + s;
        }
        o += od[i];
    }
    st = KILN_OK;
    int64_t inner = od[r - 1], yo = 0;
    const int64_t *ml = mp[r - 1];
    for (;;) {
        int64_t base = 0;
        bool outside = false;
        for (int i = 0; i < r - 1 && !outside; i++) {
            if (mp[i][idx[i]] < 0) outside = true;
            else base += mp[i][idx[i]] * xs[i];
        }
        if (outside) {
            if (!fill_range(y, yo, inner, &val)) { st = KILN_ERR_OUT_OF_MEMORY; break; }
        } else {
            int64_t j = 0;
            while (j < inner) {
                if (ml[j] < 0) {
                    int64_t j0 = j;
                    while (j < inner && ml[j] < 0) j++;
                    if (!fill_range(y, yo + j0, j - j0, &val)) { st = KILN_ERR_OUT_OF_MEMORY; break; }
                } else {
                    /* runs of consecutive source indices copy in one go */
                    int64_t j0 = j;
                    j++;
                    while (j < inner && ml[j] == ml[j - 1] + 1) j++;
                    if (!ops_copy_elems(y, yo + j0, x, base + ml[j0], j - j0)) { st = KILN_ERR_OUT_OF_MEMORY; break; }
                }
            }
            if (st) break;
        }
        yo += inner;
        if (r == 1 || !ops_index_next(r - 1, od, idx)) break;
    }
    free(map);
    return st;
}

static kiln_status center_crop_pad_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    int r = x->ndim;
    int64_t shp[MAXD], n = 0, axes[MAXD], na = 0;
    bool has_axes;
    kiln_status st = read_ints(c, ops_input(c, 1), "shape (input 1)", shp, MAXD, &n);
    if (st) return st;
    if ((st = attr_ints(c, "axes", axes, MAXD, &na, &has_axes))) return st;
    if (!has_axes) {
        na = r;
        for (int i = 0; i < r; i++) axes[i] = i;
    }
    if ((st = norm_axes(c, axes, na, r, "axes"))) return st;
    if (n != na)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "shape has %lld values for %lld axes",
                         (long long)n, (long long)na);
    int64_t od[MAXD], box[MAXD], soff = 0, doff = 0, xs[MAXD], ys[MAXD];
    for (int i = 0; i < r; i++) od[i] = box[i] = x->dims[i];
    for (int i = 0; i < na; i++) {
        if (shp[i] < 0) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "shape[%d] is %lld", i, (long long)shp[i]);
        od[axes[i]] = shp[i];
    }
    ops_contiguous_strides(r, x->dims, xs);
    ops_contiguous_strides(r, od, ys);
    for (int i = 0; i < r; i++) {
        int64_t d = x->dims[i], t = od[i];
        if (d >= t) { soff += (d - t) / 2 * xs[i]; box[i] = t; }
        else { doff += (t - d) / 2 * ys[i]; box[i] = d; }
    }
    NEW_OUTPUT(y, 0, x->dtype, r, od);
    return copy_box(y, doff, ys, x, soff, xs, r, box) ? KILN_OK : KILN_ERR_OUT_OF_MEMORY;
}

/* ---- ConstantOfShape, Range, EyeLike, Trilu ----------------------------------------------- */

static kiln_status constant_of_shape_run(ops_ctx *c)
{
    GET_INPUT(s, 0);
    int64_t shp[MAXD], n = 0;
    kiln_status st = read_ints(c, s, "shape (input 0)", shp, MAXD, &n);
    if (st) return st;
    for (int i = 0; i < n; i++)
        if (shp[i] < 0) return ops_error(c, KILN_ERR_SHAPE, "shape[%d] is %lld", i, (long long)shp[i]);
    const core_tensor *v = ops_attr_tensor(c, "value");
    kiln_dtype dt = v ? v->dtype : KILN_DTYPE_FLOAT;
    elem_value val;
    if (v) {
        if (v->numel != 1)
            return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "value has %lld elements, expected 1", (long long)v->numel);
        if (!elem_from_tensor(&val, dt, v, 0)) return ops_error(c, KILN_ERR_UNSUPPORTED, "unsupported value dtype");
    } else {
        elem_from_f64(&val, dt, 0.0);
    }
    NEW_OUTPUT(y, 0, dt, (int)n, shp);
    return fill_range(y, 0, y->numel, &val) ? KILN_OK : KILN_ERR_OUT_OF_MEMORY;
}

static kiln_status range_run(ops_ctx *c)
{
    GET_INPUT(s, 0);
    GET_INPUT(l, 1);
    GET_INPUT(d, 2);
    kiln_dtype dt = s->dtype;
    if (l->dtype != dt || d->dtype != dt)
        return ops_error(c, KILN_ERR_DTYPE, "start, limit and delta must share a dtype");
    if (s->numel != 1 || l->numel != 1 || d->numel != 1)
        return ops_error(c, KILN_ERR_SHAPE, "start, limit and delta must be scalars");
    if (dt == KILN_DTYPE_STRING || dt == KILN_DTYPE_BOOL)
        return ops_error(c, KILN_ERR_DTYPE, "Range does not take %s", core_dtype_name(dt));
    int64_t n;
    if (core_dtype_is_float(dt)) {
        double a = core_load_f64(dt, s->data, 0), b = core_load_f64(dt, l->data, 0),
               t = core_load_f64(dt, d->data, 0);
        if (t == 0 || !isfinite(a) || !isfinite(b) || !isfinite(t))
            return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "invalid range %g..%g step %g", a, b, t);
        double cnt = ceil((b - a) / t);
        if (cnt > 1e12) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "range has too many elements");
        n = cnt > 0 ? (int64_t)cnt : 0;
        NEW_OUTPUT(y, 0, dt, 1, &n);
        for (int64_t i = 0; i < n; i++) core_store_f64(dt, y->data, i, a + (double)i * t);
        return KILN_OK;
    }
    int64_t a = core_load_i64(dt, s->data, 0), b = core_load_i64(dt, l->data, 0),
            t = core_load_i64(dt, d->data, 0);
    if (t == 0) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "delta is 0");
    /* Differences of int64 endpoints can overflow int64; double is plenty for a count. */
    double span = (double)b - (double)a;
    double cnt = ceil(span / (double)t);
    if (cnt > 1e12) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "range has too many elements");
    n = cnt > 0 ? (int64_t)cnt : 0;
    if (n > 0) { /* exact count: the span of two int64 values fits in uint64 */
        uint64_t span_u = t > 0 ? (uint64_t)b - (uint64_t)a : (uint64_t)a - (uint64_t)b;
        uint64_t step_u = t > 0 ? (uint64_t)t : (uint64_t)(-(t + 1)) + 1u;
        n = (int64_t)(span_u / step_u + (span_u % step_u != 0));
    }
    NEW_OUTPUT(y, 0, dt, 1, &n);
    for (int64_t i = 0; i < n; i++) core_store_i64(dt, y->data, i, a + i * t);
    return KILN_OK;
}

static kiln_status eyelike_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    if (x->ndim != 2) return ops_error(c, KILN_ERR_SHAPE, "input has %d dims, expected 2", x->ndim);
    kiln_dtype dt = (kiln_dtype)ops_attr_int(c, "dtype", x->dtype);
    if (dt <= KILN_DTYPE_UNDEFINED || dt >= KILN_DTYPE_COUNT_ || dt == KILN_DTYPE_STRING || !core_dtype_size(dt))
        return ops_error(c, KILN_ERR_DTYPE, "unsupported dtype %d", (int)dt);
    int64_t k = ops_attr_int(c, "k", 0);
    NEW_OUTPUT(y, 0, dt, 2, x->dims);
    int64_t h = x->dims[0], w = x->dims[1];
    if (k <= -h || k >= w) return KILN_OK;
    for (int64_t i = 0; i < h; i++) {
        int64_t j = i + k;
        if (j >= 0 && j < w) core_store_f64(dt, y->data, i * w + j, 1.0);
    }
    return KILN_OK;
}

static kiln_status trilu_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    if (x->ndim < 2) return ops_error(c, KILN_ERR_SHAPE, "input has %d dims, expected >= 2", x->ndim);
    int64_t k = 0;
    const core_tensor *kt = ops_input(c, 1);
    if (kt) {
        if (!core_dtype_is_int(kt->dtype) || kt->numel != 1)
            return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "k must be an integer scalar");
        k = core_load_i64(kt->dtype, kt->data, 0);
    }
    bool upper = ops_attr_int(c, "upper", 1) != 0;
    int64_t h = x->dims[x->ndim - 2], w = x->dims[x->ndim - 1];
    if (k > h + w) k = h + w;
    if (k < -(h + w)) k = -(h + w);
    NEW_OUTPUT(y, 0, x->dtype, x->ndim, x->dims);
    int64_t nmat = (h > 0 && w > 0) ? x->numel / (h * w) : 0;
    for (int64_t m = 0; m < nmat; m++) {
        for (int64_t i = 0; i < h; i++) {
            int64_t j0, j1, row = m * h * w + i * w;
            if (upper) { j0 = i + k < 0 ? 0 : i + k; j1 = w; }
            else { j0 = 0; j1 = i + k + 1 > w ? w : i + k + 1; }
            if (j1 > j0 && !ops_copy_elems(y, row + j0, x, row + j0, j1 - j0)) return KILN_ERR_OUT_OF_MEMORY;
        }
    }
    return KILN_OK;
}

/* ---- DepthToSpace, SpaceToDepth ----------------------------------------------------------- */

static kiln_status depth_to_space_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    if (x->ndim != 4) return ops_error(c, KILN_ERR_SHAPE, "input has %d dims, expected 4", x->ndim);
    int64_t b = ops_attr_int(c, "blocksize", 0);
    const char *mode = ops_attr_string(c, "mode", "DCR");
    bool crd = !strcmp(mode, "CRD");
    if (!crd && strcmp(mode, "DCR")) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "unknown mode '%s'", mode);
    int64_t n = x->dims[0], ch = x->dims[1], h = x->dims[2], w = x->dims[3];
    if (b <= 0 || b > 65536)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "blocksize %lld must be in [1, 65536]", (long long)b);
    if (ch % (b * b))
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "blocksize %lld does not divide %lld channels",
                         (long long)b, (long long)ch);
    int64_t co = ch / (b * b), xs[4];
    ops_contiguous_strides(4, x->dims, xs);
    int64_t od[4] = {n, co, h * b, w * b};
    NEW_OUTPUT(y, 0, x->dtype, 4, od);
    /* Output viewed as [n, c', h, b1, w, b2]. */
    int64_t vd[6] = {n, co, h, b, w, b}, vys[6], ss[6];
    ops_contiguous_strides(6, vd, vys);
    ss[0] = xs[0];
    ss[2] = xs[2];
    ss[4] = xs[3];
    if (crd) { ss[1] = b * b * xs[1]; ss[3] = b * xs[1]; ss[5] = xs[1]; }
    else { ss[1] = xs[1]; ss[3] = b * co * xs[1]; ss[5] = co * xs[1]; }
    return copy_box(y, 0, vys, x, 0, ss, 6, vd) ? KILN_OK : KILN_ERR_OUT_OF_MEMORY;
}

static kiln_status space_to_depth_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    if (x->ndim != 4) return ops_error(c, KILN_ERR_SHAPE, "input has %d dims, expected 4", x->ndim);
    int64_t b = ops_attr_int(c, "blocksize", 0);
    int64_t n = x->dims[0], ch = x->dims[1], h = x->dims[2], w = x->dims[3];
    if (b <= 0 || b > 65536)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "blocksize %lld must be in [1, 65536]", (long long)b);
    if (h % b || w % b)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "blocksize %lld does not divide %lldx%lld",
                         (long long)b, (long long)h, (long long)w);
    int64_t xs[4];
    ops_contiguous_strides(4, x->dims, xs);
    int64_t od[4] = {n, ch * b * b, h / b, w / b};
    NEW_OUTPUT(y, 0, x->dtype, 4, od);
    /* Output viewed as [n, b1, b2, c, h', w']. */
    int64_t vd[6] = {n, b, b, ch, h / b, w / b}, vys[6];
    int64_t ss[6] = {xs[0], xs[2], xs[3], xs[1], b * xs[2], b * xs[3]};
    ops_contiguous_strides(6, vd, vys);
    return copy_box(y, 0, vys, x, 0, ss, 6, vd) ? KILN_OK : KILN_ERR_OUT_OF_MEMORY;
}

/* ---- Compress, ReverseSequence ------------------------------------------------------------ */

static kiln_status compress_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    GET_INPUT(cond, 1);
    if (cond->ndim != 1) return ops_error(c, KILN_ERR_SHAPE, "condition has %d dims, expected 1", cond->ndim);
    if (cond->dtype == KILN_DTYPE_STRING) return ops_error(c, KILN_ERR_DTYPE, "condition must be bool");
    bool has_axis = ops_has_attr(c, "axis");
    int r = x->ndim;
    int64_t axis = 0, outer = 1, dim = x->numel, inner = 1;
    if (has_axis) {
        axis = ops_attr_int(c, "axis", 0);
        if (axis < -r || axis >= r || r == 0)
            return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "axis %lld out of range for rank %d", (long long)axis, r);
        if (axis < 0) axis += r;
        dim = x->dims[axis];
        for (int i = 0; i < axis; i++) outer *= x->dims[i];
        for (int i = (int)axis + 1; i < r; i++) inner *= x->dims[i];
    }
    int64_t cnt = 0;
    for (int64_t i = 0; i < cond->numel; i++) {
        if (core_load_f64(cond->dtype, cond->data, i) == 0) continue;
        if (i >= dim)
            return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "condition selects index %lld, dim is %lld",
                             (long long)i, (long long)dim);
        cnt++;
    }
    int64_t od[MAXD];
    int ond = 1;
    if (has_axis) {
        memcpy(od, x->dims, sizeof(int64_t) * (size_t)r);
        od[axis] = cnt;
        ond = r;
    } else {
        od[0] = cnt;
    }
    NEW_OUTPUT(y, 0, x->dtype, ond, od);
    int64_t yo = 0;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < cond->numel && i < dim; i++) {
            if (core_load_f64(cond->dtype, cond->data, i) == 0) continue;
            if (!ops_copy_elems(y, yo, x, (o * dim + i) * inner, inner)) return KILN_ERR_OUT_OF_MEMORY;
            yo += inner;
        }
    return KILN_OK;
}

static kiln_status reverse_sequence_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    GET_INPUT(lens, 1);
    int r = x->ndim;
    if (r < 2) return ops_error(c, KILN_ERR_SHAPE, "input has %d dims, expected >= 2", r);
    int64_t ta = ops_attr_int(c, "time_axis", 0), ba = ops_attr_int(c, "batch_axis", 1);
    if (ta < 0) ta += r;
    if (ba < 0) ba += r;
    if (ta < 0 || ta > 1 || ba < 0 || ba > 1 || ta == ba)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "time_axis %lld / batch_axis %lld must be 0 and 1",
                         (long long)ta, (long long)ba);
    int64_t tlen = x->dims[ta], bn = x->dims[ba];
    if (!core_dtype_is_int(lens->dtype) || lens->numel != bn)
        return ops_error(c, KILN_ERR_SHAPE, "sequence_lens has %lld values for batch %lld",
                         (long long)lens->numel, (long long)bn);
    int64_t xs[MAXD];
    ops_contiguous_strides(r, x->dims, xs);
    int64_t inner = xs[1];
    NEW_OUTPUT(y, 0, x->dtype, r, x->dims);
    for (int64_t b = 0; b < bn; b++) {
        int64_t L = core_load_i64(lens->dtype, lens->data, b);
        if (L < 0 || L > tlen)
            return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "sequence_lens[%lld] is %lld, time dim is %lld",
                             (long long)b, (long long)L, (long long)tlen);
        for (int64_t t = 0; t < tlen; t++) {
            int64_t st = t < L ? L - 1 - t : t;
            if (!ops_copy_elems(y, t * xs[ta] + b * xs[ba], x, st * xs[ta] + b * xs[ba], inner))
                return KILN_ERR_OUT_OF_MEMORY;
        }
    }
    return KILN_OK;
}

/* ---- Dropout ------------------------------------------------------------------------------
 * Seeded training-mode masks come from MT19937 seeded and sampled exactly as numpy's legacy
 * RandomState (np.random.seed(s); np.random.uniform(0, 1, shape)), so a given seed gives the
 * same mask as the ONNX reference. Without a seed the context's generator is used. */

typedef struct mt19937 {
    uint32_t mt[624];
    int i;
} mt19937;

static void mt_seed(mt19937 *m, uint32_t s)
{
    m->mt[0] = s;
    for (int i = 1; i < 624; i++)
        m->mt[i] = 1812433253u * (m->mt[i - 1] ^ (m->mt[i - 1] >> 30)) + (uint32_t)i;
    m->i = 624;
}

static uint32_t mt_next(mt19937 *m)
{
    if (m->i >= 624) {
        for (int k = 0; k < 624; k++) {
            uint32_t y = (m->mt[k] & 0x80000000u) | (m->mt[(k + 1) % 624] & 0x7fffffffu);
            m->mt[k] = m->mt[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        m->i = 0;
    }
    uint32_t y = m->mt[m->i++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

static double mt_uniform(mt19937 *m)
{
    uint32_t a = mt_next(m) >> 5, b = mt_next(m) >> 6;
    return ((double)a * 67108864.0 + (double)b) / 9007199254740992.0;
}

static kiln_status dropout_run(ops_ctx *c)
{
    GET_INPUT(x, 0);
    int opset = ops_opset(c);
    double ratio = 0.5;
    bool training = false;
    if (opset >= 12) {
        /* Before opset 12 Dropout has no training-mode input: kiln runs it for inference. */
        const core_tensor *rt = ops_input(c, 1), *tm = ops_input(c, 2);
        if (rt && rt->numel > 0) {
            if (rt->dtype == KILN_DTYPE_STRING) return ops_error(c, KILN_ERR_DTYPE, "ratio must be numeric");
            ratio = core_load_f64(rt->dtype, rt->data, 0);
        }
        if (tm && tm->numel > 0) {
            if (tm->dtype == KILN_DTYPE_STRING) return ops_error(c, KILN_ERR_DTYPE, "training_mode must be bool");
            training = core_load_f64(tm->dtype, tm->data, 0) != 0;
        }
    }
    if (training && (ratio < 0 || ratio > 1))
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "ratio %g not in [0, 1]", ratio);
    if (training && ratio == 0) training = false;
    NEW_OUTPUT(y, 0, x->dtype, x->ndim, x->dims);
    core_tensor *mask = NULL;
    if (ops_n_outputs(c) > 1 && ops_has_output(c, 1)) {
        kiln_dtype mdt = opset < 10 ? x->dtype : KILN_DTYPE_BOOL;
        mask = ops_output(c, 1, mdt, x->ndim, x->dims);
        if (!mask) return KILN_ERR_OUT_OF_MEMORY;
    }
    if (!training) {
        if (!copy_all(y, x)) return KILN_ERR_OUT_OF_MEMORY;
        if (mask)
            for (int64_t i = 0; i < mask->numel; i++) core_store_f64(mask->dtype, mask->data, i, 1.0);
        return KILN_OK;
    }
    if (!core_dtype_is_float(x->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "training-mode dropout needs a float input, got %s",
                         core_dtype_name(x->dtype));
    bool seeded = ops_has_attr(c, "seed");
    mt19937 *mt = NULL;
    if (seeded) {
        mt = core_malloc(sizeof *mt);
        if (!mt) return KILN_ERR_OUT_OF_MEMORY;
        mt_seed(mt, (uint32_t)ops_attr_int(c, "seed", 0));
    }
    double scale = 1.0 / (1.0 - ratio);
    for (int64_t i = 0; i < x->numel; i++) {
        double u = seeded ? mt_uniform(mt) : ops_random_uniform(c);
        bool keep = u >= ratio;
        core_store_f64(x->dtype, y->data, i, keep ? core_load_f64(x->dtype, x->data, i) * scale : 0.0);
        if (mask) core_store_f64(mask->dtype, mask->data, i, keep ? 1.0 : 0.0);
    }
    free(mt);
    return KILN_OK;
}

const ops_schema ops_table_shape[] = {
    {"Identity", "", 1, identity_run},
    {"Constant", "", 1, constant_run},
    {"Shape", "", 1, shape_run},
    {"Size", "", 1, size_run},
    {"Reshape", "", 1, reshape_run},
    {"Flatten", "", 1, flatten_run},
    {"Squeeze", "", 1, squeeze_run},
    {"Unsqueeze", "", 1, unsqueeze_run},
    {"Transpose", "", 1, transpose_run},
    {"Concat", "", 1, concat_run},
    {"Split", "", 1, split_run},
    {"Slice", "", 1, slice_run},
    {"Expand", "", 8, expand_run},
    {"Tile", "", 6, tile_run},
    {"Pad", "", 1, pad_run},
    {"CenterCropPad", "", 18, center_crop_pad_run},
    {"ConstantOfShape", "", 9, constant_of_shape_run},
    {"Range", "", 11, range_run},
    {"EyeLike", "", 9, eyelike_run},
    {"Trilu", "", 14, trilu_run},
    {"DepthToSpace", "", 1, depth_to_space_run},
    {"SpaceToDepth", "", 1, space_to_depth_run},
    {"Compress", "", 9, compress_run},
    {"ReverseSequence", "", 10, reverse_sequence_run},
    {"Dropout", "", 1, dropout_run},
    OPS_TABLE_END
};
