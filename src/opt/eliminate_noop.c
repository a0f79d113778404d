/* eliminate_noop.c — removes nodes that return their input unchanged: Identity, inference
 * Dropout, Cast to the same type, Reshape/Expand to the same static shape, all-zero
 * constant Pad, identity Transpose, full Slice, single-input Concat, and Squeeze/Unsqueeze
 * pairs that cancel. Consumers are rewired to the input (opt_bypass keeps output names). */
#include "opt/rewrite.h"
#include <stdlib.h>
#include <string.h>

static int noop_opset(const ir_graph *g, const ir_node *n)
{
    return n->opset > 0 ? n->opset : (int)ir_graph_opset(g, "");
}

/* Axes of Squeeze/Unsqueeze node n (attribute before opset 13, input after). */
static int64_t noop_axes(const ir_graph *g, const ir_node *n, int64_t *ax)
{
    if (noop_opset(g, n) < 13) return opt_attr_ints(n, "axes", ax, KILN_MAX_DIMS);
    if (n->n_inputs < 2 || n->inputs[1] < 0) return -1;
    return opt_const_ints(g, n->inputs[1], ax, KILN_MAX_DIMS);
}

/* Normalize axes against rank r into a sorted bitmask; false when invalid or repeated. */
static bool noop_axis_mask(const int64_t *ax, int64_t na, int r, uint32_t *mask)
{
    *mask = 0;
    if (na < 1 || r > 31) return false;
    for (int64_t i = 0; i < na; i++) {
        int64_t a = ax[i] < 0 ? ax[i] + r : ax[i];
        if (a < 0 || a >= r || (*mask & (1u << a))) return false;
        *mask |= 1u << a;
    }
    return true;
}

/* Squeeze(Unsqueeze(x, a), a) or Unsqueeze(Squeeze(x, a), a): the value x, else -1. */
static int noop_squeeze_pair(const ir_graph *g, const ir_node *n)
{
    bool sq = opt_is(n, "Squeeze");
    if (n->n_inputs < 1) return -1;
    int p = opt_producer(g, n->inputs[0]);
    if (p < 0) return -1;
    const ir_node *pn = &g->nodes[p];
    if (!opt_is(pn, sq ? "Unsqueeze" : "Squeeze") || pn->n_inputs < 1 || pn->inputs[0] < 0) return -1;
    int x = pn->inputs[0];
    kiln_dtype dt;
    int r;
    int64_t dims[KILN_MAX_DIMS], a1[KILN_MAX_DIMS], a2[KILN_MAX_DIMS];
    if (!opt_value_rank(g, x, &dt, &r, dims)) return -1;
    int64_t n1 = noop_axes(g, pn, a1), n2 = noop_axes(g, n, a2);
    if (n1 < 1 || n2 != n1) return -1;
    /* Both axis lists refer to the larger rank (Unsqueeze output / Squeeze input). */
    int big = sq ? r + (int)n1 : r;
    uint32_t m1, m2;
    if (!noop_axis_mask(a1, n1, big, &m1) || !noop_axis_mask(a2, n2, big, &m2) || m1 != m2) return -1;
    return x;
}

static bool noop_reshape(const ir_graph *g, const ir_node *n)
{
    kiln_dtype dt;
    int r;
    int64_t d[KILN_MAX_DIMS], sh[KILN_MAX_DIMS];
    if (n->n_inputs < 2 || !opt_static_shape(g, n->inputs[0], &dt, &r, d)) return false;
    int64_t ns = opt_const_ints(g, n->inputs[1], sh, KILN_MAX_DIMS);
    if (ns != r) return false;
    bool allowzero = opt_attr_int(n, "allowzero", 0) != 0;
    int64_t total = 1, known = 1;
    int neg = -1;
    for (int i = 0; i < r; i++) total *= d[i];
    for (int i = 0; i < r; i++) {
        int64_t v = sh[i];
        if (v == 0 && !allowzero) v = d[i];
        if (v == -1) { if (neg >= 0) return false; neg = i; continue; }
        if (v != d[i]) return false;
        known *= v;
    }
    if (neg >= 0) return known > 0 && total / known == d[neg] && total % known == 0;
    return true;
}

static bool noop_expand(const ir_graph *g, const ir_node *n)
{
    kiln_dtype dt;
    int r;
    int64_t d[KILN_MAX_DIMS], sh[KILN_MAX_DIMS];
    if (n->n_inputs < 2 || !opt_value_rank(g, n->inputs[0], &dt, &r, d)) return false;
    int64_t ns = opt_const_ints(g, n->inputs[1], sh, KILN_MAX_DIMS);
    if (ns < 0 || ns > r) return false;
    for (int64_t i = 0; i < ns; i++) {
        int64_t v = sh[i], x = d[r - ns + i];
        if (v != 1 && v != x) return false;
        if (v != 1 && x < 0) return false;
    }
    return true;
}

static bool noop_pad(const ir_graph *g, const ir_node *n)
{
    if (strcmp(opt_attr_string(n, "mode", "constant"), "constant")) return false;
    int64_t p[2 * KILN_MAX_DIMS];
    int64_t np;
    if (noop_opset(g, n) < 11) {
        np = opt_attr_ints(n, "pads", p, 2 * KILN_MAX_DIMS);
        if (np < 0) np = opt_attr_ints(n, "paddings", p, 2 * KILN_MAX_DIMS);
    } else np = n->n_inputs > 1 ? opt_const_ints(g, n->inputs[1], p, 2 * KILN_MAX_DIMS) : -1;
    if (np < 0) return false;
    for (int64_t i = 0; i < np; i++) if (p[i]) return false;
    return true;
}

