/* winograd_nhwc_bench.c — effective GFLOP/s (direct-convolution FLOPs / time) of the NHWC
 * Winograd convolution (src/cpu/winograd_nhwc.c, F(2x2, 3x3), F(4x4, 3x3) and F(6x6, 3x3))
 * against the NHWC indirect GEMM (cpu_conv2d_nhwc_igemm_f32) and the NCHW convolutions
 * (cpu_conv2d_f32 with CPU_CONV_GEMM and CPU_CONV_WINO) on the 3x3 stride-1 layers of
 * ResNet-50 and YOLOv5s, 1 and 2 threads; the methods' runs alternate and each prints its
 * median, then the fastest NHWC method ("best") and the default choice ("pick",
 * cpu_wino_nhwc_pick). Also the accuracy of the Winograd variants against a
 * double-precision direct convolution (inputs U[0, 2) like post-ReLU activations,
 * He-scaled weights).
 *
 * Measured (Zen 5, 2 cores, AVX-512, shared VM; `--cold --reps 15 --methods
 * nhwc-wino2,nhwc-wino4,nhwc-wino6,nhwc-igemm`; ms, medians; a quiet moment, load ~1.5):
 *                          ---------- 1 thread ----------   --------- 2 threads ----------
 *   layer                 wino2  wino4  wino6  igemm        wino2  wino4  wino6  igemm   pick
 *   r50 56x56 64->64      0.557  0.353  0.381  0.952        0.289  0.187  0.189  0.508   w4
 *   r50 28x28 128->128    0.589  0.566  0.545  1.026        0.311  0.231  0.250  0.510   w4
 *   r50 14x14 256->256    0.759  0.645  0.907  1.068        0.307  0.376  0.443  0.520   w2
 *   r50 7x7 512->512      1.004  1.139  2.067  1.270        0.559  0.850  1.537  0.560   w2
 *   y5s 160x160 32->32    1.359  0.936  0.862  2.050        0.655  0.403  0.370  1.027   w6
 *   y5s 80x80 64->64      1.118  0.676  0.683  1.950        0.533  0.316  0.324  0.982   w4
 *   y5s 40x40 128->128    0.992  0.704  0.725  2.030        0.534  0.448  0.439  1.104   w4
 *   y5s 20x20 256->256    1.079  0.835  0.981  2.081        0.699  0.613  0.943  1.097   w4
 * Run to run, +-10% is common here (r50 14x14: wino2 0.53..0.76 / wino4 0.53..0.65 at 1
 * thread, 0.29..0.39 / 0.29..0.44 at 2; in the whole ResNet-50, `kiln bench --profile`, its
 * five layers took 1.45..1.73 ms with F(2x2) and 1.71..1.89 with F(4x4) at 2 threads).
 * Smaller images and other channel counts (`--shape HW,C,M`, 1 thread; wino2 / wino4 / igemm):
 *   5x5 512: 0.61 / 1.11 / 0.69    6x6 256: 0.16 / 0.27 / 0.19    7x7 64: .024 / .022 / .020
 *   7x7 128: .083 / .075 / .079    7x7 256: 0.26 / 0.29 / 0.26    8x8 256: 0.26 / 0.30 / 0.32
 *   10x10 256: 0.33 / 0.36 / 0.51  12x12 256: 0.40 / 0.36 / 0.73  14x14 128: 0.16 / 0.21 / 0.26
 *   14x14 512: 2.19 / 2.61 / 4.22  16x16 256: 0.66 / 0.53 / 1.32  18x18 256: 0.87 / 0.78 / 1.69
 *   batch 2: 7x7 512: 1.48 / 1.34 / 2.14    14x14 256: 0.96 / 0.93 / 2.05
 * and with --isa avx2 (1 thread): 6x6 512: 1.18 / 1.61 / 1.56   5x5 512: 1.39 / 2.22 / 1.26
 *   7x7 256: 0.44 / 0.57 / 0.58   12x12 256: 0.80 / 0.83 / 1.55   14x14 256: 1.14 / 1.14 / 2.13
 *   16x16 256: 1.41 / 1.19 / 2.70   28x28 128: 1.03 / 0.64 / 1.99
 * (cpu_conv2d_nhwc_winograd_preferred and the tile pick in src/cpu/winograd_nhwc.c are set
 * from these.)
 *
 * build: cmake --build build-rel && cc -O2 -Iinclude -Isrc bench/winograd_nhwc_bench.c \
 *            build-rel/libkiln.a -lm -lpthread -o winograd_nhwc_bench
 * usage: winograd_nhwc_bench [--reps N] [--threads N] [--isa NAME] [--batch N] [--no-acc]
 *        [--only NAME] [--methods LIST] [--cold]
 *        [--shape HW,C,M]  (a square HW x HW layer C -> M instead of the table)
 * --cold: each run of a layer uses the next of R copies of its weights (R x the raw weights
 * >= 48 MB where the weight cache holds all enabled methods' layouts of R copies; R <= 64),
 * so packed / transformed weights come from memory as in a whole-model run, where all
 * layers' weights do not fit the L3 (32 MB here), even with one method alone; input and
 * output stay shared (warm, as when the previous layer has just written them).
 * --only: the layers whose name contains NAME; --methods: comma-separated method names
 * (nhwc-wino2, nhwc-wino4, nhwc-wino6, nhwc-igemm, nchw-gemm, nchw-wino; default all).
 * The runs of one round go in that order, so each method finds the caches as the one before
 * it left them: leave out the NCHW methods when comparing the NHWC ones (after nchw-wino,
 * nhwc-wino2 finds its input and output evicted from the L2). */
