/* fuse_layernorm.c — recognizes LayerNorm written out over the last axis:
 *   m = ReduceMean(x); d = x - m; v = ReduceMean(d^2 | d*d); y = d / Sqrt(v + eps)
 *   [* gamma] [+ beta]
 * and emits LayerNormalization (the ONNX op when the model imports opset >= 17, else the
 * ai.kiln op of the same contract). gamma/beta must be float32 constants over the last dim. */
#include "opt/rewrite.h"
#include <string.h>

static int ln_opset(const ir_graph *g, const ir_node *n) { return n->opset > 0 ? n->opset : (int)ir_graph_opset(g, ""); }

/* ReduceMean over exactly the last axis of a rank-r input, keepdims. */
static bool ln_mean_last(const ir_graph *g, const ir_node *n, int r)
{
    if (!opt_is(n, "ReduceMean") || n->n_outputs != 1 || n->outputs[0] < 0) return false;
    if (opt_attr_int(n, "keepdims", 1) != 1) return false;
    int64_t ax[KILN_MAX_DIMS], na;
    if (ln_opset(g, n) < 18) na = opt_attr_ints(n, "axes", ax, KILN_MAX_DIMS);
    else na = n->n_inputs > 1 && n->inputs[1] >= 0 ? opt_const_ints(g, n->inputs[1], ax, KILN_MAX_DIMS) : -1;
    return na == 1 && (ax[0] == -1 || ax[0] == r - 1);
}

/* A float32 constant of D values, shaped [D] or [1, ..., D] with rank <= r. */
static bool ln_vec(const ir_graph *g, int v, int64_t D, int r)
{
    const core_tensor *t = opt_const(g, v);
    if (!t || t->dtype != KILN_DTYPE_FLOAT || t->numel != D || t->ndim < 1 || t->ndim > r) return false;
    for (int i = 0; i < t->ndim - 1; i++) if (t->dims[i] != 1) return false;
    return true;
}

/* A 1-D copy of constant v (itself when already 1-D); -1 on OOM. */
static int ln_flat(ir_graph *g, int v, const char *suffix)
{
    const core_tensor *t = opt_const(g, v);
    if (t->ndim == 1) return v;
    core_tensor *c = core_tensor_clone(t);
    if (!c) return -1;
    c->ndim = 1;
    c->dims[0] = c->numel;
    return opt_new_const(g, g->values[v].name, suffix, c);
}

static int ln_sole(const ir_graph *g, const opt_uses *u, int v, const char *op)
{
    int c = opt_sole_consumer(u, v);
    return c >= 0 && opt_is(&g->nodes[c], op) && g->nodes[c].n_outputs == 1 && g->nodes[c].outputs[0] >= 0 ? c : -1;
}

