/* f32-vchain/scalar.c — elementwise programs (ElementwiseChain, unary ops, ops with a scalar
 * operand) one element at a time, with the reference kernels' arithmetic: the fallback on CPUs
 * without AVX2 and the path of the rare steps on every CPU. */
#include "cpu/cpu_misc.h"
#include "ops/fused.h"
#include <math.h>

float cpu_ew_step_scalar(const cpu_ew_step *s, float x)
{
    float k0 = s->k0, k1 = s->k1;
    double v = x;
    switch (s->op) {
    case FUSED_EW_ADD: return x + k0;
    case FUSED_EW_SUB: return x - k0;
    case FUSED_EW_RSUB: return k0 - x;
    case FUSED_EW_MUL: return x * k0;
    case FUSED_EW_DIV: return x / k0;
    case FUSED_EW_RDIV: return k0 / x;
    case FUSED_EW_POW: return (float)pow(v, k0);
    case FUSED_EW_RPOW: return (float)pow(k0, v);
    case FUSED_EW_MAX: return x != x ? x : (x > k0 ? x : k0);
    case FUSED_EW_MIN: return x != x ? x : (x < k0 ? x : k0);
    case FUSED_EW_RELU: return x < 0 ? 0.0f : x;
    case FUSED_EW_SIGMOID: return (float)(1.0 / (1.0 + exp(-v)));
    case FUSED_EW_TANH: return (float)tanh(v);
    case FUSED_EW_EXP: return (float)exp(v);
    case FUSED_EW_LOG: return (float)log(v);
    case FUSED_EW_SQRT: return (float)sqrt(v);
    case FUSED_EW_ABS: return fabsf(x);
    case FUSED_EW_NEG: return -x;
    case FUSED_EW_RECIPROCAL: return 1.0f / x;
    case FUSED_EW_FLOOR: return floorf(x);
    case FUSED_EW_CEIL: return ceilf(x);
    case FUSED_EW_ROUND: return rintf(x);
    case FUSED_EW_ERF: return (float)erf(v);
    case FUSED_EW_SIN: return (float)sin(v);
    case FUSED_EW_COS: return (float)cos(v);
    case FUSED_EW_SOFTPLUS: return (float)(v > 0 ? v + log1p(exp(-v)) : log1p(exp(v)));
    case FUSED_EW_CLIP: return x < k0 ? k0 : x > k1 ? k1 : x;
    case FUSED_EW_LEAKY_RELU: return x >= 0 ? x : k0 * x;
    case FUSED_EW_ELU: return x >= 0 ? x : (float)(k0 * (exp(v) - 1.0));
    case FUSED_EW_HARD_SIGMOID: {
        float t = k0 * x + k1;
        return t < 0 ? 0.0f : t > 1 ? 1.0f : t;
    }
    case FUSED_EW_HARD_SWISH: {
        double t = v / 6.0 + 0.5;
        t = t < 0 ? 0 : t > 1 ? 1 : t;
        return (float)(v * t);
    }
    case FUSED_EW_SILU: return (float)(v / (1.0 + exp(-v)));
    case FUSED_EW_GELU: return (float)(0.5 * v * (1.0 + erf(v * 0.70710678118654752440)));
    case FUSED_EW_GELU_TANH:
        return (float)(0.5 * v * (1.0 + tanh(0.79788456080286535588 * (v + 0.044715 * v * v * v))));
    case CPU_EW_SQUARE: return x * x;
    case CPU_EW_POW_HALF: return (float)pow(v, 0.5);
    case CPU_EW_HARD_SIGMOID_FMA: return (float)fmax(0.0, fmin(1.0, (double)k0 * v + (double)k1));
    case CPU_EW_IDENTITY: return x;
    default: return x;
    }
}

void cpu_f32_vchain__scalar(const float *x, float *y, size_t n, const cpu_ew_prog *p)
{
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        for (int k = 0; k < p->n; k++) v = cpu_ew_step_scalar(&p->s[k], v);
        y[i] = v;
    }
}
