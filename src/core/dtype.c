/* dtype.c — dtype table, half-float conversions and generic element access. */
#include "core/core.h"
#include <math.h>
#include <string.h>

static const struct { const char *name; size_t size; } core_dtypes[KILN_DTYPE_COUNT_] = {
    [KILN_DTYPE_UNDEFINED] = {"undefined", 0},     [KILN_DTYPE_FLOAT] = {"float", 4},
    [KILN_DTYPE_UINT8] = {"uint8", 1},             [KILN_DTYPE_INT8] = {"int8", 1},
    [KILN_DTYPE_UINT16] = {"uint16", 2},           [KILN_DTYPE_INT16] = {"int16", 2},
    [KILN_DTYPE_INT32] = {"int32", 4},             [KILN_DTYPE_INT64] = {"int64", 8},
    [KILN_DTYPE_STRING] = {"string", sizeof(char *)}, [KILN_DTYPE_BOOL] = {"bool", 1},
    [KILN_DTYPE_FLOAT16] = {"float16", 2},         [KILN_DTYPE_DOUBLE] = {"double", 8},
    [KILN_DTYPE_UINT32] = {"uint32", 4},           [KILN_DTYPE_UINT64] = {"uint64", 8},
    [KILN_DTYPE_COMPLEX64] = {"complex64", 8},     [KILN_DTYPE_COMPLEX128] = {"complex128", 16},
    [KILN_DTYPE_BFLOAT16] = {"bfloat16", 2},       [KILN_DTYPE_FLOAT8E4M3FN] = {"float8e4m3fn", 1},
    [KILN_DTYPE_FLOAT8E4M3FNUZ] = {"float8e4m3fnuz", 1}, [KILN_DTYPE_FLOAT8E5M2] = {"float8e5m2", 1},
    [KILN_DTYPE_FLOAT8E5M2FNUZ] = {"float8e5m2fnuz", 1}, [KILN_DTYPE_UINT4] = {"uint4", 1},
    [KILN_DTYPE_INT4] = {"int4", 1},               [KILN_DTYPE_FLOAT4E2M1] = {"float4e2m1", 1},
    [KILN_DTYPE_FLOAT8E8M0] = {"float8e8m0", 1},   [KILN_DTYPE_UINT2] = {"uint2", 1},
    [KILN_DTYPE_INT2] = {"int2", 1},
};

size_t core_dtype_size(kiln_dtype t)
{
    return (unsigned)t < KILN_DTYPE_COUNT_ ? core_dtypes[t].size : 0;
}

const char *core_dtype_name(kiln_dtype t)
{
    return (unsigned)t < KILN_DTYPE_COUNT_ && core_dtypes[t].name ? core_dtypes[t].name : "undefined";
}

KILN_API const char *kiln_dtype_name(kiln_dtype t) { return core_dtype_name(t); }
KILN_API size_t kiln_dtype_size(kiln_dtype t) { return core_dtype_size(t); }

bool core_dtype_is_float(kiln_dtype t)
{
    switch (t) {
    case KILN_DTYPE_FLOAT: case KILN_DTYPE_DOUBLE: case KILN_DTYPE_FLOAT16: case KILN_DTYPE_BFLOAT16:
    case KILN_DTYPE_FLOAT8E4M3FN: case KILN_DTYPE_FLOAT8E4M3FNUZ: case KILN_DTYPE_FLOAT8E5M2:
    case KILN_DTYPE_FLOAT8E5M2FNUZ: case KILN_DTYPE_FLOAT4E2M1: case KILN_DTYPE_FLOAT8E8M0:
        return true;
    default: return false;
    }
}

bool core_dtype_is_int(kiln_dtype t)
{
    switch (t) {
    case KILN_DTYPE_UINT8: case KILN_DTYPE_INT8: case KILN_DTYPE_UINT16: case KILN_DTYPE_INT16:
    case KILN_DTYPE_INT32: case KILN_DTYPE_INT64: case KILN_DTYPE_UINT32: case KILN_DTYPE_UINT64:
    case KILN_DTYPE_UINT4: case KILN_DTYPE_INT4: case KILN_DTYPE_UINT2: case KILN_DTYPE_INT2:
        return true;
    default: return false;
    }
}

bool core_dtype_is_signed(kiln_dtype t)
{
    switch (t) {
    case KILN_DTYPE_INT8: case KILN_DTYPE_INT16: case KILN_DTYPE_INT32: case KILN_DTYPE_INT64:
    case KILN_DTYPE_INT4: case KILN_DTYPE_INT2:
        return true;
    default: return core_dtype_is_float(t);
    }
}

float core_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { /* subnormal: normalise */
            int e = -1;
            do { e++; man <<= 1; } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
    else bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t core_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 | ((ax >> 13) & 0x3ff) : 0));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to inf */
    if (ax < 0x38800000u) { /* subnormal or zero in f16 */
        if (ax < 0x33000000u) return (uint16_t)sign; /* < half the smallest subnormal */
        uint32_t man = (ax & 0x7fffff) | 0x800000;
        int shift = 113 - (int)(ax >> 23) + 13; /* 126-14 ... */
        uint32_t r = man >> shift;
        uint32_t rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((ax >> 13) - ((127 - 15) << 10));
    uint32_t rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

float core_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t core_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
    uint32_t lsb = (x >> 16) & 1;
    x += 0x7fff + lsb;
    return (uint16_t)(x >> 16);
}

