/* eliminate_dead.c — removes nodes none of whose outputs is read (by a node, a subgraph or
 * as a graph output), and releases constants nothing reads any more. Nodes with effects
 * beyond their outputs are kept: the random generators (dropping one would shift the
 * sequence the others draw from the context's generator). */
#include "opt/rewrite.h"
#include <stdlib.h>
#include <string.h>

static bool dead_has_effects(const ir_node *n)
{
    static const char *const keep[] = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                                       "Bernoulli", "Multinomial", "Dropout", NULL};
    for (int i = 0; keep[i]; i++)
        if (!strcmp(n->op_type, keep[i])) {
            /* Dropout draws random numbers only in training mode; inference Dropout is
             * removed by eliminate_noop when its mask is unused. */
            return true;
        }
    return false;
}

kiln_status opt_eliminate_dead(ir_graph *g, int *count)
{
    opt_uses u;
    kiln_status st = opt_uses_build(g, &u);
    if (st) return st;
    /* Reverse topological order: a node's death frees its inputs for earlier nodes. */
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        ir_node *n = &g->nodes[i];
        if (!opt_alive(n) || dead_has_effects(n)) continue;
        bool used = false;
        for (int k = 0; k < n->n_outputs && !used; k++) {
            int v = n->outputs[k];
            if (v >= 0 && (u.count[v] > 0 || u.pinned[v])) used = true;
        }
        if (used) continue;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0) u.count[n->inputs[k]]--;
        /* Values its subgraphs read stay counted (pinned); harmless: they just live on. */
        opt_node_kill(g, i);
        (*count)++;
    }
    for (int v = 0; v < g->n_values; v++) {
        ir_value *val = &g->values[v];
        if (val->constant && !val->is_graph_input && !val->is_graph_output && !u.pinned[v] && u.count[v] <= 0) {
            core_value_release(val->constant);
            val->constant = NULL;
        }
    }
    opt_uses_free(&u);
    return KILN_OK;
}
