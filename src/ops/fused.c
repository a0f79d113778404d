/* fused.c — reference kernels (the oracle) of the internal ops the graph optimizer creates:
 * FusedConv, FusedGemm, FusedMatMul, ElementwiseChain, Attention, LayerNormalization (all in
 * domain ai.kiln). The op contract is in ops/fused.h. Float32 only, accumulating in double. */
#include "ops/fused.h"
#include "ops/ops.h"
#include "ops/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- activations ------------------------------------------------------------------------- */

enum fz_act { FZ_NONE, FZ_RELU, FZ_CLIP, FZ_LEAKY, FZ_SIGMOID, FZ_SILU, FZ_HARDSWISH, FZ_GELU, FZ_GELU_TANH };

typedef struct fz_act_desc {
    int kind;
    float a, b;
} fz_act_desc;

static kiln_status fz_act_read_named(ops_ctx *c, const char *name, const char *params, fz_act_desc *d)
{
    static const char *const names[] = {"", "Relu", "Clip", "LeakyRelu", "Sigmoid", "Silu", "HardSwish", "Gelu", "GeluTanh"};
    const char *s = ops_attr_string(c, name, "");
    int64_t np = 0;
    const float *p = ops_attr_floats(c, params, &np);
    d->kind = -1;
    for (int i = 0; i < (int)(sizeof names / sizeof names[0]); i++)
        if (!strcmp(s, names[i])) d->kind = i;
    if (d->kind < 0) return ops_error(c, KILN_ERR_UNSUPPORTED, "activation '%s' is not supported", s);
    d->a = d->b = 0;
    if (d->kind == FZ_CLIP) {
        d->a = np > 0 ? p[0] : -INFINITY;
        d->b = np > 1 ? p[1] : INFINITY;
    } else if (d->kind == FZ_LEAKY) d->a = np > 0 ? p[0] : 0.01f;
    return KILN_OK;
}

static kiln_status fz_act_read(ops_ctx *c, fz_act_desc *d)
{
    return fz_act_read_named(c, "activation", "activation_params", d);
}

static inline float fz_act(const fz_act_desc *d, float v)
{
    switch (d->kind) {
    case FZ_RELU: return v > 0 ? v : (v == v ? 0.0f : v);
    case FZ_CLIP: return v < d->a ? d->a : v > d->b ? d->b : v;
    case FZ_LEAKY: return v >= 0 ? v : d->a * v;
    case FZ_SIGMOID: return (float)(1.0 / (1.0 + exp(-(double)v)));
    case FZ_SILU: return (float)((double)v / (1.0 + exp(-(double)v)));
    case FZ_HARDSWISH: {
        double t = (double)v / 6.0 + 0.5;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        return (float)(v * t);
    }
    case FZ_GELU: return (float)(0.5 * v * (1.0 + erf((double)v * M_SQRT1_2)));
    case FZ_GELU_TANH: {
        double x = v;
        return (float)(0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x))));
    }
    default: return v;
    }
}

static kiln_status fz_check_f32(ops_ctx *c, const core_tensor *t, const char *what)
{
    if (t && t->dtype != KILN_DTYPE_FLOAT)
        return ops_error(c, KILN_ERR_DTYPE, "%s is %s, expected float", what, core_dtype_name(t->dtype));
    return KILN_OK;
}

/* ---- FusedConv --------------------------------------------------------------------------- */

/* Read an ints attribute of n values (dflt when absent); false with the error set. */
static bool fz_ints(ops_ctx *c, const char *name, int n, int64_t dflt, int64_t minval, int64_t *out)
{
    int64_t cnt = 0;
    const int64_t *v = ops_attr_ints(c, name, &cnt);
    if (!v) { for (int i = 0; i < n; i++) out[i] = dflt; return true; }
    if (cnt != n) { ops_error(c, KILN_ERR_INVALID_MODEL, "attribute '%s' has %lld values, expected %d", name, (long long)cnt, n); return false; }
    for (int i = 0; i < n; i++) {
        if (v[i] < minval || v[i] > INT32_MAX) {
            ops_error(c, KILN_ERR_INVALID_MODEL, "attribute '%s'[%d] = %lld is out of range", name, i, (long long)v[i]);
            return false;
        }
        out[i] = v[i];
    }
    return true;
}

/* FusedConv on channels-first tensors x, z; the output is ops_output 0, or (nhwc) a new
 * channels-first tensor *tmp the caller turns into the channels-last output. */
