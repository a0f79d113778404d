/* winograd_nhwc.c — 3x3 stride-1 convolution on NHWC tensors through Winograd F(2x2, 3x3)
 * (4x4 transformed tiles), F(4x4, 3x3) (6x6) or F(6x6, 3x3) (8x8); A below is the
 * transformed tile size, A2 = A*A the number of transform positions (16, 36, 64).
 *
 * Per block of tiles (numbered over the whole batch), one thread: the input transform
 * (vectorised over channels, straight from the NHWC tiles) writes V as A2 planes of
 * [tiles x C] rows; for each NR-column panel of output channels and each MR-row panel of
 * tiles, A2 small GEMMs V[x] (MR x C, read as plain rows by the microkernel) times U[x]
 * (C x NR, the transformed weights, packed once per weight tensor through the cache, a
 * panel's A2 matrices contiguous) fill an L1/L2-sized buffer of MR x NR x A2 results (or
 * several row panels' worth, see `group`), which the output transform turns into y
 * (vectorised over output channels, bias + residual + activation fused, written with the
 * pixel stride ys). Nothing is packed per call. The blocks are split over the pool's
 * threads; with fewer blocks than threads the output channels are split too (each such
 * task recomputes its block's V, which is cheap next to the GEMMs).
 *
 * Accuracy (bench/winograd_nhwc_bench.c, post-ReLU-like inputs, He-scaled weights, ResNet-50 /
 * YOLOv5s shapes): max |err| / max |y| 2.6e-7..7.2e-7 for F(2x2) (like a plain FP32 sum: its
 * transforms only add, subtract and halve), 2.8e-6..7.4e-6 for F(4x4), 4e-6..1.2e-5 for
 * F(6x6); per element, |err| / (sum of |terms|) <= 1.2e-7 (F(2x2)), 1.1e-6 (F(4x4)) and
 * 3.1e-6 (F(6x6)). */
#include "cpu/nhwc.h"
#include "cpu/ukernels/f32-wino-nhwc/wino-nhwc.h"
#include <stdlib.h>
#include <string.h>

bool cpu_conv2d_nhwc_winograd_eligible(const cpu_conv2d *g)
{
    return g->G == 1 && g->KH == 3 && g->KW == 3 && g->SH == 1 && g->SW == 1 && g->DH == 1 &&
           g->DW == 1 && g->N >= 1 && g->C >= 1 && g->M >= 1 && g->H >= 1 && g->W >= 1 &&
           g->OH >= 1 && g->OW >= 1;
}

/* Tile size and Winograd-vs-igemm choice, measured on Zen 5 (AVX-512, 1 MB L2/core;
 * bench/winograd_nhwc_bench.c --cold: weights streamed from memory as in a whole-model run;
 * the table is in the bench's header). Per output channel and input channel, the GEMMs of
 * F(2x2) do 16 multiply-adds per 2x2 tile and read 16 transformed weights, F(4x4) 36 per
 * 4x4 tile with 36 weights, the indirect GEMM 9 per pixel with 9 weights. Small images
 * waste part of the larger tiles (14x14 needs 16 4x4 tiles covering 16x16, 49 exact 2x2
 * ones), and with few tiles the transformed weights' traffic dominates, so:
 * - F(4x4) when its GEMM work is <= 1/1.4 of F(2x2)'s and it has >= 8 tiles (AVX2: 12) to
 *   share its weights: 12x12 and 16x16 x 256 (F(4x4) 1.1x / 1.2x faster than F(2x2)),
 *   20x20 x 256 1.3x, 28x28 x 128 1.0-1.5x, 7x7 x 512 batch 2 1.1x. F(2x2) won or tied at
 *   14x14 (work ratio 1.36: x 64..512 channels F(2x2) 1.3x..0.85x at 1 thread; x 256 at 2
 *   threads 0.95x..1.2x, and in the whole ResNet-50 its five layers took 1.45..1.73 ms
 *   with F(2x2), 1.71..1.89 with F(4x4)), 10x10 (1.23: 1.1x), 7x7 and 8x8 batch 1 (4 4x4
 *   tiles: 1.1x..1.3x).
 * - F(2x2) over the indirect GEMM with >= 9 tiles and >= 2x less GEMM work (exact tilings:
 *   6x6, 8x8, 14x14 x 32..512 channels 1.2x..1.9x), or >= 1.8x less with >= 256 channels
 *   on both sides (5x5 x 512 won 1.1x). 7x7 x 512 (1.72x less work) won 1.3x alone, but in
 *   the whole ResNet-50 at 2 threads its two layers tied with the indirect GEMM (5 alternating
 *   runs each, 16.1-17.4 ms vs 16.1-17.0 ms) while their transformed weights (16/9 of the
 *   raw ones, read from memory every run) raised peak RSS from 211 to 227 MB: not taken on AVX-512.
 * With AVX2 (6x16 GEMM, half the FMA rate; same weight traffic) Winograd wins more: F(4x4)
 * from 16x16 (1.2x over F(2x2); 12x12 and 14x14 tied), F(2x2) 1.1x..1.3x over the indirect
 * GEMM at 6x6 x 256..512 and 7x7 x 64..512, lost at 5x5 x 512 (0.9x).
 * Channel counts matter little otherwise: 3->32, 4->4 and 8->8 won with F(4x4) at 56..160
 * px (1.1-1.5x), 1->16 lost (0.9x). */
