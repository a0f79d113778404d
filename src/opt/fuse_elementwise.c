/* fuse_elementwise.c — chains of float32 elementwise steps on one tensor (unary ops, binary
 * ops with a one-element constant operand, and activation patterns such as x*Sigmoid(x) or
 * the erf GELU) become one ai.kiln ElementwiseChain node evaluated in a single pass (program
 * in ops/fused.h). A chain must replace at least two nodes. */
#include "opt/rewrite.h"
#include "ops/fused.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EW_MAX_STEPS 32

typedef struct ew_step {
    int op;
    float k[2];
    int out;
    int n_nodes;
    int nodes[OPT_ACT_MAX_NODES];
} ew_step;

static const struct { const char *name; int op; } ew_unary[] = {
    {"Relu", FUSED_EW_RELU}, {"Sigmoid", FUSED_EW_SIGMOID}, {"Tanh", FUSED_EW_TANH}, {"Exp", FUSED_EW_EXP},
    {"Log", FUSED_EW_LOG}, {"Sqrt", FUSED_EW_SQRT}, {"Abs", FUSED_EW_ABS}, {"Neg", FUSED_EW_NEG},
    {"Reciprocal", FUSED_EW_RECIPROCAL}, {"Floor", FUSED_EW_FLOOR}, {"Ceil", FUSED_EW_CEIL},
    {"Round", FUSED_EW_ROUND}, {"Erf", FUSED_EW_ERF}, {"Sin", FUSED_EW_SIN}, {"Cos", FUSED_EW_COS},
    {"Softplus", FUSED_EW_SOFTPLUS}, {"HardSwish", FUSED_EW_HARD_SWISH}, {NULL, 0}};

static bool ew_is_f32(const ir_graph *g, int v, int *rank)
{
    kiln_dtype dt;
    int64_t d[KILN_MAX_DIMS];
    return opt_value_rank(g, v, &dt, rank, d) && dt == KILN_DTYPE_FLOAT;
}

/* A float32 one-element constant whose rank does not exceed the tensor's (so the binary op
 * keeps the tensor's shape). */
static bool ew_scalar(const ir_graph *g, int v, int rank, float *out)
{
    const core_tensor *t = opt_const(g, v);
    if (!t || t->dtype != KILN_DTYPE_FLOAT || t->numel != 1 || t->ndim > rank) return false;
    *out = ((const float *)t->data)[0];
    return true;
}

/* One step reading x through node i (single op). */
static bool ew_single(const ir_graph *g, int i, int x, int rank, ew_step *s)
{
    const ir_node *n = &g->nodes[i];
    if (!opt_alive(n) || (n->domain && *n->domain && strcmp(n->domain, "ai.onnx"))) return false;
    if (n->n_outputs != 1 || n->outputs[0] < 0 || n->n_inputs < 1) return false;
    const char *op = n->op_type;
    s->n_nodes = 1;
    s->nodes[0] = i;
    s->out = n->outputs[0];
    s->k[0] = s->k[1] = 0;
    if (n->n_inputs == 1 && n->inputs[0] == x) {
        for (int k = 0; ew_unary[k].name; k++)
            if (!strcmp(op, ew_unary[k].name)) { s->op = ew_unary[k].op; return true; }
        if (!strcmp(op, "LeakyRelu")) { s->op = FUSED_EW_LEAKY_RELU; s->k[0] = opt_attr_float(n, "alpha", 0.01f); return true; }
        if (!strcmp(op, "Gelu")) {
            const char *ap = opt_attr_string(n, "approximate", "none");
            if (strcmp(ap, "none") && strcmp(ap, "tanh")) return false;
            s->op = strcmp(ap, "tanh") ? FUSED_EW_GELU : FUSED_EW_GELU_TANH;
            return true;
        }
        if (!strcmp(op, "Elu")) { s->op = FUSED_EW_ELU; s->k[0] = opt_attr_float(n, "alpha", 1.0f); return true; }
        if (!strcmp(op, "HardSigmoid")) {
            s->op = FUSED_EW_HARD_SIGMOID;
            s->k[0] = opt_attr_float(n, "alpha", 0.2f);
            s->k[1] = opt_attr_float(n, "beta", 0.5f);
            return true;
        }
    }
    if (!strcmp(op, "Clip") && n->inputs[0] == x) {
        int opset = n->opset > 0 ? n->opset : (int)ir_graph_opset(g, "");
        double lo = -INFINITY, hi = INFINITY;
        if (opset < 11) {
            if (n->n_inputs != 1) return false;
            lo = opt_attr_float(n, "min", -INFINITY);
            hi = opt_attr_float(n, "max", INFINITY);
        } else {
            float f;
            if (n->n_inputs > 1 && n->inputs[1] >= 0) { if (!ew_scalar(g, n->inputs[1], 64, &f)) return false; lo = f; }
            if (n->n_inputs > 2 && n->inputs[2] >= 0) { if (!ew_scalar(g, n->inputs[2], 64, &f)) return false; hi = f; }
        }
        s->op = FUSED_EW_CLIP;
        s->k[0] = (float)lo;
        s->k[1] = (float)hi;
        return true;
    }
    if (n->n_inputs != 2) return false;
    bool left = n->inputs[0] == x && n->inputs[1] != x, right = n->inputs[1] == x && n->inputs[0] != x;
    if (!left && !right) return false;
    if (!ew_scalar(g, left ? n->inputs[1] : n->inputs[0], rank, &s->k[0])) return false;
    if (!strcmp(op, "Add")) s->op = FUSED_EW_ADD;
    else if (!strcmp(op, "Mul")) s->op = FUSED_EW_MUL;
    else if (!strcmp(op, "Sub")) s->op = left ? FUSED_EW_SUB : FUSED_EW_RSUB;
    else if (!strcmp(op, "Div")) s->op = left ? FUSED_EW_DIV : FUSED_EW_RDIV;
    else if (!strcmp(op, "Pow")) s->op = left ? FUSED_EW_POW : FUSED_EW_RPOW;
    else if (!strcmp(op, "Max")) s->op = FUSED_EW_MAX;
    else if (!strcmp(op, "Min")) s->op = FUSED_EW_MIN;
    else return false;
    return true;
}

