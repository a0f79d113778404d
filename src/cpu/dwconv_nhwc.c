/* dwconv_nhwc.c — depthwise convolution on NHWC activations (G == C == M): weights repacked
 * once to [KH*KW][C rounded up to 16] (weight cache), the microkernels of
 * ukernels/f32-dwconv-nhwc vectorise over channels; threaded over (image, output row) ranges,
 * one range per pool thread, with the channels split too when there are few rows. */
#include "cpu/nhwc.h"
#include "cpu/ukernels/f32-dwconv-nhwc/dwconv-nhwc.h"
#include <stdlib.h>
#include <string.h>

/* Weight-cache layout kind of the packed depthwise weights (kinds 1-3 belong to the NCHW
 * kernels). */
#define DWN_CACHE_KIND 40

bool cpu_conv2d_nhwc_dw_eligible(const cpu_conv2d *g)
{
    if (!g || g->G != g->C || g->C != g->M || g->C < 1) return false;
    if (g->KH < 1 || g->KW < 1 || g->SH < 1 || g->SW < 1 || g->DH < 1 || g->DW < 1) return false;
    if (g->PT < 0 || g->PL < 0 || g->N < 0 || g->H < 0 || g->W < 0 || g->OH < 0 || g->OW < 0) return false;
    /* keep every index product far from overflow */
    const int64_t big = (int64_t)1 << 31;
    return g->C < big && g->H < big && g->W < big && g->OH < big && g->OW < big && g->KH < 4096 &&
           g->KW < 4096 && g->SH < big && g->SW < big && g->DH < big && g->DW < big && g->PT < big &&
           g->PL < big;
}

typedef struct dwn_pack_ctx {
    const float *w;
    int64_t C, taps, cp;
} dwn_pack_ctx;

/* [C][taps] -> [taps][cp], zero past C. */
static void dwn_pack_build(void *arg, float *dst)
{
    const dwn_pack_ctx *p = arg;
    for (int64_t t = 0; t < p->taps; t++) {
        float *d = dst + t * p->cp;
        for (int64_t c = 0; c < p->C; c++) d[c] = p->w[c * p->taps + t];
        for (int64_t c = p->C; c < p->cp; c++) d[c] = 0.0f;
    }
}

typedef struct dwn_job {
    cpu_f32_dwnhwc_fn uk;
    const cpu_dwnhwc_params *p;
    const float *x, *resid;
    float *y;
    int64_t N, xs_img, ys_img, rs_img; /* floats per image */
    int64_t splits, nblk;              /* channel splits, channel blocks */
} dwn_job;

/* Tasks t = (split * N + n) * OH + oy; consecutive tasks of one (split, image) are one
 * microkernel call. */
static void dwn_task(void *arg, int64_t b, int64_t e)
{
    const dwn_job *j = arg;
    const int64_t OH = j->p->OH;
    while (b < e) {
        int64_t s = b / (j->N * OH), n = (b / OH) % j->N, oy = b % OH;
        int64_t oy1 = OH < oy + (e - b) ? OH : oy + (e - b);
        int64_t c0 = s * j->nblk / j->splits * CPU_DWNHWC_CBLK;
        int64_t c1 = (s + 1) * j->nblk / j->splits * CPU_DWNHWC_CBLK;
        if (c1 > j->p->C) c1 = j->p->C;
        if (c1 > c0)
            j->uk(j->p, j->x + n * j->xs_img, j->resid ? j->resid + n * j->rs_img : NULL,
                  j->y + n * j->ys_img, oy, oy1, c0, c1);
        b += oy1 - oy;
    }
}

static cpu_f32_dwnhwc_fn dwn_ukernel(void)
{
#if defined(__x86_64__) || defined(__i386__)
    const char *isa = cpu_ukernels_get()->isa;
    if (!strcmp(isa, "avx512")) return cpu_f32_dwnhwc__avx512;
    if (!strcmp(isa, "avx2_fma")) return cpu_f32_dwnhwc__avx2_fma;
#endif
    return cpu_f32_dwnhwc__scalar;
}

