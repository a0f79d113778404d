/* conv.c — FP32 NCHW 2-D convolution on the CPU: 1x1 stride-1 as a direct GEMM on the
 * input planes, general KxK as an implicit-im2col GEMM (B panels packed straight from the
 * input), depthwise through the dwconv microkernels and 3x3 through Winograd (winograd.c).
 * Bias, residual and activation are fused into the GEMM/dwconv epilogues. */
#include "cpu/cpu.h"
#include "cpu/conv_internal.h"
#include <stdlib.h>
#include <string.h>

/* ---- packed weights (cached) --------------------------------------------------------------- */

typedef struct conv_pack_ctx {
    const float *w;
    int64_t G, Mg, K;
} conv_pack_ctx;

static void conv_pack_build(void *arg, float *dst)
{
    const conv_pack_ctx *p = arg;
    size_t per = cpu_sgemm_packed_a_floats(p->Mg, p->K);
    for (int64_t g = 0; g < p->G; g++)
        cpu_sgemm_pack_a_into(p->Mg, p->K, p->w + g * p->Mg * p->K, p->K, 1, dst + (size_t)g * per);
}

/* ---- GEMM path ------------------------------------------------------------------------------ */

static kiln_status conv_gemm(const cpu_conv2d *g, const float *x, const float *w,
                             const float *bias, const float *resid, float *y,
                             const cpu_epilogue *act, bool cache, core_threadpool *pool)
{
    const int64_t Cg = g->C / g->G, Mg = g->M / g->G, K = Cg * g->KH * g->KW;
    const int64_t HW = g->H * g->W, OHW = g->OH * g->OW;
    const float *packed = NULL;
    bool owned = false;
    if (cache) {
        conv_pack_ctx pc = {w, g->G, Mg, K};
        int64_t params[3] = {g->G, Mg, K};
        size_t floats = cpu_sgemm_packed_a_floats(Mg, K) * (size_t)g->G;
        packed = cpu_cache_get(w, (size_t)(g->M * K), 1, params, 3, floats, conv_pack_build, &pc, &owned);
        if (!packed) return core_oom();
    }
    bool pointwise = g->KH == 1 && g->KW == 1 && g->SH == 1 && g->SW == 1 && g->PT == 0 &&
                     g->PL == 0 && g->OH == g->H && g->OW == g->W;
    kiln_status st = KILN_OK;
    for (int64_t n = 0; n < g->N && !st; n++) {
        for (int64_t gi = 0; gi < g->G && !st; gi++) {
            cpu_sgemm_args a;
            memset(&a, 0, sizeof a);
            a.M = Mg;
            a.N = OHW;
            a.K = K;
            if (packed) a.a_packed = packed + (size_t)gi * cpu_sgemm_packed_a_floats(Mg, K);
            a.a = w + gi * Mg * K;
            a.rsa = K;
            a.csa = 1;
            const float *xg = x + (n * g->C + gi * Cg) * HW;
            if (pointwise) {
                a.b_kind = CPU_B_MATRIX;
                a.b = xg;
                a.rsb = HW;
                a.csb = 1;
            } else {
                a.b_kind = CPU_B_IM2COL;
                cpu_im2col *ic = &a.im2col;
                ic->x = xg;
                ic->cstride = HW;
                ic->C = Cg;
                ic->H = g->H;
                ic->W = g->W;
                ic->OH = g->OH;
                ic->OW = g->OW;
                ic->KH = g->KH;
                ic->KW = g->KW;
                ic->SH = g->SH;
                ic->SW = g->SW;
                ic->DH = g->DH;
                ic->DW = g->DW;
                ic->PT = g->PT;
                ic->PL = g->PL;
            }
            int64_t yoff = (n * g->M + gi * Mg) * OHW;
            a.c = y + yoff;
            a.ldc = OHW;
            a.ep = *act;
            a.ep.alpha = 1.0f;
            a.ep.bias = bias ? bias + gi * Mg : NULL;
            a.ep.bias_per_col = 0;
            a.ep.resid = resid ? resid + yoff : NULL;
            a.ep.ld_resid = OHW;
            st = cpu_sgemm(&a, pool);
        }
    }
    if (owned) free((void *)packed);
    return st;
}

