/* fuse_expand_dw.c — runs after layout_nhwc: a 1x1 ConvNhwc (stride 1, no padding, one
 * group, no residual) whose output only a depthwise ConvNhwc reads (no residual) becomes one
 * ai.kiln ConvNhwcExpandDw (contract in ops/fused.h): the "expand -> depthwise" front of a
 * MobileNet / EfficientNet inverted residual. When only a 1x1 projection reads the depthwise
 * output (MobileNetV2; EfficientNet's squeeze-excitation reads it too), the whole block
 * becomes ConvNhwcMbConv, residual included; so does a depthwise -> projection pair. The expanded tensor (6x the block's channels, at
 * the block's full resolution) is then never written to memory: the CPU kernel computes it in
 * row bands that stay in L2 and runs the depthwise convolution on each band at once.
 * KILN_FUSE_EXPAND_DW=0 switches the pass off. */
#include "opt/rewrite.h"
#include <stdlib.h>
#include <string.h>

static bool fed_is_conv_nhwc(const ir_node *n)
{
    return n->op_type && !strcmp(n->op_type, "ConvNhwc") && n->domain && !strcmp(n->domain, "ai.kiln") &&
           n->n_outputs == 1 && n->outputs[0] >= 0 && n->n_inputs >= 2 && n->inputs[0] >= 0 && n->inputs[1] >= 0 &&
           (n->n_inputs < 4 || n->inputs[3] < 0) && !ir_node_attr(n, "kiln_tactic") &&
           !ir_node_attr(n, "x_channel_offset");
}

/* All of the ints attribute equal v (absent counts as v). */
static bool fed_all(const ir_node *n, const char *name, int64_t v)
{
    int64_t a[8];
    int64_t k = opt_attr_ints(n, name, a, 8);
    for (int64_t i = 0; i < k; i++) if (a[i] != v) return false;
    return true;
}

/* dst gets src's activation / activation_params under the names `name` / `params`; false
 * on OOM (error set). */
static bool fed_copy_act(ir_node *dst, const ir_node *src, const char *name, const char *params)
{
    const char *act = opt_attr_string(src, "activation", "");
    const ir_attr *pa = ir_node_attr(src, "activation_params");
    float pv[2];
    int64_t np = pa && pa->floats ? (pa->n < 2 ? pa->n : 2) : 0;
    for (int64_t k = 0; k < np; k++) pv[k] = pa->floats[k];
    return (!*act || opt_set_attr_string(dst, name, act)) && (!np || opt_set_attr_floats(dst, params, pv, np));
}

static bool fed_fuse(ir_graph *g, const opt_uses *u, int i)
{
    const ir_node *a = &g->nodes[i];
    if (!fed_is_conv_nhwc(a)) return false;
    kiln_dtype dt;
    int r1, r2;
    int64_t w1[KILN_MAX_DIMS], w2[KILN_MAX_DIMS];
    if (!opt_const(g, a->inputs[1]) || !opt_static_shape(g, a->inputs[1], &dt, &r1, w1) || r1 != 4 || w1[2] != 1 ||
        w1[3] != 1 || dt != KILN_DTYPE_FLOAT)
        return false;
    if (opt_attr_int(a, "group", 1) != 1 || !fed_all(a, "strides", 1) || !fed_all(a, "pads", 0) || !fed_all(a, "dilations", 1) ||
        strcmp(opt_attr_string(a, "auto_pad", "NOTSET"), "NOTSET"))
        return false;
    int t = a->outputs[0];
    int bi = opt_sole_consumer(u, t);
    if (bi < 0) return false;
    const ir_node *b = &g->nodes[bi];
    if (!fed_is_conv_nhwc(b) || b->inputs[0] != t || !opt_const(g, b->inputs[1])) return false;
    if (!opt_static_shape(g, b->inputs[1], &dt, &r2, w2) || r2 != 4 || w2[1] != 1 || w2[0] != w1[0] ||
        opt_attr_int(b, "group", 1) != w1[0])
        return false;
    /* B: X, W, B?, Z (absent), W1, B1? */
    int ins[6] = {a->inputs[0], b->inputs[1], b->n_inputs > 2 ? b->inputs[2] : -1, -1, a->inputs[1],
                  a->n_inputs > 2 ? a->inputs[2] : -1};
    ir_node *bn = &g->nodes[bi];
    if (!opt_node_retype(g, bn, "ConvNhwcExpandDw", "ai.kiln") || !opt_node_set_inputs(bn, 6, ins) ||
        !fed_copy_act(bn, a, "expand_activation", "expand_activation_params")) {
        core_error_clear();
        return false;
    }
    opt_node_kill(g, i);
    return true;
}

