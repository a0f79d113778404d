/* graph.c — IR graph construction, name index, topological sort and the verifier. */
#include "ir/ir.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Open-addressing hash of value names -> ids. */
struct ir_name_index {
    int cap;   /* power of two */
    int *slot; /* value id or -1 */
};

static uint64_t ir_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static bool ir_index_rebuild(ir_graph *g, int cap)
{
    int *slot = malloc(sizeof(int) * (size_t)cap);
    if (!slot) return false;
    for (int i = 0; i < cap; i++) slot[i] = -1;
    for (int v = 0; v < g->n_values; v++) {
        uint64_t h = ir_hash(g->values[v].name) & (uint64_t)(cap - 1);
        while (slot[h] >= 0) h = (h + 1) & (uint64_t)(cap - 1);
        slot[h] = v;
    }
    if (!g->index) {
        g->index = calloc(1, sizeof *g->index);
        if (!g->index) { free(slot); return false; }
    }
    free(g->index->slot);
    g->index->slot = slot;
    g->index->cap = cap;
    return true;
}

ir_graph *ir_graph_create(const char *name, ir_graph *parent)
{
    ir_graph *g = calloc(1, sizeof *g);
    if (!g) { core_oom(); return NULL; }
    g->name = core_strdup(name ? name : "");
    g->parent = parent;
    if (!g->name || !ir_index_rebuild(g, 64)) { ir_graph_destroy(g); core_oom(); return NULL; }
    if (parent) { g->n_opsets = parent->n_opsets; g->opsets = parent->opsets; }
    return g;
}

void ir_type_free(ir_type *t)
{
    if (!t) return;
    for (int i = 0; i < t->ndim && t->dims; i++) free(t->dims[i].symbol);
    free(t->dims);
    if (t->elem) { ir_type_free(t->elem); free(t->elem); }
    memset(t, 0, sizeof *t);
}

bool ir_type_copy(ir_type *dst, const ir_type *src)
{
    memset(dst, 0, sizeof *dst);
    dst->kind = src->kind;
    dst->dtype = src->dtype;
    dst->ndim = src->ndim;
    if (src->ndim > 0 && src->dims) {
        dst->dims = calloc((size_t)src->ndim, sizeof *dst->dims);
        if (!dst->dims) return false;
        for (int i = 0; i < src->ndim; i++) {
            dst->dims[i].value = src->dims[i].value;
            if (src->dims[i].symbol && !(dst->dims[i].symbol = core_strdup(src->dims[i].symbol)))
                return false;
        }
    }
    if (src->elem) {
        dst->elem = calloc(1, sizeof *dst->elem);
        if (!dst->elem || !ir_type_copy(dst->elem, src->elem)) return false;
    }
    return true;
}

void ir_attr_free(ir_attr *a)
{
    if (!a) return;
    free(a->name);
    free(a->ref_attr_name);
    free(a->s);
    core_tensor_destroy(a->t);
    ir_graph_destroy(a->g);
    if (a->tp) { ir_type_free(a->tp); free(a->tp); }
    free(a->ints);
    free(a->floats);
    for (int64_t i = 0; a->strings && i < a->n; i++) free(a->strings[i]);
    free(a->strings);
    for (int64_t i = 0; a->tensors && i < a->n; i++) core_tensor_destroy(a->tensors[i]);
    free(a->tensors);
    for (int64_t i = 0; a->graphs && i < a->n; i++) ir_graph_destroy(a->graphs[i]);
    free(a->graphs);
    for (int64_t i = 0; a->tps && i < a->n; i++) if (a->tps[i]) { ir_type_free(a->tps[i]); free(a->tps[i]); }
    free(a->tps);
    memset(a, 0, sizeof *a);
}

void ir_node_free(ir_node *n)
{
    if (!n) return;
    free(n->name);
    free(n->op_type);
    free(n->domain);
    free(n->inputs);
    free(n->outputs);
    for (int i = 0; i < n->n_attrs; i++) ir_attr_free(&n->attrs[i]);
    free(n->attrs);
    memset(n, 0, sizeof *n);
}