/* ---- depthwise ------------------------------------------------------------------------------ */

typedef struct dw_job {
    const cpu_conv2d *g;
    const float *x, *w, *bias, *resid;
    float *y;
    const cpu_epilogue *act;
    cpu_f32_dwconv_ukernel_fn uk;
    cpu_dwconv_params p;
} dw_job;

static void dw_task(void *arg, int64_t begin, int64_t end)
{
    const dw_job *j = arg;
    const int64_t HW = j->g->H * j->g->W, OHW = j->g->OH * j->g->OW, C = j->g->C;
    const int64_t khw = j->g->KH * j->g->KW;
    for (int64_t t = begin; t < end; t++) {
        int64_t c = t % C;
        j->uk(&j->p, j->x + t * HW, j->w + c * khw, j->bias ? j->bias[c] : 0.0f, j->y + t * OHW,
              j->resid ? j->resid + t * OHW : NULL, j->act->act, j->act->act_a, j->act->act_b);
    }
}

static kiln_status conv_dw(const cpu_conv2d *g, const float *x, const float *w,
                           const float *bias, const float *resid, float *y,
                           const cpu_epilogue *act, core_threadpool *pool)
{
    dw_job j = {g, x, w, bias, resid, y, act, cpu_ukernels_get()->f32_dwconv,
                {g->H, g->W, g->OH, g->OW, g->KH, g->KW, g->SH, g->SW, g->DH, g->DW, g->PT, g->PL}};
    int64_t planes = g->N * g->C;
    double work = (double)planes * (double)(g->OH * g->OW) * (double)(g->KH * g->KW);
    if (work < 32768.0 || core_threadpool_size(pool) == 1) dw_task(&j, 0, planes);
    else core_threadpool_parallel_for(pool, planes, 0, dw_task, &j);
    return KILN_OK;
}

/* KILN_CPU_CONV=gemm|dw|winograd forces one algorithm wherever it applies (for testing and
 * measuring; read once). */
int cpu_conv_forced_algo(void)
{
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *e = getenv("KILN_CPU_CONV");
        v = !e ? 0 : !strcmp(e, "gemm") ? CPU_CONV_GEMM : !strcmp(e, "dw") ? CPU_CONV_DW
            : !strcmp(e, "winograd") ? CPU_CONV_WINO : 0;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

bool cpu_conv2d_is_depthwise(const cpu_conv2d *g)
{
    return g->G == g->C && g->G == g->M && g->G > 1;
}

kiln_status cpu_conv2d_f32(const cpu_conv2d *g, const float *x, const float *w,
                           const float *bias, const float *resid, float *y,
                           const cpu_epilogue *act, int algo, bool cache,
                           core_threadpool *pool)
{
    if (g->N <= 0 || g->M <= 0 || g->OH <= 0 || g->OW <= 0) return KILN_OK;
    cpu_epilogue none = cpu_epilogue_none();
    if (!act) act = &none;
    bool dw = cpu_conv2d_is_depthwise(g);
    bool wino = cpu_conv2d_winograd_eligible(g);
    if (algo == CPU_CONV_AUTO) {
        int force = cpu_conv_forced_algo();
        if (force) algo = force;
        else if (dw) algo = CPU_CONV_DW;
        else if (wino && cpu_conv2d_winograd_preferred(g)) algo = CPU_CONV_WINO;
        else algo = CPU_CONV_GEMM;
    }
    if (algo == CPU_CONV_DW && dw) return conv_dw(g, x, w, bias, resid, y, act, pool);
    if (algo == CPU_CONV_WINO && wino)
        return cpu_conv2d_winograd(g, x, w, bias, resid, y, act, cache, pool);
    return conv_gemm(g, x, w, bias, resid, y, act, cache, pool);
}
