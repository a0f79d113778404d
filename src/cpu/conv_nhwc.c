/* conv_nhwc.c — NHWC convolution: dispatcher and indirect GEMM (stub until written). */
#include "cpu/nhwc.h"

kiln_status cpu_conv2d_nhwc_igemm_f32(const cpu_conv2d *g, const float *x, int64_t xs,
                                      const float *w, const float *bias, const float *resid,
                                      int64_t rs, float *y, int64_t ys, const cpu_epilogue *ep,
                                      bool cache, core_threadpool *pool)
{
    (void)g; (void)x; (void)xs; (void)w; (void)bias; (void)resid; (void)rs; (void)y; (void)ys;
    (void)ep; (void)cache; (void)pool;
    return KILN_ERR_UNSUPPORTED;
}

kiln_status cpu_conv2d_nhwc_f32(const cpu_conv2d *g, const float *x, int64_t xs, const float *w,
                                const float *bias, const float *resid, int64_t rs, float *y,
                                int64_t ys, const cpu_epilogue *ep, int algo, bool cache,
                                core_threadpool *pool)
{
    kiln_status st = KILN_ERR_UNSUPPORTED;
    if ((algo == CPU_CONV_AUTO || algo == CPU_CONV_DW) && cpu_conv2d_nhwc_dw_eligible(g))
        st = cpu_dwconv2d_nhwc_f32(g, x, xs, w, bias, resid, rs, y, ys, ep, cache, pool);
    else if ((algo == CPU_CONV_WINO || (algo == CPU_CONV_AUTO && cpu_conv2d_nhwc_winograd_preferred(g))) &&
             cpu_conv2d_nhwc_winograd_eligible(g))
        st = cpu_conv2d_nhwc_winograd_f32(g, x, xs, w, bias, resid, rs, y, ys, ep, cache, pool);
    if (st != KILN_ERR_UNSUPPORTED) return st;
    return cpu_conv2d_nhwc_igemm_f32(g, x, xs, w, bias, resid, rs, y, ys, ep, cache, pool);
}
