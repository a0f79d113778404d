/* sgemm.c — the blocked FP32 GEMM driver: packs A into MR-row and B into NR-column panels
 * (or uses pre-packed ones; MR x NR is the dispatched microkernel's tile: 6x16 AVX2/scalar,
 * 14x32 AVX-512), blocks for the caches (KC x NC of B, MC x KC of A), calls the microkernel
 * with the fused epilogue, and splits the output over threads. */
#include "cpu/cpu.h"
#include <stdlib.h>
#include <string.h>

/* Cache blocking per tile layout. 6x16 (tuned on Zen 3, 32 KB L1d, 512 KB L2): a 16-column B
 * micropanel of KC rows (16 KB) stays in L1 while the MC x KC A block (144 KB) streams from
 * L2; the KC x NC B block lives in L3. 14x32 (Zen 4/5, 32-48 KB L1d, 1 MB L2): the 32-column
 * micropanel of 256 rows is 32 KB, the A block of 168 rows 168 KB. */
typedef struct sg_layout {
    int64_t mr, nr, kc, mc, nc;
} sg_layout;

static sg_layout sg_layout_of(const cpu_ukernels *t)
{
    sg_layout l = {t->gemm_mr, t->gemm_nr, 256, 144, 2048};
    if (t->gemm_nr >= 32) l.mc = t->gemm_mr * 12; /* KC 128..384 measured within noise */
    return l;
}

