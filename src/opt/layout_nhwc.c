/* layout_nhwc.c — turns the convolution regions of a graph into the channels-last (NHWC)
 * layout the fast CPU kernels prefer (src/cpu/nhwc.h).
 *
 * Every 4-D float Conv / FusedConv becomes an ai.kiln ConvNhwc; pooling, global pooling,
 * elementwise ops, Concat, Resize and Split whose 4-D input already has an NHWC twin follow
 * (MaxPoolNhwc / AveragePoolNhwc / Global*PoolNhwc, or the same standard op on NHWC tensors
 * with the axis / scales / broadcast constants permuted). A converted node writes a new
 * NHWC value; the original NCHW value is then produced by a Transpose(0,3,1,2) of it, which
 * dies unless something outside the region (an unconverted op, a graph output, a subgraph)
 * reads it. A region's inputs get one Transpose(0,2,3,1) each, shared by all readers. So
 * layout conversions happen only at the edges of a region.
 *
 * Runs once after the fusion passes (it must see FusedConv, not Conv + Relu); KILN_LAYOUT=nchw
 * in the environment (or opt_set_layout) switches it off. */
#include "opt/rewrite.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ln_state = -1; /* -1: not read from the environment; 1 on, 0 off */

void opt_set_layout_nhwc(bool on) { __atomic_store_n(&ln_state, on ? 1 : 0, __ATOMIC_RELAXED); }

bool opt_layout_nhwc_enabled(void)
{
    int s = __atomic_load_n(&ln_state, __ATOMIC_RELAXED);
    if (s < 0) {
        const char *e = getenv("KILN_LAYOUT");
        s = e && !strcmp(e, "nchw") ? 0 : 1;
        __atomic_store_n(&ln_state, s, __ATOMIC_RELAXED);
    }
    return s == 1;
}

static const int64_t ln_to_nhwc[4] = {0, 2, 3, 1};
static const int64_t ln_to_nchw[4] = {0, 3, 1, 2};

typedef struct ln_ctx {
    ir_graph *g;
    int *twin; /* NCHW value -> its NHWC twin, -1 */
    int cap;
    int rewrites;
} ln_ctx;

static bool ln_grow(ln_ctx *c)
{
    if (c->g->n_values <= c->cap) return true;
    int cap = c->g->n_values * 2 + 16;
    int *t = realloc(c->twin, sizeof(int) * (size_t)cap);
    if (!t) { core_oom(); return false; }
    for (int i = c->cap; i < cap; i++) t[i] = -1;
    c->twin = t;
    c->cap = cap;
    return true;
}

static int ln_twin(const ln_ctx *c, int v) { return v >= 0 && v < c->cap ? c->twin[v] : -1; }

static bool ln_is_rank4_float(const ir_graph *g, int v)
{
    kiln_dtype dt;
    int r;
    int64_t d[KILN_MAX_DIMS];
    return v >= 0 && opt_value_rank(g, v, &dt, &r, d) && r == 4 && dt == KILN_DTYPE_FLOAT;
}

static int ln_rank(const ir_graph *g, int v)
{
    kiln_dtype dt;
    int r;
    int64_t d[KILN_MAX_DIMS];
    return v >= 0 && opt_value_rank(g, v, &dt, &r, d) ? r : -1;
}

/* A Transpose node in -> out with perm; false on OOM. */
static bool ln_add_transpose(ir_graph *g, const char *base, int in, int out, const int64_t *perm)
{
    char name[320];
    snprintf(name, sizeof name, "%.280s_layout", base && *base ? base : "t");
    int i = opt_add_node(g, name, "Transpose", "", 1, &in, 1, &out);
    if (i < 0) return false;
    return opt_set_attr_ints(&g->nodes[i], "perm", perm, 4);
}

/* The NHWC twin of a 4-D value, made by a Transpose when it has none yet; -1 on OOM. */
static int ln_get_nhwc(ln_ctx *c, int v)
{
    int t = ln_twin(c, v);
    if (t >= 0) return t;
    const char *nm = c->g->values[v].name;
    t = opt_new_value(c->g, nm, "_nhwc");
    if (t < 0 || !ln_grow(c)) return -1;
    if (!ln_add_transpose(c->g, nm, v, t, ln_to_nhwc)) return -1;
    c->twin[v] = t;
    return t;
}

