/* exec.c — the reference executor: runs an IR graph node by node, keeping each value
 * alive until its last consumer, and implements the ops_ctx accessors kernels use. */
#include "runtime/runtime.h"
#include "core/threadpool.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One planned activation buffer: output `out` of top-level node `node`, alive over nodes
 * [first, last], at arena + offset. */
typedef struct rt_slot {
    int node, out;
    size_t size, offset;
    int first, last;
    const void *data; /* recording run: where the buffer was, to find aliases */
    size_t bytes;     /* exact size (size is rounded up to 64) */
    int parent;       /* >= 0: lives inside slot `parent` at byte `delta` (elided Concat) */
    size_t delta;
    bool aliased;     /* another value shares this buffer: never nest it in a Concat */
    bool nests;       /* holds nested slots: its contents are already written, never zero it */
} rt_slot;

/* Everything one context keeps between runs: random state, thread pool, kernel scratch
 * and the activation memory plan of the top-level graph. */
struct rt_state {
    const ir_graph *g;
    core_threadpool *pool;
    uint64_t rng;
    void *scratch;
    size_t scratch_size;
    int mode;            /* RT_PLAN_* */
    bool mismatch;       /* a planned run met an allocation the plan does not cover */
    rt_slot *slots;
    int n_slots, cap_slots;
    int *slot_of;        /* out_base[node] + k -> slot, or -1 */
    int *out_base;
    void *arena;
    size_t arena_size, arena_cap;
    int64_t *sig;        /* input shapes the plan was made for */
    int n_sig;
    double *prof_ms;     /* per top-level node: accumulated kernel time, when profiling */
    int64_t *prof_count;
    struct rt_live { const ir_graph *g; int *last; } *live; /* liveness per graph, computed once */
    int n_live;
    rt_mem_slot *fixed;  /* plan reserved by rt_state_reserve_memory (largest shapes), or NULL */
    int n_fixed;
    int *fixed_of;       /* out_base[node] + k -> fixed slot, or -1 */
    bool capped;         /* the arena was reserved: it is never grown */
    bool unplannable;    /* the current input shapes got no plan that fits the capped arena */
    rt_node_observer observe;
    void *observe_arg;
};

enum { RT_PLAN_DISABLED = -1, RT_PLAN_NONE = 0, RT_PLAN_RECORDING = 1, RT_PLAN_ACTIVE = 2 };

typedef struct rt_frame {
    const ir_graph *g;
    core_value **vals;           /* one slot per value id; owned references */
    const struct rt_frame *parent;
    rt_state *state;             /* shared by the top frame and its subgraph frames */
} rt_frame;

struct ops_ctx {
    const rt_frame *frame;
    const ir_node *node;
    int node_index;
    core_value **in;   /* n_inputs borrowed pointers (NULL when omitted) */
    core_value **out;  /* n_outputs owned references set by the kernel */
};

/* ---- ops_ctx accessors ---------------------------------------------------------------- */

const ir_node *ops_node(const ops_ctx *c) { return c->node; }

core_threadpool *ops_threadpool(const ops_ctx *c) { return c->frame->state->pool; }

void *ops_scratch(ops_ctx *c, size_t bytes)
{
    rt_state *s = c->frame->state;
    if (bytes > s->scratch_size) {
        size_t want = (bytes + 4095) & ~(size_t)4095;
        void *p = aligned_alloc(64, want);
        if (!p) { ops_error(c, KILN_ERR_OUT_OF_MEMORY, "cannot allocate %zu bytes of scratch", bytes); return NULL; }
        free(s->scratch);
        s->scratch = p;
        s->scratch_size = want;
    }
    return s->scratch;
}

kiln_status ops_run_reference(ops_ctx *c)
{
    int64_t opset = ops_opset(c);
    const ops_schema *s = ops_find_reference(c->node->domain, c->node->op_type, opset);
    if (!s) return ops_error(c, KILN_ERR_UNSUPPORTED, "no reference kernel");
    /* Outputs the fast kernel already made (possibly uninitialized, ops_output_uninit) are
     * dropped: the reference allocates its own, zeroed as it expects. */
    for (int k = 0; k < c->node->n_outputs; k++) { core_value_release(c->out[k]); c->out[k] = NULL; }
    return s->run(c);
}

int ops_opset(const ops_ctx *c)
{
    if (c->node->opset > 0) return c->node->opset;
    return (int)ir_graph_opset(c->frame->g, c->node->domain);
}

int ops_n_inputs(const ops_ctx *c) { return c->node->n_inputs; }
int ops_n_outputs(const ops_ctx *c) { return c->node->n_outputs; }

bool ops_has_input(const ops_ctx *c, int i)
{
    return i >= 0 && i < c->node->n_inputs && c->in[i] != NULL;
}

bool ops_has_output(const ops_ctx *c, int i)
{
    return i >= 0 && i < c->node->n_outputs && c->node->outputs[i] >= 0;
}

core_value *ops_input_value(const ops_ctx *c, int i)
{
    return i >= 0 && i < c->node->n_inputs ? c->in[i] : NULL;
}

core_tensor *ops_input(const ops_ctx *c, int i)
{
    core_value *v = ops_input_value(c, i);
    return v && v->kind == CORE_VALUE_TENSOR ? v->tensor : NULL;
}

/* Whether node input i dies with this node and nobody else holds it, so a kernel may hand its
 * buffer to an output instead of copying it (zero-copy Reshape / Flatten / Squeeze /
 * Unsqueeze, see ops/shape.c): a top-level node (liveness is known), the node is the value's
 * last reader, the frame's reference is the only one (no caller, graph or sequence keeps it),
 * and the node does not read the value through another input. The memory plan sees the
 * output as an alias of the input's buffer (rt_plan_note_outputs extends its lifetime). */
