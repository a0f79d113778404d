/* cpu_ops.c — the CPU backend's operator table (backend 1): float32 Conv, MatMul, Gemm and
 * the fused ai.kiln ops on the fast kernels; every other configuration goes to the reference
 * kernel through ops_run_reference. */
#include "cpu/cpu_ops_util.h"
#include "ops/ops.h"
#include "ops/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- fused activation attributes ------------------------------------------------------------ */

/* Reads `activation` / `activation_params`; false when the activation is unknown. */
bool cpu_ops_activation(const ops_ctx *c, cpu_epilogue *ep)
{
    return cpu_ops_activation_named(c, "activation", "activation_params", ep);
}

bool cpu_ops_activation_named(const ops_ctx *c, const char *name, const char *params, cpu_epilogue *ep)
{
    const char *s = ops_attr_string(c, name, "");
    int64_t np = 0;
    const float *p = ops_attr_floats(c, params, &np);
    ep->act_a = ep->act_b = 0.0f;
    if (!*s) ep->act = CPU_ACT_NONE;
    else if (!strcmp(s, "Relu")) ep->act = CPU_ACT_RELU;
    else if (!strcmp(s, "Clip")) {
        ep->act = CPU_ACT_CLIP;
        ep->act_a = np > 0 ? p[0] : -INFINITY;
        ep->act_b = np > 1 ? p[1] : INFINITY;
    } else if (!strcmp(s, "LeakyRelu")) {
        ep->act = CPU_ACT_LEAKY;
        ep->act_a = np > 0 ? p[0] : 0.01f;
    } else if (!strcmp(s, "Sigmoid")) ep->act = CPU_ACT_SIGMOID;
    else if (!strcmp(s, "Silu")) ep->act = CPU_ACT_SILU;
    else if (!strcmp(s, "HardSwish")) ep->act = CPU_ACT_HARDSWISH;
    else if (!strcmp(s, "Gelu")) ep->act = CPU_ACT_GELU;
    else if (!strcmp(s, "GeluTanh")) ep->act = CPU_ACT_GELU_TANH;
    else return false;
    return true;
}

bool cpu_ops_f32(const core_tensor *t) { return !t || t->dtype == KILN_DTYPE_FLOAT; }

/* Whether input i looks like a weight worth keeping packed in the cache: an initializer
 * (named tensor) or a value also held by the graph (a folded constant). Activations are
 * anonymous and held only by the executor's frame, so they never fill the cache. */
bool cpu_ops_cacheable(const ops_ctx *c, int i)
{
    const core_value *v = ops_input_value(c, i);
    if (!v || v->kind != CORE_VALUE_TENSOR || !v->tensor) return false;
    return v->tensor->name != NULL || __atomic_load_n(&v->refcount, __ATOMIC_RELAXED) >= 2;
}

kiln_status cpu_ops_oom(const ops_ctx *c)
{
    return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory in the CPU kernel");
}

/* ---- Conv / FusedConv ----------------------------------------------------------------------- */

/* The 2-D geometry of a 1-D or 2-D Conv node; false for anything the fast path leaves to the
 * reference kernel (which also reports the errors). */
