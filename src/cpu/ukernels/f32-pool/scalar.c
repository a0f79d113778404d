/* f32-pool/scalar.c — the row pieces of separable 2-D pooling: combine input rows into an
 * accumulator row, then reduce windows along it. Fallback on CPUs without AVX2. */
#include "cpu/cpu_misc.h"

void cpu_f32_vaccum__scalar(int kind, float *acc, const float *x, size_t n)
{
    if (kind == CPU_POOL_MAX) {
        for (size_t i = 0; i < n; i++) acc[i] = x[i] > acc[i] ? x[i] : acc[i];
    } else {
        for (size_t i = 0; i < n; i++) acc[i] += x[i];
    }
}

void cpu_f32_hwindow__scalar(int kind, const float *buf, float *y, size_t n, size_t kw, size_t sw,
                             size_t dw)
{
    for (size_t o = 0; o < n; o++) {
        const float *p = buf + o * sw;
        float r = p[0];
        for (size_t k = 1; k < kw; k++) {
            float v = p[k * dw];
            if (kind == CPU_POOL_MAX) r = v > r ? v : r;
            else r += v;
        }
        y[o] = r;
    }
}
