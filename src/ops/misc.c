/* misc.c — reference kernels that fit no other family: NonMaxSuppression, NLL and softmax
 * cross-entropy losses, string ops (normalize, concat, split, regex), TfIdfVectorizer,
 * random generators, ai.onnx.ml ops and ai.onnx.preview.training optimizers. */
#include "ops/ops.h"
#include "ops/util.h"
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static bool misc_is_real(kiln_dtype t)
{
    return core_dtype_is_float(t) || core_dtype_is_int(t);
}

/* ---- NonMaxSuppression ------------------------------------------------------------------- */

typedef struct nms_cand {
    float score;
    int64_t idx;
} nms_cand;

/* Descending score; ties keep the lower box index first. */
static int nms_cmp(const void *a, const void *b)
{
    const nms_cand *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void nms_box(const float *b, bool center, float *y0, float *x0, float *y1, float *x1)
{
    if (center) {
        *x0 = b[0] - b[2] / 2.f; *x1 = b[0] + b[2] / 2.f;
        *y0 = b[1] - b[3] / 2.f; *y1 = b[1] + b[3] / 2.f;
    } else {
        *y0 = fminf(b[0], b[2]); *y1 = fmaxf(b[0], b[2]);
        *x0 = fminf(b[1], b[3]); *x1 = fmaxf(b[1], b[3]);
    }
}

static bool nms_suppress(const float *a, const float *b, bool center, float thr)
{
    float ay0, ax0, ay1, ax1, by0, bx0, by1, bx1;
    nms_box(a, center, &ay0, &ax0, &ay1, &ax1);
    nms_box(b, center, &by0, &bx0, &by1, &bx1);
    float ix0 = fmaxf(ax0, bx0), ix1 = fminf(ax1, bx1);
    float iy0 = fmaxf(ay0, by0), iy1 = fminf(ay1, by1);
    if (ix1 <= ix0 || iy1 <= iy0) return false;
    float inter = (ix1 - ix0) * (iy1 - iy0);
    float aa = (ax1 - ax0) * (ay1 - ay0), ab = (bx1 - bx0) * (by1 - by0);
    float uni = aa + ab - inter;
    if (inter <= 0.f || aa <= 0.f || ab <= 0.f || uni <= 0.f) return false;
    return inter / uni > thr;
}

static kiln_status nms_run(ops_ctx *c)
{
    const core_tensor *boxes = ops_input(c, 0), *scores = ops_input(c, 1);
    const core_tensor *mo = ops_input(c, 2), *iou = ops_input(c, 3), *st = ops_input(c, 4);
    if (!boxes || !scores) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "boxes and scores are required");
    if (boxes->ndim != 3 || boxes->dims[2] != 4)
        return ops_error(c, KILN_ERR_SHAPE, "boxes must be [batch, boxes, 4]");
    if (scores->ndim != 3 || scores->dims[0] != boxes->dims[0] || scores->dims[2] != boxes->dims[1])
        return ops_error(c, KILN_ERR_SHAPE, "scores must be [batch, classes, %lld]",
                         (long long)boxes->dims[1]);
    if (!core_dtype_is_float(boxes->dtype) || !core_dtype_is_float(scores->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "boxes and scores must be float");
    int64_t max_out = mo && mo->numel > 0 ? ops_scalar_i64(mo) : 0;
    if (max_out < 0) max_out = 0;
    float iou_thr = iou && iou->numel > 0 ? (float)ops_scalar_f64(iou) : 0.f;
    bool has_st = st && st->numel > 0;
    float score_thr = has_st ? (float)ops_scalar_f64(st) : 0.f;
    bool center = ops_attr_int(c, "center_point_box", 0) != 0;
    int64_t B = boxes->dims[0], C = scores->dims[1], N = boxes->dims[1];
    float *bx = core_malloc(sizeof(float) * (size_t)(boxes->numel + 1));
    nms_cand *cand = core_malloc(sizeof(nms_cand) * (size_t)(N + 1));
    int64_t *sel = core_malloc(sizeof(int64_t) * (size_t)(N + 1));
    int64_t cap = 64, n_out = 0;
    int64_t *out = core_malloc(sizeof(int64_t) * 3 * (size_t)cap);
    kiln_status s = KILN_OK;
    if (!bx || !cand || !sel || !out) { s = ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory"); goto done; }
    for (int64_t i = 0; i < boxes->numel; i++) bx[i] = (float)core_load_f64(boxes->dtype, boxes->data, i);
    for (int64_t b = 0; b < B && max_out > 0; b++) {
        for (int64_t k = 0; k < C; k++) {
            int64_t nc = 0;
            for (int64_t i = 0; i < N; i++) {
                float sc = (float)core_load_f64(scores->dtype, scores->data, (b * C + k) * N + i);
                if (has_st && !(sc > score_thr)) continue;
                cand[nc].score = sc;
                cand[nc].idx = i;
                nc++;
            }
            qsort(cand, (size_t)nc, sizeof *cand, nms_cmp);
            int64_t ns = 0;
            for (int64_t i = 0; i < nc && ns < max_out; i++) {
                const float *bi = bx + (b * N + cand[i].idx) * 4;
                bool keep = true;
                for (int64_t j = 0; j < ns && keep; j++)
                    if (nms_suppress(bi, bx + (b * N + sel[j]) * 4, center, iou_thr)) keep = false;
                if (!keep) continue;
                sel[ns++] = cand[i].idx;
                if (n_out == cap) {
                    cap *= 2;
                    int64_t *o2 = core_realloc(out, sizeof(int64_t) * 3 * (size_t)cap);
                    if (!o2) { s = ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory"); goto done; }
                    out = o2;
                }
                out[3 * n_out] = b;
                out[3 * n_out + 1] = k;
                out[3 * n_out + 2] = cand[i].idx;
                n_out++;
            }
        }
    }
    {
        int64_t od[2] = {n_out, 3};
        core_tensor *y = ops_output(c, 0, KILN_DTYPE_INT64, 2, od);
        if (!y) { s = KILN_ERR_OUT_OF_MEMORY; goto done; }
        if (n_out) memcpy(y->data, out, sizeof(int64_t) * 3 * (size_t)n_out);
    }
done:
    free(bx);
    free(cand);
    free(sel);
    free(out);
    return s;
}

/* ---- NegativeLogLikelihoodLoss / SoftmaxCrossEntropyLoss ------------------------------------- */

/* loss over log-probabilities lp [N, C, D] (D = product of trailing dims), targets [N, D]. */
static kiln_status loss_common(ops_ctx *c, const core_tensor *x, const double *lp,
                               const core_tensor *tgt, const core_tensor *w)
{
    if (x->ndim < 2) return ops_error(c, KILN_ERR_SHAPE, "input has %d dims, expected >= 2", x->ndim);
    int64_t N = x->dims[0], C = x->dims[1], D = 1;
    for (int i = 2; i < x->ndim; i++) D *= x->dims[i];
    if (!tgt || !core_dtype_is_int(tgt->dtype))
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "target must be an integer tensor");
    if (tgt->ndim != x->ndim - 1)
        return ops_error(c, KILN_ERR_SHAPE, "target has %d dims, expected %d", tgt->ndim, x->ndim - 1);
    if (tgt->dims[0] != N)
        return ops_error(c, KILN_ERR_SHAPE, "target dim 0 is %lld, expected %lld",
                         (long long)tgt->dims[0], (long long)N);
    for (int i = 1; i < tgt->ndim; i++)
        if (tgt->dims[i] != x->dims[i + 1])
            return ops_error(c, KILN_ERR_SHAPE, "target dim %d is %lld, expected %lld", i,
                             (long long)tgt->dims[i], (long long)x->dims[i + 1]);
    if (w && (w->ndim != 1 || w->dims[0] != C))
        return ops_error(c, KILN_ERR_SHAPE, "weight must have shape [%lld]", (long long)C);
    const char *red = ops_attr_string(c, "reduction", "mean");
    int mode = !strcmp(red, "none") ? 0 : !strcmp(red, "sum") ? 1 : !strcmp(red, "mean") ? 2 : -1;
    if (mode < 0) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "reduction '%s' is not valid", red);
    bool has_ii = ops_has_attr(c, "ignore_index");
    int64_t ii = ops_attr_int(c, "ignore_index", 0);
    double *loss = core_malloc(sizeof(double) * (size_t)(N * D + 1));
    if (!loss) return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
    double sum = 0.0, wsum = 0.0;
    for (int64_t n = 0; n < N; n++) {
        for (int64_t d = 0; d < D; d++) {
            int64_t t = core_load_i64(tgt->dtype, tgt->data, n * D + d);
            if (has_ii && t == ii) { loss[n * D + d] = 0.0; continue; }
            if (t < 0 || t >= C) {
                free(loss);
                return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "target %lld out of range [0, %lld)",
                                 (long long)t, (long long)C);
            }
            double wt = w ? core_load_f64(w->dtype, w->data, t) : 1.0;
            double l = -lp[(n * C + t) * D + d] * wt;
            loss[n * D + d] = l;
            sum += l;
            wsum += wt;
        }
    }
    core_tensor *y;
    if (mode == 0) {
        y = ops_output(c, 0, x->dtype, tgt->ndim, tgt->dims);
        if (!y) { free(loss); return KILN_ERR_OUT_OF_MEMORY; }
        for (int64_t i = 0; i < N * D; i++) core_store_f64(x->dtype, y->data, i, loss[i]);
    } else {
        y = ops_output(c, 0, x->dtype, 0, NULL);
        if (!y) { free(loss); return KILN_ERR_OUT_OF_MEMORY; }
        double v = mode == 1 ? sum : (wsum != 0.0 ? sum / wsum : 0.0);
        core_store_f64(x->dtype, y->data, 0, v);
    }
    free(loss);
    return KILN_OK;
}

