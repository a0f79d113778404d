/* f32-vact/avx2-fma.c — in-place activations over a float array with AVX2+FMA. */
#include "cpu/ukernels/avx2-math.h"

CPU_AVX2 void cpu_f32_vact__avx2_fma(float *x, size_t n, cpu_act act, float a, float b)
{
    if (act == CPU_ACT_NONE) return;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, cpu_avx2_act(_mm256_loadu_ps(x + i), act, a, b));
    if (i < n) {
        __m256i m = cpu_avx2_mask(n - i);
        _mm256_maskstore_ps(x + i, m, cpu_avx2_act(_mm256_maskload_ps(x + i, m), act, a, b));
    }
}
