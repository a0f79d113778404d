/* conv_internal.h — what conv.c and winograd.c share inside src/cpu. */
#ifndef KILN_CPU_CONV_INTERNAL_H
#define KILN_CPU_CONV_INTERNAL_H

#include "cpu/cpu.h"

bool cpu_conv2d_is_depthwise(const cpu_conv2d *g);
/* CPU_CONV_* forced by KILN_CPU_CONV=gemm|dw|winograd, or 0 (read once). */
int cpu_conv_forced_algo(void);
/* Eligible and worth it (enough channels that the transforms pay off). */
bool cpu_conv2d_winograd_preferred(const cpu_conv2d *g);
kiln_status cpu_conv2d_winograd(const cpu_conv2d *g, const float *x, const float *w,
                                const float *bias, const float *resid, float *y,
                                const cpu_epilogue *act, bool cache, core_threadpool *pool);

#endif
