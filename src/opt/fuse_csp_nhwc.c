/* fuse_csp_nhwc.c — runs after layout_nhwc: the CSP blocks of YOLOv5/v8-style models
 * (C3, C2f) split one conv's output M into halves a | b, run bottlenecks on a and rejoin
 * with Concat(a', b). In NHWC the Split and the Concat each copy the whole tensor. Instead
 * the halves stay in M's buffer:
 *
 *     a, b = Split(M)                          (gone)
 *     t = ConvNhwc(a)                          t = ConvNhwc(M, x_channel_offset = 0)
 *     a1 = Add(a, u)   (shortcut bottleneck)   M1 = ChannelUpdate(M, u, add)
 *     ... more bottlenecks on a1 ...
 *     Y = Concat(a_n, b)                       Y = M_n            (shortcut chains)
 *     Y = Concat(p, b) (p from the convs)      Y = ChannelUpdate(M, p, set)
 *
 * ChannelUpdate (ops/fused.h) works in place on its X when X dies there, which the chain
 * guarantees (each M_i is last read by the update that makes M_i+1), so a shortcut's Add
 * costs what it did and the Split and Concat copies disappear; the no-shortcut form copies p
 * once instead of the two copies of M. Conditions: a 4-D float M read only by a 2-way Split
 * on the channel axis whose first part is a (read only by the chain) and whose second part b
 * is read only by the Concat, as its second input, the Concat's output having M's shape. */
#include "opt/rewrite.h"
#include <string.h>

#define CSP_MAX_STEPS 16

typedef struct csp_step {
    int conv; /* ConvNhwc reading the current a */
    int add;  /* Add(a, u), or -1 (the chain ends in the Concat) */
    int u;    /* the Add's other input */
} csp_step;

static bool csp_is_conv(const ir_graph *g, int i, int v)
{
    const ir_node *n = &g->nodes[i];
    if (!opt_alive(n) || strcmp(n->op_type, "ConvNhwc") || !n->domain || strcmp(n->domain, "ai.kiln")) return false;
    if (n->n_inputs < 2 || n->inputs[0] != v || ir_node_attr(n, "x_channel_offset")) return false;
    for (int k = 1; k < n->n_inputs; k++) if (n->inputs[k] == v) return false;
    return opt_attr_int(n, "group", 1) == 1;
}

/* The node indices reading v (each slot once); count in *n. */
static const int *csp_readers(const opt_uses *u, int v, int *n)
{
    *n = u->start[v + 1] - u->start[v];
    return u->node + u->start[v];
}

