/* rewrite.c — graph-editing helpers shared by the optimization passes: use counts,
 * constant inspection, attribute and node surgery, and the activation matcher. */
#include "opt/rewrite.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- uses ------------------------------------------------------------------------------ */

struct opt_pin_arg { opt_uses *u; };

static void opt_pin(int v, void *arg)
{
    opt_uses *u = ((struct opt_pin_arg *)arg)->u;
    if (v >= 0 && v < u->n_values) { u->pinned[v] = true; u->count[v]++; }
}

void opt_uses_free(opt_uses *u)
{
    free(u->count);
    free(u->pinned);
    free(u->start);
    free(u->node);
    memset(u, 0, sizeof *u);
}

kiln_status opt_uses_build(const ir_graph *g, opt_uses *u)
{
    memset(u, 0, sizeof *u);
    int nv = g->n_values;
    u->n_values = nv;
    u->count = calloc((size_t)nv + 1, sizeof(int));
    u->pinned = calloc((size_t)nv + 1, sizeof(bool));
    u->start = calloc((size_t)nv + 2, sizeof(int));
    int64_t edges = 0;
    for (int i = 0; i < g->n_nodes; i++) edges += g->nodes[i].n_inputs;
    u->node = malloc(sizeof(int) * (size_t)(edges + 1));
    if (!u->count || !u->pinned || !u->start || !u->node) { opt_uses_free(u); return core_oom(); }
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *nd = &g->nodes[i];
        if (!opt_alive(nd)) continue;
        for (int k = 0; k < nd->n_inputs; k++)
            if (nd->inputs[k] >= 0) { u->count[nd->inputs[k]]++; u->start[nd->inputs[k] + 1]++; }
        struct opt_pin_arg pa = {u};
        ir_node_outer_refs(g, nd, opt_pin, &pa);
    }
    for (int k = 0; k < g->n_outputs; k++)
        if (g->outputs[k] >= 0 && g->outputs[k] < nv) { u->pinned[g->outputs[k]] = true; u->count[g->outputs[k]]++; }
    for (int v = 0; v < nv; v++) u->start[v + 1] += u->start[v];
    int *fill = calloc((size_t)nv + 1, sizeof(int));
    if (!fill) { opt_uses_free(u); return core_oom(); }
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *nd = &g->nodes[i];
        if (!opt_alive(nd)) continue;
        for (int k = 0; k < nd->n_inputs; k++) {
            int v = nd->inputs[k];
            if (v >= 0) u->node[u->start[v] + fill[v]++] = i;
        }
    }
    free(fill);
    return KILN_OK;
}

int opt_sole_consumer(const opt_uses *u, int v)
{
    if (v < 0 || v >= u->n_values || u->pinned[v] || u->count[v] != 1) return -1;
    return u->node[u->start[v]];
}

/* ---- node and value inspection ------------------------------------------------------------ */

bool opt_is(const ir_node *n, const char *op)
{
    return opt_alive(n) && (!n->domain || !*n->domain || !strcmp(n->domain, "ai.onnx")) && !strcmp(n->op_type, op);
}

int opt_producer(const ir_graph *g, int v)
{
    if (v < 0 || v >= g->n_values) return -1;
    int p = g->values[v].producer;
    if (p < 0 || p >= g->n_nodes || !opt_alive(&g->nodes[p])) return -1;
    for (int k = 0; k < g->nodes[p].n_outputs; k++)
        if (g->nodes[p].outputs[k] == v) return p;
    return -1;
}

void opt_node_kill(ir_graph *g, int i)
{
    ir_node *n = &g->nodes[i];
    for (int k = 0; k < n->n_outputs; k++) {
        int v = n->outputs[k];
        if (v >= 0 && g->values[v].producer == i) g->values[v].producer = -1;
    }
    ir_node_free(n);
}

