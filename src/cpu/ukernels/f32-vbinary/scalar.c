/* f32-vbinary/scalar.c — binary arithmetic over float rows (both vectors, or one operand a
 * broadcast scalar): the fallback on CPUs without AVX2. */
#include "cpu/cpu_misc.h"

static inline float vb_op(int op, float a, float b)
{
    switch (op) {
    case CPU_BIN_ADD: return a + b;
    case CPU_BIN_SUB: return a - b;
    case CPU_BIN_MUL: return a * b;
    case CPU_BIN_DIV: return a / b;
    case CPU_BIN_MAX: return a != a ? a : b != b ? b : a > b ? a : b;
    case CPU_BIN_MIN: return a != a ? a : b != b ? b : a < b ? a : b;
    default: return a;
    }
}

void cpu_f32_vbinary__scalar(int op, int mode, const float *a, const float *b, float *y, size_t n)
{
    size_t sa = mode == CPU_BIN_SV ? 0 : 1, sb = mode == CPU_BIN_VS ? 0 : 1;
    for (size_t i = 0; i < n; i++) y[i] = vb_op(op, a[i * sa], b[i * sb]);
}
