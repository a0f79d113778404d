/* runtime.h — the reference executor: runs an IR graph node by node with the ops/ kernels. */
#ifndef KILN_RUNTIME_H
#define KILN_RUNTIME_H

#include "ir/ir.h"
#include "ops/ops.h"

/* Resolve the kernel of every node (recursing into subgraphs). Fails with
 * KILN_ERR_UNSUPPORTED naming the node and op that kiln cannot run. */
kiln_status rt_graph_prepare(ir_graph *g);

/* Run a prepared top-level graph. inputs[i] corresponds to g->inputs[i] (borrowed; NULL
 * means "use the initializer", an error for an input without one). On success outputs[i]
 * (i < g->n_outputs) receive new references the caller releases. */
kiln_status rt_graph_run(const ir_graph *g, core_value *const *inputs, core_value **outputs);
/* Same, with kernels splitting work over `pool` (NULL = one thread). */
struct core_threadpool;
kiln_status rt_graph_run_pool(const ir_graph *g, struct core_threadpool *pool, core_value *const *inputs,
                              core_value **outputs);



/* Per-context run state: thread pool, kernel scratch, random state and the activation
 * memory plan (arena) of the top-level graph. Not thread-safe: one per context. */
typedef struct rt_state rt_state;
rt_state *rt_state_create(const ir_graph *g, int n_threads, bool plan_memory);
void rt_state_destroy(rt_state *s);
kiln_status rt_state_run(rt_state *s, core_value *const *inputs, core_value **outputs);
/* Bytes of the activation arena in use (0 until a plan exists): peak activation memory. */
size_t rt_state_arena_bytes(const rt_state *s);
/* Per-node kernel timing of the top-level graph (accumulated over runs while on). */
kiln_status rt_state_set_profiling(rt_state *s, bool on);
bool rt_state_profile(const rt_state *s, int node, double *ms, int64_t *count);

/* ---- engine support (plans, kiln build) ----------------------------------------------------
 * One buffer of a memory plan: output `out` of top-level node `node`, `size` bytes (a multiple
 * of 64) at arena + offset, alive from node `first` through node `last`. */
typedef struct rt_mem_slot {
    int32_t node, out;
    uint64_t size, offset;
    int32_t first, last;
} rt_mem_slot;
/* The memory plan of the last run (made by the first run with a set of input shapes):
 * *slots is malloc'd (caller frees), *arena_bytes its size. KILN_ERR_INVALID_ARGUMENT when the
 * state has no plan (memory planning off, sequences at top level, or no run yet). */
kiln_status rt_state_memory_plan(const rt_state *s, rt_mem_slot **slots, int *n, size_t *arena_bytes);
/* Fix the arena at arena_bytes (allocated now, never grown) and remember `slots` (copied), the
 * plan made at the largest shapes the engine admits. A later set of input shapes is placed at
 * these offsets when each of its buffers is no larger and lives no longer than its planned
 * counterpart, which makes it fit by construction (tensor sizes grow with the input dims for
 * the models kiln builds); otherwise a fresh plan is packed, and when that cannot fit either,
 * runs with those shapes allocate per tensor (slower, never wrong). */
kiln_status rt_state_reserve_memory(rt_state *s, const rt_mem_slot *slots, int n, size_t arena_bytes);
/* Called after every top-level node that ran successfully (builder: tactic timing). The
 * inputs/outputs are borrowed for the duration of the call. */
typedef void (*rt_node_observer)(void *arg, int node, core_value *const *inputs, core_value *const *outputs);
void rt_state_set_observer(rt_state *s, rt_node_observer fn, void *arg);

/* Evaluate one node of graph g on the given input values (borrowed, NULL = omitted);
 * outputs[k] receive new references for every output the node names. Used by constant
 * folding. */
kiln_status rt_node_eval(const ir_graph *g, const ir_node *nd, core_value *const *inputs,
                         core_value **outputs);
/* Same, with the kernel splitting its work over `pool` (NULL = one thread). */
kiln_status rt_node_eval_pool(const ir_graph *g, const ir_node *nd, struct core_threadpool *pool,
                              core_value *const *inputs, core_value **outputs);
#endif
