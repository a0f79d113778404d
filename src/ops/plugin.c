/* plugin.c — user-defined ops: a process-wide registry of kiln_plugin_desc, a trampoline
 * kernel that calls a plugin's run callback through ops_ctx, and the kiln_plugin_* accessors. */
#include "ops/plugin.h"
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Entries are never freed: schemas handed to models must stay valid for the process, and
 * lookups walk the list without a lock (entries are immutable once published). */
typedef struct ops_plugin {
    ops_schema schema; /* run = ops_plugin_trampoline */
    char *domain;      /* "" for the default domain */
    char *op_type;
    char *label;       /* "com.example.X", or "X" in the default domain */
    kiln_plugin_desc desc;
    struct ops_plugin *next;
} ops_plugin;

static ops_plugin *ops_plugin_head;
static pthread_mutex_t ops_plugin_lock = PTHREAD_MUTEX_INITIALIZER;

struct kiln_plugin_context {
    ops_ctx *ops;          /* run: the kernel context; NULL during infer */
    ir_graph *g;           /* infer: the graph whose value types are filled */
    const ir_node *node;
    const ops_plugin *p;
    bool error_set;        /* kiln_plugin_error was called */
    uint64_t produced;     /* run: outputs 0..63 allocated */
};

static const char *ops_plugin_norm_domain(const char *d)
{
    return !d || !strcmp(d, "ai.onnx") ? "" : d;
}

static const ops_plugin *ops_plugin_lookup(const char *domain, const char *op_type)
{
    if (!op_type) return NULL;
    domain = ops_plugin_norm_domain(domain);
    for (const ops_plugin *p = __atomic_load_n(&ops_plugin_head, __ATOMIC_ACQUIRE); p; p = p->next)
        if (!strcmp(p->op_type, op_type) && !strcmp(p->domain, domain)) return p;
    return NULL;
}

bool ops_plugin_any(void) { return __atomic_load_n(&ops_plugin_head, __ATOMIC_ACQUIRE) != NULL; }

const ops_schema *ops_plugin_find(const char *domain, const char *op_type)
{
    const ops_plugin *p = ops_plugin_lookup(domain, op_type);
    return p ? &p->schema : NULL;
}

static const char *ops_plugin_node_label(const kiln_plugin_context *pc)
{
    return pc->node->name && *pc->node->name ? pc->node->name : "";
}

/* Map a plugin's status into the enum (a plugin may return anything). */
static kiln_status ops_plugin_status(kiln_status s)
{
    return (int)s > 0 && (int)s <= (int)KILN_ERR_INTERNAL ? s : KILN_ERR_RUNTIME;
}

static kiln_status ops_plugin_trampoline(ops_ctx *c)
{
    const ir_node *nd = ops_node(c);
    const ops_plugin *p = ops_plugin_lookup(nd->domain, nd->op_type);
    if (!p) return ops_error(c, KILN_ERR_INTERNAL, "no plugin registered for this op");
    kiln_plugin_context pc = {c, NULL, nd, p, false, 0};
    kiln_status st = p->desc.run(&pc, p->desc.user);
    if (st != KILN_OK) {
        st = ops_plugin_status(st);
        if (!pc.error_set)
            core_error(st, "node '%s' (%s): plugin run failed (%s)", ops_plugin_node_label(&pc), p->label,
                       kiln_status_string(st));
        return st;
    }
    for (int i = 0; i < nd->n_outputs && i < 64; i++)
        if (nd->outputs[i] >= 0 && !(pc.produced >> i & 1))
            return core_error(KILN_ERR_RUNTIME, "node '%s' (%s): the plugin did not produce output %d",
                              ops_plugin_node_label(&pc), p->label, i);
    return KILN_OK;
}

