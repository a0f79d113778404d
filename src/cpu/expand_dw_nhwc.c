/* expand_dw_nhwc.c — the fused "expand 1x1 -> depthwise" NHWC kernel of inverted-residual
 * blocks (MobileNetV2, EfficientNet): y = act2(dw(act1(conv1x1(x) + b1)) + b2) without
 * writing the 1x1's output t (E channels, 4-6x the input's) to memory and reading it back.
 *
 * Each task owns a range of output rows (over the flattened (image, row) index) and a range
 * of channels. It computes the rows of t that its output rows need, in a band buffer of R
 * rows that stays in L2 (per-thread scratch), and runs the depthwise microkernel on the band
 * as soon as the rows of a run of output rows are there. The band is a sliding window: new
 * t rows are appended; when the next output row needs rows past its end, the rows still
 * needed (the kernel's vertical overlap, (KH-1)*DH + 1 - SH rows) move to its front. The
 * 1x1 runs on the indirect-GEMM microkernels of ukernels/f32-igemm (one tap, the pointers
 * are simply the input pixels), the depthwise on ukernels/f32-dwconv-nhwc: a band of rows
 * [lo, hi) is presented to it as an image of hi - lo rows with the top pad shifted by lo,
 * so its own bounds checks supply the zero padding of t (pad rows and columns are 0, not
 * act1(b1)).
 *
 * Threads split the output rows (a neighbour recomputes the few halo rows of t) or the
 * channels (no recomputation: a channel of y needs only its channel of t, which needs only
 * its row of w1), whichever the cost model says is cheaper: rows for large images, channels
 * for small ones with many channels (14x14, 7x7). Very wide bands (W * E large) or large
 * 1x1 weights are cut into channel chunks run one after another.
 *
 * The whole inverted-residual block (cpu_mbconv_nhwc_f32) adds the projection 1x1 (E -> P)
 * and the residual: each run of depthwise output rows goes into a second band, u (per-thread
 * scratch too, MBC_U_BYTES), and is projected at once, a GEMM [pixels x E] x [E x P] on the
 * same igemm microkernels with bias, residual and activation in their epilogue, writing the
 * block's output rows. Without an expansion the depthwise reads x itself. The projection
 * needs every channel of a pixel, so tasks split output rows only; channel chunks (bands too
 * wide) accumulate in y (the first adds bias and residual, the last applies the
 * activation). Where a row split recomputes too much of t in its halo rows (small images,
 * several threads: 7x7 over 2 threads computes 9 rows of t instead of 7), the block runs in
 * two phases instead: the expand->dw kernel (channel split allowed) into u in scratch, then
 * the projection split over (pixel tile, panel) pairs. */
#include "cpu/nhwc.h"
#include "cpu/ukernels/f32-dwconv-nhwc/dwconv-nhwc.h"
#include "cpu/ukernels/f32-igemm/igemm.h"
#include <stdlib.h>
#include <string.h>

/* Weight-cache layout kinds (1-3: NCHW kernels, 16: NHWC igemm, 40: NHWC depthwise,
 * 0x40|A: NHWC Winograd): the packed 1x1 weights (params carry the tile width and ISA) and
 * the packed depthwise weights. */
#define EDW_CACHE_KIND_W1 48
#define EDW_CACHE_KIND_W2 49
/* The packed projection weights of cpu_mbconv_nhwc_f32 (the w1 layout, K = E). */
#define MBC_CACHE_KIND_W3 50

/* Band buffer budget per task (bytes): the rows of t kept in L2 (1 MB per core on Zen 5;
 * the input and output rows stream through the rest). 96 KB to 768 KB measured within noise
 * of each other on the MobileNetV2 layers. */
#define EDW_BAND_BYTES (320 * 1024)
/* Packed 1x1 weights of one channel chunk (bytes): every pixel tile reads all of them from
 * L2. Small chunks re-read the input and cut the depthwise into short runs: 160->960 at 7x7
 * (614 KB of weights), 1 thread, cold caches, ran at 0.91x of the separate calls with 256 KB
 * chunks and at 1.07x in one chunk. */
#define EDW_W1_BYTES (512 * 1024)
/* Projection: the band of depthwise output rows (u) per task, at least MBC_MIN_PIX pixels
 * of it per GEMM (a short one wastes most of each MR-row tile), and the block of packed
 * projection panels that every pixel tile of a band runs against before the next block. */
#define MBC_U_BYTES (128 * 1024)
#define MBC_MIN_PIX 48
#define MBC_W3_BYTES (256 * 1024)
/* With a projection, a channel chunk also costs a pass of y (the chunks accumulate there):
 * 160->960->160 at 7x7 ran ~1% faster in one chunk (614 KB of 1x1 weights) than in two. */
#define MBC_W1_BYTES (2048 * 1024)
/* Largest band (pixels of the minimal row window) accepted at all. */
#define EDW_MAX_BAND_PIXELS ((int64_t)1 << 20)
/* Tasks are counted per thread; more threads than this share them. */
#define EDW_MAX_TASKS 64

