/* nhwc.h — FP32 kernels on the channels-last (NHWC) activation layout.
 *
 * The graph optimizer (src/opt/layout_nhwc.c) turns convolution regions of a model into NHWC:
 * tensors inside a region are real NHWC tensors ([N, H, W, C] shapes), the ai.kiln ops below
 * run on them, and Transposes convert at the region's edges. In NHWC a convolution is a GEMM
 * with M = output pixels, N = output channels, K = KH*KW*C/G that needs no im2col (an
 * indirection buffer points at input pixels), depthwise convolution and pooling vectorise
 * over channels, and Winograd transforms vectorise over channels.
 *
 * Pixel strides. Element (n, h, w, c) of x is x[((n*H + h)*W + w)*xs + c] with xs >= C the
 * pixel stride (xs == C: dense). y and resid likewise with ys, rs >= M. Strides larger than
 * the channel count let a kernel read a channel slice of a wider tensor or write into a
 * channel slice of a concat buffer. resid may not alias y (except resid == y with rs == ys,
 * which must work: each output element is read before it is written by the same thread).
 *
 * Weights stay in the ONNX layout [M, C/G, KH, KW]; kernels repack them (through the weight
 * cache, cpu_cache_get, when `cache` is true) into whatever they need.
 *
 * All functions: KILN_OK, or KILN_ERR_OUT_OF_MEMORY (error set) when scratch cannot be had,
 * or KILN_ERR_UNSUPPORTED (no error text needed) when the geometry is not one the function
 * handles — the caller then tries the next algorithm. They never abort on any geometry. */
#ifndef KILN_CPU_NHWC_H
#define KILN_CPU_NHWC_H

#include "cpu/cpu.h"

/* y = act(conv(x, w) + bias + resid). g: the same geometry struct as the NCHW kernels (N, C,
 * H, W input; M, OH, OW output; G groups; KH, KW, SH, SW, DH, DW, PT, PL). bias [M] or NULL,
 * resid NULL or like y. `ep` carries only the activation (act, act_a, act_b; its bias/resid
 * fields are ignored). algo: CPU_CONV_AUTO (pick), CPU_CONV_GEMM (indirect GEMM, any group
 * count), CPU_CONV_DW (depthwise, G == C == M), CPU_CONV_WINO (Winograd, 3x3 stride 1
 * dilation 1, G == 1); an algorithm that does not fit falls back to the indirect GEMM.
 * Implemented in conv_nhwc.c (dispatcher + indirect GEMM). */
kiln_status cpu_conv2d_nhwc_f32(const cpu_conv2d *g, const float *x, int64_t xs, const float *w,
                                const float *bias, const float *resid, int64_t rs, float *y,
                                int64_t ys, const cpu_epilogue *ep, int algo, bool cache,
                                core_threadpool *pool);

/* The three algorithms behind it (same contract; each may return KILN_ERR_UNSUPPORTED). */
kiln_status cpu_conv2d_nhwc_igemm_f32(const cpu_conv2d *g, const float *x, int64_t xs,
                                      const float *w, const float *bias, const float *resid,
                                      int64_t rs, float *y, int64_t ys, const cpu_epilogue *ep,
                                      bool cache, core_threadpool *pool);      /* conv_nhwc.c */
kiln_status cpu_dwconv2d_nhwc_f32(const cpu_conv2d *g, const float *x, int64_t xs,
                                  const float *w, const float *bias, const float *resid,
                                  int64_t rs, float *y, int64_t ys, const cpu_epilogue *ep,
                                  bool cache, core_threadpool *pool);          /* dwconv_nhwc.c */
kiln_status cpu_conv2d_nhwc_winograd_f32(const cpu_conv2d *g, const float *x, int64_t xs,
                                         const float *w, const float *bias, const float *resid,
                                         int64_t rs, float *y, int64_t ys, const cpu_epilogue *ep,
                                         bool cache, core_threadpool *pool); /* winograd_nhwc.c */
/* Geometry tests (cheap, no allocation). */
bool cpu_conv2d_nhwc_dw_eligible(const cpu_conv2d *g);       /* dwconv_nhwc.c */
bool cpu_conv2d_nhwc_winograd_eligible(const cpu_conv2d *g); /* winograd_nhwc.c */
/* Whether the heuristic (algo AUTO) would pick Winograd for g on this CPU. */
bool cpu_conv2d_nhwc_winograd_preferred(const cpu_conv2d *g); /* winograd_nhwc.c */

