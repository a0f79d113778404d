/* pool.c — fast float32 MaxPool/AveragePool (1-D and 2-D, any kernel, stride, dilation, pads,
 * ceil_mode, count_include_pad) as separable passes: the window's input rows are combined into
 * a padded row buffer, then windows are reduced along it; plus GlobalAverage/MaxPool. Threaded
 * over output rows. Indices outputs, other ranks and dtypes go to the reference. */
#include "cpu/cpu_misc.h"
#include "cpu/cpu_ops_util.h"
#include "ops/util.h"
#include <math.h>
#include <string.h>

/* The 2-D pooling geometry (cpu/nhwc.h), shared with the channels-last kernels. */
typedef cpu_pool2d pl_geom;

/* Valid taps of output position o along one dim: [lo, lo + n). */
static void pl_taps(int64_t o, int64_t s, int64_t p, int64_t d, int64_t k, int64_t in, int64_t *lo,
                    int64_t *n)
{
    int64_t st = o * s - p;
    int64_t l = st >= 0 ? 0 : (-st + d - 1) / d;
    int64_t h = in - st <= 0 ? 0 : (in - st + d - 1) / d;
    if (h > k) h = k;
    *lo = l;
    *n = h > l ? h - l : 0;
}

/* The geometry as the reference derives it (same output sizes, pads and ceil_mode rule);
 * false for anything the fast path leaves to the reference, including windows that see no
 * input element. Declared in cpu/cpu_ops_util.h. */
bool cpu_pool2d_geom(const ops_ctx *c, const core_tensor *x, cpu_pool2d *g)
{
    if (x->ndim != 3 && x->ndim != 4) return false;
    int nsp = x->ndim - 2;
    int64_t k[2], s[2], d[2], pads[4], in[2], out[2], pb[2], pe[2];
    if (!ops_has_attr(c, "kernel_shape")) return false;
    if (!ops_attr_ints_n(c, "kernel_shape", nsp, 1, 1, k) || !ops_attr_ints_n(c, "strides", nsp, 1, 1, s) ||
        !ops_attr_ints_n(c, "dilations", nsp, 1, 1, d) || !ops_attr_ints_n(c, "pads", 2 * nsp, 0, 0, pads))
        return false;
    bool ceil_mode = ops_attr_int(c, "ceil_mode", 0) != 0;
    const char *ap = ops_attr_string(c, "auto_pad", "NOTSET");
    bool same_u = !strcmp(ap, "SAME_UPPER"), same_l = !strcmp(ap, "SAME_LOWER"), valid = !strcmp(ap, "VALID");
    if (!same_u && !same_l && !valid && strcmp(ap, "NOTSET") && *ap) return false;
    for (int i = 0; i < nsp; i++) {
        in[i] = x->dims[2 + i];
        int64_t win = (k[i] - 1) * d[i] + 1;
        if (same_u || same_l) {
            out[i] = (in[i] + s[i] - 1) / s[i];
            int64_t total = (out[i] - 1) * s[i] + win - in[i];
            if (total < 0) total = 0;
            pb[i] = same_u ? total / 2 : total - total / 2;
            pe[i] = total - pb[i];
        } else {
            pb[i] = valid ? 0 : pads[i];
            pe[i] = valid ? 0 : pads[nsp + i];
            int64_t eff = in[i] + pb[i] + pe[i] - win;
            if (eff < 0) return false;
            out[i] = (ceil_mode ? eff + s[i] - 1 : eff) / s[i] + 1;
            if (ceil_mode && (out[i] - 1) * s[i] >= in[i] + pb[i]) out[i]--;
        }
        if (in[i] < 1 || out[i] < 1 || in[i] > INT32_MAX || out[i] > INT32_MAX) return false;
        for (int64_t o = 0; o < out[i]; o++) {
            int64_t lo, n;
            pl_taps(o, s[i], pb[i], d[i], k[i], in[i], &lo, &n);
            if (n == 0) return false;
        }
    }
    g->N = x->dims[0];
    g->C = x->dims[1];
    int o = nsp == 2 ? 0 : -1;
    g->H = o ? 1 : in[0];
    g->W = in[nsp - 1];
    g->OH = o ? 1 : out[0];
    g->OW = out[nsp - 1];
    g->KH = o ? 1 : k[0];
    g->KW = k[nsp - 1];
    g->SH = o ? 1 : s[0];
    g->SW = s[nsp - 1];
    g->DH = o ? 1 : d[0];
    g->DW = d[nsp - 1];
    g->PT = o ? 0 : pb[0];
    g->PB = o ? 0 : pe[0];
    g->PL = pb[nsp - 1];
    g->PR = pe[nsp - 1];
    return true;
}

