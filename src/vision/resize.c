/* resize.c — 8-bit image resizing (nearest, bilinear, area) with OpenCV's sampling
 * conventions, centre crop and R/B swap. */
#include "core/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Bilinear weights are 11-bit fixed point (OpenCV's INTER_RESIZE_COEF_BITS): a 2-D sample
 * is sum(wx * wy * p) >> 22 with rounding, computed exactly in int32. preprocess.c repeats
 * this arithmetic for its fused letterbox and must stay bit-identical to it. */
#define RS_BITS 11
#define RS_ONE (1 << RS_BITS)

static kiln_status image_check(const kiln_image *img, const char *what)
{
    if (!img || !img->data || img->width <= 0 || img->height <= 0 ||
        (img->channels != 1 && img->channels != 3 && img->channels != 4) || img->stride < img->width * img->channels)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "%s: invalid source image (%dx%d, %d channels, stride %d)", what,
                          img ? img->width : 0, img ? img->height : 0, img ? img->channels : 0,
                          img ? img->stride : 0);
    return KILN_OK;
}

/* OpenCV derives the source step as 1 / (dst / src); doing the same keeps floor() decisions
 * at exact integer positions identical to it. */
static double rs_scale(int src, int dst) { return 1.0 / ((double)dst / (double)src); }

/* Half-pixel bilinear taps along one axis, clamped at the edges (border replicate). */
static void rs_linear_tab(int src, int dst, int *i0, int *i1, int16_t *w0, int16_t *w1)
{
    double scale = rs_scale(src, dst);
    for (int d = 0; d < dst; d++) {
        float f = (float)((d + 0.5) * scale - 0.5);
        int s = (int)floorf(f);
        f -= (float)s;
        if (s < 0) f = 0.f, s = 0;
        if (s >= src - 1) f = 0.f, s = src - 1;
        i0[d] = s;
        i1[d] = s + 1 < src ? s + 1 : src - 1;
        w0[d] = (int16_t)lrintf((1.f - f) * RS_ONE);
        w1[d] = (int16_t)lrintf(f * RS_ONE);
    }
}

/* Horizontal half of the bilinear sample; cn is a constant after inlining. */
static inline __attribute__((always_inline)) void rs_hrow(const int32_t *restrict v, const int *restrict x0,
                                                          const int *restrict x1, const int16_t *restrict w0,
                                                          const int16_t *restrict w1, int dw, int cn,
                                                          uint8_t *restrict out)
{
    for (int x = 0; x < dw; x++) {
        const int32_t *p0 = v + (size_t)x0[x] * cn, *p1 = v + (size_t)x1[x] * cn;
        int32_t a0 = w0[x], a1 = w1[x];
        for (int c = 0; c < cn; c++) {
            int32_t s = (a0 * p0[c] + a1 * p1[c] + (1 << (2 * RS_BITS - 1))) >> (2 * RS_BITS);
            out[x * cn + c] = (uint8_t)(s > 255 ? 255 : s);
        }
    }
}

static kiln_status resize_bilinear(const kiln_image *src, kiln_image *dst)
{
    int sw = src->width, sh = src->height, dw = dst->width, dh = dst->height, cn = src->channels;
    size_t row = (size_t)sw * cn;
    int *xi = core_malloc(sizeof(int) * 2 * dw), *yi = core_malloc(sizeof(int) * 2 * dh);
    int16_t *xw = core_malloc(sizeof(int16_t) * 2 * dw), *yw = core_malloc(sizeof(int16_t) * 2 * dh);
    int32_t *v = core_malloc(sizeof(int32_t) * row);
    kiln_status st = KILN_OK;
    if (!xi || !yi || !xw || !yw || !v) {
        st = core_oom();
        goto done;
    }
    rs_linear_tab(sw, dw, xi, xi + dw, xw, xw + dw);
    rs_linear_tab(sh, dh, yi, yi + dh, yw, yw + dh);
    for (int y = 0; y < dh; y++) {
        /* vertical first over the whole source row: this is the part that vectorises */
        const uint8_t *restrict r0 = src->data + (size_t)yi[y] * src->stride;
        const uint8_t *restrict r1 = src->data + (size_t)yi[dh + y] * src->stride;
        const int16_t b0 = yw[y], b1 = yw[dh + y];
        int32_t *restrict vv = v;
        for (size_t i = 0; i < row; i++) vv[i] = b0 * (int16_t)r0[i] + b1 * (int16_t)r1[i];
        uint8_t *out = dst->data + (size_t)y * dst->stride;
        switch (cn) {
        case 1: rs_hrow(v, xi, xi + dw, xw, xw + dw, dw, 1, out); break;
        case 3: rs_hrow(v, xi, xi + dw, xw, xw + dw, dw, 3, out); break;
        default: rs_hrow(v, xi, xi + dw, xw, xw + dw, dw, 4, out); break;
        }
    }
done:
    free(xi), free(yi), free(xw), free(yw), free(v);
    return st;
}

