/* conv_nhwc_bench.c — GFLOP/s of the NHWC indirect-GEMM convolution (cpu_conv2d_nhwc_f32,
 * algo GEMM, or AUTO with --auto) against the NCHW convolution (cpu_conv2d_f32, algo GEMM) on
 * ResNet-50, YOLOv5s and MobileNetV2 layer shapes, at 1 and 2 threads; bias + activation
 * fused (ReLU, or --act: silu, clip (0..6), none, model = each layer's own: YOLOv5s SiLU,
 * MobileNetV2 Clip(0,6) / none, ResNet-50 ReLU), weights cached, runs of the two alternating,
 * medians printed (--nhwc-only: NHWC runs only).
 *
 * build: cmake --build build-rel && cc -O2 -Iinclude -Isrc bench/conv_nhwc_bench.c \
 *            build-rel/libkiln.a -lm -lpthread -o conv_nhwc_bench
 * usage: conv_nhwc_bench [--reps N] [--threads N] [--isa NAME] [--only SUBSTRING] [--min]
 *                        [--nhwc-only] [--auto] [--act relu|silu|clip|none|model]
 * (--min: the fastest run instead of the median, for a machine that others load)
 *
 * Stems and low-channel stride-2 layers (2 vCPU Zen 5 VM, AVX-512; the machine was loaded by
 * other jobs, load average ~3, so 2-thread times are inflated; before = the igemm of commit
 * c05212c, after = unmasked full-vector stores, output prefetch for writing on outputs
 * > 4 MB, evenly spaced tiles without pointer tables (a_step), Clip in registers, the
 * table-driven sigmoid; `--nhwc-only --act model --reps 21 --only LAYER`, the two builds
 * alternating, 2-3 rounds, per-round medians):
 *                                    1 thread (min of rounds)   2 threads (medians, loaded)
 *   y5s 6x6/2 3->32 @640   SiLU      5.70 -> 3.80 ms            6.29 -> 4.18 ms
 *   y5s 3x3/2 32->64 @320  SiLU      5.36 -> 4.50 ms            6.08 -> 5.40 ms
 *   r50 7x7/2 3->64 @224   ReLU      1.10 -> 1.09 ms            1.38 -> 1.39 ms (noise)
 *   mv2 3x3/2 3->32 @224   Clip      0.161 -> 0.140 ms          0.163 -> 0.135 ms (best round)
 * Other layers at 1 thread (min of 2 rounds, --act model): YOLOv5s SiLU layers 3-25% faster
 * (1x1 128->128 @80 1.45 -> 1.09 ms), MobileNetV2 Clip layers 9-13% faster, ResNet-50 ReLU
 * layers within +-3% (noise level). On an Intel Xeon (other machine, quiet) the YOLOv5s stem
 * was 2.24 -> 2.08 ms at 2 threads, but the ResNet-50 3x3 128 @28 / 256 @14 layers 0.49 ->
 * 0.53 ms (not seen on Zen 5; not explained by the stores or the prefetches). */
#include "cpu/nhwc.h"
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

static float *rnd(size_t n)
{
    float *p = cpu_alloc_floats(n ? n : 1);
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)(s >> 8) / (float)(1u << 24) - 0.5f;
    }
    return p;
}

/* act: the activation the layer has in its model (--act model); 'r' ReLU, 's' SiLU, 'c' Clip(0,6),
 * 'n' none */
typedef struct layer {
    const char *name;
    int64_t C, H, W, M, k, s, p;
    char act;
} layer;

