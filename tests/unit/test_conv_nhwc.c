/* test_conv_nhwc.c — the NHWC convolution (cpu_conv2d_nhwc_f32, src/cpu/conv_nhwc.c) against
 * a naive NHWC loop written here: algo GEMM (the indirect GEMM) and AUTO, on every ISA this
 * CPU has, over edge shapes (1x1 images, 1..3/17/33/100 channels, groups, depthwise, strides,
 * dilation, asymmetric pads, batch 2, pixel strides > channel counts, in-place residual, the
 * few-channel stems and evenly spaced tiles) and real layer shapes (ResNet-50, YOLOv5s,
 * MobileNetV2), with activations, with and without the weight
 * cache, 1 and 2 threads. Channel gaps of x (xs > C) hold NaN so that reading them shows;
 * gaps of y (ys > M) must stay untouched. Prints "N passed, M failed". */
#include "cpu/nhwc.h"
#include "core/threadpool.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;
static uint64_t rng = 88172645463325252ull;

static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) & 0xFFFFFF) / (float)0x1000000 * 2.0f - 1.0f;
}

static void check(bool ok, const char *what)
{
    if (ok) passed++;
    else {
        failed++;
        printf("FAIL %s\n", what);
    }
}

typedef struct tcase {
    const char *name;
    int64_t N, C, H, W, M, G, KH, KW, SH, SW, DH, DW, PT, PL, PB, PR;
    int64_t xpad, ypad, rpad; /* pixel stride extras: xs = C + xpad etc. */
} tcase;

static const cpu_act acts[] = {CPU_ACT_NONE, CPU_ACT_RELU, CPU_ACT_CLIP, CPU_ACT_LEAKY,
                               CPU_ACT_SIGMOID, CPU_ACT_SILU, CPU_ACT_HARDSWISH, CPU_ACT_GELU,
                               CPU_ACT_GELU_TANH};
#define N_ACTS (int)(sizeof acts / sizeof acts[0])

static void act_params(cpu_act a, cpu_epilogue *ep)
{
    *ep = cpu_epilogue_none();
    ep->act = a;
    ep->act_a = a == CPU_ACT_CLIP ? -0.5f : (a == CPU_ACT_LEAKY ? 0.1f : 0.0f);
    ep->act_b = a == CPU_ACT_CLIP ? 0.75f : 0.0f;
}

/* One problem: inputs, the naive sums (double, no bias) and their magnitudes. */
typedef struct prob {
    cpu_conv2d g;
    int64_t xs, ys, rs, P;
    float *x, *w, *bias, *resid;
    double *sum, *mag;
} prob;

static void prob_make(prob *p, const tcase *t)
{
    cpu_conv2d *g = &p->g;
    g->N = t->N; g->C = t->C; g->H = t->H; g->W = t->W; g->M = t->M; g->G = t->G;
    g->KH = t->KH; g->KW = t->KW; g->SH = t->SH; g->SW = t->SW; g->DH = t->DH; g->DW = t->DW;
    g->PT = t->PT; g->PL = t->PL;
    g->OH = (t->H + t->PT + t->PB - t->DH * (t->KH - 1) - 1) / t->SH + 1;
    g->OW = (t->W + t->PL + t->PR - t->DW * (t->KW - 1) - 1) / t->SW + 1;
    p->xs = t->C + t->xpad;
    p->ys = t->M + t->ypad;
    p->rs = t->M + t->rpad;
    p->P = g->N * g->OH * g->OW;
    const int64_t Cg = g->C / g->G, Mg = g->M / g->G;
    size_t nx = (size_t)(g->N * g->H * g->W * p->xs), nw = (size_t)(g->M * Cg * g->KH * g->KW);
    p->x = malloc(nx * sizeof(float));
    for (size_t i = 0; i < nx; i++) p->x[i] = (int64_t)(i % (size_t)p->xs) < g->C ? frand() : NAN;
    p->w = malloc(nw * sizeof(float));
    for (size_t i = 0; i < nw; i++) p->w[i] = frand();
    p->bias = malloc((size_t)g->M * sizeof(float));
    for (int64_t i = 0; i < g->M; i++) p->bias[i] = frand();
    p->resid = malloc((size_t)(p->P * p->rs) * sizeof(float));
    for (int64_t i = 0; i < p->P * p->rs; i++) p->resid[i] = frand();
    p->sum = malloc((size_t)(p->P * g->M) * sizeof(double));
    p->mag = malloc((size_t)(p->P * g->M) * sizeof(double));
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t oy = 0; oy < g->OH; oy++)
            for (int64_t ox = 0; ox < g->OW; ox++) {
                const int64_t pix = (n * g->OH + oy) * g->OW + ox;
                for (int64_t m = 0; m < g->M; m++) {
                    const int64_t gi = m / Mg;
                    double s = 0, a = 0;
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t ky = 0; ky < g->KH; ky++) {
                            int64_t iy = oy * g->SH - g->PT + ky * g->DH;
                            if (iy < 0 || iy >= g->H) continue;
                            for (int64_t kx = 0; kx < g->KW; kx++) {
                                int64_t ix = ox * g->SW - g->PL + kx * g->DW;
                                if (ix < 0 || ix >= g->W) continue;
                                double v = (double)p->x[((n * g->H + iy) * g->W + ix) * p->xs + gi * Cg + c] *
                                           (double)p->w[((m * Cg + c) * g->KH + ky) * g->KW + kx];
                                s += v;
                                a += fabs(v);
                            }
                        }
                    p->sum[pix * g->M + m] = s;
                    p->mag[pix * g->M + m] = a;
                }
            }
}

