/* inspect.c — `kiln inspect`: describe a model (I/O, opsets, op histogram, parameters,
 * FLOPs estimate from a light shape inference of its own) and, with --check, validate it
 * and list the ops kiln cannot run. */
#include "cli.h"
#include "onnx/onnx.h"
#include "ops/ops.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_inspect_help(FILE *f)
{
    fprintf(f,
            "usage: kiln inspect MODEL [--check] [--shapes]\n\n"
            "Prints the IR version, producer, opset imports, inputs and outputs (dtype and\n"
            "shape, symbolic dims by name), an op histogram (subgraphs included), the number\n"
            "of initializers with their parameter count and bytes, and a FLOPs estimate per\n"
            "inference (symbolic dims taken as 1).\n"
            "  --shapes  list every top-level node with its output shapes and FLOPs\n"
            "  --check   validate the graph (structure, opset imports, attributes) and list\n"
            "            every node whose op kiln cannot run yet; exit 1 if the model is\n"
            "            invalid or has unsupported ops.\n"
            "A plan (.kplan from `kiln build`) shows its target fingerprint, profiles, memory\n"
            "plan and the tactic chosen for each node instead; --check says whether it runs here.\n");
}

/* ---- attribute helpers ------------------------------------------------------------------ */

static int64_t attr_int(const ir_node *n, const char *name, int64_t dflt)
{
    const ir_attr *a = ir_node_attr(n, name);
    return a && a->type == IR_ATTR_INT ? a->i : dflt;
}

static const int64_t *attr_ints(const ir_node *n, const char *name, int64_t *cnt)
{
    const ir_attr *a = ir_node_attr(n, name);
    if (!a || a->type != IR_ATTR_INTS) {
        *cnt = 0;
        return NULL;
    }
    *cnt = a->n;
    return a->ints;
}

static const char *attr_str(const ir_node *n, const char *name, const char *dflt)
{
    const ir_attr *a = ir_node_attr(n, name);
    return a && a->type == IR_ATTR_STRING && a->s ? a->s : dflt;
}

static bool op_is(const ir_node *n, const char *op)
{
    return !strcmp(n->op_type, op);
}

static bool op_in(const ir_node *n, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(n->op_type, *list)) return true;
    return false;
}

static bool default_domain(const char *d)
{
    return !d || !*d || !strcmp(d, "ai.onnx");
}

/* ---- shape table ------------------------------------------------------------------------ */

enum { SH_UNKNOWN = 0, SH_PARTIAL = 1, SH_KNOWN = 2 }; /* PARTIAL: declared, unknown dims = 1 */

typedef struct vshape {
    int state;
    int ndim;
    int64_t dims[KILN_MAX_DIMS];
    int64_t *iv; /* small integer constant contents (shape arithmetic), owned */
    int64_t ivn;
} vshape;

typedef struct shape_table {
    const ir_graph *g;
    vshape *v;
} shape_table;

#define IV_MAX 4096

static vshape *sh_get(shape_table *st, int vid)
{
    if (vid < 0 || vid >= st->g->n_values) return NULL;
    vshape *s = &st->v[vid];
    return s->state != SH_UNKNOWN ? s : NULL;
}

static void sh_set(shape_table *st, int vid, int ndim, const int64_t *dims)
{
    if (vid < 0 || vid >= st->g->n_values || ndim < 0 || ndim > KILN_MAX_DIMS) return;
    for (int i = 0; i < ndim; i++)
        if (dims[i] < 0) return;
    if (core_shape_numel(ndim, dims) < 0) return;
    vshape *s = &st->v[vid];
    if (s->state == SH_KNOWN) return; /* a fully declared shape wins */
    s->state = SH_KNOWN;
    s->ndim = ndim;
    memcpy(s->dims, dims, sizeof(int64_t) * (size_t)ndim);
}

static void iv_set(shape_table *st, int vid, const int64_t *v, int64_t n)
{
    if (vid < 0 || vid >= st->g->n_values || n < 0 || n > IV_MAX) return;
    vshape *s = &st->v[vid];
    if (s->iv) return;
    s->iv = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!s->iv) return;
    if (n) memcpy(s->iv, v, sizeof(int64_t) * (size_t)n);
    s->ivn = n;
}

static const int64_t *iv_get(shape_table *st, int vid, int64_t *n)
{
    *n = 0;
    if (vid < 0 || vid >= st->g->n_values || !st->v[vid].iv) return NULL;
    *n = st->v[vid].ivn;
    return st->v[vid].iv;
}

static void iv_from_tensor(shape_table *st, int vid, const core_tensor *t)
{
    if (!t || !core_dtype_is_int(t->dtype) || t->numel > IV_MAX || (t->numel && !t->data)) return;
    int64_t *tmp = malloc(sizeof(int64_t) * (size_t)(t->numel ? t->numel : 1));
    if (!tmp) return;
    for (int64_t i = 0; i < t->numel; i++) tmp[i] = core_load_i64(t->dtype, t->data, i);
    iv_set(st, vid, tmp, t->numel);
    free(tmp);
}

static bool shape_table_init(shape_table *st, const ir_graph *g)
{
    st->g = g;
    st->v = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof(vshape));
    if (!st->v) return false;
    for (int i = 0; i < g->n_values; i++) {
        const ir_value *v = &g->values[i];
        vshape *s = &st->v[i];
        if (v->constant && v->constant->kind == CORE_VALUE_TENSOR && v->constant->tensor) {
            const core_tensor *t = v->constant->tensor;
            s->state = SH_KNOWN;
            s->ndim = t->ndim;
            memcpy(s->dims, t->dims, sizeof(int64_t) * (size_t)t->ndim);
            iv_from_tensor(st, i, t);
            continue;
        }
        if (v->type.kind != IR_TYPE_TENSOR || v->type.ndim < 0 || v->type.ndim > KILN_MAX_DIMS) continue;
        bool full = true;
        s->ndim = v->type.ndim;
        for (int d = 0; d < v->type.ndim; d++) {
            int64_t x = v->type.dims ? v->type.dims[d].value : -1;
            if (x < 0) full = false;
            s->dims[d] = x < 0 ? 1 : x;
        }
        s->state = full ? SH_KNOWN : SH_PARTIAL;
    }
    return true;
}

static void shape_table_free(shape_table *st)
{
    if (!st->v) return;
    for (int i = 0; i < st->g->n_values; i++) free(st->v[i].iv);
    free(st->v);
}

static int64_t prod(const int64_t *d, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++) p *= d[i];
    return p;
}

