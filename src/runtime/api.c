/* api.c — the public kiln.h API over the loader, optimizer and executor. */
#include "onnx/onnx.h"
#include "opt/opt.h"
#include "runtime/runtime.h"
#include "runtime/api_internal.h"
#include "ops/plugin.h"
#include "core/threadpool.h"
#include "plan/plan.h"
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct kiln_model {
    ir_model *m;
    int num_threads;
    int n_inputs;   /* graph inputs without an initializer: what the user binds */
    int *input_ids;
    plan_info *plan;              /* loaded from a plan: profiles, memory plan; else NULL */
    const plan_profile *reserve;  /* the profile whose arena contexts reserve (largest), or NULL */
};

struct kiln_context {
    const kiln_model *model;
    core_value **bound;    /* per graph input (g->inputs order); NULL = use initializer */
    core_value **outputs;  /* per graph output, from the last run */
    rt_state *state;       /* thread pool (exactly model->num_threads threads), scratch, arena */
};

static kiln_status api_model_wrap(ir_model *m, plan_info *plan, const kiln_load_options *opts, kiln_model **out);

static kiln_status api_model_finish(ir_model *m, const kiln_load_options *opts, kiln_model **out)
{
    kiln_status st = ops_plugin_infer_graph(m->graph); /* no-op unless plugin ops are present */
    if (!st) st = opt_prepare_model_ex(m, !(opts && opts->no_optimize));
    if (st) { ir_model_destroy(m); return st; }
    return api_model_wrap(m, NULL, opts, out);
}

/* Wraps a prepared model (kernels resolved); takes m and plan, also on failure. */
static kiln_status api_model_wrap(ir_model *m, plan_info *plan, const kiln_load_options *opts, kiln_model **out)
{
    kiln_model *km = calloc(1, sizeof *km);
    ir_graph *g = m->graph;
    if (!km || !(km->input_ids = malloc(sizeof(int) * ((size_t)g->n_inputs + 1)))) {
        free(km);
        ir_model_destroy(m);
        plan_info_destroy(plan);
        return core_oom();
    }
    km->m = m;
    km->plan = plan;
    km->num_threads = opts && opts->num_threads > 0 ? opts->num_threads : core_physical_cores();
    for (int k = 0; k < g->n_inputs; k++)
        if (!g->values[g->inputs[k]].constant) km->input_ids[km->n_inputs++] = g->inputs[k];
    for (int p = 0; plan && p < plan->n_profiles; p++)
        if (plan->profiles[p].arena_bytes && (!km->reserve || plan->profiles[p].arena_bytes > km->reserve->arena_bytes))
            km->reserve = &plan->profiles[p];
    *out = km;
    return KILN_OK;
}

/* Whether the file starts with the plan magic (then it is loaded as a plan). */
static bool api_file_is_plan(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    char head[8];
    bool is = read(fd, head, sizeof head) == (ssize_t)sizeof head && plan_is_plan(head, sizeof head);
    close(fd);
    return is;
}

kiln_status api_model_from_ir(ir_model *m, const kiln_load_options *opts, kiln_model **out)
{
    if (!m || !out) {
        ir_model_destroy(m);
        return core_error(KILN_ERR_INVALID_ARGUMENT, "api_model_from_ir: NULL argument");
    }
    *out = NULL;
    return api_model_finish(m, opts, out);
}

KILN_API kiln_status kiln_model_load_file(const char *path, const kiln_load_options *opts,
                                          kiln_model **out)
{
    if (!path || !out) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_model_load_file: NULL argument");
    *out = NULL;
    ir_model *m = NULL;
    if (api_file_is_plan(path)) {
        plan_info *info = NULL;
        kiln_status st = plan_load_file(path, plan_verify_default(), &m, &info);
        if (st) return st;
        return api_model_wrap(m, info, opts, out);
    }
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
    if (plan_is_plan(data, size)) {
        /* the model keeps an aligned copy: its tensors borrow from it */
        void *copy = aligned_alloc(PLAN_DATA_ALIGN, (size + PLAN_DATA_ALIGN - 1) & ~(size_t)(PLAN_DATA_ALIGN - 1));
        if (!copy) return core_oom();
        memcpy(copy, data, size);
        plan_info *info = NULL;
        kiln_status st = plan_load(copy, size, false, true, plan_verify_default(), &m, &info);
        if (st) { free(copy); return st; }
        return api_model_wrap(m, info, opts, out);
    }
    kiln_status st = onnx_model_load_memory(data, size, base_dir, &m);
    if (st) return st;
    return api_model_finish(m, opts, out);
}

