/* test_expand_dw_nhwc.c — the fused expand 1x1 -> depthwise NHWC kernel (src/cpu/
 * expand_dw_nhwc.c) against a naive double-precision loop of the two convolutions, over edge
 * geometries (1x1 images, odd sizes, channel counts 1..3, 17, 33, strides, dilation,
 * asymmetric pads, batch 2, pixel strides > channel counts, bands that must slide and
 * channel chunks), every activation pair of MobileNet/EfficientNet, on every microkernel ISA
 * this CPU has, 1, 2 and 3 threads, cached and per-call packed weights. y is filled with NaN
 * first: every output element must be written, the channels past E of a strided y must not.
 * Also: eligible() on the MobileNetV2 / EfficientNet-B0 layer pairs, and pairs it declines.
 * The whole inverted-residual block (cpu_mbconv_nhwc_f32: expansion or none, depthwise,
 * projection, residual separate or in place in y) likewise against a naive loop of the three
 * convolutions, with projection widths that are not a multiple of the tile (1, 3, 17, 24),
 * residual pixel strides, bands and channel chunks that accumulate in y.
 * Prints "N passed, M failed". */
#include "core/threadpool.h"
#include "cpu/cpu.h"
#include "cpu/nhwc.h"
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

/* y against want (NaN in want: an element the kernel must leave untouched, still NaN) within
 * 2e-5 of the element's magnitude sum plus 1e-5; prints the first bad element. */
static void check_output(kiln_status st, const float *y, const double *want, const double *mag, size_t ny,
                         int64_t ys, const char *what)
{
    bool ok = st == KILN_OK;
    size_t bad = 0;
    for (size_t i = 0; ok && i < ny; i++) {
        bool ok1;
        if (isnan(want[i])) ok1 = isnan(y[i]);
        else ok1 = fabs((double)y[i] - want[i]) <= 2e-5 * mag[i] + 1e-5; /* NaN fails */
        if (!ok1) {
            ok = false;
            bad = i;
        }
    }
    if (!ok && st == KILN_OK)
        printf("  element %zu (pixel %zu, c %zu): want %.8g got %.8g\n", bad, bad / (size_t)ys, bad % (size_t)ys,
               want[bad], y[bad]);
    if (st != KILN_OK) printf("  status %d\n", (int)st);
    check(ok, what);
}

/* the activations under test, with their parameters */
typedef enum { A_NONE, A_RELU, A_CLIP6, A_SILU } act_kind;
static const char *act_names[] = {"none", "relu", "clip0..6", "silu"};

static cpu_epilogue act_ep(act_kind a)
{
    cpu_epilogue ep = cpu_epilogue_none();
    ep.act = a == A_RELU ? CPU_ACT_RELU : a == A_CLIP6 ? CPU_ACT_CLIP : a == A_SILU ? CPU_ACT_SILU : CPU_ACT_NONE;
    ep.act_a = 0.0f;
    ep.act_b = 6.0f;
    return ep;
}

static double act_ref(double v, act_kind a)
{
    switch (a) {
    case A_RELU: return v > 0 ? v : 0;
    case A_CLIP6: return v < 0 ? 0 : v > 6 ? 6 : v;
    case A_SILU: return v / (1.0 + exp(-v));
    default: return v;
    }
}

typedef struct ed_case {
    int64_t N, C, E, H, W, K, S, D, PT, PL, PB, PR;
    int64_t xpad, ypad; /* pixel stride - channel count */
    act_kind a1, a2;
    bool bias;
} ed_case;

