/* test_weight_memory.c — weights borrowed from the mmap'd model may have their pages handed
 * back to the OS once the CPU weight cache holds a packed copy: every later reader (another
 * node, another ISA's packing, several contexts on several threads, the test itself) must
 * still see the file's values; only file-backed data is ever dropped (never anonymous
 * memory: a model loaded from memory, copied tensors). */
#include "core/core.h"
#include "cpu/cpu.h"
#include "kiln.h"
#include "onnx/onnx.h"
#include "runtime/api_internal.h"

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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


/* ValueInfoProto: float tensor of the given shape. */
static void value_info(buf *g, int field, const char *name, int ndim, const int64_t *dims)
{
    buf vi = {0}, ty = {0}, tt = {0}, sh = {0};
    for (int i = 0; i < ndim; i++) {
        buf d = {0};
        f_varint(&d, 1, (uint64_t)dims[i]);
        f_msg(&sh, 1, &d);
    }
    f_varint(&tt, 1, 1);
    f_msg(&tt, 2, &sh);
    f_msg(&ty, 1, &tt);
    f_str(&vi, 1, name);
    f_msg(&vi, 2, &ty);
    f_msg(g, field, &vi);
}

/* TensorProto, float, raw_data. */
static void tensor_proto(buf *t, const char *name, int ndim, const int64_t *dims, const float *v)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        f_varint(t, 1, (uint64_t)dims[i]);
        n *= dims[i];
    }
    f_varint(t, 2, 1);
    if (name)
        f_str(t, 8, name);
    f_bytes(t, 9, v, (size_t)n * sizeof(float));
}

static void node(buf *g, const char *op, const char *const *in, int n_in, const char *out, const char *domain)
{
    buf nd = {0};
    for (int i = 0; i < n_in; i++)
        f_str(&nd, 1, in[i]);
    f_str(&nd, 2, out);
    f_str(&nd, 4, op);
    if (domain)
        f_str(&nd, 7, domain);
    f_msg(g, 1, &nd);
}

static void opset(buf *m, int field, const char *domain, int version)
{
    buf o = {0};
    f_str(&o, 1, domain);
    f_varint(&o, 2, (uint64_t)version);
    f_msg(m, field, &o);
}

/* Position of the first occurrence of `pat` in b, or -1. */
static long find_bytes(const buf *b, const void *pat, size_t n)
{
    for (size_t i = 0; i + n <= b->n; i++)
        if (!memcmp(b->p + i, pat, n))
            return (long)i;
    return -1;
}

/* ---- the matmul model ---- */
enum { MM_M = 5, MM_K = 64, MM_N = 16384 }; /* W: 4 MB, 1024 pages (62 hold cache samples) */

static float w_vals[MM_K * MM_N], x_vals[MM_M * MM_K], bias_val = 0.25f;

/* Y = MatMul(X, W); Z = Add(W, b) (a second, non-packing reader of W, b a graph input).
 * The model's producer_name is padding, chosen so that W's raw bytes sit at a file offset
 * that is a multiple of 4 (borrowed) or not (copied) as `aligned` asks. */
static buf make_matmul_model(bool aligned, bool with_add)
{
    for (int pad = 0; pad < 4; pad++) {
        buf m = {0}, g = {0}, t = {0};
        char padding[8] = "pppp";
        padding[pad] = 0;
        f_varint(&m, 1, 8);
        f_str(&m, 2, padding);
        opset(&m, 8, "", 17);
        int64_t wd[2] = {MM_K, MM_N}, xd[2] = {MM_M, MM_K}, yd[2] = {MM_M, MM_N}, bd[1] = {1};
        const char *mm_in[2] = {"X", "W"}, *add_in[2] = {"W", "b"};
        node(&g, "MatMul", mm_in, 2, "Y", NULL);
        if (with_add)
            node(&g, "Add", add_in, 2, "Z", NULL);
        f_str(&g, 2, "g");
        tensor_proto(&t, "W", 2, wd, w_vals);
        f_msg(&g, 5, &t);
        value_info(&g, 11, "X", 2, xd);
        if (with_add)
            value_info(&g, 11, "b", 1, bd);
        value_info(&g, 12, "Y", 2, yd);
        if (with_add)
            value_info(&g, 12, "Z", 2, wd);
        f_msg(&m, 7, &g);
        long off = find_bytes(&m, w_vals, 64);
        if (off >= 0 && ((off % 4) == 0) == aligned)
            return m;
        free(m.p);
    }
    fprintf(stderr, "could not place W as asked\n");
    exit(2);
}

