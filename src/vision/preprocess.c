/* preprocess.c — network-input preparation: normalisation into float NCHW, YOLOv5
 * letterbox (plain and fused into one pass), and affine warps (tensorRT_Pro style). */
#include "core/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Bilinear arithmetic shared bit-for-bit with resize.c: 11-bit weights per axis, the 2-D
 * sample is (sum wx*wy*p + 2^21) >> 22 in int32, so the fused letterbox equals
 * kiln_letterbox + kiln_image_to_tensor exactly. */
#define PP_BITS 11
#define PP_ONE (1 << PP_BITS)
#define PP_ROUND (1 << (2 * PP_BITS - 1))

#if defined(__clang__)
/* keep v * k + b unfused so every path rounds the same way */
#pragma STDC FP_CONTRACT OFF
#endif

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define PP_X86 1
#endif

static kiln_status image_check(const kiln_image *img, const char *what)
{
    if (!img || !img->data || img->width <= 0 || img->height <= 0 ||
        (img->channels != 1 && img->channels != 3 && img->channels != 4) || img->stride < img->width * img->channels)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "%s: invalid source image (%dx%d, %d channels, stride %d)", what,
                          img ? img->width : 0, img ? img->height : 0, img ? img->channels : 0,
                          img ? img->stride : 0);
    return KILN_OK;
}

KILN_API kiln_normalize kiln_normalize_default(void)
{
    kiln_normalize n;
    memset(&n, 0, sizeof n);
    n.scale = 1.0f / 255.0f;
    for (int c = 0; c < 4; c++) n.std[c] = 1.0f;
    return n;
}

/* out = (p * scale - mean) / std folded into out = p * k + b; the same folding is used by
 * every path here so that they agree to the last bit. */
typedef struct pp_norm {
    float k[4], b[4];
    int src_ch[4]; /* source channel feeding output channel c */
} pp_norm;

static kiln_status pp_norm_prepare(const kiln_normalize *norm, int src_channels, int out_channels, pp_norm *pn)
{
    kiln_normalize def = kiln_normalize_default();
    if (!norm) norm = &def;
    for (int c = 0; c < out_channels; c++) {
        float sd = norm->std[c];
        if (!(sd != 0.0f) || !isfinite(sd) || !isfinite(norm->mean[c]) || !isfinite(norm->scale))
            return core_error(KILN_ERR_INVALID_ARGUMENT,
                              "normalize: channel %d has std %g, mean %g, scale %g (std must be finite and non-zero)",
                              c, (double)sd, (double)norm->mean[c], (double)norm->scale);
        pn->k[c] = norm->scale / sd;
        pn->b[c] = -norm->mean[c] / sd;
        if (src_channels == 1)
            pn->src_ch[c] = 0; /* gray feeds every output channel */
        else
            pn->src_ch[c] = (norm->swap_rb && c < 3) ? 2 - c : c;
    }
    return KILN_OK;
}

static inline float pp_cvt(int v, float k, float b) { return (float)v * k + b; }

/* Interleaved 8-bit rows -> `nc` float planes (plane stride `plane`). Loops run over the
 * source channels in storage order with constant offsets (so they vectorise); the channel
 * mapping is applied by choosing which plane each source channel lands in. */
