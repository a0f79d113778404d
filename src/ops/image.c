/* image.c — reference kernels for image ops: Resize, Upsample, GridSample, AffineGrid, RoiAlign.
 * Computed in double; Resize is separable, applied one axis at a time as the ONNX reference. */
#include "ops/ops.h"
#include "ops/util.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- dtype helpers --------------------------------------------------------------------------- */

static bool img_numeric(kiln_dtype t)
{
    return t != KILN_DTYPE_STRING && t != KILN_DTYPE_BOOL && t != KILN_DTYPE_UNDEFINED &&
           t != KILN_DTYPE_COMPLEX64 && t != KILN_DTYPE_COMPLEX128 && core_dtype_size(t) > 0 &&
           (core_dtype_is_float(t) || core_dtype_is_int(t));
}

static double *img_load(const core_tensor *t)
{
    double *b = malloc(sizeof(double) * (size_t)(t->numel > 0 ? t->numel : 1));
    if (!b) return NULL;
    if (t->dtype == KILN_DTYPE_FLOAT) {
        const float *s = t->data;
        for (int64_t i = 0; i < t->numel; i++) b[i] = s[i];
    } else if (t->dtype == KILN_DTYPE_DOUBLE) {
        memcpy(b, t->data, sizeof(double) * (size_t)t->numel);
    } else {
        for (int64_t i = 0; i < t->numel; i++) b[i] = core_load_f64(t->dtype, t->data, i);
    }
    return b;
}

/* Store doubles into y; integer dtypes round half to even and saturate. */
static void img_store(core_tensor *y, const double *v)
{
    kiln_dtype t = y->dtype;
    if (t == KILN_DTYPE_FLOAT) {
        float *d = y->data;
        for (int64_t i = 0; i < y->numel; i++) d[i] = (float)v[i];
        return;
    }
    if (t == KILN_DTYPE_DOUBLE) {
        memcpy(y->data, v, sizeof(double) * (size_t)y->numel);
        return;
    }
    if (!core_dtype_is_int(t)) {
        for (int64_t i = 0; i < y->numel; i++) core_store_f64(t, y->data, i, v[i]);
        return;
    }
    double lo, hi;
    switch (t) {
    case KILN_DTYPE_INT8: lo = -128; hi = 127; break;
    case KILN_DTYPE_UINT8: lo = 0; hi = 255; break;
    case KILN_DTYPE_INT16: lo = -32768; hi = 32767; break;
    case KILN_DTYPE_UINT16: lo = 0; hi = 65535; break;
    case KILN_DTYPE_INT32: lo = -2147483648.0; hi = 2147483647.0; break;
    case KILN_DTYPE_UINT32: lo = 0; hi = 4294967295.0; break;
    case KILN_DTYPE_UINT64: lo = 0; hi = 18446744073709549568.0; break;
    default: lo = -9223372036854775808.0; hi = 9223372036854774784.0; break;
    }
    for (int64_t i = 0; i < y->numel; i++) {
        double r = nearbyint(v[i]);
        if (!(r >= lo)) r = lo; /* NaN -> lo */
        if (r > hi) r = hi;
        if (t == KILN_DTYPE_UINT64) {
            core_store_i64(t, y->data, i, (int64_t)(uint64_t)r);
        } else {
            core_store_i64(t, y->data, i, (int64_t)r);
        }
    }
}

/* ---- Resize / Upsample ------------------------------------------------------------------------ */

enum { RS_NEAREST, RS_LINEAR, RS_CUBIC };
enum { CT_HALF_PIXEL, CT_HALF_PIXEL_SYM, CT_PYTORCH_HALF_PIXEL, CT_ALIGN_CORNERS, CT_ASYMMETRIC,
       CT_TF_CROP_AND_RESIZE };
enum { NM_ROUND_PREFER_FLOOR, NM_ROUND_PREFER_CEIL, NM_FLOOR, NM_CEIL, NM_SIMPLE };

typedef struct resize_params {
    int mode, ctm, nearest;
    double cubic_a, extrapolation;
    bool exclude_outside, antialias;
} resize_params;

