/* reduce.c — reference kernels for reductions: Reduce* (axes as attribute or input),
 * ArgMax/ArgMin, CumSum and CumProd. */
#include "ops/ops.h"
#include "ops/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum red_kind {
    RED_SUM, RED_MEAN, RED_MAX, RED_MIN, RED_PROD, RED_L1, RED_L2, RED_LOGSUM, RED_LOGSUMEXP,
    RED_SUMSQUARE
} red_kind;

/* Decoded reduction geometry: which input dims are reduced, and the output shape. */
typedef struct red_geom {
    int ndim;
    int64_t dims[KILN_MAX_DIMS];
    bool reduced[KILN_MAX_DIMS];
    int64_t ostride[KILN_MAX_DIMS]; /* stride into the output per input dim, 0 if reduced */
    int out_ndim;
    int64_t out_dims[KILN_MAX_DIMS];
    int64_t out_numel;
    int64_t count; /* input elements folded into each output */
    bool noop;     /* empty axes with noop_with_empty_axes: output = input */
} red_geom;

static kiln_status red_geometry(ops_ctx *c, const core_tensor *x, bool axes_from_input,
                                red_geom *g)
{
    int64_t axes[KILN_MAX_DIMS];
    int64_t n_axes = 0;
    memset(g, 0, sizeof *g);
    g->ndim = x->ndim;
    memcpy(g->dims, x->dims, sizeof(int64_t) * (size_t)x->ndim);
    if (axes_from_input) {
        const core_tensor *a = ops_input(c, 1);
        if (a) {
            if (a->numel > KILN_MAX_DIMS)
                return ops_error(c, KILN_ERR_SHAPE, "axes input has %lld values, data has %d dims",
                                 (long long)a->numel, x->ndim);
            n_axes = ops_tensor_i64s(a, axes, KILN_MAX_DIMS);
            if (n_axes < 0) return ops_error(c, KILN_ERR_DTYPE, "axes: %s", core_error_text());
        }
    } else {
        const int64_t *av = ops_attr_ints(c, "axes", &n_axes);
        if (n_axes > KILN_MAX_DIMS)
            return ops_error(c, KILN_ERR_SHAPE, "axes attribute has %lld values", (long long)n_axes);
        for (int64_t i = 0; i < n_axes; i++) axes[i] = av[i];
    }
    bool keepdims = ops_attr_int(c, "keepdims", 1) != 0;
    if (n_axes == 0) {
        if (ops_attr_int(c, "noop_with_empty_axes", 0)) {
            g->noop = true;
            g->out_ndim = x->ndim;
            memcpy(g->out_dims, x->dims, sizeof(int64_t) * (size_t)x->ndim);
            g->out_numel = x->numel;
            g->count = 1;
            return KILN_OK;
        }
        for (int i = 0; i < x->ndim; i++) g->reduced[i] = true;
    }
    for (int64_t i = 0; i < n_axes; i++) {
        int64_t a = ops_axis(axes[i], x->ndim);
        if (a < 0 || (x->ndim == 0 && axes[i] != 0 && axes[i] != -1))
            return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "axis %lld out of range for %d dims",
                             (long long)axes[i], x->ndim);
        if (x->ndim > 0) g->reduced[a] = true;
    }
    g->count = 1;
    g->out_ndim = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (g->reduced[i]) {
            g->count *= x->dims[i];
            if (keepdims) g->out_dims[g->out_ndim++] = 1;
        } else {
            g->out_dims[g->out_ndim++] = x->dims[i];
        }
    }
    /* Output strides per input dim (a keepdims output has the same strides as the squeezed
     * one, so compute them over the kept dims only). */
    int64_t s = 1;
    for (int i = x->ndim - 1; i >= 0; i--) {
        if (g->reduced[i]) { g->ostride[i] = 0; continue; }
        g->ostride[i] = s;
        s *= x->dims[i];
    }
    g->out_numel = s;
    return KILN_OK;
}

/* Walks the input in storage order, calling the visitor with each element's output slot.
 * Single pass, linear reads. */