static void write_file(const char *path, const buf *b)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b->p, 1, b->n, f) != b->n) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    fclose(f);
}

/* ---- which pages are resident (pagemap bit 63); -1 when /proc/self/pagemap is unreadable */
static int page_present(const void *p)
{
    static int fd = -2;
    if (fd == -2)
        fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    long ps = sysconf(_SC_PAGESIZE);
    uint64_t e;
    off_t off = (off_t)((uintptr_t)p / (uintptr_t)ps) * 8;
    if (pread(fd, &e, 8, off) != 8)
        return -1;
    return (int)(e >> 63);
}

/* Counts of resident / dropped whole pages of [p, p + n). */
static bool count_pages(const void *p, size_t n, int *present, int *absent)
{
    long ps = sysconf(_SC_PAGESIZE);
    uintptr_t b = ((uintptr_t)p + (uintptr_t)ps - 1) & ~((uintptr_t)ps - 1);
    uintptr_t e = ((uintptr_t)p + n) & ~((uintptr_t)ps - 1);
    *present = *absent = 0;
    for (uintptr_t q = b; q < e; q += (uintptr_t)ps) {
        int r = page_present((const void *)q);
        if (r < 0)
            return false;
        if (r)
            (*present)++;
        else
            (*absent)++;
    }
    return true;
}

static double checksum(const float *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i] * (double)((i % 7) + 1);
    return s;
}

/* ---- 1: core_tensor_set_mapped / core_mapped_release on a file and on anonymous memory -- */
static void test_core_release(void)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/kiln_test_weight_memory_%d.bin", (int)getpid());
    buf b = {0};
    put(&b, w_vals, sizeof w_vals);
    write_file(path, &b);
    free(b.p);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0, "open %s", path);
    if (fd < 0)
        return;
    void *addr = mmap(NULL, sizeof w_vals, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    close(fd);
    CHECK(addr != MAP_FAILED, "mmap");
    if (addr == MAP_FAILED)
        return;
    madvise(addr, sizeof w_vals, MADV_NOHUGEPAGE); /* as the loader maps: see map_small_pages */
    int64_t dims[2] = {MM_K, MM_N};
    core_tensor *t = core_tensor_wrap(KILN_DTYPE_FLOAT, 2, dims, addr);
    CHECK(t && core_tensor_set_mapped(t) && t->mapped, "set_mapped on a borrowing tensor");
    double want = checksum(w_vals, MM_K * MM_N);
    CHECK(checksum(addr, MM_K * MM_N) == want, "read through the mapping");
    /* keep the pages of two addresses: element 0 (page 0) and element 20000 (page 19 with
     * 4 KB pages) */
    const float *f = addr;
    const void *keep[2] = {f, f + 20000};
    size_t dropped = core_mapped_release(addr, sizeof w_vals, keep, 2);
    long ps = sysconf(_SC_PAGESIZE);
    CHECK(dropped == sizeof w_vals - 2 * (size_t)ps, "dropped %zu bytes", dropped);
    int pr, ab;
    if (count_pages(addr, sizeof w_vals, &pr, &ab)) {
        CHECK(pr == 2 && ab == (int)(sizeof w_vals / (size_t)ps) - 2, "resident %d, dropped %d", pr, ab);
        CHECK(page_present(f + 20000) == 1 && page_present(f + 1024) == 0, "kept pages");
    } else {
        printf("note: /proc/self/pagemap unreadable, residency not checked\n");
    }
    CHECK(checksum(addr, MM_K * MM_N) == want, "values read back from the file after the drop");
    /* a range that is not the start of mapped data, or beyond it: nothing happens */
    CHECK(core_mapped_release(f + 1024, 4096, NULL, 0) == 0, "interior pointer is not mapped data");
    CHECK(core_mapped_release(addr, sizeof w_vals + 4096, NULL, 0) == 0, "range past the tensor");
    core_tensor_destroy(t);
    CHECK(core_mapped_release(addr, sizeof w_vals, NULL, 0) == 0, "unregistered by destroy");
    munmap(addr, sizeof w_vals);
    unlink(path);

    /* anonymous memory: never marked by the loader; an owned tensor cannot be marked */
    core_tensor *o = core_tensor_create(KILN_DTYPE_FLOAT, 2, dims);
    CHECK(o && !core_tensor_set_mapped(o) && !o->mapped, "owned tensors are never mapped");
    if (o) {
        memcpy(o->data, w_vals, sizeof w_vals);
        CHECK(core_mapped_release(o->data, o->nbytes, NULL, 0) == 0, "owned data not dropped");
        CHECK(checksum(o->data, MM_K * MM_N) == want, "owned data intact");
    }
    core_tensor_destroy(o);
}

