/* expand_dw_bench.c — the fused inverted-residual kernels of src/cpu/expand_dw_nhwc.c against
 * the separate calls they replace, on MobileNetV2 / EfficientNet-B0 shapes (224x224 input,
 * batch 1). The methods' runs alternate (which goes first alternates too) and each prints its
 * median; the outputs of the two are compared once per shape (max rel: their largest relative
 * difference). Weights are cached (as in a model run); input, weights and output stay warm
 * (as when the previous layer has just written x and the model's weights fit the L3), --flush
 * evicts the caches of every thread before every run instead.
 *
 * Default: the whole block, cpu_mbconv_nhwc_f32 (expand 1x1 -> dw 3x3 -> project 1x1 +
 * residual), against cpu_expand_dw_nhwc_f32 into a tensor u (cpu_dwconv2d_nhwc_f32 for block
 * 1, which has no expansion) + cpu_conv2d_nhwc_f32 for the projection with the residual in
 * its epilogue, on the 17 blocks of MobileNetV2 (12 distinct shapes; "all 17 blocks" sums
 * them weighted by their count in the model). ms (medians), fused / separate (speedup):
 *   block                      Zen5 1 thr warm         Zen5 1 thr flushed
 *   b1 32 dw@112 ->16          0.161 / 0.177 (1.10x)   0.330 / 0.380 (1.15x)
 *   b2 16->96@112 s2 ->24      0.373 / 0.382 (1.02x)   0.454 / 0.522 (1.15x)
 *   b3 24->144@56 ->24 +r      0.340 / 0.349 (1.03x)   0.380 / 0.506 (1.33x)
 *   b4 24->144@56 s2 ->32      0.175 / 0.178 (1.02x)   0.211 / 0.235 (1.12x)
 *   b5 32->192@28 ->32 +r      0.123 / 0.125 (1.02x)   0.160 / 0.198 (1.24x)
 *   b7 32->192@28 s2 ->64      0.076 / 0.077 (1.01x)   0.109 / 0.112 (1.03x)
 *   b8 64->384@14 ->64 +r      0.103 / 0.104 (1.01x)   0.131 / 0.140 (1.07x)
 *   b11 64->384@14 ->96        0.122 / 0.124 (1.01x)   0.152 / 0.160 (1.06x)
 *   b12 96->576@14 ->96 +r     0.229 / 0.231 (1.01x)   0.257 / 0.268 (1.05x)
 *   b14 96->576@14 s2 ->160    0.141 / 0.142 (1.00x)   0.191 / 0.183 (0.96x)
 *   b15 160->960@7 ->160 +r    0.141 / 0.143 (1.01x)   0.208 / 0.212 (1.02x)
 *   b17 160->960@7 ->320       0.206 / 0.208 (1.01x)   0.272 / 0.295 (1.08x)
 *   all 17 blocks (x n)        2.892 / 2.949 (1.02x)   3.741 / 4.170 (1.11x)
 * (Zen 5 EPYC VM, 2 cores, AVX-512, `--threads 1 --reps 41` and `--reps 21 --flush`; the VM
 * was shared with other jobs (load ~6): its 2-thread runs got about one core's worth and
 * are not shown.) The same build on an Intel Xeon (AVX-512, 2 MB L2 per core), `taskset`
 * to 1, 2 or 4 cores, warm, `--reps 41` (4 threads: 31):
 *   block                      Xeon 1 thr              Xeon 2 thr              Xeon 4 thr
 *   b1 32 dw@112 ->16          0.221 / 0.305 (1.38x)   0.107 / 0.129 (1.20x)   0.054 / 0.092 (1.71x)
 *   b2 16->96@112 s2 ->24      0.534 / 0.593 (1.11x)   0.245 / 0.258 (1.05x)   0.124 / 0.164 (1.32x)
 *   b3 24->144@56 ->24 +r      0.427 / 0.455 (1.07x)   0.213 / 0.229 (1.07x)   0.158 / 0.167 (1.06x)
 *   b4 24->144@56 s2 ->32      0.206 / 0.208 (1.01x)   0.103 / 0.105 (1.02x)   0.076 / 0.084 (1.11x)
 *   b5 32->192@28 ->32 +r      0.140 / 0.141 (1.01x)   0.077 / 0.079 (1.02x)   0.057 / 0.067 (1.16x)
 *   b7 32->192@28 s2 ->64      0.091 / 0.090 (0.99x)   0.051 / 0.053 (1.04x)   0.032 / 0.040 (1.25x)
 *   b8 64->384@14 ->64 +r      0.115 / 0.115 (1.00x)   0.074 / 0.080 (1.09x)   0.045 / 0.054 (1.22x)
 *   b11 64->384@14 ->96        0.136 / 0.137 (1.00x)   0.092 / 0.101 (1.10x)   0.050 / 0.059 (1.18x)
 *   b12 96->576@14 ->96 +r     0.242 / 0.238 (0.98x)   0.161 / 0.170 (1.05x)   0.092 / 0.095 (1.02x)
 *   b14 96->576@14 s2 ->160    0.157 / 0.157 (1.00x)   0.085 / 0.084 (0.99x)   0.053 / 0.057 (1.07x)
 *   b15 160->960@7 ->160 +r    0.177 / 0.186 (1.05x)   0.087 / 0.092 (1.06x)   0.053 / 0.057 (1.08x)
 *   b17 160->960@7 ->320       0.255 / 0.246 (0.96x)   0.128 / 0.133 (1.03x)   0.088 / 0.089 (1.01x)
 *   all 17 blocks (x n)        3.490 / 3.667 (1.05x)   1.898 / 2.015 (1.06x)   1.172 / 1.350 (1.15x)
 * Xeon, cold caches (--flush): 1.06x (1 thread) and 1.08x (2 threads) over all blocks, 0.97x
 * to 1.38x per block; --isa avx2: 1.02x (1 and 2 threads), 0.99x to 1.17x per block. That
 * Xeon was noisy (repeated runs of one block differ by up to ~5%): the blocks at 0.96x-0.99x
 * came out at 1.01x-1.03x in other runs. Where t and u are large (112x112, 56x56) the fused
 * block saves their trips through L3/DRAM; at 14x14 and 7x7 with several threads it runs
 * either row bands (one parallel section, some t rows computed twice) or, where that halo
 * costs more than u's round trip (b14, b15, b17 with 2 threads, and b12 with 4), the two
 * phases, which do the separate calls' work. Outputs bitwise equal to the separate calls'
 * (same microkernels, same summation order; channel chunks, not used on these shapes, would
 * round differently).
 *
 * --pairs: the expand 1x1 -> depthwise kernel (cpu_expand_dw_nhwc_f32) against the 1x1
 * (cpu_conv2d_nhwc_f32 into a temporary t) + cpu_dwconv2d_nhwc_f32, on the layer pairs of
 * MobileNetV2 and EfficientNet-B0:
 *
 * Measured, ms (medians), fused / separate (speedup). Zen 5 EPYC (2 cores, 1 MB L2 per core,
 * 32 MB L3, AVX-512), 1 thread, `--reps 41` warm and `--reps 21 --flush`; the VM was
 * shared with other jobs (its 2-thread runs got about one core's worth and are not shown;
 * there, too, fused was 1.02x-1.35x faster):
 *   layer                      Zen5 1 thr warm          Zen5 1 thr flushed
 *   mbv2 16->96 @112 dw3 s2    0.298 / 0.369 (1.24x)    0.389 / 0.647 (1.66x)
 *   mbv2 24->144 @56 dw3 s1    0.227 / 0.246 (1.08x)    0.286 / 0.473 (1.66x)
 *   mbv2 24->144 @56 dw3 s2    0.150 / 0.173 (1.15x)    0.183 / 0.300 (1.64x)
 *   mbv2 32->192 @28 dw3 s1    0.084 / 0.091 (1.08x)    0.119 / 0.126 (1.05x)
 *   mbv2 64->384 @14 dw3 s1    0.062 / 0.066 (1.07x)    0.085 / 0.092 (1.08x)
 *   mbv2 96->576 @14 dw3 s1    0.124 / 0.128 (1.03x)    0.154 / 0.178 (1.15x)
 *   mbv2 160->960 @7 dw3 s1    0.080 / 0.085 (1.06x)    0.121 / 0.140 (1.16x)
 *   effb0 16->96 @112 dw3 s2   0.487 / 0.549 (1.13x)    0.558 / 0.834 (1.49x)
 *   effb0 24->144 @56 dw5 s2   0.253 / 0.275 (1.09x)    0.318 / 0.416 (1.31x)
 *   effb0 40->240 @28 dw5 s1   0.244 / 0.251 (1.03x)    0.271 / 0.313 (1.16x)
 *   effb0 80->480 @14 dw3 s1   0.121 / 0.123 (1.02x)    0.144 / 0.162 (1.12x)
 *   effb0 112->672 @14 dw5 s1  0.268 / 0.273 (1.02x)    0.316 / 0.335 (1.06x)
 *   effb0 192->1152 @7 dw5 s1  0.169 / 0.177 (1.05x)    0.256 / 0.262 (1.02x)
 * The same build on an idle Intel Xeon (AVX-512, 2 MB L2 per core), `taskset -c 2,3`:
 *   layer                      Xeon 1 thr warm          Xeon 2 thr warm          Xeon 2 thr flushed
 *   mbv2 16->96 @112 dw3 s2    0.407 / 0.642 (1.58x)    0.189 / 0.314 (1.66x)    0.232 / 0.316 (1.36x)
 *   mbv2 24->144 @56 dw3 s1    0.245 / 0.315 (1.29x)    0.124 / 0.142 (1.15x)    0.143 / 0.162 (1.13x)
 *   mbv2 24->144 @56 dw3 s2    0.164 / 0.218 (1.32x)    0.083 / 0.095 (1.15x)    0.097 / 0.117 (1.21x)
 *   mbv2 32->192 @28 dw3 s1    0.092 / 0.101 (1.09x)    0.047 / 0.055 (1.19x)    0.064 / 0.072 (1.13x)
 *   mbv2 64->384 @14 dw3 s1    0.065 / 0.070 (1.07x)    0.033 / 0.053 (1.59x)    0.051 / 0.070 (1.36x)
 *   mbv2 96->576 @14 dw3 s1    0.136 / 0.142 (1.05x)    0.068 / 0.098 (1.43x)    0.088 / 0.124 (1.41x)
 *   mbv2 160->960 @7 dw3 s1    0.085 / 0.086 (1.01x)    0.045 / 0.051 (1.15x)    0.062 / 0.070 (1.11x)
 *   effb0 16->96 @112 dw3 s2   0.714 / 0.908 (1.27x)    0.339 / 0.436 (1.28x)    0.363 / 0.459 (1.26x)
 *   effb0 24->144 @56 dw5 s2   0.353 / 0.397 (1.12x)    0.173 / 0.185 (1.07x)    0.192 / 0.204 (1.06x)
 *   effb0 40->240 @28 dw5 s1   0.335 / 0.343 (1.02x)    0.162 / 0.177 (1.09x)    0.195 / 0.199 (1.02x)
 *   effb0 80->480 @14 dw3 s1   0.146 / 0.147 (1.01x)    0.077 / 0.099 (1.30x)    0.096 / 0.118 (1.23x)
 *   effb0 112->672 @14 dw5 s1  0.333 / 0.341 (1.02x)    0.162 / 0.198 (1.23x)    0.186 / 0.221 (1.19x)
 *   effb0 192->1152 @7 dw5 s1  0.193 / 0.201 (1.05x)    0.094 / 0.112 (1.19x)    0.119 / 0.139 (1.17x)
 * Where t is large (112x112, 56x56) fusion saves its trip through L3/DRAM; at 14x14 and 7x7
 * (t fits the L2 anyway) one thread gains little, two gain from one parallel section instead
 * of two and from splitting channels (no halo rows). Both compute t with the same igemm
 * microkernel in the same order: their outputs were bitwise equal (max rel 0). With --isa avx2 (Xeon,
 * 1 thread, warm) fused was 1.01x-1.26x faster.
 *
 * build: cmake -S . -B build-rel -DCMAKE_BUILD_TYPE=Release && cmake --build build-rel && \
 *        cc -O2 -Iinclude -Isrc bench/expand_dw_bench.c build-rel/libkiln.a -lm -lpthread \
 *            -o expand_dw_bench
 * usage: expand_dw_bench [--pairs] [--reps N] [--threads LIST] [--isa NAME] [--only NAME] [--flush]
 *   --threads: comma-separated thread counts (default 1,2); --only: the blocks (layers) whose
 *   name contains NAME; --isa: avx512, avx2 or scalar (default: the best this CPU has). */
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
    int64_t C, E, HW, K, S;
    cpu_act act; /* of both convolutions: ReLU6 (Clip 0..6) for MobileNetV2, SiLU for B0 */
} layer;

