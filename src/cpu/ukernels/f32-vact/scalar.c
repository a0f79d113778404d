/* f32-vact/scalar.c — portable activations: the reference for the vector versions and the
 * fallback on CPUs without AVX2. */
#include "cpu/cpu.h"
#include <math.h>

float cpu_act_scalar(float x, cpu_act act, float a, float b)
{
    switch (act) {
    case CPU_ACT_NONE: return x;
    case CPU_ACT_RELU: return x > 0.0f ? x : 0.0f;
    case CPU_ACT_CLIP: return x < a ? a : (x > b ? b : x);
    case CPU_ACT_LEAKY: return x >= 0.0f ? x : a * x;
    case CPU_ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case CPU_ACT_SILU: return x / (1.0f + expf(-x));
    case CPU_ACT_HARDSWISH: {
        float t = x * (1.0f / 6.0f) + 0.5f;
        t = t < 0.0f ? 0.0f : (t > 1.0f ? 1.0f : t);
        return x * t;
    }
    case CPU_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case CPU_ACT_GELU_TANH:
        return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
    }
    return x;
}

void cpu_f32_vact__scalar(float *x, size_t n, cpu_act act, float a, float b)
{
    if (act == CPU_ACT_NONE) return;
    for (size_t i = 0; i < n; i++) x[i] = cpu_act_scalar(x[i], act, a, b);
}
