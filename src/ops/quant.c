/* quant.c — reference kernels for linear quantization: QuantizeLinear, DequantizeLinear
 * (per tensor, per axis, blocked; integer, 4/2-bit and float8/float4 types) and
 * DynamicQuantizeLinear. Rounding is round-half-to-even, as ONNX specifies. */
#include "ops/ops.h"
#include "ops/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Where the scale / zero point of each element of x lives. */
typedef struct qz_map {
    int mode;       /* 0 per tensor, 1 per axis, 2 blocked */
    int64_t inner;  /* product of x dims after axis */
    int64_t ax;     /* x dim at axis */
    int64_t pax;    /* parameter dim at axis (blocked) */
    int64_t bs;     /* block size (blocked) */
} qz_map;

static int64_t qz_index(const qz_map *m, int64_t i)
{
    if (m->mode == 0) return 0;
    int64_t in = i % m->inner, r = i / m->inner;
    int64_t a = r % m->ax, o = r / m->ax;
    if (m->mode == 1) return a;
    return (o * m->pax + a / m->bs) * m->inner + in;
}

/* Work out the mapping from x to the scale tensor s (axis/block_size attributes). */
static kiln_status qz_map_make(ops_ctx *c, const core_tensor *x, const core_tensor *s, qz_map *m)
{
    memset(m, 0, sizeof *m);
    int64_t block = ops_opset(c) >= 21 ? ops_attr_int(c, "block_size", 0) : 0;
    if (block < 0) return ops_error(c, KILN_ERR_INVALID_MODEL, "block_size %lld is negative", (long long)block);
    if (s->ndim == 0 || (s->numel == 1 && block == 0 && s->ndim <= 1)) return KILN_OK;
    int64_t axis = ops_axis(ops_attr_int(c, "axis", 1), x->ndim);
    if (axis < 0 || x->ndim == 0)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "axis %lld out of range for rank %d",
                         (long long)ops_attr_int(c, "axis", 1), x->ndim);
    m->ax = x->dims[axis];
    m->inner = 1;
    for (int i = (int)axis + 1; i < x->ndim; i++) m->inner *= x->dims[i];
    if (block == 0) {
        if (s->ndim != 1 || s->dims[0] != m->ax)
            return ops_error(c, KILN_ERR_SHAPE,
                             "per-axis scale must be 1-D with %lld elements (axis %lld)",
                             (long long)m->ax, (long long)axis);
        m->mode = 1;
        return KILN_OK;
    }
    if (s->ndim != x->ndim)
        return ops_error(c, KILN_ERR_SHAPE, "blocked scale has %d dims, x has %d", s->ndim, x->ndim);
    for (int i = 0; i < x->ndim; i++) {
        int64_t want = i == axis ? (x->dims[i] + block - 1) / block : x->dims[i];
        if (s->dims[i] != want)
            return ops_error(c, KILN_ERR_SHAPE, "blocked scale dim %d is %lld, expected %lld", i,
                             (long long)s->dims[i], (long long)want);
    }
    m->mode = 2;
    m->pax = s->dims[axis];
    m->bs = block;
    return KILN_OK;
}

static kiln_status qz_check_zp(ops_ctx *c, const core_tensor *s, const core_tensor *zp)
{
    if (!zp) return KILN_OK;
    if (zp->numel != s->numel)
        return ops_error(c, KILN_ERR_SHAPE, "zero point has %lld elements, scale has %lld",
                         (long long)zp->numel, (long long)s->numel);
    return KILN_OK;
}

/* Round v the way storing it in dtype t would (for computations numpy does in f16). */
static float qz_round_to(kiln_dtype t, float v)
{
    if (t == KILN_DTYPE_FLOAT16) return core_f16_to_f32(core_f32_to_f16(v));
    if (t == KILN_DTYPE_BFLOAT16) return core_bf16_to_f32(core_f32_to_bf16(v));
    return v;
}

/* Integer range of a quantized type; false for non-integer types. */
static bool qz_int_range(kiln_dtype t, int64_t *lo, int64_t *hi)
{
    switch (t) {
    case KILN_DTYPE_UINT8: *lo = 0; *hi = 255; return true;
    case KILN_DTYPE_INT8: *lo = -128; *hi = 127; return true;
    case KILN_DTYPE_UINT16: *lo = 0; *hi = 65535; return true;
    case KILN_DTYPE_INT16: *lo = -32768; *hi = 32767; return true;
    case KILN_DTYPE_UINT4: *lo = 0; *hi = 15; return true;
    case KILN_DTYPE_INT4: *lo = -8; *hi = 7; return true;
    case KILN_DTYPE_UINT2: *lo = 0; *hi = 3; return true;
    case KILN_DTYPE_INT2: *lo = -2; *hi = 1; return true;
    default: return false;
    }
}

