/* pool_nhwc.c — pooling on NHWC (stub until written). */
#include "cpu/nhwc.h"

kiln_status cpu_pool2d_nhwc_f32(const cpu_pool2d *g, int kind, bool count_include_pad,
                                const float *x, float *y, core_threadpool *pool)
{
    (void)g; (void)kind; (void)count_include_pad; (void)x; (void)y; (void)pool;
    return KILN_ERR_UNSUPPORTED;
}

kiln_status cpu_global_pool_nhwc_f32(int kind, int64_t N, int64_t HW, int64_t C, const float *x,
                                     float *y, core_threadpool *pool)
{
    (void)kind; (void)N; (void)HW; (void)C; (void)x; (void)y; (void)pool;
    return KILN_ERR_UNSUPPORTED;
}