static kiln_status resize_nearest(const kiln_image *src, kiln_image *dst)
{
    int sw = src->width, sh = src->height, dw = dst->width, dh = dst->height, cn = src->channels;
    int *xo = core_malloc(sizeof(int) * dw);
    if (!xo) return core_oom();
    double sx = rs_scale(sw, dw), sy = rs_scale(sh, dh);
    /* OpenCV INTER_NEAREST: src = floor(dst * scale), no half-pixel shift */
    for (int x = 0; x < dw; x++) {
        int s = (int)floor(x * sx);
        xo[x] = (s < sw ? s : sw - 1) * cn;
    }
    for (int y = 0; y < dh; y++) {
        int s = (int)floor(y * sy);
        const uint8_t *r = src->data + (size_t)(s < sh ? s : sh - 1) * src->stride;
        uint8_t *out = dst->data + (size_t)y * dst->stride;
        if (cn == 3)
            for (int x = 0; x < dw; x++) memcpy(out + 3 * x, r + xo[x], 3);
        else
            for (int x = 0; x < dw; x++)
                for (int c = 0; c < cn; c++) out[x * cn + c] = r[xo[x] + c];
    }
    free(xo);
    return KILN_OK;
}

/* Contiguous taps of one output coordinate: source indices start..start+count-1. */
typedef struct rs_taps {
    int *start, *count;
    float *w; /* dst x maxn */
    int maxn;
} rs_taps;

/* Area taps (OpenCV INTER_AREA) where the axis shrinks, bilinear taps where it grows. */
static kiln_status rs_taps_build(int src, int dst, rs_taps *t)
{
    double scale = rs_scale(src, dst);
    t->maxn = src > dst ? (int)ceil(scale) + 2 : 2;
    t->start = core_malloc(sizeof(int) * dst);
    t->count = core_malloc(sizeof(int) * dst);
    t->w = core_calloc((size_t)dst * t->maxn, sizeof(float));
    if (!t->start || !t->count || !t->w) return core_oom();
    if (src <= dst) {
        for (int d = 0; d < dst; d++) {
            float f = (float)((d + 0.5) * scale - 0.5);
            int s = (int)floorf(f);
            f -= (float)s;
            if (s < 0) f = 0.f, s = 0;
            if (s >= src - 1) f = 0.f, s = src - 1;
            t->start[d] = s;
            t->count[d] = s + 1 < src ? 2 : 1;
            t->w[d * t->maxn] = 1.f - f;
            t->w[d * t->maxn + 1] = f;
        }
        return KILN_OK;
    }
    for (int d = 0; d < dst; d++) {
        double f1 = d * scale, f2 = f1 + scale, cell = fmin(scale, src - f1);
        int s1 = (int)ceil(f1), s2 = (int)floor(f2);
        if (s2 > src - 1) s2 = src - 1;
        if (s1 > s2) s1 = s2;
        int n = 0;
        float *w = t->w + (size_t)d * t->maxn;
        t->start[d] = s1;
        if (s1 - f1 > 1e-3) {
            t->start[d] = s1 - 1;
            w[n++] = (float)((s1 - f1) / cell);
        }
        for (int s = s1; s < s2 && n < t->maxn; s++) w[n++] = (float)(1.0 / cell);
        if (f2 - s2 > 1e-3 && n < t->maxn) w[n++] = (float)(fmin(fmin(f2 - s2, 1.0), cell) / cell);
        if (n == 0) w[n++] = 1.f;
        t->count[d] = n;
    }
    return KILN_OK;
}

static void rs_taps_free(rs_taps *t) { free(t->start), free(t->count), free(t->w); }