static void ed_case_run(const ed_case *k, core_threadpool *pool2, core_threadpool *pool3)
{
    const int64_t N = k->N, C = k->C, E = k->E, H = k->H, W = k->W, K = k->K;
    const int64_t ext = (K - 1) * k->D + 1;
    const int64_t OH = (H + k->PT + k->PB - ext) / k->S + 1, OW = (W + k->PL + k->PR - ext) / k->S + 1;
    if (OH < 1 || OW < 1) return;
    const int64_t xs = C + k->xpad, ys = E + k->ypad;
    const size_t nx = (size_t)(N * H * W * xs), ny = (size_t)(N * OH * OW * ys), nt = (size_t)(N * H * W * E);
    float *x = malloc(nx * 4 + 4), *w1 = malloc((size_t)(E * C) * 4), *b1 = malloc((size_t)E * 4);
    float *w2 = malloc((size_t)(E * K * K) * 4), *b2 = malloc((size_t)E * 4), *y = malloc(ny * 4 + 4);
    double *t = malloc(nt * 8 + 8), *tmag = malloc(nt * 8 + 8), *want = malloc(ny * 8 + 8), *mag = malloc(ny * 8 + 8);
    /* inputs like post-activation features, weights scaled so t stays O(1) (Clip 0..6 then
     * clips sometimes) */
    for (size_t i = 0; i < nx; i++) x[i] = 1.5f * frand() + 0.5f;
    for (int64_t i = 0; i < E * C; i++) w1[i] = 3.0f * frand() / sqrtf((float)C);
    for (int64_t i = 0; i < E; i++) b1[i] = frand(), b2[i] = frand();
    for (int64_t i = 0; i < E * K * K; i++) w2[i] = frand();
    /* the naive loops */
    for (int64_t p = 0; p < N * H * W; p++)
        for (int64_t e = 0; e < E; e++) {
            double s = k->bias ? b1[e] : 0.0, m = fabs(s);
            for (int64_t c = 0; c < C; c++) {
                double v = (double)x[p * xs + c] * w1[e * C + c];
                s += v;
                m += fabs(v);
            }
            t[p * E + e] = act_ref(s, k->a1);
            tmag[p * E + e] = m + fabs(s);
        }
    for (size_t i = 0; i < ny; i++) want[i] = NAN, mag[i] = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++)
                for (int64_t e = 0; e < E; e++) {
                    double s = k->bias ? b2[e] : 0.0, m = fabs(s);
                    for (int64_t ky = 0; ky < K; ky++)
                        for (int64_t kx = 0; kx < K; kx++) {
                            int64_t iy = oy * k->S - k->PT + ky * k->D, ix = ox * k->S - k->PL + kx * k->D;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue; /* t's zero padding */
                            int64_t ti = ((n * H + iy) * W + ix) * E + e;
                            double wv = w2[(e * K + ky) * K + kx];
                            s += t[ti] * wv;
                            m += fabs(t[ti] * wv) + fabs(wv) * tmag[ti];
                        }
                    int64_t o = ((n * OH + oy) * OW + ox) * ys + e;
                    want[o] = act_ref(s, k->a2);
                    mag[o] = m + fabs(s);
                }
    cpu_conv2d g1 = {N, C, H, W, E, H, W, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    cpu_conv2d g2 = {N, E, H, W, E, OH, OW, E, K, K, k->S, k->S, k->D, k->D, k->PT, k->PL};
    cpu_epilogue ep1 = act_ep(k->a1), ep2 = act_ep(k->a2);
    check(cpu_expand_dw_nhwc_eligible(&g1, &g2), "eligible");
    int n_isa = 0;
    const char *const *isas = cpu_ukernels_isas(&n_isa);
    for (int isa = 0; isa < n_isa; isa++) {
        cpu_ukernels_force_isa(isas[isa]);
        for (int th = 1; th <= 3; th++)
            for (int cache = 0; cache < 2; cache++) {
                if (th == 3 && !cache) continue;
                for (size_t i = 0; i < ny; i++) y[i] = NAN;
                core_threadpool *pool = th == 1 ? NULL : th == 2 ? pool2 : pool3;
                kiln_status st = cpu_expand_dw_nhwc_f32(&g1, x, xs, w1, k->bias ? b1 : NULL, &ep1, &g2, w2,
                                                        k->bias ? b2 : NULL, &ep2, y, ys, cache != 0, pool);
                char what[512];
                snprintf(what, sizeof what,
                         "fused [%s, %d thr, cache %d] N%lld C%lld E%lld %lldx%lld k%lld s%lld d%lld "
                         "p%lld,%lld,%lld,%lld xs+%lld ys+%lld act %s/%s bias %d",
                         cpu_ukernels_get()->isa, th, cache, (long long)N, (long long)C, (long long)E,
                         (long long)H, (long long)W, (long long)K, (long long)k->S, (long long)k->D,
                         (long long)k->PT, (long long)k->PL, (long long)k->PB, (long long)k->PR,
                         (long long)k->xpad, (long long)k->ypad, act_names[k->a1], act_names[k->a2], k->bias);
                check_output(st, y, want, mag, ny, ys, what);
            }
    }
    cpu_ukernels_force_isa(NULL);
    free(x);
    free(w1);
    free(b1);
    free(w2);
    free(b2);
    free(y);
    free(t);
    free(tmag);
    free(want);
    free(mag);
}

static void test_sweep(core_threadpool *pool2, core_threadpool *pool3)
{
    static const int64_t cs[] = {1, 3, 16, 24};
    static const int64_t es[] = {1, 2, 3, 17, 33, 48};
    int rot = 0;
    for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++)
        for (size_t ei = 0; ei < sizeof es / sizeof es[0]; ei++, rot++) {
            const int64_t C = cs[ci], E = es[ei];
            const act_kind a1 = (act_kind)(rot % 4), a2 = (act_kind)((rot / 4 + rot) % 4);
            ed_case v[] = {
                /* N C E H W K S D PT PL PB PR xpad ypad a1 a2 bias */
                {1, C, E, 7, 7, 3, 1, 1, 1, 1, 1, 1, 0, 0, a1, a2, true},
                {1, C, E, 13, 13, 3, 2, 1, 1, 1, 1, 1, 0, 0, a2, a1, true},
                {2, C, E, 7, 13, 5, 1, 1, 2, 2, 2, 2, 3, 5, a1, a2, true},
                {1, C, E, 1, 1, 3, 1, 1, 1, 1, 1, 1, 0, 0, a1, a2, true},
                {1, C, E, 13, 7, 5, 2, 1, 1, 2, 2, 1, 0, 2, a2, a1, false},
                {1, C, E, 9, 11, 3, 1, 2, 2, 1, 0, 2, 1, 0, a1, a2, true},
            };
            for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) ed_case_run(&v[i], pool2, pool3);
        }
}