static inline __attribute__((always_inline)) void pp_planes_body(const kiln_image *src, const pp_norm *pn, int nc,
                                                                 float *dst, size_t plane, size_t row_stride)
{
    const int cn = src->channels, w = src->width;
    float *e[4] = {NULL, NULL, NULL, NULL};
    float K[4] = {0}, B[4] = {0};
    if (cn > 1)
        for (int c = 0; c < nc; c++) {
            int sc = pn->src_ch[c];
            e[sc] = dst + c * plane, K[sc] = pn->k[c], B[sc] = pn->b[c];
        }
    for (int y = 0; y < src->height; y++) {
        const uint8_t *restrict s = src->data + (size_t)y * src->stride;
        size_t off = (size_t)y * row_stride;
        if (cn == 1) {
            for (int c = 0; c < nc; c++) {
                float *restrict d = dst + c * plane + off;
                const float k = pn->k[c], b = pn->b[c];
                for (int x = 0; x < w; x++) d[x] = pp_cvt(s[x], k, b);
            }
        } else if (cn == 3) {
            float *restrict d0 = e[0] + off, *restrict d1 = e[1] + off, *restrict d2 = e[2] + off;
            for (int x = 0; x < w; x++) {
                d0[x] = pp_cvt(s[3 * x], K[0], B[0]);
                d1[x] = pp_cvt(s[3 * x + 1], K[1], B[1]);
                d2[x] = pp_cvt(s[3 * x + 2], K[2], B[2]);
            }
        } else if (nc == 3) { /* RGBA, alpha dropped */
            float *restrict d0 = e[0] + off, *restrict d1 = e[1] + off, *restrict d2 = e[2] + off;
            for (int x = 0; x < w; x++) {
                d0[x] = pp_cvt(s[4 * x], K[0], B[0]);
                d1[x] = pp_cvt(s[4 * x + 1], K[1], B[1]);
                d2[x] = pp_cvt(s[4 * x + 2], K[2], B[2]);
            }
        } else {
            float *restrict d0 = e[0] + off, *restrict d1 = e[1] + off, *restrict d2 = e[2] + off;
            float *restrict d3 = e[3] + off;
            for (int x = 0; x < w; x++) {
                d0[x] = pp_cvt(s[4 * x], K[0], B[0]);
                d1[x] = pp_cvt(s[4 * x + 1], K[1], B[1]);
                d2[x] = pp_cvt(s[4 * x + 2], K[2], B[2]);
                d3[x] = pp_cvt(s[4 * x + 3], K[3], B[3]);
            }
        }
    }
}

static void pp_planes_generic(const kiln_image *src, const pp_norm *pn, int nc, float *dst, size_t plane,
                              size_t row_stride)
{
    pp_planes_body(src, pn, nc, dst, plane, row_stride);
}

#ifdef PP_X86
__attribute__((target("avx2"))) static void pp_planes_avx2(const kiln_image *src, const pp_norm *pn, int nc,
                                                             float *dst, size_t plane, size_t row_stride)
{
    pp_planes_body(src, pn, nc, dst, plane, row_stride);
}
#endif

static void pp_rows_to_planes(const kiln_image *src, const pp_norm *pn, int nc, float *dst, size_t plane,
                              size_t row_stride)
{
#ifdef PP_X86
    if (__builtin_cpu_supports("avx2")) {
        pp_planes_avx2(src, pn, nc, dst, plane, row_stride);
        return;
    }
#endif
    pp_planes_generic(src, pn, nc, dst, plane, row_stride);
}

static kiln_status pp_check_len(size_t need, size_t have, const char *what)
{
    if (have < need)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "%s: dst holds %zu floats, need %zu", what, have, need);
    return KILN_OK;
}

KILN_API kiln_status kiln_image_to_tensor(const kiln_image *src, const kiln_normalize *norm, float *dst,
                                          size_t dst_len)
{
    kiln_status st = image_check(src, "kiln_image_to_tensor");
    if (st) return st;
    if (!dst) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_image_to_tensor: dst is NULL");
    size_t plane = (size_t)src->width * src->height;
    if ((st = pp_check_len(plane * src->channels, dst_len, "kiln_image_to_tensor"))) return st;
    pp_norm pn;
    if ((st = pp_norm_prepare(norm, src->channels, src->channels, &pn))) return st;
    if (src->channels == 1) pn.src_ch[0] = 0;
    pp_rows_to_planes(src, &pn, src->channels, dst, plane, (size_t)src->width);
    return KILN_OK;
}

/* ---- letterbox --------------------------------------------------------------------- */

KILN_API kiln_letterbox_options kiln_letterbox_default(int width, int height)
{
    kiln_letterbox_options o;
    memset(&o, 0, sizeof o);
    o.width = width;
    o.height = height;
    o.stride = 32;
    o.auto_pad = 0;
    o.scale_fill = 0;
    o.scale_up = 1;
    o.pad_value = 114;
    o.mode = KILN_RESIZE_BILINEAR;
    return o;
}

typedef struct lb_geom {
    int uw, uh;     /* resized (unpadded) content size */
    int left, top;  /* padding before the content */
    int ow, oh;     /* output size */
    double rx, ry;
} lb_geom;

