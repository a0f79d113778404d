/* preprocess.c — network-input preparation: normalisation into float NCHW, YOLOv5
 * letterbox (plain and fused into one pass), and affine warps (tensorRT_Pro style). */
#include "core/core.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Bilinear arithmetic shared bit-for-bit with resize.c (11-bit weights per axis, OpenCV's
 * rounding, see pp_vblend), so the fused letterbox equals kiln_letterbox +
 * kiln_image_to_tensor exactly. The warp uses the exact sum (w * w * p + 2^21) >> 22. */
#define PP_BITS 11
#define PP_ONE (1 << PP_BITS)
#define PP_ROUND (1 << (2 * PP_BITS - 1))

#if defined(__clang__)
/* keep v * k + b unfused so every path rounds the same way */
#pragma STDC FP_CONTRACT OFF
#endif

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define PP_X86 1
#include <immintrin.h>
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

#ifdef PP_X86
/* 16 RGB pixels per step: three pshufb-and-or gathers split 48 bytes into R, G, B, which
 * are widened, converted and normalised 8 at a time (mul then add, as pp_cvt rounds).
 * Returns how many pixels it did. */
__attribute__((target("avx2"))) static int pp_row3_simd(const uint8_t *s, int w, float *d0, float *d1, float *d2,
                                                          const float K[4], const float B[4])
{
    const __m128i ra = _mm_setr_epi8(0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m128i rb = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14, -1, -1, -1, -1, -1);
    const __m128i rc = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 1, 4, 7, 10, 13);
    const __m128i ga = _mm_setr_epi8(1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m128i gb = _mm_setr_epi8(-1, -1, -1, -1, -1, 0, 3, 6, 9, 12, 15, -1, -1, -1, -1, -1);
    const __m128i gc = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 2, 5, 8, 11, 14);
    const __m128i ba = _mm_setr_epi8(2, 5, 8, 11, 14, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    const __m128i bb = _mm_setr_epi8(-1, -1, -1, -1, -1, 1, 4, 7, 10, 13, -1, -1, -1, -1, -1, -1);
    const __m128i bc = _mm_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 3, 6, 9, 12, 15);
    float *d[3] = {d0, d1, d2};
    __m256 k[3], b[3];
    for (int c = 0; c < 3; c++) k[c] = _mm256_set1_ps(K[c]), b[c] = _mm256_set1_ps(B[c]);
    int x = 0;
    for (; x + 16 <= w; x += 16) {
        const __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(s + 3 * x));
        const __m128i m = _mm_loadu_si128((const __m128i *)(const void *)(s + 3 * x + 16));
        const __m128i z = _mm_loadu_si128((const __m128i *)(const void *)(s + 3 * x + 32));
        __m128i ch[3];
        ch[0] = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(a, ra), _mm_shuffle_epi8(m, rb)), _mm_shuffle_epi8(z, rc));
        ch[1] = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(a, ga), _mm_shuffle_epi8(m, gb)), _mm_shuffle_epi8(z, gc));
        ch[2] = _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(a, ba), _mm_shuffle_epi8(m, bb)), _mm_shuffle_epi8(z, bc));
        for (int c = 0; c < 3; c++) {
            __m256 lo = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(ch[c]));
            __m256 hi = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(ch[c], 8)));
            _mm256_storeu_ps(d[c] + x, _mm256_add_ps(_mm256_mul_ps(lo, k[c]), b[c]));
            _mm256_storeu_ps(d[c] + x + 8, _mm256_add_ps(_mm256_mul_ps(hi, k[c]), b[c]));
        }
    }
    return x;
}
#endif

/* Interleaved 8-bit rows -> `nc` float planes (plane stride `plane`). Loops run over the
 * source channels in storage order with constant offsets (so they vectorise); the channel
 * mapping is applied by choosing which plane each source channel lands in. */
static inline __attribute__((always_inline)) void pp_planes_body(const kiln_image *src, const pp_norm *pn, int nc,
                                                                 float *dst, size_t plane, size_t row_stride,
                                                                 const int simd)
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
            int x = 0;
#ifdef PP_X86
            if (simd) x = pp_row3_simd(s, w, d0, d1, d2, K, B);