static kiln_status fused_conv_impl(ops_ctx *c, const core_tensor *x, const core_tensor *z, bool nhwc,
                                   core_tensor **tmp)
{
    const core_tensor *w = ops_input(c, 1), *b = ops_input(c, 2);
    if (!x || !w) return ops_error(c, KILN_ERR_INVALID_MODEL, "inputs X and W are required");
    kiln_status st;
    if ((st = fz_check_f32(c, x, "input X")) || (st = fz_check_f32(c, w, "weight W")) ||
        (st = fz_check_f32(c, b, "bias B")) || (st = fz_check_f32(c, z, "residual Z")))
        return st;
    fz_act_desc act;
    if ((st = fz_act_read(c, &act))) return st;
    if (x->ndim < 3 || x->ndim > 5)
        return ops_error(c, KILN_ERR_UNSUPPORTED, "input X has %d dims, expected 3 to 5", x->ndim);
    if (w->ndim != x->ndim) return ops_error(c, KILN_ERR_SHAPE, "weight W has %d dims, expected %d", w->ndim, x->ndim);
    int nsp = x->ndim - 2;
    int64_t N = x->dims[0], C = x->dims[1], M = w->dims[0], G = ops_attr_int(c, "group", 1);
    if (G < 1 || C % G || M % G)
        return ops_error(c, KILN_ERR_SHAPE, "group %lld does not divide channels %lld / %lld", (long long)G, (long long)C, (long long)M);
    int64_t Cg = C / G, Mg = M / G;
    if (w->dims[1] != Cg) return ops_error(c, KILN_ERR_SHAPE, "weight dim 1 is %lld, expected %lld", (long long)w->dims[1], (long long)Cg);
    if (b && b->numel != M) return ops_error(c, KILN_ERR_SHAPE, "bias has %lld values, expected %lld", (long long)b->numel, (long long)M);
    int64_t ks[3], s[3], d[3], pads[6];
    if (!fz_ints(c, "kernel_shape", nsp, 0, 1, ks) || !fz_ints(c, "strides", nsp, 1, 1, s) ||
        !fz_ints(c, "dilations", nsp, 1, 1, d) || !fz_ints(c, "pads", 2 * nsp, 0, 0, pads))
        return KILN_ERR_INVALID_MODEL;
    const char *ap = ops_attr_string(c, "auto_pad", "NOTSET");
    int mode = !strcmp(ap, "NOTSET") || !*ap ? 0 : !strcmp(ap, "VALID") ? 1 : !strcmp(ap, "SAME_UPPER") ? 2 : !strcmp(ap, "SAME_LOWER") ? 3 : -1;
    if (mode < 0) return ops_error(c, KILN_ERR_INVALID_MODEL, "auto_pad '%s' is not supported", ap);
    /* Geometry padded to 3 spatial dims (leading dims of size 1). */
    int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, S[3] = {1, 1, 1}, D[3] = {1, 1, 1}, pb[3] = {0, 0, 0}, out[3] = {1, 1, 1};
    int64_t yd[5] = {N, M};
    for (int i = 0; i < nsp; i++) {
        int j = 3 - nsp + i;
        in[j] = x->dims[2 + i];
        k[j] = w->dims[2 + i];
        S[j] = s[i];
        D[j] = d[i];
        if (ops_has_attr(c, "kernel_shape") && ks[i] != k[j])
            return ops_error(c, KILN_ERR_SHAPE, "kernel_shape[%d] = %lld but weight has %lld", i, (long long)ks[i], (long long)k[j]);
        if (k[j] < 1) return ops_error(c, KILN_ERR_SHAPE, "weight spatial dim %d is 0", i);
        int64_t win = (k[j] - 1) * D[j] + 1;
        if (mode == 0) {
            pb[j] = pads[i];
            int64_t eff = in[j] + pads[i] + pads[nsp + i] - win;
            if (eff < 0) return ops_error(c, KILN_ERR_SHAPE, "spatial dim %d: input + pads is smaller than the kernel window", i);
            out[j] = eff / S[j] + 1;
        } else if (mode == 1) {
            if (in[j] < win) return ops_error(c, KILN_ERR_SHAPE, "spatial dim %d: input is smaller than the kernel window", i);
            out[j] = (in[j] - win) / S[j] + 1;
        } else {
            out[j] = (in[j] + S[j] - 1) / S[j];
            int64_t total = (out[j] - 1) * S[j] + win - in[j];
            if (total < 0) total = 0;
            pb[j] = mode == 2 ? total / 2 : total - total / 2;
        }
        yd[2 + i] = out[j];
    }
    core_tensor *y;
    if (nhwc) {
        y = *tmp = core_tensor_create(KILN_DTYPE_FLOAT, x->ndim, yd);
        if (!y) return core_oom();
    } else {
        y = ops_output(c, 0, KILN_DTYPE_FLOAT, x->ndim, yd);
        if (!y) return KILN_ERR_OUT_OF_MEMORY;
    }
    if (z) {
        bool same = z->ndim == y->ndim;
        for (int i = 0; same && i < y->ndim; i++) same = z->dims[i] == y->dims[i];
        if (!same) return ops_error(c, KILN_ERR_SHAPE, "residual Z does not have the output's shape");
    }
    if (y->numel == 0) return KILN_OK;
    int64_t in_sp = in[0] * in[1] * in[2], out_sp = out[0] * out[1] * out[2], k_sp = k[0] * k[1] * k[2];
    double *acc = malloc(sizeof(double) * (size_t)out_sp);
    if (!acc) return core_oom();
    const float *X = x->data, *W = w->data, *B = b ? b->data : NULL, *Z = z ? z->data : NULL;
    float *Y = y->data;
    /* Output column range where the input column ow*S2 + off stays inside [0, in2). */
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++) {
            int64_t gi = m / Mg;
            for (int64_t i = 0; i < out_sp; i++) acc[i] = 0;
            for (int64_t ci = 0; ci < Cg; ci++) {
                const float *xp = X + (n * C + gi * Cg + ci) * in_sp;
                const float *wp = W + (m * Cg + ci) * k_sp;
                for (int64_t k0 = 0; k0 < k[0]; k0++)
                    for (int64_t k1 = 0; k1 < k[1]; k1++)
                        for (int64_t k2 = 0; k2 < k[2]; k2++) {
                            double wv = wp[(k0 * k[1] + k1) * k[2] + k2];
                            int64_t off = k2 * D[2] - pb[2];
                            int64_t lo = off < 0 ? (-off + S[2] - 1) / S[2] : 0;
                            int64_t hi = in[2] - 1 - off < 0 ? 0 : (in[2] - 1 - off) / S[2] + 1;
                            if (hi > out[2]) hi = out[2];
                            for (int64_t o0 = 0; o0 < out[0]; o0++) {
                                int64_t i0 = o0 * S[0] - pb[0] + k0 * D[0];
                                if (i0 < 0 || i0 >= in[0]) continue;
                                for (int64_t o1 = 0; o1 < out[1]; o1++) {
                                    int64_t i1 = o1 * S[1] - pb[1] + k1 * D[1];
                                    if (i1 < 0 || i1 >= in[1]) continue;
                                    const float *row = xp + (i0 * in[1] + i1) * in[2];
                                    double *arow = acc + (o0 * out[1] + o1) * out[2];
                                    for (int64_t o2 = lo; o2 < hi; o2++) arow[o2] += wv * row[o2 * S[2] + off];
                                }
                            }
                        }
            }
            float *yp = Y + (n * M + m) * out_sp;
            const float *zp = Z ? Z + (n * M + m) * out_sp : NULL;
            double bias = B ? B[m] : 0.0;
            for (int64_t i = 0; i < out_sp; i++) {
                float v = (float)(acc[i] + bias);
                if (zp) v += zp[i];
                yp[i] = fz_act(&act, v);
            }
        }
    free(acc);
    return KILN_OK;
}

