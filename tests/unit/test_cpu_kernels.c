/* test_cpu_kernels.c — the fast CPU kernels (src/cpu) against naive loops written here:
 * SGEMM over edge shapes, strides, packings, epilogues and thread counts; convolutions
 * (pointwise, im2col, grouped, depthwise, Winograd) with bias/residual/activation; vector
 * activations against libm. Prints "N passed, M failed". */
#include "cpu/cpu.h"
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

static float *rand_buf(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = frand();
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

/* got vs want with a tolerance scaled by the magnitude of the summed terms (mag) */
static bool close_all(const float *got, const double *want, const double *mag, size_t n, double rtol,
                      double *worst)
{
    bool ok = true;
    *worst = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]);
        double tol = rtol * (mag[i] + fabs(want[i])) + 1e-6;
        if (!(err <= tol)) ok = false;
        double r = err / (mag[i] + fabs(want[i]) + 1e-6);
        if (r > *worst) *worst = r;
    }
    return ok;
}

static const cpu_act acts[] = {CPU_ACT_NONE, CPU_ACT_RELU, CPU_ACT_CLIP, CPU_ACT_LEAKY,
                               CPU_ACT_SIGMOID, CPU_ACT_SILU, CPU_ACT_HARDSWISH, CPU_ACT_GELU,
                               CPU_ACT_GELU_TANH};
#define N_ACTS (int)(sizeof acts / sizeof acts[0])

static void act_params(cpu_act a, cpu_epilogue *ep)
{
    ep->act = a;
    ep->act_a = a == CPU_ACT_CLIP ? -0.5f : (a == CPU_ACT_LEAKY ? 0.1f : 0.0f);
    ep->act_b = a == CPU_ACT_CLIP ? 0.75f : 0.0f;
}

/* ---- SGEMM --------------------------------------------------------------------------------- */

static void test_gemm_case(int64_t M, int64_t N, int64_t K, bool ta, bool tb, int pack, int bias,
                           bool resid, cpu_act act, float alpha, core_threadpool *pool)
{
    float *a = rand_buf((size_t)(M * K)), *b = rand_buf((size_t)(K * N));
    float *bv = rand_buf((size_t)(M > N ? M : N)), *rv = rand_buf((size_t)(M * N));
    float *c = malloc((size_t)(M * N + 1) * sizeof(float));
    double *want = malloc((size_t)(M * N + 1) * sizeof(double)), *mag = malloc((size_t)(M * N + 1) * sizeof(double));
    int64_t rsa = ta ? 1 : K, csa = ta ? M : 1, rsb = tb ? 1 : N, csb = tb ? K : 1;
    cpu_epilogue ep = cpu_epilogue_none();
    ep.alpha = alpha;
    if (bias) {
        ep.bias = bv;
        ep.bias_per_col = bias == 2;
    }
    if (resid) {
        ep.resid = rv;
        ep.ld_resid = N;
    }
    act_params(act, &ep);
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0, m = 0;
            for (int64_t k = 0; k < K; k++) {
                double p = (double)a[i * rsa + k * csa] * b[k * rsb + j * csb];
                s += p;
                m += fabs(p);
            }
            s *= alpha;
            m *= fabs(alpha);
            if (bias) { s += bias == 2 ? bv[j] : bv[i]; m += 1; }
            if (resid) { s += rv[i * N + j]; m += 1; }
            want[i * N + j] = cpu_act_scalar((float)s, act, ep.act_a, ep.act_b);
            mag[i * N + j] = m;
        }
    cpu_sgemm_args g;
    memset(&g, 0, sizeof g);
    g.M = M; g.N = N; g.K = K;
    g.a = a; g.rsa = rsa; g.csa = csa;
    float *ap = NULL, *bp = NULL;
    if (pack & 1) g.a_packed = ap = cpu_sgemm_pack_a(M, K, a, rsa, csa);
    if (pack & 2) {
        g.b_kind = CPU_B_PACKED;
        g.b = bp = cpu_sgemm_pack_b(K, N, b, rsb, csb);
    } else {
        g.b_kind = CPU_B_MATRIX;
        g.b = b; g.rsb = rsb; g.csb = csb;
    }
    g.c = c; g.ldc = N; g.ep = ep;
    kiln_status st = cpu_sgemm(&g, pool);
    double worst = 0.0;
    bool ok = st == KILN_OK && close_all(c, want, mag, (size_t)(M * N), 2e-5, &worst);
    char what[256];
    snprintf(what, sizeof what, "sgemm M=%lld N=%lld K=%lld ta=%d tb=%d pack=%d bias=%d resid=%d act=%d alpha=%g threads=%d isa=%s (worst %.3g)",
             (long long)M, (long long)N, (long long)K, ta, tb, pack, bias, resid, (int)act, alpha,
             core_threadpool_size(pool), cpu_ukernels_get()->isa, worst);
    check(ok, what);
    free(a); free(b); free(bv); free(rv); free(c); free(want); free(mag); free(ap); free(bp);
}

