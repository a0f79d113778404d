/* import.c — decodes ONNX protobuf messages (ModelProto, GraphProto, NodeProto, TensorProto,
 * TypeProto, Sequence/OptionalProto) into kiln IR: zero-copy weights, external data,
 * inline expansion of model-local functions. */
#include "onnx/onnx.h"
#include "onnx/wire.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ONNX_MAX_DEPTH 64    /* nested messages (graph -> node -> attribute -> graph ...) */
#define ONNX_MAX_FN_DEPTH 32 /* nested function expansion */
#define ONNX_MAX_INLINED (1 << 22) /* functions calling functions twice, 32 deep, would explode */

typedef struct span {
    const uint8_t *p;
    size_t n;
} span;

/* ---- small helpers ----------------------------------------------------------------------- */

static span field_span(const onnx_field *f)
{
    span s = {f->data, f->len};
    return s;
}

static char *span_dup(span s)
{
    return core_strndup(s.p ? (const char *)s.p : "", s.p ? s.n : 0);
}

static bool span_eq(span s, const char *z)
{
    size_t n = strlen(z);
    return s.n == n && (n == 0 || memcmp(s.p, z, n) == 0);
}

static bool span_eqs(span a, span b)
{
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

static bool domain_is_default(span d)
{
    return d.n == 0 || span_eq(d, "ai.onnx");
}

static bool domain_eq(span a, span b)
{
    if (domain_is_default(a))
        return domain_is_default(b);
    return span_eqs(a, b);
}

/* A printable, bounded rendering of a name for error messages. */
static const char *span_label(span s, char *buf, size_t size)
{
    size_t n = s.n < size - 1 ? s.n : size - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s.p[i];
        buf[i] = (c >= 32 && c < 127) ? (char)c : '?';
    }
    buf[n] = 0;
    return buf;
}

static kiln_status wire_error(const onnx_wire *r, const char *what)
{
    return core_error(KILN_ERR_PARSE, "%s: corrupt protobuf: %s", what, r->err ? r->err : "?");
}

static kiln_status wt_error(const onnx_field *f, const char *what, const char *field)
{
    return core_error(KILN_ERR_PARSE, "%s: field '%s' (#%u) has wire type %s", what, field,
                      (unsigned)f->num, onnx_wire_type_name(f->wt));
}

static bool fits_int(int64_t n)
{
    return n >= 0 && n < INT_MAX / 2;
}

/* ---- loader state ------------------------------------------------------------------------- */

typedef struct ext_file {
    char *real;
    const uint8_t *addr;
    size_t size;
} ext_file;

typedef struct fn_opset {
    span domain;
    int64_t version;
} fn_opset;

/* A model-local function, kept as spans into the backing buffer; its body is decoded anew
 * at every call site so that renaming and attribute substitution apply. */
typedef struct fn_def {
    span name, domain, overload;
    int n_in, n_out, n_defaults, n_nodes, n_opsets;
    span *in, *out, *defaults, *nodes;
    fn_opset *opsets;
} fn_def;

typedef struct loader {
    ir_model *m;
    bool borrow;          /* tensors may borrow from the backing buffer */
    bool file_backed;     /* the backing buffer is a private mapping of the model file */
    const char *base_dir; /* external data directory, NULL = none allowed */
    char *base_real;
    ext_file *ext;
    int n_ext;
    fn_def *fns;
    int n_fns;
    uint64_t uniq;
    int64_t n_inlined; /* body nodes emitted by function expansion, bounded against blowup */
    int64_t *fn_size;  /* per function: nodes after full expansion; -1 unknown, -2 visiting */
} loader;

/* A caller's attribute as seen from a function body: the raw AttributeProto and the scope
 * in which its subgraphs (if any) are interpreted. */
typedef struct attr_bind {
    span name;
    span raw;
    const struct scope *sc;
} attr_bind;

/* Name and attribute environment of an expanded function call. NULL scope = identity. */
typedef struct scope {
    const fn_def *fn;
    char *prefix;
    char **act_in, **act_out;
    int n_binds;
    attr_bind *binds;
    int depth;
} scope;

static bool add_mapping(ir_model *m, void *addr, size_t size, bool is_mmap)
{
    struct ir_mapping *nm = core_realloc(m->mappings, sizeof *nm * (size_t)(m->n_mappings + 1));
    if (!nm)
        return false;
    m->mappings = nm;
    nm[m->n_mappings].addr = addr;
    nm[m->n_mappings].size = size;
    nm[m->n_mappings].is_mmap = is_mmap;
    m->n_mappings++;
    return true;
}

/* A private mapping of a model or external-data file is mapped with 4 KB pages only: the CPU
 * weight cache drops the pages of a weight once it holds a packed copy, keeping a few it
 * samples (core_mapped_release), and a large folio mapped whole (2 MB) would be unmapped whole
 * by such a partial drop and then brought back whole by the next sample read. */
static void map_small_pages(void *addr, size_t size)
{
#ifdef MADV_NOHUGEPAGE
    madvise(addr, size, MADV_NOHUGEPAGE); /* advice only: failure changes nothing */
#else
    (void)addr;
    (void)size;
#endif
}

/* ---- external data ------------------------------------------------------------------------ */

