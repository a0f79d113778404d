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

/* Read an ints attribute of exactly n values, filling dflt when absent. Returns the count
 * read (0 when absent), or -1 with the error set. */
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
        /* the upper bound keeps size arithmetic (stride * extent + pads) far from overflow */
        if (v[i] < minval || v[i] > INT32_MAX) {
            ops_error(c, KILN_ERR_INVALID_MODEL, "attribute '%s'[%d] = %lld, must be in [%lld, %d]",
                      name, i, (long long)v[i], (long long)minval, INT32_MAX);
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
        if (!core_mul_size(g->in_sp, g->in[i], &g->in_sp) ||
            !core_mul_size(g->out_sp, g->out[i], &g->out_sp) ||
            !core_mul_size(g->k_sp, g->k[i], &g->k_sp))
            return ops_error(c, KILN_ERR_SHAPE, "spatial dim %d: sizes overflow", i);
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


/* ---- dtype plumbing ---------------------------------------------------------------------- */

static bool conv_is_float_dtype(kiln_dtype t)
{
    return t == KILN_DTYPE_FLOAT || t == KILN_DTYPE_DOUBLE || t == KILN_DTYPE_FLOAT16 ||
           t == KILN_DTYPE_BFLOAT16;
}

/* Elements of t as float: borrowed when t is FLOAT, else converted into *tmp (caller frees).
 * NULL with *tmp NULL means t was NULL; NULL otherwise means out of memory. */
static const float *conv_load_f32(const core_tensor *t, float **tmp, bool *oom)
{
    *tmp = NULL;
    if (!t) return NULL;
    if (t->dtype == KILN_DTYPE_FLOAT) return t->data;
    float *b = malloc(sizeof(float) * (size_t)(t->numel > 0 ? t->numel : 1));
    if (!b) { *oom = true; return NULL; }
    if (t->dtype == KILN_DTYPE_FLOAT16) {
        const uint16_t *s = t->data;
        for (int64_t i = 0; i < t->numel; i++) b[i] = core_f16_to_f32(s[i]);
    } else if (t->dtype == KILN_DTYPE_BFLOAT16) {
        const uint16_t *s = t->data;
        for (int64_t i = 0; i < t->numel; i++) b[i] = core_bf16_to_f32(s[i]);
    } else {
        for (int64_t i = 0; i < t->numel; i++) b[i] = (float)core_load_f64(t->dtype, t->data, i);
    }
    *tmp = b;
    return b;
}

static const double *conv_load_f64(const core_tensor *t, double **tmp, bool *oom)
{
    *tmp = NULL;
    if (!t) return NULL;
    if (t->dtype == KILN_DTYPE_DOUBLE) return t->data;
    double *b = malloc(sizeof(double) * (size_t)(t->numel > 0 ? t->numel : 1));
    if (!b) { *oom = true; return NULL; }
    if (t->dtype == KILN_DTYPE_FLOAT) {
        const float *s = t->data;
        for (int64_t i = 0; i < t->numel; i++) b[i] = s[i];
    } else {
        for (int64_t i = 0; i < t->numel; i++) b[i] = core_load_f64(t->dtype, t->data, i);
    }
    *tmp = b;
    return b;
}

/* Write n floats into y (any float dtype). */
static void conv_store_f32(core_tensor *y, const float *src)
{
    if (y->dtype == KILN_DTYPE_FLOAT) {
        if ((const void *)src != y->data) memcpy(y->data, src, sizeof(float) * (size_t)y->numel);
    } else if (y->dtype == KILN_DTYPE_FLOAT16) {
        uint16_t *d = y->data;
        for (int64_t i = 0; i < y->numel; i++) d[i] = core_f32_to_f16(src[i]);
    } else if (y->dtype == KILN_DTYPE_BFLOAT16) {
        uint16_t *d = y->data;
        for (int64_t i = 0; i < y->numel; i++) d[i] = core_f32_to_bf16(src[i]);
    } else {
        for (int64_t i = 0; i < y->numel; i++) core_store_f64(y->dtype, y->data, i, src[i]);
    }
}

static void conv_store_f64(core_tensor *y, const double *src)
{
    if (y->dtype == KILN_DTYPE_DOUBLE) {
        if ((const void *)src != y->data) memcpy(y->data, src, sizeof(double) * (size_t)y->numel);
    } else if (y->dtype == KILN_DTYPE_FLOAT) {
        float *d = y->data;
        for (int64_t i = 0; i < y->numel; i++) d[i] = (float)src[i];
    } else if (y->dtype == KILN_DTYPE_FLOAT16) {
        uint16_t *d = y->data;
        for (int64_t i = 0; i < y->numel; i++) d[i] = core_f32_to_f16((float)src[i]);
    } else if (y->dtype == KILN_DTYPE_BFLOAT16) {
        uint16_t *d = y->data;
        for (int64_t i = 0; i < y->numel; i++) d[i] = core_f32_to_bf16((float)src[i]);
    } else {
        for (int64_t i = 0; i < y->numel; i++) core_store_f64(y->dtype, y->data, i, src[i]);
    }
}

static kiln_status conv_oom(const ops_ctx *c)
{
    return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
}

static kiln_status conv_check_float(const ops_ctx *c, const core_tensor *t, const char *what,
                                    kiln_dtype want)
{
    if (!t) return KILN_OK;
    if (!conv_is_float_dtype(t->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "%s has dtype %s, expected a float type", what,
                         core_dtype_name(t->dtype));
    if (want != KILN_DTYPE_UNDEFINED && t->dtype != want)
        return ops_error(c, KILN_ERR_DTYPE, "%s has dtype %s, expected %s", what,
                         core_dtype_name(t->dtype), core_dtype_name(want));
    return KILN_OK;
}

/* ---- Conv -------------------------------------------------------------------------------- */

/* y = conv(x, w) + b in the tensors' own float dtype (float/f16/bf16 computed in float). */
static kiln_status conv_compute(const ops_ctx *c, const conv_geom *g, const core_tensor *x,
                                const core_tensor *w, const core_tensor *b, core_tensor *y)
{
    kiln_status st;
    bool oom = false;
    if (x->dtype == KILN_DTYPE_DOUBLE) {
        st = conv_forward_f64(g, x->data, w->data, b ? b->data : NULL, y->data);
        return st ? conv_oom(c) : KILN_OK;
    }
    float *tx, *tw, *tb, *ty = NULL;
    const float *px = conv_load_f32(x, &tx, &oom);
    const float *pw = conv_load_f32(w, &tw, &oom);
    const float *pb = conv_load_f32(b, &tb, &oom);
    float *py = y->dtype == KILN_DTYPE_FLOAT ? y->data : (ty = malloc(sizeof(float) * (size_t)y->numel));
    if (oom || !py) st = conv_oom(c);
    else {
        st = conv_forward_f32(g, px, pw, pb, py);
        if (st) st = conv_oom(c);
        else conv_store_f32(y, py);
    }
    free(tx);
    free(tw);
    free(tb);
    free(ty);
    return st;
}

/* Shared start of Conv and ConvTranspose: check X, W, B, work out the geometry with
 * `geom_init`, allocate Y. *y is NULL (and KILN_OK returned) when Y is empty. */
static kiln_status conv_begin(ops_ctx *c,
                              kiln_status (*geom_init)(const ops_ctx *, const core_tensor *, const core_tensor *, conv_geom *),
                              const core_tensor **xo, const core_tensor **wo, const core_tensor **bo, conv_geom *g,
                              core_tensor **yo)
{
    const core_tensor *x = ops_input(c, 0), *w = ops_input(c, 1), *b = ops_input(c, 2);
    *yo = NULL;
    if (!x || !w) return ops_error(c, KILN_ERR_INVALID_MODEL, "inputs X and W are required");
    kiln_status st;
    if ((st = conv_check_float(c, x, "input X", KILN_DTYPE_UNDEFINED)) ||
        (st = conv_check_float(c, w, "weight W", x->dtype)) ||
        (st = conv_check_float(c, b, "bias B", x->dtype)))
        return st;
    if ((st = geom_init(c, x, w, g))) return st;
    if (b && b->numel != g->M)
        return ops_error(c, KILN_ERR_SHAPE, "bias has %lld values, expected %lld",
                         (long long)b->numel, (long long)g->M);
    int64_t yd[KILN_MAX_DIMS] = {g->N, g->M};
    for (int i = 0; i < g->nsp; i++) yd[2 + i] = g->out[i];
    core_tensor *y = ops_output(c, 0, x->dtype, x->ndim, yd);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    *xo = x;
    *wo = w;
    *bo = b;
    if (y->numel) *yo = y;
    return KILN_OK;
}

static kiln_status conv_run(ops_ctx *c)
{
    const core_tensor *x, *w, *b;
    core_tensor *y;
    conv_geom g;
    kiln_status st = conv_begin(c, conv_geom_init, &x, &w, &b, &g, &y);
    if (st || !y) return st;
    return conv_compute(c, &g, x, w, b, y);
}

/* ---- ConvTranspose ------------------------------------------------------------------------ */

/* x is (N, C, in...), w is (C, M/group, k...). Output spatial size from output_shape or
 * stride*(in-1) + output_padding + ((k-1)*d+1) - pads. */
static kiln_status convt_geom_init(const ops_ctx *c, const core_tensor *x, const core_tensor *w,
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
    g->G = ops_attr_int(c, "group", 1);
    if (g->G < 1) return ops_error(c, KILN_ERR_INVALID_MODEL, "group = %lld, must be >= 1", (long long)g->G);
    if (g->C % g->G)
        return ops_error(c, KILN_ERR_SHAPE, "input channels %lld not divisible by group %lld",
                         (long long)g->C, (long long)g->G);
    if (w->dims[0] != g->C)
        return ops_error(c, KILN_ERR_SHAPE, "weight dim 0 is %lld, expected C = %lld",
                         (long long)w->dims[0], (long long)g->C);
    g->Cg = g->C / g->G;
    g->Mg = w->dims[1];
    g->M = g->Mg * g->G;
    if (conv_attr_ints(c, "strides", nsp, 1, g->s, 1) < 0) return KILN_ERR_INVALID_MODEL;
    if (conv_attr_ints(c, "dilations", nsp, 1, g->d, 1) < 0) return KILN_ERR_INVALID_MODEL;
    int64_t ks[KILN_MAX_DIMS];
    int nk = conv_attr_ints(c, "kernel_shape", nsp, 0, ks, 1);
    if (nk < 0) return KILN_ERR_INVALID_MODEL;
    int64_t cnt = 0;
    const int64_t *opad = ops_attr_ints(c, "output_padding", &cnt);
    if (opad && cnt != nsp && cnt != 2 * nsp)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "output_padding has %lld values, expected %d",
                         (long long)cnt, nsp);
    int64_t oscnt = 0;
    const int64_t *oshape = ops_attr_ints(c, "output_shape", &oscnt);
    if (oshape && oscnt != nsp && oscnt != nsp + 2)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "output_shape has %lld values, expected %d",
                         (long long)oscnt, nsp);
    if (oshape && oscnt == nsp + 2) oshape += 2;
    bool has_pads = ops_has_attr(c, "pads");
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
        int64_t op = opad ? opad[i] : 0;
        if (op < 0 || op > INT32_MAX)
            return ops_error(c, KILN_ERR_INVALID_MODEL, "output_padding[%d] = %lld is out of range", i,
                             (long long)op);
        if (g->in[i] > 0 && g->in[i] - 1 > ((int64_t)1 << 60) / g->s[i])
            return ops_error(c, KILN_ERR_SHAPE, "spatial dim %d: output size overflows", i);
        int64_t full = g->s[i] * (g->in[i] - 1) + op + (g->k[i] - 1) * g->d[i] + 1;
        bool same = ap == PAD_SAME_UPPER || ap == PAD_SAME_LOWER;
        if (oshape || (same && !has_pads)) {
            int64_t o = oshape ? oshape[i] : g->in[i] * g->s[i];
            if (o < 0) return ops_error(c, KILN_ERR_INVALID_MODEL, "output_shape[%d] is negative", i);
            g->out[i] = o;
            if (has_pads && ap == PAD_NOTSET) {
                g->pb[i] = pads[i];
                g->pe[i] = pads[nsp + i];
            } else {
                int64_t total = full - o;
                /* floor division, total may be negative */
                int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);
                if (ap == PAD_SAME_UPPER) { g->pb[i] = half; g->pe[i] = total - half; }
                else { g->pb[i] = total - half; g->pe[i] = half; }
            }
        } else {
            if (ap == PAD_NOTSET || has_pads) {
                g->pb[i] = pads[i];
                g->pe[i] = pads[nsp + i];
            }
            g->out[i] = full - g->pb[i] - g->pe[i];
            if (g->out[i] < 0)
                return ops_error(c, KILN_ERR_SHAPE, "spatial dim %d: output size %lld is negative",
                                 i, (long long)g->out[i]);
        }
        if (!core_mul_size(g->in_sp, g->in[i], &g->in_sp) ||
            !core_mul_size(g->out_sp, g->out[i], &g->out_sp) ||
            !core_mul_size(g->k_sp, g->k[i], &g->k_sp))
            return ops_error(c, KILN_ERR_SHAPE, "spatial dim %d: sizes overflow", i);
    }
    return KILN_OK;
}