/* Values beyond this are not shapes: reject them before arithmetic can overflow. */
#define DIM_LIMIT ((int64_t)1 << 40)

static bool dim_ok(int64_t v)
{
    return v >= -DIM_LIMIT && v <= DIM_LIMIT;
}

static int in_id(const ir_node *n, int i)
{
    return i < n->n_inputs ? n->inputs[i] : -1;
}

static int out_id(const ir_node *n, int i)
{
    return i < n->n_outputs ? n->outputs[i] : -1;
}

/* Multidirectional (numpy) broadcast of a into r (in place). */
static bool broadcast_into(int *rn, int64_t *r, int an, const int64_t *a)
{
    int n = *rn > an ? *rn : an;
    if (n > KILN_MAX_DIMS) return false;
    int64_t out[KILN_MAX_DIMS];
    for (int i = 0; i < n; i++) {
        int ia = i - (n - an), ir = i - (n - *rn);
        int64_t x = ia >= 0 ? a[ia] : 1, y = ir >= 0 ? r[ir] : 1;
        if (x != y && x != 1 && y != 1) return false;
        out[i] = x == 1 ? y : x;
    }
    *rn = n;
    memcpy(r, out, sizeof(int64_t) * (size_t)n);
    return true;
}

static int norm_axis(int64_t axis, int rank)
{
    if (axis < 0) axis += rank;
    return axis < 0 || axis >= rank ? -1 : (int)axis;
}

/* Spatial output size of a conv/pool window. */
static int64_t window_out(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe, const char *autopad,
                          bool ceil_mode)
{
    if (s <= 0 || d <= 0 || k <= 0 || !dim_ok(in) || !dim_ok(s) || !dim_ok(d) || !dim_ok(k) || !dim_ok(pb) || !dim_ok(pe))
        return -1;
    int64_t ek = (k - 1) * d + 1;
    if (!strcmp(autopad, "SAME_UPPER") || !strcmp(autopad, "SAME_LOWER")) return (in + s - 1) / s;
    if (!strcmp(autopad, "VALID")) {
        pb = pe = 0;
    }
    int64_t span = in + pb + pe - ek;
    if (span < 0) return -1;
    int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= in + pb) out--; /* last window must start inside */
    return out;
}

static bool infer_window(const ir_node *n, const vshape *x, int nsp, const int64_t *kernel, int64_t out_c,
                         bool pool, int64_t *out)
{
    int64_t ns, nd, np;
    const int64_t *strides = attr_ints(n, "strides", &ns);
    const int64_t *dil = attr_ints(n, "dilations", &nd);
    const int64_t *pads = attr_ints(n, "pads", &np);
    const char *autopad = attr_str(n, "auto_pad", "NOTSET");
    bool ceil_mode = pool && attr_int(n, "ceil_mode", 0) != 0;
    if ((ns && ns != nsp) || (nd && nd != nsp) || (np && np != 2 * nsp)) return false;
    out[0] = x->dims[0];
    out[1] = out_c;
    for (int i = 0; i < nsp; i++) {
        int64_t o = window_out(x->dims[2 + i], kernel[i], ns ? strides[i] : 1, nd ? dil[i] : 1, np ? pads[i] : 0,
                               np ? pads[i + nsp] : 0, autopad, ceil_mode);
        if (o < 0) return false;
        out[2 + i] = o;
    }
    return true;
}

static const char *const unary_ops[] = {
    "Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "BatchNormalization", "Cast", "CastLike",
    "Ceil", "Celu", "Clip", "Cos", "Cosh", "CumSum", "DequantizeLinear", "Dropout", "Elu", "Erf", "Exp",
    "Floor", "Gelu", "GroupNormalization", "HardSigmoid", "HardSwish", "Hardmax", "Identity",
    "InstanceNormalization", "IsInf", "IsNaN", "LRN", "LayerNormalization", "LeakyRelu", "Log",
    "LogSoftmax", "LpNormalization", "MeanVarianceNormalization", "Mish", "Neg", "Not",
    "QuantizeLinear", "Reciprocal", "Relu", "Round", "Selu", "Shrink", "Sigmoid", "Sign", "Sin", "Sinh",
    "Softmax", "Softplus", "Softsign", "Sqrt", "Swish", "Tan", "Tanh", "ThresholdedRelu", "Trilu",
    "BitwiseNot", "ReverseSequence", "Scatter", "ScatterElements", "ScatterND", "RandomUniformLike", "RandomNormalLike",
    "Bernoulli", "EyeLike", NULL};

static const char *const broadcast_ops[] = {
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "And", "Or", "Xor", "Equal",
    "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Where", "PRelu", "BitShift", "BitwiseAnd",
    "BitwiseOr", "BitwiseXor", NULL};

static const char *const zero_flop_ops[] = {
    "Identity", "Dropout", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Shape",
    "Size", "Constant", "ConstantOfShape", "Gather", "Slice", "Split", "Expand", "Pad", "Tile", "Cast",
    "CastLike", NULL};

static const char *const reduce_ops[] = {
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
    "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare", NULL};

/* Axes given as attribute (old opsets) or as a constant input. */
static const int64_t *axes_of(shape_table *st, const ir_node *n, int input, int64_t *cnt, bool *present)
{
    const int64_t *a = attr_ints(n, "axes", cnt);
    *present = a != NULL;
    if (a) return a;
    int vid = in_id(n, input);
    if (vid >= 0) {
        *present = true;
        return iv_get(st, vid, cnt); /* NULL when not constant */
    }
    *cnt = 0;
    return NULL;
}

static void infer_slice_len(int64_t dim, int64_t start, int64_t end, int64_t step, int64_t *len, int64_t *first)
{
    /* clamp first so that no arithmetic below can overflow (step == INT64_MIN excluded by caller) */
    start = start < -DIM_LIMIT ? -DIM_LIMIT : start > DIM_LIMIT ? DIM_LIMIT : start;
    end = end < -DIM_LIMIT ? -DIM_LIMIT : end > DIM_LIMIT ? DIM_LIMIT : end;
    if (start < 0) start += dim;
    if (end < 0) end += dim;
    if (step > 0) {
        start = start < 0 ? 0 : start > dim ? dim : start;
        end = end < 0 ? 0 : end > dim ? dim : end;
        *len = end > start ? (end - start - 1) / step + 1 : 0;
    } else {
        start = start < 0 ? -1 : start > dim - 1 ? dim - 1 : start;
        end = end < -1 ? -1 : end > dim - 1 ? dim - 1 : end;
        *len = start > end ? (start - end - 1) / (-step) + 1 : 0;
    }
    *first = start;
}

