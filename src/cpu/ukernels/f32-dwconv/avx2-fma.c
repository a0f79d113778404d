/* f32-dwconv/avx2-fma.c — depthwise convolution of one channel plane with AVX2+FMA: 8 output
 * columns per vector in the interior (stride 1 loads, stride 2 deinterleaved loads), scalar
 * borders; bias, residual and activation fused. */
#include "cpu/ukernels/avx2-math.h"

/* One output pixel with bounds checks (borders and odd strides). */
static inline float dw_pixel(const cpu_dwconv_params *p, const float *x, const float *w,
                             float bias, int64_t oy, int64_t ox)
{
    float s = bias;
    for (int64_t ky = 0; ky < p->KH; ky++) {
        int64_t iy = oy * p->SH - p->PT + ky * p->DH;
        if (iy < 0 || iy >= p->H) continue;
        for (int64_t kx = 0; kx < p->KW; kx++) {
            int64_t ix = ox * p->SW - p->PL + kx * p->DW;
            if (ix < 0 || ix >= p->W) continue;
            s += x[iy * p->W + ix] * w[ky * p->KW + kx];
        }
    }
    return s;
}

/* 8 floats starting at r with stride 2 (reads r[0..15]). */
static inline CPU_AVX2 __m256 dw_load_s2(const float *r)
{
    __m256 lo = _mm256_loadu_ps(r), hi = _mm256_loadu_ps(r + 8);
    __m256 ev = _mm256_shuffle_ps(lo, hi, 0x88); /* lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6 */
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), 0xD8));
}

CPU_AVX2 void cpu_f32_dwconv_ukernel__avx2_fma(const cpu_dwconv_params *p, const float *x,
                                               const float *w, float bias, float *y,
                                               const float *resid, cpu_act act, float a,
                                               float b)
{
    const int64_t SW = p->SW, W = p->W, OW = p->OW;
    bool vec = SW == 1 || SW == 2;
    /* interior columns: every tap in bounds; for stride 2 the 16-float load must stay inside
     * the row too */
    int64_t lo = (p->PL + SW - 1) / SW, hi = -1;
    int64_t span = (p->KW - 1) * p->DW;
    int64_t lim = W - 1 - span + p->PL; /* ox*SW <= lim */
    if (lim >= 0) hi = lim / SW + 1;
    if (hi > OW) hi = OW;
    if (lo > hi) lo = hi = 0;
    if (hi < 0) hi = 0;
    if (SW == 2 && hi > lo) {
        /* the last vector reads up to ix + 15 where ix = (ox0)*2 - PL + span; shrink hi so that
         * ox0 + 8 <= hi implies the read stays inside the row */
        int64_t lim2 = W - 16 - span + p->PL; /* ox0*2 <= lim2 */
        int64_t hv = lim2 >= 0 ? lim2 / 2 + 8 : 0;
        if (hv < hi) hi = hv < lo ? lo : hv;
    }
    for (int64_t oy = 0; oy < p->OH; oy++) {
        float *yr = y + oy * OW;
        const float *rr = resid ? resid + oy * OW : NULL;
        int64_t ox = 0;
        if (vec) {
            for (; ox < lo && ox < OW; ox++) {
                float s = dw_pixel(p, x, w, bias, oy, ox);
                if (rr) s += rr[ox];
                yr[ox] = cpu_act_scalar(s, act, a, b);
            }
            /* taps of valid rows */
            const float *rows[16];
            const float *wk[16];
            int nr = 0;
            if (p->KH <= 16) {
                for (int64_t ky = 0; ky < p->KH; ky++) {
                    int64_t iy = oy * p->SH - p->PT + ky * p->DH;
                    if (iy < 0 || iy >= p->H) continue;
                    rows[nr] = x + iy * W - p->PL;
                    wk[nr] = w + ky * p->KW;
                    nr++;
                }
                __m256 vb = _mm256_set1_ps(bias);
                for (; ox + 8 <= hi; ox += 8) {
                    __m256 acc = vb;
                    for (int r = 0; r < nr; r++) {
                        const float *src = rows[r] + ox * SW;
                        const float *wr = wk[r];
                        if (SW == 1) {
                            for (int64_t kx = 0; kx < p->KW; kx++)
                                acc = _mm256_fmadd_ps(_mm256_loadu_ps(src + kx * p->DW),
                                                      _mm256_broadcast_ss(wr + kx), acc);
                        } else {
                            for (int64_t kx = 0; kx < p->KW; kx++)
                                acc = _mm256_fmadd_ps(dw_load_s2(src + kx * p->DW),
                                                      _mm256_broadcast_ss(wr + kx), acc);
                        }
                    }
                    if (rr) acc = _mm256_add_ps(acc, _mm256_loadu_ps(rr + ox));
                    _mm256_storeu_ps(yr + ox, cpu_avx2_act(acc, act, a, b));
                }
            }
        }
        for (; ox < OW; ox++) {
            float s = dw_pixel(p, x, w, bias, oy, ox);
            if (rr) s += rr[ox];
            yr[ox] = cpu_act_scalar(s, act, a, b);
        }
    }
}
