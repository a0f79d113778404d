/* cpu_ops_nhwc.c — the CPU backend's wrappers (backend 1) of the channels-last ai.kiln ops
 * the layout pass creates (ops/fused.h): ConvNhwc, MaxPoolNhwc, AveragePoolNhwc,
 * GlobalMaxPoolNhwc, GlobalAveragePoolNhwc, on the kernels of cpu/nhwc.h. Anything the
 * kernels do not cover goes to the reference kernel. */
#include "cpu/cpu_ops_util.h"
#include "cpu/nhwc.h"
#include "ops/fused.h"
#include "ops/util.h"
#include <string.h>

/* A channels-first view of a channels-last tensor's dims (data untouched): for geometry. */
static core_tensor nhwc_cf_view(const core_tensor *t)
{
    core_tensor v = *t;
    v.dims[1] = t->dims[t->ndim - 1];
    for (int i = 1; i < t->ndim - 1; i++) v.dims[i + 1] = t->dims[i];
    return v;
}

static kiln_status nhwc_conv_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0), *w = ops_input(c, 1), *b = ops_input(c, 2), *z = ops_input(c, 3);
    if (!x || !w || x->dtype != KILN_DTYPE_FLOAT || !cpu_ops_f32(w) || !cpu_ops_f32(b) || !cpu_ops_f32(z))
        return ops_run_reference(c);
    if (x->ndim != 4 || (ops_n_inputs(c) > 3 && ops_has_input(c, 3) && !z)) return ops_run_reference(c);
    cpu_epilogue ep = cpu_epilogue_none();
    if (!cpu_ops_activation(c, &ep)) return ops_run_reference(c);
    core_tensor xv = nhwc_cf_view(x);
    int64_t xs = x->dims[3], xoff = 0;
    if (ops_has_attr(c, "x_channel_offset")) { /* a channel slice of a wider X */
        xoff = ops_attr_int(c, "x_channel_offset", 0);
        int64_t Cw = w->ndim == 4 ? w->dims[1] * ops_attr_int(c, "group", 1) : -1;
        if (xoff < 0 || Cw < 0 || xoff > xs || Cw > xs - xoff) return ops_run_reference(c);
        xv.dims[1] = Cw;
    }
    cpu_conv2d g;
    if (!cpu_ops_conv_geom(c, &xv, w, &g)) return ops_run_reference(c);
    if (b && b->numel != g.M) return ops_run_reference(c);
    int64_t yd[4] = {g.N, g.OH, g.OW, g.M};
    if (z)
        for (int i = 0; i < 4; i++)
            if (z->dims[i] != yd[i]) return ops_run_reference(c);
    core_tensor *y = ops_output_uninit(c, 0, KILN_DTYPE_FLOAT, 4, yd);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    if (x->numel == 0 || w->numel == 0) return ops_run_reference(c);
    int64_t tactic = ops_attr_int(c, "kiln_tactic", CPU_CONV_AUTO);
    int algo = tactic >= CPU_CONV_AUTO && tactic <= CPU_CONV_WINO ? (int)tactic : CPU_CONV_AUTO;
    kiln_status st = cpu_conv2d_nhwc_f32(&g, (const float *)x->data + xoff, xs, w->data, b ? b->data : NULL, z ? z->data : NULL,
                                         g.M, y->data, g.M, &ep, algo, cpu_ops_cacheable(c, 1), ops_threadpool(c));
    if (st == KILN_ERR_UNSUPPORTED) return ops_run_reference(c);
    if (st) return cpu_ops_oom(c);
    return KILN_OK;
}

/* ConvNhwcExpandDw / ConvNhwcMbConv: inputs X, W, B?, Z?, W1?, B1?, W3?, B3? (ops/fused.h). */
typedef struct nhwc_block {
    const core_tensor *x, *w1, *b1, *w2, *b2, *w3, *b3, *z;
    cpu_conv2d g1, g2, g3;
    cpu_epilogue ep1, ep2, ep3;
    int64_t yd[4];
} nhwc_block;

