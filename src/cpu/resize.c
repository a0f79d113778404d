/* resize.c — fast float32 Resize of the two spatial axes of 4-D tensors (the YOLO/FPN
 * upsampling): axes 2, 3 (NCHW) or, when those stay and axes 1, 2 change, axes 1, 2 of a
 * channels-last [N, H, W, C] tensor (whole channel vectors copied or blended per pixel).
 * Nearest and (bi)linear with every coordinate transformation but tf_crop_and_resize. Source
 * indices and weights come from the reference's own formulas (so nearest is an exact copy);
 * rows are gathered or blended, threaded over output rows. Antialias, exclude_outside,
 * cubic, axes, other ranks and dtypes go to the reference. */
#include "cpu/cpu_misc.h"
#include <math.h>
#include <string.h>

enum { RZ_NEAREST, RZ_LINEAR };
enum { RZ_HALF_PIXEL, RZ_HALF_PIXEL_SYM, RZ_PYTORCH_HALF_PIXEL, RZ_ALIGN_CORNERS, RZ_ASYMMETRIC };
enum { RZ_ROUND_PREFER_FLOOR, RZ_ROUND_PREFER_CEIL, RZ_FLOOR, RZ_CEIL, RZ_SIMPLE };

/* Per output position of one axis: the two taps (clamped) and their weights. */
static void rz_axis_table(int mode, int ctm, int nearest, int64_t in_w, int64_t out_w, double scale,
                          bool identity, int32_t *i0, int32_t *i1, float *w0, float *w1)
{
    const int n = 2;
    double out_f = scale * (double)in_w;
    for (int64_t o = 0; o < out_w; o++) {
        if (identity) {
            i0[o] = i1[o] = (int32_t)o;
            w0[o] = 0.0f;
            w1[o] = 1.0f;
            continue;
        }
        double y = (double)o, x;
        switch (ctm) {
        case RZ_ALIGN_CORNERS: x = out_f == 1 ? 0.0 : y * (double)(in_w - 1) / (out_f - 1); break;
        case RZ_ASYMMETRIC: x = y / scale; break;
        case RZ_PYTORCH_HALF_PIXEL: x = out_f == 1 ? -0.5 : (y + 0.5) / scale - 0.5; break;
        case RZ_HALF_PIXEL_SYM: {
            double adj = (double)out_w / out_f, center = (double)in_w / 2;
            x = center * (1 - adj) + (y + 0.5) / scale - 0.5;
            break;
        }
        default: x = (y + 0.5) / scale - 0.5; break;
        }
        x = fmin(fmax(x, -(double)n - 4.0), (double)in_w + (double)n + 4.0);
        double fl = floor(x);
        bool integral = x == fl;
        double ratio = integral ? 1.0 : x - fl, c0, c1;
        if (mode == RZ_LINEAR) {
            c0 = 1 - ratio;
            c1 = ratio;
        } else if (integral) {
            c0 = 0;
            c1 = 1;
        } else {
            switch (nearest) {
            case RZ_ROUND_PREFER_FLOOR: c0 = ratio <= 0.5; break;
            case RZ_ROUND_PREFER_CEIL: c0 = ratio < 0.5; break;
            case RZ_FLOOR: c0 = 1; break;
            case RZ_CEIL: c0 = 0; break;
            default: c0 = scale >= 1.0; break;
            }
            c1 = 1 - c0;
        }
        /* neighbours from x shifted by the edge pad width, as the reference picks them */
        double xp = x + 1.0, pfl = floor(xp), frac = xp - pfl;
        int64_t start = (int64_t)pfl + (frac == 0 ? -1 : 0) - 1;
        int64_t k0 = start, k1 = start + 1;
        k0 = k0 < 0 ? 0 : k0 >= in_w ? in_w - 1 : k0;
        k1 = k1 < 0 ? 0 : k1 >= in_w ? in_w - 1 : k1;
        i0[o] = (int32_t)k0;
        i1[o] = (int32_t)k1;
        w0[o] = (float)c0;
        w1[o] = (float)c1;
    }
}

