/* rnn.c — reference kernels for the recurrent ops RNN, GRU and LSTM (all directions,
 * layouts, sequence_lens, clip, peepholes and the activation list). Computes in float. */
#include "ops/ops.h"
#include "ops/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum rnn_kind { RNN_SIMPLE = 0, RNN_GRU = 1, RNN_LSTM = 2 } rnn_kind;

typedef enum act_kind {
    ACT_RELU, ACT_TANH, ACT_SIGMOID, ACT_AFFINE, ACT_LEAKYRELU, ACT_THRESHOLDEDRELU,
    ACT_SCALEDTANH, ACT_HARDSIGMOID, ACT_ELU, ACT_SOFTSIGN, ACT_SOFTPLUS
} act_kind;

typedef struct rnn_act {
    act_kind kind;
    float alpha, beta;
} rnn_act;

static const struct {
    const char *name;
    act_kind kind;
    bool uses_alpha, uses_beta;
    float alpha, beta; /* defaults */
} act_table[] = {
    {"Relu", ACT_RELU, false, false, 0.f, 0.f},
    {"Tanh", ACT_TANH, false, false, 0.f, 0.f},
    {"Sigmoid", ACT_SIGMOID, false, false, 0.f, 0.f},
    {"Affine", ACT_AFFINE, true, true, 1.f, 0.f},
    {"LeakyRelu", ACT_LEAKYRELU, true, false, 0.01f, 0.f},
    {"ThresholdedRelu", ACT_THRESHOLDEDRELU, true, false, 1.f, 0.f},
    {"ScaledTanh", ACT_SCALEDTANH, true, true, 1.f, 1.f},
    {"HardSigmoid", ACT_HARDSIGMOID, true, true, 0.2f, 0.5f},
    {"Elu", ACT_ELU, true, false, 1.f, 0.f},
    {"Softsign", ACT_SOFTSIGN, false, false, 0.f, 0.f},
    {"Softplus", ACT_SOFTPLUS, false, false, 0.f, 0.f},
};

static float act_apply(const rnn_act *a, float x)
{
    switch (a->kind) {
    case ACT_RELU: return x > 0.f ? x : 0.f;
    case ACT_TANH: return tanhf(x);
    case ACT_SIGMOID: return 1.f / (1.f + expf(-x));
    case ACT_AFFINE: return a->alpha * x + a->beta;
    case ACT_LEAKYRELU: return x >= 0.f ? x : a->alpha * x;
    case ACT_THRESHOLDEDRELU: return x > a->alpha ? x : 0.f;
    case ACT_SCALEDTANH: return a->alpha * tanhf(a->beta * x);
    case ACT_HARDSIGMOID: {
        float v = a->alpha * x + a->beta;
        return v < 0.f ? 0.f : v > 1.f ? 1.f : v;
    }
    case ACT_ELU: return x >= 0.f ? x : a->alpha * (expf(x) - 1.f);
    case ACT_SOFTSIGN: return x / (1.f + fabsf(x));
    case ACT_SOFTPLUS: return x > 20.f ? x : log1pf(expf(x));
    }
    return x;
}

/* Fills acts[0..n_dirs*n_per-1] from the activations list (or the op's defaults); alphas
 * and betas are consumed in list order by the functions that take them. */
static kiln_status rnn_parse_acts(ops_ctx *c, rnn_kind kind, int n_dirs, rnn_act *acts)
{
    static const char *const defaults[3][3] = {
        {"Tanh", NULL, NULL}, {"Sigmoid", "Tanh", NULL}, {"Sigmoid", "Tanh", "Tanh"}};
    int n_per = (int)kind + 1;
    int64_t n_names = 0, n_alpha = 0, n_beta = 0;
    char *const *names = ops_attr_strings(c, "activations", &n_names);
    const float *alphas = ops_attr_floats(c, "activation_alpha", &n_alpha);
    const float *betas = ops_attr_floats(c, "activation_beta", &n_beta);
    if (n_names != 0 && n_names != n_per && n_names != n_per * n_dirs)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT,
                         "activations has %lld names, expected %d per direction (%d directions)",
                         (long long)n_names, n_per, n_dirs);
    int64_t ia = 0, ib = 0;
    for (int i = 0; i < n_per * n_dirs; i++) {
        const char *nm = n_names ? names[i % n_names] : defaults[kind][i % n_per];
        size_t k = 0, nk = sizeof act_table / sizeof act_table[0];
        for (; k < nk; k++)
            if (!strcasecmp(nm, act_table[k].name)) break;
        if (k == nk)
            return ops_error(c, KILN_ERR_UNSUPPORTED, "activation '%s' is not supported", nm);
        acts[i].kind = act_table[k].kind;
        acts[i].alpha = act_table[k].alpha;
        acts[i].beta = act_table[k].beta;
        /* Names repeated for the second direction reuse the list's alpha/beta. */
        if (i == n_names && n_names == n_per) { ia = 0; ib = 0; }
        if (act_table[k].uses_alpha && ia < n_alpha) acts[i].alpha = alphas[ia++];
        if (act_table[k].uses_beta && ib < n_beta) acts[i].beta = betas[ib++];
    }
    return KILN_OK;
}