/* ---- 2: the loader marks borrowed weights of a file, not copies nor memory loads ---------- */
static const core_tensor *find_init(const ir_model *m, const char *name)
{
    for (int i = 0; i < m->graph->n_values; i++) {
        const ir_value *v = &m->graph->values[i];
        if (v->constant && v->constant->tensor && v->name && !strcmp(v->name, name))
            return v->constant->tensor;
    }
    return NULL;
}

static void test_loader_marks(void)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/kiln_test_weight_memory_%d.onnx", (int)getpid());
    for (int al = 0; al < 2; al++) {
        buf mb = make_matmul_model(al == 1, false);
        write_file(path, &mb);
        ir_model *m = NULL;
        CHECK(!onnx_model_load_file(path, &m), "load file: %s", core_error_text());
        const core_tensor *w = m ? find_init(m, "W") : NULL;
        CHECK(w && w->mapped == (al == 1) && w->owns_data == (al == 0),
              "aligned=%d: mapped %d owns %d", al, w ? w->mapped : -1, w ? w->owns_data : -1);
        CHECK(w && checksum(w->data, MM_K * MM_N) == checksum(w_vals, MM_K * MM_N), "W values");
        ir_model_destroy(m);
        m = NULL;
        CHECK(!onnx_model_load_memory(mb.p, mb.n, NULL, &m), "load memory: %s", core_error_text());
        w = m ? find_init(m, "W") : NULL;
        CHECK(w && !w->mapped, "a model loaded from memory has no mapped weights");
        ir_model_destroy(m);
        free(mb.p);
    }
    unlink(path);
}

/* ---- 3: end to end: MatMul packs W and drops its pages; every reader still sees W ------- */
static float y_ref[MM_M * MM_N];

static void reference_matmul(void)
{
    for (int i = 0; i < MM_M; i++)
        for (int j = 0; j < MM_N; j++) {
            double s = 0;
            for (int k = 0; k < MM_K; k++)
                s += (double)x_vals[i * MM_K + k] * w_vals[k * MM_N + j];
            y_ref[i * MM_N + j] = (float)s;
        }
}

