/* test_plan.c — engines: plans built from the golden models run within their profiles and
 * agree with the ONNX path and the stored ONNX Runtime outputs; rebuilds with a timing cache
 * are byte-identical; truncated, corrupt and foreign plans are refused with the right
 * message; several threads share one engine. Prints "N passed, M failed". */
#include "kiln.h"
#include "plan/plan.h"
#include "../../tools/kiln/npy.c"
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int passed, failed;
#define CHECK(cond, ...) do { if (cond) passed++; else { failed++; printf("FAIL %s:%d: ", __FILE__, __LINE__); printf(__VA_ARGS__); printf("\n"); } } while (0)

static char tmpdir[256];
static char root[512]; /* tests/golden/models */
static char opt_dir[512]; /* tests/data/opt */

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static bool find_root(void)
{
    static const char *const prefixes[] = {"", "../", "../../", "../../../"};
    for (int i = 0; i < 4; i++) {
        snprintf(root, sizeof root, "%stests/golden/models", prefixes[i]);
        snprintf(opt_dir, sizeof opt_dir, "%stests/data/opt", prefixes[i]);
        struct stat sb;
        if (stat(root, &sb) == 0 && S_ISDIR(sb.st_mode)) return true;
    }
    return false;
}

static bool read_file(const char *path, uint8_t **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc((size_t)n + 1);
    bool ok = *data && fread(*data, 1, (size_t)n, f) == (size_t)n;
    fclose(f);
    *size = (size_t)n;
    return ok;
}

static bool write_file(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

/* ---- data sets ------------------------------------------------------------------------------ */

typedef struct dataset { int n; char names[8][128]; core_tensor *t[8]; } dataset;

static bool load_set(const char *dir, dataset *d)
{
    DIR *dp = opendir(dir);
    d->n = 0;
    if (!dp) return false;
    struct dirent *e;
    while ((e = readdir(dp)) && d->n < 8) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".npy")) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (npy_read_file(path, &d->t[d->n])) continue;
        snprintf(d->names[d->n], sizeof d->names[0], "%.*s", (int)(l - 4), e->d_name);
        d->n++;
    }
    closedir(dp);
    return d->n > 0;
}

static void free_set(dataset *d) { for (int i = 0; i < d->n; i++) core_tensor_destroy(d->t[i]); d->n = 0; }

static kiln_status bind(kiln_context *c, const dataset *in)
{
    for (int i = 0; i < in->n; i++) {
        kiln_status st = kiln_context_set_input(c, in->names[i], in->t[i]->dtype, in->t[i]->ndim, in->t[i]->dims,
                                                in->t[i]->data, in->t[i]->nbytes);
        if (st) return st;
    }
    return KILN_OK;
}

/* |a - b| <= atol + rtol |b| elementwise (float) or equal (others); false with a reason. */
static bool close_to(const kiln_tensor_view *v, const core_tensor *want, double rtol, double atol, char *why, size_t n)
{
    if (v->dtype != want->dtype || v->ndim != want->ndim) { snprintf(why, n, "dtype/rank differ"); return false; }
    for (int d = 0; d < v->ndim; d++)
        if (v->dims[d] != want->dims[d]) { snprintf(why, n, "dim %d: %lld vs %lld", d, (long long)v->dims[d], (long long)want->dims[d]); return false; }
    if (want->dtype != KILN_DTYPE_FLOAT) {
        bool eq = v->nbytes == want->nbytes && !memcmp(v->data, want->data, v->nbytes);
        if (!eq) snprintf(why, n, "values differ");
        return eq;
    }
    const float *a = v->data, *b = want->data;
    for (int64_t i = 0; i < want->numel; i++)
        if (!(fabs((double)a[i] - b[i]) <= atol + rtol * fabs((double)b[i]))) {
            snprintf(why, n, "element %lld: %g vs %g", (long long)i, a[i], b[i]);
            return false;
        }
    return true;
}