static int wn_pick_tile(const cpu_conv2d *g)
{
    const bool wide = cpu_ukernels_get()->gemm_nr >= 32;
    const int64_t t6 = g->N * ((g->OH + 5) / 6) * ((g->OW + 5) / 6);
    const int64_t t4 = g->N * ((g->OH + 3) / 4) * ((g->OW + 3) / 4);
    const int64_t t2 = g->N * ((g->OH + 1) / 2) * ((g->OW + 1) / 2);
    /* F(6x6) does 1.8 multiplies per output per channel pair against F(4x4)'s 2.25 and moves
     * less transform data per output, but its transformed weights are 1.8x larger and its
     * error ~2x. It won only with few channels and many tiles (YOLOv5s 160x160 32->32:
     * 1.1-1.3x; 80x80 32..48 channels 1.03-1.09x) and lost at 64 channels and more. */
    if (g->C >= 16 && g->C <= 48 && g->M >= 16 && g->M <= 48 && t6 >= 64) return 6;
    if (t4 >= (wide ? 8 : 12) && 10 * 16 * t2 >= 14 * 36 * t4) return 4;
    return 2;
}

bool cpu_conv2d_nhwc_winograd_preferred(const cpu_conv2d *g)
{
    if (!cpu_conv2d_nhwc_winograd_eligible(g) || g->C < 2 || g->M < 4) return false;
    if (wn_pick_tile(g) != 2) return true; /* (F(4x4) / F(6x6) only where they beat F(2x2)) */
    const int64_t t2 = g->N * ((g->OH + 1) / 2) * ((g->OW + 1) / 2), direct = 9 * g->N * g->OH * g->OW;
    if (t2 < 9) return false;
    if (direct >= 2 * 16 * t2) return true;
    const bool wide = cpu_ukernels_get()->gemm_nr >= 32;
    return wide ? 10 * direct >= 18 * 16 * t2 && g->C >= 256 && g->M >= 256 : 10 * direct >= 17 * 16 * t2;
}

int cpu_wino_nhwc_pick(const cpu_conv2d *g)
{
    return cpu_conv2d_nhwc_winograd_preferred(g) ? wn_pick_tile(g) : 0;
}

/* ---- the microkernel set of the current table ------------------------------------------------ */

typedef struct wn_isa {
    cpu_wino_nhwc_in_fn in2, in4, in6;
    cpu_wino_nhwc_out_fn out2, out4, out6;
    cpu_wino_nhwc_gemm_fn gemm;
    int64_t mr, nr;
} wn_isa;

#define WN_ISA(isa, gemm, mr, nr)                                                              \
    {cpu_f32_wino_nhwc_in2__##isa, cpu_f32_wino_nhwc_in4__##isa, cpu_f32_wino_nhwc_in6__##isa,  \
     cpu_f32_wino_nhwc_out2__##isa, cpu_f32_wino_nhwc_out4__##isa, cpu_f32_wino_nhwc_out6__##isa, \
     gemm, mr, nr}
