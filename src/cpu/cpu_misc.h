/* cpu_misc.h — the CPU backend's float32 kernels for the "everything but GEMM/conv" ops
 * (pooling, elementwise and ElementwiseChain, normalizations, softmax, resize, reductions,
 * data movement): their microkernels, the dispatch table and the op entry points that
 * cpu_ops_misc.c registers. Internal to src/cpu. */
#ifndef KILN_CPU_MISC_H
#define KILN_CPU_MISC_H

#include "cpu/cpu.h"
#include "ops/ops.h"
#include <stddef.h>

/* ---- elementwise programs -----------------------------------------------------------------
 * A program is a list of steps applied to every element in order (ElementwiseChain, and every
 * unary op or binary op with a scalar operand as a one-step program). Opcodes are the
 * FUSED_EW_* values of ops/fused.h, plus the CPU_EW_* ones below for the standalone ops whose
 * reference rounds differently. Every step rounds to float. */
enum {
    CPU_EW_SQUARE = 100,           /* x * x (Pow with exponent 2) */
    CPU_EW_POW_HALF = 101,         /* pow(x, 0.5) */
    CPU_EW_HARD_SIGMOID_FMA = 102, /* clamp(fma(k0, x, k1), 0, 1): the standalone op, which the
                                      reference computes in double */
    CPU_EW_IDENTITY = 103
};
#define CPU_EW_MAX_STEPS 64
typedef struct cpu_ew_step {
    int op;
    float k0, k1;
} cpu_ew_step;
typedef struct cpu_ew_prog {
    int n;
    cpu_ew_step s[CPU_EW_MAX_STEPS];
} cpu_ew_prog;

/* Binary ops of the vbinary microkernel; modes say which operand is a broadcast scalar. */
enum { CPU_BIN_ADD, CPU_BIN_SUB, CPU_BIN_MUL, CPU_BIN_DIV, CPU_BIN_MAX, CPU_BIN_MIN };
enum { CPU_BIN_VV, CPU_BIN_VS, CPU_BIN_SV };

/* Pool row reductions. */
#ifndef KILN_CPU_POOL_KINDS
#define KILN_CPU_POOL_KINDS
enum { CPU_POOL_MAX = 0, CPU_POOL_AVG = 1 }; /* also in cpu/nhwc.h */
#endif

typedef struct cpu_misc_ukernels {
    const char *isa;
    /* y[i] = prog(x[i]), i < n; y may equal x. */
    void (*f32_vchain)(const float *x, float *y, size_t n, const cpu_ew_prog *p);
    /* y[i] = a[i|0] op b[i|0] by mode. */
    void (*f32_vbinary)(int op, int mode, const float *a, const float *b, float *y, size_t n);
    /* acc[i] = max(acc[i], x[i]) (kind MAX) or acc[i] + x[i] (AVG). */
    void (*f32_vaccum)(int kind, float *acc, const float *x, size_t n);
    /* y[o] = reduce_{k < kw} buf[o*sw + k*dw] for o < n (max or sum); buf must be readable
     * 16 floats past the last tap. */
    void (*f32_hwindow)(int kind, const float *buf, float *y, size_t n, size_t kw, size_t sw,
                        size_t dw);
    /* Sum and max of a row, sum in double. */
    double (*f32_sum)(const float *x, size_t n);
    float (*f32_max)(const float *x, size_t n);
    /* LayerNorm of one row as the reference computes it: mean and variance in double,
     * y = (float)((x - mean) * inv) * scale + bias (scale/bias NULL, or 1 value when
     * s_one/b_one). Returns mean; *inv_out receives 1/sqrt(var + eps). */
    double (*f32_layernorm)(const float *x, float *y, size_t n, double eps, const float *scale,
                            bool s_one, const float *bias, bool b_one, double *inv_out);
    /* Softmax of one row (log = LogSoftmax). */
    void (*f32_softmax)(const float *x, float *y, size_t n, bool log);
    /* y[i] = x[i] * k + b (mul then add: the reference's rounding). */
    void (*f32_scale_bias)(const float *x, float *y, size_t n, float k, float b);
    /* y[i] = w0 * a[i] + w1 * b[i]. */
    void (*f32_lerp)(const float *a, const float *b, float *y, size_t n, float w0, float w1);
    /* dst[i*ds + j] = src[j*ss + i] for i < m, j < n (any 4-byte elements). */
    void (*x32_transpose)(const uint32_t *src, int64_t ss, uint32_t *dst, int64_t ds, size_t m, size_t n);
} cpu_misc_ukernels;