/* Run the model on `in` and compare every output with `want` (names matched). */
static bool run_compare(kiln_model *m, kiln_context *c, const dataset *in, const dataset *want, double rtol, double atol,
                        char *why, size_t n)
{
    kiln_status st = bind(c, in);
    if (!st) st = kiln_context_run(c);
    if (st) { snprintf(why, n, "%s", kiln_last_error()); return false; }
    for (int k = 0; k < want->n; k++) {
        kiln_tensor_view v;
        if (kiln_context_get_output(c, want->names[k], &v)) { snprintf(why, n, "%s", kiln_last_error()); return false; }
        if (!close_to(&v, want->t[k], rtol, atol, why, n)) return false;
    }
    (void)m;
    return true;
}

/* ---- resnet18 with a dynamic batch ---------------------------------------------------------- */

/* An input of batch b made by repeating the rows of a batch-1 input with a per-row offset. */
static core_tensor *batch_of(const core_tensor *x, int64_t b)
{
    int64_t dims[KILN_MAX_DIMS];
    memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->ndim);
    dims[0] = b;
    core_tensor *t = core_tensor_create(x->dtype, x->ndim, dims);
    size_t row = x->nbytes / (size_t)x->dims[0];
    float *o = t->data;
    for (int64_t i = 0; i < b; i++) {
        memcpy((char *)t->data + (size_t)i * row, x->data, row);
        for (size_t k = 0; k < row / 4; k++) o[(size_t)i * (row / 4) + k] += 0.01f * (float)i;
    }
    return t;
}

typedef struct thread_job {
    const kiln_model *m;
    const core_tensor *x;
    const core_tensor *want; /* logits for x */
    int iters;
    int ok;
    char why[256];
} thread_job;

static void *thread_main(void *arg)
{
    thread_job *j = arg;
    kiln_context *c = NULL;
    j->ok = 0;
    if (kiln_context_create(j->m, &c)) { snprintf(j->why, sizeof j->why, "%s", kiln_last_error()); return NULL; }
    for (int it = 0; it < j->iters; it++) {
        kiln_tensor_view v;
        if (kiln_context_set_input(c, "input", KILN_DTYPE_FLOAT, j->x->ndim, j->x->dims, j->x->data, j->x->nbytes) ||
            kiln_context_run(c) || kiln_context_get_output(c, "logits", &v)) {
            snprintf(j->why, sizeof j->why, "%s", kiln_last_error());
            kiln_context_destroy(c);
            return NULL;
        }
        if (v.nbytes != j->want->nbytes || memcmp(v.data, j->want->data, v.nbytes)) {
            snprintf(j->why, sizeof j->why, "iteration %d differs from the serial run", it);
            kiln_context_destroy(c);
            return NULL;
        }
    }
    kiln_context_destroy(c);
    j->ok = 1;
    return NULL;
}