/* A step at x: an activation pattern owning every reader of x, or the single op `node`
 * (when node < 0, x's only reader). */
static bool ew_step_at(const ir_graph *g, const opt_uses *u, int x, int node, int rank, ew_step *s)
{
    opt_act a;
    if (opt_match_activation(g, u, x, &a) && a.n_nodes > 1) {
        bool has = node < 0;
        for (int k = 0; k < a.n_nodes; k++) if (a.nodes[k] == node) has = true;
        static const int map[] = {[OPT_ACT_SILU] = FUSED_EW_SILU, [OPT_ACT_HARD_SWISH] = FUSED_EW_HARD_SWISH,
                                  [OPT_ACT_GELU] = FUSED_EW_GELU, [OPT_ACT_GELU_TANH] = FUSED_EW_GELU_TANH};
        if (has && a.kind >= OPT_ACT_SILU && a.kind <= OPT_ACT_GELU_TANH && a.kind != OPT_ACT_SIGMOID) {
            s->op = map[a.kind];
            s->k[0] = s->k[1] = 0;
            s->out = a.out;
            s->n_nodes = a.n_nodes;
            memcpy(s->nodes, a.nodes, sizeof(int) * (size_t)a.n_nodes);
            return true;
        }
    }
    if (node < 0) node = opt_sole_consumer(u, x);
    if (node < 0) return false;
    return ew_single(g, node, x, rank, s);
}

static bool ew_chain_from(ir_graph *g, const opt_uses *u, int i)
{
    const ir_node *n = &g->nodes[i];
    if (!opt_alive(n) || n->n_inputs < 1) return false;
    /* The variable input of the first node: the non-constant operand. */
    int x = -1;
    for (int k = 0; k < n->n_inputs; k++)
        if (n->inputs[k] >= 0 && !opt_const(g, n->inputs[k])) { if (x >= 0 && x != n->inputs[k]) return false; x = n->inputs[k]; }
    int rank;
    if (x < 0 || !ew_is_f32(g, x, &rank)) return false;
    ew_step steps[EW_MAX_STEPS];
    int ns = 0, nn = 0;
    if (!ew_step_at(g, u, x, i, rank, &steps[0])) return false;
    nn += steps[0].n_nodes;
    ns = 1;
    while (ns < EW_MAX_STEPS) {
        int cur = steps[ns - 1].out;
        if (u->pinned[cur] || u->count[cur] < 1) break;
        if (!ew_step_at(g, u, cur, -1, rank, &steps[ns])) break;
        nn += steps[ns].n_nodes;
        ns++;
    }
    /* The first node must start the chain; the node list may name it anywhere. */
    bool first_in = false;
    for (int k = 0; k < steps[0].n_nodes; k++) if (steps[0].nodes[k] == i) first_in = true;
    if (!first_in || nn < 2) return false;
    int64_t codes[EW_MAX_STEPS];
    float ks[2 * EW_MAX_STEPS];
    int nk = 0;
    for (int s = 0; s < ns; s++) {
        codes[s] = steps[s].op;
        for (int k = 0; k < fused_ew_nconst(steps[s].op); k++) ks[nk++] = steps[s].k[k];
    }
    int fin = steps[ns - 1].out;
    ir_node *m = &g->nodes[i];
    if (!opt_node_retype(g, m, "ElementwiseChain", "ai.kiln") || !opt_node_set_inputs(m, 1, &x)) { core_error_clear(); return false; }
    opt_clear_attrs(m);
    if (!opt_set_attr_ints(m, "opcodes", codes, ns) || !opt_set_attr_floats(m, "constants", ks, nk)) { core_error_clear(); return false; }
    for (int s = 0; s < ns; s++)
        for (int k = 0; k < steps[s].n_nodes; k++)
            if (steps[s].nodes[k] != i) opt_node_kill(g, steps[s].nodes[k]);
    m = &g->nodes[i];
    m->n_outputs = 1;
    m->outputs[0] = fin;
    g->values[fin].producer = i;
    return true;
}

kiln_status opt_fuse_elementwise(ir_graph *g, int *count)
{
    opt_uses u;
    kiln_status st = opt_uses_build(g, &u);
    if (st) return st;
    for (int i = 0; i < g->n_nodes; i++) {
        if (ew_chain_from(g, &u, i)) {
            (*count)++;
            opt_uses_free(&u);
            if ((st = opt_uses_build(g, &u))) return st;
        }
    }
    opt_uses_free(&u);
    return KILN_OK;
}