static const wn_isa wn_avx512 = WN_ISA(avx512, cpu_f32_wino_nhwc_gemm_14x32__avx512, 14, 32);
static const wn_isa wn_avx2 = WN_ISA(avx2_fma, cpu_f32_wino_nhwc_gemm_6x16__avx2_fma, 6, 16);
static const wn_isa wn_scalar = WN_ISA(scalar, cpu_f32_wino_nhwc_gemm_6x16__scalar, 6, 16);

/* NULL when the table's packed-B width differs from ours (the cache keys on it). */
static const wn_isa *wn_isa_get(void)
{
    const cpu_ukernels *uk = cpu_ukernels_get();
    const wn_isa *s = !strcmp(uk->isa, "avx512") ? &wn_avx512
                      : !strcmp(uk->isa, "avx2_fma") ? &wn_avx2 : &wn_scalar;
    return s->nr == uk->gemm_nr ? s : NULL;
}

/* ---- transformed weights: U[panel][x][c][NR], panels of NR output channels (zero past M),
 * x the transform position: a panel's A*A GEMMs read one contiguous stream ---------------------- */

static const double wn_g2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
static const double wn_g4[6][3] = {{1.0 / 4, 0, 0},
                                   {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                   {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                   {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                   {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                   {0, 0, 1}};
static const double wn_g6[8][3] = {{1, 0, 0},
                                   {-2.0 / 9, -2.0 / 9, -2.0 / 9},
                                   {-2.0 / 9, 2.0 / 9, -2.0 / 9},
                                   {1.0 / 90, 1.0 / 45, 2.0 / 45},
                                   {1.0 / 90, -1.0 / 45, 2.0 / 45},
                                   {32.0 / 45, 16.0 / 45, 8.0 / 45},
                                   {32.0 / 45, -16.0 / 45, 8.0 / 45},
                                   {0, 0, 1}};

typedef struct wn_wctx {
    const float *w;
    int64_t M, C, A, NR;
} wn_wctx;

static void wn_weights_build(void *arg, float *dst)
{
    const wn_wctx *p = arg;
    const int64_t M = p->M, C = p->C, A = p->A, NR = p->NR, np = (M + NR - 1) / NR;
    const double(*G)[3] = A == 4 ? wn_g2 : A == 6 ? wn_g4 : wn_g6;
    memset(dst, 0, (size_t)(A * A * np * NR * C) * sizeof(float));
    for (int64_t m = 0; m < M; m++)
        for (int64_t c = 0; c < C; c++) {
            const float *g = p->w + (m * C + c) * 9;
            double t[8][3];
            for (int64_t i = 0; i < A; i++) /* t = G g */
                for (int j = 0; j < 3; j++)
                    t[i][j] = G[i][0] * g[0 * 3 + j] + G[i][1] * g[1 * 3 + j] + G[i][2] * g[2 * 3 + j];
            for (int64_t i = 0; i < A; i++) /* u = t G^T */
                for (int64_t j = 0; j < A; j++) {
                    double u = t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
                    int64_t x = i * A + j;
                    dst[((m / NR * A * A + x) * C + c) * NR + m % NR] = (float)u;
                }
        }
}

/* ---- the blocked loop -------------------------------------------------------------------------- */

typedef struct wn_job {
    cpu_wino_nhwc p;
    const wn_isa *k;
    const float *u;
    int64_t A, T, TB, ms, np, ldv, group;
    int failed;
} wn_job;

static int64_t wn_ceil(int64_t a, int64_t b) { return (a + b - 1) / b; }

static void wn_task(void *arg, int64_t begin, int64_t end)
{
    wn_job *j = arg;
    const cpu_wino_nhwc *p = &j->p;
    const wn_isa *k = j->k;
    const int64_t A2 = j->A * j->A, MR = k->mr, NR = k->nr, C = p->C, M = p->M, ldv = j->ldv;
    cpu_wino_nhwc_in_fn in = j->A == 4 ? k->in2 : j->A == 6 ? k->in4 : k->in6;
    cpu_wino_nhwc_out_fn out = j->A == 4 ? k->out2 : j->A == 6 ? k->out4 : k->out6;
    for (int64_t task = begin; task < end; task++) {
        int64_t blk = task / j->ms, sl = task % j->ms;
        int64_t t0 = blk * j->TB, nt = j->T - t0 < j->TB ? j->T - t0 : j->TB;
        int64_t jp0 = sl * j->np / j->ms, jp1 = (sl + 1) * j->np / j->ms;
        if (nt <= 0 || jp0 >= jp1) continue;
        const int64_t vxs = nt * ldv, GR = j->group * MR; /* rows per group of row panels */
        const int64_t mts = GR < nt ? GR : wn_ceil(nt, MR) * MR;
        float *v = cpu_scratch_floats(CPU_SCRATCH_WINO_V, (size_t)(A2 * vxs));
        float *mb = cpu_scratch_floats(CPU_SCRATCH_WINO_M, (size_t)(A2 * mts * NR));
        if (!v || !mb) {
            __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
            return;
        }
        in(p, t0, nt, v, ldv, vxs);
        for (int64_t jp = jp0; jp < jp1; jp++) {
            const int64_t nr = M - jp * NR < NR ? M - jp * NR : NR;
            const float *ub = j->u + jp * A2 * C * NR;
            for (int64_t g0 = 0; g0 < nt; g0 += GR) {
                const int64_t gn = nt - g0 < GR ? nt - g0 : GR;
                /* transform position outside the row panels: U[x]'s panel is reused from L1
                 * by the group's row panels */
                for (int64_t x = 0; x < A2; x++) {
                    const float *ux = ub + x * C * NR;
                    for (int64_t ip = 0; ip < gn; ip += MR) {
                        const int64_t mr = gn - ip < MR ? gn - ip : MR;
                        k->gemm((size_t)mr, (size_t)nr, (size_t)C, v + x * vxs + (g0 + ip) * ldv,
                                (size_t)ldv, ux, mb + (x * mts + ip) * NR, (size_t)NR);
                    }
                }
                out(p, t0 + g0, gn, jp * NR, nr, mb, mts * NR, NR);
            }
        }
    }
}

/* otile: 2 (F(2x2, 3x3)), 4 (F(4x4, 3x3)), 6 (F(6x6, 3x3)), 0 (pick). Declared in wino-nhwc.h for tests and
 * benches; cpu_conv2d_nhwc_winograd_f32 is this with otile 0. */
kiln_status cpu_wino_nhwc_conv_f32(const cpu_conv2d *g, const float *x, int64_t xs,
                                   const float *w, const float *bias, const float *resid,
                                   int64_t rs, float *y, int64_t ys, const cpu_epilogue *ep,
                                   bool cache, core_threadpool *pool, int otile)
{
    if (!cpu_conv2d_nhwc_winograd_eligible(g) || xs < g->C || ys < g->M || (resid && rs < g->M))
        return KILN_ERR_UNSUPPORTED;
    const wn_isa *k = wn_isa_get();
    if (!k) return KILN_ERR_UNSUPPORTED;
    const int64_t C = g->C, M = g->M;
    if (otile != 2 && otile != 4 && otile != 6) otile = wn_pick_tile(g);
    const int64_t O = otile, A = O + 2, A2 = A * A, NR = k->nr, MR = k->mr;
    const int64_t th = wn_ceil(g->OH, O), tw = wn_ceil(g->OW, O), T = g->N * th * tw;
    const int64_t np = wn_ceil(M, NR);

    /* transformed weights */
    size_t ufloats = (size_t)(A2 * np * NR * C);
    wn_wctx wc = {w, M, C, A, NR};
    bool owned = false;
    const float *u;
    if (cache) {
        int64_t params[4] = {M, C, A, 0x6e686363 /* "nhwc" */};
        u = cpu_cache_get(w, (size_t)(M * C * 9), 0x40 | (int)A, params, 4, ufloats,
                          wn_weights_build, &wc, &owned);
    } else {
        float *b = cpu_alloc_floats(ufloats);
        if (b) wn_weights_build(&wc, b);
        u = b;
        owned = true;
    }
    if (!u) return core_oom();

    /* V rows: whole vectors, and not a multiple of 1 KB so that the MR rows the GEMM reads
     * together do not share L1 sets */
    int64_t ldv = wn_ceil(C, 16) * 16;
    if (ldv % 256 == 0) ldv += 16;
    /* tiles per block. V (A2 x TB x ldv floats) is read once per NR-column panel, U once per
     * block: when U fits the L2 (few channels), V is kept to ~512 KB so that it stays there
     * too; when U is larger, every block streams it from L3 / memory, so blocks grow to ~2 MB
     * of V (one block for most batch-1 layers). A multiple of MR. */
    const int64_t vtile = A2 * ldv * (int64_t)sizeof(float), ubytes = A2 * np * NR * C * (int64_t)sizeof(float);
    const int64_t vbudget = (ubytes > ((int64_t)1 << 20) ? 2048 : 512) << 10;
    int64_t TB = vbudget / vtile / MR * MR;
    if (TB < MR) TB = MR;
    int64_t nblk = wn_ceil(T, TB), ms = 1;
    const int64_t P = core_threadpool_size(pool);
    if (P > 1) {
        if (nblk % P != 0 && nblk < 2 * P) {
            /* too few blocks to share out evenly: split the output channels too (each part
             * reads only its share of U, the blocks' V is recomputed per part) */
            ms = P < np ? P : np;
        } else if (nblk < 8 * P) {
            nblk = wn_ceil(nblk, P) * P; /* whole rounds of blocks */
        }
    }
    TB = wn_ceil(T, nblk);
    nblk = wn_ceil(T, TB);

    wn_job job;
    memset(&job, 0, sizeof job);
    job.p = (cpu_wino_nhwc){x, xs, g->H, g->W, C, M, g->OH, g->OW, g->PT, g->PL, th, tw,
                            bias, resid, rs, y, ys, ep ? ep->act : CPU_ACT_NONE,
                            ep ? ep->act_a : 0.0f, ep ? ep->act_b : 0.0f};
    job.k = k;
    job.u = u;
    job.A = A;
    job.T = T;
    job.TB = TB;
    job.ms = ms;
    job.np = np;
    job.ldv = ldv;
    /* row panels per GEMM group. The A2 U panels of one NR-column panel are read once per
     * group: with one row panel per group (x inside), they must stay in the L2 across the
     * row panels; when they are larger than half of it (F(4x4) x 256 channels: 1.2 MB,
     * F(2x2) x 512: 1 MB) they would come from L3 / memory each time, so x goes outside a
     * group of row panels whose results (<= 512 KB) stay in the L2 instead (F(4x4) 14x14 x
     * 256 and F(2x2) 7x7 x 512 ~10% faster). With smaller panels that order lost (28x28 x
     * 128, 56x56 x 64: ~10% slower: the results no longer stay in the L1). */
    const int64_t upanel = A2 * C * NR * (int64_t)sizeof(float);
    job.group = upanel > ((int64_t)512 << 10) ? ((int64_t)512 << 10) / (A2 * MR * NR * (int64_t)sizeof(float)) : 1;
    if (job.group < 1) job.group = 1;
    int64_t tasks = nblk * ms;
    if (P > 1 && tasks > 1) core_threadpool_parallel_for(pool, tasks, 1, wn_task, &job);
    else wn_task(&job, 0, tasks);

    if (owned) free((void *)u);
    if (job.failed) return core_oom();
    return KILN_OK;
}

kiln_status cpu_conv2d_nhwc_winograd_f32(const cpu_conv2d *g, const float *x, int64_t xs,
                                         const float *w, const float *bias, const float *resid,
                                         int64_t rs, float *y, int64_t ys, const cpu_epilogue *ep,
                                         bool cache, core_threadpool *pool)
{
    return cpu_wino_nhwc_conv_f32(g, x, xs, w, bias, resid, rs, y, ys, ep, cache, pool, 0);
}
