/* pb_writer.h — a tiny protobuf writer for unit tests that build ONNX models byte by byte
 * (test_onnx_bad.c, test_weight_memory.c). Header-only, static functions; exits on OOM. */
#ifndef KILN_TEST_PB_WRITER_H
#define KILN_TEST_PB_WRITER_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static inline void put(buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static inline void varint(buf *b, uint64_t v)
{
    uint8_t c[10];
    int n = 0;
    do {
        c[n] = v & 0x7f;
        v >>= 7;
        if (v)
            c[n] |= 0x80;
        n++;
    } while (v);
    put(b, c, (size_t)n);
}

static inline void f_varint(buf *b, int field, uint64_t v)
{
    varint(b, (uint64_t)field << 3);
    varint(b, v);
}

static inline void f_bytes(buf *b, int field, const void *d, size_t n)
{
    varint(b, ((uint64_t)field << 3) | 2);
    varint(b, n);
    put(b, d, n);
}

static inline void f_str(buf *b, int field, const char *s) { f_bytes(b, field, s, strlen(s)); }

/* Appends message m as field `field` and frees m. */
static inline void f_msg(buf *b, int field, buf *m)
{
    f_bytes(b, field, m->p, m->n);
    free(m->p);
    memset(m, 0, sizeof *m);
}

#endif
