/* wts.c — reader of tensorrtx .wts weight files: line 1 holds the entry count, then one line
 * per entry, `name count h1 .. hcount`, each h the bits of an IEEE-754 float32 in hex. */
#include "core/core.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct net_wts_entry {
    char *name;
    int64_t count;
    float *data; /* at least one element, so that an empty entry still has a pointer */
    int64_t line;
} net_wts_entry;

struct kiln_weights {
    int n, cap;
    net_wts_entry *e;
    int hcap;   /* power of two, > 2n */
    int *slot;  /* entry index or -1 */
};

/* Larger declared counts are taken for a corrupt first line, not a real model. */
#define NET_WTS_MAX_ENTRIES 100000000

static uint64_t net_wts_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static int net_wts_find(const kiln_weights *w, const char *name)
{
    if (!w->slot) return -1;
    for (uint64_t h = net_wts_hash(name) & (uint64_t)(w->hcap - 1);; h = (h + 1) & (uint64_t)(w->hcap - 1)) {
        int i = w->slot[h];
        if (i < 0) return -1;
        if (!strcmp(w->e[i].name, name)) return i;
    }
}

static bool net_wts_rehash(kiln_weights *w, int cap)
{
    int *slot = malloc(sizeof(int) * (size_t)cap);
    if (!slot) return false;
    for (int i = 0; i < cap; i++) slot[i] = -1;
    for (int i = 0; i < w->n; i++) {
        uint64_t h = net_wts_hash(w->e[i].name) & (uint64_t)(cap - 1);
        while (slot[h] >= 0) h = (h + 1) & (uint64_t)(cap - 1);
        slot[h] = i;
    }
    free(w->slot);
    w->slot = slot;
    w->hcap = cap;
    return true;
}

/* Appends e (taking its pointers) and indexes it. */
static bool net_wts_append(kiln_weights *w, net_wts_entry e)
{
    if (w->n == w->cap) {
        int cap = w->cap ? w->cap * 2 : 16;
        net_wts_entry *ne = realloc(w->e, sizeof *ne * (size_t)cap);
        if (!ne) return false;
        w->e = ne;
        w->cap = cap;
    }
    w->e[w->n++] = e;
    if ((int64_t)w->n * 2 >= w->hcap) {
        int cap = w->hcap ? w->hcap : 32;
        while ((int64_t)w->n * 2 >= cap) cap *= 2;
        if (!net_wts_rehash(w, cap)) { w->n--; return false; }
    } else {
        uint64_t h = net_wts_hash(e.name) & (uint64_t)(w->hcap - 1);
        while (w->slot[h] >= 0) h = (h + 1) & (uint64_t)(w->hcap - 1);
        w->slot[h] = w->n - 1;
    }
    return true;
}

KILN_API void kiln_weights_destroy(kiln_weights *w)
{
    if (!w) return;
    for (int i = 0; i < w->n; i++) { free(w->e[i].name); free(w->e[i].data); }
    free(w->e);
    free(w->slot);
    free(w);
}

/* ---- parsing -------------------------------------------------------------------------- */

typedef struct net_wts_reader {
    const char *p, *end;
    int64_t line;    /* number of the line `p` is on (1-based) */
    const char *src; /* file name for messages, or "<memory>" */
} net_wts_reader;

static bool net_wts_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* Next line [*b, *e) without its newline; false at end of input. */
static bool net_wts_next_line(net_wts_reader *r, const char **b, const char **e)
{
    if (r->p >= r->end) return false;
    const char *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
    *b = r->p;
    *e = nl ? nl : r->end;
    r->p = nl ? nl + 1 : r->end;
    return true;
}

static const char *net_wts_skip(const char *p, const char *e)
{
    while (p < e && net_wts_space(*p)) p++;
    return p;
}

static const char *net_wts_token_end(const char *p, const char *e)
{
    while (p < e && !net_wts_space(*p)) p++;
    return p;
}

/* A printable, bounded copy of a token for error messages. */
static const char *net_wts_show(const char *b, const char *e, char *buf, size_t size)
{
    size_t n = 0;
    for (const char *p = b; p < e && n + 4 < size; p++) buf[n++] = (*p >= 32 && *p < 127) ? *p : '?';
    if (b + n < e && n + 4 <= size) { buf[n++] = '.'; buf[n++] = '.'; buf[n++] = '.'; }
    buf[n] = 0;
    return buf;
}

