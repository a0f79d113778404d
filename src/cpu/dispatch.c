/* dispatch.c — picks the microkernels for this CPU once (cpuid through
 * __builtin_cpu_supports: AVX-512, then AVX2+FMA, then scalar; KILN_CPU_ISA caps the choice)
 * and hands out the table; small shared helpers. */
#include "cpu/cpu.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const cpu_ukernels cpu_table_scalar = {
    "scalar",
    CPU_GEMM_MR,
    CPU_GEMM_NR,
    cpu_f32_gemm_ukernel_6x16__scalar,
    cpu_f32_vact__scalar,
    cpu_f32_dwconv_ukernel__scalar,
};

#if defined(__x86_64__) || defined(__i386__)
#define CPU_HAVE_X86 1
static const cpu_ukernels cpu_table_avx2 = {
    "avx2_fma",
    CPU_GEMM_MR,
    CPU_GEMM_NR,
    cpu_f32_gemm_ukernel_6x16__avx2_fma,
    cpu_f32_vact__avx2_fma,
    cpu_f32_dwconv_ukernel__avx2_fma,
};

static const cpu_ukernels cpu_table_avx512 = {
    "avx512",
    CPU_GEMM_MR_AVX512,
    CPU_GEMM_NR_AVX512,
    cpu_f32_gemm_ukernel_14x32__avx512,
    cpu_f32_vact__avx512,
    cpu_f32_dwconv_ukernel__avx512,
};
#else
#define CPU_HAVE_X86 0
#endif

static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static const cpu_ukernels *cpu_detected = &cpu_table_scalar;
/* every table this CPU can run, best first */
static const cpu_ukernels *cpu_avail[3];
static const char *cpu_avail_names[3];
static int cpu_n_avail;
static const cpu_ukernels *cpu_forced; /* atomic; NULL: the detected table */

static const cpu_ukernels *cpu_find(const char *isa)
{
    if (!isa) return NULL;
    for (int i = 0; i < cpu_n_avail; i++) {
        const char *n = cpu_avail[i]->isa;
        if (!strcmp(isa, n) || (!strcmp(isa, "avx2") && !strcmp(n, "avx2_fma"))) return cpu_avail[i];
    }
    return NULL;
}

static void cpu_detect(void)
{
#if CPU_HAVE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        cpu_avail[cpu_n_avail++] = &cpu_table_avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        cpu_avail[cpu_n_avail++] = &cpu_table_avx2;
#endif
    cpu_avail[cpu_n_avail++] = &cpu_table_scalar;
    for (int i = 0; i < cpu_n_avail; i++) cpu_avail_names[i] = cpu_avail[i]->isa;
    cpu_detected = cpu_avail[0];
    /* KILN_CPU_ISA=avx512|avx2|scalar: use that one when this CPU has it, else the best one
     * below it (an unknown name changes nothing) */
    const char *e = getenv("KILN_CPU_ISA");
    if (e && e[0]) {
        const cpu_ukernels *t = cpu_find(e);
        if (!t && !strcmp(e, "avx512")) t = cpu_avail[0];
        if (!t && e[0] == 's') t = &cpu_table_scalar;
        if (t) cpu_detected = t;
    }
}

const cpu_ukernels *cpu_ukernels_get(void)
{
    pthread_once(&cpu_once, cpu_detect);
    const cpu_ukernels *f = __atomic_load_n(&cpu_forced, __ATOMIC_ACQUIRE);
    return f ? f : cpu_detected;
}

void cpu_ukernels_force_scalar(bool on)
{
    cpu_ukernels_force_isa(on ? "scalar" : NULL);
}

bool cpu_ukernels_force_isa(const char *isa)
{
    pthread_once(&cpu_once, cpu_detect);
    const cpu_ukernels *t = NULL;
    if (isa) {
        t = cpu_find(isa);
        if (!t) return false;
    }
    __atomic_store_n(&cpu_forced, t, __ATOMIC_RELEASE);
    return true;
}

const char *const *cpu_ukernels_isas(int *n)
{
    pthread_once(&cpu_once, cpu_detect);
    *n = cpu_n_avail;
    return cpu_avail_names;
}

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
