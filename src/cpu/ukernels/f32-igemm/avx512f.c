/* f32-igemm/avx512f.c — the AVX-512 indirect-GEMM microkernel of the NHWC convolution:
 * MR (12) pixel rows x 32 output channels in 2*MR zmm accumulators; per k step two loads of
 * the packed weights and one broadcast per row straight from the input pixel (through the
 * indirection pointers, one set per kernel tap). Every row count 1..MR and both widths (32,
 * and 16 for a half-width last panel) are separate variants, so partial tiles compute only
 * what they store. The epilogue (bias, residual, ReLU/Clip in registers, other activations
 * as a second pass) stores whole vectors where the columns allow and masks only the rest.
 * Where the table rows are evenly spaced (ep->a_step) a run's 12 pointers are one base plus
 * multiples of the step. */
#include "cpu/ukernels/avx512-math.h"
#include "cpu/ukernels/f32-igemm/igemm.h"

#define MR CPU_IGEMM_MR_AVX512
#define NR CPU_IGEMM_NR_AVX512

#if NR != 32 || MR > 14
#error "the AVX-512 igemm microkernel is written for 32-column panels and at most 14 rows"
#endif

/* sigmoid(x) without a division or a clamp on both sides: with z = -|x| (at least -87, so
 * that e^z stays normal), e = e^z = 2^n * e^t where n = round(16 z log2 e) / 16, taken from
 * the low bits of z log2 e + 1.5 * 2^19 (whose last 4 mantissa bits are then n's sixteenths,
 * which index a table of 2^(i/16) through permutexvar; scalef applies 2^floor(n)), and
 * |t| = |z - n ln 2| <= ln2 / 32, where a cubic is within 1e-8. Then q = 1 / (1 + e) by
 * rcp14 and one Newton step, and sigmoid(x) = q for x >= 0, e * q below (no cancellation).
 * Relative error ~3e-7 (cpu_avx512_act's: ~2e-7), about 0.7 of the cost of the degree-7
 * exp + clamps it replaces (measured: 2.2 against 3.0 ns per SiLU vector). NaN stays NaN. */
static inline __attribute__((always_inline)) CPU_AVX512 __m512 i512_sigmoid(__m512 x)
{
    const __m512 tab = _mm512_setr_ps(1.0f, 1.04427378f, 1.09050773f, 1.13878863f, 1.18920712f, 1.24185781f,
                                      1.29683955f, 1.35425555f, 1.41421356f, 1.47682615f, 1.54221083f,
                                      1.61049033f, 1.68179283f, 1.75625216f, 1.83400809f, 1.91520656f);
    const __m512 one = _mm512_set1_ps(1.0f), magic = _mm512_set1_ps(786432.0f); /* 1.5 * 2^19 */
    __m512 z = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u)));
    z = _mm512_max_ps(_mm512_set1_ps(-87.0f), z); /* max(a, b) gives b for a NaN */
    __m512 n = _mm512_fmadd_ps(z, _mm512_set1_ps(1.44269504088896341f), magic);
    const __m512 l = _mm512_permutexvar_ps(_mm512_castps_si512(n), tab);
    n = _mm512_sub_ps(n, magic);
    const __m512 t = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693147181f), z);
    __m512 p = _mm512_fmadd_ps(t, _mm512_set1_ps(1.0f / 6.0f), _mm512_set1_ps(0.5f));
    p = _mm512_mul_ps(p, t);
    p = _mm512_fmadd_ps(p, t, t);                      /* e^t - 1 */
    const __m512 e = _mm512_scalef_ps(_mm512_fmadd_ps(p, l, l), n);
    const __m512 d = _mm512_add_ps(e, one);
    __m512 q = _mm512_rcp14_ps(d);
    q = _mm512_fmadd_ps(q, _mm512_fnmadd_ps(d, q, one), q);
    return _mm512_mask_mul_ps(q, _mm512_movepi32_mask(_mm512_castps_si512(x)), q, e);
}

/* The activations beyond ReLU and Clip (ReLU6) run as a second pass over the tile, which is
 * first stored (bias and residual added) into a buffer on the stack, t (NR floats per row):
 * in the epilogue itself every out-of-line call would spill the live accumulators, and
 * inline copies in all 24 variants would bloat the code. A buffer, not c itself, because c
 * may miss the cache, and a reload of a just-stored line then waits for it (measured: SiLU
 * over the YOLOv5s stem's 13 MB output cost twice as much as in L1). */