typedef struct rz_job {
    const cpu_misc_ukernels *uk;
    int mode;
    int64_t H, W, OH, OW, tile, slot;
    const int32_t *y0, *y1, *x0, *x1;
    const float *wy0, *wy1, *wx0, *wx1;
    bool x_dup2; /* nearest, x source = ox / 2 */
    int64_t cpx;  /* floats per pixel: 1 (NCHW planes) or C (NHWC) */
    const float *x;
    float *y, *scratch;
} rz_job;

/* NHWC: output row r = (n, oy) of OW pixels of cpx floats; a pixel is one source pixel
 * (nearest) or a blend of two (linear) copied as a whole channel vector. */
static void rz_tile_nhwc(void *arg, int64_t b, int64_t e)
{
    const rz_job *j = arg;
    const int64_t C = j->cpx, rowf = j->W * C, orowf = j->OW * C;
    const size_t pix = (size_t)C * sizeof(float);
    float *tmp = j->scratch + (b / j->tile) * j->slot;
    int64_t prev_img = -1, prev_src = -1;
    const float *prev_out = NULL;
    for (int64_t r = b; r < e; r++) {
        int64_t img = r / j->OH, oy = r % j->OH;
        const float *xp = j->x + img * j->H * rowf;
        float *out = j->y + r * orowf;
        if (j->mode == RZ_NEAREST) {
            int64_t sy = j->wy0[oy] != 0.0f ? j->y0[oy] : j->y1[oy];
            if (img == prev_img && sy == prev_src) {
                memcpy(out, prev_out, (size_t)orowf * sizeof(float));
                continue;
            }
            const float *src = xp + sy * rowf;
            if (j->x_dup2) {
                int64_t ox = 0;
                for (; ox + 1 < j->OW; ox += 2) {
                    const float *sp = src + (ox >> 1) * C;
                    memcpy(out + ox * C, sp, pix);
                    memcpy(out + (ox + 1) * C, sp, pix);
                }
                if (ox < j->OW) memcpy(out + ox * C, src + (ox >> 1) * C, pix);
            } else {
                for (int64_t ox = 0; ox < j->OW; ox++)
                    memcpy(out + ox * C, src + (int64_t)(j->wx0[ox] != 0.0f ? j->x0[ox] : j->x1[ox]) * C, pix);
            }
            prev_img = img;
            prev_src = sy;
            prev_out = out;
        } else {
            /* a zero weight skips its tap (an unresized axis is then a plain copy) */
            const float *r1 = xp + j->y1[oy] * rowf;
            if (j->wy0[oy] != 0.0f)
                j->uk->f32_lerp(xp + j->y0[oy] * rowf, r1, tmp, (size_t)rowf, j->wy0[oy], j->wy1[oy]);
            else
                memcpy(tmp, r1, (size_t)rowf * sizeof(float));
            for (int64_t ox = 0; ox < j->OW; ox++) {
                const float *v1 = tmp + (int64_t)j->x1[ox] * C;
                if (j->wx0[ox] != 0.0f)
                    j->uk->f32_lerp(tmp + (int64_t)j->x0[ox] * C, v1, out + ox * C, (size_t)C, j->wx0[ox], j->wx1[ox]);
                else
                    memcpy(out + ox * C, v1, pix);
            }
        }
    }
}

static void rz_tile(void *arg, int64_t b, int64_t e)
{
    const rz_job *j = arg;
    float *tmp = j->scratch + (b / j->tile) * j->slot;
    int64_t prev_plane = -1, prev_src = -1;
    float *prev_out = NULL;
    for (int64_t r = b; r < e; r++) {
        int64_t plane = r / j->OH, oy = r % j->OH;
        const float *xp = j->x + plane * j->H * j->W;
        float *out = j->y + r * j->OW;
        if (j->mode == RZ_NEAREST) {
            int64_t sy = j->wy0[oy] != 0.0f ? j->y0[oy] : j->y1[oy];
            if (plane == prev_plane && sy == prev_src) {
                memcpy(out, prev_out, (size_t)j->OW * sizeof(float));
                continue;
            }
            const float *src = xp + sy * j->W;
            if (j->x_dup2) {
                int64_t ox = 0;
                for (; ox + 1 < j->OW; ox += 2) out[ox] = out[ox + 1] = src[ox >> 1];
                if (ox < j->OW) out[ox] = src[ox >> 1];
            } else {
                for (int64_t ox = 0; ox < j->OW; ox++)
                    out[ox] = src[j->wx0[ox] != 0.0f ? j->x0[ox] : j->x1[ox]];
            }
            prev_plane = plane;
            prev_src = sy;
            prev_out = out;
        } else {
            /* a zero weight skips its tap (an unresized axis is then a plain copy) */
            const float *r1 = xp + j->y1[oy] * j->W;
            if (j->wy0[oy] != 0.0f)
                j->uk->f32_lerp(xp + j->y0[oy] * j->W, r1, tmp, (size_t)j->W, j->wy0[oy], j->wy1[oy]);
            else
                memcpy(tmp, r1, (size_t)j->W * sizeof(float));
            for (int64_t ox = 0; ox < j->OW; ox++) {
                float v = tmp[j->x1[ox]];
                out[ox] = j->wx0[ox] != 0.0f ? j->wx0[ox] * tmp[j->x0[ox]] + j->wx1[ox] * v : v;
            }
        }
    }
}

