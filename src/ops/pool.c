/* pool.c — reference kernels for pooling: MaxPool (with Indices), AveragePool, LpPool, their
 * Global forms, MaxUnpool and MaxRoiPool. N-d, computed in double (exact for max). */
#include "ops/ops.h"
#include "ops/util.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct pool_geom {
    int nsp;
    int64_t N, C;
    int64_t in[KILN_MAX_DIMS], out[KILN_MAX_DIMS], k[KILN_MAX_DIMS];
    int64_t s[KILN_MAX_DIMS], d[KILN_MAX_DIMS], pb[KILN_MAX_DIMS], pe[KILN_MAX_DIMS];
    int64_t in_sp, out_sp, k_sp;
} pool_geom;

enum { POOL_MAX, POOL_AVG, POOL_LP };

static int pool_attr_ints(const ops_ctx *c, const char *name, int n, int64_t dflt, int64_t *out,
                          int64_t minval)
{
    int64_t cnt = 0;
    const int64_t *v = ops_attr_ints(c, name, &cnt);
    if (!v) {
        for (int i = 0; i < n; i++) out[i] = dflt;
        return 0;
    }
    if (cnt != n) {
        ops_error(c, KILN_ERR_INVALID_MODEL, "attribute '%s' has %lld values, expected %d", name,
                  (long long)cnt, n);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        /* the upper bound keeps size arithmetic (stride * extent + pads) far from overflow */
        if (v[i] < minval || v[i] > INT32_MAX) {
            ops_error(c, KILN_ERR_INVALID_MODEL, "attribute '%s'[%d] = %lld, must be in [%lld, %d]",
                      name, i, (long long)v[i], (long long)minval, INT32_MAX);
            return -1;
        }
        out[i] = v[i];
    }
    return n;
}

static bool pool_dtype_ok(kiln_dtype t, bool ints_ok)
{
    switch (t) {
    case KILN_DTYPE_FLOAT: case KILN_DTYPE_DOUBLE: case KILN_DTYPE_FLOAT16: case KILN_DTYPE_BFLOAT16:
        return true;
    case KILN_DTYPE_INT8: case KILN_DTYPE_UINT8:
        return ints_ok;
    default:
        return false;
    }
}

static kiln_status pool_geom_init(const ops_ctx *c, const core_tensor *x, pool_geom *g)
{
    memset(g, 0, sizeof *g);
    if (x->ndim < 3)
        return ops_error(c, KILN_ERR_SHAPE, "input X has %d dims, expected at least 3", x->ndim);
    int nsp = x->ndim - 2;
    g->nsp = nsp;
    g->N = x->dims[0];
    g->C = x->dims[1];
    if (!ops_has_attr(c, "kernel_shape"))
        return ops_error(c, KILN_ERR_INVALID_MODEL, "attribute kernel_shape is required");
    if (pool_attr_ints(c, "kernel_shape", nsp, 1, g->k, 1) < 0) return KILN_ERR_INVALID_MODEL;
    if (pool_attr_ints(c, "strides", nsp, 1, g->s, 1) < 0) return KILN_ERR_INVALID_MODEL;
    if (pool_attr_ints(c, "dilations", nsp, 1, g->d, 1) < 0) return KILN_ERR_INVALID_MODEL;
    int64_t pads[2 * KILN_MAX_DIMS];
    if (pool_attr_ints(c, "pads", 2 * nsp, 0, pads, 0) < 0) return KILN_ERR_INVALID_MODEL;
    bool ceil_mode = ops_attr_int(c, "ceil_mode", 0) != 0;
    const char *ap = ops_attr_string(c, "auto_pad", "NOTSET");
    bool same_u = !strcmp(ap, "SAME_UPPER"), same_l = !strcmp(ap, "SAME_LOWER");
    bool valid = !strcmp(ap, "VALID");
    if (!same_u && !same_l && !valid && strcmp(ap, "NOTSET") && *ap)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "auto_pad '%s' is not supported", ap);
    g->in_sp = g->out_sp = g->k_sp = 1;
    for (int i = 0; i < nsp; i++) {
        g->in[i] = x->dims[2 + i];
        int64_t win = (g->k[i] - 1) * g->d[i] + 1;
        if (same_u || same_l) {
            g->out[i] = (g->in[i] + g->s[i] - 1) / g->s[i];
            int64_t total = (g->out[i] - 1) * g->s[i] + win - g->in[i];
            if (total < 0) total = 0;
            g->pb[i] = same_u ? total / 2 : total - total / 2;
            g->pe[i] = total - g->pb[i];
        } else {
            g->pb[i] = valid ? 0 : pads[i];
            g->pe[i] = valid ? 0 : pads[nsp + i];
            int64_t eff = g->in[i] + g->pb[i] + g->pe[i] - win;
            if (eff < 0)
                return ops_error(c, KILN_ERR_SHAPE,
                                 "spatial dim %d: input %lld + pads is smaller than the window %lld",
                                 i, (long long)g->in[i], (long long)win);
            g->out[i] = (ceil_mode ? eff + g->s[i] - 1 : eff) / g->s[i] + 1;
            /* the last window must start inside the input or its leading pad */
            if (ceil_mode && (g->out[i] - 1) * g->s[i] >= g->in[i] + g->pb[i]) g->out[i]--;
        }
        if (!core_mul_size(g->in_sp, g->in[i], &g->in_sp) ||
            !core_mul_size(g->out_sp, g->out[i], &g->out_sp) ||
            !core_mul_size(g->k_sp, g->k[i], &g->k_sp))
            return ops_error(c, KILN_ERR_SHAPE, "spatial dim %d: sizes overflow", i);
    }
    return KILN_OK;
}