static bool parse_u64_text(span s, uint64_t *out)
{
    uint64_t v = 0;
    if (s.n == 0)
        return false;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return false;
        unsigned d = s.p[i] - '0';
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Map the external file `loc` (relative to base_dir) and return its bytes [off, off+len).
 * len_given false = up to the end of the file. */
static kiln_status ext_get(loader *L, const char *tname, span loc, uint64_t off, bool has_len,
                           uint64_t len, const uint8_t **data, size_t *size)
{
    char lb[256];
    span_label(loc, lb, sizeof lb);
    if (!L->base_dir)
        return core_error(KILN_ERR_INVALID_MODEL,
                          "tensor '%s': external data '%s' needs a model directory (the model "
                          "was loaded from memory without one)", tname, lb);
    if (loc.n == 0 || memchr(loc.p, 0, loc.n))
        return core_error(KILN_ERR_INVALID_MODEL, "tensor '%s': invalid external data location '%s'", tname, lb);
    if (loc.p[0] == '/' || loc.p[0] == '\\' || (loc.n >= 2 && loc.p[1] == ':'))
        return core_error(KILN_ERR_INVALID_MODEL,
                          "tensor '%s': external data location '%s' is an absolute path; it must be "
                          "relative to the model's directory", tname, lb);
    for (size_t i = 0; i < loc.n;) {
        size_t j = i;
        while (j < loc.n && loc.p[j] != '/' && loc.p[j] != '\\')
            j++;
        if (j - i == 2 && loc.p[i] == '.' && loc.p[i + 1] == '.')
            return core_error(KILN_ERR_INVALID_MODEL,
                              "tensor '%s': external data location '%s' contains '..'; it may not "
                              "leave the model's directory", tname, lb);
        i = j + 1;
    }
    if (!L->base_real) {
        L->base_real = realpath(L->base_dir, NULL);
        if (!L->base_real)
            return core_error(KILN_ERR_IO, "model directory '%s': %s", L->base_dir, strerror(errno));
    }
    size_t bl = strlen(L->base_dir);
    char *full = core_malloc(bl + loc.n + 2);
    if (!full)
        return core_oom();
    memcpy(full, L->base_dir, bl);
    full[bl] = '/';
    memcpy(full + bl + 1, loc.p, loc.n);
    full[bl + 1 + loc.n] = 0;
    char *real = realpath(full, NULL);
    if (!real) {
        kiln_status st = core_error(KILN_ERR_IO, "tensor '%s': external data file '%s': %s", tname,
                                    full, strerror(errno));
        free(full);
        return st;
    }
    free(full);
    size_t rl = strlen(L->base_real);
    bool inside = strncmp(real, L->base_real, rl) == 0 &&
                  (real[rl] == '/' || (rl == 1 && L->base_real[0] == '/'));
    if (!inside) {
        kiln_status st = core_error(KILN_ERR_INVALID_MODEL,
                                    "tensor '%s': external data '%s' resolves to '%s', outside the "
                                    "model's directory", tname, lb, real);
        free(real);
        return st;
    }
    ext_file *ef = NULL;
    for (int i = 0; i < L->n_ext; i++)
        if (!strcmp(L->ext[i].real, real)) {
            ef = &L->ext[i];
            break;
        }
    if (ef) {
        free(real);
    } else {
        int fd = open(real, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            kiln_status st = core_error(KILN_ERR_IO, "tensor '%s': cannot open external data '%s': %s",
                                        tname, real, strerror(errno));
            free(real);
            return st;
        }
        struct stat sb;
        if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            close(fd);
            kiln_status st = core_error(KILN_ERR_IO, "tensor '%s': external data '%s' is not a regular file",
                                        tname, real);
            free(real);
            return st;
        }
        size_t fsz = (size_t)sb.st_size;
        void *addr = NULL;
        if (fsz > 0) {
            addr = mmap(NULL, fsz, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
            if (addr == MAP_FAILED) {
                close(fd);
                kiln_status st = core_error(KILN_ERR_IO, "tensor '%s': cannot map external data '%s': %s",
                                            tname, real, strerror(errno));
                free(real);
                return st;
            }
            map_small_pages(addr, fsz);
        }
        close(fd);
        ext_file *ne = core_realloc(L->ext, sizeof *ne * (size_t)(L->n_ext + 1));
        if (!ne || (addr && !add_mapping(L->m, addr, fsz, true))) {
            if (ne)
                L->ext = ne;
            if (addr)
                munmap(addr, fsz);
            free(real);
            return core_oom();
        }
        L->ext = ne;
        ef = &L->ext[L->n_ext++];
        ef->real = real;
        ef->addr = addr;
        ef->size = fsz;
    }
    if (off > ef->size)
        return core_error(KILN_ERR_PARSE, "tensor '%s': external data offset %llu is past the end of '%s' (%zu bytes)",
                          tname, (unsigned long long)off, lb, ef->size);
    if (!has_len)
        len = ef->size - off;
    if (len > ef->size - off)
        return core_error(KILN_ERR_PARSE,
                          "tensor '%s': external data [%llu, +%llu) runs past the end of '%s' (%zu bytes)",
                          tname, (unsigned long long)off, (unsigned long long)len, lb, ef->size);
    *data = ef->addr ? ef->addr + off : (const uint8_t *)"";
    *size = (size_t)len;
    return KILN_OK;
}

/* ---- TensorProto ------------------------------------------------------------------------- */

enum {
    T_DIMS = 1, T_DATA_TYPE = 2, T_SEGMENT = 3, T_FLOAT = 4, T_INT32 = 5, T_STRING = 6,
    T_INT64 = 7, T_NAME = 8, T_RAW = 9, T_DOUBLE = 10, T_UINT64 = 11, T_DOC = 12,
    T_EXTERNAL = 13, T_LOCATION = 14
};

/* Bits per element of packed sub-byte types, 0 for everything else. */
static int packed_bits(kiln_dtype dt)
{
    switch (dt) {
    case KILN_DTYPE_INT4: case KILN_DTYPE_UINT4: case KILN_DTYPE_FLOAT4E2M1: return 4;
    case KILN_DTYPE_INT2: case KILN_DTYPE_UINT2: return 2;
    default: return 0;
    }
}

/* Stored byte count of numel elements of dt in raw form. */
static int64_t raw_bytes(kiln_dtype dt, int64_t numel)
{
    int bits = packed_bits(dt);
    if (bits)
        return (numel / (8 / bits)) + (numel % (8 / bits) ? 1 : 0);
    return numel * (int64_t)core_dtype_size(dt); /* numel*size checked by the caller */
}

/* Expand packed sub-byte data: elements 0.. of `numel` from bytes `src`, low bits first. */
static void unpack_sub(uint8_t *dst, const uint8_t *src, int64_t numel, kiln_dtype dt)
{
    int bits = packed_bits(dt), per = 8 / bits;
    uint8_t mask = (uint8_t)((1u << bits) - 1);
    bool sign = dt == KILN_DTYPE_INT4 || dt == KILN_DTYPE_INT2;
    for (int64_t i = 0; i < numel; i++) {
        uint8_t v = (src[i / per] >> ((i % per) * bits)) & mask;
        if (sign && (v & (1u << (bits - 1))))
            v |= (uint8_t)~mask;
        dst[i] = v;
    }
}

/* The typed field of a dtype and its element count for numel elements. */
static int typed_field(kiln_dtype dt, int64_t numel, onnx_wire_type *wt, int64_t *count)
{
    *count = numel;
    switch (dt) {
    case KILN_DTYPE_FLOAT: *wt = ONNX_WT_I32; return T_FLOAT;
    case KILN_DTYPE_COMPLEX64: *wt = ONNX_WT_I32; *count = numel * 2; return T_FLOAT;
    case KILN_DTYPE_DOUBLE: *wt = ONNX_WT_I64; return T_DOUBLE;
    case KILN_DTYPE_COMPLEX128: *wt = ONNX_WT_I64; *count = numel * 2; return T_DOUBLE;
    case KILN_DTYPE_INT64: *wt = ONNX_WT_VARINT; return T_INT64;
    case KILN_DTYPE_UINT32: case KILN_DTYPE_UINT64: *wt = ONNX_WT_VARINT; return T_UINT64;
    case KILN_DTYPE_STRING: *wt = ONNX_WT_LEN; return T_STRING;
    default:
        *wt = ONNX_WT_VARINT;
        if (packed_bits(dt))
            *count = raw_bytes(dt, numel);
        return T_INT32;
    }
}

typedef struct tinfo {
    span name;
    int64_t dtype;
    int ndim;
    bool has_raw;
    span raw;
    int64_t location;
    bool has_loc, has_off, has_len;
    span loc, off, len;
    int64_t counts[16]; /* per typed field number */
} tinfo;

static kiln_status tensor_scan(span raw, tinfo *ti, const char *what)
{
    onnx_wire r;
    onnx_field f;
    int rc;
    memset(ti, 0, sizeof *ti);
    onnx_wire_init(&r, raw.p, raw.n);
    while ((rc = onnx_wire_next(&r, &f)) > 0) {
        switch (f.num) {
        case T_DIMS: {
            int64_t c = onnx_wire_rep_count(&f, ONNX_WT_VARINT);
            if (c < 0)
                return core_error(KILN_ERR_PARSE, "%s: corrupt 'dims' field", what);
            if (c > KILN_MAX_DIMS || ti->ndim + c > KILN_MAX_DIMS)
                return core_error(KILN_ERR_UNSUPPORTED, "%s: more than %d dims", what, KILN_MAX_DIMS);
            ti->ndim += (int)c;
            break;
        }
        case T_DATA_TYPE:
            if (f.wt != ONNX_WT_VARINT)
                return wt_error(&f, what, "data_type");
            ti->dtype = (int64_t)f.u;
            break;
        case T_NAME:
            if (f.wt != ONNX_WT_LEN)
                return wt_error(&f, what, "name");
            ti->name = field_span(&f);
            break;
        case T_RAW:
            if (f.wt != ONNX_WT_LEN)
                return wt_error(&f, what, "raw_data");
            ti->has_raw = true;
            ti->raw = field_span(&f);
            break;
        case T_LOCATION:
            if (f.wt != ONNX_WT_VARINT)
                return wt_error(&f, what, "data_location");
            ti->location = (int64_t)f.u;
            break;
        case T_EXTERNAL: {
            if (f.wt != ONNX_WT_LEN)
                return wt_error(&f, what, "external_data");
            onnx_wire er;
            onnx_field ef;
            span key = {NULL, 0}, val = {NULL, 0};
            int erc;
            onnx_wire_sub(&er, &f);
            while ((erc = onnx_wire_next(&er, &ef)) > 0) {
                if ((ef.num == 1 || ef.num == 2) && ef.wt != ONNX_WT_LEN)
                    return wt_error(&ef, what, "external_data entry");
                if (ef.num == 1)
                    key = field_span(&ef);
                else if (ef.num == 2)
                    val = field_span(&ef);
            }
            if (erc < 0)
                return wire_error(&er, what);
            if (span_eq(key, "location")) {
                ti->has_loc = true;
                ti->loc = val;
            } else if (span_eq(key, "offset")) {
                ti->has_off = true;
                ti->off = val;
            } else if (span_eq(key, "length")) {
                ti->has_len = true;
                ti->len = val;
            }
            break;
        }
        case T_FLOAT: case T_DOUBLE: case T_INT32: case T_INT64: case T_UINT64: {
            onnx_wire_type ewt = f.num == T_FLOAT ? ONNX_WT_I32 : f.num == T_DOUBLE ? ONNX_WT_I64 : ONNX_WT_VARINT;
            int64_t c = onnx_wire_rep_count(&f, ewt);
            if (c < 0)
                return core_error(KILN_ERR_PARSE, "%s: corrupt typed data field #%u", what, (unsigned)f.num);
            ti->counts[f.num] += c;
            break;
        }
        case T_STRING:
            if (f.wt != ONNX_WT_LEN)
                return wt_error(&f, what, "string_data");
            ti->counts[T_STRING]++;
            break;
        default:
            break;
        }
    }
    if (rc < 0)
        return wire_error(&r, what);
    return KILN_OK;
}

/* Copy typed-field data (int32_data, float_data, ...) into t. */
static void tensor_fill_typed(span raw, int fnum, onnx_wire_type ewt, core_tensor *t, int64_t count,
                              uint8_t *scratch)
{
    onnx_wire r;
    onnx_field f;
    int64_t k = 0;
    kiln_dtype dt = t->dtype;
    uint8_t *d = scratch ? scratch : (uint8_t *)t->data;
    onnx_wire_init(&r, raw.p, raw.n);
    while (onnx_wire_next(&r, &f) > 0 && k < count) {
        if ((int)f.num != fnum)
            continue;
        if (dt == KILN_DTYPE_STRING) {
            /* set_string cannot fail here except OOM; the caller checks via k afterwards */
            if (!core_tensor_set_string(t, k, (const char *)f.data, f.len))
                return;
            k++;
            continue;
        }
        if (f.wt == ONNX_WT_LEN && (ewt == ONNX_WT_I32 || ewt == ONNX_WT_I64)) {
            size_t es = ewt == ONNX_WT_I32 ? 4 : 8;
            size_t n = f.len / es;
            if ((int64_t)n > count - k)
                n = (size_t)(count - k);
            memcpy(d + (size_t)k * es, f.data, n * es);
            k += (int64_t)n;
            continue;
        }
        onnx_wire_rep it;
        uint64_t v;
        onnx_wire_rep_begin(&it, &f, ewt);
        while (k < count && onnx_wire_rep_next(&it, &v)) {
            switch (ewt) {
            case ONNX_WT_I32: { uint32_t w = (uint32_t)v; memcpy(d + k * 4, &w, 4); break; }
            case ONNX_WT_I64: memcpy(d + k * 8, &v, 8); break;
            default:
                if (scratch) {
                    d[k] = (uint8_t)v;
                    break;
                }
                switch (core_dtype_size(dt)) {
                case 1: d[k] = dt == KILN_DTYPE_BOOL ? (v != 0) : (uint8_t)v; break;
                case 2: { uint16_t h = (uint16_t)v; memcpy(d + k * 2, &h, 2); break; }
                case 4: { uint32_t w = (uint32_t)v; memcpy(d + k * 4, &w, 4); break; }
                default: memcpy(d + k * 8, &v, 8); break;
                }
                break;
            }
            k++;
        }
    }
}

/* An owned tensor whose storage is not zeroed: every byte is written right after (saves a
 * pass over large weights that have to be copied). Non-string dtypes only. */
static core_tensor *tensor_new_uninit(kiln_dtype dt, int ndim, const int64_t *dims)
{
    core_tensor *t = core_tensor_wrap(dt, ndim, dims, NULL);
    if (!t)
        return NULL;
    size_t sz = (t->nbytes + 63) & ~(size_t)63;
    if (sz < t->nbytes || !(t->data = aligned_alloc(64, sz ? sz : 64))) {
        core_tensor_destroy(t);
        core_oom();
        return NULL;
    }
    t->owns_data = true;
    return t;
}

/* The bytes of a tensor just copied out of the mapped model are not needed again: drop the
 * whole pages they cover from the process (they are clean file pages of a private
 * mapping, so the kernel re-reads them from the file if anything ever touches them, e.g.
 * a function body decoded again at its next call site), so that resident memory holds
 * each weight once, not twice. Only for file-backed bytes: anonymous memory (a model
 * loaded from memory) would read back as zeros. */
static void release_copied_pages(const uint8_t *bytes, size_t n)
{
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0 || n < (size_t)ps * 2) return;
    uintptr_t b = ((uintptr_t)bytes + (uintptr_t)ps - 1) & ~((uintptr_t)ps - 1);
    uintptr_t e = ((uintptr_t)bytes + n) & ~((uintptr_t)ps - 1);
    if (e > b) madvise((void *)b, e - b, MADV_DONTNEED);
}

/* Decode a TensorProto. With L->borrow, raw/external data aligned for the dtype is
 * borrowed from the backing storage instead of copied. */