bool ops_input_donatable(const ops_ctx *c, int i)
{
    if (i < 0 || i >= c->node->n_inputs || c->node_index < 0 || c->frame->parent) return false;
    const core_value *v = c->in[i];
    int vid = c->node->inputs[i];
    if (!v || vid < 0 || v->kind != CORE_VALUE_TENSOR || __atomic_load_n(&v->refcount, __ATOMIC_ACQUIRE) != 1)
        return false;
    const rt_state *s = c->frame->state;
    const int *last = NULL;
    for (int k = 0; k < s->n_live; k++)
        if (s->live[k].g == c->frame->g) last = s->live[k].last;
    if (!last || last[vid] != c->node_index) return false;
    for (int k = 0; k < c->node->n_inputs; k++)
        if (k != i && c->in[k] == v) return false;
    return true;
}

kiln_status ops_output_donated(ops_ctx *c, int o, int i, int ndim, const int64_t *dims, core_tensor **out)
{
    *out = NULL;
    core_tensor *x = ops_input(c, i);
    if (!x || x->dtype == KILN_DTYPE_STRING || x->quant || x->mapped || x->device != CORE_DEVICE_CPU ||
        core_shape_numel(ndim, dims) != x->numel || !ops_input_donatable(c, i))
        return KILN_OK;
    core_tensor *t = core_tensor_wrap(x->dtype, ndim, dims, x->data);
    core_value *v = t ? core_value_from_tensor(t) : NULL; /* frees t on failure */
    if (!v) return KILN_ERR_OUT_OF_MEMORY;
    /* the buffer changes hands: the input (released right after this node) borrows it until then */
    t->owns_data = x->owns_data;
    x->owns_data = false;
    kiln_status st = ops_set_output(c, o, v);
    if (!st) *out = t;
    return st;
}

/* KILN_POISON_UNINIT=1: ops_output_uninit fills its outputs with 0xFF bytes (a float NaN)
 * instead of leaving them as they are, so a kernel that does not write every element shows
 * up in tests as NaNs rather than as stale data that happens to be right. */
static bool rt_poison_uninit(void)
{
    static int cached = -1; /* benign race: every thread computes the same value */
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *e = getenv("KILN_POISON_UNINIT");
        v = e && *e && strcmp(e, "0") != 0;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v != 0;
}

/* ops_output and ops_output_uninit: an activation from the planned arena when the plan
 * covers it (zeroed unless `zero` is false), else a fresh zeroed tensor. */
static core_tensor *rt_output(ops_ctx *c, int i, kiln_dtype dtype, int ndim, const int64_t *dims, bool zero)
{
    if (i < 0 || i >= c->node->n_outputs) {
        ops_error(c, KILN_ERR_INTERNAL, "kernel wrote output %d of %d", i, c->node->n_outputs);
        return NULL;
    }
    for (int k = 0; k < ndim; k++)
        if (dims[k] < 0) {
            char b[200];
            ops_error(c, KILN_ERR_SHAPE, "output %d would have negative shape %s", i,
                      core_shape_str(ndim, dims, b, sizeof b));
            return NULL;
        }
    rt_state *s = c->frame->state;
    core_tensor *t = NULL;
    bool top = c->frame->parent == NULL && c->node_index >= 0;
    if (top && s->mode == RT_PLAN_ACTIVE && dtype != KILN_DTYPE_STRING) {
        int slot = s->slot_of[s->out_base[c->node_index] + i];
        int64_t n = core_shape_numel(ndim, dims);
        size_t bytes = n >= 0 ? (size_t)n * core_dtype_size(dtype) : 0;
        if (slot >= 0 && n >= 0 && ((bytes + 63) & ~(size_t)63) == s->slots[slot].size) {
            /* Kernels may rely on zeroed outputs, as core_tensor_create gives. A slot that
             * nests an elided Concat's inputs already holds their data. */
            void *p = (char *)s->arena + s->slots[slot].offset;
            if (!s->slots[slot].nests) {
                if (zero) memset(p, 0, bytes);
                else if (rt_poison_uninit()) memset(p, 0xFF, bytes);
            }
            t = core_tensor_wrap(dtype, ndim, dims, p);
        }
        else s->mismatch = true;
    }
    if (!t) {
        t = core_tensor_create(dtype, ndim, dims);
        if (t && !zero && t->nbytes && rt_poison_uninit()) memset(t->data, 0xFF, t->nbytes);
    }
    if (!t) {
        ops_error(c, KILN_ERR_OUT_OF_MEMORY, "cannot allocate output %d: %s", i, core_error_text());
        return NULL;
    }
    if (top && s->mode == RT_PLAN_RECORDING && dtype != KILN_DTYPE_STRING && t->nbytes > 0) {
        /* a kernel that allocated output i and then handed the node to the reference
         * kernel allocates it again: the later buffer replaces the earlier one */
        for (int j = s->n_slots - 1; j >= 0 && s->slots[j].node == c->node_index; j--)
            if (s->slots[j].out == i) {
                s->slots[j] = s->slots[--s->n_slots];
                break;
            }
        if (s->n_slots == s->cap_slots) {
            int cap = s->cap_slots ? s->cap_slots * 2 : 64;
            rt_slot *ns = realloc(s->slots, sizeof *ns * (size_t)cap);
            if (!ns) s->mode = RT_PLAN_DISABLED;
            else { s->slots = ns; s->cap_slots = cap; }
        }
        if (s->mode == RT_PLAN_RECORDING)
            s->slots[s->n_slots++] = (rt_slot){c->node_index, i, t->nbytes, 0, c->node_index, c->node_index, t->data,
                                               t->nbytes, -1, 0, false, false};
    }
    core_value *v = core_value_from_tensor(t);
    if (!v) return NULL;
    core_value_release(c->out[i]);
    c->out[i] = v;
    return t;
}

