/* fuse_attention.c — recognizes scaled dot-product attention:
 *   MatMul([Q / c | Q * c | Q], Transpose(K')) [/ c | * c] [+ mask] -> Softmax(last axis)
 *   -> MatMul(., V)
 * and emits ai.kiln Attention(Q, K, V, mask?) with attribute scale (ops/fused.h). The
 * Transpose producing K^T is rewritten to produce K (its perm with the last two entries
 * swapped), or dropped when that perm is the identity. Float32 only. */
#include "opt/rewrite.h"
#include <string.h>

static int att_sole(const ir_graph *g, const opt_uses *u, int v, const char *op)
{
    int c = opt_sole_consumer(u, v);
    return c >= 0 && opt_is(&g->nodes[c], op) && g->nodes[c].n_outputs == 1 && g->nodes[c].outputs[0] >= 0 ? c : -1;
}

/* Node n scales `x` by a scalar constant: *f gets the factor (1/c for Div). */
static bool att_scale_of(const ir_graph *g, const ir_node *n, int x, double *f)
{
    double c;
    if (n->n_inputs != 2) return false;
    if (opt_is(n, "Div") && n->inputs[0] == x && opt_const_scalar(g, n->inputs[1], &c) && c != 0) { *f = 1.0 / c; return true; }
    if (opt_is(n, "Mul") && ((n->inputs[0] == x && opt_const_scalar(g, n->inputs[1], &c)) || (n->inputs[1] == x && opt_const_scalar(g, n->inputs[0], &c)))) {
        *f = c;
        return true;
    }
    return false;
}

static bool att_f32_rank(const ir_graph *g, int v, int *r, int64_t *d)
{
    kiln_dtype dt;
    return opt_value_rank(g, v, &dt, r, d) && dt == KILN_DTYPE_FLOAT;
}