bool cpu_ops_conv_geom(const ops_ctx *c, const core_tensor *x, const core_tensor *w,
                       cpu_conv2d *g)
{
    if (x->ndim != 3 && x->ndim != 4) return false;
    if (w->ndim != x->ndim) return false;
    int nsp = x->ndim - 2;
    int64_t ks[2], st[2], dl[2], pads[4], in[2], k[2], out[2], pb[2];
    int64_t G = ops_attr_int(c, "group", 1);
    if (G < 1 || G > INT32_MAX) return false;
    if (!ops_attr_ints_n(c, "kernel_shape", nsp, 0, 1, ks) || !ops_attr_ints_n(c, "strides", nsp, 1, 1, st) ||
        !ops_attr_ints_n(c, "dilations", nsp, 1, 1, dl) || !ops_attr_ints_n(c, "pads", 2 * nsp, 0, 0, pads))
        return false;
    bool has_ks = ops_has_attr(c, "kernel_shape");
    const char *ap = ops_attr_string(c, "auto_pad", "NOTSET");
    int mode;
    if (!*ap || !strcmp(ap, "NOTSET")) mode = 0;
    else if (!strcmp(ap, "VALID")) mode = 1;
    else if (!strcmp(ap, "SAME_UPPER")) mode = 2;
    else if (!strcmp(ap, "SAME_LOWER")) mode = 3;
    else return false;
    int64_t C = x->dims[1], M = w->dims[0];
    if (C % G || M % G || w->dims[1] != C / G || M < 1) return false;
    for (int i = 0; i < nsp; i++) {
        in[i] = x->dims[2 + i];
        k[i] = w->dims[2 + i];
        if (k[i] < 1 || (has_ks && ks[i] != k[i])) return false;
        int64_t win = (k[i] - 1) * dl[i] + 1;
        if (mode == 0) {
            pb[i] = pads[i];
            int64_t eff = in[i] + pads[i] + pads[nsp + i] - win;
            if (eff < 0) return false;
            out[i] = eff / st[i] + 1;
        } else if (mode == 1) {
            pb[i] = 0;
            if (in[i] < win) return false;
            out[i] = (in[i] - win) / st[i] + 1;
        } else {
            out[i] = (in[i] + st[i] - 1) / st[i];
            int64_t total = (out[i] - 1) * st[i] + win - in[i];
            if (total < 0) total = 0;
            pb[i] = mode == 2 ? total / 2 : total - total / 2;
        }
    }
    memset(g, 0, sizeof *g);
    g->N = x->dims[0];
    g->C = C;
    g->M = M;
    g->G = G;
    int o = nsp == 2 ? 0 : -1; /* 1-D: H = 1 */
    g->H = o ? 1 : in[0];
    g->W = in[nsp - 1];
    g->OH = o ? 1 : out[0];
    g->OW = out[nsp - 1];
    g->KH = o ? 1 : k[0];
    g->KW = k[nsp - 1];
    g->SH = o ? 1 : st[0];
    g->SW = st[nsp - 1];
    g->DH = o ? 1 : dl[0];
    g->DW = dl[nsp - 1];
    g->PT = o ? 0 : pb[0];
    g->PL = pb[nsp - 1];
    return true;
}

static kiln_status cpu_conv_common(ops_ctx *c, bool fused)
{
    const core_tensor *x = ops_input(c, 0), *w = ops_input(c, 1), *b = ops_input(c, 2);
    const core_tensor *z = fused ? ops_input(c, 3) : NULL;
    if (!x || !w || x->dtype != KILN_DTYPE_FLOAT || !cpu_ops_f32(w) || !cpu_ops_f32(b) || !cpu_ops_f32(z))
        return ops_run_reference(c);
    if (fused && ops_n_inputs(c) > 3 && ops_has_input(c, 3) && !z) return ops_run_reference(c);
    cpu_epilogue ep = cpu_epilogue_none();
    if (fused && !cpu_ops_activation(c, &ep)) return ops_run_reference(c);
    cpu_conv2d g;
    if (!cpu_ops_conv_geom(c, x, w, &g)) return ops_run_reference(c);
    if (b && b->numel != g.M) return ops_run_reference(c);
    int64_t yd[4] = {g.N, g.M, g.OH, g.OW};
    if (x->ndim == 3) yd[2] = g.OW;
    if (z) {
        if (z->ndim != x->ndim) return ops_run_reference(c);
        for (int i = 0; i < x->ndim; i++)
            if (z->dims[i] != yd[i]) return ops_run_reference(c);
    }
    core_tensor *y = ops_output_uninit(c, 0, KILN_DTYPE_FLOAT, x->ndim, yd);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    if (x->numel == 0 || w->numel == 0) return ops_run_reference(c);
    /* kiln_tactic: the algorithm `kiln build` measured fastest for this node (CPU_CONV_*);
     * absent or unknown: the heuristic picks */
    int64_t tactic = ops_attr_int(c, "kiln_tactic", CPU_CONV_AUTO);
    int algo = tactic >= CPU_CONV_AUTO && tactic <= CPU_CONV_WINO ? (int)tactic : CPU_CONV_AUTO;
    kiln_status st = cpu_conv2d_f32(&g, x->data, w->data, b ? b->data : NULL, z ? z->data : NULL,
                                    y->data, &ep, algo, cpu_ops_cacheable(c, 1), ops_threadpool(c));
    if (st) return cpu_ops_oom(c);
    return KILN_OK;
}