/* Infers output shapes (and small integer constants) of node n where it can. */
static void infer_node(shape_table *st, const ir_node *n, int opset)
{
    if (!default_domain(n->domain)) return;
    vshape *x = sh_get(st, in_id(n, 0));
    int64_t out[KILN_MAX_DIMS];
    memset(out, 0, sizeof out);
    int y = out_id(n, 0);

    if (op_in(n, unary_ops)) {
        if (!x) return;
        sh_set(st, y, x->ndim, x->dims);
        if (op_is(n, "Dropout")) sh_set(st, out_id(n, 1), x->ndim, x->dims);
        int64_t cnt;
        const int64_t *iv;
        if ((op_is(n, "Identity") || op_is(n, "Cast")) && (iv = iv_get(st, in_id(n, 0), &cnt)) != NULL)
            iv_set(st, y, iv, cnt);
        return;
    }
    if (op_in(n, broadcast_ops)) {
        if (!x) return;
        int rn = x->ndim;
        memcpy(out, x->dims, sizeof(int64_t) * (size_t)rn);
        if (ir_node_attr(n, "broadcast")) { /* legacy opset < 7 broadcast: output is A */
            sh_set(st, y, rn, out);
            return;
        }
        for (int i = 1; i < n->n_inputs; i++) {
            vshape *b = sh_get(st, n->inputs[i]);
            if (!b || !broadcast_into(&rn, out, b->ndim, b->dims)) return;
        }
        sh_set(st, y, rn, out);
        /* constant folding of shape arithmetic (Mul/Add/Sub/Div of small int vectors) */
        int64_t na, nb;
        const int64_t *a = iv_get(st, in_id(n, 0), &na), *b = iv_get(st, in_id(n, 1), &nb);
        if (a && b && n->n_inputs == 2 && (na == nb || na == 1 || nb == 1) &&
            (op_is(n, "Mul") || op_is(n, "Add") || op_is(n, "Sub") || op_is(n, "Div"))) {
            int64_t m = na > nb ? na : nb, r[IV_MAX];
            for (int64_t i = 0; i < m; i++) {
                int64_t p = a[na == 1 ? 0 : i], q = b[nb == 1 ? 0 : i];
                if ((op_is(n, "Div") && q == 0) || !dim_ok(p) || !dim_ok(q)) return;
                r[i] = op_is(n, "Mul") ? p * q : op_is(n, "Add") ? p + q : op_is(n, "Sub") ? p - q : p / q;
            }
            iv_set(st, y, r, m);
        }
        return;
    }
    if (op_is(n, "Constant")) {
        const ir_attr *a = ir_node_attr(n, "value");
        if (a && a->type == IR_ATTR_TENSOR && a->t) {
            sh_set(st, y, a->t->ndim, a->t->dims);
            iv_from_tensor(st, y, a->t);
        } else if ((a = ir_node_attr(n, "value_int")) != NULL) {
            sh_set(st, y, 0, out);
            iv_set(st, y, &a->i, 1);
        } else if ((a = ir_node_attr(n, "value_ints")) != NULL) {
            out[0] = a->n;
            sh_set(st, y, 1, out);
            iv_set(st, y, a->ints, a->n);
        } else if ((a = ir_node_attr(n, "value_float")) != NULL) {
            sh_set(st, y, 0, out);
        } else if ((a = ir_node_attr(n, "value_floats")) != NULL) {
            out[0] = a->n;
            sh_set(st, y, 1, out);
        }
        return;
    }
    if (op_is(n, "ConstantOfShape")) {
        int64_t cnt;
        const int64_t *iv = iv_get(st, in_id(n, 0), &cnt);
        if (iv && cnt <= KILN_MAX_DIMS) sh_set(st, y, (int)cnt, iv);
        return;
    }
    if (op_is(n, "Shape")) {
        if (!x) return;
        int64_t start = attr_int(n, "start", 0), end = attr_int(n, "end", x->ndim);
        if (start < 0) start += x->ndim;
        if (end < 0) end += x->ndim;
        start = start < 0 ? 0 : start > x->ndim ? x->ndim : start;
        end = end < start ? start : end > x->ndim ? x->ndim : end;
        out[0] = end - start;
        sh_set(st, y, 1, out);
        iv_set(st, y, x->dims + start, end - start);
        return;
    }
    if (op_is(n, "Size")) {
        if (!x) return;
        int64_t c = prod(x->dims, 0, x->ndim);
        sh_set(st, y, 0, out);
        iv_set(st, y, &c, 1);
        return;
    }
    if (!x) return;

    if (op_is(n, "Conv") || op_is(n, "ConvInteger") || op_is(n, "QLinearConv")) {
        int wi = op_is(n, "QLinearConv") ? 3 : 1;
        vshape *w = sh_get(st, in_id(n, wi));
        if (!w || w->ndim != x->ndim || x->ndim < 3) return;
        int64_t kn;
        const int64_t *k = attr_ints(n, "kernel_shape", &kn);
        if (!k) k = w->dims + 2;
        else if (kn != x->ndim - 2) return;
        if (infer_window(n, x, x->ndim - 2, k, w->dims[0], false, out)) sh_set(st, y, x->ndim, out);
        return;
    }
    if (op_is(n, "ConvTranspose")) {
        vshape *w = sh_get(st, in_id(n, 1));
        int nsp = x->ndim - 2;
        if (!w || w->ndim != x->ndim || nsp < 1) return;
        int64_t ns, nd, np, nop, nos, nk;
        const int64_t *strides = attr_ints(n, "strides", &ns), *dil = attr_ints(n, "dilations", &nd);
        const int64_t *pads = attr_ints(n, "pads", &np), *opad = attr_ints(n, "output_padding", &nop);
        const int64_t *oshape = attr_ints(n, "output_shape", &nos), *k = attr_ints(n, "kernel_shape", &nk);
        const char *autopad = attr_str(n, "auto_pad", "NOTSET");
        if (!k) k = w->dims + 2;
        else if (nk != nsp) return;
        if ((ns && ns != nsp) || (nd && nd != nsp) || (np && np != 2 * nsp) || (nop && nop != nsp)) return;
        out[0] = x->dims[0];
        int64_t group = attr_int(n, "group", 1);
        if (group < 1 || group > DIM_LIMIT / (w->dims[1] + 1)) return;
        out[1] = w->dims[1] * group;
        for (int i = 0; i < nsp; i++) {
            int64_t s = ns ? strides[i] : 1, d = nd ? dil[i] : 1;
            if (oshape && nos >= nsp) {
                if (!dim_ok(oshape[nos - nsp + i])) return;
                out[2 + i] = oshape[nos - nsp + i];
            } else if (!strcmp(autopad, "SAME_UPPER") || !strcmp(autopad, "SAME_LOWER")) {
                if (!dim_ok(s) || (double)x->dims[2 + i] * (double)s > (double)DIM_LIMIT) return;
                out[2 + i] = x->dims[2 + i] * s;
            } else {
                if (!dim_ok(s) || !dim_ok(d) || !dim_ok(k[i]) || !dim_ok(x->dims[2 + i]) ||
                    (double)s * (double)x->dims[2 + i] + (double)k[i] * (double)d > (double)DIM_LIMIT ||
                    (nop && !dim_ok(opad[i])) || (np && (!dim_ok(pads[i]) || !dim_ok(pads[i + nsp]))))
                    return;
                out[2 + i] = s * (x->dims[2 + i] - 1) + (nop ? opad[i] : 0) + (k[i] - 1) * d + 1 -
                             (np ? pads[i] + pads[i + nsp] : 0);
            }
        }
        sh_set(st, y, x->ndim, out);
        return;
    }
    if (op_is(n, "MaxPool") || op_is(n, "AveragePool") || op_is(n, "LpPool")) {
        int64_t kn;
        const int64_t *k = attr_ints(n, "kernel_shape", &kn);
        if (!k || kn != x->ndim - 2 || x->ndim < 3) return;
        if (infer_window(n, x, x->ndim - 2, k, x->dims[1], true, out)) {
            sh_set(st, y, x->ndim, out);
            sh_set(st, out_id(n, 1), x->ndim, out);
        }
        return;
    }
    if (op_is(n, "GlobalAveragePool") || op_is(n, "GlobalMaxPool") || op_is(n, "GlobalLpPool")) {
        if (x->ndim < 2) return;
        for (int i = 0; i < x->ndim; i++) out[i] = i < 2 ? x->dims[i] : 1;
        sh_set(st, y, x->ndim, out);
        return;
    }
    if (op_is(n, "Gemm")) {
        vshape *b = sh_get(st, in_id(n, 1));
        if (!b || x->ndim != 2 || b->ndim != 2) return;
        out[0] = attr_int(n, "transA", 0) ? x->dims[1] : x->dims[0];
        out[1] = attr_int(n, "transB", 0) ? b->dims[0] : b->dims[1];
        sh_set(st, y, 2, out);
        return;
    }
    if (op_is(n, "MatMul") || op_is(n, "MatMulInteger") || op_is(n, "QLinearMatMul")) {
        vshape *b = sh_get(st, in_id(n, op_is(n, "QLinearMatMul") ? 3 : 1));
        if (!b || x->ndim < 1 || b->ndim < 1) return;
        int64_t ad[KILN_MAX_DIMS + 1], bd[KILN_MAX_DIMS + 1];
        int an = x->ndim, bn = b->ndim;
        memcpy(ad, x->dims, sizeof(int64_t) * (size_t)an);
        memcpy(bd, b->dims, sizeof(int64_t) * (size_t)bn);
        if (an == 1) {
            ad[1] = ad[0];
            ad[0] = 1;
            an = 2;
        }
        if (bn == 1) {
            bd[1] = 1;
            bn = 2;
        }
        if (ad[an - 1] != bd[bn - 2]) return;
        int rn = an - 2;
        memcpy(out, ad, sizeof(int64_t) * (size_t)rn);
        if (!broadcast_into(&rn, out, bn - 2, bd)) return;
        if (rn + 2 > KILN_MAX_DIMS) return;
        if (x->ndim > 1) out[rn++] = ad[an - 2];
        if (b->ndim > 1) out[rn++] = bd[bn - 1];
        sh_set(st, y, rn, out);
        return;
    }
    if (op_is(n, "Flatten")) {
        int64_t a = attr_int(n, "axis", 1);
        if (a < 0) a += x->ndim;
        if (a < 0 || a > x->ndim) return;
        int axis = (int)a;
        out[0] = prod(x->dims, 0, axis);
        out[1] = prod(x->dims, axis, x->ndim);
        sh_set(st, y, 2, out);
        return;
    }
    if (op_is(n, "Reshape")) {
        int64_t cnt;
        const int64_t *shp = opset < 5 ? attr_ints(n, "shape", &cnt) : iv_get(st, in_id(n, 1), &cnt);
        if (!shp || cnt > KILN_MAX_DIMS) return;
        bool allowzero = attr_int(n, "allowzero", 0) != 0;
        int neg = -1;
        int64_t known = 1;
        for (int i = 0; i < cnt; i++) {
            int64_t d = shp[i];
            if (d == 0 && !allowzero) {
                if (i >= x->ndim) return;
                d = x->dims[i];
            }
            if (d == -1) {
                if (neg >= 0) return;
                neg = i;
                d = 1;
            } else if (d < 0) {
                return;
            }
            if (!dim_ok(d)) return;
            out[i] = d;
            known *= d;
            if (!dim_ok(known)) return;
        }
        if (neg >= 0) {
            int64_t total = prod(x->dims, 0, x->ndim);
            if (known == 0 || total % known) return;
            out[neg] = total / known;
        }
        sh_set(st, y, (int)cnt, out);
        int64_t ivn;
        const int64_t *iv = iv_get(st, in_id(n, 0), &ivn);
        if (iv) iv_set(st, y, iv, ivn);
        return;
    }
    if (op_is(n, "Transpose")) {
        int64_t pn;
        const int64_t *perm = attr_ints(n, "perm", &pn);
        if (perm && pn != x->ndim) return;
        for (int i = 0; i < x->ndim; i++) {
            int64_t p = perm ? perm[i] : x->ndim - 1 - i;
            if (p < 0 || p >= x->ndim) return;
            out[i] = x->dims[p];
        }
        sh_set(st, y, x->ndim, out);
        return;
    }
    if (op_is(n, "Concat")) {
        int axis = norm_axis(attr_int(n, "axis", 0), x->ndim);
        if (axis < 0) return;
        memcpy(out, x->dims, sizeof(int64_t) * (size_t)x->ndim);
        out[axis] = 0;
        int64_t ivbuf[IV_MAX], ivn = 0;
        bool all_iv = x->ndim == 1;
        for (int i = 0; i < n->n_inputs; i++) {
            vshape *s = sh_get(st, n->inputs[i]);
            if (!s || s->ndim != x->ndim) return;
            if (!dim_ok(s->dims[axis]) || !dim_ok(out[axis])) return;
            out[axis] += s->dims[axis];
            int64_t c;
            const int64_t *iv = iv_get(st, n->inputs[i], &c);
            if (!iv || ivn + c > IV_MAX) all_iv = false;
            else if (all_iv) {
                memcpy(ivbuf + ivn, iv, sizeof(int64_t) * (size_t)c);
                ivn += c;
            }
        }
        sh_set(st, y, x->ndim, out);
        if (all_iv) iv_set(st, y, ivbuf, ivn);
        return;
    }
    if (op_is(n, "Squeeze") || op_is(n, "Unsqueeze")) {
        int64_t cnt;
        bool present;
        const int64_t *axes = axes_of(st, n, 1, &cnt, &present);
        if (present && !axes) return;
        bool unsq = op_is(n, "Unsqueeze");
        if (cnt > KILN_MAX_DIMS) return;
        int rn = unsq ? x->ndim + (int)cnt : x->ndim;
        if (rn > KILN_MAX_DIMS || (unsq && !axes)) return;
        bool mark[KILN_MAX_DIMS] = {false};
        for (int64_t i = 0; i < cnt; i++) {
            int a = norm_axis(axes[i], rn);
            if (a < 0) return;
            mark[a] = true;
        }
        int k = 0, m = 0;
        for (int i = 0; i < rn; i++) {
            if (unsq) {
                out[m++] = mark[i] ? 1 : x->dims[k++];
            } else if (axes ? !mark[i] : x->dims[i] != 1) {
                out[m++] = x->dims[i];
            }
        }
        sh_set(st, y, m, out);
        int64_t ivn;
        const int64_t *iv = iv_get(st, in_id(n, 0), &ivn);
        if (iv) iv_set(st, y, iv, ivn);
        return;
    }
    if (op_is(n, "Gather")) {
        vshape *q = sh_get(st, in_id(n, 1));
        int axis = norm_axis(attr_int(n, "axis", 0), x->ndim);
        if (!q || axis < 0 || x->ndim - 1 + q->ndim > KILN_MAX_DIMS) return;
        int m = 0;
        for (int i = 0; i < axis; i++) out[m++] = x->dims[i];
        for (int i = 0; i < q->ndim; i++) out[m++] = q->dims[i];
        for (int i = axis + 1; i < x->ndim; i++) out[m++] = x->dims[i];
        sh_set(st, y, m, out);
        int64_t dn, in;
        const int64_t *d = iv_get(st, in_id(n, 0), &dn), *idx = iv_get(st, in_id(n, 1), &in);
        if (d && idx && x->ndim == 1 && in <= IV_MAX) {
            int64_t r[IV_MAX];
            for (int64_t i = 0; i < in; i++) {
                int64_t j = idx[i] < 0 ? idx[i] + dn : idx[i];
                if (j < 0 || j >= dn) return;
                r[i] = d[j];
            }
            iv_set(st, y, r, in);
        }
        return;
    }
    if (op_is(n, "GatherElements")) {
        vshape *q = sh_get(st, in_id(n, 1));
        if (q) sh_set(st, y, q->ndim, q->dims);
        return;
    }
    if (op_is(n, "Slice")) {
        int64_t nst = 0, nen = 0, nax = 0, nstep = 0;
        const int64_t *starts, *ends, *axes = NULL, *steps = NULL;
        if (opset < 10) {
            starts = attr_ints(n, "starts", &nst);
            ends = attr_ints(n, "ends", &nen);
            axes = attr_ints(n, "axes", &nax);
        } else {
            starts = iv_get(st, in_id(n, 1), &nst);
            ends = iv_get(st, in_id(n, 2), &nen);
            if (in_id(n, 3) >= 0 && !(axes = iv_get(st, in_id(n, 3), &nax))) return;
            if (in_id(n, 4) >= 0 && !(steps = iv_get(st, in_id(n, 4), &nstep))) return;
        }
        if (!starts || !ends || nst != nen || (axes && nax != nst) || (steps && nstep != nst)) return;
        memcpy(out, x->dims, sizeof(int64_t) * (size_t)x->ndim);
        int64_t first = 0, step0 = 1;
        for (int64_t i = 0; i < nst; i++) {
            int a = norm_axis(axes ? axes[i] : i, x->ndim);
            int64_t step = steps ? steps[i] : 1;
            if (a < 0 || step == 0 || step == INT64_MIN) return;
            infer_slice_len(x->dims[a], starts[i], ends[i], step, &out[a], &first);
            step0 = step;
        }
        sh_set(st, y, x->ndim, out);
        int64_t dn;
        const int64_t *d = iv_get(st, in_id(n, 0), &dn);
        if (d && x->ndim == 1 && nst == 1 && dn == x->dims[0]) {
            int64_t r[IV_MAX];
            for (int64_t i = 0; i < out[0] && i < IV_MAX; i++) r[i] = d[first + i * step0];
            iv_set(st, y, r, out[0]);
        }
        return;
    }
    if (op_is(n, "Split")) {
        int axis = norm_axis(attr_int(n, "axis", 0), x->ndim);
        if (axis < 0) return;
        int64_t cnt;
        const int64_t *split = attr_ints(n, "split", &cnt);
        if (!split && in_id(n, 1) >= 0) split = iv_get(st, in_id(n, 1), &cnt);
        int no = n->n_outputs;
        if (no <= 0) return;
        for (int i = 0; i < no; i++) {
            memcpy(out, x->dims, sizeof(int64_t) * (size_t)x->ndim);
            if (split) {
                if (cnt != no) return;
                out[axis] = split[i];
            } else {
                int64_t chunk = (x->dims[axis] + no - 1) / no;
                int64_t left = x->dims[axis] - chunk * i;
                out[axis] = left < 0 ? 0 : left < chunk ? left : chunk;
            }
            sh_set(st, n->outputs[i], x->ndim, out);
        }
        return;
    }
    if (op_is(n, "Pad")) {
        int64_t cnt;
        const int64_t *pads = opset < 11 ? attr_ints(n, "pads", &cnt) : iv_get(st, in_id(n, 1), &cnt);
        if (!pads || cnt != 2 * x->ndim || in_id(n, 3) >= 0) return;
        for (int i = 0; i < x->ndim; i++) {
            if (!dim_ok(pads[i]) || !dim_ok(pads[i + x->ndim])) return;
            out[i] = x->dims[i] + pads[i] + pads[i + x->ndim];
        }
        sh_set(st, y, x->ndim, out);
        return;
    }
    if (op_is(n, "Tile")) {
        int64_t cnt;
        const int64_t *rep = iv_get(st, in_id(n, 1), &cnt);
        if (!rep || cnt != x->ndim) return;
        for (int i = 0; i < x->ndim; i++) {
            if (rep[i] < 0 || rep[i] > DIM_LIMIT || (rep[i] && x->dims[i] > DIM_LIMIT / rep[i])) return;
            out[i] = x->dims[i] * rep[i];
        }
        sh_set(st, y, x->ndim, out);
        return;
    }
    if (op_is(n, "Expand")) {
        int64_t cnt;
        const int64_t *shp = iv_get(st, in_id(n, 1), &cnt);
        if (!shp || cnt > KILN_MAX_DIMS) return;
        int rn = x->ndim;
        memcpy(out, x->dims, sizeof(int64_t) * (size_t)rn);
        if (broadcast_into(&rn, out, (int)cnt, shp)) sh_set(st, y, rn, out);
        return;
    }
    if (op_in(n, reduce_ops) || op_is(n, "ArgMax") || op_is(n, "ArgMin")) {
        bool keep = attr_int(n, "keepdims", 1) != 0;
        bool mark[KILN_MAX_DIMS] = {false};
        if (op_is(n, "ArgMax") || op_is(n, "ArgMin")) {
            int a = norm_axis(attr_int(n, "axis", 0), x->ndim);
            if (a < 0) return;
            mark[a] = true;
        } else {
            int64_t cnt;
            bool present;
            const int64_t *axes = axes_of(st, n, 1, &cnt, &present);
            if (present && !axes) return;
            if (cnt == 0) {
                if (attr_int(n, "noop_with_empty_axes", 0)) {
                    sh_set(st, y, x->ndim, x->dims);
                    return;
                }
                for (int i = 0; i < x->ndim; i++) mark[i] = true;
            }
            for (int64_t i = 0; i < cnt; i++) {
                int a = norm_axis(axes[i], x->ndim);
                if (a < 0) return;
                mark[a] = true;
            }
        }
        int m = 0;
        for (int i = 0; i < x->ndim; i++) {
            if (!mark[i]) out[m++] = x->dims[i];
            else if (keep) out[m++] = 1;
        }
        sh_set(st, y, m, out);
        return;
    }
}

