/* test_npy.c — unit tests of the CLI's .npy reader/writer: round trips for every dtype,
 * hand-built headers (v1/v2/v3, byte orders, strings) and malformed files rejected. */
#include "../../tools/kiln/npy.c" /* the CLI's file is not in libkiln: test it directly */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int n_pass, n_fail;

#define CHECK(cond, ...)                                                                          \
    do {                                                                                         \
        if (cond) {                                                                              \
            n_pass++;                                                                            \
        } else {                                                                                 \
            n_fail++;                                                                            \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                          \
            printf(__VA_ARGS__);                                                                 \
            printf("\n");                                                                        \
        }                                                                                        \
    } while (0)

static void fill_bytes(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

static void round_trip(kiln_dtype t, int ndim, const int64_t *dims)
{
    int64_t numel = core_shape_numel(ndim, dims);
    size_t es = core_dtype_size(t), nbytes = (size_t)numel * es;
    uint8_t *data = malloc(nbytes ? nbytes : 1);
    fill_bytes(data, nbytes, (unsigned)t * 7u + (unsigned)ndim);
    if (t == KILN_DTYPE_BOOL)
        for (size_t i = 0; i < nbytes; i++) data[i] &= 1;
    if (t == KILN_DTYPE_FLOAT16) /* avoid NaN payload ambiguity: keep exponents finite */
        for (size_t i = 1; i < nbytes; i += 2) data[i] &= 0x3F;
    void *buf = NULL;
    size_t size = 0;
    kiln_status st = npy_encode(t, ndim, dims, data, nbytes, &buf, &size);
    CHECK(st == KILN_OK, "encode %s rank %d: %s", core_dtype_name(t), ndim, core_error_text());
    if (st != KILN_OK) {
        free(data);
        return;
    }
    CHECK((size - nbytes) % 64 == 0, "%s: header not 64-aligned (%zu)", core_dtype_name(t), size - nbytes);
    core_tensor *r = NULL;
    st = npy_decode(buf, size, &r);
    CHECK(st == KILN_OK, "decode %s rank %d: %s", core_dtype_name(t), ndim, core_error_text());
    if (r) {
        CHECK(r->dtype == t, "dtype %s came back as %s", core_dtype_name(t), core_dtype_name(r->dtype));
        CHECK(r->ndim == ndim, "%s: rank %d came back as %d", core_dtype_name(t), ndim, r->ndim);
        bool same = r->ndim == ndim;
        for (int i = 0; same && i < ndim; i++) same = r->dims[i] == dims[i];
        CHECK(same, "%s: dims differ", core_dtype_name(t));
        CHECK(r->numel == numel && (nbytes == 0 || !memcmp(r->data, data, nbytes)), "%s: data differs",
              core_dtype_name(t));
        core_tensor_destroy(r);
    }
    free(buf);
    free(data);
}

static void test_round_trips(void)
{
    static const kiln_dtype types[] = {
        KILN_DTYPE_FLOAT, KILN_DTYPE_DOUBLE, KILN_DTYPE_FLOAT16, KILN_DTYPE_INT8, KILN_DTYPE_UINT8,
        KILN_DTYPE_INT16, KILN_DTYPE_UINT16, KILN_DTYPE_INT32, KILN_DTYPE_UINT32, KILN_DTYPE_INT64,
        KILN_DTYPE_UINT64, KILN_DTYPE_BOOL, KILN_DTYPE_COMPLEX64, KILN_DTYPE_COMPLEX128};
    const int64_t d3[3] = {2, 3, 4}, d1[1] = {7}, dz[2] = {3, 0}, dbig[4] = {1, 3, 17, 5};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        round_trip(types[i], 0, NULL);
        round_trip(types[i], 1, d1);
        round_trip(types[i], 3, d3);
        round_trip(types[i], 2, dz);
        round_trip(types[i], 4, dbig);
    }
}

static void test_strings(void)
{
    const char *s[4] = {"hello", "", "h\xc3\xa9llo w\xc3\xb6rld", "\xe2\x82\xac\xf0\x9f\x98\x80"};
    int64_t dims[2] = {2, 2};
    void *buf;
    size_t size;
    kiln_status st = npy_encode(KILN_DTYPE_STRING, 2, dims, s, sizeof s, &buf, &size);
    CHECK(st == KILN_OK, "encode strings: %s", core_error_text());
    if (st != KILN_OK) return;
    CHECK(strstr((char *)buf + 10, "'<U11'") != NULL, "string descr should be <U11: %.80s", (char *)buf + 10);
    core_tensor *r = NULL;
    st = npy_decode(buf, size, &r);
    CHECK(st == KILN_OK, "decode strings: %s", core_error_text());
    if (r) {
        CHECK(r->dtype == KILN_DTYPE_STRING && r->numel == 4, "string tensor shape/dtype");
        for (int i = 0; i < 4 && r->dtype == KILN_DTYPE_STRING; i++)
            CHECK(!strcmp(((char **)r->data)[i], s[i]), "string %d: '%s' vs '%s'", i, ((char **)r->data)[i], s[i]);
        core_tensor_destroy(r);
    }
    free(buf);
    const char *bad[1] = {"\xff\xfe"};
    int64_t one = 1;
    st = npy_encode(KILN_DTYPE_STRING, 1, &one, bad, sizeof bad, &buf, &size);
    CHECK(st != KILN_OK, "invalid UTF-8 should be rejected");
}

