/* f32-vbinary/avx2-fma.c — binary arithmetic over float rows with AVX2 (both operands
 * vectors, or one a broadcast scalar). IEEE add/sub/mul/div round exactly like the reference. */
#include "cpu/cpu_misc.h"
#include "cpu/ukernels/avx2-math.h"

static inline __attribute__((always_inline)) CPU_AVX2 __m256 vb_op(int op, __m256 a, __m256 b)
{
    switch (op) {
    case CPU_BIN_ADD: return _mm256_add_ps(a, b);
    case CPU_BIN_SUB: return _mm256_sub_ps(a, b);
    case CPU_BIN_MUL: return _mm256_mul_ps(a, b);
    case CPU_BIN_DIV: return _mm256_div_ps(a, b);
    case CPU_BIN_MAX: {
        /* NaN in either operand wins, a's first (the reference's order) */
        __m256 r = _mm256_max_ps(a, b);
        r = _mm256_blendv_ps(r, b, _mm256_cmp_ps(b, b, _CMP_UNORD_Q));
        return _mm256_blendv_ps(r, a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
    }
    case CPU_BIN_MIN: {
        __m256 r = _mm256_min_ps(a, b);
        r = _mm256_blendv_ps(r, b, _mm256_cmp_ps(b, b, _CMP_UNORD_Q));
        return _mm256_blendv_ps(r, a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
    }
    default: return a;
    }
}

#define VB_LOOP(OP, LA, LB)                                                                    \
    for (; i + 16 <= n; i += 16) {                                                             \
        _mm256_storeu_ps(y + i, vb_op(OP, LA(i), LB(i)));                                      \
        _mm256_storeu_ps(y + i + 8, vb_op(OP, LA(i + 8), LB(i + 8)));                          \
    }                                                                                          \
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, vb_op(OP, LA(i), LB(i)));               \
    if (i < n) {                                                                               \
        __m256i m = cpu_avx2_mask(n - i);                                                      \
        _mm256_maskstore_ps(y + i, m, vb_op(OP, LA##_T(i, m), LB##_T(i, m)));                  \
    }
#define VA(i) _mm256_loadu_ps(a + (i))
#define VA_T(i, m) _mm256_maskload_ps(a + (i), m)
#define VB(i) _mm256_loadu_ps(b + (i))
#define VB_T(i, m) _mm256_maskload_ps(b + (i), m)
#define SA(i) sa
#define SA_T(i, m) sa
#define SB(i) sb
#define SB_T(i, m) sb

#define VB_MODES(OP)                                                                           \
    case OP:                                                                                   \
        if (mode == CPU_BIN_VV) { VB_LOOP(OP, VA, VB) }                                        \
        else if (mode == CPU_BIN_VS) { VB_LOOP(OP, VA, SB) }                                   \
        else { VB_LOOP(OP, SA, VB) }                                                           \
        break;

CPU_AVX2 void cpu_f32_vbinary__avx2_fma(int op, int mode, const float *a, const float *b, float *y,
                                        size_t n)
{
    size_t i = 0;
    /* masked-off tail lanes (0 / 0 and the like) are never stored */
    const __m256 sa = _mm256_set1_ps(mode == CPU_BIN_SV ? a[0] : 0.0f);
    const __m256 sb = _mm256_set1_ps(mode == CPU_BIN_VS ? b[0] : 0.0f);
    switch (op) {
    VB_MODES(CPU_BIN_ADD)
    VB_MODES(CPU_BIN_SUB)
    VB_MODES(CPU_BIN_MUL)
    VB_MODES(CPU_BIN_DIV)
    VB_MODES(CPU_BIN_MAX)
    VB_MODES(CPU_BIN_MIN)
    default: break;
    }
}