static kiln_status fused_conv_run(ops_ctx *c)
{
    return fused_conv_impl(c, ops_input(c, 0), ops_input(c, 3), false, NULL);
}

/* ConvNhwc: FusedConv on channels-last X, Z and Y (ops/fused.h), computed by transposing
 * around the channels-first oracle. */
/* Channels [off, off + n) of a channels-last x, as a new tensor; NULL (error set) when out of range. */
static core_tensor *fz_channel_slice(ops_ctx *c, const core_tensor *x, int64_t off, int64_t n)
{
    int64_t Cx = x->dims[x->ndim - 1];
    if (off < 0 || n < 0 || off > Cx || n > Cx - off) {
        ops_error(c, KILN_ERR_SHAPE, "channels [%lld, %lld) are outside input X's %lld", (long long)off,
                  (long long)(off + n), (long long)Cx);
        return NULL;
    }
    int64_t d[KILN_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) d[i] = x->dims[i];
    d[x->ndim - 1] = n;
    core_tensor *t = core_tensor_create(KILN_DTYPE_FLOAT, x->ndim, d);
    if (!t) { core_oom(); return NULL; }
    int64_t P = Cx ? x->numel / Cx : 0;
    for (int64_t p = 0; p < P; p++)
        memcpy((float *)t->data + p * n, (const float *)x->data + p * Cx + off, sizeof(float) * (size_t)n);
    return t;
}

static kiln_status conv_nhwc_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0), *z = ops_input(c, 3), *w = ops_input(c, 1);
    if (!x) return ops_error(c, KILN_ERR_INVALID_MODEL, "input X is required");
    if (x->ndim < 3 || x->ndim > 5)
        return ops_error(c, KILN_ERR_UNSUPPORTED, "input X has %d dims, expected 3 to 5", x->ndim);
    if (z && z->ndim != x->ndim) return ops_error(c, KILN_ERR_SHAPE, "residual Z does not have the output's shape");
    core_tensor *xs = NULL;
    if (ops_has_attr(c, "x_channel_offset")) { /* read a channel slice of a wider X */
        kiln_status fs;
        if (!w || w->ndim < 2) return ops_error(c, KILN_ERR_INVALID_MODEL, "input W is required");
        if ((fs = fz_check_f32(c, x, "input X"))) return fs;
        xs = fz_channel_slice(c, x, ops_attr_int(c, "x_channel_offset", 0), w->dims[1] * ops_attr_int(c, "group", 1));
        if (!xs) return KILN_ERR_SHAPE;
        x = xs;
    }
    core_tensor *xf = ops_to_channels_first(x), *zf = z ? ops_to_channels_first(z) : NULL, *yf = NULL;
    core_tensor_destroy(xs);
    kiln_status st = KILN_OK;
    if (!xf || (z && !zf)) st = core_oom();
    if (!st) st = fused_conv_impl(c, xf, zf, true, &yf);
    if (!st && yf) {
        int64_t d[KILN_MAX_DIMS];
        d[0] = yf->dims[0];
        for (int i = 2; i < yf->ndim; i++) d[i - 1] = yf->dims[i];
        d[yf->ndim - 1] = yf->dims[1];
        core_tensor *y = ops_output(c, 0, KILN_DTYPE_FLOAT, yf->ndim, d);
        if (!y) st = KILN_ERR_OUT_OF_MEMORY;
        else ops_from_channels_first(yf, y);
    }
    core_tensor_destroy(xf);
    core_tensor_destroy(zf);
    core_tensor_destroy(yf);
    return st;
}

/* ConvNhwcExpandDw: T = act1(X W1^T + B1) per pixel (NHWC), then ConvNhwc(T) with the node's
 * own W (input 1), B (input 2) and attributes. */
/* y[p, m] = act(x[p, :] . w[m, :] + b[m] + z[p, m]) over the pixels of channels-last x
 * ([..., C]), w [M, C, 1...]; a new channels-last tensor (NULL with the error set). */
static core_tensor *fz_pointwise(ops_ctx *c, const core_tensor *x, const core_tensor *w, const core_tensor *b,
                                 const core_tensor *z, const char *act_name, const char *act_params, const char *what)
{
    fz_act_desc a;
    if (fz_check_f32(c, w, what) || fz_check_f32(c, b, "a 1x1 bias") || fz_check_f32(c, z, "residual Z") ||
        fz_act_read_named(c, act_name, act_params, &a))
        return NULL;
    int64_t C = x->dims[x->ndim - 1], M = w->dims[0];
    bool ok = w->ndim == x->ndim && w->dims[1] == C;
    for (int i = 2; ok && i < w->ndim; i++) ok = w->dims[i] == 1;
    if (!ok) {
        ops_error(c, KILN_ERR_SHAPE, "%s must be [M, %lld, 1, ...]", what, (long long)C);
        return NULL;
    }
    if (b && b->numel != M) {
        ops_error(c, KILN_ERR_SHAPE, "%s: bias has %lld values, expected %lld", what, (long long)b->numel, (long long)M);
        return NULL;
    }
    int64_t td[KILN_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) td[i] = x->dims[i];
    td[x->ndim - 1] = M;
    if (z) {
        ok = z->ndim == x->ndim;
        for (int i = 0; ok && i < x->ndim; i++) ok = z->dims[i] == td[i];
        if (!ok) {
            ops_error(c, KILN_ERR_SHAPE, "residual Z does not have the output's shape");
            return NULL;
        }
    }
    core_tensor *t = core_tensor_create(KILN_DTYPE_FLOAT, x->ndim, td);
    if (!t) { core_oom(); return NULL; }
    const float *xp = x->data, *wp = w->data, *bp = b ? b->data : NULL, *zp = z ? z->data : NULL;
    float *tp = t->data;
    int64_t P = C ? x->numel / C : 0;
    for (int64_t p = 0; p < P; p++)
        for (int64_t m = 0; m < M; m++) {
            double acc = bp ? bp[m] : 0.0;
            for (int64_t k = 0; k < C; k++) acc += (double)xp[p * C + k] * wp[m * C + k];
            if (zp) acc += zp[p * M + m];
            tp[p * M + m] = fz_act(&a, (float)acc);
        }
    return t;
}

