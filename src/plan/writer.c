/* writer.c — serializes an optimized graph and its build results into the plan format
 * (docs/plan-format.md). Output depends only on the graph and the info passed in: no
 * timestamps, no pointers, zeroed padding, so identical builds give identical bytes. */
#include "plan/plan.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PW_MAX_DEPTH 64

typedef struct pw_buf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} pw_buf;

static void pw_bytes(pw_buf *b, const void *src, size_t n)
{
    if (b->oom || n == 0) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) { b->oom = true; return; }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void pw_zero(pw_buf *b, size_t n)
{
    static const uint8_t z[64];
    while (n) {
        size_t k = n < sizeof z ? n : sizeof z;
        pw_bytes(b, z, k);
        n -= k;
    }
}

static void pw_align(pw_buf *b, size_t a) { pw_zero(b, (a - b->n % a) % a); }
static void pw_u8(pw_buf *b, uint8_t v) { pw_bytes(b, &v, 1); }
static void pw_u32(pw_buf *b, uint32_t v) { pw_bytes(b, &v, 4); }
static void pw_i32(pw_buf *b, int32_t v) { pw_bytes(b, &v, 4); }
static void pw_u64(pw_buf *b, uint64_t v) { pw_bytes(b, &v, 8); }
static void pw_i64(pw_buf *b, int64_t v) { pw_bytes(b, &v, 8); }
static void pw_f32(pw_buf *b, float v) { pw_bytes(b, &v, 4); }

/* A byte string: u32 length, 0xFFFFFFFF for NULL, then the bytes (no terminator). */
static void pw_blob(pw_buf *b, const char *s, size_t n)
{
    if (!s) { pw_u32(b, 0xFFFFFFFFu); return; }
    if (n >= 0xFFFFFFFFu) { b->oom = true; return; }
    pw_u32(b, (uint32_t)n);
    pw_bytes(b, s, n);
}
static void pw_str(pw_buf *b, const char *s) { pw_blob(b, s, s ? strlen(s) : 0); }

/* ---- tensor data, deduplicated by address ---------------------------------------------------- */

typedef struct pw_ctx {
    pw_buf meta, data;
    struct pw_blobref { const void *ptr; size_t nbytes; uint64_t off; } *refs;
    int *slots; /* open addressing over refs, -1 = empty */
    size_t n_refs, cap_refs, n_slots;
    kiln_status err;
} pw_ctx;

static size_t pw_hash_ptr(const void *p, size_t nbytes, size_t mask)
{
    uint64_t x = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull ^ (uint64_t)nbytes * 0xC2B2AE3D27D4EB4Full;
    return (size_t)(x >> 17) & mask;
}

static bool pw_grow_refs(pw_ctx *c)
{
    size_t ns = c->n_slots ? c->n_slots * 2 : 256;
    int *slots = malloc(sizeof(int) * ns);
    struct pw_blobref *refs = realloc(c->refs, sizeof *refs * (ns / 2));
    if (!slots || !refs) { free(slots); if (refs) c->refs = refs; return false; }
    c->refs = refs;
    c->cap_refs = ns / 2;
    for (size_t i = 0; i < ns; i++) slots[i] = -1;
    for (size_t i = 0; i < c->n_refs; i++) {
        size_t h = pw_hash_ptr(refs[i].ptr, refs[i].nbytes, ns - 1);
        while (slots[h] >= 0) h = (h + 1) & (ns - 1);
        slots[h] = (int)i;
    }
    free(c->slots);
    c->slots = slots;
    c->n_slots = ns;
    return true;
}

/* Offset in the data section of `nbytes` at `ptr`, appended (64-byte aligned) unless the same
 * bytes were already written. */