core_tensor *ops_output(ops_ctx *c, int i, kiln_dtype dtype, int ndim, const int64_t *dims)
{
    return rt_output(c, i, dtype, ndim, dims, true);
}

core_tensor *ops_output_uninit(ops_ctx *c, int i, kiln_dtype dtype, int ndim, const int64_t *dims)
{
    return rt_output(c, i, dtype, ndim, dims, dtype == KILN_DTYPE_STRING);
}

kiln_status ops_set_output(ops_ctx *c, int i, core_value *v)
{
    if (!v) return ops_error(c, KILN_ERR_INTERNAL, "output %d set to NULL", i);
    if (i < 0 || i >= c->node->n_outputs) {
        core_value_release(v);
        return ops_error(c, KILN_ERR_INTERNAL, "kernel wrote output %d of %d", i, c->node->n_outputs);
    }
    core_value_release(c->out[i]);
    c->out[i] = v;
    return KILN_OK;
}

const ir_attr *ops_attr(const ops_ctx *c, const char *name) { return ir_node_attr(c->node, name); }
bool ops_has_attr(const ops_ctx *c, const char *name) { return ops_attr(c, name) != NULL; }

int64_t ops_attr_int(const ops_ctx *c, const char *name, int64_t dflt)
{
    const ir_attr *a = ops_attr(c, name);
    if (!a) return dflt;
    if (a->type == IR_ATTR_FLOAT) return (int64_t)a->f;
    return a->i;
}

float ops_attr_float(const ops_ctx *c, const char *name, float dflt)
{
    const ir_attr *a = ops_attr(c, name);
    if (!a) return dflt;
    if (a->type == IR_ATTR_INT) return (float)a->i;
    return a->f;
}

const char *ops_attr_string(const ops_ctx *c, const char *name, const char *dflt)
{
    const ir_attr *a = ops_attr(c, name);
    return a && a->s ? a->s : dflt;
}

const int64_t *ops_attr_ints(const ops_ctx *c, const char *name, int64_t *n)
{
    const ir_attr *a = ops_attr(c, name);
    if (!a || a->type != IR_ATTR_INTS) { *n = 0; return NULL; }
    *n = a->n;
    return a->ints;
}

const float *ops_attr_floats(const ops_ctx *c, const char *name, int64_t *n)
{
    const ir_attr *a = ops_attr(c, name);
    if (!a || a->type != IR_ATTR_FLOATS) { *n = 0; return NULL; }
    *n = a->n;
    return a->floats;
}

char *const *ops_attr_strings(const ops_ctx *c, const char *name, int64_t *n)
{
    const ir_attr *a = ops_attr(c, name);
    if (!a || a->type != IR_ATTR_STRINGS) { *n = 0; return NULL; }
    *n = a->n;
    return a->strings;
}

const core_tensor *ops_attr_tensor(const ops_ctx *c, const char *name)
{
    const ir_attr *a = ops_attr(c, name);
    return a ? a->t : NULL;
}

const ir_graph *ops_attr_graph(const ops_ctx *c, const char *name)
{
    const ir_attr *a = ops_attr(c, name);
    return a ? a->g : NULL;
}

kiln_status ops_error(const ops_ctx *c, kiln_status s, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const ir_node *n = c->node;
    if (n->name && *n->name) return core_error(s, "node '%s' (%s): %s", n->name, n->op_type, msg);
    return core_error(s, "node (%s) producing '%s': %s", n->op_type,
                      n->n_outputs > 0 && n->outputs[0] >= 0 ? c->frame->g->values[n->outputs[0]].name : "?", msg);
}