/* ConvNhwcExpandDw and ConvNhwcMbConv (ops/fused.h): the optional 1x1 expansion (inputs 4,
 * 5), the node's own ConvNhwc (inputs 1, 2 and the attributes), the optional 1x1
 * projection (inputs 6, 7, residual 3). */
static kiln_status fz_mbconv(ops_ctx *c, bool project)
{
    const core_tensor *x = ops_input(c, 0), *w1 = ops_input(c, 4), *b1 = ops_input(c, 5);
    const core_tensor *z = ops_input(c, 3), *w3 = ops_input(c, 6), *b3 = ops_input(c, 7);
    if (!x || (!project && !w1) || (project && !w3))
        return ops_error(c, KILN_ERR_INVALID_MODEL, project ? "inputs X and W3 are required" : "inputs X and W1 are required");
    if (!project && z) return ops_error(c, KILN_ERR_INVALID_MODEL, "input Z must be absent");
    kiln_status st;
    if ((st = fz_check_f32(c, x, "input X"))) return st;
    if (x->ndim < 3 || x->ndim > 5)
        return ops_error(c, KILN_ERR_UNSUPPORTED, "input X has %d dims, expected 3 to 5", x->ndim);
    core_tensor *t = NULL;
    if (w1 && !(t = fz_pointwise(c, x, w1, b1, NULL, "expand_activation", "expand_activation_params", "weight W1")))
        return KILN_ERR_SHAPE;
    core_tensor *tf = ops_to_channels_first(t ? t : x), *yf = NULL;
    core_tensor_destroy(t);
    if (!tf) return core_oom();
    st = fused_conv_impl(c, tf, NULL, true, &yf);
    core_tensor_destroy(tf);
    core_tensor *u = NULL;
    if (!st && yf) {
        int64_t d[KILN_MAX_DIMS];
        d[0] = yf->dims[0];
        for (int i = 2; i < yf->ndim; i++) d[i - 1] = yf->dims[i];
        d[yf->ndim - 1] = yf->dims[1];
        u = project ? core_tensor_create(KILN_DTYPE_FLOAT, yf->ndim, d) : ops_output(c, 0, KILN_DTYPE_FLOAT, yf->ndim, d);
        if (!u) st = project ? core_oom() : KILN_ERR_OUT_OF_MEMORY;
        else ops_from_channels_first(yf, u);
    }
    core_tensor_destroy(yf);
    if (st || !project) return st;
    core_tensor *v = fz_pointwise(c, u, w3, b3, z, "project_activation", "project_activation_params", "weight W3");
    core_tensor_destroy(u);
    if (!v) return KILN_ERR_SHAPE;
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_FLOAT, v->ndim, v->dims);
    if (!y) st = KILN_ERR_OUT_OF_MEMORY;
    else if (v->numel) memcpy(y->data, v->data, sizeof(float) * (size_t)v->numel);
    core_tensor_destroy(v);
    return st;
}

static kiln_status conv_nhwc_expand_dw_run(ops_ctx *c) { return fz_mbconv(c, false); }
static kiln_status conv_nhwc_mbconv_run(ops_ctx *c) { return fz_mbconv(c, true); }

/* ChannelUpdate: offsets of P_1..P_k along X's last axis ("offsets", or the single
 * "offset"); false with the error set when a P does not fit. */
bool fused_channel_update_offsets(ops_ctx *c, const core_tensor *x, int64_t *offs, int n)
{
    int64_t cnt = 0;
    const int64_t *o = ops_attr_ints(c, "offsets", &cnt);
    if (o && cnt != n) {
        ops_error(c, KILN_ERR_INVALID_MODEL, "%lld offsets for %d updates", (long long)cnt, n);
        return false;
    }
    int64_t Cx = x->dims[x->ndim - 1];
    for (int k = 0; k < n; k++) {
        const core_tensor *p = ops_input(c, 1 + k);
        offs[k] = o ? o[k] : ops_attr_int(c, "offset", 0);
        if (!p || p->dtype != KILN_DTYPE_FLOAT || p->ndim != x->ndim) {
            ops_error(c, KILN_ERR_SHAPE, "update %d must be a float tensor of X's rank", k);
            return false;
        }
        for (int i = 0; i + 1 < x->ndim; i++)
            if (p->dims[i] != x->dims[i]) {
                ops_error(c, KILN_ERR_SHAPE, "update %d: dim %d is %lld, X's is %lld", k, i, (long long)p->dims[i],
                          (long long)x->dims[i]);
                return false;
            }
        int64_t Cp = p->dims[p->ndim - 1];
        if (offs[k] < 0 || offs[k] > Cx || Cp > Cx - offs[k]) {
            ops_error(c, KILN_ERR_SHAPE, "update %d: channels [%lld, %lld) are outside X's %lld", k, (long long)offs[k],
                      (long long)(offs[k] + Cp), (long long)Cx);
            return false;
        }
    }
    return true;
}

/* ChannelUpdate: Y = X with channels [offset_k, offset_k + Cp_k) set to P_k or incremented by
 * P_k, in input order. */
