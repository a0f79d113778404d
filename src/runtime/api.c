/* api.c — the public kiln.h API over the loader, optimizer and executor. */
#include "onnx/onnx.h"
#include "opt/opt.h"
#include "runtime/runtime.h"
#include "core/threadpool.h"
#include <stdlib.h>
#include <string.h>

struct kiln_model {
    ir_model *m;
    int num_threads;
    int n_inputs;   /* graph inputs without an initializer: what the user binds */
    int *input_ids;
};

struct kiln_context {
    const kiln_model *model;
    core_value **bound;    /* per graph input (g->inputs order); NULL = use initializer */
    core_value **outputs;  /* per graph output, from the last run */
    rt_state *state;       /* thread pool (exactly model->num_threads threads), scratch, arena */
};

static kiln_status api_model_finish(ir_model *m, const kiln_load_options *opts, kiln_model **out)
{
    kiln_status st = opt_prepare_model_ex(m, !(opts && opts->no_optimize));
    if (st) { ir_model_destroy(m); return st; }
    kiln_model *km = calloc(1, sizeof *km);
    ir_graph *g = m->graph;
    if (!km || !(km->input_ids = malloc(sizeof(int) * ((size_t)g->n_inputs + 1)))) {
        free(km);
        ir_model_destroy(m);
        return core_oom();
    }
    km->m = m;
    km->num_threads = opts && opts->num_threads > 0 ? opts->num_threads : core_physical_cores();
    for (int k = 0; k < g->n_inputs; k++)
        if (!g->values[g->inputs[k]].constant) km->input_ids[km->n_inputs++] = g->inputs[k];
    *out = km;
    return KILN_OK;
}

KILN_API kiln_status kiln_model_load_file(const char *path, const kiln_load_options *opts,
                                          kiln_model **out)
{
    if (!path || !out) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_model_load_file: NULL argument");
    *out = NULL;
    ir_model *m = NULL;
    kiln_status st = onnx_model_load_file(path, &m);
    if (st) return st;
    return api_model_finish(m, opts, out);
}

KILN_API kiln_status kiln_model_load_memory(const void *data, size_t size, const char *base_dir,
                                            const kiln_load_options *opts, kiln_model **out)
{
    if (!data || !out) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_model_load_memory: NULL argument");
    *out = NULL;
    ir_model *m = NULL;
    kiln_status st = onnx_model_load_memory(data, size, base_dir, &m);
    if (st) return st;
    return api_model_finish(m, opts, out);
}

KILN_API void kiln_model_destroy(kiln_model *model)
{
    if (!model) return;
    ir_model_destroy(model->m);
    free(model->input_ids);
    free(model);
}

KILN_API int kiln_model_input_count(const kiln_model *model) { return model ? model->n_inputs : 0; }
KILN_API int kiln_model_output_count(const kiln_model *model) { return model ? model->m->graph->n_outputs : 0; }

static void api_fill_info(const ir_value *v, kiln_tensor_info *out)
{
    memset(out, 0, sizeof *out);
    out->name = v->name;
    const ir_type *t = &v->type;
    while (t->kind == IR_TYPE_OPTIONAL && t->elem) t = t->elem;
    out->dtype = t->kind == IR_TYPE_TENSOR ? t->dtype : KILN_DTYPE_UNDEFINED;
    out->ndim = t->kind == IR_TYPE_TENSOR && t->dims ? t->ndim : -1;
    if (out->ndim > KILN_MAX_DIMS) out->ndim = -1;
    for (int i = 0; i < out->ndim; i++) {
        out->dims[i] = t->dims[i].value;
        out->dim_names[i] = t->dims[i].symbol;
    }
}

KILN_API kiln_status kiln_model_input_info(const kiln_model *model, int index, kiln_tensor_info *out)
{
    if (!model || !out || index < 0 || index >= model->n_inputs)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "input index %d out of range", index);
    api_fill_info(&model->m->graph->values[model->input_ids[index]], out);
    return KILN_OK;
}

