/* conv.c — reference kernels for convolutions: Conv, ConvTranspose, ConvInteger, QLinearConv,
 * DeformConv, Col2Im and CausalConvWithState (im2col + a packed, register-blocked GEMM). */
#include "ops/ops.h"
#include "ops/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- geometry ---------------------------------------------------------------------------- */

/* Spatial geometry of one convolution. For ConvTranspose `in` is the (small) input image and
 * `out` the (large) output image; the kernel maps in-position p to out-position
 * p*s - pb + k*d in both cases. */
typedef struct conv_geom {
    int nsp;
    int64_t N, C, M, G, Cg, Mg;
    int64_t in[KILN_MAX_DIMS], out[KILN_MAX_DIMS], k[KILN_MAX_DIMS];
    int64_t s[KILN_MAX_DIMS], d[KILN_MAX_DIMS], pb[KILN_MAX_DIMS], pe[KILN_MAX_DIMS];
    int64_t in_sp, out_sp, k_sp;
} conv_geom;

enum { PAD_NOTSET, PAD_SAME_UPPER, PAD_SAME_LOWER, PAD_VALID };

static int conv_auto_pad(const ops_ctx *c)
{
    const char *s = ops_attr_string(c, "auto_pad", "NOTSET");
    if (!strcmp(s, "SAME_UPPER")) return PAD_SAME_UPPER;
    if (!strcmp(s, "SAME_LOWER")) return PAD_SAME_LOWER;
    if (!strcmp(s, "VALID")) return PAD_VALID;
    if (!strcmp(s, "NOTSET") || !*s) return PAD_NOTSET;
    return -1;
}

/* Read an ints attribute of exactly n values (or `alt_n` values when alt_n > 0), filling
 * dflt when absent. Returns the count read, or -1 with the error set. */
static int conv_attr_ints(const ops_ctx *c, const char *name, int n, int64_t dflt, int64_t *out,
                          int64_t minval)
{
    int64_t cnt = 0;
    const int64_t *v = ops_attr_ints(c, name, &cnt);
    if (!v) {
        for (int i = 0; i < n; i++) out[i] = dflt;
        return 0;
    }
    if (cnt != n) {
        ops_error(c, KILN_ERR_INVALID_MODEL, "attribute '%s' has %lld values, expected %d", name,
                  (long long)cnt, n);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (v[i] < minval) {
            ops_error(c, KILN_ERR_INVALID_MODEL, "attribute '%s'[%d] = %lld, must be >= %lld",
                      name, i, (long long)v[i], (long long)minval);
            return -1;
        }
        out[i] = v[i];
    }
    return n;
}

/* Common attributes of forward convolutions (Conv, ConvInteger, QLinearConv, DeformConv):
 * x is (N, C, D1..Dn), w is (M, C/group, k1..kn). Fills everything including out dims. */
