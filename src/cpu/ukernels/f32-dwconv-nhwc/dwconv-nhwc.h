/* dwconv-nhwc.h — the NHWC depthwise-convolution microkernels (dwconv_nhwc.c drives them):
 * their parameter block, signature and shared geometry helpers. Internal to src/cpu. */
#ifndef KILN_CPU_DWCONV_NHWC_UK_H
#define KILN_CPU_DWCONV_NHWC_UK_H

#include "cpu/cpu.h"

/* Packed weights are [KH*KW][cp] with cp = C rounded up to CPU_DWNHWC_CBLK, zero past C, so
 * a vector kernel may load a whole block of weights at any channel block start. */
#define CPU_DWNHWC_CBLK 16

typedef struct cpu_dwnhwc_params {
    int64_t C, H, W, OH, OW, KH, KW, SH, SW, DH, DW, PT, PL;
    int64_t xs, ys, rs;  /* pixel strides of x, y, resid */
    int64_t cp;          /* channel stride of the packed weights */
    const float *w;      /* packed weights */
    const float *bias;   /* [C] or NULL */
    cpu_act act;
    float act_a, act_b;
} cpu_dwnhwc_params;

/* Output rows [oy0, oy1) and channels [c0, c1) of one image: x, resid (NULL or like y) and y
 * point at the image's first pixel. c0 is a multiple of CPU_DWNHWC_CBLK. resid may equal y
 * (with rs == ys): each element is read before it is written. */
typedef void (*cpu_f32_dwnhwc_fn)(const cpu_dwnhwc_params *p, const float *x, const float *resid,
                                  float *y, int64_t oy0, int64_t oy1, int64_t c0, int64_t c1);

void cpu_f32_dwnhwc__scalar(const cpu_dwnhwc_params *p, const float *x, const float *resid,
                            float *y, int64_t oy0, int64_t oy1, int64_t c0, int64_t c1);
void cpu_f32_dwnhwc__avx2_fma(const cpu_dwnhwc_params *p, const float *x, const float *resid,
                              float *y, int64_t oy0, int64_t oy1, int64_t c0, int64_t c1);
void cpu_f32_dwnhwc__avx512(const cpu_dwnhwc_params *p, const float *x, const float *resid,
                            float *y, int64_t oy0, int64_t oy1, int64_t c0, int64_t c1);

/* Valid taps of output position o along one axis (stride s, leading pad pad, dilation d,
 * k taps, input size in): taps [*lo, *hi) land inside [0, in). */
static inline void cpu_dwnhwc_taps(int64_t o, int64_t s, int64_t pad, int64_t d, int64_t k,
                                   int64_t in, int64_t *lo, int64_t *hi)
{
    int64_t st = o * s - pad;
    int64_t l = st >= 0 ? 0 : (-st + d - 1) / d;
    int64_t h = in - st <= 0 ? 0 : (in - st + d - 1) / d;
    if (h > k) h = k;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

/* Output columns [*lo, *hi) whose KW taps all land inside the row (possibly empty; then
 * *lo == *hi and every column is a border column). */
static inline void cpu_dwnhwc_interior(const cpu_dwnhwc_params *p, int64_t *lo, int64_t *hi)
{
    int64_t l = p->PL <= 0 ? 0 : (p->PL + p->SW - 1) / p->SW;
    int64_t lim = p->W - 1 + p->PL - (p->KW - 1) * p->DW; /* ox * SW <= lim */
    int64_t h = lim >= 0 ? lim / p->SW + 1 : 0;
    if (h > p->OW) h = p->OW;
    if (l > p->OW) l = p->OW;
    if (h < l) h = l;
    *lo = l;
    *hi = h;
}

#endif