/* YOLOv5 utils/augmentations.py letterbox(), in double with Python's round-half-even. */
static kiln_status lb_geometry(const kiln_image *src, const kiln_letterbox_options *opt, lb_geom *g)
{
    if (!opt) return core_error(KILN_ERR_INVALID_ARGUMENT, "letterbox: options are NULL");
    if (opt->width <= 0 || opt->height <= 0 || opt->width > 32768 || opt->height > 32768)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "letterbox: target size %dx%d is out of range", opt->width,
                          opt->height);
    if (opt->auto_pad && opt->stride <= 0)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "letterbox: stride %d must be positive with auto_pad",
                          opt->stride);
    if (opt->mode != KILN_RESIZE_NEAREST && opt->mode != KILN_RESIZE_BILINEAR && opt->mode != KILN_RESIZE_AREA)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "letterbox: unknown resize mode %d", (int)opt->mode);
    int w = src->width, h = src->height;
    double r = fmin((double)opt->height / h, (double)opt->width / w);
    if (!opt->scale_up) r = fmin(r, 1.0);
    g->rx = g->ry = r;
    /* A sliver image may round to 0 pixels; keep one (YOLOv5 would fail in cv2.resize). */
    int uw = (int)nearbyint(w * r), uh = (int)nearbyint(h * r);
    if (uw < 1) uw = 1;
    if (uh < 1) uh = 1;
    int dw = opt->width - uw, dh = opt->height - uh;
    if (dw < 0) dw = 0;
    if (dh < 0) dh = 0;
    if (opt->auto_pad) {
        dw %= opt->stride;
        dh %= opt->stride;
    } else if (opt->scale_fill) {
        dw = dh = 0;
        uw = opt->width;
        uh = opt->height;
        g->rx = (double)opt->width / w;
        g->ry = (double)opt->height / h;
    }
    double hw = dw / 2.0, hh = dh / 2.0;
    int left = (int)nearbyint(hw - 0.1), right = (int)nearbyint(hw + 0.1);
    int top = (int)nearbyint(hh - 0.1), bottom = (int)nearbyint(hh + 0.1);
    g->uw = uw, g->uh = uh;
    g->left = left, g->top = top;
    g->ow = uw + left + right;
    g->oh = uh + top + bottom;
    return KILN_OK;
}

static void lb_fill_info(const lb_geom *g, kiln_letterbox_info *info)
{
    if (!info) return;
    info->ratio_x = (float)g->rx;
    info->ratio_y = (float)g->ry;
    info->pad_x = (float)g->left;
    info->pad_y = (float)g->top;
    info->out_width = g->ow;
    info->out_height = g->oh;
}

KILN_API kiln_status kiln_letterbox(const kiln_image *src, const kiln_letterbox_options *opt, kiln_image *out,
                                    kiln_letterbox_info *info)
{
    if (!out) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_letterbox: out is NULL");
    memset(out, 0, sizeof *out);
    kiln_status st = image_check(src, "kiln_letterbox");
    if (st) return st;
    lb_geom g;
    if ((st = lb_geometry(src, opt, &g))) return st;
    kiln_image tmp = {0};
    const kiln_image *content = src;
    if (g.uw != src->width || g.uh != src->height) {
        if ((st = kiln_image_resize(src, g.uw, g.uh, opt->mode, &tmp))) return st;
        content = &tmp;
    }
    if ((st = kiln_image_create(g.ow, g.oh, src->channels, out))) {
        kiln_image_free(&tmp);
        return st;
    }
    memset(out->data, opt->pad_value, (size_t)out->stride * out->height);
    size_t row = (size_t)g.uw * src->channels;
    for (int y = 0; y < g.uh; y++)
        memcpy(out->data + (size_t)(y + g.top) * out->stride + (size_t)g.left * src->channels,
               content->data + (size_t)y * content->stride, row);
    kiln_image_free(&tmp);
    lb_fill_info(&g, info);
    return KILN_OK;
}

/* Everything the fused kernel needs; tables are per output column / row of the content. */
typedef struct lb_job {
    const kiln_image *src;
    const lb_geom *g;
    pp_norm pn;
    float pad[3];   /* normalised pad value per output channel */
    int *xo0, *xo1; /* source element offsets (x * channels) of the two taps */
    int32_t *xw0, *xw1;
    int *yi0, *yi1;
    int32_t *yw0, *yw1;
    int32_t *v; /* one vertically blended source row */
    float *dst;
} lb_job;