#else
            (void)simd;
#endif
            for (; x < w; x++) {
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
    pp_planes_body(src, pn, nc, dst, plane, row_stride, 0);
}

#ifdef PP_X86
__attribute__((target("avx2"))) static void pp_planes_avx2(const kiln_image *src, const pp_norm *pn, int nc,
                                                             float *dst, size_t plane, size_t row_stride)
{
    pp_planes_body(src, pn, nc, dst, plane, row_stride, 1);
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
    int32_t *h[2];  /* two cached horizontal passes, planar: [channel][uw] */
    int32_t *wpair; /* xw0 | xw1 << 16 per column, for pmaddwd */
    int nvec;       /* leading columns whose 8-byte load at xo0 stays inside the row */
} lb_job;

/* Same tap computation as resize.c's rs_linear_tab (OpenCV INTER_LINEAR, border
 * replicate; along y only the indices are clamped, along x the weights too). */
static void pp_linear_tab(int src, int dst, int mul, int axis_y, int *i0, int *i1, int32_t *w0, int32_t *w1)
{
    double scale = 1.0 / ((double)dst / (double)src);
    for (int d = 0; d < dst; d++) {
        float f = (float)((d + 0.5) * scale - 0.5);
        int s = (int)floorf(f);
        f -= (float)s;
        if (axis_y) {
            i0[d] = (s < 0 ? 0 : s > src - 1 ? src - 1 : s) * mul;
            i1[d] = (s + 1 < 0 ? 0 : s + 1 > src - 1 ? src - 1 : s + 1) * mul;
        } else {
            if (s < 0) f = 0.f, s = 0;
            if (s >= src - 1) f = 0.f, s = src - 1;
            i0[d] = s * mul;
            i1[d] = (s + 1 < src ? s + 1 : src - 1) * mul;
        }
        w0[d] = (int16_t)lrintf((1.f - f) * PP_ONE);
        w1[d] = (int16_t)lrintf(f * PP_ONE);
    }
}

/* Vertical blend of two horizontal sums, exactly as OpenCV's SIMD INTER_LINEAR 8-bit path
 * rounds it (sums >> 4 packed to int16, mulhi by the 11-bit weight, then (x + 2) >> 2).
 * Copying its rounding makes kiln's letterbox equal cv2.resize pixel for pixel instead of
 * one level off in ~10% of values; resize.c uses the same expression. */
static inline int32_t pp_vblend(int32_t h0, int32_t h1, int32_t b0, int32_t b1)
{
    int32_t v = ((((h0 >> 4) * b0) >> 16) + (((h1 >> 4) * b1) >> 16) + 2) >> 2;
    return v > 255 ? 255 : v;
}

#ifdef PP_X86
/* Horizontal pass for 3- and 4-channel rows, 4 columns at a time: one 8-byte load holds
 * both taps (the right tap is always the next pixel, or has weight 0 at a clamped edge),
 * pshufb pairs each channel's taps as int16, pmaddwd applies [w0 w1], and a 4x4 transpose
 * makes the planar rows. Returns how many columns it did; the caller finishes the rest. */
__attribute__((target("avx2"))) static int lb_hrow_simd(const lb_job *j, const uint8_t *r, int32_t *h, int cn)
{
    const int uw = j->g->uw, n = j->nvec & ~3;
    const __m128i shuf = cn == 3 ? _mm_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1)
                                 : _mm_setr_epi8(0, -1, 4, -1, 1, -1, 5, -1, 2, -1, 6, -1, 3, -1, 7, -1);
    int32_t *h0 = h, *h1 = h + uw, *h2 = h + 2 * (size_t)uw;
    const int *xo0 = j->xo0;
    const int32_t *wp = j->wpair;
    for (int x = 0; x < n; x += 4) {
        /* written out: -O2 does not unroll a k-loop here and would spill to memory */
#define LB_TAP(k)                                                                                                      \
    _mm_madd_epi16(_mm_shuffle_epi8(_mm_loadl_epi64((const __m128i *)(const void *)(r + xo0[x + (k)])), shuf),         \
                   _mm_set1_epi32(wp[x + (k)]))
        const __m128i p0 = LB_TAP(0), p1 = LB_TAP(1), p2 = LB_TAP(2), p3 = LB_TAP(3);
#undef LB_TAP
        __m128i t0 = _mm_unpacklo_epi32(p0, p1), t1 = _mm_unpacklo_epi32(p2, p3);
        __m128i t2 = _mm_unpackhi_epi32(p0, p1), t3 = _mm_unpackhi_epi32(p2, p3);
        _mm_storeu_si128((__m128i *)(void *)(h0 + x), _mm_unpacklo_epi64(t0, t1));
        _mm_storeu_si128((__m128i *)(void *)(h1 + x), _mm_unpackhi_epi64(t0, t1));
        _mm_storeu_si128((__m128i *)(void *)(h2 + x), _mm_unpacklo_epi64(t2, t3));
    }
    return n;
}
#endif

