/* reader.c — validates and decodes a plan (docs/plan-format.md): header, section table,
 * checksums, target fingerprint, then the graph with its tensors borrowed from the mapping.
 * Every offset, length and count is checked against the bytes that hold it before use; a bad
 * plan is refused with a message saying what is wrong, never trusted. */
#include "plan/plan.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PR_MAX_DEPTH 64
#define PR_MAX_SECTIONS 64
#define PR_MAX_RANK 4096        /* ranks of declared types (tensors themselves: KILN_MAX_DIMS) */
#define PR_DIM_LIMIT ((int64_t)1 << 48)

/* ---- header ------------------------------------------------------------------------------------ */

typedef struct pr_section { uint32_t kind; uint64_t off, size; } pr_section;

typedef struct pr_header {
    uint32_t version;
    uint64_t file_size, build_id, meta_ck, data_ck;
    int n_sections;
    pr_section sec[PR_MAX_SECTIONS];
    const pr_section *target, *build, *profiles, *graph, *data;
} pr_header;

static uint32_t pr_rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t pr_rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

/* Section table and structure; no checksum. */
static kiln_status pr_header_parse(const uint8_t *d, size_t size, pr_header *h)
{
    memset(h, 0, sizeof *h);
    size_t m = size < 8 ? size : 8;
    if (size == 0 || memcmp(d, PLAN_MAGIC, m) != 0)
        return core_error(KILN_ERR_PARSE, "not a kiln plan (the file does not start with \"%s\")", PLAN_MAGIC);
    if (size < PLAN_HEADER_BYTES)
        return core_error(KILN_ERR_PARSE, "plan is truncated: %zu bytes, the header alone takes %u", size, PLAN_HEADER_BYTES);
    h->version = pr_rd32(d + 8);
    if (h->version != PLAN_FORMAT_VERSION)
        return core_error(KILN_ERR_UNSUPPORTED, "plan format %u, this kiln reads %u: rebuild the plan with `kiln build`",
                          h->version, PLAN_FORMAT_VERSION);
    if (pr_rd32(d + 12) != PLAN_HEADER_BYTES)
        return core_error(KILN_ERR_PARSE, "plan header size is %u, format %u has %u", pr_rd32(d + 12), h->version,
                          PLAN_HEADER_BYTES);
    h->file_size = pr_rd64(d + 16);
    if (h->file_size > size)
        return core_error(KILN_ERR_PARSE, "plan is truncated: %zu of %llu bytes", size, (unsigned long long)h->file_size);
    if (h->file_size < size)
        return core_error(KILN_ERR_PARSE, "plan has %zu bytes, its header says %llu: trailing bytes", size,
                          (unsigned long long)h->file_size);
    h->build_id = pr_rd64(d + 24);
    uint32_t ns = pr_rd32(d + 32);
    h->meta_ck = pr_rd64(d + 48);
    h->data_ck = pr_rd64(d + 56);
    if (ns == 0 || ns > PR_MAX_SECTIONS)
        return core_error(KILN_ERR_PARSE, "plan header: %u sections (1..%d)", ns, PR_MAX_SECTIONS);
    uint64_t table_end = PLAN_HEADER_BYTES + (uint64_t)ns * PLAN_SECTION_ENTRY_BYTES;
    if (table_end > size) return core_error(KILN_ERR_PARSE, "plan is truncated inside its section table");
    h->n_sections = (int)ns;
    for (uint32_t i = 0; i < ns; i++) {
        const uint8_t *e = d + PLAN_HEADER_BYTES + i * PLAN_SECTION_ENTRY_BYTES;
        pr_section *s = &h->sec[i];
        s->kind = pr_rd32(e);
        s->off = pr_rd64(e + 8);
        s->size = pr_rd64(e + 16);
        if (s->off < table_end || s->off > size || s->size > size - s->off)
            return core_error(KILN_ERR_PARSE, "plan section %u (kind %u): bytes %llu+%llu lie outside the %zu-byte file",
                              i, s->kind, (unsigned long long)s->off, (unsigned long long)s->size, size);
        const pr_section **slot = s->kind == PLAN_SEC_TARGET ? &h->target : s->kind == PLAN_SEC_BUILD ? &h->build
                                  : s->kind == PLAN_SEC_PROFILES ? &h->profiles : s->kind == PLAN_SEC_GRAPH ? &h->graph
                                  : s->kind == PLAN_SEC_DATA ? &h->data : NULL;
        if (!slot) continue; /* a newer, optional section */
        if (*slot) return core_error(KILN_ERR_PARSE, "plan has two sections of kind %u", s->kind);
        *slot = s;
        if (s->kind != PLAN_SEC_DATA && s->off % 8)
            return core_error(KILN_ERR_PARSE, "plan section kind %u at %llu is not 8-byte aligned", s->kind,
                              (unsigned long long)s->off);
    }
    if (!h->target || !h->profiles || !h->graph || !h->data)
        return core_error(KILN_ERR_PARSE, "plan lacks its %s section",
                          !h->target ? "target" : !h->profiles ? "profiles" : !h->graph ? "graph" : "data");
    if (h->data->off % PLAN_DATA_ALIGN)
        return core_error(KILN_ERR_PARSE, "plan data section at %llu is not %u-byte aligned",
                          (unsigned long long)h->data->off, PLAN_DATA_ALIGN);
    if (h->data->off + h->data->size != size)
        return core_error(KILN_ERR_PARSE, "plan data section does not end the file");
    for (int i = 0; i < h->n_sections; i++)
        if (&h->sec[i] != h->data && h->sec[i].off + h->sec[i].size > h->data->off)
            return core_error(KILN_ERR_PARSE, "plan section kind %u overlaps the data section", h->sec[i].kind);
    return KILN_OK;
}