static void test_resnet18(void)
{
    char onnx[1024], plan[512], plan2[512], plan3[512], cache[512];
    snprintf(onnx, sizeof onnx, "%s/resnet18_w16/model.onnx", root);
    snprintf(plan, sizeof plan, "%s/r18.kplan", tmpdir);
    snprintf(plan2, sizeof plan2, "%s/r18_2.kplan", tmpdir);
    snprintf(plan3, sizeof plan3, "%s/r18_3.kplan", tmpdir);
    snprintf(cache, sizeof cache, "%s/timing.cache", tmpdir);
    kiln_build_options o = kiln_build_options_default();
    o.num_threads = 2;
    o.min_shapes = "input:1x3x64x64";
    o.opt_shapes = "input:4x3x64x64";
    o.max_shapes = "input:16x3x64x64";
    o.timing_cache = cache;
    o.verbose = -1;
    double t0 = now_ms();
    kiln_status st = kiln_plan_build(onnx, &o, plan);
    double t_build = now_ms() - t0;
    CHECK(st == KILN_OK, "build resnet18_w16: %s", kiln_last_error());
    if (st) return;
    t0 = now_ms();
    st = kiln_plan_build(onnx, &o, plan2);
    double t_rebuild = now_ms() - t0;
    CHECK(st == KILN_OK, "rebuild: %s", kiln_last_error());
    CHECK(kiln_plan_build(onnx, &o, plan3) == KILN_OK, "third build: %s", kiln_last_error());
    uint8_t *a = NULL, *b = NULL, *c3 = NULL;
    size_t na = 0, nb = 0, nc = 0;
    CHECK(read_file(plan, &a, &na) && read_file(plan2, &b, &nb) && read_file(plan3, &c3, &nc), "read plans");
    CHECK(na == nb && nb == nc && !memcmp(a, b, na) && !memcmp(b, c3, nb),
          "builds with the same timing cache differ (%zu, %zu, %zu bytes)", na, nb, nc);
    printf("resnet18_w16: build %.0f ms (timing), rebuild %.0f ms (cached), plan %zu bytes\n", t_build, t_rebuild, na);
    free(a);
    free(b);
    free(c3);
    char why[512];
    CHECK(kiln_plan_check(plan, why, sizeof why) == KILN_OK, "kiln_plan_check: %s", why);

    /* load time: model + context, median of 7 */
    double times[7];
    for (int i = 0; i < 7; i++) {
        kiln_model *m = NULL;
        kiln_context *c = NULL;
        t0 = now_ms();
        st = kiln_model_load_file(plan, NULL, &m);
        if (!st) st = kiln_context_create(m, &c);
        times[i] = now_ms() - t0;
        kiln_context_destroy(c);
        kiln_model_destroy(m);
    }
    for (int i = 1; i < 7; i++)
        for (int j = i; j > 0 && times[j] < times[j - 1]; j--) { double t = times[j]; times[j] = times[j - 1]; times[j - 1] = t; }
    printf("resnet18_w16: plan load + context %.2f ms (median of 7)\n", times[3]);
    CHECK(times[3] < 200, "plan load took %.1f ms", times[3]);

    kiln_load_options lo = {2, 0};
    kiln_model *pm = NULL, *om = NULL;
    CHECK(kiln_model_load_file(plan, &lo, &pm) == KILN_OK, "load plan: %s", kiln_last_error());
    CHECK(kiln_model_load_file(onnx, &lo, &om) == KILN_OK, "load onnx: %s", kiln_last_error());
    if (!pm || !om) { kiln_model_destroy(pm); kiln_model_destroy(om); return; }
    CHECK(kiln_model_is_plan(pm) && !kiln_model_is_plan(om), "kiln_model_is_plan");
    int ndim = 0;
    int64_t mn[KILN_MAX_DIMS], op[KILN_MAX_DIMS], mx[KILN_MAX_DIMS];
    CHECK(kiln_model_profile_count(pm) == 1 && kiln_model_profile_shapes(pm, 0, 0, &ndim, mn, op, mx) == KILN_OK && ndim == 4 &&
          mn[0] == 1 && op[0] == 4 && mx[0] == 16 && mx[2] == 64, "profile shapes");
    kiln_context *pc = NULL, *oc = NULL;
    CHECK(kiln_context_create(pm, &pc) == KILN_OK && kiln_context_create(om, &oc) == KILN_OK, "contexts: %s", kiln_last_error());
    if (!pc || !oc) goto out;

    /* the stored ORT outputs (batch 1 and 2) */
    for (int d = 0; d < 2; d++) {
        char di[1024], dout[1024];
        snprintf(di, sizeof di, "%s/resnet18_w16/data_%d/inputs", root, d);
        snprintf(dout, sizeof dout, "%s/resnet18_w16/data_%d/outputs", root, d);
        dataset in, want;
        if (!load_set(di, &in) || !load_set(dout, &want)) { CHECK(0, "read %s", di); free_set(&in); continue; }
        CHECK(run_compare(pm, pc, &in, &want, 1e-3, 1e-5, why, sizeof why), "plan vs ORT, data_%d: %s", d, why);
        free_set(&in);
        free_set(&want);
    }
    /* batches 1, 4, 16 (and back to 2) against the ONNX path, on one context */
    char x0[1024];
    snprintf(x0, sizeof x0, "%s/resnet18_w16/data_0/inputs/input.npy", root);
    core_tensor *x1 = NULL;
    CHECK(npy_read_file(x0, &x1) == KILN_OK, "read %s", x0);
    size_t max_arena = 0, abs_[6] = {0};
    static const int64_t batches[] = {1, 4, 16, 2, 16, 1};
    core_tensor *ref16 = NULL, *x16 = NULL, *ref4 = NULL, *x4 = NULL;
    for (int i = 0; x1 && i < 6; i++) {
        core_tensor *x = batch_of(x1, batches[i]);
        dataset in = {1, {"input"}, {x}};
        kiln_tensor_view v;
        st = bind(oc, &in);
        if (!st) st = kiln_context_run(oc);
        if (!st) st = kiln_context_get_output(oc, "logits", &v);
        CHECK(st == KILN_OK, "onnx batch %lld: %s", (long long)batches[i], kiln_last_error());
        if (st) { core_tensor_destroy(x); continue; }
        core_tensor *ref = core_tensor_create(KILN_DTYPE_FLOAT, v.ndim, v.dims);
        memcpy(ref->data, v.data, v.nbytes);
        dataset want = {1, {"logits"}, {ref}};
        CHECK(run_compare(pm, pc, &in, &want, 1e-4, 1e-5, why, sizeof why), "plan vs onnx path, batch %lld: %s",
              (long long)batches[i], why);
        /* every shape in the profile is planned inside the arena reserved at creation */
        size_t ab = kiln_context_activation_bytes(pc);
        CHECK(ab > 0, "batch %lld: no planned activations", (long long)batches[i]);
        abs_[i] = ab;
        if (ab > max_arena) max_arena = ab;
        if (batches[i] == 16 && !ref16) { ref16 = ref; x16 = x; }
        else if (batches[i] == 4 && !ref4) { ref4 = ref; x4 = x; }
        else { core_tensor_destroy(ref); core_tensor_destroy(x); }
    }
    CHECK(max_arena > 0, "the plan's context has a planned arena");
    for (int i = 0; i < 6; i++)
        CHECK(abs_[i] <= abs_[2], "batch %lld uses %zu arena bytes, more than batch 16's %zu", (long long)batches[i], abs_[i], abs_[2]);
    printf("resnet18_w16: largest arena in use %zu bytes\n", max_arena);

    /* batch 17 is outside the profile */
    if (x1) {
        core_tensor *x = batch_of(x1, 17);
        st = kiln_context_set_input(pc, "input", KILN_DTYPE_FLOAT, x->ndim, x->dims, x->data, x->nbytes);
        const char *msg = kiln_last_error();
        CHECK(st == KILN_ERR_SHAPE && strstr(msg, "'input'") && strstr(msg, "dim 0") && strstr(msg, "[1, 16]"),
              "batch 17: status %d, '%s'", st, msg);
        core_tensor_destroy(x);
        /* the context still works after the refusal */
        if (x16) {
            dataset in = {1, {"input"}, {x16}}, want = {1, {"logits"}, {ref16}};
            CHECK(run_compare(pm, pc, &in, &want, 1e-4, 1e-5, why, sizeof why), "after refusal: %s", why);
        }
    }

    /* several contexts on one engine from several threads: each must equal its serial run */
    if (x16 && x4) {
        core_tensor *x2 = batch_of(x1, 2);
        kiln_tensor_view v;
        dataset in2 = {1, {"input"}, {x2}};
        core_tensor *ref2 = NULL;
        if (!bind(pc, &in2) && !kiln_context_run(pc) && !kiln_context_get_output(pc, "logits", &v)) {
            ref2 = core_tensor_create(KILN_DTYPE_FLOAT, v.ndim, v.dims);
            memcpy(ref2->data, v.data, v.nbytes);
        }
        /* serial references from the plan itself (bitwise comparison across threads) */
        core_tensor *xs[4] = {x16, x4, x2, x1}, *refs[4] = {NULL, NULL, ref2, NULL};
        for (int k = 0; k < 4; k++) {
            if (refs[k]) continue;
            dataset in = {1, {"input"}, {xs[k]}};
            if (!bind(pc, &in) && !kiln_context_run(pc) && !kiln_context_get_output(pc, "logits", &v)) {
                refs[k] = core_tensor_create(KILN_DTYPE_FLOAT, v.ndim, v.dims);
                memcpy(refs[k]->data, v.data, v.nbytes);
            }
        }
        kiln_model *tm = NULL;
        kiln_load_options one = {1, 0}; /* one thread per context: the threads are the test's */
        CHECK(kiln_model_load_file(plan, &one, &tm) == KILN_OK, "load for threads: %s", kiln_last_error());
        /* references with one thread per context */
        for (int k = 0; tm && k < 4; k++) {
            kiln_context *c1 = NULL;
            dataset in = {1, {"input"}, {xs[k]}};
            if (!kiln_context_create(tm, &c1) && !bind(c1, &in) && !kiln_context_run(c1) &&
                !kiln_context_get_output(c1, "logits", &v)) {
                core_tensor_destroy(refs[k]);
                refs[k] = core_tensor_create(KILN_DTYPE_FLOAT, v.ndim, v.dims);
                memcpy(refs[k]->data, v.data, v.nbytes);
            }
            kiln_context_destroy(c1);
        }
        enum { NT = 4 };
        pthread_t th[NT];
        thread_job jobs[NT];
        for (int k = 0; tm && k < NT; k++) {
            jobs[k] = (thread_job){tm, xs[k], refs[k], 3, 0, ""};
            pthread_create(&th[k], NULL, thread_main, &jobs[k]);
        }
        for (int k = 0; tm && k < NT; k++) {
            pthread_join(th[k], NULL);
            CHECK(jobs[k].ok, "thread %d: %s", k, jobs[k].why);
        }
        kiln_model_destroy(tm);
        for (int k = 0; k < 4; k++)
            if (refs[k] != ref16 && refs[k] != ref4) core_tensor_destroy(refs[k]);
        core_tensor_destroy(x2);
    }
    core_tensor_destroy(ref16);
    core_tensor_destroy(x16);
    core_tensor_destroy(ref4);
    core_tensor_destroy(x4);
    core_tensor_destroy(x1);

    /* the same plan from memory */
    {
        uint8_t *buf = NULL;
        size_t n = 0;
        kiln_model *mm = NULL;
        kiln_context *mc = NULL;
        CHECK(read_file(plan, &buf, &n) && kiln_model_load_memory(buf, n, NULL, NULL, &mm) == KILN_OK, "load_memory: %s",
              kiln_last_error());
        free(buf); /* the model keeps its own copy */
        char di[1024], dout[1024];
        snprintf(di, sizeof di, "%s/resnet18_w16/data_1/inputs", root);
        snprintf(dout, sizeof dout, "%s/resnet18_w16/data_1/outputs", root);
        dataset in, want;
        if (mm && !kiln_context_create(mm, &mc) && load_set(di, &in) && load_set(dout, &want)) {
            CHECK(run_compare(mm, mc, &in, &want, 1e-3, 1e-5, why, sizeof why), "plan from memory vs ORT: %s", why);
            free_set(&in);
            free_set(&want);
        } else CHECK(0, "plan from memory: %s", kiln_last_error());
        kiln_context_destroy(mc);
        kiln_model_destroy(mm);
    }
out:
    kiln_context_destroy(pc);
    kiln_context_destroy(oc);
    kiln_model_destroy(pm);
    kiln_model_destroy(om);
}