#define RED_WALK(g, numel, BODY)                                                             \
    do {                                                                                     \
        int64_t idx_[KILN_MAX_DIMS] = {0};                                                   \
        int64_t o = 0;                                                                       \
        int nd_ = (g)->ndim;                                                                 \
        int64_t inner_ = nd_ > 0 ? (g)->dims[nd_ - 1] : 1;                                   \
        int64_t istr_ = nd_ > 0 ? (g)->ostride[nd_ - 1] : 0;                                 \
        for (int64_t i = 0; i < (numel);) {                                                  \
            int64_t o0_ = o;                                                                 \
            for (int64_t k_ = 0; k_ < inner_; k_++, i++) {                                   \
                o = o0_ + k_ * istr_;                                                        \
                BODY;                                                                        \
            }                                                                                \
            o = o0_;                                                                         \
            int d_ = nd_ - 2;                                                                \
            for (; d_ >= 0; d_--) {                                                          \
                if (++idx_[d_] < (g)->dims[d_]) { o += (g)->ostride[d_]; break; }            \
                o -= (g)->ostride[d_] * ((g)->dims[d_] - 1);                                 \
                idx_[d_] = 0;                                                                \
            }                                                                                \
            if (d_ < 0) break;                                                               \
        }                                                                                    \
    } while (0)

static double red_load(kiln_dtype t, const void *p, int64_t i)
{
    switch (t) {
    case KILN_DTYPE_FLOAT: return ((const float *)p)[i];
    case KILN_DTYPE_DOUBLE: return ((const double *)p)[i];
    default: return core_load_f64(t, p, i);
    }
}

static int64_t red_int_min(kiln_dtype t)
{
    size_t sz = core_dtype_size(t);
    if (!core_dtype_is_signed(t) || t == KILN_DTYPE_BOOL) return 0;
    return sz >= 8 ? INT64_MIN : -((int64_t)1 << (sz * 8 - 1));
}

static int64_t red_int_max(kiln_dtype t)
{
    size_t sz = core_dtype_size(t);
    if (t == KILN_DTYPE_BOOL) return 1;
    if (core_dtype_is_signed(t)) return sz >= 8 ? INT64_MAX : ((int64_t)1 << (sz * 8 - 1)) - 1;
    return sz >= 8 ? -1 /* all ones: UINT64_MAX */ : ((int64_t)1 << (sz * 8)) - 1;
}

