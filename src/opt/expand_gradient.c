/* expand_gradient.c — replaces ai.onnx.preview.training.Gradient nodes by the backward
 * graph (reverse-mode differentiation of the forward nodes between xs and y). */
#include "opt/opt.h"
#include "runtime/runtime.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct grad_builder {
    ir_graph *g;
    ir_node *added;
    int n_added, cap_added;
    int counter;
    const char *gname;
} grad_builder;

static int grad_new_value(grad_builder *b, const char *hint)
{
    char name[256];
    snprintf(name, sizeof name, "%s/grad/%s/%d", b->gname, hint, b->counter++);
    return ir_graph_intern_value(b->g, name);
}

/* Append node op(domain)(ins) -> one new value; returns the value id or < 0 on OOM. */
static int grad_emit(grad_builder *b, const char *op, const char *domain, int n_in, const int *ins,
                     int out_id)
{
    if (out_id < 0) out_id = grad_new_value(b, op);
    if (out_id < 0) return -2;
    if (b->n_added == b->cap_added) {
        int cap = b->cap_added ? b->cap_added * 2 : 16;
        ir_node *n = realloc(b->added, sizeof *n * (size_t)cap);
        if (!n) return -2;
        b->added = n;
        b->cap_added = cap;
    }
    ir_node nd;
    memset(&nd, 0, sizeof nd);
    char name[256];
    snprintf(name, sizeof name, "%s/grad/%s_%d", b->gname, op, b->counter++);
    nd.name = core_strdup(name);
    nd.op_type = core_strdup(op);
    nd.domain = core_strdup(domain);
    nd.n_inputs = n_in;
    nd.inputs = malloc(sizeof(int) * (size_t)(n_in ? n_in : 1));
    nd.n_outputs = 1;
    nd.outputs = malloc(sizeof(int));
    if (!nd.name || !nd.op_type || !nd.domain || !nd.inputs || !nd.outputs) { ir_node_free(&nd); return -2; }
    memcpy(nd.inputs, ins, sizeof(int) * (size_t)n_in);
    nd.outputs[0] = out_id;
    b->added[b->n_added++] = nd;
    return out_id;
}

static int grad_op2(grad_builder *b, const char *op, int x, int y)
{
    int in[2] = {x, y};
    return grad_emit(b, op, "", 2, in, -1);
}

static int grad_op1(grad_builder *b, const char *op, const char *domain, int x)
{
    return grad_emit(b, op, domain, 1, &x, -1);
}

/* Reduce a gradient to the shape of the value it flows into (undo broadcasting). */
static int grad_unbroadcast(grad_builder *b, int grad, int like)
{
    int in[2] = {grad, like};
    return grad_emit(b, "SumToShape", "ai.kiln", 2, in, -1);
}

static kiln_status grad_accumulate(grad_builder *b, int *grad, int v, int contrib)
{
    if (contrib < 0) return core_oom();
    if (grad[v] < 0) { grad[v] = contrib; return KILN_OK; }
    int s = grad_op2(b, "Add", grad[v], contrib);
    if (s < 0) return core_oom();
    grad[v] = s;
    return KILN_OK;
}

