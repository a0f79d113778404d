/* f32-igemm/igemm.h — private interface of the indirect-GEMM microkernels behind the NHWC
 * convolution (src/cpu/conv_nhwc.c).
 *
 * A tile computes C[mr x nc] = A[mr x K] * B[K x nc] with K = ks * kc: row i of A is the
 * concatenation of ks runs of kc contiguous floats, run t starting at a[t * mr_max + i] + a_off
 * (mr_max: the kernel's MR; entries of rows >= mr are not read), or with ep->a_step != 0 at
 * a[t] + a_off + i * a_step. B is a packed panel, k-major,
 * `w_stride` floats per k step where w_stride is NR when nc > NR/2 and NR/2 otherwise (the
 * half-width panel that the last columns of a layer get; columns past nc are zero). Then
 * c[i*cs + j] = act(C + bias[j] + resid[i*rs + j]) (bias, resid optional; resid may equal c
 * with rs == cs: each element is read before it is written). The epilogue struct may also ask
 * for software prefetches (cpu_igemm_ep.pf, .pfw). Fields added at the end default to "none"
 * in a positional initializer. */
#ifndef KILN_CPU_F32_IGEMM_H
#define KILN_CPU_F32_IGEMM_H

#include "cpu/cpu.h"

typedef struct cpu_igemm_ep {
    const float *bias;  /* at the tile's first column, or NULL */
    const float *resid; /* at the tile's first element, or NULL */
    int64_t rs;
    cpu_act act;
    float act_a, act_b;
    /* optional: pf_len bytes at pf (NULL: none) to prefetch into L2 while computing, one
     * 64-byte line per k step (the weights of the next panel block, which would otherwise
     * come from DRAM while the FMA units wait); kernels may ignore it */
    const void *pf;
    size_t pf_len;
    /* optional: where the next call for the same columns will store (pfw_rows rows of nc
     * floats, cs apart; NULL: unknown); kernels may prefetch these lines for writing, so
     * that a large output that misses the cache does not stall the stores (measured on the
     * YOLOv5s stem, 13 MB of output: 12x32 tiles ~10% faster) */
    float *pfw;
    size_t pfw_rows;
    /* optional: when nonzero, the pixels' runs are evenly spaced, a_step floats apart: the
     * table holds one pointer per run, a[t], and row i of run t starts at
     * a[t] + a_off + i * a_step (saves building and reading MR pointers per run where a tile
     * is one stretch of an output row; measured on the stems: ~8% of the YOLOv5s stem, whose
     * K = 108 is short) */
    size_t a_step;
} cpu_igemm_ep;

typedef void (*cpu_f32_igemm_fn)(size_t mr, size_t nc, size_t kc, size_t ks,
                                 const float *const *a, size_t a_off, const float *w, float *c,
                                 size_t cs, const cpu_igemm_ep *ep);

/* Tiles per ISA (MR pixels x NR output channels). */
#define CPU_IGEMM_MR_AVX512 12
#define CPU_IGEMM_NR_AVX512 32
#define CPU_IGEMM_MR_AVX2 6
#define CPU_IGEMM_NR_AVX2 16
#define CPU_IGEMM_MR_SCALAR 4
#define CPU_IGEMM_NR_SCALAR 8
#define CPU_IGEMM_MR_MAX 16

void cpu_f32_igemm__avx512(size_t mr, size_t nc, size_t kc, size_t ks, const float *const *a,
                           size_t a_off, const float *w, float *c, size_t cs,
                           const cpu_igemm_ep *ep);
void cpu_f32_igemm__avx2_fma(size_t mr, size_t nc, size_t kc, size_t ks, const float *const *a,
                             size_t a_off, const float *w, float *c, size_t cs,
                             const cpu_igemm_ep *ep);
void cpu_f32_igemm__scalar(size_t mr, size_t nc, size_t kc, size_t ks, const float *const *a,
                           size_t a_off, const float *w, float *c, size_t cs,
                           const cpu_igemm_ep *ep);

#endif