/* The geometry of a block node; false for anything left to the reference kernel. */
static bool nhwc_block_geom(ops_ctx *c, bool project, nhwc_block *k)
{
    k->x = ops_input(c, 0), k->w2 = ops_input(c, 1), k->b2 = ops_input(c, 2), k->z = ops_input(c, 3);
    k->w1 = ops_input(c, 4), k->b1 = ops_input(c, 5), k->w3 = ops_input(c, 6), k->b3 = ops_input(c, 7);
    const core_tensor *x = k->x, *w1 = k->w1, *w3 = k->w3;
    if (!x || !k->w2 || (project ? !w3 : (!w1 || k->z)) || x->dtype != KILN_DTYPE_FLOAT || !cpu_ops_f32(w1) ||
        !cpu_ops_f32(k->b1) || !cpu_ops_f32(k->w2) || !cpu_ops_f32(k->b2) || !cpu_ops_f32(w3) || !cpu_ops_f32(k->b3) ||
        !cpu_ops_f32(k->z) || x->ndim != 4 || (w1 && w1->ndim != 4) || (w3 && w3->ndim != 4))
        return false;
    k->ep1 = k->ep2 = k->ep3 = cpu_epilogue_none();
    if (!cpu_ops_activation_named(c, "expand_activation", "expand_activation_params", &k->ep1) ||
        !cpu_ops_activation(c, &k->ep2) ||
        !cpu_ops_activation_named(c, "project_activation", "project_activation_params", &k->ep3))
        return false;
    int64_t C = x->dims[3], E = w1 ? w1->dims[0] : C;
    if (w1 && (w1->dims[1] != C || w1->dims[2] != 1 || w1->dims[3] != 1 || (k->b1 && k->b1->numel != E))) return false;
    k->g1 = (cpu_conv2d){x->dims[0], C, x->dims[1], x->dims[2], E, x->dims[1], x->dims[2], 1, 1, 1, 1, 1, 1, 1, 0, 0};
    /* the depthwise geometry on T = [N, H, W, E], seen channels-first */
    core_tensor tv = *x;
    tv.dims[3] = E;
    core_tensor tcf = nhwc_cf_view(&tv);
    cpu_conv2d *g2 = &k->g2;
    if (!cpu_ops_conv_geom(c, &tcf, k->w2, g2) || (k->b2 && k->b2->numel != g2->M)) return false;
    int64_t P = w3 ? w3->dims[0] : g2->M;
    if (w3 && (w3->dims[1] != g2->M || w3->dims[2] != 1 || w3->dims[3] != 1 || (k->b3 && k->b3->numel != P))) return false;
    k->g3 = (cpu_conv2d){g2->N, g2->M, g2->OH, g2->OW, P, g2->OH, g2->OW, 1, 1, 1, 1, 1, 1, 1, 0, 0};
    int64_t yd[4] = {g2->N, g2->OH, g2->OW, P};
    memcpy(k->yd, yd, sizeof yd);
    if (k->z)
        for (int i = 0; i < 4; i++)
            if (k->z->ndim != 4 || k->z->dims[i] != yd[i]) return false;
    return true;
}