#ifdef PP_X86
/* pp_vblend + pp_cvt over a row, 8 at a time (explicit, so -O2 builds are fast too). */
__attribute__((target("avx2"))) static int lb_vrow_simd(float *d, const int32_t *h0, const int32_t *h1, int n,
                                                          int32_t b0, int32_t b1, float k, float b)
{
    const __m256i vb0 = _mm256_set1_epi32(b0), vb1 = _mm256_set1_epi32(b1);
    const __m256i two = _mm256_set1_epi32(2), top = _mm256_set1_epi32(255);
    const __m256 vk = _mm256_set1_ps(k), vb = _mm256_set1_ps(b);
    int x = 0;
    for (; x + 8 <= n; x += 8) {
        __m256i a = _mm256_srai_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(h0 + x)), 4);
        __m256i c = _mm256_srai_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(h1 + x)), 4);
        a = _mm256_srai_epi32(_mm256_mullo_epi32(a, vb0), 16);
        c = _mm256_srai_epi32(_mm256_mullo_epi32(c, vb1), 16);
        __m256i v = _mm256_min_epi32(_mm256_srai_epi32(_mm256_add_epi32(_mm256_add_epi32(a, c), two), 2), top);
        _mm256_storeu_ps(d + x, _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(v), vk), vb));
    }
    return x;
}

__attribute__((target("avx2"))) static int pp_fill_simd(float *d, int n, float v)
{
    const __m256 vv = _mm256_set1_ps(v);
    int x = 0;
    for (; x + 8 <= n; x += 8) _mm256_storeu_ps(d + x, vv);
    return x;
}
#endif

/* d[0..n) = v; simd is a constant after inlining */
static inline __attribute__((always_inline)) void pp_fill(float *restrict d, int n, float v, const int simd)
{
    int x = 0;
#ifdef PP_X86
    if (simd) x = pp_fill_simd(d, n, v);
#else
    (void)simd;
#endif
    for (; x < n; x++) d[x] = v;
}

/* Horizontal pass of one source row into `np` planes (1 for gray, else R G B in storage
 * order); cn and np are constants after inlining. */
static inline __attribute__((always_inline)) void lb_hrow(const lb_job *j, const uint8_t *restrict r,
                                                          int32_t *restrict h, const int cn, const int np,
                                                          const int simd)
{
    const int uw = j->g->uw;
    const int *restrict xo0 = j->xo0, *restrict xo1 = j->xo1;
    const int32_t *restrict xw0 = j->xw0, *restrict xw1 = j->xw1;
    int x = 0;
#ifdef PP_X86
    if (simd && cn >= 3) x = lb_hrow_simd(j, r, h, cn);
#else
    (void)simd;
#endif
    for (; x < uw; x++) {
        const uint8_t *p0 = r + xo0[x], *p1 = r + xo1[x];
        const int32_t a0 = xw0[x], a1 = xw1[x];
        for (int k = 0; k < np; k++) h[(size_t)k * uw + x] = p0[k] * a0 + p1[k] * a1;
    }
}

/* The fused kernel body, inlined into a baseline and an AVX2 clone (chosen at run time):
 * per content row, horizontal passes of its two source rows (cached: upscaling reuses
 * them), then one contiguous loop per output channel that blends vertically, normalises
 * and stores into the float plane; padding is written in the same sweep. */