static kiln_status reduce_common(ops_ctx *c, red_kind k, int axes_input_since)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "missing input 0");
    kiln_dtype t = x->dtype;
    if (t == KILN_DTYPE_STRING || t == KILN_DTYPE_COMPLEX64 || t == KILN_DTYPE_COMPLEX128)
        return ops_error(c, KILN_ERR_UNSUPPORTED, "dtype %s not supported", core_dtype_name(t));
    red_geom g;
    kiln_status st = red_geometry(c, x, ops_opset(c) >= axes_input_since, &g);
    if (st) return st;
    core_tensor *y = ops_output(c, 0, t, g.out_ndim, g.out_dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (g.out_numel == 0) return KILN_OK;
    bool is_int = !core_dtype_is_float(t);

    if (g.noop) {
        /* Identity, except the elementwise part of the reduction still applies. */
        for (int64_t i = 0; i < x->numel; i++) {
            if (is_int && (k == RED_SUM || k == RED_MEAN || k == RED_MAX || k == RED_MIN ||
                           k == RED_PROD)) {
                core_store_i64(t, y->data, i, core_load_i64(t, x->data, i));
                continue;
            }
            double v = red_load(t, x->data, i);
            switch (k) {
            case RED_L1: case RED_L2: v = fabs(v); break;
            case RED_SUMSQUARE: v = v * v; break;
            case RED_LOGSUM: v = log(v); break;
            default: break;
            }
            core_store_f64(t, y->data, i, v);
        }
        return KILN_OK;
    }

    int64_t n = g.out_numel;
    if (is_int && k != RED_L2 && k != RED_LOGSUM && k != RED_LOGSUMEXP) {
        int64_t *acc = core_malloc(sizeof(int64_t) * (size_t)n);
        if (!acc) return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
        bool u64 = t == KILN_DTYPE_UINT64;
        int64_t init = 0;
        if (k == RED_PROD) init = 1;
        else if (k == RED_MAX) init = red_int_min(t);
        else if (k == RED_MIN) init = red_int_max(t);
        for (int64_t i = 0; i < n; i++) acc[i] = init;
        RED_WALK(&g, x->numel, {
            int64_t v = core_load_i64(t, x->data, i);
            switch (k) {
            case RED_SUM: case RED_MEAN: acc[o] = (int64_t)((uint64_t)acc[o] + (uint64_t)v); break;
            case RED_L1: acc[o] = (int64_t)((uint64_t)acc[o] + (uint64_t)(v < 0 && !u64 ? -(uint64_t)v : (uint64_t)v)); break;
            case RED_SUMSQUARE: acc[o] = (int64_t)((uint64_t)acc[o] + (uint64_t)v * (uint64_t)v); break;
            case RED_PROD: acc[o] = (int64_t)((uint64_t)acc[o] * (uint64_t)v); break;
            case RED_MAX:
                if (u64 ? (uint64_t)v > (uint64_t)acc[o] : v > acc[o]) acc[o] = v;
                break;
            case RED_MIN:
                if (u64 ? (uint64_t)v < (uint64_t)acc[o] : v < acc[o]) acc[o] = v;
                break;
            default: break;
            }
        });
        for (int64_t i = 0; i < n; i++) {
            int64_t v = acc[i];
            if (k == RED_MEAN && g.count > 0) {
                if (u64) v = (int64_t)((uint64_t)v / (uint64_t)g.count);
                else v /= g.count;
            }
            core_store_i64(t, y->data, i, v);
        }
        free(acc);
        return KILN_OK;
    }

    double *acc = core_malloc(sizeof(double) * (size_t)n);
    double *mx = NULL;
    if (!acc) return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
    double init = 0.0;
    if (k == RED_PROD) init = 1.0;
    else if (k == RED_MAX) init = -INFINITY;
    else if (k == RED_MIN) init = INFINITY;
    for (int64_t i = 0; i < n; i++) acc[i] = init;
    if (k == RED_LOGSUMEXP) {
        mx = core_malloc(sizeof(double) * (size_t)n);
        if (!mx) { free(acc); return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory"); }
        for (int64_t i = 0; i < n; i++) mx[i] = -INFINITY;
        RED_WALK(&g, x->numel, {
            double v = red_load(t, x->data, i);
            if (v > mx[o] || isnan(v)) mx[o] = v;
        });
        for (int64_t i = 0; i < n; i++)
            if (isinf(mx[i])) mx[i] = 0.0;
    }
    RED_WALK(&g, x->numel, {
        double v = red_load(t, x->data, i);
        switch (k) {
        case RED_SUM: case RED_MEAN: case RED_LOGSUM: acc[o] += v; break;
        case RED_L1: acc[o] += fabs(v); break;
        case RED_L2: case RED_SUMSQUARE: acc[o] += v * v; break;
        case RED_PROD: acc[o] *= v; break;
        case RED_MAX: if (v > acc[o] || isnan(v)) acc[o] = v; break;
        case RED_MIN: if (v < acc[o] || isnan(v)) acc[o] = v; break;
        case RED_LOGSUMEXP: acc[o] += exp(v - mx[o]); break;
        }
    });
    for (int64_t i = 0; i < n; i++) {
        double v = acc[i];
        switch (k) {
        case RED_MEAN: v = g.count > 0 ? v / (double)g.count : NAN; break;
        case RED_L2: v = sqrt(v); break;
        case RED_LOGSUM: v = log(v); break;
        case RED_LOGSUMEXP: v = log(v) + mx[i]; break;
        default: break;
        }
        if (t == KILN_DTYPE_FLOAT) ((float *)y->data)[i] = (float)v;
        else if (t == KILN_DTYPE_DOUBLE) ((double *)y->data)[i] = v;
        else if (is_int) core_store_i64(t, y->data, i, (int64_t)v);
        else core_store_f64(t, y->data, i, v);
    }
    free(acc);
    free(mx);
    return KILN_OK;
}

static kiln_status reduce_sum_run(ops_ctx *c) { return reduce_common(c, RED_SUM, 13); }
static kiln_status reduce_mean_run(ops_ctx *c) { return reduce_common(c, RED_MEAN, 18); }
static kiln_status reduce_max_run(ops_ctx *c) { return reduce_common(c, RED_MAX, 18); }
static kiln_status reduce_min_run(ops_ctx *c) { return reduce_common(c, RED_MIN, 18); }
static kiln_status reduce_prod_run(ops_ctx *c) { return reduce_common(c, RED_PROD, 18); }
static kiln_status reduce_l1_run(ops_ctx *c) { return reduce_common(c, RED_L1, 18); }
static kiln_status reduce_l2_run(ops_ctx *c) { return reduce_common(c, RED_L2, 18); }
static kiln_status reduce_logsum_run(ops_ctx *c) { return reduce_common(c, RED_LOGSUM, 18); }
static kiln_status reduce_logsumexp_run(ops_ctx *c) { return reduce_common(c, RED_LOGSUMEXP, 18); }
static kiln_status reduce_sumsquare_run(ops_ctx *c) { return reduce_common(c, RED_SUMSQUARE, 18); }

/* ---- ArgMax / ArgMin --------------------------------------------------------------------- */

static kiln_status arg_common(ops_ctx *c, bool is_max)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "missing input 0");
    if (x->dtype == KILN_DTYPE_STRING || x->dtype == KILN_DTYPE_COMPLEX64 ||
        x->dtype == KILN_DTYPE_COMPLEX128)
        return ops_error(c, KILN_ERR_UNSUPPORTED, "dtype %s not supported", core_dtype_name(x->dtype));
    int64_t axis_attr = ops_attr_int(c, "axis", 0);
    int nd = x->ndim;
    int64_t axis = ops_axis(axis_attr, nd);
    if (axis < 0 || (nd == 0 && axis_attr != 0 && axis_attr != -1))
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "axis %lld out of range for %d dims",
                         (long long)axis_attr, nd);
    bool keepdims = ops_attr_int(c, "keepdims", 1) != 0;
    bool last = ops_attr_int(c, "select_last_index", 0) != 0;
    int64_t len = nd > 0 ? x->dims[axis] : 1;
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < (int)axis; i++) outer *= x->dims[i];
    for (int i = (int)axis + 1; i < nd; i++) inner *= x->dims[i];
    int64_t odims[KILN_MAX_DIMS];
    int ond = 0;
    for (int i = 0; i < nd; i++) {
        if (i == axis) { if (keepdims) odims[ond++] = 1; }
        else odims[ond++] = x->dims[i];
    }
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_INT64, ond, odims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    if (len == 0)
        return ops_error(c, KILN_ERR_SHAPE, "cannot take %s over an empty axis %lld",
                         is_max ? "ArgMax" : "ArgMin", (long long)axis);
    int64_t *out = (int64_t *)y->data;
    bool is_int = !core_dtype_is_float(x->dtype);
    bool u64 = x->dtype == KILN_DTYPE_UINT64;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t in = 0; in < inner; in++) {
            int64_t base = o * len * inner + in;
            int64_t best = 0;
            if (is_int) {
                int64_t bv = core_load_i64(x->dtype, x->data, base);
                for (int64_t j = 1; j < len; j++) {
                    int64_t v = core_load_i64(x->dtype, x->data, base + j * inner);
                    bool gt = u64 ? (uint64_t)v > (uint64_t)bv : v > bv;
                    bool lt = u64 ? (uint64_t)v < (uint64_t)bv : v < bv;
                    bool better = is_max ? gt : lt;
                    if (better || (last && v == bv)) { bv = v; best = j; }
                }
            } else {
                double bv = red_load(x->dtype, x->data, base);
                for (int64_t j = 1; j < len; j++) {
                    double v = red_load(x->dtype, x->data, base + j * inner);
                    if (isnan(bv)) break; /* numpy: the first NaN wins */
                    bool better = is_max ? v > bv : v < bv;
                    if (better || isnan(v) || (last && v == bv)) { bv = v; best = j; }
                }
            }
            out[o * inner + in] = best;
        }
    }
    return KILN_OK;
}

