/* winograd_nhwc.c — Winograd convolution on NHWC (stub until written). */
#include "cpu/nhwc.h"

bool cpu_conv2d_nhwc_winograd_eligible(const cpu_conv2d *g) { (void)g; return false; }
bool cpu_conv2d_nhwc_winograd_preferred(const cpu_conv2d *g) { (void)g; return false; }

kiln_status cpu_conv2d_nhwc_winograd_f32(const cpu_conv2d *g, const float *x, int64_t xs,
                                         const float *w, const float *bias, const float *resid,
                                         int64_t rs, float *y, int64_t ys, const cpu_epilogue *ep,
                                         bool cache, core_threadpool *pool)
{
    (void)g; (void)x; (void)xs; (void)w; (void)bias; (void)resid; (void)rs; (void)y; (void)ys;
    (void)ep; (void)cache; (void)pool;
    return KILN_ERR_UNSUPPORTED;
}
