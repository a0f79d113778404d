/* fused.h — the contract of kiln's internal fused ops (domain "ai.kiln"), created by the
 * graph optimizer (src/opt/) and run by src/ops/fused.c (reference) and backend kernels.
 *
 * FusedConv    inputs X, W, B?, Z?; attributes of Conv (auto_pad, dilations, group,
 *              kernel_shape, pads, strides) plus `activation` (string, absent or "" = none)
 *              and `activation_params` (floats). Y = act(Conv(X, W) + B + Z); Z (the
 *              residual) has exactly Y's shape.
 * FusedGemm    inputs A, B, C?; attributes of Gemm (alpha, beta, transA, transB) plus
 *              activation / activation_params. Y = act(alpha * A' B' + beta * C).
 * FusedMatMul  inputs A, B, bias?; bias is 1-D with as many values as Y's last dim.
 *              Y = act(MatMul(A, B) + bias), numpy batch broadcasting as MatMul.
 * activation   "Relu", "Clip" (params min, max), "LeakyRelu" (params alpha; x >= 0 ? x :
 *              alpha x), "Sigmoid", "Silu" (x sigmoid(x)), "HardSwish" (x clamp(x/6 + 1/2,
 *              0, 1)), "Gelu" (0.5 x (1 + erf(x / sqrt 2))), "GeluTanh" (0.5 x (1 +
 *              tanh(sqrt(2/pi) (x + 0.044715 x^3)))).
 * ElementwiseChain  input X (float32); attributes `opcodes` (ints, FUSED_EW_* below) and
 *              `constants` (floats; each opcode consumes FUSED_EW_NCONST of them in order).
 *              Y = op_n(...op_1(X)), each step rounded to float as the unfused ops would.
 * Attention    inputs Q [..., Sq, D], K [..., Sk, D], V [..., Sk, Dv], mask? (additive,
 *              broadcastable to [..., Sq, Sk]); attribute `scale` (float, default 1).
 *              Y = Softmax(scale * Q K^T + mask, last axis) V, batch dims broadcast.
 * LayerNormalization (ai.kiln)  as the ONNX opset-17 op, for models imported below 17.
 *
 * Channels-last ops (created by the layout pass, src/opt/layout_nhwc.c). Tensors named NHWC
 * are [N, spatial..., C]; each op is defined as its channels-first twin with every NHWC
 * input transposed to [N, C, spatial...] and the result transposed back:
 * ConvNhwc     inputs X (NHWC), W ([M, C/G, k...], unchanged), B?, Z? (NHWC); attributes and
 *              semantics of FusedConv. Y NHWC. Optional attribute x_channel_offset (int): X
 *              may have more channels than the convolution takes; it reads channels
 *              [x_channel_offset, x_channel_offset + C) (C = W's dim 1 x group).
 * ChannelUpdate  inputs X [..., Cx], P_1 .. P_n [..., Cp_i] (X's leading dims, n <= 8);
 *              attributes offsets (ints, one per P; or offset, one int for all) and mode
 *              ("set" or "add"). Y = X with Y[..., off_i + k] = P_i[..., k] (set) or
 *              += P_i[..., k] (add), k < Cp_i, in input order. Any rank: the last axis is
 *              the "channel". Used where a Concat would copy a whole tensor to change a few
 *              channels of it: the CSP rewrite (fuse_csp_nhwc) and Concats of Slices of one
 *              tensor (update_concat_slices); the CPU kernel works in place when X dies.
 * ConvNhwcExpandDw  inputs X (NHWC), W, B?, Z (must be absent), W1 ([E, C, 1, 1]), B1?;
 *              attributes of ConvNhwc plus expand_activation / expand_activation_params.
 *              T = act1(Conv1x1(X, W1) + B1) (NHWC), Y = ConvNhwc(T, W, B) with the node's
 *              attributes: a MobileNet inverted-residual "expand 1x1 -> depthwise" pair, which
 *              the CPU kernel computes in row bands without materialising T.
 * ConvNhwcMbConv  inputs X, W, B?, Z?, W1?, B1?, W3 ([P, E, 1, 1]), B3?; attributes of
 *              ConvNhwcExpandDw plus project_activation / project_activation_params.
 *              T = W1 ? act1(Conv1x1(X, W1) + B1) : X, U = ConvNhwc(T, W, B) (node's
 *              attributes, no residual), Y = act3(Conv1x1(U, W3) + B3 + Z): a whole
 *              inverted-residual block (expand, depthwise, projection + skip).
 * MaxPoolNhwc, AveragePoolNhwc  input X (NHWC); the attributes of MaxPool / AveragePool
 *              (storage_order 0); one output, Y NHWC.
 * GlobalMaxPoolNhwc, GlobalAveragePoolNhwc  X NHWC -> Y [N, 1..., C].
 */