void ir_graph_destroy(ir_graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->n_nodes; i++) ir_node_free(&g->nodes[i]);
    free(g->nodes);
    for (int i = 0; i < g->n_values; i++) {
        free(g->values[i].name);
        ir_type_free(&g->values[i].type);
        core_value_release(g->values[i].constant);
    }
    free(g->values);
    free(g->inputs);
    free(g->outputs);
    if (g->index) { free(g->index->slot); free(g->index); }
    free(g->name);
    free(g);
}

void ir_model_destroy(ir_model *m)
{
    if (!m) return;
    ir_graph_destroy(m->graph); /* before the mappings: tensors may borrow from them */
    for (int i = 0; i < m->n_opsets; i++) free(m->opsets[i].domain);
    free(m->opsets);
    for (int i = 0; i < m->n_mappings; i++) {
        if (m->mappings[i].is_mmap) munmap(m->mappings[i].addr, m->mappings[i].size);
        else free(m->mappings[i].addr);
    }
    free(m->mappings);
    free(m->producer_name);
    free(m->producer_version);
    free(m->domain);
    free(m->doc_string);
    free(m);
}

int ir_graph_find_value(const ir_graph *g, const char *name)
{
    if (!name || !g->index) return -1;
    int cap = g->index->cap;
    uint64_t h = ir_hash(name) & (uint64_t)(cap - 1);
    for (;;) {
        int v = g->index->slot[h];
        if (v < 0) return -1;
        if (!strcmp(g->values[v].name, name)) return v;
        h = (h + 1) & (uint64_t)(cap - 1);
    }
}

int ir_graph_intern_value(ir_graph *g, const char *name)
{
    if (!name || !*name) return -1;
    int v = ir_graph_find_value(g, name);
    if (v >= 0) return v;
    if (g->n_values == g->cap_values) {
        int cap = g->cap_values ? g->cap_values * 2 : 16;
        ir_value *nv = realloc(g->values, sizeof *nv * (size_t)cap);
        if (!nv) { core_oom(); return -2; }
        g->values = nv;
        g->cap_values = cap;
    }
    ir_value *val = &g->values[g->n_values];
    memset(val, 0, sizeof *val);
    val->name = core_strdup(name);
    if (!val->name) { core_oom(); return -2; }
    val->producer = -1;
    val->type.ndim = -1;
    v = g->n_values++;
    if (g->n_values * 2 > g->index->cap) {
        if (!ir_index_rebuild(g, g->index->cap * 2)) { core_oom(); return -2; }
    } else {
        int cap = g->index->cap;
        uint64_t h = ir_hash(name) & (uint64_t)(cap - 1);
        while (g->index->slot[h] >= 0) h = (h + 1) & (uint64_t)(cap - 1);
        g->index->slot[h] = v;
    }
    return v;
}

int ir_graph_add_node(ir_graph *g, const ir_node *node)
{
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? g->cap_nodes * 2 : 16;
        ir_node *nn = realloc(g->nodes, sizeof *nn * (size_t)cap);
        if (!nn) { core_oom(); return -1; }
        g->nodes = nn;
        g->cap_nodes = cap;
    }
    g->nodes[g->n_nodes] = *node;
    return g->n_nodes++;
}

const ir_attr *ir_node_attr(const ir_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (n->attrs[i].name && !strcmp(n->attrs[i].name, name)) return &n->attrs[i];
    return NULL;
}

int64_t ir_graph_opset(const ir_graph *g, const char *domain)
{
    if (!domain || !strcmp(domain, "ai.onnx")) domain = "";
    for (int i = 0; i < g->n_opsets; i++) {
        const char *d = g->opsets[i].domain ? g->opsets[i].domain : "";
        if (!strcmp(d, "ai.onnx")) d = "";
        if (!strcmp(d, domain)) return g->opsets[i].version;
    }
    return 0;
}

static bool ir_defined_outside(const ir_graph *g, const char *name)
{
    for (const ir_graph *p = g->parent; p; p = p->parent) {
        int v = ir_graph_find_value(p, name);
        if (v >= 0) {
            const ir_value *val = &p->values[v];
            if (val->is_graph_input || val->constant || val->producer >= 0 || val->is_outer) return true;
        }
    }
    return false;
}