/* FLOPs of one node from the shapes known around it; false when they are not known. */
static bool node_flops(shape_table *st, const ir_node *n, double *flops)
{
    *flops = 0;
    for (int i = 0; i < n->n_outputs; i++)
        if (n->outputs[i] >= 0 && !sh_get(st, n->outputs[i])) return false;
    if (!default_domain(n->domain)) {
        vshape *o = sh_get(st, out_id(n, 0));
        if (o) *flops = (double)prod(o->dims, 0, o->ndim);
        return true;
    }
    if (op_in(n, zero_flop_ops)) return true;
    vshape *x = sh_get(st, in_id(n, 0)), *o = sh_get(st, out_id(n, 0));
    if (op_is(n, "Conv") || op_is(n, "ConvInteger") || op_is(n, "QLinearConv")) {
        vshape *w = sh_get(st, in_id(n, op_is(n, "QLinearConv") ? 3 : 1));
        if (!w || !o || w->ndim < 2) return false;
        *flops = 2.0 * (double)prod(o->dims, 0, o->ndim) * (double)prod(w->dims, 1, w->ndim);
        return true;
    }
    if (op_is(n, "ConvTranspose")) {
        vshape *w = sh_get(st, in_id(n, 1));
        if (!w || !x || w->ndim < 2) return false;
        *flops = 2.0 * (double)prod(x->dims, 0, x->ndim) * (double)prod(w->dims, 1, w->ndim);
        return true;
    }
    if (op_is(n, "MatMul") || op_is(n, "MatMulInteger") || op_is(n, "QLinearMatMul")) {
        if (!x || !o || x->ndim < 1) return false;
        *flops = 2.0 * (double)prod(o->dims, 0, o->ndim) * (double)x->dims[x->ndim - 1];
        return true;
    }
    if (op_is(n, "Gemm")) {
        if (!x || !o || x->ndim != 2) return false;
        double k = attr_int(n, "transA", 0) ? (double)x->dims[0] : (double)x->dims[1];
        *flops = 2.0 * (double)prod(o->dims, 0, o->ndim) * k;
        return true;
    }
    if (op_is(n, "MaxPool") || op_is(n, "AveragePool") || op_is(n, "LpPool")) {
        int64_t kn;
        const int64_t *k = attr_ints(n, "kernel_shape", &kn);
        if (!o) return false;
        double kp = 1;
        for (int64_t i = 0; k && i < kn; i++) kp *= (double)k[i];
        *flops = (double)prod(o->dims, 0, o->ndim) * kp;
        return true;
    }
    if (op_in(n, reduce_ops) || op_is(n, "ArgMax") || op_is(n, "ArgMin") || op_is(n, "GlobalAveragePool") ||
        op_is(n, "GlobalMaxPool") || op_is(n, "GlobalLpPool")) {
        if (!x) return false;
        *flops = (double)prod(x->dims, 0, x->ndim);
        return true;
    }
    if (!o) return n->n_outputs == 0 || out_id(n, 0) < 0;
    *flops = (double)prod(o->dims, 0, o->ndim);
    return true;
}