static void test_shapes(core_threadpool *pool2, core_threadpool *pool3)
{
    ed_case v[] = {
        /* N C E H W K S D PT PL PB PR xpad ypad a1 a2 bias */
        /* a band that slides (t rows > the band budget) and MobileNet-like strides */
        {1, 16, 96, 40, 40, 3, 1, 1, 1, 1, 1, 1, 0, 0, A_CLIP6, A_CLIP6, true},
        {1, 16, 96, 41, 41, 3, 2, 1, 1, 1, 1, 1, 0, 0, A_SILU, A_SILU, true},
        {2, 24, 144, 29, 29, 5, 2, 1, 2, 2, 2, 2, 0, 0, A_SILU, A_SILU, true},
        /* wide rows: a small band (R close to the kernel span) and channel chunks */
        {1, 3, 100, 8, 700, 3, 1, 1, 1, 1, 1, 1, 1, 0, A_RELU, A_NONE, true},
        {1, 5, 64, 9, 300, 5, 1, 1, 2, 2, 2, 2, 0, 0, A_NONE, A_RELU, true},
        /* large 1x1 weights: channel chunks by the weight budget; channel split */
        {1, 160, 960, 7, 7, 3, 1, 1, 1, 1, 1, 1, 0, 0, A_CLIP6, A_CLIP6, true},
        {1, 96, 576, 14, 14, 3, 2, 1, 1, 1, 1, 1, 0, 4, A_CLIP6, A_CLIP6, true},
        {2, 40, 240, 6, 5, 5, 1, 1, 2, 2, 2, 2, 0, 0, A_SILU, A_SILU, true},
        /* odd strides and pads: stride larger than the kernel (skipped t rows), pads beyond
         * the kernel's reach (rows all padding), kernel larger than the image, stride 3 */
        {1, 8, 20, 11, 11, 3, 4, 1, 1, 1, 1, 1, 0, 0, A_RELU, A_RELU, true},
        {1, 4, 18, 4, 4, 3, 1, 1, 3, 3, 3, 3, 0, 0, A_NONE, A_NONE, true},
        {1, 4, 18, 2, 3, 5, 1, 1, 2, 2, 2, 2, 0, 0, A_NONE, A_SILU, true},
        {2, 7, 35, 10, 10, 3, 3, 2, 2, 0, 1, 3, 2, 1, A_RELU, A_CLIP6, true},
        {1, 2, 40, 12, 5, 1, 2, 1, 0, 0, 0, 0, 0, 0, A_RELU, A_NONE, true},
        /* empty images: t has no rows / columns, y is act2(b2) from the padding alone */
        {1, 3, 5, 0, 4, 3, 1, 1, 2, 1, 2, 1, 0, 0, A_RELU, A_SILU, true},
        {2, 3, 5, 4, 0, 3, 1, 1, 1, 2, 1, 2, 0, 1, A_RELU, A_CLIP6, true},
        /* several images in one task's row range */
        {3, 16, 33, 3, 4, 3, 1, 1, 1, 1, 1, 1, 0, 0, A_CLIP6, A_NONE, true},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) ed_case_run(&v[i], pool2, pool3);
}

/* eligible() on real layer pairs: (C, E, HW, K, S) with pad K/2 */
typedef struct ed_layer {
    const char *name;
    int64_t C, E, HW, K, S;
} ed_layer;