static bool csp_fuse(ir_graph *g, const opt_uses *u, int si)
{
    const ir_node *s = &g->nodes[si];
    if (!opt_is(s, "Split") || s->n_outputs != 2 || s->n_inputs < 1 || s->inputs[0] < 0) return false;
    int m = s->inputs[0], a = s->outputs[0], b = s->outputs[1];
    kiln_dtype dt;
    int r;
    int64_t md[KILN_MAX_DIMS], ad[KILN_MAX_DIMS], yd[KILN_MAX_DIMS];
    if (a < 0 || b < 0 || !opt_static_shape(g, m, &dt, &r, md) || r != 4 || dt != KILN_DTYPE_FLOAT) return false;
    int64_t axis = opt_attr_int(s, "axis", 0);
    if (axis != 3 && axis != -1) return false;
    if (opt_sole_consumer(u, m) != si || u->pinned[a] || u->pinned[b]) return false;
    if (!opt_static_shape(g, a, &dt, &r, ad) || r != 4) return false;
    int ki = opt_sole_consumer(u, b);
    if (ki < 0) return false;
    const ir_node *k = &g->nodes[ki];
    int64_t kax = opt_attr_int(k, "axis", 0);
    if (!opt_is(k, "Concat") || k->n_inputs != 2 || k->inputs[1] != b || (kax != 3 && kax != -1) || k->n_outputs != 1 ||
        k->outputs[0] < 0 || !opt_static_shape(g, k->outputs[0], &dt, &r, yd) || r != 4 ||
        memcmp(yd, md, sizeof(int64_t) * 4))
        return false;
    /* walk the chain from a */
    csp_step steps[CSP_MAX_STEPS];
    int ns = 0, cur = a;
    bool set = false;
    for (;;) {
        int nr;
        const int *rd = csp_readers(u, cur, &nr);
        if (u->pinned[cur]) return false;
        if (nr == 1 && rd[0] == ki && k->inputs[0] == cur) break; /* Y = M_n */
        if (ns == CSP_MAX_STEPS) return false;
        if (nr == 1 && csp_is_conv(g, rd[0], cur)) { /* no shortcut: p comes from the convs */
            steps[ns++] = (csp_step){rd[0], -1, -1};
            set = true;
            break;
        }
        if (nr != 2) return false;
        int ci = csp_is_conv(g, rd[0], cur) ? rd[0] : csp_is_conv(g, rd[1], cur) ? rd[1] : -1;
        int ai = ci == rd[0] ? rd[1] : rd[0];
        if (ci < 0 || ai == ci) return false;
        const ir_node *an = &g->nodes[ai];
        if (!opt_is(an, "Add") || an->n_inputs != 2 || an->n_outputs != 1 || an->outputs[0] < 0) return false;
        int other = an->inputs[0] == cur ? an->inputs[1] : an->inputs[0];
        if (other < 0 || other == cur || !opt_same_shape(g, other, cur) || !opt_same_shape(g, an->outputs[0], cur)) return false;
        steps[ns++] = (csp_step){ci, ai, other};
        cur = an->outputs[0];
    }
    if (set) {
        int p = k->inputs[0];
        int64_t pd[KILN_MAX_DIMS];
        if (p < 0 || p == a || !opt_static_shape(g, p, &dt, &r, pd) || r != 4 || pd[3] != ad[3]) return false;
    }
    /* rewrite */
    int mcur = m;
    for (int i = 0; i < ns; i++) {
        ir_node *c = &g->nodes[steps[i].conv];
        c->inputs[0] = mcur;
        if (!opt_set_attr_int(c, "x_channel_offset", 0)) { core_error_clear(); return false; }
        if (steps[i].add < 0) continue;
        int mn = opt_new_value(g, g->values[m].name, "_csp");
        ir_node *an = &g->nodes[steps[i].add];
        int ins[2] = {mcur, steps[i].u};
        if (mn < 0 || !opt_node_retype(g, an, "ChannelUpdate", "ai.kiln") || !opt_node_set_inputs(an, 2, ins) ||
            !opt_set_attr_int(an, "offset", 0) || !opt_set_attr_string(an, "mode", "add")) {
            core_error_clear();
            return false;
        }
        an->outputs[0] = mn;
        g->values[mn].producer = steps[i].add;
        mcur = mn;
    }
    ir_node *kn = &g->nodes[ki];
    int y = kn->outputs[0];
    if (set) {
        int ins[2] = {mcur, kn->inputs[0]};
        if (!opt_node_retype(g, kn, "ChannelUpdate", "ai.kiln") || !opt_node_set_inputs(kn, 2, ins)) { core_error_clear(); return false; }
        opt_clear_attrs(kn);
        if (!opt_set_attr_int(kn, "offset", 0) || !opt_set_attr_string(kn, "mode", "set")) { core_error_clear(); return false; }
    } else if (!u->pinned[y]) {
        opt_replace_uses(g, y, mcur);
        opt_node_kill(g, ki);
    } else { /* Y is read by name: keep it, as an Identity of M_n */
        int in = mcur;
        if (!opt_node_retype(g, kn, "Identity", "") || !opt_node_set_inputs(kn, 1, &in)) { core_error_clear(); return false; }
        opt_clear_attrs(kn);
    }
    opt_node_kill(g, si);
    return true;
}

kiln_status opt_fuse_csp_nhwc(ir_graph *g, int *count)
{
    opt_uses u;
    kiln_status st = opt_uses_build(g, &u);
    if (st) return st;
    for (int i = 0; i < g->n_nodes; i++) {
        if (!opt_alive(&g->nodes[i])) continue;
        if (csp_fuse(g, &u, i)) {
            (*count)++;
            opt_uses_free(&u);
            if ((st = opt_uses_build(g, &u))) return st;
        }
    }
    opt_uses_free(&u);
    return KILN_OK;
}
