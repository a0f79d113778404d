/* norm.c — reference kernels for normalizations (Batch/Instance/Layer/Group/RMS, LRN, Lp,
 * MeanVariance) and the softmax family. Data is staged as float; statistics accumulate in
 * double. */
#include "ops/ops.h"
#include "ops/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- float staging ------------------------------------------------------------------------ */


/* Float buffer to compute output y into: y's own storage when y is float. */
static float *nm_out(core_tensor *y, bool *owned)
{
    *owned = false;
    if (y->dtype == KILN_DTYPE_FLOAT) return y->data;
    float *p = core_malloc((size_t)(y->numel > 0 ? y->numel : 1) * sizeof(float));
    if (p) *owned = true;
    return p;
}

/* Store the computed floats into y (rounding to its dtype) and release the buffer. */
static void nm_out_done(core_tensor *y, float *p, bool owned)
{
    if (!owned) return;
    if (y->dtype == KILN_DTYPE_FLOAT16) {
        uint16_t *d = y->data;
        for (int64_t i = 0; i < y->numel; i++) d[i] = core_f32_to_f16(p[i]);
    } else if (y->dtype == KILN_DTYPE_BFLOAT16) {
        uint16_t *d = y->data;
        for (int64_t i = 0; i < y->numel; i++) d[i] = core_f32_to_bf16(p[i]);
    } else {
        for (int64_t i = 0; i < y->numel; i++) core_store_f64(y->dtype, y->data, i, p[i]);
    }
    free(p);
}

static void nm_free(float *p, bool owned)
{
    if (owned) free(p);
}