static uint64_t pr_meta_checksum(const uint8_t *d, uint64_t data_off)
{
    uint64_t h = plan_hash64(d, 48, 0);
    return plan_hash64(d + PLAN_HEADER_BYTES, (size_t)(data_off - PLAN_HEADER_BYTES), h);
}

void plan_fix_checksums(uint8_t *data, size_t size)
{
    if (!data || size < PLAN_HEADER_BYTES || memcmp(data, PLAN_MAGIC, 8)) return;
    uint32_t ns = pr_rd32(data + 32);
    if (ns == 0 || ns > PR_MAX_SECTIONS || PLAN_HEADER_BYTES + (uint64_t)ns * PLAN_SECTION_ENTRY_BYTES > size) return;
    for (uint32_t i = 0; i < ns; i++) {
        const uint8_t *e = data + PLAN_HEADER_BYTES + i * PLAN_SECTION_ENTRY_BYTES;
        uint64_t off = pr_rd64(e + 8), sz = pr_rd64(e + 16);
        if (pr_rd32(e) != PLAN_SEC_DATA || off < PLAN_HEADER_BYTES || off > size || sz > size - off) continue;
        uint64_t mck = pr_meta_checksum(data, off), dck = plan_hash64(data + off, (size_t)sz, 0);
        memcpy(data + 48, &mck, 8);
        memcpy(data + 56, &dck, 8);
        return;
    }
}

int plan_verify_default(void)
{
    static int cached = -1;
    int v = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (v < 0) {
        const char *e = getenv("KILN_PLAN_VERIFY");
        v = e && !strcmp(e, "meta") ? PLAN_VERIFY_META : PLAN_VERIFY_ALL;
        __atomic_store_n(&cached, v, __ATOMIC_RELAXED);
    }
    return v;
}

bool plan_is_plan(const void *data, size_t size)
{
    return data && size >= 8 && memcmp(data, PLAN_MAGIC, 8) == 0;
}

/* ---- cursor --------------------------------------------------------------------------------------- */

typedef struct pr_cur {
    const uint8_t *p;
    size_t n, pos;
    const char *section;
    kiln_status err; /* first error; later reads return zeros */
} pr_cur;

static kiln_status pr_fail(pr_cur *c, const char *fmt, const char *what)
{
    if (!c->err) c->err = core_error(KILN_ERR_PARSE, "plan %s section, byte %zu: %s%s", c->section, c->pos, fmt, what ? what : "");
    return c->err;
}

static bool pr_need(pr_cur *c, size_t k)
{
    if (c->err) return false;
    if (k > c->n - c->pos) { pr_fail(c, "ends early", NULL); return false; }
    return true;
}

static uint8_t pr_u8(pr_cur *c) { if (!pr_need(c, 1)) return 0; return c->p[c->pos++]; }
static uint32_t pr_u32(pr_cur *c) { if (!pr_need(c, 4)) return 0; uint32_t v = pr_rd32(c->p + c->pos); c->pos += 4; return v; }
static int32_t pr_i32(pr_cur *c) { return (int32_t)pr_u32(c); }
static uint64_t pr_u64(pr_cur *c) { if (!pr_need(c, 8)) return 0; uint64_t v = pr_rd64(c->p + c->pos); c->pos += 8; return v; }
static int64_t pr_i64(pr_cur *c) { return (int64_t)pr_u64(c); }
static float pr_f32(pr_cur *c) { uint32_t b = pr_u32(c); float f; memcpy(&f, &b, 4); return f; }

/* A count of items each taking at least `each` bytes: refused when the rest cannot hold them,
 * so a corrupt count never drives a large allocation. */
static bool pr_count(pr_cur *c, uint64_t n, size_t each, const char *what)
{
    if (c->err) return false;
    if (each && n > (c->n - c->pos) / each) { pr_fail(c, "count too large for the bytes left: ", what); return false; }
    if (n > INT32_MAX) { pr_fail(c, "count out of range: ", what); return false; }
    return true;
}

/* A byte string as written by pw_blob: malloc'd copy with a terminator, *len its length;
 * NULL with *is_null set for the NULL marker, NULL with c->err on failure. */
static char *pr_blob(pr_cur *c, size_t *len, bool *is_null)
{
    *is_null = false;
    if (len) *len = 0;
    uint32_t n = pr_u32(c);
    if (c->err) return NULL;
    if (n == 0xFFFFFFFFu) { *is_null = true; return NULL; }
    if (!pr_need(c, n)) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) { c->err = core_oom(); return NULL; }
    memcpy(s, c->p + c->pos, n);
    s[n] = 0;
    c->pos += n;
    if (len) *len = n;
    return s;
}

/* Nullable string: *out NULL for the marker; false on error. */
static bool pr_strn(pr_cur *c, char **out)
{
    bool is_null;
    *out = pr_blob(c, NULL, &is_null);
    return !c->err;
}

/* Non-NULL string (the marker counts as an error). */
static char *pr_str(pr_cur *c, const char *what)
{
    bool is_null;
    char *s = pr_blob(c, NULL, &is_null);
    if (is_null) pr_fail(c, "missing string: ", what);
    return s;
}

/* ---- decoding ------------------------------------------------------------------------------------- */

typedef struct pr_ctx {
    uint8_t *dbase; /* data section */
    uint64_t dsize;
    int n_opsets;   /* the model's, shared by every graph (as the importer arranges) */
    ir_opset *opsets;
} pr_ctx;