/* A constant operand of a 4-D elementwise op, permuted to broadcast the same way against
 * NHWC tensors: left-padded to rank 4, then transposed. -1 on OOM or an odd constant. */
static int ln_permuted_const(ln_ctx *c, int v)
{
    const core_tensor *t = opt_const(c->g, v);
    if (!t || t->ndim > 4) return -1;
    size_t es = core_dtype_size(t->dtype);
    if (es == 0 || t->dtype == KILN_DTYPE_STRING) return -1;
    if (t->numel <= 1) return v; /* scalars broadcast in any layout */
    int64_t d4[4] = {1, 1, 1, 1}, nd[4];
    for (int i = 0; i < t->ndim; i++) d4[4 - t->ndim + i] = t->dims[i];
    for (int i = 0; i < 4; i++) nd[i] = d4[ln_to_nhwc[i]];
    core_tensor *r = core_tensor_create(t->dtype, 4, nd);
    if (!r) return -1;
    /* r[n][h][w][ch] = t[n][ch][h][w] */
    const char *src = t->data;
    char *dst = r->data;
    int64_t i = 0;
    for (int64_t n = 0; n < nd[0]; n++)
        for (int64_t h = 0; h < nd[1]; h++)
            for (int64_t w = 0; w < nd[2]; w++)
                for (int64_t ch = 0; ch < nd[3]; ch++, i++) {
                    int64_t s = ((n * d4[1] + ch) * d4[2] + h) * d4[3] + w;
                    memcpy(dst + (size_t)i * es, src + (size_t)s * es, es);
                }
    return opt_new_const(c->g, c->g->values[v].name, "_nhwc", r);
}

/* Node i's outputs become NHWC values; the originals are rebuilt by Transposes. */
static bool ln_convert_outputs(ln_ctx *c, int i)
{
    int nout = c->g->nodes[i].n_outputs;
    for (int k = 0; k < nout; k++) {
        int o = c->g->nodes[i].outputs[k];
        if (o < 0) continue;
        int t = opt_new_value(c->g, c->g->values[o].name, "_nhwc");
        if (t < 0 || !ln_grow(c)) return false;
        c->g->nodes[i].outputs[k] = t;
        c->g->values[t].producer = i;
        char base[300];
        snprintf(base, sizeof base, "%s", c->g->nodes[i].name ? c->g->nodes[i].name : "");
        if (!ln_add_transpose(c->g, base, t, o, ln_to_nchw)) return false;
        c->twin[o] = t;
    }
    c->rewrites++;
    return true;
}

static bool ln_is_any(const char *op, const char *const *list)
{
    for (int i = 0; list[i]; i++)
        if (!strcmp(op, list[i])) return true;
    return false;
}

/* Standard ops that work unchanged on NHWC tensors: unary elementwise (inputs beyond the
 * first are scalars: Clip bounds) and broadcasting binary/variadic ones. */
static const char *const ln_unary[] = {"Relu", "Sigmoid", "Tanh", "Clip", "LeakyRelu", "HardSigmoid",
                                       "HardSwish", "Elu", "Selu", "Celu", "Softplus", "Softsign", "Exp",
                                       "Log", "Abs", "Neg", "Sqrt", "Reciprocal", "Erf", "Identity",
                                       "Floor", "Ceil", "Round", "Sign", "Mish", "Gelu", "ThresholdedRelu",
                                       NULL};
static const char *const ln_binary[] = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "Sum", "Mean", NULL};

static bool ln_default(const ir_node *n) { return !n->domain || !*n->domain || !strcmp(n->domain, "ai.onnx"); }
static bool ln_kiln(const ir_node *n, const char *op) { return n->domain && !strcmp(n->domain, "ai.kiln") && !strcmp(n->op_type, op); }

