/* cpu_ops_util.h — helpers shared by the CPU backend's operator wrappers (cpu_ops.c,
 * cpu_ops_nhwc.c): attribute decoding, dtype checks, cacheability, conv geometry. */
#ifndef KILN_CPU_OPS_UTIL_H
#define KILN_CPU_OPS_UTIL_H

#include "cpu/cpu.h"
#include "cpu/nhwc.h"
#include "ops/ops.h"

/* Reads `activation` / `activation_params`; false when the activation is unknown. */
bool cpu_ops_activation(const ops_ctx *c, cpu_epilogue *ep);
/* The same from attributes `name` / `params` (ConvNhwcExpandDw's expand_activation). */
bool cpu_ops_activation_named(const ops_ctx *c, const char *name, const char *params, cpu_epilogue *ep);
/* t is absent or float32. */
bool cpu_ops_f32(const core_tensor *t);
/* Input i looks like a weight worth keeping packed in the weight cache. */
bool cpu_ops_cacheable(const ops_ctx *c, int i);
/* KILN_ERR_OUT_OF_MEMORY with the node named. */
kiln_status cpu_ops_oom(const ops_ctx *c);
/* The 2-D geometry of a 1-D or 2-D Conv node with channels-first x [N, C, (H,) W] and
 * weights w [M, C/G, (KH,) KW]; false for anything the fast path leaves to the reference
 * kernel (which also reports the errors). */
bool cpu_ops_conv_geom(const ops_ctx *c, const core_tensor *x, const core_tensor *w, cpu_conv2d *g);
/* The 1-D or 2-D MaxPool/AveragePool geometry of a node with channels-first x [N, C, (H,) W]
 * as the reference kernel derives it (pads, auto_pad, ceil_mode); false for anything the fast
 * kernels leave to the reference, including windows that see no input element (cpu/pool.c). */
bool cpu_pool2d_geom(const ops_ctx *c, const core_tensor *x, cpu_pool2d *g);

#endif