static kiln_status conv_geom_init(const ops_ctx *c, const core_tensor *x, const core_tensor *w,
                                  conv_geom *g)
{
    memset(g, 0, sizeof *g);
    if (x->ndim < 3)
        return ops_error(c, KILN_ERR_SHAPE, "input X has %d dims, expected at least 3", x->ndim);
    if (w->ndim != x->ndim)
        return ops_error(c, KILN_ERR_SHAPE, "weight W has %d dims, expected %d like X", w->ndim,
                         x->ndim);
    int nsp = x->ndim - 2;
    g->nsp = nsp;
    g->N = x->dims[0];
    g->C = x->dims[1];
    g->M = w->dims[0];
    g->G = ops_attr_int(c, "group", 1);
    if (g->G < 1) return ops_error(c, KILN_ERR_INVALID_MODEL, "group = %lld, must be >= 1", (long long)g->G);
    if (g->C % g->G)
        return ops_error(c, KILN_ERR_SHAPE, "input channels %lld not divisible by group %lld",
                         (long long)g->C, (long long)g->G);
    if (g->M % g->G)
        return ops_error(c, KILN_ERR_SHAPE, "output channels %lld not divisible by group %lld",
                         (long long)g->M, (long long)g->G);
    g->Cg = g->C / g->G;
    g->Mg = g->M / g->G;
    if (w->dims[1] != g->Cg)
        return ops_error(c, KILN_ERR_SHAPE, "weight dim 1 is %lld, expected C/group = %lld",
                         (long long)w->dims[1], (long long)g->Cg);
    int64_t ks[KILN_MAX_DIMS];
    int nk = conv_attr_ints(c, "kernel_shape", nsp, 0, ks, 1);
    if (nk < 0) return KILN_ERR_INVALID_MODEL;
    if (conv_attr_ints(c, "strides", nsp, 1, g->s, 1) < 0) return KILN_ERR_INVALID_MODEL;
    if (conv_attr_ints(c, "dilations", nsp, 1, g->d, 1) < 0) return KILN_ERR_INVALID_MODEL;
    int64_t pads[2 * KILN_MAX_DIMS];
    if (conv_attr_ints(c, "pads", 2 * nsp, 0, pads, 0) < 0) return KILN_ERR_INVALID_MODEL;
    int ap = conv_auto_pad(c);
    if (ap < 0)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "auto_pad '%s' is not supported",
                         ops_attr_string(c, "auto_pad", ""));
    g->in_sp = g->out_sp = g->k_sp = 1;
    for (int i = 0; i < nsp; i++) {
        g->in[i] = x->dims[2 + i];
        g->k[i] = w->dims[2 + i];
        if (nk > 0 && ks[i] != g->k[i])
            return ops_error(c, KILN_ERR_SHAPE, "kernel_shape[%d] = %lld but weight has %lld", i,
                             (long long)ks[i], (long long)g->k[i]);
        int64_t win = (g->k[i] - 1) * g->d[i] + 1;
        if (g->k[i] < 1) return ops_error(c, KILN_ERR_SHAPE, "weight spatial dim %d is 0", i);
        if (ap == PAD_NOTSET) {
            g->pb[i] = pads[i];
            g->pe[i] = pads[nsp + i];
            int64_t eff = g->in[i] + g->pb[i] + g->pe[i] - win;
            if (eff < 0)
                return ops_error(c, KILN_ERR_SHAPE,
                                 "spatial dim %d: input %lld + pads is smaller than the kernel window %lld",
                                 i, (long long)g->in[i], (long long)win);
            g->out[i] = eff / g->s[i] + 1;
        } else if (ap == PAD_VALID) {
            g->pb[i] = g->pe[i] = 0;
            if (g->in[i] < win)
                return ops_error(c, KILN_ERR_SHAPE,
                                 "spatial dim %d: input %lld is smaller than the kernel window %lld",
                                 i, (long long)g->in[i], (long long)win);
            g->out[i] = (g->in[i] - win) / g->s[i] + 1;
        } else {
            g->out[i] = (g->in[i] + g->s[i] - 1) / g->s[i];
            int64_t total = (g->out[i] - 1) * g->s[i] + win - g->in[i];
            if (total < 0) total = 0;
            if (ap == PAD_SAME_UPPER) { g->pb[i] = total / 2; g->pe[i] = total - total / 2; }
            else { g->pb[i] = total - total / 2; g->pe[i] = total / 2; }
        }
        g->in_sp *= g->in[i];
        g->out_sp *= g->out[i];
        g->k_sp *= g->k[i];
    }
    return KILN_OK;
}

static bool conv_is_pointwise(const conv_geom *g)
{
    for (int i = 0; i < g->nsp; i++)
        if (g->k[i] != 1 || g->s[i] != 1 || g->pb[i] || g->pe[i]) return false;
    return true;
}

/* ---- typed building blocks: GEMM, im2col, col2im ------------------------------------------
 * C[M x N] += A[M x K] * B[K x N], all row-major with leading dimensions. A and B are packed
 * into MR-row / NR-column strips of KC depth so the MR x NR accumulator stays in registers. */
#define GEMM_MR 4
#define GEMM_NR 8
#define GEMM_KC 256
#define GEMM_NC 512

/* Workspace (elements) gemm needs for a given M. */
static int64_t gemm_ws_elems(int64_t M)
{
    return ((M + GEMM_MR - 1) / GEMM_MR) * GEMM_MR * GEMM_KC + (int64_t)GEMM_KC * GEMM_NC;
}

