/* f32-gemm/avx2-fma.c — the 6x16 AVX2+FMA SGEMM microkernel: 12 ymm accumulators, one A
 * broadcast and two B loads per k step, with the epilogue applied while the tile is in
 * registers. Compiled for AVX2 through function attributes; chosen at run time. */
#include "cpu/ukernels/avx2-math.h"

/* One finished row: v = act(alpha * (acc + c?) + bias + resid), stored under the column mask. */
static inline CPU_AVX2 void gemm_row_store(__m256 v0, __m256 v1, float *c, size_t nr, bool full,
                                          __m256i m0, __m256i m1, unsigned flags,
                                          const cpu_epilogue *ep, size_t row)
{
    if (flags & CPU_UK_LOAD) {
        if (full) {
            v0 = _mm256_add_ps(v0, _mm256_loadu_ps(c));
            v1 = _mm256_add_ps(v1, _mm256_loadu_ps(c + 8));
        } else {
            v0 = _mm256_add_ps(v0, _mm256_maskload_ps(c, m0));
            if (nr > 8) v1 = _mm256_add_ps(v1, _mm256_maskload_ps(c + 8, m1));
        }
    }
    if (flags & CPU_UK_FINAL) {
        if (ep->alpha != 1.0f) {
            __m256 al = _mm256_set1_ps(ep->alpha);
            v0 = _mm256_mul_ps(v0, al);
            v1 = _mm256_mul_ps(v1, al);
        }
        if (ep->bias) {
            if (ep->bias_per_col) {
                if (full) {
                    v0 = _mm256_add_ps(v0, _mm256_loadu_ps(ep->bias));
                    v1 = _mm256_add_ps(v1, _mm256_loadu_ps(ep->bias + 8));
                } else {
                    v0 = _mm256_add_ps(v0, _mm256_maskload_ps(ep->bias, m0));
                    if (nr > 8) v1 = _mm256_add_ps(v1, _mm256_maskload_ps(ep->bias + 8, m1));
                }
            } else {
                __m256 bb = _mm256_broadcast_ss(ep->bias + row);
                v0 = _mm256_add_ps(v0, bb);
                v1 = _mm256_add_ps(v1, bb);
            }
        }
        if (ep->resid) {
            const float *r = ep->resid + (int64_t)row * ep->ld_resid;
            if (full) {
                v0 = _mm256_add_ps(v0, _mm256_loadu_ps(r));
                v1 = _mm256_add_ps(v1, _mm256_loadu_ps(r + 8));
            } else {
                v0 = _mm256_add_ps(v0, _mm256_maskload_ps(r, m0));
                if (nr > 8) v1 = _mm256_add_ps(v1, _mm256_maskload_ps(r + 8, m1));
            }
        }
        if (ep->act != CPU_ACT_NONE) {
            v0 = cpu_avx2_act(v0, ep->act, ep->act_a, ep->act_b);
            v1 = cpu_avx2_act(v1, ep->act, ep->act_a, ep->act_b);
        }
    }
    if (full) {
        _mm256_storeu_ps(c, v0);
        _mm256_storeu_ps(c + 8, v1);
    } else {
        _mm256_maskstore_ps(c, m0, v0);
        if (nr > 8) _mm256_maskstore_ps(c + 8, m1, v1);
    }
}

CPU_AVX2 void cpu_f32_gemm_ukernel_6x16__avx2_fma(size_t mr, size_t nr, size_t kc, const float *a,
                                                  const float *b, float *c, size_t ldc,
                                                  unsigned flags, const cpu_epilogue *ep)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
    __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
    __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
    __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
    __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
    __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
    for (size_t k = 0; k < kc; k++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
        __m256 a0 = _mm256_broadcast_ss(a + 0);
        c00 = _mm256_fmadd_ps(a0, b0, c00);
        c01 = _mm256_fmadd_ps(a0, b1, c01);
        __m256 a1 = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(a1, b0, c10);
        c11 = _mm256_fmadd_ps(a1, b1, c11);
        __m256 a2 = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(a2, b0, c20);
        c21 = _mm256_fmadd_ps(a2, b1, c21);
        __m256 a3 = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(a3, b0, c30);
        c31 = _mm256_fmadd_ps(a3, b1, c31);
        __m256 a4 = _mm256_broadcast_ss(a + 4);
        c40 = _mm256_fmadd_ps(a4, b0, c40);
        c41 = _mm256_fmadd_ps(a4, b1, c41);
        __m256 a5 = _mm256_broadcast_ss(a + 5);
        c50 = _mm256_fmadd_ps(a5, b0, c50);
        c51 = _mm256_fmadd_ps(a5, b1, c51);
        a += CPU_GEMM_MR;
        b += CPU_GEMM_NR;
    }
    bool full = nr == CPU_GEMM_NR;
    __m256i m0 = cpu_avx2_mask(nr), m1 = cpu_avx2_mask(nr > 8 ? nr - 8 : 0);
    gemm_row_store(c00, c01, c, nr, full, m0, m1, flags, ep, 0);
    if (mr > 1) gemm_row_store(c10, c11, c + ldc, nr, full, m0, m1, flags, ep, 1);
    if (mr > 2) gemm_row_store(c20, c21, c + 2 * ldc, nr, full, m0, m1, flags, ep, 2);
    if (mr > 3) gemm_row_store(c30, c31, c + 3 * ldc, nr, full, m0, m1, flags, ep, 3);
    if (mr > 4) gemm_row_store(c40, c41, c + 4 * ldc, nr, full, m0, m1, flags, ep, 4);
    if (mr > 5) gemm_row_store(c50, c51, c + 5 * ldc, nr, full, m0, m1, flags, ep, 5);
}