double ops_random_uniform(ops_ctx *c)
{
    /* xorshift64*: statistically fine for Random* ops; not a reproduction of numpy. */
    uint64_t *rng = &c->frame->state->rng;
    uint64_t x = *rng;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *rng = x;
    return (double)((x * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- graph execution ------------------------------------------------------------------- */

static core_value *rt_lookup_outer(const rt_frame *f, const char *name)
{
    for (const rt_frame *p = f->parent; p; p = p->parent) {
        int v = ir_graph_find_value(p->g, name);
        if (v >= 0 && p->vals[v]) return p->vals[v];
    }
    return NULL;
}

struct rt_last_use { int *last; int node; };

static void rt_mark_use(int v, void *arg)
{
    struct rt_last_use *u = arg;
    if (u->last[v] < u->node) u->last[v] = u->node;
}

/* Index of the last node that reads each value (graph outputs: n_nodes), computed once per
 * graph and kept in the state: values are freed right after their last consumer. */
static int *rt_liveness(rt_state *s, const ir_graph *g)
{
    for (int i = 0; i < s->n_live; i++)
        if (s->live[i].g == g) return s->live[i].last;
    int *last = malloc(sizeof(int) * ((size_t)g->n_values + 1));
    struct rt_live *nl = realloc(s->live, sizeof *nl * (size_t)(s->n_live + 1));
    if (!last || !nl) { free(last); if (nl) s->live = nl; core_oom(); return NULL; }
    s->live = nl;
    for (int v = 0; v < g->n_values; v++) last[v] = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *nd = &g->nodes[i];
        for (int k = 0; k < nd->n_inputs; k++)
            if (nd->inputs[k] >= 0) last[nd->inputs[k]] = i;
        struct rt_last_use u = {last, i};
        ir_node_outer_refs(g, nd, rt_mark_use, &u);
    }
    for (int k = 0; k < g->n_outputs; k++) last[g->outputs[k]] = g->n_nodes;
    s->live[s->n_live++] = (struct rt_live){g, last};
    return last;
}

static void rt_state_free_live(rt_state *s)
{
    for (int i = 0; i < s->n_live; i++) free(s->live[i].last);
    free(s->live);
    s->live = NULL;
    s->n_live = 0;
}

static void rt_plan_build(rt_state *s, const int *last);
static void rt_plan_note_outputs(rt_state *s, const ir_graph *g, int node, core_value *const *out, const int *last);

static kiln_status rt_frame_run(const ir_graph *g, const rt_frame *parent, rt_state *state,
                                core_value *const *inputs, int n_in, core_value **outputs)
{
    kiln_status st = KILN_OK;
    rt_frame f = {g, NULL, parent, state};
    int *last = NULL;
    core_value **in = NULL, **out = NULL;
    int max_in = 1, max_out = 1;
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].n_inputs > max_in) max_in = g->nodes[i].n_inputs;
        if (g->nodes[i].n_outputs > max_out) max_out = g->nodes[i].n_outputs;
    }
    f.vals = calloc((size_t)g->n_values + 1, sizeof *f.vals);
    last = rt_liveness(state, g);
    in = calloc((size_t)max_in, sizeof *in);
    out = calloc((size_t)max_out, sizeof *out);
    if (!f.vals || !last || !in || !out) { st = core_oom(); goto done; }

    for (int v = 0; v < g->n_values; v++) {
        const ir_value *val = &g->values[v];
        if (val->constant) f.vals[v] = core_value_retain(val->constant);
        else if (val->is_outer) {
            core_value *o = rt_lookup_outer(&f, val->name);
            if (!o) { st = core_error(KILN_ERR_INVALID_MODEL, "outer-scope value '%s' is not available", val->name); goto done; }
            f.vals[v] = core_value_retain(o);
        }
    }
    for (int k = 0; k < g->n_inputs && k < n_in; k++) {
        int v = g->inputs[k];
        if (inputs[k]) {
            core_value_release(f.vals[v]);
            f.vals[v] = core_value_retain(inputs[k]);
        }
    }
    for (int k = 0; k < g->n_inputs; k++)
        if (!f.vals[g->inputs[k]]) {
            st = core_error(KILN_ERR_INVALID_ARGUMENT, "graph input '%s' is not bound", g->values[g->inputs[k]].name);
            goto done;
        }

    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *nd = &g->nodes[i];
        if (!nd->schema) {
            st = core_error(KILN_ERR_UNSUPPORTED, "node '%s': op %s%s%s is not supported",
                            nd->name ? nd->name : "", nd->domain && *nd->domain ? nd->domain : "",
                            nd->domain && *nd->domain ? "." : "", nd->op_type);
            goto done;
        }
        for (int k = 0; k < nd->n_inputs; k++) in[k] = nd->inputs[k] >= 0 ? f.vals[nd->inputs[k]] : NULL;
        for (int k = 0; k < nd->n_outputs; k++) out[k] = NULL;
        ops_ctx c = {&f, nd, parent ? -1 : i, in, out};
        if (!parent && state->prof_ms) {
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            st = nd->schema->run(&c);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            state->prof_ms[i] += (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
            state->prof_count[i]++;
        } else
            st = nd->schema->run(&c);
        if (st == KILN_OK) {
            for (int k = 0; k < nd->n_outputs; k++)
                if (nd->outputs[k] >= 0 && !out[k]) {
                    st = ops_error(&c, KILN_ERR_INTERNAL, "kernel did not produce output %d", k);
                    break;
                }
        }
        if (st == KILN_OK && !parent && state->mode == RT_PLAN_RECORDING)
            rt_plan_note_outputs(state, g, i, out, last);
        if (st == KILN_OK && !parent && state->observe) state->observe(state->observe_arg, i, in, out);
        for (int k = 0; k < nd->n_outputs; k++) {
            if (st == KILN_OK && nd->outputs[k] >= 0) {
                core_value_release(f.vals[nd->outputs[k]]);
                f.vals[nd->outputs[k]] = out[k];
            } else core_value_release(out[k]);
            out[k] = NULL;
        }
        if (st) goto done;
        for (int k = 0; k < nd->n_inputs; k++) {
            int v = nd->inputs[k];
            if (v >= 0 && last[v] == i && f.vals[v]) { core_value_release(f.vals[v]); f.vals[v] = NULL; }
        }
        /* Outputs nobody reads (dead) are released at once. */
        for (int k = 0; k < nd->n_outputs; k++) {
            int v = nd->outputs[k];
            if (v >= 0 && last[v] < i && f.vals[v]) { core_value_release(f.vals[v]); f.vals[v] = NULL; }
        }
    }
    for (int k = 0; k < g->n_outputs; k++) {
        core_value *v = f.vals[g->outputs[k]];
        if (!v) { st = core_error(KILN_ERR_INTERNAL, "graph output '%s' was not computed", g->values[g->outputs[k]].name); goto done; }
    }
    for (int k = 0; k < g->n_outputs; k++) outputs[k] = core_value_retain(f.vals[g->outputs[k]]);
    if (!parent && state->mode == RT_PLAN_RECORDING) rt_plan_build(state, last);
