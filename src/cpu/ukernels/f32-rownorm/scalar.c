/* f32-rownorm/scalar.c — per-row pieces of normalizations and softmax (sums in double, the
 * reference kernels' arithmetic): the fallback on CPUs without AVX2. */
#include "cpu/cpu_misc.h"
#include <math.h>

double cpu_f32_sum__scalar(const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += x[i];
    return s;
}

float cpu_f32_max__scalar(const float *x, size_t n)
{
    float m = n ? x[0] : -INFINITY;
    for (size_t i = 1; i < n; i++)
        if (x[i] > m) m = x[i];
    return m;
}

double cpu_f32_layernorm__scalar(const float *x, float *y, size_t n, double eps, const float *scale,
                                 bool s_one, const float *bias, bool b_one, double *inv_out)
{
    double m = 0.0, v = 0.0;
    for (size_t i = 0; i < n; i++) m += x[i];
    m = n > 0 ? m / (double)n : 0.0;
    for (size_t i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
    v = n > 0 ? v / (double)n : 0.0;
    double inv = 1.0 / sqrt(v + eps);
    for (size_t i = 0; i < n; i++) {
        float t = (float)((x[i] - m) * inv);
        if (scale) t *= scale[s_one ? 0 : i];
        if (bias) t += bias[b_one ? 0 : i];
        y[i] = t;
    }
    *inv_out = inv;
    return m;
}

void cpu_f32_softmax__scalar(const float *x, float *y, size_t n, bool log_)
{
    if (!n) return;
    float mx = cpu_f32_max__scalar(x, n);
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        float e = expf(x[i] - mx);
        if (!log_) y[i] = e;
        sum += e;
    }
    if (!log_) {
        float inv = (float)(1.0 / sum);
        for (size_t i = 0; i < n; i++) y[i] *= inv;
    } else {
        float ls = (float)log(sum);
        for (size_t i = 0; i < n; i++) y[i] = x[i] - mx - ls;
    }
}

void cpu_f32_scale_bias__scalar(const float *x, float *y, size_t n, float k, float b)
{
    for (size_t i = 0; i < n; i++) y[i] = x[i] * k + b;
}

void cpu_f32_lerp__scalar(const float *a, const float *b, float *y, size_t n, float w0, float w1)
{
    for (size_t i = 0; i < n; i++) y[i] = w0 * a[i] + w1 * b[i];
}