static void test_eligible(void)
{
    static const ed_layer layers[] = {
        {"mbv2 16->96 @112 dw3 s2", 16, 96, 112, 3, 2},    {"mbv2 24->144 @56 dw3 s1", 24, 144, 56, 3, 1},
        {"mbv2 24->144 @56 dw3 s2", 24, 144, 56, 3, 2},    {"mbv2 32->192 @28 dw3 s1", 32, 192, 28, 3, 1},
        {"mbv2 32->192 @28 dw3 s2", 32, 192, 28, 3, 2},    {"mbv2 64->384 @14 dw3 s1", 64, 384, 14, 3, 1},
        {"mbv2 96->576 @14 dw3 s1", 96, 576, 14, 3, 1},    {"mbv2 96->576 @14 dw3 s2", 96, 576, 14, 3, 2},
        {"mbv2 160->960 @7 dw3 s1", 160, 960, 7, 3, 1},    {"effb0 16->96 @112 dw3 s2", 16, 96, 112, 3, 2},
        {"effb0 24->144 @56 dw3 s1", 24, 144, 56, 3, 1},   {"effb0 24->144 @56 dw5 s2", 24, 144, 56, 5, 2},
        {"effb0 40->240 @28 dw5 s1", 40, 240, 28, 5, 1},   {"effb0 40->240 @28 dw3 s2", 40, 240, 28, 3, 2},
        {"effb0 80->480 @14 dw3 s1", 80, 480, 14, 3, 1},   {"effb0 80->480 @14 dw5 s1", 80, 480, 14, 5, 1},
        {"effb0 112->672 @14 dw5 s1", 112, 672, 14, 5, 1}, {"effb0 112->672 @14 dw5 s2", 112, 672, 14, 5, 2},
        {"effb0 192->1152 @7 dw5 s1", 192, 1152, 7, 5, 1}, {"effb0 192->1152 @7 dw3 s1", 192, 1152, 7, 3, 1},
    };
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        const ed_layer *l = &layers[i];
        const int64_t p = l->K / 2, O = (l->HW + 2 * p - l->K) / l->S + 1;
        cpu_conv2d g1 = {1, l->C, l->HW, l->HW, l->E, l->HW, l->HW, 1, 1, 1, 1, 1, 1, 1, 0, 0};
        cpu_conv2d g2 = {1, l->E, l->HW, l->HW, l->E, O, O, l->E, l->K, l->K, l->S, l->S, 1, 1, p, p};
        char what[128];
        snprintf(what, sizeof what, "eligible: %s", l->name);
        check(cpu_expand_dw_nhwc_eligible(&g1, &g2), what);
    }
}

