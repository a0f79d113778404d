/* wino-nhwc-impl.h — the input and output transforms of the NHWC Winograd convolution as a
 * template over one ISA's vectors (included once by each f32-wino-nhwc/<isa>.c). The
 * including file defines, besides the helpers of wino-nhwc-tf.h:
 *   WVW               lanes per vector (channels per step)
 *   WM                the lane-mask type; WMASK(n) the first min(n, WVW) lanes; WMASK0 none
 *   WLOAD(p, m)       the lanes of m from p, zero elsewhere (no access for m == WMASK0)
 *   WSTORE(p, v)      store all lanes (p may be unaligned)
 *   WSTOREM(p, m, v)  store the lanes of m
 *   WZERO()           all-zero vector
 *   WACT(v, p)        the activation of cpu_wino_nhwc *p (p->act != NONE)
 *   WATTR             the target attribute
 *   WNAME(base)       the public name (base##__isa)
 *
 * Input: channels are the vector lanes, so a tile's 4x4 (6x6, 8x8) pixels are 16 (36, 64)
 * vector loads at stride xs, masked to zero outside the image; the transform runs on columns,
 * then rows, and each of the 16 (36, 64) results goes to its own transform plane of V.
 * Output: the same over the GEMM results, lanes being output channels. */
#include "cpu/ukernels/f32-wino-nhwc/wino-nhwc.h"
#include "cpu/ukernels/f32-wino-nhwc/wino-nhwc-tf.h"

/* The loops over a tile's rows / columns must be unrolled completely so that the tile stays
 * in registers (neither compiler does it by itself at -O2/-O3). */
#define WN_UNROLL _Pragma("GCC unroll 8")

/* A = 4 (F(2x2, 3x3)), 6 (F(4x4, 3x3)) or 8 (F(6x6, 3x3)); a constant after inlining. */
static inline __attribute__((always_inline)) WATTR void
wn_in(const int A, const cpu_wino_nhwc *p, int64_t t0, int64_t nt, float *v, int64_t ldv,
      int64_t vxs)
{
    const int O = A - 2;
    const int64_t C = p->C, xs = p->xs, H = p->H, W = p->W;
    for (int64_t i = 0; i < nt; i++) {
        int64_t n, oy, ox;
        cpu_wino_nhwc_tile(p, t0 + i, O, &n, &oy, &ox);
        const int64_t iy0 = oy - p->PT, ix0 = ox - p->PL;
        const float *img = p->x + n * H * W * xs;
        /* offsets of the window's rows and columns, clamped into the image so every
         * address is valid; the ok flags zero the taps outside */
        int64_t roff[8], coff[8];
        bool rok[8], cok[8], inside = true;
        WN_UNROLL
        for (int r = 0; r < A; r++) {
            int64_t iy = iy0 + r, ix = ix0 + r;
            rok[r] = iy >= 0 && iy < H;
            cok[r] = ix >= 0 && ix < W;
            inside = inside && rok[r] && cok[r];
            roff[r] = (iy < 0 ? 0 : iy >= H ? H - 1 : iy) * W * xs;
            coff[r] = (ix < 0 ? 0 : ix >= W ? W - 1 : ix) * xs;
        }
        for (int64_t c = 0; c < C; c += WVW) {
            const WM m = WMASK(C - c);
            WV s[8][8];
            WN_UNROLL
            for (int q = 0; q < A; q++) {
                WV d[8], w[8];
                if (inside) {
                    WN_UNROLL
                    for (int r = 0; r < A; r++) d[r] = WLOAD(img + roff[r] + coff[q] + c, m);
                } else {
                    WN_UNROLL
                    for (int r = 0; r < A; r++)
                        d[r] = WLOAD(img + roff[r] + coff[q] + c, rok[r] && cok[q] ? m : WMASK0);
                }
                WINO_IN_1D(A, d, w);
                WN_UNROLL
                for (int r = 0; r < A; r++) s[r][q] = w[r];
            }
            float *vo = v + i * ldv + c;
            WN_UNROLL
            for (int r = 0; r < A; r++) {
                WV w[8];
                WINO_IN_1D(A, s[r], w);
                WN_UNROLL
                for (int q = 0; q < A; q++) WSTORE(vo + (int64_t)(r * A + q) * vxs, w[q]);
            }
        }
    }
}

