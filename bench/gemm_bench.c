/* gemm_bench.c — GFLOP/s of kiln's CPU SGEMM and convolutions (src/cpu) at model-like sizes,
 * with 1 and 2 threads; with --model, a whole ONNX model timed with the fast kernels against
 * the reference kernels (alternating runs, medians).
 *
 * build: cmake --build build-rel && cc -O2 -Iinclude -Isrc bench/gemm_bench.c \
 *            build-rel/libkiln.a -lm -lpthread -o gemm_bench
 * usage: gemm_bench [--reps N] [--threads N] [--isa NAME]  GEMM + conv layer tables
 *        gemm_bench --model FILE [--threads N] [--reps N]  fast vs reference on a model
 * The tables time every vector ISA this CPU has (avx512, avx2_fma; or only --isa NAME) with
 * their runs alternating, and print each one's median. */
#include "cpu/cpu.h"
#include "core/threadpool.h"
#include "ops/ops.h"
#include "kiln.h"
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
    float *p = cpu_alloc_floats(n);
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)(s >> 8) / (float)(1u << 24) - 0.5f;
    }
    return p;
}

static int reps = 20;

/* the ISAs the tables compare */
static const char *isas[4];
static int n_isas;

/* ---- GEMM ------------------------------------------------------------------------------------ */

static void bench_gemm(int64_t M, int64_t N, int64_t K, core_threadpool *pool)
{
    float *a = rnd((size_t)(M * K)), *b = rnd((size_t)(K * N)), *c = rnd((size_t)(M * N));
    float *ap[4];
    cpu_sgemm_args g[4];
    for (int i = 0; i < n_isas; i++) {
        cpu_ukernels_force_isa(isas[i]);
        ap[i] = cpu_sgemm_pack_a(M, K, a, K, 1); /* packed in this ISA's layout */
        memset(&g[i], 0, sizeof g[i]);
        g[i].M = M; g[i].N = N; g[i].K = K;
        g[i].a = a; g[i].rsa = K; g[i].csa = 1; g[i].a_packed = ap[i];
        g[i].b_kind = CPU_B_MATRIX; g[i].b = b; g[i].rsb = N; g[i].csb = 1;
        g[i].c = c; g[i].ldc = N; g[i].ep = cpu_epilogue_none();
        cpu_sgemm(&g[i], pool);
    }
    static double t[4][256];
    int n = reps > 256 ? 256 : reps;
    for (int r = 0; r < n; r++)
        for (int i = 0; i < n_isas; i++) {
            cpu_ukernels_force_isa(isas[i]);
            double t0 = now_s();
            cpu_sgemm(&g[i], pool);
            t[i][r] = now_s() - t0;
        }
    printf("  %5lld x %5lld x %5lld  threads %d:", (long long)M, (long long)N, (long long)K,
           core_threadpool_size(pool));
    for (int i = 0; i < n_isas; i++) {
        double med = median(t[i], n);
        printf("  %-8s %8.3f ms %7.1f GFLOP/s", isas[i], med * 1e3,
               2.0 * (double)M * (double)N * (double)K / med * 1e-9);
    }
    printf("\n");
    cpu_ukernels_force_isa(NULL);
    free(a); free(b); free(c);
    for (int i = 0; i < n_isas; i++) free(ap[i]);
}

/* ---- conv layers ------------------------------------------------------------------------------- */

typedef struct layer {
    const char *name;
    int64_t C, H, W, M, k, s;
} layer;

/* Medians per ISA of alternating runs (the weight cache keeps one packing per ISA). */
static void time_conv(const cpu_conv2d *g, const float *x, const float *w, const float *bias,
                      float *y, int algo, core_threadpool *pool, double *med)
{
    cpu_epilogue ep = cpu_epilogue_none();
    ep.act = CPU_ACT_RELU;
    static double t[4][256];
    int n = reps > 256 ? 256 : reps;
    for (int i = 0; i < n_isas; i++) {
        cpu_ukernels_force_isa(isas[i]);
        cpu_conv2d_f32(g, x, w, bias, NULL, y, &ep, algo, true, pool);
    }
    for (int r = 0; r < n; r++)
        for (int i = 0; i < n_isas; i++) {
            cpu_ukernels_force_isa(isas[i]);
            double t0 = now_s();
            cpu_conv2d_f32(g, x, w, bias, NULL, y, &ep, algo, true, pool);
            t[i][r] = now_s() - t0;
        }
    for (int i = 0; i < n_isas; i++) med[i] = median(t[i], n);
    cpu_ukernels_force_isa(isas[0]); /* y holds the last ISA's result: redo with the first */
    cpu_conv2d_f32(g, x, w, bias, NULL, y, &ep, algo, true, pool);
    cpu_ukernels_force_isa(NULL);
}

