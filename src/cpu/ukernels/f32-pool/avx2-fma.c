/* f32-pool/avx2-fma.c — the row pieces of separable 2-D pooling with AVX2: row accumulation,
 * and window reduction along a row for stride 1 (plain loads) and 2 (deinterleaved loads);
 * other strides per element. */
#include "cpu/cpu_misc.h"
#include "cpu/ukernels/avx2-math.h"

CPU_AVX2 void cpu_f32_vaccum__avx2_fma(int kind, float *acc, const float *x, size_t n)
{
    size_t i = 0;
    if (kind == CPU_POOL_MAX) {
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(acc + i, _mm256_max_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(acc + i)));
        for (; i < n; i++) acc[i] = x[i] > acc[i] ? x[i] : acc[i];
    } else {
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(acc + i, _mm256_add_ps(_mm256_loadu_ps(acc + i), _mm256_loadu_ps(x + i)));
        for (; i < n; i++) acc[i] += x[i];
    }
}

/* 8 floats from r with stride 2 (reads r[0..15]). */
static inline CPU_AVX2 __m256 pw_load_s2(const float *r)
{
    __m256 lo = _mm256_loadu_ps(r), hi = _mm256_loadu_ps(r + 8);
    __m256 ev = _mm256_shuffle_ps(lo, hi, 0x88);
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), 0xD8));
}

CPU_AVX2 void cpu_f32_hwindow__avx2_fma(int kind, const float *buf, float *y, size_t n, size_t kw,
                                        size_t sw, size_t dw)
{
    size_t o = 0;
    bool mx = kind == CPU_POOL_MAX;
    if (sw == 1) {
        for (; o + 8 <= n; o += 8) {
            const float *p = buf + o;
            __m256 r = _mm256_loadu_ps(p);
            for (size_t k = 1; k < kw; k++) {
                __m256 v = _mm256_loadu_ps(p + k * dw);
                r = mx ? _mm256_max_ps(v, r) : _mm256_add_ps(r, v);
            }
            _mm256_storeu_ps(y + o, r);
        }
    } else if (sw == 2) {
        /* reads up to 16 floats past the last tap (discarded lanes): the buffer has slack */
        for (; o + 8 <= n; o += 8) {
            const float *p = buf + o * 2;
            __m256 r = pw_load_s2(p);
            for (size_t k = 1; k < kw; k++) {
                __m256 v = pw_load_s2(p + k * dw);
                r = mx ? _mm256_max_ps(v, r) : _mm256_add_ps(r, v);
            }
            _mm256_storeu_ps(y + o, r);
        }
    }
    for (; o < n; o++) {
        const float *p = buf + o * sw;
        float r = p[0];
        for (size_t k = 1; k < kw; k++) {
            float v = p[k * dw];
            if (mx) r = v > r ? v : r;
            else r += v;
        }
        y[o] = r;
    }
}