#include "cpu/nhwc.h"
#include "cpu/ukernels/f32-wino-nhwc/wino-nhwc.h"
#include "core/threadpool.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint32_t seed = 12345;
static float *rnd(size_t n, float lo, float hi)
{
    float *p = cpu_alloc_floats(n ? n : 1);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = lo + (hi - lo) * ((float)(seed >> 8) / (float)(1u << 24));
    }
    return p;
}

typedef struct layer {
    const char *name;
    int64_t HW, C, M;
} layer;

static const layer layers[] = {
    {"r50 56x56 64->64", 56, 64, 64},     {"r50 28x28 128->128", 28, 128, 128},
    {"r50 14x14 256->256", 14, 256, 256}, {"r50 7x7 512->512", 7, 512, 512},
    {"y5s 160x160 32->32", 160, 32, 32},  {"y5s 80x80 64->64", 80, 64, 64},
    {"y5s 40x40 128->128", 40, 128, 128}, {"y5s 20x20 256->256", 20, 256, 256},
};

static layer custom; /* --shape */

enum { M_W2, M_W4, M_W6, M_IGEMM, M_NCHW_GEMM, M_NCHW_WINO, M_COUNT };
static const char *mnames[M_COUNT] = {"nhwc-wino2", "nhwc-wino4", "nhwc-wino6", "nhwc-igemm", "nchw-gemm", "nchw-wino"};

typedef struct bufs {
    cpu_conv2d g;
    float *x, *w, *b, *y, *xc, *yc;
} bufs;

#define MAX_COPIES 64

static kiln_status run(int m, const bufs *B, core_threadpool *pool)
{
    cpu_epilogue ep = cpu_epilogue_none();
    ep.act = CPU_ACT_RELU;
    const cpu_conv2d *g = &B->g;
    switch (m) {
    case M_W2: return cpu_wino_nhwc_conv_f32(g, B->x, g->C, B->w, B->b, NULL, 0, B->y, g->M, &ep, true, pool, 2);
    case M_W4: return cpu_wino_nhwc_conv_f32(g, B->x, g->C, B->w, B->b, NULL, 0, B->y, g->M, &ep, true, pool, 4);
    case M_W6: return cpu_wino_nhwc_conv_f32(g, B->x, g->C, B->w, B->b, NULL, 0, B->y, g->M, &ep, true, pool, 6);
    case M_IGEMM: return cpu_conv2d_nhwc_igemm_f32(g, B->x, g->C, B->w, B->b, NULL, 0, B->y, g->M, &ep, true, pool);
    case M_NCHW_GEMM: return cpu_conv2d_f32(g, B->xc, B->w, B->b, NULL, B->yc, &ep, CPU_CONV_GEMM, true, pool);
    case M_NCHW_WINO: return cpu_conv2d_f32(g, B->xc, B->w, B->b, NULL, B->yc, &ep, CPU_CONV_WINO, true, pool);
    }
    return KILN_ERR_UNSUPPORTED;
}

static int reps = 15;
static const char *methods; /* NULL: all */
static bool cold; /* --cold */

