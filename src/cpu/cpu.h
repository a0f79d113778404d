/* cpu.h — the fast FP32 CPU backend: a packed, cache-blocked SGEMM with a fused epilogue,
 * convolutions built on it (direct 1x1, implicit im2col, depthwise, Winograd), the
 * microkernel dispatch table and a weight-packing cache. */
#ifndef KILN_CPU_H
#define KILN_CPU_H

#include "core/core.h"
#include "core/threadpool.h"
#include <stddef.h>

/* ---- activations fused into kernel epilogues ------------------------------------------- */
typedef enum cpu_act {
    CPU_ACT_NONE = 0,
    CPU_ACT_RELU,
    CPU_ACT_CLIP,      /* min(max(x, a), b) */
    CPU_ACT_LEAKY,     /* x >= 0 ? x : a * x */
    CPU_ACT_SIGMOID,
    CPU_ACT_SILU,      /* x * sigmoid(x) */
    CPU_ACT_HARDSWISH, /* x * clamp(x / 6 + 0.5, 0, 1) */
    CPU_ACT_GELU,      /* 0.5 x (1 + erf(x / sqrt 2)) */
    CPU_ACT_GELU_TANH  /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) */
} cpu_act;

/* What happens to an output tile once its sum is complete:
 *   y = act(alpha * sum + bias + resid)
 * bias is per row (bias[i]) or per column (bias[j]); resid is an M x N matrix with row stride
 * ld_resid that must not alias the output. For microkernels the pointers are already offset
 * to the tile's first row/column. */
typedef struct cpu_epilogue {
    float alpha;
    const float *bias;
    int bias_per_col;
    const float *resid;
    int64_t ld_resid;
    cpu_act act;
    float act_a, act_b;
} cpu_epilogue;

/* An epilogue that does nothing (alpha 1). */
cpu_epilogue cpu_epilogue_none(void);
/* Scalar reference of the activation (libm); also used for edge cases. */
float cpu_act_scalar(float x, cpu_act act, float a, float b);
/* In-place activation over n contiguous floats (dispatched: AVX2 when available). */
void cpu_act_apply(float *x, size_t n, cpu_act act, float a, float b);

/* ---- microkernels and their dispatch ----------------------------------------------------
 * The GEMM tile (MR rows of A per packed panel, NR columns of B per packed panel) depends on
 * the ISA: 6x16 for AVX2 and scalar, 14x32 for AVX-512. Packed buffers are only valid for the
 * layout they were made with: the current one is cpu_ukernels_get()->gemm_mr / gemm_nr, and
 * the weight cache keys include it. CPU_GEMM_MR / CPU_GEMM_NR name the AVX2/scalar layout. */
#define CPU_GEMM_MR 6
#define CPU_GEMM_NR 16
#define CPU_GEMM_MR_AVX512 14
#define CPU_GEMM_NR_AVX512 32
#define CPU_GEMM_MR_MAX 16
#define CPU_GEMM_NR_MAX 32

/* Flags of a GEMM microkernel call. */
#define CPU_UK_LOAD 1u  /* add the partial sum already in C (later K blocks) */
#define CPU_UK_FINAL 2u /* last K block: apply the epilogue */

/* C[mr x nr] (+)= Apanel[kc x MR] * Bpanel[kc x NR], mr <= MR, nr <= NR. a holds MR floats
 * per k step, b holds NR floats per k step (zero-padded past mr / nr). */
typedef void (*cpu_f32_gemm_ukernel_fn)(size_t mr, size_t nr, size_t kc, const float *a,
                                        const float *b, float *c, size_t ldc, unsigned flags,
                                        const cpu_epilogue *ep);
/* In-place activation over n floats. */
typedef void (*cpu_f32_vact_fn)(float *x, size_t n, cpu_act act, float a, float b);
/* Depthwise 2-D convolution of one channel plane (see ukernels/f32-dwconv). */
typedef struct cpu_dwconv_params {
    int64_t H, W, OH, OW, KH, KW, SH, SW, DH, DW, PT, PL;
} cpu_dwconv_params;
typedef void (*cpu_f32_dwconv_ukernel_fn)(const cpu_dwconv_params *p, const float *x,
                                          const float *w, float bias, float *y,
                                          const float *resid, cpu_act act, float a, float b);

typedef struct cpu_ukernels {
    const char *isa; /* "avx512", "avx2_fma", "scalar" */
    int gemm_mr, gemm_nr; /* the f32_gemm tile and packed-panel layout */
    cpu_f32_gemm_ukernel_fn f32_gemm;
    cpu_f32_vact_fn f32_vact;
    cpu_f32_dwconv_ukernel_fn f32_dwconv; /* any KxK, stride, dilation */
} cpu_ukernels;