#define DEFINE_CONVT_FORWARD(SFX, T)                                                               \
    static kiln_status convt_forward_##SFX(const conv_geom *g, const T *x, const T *w,            \
                                           const T *b, T *y)                                       \
    {                                                                                              \
        int64_t Kt = g->Mg * g->k_sp;                                                              \
        int64_t pc = conv_chunk(Kt, g->in_sp);                                                     \
        T *ws = malloc(sizeof(T) * (size_t)gemm_ws_elems(Kt));                                     \
        T *col = malloc(sizeof(T) * (size_t)(Kt * pc > 0 ? Kt * pc : 1));                          \
        T *wt = malloc(sizeof(T) * (size_t)(Kt * g->Cg > 0 ? Kt * g->Cg : 1));                     \
        if (!ws || !col || !wt) {                                                                  \
            free(ws);                                                                              \
            free(col);                                                                             \
            free(wt);                                                                              \
            return KILN_ERR_OUT_OF_MEMORY;                                                         \
        }                                                                                          \
        for (int64_t gr = 0; gr < g->G; gr++) {                                                    \
            const T *wg = w + gr * g->Cg * Kt;                                                     \
            for (int64_t ci = 0; ci < g->Cg; ci++)                                                 \
                for (int64_t r = 0; r < Kt; r++) wt[r * g->Cg + ci] = wg[ci * Kt + r];             \
            for (int64_t n = 0; n < g->N; n++) {                                                   \
                const T *xg = x + (n * g->C + gr * g->Cg) * g->in_sp;                              \
                T *yg = y + (n * g->M + gr * g->Mg) * g->out_sp;                                   \
                for (int64_t m = 0; m < g->Mg; m++) {                                              \
                    T bv = b ? b[gr * g->Mg + m] : (T)0;                                           \
                    for (int64_t p = 0; p < g->out_sp; p++) yg[m * g->out_sp + p] = bv;            \
                }                                                                                  \
                if (Kt == 0 || g->Cg == 0) continue;                                               \
                for (int64_t p0 = 0; p0 < g->in_sp; p0 += pc) {                                    \
                    int64_t n_ = g->in_sp - p0 < pc ? g->in_sp - p0 : pc;                          \
                    memset(col, 0, sizeof(T) * (size_t)(Kt * n_));                                 \
                    gemm_##SFX(Kt, n_, g->Cg, wt, g->Cg, xg + p0, g->in_sp, col, n_, ws);         \
                    col2im_##SFX(g->nsp, g->Mg, g->in, g->out, g->k, g->s, g->d, g->pb, col, p0,  \
                                 n_, yg);                                                          \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        free(ws);                                                                                  \
        free(col);                                                                                 \
        free(wt);                                                                                  \
        return KILN_OK;                                                                            \
    }

DEFINE_CONVT_FORWARD(f32, float)
DEFINE_CONVT_FORWARD(f64, double)

static kiln_status convt_run(ops_ctx *c)
{
    const core_tensor *x, *w, *b;
    core_tensor *y;
    conv_geom g;
    kiln_status st = conv_begin(c, convt_geom_init, &x, &w, &b, &g, &y);
    if (st || !y) return st;
    if (x->dtype == KILN_DTYPE_DOUBLE) {
        st = convt_forward_f64(&g, x->data, w->data, b ? b->data : NULL, y->data);
        return st ? conv_oom(c) : KILN_OK;
    }
    bool oom = false;
    float *tx, *tw, *tb, *ty = NULL;
    const float *px = conv_load_f32(x, &tx, &oom);
    const float *pw = conv_load_f32(w, &tw, &oom);
    const float *pb = conv_load_f32(b, &tb, &oom);
    float *py = y->dtype == KILN_DTYPE_FLOAT ? y->data : (ty = malloc(sizeof(float) * (size_t)y->numel));
    if (oom || !py) st = conv_oom(c);
    else if (convt_forward_f32(&g, px, pw, pb, py)) st = conv_oom(c);
    else conv_store_f32(y, py);
    free(tx);
    free(tw);
    free(tb);
    free(ty);
    return st;
}

/* ---- ConvInteger / QLinearConv ---------------------------------------------------------------
 * Integer convolutions run through the double kernel: |products| <= 2^16 and sums stay far
 * below 2^53, so the double result is the exact int32 accumulator. */

static bool conv_is_q8(kiln_dtype t) { return t == KILN_DTYPE_UINT8 || t == KILN_DTYPE_INT8; }

/* (t - zp) as doubles; zp is a scalar or (when per_axis_len > 0) per slice along axis 0. */
static double *conv_dequant_zp(const ops_ctx *c, const core_tensor *t, const core_tensor *zp,
                               int64_t per_axis_len, const char *what, kiln_status *st)
{
    *st = KILN_OK;
    int64_t nz = zp ? zp->numel : 0;
    if (zp && !core_dtype_is_int(zp->dtype)) {
        *st = ops_error(c, KILN_ERR_DTYPE, "%s zero point has dtype %s", what, core_dtype_name(zp->dtype));
        return NULL;
    }
    if (nz > 1 && (per_axis_len <= 0 || nz != per_axis_len)) {
        *st = ops_error(c, KILN_ERR_SHAPE, "%s zero point has %lld values, expected 1%s", what,
                        (long long)nz, per_axis_len > 0 ? " or one per output channel" : "");
        return NULL;
    }
    double *b = malloc(sizeof(double) * (size_t)(t->numel > 0 ? t->numel : 1));
    if (!b) { *st = conv_oom(c); return NULL; }
    int64_t inner = (nz > 1) ? t->numel / nz : t->numel;
    for (int64_t i = 0; i < t->numel; i++) {
        double z = nz == 0 ? 0.0 : core_load_f64(zp->dtype, zp->data, nz > 1 ? i / inner : 0);
        b[i] = core_load_f64(t->dtype, t->data, i) - z;
    }
    return b;
}

/* Runs the integer convolution for ConvInteger (qlinear == false) or QLinearConv. */
static kiln_status conv_integer_common(ops_ctx *c, bool qlinear)
{
    int ix = 0, iw = qlinear ? 3 : 1;
    const core_tensor *x = ops_input(c, ix), *w = ops_input(c, iw);
    const core_tensor *xzp = ops_input(c, qlinear ? 2 : 2), *wzp = ops_input(c, qlinear ? 5 : 3);
    if (!x || !w) return ops_error(c, KILN_ERR_INVALID_MODEL, "inputs x and w are required");
    if (!conv_is_q8(x->dtype) || !conv_is_q8(w->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "x is %s and w is %s, expected uint8/int8",
                         core_dtype_name(x->dtype), core_dtype_name(w->dtype));
    kiln_status st;
    conv_geom g;
    if ((st = conv_geom_init(c, x, w, &g))) return st;
    const core_tensor *bias = qlinear ? ops_input(c, 8) : NULL;
    if (bias && bias->numel != g.M)
        return ops_error(c, KILN_ERR_SHAPE, "bias has %lld values, expected %lld",
                         (long long)bias->numel, (long long)g.M);
    const core_tensor *xs = NULL, *wsc = NULL, *ys = NULL, *yzp = NULL;
    kiln_dtype ydt = KILN_DTYPE_INT32;
    if (qlinear) {
        xs = ops_input(c, 1);
        wsc = ops_input(c, 4);
        ys = ops_input(c, 6);
        yzp = ops_input(c, 7);
        if (!xs || !wsc || !ys)
            return ops_error(c, KILN_ERR_INVALID_MODEL, "x_scale, w_scale and y_scale are required");
        if (wsc->numel != 1 && wsc->numel != g.M)
            return ops_error(c, KILN_ERR_SHAPE, "w_scale has %lld values, expected 1 or %lld",
                             (long long)wsc->numel, (long long)g.M);
        ydt = yzp ? yzp->dtype : x->dtype;
        if (!conv_is_q8(ydt))
            return ops_error(c, KILN_ERR_DTYPE, "y_zero_point has dtype %s", core_dtype_name(ydt));
    }
    int64_t yd[KILN_MAX_DIMS] = {g.N, g.M};
    for (int i = 0; i < g.nsp; i++) yd[2 + i] = g.out[i];
    core_tensor *y = ops_output(c, 0, ydt, x->ndim, yd);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    double *dx = conv_dequant_zp(c, x, xzp, 0, "x", &st);
    if (!dx) return st;
    double *dw = conv_dequant_zp(c, w, wzp, g.M, "w", &st);
    if (!dw) { free(dx); return st; }
    bool oom = false;
    double *tb = NULL, *acc = malloc(sizeof(double) * (size_t)y->numel);
    const double *pb = conv_load_f64(bias, &tb, &oom);
    if (!acc || oom) st = conv_oom(c);
    else if (conv_forward_f64(&g, dx, dw, pb, acc)) st = conv_oom(c);
    if (!st) {
        if (!qlinear) {
            int32_t *yo = y->data;
            for (int64_t i = 0; i < y->numel; i++) yo[i] = (int32_t)llrint(acc[i]);
        } else {
            float fxs = (float)ops_scalar_f64(xs), fys = (float)ops_scalar_f64(ys);
            double z = yzp ? ops_scalar_f64(yzp) : 0.0;
            double lo = ydt == KILN_DTYPE_INT8 ? -128.0 : 0.0, hi = ydt == KILN_DTYPE_INT8 ? 127.0 : 255.0;
            int64_t per = g.out_sp;
            for (int64_t i = 0; i < y->numel; i++) {
                int64_t m = (i / per) % g.M;
                float fws = (float)core_load_f64(wsc->dtype, wsc->data, wsc->numel > 1 ? m : 0);
                float scale = fxs * fws / fys;
                double r = acc[i] * (double)scale + z;
                if (r < lo) r = lo;
                if (r > hi) r = hi;
                r = nearbyint(r);
                if (ydt == KILN_DTYPE_INT8) ((int8_t *)y->data)[i] = (int8_t)r;
                else ((uint8_t *)y->data)[i] = (uint8_t)r;
            }
        }
    }
    free(dx);
    free(dw);
    free(tb);
    free(acc);
    return st;
}

static kiln_status conv_integer_run(ops_ctx *c) { return conv_integer_common(c, false); }
static kiln_status qlinear_conv_run(ops_ctx *c) { return conv_integer_common(c, true); }

/* ---- DeformConv ----------------------------------------------------------------------------
 * Deformable im2col: each kernel tap of each output position samples the input at its
 * regular position plus a learned offset (multilinear interpolation, zero outside), scaled by
 * the optional mask; then the usual GEMM with the weights. Computed in double. */
static kiln_status deform_conv_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0), *w = ops_input(c, 1), *off = ops_input(c, 2);
    const core_tensor *b = ops_input(c, 3), *mask = ops_input(c, 4);
    if (!x || !w || !off) return ops_error(c, KILN_ERR_INVALID_MODEL, "inputs X, W and offset are required");
    kiln_status st;
    if ((st = conv_check_float(c, x, "input X", KILN_DTYPE_UNDEFINED)) ||
        (st = conv_check_float(c, w, "weight W", KILN_DTYPE_UNDEFINED)) ||
        (st = conv_check_float(c, off, "offset", KILN_DTYPE_UNDEFINED)) ||
        (st = conv_check_float(c, b, "bias B", KILN_DTYPE_UNDEFINED)) ||
        (st = conv_check_float(c, mask, "mask", KILN_DTYPE_UNDEFINED)))
        return st;
    conv_geom g;
    if ((st = conv_geom_init(c, x, w, &g))) return st;
    int nsp = g.nsp;
    int64_t og = ops_attr_int(c, "offset_group", 1);
    if (og < 1 || g.C % og)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "offset_group %lld does not divide channels %lld",
                         (long long)og, (long long)g.C);
    if (off->ndim != x->ndim || off->dims[0] != g.N || off->dims[1] != og * g.k_sp * nsp)
        return ops_error(c, KILN_ERR_SHAPE, "offset dims do not match (N, offset_group*%lld*%d, out...)",
                         (long long)g.k_sp, nsp);
    for (int i = 0; i < nsp; i++)
        if (off->dims[2 + i] != g.out[i])
            return ops_error(c, KILN_ERR_SHAPE, "offset spatial dim %d is %lld, expected %lld", i,
                             (long long)off->dims[2 + i], (long long)g.out[i]);
    if (mask && mask->numel != g.N * og * g.k_sp * g.out_sp)
        return ops_error(c, KILN_ERR_SHAPE, "mask has %lld values, expected %lld",
                         (long long)mask->numel, (long long)(g.N * og * g.k_sp * g.out_sp));
    if (b && b->numel != g.M)
        return ops_error(c, KILN_ERR_SHAPE, "bias has %lld values, expected %lld",
                         (long long)b->numel, (long long)g.M);
    if (nsp > 8) return ops_error(c, KILN_ERR_UNSUPPORTED, "DeformConv with %d spatial dims", nsp);
    int64_t yd[KILN_MAX_DIMS] = {g.N, g.M};
    for (int i = 0; i < nsp; i++) yd[2 + i] = g.out[i];
    core_tensor *y = ops_output(c, 0, x->dtype, x->ndim, yd);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;

    bool oom = false;
    double *tx, *tw, *to, *tb, *tm;
    const double *px = conv_load_f64(x, &tx, &oom), *pw = conv_load_f64(w, &tw, &oom);
    const double *po = conv_load_f64(off, &to, &oom), *pb = conv_load_f64(b, &tb, &oom);
    const double *pm = conv_load_f64(mask, &tm, &oom);
    int64_t Kg = g.Cg * g.k_sp;
    double *col = malloc(sizeof(double) * (size_t)(Kg * g.out_sp > 0 ? Kg * g.out_sp : 1));
    double *ws = malloc(sizeof(double) * (size_t)gemm_ws_elems(g.Mg));
    double *yo = malloc(sizeof(double) * (size_t)y->numel);
    st = KILN_OK;
    if (oom || !col || !ws || !yo) st = conv_oom(c);
    int64_t cpog = g.C / og;
    int64_t istr[KILN_MAX_DIMS];
    ops_contiguous_strides(nsp, g.in, istr);
    for (int64_t n = 0; !st && n < g.N; n++)
        for (int64_t gr = 0; gr < g.G; gr++) {
            for (int64_t ch = 0; ch < g.Cg; ch++) {
                int64_t cabs = gr * g.Cg + ch, ogi = cabs / cpog;
                const double *xc = px + (n * g.C + cabs) * g.in_sp;
                int64_t kidx[KILN_MAX_DIMS] = {0};
                for (int64_t kp = 0; kp < g.k_sp; kp++, ops_index_next(nsp, g.k, kidx)) {
                    double *dst = col + (ch * g.k_sp + kp) * g.out_sp;
                    const double *ob = po + ((n * og + ogi) * g.k_sp + kp) * nsp * g.out_sp;
                    const double *mb = pm ? pm + ((n * og + ogi) * g.k_sp + kp) * g.out_sp : NULL;
                    int64_t oc[KILN_MAX_DIMS] = {0};
                    for (int64_t p = 0; p < g.out_sp; p++, ops_index_next(nsp, g.out, oc)) {
                        double pos[KILN_MAX_DIMS] = {0};
                        int64_t lo[KILN_MAX_DIMS] = {0};
                        double fr[KILN_MAX_DIMS] = {0};
                        for (int i = 0; i < nsp; i++) {
                            pos[i] = (double)(oc[i] * g.s[i] - g.pb[i] + kidx[i] * g.d[i]) +
                                     ob[i * g.out_sp + p];
                            /* beyond one pixel outside every corner reads zero; NaN -> outside */
                            pos[i] = fmin(fmax(pos[i], -2.0), (double)g.in[i] + 1.0);
                            double fl = floor(pos[i]);
                            lo[i] = (int64_t)fl;
                            fr[i] = pos[i] - fl;
                        }
                        double v = 0;
                        for (int corner = 0; corner < (1 << nsp); corner++) {
                            double wgt = 1;
                            int64_t o = 0;
                            bool inside = true;
                            for (int i = 0; i < nsp; i++) {
                                int hi = (corner >> (nsp - 1 - i)) & 1;
                                int64_t ii = lo[i] + hi;
                                if (ii < 0 || ii >= g.in[i]) { inside = false; break; }
                                wgt *= hi ? fr[i] : 1.0 - fr[i];
                                o += ii * istr[i];
                            }
                            if (inside && wgt != 0) v += wgt * xc[o];
                        }
                        dst[p] = mb ? v * mb[p] : v;
                    }
                }
            }
            double *yg = yo + (n * g.M + gr * g.Mg) * g.out_sp;
            for (int64_t m = 0; m < g.Mg; m++)
                for (int64_t p = 0; p < g.out_sp; p++)
                    yg[m * g.out_sp + p] = pb ? pb[gr * g.Mg + m] : 0.0;
            if (Kg > 0) gemm_f64(g.Mg, g.out_sp, Kg, pw + gr * g.Mg * Kg, Kg, col, g.out_sp, yg, g.out_sp, ws);
        }
    if (!st) conv_store_f64(y, yo);
    free(tx); free(tw); free(to); free(tb); free(tm);
    free(col); free(ws); free(yo);
    return st;
}