static kiln_status argmax_run(ops_ctx *c) { return arg_common(c, true); }
static kiln_status argmin_run(ops_ctx *c) { return arg_common(c, false); }

/* ---- CumSum / CumProd --------------------------------------------------------------------- */

static kiln_status cum_common(ops_ctx *c, bool prod)
{
    const core_tensor *x = ops_input(c, 0);
    const core_tensor *ax = ops_input(c, 1);
    if (!x) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "missing input 0");
    if (!ax) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "missing axis input");
    if (!core_dtype_is_int(ax->dtype) || ax->numel != 1)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "axis must be one integer, got %lld %s values",
                         (long long)ax->numel, core_dtype_name(ax->dtype));
    kiln_dtype t = x->dtype;
    if (t == KILN_DTYPE_STRING || t == KILN_DTYPE_BOOL || t == KILN_DTYPE_COMPLEX64 ||
        t == KILN_DTYPE_COMPLEX128)
        return ops_error(c, KILN_ERR_UNSUPPORTED, "dtype %s not supported", core_dtype_name(t));
    int64_t a = ops_scalar_i64(ax);
    int nd = x->ndim;
    int64_t axis = ops_axis(a, nd);
    if (axis < 0 || nd == 0)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "axis %lld out of range for %d dims",
                         (long long)a, nd);
    bool excl = ops_attr_int(c, "exclusive", 0) != 0;
    bool rev = ops_attr_int(c, "reverse", 0) != 0;
    core_tensor *y = ops_output(c, 0, t, nd, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    int64_t len = x->dims[axis], outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= x->dims[i];
    for (int i = (int)axis + 1; i < nd; i++) inner *= x->dims[i];
    bool is_int = !core_dtype_is_float(t);
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t in = 0; in < inner; in++) {
            int64_t base = o * len * inner + in;
            double accf = prod ? 1.0 : 0.0;
            int64_t acci = prod ? 1 : 0;
            for (int64_t jj = 0; jj < len; jj++) {
                int64_t j = rev ? len - 1 - jj : jj;
                int64_t off = base + j * inner;
                if (is_int) {
                    int64_t v = core_load_i64(t, x->data, off);
                    if (excl) core_store_i64(t, y->data, off, acci);
                    acci = prod ? (int64_t)((uint64_t)acci * (uint64_t)v)
                                : (int64_t)((uint64_t)acci + (uint64_t)v);
                    if (!excl) core_store_i64(t, y->data, off, acci);
                } else {
                    double v = red_load(t, x->data, off);
                    if (excl) core_store_f64(t, y->data, off, accf);
                    accf = prod ? accf * v : accf + v;
                    if (!excl) core_store_f64(t, y->data, off, accf);
                }
            }
        }
    }
    return KILN_OK;
}

static kiln_status cumsum_run(ops_ctx *c) { return cum_common(c, false); }
static kiln_status cumprod_run(ops_ctx *c) { return cum_common(c, true); }

const ops_schema ops_table_reduce[] = {
    {"ReduceSum", "", 1, reduce_sum_run},
    {"ReduceMean", "", 1, reduce_mean_run},
    {"ReduceMax", "", 1, reduce_max_run},
    {"ReduceMin", "", 1, reduce_min_run},
    {"ReduceProd", "", 1, reduce_prod_run},
    {"ReduceL1", "", 1, reduce_l1_run},
    {"ReduceL2", "", 1, reduce_l2_run},
    {"ReduceLogSum", "", 1, reduce_logsum_run},
    {"ReduceLogSumExp", "", 1, reduce_logsumexp_run},
    {"ReduceSumSquare", "", 1, reduce_sumsquare_run},
    {"ArgMax", "", 1, argmax_run},
    {"ArgMin", "", 1, argmin_run},
    {"CumSum", "", 11, cumsum_run},
    {"CumProd", "", 26, cumprod_run},
    OPS_TABLE_END
};
