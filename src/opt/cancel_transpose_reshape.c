/* cancel_transpose_reshape.c — Transpose(Transpose(x)) becomes one Transpose (or nothing
 * when the perms compose to the identity); Reshape(Reshape(x)) becomes one Reshape when
 * the outer shape is constant and has no 0 entries (which would copy the inner result's
 * dims). The inner node stays while others read it (eliminate_dead drops it otherwise). */
#include "opt/rewrite.h"
#include <string.h>

static int64_t ctr_perm(const ir_graph *g, const ir_node *n, int64_t *perm)
{
    int64_t np = opt_attr_ints(n, "perm", perm, KILN_MAX_DIMS);
    if (np >= 0) return np;
    kiln_dtype dt;
    int r;
    int64_t d[KILN_MAX_DIMS];
    if (n->n_inputs < 1 || !opt_value_rank(g, n->inputs[0], &dt, &r, d)) return -1;
    for (int i = 0; i < r; i++) perm[i] = r - 1 - i;
    return r;
}

static bool ctr_transpose(ir_graph *g, const opt_uses *u, int i)
{
    ir_node *n = &g->nodes[i];
    if (n->n_inputs != 1 || n->n_outputs != 1 || n->outputs[0] < 0) return false;
    int p = opt_producer(g, n->inputs[0]);
    if (p < 0 || !opt_is(&g->nodes[p], "Transpose") || g->nodes[p].n_inputs != 1) return false;
    int64_t p1[KILN_MAX_DIMS], p2[KILN_MAX_DIMS], q[KILN_MAX_DIMS];
    int64_t n1 = ctr_perm(g, &g->nodes[p], p1), n2 = ctr_perm(g, n, p2);
    if (n1 < 0 || n1 != n2) return false;
    bool ident = true;
    for (int64_t k = 0; k < n2; k++) {
        if (p2[k] < 0 || p2[k] >= n1 || p1[p2[k]] < 0 || p1[p2[k]] >= n1) return false;
        q[k] = p1[p2[k]]; /* out[k] = mid[p2[k]] = x[p1[p2[k]]] */
        if (q[k] != k) ident = false;
    }
    int x = g->nodes[p].inputs[0];
    if (x < 0) return false;
    if (ident) return opt_bypass(g, u, i, x, n->outputs[0]);
    if (!opt_set_attr_ints(n, "perm", q, n2)) return false;
    n->inputs[0] = x;
    return true;
}

static bool ctr_reshape(ir_graph *g, int i)
{
    ir_node *n = &g->nodes[i];
    if (n->n_inputs != 2 || n->n_outputs != 1) return false;
    int p = opt_producer(g, n->inputs[0]);
    if (p < 0 || !opt_is(&g->nodes[p], "Reshape") || g->nodes[p].n_inputs < 1 || g->nodes[p].inputs[0] < 0) return false;
    int64_t sh[KILN_MAX_DIMS];
    int64_t ns = opt_const_ints(g, n->inputs[1], sh, KILN_MAX_DIMS);
    if (ns < 0) return false;
    for (int64_t k = 0; k < ns; k++) if (sh[k] == 0) return false;
    n->inputs[0] = g->nodes[p].inputs[0];
    return true;
}

kiln_status opt_cancel_transpose_reshape(ir_graph *g, int *count)
{
    opt_uses u;
    kiln_status st = opt_uses_build(g, &u);
    if (st) return st;
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *n = &g->nodes[i];
        bool done = false;
        if (opt_is(n, "Transpose")) done = ctr_transpose(g, &u, i);
        else if (opt_is(n, "Reshape")) done = ctr_reshape(g, i);
        if (done) {
            (*count)++;
            opt_uses_free(&u);
            if ((st = opt_uses_build(g, &u))) return st;
        }
    }
    opt_uses_free(&u);
    return KILN_OK;
}