static kiln_status tensor_decode(loader *L, span raw, const char *ctx, core_tensor **out)
{
    tinfo ti;
    char nb[200], what[300];
    kiln_status st;
    *out = NULL;
    snprintf(what, sizeof what, "%s%stensor", ctx ? ctx : "", ctx ? ": " : "");
    if ((st = tensor_scan(raw, &ti, what)))
        return st;
    span_label(ti.name, nb, sizeof nb);
    snprintf(what, sizeof what, "%s%stensor '%s'", ctx ? ctx : "", ctx ? ": " : "", nb);
    if (ti.dtype <= 0 || ti.dtype >= KILN_DTYPE_COUNT_ || !core_dtype_size((kiln_dtype)ti.dtype))
        return core_error(KILN_ERR_PARSE, "%s: unknown data_type %lld", what, (long long)ti.dtype);
    kiln_dtype dt = (kiln_dtype)ti.dtype;
    int64_t dims[KILN_MAX_DIMS];
    {
        onnx_wire r;
        onnx_field f;
        int k = 0;
        onnx_wire_init(&r, raw.p, raw.n);
        while (onnx_wire_next(&r, &f) > 0) {
            if (f.num != T_DIMS)
                continue;
            onnx_wire_rep it;
            uint64_t v;
            onnx_wire_rep_begin(&it, &f, ONNX_WT_VARINT);
            while (k < ti.ndim && onnx_wire_rep_next(&it, &v))
                dims[k++] = (int64_t)v;
        }
        for (int i = 0; i < ti.ndim; i++)
            if (dims[i] < 0)
                return core_error(KILN_ERR_PARSE, "%s: dim %d is negative (%lld)", what, i, (long long)dims[i]);
    }
    int64_t numel = core_shape_numel(ti.ndim, dims), nbytes;
    if (numel < 0 || !core_mul_size(numel, (int64_t)core_dtype_size(dt), &nbytes) ||
        (int64_t)(size_t)nbytes != nbytes || nbytes > INT64_MAX / 4)
        return core_error(KILN_ERR_PARSE, "%s: element count of shape overflows", what);

    core_tensor *t = NULL;
    const uint8_t *bytes = NULL;
    size_t nb_have = 0;
    bool have_bytes = false;
    if (ti.location == 1) {
        uint64_t off = 0, len = 0;
        if (!ti.has_loc)
            return core_error(KILN_ERR_PARSE, "%s: data_location is EXTERNAL but no 'location' is given", what);
        if (ti.has_off && !parse_u64_text(ti.off, &off))
            return core_error(KILN_ERR_PARSE, "%s: external data offset is not a number", what);
        if (ti.has_len && !parse_u64_text(ti.len, &len))
            return core_error(KILN_ERR_PARSE, "%s: external data length is not a number", what);
        if ((st = ext_get(L, nb, ti.loc, off, ti.has_len, len, &bytes, &nb_have)))
            return core_error_prefix(st, "%s%s", ctx ? ctx : "", ctx ? ": " : "");
        have_bytes = true;
    } else if (ti.location != 0) {
        return core_error(KILN_ERR_PARSE, "%s: unknown data_location %lld", what, (long long)ti.location);
    } else if (ti.has_raw) {
        bytes = ti.raw.p;
        nb_have = ti.raw.n;
        have_bytes = true;
    }

    if (have_bytes) {
        if (dt == KILN_DTYPE_STRING)
            return core_error(KILN_ERR_PARSE, "%s: string tensors cannot use raw_data", what);
        int64_t want = raw_bytes(dt, numel);
        if ((uint64_t)want != (uint64_t)nb_have)
            return core_error(KILN_ERR_PARSE, "%s: %s holds %zu bytes, expected %lld for shape %s of %s",
                              what, ti.location == 1 ? "external data" : "raw_data", nb_have,
                              (long long)want, core_shape_str(ti.ndim, dims, nb, sizeof nb), core_dtype_name(dt));
        size_t es = core_dtype_size(dt);
        /* external data files are always mapped; the model's own bytes when it was loaded
         * from a file */
        bool file_backed = ti.location == 1 || L->file_backed;
        if (L->borrow && numel > 0 && !packed_bits(dt) && ((uintptr_t)bytes % es) == 0) {
            t = core_tensor_wrap(dt, ti.ndim, dims, (void *)bytes);
            if (!t)
                return core_error_prefix(KILN_ERR_PARSE, "%s: ", what);
            /* registered so that the CPU weight cache may drop these pages once it holds a
             * packed copy (a failure to register only forgoes that) */
            if (file_backed)
                core_tensor_set_mapped(t);
        } else {
            t = tensor_new_uninit(dt, ti.ndim, dims);
            if (!t)
                return core_error_prefix(KILN_ERR_OUT_OF_MEMORY, "%s: ", what);
            if (packed_bits(dt))
                unpack_sub(t->data, bytes, numel, dt);
            else if (t->nbytes)
                memcpy(t->data, bytes, t->nbytes);
            if (L->borrow && file_backed)
                release_copied_pages(bytes, nb_have);
        }
    } else {
        onnx_wire_type ewt;
        int64_t count;
        int fnum = typed_field(dt, numel, &ewt, &count);
        if (ti.counts[fnum] != count) {
            static const char *const fname[16] = {
                [T_FLOAT] = "float_data", [T_INT32] = "int32_data", [T_STRING] = "string_data",
                [T_INT64] = "int64_data", [T_DOUBLE] = "double_data", [T_UINT64] = "uint64_data"};
            return core_error(KILN_ERR_PARSE, "%s: %s has %lld values, expected %lld for shape %s of %s",
                              what, fname[fnum], (long long)ti.counts[fnum], (long long)count,
                              core_shape_str(ti.ndim, dims, nb, sizeof nb), core_dtype_name(dt));
        }
        t = core_tensor_create(dt, ti.ndim, dims);
        if (!t)
            return core_error_prefix(KILN_ERR_OUT_OF_MEMORY, "%s: ", what);
        if (packed_bits(dt)) {
            uint8_t *tmp = core_malloc((size_t)count);
            if (!tmp) {
                core_tensor_destroy(t);
                return core_oom();
            }
            tensor_fill_typed(raw, fnum, ewt, t, count, tmp);
            unpack_sub(t->data, tmp, numel, dt);
            free(tmp);
        } else {
            tensor_fill_typed(raw, fnum, ewt, t, count, NULL);
        }
        if (dt == KILN_DTYPE_STRING) {
            /* A NULL element means set_string ran out of memory. */
            char **s = t->data;
            for (int64_t i = 0; i < numel; i++)
                if (!s[i]) {
                    core_tensor_destroy(t);
                    return core_oom();
                }
        }
    }
    if (ti.name.n) {
        t->name = span_dup(ti.name);
        if (!t->name) {
            core_tensor_destroy(t);
            return core_oom();
        }
    }
    *out = t;
    return KILN_OK;
}

/* SparseTensorProto (values=1, indices=2, dims=3) -> dense tensor. */
static kiln_status sparse_decode(loader *L, span raw, const char *ctx, core_tensor **out)
{
    onnx_wire r;
    onnx_field f;
    int rc, ndim = 0;
    span vals = {NULL, 0}, idx = {NULL, 0};
    bool has_vals = false, has_idx = false;
    int64_t dims[KILN_MAX_DIMS];
    char what[300];
    kiln_status st;
    *out = NULL;
    snprintf(what, sizeof what, "%s%ssparse tensor", ctx ? ctx : "", ctx ? ": " : "");
    onnx_wire_init(&r, raw.p, raw.n);
    while ((rc = onnx_wire_next(&r, &f)) > 0) {
        if (f.num == 1 || f.num == 2) {
            if (f.wt != ONNX_WT_LEN)
                return wt_error(&f, what, f.num == 1 ? "values" : "indices");
            if (f.num == 1) {
                vals = field_span(&f);
                has_vals = true;
            } else {
                idx = field_span(&f);
                has_idx = true;
            }
        } else if (f.num == 3) {
            onnx_wire_rep it;
            uint64_t v;
            if (onnx_wire_rep_count(&f, ONNX_WT_VARINT) < 0)
                return core_error(KILN_ERR_PARSE, "%s: corrupt 'dims'", what);
            onnx_wire_rep_begin(&it, &f, ONNX_WT_VARINT);
            while (onnx_wire_rep_next(&it, &v)) {
                if (ndim >= KILN_MAX_DIMS)
                    return core_error(KILN_ERR_UNSUPPORTED, "%s: more than %d dims", what, KILN_MAX_DIMS);
                dims[ndim++] = (int64_t)v;
            }
        }
    }
    if (rc < 0)
        return wire_error(&r, what);
    if (!has_vals)
        return core_error(KILN_ERR_PARSE, "%s: no values", what);
    core_tensor *tv = NULL, *ti = NULL, *t = NULL;
    if ((st = tensor_decode(L, vals, what, &tv)))
        return st;
    if (has_idx && (st = tensor_decode(L, idx, what, &ti))) {
        core_tensor_destroy(tv);
        return st;
    }
    char nb[200];
    snprintf(what, sizeof what, "%s%ssparse tensor '%s'", ctx ? ctx : "", ctx ? ": " : "",
             tv->name ? tv->name : "");
    for (int i = 0; i < ndim; i++)
        if (dims[i] < 0) {
            st = core_error(KILN_ERR_PARSE, "%s: negative dim", what);
            goto fail;
        }
    int64_t nnz = tv->numel, numel = core_shape_numel(ndim, dims);
    if (numel < 0) {
        st = core_error(KILN_ERR_PARSE, "%s: element count overflows", what);
        goto fail;
    }
    if (tv->ndim != 1) {
        st = core_error(KILN_ERR_PARSE, "%s: values must be 1-D", what);
        goto fail;
    }
    if (nnz > 0 && !ti) {
        st = core_error(KILN_ERR_PARSE, "%s: no indices", what);
        goto fail;
    }
    if (ti && (ti->dtype != KILN_DTYPE_INT64 ||
               !((ti->ndim == 1 && ti->dims[0] == nnz) ||
                 (ti->ndim == 2 && ti->dims[0] == nnz && ti->dims[1] == ndim)))) {
        st = core_error(KILN_ERR_PARSE, "%s: indices must be int64 [%lld] or [%lld, %d], got %s %s", what,
                        (long long)nnz, (long long)nnz, ndim, core_dtype_name(ti->dtype),
                        core_shape_str(ti->ndim, ti->dims, nb, sizeof nb));
        goto fail;
    }
    t = core_tensor_create(tv->dtype, ndim, dims);
    if (!t) {
        st = KILN_ERR_OUT_OF_MEMORY;
        goto fail;
    }
    size_t es = core_dtype_size(tv->dtype);
    const int64_t *ix = ti ? ti->data : NULL;
    for (int64_t k = 0; k < nnz; k++) {
        int64_t lin = 0;
        if (ti->ndim == 1) {
            lin = ix[k];
            if (lin < 0 || lin >= numel) {
                st = core_error(KILN_ERR_PARSE, "%s: index %lld out of range", what, (long long)lin);
                goto fail;
            }
        } else {
            for (int d = 0; d < ndim; d++) {
                int64_t c = ix[k * ndim + d];
                if (c < 0 || c >= dims[d]) {
                    st = core_error(KILN_ERR_PARSE, "%s: index %lld out of range in dim %d", what, (long long)c, d);
                    goto fail;
                }
                lin = lin * dims[d] + c;
            }
        }
        if (tv->dtype == KILN_DTYPE_STRING) {
            const char *s = ((char **)tv->data)[k];
            if (!core_tensor_set_string(t, lin, s, strlen(s))) {
                st = core_oom();
                goto fail;
            }
        } else {
            memcpy((uint8_t *)t->data + (size_t)lin * es, (const uint8_t *)tv->data + (size_t)k * es, es);
        }
    }
    t->name = tv->name;
    tv->name = NULL;
    core_tensor_destroy(tv);
    core_tensor_destroy(ti);
    *out = t;
    return KILN_OK;
fail:
    core_tensor_destroy(tv);
    core_tensor_destroy(ti);
    core_tensor_destroy(t);
    return st;
}

/* ---- TypeProto ------------------------------------------------------------------------------ */

static kiln_status type_decode(span raw, int depth, ir_type *t);

static kiln_status dtype_check(int64_t v, kiln_dtype *out)
{
    if (v < 0 || v >= KILN_DTYPE_COUNT_)
        return core_error(KILN_ERR_PARSE, "type: unknown elem_type %lld", (long long)v);
    *out = (kiln_dtype)v;
    return KILN_OK;
}