static const layer layers[] = {
    {"mbv2 16->96 @112 dw3 s2", 16, 96, 112, 3, 2, CPU_ACT_CLIP},
    {"mbv2 24->144 @56 dw3 s1", 24, 144, 56, 3, 1, CPU_ACT_CLIP},
    {"mbv2 24->144 @56 dw3 s2", 24, 144, 56, 3, 2, CPU_ACT_CLIP},
    {"mbv2 32->192 @28 dw3 s1", 32, 192, 28, 3, 1, CPU_ACT_CLIP},
    {"mbv2 64->384 @14 dw3 s1", 64, 384, 14, 3, 1, CPU_ACT_CLIP},
    {"mbv2 96->576 @14 dw3 s1", 96, 576, 14, 3, 1, CPU_ACT_CLIP},
    {"mbv2 160->960 @7 dw3 s1", 160, 960, 7, 3, 1, CPU_ACT_CLIP},
    {"effb0 16->96 @112 dw3 s2", 16, 96, 112, 3, 2, CPU_ACT_SILU},
    {"effb0 24->144 @56 dw5 s2", 24, 144, 56, 5, 2, CPU_ACT_SILU},
    {"effb0 40->240 @28 dw5 s1", 40, 240, 28, 5, 1, CPU_ACT_SILU},
    /* beyond the list: B0's larger late layers */
    {"effb0 80->480 @14 dw3 s1", 80, 480, 14, 3, 1, CPU_ACT_SILU},
    {"effb0 112->672 @14 dw5 s1", 112, 672, 14, 5, 1, CPU_ACT_SILU},
    {"effb0 192->1152 @7 dw5 s1", 192, 1152, 7, 5, 1, CPU_ACT_SILU},
};