static const char *ir_node_label(const ir_node *n, char *buf, size_t size, int idx)
{
    if (n->name && *n->name) snprintf(buf, size, "node '%s' (%s)", n->name, n->op_type);
    else snprintf(buf, size, "node #%d (%s)", idx, n->op_type);
    return buf;
}

/* Values of g that node nd's subgraphs (at any depth) read from the enclosing scope:
 * implicit inputs that ordering and liveness must respect. Calls fn(v) for each. */
static void ir_sub_refs(const ir_graph *g, const ir_graph *sub, void (*fn)(int v, void *arg), void *arg, int depth)
{
    if (depth > 64) return;
    for (int i = 0; i < sub->n_nodes; i++) {
        const ir_node *nd = &sub->nodes[i];
        for (int k = 0; k < nd->n_inputs; k++) {
            int sv = nd->inputs[k];
            if (sv < 0) continue;
            const ir_value *val = &sub->values[sv];
            if (val->is_graph_input || val->constant) continue;
            bool local = false;
            for (int j = 0; j < sub->n_nodes && !local; j++)
                for (int o = 0; o < sub->nodes[j].n_outputs; o++)
                    if (sub->nodes[j].outputs[o] == sv) { local = true; break; }
            if (local) continue;
            int v = ir_graph_find_value(g, val->name);
            if (v >= 0) fn(v, arg);
        }
        for (int a = 0; a < nd->n_attrs; a++) {
            if (nd->attrs[a].g) ir_sub_refs(g, nd->attrs[a].g, fn, arg, depth + 1);
            for (int64_t k = 0; nd->attrs[a].graphs && k < nd->attrs[a].n; k++)
                ir_sub_refs(g, nd->attrs[a].graphs[k], fn, arg, depth + 1);
        }
    }
    for (int k = 0; k < sub->n_outputs; k++) {
        int sv = sub->outputs[k];
        if (sv < 0) continue;
        const ir_value *val = &sub->values[sv];
        if (val->is_graph_input || val->constant || (val->producer >= 0 && !val->is_outer)) continue;
        bool local = false;
        for (int j = 0; j < sub->n_nodes && !local; j++)
            for (int o = 0; o < sub->nodes[j].n_outputs; o++)
                if (sub->nodes[j].outputs[o] == sv) { local = true; break; }
        if (local) continue;
        int v = ir_graph_find_value(g, val->name);
        if (v >= 0) fn(v, arg);
    }
}

void ir_node_outer_refs(const ir_graph *g, const ir_node *nd, void (*fn)(int v, void *arg), void *arg)
{
    for (int a = 0; a < nd->n_attrs; a++) {
        if (nd->attrs[a].g) ir_sub_refs(g, nd->attrs[a].g, fn, arg, 0);
        for (int64_t k = 0; nd->attrs[a].graphs && k < nd->attrs[a].n; k++)
            ir_sub_refs(g, nd->attrs[a].graphs[k], fn, arg, 0);
    }
}

struct ir_sort_acc { int *producer; int *pending; int *users_start; int *users; int *fill; int node; int64_t *n_edges; };

static void ir_sort_count(int v, void *arg)
{
    struct ir_sort_acc *a = arg;
    if (a->producer[v] >= 0 && a->producer[v] != a->node) { a->pending[a->node]++; a->users_start[v]++; (*a->n_edges)++; }
}

static void ir_sort_fill(int v, void *arg)
{
    struct ir_sort_acc *a = arg;
    if (a->producer[v] >= 0 && a->producer[v] != a->node) a->users[a->users_start[v] + a->fill[v]++] = a->node;
}