/* ---- every golden model through a plan ------------------------------------------------------- */

static void test_golden(void)
{
    DIR *dp = opendir(root);
    if (!dp) { CHECK(0, "no %s", root); return; }
    struct dirent *e;
    while ((e = readdir(dp))) {
        if (e->d_name[0] == '.' || !strcmp(e->d_name, "resnet18_w16")) continue;
        char onnx[1024], plan[1024];
        snprintf(onnx, sizeof onnx, "%s/%s/model.onnx", root, e->d_name);
        snprintf(plan, sizeof plan, "%s/%s.kplan", tmpdir, e->d_name);
        kiln_build_options o = kiln_build_options_default();
        o.num_threads = 2;
        o.verbose = -1;
        if (!strcmp(e->d_name, "bert_tiny")) {
            o.min_shapes = "input_ids:1x1,attention_mask:1x1";
            o.opt_shapes = "input_ids:2x16,attention_mask:2x16";
            o.max_shapes = "input_ids:4x32,attention_mask:4x32";
        }
        kiln_status st = kiln_plan_build(onnx, &o, plan);
        CHECK(st == KILN_OK, "build %s: %s", e->d_name, kiln_last_error());
        if (st) continue;
        kiln_model *m = NULL;
        kiln_context *c = NULL;
        st = kiln_model_load_file(plan, NULL, &m);
        if (!st) st = kiln_context_create(m, &c);
        CHECK(st == KILN_OK, "load %s: %s", plan, kiln_last_error());
        for (int d = 0; !st && d < 8; d++) {
            char di[1024], dout[1024], why[512];
            snprintf(di, sizeof di, "%s/%s/data_%d/inputs", root, e->d_name, d);
            snprintf(dout, sizeof dout, "%s/%s/data_%d/outputs", root, e->d_name, d);
            dataset in, want;
            if (!load_set(di, &in)) break;
            if (load_set(dout, &want)) {
                CHECK(run_compare(m, c, &in, &want, 1e-3, 1e-5, why, sizeof why), "%s data_%d: %s", e->d_name, d, why);
                printf("%s data_%d through its plan: ok\n", e->d_name, d);
            }
            free_set(&in);
            free_set(&want);
        }
        kiln_context_destroy(c);
        kiln_model_destroy(m);
    }
    closedir(dp);
}

