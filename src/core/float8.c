/* float8.c — conversions between float32 and the 8-bit and 4-bit float formats of ONNX
 * (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ, E8M0, E2M1), round to nearest even, as ONNX Cast. */
#include "core/core.h"
#include <math.h>
#include <string.h>

/* A small float format: sign bit, ebits exponent bits, mbits mantissa bits. */
typedef struct f8_format {
    int ebits, mbits, bias;
    uint8_t max_code;  /* largest finite magnitude code (sign bit clear) */
    uint8_t inf_code;  /* infinity magnitude code, 0 when the format has none */
    uint8_t nan_code;  /* canonical NaN (full byte, sign clear) */
    bool uz;           /* "unsigned zero": 0x80 is NaN, there is no -0 */
} f8_format;

static const f8_format f8_e4m3fn = {4, 3, 7, 0x7E, 0, 0x7F, false};
static const f8_format f8_e4m3fnuz = {4, 3, 8, 0x7F, 0, 0x80, true};
static const f8_format f8_e5m2 = {5, 2, 15, 0x7B, 0x7C, 0x7E, false};
static const f8_format f8_e5m2fnuz = {5, 2, 16, 0x7F, 0, 0x80, true};
static const f8_format f4_e2m1 = {2, 1, 1, 0x7, 0, 0, false};

static const f8_format *f8_format_of(kiln_dtype t)
{
    switch (t) {
    case KILN_DTYPE_FLOAT8E4M3FN: return &f8_e4m3fn;
    case KILN_DTYPE_FLOAT8E4M3FNUZ: return &f8_e4m3fnuz;
    case KILN_DTYPE_FLOAT8E5M2: return &f8_e5m2;
    case KILN_DTYPE_FLOAT8E5M2FNUZ: return &f8_e5m2fnuz;
    default: return NULL;
    }
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Magnitude code of |f| (finite, bits without sign) rounded to nearest even in format
 * fmt. The result may exceed max_code (overflow): the caller decides what that means. */
static uint32_t small_float_round(const f8_format *fmt, uint32_t abits)
{
    int e = (int)(abits >> 23) - 127; /* unbiased exponent; f32 subnormals are far below
                                         every target's range and round to 0 anyway */
    uint32_t sig = (abits & 0x7FFFFF) | ((abits >> 23) ? 0x800000u : 0);
    int emin = 1 - fmt->bias;
    int shift = 23 - fmt->mbits;
    uint32_t base;
    if (e >= emin) {
        if (e - emin > (1 << fmt->ebits)) return 0xFFFF; /* far beyond any code */
        base = (uint32_t)(e + fmt->bias) << fmt->mbits;
        sig &= 0x7FFFFF; /* the implicit one lives in the exponent field */
    } else {
        shift += emin - e;
        base = 0;
        if (shift > 25) return 0; /* below half the smallest subnormal */
    }
    uint32_t q = sig >> shift;
    uint32_t rem = sig & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return base + q; /* a mantissa carry rolls into the exponent field as it should */
}

float core_f8_to_f32(kiln_dtype t, uint8_t v)
{
    if (t == KILN_DTYPE_FLOAT8E8M0) {
        if (v == 0xFF) return NAN;
        return ldexpf(1.0f, (int)v - 127);
    }
    const f8_format *fmt = f8_format_of(t);
    if (!fmt) return NAN;
    if (fmt->uz && v == 0x80) return NAN;
    bool neg = (v & 0x80) != 0;
    uint8_t mag = v & 0x7F;
    if (!fmt->uz && fmt->inf_code == 0 && mag == 0x7F) return neg ? -NAN : NAN;
    int e = mag >> fmt->mbits;
    int m = mag & ((1 << fmt->mbits) - 1);
    if (fmt->inf_code && e == (1 << fmt->ebits) - 1) {
        if (m == 0) return neg ? -INFINITY : INFINITY;
        return neg ? -NAN : NAN;
    }
    float r;
    if (e == 0) r = ldexpf((float)m, 1 - fmt->bias - fmt->mbits);
    else r = ldexpf((float)(m + (1 << fmt->mbits)), e - fmt->bias - fmt->mbits);
    return neg ? -r : r;
}

/* E8M0 (exponent only, 2^(v-127), 0xFF = NaN) with ONNX's default rounding "up":
 * any fraction bumps the exponent; saturate keeps the largest value instead of NaN. */
static uint8_t f32_to_e8m0_up(float f, bool saturate)
{
    uint32_t u = f32_bits(f);
    uint32_t e = (u >> 23) & 0xFF;
    if (e == 0xFF) return 0xFF;
    if ((u & 0x7FFFFF) && !(saturate && e == 0xFE)) e++;
    return (uint8_t)e;
}

uint8_t core_f32_to_f8(kiln_dtype t, float f, bool saturate)
{
    if (t == KILN_DTYPE_FLOAT8E8M0) return f32_to_e8m0_up(f, saturate);
    const f8_format *fmt = f8_format_of(t);
    if (!fmt) return 0;
    uint32_t u = f32_bits(f);
    uint8_t sign = (uint8_t)((u >> 24) & 0x80);
    uint32_t abits = u & 0x7FFFFFFF;
    if (abits > 0x7F800000) /* NaN */
        return fmt->uz ? fmt->nan_code : (uint8_t)(fmt->nan_code | sign);
    uint32_t q;
    if (abits == 0x7F800000) q = 0xFFFF;
    else q = small_float_round(fmt, abits);
    if (q > fmt->max_code) {
        if (saturate) q = fmt->max_code;
        else if (fmt->inf_code) q = fmt->inf_code;
        else return fmt->uz ? fmt->nan_code : (uint8_t)(fmt->nan_code | sign);
    }
    if (fmt->uz && q == 0) return 0;
    return (uint8_t)(q | sign);
}

float core_f4e2m1_to_f32(uint8_t v)
{
    static const float mag[8] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};
    float r = mag[v & 7];
    return (v & 8) ? -r : r;
}

/* E2M1 has no inf or NaN: overflow saturates to +-6. NaN maps to a zero whose sign bit is
 * the complement of the NaN's, which is what the reference implementation (ml_dtypes)
 * produces for the ONNX test data. */
uint8_t core_f32_to_f4e2m1(float f)
{
    uint32_t u = f32_bits(f);
    uint8_t sign = (uint8_t)((u >> 28) & 0x8);
    uint32_t abits = u & 0x7FFFFFFF;
    if (abits > 0x7F800000) return (uint8_t)(sign ^ 0x8);
    uint32_t q = abits == 0x7F800000 ? 0xFFFF : small_float_round(&f4_e2m1, abits);
    if (q > f4_e2m1.max_code) q = f4_e2m1.max_code;
    return (uint8_t)(q | sign);
}