static uint64_t pw_data(pw_ctx *c, const void *ptr, size_t nbytes)
{
    if (c->n_refs + 1 > c->cap_refs && !pw_grow_refs(c)) { c->meta.oom = true; return 0; }
    size_t mask = c->n_slots - 1, h = pw_hash_ptr(ptr, nbytes, mask);
    for (; c->slots[h] >= 0; h = (h + 1) & mask) {
        const struct pw_blobref *r = &c->refs[c->slots[h]];
        if (r->ptr == ptr && r->nbytes == nbytes) return r->off;
    }
    pw_align(&c->data, PLAN_DATA_ALIGN);
    uint64_t off = c->data.n;
    pw_bytes(&c->data, ptr, nbytes);
    c->refs[c->n_refs] = (struct pw_blobref){ptr, nbytes, off};
    c->slots[h] = (int)c->n_refs++;
    return off;
}

/* ---- graph encoding --------------------------------------------------------------------------- */

static void pw_type(pw_ctx *c, const ir_type *t, int depth)
{
    pw_buf *b = &c->meta;
    if (depth > PW_MAX_DEPTH) { c->err = core_error(KILN_ERR_INVALID_MODEL, "plan writer: type nested too deep"); return; }
    pw_u8(b, (uint8_t)t->kind);
    pw_u32(b, (uint32_t)t->dtype);
    pw_i32(b, t->ndim);
    bool has_dims = t->ndim > 0 && t->dims;
    pw_u8(b, has_dims);
    for (int i = 0; has_dims && i < t->ndim; i++) {
        pw_i64(b, t->dims[i].value);
        pw_str(b, t->dims[i].symbol);
    }
    pw_u8(b, t->elem != NULL);
    if (t->elem) pw_type(c, t->elem, depth + 1);
}

static void pw_tensor(pw_ctx *c, const core_tensor *t)
{
    pw_buf *b = &c->meta;
    if (t->device != CORE_DEVICE_CPU) {
        c->err = core_error(KILN_ERR_UNSUPPORTED, "plan writer: tensor '%s' is not in host memory", t->name ? t->name : "");
        return;
    }
    pw_u32(b, (uint32_t)t->dtype);
    pw_u32(b, (uint32_t)t->ndim);
    for (int i = 0; i < t->ndim; i++) pw_i64(b, t->dims[i]);
    pw_str(b, t->name);
    pw_u8(b, t->quant != NULL);
    if (t->quant) {
        const core_quant *q = t->quant;
        pw_i32(b, q->axis);
        pw_i64(b, q->count);
        for (int64_t i = 0; i < q->count; i++) pw_f32(b, q->scale ? q->scale[i] : 0.0f);
        for (int64_t i = 0; i < q->count; i++) pw_i32(b, q->zero_point ? q->zero_point[i] : 0);
    }
    if (t->dtype == KILN_DTYPE_STRING) {
        char *const *s = t->data;
        for (int64_t i = 0; i < t->numel; i++) pw_str(b, s && s[i] ? s[i] : "");
    } else {
        size_t nb = t->nbytes;
        uint64_t off = nb ? pw_data(c, t->data, nb) : 0;
        pw_u64(b, off);
        pw_u64(b, nb);
    }
}

static void pw_value(pw_ctx *c, const core_value *v, int depth)
{
    pw_buf *b = &c->meta;
    if (depth > PW_MAX_DEPTH) { c->err = core_error(KILN_ERR_INVALID_MODEL, "plan writer: sequence nested too deep"); return; }
    pw_u8(b, (uint8_t)v->kind);
    if (v->kind == CORE_VALUE_TENSOR) pw_tensor(c, v->tensor);
    else if (v->kind == CORE_VALUE_SEQUENCE) {
        pw_u32(b, (uint32_t)v->elem_dtype);
        pw_u64(b, (uint64_t)v->n_items);
        for (int64_t i = 0; i < v->n_items; i++) pw_value(c, v->items[i], depth + 1);
    } else pw_u32(b, (uint32_t)v->elem_dtype);
}

static void pw_graph(pw_ctx *c, const ir_graph *g, int depth);