/* ---- refusing bad plans ------------------------------------------------------------------------ */

static kiln_status load_bytes(const uint8_t *p, size_t n, kiln_model **m)
{
    *m = NULL;
    return kiln_model_load_memory(p, n, NULL, NULL, m);
}

/* Offset of the section of `kind` (0 if absent). */
static size_t section_off(const uint8_t *p, uint32_t kind, uint64_t *size)
{
    uint32_t ns;
    memcpy(&ns, p + 32, 4);
    for (uint32_t i = 0; i < ns; i++) {
        uint32_t k;
        uint64_t off, sz;
        memcpy(&k, p + 64 + 32 * i, 4);
        memcpy(&off, p + 64 + 32 * i + 8, 8);
        memcpy(&sz, p + 64 + 32 * i + 16, 8);
        if (k == kind) { *size = sz; return (size_t)off; }
    }
    return 0;
}

static void test_bad_plans(void)
{
    char onnx[1024], plan[512], path[512], why[512];
    snprintf(onnx, sizeof onnx, "%s/conv_act.onnx", opt_dir);
    snprintf(plan, sizeof plan, "%s/small.kplan", tmpdir);
    kiln_build_options o = kiln_build_options_default();
    o.num_threads = 1;
    o.verbose = -1;
    kiln_status st = kiln_plan_build(onnx, &o, plan);
    CHECK(st == KILN_OK, "build small plan: %s", kiln_last_error());
    if (st) return;
    uint8_t *good = NULL;
    size_t n = 0;
    if (!read_file(plan, &good, &n)) { CHECK(0, "read small plan"); return; }
    printf("small plan: %zu bytes\n", n);
    kiln_model *m = NULL;
    CHECK(load_bytes(good, n, &m) == KILN_OK, "small plan loads: %s", kiln_last_error());
    kiln_model_destroy(m);

    /* every truncation */
    int bad = 0;
    for (size_t k = 0; k < n; k++) {
        st = load_bytes(good, k, &m);
        if (st == KILN_OK) { bad++; kiln_model_destroy(m); }
        else if (k >= 64 && !strstr(kiln_last_error(), "truncated")) bad++;
    }
    CHECK(bad == 0, "%d of %zu truncations were accepted or not called truncated", bad, n);
    /* trailing bytes */
    uint8_t *buf = malloc(n + 16);
    memcpy(buf, good, n);
    memset(buf + n, 0, 16);
    CHECK(load_bytes(buf, n + 16, &m) != KILN_OK && strstr(kiln_last_error(), "trailing"), "trailing bytes: %s", kiln_last_error());

    /* every single-byte flip fails the checksum */
    bad = 0;
    for (size_t k = 0; k < n; k++) {
        memcpy(buf, good, n);
        buf[k] ^= 0x5a;
        st = load_bytes(buf, n, &m);
        if (st == KILN_OK) { bad++; kiln_model_destroy(m); }
    }
    CHECK(bad == 0, "%d of %zu byte flips were accepted", bad, n);
    /* the same flips with checksums recomputed: the structural checks must hold (never crash);
     * what still decodes must create a context and run or fail cleanly */
    int accepted = 0;
    for (size_t k = 0; k < n; k++) {
        memcpy(buf, good, n);
        buf[k] ^= (uint8_t)(1u << (k % 8));
        plan_fix_checksums(buf, n);
        st = load_bytes(buf, n, &m);
        if (st) continue;
        accepted++;
        kiln_context *c = NULL;
        if (!kiln_context_create(m, &c)) kiln_context_destroy(c);
        kiln_model_destroy(m);
    }
    printf("bit flips with fixed checksums: %d of %zu still decode (weights, names, padding)\n", accepted, n);
    CHECK(1, "flips with fixed checksums");

    /* wrong magic */
    memcpy(buf, good, n);
    memcpy(buf, "KILNPLAX", 8);
    snprintf(path, sizeof path, "%s/magic.kplan", tmpdir);
    write_file(path, buf, n);
    st = kiln_plan_check(path, why, sizeof why);
    CHECK(st != KILN_OK && strstr(why, "not a kiln plan"), "wrong magic: %s", why);
    /* other format version */
    memcpy(buf, good, n);
    uint32_t v3 = 3;
    memcpy(buf + 8, &v3, 4);
    plan_fix_checksums(buf, n);
    snprintf(path, sizeof path, "%s/v3.kplan", tmpdir);
    write_file(path, buf, n);
    st = kiln_plan_check(path, why, sizeof why);
    CHECK(st == KILN_ERR_UNSUPPORTED && strstr(why, "plan format 3, this kiln reads 1: rebuild the plan with `kiln build`"),
          "version: %s", why);
    st = kiln_model_load_file(path, NULL, &m);
    CHECK(st == KILN_ERR_UNSUPPORTED && strstr(kiln_last_error(), "plan format 3"), "load v3: %s", kiln_last_error());
    /* a CPU feature this machine lacks */
    memcpy(buf, good, n);
    uint64_t tsz = 0;
    size_t toff = section_off(buf, PLAN_SEC_TARGET, &tsz);
    uint64_t need;
    const plan_target *host = plan_target_host();
    int missing_bit = -1;
    for (int bit = 0; bit < PLAN_ISA_COUNT; bit++)
        if (!(host->isa >> bit & 1)) { missing_bit = bit; break; }
    if (toff && missing_bit >= 0) {
        memcpy(&need, buf + toff + tsz - 8, 8);
        need |= 1ull << missing_bit;
        memcpy(buf + toff + tsz - 8, &need, 8);
        plan_fix_checksums(buf, n);
        snprintf(path, sizeof path, "%s/isa.kplan", tmpdir);
        write_file(path, buf, n);
        char expect[128];
        snprintf(expect, sizeof expect, "plan needs %s, this CPU lacks it: rebuild on this machine", plan_isa_name(missing_bit));
        st = kiln_plan_check(path, why, sizeof why);
        CHECK(st == KILN_ERR_UNSUPPORTED && strstr(why, expect), "ISA: '%s', expected '%s'", why, expect);
        st = kiln_model_load_file(path, NULL, &m);
        CHECK(st == KILN_ERR_UNSUPPORTED && strstr(kiln_last_error(), expect), "load ISA: %s", kiln_last_error());
    } else CHECK(toff != 0, "target section");
    /* another kiln build */
    memcpy(buf, good, n);
    buf[24] ^= 1;
    plan_fix_checksums(buf, n);
    CHECK(load_bytes(buf, n, &m) == KILN_ERR_UNSUPPORTED && strstr(kiln_last_error(), "another kiln build"), "build id: %s",
          kiln_last_error());
    /* checksum mismatches, via kiln_plan_check */
    memcpy(buf, good, n);
    buf[n - 1] ^= 0xff; /* last weight byte */
    snprintf(path, sizeof path, "%s/data.kplan", tmpdir);
    write_file(path, buf, n);
    st = kiln_plan_check(path, why, sizeof why);
    CHECK(st == KILN_ERR_PARSE && strstr(why, "checksum mismatch in the weights"), "data checksum: %s", why);
    memcpy(buf, good, n);
    buf[100] ^= 0xff;
    write_file(path, buf, n);
    st = kiln_plan_check(path, why, sizeof why);
    CHECK(st == KILN_ERR_PARSE && strstr(why, "checksum mismatch in the header or graph"), "meta checksum: %s", why);
    /* truncated file on disk */
    write_file(path, good, n / 2);
    st = kiln_plan_check(path, why, sizeof why);
    CHECK(st == KILN_ERR_PARSE && strstr(why, "truncated"), "truncated file: %s", why);
    CHECK(kiln_plan_check(plan, why, sizeof why) == KILN_OK && !strcmp(why, "ok"), "good plan check: %s", why);
    /* an ONNX file is not a plan */
    st = kiln_plan_check(onnx, why, sizeof why);
    CHECK(st == KILN_ERR_PARSE && strstr(why, "not a kiln plan"), "onnx as plan: %s", why);
    free(buf);
    free(good);
}