static void test_gemm(core_threadpool *pool2)
{
    static const int64_t sz[] = {1, 7, 16, 17, 100};
    for (int mi = 0; mi < 5; mi++)
        for (int ni = 0; ni < 5; ni++)
            for (int ki = 0; ki < 5; ki++) {
                int v = mi * 25 + ni * 5 + ki;
                test_gemm_case(sz[mi], sz[ni], sz[ki], v % 3 == 1, v % 4 == 2, v % 4, v % 3,
                               v % 5 == 0, acts[v % N_ACTS], v % 7 == 3 ? 0.5f : 1.0f,
                               v % 2 ? pool2 : NULL);
            }
    /* several K and cache blocks, threads, all packings */
    for (int p = 0; p < 4; p++) {
        test_gemm_case(150, 2100, 300, false, false, p, 1, true, CPU_ACT_RELU, 1.0f, pool2);
        test_gemm_case(97, 33, 520, p & 1, p & 2, p, 2, false, CPU_ACT_NONE, 1.0f, pool2);
    }
    test_gemm_case(400, 300, 600, false, false, 1, 1, true, CPU_ACT_SILU, 1.0f, pool2); /* > MC rows */
    test_gemm_case(200, 700, 300, true, false, 2, 2, true, CPU_ACT_GELU, 1.0f, pool2);
    test_gemm_case(200, 700, 300, false, true, 2, 1, false, CPU_ACT_NONE, 1.0f, NULL);
    /* every edge tile of the 6x16 and 14x32 kernels: row counts 1..29, column counts around
     * the 16-lane vectors */
    static const int64_t en[] = {1, 15, 16, 17, 31, 32, 33, 47};
    for (int64_t m = 1; m <= 29; m++)
        for (int ni = 0; ni < 8; ni++) {
            int v = (int)m * 8 + ni;
            test_gemm_case(m, en[ni], 1 + v % 6, false, false, v % 4, v % 3, v % 2 == 0,
                           acts[v % N_ACTS], 1.0f, NULL);
        }
    test_gemm_case(6, 16, 0, false, false, 0, 1, true, CPU_ACT_RELU, 1.0f, NULL); /* K = 0 */
    for (int a = 0; a < N_ACTS; a++) test_gemm_case(13, 37, 9, false, false, 2, 2, true, acts[a], 1.0f, pool2);
}

/* ---- convolution ---------------------------------------------------------------------------- */

