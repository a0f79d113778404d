/* f32-gemm/scalar.c — portable 6x16 GEMM microkernel (same packing as the AVX2 one), the
 * fallback on CPUs without AVX2+FMA. */
#include "cpu/cpu.h"
#include <string.h>

void cpu_f32_gemm_ukernel_6x16__scalar(size_t mr, size_t nr, size_t kc, const float *a,
                                       const float *b, float *c, size_t ldc, unsigned flags,
                                       const cpu_epilogue *ep)
{
    float acc[CPU_GEMM_MR][CPU_GEMM_NR];
    memset(acc, 0, sizeof acc);
    for (size_t k = 0; k < kc; k++) {
        const float *ak = a + k * CPU_GEMM_MR, *bk = b + k * CPU_GEMM_NR;
        for (int i = 0; i < CPU_GEMM_MR; i++) {
            float av = ak[i];
            for (int j = 0; j < CPU_GEMM_NR; j++) acc[i][j] += av * bk[j];
        }
    }
    for (size_t i = 0; i < mr; i++) {
        float *ci = c + i * ldc;
        for (size_t j = 0; j < nr; j++) {
            float v = acc[i][j];
            if (flags & CPU_UK_LOAD) v += ci[j];
            if (flags & CPU_UK_FINAL) {
                v *= ep->alpha;
                if (ep->bias) v += ep->bias_per_col ? ep->bias[j] : ep->bias[i];
                if (ep->resid) v += ep->resid[(int64_t)i * ep->ld_resid + (int64_t)j];
                v = cpu_act_scalar(v, ep->act, ep->act_a, ep->act_b);
            }
            ci[j] = v;
        }
    }
}
