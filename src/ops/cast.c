/* cast.c — reference kernels for Cast, CastLike and BitCast: conversions between every
 * numeric dtype (float8/float4/sub-byte ints included) and strings, with ONNX rounding. */
#include "ops/ops.h"
#include "ops/util.h"
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { CAST_ROUND_UP, CAST_ROUND_NEAREST, CAST_ROUND_DOWN };

typedef struct cast_opts {
    bool saturate;  /* float8 targets: clamp overflow to the largest finite value */
    int round_mode; /* FLOAT8E8M0 target only */
} cast_opts;

/* Elements go through a small buffer: one typed loop per (source, dtype) and one per
 * (dtype, target), instead of a kernel for every pair. */
#define CAST_CHUNK 1024

static bool cast_is_float(kiln_dtype t)
{
    switch (t) {
    case KILN_DTYPE_FLOAT: case KILN_DTYPE_DOUBLE: case KILN_DTYPE_FLOAT16:
    case KILN_DTYPE_BFLOAT16: case KILN_DTYPE_FLOAT8E4M3FN: case KILN_DTYPE_FLOAT8E4M3FNUZ:
    case KILN_DTYPE_FLOAT8E5M2: case KILN_DTYPE_FLOAT8E5M2FNUZ: case KILN_DTYPE_FLOAT8E8M0:
    case KILN_DTYPE_FLOAT4E2M1:
        return true;
    default: return false;
    }
}

static bool cast_is_intlike(kiln_dtype t)
{
    switch (t) {
    case KILN_DTYPE_UINT8: case KILN_DTYPE_INT8: case KILN_DTYPE_UINT16: case KILN_DTYPE_INT16:
    case KILN_DTYPE_INT32: case KILN_DTYPE_INT64: case KILN_DTYPE_BOOL: case KILN_DTYPE_UINT32:
    case KILN_DTYPE_UINT64: case KILN_DTYPE_UINT4: case KILN_DTYPE_INT4: case KILN_DTYPE_UINT2:
    case KILN_DTYPE_INT2:
        return true;
    default: return false;
    }
}

static bool cast_supported(kiln_dtype t)
{
    return cast_is_float(t) || cast_is_intlike(t) || t == KILN_DTYPE_STRING;
}

/* E8M0 with an explicit rounding mode, following the ONNX reference: the f32 exponent
 * field, bumped by one when rounding says so; saturate stops at 0xFE instead of NaN. */
static uint8_t cast_f32_to_e8m0(float f, const cast_opts *o)
{
    if (o->round_mode == CAST_ROUND_UP) return core_f32_to_f8(KILN_DTYPE_FLOAT8E8M0, f, o->saturate);
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint32_t e = (u >> 23) & 0xFF;
    if (e == 0xFF) return 0xFF;
    if (o->round_mode == CAST_ROUND_NEAREST) {
        bool g = (u & 0x400000) != 0, r = (u & 0x200000) != 0, s = (u & 0x1FFFFF) != 0;
        bool up = g && (r || s || e > 0);
        if (up && !(o->saturate && e == 0xFE)) e++;
    }
    return (uint8_t)e;
}

/* ---- loading into the buffer --------------------------------------------------------- */

static void cast_load_f64(kiln_dtype t, const void *src, int64_t off, int64_t n, double *out)
{
    switch (t) {
#define LOAD_CASE(DT, TY, EXPR) \
    case DT: { const TY *p = (const TY *)src + off; \
               for (int64_t i = 0; i < n; i++) { TY v = p[i]; out[i] = (EXPR); } break; }
    LOAD_CASE(KILN_DTYPE_FLOAT, float, v)
    LOAD_CASE(KILN_DTYPE_DOUBLE, double, v)
    LOAD_CASE(KILN_DTYPE_FLOAT16, uint16_t, core_f16_to_f32(v))
    LOAD_CASE(KILN_DTYPE_BFLOAT16, uint16_t, core_bf16_to_f32(v))
    LOAD_CASE(KILN_DTYPE_FLOAT4E2M1, uint8_t, core_f4e2m1_to_f32(v))
#undef LOAD_CASE
    default: {
        const uint8_t *p = (const uint8_t *)src + off;
        for (int64_t i = 0; i < n; i++) out[i] = core_f8_to_f32(t, p[i]);
        break;
    }
    }
}

/* Integers (and bool) load as int64; UINT64 loads its bits (the caller knows it is
 * unsigned). */