static void test_conv_case(const cpu_conv2d *g0, bool bias, bool resid, cpu_act act, int algo,
                           bool cache, core_threadpool *pool)
{
    cpu_conv2d g = *g0;
    g.OH = (g.H + 2 * g.PT - ((g.KH - 1) * g.DH + 1)) / g.SH + 1;
    g.OW = (g.W + 2 * g.PL - ((g.KW - 1) * g.DW + 1)) / g.SW + 1;
    int64_t Cg = g.C / g.G, Mg = g.M / g.G;
    size_t nx = (size_t)(g.N * g.C * g.H * g.W), nw = (size_t)(g.M * Cg * g.KH * g.KW);
    size_t ny = (size_t)(g.N * g.M * g.OH * g.OW);
    float *x = rand_buf(nx), *w = rand_buf(nw), *bv = rand_buf((size_t)g.M), *rv = rand_buf(ny);
    float *y = malloc(ny * sizeof(float));
    double *want = malloc(ny * sizeof(double)), *mag = malloc(ny * sizeof(double));
    cpu_epilogue ep = cpu_epilogue_none();
    act_params(act, &ep);
    for (int64_t n = 0; n < g.N; n++)
        for (int64_t m = 0; m < g.M; m++)
            for (int64_t oy = 0; oy < g.OH; oy++)
                for (int64_t ox = 0; ox < g.OW; ox++) {
                    double s = 0, mg = 0;
                    int64_t gi = m / Mg;
                    for (int64_t cc = 0; cc < Cg; cc++)
                        for (int64_t ky = 0; ky < g.KH; ky++)
                            for (int64_t kx = 0; kx < g.KW; kx++) {
                                int64_t iy = oy * g.SH - g.PT + ky * g.DH, ix = ox * g.SW - g.PL + kx * g.DW;
                                if (iy < 0 || iy >= g.H || ix < 0 || ix >= g.W) continue;
                                double p = (double)x[((n * g.C + gi * Cg + cc) * g.H + iy) * g.W + ix] *
                                           w[((m * Cg + cc) * g.KH + ky) * g.KW + kx];
                                s += p;
                                mg += fabs(p);
                            }
                    size_t o = (size_t)(((n * g.M + m) * g.OH + oy) * g.OW + ox);
                    if (bias) { s += bv[m]; mg += 1; }
                    if (resid) { s += rv[o]; mg += 1; }
                    want[o] = cpu_act_scalar((float)s, act, ep.act_a, ep.act_b);
                    mag[o] = mg;
                }
    kiln_status st = KILN_OK;
    for (int rep = 0; rep < (cache ? 2 : 1) && !st; rep++)
        st = cpu_conv2d_f32(&g, x, w, bias ? bv : NULL, resid ? rv : NULL, y, &ep, algo, cache, pool);
    double worst = 0.0;
    /* Winograd trades a little accuracy; still far inside the 1e-3 of the golden tests */
    double rtol = algo == CPU_CONV_WINO ? 2e-4 : 2e-5;
    bool ok = st == KILN_OK && close_all(y, want, mag, ny, rtol, &worst);
    char what[320];
    snprintf(what, sizeof what,
             "conv N=%lld C=%lld H=%lld W=%lld M=%lld G=%lld k=%lldx%lld s=%lldx%lld d=%lldx%lld p=%lldx%lld bias=%d resid=%d act=%d algo=%d cache=%d threads=%d isa=%s (worst %.3g)",
             (long long)g.N, (long long)g.C, (long long)g.H, (long long)g.W, (long long)g.M,
             (long long)g.G, (long long)g.KH, (long long)g.KW, (long long)g.SH, (long long)g.SW,
             (long long)g.DH, (long long)g.DW, (long long)g.PT, (long long)g.PL, bias, resid,
             (int)act, algo, cache, core_threadpool_size(pool), cpu_ukernels_get()->isa, worst);
    check(ok, what);
    free(x); free(w); free(bv); free(rv); free(y); free(want); free(mag);
}

static cpu_conv2d geom(int64_t N, int64_t C, int64_t H, int64_t W, int64_t M, int64_t G, int64_t KH,
                       int64_t KW, int64_t S, int64_t D, int64_t P)
{
    cpu_conv2d g = {N, C, H, W, M, 0, 0, G, KH, KW, S, S, D, D, P, P};
    return g;
}