static bool att_match(ir_graph *g, const opt_uses *u, int i)
{
    ir_node *m1 = &g->nodes[i];
    if (m1->n_inputs != 2 || m1->n_outputs != 1 || m1->outputs[0] < 0) return false;
    int ti = opt_producer(g, m1->inputs[1]);
    if (ti < 0 || !opt_is(&g->nodes[ti], "Transpose") || opt_sole_consumer(u, m1->inputs[1]) != i || g->nodes[ti].n_inputs != 1) return false;
    int kr = g->nodes[ti].inputs[0];
    int r, rk, rv;
    int64_t qd[KILN_MAX_DIMS], kd[KILN_MAX_DIMS], vd[KILN_MAX_DIMS];
    if (!att_f32_rank(g, kr, &rk, kd) || rk < 2) return false;
    int64_t perm[KILN_MAX_DIMS];
    int64_t np = opt_attr_ints(&g->nodes[ti], "perm", perm, KILN_MAX_DIMS);
    if (np < 0) { np = rk; for (int k = 0; k < rk; k++) perm[k] = rk - 1 - k; }
    if (np != rk) return false;
    int64_t t = perm[np - 1];
    perm[np - 1] = perm[np - 2];
    perm[np - 2] = t;
    bool ident = true;
    for (int k = 0; k < np; k++) if (perm[k] != k) ident = false;
    /* Q with an optional scalar pre-scale. */
    double scale = 1.0, f;
    int q = m1->inputs[0], qs = -1;
    int qp = opt_producer(g, q);
    if (qp >= 0 && opt_sole_consumer(u, q) == i && g->nodes[qp].n_outputs == 1) {
        const ir_node *qn = &g->nodes[qp];
        int src = qn->n_inputs == 2 ? (opt_const(g, qn->inputs[0]) ? qn->inputs[1] : qn->inputs[0]) : -1;
        if (src >= 0 && att_scale_of(g, qn, src, &f)) { scale *= f; qs = qp; q = src; }
    }
    if (!att_f32_rank(g, q, &r, qd) || r != rk) return false;
    int cur = m1->outputs[0], sc = -1, add = -1, mask = -1;
    int c = opt_sole_consumer(u, cur);
    if (c >= 0 && att_scale_of(g, &g->nodes[c], cur, &f) && g->nodes[c].n_outputs == 1) { scale *= f; sc = c; cur = g->nodes[c].outputs[0]; }
    c = att_sole(g, u, cur, "Add");
    if (c >= 0 && g->nodes[c].n_inputs == 2) {
        int o = g->nodes[c].inputs[0] == cur ? g->nodes[c].inputs[1] : g->nodes[c].inputs[0];
        int rm;
        int64_t md[KILN_MAX_DIMS], sd[KILN_MAX_DIMS];
        int rs;
        kiln_dtype dt;
        bool ok = o >= 0 && o != cur && att_f32_rank(g, o, &rm, md) && rm <= r && opt_value_rank(g, cur, &dt, &rs, sd) && rs == r;
        for (int k = 0; ok && k < rm; k++) {
            int64_t mdim = md[k], sdim = sd[r - rm + k];
            ok = mdim == 1 || (mdim >= 0 && mdim == sdim) || (mdim < 0 && sdim < 0);
        }
        if (!ok) return false;
        mask = o;
        add = c;
        cur = g->nodes[c].outputs[0];
    }
    int sm = att_sole(g, u, cur, "Softmax");
    if (sm < 0) return false;
    int opset = g->nodes[sm].opset > 0 ? g->nodes[sm].opset : (int)ir_graph_opset(g, "");
    int64_t axis = opt_attr_int(&g->nodes[sm], "axis", opset >= 13 ? -1 : 1);
    if (axis != -1 && axis != r - 1) return false;
    int m2 = att_sole(g, u, g->nodes[sm].outputs[0], "MatMul");
    if (m2 < 0 || g->nodes[m2].n_inputs != 2 || g->nodes[m2].inputs[0] != g->nodes[sm].outputs[0]) return false;
    int v = g->nodes[m2].inputs[1];
    if (v == g->nodes[sm].outputs[0] || !att_f32_rank(g, v, &rv, vd) || rv < 2) return false;
    int fin = g->nodes[m2].outputs[0];
    /* K from its transposed form. */
    int k = kr;
    if (!ident) {
        /* A fresh value: the old one's (K^T) type must not stick to K. */
        k = opt_new_value(g, g->values[kr].name, "_K");
        if (k < 0 || !opt_set_attr_ints(&g->nodes[ti], "perm", perm, np)) { core_error_clear(); return false; }
        g->nodes[ti].outputs[0] = k;
        g->values[k].producer = ti;
    }
    m1 = &g->nodes[i];
    int ins[4] = {q, k, v, mask};
    if (!opt_node_retype(g, m1, "Attention", "ai.kiln") || !opt_node_set_inputs(m1, mask >= 0 ? 4 : 3, ins) ||
        !opt_set_attr_float(m1, "scale", (float)scale)) {
        core_error_clear();
        return false;
    }
    if (ident) opt_node_kill(g, ti);
    int kill[] = {qs, sc, add, sm, m2};
    for (int j = 0; j < (int)(sizeof kill / sizeof kill[0]); j++) if (kill[j] >= 0) opt_node_kill(g, kill[j]);
    m1 = &g->nodes[i];
    m1->outputs[0] = fin;
    g->values[fin].producer = i;
    return true;
}

kiln_status opt_fuse_attention(ir_graph *g, int *count)
{
    opt_uses u;
    kiln_status st = opt_uses_build(g, &u);
    if (st) return st;
    for (int i = 0; i < g->n_nodes; i++) {
        if (!opt_is(&g->nodes[i], "MatMul")) continue;
        if (att_match(g, &u, i)) {
            (*count)++;
            opt_uses_free(&u);
            if ((st = opt_uses_build(g, &u))) return st;
        }
    }
    opt_uses_free(&u);
    return KILN_OK;
}