double core_load_f64(kiln_dtype t, const void *data, int64_t i)
{
    switch (t) {
    case KILN_DTYPE_FLOAT: return ((const float *)data)[i];
    case KILN_DTYPE_DOUBLE: return ((const double *)data)[i];
    case KILN_DTYPE_FLOAT16: return core_f16_to_f32(((const uint16_t *)data)[i]);
    case KILN_DTYPE_BFLOAT16: return core_bf16_to_f32(((const uint16_t *)data)[i]);
    case KILN_DTYPE_FLOAT8E4M3FN: case KILN_DTYPE_FLOAT8E4M3FNUZ: case KILN_DTYPE_FLOAT8E5M2:
    case KILN_DTYPE_FLOAT8E5M2FNUZ: case KILN_DTYPE_FLOAT8E8M0:
        return core_f8_to_f32(t, ((const uint8_t *)data)[i]);
    case KILN_DTYPE_FLOAT4E2M1: return core_f4e2m1_to_f32(((const uint8_t *)data)[i]);
    case KILN_DTYPE_UINT64: return (double)((const uint64_t *)data)[i];
    default: return (double)core_load_i64(t, data, i);
    }
}

int64_t core_load_i64(kiln_dtype t, const void *data, int64_t i)
{
    switch (t) {
    case KILN_DTYPE_UINT8: case KILN_DTYPE_BOOL: case KILN_DTYPE_UINT4: case KILN_DTYPE_UINT2:
        return ((const uint8_t *)data)[i];
    case KILN_DTYPE_INT8: case KILN_DTYPE_INT4: case KILN_DTYPE_INT2: return ((const int8_t *)data)[i];
    case KILN_DTYPE_UINT16: return ((const uint16_t *)data)[i];
    case KILN_DTYPE_INT16: return ((const int16_t *)data)[i];
    case KILN_DTYPE_INT32: return ((const int32_t *)data)[i];
    case KILN_DTYPE_INT64: return ((const int64_t *)data)[i];
    case KILN_DTYPE_UINT32: return ((const uint32_t *)data)[i];
    case KILN_DTYPE_UINT64: return (int64_t)((const uint64_t *)data)[i];
    case KILN_DTYPE_STRING: return 0;
    default: {
        double d = core_load_f64(t, data, i);
        if (d != d) return 0;
        if (d >= 9.2233720368547758e18) return INT64_MAX;
        if (d <= -9.2233720368547758e18) return INT64_MIN;
        return (int64_t)d;
    }
    }
}

void core_store_f64(kiln_dtype t, void *data, int64_t i, double v)
{
    switch (t) {
    case KILN_DTYPE_FLOAT: ((float *)data)[i] = (float)v; return;
    case KILN_DTYPE_DOUBLE: ((double *)data)[i] = v; return;
    case KILN_DTYPE_FLOAT16: ((uint16_t *)data)[i] = core_f32_to_f16((float)v); return;
    case KILN_DTYPE_BFLOAT16: ((uint16_t *)data)[i] = core_f32_to_bf16((float)v); return;
    case KILN_DTYPE_FLOAT8E4M3FN: case KILN_DTYPE_FLOAT8E4M3FNUZ: case KILN_DTYPE_FLOAT8E5M2:
    case KILN_DTYPE_FLOAT8E5M2FNUZ: case KILN_DTYPE_FLOAT8E8M0:
        ((uint8_t *)data)[i] = core_f32_to_f8(t, (float)v, true); return;
    case KILN_DTYPE_FLOAT4E2M1: ((uint8_t *)data)[i] = core_f32_to_f4e2m1((float)v); return;
    case KILN_DTYPE_BOOL: ((uint8_t *)data)[i] = v != 0; return;
    case KILN_DTYPE_UINT64: ((uint64_t *)data)[i] = v <= 0 || v != v ? 0 : v >= 1.8446744073709552e19 ? UINT64_MAX : (uint64_t)v; return;
    case KILN_DTYPE_STRING: return;
    default: {
        int64_t x;
        if (v != v) x = 0;
        else if (v >= 9.2233720368547758e18) x = INT64_MAX;
        else if (v <= -9.2233720368547758e18) x = INT64_MIN;
        else x = (int64_t)v;
        core_store_i64(t, data, i, x);
        return;
    }
    }
}

void core_store_i64(kiln_dtype t, void *data, int64_t i, int64_t v)
{
    switch (t) {
    case KILN_DTYPE_UINT8: case KILN_DTYPE_UINT4: case KILN_DTYPE_UINT2: ((uint8_t *)data)[i] = (uint8_t)v; return;
    case KILN_DTYPE_BOOL: ((uint8_t *)data)[i] = v != 0; return;
    case KILN_DTYPE_INT8: case KILN_DTYPE_INT4: case KILN_DTYPE_INT2: ((int8_t *)data)[i] = (int8_t)v; return;
    case KILN_DTYPE_UINT16: ((uint16_t *)data)[i] = (uint16_t)v; return;
    case KILN_DTYPE_INT16: ((int16_t *)data)[i] = (int16_t)v; return;
    case KILN_DTYPE_INT32: ((int32_t *)data)[i] = (int32_t)v; return;
    case KILN_DTYPE_INT64: ((int64_t *)data)[i] = v; return;
    case KILN_DTYPE_UINT32: ((uint32_t *)data)[i] = (uint32_t)v; return;
    case KILN_DTYPE_UINT64: ((uint64_t *)data)[i] = (uint64_t)v; return;
    case KILN_DTYPE_STRING: return;
    default: core_store_f64(t, data, i, (double)v); return;
    }
}
