/* test_winograd_nhwc.c — the NHWC Winograd convolution (src/cpu/winograd_nhwc.c,
 * F(2x2, 3x3), F(4x4, 3x3) and F(6x6, 3x3)) against a naive NHWC direct convolution written here (double
 * accumulation), over edge shapes (1x1 to 30x30 images, 1..3, 16, 17, 33, 64 channels,
 * symmetric / asymmetric / no / large pads, batch 2), pixel strides larger than the channel
 * count (untouched lanes checked), bias, residual (also in place, resid == y), every
 * activation, every ISA of this CPU, 1, 2 and 3 threads, with and without the weight cache.
 *
 * Tolerance: |got - want| <= rtol * (sum of |terms| + |want|) + 1e-6, where the terms are
 * the products x*w plus bias and residual. Winograd's transforms add and subtract scaled
 * copies of the terms, so its error grows with their magnitude rather than with the result:
 * F(2x2) (transform entries 0, +-1, +-1/2: little cancellation) measures ~1.3e-7 of that
 * scale, like a plain FP32 sum (rtol 1e-5), and must not do worse than F(4x4);
 * F(4x4) ~1e-6..1e-5 (rtol 1e-4), F(6x6) ~1e-5..1e-4 (rtol 1e-3).
 * Prints the worst ratio per tile size and "N passed, M failed". */
#include "cpu/nhwc.h"
#include "cpu/ukernels/f32-wino-nhwc/wino-nhwc.h"
#include "core/threadpool.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;
static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double worst_ratio[7]; /* by output tile size */
#define RTOL2 1e-5

static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) & 0xFFFFFF) / (float)0x1000000 * 2.0f - 1.0f;
}

static float *rand_buf(size_t n, float scale)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = frand() * scale;
    return p;
}

static void check(bool ok, const char *what)
{
    if (ok) passed++;
    else {
        failed++;
        printf("FAIL %s\n", what);
    }
}

static const cpu_act acts[] = {CPU_ACT_NONE, CPU_ACT_RELU, CPU_ACT_CLIP, CPU_ACT_LEAKY,
                               CPU_ACT_SIGMOID, CPU_ACT_SILU, CPU_ACT_HARDSWISH, CPU_ACT_GELU,
                               CPU_ACT_GELU_TANH};
#define N_ACTS (int)(sizeof acts / sizeof acts[0])

typedef struct tcase {
    int64_t N, C, H, W, M, PT, PL, PB, PR;
    int64_t xpad, ypad, rpad; /* pixel stride - channel count */
    int bias, resid;          /* resid: 0 none, 1 separate, 2 in place (resid == y) */
    int act;
} tcase;

static cpu_conv2d geom_of(const tcase *c)
{
    cpu_conv2d g;
    memset(&g, 0, sizeof g);
    g.N = c->N;
    g.C = c->C;
    g.H = c->H;
    g.W = c->W;
    g.M = c->M;
    g.OH = c->H + c->PT + c->PB - 2;
    g.OW = c->W + c->PL + c->PR - 2;
    g.G = 1;
    g.KH = g.KW = 3;
    g.SH = g.SW = g.DH = g.DW = 1;
    g.PT = c->PT;
    g.PL = c->PL;
    return g;
}