static kiln_status nll_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x || !core_dtype_is_float(x->dtype))
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "input must be a float tensor");
    double *lp = core_malloc(sizeof(double) * (size_t)(x->numel + 1));
    if (!lp) return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t i = 0; i < x->numel; i++) lp[i] = core_load_f64(x->dtype, x->data, i);
    kiln_status s = loss_common(c, x, lp, ops_input(c, 1), ops_input(c, 2));
    free(lp);
    return s;
}

static kiln_status sce_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x || !core_dtype_is_float(x->dtype))
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "scores must be a float tensor");
    if (x->ndim < 2) return ops_error(c, KILN_ERR_SHAPE, "scores have %d dims, expected >= 2", x->ndim);
    int64_t N = x->dims[0], C = x->dims[1], D = 1;
    for (int i = 2; i < x->ndim; i++) D *= x->dims[i];
    double *lp = core_malloc(sizeof(double) * (size_t)(x->numel + 1));
    if (!lp) return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t i = 0; i < x->numel; i++) lp[i] = core_load_f64(x->dtype, x->data, i);
    for (int64_t n = 0; n < N; n++) {
        for (int64_t d = 0; d < D; d++) {
            double m = -INFINITY, s = 0.0;
            for (int64_t k = 0; k < C; k++) m = fmax(m, lp[(n * C + k) * D + d]);
            for (int64_t k = 0; k < C; k++) s += exp(lp[(n * C + k) * D + d] - m);
            double ls = m + log(s);
            for (int64_t k = 0; k < C; k++) lp[(n * C + k) * D + d] -= ls;
        }
    }
    kiln_status s = loss_common(c, x, lp, ops_input(c, 1), ops_input(c, 2));
    if (!s && ops_has_output(c, 1)) {
        core_tensor *y = ops_output(c, 1, x->dtype, x->ndim, x->dims);
        if (!y) s = KILN_ERR_OUT_OF_MEMORY;
        else
            for (int64_t i = 0; i < x->numel; i++) core_store_f64(x->dtype, y->data, i, lp[i]);
    }
    free(lp);
    return s;
}

/* ---- random generators --------------------------------------------------------------------- */

static double rnd_normal(ops_ctx *c)
{
    double u1 = ops_random_uniform(c), u2 = ops_random_uniform(c);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static kiln_status rnd_fill(ops_ctx *c, kiln_dtype dt, int nd, const int64_t *dims, bool normal)
{
    if (!core_dtype_is_float(dt))
        return ops_error(c, KILN_ERR_UNSUPPORTED, "dtype %s is not a float type", core_dtype_name(dt));
    core_tensor *y = ops_output(c, 0, dt, nd, dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    double a = normal ? ops_attr_float(c, "mean", 0.f) : ops_attr_float(c, "low", 0.f);
    double b = normal ? ops_attr_float(c, "scale", 1.f) : ops_attr_float(c, "high", 1.f);
    for (int64_t i = 0; i < y->numel; i++) {
        double v = normal ? a + b * rnd_normal(c) : a + (b - a) * ops_random_uniform(c);
        core_store_f64(dt, y->data, i, v);
    }
    return KILN_OK;
}

static kiln_status rnd_shape_common(ops_ctx *c, bool normal)
{
    int64_t nd = 0;
    const int64_t *shape = ops_attr_ints(c, "shape", &nd);
    if (nd > KILN_MAX_DIMS) return ops_error(c, KILN_ERR_SHAPE, "shape has %lld dims", (long long)nd);
    kiln_dtype dt = (kiln_dtype)ops_attr_int(c, "dtype", KILN_DTYPE_FLOAT);
    return rnd_fill(c, dt, (int)nd, shape, normal);
}

static kiln_status rnd_like_common(ops_ctx *c, bool normal)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "missing input 0");
    kiln_dtype dt = (kiln_dtype)ops_attr_int(c, "dtype", x->dtype);
    return rnd_fill(c, dt, x->ndim, x->dims, normal);
}

static kiln_status random_uniform_run(ops_ctx *c) { return rnd_shape_common(c, false); }
static kiln_status random_normal_run(ops_ctx *c) { return rnd_shape_common(c, true); }
static kiln_status random_uniform_like_run(ops_ctx *c) { return rnd_like_common(c, false); }
static kiln_status random_normal_like_run(ops_ctx *c) { return rnd_like_common(c, true); }

static kiln_status bernoulli_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x || !core_dtype_is_float(x->dtype))
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "input must be a float tensor");
    kiln_dtype dt = (kiln_dtype)ops_attr_int(c, "dtype", x->dtype);
    if (dt <= KILN_DTYPE_UNDEFINED || dt >= KILN_DTYPE_COUNT_ || !(misc_is_real(dt) || dt == KILN_DTYPE_BOOL))
        return ops_error(c, KILN_ERR_UNSUPPORTED, "dtype %d not supported", (int)dt);
    core_tensor *y = ops_output(c, 0, dt, x->ndim, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < x->numel; i++) {
        double p = core_load_f64(x->dtype, x->data, i);
        int v = ops_random_uniform(c) < p;
        if (dt == KILN_DTYPE_BOOL) ((uint8_t *)y->data)[i] = (uint8_t)v;
        else core_store_f64(dt, y->data, i, v);
    }
    return KILN_OK;
}

/* ---- ai.onnx.preview.training optimizers ------------------------------------------------------ */

/* Inputs: R (scalar learning rate), T (scalar step), then n_groups groups of n tensors each
 * (X..., G..., and the optimizer's state tensors); outputs are the updated X then states. */
typedef void (*opt_update_fn)(ops_ctx *c, double r, int64_t t, double *v /* per-group values */);

static kiln_status opt_common(ops_ctx *c, int n_groups, int n_out_groups, opt_update_fn fn)
{
    const core_tensor *R = ops_input(c, 0), *T = ops_input(c, 1);
    if (!R || !T || R->numel < 1 || T->numel < 1)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "R and T must be scalars");
    int n_in = ops_n_inputs(c) - 2;
    if (n_in <= 0 || n_in % n_groups)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "%d tensor inputs is not a multiple of %d",
                         n_in, n_groups);
    int n = n_in / n_groups;
    if (ops_n_outputs(c) < n * n_out_groups)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "%d outputs, expected %d", ops_n_outputs(c),
                         n * n_out_groups);
    double r = ops_scalar_f64(R);
    int64_t t = ops_scalar_i64(T);
    for (int k = 0; k < n; k++) {
        const core_tensor *in[4];
        core_tensor *out[3];
        for (int g = 0; g < n_groups; g++) {
            in[g] = ops_input(c, 2 + g * n + k);
            if (!in[g] || !core_dtype_is_float(in[g]->dtype))
                return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "input %d must be a float tensor",
                                 2 + g * n + k);
            if (in[g]->numel != in[0]->numel)
                return ops_error(c, KILN_ERR_SHAPE, "input %d has %lld values, expected %lld",
                                 2 + g * n + k, (long long)in[g]->numel, (long long)in[0]->numel);
        }
        for (int g = 0; g < n_out_groups; g++) {
            /* outputs: X_new..., then the state groups (inputs 2.. of each group skip G). */
            const core_tensor *src = in[g == 0 ? 0 : g + 1];
            out[g] = ops_output(c, g * n + k, src->dtype, src->ndim, src->dims);
            if (!out[g]) return KILN_ERR_OUT_OF_MEMORY;
        }
        for (int64_t i = 0; i < in[0]->numel; i++) {
            double v[4];
            for (int g = 0; g < n_groups; g++) v[g] = core_load_f64(in[g]->dtype, in[g]->data, i);
            fn(c, r, t, v);
            /* fn leaves X_new in v[0] and new states in v[2..] */
            for (int g = 0; g < n_out_groups; g++)
                core_store_f64(out[g]->dtype, out[g]->data, i, v[g == 0 ? 0 : g + 1]);
        }
    }
    return KILN_OK;
}

static void adagrad_update(ops_ctx *c, double r, int64_t t, double *v)
{
    double decay = ops_attr_float(c, "decay_factor", 0.f);
    double eps = ops_attr_float(c, "epsilon", 0.f);
    double lam = ops_attr_float(c, "norm_coefficient", 0.f);
    double rr = r / (1.0 + (double)t * decay);
    double g = lam * v[0] + v[1];
    double h = v[2] + g * g;
    v[0] = v[0] - rr * g / (sqrt(h) + eps);
    v[2] = h;
}

