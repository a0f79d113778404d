/* target.c — what a plan is tied to: this CPU's fingerprint (vendor, brand, ISA features),
 * the ISA the chosen kernels need, the plan checksum and the kiln build id. */
#include "plan/plan.h"
#include "cpu/cpu.h"
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

static const char *const plan_isa_names[PLAN_ISA_COUNT] = {
    "sse4.2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512vnni", "neon"};

const char *plan_isa_name(int bit) { return bit >= 0 && bit < PLAN_ISA_COUNT ? plan_isa_names[bit] : NULL; }

char *plan_isa_str(uint64_t mask, char *buf, size_t size)
{
    size_t n = 0;
    if (size) buf[0] = 0;
    for (int i = 0; i < 64 && size; i++) {
        if (!(mask >> i & 1)) continue;
        const char *nm = plan_isa_name(i);
        char tmp[32];
        if (!nm) { snprintf(tmp, sizeof tmp, "bit%d", i); nm = tmp; }
        int w = snprintf(buf + n, size - n, "%s%s", n ? " " : "", nm);
        if (w < 0 || (size_t)w >= size - n) break;
        n += (size_t)w;
    }
    if (size && !buf[0]) snprintf(buf, size, "none");
    return buf;
}

static pthread_once_t plan_host_once = PTHREAD_ONCE_INIT;
static plan_target plan_host;

static void plan_host_detect(void)
{
    plan_target *t = &plan_host;
    memset(t, 0, sizeof *t);
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    if (__get_cpuid(0, &a, &b, &c, &d)) {
        memcpy(t->vendor, &b, 4);
        memcpy(t->vendor + 4, &d, 4);
        memcpy(t->vendor + 8, &c, 4);
    }
    if (__get_cpuid(0x80000000u, &a, &b, &c, &d) && a >= 0x80000004u) {
        unsigned r[12];
        for (unsigned i = 0; i < 3; i++) __get_cpuid(0x80000002u + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
        char brand[49];
        memcpy(brand, r, 48);
        brand[48] = 0;
        const char *s = brand;
        while (*s == ' ') s++;
        snprintf(t->brand, sizeof t->brand, "%s", s);
        for (size_t n = strlen(t->brand); n && t->brand[n - 1] == ' '; n--) t->brand[n - 1] = 0;
    }
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) t->isa |= PLAN_ISA_SSE42;
    if (__builtin_cpu_supports("avx")) t->isa |= PLAN_ISA_AVX;
    if (__builtin_cpu_supports("avx2")) t->isa |= PLAN_ISA_AVX2;
    if (__builtin_cpu_supports("fma")) t->isa |= PLAN_ISA_FMA;
    if (__builtin_cpu_supports("avx512f")) t->isa |= PLAN_ISA_AVX512F;
    if (__builtin_cpu_supports("avx512bw")) t->isa |= PLAN_ISA_AVX512BW;
    if (__builtin_cpu_supports("avx512vl")) t->isa |= PLAN_ISA_AVX512VL;
    if (__builtin_cpu_supports("avx512dq")) t->isa |= PLAN_ISA_AVX512DQ;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c >> 29 & 1)) t->isa |= PLAN_ISA_F16C;
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        if (c >> 11 & 1) t->isa |= PLAN_ISA_AVX512VNNI;
    }
#elif defined(__aarch64__)
    snprintf(t->vendor, sizeof t->vendor, "arm64");
    t->isa |= PLAN_ISA_NEON;
#else
    snprintf(t->vendor, sizeof t->vendor, "unknown");
#endif
    if (!t->brand[0]) snprintf(t->brand, sizeof t->brand, "unknown");
    snprintf(t->kernels, sizeof t->kernels, "%s", cpu_ukernels_get()->isa);
}

const plan_target *plan_target_host(void)
{
    pthread_once(&plan_host_once, plan_host_detect);
    return &plan_host;
}

