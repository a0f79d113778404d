/* x32-transpose/avx2-fma.c — transpose of a block of 32-bit elements with AVX2: 8x8 tiles in
 * registers (unpack, shuffle, lane permute), scalar edges. */
#include "cpu/cpu_misc.h"
#include "cpu/ukernels/avx2-math.h"

CPU_AVX2 void cpu_x32_transpose__avx2_fma(const uint32_t *src, int64_t ss, uint32_t *dst, int64_t ds,
                                          size_t m, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= m; i += 8) {
        size_t j = 0;
        for (; j + 8 <= n; j += 8) {
            const float *s = (const float *)src + (int64_t)j * ss + (int64_t)i;
            __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ss);
            __m256 r2 = _mm256_loadu_ps(s + 2 * ss), r3 = _mm256_loadu_ps(s + 3 * ss);
            __m256 r4 = _mm256_loadu_ps(s + 4 * ss), r5 = _mm256_loadu_ps(s + 5 * ss);
            __m256 r6 = _mm256_loadu_ps(s + 6 * ss), r7 = _mm256_loadu_ps(s + 7 * ss);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *d = (float *)dst + (int64_t)i * ds + (int64_t)j;
            _mm256_storeu_ps(d, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(d + ds, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(d + 2 * ds, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(d + 3 * ds, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(d + 4 * ds, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(d + 5 * ds, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(d + 6 * ds, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(d + 7 * ds, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
        for (size_t ii = i; ii < i + 8; ii++)
            for (size_t jj = j; jj < n; jj++) dst[(int64_t)ii * ds + (int64_t)jj] = src[(int64_t)jj * ss + (int64_t)ii];
    }
    for (; i < m; i++)
        for (size_t j = 0; j < n; j++) dst[(int64_t)i * ds + (int64_t)j] = src[(int64_t)j * ss + (int64_t)i];
}
