/* npy.c — reader and writer of NumPy .npy files: header dict parsing, dtype mapping,
 * byte-order swapping and UCS-4 <-> UTF-8 for string arrays. */
#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6

static bool host_is_big_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 0;
}

static void swap_elems(uint8_t *p, int64_t n, size_t size)
{
    if (size <= 1) return;
    for (int64_t i = 0; i < n; i++, p += size)
        for (size_t a = 0, b = size - 1; a < b; a++, b--) {
            uint8_t t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

/* ---- header parsing -------------------------------------------------------------------- */

typedef struct npy_parser {
    const char *p, *end;
} npy_parser;

static void skip_ws(npy_parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static bool accept(npy_parser *ps, char c)
{
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == c) {
        ps->p++;
        return true;
    }
    return false;
}

/* A Python string literal in ' or " quotes (no escapes are used by NumPy's writer). */
static kiln_status parse_str(npy_parser *ps, char *dst, size_t size, const char *what)
{
    skip_ws(ps);
    if (ps->p >= ps->end || (*ps->p != '\'' && *ps->p != '"'))
        return core_error(KILN_ERR_PARSE, ".npy header: expected a string for %s", what);
    char q = *ps->p++;
    size_t n = 0;
    while (ps->p < ps->end && *ps->p != q) {
        if (*ps->p == '\\') return core_error(KILN_ERR_PARSE, ".npy header: escapes in %s not supported", what);
        if (n + 1 >= size) return core_error(KILN_ERR_PARSE, ".npy header: %s too long", what);
        dst[n++] = *ps->p++;
    }
    if (ps->p >= ps->end) return core_error(KILN_ERR_PARSE, ".npy header: unterminated string in %s", what);
    ps->p++;
    dst[n] = 0;
    return KILN_OK;
}

static bool parse_word(npy_parser *ps, const char *w)
{
    skip_ws(ps);
    size_t n = strlen(w);
    if ((size_t)(ps->end - ps->p) >= n && !memcmp(ps->p, w, n)) {
        ps->p += n;
        return true;
    }
    return false;
}

static kiln_status parse_shape(npy_parser *ps, int *ndim, int64_t *dims)
{
    if (!accept(ps, '(')) return core_error(KILN_ERR_PARSE, ".npy header: 'shape' is not a tuple");
    *ndim = 0;
    for (;;) {
        if (accept(ps, ')')) return KILN_OK;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
            return core_error(KILN_ERR_PARSE, ".npy header: bad dimension in 'shape'");
        int64_t v = 0;
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
            if (v > (INT64_MAX - 9) / 10) return core_error(KILN_ERR_PARSE, ".npy header: dimension too large");
            v = v * 10 + (*ps->p++ - '0');
        }
        if (ps->p < ps->end && *ps->p == 'L') ps->p++; /* Python 2 longs */
        if (*ndim >= KILN_MAX_DIMS)
            return core_error(KILN_ERR_PARSE, ".npy header: more than %d dimensions", KILN_MAX_DIMS);
        dims[(*ndim)++] = v;
        if (accept(ps, ',')) continue;
        if (accept(ps, ')')) return KILN_OK;
        return core_error(KILN_ERR_PARSE, ".npy header: expected ',' or ')' in 'shape'");
    }
}

typedef struct npy_header {
    char descr[32];
    bool fortran;
    int ndim;
    int64_t dims[KILN_MAX_DIMS];
} npy_header;

static kiln_status parse_header(const char *text, size_t len, npy_header *h)
{
    npy_parser ps = {text, text + len};
    bool have_descr = false, have_fortran = false, have_shape = false;
    kiln_status st;
    if (!accept(&ps, '{')) return core_error(KILN_ERR_PARSE, ".npy header is not a dict");
    for (;;) {
        if (accept(&ps, '}')) break;
        char key[32];
        if ((st = parse_str(&ps, key, sizeof key, "a key")) != KILN_OK) return st;
        if (!accept(&ps, ':')) return core_error(KILN_ERR_PARSE, ".npy header: expected ':' after '%s'", key);
        if (!strcmp(key, "descr")) {
            skip_ws(&ps);
            if (ps.p < ps.end && *ps.p == '[')
                return core_error(KILN_ERR_UNSUPPORTED, ".npy: structured dtypes are not supported");
            if ((st = parse_str(&ps, h->descr, sizeof h->descr, "'descr'")) != KILN_OK) return st;
            have_descr = true;
        } else if (!strcmp(key, "fortran_order")) {
            if (parse_word(&ps, "True")) h->fortran = true;
            else if (parse_word(&ps, "False")) h->fortran = false;
            else return core_error(KILN_ERR_PARSE, ".npy header: 'fortran_order' is not True/False");
            have_fortran = true;
        } else if (!strcmp(key, "shape")) {
            if ((st = parse_shape(&ps, &h->ndim, h->dims)) != KILN_OK) return st;
            have_shape = true;
        } else {
            return core_error(KILN_ERR_PARSE, ".npy header: unexpected key '%s'", key);
        }
        if (accept(&ps, ',')) continue;
        if (accept(&ps, '}')) break;
        return core_error(KILN_ERR_PARSE, ".npy header: expected ',' or '}'");
    }
    if (!have_descr || !have_fortran || !have_shape)
        return core_error(KILN_ERR_PARSE, ".npy header lacks '%s'",
                          !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
    return KILN_OK;
}

/* ---- dtype mapping --------------------------------------------------------------------- */

typedef struct npy_dtype {
    char order;      /* '<', '>' or '|' */
    char kind;       /* 'f', 'i', 'u', 'b', 'c', 'U', 'S' */
    size_t itemsize; /* bytes per element in the file */
    kiln_dtype dtype;
} npy_dtype;

static kiln_status parse_descr(const char *d, npy_dtype *out)
{
    const char *p = d;
    char order = '|';
    if (*p == '<' || *p == '>' || *p == '|' || *p == '=') order = *p++;
    if (order == '=') order = host_is_big_endian() ? '>' : '<';
    char kind = *p++;
    if (kind == '?' && !*p) {
        *out = (npy_dtype){'|', 'b', 1, KILN_DTYPE_BOOL};
        return KILN_OK;
    }
    if (kind == 'O') return core_error(KILN_ERR_UNSUPPORTED, ".npy: object arrays ('%s') are not supported", d);
    char *end;
    errno = 0;
    long size = strtol(p, &end, 10);
    if (end == p || *end || errno || size <= 0 || size > (1L << 24))
        return core_error(KILN_ERR_UNSUPPORTED, ".npy: unsupported dtype '%s'", d);
    kiln_dtype t = KILN_DTYPE_UNDEFINED;
    switch (kind) {
    case 'f':
        t = size == 2 ? KILN_DTYPE_FLOAT16 : size == 4 ? KILN_DTYPE_FLOAT : size == 8 ? KILN_DTYPE_DOUBLE
                                                                                     : t;
        break;
    case 'i':
        t = size == 1 ? KILN_DTYPE_INT8 : size == 2 ? KILN_DTYPE_INT16 : size == 4 ? KILN_DTYPE_INT32
            : size == 8 ? KILN_DTYPE_INT64 : t;
        break;
    case 'u':
        t = size == 1 ? KILN_DTYPE_UINT8 : size == 2 ? KILN_DTYPE_UINT16 : size == 4 ? KILN_DTYPE_UINT32
            : size == 8 ? KILN_DTYPE_UINT64 : t;
        break;
    case 'b': t = size == 1 ? KILN_DTYPE_BOOL : t; break;
    case 'c': t = size == 8 ? KILN_DTYPE_COMPLEX64 : size == 16 ? KILN_DTYPE_COMPLEX128 : t; break;
    case 'U':
        t = KILN_DTYPE_STRING;
        size *= 4;
        break;
    case 'S':
    case 'a': t = KILN_DTYPE_STRING; kind = 'S'; break;
    default: break;
    }
    if (t == KILN_DTYPE_UNDEFINED) return core_error(KILN_ERR_UNSUPPORTED, ".npy: unsupported dtype '%s'", d);
    out->order = order;
    out->kind = kind;
    out->itemsize = (size_t)size;
    out->dtype = t;
    return KILN_OK;
}

/* ---- UTF-8 <-> UCS-4 --------------------------------------------------------------------- */

static size_t utf8_put(uint32_t c, char *o)
{
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xC0 | (c >> 6));
        o[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12));
        o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (c >> 18));
    o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* Next code point of s (advancing *i); returns false on invalid UTF-8. */