/* pairs it declines: KILN_ERR_UNSUPPORTED, y untouched */
static void test_unsupported(void)
{
    static float x[4096], w1[4096], w2[4096], y[4096];
    for (int i = 0; i < 4096; i++) x[i] = w1[i] = w2[i] = 0.5f;
    const cpu_conv2d g1 = {1, 4, 6, 6, 8, 6, 6, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    const cpu_conv2d g2 = {1, 8, 6, 6, 8, 6, 6, 8, 3, 3, 1, 1, 1, 1, 1, 1};
    cpu_conv2d a, b;
#define ED_BAD(MOD, WHAT)                                                                              \
    do {                                                                                               \
        a = g1;                                                                                        \
        b = g2;                                                                                        \
        MOD;                                                                                           \
        for (int i = 0; i < 4096; i++) y[i] = 7.0f;                                                    \
        kiln_status st = cpu_expand_dw_nhwc_f32(&a, x, a.C, w1, NULL, NULL, &b, w2, NULL, NULL, y, b.C, \
                                                false, NULL);                                          \
        bool untouched = true;                                                                         \
        for (int i = 0; i < 4096; i++) untouched = untouched && y[i] == 7.0f;                          \
        check(!cpu_expand_dw_nhwc_eligible(&a, &b) && st == KILN_ERR_UNSUPPORTED && untouched,         \
              "unsupported: " WHAT);                                                                   \
    } while (0)
    ED_BAD(a.KH = a.KW = 3, "g1 3x3");
    ED_BAD((a.SH = a.SW = 2, a.OH = a.OW = 3), "g1 stride 2");
    ED_BAD((a.PT = 1, a.OH = 8), "g1 padded");
    ED_BAD(a.G = 2, "g1 grouped");
    ED_BAD(a.C = 0, "g1 no channels");
    ED_BAD(b.M = 16, "g2 not depthwise (M != C)");
    ED_BAD(b.G = 4, "g2 not depthwise (G != C)");
    ED_BAD((b.C = b.M = b.G = 16), "g2 channels != g1 output channels");
    ED_BAD(b.H = 5, "g2 input height != g1 output height");
    ED_BAD(b.N = 2, "batch mismatch");
    ED_BAD(b.SH = 0, "g2 stride 0");
    ED_BAD(b.KH = 0, "g2 kernel 0");
    ED_BAD(b.PT = -1, "g2 negative pad");
    ED_BAD((a.W = a.OW = b.W = (int64_t)1 << 40), "huge width");
#undef ED_BAD
    check(!cpu_expand_dw_nhwc_eligible(NULL, &g2) && !cpu_expand_dw_nhwc_eligible(&g1, NULL), "unsupported: NULL");
    /* pixel strides below the channel counts */
    for (int i = 0; i < 4096; i++) y[i] = 7.0f;
    check(cpu_expand_dw_nhwc_f32(&g1, x, 3, w1, NULL, NULL, &g2, w2, NULL, NULL, y, 8, false, NULL) ==
              KILN_ERR_UNSUPPORTED, "unsupported: xs < C");
    check(cpu_expand_dw_nhwc_f32(&g1, x, 4, w1, NULL, NULL, &g2, w2, NULL, NULL, y, 7, false, NULL) ==
              KILN_ERR_UNSUPPORTED, "unsupported: ys < E");
    check(y[0] == 7.0f, "unsupported: y untouched");
    /* empty batch / output: nothing to do */
    a = g1;
    b = g2;
    a.N = b.N = 0;
    check(cpu_expand_dw_nhwc_f32(&a, x, 4, w1, NULL, NULL, &b, w2, NULL, NULL, y, 8, false, NULL) == KILN_OK &&
              y[0] == 7.0f, "N = 0");
}

/* ---- the whole block: cpu_mbconv_nhwc_f32 ------------------------------------------------- */

typedef struct mb_case {
    int64_t N, C, E, P, H, W, K, S, D, PT, PL, PB, PR; /* E 0: no expansion (E = C) */
    int64_t xpad, ypad, rpad;                          /* pixel stride - channel count */
    int resid;                                         /* 0 none, 1 own buffer, 2 resid == y */
    act_kind a1, a2, a3;
    bool bias;
} mb_case;

static void mb_case_run(const mb_case *k, core_threadpool *pool2, core_threadpool *pool3)
{
    const bool expand = k->E > 0;
    const int64_t N = k->N, C = k->C, E = expand ? k->E : k->C, P = k->P, H = k->H, W = k->W, K = k->K;
    const int64_t ext = (K - 1) * k->D + 1;
    const int64_t OH = (H + k->PT + k->PB - ext) / k->S + 1, OW = (W + k->PL + k->PR - ext) / k->S + 1;
    if (OH < 1 || OW < 1) return;
    const int64_t xs = C + k->xpad, ys = P + k->ypad, rs = k->resid == 2 ? ys : P + k->rpad;
    const int64_t npx = N * H * W, nop = N * OH * OW;
    const size_t nx = (size_t)(npx * xs), ny = (size_t)(nop * ys), nr = (size_t)(nop * rs);
    float *x = malloc(nx * 4 + 4), *w1 = malloc((size_t)(E * C) * 4 + 4), *b1 = malloc((size_t)E * 4);
    float *w2 = malloc((size_t)(E * K * K) * 4), *b2 = malloc((size_t)E * 4), *y = malloc(ny * 4 + 4);
    float *w3 = malloc((size_t)(P * E) * 4), *b3 = malloc((size_t)P * 4), *r = malloc(nr * 4 + 4);
    double *t = malloc((size_t)(npx * E) * 8 + 8), *tmag = malloc((size_t)(npx * E) * 8 + 8);
    double *u = malloc((size_t)(nop * E) * 8 + 8), *umag = malloc((size_t)(nop * E) * 8 + 8);
    double *want = malloc(ny * 8 + 8), *mag = malloc(ny * 8 + 8);
    for (size_t i = 0; i < nx; i++) x[i] = 1.5f * frand() + 0.5f;
    for (int64_t i = 0; i < E * C; i++) w1[i] = 3.0f * frand() / sqrtf((float)C);
    for (int64_t i = 0; i < E; i++) b1[i] = frand(), b2[i] = frand();
    for (int64_t i = 0; i < E * K * K; i++) w2[i] = frand();
    for (int64_t i = 0; i < P * E; i++) w3[i] = 2.0f * frand() / sqrtf((float)E);
    for (int64_t i = 0; i < P; i++) b3[i] = frand();
    for (size_t i = 0; i < nr; i++) r[i] = 2.0f * frand();
    /* the naive loops: t, u, then y */
    for (int64_t p = 0; p < npx; p++)
        for (int64_t e = 0; e < E; e++) {
            if (!expand) {
                t[p * E + e] = x[p * xs + e];
                tmag[p * E + e] = fabs(t[p * E + e]);
                continue;
            }
            double s = k->bias ? b1[e] : 0.0, m = fabs(s);
            for (int64_t c = 0; c < C; c++) {
                double v = (double)x[p * xs + c] * w1[e * C + c];
                s += v;
                m += fabs(v);
            }
            t[p * E + e] = act_ref(s, k->a1);
            tmag[p * E + e] = m + fabs(s);
        }
    for (int64_t n = 0; n < N; n++)
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++)
                for (int64_t e = 0; e < E; e++) {
                    double s = k->bias ? b2[e] : 0.0, m = fabs(s);
                    for (int64_t ky = 0; ky < K; ky++)
                        for (int64_t kx = 0; kx < K; kx++) {
                            int64_t iy = oy * k->S - k->PT + ky * k->D, ix = ox * k->S - k->PL + kx * k->D;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            int64_t ti = ((n * H + iy) * W + ix) * E + e;
                            double wv = w2[(e * K + ky) * K + kx];
                            s += t[ti] * wv;
                            m += fabs(t[ti] * wv) + fabs(wv) * tmag[ti];
                        }
                    int64_t o = ((n * OH + oy) * OW + ox) * E + e;
                    u[o] = act_ref(s, k->a2);
                    umag[o] = m + fabs(s);
                }
    for (size_t i = 0; i < ny; i++) want[i] = NAN, mag[i] = 0;
    for (int64_t p = 0; p < nop; p++)
        for (int64_t q = 0; q < P; q++) {
            double s = k->bias ? b3[q] : 0.0, m = fabs(s);
            for (int64_t e = 0; e < E; e++) {
                double v = u[p * E + e] * w3[q * E + e];
                s += v;
                m += fabs(v) + fabs((double)w3[q * E + e]) * umag[p * E + e];
            }
            if (k->resid) {
                s += r[p * rs + q];
                m += fabs((double)r[p * rs + q]);
            }
            want[p * ys + q] = act_ref(s, k->a3);
            mag[p * ys + q] = m + fabs(s);
        }
    cpu_conv2d g1 = {N, C, H, W, E, H, W, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    cpu_conv2d g2 = {N, E, H, W, E, OH, OW, E, K, K, k->S, k->S, k->D, k->D, k->PT, k->PL};
    cpu_conv2d g3 = {N, E, OH, OW, P, OH, OW, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    const cpu_conv2d *pg1 = expand ? &g1 : NULL;
    cpu_epilogue ep1 = act_ep(k->a1), ep2 = act_ep(k->a2), ep3 = act_ep(k->a3);
    check(cpu_mbconv_nhwc_eligible(pg1, &g2, &g3), "mbconv eligible");
    int n_isa = 0;
    const char *const *isas = cpu_ukernels_isas(&n_isa);
    for (int isa = 0; isa < n_isa; isa++) {
        cpu_ukernels_force_isa(isas[isa]);
        for (int th = 1; th <= 3; th++)
            for (int cache = 0; cache < 2; cache++) {
                if (th == 3 && !cache) continue;
                for (size_t i = 0; i < ny; i++) y[i] = NAN;
                if (k->resid == 2) /* in place: y holds the residual, channels past P stay NaN */
                    for (int64_t p = 0; p < nop; p++) memcpy(y + p * ys, r + p * rs, (size_t)P * 4);
                core_threadpool *pool = th == 1 ? NULL : th == 2 ? pool2 : pool3;
                const float *res = k->resid == 1 ? r : k->resid == 2 ? y : NULL;
                kiln_status st = cpu_mbconv_nhwc_f32(pg1, x, xs, w1, k->bias ? b1 : NULL, &ep1, &g2, w2,
                                                     k->bias ? b2 : NULL, &ep2, &g3, w3, k->bias ? b3 : NULL, &ep3,
                                                     res, rs, y, ys, cache != 0, pool);
                char what[512];
                snprintf(what, sizeof what,
                         "mbconv [%s, %d thr, cache %d] N%lld C%lld E%lld%s P%lld %lldx%lld k%lld s%lld d%lld "
                         "p%lld,%lld,%lld,%lld xs+%lld ys+%lld resid %d (rs+%lld) act %s/%s/%s bias %d",
                         cpu_ukernels_get()->isa, th, cache, (long long)N, (long long)C, (long long)E,
                         expand ? "" : " (no expansion)", (long long)P, (long long)H, (long long)W, (long long)K,
                         (long long)k->S, (long long)k->D, (long long)k->PT, (long long)k->PL, (long long)k->PB,
                         (long long)k->PR, (long long)k->xpad, (long long)k->ypad, k->resid, (long long)(rs - P),
                         act_names[k->a1], act_names[k->a2], act_names[k->a3], k->bias);
                check_output(st, y, want, mag, ny, ys, what);
            }
    }
    cpu_ukernels_force_isa(NULL);
    free(x);
    free(w1);
    free(b1);
    free(w2);
    free(b2);
    free(y);
    free(w3);
    free(b3);
    free(r);
    free(t);
    free(tmag);
    free(u);
    free(umag);
    free(want);
    free(mag);
}

static void test_mb_sweep(core_threadpool *pool2, core_threadpool *pool3)
{
    static const int64_t cs[] = {1, 3, 16, 24};
    static const int64_t es[] = {0, 2, 17, 48}; /* 0: no expansion */
    static const int64_t ps[] = {1, 3, 17, 24};
    int rot = 0;
    for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++)
        for (size_t ei = 0; ei < sizeof es / sizeof es[0]; ei++)
            for (size_t pi = 0; pi < sizeof ps / sizeof ps[0]; pi++, rot++) {
                const int64_t C = cs[ci], E = es[ei], P = ps[pi];
                const act_kind a1 = (act_kind)(rot % 4), a2 = (act_kind)((rot / 4 + rot) % 4),
                               a3 = (act_kind)((rot / 16 + rot + 1) % 4);
                const int rm = rot % 3, rm2 = (rot + 1) % 3;
                mb_case v[] = {
                    /* N C E P H W K S D PT PL PB PR xpad ypad rpad resid a1 a2 a3 bias */
                    {1, C, E, P, 7, 7, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0, rm, a1, a2, a3, true},
                    {2, C, E, P, 9, 11, 3, 2, 1, 1, 1, 1, 1, 3, 5, 2, rm2, a2, a1, a3, true},
                    {1, C, E, P, 6, 13, 5, 1, 1, 2, 2, 2, 2, 1, 0, 3, rm, a3, a2, a1, rot % 2 == 0},
                    {1, C, E, P, 1, 1, 3, 1, 1, 1, 1, 1, 1, 0, 2, 0, rm2, a1, a2, a3, true},
                };
                for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) mb_case_run(&v[i], pool2, pool3);
            }
}