/* Both block ops: the fused kernel, or the reference for anything it does not take. */
static kiln_status nhwc_block_run(ops_ctx *c, bool project)
{
    nhwc_block k;
    if (!nhwc_block_geom(c, project, &k)) return ops_run_reference(c);
    core_tensor *y = ops_output_uninit(c, 0, KILN_DTYPE_FLOAT, 4, k.yd);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    if (k.x->numel == 0 || k.w2->numel == 0 || (k.w1 && k.w1->numel == 0) || (k.w3 && k.w3->numel == 0))
        return ops_run_reference(c);
    bool cache = cpu_ops_cacheable(c, 1) && (!k.w1 || cpu_ops_cacheable(c, 4)) && (!k.w3 || cpu_ops_cacheable(c, 6));
    const float *b1 = k.b1 ? k.b1->data : NULL, *b2 = k.b2 ? k.b2->data : NULL, *b3 = k.b3 ? k.b3->data : NULL;
    int64_t C = k.x->dims[3];
    kiln_status st =
        project ? cpu_mbconv_nhwc_f32(k.w1 ? &k.g1 : NULL, k.x->data, C, k.w1 ? k.w1->data : NULL, b1, &k.ep1, &k.g2,
                                      k.w2->data, b2, &k.ep2, &k.g3, k.w3->data, b3, &k.ep3, k.z ? k.z->data : NULL,
                                      k.g3.M, y->data, k.g3.M, cache, ops_threadpool(c))
                : cpu_expand_dw_nhwc_f32(&k.g1, k.x->data, C, k.w1->data, b1, &k.ep1, &k.g2, k.w2->data, b2, &k.ep2,
                                         y->data, k.g2.M, cache, ops_threadpool(c));
    if (st == KILN_ERR_UNSUPPORTED) return ops_run_reference(c);
    if (st) return cpu_ops_oom(c);
    return KILN_OK;
}

static kiln_status nhwc_expand_dw_run(ops_ctx *c) { return nhwc_block_run(c, false); }
static kiln_status nhwc_mbconv_run(ops_ctx *c) { return nhwc_block_run(c, true); }

/* ChannelUpdate (ops/fused.h): in place on X's buffer when X dies here (the CSP rewrite of
 * the layout pass arranges that), else on a copy. */
typedef struct nhwc_cu_job {
    float *y;
    const float *p;
    int64_t cx, cp, off;
    bool add;
} nhwc_cu_job;

static void nhwc_cu_task(void *arg, int64_t b, int64_t e)
{
    const nhwc_cu_job *j = arg;
    for (int64_t q = b; q < e; q++) {
        float *d = j->y + q * j->cx + j->off;
        const float *s = j->p + q * j->cp;
        if (j->add)
            for (int64_t k = 0; k < j->cp; k++) d[k] += s[k];
        else memcpy(d, s, sizeof(float) * (size_t)j->cp);
    }
}

static kiln_status nhwc_channel_update_run(ops_ctx *c)
{
    core_tensor *x = ops_input(c, 0);
    int n = ops_n_inputs(c) - 1;
    if (!x || n < 1 || n > FUSED_CU_MAX || x->dtype != KILN_DTYPE_FLOAT || x->ndim < 1 || x->quant || x->mapped ||
        x->device != CORE_DEVICE_CPU)
        return ops_run_reference(c);
    const char *mode = ops_attr_string(c, "mode", "set");
    bool add = !strcmp(mode, "add");
    int64_t offs[FUSED_CU_MAX];
    if ((!add && strcmp(mode, "set")) || !fused_channel_update_offsets(c, x, offs, n)) {
        core_error_clear();
        return ops_run_reference(c); /* which reports the error */
    }
    for (int k = 0; k < n; k++)
        if (ops_input(c, 1 + k)->data == x->data) return ops_run_reference(c);
    float *yd;
    core_tensor *t; /* in place when X dies here, as a zero-copy Reshape */
    kiln_status dst = ops_output_donated(c, 0, 0, x->ndim, x->dims, &t);
    if (dst) return dst == KILN_ERR_OUT_OF_MEMORY ? cpu_ops_oom(c) : dst;
    if (t) {
        yd = t->data;
    } else {
        core_tensor *y = ops_output_uninit(c, 0, KILN_DTYPE_FLOAT, x->ndim, x->dims);
        if (!y) return KILN_ERR_OUT_OF_MEMORY;
        if (y->numel) memcpy(y->data, x->data, sizeof(float) * (size_t)x->numel);
        yd = y->data;
    }
    int64_t Cx = x->dims[x->ndim - 1], P = Cx ? x->numel / Cx : 0;
    for (int k = 0; k < n; k++) {
        const core_tensor *p = ops_input(c, 1 + k);
        int64_t Cp = p->dims[p->ndim - 1];
        nhwc_cu_job j = {yd, p->data, Cx, Cp, offs[k], add};
        if (P * Cp < 65536) nhwc_cu_task(&j, 0, P);
        else core_threadpool_parallel_for(ops_threadpool(c), P, 0, nhwc_cu_task, &j);
    }
    return KILN_OK;
}

