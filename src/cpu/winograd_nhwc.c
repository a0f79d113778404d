/* winograd_nhwc.c — 3x3 stride-1 convolution on NHWC tensors through Winograd F(4x4, 3x3)
 * (6x6 transformed tiles) or F(6x6, 3x3) (8x8 tiles).
 *
 * Per block of tiles (numbered over the whole batch), one thread: the input transform
 * (vectorised over channels, straight from the NHWC tiles) writes V as 36 (64) planes of
 * [tiles x C] rows; for each NR-column panel of output channels and each MR-row panel of
 * tiles, 36 (64) small GEMMs V[x] (MR x C, read as plain rows by the microkernel) times
 * U[x] (C x NR, the transformed weights, packed once per weight tensor through the cache)
 * fill an L1/L2-sized buffer of MR x NR x 36 (64) results, which the output transform turns
 * into y (vectorised over output channels, bias + residual + activation fused, written with
 * the pixel stride ys). Nothing is packed per call. The blocks are split over the pool's
 * threads; with fewer blocks than threads the output channels are split too (each such
 * task recomputes its block's V, which is cheap next to the GEMMs).
 *
 * Accuracy (bench/winograd_nhwc_bench.c, post-ReLU-like inputs, He-scaled weights, ResNet-50 /
 * YOLOv5s shapes): max |err| / max |y| 2e-6..7e-6 for F(4x4), 4e-6..1.2e-5 for F(6x6); per
 * element, |err| / (sum of |terms|) <= 1.1e-6 (F(4x4)) and 3.1e-6 (F(6x6)). */
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

/* Measured on Zen 5 (AVX-512, 1 MB L2/core, bench/winograd_nhwc_bench.c --cold: weights
 * streamed from memory as in a whole-model run; see the table in the bench's header): with
 * F(4x4) tiles T over the batch, the 36 GEMMs have T rows, and the transformed weights (4x the
 * raw ones) are read once per call, so the GEMM does T/2 FLOPs per weight byte. At T >= 25
 * (20x20 images) Winograd beat the indirect GEMM 1.3-2.5x; at T = 16 (14x14 x 128/256) it
 * lost 0.8-0.9x, at T = 4 (7x7 x 512) 0.6-0.7x. Channel counts matter little: 3->32, 4->4
 * and 8->8 channels still won 1.1-1.5x at 56..160 px, 1->16 lost (0.9x). With AVX2 (6x16
 * GEMM, half the FMA rate; same transformed-weight traffic) T = 16 already won 1.3x and
 * T = 4 lost 0.7x, so the threshold is lower there. */
bool cpu_conv2d_nhwc_winograd_preferred(const cpu_conv2d *g)
{
    if (!cpu_conv2d_nhwc_winograd_eligible(g)) return false;
    int64_t tiles = g->N * ((g->OH + 3) / 4) * ((g->OW + 3) / 4);
    int64_t min_tiles = cpu_ukernels_get()->gemm_nr >= 32 ? 20 : 12;
    return tiles >= min_tiles && g->C >= 2 && g->M >= 4;
}

/* F(6x6) does 1.8 multiplies per output per channel pair against F(4x4)'s 2.25 and moves
 * less transform data per output, but its transformed weights are 1.8x larger and its error
 * is ~2x. It won on Zen 5 only with few channels and many tiles (YOLOv5s 160x160 32->32:
 * 1.3x; 80x80 32..48 channels 1.03-1.09x), and lost at 64 channels and more. */
static int wn_pick_tile(const cpu_conv2d *g)
{
    int64_t tiles6 = g->N * ((g->OH + 5) / 6) * ((g->OW + 5) / 6);
    return g->C >= 16 && g->C <= 48 && g->M >= 16 && g->M <= 48 && tiles6 >= 64 ? 6 : 4;
}

/* ---- the microkernel set of the current table ------------------------------------------------ */

typedef struct wn_isa {
    cpu_wino_nhwc_in_fn in4, in6;
    cpu_wino_nhwc_out_fn out4, out6;
    cpu_wino_nhwc_gemm_fn gemm;
    int64_t mr, nr;
} wn_isa;

static const wn_isa wn_avx512 = {cpu_f32_wino_nhwc_in4__avx512, cpu_f32_wino_nhwc_in6__avx512,
                                 cpu_f32_wino_nhwc_out4__avx512, cpu_f32_wino_nhwc_out6__avx512,
                                 cpu_f32_wino_nhwc_gemm_14x32__avx512, 14, 32};
