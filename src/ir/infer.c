/* infer.c — dtype and shape inference with symbolic dimensions over common ops. Types
 * declared by the model (value_info) are kept; unknown ones are filled where the op's
 * rule and its inputs allow. Unknown stays unknown: inference never fails a model. */
#include "ir/ir.h"
#include <stdlib.h>
#include <string.h>

typedef struct infer_shape {
    int ndim;                 /* -1 unknown */
    int64_t v[KILN_MAX_DIMS]; /* -1 unknown */
    const char *sym[KILN_MAX_DIMS];
} infer_shape;

static bool infer_get(const ir_graph *g, int id, kiln_dtype *dt, infer_shape *s)
{
    s->ndim = -1;
    if (dt) *dt = KILN_DTYPE_UNDEFINED;
    if (id < 0) return false;
    const ir_value *val = &g->values[id];
    if (val->constant && val->constant->kind == CORE_VALUE_TENSOR) {
        const core_tensor *t = val->constant->tensor;
        if (dt) *dt = t->dtype;
        s->ndim = t->ndim;
        for (int i = 0; i < t->ndim; i++) { s->v[i] = t->dims[i]; s->sym[i] = NULL; }
        return true;
    }
    const ir_type *t = &val->type;
    if (t->kind != IR_TYPE_TENSOR) return false;
    if (dt) *dt = t->dtype;
    if (t->ndim < 0 || t->ndim > KILN_MAX_DIMS || (t->ndim > 0 && !t->dims)) return t->dtype != KILN_DTYPE_UNDEFINED;
    s->ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++) { s->v[i] = t->dims[i].value; s->sym[i] = t->dims[i].symbol; }
    return true;
}

static void infer_set(ir_graph *g, int id, kiln_dtype dt, const infer_shape *s)
{
    if (id < 0) return;
    ir_type *t = &g->values[id].type;
    if (t->kind == IR_TYPE_TENSOR && t->ndim >= 0 && t->dtype != KILN_DTYPE_UNDEFINED) return; /* declared */
    if (t->kind != IR_TYPE_UNKNOWN && t->kind != IR_TYPE_TENSOR) return;
    kiln_dtype keep = t->kind == IR_TYPE_TENSOR && t->dtype ? t->dtype : dt;
    int old_nd = t->kind == IR_TYPE_TENSOR ? t->ndim : -1;
    ir_type_free(t);
    t->kind = IR_TYPE_TENSOR;
    t->dtype = keep;
    t->ndim = s ? s->ndim : old_nd;
    if (!s || s->ndim <= 0) { if (!s) t->ndim = -1; return; }
    t->dims = calloc((size_t)s->ndim, sizeof *t->dims);
    if (!t->dims) { t->ndim = -1; return; }
    for (int i = 0; i < s->ndim; i++) {
        t->dims[i].value = s->v[i];
        t->dims[i].symbol = s->v[i] < 0 && s->sym[i] ? core_strdup(s->sym[i]) : NULL;
    }
}

/* Integer values of a constant input (shapes, axes, pads); -1 if not constant. */
static int64_t infer_const_ints(const ir_graph *g, int id, int64_t *out, int64_t max)
{
    if (id < 0 || !g->values[id].constant || g->values[id].constant->kind != CORE_VALUE_TENSOR) return -1;
    const core_tensor *t = g->values[id].constant->tensor;
    if (!core_dtype_is_int(t->dtype) || t->numel > max) return -1;
    for (int64_t i = 0; i < t->numel; i++) out[i] = core_load_i64(t->dtype, t->data, i);
    return t->numel;
}

static int64_t infer_attr_ints(const ir_node *n, const char *name, int64_t *out, int64_t max)
{
    const ir_attr *a = ir_node_attr(n, name);
    if (!a || a->type != IR_ATTR_INTS || a->n > max) return -1;
    for (int64_t i = 0; i < a->n; i++) out[i] = a->ints[i];
    return a->n;
}

static int64_t infer_attr_int(const ir_node *n, const char *name, int64_t dflt)
{
    const ir_attr *a = ir_node_attr(n, name);
    return a && a->type == IR_ATTR_INT ? a->i : dflt;
}