static void cast_load_i64(kiln_dtype t, const void *src, int64_t off, int64_t n, int64_t *out)
{
    switch (t) {
#define LOAD_CASE(DT, TY) \
    case DT: { const TY *p = (const TY *)src + off; \
               for (int64_t i = 0; i < n; i++) { out[i] = (int64_t)p[i]; } break; }
    LOAD_CASE(KILN_DTYPE_UINT8, uint8_t)
    LOAD_CASE(KILN_DTYPE_UINT4, uint8_t)
    LOAD_CASE(KILN_DTYPE_UINT2, uint8_t)
    LOAD_CASE(KILN_DTYPE_INT8, int8_t)
    LOAD_CASE(KILN_DTYPE_INT4, int8_t)
    LOAD_CASE(KILN_DTYPE_INT2, int8_t)
    LOAD_CASE(KILN_DTYPE_UINT16, uint16_t)
    LOAD_CASE(KILN_DTYPE_INT16, int16_t)
    LOAD_CASE(KILN_DTYPE_UINT32, uint32_t)
    LOAD_CASE(KILN_DTYPE_INT32, int32_t)
    LOAD_CASE(KILN_DTYPE_INT64, int64_t)
    LOAD_CASE(KILN_DTYPE_UINT64, uint64_t)
#undef LOAD_CASE
    case KILN_DTYPE_BOOL: {
        const uint8_t *p = (const uint8_t *)src + off;
        for (int64_t i = 0; i < n; i++) out[i] = p[i] != 0;
        break;
    }
    default:
        for (int64_t i = 0; i < n; i++) out[i] = 0;
        break;
    }
}

/* ---- storing from the buffer --------------------------------------------------------- */

/* Low `bits` bits of v, sign-extended when sgn: the wrap-around of integer casts. */
static int64_t cast_wrap_bits(uint64_t v, int bits, bool sgn)
{
    uint64_t m = (1u << bits) - 1;
    v &= m;
    if (sgn && (v >> (bits - 1))) return (int64_t)v - (int64_t)(m + 1);
    return (int64_t)v;
}

static void cast_store_i64(kiln_dtype t, void *dst, int64_t off, int64_t n, const int64_t *in,
                           bool src_unsigned, const cast_opts *o)
{
    switch (t) {
#define STORE_CASE(DT, TY) \
    case DT: { TY *p = (TY *)dst + off; \
               for (int64_t i = 0; i < n; i++) { p[i] = (TY)(uint64_t)in[i]; } break; }
    STORE_CASE(KILN_DTYPE_UINT8, uint8_t)
    STORE_CASE(KILN_DTYPE_INT8, int8_t)
    STORE_CASE(KILN_DTYPE_UINT16, uint16_t)
    STORE_CASE(KILN_DTYPE_INT16, int16_t)
    STORE_CASE(KILN_DTYPE_UINT32, uint32_t)
    STORE_CASE(KILN_DTYPE_INT32, int32_t)
    STORE_CASE(KILN_DTYPE_INT64, int64_t)
    STORE_CASE(KILN_DTYPE_UINT64, uint64_t)
#undef STORE_CASE
    case KILN_DTYPE_BOOL: {
        uint8_t *p = (uint8_t *)dst + off;
        for (int64_t i = 0; i < n; i++) p[i] = in[i] != 0;
        break;
    }
    case KILN_DTYPE_UINT4: case KILN_DTYPE_INT4: case KILN_DTYPE_UINT2: case KILN_DTYPE_INT2: {
        int bits = (t == KILN_DTYPE_UINT4 || t == KILN_DTYPE_INT4) ? 4 : 2;
        bool sgn = t == KILN_DTYPE_INT4 || t == KILN_DTYPE_INT2;
        if (sgn) {
            int8_t *p = (int8_t *)dst + off;
            for (int64_t i = 0; i < n; i++) p[i] = (int8_t)cast_wrap_bits((uint64_t)in[i], bits, true);
        } else {
            uint8_t *p = (uint8_t *)dst + off;
            for (int64_t i = 0; i < n; i++) p[i] = (uint8_t)cast_wrap_bits((uint64_t)in[i], bits, false);
        }
        break;
    }
    case KILN_DTYPE_FLOAT: {
        float *p = (float *)dst + off;
        if (src_unsigned) for (int64_t i = 0; i < n; i++) p[i] = (float)(uint64_t)in[i];
        else for (int64_t i = 0; i < n; i++) p[i] = (float)in[i];
        break;
    }
    case KILN_DTYPE_DOUBLE: {
        double *p = (double *)dst + off;
        if (src_unsigned) for (int64_t i = 0; i < n; i++) p[i] = (double)(uint64_t)in[i];
        else for (int64_t i = 0; i < n; i++) p[i] = (double)in[i];
        break;
    }
    default: {
        /* the other float formats: through float32 */
        uint8_t *p8 = (uint8_t *)dst + off;
        uint16_t *p16 = (uint16_t *)dst + off;
        for (int64_t i = 0; i < n; i++) {
            float f = src_unsigned ? (float)(uint64_t)in[i] : (float)in[i];
            switch (t) {
            case KILN_DTYPE_FLOAT16: p16[i] = core_f32_to_f16(f); break;
            case KILN_DTYPE_BFLOAT16: p16[i] = core_f32_to_bf16(f); break;
            case KILN_DTYPE_FLOAT4E2M1: p8[i] = core_f32_to_f4e2m1(f); break;
            case KILN_DTYPE_FLOAT8E8M0: p8[i] = cast_f32_to_e8m0(f, o); break;
            default: p8[i] = core_f32_to_f8(t, f, o->saturate); break;
            }
        }
        break;
    }
    }
}