done:
    if (f.vals)
        for (int v = 0; v < g->n_values; v++) core_value_release(f.vals[v]);
    free(f.vals);
    free(in);
    free(out);
    return st;
}

kiln_status ops_run_subgraph(ops_ctx *c, const ir_graph *g, int n_in, core_value *const *inputs,
                             core_value **outputs)
{
    if (n_in != g->n_inputs)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "subgraph '%s' takes %d inputs, given %d",
                         g->name ? g->name : "", g->n_inputs, n_in);
    for (int k = 0; k < n_in; k++)
        if (!inputs[k])
            return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "subgraph '%s': input %d missing",
                             g->name ? g->name : "", k);
    return rt_frame_run(g, c->frame, c->frame->state, inputs, n_in, outputs);
}

/* ---- run state and the activation memory plan ------------------------------------------
 * The plan is made the way ONNX Runtime's "memory pattern" is: the first run with a given
 * set of input shapes allocates normally and records every top-level output buffer (size,
 * producing node, last consumer, aliases through pass-through ops); the buffers are then
 * packed into one arena by greedy best-offset placement over their lifetimes, and later
 * runs with the same input shapes take their activations from the arena (no malloc for
 * tensor data). A run whose allocations differ from the plan falls back to malloc and
 * re-records. Graphs whose top level holds sequences are not planned. */

rt_state *rt_state_create(const ir_graph *g, int n_threads, bool plan_memory)
{
    rt_state *s = calloc(1, sizeof *s);
    if (!s) { core_oom(); return NULL; }
    s->g = g;
    s->rng = 0x9e3779b97f4a7c15ull;
    s->mode = plan_memory ? RT_PLAN_NONE : RT_PLAN_DISABLED;
    if (n_threads > 1 && !(s->pool = core_threadpool_create(n_threads))) { free(s); return NULL; }
    if (plan_memory) {
        s->out_base = malloc(sizeof(int) * ((size_t)g->n_nodes + 1));
        int total = 0;
        for (int i = 0; s->out_base && i < g->n_nodes; i++) { s->out_base[i] = total; total += g->nodes[i].n_outputs; }
        s->slot_of = malloc(sizeof(int) * ((size_t)total + 1));
        if (!s->out_base || !s->slot_of) { rt_state_destroy(s); core_oom(); return NULL; }
    }
    return s;
}

void rt_state_destroy(rt_state *s)
{
    if (!s) return;
    core_threadpool_destroy(s->pool);
    free(s->scratch);
    free(s->slots);
    free(s->slot_of);
    free(s->out_base);
    free(s->arena);
    free(s->sig);
    free(s->prof_ms);
    free(s->prof_count);
    free(s->fixed);
    free(s->fixed_of);
    rt_state_free_live(s);
    free(s);
}

size_t rt_state_arena_bytes(const rt_state *s) { return s && s->mode == RT_PLAN_ACTIVE ? s->arena_size : 0; }

kiln_status rt_state_set_profiling(rt_state *s, bool on)
{
    free(s->prof_ms);
    free(s->prof_count);
    s->prof_ms = NULL;
    s->prof_count = NULL;
    if (!on) return KILN_OK;
    s->prof_ms = calloc((size_t)s->g->n_nodes + 1, sizeof *s->prof_ms);
    s->prof_count = calloc((size_t)s->g->n_nodes + 1, sizeof *s->prof_count);
    if (!s->prof_ms || !s->prof_count) { rt_state_set_profiling(s, false); return core_oom(); }
    return KILN_OK;
}

bool rt_state_profile(const rt_state *s, int node, double *ms, int64_t *count)
{
    if (!s->prof_ms || node < 0 || node >= s->g->n_nodes) return false;
    *ms = s->prof_ms[node];
    *count = s->prof_count[node];
    return true;
}

static void rt_plan_note_outputs(rt_state *s, const ir_graph *g, int node, core_value *const *out, const int *last)
{
    const ir_node *nd = &g->nodes[node];
    for (int k = 0; k < nd->n_outputs; k++) {
        const core_value *v = out[k];
        if (!v) continue;
        if (v->kind != CORE_VALUE_TENSOR) { s->mode = RT_PLAN_DISABLED; return; }
        /* An output that reuses a buffer made by an earlier node (Identity, a Loop passing
         * a value through, ...) extends that buffer's lifetime. */
        const void *d = v->tensor->data;
        int vid = nd->outputs[k];
        int until = vid >= 0 ? last[vid] : node;
        for (int j = 0; d && j < s->n_slots; j++)
            if (s->slots[j].data == d && s->slots[j].node != node && s->slots[j].last >= node) {
                s->slots[j].aliased = true;
                if (s->slots[j].last < until) s->slots[j].last = until;
            }
    }
    for (int j = 0; j < s->n_slots; j++)
        if (s->slots[j].node == node) {
            int vid = nd->outputs[s->slots[j].out];
            s->slots[j].last = vid >= 0 && last[vid] > node ? last[vid] : node;
        }
}

/* Place every recorded buffer at the offset of its counterpart in the reserved plan; false
 * (nothing changed) unless each is no larger and lives within its counterpart's lifetime: then
 * two buffers alive together here were alive together there, so they cannot overlap. */