static kiln_status shape_decode(span raw, ir_type *t)
{
    onnx_wire r;
    onnx_field f;
    int rc, n = 0;
    onnx_wire_init(&r, raw.p, raw.n);
    while ((rc = onnx_wire_next(&r, &f)) > 0)
        if (f.num == 1) {
            if (f.wt != ONNX_WT_LEN)
                return wt_error(&f, "type shape", "dim");
            if (n == INT_MAX / 4)
                return core_error(KILN_ERR_PARSE, "type shape: too many dims");
            n++;
        }
    if (rc < 0)
        return wire_error(&r, "type shape");
    t->ndim = n;
    t->dims = core_calloc((size_t)n, sizeof *t->dims);
    if (!t->dims) {
        t->ndim = 0;
        return core_oom();
    }
    for (int i = 0; i < n; i++)
        t->dims[i].value = -1;
    int k = 0;
    onnx_wire_init(&r, raw.p, raw.n);
    while (onnx_wire_next(&r, &f) > 0) {
        if (f.num != 1)
            continue;
        onnx_wire dr;
        onnx_field df;
        onnx_wire_sub(&dr, &f);
        while ((rc = onnx_wire_next(&dr, &df)) > 0) {
            if (df.num == 1) {
                if (df.wt != ONNX_WT_VARINT)
                    return wt_error(&df, "type shape", "dim_value");
                int64_t v = (int64_t)df.u;
                t->dims[k].value = v >= 0 ? v : -1;
                free(t->dims[k].symbol);
                t->dims[k].symbol = NULL;
            } else if (df.num == 2) {
                if (df.wt != ONNX_WT_LEN)
                    return wt_error(&df, "type shape", "dim_param");
                free(t->dims[k].symbol);
                t->dims[k].value = -1;
                if (!(t->dims[k].symbol = span_dup(field_span(&df))))
                    return core_oom();
            }
        }
        if (rc < 0)
            return wire_error(&dr, "type shape dim");
        k++;
    }
    return KILN_OK;
}

/* TypeProto.Tensor / SparseTensor: elem_type=1, shape=2. */
static kiln_status tensor_type_decode(span raw, ir_type *t)
{
    onnx_wire r;
    onnx_field f;
    int rc;
    kiln_status st;
    onnx_wire_init(&r, raw.p, raw.n);
    while ((rc = onnx_wire_next(&r, &f)) > 0) {
        if (f.num == 1) {
            if (f.wt != ONNX_WT_VARINT)
                return wt_error(&f, "tensor type", "elem_type");
            if ((st = dtype_check((int64_t)f.u, &t->dtype)))
                return st;
        } else if (f.num == 2) {
            if (f.wt != ONNX_WT_LEN)
                return wt_error(&f, "tensor type", "shape");
            for (int i = 0; i < t->ndim && t->dims; i++)
                free(t->dims[i].symbol);
            free(t->dims);
            t->dims = NULL;
            t->ndim = 0;
            if ((st = shape_decode(field_span(&f), t)))
                return st;
        }
    }
    if (rc < 0)
        return wire_error(&r, "tensor type");
    return KILN_OK;
}

/* Sequence/Optional (elem_type=1) and Map (key_type=1, value_type=2). */
static kiln_status nested_type_decode(span raw, int depth, bool is_map, ir_type *t)
{
    onnx_wire r;
    onnx_field f;
    int rc;
    kiln_status st;
    uint32_t elem_field = is_map ? 2 : 1;
    onnx_wire_init(&r, raw.p, raw.n);
    while ((rc = onnx_wire_next(&r, &f)) > 0) {
        if (f.num == elem_field) {
            if (f.wt != ONNX_WT_LEN)
                return wt_error(&f, "type", "elem_type");
            if (t->elem) {
                ir_type_free(t->elem);
                free(t->elem);
            }
            t->elem = core_calloc(1, sizeof *t->elem);
            if (!t->elem)
                return core_oom();
            if ((st = type_decode(field_span(&f), depth + 1, t->elem)))
                return st;
        } else if (is_map && f.num == 1) {
            if (f.wt != ONNX_WT_VARINT)
                return wt_error(&f, "map type", "key_type");
            if ((st = dtype_check((int64_t)f.u, &t->dtype)))
                return st;
        }
    }
    if (rc < 0)
        return wire_error(&r, "type");
    return KILN_OK;
}

static kiln_status type_decode(span raw, int depth, ir_type *t)
{
    onnx_wire r;
    onnx_field f;
    int rc;
    kiln_status st;
    memset(t, 0, sizeof *t);
    t->ndim = -1;
    if (depth > ONNX_MAX_DEPTH)
        return core_error(KILN_ERR_PARSE, "type: nested too deeply");
    onnx_wire_init(&r, raw.p, raw.n);
    while ((rc = onnx_wire_next(&r, &f)) > 0) {
        ir_type_kind kind;
        switch (f.num) {
        case 1: kind = IR_TYPE_TENSOR; break;
        case 4: kind = IR_TYPE_SEQUENCE; break;
        case 5: kind = IR_TYPE_MAP; break;
        case 8: kind = IR_TYPE_SPARSE_TENSOR; break;
        case 9: kind = IR_TYPE_OPTIONAL; break;
        default: continue;
        }
        if (f.wt != ONNX_WT_LEN)
            return wt_error(&f, "type", "value");
        ir_type_free(t); /* oneof: the last one wins */
        t->ndim = -1;
        t->kind = kind;
        if (kind == IR_TYPE_TENSOR || kind == IR_TYPE_SPARSE_TENSOR)
            st = tensor_type_decode(field_span(&f), t);
        else
            st = nested_type_decode(field_span(&f), depth, kind == IR_TYPE_MAP, t);
        if (st)
            return st;
    }
    if (rc < 0)
        return wire_error(&r, "type");
    return KILN_OK;
}

/* ValueInfoProto: name=1, type=2. */
static kiln_status value_info_decode(span raw, span *name, ir_type *t, bool *has_type)
{
    onnx_wire r;
    onnx_field f;
    int rc;
    kiln_status st;
    name->p = NULL;
    name->n = 0;
    *has_type = false;
    memset(t, 0, sizeof *t);
    t->ndim = -1;
    onnx_wire_init(&r, raw.p, raw.n);
    while ((rc = onnx_wire_next(&r, &f)) > 0) {
        if (f.num == 1) {
            if (f.wt != ONNX_WT_LEN)
                return wt_error(&f, "value info", "name");
            *name = field_span(&f);
        } else if (f.num == 2) {
            if (f.wt != ONNX_WT_LEN)
                return wt_error(&f, "value info", "type");
            ir_type_free(t);
            *has_type = true;
            if ((st = type_decode(field_span(&f), 1, t)))
                return st;
        }
    }
    if (rc < 0)
        return wire_error(&r, "value info");
    return KILN_OK;
}

/* ---- names and scopes ---------------------------------------------------------------------- */

static char *str_cat(const char *a, span b)
{
    size_t al = strlen(a);
    char *s = core_malloc(al + b.n + 1);
    if (!s)
        return NULL;
    memcpy(s, a, al);
    if (b.n)
        memcpy(s + al, b.p, b.n);
    s[al + b.n] = 0;
    return s;
}

/* The name `n` takes in the graph being built: formal parameters of an expanded function
 * become the caller's names, everything else in a function body gets the call's prefix. */
static char *map_name(const scope *sc, span n)
{
    if (!sc || !sc->fn || n.n == 0)
        return span_dup(n);
    for (int i = 0; i < sc->fn->n_in; i++)
        if (span_eqs(sc->fn->in[i], n))
            return core_strdup(sc->act_in[i]);
    for (int i = 0; i < sc->fn->n_out; i++)
        if (span_eqs(sc->fn->out[i], n)) {
            if (sc->act_out[i][0])
                return core_strdup(sc->act_out[i]);
            break;
        }
    return str_cat(sc->prefix, n);
}

/* Intern a mapped name; -1 for "", -2 on OOM (error set). */
static int intern_span(ir_graph *g, const scope *sc, span n)
{
    char *nm = map_name(sc, n);
    if (!nm) {
        core_oom();
        return -2;
    }
    int id = nm[0] ? ir_graph_intern_value(g, nm) : -1;
    free(nm);
    return id;
}

/* ---- NodeProto ------------------------------------------------------------------------------ */

typedef struct raw_node {
    span name, op_type, domain, overload;
    int n_in, n_out, n_attr;
    span *in, *out, *attr;
} raw_node;

static void raw_node_free(raw_node *rn)
{
    free(rn->in);
    free(rn->out);
    free(rn->attr);
}

static kiln_status raw_node_parse(span raw, raw_node *rn)
{
    onnx_wire r;
    onnx_field f;
    int rc;
    int64_t c[4] = {0, 0, 0, 0}; /* input, output, attribute */
    memset(rn, 0, sizeof *rn);
    onnx_wire_init(&r, raw.p, raw.n);
    while ((rc = onnx_wire_next(&r, &f)) > 0) {
        const char *fname = NULL;
        switch (f.num) {
        case 1: fname = "input"; c[0]++; break;
        case 2: fname = "output"; c[1]++; break;
        case 3: fname = "name"; rn->name = field_span(&f); break;
        case 4: fname = "op_type"; rn->op_type = field_span(&f); break;
        case 5: fname = "attribute"; c[2]++; break;
        case 7: fname = "domain"; rn->domain = field_span(&f); break;
        case 8: fname = "overload"; rn->overload = field_span(&f); break;
        default: continue;
        }
        if (f.wt != ONNX_WT_LEN)
            return wt_error(&f, "node", fname);
    }
    if (rc < 0)
        return wire_error(&r, "node");
    if (!fits_int(c[0]) || !fits_int(c[1]) || !fits_int(c[2]))
        return core_error(KILN_ERR_PARSE, "node: too many inputs/outputs/attributes");
    rn->in = core_calloc((size_t)c[0], sizeof(span));
    rn->out = core_calloc((size_t)c[1], sizeof(span));
    rn->attr = core_calloc((size_t)c[2], sizeof(span));
    if (!rn->in || !rn->out || !rn->attr)
        return core_oom();
    onnx_wire_init(&r, raw.p, raw.n);
    while (onnx_wire_next(&r, &f) > 0) {
        if (f.num == 1)
            rn->in[rn->n_in++] = field_span(&f);
        else if (f.num == 2)
            rn->out[rn->n_out++] = field_span(&f);
        else if (f.num == 5)
            rn->attr[rn->n_attr++] = field_span(&f);
    }
    return KILN_OK;
}

/* Name and ref_attr_name of an AttributeProto without decoding its value. */
static kiln_status attr_peek(span raw, span *name, span *ref, bool *has_ref)
{
    onnx_wire r;
    onnx_field f;
    int rc;
    name->p = ref->p = NULL;
    name->n = ref->n = 0;
    *has_ref = false;
    onnx_wire_init(&r, raw.p, raw.n);
    while ((rc = onnx_wire_next(&r, &f)) > 0) {
        if (f.num == 1 || f.num == 21) {
            if (f.wt != ONNX_WT_LEN)
                return wt_error(&f, "attribute", f.num == 1 ? "name" : "ref_attr_name");
            if (f.num == 1) {
                *name = field_span(&f);
            } else {
                *ref = field_span(&f);
                *has_ref = true;
            }
        }
    }
    if (rc < 0)
        return wire_error(&r, "attribute");
    return KILN_OK;
}

static kiln_status graph_build(loader *L, span raw, ir_graph *parent, const scope *sc, int depth,
                               ir_graph **out);

enum {
    A_NAME = 1, A_F = 2, A_I = 3, A_S = 4, A_T = 5, A_G = 6, A_FLOATS = 7, A_INTS = 8,
    A_STRINGS = 9, A_TENSORS = 10, A_GRAPHS = 11, A_TP = 14, A_TPS = 15, A_TYPE = 20,
    A_REF = 21, A_SPARSE = 22, A_SPARSES = 23
};

/* Decode an AttributeProto for a node of graph g. Inside function bodies (sc->fn) an
 * attribute with ref_attr_name takes the caller's value, else the function's default, else
 * it is dropped (*dropped). name_override renames the result (the body's name wins). */