KILN_API kiln_status kiln_plugin_register(const kiln_plugin_desc *desc)
{
    if (!desc || !desc->op_type || !*desc->op_type)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_plugin_register: desc or its op_type is missing");
    const char *domain = ops_plugin_norm_domain(desc->domain);
    char label[512];
    snprintf(label, sizeof label, "%s%s%s", domain, *domain ? "." : "", desc->op_type);
    if (!desc->run) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_plugin_register %s: run callback is NULL", label);
    const ops_schema *builtin = ops_find_reference(domain, desc->op_type, 0);
    if (builtin && builtin->run != ops_plugin_trampoline)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_plugin_register %s: kiln implements this op itself", label);
    ops_plugin *p = calloc(1, sizeof *p);
    if (!p) return core_oom();
    p->domain = core_strdup(domain);
    p->op_type = core_strdup(desc->op_type);
    p->label = core_strdup(label);
    if (!p->domain || !p->op_type || !p->label) {
        free(p->domain); free(p->op_type); free(p->label); free(p);
        return core_oom();
    }
    p->desc = *desc;
    p->desc.domain = p->domain;
    p->desc.op_type = p->op_type;
    p->schema = (ops_schema){p->op_type, p->domain, 1, ops_plugin_trampoline, 0};
    pthread_mutex_lock(&ops_plugin_lock);
    bool dup = ops_plugin_lookup(domain, desc->op_type) != NULL;
    if (!dup) {
        p->next = ops_plugin_head;
        __atomic_store_n(&ops_plugin_head, p, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&ops_plugin_lock);
    if (dup) {
        free(p->domain); free(p->op_type); free(p->label); free(p);
        return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_plugin_register %s: already registered", label);
    }
    return KILN_OK;
}

/* ---- accessors -------------------------------------------------------------------------- */

KILN_API kiln_status kiln_plugin_error(kiln_plugin_context *pc, kiln_status s, const char *fmt, ...)
{
    char msg[1024];
    msg[0] = 0;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    s = s == KILN_OK ? KILN_ERR_RUNTIME : ops_plugin_status(s);
    if (!pc) return core_error(s, "%s", msg);
    pc->error_set = true;
    return core_error(s, "node '%s' (%s): %s", ops_plugin_node_label(pc), pc->p->label, msg);
}

KILN_API const char *kiln_plugin_node_name(const kiln_plugin_context *pc) { return pc ? ops_plugin_node_label(pc) : ""; }
KILN_API int kiln_plugin_input_count(const kiln_plugin_context *pc) { return pc ? pc->node->n_inputs : 0; }
KILN_API int kiln_plugin_output_count(const kiln_plugin_context *pc) { return pc ? pc->node->n_outputs : 0; }

static kiln_status ops_plugin_bad_index(const kiln_plugin_context *pc, const char *what, int i, int n)
{
    return core_error(KILN_ERR_INVALID_ARGUMENT, "node '%s' (%s): %s index %d out of range (the node has %d)",
                      ops_plugin_node_label(pc), pc->p->label, what, i, n);
}

static void ops_plugin_view(const core_tensor *t, kiln_tensor_view *out)
{
    memset(out, 0, sizeof *out);
    out->dtype = t->dtype;
    out->ndim = t->ndim;
    memcpy(out->dims, t->dims, sizeof(int64_t) * (size_t)t->ndim);
    out->data = t->data;
    out->nbytes = t->nbytes;
}

KILN_API kiln_status kiln_plugin_input_info(const kiln_plugin_context *pc, int i, kiln_tensor_info *out)
{
    if (!pc || !out) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_plugin_input_info: NULL argument");
    if (i < 0 || i >= pc->node->n_inputs) return ops_plugin_bad_index(pc, "input", i, pc->node->n_inputs);
    memset(out, 0, sizeof *out);
    int id = pc->node->inputs[i];
    if (id < 0) return core_error(KILN_ERR_NOT_FOUND, "node '%s' (%s): input %d is omitted", ops_plugin_node_label(pc), pc->p->label, i);
    if (pc->ops) {
        const core_tensor *t = ops_input(pc->ops, i);
        if (!t) return core_error(KILN_ERR_NOT_FOUND, "node '%s' (%s): input %d is not a tensor", ops_plugin_node_label(pc), pc->p->label, i);
        out->dtype = t->dtype;
        out->ndim = t->ndim;
        memcpy(out->dims, t->dims, sizeof(int64_t) * (size_t)t->ndim);
        return KILN_OK;
    }
    const ir_value *v = &pc->g->values[id];
    out->name = v->name;
    if (v->constant && v->constant->kind == CORE_VALUE_TENSOR) {
        const core_tensor *t = v->constant->tensor;
        out->dtype = t->dtype;
        out->ndim = t->ndim;
        memcpy(out->dims, t->dims, sizeof(int64_t) * (size_t)t->ndim);
        return KILN_OK;
    }
    const ir_type *t = &v->type;
    out->dtype = t->kind == IR_TYPE_TENSOR ? t->dtype : KILN_DTYPE_UNDEFINED;
    out->ndim = t->kind == IR_TYPE_TENSOR && (t->dims || t->ndim == 0) && t->ndim <= KILN_MAX_DIMS ? t->ndim : -1;
    for (int k = 0; k < out->ndim; k++) {
        out->dims[k] = t->dims[k].value;
        out->dim_names[k] = t->dims[k].symbol;
    }
    return KILN_OK;
}

KILN_API kiln_status kiln_plugin_input(const kiln_plugin_context *pc, int i, kiln_tensor_view *out)
{
    if (!pc || !out) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_plugin_input: NULL argument");
    if (i < 0 || i >= pc->node->n_inputs) return ops_plugin_bad_index(pc, "input", i, pc->node->n_inputs);
    const core_tensor *t = NULL;
    if (pc->ops) t = ops_input(pc->ops, i);
    else if (pc->node->inputs[i] >= 0) {
        const core_value *v = pc->g->values[pc->node->inputs[i]].constant;
        t = v && v->kind == CORE_VALUE_TENSOR ? v->tensor : NULL;
    }
    if (!t)
        return core_error(KILN_ERR_NOT_FOUND, "node '%s' (%s): input %d is %s", ops_plugin_node_label(pc), pc->p->label, i,
                          pc->node->inputs[i] < 0 ? "omitted" : pc->ops ? "not a tensor" : "not a constant (no data before run)");
    ops_plugin_view(t, out);
    return KILN_OK;
}

KILN_API kiln_status kiln_plugin_output(kiln_plugin_context *pc, int i, kiln_dtype dtype, int ndim, const int64_t *dims,
                                        void **data)
{
    if (data) *data = NULL;
    if (!pc || !data || (ndim > 0 && !dims)) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_plugin_output: NULL argument");
    if (!pc->ops)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "node '%s' (%s): kiln_plugin_output is for run; infer uses kiln_plugin_set_output_info",
                          ops_plugin_node_label(pc), pc->p->label);
    if (i < 0 || i >= pc->node->n_outputs) return ops_plugin_bad_index(pc, "output", i, pc->node->n_outputs);
    if (ndim < 0 || ndim > KILN_MAX_DIMS)
        return core_error(KILN_ERR_SHAPE, "node '%s' (%s): output %d: rank %d is invalid", ops_plugin_node_label(pc), pc->p->label, i, ndim);
    if (dtype == KILN_DTYPE_STRING || core_dtype_size(dtype) == 0)
        return core_error(KILN_ERR_DTYPE, "node '%s' (%s): output %d: dtype %d cannot be allocated by a plugin",
                          ops_plugin_node_label(pc), pc->p->label, i, (int)dtype);
    for (int k = 0; k < ndim; k++)
        if (dims[k] < 0)
            return core_error(KILN_ERR_SHAPE, "node '%s' (%s): output %d: dim %d is %lld", ops_plugin_node_label(pc),
                              pc->p->label, i, k, (long long)dims[k]);
    core_tensor *t = ops_output(pc->ops, i, dtype, ndim, dims);
    if (!t) return KILN_ERR_OUT_OF_MEMORY; /* ops_output named the node and the size */
    if (i < 64) pc->produced |= (uint64_t)1 << i;
    *data = t->numel > 0 ? t->data : NULL;
    return KILN_OK;
}