/* Same tap computation as resize.c (OpenCV INTER_LINEAR, border replicate). */
static void pp_linear_tab(int src, int dst, int mul, int *i0, int *i1, int32_t *w0, int32_t *w1)
{
    double scale = 1.0 / ((double)dst / (double)src);
    for (int d = 0; d < dst; d++) {
        float f = (float)((d + 0.5) * scale - 0.5);
        int s = (int)floorf(f);
        f -= (float)s;
        if (s < 0) f = 0.f, s = 0;
        if (s >= src - 1) f = 0.f, s = src - 1;
        i0[d] = s * mul;
        i1[d] = (s + 1 < src ? s + 1 : src - 1) * mul;
        w0[d] = (int16_t)lrintf((1.f - f) * PP_ONE);
        w1[d] = (int16_t)lrintf(f * PP_ONE);
    }
}

/* The fused kernel body, inlined into a baseline and an AVX2 clone (chosen at run time):
 * per content row, blend the two source rows vertically (contiguous, vectorises), then
 * gather horizontally per output channel straight into the float planes. */
static inline __attribute__((always_inline)) void lb_rows_body(const lb_job *j)
{
    const kiln_image *src = j->src;
    const lb_geom *g = j->g;
    const int cn = src->channels, ow = g->ow, uw = g->uw, left = g->left;
    const size_t plane = (size_t)ow * g->oh;
    int32_t *restrict v = j->v;
    /* only the source columns some tap touches need the vertical blend */
    const size_t i_lo = (size_t)j->xo0[0], i_hi = (size_t)j->xo1[uw - 1] + (size_t)cn;
    for (int y = 0; y < g->oh; y++) {
        int ry = y - g->top;
        if (ry < 0 || ry >= g->uh) {
            for (int c = 0; c < 3; c++) {
                float *restrict d = j->dst + c * plane + (size_t)y * ow;
                const float p = j->pad[c];
                for (int x = 0; x < ow; x++) d[x] = p;
            }
            continue;
        }
        const uint8_t *restrict r0 = src->data + (size_t)j->yi0[ry] * src->stride;
        const uint8_t *restrict r1 = src->data + (size_t)j->yi1[ry] * src->stride;
        const int32_t b0 = j->yw0[ry], b1 = j->yw1[ry];
        for (size_t i = i_lo; i < i_hi; i++) v[i] = b0 * (int32_t)r0[i] + b1 * (int32_t)r1[i];
        for (int c = 0; c < 3; c++) {
            float *restrict d = j->dst + c * plane + (size_t)y * ow;
            const float p = j->pad[c], k = j->pn.k[c], b = j->pn.b[c];
            const int sc = j->pn.src_ch[c];
            for (int x = 0; x < left; x++) d[x] = p;
            float *restrict dc = d + left;
            const int *restrict xo0 = j->xo0, *restrict xo1 = j->xo1;
            const int32_t *restrict xw0 = j->xw0, *restrict xw1 = j->xw1;
            const int32_t *restrict vs = v + sc;
            for (int x = 0; x < uw; x++) {
                int32_t s = (xw0[x] * vs[xo0[x]] + xw1[x] * vs[xo1[x]] + PP_ROUND) >> (2 * PP_BITS);
                s = s > 255 ? 255 : s;
                dc[x] = (float)s * k + b;
            }
            for (int x = left + uw; x < ow; x++) d[x] = p;
        }
    }
}

static void lb_rows_generic(const lb_job *j) { lb_rows_body(j); }

#ifdef PP_X86
__attribute__((target("avx2"))) static void lb_rows_avx2(const lb_job *j) { lb_rows_body(j); }
#endif

static kiln_status lb_fused(const kiln_image *src, const lb_geom *g, const pp_norm *pn, uint8_t pad_value,
                            float *dst)
{
    lb_job j;
    memset(&j, 0, sizeof j);
    j.src = src;
    j.g = g;
    j.pn = *pn;
    j.dst = dst;
    for (int c = 0; c < 3; c++) j.pad[c] = pp_cvt(pad_value, pn->k[c], pn->b[c]);
    int uw = g->uw, uh = g->uh, cn = src->channels;
    kiln_status st = KILN_OK;
    j.xo0 = core_malloc(sizeof(int) * uw), j.xo1 = core_malloc(sizeof(int) * uw);
    j.xw0 = core_malloc(sizeof(int32_t) * uw), j.xw1 = core_malloc(sizeof(int32_t) * uw);
    j.yi0 = core_malloc(sizeof(int) * uh), j.yi1 = core_malloc(sizeof(int) * uh);
    j.yw0 = core_malloc(sizeof(int32_t) * uh), j.yw1 = core_malloc(sizeof(int32_t) * uh);
    j.v = core_malloc(sizeof(int32_t) * (size_t)src->width * cn);
    if (!j.xo0 || !j.xo1 || !j.xw0 || !j.xw1 || !j.yi0 || !j.yi1 || !j.yw0 || !j.yw1 || !j.v) {
        st = core_oom();
        goto done;
    }
    pp_linear_tab(src->width, uw, cn, j.xo0, j.xo1, j.xw0, j.xw1);
    pp_linear_tab(src->height, uh, 1, j.yi0, j.yi1, j.yw0, j.yw1);
#ifdef PP_X86
    if (__builtin_cpu_supports("avx2"))
        lb_rows_avx2(&j);
    else
#endif
        lb_rows_generic(&j);
done:
    free(j.xo0), free(j.xo1), free(j.xw0), free(j.xw1);
    free(j.yi0), free(j.yi1), free(j.yw0), free(j.yw1), free(j.v);
    return st;
}