static void run_case(const tcase *tc, core_threadpool *pool2, core_threadpool *pool3)
{
    const cpu_conv2d g = geom_of(tc);
    const int64_t N = g.N, C = g.C, H = g.H, W = g.W, M = g.M, OH = g.OH, OW = g.OW;
    const int64_t xs = C + tc->xpad, ys = M + tc->ypad, rs = tc->resid == 2 ? ys : M + tc->rpad;
    const size_t npix = (size_t)(N * OH * OW);
    /* realistic magnitudes: activations ~U(-1, 1), weights ~ 1/sqrt(9 C) */
    float *x = rand_buf((size_t)(N * H * W * xs), 1.0f);
    float *w = rand_buf((size_t)(M * C * 9), (float)(1.0 / sqrt(9.0 * (double)C)));
    float *bias = tc->bias ? rand_buf((size_t)M, 0.5f) : NULL;
    float *resid = tc->resid ? rand_buf(npix * (size_t)rs, 1.0f) : NULL;
    float *y = malloc(npix * (size_t)ys * sizeof(float));
    double *want = malloc(npix * (size_t)M * sizeof(double)), *mag = malloc(npix * (size_t)M * sizeof(double));
    cpu_epilogue ep = cpu_epilogue_none();
    ep.act = acts[tc->act % N_ACTS];
    ep.act_a = ep.act == CPU_ACT_CLIP ? -0.5f : (ep.act == CPU_ACT_LEAKY ? 0.1f : 0.0f);
    ep.act_b = ep.act == CPU_ACT_CLIP ? 0.75f : 0.0f;

    for (int64_t n = 0; n < N; n++)
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++)
                for (int64_t m = 0; m < M; m++) {
                    double s = 0, a = 0;
                    for (int64_t ky = 0; ky < 3; ky++) {
                        int64_t iy = oy - g.PT + ky;
                        if (iy < 0 || iy >= H) continue;
                        for (int64_t kx = 0; kx < 3; kx++) {
                            int64_t ix = ox - g.PL + kx;
                            if (ix < 0 || ix >= W) continue;
                            const float *xp = x + ((n * H + iy) * W + ix) * xs;
                            for (int64_t c = 0; c < C; c++) {
                                double t = (double)xp[c] * (double)w[((m * C + c) * 3 + ky) * 3 + kx];
                                s += t;
                                a += fabs(t);
                            }
                        }
                    }
                    size_t pix = (size_t)((n * OH + oy) * OW + ox);
                    if (bias) {
                        s += bias[m];
                        a += fabs(bias[m]);
                    }
                    if (resid) {
                        s += resid[pix * (size_t)rs + (size_t)m];
                        a += fabs(resid[pix * (size_t)rs + (size_t)m]);
                    }
                    want[pix * (size_t)M + (size_t)m] = cpu_act_scalar((float)s, ep.act, ep.act_a, ep.act_b);
                    mag[pix * (size_t)M + (size_t)m] = a;
                }

    const float sentinel = 12345.0f;
    for (int tile = 2; tile <= 6; tile += 2)
        for (int th = 1; th <= 3; th++)
            for (int cached = 0; cached <= 1; cached++) {
                if (cached && th != 2 && tile == 6) continue;
                for (size_t i = 0; i < npix * (size_t)ys; i++) y[i] = sentinel;
                const float *r = resid;
                if (tc->resid == 2) { /* in place: y starts as the residual */
                    for (size_t i = 0; i < npix * (size_t)ys; i++)
                        if ((int64_t)(i % (size_t)ys) < M) y[i] = resid[i];
                    r = y;
                }
                kiln_status st = cpu_wino_nhwc_conv_f32(&g, x, xs, w, bias, r, rs, y, ys, &ep, cached,
                                                        th == 3 ? pool3 : th == 2 ? pool2 : NULL, tile);
                double rtol = tile == 2 ? RTOL2 : tile == 4 ? 1e-4 : 1e-3, worst = 0;
                bool ok = st == KILN_OK, lanes_ok = true;
                for (size_t p = 0; p < npix && ok; p++) {
                    for (int64_t m = 0; m < ys; m++) {
                        float got = y[p * (size_t)ys + (size_t)m];
                        if (m >= M) {
                            if (got != sentinel) lanes_ok = false;
                            continue;
                        }
                        double wv = want[p * (size_t)M + (size_t)m], sc = mag[p * (size_t)M + (size_t)m] + fabs(wv);
                        double err = fabs((double)got - wv);
                        if (!(err <= rtol * sc + 1e-6)) ok = false;
                        double ratio = err / (sc + 1e-6);
                        if (!(ratio <= worst)) worst = ratio;
                    }
                }
                if (worst > worst_ratio[tile]) worst_ratio[tile] = worst;
                char what[256];
                snprintf(what, sizeof what,
                         "wino F(%dx%d) %s N%lld C%lld %lldx%lld M%lld pads %lld,%lld,%lld,%lld xs+%lld ys+%lld "
                         "bias %d resid %d act %d threads %d cache %d: st %d worst %.3g lanes %d",
                         tile, tile, cpu_ukernels_get()->isa, (long long)N, (long long)C, (long long)H,
                         (long long)W, (long long)M, (long long)tc->PT, (long long)tc->PL, (long long)tc->PB,
                         (long long)tc->PR, (long long)tc->xpad, (long long)tc->ypad, tc->bias, tc->resid,
                         (int)ep.act, th, cached, (int)st, worst, (int)lanes_ok);
                check(ok && lanes_ok, what);
            }
    free(x);
    free(w);
    free(bias);
    free(resid);
    free(y);
    free(want);
    free(mag);
}