static kiln_status channel_update_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    int n = ops_n_inputs(c) - 1;
    if (!x || n < 1 || n > FUSED_CU_MAX) return ops_error(c, KILN_ERR_INVALID_MODEL, "input X and 1 to %d updates are required", FUSED_CU_MAX);
    kiln_status st;
    if ((st = fz_check_f32(c, x, "input X"))) return st;
    const char *mode = ops_attr_string(c, "mode", "set");
    bool add = !strcmp(mode, "add");
    if (!add && strcmp(mode, "set")) return ops_error(c, KILN_ERR_INVALID_MODEL, "mode '%s' is not 'set' or 'add'", mode);
    if (x->ndim < 1) return ops_error(c, KILN_ERR_SHAPE, "X must have at least one dim");
    int64_t offs[FUSED_CU_MAX];
    if (!fused_channel_update_offsets(c, x, offs, n)) return KILN_ERR_SHAPE;
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_FLOAT, x->ndim, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel) memcpy(y->data, x->data, sizeof(float) * (size_t)x->numel);
    int64_t Cx = x->dims[x->ndim - 1], P = Cx ? x->numel / Cx : 0;
    float *yp = y->data;
    for (int u = 0; u < n; u++) {
        const core_tensor *p = ops_input(c, 1 + u);
        int64_t Cp = p->dims[p->ndim - 1];
        const float *pp = p->data;
        for (int64_t q = 0; q < P; q++)
            for (int64_t k = 0; k < Cp; k++) {
                float *d = yp + q * Cx + offs[u] + k;
                *d = add ? *d + pp[q * Cp + k] : pp[q * Cp + k];
            }
    }
    return KILN_OK;
}

/* ---- FusedGemm --------------------------------------------------------------------------- */

static kiln_status fused_gemm_run(ops_ctx *c)
{
    const core_tensor *a = ops_input(c, 0), *b = ops_input(c, 1), *cc = ops_input(c, 2);
    if (!a || !b) return ops_error(c, KILN_ERR_INVALID_MODEL, "inputs A and B are required");
    kiln_status st;
    if ((st = fz_check_f32(c, a, "input A")) || (st = fz_check_f32(c, b, "input B")) || (st = fz_check_f32(c, cc, "input C")))
        return st;
    fz_act_desc act;
    if ((st = fz_act_read(c, &act))) return st;
    if (a->ndim != 2 || b->ndim != 2) return ops_error(c, KILN_ERR_SHAPE, "A and B must be 2-D (got %d and %d dims)", a->ndim, b->ndim);
    bool ta = ops_attr_int(c, "transA", 0) != 0, tb = ops_attr_int(c, "transB", 0) != 0;
    double alpha = ops_attr_float(c, "alpha", 1.0f), beta = ops_attr_float(c, "beta", 1.0f);
    int64_t M = ta ? a->dims[1] : a->dims[0], K = ta ? a->dims[0] : a->dims[1];
    int64_t Kb = tb ? b->dims[1] : b->dims[0], N = tb ? b->dims[0] : b->dims[1];
    if (K != Kb) return ops_error(c, KILN_ERR_SHAPE, "inner dims differ: %lld vs %lld", (long long)K, (long long)Kb);
    int64_t yd[2] = {M, N}, cs[2] = {0, 0};
    if (cc) {
        int nb;
        int64_t bd[KILN_MAX_DIMS];
        if (cc->ndim > 2 || !ops_broadcast_shape(cc->ndim, cc->dims, 2, yd, &nb, bd) || bd[0] != M || bd[1] != N)
            return ops_error(c, KILN_ERR_SHAPE, "C does not broadcast to %lldx%lld", (long long)M, (long long)N);
        ops_broadcast_strides(cc->ndim, cc->dims, 2, yd, cs);
    }
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_FLOAT, 2, yd);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    const float *A = a->data, *B = b->data, *CC = cc ? cc->data : NULL;
    float *Y = y->data;
    int64_t sam = ta ? 1 : K, sak = ta ? M : 1, sbk = tb ? 1 : N, sbn = tb ? K : 1;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t kk = 0; kk < K; kk++) s += (double)A[i * sam + kk * sak] * B[kk * sbk + j * sbn];
            double v = alpha * s;
            if (CC) v += beta * CC[i * cs[0] + j * cs[1]];
            Y[i * N + j] = fz_act(&act, (float)v);
        }
    return KILN_OK;
}

/* ---- FusedMatMul ------------------------------------------------------------------------- */

/* Batched matmul geometry of A [..., M, K] x B [..., K, N] with numpy broadcasting; 1-D
 * operands as MatMul treats them. */
typedef struct fz_mm {
    int nb;                       /* batch rank */
    int64_t bd[KILN_MAX_DIMS];    /* batch dims */
    int64_t sa[KILN_MAX_DIMS], sb[KILN_MAX_DIMS]; /* batch strides in matrices */
    int64_t M, K, N, nbatch;
    int yn;
    int64_t yd[KILN_MAX_DIMS];
} fz_mm;