/* Float to integer: truncation toward zero; out of range is undefined in ONNX, here it
 * clamps to the 64-bit range and then wraps to the target width (NaN gives 0). */
static int64_t cast_f64_to_i64_bits(double d, bool to_u64)
{
    if (d != d) return 0;
    if (to_u64 && d >= 9223372036854775808.0) {
        if (d >= 18446744073709551616.0) return (int64_t)UINT64_MAX;
        return (int64_t)(uint64_t)d;
    }
    if (d >= 9223372036854775807.0) return INT64_MAX;
    if (d <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)d;
}

static void cast_store_f64(kiln_dtype t, void *dst, int64_t off, int64_t n, const double *in,
                           const cast_opts *o, int64_t *scratch)
{
    switch (t) {
    case KILN_DTYPE_FLOAT: {
        float *p = (float *)dst + off;
        for (int64_t i = 0; i < n; i++) p[i] = (float)in[i];
        return;
    }
    case KILN_DTYPE_DOUBLE: memcpy((double *)dst + off, in, (size_t)n * sizeof(double)); return;
    case KILN_DTYPE_FLOAT16: {
        uint16_t *p = (uint16_t *)dst + off;
        for (int64_t i = 0; i < n; i++) p[i] = core_f32_to_f16((float)in[i]);
        return;
    }
    case KILN_DTYPE_BFLOAT16: {
        uint16_t *p = (uint16_t *)dst + off;
        for (int64_t i = 0; i < n; i++) p[i] = core_f32_to_bf16((float)in[i]);
        return;
    }
    case KILN_DTYPE_FLOAT4E2M1: {
        uint8_t *p = (uint8_t *)dst + off;
        for (int64_t i = 0; i < n; i++) p[i] = core_f32_to_f4e2m1((float)in[i]);
        return;
    }
    case KILN_DTYPE_FLOAT8E8M0: {
        uint8_t *p = (uint8_t *)dst + off;
        for (int64_t i = 0; i < n; i++) p[i] = cast_f32_to_e8m0((float)in[i], o);
        return;
    }
    case KILN_DTYPE_FLOAT8E4M3FN: case KILN_DTYPE_FLOAT8E4M3FNUZ: case KILN_DTYPE_FLOAT8E5M2:
    case KILN_DTYPE_FLOAT8E5M2FNUZ: {
        uint8_t *p = (uint8_t *)dst + off;
        for (int64_t i = 0; i < n; i++) p[i] = core_f32_to_f8(t, (float)in[i], o->saturate);
        return;
    }
    case KILN_DTYPE_BOOL: {
        uint8_t *p = (uint8_t *)dst + off;
        for (int64_t i = 0; i < n; i++) p[i] = in[i] != 0;
        return;
    }
    default: {
        bool u64 = t == KILN_DTYPE_UINT64;
        for (int64_t i = 0; i < n; i++) scratch[i] = cast_f64_to_i64_bits(in[i], u64);
        cast_store_i64(t, dst, off, n, scratch, false, o);
        return;
    }
    }
}

/* ---- strings ------------------------------------------------------------------------- */

/* ONNX: plain and scientific notation, and case-insensitive "INF", "+INF", "-INF", "NaN"
 * (strtod also takes "infinity"). Unparseable text gives 0. */
static double cast_parse_double(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n') s++;
    char *end;
    double d = strtod(s, &end);
    if (end == s) return 0.0;
    return d;
}