static bool utf8_get(const unsigned char *s, size_t *i, uint32_t *c)
{
    unsigned char b = s[*i];
    int n;
    uint32_t v;
    if (b < 0x80) {
        *c = b;
        (*i)++;
        return true;
    } else if ((b & 0xE0) == 0xC0) {
        n = 1;
        v = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
        n = 2;
        v = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
        n = 3;
        v = b & 0x07;
    } else {
        return false;
    }
    for (int k = 1; k <= n; k++) {
        unsigned char x = s[*i + k];
        if ((x & 0xC0) != 0x80) return false;
        v = (v << 6) | (x & 0x3F);
    }
    static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
    if (v < min_cp[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return false;
    *i += (size_t)n + 1;
    *c = v;
    return true;
}

static kiln_status decode_strings(const uint8_t *src, const npy_dtype *nd, core_tensor *t)
{
    size_t chars = nd->kind == 'U' ? nd->itemsize / 4 : nd->itemsize;
    char *tmp = core_malloc(chars * 4 + 1);
    if (!tmp) return core_oom();
    for (int64_t i = 0; i < t->numel; i++) {
        const uint8_t *e = src + (size_t)i * nd->itemsize;
        size_t len = 0;
        if (nd->kind == 'S') {
            while (len < chars && e[len]) len++;
            memcpy(tmp, e, len);
        } else {
            size_t n = chars;
            bool be = nd->order == '>';
            for (size_t k = 0; k < n; k++) {
                const uint8_t *q = e + 4 * k;
                uint32_t c = be ? ((uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3])
                                : ((uint32_t)q[3] << 24 | (uint32_t)q[2] << 16 | (uint32_t)q[1] << 8 | q[0]);
                if (c == 0) break; /* NumPy strips trailing NULs */
                if (c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
                    free(tmp);
                    return core_error(KILN_ERR_PARSE, ".npy: element %lld holds invalid code point U+%X",
                                      (long long)i, (unsigned)c);
                }
                len += utf8_put(c, tmp + len);
            }
        }
        if (!core_tensor_set_string(t, i, tmp, len)) {
            free(tmp);
            return core_oom();
        }
    }
    free(tmp);
    return KILN_OK;
}

/* ---- decode ------------------------------------------------------------------------------ */

kiln_status npy_decode(const void *buf, size_t size, core_tensor **out)
{
    *out = NULL;
    const uint8_t *b = buf;
    if (!buf || size < 10 || memcmp(b, NPY_MAGIC, NPY_MAGIC_LEN))
        return core_error(KILN_ERR_PARSE, "not a .npy file (bad magic)");
    int major = b[6], minor = b[7];
    size_t hlen, hstart;
    if (major == 1) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12) return core_error(KILN_ERR_PARSE, ".npy file truncated in its header");
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        hstart = 12;
    } else {
        return core_error(KILN_ERR_UNSUPPORTED, "unsupported .npy format version %d.%d", major, minor);
    }
    if (hlen > size - hstart)
        return core_error(KILN_ERR_PARSE, ".npy header length %zu exceeds the file (%zu bytes)", hlen, size);
    npy_header h;
    memset(&h, 0, sizeof h);
    kiln_status st = parse_header((const char *)b + hstart, hlen, &h);
    if (st != KILN_OK) return st;
    npy_dtype nd;
    memset(&nd, 0, sizeof nd);
    if ((st = parse_descr(h.descr, &nd)) != KILN_OK) return st;
    if (h.fortran && h.ndim >= 2) {
        int n1 = 0;
        for (int i = 0; i < h.ndim; i++) n1 += h.dims[i] != 1;
        if (n1 > 1)
            return core_error(KILN_ERR_UNSUPPORTED,
                              ".npy array is in Fortran order; save it with np.ascontiguousarray(a)");
    }
    int64_t numel = core_shape_numel(h.ndim, h.dims), data_bytes;
    if (numel < 0 || !core_mul_size(numel, (int64_t)nd.itemsize, &data_bytes))
        return core_error(KILN_ERR_PARSE, ".npy shape is too large");
    size_t off = hstart + hlen;
    if ((uint64_t)data_bytes != size - off)
        return core_error(KILN_ERR_PARSE, ".npy data is %zu bytes, expected %lld for dtype '%s' and %lld elements",
                          size - off, (long long)data_bytes, h.descr, (long long)numel);
    core_tensor *t = core_tensor_create(nd.dtype, h.ndim, h.dims);
    if (!t) return KILN_ERR_OUT_OF_MEMORY; /* error text set by core_tensor_create */
    const uint8_t *src = b + off;
    if (nd.dtype == KILN_DTYPE_STRING) {
        if ((st = decode_strings(src, &nd, t)) != KILN_OK) {
            core_tensor_destroy(t);
            return st;
        }
    } else {
        if (data_bytes) memcpy(t->data, src, (size_t)data_bytes);
        bool file_be = nd.order == '>';
        size_t swap_unit = nd.kind == 'c' ? nd.itemsize / 2 : nd.itemsize;
        int64_t swap_n = nd.kind == 'c' ? numel * 2 : numel;
        if (file_be != host_is_big_endian()) swap_elems(t->data, swap_n, swap_unit);
        if (nd.dtype == KILN_DTYPE_BOOL)
            for (int64_t i = 0; i < numel; i++) ((uint8_t *)t->data)[i] = ((uint8_t *)t->data)[i] != 0;
    }
    *out = t;
    return KILN_OK;
}