static void prob_free(prob *p)
{
    free(p->x); free(p->w); free(p->bias); free(p->resid); free(p->sum); free(p->mag);
}

/* Runs one configuration and compares; in_place: resid is y itself (rs = ys). */
static void run_one(const prob *p, const char *name, int algo, cpu_act act, bool bias, bool resid,
                    bool in_place, bool cache, core_threadpool *pool)
{
    const cpu_conv2d *g = &p->g;
    const int64_t M = g->M, ys = p->ys, rs = in_place ? p->ys : p->rs;
    const size_t ny = (size_t)(p->P * ys);
    float *y = malloc((ny ? ny : 1) * sizeof(float));
    for (size_t i = 0; i < ny; i++) y[i] = 1234.5f; /* sentinel in the gaps */
    const float *r = NULL;
    if (resid) {
        if (in_place) {
            for (int64_t i = 0; i < p->P; i++)
                memcpy(y + i * ys, p->resid + i * p->rs, (size_t)M * sizeof(float));
            r = y;
        } else {
            r = p->resid;
        }
    }
    cpu_epilogue ep;
    act_params(act, &ep);
    kiln_status st = cpu_conv2d_nhwc_f32(g, p->x, p->xs, p->w, bias ? p->bias : NULL, r, rs, y, ys,
                                         &ep, algo, cache, pool);
    /* AUTO may pick Winograd (documented larger error) */
    bool wino = algo == CPU_CONV_AUTO && !cpu_conv2d_nhwc_dw_eligible(g) &&
                cpu_conv2d_nhwc_winograd_preferred(g) && cpu_conv2d_nhwc_winograd_eligible(g);
    double rtol = wino ? 2e-3 : 1e-4, worst = 0;
    bool ok = st == KILN_OK, gaps = true;
    for (int64_t i = 0; ok && i < p->P; i++) {
        for (int64_t m = 0; m < M; m++) {
            double pre = p->sum[i * M + m], mag = p->mag[i * M + m];
            if (bias) {
                pre += p->bias[m];
                mag += fabs(p->bias[m]);
            }
            if (resid) {
                pre += p->resid[i * p->rs + m];
                mag += fabs(p->resid[i * p->rs + m]);
            }
            double want = cpu_act_scalar((float)pre, ep.act, ep.act_a, ep.act_b);
            double err = fabs((double)y[i * ys + m] - want), tol = rtol * (mag + fabs(want)) + 1e-6;
            double q = err / tol;
            if (!(q <= worst)) worst = isnan(q) ? INFINITY : q; /* NaN sticks */
        }
        for (int64_t m = M; m < ys; m++)
            if (y[i * ys + m] != 1234.5f) gaps = false;
    }
    char what[256];
    snprintf(what, sizeof what, "%s [%s] algo %d act %d bias %d resid %d%s cache %d threads %d: status %d, worst err/tol %.3g%s",
             name, cpu_ukernels_get()->isa, algo, (int)act, bias, resid, in_place ? " (in place)" : "", cache,
             core_threadpool_size(pool), (int)st, worst, gaps ? "" : ", y gaps overwritten");
    check(ok && worst <= 1.0 && gaps, what);
    free(y);
}

