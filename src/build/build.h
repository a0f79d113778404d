/* build.h — the engine builder (`kiln build`): tactic timing with a timing cache, memory
 * planning at the profile's largest shapes, and writing the plan (src/plan/). */
#ifndef KILN_BUILD_H
#define KILN_BUILD_H

#include "plan/plan.h"

/* ---- timing cache (timing_cache.c) ---------------------------------------------------------
 * Text file: a header naming the CPU it was measured on, then one line per measured node
 * configuration: "<key>\tbest=<tactic>\t<tactic>=<ms>,...". Lines are kept sorted so the file
 * is deterministic too. A cache from another CPU is ignored (and replaced when saved). */
typedef struct build_tcache build_tcache;

build_tcache *build_tcache_create(const char *cpu);
void build_tcache_destroy(build_tcache *tc);
/* Reads path when it exists (a missing file is an empty cache). *foreign is set when the file
 * was made on another CPU (its entries are then dropped). */
kiln_status build_tcache_load(build_tcache *tc, const char *path, bool *foreign);
kiln_status build_tcache_save(const build_tcache *tc, const char *path);
/* The entry for key: the best tactic's name, or NULL. */
const char *build_tcache_find(const build_tcache *tc, const char *key);
/* Add or replace key -> best, with the measured times as text ("gemm=0.83,winograd=0.41"). */
kiln_status build_tcache_put(build_tcache *tc, const char *key, const char *best, const char *times);
bool build_tcache_dirty(const build_tcache *tc);
int build_tcache_count(const build_tcache *tc);

/* ---- conv tactics (timing_cache.c) ---------------------------------------------------------------- */
#define BUILD_MAX_TACTICS 4
/* Name of a CPU_CONV_* tactic ("gemm", "depthwise", "winograd"); NULL for others. */
const char *build_tactic_name(int tactic);
int build_tactic_from_name(const char *name); /* 0 when unknown */

#endif /* KILN_BUILD_H */
