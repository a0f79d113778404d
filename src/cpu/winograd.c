/* winograd.c — 3x3 stride-1 convolution through Winograd F(4x4, 3x3): 6x6 input tiles are
 * transformed (V = B^T d B), multiplied per transform position by the transformed weights
 * (U = G g G^T, 36 GEMMs of Cout x Cin x tiles) and transformed back (Y = A^T M A) with bias,
 * residual and activation fused. About 4x fewer multiplies than direct; costs a little
 * accuracy (see tests/unit/test_cpu_kernels.c and bench/gemm_bench.c for the measured error). */
#include "cpu/conv_internal.h"
#include <stdlib.h>
#include <string.h>

#define WT 6  /* transformed tile */
#define WO 4  /* output tile */
#define WN (WT * WT)

bool cpu_conv2d_winograd_eligible(const cpu_conv2d *g)
{
    return g->G == 1 && g->KH == 3 && g->KW == 3 && g->SH == 1 && g->SW == 1 && g->DH == 1 &&
           g->DW == 1 && g->C >= 1 && g->M >= 1;
}

bool cpu_conv2d_winograd_preferred(const cpu_conv2d *g)
{
    /* the transforms cost about as much as the GEMMs when channels are few, and with few
     * tiles the 36 GEMMs are too narrow for the 16-column microkernel. The 14x32 AVX-512
     * GEMM is twice as fast while the transforms are not, so it wants twice the channels
     * (measured on Zen 5: 32 channels on 160x160 0.74x of the GEMM path, 64 channels 1.1-1.2x) */
    int64_t tiles = ((g->OH + WO - 1) / WO) * ((g->OW + WO - 1) / WO);
    int64_t min_ch = cpu_ukernels_get()->gemm_nr >= 32 ? 64 : 32;
    return cpu_conv2d_winograd_eligible(g) && g->C >= min_ch && g->M >= min_ch && tiles >= 12;
}

/* ---- transformed weights (cached): 36 packed A matrices of Cout x Cin ---------------------- */

typedef struct wg_wctx {
    const float *w;
    int64_t M, C;
} wg_wctx;

static void wg_weights_build(void *arg, float *dst)
{
    const wg_wctx *p = arg;
    const int64_t M = p->M, C = p->C;
    size_t per = cpu_sgemm_packed_a_floats(M, C);
    const size_t MR = (size_t)cpu_ukernels_get()->gemm_mr; /* the packed layout of cpu_sgemm */
    memset(dst, 0, per * WN * sizeof(float));
    for (int64_t m = 0; m < M; m++)
        for (int64_t c = 0; c < C; c++) {
            const float *g = p->w + (m * C + c) * 9;
            float t[WT][3], u[WT][WT];
            /* t = G g (6x3) */
            for (int j = 0; j < 3; j++) {
                float g0 = g[0 * 3 + j], g1 = g[1 * 3 + j], g2 = g[2 * 3 + j];
                t[0][j] = g0 * 0.25f;
                t[1][j] = (g0 + g1 + g2) * (-1.0f / 6.0f);
                t[2][j] = (g0 - g1 + g2) * (-1.0f / 6.0f);
                t[3][j] = g0 * (1.0f / 24.0f) + g1 * (1.0f / 12.0f) + g2 * (1.0f / 6.0f);
                t[4][j] = g0 * (1.0f / 24.0f) - g1 * (1.0f / 12.0f) + g2 * (1.0f / 6.0f);
                t[5][j] = g2;
            }
            /* u = t G^T (6x6) */
            for (int i = 0; i < WT; i++) {
                float g0 = t[i][0], g1 = t[i][1], g2 = t[i][2];
                u[i][0] = g0 * 0.25f;
                u[i][1] = (g0 + g1 + g2) * (-1.0f / 6.0f);
                u[i][2] = (g0 - g1 + g2) * (-1.0f / 6.0f);
                u[i][3] = g0 * (1.0f / 24.0f) + g1 * (1.0f / 12.0f) + g2 * (1.0f / 6.0f);
                u[i][4] = g0 * (1.0f / 24.0f) - g1 * (1.0f / 12.0f) + g2 * (1.0f / 6.0f);
                u[i][5] = g2;
            }
            size_t off = (size_t)m / MR * (size_t)C * MR + (size_t)c * MR + (size_t)m % MR;
            for (int x = 0; x < WN; x++) dst[(size_t)x * per + off] = u[x / WT][x % WT];
        }
}

/* ---- the three stages ------------------------------------------------------------------------ */

typedef struct wg_job {
    const cpu_conv2d *g;
    const float *x;       /* this image */
    const float *u;       /* transformed weights */
    float *v;             /* [36][C][tt] */
    float *mm;            /* [36][M][tt] */
    float *y;             /* this image's output */
    const float *resid;   /* this image's residual or NULL */
    const float *bias;
    const cpu_epilogue *act;
    int64_t tw, t0, tt;   /* tiles per row, first tile, tiles in this chunk */
    int failed;
    int64_t vs, ms;       /* float stride between the 36 planes of v and of mm */
} wg_job;