static void test_mb_shapes(core_threadpool *pool2, core_threadpool *pool3)
{
    mb_case v[] = {
        /* N C E P H W K S D PT PL PB PR xpad ypad rpad resid a1 a2 a3 bias */
        /* MobileNetV2-like blocks: bands that slide, u bands, residual in place */
        {1, 16, 96, 16, 40, 40, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0, 2, A_CLIP6, A_CLIP6, A_NONE, true},
        {1, 16, 96, 24, 41, 41, 3, 2, 1, 1, 1, 1, 1, 0, 0, 0, 0, A_CLIP6, A_CLIP6, A_NONE, true},
        {2, 24, 144, 24, 29, 29, 3, 1, 1, 1, 1, 1, 1, 0, 3, 1, 1, A_CLIP6, A_CLIP6, A_NONE, true},
        {1, 24, 144, 32, 29, 29, 3, 2, 1, 1, 1, 1, 1, 0, 0, 0, 0, A_CLIP6, A_CLIP6, A_NONE, true},
        /* no expansion (MobileNetV2's first block and a residual one) */
        {1, 32, 0, 16, 37, 37, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, A_NONE, A_CLIP6, A_NONE, true},
        {1, 32, 0, 32, 30, 30, 3, 1, 1, 1, 1, 1, 1, 2, 0, 0, 2, A_NONE, A_CLIP6, A_NONE, true},
        /* large 1x1 weights (channel chunks accumulating in y, with the residual in y) */
        {1, 160, 960, 160, 7, 7, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0, 2, A_CLIP6, A_CLIP6, A_NONE, true},
        {1, 96, 576, 96, 14, 14, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, A_CLIP6, A_CLIP6, A_RELU, true},
        {1, 300, 1800, 17, 3, 5, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0, 2, A_CLIP6, A_CLIP6, A_SILU, true},
        {1, 96, 576, 160, 14, 14, 3, 2, 1, 1, 1, 1, 1, 0, 4, 0, 0, A_CLIP6, A_CLIP6, A_NONE, true},
        /* wide rows: u band of one row, channel chunks by the band budget, accumulation */
        {1, 3, 100, 17, 8, 700, 3, 1, 1, 1, 1, 1, 1, 1, 0, 2, 2, A_RELU, A_NONE, A_SILU, true},
        {1, 5, 0, 24, 5, 1500, 3, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, A_NONE, A_RELU, A_CLIP6, true},
        /* odd strides and pads */
        {1, 8, 20, 3, 11, 11, 3, 4, 1, 1, 1, 1, 1, 0, 0, 0, 1, A_RELU, A_RELU, A_RELU, true},
        {1, 4, 18, 5, 4, 4, 3, 1, 1, 3, 3, 3, 3, 0, 0, 0, 2, A_NONE, A_NONE, A_NONE, true},
        {2, 7, 35, 17, 10, 10, 3, 3, 2, 2, 0, 1, 3, 2, 1, 1, 1, A_RELU, A_CLIP6, A_SILU, true},
        {2, 7, 0, 17, 10, 10, 3, 3, 2, 2, 0, 1, 3, 2, 1, 1, 2, A_RELU, A_CLIP6, A_SILU, true},
        /* empty images: y from the padding alone */
        {1, 3, 5, 4, 0, 4, 3, 1, 1, 2, 1, 2, 1, 0, 0, 0, 1, A_RELU, A_SILU, A_NONE, true},
        {2, 3, 0, 4, 4, 0, 3, 1, 1, 1, 2, 1, 2, 0, 1, 0, 2, A_RELU, A_CLIP6, A_RELU, true},
        /* several images in one task's row range */
        {3, 16, 33, 17, 3, 4, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, A_CLIP6, A_NONE, A_NONE, true},
        /* EfficientNet-like (SiLU, dw 5x5) */
        {1, 40, 240, 40, 12, 12, 5, 1, 1, 2, 2, 2, 2, 0, 0, 0, 2, A_SILU, A_SILU, A_NONE, true},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) mb_case_run(&v[i], pool2, pool3);
}

