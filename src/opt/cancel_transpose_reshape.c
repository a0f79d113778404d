/* cancel_transpose_reshape.c — Transpose(Transpose(x)) becomes one Transpose (or nothing
 * when the perms compose to the identity); Reshape(Reshape(x)) becomes one Reshape when
 * the outer shape is constant and has no 0 entries (which would copy the inner result's
 * dims). The inner node stays while others read it (eliminate_dead drops it otherwise).
 *
 * Transpose -> Reshape -> Transpose, where the Reshape only splits or merges axes, becomes
 * Reshape -> one Transpose -> Reshape (Reshapes cost nothing): the chain is one permutation
 * of the axes of a finer view of x. This is what the NHWC layout leaves in a YOLO head:
 * Conv (NHWC) -> Transpose to NCHW -> Reshape [1,3,85,H,W] -> Transpose [1,3,H,W,85] is one
 * copy of 85-float runs of the NHWC output. Also run after layout_nhwc (opt_fold_transposes). */
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

/* Fine axes shared by u (the first Transpose's output shape) and r (the Reshape's): each
 * group of consecutive axes with equal products is one axis of u split into several of r,
 * several of u merged into one of r, or one axis each. ufine[a] / rfine[a]: the first fine
 * axis of each axis and the count; false when the reshape is anything else. */
typedef struct ctr_fine {
    int n;
    int64_t size[KILN_MAX_DIMS];
    int ufirst[KILN_MAX_DIMS], ucount[KILN_MAX_DIMS];
    int rfirst[KILN_MAX_DIMS], rcount[KILN_MAX_DIMS];
} ctr_fine;

static bool ctr_refine(const int64_t *u, int nu, const int64_t *r, int nr, ctr_fine *f)
{
    int i = 0, j = 0;
    f->n = 0;
    while (i < nu && j < nr) {
        if (u[i] <= 0 || r[j] <= 0) return false;
        if (u[i] == r[j]) {
            if (f->n >= KILN_MAX_DIMS) return false;
            f->ufirst[i] = f->rfirst[j] = f->n;
            f->ucount[i] = f->rcount[j] = 1;
            f->size[f->n++] = u[i];
            i++, j++;
        } else if (u[i] > r[j]) { /* u[i] splits into r[j..k) */
            int64_t p = 1;
            f->ufirst[i] = f->n;
            f->ucount[i] = 0;
            while (j < nr && p < u[i]) {
                if (r[j] <= 0 || f->n >= KILN_MAX_DIMS) return false;
                p *= r[j];
                f->rfirst[j] = f->n;
                f->rcount[j] = 1;
                f->size[f->n++] = r[j];
                f->ucount[i]++;
                j++;
            }
            if (p != u[i]) return false;
            i++;
        } else { /* u[i..k) merge into r[j] */
            int64_t p = 1;
            f->rfirst[j] = f->n;
            f->rcount[j] = 0;
            while (i < nu && p < r[j]) {
                if (u[i] <= 0 || f->n >= KILN_MAX_DIMS) return false;
                p *= u[i];
                f->ufirst[i] = f->n;
                f->ucount[i] = 1;
                f->size[f->n++] = u[i];
                f->rcount[j]++;
                i++;
            }
            if (p != r[j]) return false;
            j++;
        }
    }
    return i == nu && j == nr;
}

static int ctr_shape_const(ir_graph *g, int base, const int64_t *dims, int n)
{
    int64_t nn = n;
    core_tensor *t = core_tensor_create(KILN_DTYPE_INT64, 1, &nn);
    if (!t) return -1;
    memcpy(t->data, dims, sizeof(int64_t) * (size_t)n);
    return opt_new_const(g, g->values[base].name, "_shape", t);
}

