/* network.c — the network definition API (kiln_network_*): layers added in code become
 * standard ONNX (opset 17) nodes in an IR graph, with shapes checked as each layer is added;
 * kiln_network_build copies that graph into a model and finishes it like an ONNX import. */
#include "ops/plugin.h"
#include "runtime/api_internal.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NET_OPSET 17
#define NET_NAME_MAX 256
/* Dims above this are refused, so that sums and small products of dims cannot overflow. */
#define NET_MAX_DIM ((int64_t)1 << 40)

struct kiln_network {
    ir_graph *g;              /* values carry the shapes inferred here; nodes in add order */
    const kiln_weights *w;    /* borrowed, for kiln_net_weights_named */
    int n_auto;               /* counter for made-up layer names */
    kiln_status first_status; /* first failed layer: the network cannot be built */
    char *first_error;
};

/* A dtype and shape as this file tracks it: nd -1 = unknown rank, d[i] -1 = dynamic. */
typedef struct net_shape {
    kiln_dtype dt;
    int nd;
    int64_t d[KILN_MAX_DIMS];
} net_shape;

/* The layer being added: its API function (for messages) and its name. */
typedef struct net_layer {
    kiln_network *net;
    const char *fn;
    char name[NET_NAME_MAX];
} net_layer;

static const kiln_net_tensor net_invalid = {0};

/* ---- errors --------------------------------------------------------------------------- */

static kiln_status net_failv(net_layer *L, kiln_status st, const char *fmt, va_list ap)
{
    char msg[768];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (L->name[0]) core_error(st, "%s '%s': %s", L->fn, L->name, msg);
    else core_error(st, "%s: %s", L->fn, msg);
    if (L->net && !L->net->first_status) {
        L->net->first_status = st;
        L->net->first_error = core_strdup(core_error_text()); /* NULL on OOM: status still kept */
    }
    return st;
}

static kiln_status net_error(net_layer *L, kiln_status st, const char *fmt, ...) CORE_PRINTF(3, 4);
static kiln_status net_error(net_layer *L, kiln_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    net_failv(L, st, fmt, ap);
    va_end(ap);
    return st;
}

static kiln_net_tensor net_fail(net_layer *L, kiln_status st, const char *fmt, ...) CORE_PRINTF(3, 4);
static kiln_net_tensor net_fail(net_layer *L, kiln_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    net_failv(L, st, fmt, ap);
    va_end(ap);
    return net_invalid;
}

/* An error already in the error text (OOM from a helper): prefix it and poison the net. */
static kiln_net_tensor net_fail_current(net_layer *L, kiln_status st)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", core_error_text());
    return net_fail(L, st, "%s", msg);
}

/* a * b * c * d, or -1 on overflow (all >= 0). */
static int64_t net_mul4(int64_t a, int64_t b, int64_t c, int64_t d)
{
    int64_t r;
    return core_mul_size(a, b, &r) && core_mul_size(r, c, &r) && core_mul_size(r, d, &r) ? r : -1;
}

static const char *net_shape_str(const net_shape *s, char *buf, size_t size)
{
    if (s->nd < 0) { snprintf(buf, size, "(unknown rank)"); return buf; }
    size_t n = 0;
    buf[0] = 0;
    n += (size_t)snprintf(buf + n, size - n, "[");
    for (int i = 0; i < s->nd && n < size; i++) {
        if (s->d[i] < 0) n += (size_t)snprintf(buf + n, size - n, "%s?", i ? ", " : "");
        else n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? ", " : "", (long long)s->d[i]);
    }
    if (n < size) snprintf(buf + n, size - n, "]");
    return buf;
}

/* ---- layer setup and inputs ------------------------------------------------------------- */

static bool net_name_taken(const kiln_network *net, const char *name)
{
    return ir_graph_find_value(net->g, name) >= 0;
}

/* Start a layer: name it (given, or "<kind>_<n>"), refuse a taken name. */
static bool net_begin(net_layer *L, kiln_network *net, const char *fn, const char *kind, const char *name)
{
    L->net = net;
    L->fn = fn;
    L->name[0] = 0;
    if (!net) { core_error(KILN_ERR_INVALID_ARGUMENT, "%s: network is NULL", fn); return false; }
    if (name) {
        if (!*name) { net_error(L, KILN_ERR_INVALID_ARGUMENT, "layer name is empty"); return false; }
        if (strlen(name) >= NET_NAME_MAX - 32) {
            net_error(L, KILN_ERR_INVALID_ARGUMENT, "layer name is longer than %d characters", NET_NAME_MAX - 33);
            return false;
        }
        snprintf(L->name, sizeof L->name, "%s", name);
        if (net_name_taken(net, name)) { net_error(L, KILN_ERR_INVALID_ARGUMENT, "the name is already used in the network"); return false; }
    } else {
        do snprintf(L->name, sizeof L->name, "%s_%d", kind, net->n_auto++);
        while (net_name_taken(net, L->name));
    }
    return true;
}

static void net_shape_of(const kiln_network *net, int id, net_shape *s)
{
    const ir_type *t = &net->g->values[id].type;
    s->dt = t->kind == IR_TYPE_TENSOR ? t->dtype : KILN_DTYPE_UNDEFINED;
    s->nd = t->kind == IR_TYPE_TENSOR && (t->dims || t->ndim == 0) && t->ndim <= KILN_MAX_DIMS ? t->ndim : -1;
    for (int i = 0; i < s->nd; i++) s->d[i] = t->dims[i].value;
}

/* Input `what` of the layer: a valid handle of this network. */
static bool net_input(net_layer *L, kiln_net_tensor t, const char *what, int *id, net_shape *s)
{
    if (t.id <= 0 || t.id > L->net->g->n_values) {
        net_error(L, KILN_ERR_INVALID_ARGUMENT, "%s is not a valid tensor of this network%s", what,
                  L->net->first_status ? " (an earlier layer failed)" : "");
        return false;
    }
    *id = t.id - 1;
    net_shape_of(L->net, *id, s);
    return true;
}

static bool net_need_float(net_layer *L, const char *what, const net_shape *s)
{
    if (s->dt == KILN_DTYPE_FLOAT || s->dt == KILN_DTYPE_UNDEFINED) return true;
    net_error(L, KILN_ERR_DTYPE, "%s is %s, expected float", what, core_dtype_name(s->dt));
    return false;
}

/* Rank check; an unknown rank (a plugin output without infer) is taken as `want` dynamic dims. */
static bool net_need_rank(net_layer *L, const char *what, net_shape *s, int want)
{
    if (s->nd < 0) {
        s->nd = want;
        for (int i = 0; i < want; i++) s->d[i] = -1;
        return true;
    }
    if (s->nd == want) return true;
    net_error(L, KILN_ERR_SHAPE, "%s has %d dims, expected %d", what, s->nd, want);
    return false;
}

static bool net_norm_axis(net_layer *L, const char *what, int64_t *axis, int rank, bool inclusive)
{
    int64_t hi = inclusive ? rank : rank - 1;
    int64_t a = *axis < 0 ? *axis + rank : *axis;
    if (a < 0 || a > hi) {
        net_error(L, KILN_ERR_INVALID_ARGUMENT, "%s %lld is out of range for rank %d", what, (long long)*axis, rank);
        return false;
    }
    *axis = a;
    return true;
}

/* ---- weights ----------------------------------------------------------------------------- */

/* Resolve w into vals and count, or NULL/0 when absent and optional. expect >= 0: required count
 * (shape text for the message in `shape`). */
static bool net_weights(net_layer *L, const char *what, kiln_net_weights w, int64_t expect, const char *shape,
                        bool optional, const float **vals, int64_t *count)
{
    *vals = NULL;
    *count = 0;
    if (w.values) {
        if (w.count < 0) { net_error(L, KILN_ERR_INVALID_ARGUMENT, "%s: count %lld is negative", what, (long long)w.count); return false; }
        *vals = w.values;
        *count = w.count;
    } else if (w.name) {
        if (!L->net->w) {
            net_error(L, KILN_ERR_INVALID_ARGUMENT, "%s names weights '%s' but the network has none (kiln_network_set_weights)", what, w.name);
            return false;
        }
        const float *v = kiln_weights_get(L->net->w, w.name, count);
        if (!v) { net_error(L, KILN_ERR_NOT_FOUND, "%s: no weights named '%s'", what, w.name); return false; }
        *vals = v;
    } else if (w.count) {
        net_error(L, KILN_ERR_INVALID_ARGUMENT, "%s: %lld values given but the pointer is NULL", what, (long long)w.count);
        return false;
    } else {
        if (optional) return true;
        net_error(L, KILN_ERR_INVALID_ARGUMENT, "%s is missing", what);
        return false;
    }
    if (expect >= 0 && *count != expect) {
        char nm[NET_NAME_MAX + 8] = "";
        if (w.name && !w.values) snprintf(nm, sizeof nm, " ('%s')", w.name);
        net_error(L, KILN_ERR_SHAPE, "%s%s has %lld values, expected %lld (%s)", what, nm, (long long)*count,
                  (long long)expect, shape);
        return false;
    }
    return true;
}

/* ---- emitting IR -------------------------------------------------------------------------- */

static void net_set_type(ir_value *v, const net_shape *s)
{
    ir_type_free(&v->type);
    v->type.kind = IR_TYPE_TENSOR;
    v->type.dtype = s->dt;
    v->type.ndim = s->nd;
    if (s->nd > 0 && (v->type.dims = calloc((size_t)s->nd, sizeof(ir_dim)))) {
        for (int i = 0; i < s->nd; i++) v->type.dims[i].value = s->d[i];
    } else if (s->nd > 0) {
        v->type.ndim = -1; /* OOM: the type stays unknown, which is harmless */
    }
}

/* New value `<layer><sep><suffix>` (or `<layer>` when suffix is NULL). -1 on error. */
static int net_value(net_layer *L, char sep, const char *suffix, const net_shape *s)
{
    char nm[NET_NAME_MAX + 64];
    if (suffix) snprintf(nm, sizeof nm, "%s%c%s", L->name, sep, suffix);
    else snprintf(nm, sizeof nm, "%s", L->name);
    if (net_name_taken(L->net, nm)) {
        net_error(L, KILN_ERR_INVALID_ARGUMENT, "the name '%s' this layer needs is already used in the network", nm);
        return -1;
    }
    int id = ir_graph_intern_value(L->net->g, nm);
    if (id < 0) { net_fail_current(L, KILN_ERR_OUT_OF_MEMORY); return -1; }
    if (s) net_set_type(&L->net->g->values[id], s);
    return id;
}