/* ---- Col2Im ------------------------------------------------------------------------------- */
static kiln_status col2im_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0), *ishape = ops_input(c, 1), *bshape = ops_input(c, 2);
    if (!x || !ishape || !bshape)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "inputs input, image_shape and block_shape are required");
    int64_t img[KILN_MAX_DIMS], blk[KILN_MAX_DIMS];
    int64_t ni = ops_tensor_i64s(ishape, img, KILN_MAX_DIMS - 2);
    if (ni < 0) return ops_error(c, KILN_ERR_INVALID_MODEL, "image_shape: %s", core_error_text());
    int64_t nb = ops_tensor_i64s(bshape, blk, KILN_MAX_DIMS - 2);
    if (nb < 0) return ops_error(c, KILN_ERR_INVALID_MODEL, "block_shape: %s", core_error_text());
    if (ni != nb || ni < 1)
        return ops_error(c, KILN_ERR_SHAPE, "image_shape has %lld values and block_shape %lld",
                         (long long)ni, (long long)nb);
    int nsp = (int)ni;
    if (x->ndim != 3) return ops_error(c, KILN_ERR_SHAPE, "input has %d dims, expected 3", x->ndim);
    int64_t s[KILN_MAX_DIMS], d[KILN_MAX_DIMS], pads[2 * KILN_MAX_DIMS];
    if (conv_attr_ints(c, "strides", nsp, 1, s, 1) < 0) return KILN_ERR_INVALID_MODEL;
    if (conv_attr_ints(c, "dilations", nsp, 1, d, 1) < 0) return KILN_ERR_INVALID_MODEL;
    if (conv_attr_ints(c, "pads", 2 * nsp, 0, pads, 0) < 0) return KILN_ERR_INVALID_MODEL;
    int64_t bsp = 1, L = 1, nbk[KILN_MAX_DIMS];
    for (int i = 0; i < nsp; i++) {
        if (blk[i] < 1 || img[i] < 0)
            return ops_error(c, KILN_ERR_SHAPE, "block_shape[%d] = %lld, image_shape[%d] = %lld", i,
                             (long long)blk[i], i, (long long)img[i]);
        bsp *= blk[i];
        int64_t eff = img[i] + pads[i] + pads[nsp + i] - ((blk[i] - 1) * d[i] + 1);
        if (eff < 0) return ops_error(c, KILN_ERR_SHAPE, "block larger than padded image in dim %d", i);
        nbk[i] = eff / s[i] + 1;
        L *= nbk[i];
    }
    if (x->dims[1] % bsp)
        return ops_error(c, KILN_ERR_SHAPE, "input dim 1 (%lld) not divisible by block size %lld",
                         (long long)x->dims[1], (long long)bsp);
    if (x->dims[2] != L)
        return ops_error(c, KILN_ERR_SHAPE, "input dim 2 is %lld, expected %lld blocks",
                         (long long)x->dims[2], (long long)L);
    int64_t C = x->dims[1] / bsp, N = x->dims[0];
    int64_t yd[KILN_MAX_DIMS] = {N, C};
    int64_t isp = 1;
    for (int i = 0; i < nsp; i++) { yd[2 + i] = img[i]; isp *= img[i]; }
    core_tensor *y = ops_output(c, 0, x->dtype, nsp + 2, yd);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0 || x->numel == 0) return KILN_OK;
    if (x->dtype == KILN_DTYPE_FLOAT) {
        memset(y->data, 0, sizeof(float) * (size_t)y->numel);
        for (int64_t n = 0; n < N; n++)
            col2im_f32(nsp, C, nbk, img, blk, s, d, pads, (const float *)x->data + n * C * bsp * L, 0, L,
                       (float *)y->data + n * C * isp);
        return KILN_OK;
    }
    if (x->dtype == KILN_DTYPE_STRING || x->dtype == KILN_DTYPE_BOOL)
        return ops_error(c, KILN_ERR_DTYPE, "Col2Im on %s", core_dtype_name(x->dtype));
    bool oom = false;
    double *tx, *yo = calloc((size_t)y->numel, sizeof(double));
    const double *px = conv_load_f64(x, &tx, &oom);
    if (oom || !yo) { free(tx); free(yo); return conv_oom(c); }
    for (int64_t n = 0; n < N; n++)
        col2im_f64(nsp, C, nbk, img, blk, s, d, pads, px + n * C * bsp * L, 0, L, yo + n * C * isp);
    conv_store_f64(y, yo);
    free(tx);
    free(yo);
    return KILN_OK;
}