KILN_API void kiln_model_destroy(kiln_model *model)
{
    if (!model) return;
    ir_model_destroy(model->m);
    plan_info_destroy(model->plan);
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
    if (model->reserve) {
        const plan_profile *p = model->reserve;
        kiln_status st = rt_state_reserve_memory(c->state, p->slots, p->n_slots, (size_t)p->arena_bytes);
        if (st) {
            kiln_context_destroy(c);
            return core_error_prefix(st, "context: ");
        }
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

/* A plan admits an input shape that lies within [min, max] of a profile that constrains the
 * input; the message names the first range it falls outside. */
static kiln_status api_check_profile(const kiln_model *km, const char *name, int ndim, const int64_t *dims)
{
    const plan_info *pi = km->plan;
    int bad_p = -1, bad_d = -1;
    const plan_input_range *bad = NULL;
    bool constrained = false;
    for (int p = 0; p < pi->n_profiles; p++) {
        const plan_input_range *r = NULL;
        for (int k = 0; k < pi->profiles[p].n_inputs; k++)
            if (!strcmp(pi->profiles[p].inputs[k].name, name)) r = &pi->profiles[p].inputs[k];
        if (!r) continue;
        constrained = true;
        if (r->ndim != ndim) {
            if (!bad) { bad = r; bad_p = p; bad_d = -1; }
            continue;
        }
        int d = 0;
        while (d < ndim && dims[d] >= r->min[d] && dims[d] <= r->max[d]) d++;
        if (d == ndim) return KILN_OK;
        if (!bad) { bad = r; bad_p = p; bad_d = d; }
    }
    if (!constrained) return KILN_OK;
    if (bad_d < 0)
        return core_error(KILN_ERR_SHAPE, "input '%s': %d dims given, the plan's profile %d has %d", name, ndim, bad_p, bad->ndim);
    return core_error(KILN_ERR_SHAPE, "input '%s': dim %d is %lld, outside the plan's range [%lld, %lld] (profile %d): "
                      "rebuild the plan with a wider --min-shapes/--max-shapes", name, bad_d, (long long)dims[bad_d],
                      (long long)bad->min[bad_d], (long long)bad->max[bad_d], bad_p);
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
    if (c->model->plan) {
        kiln_status st = api_check_profile(c->model, name, ndim, dims);
        if (st) return st;
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

/* ---- plans -------------------------------------------------------------------------------- */

KILN_API int kiln_model_is_plan(const kiln_model *model) { return model && model->plan ? 1 : 0; }

KILN_API int kiln_model_profile_count(const kiln_model *model)
{
    return model && model->plan ? model->plan->n_profiles : 0;
}

KILN_API kiln_status kiln_model_profile_shapes(const kiln_model *model, int profile, int input_index, int *ndim,
                                               int64_t *min, int64_t *opt, int64_t *max)
{
    if (!model || !ndim || !min || !opt || !max)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_model_profile_shapes: NULL argument");
    if (!model->plan || profile < 0 || profile >= model->plan->n_profiles)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "profile %d out of range (the model has %d)", profile,
                          model->plan ? model->plan->n_profiles : 0);
    if (input_index < 0 || input_index >= model->n_inputs)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "input index %d out of range", input_index);
    const char *name = model->m->graph->values[model->input_ids[input_index]].name;
    const plan_profile *p = &model->plan->profiles[profile];
    for (int k = 0; k < p->n_inputs; k++) {
        const plan_input_range *r = &p->inputs[k];
        if (strcmp(r->name, name)) continue;
        *ndim = r->ndim;
        for (int d = 0; d < r->ndim; d++) {
            min[d] = r->min[d];
            opt[d] = r->opt[d];
            max[d] = r->max[d];
        }
        return KILN_OK;
    }
    return core_error(KILN_ERR_NOT_FOUND, "profile %d does not constrain input '%s'", profile, name);
}