static kiln_status nm_check_float(ops_ctx *c, const core_tensor *t, const char *what)
{
    if (!t) return ops_error(c, KILN_ERR_INVALID_MODEL, "input %s is missing", what);
    if (!core_dtype_is_float(t->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "%s is %s, expected a float type", what,
                         core_dtype_name(t->dtype));
    return KILN_OK;
}

/* Expand parameter p (numpy-broadcastable to shape dims; extra leading dims must be 1) into
 * numel(dims) floats at out. */
static kiln_status nm_expand(ops_ctx *c, const core_tensor *p, const char *what, int nd,
                             const int64_t *dims, float *out)
{
    int pn = p->ndim;
    for (int i = 0; i < pn; i++) {
        int j = i - (pn - nd);
        int64_t d = p->dims[i];
        if (j < 0 ? d != 1 : (d != dims[j] && d != 1)) {
            char a[128], b[128];
            return ops_error(c, KILN_ERR_SHAPE, "%s has shape %s, not broadcastable to %s", what,
                             core_shape_str(pn, p->dims, a, sizeof a),
                             core_shape_str(nd, dims, b, sizeof b));
        }
    }
    int64_t str[KILN_MAX_DIMS], idx[KILN_MAX_DIMS] = {0};
    int64_t pd[KILN_MAX_DIMS];
    int pk = 0;
    for (int i = 0; i < pn; i++)
        if (i >= pn - nd) pd[pk++] = p->dims[i];
    ops_broadcast_strides(pk, pd, nd, dims, str);
    int64_t n = core_shape_numel(nd, dims);
    if (n <= 0) return KILN_OK;
    bool owned;
    float *v = ops_tensor_f32(p, &owned);
    if (!v) return core_oom();
    int64_t i = 0;
    do {
        int64_t off = 0;
        for (int d = 0; d < nd; d++) off += idx[d] * str[d];
        out[i++] = v[off];
    } while (ops_index_next(nd, dims, idx));
    nm_free(v, owned);
    return KILN_OK;
}

/* Per-channel parameter of length C (a tensor with exactly C elements). */
static kiln_status nm_channel_param(ops_ctx *c, const core_tensor *p, const char *what,
                                    int64_t C, float **out, bool *owned)
{
    *out = NULL;
    if (!p) return ops_error(c, KILN_ERR_INVALID_MODEL, "input %s is missing", what);
    if (p->numel != C)
        return ops_error(c, KILN_ERR_SHAPE, "%s has %lld elements, expected %lld", what,
                         (long long)p->numel, (long long)C);
    *out = ops_tensor_f32(p, owned);
    return *out ? KILN_OK : core_oom();
}

static kiln_dtype nm_stash_dtype(int64_t stash)
{
    switch (stash) {
    case KILN_DTYPE_DOUBLE: return KILN_DTYPE_DOUBLE;
    case KILN_DTYPE_FLOAT16: return KILN_DTYPE_FLOAT16;
    case KILN_DTYPE_BFLOAT16: return KILN_DTYPE_BFLOAT16;
    default: return KILN_DTYPE_FLOAT;
    }
}

/* ---- BatchNormalization ------------------------------------------------------------------- */

static kiln_status batchnorm_run(ops_ctx *c)
{
    core_tensor *x = ops_input(c, 0);
    kiln_status st = nm_check_float(c, x, "X");
    if (st) return st;
    if (x->ndim < 1)
        return ops_error(c, KILN_ERR_SHAPE, "X has %d dims, expected at least 1", x->ndim);
    int64_t N = x->dims[0], C = x->ndim >= 2 ? x->dims[1] : 1, S = 1;
    if (x->ndim == 1) { N = 1; C = x->dims[0]; }
    for (int i = 2; i < x->ndim; i++) S *= x->dims[i];
    double eps = ops_attr_float(c, "epsilon", 1e-5f);
    double momentum = ops_attr_float(c, "momentum", 0.9f);
    bool training = ops_opset(c) >= 14 && ops_attr_int(c, "training_mode", 0) != 0;
    float *sc, *bi, *mu, *va;
    bool o1 = false, o2 = false, o3 = false, o4 = false, ox = false, oy = false;
    sc = bi = mu = va = NULL;
    st = nm_channel_param(c, ops_input(c, 1), "scale", C, &sc, &o1);
    if (!st) st = nm_channel_param(c, ops_input(c, 2), "B", C, &bi, &o2);
    if (!st) st = nm_channel_param(c, ops_input(c, 3), "input_mean", C, &mu, &o3);
    if (!st) st = nm_channel_param(c, ops_input(c, 4), "input_var", C, &va, &o4);
    float *X = NULL, *Y = NULL;
    double *bm = NULL, *bv = NULL;
    core_tensor *y = NULL;
    if (!st) {
        y = ops_output(c, 0, x->dtype, x->ndim, x->dims);
        if (!y) st = KILN_ERR_OUT_OF_MEMORY;
    }
    if (!st) {
        X = ops_tensor_f32(x, &ox);
        Y = nm_out(y, &oy);
        bm = core_calloc((size_t)(C > 0 ? C : 1), sizeof(double));
        bv = core_calloc((size_t)(C > 0 ? C : 1), sizeof(double));
        if (!X || !Y || !bm || !bv) st = core_oom();
    }
    if (!st) {
        for (int64_t ch = 0; ch < C; ch++) {
            bm[ch] = mu[ch];
            bv[ch] = va[ch];
        }
        if (training && N * S > 0) {
            for (int64_t ch = 0; ch < C; ch++) {
                double s = 0, s2 = 0;
                for (int64_t n = 0; n < N; n++) {
                    const float *p = X + (n * C + ch) * S;
                    for (int64_t i = 0; i < S; i++) s += p[i];
                }
                double m = s / (double)(N * S);
                for (int64_t n = 0; n < N; n++) {
                    const float *p = X + (n * C + ch) * S;
                    for (int64_t i = 0; i < S; i++) s2 += (p[i] - m) * (p[i] - m);
                }
                bm[ch] = m;
                bv[ch] = s2 / (double)(N * S);
            }
        }
        for (int64_t n = 0; n < N; n++)
            for (int64_t ch = 0; ch < C; ch++) {
                float k = (float)(sc[ch] / sqrt(bv[ch] + eps));
                float b = (float)(bi[ch] - bm[ch] * k);
                const float *p = X + (n * C + ch) * S;
                float *q = Y + (n * C + ch) * S;
                for (int64_t i = 0; i < S; i++) q[i] = p[i] * k + b;
            }
        nm_out_done(y, Y, oy);
        oy = false;
        if (training) {
            for (int o = 1; o <= 2 && !st; o++) {
                if (!ops_has_output(c, o)) continue;
                const core_tensor *ref = ops_input(c, o == 1 ? 3 : 4);
                core_tensor *t = ops_output(c, o, ref->dtype, 1, &C);
                if (!t) { st = KILN_ERR_OUT_OF_MEMORY; break; }
                for (int64_t ch = 0; ch < C; ch++) {
                    double run = o == 1 ? mu[ch] : va[ch], cur = o == 1 ? bm[ch] : bv[ch];
                    core_store_f64(t->dtype, t->data, ch, run * momentum + cur * (1.0 - momentum));
                }
            }
        }
    }
    nm_free(sc, o1);
    nm_free(bi, o2);
    nm_free(mu, o3);
    nm_free(va, o4);
    nm_free(X, ox);
    nm_free(Y, oy);
    free(bm);
    free(bv);
    return st;
}

/* ---- InstanceNormalization / GroupNormalization -------------------------------------------- */

/* Normalize each (n, group) block of X [N, C, S...] where a group holds cpg consecutive
 * channels; scale/bias are indexed per channel (pc = true) or per group. */
static kiln_status nm_group_norm(ops_ctx *c, int64_t G, const char *sname, const char *bname,
                                 bool per_channel)
{
    core_tensor *x = ops_input(c, 0);
    kiln_status st = nm_check_float(c, x, "X");
    if (st) return st;
    if (x->ndim < 2) return ops_error(c, KILN_ERR_SHAPE, "X has %d dims, expected >= 2", x->ndim);
    int64_t N = x->dims[0], C = x->dims[1], S = 1;
    for (int i = 2; i < x->ndim; i++) S *= x->dims[i];
    if (G <= 0 || C % G != 0)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "num_groups %lld does not divide %lld channels",
                         (long long)G, (long long)C);
    int64_t cpg = C / G;
    double eps = ops_attr_float(c, "epsilon", 1e-5f);
    float *sc = NULL, *bi = NULL, *X = NULL, *Y = NULL;
    bool o1 = false, o2 = false, ox = false, oy = false;
    int64_t np = per_channel ? C : G;
    st = nm_channel_param(c, ops_input(c, 1), sname, np, &sc, &o1);
    if (!st) st = nm_channel_param(c, ops_input(c, 2), bname, np, &bi, &o2);
    core_tensor *y = NULL;
    if (!st) {
        y = ops_output(c, 0, x->dtype, x->ndim, x->dims);
        if (!y) st = KILN_ERR_OUT_OF_MEMORY;
    }
    if (!st) {
        X = ops_tensor_f32(x, &ox);
        Y = nm_out(y, &oy);
        if (!X || !Y) st = core_oom();
    }
    if (!st) {
        int64_t len = cpg * S;
        for (int64_t n = 0; n < N; n++)
            for (int64_t g = 0; g < G; g++) {
                const float *p = X + (n * C + g * cpg) * S;
                float *q = Y + (n * C + g * cpg) * S;
                double s = 0, s2 = 0;
                for (int64_t i = 0; i < len; i++) s += p[i];
                double m = len > 0 ? s / (double)len : 0.0;
                for (int64_t i = 0; i < len; i++) s2 += (p[i] - m) * (p[i] - m);
                double inv = 1.0 / sqrt((len > 0 ? s2 / (double)len : 0.0) + eps);
                for (int64_t ch = 0; ch < cpg; ch++) {
                    int64_t pi = per_channel ? g * cpg + ch : g;
                    float k = (float)(sc[pi] * inv), b = (float)(bi[pi] - m * sc[pi] * inv);
                    for (int64_t i = 0; i < S; i++) q[ch * S + i] = p[ch * S + i] * k + b;
                }
            }
        nm_out_done(y, Y, oy);
        oy = false;
    }
    nm_free(sc, o1);
    nm_free(bi, o2);
    nm_free(X, ox);
    nm_free(Y, oy);
    return st;
}