#define DEFINE_CONV_PRIMS(SFX, T)                                                                  \
    static void gemm_kernel_##SFX(int64_t kc, const T *restrict ap, const T *restrict bp,         \
                                  T *restrict cm, int64_t ldc, int mr, int nr)                     \
    {                                                                                              \
        T acc[GEMM_MR][GEMM_NR];                                                                   \
        for (int i = 0; i < GEMM_MR; i++)                                                          \
            for (int j = 0; j < GEMM_NR; j++) acc[i][j] = 0;                                       \
        for (int64_t k = 0; k < kc; k++) {                                                         \
            const T *a = ap + k * GEMM_MR, *b = bp + k * GEMM_NR;                                  \
            for (int i = 0; i < GEMM_MR; i++)                                                      \
                for (int j = 0; j < GEMM_NR; j++) acc[i][j] += a[i] * b[j];                        \
        }                                                                                          \
        if (mr == GEMM_MR && nr == GEMM_NR) {                                                      \
            for (int i = 0; i < GEMM_MR; i++)                                                      \
                for (int j = 0; j < GEMM_NR; j++) cm[i * ldc + j] += acc[i][j];                    \
        } else {                                                                                   \
            for (int i = 0; i < mr; i++)                                                           \
                for (int j = 0; j < nr; j++) cm[i * ldc + j] += acc[i][j];                         \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    static void gemm_##SFX(int64_t M, int64_t N, int64_t K, const T *A, int64_t lda, const T *B,  \
                           int64_t ldb, T *Cm, int64_t ldc, T *ws)                                 \
    {                                                                                              \
        int64_t mstrips = (M + GEMM_MR - 1) / GEMM_MR;                                             \
        T *ap = ws, *bp = ws + mstrips * GEMM_MR * GEMM_KC;                                        \
        for (int64_t k0 = 0; k0 < K; k0 += GEMM_KC) {                                              \
            int64_t kc = K - k0 < GEMM_KC ? K - k0 : GEMM_KC;                                      \
            for (int64_t ms = 0; ms < mstrips; ms++) {                                             \
                T *dst = ap + ms * GEMM_MR * kc;                                                   \
                for (int i = 0; i < GEMM_MR; i++) {                                                \
                    int64_t m = ms * GEMM_MR + i;                                                  \
                    if (m < M) {                                                                   \
                        const T *src = A + m * lda + k0;                                           \
                        for (int64_t k = 0; k < kc; k++) dst[k * GEMM_MR + i] = src[k];            \
                    } else {                                                                       \
                        for (int64_t k = 0; k < kc; k++) dst[k * GEMM_MR + i] = 0;                 \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
            for (int64_t n0 = 0; n0 < N; n0 += GEMM_NC) {                                          \
                int64_t nc = N - n0 < GEMM_NC ? N - n0 : GEMM_NC;                                  \
                int64_t nstrips = (nc + GEMM_NR - 1) / GEMM_NR;                                    \
                for (int64_t js = 0; js < nstrips; js++) {                                         \
                    T *dst = bp + js * GEMM_NR * kc;                                               \
                    int64_t j0 = n0 + js * GEMM_NR;                                                \
                    int64_t nr = N - j0 < GEMM_NR ? N - j0 : GEMM_NR;                              \
                    for (int64_t k = 0; k < kc; k++) {                                             \
                        const T *src = B + (k0 + k) * ldb + j0;                                    \
                        T *d = dst + k * GEMM_NR;                                                  \
                        if (nr == GEMM_NR) {                                                       \
                            for (int j = 0; j < GEMM_NR; j++) d[j] = src[j];                       \
                        } else {                                                                   \
                            for (int j = 0; j < GEMM_NR; j++) d[j] = j < nr ? src[j] : 0;          \
                        }                                                                          \
                    }                                                                              \
                }                                                                                  \
                for (int64_t ms = 0; ms < mstrips; ms++) {                                         \
                    int64_t m0 = ms * GEMM_MR;                                                     \
                    int mr = (int)(M - m0 < GEMM_MR ? M - m0 : GEMM_MR);                           \
                    for (int64_t js = 0; js < nstrips; js++) {                                     \
                        int64_t j0 = n0 + js * GEMM_NR;                                            \
                        int nr = (int)(N - j0 < GEMM_NR ? N - j0 : GEMM_NR);                       \
                        gemm_kernel_##SFX(kc, ap + ms * GEMM_MR * kc, bp + js * GEMM_NR * kc,      \
                                          Cm + m0 * ldc + j0, ldc, mr, nr);                        \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    /* col[(c, kpos), p - p0] for output positions p in [p0, p0 + pc) of channels [0, Cg) of x. */ \
    static void im2col_##SFX(const conv_geom *g, const T *x, int64_t p0, int64_t pc, T *col)      \
    {                                                                                              \
        if (g->nsp <= 2) {                                                                         \
            bool two = g->nsp == 2;                                                                \
            int64_t H = two ? g->in[0] : 1, W = g->in[two];                                        \
            int64_t OW = g->out[two];                                                              \
            int64_t KH = two ? g->k[0] : 1, KW = g->k[two];                                        \
            int64_t sh = two ? g->s[0] : 1, sw = g->s[two];                                        \
            int64_t dh = two ? g->d[0] : 1, dw = g->d[two];                                        \
            int64_t ph = two ? g->pb[0] : 0, pw = g->pb[two];                                      \
            for (int64_t ch = 0; ch < g->Cg; ch++) {                                               \
                const T *xc = x + ch * H * W;                                                      \
                for (int64_t kh = 0; kh < KH; kh++)                                                \
                    for (int64_t kw = 0; kw < KW; kw++) {                                          \
                        T *dst = col + ((ch * KH + kh) * KW + kw) * pc;                            \
                        int64_t oh = p0 / OW, ow = p0 % OW;                                        \
                        for (int64_t i = 0; i < pc;) {                                             \
                            int64_t run = OW - ow < pc - i ? OW - ow : pc - i;                     \
                            int64_t ih = oh * sh - ph + kh * dh;                                   \
                            if (ih < 0 || ih >= H) {                                               \
                                for (int64_t t = 0; t < run; t++) dst[i + t] = 0;                  \
                            } else {                                                               \
                                const T *xr = xc + ih * W;                                         \
                                int64_t iw = ow * sw - pw + kw * dw;                               \
                                if (sw == 1 && iw >= 0 && iw + run <= W) {                         \
                                    memcpy(dst + i, xr + iw, (size_t)run * sizeof(T));             \
                                } else {                                                           \
                                    for (int64_t t = 0; t < run; t++, iw += sw)                    \
                                        dst[i + t] = (iw >= 0 && iw < W) ? xr[iw] : 0;             \
                                }                                                                  \
                            }                                                                      \
                            i += run;                                                              \
                            ow = 0;                                                                \
                            oh++;                                                                  \
                        }                                                                          \
                    }                                                                              \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        int nsp = g->nsp;                                                                          \
        int64_t kidx[KILN_MAX_DIMS], oc[KILN_MAX_DIMS], p0c[KILN_MAX_DIMS];                        \
        int64_t rem = p0;                                                                          \
        for (int i = nsp - 1; i >= 0; i--) { p0c[i] = rem % g->out[i]; rem /= g->out[i]; }         \
        int64_t rows = g->Cg * g->k_sp;                                                            \
        for (int64_t r = 0; r < rows; r++) {                                                       \
            int64_t ch = r / g->k_sp, kr = r % g->k_sp;                                            \
            for (int i = nsp - 1; i >= 0; i--) { kidx[i] = kr % g->k[i]; kr /= g->k[i]; }          \
            const T *xc = x + ch * g->in_sp;                                                       \
            T *dst = col + r * pc;                                                                 \
            memcpy(oc, p0c, sizeof(int64_t) * (size_t)nsp);                                        \
            for (int64_t p = 0; p < pc; p++) {                                                     \
                int64_t off = 0;                                                                   \
                bool inside = true;                                                                \
                for (int i = 0; i < nsp; i++) {                                                    \
                    int64_t ii = oc[i] * g->s[i] - g->pb[i] + kidx[i] * g->d[i];                   \
                    if (ii < 0 || ii >= g->in[i]) { inside = false; break; }                       \
                    off = off * g->in[i] + ii;                                                     \
                }                                                                                  \
                dst[p] = inside ? xc[off] : 0;                                                     \
                ops_index_next(nsp, g->out, oc);                                                   \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    /* img[ch, q*s - pb + k*d] += col[(ch, kpos), q - p0] over cols positions q in [p0, p0+pc) \
     * (cdims) and image dims idims; channels nch. */                                              \
    static void col2im_##SFX(int nsp, int64_t nch, const int64_t *cdims, const int64_t *idims,    \
                             const int64_t *kd, const int64_t *st, const int64_t *dl,              \
                             const int64_t *pb, const T *col, int64_t p0, int64_t pc, T *img)      \
    {                                                                                              \
        int64_t ksp = 1, isp = 1;                                                                  \
        for (int i = 0; i < nsp; i++) { ksp *= kd[i]; isp *= idims[i]; }                           \
        int64_t kidx[KILN_MAX_DIMS], qc[KILN_MAX_DIMS], p0c[KILN_MAX_DIMS];                        \
        int64_t rem = p0;                                                                          \
        for (int i = nsp - 1; i >= 0; i--) { p0c[i] = rem % cdims[i]; rem /= cdims[i]; }           \
        for (int64_t r = 0; r < nch * ksp; r++) {                                                  \
            int64_t ch = r / ksp, kr = r % ksp;                                                    \
            for (int i = nsp - 1; i >= 0; i--) { kidx[i] = kr % kd[i]; kr /= kd[i]; }              \
            T *ic = img + ch * isp;                                                                \
            const T *src = col + r * pc;                                                           \
            memcpy(qc, p0c, sizeof(int64_t) * (size_t)nsp);                                        \
            for (int64_t q = 0; q < pc; q++) {                                                     \
                int64_t off = 0;                                                                   \
                bool inside = true;                                                                \
                for (int i = 0; i < nsp; i++) {                                                    \
                    int64_t ii = qc[i] * st[i] - pb[i] + kidx[i] * dl[i];                          \
                    if (ii < 0 || ii >= idims[i]) { inside = false; break; }                       \
                    off = off * idims[i] + ii;                                                     \
                }                                                                                  \
                if (inside) ic[off] += src[q];                                                     \
                ops_index_next(nsp, cdims, qc);                                                    \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_CONV_PRIMS(f32, float)
DEFINE_CONV_PRIMS(f64, double)

/* Column chunk for im2col: bounded so the column buffer stays a few MB. */
#define CONV_COL_CAP ((int64_t)1 << 20)

static int64_t conv_chunk(int64_t rows, int64_t cols)
{
    if (rows <= 0) return cols > 0 ? cols : 1;
    int64_t pc = CONV_COL_CAP / rows;
    if (pc < 64) pc = 64;
    if (pc > cols) pc = cols;
    return pc > 0 ? pc : 1;
}

/* Forward convolution y = conv(x, w) + b over the whole batch (typed). y is fully written. */
#define DEFINE_CONV_FORWARD(SFX, T)                                                                \
    static kiln_status conv_forward_##SFX(const conv_geom *g, const T *x, const T *w, const T *b, \
                                          T *y)                                                    \
    {                                                                                              \
        int64_t Kg = g->Cg * g->k_sp;                                                              \
        bool pw = conv_is_pointwise(g);                                                            \
        int64_t pc = pw ? g->out_sp : conv_chunk(Kg, g->out_sp);                                   \
        T *ws = core_malloc(sizeof(T) * (size_t)gemm_ws_elems(g->Mg));                             \
        T *col = pw ? NULL : core_malloc(sizeof(T) * (size_t)(Kg * pc > 0 ? Kg * pc : 1));         \
        if (!ws || (!pw && !col)) {                                                                \
            free(ws);                                                                        \
            free(col);                                                                       \
            return core_oom();                                                                     \
        }                                                                                          \
        for (int64_t n = 0; n < g->N; n++)                                                         \
            for (int64_t gr = 0; gr < g->G; gr++) {                                                \
                const T *xg = x + (n * g->C + gr * g->Cg) * g->in_sp;                              \
                const T *wg = w + gr * g->Mg * Kg;                                                 \
                T *yg = y + (n * g->M + gr * g->Mg) * g->out_sp;                                   \
                for (int64_t m = 0; m < g->Mg; m++) {                                              \
                    T bv = b ? b[gr * g->Mg + m] : (T)0;                                           \
                    T *yr = yg + m * g->out_sp;                                                    \
                    for (int64_t p = 0; p < g->out_sp; p++) yr[p] = bv;                            \
                }                                                                                  \
                if (Kg == 0) continue;                                                             \
                if (pw) {                                                                          \
                    gemm_##SFX(g->Mg, g->out_sp, Kg, wg, Kg, xg, g->in_sp, yg, g->out_sp, ws);    \
                    continue;                                                                      \
                }                                                                                  \
                for (int64_t p0 = 0; p0 < g->out_sp; p0 += pc) {                                   \
                    int64_t n_ = g->out_sp - p0 < pc ? g->out_sp - p0 : pc;                        \
                    im2col_##SFX(g, xg, p0, n_, col);                                              \
                    gemm_##SFX(g->Mg, n_, Kg, wg, Kg, col, n_, yg + p0, g->out_sp, ws);            \
                }                                                                                  \
            }                                                                                      \
        free(ws);                                                                            \
        free(col);                                                                           \
        return KILN_OK;                                                                            \
    }

DEFINE_CONV_FORWARD(f32, float)
DEFINE_CONV_FORWARD(f64, double)