static kiln_status cpu_conv_run(ops_ctx *c) { return cpu_conv_common(c, false); }
static kiln_status cpu_fused_conv_run(ops_ctx *c) { return cpu_conv_common(c, true); }

/* ---- MatMul / FusedMatMul ----------------------------------------------------------------- */

typedef struct mm_pack_ctx {
    const float *b;
    int64_t K, N, rsb, csb;
} mm_pack_ctx;

static void mm_pack_build(void *arg, float *dst)
{
    const mm_pack_ctx *p = arg;
    cpu_sgemm_pack_b_into(p->K, p->N, p->b, p->rsb, p->csb, dst);
}

/* B as a packed operand from the weight cache (B 2-D constant-like weights). */
static const float *cpu_ops_packed_b(const float *b, int64_t K, int64_t N, int64_t rsb,
                                     int64_t csb, bool *owned)
{
    mm_pack_ctx pc = {b, K, N, rsb, csb};
    int64_t params[4] = {K, N, rsb, csb};
    return cpu_cache_get(b, (size_t)(K * N), 2, params, 4, cpu_sgemm_packed_b_floats(K, N),
                         mm_pack_build, &pc, owned);
}

static kiln_status cpu_matmul_common(ops_ctx *c, bool fused)
{
    const core_tensor *a = ops_input(c, 0), *b = ops_input(c, 1);
    const core_tensor *bias = fused ? ops_input(c, 2) : NULL;
    if (!a || !b || a->dtype != KILN_DTYPE_FLOAT || b->dtype != KILN_DTYPE_FLOAT || !cpu_ops_f32(bias))
        return ops_run_reference(c);
    if (a->ndim < 1 || b->ndim < 1) return ops_run_reference(c);
    cpu_epilogue ep = cpu_epilogue_none();
    if (fused && !cpu_ops_activation(c, &ep)) return ops_run_reference(c);
    int anb = a->ndim >= 2 ? a->ndim - 2 : 0, bnb = b->ndim >= 2 ? b->ndim - 2 : 0;
    int64_t M = a->ndim >= 2 ? a->dims[a->ndim - 2] : 1, K = a->dims[a->ndim - 1];
    int64_t kb = b->ndim >= 2 ? b->dims[b->ndim - 2] : b->dims[0];
    int64_t N = b->ndim >= 2 ? b->dims[b->ndim - 1] : 1;
    if (kb != K) return ops_run_reference(c);
    if (bias && bias->numel != N) return ops_run_reference(c);
    int nb = 0;
    int64_t bd[KILN_MAX_DIMS], astr[KILN_MAX_DIMS], bstr[KILN_MAX_DIMS];
    if (!ops_broadcast_shape(anb, a->dims, bnb, b->dims, &nb, bd)) return ops_run_reference(c);
    int out_ndim = nb + (a->ndim >= 2) + (b->ndim >= 2);
    if (out_ndim > KILN_MAX_DIMS) return ops_run_reference(c);
    ops_broadcast_strides(anb, a->dims, nb, bd, astr);
    ops_broadcast_strides(bnb, b->dims, nb, bd, bstr);
    int64_t od[KILN_MAX_DIMS];
    int on = 0;
    for (int i = 0; i < nb; i++) od[on++] = bd[i];
    if (a->ndim >= 2) od[on++] = M;
    if (b->ndim >= 2) od[on++] = N;
    core_tensor *y = ops_output_uninit(c, 0, KILN_DTYPE_FLOAT, on, od);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    int64_t nbatch = core_shape_numel(nb, bd);
    int64_t bcount = core_shape_numel(bnb, b->dims), acount = core_shape_numel(anb, a->dims);
    ep.bias = bias ? bias->data : NULL;
    ep.bias_per_col = 1;
    core_threadpool *pool = ops_threadpool(c);
    const float *A = a->data, *B = b->data;
    float *Y = y->data;
    kiln_status st = KILN_OK;
    if (bcount == 1) {
        /* one B for every batch: fold the batch into M when A is not broadcast, and keep B
         * packed (it is usually a weight) */
        bool owned = false;
        const float *bp = cpu_ops_cacheable(c, 1) ? cpu_ops_packed_b(B, K, N, N, 1, &owned)
                                                  : (owned = true, cpu_sgemm_pack_b(K, N, B, N, 1));
        if (!bp) return cpu_ops_oom(c);
        cpu_sgemm_args g;
        memset(&g, 0, sizeof g);
        g.N = N;
        g.K = K;
        g.rsa = K;
        g.csa = 1;
        g.b_kind = CPU_B_PACKED;
        g.b = bp;
        g.ldc = N;
        g.ep = ep;
        if (acount == nbatch) {
            g.M = nbatch * M;
            g.a = A;
            g.c = Y;
            st = cpu_sgemm(&g, pool);
        } else {
            for (int64_t bi = 0; bi < nbatch && !st; bi++) {
                int64_t rem = bi, ao = 0;
                for (int d = nb - 1; d >= 0; d--) {
                    ao += (rem % bd[d]) * astr[d];
                    rem /= bd[d];
                }
                g.M = M;
                g.a = A + ao * M * K;
                g.c = Y + bi * M * N;
                st = cpu_sgemm(&g, pool);
            }
        }
        if (owned) free((void *)bp);
    } else {
        for (int64_t bi = 0; bi < nbatch && !st; bi++) {
            int64_t rem = bi, ao = 0, bo = 0;
            for (int d = nb - 1; d >= 0; d--) {
                int64_t idx = rem % bd[d];
                rem /= bd[d];
                ao += idx * astr[d];
                bo += idx * bstr[d];
            }
            st = cpu_sgemm_simple(M, N, K, A + ao * M * K, K, 1, B + bo * K * N, N, 1,
                                  Y + bi * M * N, N, &ep, pool);
        }
    }
    if (st) return cpu_ops_oom(c);
    return KILN_OK;
}

