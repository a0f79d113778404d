/* test_nhwc_dw_pool.c — the NHWC depthwise convolution and pooling kernels (src/cpu/
 * dwconv_nhwc.c, pool_nhwc.c) against naive loops over edge geometries, on every microkernel
 * ISA this CPU has and with 1 and 2 threads; and the NHWC fast paths of Resize, Concat and
 * broadcast binary ops against the reference kernels on one-node models built in memory.
 * Prints "N passed, M failed". */
#include "core/threadpool.h"
#include "cpu/cpu.h"
#include "cpu/nhwc.h"
#include "onnx/onnx.h"
#include "ops/ops.h"
#include "opt/opt.h"
#include "runtime/runtime.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void check(bool ok, const char *what)
{
    if (ok) passed++;
    else {
        failed++;
        printf("FAIL %s\n", what);
    }
}

/* ---- depthwise convolution ---------------------------------------------------------------- */

typedef struct dw_case {
    int64_t N, C, H, W, KH, KW, SH, SW, DH, DW, PT, PL, PB, PR;
    int64_t xpad, ypad, rpad; /* pixel stride - C */
    int resid;                /* 0 none, 1 separate, 2 resid == y */
    cpu_act act;
    bool bias;
} dw_case;

static const char *act_name(cpu_act a)
{
    static const char *n[] = {"none", "relu", "clip", "leaky", "sigmoid", "silu", "hardswish", "gelu", "gelu_tanh"};
    return n[a];
}