static bool infer_broadcast(const infer_shape *a, const infer_shape *b, infer_shape *o)
{
    if (a->ndim < 0 || b->ndim < 0) return false;
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    o->ndim = n;
    for (int i = 0; i < n; i++) {
        int ia = i - (n - a->ndim), ib = i - (n - b->ndim);
        int64_t da = ia < 0 ? 1 : a->v[ia], db = ib < 0 ? 1 : b->v[ib];
        const char *sa = ia < 0 ? NULL : a->sym[ia], *sb = ib < 0 ? NULL : b->sym[ib];
        if (da == 1) { o->v[i] = db; o->sym[i] = sb; }
        else if (db == 1) { o->v[i] = da; o->sym[i] = sa; }
        else if (da >= 0) { o->v[i] = da; o->sym[i] = NULL; }
        else if (db >= 0) { o->v[i] = db; o->sym[i] = NULL; }
        else { o->v[i] = -1; o->sym[i] = sa && sb && !strcmp(sa, sb) ? sa : NULL; }
    }
    return true;
}

static bool infer_is(const char *op, const char *const *list)
{
    for (int i = 0; list[i]; i++) if (!strcmp(op, list[i])) return true;
    return false;
}

static const char *const infer_same[] = {
    "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Sigmoid", "HardSigmoid", "HardSwish", "Softplus",
    "Softsign", "Tanh", "Gelu", "Mish", "Swish", "Clip", "Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal",
    "Floor", "Ceil", "Round", "Erf", "Sin", "Cos", "Tan", "Identity", "Dropout", "Softmax", "LogSoftmax",
    "Hardmax", "BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization",
    "RMSNormalization", "LRN", "LpNormalization", "MeanVarianceNormalization", "Sign", "ThresholdedRelu",
    "Shrink", "CumSum", "CumProd", "Trilu", "BitwiseNot", "Not", NULL};
static const char *const infer_binary[] = {"Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum",
                                           "Mean", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor", NULL};
static const char *const infer_compare[] = {"Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual",
                                            "And", "Or", "Xor", NULL};
static const char *const infer_reduce[] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                                           "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
                                           "ReduceSumSquare", "ArgMax", "ArgMin", NULL};

/* Spatial output size of conv/pool along one axis. */
static int64_t infer_spatial(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe,
                             const char *autopad, bool ceil_mode)
{
    if (in < 0 || k <= 0 || s <= 0) return -1;
    int64_t ek = (k - 1) * d + 1;
    if (autopad && (!strcmp(autopad, "SAME_UPPER") || !strcmp(autopad, "SAME_LOWER"))) return (in + s - 1) / s;
    if (autopad && !strcmp(autopad, "VALID")) return (in - ek) / s + 1 > 0 ? (in - ek + s) / s : 0;
    int64_t num = in + pb + pe - ek;
    if (num < 0) return -1;
    int64_t out = (ceil_mode ? (num + s - 1) / s : num / s) + 1;
    /* ceil mode: the last window must start inside the input or its begin padding. */
    if (ceil_mode && out > 1 && (out - 1) * s >= in + pb) out--;
    return out;
}

/* The convolution/pooling ops of domain ai.kiln (ops/fused.h): FusedConv (channels first),
 * ConvNhwc, MaxPoolNhwc, AveragePoolNhwc (channels last) and the global NHWC pools. */
