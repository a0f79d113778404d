/* pipeline.c — the pass manager: opt_prepare_model runs gradient expansion, kernel
 * resolution and constant folding, then the optimization passes in order until a fixed
 * point, keeping per-pass rewrite statistics (KILN_OPT=0 disables, KILN_OPT_VERBOSE=1 prints). */
#include "opt/rewrite.h"
#include "runtime/runtime.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct opt_pass {
    const char *name;
    kiln_status (*run)(ir_graph *g, int *n);
    bool final; /* analyses run once, after the rewriting passes settled */
} opt_pass;

/* Order matters: no-ops and dead nodes go first so patterns see clean chains; BatchNorm
 * folds into Conv before Conv fuses its activation; LayerNorm / attention / GELU patterns
 * are taken before the generic elementwise chaining could split them. */
static const opt_pass opt_passes[] = {
    {"eliminate_noop", opt_eliminate_noop, false},
    {"cancel_transpose_reshape", opt_cancel_transpose_reshape, false},
    {"eliminate_dead", opt_eliminate_dead, false},
    {"fold_batchnorm", opt_fold_batchnorm, false},
    {"fuse_layernorm", opt_fuse_layernorm, false},
    {"fuse_attention", opt_fuse_attention, false},
    {"hoist_activation", opt_hoist_activation, false},
    {"fuse_conv_act", opt_fuse_conv_act, false},
    {"merge_sibling_convs", opt_merge_sibling_convs, false},
    {"fuse_elementwise", opt_fuse_elementwise, false},
    {"update_concat_slices", opt_update_concat_slices, false},
    {"layout_nhwc", opt_layout_nhwc, true},
    /* the layout's edge Transposes meet the model's own Transposes / Reshapes */
    {"cancel_transpose_reshape_nhwc", opt_cancel_transpose_reshape, true},
    {"eliminate_dead_nhwc", opt_eliminate_dead, true},
    {"fuse_expand_dw", opt_fuse_expand_dw, true},
    {"fuse_csp_nhwc", opt_fuse_csp_nhwc, true},
    {"elide_concat", opt_elide_concat, true},
};
#define OPT_N_PASSES ((int)(sizeof opt_passes / sizeof opt_passes[0]))
#define OPT_MAX_ROUNDS 4

static int opt_state_enabled = -1; /* -1: not read from the environment yet */
static int opt_state_verbose = -1;
static _Thread_local int opt_stats[OPT_N_PASSES];

void opt_set_enabled(bool enabled) { __atomic_store_n(&opt_state_enabled, enabled ? 1 : 0, __ATOMIC_RELAXED); }

bool opt_enabled(void)
{
    int s = __atomic_load_n(&opt_state_enabled, __ATOMIC_RELAXED);
    if (s < 0) {
        const char *e = getenv("KILN_OPT");
        s = e && !strcmp(e, "0") ? 0 : 1;
        __atomic_store_n(&opt_state_enabled, s, __ATOMIC_RELAXED);
    }
    return s == 1;
}

void opt_set_verbose(bool verbose) { __atomic_store_n(&opt_state_verbose, verbose ? 1 : 0, __ATOMIC_RELAXED); }

static bool opt_verbose(void)
{
    int s = __atomic_load_n(&opt_state_verbose, __ATOMIC_RELAXED);
    if (s < 0) {
        const char *e = getenv("KILN_OPT_VERBOSE");
        s = e && *e && strcmp(e, "0") ? 1 : 0;
        __atomic_store_n(&opt_state_verbose, s, __ATOMIC_RELAXED);
    }
    return s == 1;
}

int opt_pass_count(void) { return OPT_N_PASSES; }
const char *opt_pass_name(int i) { return i >= 0 && i < OPT_N_PASSES ? opt_passes[i].name : NULL; }

int opt_last_rewrites(const char *pass)
{
    for (int i = 0; i < OPT_N_PASSES; i++)
        if (pass && !strcmp(opt_passes[i].name, pass)) return opt_stats[i];
    return 0;
}

/* Drop the nodes passes killed, restore topological order, resolve kernels of new nodes
 * and refresh inferred types. */
static kiln_status opt_graph_settle(ir_graph *g)
{
    int kept = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (!opt_alive(&g->nodes[i])) continue;
        if (kept != i) g->nodes[kept] = g->nodes[i];
        kept++;
    }
    g->n_nodes = kept;
    kiln_status st = ir_graph_sort(g);
    if (st) return core_error_prefix(KILN_ERR_INTERNAL, "graph optimizer: ");
    st = rt_graph_prepare(g);
    if (st) return st;
    return opt_infer_types(g);
}

static kiln_status opt_run_pass(ir_graph *g, int p, int *changed)
{
    int n = 0;
    kiln_status st = opt_passes[p].run(g, &n);
    if (st) return core_error_prefix(st, "optimizer pass %s: ", opt_passes[p].name);
    if (n > 0) {
        st = opt_graph_settle(g);
        if (st) return core_error_prefix(st, "after optimizer pass %s: ", opt_passes[p].name);
    }
    opt_stats[p] += n;
    *changed += n;
    return KILN_OK;
}

static kiln_status opt_optimize(ir_graph *g)
{
    int nodes_before = g->n_nodes, rounds = 0;
    kiln_status st = opt_infer_types(g);
    for (int r = 0; r < OPT_MAX_ROUNDS && !st; r++) {
        int changed = 0;
        rounds++;
        for (int p = 0; p < OPT_N_PASSES && !st; p++)
            if (!opt_passes[p].final) st = opt_run_pass(g, p, &changed);
        if (!changed) break;
    }
    int changed = 0;
    for (int p = 0; p < OPT_N_PASSES && !st; p++)
        if (opt_passes[p].final) st = opt_run_pass(g, p, &changed);
    if (!st) st = opt_fold_constants(g);
    if (!st) st = opt_infer_types(g);
    if (opt_verbose()) {
        fprintf(stderr, "kiln opt: graph '%s': %d nodes -> %d nodes, %d round%s%s\n", g->name ? g->name : "",
                nodes_before, g->n_nodes, rounds, rounds == 1 ? "" : "s", st ? " (failed)" : "");
        for (int p = 0; p < OPT_N_PASSES; p++)
            fprintf(stderr, "kiln opt:   %-26s %d rewrite%s\n", opt_passes[p].name, opt_stats[p], opt_stats[p] == 1 ? "" : "s");
    }
    return st;
}

kiln_status opt_prepare_model_ex(ir_model *m, bool optimize)
{
    memset(opt_stats, 0, sizeof opt_stats);
    if (!m || !m->graph) return core_error(KILN_ERR_INVALID_ARGUMENT, "opt_prepare_model: no graph");
    kiln_status st = opt_expand_gradients(m->graph);
    if (!st) st = rt_graph_prepare(m->graph);
    if (!st) st = opt_fold_constants(m->graph);
    if (!st && optimize && opt_enabled()) st = opt_optimize(m->graph);
    return st;
}

kiln_status opt_prepare_model(ir_model *m) { return opt_prepare_model_ex(m, true); }