/* Input elements as doubles (borrowed for DOUBLE). */
static const double *pool_load(const core_tensor *t, double **tmp)
{
    *tmp = NULL;
    if (t->dtype == KILN_DTYPE_DOUBLE) return t->data;
    double *b = malloc(sizeof(double) * (size_t)(t->numel > 0 ? t->numel : 1));
    if (!b) return NULL;
    if (t->dtype == KILN_DTYPE_FLOAT) {
        const float *s = t->data;
        for (int64_t i = 0; i < t->numel; i++) b[i] = s[i];
    } else {
        for (int64_t i = 0; i < t->numel; i++) b[i] = core_load_f64(t->dtype, t->data, i);
    }
    *tmp = b;
    return b;
}

static void pool_store(core_tensor *y, const double *v)
{
    if (y->dtype == KILN_DTYPE_DOUBLE) {
        memcpy(y->data, v, sizeof(double) * (size_t)y->numel);
    } else if (y->dtype == KILN_DTYPE_FLOAT) {
        float *d = y->data;
        for (int64_t i = 0; i < y->numel; i++) d[i] = (float)v[i];
    } else {
        for (int64_t i = 0; i < y->numel; i++) core_store_f64(y->dtype, y->data, i, v[i]);
    }
}

/* One pooling pass over all (n, c) planes. Only the taps that land inside the input are
 * visited (a malformed kernel far larger than the input costs nothing); the padded-tap
 * count for count_include_pad is computed per dim. For MAX, idx (may be NULL) receives
 * the flat input index of the max (storage_order 1: column-major spatial part). */