/* Non-negative decimal integer filling [b, e) exactly; false on anything else / overflow. */
static bool net_wts_parse_count(const char *b, const char *e, int64_t *out)
{
    if (b == e || e - b > 18) return false;
    int64_t v = 0;
    for (const char *p = b; p < e; p++) {
        if (*p < '0' || *p > '9') return false;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return true;
}

/* 1..8 hex digits (optional 0x) -> float bits. */
static bool net_wts_parse_hex(const char *b, const char *e, float *out)
{
    if (e - b > 2 && b[0] == '0' && (b[1] == 'x' || b[1] == 'X')) b += 2;
    if (b == e || e - b > 8) return false;
    uint32_t v = 0;
    for (const char *p = b; p < e; p++) {
        int d;
        if (*p >= '0' && *p <= '9') d = *p - '0';
        else if (*p >= 'a' && *p <= 'f') d = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F') d = *p - 'A' + 10;
        else return false;
        v = v << 4 | (uint32_t)d;
    }
    memcpy(out, &v, sizeof v);
    return true;
}

static kiln_status net_wts_parse(net_wts_reader *r, kiln_weights *w)
{
    const char *b, *e;
    char sb[80], nb[80];
    /* Line 1: the number of entries (blank lines before it are tolerated). */
    const char *t = NULL, *te = NULL;
    while (net_wts_next_line(r, &b, &e)) {
        t = net_wts_skip(b, e);
        if (t < e) break;
        r->line++;
        t = NULL;
    }
    if (!t) return core_error(KILN_ERR_PARSE, "%s: empty file (expected the number of entries on line 1)", r->src);
    te = net_wts_token_end(t, e);
    int64_t declared = 0;
    if (!net_wts_parse_count(t, te, &declared) || net_wts_skip(te, e) != e)
        return core_error(KILN_ERR_PARSE, "%s: line %lld: expected the number of entries, found '%s'", r->src,
                          (long long)r->line, net_wts_show(b, e, sb, 40));
    if (declared > NET_WTS_MAX_ENTRIES)
        return core_error(KILN_ERR_PARSE, "%s: line %lld: %lld entries declared, more than the %d kiln accepts", r->src,
                          (long long)r->line, (long long)declared, NET_WTS_MAX_ENTRIES);
    int64_t count_line = r->line;
    r->line++;
    for (; net_wts_next_line(r, &b, &e); r->line++) {
        const char *p = net_wts_skip(b, e);
        if (p == e) continue; /* blank (a trailing newline, CRLF remains) */
        long long ln = (long long)r->line;
        if (w->n >= declared)
            return core_error(KILN_ERR_PARSE, "%s: line %lld: more entries than the %lld declared on line %lld",
                              r->src, ln, (long long)declared, (long long)count_line);
        const char *ne = net_wts_token_end(p, e);
        net_wts_show(p, ne, nb, sizeof nb);
        size_t name_len = (size_t)(ne - p);
        if (memchr(p, 0, name_len))
            return core_error(KILN_ERR_PARSE, "%s: line %lld: entry name contains a NUL byte", r->src, ln);
        const char *c = net_wts_skip(ne, e), *ce = net_wts_token_end(c, e);
        int64_t count = 0;
        if (c == e)
            return core_error(KILN_ERR_PARSE, "%s: line %lld: entry '%s' has no value count", r->src, ln, nb);
        if (!net_wts_parse_count(c, ce, &count))
            return core_error(KILN_ERR_PARSE, "%s: line %lld: entry '%s': value count '%s' is not a non-negative integer",
                              r->src, ln, nb, net_wts_show(c, ce, sb, 40));
        /* Each value needs a separator and a digit: a count the line cannot hold is rejected
         * before anything is allocated for it. */
        int64_t room = (int64_t)(e - ce) / 2;
        if (count > room) {
            int64_t found = 0;
            for (const char *q = net_wts_skip(ce, e); q < e; q = net_wts_skip(net_wts_token_end(q, e), e)) found++;
            return core_error(KILN_ERR_PARSE, "%s: line %lld: entry '%s' declares %lld values, the line holds %lld",
                              r->src, ln, nb, (long long)count, (long long)found);
        }
        net_wts_entry ent = {core_strndup(p, name_len), count, malloc(sizeof(float) * (size_t)(count ? count : 1)), r->line};
        if (!ent.name || !ent.data) { free(ent.name); free(ent.data); return core_oom(); }
        int dup = net_wts_find(w, ent.name);
        if (dup >= 0) {
            kiln_status st = core_error(KILN_ERR_PARSE, "%s: line %lld: duplicate entry '%s' (first on line %lld)", r->src,
                                        ln, nb, (long long)w->e[dup].line);
            free(ent.name); free(ent.data);
            return st;
        }
        const char *q = net_wts_skip(ce, e);
        int64_t k = 0;
        for (; k < count && q < e; k++) {
            const char *qe = net_wts_token_end(q, e);
            if (!net_wts_parse_hex(q, qe, &ent.data[k])) {
                kiln_status st = core_error(KILN_ERR_PARSE, "%s: line %lld: entry '%s': value %lld '%s' is not a float32 in hex (1-8 hex digits)",
                                            r->src, ln, nb, (long long)k, net_wts_show(q, qe, sb, 40));
                free(ent.name); free(ent.data);
                return st;
            }
            q = net_wts_skip(qe, e);
        }
        if (k < count || q < e) {
            int64_t found = k;
            for (; q < e; q = net_wts_skip(net_wts_token_end(q, e), e)) found++;
            free(ent.name); free(ent.data);
            return core_error(KILN_ERR_PARSE, "%s: line %lld: entry '%s' declares %lld values, the line holds %lld",
                              r->src, ln, nb, (long long)count, (long long)found);
        }
        if (!net_wts_append(w, ent)) { free(ent.name); free(ent.data); return core_oom(); }
    }
    if (w->n < declared)
        return core_error(KILN_ERR_PARSE, "%s: truncated: %lld entries declared on line %lld, the file has %d", r->src,
                          (long long)declared, (long long)count_line, w->n);
    return KILN_OK;
}

static kiln_status net_wts_parse_buffer(const char *src, const void *text, size_t size, kiln_weights **out)
{
    kiln_weights *w = calloc(1, sizeof *w);
    if (!w) return core_oom();
    net_wts_reader r = {(const char *)text, (const char *)text + size, 1, src};
    kiln_status st = net_wts_parse(&r, w);
    if (st) { kiln_weights_destroy(w); return st; }
    *out = w;
    return KILN_OK;
}

KILN_API kiln_status kiln_weights_parse_wts(const void *text, size_t size, kiln_weights **out)
{
    if (!out) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_weights_parse_wts: out is NULL");
    *out = NULL;
    if (!text && size) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_weights_parse_wts: text is NULL");
    return net_wts_parse_buffer("<memory>", text ? text : "", size, out);
}

KILN_API kiln_status kiln_weights_load_wts(const char *path, kiln_weights **out)
{
    if (!out) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_weights_load_wts: out is NULL");
    *out = NULL;
    if (!path) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_weights_load_wts: path is NULL");
    FILE *f = fopen(path, "rb");
    if (!f) return core_error(KILN_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) { fclose(f); return core_oom(); }
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
        if (!nb) { free(buf); fclose(f); return core_oom(); }
        buf = nb;
        cap *= 2;
    }
    bool err = ferror(f) != 0;
    fclose(f);
    if (err) { free(buf); return core_error(KILN_ERR_IO, "cannot read '%s'", path); }
    kiln_status st = net_wts_parse_buffer(path, buf, n, out);
    free(buf);
    return st;
}

KILN_API const float *kiln_weights_get(const kiln_weights *w, const char *name, int64_t *count)
{
    if (count) *count = 0;
    if (!w || !name) { core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_weights_get: NULL argument"); return NULL; }
    int i = net_wts_find(w, name);
    if (i < 0) { core_error(KILN_ERR_NOT_FOUND, "no weights named '%s'", name); return NULL; }
    if (count) *count = w->e[i].count;
    return w->e[i].data;
}

KILN_API int kiln_weights_count(const kiln_weights *w) { return w ? w->n : 0; }

KILN_API const char *kiln_weights_name(const kiln_weights *w, int index)
{
    return w && index >= 0 && index < w->n ? w->e[index].name : NULL;
}