const cpu_misc_ukernels *cpu_misc_ukernels_get(void);

#define CPU_MISC_UK_DECL(isa)                                                                  \
    void cpu_f32_vchain__##isa(const float *x, float *y, size_t n, const cpu_ew_prog *p);     \
    void cpu_f32_vbinary__##isa(int op, int mode, const float *a, const float *b, float *y,   \
                                size_t n);                                                    \
    void cpu_f32_vaccum__##isa(int kind, float *acc, const float *x, size_t n);               \
    void cpu_f32_hwindow__##isa(int kind, const float *buf, float *y, size_t n, size_t kw,    \
                                size_t sw, size_t dw);                                        \
    double cpu_f32_sum__##isa(const float *x, size_t n);                                      \
    float cpu_f32_max__##isa(const float *x, size_t n);                                       \
    double cpu_f32_layernorm__##isa(const float *x, float *y, size_t n, double eps,           \
                                    const float *scale, bool s_one, const float *bias,        \
                                    bool b_one, double *inv_out);                             \
    void cpu_f32_softmax__##isa(const float *x, float *y, size_t n, bool log);                \
    void cpu_f32_scale_bias__##isa(const float *x, float *y, size_t n, float k, float b);     \
    void cpu_f32_lerp__##isa(const float *a, const float *b, float *y, size_t n, float w0,    \
                             float w1);                                                       \
    void cpu_x32_transpose__##isa(const uint32_t *src, int64_t ss, uint32_t *dst, int64_t ds, \
                                  size_t m, size_t n);
CPU_MISC_UK_DECL(scalar)
CPU_MISC_UK_DECL(avx2_fma)

/* The scalar value of one program step (shared by both ISAs for the rare steps). */
float cpu_ew_step_scalar(const cpu_ew_step *s, float x);
/* Whether the AVX2 kernel evaluates op in vector registers (else per element, scalar). */
bool cpu_ew_op_vectorized(int op);

/* ---- threading ----------------------------------------------------------------------------
 * Splits [0, n) into tiles of at least min_tile items (about 2 per thread) and runs fn over
 * them on pool (NULL: inline). Returns the tile size used, so a tile can find its scratch
 * slot as begin / tile. */
int64_t cpu_misc_parallel(core_threadpool *pool, int64_t n, int64_t min_tile,
                          void (*fn)(void *arg, int64_t begin, int64_t end), void *arg);
/* The tile size cpu_misc_parallel will use, and the number of tiles (scratch slots). */
int64_t cpu_misc_tile(core_threadpool *pool, int64_t n, int64_t min_tile, int64_t *n_tiles);

/* ---- op entry points (backend 1; each calls ops_run_reference for what it leaves out) ---- */
kiln_status cpu_maxpool_run(ops_ctx *c);
kiln_status cpu_avgpool_run(ops_ctx *c);
kiln_status cpu_global_avgpool_run(ops_ctx *c);
kiln_status cpu_global_maxpool_run(ops_ctx *c);

kiln_status cpu_unary_run(ops_ctx *c);
kiln_status cpu_binary_run(ops_ctx *c);
kiln_status cpu_pow_run(ops_ctx *c);
kiln_status cpu_where_run(ops_ctx *c);
kiln_status cpu_ew_chain_run(ops_ctx *c);

kiln_status cpu_batchnorm_run(ops_ctx *c);
kiln_status cpu_layernorm_run(ops_ctx *c);
kiln_status cpu_softmax_run(ops_ctx *c);

kiln_status cpu_resize_run(ops_ctx *c);
kiln_status cpu_reduce_mean_run(ops_ctx *c);
kiln_status cpu_reduce_sum_run(ops_ctx *c);

kiln_status cpu_concat_run(ops_ctx *c);
kiln_status cpu_split_run(ops_ctx *c);
kiln_status cpu_slice_run(ops_ctx *c);
kiln_status cpu_transpose_run(ops_ctx *c);

#endif /* KILN_CPU_MISC_H */
