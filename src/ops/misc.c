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
    if (tgt->ndim != x->ndim - 1 || tgt->dims[0] != N)
        return ops_error(c, KILN_ERR_SHAPE, "target has %d dims, expected %d", tgt->ndim, x->ndim - 1);
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
    if (!mstart || !mend || !acc) {
        free(mstart); free(mend); free(acc);
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
        for (int64_t k = 0; k < n_targets; k++)
            acc[k] = agg == 2 ? DBL_MAX : agg == 3 ? -DBL_MAX : 0.0;
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
        }
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
    return s;
}

/* STRING_OPS_BEGIN */
/* STRING_OPS_END */

const ops_schema ops_table_misc[] = {
    {"NonMaxSuppression", "", 10, nms_run},
    {"NegativeLogLikelihoodLoss", "", 12, nll_run},
    {"SoftmaxCrossEntropyLoss", "", 12, sce_run},
    {"RandomUniform", "", 1, random_uniform_run},
    {"RandomNormal", "", 1, random_normal_run},
    {"RandomUniformLike", "", 1, random_uniform_like_run},
    {"RandomNormalLike", "", 1, random_normal_like_run},
    {"Bernoulli", "", 15, bernoulli_run},
    {"ArrayFeatureExtractor", "ai.onnx.ml", 1, array_feature_extractor_run},
    {"Binarizer", "ai.onnx.ml", 1, binarizer_run},
    {"LabelEncoder", "ai.onnx.ml", 1, label_encoder_run},
    {"TreeEnsemble", "ai.onnx.ml", 5, tree_ensemble_run},
    {"Adagrad", "ai.onnx.preview.training", 1, adagrad_run},
    {"Adam", "ai.onnx.preview.training", 1, adam_run},
    {"Momentum", "ai.onnx.preview.training", 1, momentum_run},
    OPS_TABLE_END
};