static void dw_case_run(const dw_case *k, core_threadpool *pool2)
{
    const int64_t C = k->C;
    const int64_t OH = (k->H + k->PT + k->PB - ((k->KH - 1) * k->DH + 1)) / k->SH + 1;
    const int64_t OW = (k->W + k->PL + k->PR - ((k->KW - 1) * k->DW + 1)) / k->SW + 1;
    if (OH < 1 || OW < 1) return;
    const int64_t xs = C + k->xpad, ys = C + k->ypad, rs = k->resid == 2 ? ys : C + k->rpad;
    const size_t nx = (size_t)(k->N * k->H * k->W * xs), ny = (size_t)(k->N * OH * OW * ys);
    const size_t nr = (size_t)(k->N * OH * OW * rs);
    float *x = malloc(nx * 4 + 4), *w = malloc((size_t)(C * k->KH * k->KW) * 4), *b = malloc((size_t)C * 4);
    float *r = malloc(nr * 4 + 4), *want = malloc(ny * 4 + 4), *y = malloc(ny * 4 + 4);
    for (size_t i = 0; i < nx; i++) x[i] = frand();
    for (int64_t i = 0; i < C * k->KH * k->KW; i++) w[i] = frand();
    for (int64_t i = 0; i < C; i++) b[i] = frand();
    for (size_t i = 0; i < nr; i++) r[i] = frand();
    float *mag = malloc(ny * 4 + 4);
    /* the naive loop (sentinel 7 outside the channel slice) */
    const float *rin = k->resid == 1 ? r : NULL;
    for (size_t i = 0; i < ny; i++) want[i] = 7.0f, mag[i] = 0;
    for (int64_t n = 0; n < k->N; n++)
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++)
                for (int64_t c = 0; c < C; c++) {
                    double s = k->bias ? b[c] : 0.0, m = fabs(s);
                    for (int64_t ky = 0; ky < k->KH; ky++)
                        for (int64_t kx = 0; kx < k->KW; kx++) {
                            int64_t iy = oy * k->SH - k->PT + ky * k->DH, ix = ox * k->SW - k->PL + kx * k->DW;
                            if (iy < 0 || iy >= k->H || ix < 0 || ix >= k->W) continue;
                            double t = (double)x[((n * k->H + iy) * k->W + ix) * xs + c] *
                                       w[(c * k->KH + ky) * k->KW + kx];
                            s += t;
                            m += fabs(t);
                        }
                    int64_t o = ((n * OH + oy) * OW + ox) * ys + c;
                    if (k->resid) {
                        /* resid == y: the y buffer is pre-filled with r's values below */
                        double rv = k->resid == 1 ? rin[((n * OH + oy) * OW + ox) * rs + c] : r[o];
                        s += rv;
                        m += fabs(rv);
                    }
                    want[o] = cpu_act_scalar((float)s, k->act, 0.1f, 0.6f);
                    if (k->act == CPU_ACT_CLIP) want[o] = cpu_act_scalar((float)s, k->act, -0.3f, 0.6f);
                    mag[o] = (float)m;
                }
    int n_isa = 0;
    const char *const *isas = cpu_ukernels_isas(&n_isa);
    for (int isa = 0; isa < n_isa; isa++) {
        cpu_ukernels_force_isa(isas[isa]);
        for (int th = 0; th < 2; th++)
            for (int cache = 0; cache < 2; cache++) {
                for (size_t i = 0; i < ny; i++) y[i] = k->resid == 2 ? r[i] : 7.0f;
                if (k->resid == 2)
                    for (size_t i = 0; i < ny; i++)
                        if ((int64_t)(i % (size_t)ys) >= C) y[i] = 7.0f;
                cpu_conv2d g = {k->N, C, k->H, k->W, C, OH, OW, C, k->KH, k->KW, k->SH, k->SW, k->DH, k->DW, k->PT, k->PL};
                cpu_epilogue ep = cpu_epilogue_none();
                ep.act = k->act;
                ep.act_a = k->act == CPU_ACT_CLIP ? -0.3f : 0.1f;
                ep.act_b = 0.6f;
                const float *rp = k->resid == 1 ? r : k->resid == 2 ? y : NULL;
                kiln_status st = cpu_dwconv2d_nhwc_f32(&g, x, xs, w, k->bias ? b : NULL, rp, rs, y, ys, &ep,
                                                       cache != 0, th ? pool2 : NULL);
                char what[512];
                snprintf(what, sizeof what,
                         "dw [%s, %d thr, cache %d] N%lld C%lld %lldx%lld k%lldx%lld s%lld,%lld d%lld,%lld "
                         "p%lld,%lld,%lld,%lld xs+%lld ys+%lld resid %d act %s bias %d",
                         cpu_ukernels_get()->isa, th + 1, cache, (long long)k->N, (long long)C, (long long)k->H,
                         (long long)k->W, (long long)k->KH, (long long)k->KW, (long long)k->SH, (long long)k->SW,
                         (long long)k->DH, (long long)k->DW, (long long)k->PT, (long long)k->PL, (long long)k->PB,
                         (long long)k->PR, (long long)k->xpad, (long long)k->ypad, k->resid, act_name(k->act),
                         k->bias);
                bool ok = st == KILN_OK;
                size_t bad = 0;
                for (size_t i = 0; ok && i < ny; i++) {
                    double tol = 2e-5 * mag[i] + 2e-5 * fabs(want[i]) + 1e-6;
                    if (!(fabs((double)y[i] - want[i]) <= tol)) {
                        ok = false;
                        bad = i;
                    }
                }
                if (!ok && st == KILN_OK)
                    printf("  element %zu (pixel %zu, c %zu): want %.8g got %.8g\n", bad, bad / (size_t)ys,
                           bad % (size_t)ys, want[bad], y[bad]);
                check(ok, what);
            }
    }
    cpu_ukernels_force_isa(NULL);
    free(x);
    free(w);
    free(b);
    free(r);
    free(want);
    free(y);
    free(mag);
}