/* 8-bit image (any channel count) -> 3 float planes with the channel mapping of pn. */
static void pp_image_to_planes3(const kiln_image *img, const pp_norm *pn, float *dst)
{
    pp_rows_to_planes(img, pn, 3, dst, (size_t)img->width * img->height, (size_t)img->width);
}

KILN_API kiln_status kiln_letterbox_to_tensor(const kiln_image *src, const kiln_letterbox_options *opt,
                                              const kiln_normalize *norm, float *dst, size_t dst_len,
                                              kiln_letterbox_info *info)
{
    kiln_status st = image_check(src, "kiln_letterbox_to_tensor");
    if (st) return st;
    lb_geom g;
    if ((st = lb_geometry(src, opt, &g))) return st;
    lb_fill_info(&g, info);
    if (!dst) return KILN_OK; /* size query */
    if ((st = pp_check_len((size_t)3 * g.ow * g.oh, dst_len, "kiln_letterbox_to_tensor"))) return st;
    pp_norm pn;
    if ((st = pp_norm_prepare(norm, src->channels, 3, &pn))) return st;
    /* Bilinear is fused; nearest/area go through the 8-bit letterbox. A same-size
     * "resize" is the identity under the bilinear tables, so it is fused too. */
    if (opt->mode == KILN_RESIZE_BILINEAR || (g.uw == src->width && g.uh == src->height))
        return lb_fused(src, &g, &pn, opt->pad_value, dst);
    kiln_image boxed;
    if ((st = kiln_letterbox(src, opt, &boxed, NULL))) return st;
    pp_image_to_planes3(&boxed, &pn, dst);
    kiln_image_free(&boxed);
    return KILN_OK;
}

/* ---- affine warp ------------------------------------------------------------------- */

/* Inverse of [a b c; d e f] in double; false when singular or not finite. */
static int pp_affine_invert(const float m[6], float inv[6])
{
    double a = m[0], b = m[1], c = m[2], d = m[3], e = m[4], f = m[5];
    double det = a * e - b * d;
    if (!isfinite(det) || fabs(det) < 1e-12) return 0;
    double r[6] = {e / det, -b / det, (b * f - c * e) / det, -d / det, a / det, (c * d - a * f) / det};
    for (int i = 0; i < 6; i++) {
        if (!isfinite(r[i])) return 0;
        inv[i] = (float)r[i];
    }
    return 1;
}

/* Matrices act on pixel indices whose centres sit at index + 0.5 in continuous
 * coordinates: the fit maps the source rectangle [0,sw]x[0,sh] scaled by s onto the centre
 * of the destination, i.e. dst_idx = s * src_idx + (dst_w - s * src_w) / 2 + 0.5 * s - 0.5. */
KILN_API kiln_affine kiln_affine_fit(int src_w, int src_h, int dst_w, int dst_h)
{
    kiln_affine a;
    memset(&a, 0, sizeof a);
    if (src_w <= 0 || src_h <= 0 || dst_w <= 0 || dst_h <= 0) {
        a.fwd[0] = a.fwd[4] = a.inv[0] = a.inv[4] = 1.0f; /* identity for nonsense sizes */
        return a;
    }
    double s = fmin((double)dst_w / src_w, (double)dst_h / src_h);
    double tx = -s * src_w * 0.5 + dst_w * 0.5 + s * 0.5 - 0.5;
    double ty = -s * src_h * 0.5 + dst_h * 0.5 + s * 0.5 - 0.5;
    a.fwd[0] = (float)s, a.fwd[2] = (float)tx;
    a.fwd[4] = (float)s, a.fwd[5] = (float)ty;
    a.inv[0] = (float)(1.0 / s), a.inv[2] = (float)(-tx / s);
    a.inv[4] = (float)(1.0 / s), a.inv[5] = (float)(-ty / s);
    return a;
}