/* Stride of the 36 transform planes of rows x tt floats: a whole number of cache lines, odd,
 * so the 36 streams a tile writes (and the output stage reads) fall in different L1 sets.
 * With a multiple of 4 KB they all alias one set and every access misses (3x slower). */
static int64_t wg_plane_stride(int64_t rows, int64_t tt)
{
    int64_t lines = (rows * tt + 15) / 16;
    if (lines % 2 == 0) lines++;
    return lines * 16;
}

/* V = B^T d B for every tile of channels [begin, end). */
static void wg_input(void *arg, int64_t begin, int64_t end)
{
    const wg_job *j = arg;
    const cpu_conv2d *g = j->g;
    const int64_t H = g->H, W = g->W, tt = j->tt;
    for (int64_t c = begin; c < end; c++) {
        const float *plane = j->x + c * H * W;
        for (int64_t t = 0; t < tt; t++) {
            int64_t tile = j->t0 + t, ty = tile / j->tw, tx = tile % j->tw;
            int64_t y0 = ty * WO - g->PT, x0 = tx * WO - g->PL;
            float d[WT][WT], s[WT][WT];
            bool inside = y0 >= 0 && x0 >= 0 && y0 + WT <= H && x0 + WT <= W;
            for (int r = 0; r < WT; r++) {
                int64_t iy = y0 + r;
                if (inside) {
                    memcpy(d[r], plane + iy * W + x0, sizeof d[r]);
                    continue;
                }
                for (int q = 0; q < WT; q++) {
                    int64_t ix = x0 + q;
                    d[r][q] = iy >= 0 && iy < H && ix >= 0 && ix < W ? plane[iy * W + ix] : 0.0f;
                }
            }
            /* s = B^T d (rows) */
            for (int q = 0; q < WT; q++) {
                float d0 = d[0][q], d1 = d[1][q], d2 = d[2][q], d3 = d[3][q], d4 = d[4][q], d5 = d[5][q];
                s[0][q] = 4.0f * d0 - 5.0f * d2 + d4;
                s[1][q] = -4.0f * (d1 + d2) + d3 + d4;
                s[2][q] = 4.0f * (d1 - d2) - d3 + d4;
                s[3][q] = 2.0f * (d3 - d1) - d2 + d4;
                s[4][q] = 2.0f * (d1 - d3) - d2 + d4;
                s[5][q] = 4.0f * d1 - 5.0f * d3 + d5;
            }
            /* V = s B (columns), scattered to [36][C][tt] */
            float *vo = j->v + c * tt + t;
            const int64_t xs = j->vs;
            for (int r = 0; r < WT; r++) {
                float d0 = s[r][0], d1 = s[r][1], d2 = s[r][2], d3 = s[r][3], d4 = s[r][4], d5 = s[r][5];
                float *o = vo + (int64_t)(r * WT) * xs;
                o[0 * xs] = 4.0f * d0 - 5.0f * d2 + d4;
                o[1 * xs] = -4.0f * (d1 + d2) + d3 + d4;
                o[2 * xs] = 4.0f * (d1 - d2) - d3 + d4;
                o[3 * xs] = 2.0f * (d3 - d1) - d2 + d4;
                o[4 * xs] = 2.0f * (d1 - d3) - d2 + d4;
                o[5 * xs] = 4.0f * d1 - 5.0f * d3 + d5;
            }
        }
    }
}

/* The 36 GEMMs M[x] = U[x] V[x], one per task (single-threaded each). */
static void wg_gemm(void *arg, int64_t begin, int64_t end)
{
    wg_job *j = arg;
    const cpu_conv2d *g = j->g;
    size_t per = cpu_sgemm_packed_a_floats(g->M, g->C);
    for (int64_t x = begin; x < end; x++) {
        cpu_sgemm_args a;
        memset(&a, 0, sizeof a);
        a.M = g->M;
        a.N = j->tt;
        a.K = g->C;
        a.a_packed = j->u + (size_t)x * per;
        a.b_kind = CPU_B_MATRIX;
        a.b = j->v + x * j->vs;
        a.rsb = j->tt;
        a.csb = 1;
        a.c = j->mm + x * j->ms;
        a.ldc = j->tt;
        a.ep = cpu_epilogue_none();
        if (cpu_sgemm(&a, NULL)) __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
    }
}

