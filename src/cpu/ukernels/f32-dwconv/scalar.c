/* f32-dwconv/scalar.c — portable depthwise convolution of one channel plane (any kernel
 * size, stride, dilation, padding), with bias, residual and activation fused. */
#include "cpu/cpu.h"

void cpu_f32_dwconv_ukernel__scalar(const cpu_dwconv_params *p, const float *x, const float *w,
                                    float bias, float *y, const float *resid, cpu_act act,
                                    float a, float b)
{
    for (int64_t oy = 0; oy < p->OH; oy++) {
        for (int64_t ox = 0; ox < p->OW; ox++) {
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
            int64_t o = oy * p->OW + ox;
            if (resid) s += resid[o];
            y[o] = cpu_act_scalar(s, act, a, b);
        }
    }
}