static void infer_kiln_node(ir_graph *g, const ir_node *n)
{
    const char *op = n->op_type;
    if (n->n_outputs < 1 || n->outputs[0] < 0 || n->n_inputs < 1) return;
    if (!strcmp(op, "ChannelUpdate")) { /* Y is X's shape */
        kiln_dtype xdt;
        infer_shape xs;
        if (infer_get(g, n->inputs[0], &xdt, &xs) && xs.ndim >= 0) infer_set(g, n->outputs[0], xdt, &xs);
        return;
    }
    bool fconv = !strcmp(op, "FusedConv"), cnhwc = !strcmp(op, "ConvNhwc") || !strcmp(op, "ConvNhwcExpandDw");
    bool mbconv = !strcmp(op, "ConvNhwcMbConv"); /* as its depthwise conv, channels from W3 */
    cnhwc = cnhwc || mbconv;
    bool pnhwc = !strcmp(op, "MaxPoolNhwc") || !strcmp(op, "AveragePoolNhwc");
    bool gnhwc = !strcmp(op, "GlobalMaxPoolNhwc") || !strcmp(op, "GlobalAveragePoolNhwc");
    if (!fconv && !cnhwc && !pnhwc && !gnhwc) return;
    kiln_dtype dt;
    infer_shape a, w, o;
    if (!infer_get(g, n->inputs[0], &dt, &a) || a.ndim < 3) return;
    int sp = a.ndim - 2;
    bool last = !fconv;              /* channels-last layout */
    int s0 = last ? 1 : 2;           /* first spatial dim */
    int cd = last ? a.ndim - 1 : 1;  /* channel dim */
    o = a;
    if (gnhwc) {
        for (int i = 0; i < sp; i++) { o.v[s0 + i] = 1; o.sym[s0 + i] = NULL; }
        infer_set(g, n->outputs[0], dt, &o);
        return;
    }
    int64_t k[KILN_MAX_DIMS], s[KILN_MAX_DIMS], d[KILN_MAX_DIMS], p[2 * KILN_MAX_DIMS];
    if (fconv || cnhwc) {
        if (n->n_inputs < 2 || !infer_get(g, n->inputs[1], NULL, &w) || w.ndim != a.ndim) return;
        for (int i = 0; i < sp; i++) k[i] = w.v[i + 2];
        o.v[cd] = w.v[0];
        o.sym[cd] = NULL;
    } else if (infer_attr_ints(n, "kernel_shape", k, KILN_MAX_DIMS) != sp) return;
    if (infer_attr_ints(n, "strides", s, KILN_MAX_DIMS) != sp) for (int i = 0; i < sp; i++) s[i] = 1;
    if (infer_attr_ints(n, "dilations", d, KILN_MAX_DIMS) != sp) for (int i = 0; i < sp; i++) d[i] = 1;
    if (infer_attr_ints(n, "pads", p, 2 * KILN_MAX_DIMS) != 2 * sp) for (int i = 0; i < 2 * sp; i++) p[i] = 0;
    const ir_attr *ap = ir_node_attr(n, "auto_pad");
    bool ceil_mode = infer_attr_int(n, "ceil_mode", 0) != 0;
    for (int i = 0; i < sp; i++) {
        o.v[s0 + i] = infer_spatial(a.v[s0 + i], k[i], s[i], d[i], p[i], p[i + sp], ap ? ap->s : NULL, ceil_mode);
        o.sym[s0 + i] = NULL;
    }
    if (mbconv) {
        infer_shape w3;
        if (n->n_inputs < 7 || !infer_get(g, n->inputs[6], NULL, &w3) || w3.ndim < 1) return;
        o.v[cd] = w3.v[0];
    }
    infer_set(g, n->outputs[0], dt, &o);
}