static void adam_update(ops_ctx *c, double r, int64_t t, double *v)
{
    double alpha = ops_attr_float(c, "alpha", 0.9f), beta = ops_attr_float(c, "beta", 0.999f);
    double eps = ops_attr_float(c, "epsilon", 0.f);
    double lam = ops_attr_float(c, "norm_coefficient", 0.f);
    double lam_post = ops_attr_float(c, "norm_coefficient_post", 0.f);
    double g = lam * v[0] + v[1];
    double m = alpha * v[2] + (1.0 - alpha) * g;
    double h = beta * v[3] + (1.0 - beta) * g * g;
    double ra = t > 0 ? r * sqrt(1.0 - pow(beta, (double)t)) / (1.0 - pow(alpha, (double)t)) : r;
    double x = v[0] - ra * (m / (sqrt(h) + eps));
    v[0] = (1.0 - lam_post) * x;
    v[2] = m;
    v[3] = h;
}

static void momentum_update(ops_ctx *c, double r, int64_t t, double *v)
{
    double alpha = ops_attr_float(c, "alpha", 0.f), beta = ops_attr_float(c, "beta", 0.f);
    double lam = ops_attr_float(c, "norm_coefficient", 0.f);
    bool nesterov = !strcmp(ops_attr_string(c, "mode", "standard"), "nesterov");
    double g = lam * v[0] + v[1];
    double b = t > 0 ? beta : 1.0;
    double m = alpha * v[2] + b * g;
    v[0] = nesterov ? v[0] - r * (g + alpha * m) : v[0] - r * m;
    v[2] = m;
}

static kiln_status adagrad_run(ops_ctx *c) { return opt_common(c, 3, 2, adagrad_update); }
static kiln_status adam_run(ops_ctx *c) { return opt_common(c, 4, 3, adam_update); }
static kiln_status momentum_run(ops_ctx *c) { return opt_common(c, 3, 2, momentum_update); }

/* ---- ai.onnx.ml ----------------------------------------------------------------------------- */

static kiln_status array_feature_extractor_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0), *idx = ops_input(c, 1);
    if (!x || !idx || !core_dtype_is_int(idx->dtype))
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "X and integer indices are required");
    if (x->ndim < 1) return ops_error(c, KILN_ERR_SHAPE, "X must have at least 1 dim");
    int64_t last = x->dims[x->ndim - 1], k = idx->numel;
    int64_t od[KILN_MAX_DIMS];
    int ond;
    if (x->ndim == 1) { od[0] = 1; od[1] = k; ond = 2; }
    else {
        memcpy(od, x->dims, sizeof(int64_t) * (size_t)x->ndim);
        od[x->ndim - 1] = k;
        ond = x->ndim;
    }
    for (int64_t j = 0; j < k; j++) {
        int64_t i = core_load_i64(idx->dtype, idx->data, j);
        if (i < 0 || i >= last)
            return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "index %lld out of range [0, %lld)",
                             (long long)i, (long long)last);
    }
    core_tensor *y = ops_output(c, 0, x->dtype, ond, od);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    int64_t rows = last ? x->numel / last : 0;
    size_t es = core_dtype_size(x->dtype);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t j = 0; j < k; j++) {
            int64_t i = core_load_i64(idx->dtype, idx->data, j);
            if (x->dtype == KILN_DTYPE_STRING) {
                const char *s = ((char **)x->data)[r * last + i];
                if (!core_tensor_set_string(y, r * k + j, s ? s : "", s ? strlen(s) : 0))
                    return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
            } else {
                memcpy((char *)y->data + (size_t)(r * k + j) * es,
                       (const char *)x->data + (size_t)(r * last + i) * es, es);
            }
        }
    }
    return KILN_OK;
}

static kiln_status binarizer_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x || !misc_is_real(x->dtype))
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "X must be a numeric tensor");
    double thr = ops_attr_float(c, "threshold", 0.f);
    core_tensor *y = ops_output(c, 0, x->dtype, x->ndim, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < x->numel; i++) {
        double v = core_load_f64(x->dtype, x->data, i);
        core_store_f64(x->dtype, y->data, i, v > thr ? 1.0 : isnan(v) ? v : 0.0);
    }
    return KILN_OK;
}

/* LabelEncoder keys/values: a list attribute or (opset 4) a tensor attribute. */
typedef struct le_list {
    int64_t n;
    bool is_str;
    kiln_dtype dtype;      /* of the numeric values */
    const char *const *s;  /* strings */
    const core_tensor *t;  /* tensor form */
    const int64_t *i64;
    const float *f32;
} le_list;

static bool le_get(ops_ctx *c, const char *pfx, le_list *l)
{
    char name[64];
    memset(l, 0, sizeof *l);
    snprintf(name, sizeof name, "%s_strings", pfx);
    if (ops_has_attr(c, name)) {
        l->s = (const char *const *)ops_attr_strings(c, name, &l->n);
        l->is_str = true;
        l->dtype = KILN_DTYPE_STRING;
        return true;
    }
    snprintf(name, sizeof name, "%s_int64s", pfx);
    if (ops_has_attr(c, name)) {
        l->i64 = ops_attr_ints(c, name, &l->n);
        l->dtype = KILN_DTYPE_INT64;
        return true;
    }
    snprintf(name, sizeof name, "%s_floats", pfx);
    if (ops_has_attr(c, name)) {
        l->f32 = ops_attr_floats(c, name, &l->n);
        l->dtype = KILN_DTYPE_FLOAT;
        return true;
    }
    snprintf(name, sizeof name, "%s_tensor", pfx);
    const core_tensor *t = ops_attr_tensor(c, name);
    if (t) {
        l->t = t;
        l->n = t->numel;
        l->dtype = t->dtype;
        l->is_str = t->dtype == KILN_DTYPE_STRING;
        if (l->is_str) l->s = (const char *const *)t->data;
        return true;
    }
    return false;
}

static double le_num(const le_list *l, int64_t i)
{
    if (l->i64) return (double)l->i64[i];
    if (l->f32) return l->f32[i];
    return core_load_f64(l->t->dtype, l->t->data, i);
}

static kiln_status label_encoder_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "missing input 0");
    le_list K, V;
    if (!le_get(c, "keys", &K) || !le_get(c, "values", &V))
        return ops_error(c, KILN_ERR_INVALID_MODEL, "keys and values attributes are required");
    if (K.n != V.n)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "%lld keys but %lld values", (long long)K.n,
                         (long long)V.n);
    if (K.is_str != (x->dtype == KILN_DTYPE_STRING))
        return ops_error(c, KILN_ERR_DTYPE, "input dtype %s does not match the keys",
                         core_dtype_name(x->dtype));
    kiln_dtype odt = V.dtype;
    /* default value */
    const char *def_s = "_Unused";
    double def_n = V.dtype == KILN_DTYPE_FLOAT ? -0.0 : -1.0;
    const core_tensor *dt = ops_attr_tensor(c, "default_tensor");
    if (dt && dt->numel >= 1) {
        if (dt->dtype == KILN_DTYPE_STRING) def_s = ((char **)dt->data)[0];
        else def_n = core_load_f64(dt->dtype, dt->data, 0);
    } else if (V.is_str) {
        def_s = ops_attr_string(c, "default_string", "_Unused");
    } else if (V.dtype == KILN_DTYPE_INT64) {
        def_n = (double)ops_attr_int(c, "default_int64", -1);
    } else if (V.dtype == KILN_DTYPE_FLOAT) {
        def_n = ops_attr_float(c, "default_float", -0.0f);
    }
    core_tensor *y = ops_output(c, 0, odt, x->ndim, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t hit = -1;
        if (K.is_str) {
            const char *s = ((char **)x->data)[i];
            for (int64_t k = 0; k < K.n && hit < 0; k++)
                if (!strcmp(s ? s : "", K.s[k] ? K.s[k] : "")) hit = k;
        } else {
            double v = core_load_f64(x->dtype, x->data, i);
            for (int64_t k = 0; k < K.n && hit < 0; k++) {
                double kv = le_num(&K, k);
                if (kv == v || (isnan(kv) && isnan(v))) hit = k;
            }
        }
        if (V.is_str) {
            const char *s = hit >= 0 ? V.s[hit] : def_s;
            if (!s) s = "";
            if (!core_tensor_set_string(y, i, s, strlen(s)))
                return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
        } else {
            double v = hit >= 0 ? le_num(&V, hit) : def_n;
            if (V.i64) core_store_i64(odt, y->data, i, hit >= 0 ? V.i64[hit] : (int64_t)def_n);
            else core_store_f64(odt, y->data, i, v);
        }
    }
    return KILN_OK;
}

