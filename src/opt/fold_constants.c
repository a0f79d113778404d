/* fold_constants.c — evaluate nodes whose inputs are all constants at load time. */
#include "opt/opt.h"
#include "runtime/runtime.h"
#include <stdlib.h>
#include <string.h>

/* Outputs above this size stay computed at run time: folding would only trade compute
 * for resident memory (e.g. a huge ConstantOfShape). */
#define OPT_FOLD_MAX_BYTES (16u << 20)

static bool opt_foldable(const ir_node *nd)
{
    static const char *const never[] = {"RandomNormal", "RandomUniform", "RandomNormalLike",
                                        "RandomUniformLike", "Bernoulli", "Multinomial", NULL};
    if (!nd->schema) return false;
    if (nd->domain && *nd->domain && strcmp(nd->domain, "ai.onnx")) return false;
    for (int i = 0; never[i]; i++)
        if (!strcmp(nd->op_type, never[i])) return false;
    for (int a = 0; a < nd->n_attrs; a++) /* control flow may reference outer values */
        if (nd->attrs[a].g || nd->attrs[a].graphs) return false;
    return true;
}

/* Shape/Size of a value whose type is fully static: the answer is known at load time
 * even though the value itself is not. */
static core_value *opt_static_shape(const ir_graph *g, const ir_node *nd)
{
    bool is_shape = !strcmp(nd->op_type, "Shape"), is_size = !strcmp(nd->op_type, "Size");
    if ((!is_shape && !is_size) || (nd->domain && *nd->domain) || nd->n_inputs < 1 || nd->inputs[0] < 0)
        return NULL;
    const ir_type *t = &g->values[nd->inputs[0]].type;
    if (t->kind != IR_TYPE_TENSOR || t->ndim < 0 || (t->ndim > 0 && !t->dims)) return NULL;
    int64_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->dims[i].value < 0) return NULL;
        numel *= t->dims[i].value;
    }
    int64_t start = 0, end = t->ndim;
    if (is_shape) {
        const ir_attr *a = ir_node_attr(nd, "start"), *b = ir_node_attr(nd, "end");
        if (a) start = a->i < 0 ? a->i + t->ndim : a->i;
        if (b) end = b->i < 0 ? b->i + t->ndim : b->i;
        start = start < 0 ? 0 : start > t->ndim ? t->ndim : start;
        end = end < start ? start : end > t->ndim ? t->ndim : end;
    }
    int64_t n = end - start;
    core_tensor *out = core_tensor_create(KILN_DTYPE_INT64, is_shape ? 1 : 0, &n);
    if (!out) return NULL;
    int64_t *d = out->data;
    if (is_shape) for (int64_t i = 0; i < n; i++) d[i] = t->dims[start + i].value;
    else d[0] = numel;
    return core_value_from_tensor(out);
}

static kiln_status opt_fold_graph(ir_graph *g, int depth, int *changes)
{
    if (depth > 64) return KILN_OK;
    int kept = 0;
    ir_graph_infer(g);
    core_value *ins[64], *outs[64];
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *nd = &g->nodes[i];
        for (int a = 0; a < nd->n_attrs; a++) {
            if (nd->attrs[a].g) opt_fold_graph(nd->attrs[a].g, depth + 1, changes);
            for (int64_t k = 0; nd->attrs[a].graphs && k < nd->attrs[a].n; k++)
                opt_fold_graph(nd->attrs[a].graphs[k], depth + 1, changes);
        }
        core_value *ss = nd->n_outputs == 1 && nd->outputs[0] >= 0 && !g->values[nd->outputs[0]].is_graph_output
                             ? opt_static_shape(g, nd) : NULL;
        if (ss) {
            g->values[nd->outputs[0]].constant = ss;
            ir_node_free(nd);
            (*changes)++;
            continue;
        }
        bool all_const = opt_foldable(nd) && nd->n_inputs <= 64 && nd->n_outputs <= 64 && nd->n_outputs > 0;
        for (int k = 0; all_const && k < nd->n_inputs; k++) {
            int v = nd->inputs[k];
            ins[k] = v >= 0 ? g->values[v].constant : NULL;
            if (v >= 0 && (!ins[k] || g->values[v].is_graph_input)) all_const = false;
        }
        for (int k = 0; all_const && k < nd->n_outputs; k++)
            if (nd->outputs[k] >= 0 && g->values[nd->outputs[k]].is_graph_output) all_const = false;
        if (all_const && rt_node_eval(g, nd, ins, outs) == KILN_OK) {
            bool small = true;
            for (int k = 0; k < nd->n_outputs; k++)
                if (outs[k] && (outs[k]->kind != CORE_VALUE_TENSOR || outs[k]->tensor->nbytes > OPT_FOLD_MAX_BYTES))
                    small = false;
            if (small) {
                for (int k = 0; k < nd->n_outputs; k++) {
                    int v = nd->outputs[k];
                    if (v >= 0) { g->values[v].constant = outs[k]; g->values[v].producer = -1; }
                    else core_value_release(outs[k]);
                }
                ir_node_free(nd);
                (*changes)++;
                continue;
            }
            for (int k = 0; k < nd->n_outputs; k++) core_value_release(outs[k]);
        }
        core_error_clear();
        if (kept != i) g->nodes[kept] = *nd;
        kept++;
    }
    g->n_nodes = kept;
    for (int v = 0; v < g->n_values; v++) if (g->values[v].constant) g->values[v].producer = -1;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_outputs; k++)
            if (g->nodes[i].outputs[k] >= 0) g->values[g->nodes[i].outputs[k]].producer = i;
    return KILN_OK;
}

kiln_status opt_fold_constants(ir_graph *g)
{
    /* Folding exposes new static shapes and vice versa: iterate to a fixed point. */
    for (int round = 0; round < 8; round++) {
        int changes = 0;
        kiln_status st = opt_fold_graph(g, 0, &changes);
        if (st) return st;
        if (!changes) break;
    }
    ir_graph_infer(g);
    return KILN_OK;
}