const core_tensor *opt_const(const ir_graph *g, int v)
{
    if (v < 0 || v >= g->n_values) return NULL;
    const ir_value *val = &g->values[v];
    if (!val->constant || val->is_graph_input || val->constant->kind != CORE_VALUE_TENSOR) return NULL;
    return val->constant->tensor;
}

bool opt_const_scalar(const ir_graph *g, int v, double *out)
{
    const core_tensor *t = opt_const(g, v);
    if (!t || t->numel != 1 || !t->data) return false;
    if (!core_dtype_is_float(t->dtype) && !core_dtype_is_int(t->dtype)) return false;
    *out = core_load_f64(t->dtype, t->data, 0);
    return true;
}

bool opt_value_rank(const ir_graph *g, int v, kiln_dtype *dt, int *ndim, int64_t *dims)
{
    if (v < 0 || v >= g->n_values) return false;
    const core_tensor *c = opt_const(g, v);
    if (c) {
        *dt = c->dtype;
        *ndim = c->ndim;
        for (int i = 0; i < c->ndim; i++) dims[i] = c->dims[i];
        return true;
    }
    const ir_type *t = &g->values[v].type;
    if (t->kind != IR_TYPE_TENSOR || t->ndim < 0 || t->ndim > KILN_MAX_DIMS || (t->ndim > 0 && !t->dims)) return false;
    *dt = t->dtype;
    *ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++) dims[i] = t->dims[i].value;
    return true;
}

bool opt_static_shape(const ir_graph *g, int v, kiln_dtype *dt, int *ndim, int64_t *dims)
{
    if (!opt_value_rank(g, v, dt, ndim, dims)) return false;
    for (int i = 0; i < *ndim; i++) if (dims[i] < 0) return false;
    return *dt != KILN_DTYPE_UNDEFINED;
}

kiln_dtype opt_value_dtype(const ir_graph *g, int v)
{
    if (v < 0 || v >= g->n_values) return KILN_DTYPE_UNDEFINED;
    const ir_value *val = &g->values[v];
    if (val->constant && val->constant->kind == CORE_VALUE_TENSOR) return val->constant->tensor->dtype;
    return val->type.kind == IR_TYPE_TENSOR ? val->type.dtype : KILN_DTYPE_UNDEFINED;
}

bool opt_same_shape(const ir_graph *g, int a, int b)
{
    kiln_dtype da, db;
    int ra, rb;
    int64_t xa[KILN_MAX_DIMS], xb[KILN_MAX_DIMS];
    if (!opt_value_rank(g, a, &da, &ra, xa) || !opt_value_rank(g, b, &db, &rb, xb) || ra != rb) return false;
    for (int i = 0; i < ra; i++) {
        if (xa[i] >= 0 || xb[i] >= 0) { if (xa[i] != xb[i]) return false; continue; }
        const ir_type *ta = &g->values[a].type, *tb = &g->values[b].type;
        const char *sa = ta->dims ? ta->dims[i].symbol : NULL, *sb = tb->dims ? tb->dims[i].symbol : NULL;
        if (!sa || !sb || strcmp(sa, sb)) return false;
    }
    return true;
}

int64_t opt_const_ints(const ir_graph *g, int v, int64_t *out, int64_t max)
{
    const core_tensor *t = opt_const(g, v);
    if (!t || !core_dtype_is_int(t->dtype) || t->numel > max || !t->data) return -1;
    for (int64_t i = 0; i < t->numel; i++) out[i] = core_load_i64(t->dtype, t->data, i);
    return t->numel;
}

int64_t opt_attr_ints(const ir_node *n, const char *name, int64_t *out, int64_t max)
{
    const ir_attr *a = ir_node_attr(n, name);
    if (!a || a->type != IR_ATTR_INTS || a->n > max) return -1;
    for (int64_t i = 0; i < a->n; i++) out[i] = a->ints[i];
    return a->n;
}