static kiln_status fz_mm_init(ops_ctx *c, const core_tensor *a, const core_tensor *b, fz_mm *g)
{
    if (a->ndim < 1 || b->ndim < 1) return ops_error(c, KILN_ERR_SHAPE, "MatMul operands must have at least 1 dim");
    int64_t ad[KILN_MAX_DIMS + 1], bdm[KILN_MAX_DIMS + 1];
    int an = a->ndim, bn = b->ndim;
    memcpy(ad, a->dims, sizeof(int64_t) * (size_t)an);
    memcpy(bdm, b->dims, sizeof(int64_t) * (size_t)bn);
    bool a1 = an == 1, b1 = bn == 1;
    if (a1) { ad[1] = ad[0]; ad[0] = 1; an = 2; }
    if (b1) { bdm[1] = 1; bn = 2; }
    g->M = ad[an - 2];
    g->K = ad[an - 1];
    g->N = bdm[bn - 1];
    if (bdm[bn - 2] != g->K) return ops_error(c, KILN_ERR_SHAPE, "inner dims differ: %lld vs %lld", (long long)g->K, (long long)bdm[bn - 2]);
    if (!ops_broadcast_shape(an - 2, ad, bn - 2, bdm, &g->nb, g->bd))
        return ops_error(c, KILN_ERR_SHAPE, "batch dims do not broadcast");
    int64_t sa[KILN_MAX_DIMS], sb[KILN_MAX_DIMS];
    ops_broadcast_strides(an - 2, ad, g->nb, g->bd, sa);
    ops_broadcast_strides(bn - 2, bdm, g->nb, g->bd, sb);
    g->nbatch = 1;
    for (int i = 0; i < g->nb; i++) {
        g->sa[i] = sa[i] * g->M * g->K;
        g->sb[i] = sb[i] * g->K * g->N;
        g->nbatch *= g->bd[i];
    }
    g->yn = 0;
    for (int i = 0; i < g->nb; i++) g->yd[g->yn++] = g->bd[i];
    if (!a1) g->yd[g->yn++] = g->M;
    if (!b1) g->yd[g->yn++] = g->N;
    return KILN_OK;
}

static kiln_status fused_matmul_run(ops_ctx *c)
{
    const core_tensor *a = ops_input(c, 0), *b = ops_input(c, 1), *bias = ops_input(c, 2);
    if (!a || !b) return ops_error(c, KILN_ERR_INVALID_MODEL, "inputs A and B are required");
    kiln_status st;
    if ((st = fz_check_f32(c, a, "input A")) || (st = fz_check_f32(c, b, "input B")) || (st = fz_check_f32(c, bias, "bias")))
        return st;
    fz_act_desc act;
    if ((st = fz_act_read(c, &act))) return st;
    fz_mm g;
    if ((st = fz_mm_init(c, a, b, &g))) return st;
    if (bias && (bias->ndim > 1 || bias->numel != g.N))
        return ops_error(c, KILN_ERR_SHAPE, "bias must be 1-D with %lld values", (long long)g.N);
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_FLOAT, g.yn, g.yd);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    const float *A = a->data, *B = b->data, *BI = bias ? bias->data : NULL;
    float *Y = y->data;
    int64_t idx[KILN_MAX_DIMS] = {0};
    double *row = malloc(sizeof(double) * (size_t)(g.N > 0 ? g.N : 1));
    if (!row) return core_oom();
    for (int64_t bt = 0; bt < g.nbatch; bt++) {
        int64_t oa = 0, ob = 0;
        for (int i = 0; i < g.nb; i++) { oa += idx[i] * g.sa[i]; ob += idx[i] * g.sb[i]; }
        const float *Ap = A + oa, *Bp = B + ob;
        float *Yp = Y + bt * g.M * g.N;
        for (int64_t i = 0; i < g.M; i++) {
            for (int64_t j = 0; j < g.N; j++) row[j] = 0;
            for (int64_t kk = 0; kk < g.K; kk++) {
                double av = Ap[i * g.K + kk];
                const float *br = Bp + kk * g.N;
                for (int64_t j = 0; j < g.N; j++) row[j] += av * br[j];
            }
            for (int64_t j = 0; j < g.N; j++) {
                float v = (float)row[j];
                if (BI) v += BI[j];
                Yp[i * g.N + j] = fz_act(&act, v);
            }
        }
        ops_index_next(g.nb, g.bd, idx);
    }
    free(row);
    return KILN_OK;
}

/* ---- ElementwiseChain -------------------------------------------------------------------- */

static float fz_round_even(float v)
{
    float r = rintf(v); /* default rounding mode: to nearest, ties to even */
    return r;
}

static inline float fz_ew_step(int op, float x, const float *k)
{
    switch (op) {
    case FUSED_EW_ADD: return x + k[0];
    case FUSED_EW_SUB: return x - k[0];
    case FUSED_EW_RSUB: return k[0] - x;
    case FUSED_EW_MUL: return x * k[0];
    case FUSED_EW_DIV: return x / k[0];
    case FUSED_EW_RDIV: return k[0] / x;
    case FUSED_EW_POW: return (float)pow(x, k[0]);
    case FUSED_EW_RPOW: return (float)pow(k[0], x);
    case FUSED_EW_MAX: return x != x ? x : (x > k[0] ? x : k[0]);
    case FUSED_EW_MIN: return x != x ? x : (x < k[0] ? x : k[0]);
    case FUSED_EW_RELU: return x > 0 ? x : (x == x ? 0.0f : x);
    case FUSED_EW_SIGMOID: return (float)(1.0 / (1.0 + exp(-(double)x)));
    case FUSED_EW_TANH: return (float)tanh(x);
    case FUSED_EW_EXP: return (float)exp(x);
    case FUSED_EW_LOG: return (float)log(x);
    case FUSED_EW_SQRT: return (float)sqrt(x);
    case FUSED_EW_ABS: return fabsf(x);
    case FUSED_EW_NEG: return -x;
    case FUSED_EW_RECIPROCAL: return 1.0f / x;
    case FUSED_EW_FLOOR: return floorf(x);
    case FUSED_EW_CEIL: return ceilf(x);
    case FUSED_EW_ROUND: return fz_round_even(x);
    case FUSED_EW_ERF: return (float)erf(x);
    case FUSED_EW_SIN: return (float)sin(x);
    case FUSED_EW_COS: return (float)cos(x);
    case FUSED_EW_SOFTPLUS: {
        double v = x;
        return (float)(v > 0 ? v + log1p(exp(-v)) : log1p(exp(v)));
    }
    case FUSED_EW_CLIP: return x < k[0] ? k[0] : x > k[1] ? k[1] : x;
    case FUSED_EW_LEAKY_RELU: return x >= 0 ? x : k[0] * x;
    case FUSED_EW_ELU: return x >= 0 ? x : (float)(k[0] * (exp((double)x) - 1.0));
    case FUSED_EW_HARD_SIGMOID: {
        float t = k[0] * x + k[1];
        return t < 0 ? 0.0f : t > 1 ? 1.0f : t;
    }
    case FUSED_EW_HARD_SWISH: {
        double t = (double)x / 6.0 + 0.5;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        return (float)(x * t);
    }
    case FUSED_EW_SILU: return (float)((double)x / (1.0 + exp(-(double)x)));
    case FUSED_EW_GELU: return (float)(0.5 * x * (1.0 + erf((double)x * M_SQRT1_2)));
    case FUSED_EW_GELU_TANH: {
        double v = x;
        return (float)(0.5 * v * (1.0 + tanh(sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v))));
    }
    default: return x;
    }
}