/* ---- printing ---------------------------------------------------------------------------- */

/* One line per node for --shapes: output shapes as used for the FLOPs estimate. */
static void print_node_shapes(shape_table *st, const ir_node *n, int idx, double flops)
{
    printf("  #%d %s%s%s (%s):", idx, n->name && *n->name ? "'" : "", n->name ? n->name : "",
           n->name && *n->name ? "'" : "", n->op_type);
    for (int i = 0; i < n->n_outputs; i++) {
        if (n->outputs[i] < 0) continue;
        vshape *s = sh_get(st, n->outputs[i]);
        printf(" %s=", st->g->values[n->outputs[i]].name);
        if (!s) {
            printf("?");
            continue;
        }
        printf("[");
        for (int d = 0; d < s->ndim; d++) printf("%s%lld", d ? "x" : "", (long long)s->dims[d]);
        printf("]");
    }
    if (flops >= 0) printf(" flops=%.0f", flops);
    printf("\n");
}

static void print_type(const ir_graph *g, const ir_type *t)
{
    (void)g;
    switch (t->kind) {
    case IR_TYPE_TENSOR:
        printf("%s ", core_dtype_name(t->dtype));
        if (t->ndim < 0) {
            printf("[unknown rank]");
            return;
        }
        printf("[");
        for (int i = 0; i < t->ndim; i++) {
            if (i) printf("x");
            const ir_dim *d = t->dims ? &t->dims[i] : NULL;
            if (d && d->value >= 0) printf("%lld", (long long)d->value);
            else if (d && d->symbol && *d->symbol) printf("%s", d->symbol);
            else printf("?");
        }
        printf("]");
        return;
    case IR_TYPE_SEQUENCE:
    case IR_TYPE_OPTIONAL:
        printf("%s<", t->kind == IR_TYPE_SEQUENCE ? "sequence" : "optional");
        if (t->elem) print_type(g, t->elem);
        else printf("?");
        printf(">");
        return;
    case IR_TYPE_MAP: printf("map"); return;
    case IR_TYPE_SPARSE_TENSOR: printf("sparse_tensor %s", core_dtype_name(t->dtype)); return;
    default: printf("unknown type"); return;
    }
}