static bool ln_match(ir_graph *g, const opt_uses *u, int i)
{
    ir_node *mn = &g->nodes[i];
    if (mn->n_inputs < 1 || mn->inputs[0] < 0) return false;
    int x = mn->inputs[0];
    kiln_dtype dt;
    int r;
    int64_t xd[KILN_MAX_DIMS];
    if (!opt_value_rank(g, x, &dt, &r, xd) || dt != KILN_DTYPE_FLOAT || r < 1 || xd[r - 1] < 1) return false;
    int64_t D = xd[r - 1];
    if (!ln_mean_last(g, mn, r)) return false;
    int mean = mn->outputs[0];
    int si = ln_sole(g, u, mean, "Sub");
    if (si < 0 || g->nodes[si].n_inputs != 2 || g->nodes[si].inputs[0] != x || g->nodes[si].inputs[1] != mean) return false;
    int d = g->nodes[si].outputs[0];
    if (u->pinned[d]) return false;
    int sq = -1, dv = -1, d_uses = 0;
    for (int s = u->start[d]; s < u->start[d + 1]; s++) {
        int c = u->node[s];
        const ir_node *cn = &g->nodes[c];
        double e;
        if (opt_is(cn, "Pow") && cn->n_inputs == 2 && cn->inputs[0] == d && opt_const_scalar(g, cn->inputs[1], &e) && e == 2.0) { sq = c; d_uses += 1; }
        else if (opt_is(cn, "Mul") && cn->n_inputs == 2 && cn->inputs[0] == d && cn->inputs[1] == d) { sq = c; d_uses += 1; } /* listed once per slot */
        else if (opt_is(cn, "Div") && cn->n_inputs == 2 && cn->inputs[0] == d && cn->inputs[1] != d) { dv = c; d_uses += 1; }
        else return false;
    }
    if (sq < 0 || dv < 0 || d_uses != u->count[d] || g->nodes[sq].n_outputs != 1) return false;
    int vi = ln_sole(g, u, g->nodes[sq].outputs[0], "ReduceMean");
    if (vi < 0 || g->nodes[vi].inputs[0] != g->nodes[sq].outputs[0] || !ln_mean_last(g, &g->nodes[vi], r)) return false;
    int ai = ln_sole(g, u, g->nodes[vi].outputs[0], "Add");
    double eps;
    if (ai < 0 || g->nodes[ai].n_inputs != 2) return false;
    int var = g->nodes[vi].outputs[0];
    int epsv = g->nodes[ai].inputs[0] == var ? g->nodes[ai].inputs[1] : g->nodes[ai].inputs[0];
    if (!opt_const_scalar(g, epsv, &eps) || eps < 0) return false;
    int qi = ln_sole(g, u, g->nodes[ai].outputs[0], "Sqrt");
    if (qi < 0 || opt_sole_consumer(u, g->nodes[qi].outputs[0]) != dv || g->nodes[dv].inputs[1] != g->nodes[qi].outputs[0]) return false;
    int fin = g->nodes[dv].outputs[0], gamma = -1, beta = -1, mul = -1, add = -1;
    int c = ln_sole(g, u, fin, "Mul");
    if (c >= 0) {
        const ir_node *cn = &g->nodes[c];
        int o = cn->inputs[0] == fin ? cn->inputs[1] : cn->inputs[0];
        if (cn->n_inputs == 2 && ln_vec(g, o, D, r)) { gamma = o; mul = c; fin = cn->outputs[0]; }
    }
    c = ln_sole(g, u, fin, "Add");
    if (c >= 0) {
        const ir_node *cn = &g->nodes[c];
        int o = cn->inputs[0] == fin ? cn->inputs[1] : cn->inputs[0];
        if (cn->n_inputs == 2 && ln_vec(g, o, D, r)) { beta = o; add = c; fin = cn->outputs[0]; }
    }
    if (gamma >= 0) gamma = ln_flat(g, gamma, "_1d");
    else {
        core_tensor *ones = core_tensor_create(KILN_DTYPE_FLOAT, 1, &D);
        if (ones) for (int64_t k = 0; k < D; k++) ((float *)ones->data)[k] = 1.0f;
        gamma = ones ? opt_new_const(g, g->values[x].name, "_ln_scale", ones) : -1;
    }
    if (beta >= 0) beta = ln_flat(g, beta, "_1d");
    if (gamma < 0 || (add >= 0 && beta < 0)) { core_error_clear(); return false; }
    bool native = ir_graph_opset(g, "") >= 17;
    mn = &g->nodes[i];
    int ins[3] = {x, gamma, beta};
    if (!opt_node_retype(g, mn, "LayerNormalization", native ? "" : "ai.kiln") || !opt_node_set_inputs(mn, beta >= 0 ? 3 : 2, ins)) {
        core_error_clear();
        return false;
    }
    opt_clear_attrs(mn);
    if (!opt_set_attr_int(mn, "axis", -1) || !opt_set_attr_float(mn, "epsilon", (float)eps)) { core_error_clear(); return false; }
    int kill[] = {si, sq, vi, ai, qi, dv, mul, add};
    for (int k = 0; k < (int)(sizeof kill / sizeof kill[0]); k++) if (kill[k] >= 0) opt_node_kill(g, kill[k]);
    mn = &g->nodes[i];
    mn->outputs[0] = fin;
    g->values[fin].producer = i;
    return true;
}

kiln_status opt_fuse_layernorm(ir_graph *g, int *count)
{
    opt_uses u;
    kiln_status st = opt_uses_build(g, &u);
    if (st) return st;
    for (int i = 0; i < g->n_nodes; i++) {
        if (!opt_is(&g->nodes[i], "ReduceMean")) continue;
        if (ln_match(g, &u, i)) {
            (*count)++;
            opt_uses_free(&u);
            if ((st = opt_uses_build(g, &u))) return st;
        }
    }
    opt_uses_free(&u);
    return KILN_OK;
}