/* A float copy of a tensor (or a borrowed pointer when it is float already). */
static float *rnn_f32(const core_tensor *t, bool *owned)
{
    *owned = false;
    if (!t) return NULL;
    if (t->dtype == KILN_DTYPE_FLOAT && t->data) return (float *)t->data;
    float *p = core_malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
    if (!p) return NULL;
    for (int64_t i = 0; i < t->numel; i++) p[i] = (float)core_load_f64(t->dtype, t->data, i);
    *owned = true;
    return p;
}

static kiln_status rnn_store(ops_ctx *c, int idx, kiln_dtype dt, int nd, const int64_t *dims,
                             const float *src)
{
    if (!ops_has_output(c, idx)) return KILN_OK;
    core_tensor *y = ops_output(c, idx, dt, nd, dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (dt == KILN_DTYPE_FLOAT) memcpy(y->data, src, sizeof(float) * (size_t)y->numel);
    else
        for (int64_t i = 0; i < y->numel; i++) core_store_f64(dt, y->data, i, src[i]);
    return KILN_OK;
}

/* dst[g] = sum_k M[g][k] * v[k] for g in [0, rows) */
static void rnn_matvec(const float *m, const float *v, int64_t rows, int64_t cols, float *dst)
{
    for (int64_t g = 0; g < rows; g++) {
        const float *row = m + g * cols;
        float s = 0.f;
        for (int64_t k = 0; k < cols; k++) s += row[k] * v[k];
        dst[g] = s;
    }
}

static float rnn_clip(float v, float clip)
{
    if (clip > 0.f) {
        if (v > clip) return clip;
        if (v < -clip) return -clip;
    }
    return v;
}

static kiln_status rnn_common(ops_ctx *c, rnn_kind kind)
{
    const int G = kind == RNN_SIMPLE ? 1 : kind == RNN_GRU ? 3 : 4;
    const core_tensor *X = ops_input(c, 0), *W = ops_input(c, 1), *R = ops_input(c, 2);
    const core_tensor *B = ops_input(c, 3), *SL = ops_input(c, 4), *H0 = ops_input(c, 5);
    const core_tensor *C0 = kind == RNN_LSTM ? ops_input(c, 6) : NULL;
    const core_tensor *P = kind == RNN_LSTM ? ops_input(c, 7) : NULL;
    if (!X || !W || !R) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "X, W and R are required");
    if (!core_dtype_is_float(X->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "X has dtype %s, expected a float type",
                         core_dtype_name(X->dtype));
    if (X->ndim != 3 || W->ndim != 3 || R->ndim != 3)
        return ops_error(c, KILN_ERR_SHAPE, "X, W, R must have 3 dims (got %d, %d, %d)", X->ndim,
                         W->ndim, R->ndim);
    int layout = (int)ops_attr_int(c, "layout", 0);
    if (layout != 0 && layout != 1)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "layout %d, expected 0 or 1", layout);
    const char *dir = ops_attr_string(c, "direction", "forward");
    int n_dirs;
    bool bidi = false, reverse = false;
    if (!strcmp(dir, "forward")) n_dirs = 1;
    else if (!strcmp(dir, "reverse")) { n_dirs = 1; reverse = true; }
    else if (!strcmp(dir, "bidirectional")) { n_dirs = 2; bidi = true; }
    else return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "direction '%s' is not valid", dir);
    int64_t seq = layout ? X->dims[1] : X->dims[0];
    int64_t batch = layout ? X->dims[0] : X->dims[1];
    int64_t in_sz = X->dims[2];
    int64_t H = ops_attr_int(c, "hidden_size", R->dims[2]);
    if (H <= 0 || H != R->dims[2])
        return ops_error(c, KILN_ERR_SHAPE, "hidden_size %lld does not match R dim 2 (%lld)",
                         (long long)H, (long long)R->dims[2]);
    if (W->dims[0] != n_dirs || W->dims[1] != G * H || W->dims[2] != in_sz)
        return ops_error(c, KILN_ERR_SHAPE, "W has shape %lldx%lldx%lld, expected %dx%lldx%lld",
                         (long long)W->dims[0], (long long)W->dims[1], (long long)W->dims[2],
                         n_dirs, (long long)(G * H), (long long)in_sz);
    if (R->dims[0] != n_dirs || R->dims[1] != G * H)
        return ops_error(c, KILN_ERR_SHAPE, "R has shape %lldx%lldx%lld, expected %dx%lldx%lld",
                         (long long)R->dims[0], (long long)R->dims[1], (long long)R->dims[2],
                         n_dirs, (long long)(G * H), (long long)H);
    if (B && (B->ndim != 2 || B->dims[0] != n_dirs || B->dims[1] != 2 * G * H))
        return ops_error(c, KILN_ERR_SHAPE, "B must have shape %dx%lld", n_dirs, (long long)(2 * G * H));
    if (SL && (SL->numel != batch || !core_dtype_is_int(SL->dtype)))
        return ops_error(c, KILN_ERR_SHAPE, "sequence_lens must hold %lld integers", (long long)batch);
    const core_tensor *st[2] = {H0, C0};
    for (int i = 0; i < 2; i++) {
        const core_tensor *t = st[i];
        if (!t) continue;
        int64_t d0 = layout ? batch : n_dirs, d1 = layout ? n_dirs : batch;
        if (t->ndim != 3 || t->dims[0] != d0 || t->dims[1] != d1 || t->dims[2] != H)
            return ops_error(c, KILN_ERR_SHAPE, "initial_%c must have shape %lldx%lldx%lld",
                             i ? 'c' : 'h', (long long)d0, (long long)d1, (long long)H);
    }
    if (P && P->numel != n_dirs * 3 * H)
        return ops_error(c, KILN_ERR_SHAPE, "P has %lld values, expected %lld", (long long)P->numel,
                         (long long)(n_dirs * 3 * H));
    rnn_act acts[6];
    kiln_status s = rnn_parse_acts(c, kind, n_dirs, acts);
    if (s) return s;
    float clip = ops_has_attr(c, "clip") ? ops_attr_float(c, "clip", 0.f) : 0.f;
    if (clip < 0.f) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "clip %g is negative", clip);
    bool lbr = kind == RNN_GRU && ops_attr_int(c, "linear_before_reset", 0) != 0;
    bool input_forget = kind == RNN_LSTM && ops_attr_int(c, "input_forget", 0) != 0;

    int64_t nY = seq * n_dirs * batch * H, nS = n_dirs * batch * H;
    bool own[6] = {false};
    float *x = rnn_f32(X, &own[0]), *w = rnn_f32(W, &own[1]), *r = rnn_f32(R, &own[2]);
    float *b = rnn_f32(B, &own[3]), *h0 = rnn_f32(H0, &own[4]), *c0 = rnn_f32(C0, &own[5]);
    bool ownp = false;
    float *p = rnn_f32(P, &ownp);
    float *Y = core_calloc((size_t)(nY ? nY : 1), sizeof(float));
    float *Yh = core_calloc((size_t)(nS ? nS : 1), sizeof(float));
    float *Yc = core_calloc((size_t)(nS ? nS : 1), sizeof(float));
    float *scratch = core_malloc(sizeof(float) * (size_t)(4 * G * H + 2 * H + 1));
    s = KILN_OK;
    if (!x || !w || !r || (B && !b) || (H0 && !h0) || (C0 && !c0) || (P && !p) || !Y || !Yh ||
        !Yc || !scratch) {
        s = ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    float *gx = scratch, *gh = gx + G * H, *hcur = gh + G * H, *ccur = hcur + H;
    float *tmp = ccur + H; /* 2*G*H spare */
    for (int d = 0; d < n_dirs; d++) {
        bool rev = bidi ? d == 1 : reverse;
        const float *wd = w + d * G * H * in_sz, *rd = r + d * G * H * H;
        const float *wb = b ? b + d * 2 * G * H : NULL, *rb = b ? wb + G * H : NULL;
        const float *pd = p ? p + d * 3 * H : NULL;
        const rnn_act *fa = &acts[d * (kind + 1)];
        for (int64_t bi = 0; bi < batch; bi++) {
            int64_t L = seq;
            if (SL) {
                L = core_load_i64(SL->dtype, SL->data, bi);
                if (L < 0 || L > seq) {
                    s = ops_error(c, KILN_ERR_INVALID_ARGUMENT,
                                  "sequence_lens[%lld] = %lld, expected 0..%lld", (long long)bi,
                                  (long long)L, (long long)seq);
                    goto done;
                }
            }
            int64_t soff = layout ? (bi * n_dirs + d) * H : (d * batch + bi) * H;
            for (int64_t k = 0; k < H; k++) {
                hcur[k] = h0 ? h0[soff + k] : 0.f;
                ccur[k] = c0 ? c0[soff + k] : 0.f;
            }
            for (int64_t step = 0; step < L; step++) {
                int64_t t = rev ? L - 1 - step : step;
                const float *xt = x + (layout ? (bi * seq + t) : (t * batch + bi)) * in_sz;
                rnn_matvec(wd, xt, G * H, in_sz, gx);
                rnn_matvec(rd, hcur, G * H, H, gh);
                if (wb)
                    for (int64_t k = 0; k < G * H; k++) { gx[k] += wb[k]; gh[k] += rb[k]; }
                if (kind == RNN_SIMPLE) {
                    for (int64_t k = 0; k < H; k++)
                        hcur[k] = act_apply(&fa[0], rnn_clip(gx[k] + gh[k], clip));
                } else if (kind == RNN_GRU) {
                    float *z = tmp, *rr = tmp + H;
                    for (int64_t k = 0; k < H; k++) {
                        z[k] = act_apply(&fa[0], rnn_clip(gx[k] + gh[k], clip));
                        rr[k] = act_apply(&fa[0], rnn_clip(gx[H + k] + gh[H + k], clip));
                    }
                    float *hh = tmp + 2 * H;
                    if (lbr) {
                        for (int64_t k = 0; k < H; k++)
                            hh[k] = gx[2 * H + k] + rr[k] * gh[2 * H + k];
                    } else {
                        /* Recompute Rh (r * h) + Rbh: the gate sees the reset hidden state. */
                        float *rh = tmp + 3 * H;
                        for (int64_t k = 0; k < H; k++) rh[k] = rr[k] * hcur[k];
                        rnn_matvec(rd + 2 * H * H, rh, H, H, hh);
                        for (int64_t k = 0; k < H; k++)
                            hh[k] += gx[2 * H + k] + (rb ? rb[2 * H + k] : 0.f);
                    }
                    for (int64_t k = 0; k < H; k++) {
                        float hv = act_apply(&fa[1], rnn_clip(hh[k], clip));
                        hcur[k] = (1.f - z[k]) * hv + z[k] * hcur[k];
                    }
                } else {
                    for (int64_t k = 0; k < H; k++) {
                        float pi = pd ? pd[k] : 0.f, po = pd ? pd[H + k] : 0.f;
                        float pf = pd ? pd[2 * H + k] : 0.f;
                        float ig = act_apply(&fa[0], rnn_clip(gx[k] + gh[k] + pi * ccur[k], clip));
                        float fg = input_forget
                                       ? 1.f - ig
                                       : act_apply(&fa[0], rnn_clip(gx[2 * H + k] + gh[2 * H + k] +
                                                                        pf * ccur[k], clip));
                        float cg = act_apply(&fa[1], rnn_clip(gx[3 * H + k] + gh[3 * H + k], clip));
                        float cn = fg * ccur[k] + ig * cg;
                        float og = act_apply(&fa[0], rnn_clip(gx[H + k] + gh[H + k] + po * cn, clip));
                        ccur[k] = cn;
                        hcur[k] = og * act_apply(&fa[2], cn);
                    }
                }
                int64_t yoff = layout ? ((bi * seq + t) * n_dirs + d) * H
                                      : ((t * n_dirs + d) * batch + bi) * H;
                memcpy(Y + yoff, hcur, sizeof(float) * (size_t)H);
            }
            memcpy(Yh + soff, hcur, sizeof(float) * (size_t)H);
            memcpy(Yc + soff, ccur, sizeof(float) * (size_t)H);
        }
    }
    {
        int64_t ydims[4], sdims[3];
        if (layout) {
            ydims[0] = batch; ydims[1] = seq; ydims[2] = n_dirs; ydims[3] = H;
            sdims[0] = batch; sdims[1] = n_dirs; sdims[2] = H;
        } else {
            ydims[0] = seq; ydims[1] = n_dirs; ydims[2] = batch; ydims[3] = H;
            sdims[0] = n_dirs; sdims[1] = batch; sdims[2] = H;
        }
        s = rnn_store(c, 0, X->dtype, 4, ydims, Y);
        if (!s) s = rnn_store(c, 1, X->dtype, 3, sdims, Yh);
        if (!s && kind == RNN_LSTM) s = rnn_store(c, 2, X->dtype, 3, sdims, Yc);
    }
done:
    if (own[0]) free(x);
    if (own[1]) free(w);
    if (own[2]) free(r);
    if (own[3]) free(b);
    if (own[4]) free(h0);
    if (own[5]) free(c0);
    if (ownp) free(p);
    free(Y);
    free(Yh);
    free(Yc);
    free(scratch);
    return s;
}

static kiln_status rnn_run(ops_ctx *c) { return rnn_common(c, RNN_SIMPLE); }
static kiln_status gru_run(ops_ctx *c) { return rnn_common(c, RNN_GRU); }
static kiln_status lstm_run(ops_ctx *c) { return rnn_common(c, RNN_LSTM); }

const ops_schema ops_table_rnn[] = {
    {"RNN", "", 1, rnn_run},
    {"GRU", "", 1, gru_run},
    {"LSTM", "", 1, lstm_run},
    OPS_TABLE_END
};
