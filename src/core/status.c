/* status.c — per-thread error text, allocation helpers that never abort. */
#include "core/core.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CORE_ERROR_MAX 1024
static _Thread_local char core_err_buf[CORE_ERROR_MAX];

kiln_status core_error(kiln_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(core_err_buf, sizeof core_err_buf, fmt, ap);
    va_end(ap);
    return s;
}

kiln_status core_error_prefix(kiln_status s, const char *fmt, ...)
{
    char prefix[512], old[CORE_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, core_err_buf, sizeof old);
    size_t n = strlen(prefix);
    memcpy(core_err_buf, prefix, n + 1);
    size_t rest = strnlen(old, sizeof old - 1);
    if (rest > sizeof core_err_buf - 1 - n) rest = sizeof core_err_buf - 1 - n;
    memcpy(core_err_buf + n, old, rest);
    core_err_buf[n + rest] = 0;
    return s;
}

void core_error_clear(void) { core_err_buf[0] = 0; }
const char *core_error_text(void) { return core_err_buf; }
kiln_status core_oom(void) { return core_error(KILN_ERR_OUT_OF_MEMORY, "out of memory"); }

void *core_malloc(size_t n) { return malloc(n ? n : 1); }
void *core_calloc(size_t n, size_t size) { return calloc(n ? n : 1, size ? size : 1); }
void *core_realloc(void *p, size_t n) { return realloc(p, n ? n : 1); }

char *core_strdup(const char *s) { return s ? core_strndup(s, strlen(s)) : NULL; }

char *core_strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, s, n);
    d[n] = 0;
    return d;
}

bool core_mul_size(int64_t a, int64_t b, int64_t *out)
{
    if (a < 0 || b < 0) return false;
    if (a != 0 && b > INT64_MAX / a) return false;
    *out = a * b;
    return true;
}

/* ---- public ---- */
KILN_API const char *kiln_last_error(void) { return core_err_buf; }

KILN_API const char *kiln_status_string(kiln_status s)
{
    switch (s) {
    case KILN_OK: return "ok";
    case KILN_ERR_INVALID_ARGUMENT: return "invalid argument";
    case KILN_ERR_IO: return "i/o error";
    case KILN_ERR_PARSE: return "parse error";
    case KILN_ERR_INVALID_MODEL: return "invalid model";
    case KILN_ERR_UNSUPPORTED: return "unsupported";
    case KILN_ERR_SHAPE: return "shape error";
    case KILN_ERR_DTYPE: return "dtype error";
    case KILN_ERR_OUT_OF_MEMORY: return "out of memory";
    case KILN_ERR_NOT_FOUND: return "not found";
    case KILN_ERR_RUNTIME: return "runtime error";
    case KILN_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

KILN_API const char *kiln_version_string(void) { return "0.1.0"; }