static void pw_attr(pw_ctx *c, const ir_attr *a, int depth)
{
    pw_buf *b = &c->meta;
    pw_str(b, a->name);
    pw_u32(b, (uint32_t)a->type);
    pw_str(b, a->ref_attr_name);
    switch (a->type) {
    case IR_ATTR_FLOAT: pw_f32(b, a->f); break;
    case IR_ATTR_INT: pw_i64(b, a->i); break;
    case IR_ATTR_STRING: pw_blob(b, a->s ? a->s : "", a->s ? a->s_len : 0); break;
    case IR_ATTR_TENSOR:
    case IR_ATTR_SPARSE_TENSOR:
        pw_u8(b, a->t != NULL);
        if (a->t) pw_tensor(c, a->t);
        break;
    case IR_ATTR_GRAPH:
        pw_u8(b, a->g != NULL);
        if (a->g) pw_graph(c, a->g, depth + 1);
        break;
    case IR_ATTR_TYPE_PROTO:
        pw_u8(b, a->tp != NULL);
        if (a->tp) pw_type(c, a->tp, 0);
        break;
    case IR_ATTR_FLOATS:
        pw_u64(b, (uint64_t)a->n);
        for (int64_t i = 0; i < a->n; i++) pw_f32(b, a->floats[i]);
        break;
    case IR_ATTR_INTS:
        pw_u64(b, (uint64_t)a->n);
        for (int64_t i = 0; i < a->n; i++) pw_i64(b, a->ints[i]);
        break;
    case IR_ATTR_STRINGS:
        pw_u64(b, (uint64_t)a->n);
        for (int64_t i = 0; i < a->n; i++) pw_str(b, a->strings[i] ? a->strings[i] : "");
        break;
    case IR_ATTR_TENSORS:
    case IR_ATTR_SPARSE_TENSORS:
        pw_u64(b, (uint64_t)a->n);
        for (int64_t i = 0; i < a->n; i++) {
            pw_u8(b, a->tensors[i] != NULL);
            if (a->tensors[i]) pw_tensor(c, a->tensors[i]);
        }
        break;
    case IR_ATTR_GRAPHS:
        pw_u64(b, (uint64_t)a->n);
        for (int64_t i = 0; i < a->n; i++) {
            pw_u8(b, a->graphs[i] != NULL);
            if (a->graphs[i]) pw_graph(c, a->graphs[i], depth + 1);
        }
        break;
    case IR_ATTR_TYPE_PROTOS:
        pw_u64(b, (uint64_t)a->n);
        for (int64_t i = 0; i < a->n; i++) {
            pw_u8(b, a->tps[i] != NULL);
            if (a->tps[i]) pw_type(c, a->tps[i], 0);
        }
        break;
    default: break;
    }
}

static void pw_graph(pw_ctx *c, const ir_graph *g, int depth)
{
    pw_buf *b = &c->meta;
    if (depth > PW_MAX_DEPTH) { c->err = core_error(KILN_ERR_INVALID_MODEL, "plan writer: subgraphs nested too deep"); return; }
    pw_str(b, g->name ? g->name : "");
    pw_u32(b, (uint32_t)g->n_values);
    for (int i = 0; i < g->n_values && !c->err; i++) {
        const ir_value *v = &g->values[i];
        pw_str(b, v->name);
        pw_type(c, &v->type, 0);
        uint8_t flags = (uint8_t)((v->is_graph_input ? 1 : 0) | (v->is_graph_output ? 2 : 0) | (v->is_outer ? 4 : 0) |
                                  (v->constant ? 8 : 0));
        pw_u8(b, flags);
        if (v->constant) pw_value(c, v->constant, 0);
    }
    pw_u32(b, (uint32_t)g->n_inputs);
    for (int i = 0; i < g->n_inputs; i++) pw_i32(b, g->inputs[i]);
    pw_u32(b, (uint32_t)g->n_outputs);
    for (int i = 0; i < g->n_outputs; i++) pw_i32(b, g->outputs[i]);
    pw_u32(b, (uint32_t)g->n_nodes);
    for (int i = 0; i < g->n_nodes && !c->err; i++) {
        const ir_node *n = &g->nodes[i];
        pw_str(b, n->name ? n->name : "");
        pw_str(b, n->op_type);
        pw_str(b, n->domain ? n->domain : "");
        pw_i32(b, n->opset);
        pw_u32(b, (uint32_t)n->n_inputs);
        for (int k = 0; k < n->n_inputs; k++) pw_i32(b, n->inputs[k]);
        pw_u32(b, (uint32_t)n->n_outputs);
        for (int k = 0; k < n->n_outputs; k++) pw_i32(b, n->outputs[k]);
        pw_u32(b, (uint32_t)n->n_attrs);
        for (int k = 0; k < n->n_attrs && !c->err; k++) pw_attr(c, &n->attrs[k], depth);
    }
}

