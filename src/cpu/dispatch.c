/* dispatch.c — picks the microkernels for this CPU once (cpuid through
 * __builtin_cpu_supports) and hands out the table; small shared helpers. */
#include "cpu/cpu.h"
#include <pthread.h>
#include <stdlib.h>

static const cpu_ukernels cpu_table_scalar = {
    "scalar",
    cpu_f32_gemm_ukernel_6x16__scalar,
    cpu_f32_vact__scalar,
    cpu_f32_dwconv_ukernel__scalar,
};

#if defined(__x86_64__) || defined(__i386__)
static const cpu_ukernels cpu_table_avx2 = {
    "avx2_fma",
    cpu_f32_gemm_ukernel_6x16__avx2_fma,
    cpu_f32_vact__avx2_fma,
    cpu_f32_dwconv_ukernel__avx2_fma,
};
#endif

static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static const cpu_ukernels *cpu_detected = &cpu_table_scalar;
static int cpu_force_scalar; /* atomic */

static void cpu_detect(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        const char *e = getenv("KILN_CPU_ISA");
        if (!(e && e[0] == 's')) cpu_detected = &cpu_table_avx2; /* KILN_CPU_ISA=scalar */
    }
#endif
}

const cpu_ukernels *cpu_ukernels_get(void)
{
    pthread_once(&cpu_once, cpu_detect);
    if (__atomic_load_n(&cpu_force_scalar, __ATOMIC_RELAXED)) return &cpu_table_scalar;
    return cpu_detected;
}

void cpu_ukernels_force_scalar(bool on) { __atomic_store_n(&cpu_force_scalar, on ? 1 : 0, __ATOMIC_RELAXED); }

cpu_epilogue cpu_epilogue_none(void)
{
    cpu_epilogue e = {1.0f, NULL, 0, NULL, 0, CPU_ACT_NONE, 0.0f, 0.0f};
    return e;
}

void cpu_act_apply(float *x, size_t n, cpu_act act, float a, float b)
{
    if (act != CPU_ACT_NONE) cpu_ukernels_get()->f32_vact(x, n, act, a, b);
}

float *cpu_alloc_floats(size_t n)
{
    if (n == 0) n = 1;
    if (n > ((size_t)-1 - 64) / sizeof(float)) return NULL;
    size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
    return aligned_alloc(64, bytes);
}