static bool pr_dtype_ok(uint32_t dt) { return dt > 0 && dt < KILN_DTYPE_COUNT_ && core_dtype_size((kiln_dtype)dt) > 0; }

static bool pr_type(pr_cur *c, ir_type *t, int depth)
{
    memset(t, 0, sizeof *t);
    t->ndim = -1;
    if (depth > PR_MAX_DEPTH) { pr_fail(c, "types nested too deep", NULL); return false; }
    uint8_t kind = pr_u8(c);
    uint32_t dt = pr_u32(c);
    int32_t ndim = pr_i32(c);
    uint8_t has_dims = pr_u8(c);
    if (c->err) return false;
    if (kind > IR_TYPE_SPARSE_TENSOR || dt >= KILN_DTYPE_COUNT_ || ndim < -1 || ndim > PR_MAX_RANK || (has_dims && ndim <= 0)) {
        pr_fail(c, "bad type (kind, dtype or rank)", NULL);
        return false;
    }
    t->kind = (ir_type_kind)kind;
    t->dtype = (kiln_dtype)dt;
    t->ndim = ndim;
    if (has_dims) {
        if (!pr_count(c, (uint64_t)ndim, 12, "dims")) return false;
        t->dims = calloc((size_t)ndim, sizeof *t->dims);
        if (!t->dims) { c->err = core_oom(); return false; }
        for (int i = 0; i < ndim; i++) {
            t->dims[i].value = pr_i64(c);
            if (!pr_strn(c, &t->dims[i].symbol)) return false;
            if (t->dims[i].value < -1 || t->dims[i].value > PR_DIM_LIMIT) { pr_fail(c, "bad dim in a type", NULL); return false; }
        }
    }
    uint8_t has_elem = pr_u8(c);
    if (c->err) return false;
    if (has_elem) {
        t->elem = calloc(1, sizeof *t->elem);
        if (!t->elem) { c->err = core_oom(); return false; }
        if (!pr_type(c, t->elem, depth + 1)) return false;
    }
    return true;
}

static core_tensor *pr_tensor(pr_cur *c, const pr_ctx *x)
{
    uint32_t dt = pr_u32(c), ndim = pr_u32(c);
    if (c->err) return NULL;
    if (!pr_dtype_ok(dt)) { pr_fail(c, "tensor has an unknown dtype", NULL); return NULL; }
    if (ndim > KILN_MAX_DIMS) { pr_fail(c, "tensor has too many dims", NULL); return NULL; }
    int64_t dims[KILN_MAX_DIMS];
    for (uint32_t i = 0; i < ndim; i++) {
        dims[i] = pr_i64(c);
        if (!c->err && (dims[i] < 0 || dims[i] > PR_DIM_LIMIT)) { pr_fail(c, "tensor has a negative or huge dim", NULL); return NULL; }
    }
    char *name = NULL;
    if (!pr_strn(c, &name)) return NULL;
    int64_t numel = core_shape_numel((int)ndim, dims);
    core_quant *q = NULL;
    core_tensor *t = NULL;
    if (numel < 0) { pr_fail(c, "tensor element count overflows", NULL); goto fail; }
    if (pr_u8(c)) {
        int32_t axis = pr_i32(c);
        int64_t count = pr_i64(c);
        if (c->err) goto fail;
        if (count < 0 || !pr_count(c, (uint64_t)count, 8, "quantization scales")) { pr_fail(c, "bad quantization count", NULL); goto fail; }
        if (axis < -1 || axis >= (int32_t)(ndim ? ndim : 1)) { pr_fail(c, "bad quantization axis", NULL); goto fail; }
        q = calloc(1, sizeof *q);
        if (!q) { c->err = core_oom(); goto fail; }
        q->axis = axis;
        q->count = count;
        if (count) {
            q->scale = malloc(sizeof(float) * (size_t)count);
            q->zero_point = malloc(sizeof(int32_t) * (size_t)count);
            if (!q->scale || !q->zero_point) { c->err = core_oom(); goto fail; }
            for (int64_t i = 0; i < count; i++) q->scale[i] = pr_f32(c);
            for (int64_t i = 0; i < count; i++) q->zero_point[i] = pr_i32(c);
        }
    }
    if (c->err) goto fail;
    if (dt == KILN_DTYPE_STRING) {
        if (!pr_count(c, (uint64_t)numel, 4, "strings")) goto fail;
        t = core_tensor_create(KILN_DTYPE_STRING, (int)ndim, dims);
        if (!t) { c->err = core_oom(); goto fail; }
        for (int64_t i = 0; i < numel; i++) {
            size_t len;
            bool is_null;
            char *s = pr_blob(c, &len, &is_null);
            if (c->err || is_null) { free(s); pr_fail(c, "bad string element", NULL); goto fail; }
            char **el = t->data;
            free(el[i]);
            el[i] = s;
        }
    } else {
        uint64_t off = pr_u64(c), nbytes = pr_u64(c);
        if (c->err) goto fail;
        int64_t want;
        if (!core_mul_size(numel, (int64_t)core_dtype_size((kiln_dtype)dt), &want) || (uint64_t)want != nbytes) {
            pr_fail(c, "tensor byte count does not match its shape", NULL);
            goto fail;
        }
        if (nbytes == 0) {
            t = core_tensor_create((kiln_dtype)dt, (int)ndim, dims);
            if (!t) { c->err = core_oom(); goto fail; }
        } else {
            if (off % PLAN_DATA_ALIGN || off > x->dsize || nbytes > x->dsize - off) {
                pr_fail(c, "tensor data lies outside the data section or is misaligned", NULL);
                goto fail;
            }
            t = core_tensor_wrap((kiln_dtype)dt, (int)ndim, dims, x->dbase + off);
            if (!t) { c->err = core_oom(); goto fail; }
        }
    }
    t->name = name;
    t->quant = q;
    return t;
fail:
    if (q) { free(q->scale); free(q->zero_point); free(q); }
    free(name);
    core_tensor_destroy(t);
    return NULL;
}

