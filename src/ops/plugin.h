/* plugin.h — the registry of user-defined ops (kiln_plugin_register, plugin.c): how the
 * kernel lookup, shape inference and the network builder reach them. */
#ifndef KILN_OPS_PLUGIN_H
#define KILN_OPS_PLUGIN_H

#include "ops/ops.h"

/* The schema (a trampoline kernel calling the plugin's run callback) registered for
 * (domain, op_type), or NULL. Lock-free; registry.c consults it when no built-in kernel
 * exists. */
const ops_schema *ops_plugin_find(const char *domain, const char *op_type);
/* Whether any plugin is registered (cheap). */
bool ops_plugin_any(void);
/* Type the outputs of g's plugin nodes (top level) with their infer callbacks, interleaved
 * with ir_graph_infer so that each sees its inputs' types. No-op without plugin nodes.
 * Fails with the plugin's message when an infer callback does. */
kiln_status ops_plugin_infer_graph(ir_graph *g);
/* Same for one node of g (its inputs typed already). No-op for a non-plugin node or one
 * without an infer callback. */
kiln_status ops_plugin_infer_node(ir_graph *g, const ir_node *nd);

#endif