static void test_shapes(core_threadpool *pool2, core_threadpool *pool3)
{
    static const tcase cases[] = {
        /* N  C   H   W   M  PT PL PB PR xpad ypad rpad bias resid act */
        {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0},
        {1, 2, 2, 2, 3, 1, 1, 1, 1, 1, 2, 0, 1, 1, 1},
        {2, 3, 3, 5, 2, 1, 1, 1, 1, 0, 0, 3, 1, 1, 2},
        {1, 16, 5, 7, 17, 0, 0, 0, 0, 0, 0, 0, 1, 0, 3},
        {2, 17, 7, 8, 16, 1, 1, 1, 1, 3, 5, 1, 1, 1, 4},
        {1, 33, 13, 13, 33, 0, 1, 2, 1, 0, 0, 0, 0, 2, 5},
        {1, 64, 14, 14, 64, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1},
        {2, 16, 8, 8, 33, 1, 0, 0, 1, 16, 7, 0, 1, 2, 6},
        {1, 3, 13, 14, 64, 2, 2, 2, 2, 1, 0, 0, 1, 0, 7},
        {1, 20, 3, 40, 24, 1, 1, 1, 1, 0, 8, 0, 0, 1, 8},
        {1, 64, 30, 29, 40, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1},
        {2, 33, 7, 7, 65, 1, 1, 1, 1, 0, 0, 0, 1, 1, 0},
        {1, 1, 13, 13, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2},
        {1, 2, 56, 3, 2, 1, 1, 1, 1, 0, 0, 0, 1, 0, 1},
        {2, 17, 40, 44, 20, 1, 1, 1, 1, 0, 0, 0, 1, 1, 3}, /* 3 tile blocks: channel split too */
        {1, 3, 3, 3, 5, 1, 1, 1, 1, 2, 1, 0, 1, 1, 1},
        {1, 2, 3, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},    /* 1x1 output */
        {2, 1, 2, 2, 17, 0, 1, 1, 0, 0, 0, 0, 1, 0, 4},
        {1, 48, 14, 14, 96, 1, 1, 1, 1, 0, 0, 0, 1, 2, 1}, /* r50-like: 49 F(2x2) tiles */
        {1, 40, 7, 7, 72, 1, 1, 1, 1, 8, 3, 5, 1, 1, 5},
        /* U panels > 512 KB (AVX-512), so the GEMMs run x outside groups of row panels:
         * F(2x2) and F(4x4) in one group, F(6x6) 160 tiles in blocks of 80 over groups of
         * 56 + 24 rows */
        {1, 264, 6, 7, 20, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1},
        {1, 136, 9, 11, 40, 1, 0, 1, 2, 0, 3, 0, 1, 2, 0},
        {2, 96, 58, 46, 33, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], pool2, pool3);
}

