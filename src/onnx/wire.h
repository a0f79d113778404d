/* wire.h — bounds-checked reader for the protobuf wire format, the layer under the ONNX
 * importer. Nothing here allocates; every length is checked against the bytes left. */
#ifndef KILN_ONNX_WIRE_H
#define KILN_ONNX_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum onnx_wire_type {
    ONNX_WT_VARINT = 0,
    ONNX_WT_I64 = 1,
    ONNX_WT_LEN = 2,
    ONNX_WT_SGROUP = 3,
    ONNX_WT_EGROUP = 4,
    ONNX_WT_I32 = 5
} onnx_wire_type;

/* A cursor over one message. `err` holds static text describing the first failure. */
typedef struct onnx_wire {
    const uint8_t *p;
    const uint8_t *end;
    const char *err;
} onnx_wire;

/* One field. VARINT/I64/I32 payloads are in `u` (raw bits); LEN payloads in data/len. */
typedef struct onnx_field {
    uint32_t num;
    onnx_wire_type wt;
    uint64_t u;
    const uint8_t *data;
    size_t len;
} onnx_field;

void onnx_wire_init(onnx_wire *r, const void *data, size_t size);
/* A cursor over the payload of a LEN field (an embedded message). */
void onnx_wire_sub(onnx_wire *r, const onnx_field *f);
/* Read the next field: 1 = *f filled, 0 = clean end of the message, -1 = corrupt input
 * (r->err says why; the cursor stays at the bad field). Groups (deprecated) are skipped
 * whole and never returned. */
int onnx_wire_next(onnx_wire *r, onnx_field *f);
/* Decode one varint at *p (< end); advances *p. False when truncated or > 10 bytes. */
bool onnx_wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *v);
const char *onnx_wire_type_name(onnx_wire_type wt);

/* Repeated scalar fields arrive either packed (one LEN field) or one field per element;
 * `elem` is the element's scalar wire type (VARINT, I32 or I64). */
typedef struct onnx_wire_rep {
    const uint8_t *p, *end; /* packed bytes, or NULL when unpacked */
    onnx_wire_type elem;
    uint64_t single;        /* the unpacked element */
    bool single_left;
} onnx_wire_rep;

/* True when field f can hold elements of wire type `elem` (packed or not). */
bool onnx_wire_rep_ok(const onnx_field *f, onnx_wire_type elem);
/* Number of elements in field f; -1 when the packed payload is corrupt. */
int64_t onnx_wire_rep_count(const onnx_field *f, onnx_wire_type elem);
void onnx_wire_rep_begin(onnx_wire_rep *it, const onnx_field *f, onnx_wire_type elem);
/* Next element's raw bits (I32 in the low 32 bits); false at the end or on corruption
 * (onnx_wire_rep_count has validated the field when it returned >= 0). */
bool onnx_wire_rep_next(onnx_wire_rep *it, uint64_t *v);

#endif /* KILN_ONNX_WIRE_H */