static void test_dwconv(core_threadpool *pool2)
{
    static const int64_t chans[] = {1, 2, 3, 15, 16, 17, 33};
    /* a sweep over channel counts and kernel/stride/pad shapes */
    for (size_t ci = 0; ci < sizeof chans / sizeof chans[0]; ci++) {
        int64_t C = chans[ci];
        dw_case cs[] = {
            {1, C, 7, 9, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, CPU_ACT_NONE, true},
            {1, C, 8, 11, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, CPU_ACT_RELU, true},
            {2, C, 9, 9, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0, CPU_ACT_SILU, true},
            {1, C, 10, 7, 5, 5, 2, 2, 1, 1, 1, 2, 2, 1, 0, 0, 0, 0, CPU_ACT_NONE, false},
            {1, C, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, CPU_ACT_NONE, true},
            {1, C, 6, 13, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 3, 5, 2, 1, CPU_ACT_CLIP, true},
            {2, C, 5, 6, 3, 2, 1, 2, 1, 1, 0, 1, 2, 0, 0, 0, 0, 0, CPU_ACT_HARDSWISH, true},
        };
        for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) dw_case_run(&cs[i], pool2);
    }
    /* other shapes: strides, pixel strides, in-place residual, every activation, big planes */
    dw_case more[] = {
        {1, 32, 20, 24, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 2, CPU_ACT_RELU, true},
        {1, 40, 15, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 8, 24, 0, 2, CPU_ACT_NONE, true},
        {1, 24, 17, 16, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, CPU_ACT_CLIP, true},
        {2, 19, 12, 12, 5, 5, 2, 2, 1, 1, 1, 1, 2, 2, 1, 3, 5, 1, CPU_ACT_SIGMOID, true},
        {1, 48, 14, 14, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0, CPU_ACT_GELU, true},
        {1, 20, 9, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, CPU_ACT_GELU_TANH, true},
        {1, 20, 9, 10, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, CPU_ACT_LEAKY, false},
        {1, 17, 11, 12, 7, 7, 1, 1, 1, 1, 3, 3, 3, 3, 0, 0, 0, 0, CPU_ACT_NONE, true},
        {1, 17, 11, 12, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, CPU_ACT_NONE, true},
        {1, 17, 8, 8, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, CPU_ACT_NONE, true},
        {1, 16, 4, 4, 3, 3, 1, 1, 1, 1, 3, 3, 3, 3, 0, 0, 0, 0, CPU_ACT_NONE, true},  /* pads > kernel reach */
        {1, 16, 2, 3, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0, CPU_ACT_NONE, true},  /* kernel > image */
        {1, 33, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, CPU_ACT_RELU, true},  /* few rows: split */
        {1, 144, 7, 7, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0, 0, CPU_ACT_SILU, true},
        {2, 96, 16, 16, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, CPU_ACT_CLIP, true},
        {1, 37, 23, 21, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 11, 5, 0, 2, CPU_ACT_RELU, true},
    };
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) dw_case_run(&more[i], pool2);
    /* geometries the kernel declines */
    cpu_conv2d bad = {1, 4, 5, 5, 8, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1};
    check(!cpu_conv2d_nhwc_dw_eligible(&bad), "dw eligible: M != C");
    cpu_conv2d bad2 = {1, 4, 5, 5, 4, 5, 5, 4, 3, 3, 0, 1, 1, 1, 1, 1};
    float dummy[1024] = {0};
    check(cpu_dwconv2d_nhwc_f32(&bad2, dummy, 4, dummy, NULL, NULL, 4, dummy, 4, NULL, false, NULL) ==
              KILN_ERR_UNSUPPORTED, "dw: stride 0 unsupported");
    cpu_conv2d okg = {1, 4, 5, 5, 4, 5, 5, 4, 3, 3, 1, 1, 1, 1, 1, 1};
    check(cpu_dwconv2d_nhwc_f32(&okg, dummy, 3, dummy, NULL, NULL, 4, dummy, 4, NULL, false, NULL) ==
              KILN_ERR_UNSUPPORTED, "dw: xs < C unsupported");
}

/* ---- pooling -------------------------------------------------------------------------------- */