static int64_t sg_min(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t sg_ceil(int64_t a, int64_t b) { return (a + b - 1) / b; }

size_t cpu_sgemm_packed_a_floats(int64_t M, int64_t K)
{
    int64_t mr = cpu_ukernels_get()->gemm_mr;
    return (size_t)sg_ceil(M, mr) * (size_t)mr * (size_t)(K > 0 ? K : 1);
}

size_t cpu_sgemm_packed_b_floats(int64_t K, int64_t N)
{
    int64_t nr = cpu_ukernels_get()->gemm_nr;
    return (size_t)sg_ceil(N, nr) * (size_t)nr * (size_t)(K > 0 ? K : 1);
}

/* One full panel of MR contiguous rows (csa == 1); MR is a constant where inlined. */
static inline __attribute__((always_inline)) void sg_pack_a_full(const float *const *src, int64_t kc,
                                                                 const int MR, float *d)
{
    for (int64_t k = 0; k < kc; k++, d += MR)
        for (int r = 0; r < MR; r++) d[r] = src[r][k];
}

/* A rows [i0, i0+mc), depth [k0, k0+kc) into panels of kc*MR floats. */
static void sg_pack_a_block(const float *a, int64_t rsa, int64_t csa, int64_t M, int64_t i0,
                            int64_t mc, int64_t k0, int64_t kc, int64_t MR, float *dst)
{
    for (int64_t p = 0; p < mc; p += MR) {
        int64_t rows = sg_min(MR, mc - p);
        if (i0 + p + rows > M) rows = M - (i0 + p);
        if (rows < 0) rows = 0;
        float *d = dst + p * kc;
        const float *src[CPU_GEMM_MR_MAX];
        for (int r = 0; r < MR; r++) src[r] = r < rows ? a + (i0 + p + r) * rsa + k0 * csa : NULL;
        if (rows == MR && csa == 1 && MR == 6) {
            sg_pack_a_full(src, kc, 6, d);
        } else if (rows == MR && csa == 1 && MR == 14) {
            sg_pack_a_full(src, kc, 14, d);
        } else if (rsa == 1 && rows > 0) {
            /* columns of A are contiguous: one copy per k */
            const float *s0 = src[0];
            for (int64_t k = 0; k < kc; k++, d += MR) {
                memcpy(d, s0 + k * csa, (size_t)rows * sizeof(float));
                for (int64_t r = rows; r < MR; r++) d[r] = 0.0f;
            }
        } else {
            for (int64_t k = 0; k < kc; k++) {
                for (int r = 0; r < MR; r++) d[r] = r < rows ? src[r][k * csa] : 0.0f;
                d += MR;
            }
        }
    }
}

/* B columns [j0, j0+nc), depth [k0, k0+kc) of a strided matrix into panels of kc*NR. */
static void sg_pack_b_matrix(const float *b, int64_t rsb, int64_t csb, int64_t k0, int64_t kc,
                             int64_t j0, int64_t nc, int64_t NR, float *dst)
{
    for (int64_t p = 0; p < nc; p += NR) {
        int64_t cols = sg_min(NR, nc - p);
        float *d = dst + p * kc;
        const float *src = b + k0 * rsb + (j0 + p) * csb;
        if (csb == 1 && cols == NR) {
            for (int64_t k = 0; k < kc; k++, d += NR) memcpy(d, src + k * rsb, NR * sizeof(float));
        } else if (csb == 1) {
            for (int64_t k = 0; k < kc; k++, d += NR) {
                memcpy(d, src + k * rsb, (size_t)cols * sizeof(float));
                memset(d + cols, 0, (size_t)(NR - cols) * sizeof(float));
            }
        } else {
            for (int64_t k = 0; k < kc; k++, d += NR) {
                for (int64_t j = 0; j < cols; j++) d[j] = src[k * rsb + j * csb];
                for (int64_t j = cols; j < NR; j++) d[j] = 0.0f;
            }
        }
    }
}

/* The same for the implicit im2col operand of a convolution. A panel's NR columns are split
 * into runs within one output row, so that stride-1 interior runs are plain copies. */
static void sg_pack_b_im2col(const cpu_im2col *g, int64_t k0, int64_t kc, int64_t j0, int64_t nc,
                             int64_t NR, float *dst)
{
    const int64_t KHW = g->KH * g->KW;
    for (int64_t p = 0; p < nc; p += NR) {
        int64_t cols = sg_min(NR, nc - p);
        int64_t n0 = j0 + p;
        int64_t seg_oy[CPU_GEMM_NR_MAX], seg_ox[CPU_GEMM_NR_MAX], seg_len[CPU_GEMM_NR_MAX], seg_off[CPU_GEMM_NR_MAX];
        int nseg = 0;
        for (int64_t j = 0, oy = n0 / g->OW, ox = n0 % g->OW; j < cols; nseg++) {
            int64_t len = sg_min(cols - j, g->OW - ox);
            seg_oy[nseg] = oy;
            seg_ox[nseg] = ox;
            seg_len[nseg] = len;
            seg_off[nseg] = j;
            j += len;
            ox = 0;
            oy++;
        }
        float *d = dst + p * kc;
        int64_t c = k0 / KHW, rem = k0 % KHW, ky = rem / g->KW, kx = rem % g->KW;
        for (int64_t k = 0; k < kc; k++, d += NR) {
            const float *plane = g->x + c * g->cstride;
            for (int sgi = 0; sgi < nseg; sgi++) {
                float *ds = d + seg_off[sgi];
                int64_t len = seg_len[sgi];
                int64_t iy = seg_oy[sgi] * g->SH - g->PT + ky * g->DH;
                int64_t ix0 = seg_ox[sgi] * g->SW - g->PL + kx * g->DW;
                if (iy < 0 || iy >= g->H) {
                    memset(ds, 0, (size_t)len * sizeof(float));
                    continue;
                }
                const float *row = plane + iy * g->W;
                int64_t ixl = ix0 + (len - 1) * g->SW;
                if (g->SW == 1 && ix0 >= 0 && ixl < g->W) {
                    memcpy(ds, row + ix0, (size_t)len * sizeof(float));
                } else if (ix0 >= 0 && ixl < g->W) {
                    const float *src = row + ix0;
                    for (int64_t q = 0; q < len; q++) ds[q] = src[q * g->SW];
                } else {
                    int64_t ix = ix0;
                    for (int64_t q = 0; q < len; q++, ix += g->SW)
                        ds[q] = ix >= 0 && ix < g->W ? row[ix] : 0.0f;
                }
            }
            for (int64_t q = cols; q < NR; q++) d[q] = 0.0f;
            if (++kx == g->KW) {
                kx = 0;
                if (++ky == g->KH) { ky = 0; c++; }
            }
        }
    }
}

void cpu_sgemm_pack_a_into(int64_t M, int64_t K, const float *a, int64_t rsa, int64_t csa, float *dst)
{
    if (K <= 0) {
        memset(dst, 0, cpu_sgemm_packed_a_floats(M, K) * sizeof(float));
        return;
    }
    int64_t MR = cpu_ukernels_get()->gemm_mr;
    sg_pack_a_block(a, rsa, csa, M, 0, sg_ceil(M, MR) * MR, 0, K, MR, dst);
}

void cpu_sgemm_pack_b_into(int64_t K, int64_t N, const float *b, int64_t rsb, int64_t csb, float *dst)
{
    if (K <= 0) {
        memset(dst, 0, cpu_sgemm_packed_b_floats(K, N) * sizeof(float));
        return;
    }
    sg_pack_b_matrix(b, rsb, csb, 0, K, 0, N, cpu_ukernels_get()->gemm_nr, dst);
}

float *cpu_sgemm_pack_a(int64_t M, int64_t K, const float *a, int64_t rsa, int64_t csa)
{
    float *d = cpu_alloc_floats(cpu_sgemm_packed_a_floats(M, K));
    if (d) cpu_sgemm_pack_a_into(M, K, a, rsa, csa, d);
    return d;
}

float *cpu_sgemm_pack_b(int64_t K, int64_t N, const float *b, int64_t rsb, int64_t csb)
{
    float *d = cpu_alloc_floats(cpu_sgemm_packed_b_floats(K, N));
    if (d) cpu_sgemm_pack_b_into(K, N, b, rsb, csb, d);
    return d;
}

/* ---- the blocked loop over one output rectangle ------------------------------------------ */

typedef struct sg_job {
    const cpu_sgemm_args *g;
    cpu_f32_gemm_ukernel_fn uk;
    sg_layout l;
    int64_t tm, tn;           /* task grid */
    int64_t m_panels, n_panels;
    int failed;               /* atomic: a task could not get scratch */
} sg_job;

/* NC for a task of `rows` rows: with one MC block the packed B block is consumed right after
 * packing, so it is kept to ~256 KB (L2) instead of the L3-sized default. */
static int64_t sg_nc(const sg_layout *l, int64_t rows, int64_t K)
{
    const int64_t NR = l->nr;
    if (rows > l->mc) return l->nc;
    int64_t kc = sg_min(l->kc, K);
    int64_t nc = ((int64_t)(256 * 1024 / sizeof(float)) / kc) / NR * NR;
    return nc < 4 * NR ? 4 * NR : (nc > l->nc ? l->nc : nc);
}

static void sg_rect(const cpu_sgemm_args *g, cpu_f32_gemm_ukernel_fn uk, const sg_layout *l,
                    int64_t m0, int64_t m1, int64_t n0, int64_t n1, float *abuf, float *bbuf)
{
    const int64_t K = g->K, MR = l->mr, NR = l->nr, KC = l->kc, MC = l->mc;
    /* a pre-packed B needs no NC blocking (its panels are read in place, each once per A
     * block either way); one block over all columns packs an unpacked A once per K block */
    const int64_t NCb = g->b_kind == CPU_B_PACKED ? n1 - n0 : sg_nc(l, m1 - m0, K);
    for (int64_t jc = n0; jc < n1; jc += NCb) {
        int64_t nc = sg_min(NCb, n1 - jc);
        for (int64_t pc = 0; pc < K; pc += KC) {
            int64_t kc = sg_min(KC, K - pc);
            const float *bp;
            int64_t bstride;
            if (g->b_kind == CPU_B_PACKED) {
                bp = g->b + (jc / NR) * K * NR + pc * NR;
                bstride = K * NR;
            } else {
                if (g->b_kind == CPU_B_IM2COL) sg_pack_b_im2col(&g->im2col, pc, kc, jc, nc, NR, bbuf);
                else sg_pack_b_matrix(g->b, g->rsb, g->csb, pc, kc, jc, nc, NR, bbuf);
                bp = bbuf;
                bstride = kc * NR;
            }
            unsigned flags = (pc > 0 ? CPU_UK_LOAD : 0u) | (pc + kc == K ? CPU_UK_FINAL : 0u);
            for (int64_t ic = m0; ic < m1; ic += MC) {
                int64_t mc = sg_min(MC, m1 - ic);
                const float *ap;
                int64_t astride;
                if (g->a_packed) {
                    ap = g->a_packed + (ic / MR) * K * MR + pc * MR;
                    astride = K * MR;
                } else {
                    sg_pack_a_block(g->a, g->rsa, g->csa, g->M, ic, sg_ceil(mc, MR) * MR, pc, kc, MR, abuf);
                    ap = abuf;
                    astride = kc * MR;
                }
                for (int64_t jr = 0; jr < nc; jr += NR) {
                    int64_t nr = sg_min(NR, nc - jr);
                    const float *bpanel = bp + (jr / NR) * bstride;
                    for (int64_t ir = 0; ir < mc; ir += MR) {
                        int64_t mr = sg_min(MR, mc - ir);
                        int64_t i = ic + ir, j = jc + jr;
                        cpu_epilogue ep = g->ep;
                        if (ep.bias) ep.bias += ep.bias_per_col ? j : i;
                        if (ep.resid) ep.resid += i * ep.ld_resid + j;
                        uk((size_t)mr, (size_t)nr, (size_t)kc, ap + (ir / MR) * astride, bpanel,
                           g->c + i * g->ldc + j, (size_t)g->ldc, flags, &ep);
                    }
                }
            }
        }
    }
}

static void sg_task(void *arg, int64_t begin, int64_t end)
{
    sg_job *job = arg;
    const cpu_sgemm_args *g = job->g;
    const sg_layout *l = &job->l;
    const int64_t MR = l->mr, NR = l->nr;
    for (int64_t t = begin; t < end; t++) {
        int64_t ti = t / job->tn, tj = t % job->tn;
        int64_t m0 = ti * job->m_panels / job->tm * MR, m1 = (ti + 1) * job->m_panels / job->tm * MR;
        int64_t n0 = tj * job->n_panels / job->tn * NR, n1 = (tj + 1) * job->n_panels / job->tn * NR;
        if (m1 > g->M) m1 = g->M;
        if (n1 > g->N) n1 = g->N;
        if (m0 >= m1 || n0 >= n1) continue;
        int64_t kc = sg_min(l->kc, g->K);
        float *abuf = NULL, *bbuf = NULL;
        if (!g->a_packed) abuf = cpu_scratch_floats(CPU_SCRATCH_GEMM_A, (size_t)(sg_ceil(sg_min(l->mc, m1 - m0), MR) * MR * kc));
        if (g->b_kind != CPU_B_PACKED)
            bbuf = cpu_scratch_floats(CPU_SCRATCH_GEMM_B,
                                      (size_t)(sg_ceil(sg_min(sg_nc(l, m1 - m0, g->K), n1 - n0), NR) * NR * kc));
        if ((!g->a_packed && !abuf) || (g->b_kind != CPU_B_PACKED && !bbuf)) {
            __atomic_store_n(&job->failed, 1, __ATOMIC_RELAXED);
        } else {
            sg_rect(g, job->uk, l, m0, m1, n0, n1, abuf, bbuf);
        }
    }
}

/* K == 0: the product is zero, only the epilogue remains. */
static void sg_k0(const cpu_sgemm_args *g)
{
    const cpu_epilogue *e = &g->ep;
    for (int64_t i = 0; i < g->M; i++)
        for (int64_t j = 0; j < g->N; j++) {
            float v = 0.0f;
            if (e->bias) v += e->bias_per_col ? e->bias[j] : e->bias[i];
            if (e->resid) v += e->resid[i * e->ld_resid + j];
            g->c[i * g->ldc + j] = cpu_act_scalar(v, e->act, e->act_a, e->act_b);
        }
}

kiln_status cpu_sgemm(const cpu_sgemm_args *g, core_threadpool *pool)
{
    if (g->M <= 0 || g->N <= 0) return KILN_OK;
    if (g->K <= 0) {
        sg_k0(g);
        return KILN_OK;
    }
    const cpu_ukernels *t = cpu_ukernels_get();
    sg_layout l = sg_layout_of(t);
    const int64_t MR = l.mr, NR = l.nr;
    sg_job job = {g, t->f32_gemm, l, 1, 1, sg_ceil(g->M, MR), sg_ceil(g->N, NR), 0};
    int64_t T = core_threadpool_size(pool);
    double work = (double)g->M * (double)g->N * (double)g->K;
    if (work < 65536.0) T = 1;
    if (T > 1) {
        /* pick the tm x tn grid (tm * tn = T) with the cheapest slowest task: its multiply-adds
         * plus the packing it repeats (packing one element costs about as much as a few dozen
         * multiply-adds at the microkernel's rate) */
        double best = -1;
        double wb = g->b_kind == CPU_B_IM2COL ? 12.0 : 4.0;
        for (int64_t tm = 1; tm <= T; tm++) {
            if (T % tm) continue;
            int64_t tn = T / tm;
            int64_t mp = sg_ceil(job.m_panels, tm), np = sg_ceil(job.n_panels, tn);
            if (mp == 0 || np == 0) continue;
            double rows = (double)sg_min(mp * MR, g->M), cols = (double)sg_min(np * NR, g->N);
            double cost = rows * cols * (double)g->K;
            if (g->b_kind != CPU_B_PACKED) cost += wb * cols * (double)g->K;
            if (!g->a_packed)
                cost += 4.0 * rows * (double)g->K *
                        (g->b_kind == CPU_B_PACKED ? 1.0 : (double)sg_ceil((int64_t)cols, l.nc));
            if (best < 0 || cost < best) {
                best = cost;
                job.tm = tm;
                job.tn = tn;
            }
        }
    }
    int64_t ntasks = job.tm * job.tn;
    if (ntasks == 1) sg_task(&job, 0, 1);
    else core_threadpool_parallel_for(pool, ntasks, 1, sg_task, &job);
    if (job.failed) return core_oom();
    return KILN_OK;
}

kiln_status cpu_sgemm_simple(int64_t M, int64_t N, int64_t K, const float *a, int64_t rsa,
                             int64_t csa, const float *b, int64_t rsb, int64_t csb, float *c,
                             int64_t ldc, const cpu_epilogue *ep, core_threadpool *pool)
{
    cpu_sgemm_args g;
    memset(&g, 0, sizeof g);
    g.M = M;
    g.N = N;
    g.K = K;
    g.a = a;
    g.rsa = rsa;
    g.csa = csa;
    g.b_kind = CPU_B_MATRIX;
    g.b = b;
    g.rsb = rsb;
    g.csb = csb;
    g.c = c;
    g.ldc = ldc;
    g.ep = ep ? *ep : cpu_epilogue_none();
    return cpu_sgemm(&g, pool);
}