static kiln_status instancenorm_run(ops_ctx *c)
{
    core_tensor *x = ops_input(c, 0);
    if (!x || x->ndim < 2) return ops_error(c, KILN_ERR_SHAPE, "X must have at least 2 dims");
    return nm_group_norm(c, x->dims[1], "scale", "B", true);
}

static kiln_status groupnorm_run(ops_ctx *c)
{
    core_tensor *x = ops_input(c, 0), *s = ops_input(c, 1);
    if (!x || x->ndim < 2 || !s)
        return ops_error(c, KILN_ERR_SHAPE, "X must have at least 2 dims, scale is required");
    if (!ops_has_attr(c, "num_groups"))
        return ops_error(c, KILN_ERR_INVALID_MODEL, "missing attribute num_groups");
    int64_t G = ops_attr_int(c, "num_groups", 1), C = x->dims[1];
    /* opset 18 took per-group scale/bias, opset 21 per-channel; accept either by size */
    bool per_channel = s->numel == C && (s->numel != G || ops_opset(c) >= 21);
    return nm_group_norm(c, G, "scale", "bias", per_channel);
}

/* ---- LayerNormalization / RMSNormalization ------------------------------------------------- */

static kiln_status nm_last_axes_norm(ops_ctx *c, bool rms)
{
    core_tensor *x = ops_input(c, 0), *s = ops_input(c, 1), *b = rms ? NULL : ops_input(c, 2);
    kiln_status st = nm_check_float(c, x, "X");
    if (st) return st;
    if (!s) return ops_error(c, KILN_ERR_INVALID_MODEL, "input Scale is missing");
    int64_t axis = ops_axis(ops_attr_int(c, "axis", -1), x->ndim);
    if (axis < 0 || x->ndim == 0)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "axis %lld out of range for rank %d",
                         (long long)ops_attr_int(c, "axis", -1), x->ndim);
    double eps = ops_attr_float(c, "epsilon", 1e-5f);
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= x->dims[i];
    for (int i = (int)axis; i < x->ndim; i++) inner *= x->dims[i];
    int nn = x->ndim - (int)axis;
    float *sc = core_malloc((size_t)(inner > 0 ? inner : 1) * sizeof(float));
    float *bi = core_calloc((size_t)(inner > 0 ? inner : 1), sizeof(float));
    float *X = NULL, *Y = NULL;
    bool ox = false, oy = false;
    if (!sc || !bi) st = core_oom();
    if (!st) st = nm_expand(c, s, "Scale", nn, x->dims + axis, sc);
    if (!st && b) st = nm_expand(c, b, "B", nn, x->dims + axis, bi);
    core_tensor *y = NULL, *my = NULL, *iy = NULL;
    if (!st) {
        y = ops_output(c, 0, x->dtype, x->ndim, x->dims);
        if (!y) st = KILN_ERR_OUT_OF_MEMORY;
    }
    if (!st && !rms) {
        int64_t sd[KILN_MAX_DIMS];
        for (int i = 0; i < x->ndim; i++) sd[i] = i < axis ? x->dims[i] : 1;
        kiln_dtype sdt = nm_stash_dtype(ops_attr_int(c, "stash_type", 1));
        if (ops_has_output(c, 1) && !(my = ops_output(c, 1, sdt, x->ndim, sd)))
            st = KILN_ERR_OUT_OF_MEMORY;
        if (!st && ops_has_output(c, 2) && !(iy = ops_output(c, 2, sdt, x->ndim, sd)))
            st = KILN_ERR_OUT_OF_MEMORY;
    }
    if (!st) {
        X = ops_tensor_f32(x, &ox);
        Y = nm_out(y, &oy);
        if (!X || !Y) st = core_oom();
    }
    if (!st) {
        for (int64_t o = 0; o < outer; o++) {
            const float *p = X + o * inner;
            float *q = Y + o * inner;
            double m = 0.0, v = 0.0;
            if (rms) {
                for (int64_t i = 0; i < inner; i++) v += (double)p[i] * p[i];
                v = inner > 0 ? v / (double)inner : 0.0;
            } else {
                for (int64_t i = 0; i < inner; i++) m += p[i];
                m = inner > 0 ? m / (double)inner : 0.0;
                for (int64_t i = 0; i < inner; i++) v += (p[i] - m) * (p[i] - m);
                v = inner > 0 ? v / (double)inner : 0.0;
            }
            double inv = 1.0 / sqrt(v + eps);
            for (int64_t i = 0; i < inner; i++)
                q[i] = (float)((p[i] - m) * inv) * sc[i] + bi[i];
            if (my) core_store_f64(my->dtype, my->data, o, m);
            if (iy) core_store_f64(iy->dtype, iy->data, o, inv);
        }
        nm_out_done(y, Y, oy);
        oy = false;
    }
    free(sc);
    free(bi);
    nm_free(X, ox);
    nm_free(Y, oy);
    return st;
}