/* TreeEnsemble (ai.onnx.ml opset 5). Node modes: 0 <=, 1 <, 2 >=, 3 >, 4 ==, 5 !=, 6 member. */
static kiln_status tree_ensemble_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x || !core_dtype_is_float(x->dtype) || x->ndim != 2)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "X must be a 2-D float tensor");
    int64_t n_nodes = 0, n_fid, n_tn, n_fn, n_tl, n_fl, n_ltid, n_roots, n_miss;
    const int64_t *fid = ops_attr_ints(c, "nodes_featureids", &n_fid);
    const int64_t *tn = ops_attr_ints(c, "nodes_truenodeids", &n_tn);
    const int64_t *fn = ops_attr_ints(c, "nodes_falsenodeids", &n_fn);
    const int64_t *tl = ops_attr_ints(c, "nodes_trueleafs", &n_tl);
    const int64_t *fl = ops_attr_ints(c, "nodes_falseleafs", &n_fl);
    const int64_t *ltid = ops_attr_ints(c, "leaf_targetids", &n_ltid);
    const int64_t *roots = ops_attr_ints(c, "tree_roots", &n_roots);
    const int64_t *miss = ops_attr_ints(c, "nodes_missing_value_tracks_true", &n_miss);
    const core_tensor *splits = ops_attr_tensor(c, "nodes_splits");
    const core_tensor *modes = ops_attr_tensor(c, "nodes_modes");
    const core_tensor *lw = ops_attr_tensor(c, "leaf_weights");
    const core_tensor *mv = ops_attr_tensor(c, "membership_values");
    int64_t n_targets = ops_attr_int(c, "n_targets", 0);
    int64_t agg = ops_attr_int(c, "aggregate_function", 1);
    int64_t post = ops_attr_int(c, "post_transform", 0);
    n_nodes = n_fid;
    if (!splits || !modes || !lw || splits->numel != n_nodes || modes->numel != n_nodes ||
        n_tn != n_nodes || n_fn != n_nodes || n_tl != n_nodes || n_fl != n_nodes ||
        lw->numel != n_ltid || (miss && n_miss != n_nodes) || n_targets <= 0)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "tree attributes are missing or inconsistent");
    if (agg < 0 || agg > 3 || post < 0 || post > 3)
        return ops_error(c, KILN_ERR_UNSUPPORTED, "aggregate_function %lld / post_transform %lld",
                         (long long)agg, (long long)post);
    int64_t n_leaves = n_ltid;
    for (int64_t i = 0; i < n_leaves; i++)
        if (ltid[i] < 0 || ltid[i] >= n_targets)
            return ops_error(c, KILN_ERR_INVALID_MODEL, "leaf target %lld out of range", (long long)ltid[i]);
    /* Membership sets: each member node, in node order, owns a NaN-terminated run. */
    int64_t *mstart = core_calloc((size_t)(n_nodes + 1), sizeof(int64_t));
    int64_t *mend = core_calloc((size_t)(n_nodes + 1), sizeof(int64_t));
    double *acc = core_malloc(sizeof(double) * (size_t)n_targets);
    uint8_t *hit = core_malloc((size_t)n_targets);
    if (!mstart || !mend || !acc || !hit) {
        free(mstart); free(mend); free(acc); free(hit);
        return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    kiln_status s = KILN_OK;
    int64_t mp = 0;
    for (int64_t i = 0; i < n_nodes; i++) {
        int64_t m = core_load_i64(modes->dtype, modes->data, i);
        if (m < 0 || m > 6) { s = ops_error(c, KILN_ERR_INVALID_MODEL, "node mode %lld", (long long)m); goto done; }
        if (m != 6) continue;
        if (!mv) { s = ops_error(c, KILN_ERR_INVALID_MODEL, "member node without membership_values"); goto done; }
        mstart[i] = mp;
        while (mp < mv->numel && !isnan(core_load_f64(mv->dtype, mv->data, mp))) mp++;
        mend[i] = mp;
        if (mp < mv->numel) mp++;
    }
    int64_t N = x->dims[0], F = x->dims[1];
    int64_t od[2] = {N, n_targets};
    core_tensor *y = ops_output(c, 0, x->dtype, 2, od);
    if (!y) { s = KILN_ERR_OUT_OF_MEMORY; goto done; }
    for (int64_t r = 0; r < N; r++) {
        for (int64_t k = 0; k < n_targets; k++) {
            acc[k] = agg == 2 ? DBL_MAX : agg == 3 ? -DBL_MAX : 0.0;
            hit[k] = 0;
        }
        for (int64_t ti = 0; ti < n_roots; ti++) {
            int64_t node = roots[ti];
            bool leaf = false;
            if (node < 0 || node >= n_nodes) {
                s = ops_error(c, KILN_ERR_INVALID_MODEL, "tree root %lld out of range", (long long)node);
                goto done;
            }
            /* A root whose branches are the same leaf is a one-leaf tree; as in the ONNX
             * reference, its leaf index is the root index. */
            if (tl[node] && fl[node] && tn[node] == fn[node]) leaf = true;
            for (int64_t steps = 0; !leaf; steps++) {
                if (steps > n_nodes || node < 0 || node >= n_nodes) {
                    s = ops_error(c, KILN_ERR_INVALID_MODEL, "tree walk left the node table (cycle?)");
                    goto done;
                }
                int64_t f = fid[node];
                if (f < 0 || f >= F) {
                    s = ops_error(c, KILN_ERR_INVALID_MODEL, "feature id %lld out of range", (long long)f);
                    goto done;
                }
                double v = core_load_f64(x->dtype, x->data, r * F + f);
                double sp = core_load_f64(splits->dtype, splits->data, node);
                int64_t m = core_load_i64(modes->dtype, modes->data, node);
                bool t;
                switch (m) {
                case 0: t = v <= sp; break;
                case 1: t = v < sp; break;
                case 2: t = v >= sp; break;
                case 3: t = v > sp; break;
                case 4: t = v == sp; break;
                case 5: t = v != sp; break;
                default:
                    t = false;
                    for (int64_t j = mstart[node]; j < mend[node] && !t; j++) {
                        double mvv = core_load_f64(mv->dtype, mv->data, j);
                        /* compare at the precision of X */
                        if (x->dtype == KILN_DTYPE_FLOAT ? (float)mvv == (float)v : mvv == v) t = true;
                    }
                    break;
                }
                if (!t && isnan(v) && miss && miss[node]) t = true;
                if (t) { leaf = tl[node] != 0; node = tn[node]; }
                else { leaf = fl[node] != 0; node = fn[node]; }
            }
            if (node < 0 || node >= n_leaves) {
                s = ops_error(c, KILN_ERR_INVALID_MODEL, "leaf %lld out of range", (long long)node);
                goto done;
            }
            double w = core_load_f64(lw->dtype, lw->data, node);
            int64_t tg = ltid[node];
            switch (agg) {
            case 0: acc[tg] += w / (double)n_roots; break;
            case 1: acc[tg] += w; break;
            case 2: acc[tg] = fmin(acc[tg], w); break;
            default: acc[tg] = fmax(acc[tg], w); break;
            }
            hit[tg] = 1;
        }
        /* A target no tree reached scores 0 (as onnxruntime does), not the min/max seed. */
        for (int64_t k = 0; k < n_targets; k++)
            if (!hit[k]) acc[k] = 0.0;
        if (post == 1 || post == 3) {
            double mx = -INFINITY, sum = 0.0;
            for (int64_t k = 0; k < n_targets; k++) mx = fmax(mx, acc[k]);
            for (int64_t k = 0; k < n_targets; k++) {
                acc[k] = (post == 3 && acc[k] == 0.0) ? 0.0 : exp(acc[k] - mx);
                sum += acc[k];
            }
            for (int64_t k = 0; k < n_targets; k++) acc[k] = sum > 0 ? acc[k] / sum : 0.0;
        } else if (post == 2) {
            for (int64_t k = 0; k < n_targets; k++) acc[k] = 1.0 / (1.0 + exp(-acc[k]));
        }
        for (int64_t k = 0; k < n_targets; k++) core_store_f64(x->dtype, y->data, r * n_targets + k, acc[k]);
    }
done:
    free(mstart);
    free(mend);
    free(acc);
    free(hit);
    return s;
}

/* ---- string ops ------------------------------------------------------------------------------ */


static bool str_is_stop(const char *w, size_t n, char *const *stops, int64_t n_stops, bool cs)
{
    for (int64_t k = 0; k < n_stops; k++) {
        if (strlen(stops[k]) != n) continue;
        if (cs ? !strncmp(w, stops[k], n) : !strncasecmp(w, stops[k], n)) return true;
    }
    return false;
}