#ifndef KILN_OPS_FUSED_H
#define KILN_OPS_FUSED_H

#include "ops/ops.h"

/* ChannelUpdate: at most this many updates; the offsets of inputs 1..n as the node's
 * attributes give them, checked against X (false with the error set). */
#define FUSED_CU_MAX 8
bool fused_channel_update_offsets(ops_ctx *c, const core_tensor *x, int64_t *offs, int n);

/* ElementwiseChain opcodes; c is the step's constant. Append-only. */
enum fused_ew_op {
    FUSED_EW_ADD = 0,     /* x + c */
    FUSED_EW_SUB = 1,     /* x - c */
    FUSED_EW_RSUB = 2,    /* c - x */
    FUSED_EW_MUL = 3,     /* x * c */
    FUSED_EW_DIV = 4,     /* x / c */
    FUSED_EW_RDIV = 5,    /* c / x */
    FUSED_EW_POW = 6,     /* x ^ c */
    FUSED_EW_RPOW = 7,    /* c ^ x */
    FUSED_EW_MAX = 8,     /* max(x, c) */
    FUSED_EW_MIN = 9,     /* min(x, c) */
    FUSED_EW_RELU = 10,
    FUSED_EW_SIGMOID = 11,
    FUSED_EW_TANH = 12,
    FUSED_EW_EXP = 13,
    FUSED_EW_LOG = 14,
    FUSED_EW_SQRT = 15,
    FUSED_EW_ABS = 16,
    FUSED_EW_NEG = 17,
    FUSED_EW_RECIPROCAL = 18,
    FUSED_EW_FLOOR = 19,
    FUSED_EW_CEIL = 20,
    FUSED_EW_ROUND = 21,  /* half to even */
    FUSED_EW_ERF = 22,
    FUSED_EW_SIN = 23,
    FUSED_EW_COS = 24,
    FUSED_EW_SOFTPLUS = 25,
    FUSED_EW_CLIP = 26,   /* 2 constants: min, max */
    FUSED_EW_LEAKY_RELU = 27, /* alpha */
    FUSED_EW_ELU = 28,        /* alpha */
    FUSED_EW_HARD_SIGMOID = 29, /* alpha, beta: max(0, min(1, alpha x + beta)) */
    FUSED_EW_HARD_SWISH = 30,
    FUSED_EW_SILU = 31,
    FUSED_EW_GELU = 32,
    FUSED_EW_GELU_TANH = 33,
    FUSED_EW_COUNT_
};

/* Constants consumed by opcode op (0, 1 or 2). */
static inline int fused_ew_nconst(int op)
{
    if (op >= FUSED_EW_ADD && op <= FUSED_EW_MIN) return 1;
    if (op == FUSED_EW_CLIP || op == FUSED_EW_HARD_SIGMOID) return 2;
    if (op == FUSED_EW_LEAKY_RELU || op == FUSED_EW_ELU) return 1;
    return 0;
}

#endif