static bool rt_plan_place_fixed(rt_state *s, size_t *end)
{
    size_t e = 0;
    for (int i = 0; i < s->n_slots; i++) {
        const rt_slot *a = &s->slots[i];
        int f = s->fixed_of[s->out_base[a->node] + a->out];
        if (f < 0) return false;
        const rt_mem_slot *b = &s->fixed[f];
        if (a->size > b->size || a->first < b->first || a->last > b->last) return false;
    }
    for (int i = 0; i < s->n_slots; i++) {
        rt_slot *a = &s->slots[i];
        a->offset = (size_t)s->fixed[s->fixed_of[s->out_base[a->node] + a->out]].offset;
        if (a->offset + a->size > e) e = a->offset + a->size;
    }
    /* Buffers nested in an elided Concat must sit exactly in place at these shapes; when
     * the block sizes differ from the profile's (the plan was made at max shapes), the
     * Concat would copy between overlapping ranges: place afresh instead. */
    for (int i = 0; i < s->n_slots; i++) {
        const rt_slot *a = &s->slots[i];
        if (a->parent >= 0 && a->offset != s->slots[a->parent].offset + a->delta) return false;
    }
    *end = e;
    return true;
}

/* Concat elision: a Concat the optimizer marked (kiln_elide = 1: its inputs are contiguous
 * blocks of its output, each read only by the Concat) gets its inputs' buffers nested in
 * its own, so producers write straight into place and the Concat copies nothing (the
 * Concat kernels skip blocks already in place). The output's lifetime then starts with
 * its first input. Needs s->slot_of filled. */
/* Ops that may hand input 0's buffer on as their output (when it dies there): the
 * zero-copy Reshape-likes and ChannelUpdate (in place). */
static bool rt_is_view_op(const ir_node *n)
{
    static const char *const ops[] = {"Reshape", "Flatten", "Squeeze", "Unsqueeze"};
    if (n->domain && !strcmp(n->domain, "ai.kiln")) return !strcmp(n->op_type, "ChannelUpdate") && n->n_inputs >= 1;
    if (n->domain && *n->domain) return false;
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++)
        if (!strcmp(n->op_type, ops[k])) return n->n_inputs >= 1;
    return false;
}

static void rt_plan_elide_concats(rt_state *s)
{
    const ir_graph *g = s->g;
    for (int i = 0; i < s->n_slots; i++) { s->slots[i].parent = -1; s->slots[i].delta = 0; s->slots[i].nests = false; }
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *nd = &g->nodes[i];
        const ir_attr *a = ir_node_attr(nd, "kiln_elide");
        if (!a || a->i != 1 || strcmp(nd->op_type, "Concat") || (nd->domain && *nd->domain) || nd->n_inputs > 64)
            continue;
        int os = s->slot_of[s->out_base[i]];
        if (os < 0 || s->slots[os].parent >= 0 || s->slots[os].aliased) continue;
        int ks[64];
        size_t sum = 0;
        bool ok = true;
        for (int k = 0; ok && k < nd->n_inputs; k++) {
            int v = nd->inputs[k], p = v >= 0 ? g->values[v].producer : -1;
            ks[k] = -1;
            if (p < 0 || p >= i) { ok = false; break; }
            for (int o = 0; o < g->nodes[p].n_outputs; o++)
                if (g->nodes[p].outputs[o] == v) ks[k] = s->slot_of[s->out_base[p] + o];
            /* A Reshape-like node (or an in-place ChannelUpdate) that allocated nothing handed
             * its input's buffer on (its input died there, ops_input_donatable): nest that
             * buffer, which the alias kept alive until this Concat. It is shared only along
             * this chain. */
            bool via_view = false;
            while (ks[k] < 0 && rt_is_view_op(&g->nodes[p]) && g->nodes[p].n_outputs == 1) {
                int u = g->nodes[p].inputs[0], q = u >= 0 ? g->values[u].producer : -1;
                if (q < 0 || q >= p) break;
                for (int o = 0; o < g->nodes[q].n_outputs; o++)
                    if (g->nodes[q].outputs[o] == u) ks[k] = s->slot_of[s->out_base[q] + o];
                p = q;
                via_view = true;
            }
            if (ks[k] < 0 || ks[k] == os || s->slots[ks[k]].parent >= 0 || (s->slots[ks[k]].aliased && !via_view) ||
                s->slots[ks[k]].last != i)
                ok = false;
            for (int q = 0; ok && q < k; q++) if (ks[q] == ks[k]) ok = false;
            if (ok) sum += s->slots[ks[k]].bytes;
        }
        if (!ok || sum != s->slots[os].bytes) continue;
        size_t delta = 0;
        s->slots[os].nests = true;
        for (int k = 0; k < nd->n_inputs; k++) {
            rt_slot *in = &s->slots[ks[k]];
            in->parent = os;
            in->delta = delta;
            delta += in->bytes;
            if (in->first < s->slots[os].first) s->slots[os].first = in->first;
        }
    }
}

static int rt_slot_by_size(const void *a, const void *b)
{
    const rt_slot *x = *(const rt_slot *const *)a, *y = *(const rt_slot *const *)b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->first - y->first;
}

