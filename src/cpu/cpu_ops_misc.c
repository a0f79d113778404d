/* cpu_ops_misc.c — the CPU backend's table (backend 1) of float32 pooling, elementwise,
 * normalization, softmax, resize, reduction and data-movement kernels; their microkernel
 * dispatch (following cpu_ukernels_get, so KILN_CPU_ISA and forced scalar apply) and the
 * tiling helper they share. */
#include "cpu/cpu_misc.h"
#include <string.h>

static const cpu_misc_ukernels cpu_misc_scalar = {
    "scalar",
    cpu_f32_vchain__scalar,
    cpu_f32_vbinary__scalar,
    cpu_f32_vaccum__scalar,
    cpu_f32_hwindow__scalar,
    cpu_f32_sum__scalar,
    cpu_f32_max__scalar,
    cpu_f32_layernorm__scalar,
    cpu_f32_softmax__scalar,
    cpu_f32_scale_bias__scalar,
    cpu_f32_lerp__scalar,
    cpu_x32_transpose__scalar,
};

#if defined(__x86_64__) || defined(__i386__)
static const cpu_misc_ukernels cpu_misc_avx2 = {
    "avx2_fma",
    cpu_f32_vchain__avx2_fma,
    cpu_f32_vbinary__avx2_fma,
    cpu_f32_vaccum__avx2_fma,
    cpu_f32_hwindow__avx2_fma,
    cpu_f32_sum__avx2_fma,
    cpu_f32_max__avx2_fma,
    cpu_f32_layernorm__avx2_fma,
    cpu_f32_softmax__avx2_fma,
    cpu_f32_scale_bias__avx2_fma,
    cpu_f32_lerp__avx2_fma,
    cpu_x32_transpose__avx2_fma,
};

/* AVX-512 where widening the AVX2 kernel pays (compute-bound rows); the bandwidth-bound ones
 * keep their AVX2 kernels. */
static const cpu_misc_ukernels cpu_misc_avx512 = {
    "avx512",
    cpu_f32_vchain__avx2_fma,
    cpu_f32_vbinary__avx2_fma,
    cpu_f32_vaccum__avx2_fma,
    cpu_f32_hwindow__avx2_fma,
    cpu_f32_sum__avx2_fma,
    cpu_f32_max__avx2_fma,
    cpu_f32_layernorm__avx2_fma,
    cpu_f32_softmax__avx2_fma,
    cpu_f32_scale_bias__avx2_fma,
    cpu_f32_lerp__avx2_fma,
    cpu_x32_transpose__avx2_fma,
};
#endif

const cpu_misc_ukernels *cpu_misc_ukernels_get(void)
{
#if defined(__x86_64__) || defined(__i386__)
    const char *isa = cpu_ukernels_get()->isa;
    if (!strcmp(isa, "avx512")) return &cpu_misc_avx512;
    if (!strcmp(isa, "avx2_fma")) return &cpu_misc_avx2;
#endif
    return &cpu_misc_scalar;
}

int64_t cpu_misc_tile(core_threadpool *pool, int64_t n, int64_t min_tile, int64_t *n_tiles)
{
    int nt = core_threadpool_size(pool);
    if (min_tile < 1) min_tile = 1;
    int64_t tile = n;
    if (nt > 1) {
        /* about two tiles per thread: enough to even out a busy core, few enough that
         * memory-bound loops keep long streams */
        int64_t want = (n + 2 * nt - 1) / (2 * nt);
        tile = want > min_tile ? want : min_tile;
    }
    if (tile < 1) tile = 1;
    if (n_tiles) *n_tiles = n > 0 ? (n + tile - 1) / tile : 0;
    return tile;
}

int64_t cpu_misc_parallel(core_threadpool *pool, int64_t n, int64_t min_tile,
                          void (*fn)(void *arg, int64_t begin, int64_t end), void *arg)
{
    int64_t tile = cpu_misc_tile(pool, n, min_tile, NULL);
    if (n > 0) core_threadpool_parallel_for(tile >= n ? NULL : pool, n, tile, fn, arg);
    return tile;
}

const ops_schema ops_table_cpu_misc[] = {
    {"MaxPool", "", 1, cpu_maxpool_run, 1},
    {"AveragePool", "", 1, cpu_avgpool_run, 1},
    {"GlobalAveragePool", "", 1, cpu_global_avgpool_run, 1},
    {"GlobalMaxPool", "", 1, cpu_global_maxpool_run, 1},
    {"Relu", "", 1, cpu_unary_run, 1},
    {"Sigmoid", "", 1, cpu_unary_run, 1},
    {"Tanh", "", 1, cpu_unary_run, 1},
    {"Erf", "", 9, cpu_unary_run, 1},
    {"Gelu", "", 20, cpu_unary_run, 1},
    {"HardSwish", "", 14, cpu_unary_run, 1},
    {"HardSigmoid", "", 1, cpu_unary_run, 1},
    {"LeakyRelu", "", 1, cpu_unary_run, 1},
    {"Clip", "", 1, cpu_unary_run, 1},
    {"Exp", "", 1, cpu_unary_run, 1},
    {"Sqrt", "", 1, cpu_unary_run, 1},
    {"Abs", "", 1, cpu_unary_run, 1},
    {"Neg", "", 1, cpu_unary_run, 1},
    {"Reciprocal", "", 1, cpu_unary_run, 1},
    {"Floor", "", 1, cpu_unary_run, 1},
    {"Ceil", "", 1, cpu_unary_run, 1},
    {"Add", "", 1, cpu_binary_run, 1},
    {"Sub", "", 1, cpu_binary_run, 1},
    {"Mul", "", 1, cpu_binary_run, 1},
    {"Div", "", 1, cpu_binary_run, 1},
    {"Pow", "", 1, cpu_pow_run, 1},
    {"Where", "", 9, cpu_where_run, 1},
    {"ElementwiseChain", "ai.kiln", 1, cpu_ew_chain_run, 1},
    {"BatchNormalization", "", 1, cpu_batchnorm_run, 1},
    {"LayerNormalization", "", 17, cpu_layernorm_run, 1},
    {"LayerNormalization", "ai.kiln", 1, cpu_layernorm_run, 1},
    {"Softmax", "", 1, cpu_softmax_run, 1},
    {"LogSoftmax", "", 1, cpu_softmax_run, 1},
    {"Resize", "", 10, cpu_resize_run, 1},
    {"ReduceMean", "", 1, cpu_reduce_mean_run, 1},
    {"ReduceSum", "", 1, cpu_reduce_sum_run, 1},
    {"Concat", "", 1, cpu_concat_run, 1},
    {"Split", "", 1, cpu_split_run, 1},
    {"Slice", "", 1, cpu_slice_run, 1},
    {"Transpose", "", 1, cpu_transpose_run, 1},
    OPS_TABLE_END,
};