static CPU_AVX512 __attribute__((noinline)) void i512_act_tile(const float *t, float *c, size_t cs, int rows,
                                                               size_t nc, const cpu_igemm_ep *ep)
{
    const __mmask16 m0 = cpu_avx512_mask(nc), m1 = cpu_avx512_mask(nc > 16 ? nc - 16 : 0);
    const int nv = nc > 16 ? 2 : 1;
    const bool full = nc == (size_t)(16 * nv);
    const cpu_act act = ep->act;
    for (int i = 0; i < rows; i++, c += cs, t += NR) {
        for (int v = 0; v < nv; v++) {
            __m512 x = _mm512_loadu_ps(t + 16 * v);
            if (act == CPU_ACT_SILU) x = _mm512_mul_ps(x, i512_sigmoid(x));
            else if (act == CPU_ACT_SIGMOID) x = i512_sigmoid(x);
            else x = cpu_avx512_act(x, act, ep->act_a, ep->act_b);
            if (full) _mm512_storeu_ps(c + 16 * v, x);
            else _mm512_mask_storeu_ps(c + 16 * v, v ? m1 : m0, x);
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
    else if (ep->act == CPU_ACT_CLIP)
        v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(ep->act_a)), _mm512_set1_ps(ep->act_b));
    return v;
}

/* Prefetches for writing the lines of rows x nc floats at c (cs apart): the first, the
 * 17th and the last float of a row cover its lines for nc <= 32 whatever the alignment.
 * prefetchw in asm: it needs no target flag and is a NOP where it does not exist. */
static inline __attribute__((always_inline)) void i512_prefetch_out(const float *c, size_t cs, size_t rows, size_t nc)
{
    if (rows > MR) rows = MR;
    for (size_t i = 0; i < rows; i++, c += cs) {
        __asm__ volatile("prefetchw %0" : : "m"(*(const char *)c));
        if (nc > 16) __asm__ volatile("prefetchw %0" : : "m"(*(const char *)(c + 16)));
        __asm__ volatile("prefetchw %0" : : "m"(*(const char *)(c + nc - 1)));
    }
}

/* Full vectors are stored unmasked: a masked store to a line that is not in L1 costs far more
 * than a plain one on Zen 5 (measured on the YOLOv5s stem, whose 13 MB of output miss the
 * cache: 12x32 tiles 545 -> 395 ns each). */
static inline __attribute__((always_inline)) CPU_AVX512 void i512_put(float *p, bool full, __mmask16 m, __m512 v)
{
    if (full) _mm512_storeu_ps(p, v);
    else _mm512_mask_storeu_ps(p, m, v);
}

/* The rows are spelled out (not an array) so that every compiler keeps the accumulators in
 * registers; `rows` and `nv` are constants after inlining, unused rows vanish. */
#define I512_EACH_ROW(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)
#define I512_DECL(i)                                                                           \
    __m512 acc##i##_0 = _mm512_setzero_ps(), acc##i##_1 = _mm512_setzero_ps();                 \
    const float *a##i = NULL;
#define I512_PTR(i) if (rows > i) a##i = a[i] + a_off;
#define I512_PTRS(i) if (rows > i) a##i = b + (size_t)i * as;
#define I512_FMA(i)                                                                            \
    if (rows > i) {                                                                            \
        __m512 av = _mm512_set1_ps(a##i[k]);                                                   \
        acc##i##_0 = _mm512_fmadd_ps(av, b0, acc##i##_0);                                      \
        if (nv > 1) acc##i##_1 = _mm512_fmadd_ps(av, b1, acc##i##_1);                          \
    }
#define I512_STORE(i)                                                                          \
    if (rows > i) {                                                                            \
        float *ci = dst + (size_t)i * ds;                                                      \
        i512_put(ci, dfull, m0, i512_epi(acc##i##_0, m0, ep, i, 0));                            \
        if (nv > 1) i512_put(ci + 16, dfull, m1, i512_epi(acc##i##_1, m1, ep, i, 16));          \
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
    if (ep->pfw) i512_prefetch_out(ep->pfw, cs, ep->pfw_rows, nc);
    const size_t as = ep->a_step, at = as ? 1 : MR;
    do {
        if (as) {
            const float *b = a[0] + a_off;
            I512_EACH_ROW(I512_PTRS)
        } else {
            I512_EACH_ROW(I512_PTR)
        }
        a += at;
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
    if (ep->act != CPU_ACT_NONE && ep->act != CPU_ACT_RELU && ep->act != CPU_ACT_CLIP) {
        _Alignas(64) float t[MR * NR];
        float *dst = t;
        const size_t ds = NR;
        const bool dfull = true; /* whole vectors into t: the act pass reads them whole */
        I512_EACH_ROW(I512_STORE)
        i512_act_tile(t, c, cs, rows, nc, ep);
    } else {
        float *dst = c;
        const size_t ds = cs;
        const bool dfull = nc == (size_t)(16 * nv);
        I512_EACH_ROW(I512_STORE)
    }
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
