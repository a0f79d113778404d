/* test_onnx_bad.c — the ONNX loader must reject broken input with an error message, never
 * crash: truncated and corrupted models, non-protobuf bytes, hostile external-data paths. */
#include "onnx/onnx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pb_writer.h"

static int n_pass, n_fail;

#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (cond) {                                                                          \
            n_pass++;                                                                        \
        } else {                                                                             \
            n_fail++;                                                                        \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                      \
            printf(__VA_ARGS__);                                                             \
            printf("\n");                                                                    \
        }                                                                                    \
    } while (0)


static void value_info(buf *g, int field, const char *name, int dtype, int64_t dim)
{
    buf vi = {0}, ty = {0}, tt = {0}, sh = {0}, d = {0};
    f_varint(&d, 1, (uint64_t)dim);
    f_msg(&sh, 1, &d);
    f_varint(&tt, 1, (uint64_t)dtype);
    f_msg(&tt, 2, &sh);
    f_msg(&ty, 1, &tt);
    f_str(&vi, 1, name);
    f_msg(&vi, 2, &ty);
    f_msg(g, field, &vi);
}

/* Initializer "W": float [4]; raw_data unless ext_loc is given (then external data). */
static void initializer(buf *g, const char *ext_loc, const char *ext_off, const char *ext_len)
{
    buf t = {0};
    f_varint(&t, 1, 4);
    f_varint(&t, 2, 1);
    f_str(&t, 8, "W");
    if (ext_loc) {
        const char *keys[3] = {"location", "offset", "length"};
        const char *vals[3] = {ext_loc, ext_off, ext_len};
        for (int i = 0; i < 3; i++) {
            if (!vals[i])
                continue;
            buf e = {0};
            f_str(&e, 1, keys[i]);
            f_str(&e, 2, vals[i]);
            f_msg(&t, 13, &e);
        }
        f_varint(&t, 14, 1);
    } else {
        float w[4] = {1, 2, 3, 4};
        f_bytes(&t, 9, w, sizeof w);
    }
    f_msg(g, 5, &t);
}

/* Model: Y = Add(X, W), opset 17. The graph is the last field so that every strict prefix
 * is either cut inside a field or lacks the graph. */
static buf make_model(const char *ext_loc, const char *ext_off, const char *ext_len)
{
    buf m = {0}, g = {0}, node = {0}, op = {0};
    f_varint(&m, 1, 8);
    f_str(&m, 2, "test_onnx_bad");
    f_str(&op, 1, "");
    f_varint(&op, 2, 17);
    f_msg(&m, 8, &op);
    f_str(&node, 1, "X");
    f_str(&node, 1, "W");
    f_str(&node, 2, "Y");
    f_str(&node, 3, "add0");
    f_str(&node, 4, "Add");
    f_msg(&g, 1, &node);
    f_str(&g, 2, "g");
    initializer(&g, ext_loc, ext_off, ext_len);
    value_info(&g, 11, "X", 1, 4);
    value_info(&g, 12, "Y", 1, 4);
    f_msg(&m, 7, &g);
    return m;
}

static bool has_message(void)
{
    const char *e = core_error_text();
    return e && e[0];
}

static void expect_fail_mem(const void *d, size_t n, const char *base_dir, const char *what)
{
    ir_model *m = (ir_model *)1;
    core_error_clear();
    kiln_status st = onnx_model_load_memory(d, n, base_dir, &m);
    CHECK(st != KILN_OK && m == NULL && has_message(), "%s: expected an error (status %d, msg '%s')", what,
          (int)st, core_error_text());
    if (st == KILN_OK)
        ir_model_destroy(m);
}

static void write_file(const char *path, const void *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(d, 1, n, f) != n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fclose(f);
}

static kiln_status load_file_model(const char *dir, const char *name, buf *model, ir_model **m)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_file(path, model->p, model->n);
    core_error_clear();
    return onnx_model_load_file(path, m);
}

static const core_tensor *find_const(const ir_model *m, const char *name)
{
    int v = ir_graph_find_value(m->graph, name);
    if (v < 0 || !m->graph->values[v].constant)
        return NULL;
    return m->graph->values[v].constant->tensor;
}

