/* fold_batchnorm.c — folds an inference BatchNormalization into the Conv, ConvTranspose or
 * Gemm producing its input: weights scaled per output channel by gamma / sqrt(var + eps),
 * bias becomes (b - mean) * scale + beta. Needs constant float32 weights and BN parameters
 * and a producer read only by the BN. The folded weights are new constants (the originals
 * may be shared). */
#include "opt/rewrite.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const core_tensor *bn_param(const ir_graph *g, const ir_node *n, int k, int64_t C)
{
    if (k >= n->n_inputs) return NULL;
    const core_tensor *t = opt_const(g, n->inputs[k]);
    return t && t->dtype == KILN_DTYPE_FLOAT && t->numel == C && t->ndim == 1 ? t : NULL;
}

/* The BN is in inference mode with per-channel (spatial) statistics. */
static bool bn_inference(const ir_graph *g, const ir_node *n)
{
    int opset = n->opset > 0 ? n->opset : (int)ir_graph_opset(g, "");
    if (opt_attr_int(n, "training_mode", 0)) return false;
    if (opset < 9 && opt_attr_int(n, "spatial", 1) != 1) return false;
    if (opset < 7 && !opt_attr_int(n, "is_test", 0)) return false;
    for (int k = 1; k < n->n_outputs; k++) if (n->outputs[k] >= 0) return false;
    return n->n_inputs == 5 && n->n_outputs >= 1 && n->outputs[0] >= 0;
}

static bool bn_fold_one(ir_graph *g, const opt_uses *u, int bi)
{
    ir_node *bn = &g->nodes[bi];
    if (!bn_inference(g, bn)) return false;
    int x = bn->inputs[0];
    int pi = opt_producer(g, x);
    if (pi < 0 || opt_sole_consumer(u, x) != bi) return false;
    ir_node *pn = &g->nodes[pi];
    bool conv = opt_is(pn, "Conv"), convt = opt_is(pn, "ConvTranspose"), gemm = opt_is(pn, "Gemm");
    if ((!conv && !convt && !gemm) || pn->n_inputs < 2 || pn->n_outputs != 1) return false;
    const core_tensor *w = opt_const(g, pn->inputs[1]);
    const core_tensor *b = pn->n_inputs > 2 && pn->inputs[2] >= 0 ? opt_const(g, pn->inputs[2]) : NULL;
    if (!w || w->dtype != KILN_DTYPE_FLOAT || w->numel == 0) return false;
    if (pn->n_inputs > 2 && pn->inputs[2] >= 0 && (!b || b->dtype != KILN_DTYPE_FLOAT)) return false;
    /* Output channels C and how weights map to them. */
    int64_t C, group = opt_attr_int(pn, "group", 1);
    bool transb = opt_attr_int(pn, "transB", 0) != 0;
    if (conv) {
        if (w->ndim < 3) return false;
        C = w->dims[0];
    } else if (convt) {
        if (w->ndim < 3 || group < 1 || w->dims[0] % group) return false;
        C = w->dims[1] * group;
    } else {
        if (w->ndim != 2 || opt_attr_int(pn, "transA", 0) < 0) return false;
        C = transb ? w->dims[0] : w->dims[1];
        kiln_dtype dt;
        int r;
        int64_t d[KILN_MAX_DIMS];
        /* BN over a 2-D input normalizes dim 1: the Gemm's N. */
        if (!opt_value_rank(g, x, &dt, &r, d) || r != 2) return false;
    }
    const core_tensor *sc = bn_param(g, bn, 1, C), *be = bn_param(g, bn, 2, C), *mean = bn_param(g, bn, 3, C),
                      *var = bn_param(g, bn, 4, C);
    if (!sc || !be || !mean || !var) return false;
    double gbeta = gemm ? opt_attr_float(pn, "beta", 1.0f) : 1.0;
    if (b) {
        /* Conv bias is [C]; Gemm's C must be a per-column vector (or a scalar). */
        if ((conv || convt) && b->numel != C) return false;
        if (gemm && !(b->numel == 1 || (b->numel == C && (b->ndim == 1 || (b->ndim == 2 && b->dims[0] == 1))))) return false;
    }
    double eps = opt_attr_float(bn, "epsilon", 1e-5f);
    const float *S = sc->data, *Bt = be->data, *Mu = mean->data, *V = var->data, *W = w->data;
    double *f = malloc(sizeof(double) * (size_t)C);
    core_tensor *nw = core_tensor_create(KILN_DTYPE_FLOAT, w->ndim, w->dims);
    int64_t bd = C;
    core_tensor *nb = core_tensor_create(KILN_DTYPE_FLOAT, 1, &bd);
    if (!f || !nw || !nb) { free(f); core_tensor_destroy(nw); core_tensor_destroy(nb); core_error_clear(); return false; }
    for (int64_t c = 0; c < C; c++) f[c] = S[c] / sqrt((double)V[c] + eps);
    float *NW = nw->data, *NB = nb->data;
    if (conv) {
        int64_t per = w->numel / C;
        for (int64_t c = 0; c < C; c++)
            for (int64_t k = 0; k < per; k++) NW[c * per + k] = (float)(W[c * per + k] * f[c]);
    } else if (convt) {
        int64_t Mg = w->dims[1], Cin = w->dims[0], Cg = Cin / group, per = w->numel / (Cin * Mg);
        for (int64_t ci = 0; ci < Cin; ci++)
            for (int64_t j = 0; j < Mg; j++) {
                int64_t c = (ci / Cg) * Mg + j;
                for (int64_t k = 0; k < per; k++) {
                    int64_t o = (ci * Mg + j) * per + k;
                    NW[o] = (float)(W[o] * f[c]);
                }
            }
    } else {
        int64_t R = w->dims[0], Q = w->dims[1];
        for (int64_t r = 0; r < R; r++)
            for (int64_t q = 0; q < Q; q++) NW[r * Q + q] = (float)(W[r * Q + q] * f[transb ? r : q]);
    }
    for (int64_t c = 0; c < C; c++) {
        double bias = b ? gbeta * ((const float *)b->data)[b->numel == 1 ? 0 : c] : 0.0;
        NB[c] = (float)((bias - Mu[c]) * f[c] + Bt[c]);
    }
    free(f);
    const char *wname = g->values[pn->inputs[1]].name;
    int wv = opt_new_const(g, wname, "_bnfold", nw);
    int bv = wv >= 0 ? opt_new_const(g, wname, "_bnfold_bias", nb) : (core_tensor_destroy(nb), -1);
    if (wv < 0 || bv < 0) { core_error_clear(); return false; }
    pn = &g->nodes[pi];
    bn = &g->nodes[bi];
    int ins[3] = {pn->inputs[0], wv, bv};
    if (!opt_node_set_inputs(pn, 3, ins)) { core_error_clear(); return false; }
    if (gemm && !opt_set_attr_float(pn, "beta", 1.0f)) { core_error_clear(); return false; }
    int y = bn->outputs[0];
    opt_node_kill(g, bi);
    pn->outputs[0] = y;
    g->values[y].producer = pi;
    return true;
}

kiln_status opt_fold_batchnorm(ir_graph *g, int *count)
{
    opt_uses u;
    kiln_status st = opt_uses_build(g, &u);
    if (st) return st;
    for (int i = 0; i < g->n_nodes; i++) {
        if (!opt_is(&g->nodes[i], "BatchNormalization")) continue;
        if (bn_fold_one(g, &u, i)) {
            (*count)++;
            opt_uses_free(&u);
            if ((st = opt_uses_build(g, &u))) return st;
        }
    }
    opt_uses_free(&u);
    return KILN_OK;
}