static void pool_compute(const pool_geom *g, int kind, bool include_pad, double p,
                         int storage_order, const double *x, double *y, int64_t *idx)
{
    int nsp = g->nsp;
    int64_t istr[KILN_MAX_DIMS], cstr[KILN_MAX_DIMS];
    ops_contiguous_strides(nsp, g->in, istr);
    int64_t cs = 1;
    for (int i = 0; i < nsp; i++) { cstr[i] = cs; cs *= g->in[i]; }
    for (int64_t pl = 0; pl < g->N * g->C; pl++) {
        const double *xp = x + pl * g->in_sp;
        int64_t oc[KILN_MAX_DIMS] = {0};
        for (int64_t o = 0; o < g->out_sp; o++, ops_index_next(nsp, g->out, oc)) {
            /* valid taps per dim: j in [jlo, jlo + jn) with 0 <= start + j*d < in */
            int64_t start[KILN_MAX_DIMS], jlo[KILN_MAX_DIMS], jn[KILN_MAX_DIMS];
            int64_t cnt = 1, cnt_pad = 1;
            for (int i = 0; i < nsp; i++) {
                int64_t st = oc[i] * g->s[i] - g->pb[i], d = g->d[i];
                start[i] = st;
                int64_t lo = st >= 0 ? 0 : (-st + d - 1) / d;
                int64_t hi = g->in[i] - st <= 0 ? 0 : (g->in[i] - st + d - 1) / d;
                if (hi > g->k[i]) hi = g->k[i];
                jlo[i] = lo;
                jn[i] = hi > lo ? hi - lo : 0;
                /* taps before the end of the trailing pad (windows start at or after -pb) */
                int64_t lim = g->in[i] + g->pe[i] - st;
                int64_t np = lim <= 0 ? 0 : (lim + d - 1) / d;
                if (np > g->k[i]) np = g->k[i];
                cnt *= jn[i];
                cnt_pad *= np;
            }
            double acc = kind == POOL_MAX ? -INFINITY : 0.0;
            int64_t best = -1;
            int64_t kc[KILN_MAX_DIMS] = {0};
            for (int64_t t = 0; t < cnt; t++, ops_index_next(nsp, jn, kc)) {
                int64_t off = 0, coff = 0;
                for (int i = 0; i < nsp; i++) {
                    int64_t ii = start[i] + (jlo[i] + kc[i]) * g->d[i];
                    off += ii * istr[i];
                    coff += ii * cstr[i];
                }
                double v = xp[off];
                if (kind == POOL_MAX) {
                    if (best < 0 || v > acc) { acc = v; best = storage_order ? coff : off; }
                } else if (kind == POOL_AVG) {
                    acc += v;
                } else {
                    acc += p == 2.0 ? v * v : pow(fabs(v), p);
                }
            }
            if (kind == POOL_AVG) {
                int64_t div = include_pad ? cnt_pad : cnt;
                acc = div > 0 ? acc / (double)div : 0.0;
            } else if (kind == POOL_LP) {
                acc = p == 2.0 ? sqrt(acc) : pow(acc, 1.0 / p);
            } else if (best < 0) {
                acc = 0.0; /* window entirely in padding */
            }
            y[pl * g->out_sp + o] = acc;
            if (idx) idx[pl * g->out_sp + o] = best < 0 ? -1 : pl * g->in_sp + best;
        }
    }
}

/* Pooled values (doubles, channels-first order) into output 0, which is channels-last
 * [N, spatial..., C] when nhwc (yd: the channels-first dims). */
static kiln_status pool_emit(ops_ctx *c, kiln_dtype dt, int ndim, const int64_t *yd, bool nhwc,
                             const double *yo)
{
    int64_t d[KILN_MAX_DIMS];
    memcpy(d, yd, sizeof(int64_t) * (size_t)ndim);
    if (nhwc) {
        for (int i = 2; i < ndim; i++) d[i - 1] = yd[i];
        d[ndim - 1] = yd[1];
    }
    core_tensor *y = ops_output(c, 0, dt, ndim, d);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    if (!nhwc) {
        pool_store(y, yo);
        return KILN_OK;
    }
    core_tensor *t = core_tensor_create(dt, ndim, yd);
    if (!t) return core_oom();
    pool_store(t, yo);
    ops_from_channels_first(t, y);
    core_tensor_destroy(t);
    return KILN_OK;
}

/* MaxPoolNhwc / AveragePoolNhwc (ops/fused.h): the channels-first oracle on a transposed
 * copy of X; one output. */
