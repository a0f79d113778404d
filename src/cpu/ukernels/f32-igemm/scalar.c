/* f32-igemm/scalar.c — portable indirect-GEMM microkernel of the NHWC convolution (4 pixel
 * rows x 8 output channels), the fallback on CPUs without AVX2+FMA. Same contract as the
 * vector kernels (igemm.h). */
#include "cpu/ukernels/f32-igemm/igemm.h"
#include <string.h>

#define MR CPU_IGEMM_MR_SCALAR
#define NR CPU_IGEMM_NR_SCALAR

void cpu_f32_igemm__scalar(size_t mr, size_t nc, size_t kc, size_t ks, const float *const *a,
                           size_t a_off, const float *w, float *c, size_t cs,
                           const cpu_igemm_ep *ep)
{
    if (mr == 0 || nc == 0 || kc == 0 || ks == 0) return;
    if (mr > MR) mr = MR;
    const size_t wn = nc > NR / 2 ? NR : NR / 2; /* packed panel width */
    float acc[MR][NR];
    memset(acc, 0, sizeof acc);
    const size_t as = ep->a_step;
    for (size_t t = 0; t < ks; t++, a += as ? 1 : MR) {
        for (size_t i = 0; i < mr; i++) {
            const float *ai = as ? a[0] + a_off + i * as : a[i] + a_off;
            const float *wk = w;
            for (size_t k = 0; k < kc; k++, wk += wn) {
                float av = ai[k];
                for (size_t j = 0; j < wn; j++) acc[i][j] += av * wk[j];
            }
        }
        w += kc * wn;
    }
    for (size_t i = 0; i < mr; i++) {
        float *ci = c + i * cs;
        for (size_t j = 0; j < nc; j++) {
            float v = acc[i][j];
            if (ep->bias) v += ep->bias[j];
            if (ep->resid) v += ep->resid[(int64_t)i * ep->rs + (int64_t)j];
            ci[j] = cpu_act_scalar(v, ep->act, ep->act_a, ep->act_b);
        }
    }
}
