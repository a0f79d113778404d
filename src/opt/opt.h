/* opt.h — graph optimization passes (each pass in its own file). */
#ifndef KILN_OPT_H
#define KILN_OPT_H

#include "ir/ir.h"

/* Evaluate at load time every deterministic node whose inputs are all constants (shape
 * computations such as Shape->Gather->Concat->Reshape on static dims), replacing its
 * outputs by constants and dropping the node. Kernels must be resolved
 * (rt_graph_prepare). Recurses into subgraphs. */
kiln_status opt_fold_constants(ir_graph *g);

/* Replace ai.onnx.preview.training.Gradient nodes by their backward graph. */
kiln_status opt_expand_gradients(ir_graph *g);

/* Everything between import and execution: expand gradients, resolve kernels
 * (rt_graph_prepare), fold constants and infer shapes. */
kiln_status opt_prepare_model(ir_model *m);

#endif