/* Constant `<layer>.<suffix>` with a copy of data. */
static int net_const(net_layer *L, const char *suffix, kiln_dtype dt, int nd, const int64_t *dims, const void *data)
{
    core_tensor *t = core_tensor_create(dt, nd, dims);
    if (!t) { net_fail_current(L, KILN_ERR_OUT_OF_MEMORY); return -1; }
    if (t->nbytes) memcpy(t->data, data, t->nbytes);
    core_value *cv = core_value_from_tensor(t);
    if (!cv) { net_fail_current(L, KILN_ERR_OUT_OF_MEMORY); return -1; }
    net_shape s = {dt, nd, {0}};
    for (int i = 0; i < nd; i++) s.d[i] = dims[i];
    int id = net_value(L, '.', suffix, &s);
    if (id < 0) { core_value_release(cv); return -1; }
    L->net->g->values[id].constant = cv;
    return id;
}

/* A scalar constant of dtype dt (float types) holding v. */
static int net_scalar(net_layer *L, const char *suffix, kiln_dtype dt, double v)
{
    unsigned char buf[16] = {0};
    core_store_f64(dt, buf, 0, v);
    return net_const(L, suffix, dt, 0, NULL, buf);
}

static int net_ints_const(net_layer *L, const char *suffix, int n, const int64_t *v)
{
    int64_t dims[1] = {n};
    return net_const(L, suffix, KILN_DTYPE_INT64, 1, dims, v);
}

static int net_floats_const(net_layer *L, const char *suffix, int64_t n, const float *v)
{
    int64_t dims[1] = {n};
    return net_const(L, suffix, KILN_DTYPE_FLOAT, 1, dims, v);
}

/* Attribute constructors: heap copies; name NULL after an allocation failure. */
static ir_attr net_attr(const char *name, ir_attr_type t)
{
    ir_attr a;
    memset(&a, 0, sizeof a);
    a.name = core_strdup(name);
    a.type = t;
    return a;
}

static ir_attr net_ai(const char *name, int64_t v)
{
    ir_attr a = net_attr(name, IR_ATTR_INT);
    a.i = v;
    return a;
}

static ir_attr net_af(const char *name, float v)
{
    ir_attr a = net_attr(name, IR_ATTR_FLOAT);
    a.f = v;
    return a;
}

static ir_attr net_as(const char *name, const char *s)
{
    ir_attr a = net_attr(name, IR_ATTR_STRING);
    a.s = core_strdup(s);
    a.s_len = strlen(s);
    if (!a.s) { free(a.name); a.name = NULL; }
    return a;
}

static ir_attr net_ais(const char *name, int64_t n, const int64_t *v)
{
    ir_attr a = net_attr(name, IR_ATTR_INTS);
    a.n = n;
    a.ints = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
    if (!a.ints) { free(a.name); a.name = NULL; }
    else if (n) memcpy(a.ints, v, sizeof(int64_t) * (size_t)n);
    return a;
}

static ir_attr net_afs(const char *name, int64_t n, const float *v)
{
    ir_attr a = net_attr(name, IR_ATTR_FLOATS);
    a.n = n;
    a.floats = malloc(sizeof(float) * (size_t)(n ? n : 1));
    if (!a.floats) { free(a.name); a.name = NULL; }
    else if (n) memcpy(a.floats, v, sizeof(float) * (size_t)n);
    return a;
}

/* Append node `<layer>[/<suffix>]`; takes the attrs' contents (freed on failure). */
static bool net_node(net_layer *L, const char *suffix, const char *domain, const char *op, int nin, const int *in, int nout,
                     const int *out, int nattr, ir_attr *attrs)
{
    char nm[NET_NAME_MAX + 64];
    if (suffix) snprintf(nm, sizeof nm, "%s/%s", L->name, suffix);
    else snprintf(nm, sizeof nm, "%s", L->name);
    ir_node n;
    memset(&n, 0, sizeof n);
    n.name = core_strdup(nm);
    n.op_type = core_strdup(op);
    n.domain = core_strdup(domain ? domain : "");
    n.inputs = malloc(sizeof(int) * (size_t)(nin ? nin : 1));
    n.outputs = malloc(sizeof(int) * (size_t)(nout ? nout : 1));
    n.attrs = calloc((size_t)(nattr ? nattr : 1), sizeof(ir_attr));
    bool ok = n.name && n.op_type && n.domain && n.inputs && n.outputs && n.attrs;
    for (int i = 0; i < nattr; i++) {
        if (!attrs[i].name) ok = false;
        if (n.attrs) n.attrs[i] = attrs[i];
        else ir_attr_free(&attrs[i]);
    }
    n.n_attrs = n.attrs ? nattr : 0;
    if (ok) {
        n.n_inputs = nin;
        n.n_outputs = nout;
        if (nin) memcpy(n.inputs, in, sizeof(int) * (size_t)nin);
        if (nout) memcpy(n.outputs, out, sizeof(int) * (size_t)nout);
        n.opset = 0; /* from the model's opset imports */
        if (ir_graph_add_node(L->net->g, &n) >= 0) return true;
    }
    ir_node_free(&n);
    net_error(L, KILN_ERR_OUT_OF_MEMORY, "out of memory adding node %s", nm);
    return false;
}

static kiln_net_tensor net_handle(int id) { kiln_net_tensor t = {id + 1}; return t; }

/* One node `op` on input x with the layer's output of shape s. */
static kiln_net_tensor net_unary_node(net_layer *L, const char *op, int x, const net_shape *s, int nattr, ir_attr *attrs)
{
    int y = net_value(L, 0, NULL, s);
    if (y < 0) { for (int i = 0; i < nattr; i++) ir_attr_free(&attrs[i]); return net_invalid; }
    if (!net_node(L, NULL, "", op, 1, &x, 1, &y, nattr, attrs)) return net_invalid;
    return net_handle(y);
}

/* ---- network ------------------------------------------------------------------------------- */

KILN_API kiln_status kiln_network_create(const char *name, kiln_network **out)
{
    if (!out) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_network_create: out is NULL");
    *out = NULL;
    kiln_network *net = calloc(1, sizeof *net);
    if (!net) return core_oom();
    if (!(net->g = ir_graph_create(name ? name : "network", NULL))) { free(net); return KILN_ERR_OUT_OF_MEMORY; }
    *out = net;
    return KILN_OK;
}

KILN_API void kiln_network_destroy(kiln_network *net)
{
    if (!net) return;
    ir_graph_destroy(net->g);
    free(net->first_error);
    free(net);
}

KILN_API kiln_status kiln_network_set_weights(kiln_network *net, const kiln_weights *w)
{
    if (!net) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_network_set_weights: network is NULL");
    net->w = w;
    return KILN_OK;
}

static bool net_push_id(int **arr, int *n, int id)
{
    int *na = realloc(*arr, sizeof(int) * (size_t)(*n + 1));
    if (!na) return false;
    na[(*n)++] = id;
    *arr = na;
    return true;
}

KILN_API kiln_net_tensor kiln_network_add_input(kiln_network *net, const char *name, kiln_dtype dtype, int ndim,
                                                const int64_t *dims)
{
    net_layer L;
    if (!net_begin(&L, net, "add_input", "input", name)) return net_invalid;
    if (!name) return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "an input needs a name (it is bound by name)");
    if ((int)dtype <= 0 || dtype >= KILN_DTYPE_COUNT_ || core_dtype_size(dtype) == 0)
        return net_fail(&L, KILN_ERR_DTYPE, "dtype %d is not a valid kiln_dtype", (int)dtype);
    if (ndim < 0 || ndim > KILN_MAX_DIMS) return net_fail(&L, KILN_ERR_SHAPE, "rank %d is out of range 0..%d", ndim, KILN_MAX_DIMS);
    if (ndim > 0 && !dims) return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "dims is NULL");
    net_shape s = {dtype, ndim, {0}};
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < -1) return net_fail(&L, KILN_ERR_SHAPE, "dim %d is %lld (use -1 for a dynamic dim)", i, (long long)dims[i]);
        if (dims[i] > NET_MAX_DIM) return net_fail(&L, KILN_ERR_SHAPE, "dim %d is %lld, above 2^40", i, (long long)dims[i]);
        s.d[i] = dims[i];
    }
    int id = net_value(&L, 0, NULL, &s);
    if (id < 0) return net_invalid;
    ir_graph *g = net->g;
    if (!net_push_id(&g->inputs, &g->n_inputs, id)) return net_fail(&L, KILN_ERR_OUT_OF_MEMORY, "out of memory");
    g->values[id].is_graph_input = true;
    return net_handle(id);
}

KILN_API kiln_net_tensor kiln_network_add_constant(kiln_network *net, const char *name, kiln_dtype dtype, int ndim,
                                                   const int64_t *dims, const void *data)
{
    net_layer L;
    if (!net_begin(&L, net, "add_constant", "const", name)) return net_invalid;
    if ((int)dtype <= 0 || dtype >= KILN_DTYPE_COUNT_ || dtype == KILN_DTYPE_STRING || core_dtype_size(dtype) == 0)
        return net_fail(&L, KILN_ERR_DTYPE, "dtype %d cannot be a constant (numeric dtypes and bool only)", (int)dtype);
    if (ndim < 0 || ndim > KILN_MAX_DIMS) return net_fail(&L, KILN_ERR_SHAPE, "rank %d is out of range 0..%d", ndim, KILN_MAX_DIMS);
    if (ndim > 0 && !dims) return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "dims is NULL");
    for (int i = 0; i < ndim; i++)
        if (dims[i] < 0 || dims[i] > NET_MAX_DIM)
            return net_fail(&L, KILN_ERR_SHAPE, "dim %d is %lld: constants have fixed shapes of at most 2^40", i, (long long)dims[i]);
    int64_t n = core_shape_numel(ndim, dims);
    if (n < 0 || (uint64_t)n > (uint64_t)1 << 40) return net_fail(&L, KILN_ERR_SHAPE, "the shape is too large");
    if (n > 0 && !data) return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "data is NULL");
    core_tensor *t = core_tensor_create(dtype, ndim, dims);
    if (!t) return net_fail_current(&L, KILN_ERR_OUT_OF_MEMORY);
    if (t->nbytes) memcpy(t->data, data, t->nbytes);
    core_value *cv = core_value_from_tensor(t);
    if (!cv) return net_fail_current(&L, KILN_ERR_OUT_OF_MEMORY);
    net_shape s = {dtype, ndim, {0}};
    for (int i = 0; i < ndim; i++) s.d[i] = dims[i];
    int id = net_value(&L, 0, NULL, &s);
    if (id < 0) { core_value_release(cv); return net_invalid; }
    net->g->values[id].constant = cv;
    return net_handle(id);
}