static kiln_status layernorm_run(ops_ctx *c) { return nm_last_axes_norm(c, false); }
static kiln_status rmsnorm_run(ops_ctx *c) { return nm_last_axes_norm(c, true); }

/* ---- LRN ------------------------------------------------------------------------------------ */

static kiln_status lrn_run(ops_ctx *c)
{
    core_tensor *x = ops_input(c, 0);
    kiln_status st = nm_check_float(c, x, "X");
    if (st) return st;
    if (x->ndim < 2) return ops_error(c, KILN_ERR_SHAPE, "X has %d dims, expected >= 2", x->ndim);
    int64_t size = ops_attr_int(c, "size", 0);
    if (size <= 0) return ops_error(c, KILN_ERR_INVALID_MODEL, "size must be positive");
    double alpha = ops_attr_float(c, "alpha", 1e-4f), beta = ops_attr_float(c, "beta", 0.75f);
    double bias = ops_attr_float(c, "bias", 1.0f);
    int64_t N = x->dims[0], C = x->dims[1], S = 1;
    for (int i = 2; i < x->ndim; i++) S *= x->dims[i];
    core_tensor *y = ops_output(c, 0, x->dtype, x->ndim, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    bool ox, oy;
    float *X = ops_tensor_f32(x, &ox), *Y = nm_out(y, &oy);
    if (!X || !Y) {
        nm_free(X, ox);
        nm_free(Y, oy);
        return core_oom();
    }
    int64_t lo = (size - 1) / 2, hi = size / 2; /* floor and ceil of (size-1)/2 */
    for (int64_t n = 0; n < N; n++)
        for (int64_t ch = 0; ch < C; ch++) {
            int64_t c0 = ch - lo < 0 ? 0 : ch - lo, c1 = ch + hi >= C ? C - 1 : ch + hi;
            for (int64_t i = 0; i < S; i++) {
                double ss = 0.0;
                for (int64_t k = c0; k <= c1; k++) {
                    double v = X[(n * C + k) * S + i];
                    ss += v * v;
                }
                Y[(n * C + ch) * S + i] =
                    (float)(X[(n * C + ch) * S + i] / pow(bias + alpha / (double)size * ss, beta));
            }
        }
    nm_out_done(y, Y, oy);
    nm_free(X, ox);
    return KILN_OK;
}

/* ---- axis-wise ops: LpNormalization, softmax family ---------------------------------------- */

/* Split x at `axis` into outer x n x inner. With coerce (softmax before opset 13) the op sees
 * a 2-D [outer, rest] view, so n covers every dim from axis on and inner = 1. */
static kiln_status nm_axis_split(ops_ctx *c, const core_tensor *x, int64_t axis_attr, bool coerce,
                                 int64_t *outer, int64_t *n, int64_t *inner)
{
    int nd = x->ndim;
    int64_t axis = axis_attr < 0 ? axis_attr + (nd > 0 ? nd : 1) : axis_attr;
    int64_t hi = coerce ? nd : (nd > 0 ? nd - 1 : 0);
    if (axis < 0 || axis > hi)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "axis %lld out of range for rank %d",
                         (long long)axis_attr, nd);
    *outer = 1;
    *n = 1;
    *inner = 1;
    for (int i = 0; i < axis && i < nd; i++) *outer *= x->dims[i];
    if (coerce) {
        for (int i = (int)axis; i < nd; i++) *n *= x->dims[i];
    } else if (nd > 0) {
        *n = x->dims[axis];
        for (int i = (int)axis + 1; i < nd; i++) *inner *= x->dims[i];
    }
    return KILN_OK;
}