static kiln_status cpu_matmul_run(ops_ctx *c) { return cpu_matmul_common(c, false); }
static kiln_status cpu_fused_matmul_run(ops_ctx *c) { return cpu_matmul_common(c, true); }

/* ---- Gemm / FusedGemm ---------------------------------------------------------------------- */

static kiln_status cpu_gemm_common(ops_ctx *c, bool fused)
{
    const core_tensor *a = ops_input(c, 0), *b = ops_input(c, 1), *cc = ops_input(c, 2);
    if (!a || !b || a->dtype != KILN_DTYPE_FLOAT || b->dtype != KILN_DTYPE_FLOAT || !cpu_ops_f32(cc))
        return ops_run_reference(c);
    if (a->ndim != 2 || b->ndim != 2 || (cc && cc->ndim > 2)) return ops_run_reference(c);
    cpu_epilogue ep = cpu_epilogue_none();
    if (fused && !cpu_ops_activation(c, &ep)) return ops_run_reference(c);
    bool ta = ops_attr_int(c, "transA", 0) != 0, tb = ops_attr_int(c, "transB", 0) != 0;
    float alpha = ops_attr_float(c, "alpha", 1.0f), beta = ops_attr_float(c, "beta", 1.0f);
    int64_t M = ta ? a->dims[1] : a->dims[0], K = ta ? a->dims[0] : a->dims[1];
    int64_t kb = tb ? b->dims[1] : b->dims[0], N = tb ? b->dims[0] : b->dims[1];
    if (K != kb) return ops_run_reference(c);
    int64_t yd[2] = {M, N}, cstr[2] = {0, 0};
    if (cc) {
        for (int i = 0; i < cc->ndim; i++) {
            int64_t d = cc->dims[i], want = yd[2 - cc->ndim + i];
            if (d != want && d != 1) return ops_run_reference(c);
        }
        ops_broadcast_strides(cc->ndim, cc->dims, 2, yd, cstr);
    }
    core_tensor *y = ops_output_uninit(c, 0, KILN_DTYPE_FLOAT, 2, yd);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    float *tmp = NULL;
    ep.alpha = alpha;
    if (cc && beta != 0.0f && cc->numel > 0) {
        const float *cd = cc->data;
        bool full = cstr[0] == N && cstr[1] == 1;
        if (cstr[0] == 0 && cstr[1] == 1 && beta == 1.0f) {
            ep.bias = cd;
            ep.bias_per_col = 1;
        } else if (cstr[0] == 1 && cstr[1] == 0 && beta == 1.0f) {
            ep.bias = cd;
            ep.bias_per_col = 0;
        } else if (full && beta == 1.0f) {
            ep.resid = cd;
            ep.ld_resid = N;
        } else if (cstr[0] == 0) {
            /* scalar or row vector: a per-column bias */
            if (!(tmp = cpu_alloc_floats((size_t)N))) return cpu_ops_oom(c);
            for (int64_t j = 0; j < N; j++) tmp[j] = beta * cd[j * cstr[1]];
            ep.bias = tmp;
            ep.bias_per_col = 1;
        } else if (cstr[1] == 0) {
            if (!(tmp = cpu_alloc_floats((size_t)M))) return cpu_ops_oom(c);
            for (int64_t i = 0; i < M; i++) tmp[i] = beta * cd[i * cstr[0]];
            ep.bias = tmp;
            ep.bias_per_col = 0;
        } else {
            if (!(tmp = cpu_alloc_floats((size_t)(M * N)))) return cpu_ops_oom(c);
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) tmp[i * N + j] = beta * cd[i * cstr[0] + j * cstr[1]];
            ep.resid = tmp;
            ep.ld_resid = N;
        }
    }
    int64_t rsb = tb ? 1 : N, csb = tb ? K : 1;
    bool owned = false;
    const float *bp = cpu_ops_cacheable(c, 1) ? cpu_ops_packed_b(b->data, K, N, rsb, csb, &owned)
                                              : (owned = true, cpu_sgemm_pack_b(K, N, b->data, rsb, csb));
    kiln_status st;
    if (!bp) st = core_oom();
    else {
        cpu_sgemm_args g;
        memset(&g, 0, sizeof g);
        g.M = M;
        g.N = N;
        g.K = K;
        g.a = a->data;
        g.rsa = ta ? 1 : K;
        g.csa = ta ? M : 1;
        g.b_kind = CPU_B_PACKED;
        g.b = bp;
        g.c = y->data;
        g.ldc = N;
        g.ep = ep;
        st = cpu_sgemm(&g, ops_threadpool(c));
    }
    if (owned) free((void *)bp);
    free(tmp);
    if (st) return cpu_ops_oom(c);
    return KILN_OK;
}

static kiln_status cpu_gemm_run(ops_ctx *c) { return cpu_gemm_common(c, false); }
static kiln_status cpu_fused_gemm_run(ops_ctx *c) { return cpu_gemm_common(c, true); }

const ops_schema ops_table_cpu[] = {
    {"Conv", "", 1, cpu_conv_run, 1},
    {"MatMul", "", 1, cpu_matmul_run, 1},
    {"Gemm", "", 1, cpu_gemm_run, 1},
    {"FusedConv", "ai.kiln", 1, cpu_fused_conv_run, 1},
    {"FusedMatMul", "ai.kiln", 1, cpu_fused_matmul_run, 1},
    {"FusedGemm", "ai.kiln", 1, cpu_fused_gemm_run, 1},
    OPS_TABLE_END,
};
