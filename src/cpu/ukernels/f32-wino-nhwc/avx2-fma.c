/* f32-wino-nhwc/avx2-fma.c — NHWC Winograd microkernels with AVX2+FMA: transforms over 8
 * channels per ymm (tails through maskload/maskstore) and a 6x16 GEMM tile whose A operand
 * is 6 plain rows of the transformed input (no packing). */
#include "cpu/ukernels/avx2-math.h"
#include "cpu/ukernels/f32-wino-nhwc/wino-nhwc.h"

#define WV __m256
#define WM __m256i
#define WVW 8
#define WMASK(n) cpu_avx2_mask((size_t)(n))
#define WMASK0 _mm256_setzero_si256()
#define WLOAD(p, m) _mm256_maskload_ps((p), (m))
#define WSTORE(p, v) _mm256_storeu_ps((p), (v))
#define WSTOREM(p, m, v) _mm256_maskstore_ps((p), (m), (v))
#define WZERO() _mm256_setzero_ps()
#define WADD(a, b) _mm256_add_ps((a), (b))
#define WSUB(a, b) _mm256_sub_ps((a), (b))
#define WMUL(a, k) _mm256_mul_ps((a), _mm256_set1_ps(k))
#define WFMA(a, k, c) _mm256_fmadd_ps((a), _mm256_set1_ps(k), (c))
#define WACT(v, p) wn256_act((v), (p))
#define WATTR CPU_AVX2
#define WNAME(base) base##__avx2_fma

static CPU_AVX2 __attribute__((noinline)) __m256 wn256_act_slow(__m256 v, const cpu_wino_nhwc *p)
{
    return cpu_avx2_act(v, p->act, p->act_a, p->act_b);
}

static inline CPU_AVX2 __m256 wn256_act(__m256 v, const cpu_wino_nhwc *p)
{
    return p->act == CPU_ACT_RELU ? _mm256_max_ps(v, _mm256_setzero_ps()) : wn256_act_slow(v, p);
}

#include "cpu/ukernels/f32-wino-nhwc/wino-nhwc-impl.h"

/* ---- GEMM: 6 rows x 16 columns, 12 ymm accumulators --------------------------------------- */

#define MR 6
#define NR 16

#define WG_EACH_ROW(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define WG_PTR(i) const float *a##i = (size_t)i < mr ? a + (size_t)i * lda : a;
#define WG_DECL(i) __m256 acc##i##_0 = _mm256_setzero_ps(), acc##i##_1 = _mm256_setzero_ps();
#define WG_FMA(i)                                                                              \
    if (rows > i) {                                                                            \
        __m256 av = _mm256_broadcast_ss(a##i + k);                                             \
        acc##i##_0 = _mm256_fmadd_ps(av, b0, acc##i##_0);                                      \
        acc##i##_1 = _mm256_fmadd_ps(av, b1, acc##i##_1);                                      \
    }
#define WG_STORE(i)                                                                            \
    if (rows > i && mr > i) {                                                                  \
        float *ci = c + (size_t)i * ldc;                                                       \
        if (nr == NR) {                                                                        \
            _mm256_storeu_ps(ci, acc##i##_0);                                                  \
            _mm256_storeu_ps(ci + 8, acc##i##_1);                                              \
        } else {                                                                               \
            _mm256_maskstore_ps(ci, m0, acc##i##_0);                                           \
            _mm256_maskstore_ps(ci + 8, m1, acc##i##_1);                                       \
        }                                                                                      \
    }

static inline __attribute__((always_inline)) CPU_AVX2 void
wg256_tile(const int rows, size_t mr, size_t nr, size_t kc, const float *a, size_t lda,
           const float *b, float *c, size_t ldc)
{
    WG_EACH_ROW(WG_PTR)
    WG_EACH_ROW(WG_DECL)
    for (size_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        WG_EACH_ROW(WG_FMA)
        b += NR;
    }
    __m256i m0 = cpu_avx2_mask(nr), m1 = cpu_avx2_mask(nr > 8 ? nr - 8 : 0);
    WG_EACH_ROW(WG_STORE)
}

#define WG_VARIANT(R)                                                                          \
    static CPU_AVX2 void wg256_##R(size_t mr, size_t nr, size_t kc, const float *a, size_t lda, \
                                   const float *b, float *c, size_t ldc)                      \
    {                                                                                          \
        wg256_tile(R, mr, nr, kc, a, lda, b, c, ldc);                                          \
    }
WG_VARIANT(6) WG_VARIANT(4) WG_VARIANT(2)

CPU_AVX2 void cpu_f32_wino_nhwc_gemm_6x16__avx2_fma(size_t mr, size_t nr, size_t kc,
                                                     const float *a, size_t lda, const float *b,
                                                     float *c, size_t ldc)
{
    if (mr == 0 || nr == 0 || mr > MR || nr > NR) return;
    if (mr > 4) wg256_6(mr, nr, kc, a, lda, b, c, ldc);
    else if (mr > 2) wg256_4(mr, nr, kc, a, lda, b, c, ldc);
    else wg256_2(mr, nr, kc, a, lda, b, c, ldc);
}
