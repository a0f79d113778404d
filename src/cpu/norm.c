/* norm.c — fast float32 BatchNormalization (inference) and LayerNormalization (ONNX opset 17
 * and ai.kiln): per-channel scale/shift and per-row statistics in double, bit-compatible with
 * the reference's rounding; threaded over planes / rows. Training mode, extra outputs and
 * other dtypes go to the reference. */
#include "cpu/cpu_misc.h"
#include "ops/util.h"
#include <math.h>
#include <string.h>

/* ---- BatchNormalization ---------------------------------------------------------------------- */

typedef struct bn_job {
    const cpu_misc_ukernels *uk;
    int64_t C, S;
    const float *x, *k, *b;
    float *y;
} bn_job;

static void bn_tile(void *arg, int64_t b, int64_t e)
{
    const bn_job *j = arg;
    for (int64_t p = b; p < e; p++) {
        int64_t ch = p % j->C;
        j->uk->f32_scale_bias(j->x + p * j->S, j->y + p * j->S, (size_t)j->S, j->k[ch], j->b[ch]);
    }
}

static bool bn_param_ok(const core_tensor *t, int64_t C)
{
    return t && t->dtype == KILN_DTYPE_FLOAT && t->numel == C;
}

kiln_status cpu_batchnorm_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x || x->dtype != KILN_DTYPE_FLOAT || x->ndim < 2) return ops_run_reference(c);
    if (ops_opset(c) >= 14 && ops_attr_int(c, "training_mode", 0) != 0) return ops_run_reference(c);
    for (int o = 1; o < ops_n_outputs(c); o++)
        if (ops_has_output(c, o)) return ops_run_reference(c);
    int64_t N = x->dims[0], C = x->dims[1], S = 1;
    for (int i = 2; i < x->ndim; i++) S *= x->dims[i];
    const core_tensor *sc = ops_input(c, 1), *bi = ops_input(c, 2), *mu = ops_input(c, 3), *va = ops_input(c, 4);
    if (!bn_param_ok(sc, C) || !bn_param_ok(bi, C) || !bn_param_ok(mu, C) || !bn_param_ok(va, C))
        return ops_run_reference(c);
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_FLOAT, x->ndim, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    float *kb = ops_scratch(c, (size_t)(2 * C) * sizeof(float));
    if (!kb) return KILN_ERR_OUT_OF_MEMORY;
    double eps = ops_attr_float(c, "epsilon", 1e-5f);
    const float *S_ = sc->data, *B_ = bi->data, *M_ = mu->data, *V_ = va->data;
    for (int64_t ch = 0; ch < C; ch++) {
        /* the reference's folding, rounding included */
        float k = (float)(S_[ch] / sqrt((double)V_[ch] + eps));
        kb[ch] = k;
        kb[C + ch] = (float)(B_[ch] - (double)M_[ch] * k);
    }
    bn_job j = {cpu_misc_ukernels_get(), C, S, x->data, kb, kb + C, y->data};
    cpu_misc_parallel(ops_threadpool(c), N * C, 262144 / S + 1, bn_tile, &j); /* memory-bound */
    return KILN_OK;
}

/* ---- LayerNormalization ----------------------------------------------------------------------- */

typedef struct ln_job {
    const cpu_misc_ukernels *uk;
    int64_t inner;
    double eps;
    const float *x, *s, *b;
    bool s_one, b_one;
    float *y;
} ln_job;

static void ln_tile(void *arg, int64_t b, int64_t e)
{
    const ln_job *j = arg;
    double inv;
    for (int64_t r = b; r < e; r++)
        j->uk->f32_layernorm(j->x + r * j->inner, j->y + r * j->inner, (size_t)j->inner, j->eps, j->s,
                             j->s_one, j->b, j->b_one, &inv);
}

/* A Scale/B operand the fast path can index directly: float, and either one value or exactly
 * the normalized dims (leading 1s allowed), which lays its values out like a row of X. */
static bool ln_param(const core_tensor *p, int nn, const int64_t *dims, int64_t inner, bool *one)
{
    if (p->dtype != KILN_DTYPE_FLOAT) return false;
    if (p->numel == 1) { *one = true; return true; }
    *one = false;
    if (p->numel != inner) return false;
    int k = p->ndim;
    for (int i = 0; i < k; i++) {
        int jd = i - (k - nn);
        if (jd < 0 ? p->dims[i] != 1 : p->dims[i] != dims[jd]) return false;
    }
    return true;
}

kiln_status cpu_layernorm_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0), *s = ops_input(c, 1), *b = ops_input(c, 2);
    if (!x || !s || x->dtype != KILN_DTYPE_FLOAT || x->ndim == 0) return ops_run_reference(c);
    if (ops_has_input(c, 2) && !b) return ops_run_reference(c);
    for (int o = 1; o < ops_n_outputs(c); o++)
        if (ops_has_output(c, o)) return ops_run_reference(c);
    int64_t axis = ops_axis(ops_attr_int(c, "axis", -1), x->ndim);
    if (axis < 0) return ops_run_reference(c);
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= x->dims[i];
    for (int i = (int)axis; i < x->ndim; i++) inner *= x->dims[i];
    int nn = x->ndim - (int)axis;
    bool s_one = false, b_one = false;
    if (!ln_param(s, nn, x->dims + axis, inner, &s_one)) return ops_run_reference(c);
    if (b && !ln_param(b, nn, x->dims + axis, inner, &b_one)) return ops_run_reference(c);
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_FLOAT, x->ndim, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    ln_job j = {cpu_misc_ukernels_get(), inner, ops_attr_float(c, "epsilon", 1e-5f), x->data, s->data,
                b ? b->data : NULL, s_one, b_one, y->data};
    cpu_misc_parallel(ops_threadpool(c), outer, 8192 / inner + 1, ln_tile, &j);
    return KILN_OK;
}
