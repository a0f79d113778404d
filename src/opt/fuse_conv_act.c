/* fuse_conv_act.c — Conv (+ residual Add) + activation -> ai.kiln FusedConv; Gemm +
 * activation -> FusedGemm; MatMul + 1-D constant bias Add + activation -> FusedMatMul
 * (contract in ops/fused.h). Float32 only. The residual is taken only when its shape equals
 * the Conv output's exactly (statically known), so the Add did no broadcasting. */
#include "opt/rewrite.h"
#include <stdlib.h>
#include <string.h>

static bool fca_is_f32(const ir_graph *g, int v) { return opt_value_dtype(g, v) == KILN_DTYPE_FLOAT; }

static bool fca_set_act(ir_node *n, const opt_act *a)
{
    if (a->kind == OPT_ACT_NONE) return true;
    if (!opt_set_attr_string(n, "activation", opt_act_name(a->kind))) return false;
    if (a->n_params && !opt_set_attr_floats(n, "activation_params", a->params, a->n_params)) return false;
    return true;
}

static void fca_kill_act(ir_graph *g, const opt_act *a)
{
    for (int k = 0; k < a->n_nodes; k++) opt_node_kill(g, a->nodes[k]);
}

static bool fca_conv(ir_graph *g, const opt_uses *u, int i)
{
    ir_node *n = &g->nodes[i];
    if (n->n_inputs < 2 || n->n_inputs > 3 || n->n_outputs != 1 || n->outputs[0] < 0) return false;
    int y = n->outputs[0];
    if (!fca_is_f32(g, y) || !fca_is_f32(g, n->inputs[0])) return false;
    kiln_dtype wdt;
    int wr;
    int64_t wd[KILN_MAX_DIMS];
    /* FusedConv kernels cover 1-D to 3-D convolutions. */
    if (!opt_value_rank(g, n->inputs[1], &wdt, &wr, wd) || wr < 3 || wr > 5) return false;
    int cur = y, z = -1, add = -1;
    int c = opt_sole_consumer(u, y);
    if (c >= 0 && opt_is(&g->nodes[c], "Add") && g->nodes[c].n_inputs == 2 && g->nodes[c].n_outputs == 1) {
        const ir_node *an = &g->nodes[c];
        int other = an->inputs[0] == y ? an->inputs[1] : an->inputs[0];
        if (other >= 0 && other != y && opt_value_dtype(g, other) == KILN_DTYPE_FLOAT && opt_same_shape(g, other, y) && opt_same_shape(g, an->outputs[0], y)) {
            z = other;
            add = c;
            cur = an->outputs[0];
        }
    }
    opt_act a;
    if (!opt_match_activation(g, u, cur, &a)) a.kind = OPT_ACT_NONE;
    if (z < 0 && a.kind == OPT_ACT_NONE) return false;
    int fin = a.kind != OPT_ACT_NONE ? a.out : cur;
    int ins[4] = {n->inputs[0], n->inputs[1], n->n_inputs > 2 ? n->inputs[2] : -1, z};
    if (!opt_node_retype(g, n, "FusedConv", "ai.kiln") || !opt_node_set_inputs(n, z >= 0 ? 4 : 3, ins) || !fca_set_act(n, &a)) {
        core_error_clear();
        return false;
    }
    if (add >= 0) opt_node_kill(g, add);
    if (a.kind != OPT_ACT_NONE) fca_kill_act(g, &a);
    n = &g->nodes[i];
    n->outputs[0] = fin;
    g->values[fin].producer = i;
    return true;
}

static bool fca_gemm(ir_graph *g, const opt_uses *u, int i)
{
    ir_node *n = &g->nodes[i];
    if (n->n_inputs < 2 || n->n_outputs != 1 || n->outputs[0] < 0 || !fca_is_f32(g, n->outputs[0])) return false;
    opt_act a;
    if (!opt_match_activation(g, u, n->outputs[0], &a)) return false;
    if (!opt_node_retype(g, n, "FusedGemm", "ai.kiln") || !fca_set_act(n, &a)) { core_error_clear(); return false; }
    fca_kill_act(g, &a);
    n = &g->nodes[i];
    n->outputs[0] = a.out;
    g->values[a.out].producer = i;
    return true;
}