KILN_API kiln_status kiln_model_output_info(const kiln_model *model, int index, kiln_tensor_info *out)
{
    if (!model || !out || index < 0 || index >= model->m->graph->n_outputs)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "output index %d out of range", index);
    api_fill_info(&model->m->graph->values[model->m->graph->outputs[index]], out);
    return KILN_OK;
}

KILN_API kiln_status kiln_context_create(const kiln_model *model, kiln_context **out)
{
    if (!model || !out) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_context_create: NULL argument");
    const ir_graph *g = model->m->graph;
    kiln_context *c = calloc(1, sizeof *c);
    if (!c) return core_oom();
    c->model = model;
    c->bound = calloc((size_t)g->n_inputs + 1, sizeof *c->bound);
    c->outputs = calloc((size_t)g->n_outputs + 1, sizeof *c->outputs);
    if (!c->bound || !c->outputs) { kiln_context_destroy(c); return core_oom(); }
    if (!(c->state = rt_state_create(g, model->num_threads, true))) {
        kiln_context_destroy(c);
        return core_error_prefix(KILN_ERR_RUNTIME, "context: ");
    }
    *out = c;
    return KILN_OK;
}

static void api_release_outputs(kiln_context *c)
{
    const ir_graph *g = c->model->m->graph;
    for (int k = 0; k < g->n_outputs; k++) { core_value_release(c->outputs[k]); c->outputs[k] = NULL; }
}

KILN_API void kiln_context_destroy(kiln_context *c)
{
    if (!c) return;
    const ir_graph *g = c->model->m->graph;
    if (c->bound) for (int k = 0; k < g->n_inputs; k++) core_value_release(c->bound[k]);
    if (c->outputs) api_release_outputs(c);
    rt_state_destroy(c->state);
    free(c->bound);
    free(c->outputs);
    free(c);
}

KILN_API kiln_status kiln_context_set_input(kiln_context *c, const char *name, kiln_dtype dtype,
                                            int ndim, const int64_t *dims, const void *data,
                                            size_t nbytes)
{
    if (!c || !name) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_context_set_input: NULL argument");
    const ir_graph *g = c->model->m->graph;
    int slot = -1;
    for (int k = 0; k < g->n_inputs; k++)
        if (!strcmp(g->values[g->inputs[k]].name, name)) { slot = k; break; }
    if (slot < 0) return core_error(KILN_ERR_NOT_FOUND, "the model has no input named '%s'", name);
    const ir_value *v = &g->values[g->inputs[slot]];
    const ir_type *t = &v->type;
    if (t->kind != IR_TYPE_TENSOR && t->kind != IR_TYPE_UNKNOWN)
        return core_error(KILN_ERR_UNSUPPORTED, "input '%s' is not a tensor (sequence/optional inputs need the internal API)", name);
    if (t->kind == IR_TYPE_TENSOR && t->dtype != KILN_DTYPE_UNDEFINED && t->dtype != dtype)
        return core_error(KILN_ERR_DTYPE, "input '%s': got %s, the model expects %s", name,
                          core_dtype_name(dtype), core_dtype_name(t->dtype));
    if (ndim < 0 || ndim > KILN_MAX_DIMS || (ndim > 0 && !dims))
        return core_error(KILN_ERR_SHAPE, "input '%s': rank %d is invalid", name, ndim);
    if (t->kind == IR_TYPE_TENSOR && t->ndim >= 0 && t->dims) {
        char b1[200], b2[200];
        int64_t want[KILN_MAX_DIMS];
        for (int i = 0; i < t->ndim && i < KILN_MAX_DIMS; i++) want[i] = t->dims[i].value;
        bool ok = t->ndim == ndim;
        for (int i = 0; ok && i < ndim; i++)
            if (want[i] >= 0 && want[i] != dims[i]) ok = false;
        if (!ok)
            return core_error(KILN_ERR_SHAPE, "input '%s': got shape %s, the model expects %s (-1 = any)", name,
                              core_shape_str(ndim, dims, b1, sizeof b1),
                              core_shape_str(t->ndim < KILN_MAX_DIMS ? t->ndim : KILN_MAX_DIMS, want, b2, sizeof b2));
    }
    core_tensor *tensor = core_tensor_wrap(dtype, ndim, dims, (void *)data);
    if (!tensor) return core_error_prefix(KILN_ERR_SHAPE, "input '%s': ", name);
    if (tensor->nbytes != nbytes) {
        size_t want = tensor->nbytes;
        core_tensor_destroy(tensor);
        return core_error(KILN_ERR_SHAPE, "input '%s': %zu bytes given, the shape needs %zu", name, nbytes, want);
    }
    if (tensor->numel > 0 && !data) {
        core_tensor_destroy(tensor);
        return core_error(KILN_ERR_INVALID_ARGUMENT, "input '%s': data is NULL", name);
    }
    core_value *val = core_value_from_tensor(tensor);
    if (!val) return core_oom();
    core_value_release(c->bound[slot]);
    c->bound[slot] = val;
    return KILN_OK;
}