static bool noop_transpose(const ir_graph *g, const ir_node *n)
{
    int64_t perm[KILN_MAX_DIMS];
    int64_t np = opt_attr_ints(n, "perm", perm, KILN_MAX_DIMS);
    if (np < 0) {
        kiln_dtype dt;
        int r;
        int64_t d[KILN_MAX_DIMS];
        return opt_value_rank(g, n->inputs[0], &dt, &r, d) && r <= 1;
    }
    for (int64_t i = 0; i < np; i++) if (perm[i] != i) return false;
    return true;
}

static bool noop_slice(const ir_graph *g, const ir_node *n)
{
    kiln_dtype dt;
    int r;
    int64_t d[KILN_MAX_DIMS], st[KILN_MAX_DIMS], en[KILN_MAX_DIMS], ax[KILN_MAX_DIMS], sp[KILN_MAX_DIMS];
    if (!opt_value_rank(g, n->inputs[0], &dt, &r, d)) return false;
    int64_t ns, ne, na = -1, nsp = -1;
    if (noop_opset(g, n) < 10) {
        ns = opt_attr_ints(n, "starts", st, KILN_MAX_DIMS);
        ne = opt_attr_ints(n, "ends", en, KILN_MAX_DIMS);
        na = opt_attr_ints(n, "axes", ax, KILN_MAX_DIMS);
    } else {
        if (n->n_inputs < 3) return false;
        ns = opt_const_ints(g, n->inputs[1], st, KILN_MAX_DIMS);
        ne = opt_const_ints(g, n->inputs[2], en, KILN_MAX_DIMS);
        if (n->n_inputs > 3 && n->inputs[3] >= 0 && (na = opt_const_ints(g, n->inputs[3], ax, KILN_MAX_DIMS)) < 0) return false;
        if (n->n_inputs > 4 && n->inputs[4] >= 0 && (nsp = opt_const_ints(g, n->inputs[4], sp, KILN_MAX_DIMS)) < 0) return false;
    }
    if (ns < 0 || ns != ne || (na >= 0 && na != ns) || (nsp >= 0 && nsp != ns)) return false;
    for (int64_t i = 0; i < ns; i++) {
        int64_t a = na >= 0 ? ax[i] : i;
        if (a < 0) a += r;
        if (a < 0 || a >= r) return false;
        if (nsp >= 0 && sp[i] != 1) return false;
        int64_t dim = d[a], s = st[i], e = en[i];
        if (dim < 0) {
            if (s != 0 || e < ((int64_t)1 << 31) - 1) return false; /* 0 .. "end" whatever the size */
            continue;
        }
        if (s < 0) s += dim;
        if (s < 0) s = 0;
        if (e < 0) e += dim;
        if (s != 0 || e < dim) return false;
    }
    return true;
}

static bool noop_dropout(const ir_graph *g, const opt_uses *u, const ir_node *n)
{
    for (int k = 1; k < n->n_outputs; k++) {
        int m = n->outputs[k];
        if (m >= 0 && (u->pinned[m] || u->count[m] > 0)) return false;
    }
    if (noop_opset(g, n) < 12) return true; /* kiln runs these for inference */
    if (n->n_inputs > 2 && n->inputs[2] >= 0) {
        double t;
        if (!opt_const_scalar(g, n->inputs[2], &t) || t != 0) return false;
    }
    return true;
}

kiln_status opt_eliminate_noop(ir_graph *g, int *count)
{
    opt_uses u;
    kiln_status st = opt_uses_build(g, &u);
    if (st) return st;
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *n = &g->nodes[i];
        if (!opt_alive(n) || (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))) continue;
        if (n->n_inputs < 1 || n->inputs[0] < 0 || n->n_outputs < 1 || n->outputs[0] < 0) continue;
        int x = n->inputs[0], y = n->outputs[0];
        const char *op = n->op_type;
        bool noop = false;
        if (!strcmp(op, "Dropout")) noop = noop_dropout(g, &u, n);
        else if (n->n_outputs != 1) continue;
        else if (!strcmp(op, "Identity")) {
            noop = g->values[x].type.kind == g->values[y].type.kind || g->values[y].type.kind == IR_TYPE_UNKNOWN;
        } else if (!strcmp(op, "Cast")) {
            kiln_dtype dt;
            int r;
            int64_t d[KILN_MAX_DIMS];
            noop = opt_value_rank(g, x, &dt, &r, d) && dt != KILN_DTYPE_UNDEFINED && dt == (kiln_dtype)opt_attr_int(n, "to", -1);
        } else if (!strcmp(op, "Reshape")) noop = noop_reshape(g, n);
        else if (!strcmp(op, "Expand")) noop = noop_expand(g, n);
        else if (!strcmp(op, "Pad")) noop = noop_pad(g, n);
        else if (!strcmp(op, "Transpose")) noop = noop_transpose(g, n);
        else if (!strcmp(op, "Slice")) noop = noop_slice(g, n);
        else if (!strcmp(op, "Concat")) noop = n->n_inputs == 1;
        else if (!strcmp(op, "Squeeze") || !strcmp(op, "Unsqueeze")) {
            int src = noop_squeeze_pair(g, n);
            if (src >= 0) { x = src; noop = true; }
        }
        if (!noop) continue;
        if (opt_bypass(g, &u, i, x, y)) {
            (*count)++;
            opt_uses_free(&u);
            if ((st = opt_uses_build(g, &u))) return st;
        }
    }
    opt_uses_free(&u);
    return KILN_OK;
}