static const layer layers[] = {
    {"r50 stem 7x7/2 3->64 @224", 3, 224, 224, 64, 7, 2, 3, 'r'},
    {"r50 1x1 64->64 @56", 64, 56, 56, 64, 1, 1, 0, 'r'},
    {"r50 3x3 64->64 @56", 64, 56, 56, 64, 3, 1, 1, 'r'},
    {"r50 1x1 64->256 @56", 64, 56, 56, 256, 1, 1, 0, 'r'},
    {"r50 3x3 128 @28", 128, 28, 28, 128, 3, 1, 1, 'r'},
    {"r50 3x3 256 @14", 256, 14, 14, 256, 3, 1, 1, 'r'},
    {"r50 3x3 512 @7", 512, 7, 7, 512, 3, 1, 1, 'r'},
    {"r50 1x1 2048->512 @7", 2048, 7, 7, 512, 1, 1, 0, 'r'},
    {"r50 1x1 512->2048 @7", 512, 7, 7, 2048, 1, 1, 0, 'r'},
    {"r50 1x1/2 1024->2048 @14", 1024, 14, 14, 2048, 1, 2, 0, 'r'},
    {"y5s 6x6/2 3->32 @640", 3, 640, 640, 32, 6, 2, 2, 's'},
    {"y5s 3x3/2 32->64 @320", 32, 320, 320, 64, 3, 2, 1, 's'},
    {"y5s 1x1 128->128 @80", 128, 80, 80, 128, 1, 1, 0, 's'},
    {"y5s 3x3 256 @20", 256, 20, 20, 256, 3, 1, 1, 's'},
    {"y5s 3x3/2 64->128 @160", 64, 160, 160, 128, 3, 2, 1, 's'},
    {"y5s 3x3/2 128->256 @80", 128, 80, 80, 256, 3, 2, 1, 's'},
    {"y5s 3x3/2 256->512 @40", 256, 40, 40, 512, 3, 2, 1, 's'},
    {"y5s 3x3 32->64 @160 (s1 ref)", 32, 160, 160, 64, 3, 1, 1, 's'},
    {"y5s 1x1 64->32 @160", 64, 160, 160, 32, 1, 1, 0, 's'},
    {"r50 1x1/2 256->512 @56", 256, 56, 56, 512, 1, 2, 0, 'r'},
    {"mv2 3x3/2 3->32 @224", 3, 224, 224, 32, 3, 2, 1, 'c'},
    {"mv2 1x1 16->96 @112", 16, 112, 112, 96, 1, 1, 0, 'c'},
    {"mv2 1x1 32->16 @112", 32, 112, 112, 16, 1, 1, 0, 'n'},
    {"mv2 1x1 24->144 @56", 24, 56, 56, 144, 1, 1, 0, 'c'},
    {"mv2 1x1 960->320 @7", 960, 7, 7, 320, 1, 1, 0, 'n'},
};

static int reps = 15;
static int use_min;     /* --min: best run instead of the median (a loaded machine) */
static char act_opt = 'r'; /* --act: r s c n, or 'm' (each layer's own) */
static int algo = CPU_CONV_GEMM;
static int nhwc_only;   /* --nhwc-only: no NCHW runs (half the time; no cache pollution) */

static void act_set(cpu_epilogue *ep, char a)
{
    *ep = cpu_epilogue_none();
    ep->act = a == 's' ? CPU_ACT_SILU : a == 'c' ? CPU_ACT_CLIP : a == 'n' ? CPU_ACT_NONE : CPU_ACT_RELU;
    ep->act_a = 0.0f;
    ep->act_b = 6.0f;
}