static void bench_layer(const layer *L, int64_t N, core_threadpool *pool)
{
    bufs B;
    cpu_conv2d g = {N, L->C, L->HW, L->HW, L->M, L->HW, L->HW, 1, 3, 3, 1, 1, 1, 1, 1, 1};
    B.g = g;
    size_t nx = (size_t)(N * L->HW * L->HW * L->C), ny = (size_t)(N * L->HW * L->HW * L->M);
    B.x = rnd(nx, 0.0f, 2.0f);
    B.xc = rnd(nx, 0.0f, 2.0f);
    float ws = (float)sqrt(3.0 * 2.0 / (9.0 * (double)L->C));
    bool on[M_COUNT];
    for (int m = 0; m < M_COUNT; m++) on[m] = !methods || strstr(methods, mnames[m]);
    int copies = 1;
    if (cold) {
        /* enough copies that even the smallest layout (the raw weights, 9 floats per channel
         * pair) streams >= 48 MB per round of runs, and few enough that every enabled
         * method's cached layouts (transform points per channel pair: F(2x2) 16, F(4x4) 36,
         * F(6x6) 64, the GEMMs ~9) stay under ~900 MB of the weight cache's 1 GB */
        static const double pts[M_COUNT] = {16, 36, 64, 9, 9, 36};
        double per = 0, cm4 = 4.0 * (double)(L->C * L->M);
        for (int m = 0; m < M_COUNT; m++) per += on[m] ? pts[m] * cm4 : 0;
        copies = (int)(48e6 / (9.0 * cm4)) + 1;
        if (per > 0 && copies > (int)(900e6 / per)) copies = (int)(900e6 / per);
        if (copies > MAX_COPIES) copies = MAX_COPIES;
        if (copies < 1) copies = 1;
    }
    float *wc[MAX_COPIES];
    for (int i = 0; i < copies; i++) wc[i] = rnd((size_t)(L->M * L->C * 9), -ws, ws);
    B.w = wc[0];
    B.b = rnd((size_t)L->M, -0.1f, 0.1f);
    B.y = cpu_alloc_floats(ny);
    B.yc = cpu_alloc_floats(ny);
    double flops = 2.0 * (double)ny * (double)(L->C * 9);
    for (int m = 0; m < M_COUNT; m++) { /* warm-up, weight caches */
        for (int i = 0; i < copies && on[m]; i++) {
            B.w = wc[i];
            on[m] = run(m, &B, pool) == KILN_OK;
        }
    }
    double t[M_COUNT][64];
    int r = reps > 64 ? 64 : reps;
    for (int i = 0; i < r; i++)
        for (int m = 0; m < M_COUNT; m++) {
            if (!on[m]) continue;
            B.w = wc[i % copies];
            double t0 = now_s();
            run(m, &B, pool);
            t[m][i] = now_s() - t0;
        }
    printf("%-20s N%lld thr %d%s |", L->name, (long long)N, core_threadpool_size(pool), cold ? " cold" : "");
    double med[M_COUNT] = {0};
    for (int m = 0; m < M_COUNT; m++) {
        if (!on[m]) {
            printf(" %s      n/a       |", mnames[m]);
            continue;
        }
        med[m] = median(t[m], r);
        printf(" %s %6.3f ms %5.0f |", mnames[m], med[m] * 1e3, flops / med[m] * 1e-9);
    }
    if (on[M_W4] && (on[M_IGEMM] || on[M_NCHW_GEMM])) {
        int best = on[M_IGEMM] ? M_IGEMM : M_NCHW_GEMM;
        printf(" w4/%s x%.2f", mnames[best], med[best] / med[M_W4]);
        if (on[M_W2]) printf(" w2/w4 x%.2f", med[M_W4] / med[M_W2]);
        if (on[M_W6]) printf(" w6/w4 x%.2f", med[M_W4] / med[M_W6]);
    }
    /* the fastest NHWC method (what cpu_conv2d_nhwc_winograd_preferred should pick) */
    int fastest = -1;
    for (int m = M_W2; m <= M_IGEMM; m++)
        if (on[m] && (fastest < 0 || med[m] < med[fastest])) fastest = m;
    if (fastest >= 0) printf(" best %s", mnames[fastest]);
    int pick = cpu_wino_nhwc_pick(&B.g);
    printf(" pick %s", pick ? mnames[pick / 2 - 1] : "nhwc-igemm");
    printf("\n");
    for (int i = 0; i < copies; i++) free(wc[i]);
    free(B.x); free(B.xc); free(B.b); free(B.y); free(B.yc);
    cpu_cache_clear(); /* keep the weight cache under its limit */
}

/* max |err|, max |err| / max |y| and max |err| / (sum |terms| + |y|) of both variants
 * against a double-precision direct convolution on (up to) the first 4 output rows. */
