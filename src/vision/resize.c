/* resize.c — 8-bit image resizing (nearest, bilinear, area) with OpenCV's sampling
 * conventions, centre crop and R/B swap. */
#include "core/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define RS_X86 1
#include <immintrin.h>
#endif

/* Bilinear weights are 11-bit fixed point (OpenCV's INTER_RESIZE_COEF_BITS): exact int
 * horizontal sums, then OpenCV's vertical rounding (rs_vblend). preprocess.c repeats this
 * arithmetic for its fused letterbox and must stay bit-identical to it. */
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

/* Half-pixel bilinear taps along one axis, border replicate. OpenCV clamps differently
 * per axis and we copy it: along x an outside position snaps to the edge pixel with weight
 * (1, 0); along y (axis_y) only the row indices are clamped and the weights stay, so the
 * edge row is blended with itself (it rounds slightly differently). */
static void rs_linear_tab(int src, int dst, int axis_y, int *i0, int *i1, int16_t *w0, int16_t *w1)
{
    double scale = rs_scale(src, dst);
    for (int d = 0; d < dst; d++) {
        float f = (float)((d + 0.5) * scale - 0.5);
        int s = (int)floorf(f);
        f -= (float)s;
        if (axis_y) {
            i0[d] = s < 0 ? 0 : s > src - 1 ? src - 1 : s;
            i1[d] = s + 1 < 0 ? 0 : s + 1 > src - 1 ? src - 1 : s + 1;
        } else {
            if (s < 0) f = 0.f, s = 0;
            if (s >= src - 1) f = 0.f, s = src - 1;
            i0[d] = s;
            i1[d] = s + 1 < src ? s + 1 : src - 1;
        }
        w0[d] = (int16_t)lrintf((1.f - f) * RS_ONE);
        w1[d] = (int16_t)lrintf(f * RS_ONE);
    }
}

/* Vertical blend of two horizontal sums with OpenCV's SIMD rounding (sums >> 4 as int16,
 * mulhi by the weight, (x + 2) >> 2): bit-identical to cv2.resize INTER_LINEAR and to
 * preprocess.c's pp_vblend. */
static inline int32_t rs_vblend(int32_t h0, int32_t h1, int32_t b0, int32_t b1)
{
    int32_t v = ((((h0 >> 4) * b0) >> 16) + (((h1 >> 4) * b1) >> 16) + 2) >> 2;
    return v > 255 ? 255 : v;
}

/* Horizontal pass of one source row (exact int sums); cn is a constant after inlining. */
static inline __attribute__((always_inline)) void rs_hrow(const uint8_t *restrict r, const int *restrict x0,
                                                          const int *restrict x1, const int16_t *restrict w0,
                                                          const int16_t *restrict w1, int dw, int cn,
                                                          int32_t *restrict h)
{
    for (int x = 0; x < dw; x++) {
        const uint8_t *p0 = r + (size_t)x0[x] * cn, *p1 = r + (size_t)x1[x] * cn;
        int32_t a0 = w0[x], a1 = w1[x];
        for (int c = 0; c < cn; c++) h[x * cn + c] = p0[c] * a0 + p1[c] * a1;
    }
}

#ifdef RS_X86
/* 3/4-channel horizontal pass, one column per step: an 8-byte load holds both taps (the
 * right tap is the next pixel or has weight 0), pshufb pairs them per channel as int16 and
 * pmaddwd applies [w0 w1]. For 3 channels each 16-byte store spills one int into the next
 * column, which that column then overwrites (h has one spare int at the end). Columns
 * [0, nvec) are safe for the 8-byte loads. */
__attribute__((target("ssse3"))) static void rs_hrow_simd(const uint8_t *r, const int *x0, const int32_t *wpair,
                                                            int nvec, int cn, int32_t *h)
{
    const __m128i shuf = cn == 3 ? _mm_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1)
                                 : _mm_setr_epi8(0, -1, 4, -1, 1, -1, 5, -1, 2, -1, 6, -1, 3, -1, 7, -1);
    for (int x = 0; x < nvec; x++) {
        __m128i v = _mm_loadl_epi64((const __m128i *)(const void *)(r + (size_t)x0[x] * cn));
        __m128i m = _mm_madd_epi16(_mm_shuffle_epi8(v, shuf), _mm_set1_epi32(wpair[x]));
        _mm_storeu_si128((__m128i *)(void *)(h + (size_t)x * cn), m);
    }
}

/* rs_vblend over a row, 8 at a time, packed to bytes; returns how many it did. */
__attribute__((target("avx2"))) static size_t rs_vrow_simd(uint8_t *out, const int32_t *h0, const int32_t *h1,
                                                             size_t n, int32_t b0, int32_t b1)
{
    const __m256i vb0 = _mm256_set1_epi32(b0), vb1 = _mm256_set1_epi32(b1), two = _mm256_set1_epi32(2);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i a = _mm256_srai_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(h0 + i)), 4);
        __m256i c = _mm256_srai_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(h1 + i)), 4);
        a = _mm256_srai_epi32(_mm256_mullo_epi32(a, vb0), 16);
        c = _mm256_srai_epi32(_mm256_mullo_epi32(c, vb1), 16);
        __m256i v = _mm256_srai_epi32(_mm256_add_epi32(_mm256_add_epi32(a, c), two), 2);
        __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        _mm_storel_epi64((__m128i *)(void *)(out + i), _mm_packus_epi16(w, w)); /* saturates at 255 */
    }
    return i;
}
#endif