static void si(double x, char *buf, size_t size, const char *unit)
{
    static const char *const pre[] = {"", "K", "M", "G", "T", "P"};
    int k = 0;
    while (x >= 1000.0 && k < 5) {
        x /= 1000.0;
        k++;
    }
    if (k == 0) snprintf(buf, size, "%.0f%s%s", x, *unit ? " " : "", unit);
    else snprintf(buf, size, "%.3g %s%s", x, pre[k], unit);
}

typedef struct op_count {
    char *key;
    int64_t n;
} op_count;

typedef struct histogram {
    op_count *e;
    int n, cap;
    int64_t total;
} histogram;

static void hist_add(histogram *h, const ir_node *node)
{
    char key[256];
    if (default_domain(node->domain)) snprintf(key, sizeof key, "%s", node->op_type);
    else snprintf(key, sizeof key, "%s.%s", node->domain, node->op_type);
    h->total++;
    for (int i = 0; i < h->n; i++)
        if (!strcmp(h->e[i].key, key)) {
            h->e[i].n++;
            return;
        }
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 32;
        op_count *ne = realloc(h->e, sizeof(op_count) * (size_t)cap);
        if (!ne) return;
        h->e = ne;
        h->cap = cap;
    }
    char *k = strdup(key);
    if (!k) return;
    h->e[h->n].key = k;
    h->e[h->n].n = 1;
    h->n++;
}