KILN_API kiln_status kiln_affine_from_matrix(const float fwd[6], kiln_affine *out)
{
    if (!fwd || !out) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_affine_from_matrix: NULL argument");
    memset(out, 0, sizeof *out);
    float inv[6];
    if (!pp_affine_invert(fwd, inv))
        return core_error(KILN_ERR_INVALID_ARGUMENT,
                          "affine matrix [%g %g %g; %g %g %g] is singular or not finite", (double)fwd[0],
                          (double)fwd[1], (double)fwd[2], (double)fwd[3], (double)fwd[4], (double)fwd[5]);
    memcpy(out->fwd, fwd, sizeof out->fwd);
    memcpy(out->inv, inv, sizeof out->inv);
    return KILN_OK;
}

/* One destination row of the warp, interleaved with src's channel count. Source pixels
 * outside the image read as `border`, so edges blend into it (BORDER_CONSTANT). The sample
 * position is rounded to 1/2048 pixel, which gives the 11-bit weights directly without
 * floor()/lrint() calls per pixel. */
static inline __attribute__((always_inline)) void warp_row_cn(const kiln_image *src, const float inv[6], int y,
                                                              int dst_w, uint8_t border, uint8_t *out, const int cn)
{
    const int sw = src->width, sh = src->height;
    const size_t stride = (size_t)src->stride;
    const double ax = inv[0], ay = inv[3];
    const double bx = (double)inv[1] * y + inv[2], by = (double)inv[4] * y + inv[5];
    for (int x = 0; x < dst_w; x++, out += cn) {
        double sx = ax * x + bx, sy = ay * x + by;
        if (!(sx > -1.0 && sx < sw && sy > -1.0 && sy < sh)) { /* also catches NaN */
            for (int c = 0; c < cn; c++) out[c] = border;
            continue;
        }
        /* +1 keeps the value positive so truncation is floor */
        int tx = (int)((sx + 1.0) * PP_ONE + 0.5), ty = (int)((sy + 1.0) * PP_ONE + 0.5);
        int x0 = (tx >> PP_BITS) - 1, y0 = (ty >> PP_BITS) - 1;
        int32_t wx1 = tx & (PP_ONE - 1), wx0 = PP_ONE - wx1;
        int32_t wy1 = ty & (PP_ONE - 1), wy0 = PP_ONE - wy1;
        if (x0 >= 0 && x0 + 1 < sw && y0 >= 0 && y0 + 1 < sh) {
            const uint8_t *p0 = src->data + (size_t)y0 * stride + (size_t)x0 * cn, *p1 = p0 + stride;
            for (int c = 0; c < cn; c++) {
                int32_t s = (wy0 * (wx0 * p0[c] + wx1 * p0[c + cn]) + wy1 * (wx0 * p1[c] + wx1 * p1[c + cn]) +
                             PP_ROUND) >> (2 * PP_BITS);
                out[c] = (uint8_t)s;
            }
            continue;
        }
        int in_x0 = x0 >= 0 && x0 < sw, in_x1 = x0 + 1 >= 0 && x0 + 1 < sw;
        int in_y0 = y0 >= 0 && y0 < sh, in_y1 = y0 + 1 >= 0 && y0 + 1 < sh;
        const uint8_t *r0 = src->data + (size_t)(in_y0 ? y0 : 0) * stride;
        const uint8_t *r1 = src->data + (size_t)(in_y1 ? y0 + 1 : 0) * stride;
        size_t c0 = (size_t)(in_x0 ? x0 : 0) * cn, c1 = (size_t)(in_x1 ? x0 + 1 : 0) * cn;
        for (int c = 0; c < cn; c++) {
            int32_t p00 = in_y0 && in_x0 ? r0[c0 + c] : border, p01 = in_y0 && in_x1 ? r0[c1 + c] : border;
            int32_t p10 = in_y1 && in_x0 ? r1[c0 + c] : border, p11 = in_y1 && in_x1 ? r1[c1 + c] : border;
            int32_t s = (wy0 * (wx0 * p00 + wx1 * p01) + wy1 * (wx0 * p10 + wx1 * p11) + PP_ROUND) >> (2 * PP_BITS);
            out[c] = (uint8_t)s;
        }
    }
}

