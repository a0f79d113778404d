/* pool_nhwc.c — max / average window pooling and global pooling on NHWC activations, through
 * the channel-vectorised microkernels of ukernels/f32-pool-nhwc. Window pooling is threaded
 * over (image, output row) ranges, one per pool thread (channels split too when there are
 * few rows); global pooling over (image, channel chunk) tasks. */
#include "cpu/nhwc.h"
#include "cpu/ukernels/f32-pool-nhwc/pool-nhwc.h"
#include <string.h>

#define PN_CBLK 16     /* channel ranges start at multiples of the widest vector */
#define PN_GCHUNK 64   /* channels per global-pooling task */

static void pn_pick(cpu_f32_poolnhwc_fn *win, cpu_f32_gpoolnhwc_fn *glob)
{
    *win = cpu_f32_poolnhwc__scalar;
    *glob = cpu_f32_gpoolnhwc__scalar;
#if defined(__x86_64__) || defined(__i386__)
    const char *isa = cpu_ukernels_get()->isa;
    if (!strcmp(isa, "avx512")) {
        *win = cpu_f32_poolnhwc__avx512;
        *glob = cpu_f32_gpoolnhwc__avx512;
    } else if (!strcmp(isa, "avx2_fma")) {
        *win = cpu_f32_poolnhwc__avx2_fma;
        *glob = cpu_f32_gpoolnhwc__avx2_fma;
    }
#endif
}

typedef struct pn_job {
    cpu_f32_poolnhwc_fn uk;
    const cpu_pool2d *g;
    int kind;
    bool include_pad;
    const float *x;
    float *y;
    int64_t splits, nblk;
} pn_job;

/* Tasks t = (split * N + n) * OH + oy. */
static void pn_task(void *arg, int64_t b, int64_t e)
{
    const pn_job *j = arg;
    const cpu_pool2d *g = j->g;
    while (b < e) {
        int64_t s = b / (g->N * g->OH), n = (b / g->OH) % g->N, oy = b % g->OH;
        int64_t oy1 = g->OH < oy + (e - b) ? g->OH : oy + (e - b);
        int64_t c0 = s * j->nblk / j->splits * PN_CBLK, c1 = (s + 1) * j->nblk / j->splits * PN_CBLK;
        if (c1 > g->C) c1 = g->C;
        if (c1 > c0)
            j->uk(g, j->kind, j->include_pad, j->x + n * g->H * g->W * g->C, j->y + n * g->OH * g->OW * g->C,
                  oy, oy1, c0, c1);
        b += oy1 - oy;
    }
}

kiln_status cpu_pool2d_nhwc_f32(const cpu_pool2d *g, int kind, bool count_include_pad,
                                const float *x, float *y, core_threadpool *pool)
{
    if (!g || (kind != CPU_POOL_MAX && kind != CPU_POOL_AVG)) return KILN_ERR_UNSUPPORTED;
    const int64_t big = (int64_t)1 << 31;
    if (g->N < 0 || g->C < 0 || g->H < 0 || g->W < 0 || g->OH < 0 || g->OW < 0 || g->KH < 1 || g->KW < 1 ||
        g->SH < 1 || g->SW < 1 || g->DH < 1 || g->DW < 1 || g->PT < 0 || g->PL < 0 || g->PB < 0 || g->PR < 0)
        return KILN_ERR_UNSUPPORTED;
    if (g->C >= big || g->H >= big || g->W >= big || g->OH >= big || g->OW >= big || g->KH >= big ||
        g->KW >= big || g->SH >= big || g->SW >= big || g->DH >= big || g->DW >= big || g->PT >= big ||
        g->PL >= big || g->PB >= big || g->PR >= big)
        return KILN_ERR_UNSUPPORTED;
    if (g->N == 0 || g->C == 0 || g->OH == 0 || g->OW == 0) return KILN_OK;
    cpu_f32_gpoolnhwc_fn gl;
    pn_job j;
    memset(&j, 0, sizeof j);
    pn_pick(&j.uk, &gl);
    j.g = g;
    j.kind = kind;
    j.include_pad = count_include_pad;
    j.x = x;
    j.y = y;
    j.nblk = (g->C + PN_CBLK - 1) / PN_CBLK;
    j.splits = 1;
    const int nt = core_threadpool_size(pool);
    const int64_t rows = g->N * g->OH;
    const double work = (double)rows * (double)g->OW * (double)g->C * (double)(g->KH * g->KW);
    if (nt <= 1 || work < 65536.0) {
        pn_task(&j, 0, rows);
        return KILN_OK;
    }
    if (rows < 8 * (int64_t)nt) {
        int64_t s = (8 * (int64_t)nt + rows - 1) / rows;
        j.splits = s < j.nblk ? s : j.nblk;
    }
    int64_t tasks = j.splits * rows;
    core_threadpool_parallel_for(pool, tasks, (tasks + nt - 1) / nt, pn_task, &j);
    return KILN_OK;
}

typedef struct pn_gjob {
    cpu_f32_gpoolnhwc_fn uk;
    int kind;
    int64_t HW, C, chunks;
    const float *x;
    float *y;
} pn_gjob;

/* Tasks t = n * chunks + chunk. */
static void pn_gtask(void *arg, int64_t b, int64_t e)
{
    const pn_gjob *j = arg;
    for (int64_t t = b; t < e; t++) {
        int64_t n = t / j->chunks, c0 = (t % j->chunks) * PN_GCHUNK;
        int64_t nc = j->C - c0 < PN_GCHUNK ? j->C - c0 : PN_GCHUNK;
        j->uk(j->kind, j->HW, j->C, j->x + n * j->HW * j->C + c0, j->y + n * j->C + c0, nc);
    }
}

kiln_status cpu_global_pool_nhwc_f32(int kind, int64_t N, int64_t HW, int64_t C, const float *x,
                                     float *y, core_threadpool *pool)
{
    if ((kind != CPU_POOL_MAX && kind != CPU_POOL_AVG) || N < 0 || HW < 0 || C < 0) return KILN_ERR_UNSUPPORTED;
    /* no pixels: nothing to reduce (the reference decides what that means) */
    if (HW == 0 && N > 0 && C > 0) return KILN_ERR_UNSUPPORTED;
    if (N == 0 || C == 0) return KILN_OK;
    pn_gjob j;
    cpu_f32_poolnhwc_fn win;
    pn_pick(&win, &j.uk);
    j.kind = kind;
    j.HW = HW;
    j.C = C;
    j.chunks = (C + PN_GCHUNK - 1) / PN_GCHUNK;
    j.x = x;
    j.y = y;
    const int nt = core_threadpool_size(pool);
    const int64_t tasks = N * j.chunks;
    if (nt <= 1 || tasks < 2 || (double)N * (double)HW * (double)C < 65536.0) {
        pn_gtask(&j, 0, tasks);
        return KILN_OK;
    }
    core_threadpool_parallel_for(pool, tasks, (tasks + nt - 1) / nt, pn_gtask, &j);
    return KILN_OK;
}
