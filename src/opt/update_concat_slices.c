/* update_concat_slices.c — a Concat along the last axis one of whose inputs is a Slice of
 * a tensor T, taken at exactly the offset where the Concat puts it, with T of the Concat's
 * own shape, becomes ChannelUpdate(T, the other inputs) (ops/fused.h): the other inputs
 * overwrite their channels of T, in place when T dies there. This is the YOLOv5 detection
 * head: y = sigmoid(...) [1,3,H,W,85]; Concat(f(y[..., 0:2]), g(y[..., 2:4]), y[..., 4:85])
 * copied 81 of 85 channels into a Slice and then all 85 into the Concat; now 4 channels
 * are written. Only when every reader of T is a Slice (they all run before the update, so
 * T can die at it); results are exactly equal. */
#include "opt/rewrite.h"
#include "ops/fused.h"
#include <string.h>

/* Slice node si takes [*s, *e) of the last axis of its input (rank r, last dim n), step 1. */
static bool ucs_slice_last(const ir_graph *g, int si, int r, int64_t n, int64_t *s, int64_t *e)
{
    const ir_node *sl = &g->nodes[si];
    if (!opt_is(sl, "Slice") || sl->n_inputs < 3 || sl->n_outputs != 1) return false;
    int64_t st[2], en[2], ax[2], sp[2];
    if (opt_const_ints(g, sl->inputs[1], st, 2) != 1 || opt_const_ints(g, sl->inputs[2], en, 2) != 1) return false;
    if (sl->n_inputs > 3 && sl->inputs[3] >= 0) {
        if (opt_const_ints(g, sl->inputs[3], ax, 2) != 1 || (ax[0] != r - 1 && ax[0] != -1)) return false;
    } else if (r != 1) return false;
    if (sl->n_inputs > 4 && sl->inputs[4] >= 0 && (opt_const_ints(g, sl->inputs[4], sp, 2) != 1 || sp[0] != 1)) return false;
    int64_t a = st[0] < 0 ? st[0] + n : st[0], b = en[0] < 0 ? en[0] + n : en[0];
    if (a < 0) a = 0;
    if (a > n) a = n;
    if (b > n) b = n;
    if (b < a) b = a;
    *s = a;
    *e = b;
    return true;
}

static bool ucs_rewrite(ir_graph *g, const opt_uses *u, int ki)
{
    const ir_node *k = &g->nodes[ki];
    if (!opt_is(k, "Concat") || k->n_outputs != 1 || k->outputs[0] < 0 || k->n_inputs < 2 || k->n_inputs > FUSED_CU_MAX + 1)
        return false;
    kiln_dtype dt;
    int r, ri;
    int64_t yd[KILN_MAX_DIMS], d[KILN_MAX_DIMS];
    if (!opt_static_shape(g, k->outputs[0], &dt, &r, yd) || dt != KILN_DTYPE_FLOAT || r < 1) return false;
    int64_t axis = opt_attr_int(k, "axis", 0);
    if (axis != r - 1 && axis != -1) return false;
    int64_t off[FUSED_CU_MAX + 1], o = 0;
    int base = -1, t = -1;
    int64_t best = 0;
    for (int i = 0; i < k->n_inputs; i++) {
        int v = k->inputs[i];
        if (v < 0 || !opt_static_shape(g, v, &dt, &ri, d) || ri != r) return false;
        off[i] = o;
        o += d[r - 1];
        int p = opt_producer(g, v), src;
        int64_t s, e;
        if (p < 0 || opt_sole_consumer(u, v) != ki || (src = g->nodes[p].inputs[0]) < 0) continue;
        if (!opt_static_shape(g, src, &dt, &ri, d) || ri != r || memcmp(d, yd, sizeof(int64_t) * (size_t)r)) continue;
        if (!ucs_slice_last(g, p, r, d[r - 1], &s, &e) || s != off[i] || e - s != o - off[i]) continue;
        if (e - s > best) { best = e - s; base = i; t = src; }
    }
    if (base < 0 || o != yd[r - 1] || u->pinned[t]) return false;
    /* every reader of T is a Slice */
    for (int j = u->start[t]; j < u->start[t + 1]; j++)
        if (!opt_is(&g->nodes[u->node[j]], "Slice") || g->nodes[u->node[j]].inputs[0] != t) return false;
    int ins[FUSED_CU_MAX + 1], n = 0, slice = opt_producer(g, k->inputs[base]);
    int64_t offs[FUSED_CU_MAX];
    ins[n++] = t;
    for (int i = 0; i < k->n_inputs; i++)
        if (i != base) { offs[n - 1] = off[i]; ins[n++] = k->inputs[i]; }
    ir_node *kn = &g->nodes[ki];
    if (!opt_node_retype(g, kn, "ChannelUpdate", "ai.kiln") || !opt_node_set_inputs(kn, n, ins)) { core_error_clear(); return false; }
    opt_clear_attrs(kn);
    if (!opt_set_attr_ints(kn, "offsets", offs, n - 1) || !opt_set_attr_string(kn, "mode", "set")) { core_error_clear(); return false; }
    opt_node_kill(g, slice);
    return true;
}

kiln_status opt_update_concat_slices(ir_graph *g, int *count)
{
    opt_uses u;
    kiln_status st = opt_uses_build(g, &u);
    if (st) return st;
    for (int i = 0; i < g->n_nodes; i++) {
        if (!opt_alive(&g->nodes[i])) continue;
        if (ucs_rewrite(g, &u, i)) {
            (*count)++;
            opt_uses_free(&u);
            if ((st = opt_uses_build(g, &u))) return st;
        }
    }
    opt_uses_free(&u);
    return KILN_OK;
}
