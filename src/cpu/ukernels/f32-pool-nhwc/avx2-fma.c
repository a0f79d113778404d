/* f32-pool-nhwc/avx2-fma.c — NHWC window and global pooling with AVX2, vectorised over 8
 * channels (maskload / maskstore for the channel tail); global means accumulate in double. */
#include "cpu/ukernels/avx2-math.h"
#include "cpu/ukernels/f32-pool-nhwc/pool-nhwc.h"

CPU_AVX2 void cpu_f32_poolnhwc__avx2_fma(const cpu_pool2d *g, int kind, bool include_pad, const float *x,
                                         float *y, int64_t oy0, int64_t oy1, int64_t c0, int64_t c1)
{
    const int64_t C = g->C, dxs = g->DW * C;
    const bool mx = kind == CPU_POOL_MAX;
    for (int64_t oy = oy0; oy < oy1; oy++) {
        int64_t ky0, ky1, npy;
        cpu_poolnhwc_taps(oy, g->SH, g->PT, g->PB, g->DH, g->KH, g->H, &ky0, &ky1, &npy);
        const int64_t sy = oy * g->SH - g->PT;
        for (int64_t ox = 0; ox < g->OW; ox++) {
            int64_t kx0, kx1, npx;
            cpu_poolnhwc_taps(ox, g->SW, g->PL, g->PR, g->DW, g->KW, g->W, &kx0, &kx1, &npx);
            const int64_t sx = ox * g->SW - g->PL + kx0 * g->DW, nkx = kx1 - kx0;
            const int64_t cnt = (ky1 - ky0) * nkx;
            float *yp = y + (oy * g->OW + ox) * C;
            const __m256 div = _mm256_set1_ps(cpu_poolnhwc_div(include_pad, cnt, npy * npx));
            for (int64_t c = c0; c < c1; c += 8) {
                __m256i m = cpu_avx2_mask((size_t)(c1 - c));
                __m256 acc = _mm256_setzero_ps();
                if (cnt == 0) {
                    /* window entirely in padding: 0 */
                } else if (mx) {
                    acc = _mm256_maskload_ps(x + ((sy + ky0 * g->DH) * g->W + sx) * C + c, m);
                    for (int64_t ky = ky0; ky < ky1; ky++) {
                        const float *xr = x + ((sy + ky * g->DH) * g->W + sx) * C + c;
                        for (int64_t k = 0; k < nkx; k++) acc = _mm256_max_ps(_mm256_maskload_ps(xr + k * dxs, m), acc);
                    }
                } else {
                    for (int64_t ky = ky0; ky < ky1; ky++) {
                        const float *xr = x + ((sy + ky * g->DH) * g->W + sx) * C + c;
                        for (int64_t k = 0; k < nkx; k++) acc = _mm256_add_ps(acc, _mm256_maskload_ps(xr + k * dxs, m));
                    }
                    acc = _mm256_div_ps(acc, div);
                }
                _mm256_maskstore_ps(yp + c, m, acc);
            }
        }
    }
}

CPU_AVX2 void cpu_f32_gpoolnhwc__avx2_fma(int kind, int64_t HW, int64_t C, const float *x, float *y, int64_t nc)
{
    if (HW <= 0) {
        for (int64_t c = 0; c < nc; c++) y[c] = 0.0f;
        return;
    }
    for (int64_t c = 0; c < nc; c += 8) {
        __m256i m = cpu_avx2_mask((size_t)(nc - c));
        const float *xp = x + c;
        if (kind == CPU_POOL_MAX) {
            __m256 acc = _mm256_maskload_ps(xp, m);
            for (int64_t p = 1; p < HW; p++) acc = _mm256_max_ps(_mm256_maskload_ps(xp + p * C, m), acc);
            _mm256_maskstore_ps(y + c, m, acc);
        } else {
            __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
            for (int64_t p = 0; p < HW; p++) {
                __m256 v = _mm256_maskload_ps(xp + p * C, m);
                lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
                hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
            }
            __m256d n = _mm256_set1_pd((double)HW);
            __m128 rl = _mm256_cvtpd_ps(_mm256_div_pd(lo, n)), rh = _mm256_cvtpd_ps(_mm256_div_pd(hi, n));
            _mm256_maskstore_ps(y + c, m, _mm256_insertf128_ps(_mm256_castps128_ps256(rl), rh, 1));
        }
    }
}