/* ---- pooling (pool_nhwc.c) ----------------------------------------------------------------
 * Window pooling over H, W of x [N, H, W, C] (dense) into y [N, OH, OW, C] (dense). The
 * geometry (pads, output size incl. ceil_mode) is resolved by the caller; taps outside
 * [0, H) x [0, W) are skipped. AVG divides by the number of taps inside the image, or by the
 * number inside the padded input ([-PT, H + PB) x [-PL, W + PR)) when count_include_pad. */
#ifndef KILN_CPU_POOL_KINDS
#define KILN_CPU_POOL_KINDS
enum { CPU_POOL_MAX = 0, CPU_POOL_AVG = 1 }; /* also in cpu/cpu_misc.h */
#endif
typedef struct cpu_pool2d {
    int64_t N, C, H, W, OH, OW, KH, KW, SH, SW, DH, DW, PT, PL, PB, PR;
} cpu_pool2d;
kiln_status cpu_pool2d_nhwc_f32(const cpu_pool2d *g, int kind, bool count_include_pad,
                                const float *x, float *y, core_threadpool *pool);
/* Global pooling: x [N, HW, C] -> y [N, C] (max or mean over the HW pixels). */
kiln_status cpu_global_pool_nhwc_f32(int kind, int64_t N, int64_t HW, int64_t C,
                                     const float *x, float *y, core_threadpool *pool);

/* ---- fused expand 1x1 -> depthwise (expand_dw_nhwc.c) --------------------------------------
 * y = act2(dw(act1(conv1x1(x) + b1)) + b2) without materialising the 1x1's output.
 * g1: the 1x1 conv (N, C, H, W -> M = E; KH = KW = 1, stride 1, pad 0, G = 1);
 * g2: the depthwise conv on its output (N, E, H, W -> E, OH, OW; G = E; any K, stride,
 * dilation, pads). ep1/ep2 carry only the activations. x pixel stride xs >= C; y pixel
 * stride ys >= E. w1 [E, C, 1, 1], w2 [E, 1, KH, KW] in the ONNX layout; b1/b2 [E] or NULL.
 * KILN_ERR_UNSUPPORTED when the pair is not one it handles (then the caller runs the two
 * convolutions separately), OOM as usual. */
bool cpu_expand_dw_nhwc_eligible(const cpu_conv2d *g1, const cpu_conv2d *g2);
kiln_status cpu_expand_dw_nhwc_f32(const cpu_conv2d *g1, const float *x, int64_t xs,
    const float *w1, const float *b1, const cpu_epilogue *ep1, const cpu_conv2d *g2,
    const float *w2, const float *b2, const cpu_epilogue *ep2, float *y, int64_t ys,
    bool cache, core_threadpool *pool);

/* ---- fused inverted-residual block (expand_dw_nhwc.c) ---------------------------------------
 * t = g1 ? act1(conv1x1(x) + b1) : x;  u = act2(dw(t) + b2);  y = act3(conv1x1(u; E -> P) +
 * b3 + resid), in row bands: neither t nor u is written to memory. g1 NULL: no expansion
 * (t = x, E = C; w1, b1, ep1 unused). g1, g2 as for cpu_expand_dw_nhwc_f32; g3: the
 * projection (N, E, OH, OW -> M = P; 1x1, stride 1, pad 0, G 1), w3 [P, E, 1, 1], b3 [P] or
 * NULL. resid NULL or [N, OH, OW, P] with pixel stride rs >= P (may equal y with rs == ys:
 * read before written). x pixel stride xs >= C, y pixel stride ys >= P. ep1/ep2/ep3 carry
 * only the activations. KILN_ERR_UNSUPPORTED when it does not handle the geometry (the
 * caller then runs the pieces separately), OOM as usual. */
bool cpu_mbconv_nhwc_eligible(const cpu_conv2d *g1, const cpu_conv2d *g2, const cpu_conv2d *g3);
kiln_status cpu_mbconv_nhwc_f32(const cpu_conv2d *g1, const float *x, int64_t xs,
    const float *w1, const float *b1, const cpu_epilogue *ep1,
    const cpu_conv2d *g2, const float *w2, const float *b2, const cpu_epilogue *ep2,
    const cpu_conv2d *g3, const float *w3, const float *b3, const cpu_epilogue *ep3,
    const float *resid, int64_t rs, float *y, int64_t ys, bool cache, core_threadpool *pool);

#endif /* KILN_CPU_NHWC_H */