static kiln_status grad_expand_one(ir_graph *g, int gi)
{
    ir_node gn = g->nodes[gi];
    const ir_attr *axs = ir_node_attr(&gn, "xs"), *ay = ir_node_attr(&gn, "y");
    if (!axs || axs->type != IR_ATTR_STRINGS || !ay || !ay->s)
        return core_error(KILN_ERR_INVALID_MODEL, "node '%s' (Gradient): needs attributes xs (strings) and y (string)", gn.name);
    if (axs->n != gn.n_outputs)
        return core_error(KILN_ERR_INVALID_MODEL, "node '%s' (Gradient): %lld xs but %d outputs", gn.name, (long long)axs->n, gn.n_outputs);
    int y = ir_graph_find_value(g, ay->s);
    if (y < 0) return core_error(KILN_ERR_INVALID_MODEL, "node '%s' (Gradient): y '%s' is not in the graph", gn.name, ay->s);
    kiln_status st = KILN_OK;
    int nv = g->n_values;
    char *dep = calloc((size_t)nv + 1, 1);     /* depends on some x */
    char *need = calloc((size_t)nv + 1, 1);    /* y depends on it */
    int *grad = malloc(sizeof(int) * ((size_t)nv + 1));
    grad_builder b = {g, NULL, 0, 0, 0, gn.name && *gn.name ? gn.name : "Gradient"};
    if (!dep || !need || !grad) { st = core_oom(); goto done; }
    for (int v = 0; v < nv; v++) grad[v] = -1;
    for (int64_t k = 0; k < axs->n; k++) {
        int x = ir_graph_find_value(g, axs->strings[k]);
        if (x < 0) { st = core_error(KILN_ERR_INVALID_MODEL, "node '%s' (Gradient): x '%s' is not in the graph", gn.name, axs->strings[k]); goto done; }
        dep[x] = 1;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        if (i == gi) continue;
        const ir_node *nd = &g->nodes[i];
        bool d = false;
        for (int k = 0; k < nd->n_inputs; k++) if (nd->inputs[k] >= 0 && dep[nd->inputs[k]]) d = true;
        if (d) for (int k = 0; k < nd->n_outputs; k++) if (nd->outputs[k] >= 0) dep[nd->outputs[k]] = 1;
    }
    need[y] = 1;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        if (i == gi) continue;
        const ir_node *nd = &g->nodes[i];
        bool n = false;
        for (int k = 0; k < nd->n_outputs; k++) if (nd->outputs[k] >= 0 && need[nd->outputs[k]]) n = true;
        if (n) for (int k = 0; k < nd->n_inputs; k++) if (nd->inputs[k] >= 0) need[nd->inputs[k]] = 1;
    }
    if (dep[y]) grad[y] = grad_op1(&b, "OnesLike", "ai.kiln", y);
    for (int i = g->n_nodes - 1; i >= 0 && !st; i--) {
        if (i == gi) continue;
        const ir_node *nd = &g->nodes[i];
        if (nd->n_outputs < 1 || nd->outputs[0] < 0 || grad[nd->outputs[0]] < 0) continue;
        int out = nd->outputs[0], dy = grad[out];
        const char *op = nd->op_type;
        int a = nd->n_inputs > 0 ? nd->inputs[0] : -1, c = nd->n_inputs > 1 ? nd->inputs[1] : -1;
        bool da = a >= 0 && dep[a] && need[a], dc = c >= 0 && dep[c] && need[c];
        if (nd->domain && *nd->domain) { st = core_error(KILN_ERR_UNSUPPORTED, "Gradient: cannot differentiate through %s.%s", nd->domain, op); break; }
        if (!strcmp(op, "Add") || !strcmp(op, "Sub")) {
            if (da) st = grad_accumulate(&b, grad, a, grad_unbroadcast(&b, dy, a));
            if (dc && !st) {
                int t = !strcmp(op, "Sub") ? grad_op1(&b, "Neg", "", dy) : dy;
                st = t < 0 ? core_oom() : grad_accumulate(&b, grad, c, grad_unbroadcast(&b, t, c));
            }
        } else if (!strcmp(op, "Mul")) {
            if (da) st = grad_accumulate(&b, grad, a, grad_unbroadcast(&b, grad_op2(&b, "Mul", dy, c), a));
            if (dc && !st) st = grad_accumulate(&b, grad, c, grad_unbroadcast(&b, grad_op2(&b, "Mul", dy, a), c));
        } else if (!strcmp(op, "Div")) {
            if (da) st = grad_accumulate(&b, grad, a, grad_unbroadcast(&b, grad_op2(&b, "Div", dy, c), a));
            if (dc && !st) { /* d(a/c)/dc = -dy * out / c */
                int t = grad_op2(&b, "Div", grad_op2(&b, "Mul", dy, out), c);
                st = t < 0 ? core_oom() : grad_accumulate(&b, grad, c, grad_unbroadcast(&b, grad_op1(&b, "Neg", "", t), c));
            }
        } else if (!strcmp(op, "Neg")) {
            if (da) st = grad_accumulate(&b, grad, a, grad_op1(&b, "Neg", "", dy));
        } else if (!strcmp(op, "Identity")) {
            if (da) st = grad_accumulate(&b, grad, a, dy);
        } else if (!strcmp(op, "Relu") || !strcmp(op, "Sigmoid") || !strcmp(op, "Tanh") || !strcmp(op, "Exp")) {
            if (da) {
                int in[2] = {dy, out};
                char kop[32];
                snprintf(kop, sizeof kop, "%sGrad", op);
                st = grad_accumulate(&b, grad, a, grad_emit(&b, kop, "ai.kiln", 2, in, -1));
            }
        } else if (da || dc) {
            st = core_error(KILN_ERR_UNSUPPORTED, "node '%s' (Gradient): cannot differentiate through op %s (node '%s')",
                            gn.name, op, nd->name ? nd->name : "");
        }
    }
    if (st) goto done;
    for (int k = 0; k < gn.n_outputs; k++) {
        int o = gn.outputs[k];
        if (o < 0) continue;
        int x = ir_graph_find_value(g, axs->strings[k]);
        int r = grad[x] >= 0 ? grad_emit(&b, "Identity", "", 1, &grad[x], o) : grad_emit(&b, "ZerosLike", "ai.kiln", 1, &x, o);
        if (r < 0) { st = core_oom(); goto done; }
    }
    /* Replace the Gradient node by the backward nodes; the caller re-sorts. */
    {
        int n = g->n_nodes - 1 + b.n_added;
        ir_node *nodes = malloc(sizeof *nodes * (size_t)(n + 1));
        if (!nodes) { st = core_oom(); goto done; }
        int j = 0;
        for (int i = 0; i < g->n_nodes; i++) if (i != gi) nodes[j++] = g->nodes[i];
        for (int i = 0; i < b.n_added; i++) nodes[j++] = b.added[i];
        ir_node_free(&g->nodes[gi]);
        free(g->nodes);
        g->nodes = nodes;
        g->n_nodes = g->cap_nodes = n;
        if (!g->cap_nodes) g->cap_nodes = 1;
        b.n_added = 0;
    }
done:
    for (int i = 0; i < b.n_added; i++) ir_node_free(&b.added[i]);
    free(b.added);
    free(dep);
    free(need);
    free(grad);
    return st;
}

kiln_status opt_expand_gradients(ir_graph *g)
{
    bool changed = false;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *nd = &g->nodes[i];
        if (strcmp(nd->op_type, "Gradient") || !nd->domain || strcmp(nd->domain, "ai.onnx.preview.training")) continue;
        kiln_status st = grad_expand_one(g, i);
        if (st) return st;
        changed = true;
        i = -1; /* node array was rebuilt */
    }
    return changed ? ir_graph_sort(g) : KILN_OK;
}