static void warp_row(const kiln_image *src, const float inv[6], int y, int dst_w, uint8_t border, uint8_t *out)
{
    switch (src->channels) { /* constant channel counts let the channel loops unroll */
    case 1: warp_row_cn(src, inv, y, dst_w, border, out, 1); break;
    case 3: warp_row_cn(src, inv, y, dst_w, border, out, 3); break;
    default: warp_row_cn(src, inv, y, dst_w, border, out, 4); break;
    }
}

/* Axis-aligned warps (the affine letterbox: no rotation or shear) are separable: blend the
 * two source rows vertically over a border-padded row, then gather horizontally with
 * per-column tables, as the fused letterbox does. Results are bit-identical to warp_row:
 * the same 11-bit weights and the same exact integer sum, in the other order. */
typedef struct warp_plan {
    const kiln_image *src;
    const float *inv;
    uint8_t border;
    int dst_w, separable;
    int *xp;             /* element offset of the left tap in the padded row */
    int32_t *xw0, *xw1;
    int32_t *v;          /* (src_w + 3) * channels: border column, pixels, 2 border columns */
    uint8_t *brow;       /* a source row of border pixels */
} warp_plan;

static void warp_plan_free(warp_plan *p) { free(p->xp), free(p->xw0), free(p->xw1), free(p->v), free(p->brow); }

static kiln_status warp_plan_init(warp_plan *p, const kiln_image *src, const float inv[6], int dst_w, uint8_t border)
{
    memset(p, 0, sizeof *p);
    p->src = src, p->inv = inv, p->border = border, p->dst_w = dst_w;
    p->separable = inv[1] == 0.0f && inv[3] == 0.0f;
    if (!p->separable) return KILN_OK;
    const int cn = src->channels, sw = src->width;
    p->xp = core_malloc(sizeof(int) * dst_w);
    p->xw0 = core_malloc(sizeof(int32_t) * dst_w), p->xw1 = core_malloc(sizeof(int32_t) * dst_w);
    p->v = core_malloc(sizeof(int32_t) * (size_t)(sw + 3) * cn);
    p->brow = core_malloc((size_t)sw * cn);
    if (!p->xp || !p->xw0 || !p->xw1 || !p->v || !p->brow) {
        warp_plan_free(p);
        return core_oom();
    }
    memset(p->brow, border, (size_t)sw * cn);
    const double ax = inv[0], bx = inv[2]; /* as warp_row with inv[1] = 0 */
    for (int x = 0; x < dst_w; x++) {
        double sx = ax * x + bx;
        if (!(sx > -1.0 && sx < sw)) { /* all border: weight 1 on the left border column */
            p->xp[x] = 0, p->xw0[x] = PP_ONE, p->xw1[x] = 0;
            continue;
        }
        int tx = (int)((sx + 1.0) * PP_ONE + 0.5);
        p->xp[x] = (tx >> PP_BITS) * cn; /* (x0 + 1) * cn: x0 = -1 is the border column */
        p->xw1[x] = tx & (PP_ONE - 1);
        p->xw0[x] = PP_ONE - p->xw1[x];
    }
    return KILN_OK;
}

static inline __attribute__((always_inline)) void warp_sep_row_cn(const warp_plan *p, int y, uint8_t *out, const int cn)
{
    const kiln_image *src = p->src;
    const int sw = src->width, sh = src->height, dst_w = p->dst_w;
    const double sy = (double)p->inv[4] * y + p->inv[5];
    if (!(sy > -1.0 && sy < sh)) {
        memset(out, p->border, (size_t)dst_w * cn);
        return;
    }
    int ty = (int)((sy + 1.0) * PP_ONE + 0.5);
    int y0 = (ty >> PP_BITS) - 1;
    const int32_t wy1 = ty & (PP_ONE - 1), wy0 = PP_ONE - wy1;
    const uint8_t *restrict r0 = y0 >= 0 && y0 < sh ? src->data + (size_t)y0 * src->stride : p->brow;
    const uint8_t *restrict r1 = y0 + 1 < sh ? src->data + (size_t)(y0 + 1) * src->stride : p->brow;
    int32_t *restrict v = p->v;
    const int32_t bv = PP_ONE * p->border;
    for (int c = 0; c < cn; c++) v[c] = bv;
    for (int i = 0; i < sw * cn; i++) v[cn + i] = wy0 * r0[i] + wy1 * r1[i];
    for (int c = 0; c < 2 * cn; c++) v[(sw + 1) * cn + c] = bv;
    const int *restrict xp = p->xp;
    const int32_t *restrict xw0 = p->xw0, *restrict xw1 = p->xw1;
    for (int x = 0; x < dst_w; x++) {
        const int32_t *q = v + xp[x];
        for (int c = 0; c < cn; c++)
            out[x * cn + c] = (uint8_t)((xw0[x] * q[c] + xw1[x] * q[cn + c] + PP_ROUND) >> (2 * PP_BITS));
    }
}