enum { NM_SOFTMAX, NM_LOGSOFTMAX, NM_HARDMAX };

static kiln_status nm_softmax_family(ops_ctx *c, int kind)
{
    core_tensor *x = ops_input(c, 0);
    kiln_status st = nm_check_float(c, x, "input");
    if (st) return st;
    bool coerce = ops_opset(c) < 13;
    int64_t outer, n, inner;
    st = nm_axis_split(c, x, ops_attr_int(c, "axis", coerce ? 1 : -1), coerce, &outer, &n, &inner);
    if (st) return st;
    core_tensor *y = ops_output(c, 0, x->dtype, x->ndim, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    bool ox, oy;
    float *X = ops_tensor_f32(x, &ox), *Y = nm_out(y, &oy);
    if (!X || !Y) {
        nm_free(X, ox);
        nm_free(Y, oy);
        return core_oom();
    }
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            const float *p = X + o * n * inner + in;
            float *q = Y + o * n * inner + in;
            float mx = p[0];
            int64_t arg = 0;
            for (int64_t i = 1; i < n; i++)
                if (p[i * inner] > mx) { mx = p[i * inner]; arg = i; }
            if (kind == NM_HARDMAX) {
                for (int64_t i = 0; i < n; i++) q[i * inner] = i == arg ? 1.0f : 0.0f;
                continue;
            }
            double sum = 0.0;
            for (int64_t i = 0; i < n; i++) {
                float e = expf(p[i * inner] - mx);
                if (kind == NM_SOFTMAX) q[i * inner] = e;
                sum += e;
            }
            if (kind == NM_SOFTMAX) {
                float inv = (float)(1.0 / sum);
                for (int64_t i = 0; i < n; i++) q[i * inner] *= inv;
            } else {
                float ls = (float)log(sum);
                for (int64_t i = 0; i < n; i++) q[i * inner] = p[i * inner] - mx - ls;
            }
        }
    nm_out_done(y, Y, oy);
    nm_free(X, ox);
    return KILN_OK;
}