static core_value *pr_value(pr_cur *c, const pr_ctx *x, int depth)
{
    if (depth > PR_MAX_DEPTH) { pr_fail(c, "sequences nested too deep", NULL); return NULL; }
    uint8_t kind = pr_u8(c);
    if (c->err) return NULL;
    if (kind == CORE_VALUE_TENSOR) {
        core_tensor *t = pr_tensor(c, x);
        if (!t) return NULL;
        core_value *v = core_value_from_tensor(t);
        if (!v) c->err = core_oom();
        return v;
    }
    uint32_t et = pr_u32(c);
    if (c->err) return NULL;
    if (et >= KILN_DTYPE_COUNT_) { pr_fail(c, "bad element dtype", NULL); return NULL; }
    if (kind == CORE_VALUE_NONE) {
        core_value *v = core_value_none();
        if (!v) { c->err = core_oom(); return NULL; }
        v->elem_dtype = (kiln_dtype)et;
        return v;
    }
    if (kind != CORE_VALUE_SEQUENCE) { pr_fail(c, "bad value kind", NULL); return NULL; }
    uint64_t n = pr_u64(c);
    if (!pr_count(c, n, 1, "sequence items")) return NULL;
    core_value *seq = core_value_sequence((kiln_dtype)et);
    if (!seq) { c->err = core_oom(); return NULL; }
    for (uint64_t i = 0; i < n; i++) {
        core_value *it = pr_value(c, x, depth + 1);
        if (!it) { core_value_release(seq); return NULL; }
        bool ok = core_value_seq_append(seq, it);
        core_value_release(it);
        if (!ok) { core_value_release(seq); c->err = core_oom(); return NULL; }
    }
    return seq;
}

static ir_graph *pr_graph(pr_cur *c, const pr_ctx *x, ir_graph *parent, int depth);

static bool pr_attr(pr_cur *c, const pr_ctx *x, ir_graph *g, ir_attr *a, int depth)
{
    memset(a, 0, sizeof *a);
    a->name = pr_str(c, "attribute name");
    uint32_t type = pr_u32(c);
    if (!pr_strn(c, &a->ref_attr_name)) return false;
    if (c->err) return false;
    if (!*a->name) { pr_fail(c, "attribute without a name", NULL); return false; }
    if (type > IR_ATTR_TYPE_PROTOS) { pr_fail(c, "unknown attribute type", NULL); return false; }
    a->type = (ir_attr_type)type;
    uint64_t n;
    switch (a->type) {
    case IR_ATTR_FLOAT: a->f = pr_f32(c); break;
    case IR_ATTR_INT: a->i = pr_i64(c); break;
    case IR_ATTR_STRING: {
        bool is_null;
        a->s = pr_blob(c, &a->s_len, &is_null);
        if (is_null) pr_fail(c, "string attribute is NULL", NULL);
        break;
    }
    case IR_ATTR_TENSOR:
    case IR_ATTR_SPARSE_TENSOR:
        if (pr_u8(c)) a->t = pr_tensor(c, x);
        break;
    case IR_ATTR_GRAPH:
        if (pr_u8(c)) a->g = pr_graph(c, x, g, depth + 1);
        break;
    case IR_ATTR_TYPE_PROTO:
        if (pr_u8(c)) {
            a->tp = calloc(1, sizeof *a->tp);
            if (!a->tp) { c->err = core_oom(); return false; }
            pr_type(c, a->tp, 0);
        }
        break;
    case IR_ATTR_FLOATS:
        n = pr_u64(c);
        if (!pr_count(c, n, 4, "floats")) return false;
        a->n = (int64_t)n;
        if (!(a->floats = malloc(sizeof(float) * (size_t)(n + 1)))) { c->err = core_oom(); return false; }
        for (uint64_t i = 0; i < n; i++) a->floats[i] = pr_f32(c);
        break;
    case IR_ATTR_INTS:
        n = pr_u64(c);
        if (!pr_count(c, n, 8, "ints")) return false;
        a->n = (int64_t)n;
        if (!(a->ints = malloc(sizeof(int64_t) * (size_t)(n + 1)))) { c->err = core_oom(); return false; }
        for (uint64_t i = 0; i < n; i++) a->ints[i] = pr_i64(c);
        break;
    case IR_ATTR_STRINGS:
        n = pr_u64(c);
        if (!pr_count(c, n, 4, "strings")) return false;
        if (!(a->strings = calloc((size_t)n + 1, sizeof(char *)))) { c->err = core_oom(); return false; }
        a->n = (int64_t)n;
        for (uint64_t i = 0; i < n && !c->err; i++) a->strings[i] = pr_str(c, "string list item");
        break;
    case IR_ATTR_TENSORS:
    case IR_ATTR_SPARSE_TENSORS:
        n = pr_u64(c);
        if (!pr_count(c, n, 1, "tensors")) return false;
        if (!(a->tensors = calloc((size_t)n + 1, sizeof(core_tensor *)))) { c->err = core_oom(); return false; }
        a->n = (int64_t)n;
        for (uint64_t i = 0; i < n && !c->err; i++)
            if (pr_u8(c)) a->tensors[i] = pr_tensor(c, x);
        break;
    case IR_ATTR_GRAPHS:
        n = pr_u64(c);
        if (!pr_count(c, n, 1, "graphs")) return false;
        if (!(a->graphs = calloc((size_t)n + 1, sizeof(ir_graph *)))) { c->err = core_oom(); return false; }
        a->n = (int64_t)n;
        for (uint64_t i = 0; i < n && !c->err; i++)
            if (pr_u8(c)) a->graphs[i] = pr_graph(c, x, g, depth + 1);
        break;
    case IR_ATTR_TYPE_PROTOS:
        n = pr_u64(c);
        if (!pr_count(c, n, 1, "types")) return false;
        if (!(a->tps = calloc((size_t)n + 1, sizeof(ir_type *)))) { c->err = core_oom(); return false; }
        a->n = (int64_t)n;
        for (uint64_t i = 0; i < n && !c->err; i++)
            if (pr_u8(c)) {
                if (!(a->tps[i] = calloc(1, sizeof(ir_type)))) { c->err = core_oom(); return false; }
                pr_type(c, a->tps[i], 0);
            }
        break;
    default: break;
    }
    return !c->err;
}