static void bench_layer(const layer *L, core_threadpool *pool)
{
    cpu_conv2d g = {1, L->C, L->H, L->W, L->M, 0, 0, 1, L->k, L->k, L->s, L->s, 1, 1, L->p, L->p};
    g.OH = (g.H + 2 * L->p - L->k) / L->s + 1;
    g.OW = (g.W + 2 * L->p - L->k) / L->s + 1;
    const size_t nx = (size_t)(g.C * g.H * g.W), ny = (size_t)(g.M * g.OH * g.OW);
    float *x = rnd(nx), *w = rnd((size_t)(g.M * g.C * g.KH * g.KW)), *b = rnd((size_t)g.M);
    float *y1 = rnd(ny), *y2 = rnd(ny), *xh = rnd(nx);
    /* the same input in NHWC, to compare the outputs */
    for (int64_t c = 0; c < g.C; c++)
        for (int64_t i = 0; i < g.H * g.W; i++) xh[i * g.C + c] = x[c * g.H * g.W + i];
    cpu_epilogue ep;
    const char act = act_opt == 'm' ? L->act : act_opt;
    act_set(&ep, act);
    const double flops = 2.0 * (double)(g.M * g.OH * g.OW) * (double)(g.C * g.KH * g.KW);
    static double t1[256], t2[256];
    int n = reps > 256 ? 256 : reps;
    cpu_conv2d_f32(&g, x, w, b, NULL, y1, &ep, CPU_CONV_GEMM, true, pool);
    cpu_conv2d_nhwc_f32(&g, xh, g.C, w, b, NULL, 0, y2, g.M, &ep, algo, true, pool);
    double maxd = 0;
    for (int64_t m = 0; m < g.M; m++)
        for (int64_t i = 0; i < g.OH * g.OW; i++) {
            double d = fabs((double)y1[m * g.OH * g.OW + i] - (double)y2[i * g.M + m]);
            if (d > maxd) maxd = d;
        }
    for (int r = 0; r < n; r++) {
        double t0 = now_s();
        if (!nhwc_only) cpu_conv2d_f32(&g, x, w, b, NULL, y1, &ep, CPU_CONV_GEMM, true, pool);
        t1[r] = now_s() - t0;
        t0 = now_s();
        cpu_conv2d_nhwc_f32(&g, xh, g.C, w, b, NULL, 0, y2, g.M, &ep, algo, true, pool);
        t2[r] = now_s() - t0;
    }
    double m1 = median(t1, n), m2 = median(t2, n);
    if (use_min) {
        m1 = t1[0];
        m2 = t2[0];
    }
    if (nhwc_only)
        printf("  %-29s %c %dT  nhwc %8.3f ms %6.1f GF/s  (max|d| %.1e)\n", L->name, act,
               core_threadpool_size(pool), m2 * 1e3, flops / m2 * 1e-9, maxd);
    else
        printf("  %-29s %c %dT  nchw %8.3f ms %6.1f GF/s   nhwc %8.3f ms %6.1f GF/s   x%.2f  (max|d| %.1e)\n",
               L->name, act, core_threadpool_size(pool), m1 * 1e3, flops / m1 * 1e-9, m2 * 1e3,
               flops / m2 * 1e-9, m1 / m2, maxd);
    fflush(stdout);
    free(x); free(w); free(b); free(y1); free(y2); free(xh);
}

int main(int argc, char **argv)
{
    int threads = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--min")) use_min = 1;
        else if (!strcmp(argv[i], "--nhwc-only")) nhwc_only = 1;
        else if (!strcmp(argv[i], "--auto")) algo = CPU_CONV_AUTO;
        else if (!strcmp(argv[i], "--act") && i + 1 < argc && strchr("rscnm", argv[i + 1][0]) && argv[i + 1][0])
            act_opt = argv[++i][0];
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc) {
            if (!cpu_ukernels_force_isa(argv[++i])) {
                fprintf(stderr, "ISA %s not available\n", argv[i]);
                return 1;
            }
        } else {
            fprintf(stderr,
                    "usage: %s [--reps N] [--threads N] [--isa NAME] [--only SUBSTRING] [--min] [--nhwc-only]\n"
                    "          [--auto] [--act relu|silu|clip|none|model]\n",
                    argv[0]);
            return 1;
        }
    }
    if (reps < 1) reps = 1;
    printf("ISA %s, %d reps, %s; NHWC algo %s; bias + activation fused (column 2: r ReLU, s SiLU, c Clip(0,6), n "
           "none)\n",
           cpu_ukernels_get()->isa, reps, use_min ? "minimum" : "medians", algo == CPU_CONV_AUTO ? "AUTO" : "GEMM");
    for (int t = 1; t <= 2; t++) {
        if (threads && t != threads) continue;
        core_threadpool *pool = core_threadpool_create(t);
        for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++)
            if (!only || strstr(layers[i].name, only)) bench_layer(&layers[i], pool);
        core_threadpool_destroy(pool);
    }
    cpu_cache_clear();
    return 0;
}