/* The 17 inverted-residual blocks of MobileNetV2 (224x224, batch 1) as their 12 distinct
 * shapes: C -> E (E 0: no expansion) -> P at HW, dw 3x3 stride S, residual when S is 1 and
 * P == C; n: how many blocks of the model have the shape. ReLU6 after the expansion and the
 * depthwise, none after the projection. */
typedef struct block {
    const char *name;
    int64_t C, E, P, HW, S, n;
} block;

static const block blocks[] = {
    {"b1 32 dw@112 ->16", 32, 0, 16, 112, 1, 1},  {"b2 16->96@112 s2 ->24", 16, 96, 24, 112, 2, 1},
    {"b3 24->144@56 ->24 +r", 24, 144, 24, 56, 1, 1},  {"b4 24->144@56 s2 ->32", 24, 144, 32, 56, 2, 1},
    {"b5 32->192@28 ->32 +r", 32, 192, 32, 28, 1, 2},  {"b7 32->192@28 s2 ->64", 32, 192, 64, 28, 2, 1},
    {"b8 64->384@14 ->64 +r", 64, 384, 64, 14, 1, 3},  {"b11 64->384@14 ->96", 64, 384, 96, 14, 1, 1},
    {"b12 96->576@14 ->96 +r", 96, 576, 96, 14, 1, 2}, {"b14 96->576@14 s2 ->160", 96, 576, 160, 14, 2, 1},
    {"b15 160->960@7 ->160 +r", 160, 960, 160, 7, 1, 2}, {"b17 160->960@7 ->320", 160, 960, 320, 7, 1, 1},
};