static void test_widened(void)
{
    uint16_t bf[3] = {core_f32_to_bf16(1.5f), core_f32_to_bf16(-2.0f), core_f32_to_bf16(0.25f)};
    int64_t dims[1] = {3};
    void *buf;
    size_t size;
    kiln_status st = npy_encode(KILN_DTYPE_BFLOAT16, 1, dims, bf, sizeof bf, &buf, &size);
    CHECK(st == KILN_OK, "encode bfloat16: %s", core_error_text());
    if (st != KILN_OK) return;
    core_tensor *r = NULL;
    st = npy_decode(buf, size, &r);
    CHECK(st == KILN_OK && r && r->dtype == KILN_DTYPE_FLOAT, "bfloat16 should come back as float");
    if (r && r->dtype == KILN_DTYPE_FLOAT) {
        const float *f = r->data;
        CHECK(f[0] == 1.5f && f[1] == -2.0f && f[2] == 0.25f, "bfloat16 values %g %g %g", f[0], f[1], f[2]);
    }
    core_tensor_destroy(r);
    free(buf);
    st = npy_encode(KILN_DTYPE_UNDEFINED, 1, dims, bf, sizeof bf, &buf, &size);
    CHECK(st != KILN_OK, "undefined dtype should be rejected");
    st = npy_encode(KILN_DTYPE_FLOAT, 1, dims, bf, sizeof bf, &buf, &size);
    CHECK(st != KILN_OK, "wrong nbytes should be rejected");
}

/* Build a file image: magic, version, header text (padded to 64), then raw data. */
static uint8_t *build(int major, const char *header, const void *data, size_t nbytes, size_t *size)
{
    size_t hl = strlen(header), prefix = major == 1 ? 10 : 12;
    size_t total = (prefix + hl + 1 + 63) / 64 * 64;
    uint8_t *b = calloc(1, total + nbytes);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    size_t dl = total - prefix;
    b[8] = (uint8_t)dl;
    b[9] = (uint8_t)(dl >> 8);
    if (major != 1) {
        b[10] = (uint8_t)(dl >> 16);
        b[11] = (uint8_t)(dl >> 24);
    }
    memcpy(b + prefix, header, hl);
    memset(b + prefix + hl, ' ', dl - hl - 1);
    b[total - 1] = '\n';
    if (nbytes) memcpy(b + total, data, nbytes);
    *size = total + nbytes;
    return b;
}

static core_tensor *decode_built(int major, const char *header, const void *data, size_t nbytes, kiln_status *st)
{
    size_t size;
    uint8_t *b = build(major, header, data, nbytes, &size);
    core_tensor *t = NULL;
    *st = npy_decode(b, size, &t);
    free(b);
    return t;
}