/* The table for this CPU, filled once (thread-safe). */
const cpu_ukernels *cpu_ukernels_get(void);
/* Force the scalar fallback on (for tests) or back to the detected ISA. */
void cpu_ukernels_force_scalar(bool on);
/* Force a table by ISA name ("avx512", "avx2" or "avx2_fma", "scalar"; NULL: back to the
 * detected one). False (nothing changed) when this CPU lacks the ISA. For tests and benches:
 * call it only while no kernel runs. The environment variable KILN_CPU_ISA=avx512|avx2|scalar
 * caps the detected ISA the same way. */
bool cpu_ukernels_force_isa(const char *isa);
/* The ISAs this CPU can run, best first (names as in cpu_ukernels.isa); *n receives the count. */
const char *const *cpu_ukernels_isas(int *n);

void cpu_f32_gemm_ukernel_6x16__scalar(size_t mr, size_t nr, size_t kc, const float *a,
                                       const float *b, float *c, size_t ldc, unsigned flags,
                                       const cpu_epilogue *ep);
void cpu_f32_gemm_ukernel_6x16__avx2_fma(size_t mr, size_t nr, size_t kc, const float *a,
                                         const float *b, float *c, size_t ldc, unsigned flags,
                                         const cpu_epilogue *ep);
void cpu_f32_gemm_ukernel_14x32__avx512(size_t mr, size_t nr, size_t kc, const float *a,
                                        const float *b, float *c, size_t ldc, unsigned flags,
                                        const cpu_epilogue *ep);
void cpu_f32_vact__scalar(float *x, size_t n, cpu_act act, float a, float b);
void cpu_f32_vact__avx512(float *x, size_t n, cpu_act act, float a, float b);
void cpu_f32_vact__avx2_fma(float *x, size_t n, cpu_act act, float a, float b);
void cpu_f32_dwconv_ukernel__scalar(const cpu_dwconv_params *p, const float *x, const float *w,
                                    float bias, float *y, const float *resid, cpu_act act,
                                    float a, float b);
void cpu_f32_dwconv_ukernel__avx2_fma(const cpu_dwconv_params *p, const float *x,
                                      const float *w, float bias, float *y, const float *resid,
                                      cpu_act act, float a, float b);
void cpu_f32_dwconv_ukernel__avx512(const cpu_dwconv_params *p, const float *x,
                                    const float *w, float bias, float *y, const float *resid,
                                    cpu_act act, float a, float b);

/* ---- SGEMM ------------------------------------------------------------------------------
 * Packed layouts (whole matrices, made once for weights), with MR x NR the current tile
 * (cpu_ukernels_get()->gemm_mr / gemm_nr):
 *   A (M x K): ceil(M/MR) panels of K*MR floats, panel p holds rows MR*p.., k-major.
 *   B (K x N): ceil(N/NR) panels of K*NR floats, panel p holds columns NR*p.., k-major.
 * Padding rows/columns are zero. A buffer packed under one table must be multiplied under
 * the same table (cpu_sgemm uses the current one). */
size_t cpu_sgemm_packed_a_floats(int64_t M, int64_t K);
size_t cpu_sgemm_packed_b_floats(int64_t K, int64_t N);
/* A element (i, k) is a[i*rsa + k*csa]; B element (k, j) is b[k*rsb + j*csb]. */
void cpu_sgemm_pack_a_into(int64_t M, int64_t K, const float *a, int64_t rsa, int64_t csa,
                           float *dst);
void cpu_sgemm_pack_b_into(int64_t K, int64_t N, const float *b, int64_t rsb, int64_t csb,
                           float *dst);
/* malloc'd (64-byte aligned, free with free()); NULL on OOM. */
float *cpu_sgemm_pack_a(int64_t M, int64_t K, const float *a, int64_t rsa, int64_t csa);
float *cpu_sgemm_pack_b(int64_t K, int64_t N, const float *b, int64_t rsb, int64_t csb);

/* An implicit-im2col B operand for convolution of one image/group: B(k, n) with
 * k = (c*KH + ky)*KW + kx and n = oy*OW + ox is x[c][oy*SH - PT + ky*DH][ox*SW - PL + kx*DW]
 * (zero outside the image). x is C planes of H*W floats with plane stride cstride. */
typedef struct cpu_im2col {
    const float *x;
    int64_t cstride;
    int64_t C, H, W, OH, OW, KH, KW, SH, SW, DH, DW, PT, PL;
} cpu_im2col;

enum { CPU_B_MATRIX = 0, CPU_B_PACKED = 1, CPU_B_IM2COL = 2 };