/* Node i is the second Transpose of Transpose -> Reshape -> Transpose. */
static bool ctr_transpose_reshape_transpose(ir_graph *g, const opt_uses *u, int i)
{
    ir_node *n2 = &g->nodes[i];
    if (n2->n_inputs != 1 || n2->n_outputs != 1 || n2->inputs[0] < 0 || n2->outputs[0] < 0) return false;
    int rp = opt_producer(g, n2->inputs[0]);
    if (rp < 0 || !opt_is(&g->nodes[rp], "Reshape") || g->nodes[rp].n_inputs < 1 || opt_sole_consumer(u, n2->inputs[0]) != i)
        return false;
    int a = g->nodes[rp].inputs[0];
    int t1 = opt_producer(g, a);
    if (t1 < 0 || !opt_is(&g->nodes[t1], "Transpose") || g->nodes[t1].n_inputs != 1 || opt_sole_consumer(u, a) != rp)
        return false;
    int x = g->nodes[t1].inputs[0], y = n2->outputs[0];
    kiln_dtype dt;
    int nx, nr, ny;
    int64_t xd[KILN_MAX_DIMS], rd[KILN_MAX_DIMS], yd[KILN_MAX_DIMS], p1[KILN_MAX_DIMS], p2[KILN_MAX_DIMS];
    if (x < 0 || !opt_static_shape(g, x, &dt, &nx, xd) || !opt_static_shape(g, n2->inputs[0], &dt, &nr, rd) ||
        !opt_static_shape(g, y, &dt, &ny, yd))
        return false;
    if (ctr_perm(g, &g->nodes[t1], p1) != nx || ctr_perm(g, n2, p2) != nr || ny != nr) return false;
    int64_t ud[KILN_MAX_DIMS];
    int pinv[KILN_MAX_DIMS];
    bool seen[KILN_MAX_DIMS] = {false}, seen2[KILN_MAX_DIMS] = {false};
    for (int k = 0; k < nx; k++) {
        if (p1[k] < 0 || p1[k] >= nx || seen[p1[k]]) return false;
        seen[p1[k]] = true;
        ud[k] = xd[p1[k]];
        pinv[p1[k]] = k;
    }
    for (int k = 0; k < nr; k++) {
        if (p2[k] < 0 || p2[k] >= nr || seen2[p2[k]]) return false;
        seen2[p2[k]] = true;
    }
    ctr_fine f;
    if (!ctr_refine(ud, nx, rd, nr, &f)) return false;
    /* x viewed as fine axes: x axis d is u axis pinv[d] */
    int xpos[KILN_MAX_DIMS], nf = 0;
    int64_t xf[KILN_MAX_DIMS], of[KILN_MAX_DIMS], q[KILN_MAX_DIMS];
    for (int d = 0; d < nx; d++)
        for (int k = 0; k < f.ucount[pinv[d]]; k++) {
            int id = f.ufirst[pinv[d]] + k;
            xpos[id] = nf;
            xf[nf++] = f.size[id];
        }
    int no = 0;
    for (int k = 0; k < nr; k++)
        for (int m = 0; m < f.rcount[p2[k]]; m++) {
            int id = f.rfirst[p2[k]] + m;
            q[no] = xpos[id];
            of[no++] = f.size[id];
        }
    if (nf != f.n || no != f.n) return false;
    bool x_same = nf == nx && !memcmp(xf, xd, sizeof(int64_t) * (size_t)nx);
    bool y_same = no == ny && !memcmp(of, yd, sizeof(int64_t) * (size_t)ny);
    bool ident = true;
    for (int k = 0; k < no; k++) ident = ident && q[k] == k;
    if (ident) return false; /* a pure reshape: not this rule's business */
    /* x -> [Reshape xf] -> Transpose q -> [Reshape y] */
    int cur = x;
    if (!x_same) {
        int sv = ctr_shape_const(g, x, xf, nf), v = sv >= 0 ? opt_new_value(g, g->values[x].name, "_fine") : -1;
        int ins[2] = {x, sv};
        if (v < 0 || opt_add_node(g, g->nodes[t1].name, "Reshape", "", 2, ins, 1, &v) < 0) { core_error_clear(); return false; }
        cur = v;
    }
    int tout = y_same ? y : opt_new_value(g, g->values[y].name, "_fine");
    if (tout < 0) { core_error_clear(); return false; }
    int ti = opt_add_node(g, g->nodes[i].name, "Transpose", "", 1, &cur, 1, &tout);
    if (ti < 0 || !opt_set_attr_ints(&g->nodes[ti], "perm", q, no)) { core_error_clear(); return false; }
    if (!y_same) {
        int sv = ctr_shape_const(g, y, yd, ny);
        int ins[2] = {tout, sv};
        if (sv < 0 || opt_add_node(g, g->nodes[i].name, "Reshape", "", 2, ins, 1, &y) < 0) { core_error_clear(); return false; }
    }
    opt_node_kill(g, i);
    opt_node_kill(g, rp);
    opt_node_kill(g, t1);
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
        if (opt_is(n, "Transpose")) done = ctr_transpose(g, &u, i) || ctr_transpose_reshape_transpose(g, &u, i);
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