static bool pr_ids(pr_cur *c, const ir_graph *g, uint32_t n, int **out, bool allow_omitted, const char *what)
{
    *out = NULL;
    if (!pr_count(c, n, 4, what)) return false;
    *out = malloc(sizeof(int) * ((size_t)n + 1));
    if (!*out) { c->err = core_oom(); return false; }
    for (uint32_t i = 0; i < n; i++) {
        int32_t v = pr_i32(c);
        if (c->err) return false;
        if (v < (allow_omitted ? -1 : 0) || v >= g->n_values) { pr_fail(c, "value id out of range in ", what); return false; }
        (*out)[i] = v;
    }
    return true;
}

static bool pr_defined_above(const ir_graph *g, const char *name)
{
    for (const ir_graph *p = g->parent; p; p = p->parent)
        if (ir_graph_find_value(p, name) >= 0) return true;
    return false;
}

/* Single assignment and order: every node input is available when the node runs (graph input,
 * constant, outer value or an earlier node's output), which also makes the graph acyclic. */
static bool pr_graph_check(pr_cur *c, ir_graph *g)
{
    char *avail = calloc((size_t)g->n_values + 1, 1);
    if (!avail) { c->err = core_oom(); return false; }
    for (int v = 0; v < g->n_values; v++) {
        ir_value *val = &g->values[v];
        val->producer = -1;
        if (val->is_outer && !pr_defined_above(g, val->name)) {
            free(avail);
            c->err = core_error(KILN_ERR_INVALID_MODEL, "plan graph '%s': outer value '%s' is not defined in an enclosing graph",
                                g->name, val->name);
            return false;
        }
        avail[v] = val->is_graph_input || val->constant || val->is_outer;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *nd = &g->nodes[i];
        for (int k = 0; k < nd->n_inputs; k++) {
            int v = nd->inputs[k];
            if (v >= 0 && !avail[v]) {
                free(avail);
                c->err = core_error(KILN_ERR_INVALID_MODEL, "plan graph '%s': node %d '%s' (%s) reads '%s' before it is produced",
                                    g->name, i, nd->name, nd->op_type, g->values[v].name);
                return false;
            }
        }
        for (int k = 0; k < nd->n_outputs; k++) {
            int v = nd->outputs[k];
            if (v < 0) continue;
            if (g->values[v].producer >= 0 || g->values[v].is_graph_input || g->values[v].constant || g->values[v].is_outer) {
                free(avail);
                c->err = core_error(KILN_ERR_INVALID_MODEL, "plan graph '%s': node %d '%s' (%s) redefines '%s'", g->name, i,
                                    nd->name, nd->op_type, g->values[v].name);
                return false;
            }
            g->values[v].producer = i;
            avail[v] = 1;
        }
    }
    for (int k = 0; k < g->n_inputs; k++)
        if (!g->values[g->inputs[k]].is_graph_input) {
            free(avail);
            c->err = core_error(KILN_ERR_INVALID_MODEL, "plan graph '%s': input '%s' is not marked as one", g->name,
                                g->values[g->inputs[k]].name);
            return false;
        }
    free(avail);
    return true;
}