static double cubic_w(double x, double A)
{
    x = fabs(x);
    if (x <= 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
    if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
    return 0.0;
}

/* Taps (neighbor count) for an axis; -1 when an antialias filter would be absurdly wide. */
static int resize_taps(const resize_params *p, double scale)
{
    if (p->mode == RS_NEAREST) return 2;
    if (!p->antialias) return p->mode == RS_LINEAR ? 2 : 4;
    double s = scale < 1.0 ? scale : 1.0;
    double start = floor((p->mode == RS_LINEAR ? -1.0 : -2.0) / s) + 1;
    if (!(start > -(double)(1 << 20))) return -1;
    return (int)(2 - 2 * (int64_t)start);
}

/* Coefficients for one output position, given ratio in (0, 1] (1 when x is integral). */
static void resize_coeffs(const resize_params *p, double ratio, double scale, int n, double *co)
{
    if (p->mode == RS_NEAREST) {
        bool integral = ratio == 1.0;
        if (integral) { co[0] = 0; co[1] = 1; return; }
        switch (p->nearest) {
        case NM_ROUND_PREFER_FLOOR: co[0] = ratio <= 0.5; co[1] = ratio > 0.5; break;
        case NM_ROUND_PREFER_CEIL: co[0] = ratio < 0.5; co[1] = ratio >= 0.5; break;
        case NM_FLOOR: co[0] = 1; co[1] = 0; break;
        case NM_CEIL: co[0] = 0; co[1] = 1; break;
        default: /* SIMPLE: floor when upsampling, ceil when downsampling */
            co[0] = scale >= 1.0; co[1] = scale < 1.0; break;
        }
        return;
    }
    double s = scale < 1.0 ? scale : 1.0;
    if (!p->antialias) {
        if (p->mode == RS_LINEAR) { co[0] = 1 - ratio; co[1] = ratio; return; }
        double A = p->cubic_a;
        co[0] = cubic_w(ratio + 1, A);
        co[1] = cubic_w(ratio, A);
        co[2] = cubic_w(1 - ratio, A);
        co[3] = cubic_w(2 - ratio, A);
        return;
    }
    int64_t start = 1 - n / 2;
    double sum = 0;
    for (int j = 0; j < n; j++) {
        double arg = ((double)(start + j) - ratio) * s;
        double v;
        if (p->mode == RS_LINEAR) {
            v = 1 - fabs(arg);
            if (v < 0) v = 0;
            if (v > 1) v = 1;
        } else {
            v = cubic_w(arg, p->cubic_a);
        }
        co[j] = v;
        sum += v;
    }
    if (sum != 0)
        for (int j = 0; j < n; j++) co[j] /= sum;
}

/* Resize one axis: src has dims (outer, in_w, inner), dst (outer, out_w, inner). */
static kiln_status resize_axis(const resize_params *p, const double *src, double *dst, int64_t outer,
                               int64_t in_w, int64_t out_w, int64_t inner, double scale,
                               double roi_lo, double roi_hi)
{
    if (out_w == 0 || outer == 0 || inner == 0) return KILN_OK;
    int n = resize_taps(p, scale);
    if (n < 1 || n > 1 << 20) return core_error(KILN_ERR_UNSUPPORTED, "resize filter of %d taps", n);
    double *co = malloc(sizeof(double) * (size_t)(n * out_w));
    int64_t *ix = malloc(sizeof(int64_t) * (size_t)(n * out_w));
    bool *ext = calloc((size_t)out_w, sizeof(bool));
    if (!co || !ix || !ext) {
        free(co); free(ix); free(ext);
        return core_oom();
    }
    double out_f = scale * (double)in_w; /* the (fractional) output width of the transform */
    for (int64_t o = 0; o < out_w; o++) {
        double y = (double)o, x;
        switch (p->ctm) {
        case CT_ALIGN_CORNERS:
            x = out_f == 1 ? 0.0 : y * (double)(in_w - 1) / (out_f - 1);
            break;
        case CT_ASYMMETRIC: x = y / scale; break;
        case CT_TF_CROP_AND_RESIZE:
            x = out_f == 1 ? (roi_hi - roi_lo) * (double)(in_w - 1) / 2
                           : y * (roi_hi - roi_lo) * (double)(in_w - 1) / (out_f - 1);
            x += roi_lo * (double)(in_w - 1);
            ext[o] = !(x >= 0 && x <= (double)(in_w - 1));
            break;
        case CT_PYTORCH_HALF_PIXEL: x = out_f == 1 ? -0.5 : (y + 0.5) / scale - 0.5; break;
        case CT_HALF_PIXEL_SYM: {
            double adj = (double)out_w / out_f, center = (double)in_w / 2;
            x = center * (1 - adj) + (y + 0.5) / scale - 0.5;
            break;
        }
        default: x = (y + 0.5) / scale - 0.5; break;
        }
        /* Far outside the input every tap clamps to the same edge sample (or is excluded),
         * so clamping x keeps the result and the integer conversions below defined. */
        x = fmin(fmax(x, -(double)n - 4.0), (double)in_w + (double)n + 4.0);
        double fl = floor(x);
        bool integral = x == fl;
        double ratio = integral ? 1.0 : x - fl;
        double *c = co + o * n;
        int64_t *id = ix + o * n;
        resize_coeffs(p, ratio, scale, n, c);
        /* Neighbors are chosen from x shifted by the edge pad width, exactly as the ONNX
         * reference does: when x is within an ulp of an integer the shifted value can round
         * to it, and the test data follow that choice. */
        int64_t pw = (n + 1) / 2;
        double xp = x + (double)pw, pfl = floor(xp), frac = xp - pfl;
        int64_t start;
        if (n % 2 == 0) start = (int64_t)pfl + (frac == 0 ? -(n / 2) : -(n / 2) + 1) - pw;
        else start = (int64_t)pfl - (n - 1) / 2 + (frac <= 0.5 ? 0 : 1) - pw;
        double sum = 0;
        for (int j = 0; j < n; j++) {
            int64_t k = start + j;
            if (p->exclude_outside && (k < 0 || k >= in_w)) c[j] = 0;
            sum += c[j];
            id[j] = k < 0 ? 0 : k >= in_w ? in_w - 1 : k;
        }
        if (p->exclude_outside && sum != 0)
            for (int j = 0; j < n; j++) c[j] /= sum;
    }
    for (int64_t a = 0; a < outer; a++) {
        const double *sa = src + a * in_w * inner;
        double *da = dst + a * out_w * inner;
        for (int64_t o = 0; o < out_w; o++) {
            double *dr = da + o * inner;
            if (ext[o]) {
                for (int64_t i = 0; i < inner; i++) dr[i] = p->extrapolation;
                continue;
            }
            const double *c = co + o * n;
            const int64_t *id = ix + o * n;
            bool first = true;
            for (int j = 0; j < n; j++) {
                if (c[j] == 0 && p->mode == RS_NEAREST) continue;
                const double *sr = sa + id[j] * inner;
                double w = c[j];
                if (first) {
                    for (int64_t i = 0; i < inner; i++) dr[i] = w * sr[i];
                    first = false;
                } else {
                    for (int64_t i = 0; i < inner; i++) dr[i] += w * sr[i];
                }
            }
            if (first)
                for (int64_t i = 0; i < inner; i++) dr[i] = 0;
        }
    }
    free(co);
    free(ix);
    free(ext);
    return KILN_OK;
}

/* Full resize: x (ndim, in) -> y (out) using per-axis scales and roi (2*ndim: starts, ends). */
static kiln_status resize_compute(const ops_ctx *c, const resize_params *p, const core_tensor *x,
                                  const int64_t *out, const double *scales, const double *roi,
                                  core_tensor *y)
{
    int nd = x->ndim;
    double *cur = img_load(x);
    if (!cur) return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
    int64_t dims[KILN_MAX_DIMS];
    memcpy(dims, x->dims, sizeof(int64_t) * (size_t)nd);
    for (int a = 0; a < nd; a++) {
        bool trivial_roi = fabs(roi[a]) < 1e-9 && fabs(roi[nd + a] - 1.0) < 1e-9;
        if (fabs(scales[a] - 1.0) <= 1e-9 && out[a] == dims[a] &&
            (p->ctm != CT_TF_CROP_AND_RESIZE || trivial_roi))
            continue;
        int64_t outer = 1, inner = 1;
        for (int i = 0; i < a; i++) outer *= dims[i];
        for (int i = a + 1; i < nd; i++) inner *= dims[i];
        int64_t total = outer * out[a] * inner;
        double *nxt = malloc(sizeof(double) * (size_t)(total > 0 ? total : 1));
        if (!nxt) { free(cur); return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory"); }
        if (dims[a] == 0 && total > 0) {
            free(cur); free(nxt);
            return ops_error(c, KILN_ERR_SHAPE, "cannot resize an empty axis %d to %lld", a, (long long)out[a]);
        }
        kiln_status st = resize_axis(p, cur, nxt, outer, dims[a], out[a], inner, scales[a], roi[a], roi[nd + a]);
        free(cur);
        if (st) { free(nxt); return ops_error(c, st, "%s", core_error_text()); }
        cur = nxt;
        dims[a] = out[a];
    }
    img_store(y, cur);
    free(cur);
    return KILN_OK;
}

static int resize_parse_ctm(const char *s)
{
    if (!strcmp(s, "half_pixel")) return CT_HALF_PIXEL;
    if (!strcmp(s, "half_pixel_symmetric")) return CT_HALF_PIXEL_SYM;
    if (!strcmp(s, "pytorch_half_pixel")) return CT_PYTORCH_HALF_PIXEL;
    if (!strcmp(s, "align_corners")) return CT_ALIGN_CORNERS;
    if (!strcmp(s, "asymmetric")) return CT_ASYMMETRIC;
    if (!strcmp(s, "tf_crop_and_resize")) return CT_TF_CROP_AND_RESIZE;
    return -1;
}

static int resize_parse_mode(const char *s)
{
    if (!strcmp(s, "nearest")) return RS_NEAREST;
    if (!strcmp(s, "linear") || !strcmp(s, "bilinear") || !strcmp(s, "trilinear")) return RS_LINEAR;
    if (!strcmp(s, "cubic") || !strcmp(s, "bicubic")) return RS_CUBIC;
    return -1;
}

/* Read a float tensor (scales / roi) as doubles; returns count or -1. */
static int64_t img_tensor_f64s(const core_tensor *t, double *out, int64_t max)
{
    if (!t || t->numel > max) return -1;
    for (int64_t i = 0; i < t->numel; i++) out[i] = core_load_f64(t->dtype, t->data, i);
    return t->numel;
}

/* Shared tail of Resize/Upsample once scales or sizes per axis are known. sizes_given says
 * whether `sizes` (else `scales`) defines the output. */
static kiln_status resize_finish(ops_ctx *c, const resize_params *p, const core_tensor *x,
                                 const int64_t *axes, int naxes, const double *ascales,
                                 const int64_t *asizes, const double *aroi, int nroi)
{
    int nd = x->ndim;
    double scales[KILN_MAX_DIMS], roi[2 * KILN_MAX_DIMS];
    int64_t out[KILN_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        scales[i] = 1.0;
        out[i] = x->dims[i];
        roi[i] = 0.0;
        roi[nd + i] = 1.0;
    }
    if (nroi > 0) {
        if (nroi != 2 * naxes)
            return ops_error(c, KILN_ERR_SHAPE, "roi has %d values, expected %d", nroi, 2 * naxes);
        for (int i = 0; i < naxes; i++) {
            roi[axes[i]] = aroi[i];
            roi[nd + axes[i]] = aroi[naxes + i];
        }
    }
    if (asizes) {
        for (int i = 0; i < naxes; i++) {
            if (asizes[i] < 0)
                return ops_error(c, KILN_ERR_INVALID_MODEL, "sizes[%d] = %lld is negative", i, (long long)asizes[i]);
            if (x->dims[axes[i]] == 0)
                return ops_error(c, KILN_ERR_SHAPE, "cannot resize empty axis %lld", (long long)axes[i]);
            out[axes[i]] = asizes[i];
            scales[axes[i]] = (double)asizes[i] / (double)x->dims[axes[i]];
        }
        const char *pol = ops_attr_string(c, "keep_aspect_ratio_policy", "stretch");
        bool nl = !strcmp(pol, "not_larger"), ns = !strcmp(pol, "not_smaller");
        if (!nl && !ns && strcmp(pol, "stretch"))
            return ops_error(c, KILN_ERR_INVALID_MODEL, "keep_aspect_ratio_policy '%s' is not supported", pol);
        if ((nl || ns) && naxes > 0) {
            double s = scales[axes[0]];
            for (int i = 1; i < naxes; i++) {
                double v = scales[axes[i]];
                if (nl ? v < s : v > s) s = v;
            }
            for (int i = 0; i < naxes; i++) {
                scales[axes[i]] = s;
                out[axes[i]] = (int64_t)(s * (double)x->dims[axes[i]] + 0.5);
            }
        }
    } else {
        for (int i = 0; i < naxes; i++) {
            double s = ascales[i];
            if (!(s > 0) || !isfinite(s))
                return ops_error(c, KILN_ERR_INVALID_MODEL, "scales[%d] = %g, must be > 0", i, s);
            scales[axes[i]] = s;
            double o = floor(s * (double)x->dims[axes[i]]);
            if (o > 9.0e15) return ops_error(c, KILN_ERR_SHAPE, "output too large");
            out[axes[i]] = (int64_t)o;
        }
    }
    core_tensor *y = ops_output(c, 0, x->dtype, nd, out);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    return resize_compute(c, p, x, out, scales, roi, y);
}

static kiln_status resize_run(ops_ctx *c)
{
    int opset = ops_opset(c);
    const core_tensor *x = ops_input(c, 0);
    if (!x) return ops_error(c, KILN_ERR_INVALID_MODEL, "input X is required");
    if (!img_numeric(x->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "input X has unsupported dtype %s", core_dtype_name(x->dtype));
    if (x->ndim < 1) return ops_error(c, KILN_ERR_SHAPE, "input X is a scalar");
    int nd = x->ndim;
    resize_params p;
    memset(&p, 0, sizeof p);
    const char *ms = ops_attr_string(c, "mode", "nearest");
    p.mode = resize_parse_mode(ms);
    if (p.mode < 0) return ops_error(c, KILN_ERR_INVALID_MODEL, "mode '%s' is not supported", ms);
    if (opset < 11) {
        p.ctm = CT_ASYMMETRIC;
        p.nearest = NM_SIMPLE;
        if (p.mode == RS_CUBIC) return ops_error(c, KILN_ERR_INVALID_MODEL, "cubic mode needs opset 11");
    } else {
        const char *cs = ops_attr_string(c, "coordinate_transformation_mode", "half_pixel");
        p.ctm = resize_parse_ctm(cs);
        if (p.ctm < 0)
            return ops_error(c, KILN_ERR_INVALID_MODEL, "coordinate_transformation_mode '%s' is not supported", cs);
        const char *ns = ops_attr_string(c, "nearest_mode", "round_prefer_floor");
        if (!strcmp(ns, "round_prefer_floor")) p.nearest = NM_ROUND_PREFER_FLOOR;
        else if (!strcmp(ns, "round_prefer_ceil")) p.nearest = NM_ROUND_PREFER_CEIL;
        else if (!strcmp(ns, "floor")) p.nearest = NM_FLOOR;
        else if (!strcmp(ns, "ceil")) p.nearest = NM_CEIL;
        else return ops_error(c, KILN_ERR_INVALID_MODEL, "nearest_mode '%s' is not supported", ns);
    }
    p.cubic_a = ops_attr_float(c, "cubic_coeff_a", -0.75f);
    p.exclude_outside = ops_attr_int(c, "exclude_outside", 0) != 0;
    p.extrapolation = ops_attr_float(c, "extrapolation_value", 0.0f);
    p.antialias = ops_attr_int(c, "antialias", 0) != 0 && p.mode != RS_NEAREST;

    int64_t axes[KILN_MAX_DIMS];
    int naxes = nd;
    int64_t acnt = 0;
    const int64_t *av = ops_attr_ints(c, "axes", &acnt);
    if (av) {
        if (acnt < 1 || acnt > nd)
            return ops_error(c, KILN_ERR_INVALID_MODEL, "axes has %lld values for rank %d", (long long)acnt, nd);
        naxes = (int)acnt;
        for (int i = 0; i < naxes; i++) {
            axes[i] = ops_axis(av[i], nd);
            if (axes[i] < 0)
                return ops_error(c, KILN_ERR_INVALID_MODEL, "axes[%d] = %lld out of range", i, (long long)av[i]);
            for (int j = 0; j < i; j++)
                if (axes[j] == axes[i]) return ops_error(c, KILN_ERR_INVALID_MODEL, "axes repeat %lld", (long long)axes[i]);
        }
    } else {
        for (int i = 0; i < nd; i++) axes[i] = i;
    }

    const core_tensor *roi_t = NULL, *scales_t, *sizes_t = NULL;
    if (opset < 11) {
        scales_t = ops_input(c, 1);
    } else {
        roi_t = ops_input(c, 1);
        scales_t = ops_input(c, 2);
        sizes_t = ops_input(c, 3);
    }
    if (scales_t && scales_t->numel == 0) scales_t = NULL;
    if (sizes_t && sizes_t->numel == 0) sizes_t = NULL;
    if (!scales_t && !sizes_t) return ops_error(c, KILN_ERR_INVALID_MODEL, "one of scales or sizes is required");
    if (scales_t && sizes_t) return ops_error(c, KILN_ERR_INVALID_MODEL, "only one of scales and sizes may be given");
    double sc[KILN_MAX_DIMS], rv[2 * KILN_MAX_DIMS];
    int64_t sz[KILN_MAX_DIMS];
    int nroi = 0;
    if (roi_t && roi_t->numel > 0 && p.ctm == CT_TF_CROP_AND_RESIZE) {
        int64_t n = img_tensor_f64s(roi_t, rv, 2 * KILN_MAX_DIMS);
        if (n < 0) return ops_error(c, KILN_ERR_SHAPE, "roi has %lld values", (long long)roi_t->numel);
        nroi = (int)n;
    } else if (p.ctm == CT_TF_CROP_AND_RESIZE) {
        return ops_error(c, KILN_ERR_INVALID_MODEL, "tf_crop_and_resize needs roi");
    }
    if (scales_t) {
        if (scales_t->numel != naxes)
            return ops_error(c, KILN_ERR_SHAPE, "scales has %lld values, expected %d", (long long)scales_t->numel, naxes);
        if (!core_dtype_is_float(scales_t->dtype))
            return ops_error(c, KILN_ERR_DTYPE, "scales has dtype %s", core_dtype_name(scales_t->dtype));
        img_tensor_f64s(scales_t, sc, KILN_MAX_DIMS);
        return resize_finish(c, &p, x, axes, naxes, sc, NULL, rv, nroi);
    }
    if (sizes_t->numel != naxes)
        return ops_error(c, KILN_ERR_SHAPE, "sizes has %lld values, expected %d", (long long)sizes_t->numel, naxes);
    if (ops_tensor_i64s(sizes_t, sz, KILN_MAX_DIMS) < 0)
        return ops_error(c, KILN_ERR_DTYPE, "sizes: %s", core_error_text());
    return resize_finish(c, &p, x, axes, naxes, NULL, sz, rv, nroi);
}

static kiln_status upsample_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x) return ops_error(c, KILN_ERR_INVALID_MODEL, "input X is required");
    if (!img_numeric(x->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "input X has unsupported dtype %s", core_dtype_name(x->dtype));
    int nd = x->ndim;
    if (nd < 1) return ops_error(c, KILN_ERR_SHAPE, "input X is a scalar");
    resize_params p;
    memset(&p, 0, sizeof p);
    const char *ms = ops_attr_string(c, "mode", "nearest");
    p.mode = resize_parse_mode(ms);
    if (p.mode < 0 || p.mode == RS_CUBIC)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "mode '%s' is not supported", ms);
    p.ctm = CT_ASYMMETRIC;
    p.nearest = NM_SIMPLE;
    double sc[KILN_MAX_DIMS];
    int64_t axes[KILN_MAX_DIMS];
    for (int i = 0; i < nd; i++) axes[i] = i;
    const core_tensor *st = ops_input(c, 1);
    if (st) {
        if (st->numel != nd || !core_dtype_is_float(st->dtype))
            return ops_error(c, KILN_ERR_SHAPE, "scales must be %d floats", nd);
        img_tensor_f64s(st, sc, KILN_MAX_DIMS);
    } else {
        int64_t n = 0;
        const float *f = ops_attr_floats(c, "scales", &n);
        if (!f) {
            /* opset 1: height_scale / width_scale on a 4-D input */
            if (nd != 4 || !ops_has_attr(c, "height_scale"))
                return ops_error(c, KILN_ERR_INVALID_MODEL, "scales are required");
            sc[0] = sc[1] = 1.0;
            sc[2] = ops_attr_float(c, "height_scale", 1.0f);
            sc[3] = ops_attr_float(c, "width_scale", 1.0f);
        } else {
            if (n != nd) return ops_error(c, KILN_ERR_SHAPE, "scales has %lld values, expected %d", (long long)n, nd);
            for (int i = 0; i < nd; i++) sc[i] = f[i];
        }
    }
    double rv[1] = {0};
    return resize_finish(c, &p, x, axes, nd, sc, NULL, rv, 0);
}

/* ---- GridSample ------------------------------------------------------------------------------- */

enum { GS_ZEROS, GS_BORDER, GS_REFLECTION };

static double gs_reflect(double x, double lo, double hi)
{
    double rng = hi - lo;
    if (!(rng > 0) || !isfinite(x)) return lo;
    if (x < lo) {
        double dx = lo - x, n = floor(dx / rng);
        double r = dx - n * rng;
        return fmod(n, 2.0) == 0 ? lo + r : hi - r;
    }
    if (x > hi) {
        double dx = x - hi, n = floor(dx / rng);
        double r = dx - n * rng;
        return fmod(n, 2.0) == 0 ? hi - r : lo + r;
    }
    return x;
}

/* Index along one dim for padding modes; returns -1 for "zero" (outside with zeros padding). */
static int64_t gs_index(int64_t i, int64_t len, int pad, double lo, double hi)
{
    if (pad == GS_ZEROS) return (i >= 0 && i < len) ? i : -1;
    if (pad == GS_BORDER) return i < 0 ? 0 : i >= len ? len - 1 : i;
    int64_t r = (int64_t)gs_reflect((double)i, lo, hi);
    return r < 0 ? 0 : r >= len ? len - 1 : r;
}

static void gs_cubic_coeffs(double x, double *co)
{
    const double A = -0.75;
    x = fabs(x);
    co[0] = ((A * (x + 1) - 5 * A) * (x + 1) + 8 * A) * (x + 1) - 4 * A;
    co[1] = ((A + 2) * x - (A + 3)) * x * x + 1;
    co[2] = ((A + 2) * (1 - x) - (A + 3)) * (1 - x) * (1 - x) + 1;
    co[3] = ((A * (2 - x) - 5 * A) * (2 - x) + 8 * A) * (2 - x) - 4 * A;
}

static kiln_status grid_sample_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0), *grid = ops_input(c, 1);
    if (!x || !grid) return ops_error(c, KILN_ERR_INVALID_MODEL, "inputs X and grid are required");
    if (!img_numeric(x->dtype) || !core_dtype_is_float(grid->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "X is %s and grid %s", core_dtype_name(x->dtype),
                         core_dtype_name(grid->dtype));
    if (x->ndim < 3) return ops_error(c, KILN_ERR_SHAPE, "X has %d dims, expected at least 3", x->ndim);
    int nsp = x->ndim - 2;
    if (nsp > 8) return ops_error(c, KILN_ERR_UNSUPPORTED, "GridSample with %d spatial dims", nsp);
    if (grid->ndim != x->ndim || grid->dims[0] != x->dims[0] || grid->dims[grid->ndim - 1] != nsp)
        return ops_error(c, KILN_ERR_SHAPE, "grid must be (N, out..., %d) with N = %lld", nsp,
                         (long long)x->dims[0]);
    const char *ms = ops_attr_string(c, "mode", ops_opset(c) >= 20 ? "linear" : "bilinear");
    int mode;
    if (!strcmp(ms, "bilinear") || !strcmp(ms, "linear")) mode = RS_LINEAR;
    else if (!strcmp(ms, "nearest")) mode = RS_NEAREST;
    else if (!strcmp(ms, "bicubic") || !strcmp(ms, "cubic")) mode = RS_CUBIC;
    else return ops_error(c, KILN_ERR_INVALID_MODEL, "mode '%s' is not supported", ms);
    const char *ps = ops_attr_string(c, "padding_mode", "zeros");
    int pad;
    if (!strcmp(ps, "zeros")) pad = GS_ZEROS;
    else if (!strcmp(ps, "border")) pad = GS_BORDER;
    else if (!strcmp(ps, "reflection")) pad = GS_REFLECTION;
    else return ops_error(c, KILN_ERR_INVALID_MODEL, "padding_mode '%s' is not supported", ps);
    bool align = ops_attr_int(c, "align_corners", 0) != 0;
    if (mode == RS_CUBIC && nsp > 4)
        return ops_error(c, KILN_ERR_UNSUPPORTED, "cubic GridSample with %d spatial dims", nsp);

    int64_t N = x->dims[0], C = x->dims[1];
    int64_t yd[KILN_MAX_DIMS] = {N, C};
    int64_t osp = 1, isp = 1;
    for (int i = 0; i < nsp; i++) {
        yd[2 + i] = grid->dims[1 + i];
        osp *= yd[2 + i];
        isp *= x->dims[2 + i];
    }
    core_tensor *y = ops_output(c, 0, x->dtype, x->ndim, yd);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    double *px = img_load(x), *pg = img_load(grid), *yo = malloc(sizeof(double) * (size_t)y->numel);
    if (!px || !pg || !yo) {
        free(px); free(pg); free(yo);
        return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    const int64_t *in = x->dims + 2;
    int64_t istr[KILN_MAX_DIMS];
    ops_contiguous_strides(nsp, in, istr);
    double lo[KILN_MAX_DIMS], hi[KILN_MAX_DIMS];
    for (int i = 0; i < nsp; i++) {
        lo[i] = align ? 0.0 : -0.5;
        hi[i] = align ? (double)in[i] - 1 : (double)in[i] - 0.5;
    }
    int taps = mode == RS_CUBIC ? 4 : mode == RS_LINEAR ? 2 : 1;
    int64_t ncorner = 1;
    for (int i = 0; i < nsp; i++) ncorner *= taps;
    for (int64_t n = 0; n < N; n++) {
        for (int64_t o = 0; o < osp; o++) {
            const double *gv = pg + (n * osp + o) * nsp;
            /* per-dim tap indices (-1 = zero) and weights */
            int64_t tix[KILN_MAX_DIMS][4];
            double tw[KILN_MAX_DIMS][4];
            for (int i = 0; i < nsp; i++) {
                int64_t len = in[i];
                /* grid's last axis is (x, y, z...) = innermost dim first; the reference
                 * denormalizes in float32 */
                double gd = gv[nsp - 1 - i];
                float g = (float)(gd > 1e30 ? 1e30 : gd < -1e30 ? -1e30 : gd);
                float xf = align ? (g + 1.0f) / 2.0f * (float)(len - 1) : ((g + 1.0f) * (float)len - 1.0f) / 2.0f;
                double xc = xf;
                if (mode == RS_NEAREST) xc = nearbyint(xc);
                if (xc < lo[i] || xc > hi[i]) {
                    if (pad == GS_BORDER) xc = xc < 0 ? 0 : xc > (double)(len - 1) ? (double)(len - 1) : xc;
                    else if (pad == GS_REFLECTION) xc = gs_reflect(xc, lo[i], hi[i]);
                }
                /* NaN samples read as zeros (or the first pixel); far-out coordinates are
                 * clamped where every tap is already outside, keeping conversions defined */
                if (isnan(xc)) xc = pad == GS_ZEROS ? -8.0 : 0.0;
                xc = fmin(fmax(xc, -8.0), (double)len + 8.0);
                if (mode == RS_NEAREST) {
                    tix[i][0] = gs_index((int64_t)xc, len, pad, lo[i], hi[i]);
                    tw[i][0] = 1.0;
                } else {
                    double fl = floor(xc);
                    int64_t x0 = (int64_t)fl;
                    double fr = xc - fl;
                    if (mode == RS_LINEAR) {
                        tw[i][0] = 1 - fr;
                        tw[i][1] = fr;
                        tix[i][0] = gs_index(x0, len, pad, lo[i], hi[i]);
                        tix[i][1] = gs_index(x0 + 1, len, pad, lo[i], hi[i]);
                    } else {
                        gs_cubic_coeffs(fr, tw[i]);
                        for (int t = 0; t < 4; t++) tix[i][t] = gs_index(x0 - 1 + t, len, pad, lo[i], hi[i]);
                    }
                }
            }
            for (int64_t ch = 0; ch < C; ch++) {
                const double *xp = px + (n * C + ch) * isp;
                double acc = 0;
                for (int64_t k = 0; k < ncorner; k++) {
                    int64_t rem = k, off = 0;
                    double w = 1;
                    bool zero = false;
                    for (int i = nsp - 1; i >= 0; i--) {
                        int t = (int)(rem % taps);
                        rem /= taps;
                        if (tix[i][t] < 0) { zero = true; break; }
                        w *= tw[i][t];
                        off += tix[i][t] * istr[i];
                    }
                    if (!zero) acc += w * xp[off];
                }
                yo[(n * C + ch) * osp + o] = acc;
            }
        }
    }
    img_store(y, yo);
    free(px); free(pg); free(yo);
    return KILN_OK;
}

/* ---- AffineGrid --------------------------------------------------------------------------------- */
static kiln_status affine_grid_run(ops_ctx *c)
{
    const core_tensor *theta = ops_input(c, 0), *size = ops_input(c, 1);
    if (!theta || !size) return ops_error(c, KILN_ERR_INVALID_MODEL, "inputs theta and size are required");
    if (!core_dtype_is_float(theta->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "theta has dtype %s", core_dtype_name(theta->dtype));
    int64_t sz[8];
    int64_t ns = ops_tensor_i64s(size, sz, 8);
    if (ns != 4 && ns != 5) return ops_error(c, KILN_ERR_SHAPE, "size must have 4 or 5 values");
    int nsp = (int)ns - 2;
    int64_t N = sz[0];
    if (theta->ndim != 3 || theta->dims[0] != N || theta->dims[1] != nsp || theta->dims[2] != nsp + 1)
        return ops_error(c, KILN_ERR_SHAPE, "theta must be (%lld, %d, %d)", (long long)N, nsp, nsp + 1);
    bool align = ops_attr_int(c, "align_corners", 0) != 0;
    int64_t yd[KILN_MAX_DIMS] = {N};
    int64_t osp = 1;
    for (int i = 0; i < nsp; i++) {
        if (sz[2 + i] < 0) return ops_error(c, KILN_ERR_SHAPE, "size[%d] is negative", 2 + i);
        yd[1 + i] = sz[2 + i];
        osp *= sz[2 + i];
    }
    yd[1 + nsp] = nsp;
    core_tensor *y = ops_output(c, 0, theta->dtype, nsp + 2, yd);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    double *pt = img_load(theta), *yo = malloc(sizeof(double) * (size_t)y->numel);
    if (!pt || !yo) { free(pt); free(yo); return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory"); }
    const int64_t *sp = sz + 2;
    for (int64_t n = 0; n < N; n++) {
        const double *th = pt + n * nsp * (nsp + 1);
        int64_t idx[KILN_MAX_DIMS] = {0};
        for (int64_t o = 0; o < osp; o++, ops_index_next(nsp, sp, idx)) {
            double base[4];
            /* base = (x, y[, z], 1): x runs along the innermost dim */
            for (int i = 0; i < nsp; i++) {
                int d = nsp - 1 - i;
                int64_t L = sp[d];
                double v;
                if (align) v = L > 1 ? -1.0 + 2.0 * (double)idx[d] / (double)(L - 1) : -1.0;
                else v = -1.0 + (2.0 * (double)idx[d] + 1.0) / (double)L;
                base[i] = v;
            }
            base[nsp] = 1.0;
            for (int r = 0; r < nsp; r++) {
                double acc = 0;
                for (int k = 0; k <= nsp; k++) acc += th[r * (nsp + 1) + k] * base[k];
                yo[(n * osp + o) * nsp + r] = acc;
            }
        }
    }
    img_store(y, yo);
    free(pt);
    free(yo);
    return KILN_OK;
}

/* ---- RoiAlign ---------------------------------------------------------------------------------- */
static kiln_status roi_align_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0), *rois = ops_input(c, 1), *bi = ops_input(c, 2);
    if (!x || !rois || !bi) return ops_error(c, KILN_ERR_INVALID_MODEL, "inputs X, rois and batch_indices are required");
    if (!core_dtype_is_float(x->dtype) || !core_dtype_is_float(rois->dtype) || !core_dtype_is_int(bi->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "unsupported dtypes");
    if (x->ndim != 4) return ops_error(c, KILN_ERR_SHAPE, "X has %d dims, expected 4", x->ndim);
    if (rois->ndim != 2 || rois->dims[1] != 4) return ops_error(c, KILN_ERR_SHAPE, "rois must be (num_rois, 4)");
    if (bi->numel != rois->dims[0])
        return ops_error(c, KILN_ERR_SHAPE, "batch_indices has %lld values, expected %lld",
                         (long long)bi->numel, (long long)rois->dims[0]);
    const char *ms = ops_attr_string(c, "mode", "avg");
    bool maxm = !strcmp(ms, "max");
    if (!maxm && strcmp(ms, "avg")) return ops_error(c, KILN_ERR_INVALID_MODEL, "mode '%s' is not supported", ms);
    const char *cs = ops_attr_string(c, "coordinate_transformation_mode",
                                     ops_opset(c) >= 16 ? "half_pixel" : "output_half_pixel");
    bool half = !strcmp(cs, "half_pixel");
    if (!half && strcmp(cs, "output_half_pixel"))
        return ops_error(c, KILN_ERR_INVALID_MODEL, "coordinate_transformation_mode '%s' is not supported", cs);
    int64_t OH = ops_attr_int(c, "output_height", 1), OW = ops_attr_int(c, "output_width", 1);
    int64_t sr = ops_attr_int(c, "sampling_ratio", 0);
    double scale = ops_attr_float(c, "spatial_scale", 1.0f);
    if (OH < 1 || OW < 1 || sr < 0) return ops_error(c, KILN_ERR_INVALID_MODEL, "bad output size or sampling_ratio");
    int64_t R = rois->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    int64_t yd[4] = {R, C, OH, OW};
    core_tensor *y = ops_output(c, 0, x->dtype, 4, yd);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    double *px = img_load(x), *pr = img_load(rois), *yo = malloc(sizeof(double) * (size_t)y->numel);
    if (!px || !pr || !yo) { free(px); free(pr); free(yo); return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory"); }
    kiln_status st = KILN_OK;
    for (int64_t r = 0; r < R && !st; r++) {
        int64_t b = core_load_i64(bi->dtype, bi->data, r);
        if (b < 0 || b >= x->dims[0]) {
            st = ops_error(c, KILN_ERR_RUNTIME, "batch index %lld of roi %lld out of range", (long long)b, (long long)r);
            break;
        }
        double off = half ? 0.5 : 0.0;
        const double *ro = pr + r * 4;
        if (!isfinite(ro[0]) || !isfinite(ro[1]) || !isfinite(ro[2]) || !isfinite(ro[3])) {
            st = ops_error(c, KILN_ERR_RUNTIME, "roi %lld has non-finite coordinates", (long long)r);
            break;
        }
        double sw = ro[0] * scale - off, sh = ro[1] * scale - off;
        double ew = ro[2] * scale - off, eh = ro[3] * scale - off;
        double rw = ew - sw, rh = eh - sh;
        if (!half) { if (rw < 1) rw = 1; if (rh < 1) rh = 1; }
        double bh = rh / (double)OH, bw = rw / (double)OW;
        double ghd = sr > 0 ? (double)sr : ceil(rh / (double)OH);
        double gwd = sr > 0 ? (double)sr : ceil(rw / (double)OW);
        if (!(ghd <= 65536 && gwd <= 65536 && ghd * gwd <= 1e8)) {
            st = ops_error(c, KILN_ERR_RUNTIME, "roi %lld is too large to sample", (long long)r);
            break;
        }
        int64_t gh = ghd > 0 ? (int64_t)ghd : 0, gw = gwd > 0 ? (int64_t)gwd : 0;
        int64_t count = gh * gw > 1 ? gh * gw : 1;
        for (int64_t ch = 0; ch < C; ch++) {
            const double *xp = px + (b * C + ch) * H * W;
            for (int64_t ph = 0; ph < OH; ph++)
                for (int64_t pw = 0; pw < OW; pw++) {
                    double acc = 0;
                    bool any = false;
                    for (int64_t iy = 0; iy < gh; iy++) {
                        double yy = sh + (double)ph * bh + ((double)iy + 0.5) * bh / (double)gh;
                        for (int64_t ix = 0; ix < gw; ix++) {
                            double xx = sw + (double)pw * bw + ((double)ix + 0.5) * bw / (double)gw;
                            double v1 = 0, v2 = 0, v3 = 0, v4 = 0;
                            if (!(yy < -1.0 || yy > (double)H || xx < -1.0 || xx > (double)W) && H > 0 && W > 0) {
                                double yv = yy < 0 ? 0 : yy, xv = xx < 0 ? 0 : xx;
                                int64_t yl = (int64_t)yv, xl = (int64_t)xv, yh, xh;
                                if (yl >= H - 1) { yh = yl = H - 1; yv = (double)yl; } else yh = yl + 1;
                                if (xl >= W - 1) { xh = xl = W - 1; xv = (double)xl; } else xh = xl + 1;
                                double ly = yv - (double)yl, lx = xv - (double)xl, hy = 1 - ly, hx = 1 - lx;
                                v1 = hy * hx * xp[yl * W + xl];
                                v2 = hy * lx * xp[yl * W + xh];
                                v3 = ly * hx * xp[yh * W + xl];
                                v4 = ly * lx * xp[yh * W + xh];
                            }
                            if (maxm) {
                                double m = fmax(fmax(v1, v2), fmax(v3, v4));
                                if (!any || m > acc) acc = m;
                                any = true;
                            } else {
                                acc += v1 + v2 + v3 + v4;
                            }
                        }
                    }
                    if (!maxm) acc /= (double)count;
                    yo[((r * C + ch) * OH + ph) * OW + pw] = acc;
                }
        }
    }
    if (!st) img_store(y, yo);
    free(px); free(pr); free(yo);
    return st;
}

/* ---- ImageDecoder ---------------------------------------------------------------------------
 * Decodes BMP (8/24/32-bit uncompressed), PNM (P2/P3/P5/P6) and PNG (non-interlaced, bit
 * depth <= 8) into interleaved RGB/BGR/Grayscale uint8 (H, W, C). JPEG, TIFF, WebP and
 * JPEG 2000 need real codecs and are reported as unsupported. */

typedef struct img_rgb {
    int64_t w, h;
    uint8_t *px; /* w*h*3 RGB */
} img_rgb;

static uint32_t img_le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint32_t img_be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

/* Guards w*h against absurd headers before allocating. */
static bool img_alloc(img_rgb *im, int64_t w, int64_t h)
{
    if (w <= 0 || h <= 0 || w > (1 << 16) || h > (1 << 16)) return false;
    im->w = w;
    im->h = h;
    im->px = malloc((size_t)(w * h * 3));
    return im->px != NULL;
}

static const char *img_decode_bmp(const uint8_t *d, size_t n, img_rgb *im)
{
    if (n < 54) return "truncated BMP header";
    uint32_t off = img_le32(d + 10), dib = img_le32(d + 14);
    if (dib < 40) return "unsupported BMP header version";
    int32_t w = (int32_t)img_le32(d + 18), h = (int32_t)img_le32(d + 22);
    int bpp = d[28] | d[29] << 8;
    uint32_t comp = img_le32(d + 30);
    if (comp != 0) return "compressed BMP is not supported";
    if (bpp != 8 && bpp != 24 && bpp != 32) return "unsupported BMP bit depth";
    bool top_down = h < 0;
    int64_t hh = top_down ? -(int64_t)h : h;
    if (!img_alloc(im, w, hh)) return "bad BMP size";
    int64_t stride = ((int64_t)bpp * w + 31) / 32 * 4;
    if ((uint64_t)off + (uint64_t)(stride * hh) > n) return "truncated BMP pixel data";
    const uint8_t *pal = d + 14 + dib;
    uint32_t ncol = img_le32(d + 46);
    if (bpp == 8) {
        if (ncol == 0 || ncol > 256) ncol = 256;
        if (14 + (size_t)dib + 4 * (size_t)ncol > n) return "truncated BMP palette";
    }
    for (int64_t y = 0; y < hh; y++) {
        const uint8_t *row = d + off + (top_down ? y : hh - 1 - y) * stride;
        uint8_t *o = im->px + y * w * 3;
        for (int64_t x = 0; x < w; x++, o += 3) {
            const uint8_t *q;
            if (bpp == 8) {
                uint32_t i = row[x];
                if (i >= ncol) i = 0;
                q = pal + 4 * i;
            } else {
                q = row + x * (bpp / 8);
            }
            o[0] = q[2];
            o[1] = q[1];
            o[2] = q[0];
        }
    }
    return NULL;
}

/* Next PNM header integer (skipping whitespace and # comments); -1 on error. */
static int64_t img_pnm_int(const uint8_t *d, size_t n, size_t *pos)
{
    size_t i = *pos;
    for (;;) {
        while (i < n && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r')) i++;
        if (i < n && d[i] == '#') {
            while (i < n && d[i] != '\n') i++;
            continue;
        }
        break;
    }
    if (i >= n || d[i] < '0' || d[i] > '9') return -1;
    int64_t v = 0;
    while (i < n && d[i] >= '0' && d[i] <= '9') {
        v = v * 10 + (d[i] - '0');
        if (v > (1 << 30)) return -1;
        i++;
    }
    *pos = i;
    return v;
}

static const char *img_decode_pnm(const uint8_t *d, size_t n, img_rgb *im)
{
    if (n < 3 || d[0] != 'P') return "bad PNM header";
    int kind = d[1] - '0';
    if (kind != 2 && kind != 3 && kind != 5 && kind != 6) return "unsupported PNM kind";
    size_t pos = 2;
    int64_t w = img_pnm_int(d, n, &pos), h = img_pnm_int(d, n, &pos), mx = img_pnm_int(d, n, &pos);
    if (w < 1 || h < 1 || mx < 1 || mx > 255) return "unsupported PNM header";
    if (!img_alloc(im, w, h)) return "bad PNM size";
    int ch = (kind == 3 || kind == 6) ? 3 : 1;
    bool binary = kind >= 5;
    if (binary) {
        pos++; /* the single whitespace after maxval */
        if (pos + (size_t)(w * h * ch) > n) return "truncated PNM data";
    }
    for (int64_t i = 0; i < w * h; i++) {
        int v[3];
        for (int k = 0; k < ch; k++) {
            int64_t t = binary ? d[pos++] : img_pnm_int(d, n, &pos);
            if (t < 0) return "truncated PNM data";
            if (t > mx) t = mx;
            v[k] = (int)(mx == 255 ? t : t * 255 / mx);
        }
        for (int k = 0; k < 3; k++) im->px[i * 3 + k] = (uint8_t)v[ch == 3 ? k : 0];
    }
    return NULL;
}

/* inflate (RFC 1951): canonical Huffman decoding one bit at a time. */
typedef struct inf_state {
    const uint8_t *in;
    size_t n, pos;
    uint32_t bits;
    int nbits;
    uint8_t *out;
    size_t olen, ocap;
} inf_state;

typedef struct inf_huff {
    short count[16];
    short sym[320];
} inf_huff;

static int inf_getbits(inf_state *s, int need)
{
    while (s->nbits < need) {
        if (s->pos >= s->n) return -1;
        s->bits |= (uint32_t)s->in[s->pos++] << s->nbits;
        s->nbits += 8;
    }
    int v = (int)(s->bits & ((1u << need) - 1));
    s->bits >>= need;
    s->nbits -= need;
    return v;
}

static bool inf_build(inf_huff *h, const uint8_t *len, int n)
{
    short offs[16];
    memset(h->count, 0, sizeof h->count);
    for (int i = 0; i < n; i++) h->count[len[i]]++;
    int left = 1;
    for (int i = 1; i < 16; i++) {
        left <<= 1;
        left -= h->count[i];
        if (left < 0) return false; /* over-subscribed */
    }
    offs[1] = 0;
    for (int i = 1; i < 15; i++) offs[i + 1] = (short)(offs[i] + h->count[i]);
    for (int i = 0; i < n; i++)
        if (len[i]) h->sym[offs[len[i]]++] = (short)i;
    return true;
}

static int inf_decode(inf_state *s, const inf_huff *h)
{
    int code = 0, first = 0, index = 0;
    for (int l = 1; l < 16; l++) {
        int b = inf_getbits(s, 1);
        if (b < 0) return -1;
        code |= b;
        int cnt = h->count[l];
        if (code - cnt < first) return h->sym[index + (code - first)];
        index += cnt;
        first += cnt;
        first <<= 1;
        code <<= 1;
    }
    return -1;
}

static bool inf_put(inf_state *s, uint8_t v)
{
    if (s->olen >= s->ocap) return false;
    s->out[s->olen++] = v;
    return true;
}

static const char *inf_codes(inf_state *s, const inf_huff *lc, const inf_huff *dc)
{
    static const short lbase[29] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
                                    35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
    static const short lext[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
                                   3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
    static const int dbase[30] = {1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
                                  257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
                                  8193, 12289, 16385, 24577};
    static const short dext[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
                                   7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
    for (;;) {
        int sym = inf_decode(s, lc);
        if (sym < 0) return "corrupt deflate stream";
        if (sym < 256) {
            if (!inf_put(s, (uint8_t)sym)) return "PNG data larger than expected";
        } else if (sym == 256) {
            return NULL;
        } else {
            sym -= 257;
            if (sym >= 29) return "corrupt deflate length";
            int e = inf_getbits(s, lext[sym]);
            if (e < 0) return "truncated deflate stream";
            int len = lbase[sym] + e;
            int ds = inf_decode(s, dc);
            if (ds < 0 || ds >= 30) return "corrupt deflate distance";
            e = inf_getbits(s, dext[ds]);
            if (e < 0) return "truncated deflate stream";
            size_t dist = (size_t)(dbase[ds] + e);
            if (dist > s->olen) return "deflate distance too far back";
            for (int i = 0; i < len; i++)
                if (!inf_put(s, s->out[s->olen - dist])) return "PNG data larger than expected";
        }
    }
}

static const char *inf_inflate(inf_state *s)
{
    static const uint8_t order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
    inf_huff lc, dc;
    uint8_t len[320];
    int last;
    do {
        last = inf_getbits(s, 1);
        int type = inf_getbits(s, 2);
        if (last < 0 || type < 0) return "truncated deflate stream";
        if (type == 0) {
            s->bits = 0;
            s->nbits = 0;
            if (s->pos + 4 > s->n) return "truncated stored block";
            unsigned l = s->in[s->pos] | s->in[s->pos + 1] << 8;
            unsigned nl = s->in[s->pos + 2] | s->in[s->pos + 3] << 8;
            s->pos += 4;
            if ((l ^ 0xffffu) != nl || s->pos + l > s->n) return "corrupt stored block";
            for (unsigned i = 0; i < l; i++)
                if (!inf_put(s, s->in[s->pos + i])) return "PNG data larger than expected";
            s->pos += l;
        } else if (type == 1) {
            int i = 0;
            for (; i < 144; i++) len[i] = 8;
            for (; i < 256; i++) len[i] = 9;
            for (; i < 280; i++) len[i] = 7;
            for (; i < 288; i++) len[i] = 8;
            inf_build(&lc, len, 288);
            for (i = 0; i < 30; i++) len[i] = 5;
            inf_build(&dc, len, 30);
            const char *e = inf_codes(s, &lc, &dc);
            if (e) return e;
        } else if (type == 2) {
            int nlen = inf_getbits(s, 5), ndist = inf_getbits(s, 5), ncode = inf_getbits(s, 4);
            if (nlen < 0 || ndist < 0 || ncode < 0) return "truncated deflate stream";
            nlen += 257;
            ndist += 1;
            ncode += 4;
            if (nlen > 286 || ndist > 30) return "corrupt dynamic block";
            memset(len, 0, sizeof len);
            for (int i = 0; i < ncode; i++) {
                int v = inf_getbits(s, 3);
                if (v < 0) return "truncated deflate stream";
                len[order[i]] = (uint8_t)v;
            }
            if (!inf_build(&lc, len, 19)) return "corrupt code lengths";
            int idx = 0;
            while (idx < nlen + ndist) {
                int sym = inf_decode(s, &lc);
                if (sym < 0) return "corrupt code lengths";
                if (sym < 16) {
                    len[idx++] = (uint8_t)sym;
                    continue;
                }
                int rep, v = 0;
                if (sym == 16) {
                    if (idx == 0) return "corrupt code lengths";
                    v = len[idx - 1];
                    rep = 3 + inf_getbits(s, 2);
                } else if (sym == 17) {
                    rep = 3 + inf_getbits(s, 3);
                } else {
                    rep = 11 + inf_getbits(s, 7);
                }
                if (rep < 3 || idx + rep > nlen + ndist) return "corrupt code lengths";
                while (rep--) len[idx++] = (uint8_t)v;
            }
            if (!inf_build(&lc, len, nlen) || !inf_build(&dc, len + nlen, ndist))
                return "corrupt Huffman tables";
            const char *e = inf_codes(s, &lc, &dc);
            if (e) return e;
        } else {
            return "bad deflate block type";
        }
    } while (!last);
    return NULL;
}

static int img_paeth(int a, int b, int c)
{
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    if (pa <= pb && pa <= pc) return a;
    return pb <= pc ? b : c;
}

static const char *img_decode_png(const uint8_t *d, size_t n, img_rgb *im)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n < 8 || memcmp(d, sig, 8)) return "bad PNG signature";
    size_t pos = 8;
    int64_t w = 0, h = 0;
    int depth = 0, ctype = -1, interlace = 0;
    uint8_t pal[256 * 3] = {0};
    int npal = 0;
    uint8_t *idat = NULL;
    size_t idlen = 0;
    const char *err = NULL;
    while (pos + 12 <= n) {
        uint32_t len = img_be32(d + pos);
        const uint8_t *type = d + pos + 4, *body = d + pos + 8;
        if (len > n - pos - 12) { err = "truncated PNG chunk"; break; }
        if (!memcmp(type, "IHDR", 4) && len >= 13) {
            w = img_be32(body);
            h = img_be32(body + 4);
            depth = body[8];
            ctype = body[9];
            interlace = body[12];
        } else if (!memcmp(type, "PLTE", 4)) {
            npal = (int)(len / 3 > 256 ? 256 : len / 3);
            memcpy(pal, body, (size_t)npal * 3);
        } else if (!memcmp(type, "IDAT", 4)) {
            uint8_t *t = realloc(idat, idlen + len + 1);
            if (!t) { err = "out of memory"; break; }
            idat = t;
            memcpy(idat + idlen, body, len);
            idlen += len;
        } else if (!memcmp(type, "IEND", 4)) {
            break;
        }
        pos += 12 + (size_t)len;
    }
    int chans = ctype == 0 ? 1 : ctype == 2 ? 3 : ctype == 3 ? 1 : ctype == 4 ? 2 : ctype == 6 ? 4 : 0;
    if (!err && (chans == 0 || !idat)) err = "missing or unsupported PNG header";
    if (!err && (depth != 8 && !((ctype == 0 || ctype == 3) && (depth == 1 || depth == 2 || depth == 4))))
        err = "unsupported PNG bit depth";
    if (!err && interlace) err = "interlaced PNG is not supported";
    if (!err && !img_alloc(im, w, h)) err = "bad PNG size";
    if (err) { free(idat); return err; }
    int64_t bpp_bits = (int64_t)chans * depth, rowbytes = (w * bpp_bits + 7) / 8;
    int64_t bpp = bpp_bits < 8 ? 1 : bpp_bits / 8;
    inf_state s = {0};
    s.ocap = (size_t)((rowbytes + 1) * h);
    s.out = malloc(s.ocap);
    if (!s.out || idlen < 2) { free(idat); free(s.out); return s.out ? "truncated PNG data" : "out of memory"; }
    s.in = idat + 2; /* zlib header */
    s.n = idlen - 2;
    err = inf_inflate(&s);
    if (!err && s.olen != s.ocap) err = "PNG image data has the wrong size";
    for (int64_t y = 0; !err && y < h; y++) {
        uint8_t *row = s.out + y * (rowbytes + 1), ft = row[0];
        uint8_t *cur = row + 1, *prev = y > 0 ? s.out + (y - 1) * (rowbytes + 1) + 1 : NULL;
        if (ft > 4) { err = "bad PNG filter"; break; }
        for (int64_t i = 0; i < rowbytes; i++) {
            int a = i >= bpp ? cur[i - bpp] : 0, b = prev ? prev[i] : 0, c = (prev && i >= bpp) ? prev[i - bpp] : 0;
            int v = cur[i];
            switch (ft) {
            case 1: v += a; break;
            case 2: v += b; break;
            case 3: v += (a + b) / 2; break;
            case 4: v += img_paeth(a, b, c); break;
            default: break;
            }
            cur[i] = (uint8_t)v;
        }
        for (int64_t x = 0; x < w; x++) {
            uint8_t *o = im->px + (y * w + x) * 3;
            int v[4];
            if (depth < 8) {
                int64_t bit = x * depth;
                v[0] = (cur[bit / 8] >> (8 - depth - bit % 8)) & ((1 << depth) - 1);
                if (ctype == 0) v[0] = v[0] * 255 / ((1 << depth) - 1);
            } else {
                for (int k = 0; k < chans; k++) v[k] = cur[x * chans + k];
            }
            if (ctype == 3) {
                int i = v[0] < npal ? v[0] : 0;
                o[0] = pal[i * 3]; o[1] = pal[i * 3 + 1]; o[2] = pal[i * 3 + 2];
            } else if (chans >= 3) {
                o[0] = (uint8_t)v[0]; o[1] = (uint8_t)v[1]; o[2] = (uint8_t)v[2];
            } else {
                o[0] = o[1] = o[2] = (uint8_t)v[0];
            }
        }
    }
    free(idat);
    free(s.out);
    return err;
}

static kiln_status image_decoder_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x) return ops_error(c, KILN_ERR_INVALID_MODEL, "input encoded_stream is required");
    if (x->dtype != KILN_DTYPE_UINT8 || x->ndim != 1)
        return ops_error(c, KILN_ERR_DTYPE, "encoded_stream must be a 1-D uint8 tensor");
    const char *pf = ops_attr_string(c, "pixel_format", "RGB");
    int fmt = !strcmp(pf, "RGB") ? 0 : !strcmp(pf, "BGR") ? 1 : !strcmp(pf, "Grayscale") ? 2 : -1;
    if (fmt < 0) return ops_error(c, KILN_ERR_INVALID_MODEL, "pixel_format '%s' is not supported", pf);
    const uint8_t *d = x->data;
    size_t n = (size_t)x->numel;
    img_rgb im = {0};
    const char *err;
    if (n >= 2 && d[0] == 'B' && d[1] == 'M') err = img_decode_bmp(d, n, &im);
    else if (n >= 2 && d[0] == 'P' && d[1] >= '1' && d[1] <= '7') err = img_decode_pnm(d, n, &im);
    else if (n >= 8 && d[0] == 0x89 && d[1] == 'P') err = img_decode_png(d, n, &im);
    else {
        free(im.px);
        return ops_error(c, KILN_ERR_UNSUPPORTED, "image format not supported (BMP, PNM and PNG only)");
    }
    if (err) {
        free(im.px);
        return ops_error(c, KILN_ERR_RUNTIME, "cannot decode image: %s", err);
    }
    int64_t yd[3] = {im.h, im.w, fmt == 2 ? 1 : 3};
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_UINT8, 3, yd);
    if (!y) { free(im.px); return KILN_ERR_OUT_OF_MEMORY; }
    uint8_t *o = y->data;
    for (int64_t i = 0; i < im.w * im.h; i++) {
        const uint8_t *p = im.px + i * 3;
        if (fmt == 0) { o[3 * i] = p[0]; o[3 * i + 1] = p[1]; o[3 * i + 2] = p[2]; }
        else if (fmt == 1) { o[3 * i] = p[2]; o[3 * i + 1] = p[1]; o[3 * i + 2] = p[0]; }
        /* ITU-R 601-2 luma in 16.16 fixed point, as PIL's convert("L") */
        else o[i] = (uint8_t)((p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >> 16);
    }
    free(im.px);
    return KILN_OK;
}

const ops_schema ops_table_image[] = {
    {"Resize", "", 10, resize_run, 0},
    {"Upsample", "", 1, upsample_run, 0},
    {"GridSample", "", 16, grid_sample_run, 0},
    {"AffineGrid", "", 20, affine_grid_run, 0},
    {"RoiAlign", "", 10, roi_align_run, 0},
    {"ImageDecoder", "", 20, image_decoder_run, 0},
    OPS_TABLE_END
};
