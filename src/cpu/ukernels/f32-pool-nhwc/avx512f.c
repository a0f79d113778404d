/* f32-pool-nhwc/avx512f.c — NHWC window and global pooling with AVX-512, vectorised over 16
 * channels (lane masks for the channel tail); global means accumulate in double. */
#include "cpu/ukernels/avx512-math.h"
#include "cpu/ukernels/f32-pool-nhwc/pool-nhwc.h"

CPU_AVX512 void cpu_f32_poolnhwc__avx512(const cpu_pool2d *g, int kind, bool include_pad, const float *x,
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
            const __m512 div = _mm512_set1_ps(cpu_poolnhwc_div(include_pad, cnt, npy * npx));
            for (int64_t c = c0; c < c1; c += 16) {
                __mmask16 m = cpu_avx512_mask((size_t)(c1 - c));
                __m512 acc = _mm512_setzero_ps();
                if (cnt == 0) {
                    /* window entirely in padding: 0 */
                } else if (mx) {
                    acc = _mm512_maskz_loadu_ps(m, x + ((sy + ky0 * g->DH) * g->W + sx) * C + c);
                    for (int64_t ky = ky0; ky < ky1; ky++) {
                        const float *xr = x + ((sy + ky * g->DH) * g->W + sx) * C + c;
                        for (int64_t k = 0; k < nkx; k++)
                            acc = _mm512_max_ps(_mm512_maskz_loadu_ps(m, xr + k * dxs), acc);
                    }
                } else {
                    for (int64_t ky = ky0; ky < ky1; ky++) {
                        const float *xr = x + ((sy + ky * g->DH) * g->W + sx) * C + c;
                        for (int64_t k = 0; k < nkx; k++)
                            acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(m, xr + k * dxs));
                    }
                    acc = _mm512_div_ps(acc, div);
                }
                _mm512_mask_storeu_ps(yp + c, m, acc);
            }
        }
    }
}

CPU_AVX512 void cpu_f32_gpoolnhwc__avx512(int kind, int64_t HW, int64_t C, const float *x, float *y, int64_t nc)
{
    if (HW <= 0) {
        for (int64_t c = 0; c < nc; c++) y[c] = 0.0f;
        return;
    }
    for (int64_t c = 0; c < nc; c += 16) {
        __mmask16 m = cpu_avx512_mask((size_t)(nc - c));
        const float *xp = x + c;
        if (kind == CPU_POOL_MAX) {
            __m512 acc = _mm512_maskz_loadu_ps(m, xp);
            for (int64_t p = 1; p < HW; p++) acc = _mm512_max_ps(_mm512_maskz_loadu_ps(m, xp + p * C), acc);
            _mm512_mask_storeu_ps(y + c, m, acc);
        } else {
            __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
            for (int64_t p = 0; p < HW; p++) {
                __m512 v = _mm512_maskz_loadu_ps(m, xp + p * C);
                lo = _mm512_add_pd(lo, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
                hi = _mm512_add_pd(hi, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
            }
            __m512d inv = _mm512_set1_pd((double)HW);
            __m256 rl = _mm512_cvtpd_ps(_mm512_div_pd(lo, inv)), rh = _mm512_cvtpd_ps(_mm512_div_pd(hi, inv));
            __m512 r = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(rl)),
                                                          _mm256_castps_pd(rh), 1));
            _mm512_mask_storeu_ps(y + c, m, r);
        }
    }
}