#define FZ_EW_MAX_OPS 64

static kiln_status elementwise_chain_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x) return ops_error(c, KILN_ERR_INVALID_MODEL, "input X is required");
    kiln_status st = fz_check_f32(c, x, "input X");
    if (st) return st;
    int64_t nop = 0, nk = 0;
    const int64_t *ops = ops_attr_ints(c, "opcodes", &nop);
    const float *ks = ops_attr_floats(c, "constants", &nk);
    if (nop < 1 || nop > FZ_EW_MAX_OPS) return ops_error(c, KILN_ERR_INVALID_MODEL, "opcodes has %lld entries, expected 1..%d", (long long)nop, FZ_EW_MAX_OPS);
    int code[FZ_EW_MAX_OPS];
    int64_t koff[FZ_EW_MAX_OPS], need = 0;
    for (int64_t i = 0; i < nop; i++) {
        if (ops[i] < 0 || ops[i] >= FUSED_EW_COUNT_) return ops_error(c, KILN_ERR_INVALID_MODEL, "opcode %lld is unknown", (long long)ops[i]);
        code[i] = (int)ops[i];
        koff[i] = need;
        need += fused_ew_nconst(code[i]);
    }
    if (nk != need) return ops_error(c, KILN_ERR_INVALID_MODEL, "constants has %lld values, the opcodes need %lld", (long long)nk, (long long)need);
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_FLOAT, x->ndim, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    const float *X = x->data;
    float *Y = y->data;
    for (int64_t e = 0; e < x->numel; e++) {
        float v = X[e];
        for (int64_t i = 0; i < nop; i++) v = fz_ew_step(code[i], v, ks ? ks + koff[i] : NULL);
        Y[e] = v;
    }
    return KILN_OK;
}

/* ---- Attention --------------------------------------------------------------------------- */

static kiln_status attention_run(ops_ctx *c)
{
    const core_tensor *q = ops_input(c, 0), *k = ops_input(c, 1), *v = ops_input(c, 2), *mask = ops_input(c, 3);
    if (!q || !k || !v) return ops_error(c, KILN_ERR_INVALID_MODEL, "inputs Q, K and V are required");
    kiln_status st;
    if ((st = fz_check_f32(c, q, "Q")) || (st = fz_check_f32(c, k, "K")) || (st = fz_check_f32(c, v, "V")) || (st = fz_check_f32(c, mask, "mask")))
        return st;
    if (q->ndim < 2 || k->ndim < 2 || v->ndim < 2) return ops_error(c, KILN_ERR_SHAPE, "Q, K, V need at least 2 dims");
    int64_t Sq = q->dims[q->ndim - 2], D = q->dims[q->ndim - 1], Sk = k->dims[k->ndim - 2], Dv = v->dims[v->ndim - 1];
    if (k->dims[k->ndim - 1] != D) return ops_error(c, KILN_ERR_SHAPE, "K's last dim %lld differs from Q's %lld", (long long)k->dims[k->ndim - 1], (long long)D);
    if (v->dims[v->ndim - 2] != Sk) return ops_error(c, KILN_ERR_SHAPE, "V has %lld rows, K has %lld", (long long)v->dims[v->ndim - 2], (long long)Sk);
    int nb1, nb;
    int64_t b1[KILN_MAX_DIMS], bd[KILN_MAX_DIMS];
    if (!ops_broadcast_shape(q->ndim - 2, q->dims, k->ndim - 2, k->dims, &nb1, b1) ||
        !ops_broadcast_shape(nb1, b1, v->ndim - 2, v->dims, &nb, bd))
        return ops_error(c, KILN_ERR_SHAPE, "batch dims of Q, K, V do not broadcast");
    int64_t sq[KILN_MAX_DIMS], sk[KILN_MAX_DIMS], sv[KILN_MAX_DIMS], sm[KILN_MAX_DIMS + 2] = {0};
    ops_broadcast_strides(q->ndim - 2, q->dims, nb, bd, sq);
    ops_broadcast_strides(k->ndim - 2, k->dims, nb, bd, sk);
    ops_broadcast_strides(v->ndim - 2, v->dims, nb, bd, sv);
    int64_t sd[KILN_MAX_DIMS + 2];
    for (int i = 0; i < nb; i++) sd[i] = bd[i];
    sd[nb] = Sq;
    sd[nb + 1] = Sk;
    if (mask) {
        int nm;
        int64_t md[KILN_MAX_DIMS + 2];
        if (nb + 2 > KILN_MAX_DIMS || mask->ndim > nb + 2 || !ops_broadcast_shape(mask->ndim, mask->dims, nb + 2, sd, &nm, md) || nm != nb + 2)
            return ops_error(c, KILN_ERR_SHAPE, "mask does not broadcast to the scores");
        for (int i = 0; i < nb + 2; i++)
            if (md[i] != sd[i]) return ops_error(c, KILN_ERR_SHAPE, "mask would enlarge the scores (dim %d)", i);
        ops_broadcast_strides(mask->ndim, mask->dims, nb + 2, sd, sm);
    }
    int64_t yd[KILN_MAX_DIMS + 2];
    for (int i = 0; i < nb; i++) yd[i] = bd[i];
    yd[nb] = Sq;
    yd[nb + 1] = Dv;
    if (nb + 2 > KILN_MAX_DIMS) return ops_error(c, KILN_ERR_SHAPE, "too many dims");
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_FLOAT, nb + 2, yd);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    double scale = ops_attr_float(c, "scale", 1.0f);
    double *p = malloc(sizeof(double) * (size_t)(Sk > 0 ? Sk : 1)), *o = malloc(sizeof(double) * (size_t)(Dv > 0 ? Dv : 1));
    float *sc = malloc(sizeof(float) * (size_t)(Sk > 0 ? Sk : 1));
    if (!p || !o || !sc) { free(p); free(o); free(sc); return core_oom(); }
    const float *Q = q->data, *K = k->data, *V = v->data, *MK = mask ? mask->data : NULL;
    float *Y = y->data;
    int64_t idx[KILN_MAX_DIMS] = {0}, nbatch = 1;
    for (int i = 0; i < nb; i++) nbatch *= bd[i];
    for (int64_t bt = 0; bt < nbatch; bt++) {
        int64_t oq = 0, ok = 0, ov = 0, om = 0;
        for (int i = 0; i < nb; i++) {
            oq += idx[i] * sq[i] * Sq * D;
            ok += idx[i] * sk[i] * Sk * D;
            ov += idx[i] * sv[i] * Sk * Dv;
            om += idx[i] * sm[i];
        }
        for (int64_t i = 0; i < Sq; i++) {
            const float *qr = Q + oq + i * D;
            /* Scores are rounded to float like the unfused MatMul / Div / Add outputs. */
            float mx = -INFINITY;
            for (int64_t j = 0; j < Sk; j++) {
                const float *kr = K + ok + j * D;
                double s = 0;
                for (int64_t t = 0; t < D; t++) s += (double)qr[t] * kr[t];
                float f = (float)((float)s * scale);
                if (MK) f += MK[om + i * sm[nb] + j * sm[nb + 1]];
                sc[j] = f;
                if (f > mx) mx = f;
            }
            double sum = 0;
            for (int64_t j = 0; j < Sk; j++) { p[j] = exp((double)sc[j] - mx); sum += p[j]; }
            for (int64_t t = 0; t < Dv; t++) o[t] = 0;
            for (int64_t j = 0; j < Sk; j++) {
                float pj = (float)(p[j] / sum);
                const float *vr = V + ov + j * Dv;
                for (int64_t t = 0; t < Dv; t++) o[t] += (double)pj * vr[t];
            }
            for (int64_t t = 0; t < Dv; t++) Y[(bt * Sq + i) * Dv + t] = (float)o[t];
        }
        ops_index_next(nb, bd, idx);
    }
    free(p);
    free(o);
    free(sc);
    return KILN_OK;
}