/* blocks it declines: KILN_ERR_UNSUPPORTED, y untouched */
static void test_mb_unsupported(void)
{
    static float x[4096], w1[4096], w2[4096], w3[4096], r[4096], y[4096];
    for (int i = 0; i < 4096; i++) x[i] = w1[i] = w2[i] = w3[i] = r[i] = 0.5f;
    const cpu_conv2d g1 = {1, 4, 6, 6, 8, 6, 6, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    const cpu_conv2d g2 = {1, 8, 6, 6, 8, 6, 6, 8, 3, 3, 1, 1, 1, 1, 1, 1};
    const cpu_conv2d g3 = {1, 8, 6, 6, 4, 6, 6, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    cpu_conv2d a, b, c;
#define MB_BAD(MOD, XS, RES, RS, YS, WHAT)                                                                  \
    do {                                                                                                     \
        a = g1;                                                                                              \
        b = g2;                                                                                              \
        c = g3;                                                                                              \
        MOD;                                                                                                 \
        for (int i = 0; i < 4096; i++) y[i] = 7.0f;                                                          \
        kiln_status st = cpu_mbconv_nhwc_f32(&a, x, XS, w1, NULL, NULL, &b, w2, NULL, NULL, &c, w3, NULL,    \
                                             NULL, RES, RS, y, YS, false, NULL);                             \
        bool untouched = true;                                                                               \
        for (int i = 0; i < 4096; i++) untouched = untouched && y[i] == 7.0f;                                \
        check(st == KILN_ERR_UNSUPPORTED && untouched, "mbconv unsupported: " WHAT);                         \
    } while (0)
    MB_BAD((void)0, 3, NULL, 0, 4, "xs < C");
    MB_BAD((void)0, 4, NULL, 0, 3, "ys < P");
    MB_BAD((void)0, 4, r, 3, 4, "rs < P");
    MB_BAD((void)0, 4, y, 5, 4, "resid == y with rs != ys");
    MB_BAD(a.KH = a.KW = 3, 4, NULL, 0, 4, "g1 3x3");
    MB_BAD(b.M = 16, 4, NULL, 0, 4, "g2 not depthwise");
    MB_BAD(c.KH = c.KW = 3, 4, NULL, 0, 4, "g3 3x3");
    MB_BAD((c.SH = c.SW = 2, c.OH = c.OW = 3), 4, NULL, 0, 4, "g3 stride 2");
    MB_BAD((c.PT = 1, c.OH = 8), 4, NULL, 0, 4, "g3 padded");
    MB_BAD(c.G = 2, 4, NULL, 0, 4, "g3 grouped");
    MB_BAD(c.C = 16, 4, NULL, 0, 4, "g3 channels != depthwise channels");
    MB_BAD((c.H = c.OH = 5), 4, NULL, 0, 4, "g3 height != depthwise output height");
    MB_BAD(c.N = 2, 4, NULL, 0, 4, "g3 batch mismatch");
    MB_BAD(c.M = 0, 4, NULL, 0, 0, "g3 no output channels");
#undef MB_BAD
    check(!cpu_mbconv_nhwc_eligible(&g1, &g2, NULL) && !cpu_mbconv_nhwc_eligible(&g1, NULL, &g3),
          "mbconv unsupported: NULL");
    /* no expansion: g2 must take x's channels */
    cpu_conv2d b2 = g2;
    b2.C = b2.M = b2.G = 4;
    check(!cpu_mbconv_nhwc_eligible(NULL, &b2, &g3), "mbconv unsupported: no expansion, g3 channels != C");
    check(cpu_mbconv_nhwc_eligible(NULL, &g2, &g3) && cpu_mbconv_nhwc_eligible(&g1, &g2, &g3), "mbconv eligible");
    /* empty batch: nothing to do */
    a = g1;
    b = g2;
    c = g3;
    a.N = b.N = c.N = 0;
    for (int i = 0; i < 4096; i++) y[i] = 7.0f;
    check(cpu_mbconv_nhwc_f32(&a, x, 4, w1, NULL, NULL, &b, w2, NULL, NULL, &c, w3, NULL, NULL, NULL, 0, y, 4,
                              false, NULL) == KILN_OK && y[0] == 7.0f, "mbconv N = 0");
}

int main(void)
{
    core_threadpool *pool2 = core_threadpool_create(2), *pool3 = core_threadpool_create(3);
    if (!pool2 || !pool3) {
        printf("cannot create thread pools\n");
        return 1;
    }
    test_eligible();
    test_unsupported();
    test_sweep(pool2, pool3);
    test_shapes(pool2, pool3);
    test_mb_unsupported();
    test_mb_sweep(pool2, pool3);
    test_mb_shapes(pool2, pool3);
    core_threadpool_destroy(pool2);
    core_threadpool_destroy(pool3);
    cpu_cache_clear();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
