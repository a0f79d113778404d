/* merge_sibling_convs.c — 1x1 Convs (or FusedConvs with the same activation, no residual)
 * reading the same input with the same geometry and group 1 become one Conv whose weights
 * are the siblings' stacked along output channels, followed by a Split on the channel axis
 * that writes the original output values (consumers see the same tensors). */
#include "opt/rewrite.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSC_MAX 32

static bool msc_candidate(const ir_graph *g, const ir_node *n)
{
    bool fused = opt_alive(n) && n->domain && !strcmp(n->domain, "ai.kiln") && !strcmp(n->op_type, "FusedConv");
    if (!opt_is(n, "Conv") && !fused) return false;
    if (n->n_inputs < 2 || n->n_inputs > 3 || n->n_outputs != 1 || n->outputs[0] < 0 || n->inputs[0] < 0) return false;
    if (opt_attr_int(n, "group", 1) != 1) return false;
    const core_tensor *w = opt_const(g, n->inputs[1]);
    if (!w || w->dtype != KILN_DTYPE_FLOAT || w->ndim < 3 || w->dims[0] < 1) return false;
    for (int i = 2; i < w->ndim; i++) if (w->dims[i] != 1) return false;
    if (n->n_inputs > 2 && n->inputs[2] >= 0) {
        const core_tensor *b = opt_const(g, n->inputs[2]);
        if (!b || b->dtype != KILN_DTYPE_FLOAT || b->numel != w->dims[0]) return false;
    }
    return true;
}

static bool msc_attr_eq(const ir_node *a, const ir_node *b, const char *name)
{
    const ir_attr *x = ir_node_attr(a, name), *y = ir_node_attr(b, name);
    if (!x || !y) return !x && !y;
    if (x->type != y->type || x->n != y->n) return false;
    switch (x->type) {
    case IR_ATTR_INT: return x->i == y->i;
    case IR_ATTR_FLOAT: return x->f == y->f;
    case IR_ATTR_STRING: return !strcmp(x->s ? x->s : "", y->s ? y->s : "");
    case IR_ATTR_INTS: return !x->n || !memcmp(x->ints, y->ints, sizeof(int64_t) * (size_t)x->n);
    case IR_ATTR_FLOATS: return !x->n || !memcmp(x->floats, y->floats, sizeof(float) * (size_t)x->n);
    default: return false;
    }
}

static bool msc_compatible(const ir_graph *g, const ir_node *a, const ir_node *b)
{
    static const char *const attrs[] = {"strides", "pads", "dilations", "auto_pad", "activation", "activation_params", NULL};
    if (strcmp(a->op_type, b->op_type) || a->inputs[0] != b->inputs[0]) return false;
    const core_tensor *wa = opt_const(g, a->inputs[1]), *wb = opt_const(g, b->inputs[1]);
    if (wa->ndim != wb->ndim || wa->dims[1] != wb->dims[1]) return false;
    for (int i = 0; attrs[i]; i++) if (!msc_attr_eq(a, b, attrs[i])) return false;
    return true;
}

static bool msc_merge(ir_graph *g, const int *idx, int n)
{
    int64_t Ci = opt_const(g, g->nodes[idx[0]].inputs[1])->dims[1], total = 0, sizes[MSC_MAX];
    for (int k = 0; k < n; k++) total += sizes[k] = opt_const(g, g->nodes[idx[k]].inputs[1])->dims[0];
    const core_tensor *w0 = opt_const(g, g->nodes[idx[0]].inputs[1]);
    int64_t wd[KILN_MAX_DIMS];
    memcpy(wd, w0->dims, sizeof(int64_t) * (size_t)w0->ndim);
    wd[0] = total;
    core_tensor *w = core_tensor_create(KILN_DTYPE_FLOAT, w0->ndim, wd), *b = core_tensor_create(KILN_DTYPE_FLOAT, 1, &total);
    if (!w || !b) { core_tensor_destroy(w); core_tensor_destroy(b); core_error_clear(); return false; }
    float *W = w->data, *B = b->data;
    int64_t off = 0;
    for (int k = 0; k < n; k++) {
        const ir_node *nd = &g->nodes[idx[k]];
        memcpy(W + off * Ci, opt_const(g, nd->inputs[1])->data, sizeof(float) * (size_t)(sizes[k] * Ci));
        const core_tensor *bk = nd->n_inputs > 2 && nd->inputs[2] >= 0 ? opt_const(g, nd->inputs[2]) : NULL;
        if (bk) memcpy(B + off, bk->data, sizeof(float) * (size_t)sizes[k]);
        off += sizes[k];
    }
    const char *base = g->nodes[idx[0]].name && *g->nodes[idx[0]].name ? g->nodes[idx[0]].name : g->values[g->nodes[idx[0]].outputs[0]].name;
    char nbase[400];
    snprintf(nbase, sizeof nbase, "%s_merged", base);
    int wv = opt_new_const(g, nbase, "_W", w);
    int bv = wv >= 0 ? opt_new_const(g, nbase, "_B", b) : (core_tensor_destroy(b), -1);
    int mv = bv >= 0 ? opt_new_value(g, nbase, "_out") : -1;
    int outs[MSC_MAX];
    for (int k = 0; k < n; k++) outs[k] = g->nodes[idx[k]].outputs[0];
    int opset = (int)ir_graph_opset(g, "");
    int sv = -1;
    if (mv >= 0 && opset >= 13) {
        int64_t ns = n;
        core_tensor *st = core_tensor_create(KILN_DTYPE_INT64, 1, &ns);
        if (st) { memcpy(st->data, sizes, sizeof(int64_t) * (size_t)n); sv = opt_new_const(g, nbase, "_split", st); }
        if (sv < 0) mv = -1;
    }
    if (mv < 0) { core_error_clear(); return false; }
    int sin[2] = {mv, sv};
    int si = opt_add_node(g, nbase, "Split", "", opset >= 13 ? 2 : 1, sin, n, outs);
    if (si < 0) { core_error_clear(); return false; }
    ir_node *sp = &g->nodes[si];
    if (!opt_set_attr_int(sp, "axis", 1) || (opset < 13 && !opt_set_attr_ints(sp, "split", sizes, n))) {
        opt_node_kill(g, si);
        core_error_clear();
        return false;
    }
    ir_node *m = &g->nodes[idx[0]];
    int ins[3] = {m->inputs[0], wv, bv};
    if (!opt_node_set_inputs(m, 3, ins)) { core_error_clear(); return false; }
    m->outputs[0] = mv;
    g->values[mv].producer = idx[0];
    for (int k = 1; k < n; k++) opt_node_kill(g, idx[k]);
    for (int k = 0; k < n; k++) g->values[outs[k]].producer = si;
    return true;
}

kiln_status opt_merge_sibling_convs(ir_graph *g, int *count)
{
    int n0 = g->n_nodes;
    int idx[MSC_MAX];
    for (int i = 0; i < n0; i++) {
        if (!msc_candidate(g, &g->nodes[i])) continue;
        int n = 1;
        idx[0] = i;
        for (int j = i + 1; j < n0 && n < MSC_MAX; j++)
            if (msc_candidate(g, &g->nodes[j]) && msc_compatible(g, &g->nodes[i], &g->nodes[j])) idx[n++] = j;
        if (n >= 2 && msc_merge(g, idx, n)) (*count)++;
    }
    return KILN_OK;
}
