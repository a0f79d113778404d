/* wire.c — protobuf wire-format primitives: varints, fixed-width scalars, length-delimited
 * payloads, packed/unpacked repeated scalars, skipping of unknown fields and groups. */
#include "onnx/wire.h"

#include <string.h>

#define WIRE_MAX_GROUP_DEPTH 64

void onnx_wire_init(onnx_wire *r, const void *data, size_t size)
{
    r->p = (const uint8_t *)data;
    r->end = r->p ? r->p + size : r->p;
    r->err = NULL;
}

void onnx_wire_sub(onnx_wire *r, const onnx_field *f)
{
    onnx_wire_init(r, f->data, f->len);
}

bool onnx_wire_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    const uint8_t *p = *pp;
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (p >= end)
            return false;
        uint8_t b = *p++;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *pp = p;
            *v = x;
            return true;
        }
    }
    return false; /* more than 10 bytes */
}

const char *onnx_wire_type_name(onnx_wire_type wt)
{
    switch (wt) {
    case ONNX_WT_VARINT: return "varint";
    case ONNX_WT_I64: return "fixed64";
    case ONNX_WT_LEN: return "length-delimited";
    case ONNX_WT_SGROUP: return "start-group";
    case ONNX_WT_EGROUP: return "end-group";
    case ONNX_WT_I32: return "fixed32";
    }
    return "invalid";
}

/* Read a tag + payload at *pp without any group handling. 1 ok, -1 error. */
static int read_one(const uint8_t **pp, const uint8_t *end, onnx_field *f, const char **err)
{
    const uint8_t *p = *pp;
    uint64_t tag;
    if (!onnx_wire_varint(&p, end, &tag)) {
        *err = "truncated or overlong field tag";
        return -1;
    }
    if (tag > 0xffffffffu || (tag >> 3) == 0) {
        *err = "invalid field number";
        return -1;
    }
    f->num = (uint32_t)(tag >> 3);
    f->wt = (onnx_wire_type)(tag & 7);
    f->u = 0;
    f->data = NULL;
    f->len = 0;
    switch (f->wt) {
    case ONNX_WT_VARINT:
        if (!onnx_wire_varint(&p, end, &f->u)) {
            *err = "truncated or overlong varint";
            return -1;
        }
        break;
    case ONNX_WT_I64:
        if ((size_t)(end - p) < 8) {
            *err = "truncated fixed64";
            return -1;
        }
        memcpy(&f->u, p, 8);
        p += 8;
        break;
    case ONNX_WT_I32: {
        uint32_t w;
        if ((size_t)(end - p) < 4) {
            *err = "truncated fixed32";
            return -1;
        }
        memcpy(&w, p, 4);
        f->u = w;
        p += 4;
        break;
    }
    case ONNX_WT_LEN: {
        uint64_t n;
        if (!onnx_wire_varint(&p, end, &n)) {
            *err = "truncated length";
            return -1;
        }
        if (n > (uint64_t)(end - p)) {
            *err = "length runs past the end of the enclosing message";
            return -1;
        }
        f->data = p;
        f->len = (size_t)n;
        p += n;
        break;
    }
    case ONNX_WT_SGROUP:
    case ONNX_WT_EGROUP:
        break;
    default:
        *err = "invalid wire type";
        return -1;
    }
    *pp = p;
    return 1;
}

int onnx_wire_next(onnx_wire *r, onnx_field *f)
{
    for (;;) {
        if (r->p >= r->end)
            return 0;
        const uint8_t *p = r->p;
        if (read_one(&p, r->end, f, &r->err) < 0)
            return -1;
        if (f->wt == ONNX_WT_EGROUP) {
            r->err = "end-group without start-group";
            return -1;
        }
        if (f->wt != ONNX_WT_SGROUP) {
            r->p = p;
            return 1;
        }
        /* Skip a group iteratively; the stack bounds nesting and checks numbers match. */
        uint32_t stack[WIRE_MAX_GROUP_DEPTH];
        int depth = 0;
        stack[depth++] = f->num;
        while (depth > 0) {
            onnx_field g;
            if (p >= r->end) {
                r->err = "unterminated group";
                return -1;
            }
            if (read_one(&p, r->end, &g, &r->err) < 0)
                return -1;
            if (g.wt == ONNX_WT_SGROUP) {
                if (depth >= WIRE_MAX_GROUP_DEPTH) {
                    r->err = "groups nested too deeply";
                    return -1;
                }
                stack[depth++] = g.num;
            } else if (g.wt == ONNX_WT_EGROUP) {
                if (stack[depth - 1] != g.num) {
                    r->err = "mismatched end-group";
                    return -1;
                }
                depth--;
            }
        }
        r->p = p;
    }
}

bool onnx_wire_rep_ok(const onnx_field *f, onnx_wire_type elem)
{
    return f->wt == elem || f->wt == ONNX_WT_LEN;
}

int64_t onnx_wire_rep_count(const onnx_field *f, onnx_wire_type elem)
{
    if (f->wt != ONNX_WT_LEN)
        return f->wt == elem ? 1 : -1;
    switch (elem) {
    case ONNX_WT_I32:
        return f->len % 4 ? -1 : (int64_t)(f->len / 4);
    case ONNX_WT_I64:
        return f->len % 8 ? -1 : (int64_t)(f->len / 8);
    case ONNX_WT_VARINT: {
        /* Every varint ends with exactly one byte below 0x80; also reject > 10 bytes. */
        int64_t n = 0;
        int run = 0;
        for (size_t i = 0; i < f->len; i++) {
            if (f->data[i] & 0x80) {
                if (++run >= 10)
                    return -1;
            } else {
                run = 0;
                n++;
            }
        }
        return run ? -1 : n;
    }
    default:
        return -1;
    }
}

void onnx_wire_rep_begin(onnx_wire_rep *it, const onnx_field *f, onnx_wire_type elem)
{
    it->elem = elem;
    if (f->wt == ONNX_WT_LEN) {
        it->p = f->data;
        it->end = f->data + f->len;
        it->single_left = false;
    } else {
        it->p = it->end = NULL;
        it->single = f->u;
        it->single_left = true;
    }
}

bool onnx_wire_rep_next(onnx_wire_rep *it, uint64_t *v)
{
    if (!it->p) {
        if (!it->single_left)
            return false;
        it->single_left = false;
        *v = it->single;
        return true;
    }
    if (it->p >= it->end)
        return false;
    switch (it->elem) {
    case ONNX_WT_VARINT:
        return onnx_wire_varint(&it->p, it->end, v);
    case ONNX_WT_I32: {
        uint32_t w;
        if ((size_t)(it->end - it->p) < 4)
            return false;
        memcpy(&w, it->p, 4);
        it->p += 4;
        *v = w;
        return true;
    }
    case ONNX_WT_I64:
        if ((size_t)(it->end - it->p) < 8)
            return false;
        memcpy(v, it->p, 8);
        it->p += 8;
        return true;
    default:
        return false;
    }
}