static kiln_status string_normalizer_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x || x->dtype != KILN_DTYPE_STRING)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "input must be a string tensor");
    if (x->ndim != 1 && !(x->ndim == 2 && x->dims[0] == 1))
        return ops_error(c, KILN_ERR_SHAPE, "input must be [C] or [1, C]");
    const char *act = ops_attr_string(c, "case_change_action", "NONE");
    int mode = !strcmp(act, "LOWER") ? 1 : !strcmp(act, "UPPER") ? 2 : !strcmp(act, "NONE") ? 0 : -1;
    if (mode < 0) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "case_change_action '%s'", act);
    bool cs = ops_attr_int(c, "is_case_sensitive", 0) != 0;
    int64_t n_stops = 0;
    char *const *stops = ops_attr_strings(c, "stopwords", &n_stops);
    int64_t n = x->numel, kept = 0;
    char **res = core_calloc((size_t)(n + 1), sizeof(char *));
    if (!res) return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
    kiln_status s = KILN_OK;
    for (int64_t i = 0; i < n; i++) {
        const char *in = ops_str_at(x, i);
        size_t len = strlen(in);
        char *out = core_malloc(len + 1);
        if (!out) { s = ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory"); goto done; }
        size_t o = 0;
        /* Stopwords are whole space-separated words. */
        const char *p = in;
        bool first = true;
        for (;;) {
            const char *e = strchr(p, ' ');
            size_t wl = e ? (size_t)(e - p) : strlen(p);
            if (!(n_stops && str_is_stop(p, wl, stops, n_stops, cs))) {
                if (!first) out[o++] = ' ';
                memcpy(out + o, p, wl);
                o += wl;
                first = false;
            }
            if (!e) break;
            p = e + 1;
        }
        out[o] = '\0';
        for (size_t k = 0; k < o; k++) {
            unsigned char ch = (unsigned char)out[k];
            if (ch < 0x80) out[k] = (char)(mode == 1 ? tolower(ch) : mode == 2 ? toupper(ch) : ch);
        }
        if (o == 0) { free(out); continue; }
        res[kept++] = out;
    }
    {
        int64_t od[2];
        int ond = x->ndim;
        int64_t cnt = kept ? kept : 1;
        if (ond == 1) od[0] = cnt;
        else { od[0] = 1; od[1] = cnt; }
        core_tensor *y = ops_output(c, 0, KILN_DTYPE_STRING, ond, od);
        if (!y) { s = KILN_ERR_OUT_OF_MEMORY; goto done; }
        for (int64_t i = 0; i < kept; i++)
            if (!core_tensor_set_string(y, i, res[i], strlen(res[i]))) {
                s = ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
                goto done;
            }
    }
done:
    for (int64_t i = 0; i < n; i++) free(res[i]);
    free(res);
    return s;
}

static kiln_status string_concat_run(ops_ctx *c)
{
    const core_tensor *a = ops_input(c, 0), *b = ops_input(c, 1);
    if (!a || !b || a->dtype != KILN_DTYPE_STRING || b->dtype != KILN_DTYPE_STRING)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "inputs must be string tensors");
    int nd;
    int64_t od[KILN_MAX_DIMS], sa[KILN_MAX_DIMS], sb[KILN_MAX_DIMS], idx[KILN_MAX_DIMS] = {0};
    if (!ops_broadcast_shape(a->ndim, a->dims, b->ndim, b->dims, &nd, od))
        return ops_error(c, KILN_ERR_SHAPE, "input shapes cannot be broadcast");
    ops_broadcast_strides(a->ndim, a->dims, nd, od, sa);
    ops_broadcast_strides(b->ndim, b->dims, nd, od, sb);
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_STRING, nd, od);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < y->numel; i++) {
        int64_t ia = 0, ib = 0;
        for (int d = 0; d < nd; d++) { ia += idx[d] * sa[d]; ib += idx[d] * sb[d]; }
        const char *x1 = ops_str_at(a, ia), *x2 = ops_str_at(b, ib);
        size_t l1 = strlen(x1), l2 = strlen(x2);
        char *buf = core_malloc(l1 + l2 + 1);
        if (!buf) return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
        memcpy(buf, x1, l1);
        memcpy(buf + l1, x2, l2 + 1);
        bool ok = core_tensor_set_string(y, i, buf, l1 + l2);
        free(buf);
        if (!ok) return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
        ops_index_next(nd, od, idx);
    }
    return KILN_OK;
}

/* Splits s into pieces (start, len); whitespace mode (no delimiter) follows Python's
 * str.split(): runs of whitespace separate, no empty pieces. maxsplit < 0 = unlimited. */
static int64_t str_split(const char *s, const char *delim, int64_t maxsplit, size_t *st, size_t *ln)
{
    int64_t n = 0;
    size_t L = strlen(s);
    if (!delim || !*delim) {
        size_t i = 0;
        for (;;) {
            while (i < L && isspace((unsigned char)s[i])) i++;
            if (i >= L) break;
            if (maxsplit >= 0 && n == maxsplit) {
                /* the remainder, trailing whitespace kept (as Python does) */
                if (st) { st[n] = i; ln[n] = L - i; }
                n++;
                break;
            }
            size_t j = i;
            while (j < L && !isspace((unsigned char)s[j])) j++;
            if (st) { st[n] = i; ln[n] = j - i; }
            n++;
            i = j;
        }
        return n;
    }
    size_t dl = strlen(delim), i = 0;
    for (;;) {
        const char *e = (maxsplit >= 0 && n == maxsplit) ? NULL : strstr(s + i, delim);
        size_t j = e ? (size_t)(e - s) : L;
        if (st) { st[n] = i; ln[n] = j - i; }
        n++;
        if (!e) break;
        i = j + dl;
    }
    return n;
}

static kiln_status string_split_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x || x->dtype != KILN_DTYPE_STRING)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "input must be a string tensor");
    if (x->ndim >= KILN_MAX_DIMS) return ops_error(c, KILN_ERR_SHAPE, "input has too many dims");
    const char *delim = ops_has_attr(c, "delimiter") ? ops_attr_string(c, "delimiter", "") : NULL;
    int64_t maxsplit = ops_has_attr(c, "maxsplit") ? ops_attr_int(c, "maxsplit", -1) : -1;
    int64_t most = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t k = str_split(ops_str_at(x, i), delim, maxsplit, NULL, NULL);
        if (k > most) most = k;
    }
    int64_t od[KILN_MAX_DIMS];
    memcpy(od, x->dims, sizeof(int64_t) * (size_t)x->ndim);
    od[x->ndim] = most;
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_STRING, x->ndim + 1, od);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    core_tensor *cnt = ops_output(c, 1, KILN_DTYPE_INT64, x->ndim, x->dims);
    if (!cnt) return KILN_ERR_OUT_OF_MEMORY;
    size_t *st = core_malloc(sizeof(size_t) * (size_t)(most + 1));
    size_t *ln = core_malloc(sizeof(size_t) * (size_t)(most + 1));
    if (!st || !ln) { free(st); free(ln); return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory"); }
    for (int64_t i = 0; i < x->numel; i++) {
        const char *s = ops_str_at(x, i);
        int64_t k = str_split(s, delim, maxsplit, st, ln);
        ((int64_t *)cnt->data)[i] = k;
        for (int64_t j = 0; j < k; j++)
            if (!core_tensor_set_string(y, i * most + j, s + st[j], ln[j])) {
                free(st); free(ln);
                return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
            }
    }
    free(st);
    free(ln);
    return KILN_OK;
}

/* ---- RegexFullMatch: a small regex engine ----------------------------------------------------
 * Parses the RE2 subset models use (literals, ., classes [...] with ranges and \w\d\s,
 * groups (...) and (?:...), |, * + ? {m,n} (lazy forms accepted), ^ $ \b \B) into a
 * program for a backtracking VM. Each (pc, position) state is visited at most once, so a
 * match costs O(program * text) whatever the pattern (RE2's bit-state idea). Works on
 * bytes; '.' and negated classes consume one whole UTF-8 character. */

enum { RX_BYTE, RX_ANY, RX_CLASS, RX_SPLIT, RX_JMP, RX_BOL, RX_EOL, RX_WORDB, RX_NWORDB, RX_MATCH };
enum { RXN_EMPTY, RXN_BYTE, RXN_ANY, RXN_CLASS, RXN_CAT, RXN_ALT, RXN_REP, RXN_BOL, RXN_EOL, RXN_WORDB, RXN_NWORDB };

typedef struct rx_inst {
    int op;
    int x, y; /* byte value / class index / branch targets */
} rx_inst;

typedef struct rx_class {
    uint8_t bits[32];
    bool neg;
} rx_class;

typedef struct rx_node {
    int kind;
    int val;            /* byte or class index */
    int min, max;       /* REP; max -1 = unbounded */
    bool greedy;
    struct rx_node *a, *b; /* CAT/ALT: a then b; REP: a */
} rx_node;

typedef struct rx {
    const char *p;      /* parse cursor */
    const char *err;
    int depth;          /* group nesting while parsing */
    rx_node *nodes;
    int n_nodes, cap_nodes;
    rx_class *classes;
    int n_classes, cap_classes;
    rx_inst *prog;
    int n_prog, cap_prog;
} rx;

#define RX_MAX_PROG 200000

static rx_node *rx_new(rx *r, int kind)
{
    if (r->n_nodes == r->cap_nodes) {
        /* Nodes are referenced by pointer: allocate in fixed chunks that never move. */
        r->err = "pattern too complex";
        return NULL;
    }
    rx_node *n = &r->nodes[r->n_nodes++];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    return n;
}

