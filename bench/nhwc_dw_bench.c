/* nhwc_dw_bench.c — GFLOP/s of the NHWC depthwise convolution (cpu_dwconv2d_nhwc_f32) against
 * the NCHW depthwise path (cpu_conv2d_f32 with CPU_CONV_DW) on MobileNetV2 / EfficientNet-B0
 * layer shapes, with 1 and 2 threads; bias + Clip(0, 6) fused; the two run alternately and
 * each reports its median.
 *
 * build: cmake --build build-rel && cc -O2 -Iinclude -Isrc bench/nhwc_dw_bench.c \
 *            build-rel/libkiln.a -lm -lpthread -o nhwc_dw_bench
 * usage: nhwc_dw_bench [--reps N] [--isa NAME] */
#include "core/threadpool.h"
#include "cpu/cpu.h"
#include "cpu/nhwc.h"
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

typedef struct shape {
    const char *name;
    int64_t C, H, K, S;
} shape;

int main(int argc, char **argv)
{
    int reps = 21;
    const char *isa = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc) isa = argv[++i];
    }
    if (reps < 1) reps = 1;
    if (reps > 1000) reps = 1000;
    if (isa && !cpu_ukernels_force_isa(isa)) {
        fprintf(stderr, "ISA %s not available\n", isa);
        return 1;
    }
    static const shape shapes[] = {
        {"mbv2 112x112x32 3x3 s1", 32, 112, 3, 1},  {"mbv2 112x112x96 3x3 s2", 96, 112, 3, 2},
        {"mbv2 56x56x144 3x3 s1", 144, 56, 3, 1},   {"mbv2 56x56x144 3x3 s2", 144, 56, 3, 2},
        {"mbv2 28x28x192 3x3 s1", 192, 28, 3, 1},   {"mbv2 14x14x384 3x3 s1", 384, 14, 3, 1},
        {"mbv2 14x14x576 3x3 s1", 576, 14, 3, 1},   {"mbv2 7x7x960 3x3 s1", 960, 7, 3, 1},
        {"effb0 28x28x240 5x5 s1", 240, 28, 5, 1},  {"effb0 14x14x480 5x5 s1", 480, 14, 5, 1},
        {"effb0 14x14x672 5x5 s2", 672, 14, 5, 2},  {"effb0 7x7x1152 5x5 s1", 1152, 7, 5, 1},
    };
    core_threadpool *pool2 = core_threadpool_create(2);
    printf("isa %s, %d reps, medians (GFLOP/s; 1 FMA = 2 flops)\n", cpu_ukernels_get()->isa, reps);
    printf("%-26s %10s %10s %7s   %10s %10s %7s\n", "shape", "nchw 1t", "nhwc 1t", "x", "nchw 2t", "nhwc 2t", "x");
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const shape *s = &shapes[si];
        int64_t C = s->C, H = s->H, K = s->K, P = K / 2;
        int64_t OH = (H + 2 * P - K) / s->S + 1;
        cpu_conv2d g = {1, C, H, H, C, OH, OH, C, K, K, s->S, s->S, 1, 1, P, P};
        size_t nx = (size_t)(C * H * H), ny = (size_t)(C * OH * OH);
        float *x = cpu_alloc_floats(nx), *y = cpu_alloc_floats(ny), *w = cpu_alloc_floats((size_t)(C * K * K));
        float *b = cpu_alloc_floats((size_t)C);
        for (size_t i = 0; i < nx; i++) x[i] = (float)(i % 97) * 0.01f - 0.4f;
        for (int64_t i = 0; i < C * K * K; i++) w[i] = (float)(i % 13) * 0.05f - 0.3f;
        for (int64_t i = 0; i < C; i++) b[i] = 0.01f * (float)i;
        cpu_epilogue ep = cpu_epilogue_none();
        ep.act = CPU_ACT_CLIP;
        ep.act_a = 0.0f;
        ep.act_b = 6.0f;
        double flops = 2.0 * (double)(C * OH * OH * K * K);
        double gf[2][2];
        for (int th = 0; th < 2; th++) {
            core_threadpool *pool = th ? pool2 : NULL;
            double t[2][1000];
            for (int r = -2; r < reps; r++) {
                for (int k = 0; k < 2; k++) {
                    double t0 = now_s();
                    if (k == 0) cpu_conv2d_f32(&g, x, w, b, NULL, y, &ep, CPU_CONV_DW, true, pool);
                    else cpu_dwconv2d_nhwc_f32(&g, x, C, w, b, NULL, C, y, C, &ep, true, pool);
                    double dt = now_s() - t0;
                    if (r >= 0) t[k][r] = dt;
                }
            }
            for (int k = 0; k < 2; k++) {
                qsort(t[k], (size_t)reps, sizeof(double), cmp_d);
                gf[th][k] = flops / t[k][reps / 2] * 1e-9;
            }
        }
        printf("%-26s %10.1f %10.1f %6.2fx   %10.1f %10.1f %6.2fx\n", s->name, gf[0][0], gf[0][1],
               gf[0][1] / gf[0][0], gf[1][0], gf[1][1], gf[1][1] / gf[1][0]);
        free(x);
        free(y);
        free(w);
        free(b);
    }
    core_threadpool_destroy(pool2);
    return 0;
}
