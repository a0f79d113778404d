/* wino-nhwc.h — microkernels of the NHWC Winograd convolution (src/cpu/winograd_nhwc.c):
 * input transforms V = B^T d B vectorised over channels straight from NHWC tiles, a GEMM
 * microkernel that reads A (the transformed tiles) as plain rows and B (the transformed
 * weights) as packed NR-column panels, and output transforms Y = A^T M A vectorised over
 * output channels with bias, residual and activation fused. Three tile sizes: F(2x2, 3x3)
 * (4x4 transformed tiles, "2"), F(4x4, 3x3) (6x6, "4") and F(6x6, 3x3) (8x8, "6"). */
#ifndef KILN_CPU_WINO_NHWC_H
#define KILN_CPU_WINO_NHWC_H

#include "cpu/cpu.h"

/* The convolution as the transforms see it. Tiles are numbered over the whole batch:
 * tile t is image t / (th*tw), tile row t / tw % th, tile column t % tw; its input window
 * starts at pixel (ty*O - PT, tx*O - PL) with O the output tile size (2, 4 or 6). Pixels
 * outside [0,H) x [0,W) read as zero. Output pixels past OH / OW are not written. */
typedef struct cpu_wino_nhwc {
    const float *x;
    int64_t xs;             /* input pixel stride (>= C) */
    int64_t H, W, C, M, OH, OW, PT, PL;
    int64_t th, tw;         /* tiles per image: rows, columns */
    const float *bias;      /* [M] or NULL */
    const float *resid;     /* like y or NULL */
    int64_t rs;
    float *y;
    int64_t ys;
    cpu_act act;
    float act_a, act_b;
} cpu_wino_nhwc;

/* Input transform of tiles [t0, t0 + nt): V[x*vxs + i*ldv + c] for transform position x
 * (0..15, 0..35 or 0..63), tile i (0..nt-1), channel c < C. ldv is a multiple of the vector width
 * (16 floats); lanes C..ldv-1 may be written (with zeros). */
typedef void (*cpu_wino_nhwc_in_fn)(const cpu_wino_nhwc *p, int64_t t0, int64_t nt, float *v,
                                    int64_t ldv, int64_t vxs);
/* C[mr x nr] = A[mr x kc] * B[kc x nr]: A row i is a[i*lda .. i*lda + kc), B a packed panel
 * of kc rows of NR floats (zero past nr); C row stride ldc; mr <= MR, nr <= NR. */
typedef void (*cpu_wino_nhwc_gemm_fn)(size_t mr, size_t nr, size_t kc, const float *a,
                                      size_t lda, const float *b, float *c, size_t ldc);
/* Output transform of tiles [t0, t0 + nt), output channels [m0, m0 + nm): element (x, i, j)
 * of the GEMM results is mb[x*mxs + i*mts + j] (tile t0 + i, channel m0 + j). Writes
 * y = act(Y + bias + resid) for the tiles' pixels inside OH x OW. */
typedef void (*cpu_wino_nhwc_out_fn)(const cpu_wino_nhwc *p, int64_t t0, int64_t nt, int64_t m0,
                                     int64_t nm, const float *mb, int64_t mxs, int64_t mts);

#define CPU_WINO_NHWC_DECL(isa)                                                                \
    void cpu_f32_wino_nhwc_in2__##isa(const cpu_wino_nhwc *p, int64_t t0, int64_t nt, float *v, \
                                      int64_t ldv, int64_t vxs);                              \
    void cpu_f32_wino_nhwc_in4__##isa(const cpu_wino_nhwc *p, int64_t t0, int64_t nt, float *v, \
                                      int64_t ldv, int64_t vxs);                              \
    void cpu_f32_wino_nhwc_in6__##isa(const cpu_wino_nhwc *p, int64_t t0, int64_t nt, float *v, \
                                      int64_t ldv, int64_t vxs);                              \
    void cpu_f32_wino_nhwc_out2__##isa(const cpu_wino_nhwc *p, int64_t t0, int64_t nt,        \
                                       int64_t m0, int64_t nm, const float *mb, int64_t mxs,   \
                                       int64_t mts);                                           \
    void cpu_f32_wino_nhwc_out4__##isa(const cpu_wino_nhwc *p, int64_t t0, int64_t nt,        \
                                       int64_t m0, int64_t nm, const float *mb, int64_t mxs,   \
                                       int64_t mts);                                           \
    void cpu_f32_wino_nhwc_out6__##isa(const cpu_wino_nhwc *p, int64_t t0, int64_t nt,        \
                                       int64_t m0, int64_t nm, const float *mb, int64_t mxs,   \
                                       int64_t mts);
CPU_WINO_NHWC_DECL(avx512)
CPU_WINO_NHWC_DECL(avx2_fma)
CPU_WINO_NHWC_DECL(scalar)

/* GEMM tiles: 14x32 (AVX-512), 6x16 (AVX2, scalar). NR matches cpu_ukernels_get()->gemm_nr
 * of the same table, so the weight cache's layout key covers the packed U. */
void cpu_f32_wino_nhwc_gemm_14x32__avx512(size_t mr, size_t nr, size_t kc, const float *a,
                                          size_t lda, const float *b, float *c, size_t ldc);
void cpu_f32_wino_nhwc_gemm_6x16__avx2_fma(size_t mr, size_t nr, size_t kc, const float *a,
                                           size_t lda, const float *b, float *c, size_t ldc);
void cpu_f32_wino_nhwc_gemm_6x16__scalar(size_t mr, size_t nr, size_t kc, const float *a,
                                         size_t lda, const float *b, float *c, size_t ldc);

/* The NHWC Winograd convolution (winograd_nhwc.c) with the tile size chosen by the caller:
 * otile 2 (F(2x2, 3x3)), 4 (F(4x4, 3x3)), 6 (F(6x6, 3x3)) or 0 (the default pick).
 * Otherwise the contract of
 * cpu_conv2d_nhwc_winograd_f32 (src/cpu/nhwc.h). For tests and benches. */
kiln_status cpu_wino_nhwc_conv_f32(const cpu_conv2d *g, const float *x, int64_t xs,
                                   const float *w, const float *bias, const float *resid,
                                   int64_t rs, float *y, int64_t ys, const cpu_epilogue *ep,
                                   bool cache, core_threadpool *pool, int otile);

/* The default choice for g with the current microkernel table: 0 (the indirect GEMM,
 * cpu_conv2d_nhwc_winograd_preferred false) or the output tile size (2, 4, 6). For benches
 * and tests. */
int cpu_wino_nhwc_pick(const cpu_conv2d *g);

/* Tile t's image and the first output pixel it covers (row, column); O the output tile size. */
static inline void cpu_wino_nhwc_tile(const cpu_wino_nhwc *p, int64_t t, int64_t O, int64_t *n,
                                      int64_t *y0, int64_t *x0)
{
    int64_t per = p->th * p->tw, r = t % per;
    *n = t / per;
    *y0 = r / p->tw * O;
    *x0 = r % p->tw * O;
}

#endif /* KILN_CPU_WINO_NHWC_H */