static kiln_status softmax_run(ops_ctx *c) { return nm_softmax_family(c, NM_SOFTMAX); }
static kiln_status logsoftmax_run(ops_ctx *c) { return nm_softmax_family(c, NM_LOGSOFTMAX); }
static kiln_status hardmax_run(ops_ctx *c) { return nm_softmax_family(c, NM_HARDMAX); }

static kiln_status lpnorm_run(ops_ctx *c)
{
    core_tensor *x = ops_input(c, 0);
    kiln_status st = nm_check_float(c, x, "input");
    if (st) return st;
    int64_t p = ops_attr_int(c, "p", 2);
    if (p != 1 && p != 2) return ops_error(c, KILN_ERR_INVALID_MODEL, "p is %lld, expected 1 or 2", (long long)p);
    int64_t outer, n, inner;
    st = nm_axis_split(c, x, ops_attr_int(c, "axis", -1), false, &outer, &n, &inner);
    if (st) return st;
    core_tensor *y = ops_output(c, 0, x->dtype, x->ndim, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    bool ox, oy;
    float *X = ops_tensor_f32(x, &ox), *Y = nm_out(y, &oy);
    if (!X || !Y) {
        nm_free(X, ox);
        nm_free(Y, oy);
        return core_oom();
    }
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            const float *a = X + o * n * inner + in;
            float *q = Y + o * n * inner + in;
            double s = 0.0;
            for (int64_t i = 0; i < n; i++) s += p == 1 ? fabs(a[i * inner]) : (double)a[i * inner] * a[i * inner];
            double norm = p == 1 ? s : sqrt(s);
            for (int64_t i = 0; i < n; i++) q[i * inner] = norm == 0.0 ? 0.0f : (float)(a[i * inner] / norm);
        }
    nm_out_done(y, Y, oy);
    nm_free(X, ox);
    return KILN_OK;
}