typedef struct pl_job {
    const cpu_misc_ukernels *uk;
    const pl_geom *g;
    int kind;
    bool include_pad;
    const float *x;
    float *y;
    float *scratch;     /* per tile: bufw floats of row buffer + OW floats of divisors */
    int64_t bufw, slot, tile;
} pl_job;

/* Padded-tap count along one dim as the reference counts it for count_include_pad: taps
 * before the end of the trailing pad. */
static int64_t pl_pad_count(int64_t o, int64_t s, int64_t pb, int64_t pe, int64_t d, int64_t k, int64_t in)
{
    int64_t st = o * s - pb, lim = in + pe - st;
    int64_t np = lim <= 0 ? 0 : (lim + d - 1) / d;
    return np > k ? k : np;
}

static void pl_tile(void *arg, int64_t b, int64_t e)
{
    const pl_job *j = arg;
    const pl_geom *g = j->g;
    const cpu_misc_ukernels *uk = j->uk;
    float *buf = j->scratch + (b / j->tile) * j->slot;
    float *div = buf + j->bufw;
    bool mx = j->kind == CPU_POOL_MAX;
    /* the row buffer: PL pad, W inputs, then pad up to the last tap (+16 slack floats) */
    float padv = mx ? -INFINITY : 0.0f;
    for (int64_t i = 0; i < g->PL; i++) buf[i] = padv;
    for (int64_t i = g->PL + g->W; i < j->bufw; i++) buf[i] = padv;
    float *row = buf + g->PL;
    if (!mx) {
        for (int64_t ox = 0; ox < g->OW; ox++) {
            int64_t lo, n;
            pl_taps(ox, g->SW, g->PL, g->DW, g->KW, g->W, &lo, &n);
            div[ox] = (float)(j->include_pad ? pl_pad_count(ox, g->SW, g->PL, g->PR, g->DW, g->KW, g->W) : n);
        }
    }
    for (int64_t r = b; r < e; r++) {
        int64_t plane = r / g->OH, oy = r % g->OH;
        const float *xp = j->x + plane * g->H * g->W;
        float *yp = j->y + plane * g->OH * g->OW + oy * g->OW;
        int64_t lo, n;
        pl_taps(oy, g->SH, g->PT, g->DH, g->KH, g->H, &lo, &n);
        int64_t iy0 = oy * g->SH - g->PT + lo * g->DH;
        memcpy(row, xp + iy0 * g->W, (size_t)g->W * sizeof(float));
        for (int64_t t = 1; t < n; t++) uk->f32_vaccum(j->kind, row, xp + (iy0 + t * g->DH) * g->W, (size_t)g->W);
        if (g->KW == 1 && g->SW == 1 && g->PL == 0) memcpy(yp, buf, (size_t)g->OW * sizeof(float));
        else uk->f32_hwindow(j->kind, buf, yp, (size_t)g->OW, (size_t)g->KW, (size_t)g->SW, (size_t)g->DW);
        if (!mx) {
            float cy = (float)(j->include_pad ? pl_pad_count(oy, g->SH, g->PT, g->PB, g->DH, g->KH, g->H) : n);
            for (int64_t ox = 0; ox < g->OW; ox++) yp[ox] = yp[ox] / (cy * div[ox]);
        }
    }
}

