/* avx512-math.h — AVX-512 vector math shared by the AVX-512 microkernels: exp, sigmoid, erf
 * and the fused activations on 16 lanes (the AVX2 polynomials widened, same accuracy), as
 * static inline functions carrying their own target attribute. */
#ifndef KILN_CPU_AVX512_MATH_H
#define KILN_CPU_AVX512_MATH_H

#include "cpu/cpu.h"
#include <immintrin.h>

/* Every AVX-512 CPU kiln dispatches to (Skylake-X, Ice Lake, Zen 4/5, ...) has F, DQ, BW and
 * VL; dispatch.c checks all of them. AVX2/FMA are implied, so AVX2 helpers may be inlined. */
#define CPU_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma")))

static inline CPU_AVX512 __m512 cpu_avx512_abs(__m512 x)
{
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7FFFFFFF)));
}

/* e^x, relative error ~2e-7 over the float range (inputs clamped to [-87.3, 88.3]). */
static inline CPU_AVX512 __m512 cpu_avx512_exp(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(e));
}

static inline CPU_AVX512 __m512 cpu_avx512_sigmoid(__m512 x)
{
    __m512 one = _mm512_set1_ps(1.0f);
    __m512 e = cpu_avx512_exp(_mm512_sub_ps(_mm512_setzero_ps(), x));
    return _mm512_div_ps(one, _mm512_add_ps(one, e));
}

/* 1 + erf(x / sqrt 2) without cancellation for negative x (the erfc fit of avx2-math.h). */
static inline CPU_AVX512 __m512 cpu_avx512_one_plus_erf(__m512 x)
{
    __m512 z = _mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f));
    __m512 az = cpu_avx512_abs(z);
    __m512 one = _mm512_set1_ps(1.0f);
    __m512 t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(0.5f), az, one));
    __m512 p = _mm512_set1_ps(0.17087277f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.82215223f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.48851587f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.13520398f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.27886807f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.18628806f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.09678418f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.37409196f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.00002368f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.26551223f));
    p = _mm512_fnmadd_ps(az, az, p); /* -z^2 + p */
    __m512 q = _mm512_mul_ps(t, cpu_avx512_exp(p)); /* erfc(|z|) */
    /* x < 0: 1 + erf = erfc(|z|); x >= 0: 2 - erfc(|z|) */
    __mmask16 isneg = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_blend_ps(isneg, _mm512_sub_ps(_mm512_set1_ps(2.0f), q), q);
}

static inline CPU_AVX512 __m512 cpu_avx512_act(__m512 x, cpu_act act, float a, float b)
{
    switch (act) {
    case CPU_ACT_NONE: return x;
    case CPU_ACT_RELU: return _mm512_max_ps(x, _mm512_setzero_ps());
    case CPU_ACT_CLIP: return _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(a)), _mm512_set1_ps(b));
    case CPU_ACT_LEAKY: {
        __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
        return _mm512_mask_mul_ps(x, neg, x, _mm512_set1_ps(a));
    }
    case CPU_ACT_SIGMOID: return cpu_avx512_sigmoid(x);
    case CPU_ACT_SILU: return _mm512_mul_ps(x, cpu_avx512_sigmoid(x));
    case CPU_ACT_HARDSWISH: {
        __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(1.0f / 6.0f), _mm512_set1_ps(0.5f));
        t = _mm512_min_ps(_mm512_max_ps(t, _mm512_setzero_ps()), _mm512_set1_ps(1.0f));
        return _mm512_mul_ps(x, t);
    }
    case CPU_ACT_GELU:
        return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), cpu_avx512_one_plus_erf(x));
    case CPU_ACT_GELU_TANH: {
        /* 0.5 x (1 + tanh u) = x * sigmoid(2u) */
        __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
        __m512 u = _mm512_mul_ps(_mm512_fmadd_ps(x3, _mm512_set1_ps(0.044715f), x),
                                 _mm512_set1_ps(2.0f * 0.79788456080286536f));
        return _mm512_mul_ps(x, cpu_avx512_sigmoid(u));
    }
    }
    return x;
}

/* Lane mask with the first n (0..16) lanes set. */
static inline __mmask16 cpu_avx512_mask(size_t n)
{
    return (__mmask16)(n >= 16 ? 0xFFFFu : ((1u << n) - 1u));
}

#endif