static int64_t edw_ceil(int64_t a, int64_t b) { return (a + b - 1) / b; }
static int64_t edw_min(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t edw_max(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t edw_clamp(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* ---- microkernels ---------------------------------------------------------------------------- */

typedef struct edw_isa {
    cpu_f32_igemm_fn gemm;
    cpu_f32_dwnhwc_fn dw;
    int64_t mr, nr, id;
} edw_isa;

/* Follows cpu_ukernels_get()->isa (so KILN_CPU_ISA and cpu_ukernels_force_isa apply). */
static edw_isa edw_isa_get(void)
{
#if defined(__x86_64__) || defined(__i386__)
    const char *isa = cpu_ukernels_get()->isa;
    if (!strcmp(isa, "avx512"))
        return (edw_isa){cpu_f32_igemm__avx512, cpu_f32_dwnhwc__avx512, CPU_IGEMM_MR_AVX512, CPU_IGEMM_NR_AVX512, 2};
    if (!strcmp(isa, "avx2_fma"))
        return (edw_isa){cpu_f32_igemm__avx2_fma, cpu_f32_dwnhwc__avx2_fma, CPU_IGEMM_MR_AVX2, CPU_IGEMM_NR_AVX2, 1};
#endif
    return (edw_isa){cpu_f32_igemm__scalar, cpu_f32_dwnhwc__scalar, CPU_IGEMM_MR_SCALAR, CPU_IGEMM_NR_SCALAR, 0};
}

/* ---- eligibility ------------------------------------------------------------------------------ */

bool cpu_expand_dw_nhwc_eligible(const cpu_conv2d *g1, const cpu_conv2d *g2)
{
    if (!g1 || !g2) return false;
    /* g1: a plain 1x1 convolution */
    if (g1->G != 1 || g1->KH != 1 || g1->KW != 1 || g1->SH != 1 || g1->SW != 1 || g1->DH < 1 || g1->DW < 1 ||
        g1->PT != 0 || g1->PL != 0)
        return false;
    if (g1->C < 1 || g1->M < 1 || g1->N < 0 || g1->H < 0 || g1->W < 0 || g1->OH != g1->H || g1->OW != g1->W)
        return false;
    /* g2: the depthwise convolution of its output */
    if (!cpu_conv2d_nhwc_dw_eligible(g2)) return false;
    if (g2->N != g1->N || g2->C != g1->M || g2->H != g1->OH || g2->W != g1->OW) return false;
    /* keep index products far from overflow and the minimal band within reason (beyond it
     * the two convolutions run separately) */
    const int64_t big = (int64_t)1 << 24;
    if (g1->C > big || g1->M > big || g1->N > big) return false;
    const int64_t ext = (g2->KH - 1) * g2->DH + 1, span = edw_min(ext, g2->H);
    if (g2->W > 0 && span > EDW_MAX_BAND_PIXELS / g2->W) return false;
    if ((g1->N * g1->H) > ((int64_t)1 << 40) / (g1->W + 1) / (g1->C + 1)) return false;
    return true;
}

/* ---- packed weights --------------------------------------------------------------------------
 * w1 [E, C]: ceil(E/NR) panels of C*NR floats, k-major (the igemm layout with one tap); the
 * last panel is NR/2 wide when it has at most NR/2 columns; columns past E are zero.
 * w2 [E, KH*KW]: [KH*KW][cp], cp = E rounded up to CPU_DWNHWC_CBLK, zero past E. */

typedef struct edw_pack1_ctx {
    const float *w;
    int64_t E, C, NR;
} edw_pack1_ctx;

static void edw_pack1_build(void *arg, float *dst)
{
    const edw_pack1_ctx *p = arg;
    const int64_t NR = p->NR, np = edw_ceil(p->E, NR);
    for (int64_t q = 0; q < np; q++) {
        float *d = dst + q * p->C * NR;
        const int64_t wn = p->E - q * NR > NR / 2 ? NR : NR / 2, cols = edw_min(NR, p->E - q * NR);
        memset(d, 0, (size_t)(p->C * wn) * sizeof(float));
        for (int64_t j = 0; j < cols; j++) {
            const float *wr = p->w + (q * NR + j) * p->C;
            for (int64_t c = 0; c < p->C; c++) d[c * wn + j] = wr[c];
        }
    }
}

typedef struct edw_pack2_ctx {
    const float *w;
    int64_t E, taps, cp;
} edw_pack2_ctx;

static void edw_pack2_build(void *arg, float *dst)
{
    const edw_pack2_ctx *p = arg;
    for (int64_t t = 0; t < p->taps; t++) {
        float *d = dst + t * p->cp;
        for (int64_t e = 0; e < p->E; e++) d[e] = p->w[e * p->taps + t];
        for (int64_t e = p->E; e < p->cp; e++) d[e] = 0.0f;
    }
}

/* ---- the job ------------------------------------------------------------------------------- */

typedef struct edw_job {
    const cpu_conv2d *g1, *g2; /* g1 NULL: no expansion (t = x) */
    edw_isa isa;
    const float *x;
    int64_t xs;
    const float *w1p, *b1; /* packed 1x1 weights */
    cpu_act act1;
    float act1_a, act1_b;
    const float *w2p, *b2; /* packed depthwise weights, channel stride cp */
    int64_t cp;
    cpu_act act2;
    float act2_a, act2_b;
    /* the projection (cpu_mbconv_nhwc_f32; g3 NULL: y is the depthwise output) */
    const cpu_conv2d *g3;
    const float *w3p, *b3, *resid; /* packed projection weights (panels of E*NR) */
    int64_t rs;
    cpu_act act3;
    float act3_a, act3_b;
    float *y;
    int64_t ys;
    int64_t unit;      /* channel granule: a multiple of NR and of CPU_DWNHWC_CBLK */
    int64_t tr, tc;    /* task grid: row ranges x channel ranges (tc 1 with a projection) */
    int failed;        /* atomic: a task could not get scratch */
} edw_job;

/* t rows [r0, r1) of image n, channels [e0, e1), into band (row stride W*ecp floats, pixel
 * stride ecp, channel e0 at offset 0): pixel tiles of at most MR, each against the chunk's
 * panels (NR channels each; e0 is a panel boundary). */
static void edw_gemm_rows(const edw_job *j, int64_t n, int64_t r0, int64_t r1, int64_t e0, int64_t e1,
                          float *band, int64_t ecp)
{
    const cpu_conv2d *g = j->g1;
    const int64_t MR = j->isa.mr, NR = j->isa.nr, C = g->C, xs = j->xs;
    const int64_t P = (r1 - r0) * g->W;
    if (P <= 0) return;
    const float *xb = j->x + (n * g->H + r0) * g->W * xs;
    const int64_t q0 = e0 / NR, q1 = edw_ceil(e1, NR), nt = edw_ceil(P, MR);
    cpu_igemm_ep ep; /* zero: no residual, no prefetch hints (fields added later default off) */
    memset(&ep, 0, sizeof ep);
    ep.act = j->act1;
    ep.act_a = j->act1_a;
    ep.act_b = j->act1_b;
    const float *a[CPU_IGEMM_MR_MAX];
    for (int64_t s = 0; s < nt; s++) {
        const int64_t p0 = s * P / nt, rows = (s + 1) * P / nt - p0;
        for (int64_t i = 0; i < rows; i++) a[i] = xb + (p0 + i) * xs;
        if (s + 1 < nt && q1 - q0 >= 4) {
            /* enough panels to cover the latency: start loading the next tile's pixels */
            const int64_t pn = (s + 1) * P / nt, rn = (s + 2) * P / nt - pn;
            for (int64_t i = 0; i < rn; i++)
                for (int64_t c = 0; c < C; c += 16) __builtin_prefetch(xb + (pn + i) * xs + c);
        }
        for (int64_t q = q0; q < q1; q++) {
            const int64_t col = q * NR, nc = edw_min(NR, e1 - col);
            ep.bias = j->b1 ? j->b1 + col : NULL;
            j->isa.gemm((size_t)rows, (size_t)nc, (size_t)C, 1, (const float *const *)a, 0, j->w1p + q * C * NR,
                        band + p0 * ecp + (col - e0), (size_t)ecp, &ep);
        }
    }
}

/* The projection of npix depthwise output pixels held in u (pixel stride ecp, channels
 * [e0, e1) of E at offset 0), output panels [q0, q1) (NR channels each), into y (pixel
 * stride ys; resid likewise with rs, or NULL). Channel chunks accumulate in y: the first
 * adds bias and the caller's residual, later ones add y itself (resid == c, which the
 * microkernels allow), the last applies the activation.
 * Panels are taken in blocks of about MBC_W3_BYTES that stay in L2 while every pixel tile
 * runs against them. */
static void mbc_project(const edw_job *j, const float *u, int64_t ecp, int64_t npix, int64_t e0, int64_t e1,
                        int64_t q0, int64_t q1, float *y, const float *resid, bool first, bool last)
{
    const int64_t MR = j->isa.mr, NR = j->isa.nr, E = j->g3->C, P = j->g3->M, K = e1 - e0, ys = j->ys;
    if (npix <= 0) return;
    const int64_t nt = edw_ceil(npix, MR);
    const int64_t pblk = edw_max(1, (int64_t)(MBC_W3_BYTES / sizeof(float)) / edw_max(1, K * NR));
    cpu_igemm_ep ep;
    memset(&ep, 0, sizeof ep);
    if (last) {
        ep.act = j->act3;
        ep.act_a = j->act3_a;
        ep.act_b = j->act3_b;
    } else ep.act = CPU_ACT_NONE;
    const float *a[CPU_IGEMM_MR_MAX];
    for (int64_t qb = q0; qb < q1; qb += pblk) {
        const int64_t qe = edw_min(q1, qb + pblk);
        for (int64_t s = 0; s < nt; s++) {
            const int64_t p0 = s * npix / nt, rows = (s + 1) * npix / nt - p0;
            for (int64_t i = 0; i < rows; i++) a[i] = u + (p0 + i) * ecp;
            for (int64_t q = qb; q < qe; q++) {
                const int64_t col = q * NR, nc = edw_min(NR, P - col), wn = P - col > NR / 2 ? NR : NR / 2;
                float *c = y + p0 * ys + col;
                ep.bias = first && j->b3 ? j->b3 + col : NULL;
                if (first) {
                    ep.resid = resid ? resid + p0 * j->rs + col : NULL;
                    ep.rs = j->rs;
                } else {
                    ep.resid = c;
                    ep.rs = ys;
                }
                j->isa.gemm((size_t)rows, (size_t)nc, (size_t)K, 1, (const float *const *)a, 0,
                            j->w3p + q * E * NR + e0 * wn, c, (size_t)ys, &ep);
            }
        }
    }
}

/* Output rows [oa, ob) of image n, channels [e0, e1), through a band of R rows of t at band
 * (unused without expansion: the depthwise then reads x) and, with a projection, a band of
 * KU output rows of u at ubuf (pixel stride ecp), projected into y as soon as computed. */
static void edw_rows(const edw_job *j, int64_t n, int64_t oa, int64_t ob, int64_t e0, int64_t e1, float *band,
                     int64_t ecp, int64_t R, float *ubuf, int64_t KU, bool first, bool last)
{
    const cpu_conv2d *g = j->g2;
    const int64_t H = g->H, W = g->W, SH = g->SH, PT = g->PT, OW = g->OW, ext = (g->KH - 1) * g->DH + 1;
    const int64_t rowf = W * ecp;
    const bool expand = j->g1 != NULL, proj = j->g3 != NULL;
    cpu_dwnhwc_params p;
    memset(&p, 0, sizeof p);
    p.C = e1 - e0;
    p.W = W;
    p.OH = g->OH;
    p.OW = OW;
    p.KH = g->KH;
    p.KW = g->KW;
    p.SH = SH;
    p.SW = g->SW;
    p.DH = g->DH;
    p.DW = g->DW;
    p.PL = g->PL;
    p.xs = expand ? ecp : j->xs;
    p.ys = proj ? ecp : j->ys;
    p.rs = p.ys;
    p.cp = j->cp;
    p.w = j->w2p + e0;
    p.bias = j->b2 ? j->b2 + e0 : NULL;
    p.act = j->act2;
    p.act_a = j->act2_a;
    p.act_b = j->act2_b;
    float *yimg = j->y + n * g->OH * OW * j->ys + (proj ? 0 : e0);
    const float *rimg = proj && j->resid ? j->resid + n * g->OH * OW * j->rs : NULL;
    /* the band holds t rows [base, base + cnt) in its rows [0, cnt) */
    int64_t base = 0, cnt = 0;
    for (int64_t oy = oa; oy < ob;) {
        const int64_t lo = edw_clamp(oy * SH - PT, 0, H);
        int64_t k = 1;
        if (expand) {
            const int64_t hi1 = edw_clamp(oy * SH - PT + ext, 0, H);
            if (lo < base || lo > base + cnt || hi1 > base + R) {
                /* slide: keep the rows still needed, at the front */
                const int64_t keep = lo >= base ? edw_max(0, base + cnt - lo) : 0;
                if (keep > 0 && lo > base)
                    memmove(band, band + (lo - base) * rowf, (size_t)(keep * rowf) * sizeof(float));
                base = lo;
                cnt = keep;
            }
            /* as many output rows as the band (and the u band) can serve (one when the
             * stride skips rows of t, which then need not be computed) */
            if (SH <= ext)
                while (oy + k < ob && (!proj || k < KU) && edw_clamp((oy + k) * SH - PT + ext, 0, H) <= base + R)
                    k++;
        } else
            k = edw_min(ob - oy, KU);
        const int64_t hi = edw_clamp((oy + k - 1) * SH - PT + ext, 0, H);
        const float *src;
        if (expand) {
            if (hi > base + cnt) {
                edw_gemm_rows(j, n, base + cnt, hi, e0, e1, band + cnt * rowf, ecp);
                cnt = hi - base;
            }
            src = band + (lo - base) * rowf;
        } else
            src = j->x + ((n * H + lo) * W) * j->xs + e0;
        /* rows [lo, hi) as an image of their own: taps outside it are exactly those outside
         * [0, H) (see the file comment) */
        p.H = hi - lo;
        if (proj) {
            /* output rows [oy, oy + k) as rows [0, k) of u: top pad PT + lo - oy*SH >= 0 */
            p.PT = PT + lo - oy * SH;
            p.OH = k;
            j->isa.dw(&p, src, NULL, ubuf, 0, k, 0, e1 - e0);
            mbc_project(j, ubuf, ecp, k * OW, e0, e1, 0, edw_ceil(j->g3->M, j->isa.nr), yimg + oy * OW * j->ys,
                        rimg ? rimg + oy * OW * j->rs : NULL, first, last);
        } else {
            p.PT = PT + lo;
            j->isa.dw(&p, src, NULL, yimg, oy, oy + k, 0, e1 - e0);
        }
        oy += k;
    }
}

/* Task h: row range hr x channel range hc of the tr x tc grid. */
static void edw_task(void *arg, int64_t begin, int64_t end)
{
    edw_job *j = arg;
    const cpu_conv2d *g = j->g2;
    const int64_t E = g->C, OH = g->OH, OW = g->OW, H = g->H, W = g->W, SH = g->SH, U = j->unit;
    const int64_t ext = (g->KH - 1) * g->DH + 1, span = edw_max(1, edw_min(ext, H));
    const int64_t rows_all = g->N * OH, ng = edw_ceil(E, U);
    const bool expand = j->g1 != NULL, proj = j->g3 != NULL;
    for (int64_t h = begin; h < end; h++) {
        const int64_t hr = h / j->tc, hc = h % j->tc;
        const int64_t ra = hr * rows_all / j->tr, rb = (hr + 1) * rows_all / j->tr;
        const int64_t ca = edw_min(E, hc * ng / j->tc * U), cb = edw_min(E, (hc + 1) * ng / j->tc * U);
        if (ra >= rb || ca >= cb) continue;
        /* t rows one image segment of this task needs at most */
        const int64_t seg = edw_min(rb - ra, OH);
        const int64_t need = edw_max(1, edw_min(H, (seg - 1) * SH + ext));
        /* channel chunks: the band (at least twice the minimal window when it can), the
         * chunk's packed 1x1 weights and one row of u within their budgets */
        const int64_t units = edw_ceil(cb - ca, U);
        const int64_t want = edw_min(need, 2 * span);
        int64_t nch = 1;
        if (expand) {
            const int64_t band_units =
                edw_max(1, (int64_t)(EDW_BAND_BYTES / sizeof(float)) / edw_max(1, want * W * U));
            const int64_t w1b = proj ? MBC_W1_BYTES : EDW_W1_BYTES;
            const int64_t w1_units = edw_max(1, (int64_t)(w1b / sizeof(float)) / (j->g1->C * U + 1));
            nch = edw_max(edw_ceil(units, band_units), edw_ceil(units, w1_units));
        }
        if (proj) {
            const int64_t u_units = edw_max(1, (int64_t)(MBC_U_BYTES / sizeof(float)) / edw_max(1, OW * U));
            nch = edw_max(nch, edw_ceil(units, u_units));
        }
        if (nch > units) nch = units;
        const int64_t ecp_max = edw_ceil(edw_ceil(units, nch) * U, CPU_DWNHWC_CBLK) * CPU_DWNHWC_CBLK;
        const int64_t rowf = edw_max(1, W * ecp_max);
        int64_t R = 0, KU = 0;
        if (expand) {
            R = (int64_t)(EDW_BAND_BYTES / sizeof(float)) / rowf;
            R = edw_min(edw_max(R, span), need);
        }
        if (proj) {
            /* u rows: the budget's, but at least MBC_MIN_PIX pixels (short GEMMs waste most
             * of a tile) and at most the segment */
            KU = (int64_t)(MBC_U_BYTES / sizeof(float)) / edw_max(1, OW * ecp_max);
            KU = edw_max(KU, edw_ceil(MBC_MIN_PIX, edw_max(1, OW)));
            KU = edw_max(1, edw_min(KU, seg));
        }
        const int64_t boff = edw_ceil(R * rowf, 16) * 16;
        float *band = cpu_scratch_floats(CPU_SCRATCH_WINO_V, (size_t)edw_max(1, boff + KU * OW * ecp_max));
        if (!band) {
            __atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
            return;
        }
        for (int64_t ch = 0; ch < nch; ch++) {
            const int64_t e0 = ca + ch * units / nch * U, e1 = edw_min(cb, ca + (ch + 1) * units / nch * U);
            const int64_t ecp = edw_ceil(e1 - e0, CPU_DWNHWC_CBLK) * CPU_DWNHWC_CBLK;
            for (int64_t r = ra; r < rb;) {
                const int64_t n = r / OH, oa = r % OH, ob = edw_min(OH, oa + (rb - r));
                edw_rows(j, n, oa, ob, e0, e1, band, ecp, R, band + boff, KU, ch == 0, ch == nch - 1);
                r += ob - oa;
            }
        }
    }
}

/* The task grid tr x tc <= T with the cheapest slowest task: its multiply-adds of the 1x1
 * (rows of t incl. the halo it recomputes, times its channels rounded to the granule) and
 * of the depthwise, plus EDW_X_COST per input float it reads (with a channel split every
 * task reads all of x, which may come from DRAM or another core's cache). Ties go to row
 * ranges (each thread then keeps the pixel range of the layers around it) and to fewer
 * tasks. Measured (Xeon, 2 threads): channel split wins at 14x14 and 7x7 (up to 1.4x at
 * 160->960 7x7), row split at 56x56 (1.25x at 24->144); at 32->192 28x28 they tie warm and
 * rows win with cold caches, which the input term decides. With a projection only rows
 * (it needs every channel of a pixel). */
#define EDW_X_COST 32.0
static void edw_grid(edw_job *j, int64_t T)
{
    const cpu_conv2d *g = j->g2;
    const int64_t E = g->C, OH = g->OH, H = g->H, ext = (g->KH - 1) * g->DH + 1;
    const int64_t rows_all = g->N * OH, ng = edw_ceil(E, j->unit);
    double best = -1;
    j->tr = 1;
    j->tc = 1;
    if (j->g3) {
        j->tr = edw_max(1, edw_min(T, rows_all));
        return;
    }
    for (int64_t tc = 1; tc <= T && tc <= ng; tc++)
        for (int64_t tr = 1; tr * tc <= T && tr <= rows_all; tr++) {
            const int64_t ro = edw_ceil(rows_all, tr), per = edw_min(ro, OH);
            /* t rows: per image segment its output rows' rows plus the halo */
            const double trows = (double)ro / (double)per *
                                 (double)edw_min(H, (per - 1) * edw_min(g->SH, ext) + ext);
            const double ch = (double)edw_min(E, edw_ceil(ng, tc) * j->unit);
            const double cost = trows * (double)g->W * ch * (double)j->g1->C +
                                (double)ro * (double)g->OW * ch * (double)(g->KH * g->KW) +
                                EDW_X_COST * trows * (double)g->W * (double)j->g1->C;
            if (best < 0 || cost < best * 0.999) {
                best = cost;
                j->tr = tr;
                j->tc = tc;
            }
        }
}

/* ---- small images with several threads: two phases ------------------------------------------
 * A row split of a small image recomputes a large share of t in its halo rows (7 output rows
 * over 2 threads: 5 + 4 rows of t instead of 7) and balances the rows poorly, while the
 * channel split that suits the expansion cannot run the projection, which needs every
 * channel of a pixel. There the block runs as the expand->dw kernel (its own grid, channel
 * split included) into u in the calling thread's scratch, then the projection over pixel
 * tiles x panel ranges: the work of the separate calls, without their u tensor. */

/* The two phases' extra cost per float of u (its trip through memory, written by one core
 * and read by another, and the second parallel section), in multiply-adds: fitted on the
 * MobileNetV2 blocks (Xeon, 2 and 4 threads), where the fused row split won up to a slowest
 * task ~1.2x (2 threads) or ~1.35x (4 threads) above an even split. */
#define MBC_U_COST 20.0
/* Largest u (floats) the two phases keep in scratch. */
#define MBC_U2_MAX_FLOATS ((int64_t)1 << 21)

static bool mbc_prefer_two_phase(const edw_job *j, int64_t T)
{
    const cpu_conv2d *g1 = j->g1, *g = j->g2;
    if (!g1 || T < 2) return false;
    const int64_t OH = g->OH, H = g->H, ext = (g->KH - 1) * g->DH + 1, rows_all = g->N * OH;
    if (g->N * OH * g->OW > MBC_U2_MAX_FLOATS / j->cp) return false;
    const int64_t tr = edw_min(T, rows_all), ro = edw_ceil(rows_all, tr), per = edw_min(ro, OH);
    const double trows = (double)ro / (double)per * (double)edw_min(H, (per - 1) * edw_min(g->SH, ext) + ext);
    const double px = (double)g->W * (double)g->C * (double)g1->C, opx = (double)g->OW * (double)g->C *
                                                                            (double)(g->KH * g->KW + j->g3->M);
    const double fused = trows * px + (double)ro * opx;
    const double even = ((double)g->N * (double)H * px + (double)rows_all * opx) / (double)T;
    return fused > even + MBC_U_COST * (double)(rows_all * g->OW * g->C);
}

typedef struct mbc_pjob {
    const edw_job *j;
    const float *u;
    int64_t ups, npix, nt, np, tasks;
} mbc_pjob;

/* Task h: the h-th of `tasks` even ranges of the (pixel tile, panel) pairs in tile-major
 * order (a task reads the u rows of about its share of the tiles; a tile at a range's edge
 * is read by two). */
static void mbc_ptask(void *arg, int64_t begin, int64_t end)
{
    const mbc_pjob *pj = arg;
    const edw_job *j = pj->j;
    const int64_t items = pj->nt * pj->np;
    for (int64_t h = begin; h < end; h++) {
        const int64_t ia = h * items / pj->tasks, ib = (h + 1) * items / pj->tasks;
        for (int64_t s = ia / pj->np; s * pj->np < ib; s++) {
            const int64_t q0 = edw_max(0, ia - s * pj->np), q1 = edw_min(pj->np, ib - s * pj->np);
            const int64_t p0 = s * pj->npix / pj->nt, p1 = (s + 1) * pj->npix / pj->nt;
            if (p0 >= p1 || q0 >= q1) continue;
            mbc_project(j, pj->u + p0 * pj->ups, pj->ups, p1 - p0, 0, j->g3->C, q0, q1, j->y + p0 * j->ys,
                        j->resid ? j->resid + p0 * j->rs : NULL, true, true);
        }
    }
}

static kiln_status mbc_run_two_phase(const edw_job *j, int64_t T, core_threadpool *pool)
{
    const cpu_conv2d *g3 = j->g3;
    const int64_t npix = g3->N * g3->H * g3->W, ups = j->cp;
    float *u = cpu_scratch_floats(CPU_SCRATCH_WINO_M, (size_t)(npix * ups));
    if (!u) return core_oom();
    edw_job j1 = *j;
    j1.g3 = NULL;
    j1.y = u;
    j1.ys = ups;
    j1.failed = 0;
    edw_grid(&j1, T);
    core_threadpool_parallel_for(pool, j1.tr * j1.tc, 1, edw_task, &j1);
    if (j1.failed) return core_oom();
    /* the projection: the (tile, panel) pairs split evenly (on the Xeon, 2 threads, whole
     * tile ranges left 3:2 imbalances at 7x7, and panel ranges made every task read all of u,
     * half of it from the other core's cache: 1.25x slower at 14x14x384 -> 64) */
    const int64_t nt = edw_ceil(npix, j->isa.mr), np = edw_ceil(g3->M, j->isa.nr);
    mbc_pjob pj = {j, u, ups, npix, nt, np, edw_min(T, nt * np)};
    core_threadpool_parallel_for(pool, pj.tasks, 1, mbc_ptask, &pj);
    return KILN_OK;
}

/* Packs the weights (through the cache or into the calling thread's GEMM-B scratch), fills
 * the job's weight fields, runs the tasks. w1 NULL with g1 NULL; w3 with g3 only. */
static kiln_status edw_run(edw_job *j, const float *w1, const float *w2, const float *w3, bool cache,
                           core_threadpool *pool)
{
    const cpu_conv2d *g1 = j->g1, *g2 = j->g2, *g3 = j->g3;
    const int64_t E = g2->C, C = g1 ? g1->C : 0, P = g3 ? g3->M : 0;
    const int64_t NR = j->isa.nr, taps = g2->KH * g2->KW;
    j->cp = edw_ceil(E, CPU_DWNHWC_CBLK) * CPU_DWNHWC_CBLK;
    j->unit = NR % CPU_DWNHWC_CBLK == 0 ? NR : CPU_DWNHWC_CBLK; /* NR is 32, 16 or 8 */
    const int64_t w1f = g1 ? edw_ceil(E, NR) * C * NR : 0, w2f = taps * j->cp, w3f = g3 ? edw_ceil(P, NR) * E * NR : 0;
    edw_pack1_ctx p1 = {w1, E, C, NR}, p3 = {w3, P, E, NR};
    edw_pack2_ctx p2 = {w2, E, taps, j->cp};
    bool own1 = false, own2 = false, own3 = false;
    kiln_status st = KILN_OK;
    if (cache) {
        int64_t k1[4] = {E, C, NR, j->isa.id}, k2[3] = {E, g2->KH, g2->KW}, k3[4] = {P, E, NR, j->isa.id};
        if (g1) {
            j->w1p = cpu_cache_get(w1, (size_t)(E * C), EDW_CACHE_KIND_W1, k1, 4, (size_t)w1f, edw_pack1_build, &p1,
                                   &own1);
            if (!j->w1p) return core_oom();
        }
        j->w2p = cpu_cache_get(w2, (size_t)(E * taps), EDW_CACHE_KIND_W2, k2, 3, (size_t)w2f, edw_pack2_build, &p2,
                               &own2);
        if (!j->w2p) st = core_oom();
        if (st == KILN_OK && g3) {
            j->w3p = cpu_cache_get(w3, (size_t)(P * E), MBC_CACHE_KIND_W3, k3, 4, (size_t)w3f, edw_pack1_build, &p3,
                                   &own3);
            if (!j->w3p) st = core_oom();
        }
    } else {
        /* weights that are not constants: packed per call into the calling thread's GEMM-B
         * scratch (the tasks only read it; their bands live in another slot) */
        const int64_t off2 = edw_ceil(w1f, 16) * 16, off3 = off2 + edw_ceil(w2f, 16) * 16;
        float *s = cpu_scratch_floats(CPU_SCRATCH_GEMM_B, (size_t)(off3 + w3f));
        if (!s) return core_oom();
        if (g1) edw_pack1_build(&p1, s);
        edw_pack2_build(&p2, s + off2);
        if (g3) edw_pack1_build(&p3, s + off3);
        j->w1p = s;
        j->w2p = s + off2;
        j->w3p = s + off3;
    }
    if (st == KILN_OK) {
        /* a few microseconds of work stay on one thread */
        int64_t T = core_threadpool_size(pool);
        const double flops = 2.0 * (double)g2->N * (double)g2->H * (double)g2->W * (double)E * (double)C +
                             2.0 * (double)g2->N * (double)g2->OH * (double)g2->OW * (double)E * (double)(taps + P);
        if (flops < 5e5) T = 1;
        if (T > EDW_MAX_TASKS) T = EDW_MAX_TASKS;
        if (g3 && mbc_prefer_two_phase(j, T)) st = mbc_run_two_phase(j, T, pool);
        else {
            edw_grid(j, T);
            const int64_t tasks = j->tr * j->tc;
            if (tasks == 1) edw_task(j, 0, 1);
            else core_threadpool_parallel_for(pool, tasks, 1, edw_task, j);
            if (j->failed) st = core_oom();
        }
    }
    if (own1) free((void *)j->w1p);
    if (own2) free((void *)j->w2p);
    if (own3) free((void *)j->w3p);
    return st;
}

static void edw_acts(edw_job *j, const cpu_epilogue *ep1, const cpu_epilogue *ep2, const cpu_epilogue *ep3)
{
    j->act1 = ep1 ? ep1->act : CPU_ACT_NONE;
    j->act1_a = ep1 ? ep1->act_a : 0.0f;
    j->act1_b = ep1 ? ep1->act_b : 0.0f;
    j->act2 = ep2 ? ep2->act : CPU_ACT_NONE;
    j->act2_a = ep2 ? ep2->act_a : 0.0f;
    j->act2_b = ep2 ? ep2->act_b : 0.0f;
    j->act3 = ep3 ? ep3->act : CPU_ACT_NONE;
    j->act3_a = ep3 ? ep3->act_a : 0.0f;
    j->act3_b = ep3 ? ep3->act_b : 0.0f;
}

kiln_status cpu_expand_dw_nhwc_f32(const cpu_conv2d *g1, const float *x, int64_t xs, const float *w1,
                                   const float *b1, const cpu_epilogue *ep1, const cpu_conv2d *g2,
                                   const float *w2, const float *b2, const cpu_epilogue *ep2, float *y,
                                   int64_t ys, bool cache, core_threadpool *pool)
{
    if (!cpu_expand_dw_nhwc_eligible(g1, g2)) return KILN_ERR_UNSUPPORTED;
    const int64_t C = g1->C, E = g1->M;
    if (xs < C || ys < E) return KILN_ERR_UNSUPPORTED;
    const int64_t lim = (int64_t)1 << 40; /* pixel strides: keep offsets far from overflow */
    if (g1->N * g1->H > lim / (g1->W + 1) / xs || g2->N * g2->OH > lim / (g2->OW + 1) / ys) return KILN_ERR_UNSUPPORTED;
    if (g2->N == 0 || g2->OH == 0 || g2->OW == 0) return KILN_OK;

    edw_job j;
    memset(&j, 0, sizeof j);
    j.g1 = g1;
    j.g2 = g2;
    j.isa = edw_isa_get();
    j.x = x;
    j.xs = xs;
    j.b1 = b1;
    j.b2 = b2;
    edw_acts(&j, ep1, ep2, NULL);
    j.y = y;
    j.ys = ys;
    return edw_run(&j, w1, w2, NULL, cache, pool);
}

/* ---- the whole inverted-residual block ------------------------------------------------------ */

bool cpu_mbconv_nhwc_eligible(const cpu_conv2d *g1, const cpu_conv2d *g2, const cpu_conv2d *g3)
{
    if (!g2 || !g3) return false;
    if (g1) {
        if (!cpu_expand_dw_nhwc_eligible(g1, g2)) return false;
    } else {
        if (!cpu_conv2d_nhwc_dw_eligible(g2)) return false;
        const int64_t big = (int64_t)1 << 24;
        if (g2->C < 1 || g2->C > big || g2->N > big || g2->H < 0 || g2->W < 0) return false;
        if ((g2->N * g2->H) > ((int64_t)1 << 40) / (g2->W + 1) / (g2->C + 1)) return false;
    }
    /* g3: a plain 1x1 convolution of the depthwise output */
    if (g3->G != 1 || g3->KH != 1 || g3->KW != 1 || g3->SH != 1 || g3->SW != 1 || g3->DH < 1 || g3->DW < 1 ||
        g3->PT != 0 || g3->PL != 0)
        return false;
    if (g3->N != g2->N || g3->C != g2->M || g3->H != g2->OH || g3->W != g2->OW || g3->OH != g3->H ||
        g3->OW != g3->W)
        return false;
    if (g3->M < 1 || g3->M > ((int64_t)1 << 24)) return false;
    /* one output row of u must fit a band of reasonable size (beyond it the pieces run
     * separately) */
    if (g2->OW > EDW_MAX_BAND_PIXELS) return false;
    if ((g2->N * g2->OH) > ((int64_t)1 << 40) / (g2->OW + 1) / (g3->M + g3->C + 1)) return false;
    return true;
}

kiln_status cpu_mbconv_nhwc_f32(const cpu_conv2d *g1, const float *x, int64_t xs, const float *w1,
                                const float *b1, const cpu_epilogue *ep1, const cpu_conv2d *g2, const float *w2,
                                const float *b2, const cpu_epilogue *ep2, const cpu_conv2d *g3, const float *w3,
                                const float *b3, const cpu_epilogue *ep3, const float *resid, int64_t rs, float *y,
                                int64_t ys, bool cache, core_threadpool *pool)
{
    if (!cpu_mbconv_nhwc_eligible(g1, g2, g3)) return KILN_ERR_UNSUPPORTED;
    const int64_t C = g1 ? g1->C : g2->C, P = g3->M;
    if (xs < C || ys < P || (resid && rs < P) || (resid == y && rs != ys)) return KILN_ERR_UNSUPPORTED;
    const int64_t lim = (int64_t)1 << 40; /* pixel strides: keep offsets far from overflow */
    if (g2->N * g2->H > lim / (g2->W + 1) / xs || g3->N * g3->H > lim / (g3->W + 1) / ys ||
        (resid && g3->N * g3->H > lim / (g3->W + 1) / rs))
        return KILN_ERR_UNSUPPORTED;
    if (g3->N == 0 || g3->H == 0 || g3->W == 0) return KILN_OK;

    edw_job j;
    memset(&j, 0, sizeof j);
    j.g1 = g1;
    j.g2 = g2;
    j.g3 = g3;
    j.isa = edw_isa_get();
    j.x = x;
    j.xs = xs;
    j.b1 = b1;
    j.b2 = b2;
    j.b3 = b3;
    j.resid = resid;
    j.rs = rs;
    edw_acts(&j, ep1, ep2, ep3);
    j.y = y;
    j.ys = ys;
    return edw_run(&j, w1, w2, w3, cache, pool);
}