static void hist_graph(histogram *h, const ir_graph *g, int *n_subgraphs)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *nd = &g->nodes[i];
        hist_add(h, nd);
        for (int a = 0; a < nd->n_attrs; a++) {
            const ir_attr *at = &nd->attrs[a];
            if (at->type == IR_ATTR_GRAPH && at->g) {
                (*n_subgraphs)++;
                hist_graph(h, at->g, n_subgraphs);
            } else if (at->type == IR_ATTR_GRAPHS) {
                for (int64_t k = 0; k < at->n; k++)
                    if (at->graphs && at->graphs[k]) {
                        (*n_subgraphs)++;
                        hist_graph(h, at->graphs[k], n_subgraphs);
                    }
            }
        }
    }
}

static int cmp_count(const void *a, const void *b)
{
    const op_count *x = a, *y = b;
    if (x->n != y->n) return x->n < y->n ? 1 : -1;
    return strcmp(x->key, y->key);
}

static void params_graph(const ir_graph *g, int64_t *count, int64_t *params, double *bytes)
{
    for (int i = 0; i < g->n_values; i++) {
        const ir_value *v = &g->values[i];
        if (!v->constant || v->producer >= 0 || v->is_outer) continue;
        if (v->constant->kind != CORE_VALUE_TENSOR || !v->constant->tensor) continue;
        const core_tensor *t = v->constant->tensor;
        (*count)++;
        *params += t->numel;
        *bytes += (double)t->numel * (double)core_dtype_size(t->dtype);
    }
    for (int i = 0; i < g->n_nodes; i++)
        for (int a = 0; a < g->nodes[i].n_attrs; a++) {
            const ir_attr *at = &g->nodes[i].attrs[a];
            if (at->type == IR_ATTR_GRAPH && at->g) params_graph(at->g, count, params, bytes);
            if (at->type == IR_ATTR_GRAPHS)
                for (int64_t k = 0; k < at->n; k++)
                    if (at->graphs && at->graphs[k]) params_graph(at->graphs[k], count, params, bytes);
        }
}

/* ---- --check ----------------------------------------------------------------------------- */

typedef struct check_state {
    int invalid;
    int unsupported;
    int nodes;
} check_state;

static const char *node_label(const ir_node *n, int idx, char *buf, size_t size)
{
    if (n->name && *n->name) snprintf(buf, size, "'%s'", n->name);
    else snprintf(buf, size, "#%d", idx);
    return buf;
}

static void check_graph(const ir_graph *g, const char *where, check_state *cs)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        char lbl[256];
        node_label(n, i, lbl, sizeof lbl);
        cs->nodes++;
        const char *dom = n->domain ? n->domain : "";
        int64_t opset = n->opset > 0 ? n->opset : ir_graph_opset(g, dom);
        if (opset <= 0) {
            printf("  invalid: %snode %s (%s): domain '%s' is not in the model's opset imports\n", where, lbl,
                   n->op_type, *dom ? dom : "ai.onnx");
            cs->invalid++;
        }
        for (int a = 0; a < n->n_attrs; a++) {
            const ir_attr *at = &n->attrs[a];
            if (at->ref_attr_name) {
                printf("  invalid: %snode %s (%s): attribute '%s' refers to '%s' outside a function\n", where,
                       lbl, n->op_type, at->name ? at->name : "?", at->ref_attr_name);
                cs->invalid++;
            } else if (at->type == IR_ATTR_UNDEFINED) {
                printf("  invalid: %snode %s (%s): attribute '%s' has no type\n", where, lbl, n->op_type,
                       at->name ? at->name : "?");
                cs->invalid++;
            } else if (at->type == IR_ATTR_GRAPH && !at->g) {
                printf("  invalid: %snode %s (%s): graph attribute '%s' is empty\n", where, lbl, n->op_type,
                       at->name ? at->name : "?");
                cs->invalid++;
            }
            char sub[512];
            if (at->type == IR_ATTR_GRAPH && at->g) {
                snprintf(sub, sizeof sub, "%snode %s (%s) attribute '%s': ", where, lbl, n->op_type,
                         at->name ? at->name : "?");
                check_graph(at->g, sub, cs);
            } else if (at->type == IR_ATTR_GRAPHS) {
                for (int64_t k = 0; k < at->n; k++) {
                    if (!at->graphs || !at->graphs[k]) continue;
                    snprintf(sub, sizeof sub, "%snode %s (%s) attribute '%s'[%lld]: ", where, lbl, n->op_type,
                             at->name ? at->name : "?", (long long)k);
                    check_graph(at->graphs[k], sub, cs);
                }
            }
        }
        if (opset > 0 && !ops_find(dom, n->op_type, opset)) {
            printf("  unsupported: %snode %s: op %s, domain '%s', opset %lld\n", where, lbl, n->op_type,
                   *dom ? dom : "ai.onnx", (long long)opset);
            cs->unsupported++;
        }
    }
}