static void bench_conv(const layer *L, core_threadpool *pool)
{
    int64_t p = L->k / 2;
    cpu_conv2d g = {1, L->C, L->H, L->W, L->M, 0, 0, 1, L->k, L->k, L->s, L->s, 1, 1, p, p};
    g.OH = (g.H + 2 * p - L->k) / L->s + 1;
    g.OW = (g.W + 2 * p - L->k) / L->s + 1;
    float *x = rnd((size_t)(g.C * g.H * g.W)), *w = rnd((size_t)(g.M * g.C * g.KH * g.KW));
    float *b = rnd((size_t)g.M), *y = rnd((size_t)(g.M * g.OH * g.OW)), *y2 = rnd((size_t)(g.M * g.OH * g.OW));
    double flops = 2.0 * (double)(g.M * g.OH * g.OW) * (double)(g.C * g.KH * g.KW);
    double tg[4], tw[4];
    time_conv(&g, x, w, b, y, CPU_CONV_GEMM, pool, tg);
    printf("  %-22s threads %d  gemm", L->name, core_threadpool_size(pool));
    for (int i = 0; i < n_isas; i++) printf(" %s %7.3f ms %6.1f GFLOP/s", isas[i], tg[i] * 1e3, flops / tg[i] * 1e-9);
    if (cpu_conv2d_winograd_eligible(&g)) {
        time_conv(&g, x, w, b, y2, CPU_CONV_WINO, pool, tw);
        double maxrel = 0, maxabs = 0, ymax = 0;
        for (int64_t i = 0; i < g.M * g.OH * g.OW; i++) {
            double d = y[i] - y2[i];
            if (d < 0) d = -d;
            if (d > maxabs) maxabs = d;
            double m = y[i] < 0 ? -y[i] : y[i];
            if (m > ymax) ymax = m;
        }
        for (int64_t i = 0; i < g.M * g.OH * g.OW; i++) {
            double d = y[i] - y2[i], m = y[i] < 0 ? -y[i] : y[i];
            if (d < 0) d = -d;
            if (m > 1e-2 * ymax && d / m > maxrel) maxrel = d / m;
        }
        printf("  winograd");
        for (int i = 0; i < n_isas; i++)
            printf(" %s %7.3f ms %6.1f eff.GFLOP/s", isas[i], tw[i] * 1e3, flops / tw[i] * 1e-9);
        printf(" (%s: x%.2f vs gemm; max abs err %.2g, max rel err %.2g)", isas[0], tg[0] / tw[0],
               maxabs, maxrel);
    }
    printf("\n");
    free(x); free(w); free(b); free(y); free(y2);
}

/* ---- a whole model, fast vs reference ------------------------------------------------------- */

/* Kernels are resolved when a model loads, so the model is loaded twice: once with the fast
 * kernels enabled and once with only the reference kernels. */
static kiln_context *load_ctx(const char *path, int threads, bool fast, kiln_model **m, float **bufs)
{
    kiln_load_options opts = {threads, 0};
    kiln_context *c = NULL;
    ops_set_fast_kernels(fast);
    if (kiln_model_load_file(path, &opts, m) || kiln_context_create(*m, &c)) {
        fprintf(stderr, "%s: %s\n", path, kiln_last_error());
        return NULL;
    }
    int ni = kiln_model_input_count(*m);
    for (int i = 0; i < ni && i < 16; i++) {
        kiln_tensor_info ti;
        kiln_model_input_info(*m, i, &ti);
        if (ti.dtype != KILN_DTYPE_FLOAT) {
            fprintf(stderr, "input %s is not float\n", ti.name);
            return NULL;
        }
        int64_t n = 1;
        for (int d = 0; d < ti.ndim; d++) {
            if (ti.dims[d] < 0) ti.dims[d] = 1;
            n *= ti.dims[d];
        }
        if (!bufs[i]) bufs[i] = rnd((size_t)n);
        if (kiln_context_set_input(c, ti.name, KILN_DTYPE_FLOAT, ti.ndim, ti.dims, bufs[i], (size_t)n * 4)) {
            fprintf(stderr, "%s\n", kiln_last_error());
            return NULL;
        }
    }
    return c;
}