static int rx_new_class(rx *r)
{
    if (r->n_classes == r->cap_classes) {
        int cap = r->cap_classes ? r->cap_classes * 2 : 8;
        rx_class *c2 = core_realloc(r->classes, sizeof(rx_class) * (size_t)cap);
        if (!c2) { r->err = "out of memory"; return -1; }
        r->classes = c2;
        r->cap_classes = cap;
    }
    memset(&r->classes[r->n_classes], 0, sizeof(rx_class));
    return r->n_classes++;
}

static void rx_set(rx_class *c, int lo, int hi)
{
    for (int ch = lo; ch <= hi && ch < 256; ch++) c->bits[ch >> 3] |= (uint8_t)(1u << (ch & 7));
}

static bool rx_has(const rx_class *c, int ch) { return (c->bits[ch >> 3] >> (ch & 7)) & 1; }

/* Adds the ASCII set of a \d \w \s (or negations) escape to c; false if e is not one. */
static bool rx_add_perl(rx_class *c, char e)
{
    rx_class t;
    memset(&t, 0, sizeof t);
    switch (tolower((unsigned char)e)) {
    case 'd': rx_set(&t, '0', '9'); break;
    case 'w': rx_set(&t, '0', '9'); rx_set(&t, 'a', 'z'); rx_set(&t, 'A', 'Z'); rx_set(&t, '_', '_'); break;
    case 's': rx_set(&t, ' ', ' '); rx_set(&t, '\t', '\r'); break;
    default: return false;
    }
    bool neg = isupper((unsigned char)e);
    for (int ch = 0; ch < 128; ch++)
        if (rx_has(&t, ch) != neg) rx_set(c, ch, ch);
    if (neg) rx_set(c, 128, 255); /* non-ASCII is never a word/digit/space char here */
    return true;
}

static int rx_escape_byte(char e)
{
    switch (e) {
    case 'n': return '\n';
    case 't': return '\t';
    case 'r': return '\r';
    case 'f': return '\f';
    case 'v': return '\v';
    case '0': return 0;
    default: return (unsigned char)e;
    }
}

static rx_node *rx_parse_alt(rx *r);

static rx_node *rx_parse_class(rx *r)
{
    int ci = rx_new_class(r);
    if (ci < 0) return NULL;
    rx_class *cl = &r->classes[ci];
    r->p++; /* [ */
    if (*r->p == '^') { cl->neg = true; r->p++; }
    bool first = true;
    while (*r->p && (*r->p != ']' || first)) {
        first = false;
        int lo;
        if (*r->p == '\\') {
            r->p++;
            if (!*r->p) break;
            cl = &r->classes[ci];
            if (rx_add_perl(cl, *r->p)) { r->p++; continue; }
            lo = rx_escape_byte(*r->p++);
        } else if (r->p[0] == '[' && r->p[1] == ':') {
            const char *e = strstr(r->p, ":]");
            if (!e) { r->err = "bad POSIX class"; return NULL; }
            size_t n = (size_t)(e - (r->p + 2));
            const char *nm = r->p + 2;
            if (n == 5 && !strncmp(nm, "alpha", 5)) { rx_set(cl, 'a', 'z'); rx_set(cl, 'A', 'Z'); }
            else if (n == 5 && !strncmp(nm, "digit", 5)) rx_set(cl, '0', '9');
            else if (n == 5 && !strncmp(nm, "alnum", 5)) { rx_set(cl, 'a', 'z'); rx_set(cl, 'A', 'Z'); rx_set(cl, '0', '9'); }
            else if (n == 5 && !strncmp(nm, "space", 5)) { rx_set(cl, ' ', ' '); rx_set(cl, '\t', '\r'); }
            else if (n == 5 && !strncmp(nm, "upper", 5)) rx_set(cl, 'A', 'Z');
            else if (n == 5 && !strncmp(nm, "lower", 5)) rx_set(cl, 'a', 'z');
            else if (n == 5 && !strncmp(nm, "punct", 5)) {
                for (int ch = 33; ch < 127; ch++) if (ispunct(ch)) rx_set(cl, ch, ch);
            } else if (n == 6 && !strncmp(nm, "xdigit", 6)) { rx_set(cl, '0', '9'); rx_set(cl, 'a', 'f'); rx_set(cl, 'A', 'F'); }
            else { r->err = "unknown POSIX class"; return NULL; }
            r->p = e + 2;
            continue;
        } else {
            lo = (unsigned char)*r->p++;
        }
        int hi = lo;
        if (r->p[0] == '-' && r->p[1] && r->p[1] != ']') {
            r->p++;
            if (*r->p == '\\') { r->p++; if (!*r->p) break; hi = rx_escape_byte(*r->p++); }
            else hi = (unsigned char)*r->p++;
            if (hi < lo) { r->err = "bad class range"; return NULL; }
        }
        rx_set(cl, lo, hi);
    }
    if (*r->p != ']') { r->err = "missing ]"; return NULL; }
    r->p++;
    rx_node *n = rx_new(r, RXN_CLASS);
    if (n) n->val = ci;
    return n;
}

static rx_node *rx_cat(rx *r, rx_node *a, rx_node *b)
{
    if (!a) return b;
    rx_node *n = rx_new(r, RXN_CAT);
    if (n) { n->a = a; n->b = b; }
    return n;
}

static rx_node *rx_parse_atom(rx *r)
{
    char ch = *r->p;
    if (ch == '(') {
        if (++r->depth > 500) { r->err = "groups nested too deeply"; return NULL; }
        r->p++;
        if (r->p[0] == '?' && r->p[1] == ':') r->p += 2;
        else if (r->p[0] == '?' && r->p[1] == 'P' && r->p[2] == '<') {
            const char *e = strchr(r->p, '>');
            if (!e) { r->err = "bad group name"; return NULL; }
            r->p = e + 1;
        } else if (r->p[0] == '?') { r->err = "unsupported group flags"; return NULL; }
        rx_node *n = rx_parse_alt(r);
        if (!n) return NULL;
        if (*r->p != ')') { r->err = "missing )"; return NULL; }
        r->p++;
        r->depth--;
        return n;
    }
    if (ch == '[') return rx_parse_class(r);
    if (ch == '.') { r->p++; return rx_new(r, RXN_ANY); }
    if (ch == '^') { r->p++; return rx_new(r, RXN_BOL); }
    if (ch == '$') { r->p++; return rx_new(r, RXN_EOL); }
    if (ch == '\\') {
        r->p++;
        char e = *r->p;
        if (!e) { r->err = "trailing backslash"; return NULL; }
        r->p++;
        if (e == 'b') return rx_new(r, RXN_WORDB);
        if (e == 'B') return rx_new(r, RXN_NWORDB);
        if (e == 'A') return rx_new(r, RXN_BOL);
        if (e == 'z') return rx_new(r, RXN_EOL);
        int ci = rx_new_class(r);
        if (ci < 0) return NULL;
        if (rx_add_perl(&r->classes[ci], e)) {
            rx_node *n = rx_new(r, RXN_CLASS);
            if (n) n->val = ci;
            return n;
        }
        r->n_classes--;
        rx_node *n = rx_new(r, RXN_BYTE);
        if (n) n->val = rx_escape_byte(e);
        return n;
    }
    /* A literal; a multi-byte UTF-8 character becomes a byte sequence. */
    unsigned char u = (unsigned char)ch;
    int len = u < 0x80 ? 1 : (u >> 5) == 6 ? 2 : (u >> 4) == 14 ? 3 : (u >> 3) == 30 ? 4 : 1;
    rx_node *seq = NULL;
    for (int i = 0; i < len && *r->p; i++) {
        rx_node *n = rx_new(r, RXN_BYTE);
        if (!n) return NULL;
        n->val = (unsigned char)*r->p++;
        seq = rx_cat(r, seq, n);
        if (!seq) return NULL;
    }
    return seq;
}

static bool rx_parse_int(rx *r, int *out)
{
    if (!isdigit((unsigned char)*r->p)) return false;
    long v = 0;
    while (isdigit((unsigned char)*r->p)) {
        v = v * 10 + (*r->p++ - '0');
        if (v > 1000) { r->err = "repeat count too large"; return false; }
    }
    *out = (int)v;
    return true;
}

static rx_node *rx_parse_rep(rx *r)
{
    rx_node *a = rx_parse_atom(r);
    if (!a) return NULL;
    for (;;) {
        int mn, mx;
        char ch = *r->p;
        if (ch == '*') { mn = 0; mx = -1; r->p++; }
        else if (ch == '+') { mn = 1; mx = -1; r->p++; }
        else if (ch == '?') { mn = 0; mx = 1; r->p++; }
        else if (ch == '{' && isdigit((unsigned char)r->p[1])) {
            const char *save = r->p;
            r->p++;
            if (!rx_parse_int(r, &mn)) return NULL;
            mx = mn;
            if (*r->p == ',') {
                r->p++;
                if (*r->p == '}') mx = -1;
                else if (!rx_parse_int(r, &mx)) { if (!r->err) r->err = "bad repeat"; return NULL; }
            }
            if (*r->p != '}') { r->p = save; return a; }
            r->p++;
            if (mx >= 0 && mx < mn) { r->err = "bad repeat range"; return NULL; }
        } else {
            return a;
        }
        rx_node *n = rx_new(r, RXN_REP);
        if (!n) return NULL;
        n->a = a;
        n->min = mn;
        n->max = mx;
        n->greedy = true;
        if (*r->p == '?') { n->greedy = false; r->p++; }
        a = n;
    }
}