static const tcase edge_cases[] = {
    /*  name                     N   C   H   W    M   G  KH KW SH SW DH DW PT PL PB PR xp yp rp */
    {"1x1 image 3x3 pad1",       1,  3,  1,  1,   5,  1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0},
    {"C1 M1 3x3",                1,  1,  5,  5,   1,  1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0},
    {"C2 M3 1x1",                1,  2,  4,  3,   3,  1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0},
    {"C17 M33 3x3 s2 asym",      1, 17,  9,  7,  33,  1, 3, 3, 2, 2, 1, 1, 1, 0, 2, 1, 0, 0, 0},
    {"C33 M100 1x1 N2 strides",  2, 33,  5,  6, 100,  1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 7, 10, 5},
    {"C100 M17 3x3 dil2",        1,100, 11, 10,  17,  1, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 0, 0, 0},
    {"G2 C34 M34 3x3",           1, 34,  6,  7,  34,  2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 3, 2, 1},
    {"G4 C16 M24 3x3 s2",        2, 16,  9,  9,  24,  4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0, 0},
    {"G3 C3 M6 1x1",             1,  3,  4,  4,   6,  3, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0},
    {"depthwise C17 3x3",        1, 17,  6,  5,  17, 17, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 0},
    {"depthwise C33 5x5 s2",     1, 33,  9,  9,  33, 33, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 0, 0, 0},
    {"1x1 s2 C64 M48",           1, 64, 14, 14,  48,  1, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0},
    {"1x1 pad1 C5 M7",           1,  5,  3,  4,   7,  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0},
    {"stem-like 7x7 s2 C3",      2,  3, 23, 21,  20,  1, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3, 0, 0, 0},
    {"stem 7x7 s2 C3 xs4",       1,  3, 17, 19,  40,  1, 7, 7, 2, 2, 1, 1, 3, 2, 2, 3, 1, 3, 2},
    {"6x6 s2 C3 M32",            1,  3, 32, 30,  32,  1, 6, 6, 2, 2, 1, 1, 2, 2, 2, 2, 0, 0, 0},
    {"C5 3x3 dilH2 asym",        1,  5,  8,  9,  19,  1, 3, 3, 1, 2, 2, 1, 0, 2, 3, 0, 0, 0, 0},
    {"C16 5x5 dilW2",            1, 16,  8,  9,  18,  1, 5, 5, 1, 1, 1, 2, 2, 4, 2, 4, 0, 0, 0},
    {"1x5 and pad",              1,  8,  6,  9,  12,  1, 1, 5, 1, 1, 1, 1, 0, 2, 0, 2, 0, 0, 0},
    {"5x1 s3",                   1, 40, 13,  4,  50,  1, 5, 1, 3, 1, 1, 1, 2, 0, 2, 0, 0, 0, 0},
    {"M1 C64 3x3",               1, 64,  7,  7,   1,  1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0},
    {"pads > kernel",            1,  4,  3,  3,  16,  1, 3, 3, 1, 1, 1, 1, 4, 3, 4, 5, 0, 0, 0},
    {"29 pixels M200",           1, 24,  1, 29, 200,  1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0},
    {"7x7 N2 C48 M40 3x3",       2, 48,  7,  7,  40,  1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0},
    /* wide rows: whole tiles inside one output row (the evenly spaced pointer fast path) */
    {"wide 5x5 s2 C3 M19",       2,  3,  7, 61,  19,  1, 5, 5, 2, 2, 1, 1, 2, 1, 1, 2, 0, 0, 0},
    {"wide 5x5 C3 xs5",          1,  3,  5, 40,  17,  1, 5, 5, 1, 1, 1, 1, 2, 2, 2, 2, 2, 0, 0},
    {"wide 3x3 dil2 s2 C20",     1, 20,  6, 70,  33,  1, 3, 3, 2, 2, 2, 2, 1, 3, 2, 2, 0, 0, 0},
    {"wide 3x2 G2 C12",          1, 12,  4, 50,  10,  2, 3, 2, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1},
    /* few-channel stems (kernel-row runs) and evenly spaced tiles (the kernels' a_step mode:
     * a tile in one output row with all its taps inside the image), 1..4 channels, partial
     * panels (M 17, 33, 47), pixel strides > C, dilation, batch 2 */
    {"stem C1 5x5 s2 N2 wide",   2,  1,  9, 45,   7,  1, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2, 0, 0, 0},
    {"stem C2 3x3 s1 dilH2",     1,  2, 11, 40,  17,  1, 3, 3, 1, 1, 2, 1, 2, 1, 2, 1, 0, 0, 0},
    {"stem C4 7x7 s2 xs ys rs",  1,  4, 15, 64,  33,  1, 7, 7, 2, 2, 1, 1, 3, 3, 2, 3, 2, 3, 1},
    {"stem C3 6x6 s2 M33 asym",  1,  3, 14, 57,  33,  1, 6, 6, 2, 2, 1, 1, 2, 1, 3, 2, 0, 0, 0},
    {"stem C3 3x3 s2 M17 odd",   2,  3, 13, 51,  17,  1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0, 0},
    {"C3 3x3 dilW2 wide",        1,  3,  7, 44,  47,  1, 3, 3, 1, 1, 1, 2, 1, 2, 1, 2, 1, 0, 0},
    {"1x1 C5 M130 wide",         1,  5,  3, 41, 130,  1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 2, 0},
    {"1x1 s2 C7 M40 wide xs",    2,  7,  5, 60,  40,  1, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 3, 0, 0},
    /* big enough (> 5e5 flops) to be split over threads */
    {"threaded G4 C64 s2",       1, 64, 15, 15,  64,  4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 3, 5, 2},
    {"threaded depthwise C64",   1, 64, 32, 32,  64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0},
    {"threaded N2 C40 M70 asym", 2, 40, 17, 19,  70,  1, 3, 3, 2, 2, 1, 1, 0, 1, 2, 1, 1, 3, 0},
    {"threaded 7x7 C3 M24 N2",   2,  3, 30, 34,  24,  1, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3, 0, 2, 0},
    {"threaded stem C3 6x6 M32", 1,  3, 64, 96,  32,  1, 6, 6, 2, 2, 1, 1, 2, 2, 2, 2, 0, 0, 0},
    {"threaded stem C1 3x3 N2",  2,  1, 40, 66,  40,  1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 1, 2},
};
#define N_EDGE (int)(sizeof edge_cases / sizeof edge_cases[0])