typedef struct cpu_sgemm_args {
    int64_t M, N, K;
    const float *a; /* unpacked A (used when a_packed is NULL) */
    int64_t rsa, csa;
    const float *a_packed; /* or NULL */
    int b_kind;            /* CPU_B_* */
    const float *b;        /* MATRIX: b[k*rsb + j*csb]; PACKED: packed layout above */
    int64_t rsb, csb;
    cpu_im2col im2col;     /* IM2COL */
    float *c;              /* output, row stride ldc */
    int64_t ldc;
    cpu_epilogue ep;
} cpu_sgemm_args;

/* C = act(alpha * A*B + bias + resid), threaded over M and N tiles of `pool` (NULL = the
 * calling thread only). KILN_ERR_OUT_OF_MEMORY (error set) when scratch cannot be had. */
kiln_status cpu_sgemm(const cpu_sgemm_args *args, core_threadpool *pool);
/* The simple form: C[M,N] = act(alpha * op(A) op(B) + ...) on strided matrices. */
kiln_status cpu_sgemm_simple(int64_t M, int64_t N, int64_t K, const float *a, int64_t rsa,
                             int64_t csa, const float *b, int64_t rsb, int64_t csb, float *c,
                             int64_t ldc, const cpu_epilogue *ep, core_threadpool *pool);

/* ---- convolution (NCHW, 2-D) ------------------------------------------------------------ */
typedef struct cpu_conv2d {
    int64_t N, C, H, W;     /* input */
    int64_t M, OH, OW;      /* output channels and size */
    int64_t G;              /* groups */
    int64_t KH, KW, SH, SW, DH, DW, PT, PL;
} cpu_conv2d;

enum {
    CPU_CONV_AUTO = 0,   /* pick the best algorithm */
    CPU_CONV_GEMM = 1,   /* direct 1x1 / implicit im2col GEMM */
    CPU_CONV_DW = 2,     /* depthwise kernel (group == C == M) */
    CPU_CONV_WINO = 3    /* Winograd F(4x4, 3x3) */
};

/* y[N,M,OH,OW] = act(conv(x, w) + bias + resid). w is [M, C/G, KH, KW]; bias [M] or NULL;
 * resid like y or NULL. `cache` lets packed/transformed weights be kept across calls (see
 * cpu_cache_*): pass false when w is not a constant. algo: CPU_CONV_*; an algorithm that does
 * not fit the geometry falls back to GEMM. */
kiln_status cpu_conv2d_f32(const cpu_conv2d *g, const float *x, const float *w,
                           const float *bias, const float *resid, float *y,
                           const cpu_epilogue *act, int algo, bool cache,
                           core_threadpool *pool);
bool cpu_conv2d_winograd_eligible(const cpu_conv2d *g);

/* ---- weight cache (stop-gap until plan-time packing exists) ------------------------------
 * Kernels are stateless per call, so packed/transformed weights are cached process-wide,
 * keyed by (weights pointer, layout kind, params) plus a fingerprint of sampled values that
 * guards against a freed tensor's address being reused by another model. Thread-safe.
 * Entries live until cpu_cache_clear() (call it only while no kernel runs) or exit; once the
 * cache holds CPU_CACHE_MAX_BYTES, new packings are made per call instead. */
#define CPU_CACHE_MAX_BYTES ((size_t)1 << 30)
typedef void (*cpu_cache_build_fn)(void *ctx, float *dst);
/* Returns the cached buffer for the key, building it with build(ctx, dst) into `floats`
 * floats when absent. *owned is set true when the result is a per-call buffer the caller
 * must free() (cache full). NULL on OOM. */
const float *cpu_cache_get(const float *w, size_t w_floats, int kind, const int64_t *params,
                           int n_params, size_t floats, cpu_cache_build_fn build, void *ctx,
                           bool *owned);
void cpu_cache_clear(void);
size_t cpu_cache_bytes(void);

/* 64-byte aligned allocation (free with free()); NULL on overflow/OOM. */
float *cpu_alloc_floats(size_t n);
/* Scratch of at least n floats (64-byte aligned) owned by the calling thread, reused by
 * later calls with the same slot (CPU_SCRATCH_*); valid until this thread asks for the same
 * slot again. NULL on OOM. Never free it. */
float *cpu_scratch_floats(int slot, size_t n);
enum { CPU_SCRATCH_GEMM_A = 0, CPU_SCRATCH_GEMM_B = 1, CPU_SCRATCH_WINO_V = 2, CPU_SCRATCH_WINO_M = 3 };

#endif /* KILN_CPU_H */