static void rs_hrow_any(const uint8_t *r, const int *x0, const int *x1, const int16_t *w0, const int16_t *w1,
                        const int32_t *wpair, int nvec, int dw, int cn, int32_t *h)
{
    int x = 0;
#ifdef RS_X86
    if (nvec > 0 && cn >= 3) {
        rs_hrow_simd(r, x0, wpair, nvec, cn, h);
        x = nvec;
    }
#else
    (void)wpair, (void)nvec;
#endif
    switch (cn) {
    case 1: rs_hrow(r, x0 + x, x1 + x, w0 + x, w1 + x, dw - x, 1, h + (size_t)x); break;
    case 3: rs_hrow(r, x0 + x, x1 + x, w0 + x, w1 + x, dw - x, 3, h + (size_t)x * 3); break;
    default: rs_hrow(r, x0 + x, x1 + x, w0 + x, w1 + x, dw - x, 4, h + (size_t)x * 4); break;
    }
}

static kiln_status resize_bilinear(const kiln_image *src, kiln_image *dst)
{
    int sw = src->width, sh = src->height, dw = dst->width, dh = dst->height, cn = src->channels;
    size_t row = (size_t)dw * cn;
    int *xi = core_malloc(sizeof(int) * 2 * dw), *yi = core_malloc(sizeof(int) * 2 * dh);
    int16_t *xw = core_malloc(sizeof(int16_t) * 2 * dw), *yw = core_malloc(sizeof(int16_t) * 2 * dh);
    int32_t *hb[2] = {core_malloc(sizeof(int32_t) * (row + 1)), core_malloc(sizeof(int32_t) * (row + 1))};
    int32_t *wpair = core_malloc(sizeof(int32_t) * dw);
    kiln_status st = KILN_OK;
    if (!xi || !yi || !xw || !yw || !hb[0] || !hb[1] || !wpair) {
        st = core_oom();
        goto done;
    }
    rs_linear_tab(sw, dw, 0, xi, xi + dw, xw, xw + dw);
    rs_linear_tab(sh, dh, 1, yi, yi + dh, yw, yw + dh);
    int nvec = 0; /* leading columns the SIMD pass may take (see rs_hrow_simd) */
    int avx2 = 0;
#ifdef RS_X86
    avx2 = __builtin_cpu_supports("avx2");
    if (cn >= 3 && __builtin_cpu_supports("ssse3"))
        for (int x = 0; x < dw; x++) {
            if ((size_t)xi[x] * cn + 8 > (size_t)sw * cn || (xi[dw + x] != xi[x] + 1 && xw[dw + x] != 0)) break;
            wpair[x] = (int32_t)((uint32_t)(uint16_t)xw[x] | ((uint32_t)(uint16_t)xw[dw + x] << 16));
            nvec = x + 1;
        }
#endif
    int cached[2] = {-1, -1}; /* source row held by each horizontal buffer */
    for (int y = 0; y < dh; y++) {
        const int y0 = yi[y], y1 = yi[dh + y];
        int s0 = cached[0] == y0 ? 0 : cached[1] == y0 ? 1 : -1;
        if (s0 < 0) {
            s0 = cached[0] == y1 ? 1 : 0;
            rs_hrow_any(src->data + (size_t)y0 * src->stride, xi, xi + dw, xw, xw + dw, wpair, nvec, dw, cn, hb[s0]);
            cached[s0] = y0;
        }
        int s1 = cached[0] == y1 ? 0 : cached[1] == y1 ? 1 : -1;
        if (s1 < 0) {
            s1 = 1 - s0;
            rs_hrow_any(src->data + (size_t)y1 * src->stride, xi, xi + dw, xw, xw + dw, wpair, nvec, dw, cn, hb[s1]);
            cached[s1] = y1;
        }
        const int32_t b0 = yw[y], b1 = yw[dh + y];
        const int32_t *restrict h0 = hb[s0], *restrict h1 = hb[s1];
        uint8_t *restrict out = dst->data + (size_t)y * dst->stride;
        size_t i = 0;
#ifdef RS_X86
        if (avx2) i = rs_vrow_simd(out, h0, h1, row, b0, b1);
#else
        (void)avx2;
#endif
        for (; i < row; i++) out[i] = (uint8_t)rs_vblend(h0[i], h1[i], b0, b1);
    }
done:
    free(xi), free(yi), free(xw), free(yw), free(hb[0]), free(hb[1]), free(wpair);
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
