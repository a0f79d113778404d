/* f32-gemm/avx512f.c — the 14x32 AVX-512 SGEMM microkernel: 28 zmm accumulators, two B loads
 * and 14 A broadcasts per k step; short tiles (mr < 14, nr <= 16) run a variant that only
 * computes the rows/vectors they need; the epilogue is applied under lane masks. */
#include "cpu/ukernels/avx512-math.h"

#define MR CPU_GEMM_MR_AVX512
#define NR CPU_GEMM_NR_AVX512

#if NR != 32 || MR != 14
#error "the AVX-512 microkernel is written for 14-row A and 32-column B panels"
#endif

/* The activations beyond ReLU, out of line: they are long and run once per output vector. */
static CPU_AVX512 __attribute__((noinline)) __m512 g512_act(__m512 v, const cpu_epilogue *ep)
{
    return cpu_avx512_act(v, ep->act, ep->act_a, ep->act_b);
}

static inline __attribute__((always_inline)) CPU_AVX512 __m512 g512_epi(__m512 v, const float *c,
                                                                        __mmask16 m, unsigned flags,
                                                                        const cpu_epilogue *ep,
                                                                        size_t row, size_t col)
{
    if (flags & CPU_UK_LOAD) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, c));
    if (flags & CPU_UK_FINAL) {
        if (ep->alpha != 1.0f) v = _mm512_mul_ps(v, _mm512_set1_ps(ep->alpha));
        if (ep->bias) {
            if (ep->bias_per_col) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, ep->bias + col));
            else v = _mm512_add_ps(v, _mm512_set1_ps(ep->bias[row]));
        }
        if (ep->resid)
            v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, ep->resid + (int64_t)row * ep->ld_resid + (int64_t)col));
        if (ep->act == CPU_ACT_RELU) v = _mm512_max_ps(v, _mm512_setzero_ps());
        else if (ep->act != CPU_ACT_NONE) v = g512_act(v, ep);
    }
    return v;
}

/* C[mr x nr] for a tile computed as `rows` rows (mr <= rows <= MR; A panel rows past mr are
 * zero padding) and `nv` 16-column vectors (nr <= 16 * nv). rows and nv are constants after
 * inlining, so unused accumulators vanish. The rows are spelled out (not a loop over an
 * array) so that every compiler keeps the 28 accumulators in registers. */
#define G512_EACH_ROW(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)
#define G512_DECL(i) __m512 acc##i##_0 = _mm512_setzero_ps(), acc##i##_1 = _mm512_setzero_ps();
#define G512_FMA(i)                                                                            \
    if (rows > i) {                                                                            \
        __m512 av = _mm512_set1_ps(a[i]);                                                      \
        acc##i##_0 = _mm512_fmadd_ps(av, b0, acc##i##_0);                                      \
        if (nv > 1) acc##i##_1 = _mm512_fmadd_ps(av, b1, acc##i##_1);                          \
    }
#define G512_STORE(i)                                                                          \
    if (rows > i && mr > i) {                                                                  \
        float *ci = c + (size_t)i * ldc;                                                       \
        _mm512_mask_storeu_ps(ci, m0, g512_epi(acc##i##_0, ci, m0, flags, ep, i, 0));          \
        if (nv > 1)                                                                            \
            _mm512_mask_storeu_ps(ci + 16, m1, g512_epi(acc##i##_1, ci + 16, m1, flags, ep, i, 16)); \
    }

static inline __attribute__((always_inline)) CPU_AVX512 void
g512_tile(const int rows, const int nv, size_t mr, size_t nr, size_t kc, const float *a,
          const float *b, float *c, size_t ldc, unsigned flags, const cpu_epilogue *ep)
{
    G512_EACH_ROW(G512_DECL)
    for (size_t k = 0; k < kc; k++) {
        __m512 b0 = _mm512_load_ps(b), b1 = nv > 1 ? _mm512_load_ps(b + 16) : b0;
        G512_EACH_ROW(G512_FMA)
        a += MR;
        b += NR;
    }
    __mmask16 m0 = cpu_avx512_mask(nr), m1 = cpu_avx512_mask(nr > 16 ? nr - 16 : 0);
    G512_EACH_ROW(G512_STORE)
}

#define G512_VARIANT(R, V)                                                                     \
    static CPU_AVX512 void g512_##R##x##V(size_t mr, size_t nr, size_t kc, const float *a,    \
                                          const float *b, float *c, size_t ldc,               \
                                          unsigned flags, const cpu_epilogue *ep)             \
    {                                                                                          \
        g512_tile(R, V, mr, nr, kc, a, b, c, ldc, flags, ep);                                  \
    }
G512_VARIANT(14, 2) G512_VARIANT(12, 2) G512_VARIANT(10, 2) G512_VARIANT(8, 2)
G512_VARIANT(6, 2) G512_VARIANT(4, 2) G512_VARIANT(2, 2)
G512_VARIANT(14, 1) G512_VARIANT(12, 1) G512_VARIANT(10, 1) G512_VARIANT(8, 1)
G512_VARIANT(6, 1) G512_VARIANT(4, 1) G512_VARIANT(2, 1)

CPU_AVX512 void cpu_f32_gemm_ukernel_14x32__avx512(size_t mr, size_t nr, size_t kc, const float *a,
                                                   const float *b, float *c, size_t ldc,
                                                   unsigned flags, const cpu_epilogue *ep)
{
    if (mr == MR && nr > 16) {
        g512_14x2(mr, nr, kc, a, b, c, ldc, flags, ep);
        return;
    }
    /* edge tiles: rows rounded up to even (at most one padding row computed) */
    static void (*const v2[])(size_t, size_t, size_t, const float *, const float *, float *,
                              size_t, unsigned, const cpu_epilogue *) = {
        g512_2x2, g512_4x2, g512_6x2, g512_8x2, g512_10x2, g512_12x2, g512_14x2};
    static void (*const v1[])(size_t, size_t, size_t, const float *, const float *, float *,
                              size_t, unsigned, const cpu_epilogue *) = {
        g512_2x1, g512_4x1, g512_6x1, g512_8x1, g512_10x1, g512_12x1, g512_14x1};
    if (mr == 0 || nr == 0) return;
    size_t r = (mr + 1) / 2 - 1;
    (nr > 16 ? v2 : v1)[r](mr, nr, kc, a, b, c, ldc, flags, ep);
}