static void infer_node(ir_graph *g, const ir_node *n)
{
    const char *op = n->op_type;
    if (n->domain && !strcmp(n->domain, "ai.kiln")) {
        infer_kiln_node(g, n);
        return;
    }
    if (n->domain && *n->domain && strcmp(n->domain, "ai.onnx")) return;
    if (n->n_outputs < 1 || n->outputs[0] < 0) return;
    kiln_dtype dt, dt1;
    infer_shape a, b, o;
    int in0 = n->n_inputs > 0 ? n->inputs[0] : -1, in1 = n->n_inputs > 1 ? n->inputs[1] : -1;
    bool h0 = infer_get(g, in0, &dt, &a);
    if (infer_is(op, infer_same)) {
        if (h0) infer_set(g, n->outputs[0], dt, &a);
        return;
    }
    if (infer_is(op, infer_binary) || infer_is(op, infer_compare) || !strcmp(op, "Where")) {
        if (!h0) return;
        o = a;
        for (int k = 1; k < n->n_inputs; k++) {
            if (!infer_get(g, n->inputs[k], &dt1, &b)) return;
            infer_shape t = o;
            if (!infer_broadcast(&t, &b, &o)) { infer_set(g, n->outputs[0], dt, NULL); return; }
        }
        if (!strcmp(op, "Where")) infer_get(g, in1, &dt, &b);
        infer_set(g, n->outputs[0], infer_is(op, infer_compare) ? KILN_DTYPE_BOOL : dt, &o);
        return;
    }
    if (!strcmp(op, "Cast")) {
        if (h0) infer_set(g, n->outputs[0], (kiln_dtype)infer_attr_int(n, "to", 0), &a);
        return;
    }
    if (!strcmp(op, "Shape")) {
        o.ndim = 1; o.sym[0] = NULL; o.v[0] = -1;
        if (h0 && a.ndim >= 0) {
            int64_t s = infer_attr_int(n, "start", 0), e = infer_attr_int(n, "end", a.ndim);
            if (s < 0) s += a.ndim;
            if (e < 0) e += a.ndim;
            s = s < 0 ? 0 : s > a.ndim ? a.ndim : s;
            e = e < 0 ? 0 : e > a.ndim ? a.ndim : e;
            o.v[0] = e > s ? e - s : 0;
        }
        infer_set(g, n->outputs[0], KILN_DTYPE_INT64, &o);
        return;
    }
    if (!h0 || a.ndim < 0) return;
    if (!strcmp(op, "Conv") || !strcmp(op, "MaxPool") || !strcmp(op, "AveragePool") || !strcmp(op, "LpPool")) {
        int sp = a.ndim - 2;
        if (sp < 1) return;
        int64_t k[KILN_MAX_DIMS], s[KILN_MAX_DIMS], d[KILN_MAX_DIMS], p[2 * KILN_MAX_DIMS];
        infer_shape w;
        bool conv = !strcmp(op, "Conv");
        if (conv) {
            if (!infer_get(g, in1, NULL, &w) || w.ndim != a.ndim) return;
            for (int i = 0; i < sp; i++) k[i] = w.v[i + 2];
        } else if (infer_attr_ints(n, "kernel_shape", k, KILN_MAX_DIMS) != sp) return;
        if (infer_attr_ints(n, "strides", s, KILN_MAX_DIMS) != sp) for (int i = 0; i < sp; i++) s[i] = 1;
        if (infer_attr_ints(n, "dilations", d, KILN_MAX_DIMS) != sp) for (int i = 0; i < sp; i++) d[i] = 1;
        if (infer_attr_ints(n, "pads", p, 2 * KILN_MAX_DIMS) != 2 * sp) for (int i = 0; i < 2 * sp; i++) p[i] = 0;
        const ir_attr *ap = ir_node_attr(n, "auto_pad");
        bool ceil_mode = infer_attr_int(n, "ceil_mode", 0) != 0;
        o = a;
        if (conv) { o.v[1] = w.v[0]; o.sym[1] = NULL; }
        for (int i = 0; i < sp; i++) {
            o.v[i + 2] = infer_spatial(a.v[i + 2], k[i], s[i], d[i], p[i], p[i + sp], ap ? ap->s : NULL, ceil_mode);
            o.sym[i + 2] = NULL;
        }
        infer_set(g, n->outputs[0], dt, &o);
        return;
    }
    if (!strcmp(op, "GlobalAveragePool") || !strcmp(op, "GlobalMaxPool")) {
        o = a;
        for (int i = 2; i < a.ndim; i++) { o.v[i] = 1; o.sym[i] = NULL; }
        infer_set(g, n->outputs[0], dt, &o);
        return;
    }
    if (!strcmp(op, "MatMul")) {
        if (!infer_get(g, in1, NULL, &b) || b.ndim < 1 || a.ndim < 1) return;
        infer_shape ba = a, bb = b;
        ba.ndim = a.ndim >= 2 ? a.ndim - 2 : 0;
        bb.ndim = b.ndim >= 2 ? b.ndim - 2 : 0;
        if (!infer_broadcast(&ba, &bb, &o)) return;
        if (a.ndim >= 2) { o.v[o.ndim] = a.v[a.ndim - 2]; o.sym[o.ndim++] = a.sym[a.ndim - 2]; }
        if (b.ndim >= 2) { o.v[o.ndim] = b.v[b.ndim - 1]; o.sym[o.ndim++] = b.sym[b.ndim - 1]; }
        infer_set(g, n->outputs[0], dt, &o);
        return;
    }
    if (!strcmp(op, "Gemm")) {
        if (!infer_get(g, in1, NULL, &b) || a.ndim != 2 || b.ndim != 2) return;
        bool ta = infer_attr_int(n, "transA", 0), tb = infer_attr_int(n, "transB", 0);
        o.ndim = 2;
        o.v[0] = a.v[ta ? 1 : 0]; o.sym[0] = a.sym[ta ? 1 : 0];
        o.v[1] = b.v[tb ? 0 : 1]; o.sym[1] = b.sym[tb ? 0 : 1];
        infer_set(g, n->outputs[0], dt, &o);
        return;
    }
    if (!strcmp(op, "Flatten")) {
        int64_t ax = infer_attr_int(n, "axis", 1);
        if (ax < 0) ax += a.ndim;
        if (ax < 0 || ax > a.ndim) return;
        int64_t l = 1, r = 1;
        for (int i = 0; i < a.ndim; i++) {
            int64_t *p = i < ax ? &l : &r;
            if (a.v[i] < 0 || *p < 0) *p = -1; else *p *= a.v[i];
        }
        o.ndim = 2; o.v[0] = l; o.v[1] = r; o.sym[0] = ax == 1 && a.ndim > 0 ? a.sym[0] : NULL; o.sym[1] = NULL;
        infer_set(g, n->outputs[0], dt, &o);
        return;
    }
    if (!strcmp(op, "Transpose")) {
        int64_t perm[KILN_MAX_DIMS];
        int64_t np = infer_attr_ints(n, "perm", perm, KILN_MAX_DIMS);
        if (np < 0) { np = a.ndim; for (int i = 0; i < a.ndim; i++) perm[i] = a.ndim - 1 - i; }
        if (np != a.ndim) return;
        o.ndim = a.ndim;
        for (int i = 0; i < a.ndim; i++) {
            if (perm[i] < 0 || perm[i] >= a.ndim) return;
            o.v[i] = a.v[perm[i]]; o.sym[i] = a.sym[perm[i]];
        }
        infer_set(g, n->outputs[0], dt, &o);
        return;
    }
    if (!strcmp(op, "Reshape")) {
        int64_t sh[KILN_MAX_DIMS];
        int64_t ns = infer_const_ints(g, in1, sh, KILN_MAX_DIMS);
        if (ns < 0) return;
        bool allowzero = infer_attr_int(n, "allowzero", 0) != 0;
        int64_t known = 1, total = 1;
        int neg = -1;
        for (int i = 0; i < a.ndim; i++) total = a.v[i] < 0 || total < 0 ? -1 : total * a.v[i];
        o.ndim = (int)ns;
        for (int i = 0; i < ns; i++) {
            o.sym[i] = NULL;
            if (sh[i] == 0 && !allowzero) { if (i >= a.ndim) return; o.v[i] = a.v[i]; o.sym[i] = a.sym[i]; }
            else if (sh[i] == -1) { neg = i; o.v[i] = -1; continue; }
            else o.v[i] = sh[i];
            known = o.v[i] < 0 || known < 0 ? -1 : known * o.v[i];
        }
        if (neg >= 0 && total >= 0 && known > 0) o.v[neg] = total / known;
        infer_set(g, n->outputs[0], dt, &o);
        return;
    }
    if (!strcmp(op, "Unsqueeze") || !strcmp(op, "Squeeze")) {
        int64_t ax[KILN_MAX_DIMS];
        int64_t na = n->n_inputs > 1 ? infer_const_ints(g, in1, ax, KILN_MAX_DIMS) : infer_attr_ints(n, "axes", ax, KILN_MAX_DIMS);
        bool unsq = !strcmp(op, "Unsqueeze");
        if (na < 0) {
            if (unsq) return;
            o.ndim = 0; /* squeeze all 1s: needs known dims */
            for (int i = 0; i < a.ndim; i++) { if (a.v[i] < 0) return; if (a.v[i] != 1) { o.v[o.ndim] = a.v[i]; o.sym[o.ndim++] = a.sym[i]; } }
            infer_set(g, n->outputs[0], dt, &o);
            return;
        }
        int r = unsq ? a.ndim + (int)na : a.ndim;
        if (r > KILN_MAX_DIMS) return;
        bool mark[KILN_MAX_DIMS] = {0};
        for (int i = 0; i < na; i++) { int64_t x = ax[i] < 0 ? ax[i] + r : ax[i]; if (x < 0 || x >= r) return; mark[x] = true; }
        o.ndim = 0;
        for (int i = 0, j = 0; i < r; i++) {
            if (unsq) { if (mark[i]) { o.v[o.ndim] = 1; o.sym[o.ndim++] = NULL; } else { o.v[o.ndim] = a.v[j]; o.sym[o.ndim++] = a.sym[j]; j++; } }
            else if (!mark[i]) { o.v[o.ndim] = a.v[i]; o.sym[o.ndim++] = a.sym[i]; }
        }
        infer_set(g, n->outputs[0], dt, &o);
        return;
    }
    if (!strcmp(op, "Concat")) {
        int64_t ax = infer_attr_int(n, "axis", 0);
        if (ax < 0) ax += a.ndim;
        if (ax < 0 || ax >= a.ndim) return;
        o = a;
        for (int k = 1; k < n->n_inputs; k++) {
            if (!infer_get(g, n->inputs[k], NULL, &b) || b.ndim != a.ndim) return;
            o.v[ax] = o.v[ax] < 0 || b.v[ax] < 0 ? -1 : o.v[ax] + b.v[ax];
            o.sym[ax] = NULL;
        }
        infer_set(g, n->outputs[0], dt, &o);
        return;
    }
    if (!strcmp(op, "Gather")) {
        if (!infer_get(g, in1, NULL, &b) || b.ndim < 0) return;
        int64_t ax = infer_attr_int(n, "axis", 0);
        if (ax < 0) ax += a.ndim;
        if (ax < 0 || ax >= a.ndim || a.ndim - 1 + b.ndim > KILN_MAX_DIMS) return;
        o.ndim = 0;
        for (int i = 0; i < ax; i++) { o.v[o.ndim] = a.v[i]; o.sym[o.ndim++] = a.sym[i]; }
        for (int i = 0; i < b.ndim; i++) { o.v[o.ndim] = b.v[i]; o.sym[o.ndim++] = b.sym[i]; }
        for (int i = (int)ax + 1; i < a.ndim; i++) { o.v[o.ndim] = a.v[i]; o.sym[o.ndim++] = a.sym[i]; }
        infer_set(g, n->outputs[0], dt, &o);
        return;
    }
    if (infer_is(op, infer_reduce)) {
        int64_t ax[KILN_MAX_DIMS];
        bool keep = infer_attr_int(n, "keepdims", 1) != 0;
        bool arg = !strncmp(op, "Arg", 3);
        int64_t na;
        if (arg) { ax[0] = infer_attr_int(n, "axis", 0); na = 1; }
        else {
            na = infer_attr_ints(n, "axes", ax, KILN_MAX_DIMS);
            if (na < 0 && n->n_inputs > 1) { na = infer_const_ints(g, in1, ax, KILN_MAX_DIMS); if (na < 0) return; }
            if (na <= 0) {
                if (infer_attr_int(n, "noop_with_empty_axes", 0)) { infer_set(g, n->outputs[0], dt, &a); return; }
                na = a.ndim; for (int i = 0; i < a.ndim; i++) ax[i] = i;
            }
        }
        bool mark[KILN_MAX_DIMS] = {0};
        for (int i = 0; i < na; i++) { int64_t x = ax[i] < 0 ? ax[i] + a.ndim : ax[i]; if (x < 0 || x >= a.ndim) return; mark[x] = true; }
        o.ndim = 0;
        for (int i = 0; i < a.ndim; i++) {
            if (!mark[i]) { o.v[o.ndim] = a.v[i]; o.sym[o.ndim++] = a.sym[i]; }
            else if (keep) { o.v[o.ndim] = 1; o.sym[o.ndim++] = NULL; }
        }
        infer_set(g, n->outputs[0], arg ? KILN_DTYPE_INT64 : dt, &o);
        return;
    }
}

kiln_status ir_graph_infer(ir_graph *g)
{
    for (int i = 0; i < g->n_nodes; i++) infer_node(g, &g->nodes[i]);
    return KILN_OK;
}