/* Y = A^T M A + bias (+ resid), activation, for output channels [begin, end). */
static void wg_output(void *arg, int64_t begin, int64_t end)
{
    const wg_job *j = arg;
    const cpu_conv2d *g = j->g;
    const int64_t OH = g->OH, OW = g->OW, tt = j->tt;
    const cpu_epilogue *e = j->act;
    for (int64_t m = begin; m < end; m++) {
        float b = j->bias ? j->bias[m] : 0.0f;
        float *yp = j->y + m * OH * OW;
        const float *rp = j->resid ? j->resid + m * OH * OW : NULL;
        for (int64_t t = 0; t < tt; t++) {
            int64_t tile = j->t0 + t, ty = tile / j->tw, tx = tile % j->tw;
            const float *mi = j->mm + m * tt + t;
            const int64_t xs = j->ms;
            float s[WO][WT], o[WO][WO];
            /* s = A^T M (rows) */
            for (int q = 0; q < WT; q++) {
                float m0 = mi[(0 * WT + q) * xs], m1 = mi[(1 * WT + q) * xs], m2 = mi[(2 * WT + q) * xs];
                float m3 = mi[(3 * WT + q) * xs], m4 = mi[(4 * WT + q) * xs], m5 = mi[(5 * WT + q) * xs];
                float a12 = m1 + m2, d12 = m1 - m2, a34 = m3 + m4, d34 = m3 - m4;
                s[0][q] = m0 + a12 + a34;
                s[1][q] = d12 + 2.0f * d34;
                s[2][q] = a12 + 4.0f * a34;
                s[3][q] = d12 + 8.0f * d34 + m5;
            }
            for (int r = 0; r < WO; r++) {
                float m0 = s[r][0], m1 = s[r][1], m2 = s[r][2], m3 = s[r][3], m4 = s[r][4], m5 = s[r][5];
                float a12 = m1 + m2, d12 = m1 - m2, a34 = m3 + m4, d34 = m3 - m4;
                o[r][0] = m0 + a12 + a34;
                o[r][1] = d12 + 2.0f * d34;
                o[r][2] = a12 + 4.0f * a34;
                o[r][3] = d12 + 8.0f * d34 + m5;
            }
            int64_t oy0 = ty * WO, ox0 = tx * WO;
            int rows = (int)(OH - oy0 < WO ? OH - oy0 : WO), cols = (int)(OW - ox0 < WO ? OW - ox0 : WO);
            for (int r = 0; r < rows; r++) {
                float *yr = yp + (oy0 + r) * OW + ox0;
                const float *rr = rp ? rp + (oy0 + r) * OW + ox0 : NULL;
                for (int q = 0; q < cols; q++) {
                    float v = o[r][q] + b;
                    if (rr) v += rr[q];
                    yr[q] = v;
                }
                if (e->act != CPU_ACT_NONE) cpu_act_apply(yr, (size_t)cols, e->act, e->act_a, e->act_b);
            }
        }
    }
}

kiln_status cpu_conv2d_winograd(const cpu_conv2d *g, const float *x, const float *w,
                                const float *bias, const float *resid, float *y,
                                const cpu_epilogue *act, bool cache, core_threadpool *pool)
{
    const int64_t M = g->M, C = g->C;
    const int64_t th = (g->OH + WO - 1) / WO, tw = (g->OW + WO - 1) / WO, T = th * tw;
    size_t ufloats = cpu_sgemm_packed_a_floats(M, C) * WN;
    const float *u;
    bool owned = false;
    wg_wctx wc = {w, M, C};
    if (cache) {
        int64_t params[2] = {M, C};
        u = cpu_cache_get(w, (size_t)(M * C * 9), 3, params, 2, ufloats, wg_weights_build, &wc, &owned);
    } else {
        float *b = cpu_alloc_floats(ufloats);
        if (b) wg_weights_build(&wc, b);
        u = b;
        owned = true;
    }
    if (!u) return core_oom();
    /* tiles per chunk: keep V and M (36 x (C + M) x tt floats) around 4 MB */
    int64_t tt_max = (int64_t)(((size_t)4 << 20) / (sizeof(float) * WN * (size_t)(C + M)));
    tt_max = tt_max < 16 ? 16 : (tt_max / 16) * 16;
    if (tt_max > T) tt_max = T;
    float *v = cpu_scratch_floats(CPU_SCRATCH_WINO_V, (size_t)(WN * wg_plane_stride(C, tt_max)));
    float *mm = cpu_scratch_floats(CPU_SCRATCH_WINO_M, (size_t)(WN * wg_plane_stride(M, tt_max)));
    kiln_status st = KILN_OK;
    if (!v || !mm) st = core_oom();
    int threads = core_threadpool_size(pool);
    for (int64_t n = 0; n < g->N && !st; n++) {
        for (int64_t t0 = 0; t0 < T && !st; t0 += tt_max) {
            wg_job j = {g, x + n * C * g->H * g->W, u, v, mm, y + n * M * g->OH * g->OW,
                        resid ? resid + n * M * g->OH * g->OW : NULL, bias, act, tw, t0,
                        T - t0 < tt_max ? T - t0 : tt_max, 0, 0, 0};
            j.vs = wg_plane_stride(C, j.tt);
            j.ms = wg_plane_stride(M, j.tt);
            if (threads > 1) {
                core_threadpool_parallel_for(pool, C, 0, wg_input, &j);
                core_threadpool_parallel_for(pool, WN, 1, wg_gemm, &j);
                core_threadpool_parallel_for(pool, M, 0, wg_output, &j);
            } else {
                wg_input(&j, 0, C);
                wg_gemm(&j, 0, WN);
                wg_output(&j, 0, M);
            }
            if (j.failed) st = core_oom();
        }
    }

    if (owned) free((void *)u);
    return st;
}