/* ---- main -------------------------------------------------------------------------------- */

int cli_inspect_main(int argc, char **argv)
{
    const char *path = NULL;
    bool check = false, show_shapes = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--check")) {
            check = true;
        } else if (!strcmp(argv[i], "--shapes")) {
            show_shapes = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "kiln inspect: unknown option '%s' (see `kiln help inspect`)\n", argv[i]);
            return 2;
        } else if (!path) {
            path = argv[i];
        } else {
            fprintf(stderr, "kiln inspect: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "kiln inspect: no MODEL given (see `kiln help inspect`)\n");
        return 2;
    }
    if (cli_is_plan_file(path)) return cli_inspect_plan(path, check);
    ir_model *m = NULL;
    if (onnx_model_load_file(path, &m) != KILN_OK || !m || !m->graph) {
        fprintf(stderr, "kiln inspect: %s\n", core_error_text());
        if (check) printf("check: invalid model: %s\n", core_error_text());
        if (m) ir_model_destroy(m);
        return 1;
    }
    const ir_graph *g = m->graph;
    printf("model: %s\n", path);
    printf("ir_version: %lld\n", (long long)m->ir_version);
    printf("producer: %s%s%s\n", m->producer_name && *m->producer_name ? m->producer_name : "(none)",
           m->producer_version && *m->producer_version ? " " : "", m->producer_version ? m->producer_version : "");
    if (m->domain && *m->domain) printf("domain: %s\n", m->domain);
    if (m->model_version) printf("model_version: %lld\n", (long long)m->model_version);
    if (g->name && *g->name) printf("graph: %s\n", g->name);
    printf("opsets:");
    for (int i = 0; i < m->n_opsets; i++)
        printf("%s %s %lld", i ? "," : "", m->opsets[i].domain && *m->opsets[i].domain ? m->opsets[i].domain : "ai.onnx",
               (long long)m->opsets[i].version);
    printf("%s\n", m->n_opsets ? "" : " (none)");

    int n_real_inputs = 0;
    for (int i = 0; i < g->n_inputs; i++) n_real_inputs += g->values[g->inputs[i]].constant == NULL;
    printf("inputs (%d):\n", n_real_inputs);
    for (int i = 0; i < g->n_inputs; i++) {
        const ir_value *v = &g->values[g->inputs[i]];
        if (v->constant) continue;
        printf("  %s: ", v->name ? v->name : "?");
        print_type(g, &v->type);
        printf("\n");
    }
    if (n_real_inputs < g->n_inputs)
        printf("  (+%d inputs with initializer defaults)\n", g->n_inputs - n_real_inputs);
    printf("outputs (%d):\n", g->n_outputs);
    for (int i = 0; i < g->n_outputs; i++) {
        const ir_value *v = &g->values[g->outputs[i]];
        printf("  %s: ", v->name ? v->name : "?");
        print_type(g, &v->type);
        printf("\n");
    }

    histogram h = {0};
    int n_sub = 0;
    hist_graph(&h, g, &n_sub);
    if (h.n) qsort(h.e, (size_t)h.n, sizeof(op_count), cmp_count);
    printf("nodes: %lld", (long long)h.total);
    if (n_sub) printf(" (%d top-level, %d subgraphs)", g->n_nodes, n_sub);
    printf("\nops (%d types):\n", h.n);
    for (int i = 0; i < h.n; i++) printf("  %-28s %lld\n", h.e[i].key, (long long)h.e[i].n);

    int64_t n_init = 0, n_params = 0;
    double bytes = 0;
    params_graph(g, &n_init, &n_params, &bytes);
    char pbuf[64], bbuf[64];
    si((double)n_params, pbuf, sizeof pbuf, "");
    si(bytes, bbuf, sizeof bbuf, "B");
    printf("initializers: %lld (%lld parameters ~%s, %s)\n", (long long)n_init, (long long)n_params, pbuf, bbuf);

    shape_table st;
    double total = 0;
    if (show_shapes) printf("shapes:\n");
    int known = 0;
    if (shape_table_init(&st, g)) {
        for (int i = 0; i < g->n_nodes; i++) {
            const ir_node *n = &g->nodes[i];
            int opset = n->opset > 0 ? n->opset : (int)ir_graph_opset(g, n->domain ? n->domain : "");
            infer_node(&st, n, opset);
            double f;
            bool ok = node_flops(&st, n, &f);
            if (ok) {
                known++;
                total += f;
            }
            if (show_shapes) print_node_shapes(&st, n, i, ok ? f : -1);
        }
        shape_table_free(&st);
    }
    char fbuf[64];
    si(total, fbuf, sizeof fbuf, "");
    printf("FLOPs: ~%s (shapes known for %d of %d nodes)\n", fbuf, known, g->n_nodes);

    int rc = 0;
    if (check) {
        check_state cs = {0, 0, 0};
        kiln_status vs = ir_graph_verify(g);
        if (vs != KILN_OK) {
            printf("  invalid: %s\n", core_error_text());
            cs.invalid++;
        }
        if (m->n_opsets == 0 && m->ir_version >= 3) {
            printf("  invalid: the model imports no opset\n");
            cs.invalid++;
        }
        check_graph(g, "", &cs);
        if (cs.invalid) printf("check: model is INVALID (%d problems)\n", cs.invalid);
        if (cs.unsupported)
            printf("check: %d of %d nodes use ops kiln cannot run yet\n", cs.unsupported, cs.nodes);
        if (!cs.invalid && !cs.unsupported) printf("check: ok (%d nodes, all supported)\n", cs.nodes);
        rc = cs.invalid || cs.unsupported ? 1 : 0;
    }
    for (int i = 0; i < h.n; i++) free(h.e[i].key);
    free(h.e);
    ir_model_destroy(m);
    return rc;
}