static void accuracy(const layer *L)
{
    const int64_t HW = L->HW, C = L->C, M = L->M;
    cpu_conv2d g = {1, C, HW, HW, M, HW, HW, 1, 3, 3, 1, 1, 1, 1, 1, 1};
    float ws = (float)sqrt(3.0 * 2.0 / (9.0 * (double)C));
    float *x = rnd((size_t)(HW * HW * C), 0.0f, 2.0f), *w = rnd((size_t)(M * C * 9), -ws, ws);
    float *y = cpu_alloc_floats((size_t)(HW * HW * M));
    int64_t rows = HW < 12 ? HW : 12;
    double *want = malloc((size_t)(rows * HW * M) * sizeof(double)), *mag = malloc((size_t)(rows * HW * M) * sizeof(double));
    double ymax = 0;
    for (int64_t oy = 0; oy < rows; oy++)
        for (int64_t ox = 0; ox < HW; ox++)
            for (int64_t m = 0; m < M; m++) {
                double s = 0, a = 0;
                for (int64_t ky = 0; ky < 3; ky++)
                    for (int64_t kx = 0; kx < 3; kx++) {
                        int64_t iy = oy - 1 + ky, ix = ox - 1 + kx;
                        if (iy < 0 || iy >= HW || ix < 0 || ix >= HW) continue;
                        const float *xp = x + (iy * HW + ix) * C;
                        for (int64_t c = 0; c < C; c++) {
                            double t = (double)xp[c] * w[((m * C + c) * 3 + ky) * 3 + kx];
                            s += t;
                            a += fabs(t);
                        }
                    }
                want[(oy * HW + ox) * M + m] = s;
                mag[(oy * HW + ox) * M + m] = a;
                if (fabs(s) > ymax) ymax = fabs(s);
            }
    printf("%-20s accuracy (first %lld rows):", L->name, (long long)rows);
    for (int tile = 2; tile <= 6; tile += 2) {
        cpu_wino_nhwc_conv_f32(&g, x, C, w, NULL, NULL, 0, y, M, NULL, false, NULL, tile);
        double mabs = 0, mterm = 0;
        for (int64_t i = 0; i < rows * HW * M; i++) {
            double e = fabs((double)y[i] - want[i]);
            if (e > mabs) mabs = e;
            if (e / (mag[i] + fabs(want[i])) > mterm) mterm = e / (mag[i] + fabs(want[i]));
        }
        printf("  F(%dx%d) max abs %.2e, /max|y| %.2e, /terms %.2e", tile, tile, mabs, mabs / ymax, mterm);
    }
    printf("  (max|y| %.3g)\n", ymax);
    free(x); free(w); free(y); free(want); free(mag);
}

int main(int argc, char **argv)
{
    int threads = 0;
    int64_t batch = 1;
    bool acc = true;
    const char *isa = NULL, *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc) isa = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--methods") && i + 1 < argc) methods = argv[++i];
        else if (!strcmp(argv[i], "--no-acc")) acc = false;
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc) {
            long long hw = 0, c = 0, m = 0;
            if (sscanf(argv[++i], "%lld,%lld,%lld", &hw, &c, &m) == 3 && hw > 0 && c > 0 && m > 0) {
                static char name[96];
                snprintf(name, sizeof name, "%lldx%lld %lld->%lld", hw, hw, c, m);
                custom = (layer){name, hw, c, m};
            }
        }
        else if (!strcmp(argv[i], "--cold")) cold = true;
    }
    if (reps < 1) reps = 1;
    if (isa && !cpu_ukernels_force_isa(isa)) {
        fprintf(stderr, "ISA %s not available\n", isa);
        return 1;
    }
    printf("ISA %s; GFLOP/s = direct-conv FLOPs / median time; ReLU + bias fused\n", cpu_ukernels_get()->isa);
    for (int th = 1; th <= 2; th++) {
        if (threads && th != threads) continue;
        core_threadpool *pool = core_threadpool_create(th);
        if (custom.name) bench_layer(&custom, batch, pool);
        for (size_t i = 0; i < sizeof layers / sizeof layers[0] && !custom.name; i++)
            if (!only || strstr(layers[i].name, only)) bench_layer(&layers[i], batch, pool);
        core_threadpool_destroy(pool);
    }
    if (acc && custom.name) accuracy(&custom);
    if (acc && !custom.name)
        for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++)
            if (!only || strstr(layers[i].name, only)) accuracy(&layers[i]);
    cpu_cache_clear();
    return 0;
}