static kiln_status attr_decode(loader *L, ir_graph *g, span raw, const scope *sc,
                               const char *name_override, int depth, ir_attr *a, bool *dropped)
{
    onnx_wire r;
    onnx_field f;
    int rc;
    kiln_status st;
    span name = {NULL, 0}, ref = {NULL, 0};
    bool has_ref = false, seen[24] = {false};
    int64_t type = 0, cnt[24] = {0};
    char nb[200], what[300];

    memset(a, 0, sizeof *a);
    *dropped = false;
    if (depth > ONNX_MAX_DEPTH)
        return core_error(KILN_ERR_PARSE, "attribute: nested too deeply");
    onnx_wire_init(&r, raw.p, raw.n);
    while ((rc = onnx_wire_next(&r, &f)) > 0) {
        if (f.num >= 24)
            continue;
        onnx_wire_type want = ONNX_WT_LEN;
        switch (f.num) {
        case A_F: want = ONNX_WT_I32; break;
        case A_I: case A_TYPE: want = ONNX_WT_VARINT; break;
        case A_FLOATS: case A_INTS: {
            onnx_wire_type ewt = f.num == A_FLOATS ? ONNX_WT_I32 : ONNX_WT_VARINT;
            int64_t c = onnx_wire_rep_count(&f, ewt);
            if (c < 0)
                return core_error(KILN_ERR_PARSE, "attribute '%s': corrupt %s", span_label(name, nb, sizeof nb),
                                  f.num == A_FLOATS ? "floats" : "ints");
            cnt[f.num] += c;
            seen[f.num] = true;
            continue;
        }
        case A_NAME: case A_S: case A_T: case A_G: case A_STRINGS: case A_TENSORS: case A_GRAPHS:
        case A_TP: case A_TPS: case A_REF: case A_SPARSE: case A_SPARSES: case 13:
            break;
        default: continue;
        }
        if (f.wt != want) {
            snprintf(what, sizeof what, "attribute '%s'", span_label(name, nb, sizeof nb));
            return wt_error(&f, what, "value");
        }
        seen[f.num] = true;
        cnt[f.num]++;
        if (f.num == A_NAME)
            name = field_span(&f);
        else if (f.num == A_REF) {
            ref = field_span(&f);
            has_ref = true;
        } else if (f.num == A_TYPE)
            type = (int64_t)f.u;
    }
    if (rc < 0) {
        snprintf(what, sizeof what, "attribute '%s'", span_label(name, nb, sizeof nb));
        return wire_error(&r, what);
    }
    span_label(name, nb, sizeof nb);
    snprintf(what, sizeof what, "attribute '%s'", nb);
    if (!name.n && !name_override)
        return core_error(KILN_ERR_PARSE, "attribute without a name");

    if (has_ref && sc && sc->fn) {
        char *nm = name_override ? core_strdup(name_override) : span_dup(name);
        if (!nm)
            return core_oom();
        st = KILN_OK;
        bool found = false;
        for (int i = 0; i < sc->n_binds && !found; i++)
            if (span_eqs(sc->binds[i].name, ref)) {
                found = true;
                st = attr_decode(L, g, sc->binds[i].raw, sc->binds[i].sc, nm, depth + 1, a, dropped);
            }
        for (int i = 0; i < sc->fn->n_defaults && !found && !st; i++) {
            span dn, dref;
            bool dhas;
            if ((st = attr_peek(sc->fn->defaults[i], &dn, &dref, &dhas)))
                break;
            if (span_eqs(dn, ref) && !dhas) {
                found = true;
                st = attr_decode(L, g, sc->fn->defaults[i], sc, nm, depth + 1, a, dropped);
            }
        }
        if (!found && !st)
            *dropped = true;
        free(nm);
        return st;
    }

    if (type == 0) { /* old models: infer the type from the field that is set */
        static const struct { int field; ir_attr_type t; } order[] = {
            {A_G, IR_ATTR_GRAPH}, {A_T, IR_ATTR_TENSOR}, {A_SPARSE, IR_ATTR_SPARSE_TENSOR},
            {A_TP, IR_ATTR_TYPE_PROTO}, {A_S, IR_ATTR_STRING}, {A_I, IR_ATTR_INT}, {A_F, IR_ATTR_FLOAT},
            {A_GRAPHS, IR_ATTR_GRAPHS}, {A_TENSORS, IR_ATTR_TENSORS}, {A_SPARSES, IR_ATTR_SPARSE_TENSORS},
            {A_TPS, IR_ATTR_TYPE_PROTOS}, {A_STRINGS, IR_ATTR_STRINGS}, {A_INTS, IR_ATTR_INTS},
            {A_FLOATS, IR_ATTR_FLOATS}};
        for (size_t i = 0; i < sizeof order / sizeof order[0] && !type; i++)
            if (seen[order[i].field])
                type = order[i].t;
    } else if (type < 0 || type > IR_ATTR_TYPE_PROTOS) {
        return core_error(KILN_ERR_PARSE, "%s: unknown attribute type %lld", what, (long long)type);
    }

    a->name = name_override ? core_strdup(name_override) : span_dup(name);
    if (!a->name)
        return core_oom();
    if (has_ref && !(a->ref_attr_name = span_dup(ref)))
        return core_oom();
    a->type = (ir_attr_type)type;
    int list_field = 0;
    switch (a->type) {
    case IR_ATTR_FLOATS: list_field = A_FLOATS; break;
    case IR_ATTR_INTS: list_field = A_INTS; break;
    case IR_ATTR_STRINGS: list_field = A_STRINGS; break;
    case IR_ATTR_TENSORS: list_field = A_TENSORS; break;
    case IR_ATTR_GRAPHS: list_field = A_GRAPHS; break;
    case IR_ATTR_SPARSE_TENSORS: list_field = A_SPARSES; break;
    case IR_ATTR_TYPE_PROTOS: list_field = A_TPS; break;
    default: break;
    }
    if (list_field) {
        a->n = cnt[list_field];
        size_t n = (size_t)a->n;
        switch (a->type) {
        case IR_ATTR_FLOATS: a->floats = core_calloc(n, sizeof(float)); break;
        case IR_ATTR_INTS: a->ints = core_calloc(n, sizeof(int64_t)); break;
        case IR_ATTR_STRINGS: a->strings = core_calloc(n, sizeof(char *)); break;
        case IR_ATTR_TENSORS: case IR_ATTR_SPARSE_TENSORS: a->tensors = core_calloc(n, sizeof(core_tensor *)); break;
        case IR_ATTR_GRAPHS: a->graphs = core_calloc(n, sizeof(ir_graph *)); break;
        default: a->tps = core_calloc(n, sizeof(ir_type *)); break;
        }
        if (!a->floats && !a->ints && !a->strings && !a->tensors && !a->graphs && !a->tps)
            return core_oom();
    }

    int64_t k = 0;
    onnx_wire_init(&r, raw.p, raw.n);
    while (onnx_wire_next(&r, &f) > 0) {
        switch (a->type) {
        case IR_ATTR_FLOAT:
            if (f.num == A_F) {
                uint32_t w = (uint32_t)f.u;
                memcpy(&a->f, &w, 4);
            }
            break;
        case IR_ATTR_INT:
            if (f.num == A_I)
                a->i = (int64_t)f.u;
            break;
        case IR_ATTR_STRING:
            if (f.num == A_S) {
                free(a->s);
                if (!(a->s = core_strndup((const char *)f.data, f.len)))
                    return core_oom();
                a->s_len = f.len;
            }
            break;
        case IR_ATTR_TENSOR:
        case IR_ATTR_SPARSE_TENSOR:
            if (f.num == (a->type == IR_ATTR_TENSOR ? A_T : A_SPARSE)) {
                core_tensor_destroy(a->t);
                a->t = NULL;
                st = a->type == IR_ATTR_TENSOR ? tensor_decode(L, field_span(&f), what, &a->t)
                                               : sparse_decode(L, field_span(&f), what, &a->t);
                if (st)
                    return st;
            }
            break;
        case IR_ATTR_GRAPH:
            if (f.num == A_G) {
                ir_graph_destroy(a->g);
                a->g = NULL;
                if ((st = graph_build(L, field_span(&f), g, sc, depth + 1, &a->g)))
                    return core_error_prefix(st, "%s: ", what);
            }
            break;
        case IR_ATTR_TYPE_PROTO:
            if (f.num == A_TP) {
                if (a->tp) {
                    ir_type_free(a->tp);
                    free(a->tp);
                }
                if (!(a->tp = core_calloc(1, sizeof *a->tp)))
                    return core_oom();
                if ((st = type_decode(field_span(&f), depth + 1, a->tp)))
                    return core_error_prefix(st, "%s: ", what);
            }
            break;
        default:
            if ((int)f.num != list_field || k >= a->n)
                break;
            if (a->type == IR_ATTR_FLOATS || a->type == IR_ATTR_INTS) {
                onnx_wire_rep it;
                uint64_t v;
                onnx_wire_rep_begin(&it, &f, a->type == IR_ATTR_FLOATS ? ONNX_WT_I32 : ONNX_WT_VARINT);
                while (k < a->n && onnx_wire_rep_next(&it, &v)) {
                    if (a->type == IR_ATTR_FLOATS) {
                        uint32_t w = (uint32_t)v;
                        memcpy(&a->floats[k], &w, 4);
                    } else {
                        a->ints[k] = (int64_t)v;
                    }
                    k++;
                }
            } else if (a->type == IR_ATTR_STRINGS) {
                if (!(a->strings[k++] = core_strndup((const char *)f.data, f.len)))
                    return core_oom();
            } else if (a->type == IR_ATTR_TENSORS || a->type == IR_ATTR_SPARSE_TENSORS) {
                st = a->type == IR_ATTR_TENSORS ? tensor_decode(L, field_span(&f), what, &a->tensors[k])
                                                : sparse_decode(L, field_span(&f), what, &a->tensors[k]);
                if (st)
                    return st;
                k++;
            } else if (a->type == IR_ATTR_GRAPHS) {
                if ((st = graph_build(L, field_span(&f), g, sc, depth + 1, &a->graphs[k])))
                    return core_error_prefix(st, "%s: ", what);
                k++;
            } else if (a->type == IR_ATTR_TYPE_PROTOS) {
                if (!(a->tps[k] = core_calloc(1, sizeof(ir_type))))
                    return core_oom();
                if ((st = type_decode(field_span(&f), depth + 1, a->tps[k])))
                    return core_error_prefix(st, "%s: ", what);
                k++;
            }
            break;
        }
    }
    if (a->type == IR_ATTR_GRAPH && !a->g)
        return core_error(KILN_ERR_PARSE, "%s: type GRAPH but no graph", what);
    if ((a->type == IR_ATTR_TENSOR || a->type == IR_ATTR_SPARSE_TENSOR) && !a->t)
        return core_error(KILN_ERR_PARSE, "%s: type TENSOR but no tensor", what);
    if (a->type == IR_ATTR_TYPE_PROTO && !a->tp)
        return core_error(KILN_ERR_PARSE, "%s: type TYPE_PROTO but no type", what);
    if (a->type == IR_ATTR_STRING && !a->s && !(a->s = core_strdup("")))
        return core_oom();
    return KILN_OK;
}

/* ---- functions -------------------------------------------------------------------------------- */

static const fn_def *fn_find(const loader *L, const raw_node *rn)
{
    for (int i = 0; i < L->n_fns; i++) {
        const fn_def *fd = &L->fns[i];
        if (span_eqs(fd->name, rn->op_type) && domain_eq(fd->domain, rn->domain) &&
            span_eqs(fd->overload, rn->overload))
            return fd;
    }
    return NULL;
}

/* Node count of fn once fully inlined (calls inside subgraph attributes not counted),
 * saturating at ONNX_MAX_INLINED + 1; -1 with the error set for a cycle or bad body. */