static ir_graph *pr_graph(pr_cur *c, const pr_ctx *x, ir_graph *parent, int depth)
{
    if (depth > PR_MAX_DEPTH) { pr_fail(c, "subgraphs nested too deep", NULL); return NULL; }
    char *name = pr_str(c, "graph name");
    if (c->err) { free(name); return NULL; }
    ir_graph *g = ir_graph_create(name, parent);
    free(name);
    if (!g) { c->err = core_oom(); return NULL; }
    if (!parent) {
        g->n_opsets = x->n_opsets;
        g->opsets = x->opsets;
    }
    uint32_t nv = pr_u32(c);
    if (!pr_count(c, nv, 14, "values")) goto fail;
    for (uint32_t i = 0; i < nv; i++) {
        char *vn = pr_str(c, "value name");
        if (c->err) { free(vn); goto fail; }
        int id = *vn ? ir_graph_intern_value(g, vn) : -1;
        free(vn);
        if (id == -2) { c->err = core_oom(); goto fail; }
        if (id != (int)i) { pr_fail(c, "value names must be unique and non-empty", NULL); goto fail; }
        ir_value *v = &g->values[id];
        if (!pr_type(c, &v->type, 0)) goto fail;
        uint8_t flags = pr_u8(c);
        if (c->err) goto fail;
        if (flags & ~15u) { pr_fail(c, "unknown value flags", NULL); goto fail; }
        v->is_graph_input = flags & 1;
        v->is_graph_output = flags & 2;
        v->is_outer = flags & 4;
        if (flags & 8) {
            core_value *cv = pr_value(c, x, 0);
            if (!cv) goto fail;
            g->values[id].constant = cv;
        }
    }
    uint32_t n = pr_u32(c);
    if (!pr_ids(c, g, n, &g->inputs, false, "graph inputs")) goto fail;
    g->n_inputs = (int)n;
    n = pr_u32(c);
    if (!pr_ids(c, g, n, &g->outputs, false, "graph outputs")) goto fail;
    g->n_outputs = (int)n;
    uint32_t nn = pr_u32(c);
    if (!pr_count(c, nn, 28, "nodes")) goto fail;
    for (uint32_t i = 0; i < nn; i++) {
        ir_node nd;
        memset(&nd, 0, sizeof nd);
        nd.name = pr_str(c, "node name");
        nd.op_type = pr_str(c, "op type");
        nd.domain = pr_str(c, "domain");
        nd.opset = pr_i32(c);
        uint32_t k = pr_u32(c);
        if (!c->err && pr_ids(c, g, k, &nd.inputs, true, "node inputs")) nd.n_inputs = (int)k;
        k = pr_u32(c);
        if (!c->err && pr_ids(c, g, k, &nd.outputs, true, "node outputs")) nd.n_outputs = (int)k;
        k = pr_u32(c);
        if (!c->err && pr_count(c, k, 12, "attributes")) {
            nd.attrs = calloc((size_t)k + 1, sizeof *nd.attrs);
            if (!nd.attrs) c->err = core_oom();
            for (uint32_t a = 0; a < k && !c->err; a++) {
                nd.n_attrs = (int)a + 1;
                pr_attr(c, x, g, &nd.attrs[a], depth);
            }
        }
        if (!c->err && (!*nd.op_type || nd.opset < 0)) pr_fail(c, "node without op type or with a negative opset", NULL);
        if (c->err) { ir_node_free(&nd); goto fail; }
        if (ir_graph_add_node(g, &nd) < 0) { ir_node_free(&nd); c->err = core_oom(); goto fail; }
    }
    if (!pr_graph_check(c, g)) goto fail;
    return g;
fail:
    ir_graph_destroy(g);
    return NULL;
}

/* ---- sections ---------------------------------------------------------------------------------------- */

static pr_cur pr_section_cur(const uint8_t *d, const pr_section *s, const char *name)
{
    pr_cur c = {d + s->off, (size_t)s->size, 0, name, KILN_OK};
    return c;
}

static kiln_status pr_target(const uint8_t *d, const pr_header *h, plan_info *info)
{
    pr_cur c = pr_section_cur(d, h->target, "target");
    char *vendor = NULL, *brand = NULL, *kernels = NULL;
    pr_strn(&c, &vendor);
    pr_strn(&c, &brand);
    info->target.isa = pr_u64(&c);
    pr_strn(&c, &kernels);
    info->isa_required = pr_u64(&c);
    snprintf(info->target.vendor, sizeof info->target.vendor, "%s", vendor ? vendor : "");
    snprintf(info->target.brand, sizeof info->target.brand, "%s", brand ? brand : "");
    snprintf(info->target.kernels, sizeof info->target.kernels, "%s", kernels ? kernels : "");
    free(vendor);
    free(brand);
    free(kernels);
    return c.err;
}

static kiln_status pr_build(const uint8_t *d, const pr_header *h, plan_info *info)
{
    if (!h->build) return KILN_OK;
    pr_cur c = pr_section_cur(d, h->build, "build");
    uint32_t threads = pr_u32(&c);
    pr_strn(&c, &info->notes);
    if (!c.err && threads > 4096) pr_fail(&c, "thread count out of range", NULL);
    info->build_threads = (int)threads;
    return c.err;
}

static kiln_status pr_profiles(const uint8_t *d, const pr_header *h, plan_info *info)
{
    pr_cur c = pr_section_cur(d, h->profiles, "profiles");
    uint32_t np = pr_u32(&c);
    if (c.err) return c.err;
    if (np > PLAN_MAX_PROFILES) return pr_fail(&c, "too many profiles", NULL);
    info->profiles = calloc((size_t)np + 1, sizeof *info->profiles);
    if (!info->profiles) return core_oom();
    info->n_profiles = (int)np;
    for (uint32_t p = 0; p < np && !c.err; p++) {
        plan_profile *pr = &info->profiles[p];
        uint32_t ni = pr_u32(&c);
        if (!pr_count(&c, ni, 8, "profile inputs")) break;
        if (!(pr->inputs = calloc((size_t)ni + 1, sizeof *pr->inputs))) return core_oom();
        pr->n_inputs = (int)ni;
        for (uint32_t k = 0; k < ni && !c.err; k++) {
            plan_input_range *r = &pr->inputs[k];
            r->name = pr_str(&c, "profile input name");
            uint32_t nd = pr_u32(&c);
            if (c.err) break;
            if (nd > KILN_MAX_DIMS) { pr_fail(&c, "profile input rank too large", NULL); break; }
            r->ndim = (int)nd;
            for (uint32_t i = 0; i < nd; i++) r->min[i] = pr_i64(&c);
            for (uint32_t i = 0; i < nd; i++) r->opt[i] = pr_i64(&c);
            for (uint32_t i = 0; i < nd; i++) r->max[i] = pr_i64(&c);
            for (uint32_t i = 0; i < nd && !c.err; i++)
                if (r->min[i] < 0 || r->min[i] > r->opt[i] || r->opt[i] > r->max[i] || r->max[i] > PR_DIM_LIMIT)
                    pr_fail(&c, "profile range is not 0 <= min <= opt <= max", NULL);
        }
        pr->arena_bytes = pr_u64(&c);
        uint32_t ns = pr_u32(&c);
        if (!pr_count(&c, ns, 32, "memory plan buffers")) break;
        if (!(pr->slots = malloc(sizeof *pr->slots * ((size_t)ns + 1)))) return core_oom();
        pr->n_slots = (int)ns;
        for (uint32_t s = 0; s < ns; s++) {
            rt_mem_slot *m = &pr->slots[s];
            m->node = pr_i32(&c);
            m->out = pr_i32(&c);
            m->size = pr_u64(&c);
            m->offset = pr_u64(&c);
            m->first = pr_i32(&c);
            m->last = pr_i32(&c);
        }
    }
    return c.err;
}