/* ---- convolution and pooling ------------------------------------------------------------ */

/* Output size along one spatial axis (PyTorch's rule for ceil mode: the last window must
 * start inside the input or its left padding). -2 when the window does not fit. */
static int64_t net_spatial(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p, bool ceil_mode)
{
    if (in < 0) return -1;
    int64_t ek = (k - 1) * d + 1, num = in + 2 * p - ek;
    if (num < 0) return -2;
    int64_t out = (ceil_mode ? num + s - 1 : num) / s + 1;
    if (ceil_mode && (out - 1) * s >= in + p) out--;
    return out;
}

KILN_API kiln_net_tensor kiln_network_add_convolution(kiln_network *net, const char *name, kiln_net_tensor input,
                                                      const kiln_conv_desc *d)
{
    net_layer L;
    if (!net_begin(&L, net, "add_convolution", "conv", name)) return net_invalid;
    int x;
    net_shape s;
    char b[200];
    if (!d) return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "desc is NULL");
    if (!net_input(&L, input, "input", &x, &s) || !net_need_rank(&L, "input", &s, 4) || !net_need_float(&L, "input", &s))
        return net_invalid;
    int64_t oc = d->out_channels, kh = d->kernel_h, kw = d->kernel_w;
    int64_t sh = d->stride_h ? d->stride_h : 1, sw = d->stride_w ? d->stride_w : 1;
    int64_t dh = d->dilation_h ? d->dilation_h : 1, dw = d->dilation_w ? d->dilation_w : 1;
    int64_t grp = d->groups ? d->groups : 1;
    if (oc <= 0) return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "out_channels is %lld", (long long)oc);
    if (kh <= 0 || kw <= 0) return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "kernel is %lldx%lld", (long long)kh, (long long)kw);
    if (sh < 0 || sw < 0 || dh < 0 || dw < 0 || grp < 0 || d->pad_h < 0 || d->pad_w < 0)
        return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "stride, dilation, padding and groups must not be negative");
    if (kh > 1 << 20 || kw > 1 << 20 || sh > 1 << 20 || sw > 1 << 20 || dh > 1 << 20 || dw > 1 << 20 ||
        d->pad_h > 1 << 20 || d->pad_w > 1 << 20 || oc > (int64_t)1 << 30)
        return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "kernel, stride, dilation, padding or out_channels is implausibly large");
    if (oc % grp) return net_fail(&L, KILN_ERR_SHAPE, "out_channels %lld is not a multiple of groups %lld", (long long)oc, (long long)grp);
    int64_t C = s.d[1], cg;
    const float *wv, *bv;
    int64_t wn, bn;
    if (C >= 0) {
        if (C % grp) return net_fail(&L, KILN_ERR_SHAPE, "input has %lld channels, not a multiple of groups %lld", (long long)C, (long long)grp);
        cg = C / grp;
        snprintf(b, sizeof b, "%lld x %lld x %lld x %lld", (long long)oc, (long long)cg, (long long)kh, (long long)kw);
        int64_t want = net_mul4(oc, cg, kh, kw);
        if (want < 0) return net_fail(&L, KILN_ERR_SHAPE, "the weight shape %s is too large", b);
        if (!net_weights(&L, "weight", d->weight, want, b, false, &wv, &wn)) return net_invalid;
    } else { /* dynamic channels: the weight count decides them */
        if (!net_weights(&L, "weight", d->weight, -1, "", false, &wv, &wn)) return net_invalid;
        int64_t per = net_mul4(oc, kh, kw, 1);
        if (per < 0 || wn == 0 || wn % per)
            return net_fail(&L, KILN_ERR_SHAPE, "weight has %lld values, not a multiple of out_channels x kernel = %lld", (long long)wn, (long long)per);
        cg = wn / per;
    }
    if (!net_weights(&L, "bias", d->bias, oc, "out_channels", true, &bv, &bn)) return net_invalid;
    net_shape o = {s.dt ? s.dt : KILN_DTYPE_FLOAT, 4, {s.d[0], oc, 0, 0}};
    int64_t k2[2] = {kh, kw}, st[2] = {sh, sw}, dl[2] = {dh, dw}, pd[2] = {d->pad_h, d->pad_w};
    for (int i = 0; i < 2; i++) {
        o.d[2 + i] = net_spatial(s.d[2 + i], k2[i], st[i], dl[i], pd[i], false);
        if (o.d[2 + i] == -2)
            return net_fail(&L, KILN_ERR_SHAPE, "input %s with padding %lld is smaller than the kernel extent %lld along %s",
                            net_shape_str(&s, b, sizeof b), (long long)pd[i], (long long)((k2[i] - 1) * dl[i] + 1), i ? "width" : "height");
    }
    int64_t wd[4] = {oc, cg, kh, kw};
    int w = net_const(&L, "weight", KILN_DTYPE_FLOAT, 4, wd, wv);
    int bias = bv ? net_floats_const(&L, "bias", oc, bv) : -1;
    if (w < 0 || (bv && bias < 0)) return net_invalid;
    int y = net_value(&L, 0, NULL, &o);
    if (y < 0) return net_invalid;
    int64_t pads[4] = {pd[0], pd[1], pd[0], pd[1]};
    ir_attr at[5] = {net_ais("kernel_shape", 2, k2), net_ais("strides", 2, st), net_ais("pads", 4, pads),
                     net_ais("dilations", 2, dl), net_ai("group", grp)};
    int in[3] = {x, w, bias};
    if (!net_node(&L, NULL, "", "Conv", bv ? 3 : 2, in, 1, &y, 5, at)) return net_invalid;
    return net_handle(y);
}

KILN_API kiln_net_tensor kiln_network_add_pooling(kiln_network *net, const char *name, kiln_net_tensor input,
                                                  const kiln_pool_desc *d)
{
    net_layer L;
    if (!net_begin(&L, net, "add_pooling", "pool", name)) return net_invalid;
    int x;
    net_shape s;
    char b[200];
    if (!d) return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "desc is NULL");
    if (!net_input(&L, input, "input", &x, &s) || !net_need_rank(&L, "input", &s, 4) || !net_need_float(&L, "input", &s))
        return net_invalid;
    if (d->type != KILN_POOL_MAX && d->type != KILN_POOL_AVERAGE)
        return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "pool type %d is not KILN_POOL_MAX or KILN_POOL_AVERAGE", (int)d->type);
    net_shape o = s;
    if (d->global) {
        o.d[2] = o.d[3] = 1;
        return net_unary_node(&L, d->type == KILN_POOL_MAX ? "GlobalMaxPool" : "GlobalAveragePool", x, &o, 0, NULL);
    }
    int64_t k2[2] = {d->kernel_h, d->kernel_w};
    int64_t st[2] = {d->stride_h ? d->stride_h : k2[0], d->stride_w ? d->stride_w : k2[1]}, pd[2] = {d->pad_h, d->pad_w};
    for (int i = 0; i < 2; i++) {
        if (k2[i] <= 0 || k2[i] > 1 << 20) return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "kernel is %lldx%lld", (long long)k2[0], (long long)k2[1]);
        if (st[i] <= 0 || st[i] > 1 << 20) return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "stride is %lldx%lld", (long long)st[0], (long long)st[1]);
        if (pd[i] < 0 || pd[i] >= k2[i])
            return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "padding %lldx%lld must be >= 0 and smaller than the kernel %lldx%lld",
                            (long long)pd[0], (long long)pd[1], (long long)k2[0], (long long)k2[1]);
        o.d[2 + i] = net_spatial(s.d[2 + i], k2[i], st[i], 1, pd[i], d->ceil_mode != 0);
        if (o.d[2 + i] == -2)
            return net_fail(&L, KILN_ERR_SHAPE, "input %s with padding %lld is smaller than the kernel %lld along %s",
                            net_shape_str(&s, b, sizeof b), (long long)pd[i], (long long)k2[i], i ? "width" : "height");
    }
    int64_t pads[4] = {pd[0], pd[1], pd[0], pd[1]};
    ir_attr at[5] = {net_ais("kernel_shape", 2, k2), net_ais("strides", 2, st), net_ais("pads", 4, pads),
                     net_ai("ceil_mode", d->ceil_mode != 0), net_ai("count_include_pad", d->count_include_pad != 0)};
    if (d->type == KILN_POOL_MAX) {
        ir_attr_free(&at[4]); /* count_include_pad is AveragePool's */
        return net_unary_node(&L, "MaxPool", x, &o, 4, at);
    }
    return net_unary_node(&L, "AveragePool", x, &o, 5, at);
}

/* ---- activations and elementwise ---------------------------------------------------------- */

/* Binary node a op b -> new value (suffix NULL: the layer's output) of shape s. */
static int net_binary(net_layer *L, const char *suffix, const char *op, int a, int bv, const net_shape *s)
{
    int y = net_value(L, '/', suffix, s);
    if (y < 0) return -1;
    int in[2] = {a, bv};
    return net_node(L, suffix, "", op, 2, in, 1, &y, 0, NULL) ? y : -1;
}

static int net_unary(net_layer *L, const char *suffix, const char *op, int a, const net_shape *s)
{
    int y = net_value(L, '/', suffix, s);
    if (y < 0) return -1;
    return net_node(L, suffix, "", op, 1, &a, 1, &y, 0, NULL) ? y : -1;
}