static inline __attribute__((always_inline)) void lb_rows_body(lb_job *j, float *dst, const int cn, const int simd)
{
    const kiln_image *src = j->src;
    const lb_geom *g = j->g;
    const int ow = g->ow, uw = g->uw, left = g->left, np = cn == 1 ? 1 : 3;
    const size_t plane = (size_t)ow * g->oh;
    int cached[2] = {-1, -1};
    for (int y = 0; y < g->oh; y++) {
        int ry = y - g->top;
        if (ry < 0 || ry >= g->uh) {
            for (int c = 0; c < 3; c++) {
                float *restrict d = dst + c * plane + (size_t)y * ow;
                pp_fill(d, ow, j->pad[c], simd);
            }
            continue;
        }
        const int y0 = j->yi0[ry], y1 = j->yi1[ry];
        int s0 = cached[0] == y0 ? 0 : cached[1] == y0 ? 1 : -1;
        if (s0 < 0) {
            s0 = cached[0] == y1 ? 1 : 0;
            lb_hrow(j, src->data + (size_t)y0 * src->stride, j->h[s0], cn, np, simd);
            cached[s0] = y0;
        }
        int s1 = cached[0] == y1 ? 0 : cached[1] == y1 ? 1 : -1;
        if (s1 < 0) {
            s1 = 1 - s0;
            lb_hrow(j, src->data + (size_t)y1 * src->stride, j->h[s1], cn, np, simd);
            cached[s1] = y1;
        }
        const int32_t b0 = j->yw0[ry], b1 = j->yw1[ry];
        for (int c = 0; c < 3; c++) {
            float *restrict d = dst + c * plane + (size_t)y * ow;
            const float p = j->pad[c], k = j->pn.k[c], b = j->pn.b[c];
            const size_t sc = (size_t)j->pn.src_ch[c] * uw;
            const int32_t *restrict h0 = j->h[s0] + sc, *restrict h1 = j->h[s1] + sc;
            pp_fill(d, left, p, simd);
            float *restrict dc = d + left;
            int x = 0;
#ifdef PP_X86
            if (simd) x = lb_vrow_simd(dc, h0, h1, uw, b0, b1, k, b);
#endif
            for (; x < uw; x++) dc[x] = pp_cvt(pp_vblend(h0[x], h1[x], b0, b1), k, b);
            pp_fill(d + left + uw, ow - left - uw, p, simd);
        }
    }
}

static void lb_rows_generic(lb_job *j, float *dst)
{
    switch (j->src->channels) {
    case 1: lb_rows_body(j, dst, 1, 0); break;
    case 3: lb_rows_body(j, dst, 3, 0); break;
    default: lb_rows_body(j, dst, 4, 0); break;
    }
}

#ifdef PP_X86
__attribute__((target("avx2"))) static void lb_rows_avx2(lb_job *j, float *dst)
{
    switch (j->src->channels) {
    case 1: lb_rows_body(j, dst, 1, 1); break;
    case 3: lb_rows_body(j, dst, 3, 1); break;
    default: lb_rows_body(j, dst, 4, 1); break;
    }
}
#endif