int64_t opt_attr_int(const ir_node *n, const char *name, int64_t dflt)
{
    const ir_attr *a = ir_node_attr(n, name);
    return a && a->type == IR_ATTR_INT ? a->i : dflt;
}

float opt_attr_float(const ir_node *n, const char *name, float dflt)
{
    const ir_attr *a = ir_node_attr(n, name);
    return a && a->type == IR_ATTR_FLOAT ? a->f : dflt;
}

const char *opt_attr_string(const ir_node *n, const char *name, const char *dflt)
{
    const ir_attr *a = ir_node_attr(n, name);
    return a && a->type == IR_ATTR_STRING && a->s ? a->s : dflt;
}

/* ---- attribute surgery ------------------------------------------------------------------- */

/* The attribute slot `name` of n, emptied (new when absent). */
static ir_attr *opt_attr_slot(ir_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (n->attrs[i].name && !strcmp(n->attrs[i].name, name)) {
            ir_attr_free(&n->attrs[i]);
            n->attrs[i].name = core_strdup(name);
            if (!n->attrs[i].name) { core_oom(); return NULL; }
            return &n->attrs[i];
        }
    ir_attr *a = realloc(n->attrs, sizeof *a * (size_t)(n->n_attrs + 1));
    if (!a) { core_oom(); return NULL; }
    n->attrs = a;
    ir_attr *s = &n->attrs[n->n_attrs];
    memset(s, 0, sizeof *s);
    s->name = core_strdup(name);
    if (!s->name) { core_oom(); return NULL; }
    n->n_attrs++;
    return s;
}

bool opt_set_attr_int(ir_node *n, const char *name, int64_t v)
{
    ir_attr *a = opt_attr_slot(n, name);
    if (!a) return false;
    a->type = IR_ATTR_INT;
    a->i = v;
    return true;
}

bool opt_set_attr_float(ir_node *n, const char *name, float v)
{
    ir_attr *a = opt_attr_slot(n, name);
    if (!a) return false;
    a->type = IR_ATTR_FLOAT;
    a->f = v;
    return true;
}

bool opt_set_attr_string(ir_node *n, const char *name, const char *s)
{
    ir_attr *a = opt_attr_slot(n, name);
    if (!a) return false;
    a->type = IR_ATTR_STRING;
    a->s = core_strdup(s);
    if (!a->s) { core_oom(); return false; }
    a->s_len = strlen(s);
    return true;
}

bool opt_set_attr_ints(ir_node *n, const char *name, const int64_t *v, int64_t count)
{
    ir_attr *a = opt_attr_slot(n, name);
    if (!a) return false;
    a->type = IR_ATTR_INTS;
    a->ints = malloc(sizeof(int64_t) * (size_t)(count + 1));
    if (!a->ints) { core_oom(); return false; }
    if (count) memcpy(a->ints, v, sizeof(int64_t) * (size_t)count);
    a->n = count;
    return true;
}

bool opt_set_attr_floats(ir_node *n, const char *name, const float *v, int64_t count)
{
    ir_attr *a = opt_attr_slot(n, name);
    if (!a) return false;
    a->type = IR_ATTR_FLOATS;
    a->floats = malloc(sizeof(float) * (size_t)(count + 1));
    if (!a->floats) { core_oom(); return false; }
    if (count) memcpy(a->floats, v, sizeof(float) * (size_t)count);
    a->n = count;
    return true;
}

void opt_remove_attr(ir_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (n->attrs[i].name && !strcmp(n->attrs[i].name, name)) {
            ir_attr_free(&n->attrs[i]);
            memmove(&n->attrs[i], &n->attrs[i + 1], sizeof *n->attrs * (size_t)(n->n_attrs - i - 1));
            n->n_attrs--;
            return;
        }
}

void opt_clear_attrs(ir_node *n)
{
    for (int i = 0; i < n->n_attrs; i++) ir_attr_free(&n->attrs[i]);
    n->n_attrs = 0;
}