static kiln_status pl_run(ops_ctx *c, int kind)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x || x->dtype != KILN_DTYPE_FLOAT) return ops_run_reference(c);
    if (kind == CPU_POOL_MAX && ops_has_output(c, 1)) return ops_run_reference(c);
    pl_geom g;
    if (!cpu_pool2d_geom(c, x, &g)) return ops_run_reference(c);
    int64_t yd[4] = {g.N, g.C, g.OH, g.OW};
    if (x->ndim == 3) yd[2] = g.OW;
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_FLOAT, x->ndim, yd);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    pl_job j;
    memset(&j, 0, sizeof j);
    j.uk = cpu_misc_ukernels_get();
    j.g = &g;
    j.kind = kind;
    j.include_pad = ops_attr_int(c, "count_include_pad", 0) != 0;
    j.x = x->data;
    j.y = y->data;
    int64_t last = (g.OW - 1) * g.SW + (g.KW - 1) * g.DW + 1; /* taps span of the buffer */
    j.bufw = (last > g.PL + g.W ? last : g.PL + g.W) + 16;
    j.slot = (j.bufw + g.OW + 15) & ~(int64_t)15;
    int64_t rows = g.N * g.C * g.OH, n_tiles = 0;
    /* a tile of rows should carry a few thousand outputs */
    int64_t min_rows = 4096 / g.OW + 1;
    j.tile = cpu_misc_tile(ops_threadpool(c), rows, min_rows, &n_tiles);
    j.scratch = ops_scratch(c, (size_t)(n_tiles * j.slot) * sizeof(float));
    if (!j.scratch) return KILN_ERR_OUT_OF_MEMORY;
    core_threadpool_parallel_for(j.tile >= rows ? NULL : ops_threadpool(c), rows, j.tile, pl_tile, &j);
    return KILN_OK;
}

kiln_status cpu_maxpool_run(ops_ctx *c) { return pl_run(c, CPU_POOL_MAX); }
kiln_status cpu_avgpool_run(ops_ctx *c) { return pl_run(c, CPU_POOL_AVG); }

/* ---- global pooling ------------------------------------------------------------------------ */

typedef struct pl_global_job {
    const cpu_misc_ukernels *uk;
    bool mx;
    int64_t sp;
    const float *x;
    float *y;
} pl_global_job;

static void pl_global_tile(void *arg, int64_t b, int64_t e)
{
    const pl_global_job *j = arg;
    for (int64_t p = b; p < e; p++) {
        const float *xp = j->x + p * j->sp;
        if (j->mx) j->y[p] = j->uk->f32_max(xp, (size_t)j->sp);
        else j->y[p] = (float)(j->uk->f32_sum(xp, (size_t)j->sp) / (double)j->sp);
    }
}

static kiln_status pl_global(ops_ctx *c, bool mx)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x || x->dtype != KILN_DTYPE_FLOAT || x->ndim < 3) return ops_run_reference(c);
    int64_t yd[KILN_MAX_DIMS], sp = 1;
    for (int i = 0; i < x->ndim; i++) {
        yd[i] = i < 2 ? x->dims[i] : 1;
        if (i >= 2) sp *= x->dims[i];
    }
    if (sp == 0) return ops_run_reference(c);
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_FLOAT, x->ndim, yd);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    pl_global_job j = {cpu_misc_ukernels_get(), mx, sp, x->data, y->data};
    cpu_misc_parallel(ops_threadpool(c), y->numel, 16384 / sp + 1, pl_global_tile, &j);
    return KILN_OK;
}

kiln_status cpu_global_avgpool_run(ops_ctx *c) { return pl_global(c, false); }
kiln_status cpu_global_maxpool_run(ops_ctx *c) { return pl_global(c, true); }