static inline __attribute__((always_inline)) WATTR void
wn_out(const int A, const cpu_wino_nhwc *p, int64_t t0, int64_t nt, int64_t m0, int64_t nm,
       const float *mb, int64_t mxs, int64_t mts)
{
    const int O = A - 2;
    const int64_t OH = p->OH, OW = p->OW, ys = p->ys, rs = p->rs;
    for (int64_t i = 0; i < nt; i++) {
        int64_t n, oy, ox;
        cpu_wino_nhwc_tile(p, t0 + i, O, &n, &oy, &ox);
        const int rows = (int)(OH - oy < O ? OH - oy : O), cols = (int)(OW - ox < O ? OW - ox : O);
        float *yb = p->y + ((n * OH + oy) * OW + ox) * ys + m0;
        const float *rb = p->resid ? p->resid + ((n * OH + oy) * OW + ox) * rs + m0 : NULL;
        for (int64_t j = 0; j < nm; j += WVW) {
            const WM m = WMASK(nm - j);
            const WV bias = p->bias ? WLOAD(p->bias + m0 + j, m) : WZERO();
            const float *mi = mb + i * mts + j;
            WV s[6][8];
            WN_UNROLL
            for (int q = 0; q < A; q++) {
                WV d[8], o[6];
                WN_UNROLL
                for (int r = 0; r < A; r++) d[r] = WLOAD(mi + (int64_t)(r * A + q) * mxs, m);
                WINO_OUT_1D(A, d, o);
                WN_UNROLL
                for (int r = 0; r < O; r++) s[r][q] = o[r];
            }
            WN_UNROLL
            for (int r = 0; r < O; r++) {
                if (r >= rows) break; /* (not in the loop condition: gcc then sees r < O) */
                WV o[6];
                WINO_OUT_1D(A, s[r], o);
                WN_UNROLL
                for (int q = 0; q < O; q++) {
                    if (q >= cols) break;
                    WV val = WADD(o[q], bias);
                    int64_t pix = (int64_t)r * OW + q;
                    /* resid may be y itself (rs == ys): read before the store */
                    if (rb) val = WADD(val, WLOAD(rb + pix * rs + j, m));
                    if (p->act != CPU_ACT_NONE) val = WACT(val, p);
                    WSTOREM(yb + pix * ys + j, m, val);
                }
            }
        }
    }
}

WATTR void WNAME(cpu_f32_wino_nhwc_in2)(const cpu_wino_nhwc *p, int64_t t0, int64_t nt, float *v,
                                        int64_t ldv, int64_t vxs)
{
    wn_in(4, p, t0, nt, v, ldv, vxs);
}

WATTR void WNAME(cpu_f32_wino_nhwc_in4)(const cpu_wino_nhwc *p, int64_t t0, int64_t nt, float *v,
                                        int64_t ldv, int64_t vxs)
{
    wn_in(6, p, t0, nt, v, ldv, vxs);
}

WATTR void WNAME(cpu_f32_wino_nhwc_in6)(const cpu_wino_nhwc *p, int64_t t0, int64_t nt, float *v,
                                        int64_t ldv, int64_t vxs)
{
    wn_in(8, p, t0, nt, v, ldv, vxs);
}

WATTR void WNAME(cpu_f32_wino_nhwc_out2)(const cpu_wino_nhwc *p, int64_t t0, int64_t nt,
                                         int64_t m0, int64_t nm, const float *mb, int64_t mxs,
                                         int64_t mts)
{
    wn_out(4, p, t0, nt, m0, nm, mb, mxs, mts);
}

WATTR void WNAME(cpu_f32_wino_nhwc_out4)(const cpu_wino_nhwc *p, int64_t t0, int64_t nt,
                                         int64_t m0, int64_t nm, const float *mb, int64_t mxs,
                                         int64_t mts)
{
    wn_out(6, p, t0, nt, m0, nm, mb, mxs, mts);
}

WATTR void WNAME(cpu_f32_wino_nhwc_out6)(const cpu_wino_nhwc *p, int64_t t0, int64_t nt,
                                         int64_t m0, int64_t nm, const float *mb, int64_t mxs,
                                         int64_t mts)
{
    wn_out(8, p, t0, nt, m0, nm, mb, mxs, mts);
}