KILN_API kiln_status kiln_plugin_set_output_info(kiln_plugin_context *pc, int i, kiln_dtype dtype, int ndim,
                                                 const int64_t *dims)
{
    if (!pc || (ndim > 0 && !dims)) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_plugin_set_output_info: NULL argument");
    if (pc->ops) return KILN_OK; /* types are fixed once the model is loaded */
    if (i < 0 || i >= pc->node->n_outputs) return ops_plugin_bad_index(pc, "output", i, pc->node->n_outputs);
    if (ndim < -1 || ndim > KILN_MAX_DIMS || (int)dtype < 0 || dtype >= KILN_DTYPE_COUNT_)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "node '%s' (%s): output %d: rank %d / dtype %d is invalid",
                          ops_plugin_node_label(pc), pc->p->label, i, ndim, (int)dtype);
    for (int k = 0; k < ndim; k++)
        if (dims[k] < -1)
            return core_error(KILN_ERR_SHAPE, "node '%s' (%s): output %d: dim %d is %lld", ops_plugin_node_label(pc),
                              pc->p->label, i, k, (long long)dims[k]);
    int id = pc->node->outputs[i];
    if (id < 0) return KILN_OK;
    ir_type *t = &pc->g->values[id].type;
    if (t->kind == IR_TYPE_TENSOR && t->ndim >= 0 && t->dtype != KILN_DTYPE_UNDEFINED) return KILN_OK; /* declared */
    ir_dim *nd = NULL;
    if (ndim > 0 && !(nd = calloc((size_t)ndim, sizeof *nd))) return core_oom();
    for (int k = 0; k < ndim; k++) nd[k].value = dims[k];
    ir_type_free(t);
    t->kind = IR_TYPE_TENSOR;
    t->dtype = dtype;
    t->ndim = ndim;
    t->dims = nd;
    return KILN_OK;
}

