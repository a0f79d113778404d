/* grad.c — internal ops (domain ai.kiln) emitted by opt/expand_gradient.c: OnesLike,
 * ZerosLike, SumToShape (undo broadcasting) and the activation backward kernels. */
#include "ops/ops.h"
#include "ops/util.h"
#include <string.h>

static kiln_status fill_like(ops_ctx *c, double v)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "input missing");
    core_tensor *y = ops_output(c, 0, x->dtype, x->ndim, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < y->numel; i++) core_store_f64(y->dtype, y->data, i, v);
    return KILN_OK;
}

static kiln_status ones_like_run(ops_ctx *c) { return fill_like(c, 1.0); }
static kiln_status zeros_like_run(ops_ctx *c) { return fill_like(c, 0.0); }

/* y = sum of g over the axes where `like` was broadcast, shaped like `like`. */
static kiln_status sum_to_shape_run(ops_ctx *c)
{
    const core_tensor *gt = ops_input(c, 0), *like = ops_input(c, 1);
    if (!gt || !like) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "inputs missing");
    int64_t bdims[KILN_MAX_DIMS];
    int nb;
    if (!ops_broadcast_shape(gt->ndim, gt->dims, like->ndim, like->dims, &nb, bdims) || nb != gt->ndim)
        return ops_error(c, KILN_ERR_SHAPE, "gradient shape does not broadcast from the input shape");
    core_tensor *y = ops_output(c, 0, gt->dtype, like->ndim, like->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    int64_t st[KILN_MAX_DIMS], idx[KILN_MAX_DIMS] = {0};
    ops_broadcast_strides(like->ndim, like->dims, gt->ndim, gt->dims, st);
    for (int64_t i = 0; i < y->numel; i++) core_store_f64(y->dtype, y->data, i, 0);
    for (int64_t i = 0; i < gt->numel; i++) {
        int64_t off = 0;
        for (int d = 0; d < gt->ndim; d++) off += idx[d] * st[d];
        core_store_f64(y->dtype, y->data, off, core_load_f64(y->dtype, y->data, off) + core_load_f64(gt->dtype, gt->data, i));
        ops_index_next(gt->ndim, gt->dims, idx);
    }
    return KILN_OK;
}

/* Backward of y = f(x) given dy and y: Relu dy*(y>0), Sigmoid dy*y*(1-y), Tanh dy*(1-y^2),
 * Exp dy*y. */
static kiln_status act_grad(ops_ctx *c, int kind)
{
    const core_tensor *dy = ops_input(c, 0), *y = ops_input(c, 1);
    if (!dy || !y || dy->numel != y->numel) return ops_error(c, KILN_ERR_SHAPE, "dy and y differ in size");
    core_tensor *dx = ops_output(c, 0, dy->dtype, dy->ndim, dy->dims);
    if (!dx) return KILN_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < dx->numel; i++) {
        double g = core_load_f64(dy->dtype, dy->data, i), v = core_load_f64(y->dtype, y->data, i), r;
        switch (kind) {
        case 0: r = v > 0 ? g : 0; break;
        case 1: r = g * v * (1 - v); break;
        case 2: r = g * (1 - v * v); break;
        default: r = g * v; break;
        }
        core_store_f64(dx->dtype, dx->data, i, r);
    }
    return KILN_OK;
}

static kiln_status relu_grad_run(ops_ctx *c) { return act_grad(c, 0); }
static kiln_status sigmoid_grad_run(ops_ctx *c) { return act_grad(c, 1); }
static kiln_status tanh_grad_run(ops_ctx *c) { return act_grad(c, 2); }
static kiln_status exp_grad_run(ops_ctx *c) { return act_grad(c, 3); }

const ops_schema ops_table_grad[] = {
    {"OnesLike", "ai.kiln", 1, ones_like_run},
    {"ZerosLike", "ai.kiln", 1, zeros_like_run},
    {"SumToShape", "ai.kiln", 1, sum_to_shape_run},
    {"ReluGrad", "ai.kiln", 1, relu_grad_run},
    {"SigmoidGrad", "ai.kiln", 1, sigmoid_grad_run},
    {"TanhGrad", "ai.kiln", 1, tanh_grad_run},
    {"ExpGrad", "ai.kiln", 1, exp_grad_run},
    OPS_TABLE_END
};