static kiln_status pool_nhwc(ops_ctx *c, int kind)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x) return ops_error(c, KILN_ERR_INVALID_MODEL, "input X is required");
    if (!pool_dtype_ok(x->dtype, kind == POOL_MAX))
        return ops_error(c, KILN_ERR_DTYPE, "input X has unsupported dtype %s", core_dtype_name(x->dtype));
    if (x->ndim < 3) return ops_error(c, KILN_ERR_SHAPE, "input X has %d dims, expected at least 3", x->ndim);
    core_tensor *xf = ops_to_channels_first(x);
    if (!xf) return core_oom();
    pool_geom g;
    kiln_status st = pool_geom_init(c, xf, &g);
    if (st) {
        core_tensor_destroy(xf);
        return st;
    }
    bool include_pad = ops_attr_int(c, "count_include_pad", 0) != 0;
    int64_t yd[KILN_MAX_DIMS] = {g.N, g.C}, n = g.N * g.C;
    for (int i = 0; i < g.nsp; i++) {
        yd[2 + i] = g.out[i];
        n *= g.out[i];
    }
    double *tx = NULL, *yo = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
    const double *px = pool_load(xf, &tx);
    if (!px || !yo) st = core_oom();
    else {
        pool_compute(&g, kind, include_pad, 2.0, 0, px, yo, NULL);
        st = pool_emit(c, x->dtype, x->ndim, yd, true, yo);
    }
    free(tx);
    free(yo);
    core_tensor_destroy(xf);
    return st;
}

static kiln_status pool_common(ops_ctx *c, int kind)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x) return ops_error(c, KILN_ERR_INVALID_MODEL, "input X is required");
    if (!pool_dtype_ok(x->dtype, kind == POOL_MAX))
        return ops_error(c, KILN_ERR_DTYPE, "input X has unsupported dtype %s", core_dtype_name(x->dtype));
    pool_geom g;
    kiln_status st = pool_geom_init(c, x, &g);
    if (st) return st;
    double p = 2.0;
    if (kind == POOL_LP) {
        const ir_attr *a = ops_attr(c, "p");
        if (a && a->type == IR_ATTR_FLOAT) p = a->f;
        else if (a) p = (double)a->i;
        if (!(p > 0)) return ops_error(c, KILN_ERR_INVALID_MODEL, "p = %g, must be > 0", p);
    }
    int storage_order = (int)ops_attr_int(c, "storage_order", 0);
    bool include_pad = ops_attr_int(c, "count_include_pad", 0) != 0;
    int64_t yd[KILN_MAX_DIMS] = {g.N, g.C};
    for (int i = 0; i < g.nsp; i++) yd[2 + i] = g.out[i];
    core_tensor *y = ops_output(c, 0, x->dtype, x->ndim, yd);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    core_tensor *yi = NULL;
    if (kind == POOL_MAX && ops_has_output(c, 1)) {
        yi = ops_output(c, 1, KILN_DTYPE_INT64, x->ndim, yd);
        if (!yi) return KILN_ERR_OUT_OF_MEMORY;
    }
    if (y->numel == 0) return KILN_OK;
    double *tx, *yo = malloc(sizeof(double) * (size_t)y->numel);
    const double *px = pool_load(x, &tx);
    if (!px || !yo) {
        free(tx);
        free(yo);
        return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    pool_compute(&g, kind, include_pad, p, storage_order, px, yo, yi ? yi->data : NULL);
    pool_store(y, yo);
    free(tx);
    free(yo);
    return KILN_OK;
}

static kiln_status maxpool_run(ops_ctx *c) { return pool_common(c, POOL_MAX); }
static kiln_status avgpool_run(ops_ctx *c) { return pool_common(c, POOL_AVG); }
static kiln_status lppool_run(ops_ctx *c) { return pool_common(c, POOL_LP); }