KILN_API kiln_status kiln_context_run(kiln_context *c)
{
    if (!c) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_context_run: NULL context");
    const ir_graph *g = c->model->m->graph;
    api_release_outputs(c);
    for (int k = 0; k < g->n_inputs; k++)
        if (!c->bound[k] && !g->values[g->inputs[k]].constant)
            return core_error(KILN_ERR_INVALID_ARGUMENT, "input '%s' is not bound", g->values[g->inputs[k]].name);
    return rt_state_run(c->state, c->bound, c->outputs);
}

KILN_API kiln_status kiln_context_get_output(kiln_context *c, const char *name, kiln_tensor_view *out)
{
    if (!c || !name || !out) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_context_get_output: NULL argument");
    const ir_graph *g = c->model->m->graph;
    for (int k = 0; k < g->n_outputs; k++) {
        if (strcmp(g->values[g->outputs[k]].name, name)) continue;
        core_value *v = c->outputs[k];
        if (!v) return core_error(KILN_ERR_INVALID_ARGUMENT, "output '%s': the context has not run", name);
        if (v->kind != CORE_VALUE_TENSOR)
            return core_error(KILN_ERR_UNSUPPORTED, "output '%s' is a %s, not a tensor", name,
                              v->kind == CORE_VALUE_SEQUENCE ? "sequence" : "empty optional");
        const core_tensor *t = v->tensor;
        memset(out, 0, sizeof *out);
        out->dtype = t->dtype;
        out->ndim = t->ndim;
        memcpy(out->dims, t->dims, sizeof(int64_t) * (size_t)t->ndim);
        out->data = t->data;
        out->nbytes = t->nbytes;
        return KILN_OK;
    }
    return core_error(KILN_ERR_NOT_FOUND, "the model has no output named '%s'", name);
}

KILN_API kiln_status kiln_context_set_profiling(kiln_context *c, int enable)
{
    if (!c) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_context_set_profiling: NULL context");
    return rt_state_set_profiling(c->state, enable != 0);
}

KILN_API int kiln_context_layer_count(const kiln_context *c) { return c ? c->model->m->graph->n_nodes : 0; }

KILN_API kiln_status kiln_context_layer_time(const kiln_context *c, int index, kiln_layer_time *out)
{
    if (!c || !out || index < 0 || index >= c->model->m->graph->n_nodes)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "layer index %d out of range", index);
    const ir_node *nd = &c->model->m->graph->nodes[index];
    out->name = nd->name ? nd->name : "";
    out->op_type = nd->op_type;
    if (!rt_state_profile(c->state, index, &out->total_ms, &out->count))
        return core_error(KILN_ERR_INVALID_ARGUMENT, "profiling is not enabled on this context");
    return KILN_OK;
}

KILN_API size_t kiln_context_activation_bytes(const kiln_context *c) { return c ? rt_state_arena_bytes(c->state) : 0; }