kiln_status cpu_resize_run(ops_ctx *c)
{
    int opset = ops_opset(c);
    const core_tensor *x = ops_input(c, 0);
    if (!x || x->dtype != KILN_DTYPE_FLOAT || x->ndim != 4 || ops_has_attr(c, "axes")) return ops_run_reference(c);
    const char *ms = ops_attr_string(c, "mode", "nearest");
    int mode, ctm = RZ_ASYMMETRIC, nearest = RZ_SIMPLE;
    if (!strcmp(ms, "nearest")) mode = RZ_NEAREST;
    else if (!strcmp(ms, "linear") || !strcmp(ms, "bilinear")) mode = RZ_LINEAR;
    else return ops_run_reference(c);
    if (opset >= 11) {
        const char *cs = ops_attr_string(c, "coordinate_transformation_mode", "half_pixel");
        if (!strcmp(cs, "half_pixel")) ctm = RZ_HALF_PIXEL;
        else if (!strcmp(cs, "half_pixel_symmetric")) ctm = RZ_HALF_PIXEL_SYM;
        else if (!strcmp(cs, "pytorch_half_pixel")) ctm = RZ_PYTORCH_HALF_PIXEL;
        else if (!strcmp(cs, "align_corners")) ctm = RZ_ALIGN_CORNERS;
        else if (!strcmp(cs, "asymmetric")) ctm = RZ_ASYMMETRIC;
        else return ops_run_reference(c);
        const char *ns = ops_attr_string(c, "nearest_mode", "round_prefer_floor");
        if (!strcmp(ns, "round_prefer_floor")) nearest = RZ_ROUND_PREFER_FLOOR;
        else if (!strcmp(ns, "round_prefer_ceil")) nearest = RZ_ROUND_PREFER_CEIL;
        else if (!strcmp(ns, "floor")) nearest = RZ_FLOOR;
        else if (!strcmp(ns, "ceil")) nearest = RZ_CEIL;
        else return ops_run_reference(c);
    }
    if (ops_attr_int(c, "exclude_outside", 0) != 0) return ops_run_reference(c);
    if (mode == RZ_LINEAR && ops_attr_int(c, "antialias", 0) != 0) return ops_run_reference(c);
    const core_tensor *scales_t = opset < 11 ? ops_input(c, 1) : ops_input(c, 2);
    const core_tensor *sizes_t = opset < 11 ? NULL : ops_input(c, 3);
    if (scales_t && scales_t->numel == 0) scales_t = NULL;
    if (sizes_t && sizes_t->numel == 0) sizes_t = NULL;
    if (!scales_t == !sizes_t) return ops_run_reference(c);
    double sc[4];
    int64_t out[4];
    if (scales_t) {
        if (scales_t->numel != 4 || scales_t->dtype != KILN_DTYPE_FLOAT) return ops_run_reference(c);
        for (int i = 0; i < 4; i++) {
            sc[i] = ((const float *)scales_t->data)[i];
            if (!(sc[i] > 0) || !isfinite(sc[i])) return ops_run_reference(c);
            double o = floor(sc[i] * (double)x->dims[i]);
            if (o > (double)INT32_MAX) return ops_run_reference(c);
            out[i] = (int64_t)o;
        }
    } else {
        const char *pol = ops_attr_string(c, "keep_aspect_ratio_policy", "stretch");
        if (strcmp(pol, "stretch") || sizes_t->numel != 4 || sizes_t->dtype != KILN_DTYPE_INT64)
            return ops_run_reference(c);
        for (int i = 0; i < 4; i++) {
            out[i] = ((const int64_t *)sizes_t->data)[i];
            if (out[i] < 0 || out[i] > INT32_MAX || x->dims[i] == 0) return ops_run_reference(c);
            sc[i] = (double)out[i] / (double)x->dims[i];
        }
    }
    /* batch and channel axes must be left alone: axes 0, 1 (NCHW, resizing 2, 3) or else
     * axes 0, 3 (channels-last, resizing 1, 2) */
    bool keep[4];
    for (int i = 0; i < 4; i++) keep[i] = out[i] == x->dims[i] && fabs(sc[i] - 1.0) <= 1e-9;
    bool nhwc = false;
    if (!keep[0] || !keep[1]) {
        if (!keep[0] || !keep[3]) return ops_run_reference(c);
        nhwc = true;
    }
    const int ah = nhwc ? 1 : 2, aw = nhwc ? 2 : 3;
    const int64_t cpx = nhwc ? x->dims[3] : 1, planes = nhwc ? x->dims[0] : x->dims[0] * x->dims[1];
    int64_t H = x->dims[ah], W = x->dims[aw], OH = out[ah], OW = out[aw];
    if ((H == 0 || W == 0) && OH * OW > 0) return ops_run_reference(c);
    if (H > INT32_MAX || W > INT32_MAX) return ops_run_reference(c);
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_FLOAT, 4, out);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    int64_t rows = planes * OH, n_tiles = 0;
    rz_job j;
    memset(&j, 0, sizeof j);
    j.tile = cpu_misc_tile(ops_threadpool(c), rows, 4096 / (OW * cpx) + 1, &n_tiles);
    j.slot = mode == RZ_LINEAR ? (W * cpx + 15) & ~(int64_t)15 : 0;
    size_t tab = (size_t)(2 * (OH + OW)) * (sizeof(int32_t) + sizeof(float));
    size_t bytes = tab + 64 + (size_t)(n_tiles * j.slot) * sizeof(float);
    char *mem = ops_scratch(c, bytes);
    if (!mem) return KILN_ERR_OUT_OF_MEMORY;
    float *fw = (float *)mem; /* wy0 wy1 wx0 wx1 */
    int32_t *iw = (int32_t *)(fw + 2 * (OH + OW));
    j.wy0 = fw;
    j.wy1 = fw + OH;
    j.wx0 = fw + 2 * OH;
    j.wx1 = fw + 2 * OH + OW;
    j.y0 = iw;
    j.y1 = iw + OH;
    j.x0 = iw + 2 * OH;
    j.x1 = iw + 2 * OH + OW;
    j.scratch = (float *)(((uintptr_t)(mem + tab) + 63) & ~(uintptr_t)63);
    bool id_h = keep[ah], id_w = keep[aw];
    rz_axis_table(mode, ctm, nearest, H, OH, sc[ah], id_h, (int32_t *)j.y0, (int32_t *)j.y1, (float *)j.wy0,
                  (float *)j.wy1);
    rz_axis_table(mode, ctm, nearest, W, OW, sc[aw], id_w, (int32_t *)j.x0, (int32_t *)j.x1, (float *)j.wx0,
                  (float *)j.wx1);
    j.x_dup2 = mode == RZ_NEAREST;
    for (int64_t ox = 0; ox < OW && j.x_dup2; ox++)
        j.x_dup2 = (j.wx0[ox] != 0.0f ? j.x0[ox] : j.x1[ox]) == ox / 2;
    j.uk = cpu_misc_ukernels_get();
    j.mode = mode;
    j.H = H;
    j.W = W;
    j.OH = OH;
    j.OW = OW;
    j.cpx = cpx;
    j.x = x->data;
    j.y = y->data;
    core_threadpool_parallel_for(j.tile >= rows ? NULL : ops_threadpool(c), rows, j.tile,
                                 nhwc ? rz_tile_nhwc : rz_tile, &j);
    return KILN_OK;
}
