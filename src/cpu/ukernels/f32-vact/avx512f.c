/* f32-vact/avx512f.c — in-place activations over a float array with AVX-512 (16 lanes, masked
 * tail). */
#include "cpu/ukernels/avx512-math.h"

CPU_AVX512 void cpu_f32_vact__avx512(float *x, size_t n, cpu_act act, float a, float b)
{
    if (act == CPU_ACT_NONE) return;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, cpu_avx512_act(_mm512_loadu_ps(x + i), act, a, b));
    if (i < n) {
        __mmask16 m = cpu_avx512_mask(n - i);
        _mm512_mask_storeu_ps(x + i, m, cpu_avx512_act(_mm512_maskz_loadu_ps(m, x + i), act, a, b));
    }
}