kiln_status npy_read_file(const char *path, core_tensor **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return core_error(KILN_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = core_malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        uint8_t *nb = core_realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    if (!buf) {
        fclose(f);
        return core_oom();
    }
    if (ferror(f)) {
        fclose(f);
        free(buf);
        return core_error(KILN_ERR_IO, "cannot read %s", path);
    }
    fclose(f);
    kiln_status st = npy_decode(buf, n, out);
    free(buf);
    if (st != KILN_OK) return core_error_prefix(st, "%s: ", path);
    return KILN_OK;
}

/* ---- encode ------------------------------------------------------------------------------ */

/* descr for dtype t and the per-element byte size written; widen = convert to float32. */
static kiln_status npy_descr_for(kiln_dtype t, char *descr, size_t *itemsize, bool *widen)
{
    *widen = false;
    const char *d = NULL;
    switch (t) {
    case KILN_DTYPE_FLOAT: d = "<f4"; break;
    case KILN_DTYPE_DOUBLE: d = "<f8"; break;
    case KILN_DTYPE_FLOAT16: d = "<f2"; break;
    case KILN_DTYPE_INT8:
    case KILN_DTYPE_INT4:
    case KILN_DTYPE_INT2: d = "|i1"; break;
    case KILN_DTYPE_UINT8:
    case KILN_DTYPE_UINT4:
    case KILN_DTYPE_UINT2: d = "|u1"; break;
    case KILN_DTYPE_INT16: d = "<i2"; break;
    case KILN_DTYPE_UINT16: d = "<u2"; break;
    case KILN_DTYPE_INT32: d = "<i4"; break;
    case KILN_DTYPE_UINT32: d = "<u4"; break;
    case KILN_DTYPE_INT64: d = "<i8"; break;
    case KILN_DTYPE_UINT64: d = "<u8"; break;
    case KILN_DTYPE_BOOL: d = "|b1"; break;
    case KILN_DTYPE_COMPLEX64: d = "<c8"; break;
    case KILN_DTYPE_COMPLEX128: d = "<c16"; break;
    case KILN_DTYPE_BFLOAT16:
    case KILN_DTYPE_FLOAT8E4M3FN:
    case KILN_DTYPE_FLOAT8E4M3FNUZ:
    case KILN_DTYPE_FLOAT8E5M2:
    case KILN_DTYPE_FLOAT8E5M2FNUZ:
    case KILN_DTYPE_FLOAT8E8M0:
    case KILN_DTYPE_FLOAT4E2M1:
        d = "<f4";
        *widen = true;
        break;
    default:
        return core_error(KILN_ERR_UNSUPPORTED, ".npy: cannot write dtype %s", core_dtype_name(t));
    }
    strcpy(descr, d);
    *itemsize = *widen ? 4 : core_dtype_size(t);
    return KILN_OK;
}

static float widen_one(kiln_dtype t, const uint8_t *data, int64_t i)
{
    switch (t) {
    case KILN_DTYPE_BFLOAT16: return core_bf16_to_f32(((const uint16_t *)(const void *)data)[i]);
    case KILN_DTYPE_FLOAT4E2M1: return core_f4e2m1_to_f32(data[i]);
    default: return core_f8_to_f32(t, data[i]);
    }
}

kiln_status npy_encode(kiln_dtype dtype, int ndim, const int64_t *dims, const void *data,
                       size_t nbytes, void **out, size_t *out_size)
{
    *out = NULL;
    *out_size = 0;
    if (ndim < 0 || ndim > KILN_MAX_DIMS)
        return core_error(KILN_ERR_INVALID_ARGUMENT, ".npy: bad rank %d", ndim);
    int64_t numel = core_shape_numel(ndim, dims);
    if (numel < 0) return core_error(KILN_ERR_INVALID_ARGUMENT, ".npy: bad shape");
    if (numel > 0 && !data) return core_error(KILN_ERR_INVALID_ARGUMENT, ".npy: no data");
    char descr[32];
    size_t itemsize = 0;
    bool widen = false;
    if (dtype == KILN_DTYPE_STRING) {
        /* '<U' width = longest string in code points (NumPy uses at least 1) */
        size_t maxc = 1;
        char *const *s = (char *const *)data;
        for (int64_t i = 0; i < numel; i++) {
            const unsigned char *u = (const unsigned char *)(s[i] ? s[i] : "");
            size_t k = 0, nc = 0;
            uint32_t c;
            while (u[k]) {
                if (!utf8_get(u, &k, &c))
                    return core_error(KILN_ERR_INVALID_ARGUMENT, ".npy: string element %lld is not valid UTF-8",
                                      (long long)i);
                nc++;
            }
            if (nc > maxc) maxc = nc;
        }
        if (maxc > (1u << 24)) return core_error(KILN_ERR_UNSUPPORTED, ".npy: strings too long");
        snprintf(descr, sizeof descr, "<U%zu", maxc);
        itemsize = maxc * 4;
    } else {
        kiln_status st = npy_descr_for(dtype, descr, &itemsize, &widen);
        if (st != KILN_OK) return st;
        size_t want = (size_t)numel * core_dtype_size(dtype);
        if (nbytes != want)
            return core_error(KILN_ERR_INVALID_ARGUMENT, ".npy: %zu data bytes given, %zu expected", nbytes, want);
    }
    int64_t data_bytes;
    if (!core_mul_size(numel, (int64_t)itemsize, &data_bytes))
        return core_error(KILN_ERR_INVALID_ARGUMENT, ".npy: array too large");

    char hdr[64 + 24 * KILN_MAX_DIMS + 128];
    int hl = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < ndim; i++)
        hl += snprintf(hdr + hl, sizeof hdr - (size_t)hl, "%lld%s", (long long)dims[i],
                       ndim == 1 ? "," : i + 1 < ndim ? ", " : "");
    hl += snprintf(hdr + hl, sizeof hdr - (size_t)hl, "), }");
    /* total header (magic + version + length + dict + padding + '\n') is a multiple of 64 */
    size_t prefix = 10, total = prefix + (size_t)hl + 1;
    size_t padded = (total + 63) / 64 * 64;
    size_t dict_len = padded - prefix; /* includes padding and '\n' */
    size_t size = padded + (size_t)data_bytes;
    uint8_t *buf = core_malloc(size ? size : 1);
    if (!buf) return core_oom();
    memcpy(buf, NPY_MAGIC, NPY_MAGIC_LEN);
    buf[6] = 1;
    buf[7] = 0;
    buf[8] = (uint8_t)(dict_len & 0xFF);
    buf[9] = (uint8_t)(dict_len >> 8);
    memcpy(buf + prefix, hdr, (size_t)hl);
    memset(buf + prefix + hl, ' ', dict_len - (size_t)hl - 1);
    buf[padded - 1] = '\n';
    uint8_t *dst = buf + padded;
    if (dtype == KILN_DTYPE_STRING) {
        memset(dst, 0, (size_t)data_bytes);
        char *const *s = (char *const *)data;
        for (int64_t i = 0; i < numel; i++) {
            const unsigned char *u = (const unsigned char *)(s[i] ? s[i] : "");
            uint8_t *e = dst + (size_t)i * itemsize;
            size_t k = 0;
            uint32_t c;
            while (u[k] && utf8_get(u, &k, &c)) {
                e[0] = (uint8_t)c;
                e[1] = (uint8_t)(c >> 8);
                e[2] = (uint8_t)(c >> 16);
                e[3] = 0;
                e += 4;
            }
        }
    } else if (widen) {
        for (int64_t i = 0; i < numel; i++) {
            float f = widen_one(dtype, data, i);
            memcpy(dst + 4 * i, &f, 4);
        }
        if (host_is_big_endian()) swap_elems(dst, numel, 4);
    } else {
        if (data_bytes) memcpy(dst, data, (size_t)data_bytes);
        if (dtype == KILN_DTYPE_BOOL)
            for (int64_t i = 0; i < numel; i++) dst[i] = dst[i] != 0;
        if (host_is_big_endian()) {
            bool cplx = dtype == KILN_DTYPE_COMPLEX64 || dtype == KILN_DTYPE_COMPLEX128;
            swap_elems(dst, cplx ? numel * 2 : numel, cplx ? itemsize / 2 : itemsize);
        }
    }
    *out = buf;
    *out_size = size;
    return KILN_OK;
}

kiln_status npy_write_file(const char *path, kiln_dtype dtype, int ndim, const int64_t *dims,
                           const void *data, size_t nbytes)
{
    void *buf;
    size_t size;
    kiln_status st = npy_encode(dtype, ndim, dims, data, nbytes, &buf, &size);
    if (st != KILN_OK) return st;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(buf);
        return core_error(KILN_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    }
    size_t w = fwrite(buf, 1, size, f);
    free(buf);
    int cerr = fclose(f);
    if (w != size || cerr != 0) return core_error(KILN_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return KILN_OK;
}