/* ---- sections --------------------------------------------------------------------------------- */

static void pw_target(pw_buf *b, const plan_info *info)
{
    pw_str(b, info->target.vendor);
    pw_str(b, info->target.brand);
    pw_u64(b, info->target.isa);
    pw_str(b, info->target.kernels);
    pw_u64(b, info->isa_required);
}

static void pw_profiles(pw_buf *b, const plan_info *info)
{
    pw_u32(b, (uint32_t)info->n_profiles);
    for (int p = 0; p < info->n_profiles; p++) {
        const plan_profile *pr = &info->profiles[p];
        pw_u32(b, (uint32_t)pr->n_inputs);
        for (int k = 0; k < pr->n_inputs; k++) {
            const plan_input_range *r = &pr->inputs[k];
            pw_str(b, r->name);
            pw_u32(b, (uint32_t)r->ndim);
            for (int d = 0; d < r->ndim; d++) pw_i64(b, r->min[d]);
            for (int d = 0; d < r->ndim; d++) pw_i64(b, r->opt[d]);
            for (int d = 0; d < r->ndim; d++) pw_i64(b, r->max[d]);
        }
        pw_u64(b, pr->arena_bytes);
        pw_u32(b, (uint32_t)pr->n_slots);
        for (int s = 0; s < pr->n_slots; s++) {
            const rt_mem_slot *m = &pr->slots[s];
            pw_i32(b, m->node);
            pw_i32(b, m->out);
            pw_u64(b, m->size);
            pw_u64(b, m->offset);
            pw_i32(b, m->first);
            pw_i32(b, m->last);
        }
    }
}

static void pw_model(pw_ctx *c, const ir_model *m)
{
    pw_buf *b = &c->meta;
    pw_i64(b, m->ir_version);
    pw_str(b, m->producer_name);
    pw_str(b, m->producer_version);
    pw_str(b, m->domain);
    pw_i64(b, m->model_version);
    pw_str(b, m->doc_string);
    pw_u32(b, (uint32_t)m->n_opsets);
    for (int i = 0; i < m->n_opsets; i++) {
        pw_str(b, m->opsets[i].domain ? m->opsets[i].domain : "");
        pw_i64(b, m->opsets[i].version);
    }
    pw_graph(c, m->graph, 0);
}

/* The plan as two parts: everything before the data section (header, table, metadata,
 * padding; checksums filled in) and the data section itself, so a file can be written without
 * a third copy of the weights. */