static int bench_model(const char *path, int threads)
{
    kiln_model *mf = NULL, *mr = NULL;
    float *bufs[16] = {0};
    kiln_context *cf = load_ctx(path, threads, true, &mf, bufs);
    kiln_context *cr = cf ? load_ctx(path, threads, false, &mr, bufs) : NULL;
    if (!cf || !cr) return 1;
    ops_set_fast_kernels(true);
    double tf[256], tr[256];
    int n = reps > 256 ? 256 : reps;
    for (int r = -1; r < n; r++) {
        for (int fast = 1; fast >= 0; fast--) {
            double t0 = now_s();
            if (kiln_context_run(fast ? cf : cr)) {
                fprintf(stderr, "run: %s\n", kiln_last_error());
                return 1;
            }
            double dt = now_s() - t0;
            if (r >= 0) (fast ? tf : tr)[r] = dt;
        }
    }
    double medf = median(tf, n), medr = median(tr, n);
    printf("%s threads %d: fast %.3f ms, reference %.3f ms, speedup x%.2f\n", path, threads,
           medf * 1e3, medr * 1e3, medr / medf);
    kiln_context_destroy(cf);
    kiln_context_destroy(cr);
    kiln_model_destroy(mf);
    kiln_model_destroy(mr);
    for (int i = 0; i < 16; i++) free(bufs[i]);
    return 0;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *only = NULL;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--model") && i + 1 < argc) model = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--reps N] [--threads N] [--isa NAME] [--model FILE]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    if (model) return bench_model(model, threads > 0 ? threads : 2);
    int na = 0;
    const char *const *avail = cpu_ukernels_isas(&na);
    for (int i = 0; i < na && n_isas < 4; i++)
        if (only ? cpu_ukernels_force_isa(only) && !strcmp(avail[i], cpu_ukernels_get()->isa)
                 : strcmp(avail[i], "scalar") != 0 || na == 1)
            isas[n_isas++] = avail[i];
    cpu_ukernels_force_isa(NULL);
    if (!n_isas) {
        fprintf(stderr, "ISA %s is not available on this CPU\n", only);
        return 2;
    }
    printf("kiln cpu bench: ukernels");
    for (int i = 0; i < n_isas; i++) printf(" %s", isas[i]);
    printf(" (default %s)\n", cpu_ukernels_get()->isa);
    static const int64_t sizes[][3] = {{64, 3136, 576},  {256, 784, 1152}, {512, 196, 2304},
                                       {768, 128, 768},  {3072, 128, 768}, {64, 3136, 64},
                                       {256, 3136, 64},  {2048, 49, 512}};
    static const layer layers[] = {
        {"stem 7x7/2 3->64", 3, 224, 224, 64, 7, 2},
        {"res2 1x1 64->64", 64, 56, 56, 64, 1, 1},
        {"res2 3x3 64->64", 64, 56, 56, 64, 3, 1},
        {"res2 1x1 64->256", 64, 56, 56, 256, 1, 1},
        {"res3 3x3 128->128", 128, 28, 28, 128, 3, 1},
        {"res3 1x1 512->128", 512, 28, 28, 128, 1, 1},
        {"res4 3x3 256->256", 256, 14, 14, 256, 3, 1},
        {"res4 1x1 1024->256", 1024, 14, 14, 256, 1, 1},
        {"res5 3x3 512->512", 512, 7, 7, 512, 3, 1},
        {"res5 1x1 512->2048", 512, 7, 7, 2048, 1, 1},
        {"yolo 3x3 32->32 160", 32, 160, 160, 32, 3, 1},
        {"yolo 3x3 64->64 80", 64, 80, 80, 64, 3, 1},
        {"yolo 3x3/2 64->128 160", 64, 160, 160, 128, 3, 2},
        {"yolo 3x3 128->128 40", 128, 40, 40, 128, 3, 1},
        {"yolo 3x3 256->256 20", 256, 20, 20, 256, 3, 1},
    };
    int tl[2] = {1, 2};
    for (int ti = 0; ti < 2; ti++) {
        if (threads > 0 && tl[ti] != threads) continue;
        core_threadpool *pool = tl[ti] > 1 ? core_threadpool_create(tl[ti]) : NULL;
        printf("SGEMM (M x N x K, A pre-packed):\n");
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            bench_gemm(sizes[i][0], sizes[i][1], sizes[i][2], pool);
        printf("Conv (ResNet-50 and YOLOv5s layers, batch 1, fused bias+relu):\n");
        for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) bench_conv(&layers[i], pool);
        core_threadpool_destroy(pool);
    }
    cpu_cache_clear();
    return 0;
}