static bool qz_is_f8(kiln_dtype t)
{
    return t == KILN_DTYPE_FLOAT8E4M3FN || t == KILN_DTYPE_FLOAT8E4M3FNUZ ||
           t == KILN_DTYPE_FLOAT8E5M2 || t == KILN_DTYPE_FLOAT8E5M2FNUZ;
}

static kiln_status quantize_run(ops_ctx *c)
{
    core_tensor *x = ops_input(c, 0), *s = ops_input(c, 1), *zp = ops_input(c, 2);
    if (!x || !s) return ops_error(c, KILN_ERR_INVALID_MODEL, "QuantizeLinear needs x and y_scale");
    if (!core_dtype_is_float(s->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "y_scale is %s, expected a float type", core_dtype_name(s->dtype));
    if (!core_dtype_is_float(x->dtype) && x->dtype != KILN_DTYPE_INT32)
        return ops_error(c, KILN_ERR_DTYPE, "x is %s", core_dtype_name(x->dtype));
    if (zp && zp->numel == 0 && s->numel != 0) zp = NULL;
    int64_t odt_attr = ops_opset(c) >= 21 ? ops_attr_int(c, "output_dtype", 0) : 0;
    kiln_dtype odt = KILN_DTYPE_UINT8;
    if (zp) {
        odt = zp->dtype;
        if (odt_attr && odt_attr != (int64_t)odt)
            return ops_error(c, KILN_ERR_DTYPE, "output_dtype %lld differs from zero point dtype %s",
                             (long long)odt_attr, core_dtype_name(odt));
    } else if (odt_attr) {
        odt = (kiln_dtype)odt_attr;
    }
    int64_t lo = 0, hi = 0;
    bool is_int = qz_int_range(odt, &lo, &hi);
    if (!is_int && !qz_is_f8(odt) && odt != KILN_DTYPE_FLOAT4E2M1)
        return ops_error(c, KILN_ERR_UNSUPPORTED, "output dtype %s", core_dtype_name(odt));
    qz_map m;
    kiln_status st = qz_map_make(c, x, s, &m);
    if (!st) st = qz_check_zp(c, s, zp);
    if (st) return st;
    bool saturate = ops_attr_int(c, "saturate", 1) != 0;
    int64_t prec = ops_opset(c) >= 23 ? ops_attr_int(c, "precision", 0) : 0;
    /* numpy divides in the common type of x and the scale (f16 / f16 stays f16) */
    kiln_dtype cdt = prec ? (kiln_dtype)prec : x->dtype == s->dtype ? x->dtype : KILN_DTYPE_FLOAT;
    core_tensor *y = ops_output(c, 0, odt, x->ndim, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t pi = qz_index(&m, i);
        float xv = qz_round_to(cdt, (float)core_load_f64(x->dtype, x->data, i));
        float sv = qz_round_to(cdt, (float)core_load_f64(s->dtype, s->data, pi));
        float v = qz_round_to(cdt, xv / sv);
        if (cdt == KILN_DTYPE_DOUBLE)
            v = (float)(core_load_f64(x->dtype, x->data, i) / core_load_f64(s->dtype, s->data, pi));
        if (is_int) {
            double r = nearbyint((double)v);
            if (zp) r += (double)core_load_i64(zp->dtype, zp->data, pi);
            if (!(r >= (double)lo)) r = (double)lo; /* NaN goes to lo */
            if (r > (double)hi) r = (double)hi;
            core_store_i64(odt, y->data, i, (int64_t)r);
        } else if (odt == KILN_DTYPE_FLOAT4E2M1) {
            if (zp) v += (float)core_load_f64(zp->dtype, zp->data, pi);
            ((uint8_t *)y->data)[i] = core_f32_to_f4e2m1(v);
        } else {
            ((uint8_t *)y->data)[i] = core_f32_to_f8(odt, v, saturate);
        }
    }
    return KILN_OK;
}

static kiln_status dequantize_run(ops_ctx *c)
{
    core_tensor *x = ops_input(c, 0), *s = ops_input(c, 1), *zp = ops_input(c, 2);
    if (!x || !s) return ops_error(c, KILN_ERR_INVALID_MODEL, "DequantizeLinear needs x and x_scale");
    if (!core_dtype_is_float(s->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "x_scale is %s, expected a float type", core_dtype_name(s->dtype));
    int64_t lo, hi;
    bool xf8 = qz_is_f8(x->dtype) || x->dtype == KILN_DTYPE_FLOAT4E2M1;
    if (!xf8 && !qz_int_range(x->dtype, &lo, &hi) && x->dtype != KILN_DTYPE_INT32)
        return ops_error(c, KILN_ERR_DTYPE, "x is %s, not a quantized type", core_dtype_name(x->dtype));
    if (zp && zp->numel == 0 && s->numel != 0) zp = NULL;
    if (zp && !xf8 && zp->dtype != x->dtype)
        return ops_error(c, KILN_ERR_DTYPE, "zero point is %s but x is %s",
                         core_dtype_name(zp->dtype), core_dtype_name(x->dtype));
    if (xf8) zp = NULL; /* float zero points must be 0 and do not shift the value */
    qz_map m;
    kiln_status st = qz_map_make(c, x, s, &m);
    if (!st) st = qz_check_zp(c, s, zp);
    if (st) return st;
    int64_t odt_attr = ops_opset(c) >= 23 ? ops_attr_int(c, "output_dtype", 0) : 0;
    kiln_dtype odt = odt_attr ? (kiln_dtype)odt_attr : s->dtype;
    if (!core_dtype_is_float(odt))
        return ops_error(c, KILN_ERR_DTYPE, "output_dtype %s is not a float type", core_dtype_name(odt));
    core_tensor *y = ops_output(c, 0, odt, x->ndim, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t pi = qz_index(&m, i);
        float v = (float)core_load_f64(x->dtype, x->data, i);
        if (zp) v -= (float)core_load_f64(zp->dtype, zp->data, pi);
        v *= (float)core_load_f64(s->dtype, s->data, pi);
        core_store_f64(odt, y->data, i, v);
    }
    return KILN_OK;
}

static kiln_status dynquant_run(ops_ctx *c)
{
    core_tensor *x = ops_input(c, 0);
    if (!x) return ops_error(c, KILN_ERR_INVALID_MODEL, "DynamicQuantizeLinear needs x");
    if (!core_dtype_is_float(x->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "x is %s, expected float", core_dtype_name(x->dtype));
    float mx = 0.0f, mn = 0.0f;
    for (int64_t i = 0; i < x->numel; i++) {
        float v = (float)core_load_f64(x->dtype, x->data, i);
        if (v > mx) mx = v;
        if (v < mn) mn = v;
    }
    float scale = (mx == mn ? 1.0f : (mx - mn)) / 255.0f;
    float zpf = 0.0f - mn / scale;
    if (zpf < 0.0f) zpf = 0.0f;
    if (zpf > 255.0f) zpf = 255.0f;
    float zpi = nearbyintf(zpf);
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_UINT8, x->ndim, x->dims);
    core_tensor *ys = y ? ops_output(c, 1, x->dtype, 0, NULL) : NULL;
    core_tensor *yz = ys ? ops_output(c, 2, KILN_DTYPE_UINT8, 0, NULL) : NULL;
    if (!yz) return KILN_ERR_OUT_OF_MEMORY;
    uint8_t *yd = y->data;
    for (int64_t i = 0; i < x->numel; i++) {
        float v = (float)core_load_f64(x->dtype, x->data, i);
        float r = nearbyintf(v / scale) + zpi;
        if (!(r >= 0.0f)) r = 0.0f;
        if (r > 255.0f) r = 255.0f;
        yd[i] = (uint8_t)r;
    }
    core_store_f64(ys->dtype, ys->data, 0, scale);
    ((uint8_t *)yz->data)[0] = (uint8_t)zpi;
    return KILN_OK;
}

const ops_schema ops_table_quant[] = {
    {"QuantizeLinear", "", 10, quantize_run},
    {"DequantizeLinear", "", 10, dequantize_run},
    {"DynamicQuantizeLinear", "", 11, dynquant_run},
    OPS_TABLE_END
};