kiln_status ir_graph_sort(ir_graph *g)
{
    kiln_status st = KILN_OK;
    int n = g->n_nodes;
    int *producer = malloc(sizeof(int) * (size_t)(g->n_values + 1));
    int *pending = calloc((size_t)n + 1, sizeof(int));  /* unresolved inputs per node */
    int *order = malloc(sizeof(int) * (size_t)(n + 1));
    int *users_start = calloc((size_t)g->n_values + 1, sizeof(int));
    int *users = NULL;
    char label[300];
    if (!producer || !pending || !order || !users_start) { st = core_oom(); goto done; }
    for (int v = 0; v < g->n_values; v++) producer[v] = -1;
    for (int i = 0; i < n; i++) {
        const ir_node *nd = &g->nodes[i];
        for (int k = 0; k < nd->n_outputs; k++) {
            int v = nd->outputs[k];
            if (v < 0) continue;
            if (v >= g->n_values) { st = core_error(KILN_ERR_INVALID_MODEL, "bad value id"); goto done; }
            if (producer[v] >= 0) {
                st = core_error(KILN_ERR_INVALID_MODEL, "%s: output '%s' is also produced by another node",
                                ir_node_label(nd, label, sizeof label, i), g->values[v].name);
                goto done;
            }
            if (g->values[v].is_graph_input || g->values[v].constant) {
                st = core_error(KILN_ERR_INVALID_MODEL, "%s: output '%s' redefines a graph input or initializer",
                                ir_node_label(nd, label, sizeof label, i), g->values[v].name);
                goto done;
            }
            producer[v] = i;
        }
    }
    /* Each node's count of inputs produced by other nodes; a value with no producer must
     * be available from the start. */
    int64_t n_edges = 0;
    for (int i = 0; i < n; i++) {
        const ir_node *nd = &g->nodes[i];
        for (int k = 0; k < nd->n_inputs; k++) {
            int v = nd->inputs[k];
            if (v < 0) continue;
            ir_value *val = &g->values[v];
            if (producer[v] >= 0) { pending[i]++; users_start[v]++; n_edges++; continue; }
            if (val->is_graph_input || val->constant || val->is_outer) continue;
            if (g->parent && ir_defined_outside(g, val->name)) { val->is_outer = true; continue; }
            st = core_error(KILN_ERR_INVALID_MODEL,
                            "%s: input '%s' is not a graph input, an initializer or any node's output",
                            ir_node_label(nd, label, sizeof label, i), val->name);
            goto done;
        }
        struct ir_sort_acc acc = {producer, pending, users_start, NULL, NULL, i, &n_edges};
        ir_node_outer_refs(g, nd, ir_sort_count, &acc);
    }
    for (int k = 0; k < g->n_outputs; k++) {
        int v = g->outputs[k];
        if (v < 0 || v >= g->n_values) continue;
        ir_value *val = &g->values[v];
        if (producer[v] < 0 && !val->is_graph_input && !val->constant && !val->is_outer &&
            g->parent && ir_defined_outside(g, val->name))
            val->is_outer = true;
    }
    users = malloc(sizeof(int) * (size_t)(n_edges + 1));
    if (!users) { st = core_oom(); goto done; }
    { /* prefix sums -> CSR of consumers per value */
        int acc = 0;
        for (int v = 0; v < g->n_values; v++) { int c = users_start[v]; users_start[v] = acc; acc += c; }
        users_start[g->n_values] = acc;
        int *fill = calloc((size_t)g->n_values + 1, sizeof(int));
        if (!fill) { st = core_oom(); goto done; }
        for (int i = 0; i < n; i++) {
            const ir_node *nd = &g->nodes[i];
            for (int k = 0; k < nd->n_inputs; k++) {
                int v = nd->inputs[k];
                if (v >= 0 && producer[v] >= 0) users[users_start[v] + fill[v]++] = i;
            }
            struct ir_sort_acc acc = {producer, pending, users_start, users, fill, i, NULL};
            ir_node_outer_refs(g, nd, ir_sort_fill, &acc);
        }
        free(fill);
    }
    /* Kahn's algorithm; keeps the original order among ready nodes (stable). */
    int head = 0, tail = 0;
    for (int i = 0; i < n; i++) if (!pending[i]) order[tail++] = i;
    while (head < tail) {
        int i = order[head++];
        const ir_node *nd = &g->nodes[i];
        for (int k = 0; k < nd->n_outputs; k++) {
            int v = nd->outputs[k];
            if (v < 0) continue;
            for (int u = users_start[v]; u < users_start[v + 1]; u++) {
                int j = users[u];
                if (--pending[j] == 0) order[tail++] = j;
            }
        }
    }
    if (tail < n) {
        for (int i = 0; i < n; i++)
            if (pending[i]) {
                st = core_error(KILN_ERR_INVALID_MODEL, "the graph has a cycle through %s",
                                ir_node_label(&g->nodes[i], label, sizeof label, i));
                goto done;
            }
    }
    {
        ir_node *sorted = malloc(sizeof *sorted * (size_t)(n + 1));
        if (!sorted) { st = core_oom(); goto done; }
        for (int i = 0; i < n; i++) sorted[i] = g->nodes[order[i]];
        if (n > 0) memcpy(g->nodes, sorted, sizeof *sorted * (size_t)n);
        free(sorted);
        for (int v = 0; v < g->n_values; v++) g->values[v].producer = -1;
        for (int i = 0; i < n; i++)
            for (int k = 0; k < g->nodes[i].n_outputs; k++)
                if (g->nodes[i].outputs[k] >= 0) g->values[g->nodes[i].outputs[k]].producer = i;
    }
done:
    free(producer);
    free(pending);
    free(order);
    free(users_start);
    free(users);
    return st;
}