static rx_node *rx_parse_cat(rx *r)
{
    rx_node *seq = rx_new(r, RXN_EMPTY);
    if (!seq) return NULL;
    while (*r->p && *r->p != '|' && *r->p != ')') {
        rx_node *n = rx_parse_rep(r);
        if (!n) return NULL;
        seq = rx_cat(r, seq, n);
        if (!seq) return NULL;
    }
    return seq;
}

static rx_node *rx_parse_alt(rx *r)
{
    rx_node *a = rx_parse_cat(r);
    if (!a) return NULL;
    while (*r->p == '|') {
        r->p++;
        rx_node *b = rx_parse_cat(r);
        if (!b) return NULL;
        rx_node *n = rx_new(r, RXN_ALT);
        if (!n) return NULL;
        n->a = a;
        n->b = b;
        a = n;
    }
    return a;
}

static int rx_emit(rx *r, int op, int x, int y)
{
    if (r->n_prog >= RX_MAX_PROG) { r->err = "pattern too large"; return -1; }
    if (r->n_prog == r->cap_prog) {
        int cap = r->cap_prog ? r->cap_prog * 2 : 64;
        rx_inst *p2 = core_realloc(r->prog, sizeof(rx_inst) * (size_t)cap);
        if (!p2) { r->err = "out of memory"; return -1; }
        r->prog = p2;
        r->cap_prog = cap;
    }
    r->prog[r->n_prog].op = op;
    r->prog[r->n_prog].x = x;
    r->prog[r->n_prog].y = y;
    return r->n_prog++;
}

static bool rx_compile(rx *r, const rx_node *n, int depth)
{
    if (depth > 2000) { r->err = "pattern nested too deeply"; return false; }
    switch (n->kind) {
    case RXN_EMPTY: return true;
    case RXN_BYTE: return rx_emit(r, RX_BYTE, n->val, 0) >= 0;
    case RXN_ANY: return rx_emit(r, RX_ANY, 0, 0) >= 0;
    case RXN_CLASS: return rx_emit(r, RX_CLASS, n->val, 0) >= 0;
    case RXN_BOL: return rx_emit(r, RX_BOL, 0, 0) >= 0;
    case RXN_EOL: return rx_emit(r, RX_EOL, 0, 0) >= 0;
    case RXN_WORDB: return rx_emit(r, RX_WORDB, 0, 0) >= 0;
    case RXN_NWORDB: return rx_emit(r, RX_NWORDB, 0, 0) >= 0;
    case RXN_CAT: {
        /* Concatenations are left-deep chains as long as the pattern: walk the spine
         * without recursing on it. */
        int len = 0;
        for (const rx_node *k = n; k->kind == RXN_CAT; k = k->a) len++;
        const rx_node **spine = core_malloc(sizeof(*spine) * (size_t)len);
        if (!spine) { r->err = "out of memory"; return false; }
        const rx_node *k = n;
        for (int i = len - 1; i >= 0; i--, k = k->a) spine[i] = k;
        bool ok = rx_compile(r, k, depth + 1);
        for (int i = 0; i < len && ok; i++) ok = rx_compile(r, spine[i]->b, depth + 1);
        free(spine);
        return ok;
    }
    case RXN_ALT: {
        int sp = rx_emit(r, RX_SPLIT, 0, 0);
        if (sp < 0) return false;
        r->prog[sp].x = r->n_prog;
        if (!rx_compile(r, n->a, depth + 1)) return false;
        int j = rx_emit(r, RX_JMP, 0, 0);
        if (j < 0) return false;
        r->prog[sp].y = r->n_prog;
        if (!rx_compile(r, n->b, depth + 1)) return false;
        r->prog[j].x = r->n_prog;
        return true;
    }
    case RXN_REP: {
        for (int i = 0; i < n->min; i++)
            if (!rx_compile(r, n->a, depth + 1)) return false;
        if (n->max < 0) {
            int sp = rx_emit(r, RX_SPLIT, 0, 0);
            if (sp < 0) return false;
            int body = r->n_prog;
            if (!rx_compile(r, n->a, depth + 1)) return false;
            if (rx_emit(r, RX_JMP, sp, 0) < 0) return false;
            int end = r->n_prog;
            r->prog[sp].x = n->greedy ? body : end;
            r->prog[sp].y = n->greedy ? end : body;
            return true;
        }
        int n_opt = n->max - n->min;
        int *splits = core_malloc(sizeof(int) * (size_t)(n_opt + 1));
        if (!splits) { r->err = "out of memory"; return false; }
        for (int i = 0; i < n_opt; i++) {
            splits[i] = rx_emit(r, RX_SPLIT, 0, 0);
            if (splits[i] < 0) { free(splits); return false; }
            r->prog[splits[i]].x = r->n_prog; /* body, fixed up below for lazy */
            if (!rx_compile(r, n->a, depth + 1)) { free(splits); return false; }
        }
        int end = r->n_prog;
        for (int i = 0; i < n_opt; i++) {
            int body = r->prog[splits[i]].x;
            r->prog[splits[i]].x = n->greedy ? body : end;
            r->prog[splits[i]].y = n->greedy ? end : body;
        }
        free(splits);
        return true;
    }
    }
    return false;
}

static void rx_free(rx *r)
{
    free(r->nodes);
    free(r->classes);
    free(r->prog);
}

static bool rx_build(rx *r, const char *pattern)
{
    memset(r, 0, sizeof *r);
    size_t pl = strlen(pattern);
    r->cap_nodes = (int)(pl * 4 + 16);
    r->nodes = core_malloc(sizeof(rx_node) * (size_t)r->cap_nodes);
    if (!r->nodes) { r->err = "out of memory"; return false; }
    r->p = pattern;
    rx_node *root = rx_parse_alt(r);
    if (!root) return false;
    if (*r->p) { r->err = *r->p == ')' ? "unmatched )" : "unexpected character"; return false; }
    if (!rx_compile(r, root, 0)) return false;
    return rx_emit(r, RX_MATCH, 0, 0) >= 0;
}

static bool rx_word(const char *s, size_t L, size_t i)
{
    if (i >= L) return false;
    unsigned char ch = (unsigned char)s[i];
    return isalnum(ch) || ch == '_';
}

static size_t rx_utf8_len(const char *s, size_t L, size_t i)
{
    unsigned char u = (unsigned char)s[i];
    size_t n = u < 0x80 ? 1 : (u >> 5) == 6 ? 2 : (u >> 4) == 14 ? 3 : (u >> 3) == 30 ? 4 : 1;
    return i + n <= L ? n : L - i;
}

/* 1 = full match, 0 = no match, -1 = out of memory. */
static int rx_full_match(const rx *r, const char *s)
{
    size_t L = strlen(s);
    size_t n_states = (size_t)r->n_prog * (L + 1);
    uint8_t *seen = core_calloc((n_states + 7) / 8, 1);
    size_t cap = 64, top = 0;
    struct rx_thread { int pc; size_t sp; } *stack = core_malloc(sizeof *stack * cap);
    if (!seen || !stack) { free(seen); free(stack); return -1; }
    int result = 0;
    stack[top].pc = 0;
    stack[top].sp = 0;
    top++;
    while (top > 0 && !result) {
        top--;
        int pc = stack[top].pc;
        size_t sp = stack[top].sp;
        for (;;) {
            size_t st = (size_t)pc * (L + 1) + sp;
            if (seen[st >> 3] & (1u << (st & 7))) break;
            seen[st >> 3] |= (uint8_t)(1u << (st & 7));
            const rx_inst *in = &r->prog[pc];
            bool ok = true;
            switch (in->op) {
            case RX_BYTE:
                ok = sp < L && (unsigned char)s[sp] == in->x;
                if (ok) { sp++; pc++; }
                break;
            case RX_ANY:
                ok = sp < L && s[sp] != '\n';
                if (ok) { sp += rx_utf8_len(s, L, sp); pc++; }
                break;
            case RX_CLASS: {
                const rx_class *cl = &r->classes[in->x];
                if (sp >= L) { ok = false; break; }
                unsigned char ch = (unsigned char)s[sp];
                if (ch < 0x80) ok = rx_has(cl, ch) != cl->neg;
                else ok = cl->neg ? !rx_has(cl, ch) : rx_has(cl, ch);
                if (ok) { sp += ch < 0x80 || cl->neg ? rx_utf8_len(s, L, sp) : 1; pc++; }
                break;
            }
            case RX_SPLIT:
                if (top == cap) {
                    cap *= 2;
                    void *s2 = core_realloc(stack, sizeof *stack * cap);
                    if (!s2) { free(seen); free(stack); return -1; }
                    stack = s2;
                }
                stack[top].pc = in->y;
                stack[top].sp = sp;
                top++;
                pc = in->x;
                break;
            case RX_JMP: pc = in->x; break;
            case RX_BOL: ok = sp == 0; pc++; break;
            case RX_EOL: ok = sp == L; pc++; break;
            case RX_WORDB:
            case RX_NWORDB: {
                bool b = (sp > 0 && rx_word(s, L, sp - 1)) != rx_word(s, L, sp);
                ok = in->op == RX_WORDB ? b : !b;
                pc++;
                break;
            }
            case RX_MATCH:
                ok = false;
                if (sp == L) result = 1;
                break;
            }
            if (!ok || result) break;
        }
    }
    free(seen);
    free(stack);
    return result;
}