uint64_t plan_target_kernels_isa(const char *kernels)
{
    if (!kernels) return 0;
    if (!strcmp(kernels, "avx2_fma")) return PLAN_ISA_AVX2 | PLAN_ISA_FMA;
    if (!strcmp(kernels, "avx512")) return PLAN_ISA_AVX512F;
    if (!strcmp(kernels, "neon")) return PLAN_ISA_NEON;
    return 0;
}

char *plan_target_str(const plan_target *t, char *buf, size_t size)
{
    char isa[256];
    snprintf(buf, size, "%s | %s | %s | kernels %s", t->vendor, t->brand, plan_isa_str(t->isa, isa, sizeof isa),
             t->kernels);
    return buf;
}

/* ---- checksum ------------------------------------------------------------------------------
 * Four independent lanes of (acc + v * P2) rotl 31 * P1 over 32-byte stripes, merged and
 * avalanched at the end: the xxHash64 construction, written here from its description. */

#define PH_P1 0x9E3779B185EBCA87ull
#define PH_P2 0xC2B2AE3D27D4EB4Full
#define PH_P3 0x165667B19E3779F9ull
#define PH_P4 0x85EBCA77C2B2AE63ull
#define PH_P5 0x27D4EB2F165667C5ull

static inline uint64_t ph_rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t ph_round(uint64_t acc, uint64_t v) { return ph_rotl(acc + v * PH_P2, 31) * PH_P1; }
static inline uint64_t ph_merge(uint64_t acc, uint64_t v) { return (acc ^ ph_round(0, v)) * PH_P1 + PH_P4; }

static inline uint64_t ph_read64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v; /* little-endian hosts only (x86-64, arm64): the format is little-endian */
}

uint64_t plan_hash64(const void *data, size_t n, uint64_t seed)
{
    static const uint8_t none[1];
    const uint8_t *p = data && n ? (const uint8_t *)data : none, *end = p + (data ? n : 0);
    uint64_t h;
    if (n >= 32) {
        uint64_t v1 = seed + PH_P1 + PH_P2, v2 = seed + PH_P2, v3 = seed, v4 = seed - PH_P1;
        const uint8_t *limit = end - 32;
        do {
            v1 = ph_round(v1, ph_read64(p));
            v2 = ph_round(v2, ph_read64(p + 8));
            v3 = ph_round(v3, ph_read64(p + 16));
            v4 = ph_round(v4, ph_read64(p + 24));
            p += 32;
        } while (p <= limit);
        h = ph_rotl(v1, 1) + ph_rotl(v2, 7) + ph_rotl(v3, 12) + ph_rotl(v4, 18);
        h = ph_merge(h, v1);
        h = ph_merge(h, v2);
        h = ph_merge(h, v3);
        h = ph_merge(h, v4);
    } else {
        h = seed + PH_P5;
    }
    h += (uint64_t)n;
    for (; p + 8 <= end; p += 8) h = ph_rotl(h ^ ph_round(0, ph_read64(p)), 27) * PH_P1 + PH_P4;
    if (p + 4 <= end) {
        uint32_t v;
        memcpy(&v, p, 4);
        h = ph_rotl(h ^ ((uint64_t)v * PH_P1), 23) * PH_P2 + PH_P3;
        p += 4;
    }
    for (; p < end; p++) h = ph_rotl(h ^ (*p * PH_P5), 11) * PH_P1;
    h ^= h >> 33;
    h *= PH_P2;
    h ^= h >> 29;
    h *= PH_P3;
    h ^= h >> 32;
    return h;
}

uint64_t plan_build_id(void)
{
    char s[256];
    snprintf(s, sizeof s, "kiln %d.%d.%d|plan format %u|conv tactics auto=%d gemm=%d dw=%d winograd=%d|gemm %dx%d",
             KILN_VERSION_MAJOR, KILN_VERSION_MINOR, KILN_VERSION_PATCH, PLAN_FORMAT_VERSION, CPU_CONV_AUTO,
             CPU_CONV_GEMM, CPU_CONV_DW, CPU_CONV_WINO, CPU_GEMM_MR, CPU_GEMM_NR);
    return plan_hash64(s, strlen(s), 0);
}