/* ---- MeanVarianceNormalization --------------------------------------------------------------- */

static kiln_status mvn_run(ops_ctx *c)
{
    core_tensor *x = ops_input(c, 0);
    kiln_status st = nm_check_float(c, x, "X");
    if (st) return st;
    int64_t nax = 0;
    const int64_t *axes = ops_attr_ints(c, "axes", &nax);
    static const int64_t dflt[3] = {0, 2, 3};
    if (!axes) { axes = dflt; nax = 3; }
    bool red[KILN_MAX_DIMS] = {false};
    for (int64_t i = 0; i < nax; i++) {
        int64_t a = ops_axis(axes[i], x->ndim);
        if (a < 0 || x->ndim == 0)
            return ops_error(c, KILN_ERR_INVALID_MODEL, "axis %lld out of range for rank %d",
                             (long long)axes[i], x->ndim);
        red[a] = true;
    }
    /* group index of an element: its position over the kept axes */
    int64_t gstr[KILN_MAX_DIMS], ng = 1;
    for (int d = x->ndim - 1; d >= 0; d--) {
        gstr[d] = red[d] ? 0 : ng;
        if (!red[d]) ng *= x->dims[d];
    }
    core_tensor *y = ops_output(c, 0, x->dtype, x->ndim, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    bool ox, oy;
    float *X = ops_tensor_f32(x, &ox), *Y = nm_out(y, &oy);
    double *s1 = core_calloc((size_t)ng, sizeof(double)), *s2 = core_calloc((size_t)ng, sizeof(double));
    int64_t *gi = core_malloc((size_t)x->numel * sizeof(int64_t));
    if (X && Y && s1 && s2 && gi) {
        int64_t idx[KILN_MAX_DIMS] = {0}, i = 0;
        do {
            int64_t g = 0;
            for (int d = 0; d < x->ndim; d++) g += idx[d] * gstr[d];
            gi[i] = g;
            s1[g] += X[i];
            s2[g] += (double)X[i] * X[i];
            i++;
        } while (ops_index_next(x->ndim, x->dims, idx));
        double cnt = (double)x->numel / (double)ng;
        for (int64_t g = 0; g < ng; g++) {
            double m = s1[g] / cnt, v = s2[g] / cnt - m * m;
            s1[g] = m;
            s2[g] = sqrt(v > 0 ? v : 0) + 1e-9;
        }
        for (int64_t k = 0; k < x->numel; k++) Y[k] = (float)((X[k] - s1[gi[k]]) / s2[gi[k]]);
        nm_out_done(y, Y, oy);
        oy = false;
    } else {
        st = core_oom();
    }
    nm_free(X, ox);
    nm_free(Y, oy);
    free(s1);
    free(s2);
    free(gi);
    return st;
}

const ops_schema ops_table_norm[] = {
    {"BatchNormalization", "", 1, batchnorm_run},
    {"InstanceNormalization", "", 1, instancenorm_run},
    {"LayerNormalization", "", 17, layernorm_run},
    {"GroupNormalization", "", 18, groupnorm_run},
    {"RMSNormalization", "", 23, rmsnorm_run},
    {"LRN", "", 1, lrn_run},
    {"LpNormalization", "", 1, lpnorm_run},
    {"MeanVarianceNormalization", "", 9, mvn_run},
    {"Softmax", "", 1, softmax_run},
    {"LogSoftmax", "", 1, logsoftmax_run},
    {"Hardmax", "", 1, hardmax_run},
    OPS_TABLE_END
};