bool opt_node_retype(const ir_graph *g, ir_node *n, const char *op, const char *domain)
{
    char *o = core_strdup(op), *d = core_strdup(domain);
    if (!o || !d) { free(o); free(d); core_oom(); return false; }
    free(n->op_type);
    free(n->domain);
    n->op_type = o;
    n->domain = d;
    n->opset = *domain ? 1 : (int)ir_graph_opset(g, "");
    n->schema = NULL;
    return true;
}

bool opt_node_set_inputs(ir_node *n, int n_in, const int *ins)
{
    int *p = malloc(sizeof(int) * (size_t)(n_in + 1));
    if (!p) { core_oom(); return false; }
    memcpy(p, ins, sizeof(int) * (size_t)n_in);
    free(n->inputs);
    n->inputs = p;
    n->n_inputs = n_in;
    return true;
}

/* ---- values and nodes --------------------------------------------------------------------- */

int opt_new_value(ir_graph *g, const char *base, const char *suffix)
{
    char name[512];
    for (int k = 0; k < 1000000; k++) {
        if (k) snprintf(name, sizeof name, "%s%s_%d", base ? base : "", suffix, k);
        else snprintf(name, sizeof name, "%s%s", base ? base : "", suffix);
        if (ir_graph_find_value(g, name) < 0) {
            int v = ir_graph_intern_value(g, name);
            return v >= 0 ? v : -1;
        }
    }
    core_error(KILN_ERR_INTERNAL, "cannot name a new value after '%s'", base ? base : "");
    return -1;
}

int opt_new_const(ir_graph *g, const char *base, const char *suffix, core_tensor *t)
{
    int v = opt_new_value(g, base, suffix);
    if (v < 0) { core_tensor_destroy(t); return -1; }
    core_value *cv = core_value_from_tensor(t);
    if (!cv) return -1;
    ir_value *val = &g->values[v];
    val->constant = cv;
    val->producer = -1;
    ir_type_free(&val->type);
    val->type.kind = IR_TYPE_TENSOR;
    val->type.dtype = t->dtype;
    val->type.ndim = t->ndim;
    if (t->ndim > 0) {
        val->type.dims = calloc((size_t)t->ndim, sizeof *val->type.dims);
        if (!val->type.dims) { val->type.ndim = -1; return v; }
        for (int i = 0; i < t->ndim; i++) val->type.dims[i].value = t->dims[i];
    }
    return v;
}

int opt_add_node(ir_graph *g, const char *name, const char *op, const char *domain, int n_in,
                 const int *ins, int n_out, const int *outs)
{
    ir_node nd;
    memset(&nd, 0, sizeof nd);
    nd.name = core_strdup(name ? name : "");
    nd.op_type = core_strdup(op);
    nd.domain = core_strdup(domain);
    nd.inputs = malloc(sizeof(int) * (size_t)(n_in + 1));
    nd.outputs = malloc(sizeof(int) * (size_t)(n_out + 1));
    if (!nd.name || !nd.op_type || !nd.domain || !nd.inputs || !nd.outputs) {
        ir_node_free(&nd);
        core_oom();
        return -1;
    }
    nd.n_inputs = n_in;
    nd.n_outputs = n_out;
    memcpy(nd.inputs, ins, sizeof(int) * (size_t)n_in);
    memcpy(nd.outputs, outs, sizeof(int) * (size_t)n_out);
    nd.opset = *domain ? 1 : (int)ir_graph_opset(g, "");
    int i = ir_graph_add_node(g, &nd);
    if (i < 0) { ir_node_free(&nd); return -1; }
    for (int k = 0; k < n_out; k++) if (outs[k] >= 0) g->values[outs[k]].producer = i;
    return i;
}

void opt_replace_uses(ir_graph *g, int from, int to)
{
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *n = &g->nodes[i];
        if (!opt_alive(n)) continue;
        for (int k = 0; k < n->n_inputs; k++) if (n->inputs[k] == from) n->inputs[k] = to;
    }
}