static kiln_status lb_fused(const kiln_image *src, const lb_geom *g, const pp_norm *pn, uint8_t pad_value,
                            float *dst)
{
    lb_job j;
    memset(&j, 0, sizeof j);
    j.src = src;
    j.g = g;
    j.pn = *pn;
    for (int c = 0; c < 3; c++) j.pad[c] = pp_cvt(pad_value, pn->k[c], pn->b[c]);
    int uw = g->uw, uh = g->uh, cn = src->channels;
    kiln_status st = KILN_OK;
    j.xo0 = core_malloc(sizeof(int) * uw), j.xo1 = core_malloc(sizeof(int) * uw);
    j.xw0 = core_malloc(sizeof(int32_t) * uw), j.xw1 = core_malloc(sizeof(int32_t) * uw);
    j.yi0 = core_malloc(sizeof(int) * uh), j.yi1 = core_malloc(sizeof(int) * uh);
    j.yw0 = core_malloc(sizeof(int32_t) * uh), j.yw1 = core_malloc(sizeof(int32_t) * uh);
    j.h[0] = core_malloc(sizeof(int32_t) * 3 * (size_t)uw), j.h[1] = core_malloc(sizeof(int32_t) * 3 * (size_t)uw);
    j.wpair = core_malloc(sizeof(int32_t) * uw);
    if (!j.xo0 || !j.xo1 || !j.xw0 || !j.xw1 || !j.yi0 || !j.yi1 || !j.yw0 || !j.yw1 || !j.h[0] || !j.h[1] ||
        !j.wpair) {
        st = core_oom();
        goto done;
    }
    pp_linear_tab(src->width, uw, cn, 0, j.xo0, j.xo1, j.xw0, j.xw1);
    /* the 8-byte loads need the right tap at xo0 + cn (or a zero weight) and must not run
     * past the row's last pixel */
    j.nvec = 0;
    for (int x = 0; x < uw; x++) {
        j.wpair[x] = (int32_t)((uint32_t)(uint16_t)j.xw0[x] | ((uint32_t)(uint16_t)j.xw1[x] << 16));
        if ((size_t)j.xo0[x] + 8 <= (size_t)src->width * cn && (j.xo1[x] == j.xo0[x] + cn || j.xw1[x] == 0))
            j.nvec = x + 1;
        else
            break;
    }
    pp_linear_tab(src->height, uh, 1, 1, j.yi0, j.yi1, j.yw0, j.yw1);
#ifdef PP_X86
    if (__builtin_cpu_supports("avx2"))
        lb_rows_avx2(&j, dst);
    else
#endif
        lb_rows_generic(&j, dst);
done:
    free(j.xo0), free(j.xo1), free(j.xw0), free(j.xw1);
    free(j.yi0), free(j.yi1), free(j.yw0), free(j.yw1), free(j.h[0]), free(j.h[1]), free(j.wpair);
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
    int avx2;
} warp_plan;

static inline __attribute__((always_inline)) void warp_vblend_body(int32_t *restrict v, const uint8_t *restrict r0,
                                                                   const uint8_t *restrict r1, int32_t wy0,
                                                                   int32_t wy1, int n)
{
    for (int i = 0; i < n; i++) v[i] = wy0 * r0[i] + wy1 * r1[i];
}

static void warp_vblend_generic(int32_t *v, const uint8_t *r0, const uint8_t *r1, int32_t wy0, int32_t wy1, int n)
{
    warp_vblend_body(v, r0, r1, wy0, wy1, n);
}

#ifdef PP_X86
__attribute__((target("avx2"))) static void warp_vblend_avx2(int32_t *v, const uint8_t *r0, const uint8_t *r1,
                                                               int32_t wy0, int32_t wy1, int n)
{
    const __m256i w0 = _mm256_set1_epi32(wy0), w1 = _mm256_set1_epi32(wy1);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i a = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(r0 + i)));
        __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(r1 + i)));
        _mm256_storeu_si256((__m256i *)(void *)(v + i),
                            _mm256_add_epi32(_mm256_mullo_epi32(a, w0), _mm256_mullo_epi32(c, w1)));
    }
    warp_vblend_body(v + i, r0 + i, r1 + i, wy0, wy1, n - i);
}
#endif

static void warp_plan_free(warp_plan *p) { free(p->xp), free(p->xw0), free(p->xw1), free(p->v), free(p->brow); }

static kiln_status warp_plan_init(warp_plan *p, const kiln_image *src, const float inv[6], int dst_w, uint8_t border)
{
    memset(p, 0, sizeof *p);
    p->src = src, p->inv = inv, p->border = border, p->dst_w = dst_w;
    p->separable = inv[1] == 0.0f && inv[3] == 0.0f;
    if (!p->separable) return KILN_OK;
#ifdef PP_X86
    p->avx2 = __builtin_cpu_supports("avx2");
#endif
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
#ifdef PP_X86
    if (p->avx2)
        warp_vblend_avx2(v + cn, r0, r1, wy0, wy1, sw * cn);
    else
#endif
        warp_vblend_generic(v + cn, r0, r1, wy0, wy1, sw * cn);
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
