/* pool-nhwc.h — the NHWC pooling microkernels (pool_nhwc.c drives them): window max/average
 * over output rows and channel ranges, and global max/mean over the pixels of one image.
 * Internal to src/cpu. */
#ifndef KILN_CPU_POOL_NHWC_UK_H
#define KILN_CPU_POOL_NHWC_UK_H

#include "cpu/nhwc.h"

/* Output rows [oy0, oy1) and channels [c0, c1) of one image (x [H, W, C], y [OH, OW, C],
 * both dense). kind: CPU_POOL_MAX / CPU_POOL_AVG with the semantics of nhwc.h; a window
 * with no tap inside the image gives 0. Max keeps the first tap unless a later one is
 * greater (as the reference does, NaN included). */
typedef void (*cpu_f32_poolnhwc_fn)(const cpu_pool2d *g, int kind, bool include_pad, const float *x,
                                    float *y, int64_t oy0, int64_t oy1, int64_t c0, int64_t c1);
/* y[c] = max or mean over p < HW of x[p * C + c], for c < nc (mean summed in double). */
typedef void (*cpu_f32_gpoolnhwc_fn)(int kind, int64_t HW, int64_t C, const float *x, float *y, int64_t nc);

#define CPU_POOLNHWC_DECL(isa)                                                                  \
    void cpu_f32_poolnhwc__##isa(const cpu_pool2d *g, int kind, bool include_pad, const float *x, \
                                 float *y, int64_t oy0, int64_t oy1, int64_t c0, int64_t c1);   \
    void cpu_f32_gpoolnhwc__##isa(int kind, int64_t HW, int64_t C, const float *x, float *y,    \
                                  int64_t nc);
CPU_POOLNHWC_DECL(scalar)
CPU_POOLNHWC_DECL(avx2_fma)
CPU_POOLNHWC_DECL(avx512)

/* Valid taps [*lo, *hi) of output position o along one axis, and (*np) the taps before the
 * end of the trailing pad (the count_include_pad divisor's factor, as the reference counts). */
static inline void cpu_poolnhwc_taps(int64_t o, int64_t s, int64_t pb, int64_t pe, int64_t d, int64_t k,
                                     int64_t in, int64_t *lo, int64_t *hi, int64_t *np)
{
    int64_t st = o * s - pb, lim = in + pe - st;
    int64_t l, h, n;
    if (d == 1) { /* the common case, without the three 64-bit divisions (per output pixel) */
        l = st >= 0 ? 0 : -st;
        h = in - st <= 0 ? 0 : in - st;
        n = lim <= 0 ? 0 : lim;
    } else {
        l = st >= 0 ? 0 : (-st + d - 1) / d;
        h = in - st <= 0 ? 0 : (in - st + d - 1) / d;
        n = lim <= 0 ? 0 : (lim + d - 1) / d;
    }
    if (h > k) h = k;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
    *np = n > k ? k : n;
}

/* The divisor of an average window (0 when the window is empty). */
static inline float cpu_poolnhwc_div(bool include_pad, int64_t cnt, int64_t cnt_pad)
{
    return (float)(include_pad ? cnt_pad : cnt);
}

#endif