/* 2-D pooling geometry of a channels-last X as the reference kernel computes it; false for
 * anything it does not cover (Indices output, storage_order). */
static bool nhwc_pool_geom(const ops_ctx *c, const core_tensor *x, cpu_pool2d *g)
{
    if (x->ndim != 4 || ops_has_output(c, 1)) return false;
    if (ops_attr_int(c, "storage_order", 0) != 0) return false;
    core_tensor xv = nhwc_cf_view(x);
    return cpu_pool2d_geom(c, &xv, g);
}

static kiln_status nhwc_pool(ops_ctx *c, int kind)
{
    const core_tensor *x = ops_input(c, 0);
    cpu_pool2d g;
    if (!x || x->dtype != KILN_DTYPE_FLOAT || !nhwc_pool_geom(c, x, &g)) return ops_run_reference(c);
    int64_t yd[4] = {g.N, g.OH, g.OW, g.C};
    core_tensor *y = ops_output_uninit(c, 0, KILN_DTYPE_FLOAT, 4, yd);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    bool cip = ops_attr_int(c, "count_include_pad", 0) != 0;
    kiln_status st = cpu_pool2d_nhwc_f32(&g, kind, cip, x->data, y->data, ops_threadpool(c));
    if (st == KILN_ERR_UNSUPPORTED) return ops_run_reference(c);
    if (st) return cpu_ops_oom(c);
    return KILN_OK;
}

static kiln_status nhwc_global_pool(ops_ctx *c, int kind)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x || x->dtype != KILN_DTYPE_FLOAT || x->ndim != 4) return ops_run_reference(c);
    int64_t yd[4] = {x->dims[0], 1, 1, x->dims[3]};
    core_tensor *y = ops_output_uninit(c, 0, KILN_DTYPE_FLOAT, 4, yd);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    if (x->numel == 0) return ops_run_reference(c);
    kiln_status st = cpu_global_pool_nhwc_f32(kind, x->dims[0], x->dims[1] * x->dims[2], x->dims[3], x->data,
                                              y->data, ops_threadpool(c));
    if (st == KILN_ERR_UNSUPPORTED) return ops_run_reference(c);
    if (st) return cpu_ops_oom(c);
    return KILN_OK;
}

static kiln_status nhwc_maxpool_run(ops_ctx *c) { return nhwc_pool(c, CPU_POOL_MAX); }
static kiln_status nhwc_avgpool_run(ops_ctx *c) { return nhwc_pool(c, CPU_POOL_AVG); }
static kiln_status nhwc_gmaxpool_run(ops_ctx *c) { return nhwc_global_pool(c, CPU_POOL_MAX); }
static kiln_status nhwc_gavgpool_run(ops_ctx *c) { return nhwc_global_pool(c, CPU_POOL_AVG); }

const ops_schema ops_table_cpu_nhwc[] = {
    {"ConvNhwc", "ai.kiln", 1, nhwc_conv_run, 1},
    {"ConvNhwcExpandDw", "ai.kiln", 1, nhwc_expand_dw_run, 1},
    {"ConvNhwcMbConv", "ai.kiln", 1, nhwc_mbconv_run, 1},
    {"ChannelUpdate", "ai.kiln", 1, nhwc_channel_update_run, 1},
    {"MaxPoolNhwc", "ai.kiln", 1, nhwc_maxpool_run, 1},
    {"AveragePoolNhwc", "ai.kiln", 1, nhwc_avgpool_run, 1},
    {"GlobalMaxPoolNhwc", "ai.kiln", 1, nhwc_gmaxpool_run, 1},
    {"GlobalAveragePoolNhwc", "ai.kiln", 1, nhwc_gavgpool_run, 1},
    OPS_TABLE_END
};