/* Integer targets read integer text exactly (int64 beyond 2^53); otherwise via double. */
static int64_t cast_parse_i64_bits(const char *s, bool to_u64)
{
    while (*s == ' ' || *s == '\t' || *s == '\n') s++;
    char *end;
    errno = 0;
    if (to_u64 && *s != '-') {
        unsigned long long u = strtoull(s, &end, 10);
        if (end != s && *end == '\0' && errno == 0) return (int64_t)(uint64_t)u;
    } else {
        long long v = strtoll(s, &end, 10);
        if (end != s && *end == '\0' && errno == 0) return (int64_t)v;
    }
    return cast_f64_to_i64_bits(cast_parse_double(s), to_u64);
}

/* Shortest text that reads back to the same value; ONNX's spelling of the specials. */
static void cast_format_float(double v, bool single, char *buf, size_t size)
{
    if (v != v) { snprintf(buf, size, "NaN"); return; }
    if (isinf(v)) { snprintf(buf, size, v > 0 ? "INF" : "-INF"); return; }
    int maxp = single ? 9 : 17;
    for (int p = 1; p <= maxp; p++) {
        snprintf(buf, size, "%.*g", p, v);
        if (single ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v) return;
    }
}

static kiln_status cast_to_string(ops_ctx *c, const core_tensor *x, core_tensor *y)
{
    char buf[64];
    double d[1];
    int64_t iv[1];
    for (int64_t i = 0; i < x->numel; i++) {
        if (x->dtype == KILN_DTYPE_STRING) {
            const char *s = ((char *const *)x->data)[i];
            if (!core_tensor_set_string(y, i, s ? s : "", s ? strlen(s) : 0))
                return KILN_ERR_OUT_OF_MEMORY;
            continue;
        }
        if (cast_is_float(x->dtype)) {
            cast_load_f64(x->dtype, x->data, i, 1, d);
            cast_format_float(d[0], x->dtype != KILN_DTYPE_DOUBLE, buf, sizeof buf);
        } else {
            cast_load_i64(x->dtype, x->data, i, 1, iv);
            if (x->dtype == KILN_DTYPE_UINT64) snprintf(buf, sizeof buf, "%" PRIu64, (uint64_t)iv[0]);
            else snprintf(buf, sizeof buf, "%" PRId64, iv[0]);
        }
        if (!core_tensor_set_string(y, i, buf, strlen(buf))) return KILN_ERR_OUT_OF_MEMORY;
    }
    (void)c;
    return KILN_OK;
}

static void cast_from_string(const core_tensor *x, core_tensor *y, const cast_opts *o)
{
    int64_t scratch[1];
    for (int64_t i = 0; i < x->numel; i++) {
        const char *s = ((char *const *)x->data)[i];
        if (!s) s = "";
        if (cast_is_float(y->dtype) || y->dtype == KILN_DTYPE_BOOL) {
            double d = cast_parse_double(s);
            cast_store_f64(y->dtype, y->data, i, 1, &d, o, scratch);
        } else {
            int64_t v = cast_parse_i64_bits(s, y->dtype == KILN_DTYPE_UINT64);
            cast_store_i64(y->dtype, y->data, i, 1, &v, false, o);
        }
    }
}

/* ---- kernels ------------------------------------------------------------------------- */

static kiln_status cast_read_opts(ops_ctx *c, cast_opts *o)
{
    o->saturate = ops_attr_int(c, "saturate", 1) != 0;
    const char *rm = ops_attr_string(c, "round_mode", "up");
    if (!strcmp(rm, "up")) o->round_mode = CAST_ROUND_UP;
    else if (!strcmp(rm, "nearest")) o->round_mode = CAST_ROUND_NEAREST;
    else if (!strcmp(rm, "down")) o->round_mode = CAST_ROUND_DOWN;
    else return ops_error(c, KILN_ERR_INVALID_MODEL, "round_mode '%s' is not up, nearest or down", rm);
    return KILN_OK;
}

