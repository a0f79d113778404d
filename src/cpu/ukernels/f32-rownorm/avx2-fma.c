/* f32-rownorm/avx2-fma.c — per-row pieces of normalizations and softmax with AVX2: sums in
 * double (4 lanes per half), so statistics match the reference; softmax through the shared
 * vector exp. */
#include "cpu/cpu_misc.h"
#include "cpu/ukernels/avx2-math.h"
#include <math.h>

/* x * k + b must round twice, as the reference (built without FMA) does: clang would fuse
 * the scalar tails of these FMA-target functions (-ffp-contract=on). */
#ifdef __clang__
#pragma clang fp contract(off)
#endif

static inline CPU_AVX2 double rn_hsum_pd(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}

CPU_AVX2 double cpu_f32_sum__avx2_fma(const float *x, size_t n)
{
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    __m256d a2 = _mm256_setzero_pd(), a3 = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 v = _mm256_loadu_ps(x + i), w = _mm256_loadu_ps(x + i + 8);
        a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
        a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
        a2 = _mm256_add_pd(a2, _mm256_cvtps_pd(_mm256_castps256_ps128(w)));
        a3 = _mm256_add_pd(a3, _mm256_cvtps_pd(_mm256_extractf128_ps(w, 1)));
    }
    double s = rn_hsum_pd(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
    for (; i < n; i++) s += x[i];
    return s;
}

CPU_AVX2 float cpu_f32_max__avx2_fma(const float *x, size_t n)
{
    if (n < 8) return cpu_f32_max__scalar(x, n);
    __m256 m = _mm256_loadu_ps(x);
    size_t i = 8;
    for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
    float t[8];
    _mm256_storeu_ps(t, m);
    float r = t[0];
    for (int k = 1; k < 8; k++) r = t[k] > r ? t[k] : r;
    for (; i < n; i++) r = x[i] > r ? x[i] : r;
    return r;
}

CPU_AVX2 double cpu_f32_layernorm__avx2_fma(const float *x, float *y, size_t n, double eps,
                                            const float *scale, bool s_one, const float *bias,
                                            bool b_one, double *inv_out)
{
    double m = n > 0 ? cpu_f32_sum__avx2_fma(x, n) / (double)n : 0.0;
    __m256d vm = _mm256_set1_pd(m), a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), vm);
        __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), vm);
        a0 = _mm256_add_pd(a0, _mm256_mul_pd(d0, d0));
        a1 = _mm256_add_pd(a1, _mm256_mul_pd(d1, d1));
    }
    double var = rn_hsum_pd(_mm256_add_pd(a0, a1));
    for (; i < n; i++) var += (x[i] - m) * (x[i] - m);
    var = n > 0 ? var / (double)n : 0.0;
    double inv = 1.0 / sqrt(var + eps);
    __m256d vi = _mm256_set1_pd(inv);
    __m256 s1 = _mm256_set1_ps(scale ? scale[0] : 1.0f), b1 = _mm256_set1_ps(bias ? bias[0] : 0.0f);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m128 t0 = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), vm), vi));
        __m128 t1 = _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), vm), vi));
        __m256 t = _mm256_insertf128_ps(_mm256_castps128_ps256(t0), t1, 1);
        if (scale) t = _mm256_mul_ps(t, s_one ? s1 : _mm256_loadu_ps(scale + i));
        if (bias) t = _mm256_add_ps(t, b_one ? b1 : _mm256_loadu_ps(bias + i));
        _mm256_storeu_ps(y + i, t);
    }
    for (; i < n; i++) {
        float t = (float)((x[i] - m) * inv);
        if (scale) t *= scale[s_one ? 0 : i];
        if (bias) t += bias[b_one ? 0 : i];
        y[i] = t;
    }
    *inv_out = inv;
    return m;
}

CPU_AVX2 void cpu_f32_softmax__avx2_fma(const float *x, float *y, size_t n, bool log_)
{
    if (!n) return;
    float mx = cpu_f32_max__avx2_fma(x, n);
    __m256 vmx = _mm256_set1_ps(mx);
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), vmx);
        __m256 e = cpu_avx2_exp(d);
        e = _mm256_blendv_ps(e, d, _mm256_cmp_ps(d, d, _CMP_UNORD_Q)); /* NaN stays NaN */
        if (!log_) _mm256_storeu_ps(y + i, e);
        a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double sum = rn_hsum_pd(_mm256_add_pd(a0, a1));
    for (; i < n; i++) {
        float e = expf(x[i] - mx);
        if (!log_) y[i] = e;
        sum += e;
    }
    if (!log_) {
        __m256 inv = _mm256_set1_ps((float)(1.0 / sum));
        for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), inv));
        for (; i < n; i++) y[i] *= (float)(1.0 / sum);
    } else {
        float ls = (float)log(sum);
        __m256 vls = _mm256_set1_ps(ls);
        for (i = 0; i + 8 <= n; i += 8)
            _mm256_storeu_ps(y + i, _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmx), vls));
        for (; i < n; i++) y[i] = x[i] - mx - ls;
    }
}

CPU_AVX2 void cpu_f32_scale_bias__avx2_fma(const float *x, float *y, size_t n, float k, float b)
{
    __m256 vk = _mm256_set1_ps(k), vb = _mm256_set1_ps(b);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vk), vb));
        _mm256_storeu_ps(y + i + 8, _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8), vk), vb));
    }
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vk), vb));
    for (; i < n; i++) y[i] = x[i] * k + b;
}

CPU_AVX2 void cpu_f32_lerp__avx2_fma(const float *a, const float *b, float *y, size_t n, float w0, float w1)
{
    __m256 v0 = _mm256_set1_ps(w0), v1 = _mm256_set1_ps(w1);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(v0, _mm256_loadu_ps(a + i), _mm256_mul_ps(v1, _mm256_loadu_ps(b + i))));
    for (; i < n; i++) y[i] = w0 * a[i] + w1 * b[i];
}