static void warp_plan_row(const warp_plan *p, int y, uint8_t *out)
{
    if (!p->separable) {
        warp_row(p->src, p->inv, y, p->dst_w, p->border, out);
        return;
    }
    switch (p->src->channels) {
    case 1: warp_sep_row_cn(p, y, out, 1); break;
    case 3: warp_sep_row_cn(p, y, out, 3); break;
    default: warp_sep_row_cn(p, y, out, 4); break;
    }
}

static kiln_status warp_check(const kiln_image *src, const kiln_affine *a, int dst_w, int dst_h, const char *what)
{
    kiln_status st = image_check(src, what);
    if (st) return st;
    if (!a) return core_error(KILN_ERR_INVALID_ARGUMENT, "%s: affine is NULL", what);
    if (dst_w <= 0 || dst_h <= 0 || dst_w > 32768 || dst_h > 32768)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "%s: destination size %dx%d is out of range", what, dst_w, dst_h);
    for (int i = 0; i < 6; i++)
        if (!isfinite(a->inv[i])) return core_error(KILN_ERR_INVALID_ARGUMENT, "%s: inverse matrix is not finite", what);
    /* the sub-pixel position is kept in int: (side + 1) * 2048 must fit */
    if (src->width > (1 << 20) || src->height > (1 << 20))
        return core_error(KILN_ERR_UNSUPPORTED, "%s: source %dx%d is larger than 1048576 px per side", what,
                          src->width, src->height);
    return KILN_OK;
}

KILN_API kiln_status kiln_warp_affine(const kiln_image *src, const kiln_affine *a, int dst_w, int dst_h,
                                      uint8_t border, kiln_image *out)
{
    if (!out) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_warp_affine: out is NULL");
    memset(out, 0, sizeof *out);
    kiln_status st = warp_check(src, a, dst_w, dst_h, "kiln_warp_affine");
    if (st) return st;
    warp_plan p;
    if ((st = warp_plan_init(&p, src, a->inv, dst_w, border))) return st;
    if ((st = kiln_image_create(dst_w, dst_h, src->channels, out))) {
        warp_plan_free(&p);
        return st;
    }
    for (int y = 0; y < dst_h; y++) warp_plan_row(&p, y, out->data + (size_t)y * out->stride);
    warp_plan_free(&p);
    return KILN_OK;
}

KILN_API kiln_status kiln_warp_affine_to_tensor(const kiln_image *src, const kiln_affine *a, int dst_w, int dst_h,
                                                uint8_t border, const kiln_normalize *norm, float *dst,
                                                size_t dst_len)
{
    kiln_status st = warp_check(src, a, dst_w, dst_h, "kiln_warp_affine_to_tensor");
    if (st) return st;
    if (!dst) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_warp_affine_to_tensor: dst is NULL");
    size_t plane = (size_t)dst_w * dst_h;
    if ((st = pp_check_len(3 * plane, dst_len, "kiln_warp_affine_to_tensor"))) return st;
    pp_norm pn;
    if ((st = pp_norm_prepare(norm, src->channels, 3, &pn))) return st;
    /* one interleaved row at a time, converted while it is still in L1 */
    warp_plan p;
    if ((st = warp_plan_init(&p, src, a->inv, dst_w, border))) return st;
    uint8_t *row = core_malloc((size_t)dst_w * src->channels);
    if (!row) {
        warp_plan_free(&p);
        return core_oom();
    }
    kiln_image rimg = kiln_image_wrap(row, dst_w, 1, src->channels, 0);
    for (int y = 0; y < dst_h; y++) {
        warp_plan_row(&p, y, row);
        pp_rows_to_planes(&rimg, &pn, 3, dst + (size_t)y * dst_w, plane, (size_t)dst_w);
    }
    free(row);
    warp_plan_free(&p);
    return KILN_OK;
}