/* --flush: every pool thread reads its own 64 MB (read only: no dirty lines whose write-back
 * would land on the timed run), evicting its L1/L2 and the shared L3. */
#define FLUSH_BYTES ((size_t)64 << 20)
static char *flush_buf[64];
static volatile unsigned flush_sink;
static void flush_task(void *arg, int64_t b, int64_t e)
{
    (void)arg;
    for (int64_t t = b; t < e && t < 64; t++) {
        if (!flush_buf[t]) {
            flush_buf[t] = malloc(FLUSH_BYTES);
            if (!flush_buf[t]) continue;
            memset(flush_buf[t], (int)t, FLUSH_BYTES);
        }
        unsigned s = 0;
        for (size_t i = 0; i < FLUSH_BYTES; i += 64) s += (unsigned char)flush_buf[t][i];
        flush_sink += s;
    }
}
static void flush_caches(core_threadpool *pool)
{
    const int n = core_threadpool_size(pool);
    core_threadpool_parallel_for(pool, n, 1, flush_task, NULL);
}

/* One thread count of the layer pairs (--pairs): fused expand->dw vs 1x1 + depthwise. */
static void run_pairs(core_threadpool *pool, int nth, int reps, const char *only, bool flush, double *tf, double *ts)
{
    for (size_t li = 0; li < sizeof layers / sizeof layers[0]; li++) {
        const layer *l = &layers[li];
        if (only && !strstr(l->name, only)) continue;
        const int64_t C = l->C, E = l->E, H = l->HW, p = l->K / 2, O = (H + 2 * p - l->K) / l->S + 1;
        cpu_conv2d g1 = {1, C, H, H, E, H, H, 1, 1, 1, 1, 1, 1, 1, 0, 0};
        cpu_conv2d g2 = {1, E, H, H, E, O, O, E, l->K, l->K, l->S, l->S, 1, 1, p, p};
        float *x = rnd((size_t)(H * H * C), 0.0f, 2.0f);
        float *w1 = rnd((size_t)(E * C), -1.0f / sqrtf((float)C), 1.0f / sqrtf((float)C));
        float *b1 = rnd((size_t)E, -0.5f, 0.5f), *b2 = rnd((size_t)E, -0.5f, 0.5f);
        float *w2 = rnd((size_t)(E * l->K * l->K), -0.3f, 0.3f);
        float *t = cpu_alloc_floats((size_t)(H * H * E));
        float *yf = cpu_alloc_floats((size_t)(O * O * E)), *ysep = cpu_alloc_floats((size_t)(O * O * E));
        cpu_epilogue ep = cpu_epilogue_none();
        ep.act = l->act;
        ep.act_a = 0.0f;
        ep.act_b = 6.0f;
        int bad = 0;
        for (int r = -1; r < reps; r++) {
            for (int m = 0; m < 2; m++) {
                const int which = (r & 1) ? 1 - m : m; /* 0 fused, 1 separate */
                if (flush) flush_caches(pool);
                double t0 = now_s();
                if (which == 0) {
                    bad |= KILN_OK != cpu_expand_dw_nhwc_f32(&g1, x, C, w1, b1, &ep, &g2, w2, b2, &ep, yf, E, true, pool);
                } else {
                    bad |= KILN_OK != cpu_conv2d_nhwc_f32(&g1, x, C, w1, b1, NULL, 0, t, E, &ep, CPU_CONV_AUTO, true, pool);
                    bad |= KILN_OK != cpu_dwconv2d_nhwc_f32(&g2, t, E, w2, b2, NULL, 0, ysep, E, &ep, true, pool);
                }
                double dt = now_s() - t0;
                if (r >= 0) (which == 0 ? tf : ts)[r] = dt;
            }
        }
        double maxrel = 0;
        for (int64_t i = 0; i < O * O * E; i++) {
            double d = fabs((double)yf[i] - ysep[i]) / (fabs((double)ysep[i]) + 1e-3);
            if (!(d <= maxrel)) maxrel = d;
        }
        const double mf = median(tf, reps) * 1e3, ms = median(ts, reps) * 1e3;
        printf("%-28s %3d %10.4f %10.4f %7.2fx %10.2e%s\n", l->name, nth, mf, ms, ms / mf, maxrel,
               !bad ? "" : "  (a call failed)");
        fflush(stdout);
        free(x);
        free(w1);
        free(b1);
        free(b2);
        free(w2);
        free(t);
        free(yf);
        free(ysep);
    }
}

