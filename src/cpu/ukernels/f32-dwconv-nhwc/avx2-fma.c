/* f32-dwconv-nhwc/avx2-fma.c — NHWC depthwise convolution with AVX2+FMA, vectorised over 8
 * channels: interior columns (all kernel columns inside the image) run a 3x3 / 5x5
 * kernel with the block's weights hoisted out of the pixel loop and no bounds checks; border
 * pixels and other kernel sizes visit only their valid taps. Channel tails use maskload /
 * maskstore. Bias, residual and activation fused. */
#include "cpu/ukernels/avx2-math.h"
#include "cpu/ukernels/f32-dwconv-nhwc/dwconv-nhwc.h"

#define DW_INLINE static inline __attribute__((always_inline))

DW_INLINE CPU_AVX2 __m256 dw_ld(const float *p, __m256i m, bool full)
{
    return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m);
}

DW_INLINE CPU_AVX2 void dw_out(const cpu_dwnhwc_params *p, __m256 acc, const float *rp, float *yp,
                               __m256i m, bool full)
{
    if (rp) acc = _mm256_add_ps(acc, dw_ld(rp, m, full));
    if (p->act != CPU_ACT_NONE) acc = cpu_avx2_act(acc, p->act, p->act_a, p->act_b);
    if (full) _mm256_storeu_ps(yp, acc);
    else _mm256_maskstore_ps(yp, m, acc);
}

static CPU_AVX2 void dw_pixel(const cpu_dwnhwc_params *p, const float *x, const float *rp, float *yp,
                              int64_t sy, int64_t ky0, int64_t ky1, int64_t ox, int64_t c0, int64_t c1)
{
    int64_t kx0, kx1;
    cpu_dwnhwc_taps(ox, p->SW, p->PL, p->DW, p->KW, p->W, &kx0, &kx1);
    const int64_t sx = ox * p->SW - p->PL, xs = p->xs, cp = p->cp, dxs = p->DW * xs, nkx = kx1 - kx0;
    for (int64_t c = c0; c < c1; c += 8) {
        __m256i m = cpu_avx2_mask((size_t)(c1 - c));
        __m256 acc = p->bias ? _mm256_maskload_ps(p->bias + c, m) : _mm256_setzero_ps();
        for (int64_t ky = ky0; ky < ky1; ky++) {
            const float *xr = x + ((sy + ky * p->DH) * p->W + sx + kx0 * p->DW) * xs + c;
            const float *wr = p->w + (ky * p->KW + kx0) * cp + c;
            for (int64_t k = 0; k < nkx; k++)
                acc = _mm256_fmadd_ps(_mm256_maskload_ps(xr + k * dxs, m), _mm256_loadu_ps(wr + k * cp), acc);
        }
        dw_out(p, acc, rp ? rp + c : NULL, yp + c, m, false);
    }
}

DW_INLINE CPU_AVX2 void dw_row_blk(const cpu_dwnhwc_params *p, const float *x, const float *rr,
                                   float *yr, int64_t sy, int64_t ky0, int64_t ky1, int64_t lo, int64_t hi, int64_t c,
                                   __m256i m, bool full, const int K)
{
    const int64_t xs = p->xs, SW = p->SW, dxs = p->DW * xs, cp = p->cp;
    __m256 wv[25];
    for (int t = 0; t < K * K; t++) wv[t] = _mm256_loadu_ps(p->w + t * cp + c);
    __m256 b = p->bias ? _mm256_maskload_ps(p->bias + c, m) : _mm256_setzero_ps();
    const float *xr[5];
    for (int ky = 0; ky < K; ky++) xr[ky] = ky >= ky0 && ky < ky1 ? x + (sy + ky * p->DH) * p->W * xs + c : NULL;
    for (int64_t ox = lo; ox < hi; ox++) {
        const int64_t off = (ox * SW - p->PL) * xs;
        __m256 a0 = b, a1 = _mm256_setzero_ps();
        for (int ky = 0; ky < K; ky++) {
            if (ky < ky0 || ky >= ky1) continue; /* kernel row outside the image */
            for (int kx = 0; kx < K; kx++) {
                __m256 v = dw_ld(xr[ky] + off + kx * dxs, m, full);
                if (ky & 1) a1 = _mm256_fmadd_ps(v, wv[ky * K + kx], a1);
                else a0 = _mm256_fmadd_ps(v, wv[ky * K + kx], a0);
            }
        }
        dw_out(p, _mm256_add_ps(a0, a1), rr ? rr + ox * p->rs + c : NULL, yr + ox * p->ys + c, m, full);
    }
}

