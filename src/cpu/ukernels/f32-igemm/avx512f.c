/* f32-igemm/avx512f.c — the AVX-512 indirect-GEMM microkernel of the NHWC convolution:
 * MR (12) pixel rows x 32 output channels in 2*MR zmm accumulators; per k step two loads of
 * the packed weights and one broadcast per row straight from the input pixel (through the
 * indirection pointers, one set per kernel tap). Every row count 1..MR and both widths (32,
 * and 16 for a half-width last panel) are separate variants, so partial tiles compute only
 * what they store. The epilogue (bias, residual, activation) runs under lane masks. */
#include "cpu/ukernels/avx512-math.h"
#include "cpu/ukernels/f32-igemm/igemm.h"

#define MR CPU_IGEMM_MR_AVX512
#define NR CPU_IGEMM_NR_AVX512

#if NR != 32 || MR > 14
#error "the AVX-512 igemm microkernel is written for 32-column panels and at most 14 rows"
#endif

/* SiLU x * sigmoid(x) = x / (1 + e^-x) without a division: e^-x by the exp polynomial of
 * avx512-math.h scaled with scalef, the reciprocal by rcp14 and one Newton step (relative
 * error ~1e-7 like cpu_avx512_act's, at about half its cost; the input is clamped so that
 * 1 + e^-x stays finite). */
static inline __attribute__((always_inline)) CPU_AVX512 __m512 i512_sigmoid(__m512 x)
{
    __m512 t = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(87.3f));
    t = _mm512_sub_ps(_mm512_setzero_ps(), t);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(t, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), t);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 d = _mm512_add_ps(_mm512_scalef_ps(p, n), one); /* 1 + e^-x, in [1, 2^126] */
    __m512 q = _mm512_rcp14_ps(d);
    return _mm512_fmadd_ps(q, _mm512_fnmadd_ps(d, q, one), q);
}

/* The activations beyond ReLU run as a second pass over the stored tile (still in L1): in
 * the epilogue itself every out-of-line call would spill the live accumulators, and inline
 * copies in all 24 variants would bloat the code. */
static CPU_AVX512 __attribute__((noinline)) void i512_act_tile(float *c, size_t cs, int rows, size_t nc,
                                                               const cpu_igemm_ep *ep)
{
    const __mmask16 m0 = cpu_avx512_mask(nc), m1 = cpu_avx512_mask(nc > 16 ? nc - 16 : 0);
    const int nv = nc > 16 ? 2 : 1;
    const cpu_act act = ep->act;
    for (int i = 0; i < rows; i++, c += cs) {
        for (int v = 0; v < nv; v++) {
            const __mmask16 m = v ? m1 : m0;
            __m512 x = _mm512_maskz_loadu_ps(m, c + 16 * v);
            if (act == CPU_ACT_SILU) x = _mm512_mul_ps(x, i512_sigmoid(x));
            else if (act == CPU_ACT_SIGMOID) x = i512_sigmoid(x);
            else x = cpu_avx512_act(x, act, ep->act_a, ep->act_b);
            _mm512_mask_storeu_ps(c + 16 * v, m, x);
        }
    }
}

static inline __attribute__((always_inline)) CPU_AVX512 __m512 i512_epi(__m512 v, __mmask16 m,
                                                                        const cpu_igemm_ep *ep,
                                                                        size_t row, size_t col)
{
    if (ep->bias) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, ep->bias + col));
    if (ep->resid)
        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, ep->resid + (int64_t)row * ep->rs + (int64_t)col));
    if (ep->act == CPU_ACT_RELU) v = _mm512_max_ps(v, _mm512_setzero_ps());
    return v;
}

/* The rows are spelled out (not an array) so that every compiler keeps the accumulators in
 * registers; `rows` and `nv` are constants after inlining, unused rows vanish. */
#define I512_EACH_ROW(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)
#define I512_DECL(i)                                                                           \
    __m512 acc##i##_0 = _mm512_setzero_ps(), acc##i##_1 = _mm512_setzero_ps();                 \
    const float *a##i = NULL;