static void pool_case_run(const cpu_pool2d *g0, int kind, bool incl, core_threadpool *pool2)
{
    cpu_pool2d g = *g0;
    g.OH = (g.H + g.PT + g.PB - ((g.KH - 1) * g.DH + 1)) / g.SH + 1;
    g.OW = (g.W + g.PL + g.PR - ((g.KW - 1) * g.DW + 1)) / g.SW + 1;
    if (g.OH < 1 || g.OW < 1) return;
    size_t nx = (size_t)(g.N * g.H * g.W * g.C), ny = (size_t)(g.N * g.OH * g.OW * g.C);
    float *x = malloc(nx * 4 + 4), *want = malloc(ny * 4 + 4), *y = malloc(ny * 4 + 4);
    for (size_t i = 0; i < nx; i++) x[i] = frand();
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t oy = 0; oy < g.OH; oy++)
            for (int64_t ox = 0; ox < g.OW; ox++)
                for (int64_t c = 0; c < g.C; c++) {
                    double acc = kind == CPU_POOL_MAX ? -INFINITY : 0.0;
                    int64_t cnt = 0, cpy = 0, cpx = 0;
                    for (int64_t ky = 0; ky < g.KH; ky++) {
                        int64_t iy = oy * g.SH - g.PT + ky * g.DH;
                        if (iy < g.H + g.PB) cpy++;
                    }
                    for (int64_t kx = 0; kx < g.KW; kx++) {
                        int64_t ix = ox * g.SW - g.PL + kx * g.DW;
                        if (ix < g.W + g.PR) cpx++;
                    }
                    for (int64_t ky = 0; ky < g.KH; ky++)
                        for (int64_t kx = 0; kx < g.KW; kx++) {
                            int64_t iy = oy * g.SH - g.PT + ky * g.DH, ix = ox * g.SW - g.PL + kx * g.DW;
                            if (iy < 0 || iy >= g.H || ix < 0 || ix >= g.W) continue;
                            double v = x[((n * g.H + iy) * g.W + ix) * g.C + c];
                            if (kind == CPU_POOL_MAX) acc = v > acc ? v : acc;
                            else acc += v;
                            cnt++;
                        }
                    if (kind == CPU_POOL_AVG) {
                        int64_t d = incl ? cpy * cpx : cnt;
                        acc = d ? acc / (double)d : 0.0;
                    } else if (!cnt) {
                        acc = 0.0;
                    }
                    want[((n * g.OH + oy) * g.OW + ox) * g.C + c] = (float)acc;
                }
    int n_isa = 0;
    const char *const *isas = cpu_ukernels_isas(&n_isa);
    for (int isa = 0; isa < n_isa; isa++) {
        cpu_ukernels_force_isa(isas[isa]);
        for (int th = 0; th < 2; th++) {
            for (size_t i = 0; i < ny; i++) y[i] = 7.0f;
            kiln_status st = cpu_pool2d_nhwc_f32(&g, kind, incl, x, y, th ? pool2 : NULL);
            bool ok = st == KILN_OK;
            for (size_t i = 0; ok && i < ny; i++) ok = fabs((double)y[i] - want[i]) <= 1e-5 * (1 + fabs(want[i]));
            char what[256];
            snprintf(what, sizeof what, "pool %s%s [%s, %d thr] N%lld C%lld %lldx%lld k%lldx%lld s%lld,%lld d%lld,%lld p%lld,%lld,%lld,%lld",
                     kind == CPU_POOL_MAX ? "max" : "avg", incl ? " incl" : "", cpu_ukernels_get()->isa, th + 1,
                     (long long)g.N, (long long)g.C, (long long)g.H, (long long)g.W, (long long)g.KH, (long long)g.KW,
                     (long long)g.SH, (long long)g.SW, (long long)g.DH, (long long)g.DW, (long long)g.PT,
                     (long long)g.PL, (long long)g.PB, (long long)g.PR);
            check(ok, what);
        }
    }
    cpu_ukernels_force_isa(NULL);
    free(x);
    free(want);
    free(y);
}