static int64_t fn_expanded_size(loader *L, const fn_def *fn)
{
    int64_t idx = fn - L->fns, total = 0;
    if (L->fn_size[idx] == -2) {
        char nb[200];
        core_error(KILN_ERR_INVALID_MODEL, "function '%s' calls itself", span_label(fn->name, nb, sizeof nb));
        return -1;
    }
    if (L->fn_size[idx] >= 0)
        return L->fn_size[idx];
    L->fn_size[idx] = -2;
    for (int i = 0; i < fn->n_nodes && total <= ONNX_MAX_INLINED; i++) {
        raw_node rn;
        kiln_status st = raw_node_parse(fn->nodes[i], &rn);
        const fn_def *callee = st ? NULL : fn_find(L, &rn);
        raw_node_free(&rn);
        if (st)
            return -1;
        int64_t n = callee ? fn_expanded_size(L, callee) : 1;
        if (n < 0)
            return -1;
        total += n;
    }
    if (total > ONNX_MAX_INLINED)
        total = ONNX_MAX_INLINED + 1;
    L->fn_size[idx] = total;
    return total;
}

static int node_opset(const loader *L, const scope *sc, span domain)
{
    int64_t v = 0;
    bool found = false;
    if (sc && sc->fn)
        for (int i = 0; i < sc->fn->n_opsets && !found; i++)
            if (domain_eq(sc->fn->opsets[i].domain, domain)) {
                v = sc->fn->opsets[i].version;
                found = true;
            }
    for (int i = 0; i < L->m->n_opsets && !found; i++) {
        span d = {(const uint8_t *)L->m->opsets[i].domain, strlen(L->m->opsets[i].domain)};
        if (domain_eq(d, domain)) {
            v = L->m->opsets[i].version;
            found = true;
        }
    }
    return v < 0 ? 0 : v > INT_MAX ? INT_MAX : (int)v;
}

static kiln_status node_emit(loader *L, ir_graph *g, span raw, const scope *sc, int depth);

static void scope_free(scope *s)
{
    free(s->prefix);
    for (int i = 0; s->act_in && i < s->fn->n_in; i++)
        free(s->act_in[i]);
    for (int i = 0; s->act_out && i < s->fn->n_out; i++)
        free(s->act_out[i]);
    free(s->act_in);
    free(s->act_out);
    free(s->binds);
}

/* Inline the body of fn at the call rn (whose names are interpreted in scope sc). */
static kiln_status fn_expand(loader *L, ir_graph *g, const raw_node *rn, const fn_def *fn,
                             const scope *sc, int depth)
{
    char nb[200];
    kiln_status st = KILN_OK;
    int fdepth = sc ? sc->depth + 1 : 1;
    span_label(fn->name, nb, sizeof nb);
    if (fdepth > ONNX_MAX_FN_DEPTH)
        return core_error(KILN_ERR_INVALID_MODEL, "function '%s': expansion nested deeper than %d (recursive?)",
                          nb, ONNX_MAX_FN_DEPTH);
    if (!L->fn_size) {
        if (!(L->fn_size = core_malloc(sizeof(int64_t) * (size_t)L->n_fns)))
            return core_oom();
        for (int i = 0; i < L->n_fns; i++)
            L->fn_size[i] = -1;
    }
    if (fdepth == 1) { /* reject explosive or recursive call trees before building anything */
        int64_t n = fn_expanded_size(L, fn);
        if (n < 0)
            return KILN_ERR_INVALID_MODEL;
        if (n > ONNX_MAX_INLINED)
            return core_error(KILN_ERR_UNSUPPORTED, "function '%s': inlining produces more than %d nodes",
                              nb, ONNX_MAX_INLINED);
    }
    L->n_inlined += fn->n_nodes;
    if (L->n_inlined > ONNX_MAX_INLINED)
        return core_error(KILN_ERR_UNSUPPORTED, "function '%s': inlining model-local functions produces "
                          "more than %d nodes", nb, ONNX_MAX_INLINED);
    if (rn->n_in > fn->n_in || rn->n_out > fn->n_out)
        return core_error(KILN_ERR_INVALID_MODEL, "call of function '%s' has %d inputs and %d outputs; "
                          "the function takes %d and %d", nb, rn->n_in, rn->n_out, fn->n_in, fn->n_out);
    scope ns;
    memset(&ns, 0, sizeof ns);
    ns.fn = fn;
    ns.depth = fdepth;
    char pre[256];
    snprintf(pre, sizeof pre, "%s#%llu/", nb, (unsigned long long)++L->uniq);
    ns.prefix = core_strdup(pre);
    ns.act_in = core_calloc((size_t)fn->n_in, sizeof(char *));
    ns.act_out = core_calloc((size_t)fn->n_out, sizeof(char *));
    ns.binds = core_calloc((size_t)rn->n_attr, sizeof(attr_bind));
    if (!ns.prefix || !ns.act_in || !ns.act_out || !ns.binds) {
        st = core_oom();
        goto done;
    }
    for (int i = 0; i < fn->n_in; i++)
        if (!(ns.act_in[i] = i < rn->n_in ? map_name(sc, rn->in[i]) : core_strdup(""))) {
            st = core_oom();
            goto done;
        }
    for (int i = 0; i < fn->n_out; i++)
        if (!(ns.act_out[i] = i < rn->n_out ? map_name(sc, rn->out[i]) : core_strdup(""))) {
            st = core_oom();
            goto done;
        }
    for (int i = 0; i < rn->n_attr; i++) {
        span an, aref;
        bool has_ref;
        if ((st = attr_peek(rn->attr[i], &an, &aref, &has_ref)))
            goto done;
        attr_bind b = {an, rn->attr[i], sc};
        if (has_ref && sc && sc->fn) { /* the call itself forwards an attribute of its caller */
            bool found = false;
            for (int j = 0; j < sc->n_binds && !found; j++)
                if (span_eqs(sc->binds[j].name, aref)) {
                    b.raw = sc->binds[j].raw;
                    b.sc = sc->binds[j].sc;
                    found = true;
                }
            for (int j = 0; j < sc->fn->n_defaults && !found; j++) {
                span dn, dref;
                bool dhas;
                if ((st = attr_peek(sc->fn->defaults[j], &dn, &dref, &dhas)))
                    goto done;
                if (span_eqs(dn, aref) && !dhas) {
                    b.raw = sc->fn->defaults[j];
                    found = true;
                }
            }
            if (!found)
                continue;
        }
        ns.binds[ns.n_binds++] = b;
    }
    for (int i = 0; i < fn->n_nodes && !st; i++)
        st = node_emit(L, g, fn->nodes[i], &ns, depth + 1);
    if (st && fdepth == 1)
        core_error_prefix(st, "in function '%s': ", nb);
done:
    scope_free(&ns);
    return st;
}

/* Decode a NodeProto into g (or inline the function it calls). */
static kiln_status node_emit(loader *L, ir_graph *g, span raw, const scope *sc, int depth)
{
    raw_node rn;
    kiln_status st;
    char nb[200], ob[100];
    if (depth > ONNX_MAX_DEPTH) {
        return core_error(KILN_ERR_PARSE, "graph nested too deeply");
    }
    if ((st = raw_node_parse(raw, &rn))) {
        raw_node_free(&rn);
        return st;
    }
    span_label(rn.name, nb, sizeof nb);
    span_label(rn.op_type, ob, sizeof ob);
    if (L->n_fns) {
        const fn_def *fn = fn_find(L, &rn);
        if (fn) {
            st = fn_expand(L, g, &rn, fn, sc, depth);
            raw_node_free(&rn);
            if (st && !(sc && sc->fn)) /* name only the outermost call: nesting can be deep */
                return core_error_prefix(st, "node '%s' (%s): ", nb, ob);
            return st;
        }
    }
    ir_node nd;
    memset(&nd, 0, sizeof nd);
    if (!rn.op_type.n) {
        st = core_error(KILN_ERR_INVALID_MODEL, "node '%s' has no op_type", nb);
        goto fail;
    }
    nd.name = sc && sc->fn && rn.name.n ? str_cat(sc->prefix, rn.name) : span_dup(rn.name);
    nd.op_type = span_dup(rn.op_type);
    nd.domain = domain_is_default(rn.domain) ? core_strdup("") : span_dup(rn.domain);
    nd.inputs = core_calloc((size_t)rn.n_in, sizeof(int));
    nd.outputs = core_calloc((size_t)rn.n_out, sizeof(int));
    nd.attrs = core_calloc((size_t)rn.n_attr, sizeof(ir_attr));
    if (!nd.name || !nd.op_type || !nd.domain || !nd.inputs || !nd.outputs || !nd.attrs) {
        st = core_oom();
        goto fail;
    }
    nd.opset = node_opset(L, sc, rn.domain);
    for (int i = 0; i < rn.n_in; i++) {
        int id = intern_span(g, sc, rn.in[i]);
        if (id == -2) {
            st = KILN_ERR_OUT_OF_MEMORY;
            goto fail;
        }
        nd.inputs[nd.n_inputs++] = id;
    }
    for (int i = 0; i < rn.n_out; i++) {
        int id = intern_span(g, sc, rn.out[i]);
        if (id == -2) {
            st = KILN_ERR_OUT_OF_MEMORY;
            goto fail;
        }
        nd.outputs[nd.n_outputs++] = id;
    }
    for (int i = 0; i < rn.n_attr; i++) {
        bool dropped;
        st = attr_decode(L, g, rn.attr[i], sc, NULL, depth + 1, &nd.attrs[nd.n_attrs], &dropped);
        if (st) {
            ir_attr_free(&nd.attrs[nd.n_attrs]);
            goto fail;
        }
        if (!dropped)
            nd.n_attrs++;
    }
    if (ir_graph_add_node(g, &nd) < 0) {
        st = KILN_ERR_OUT_OF_MEMORY;
        goto fail;
    }
    raw_node_free(&rn);
    return KILN_OK;
fail:
    ir_node_free(&nd);
    raw_node_free(&rn);
    return core_error_prefix(st, "node '%s' (%s): ", nb, ob);
}

/* ---- GraphProto ------------------------------------------------------------------------------ */

enum {
    G_NODE = 1, G_NAME = 2, G_INIT = 5, G_DOC = 10, G_INPUT = 11, G_OUTPUT = 12, G_VINFO = 13,
    G_SPARSE_INIT = 15
};

static kiln_status graph_add_initializer(ir_graph *g, const scope *sc, core_tensor *t)
{
    span nm = {(const uint8_t *)(t->name ? t->name : ""), t->name ? strlen(t->name) : 0};
    if (!nm.n) {
        core_tensor_destroy(t);
        return core_error(KILN_ERR_INVALID_MODEL, "initializer without a name");
    }
    int id = intern_span(g, sc, nm);
    if (id < 0) {
        core_tensor_destroy(t);
        return KILN_ERR_OUT_OF_MEMORY;
    }
    ir_value *v = &g->values[id];
    if (v->constant) {
        kiln_status st = core_error(KILN_ERR_INVALID_MODEL, "initializer '%s' is defined twice", t->name);
        core_tensor_destroy(t);
        return st;
    }
    if (v->type.kind == IR_TYPE_UNKNOWN) {
        ir_type_free(&v->type);
        v->type.kind = IR_TYPE_TENSOR;
        v->type.dtype = t->dtype;
        v->type.ndim = t->ndim;
        if (t->ndim) {
            v->type.dims = core_calloc((size_t)t->ndim, sizeof(ir_dim));
            if (!v->type.dims) {
                v->type.ndim = -1;
                core_tensor_destroy(t);
                return core_oom();
            }
            for (int i = 0; i < t->ndim; i++)
                v->type.dims[i].value = t->dims[i];
        }
    }
    v->constant = core_value_from_tensor(t);
    if (!v->constant)
        return KILN_ERR_OUT_OF_MEMORY;
    return KILN_OK;
}