/* ---- CausalConvWithState --------------------------------------------------------------------
 * Depthwise causal 1-D conv over concat(past_state or zeros, input); present_state keeps the
 * last k-1 positions of that concatenation. Output rounds to the io dtype before the fused
 * activation, as the reference does. */
static kiln_status causal_conv_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0), *w = ops_input(c, 1), *b = ops_input(c, 2),
                      *past = ops_input(c, 3);
    if (!x || !w) return ops_error(c, KILN_ERR_INVALID_MODEL, "inputs input and weight are required");
    kiln_status st;
    if ((st = conv_check_float(c, x, "input", KILN_DTYPE_UNDEFINED)) ||
        (st = conv_check_float(c, w, "weight", x->dtype)) ||
        (st = conv_check_float(c, b, "bias", x->dtype)) ||
        (st = conv_check_float(c, past, "past_state", x->dtype)))
        return st;
    const char *act = ops_attr_string(c, "activation", "none");
    bool silu = !strcmp(act, "silu") || !strcmp(act, "swish");
    if (!silu && strcmp(act, "none"))
        return ops_error(c, KILN_ERR_INVALID_MODEL, "activation '%s' is not supported", act);
    if (x->ndim != 3) return ops_error(c, KILN_ERR_SHAPE, "input has %d dims, expected 3", x->ndim);
    int64_t B = x->dims[0], C = x->dims[1], L = x->dims[2];
    if (w->ndim != 3 || w->dims[0] != C || w->dims[1] != 1 || w->dims[2] < 1)
        return ops_error(c, KILN_ERR_SHAPE, "weight must be (%lld, 1, k)", (long long)C);
    int64_t K = w->dims[2], S = K - 1;
    if (b && b->numel != C) return ops_error(c, KILN_ERR_SHAPE, "bias has %lld values, expected %lld",
                                             (long long)b->numel, (long long)C);
    if (past && (past->ndim != 3 || past->dims[0] != B || past->dims[1] != C || past->dims[2] != S))
        return ops_error(c, KILN_ERR_SHAPE, "past_state must be (%lld, %lld, %lld)", (long long)B,
                         (long long)C, (long long)S);
    core_tensor *y = ops_output(c, 0, x->dtype, 3, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    int64_t pd[3] = {B, C, S};
    core_tensor *ps = ops_output(c, 1, x->dtype, 3, pd);
    if (!ps) return KILN_ERR_OUT_OF_MEMORY;
    bool oom = false;
    double *tx, *tw, *tb, *tp;
    const double *px = conv_load_f64(x, &tx, &oom), *pw = conv_load_f64(w, &tw, &oom);
    const double *pb = conv_load_f64(b, &tb, &oom), *pp = conv_load_f64(past, &tp, &oom);
    double *pad = malloc(sizeof(double) * (size_t)(S + L > 0 ? S + L : 1));
    double *yo = malloc(sizeof(double) * (size_t)(y->numel > 0 ? y->numel : 1));
    double *so = malloc(sizeof(double) * (size_t)(ps->numel > 0 ? ps->numel : 1));
    st = KILN_OK;
    if (oom || !pad || !yo || !so) st = conv_oom(c);
    for (int64_t bc = 0; !st && bc < B * C; bc++) {
        int64_t ch = bc % C;
        for (int64_t i = 0; i < S; i++) pad[i] = pp ? pp[bc * S + i] : 0.0;
        for (int64_t i = 0; i < L; i++) pad[S + i] = px[bc * L + i];
        const double *wk = pw + ch * K;
        for (int64_t t = 0; t < L; t++) {
            double acc = pb ? pb[ch] : 0.0;
            for (int64_t k = 0; k < K; k++) acc += wk[k] * pad[t + k];
            if (silu) {
                /* The reference rounds to the io dtype, then applies SiLU in float. */
                float v = (float)acc;
                if (x->dtype == KILN_DTYPE_FLOAT16) v = core_f16_to_f32(core_f32_to_f16(v));
                else if (x->dtype == KILN_DTYPE_BFLOAT16) v = core_bf16_to_f32(core_f32_to_bf16(v));
                acc = (x->dtype == KILN_DTYPE_DOUBLE) ? acc / (1.0 + exp(-acc))
                                                      : (double)(v / (1.0f + expf(-v)));
            }
            yo[bc * L + t] = acc;
        }
        for (int64_t i = 0; i < S; i++) so[bc * S + i] = pad[L + i];
    }
    if (!st) {
        conv_store_f64(y, yo);
        conv_store_f64(ps, so);
    }
    free(tx); free(tw); free(tb); free(tp);
    free(pad); free(yo); free(so);
    return st;
}

const ops_schema ops_table_conv[] = {
    {"Conv", "", 1, conv_run, 0},
    {"ConvTranspose", "", 1, convt_run, 0},
    {"ConvInteger", "", 10, conv_integer_run, 0},
    {"QLinearConv", "", 10, qlinear_conv_run, 0},
    {"DeformConv", "", 19, deform_conv_run, 0},
    {"Col2Im", "", 18, col2im_run, 0},
    {"CausalConvWithState", "", 27, causal_conv_run, 0},
    OPS_TABLE_END
};
