/* f32-dwconv/avx512f.c — depthwise convolution of one channel plane with AVX-512: 16 output
 * columns per vector in the interior (stride 1 loads, stride 2 through a two-register
 * permute), the interior's last partial vector under a lane mask, scalar borders; bias,
 * residual and activation fused. */
#include "cpu/ukernels/avx512-math.h"

/* One output pixel with bounds checks (borders and other strides). */
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

/* Up to 16 floats r[0], r[2], ... under the load masks (lanes of r[0..15] and r[16..31]). */
static inline CPU_AVX512 __m512 dw_load_s2(const float *r, __mmask16 mlo, __mmask16 mhi)
{
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    __m512 lo = _mm512_maskz_loadu_ps(mlo, r), hi = _mm512_maskz_loadu_ps(mhi, r + 16);
    return _mm512_permutex2var_ps(lo, even, hi);
}

/* cnt (1..16) output columns starting at ox, all taps inside the image rows. */
static inline __attribute__((always_inline)) CPU_AVX512 __m512
dw_vec(const cpu_dwconv_params *p, const float *const *rows, const float *const *wk, int nr,
       int64_t ox, int64_t cnt, float bias)
{
    __m512 acc = _mm512_set1_ps(bias);
    const int64_t KW = p->KW, DW = p->DW;
    if (p->SW == 1) {
        __mmask16 m = cpu_avx512_mask((size_t)cnt);
        for (int r = 0; r < nr; r++) {
            const float *src = rows[r] + ox;
            const float *wr = wk[r];
            for (int64_t kx = 0; kx < KW; kx++)
                acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, src + kx * DW), _mm512_set1_ps(wr[kx]), acc);
        }
    } else {
        /* the last needed float is at 2 * (cnt - 1): lanes [0, 2cnt - 1) of the 32 */
        int64_t need = 2 * cnt - 1;
        __mmask16 mlo = cpu_avx512_mask((size_t)(need > 16 ? 16 : need));
        __mmask16 mhi = cpu_avx512_mask((size_t)(need > 16 ? need - 16 : 0));
        for (int r = 0; r < nr; r++) {
            const float *src = rows[r] + ox * 2;
            const float *wr = wk[r];
            for (int64_t kx = 0; kx < KW; kx++)
                acc = _mm512_fmadd_ps(dw_load_s2(src + kx * DW, mlo, mhi), _mm512_set1_ps(wr[kx]), acc);
        }
    }
    return acc;
}

CPU_AVX512 void cpu_f32_dwconv_ukernel__avx512(const cpu_dwconv_params *p, const float *x,
                                               const float *w, float bias, float *y,
                                               const float *resid, cpu_act act, float a,
                                               float b)
{
    const int64_t SW = p->SW, W = p->W, OW = p->OW;
    bool vec = (SW == 1 || SW == 2) && p->KH <= 16;
    /* interior columns [lo, hi): every tap of the row in bounds */
    int64_t lo = (p->PL + SW - 1) / SW, hi = -1;
    int64_t span = (p->KW - 1) * p->DW;
    int64_t lim = W - 1 - span + p->PL; /* ox*SW <= lim */
    if (lim >= 0) hi = lim / SW + 1;
    if (hi > OW) hi = OW;
    if (lo > hi) lo = hi = 0;
    if (hi < 0) hi = 0;
    for (int64_t oy = 0; oy < p->OH; oy++) {
        float *yr = y + oy * OW;
        const float *rr = resid ? resid + oy * OW : NULL;
        int64_t ox = 0;
        if (vec && hi > lo) {
            for (; ox < lo; ox++) {
                float s = dw_pixel(p, x, w, bias, oy, ox);
                if (rr) s += rr[ox];
                yr[ox] = cpu_act_scalar(s, act, a, b);
            }
            /* taps of valid rows */
            const float *rows[16];
            const float *wk[16];
            int nr = 0;
            for (int64_t ky = 0; ky < p->KH; ky++) {
                int64_t iy = oy * p->SH - p->PT + ky * p->DH;
                if (iy < 0 || iy >= p->H) continue;
                rows[nr] = x + iy * W - p->PL;
                wk[nr] = w + ky * p->KW;
                nr++;
            }
            for (; ox < hi; ox += 16) {
                int64_t cnt = hi - ox < 16 ? hi - ox : 16;
                __mmask16 m = cpu_avx512_mask((size_t)cnt);
                __m512 acc = dw_vec(p, rows, wk, nr, ox, cnt, bias);
                if (rr) acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(m, rr + ox));
                if (act != CPU_ACT_NONE) acc = cpu_avx512_act(acc, act, a, b);
                _mm512_mask_storeu_ps(yr + ox, m, acc);
            }
            ox = hi;
        }
        for (; ox < OW; ox++) {
            float s = dw_pixel(p, x, w, bias, oy, ox);
            if (rr) s += rr[ox];
            yr[ox] = cpu_act_scalar(s, act, a, b);
        }
    }
}