bool opt_bypass(ir_graph *g, const opt_uses *u, int i, int in, int out)
{
    if (in < 0 || out < 0 || in == out) return false;
    if (!u->pinned[out]) {
        opt_replace_uses(g, out, in);
        opt_node_kill(g, i);
        return true;
    }
    /* `out` is read by name: keep that name, produced by in's producer instead. */
    int p = opt_producer(g, in);
    const ir_value *vin = &g->values[in];
    if (p >= 0 && p != i && !u->pinned[in] && !vin->is_graph_input && !vin->constant && !vin->is_outer) {
        ir_node *pn = &g->nodes[p];
        for (int k = 0; k < pn->n_outputs; k++) if (pn->outputs[k] == in) pn->outputs[k] = out;
        opt_node_kill(g, i);
        g->values[out].producer = p;
        g->values[in].producer = -1;
        opt_replace_uses(g, in, out);
        return true;
    }
    ir_node *n = &g->nodes[i];
    if (opt_is(n, "Identity") && n->n_inputs == 1 && n->n_outputs == 1) return false;
    if (!opt_node_retype(g, n, "Identity", "")) return false;
    opt_clear_attrs(n);
    int one = in;
    if (!opt_node_set_inputs(n, 1, &one)) return false;
    n->n_outputs = 1;
    n->outputs[0] = out;
    return true;
}

/* ---- activations ---------------------------------------------------------------------------- */

bool opt_near(double a, double b) { return fabs(a - b) <= 1e-4 * (fabs(b) > 1 ? fabs(b) : 1); }

const char *opt_act_name(opt_act_kind k)
{
    switch (k) {
    case OPT_ACT_RELU: return "Relu";
    case OPT_ACT_CLIP: return "Clip";
    case OPT_ACT_LEAKY_RELU: return "LeakyRelu";
    case OPT_ACT_SIGMOID: return "Sigmoid";
    case OPT_ACT_SILU: return "Silu";
    case OPT_ACT_HARD_SWISH: return "HardSwish";
    case OPT_ACT_GELU: return "Gelu";
    case OPT_ACT_GELU_TANH: return "GeluTanh";
    default: return "";
    }
}

static bool opt_is_f32(const ir_graph *g, int v) { return opt_value_dtype(g, v) == KILN_DTYPE_FLOAT; }

/* Binary node n reads `x` on one side and a scalar constant on the other: *c gets it. */
static bool opt_bin_scalar(const ir_graph *g, const ir_node *n, int x, double *c)
{
    if (n->n_inputs != 2 || n->n_outputs != 1) return false;
    if (n->inputs[0] == x && opt_const_scalar(g, n->inputs[1], c)) return true;
    if (n->inputs[1] == x && opt_const_scalar(g, n->inputs[0], c)) return true;
    return false;
}

/* The other operand of binary n besides x (-1 when n does not read x exactly once). */
static int opt_other(const ir_node *n, int x)
{
    if (n->n_inputs != 2) return -1;
    if (n->inputs[0] == x && n->inputs[1] != x) return n->inputs[1];
    if (n->inputs[1] == x && n->inputs[0] != x) return n->inputs[0];
    return -1;
}

static int opt_out0(const ir_node *n) { return n->n_outputs >= 1 ? n->outputs[0] : -1; }

/* Single-output node with only its first output named. */
static bool opt_simple(const ir_node *n)
{
    if (n->n_outputs < 1 || n->outputs[0] < 0) return false;
    for (int k = 1; k < n->n_outputs; k++) if (n->outputs[k] >= 0) return false;
    return true;
}

static void opt_act_add(opt_act *a, int node) { if (a->n_nodes < OPT_ACT_MAX_NODES) a->nodes[a->n_nodes++] = node; }

/* The tail shared by both GELU forms: y = x * e * 0.5 in any association, where e = 1 + f(x).
 * e is read once. On success a->out is set and the tail nodes are added. */