static void rt_plan_build(rt_state *s, const int *last)
{
    (void)last;
    int n = s->n_slots, total = 0;
    for (int i = 0; i < s->g->n_nodes; i++) total += s->g->nodes[i].n_outputs;
    for (int i = 0; i < total; i++) s->slot_of[i] = -1;
    rt_slot **order = malloc(sizeof *order * (size_t)(n + 1));
    rt_slot **placed = malloc(sizeof *placed * (size_t)(n + 1));
    if (!order || !placed) { free(order); free(placed); s->mode = RT_PLAN_NONE; return; }
    for (int i = 0; i < n; i++) s->slots[i].size = (s->slots[i].size + 63) & ~(size_t)63;
    for (int i = 0; i < n; i++) s->slot_of[s->out_base[s->slots[i].node] + s->slots[i].out] = i;
    rt_plan_elide_concats(s);
    int n_order = 0;
    for (int i = 0; i < n; i++) if (s->slots[i].parent < 0) order[n_order++] = &s->slots[i];
    size_t end = 0;
    if (!s->fixed || !rt_plan_place_fixed(s, &end)) {
        end = 0;
        qsort(order, (size_t)n_order, sizeof *order, rt_slot_by_size);
        int n_placed = 0;
        for (int i = 0; i < n_order; i++) {
            rt_slot *a = order[i];
            /* Lowest offset not overlapping any placed buffer alive at the same time. */
            size_t off = 0;
            for (bool moved = true; moved;) {
                moved = false;
                for (int j = 0; j < n_placed; j++) {
                    const rt_slot *b = placed[j];
                    if (b->last < a->first || a->last < b->first) continue;
                    if (off < b->offset + b->size && b->offset < off + a->size) { off = b->offset + b->size; moved = true; }
                }
            }
            a->offset = off;
            if (off + a->size > end) end = off + a->size;
            placed[n_placed++] = a;
        }
    }
    for (int i = 0; i < n; i++)
        if (s->slots[i].parent >= 0) {
            rt_slot *a = &s->slots[i];
            a->offset = s->slots[a->parent].offset + a->delta;
            if (a->offset + a->size > end) end = a->offset + a->size; /* rounding of a nested tail */
        }
    free(order);
    free(placed);
    if (end > s->arena_cap && s->capped) {
        s->mode = RT_PLAN_NONE;
        s->unplannable = true;
        return;
    }
    if (end > s->arena_cap) {
        void *p = aligned_alloc(64, end);
        if (!p) { s->mode = RT_PLAN_NONE; return; }
        free(s->arena);
        s->arena = p;
        s->arena_cap = end;
    }
    s->arena_size = end;
    s->mode = RT_PLAN_ACTIVE;
}

/* Input shapes as one flat signature: the plan holds only while they stay the same. */
static bool rt_sig_same(rt_state *s, const ir_graph *g, core_value *const *inputs, bool store)
{
    int64_t buf[4096];
    int n = 0;
    for (int k = 0; k < g->n_inputs; k++) {
        const core_value *v = inputs[k];
        if (!v || v->kind != CORE_VALUE_TENSOR) { if (n < 4096) buf[n++] = -2; continue; }
        if (n + 2 + v->tensor->ndim > 4096) return false;
        buf[n++] = v->tensor->dtype;
        buf[n++] = v->tensor->ndim;
        for (int d = 0; d < v->tensor->ndim; d++) buf[n++] = v->tensor->dims[d];
    }
    bool same = s->sig && s->n_sig == n && !memcmp(s->sig, buf, sizeof(int64_t) * (size_t)n);
    if (store && !same) {
        int64_t *p = malloc(sizeof(int64_t) * (size_t)(n + 1));
        if (!p) return false;
        memcpy(p, buf, sizeof(int64_t) * (size_t)n);
        free(s->sig);
        s->sig = p;
        s->n_sig = n;
    }
    return same;
}

kiln_status rt_state_run(rt_state *s, core_value *const *inputs, core_value **outputs)
{
    const ir_graph *g = s->g;
    if (s->mode != RT_PLAN_DISABLED) {
        bool same = rt_sig_same(s, g, inputs, true);
        if (!same) s->unplannable = false;
        if ((!same || s->mode != RT_PLAN_ACTIVE) && !s->unplannable) { s->mode = RT_PLAN_RECORDING; s->n_slots = 0; }
    }
    s->mismatch = false;
    kiln_status st = rt_frame_run(g, NULL, s, inputs, g->n_inputs, outputs);
    if (s->mode == RT_PLAN_RECORDING) s->mode = RT_PLAN_NONE; /* the run failed before planning */
    if (s->mismatch && s->mode == RT_PLAN_ACTIVE) s->mode = RT_PLAN_NONE;
    return st;
}

kiln_status rt_state_memory_plan(const rt_state *s, rt_mem_slot **slots, int *n, size_t *arena_bytes)
{
    *slots = NULL;
    *n = 0;
    *arena_bytes = 0;
    if (!s || s->mode != RT_PLAN_ACTIVE)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "no memory plan: the graph has not run with memory planning");
    rt_mem_slot *out = malloc(sizeof *out * ((size_t)s->n_slots + 1));
    if (!out) return core_oom();
    for (int i = 0; i < s->n_slots; i++) {
        const rt_slot *a = &s->slots[i];
        out[i] = (rt_mem_slot){a->node, a->out, a->size, a->offset, a->first, a->last};
    }
    *slots = out;
    *n = s->n_slots;
    *arena_bytes = s->arena_size;
    return KILN_OK;
}

