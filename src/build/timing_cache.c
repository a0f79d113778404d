/* timing_cache.c — the builder's timing cache: measured tactic times per node configuration
 * and CPU, kept in a sorted text file so rebuilds skip timing and stay deterministic. */
#include "build/build.h"
#include "cpu/cpu.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TC_MAGIC "kiln-timing-cache 1"

typedef struct tc_entry {
    char *key, *best, *times;
} tc_entry;

struct build_tcache {
    char *cpu;
    tc_entry *e;
    int n, cap;
    bool dirty;
};

build_tcache *build_tcache_create(const char *cpu)
{
    build_tcache *tc = calloc(1, sizeof *tc);
    if (!tc || !(tc->cpu = core_strdup(cpu ? cpu : ""))) {
        free(tc);
        core_oom();
        return NULL;
    }
    return tc;
}

static void tc_clear(build_tcache *tc)
{
    for (int i = 0; i < tc->n; i++) {
        free(tc->e[i].key);
        free(tc->e[i].best);
        free(tc->e[i].times);
    }
    tc->n = 0;
}

void build_tcache_destroy(build_tcache *tc)
{
    if (!tc) return;
    tc_clear(tc);
    free(tc->e);
    free(tc->cpu);
    free(tc);
}

/* Binary search over the sorted keys: index of key, or -(insertion point) - 1. */
static int tc_search(const build_tcache *tc, const char *key)
{
    int lo = 0, hi = tc->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(tc->e[mid].key, key);
        if (!c) return mid;
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return -lo - 1;
}

const char *build_tcache_find(const build_tcache *tc, const char *key)
{
    int i = tc_search(tc, key);
    return i >= 0 ? tc->e[i].best : NULL;
}

static kiln_status tc_insert(build_tcache *tc, const char *key, const char *best, const char *times)
{
    char *k = core_strdup(key), *b = core_strdup(best), *t = core_strdup(times ? times : "");
    if (!k || !b || !t) { free(k); free(b); free(t); return core_oom(); }
    int i = tc_search(tc, key);
    if (i >= 0) {
        free(tc->e[i].key);
        free(tc->e[i].best);
        free(tc->e[i].times);
        tc->e[i] = (tc_entry){k, b, t};
        return KILN_OK;
    }
    i = -i - 1;
    if (tc->n == tc->cap) {
        int cap = tc->cap ? tc->cap * 2 : 64;
        tc_entry *ne = realloc(tc->e, sizeof *ne * (size_t)cap);
        if (!ne) { free(k); free(b); free(t); return core_oom(); }
        tc->e = ne;
        tc->cap = cap;
    }
    memmove(&tc->e[i + 1], &tc->e[i], sizeof *tc->e * (size_t)(tc->n - i));
    tc->e[i] = (tc_entry){k, b, t};
    tc->n++;
    return KILN_OK;
}

kiln_status build_tcache_put(build_tcache *tc, const char *key, const char *best, const char *times)
{
    kiln_status st = tc_insert(tc, key, best, times);
    if (!st) tc->dirty = true;
    return st;
}

bool build_tcache_dirty(const build_tcache *tc) { return tc->dirty; }
int build_tcache_count(const build_tcache *tc) { return tc->n; }

static void tc_chomp(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0;
}

kiln_status build_tcache_load(build_tcache *tc, const char *path, bool *foreign)
{
    *foreign = false;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return KILN_OK;
        return core_error(KILN_ERR_IO, "timing cache '%s': %s", path, strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0;
    kiln_status st = KILN_OK;
    while ((len = getline(&line, &cap, f)) >= 0 && !st) {
        lineno++;
        tc_chomp(line);
        if (lineno == 1) {
            if (strcmp(line, TC_MAGIC)) st = core_error(KILN_ERR_PARSE, "timing cache '%s' is not a kiln timing cache", path);
            continue;
        }
        if (lineno == 2) {
            if (strncmp(line, "cpu ", 4) || strcmp(line + 4, tc->cpu)) {
                *foreign = true;
                break;
            }
            continue;
        }
        if (!*line || *line == '#') continue;
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t1 || strncmp(t1 + 1, "best=", 5)) {
            st = core_error(KILN_ERR_PARSE, "timing cache '%s' line %d is malformed", path, lineno);
            break;
        }
        *t1 = 0;
        if (t2) *t2 = 0;
        st = tc_insert(tc, line, t1 + 6, t2 ? t2 + 1 : "");
    }
    free(line);
    fclose(f);
    if (st || *foreign) tc_clear(tc);
    return st;
}

kiln_status build_tcache_save(const build_tcache *tc, const char *path)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 24);
    if (!tmp) return core_oom();
    snprintf(tmp, plen + 24, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        kiln_status st = core_error(KILN_ERR_IO, "cannot write timing cache '%s': %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    fprintf(f, "%s\ncpu %s\n", TC_MAGIC, tc->cpu);
    for (int i = 0; i < tc->n; i++) fprintf(f, "%s\tbest=%s\t%s\n", tc->e[i].key, tc->e[i].best, tc->e[i].times);
    bool ok = !ferror(f);
    ok = fclose(f) == 0 && ok;
    kiln_status st = KILN_OK;
    if (!ok) st = core_error(KILN_ERR_IO, "cannot write timing cache '%s': %s", tmp, strerror(errno));
    else if (rename(tmp, path) != 0) st = core_error(KILN_ERR_IO, "cannot replace timing cache '%s': %s", path, strerror(errno));
    if (st) remove(tmp);
    free(tmp);
    return st;
}

/* ---- tactic names --------------------------------------------------------------------------------- */

const char *build_tactic_name(int tactic)
{
    switch (tactic) {
    case CPU_CONV_GEMM: return "gemm";
    case CPU_CONV_DW: return "depthwise";
    case CPU_CONV_WINO: return "winograd";
    default: return NULL;
    }
}

int build_tactic_from_name(const char *name)
{
    if (!name) return 0;
    for (int t = CPU_CONV_GEMM; t <= CPU_CONV_WINO; t++)
        if (!strcmp(build_tactic_name(t), name)) return t;
    return 0;
}