/* Geometries outside the contract: UNSUPPORTED, never a crash. */
static void test_unsupported(void)
{
    tcase tc = {1, 8, 6, 6, 8, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
    cpu_conv2d g = geom_of(&tc);
    float x[6 * 6 * 8] = {0}, w[8 * 8 * 9] = {0}, y[6 * 6 * 8];
    check(cpu_conv2d_nhwc_winograd_eligible(&g), "eligible 3x3 s1");
    cpu_conv2d b = g;
    b.SH = 2;
    check(!cpu_conv2d_nhwc_winograd_eligible(&b) &&
              cpu_conv2d_nhwc_winograd_f32(&b, x, 8, w, NULL, NULL, 0, y, 8, NULL, false, NULL) ==
                  KILN_ERR_UNSUPPORTED,
          "stride 2 unsupported");
    b = g;
    b.G = 2;
    check(cpu_conv2d_nhwc_winograd_f32(&b, x, 8, w, NULL, NULL, 0, y, 8, NULL, false, NULL) ==
              KILN_ERR_UNSUPPORTED,
          "groups unsupported");
    b = g;
    b.KH = 5;
    check(cpu_conv2d_nhwc_winograd_f32(&b, x, 8, w, NULL, NULL, 0, y, 8, NULL, false, NULL) ==
              KILN_ERR_UNSUPPORTED,
          "5x5 unsupported");
    b = g;
    b.DW = 2;
    check(!cpu_conv2d_nhwc_winograd_eligible(&b), "dilation not eligible");
    check(cpu_conv2d_nhwc_winograd_f32(&g, x, 7, w, NULL, NULL, 0, y, 8, NULL, false, NULL) ==
              KILN_ERR_UNSUPPORTED,
          "xs < C unsupported");
    check(cpu_conv2d_nhwc_winograd_f32(&g, x, 8, w, NULL, y, 4, y, 8, NULL, false, NULL) ==
              KILN_ERR_UNSUPPORTED,
          "rs < M unsupported");
    b = g;
    b.OH = 0;
    check(!cpu_conv2d_nhwc_winograd_eligible(&b), "empty output not eligible");
    /* the algorithm choice (measured, see winograd_nhwc.c): Winograd on ResNet-50's 56x56
     * and 14x14 layers with every ISA, on its 7x7 ones without AVX-512 (with it: a tie in the
     * whole model, left to the indirect GEMM), the indirect GEMM on a 4x4 image (4 tiles) */
    tcase r1 = {1, 64, 56, 56, 64, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
    tcase r3 = {1, 256, 14, 14, 256, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
    tcase r4 = {1, 512, 7, 7, 512, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
    tcase r5 = {1, 512, 4, 4, 512, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0};
    cpu_conv2d g1 = geom_of(&r1), g3 = geom_of(&r3), g4 = geom_of(&r4), g5 = geom_of(&r5);
    bool wide = cpu_ukernels_get()->gemm_nr >= 32;
    check(cpu_conv2d_nhwc_winograd_preferred(&g1) && cpu_conv2d_nhwc_winograd_preferred(&g3) &&
              cpu_conv2d_nhwc_winograd_preferred(&g4) == !wide && !cpu_conv2d_nhwc_winograd_preferred(&g5),
          "winograd preferred on 56x56, 14x14 (and 7x7 without AVX-512), not on 4x4");
    /* the default entry point works too (algo pick) */
    check(cpu_conv2d_nhwc_winograd_f32(&g, x, 8, w, NULL, NULL, 0, y, 8, NULL, false, NULL) == KILN_OK,
          "default entry point");
}

int main(void)
{
    core_threadpool *pool2 = core_threadpool_create(2), *pool3 = core_threadpool_create(3);
    int n_isa = 0;
    const char *const *isas = cpu_ukernels_isas(&n_isa);
    for (int isa = 0; isa < n_isa; isa++) {
        if (!cpu_ukernels_force_isa(isas[isa])) {
            check(false, "cpu_ukernels_force_isa refused a listed ISA");
            continue;
        }
        worst_ratio[2] = worst_ratio[4] = worst_ratio[6] = 0;
        test_shapes(pool2, pool3);
        test_unsupported();
        printf("ISA %s: worst |err| / (sum |terms| + |y|): F(2x2) %.3g, F(4x4) %.3g, F(6x6) %.3g\n",
               cpu_ukernels_get()->isa, worst_ratio[2], worst_ratio[4], worst_ratio[6]);
        check(worst_ratio[2] <= worst_ratio[4], "F(2x2) no less accurate than F(4x4)");
    }
    cpu_ukernels_force_isa(NULL);
    cpu_cache_clear();
    core_threadpool_destroy(pool2);
    core_threadpool_destroy(pool3);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