static kiln_status cast_tensor(ops_ctx *c, const core_tensor *x, kiln_dtype to)
{
    if (!cast_supported(x->dtype))
        return ops_error(c, KILN_ERR_UNSUPPORTED, "cannot cast from %s", core_dtype_name(x->dtype));
    if (!cast_supported(to))
        return ops_error(c, KILN_ERR_UNSUPPORTED, "cannot cast to dtype %d (%s)", (int)to,
                         core_dtype_name(to));
    cast_opts o;
    kiln_status st = cast_read_opts(c, &o);
    if (st != KILN_OK) return st;
    core_tensor *y = ops_output(c, 0, to, x->ndim, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (x->numel == 0) return KILN_OK;
    if (to == KILN_DTYPE_STRING) {
        st = cast_to_string(c, x, y);
        return st == KILN_OK ? st : ops_error(c, st, "out of memory casting to string");
    }
    if (x->dtype == KILN_DTYPE_STRING) {
        cast_from_string(x, y, &o);
        return KILN_OK;
    }
    if (x->dtype == to && to != KILN_DTYPE_BOOL) {
        memcpy(y->data, x->data, (size_t)x->numel * core_dtype_size(to));
        return KILN_OK;
    }
    double dbuf[CAST_CHUNK];
    int64_t ibuf[CAST_CHUNK];
    bool src_float = cast_is_float(x->dtype);
    bool src_unsigned = x->dtype == KILN_DTYPE_UINT64;
    for (int64_t off = 0; off < x->numel; off += CAST_CHUNK) {
        int64_t n = x->numel - off < CAST_CHUNK ? x->numel - off : CAST_CHUNK;
        if (src_float) {
            cast_load_f64(x->dtype, x->data, off, n, dbuf);
            cast_store_f64(to, y->data, off, n, dbuf, &o, ibuf);
        } else {
            cast_load_i64(x->dtype, x->data, off, n, ibuf);
            cast_store_i64(to, y->data, off, n, ibuf, src_unsigned, &o);
        }
    }
    return KILN_OK;
}

static kiln_status cast_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x) return ops_error(c, KILN_ERR_INVALID_MODEL, "missing input 0");
    if (!ops_has_attr(c, "to")) return ops_error(c, KILN_ERR_INVALID_MODEL, "missing attribute 'to'");
    int64_t to = ops_attr_int(c, "to", 0);
    if (to <= 0 || to >= KILN_DTYPE_COUNT_)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "attribute 'to' = %lld is not a dtype", (long long)to);
    return cast_tensor(c, x, (kiln_dtype)to);
}

static kiln_status castlike_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    const core_tensor *like = ops_input(c, 1);
    if (!x || !like) return ops_error(c, KILN_ERR_INVALID_MODEL, "CastLike needs 2 inputs");
    return cast_tensor(c, x, like->dtype);
}

/* Bit width of an element as ONNX counts it (sub-byte types are held one per byte). */
static int cast_bit_width(kiln_dtype t)
{
    switch (t) {
    case KILN_DTYPE_UINT4: case KILN_DTYPE_INT4: case KILN_DTYPE_FLOAT4E2M1: return 4;
    case KILN_DTYPE_UINT2: case KILN_DTYPE_INT2: return 2;
    default: return (int)core_dtype_size(t) * 8;
    }
}

static kiln_status bitcast_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x) return ops_error(c, KILN_ERR_INVALID_MODEL, "missing input 0");
    int64_t to64 = ops_attr_int(c, "to", 0);
    if (to64 <= 0 || to64 >= KILN_DTYPE_COUNT_)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "attribute 'to' = %lld is not a dtype", (long long)to64);
    kiln_dtype to = (kiln_dtype)to64;
    if (to == KILN_DTYPE_STRING || x->dtype == KILN_DTYPE_STRING)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "BitCast does not take strings");
    if (!cast_supported(to) || !cast_supported(x->dtype))
        return ops_error(c, KILN_ERR_UNSUPPORTED, "BitCast between %s and %s is not supported",
                         core_dtype_name(x->dtype), core_dtype_name(to));
    int wi = cast_bit_width(x->dtype), wo = cast_bit_width(to);
    if (wi != wo)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "BitCast from %s (%d bits) to %s (%d bits): widths differ",
                         core_dtype_name(x->dtype), wi, core_dtype_name(to), wo);
    core_tensor *y = ops_output(c, 0, to, x->ndim, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (x->numel == 0) return KILN_OK;
    if (wi >= 8) {
        memcpy(y->data, x->data, (size_t)x->numel * core_dtype_size(to));
        if (to == KILN_DTYPE_BOOL) /* only 0 and 1 are bools */
            for (int64_t i = 0; i < y->numel; i++) ((uint8_t *)y->data)[i] = ((uint8_t *)y->data)[i] != 0;
        return KILN_OK;
    }
    /* Sub-byte: the low bits carry the value; signed types sign-extend into the byte. */
    bool sgn = to == KILN_DTYPE_INT4 || to == KILN_DTYPE_INT2;
    const uint8_t *src = x->data;
    uint8_t *dst = y->data;
    for (int64_t i = 0; i < x->numel; i++)
        dst[i] = (uint8_t)(int8_t)cast_wrap_bits(src[i], wi, sgn);
    return KILN_OK;
}

const ops_schema ops_table_cast[] = {
    {"Cast", "", 1, cast_run},
    {"CastLike", "", 15, castlike_run},
    {"BitCast", "", 26, bitcast_run},
    OPS_TABLE_END
};