static void test_conv(core_threadpool *pool2)
{
    cpu_conv2d cases[] = {
        geom(1, 16, 14, 14, 32, 1, 1, 1, 1, 1, 0),   /* pointwise */
        geom(2, 7, 9, 11, 17, 1, 1, 1, 1, 1, 0),     /* pointwise, odd, batch */
        geom(1, 8, 15, 15, 24, 1, 1, 1, 2, 1, 0),    /* 1x1 stride 2 */
        geom(1, 3, 23, 23, 16, 1, 7, 7, 2, 1, 3),    /* stem */
        geom(2, 5, 10, 13, 7, 1, 3, 3, 1, 1, 1),     /* 3x3 pad */
        geom(1, 6, 12, 12, 9, 1, 3, 3, 2, 2, 2),     /* stride + dilation */
        geom(1, 8, 10, 10, 12, 4, 3, 3, 1, 1, 1),    /* grouped */
        geom(1, 1, 5, 5, 1, 1, 5, 5, 1, 1, 0),       /* output 1x1 */
        geom(1, 4, 1, 40, 6, 1, 1, 3, 1, 1, 1),      /* 1-D like */
        geom(1, 32, 20, 20, 40, 1, 3, 3, 1, 1, 1),   /* 3x3 s1 (Winograd shape) */
        geom(2, 20, 9, 14, 24, 1, 3, 3, 1, 1, 1),    /* 3x3 s1 odd tiles, batch */
        geom(1, 16, 8, 8, 16, 1, 3, 3, 1, 1, 0),     /* 3x3 s1 no pad */
    };
    int nc = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < nc; i++) {
        test_conv_case(&cases[i], i % 2 == 0, i % 3 == 0, acts[i % N_ACTS], CPU_CONV_GEMM, i % 2 == 1, NULL);
        test_conv_case(&cases[i], true, i % 2 == 0, acts[(i + 3) % N_ACTS], CPU_CONV_AUTO, true, pool2);
        if (cpu_conv2d_winograd_eligible(&cases[i])) {
            test_conv_case(&cases[i], true, i % 2 == 1, acts[(i + 1) % N_ACTS], CPU_CONV_WINO, false, NULL);
            test_conv_case(&cases[i], i % 2 == 0, true, CPU_ACT_RELU, CPU_CONV_WINO, true, pool2);
        }
    }
    /* depthwise: 3x3 / 5x5, strides 1 and 2, dilation, odd widths */
    cpu_conv2d dws[] = {
        geom(1, 16, 14, 14, 16, 16, 3, 3, 1, 1, 1),
        geom(2, 8, 17, 29, 8, 8, 3, 3, 2, 1, 1),
        geom(1, 8, 19, 37, 8, 8, 5, 5, 1, 1, 2),
        geom(1, 8, 40, 41, 8, 8, 5, 5, 2, 1, 2),
        geom(1, 4, 12, 30, 4, 4, 3, 3, 1, 2, 2),
        geom(1, 3, 9, 9, 3, 3, 3, 3, 3, 1, 0),
        geom(1, 5, 3, 3, 5, 5, 3, 3, 1, 1, 1),
    };
    for (int i = 0; i < (int)(sizeof dws / sizeof dws[0]); i++) {
        test_conv_case(&dws[i], i % 2 == 0, i % 3 == 0, acts[(i + 2) % N_ACTS], CPU_CONV_DW, false, NULL);
        test_conv_case(&dws[i], true, true, acts[(i + 5) % N_ACTS], CPU_CONV_AUTO, true, pool2);
    }
}

/* ---- activations ------------------------------------------------------------------------- */

static void test_acts(void)
{
    enum { N = 4099 };
    float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
    for (int a = 0; a < N_ACTS; a++) {
        cpu_epilogue ep = cpu_epilogue_none();
        act_params(acts[a], &ep);
        for (int i = 0; i < N; i++) x[i] = y[i] = -12.0f + 24.0f * (float)i / N;
        cpu_act_apply(y, N, acts[a], ep.act_a, ep.act_b);
        double worst = 0;
        for (int i = 0; i < N; i++) {
            double want = cpu_act_scalar(x[i], acts[a], ep.act_a, ep.act_b);
            /* vector exp/erf are ~1e-7 relative; libm's tanh form cancels for x << 0, so
             * an absolute floor */
            double e = fabs(y[i] - want) / (1e-6 + 1e-4 * fabs(want));
            if (e > worst) worst = e;
        }
        char what[128];
        snprintf(what, sizeof what, "activation %d (%s) worst err / tol %.3g", (int)acts[a],
                 cpu_ukernels_get()->isa, worst);
        check(worst <= 1.0, what);
    }
    free(x);
    free(y);
}

int main(void)
{
    core_threadpool *pool2 = core_threadpool_create(2);
    /* every case on each ISA this CPU has (avx512, avx2_fma, scalar) */
    int n_isa = 0;
    const char *const *isas = cpu_ukernels_isas(&n_isa);
    for (int isa = 0; isa < n_isa; isa++) {
        if (!cpu_ukernels_force_isa(isas[isa])) {
            check(false, "cpu_ukernels_force_isa refused a listed ISA");
            continue;
        }
        printf("ISA %s (GEMM tile %dx%d)\n", cpu_ukernels_get()->isa, cpu_ukernels_get()->gemm_mr,
               cpu_ukernels_get()->gemm_nr);
        test_acts();
        test_gemm(pool2);
        test_conv(pool2);
    }
    cpu_ukernels_force_isa(NULL);
    cpu_cache_clear();
    core_threadpool_destroy(pool2);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
