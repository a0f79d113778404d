/* elide_concat.c — analysis for the memory planner: marks a Concat with attribute
 * kiln_elide = 1 when each input could be written by its producer straight into the
 * Concat's output buffer, so the copy disappears. That holds when every dim before the
 * concat axis is 1 (each input is then one contiguous block of the output) and every input
 * is a distinct value produced by a single-output node and read by nothing but this Concat.
 * The activation memory planner (runtime/exec.c, rt_plan_elide_concats) then nests the
 * inputs' buffers inside the Concat's, so producers write in place and the Concat kernels
 * find every block already there. */
#include "opt/rewrite.h"
#include <string.h>

static bool ec_elidable(const ir_graph *g, const opt_uses *u, const ir_node *n)
{
    if (n->n_inputs < 2 || n->n_outputs != 1 || n->outputs[0] < 0) return false;
    kiln_dtype dt;
    int r;
    int64_t d[KILN_MAX_DIMS];
    if (!opt_value_rank(g, n->outputs[0], &dt, &r, d) || r < 1) return false;
    int64_t axis = opt_attr_int(n, "axis", 0);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) return false;
    for (int i = 0; i < axis; i++) if (d[i] != 1) return false;
    for (int k = 0; k < n->n_inputs; k++) {
        int v = n->inputs[k];
        if (v < 0 || u->pinned[v] || u->count[v] != 1) return false;
        int p = opt_producer(g, v);
        if (p < 0 || g->nodes[p].n_outputs != 1) return false;
        const ir_value *val = &g->values[v];
        if (val->constant || val->is_graph_input || val->is_outer) return false;
    }
    return true;
}

kiln_status opt_elide_concat(ir_graph *g, int *count)
{
    opt_uses u;
    kiln_status st = opt_uses_build(g, &u);
    if (st) return st;
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *n = &g->nodes[i];
        if (!opt_is(n, "Concat")) continue;
        bool want = ec_elidable(g, &u, n), has = opt_attr_int(n, "kiln_elide", 0) == 1;
        if (want && !has) {
            if (!opt_set_attr_int(n, "kiln_elide", 1)) { opt_uses_free(&u); return KILN_ERR_OUT_OF_MEMORY; }
            (*count)++;
        } else if (!want && has) opt_remove_attr(n, "kiln_elide");
    }
    opt_uses_free(&u);
    return KILN_OK;
}