static bool opt_gelu_tail(const ir_graph *g, const opt_uses *u, int x, int e, opt_act *a, int *x_uses)
{
    int m = opt_sole_consumer(u, e);
    if (m < 0 || !opt_is(&g->nodes[m], "Mul") || !opt_simple(&g->nodes[m])) return false;
    const ir_node *mn = &g->nodes[m];
    int o = opt_other(mn, e);
    double c;
    if (o == x) { /* (x * e) * 0.5 */
        int h = opt_sole_consumer(u, opt_out0(mn));
        if (h < 0 || !opt_is(&g->nodes[h], "Mul") || !opt_simple(&g->nodes[h]) ||
            !opt_bin_scalar(g, &g->nodes[h], opt_out0(mn), &c) || !opt_near(c, 0.5))
            return false;
        opt_act_add(a, m);
        opt_act_add(a, h);
        a->out = opt_out0(&g->nodes[h]);
        (*x_uses)++;
        return true;
    }
    if (opt_bin_scalar(g, mn, e, &c) && opt_near(c, 0.5)) { /* x * (e * 0.5) */
        int h = opt_sole_consumer(u, opt_out0(mn));
        if (h < 0 || !opt_is(&g->nodes[h], "Mul") || !opt_simple(&g->nodes[h]) || opt_other(&g->nodes[h], opt_out0(mn)) != x)
            return false;
        opt_act_add(a, m);
        opt_act_add(a, h);
        a->out = opt_out0(&g->nodes[h]);
        (*x_uses)++;
        return true;
    }
    int hp = opt_producer(g, o); /* (x * 0.5) * e */
    if (hp < 0 || !opt_is(&g->nodes[hp], "Mul") || !opt_simple(&g->nodes[hp]) || opt_sole_consumer(u, o) != m ||
        !opt_bin_scalar(g, &g->nodes[hp], x, &c) || !opt_near(c, 0.5))
        return false;
    opt_act_add(a, hp);
    opt_act_add(a, m);
    a->out = opt_out0(mn);
    (*x_uses)++;
    return true;
}

/* e = Add(Erf(x / sqrt2 | x * (1/sqrt2)), 1) starting from node d reading x. */
static bool opt_match_gelu_erf(const ir_graph *g, const opt_uses *u, int x, int d, opt_act *a, int *x_uses)
{
    const ir_node *dn = &g->nodes[d];
    double c;
    bool ok = (opt_is(dn, "Div") && dn->n_inputs == 2 && dn->inputs[0] == x && opt_const_scalar(g, dn->inputs[1], &c) && opt_near(c, sqrt(2.0))) ||
              (opt_is(dn, "Mul") && opt_bin_scalar(g, dn, x, &c) && opt_near(c, sqrt(0.5)));
    if (!ok || !opt_simple(dn)) return false;
    int er = opt_sole_consumer(u, opt_out0(dn));
    if (er < 0 || !opt_is(&g->nodes[er], "Erf") || !opt_simple(&g->nodes[er])) return false;
    int ad = opt_sole_consumer(u, opt_out0(&g->nodes[er]));
    if (ad < 0 || !opt_is(&g->nodes[ad], "Add") || !opt_simple(&g->nodes[ad]) ||
        !opt_bin_scalar(g, &g->nodes[ad], opt_out0(&g->nodes[er]), &c) || !opt_near(c, 1.0))
        return false;
    a->n_nodes = 0;
    opt_act_add(a, d);
    opt_act_add(a, er);
    opt_act_add(a, ad);
    *x_uses = 1;
    if (!opt_gelu_tail(g, u, x, opt_out0(&g->nodes[ad]), a, x_uses)) return false;
    a->kind = OPT_ACT_GELU;
    a->n_params = 0;
    return true;
}