static kiln_status graph_build(loader *L, span raw, ir_graph *parent, const scope *sc, int depth,
                               ir_graph **out)
{
    onnx_wire r;
    onnx_field f;
    int rc;
    kiln_status st = KILN_OK;
    span gname = {NULL, 0};
    int64_t n_in = 0, n_out = 0;
    char gb[200];
    *out = NULL;
    if (depth > ONNX_MAX_DEPTH)
        return core_error(KILN_ERR_PARSE, "graph nested too deeply");
    onnx_wire_init(&r, raw.p, raw.n);
    while ((rc = onnx_wire_next(&r, &f)) > 0) {
        const char *fname;
        switch (f.num) {
        case G_NODE: fname = "node"; break;
        case G_NAME: fname = "name"; gname = field_span(&f); break;
        case G_INIT: fname = "initializer"; break;
        case G_INPUT: fname = "input"; n_in++; break;
        case G_OUTPUT: fname = "output"; n_out++; break;
        case G_VINFO: fname = "value_info"; break;
        case G_SPARSE_INIT: fname = "sparse_initializer"; break;
        default: continue;
        }
        if (f.wt != ONNX_WT_LEN)
            return wt_error(&f, "graph", fname);
    }
    if (rc < 0)
        return wire_error(&r, "graph");
    if (!fits_int(n_in) || !fits_int(n_out))
        return core_error(KILN_ERR_PARSE, "graph: too many inputs/outputs");
    span_label(gname, gb, sizeof gb);
    char *gn = span_dup(gname);
    if (!gn)
        return core_oom();
    ir_graph *g = ir_graph_create(gn, parent);
    free(gn);
    if (!g)
        return KILN_ERR_OUT_OF_MEMORY;
    if (!parent) {
        g->n_opsets = L->m->n_opsets;
        g->opsets = L->m->opsets;
    }
    g->inputs = core_calloc((size_t)n_in, sizeof(int));
    g->outputs = core_calloc((size_t)n_out, sizeof(int));
    if (!g->inputs || !g->outputs) {
        st = core_oom();
        goto fail;
    }
    onnx_wire_init(&r, raw.p, raw.n);
    while (!st && onnx_wire_next(&r, &f) > 0) {
        switch (f.num) {
        case G_NODE:
            st = node_emit(L, g, field_span(&f), sc, depth + 1);
            break;
        case G_INIT:
        case G_SPARSE_INIT: {
            core_tensor *t = NULL;
            st = f.num == G_INIT ? tensor_decode(L, field_span(&f), "initializer", &t)
                                 : sparse_decode(L, field_span(&f), "sparse_initializer", &t);
            if (!st)
                st = graph_add_initializer(g, sc, t);
            break;
        }
        case G_INPUT:
        case G_OUTPUT:
        case G_VINFO: {
            span vn;
            ir_type ty;
            bool has_type;
            const char *kind = f.num == G_INPUT ? "input" : f.num == G_OUTPUT ? "output" : "value_info";
            st = value_info_decode(field_span(&f), &vn, &ty, &has_type);
            if (!st && !vn.n) {
                if (f.num == G_VINFO) { /* harmless: nothing refers to it */
                    ir_type_free(&ty);
                    break;
                }
                st = core_error(KILN_ERR_INVALID_MODEL, "graph %s #%d has no name", kind,
                                f.num == G_INPUT ? g->n_inputs : g->n_outputs);
            }
            if (st) {
                ir_type_free(&ty);
                core_error_prefix(st, "graph %s: ", kind);
                break;
            }
            int id = intern_span(g, sc, vn);
            if (id < 0) {
                ir_type_free(&ty);
                st = KILN_ERR_OUT_OF_MEMORY;
                break;
            }
            ir_value *v = &g->values[id];
            if (has_type && (f.num != G_VINFO || v->type.kind == IR_TYPE_UNKNOWN)) {
                ir_type_free(&v->type);
                v->type = ty;
            } else {
                ir_type_free(&ty);
            }
            if (f.num == G_INPUT) {
                v->is_graph_input = true;
                g->inputs[g->n_inputs++] = id;
            } else if (f.num == G_OUTPUT) {
                v->is_graph_output = true;
                g->outputs[g->n_outputs++] = id;
            }
            break;
        }
        default:
            break;
        }
    }
    if (st)
        goto fail;
    *out = g;
    return KILN_OK;
fail:
    ir_graph_destroy(g);
    if (gname.n)
        core_error_prefix(st, "graph '%s': ", gb);
    return st;
}

/* Sort g and then its subgraphs: a subgraph's outer references are resolved against
 * producers its enclosing graph's sort has set. */
static kiln_status graph_sort_tree(ir_graph *g)
{
    if (!g->nodes) { /* ir_graph_sort memcpy's into g->nodes even when there are none */
        if (!(g->nodes = core_calloc(1, sizeof *g->nodes)))
            return core_oom();
        g->cap_nodes = 1;
    }
    kiln_status st = ir_graph_sort(g);
    if (st)
        return st;
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *nd = &g->nodes[i];
        for (int k = 0; k < nd->n_attrs; k++) {
            const ir_attr *a = &nd->attrs[k];
            if (a->type == IR_ATTR_GRAPH && a->g)
                st = graph_sort_tree(a->g);
            for (int64_t j = 0; !st && a->type == IR_ATTR_GRAPHS && a->graphs && j < a->n; j++)
                st = graph_sort_tree(a->graphs[j]);
            if (st)
                return core_error_prefix(st, "node '%s' (%s): attribute '%s': ", nd->name, nd->op_type, a->name);
        }
    }
    return KILN_OK;
}

/* ---- ModelProto ---------------------------------------------------------------------------------- */

static kiln_status opset_decode(span raw, span *domain, int64_t *version)
{
    onnx_wire r;
    onnx_field f;
    int rc;
    domain->p = NULL;
    domain->n = 0;
    *version = 0;
    onnx_wire_init(&r, raw.p, raw.n);
    while ((rc = onnx_wire_next(&r, &f)) > 0) {
        if (f.num == 1) {
            if (f.wt != ONNX_WT_LEN)
                return wt_error(&f, "opset_import", "domain");
            *domain = field_span(&f);
        } else if (f.num == 2) {
            if (f.wt != ONNX_WT_VARINT)
                return wt_error(&f, "opset_import", "version");
            *version = (int64_t)f.u;
        }
    }
    if (rc < 0)
        return wire_error(&r, "opset_import");
    return KILN_OK;
}

static void fn_free(fn_def *fd)
{
    free(fd->in);
    free(fd->out);
    free(fd->defaults);
    free(fd->nodes);
    free(fd->opsets);
}

/* FunctionProto: name=1, input=4, output=5, attribute=6, node=7, opset_import=9, domain=10,
 * attribute_proto=11, overload=13. */
static kiln_status fn_parse(span raw, fn_def *fd)
{
    onnx_wire r;
    onnx_field f;
    int rc;
    kiln_status st;
    int64_t c[16] = {0};
    memset(fd, 0, sizeof *fd);
    onnx_wire_init(&r, raw.p, raw.n);
    while ((rc = onnx_wire_next(&r, &f)) > 0) {
        switch (f.num) {
        case 1: case 4: case 5: case 6: case 7: case 9: case 10: case 11: case 13:
            if (f.wt != ONNX_WT_LEN)
                return wt_error(&f, "function", "value");
            c[f.num]++;
            if (f.num == 1)
                fd->name = field_span(&f);
            else if (f.num == 10)
                fd->domain = field_span(&f);
            else if (f.num == 13)
                fd->overload = field_span(&f);
            break;
        default:
            break;
        }
    }
    if (rc < 0)
        return wire_error(&r, "function");
    for (int i = 0; i < 16; i++)
        if (!fits_int(c[i]))
            return core_error(KILN_ERR_PARSE, "function: too many entries");
    fd->in = core_calloc((size_t)c[4], sizeof(span));
    fd->out = core_calloc((size_t)c[5], sizeof(span));
    fd->nodes = core_calloc((size_t)c[7], sizeof(span));
    fd->defaults = core_calloc((size_t)c[11], sizeof(span));
    fd->opsets = core_calloc((size_t)c[9], sizeof(fn_opset));
    if (!fd->in || !fd->out || !fd->nodes || !fd->defaults || !fd->opsets)
        return core_oom();
    onnx_wire_init(&r, raw.p, raw.n);
    while (onnx_wire_next(&r, &f) > 0) {
        switch (f.num) {
        case 4: fd->in[fd->n_in++] = field_span(&f); break;
        case 5: fd->out[fd->n_out++] = field_span(&f); break;
        case 7: fd->nodes[fd->n_nodes++] = field_span(&f); break;
        case 11: fd->defaults[fd->n_defaults++] = field_span(&f); break;
        case 9: {
            fn_opset *o = &fd->opsets[fd->n_opsets++];
            if ((st = opset_decode(field_span(&f), &o->domain, &o->version)))
                return st;
            break;
        }
        default:
            break;
        }
    }
    if (!fd->name.n)
        return core_error(KILN_ERR_INVALID_MODEL, "function without a name");
    return KILN_OK;
}

static kiln_status model_add_opset(ir_model *m, span domain, int64_t version)
{
    for (int i = 0; i < m->n_opsets; i++) {
        span d = {(const uint8_t *)m->opsets[i].domain, strlen(m->opsets[i].domain)};
        if (domain_eq(d, domain))
            return KILN_OK; /* first import of a domain wins */
    }
    ir_opset *no = core_realloc(m->opsets, sizeof *no * (size_t)(m->n_opsets + 1));
    if (!no)
        return core_oom();
    m->opsets = no;
    no[m->n_opsets].domain = domain_is_default(domain) ? core_strdup("") : span_dup(domain);
    no[m->n_opsets].version = version;
    if (!no[m->n_opsets].domain)
        return core_oom();
    m->n_opsets++;
    return KILN_OK;
}

enum {
    M_IR_VERSION = 1, M_PRODUCER = 2, M_PRODUCER_VERSION = 3, M_DOMAIN = 4, M_MODEL_VERSION = 5,
    M_DOC = 6, M_GRAPH = 7, M_OPSET = 8, M_METADATA = 14, M_TRAINING = 20, M_FUNCTIONS = 25,
    M_CONFIG = 26
};

static kiln_status set_str(char **dst, const onnx_field *f)
{
    free(*dst);
    *dst = span_dup(field_span(f));
    return *dst ? KILN_OK : core_oom();
}