/* Runs ctx once; checks Y against the naive product and Z == W + b exactly. */
static bool run_check(kiln_context *c, bool with_add, const char *what)
{
    int64_t xd[2] = {MM_M, MM_K}, bd[1] = {1};
    bool ok = !kiln_context_set_input(c, "X", KILN_DTYPE_FLOAT, 2, xd, x_vals, sizeof x_vals);
    if (ok && with_add)
        ok = !kiln_context_set_input(c, "b", KILN_DTYPE_FLOAT, 1, bd, &bias_val, sizeof bias_val);
    ok = ok && !kiln_context_run(c);
    kiln_tensor_view v;
    if (ok && !kiln_context_get_output(c, "Y", &v) && v.nbytes == sizeof y_ref) {
        const float *y = v.data;
        for (int i = 0; i < MM_M * MM_N && ok; i++)
            if (fabsf(y[i] - y_ref[i]) > 1e-4f * (1.0f + fabsf(y_ref[i])))
                ok = false;
    } else {
        ok = false;
    }
    if (ok && with_add) {
        if (!kiln_context_get_output(c, "Z", &v) && v.nbytes == sizeof w_vals) {
            const float *z = v.data;
            for (int i = 0; i < MM_K * MM_N && ok; i++)
                if (z[i] != w_vals[i] + bias_val)
                    ok = false;
        } else {
            ok = false;
        }
    }
    if (!ok)
        printf("  %s: %s\n", what, kiln_last_error());
    return ok;
}

typedef struct th_arg {
    kiln_model *km;
    bool with_add;
    int failures;
} th_arg;

static void *th_worker(void *arg)
{
    th_arg *a = arg;
    kiln_context *c = NULL;
    if (kiln_context_create(a->km, &c)) {
        a->failures++;
        return NULL;
    }
    for (int r = 0; r < 4; r++)
        if (!run_check(c, a->with_add, "thread run"))
            a->failures++;
    kiln_context_destroy(c);
    return NULL;
}

static void test_end_to_end(const char *isa)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/kiln_test_weight_memory_%d.onnx", (int)getpid());
    cpu_ukernels_force_isa(isa);
    cpu_cache_clear();
    for (int with_add = 0; with_add < 2; with_add++) {
        buf mb = make_matmul_model(true, with_add);
        write_file(path, &mb);
        free(mb.p);
        ir_model *m = NULL;
        CHECK(!onnx_model_load_file(path, &m), "load: %s", core_error_text());
        if (!m)
            continue;
        const core_tensor *w = find_init(m, "W");
        const float *wd = w ? w->data : NULL;
        CHECK(w && w->mapped, "W borrowed and mapped");
        kiln_load_options opts = {2, 0};
        kiln_model *km = NULL;
        CHECK(!api_model_from_ir(m, &opts, &km), "prepare: %s", kiln_last_error());
        if (!km)
            continue;
        kiln_context *c = NULL;
        CHECK(!kiln_context_create(km, &c), "context");
        CHECK(c && run_check(c, with_add, "first run"), "%s add=%d: first run", isa, with_add);
        int pr, ab;
        if (!with_add && wd && count_pages(wd, sizeof w_vals, &pr, &ab)) {
            /* everything but the fingerprint's sample pages was handed back */
            CHECK(ab > 900 && pr <= 63, "%s: after packing %d pages resident, %d dropped", isa, pr, ab);
        }
        CHECK(c && run_check(c, with_add, "second run"), "%s add=%d: second run", isa, with_add);
        if (wd)
            CHECK(checksum(wd, MM_K * MM_N) == checksum(w_vals, MM_K * MM_N), "W read back after the drop");
        /* another tile layout packs W anew from the dropped pages */
        if (strcmp(isa, "scalar")) {
            cpu_ukernels_force_isa("scalar");
            CHECK(c && run_check(c, with_add, "other ISA"), "%s add=%d: repack under scalar", isa, with_add);
            cpu_ukernels_force_isa(isa);
        }
        kiln_context_destroy(c);
        /* several contexts on several threads, with a cold cache: concurrent packing/drops */
        cpu_cache_clear();
        th_arg args[3];
        pthread_t th[3];
        for (int i = 0; i < 3; i++) {
            args[i].km = km;
            args[i].with_add = with_add;
            args[i].failures = 0;
            pthread_create(&th[i], NULL, th_worker, &args[i]);
        }
        for (int i = 0; i < 3; i++) {
            pthread_join(th[i], NULL);
            CHECK(args[i].failures == 0, "%s add=%d: thread %d failed %d runs", isa, with_add, i, args[i].failures);
        }
        kiln_model_destroy(km);
        cpu_cache_clear();
    }
    unlink(path);
    cpu_ukernels_force_isa(NULL);
}