/* tanh GELU: x3 = Pow(x, 3) | Mul(x, Mul(x, x)); Mul(x3, 0.044715); Add(x, .); Mul(., sqrt(2/pi));
 * Tanh; Add(., 1); then the tail. d is the node starting the cube. */
static bool opt_match_gelu_tanh(const ir_graph *g, const opt_uses *u, int x, int d, opt_act *a, int *x_uses)
{
    const ir_node *dn = &g->nodes[d];
    double c;
    a->n_nodes = 0;
    int cube = -1;
    *x_uses = 0;
    if (opt_is(dn, "Pow") && dn->n_inputs == 2 && dn->inputs[0] == x && opt_const_scalar(g, dn->inputs[1], &c) && c == 3.0 && opt_simple(dn)) {
        opt_act_add(a, d);
        cube = opt_out0(dn);
        *x_uses = 1;
    } else if (opt_is(dn, "Mul") && dn->n_inputs == 2 && dn->inputs[0] == x && dn->inputs[1] == x && opt_simple(dn)) {
        int m2 = opt_sole_consumer(u, opt_out0(dn));
        if (m2 < 0 || !opt_is(&g->nodes[m2], "Mul") || opt_other(&g->nodes[m2], opt_out0(dn)) != x || !opt_simple(&g->nodes[m2])) return false;
        opt_act_add(a, d);
        opt_act_add(a, m2);
        cube = opt_out0(&g->nodes[m2]);
        *x_uses = 3;
    } else return false;
    int m1 = opt_sole_consumer(u, cube);
    if (m1 < 0 || !opt_is(&g->nodes[m1], "Mul") || !opt_simple(&g->nodes[m1]) || !opt_bin_scalar(g, &g->nodes[m1], cube, &c) || !opt_near(c, 0.044715))
        return false;
    int ad = opt_sole_consumer(u, opt_out0(&g->nodes[m1]));
    if (ad < 0 || !opt_is(&g->nodes[ad], "Add") || !opt_simple(&g->nodes[ad]) || opt_other(&g->nodes[ad], opt_out0(&g->nodes[m1])) != x)
        return false;
    int ms = opt_sole_consumer(u, opt_out0(&g->nodes[ad]));
    if (ms < 0 || !opt_is(&g->nodes[ms], "Mul") || !opt_simple(&g->nodes[ms]) || !opt_bin_scalar(g, &g->nodes[ms], opt_out0(&g->nodes[ad]), &c) ||
        !opt_near(c, sqrt(2.0 / M_PI)))
        return false;
    int th = opt_sole_consumer(u, opt_out0(&g->nodes[ms]));
    if (th < 0 || !opt_is(&g->nodes[th], "Tanh") || !opt_simple(&g->nodes[th])) return false;
    int a1 = opt_sole_consumer(u, opt_out0(&g->nodes[th]));
    if (a1 < 0 || !opt_is(&g->nodes[a1], "Add") || !opt_simple(&g->nodes[a1]) || !opt_bin_scalar(g, &g->nodes[a1], opt_out0(&g->nodes[th]), &c) || !opt_near(c, 1.0))
        return false;
    opt_act_add(a, m1);
    opt_act_add(a, ad);
    opt_act_add(a, ms);
    opt_act_add(a, th);
    opt_act_add(a, a1);
    (*x_uses)++; /* the Add reads x */
    if (!opt_gelu_tail(g, u, x, opt_out0(&g->nodes[a1]), a, x_uses)) return false;
    a->kind = OPT_ACT_GELU_TANH;
    a->n_params = 0;
    return true;
}

/* x * gate(x) where gate is the single-op node s (Sigmoid or HardSigmoid(1/6, 0.5)). */
static bool opt_match_gated(const ir_graph *g, const opt_uses *u, int x, int s, opt_act *a)
{
    int so = opt_out0(&g->nodes[s]);
    int m = opt_sole_consumer(u, so);
    if (m < 0 || !opt_is(&g->nodes[m], "Mul") || !opt_simple(&g->nodes[m]) || opt_other(&g->nodes[m], so) != x) return false;
    if (u->count[x] != 2 || u->pinned[x]) return false;
    a->n_nodes = 0;
    opt_act_add(a, s);
    opt_act_add(a, m);
    a->out = opt_out0(&g->nodes[m]);
    return true;
}