static void global_case_run(int kind, int64_t N, int64_t HW, int64_t C, core_threadpool *pool2)
{
    size_t nx = (size_t)(N * HW * C);
    float *x = malloc(nx * 4 + 4), *want = malloc((size_t)(N * C) * 4 + 4), *y = malloc((size_t)(N * C) * 4 + 4);
    for (size_t i = 0; i < nx; i++) x[i] = frand();
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            double acc = kind == CPU_POOL_MAX ? -INFINITY : 0.0;
            for (int64_t p = 0; p < HW; p++) {
                double v = x[(n * HW + p) * C + c];
                if (kind == CPU_POOL_MAX) acc = v > acc ? v : acc;
                else acc += v;
            }
            want[n * C + c] = (float)(kind == CPU_POOL_MAX ? acc : acc / (double)HW);
        }
    int n_isa = 0;
    const char *const *isas = cpu_ukernels_isas(&n_isa);
    for (int isa = 0; isa < n_isa; isa++) {
        cpu_ukernels_force_isa(isas[isa]);
        for (int th = 0; th < 2; th++) {
            kiln_status st = cpu_global_pool_nhwc_f32(kind, N, HW, C, x, y, th ? pool2 : NULL);
            bool ok = st == KILN_OK;
            for (int64_t i = 0; ok && i < N * C; i++) ok = fabs((double)y[i] - want[i]) <= 1e-6 * (1 + fabs(want[i]));
            char what[160];
            snprintf(what, sizeof what, "global %s [%s, %d thr] N%lld HW%lld C%lld", kind == CPU_POOL_MAX ? "max" : "mean",
                     cpu_ukernels_get()->isa, th + 1, (long long)N, (long long)HW, (long long)C);
            check(ok, what);
        }
    }
    cpu_ukernels_force_isa(NULL);
    free(x);
    free(want);
    free(y);
}