/* ---- bad build options --------------------------------------------------------------------------- */

static void test_build_errors(void)
{
    char onnx[1024], plan[512];
    snprintf(onnx, sizeof onnx, "%s/resnet18_w16/model.onnx", root);
    snprintf(plan, sizeof plan, "%s/bad.kplan", tmpdir);
    kiln_build_options o = kiln_build_options_default();
    o.verbose = -1;
    o.num_threads = 1;
    o.max_shapes = "nosuch:1x3x64x64";
    CHECK(kiln_plan_build(onnx, &o, plan) == KILN_ERR_NOT_FOUND && strstr(kiln_last_error(), "nosuch"), "unknown input: %s",
          kiln_last_error());
    o.max_shapes = "input:1x3x32x64";
    CHECK(kiln_plan_build(onnx, &o, plan) == KILN_ERR_SHAPE && strstr(kiln_last_error(), "fixes it at 64"), "fixed dim: %s",
          kiln_last_error());
    o.max_shapes = "input:4x3x64x64";
    o.min_shapes = "input:8x3x64x64";
    CHECK(kiln_plan_build(onnx, &o, plan) == KILN_ERR_SHAPE && strstr(kiln_last_error(), "not ordered"), "order: %s",
          kiln_last_error());
    o.min_shapes = "input:1x3x64";
    CHECK(kiln_plan_build(onnx, &o, plan) == KILN_ERR_SHAPE, "rank: %s", kiln_last_error());
    o.min_shapes = "input=1x3";
    CHECK(kiln_plan_build(onnx, &o, plan) == KILN_ERR_INVALID_ARGUMENT, "syntax: %s", kiln_last_error());
    CHECK(access(plan, F_OK) != 0, "no plan written on failure");
}

int main(void)
{
    if (!find_root()) { printf("tests/golden/models not found\n0 passed, 1 failed\n"); return 1; }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/kiln_test_plan_XXXXXX");
    if (!mkdtemp(tmpdir)) { printf("mkdtemp failed\n0 passed, 1 failed\n"); return 1; }
    test_resnet18();
    test_golden();
    test_bad_plans();
    test_build_errors();
    /* clean up */
    DIR *dp = opendir(tmpdir);
    struct dirent *e;
    while (dp && (e = readdir(dp))) {
        if (e->d_name[0] == '.') continue;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        unlink(p);
    }
    if (dp) closedir(dp);
    rmdir(tmpdir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
