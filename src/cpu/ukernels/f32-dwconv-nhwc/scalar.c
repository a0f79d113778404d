/* f32-dwconv-nhwc/scalar.c — portable NHWC depthwise convolution (any kernel size, stride,
 * dilation, padding): per output pixel, the valid taps once, then a loop over channels;
 * bias, residual and activation fused. */
#include "cpu/ukernels/f32-dwconv-nhwc/dwconv-nhwc.h"

void cpu_f32_dwnhwc__scalar(const cpu_dwnhwc_params *p, const float *x, const float *resid,
                            float *y, int64_t oy0, int64_t oy1, int64_t c0, int64_t c1)
{
    const int64_t cp = p->cp, xs = p->xs;
    for (int64_t oy = oy0; oy < oy1; oy++) {
        int64_t ky0, ky1;
        cpu_dwnhwc_taps(oy, p->SH, p->PT, p->DH, p->KH, p->H, &ky0, &ky1);
        int64_t sy = oy * p->SH - p->PT;
        for (int64_t ox = 0; ox < p->OW; ox++) {
            int64_t kx0, kx1;
            cpu_dwnhwc_taps(ox, p->SW, p->PL, p->DW, p->KW, p->W, &kx0, &kx1);
            int64_t sx = ox * p->SW - p->PL;
            float *yp = y + (oy * p->OW + ox) * p->ys;
            const float *rp = resid ? resid + (oy * p->OW + ox) * p->rs : NULL;
            for (int64_t c = c0; c < c1; c++) {
                float s = p->bias ? p->bias[c] : 0.0f;
                for (int64_t ky = ky0; ky < ky1; ky++) {
                    const float *xr = x + ((sy + ky * p->DH) * p->W + sx) * xs + c;
                    const float *wr = p->w + ky * p->KW * cp + c;
                    for (int64_t kx = kx0; kx < kx1; kx++) s += xr[kx * p->DW * xs] * wr[kx * cp];
                }
                if (rp) s += rp[c];
                yp[c] = cpu_act_scalar(s, p->act, p->act_a, p->act_b);
            }
        }
    }
}
