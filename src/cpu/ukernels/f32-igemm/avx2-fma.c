/* f32-igemm/avx2-fma.c — the AVX2+FMA indirect-GEMM microkernel of the NHWC convolution:
 * 6 pixel rows x 16 output channels in 12 ymm accumulators, one broadcast per row straight
 * from the input pixel (through the indirection pointers) and two packed-weight loads per k
 * step. Row counts 1..6 and widths 16 / 8 (half-width last panel) are separate variants;
 * the epilogue runs on the tile in registers, with masked loads/stores for short columns. */
#include "cpu/ukernels/avx2-math.h"
#include "cpu/ukernels/f32-igemm/igemm.h"

#define MR CPU_IGEMM_MR_AVX2
#define NR CPU_IGEMM_NR_AVX2

#if NR != 16 || MR != 6
#error "the AVX2 igemm microkernel is written for 6 rows and 16-column panels"
#endif

static CPU_AVX2 __attribute__((noinline)) __m256 i256_act(__m256 v, const cpu_igemm_ep *ep)
{
    return cpu_avx2_act(v, ep->act, ep->act_a, ep->act_b);
}

/* One output vector of 8 columns starting at `col` (n valid, full when n == 8). */
static inline __attribute__((always_inline)) CPU_AVX2 void
i256_store(__m256 v, float *c, size_t n, __m256i m, const cpu_igemm_ep *ep, size_t row, size_t col)
{
    const bool full = n >= 8;
    if (ep->bias) v = _mm256_add_ps(v, full ? _mm256_loadu_ps(ep->bias + col) : _mm256_maskload_ps(ep->bias + col, m));
    if (ep->resid) {
        const float *r = ep->resid + (int64_t)row * ep->rs + (int64_t)col;
        v = _mm256_add_ps(v, full ? _mm256_loadu_ps(r) : _mm256_maskload_ps(r, m));
    }
    if (ep->act == CPU_ACT_RELU) v = _mm256_max_ps(v, _mm256_setzero_ps());
    else if (ep->act != CPU_ACT_NONE) v = i256_act(v, ep);
    if (full) _mm256_storeu_ps(c + col, v);
    else _mm256_maskstore_ps(c + col, m, v);
}

#define I256_EACH_ROW(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define I256_DECL(i)                                                                           \
    __m256 acc##i##_0 = _mm256_setzero_ps(), acc##i##_1 = _mm256_setzero_ps();                 \
    const float *a##i = NULL;
#define I256_PTR(i) if (rows > i) a##i = a[i] + a_off;
#define I256_PTRS(i) if (rows > i) a##i = b + (size_t)i * as;
#define I256_FMA(i)                                                                            \
    if (rows > i) {                                                                            \
        __m256 av = _mm256_broadcast_ss(a##i + k);                                             \
        acc##i##_0 = _mm256_fmadd_ps(av, b0, acc##i##_0);                                      \
        if (nv > 1) acc##i##_1 = _mm256_fmadd_ps(av, b1, acc##i##_1);                          \
    }
#define I256_STORE(i)                                                                          \
    if (rows > i) {                                                                            \
        float *ci = c + (size_t)i * cs;                                                        \
        i256_store(acc##i##_0, ci, n0, m0, ep, i, 0);                                          \
        if (nv > 1) i256_store(acc##i##_1, ci, n1, m1, ep, i, 8);                              \
    }

static inline __attribute__((always_inline)) CPU_AVX2 void
i256_tile(const int rows, const int nv, size_t nc, size_t kc, size_t ks, const float *const *a,
          size_t a_off, const float *w, float *c, size_t cs, const cpu_igemm_ep *ep)
{
    I256_EACH_ROW(I256_DECL)
    const char *pf = ep->pf;
    size_t pfn = pf ? ep->pf_len / 64 : 0;
    const size_t as = ep->a_step, at = as ? 1 : MR;
    do {
        if (as) {
            const float *b = a[0] + a_off;
            I256_EACH_ROW(I256_PTRS)
        } else {
            I256_EACH_ROW(I256_PTR)
        }
        a += at;
        for (size_t k = 0; k < kc; k++) {
            if (pfn) {
                _mm_prefetch(pf, _MM_HINT_T1);
                pf += 64;
                pfn--;
            }
            __m256 b0 = _mm256_loadu_ps(w), b1 = nv > 1 ? _mm256_loadu_ps(w + 8) : b0;
            I256_EACH_ROW(I256_FMA)
            w += 8 * nv;
        }
    } while (--ks);
    size_t n0 = nc > 8 ? 8 : nc, n1 = nc > 8 ? nc - 8 : 0;
    __m256i m0 = cpu_avx2_mask(n0), m1 = cpu_avx2_mask(n1);
    I256_EACH_ROW(I256_STORE)
}

typedef void (*i256_fn)(size_t, size_t, size_t, const float *const *, size_t, const float *,
                        float *, size_t, const cpu_igemm_ep *);

#define I256_VARIANT(R, V)                                                                     \
    static CPU_AVX2 void i256_##R##x##V(size_t nc, size_t kc, size_t ks,                       \
                                        const float *const *a, size_t a_off, const float *w,   \
                                        float *c, size_t cs, const cpu_igemm_ep *ep)           \
    {                                                                                          \
        i256_tile(R, V, nc, kc, ks, a, a_off, w, c, cs, ep);                                   \
    }
#define I256_VARIANTS(R) I256_VARIANT(R, 1) I256_VARIANT(R, 2)
I256_VARIANTS(1) I256_VARIANTS(2) I256_VARIANTS(3) I256_VARIANTS(4) I256_VARIANTS(5)
I256_VARIANTS(6)

static const i256_fn i256_v1[] = {i256_1x1, i256_2x1, i256_3x1, i256_4x1, i256_5x1, i256_6x1};
static const i256_fn i256_v2[] = {i256_1x2, i256_2x2, i256_3x2, i256_4x2, i256_5x2, i256_6x2};

CPU_AVX2 void cpu_f32_igemm__avx2_fma(size_t mr, size_t nc, size_t kc, size_t ks,
                                      const float *const *a, size_t a_off, const float *w,
                                      float *c, size_t cs, const cpu_igemm_ep *ep)
{
    if (mr == 0 || nc == 0 || kc == 0 || ks == 0) return;
    if (mr > MR) mr = MR;
    (nc > 8 ? i256_v2 : i256_v1)[mr - 1](nc, kc, ks, a, a_off, w, c, cs, ep);
}