/* ---- global pooling ------------------------------------------------------------------------ */
static kiln_status global_pool(ops_ctx *c, int kind, bool nhwc)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x) return ops_error(c, KILN_ERR_INVALID_MODEL, "input X is required");
    if (!pool_dtype_ok(x->dtype, kind == POOL_MAX))
        return ops_error(c, KILN_ERR_DTYPE, "input X has unsupported dtype %s", core_dtype_name(x->dtype));
    if (x->ndim < 2)
        return ops_error(c, KILN_ERR_SHAPE, "input X has %d dims, expected at least 2", x->ndim);
    double p = 2.0;
    if (kind == POOL_LP) {
        const ir_attr *a = ops_attr(c, "p");
        if (a && a->type == IR_ATTR_FLOAT) p = a->f;
        else if (a) p = (double)a->i;
        if (!(p > 0)) return ops_error(c, KILN_ERR_INVALID_MODEL, "p = %g, must be > 0", p);
    }
    core_tensor *xf = NULL;
    if (nhwc) {
        if (x->ndim < 3) return ops_error(c, KILN_ERR_SHAPE, "input X has %d dims, expected at least 3", x->ndim);
        if (!(xf = ops_to_channels_first(x))) return core_oom();
        x = xf;
    }
    int64_t yd[KILN_MAX_DIMS];
    int64_t planes = x->dims[0] * x->dims[1], sp = 1;
    for (int i = 0; i < x->ndim; i++) {
        yd[i] = i < 2 ? x->dims[i] : 1;
        if (i >= 2) sp *= x->dims[i];
    }
    double *tx = NULL, *yo = malloc(sizeof(double) * (size_t)(planes > 0 ? planes : 1));
    const double *px = pool_load(x, &tx);
    if (!px || !yo) {
        free(tx);
        free(yo);
        core_tensor_destroy(xf);
        return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (int64_t pl = 0; pl < planes; pl++) {
        const double *xp = px + pl * sp;
        double acc = kind == POOL_MAX ? -INFINITY : 0.0;
        for (int64_t i = 0; i < sp; i++) {
            double v = xp[i];
            if (kind == POOL_MAX) { if (v > acc || i == 0) acc = v; }
            else if (kind == POOL_AVG) acc += v;
            else acc += p == 2.0 ? v * v : pow(fabs(v), p);
        }
        if (kind == POOL_AVG) acc = sp > 0 ? acc / (double)sp : 0.0;
        else if (kind == POOL_LP) acc = pow(acc, 1.0 / p);
        else if (sp == 0) acc = 0.0;
        yo[pl] = acc;
    }
    kiln_status st = pool_emit(c, x->dtype, x->ndim, yd, nhwc, yo);
    free(tx);
    free(yo);
    core_tensor_destroy(xf);
    return st;
}

static kiln_status global_maxpool_run(ops_ctx *c) { return global_pool(c, POOL_MAX, false); }
static kiln_status global_avgpool_run(ops_ctx *c) { return global_pool(c, POOL_AVG, false); }
static kiln_status global_lppool_run(ops_ctx *c) { return global_pool(c, POOL_LP, false); }
static kiln_status maxpool_nhwc_run(ops_ctx *c) { return pool_nhwc(c, POOL_MAX); }
static kiln_status avgpool_nhwc_run(ops_ctx *c) { return pool_nhwc(c, POOL_AVG); }
static kiln_status global_maxpool_nhwc_run(ops_ctx *c) { return global_pool(c, POOL_MAX, true); }
static kiln_status global_avgpool_nhwc_run(ops_ctx *c) { return global_pool(c, POOL_AVG, true); }

/* ---- MaxUnpool ------------------------------------------------------------------------------
 * Indices are flat positions in the inferred shape (N, C, (in-1)*s - pads + k ...), as
 * MaxPool produces them; with an explicit output_shape the inferred result lands in its
 * leading corner (the ONNX reference behaviour). */
