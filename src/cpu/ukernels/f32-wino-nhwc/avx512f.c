/* f32-wino-nhwc/avx512f.c — NHWC Winograd microkernels with AVX-512: transforms over 16
 * channels per zmm (tails under lane masks) and a 14x32 GEMM tile whose A operand is 14
 * plain rows of the transformed input (no packing: each k step broadcasts one float from
 * each row). */
#include "cpu/ukernels/avx512-math.h"
#include "cpu/ukernels/f32-wino-nhwc/wino-nhwc.h"

#define WV __m512
#define WM __mmask16
#define WVW 16
#define WMASK(n) cpu_avx512_mask((size_t)(n))
#define WMASK0 ((__mmask16)0)
#define WLOAD(p, m) _mm512_maskz_loadu_ps((m), (p))
#define WSTORE(p, v) _mm512_storeu_ps((p), (v))
#define WSTOREM(p, m, v) _mm512_mask_storeu_ps((p), (m), (v))
#define WZERO() _mm512_setzero_ps()
#define WADD(a, b) _mm512_add_ps((a), (b))
#define WSUB(a, b) _mm512_sub_ps((a), (b))
#define WMUL(a, k) _mm512_mul_ps((a), _mm512_set1_ps(k))
#define WFMA(a, k, c) _mm512_fmadd_ps((a), _mm512_set1_ps(k), (c))
#define WACT(v, p) wn512_act((v), (p))
#define WATTR CPU_AVX512
#define WNAME(base) base##__avx512

/* The activation, out of line (long, and once per output vector). */
static CPU_AVX512 __attribute__((noinline)) __m512 wn512_act_slow(__m512 v, const cpu_wino_nhwc *p)
{
    return cpu_avx512_act(v, p->act, p->act_a, p->act_b);
}

static inline CPU_AVX512 __m512 wn512_act(__m512 v, const cpu_wino_nhwc *p)
{
    return p->act == CPU_ACT_RELU ? _mm512_max_ps(v, _mm512_setzero_ps()) : wn512_act_slow(v, p);
}

#include "cpu/ukernels/f32-wino-nhwc/wino-nhwc-impl.h"

/* ---- GEMM: 14 rows x 32 columns, 28 zmm accumulators ------------------------------------- */

#define MR 14
#define NR 32

#define WG_EACH_ROW(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)
#define WG_PTR(i) const float *a##i = (size_t)i < mr ? a + (size_t)i * lda : a;
#define WG_DECL(i) __m512 acc##i##_0 = _mm512_setzero_ps(), acc##i##_1 = _mm512_setzero_ps();
#define WG_FMA(i)                                                                              \
    if (rows > i) {                                                                            \
        __m512 av = _mm512_set1_ps(a##i[k]);                                                   \
        acc##i##_0 = _mm512_fmadd_ps(av, b0, acc##i##_0);                                      \
        if (nv > 1) acc##i##_1 = _mm512_fmadd_ps(av, b1, acc##i##_1);                          \
    }
#define WG_STORE(i)                                                                            \
    if (rows > i && mr > i) {                                                                  \
        _mm512_mask_storeu_ps(c + (size_t)i * ldc, m0, acc##i##_0);                            \
        if (nv > 1) _mm512_mask_storeu_ps(c + (size_t)i * ldc + 16, m1, acc##i##_1);           \
    }

/* `rows` (>= mr; the rows past mr re-read row 0 and are not stored) and `nv` 16-column
 * vectors are constants after inlining, so unused accumulators vanish. */
static inline __attribute__((always_inline)) CPU_AVX512 void
wg512_tile(const int rows, const int nv, size_t mr, size_t nr, size_t kc, const float *a,
           size_t lda, const float *b, float *c, size_t ldc)
{
    WG_EACH_ROW(WG_PTR)
    WG_EACH_ROW(WG_DECL)
    for (size_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b), b1 = nv > 1 ? _mm512_load_ps(b + 16) : b0;
        WG_EACH_ROW(WG_FMA)
        b += NR;
    }
    __mmask16 m0 = cpu_avx512_mask(nr), m1 = cpu_avx512_mask(nr > 16 ? nr - 16 : 0);
    WG_EACH_ROW(WG_STORE)
}

#define WG_VARIANT(R, V)                                                                       \
    static CPU_AVX512 void wg512_##R##x##V(size_t mr, size_t nr, size_t kc, const float *a,   \
                                           size_t lda, const float *b, float *c, size_t ldc)  \
    {                                                                                          \
        wg512_tile(R, V, mr, nr, kc, a, lda, b, c, ldc);                                       \
    }
WG_VARIANT(14, 2) WG_VARIANT(12, 2) WG_VARIANT(10, 2) WG_VARIANT(8, 2)
WG_VARIANT(6, 2) WG_VARIANT(4, 2) WG_VARIANT(2, 2)
WG_VARIANT(14, 1) WG_VARIANT(12, 1) WG_VARIANT(10, 1) WG_VARIANT(8, 1)
WG_VARIANT(6, 1) WG_VARIANT(4, 1) WG_VARIANT(2, 1)

CPU_AVX512 void cpu_f32_wino_nhwc_gemm_14x32__avx512(size_t mr, size_t nr, size_t kc,
                                                     const float *a, size_t lda, const float *b,
                                                     float *c, size_t ldc)
{
    typedef void (*fn)(size_t, size_t, size_t, const float *, size_t, const float *, float *, size_t);
    static const fn v2[] = {wg512_2x2, wg512_4x2, wg512_6x2, wg512_8x2, wg512_10x2, wg512_12x2, wg512_14x2};
    static const fn v1[] = {wg512_2x1, wg512_4x1, wg512_6x1, wg512_8x1, wg512_10x1, wg512_12x1, wg512_14x1};
    if (mr == 0 || nr == 0 || mr > MR || nr > NR) return;
    /* rows rounded up to even: at most one extra row computed */
    size_t r = (mr + 1) / 2 - 1;
    (nr > 16 ? v2 : v1)[r](mr, nr, kc, a, lda, b, c, ldc);
}