static const tcase real_cases[] = {
    {"resnet stem 7x7 s2 224",   1,   3, 224, 224,  64, 1, 7, 7, 2, 2, 1, 1, 3, 3, 3, 3, 0, 0, 0},
    {"resnet 3x3 64 @56",        1,  64,  56,  56,  64, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0},
    {"resnet 3x3 128 @28",       1, 128,  28,  28, 128, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0},
    {"resnet 3x3 256 @14",       1, 256,  14,  14, 256, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0},
    {"resnet 3x3 512 @7",        1, 512,   7,   7, 512, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0},
    {"resnet 1x1 s2 1024->2048", 1,1024,  14,  14, 2048, 1, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0},
    {"yolov5s 6x6 s2 stem @320", 1,   3, 320, 320,  32, 1, 6, 6, 2, 2, 1, 1, 2, 2, 2, 2, 0, 0, 0},
    {"mobilenetv2 stem 3x3 s2",  1,   3, 224, 224,  32, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0, 0},
    {"yolov5s 3x3 s2 32->64",    1,  32, 160, 160,  64, 1, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0, 0},
};
#define N_REAL (int)(sizeof real_cases / sizeof real_cases[0])

int main(void)
{
    core_threadpool *pool1 = core_threadpool_create(1), *pool2 = core_threadpool_create(2);
    core_threadpool *pool3 = core_threadpool_create(3); /* task grids of an odd thread count */
    int n_isa = 0;
    const char *const *isas = cpu_ukernels_isas(&n_isa);
    for (int c = 0; c < N_EDGE; c++) {
        prob p;
        prob_make(&p, &edge_cases[c]);
        for (int isa = 0; isa < n_isa; isa++) {
            if (!cpu_ukernels_force_isa(isas[isa])) {
                check(false, "cpu_ukernels_force_isa refused a listed ISA");
                continue;
            }
            /* every activation; threads, cache, algo, bias and residual varied along */
            for (int a = 0; a < N_ACTS; a++) {
                core_threadpool *pool = a % 2 ? pool2 : pool1;
                bool cache = (a / 2) % 2, bias = a != 3, resid = a % 3 == 0, in_place = a == 6;
                run_one(&p, edge_cases[c].name, a % 4 == 1 ? CPU_CONV_AUTO : CPU_CONV_GEMM, acts[a], bias,
                        resid || in_place, in_place, cache, pool);
            }
            for (int tc = 0; tc < 4; tc++)
                run_one(&p, edge_cases[c].name, tc % 2 ? CPU_CONV_AUTO : CPU_CONV_GEMM, CPU_ACT_RELU, true,
                        true, false, tc / 2, tc == 3 ? pool3 : tc % 2 ? pool1 : pool2);
        }
        prob_free(&p);
    }
    for (int c = 0; c < N_REAL; c++) {
        prob p;
        prob_make(&p, &real_cases[c]);
        for (int isa = 0; isa < n_isa; isa++) {
            if (!cpu_ukernels_force_isa(isas[isa])) continue;
            /* scalar: only the cheap layers (it is only a fallback) */
            if (!strcmp(isas[isa], "scalar") && c > 0) continue;
            run_one(&p, real_cases[c].name, CPU_CONV_GEMM, CPU_ACT_SILU, true, c % 2 == 1, false, true, pool2);
            run_one(&p, real_cases[c].name, CPU_CONV_AUTO, CPU_ACT_RELU, true, false, false, c % 2 == 0, pool1);
            /* 3 homes whose chunks (tile ranges or panel blocks) get taken from each other */
            if (strcmp(isas[isa], "scalar"))
                run_one(&p, real_cases[c].name, CPU_CONV_GEMM, CPU_ACT_SIGMOID, true, c % 2 == 0, false, true, pool3);
        }
        prob_free(&p);
    }
    /* the activations over their whole range (the microkernels' own sigmoid/SiLU): 1x1, one
     * channel, weights 1, inputs from -120 to 120 */
    {
        enum { NP = 61, NM = 40 };
        static float x[NP], w[NM], y[NP * NM];
        for (int i = 0; i < NP; i++) x[i] = -120.0f + 4.0f * (float)i + 0.37f * (float)(i % 3);
        for (int m = 0; m < NM; m++) w[m] = m % 2 ? 1.0f : -0.5f;
        cpu_conv2d g = {1, 1, 1, NP, NM, 1, NP, 1, 1, 1, 1, 1, 1, 1, 0, 0};
        for (int isa = 0; isa < n_isa; isa++) {
            if (!cpu_ukernels_force_isa(isas[isa])) continue;
            for (int a = 0; a < N_ACTS; a++) {
                cpu_epilogue ep;
                act_params(acts[a], &ep);
                kiln_status st = cpu_conv2d_nhwc_f32(&g, x, 1, w, NULL, NULL, 0, y, NM, &ep, CPU_CONV_GEMM, false, pool1);
                double worst = 0;
                for (int i = 0; st == KILN_OK && i < NP; i++)
                    for (int m = 0; m < NM; m++) {
                        double want = cpu_act_scalar(x[i] * w[m], ep.act, ep.act_a, ep.act_b);
                        double q = fabs((double)y[i * NM + m] - want) / (1e-5 * fabs(want) + 1e-6);
                        if (!(q <= worst)) worst = isnan(q) ? INFINITY : q;
                    }
                char what[160];
                snprintf(what, sizeof what, "activation range [%s] act %d: status %d, worst err/tol %.3g", isas[isa],
                         (int)acts[a], (int)st, worst);
                check(st == KILN_OK && worst <= 1.0, what);
            }
        }
    }
    /* bad geometry: an error status, never a crash */
    {
        float x[64] = {0}, w[64] = {0}, y[64];
        cpu_conv2d g = {1, 4, 2, 2, 4, 2, 2, 1, 0, 3, 1, 1, 1, 1, 0, 0}; /* KH 0 */
        check(cpu_conv2d_nhwc_igemm_f32(&g, x, 4, w, NULL, NULL, 0, y, 4, NULL, false, pool2) ==
                  KILN_ERR_UNSUPPORTED, "KH 0 refused");
        cpu_conv2d g2 = {1, 4, 2, 2, 4, 2, 2, 3, 1, 1, 1, 1, 1, 1, 0, 0}; /* C % G != 0 */
        check(cpu_conv2d_nhwc_igemm_f32(&g2, x, 4, w, NULL, NULL, 0, y, 4, NULL, false, pool2) ==
                  KILN_ERR_UNSUPPORTED, "C % G refused");
        cpu_conv2d g3 = {1, 4, 2, 2, 4, 2, 2, 1, 1, 1, 1, 1, 1, 1, 0, 0}; /* xs < C */
        check(cpu_conv2d_nhwc_igemm_f32(&g3, x, 3, w, NULL, NULL, 0, y, 4, NULL, false, pool2) ==
                  KILN_ERR_UNSUPPORTED, "xs < C refused");
    }
    cpu_ukernels_force_isa(NULL);
    cpu_cache_clear();
    core_threadpool_destroy(pool1);
    core_threadpool_destroy(pool2);
    core_threadpool_destroy(pool3);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