/* ---- 4: a model loaded from memory is anonymous: a function body decoded again at each call
 * site must read its (copied, large) constant intact both times ---------------------------- */
static void test_memory_function_constant(void)
{
    enum { CN = 6000 }; /* 24 KB: several whole pages */
    static float cv[CN];
    for (int i = 0; i < CN; i++)
        cv[i] = (float)(i % 113) - 56.5f;
    for (int pad = 0; pad < 4; pad++) {
        buf m = {0}, g = {0}, fn = {0}, body = {0}, at = {0}, t = {0};
        char padding[8] = "pppp";
        padding[pad] = 0;
        f_varint(&m, 1, 8);
        f_str(&m, 2, padding);
        opset(&m, 8, "", 17);
        opset(&m, 8, "local", 1);
        /* function local.F() -> (c): c = Constant(value = cv) */
        int64_t cd[1] = {CN};
        tensor_proto(&t, NULL, 1, cd, cv);
        f_str(&at, 1, "value");
        f_msg(&at, 5, &t);
        f_varint(&at, 20, 4);
        f_str(&body, 2, "c");
        f_str(&body, 4, "Constant");
        f_msg(&body, 5, &at);
        f_str(&fn, 1, "F");
        f_str(&fn, 5, "c");
        f_msg(&fn, 7, &body);
        opset(&fn, 9, "", 17);
        f_str(&fn, 10, "local");
        node(&g, "F", NULL, 0, "o1", "local");
        node(&g, "F", NULL, 0, "o2", "local");
        f_str(&g, 2, "g");
        value_info(&g, 12, "o1", 1, cd);
        value_info(&g, 12, "o2", 1, cd);
        f_msg(&m, 7, &g);
        f_msg(&m, 25, &fn);
        long off = find_bytes(&m, cv, 64);
        if (off < 0 || off % 4 == 0) { /* want the copied (unaligned) case */
            free(m.p);
            continue;
        }
        ir_model *im = NULL;
        CHECK(!onnx_model_load_memory(m.p, m.n, NULL, &im), "load: %s", core_error_text());
        int n_const = 0;
        for (int i = 0; im && i < im->graph->n_nodes; i++) {
            const ir_node *nd = &im->graph->nodes[i];
            for (int a = 0; a < nd->n_attrs; a++) {
                const core_tensor *ct = nd->attrs[a].t;
                if (nd->attrs[a].type != IR_ATTR_TENSOR || !ct)
                    continue;
                n_const++;
                CHECK(ct->numel == CN && !memcmp(ct->data, cv, sizeof cv),
                      "constant of call site %d intact", n_const);
            }
        }
        CHECK(n_const == 2, "two expanded constants, got %d", n_const);
        ir_model_destroy(im);
        free(m.p);
        return;
    }
    CHECK(false, "could not place the constant unaligned");
}

int main(void)
{
    for (int i = 0; i < MM_K * MM_N; i++)
        w_vals[i] = (float)(((long)i * 7919) % 2003) / 1001.0f - 1.0f;
    for (int i = 0; i < MM_M * MM_K; i++)
        x_vals[i] = (float)((i * 31) % 17) / 8.0f - 1.0f;
    reference_matmul();
    test_core_release();
    test_loader_marks();
    const char *isas[3] = {"avx512", "avx2", "scalar"};
    for (int i = 0; i < 3; i++)
        test_end_to_end(isas[i]);
    test_memory_function_constant();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