#define I512_PTR(i) if (rows > i) a##i = a[i] + a_off;
#define I512_FMA(i)                                                                            \
    if (rows > i) {                                                                            \
        __m512 av = _mm512_set1_ps(a##i[k]);                                                   \
        acc##i##_0 = _mm512_fmadd_ps(av, b0, acc##i##_0);                                      \
        if (nv > 1) acc##i##_1 = _mm512_fmadd_ps(av, b1, acc##i##_1);                          \
    }
#define I512_STORE(i)                                                                          \
    if (rows > i) {                                                                            \
        float *ci = c + (size_t)i * cs;                                                        \
        _mm512_mask_storeu_ps(ci, m0, i512_epi(acc##i##_0, m0, ep, i, 0));                     \
        if (nv > 1) _mm512_mask_storeu_ps(ci + 16, m1, i512_epi(acc##i##_1, m1, ep, i, 16));   \
    }

static inline __attribute__((always_inline)) CPU_AVX512 void
i512_tile(const int rows, const int nv, const int pfon, size_t nc, size_t kc, size_t ks, const float *const *a,
          size_t a_off, const float *w, float *c, size_t cs, const cpu_igemm_ep *ep)
{
    I512_EACH_ROW(I512_DECL)
    /* pfon: the variant that prefetches ep->pf (two more live registers in the k loop:
     * with 12 rows some pointers then live on the stack, so only calls that prefetch get it) */
    const char *pf = pfon ? ep->pf : NULL;
    size_t pfn = pfon && pf ? ep->pf_len / 64 : 0;
    do {
        I512_EACH_ROW(I512_PTR)
        a += MR;
        for (size_t k = 0; k < kc; k++) {
            if (pfon && pfn) {
                _mm_prefetch(pf, _MM_HINT_T1);
                pf += 64;
                pfn--;
            }
            __m512 b0 = _mm512_loadu_ps(w), b1 = nv > 1 ? _mm512_loadu_ps(w + 16) : b0;
            I512_EACH_ROW(I512_FMA)
            w += 16 * nv;
        }
    } while (--ks);
    __mmask16 m0 = cpu_avx512_mask(nc), m1 = cpu_avx512_mask(nc > 16 ? nc - 16 : 0);
    I512_EACH_ROW(I512_STORE)
    if (ep->act != CPU_ACT_NONE && ep->act != CPU_ACT_RELU) i512_act_tile(c, cs, rows, nc, ep);
}

typedef void (*i512_fn)(size_t, size_t, size_t, const float *const *, size_t, const float *,
                        float *, size_t, const cpu_igemm_ep *);

#define I512_VARIANT(R, V)                                                                     \
    static CPU_AVX512 void i512_##R##x##V(size_t nc, size_t kc, size_t ks,                     \
                                          const float *const *a, size_t a_off,                 \
                                          const float *w, float *c, size_t cs,                 \
                                          const cpu_igemm_ep *ep)                              \
    {                                                                                          \
        i512_tile(R, V, 0, nc, kc, ks, a, a_off, w, c, cs, ep);                                \
    }                                                                                          \
    static CPU_AVX512 void i512_##R##x##V##p(size_t nc, size_t kc, size_t ks,                  \
                                             const float *const *a, size_t a_off,              \
                                             const float *w, float *c, size_t cs,              \
                                             const cpu_igemm_ep *ep)                           \
    {                                                                                          \
        i512_tile(R, V, 1, nc, kc, ks, a, a_off, w, c, cs, ep);                                \
    }
#define I512_VARIANTS(R) I512_VARIANT(R, 1) I512_VARIANT(R, 2)
I512_VARIANTS(1) I512_VARIANTS(2) I512_VARIANTS(3) I512_VARIANTS(4) I512_VARIANTS(5)
I512_VARIANTS(6) I512_VARIANTS(7) I512_VARIANTS(8) I512_VARIANTS(9) I512_VARIANTS(10)
I512_VARIANTS(11) I512_VARIANTS(12)
#if MR > 12
I512_VARIANTS(13) I512_VARIANTS(14)
#endif

static const i512_fn i512_v1[] = {i512_1x1, i512_2x1, i512_3x1, i512_4x1, i512_5x1, i512_6x1,
                                  i512_7x1, i512_8x1, i512_9x1, i512_10x1, i512_11x1, i512_12x1,
#if MR > 12
                                  i512_13x1, i512_14x1
#endif
};
static const i512_fn i512_v2[] = {i512_1x2, i512_2x2, i512_3x2, i512_4x2, i512_5x2, i512_6x2,
                                  i512_7x2, i512_8x2, i512_9x2, i512_10x2, i512_11x2, i512_12x2,
#if MR > 12
                                  i512_13x2, i512_14x2
#endif
};

static const i512_fn i512_v1p[] = {i512_1x1p, i512_2x1p, i512_3x1p, i512_4x1p, i512_5x1p, i512_6x1p,
                                   i512_7x1p, i512_8x1p, i512_9x1p, i512_10x1p, i512_11x1p, i512_12x1p,
#if MR > 12
                                   i512_13x1p, i512_14x1p
#endif
};
static const i512_fn i512_v2p[] = {i512_1x2p, i512_2x2p, i512_3x2p, i512_4x2p, i512_5x2p, i512_6x2p,
                                   i512_7x2p, i512_8x2p, i512_9x2p, i512_10x2p, i512_11x2p, i512_12x2p,
#if MR > 12
                                   i512_13x2p, i512_14x2p
#endif
};

CPU_AVX512 void cpu_f32_igemm__avx512(size_t mr, size_t nc, size_t kc, size_t ks,
                                      const float *const *a, size_t a_off, const float *w,
                                      float *c, size_t cs, const cpu_igemm_ep *ep)
{
    if (mr == 0 || nc == 0 || kc == 0 || ks == 0) return;
    if (mr > MR) mr = MR;
    if (ep->pf && ep->pf_len >= 64) (nc > 16 ? i512_v2p : i512_v1p)[mr - 1](nc, kc, ks, a, a_off, w, c, cs, ep);
    else (nc > 16 ? i512_v2 : i512_v1)[mr - 1](nc, kc, ks, a, a_off, w, c, cs, ep);
}