/* Node bi (ConvNhwcExpandDw, or a depthwise ConvNhwc without residual) whose output only a
 * 1x1 ConvNhwc reads: the pair becomes ConvNhwcMbConv at bi (the projection's residual Z
 * does not depend on bi's output, which only the projection reads). */
static bool fed_fuse_project(ir_graph *g, const opt_uses *u, int bi)
{
    const ir_node *b = &g->nodes[bi];
    bool ed = b->op_type && !strcmp(b->op_type, "ConvNhwcExpandDw") && b->domain && !strcmp(b->domain, "ai.kiln");
    kiln_dtype dt;
    int r;
    int64_t wd[KILN_MAX_DIMS];
    if (!ed) {
        if (!fed_is_conv_nhwc(b) || !opt_const(g, b->inputs[1]) || !opt_static_shape(g, b->inputs[1], &dt, &r, wd) ||
            r != 4 || wd[1] != 1 || opt_attr_int(b, "group", 1) != wd[0])
            return false;
    } else if (b->n_inputs != 6 || b->n_outputs != 1 || b->outputs[0] < 0)
        return false;
    int pi = opt_sole_consumer(u, b->outputs[0]);
    if (pi < 0) return false;
    const ir_node *p = &g->nodes[pi];
    if (!p->op_type || strcmp(p->op_type, "ConvNhwc") || !p->domain || strcmp(p->domain, "ai.kiln") || p->n_outputs != 1 ||
        p->outputs[0] < 0 || p->n_inputs < 2 || p->inputs[0] != b->outputs[0] || ir_node_attr(p, "kiln_tactic") ||
        ir_node_attr(p, "x_channel_offset") || !opt_const(g, p->inputs[1]))
        return false;
    if (!opt_static_shape(g, p->inputs[1], &dt, &r, wd) || r != 4 || wd[2] != 1 || wd[3] != 1 || dt != KILN_DTYPE_FLOAT)
        return false;
    if (opt_attr_int(p, "group", 1) != 1 || !fed_all(p, "strides", 1) || !fed_all(p, "pads", 0) || !fed_all(p, "dilations", 1) ||
        strcmp(opt_attr_string(p, "auto_pad", "NOTSET"), "NOTSET"))
        return false;
    int z = p->n_inputs > 3 ? p->inputs[3] : -1;
    if (z == b->outputs[0]) return false;
    int ins[8] = {b->inputs[0], b->inputs[1], b->n_inputs > 2 ? b->inputs[2] : -1, z,
                  ed ? b->inputs[4] : -1, ed ? b->inputs[5] : -1, p->inputs[1], p->n_inputs > 2 ? p->inputs[2] : -1};
    int y = p->outputs[0];
    ir_node *bn = &g->nodes[bi];
    if (!opt_node_retype(g, bn, "ConvNhwcMbConv", "ai.kiln") || !opt_node_set_inputs(bn, 8, ins) ||
        !fed_copy_act(bn, p, "project_activation", "project_activation_params")) {
        core_error_clear();
        return false;
    }
    opt_node_kill(g, pi);
    bn->outputs[0] = y;
    g->values[y].producer = bi;
    return true;
}

kiln_status opt_fuse_expand_dw(ir_graph *g, int *count)
{
    const char *e = getenv("KILN_FUSE_EXPAND_DW"); /* =0: off, for comparisons */
    if (e && !strcmp(e, "0")) return KILN_OK;
    opt_uses u;
    kiln_status st = opt_uses_build(g, &u);
    if (st) return st;
    for (int i = 0; i < g->n_nodes; i++) {
        if (!opt_alive(&g->nodes[i])) continue;
        if (fed_fuse(g, &u, i) || fed_fuse_project(g, &u, i)) {
            (*count)++;
            opt_uses_free(&u);
            if ((st = opt_uses_build(g, &u))) return st;
        }
    }
    opt_uses_free(&u);
    return KILN_OK;
}