/* The profiles against the decoded graph: inputs exist with the declared rank and fixed dims;
 * memory plan buffers name real node outputs and fit their arena. */
static kiln_status pr_profiles_check(const plan_info *info, const ir_graph *g)
{
    for (int p = 0; p < info->n_profiles; p++) {
        const plan_profile *pr = &info->profiles[p];
        for (int k = 0; k < pr->n_inputs; k++) {
            const plan_input_range *r = &pr->inputs[k];
            int v = -1;
            for (int i = 0; i < g->n_inputs; i++)
                if (!strcmp(g->values[g->inputs[i]].name, r->name)) v = g->inputs[i];
            if (v < 0) return core_error(KILN_ERR_INVALID_MODEL, "plan profile %d names '%s', which is not a graph input", p, r->name);
            const ir_type *t = &g->values[v].type;
            if (t->kind == IR_TYPE_TENSOR && t->ndim >= 0 && t->ndim != r->ndim)
                return core_error(KILN_ERR_INVALID_MODEL, "plan profile %d: input '%s' has %d dims, the graph declares %d", p,
                                  r->name, r->ndim, t->ndim);
            for (int d = 0; t->dims && d < r->ndim && d < t->ndim; d++)
                if (t->dims[d].value >= 0 && (r->min[d] != t->dims[d].value || r->max[d] != t->dims[d].value))
                    return core_error(KILN_ERR_INVALID_MODEL, "plan profile %d: input '%s' dim %d range [%lld, %lld] contradicts "
                                      "its fixed size %lld", p, r->name, d, (long long)r->min[d], (long long)r->max[d],
                                      (long long)t->dims[d].value);
        }
        /* packing never needs more than all buffers side by side: a larger arena is corrupt */
        uint64_t total = 0;
        for (int s = 0; s < pr->n_slots; s++) total += pr->slots[s].size > pr->arena_bytes ? pr->arena_bytes + 1 : pr->slots[s].size;
        if (pr->arena_bytes > total)
            return core_error(KILN_ERR_INVALID_MODEL, "plan profile %d: arena of %llu bytes exceeds its buffers' %llu", p,
                              (unsigned long long)pr->arena_bytes, (unsigned long long)total);
        for (int s = 0; s < pr->n_slots; s++) {
            const rt_mem_slot *a = &pr->slots[s];
            if (a->node < 0 || a->node >= g->n_nodes || a->out < 0 || a->out >= g->nodes[a->node].n_outputs ||
                a->first > a->node || /* an elided Concat's output starts with its first input */ a->last < a->first || a->last > g->n_nodes || a->size % 64 ||
                a->size > pr->arena_bytes || a->offset > pr->arena_bytes - a->size)
                return core_error(KILN_ERR_INVALID_MODEL, "plan profile %d: memory plan buffer %d does not fit the graph "
                                  "or its %llu-byte arena", p, s, (unsigned long long)pr->arena_bytes);
        }
    }
    return KILN_OK;
}

static kiln_status pr_model(uint8_t *d, const pr_header *h, ir_model **out)
{
    pr_cur c = pr_section_cur(d, h->graph, "graph");
    pr_ctx x = {d + h->data->off, h->data->size, 0, NULL};
    ir_model *m = calloc(1, sizeof *m);
    if (!m) return core_oom();
    m->ir_version = pr_i64(&c);
    pr_strn(&c, &m->producer_name);
    pr_strn(&c, &m->producer_version);
    pr_strn(&c, &m->domain);
    m->model_version = pr_i64(&c);
    pr_strn(&c, &m->doc_string);
    uint32_t no = pr_u32(&c);
    if (pr_count(&c, no, 12, "opsets")) {
        m->opsets = calloc((size_t)no + 1, sizeof *m->opsets);
        if (!m->opsets) c.err = core_oom();
        for (uint32_t i = 0; i < no && !c.err; i++) {
            m->opsets[i].domain = pr_str(&c, "opset domain");
            m->opsets[i].version = pr_i64(&c);
            m->n_opsets = (int)i + 1;
        }
    }
    if (!c.err) {
        x.n_opsets = m->n_opsets;
        x.opsets = m->opsets;
        m->graph = pr_graph(&c, &x, NULL, 0);
    }
    if (!c.err && c.pos != c.n) pr_fail(&c, "trailing bytes after the graph", NULL);
    if (c.err) { ir_model_destroy(m); return c.err; }
    *out = m;
    return KILN_OK;
}

