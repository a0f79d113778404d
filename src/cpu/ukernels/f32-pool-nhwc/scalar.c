/* f32-pool-nhwc/scalar.c — portable NHWC window and global pooling (max / average). */
#include "cpu/ukernels/f32-pool-nhwc/pool-nhwc.h"

void cpu_f32_poolnhwc__scalar(const cpu_pool2d *g, int kind, bool include_pad, const float *x, float *y,
                              int64_t oy0, int64_t oy1, int64_t c0, int64_t c1)
{
    const int64_t C = g->C;
    for (int64_t oy = oy0; oy < oy1; oy++) {
        int64_t ky0, ky1, npy;
        cpu_poolnhwc_taps(oy, g->SH, g->PT, g->PB, g->DH, g->KH, g->H, &ky0, &ky1, &npy);
        int64_t sy = oy * g->SH - g->PT;
        for (int64_t ox = 0; ox < g->OW; ox++) {
            int64_t kx0, kx1, npx;
            cpu_poolnhwc_taps(ox, g->SW, g->PL, g->PR, g->DW, g->KW, g->W, &kx0, &kx1, &npx);
            int64_t sx = ox * g->SW - g->PL;
            float *yp = y + (oy * g->OW + ox) * C;
            int64_t cnt = (ky1 - ky0) * (kx1 - kx0);
            float div = cpu_poolnhwc_div(include_pad, cnt, npy * npx);
            for (int64_t c = c0; c < c1; c++) {
                float acc = 0.0f;
                bool first = true;
                for (int64_t ky = ky0; ky < ky1; ky++) {
                    const float *xr = x + ((sy + ky * g->DH) * g->W + sx) * C + c;
                    for (int64_t kx = kx0; kx < kx1; kx++) {
                        float v = xr[kx * g->DW * C];
                        if (kind == CPU_POOL_AVG) acc += v;
                        else if (first || v > acc) acc = v;
                        first = false;
                    }
                }
                if (kind == CPU_POOL_AVG) acc = cnt ? acc / div : 0.0f;
                yp[c] = acc;
            }
        }
    }
}

void cpu_f32_gpoolnhwc__scalar(int kind, int64_t HW, int64_t C, const float *x, float *y, int64_t nc)
{
    for (int64_t c = 0; c < nc; c++) {
        if (HW <= 0) {
            y[c] = 0.0f;
        } else if (kind == CPU_POOL_MAX) {
            float m = x[c];
            for (int64_t p = 1; p < HW; p++) {
                float v = x[p * C + c];
                if (v > m) m = v;
            }
            y[c] = m;
        } else {
            double s = 0.0;
            for (int64_t p = 0; p < HW; p++) s += x[p * C + c];
            y[c] = (float)(s / (double)HW);
        }
    }
}