bool opt_match_activation(const ir_graph *g, const opt_uses *u, int x, opt_act *a)
{
    memset(a, 0, sizeof *a);
    if (x < 0 || x >= u->n_values || u->pinned[x] || u->count[x] < 1 || !opt_is_f32(g, x)) return false;
    /* Which node starts the pattern: the first reader of x in node order. */
    for (int s = u->start[x]; s < u->start[x + 1]; s++) {
        int i = u->node[s];
        const ir_node *n = &g->nodes[i];
        if (!opt_alive(n) || !opt_simple(n)) continue;
        int y = opt_out0(n);
        if (u->count[x] == 1 && n->n_inputs >= 1 && n->inputs[0] == x) {
            a->n_nodes = 1;
            a->nodes[0] = i;
            a->out = y;
            if (opt_is(n, "Relu")) { a->kind = OPT_ACT_RELU; return true; }
            if (opt_is(n, "Sigmoid")) { a->kind = OPT_ACT_SIGMOID; return true; }
            if (opt_is(n, "HardSwish")) { a->kind = OPT_ACT_HARD_SWISH; return true; }
            if (opt_is(n, "LeakyRelu")) {
                a->kind = OPT_ACT_LEAKY_RELU;
                a->params[0] = opt_attr_float(n, "alpha", 0.01f);
                a->n_params = 1;
                return true;
            }
            if (opt_is(n, "Gelu")) {
                const char *ap = opt_attr_string(n, "approximate", "none");
                if (strcmp(ap, "none") && strcmp(ap, "tanh")) return false;
                a->kind = strcmp(ap, "tanh") ? OPT_ACT_GELU : OPT_ACT_GELU_TANH;
                return true;
            }
            if (opt_is(n, "Clip")) {
                double lo = -INFINITY, hi = INFINITY;
                int opset = n->opset > 0 ? n->opset : (int)ir_graph_opset(g, "");
                if (opset < 11) {
                    lo = opt_attr_float(n, "min", -INFINITY);
                    hi = opt_attr_float(n, "max", INFINITY);
                } else {
                    if (n->n_inputs > 1 && n->inputs[1] >= 0 && !opt_const_scalar(g, n->inputs[1], &lo)) return false;
                    if (n->n_inputs > 2 && n->inputs[2] >= 0 && !opt_const_scalar(g, n->inputs[2], &hi)) return false;
                }
                a->kind = OPT_ACT_CLIP;
                a->params[0] = (float)lo;
                a->params[1] = (float)hi;
                a->n_params = 2;
                return true;
            }
        }
        int x_uses = 0;
        if (opt_is(n, "Sigmoid") && n->inputs[0] == x && opt_match_gated(g, u, x, i, a)) {
            a->kind = OPT_ACT_SILU;
            return true;
        }
        if (opt_is(n, "HardSigmoid") && n->inputs[0] == x && opt_near(opt_attr_float(n, "alpha", 0.2f), 1.0 / 6) &&
            opt_near(opt_attr_float(n, "beta", 0.5f), 0.5) && opt_match_gated(g, u, x, i, a)) {
            a->kind = OPT_ACT_HARD_SWISH;
            return true;
        }
        if ((opt_is(n, "Div") || opt_is(n, "Mul")) && opt_match_gelu_erf(g, u, x, i, a, &x_uses) && x_uses == u->count[x])
            return true;
        if ((opt_is(n, "Pow") || opt_is(n, "Mul")) && opt_match_gelu_tanh(g, u, x, i, a, &x_uses) && x_uses == u->count[x])
            return true;
    }
    memset(a, 0, sizeof *a);
    return false;
}