static const wn_isa wn_avx2 = {cpu_f32_wino_nhwc_in4__avx2_fma, cpu_f32_wino_nhwc_in6__avx2_fma,
                               cpu_f32_wino_nhwc_out4__avx2_fma, cpu_f32_wino_nhwc_out6__avx2_fma,
                               cpu_f32_wino_nhwc_gemm_6x16__avx2_fma, 6, 16};
static const wn_isa wn_scalar = {cpu_f32_wino_nhwc_in4__scalar, cpu_f32_wino_nhwc_in6__scalar,
                                 cpu_f32_wino_nhwc_out4__scalar, cpu_f32_wino_nhwc_out6__scalar,
                                 cpu_f32_wino_nhwc_gemm_6x16__scalar, 6, 16};

/* NULL when the table's packed-B width differs from ours (the cache keys on it). */
static const wn_isa *wn_isa_get(void)
{
    const cpu_ukernels *uk = cpu_ukernels_get();
    const wn_isa *s = !strcmp(uk->isa, "avx512") ? &wn_avx512
                      : !strcmp(uk->isa, "avx2_fma") ? &wn_avx2 : &wn_scalar;
    return s->nr == uk->gemm_nr ? s : NULL;
}

/* ---- transformed weights: U[x][panel][c][NR], x the transform position, panels of NR
 * output channels (zero past M) ----------------------------------------------------------------- */

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
    const double(*G)[3] = A == 6 ? wn_g4 : wn_g6;
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
                    dst[((x * np + m / NR) * C + c) * NR + m % NR] = (float)u;
                }
        }
}

/* ---- the blocked loop -------------------------------------------------------------------------- */

typedef struct wn_job {
    cpu_wino_nhwc p;
    const wn_isa *k;
    const float *u;
    int64_t A, T, TB, ms, np, ldv;
    int failed;
} wn_job;

static void wn_task(void *arg, int64_t begin, int64_t end)
{
    wn_job *j = arg;
    const cpu_wino_nhwc *p = &j->p;
    const wn_isa *k = j->k;
    const int64_t A2 = j->A * j->A, MR = k->mr, NR = k->nr, C = p->C, M = p->M, ldv = j->ldv;
    cpu_wino_nhwc_in_fn in = j->A == 6 ? k->in4 : k->in6;
    cpu_wino_nhwc_out_fn out = j->A == 6 ? k->out4 : k->out6;
    for (int64_t task = begin; task < end; task++) {
        int64_t blk = task / j->ms, sl = task % j->ms;
        int64_t t0 = blk * j->TB, nt = j->T - t0 < j->TB ? j->T - t0 : j->TB;
        int64_t jp0 = sl * j->np / j->ms, jp1 = (sl + 1) * j->np / j->ms;
        if (nt <= 0 || jp0 >= jp1) continue;
        const int64_t vxs = nt * ldv;
        float *v = cpu_scratch_floats(CPU_SCRATCH_WINO_V, (size_t)(A2 * vxs));
        float *mb = cpu_scratch_floats(CPU_SCRATCH_WINO_M, (size_t)(A2 * MR * NR));
        if (!v || !mb) {
            __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
            return;
        }
        in(p, t0, nt, v, ldv, vxs);
        for (int64_t jp = jp0; jp < jp1; jp++) {
            const int64_t nr = M - jp * NR < NR ? M - jp * NR : NR;
            const float *ub = j->u + jp * C * NR;
            for (int64_t ip = 0; ip < nt; ip += MR) {
                const int64_t mr = nt - ip < MR ? nt - ip : MR;
                for (int64_t x = 0; x < A2; x++)
                    k->gemm((size_t)mr, (size_t)nr, (size_t)C, v + x * vxs + ip * ldv, (size_t)ldv,
                            ub + x * j->np * C * NR, mb + x * MR * NR, (size_t)NR);
                out(p, t0 + ip, mr, jp * NR, nr, mb, MR * NR, NR);
            }
        }
    }
}

static int64_t wn_ceil(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* otile: 4 (F(4x4, 3x3)), 6 (F(6x6, 3x3)), 0 (pick). Declared in wino-nhwc.h for tests and
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
    if (otile != 4 && otile != 6) otile = wn_pick_tile(g);
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
