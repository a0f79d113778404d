/* x32-transpose/scalar.c — transpose of a block of 32-bit elements (any 4-byte dtype): the
 * fallback on CPUs without AVX2. */
#include "cpu/cpu_misc.h"

void cpu_x32_transpose__scalar(const uint32_t *src, int64_t ss, uint32_t *dst, int64_t ds, size_t m, size_t n)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) dst[(int64_t)i * ds + (int64_t)j] = src[(int64_t)j * ss + (int64_t)i];
}