/* One thread count of the MobileNetV2 blocks: cpu_mbconv_nhwc_f32 vs cpu_expand_dw_nhwc_f32
 * (or, without expansion, cpu_dwconv2d_nhwc_f32) into u + cpu_conv2d_nhwc_f32 for the
 * projection (with the residual in its epilogue). Prints the model-weighted totals (n). */
static void run_blocks(core_threadpool *pool, int nth, int reps, const char *only, bool flush, double *tf,
                       double *ts)
{
    double sum_f = 0, sum_s = 0;
    for (size_t bi = 0; bi < sizeof blocks / sizeof blocks[0]; bi++) {
        const block *b = &blocks[bi];
        if (only && !strstr(b->name, only)) continue;
        const bool expand = b->E > 0;
        const int64_t C = b->C, E = expand ? b->E : b->C, P = b->P, H = b->HW, O = (H + 2 - 3) / b->S + 1;
        const bool res = b->S == 1 && P == C;
        cpu_conv2d g1 = {1, C, H, H, E, H, H, 1, 1, 1, 1, 1, 1, 1, 0, 0};
        cpu_conv2d g2 = {1, E, H, H, E, O, O, E, 3, 3, b->S, b->S, 1, 1, 1, 1};
        cpu_conv2d g3 = {1, E, O, O, P, O, O, 1, 1, 1, 1, 1, 1, 1, 0, 0};
        float *x = rnd((size_t)(H * H * C), 0.0f, 2.0f);
        float *w1 = rnd((size_t)(E * C), -1.0f / sqrtf((float)C), 1.0f / sqrtf((float)C));
        float *b1 = rnd((size_t)E, -0.5f, 0.5f), *b2 = rnd((size_t)E, -0.5f, 0.5f), *b3 = rnd((size_t)P, -0.5f, 0.5f);
        float *w2 = rnd((size_t)(E * 9), -0.3f, 0.3f);
        float *w3 = rnd((size_t)(P * E), -1.0f / sqrtf((float)E), 1.0f / sqrtf((float)E));
        float *u = cpu_alloc_floats((size_t)(O * O * E));
        float *yf = cpu_alloc_floats((size_t)(O * O * P)), *ysep = cpu_alloc_floats((size_t)(O * O * P));
        cpu_epilogue ep = cpu_epilogue_none(), none = cpu_epilogue_none();
        ep.act = CPU_ACT_CLIP;
        ep.act_a = 0.0f;
        ep.act_b = 6.0f;
        const cpu_conv2d *pg1 = expand ? &g1 : NULL;
        const float *resid = res ? x : NULL;
        int bad = 0;
        for (int r = -1; r < reps; r++) {
            for (int m = 0; m < 2; m++) {
                const int which = (r & 1) ? 1 - m : m; /* 0 fused, 1 separate */
                if (flush) flush_caches(pool);
                double t0 = now_s();
                if (which == 0) {
                    bad |= KILN_OK != cpu_mbconv_nhwc_f32(pg1, x, C, w1, b1, &ep, &g2, w2, b2, &ep, &g3, w3, b3, &none,
                                                          resid, C, yf, P, true, pool);
                } else {
                    if (expand)
                        bad |= KILN_OK != cpu_expand_dw_nhwc_f32(&g1, x, C, w1, b1, &ep, &g2, w2, b2, &ep, u, E, true, pool);
                    else
                        bad |= KILN_OK != cpu_dwconv2d_nhwc_f32(&g2, x, C, w2, b2, NULL, 0, u, E, &ep, true, pool);
                    bad |= KILN_OK != cpu_conv2d_nhwc_f32(&g3, u, E, w3, b3, resid, C, ysep, P, &none, CPU_CONV_AUTO,
                                                          true, pool);
                }
                double dt = now_s() - t0;
                if (r >= 0) (which == 0 ? tf : ts)[r] = dt;
            }
        }
        double maxrel = 0;
        for (int64_t i = 0; i < O * O * P; i++) {
            double d = fabs((double)yf[i] - ysep[i]) / (fabs((double)ysep[i]) + 1e-3);
            if (!(d <= maxrel)) maxrel = d;
        }
        const double mf = median(tf, reps) * 1e3, ms = median(ts, reps) * 1e3;
        sum_f += (double)b->n * mf;
        sum_s += (double)b->n * ms;
        printf("%-28s %3d %10.4f %10.4f %7.2fx %10.2e%s\n", b->name, nth, mf, ms, ms / mf, maxrel,
               !bad ? "" : "  (a call failed)");
        fflush(stdout);
        free(x);
        free(w1);
        free(b1);
        free(b2);
        free(b3);
        free(w2);
        free(w3);
        free(u);
        free(yf);
        free(ysep);
    }
    if (!only) printf("%-28s %3d %10.4f %10.4f %7.2fx\n", "all 17 blocks (x n)", nth, sum_f, sum_s, sum_s / sum_f);
}

