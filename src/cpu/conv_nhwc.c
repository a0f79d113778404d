/* conv_nhwc.c — NHWC convolution: the dispatcher (depthwise / Winograd / indirect GEMM) and
 * the indirect GEMM ("igemm") that handles every geometry.
 *
 * Per group the convolution is y[pixels, Mg] = A[pixels, K] * B[K, Mg] with K = KH*KW*Cg
 * ordered (ky, kx, c). A is never materialised: for a tile of output pixels an indirection
 * table holds, per kernel tap, a pointer to each pixel's input channel run (or to a zero
 * vector when the tap falls into the padding), and the microkernels (ukernels/f32-igemm)
 * broadcast straight from the input. B (the weights) is packed once into NR-column panels,
 * k-major, through the weight cache. With a small channel count (image stems: 3 channels,
 * 7x7 or 6x6 kernels) a tap run of Cg floats is too short to pay for its pointer, so a whole
 * kernel row (KW*C floats; (kx, c) is exactly the packed k order) becomes one run: KH taps
 * instead of KH*KW. Inside the image such a row is contiguous in a dense input; rows that
 * touch the padding are assembled with their zeros in per-thread scratch. */
#include "cpu/conv_internal.h"
#include "cpu/nhwc.h"
#include "cpu/ukernels/f32-igemm/igemm.h"
#include <stdlib.h>
#include <string.h>

/* ---- the microkernel table --------------------------------------------------------------- */

typedef struct ig_isa {
    cpu_f32_igemm_fn fn;
    int64_t mr, nr, id;
} ig_isa;

/* Follows cpu_ukernels_get()->isa (so KILN_CPU_ISA and cpu_ukernels_force_isa apply). */
static ig_isa ig_isa_get(void)
{
    const char *isa = cpu_ukernels_get()->isa;
    if (!strcmp(isa, "avx512"))
        return (ig_isa){cpu_f32_igemm__avx512, CPU_IGEMM_MR_AVX512, CPU_IGEMM_NR_AVX512, 2};
    if (!strcmp(isa, "avx2_fma"))
        return (ig_isa){cpu_f32_igemm__avx2_fma, CPU_IGEMM_MR_AVX2, CPU_IGEMM_NR_AVX2, 1};
    return (ig_isa){cpu_f32_igemm__scalar, CPU_IGEMM_MR_SCALAR, CPU_IGEMM_NR_SCALAR, 0};
}

/* Weight-cache layout kind of the packed igemm weights (1-3: NCHW kernels, 40: NHWC
 * depthwise, 0x40|A: NHWC Winograd). The params carry the tile width and ISA. */
#define IG_CACHE_KIND 16

