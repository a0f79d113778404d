/* registry.c — the one list of operator tables; ops_find resolves (domain, op, opset). */
#include "ops/ops.h"
#include "ops/plugin.h"
#include <stdlib.h>
#include <string.h>

#define OPS_FAMILY(name) extern const ops_schema name[];
#include "ops/families.def"
#undef OPS_FAMILY

static const ops_schema *const ops_tables[] = {
#define OPS_FAMILY(name) name,
#include "ops/families.def"
#undef OPS_FAMILY
};

static bool ops_domain_eq(const char *a, const char *b)
{
    if (!a || !*a || !strcmp(a, "ai.onnx")) a = "";
    if (!b || !*b || !strcmp(b, "ai.onnx")) b = "";
    return strcmp(a, b) == 0;
}

static int ops_fast_state = -1; /* -1: not read from the environment yet */

void ops_set_fast_kernels(bool enabled) { __atomic_store_n(&ops_fast_state, enabled ? 1 : 0, __ATOMIC_RELAXED); }

bool ops_fast_kernels_enabled(void)
{
    int s = __atomic_load_n(&ops_fast_state, __ATOMIC_RELAXED);
    if (s < 0) {
        const char *e = getenv("KILN_REFERENCE");
        s = e && *e && strcmp(e, "0") ? 0 : 1;
        __atomic_store_n(&ops_fast_state, s, __ATOMIC_RELAXED);
    }
    return s == 1;
}

static const ops_schema *ops_lookup(const char *domain, const char *op_type, int64_t opset, int max_backend)
{
    const ops_schema *best = NULL;
    for (size_t t = 0; t < sizeof ops_tables / sizeof ops_tables[0]; t++) {
        for (const ops_schema *s = ops_tables[t]; s->op_type; s++) {
            if (s->backend > max_backend) continue;
            if (strcmp(s->op_type, op_type) || !ops_domain_eq(s->domain, domain)) continue;
            if (opset > 0 && s->since_version > opset) continue;
            if (!best || s->backend > best->backend ||
                (s->backend == best->backend && s->since_version > best->since_version))
                best = s;
        }
    }
    return best;
}

const ops_schema *ops_find(const char *domain, const char *op_type, int64_t opset)
{
    const ops_schema *s = ops_lookup(domain, op_type, opset, ops_fast_kernels_enabled() ? 1 : 0);
    return s ? s : ops_plugin_find(domain, op_type); /* user ops (plugin.c) fill the gaps */
}

const ops_schema *ops_find_reference(const char *domain, const char *op_type, int64_t opset)
{
    const ops_schema *s = ops_lookup(domain, op_type, opset, 0);
    return s ? s : ops_plugin_find(domain, op_type);
}

int ops_count(void)
{
    int n = 0;
    for (size_t t = 0; t < sizeof ops_tables / sizeof ops_tables[0]; t++)
        for (const ops_schema *s = ops_tables[t]; s->op_type; s++) n++;
    return n;
}

const ops_schema *ops_at(int i)
{
    for (size_t t = 0; t < sizeof ops_tables / sizeof ops_tables[0]; t++)
        for (const ops_schema *s = ops_tables[t]; s->op_type; s++)
            if (i-- == 0) return s;
    return NULL;
}