int main(int argc, char **argv)
{
    int reps = 21;
    const char *only = NULL, *isa = NULL, *threads = "1,2";
    bool flush = false, pairs = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = argv[++i];
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc) isa = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--flush")) flush = true;
        else if (!strcmp(argv[i], "--pairs")) pairs = true;
        else {
            fprintf(stderr, "usage: %s [--pairs] [--reps N] [--threads LIST] [--isa NAME] [--only NAME] [--flush]\n",
                    argv[0]);
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    if (isa && !cpu_ukernels_force_isa(isa)) {
        fprintf(stderr, "this CPU cannot run ISA %s\n", isa);
        return 2;
    }
    printf("isa %s, reps %d%s\n", cpu_ukernels_get()->isa, reps, flush ? ", caches flushed" : ", warm");
    printf("%-28s %3s %10s %10s %8s %10s\n", pairs ? "layer" : "block", "thr", "fused ms", "separate", "speedup",
           "max rel");
    double *tf = malloc(sizeof(double) * (size_t)reps), *ts = malloc(sizeof(double) * (size_t)reps);
    for (const char *tp = threads; *tp;) {
        const int nth = atoi(tp);
        const char *comma = strchr(tp, ',');
        tp = comma ? comma + 1 : tp + strlen(tp);
        if (nth < 1) continue;
        core_threadpool *pool = nth > 1 ? core_threadpool_create(nth) : NULL;
        if (pairs) run_pairs(pool, nth, reps, only, flush, tf, ts);
        else run_blocks(pool, nth, reps, only, flush, tf, ts);
        core_threadpool_destroy(pool);
    }
    free(tf);
    free(ts);
    for (int i = 0; i < 64; i++) free(flush_buf[i]);
    return 0;
}