/* Decode a ModelProto held in [data, data+size) (which L->m keeps alive). */
static kiln_status model_decode(loader *L, const uint8_t *data, size_t size)
{
    onnx_wire r;
    onnx_field f;
    int rc;
    kiln_status st;
    ir_model *m = L->m;
    span graph = {NULL, 0};
    bool has_graph = false;
    int64_t n_fns = 0;
    if (size == 0)
        return core_error(KILN_ERR_PARSE, "not an ONNX model: the file is empty");
    onnx_wire_init(&r, data, size);
    while ((rc = onnx_wire_next(&r, &f)) > 0) {
        onnx_wire_type want;
        switch (f.num) {
        case M_IR_VERSION: case M_MODEL_VERSION: want = ONNX_WT_VARINT; break;
        case M_PRODUCER: case M_PRODUCER_VERSION: case M_DOMAIN: case M_DOC: case M_GRAPH:
        case M_OPSET: case M_METADATA: case M_TRAINING: case M_FUNCTIONS: case M_CONFIG:
            want = ONNX_WT_LEN; break;
        default: continue;
        }
        if (f.wt != want)
            return core_error(KILN_ERR_PARSE, "not an ONNX model: ModelProto field #%u has wire type %s",
                              (unsigned)f.num, onnx_wire_type_name(f.wt));
        switch (f.num) {
        case M_IR_VERSION: m->ir_version = (int64_t)f.u; break;
        case M_MODEL_VERSION: m->model_version = (int64_t)f.u; break;
        case M_PRODUCER: if ((st = set_str(&m->producer_name, &f))) return st; break;
        case M_PRODUCER_VERSION: if ((st = set_str(&m->producer_version, &f))) return st; break;
        case M_DOMAIN: if ((st = set_str(&m->domain, &f))) return st; break;
        case M_DOC: if ((st = set_str(&m->doc_string, &f))) return st; break;
        case M_GRAPH: graph = field_span(&f); has_graph = true; break;
        case M_FUNCTIONS: n_fns++; break;
        default: break;
        }
    }
    if (rc < 0)
        return core_error(KILN_ERR_PARSE, "not an ONNX model: corrupt or truncated protobuf (%s at byte %zu)",
                          r.err ? r.err : "?", (size_t)(r.p - data));
    if (!has_graph)
        return core_error(KILN_ERR_PARSE, "not an ONNX model: no graph (ModelProto.graph is missing)");
    if (!fits_int(n_fns))
        return core_error(KILN_ERR_PARSE, "too many functions");
    if (n_fns && !(L->fns = core_calloc((size_t)n_fns, sizeof(fn_def))))
        return core_oom();
    onnx_wire_init(&r, data, size);
    while (onnx_wire_next(&r, &f) > 0) {
        if (f.num == M_OPSET) {
            span d;
            int64_t v;
            if ((st = opset_decode(field_span(&f), &d, &v)) || (st = model_add_opset(m, d, v)))
                return st;
        } else if (f.num == M_FUNCTIONS) {
            fn_def *fd = &L->fns[L->n_fns++];
            if ((st = fn_parse(field_span(&f), fd))) {
                char nb[200];
                return core_error_prefix(st, "function '%s': ", span_label(fd->name, nb, sizeof nb));
            }
        }
    }
    if (m->n_opsets == 0) { /* IR version < 3 models predate opset_import: opset 1 */
        span def = {NULL, 0};
        if ((st = model_add_opset(m, def, 1)))
            return st;
    }
    /* Domains imported only by functions still need a version for their nodes' lookup. */
    for (int i = 0; i < L->n_fns; i++)
        for (int k = 0; k < L->fns[i].n_opsets; k++)
            if ((st = model_add_opset(m, L->fns[i].opsets[k].domain, L->fns[i].opsets[k].version)))
                return st;
    if ((st = graph_build(L, graph, NULL, NULL, 1, &m->graph)))
        return st;
    if ((st = graph_sort_tree(m->graph)))
        return st;
    return ir_graph_verify(m->graph);
}

static void loader_done(loader *L)
{
    for (int i = 0; i < L->n_ext; i++)
        free(L->ext[i].real);
    free(L->ext);
    for (int i = 0; i < L->n_fns; i++)
        fn_free(&L->fns[i]);
    free(L->fns);
    free(L->fn_size);
    free(L->base_real);
}

static kiln_status model_load(ir_model *m, const uint8_t *data, size_t size, bool file_backed,
                              const char *base_dir, ir_model **out)
{
    loader L;
    memset(&L, 0, sizeof L);
    L.m = m;
    L.borrow = true;
    L.file_backed = file_backed;
    L.base_dir = base_dir;
    kiln_status st = model_decode(&L, data, size);
    loader_done(&L);
    if (st) {
        ir_model_destroy(m);
        return st;
    }
    *out = m;
    return KILN_OK;
}

kiln_status onnx_model_load_file(const char *path, ir_model **out)
{
    if (!out)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "onnx_model_load_file: out is NULL");
    *out = NULL;
    if (!path)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "onnx_model_load_file: path is NULL");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return core_error(KILN_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return core_error(KILN_ERR_IO, "'%s' is not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    if (size == 0) {
        close(fd);
        return core_error(KILN_ERR_PARSE, "not an ONNX model: '%s' is empty", path);
    }
    /* Private writable mapping: borrowed weights stay read-mostly, yet a stray in-place write
     * by a consumer copies the page instead of faulting. */
    void *addr = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    if (addr == MAP_FAILED)
        return core_error(KILN_ERR_IO, "cannot map '%s': %s", path, strerror(errno));
    map_small_pages(addr, size);
    ir_model *m = core_calloc(1, sizeof *m);
    if (!m || !add_mapping(m, addr, size, true)) {
        free(m);
        munmap(addr, size);
        return core_oom();
    }
    const char *slash = strrchr(path, '/');
    char *dir = slash ? core_strndup(path, slash == path ? 1 : (size_t)(slash - path)) : core_strdup(".");
    if (!dir) {
        ir_model_destroy(m);
        return core_oom();
    }
    kiln_status st = model_load(m, addr, size, true, dir, out);
    free(dir);
    if (st)
        return core_error_prefix(st, "%s: ", path);
    return KILN_OK;
}

kiln_status onnx_model_load_memory(const void *data, size_t size, const char *base_dir, ir_model **out)
{
    if (!out)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "onnx_model_load_memory: out is NULL");
    *out = NULL;
    if (!data && size)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "onnx_model_load_memory: data is NULL");
    if (size == 0)
        return core_error(KILN_ERR_PARSE, "not an ONNX model: the buffer is empty");
    ir_model *m = core_calloc(1, sizeof *m);
    void *copy = core_malloc(size);
    if (!m || !copy || !add_mapping(m, copy, size, false)) {
        free(m);
        free(copy);
        return core_oom();
    }
    memcpy(copy, data, size);
    return model_load(m, copy, size, false, base_dir, out);
}

kiln_status onnx_tensor_decode(const void *data, size_t size, core_tensor **out)
{
    if (!out)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "onnx_tensor_decode: out is NULL");
    *out = NULL;
    if (!data && size)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "onnx_tensor_decode: data is NULL");
    loader L;
    memset(&L, 0, sizeof L);
    span s = {(const uint8_t *)data, size};
    kiln_status st = tensor_decode(&L, s, NULL, out);
    loader_done(&L);
    return st;
}

/* ---- SequenceProto / OptionalProto ---------------------------------------------------------- */

static kiln_status value_decode(span raw, const ir_type *type, int depth, core_value **out);

/* Field numbers are shared: tensor=3, sparse=4, sequence=5, map=6, optional=7. */
static kiln_status value_item(span raw, uint32_t num, const ir_type *elem, int depth, core_value **out)
{
    kiln_status st;
    *out = NULL;
    if (num == 3 || num == 4) {
        loader L;
        core_tensor *t = NULL;
        memset(&L, 0, sizeof L);
        st = num == 3 ? tensor_decode(&L, raw, NULL, &t) : sparse_decode(&L, raw, NULL, &t);
        loader_done(&L);
        if (st)
            return st;
        *out = core_value_from_tensor(t);
        return *out ? KILN_OK : KILN_ERR_OUT_OF_MEMORY;
    }
    if (num == 5 || num == 7) {
        ir_type fallback;
        memset(&fallback, 0, sizeof fallback);
        fallback.kind = num == 5 ? IR_TYPE_SEQUENCE : IR_TYPE_OPTIONAL;
        fallback.ndim = -1;
        const ir_type *ty = elem && elem->kind == fallback.kind ? elem : &fallback;
        return value_decode(raw, ty, depth + 1, out);
    }
    return core_error(KILN_ERR_UNSUPPORTED, "map values are not supported");
}

static kiln_status value_decode(span raw, const ir_type *type, int depth, core_value **out)
{
    onnx_wire r;
    onnx_field f;
    int rc;
    kiln_status st;
    *out = NULL;
    if (depth > ONNX_MAX_DEPTH)
        return core_error(KILN_ERR_PARSE, "value nested too deeply");
    if (!type || type->kind == IR_TYPE_TENSOR || type->kind == IR_TYPE_UNKNOWN ||
        type->kind == IR_TYPE_SPARSE_TENSOR) {
        loader L;
        core_tensor *t = NULL;
        memset(&L, 0, sizeof L);
        st = tensor_decode(&L, raw, NULL, &t);
        loader_done(&L);
        if (st)
            return st;
        *out = core_value_from_tensor(t);
        return *out ? KILN_OK : KILN_ERR_OUT_OF_MEMORY;
    }
    const ir_type *elem = type->elem;
    kiln_dtype edt = elem && elem->kind == IR_TYPE_TENSOR ? elem->dtype : KILN_DTYPE_UNDEFINED;
    if (type->kind == IR_TYPE_SEQUENCE) {
        core_value *seq = core_value_sequence(edt);
        if (!seq)
            return KILN_ERR_OUT_OF_MEMORY;
        onnx_wire_init(&r, raw.p, raw.n);
        while ((rc = onnx_wire_next(&r, &f)) > 0) {
            if (f.num < 3 || f.num > 7)
                continue;
            if (f.wt != ONNX_WT_LEN) {
                core_value_release(seq);
                return wt_error(&f, "sequence", "values");
            }
            core_value *item;
            if ((st = value_item(field_span(&f), f.num, elem, depth, &item))) {
                long long k = (long long)seq->n_items;
                core_value_release(seq);
                return core_error_prefix(st, "sequence item %lld: ", k);
            }
            if (seq->elem_dtype == KILN_DTYPE_UNDEFINED && item->kind == CORE_VALUE_TENSOR)
                seq->elem_dtype = item->tensor->dtype;
            bool ok = core_value_seq_append(seq, item);
            core_value_release(item);
            if (!ok) {
                core_value_release(seq);
                return KILN_ERR_OUT_OF_MEMORY;
            }
        }
        if (rc < 0) {
            core_value_release(seq);
            return wire_error(&r, "sequence");
        }
        *out = seq;
        return KILN_OK;
    }
    if (type->kind == IR_TYPE_OPTIONAL) {
        core_value *v = NULL;
        onnx_wire_init(&r, raw.p, raw.n);
        while ((rc = onnx_wire_next(&r, &f)) > 0) {
            if (f.num < 3 || f.num > 7)
                continue;
            if (f.wt != ONNX_WT_LEN) {
                core_value_release(v);
                return wt_error(&f, "optional", "value");
            }
            core_value_release(v);
            v = NULL;
            if ((st = value_item(field_span(&f), f.num, elem, depth, &v)))
                return core_error_prefix(st, "optional: ");
        }
        if (rc < 0) {
            core_value_release(v);
            return wire_error(&r, "optional");
        }
        if (!v) {
            v = core_value_none();
            if (!v)
                return KILN_ERR_OUT_OF_MEMORY;
            v->elem_dtype = edt;
        }
        *out = v;
        return KILN_OK;
    }
    return core_error(KILN_ERR_UNSUPPORTED, "decoding values of map type is not supported");
}

kiln_status onnx_value_decode(const void *data, size_t size, const ir_type *type, core_value **out)
{
    if (!out)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "onnx_value_decode: out is NULL");
    *out = NULL;
    if (!data && size)
        return core_error(KILN_ERR_INVALID_ARGUMENT, "onnx_value_decode: data is NULL");
    span s = {(const uint8_t *)data, size};
    return value_decode(s, type, 1, out);
}