static kiln_status ir_attr_verify(const ir_graph *g, const ir_node *nd, int idx)
{
    char label[300];
    for (int a = 0; a < nd->n_attrs; a++) {
        const ir_attr *at = &nd->attrs[a];
        if (!at->name || !*at->name)
            return core_error(KILN_ERR_INVALID_MODEL, "%s: attribute without a name",
                              ir_node_label(nd, label, sizeof label, idx));
        for (int b = 0; b < a; b++)
            if (!strcmp(nd->attrs[b].name, at->name))
                return core_error(KILN_ERR_INVALID_MODEL, "%s: attribute '%s' appears twice",
                                  ir_node_label(nd, label, sizeof label, idx), at->name);
        if (at->type == IR_ATTR_GRAPH && at->g) {
            kiln_status st = ir_graph_verify(at->g);
            if (st) return core_error_prefix(st, "%s: attribute '%s': ", ir_node_label(nd, label, sizeof label, idx), at->name);
        }
        for (int64_t k = 0; at->type == IR_ATTR_GRAPHS && at->graphs && k < at->n; k++) {
            kiln_status st = ir_graph_verify(at->graphs[k]);
            if (st) return core_error_prefix(st, "%s: attribute '%s': ", ir_node_label(nd, label, sizeof label, idx), at->name);
        }
    }
    (void)g;
    return KILN_OK;
}

kiln_status ir_graph_verify(const ir_graph *g)
{
    char label[300];
    /* Nodes are sorted: every input must be available before its consumer. */
    char *avail = calloc((size_t)g->n_values + 1, 1);
    if (!avail) return core_oom();
    kiln_status st = KILN_OK;
    for (int v = 0; v < g->n_values; v++) {
        const ir_value *val = &g->values[v];
        avail[v] = val->is_graph_input || val->constant || val->is_outer;
    }
    for (int i = 0; i < g->n_nodes && !st; i++) {
        const ir_node *nd = &g->nodes[i];
        if (!nd->op_type || !*nd->op_type) {
            st = core_error(KILN_ERR_INVALID_MODEL, "node #%d has no op_type", i);
            break;
        }
        for (int k = 0; k < nd->n_inputs; k++) {
            int v = nd->inputs[k];
            if (v < -1 || v >= g->n_values) { st = core_error(KILN_ERR_INVALID_MODEL, "bad value id"); break; }
            if (v >= 0 && !avail[v]) {
                st = core_error(KILN_ERR_INVALID_MODEL, "%s: input '%s' is used before it is defined",
                                ir_node_label(nd, label, sizeof label, i), g->values[v].name);
                break;
            }
        }
        if (st) break;
        for (int k = 0; k < nd->n_outputs; k++) {
            int v = nd->outputs[k];
            if (v < -1 || v >= g->n_values) { st = core_error(KILN_ERR_INVALID_MODEL, "bad value id"); break; }
            if (v >= 0) avail[v] = 1;
        }
        if (!st) st = ir_attr_verify(g, nd, i);
    }
    for (int k = 0; k < g->n_outputs && !st; k++) {
        int v = g->outputs[k];
        if (v < 0 || v >= g->n_values || !avail[v])
            st = core_error(KILN_ERR_INVALID_MODEL, "graph output '%s' is never produced",
                            v >= 0 && v < g->n_values ? g->values[v].name : "?");
    }
    free(avail);
    return st;
}