KILN_API kiln_net_tensor kiln_network_add_activation(kiln_network *net, const char *name, kiln_net_tensor input,
                                                     kiln_activation act, float alpha, float beta)
{
    net_layer L;
    if (!net_begin(&L, net, "add_activation", "act", name)) return net_invalid;
    int x;
    net_shape s;
    if (!net_input(&L, input, "input", &x, &s)) return net_invalid;
    if (s.dt != KILN_DTYPE_UNDEFINED && !core_dtype_is_float(s.dt))
        return net_fail(&L, KILN_ERR_DTYPE, "input is %s, expected a float type", core_dtype_name(s.dt));
    kiln_dtype dt = s.dt ? s.dt : KILN_DTYPE_FLOAT;
    switch (act) {
    case KILN_ACT_RELU: return net_unary_node(&L, "Relu", x, &s, 0, NULL);
    case KILN_ACT_SIGMOID: return net_unary_node(&L, "Sigmoid", x, &s, 0, NULL);
    case KILN_ACT_TANH: return net_unary_node(&L, "Tanh", x, &s, 0, NULL);
    case KILN_ACT_SOFTPLUS: return net_unary_node(&L, "Softplus", x, &s, 0, NULL);
    case KILN_ACT_HARD_SWISH: return net_unary_node(&L, "HardSwish", x, &s, 0, NULL);
    case KILN_ACT_LEAKY_RELU: {
        ir_attr a = net_af("alpha", alpha);
        return net_unary_node(&L, "LeakyRelu", x, &s, 1, &a);
    }
    case KILN_ACT_ELU: {
        ir_attr a = net_af("alpha", alpha);
        return net_unary_node(&L, "Elu", x, &s, 1, &a);
    }
    case KILN_ACT_HARD_SIGMOID: {
        ir_attr a[2] = {net_af("alpha", alpha), net_af("beta", beta)};
        return net_unary_node(&L, "HardSigmoid", x, &s, 2, a);
    }
    case KILN_ACT_CLIP: {
        if (!(alpha <= beta)) return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "clip min %g is above max %g", alpha, beta);
        int lo = net_scalar(&L, "min", dt, alpha), hi = net_scalar(&L, "max", dt, beta);
        if (lo < 0 || hi < 0) return net_invalid;
        int y = net_value(&L, 0, NULL, &s);
        int in[3] = {x, lo, hi};
        if (y < 0 || !net_node(&L, NULL, "", "Clip", 3, in, 1, &y, 0, NULL)) return net_invalid;
        return net_handle(y);
    }
    case KILN_ACT_SILU: { /* as torch exports it: x * Sigmoid(x) */
        int sg = net_unary(&L, "sigmoid", "Sigmoid", x, &s);
        int y = sg < 0 ? -1 : net_binary(&L, NULL, "Mul", x, sg, &s);
        return y < 0 ? net_invalid : net_handle(y);
    }
    case KILN_ACT_MISH: { /* x * tanh(softplus(x)) */
        int sp = net_unary(&L, "softplus", "Softplus", x, &s);
        int th = sp < 0 ? -1 : net_unary(&L, "tanh", "Tanh", sp, &s);
        int y = th < 0 ? -1 : net_binary(&L, NULL, "Mul", x, th, &s);
        return y < 0 ? net_invalid : net_handle(y);
    }
    case KILN_ACT_GELU: { /* Gelu is opset 20: the erf form torch exports at opset 17 */
        int c2 = net_scalar(&L, "sqrt2", dt, 1.4142135623730951), c1 = net_scalar(&L, "one", dt, 1.0),
            ch = net_scalar(&L, "half", dt, 0.5);
        if (c2 < 0 || c1 < 0 || ch < 0) return net_invalid;
        int dv = net_binary(&L, "div", "Div", x, c2, &s);
        int er = dv < 0 ? -1 : net_unary(&L, "erf", "Erf", dv, &s);
        int ad = er < 0 ? -1 : net_binary(&L, "add", "Add", er, c1, &s);
        int mu = ad < 0 ? -1 : net_binary(&L, "mul", "Mul", x, ad, &s);
        int y = mu < 0 ? -1 : net_binary(&L, NULL, "Mul", mu, ch, &s);
        return y < 0 ? net_invalid : net_handle(y);
    }
    }
    return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "activation %d is not a kiln_activation", (int)act);
}

/* numpy broadcasting of a and b into o; false when known dims disagree. */
static bool net_broadcast(const net_shape *a, const net_shape *b, net_shape *o)
{
    if (a->nd < 0 || b->nd < 0) { o->nd = -1; return true; }
    int nd = a->nd > b->nd ? a->nd : b->nd;
    o->nd = nd;
    for (int i = 0; i < nd; i++) {
        int ia = i - (nd - a->nd), ib = i - (nd - b->nd);
        int64_t x = ia >= 0 ? a->d[ia] : 1, y = ib >= 0 ? b->d[ib] : 1;
        if (x == 1) o->d[i] = y;
        else if (y == 1) o->d[i] = x;
        else if (x < 0 || y < 0) o->d[i] = x < 0 ? y : x; /* checked at run time */
        else if (x == y) o->d[i] = x;
        else return false;
    }
    return true;
}

KILN_API kiln_net_tensor kiln_network_add_elementwise(kiln_network *net, const char *name, kiln_net_tensor a,
                                                      kiln_net_tensor b, kiln_elementwise_op op)
{
    static const char *const ops[] = {"Add", "Mul", "Sub", "Div", "Max", "Min", "Pow"};
    net_layer L;
    if (!net_begin(&L, net, "add_elementwise", "eltwise", name)) return net_invalid;
    int xa, xb;
    net_shape sa, sb, o;
    char b1[200], b2[200];
    if (!net_input(&L, a, "input a", &xa, &sa) || !net_input(&L, b, "input b", &xb, &sb)) return net_invalid;
    if ((int)op < 0 || (int)op >= (int)(sizeof ops / sizeof ops[0]))
        return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "op %d is not a kiln_elementwise_op", (int)op);
    if (sa.dt && sb.dt && sa.dt != sb.dt)
        return net_fail(&L, KILN_ERR_DTYPE, "inputs are %s and %s: dtypes must agree", core_dtype_name(sa.dt), core_dtype_name(sb.dt));
    if (sa.dt == KILN_DTYPE_BOOL || sa.dt == KILN_DTYPE_STRING)
        return net_fail(&L, KILN_ERR_DTYPE, "inputs are %s, expected numbers", core_dtype_name(sa.dt));
    if (!net_broadcast(&sa, &sb, &o))
        return net_fail(&L, KILN_ERR_SHAPE, "shapes %s and %s do not broadcast", net_shape_str(&sa, b1, sizeof b1),
                        net_shape_str(&sb, b2, sizeof b2));
    o.dt = sa.dt ? sa.dt : sb.dt;
    int y = net_binary(&L, NULL, ops[op], xa, xb, &o);
    return y < 0 ? net_invalid : net_handle(y);
}

/* ---- concat, resize --------------------------------------------------------------------- */

KILN_API kiln_net_tensor kiln_network_add_concat(kiln_network *net, const char *name, int n, const kiln_net_tensor *inputs,
                                                 int axis)
{
    net_layer L;
    if (!net_begin(&L, net, "add_concat", "concat", name)) return net_invalid;
    if (n < 1 || !inputs) return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "needs at least one input (n = %d)", n);
    int *ids = malloc(sizeof(int) * (size_t)n);
    if (!ids) return net_fail(&L, KILN_ERR_OUT_OF_MEMORY, "out of memory");
    net_shape o, s;
    char what[32], b1[200], b2[200];
    int64_t ax = axis;
    for (int i = 0; i < n; i++) {
        snprintf(what, sizeof what, "input %d", i);
        if (!net_input(&L, inputs[i], what, &ids[i], &s)) { free(ids); return net_invalid; }
        if (i == 0) {
            o = s;
            if (o.nd < 0) continue;
            if (o.nd == 0) { free(ids); return net_fail(&L, KILN_ERR_SHAPE, "input 0 is a scalar"); }
            if (!net_norm_axis(&L, "axis", &ax, o.nd, false)) { free(ids); return net_invalid; }
            continue;
        }
        if (o.dt && s.dt && s.dt != o.dt) {
            free(ids);
            return net_fail(&L, KILN_ERR_DTYPE, "input %d is %s, input 0 is %s", i, core_dtype_name(s.dt), core_dtype_name(o.dt));
        }
        if (!o.dt) o.dt = s.dt;
        if (s.nd < 0 || o.nd < 0) { if (o.nd < 0 && s.nd >= 0) { /* keep unknown */ } continue; }
        if (s.nd != o.nd) { free(ids); return net_fail(&L, KILN_ERR_SHAPE, "input %d has %d dims, input 0 has %d", i, s.nd, o.nd); }
        for (int k = 0; k < o.nd; k++) {
            if (k == ax) { o.d[k] = o.d[k] < 0 || s.d[k] < 0 ? -1 : o.d[k] + s.d[k]; continue; }
            if (o.d[k] >= 0 && s.d[k] >= 0 && o.d[k] != s.d[k]) {
                free(ids);
                return net_fail(&L, KILN_ERR_SHAPE, "input %d has shape %s, input 0 %s: they may differ only along axis %d", i,
                                net_shape_str(&s, b1, sizeof b1), net_shape_str(&o, b2, sizeof b2), (int)ax);
            }
            if (o.d[k] < 0) o.d[k] = s.d[k];
        }
    }
    int y = net_value(&L, 0, NULL, &o);
    ir_attr at = net_ai("axis", o.nd >= 0 ? ax : axis);
    bool ok = y >= 0 && net_node(&L, NULL, "", "Concat", n, ids, 1, &y, 1, &at);
    if (y < 0) ir_attr_free(&at);
    free(ids);
    return ok ? net_handle(y) : net_invalid;
}