static kiln_status ops_plugin_attr(const kiln_plugin_context *pc, const char *name, ir_attr_type want, const char *what,
                                   const ir_attr **out)
{
    if (!pc || !name) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_plugin_attr: NULL argument");
    const ir_attr *a = ir_node_attr(pc->node, name);
    if (!a) return core_error(KILN_ERR_NOT_FOUND, "node '%s' (%s): no attribute '%s'", ops_plugin_node_label(pc), pc->p->label, name);
    if (a->type != want)
        return core_error(KILN_ERR_INVALID_MODEL, "node '%s' (%s): attribute '%s' is not %s (type %d)", ops_plugin_node_label(pc),
                          pc->p->label, name, what, (int)a->type);
    *out = a;
    return KILN_OK;
}

KILN_API kiln_status kiln_plugin_attr_int(const kiln_plugin_context *pc, const char *name, int64_t *out)
{
    const ir_attr *a = NULL;
    kiln_status st = ops_plugin_attr(pc, name, IR_ATTR_INT, "an int", &a);
    if (!st && out) *out = a->i;
    return st;
}

KILN_API kiln_status kiln_plugin_attr_float(const kiln_plugin_context *pc, const char *name, float *out)
{
    const ir_attr *a = NULL;
    kiln_status st = ops_plugin_attr(pc, name, IR_ATTR_FLOAT, "a float", &a);
    if (!st && out) *out = a->f;
    return st;
}

KILN_API kiln_status kiln_plugin_attr_string(const kiln_plugin_context *pc, const char *name, const char **out)
{
    const ir_attr *a = NULL;
    kiln_status st = ops_plugin_attr(pc, name, IR_ATTR_STRING, "a string", &a);
    if (!st && out) *out = a->s ? a->s : "";
    return st;
}

KILN_API kiln_status kiln_plugin_attr_ints(const kiln_plugin_context *pc, const char *name, const int64_t **out, int64_t *n)
{
    const ir_attr *a = NULL;
    kiln_status st = ops_plugin_attr(pc, name, IR_ATTR_INTS, "a list of ints", &a);
    if (!st) {
        if (out) *out = a->ints;
        if (n) *n = a->n;
    }
    return st;
}

KILN_API kiln_status kiln_plugin_attr_floats(const kiln_plugin_context *pc, const char *name, const float **out, int64_t *n)
{
    const ir_attr *a = NULL;
    kiln_status st = ops_plugin_attr(pc, name, IR_ATTR_FLOATS, "a list of floats", &a);
    if (!st) {
        if (out) *out = a->floats;
        if (n) *n = a->n;
    }
    return st;
}

KILN_API void *kiln_plugin_scratch(kiln_plugin_context *pc, size_t bytes)
{
    if (!pc || !pc->ops) { core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_plugin_scratch: only during run"); return NULL; }
    return ops_scratch(pc->ops, bytes ? bytes : 1);
}

/* ---- shape inference ----------------------------------------------------------------------- */

kiln_status ops_plugin_infer_node(ir_graph *g, const ir_node *nd)
{
    const ops_plugin *p = ops_plugin_lookup(nd->domain, nd->op_type);
    if (!p || !p->desc.infer) return KILN_OK;
    kiln_plugin_context pc = {NULL, g, nd, p, false, 0};
    kiln_status st = p->desc.infer(&pc, p->desc.user);
    if (st == KILN_OK) return KILN_OK;
    st = ops_plugin_status(st);
    if (!pc.error_set)
        return core_error(st, "node '%s' (%s): plugin shape inference failed (%s)", ops_plugin_node_label(&pc), p->label,
                          kiln_status_string(st));
    return core_error_prefix(st, "shape inference: ");
}

kiln_status ops_plugin_infer_graph(ir_graph *g)
{
    if (!g || !ops_plugin_any()) return KILN_OK;
    bool any = false;
    for (int i = 0; i < g->n_nodes && !any; i++) {
        const ops_plugin *p = ops_plugin_lookup(g->nodes[i].domain, g->nodes[i].op_type);
        any = p && p->desc.infer;
    }
    if (!any) return KILN_OK;
    ir_graph_infer(g);
    for (int i = 0; i < g->n_nodes; i++) {
        const ops_plugin *p = ops_plugin_lookup(g->nodes[i].domain, g->nodes[i].op_type);
        if (!p || !p->desc.infer) continue;
        kiln_status st = ops_plugin_infer_node(g, &g->nodes[i]);
        if (st) return st;
        ir_graph_infer(g); /* nodes after this one see its outputs' types */
    }
    return KILN_OK;
}