static void test_handmade(void)
{
    kiln_status st;
    int32_t v[6] = {1, 2, 3, 4, 5, -6};
    core_tensor *t = decode_built(2, "{\"descr\": \"<i4\", \"shape\": (2, 3), \"fortran_order\": False}", v,
                                  sizeof v, &st);
    CHECK(st == KILN_OK && t && t->dtype == KILN_DTYPE_INT32 && t->ndim == 2 && t->dims[1] == 3,
          "v2 header with double quotes and other key order: %s", core_error_text());
    core_tensor_destroy(t);
    t = decode_built(3, "{'descr': '<i4', 'fortran_order': False, 'shape': (6L,), }", v, sizeof v, &st);
    CHECK(st == KILN_OK && t && t->ndim == 1 && t->dims[0] == 6, "v3 header, 1-tuple with L: %s", core_error_text());
    core_tensor_destroy(t);

    uint8_t be[8] = {0, 0, 1, 2, 0xFF, 0xFF, 0xFF, 0xFE};
    t = decode_built(1, "{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }", be, sizeof be, &st);
    CHECK(st == KILN_OK && t && ((int32_t *)t->data)[0] == 258 && ((int32_t *)t->data)[1] == -2,
          "big-endian int32 swapped");
    core_tensor_destroy(t);

    uint8_t u[24] = {'a', 0, 0, 0, 'b', 0, 0, 0, 0, 0, 0, 0, 0xAC, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    t = decode_built(1, "{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }", u, sizeof u, &st);
    CHECK(st == KILN_OK && t && t->dtype == KILN_DTYPE_STRING && !strcmp(((char **)t->data)[0], "ab") &&
              !strcmp(((char **)t->data)[1], "\xe2\x82\xac"),
          "<U3 strings decoded: %s", core_error_text());
    core_tensor_destroy(t);

    t = decode_built(1, "{'descr': '|S3', 'fortran_order': False, 'shape': (2,), }", "xy\0abc", 6, &st);
    CHECK(st == KILN_OK && t && !strcmp(((char **)t->data)[0], "xy") && !strcmp(((char **)t->data)[1], "abc"),
          "|S3 strings decoded");
    core_tensor_destroy(t);

    uint8_t bools[3] = {0, 1, 2};
    t = decode_built(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", bools, 3, &st);
    CHECK(st == KILN_OK && t && ((uint8_t *)t->data)[2] == 1, "bool normalised to 0/1");
    core_tensor_destroy(t);

    float one = 1.0f;
    t = decode_built(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", &one, 4, &st);
    CHECK(st == KILN_OK && t, "fortran_order True on a 1-D array is accepted");
    core_tensor_destroy(t);
    t = decode_built(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", &one, 4, &st);
    CHECK(st == KILN_OK && t && t->ndim == 0 && t->numel == 1, "scalar");
    core_tensor_destroy(t);
}

static void expect_reject(const char *what, int major, const char *header, size_t nbytes)
{
    uint8_t data[64] = {0};
    kiln_status st;
    core_tensor *t = decode_built(major, header, data, nbytes, &st);
    CHECK(st != KILN_OK && !t, "%s should be rejected", what);
    CHECK(st == KILN_OK || core_error_text()[0] != 0, "%s: rejected without a message", what);
    core_tensor_destroy(t);
}

static void test_malformed(void)
{
    const char *ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    expect_reject("data too short", 1, ok, 20);
    expect_reject("data too long", 1, ok, 28);
    expect_reject("fortran order", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24);
    expect_reject("version 4", 4, ok, 24);
    expect_reject("not a dict", 1, "['descr', '<f4']", 24);
    expect_reject("missing shape", 1, "{'descr': '<f4', 'fortran_order': False}", 24);
    expect_reject("missing descr", 1, "{'fortran_order': False, 'shape': (2, 3)}", 24);
    expect_reject("unknown key", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}", 24);
    expect_reject("bad dtype size", 1, "{'descr': '<f3', 'fortran_order': False, 'shape': (2,), }", 6);
    expect_reject("object dtype", 1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 16);
    expect_reject("structured dtype", 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8);
    expect_reject("negative dim", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 4);
    expect_reject("unterminated string", 1, "{'descr': '<f4, 'fortran_order': False, 'shape': (1,), }", 4);
    expect_reject("bad fortran value", 1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", 4);
    expect_reject("shape not a tuple", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': 1, }", 4);
    expect_reject("huge shape", 1,
                  "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }", 8);
    expect_reject("too many dims", 1,
                  "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1), }", 4);
    expect_reject("unclosed tuple", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, ", 4);

    core_tensor *t = NULL;
    CHECK(npy_decode("\x93NUMPX\x01\x00\x00\x00", 10, &t) != KILN_OK && !t, "bad magic rejected");
    CHECK(npy_decode("\x93NUMPY\x01", 7, &t) != KILN_OK && !t, "truncated prefix rejected");
    CHECK(npy_decode("\x93NUMPY\x01\x00\xff\x7f{}", 12, &t) != KILN_OK && !t, "header length past EOF rejected");
    CHECK(npy_decode(NULL, 0, &t) != KILN_OK && !t, "empty input rejected");
}

static void test_files(void)
{
    char path[] = "/tmp/kiln_test_npy_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        CHECK(false, "mkstemp failed");
        return;
    }
    close(fd);
    double d[2] = {3.25, -1e300};
    int64_t dims[1] = {2};
    CHECK(npy_write_file(path, KILN_DTYPE_DOUBLE, 1, dims, d, sizeof d) == KILN_OK, "write file: %s",
          core_error_text());
    core_tensor *t = NULL;
    CHECK(npy_read_file(path, &t) == KILN_OK && t && ((double *)t->data)[1] == -1e300, "read file back");
    core_tensor_destroy(t);
    remove(path);
    CHECK(npy_read_file("/nonexistent/kiln.npy", &t) == KILN_ERR_IO && !t, "missing file gives KILN_ERR_IO");
}

int main(void)
{
    test_round_trips();
    test_strings();
    test_widened();
    test_handmade();
    test_malformed();
    test_files();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