static kiln_status maxunpool_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0), *ind = ops_input(c, 1), *osh = ops_input(c, 2);
    if (!x || !ind) return ops_error(c, KILN_ERR_INVALID_MODEL, "inputs X and I are required");
    if (x->ndim < 3) return ops_error(c, KILN_ERR_SHAPE, "input X has %d dims, expected at least 3", x->ndim);
    if (ind->dtype != KILN_DTYPE_INT64 && ind->dtype != KILN_DTYPE_INT32)
        return ops_error(c, KILN_ERR_DTYPE, "indices have dtype %s, expected int64", core_dtype_name(ind->dtype));
    if (ind->numel != x->numel)
        return ops_error(c, KILN_ERR_SHAPE, "indices have %lld elements, X has %lld",
                         (long long)ind->numel, (long long)x->numel);
    if (x->dtype == KILN_DTYPE_STRING) return ops_error(c, KILN_ERR_DTYPE, "string input");
    int nsp = x->ndim - 2;
    int64_t k[KILN_MAX_DIMS], s[KILN_MAX_DIMS], pads[2 * KILN_MAX_DIMS];
    if (!ops_has_attr(c, "kernel_shape"))
        return ops_error(c, KILN_ERR_INVALID_MODEL, "attribute kernel_shape is required");
    if (pool_attr_ints(c, "kernel_shape", nsp, 1, k, 1) < 0) return KILN_ERR_INVALID_MODEL;
    if (pool_attr_ints(c, "strides", nsp, 1, s, 1) < 0) return KILN_ERR_INVALID_MODEL;
    if (pool_attr_ints(c, "pads", 2 * nsp, 0, pads, 0) < 0) return KILN_ERR_INVALID_MODEL;
    int64_t inf[KILN_MAX_DIMS] = {x->dims[0], x->dims[1]};
    for (int i = 0; i < nsp; i++) {
        inf[2 + i] = (x->dims[2 + i] - 1) * s[i] - pads[i] - pads[nsp + i] + k[i];
        if (inf[2 + i] < 0) return ops_error(c, KILN_ERR_SHAPE, "inferred output dim %d is negative", 2 + i);
    }
    int64_t od[KILN_MAX_DIMS];
    memcpy(od, inf, sizeof od);
    if (osh) {
        int64_t n = ops_tensor_i64s(osh, od, KILN_MAX_DIMS);
        if (n < 0) return ops_error(c, KILN_ERR_INVALID_MODEL, "output_shape: %s", core_error_text());
        if (n != x->ndim)
            return ops_error(c, KILN_ERR_SHAPE, "output_shape has %lld values, expected %d",
                             (long long)n, x->ndim);
        for (int i = 0; i < x->ndim; i++)
            if (od[i] < 0) return ops_error(c, KILN_ERR_SHAPE, "output_shape[%d] is negative", i);
    }
    core_tensor *y = ops_output(c, 0, x->dtype, x->ndim, od);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    int64_t total = core_shape_numel(x->ndim, inf);
    if (total < 0) return ops_error(c, KILN_ERR_SHAPE, "inferred output too large");
    size_t es = core_dtype_size(x->dtype);
    int64_t istr[KILN_MAX_DIMS], ostr[KILN_MAX_DIMS];
    ops_contiguous_strides(x->ndim, inf, istr);
    ops_contiguous_strides(x->ndim, od, ostr);
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t id = core_load_i64(ind->dtype, ind->data, i);
        if (id < 0 || id >= total)
            return ops_error(c, KILN_ERR_RUNTIME, "index %lld at position %lld is out of range [0, %lld)",
                             (long long)id, (long long)i, (long long)total);
        int64_t off = 0, rem = id;
        bool inside = true;
        for (int j = 0; j < x->ndim; j++) {
            int64_t cj = rem / istr[j];
            rem %= istr[j];
            if (cj >= od[j]) inside = false;
            off += cj * ostr[j];
        }
        if (inside)
            memcpy((char *)y->data + (size_t)off * es, (const char *)x->data + (size_t)i * es, es);
    }
    return KILN_OK;
}

/* ---- MaxRoiPool -------------------------------------------------------------------------------
 * rois (num_rois, 5) = [batch, x1, y1, x2, y2] scaled by spatial_scale and rounded; each ROI is
 * divided into pooled_shape bins, each bin takes the max (0 when empty). */
