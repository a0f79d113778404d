/* plan.h — the plan file (docs/plan-format.md): an optimized, tuned graph with its weights,
 * target fingerprint, optimization profiles and memory plan, written by `kiln build` and
 * loaded by the runtime (mmap'd; weights are borrowed from the mapping, never copied). */
#ifndef KILN_PLAN_H
#define KILN_PLAN_H

#include "ir/ir.h"
#include "runtime/runtime.h"

#define PLAN_MAGIC "KILNPLAN"
#define PLAN_FORMAT_VERSION 1u
#define PLAN_HEADER_BYTES 64u
#define PLAN_SECTION_ENTRY_BYTES 32u
#define PLAN_DATA_ALIGN 64u
#define PLAN_MAX_PROFILES 64

/* Section kinds. Append-only; readers skip kinds they do not know. */
enum {
    PLAN_SEC_TARGET = 1,   /* CPU fingerprint: vendor, brand, ISA of the builder and needed */
    PLAN_SEC_BUILD = 2,    /* builder notes (key=value lines) */
    PLAN_SEC_PROFILES = 3, /* optimization profiles + the memory plan of each */
    PLAN_SEC_GRAPH = 4,    /* the optimized graph (tactics are node attributes) */
    PLAN_SEC_DATA = 5      /* tensor bytes, each 64-byte aligned; always the last section */
};

/* ISA features (bits of plan_target.isa / isa_required). Append-only. */
enum {
    PLAN_ISA_SSE42 = 1u << 0,
    PLAN_ISA_AVX = 1u << 1,
    PLAN_ISA_AVX2 = 1u << 2,
    PLAN_ISA_FMA = 1u << 3,
    PLAN_ISA_F16C = 1u << 4,
    PLAN_ISA_AVX512F = 1u << 5,
    PLAN_ISA_AVX512BW = 1u << 6,
    PLAN_ISA_AVX512VL = 1u << 7,
    PLAN_ISA_AVX512DQ = 1u << 8,
    PLAN_ISA_AVX512VNNI = 1u << 9,
    PLAN_ISA_NEON = 1u << 10
};
#define PLAN_ISA_COUNT 11
/* Name of ISA bit i ("avx2"), NULL past the end. */
const char *plan_isa_name(int bit);
/* "avx2 fma ..." for a mask into buf. */
char *plan_isa_str(uint64_t mask, char *buf, size_t size);

typedef struct plan_target {
    char vendor[16];  /* "GenuineIntel", "AuthenticAMD", "arm64" */
    char brand[64];   /* processor brand string */
    uint64_t isa;     /* features of the machine */
    char kernels[16]; /* the microkernel table in use ("avx2_fma", "scalar") */
} plan_target;

/* This machine (cached after the first call; thread-safe). isa_required: the ISA features
 * the kernels the runtime picks here need (their table's requirements). */
const plan_target *plan_target_host(void);
uint64_t plan_target_kernels_isa(const char *kernels);
/* One line naming the CPU and its features, for timing-cache keys and `inspect`. */
char *plan_target_str(const plan_target *t, char *buf, size_t size);

/* The checksum (64-bit, 4 lanes of multiply-rotate rounds; several GB/s). */
uint64_t plan_hash64(const void *data, size_t n, uint64_t seed);
/* The build id: kiln's version and the constants that decide what a plan means (format,
 * tactic numbering, GEMM tile). Identical for identical kiln sources. */
uint64_t plan_build_id(void);

typedef struct plan_input_range {
    char *name;
    int ndim;
    int64_t min[KILN_MAX_DIMS], opt[KILN_MAX_DIMS], max[KILN_MAX_DIMS];
} plan_input_range;

typedef struct plan_profile {
    int n_inputs;
    plan_input_range *inputs;
    uint64_t arena_bytes;  /* activation arena at the max shapes (0: no memory plan) */
    int n_slots;
    rt_mem_slot *slots;    /* the memory plan at the max shapes */
} plan_profile;

/* Everything in a plan besides the graph. Owned strings/arrays; plan_info_destroy frees. */
typedef struct plan_info {
    uint32_t format_version;
    uint64_t build_id;
    uint64_t file_size, data_offset, data_size;
    uint64_t meta_checksum, data_checksum;
    plan_target target;
    uint64_t isa_required;
    int n_profiles;
    plan_profile *profiles;
    int build_threads;     /* threads the tactics were timed with */
    char *notes;           /* builder notes, "key=value\n" lines (may be NULL) */
} plan_info;

void plan_info_destroy(plan_info *info);

/* ---- writer.c --------------------------------------------------------------------------- */
/* Serialize m's graph with info (profiles, target, notes) into a malloc'd buffer (*out, *size).
 * Deterministic: the same graph and info give the same bytes. */
kiln_status plan_serialize(const ir_model *m, const plan_info *info, uint8_t **out, size_t *size);
kiln_status plan_write_file(const char *path, const ir_model *m, const plan_info *info);

/* ---- reader.c --------------------------------------------------------------------------- */
enum {
    PLAN_VERIFY_ALL = 0,   /* metadata and weight checksums (default) */
    PLAN_VERIFY_META = 1   /* metadata only: weights are checked by kiln_plan_check (KILN_PLAN_VERIFY=meta) */
};
/* True when the bytes start with the plan magic. */
bool plan_is_plan(const void *data, size_t size);
/* Header, section table, target fingerprint against this CPU and checksums: what a load
 * would refuse, without decoding the graph. *info (optional) receives header + target. */
kiln_status plan_check_bytes(const void *data, size_t size, int verify, plan_info **info);
/* Decode a plan held in `data` (64-byte aligned; must outlive the model: the model's tensors
 * borrow from it; when take_mapping/take_alloc is set the model owns it and unmaps/frees it).
 * On success *out is a prepared model (kernels resolved) and *info its plan info. */
kiln_status plan_load(void *data, size_t size, bool is_mmap, bool take, int verify, ir_model **out,
                      plan_info **info);
/* mmap path; verify as above. */
kiln_status plan_load_file(const char *path, int verify, ir_model **out, plan_info **info);
/* Verification level from KILN_PLAN_VERIFY (all | meta), read once. */
int plan_verify_default(void);
/* Recompute both checksums of a plan in place (tests and the fuzzer: they mutate bytes and
 * want the reader's structural checks, not the checksum, to see the damage). No-op when the
 * header is not readable. */
void plan_fix_checksums(uint8_t *data, size_t size);

#endif /* KILN_PLAN_H */