/* ---- LayerNormalization (for models imported below opset 17) ----------------------------- */

static kiln_status layer_norm_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0), *s = ops_input(c, 1), *b = ops_input(c, 2);
    if (!x || !s) return ops_error(c, KILN_ERR_INVALID_MODEL, "inputs X and Scale are required");
    kiln_status st;
    if ((st = fz_check_f32(c, x, "X")) || (st = fz_check_f32(c, s, "Scale")) || (st = fz_check_f32(c, b, "B"))) return st;
    int64_t axis = ops_axis(ops_attr_int(c, "axis", -1), x->ndim);
    if (axis < 0 || x->ndim == 0) return ops_error(c, KILN_ERR_INVALID_MODEL, "axis %lld out of range for rank %d", (long long)ops_attr_int(c, "axis", -1), x->ndim);
    double eps = ops_attr_float(c, "epsilon", 1e-5f);
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= x->dims[i];
    for (int i = (int)axis; i < x->ndim; i++) inner *= x->dims[i];
    if ((s->numel != inner && s->numel != 1) || (b && b->numel != inner && b->numel != 1))
        return ops_error(c, KILN_ERR_SHAPE, "Scale/B must have %lld values (or 1)", (long long)inner);
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_FLOAT, x->ndim, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    const float *X = x->data, *SC = s->data, *BI = b ? b->data : NULL;
    float *Y = y->data;
    for (int64_t o = 0; o < outer; o++) {
        const float *p = X + o * inner;
        float *q = Y + o * inner;
        double m = 0, var = 0;
        for (int64_t i = 0; i < inner; i++) m += p[i];
        m = inner > 0 ? m / (double)inner : 0.0;
        for (int64_t i = 0; i < inner; i++) var += (p[i] - m) * (p[i] - m);
        var = inner > 0 ? var / (double)inner : 0.0;
        double inv = 1.0 / sqrt(var + eps);
        for (int64_t i = 0; i < inner; i++) {
            float sv = SC[s->numel == 1 ? 0 : i], bv = BI ? BI[b->numel == 1 ? 0 : i] : 0.0f;
            q[i] = (float)((p[i] - m) * inv) * sv + bv;
        }
    }
    return KILN_OK;
}

const ops_schema ops_table_fused[] = {
    {"FusedConv", "ai.kiln", 1, fused_conv_run},
    {"ConvNhwc", "ai.kiln", 1, conv_nhwc_run},
    {"ConvNhwcExpandDw", "ai.kiln", 1, conv_nhwc_expand_dw_run},
    {"ConvNhwcMbConv", "ai.kiln", 1, conv_nhwc_mbconv_run},
    {"ChannelUpdate", "ai.kiln", 1, channel_update_run},
    {"FusedGemm", "ai.kiln", 1, fused_gemm_run},
    {"FusedMatMul", "ai.kiln", 1, fused_matmul_run},
    {"ElementwiseChain", "ai.kiln", 1, elementwise_chain_run},
    {"Attention", "ai.kiln", 1, attention_run},
    {"LayerNormalization", "ai.kiln", 1, layer_norm_run},
    OPS_TABLE_END
};