static kiln_status max_roi_pool_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0), *rois = ops_input(c, 1);
    if (!x || !rois) return ops_error(c, KILN_ERR_INVALID_MODEL, "inputs X and rois are required");
    if (!pool_dtype_ok(x->dtype, false) || !pool_dtype_ok(rois->dtype, false))
        return ops_error(c, KILN_ERR_DTYPE, "X/rois have unsupported dtype");
    if (x->ndim != 4) return ops_error(c, KILN_ERR_SHAPE, "X has %d dims, expected 4", x->ndim);
    if (rois->ndim != 2 || rois->dims[1] != 5)
        return ops_error(c, KILN_ERR_SHAPE, "rois must be (num_rois, 5)");
    int64_t ps[2];
    if (!ops_has_attr(c, "pooled_shape"))
        return ops_error(c, KILN_ERR_INVALID_MODEL, "attribute pooled_shape is required");
    if (pool_attr_ints(c, "pooled_shape", 2, 1, ps, 1) < 0) return KILN_ERR_INVALID_MODEL;
    double scale = ops_attr_float(c, "spatial_scale", 1.0f);
    int64_t R = rois->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    int64_t yd[4] = {R, C, ps[0], ps[1]};
    core_tensor *y = ops_output(c, 0, x->dtype, 4, yd);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    double *tx, *tr, *yo = malloc(sizeof(double) * (size_t)y->numel);
    const double *px = pool_load(x, &tx), *pr = pool_load(rois, &tr);
    if (!px || !pr || !yo) {
        free(tx); free(tr); free(yo);
        return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    kiln_status st = KILN_OK;
    for (int64_t r = 0; r < R && !st; r++) {
        const double *ro = pr + r * 5;
        bool finite = true;
        for (int i = 0; i < 5; i++)
            if (!(fabs(ro[i]) < 1e15) || !(fabs(ro[i] * scale) < 1e15)) finite = false;
        if (!finite) {
            st = ops_error(c, KILN_ERR_RUNTIME, "roi %lld has out-of-range coordinates", (long long)r);
            break;
        }
        int64_t b = (int64_t)ro[0];
        if (b < 0 || b >= x->dims[0]) {
            st = ops_error(c, KILN_ERR_RUNTIME, "roi %lld has batch index %lld out of range",
                           (long long)r, (long long)b);
            break;
        }
        int64_t x1 = (int64_t)round(ro[1] * scale), y1 = (int64_t)round(ro[2] * scale);
        int64_t x2 = (int64_t)round(ro[3] * scale), y2 = (int64_t)round(ro[4] * scale);
        int64_t rh = y2 - y1 + 1 > 1 ? y2 - y1 + 1 : 1, rw = x2 - x1 + 1 > 1 ? x2 - x1 + 1 : 1;
        double bh = (double)rh / (double)ps[0], bw = (double)rw / (double)ps[1];
        for (int64_t ch = 0; ch < C; ch++) {
            const double *xp = px + (b * C + ch) * H * W;
            for (int64_t ph = 0; ph < ps[0]; ph++)
                for (int64_t pw = 0; pw < ps[1]; pw++) {
                    int64_t hs = (int64_t)floor((double)ph * bh) + y1, he = (int64_t)ceil((double)(ph + 1) * bh) + y1;
                    int64_t ws = (int64_t)floor((double)pw * bw) + x1, we = (int64_t)ceil((double)(pw + 1) * bw) + x1;
                    hs = hs < 0 ? 0 : hs > H ? H : hs;
                    he = he < 0 ? 0 : he > H ? H : he;
                    ws = ws < 0 ? 0 : ws > W ? W : ws;
                    we = we < 0 ? 0 : we > W ? W : we;
                    double m = -INFINITY;
                    bool any = false;
                    for (int64_t h = hs; h < he; h++)
                        for (int64_t w = ws; w < we; w++) {
                            if (!any || xp[h * W + w] > m) m = xp[h * W + w];
                            any = true;
                        }
                    yo[((r * C + ch) * ps[0] + ph) * ps[1] + pw] = any ? m : 0.0;
                }
        }
    }
    if (!st) pool_store(y, yo);
    free(tx); free(tr); free(yo);
    return st;
}

const ops_schema ops_table_pool[] = {
    {"MaxPool", "", 1, maxpool_run, 0},
    {"AveragePool", "", 1, avgpool_run, 0},
    {"LpPool", "", 1, lppool_run, 0},
    {"GlobalMaxPool", "", 1, global_maxpool_run, 0},
    {"GlobalAveragePool", "", 1, global_avgpool_run, 0},
    {"MaxPoolNhwc", "ai.kiln", 1, maxpool_nhwc_run, 0},
    {"AveragePoolNhwc", "ai.kiln", 1, avgpool_nhwc_run, 0},
    {"GlobalMaxPoolNhwc", "ai.kiln", 1, global_maxpool_nhwc_run, 0},
    {"GlobalAveragePoolNhwc", "ai.kiln", 1, global_avgpool_nhwc_run, 0},
    {"GlobalLpPool", "", 1, global_lppool_run, 0},
    {"MaxUnpool", "", 9, maxunpool_run, 0},
    {"MaxRoiPool", "", 1, max_roi_pool_run, 0},
    OPS_TABLE_END
};