static int64_t ig_ceil(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t ig_min(int64_t a, int64_t b) { return a < b ? a : b; }

/* ---- packed weights ------------------------------------------------------------------------
 * Per group, ceil(Mg/NR) panels of K*NR floats (panel p at p*K*NR): row k = (ky*KW + kx)*Cg + c
 * holds the panel's output channels. The last panel is NR/2 wide when it has at most NR/2
 * columns (the kernels read it with that stride). Columns past Mg are zero. */

typedef struct ig_pack_ctx {
    const float *w;
    int64_t G, Mg, Cg, KHW, NR;
} ig_pack_ctx;

static int64_t ig_panel_width(int64_t Mg, int64_t p, int64_t NR)
{
    return Mg - p * NR > NR / 2 ? NR : NR / 2;
}

static void ig_pack_build(void *arg, float *dst)
{
    const ig_pack_ctx *c = arg;
    const int64_t NR = c->NR, K = c->KHW * c->Cg, np = ig_ceil(c->Mg, NR);
    for (int64_t g = 0; g < c->G; g++) {
        for (int64_t p = 0; p < np; p++) {
            float *d = dst + (g * np + p) * K * NR;
            const int64_t wn = ig_panel_width(c->Mg, p, NR), cols = ig_min(NR, c->Mg - p * NR);
            memset(d, 0, (size_t)(K * wn) * sizeof(float));
            for (int64_t j = 0; j < cols; j++) {
                const float *wm = c->w + (g * c->Mg + p * NR + j) * c->Cg * c->KHW; /* [Cg][KHW] */
                for (int64_t ch = 0; ch < c->Cg; ch++)
                    for (int64_t t = 0; t < c->KHW; t++) d[(t * c->Cg + ch) * wn + j] = wm[ch * c->KHW + t];
            }
        }
    }
}

/* Homes (see ig_task) are counted per thread; more threads than this share them. */
#define IG_MAX_HOMES 64

/* ---- the job -------------------------------------------------------------------------------- */

typedef struct ig_job {
    const cpu_conv2d *g;
    ig_isa isa;
    const float *x;
    int64_t xs;
    bool merged; /* taps are kernel rows (KW*C floats) */
    int64_t taps, kc, K, Cg, Mg, np, nb;
    const float *wp; /* packed weights, np panels of K*NR per group */
    const float *bias, *resid;
    int64_t rs;
    float *y;
    int64_t ys;
    cpu_act act;
    float act_a, act_b;
    int64_t P, nt;     /* pixels; pixel tiles */
    int64_t tm, tn;    /* home grid: tile ranges x panel ranges, one home per thread */
    int64_t nch;       /* chunks per home */
    bool pchunks;      /* chunks are panel blocks (else tile ranges) */
    bool pfw;          /* prefetch the next tile's output for writing (a large output) */
    int failed;        /* atomic: a task could not get scratch */
    /* per home: the chunks not yet claimed, [lo, hi) packed as hi << 32 | lo (atomic) */
    struct {
        _Alignas(64) int64_t v;
    } left[IG_MAX_HOMES];
} ig_job;

/* The indirection table of the tile of pixels [p0, p0 + rows): ind[t * MR + i] for tap t.
 * Merged mode: a kernel row lying inside the image of a dense input (xs == C) is read in
 * place; one that is partly in the padding (or any row of a strided input) is assembled with
 * its zeros in `stage` (KW*C floats per row and ky); one wholly in the padding is `zero`.
 * Returns 0, or the pixel step in floats when the tile is one stretch of an output row whose
 * taps all lie inside the image: then only ind[t] is written (the microkernels' a_step mode,
 * pixel i of tap t at ind[t] + i * step). */
static int64_t ig_build_tile(const ig_job *j, int64_t p0, int64_t rows, const float *zero,
                             float *stage, const float **ind)
{
    /* everything in locals: the stores through `ind` could alias the job's pointer fields */
    const cpu_conv2d *g = j->g;
    const int64_t MR = j->isa.mr, xs = j->xs, C = g->C, H = g->H, W = g->W, OH = g->OH, OW = g->OW;
    const int64_t KH = g->KH, KW = g->KW, SH = g->SH, SW = g->SW, DH = g->DH, DW = g->DW;
    const int64_t PT = g->PT, PL = g->PL, rowstride = W * xs, imgstride = H * W * xs;
    const float *const x = j->x;
    const bool merged = j->merged;
    int64_t ox = p0 % OW, q = p0 / OW, oy = q % OH, n = q / OH;
    /* fast path: all pixels in one output row, all taps inside horizontally; then a tap's
     * pointers are evenly spaced, SW pixels apart */
    const int64_t ext = merged ? KW : (KW - 1) * DW + 1; /* input columns a pixel spans */
    if (ox + rows <= OW && ox * SW - PL >= 0 && (ox + rows - 1) * SW - PL + ext <= W && (!merged || xs == C)) {
        const float *img = x + n * imgstride + (ox * SW - PL) * xs;
        const int64_t step = SW * xs, KWt = merged ? 1 : KW;
        if (rows > 1 && oy * SH - PT >= 0 && oy * SH - PT + (KH - 1) * DH < H) {
            for (int64_t ky = 0, iy = oy * SH - PT; ky < KH; ky++, iy += DH)
                for (int64_t kx = 0; kx < KWt; kx++) ind[ky * KWt + kx] = img + iy * rowstride + kx * DW * xs;
            return step;
        }
        for (int64_t ky = 0, iy = oy * SH - PT; ky < KH; ky++, iy += DH)
            for (int64_t kx = 0; kx < KWt; kx++) {
                const float **d = ind + (ky * KWt + kx) * MR;
                if (iy < 0 || iy >= H) {
                    for (int64_t i = 0; i < rows; i++) d[i] = zero;
                } else {
                    const float *b = img + iy * rowstride + kx * DW * xs;
                    for (int64_t i = 0; i < rows; i++) d[i] = b + i * step;
                }
            }
        return 0;
    }
    for (int64_t i = 0; i < rows; i++) {
        const int64_t iy0 = oy * SH - PT, ix0 = ox * SW - PL;
        const float *img = x + n * imgstride;
        const float **d = ind + i;
        if (merged) {
            const bool inside = xs == C && ix0 >= 0 && ix0 + KW <= W;
            for (int64_t ky = 0, iy = iy0; ky < KH; ky++, iy += DH, d += MR) {
                if (iy < 0 || iy >= H) {
                    *d = zero;
                } else if (inside) {
                    *d = img + iy * rowstride + ix0 * C;
                } else {
                    const float *row = img + iy * rowstride;
                    for (int64_t kx = 0, ix = ix0; kx < KW; kx++, ix++)
                        for (int64_t c = 0; c < C; c++) stage[kx * C + c] = ix >= 0 && ix < W ? row[ix * xs + c] : 0.0f;
                    *d = stage;
                    stage += KW * C;
                }
            }
        } else {
            const bool inside = ix0 >= 0 && ix0 + (KW - 1) * DW < W;
            for (int64_t ky = 0, iy = iy0; ky < KH; ky++, iy += DH) {
                if (iy < 0 || iy >= H) {
                    for (int64_t kx = 0; kx < KW; kx++, d += MR) *d = zero;
                    continue;
                }
                const float *row = img + iy * rowstride;
                if (inside) {
                    const float *r = row + ix0 * xs;
                    for (int64_t kx = 0; kx < KW; kx++, r += DW * xs, d += MR) *d = r;
                } else {
                    for (int64_t kx = 0, ix = ix0; kx < KW; kx++, ix += DW, d += MR)
                        *d = ix >= 0 && ix < W ? row + ix * xs : zero;
                }
            }
        }
        if (++ox == OW) {
            ox = 0;
            if (++oy == OH) {
                oy = 0;
                n++;
            }
        }
    }
    return 0;
}

/* Pixel tiles: the P output pixels split into NT = ceil(P/MR) tiles of balanced sizes (at
 * most MR); tile s is pixels [s*P/NT, (s+1)*P/NT). */
static int64_t ig_tile_start(const ig_job *j, int64_t s) { return s * j->P / j->nt; }

/* Per-thread scratch of a task: zeros (a padding tap: C floats; a padding kernel row:
 * KW*C), the staging area of merged mode, the indirection table. */
typedef struct ig_scratch {
    const float *zero;
    float *stage;
    const float **ind;
} ig_scratch;

static bool ig_scratch_get(const ig_job *j, ig_scratch *sc)
{
    const cpu_conv2d *g = j->g;
    const int64_t MR = j->isa.mr;
    const int64_t zfloats = ig_ceil((j->merged ? g->KW * g->C : g->C) + 16, 16) * 16;
    const int64_t sfloats = j->merged ? ig_ceil(MR * g->KH * g->KW * g->C, 16) * 16 : 0;
    const int64_t pfloats = (j->taps + 1) * MR * (int64_t)sizeof(const float *) / (int64_t)sizeof(float);
    float *s = cpu_scratch_floats(CPU_SCRATCH_GEMM_A, (size_t)(zfloats + sfloats + pfloats));
    if (!s) return false;
    memset(s, 0, (size_t)zfloats * sizeof(float));
    sc->zero = s;
    sc->stage = s + zfloats;
    sc->ind = (const float **)(void *)(s + zfloats + sfloats);
    return true;
}

/* Tiles [s0, s1) x panels [q0, q1) of the Q = G*np panels of all groups. The panels go in
 * blocks of nb (their packed weights stay in L2); per block, every tile gets its
 * indirection table and then runs the block's panels (its input then comes from L1). */
static void ig_chunk(const ig_job *j, const ig_scratch *sc, int64_t s0, int64_t s1, int64_t q0, int64_t q1,
                     int64_t qlim)
{
    const cpu_conv2d *g = j->g;
    const int64_t MR = j->isa.mr, NR = j->isa.nr;
    const float **ind = sc->ind;
    cpu_igemm_ep ep = {NULL, NULL, j->rs, j->act, j->act_a, j->act_b, NULL, 0, NULL, 0, 0};
    for (int64_t qb = q0; qb < q1; qb += j->nb) {
        const int64_t qe = ig_min(q1, qb + j->nb);
        /* the weights of the next panel block of the home (up to qlim) are prefetched into
         * L2 in slices spread over this block's microkernel calls, at most one line per k
         * step (their first tile would otherwise wait for DRAM; measured on ResNet-50's
         * 3x3 512 at 7x7, whose 9 MB of weights serve only 49 pixels: 0.70 -> 0.61 ms) */
        const char *pf = (const char *)(j->wp + qe * j->K * NR);
        const int64_t pf_bytes = (ig_min(qlim, qe + j->nb) - qe) * j->K * NR * (int64_t)sizeof(float);
        const int64_t calls = (s1 - s0) * (qe - qb);
        const int64_t slice = pf_bytes > 0 && calls > 0 ? ig_min(ig_ceil(ig_ceil(pf_bytes, calls), 64) * 64, j->K * 64) : 0;
        const char *pf_end = pf + (pf_bytes > 0 ? pf_bytes : 0);
        for (int64_t si = s0; si < s1; si++) {
            const int64_t pt = ig_tile_start(j, si), rows = ig_tile_start(j, si + 1) - pt;
            ep.a_step = (size_t)ig_build_tile(j, pt, rows, sc->zero, sc->stage, ind);
            if (j->taps == 1 && !j->merged && si + 1 < s1 && qe - qb >= 4) {
                /* 1x1 with enough panels to cover the latency: start loading the next
                 * tile's pixels (measured: 64->256 at 56x56 167 -> 190 GFLOP/s,
                 * 128->128 at 80x80 146 -> 164; with 1-2 panels it costs more than it
                 * hides) */
                const int64_t pn = ig_tile_start(j, si + 1), rn = ig_tile_start(j, si + 2) - pn;
                const int64_t nstep = ig_build_tile(j, pn, rn, sc->zero, sc->stage, ind + MR);
                for (int64_t i = 0; i < rn; i++) {
                    const float *pp = nstep ? ind[MR] + i * nstep : ind[MR + i];
                    for (int64_t c = 0; c < g->C; c += 16) __builtin_prefetch(pp + c);
                }
            }
            for (int64_t q = qb; q < qe; q++) {
                const int64_t gi = q / j->np, p = q % j->np;
                const int64_t col = gi * j->Mg + p * NR, nc = ig_min(NR, j->Mg - p * NR);
                ep.bias = j->bias ? j->bias + col : NULL;
                ep.resid = j->resid ? j->resid + pt * j->rs + col : NULL;
                ep.pfw = NULL;
                if (j->pfw && si + 1 < s1) {
                    const int64_t pn = ig_tile_start(j, si + 1);
                    ep.pfw = j->y + pn * j->ys + col;
                    ep.pfw_rows = (size_t)(ig_tile_start(j, si + 2) - pn);
                }
                ep.pf = NULL;
                if (slice > 0 && pf < pf_end) {
                    ep.pf = pf;
                    ep.pf_len = (size_t)ig_min(slice, pf_end - pf);
                    pf += ep.pf_len;
                }
                j->isa.fn((size_t)rows, (size_t)nc, (size_t)j->kc, (size_t)j->taps,
                          (const float *const *)ind, j->merged ? 0 : (size_t)(gi * j->Cg),
                          j->wp + q * j->K * NR, j->y + pt * j->ys + col, (size_t)j->ys, &ep);
            }
        }
    }
}

/* Claims a chunk of home h: from the front (its own thread) or from the back (a thread
 * that has finished its own home). -1 when none is left. */
static int64_t ig_claim(ig_job *j, int64_t h, bool front)
{
    int64_t v = __atomic_load_n(&j->left[h].v, __ATOMIC_RELAXED);
    for (;;) {
        const int64_t lo = v & 0xFFFFFFFF, hi = v >> 32;
        if (lo >= hi) return -1;
        const int64_t nv = front ? (hi << 32) | (lo + 1) : ((hi - 1) << 32) | lo;
        if (__atomic_compare_exchange_n(&j->left[h].v, &v, nv, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return front ? lo : hi - 1;
    }
}

static void ig_run_chunk(ig_job *j, const ig_scratch *sc, int64_t h, int64_t c)
{
    const int64_t Q = j->g->G * j->np, hm = h / j->tn, hn = h % j->tn;
    const int64_t s0 = hm * j->nt / j->tm, s1 = (hm + 1) * j->nt / j->tm;
    const int64_t q0 = hn * Q / j->tn, q1 = (hn + 1) * Q / j->tn;
    if (j->pchunks) {
        const int64_t npb = ig_ceil(q1 - q0, j->nb);
        const int64_t b0 = c * npb / j->nch, b1 = (c + 1) * npb / j->nch;
        ig_chunk(j, sc, s0, s1, q0 + b0 * j->nb, ig_min(q1, q0 + b1 * j->nb), q1);
    } else {
        ig_chunk(j, sc, s0 + c * (s1 - s0) / j->nch, s0 + (c + 1) * (s1 - s0) / j->nch, q0, q1, q1);
    }
}

/* Task h of the parallel loop: home h, tiles [hm*NT/tm, (hm+1)*NT/tm) x panels
 * [hn*Q/tn, (hn+1)*Q/tn) (h = hm*tn + hn), is cut into nch chunks: ranges of its tiles
 * when its panels make one block (the weights stay in L2, each chunk reads its input
 * once), else ranges of its panel blocks over all its tiles (each chunk then reads the
 * input once per block, as a home in one piece would; chunks of tiles would read all the
 * weights once per chunk: far more with 1 MB of L2). The task runs
 * its home's chunks from the front, then takes what is left of the other homes from their
 * backs. So each thread mostly writes the same pixel range as the kernels before and after
 * it (which split pixels the same way: their data stays in its L2; measured: dynamic
 * claiming of small tasks made MobileNetV2 8% slower), and a thread that comes late or
 * runs slower is helped at the end instead of being waited for. */
static void ig_task(void *arg, int64_t begin, int64_t end)
{
    ig_job *j = arg;
    ig_scratch sc;
    if (!ig_scratch_get(j, &sc)) {
        __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
        return;
    }
    const int64_t H = j->tm * j->tn;
    for (int64_t h = begin; h < end; h++) {
        for (int64_t c; (c = ig_claim(j, h, true)) >= 0;) ig_run_chunk(j, &sc, h, c);
        for (int64_t o = 1; o < H; o++) {
            const int64_t h2 = (h + o) % H;
            for (int64_t c; (c = ig_claim(j, h2, false)) >= 0;) ig_run_chunk(j, &sc, h2, c);
        }
    }
}

static bool ig_geometry_ok(const cpu_conv2d *g, int64_t xs, int64_t ys, const float *resid, int64_t rs)
{
    if (g->N < 0 || g->OH < 0 || g->OW < 0) return false;
    if (g->C < 1 || g->H < 1 || g->W < 1 || g->M < 1 || g->G < 1 || g->KH < 1 || g->KW < 1 ||
        g->SH < 1 || g->SW < 1 || g->DH < 1 || g->DW < 1)
        return false;
    if (g->C % g->G || g->M % g->G) return false;
    if (xs < g->C || ys < g->M || (resid && rs < g->M)) return false;
    /* keep every index product far from int64 overflow */
    const int64_t lim = (int64_t)1 << 40;
    if (g->N > lim / g->H / g->W / xs || g->KH > (lim >> 8) / g->KW / (g->C / g->G)) return false;
    if (g->N * g->OH > lim || g->OW > lim / (g->N * g->OH + 1) / ys) return false;
    return true;
}

kiln_status cpu_conv2d_nhwc_igemm_f32(const cpu_conv2d *g, const float *x, int64_t xs,
                                      const float *w, const float *bias, const float *resid,
                                      int64_t rs, float *y, int64_t ys, const cpu_epilogue *ep,
                                      bool cache, core_threadpool *pool)
{
    if (!ig_geometry_ok(g, xs, ys, resid, rs)) return KILN_ERR_UNSUPPORTED;
    const int64_t P = g->N * g->OH * g->OW;
    if (P == 0) return KILN_OK;
    ig_job j;
    memset(&j, 0, sizeof j);
    j.g = g;
    j.isa = ig_isa_get();
    const int64_t NR = j.isa.nr, KHW = g->KH * g->KW;
    j.Cg = g->C / g->G;
    j.Mg = g->M / g->G;
    j.K = KHW * j.Cg;
    j.np = ig_ceil(j.Mg, NR);
    j.bias = bias;
    j.resid = resid;
    j.rs = rs;
    j.y = y;
    j.ys = ys;
    j.act = ep ? ep->act : CPU_ACT_NONE;
    j.act_a = ep ? ep->act_a : 0.0f;
    j.act_b = ep ? ep->act_b : 0.0f;
    j.P = P;
    /* an output far beyond L2 misses the cache as it is written: the kernels then prefetch
     * the next tile's lines for writing (measured on the YOLOv5s stem, 13 MB of output:
     * ~10% faster; on small outputs, which stay in L2, the prefetches only cost: mv2's 1x1
     * 32->16 at 112x112, 0.8 MB, 3% slower) */
    j.pfw = (double)P * (double)ys * sizeof(float) > 4.0 * 1024 * 1024;

    /* weights */
    const size_t wfloats = (size_t)(g->G * j.np * j.K * NR);
    ig_pack_ctx pc = {w, g->G, j.Mg, j.Cg, KHW, NR};
    bool owned = false;
    if (cache) {
        int64_t params[7] = {g->G, j.Mg, j.Cg, g->KH, g->KW, NR, j.isa.id};
        j.wp = cpu_cache_get(w, (size_t)(g->M * j.K), IG_CACHE_KIND, params, 7, wfloats, ig_pack_build, &pc, &owned);
    } else {
        float *d = cpu_scratch_floats(CPU_SCRATCH_GEMM_B, wfloats);
        if (d) ig_pack_build(&pc, d);
        j.wp = d;
    }
    if (!j.wp) return core_oom();

    /* input: merged kernel rows for few channels, else one run per tap */
    j.merged = g->G == 1 && g->DW == 1 && g->KW > 1 && g->C <= 16;
    j.x = x;
    j.xs = xs;
    j.taps = j.merged ? g->KH : KHW;
    j.kc = j.merged ? g->KW * g->C : j.Cg;
    /* panels per block: their packed weights within ~512 KB of L2 */
    const int64_t MR = j.isa.mr;
    j.nb = (int64_t)(512 * 1024 / sizeof(float)) / (j.K * NR);
    if (j.nb < 1) j.nb = 1;
    j.nt = ig_ceil(P, MR);

    /* Home grid tm x tn == T (one home per thread): the cheapest slowest home (its
     * multiply-adds plus a little for the input and weights it touches). Each home is cut
     * into chunks of at least ~1.5 MFLOP, at most 8, for the balancing of ig_task. A few
     * microseconds of work stay on one thread. */
    int64_t T = core_threadpool_size(pool);
    const double flops = 2.0 * (double)P * (double)g->M * (double)j.K;
    if (flops < 5e5) T = 1;
    if (T > IG_MAX_HOMES) T = IG_MAX_HOMES;
    j.tm = 1;
    j.tn = 1;
    if (T > 1) {
        const int64_t Q = g->G * j.np;
        double best = -1;
        for (int64_t tm = 1; tm <= T; tm++) {
            if (T % tm) continue;
            const int64_t tn = T / tm;
            const double rows = (double)ig_ceil(P, tm);
            const double cols = (double)(ig_ceil(Q, tn) * NR);
            const double cost = rows * cols * (double)j.K + 2.0 * (rows + cols) * (double)j.K;
            if (best < 0 || cost < best) {
                best = cost;
                j.tm = tm;
                j.tn = tn;
            }
        }
    }
    const int64_t H = j.tm * j.tn, npb = ig_ceil(ig_ceil(g->G * j.np, j.tn), j.nb);
    j.pchunks = npb > 1;
    j.nch = (int64_t)(flops / (double)H / 1.5e6);
    if (j.nch > 8) j.nch = 8;
    if (j.nch > (j.pchunks ? npb : j.nt / j.tm)) j.nch = j.pchunks ? npb : j.nt / j.tm;
    if (j.nch < 1) j.nch = 1;
    for (int64_t h = 0; h < H; h++) j.left[h].v = j.nch << 32;
    if (H == 1) ig_task(&j, 0, 1);
    else core_threadpool_parallel_for(pool, H, 1, ig_task, &j);
    if (owned) free((void *)j.wp);
    if (j.failed) return core_oom();
    return KILN_OK;
}

kiln_status cpu_conv2d_nhwc_f32(const cpu_conv2d *g, const float *x, int64_t xs, const float *w,
                                const float *bias, const float *resid, int64_t rs, float *y,
                                int64_t ys, const cpu_epilogue *ep, int algo, bool cache,
                                core_threadpool *pool)
{
    kiln_status st = KILN_ERR_UNSUPPORTED;
    if (algo == CPU_CONV_AUTO && cpu_conv_forced_algo()) algo = cpu_conv_forced_algo();
    if ((algo == CPU_CONV_AUTO || algo == CPU_CONV_DW) && cpu_conv2d_nhwc_dw_eligible(g))
        st = cpu_dwconv2d_nhwc_f32(g, x, xs, w, bias, resid, rs, y, ys, ep, cache, pool);
    else if ((algo == CPU_CONV_WINO || (algo == CPU_CONV_AUTO && cpu_conv2d_nhwc_winograd_preferred(g))) &&
             cpu_conv2d_nhwc_winograd_eligible(g))
        st = cpu_conv2d_nhwc_winograd_f32(g, x, xs, w, bias, resid, rs, y, ys, ep, cache, pool);
    if (st != KILN_ERR_UNSUPPORTED) return st;
    return cpu_conv2d_nhwc_igemm_f32(g, x, xs, w, bias, resid, rs, y, ys, ep, cache, pool);
}
