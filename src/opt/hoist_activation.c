/* hoist_activation.c — an elementwise activation that reads a Conv / Gemm / MatMul output
 * only through data-movement ops (Reshape, Transpose, Flatten, Squeeze, Unsqueeze) moves up
 * to the producer, where fuse_conv_act folds it into the kernel's epilogue:
 *
 *     Conv -> Reshape -> Transpose -> Sigmoid      becomes      Conv -> Sigmoid -> Reshape -> Transpose
 *
 * (the YOLOv5 detection head). An elementwise op commutes with any op that only moves
 * elements, so the result is exactly equal; the activation then costs nothing instead of a
 * pass over the whole tensor. Every value on the chain must be read only by the next node
 * (so no reader sees the moved activation where it did not before), and only single-node
 * activations (Relu, Clip with constant bounds, LeakyRelu, Sigmoid, HardSwish, Gelu) move. */
#include "opt/rewrite.h"
#include <string.h>

#define HA_MAX_CHAIN 8

static bool ha_is_movement(const ir_node *n)
{
    return (opt_is(n, "Reshape") || opt_is(n, "Transpose") || opt_is(n, "Flatten") || opt_is(n, "Squeeze") ||
            opt_is(n, "Unsqueeze")) &&
           n->n_inputs >= 1 && n->n_outputs == 1 && n->inputs[0] >= 0 && n->outputs[0] >= 0;
}

static bool ha_is_fusable_producer(const ir_graph *g, int v)
{
    int p = opt_producer(g, v);
    if (p < 0) return false;
    const ir_node *n = &g->nodes[p];
    return n->n_outputs == 1 && (opt_is(n, "Conv") || opt_is(n, "Gemm") || opt_is(n, "MatMul"));
}

/* Node s is a single-node activation reading value c; move it above the movement chain
 * that produces c. */
static bool ha_hoist(ir_graph *g, const opt_uses *u, int s)
{
    ir_node *sn = &g->nodes[s];
    if (sn->n_inputs < 1 || sn->n_outputs != 1 || sn->inputs[0] < 0 || sn->outputs[0] < 0) return false;
    int c = sn->inputs[0];
    if (opt_value_dtype(g, c) != KILN_DTYPE_FLOAT) return false;
    opt_act a;
    if (!opt_match_activation(g, u, c, &a) || a.n_nodes != 1 || a.nodes[0] != s) return false;
    /* walk up: chain[0] produces c, chain[k+1] produces chain[k]'s data input */
    int chain[HA_MAX_CHAIN], n = 0, v = c;
    for (;;) {
        int p = opt_producer(g, v);
        if (p < 0 || !ha_is_movement(&g->nodes[p]) || n == HA_MAX_CHAIN) return false;
        if (opt_sole_consumer(u, v) != (n == 0 ? s : chain[n - 1])) return false;
        chain[n++] = p;
        v = g->nodes[p].inputs[0];
        if (ha_is_fusable_producer(g, v)) break;
    }
    int top = v; /* the Conv/Gemm/MatMul output */
    if (opt_sole_consumer(u, top) != chain[n - 1] || opt_value_dtype(g, top) != KILN_DTYPE_FLOAT) return false;
    int moved = opt_new_value(g, g->values[top].name, "_act");
    if (moved < 0) { core_error_clear(); return false; }
    int out = sn->outputs[0];
    sn = &g->nodes[s];
    /* top -> act -> moved -> chain[n-1] -> ... -> chain[0] -> out */
    sn->inputs[0] = top;
    sn->outputs[0] = moved;
    g->values[moved].producer = s;
    g->nodes[chain[n - 1]].inputs[0] = moved;
    g->nodes[chain[0]].outputs[0] = out;
    g->values[out].producer = chain[0];
    g->values[c].producer = -1; /* c is no longer produced or read */
    return true;
}

kiln_status opt_hoist_activation(ir_graph *g, int *count)
{
    opt_uses u;
    kiln_status st = opt_uses_build(g, &u);
    if (st) return st;
    for (int i = 0; i < g->n_nodes; i++) {
        if (!opt_alive(&g->nodes[i]) || (g->nodes[i].domain && *g->nodes[i].domain)) continue;
        if (ha_hoist(g, &u, i)) {
            (*count)++;
            opt_uses_free(&u);
            if ((st = opt_uses_build(g, &u))) return st;
        }
    }
    opt_uses_free(&u);
    return KILN_OK;
}