/* Rewrites node i when it can run on NHWC; false only on OOM (error set). */
static bool ln_node(ln_ctx *c, int i)
{
    ir_graph *g = c->g;
    ir_node *n = &g->nodes[i];
    if (!opt_alive(n) || n->n_inputs < 1 || n->n_outputs < 1) return true;
    const char *op = n->op_type;
    bool dflt = ln_default(n);
    int x = n->inputs[0];
    if (x < 0) return true;

    /* ---- convolution: the seeds of a region */
    if ((dflt && !strcmp(op, "Conv")) || ln_kiln(n, "FusedConv")) {
        if (!ln_is_rank4_float(g, x) || n->n_outputs != 1 || n->n_inputs < 2 || ln_rank(g, n->inputs[1]) != 4) return true;
        int z = n->n_inputs > 3 ? n->inputs[3] : -1;
        if (z >= 0 && !ln_is_rank4_float(g, z)) return true;
        int xt = ln_get_nhwc(c, x), zt = z >= 0 ? ln_get_nhwc(c, z) : -1;
        if (xt < 0 || (z >= 0 && zt < 0)) return false;
        n = &g->nodes[i];
        if (!opt_node_retype(g, n, "ConvNhwc", "ai.kiln")) return false;
        n->inputs[0] = xt;
        if (z >= 0) n->inputs[3] = zt;
        return ln_convert_outputs(c, i);
    }
    if (!dflt && !ln_kiln(n, "ElementwiseChain")) return true;
    if (!dflt) { /* ElementwiseChain: unary */
        int xt = ln_twin(c, x);
        if (xt < 0 || n->n_inputs != 1) return true;
        n->inputs[0] = xt;
        return ln_convert_outputs(c, i);
    }

    /* ---- pooling */
    if (!strcmp(op, "MaxPool") || !strcmp(op, "AveragePool")) {
        int xt = ln_twin(c, x);
        if (xt < 0 || n->n_inputs != 1) return true;
        if (n->n_outputs > 1 && n->outputs[1] >= 0) return true; /* Indices */
        if (opt_attr_int(n, "storage_order", 0) != 0) return true;
        if (!opt_node_retype(g, n, !strcmp(op, "MaxPool") ? "MaxPoolNhwc" : "AveragePoolNhwc", "ai.kiln")) return false;
        n->inputs[0] = xt;
        n->n_outputs = 1;
        return ln_convert_outputs(c, i);
    }
    if (!strcmp(op, "GlobalAveragePool") || !strcmp(op, "GlobalMaxPool")) {
        int xt = ln_twin(c, x);
        if (xt < 0 || n->n_inputs != 1 || n->n_outputs != 1) return true;
        if (!opt_node_retype(g, n, !strcmp(op, "GlobalMaxPool") ? "GlobalMaxPoolNhwc" : "GlobalAveragePoolNhwc", "ai.kiln")) return false;
        n->inputs[0] = xt;
        return ln_convert_outputs(c, i);
    }

    /* ---- unary elementwise */
    if (ln_is_any(op, ln_unary)) {
        int xt = ln_twin(c, x);
        if (xt < 0 || n->n_outputs != 1) return true;
        for (int k = 1; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0 && ln_rank(g, n->inputs[k]) != 0) return true;
        n->inputs[0] = xt;
        return ln_convert_outputs(c, i);
    }

    /* ---- broadcasting binary / variadic, Concat */
    bool concat = !strcmp(op, "Concat");
    if (ln_is_any(op, ln_binary) || concat) {
        if (n->n_outputs != 1 || !ln_is_rank4_float(g, n->outputs[0])) return true;
        bool any = false;
        for (int k = 0; k < n->n_inputs; k++) {
            int v = n->inputs[k];
            if (v < 0) return true;
            if (ln_twin(c, v) >= 0) any = true;
            else if (opt_const(g, v)) {
                if (concat && ln_rank(g, v) != 4) return true;
            } else if (ln_rank(g, v) != 4 && !(ln_rank(g, v) == 0 && !concat)) {
                return true;
            }
        }
        if (!any) return true;
        int nin = n->n_inputs;
        int *ins = malloc(sizeof(int) * (size_t)nin);
        if (!ins) { core_oom(); return false; }
        for (int k = 0; k < nin; k++) {
            int v = g->nodes[i].inputs[k], t = ln_twin(c, v);
            if (t < 0 && opt_const(g, v)) t = ln_permuted_const(c, v);
            else if (t < 0 && ln_rank(g, v) == 0) t = v;
            else if (t < 0) t = ln_get_nhwc(c, v);
            if (t < 0) { free(ins); return false; }
            ins[k] = t;
        }
        n = &g->nodes[i];
        memcpy(n->inputs, ins, sizeof(int) * (size_t)nin);
        free(ins);
        if (concat) {
            int64_t axis = opt_attr_int(n, "axis", 0);
            if (axis < 0) axis += 4;
            if (axis < 0 || axis > 3) return true; /* the reference kernel reports it */
            int64_t na = axis == 0 ? 0 : axis == 1 ? 3 : axis - 1;
            if (!opt_set_attr_int(n, "axis", na)) return false;
        }
        return ln_convert_outputs(c, i);
    }

    /* ---- Resize with constant scales / sizes over all four axes */
    if (!strcmp(op, "Resize") && n->opset >= 11) {
        int xt = ln_twin(c, x);
        if (xt < 0 || n->n_outputs != 1 || ir_node_attr(n, "axes")) return true;
        int nv[3] = {-1, -1, -1};
        for (int k = 1; k < n->n_inputs && k < 4; k++) {
            int v = n->inputs[k];
            if (v < 0) continue;
            const core_tensor *t = opt_const(g, v);
            if (!t) return true;
            if (t->numel == 0) { nv[k - 1] = v; continue; }
            int64_t want = k == 1 ? 8 : 4;
            if (t->ndim != 1 || t->numel != want) return true;
            size_t es = core_dtype_size(t->dtype);
            if (es == 0) return true;
            core_tensor *r = core_tensor_create(t->dtype, 1, t->dims);
            if (!r) return false;
            for (int h = 0; h < (k == 1 ? 2 : 1); h++)
                for (int a = 0; a < 4; a++)
                    memcpy((char *)r->data + (size_t)(h * 4 + a) * es,
                           (const char *)t->data + (size_t)(h * 4 + ln_to_nhwc[a]) * es, es);
            nv[k - 1] = opt_new_const(g, g->values[v].name, "_nhwc", r);
            if (nv[k - 1] < 0) return false;
        }
        n = &g->nodes[i];
        n->inputs[0] = xt;
        for (int k = 1; k < n->n_inputs && k < 4; k++)
            if (n->inputs[k] >= 0) n->inputs[k] = nv[k - 1];
        return ln_convert_outputs(c, i);
    }

    /* ---- Split along a constant axis */
    if (!strcmp(op, "Split")) {
        int xt = ln_twin(c, x);
        if (xt < 0) return true;
        int64_t axis = opt_attr_int(n, "axis", 0);
        if (axis < 0) axis += 4;
        if (axis < 0 || axis > 3) return true;
        int64_t na = axis == 0 ? 0 : axis == 1 ? 3 : axis - 1;
        if (!opt_set_attr_int(n, "axis", na)) return false;
        n->inputs[0] = xt;
        return ln_convert_outputs(c, i);
    }
    return true;
}