static bool fca_matmul(ir_graph *g, const opt_uses *u, int i)
{
    ir_node *n = &g->nodes[i];
    if (n->n_inputs != 2 || n->n_outputs != 1 || n->outputs[0] < 0) return false;
    int y = n->outputs[0];
    kiln_dtype dt, db;
    int ry, rb;
    int64_t dy[KILN_MAX_DIMS], dbm[KILN_MAX_DIMS];
    if (opt_value_dtype(g, y) != KILN_DTYPE_FLOAT) return false;
    if (!opt_value_rank(g, y, &dt, &ry, dy)) ry = 1; /* B has >= 2 dims: Y has >= 1 */
    if (!opt_value_rank(g, n->inputs[1], &db, &rb, dbm) || rb < 2) return false;
    int64_t N = dbm[rb - 1];
    int cur = y, bias = -1, add = -1;
    int c = opt_sole_consumer(u, y);
    if (c >= 0 && opt_is(&g->nodes[c], "Add") && g->nodes[c].n_inputs == 2 && g->nodes[c].n_outputs == 1) {
        const ir_node *an = &g->nodes[c];
        int other = an->inputs[0] == y ? an->inputs[1] : an->inputs[0];
        const core_tensor *bt = opt_const(g, other);
        bool ok = bt && bt->dtype == KILN_DTYPE_FLOAT && N > 0 && bt->numel == N && bt->ndim >= 1 && bt->ndim <= ry;
        for (int k = 0; ok && k < bt->ndim - 1; k++) ok = bt->dims[k] == 1;
        if (ok) {
            add = c;
            cur = an->outputs[0];
            if (bt->ndim == 1) bias = other;
            else {
                core_tensor *flat = core_tensor_clone(bt);
                if (!flat) { core_error_clear(); return false; }
                flat->ndim = 1;
                flat->dims[0] = N;
                bias = opt_new_const(g, g->values[other].name, "_1d", flat);
                if (bias < 0) { core_error_clear(); return false; }
                n = &g->nodes[i];
            }
        }
    }
    opt_act a;
    if (!opt_match_activation(g, u, cur, &a)) a.kind = OPT_ACT_NONE;
    if (bias < 0 && a.kind == OPT_ACT_NONE) return false;
    int fin = a.kind != OPT_ACT_NONE ? a.out : cur;
    int ins[3] = {n->inputs[0], n->inputs[1], bias};
    if (!opt_node_retype(g, n, "FusedMatMul", "ai.kiln") || !opt_node_set_inputs(n, bias >= 0 ? 3 : 2, ins) || !fca_set_act(n, &a)) {
        core_error_clear();
        return false;
    }
    if (add >= 0) opt_node_kill(g, add);
    if (a.kind != OPT_ACT_NONE) fca_kill_act(g, &a);
    n = &g->nodes[i];
    n->outputs[0] = fin;
    g->values[fin].producer = i;
    return true;
}

kiln_status opt_fuse_conv_act(ir_graph *g, int *count)
{
    opt_uses u;
    kiln_status st = opt_uses_build(g, &u);
    if (st) return st;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        bool done = false;
        if (opt_is(n, "Conv")) done = fca_conv(g, &u, i);
        else if (opt_is(n, "Gemm")) done = fca_gemm(g, &u, i);
        else if (opt_is(n, "MatMul")) done = fca_matmul(g, &u, i);
        if (done) {
            (*count)++;
            opt_uses_free(&u);
            if ((st = opt_uses_build(g, &u))) return st;
        }
    }
    opt_uses_free(&u);
    return KILN_OK;
}