DW_INLINE CPU_AVX2 void dw_row_fixed(const cpu_dwnhwc_params *p, const float *x, const float *rr,
                                     float *yr, int64_t sy, int64_t ky0, int64_t ky1, int64_t lo, int64_t hi, int64_t c0,
                                     int64_t c1, const int K)
{
    int64_t c = c0;
    for (; c + 8 <= c1; c += 8) dw_row_blk(p, x, rr, yr, sy, ky0, ky1, lo, hi, c, _mm256_set1_epi32(-1), true, K);
    if (c < c1) dw_row_blk(p, x, rr, yr, sy, ky0, ky1, lo, hi, c, cpu_avx2_mask((size_t)(c1 - c)), false, K);
}

static CPU_AVX2 void dw_row_3x3(const cpu_dwnhwc_params *p, const float *x, const float *rr, float *yr,
                                int64_t sy, int64_t ky0, int64_t ky1, int64_t lo, int64_t hi, int64_t c0, int64_t c1)
{
    dw_row_fixed(p, x, rr, yr, sy, ky0, ky1, lo, hi, c0, c1, 3);
}

static CPU_AVX2 void dw_row_5x5(const cpu_dwnhwc_params *p, const float *x, const float *rr, float *yr,
                                int64_t sy, int64_t ky0, int64_t ky1, int64_t lo, int64_t hi, int64_t c0, int64_t c1)
{
    dw_row_fixed(p, x, rr, yr, sy, ky0, ky1, lo, hi, c0, c1, 5);
}

CPU_AVX2 void cpu_f32_dwnhwc__avx2_fma(const cpu_dwnhwc_params *p, const float *x, const float *resid,
                                       float *y, int64_t oy0, int64_t oy1, int64_t c0, int64_t c1)
{
    int64_t lo, hi;
    cpu_dwnhwc_interior(p, &lo, &hi);
    const int K = p->KH == p->KW && (p->KH == 3 || p->KH == 5) ? (int)p->KH : 0;
    for (int64_t oy = oy0; oy < oy1; oy++) {
        int64_t ky0, ky1;
        cpu_dwnhwc_taps(oy, p->SH, p->PT, p->DH, p->KH, p->H, &ky0, &ky1);
        const int64_t sy = oy * p->SH - p->PT;
        float *yr = y + oy * p->OW * p->ys;
        const float *rr = resid ? resid + oy * p->OW * p->rs : NULL;
        bool fast = K && hi > lo;
        int64_t a = fast ? lo : p->OW, b = fast ? hi : p->OW;
        for (int64_t ox = 0; ox < a; ox++)
            dw_pixel(p, x, rr ? rr + ox * p->rs : NULL, yr + ox * p->ys, sy, ky0, ky1, ox, c0, c1);
        if (fast) {
            if (K == 3) dw_row_3x3(p, x, rr, yr, sy, ky0, ky1, lo, hi, c0, c1);
            else dw_row_5x5(p, x, rr, yr, sy, ky0, ky1, lo, hi, c0, c1);
        }
        for (int64_t ox = b; ox < p->OW; ox++)
            dw_pixel(p, x, rr ? rr + ox * p->rs : NULL, yr + ox * p->ys, sy, ky0, ky1, ox, c0, c1);
    }
}