KILN_API kiln_net_tensor kiln_network_add_resize(kiln_network *net, const char *name, kiln_net_tensor input,
                                                 const kiln_net_resize_desc *d)
{
    static const char *const coords[] = {"", "half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel"};
    net_layer L;
    if (!net_begin(&L, net, "add_resize", "resize", name)) return net_invalid;
    int x;
    net_shape s;
    if (!d) return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "desc is NULL");
    if (!net_input(&L, input, "input", &x, &s)) return net_invalid;
    if (d->mode != KILN_INTERP_NEAREST && d->mode != KILN_INTERP_LINEAR)
        return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "mode %d is not KILN_INTERP_NEAREST or KILN_INTERP_LINEAR", (int)d->mode);
    if ((int)d->coord < 0 || (int)d->coord > (int)KILN_RESIZE_COORD_PYTORCH_HALF_PIXEL)
        return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "coord %d is not a kiln_resize_coord", (int)d->coord);
    if (!d->scales == !d->sizes) return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "give exactly one of scales and sizes");
    if (d->n < 1 || d->n > KILN_MAX_DIMS) return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "n = %d entries", d->n);
    if (!net_need_rank(&L, "input", &s, d->n)) {
        return net_fail(&L, KILN_ERR_SHAPE, "%d %s given for an input of %d dims", d->n, d->scales ? "scales" : "sizes", s.nd);
    }
    if (s.dt && !core_dtype_is_float(s.dt)) return net_fail(&L, KILN_ERR_DTYPE, "input is %s, expected a float type", core_dtype_name(s.dt));
    net_shape o = s;
    for (int i = 0; i < d->n; i++) {
        if (d->scales) {
            if (!(d->scales[i] > 0) || d->scales[i] > 1e6f)
                return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "scale %d is %g, expected > 0", i, d->scales[i]);
            o.d[i] = s.d[i] < 0 ? -1 : (int64_t)floor((double)s.d[i] * d->scales[i]);
        } else {
            if (d->sizes[i] < 0 || d->sizes[i] > (int64_t)1 << 31)
                return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "size %d is %lld", i, (long long)d->sizes[i]);
            o.d[i] = d->sizes[i];
        }
    }
    int c = d->scales ? net_floats_const(&L, "scales", d->n, d->scales) : net_ints_const(&L, "sizes", d->n, d->sizes);
    if (c < 0) return net_invalid;
    bool nearest = d->mode == KILN_INTERP_NEAREST;
    const char *cm = d->coord ? coords[d->coord] : nearest ? "asymmetric" : "pytorch_half_pixel";
    ir_attr at[3] = {net_as("mode", nearest ? "nearest" : "linear"), net_as("coordinate_transformation_mode", cm),
                     net_as("nearest_mode", "floor")};
    int nat = nearest && !d->coord ? 3 : 2;
    if (nat == 2) ir_attr_free(&at[2]);
    int y = net_value(&L, 0, NULL, &o);
    if (y < 0) { for (int i = 0; i < nat; i++) ir_attr_free(&at[i]); return net_invalid; }
    int in[4] = {x, -1, d->scales ? c : -1, d->scales ? -1 : c};
    if (!net_node(&L, NULL, "", "Resize", 4, in, 1, &y, nat, at)) return net_invalid;
    return net_handle(y);
}

/* ---- matmul, fully connected, softmax ----------------------------------------------------- */

static int net_transpose_last2(net_layer *L, const char *suffix, int x, net_shape *s)
{
    int64_t perm[KILN_MAX_DIMS];
    for (int i = 0; i < s->nd; i++) perm[i] = i;
    perm[s->nd - 2] = s->nd - 1;
    perm[s->nd - 1] = s->nd - 2;
    int64_t t = s->d[s->nd - 2];
    s->d[s->nd - 2] = s->d[s->nd - 1];
    s->d[s->nd - 1] = t;
    int y = net_value(L, '/', suffix, s);
    if (y < 0) return -1;
    ir_attr at = net_ais("perm", s->nd, perm);
    return net_node(L, suffix, "", "Transpose", 1, &x, 1, &y, 1, &at) ? y : -1;
}

KILN_API kiln_net_tensor kiln_network_add_matmul(kiln_network *net, const char *name, kiln_net_tensor a, int transpose_a,
                                                 kiln_net_tensor b, int transpose_b)
{
    net_layer L;
    if (!net_begin(&L, net, "add_matmul", "matmul", name)) return net_invalid;
    int xa, xb;
    net_shape sa, sb;
    char b1[200], b2[200];
    if (!net_input(&L, a, "input a", &xa, &sa) || !net_input(&L, b, "input b", &xb, &sb)) return net_invalid;
    if (sa.dt && sb.dt && sa.dt != sb.dt)
        return net_fail(&L, KILN_ERR_DTYPE, "inputs are %s and %s: dtypes must agree", core_dtype_name(sa.dt), core_dtype_name(sb.dt));
    if ((sa.dt && !core_dtype_is_float(sa.dt) && !core_dtype_is_int(sa.dt)) || sa.dt == KILN_DTYPE_BOOL)
        return net_fail(&L, KILN_ERR_DTYPE, "inputs are %s, expected numbers", core_dtype_name(sa.dt));
    if (sa.nd == 0 || sb.nd == 0) return net_fail(&L, KILN_ERR_SHAPE, "input %s is a scalar", sa.nd == 0 ? "a" : "b");
    if ((transpose_a && sa.nd >= 0 && sa.nd < 2) || (transpose_b && sb.nd >= 0 && sb.nd < 2))
        return net_fail(&L, KILN_ERR_SHAPE, "a transposed input needs at least 2 dims (a has %d, b has %d)", sa.nd, sb.nd);
    net_shape o = {sa.dt ? sa.dt : sb.dt, -1, {0}};
    if (sa.nd > 0 && sb.nd > 0) {
        net_shape ta = sa, tb = sb;
        if (transpose_a) { int64_t t = ta.d[ta.nd - 2]; ta.d[ta.nd - 2] = ta.d[ta.nd - 1]; ta.d[ta.nd - 1] = t; }
        if (transpose_b) { int64_t t = tb.d[tb.nd - 2]; tb.d[tb.nd - 2] = tb.d[tb.nd - 1]; tb.d[tb.nd - 1] = t; }
        int64_t ka = ta.d[ta.nd - 1], kb = tb.nd >= 2 ? tb.d[tb.nd - 2] : tb.d[0];
        if (ka >= 0 && kb >= 0 && ka != kb)
            return net_fail(&L, KILN_ERR_SHAPE, "inner dims differ: a%s %s, b%s %s", transpose_a ? "^T" : "", net_shape_str(&ta, b1, sizeof b1),
                            transpose_b ? "^T" : "", net_shape_str(&tb, b2, sizeof b2));
        net_shape ba = {0, ta.nd >= 2 ? ta.nd - 2 : 0, {0}}, bb = {0, tb.nd >= 2 ? tb.nd - 2 : 0, {0}}, bo;
        for (int i = 0; i < ba.nd; i++) ba.d[i] = ta.d[i];
        for (int i = 0; i < bb.nd; i++) bb.d[i] = tb.d[i];
        if (!net_broadcast(&ba, &bb, &bo))
            return net_fail(&L, KILN_ERR_SHAPE, "batch dims of %s and %s do not broadcast", net_shape_str(&ta, b1, sizeof b1),
                            net_shape_str(&tb, b2, sizeof b2));
        o.nd = bo.nd;
        for (int i = 0; i < bo.nd; i++) o.d[i] = bo.d[i];
        if (ta.nd >= 2) o.d[o.nd++] = ta.d[ta.nd - 2];
        if (tb.nd >= 2) o.d[o.nd++] = tb.d[tb.nd - 1];
    }
    if (transpose_a && (xa = net_transpose_last2(&L, "transpose_a", xa, &sa)) < 0) return net_invalid;
    if (transpose_b && (xb = net_transpose_last2(&L, "transpose_b", xb, &sb)) < 0) return net_invalid;
    int y = net_binary(&L, NULL, "MatMul", xa, xb, &o);
    return y < 0 ? net_invalid : net_handle(y);
}

KILN_API kiln_net_tensor kiln_network_add_fully_connected(kiln_network *net, const char *name, kiln_net_tensor input,
                                                          int64_t out_features, kiln_net_weights weight, kiln_net_weights bias)
{
    net_layer L;
    if (!net_begin(&L, net, "add_fully_connected", "fc", name)) return net_invalid;
    int x;
    net_shape s;
    char b[200];
    if (!net_input(&L, input, "input", &x, &s) || !net_need_float(&L, "input", &s)) return net_invalid;
    if (out_features <= 0 || out_features > (int64_t)1 << 30)
        return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "out_features is %lld", (long long)out_features);
    if (s.nd >= 0 && s.nd < 2) return net_fail(&L, KILN_ERR_SHAPE, "input has %d dims, expected at least 2 (N x features)", s.nd);
    int64_t K = s.nd >= 0 ? 1 : -1, want = -1;
    for (int i = 1; i < s.nd && K >= 0; i++)
        if (s.d[i] < 0) K = -1;
        else if (!core_mul_size(K, s.d[i], &K)) return net_fail(&L, KILN_ERR_SHAPE, "the input's feature count overflows");
    const float *wv, *bv;
    int64_t wn, bn;
    snprintf(b, sizeof b, "%lld x %lld", (long long)out_features, (long long)K);
    if (K >= 0 && !core_mul_size(out_features, K, &want)) return net_fail(&L, KILN_ERR_SHAPE, "the weight shape %s is too large", b);
    if (!net_weights(&L, "weight", weight, want, b, false, &wv, &wn)) return net_invalid;
    if (K < 0) {
        if (wn == 0 || wn % out_features)
            return net_fail(&L, KILN_ERR_SHAPE, "weight has %lld values, not a multiple of out_features %lld", (long long)wn, (long long)out_features);
        K = wn / out_features;
    }
    if (!net_weights(&L, "bias", bias, out_features, "out_features", true, &bv, &bn)) return net_invalid;
    int64_t wd[2] = {out_features, K};
    int w = net_const(&L, "weight", KILN_DTYPE_FLOAT, 2, wd, wv);
    int bc = bv ? net_floats_const(&L, "bias", out_features, bv) : -1;
    if (w < 0 || (bv && bc < 0)) return net_invalid;
    if (s.nd != 2) { /* N x ... -> N x K */
        net_shape f = {KILN_DTYPE_FLOAT, 2, {s.nd > 0 ? s.d[0] : -1, K}};
        int fx = net_value(&L, '/', "flatten", &f);
        ir_attr at = net_ai("axis", 1);
        if (fx < 0) { ir_attr_free(&at); return net_invalid; }
        if (!net_node(&L, "flatten", "", "Flatten", 1, &x, 1, &fx, 1, &at)) return net_invalid;
        x = fx;
    }
    net_shape o = {KILN_DTYPE_FLOAT, 2, {s.nd > 0 ? s.d[0] : -1, out_features}};
    int y = net_value(&L, 0, NULL, &o);
    if (y < 0) return net_invalid;
    ir_attr at = net_ai("transB", 1);
    int in[3] = {x, w, bc};
    if (!net_node(&L, NULL, "", "Gemm", bv ? 3 : 2, in, 1, &y, 1, &at)) return net_invalid;
    return net_handle(y);
}