kiln_status rt_state_reserve_memory(rt_state *s, const rt_mem_slot *slots, int n, size_t arena_bytes)
{
    if (!s || s->mode == RT_PLAN_DISABLED || n < 0 || (n > 0 && !slots))
        return core_error(KILN_ERR_INVALID_ARGUMENT, "rt_state_reserve_memory: bad arguments");
    const ir_graph *g = s->g;
    int total = 0;
    for (int i = 0; i < g->n_nodes; i++) total += g->nodes[i].n_outputs;
    /* the plan comes from a file: check it against the graph before trusting an offset */
    for (int i = 0; i < n; i++) {
        const rt_mem_slot *a = &slots[i];
        if (a->node < 0 || a->node >= g->n_nodes || a->out < 0 || a->out >= g->nodes[a->node].n_outputs ||
            a->first > a->node || /* an elided Concat's output starts with its first input */ a->last < a->first || a->last > g->n_nodes || a->size % 64 ||
            a->size > arena_bytes || a->offset > arena_bytes - a->size)
            return core_error(KILN_ERR_INVALID_MODEL, "memory plan: buffer %d (node %d output %d, %llu bytes at %llu) "
                              "does not fit the graph or the %zu-byte arena", i, (int)a->node, (int)a->out,
                              (unsigned long long)a->size, (unsigned long long)a->offset, arena_bytes);
    }
    int *of = malloc(sizeof(int) * ((size_t)total + 1));
    rt_mem_slot *fx = malloc(sizeof *fx * ((size_t)n + 1));
    void *arena = aligned_alloc(64, arena_bytes ? (arena_bytes + 63) & ~(size_t)63 : 64);
    if (!of || !fx || !arena) { free(of); free(fx); free(arena); return core_oom(); }
    for (int i = 0; i < total; i++) of[i] = -1;
    for (int i = 0; i < n; i++) {
        int k = s->out_base[slots[i].node] + slots[i].out;
        if (of[k] >= 0) {
            free(of); free(fx); free(arena);
            return core_error(KILN_ERR_INVALID_MODEL, "memory plan: node %d output %d is planned twice",
                              (int)slots[i].node, (int)slots[i].out);
        }
        of[k] = i;
        fx[i] = slots[i];
    }
    free(s->fixed);
    free(s->fixed_of);
    free(s->arena);
    s->fixed = fx;
    s->fixed_of = of;
    s->n_fixed = n;
    s->arena = arena;
    s->arena_cap = arena_bytes;
    s->capped = true;
    s->mode = RT_PLAN_NONE;
    return KILN_OK;
}

void rt_state_set_observer(rt_state *s, rt_node_observer fn, void *arg)
{
    s->observe = fn;
    s->observe_arg = arg;
}

kiln_status rt_graph_run_pool(const ir_graph *g, struct core_threadpool *pool, core_value *const *inputs,
                              core_value **outputs)
{
    rt_state s;
    memset(&s, 0, sizeof s);
    s.g = g;
    s.pool = pool;
    s.rng = 0x9e3779b97f4a7c15ull;
    s.mode = RT_PLAN_DISABLED;
    kiln_status st = rt_frame_run(g, NULL, &s, inputs, g->n_inputs, outputs);
    free(s.scratch);
    rt_state_free_live(&s);
    return st;
}

kiln_status rt_graph_run(const ir_graph *g, core_value *const *inputs, core_value **outputs)
{
    return rt_graph_run_pool(g, NULL, inputs, outputs);
}

static kiln_status rt_prepare_rec(ir_graph *g, int depth)
{
    if (depth > 64) return core_error(KILN_ERR_INVALID_MODEL, "subgraphs nested more than 64 deep");
    kiln_status first = KILN_OK;
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node *nd = &g->nodes[i];
        int64_t opset = nd->opset > 0 ? nd->opset : ir_graph_opset(g, nd->domain);
        nd->schema = ops_find(nd->domain, nd->op_type, opset);
        if (!nd->schema && !first)
            first = core_error(KILN_ERR_UNSUPPORTED, "node '%s': op %s%s%s (opset %lld) is not supported",
                               nd->name ? nd->name : "", nd->domain && *nd->domain ? nd->domain : "",
                               nd->domain && *nd->domain ? "." : "", nd->op_type, (long long)opset);
        for (int a = 0; a < nd->n_attrs; a++) {
            kiln_status st = KILN_OK;
            if (nd->attrs[a].g) st = rt_prepare_rec(nd->attrs[a].g, depth + 1);
            for (int64_t k = 0; !st && nd->attrs[a].graphs && k < nd->attrs[a].n; k++)
                st = rt_prepare_rec(nd->attrs[a].graphs[k], depth + 1);
            if (st && !first) first = st;
        }
    }
    return first;
}

kiln_status rt_graph_prepare(ir_graph *g) { return rt_prepare_rec(g, 0); }

kiln_status rt_node_eval(const ir_graph *g, const ir_node *nd, core_value *const *inputs,
                         core_value **outputs)
{
    return rt_node_eval_pool(g, nd, NULL, inputs, outputs);
}

kiln_status rt_node_eval_pool(const ir_graph *g, const ir_node *nd, struct core_threadpool *pool,
                              core_value *const *inputs, core_value **outputs)
{
    if (!nd->schema) return core_error(KILN_ERR_UNSUPPORTED, "op %s is not supported", nd->op_type);
    rt_state state;
    memset(&state, 0, sizeof state);
    state.g = g;
    state.pool = pool;
    state.rng = 0x9e3779b97f4a7c15ull;
    state.mode = RT_PLAN_DISABLED;
    rt_frame f = {g, NULL, NULL, &state};
    core_value **in = calloc((size_t)nd->n_inputs + 1, sizeof *in);
    if (!in) return core_oom();
    for (int k = 0; k < nd->n_inputs; k++) in[k] = inputs[k];
    for (int k = 0; k < nd->n_outputs; k++) outputs[k] = NULL;
    ops_ctx c = {&f, nd, -1, in, outputs};
    kiln_status st = nd->schema->run(&c);
    for (int k = 0; st == KILN_OK && k < nd->n_outputs; k++)
        if (nd->outputs[k] >= 0 && !outputs[k]) st = ops_error(&c, KILN_ERR_INTERNAL, "kernel did not produce output %d", k);
    if (st)
        for (int k = 0; k < nd->n_outputs; k++) { core_value_release(outputs[k]); outputs[k] = NULL; }
    free(in);
    free(state.scratch);
    rt_state_free_live(&state);
    return st;
}
