/* avx2-math.h — AVX2+FMA vector math shared by the AVX2 microkernels: exp, sigmoid, erf and
 * the fused activations, as static inline functions carrying their own target attribute. */
#ifndef KILN_CPU_AVX2_MATH_H
#define KILN_CPU_AVX2_MATH_H

#include "cpu/cpu.h"
#include <immintrin.h>

#define CPU_AVX2 __attribute__((target("avx2,fma")))

/* e^x, relative error ~2e-7 over the float range (inputs clamped to [-87.3, 88.3]). */
static inline CPU_AVX2 __m256 cpu_avx2_exp(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static inline CPU_AVX2 __m256 cpu_avx2_sigmoid(__m256 x)
{
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 e = cpu_avx2_exp(_mm256_sub_ps(_mm256_setzero_ps(), x));
    return _mm256_div_ps(one, _mm256_add_ps(one, e));
}

/* 1 + erf(x / sqrt 2) without cancellation for negative x: erfc by the Chebyshev fit of
 * Numerical Recipes (erfcc, fractional error < 1.2e-7 everywhere). */
static inline CPU_AVX2 __m256 cpu_avx2_one_plus_erf(__m256 x)
{
    __m256 z = _mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752f));
    __m256 az = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z);
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.5f), az, one));
    __m256 p = _mm256_set1_ps(0.17087277f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
    p = _mm256_fnmadd_ps(az, az, p); /* -z^2 + p */
    __m256 q = _mm256_mul_ps(t, cpu_avx2_exp(p)); /* erfc(|z|) */
    /* x < 0: 1 + erf = erfc(|z|); x >= 0: 2 - erfc(|z|) */
    __m256 isneg = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ);
    return _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(2.0f), q), q, isneg);
}

static inline CPU_AVX2 __m256 cpu_avx2_act(__m256 x, cpu_act act, float a, float b)
{
    switch (act) {
    case CPU_ACT_NONE: return x;
    case CPU_ACT_RELU: return _mm256_max_ps(x, _mm256_setzero_ps());
    case CPU_ACT_CLIP: return _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(a)), _mm256_set1_ps(b));
    case CPU_ACT_LEAKY: {
        __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
        return _mm256_blendv_ps(x, _mm256_mul_ps(x, _mm256_set1_ps(a)), neg);
    }
    case CPU_ACT_SIGMOID: return cpu_avx2_sigmoid(x);
    case CPU_ACT_SILU: return _mm256_mul_ps(x, cpu_avx2_sigmoid(x));
    case CPU_ACT_HARDSWISH: {
        __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.0f / 6.0f), _mm256_set1_ps(0.5f));
        t = _mm256_min_ps(_mm256_max_ps(t, _mm256_setzero_ps()), _mm256_set1_ps(1.0f));
        return _mm256_mul_ps(x, t);
    }
    case CPU_ACT_GELU:
        return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), cpu_avx2_one_plus_erf(x));
    case CPU_ACT_GELU_TANH: {
        /* 0.5 x (1 + tanh u) = x * sigmoid(2u) */
        __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
        __m256 u = _mm256_mul_ps(_mm256_fmadd_ps(x3, _mm256_set1_ps(0.044715f), x),
                                 _mm256_set1_ps(2.0f * 0.79788456080286536f));
        return _mm256_mul_ps(x, cpu_avx2_sigmoid(u));
    }
    }
    return x;
}

/* Lane mask with the first n (0..8) lanes set. */
static inline CPU_AVX2 __m256i cpu_avx2_mask(size_t n)
{
    static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(m + 8 - (n > 8 ? 8 : n)));
}

#endif