/* ---- entry points ---------------------------------------------------------------------------------------- */

void plan_info_destroy(plan_info *info)
{
    if (!info) return;
    for (int p = 0; p < info->n_profiles; p++) {
        for (int k = 0; k < info->profiles[p].n_inputs; k++) free(info->profiles[p].inputs[k].name);
        free(info->profiles[p].inputs);
        free(info->profiles[p].slots);
    }
    free(info->profiles);
    free(info->notes);
    free(info);
}

static kiln_status pr_check(const uint8_t *d, size_t size, int verify, pr_header *h, plan_info **out)
{
    *out = NULL;
    kiln_status st = pr_header_parse(d, size, h);
    if (st) return st;
    if (pr_meta_checksum(d, h->data->off) != h->meta_ck)
        return core_error(KILN_ERR_PARSE, "plan checksum mismatch in the header or graph: the file is corrupt");
    if (h->build_id != plan_build_id())
        return core_error(KILN_ERR_UNSUPPORTED, "plan was built by another kiln build (id %016llx, this kiln %016llx): "
                          "rebuild the plan with `kiln build`", (unsigned long long)h->build_id,
                          (unsigned long long)plan_build_id());
    plan_info *info = calloc(1, sizeof *info);
    if (!info) return core_oom();
    info->format_version = h->version;
    info->build_id = h->build_id;
    info->file_size = h->file_size;
    info->data_offset = h->data->off;
    info->data_size = h->data->size;
    info->meta_checksum = h->meta_ck;
    info->data_checksum = h->data_ck;
    st = pr_target(d, h, info);
    if (!st) st = pr_build(d, h, info);
    if (st) { plan_info_destroy(info); return st; }
    uint64_t missing = info->isa_required & ~plan_target_host()->isa;
    if (missing) {
        char isa[256];
        plan_info_destroy(info);
        return core_error(KILN_ERR_UNSUPPORTED, "plan needs %s, this CPU lacks it: rebuild on this machine",
                          plan_isa_str(missing, isa, sizeof isa));
    }
    if (verify == PLAN_VERIFY_ALL && plan_hash64(d + h->data->off, (size_t)h->data->size, 0) != h->data_ck) {
        plan_info_destroy(info);
        return core_error(KILN_ERR_PARSE, "plan checksum mismatch in the weights: the file is corrupt");
    }
    *out = info;
    return KILN_OK;
}

kiln_status plan_check_bytes(const void *data, size_t size, int verify, plan_info **info)
{
    if (info) *info = NULL;
    if (!data && size) return core_error(KILN_ERR_INVALID_ARGUMENT, "plan_check_bytes: NULL data");
    pr_header h;
    plan_info *pi = NULL;
    kiln_status st = pr_check(data, size, verify, &h, &pi);
    if (st) return st;
    if (!st) st = pr_profiles(data, &h, pi);
    if (st || !info) plan_info_destroy(pi);
    else *info = pi;
    return st;
}

kiln_status plan_load(void *data, size_t size, bool is_mmap, bool take, int verify, ir_model **out, plan_info **info)
{
    *out = NULL;
    if (info) *info = NULL;
    if (!data) return core_error(KILN_ERR_INVALID_ARGUMENT, "plan_load: NULL data");
    if ((uintptr_t)data % PLAN_DATA_ALIGN) return core_error(KILN_ERR_INVALID_ARGUMENT, "plan_load: buffer not 64-byte aligned");
    pr_header h;
    plan_info *pi = NULL;
    kiln_status st = pr_check(data, size, verify, &h, &pi);
    if (st) return st;
    st = pr_profiles(data, &h, pi);
    ir_model *m = NULL;
    if (!st) st = pr_model(data, &h, &m);
    if (!st) st = pr_profiles_check(pi, m->graph);
    if (!st) st = ir_graph_verify(m->graph);
    if (!st) st = rt_graph_prepare(m->graph);
    if (!st && take) {
        m->mappings = calloc(1, sizeof *m->mappings);
        if (!m->mappings) st = core_oom();
        else {
            m->mappings[0].addr = data;
            m->mappings[0].size = size;
            m->mappings[0].is_mmap = is_mmap;
            m->n_mappings = 1;
        }
    }
    if (st) {
        ir_model_destroy(m);
        plan_info_destroy(pi);
        return st;
    }
    *out = m;
    if (info) *info = pi;
    else plan_info_destroy(pi);
    return KILN_OK;
}

kiln_status plan_load_file(const char *path, int verify, ir_model **out, plan_info **info)
{
    *out = NULL;
    if (info) *info = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return core_error(KILN_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return core_error(KILN_ERR_IO, "'%s' is not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    if (size < PLAN_HEADER_BYTES) {
        close(fd);
        return core_error(KILN_ERR_PARSE, "%s: plan is truncated: %zu bytes, the header alone takes %u", path, size,
                          PLAN_HEADER_BYTES);
    }
    /* Private writable mapping (as the ONNX loader): weights are borrowed read-mostly; a stray
     * in-place write copies the page instead of faulting or reaching the file. */
    void *addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (addr == MAP_FAILED) return core_error(KILN_ERR_IO, "cannot map '%s': %s", path, strerror(errno));
    kiln_status st = plan_load(addr, size, true, true, verify, out, info);
    if (st) {
        munmap(addr, size);
        return core_error_prefix(st, "%s: ", path);
    }
    return KILN_OK;
}