static void test_pool(core_threadpool *pool2)
{
    static const int64_t chans[] = {1, 2, 3, 15, 16, 17, 33};
    for (size_t ci = 0; ci < sizeof chans / sizeof chans[0]; ci++) {
        int64_t C = chans[ci];
        /* N C H W OH OW KH KW SH SW DH DW PT PL PB PR */
        cpu_pool2d gs[] = {
            {1, C, 7, 9, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
            {2, C, 8, 11, 0, 0, 2, 2, 2, 2, 1, 1, 0, 0, 0, 1},
            {1, C, 9, 9, 0, 0, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2},
            {1, C, 1, 1, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
            {1, C, 10, 7, 0, 0, 3, 2, 2, 1, 2, 2, 1, 0, 2, 1},
            {1, C, 6, 6, 0, 0, 3, 3, 3, 3, 1, 1, 0, 0, 2, 2},
        };
        for (size_t i = 0; i < sizeof gs / sizeof gs[0]; i++)
            for (int kind = 0; kind < 2; kind++)
                for (int incl = 0; incl < (kind == CPU_POOL_AVG ? 2 : 1); incl++) pool_case_run(&gs[i], kind, incl, pool2);
        for (int kind = 0; kind < 2; kind++) {
            global_case_run(kind, 1, 1, C, pool2);
            global_case_run(kind, 2, 13, C, pool2);
        }
    }
    cpu_pool2d big[] = {
        {1, 256, 20, 20, 0, 0, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2}, /* YOLOv5 SPPF */
        {2, 40, 16, 15, 0, 0, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
        {1, 48, 3, 3, 0, 0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, /* few rows: channel split */
    };
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
        for (int kind = 0; kind < 2; kind++) pool_case_run(&big[i], kind, kind == CPU_POOL_AVG, pool2);
    for (int kind = 0; kind < 2; kind++) {
        global_case_run(kind, 1, 49, 1280, pool2);
        global_case_run(kind, 2, 400, 97, pool2);
    }
    float dummy[16];
    check(cpu_global_pool_nhwc_f32(CPU_POOL_MAX, 1, 0, 3, dummy, dummy, NULL) == KILN_ERR_UNSUPPORTED,
          "global: no pixels unsupported");
}

/* ---- NHWC fast paths of standard ops (Resize, Concat, binary broadcast) --------------------
 * One-node models of tests/data/cpu_misc (make_models.py) fed channels-last shapes; a Resize
 * model's scales initializer is rewritten in place to [1, sh, sw, 1] before preparation. The
 * fast kernels (both ISAs, 1 and 2 threads) are compared with the reference kernels. */

#define MDIR "tests/data/cpu_misc/"

static ir_model *op_load(const char *name, bool fast, const float *scales)
{
    char path[512];
    snprintf(path, sizeof path, MDIR "%s", name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    ir_model *m = NULL;
    kiln_status st = got == (size_t)n ? onnx_model_load_memory(buf, (size_t)n, MDIR, &m) : KILN_ERR_IO;
    free(buf);
    if (st) return NULL;
    if (scales) {
        int v = ir_graph_find_value(m->graph, "scales");
        core_value *cv = v >= 0 ? m->graph->values[v].constant : NULL;
        if (!cv || !cv->tensor || cv->tensor->numel != 4) {
            ir_model_destroy(m);
            return NULL;
        }
        memcpy(cv->tensor->data, scales, 4 * sizeof(float));
    }
    ops_set_fast_kernels(fast);
    st = opt_prepare_model_ex(m, false);
    ops_set_fast_kernels(true);
    if (st) {
        ir_model_destroy(m);
        return NULL;
    }
    return m;
}

static core_value *op_input(int nd, const int64_t *dims)
{
    core_tensor *t = core_tensor_create(KILN_DTYPE_FLOAT, nd, dims);
    for (int64_t i = 0; t && i < t->numel; i++) ((float *)t->data)[i] = frand() * 4.0f;
    return t ? core_value_from_tensor(t) : NULL;
}

/* Runs model `name` (reference vs fast) on float inputs of the given 4-D shapes. atol_rel:
 * allowed error relative to the output's largest magnitude (0: exact). */
static void op_case(const char *name, const float *scales, int n_in, const int64_t (*shapes)[4], double atol_rel,
                    core_threadpool *pool2)
{
    char what[256];
    int len = snprintf(what, sizeof what, "op %s", name);
    if (scales) len += snprintf(what + len, sizeof what - (size_t)len, " scales %g,%g,%g,%g", scales[0], scales[1], scales[2], scales[3]);
    for (int i = 0; i < n_in && len < 200; i++)
        len += snprintf(what + len, sizeof what - (size_t)len, " %lldx%lldx%lldx%lld", (long long)shapes[i][0],
                        (long long)shapes[i][1], (long long)shapes[i][2], (long long)shapes[i][3]);
    ir_model *ref = op_load(name, false, scales), *fast = op_load(name, true, scales);
    core_value *in[4] = {0}, *bind[8] = {0}, *o_ref[1] = {0};
    if (!ref || !fast) {
        check(false, what);
        goto done;
    }
    for (int i = 0; i < n_in; i++) in[i] = op_input(4, shapes[i]);
    const ir_graph *g = ref->graph;
    for (int i = 0, k = 0; i < g->n_inputs && i < 8; i++)
        bind[i] = g->values[g->inputs[i]].constant ? NULL : k < n_in ? in[k++] : NULL;
    if (rt_graph_run(ref->graph, bind, o_ref)) {
        check(false, what);
        goto done;
    }
    const core_tensor *r = o_ref[0]->tensor;
    double mx = 0;
    for (int64_t i = 0; i < r->numel; i++) mx = fmax(mx, fabs(((const float *)r->data)[i]));
    int n_isa = 0;
    const char *const *isas = cpu_ukernels_isas(&n_isa);
    for (int isa = 0; isa < n_isa; isa++) {
        cpu_ukernels_force_isa(isas[isa]);
        for (int th = 0; th < 2; th++) {
            core_value *o[1] = {0};
            bool ok = !rt_graph_run_pool(fast->graph, th ? pool2 : NULL, bind, o);
            const core_tensor *t = ok ? o[0]->tensor : NULL;
            ok = ok && t->ndim == r->ndim && t->numel == r->numel;
            for (int d = 0; ok && d < r->ndim; d++) ok = t->dims[d] == r->dims[d];
            for (int64_t i = 0; ok && i < r->numel; i++) {
                float a = ((const float *)r->data)[i], b = ((const float *)t->data)[i];
                ok = atol_rel == 0 ? a == b : fabs((double)a - b) <= atol_rel * (mx + 1e-30);
            }
            char w2[320];
            snprintf(w2, sizeof w2, "%s [%s, %d thr]", what, cpu_ukernels_get()->isa, th + 1);
            check(ok, w2);
            core_value_release(o[0]);
        }
    }
    cpu_ukernels_force_isa(NULL);
done:
    core_value_release(o_ref[0]);
    for (int i = 0; i < 4; i++) core_value_release(in[i]);
    ir_model_destroy(ref);
    ir_model_destroy(fast);
}

static void test_ops(core_threadpool *pool2)
{
    /* Resize on [N, H, W, C]: every mode/transformation model, scales on axes 1, 2 */
    static const char *rs[] = {"rs_nearest2x.onnx", "rs_nearest_hp.onnx", "rs_nearest_ceil.onnx",
                               "rs_nearest_opset10.onnx", "rs_linear_hp.onnx", "rs_linear_ac.onnx",
                               "rs_linear_pt.onnx", "rs_linear_down.onnx", "rs_linear_sym.onnx"};
    static const float sc[][4] = {{1, 2, 2, 1}, {1, 1.5f, 0.75f, 1}, {1, 3, 2.5f, 1}, {1, 0.5f, 0.6f, 1},
                                  {1, 1, 2, 1}, {1, 1.7f, 1, 1}};
    static const int64_t rsh[][4] = {{1, 1, 1, 1}, {1, 7, 7, 3}, {2, 8, 15, 17}, {1, 5, 6, 33}, {1, 20, 20, 64}};
    for (size_t m = 0; m < sizeof rs / sizeof rs[0]; m++)
        for (size_t s = 0; s < sizeof sc / sizeof sc[0]; s++)
            for (size_t x = 0; x < sizeof rsh / sizeof rsh[0]; x++)
                op_case(rs[m], sc[s], 1, &rsh[x], strstr(rs[m], "linear") ? 1e-6 : 0.0, pool2);
    /* YOLOv5's upsampling */
    static const int64_t yolo[][4] = {{1, 40, 40, 256}, {1, 20, 20, 512}};
    for (int i = 0; i < 2; i++) op_case("rs_nearest2x.onnx", sc[0], 1, &yolo[i], 0.0, pool2);
    /* Concat on the last axis */
    static const int64_t cat[][3][4] = {
        {{1, 5, 7, 1}, {1, 5, 7, 2}, {1, 5, 7, 3}},
        {{2, 3, 4, 16}, {2, 3, 4, 17}, {2, 3, 4, 33}},
        {{1, 20, 20, 128}, {1, 20, 20, 0}, {1, 20, 20, 128}},
        {{1, 40, 40, 64}, {1, 40, 40, 64}, {1, 40, 40, 128}},
    };
    for (size_t i = 0; i < sizeof cat / sizeof cat[0]; i++) op_case("concat_m1.onnx", NULL, 3, cat[i], 0.0, pool2);
    /* channel-vector broadcast, either operand first */
    static const int64_t bin[][2][4] = {
        {{1, 7, 9, 1}, {1, 1, 1, 1}},     {{1, 7, 9, 3}, {1, 1, 1, 3}},     {{1, 1, 1, 17}, {1, 5, 6, 17}},
        {{2, 5, 5, 33}, {2, 1, 1, 33}},   {{2, 1, 1, 33}, {2, 5, 5, 33}},   {{2, 5, 5, 33}, {1, 1, 1, 33}},
        {{1, 56, 56, 144}, {1, 1, 1, 144}}, {{1, 14, 14, 1152}, {1, 1, 1, 1152}}, {{2, 3, 3, 16}, {1, 3, 1, 16}},
    };
    for (size_t i = 0; i < sizeof bin / sizeof bin[0]; i++) {
        op_case("b_mul.onnx", NULL, 2, bin[i], 0.0, pool2);
        op_case("b_add.onnx", NULL, 2, bin[i], 0.0, pool2);
        op_case("b_sub.onnx", NULL, 2, bin[i], 0.0, pool2);
        op_case("b_div.onnx", NULL, 2, bin[i], 0.0, pool2);
    }
}

int main(void)
{
    core_threadpool *pool2 = core_threadpool_create(2);
    test_dwconv(pool2);
    test_pool(pool2);
    test_ops(pool2);
    core_threadpool_destroy(pool2);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