KILN_API kiln_net_tensor kiln_network_add_softmax(kiln_network *net, const char *name, kiln_net_tensor input, int axis)
{
    net_layer L;
    if (!net_begin(&L, net, "add_softmax", "softmax", name)) return net_invalid;
    int x;
    net_shape s;
    if (!net_input(&L, input, "input", &x, &s)) return net_invalid;
    if (s.dt && !core_dtype_is_float(s.dt)) return net_fail(&L, KILN_ERR_DTYPE, "input is %s, expected a float type", core_dtype_name(s.dt));
    int64_t ax = axis;
    if (s.nd == 0) return net_fail(&L, KILN_ERR_SHAPE, "input is a scalar");
    if (s.nd > 0 && !net_norm_axis(&L, "axis", &ax, s.nd, false)) return net_invalid;
    ir_attr at = net_ai("axis", ax);
    return net_unary_node(&L, "Softmax", x, &s, 1, &at);
}

/* ---- normalization ---------------------------------------------------------------------- */

static kiln_net_tensor net_bn_emit(net_layer *L, int x, const net_shape *s, int64_t C, const float *sc, const float *bi,
                                   const float *mean, const float *var, float eps)
{
    int c[4] = {net_floats_const(L, "weight", C, sc), net_floats_const(L, "bias", C, bi),
                net_floats_const(L, "running_mean", C, mean), net_floats_const(L, "running_var", C, var)};
    if (c[0] < 0 || c[1] < 0 || c[2] < 0 || c[3] < 0) return net_invalid;
    int y = net_value(L, 0, NULL, s);
    if (y < 0) return net_invalid;
    ir_attr at = net_af("epsilon", eps);
    int in[5] = {x, c[0], c[1], c[2], c[3]};
    if (!net_node(L, NULL, "", "BatchNormalization", 5, in, 1, &y, 1, &at)) return net_invalid;
    return net_handle(y);
}

/* Channel count of an N x C x ... input (-1 dynamic); false with the error set otherwise. */
static bool net_channels(net_layer *L, const net_shape *s, int64_t *C)
{
    if (s->nd >= 0 && s->nd < 2) { net_error(L, KILN_ERR_SHAPE, "input has %d dims, expected at least 2 (N x C x ...)", s->nd); return false; }
    *C = s->nd >= 2 ? s->d[1] : -1;
    return true;
}

KILN_API kiln_net_tensor kiln_network_add_batchnorm(kiln_network *net, const char *name, kiln_net_tensor input,
                                                    const kiln_batchnorm_desc *d)
{
    net_layer L;
    if (!net_begin(&L, net, "add_batchnorm", "bn", name)) return net_invalid;
    int x;
    net_shape s;
    int64_t C;
    if (!d) return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "desc is NULL");
    if (!net_input(&L, input, "input", &x, &s) || !net_need_float(&L, "input", &s) || !net_channels(&L, &s, &C)) return net_invalid;
    kiln_net_weights p[4] = {d->scale, d->bias, d->mean, d->var};
    static const char *const what[4] = {"scale", "bias", "mean", "var"};
    static const char *const suffix[4] = {"weight", "bias", "running_mean", "running_var"};
    char names[4][NET_NAME_MAX + 16];
    bool none = true;
    for (int i = 0; i < 4; i++) none = none && !p[i].values && !p[i].name && !p[i].count;
    if (none && d->prefix) {
        for (int i = 0; i < 4; i++) {
            snprintf(names[i], sizeof names[i], "%s.%s", d->prefix, suffix[i]);
            p[i] = kiln_net_weights_named(names[i]);
        }
    }
    const float *v[4];
    int64_t n[4];
    for (int i = 0; i < 4; i++) {
        if (!net_weights(&L, what[i], p[i], C >= 0 ? C : -1, "channels", false, &v[i], &n[i])) return net_invalid;
        if (C < 0) C = n[i];
        else if (n[i] != C) return net_fail(&L, KILN_ERR_SHAPE, "%s has %lld values, %s has %lld", what[i], (long long)n[i], what[0], (long long)C);
    }
    if (C == 0) return net_fail(&L, KILN_ERR_SHAPE, "zero channels");
    float eps = d->eps != 0 ? d->eps : 1e-5f;
    if (!(eps > 0)) return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "eps is %g, expected > 0", eps);
    for (int64_t i = 0; i < C; i++)
        if (!(v[3][i] >= 0))
            return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "var[%lld] is %g: variances must be >= 0", (long long)i, v[3][i]);
    return net_bn_emit(&L, x, &s, C, v[0], v[1], v[2], v[3], eps);
}

KILN_API kiln_net_tensor kiln_network_add_scale(kiln_network *net, const char *name, kiln_net_tensor input,
                                                kiln_net_weights scale, kiln_net_weights shift)
{
    net_layer L;
    if (!net_begin(&L, net, "add_scale", "scale", name)) return net_invalid;
    int x;
    net_shape s;
    int64_t C, n;
    const float *sc, *sh;
    if (!net_input(&L, input, "input", &x, &s) || !net_need_float(&L, "input", &s) || !net_channels(&L, &s, &C)) return net_invalid;
    if (!net_weights(&L, "scale", scale, C, "channels", false, &sc, &n)) return net_invalid;
    if (C < 0) C = n;
    if (!net_weights(&L, "shift", shift, C, "channels", true, &sh, &n)) return net_invalid;
    if (C == 0) return net_fail(&L, KILN_ERR_SHAPE, "zero channels");
    /* A BatchNormalization with mean 0, var 1, eps 0 is exactly x * scale + shift, and the
     * optimizer folds it into a preceding Conv/Gemm. */
    float *buf = calloc((size_t)C * 2, sizeof(float));
    if (!buf) return net_fail(&L, KILN_ERR_OUT_OF_MEMORY, "out of memory");
    float *zero = buf, *one = buf + C;
    for (int64_t i = 0; i < C; i++) one[i] = 1.0f;
    kiln_net_tensor r = net_bn_emit(&L, x, &s, C, sc, sh ? sh : zero, zero, one, 0.0f);
    free(buf);
    return r;
}

/* ---- shuffles ------------------------------------------------------------------------------ */

KILN_API kiln_net_tensor kiln_network_add_reshape(kiln_network *net, const char *name, kiln_net_tensor input, int ndim,
                                                  const int64_t *dims)
{
    net_layer L;
    if (!net_begin(&L, net, "add_reshape", "reshape", name)) return net_invalid;
    int x;
    net_shape s;
    char b[200];
    if (!net_input(&L, input, "input", &x, &s)) return net_invalid;
    if (ndim < 0 || ndim > KILN_MAX_DIMS) return net_fail(&L, KILN_ERR_SHAPE, "rank %d is out of range 0..%d", ndim, KILN_MAX_DIMS);
    if (ndim > 0 && !dims) return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "dims is NULL");
    net_shape o = {s.dt, ndim, {0}};
    int infer_at = -1;
    int64_t known = 1;
    for (int i = 0; i < ndim; i++) {
        int64_t v = dims[i];
        if (v == -1) {
            if (infer_at >= 0) return net_fail(&L, KILN_ERR_SHAPE, "dims %d and %d are both -1", infer_at, i);
            infer_at = i;
            o.d[i] = -1;
            continue;
        }
        if (v < -1) return net_fail(&L, KILN_ERR_SHAPE, "dim %d is %lld", i, (long long)v);
        if (v == 0) {
            if (s.nd >= 0 && i >= s.nd) return net_fail(&L, KILN_ERR_SHAPE, "dim %d is 0 (copy) but the input has only %d dims", i, s.nd);
            v = s.nd >= 0 ? s.d[i] : -1;
        }
        o.d[i] = v;
        if (v < 0 || known < 0) known = -1;
        else if (!core_mul_size(known, v, &known)) return net_fail(&L, KILN_ERR_SHAPE, "the shape overflows");
    }
    int64_t total = s.nd >= 0 ? 1 : -1;
    for (int i = 0; i < s.nd && total >= 0; i++)
        if (s.d[i] < 0 || !core_mul_size(total, s.d[i], &total)) total = -1;
    if (total >= 0 && known >= 0) {
        if (infer_at >= 0) {
            if (known == 0 || total % known)
                return net_fail(&L, KILN_ERR_SHAPE, "input %s (%lld elements) cannot be reshaped with the other dims making %lld",
                                net_shape_str(&s, b, sizeof b), (long long)total, (long long)known);
            o.d[infer_at] = total / known;
        } else if (known != total) {
            net_shape t = o;
            char b2[200];
            return net_fail(&L, KILN_ERR_SHAPE, "input %s has %lld elements, %s has %lld", net_shape_str(&s, b, sizeof b),
                            (long long)total, net_shape_str(&t, b2, sizeof b2), (long long)known);
        }
    }
    int c = net_ints_const(&L, "shape", ndim, dims);
    if (c < 0) return net_invalid;
    int y = net_binary(&L, NULL, "Reshape", x, c, &o);
    return y < 0 ? net_invalid : net_handle(y);
}

