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

/* Everything between import and execution (pipeline.c): expand gradients, resolve kernels
 * (rt_graph_prepare), fold constants and infer shapes, then run the optimization passes
 * below in order, repeated until none rewrites anything (a few rounds at most). The
 * optimized graph computes the same outputs within float rounding. */
kiln_status opt_prepare_model(ir_model *m);
/* Same; optimize = false stops after constant folding (the graph as written, for debugging
 * and for comparing against the optimized graph). */
kiln_status opt_prepare_model_ex(ir_model *m, bool optimize);

/* Optimizations on/off process-wide. Default: on, unless KILN_OPT=0 is in the environment
 * (read once). Off, opt_prepare_model still expands gradients and folds constants. */
void opt_set_enabled(bool enabled);
bool opt_enabled(void);
/* Per-pass statistics on stderr after each opt_prepare_model (KILN_OPT_VERBOSE=1). */
void opt_set_verbose(bool verbose);

/* Rewrite counts of the last opt_prepare_model on this thread, by pass name (0 for a name
 * that is not a pass); opt_pass_count/opt_pass_name enumerate the passes in order. */
int opt_pass_count(void);
const char *opt_pass_name(int i);
int opt_last_rewrites(const char *pass);

/* The passes; each works on the top-level graph (subgraphs are left as written), adds the
 * number of rewrites it made to *n, and leaves dead nodes for the pass manager to compact. */
kiln_status opt_eliminate_noop(ir_graph *g, int *n);          /* eliminate_noop.c */
kiln_status opt_eliminate_dead(ir_graph *g, int *n);          /* eliminate_dead.c */
kiln_status opt_cancel_transpose_reshape(ir_graph *g, int *n); /* cancel_transpose_reshape.c */
kiln_status opt_fold_batchnorm(ir_graph *g, int *n);          /* fold_batchnorm.c */
kiln_status opt_fuse_layernorm(ir_graph *g, int *n);          /* fuse_layernorm.c */
kiln_status opt_fuse_attention(ir_graph *g, int *n);          /* fuse_attention.c */
kiln_status opt_update_concat_slices(ir_graph *g, int *n);     /* update_concat_slices.c: Concat of Slices -> ChannelUpdate */
kiln_status opt_fuse_csp_nhwc(ir_graph *g, int *n);           /* fuse_csp_nhwc.c: Split/Concat of CSP blocks kept in one buffer */
kiln_status opt_fuse_expand_dw(ir_graph *g, int *n);          /* fuse_expand_dw.c: 1x1 -> depthwise ConvNhwc pairs */
kiln_status opt_hoist_activation(ir_graph *g, int *n);        /* hoist_activation.c: act above Reshape/Transpose to its Conv */
kiln_status opt_fuse_conv_act(ir_graph *g, int *n);           /* fuse_conv_act.c: Conv/Gemm/MatMul + bias + act */
kiln_status opt_merge_sibling_convs(ir_graph *g, int *n);     /* merge_sibling_convs.c */
kiln_status opt_fuse_elementwise(ir_graph *g, int *n);        /* fuse_elementwise.c */
kiln_status opt_layout_nhwc(ir_graph *g, int *n);             /* layout_nhwc.c */
/* The channels-last layout pass on/off (default on; KILN_LAYOUT=nchw turns it off). */
void opt_set_layout_nhwc(bool on);
bool opt_layout_nhwc_enabled(void);
kiln_status opt_elide_concat(ir_graph *g, int *n);            /* elide_concat.c (analysis only) */

#endif