kiln_status opt_layout_nhwc(ir_graph *g, int *count)
{
    if (!opt_layout_nhwc_enabled()) return KILN_OK;
    /* only graphs with a convolution to convert */
    bool any = false;
    for (int i = 0; i < g->n_nodes && !any; i++) {
        const ir_node *n = &g->nodes[i];
        if (!opt_alive(n) || n->n_inputs < 2) continue;
        if ((ln_default(n) && !strcmp(n->op_type, "Conv")) || ln_kiln(n, "FusedConv"))
            any = ln_is_rank4_float(g, n->inputs[0]) && ln_rank(g, n->inputs[1]) == 4;
    }
    if (!any) return KILN_OK;
    ln_ctx c = {g, NULL, 0, 0};
    if (!ln_grow(&c)) return KILN_ERR_OUT_OF_MEMORY;
    int n0 = g->n_nodes; /* nodes appended by the pass are Transposes: not revisited */
    kiln_status st = KILN_OK;
    for (int i = 0; i < n0; i++)
        if (!ln_node(&c, i)) {
            st = core_error_prefix(KILN_ERR_OUT_OF_MEMORY, "layout_nhwc: ");
            break;
        }
    free(c.twin);
    if (st) return st;
    /* drop the back-transposes nothing reads */
    if (c.rewrites > 0) {
        opt_uses u;
        if ((st = opt_uses_build(g, &u))) return st;
        for (int i = n0; i < g->n_nodes; i++) {
            ir_node *n = &g->nodes[i];
            if (opt_alive(n) && n->n_outputs == 1 && n->outputs[0] >= 0 && u.count[n->outputs[0]] == 0 &&
                !u.pinned[n->outputs[0]])
                opt_node_kill(g, i);
        }
        opt_uses_free(&u);
    }
    *count += c.rewrites;
    return KILN_OK;
}