KILN_API kiln_net_tensor kiln_network_add_transpose(kiln_network *net, const char *name, kiln_net_tensor input, int ndim,
                                                    const int *perm)
{
    net_layer L;
    if (!net_begin(&L, net, "add_transpose", "transpose", name)) return net_invalid;
    int x;
    net_shape s;
    if (!net_input(&L, input, "input", &x, &s)) return net_invalid;
    if (ndim < 0 || ndim > KILN_MAX_DIMS) return net_fail(&L, KILN_ERR_SHAPE, "rank %d is out of range", ndim);
    if (s.nd >= 0 && ndim != s.nd) return net_fail(&L, KILN_ERR_SHAPE, "perm has %d entries, the input has %d dims", ndim, s.nd);
    int64_t p[KILN_MAX_DIMS];
    bool seen[KILN_MAX_DIMS] = {false};
    net_shape o = {s.dt, ndim, {0}};
    for (int i = 0; i < ndim; i++) {
        p[i] = perm ? perm[i] : ndim - 1 - i;
        if (p[i] < 0 || p[i] >= ndim || seen[p[i]]) return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "perm is not a permutation of 0..%d", ndim - 1);
        seen[p[i]] = true;
        o.d[i] = s.nd >= 0 ? s.d[p[i]] : -1;
    }
    ir_attr at = net_ais("perm", ndim, p);
    return net_unary_node(&L, "Transpose", x, &o, 1, &at);
}

KILN_API kiln_net_tensor kiln_network_add_flatten(kiln_network *net, const char *name, kiln_net_tensor input, int axis)
{
    net_layer L;
    if (!net_begin(&L, net, "add_flatten", "flatten", name)) return net_invalid;
    int x;
    net_shape s;
    if (!net_input(&L, input, "input", &x, &s)) return net_invalid;
    int64_t ax = axis;
    net_shape o = {s.dt, 2, {-1, -1}};
    if (s.nd >= 0) {
        if (!net_norm_axis(&L, "axis", &ax, s.nd, true)) return net_invalid;
        int64_t a = 1, b = 1;
        for (int i = 0; i < s.nd; i++) {
            int64_t *t = i < ax ? &a : &b;
            if (*t < 0 || s.d[i] < 0 || !core_mul_size(*t, s.d[i], t)) *t = -1;
        }
        o.d[0] = a;
        o.d[1] = b;
    }
    ir_attr at = net_ai("axis", ax);
    return net_unary_node(&L, "Flatten", x, &o, 1, &at);
}

KILN_API kiln_net_tensor kiln_network_add_slice(kiln_network *net, const char *name, kiln_net_tensor input, int n,
                                                const int64_t *starts, const int64_t *ends, const int64_t *axes,
                                                const int64_t *steps)
{
    net_layer L;
    if (!net_begin(&L, net, "add_slice", "slice", name)) return net_invalid;
    int x;
    net_shape s;
    if (!net_input(&L, input, "input", &x, &s)) return net_invalid;
    if (n < 1 || n > KILN_MAX_DIMS || !starts || !ends) return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "needs n >= 1 starts and ends (n = %d)", n);
    if (s.nd >= 0 && n > s.nd) return net_fail(&L, KILN_ERR_SHAPE, "%d axes sliced, the input has %d dims", n, s.nd);
    int64_t ax[KILN_MAX_DIMS], st[KILN_MAX_DIMS];
    bool seen[KILN_MAX_DIMS] = {false};
    net_shape o = s;
    for (int i = 0; i < n; i++) {
        ax[i] = axes ? axes[i] : i;
        st[i] = steps ? steps[i] : 1;
        /* Steps longer than any dim give the same slice; bounding them spares kiln's shape
         * rules (opt/infer_extra.c) an overflow. */
        if (st[i] > NET_MAX_DIM + 1) st[i] = NET_MAX_DIM + 1;
        if (st[i] < -(NET_MAX_DIM + 1)) st[i] = -(NET_MAX_DIM + 1);
        if (s.nd >= 0) {
            if (!net_norm_axis(&L, "axis", &ax[i], s.nd, false)) return net_invalid;
            if (seen[ax[i]]) return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "axis %lld is sliced twice", (long long)ax[i]);
            seen[ax[i]] = true;
        }
        if (st[i] == 0) return net_fail(&L, KILN_ERR_INVALID_ARGUMENT, "step %d is 0", i);
        if (s.nd < 0) continue;
        int64_t dim = s.d[ax[i]];
        if (dim < 0) { o.d[ax[i]] = -1; continue; }
        int64_t b = starts[i], e = ends[i], k = st[i];
        if (b < 0) b += dim;
        if (e < 0) e += dim;
        if (k > 0) {
            b = b < 0 ? 0 : b > dim ? dim : b;
            e = e < 0 ? 0 : e > dim ? dim : e;
            o.d[ax[i]] = e > b ? (e - b - 1) / k + 1 : 0;
        } else {
            b = b < 0 ? -1 : b > dim - 1 ? dim - 1 : b;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            int64_t mag = k == INT64_MIN ? INT64_MAX : -k;
            o.d[ax[i]] = b > e ? (b - e - 1) / mag + 1 : 0;
        }
    }
    int c[4] = {net_ints_const(&L, "starts", n, starts), net_ints_const(&L, "ends", n, ends), net_ints_const(&L, "axes", n, ax),
                net_ints_const(&L, "steps", n, st)};
    if (c[0] < 0 || c[1] < 0 || c[2] < 0 || c[3] < 0) return net_invalid;
    int y = net_value(&L, 0, NULL, &o);
    if (y < 0) return net_invalid;
    int in[5] = {x, c[0], c[1], c[2], c[3]};
    if (!net_node(&L, NULL, "", "Slice", 5, in, 1, &y, 0, NULL)) return net_invalid;
    return net_handle(y);
}

/* ---- plugin layers ------------------------------------------------------------------------- */

static ir_attr net_plugin_attr(const kiln_plugin_attr *a)
{
    if (a->s) return net_as(a->name, a->s);
    if (a->ints) return net_ais(a->name, a->n, a->ints);
    if (a->floats) return net_afs(a->name, a->n, a->floats);
    if (a->is_float) return net_af(a->name, a->f);
    return net_ai(a->name, a->i);
}

KILN_API kiln_status kiln_network_add_plugin(kiln_network *net, const char *name, const char *domain, const char *op_type,
                                             int n_inputs, const kiln_net_tensor *inputs, int n_attrs,
                                             const kiln_plugin_attr *attrs, int n_outputs, kiln_net_tensor *outputs)
{
    net_layer L;
    for (int i = 0; outputs && i < n_outputs && i < 64; i++) outputs[i] = net_invalid;
    if (!net_begin(&L, net, "add_plugin", "plugin", name)) return KILN_ERR_INVALID_ARGUMENT;
    if (!op_type || !*op_type) return net_error(&L, KILN_ERR_INVALID_ARGUMENT, "op_type is missing");
    if (!domain || !strcmp(domain, "ai.onnx")) domain = "";
    if (!ops_find_reference(domain, op_type, *domain ? 0 : NET_OPSET))
        return net_error(&L, KILN_ERR_UNSUPPORTED, "op %s%s%s is neither a registered plugin nor implemented by kiln",
                         domain, *domain ? "." : "", op_type);
    if (n_inputs < 0 || n_inputs > 1024 || (n_inputs && !inputs)) return net_error(&L, KILN_ERR_INVALID_ARGUMENT, "bad inputs (n = %d)", n_inputs);
    if (n_outputs < 1 || n_outputs > 64 || !outputs) return net_error(&L, KILN_ERR_INVALID_ARGUMENT, "needs 1..64 outputs (n = %d)", n_outputs);
    if (n_attrs < 0 || n_attrs > 1024 || (n_attrs && !attrs)) return net_error(&L, KILN_ERR_INVALID_ARGUMENT, "bad attributes (n = %d)", n_attrs);
    for (int i = 0; i < n_attrs; i++) {
        if (!attrs[i].name || !*attrs[i].name) return net_error(&L, KILN_ERR_INVALID_ARGUMENT, "attribute %d has no name", i);
        if ((attrs[i].ints || attrs[i].floats) && (attrs[i].n < 0 || attrs[i].n > (int64_t)1 << 24))
            return net_error(&L, KILN_ERR_INVALID_ARGUMENT, "attribute '%s' has %lld values", attrs[i].name, (long long)attrs[i].n);
        for (int k = 0; k < i; k++)
            if (!strcmp(attrs[k].name, attrs[i].name)) return net_error(&L, KILN_ERR_INVALID_ARGUMENT, "attribute '%s' is given twice", attrs[i].name);
    }
    int in[1024 + 1], out[64];
    net_shape s;
    char what[32];
    for (int i = 0; i < n_inputs; i++) {
        if (inputs[i].id == -1) { in[i] = -1; continue; } /* an omitted optional input */
        snprintf(what, sizeof what, "input %d", i);
        if (!net_input(&L, inputs[i], what, &in[i], &s)) return KILN_ERR_INVALID_ARGUMENT;
    }
    for (int i = 0; i < n_outputs; i++) {
        char sfx[16];
        snprintf(sfx, sizeof sfx, "%d", i);
        if ((out[i] = net_value(&L, ':', i ? sfx : NULL, NULL)) < 0) return L.net->first_status;
    }
    ir_attr *at = calloc((size_t)(n_attrs ? n_attrs : 1), sizeof *at);
    if (!at) return net_error(&L, KILN_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < n_attrs; i++) at[i] = net_plugin_attr(&attrs[i]);
    bool ok = net_node(&L, NULL, domain, op_type, n_inputs, in, n_outputs, out, n_attrs, at);
    free(at);
    if (!ok) return KILN_ERR_OUT_OF_MEMORY;
    /* Type the outputs: the plugin's infer callback, or kiln's rules for a built-in op. */
    ir_graph *g = net->g;
    kiln_status st = ops_plugin_infer_node(g, &g->nodes[g->n_nodes - 1]);
    if (st) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", core_error_text());
        return net_error(&L, st, "%s", msg);
    }
    if (!ops_plugin_find(domain, op_type)) {
        g->n_opsets = 1; /* ir_graph_infer reads the default domain's opset */
        ir_opset def = {"", NET_OPSET};
        g->opsets = &def;
        ir_graph_infer(g);
        g->n_opsets = 0;
        g->opsets = NULL;
    }
    for (int i = 0; i < n_outputs; i++) outputs[i] = net_handle(out[i]);
    return KILN_OK;
}

/* ---- outputs, info, build -------------------------------------------------------------------- */