static kiln_status regex_full_match_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x || x->dtype != KILN_DTYPE_STRING)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "input must be a string tensor");
    const char *pat = ops_attr_string(c, "pattern", NULL);
    if (!pat) return ops_error(c, KILN_ERR_INVALID_MODEL, "pattern attribute is required");
    rx r;
    if (!rx_build(&r, pat)) {
        kiln_status s = ops_error(c, KILN_ERR_INVALID_ARGUMENT, "pattern '%.80s': %s at offset %d", pat,
                                  r.err ? r.err : "invalid", r.p ? (int)(r.p - pat) : 0);
        rx_free(&r);
        return s;
    }
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_BOOL, x->ndim, x->dims);
    if (!y) { rx_free(&r); return KILN_ERR_OUT_OF_MEMORY; }
    for (int64_t i = 0; i < x->numel; i++) {
        int m = rx_full_match(&r, ops_str_at(x, i));
        if (m < 0) { rx_free(&r); return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory"); }
        ((uint8_t *)y->data)[i] = (uint8_t)m;
    }
    rx_free(&r);
    return KILN_OK;
}

/* ---- TfIdfVectorizer --------------------------------------------------------------------------
 * The pool holds n-grams grouped by size (ngram_counts gives each group's start); the k-th
 * n-gram overall counts into output column ngram_indexes[k]. For each row, every skip
 * distance 1..max_skip_count+1 and start, the n-grams of each size in [min, max] formed by
 * items start, start+skip, ... are looked up; unigrams are counted once. */
static kiln_status tfidf_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "missing input 0");
    bool xs = x->dtype == KILN_DTYPE_STRING;
    if (!xs && !core_dtype_is_int(x->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "input must be string or integer, got %s",
                         core_dtype_name(x->dtype));
    int64_t min_n = ops_attr_int(c, "min_gram_length", 1), max_n = ops_attr_int(c, "max_gram_length", 1);
    int64_t max_skip = ops_attr_int(c, "max_skip_count", 0);
    const char *mode_s = ops_attr_string(c, "mode", "TF");
    int mode = !strcmp(mode_s, "TF") ? 1 : !strcmp(mode_s, "IDF") ? 2 : !strcmp(mode_s, "TFIDF") ? 3 : 0;
    int64_t n_counts = 0, n_idx = 0, n_pool_i = 0, n_pool_s = 0, n_w = 0;
    const int64_t *counts = ops_attr_ints(c, "ngram_counts", &n_counts);
    const int64_t *oidx = ops_attr_ints(c, "ngram_indexes", &n_idx);
    const int64_t *pool_i = ops_attr_ints(c, "pool_int64s", &n_pool_i);
    char *const *pool_s = ops_attr_strings(c, "pool_strings", &n_pool_s);
    const float *w = ops_attr_floats(c, "weights", &n_w);
    if (!mode) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "mode '%s' is not valid", mode_s);
    if (min_n < 1 || max_n < min_n || max_skip < 0)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "gram lengths %lld..%lld, skip %lld invalid",
                         (long long)min_n, (long long)max_n, (long long)max_skip);
    bool ps = n_pool_s > 0;
    int64_t n_pool = ps ? n_pool_s : n_pool_i;
    if (ps != xs && n_pool > 0)
        return ops_error(c, KILN_ERR_DTYPE, "input dtype does not match the pool");
    int64_t out_size = 0;
    for (int64_t i = 0; i < n_idx; i++) {
        if (oidx[i] < 0) return ops_error(c, KILN_ERR_INVALID_MODEL, "negative ngram index");
        if (oidx[i] + 1 > out_size) out_size = oidx[i] + 1;
    }
    if (n_w && n_w < out_size)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "%lld weights for %lld outputs", (long long)n_w,
                         (long long)out_size);
    for (int64_t i = 0; i < n_counts; i++)
        if (counts[i] < 0 || counts[i] > n_pool || (i && counts[i] < counts[i - 1]))
            return ops_error(c, KILN_ERR_INVALID_MODEL, "ngram_counts[%lld] = %lld invalid",
                             (long long)i, (long long)counts[i]);
    int64_t rows, C;
    int64_t od[2];
    int ond;
    if (x->ndim <= 1) { rows = 1; C = x->numel; od[0] = out_size; ond = 1; }
    else if (x->ndim == 2) { rows = x->dims[0]; C = x->dims[1]; od[0] = rows; od[1] = out_size; ond = 2; }
    else return ops_error(c, KILN_ERR_SHAPE, "input must be [C] or [N, C]");
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_FLOAT, ond, od);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    float *out = (float *)y->data;
    for (int64_t r = 0; r < rows; r++) {
        const int64_t base = r * C;
        for (int64_t skip = 1; skip <= max_skip + 1; skip++) {
            int64_t start_n = (min_n == 1 && skip > 1) ? 2 : min_n;
            if (start_n > max_n) break;
            for (int64_t st = 0; st < C; st++) {
                for (int64_t n = start_n; n <= max_n; n++) {
                    if (st + (n - 1) * skip >= C) break;
                    if (n - 1 >= n_counts) break;
                    /* group of size n: pool[counts[n-1] .. next start) */
                    int64_t g0 = counts[n - 1], g1 = n < n_counts ? counts[n] : n_pool;
                    int64_t id = -1;
                    for (int64_t k = 0; g0 + (k + 1) * n <= g1 && id < 0; k++) {
                        int64_t p0 = g0 + k * n;
                        bool eq = true;
                        for (int64_t j = 0; j < n && eq; j++) {
                            int64_t xi = base + st + j * skip;
                            if (xs) eq = !strcmp(ops_str_at(x, xi), pool_s[p0 + j] ? pool_s[p0 + j] : "");
                            else eq = core_load_i64(x->dtype, x->data, xi) == pool_i[p0 + j];
                        }
                        if (eq) id = p0;
                    }
                    if (id < 0) continue;
                    /* ordinal of the n-gram: earlier groups contribute size-dependent counts */
                    int64_t ord = 0;
                    for (int64_t gsz = 1; gsz < n; gsz++) {
                        int64_t a0 = counts[gsz - 1], a1 = gsz < n_counts ? counts[gsz] : n_pool;
                        ord += (a1 - a0) / gsz;
                    }
                    ord += (id - g0) / n;
                    if (ord >= n_idx)
                        return ops_error(c, KILN_ERR_INVALID_MODEL, "n-gram %lld has no ngram_index",
                                         (long long)ord);
                    out[r * out_size + oidx[ord]] += 1.f;
                }
            }
        }
    }
    for (int64_t i = 0; i < rows * out_size; i++) {
        int64_t col = i % (out_size ? out_size : 1);
        float f = out[i];
        if (mode == 2) out[i] = f > 0 ? (n_w ? w[col] : 1.f) : 0.f;
        else if (mode == 3) out[i] = n_w ? w[col] * f : f;
    }
    return KILN_OK;
}

const ops_schema ops_table_misc[] = {
    {"NonMaxSuppression", "", 10, nms_run},
    {"NegativeLogLikelihoodLoss", "", 12, nll_run},
    {"SoftmaxCrossEntropyLoss", "", 12, sce_run},
    {"RandomUniform", "", 1, random_uniform_run},
    {"RandomNormal", "", 1, random_normal_run},
    {"RandomUniformLike", "", 1, random_uniform_like_run},
    {"RandomNormalLike", "", 1, random_normal_like_run},
    {"Bernoulli", "", 15, bernoulli_run},
    {"StringNormalizer", "", 10, string_normalizer_run},
    {"StringConcat", "", 20, string_concat_run},
    {"StringSplit", "", 20, string_split_run},
    {"RegexFullMatch", "", 20, regex_full_match_run},
    {"TfIdfVectorizer", "", 9, tfidf_run},
    {"ArrayFeatureExtractor", "ai.onnx.ml", 1, array_feature_extractor_run},
    {"Binarizer", "ai.onnx.ml", 1, binarizer_run},
    {"LabelEncoder", "ai.onnx.ml", 1, label_encoder_run},
    {"TreeEnsemble", "ai.onnx.ml", 5, tree_ensemble_run},
    {"Adagrad", "ai.onnx.preview.training", 1, adagrad_run},
    {"Adam", "ai.onnx.preview.training", 1, adam_run},
    {"Momentum", "ai.onnx.preview.training", 1, momentum_run},
    OPS_TABLE_END
};
