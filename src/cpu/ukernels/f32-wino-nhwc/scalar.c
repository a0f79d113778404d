/* f32-wino-nhwc/scalar.c — NHWC Winograd microkernels in plain C (the fallback table): the
 * same transforms one channel at a time, and a 6x16 GEMM tile. */
#include "cpu/ukernels/f32-wino-nhwc/wino-nhwc.h"

#define WV float
#define WM int
#define WVW 1
#define WMASK(n) ((n) > 0)
#define WMASK0 0
#define WLOAD(p, m) ((m) ? *(p) : 0.0f)
#define WSTORE(p, v) (*(p) = (v))
#define WSTOREM(p, m, v) ((m) ? (void)(*(p) = (v)) : (void)0)
#define WZERO() 0.0f
#define WADD(a, b) ((a) + (b))
#define WSUB(a, b) ((a) - (b))
#define WMUL(a, k) ((a) * (k))
#define WFMA(a, k, c) ((a) * (k) + (c))
#define WACT(v, p) cpu_act_scalar((v), (p)->act, (p)->act_a, (p)->act_b)
#define WATTR
#define WNAME(base) base##__scalar

#include "cpu/ukernels/f32-wino-nhwc/wino-nhwc-impl.h"

#define MR 6
#define NR 16

void cpu_f32_wino_nhwc_gemm_6x16__scalar(size_t mr, size_t nr, size_t kc, const float *a,
                                         size_t lda, const float *b, float *c, size_t ldc)
{
    if (mr > MR || nr > NR) return;
    for (size_t i = 0; i < mr; i++) {
        float acc[NR] = {0};
        const float *ai = a + i * lda;
        for (size_t k = 0; k < kc; k++) {
            const float av = ai[k], *bk = b + k * NR;
            for (size_t j = 0; j < NR; j++) acc[j] += av * bk[j];
        }
        for (size_t j = 0; j < nr; j++) c[i * ldc + j] = acc[j];
    }
}