kiln_status cpu_dwconv2d_nhwc_f32(const cpu_conv2d *g, const float *x, int64_t xs, const float *w,
                                  const float *bias, const float *resid, int64_t rs, float *y,
                                  int64_t ys, const cpu_epilogue *ep, bool cache, core_threadpool *pool)
{
    if (!cpu_conv2d_nhwc_dw_eligible(g)) return KILN_ERR_UNSUPPORTED;
    const int64_t C = g->C;
    if (xs < C || ys < C || (resid && rs < C)) return KILN_ERR_UNSUPPORTED;
    if (g->N == 0 || g->OH == 0 || g->OW == 0) return KILN_OK;
    const int64_t taps = g->KH * g->KW;
    const int64_t cp = (C + CPU_DWNHWC_CBLK - 1) / CPU_DWNHWC_CBLK * CPU_DWNHWC_CBLK;
    const size_t floats = (size_t)(taps * cp);
    dwn_pack_ctx pc = {w, C, taps, cp};
    const float *packed;
    bool owned = false;
    if (cache) {
        int64_t params[3] = {C, g->KH, g->KW};
        packed = cpu_cache_get(w, (size_t)(C * taps), DWN_CACHE_KIND, params, 3, floats, dwn_pack_build, &pc,
                               &owned);
    } else {
        /* weights that are not constants: packed per call into the calling thread's GEMM-B
         * scratch (no GEMM runs inside this call; the workers only read it) */
        float *s = cpu_scratch_floats(CPU_SCRATCH_GEMM_B, floats);
        if (s) dwn_pack_build(&pc, s);
        packed = s;
    }
    if (!packed) return core_oom();

    cpu_dwnhwc_params p;
    memset(&p, 0, sizeof p);
    p.C = C;
    p.H = g->H;
    p.W = g->W;
    p.OH = g->OH;
    p.OW = g->OW;
    p.KH = g->KH;
    p.KW = g->KW;
    p.SH = g->SH;
    p.SW = g->SW;
    p.DH = g->DH;
    p.DW = g->DW;
    p.PT = g->PT;
    p.PL = g->PL;
    p.xs = xs;
    p.ys = ys;
    p.rs = rs;
    p.cp = cp;
    p.w = packed;
    p.bias = bias;
    p.act = ep ? ep->act : CPU_ACT_NONE;
    p.act_a = ep ? ep->act_a : 0.0f;
    p.act_b = ep ? ep->act_b : 0.0f;

    dwn_job j;
    memset(&j, 0, sizeof j);
    j.uk = dwn_ukernel();
    j.p = &p;
    j.x = x;
    j.resid = resid;
    j.y = y;
    j.N = g->N;
    j.xs_img = g->H * g->W * xs;
    j.ys_img = g->OH * g->OW * ys;
    j.rs_img = g->OH * g->OW * rs;
    j.nblk = cp / CPU_DWNHWC_CBLK;
    j.splits = 1;
    const int nt = core_threadpool_size(pool);
    const int64_t rows = g->N * g->OH;
    const double work = (double)rows * (double)g->OW * (double)C * (double)taps;
    if (nt <= 1 || work < 131072.0) {
        dwn_task(&j, 0, rows);
    } else {
        /* few rows: split the channels as well, so every thread gets an even share */
        if (rows < 8 * (int64_t)nt) {
            int64_t s = (8 * (int64_t)nt + rows - 1) / rows;
            j.splits = s < j.nblk ? s : j.nblk;
        }
        int64_t tasks = j.splits * rows;
        core_threadpool_parallel_for(pool, tasks, (tasks + nt - 1) / nt, dwn_task, &j);
    }
    if (owned) free((void *)packed);
    return KILN_OK;
}