static kiln_status resize_area(const kiln_image *src, kiln_image *dst)
{
    int sw = src->width, dw = dst->width, dh = dst->height, cn = src->channels;
    size_t row = (size_t)sw * cn;
    rs_taps tx = {0}, ty = {0};
    float *acc = core_malloc(sizeof(float) * row);
    kiln_status st = acc ? KILN_OK : core_oom();
    if (!st) st = rs_taps_build(sw, dw, &tx);
    if (!st) st = rs_taps_build(src->height, dh, &ty);
    for (int y = 0; !st && y < dh; y++) {
        for (size_t i = 0; i < row; i++) acc[i] = 0.f;
        for (int k = 0; k < ty.count[y]; k++) {
            const uint8_t *r = src->data + (size_t)(ty.start[y] + k) * src->stride;
            float wy = ty.w[(size_t)y * ty.maxn + k];
            for (size_t i = 0; i < row; i++) acc[i] += wy * r[i];
        }
        uint8_t *out = dst->data + (size_t)y * dst->stride;
        for (int x = 0; x < dw; x++) {
            const float *w = tx.w + (size_t)x * tx.maxn;
            const float *a = acc + (size_t)tx.start[x] * cn;
            for (int c = 0; c < cn; c++) {
                float s = 0.f;
                for (int k = 0; k < tx.count[x]; k++) s += w[k] * a[k * cn + c];
                int q = (int)(s + 0.5f); /* s >= 0: weights are positive */
                out[x * cn + c] = (uint8_t)(q > 255 ? 255 : q);
            }
        }
    }
    rs_taps_free(&tx), rs_taps_free(&ty), free(acc);
    return st;
}

KILN_API kiln_status kiln_image_resize(const kiln_image *src, int width, int height, kiln_resize_mode mode,
                                       kiln_image *out)
{
    if (!out) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_image_resize: out is NULL");
    memset(out, 0, sizeof *out);
    kiln_status st = image_check(src, "kiln_image_resize");
    if (st) return st;
    if (width <= 0 || height <= 0)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_image_resize: target size %dx%d is empty", width, height);
    if (mode != KILN_RESIZE_NEAREST && mode != KILN_RESIZE_BILINEAR && mode != KILN_RESIZE_AREA)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_image_resize: unknown mode %d", (int)mode);
    if ((st = kiln_image_create(width, height, src->channels, out))) return st;
    /* Area averaging only differs from bilinear where an axis shrinks. */
    if (mode == KILN_RESIZE_AREA && width >= src->width && height >= src->height) mode = KILN_RESIZE_BILINEAR;
    if (mode == KILN_RESIZE_NEAREST)
        st = resize_nearest(src, out);
    else if (mode == KILN_RESIZE_BILINEAR)
        st = resize_bilinear(src, out);
    else
        st = resize_area(src, out);
    if (st) kiln_image_free(out);
    return st;
}

KILN_API kiln_status kiln_image_center_crop(const kiln_image *src, int width, int height, kiln_image *out)
{
    if (!out) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_image_center_crop: out is NULL");
    memset(out, 0, sizeof *out);
    kiln_status st = image_check(src, "kiln_image_center_crop");
    if (st) return st;
    if (width <= 0 || height <= 0)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_image_center_crop: size %dx%d is empty", width, height);
    if ((st = kiln_image_create(width, height, src->channels, out))) return st;
    /* torchvision CenterCrop: offset round((src - crop) / 2) (half to even); a crop larger
     * than the image pads (crop - src) // 2 on the left/top with zeros. */
    int cn = src->channels;
    int x0 = src->width >= width ? (int)nearbyint((src->width - width) / 2.0) : -((width - src->width) / 2);
    int y0 = src->height >= height ? (int)nearbyint((src->height - height) / 2.0) : -((height - src->height) / 2);
    int xa = x0 < 0 ? -x0 : 0;                                      /* first dst column with data */
    int xb = src->width - x0 < width ? src->width - x0 : width;     /* one past the last */
    for (int y = 0; y < height; y++) {
        int sy = y + y0;
        if (sy < 0 || sy >= src->height || xb <= xa) continue;
        memcpy(out->data + (size_t)y * out->stride + (size_t)xa * cn,
               src->data + (size_t)sy * src->stride + (size_t)(xa + x0) * cn, (size_t)(xb - xa) * cn);
    }
    return KILN_OK;
}

KILN_API void kiln_image_swap_rb(kiln_image *img)
{
    if (!img || !img->data || img->channels < 3 || img->width <= 0 || img->height <= 0) return;
    int cn = img->channels;
    for (int y = 0; y < img->height; y++) {
        uint8_t *p = img->data + (size_t)y * img->stride;
        for (int x = 0; x < img->width; x++, p += cn) {
            uint8_t t = p[0];
            p[0] = p[2];
            p[2] = t;
        }
    }
}