int main(void)
{
    /* 1. The well-formed model loads. */
    buf good = make_model(NULL, NULL, NULL);
    {
        ir_model *m = NULL;
        kiln_status st = onnx_model_load_memory(good.p, good.n, NULL, &m);
        CHECK(st == KILN_OK && m, "valid model: %s", core_error_text());
        if (m) {
            CHECK(m->graph->n_nodes == 1 && m->graph->n_inputs == 1 && m->graph->n_outputs == 1,
                  "valid model: wrong counts");
            const core_tensor *w = find_const(m, "W");
            CHECK(w && w->numel == 4 && ((const float *)w->data)[3] == 4.0f, "valid model: bad initializer");
            ir_model_destroy(m);
        }
    }

    /* 2. Every strict prefix fails cleanly. */
    for (size_t n = 0; n < good.n; n++) {
        char what[64];
        snprintf(what, sizeof what, "prefix of %zu bytes", n);
        expect_fail_mem(good.p, n, NULL, what);
    }

    /* 3. Flipped bytes: any outcome but a crash; errors carry a message. */
    {
        uint8_t *c = malloc(good.n);
        int errors_without_text = 0;
        const uint8_t masks[3] = {0xff, 0x80, 0x01};
        for (size_t i = 0; i < good.n; i++)
            for (int k = 0; k < 3; k++) {
                memcpy(c, good.p, good.n);
                c[i] ^= masks[k];
                ir_model *m = NULL;
                core_error_clear();
                kiln_status st = onnx_model_load_memory(c, good.n, NULL, &m);
                if (st == KILN_OK)
                    ir_model_destroy(m);
                else if (!has_message() || m)
                    errors_without_text++;
            }
        CHECK(errors_without_text == 0, "flipped bytes: %d errors without a message", errors_without_text);
        free(c);
    }

    /* 4. Not protobuf at all. */
    {
        static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13};
        static const char text[] = "hello, this is not an onnx model\n";
        static const uint8_t zeros[16] = {0};
        expect_fail_mem(png, sizeof png, NULL, "PNG header");
        expect_fail_mem(text, sizeof text - 1, NULL, "text");
        expect_fail_mem(zeros, sizeof zeros, NULL, "zeros");
        expect_fail_mem(good.p, 0, NULL, "empty buffer");
        core_error_clear();
        onnx_model_load_memory(text, sizeof text - 1, NULL, &(ir_model *){NULL});
        CHECK(strstr(core_error_text(), "not an ONNX model") != NULL, "text: message '%s'", core_error_text());
    }

    /* 5. Tensor decoding: prefixes of a TensorProto. */
    {
        buf t = {0};
        float w[4] = {1, 2, 3, 4};
        f_varint(&t, 1, 2);
        f_varint(&t, 1, 2);
        f_varint(&t, 2, 1);
        f_str(&t, 8, "T");
        f_bytes(&t, 9, w, sizeof w);
        core_tensor *ct = NULL;
        CHECK(onnx_tensor_decode(t.p, t.n, &ct) == KILN_OK && ct && ct->numel == 4, "tensor decode: %s",
              core_error_text());
        core_tensor_destroy(ct);
        int bad = 0;
        for (size_t n = 0; n < t.n; n++) {
            ct = NULL;
            core_error_clear();
            kiln_status st = onnx_tensor_decode(t.p, n, &ct);
            if (st == KILN_OK)
                core_tensor_destroy(ct);
            if (st == KILN_OK || !has_message())
                bad++;
        }
        CHECK(bad == 0, "tensor prefixes: %d accepted or without a message", bad);
        free(t.p);
    }

    /* 5b. Malformed tensors: each must fail with a message. */
    {
        struct {
            const char *what;
            int64_t dims[3];
            int ndim;
            int dtype;
            int raw_len;     /* -1: no raw_data */
            int wrong_wt;    /* data_type sent as a length-delimited field */
        } cases[] = {
            {"negative dim", {-2, 3, 0}, 2, 1, 24, 0},
            {"dims product overflow", {1LL << 40, 1LL << 40, 1LL << 40}, 3, 1, 4, 0},
            {"raw_data size mismatch", {2, 3, 0}, 2, 1, 20, 0},
            {"unknown dtype", {2, 0, 0}, 1, 99, 8, 0},
            {"undefined dtype", {2, 0, 0}, 1, 0, 8, 0},
            {"no data", {2, 0, 0}, 1, 1, -1, 0},
            {"wrong wire type", {2, 0, 0}, 1, 1, 8, 1},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            buf t = {0};
            uint8_t raw[64] = {0};
            for (int d = 0; d < cases[i].ndim; d++)
                f_varint(&t, 1, (uint64_t)cases[i].dims[d]);
            if (cases[i].wrong_wt)
                f_bytes(&t, 2, "\x01", 1);
            else
                f_varint(&t, 2, (uint64_t)cases[i].dtype);
            f_str(&t, 8, cases[i].what);
            if (cases[i].raw_len >= 0)
                f_bytes(&t, 9, raw, (size_t)cases[i].raw_len);
            core_tensor *ct = NULL;
            core_error_clear();
            kiln_status st = onnx_tensor_decode(t.p, t.n, &ct);
            CHECK(st == KILN_ERR_PARSE && !ct && has_message(), "tensor, %s: status %d '%s'", cases[i].what,
                  (int)st, core_error_text());
            if (getenv("VERBOSE"))
                printf("  %s -> %s\n", cases[i].what, core_error_text());
            core_tensor_destroy(ct);
            free(t.p);
        }
    }

    /* 5c. A model-local function that calls itself is rejected, not expanded forever. */
    {
        buf m = {0}, g = {0}, node = {0}, fn = {0}, fnode = {0}, op = {0}, op2 = {0};
        f_varint(&m, 1, 8);
        f_str(&op, 1, "");
        f_varint(&op, 2, 17);
        f_msg(&m, 8, &op);
        f_str(&op2, 1, "local");
        f_varint(&op2, 2, 1);
        f_msg(&m, 8, &op2);
        f_str(&fn, 1, "R");
        f_str(&fn, 10, "local");
        f_str(&fn, 4, "x");
        f_str(&fn, 5, "y");
        f_str(&fnode, 1, "x");
        f_str(&fnode, 2, "y");
        f_str(&fnode, 4, "R");
        f_str(&fnode, 7, "local");
        f_msg(&fn, 7, &fnode);
        f_msg(&m, 25, &fn);
        f_str(&node, 1, "X");
        f_str(&node, 2, "Y");
        f_str(&node, 4, "R");
        f_str(&node, 7, "local");
        f_msg(&g, 1, &node);
        value_info(&g, 11, "X", 1, 4);
        value_info(&g, 12, "Y", 1, 4);
        f_msg(&m, 7, &g);
        expect_fail_mem(m.p, m.n, NULL, "recursive function");
        if (getenv("VERBOSE"))
            printf("  recursive function -> %s\n", core_error_text());
        free(m.p);
    }

    /* 6. External data. */
    char tmpl[] = "/tmp/kiln_onnx_bad_XXXXXX";
    char *dir = mkdtemp(tmpl);
    CHECK(dir != NULL, "mkdtemp failed");
    if (dir) {
        char path[512], sub[512], outside[512];
        float w[4] = {5, 6, 7, 8};
        uint8_t big[32];
        memset(big, 0, sizeof big);
        memcpy(big + 16, w, sizeof w);
        snprintf(path, sizeof path, "%s/w.bin", dir);
        write_file(path, big, sizeof big);
        snprintf(sub, sizeof sub, "%s/sub", dir);
        mkdir(sub, 0700);
        snprintf(outside, sizeof outside, "%s/outside.bin", dir);
        write_file(outside, w, sizeof w);

        ir_model *m = NULL;
        buf mb = make_model("w.bin", "16", "16");
        kiln_status st = load_file_model(dir, "ok.onnx", &mb, &m);
        CHECK(st == KILN_OK, "external data: %s", core_error_text());
        if (!st) {
            const core_tensor *t = find_const(m, "W");
            CHECK(t && ((const float *)t->data)[0] == 5.0f && ((const float *)t->data)[3] == 8.0f,
                  "external data: wrong values");
            CHECK(t && !t->owns_data, "external data: aligned data should be borrowed");
            ir_model_destroy(m);
        }
        free(mb.p);

        /* from memory: needs base_dir */
        mb = make_model("w.bin", "16", "16");
        expect_fail_mem(mb.p, mb.n, NULL, "external data without base_dir");
        m = NULL;
        st = onnx_model_load_memory(mb.p, mb.n, dir, &m);
        CHECK(st == KILN_OK, "external data from memory with base_dir: %s", core_error_text());
        ir_model_destroy(m);
        free(mb.p);

        struct {
            const char *loc, *off, *len, *what;
        } bad[] = {
            {"../w.bin", "16", "16", "'..' path"},
            {"a/../../w.bin", "16", "16", "nested '..'"},
            {path, "16", "16", "absolute path"},
            {"missing.bin", NULL, NULL, "missing file"},
            {"w.bin", "24", "16", "range past the end"},
            {"w.bin", "99999999999999999999999", "16", "offset overflow"},
            {"w.bin", "-1", "16", "negative offset"},
            {"w.bin", "0", "12", "length mismatch"},
            {"w.bin", NULL, NULL, "implicit length mismatch"},
            {"", NULL, NULL, "empty location"},
            {"sub", NULL, NULL, "a directory"},
            {"link.bin", NULL, NULL, "symlink outside"},
        };
        /* a symlink in sub/ pointing outside the model directory (the model lives in sub/) */
        char link[600];
        snprintf(link, sizeof link, "%s/link.bin", sub);
        if (symlink(outside, link) != 0)
            perror("symlink");
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            bool in_sub = !strcmp(bad[i].loc, "link.bin");
            mb = make_model(bad[i].loc, bad[i].off, bad[i].len);
            m = NULL;
            st = load_file_model(in_sub ? sub : dir, "bad.onnx", &mb, &m);
            CHECK(st != KILN_OK && !m && has_message(), "external data, %s: expected an error", bad[i].what);
            if (st == KILN_OK)
                ir_model_destroy(m);
            else if (getenv("VERBOSE"))
                printf("  %s -> %s\n", bad[i].what, core_error_text());
            free(mb.p);
        }
        /* a symlink that stays inside the directory is fine */
        char link2[600];
        snprintf(link2, sizeof link2, "%s/inside.bin", dir);
        if (symlink("w.bin", link2) != 0)
            perror("symlink");
        mb = make_model("inside.bin", "16", "16");
        m = NULL;
        st = load_file_model(dir, "ok2.onnx", &mb, &m);
        CHECK(st == KILN_OK, "symlink inside the directory: %s", core_error_text());
        ir_model_destroy(m);
        free(mb.p);

        /* empty model file */
        write_file(path, "", 0);
        m = NULL;
        snprintf(path, sizeof path, "%s/empty.onnx", dir);
        write_file(path, "", 0);
        core_error_clear();
        st = onnx_model_load_file(path, &m);
        CHECK(st != KILN_OK && strstr(core_error_text(), "not an ONNX model"), "empty file: '%s'",
              core_error_text());
        /* missing model file */
        snprintf(path, sizeof path, "%s/nope.onnx", dir);
        core_error_clear();
        st = onnx_model_load_file(path, &m);
        CHECK(st == KILN_ERR_IO && has_message(), "missing file: '%s'", core_error_text());

        /* clean up */
        const char *files[] = {"w.bin", "outside.bin", "ok.onnx", "ok2.onnx", "bad.onnx", "empty.onnx",
                               "inside.bin", "sub/link.bin", "sub/bad.onnx"};
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
            snprintf(path, sizeof path, "%s/%s", dir, files[i]);
            unlink(path);
        }
        rmdir(sub);
        rmdir(dir);
    }
    free(good.p);
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