static kiln_status pw_parts(const ir_model *m, const plan_info *info, pw_buf *head, pw_buf *data)
{
    memset(head, 0, sizeof *head);
    memset(data, 0, sizeof *data);
    if (!m || !m->graph || !info) return core_error(KILN_ERR_INVALID_ARGUMENT, "plan_serialize: NULL argument");
    if (info->n_profiles < 0 || info->n_profiles > PLAN_MAX_PROFILES)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "plan_serialize: %d profiles", info->n_profiles);
    enum { NSEC = 5 };
    static const uint32_t kinds[NSEC] = {PLAN_SEC_TARGET, PLAN_SEC_BUILD, PLAN_SEC_PROFILES, PLAN_SEC_GRAPH, PLAN_SEC_DATA};
    pw_ctx c;
    memset(&c, 0, sizeof c);
    pw_buf sec[NSEC - 1];
    memset(sec, 0, sizeof sec);
    pw_target(&sec[0], info);
    pw_u32(&sec[1], (uint32_t)info->build_threads);
    pw_str(&sec[1], info->notes ? info->notes : "");
    pw_profiles(&sec[2], info);
    pw_model(&c, m);
    sec[3] = c.meta;
    memset(&c.meta, 0, sizeof c.meta);

    pw_buf f;
    memset(&f, 0, sizeof f);
    bool oom = c.data.oom;
    for (int i = 0; i < NSEC - 1; i++) oom |= sec[i].oom;
    kiln_status st = c.err;
    if (!st && oom) st = core_oom();
    if (!st) {
        uint64_t offs[NSEC], sizes[NSEC];
        uint64_t pos = PLAN_HEADER_BYTES + NSEC * PLAN_SECTION_ENTRY_BYTES;
        for (int i = 0; i < NSEC - 1; i++) {
            pos = (pos + 7) & ~(uint64_t)7;
            offs[i] = pos;
            sizes[i] = sec[i].n;
            pos += sec[i].n;
        }
        pos = (pos + PLAN_DATA_ALIGN - 1) & ~(uint64_t)(PLAN_DATA_ALIGN - 1);
        offs[NSEC - 1] = pos;
        sizes[NSEC - 1] = c.data.n;
        uint64_t file_size = pos + c.data.n;

        pw_bytes(&f, PLAN_MAGIC, 8);
        pw_u32(&f, PLAN_FORMAT_VERSION);
        pw_u32(&f, PLAN_HEADER_BYTES);
        pw_u64(&f, file_size);
        pw_u64(&f, plan_build_id());
        pw_u32(&f, NSEC);
        pw_u32(&f, 0); /* flags */
        pw_u64(&f, 0); /* reserved */
        pw_u64(&f, 0); /* meta checksum, below */
        pw_u64(&f, 0); /* data checksum, below */
        for (int i = 0; i < NSEC; i++) {
            pw_u32(&f, kinds[i]);
            pw_u32(&f, 0);
            pw_u64(&f, offs[i]);
            pw_u64(&f, sizes[i]);
            pw_u64(&f, 0);
        }
        for (int i = 0; i < NSEC - 1; i++) {
            pw_zero(&f, (size_t)(offs[i] - f.n));
            pw_bytes(&f, sec[i].p, sec[i].n);
        }
        pw_zero(&f, (size_t)(offs[NSEC - 1] - f.n));
        if (f.oom) st = core_oom();
        else {
            uint64_t h = plan_hash64(f.p, 48, 0);
            uint64_t mck = plan_hash64(f.p + PLAN_HEADER_BYTES, f.n - PLAN_HEADER_BYTES, h);
            uint64_t dck = plan_hash64(c.data.p, c.data.n, 0);
            memcpy(f.p + 48, &mck, 8);
            memcpy(f.p + 56, &dck, 8);
        }
    }
    for (int i = 0; i < NSEC - 1; i++) free(sec[i].p);
    free(c.refs);
    free(c.slots);
    if (st) {
        free(f.p);
        free(c.data.p);
        return st;
    }
    *head = f;
    *data = c.data;
    return KILN_OK;
}

kiln_status plan_serialize(const ir_model *m, const plan_info *info, uint8_t **out, size_t *size)
{
    *out = NULL;
    *size = 0;
    pw_buf head, data;
    kiln_status st = pw_parts(m, info, &head, &data);
    if (st) return st;
    pw_bytes(&head, data.p, data.n);
    free(data.p);
    if (head.oom) { free(head.p); return core_oom(); }
    *out = head.p;
    *size = head.n;
    return KILN_OK;
}

kiln_status plan_write_file(const char *path, const ir_model *m, const plan_info *info)
{
    pw_buf head, data;
    kiln_status st = pw_parts(m, info, &head, &data);
    if (st) return st;
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 24);
    if (!tmp) { free(head.p); free(data.p); return core_oom(); }
    snprintf(tmp, plen + 24, "%s.tmp%ld", path, (long)getpid());
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        st = core_error(KILN_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
    } else {
        bool ok = fwrite(head.p, 1, head.n, fp) == head.n && (data.n == 0 || fwrite(data.p, 1, data.n, fp) == data.n);
        ok = (fclose(fp) == 0) && ok;
        if (!ok) st = core_error(KILN_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
        else if (rename(tmp, path) != 0) st = core_error(KILN_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
        if (st) remove(tmp);
    }
    free(tmp);
    free(head.p);
    free(data.p);
    return st;
}
