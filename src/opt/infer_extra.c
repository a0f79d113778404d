/* infer_extra.c — type rules the passes need beyond ir_graph_infer: ConstantOfShape,
 * Slice, Resize/Upsample, Split, Expand, Where, Pad, Tile, Range and the ai.kiln fused ops.
 * One unknown type early in a graph (a ConstantOfShape feeding an Add) otherwise hides the
 * types of everything after it. Like ir_graph_infer, only unknown types are filled.
 * (These rules belong in ir/infer.c; they live here until that file takes them.) */
#include "opt/rewrite.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct ix_shape {
    int ndim;
    int64_t d[KILN_MAX_DIMS];
} ix_shape;

static bool ix_get(const ir_graph *g, int v, kiln_dtype *dt, ix_shape *s)
{
    return opt_value_rank(g, v, dt, &s->ndim, s->d);
}

/* Fill v's type when unknown (rank unknown or dtype undefined). Returns true on change. */
static bool ix_set(ir_graph *g, int v, kiln_dtype dt, const ix_shape *s)
{
    if (v < 0) return false;
    ir_type *t = &g->values[v].type;
    if (g->values[v].constant) return false;
    if (t->kind != IR_TYPE_UNKNOWN && t->kind != IR_TYPE_TENSOR) return false;
    bool have_rank = t->kind == IR_TYPE_TENSOR && t->ndim >= 0;
    bool have_dt = t->kind == IR_TYPE_TENSOR && t->dtype != KILN_DTYPE_UNDEFINED;
    if ((have_rank || !s) && (have_dt || dt == KILN_DTYPE_UNDEFINED)) return false;
    if (have_rank || !s) {
        t->kind = IR_TYPE_TENSOR;
        t->dtype = dt;
        return true;
    }
    kiln_dtype keep = have_dt ? t->dtype : dt;
    ir_type_free(t);
    t->kind = IR_TYPE_TENSOR;
    t->dtype = keep;
    t->ndim = s->ndim;
    if (s->ndim > 0) {
        t->dims = calloc((size_t)s->ndim, sizeof *t->dims);
        if (!t->dims) { t->ndim = -1; return false; }
        for (int i = 0; i < s->ndim; i++) t->dims[i].value = s->d[i] >= 0 ? s->d[i] : -1;
    }
    return true;
}

static bool ix_broadcast(const ix_shape *a, const ix_shape *b, ix_shape *o)
{
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    o->ndim = n;
    for (int i = 0; i < n; i++) {
        int ia = i - (n - a->ndim), ib = i - (n - b->ndim);
        int64_t x = ia < 0 ? 1 : a->d[ia], y = ib < 0 ? 1 : b->d[ib];
        if (x == 1) o->d[i] = y;
        else if (y == 1) o->d[i] = x;
        else if (x >= 0 && y >= 0 && x != y) return false;
        else o->d[i] = x >= 0 ? x : y;
    }
    return true;
}

static int ix_opset(const ir_graph *g, const ir_node *n) { return n->opset > 0 ? n->opset : (int)ir_graph_opset(g, ""); }

static bool ix_slice(const ir_graph *g, const ir_node *n, const ix_shape *x, ix_shape *o)
{
    *o = *x;
    int64_t st[KILN_MAX_DIMS], en[KILN_MAX_DIMS], ax[KILN_MAX_DIMS], sp[KILN_MAX_DIMS];
    int64_t ns = -1, ne = -1, na = -1, nsp = -1;
    if (ix_opset(g, n) < 10) {
        ns = opt_attr_ints(n, "starts", st, KILN_MAX_DIMS);
        ne = opt_attr_ints(n, "ends", en, KILN_MAX_DIMS);
        na = opt_attr_ints(n, "axes", ax, KILN_MAX_DIMS);
    } else if (n->n_inputs >= 3) {
        ns = opt_const_ints(g, n->inputs[1], st, KILN_MAX_DIMS);
        ne = opt_const_ints(g, n->inputs[2], en, KILN_MAX_DIMS);
        if (n->n_inputs > 3 && n->inputs[3] >= 0) { na = opt_const_ints(g, n->inputs[3], ax, KILN_MAX_DIMS); if (na < 0) ns = -1; }
        if (n->n_inputs > 4 && n->inputs[4] >= 0) { nsp = opt_const_ints(g, n->inputs[4], sp, KILN_MAX_DIMS); if (nsp < 0) ns = -1; }
    }
    if (ns < 0 || ne != ns || (na >= 0 && na != ns) || (nsp >= 0 && nsp != ns)) {
        /* Which axes are sliced is unknown: every dim may change. */
        if (ix_opset(g, n) >= 10 && n->n_inputs > 3 && n->inputs[3] >= 0 && (na = opt_const_ints(g, n->inputs[3], ax, KILN_MAX_DIMS)) >= 0) {
            for (int64_t i = 0; i < na; i++) { int64_t a = ax[i] < 0 ? ax[i] + x->ndim : ax[i]; if (a >= 0 && a < x->ndim) o->d[a] = -1; }
        } else for (int i = 0; i < x->ndim; i++) o->d[i] = -1;
        return true;
    }
    for (int64_t i = 0; i < ns; i++) {
        int64_t a = na >= 0 ? ax[i] : i;
        if (a < 0) a += x->ndim;
        if (a < 0 || a >= x->ndim) return false;
        int64_t dim = x->d[a], step = nsp >= 0 ? sp[i] : 1;
        if (dim < 0 || step == 0) { o->d[a] = -1; continue; }
        int64_t s = st[i], e = en[i];
        if (s < 0) s += dim;
        if (e < 0) e += dim;
        if (step > 0) {
            s = s < 0 ? 0 : s > dim ? dim : s;
            e = e < 0 ? 0 : e > dim ? dim : e;
            o->d[a] = e > s ? (e - s - 1) / step + 1 : 0; /* no overflow for huge steps */
        } else {
            s = s < 0 ? -1 : s > dim - 1 ? dim - 1 : s;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            uint64_t m = (uint64_t)(-(step + 1)) + 1; /* |step| without overflow at INT64_MIN */
            o->d[a] = s > e ? (int64_t)((uint64_t)(s - e - 1) / m) + 1 : 0;
        }
    }
    return true;
}