KILN_API kiln_status kiln_network_mark_output(kiln_network *net, kiln_net_tensor t, const char *name)
{
    net_layer L;
    L.net = net;
    L.fn = "mark_output";
    snprintf(L.name, sizeof L.name, "%s", name ? name : "");
    if (!net) return core_error(KILN_ERR_INVALID_ARGUMENT, "mark_output: network is NULL");
    int id;
    net_shape s;
    if (!net_input(&L, t, "tensor", &id, &s)) return KILN_ERR_INVALID_ARGUMENT;
    ir_graph *g = net->g;
    const ir_value *v = &g->values[id];
    if (name && strlen(name) >= NET_NAME_MAX - 32)
        return net_error(&L, KILN_ERR_INVALID_ARGUMENT, "name is longer than %d characters", NET_NAME_MAX - 33);
    if (name && !*name) return net_error(&L, KILN_ERR_INVALID_ARGUMENT, "name is empty");
    bool same = !name || !strcmp(name, v->name);
    if (same && v->is_graph_output) return net_error(&L, KILN_ERR_INVALID_ARGUMENT, "'%s' is already an output", v->name);
    int out = id;
    if (!same || v->is_graph_input || v->constant) {
        /* An output under another name, or of an input/constant: an Identity names it. */
        if (same) return net_error(&L, KILN_ERR_INVALID_ARGUMENT, "'%s' is a graph %s: mark it under another name", v->name,
                                   v->is_graph_input ? "input" : "constant");
        if (net_name_taken(net, name)) return net_error(&L, KILN_ERR_INVALID_ARGUMENT, "the name is already used in the network");
        if ((out = net_value(&L, 0, NULL, &s)) < 0) return L.net->first_status;
        if (!net_node(&L, NULL, "", "Identity", 1, &id, 1, &out, 0, NULL)) return KILN_ERR_OUT_OF_MEMORY;
    }
    if (!net_push_id(&g->outputs, &g->n_outputs, out)) return net_error(&L, KILN_ERR_OUT_OF_MEMORY, "out of memory");
    g->values[out].is_graph_output = true;
    return KILN_OK;
}

KILN_API kiln_status kiln_network_tensor_info(const kiln_network *net, kiln_net_tensor t, kiln_tensor_info *out)
{
    if (!net || !out) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_network_tensor_info: NULL argument");
    if (t.id <= 0 || t.id > net->g->n_values)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_network_tensor_info: tensor %d is not valid in this network", (int)t.id);
    net_shape s;
    net_shape_of(net, t.id - 1, &s);
    memset(out, 0, sizeof *out);
    out->name = net->g->values[t.id - 1].name;
    out->dtype = s.dt;
    out->ndim = s.nd;
    for (int i = 0; i < s.nd; i++) out->dims[i] = s.d[i];
    return KILN_OK;
}

/* Deep copy of the attribute kinds this file creates. */
static bool net_attr_copy(ir_attr *dst, const ir_attr *a)
{
    memset(dst, 0, sizeof *dst);
    dst->type = a->type;
    dst->i = a->i;
    dst->f = a->f;
    dst->n = a->n;
    if (!(dst->name = core_strdup(a->name))) return false;
    if (a->s && !(dst->s = core_strndup(a->s, a->s_len))) return false;
    dst->s_len = a->s_len;
    size_t n = (size_t)(a->n > 0 ? a->n : 1);
    if (a->ints && !(dst->ints = malloc(sizeof(int64_t) * n))) return false;
    if (a->ints && a->n > 0) memcpy(dst->ints, a->ints, sizeof(int64_t) * (size_t)a->n);
    if (a->floats && !(dst->floats = malloc(sizeof(float) * n))) return false;
    if (a->floats && a->n > 0) memcpy(dst->floats, a->floats, sizeof(float) * (size_t)a->n);
    return true;
}

static bool net_node_copy(ir_node *dst, const ir_node *n)
{
    memset(dst, 0, sizeof *dst);
    dst->name = core_strdup(n->name);
    dst->op_type = core_strdup(n->op_type);
    dst->domain = core_strdup(n->domain);
    dst->inputs = malloc(sizeof(int) * (size_t)(n->n_inputs + 1));
    dst->outputs = malloc(sizeof(int) * (size_t)(n->n_outputs + 1));
    dst->attrs = calloc((size_t)n->n_attrs + 1, sizeof(ir_attr));
    if (!dst->name || !dst->op_type || !dst->domain || !dst->inputs || !dst->outputs || !dst->attrs) return false;
    dst->n_inputs = n->n_inputs;
    dst->n_outputs = n->n_outputs;
    if (n->n_inputs) memcpy(dst->inputs, n->inputs, sizeof(int) * (size_t)n->n_inputs);
    if (n->n_outputs) memcpy(dst->outputs, n->outputs, sizeof(int) * (size_t)n->n_outputs);
    for (int i = 0; i < n->n_attrs; i++) {
        dst->n_attrs = i + 1;
        if (!net_attr_copy(&dst->attrs[i], &n->attrs[i])) return false;
    }
    return true;
}

static kiln_status net_add_opset(ir_model *m, const char *domain, int64_t version)
{
    for (int i = 0; i < m->n_opsets; i++)
        if (!strcmp(m->opsets[i].domain, domain)) return KILN_OK;
    ir_opset *no = realloc(m->opsets, sizeof *no * (size_t)(m->n_opsets + 1));
    if (!no) return core_oom();
    m->opsets = no;
    if (!(no[m->n_opsets].domain = core_strdup(domain))) return core_oom();
    no[m->n_opsets++].version = version;
    return KILN_OK;
}

/* A fresh IR model with a copy of the network's graph: types kept for inputs, outputs and
 * constants; the rest is left to kiln's own inference. */
static kiln_status net_copy_model(const kiln_network *net, ir_model **out)
{
    const ir_graph *src = net->g;
    ir_model *m = calloc(1, sizeof *m);
    if (!m) return core_oom();
    m->ir_version = 8;
    m->producer_name = core_strdup("kiln network");
    m->producer_version = core_strdup(kiln_version_string());
    kiln_status st = m->producer_name && m->producer_version ? net_add_opset(m, "", NET_OPSET) : core_oom();
    for (int i = 0; !st && i < src->n_nodes; i++)
        if (src->nodes[i].domain && *src->nodes[i].domain) st = net_add_opset(m, src->nodes[i].domain, 1);
    if (!st && !(m->graph = ir_graph_create(src->name, NULL))) st = KILN_ERR_OUT_OF_MEMORY;
    if (st) { ir_model_destroy(m); return st; }
    ir_graph *g = m->graph;
    g->n_opsets = m->n_opsets;
    g->opsets = m->opsets;
    for (int v = 0; v < src->n_values; v++) {
        const ir_value *sv = &src->values[v];
        int id = ir_graph_intern_value(g, sv->name);
        if (id != v) { ir_model_destroy(m); return id < 0 ? KILN_ERR_OUT_OF_MEMORY : core_error(KILN_ERR_INTERNAL, "network value ids diverged"); }
        ir_value *dv = &g->values[id];
        dv->is_graph_input = sv->is_graph_input;
        dv->is_graph_output = sv->is_graph_output;
        if (sv->constant) dv->constant = core_value_retain(sv->constant);
        if ((sv->is_graph_input || sv->is_graph_output || sv->constant) && !ir_type_copy(&dv->type, &sv->type)) {
            ir_model_destroy(m);
            return core_oom();
        }
    }
    g->nodes = calloc((size_t)src->n_nodes + 1, sizeof *g->nodes);
    g->inputs = malloc(sizeof(int) * ((size_t)src->n_inputs + 1));
    g->outputs = malloc(sizeof(int) * ((size_t)src->n_outputs + 1));
    if (!g->nodes || !g->inputs || !g->outputs) { ir_model_destroy(m); return core_oom(); }
    g->cap_nodes = src->n_nodes + 1;
    for (int i = 0; i < src->n_nodes; i++) {
        g->n_nodes = i + 1;
        if (!net_node_copy(&g->nodes[i], &src->nodes[i])) { ir_model_destroy(m); return core_oom(); }
    }
    g->n_inputs = src->n_inputs;
    g->n_outputs = src->n_outputs;
    if (src->n_inputs) memcpy(g->inputs, src->inputs, sizeof(int) * (size_t)src->n_inputs);
    if (src->n_outputs) memcpy(g->outputs, src->outputs, sizeof(int) * (size_t)src->n_outputs);
    *out = m;
    return KILN_OK;
}

KILN_API kiln_status kiln_network_build(kiln_network *net, const kiln_load_options *opts, kiln_model **out)
{
    if (!out) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_network_build: out is NULL");
    *out = NULL;
    if (!net) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_network_build: network is NULL");
    const char *nm = net->g->name;
    if (net->first_status)
        return core_error(net->first_status, "kiln_network_build '%s': a layer failed: %s", nm,
                          net->first_error ? net->first_error : kiln_status_string(net->first_status));
    if (net->g->n_outputs == 0) return core_error(KILN_ERR_INVALID_MODEL, "kiln_network_build '%s': no output is marked (kiln_network_mark_output)", nm);
    ir_model *m = NULL;
    kiln_status st = net_copy_model(net, &m);
    if (st) return core_error_prefix(st, "kiln_network_build '%s': ", nm);
    ir_graph *g = m->graph;
    st = ir_graph_sort(g);
    if (!st) st = ir_graph_verify(g);
    if (st) { ir_model_destroy(m); return core_error_prefix(st, "kiln_network_build '%s': ", nm); }
    /* kiln's inference names symbolic dims; where it cannot type an output, this file's
     * shapes declare it. */
    ir_graph_infer(g);
    for (int k = 0; k < g->n_outputs; k++) {
        ir_value *v = &g->values[g->outputs[k]];
        const ir_type *mine = &net->g->values[g->outputs[k]].type;
        if ((v->type.kind != IR_TYPE_TENSOR || v->type.ndim < 0) && mine->kind == IR_TYPE_TENSOR) {
            ir_type_free(&v->type);
            if (!ir_type_copy(&v->type, mine)) { ir_model_destroy(m); return core_oom(); }
        }
    }
    st = api_model_from_ir(m, opts, out);
    if (st) return core_error_prefix(st, "kiln_network_build '%s': ", nm);
    return KILN_OK;
}