static bool ix_node(ir_graph *g, const ir_node *n)
{
    const char *op = n->op_type;
    bool kiln = n->domain && !strcmp(n->domain, "ai.kiln");
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx") && !kiln) return false;
    if (n->n_outputs < 1 || n->outputs[0] < 0) return false;
    kiln_dtype dt = KILN_DTYPE_UNDEFINED, dt1;
    ix_shape x, b, o;
    int in0 = n->n_inputs > 0 ? n->inputs[0] : -1;
    bool h0 = in0 >= 0 && ix_get(g, in0, &dt, &x);
    if (kiln) {
        if (!h0) return false;
        if (!strcmp(op, "ElementwiseChain") || !strcmp(op, "LayerNormalization")) return ix_set(g, n->outputs[0], dt, &x);
        if (!strcmp(op, "FusedConv")) {
            o = x;
            for (int i = 1; i < o.ndim; i++) o.d[i] = -1;
            if (ix_get(g, n->inputs[1], &dt1, &b) && b.ndim == x.ndim && x.ndim >= 1) o.d[1] = b.d[0];
            return ix_set(g, n->outputs[0], dt, &o);
        }
        return ix_set(g, n->outputs[0], dt, NULL);
    }
    if (!strcmp(op, "ConstantOfShape")) {
        const ir_attr *a = ir_node_attr(n, "value");
        kiln_dtype odt = a && a->t ? a->t->dtype : KILN_DTYPE_FLOAT;
        int64_t sh[KILN_MAX_DIMS];
        int64_t ns = opt_const_ints(g, in0, sh, KILN_MAX_DIMS);
        if (ns >= 0) { o.ndim = (int)ns; memcpy(o.d, sh, sizeof(int64_t) * (size_t)ns); return ix_set(g, n->outputs[0], odt, &o); }
        if (h0 && x.ndim == 1 && x.d[0] >= 0 && x.d[0] <= KILN_MAX_DIMS) {
            o.ndim = (int)x.d[0];
            for (int i = 0; i < o.ndim; i++) o.d[i] = -1;
            return ix_set(g, n->outputs[0], odt, &o);
        }
        return ix_set(g, n->outputs[0], odt, NULL);
    }
    if (!strcmp(op, "Range")) {
        o.ndim = 1;
        o.d[0] = -1;
        return ix_set(g, n->outputs[0], dt, &o);
    }
    if (!h0) return false;
    if (!strcmp(op, "Reshape") && n->n_inputs > 1) {
        /* Shape computed at run time: its length is the rank; entries that are constant
         * (through a Concat of pieces) and positive are dims. */
        if (!ix_get(g, n->inputs[1], &dt1, &b) || b.ndim != 1 || b.d[0] < 0 || b.d[0] > KILN_MAX_DIMS) return ix_set(g, n->outputs[0], dt, NULL);
        o.ndim = (int)b.d[0];
        for (int i = 0; i < o.ndim; i++) o.d[i] = -1;
        int p = opt_producer(g, n->inputs[1]);
        if (p >= 0 && opt_is(&g->nodes[p], "Concat") && g->nodes[p].n_inputs == o.ndim) {
            for (int i = 0; i < o.ndim; i++) {
                double v;
                if (opt_const_scalar(g, g->nodes[p].inputs[i], &v) && v > 0) o.d[i] = (int64_t)v;
            }
        }
        return ix_set(g, n->outputs[0], dt, &o);
    }
    if (!strcmp(op, "Slice")) return ix_slice(g, n, &x, &o) && ix_set(g, n->outputs[0], dt, &o);
    if (!strcmp(op, "Resize") || !strcmp(op, "Upsample")) {
        o = x;
        int64_t sz[KILN_MAX_DIMS];
        int si = !strcmp(op, "Upsample") || ix_opset(g, n) < 11 ? 1 : 2;
        const core_tensor *sc = n->n_inputs > si ? opt_const(g, n->inputs[si]) : NULL;
        int64_t nsz = !strcmp(op, "Resize") && n->n_inputs > 3 ? opt_const_ints(g, n->inputs[3], sz, KILN_MAX_DIMS) : -1;
        bool axes = ir_node_attr(n, "axes") != NULL;
        if (nsz == x.ndim && !axes) memcpy(o.d, sz, sizeof(int64_t) * (size_t)nsz);
        else if (sc && core_dtype_is_float(sc->dtype) && sc->numel == x.ndim && !axes) {
            for (int i = 0; i < x.ndim; i++)
                o.d[i] = x.d[i] < 0 ? -1 : (int64_t)floor((double)x.d[i] * core_load_f64(sc->dtype, sc->data, i));
        } else for (int i = 0; i < x.ndim; i++) o.d[i] = -1;
        return ix_set(g, n->outputs[0], dt, &o);
    }
    if (!strcmp(op, "Split")) {
        int64_t axis = opt_attr_int(n, "axis", 0);
        if (axis < 0) axis += x.ndim;
        if (axis < 0 || axis >= x.ndim) return false;
        int64_t sp[KILN_MAX_DIMS * 4];
        int64_t nsp = ix_opset(g, n) < 13 ? opt_attr_ints(n, "split", sp, KILN_MAX_DIMS * 4)
                                          : n->n_inputs > 1 && n->inputs[1] >= 0 ? opt_const_ints(g, n->inputs[1], sp, KILN_MAX_DIMS * 4) : -1;
        bool changed = false;
        for (int k = 0; k < n->n_outputs; k++) {
            o = x;
            if (nsp == n->n_outputs) o.d[axis] = sp[k];
            else if (nsp < 0 && x.d[axis] >= 0 && n->n_outputs > 0 && x.d[axis] % n->n_outputs == 0) o.d[axis] = x.d[axis] / n->n_outputs;
            else o.d[axis] = -1;
            changed |= ix_set(g, n->outputs[k], dt, &o);
        }
        return changed;
    }
    if (!strcmp(op, "Expand")) {
        int64_t sh[KILN_MAX_DIMS];
        int64_t ns = opt_const_ints(g, n->n_inputs > 1 ? n->inputs[1] : -1, sh, KILN_MAX_DIMS);
        if (ns < 0) {
            if (n->n_inputs > 1 && ix_get(g, n->inputs[1], &dt1, &b) && b.ndim == 1 && b.d[0] >= 0 && b.d[0] <= KILN_MAX_DIMS) {
                o.ndim = (int)(b.d[0] > x.ndim ? b.d[0] : x.ndim);
                for (int i = 0; i < o.ndim; i++) o.d[i] = -1;
                return ix_set(g, n->outputs[0], dt, &o);
            }
            return false;
        }
        b.ndim = (int)ns;
        for (int i = 0; i < ns; i++) b.d[i] = sh[i];
        return ix_broadcast(&x, &b, &o) && ix_set(g, n->outputs[0], dt, &o);
    }
    if (!strcmp(op, "Where")) {
        ix_shape c;
        kiln_dtype d1;
        if (n->n_inputs != 3 || !ix_get(g, n->inputs[1], &d1, &b) || !ix_get(g, n->inputs[2], &dt1, &c)) return false;
        ix_shape t;
        return ix_broadcast(&x, &b, &t) && ix_broadcast(&t, &c, &o) && ix_set(g, n->outputs[0], d1, &o);
    }
    if (!strcmp(op, "Pad") || !strcmp(op, "Tile")) {
        o = x;
        int64_t p[2 * KILN_MAX_DIMS];
        bool pad = !strcmp(op, "Pad");
        int64_t np = pad && ix_opset(g, n) < 11 ? opt_attr_ints(n, "pads", p, 2 * KILN_MAX_DIMS)
                                                : n->n_inputs > 1 ? opt_const_ints(g, n->inputs[1], p, 2 * KILN_MAX_DIMS) : -1;
        bool axes = pad && n->n_inputs > 3 && n->inputs[3] >= 0;
        for (int i = 0; i < x.ndim; i++) {
            if (axes || x.d[i] < 0 || np != (pad ? 2 * x.ndim : x.ndim)) o.d[i] = -1;
            else o.d[i] = pad ? x.d[i] + p[i] + p[i + x.ndim] : x.d[i] * p[i];
        }
        return ix_set(g, n->outputs[0], dt, &o);
    }
    return false;
}

/* Alternate ir_graph_infer with the rules above until nothing changes. */
kiln_status opt_infer_types(ir_graph *g)
{
    /* each round carries types through at least one more node only these rules know (a
     * YOLO backbone has 8 Splits in a row): run to the fixed point, bounded by the graph */
    for (int round = 0; round <= g->n_nodes; round++) {
        ir_graph_infer(g);
        bool changed = false;
        for (int i = 0; i < g->n_nodes; i++)
            if (opt_alive(&g->nodes[i])) changed |= ix_node(g, &g->nodes[i]);
        if (!changed) break;
    }
    return KILN_OK;
}
