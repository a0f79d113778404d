/* runner.c — kiln_conformance: runs the ONNX backend test data (node, pytorch-*, simple,
 * light) through the reference executor, one forked child per test, and checks a baseline. */
#include "core/core.h"
#include "ir/ir.h"
#include "onnx/onnx.h"
#include "opt/opt.h"
#include "runtime/runtime.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RTOL_DEFAULT 1e-3
#define ATOL_DEFAULT 1e-7
#define REASON_MAX 1024

static const char *const all_suites[] = {"node", "pytorch-converted", "pytorch-operator", "simple",
                                         "light"};
#define N_ALL_SUITES (int)(sizeof all_suites / sizeof all_suites[0])

typedef struct test_case {
    int suite;       /* index into the run's suite list */
    char *id;        /* "suite/test" */
    char *name;      /* test name inside its suite */
    char *path;      /* test directory, or the light_X.onnx file */
    bool light;
    bool passed;
    bool done;
    char *reason;    /* failure reason, owned */
} test_case;

typedef struct options {
    const char *root;
    const char *suites[N_ALL_SUITES];
    int n_suites;
    const char *filters[64];
    int n_filters;
    const char *baseline;
    const char *write_baseline;
    const char *failures;
    bool verbose;
    long timeout_ms;
    int jobs;
} options;

/* ---- small utilities ------------------------------------------------------------------ */

static char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (!p) {
        fprintf(stderr, "kiln_conformance: out of memory\n");
        _exit(2);
    }
    return p;
}

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (!p) {
        fprintf(stderr, "kiln_conformance: out of memory\n");
        _exit(2);
    }
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Read a whole file; returns NULL (and sets errno) on failure. */
static void *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap) break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    bool err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return NULL;
    }
    *size = n;
    return buf;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in directory `dir` (excluding dot entries). */
static char **list_dir(const char *dir, int *count)
{
    *count = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    int cap = 64, n = 0;
    char **names = malloc(sizeof(char *) * cap);
    struct dirent *e;
    while (names && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap *= 2;
            char **nn = realloc(names, sizeof(char *) * cap);
            if (!nn) break;
            names = nn;
        }
        names[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    if (names) qsort(names, n, sizeof(char *), cmp_str);
    *count = n;
    return names;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* One-line copy of an error message: newlines become spaces, length bounded. */
static void set_reason(char *dst, size_t size, const char *fmt, ...) CORE_PRINTF(3, 4);
static void set_reason(char *dst, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, size, fmt, ap);
    va_end(ap);
    for (char *p = dst; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
}

/* ---- comparing values ----------------------------------------------------------------- */

/* Element i of a floating-point buffer as double (complex types: flat real/imag array). */
static double load_float(kiln_dtype t, const void *data, int64_t i)
{
    switch (t) {
    case KILN_DTYPE_FLOAT:
    case KILN_DTYPE_COMPLEX64: return ((const float *)data)[i];
    case KILN_DTYPE_DOUBLE:
    case KILN_DTYPE_COMPLEX128: return ((const double *)data)[i];
    case KILN_DTYPE_FLOAT16: return core_f16_to_f32(((const uint16_t *)data)[i]);
    case KILN_DTYPE_BFLOAT16: return core_bf16_to_f32(((const uint16_t *)data)[i]);
    case KILN_DTYPE_FLOAT8E4M3FN:
    case KILN_DTYPE_FLOAT8E4M3FNUZ:
    case KILN_DTYPE_FLOAT8E5M2:
    case KILN_DTYPE_FLOAT8E5M2FNUZ:
    case KILN_DTYPE_FLOAT8E8M0: return core_f8_to_f32(t, ((const uint8_t *)data)[i]);
    case KILN_DTYPE_FLOAT4E2M1: return core_f4e2m1_to_f32(((const uint8_t *)data)[i]);
    default: return 0;
    }
}

static bool is_floatlike(kiln_dtype t)
{
    return core_dtype_is_float(t) || t == KILN_DTYPE_COMPLEX64 || t == KILN_DTYPE_COMPLEX128 ||
           t == KILN_DTYPE_FLOAT4E2M1 || t == KILN_DTYPE_FLOAT8E8M0;
}

static bool close_enough(double a, double b, double rtol, double atol)
{
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    if (isinf(a) || isinf(b)) return a == b;
    return fabs(a - b) <= atol + rtol * fabs(b);
}

static void format_elem(const core_tensor *t, int64_t i, char *buf, size_t size)
{
    kiln_dtype d = t->dtype;
    if (is_floatlike(d)) {
        snprintf(buf, size, "%.9g", load_float(d, t->data, i));
    } else if (d == KILN_DTYPE_STRING) {
        const char *s = ((char *const *)t->data)[i];
        snprintf(buf, size, "\"%.60s\"", s ? s : "");
    } else if (d == KILN_DTYPE_UINT64) {
        snprintf(buf, size, "%llu", (unsigned long long)((const uint64_t *)t->data)[i]);
    } else if (d == KILN_DTYPE_BOOL) {
        snprintf(buf, size, "%s", ((const uint8_t *)t->data)[i] ? "true" : "false");
    } else {
        snprintf(buf, size, "%lld", (long long)core_load_i64(d, t->data, i));
    }
}

/* Compare tensor `got` with `exp`; on mismatch writes a reason (prefixed by `what`). */
static bool compare_tensors(const core_tensor *got, const core_tensor *exp, const char *what,
                            double rtol, double atol, char *msg, size_t size)
{
    char s1[256], s2[256];
    if (got->dtype != exp->dtype) {
        set_reason(msg, size, "%s: dtype %s vs expected %s", what, core_dtype_name(got->dtype),
                   core_dtype_name(exp->dtype));
        return false;
    }
    bool same_shape = got->ndim == exp->ndim;
    for (int i = 0; same_shape && i < got->ndim; i++) same_shape = got->dims[i] == exp->dims[i];
    if (!same_shape) {
        core_shape_str(got->ndim, got->dims, s1, sizeof s1);
        core_shape_str(exp->ndim, exp->dims, s2, sizeof s2);
        set_reason(msg, size, "%s: shape %s vs expected %s", what, got->ndim ? s1 : "scalar",
                   exp->ndim ? s2 : "scalar");
        return false;
    }
    int64_t n = exp->numel;
    if (n > 0 && (!got->data || !exp->data)) {
        set_reason(msg, size, "%s: missing data", what);
        return false;
    }
    kiln_dtype d = exp->dtype;
    int64_t first = -1, ndiff = 0;
    if (is_floatlike(d)) {
        int64_t m = (d == KILN_DTYPE_COMPLEX64 || d == KILN_DTYPE_COMPLEX128) ? 2 * n : n;
        for (int64_t i = 0; i < m; i++) {
            if (!close_enough(load_float(d, got->data, i), load_float(d, exp->data, i), rtol, atol)) {
                if (first < 0) first = i;
                ndiff++;
            }
        }
        if (m != n && first >= 0) {
            /* report the complex element */
            set_reason(msg, size,
                       "%s: value mismatch at index %lld: got %.9g%+.9gi expected %.9g%+.9gi (%lld of %lld differ)",
                       what, (long long)(first / 2), load_float(d, got->data, first & ~1LL),
                       load_float(d, got->data, first | 1), load_float(d, exp->data, first & ~1LL),
                       load_float(d, exp->data, first | 1), (long long)ndiff, (long long)m);
            return false;
        }
    } else if (d == KILN_DTYPE_STRING) {
        for (int64_t i = 0; i < n; i++) {
            const char *a = ((char *const *)got->data)[i], *b = ((char *const *)exp->data)[i];
            if (strcmp(a ? a : "", b ? b : "")) {
                if (first < 0) first = i;
                ndiff++;
            }
        }
    } else {
        size_t es = core_dtype_size(d);
        if (es == 0) {
            set_reason(msg, size, "%s: cannot compare dtype %s", what, core_dtype_name(d));
            return false;
        }
        const uint8_t *a = got->data, *b = exp->data;
        for (int64_t i = 0; i < n; i++) {
            bool eq = d == KILN_DTYPE_BOOL ? (!a[i] == !b[i]) : !memcmp(a + i * es, b + i * es, es);
            if (!eq) {
                if (first < 0) first = i;
                ndiff++;
            }
        }
    }
    if (first >= 0) {
        format_elem(got, first, s1, sizeof s1);
        format_elem(exp, first, s2, sizeof s2);
        set_reason(msg, size, "%s: value mismatch at index %lld: got %s expected %s (%lld of %lld differ)",
                   what, (long long)first, s1, s2, (long long)ndiff, (long long)n);
        return false;
    }
    return true;
}

static const char *kind_name(const core_value *v)
{
    switch (v->kind) {
    case CORE_VALUE_TENSOR: return "tensor";
    case CORE_VALUE_SEQUENCE: return "sequence";
    case CORE_VALUE_NONE: return "none";
    }
    return "?";
}

static bool compare_values(const core_value *got, const core_value *exp, const char *what,
                           double rtol, double atol, char *msg, size_t size)
{
    if (!got) {
        set_reason(msg, size, "%s: not produced", what);
        return false;
    }
    if (got->kind != exp->kind) {
        set_reason(msg, size, "%s: got %s expected %s", what, kind_name(got), kind_name(exp));
        return false;
    }
    switch (exp->kind) {
    case CORE_VALUE_NONE: return true;
    case CORE_VALUE_TENSOR:
        if (!got->tensor || !exp->tensor) {
            set_reason(msg, size, "%s: missing tensor", what);
            return false;
        }
        return compare_tensors(got->tensor, exp->tensor, what, rtol, atol, msg, size);
    case CORE_VALUE_SEQUENCE:
        if (got->n_items != exp->n_items) {
            set_reason(msg, size, "%s: sequence of %lld items vs expected %lld", what,
                       (long long)got->n_items, (long long)exp->n_items);
            return false;
        }
        for (int64_t i = 0; i < exp->n_items; i++) {
            char sub[512];
            snprintf(sub, sizeof sub, "%s item %lld", what, (long long)i);
            if (!compare_values(got->items[i], exp->items[i], sub, rtol, atol, msg, size)) return false;
        }
        return true;
    }
    return false;
}

/* ---- running one test (in the child) -------------------------------------------------- */

static const ir_type *decode_type(const ir_graph *g, int vid)
{
    if (vid < 0 || vid >= g->n_values) return NULL;
    const ir_type *t = &g->values[vid].type;
    return t->kind == IR_TYPE_UNKNOWN ? NULL : t;
}

static bool value_is_initializer(const ir_graph *g, int vid)
{
    return vid >= 0 && vid < g->n_values && g->values[vid].constant != NULL;
}

static int count_prefixed(const char *dir, const char *prefix)
{
    int n = 0;
    for (;;) {
        char name[64];
        snprintf(name, sizeof name, "%s_%d.pb", prefix, n);
        char *p = path_join(dir, name);
        bool ok = is_file(p);
        free(p);
        if (!ok) return n;
        n++;
    }
}

static bool decode_file(const char *path, const ir_type *type, core_value **out, char *msg,
                        size_t size, const char *what)
{
    size_t n = 0;
    void *buf = read_file(path, &n);
    if (!buf) {
        set_reason(msg, size, "%s: cannot read %s: %s", what, path, strerror(errno));
        return false;
    }
    kiln_status st = onnx_value_decode(buf, n, type, out);
    free(buf);
    if (st != KILN_OK) {
        set_reason(msg, size, "%s: decode %s: %s", what, path, core_error_text());
        return false;
    }
    return true;
}

/* Feeds for a light model: arange(n).reshape(shape)/n as float32, unknown dims = 1. */
static bool light_inputs(const ir_graph *g, core_value **inputs, char *msg, size_t size)
{
    for (int i = 0; i < g->n_inputs; i++) {
        int vid = g->inputs[i];
        if (value_is_initializer(g, vid)) continue;
        const ir_type *t = &g->values[vid].type;
        if (t->kind != IR_TYPE_TENSOR || t->ndim < 0) {
            set_reason(msg, size, "input %d '%s': unknown type or rank", i, g->values[vid].name);
            return false;
        }
        int64_t dims[KILN_MAX_DIMS];
        if (t->ndim > KILN_MAX_DIMS) {
            set_reason(msg, size, "input %d: rank %d too large", i, t->ndim);
            return false;
        }
        for (int k = 0; k < t->ndim; k++) dims[k] = t->dims[k].value >= 0 ? t->dims[k].value : 1;
        core_tensor *x = core_tensor_create(KILN_DTYPE_FLOAT, t->ndim, dims);
        if (!x) {
            set_reason(msg, size, "input %d: %s", i, core_error_text());
            return false;
        }
        float *p = x->data;
        for (int64_t k = 0; k < x->numel; k++) p[k] = (float)((double)k / (double)x->numel);
        if (t->dtype != KILN_DTYPE_FLOAT && t->dtype != KILN_DTYPE_UNDEFINED) {
            core_tensor *y = core_tensor_create(t->dtype, t->ndim, dims);
            if (!y) {
                core_tensor_destroy(x);
                set_reason(msg, size, "input %d: %s", i, core_error_text());
                return false;
            }
            for (int64_t k = 0; k < x->numel; k++) core_store_f64(t->dtype, y->data, k, p[k]);
            core_tensor_destroy(x);
            x = y;
        }
        inputs[i] = core_value_from_tensor(x);
        if (!inputs[i]) {
            set_reason(msg, size, "input %d: out of memory", i);
            return false;
        }
    }
    return true;
}

/* Runs test tc; returns true on pass, else writes a one-line reason into msg. */
static bool run_test(const test_case *tc, char *msg, size_t size)
{
    char *model_path = tc->light ? xstrdup(tc->path) : path_join(tc->path, "model.onnx");
    ir_model *m = NULL;
    bool ok = false;
    core_value **inputs = NULL, **outputs = NULL, *expected = NULL;
    char **sets = NULL;
    int n_sets = 0;
    kiln_status st = onnx_model_load_file(model_path, &m);
    if (st != KILN_OK || !m || !m->graph) {
        set_reason(msg, size, "load: %s", core_error_text());
        goto done;
    }
    ir_graph *g = m->graph;
    st = opt_prepare_model(m); /* what users get: gradients expanded, kernels resolved, constants folded */
    if (st != KILN_OK) {
        set_reason(msg, size, "%s: %s", st == KILN_ERR_UNSUPPORTED ? "unsupported" : "prepare",
                   core_error_text());
        goto done;
    }
    inputs = calloc(g->n_inputs + 1, sizeof *inputs);
    outputs = calloc(g->n_outputs + 1, sizeof *outputs);
    if (!inputs || !outputs) {
        set_reason(msg, size, "out of memory");
        goto done;
    }
    double rtol = RTOL_DEFAULT, atol = ATOL_DEFAULT;

    if (tc->light) {
        if (strstr(tc->name, "densenet121")) rtol = 2e-3;
        if (!light_inputs(g, inputs, msg, size)) goto done;
        st = rt_graph_run(g, inputs, outputs);
        if (st != KILN_OK) {
            set_reason(msg, size, "run: %s", core_error_text());
            goto done;
        }
        /* expected outputs sit beside the model: light_X_output_K.pb */
        size_t base = strlen(tc->path) - strlen(".onnx");
        int n_checked = 0;
        for (int k = 0; k < g->n_outputs; k++) {
            size_t n = base + 32;
            char *p = malloc(n);
            if (!p) {
                set_reason(msg, size, "out of memory");
                goto done;
            }
            snprintf(p, n, "%.*s_output_%d.pb", (int)base, tc->path, k);
            if (!is_file(p)) {
                free(p);
                break;
            }
            char what[512];
            snprintf(what, sizeof what, "output %d '%s'", k, g->values[g->outputs[k]].name);
            bool dec = decode_file(p, decode_type(g, g->outputs[k]), &expected, msg, size, what);
            free(p);
            if (!dec) goto done;
            if (!compare_values(outputs[k], expected, what, rtol, atol, msg, size)) goto done;
            core_value_release(expected);
            expected = NULL;
            n_checked++;
        }
        if (n_checked == 0) {
            set_reason(msg, size, "no expected output file found");
            goto done;
        }
        ok = true;
        goto done;
    }

    char **names = list_dir(tc->path, &n_sets);
    sets = names;
    int n_run = 0, n_data_sets = 0;
    for (int s = 0; s < n_sets; s++) n_data_sets += !strncmp(names[s], "test_data_set_", 14);
    for (int s = 0; s < n_sets; s++) {
        if (strncmp(names[s], "test_data_set_", 14)) continue;
        char *dir = path_join(tc->path, names[s]);
        int n_in = count_prefixed(dir, "input"), n_out = count_prefixed(dir, "output");
        const char *set_tag = n_data_sets > 1 ? names[s] : NULL;
        char pre[128] = "";
        if (set_tag) snprintf(pre, sizeof pre, "%s: ", set_tag);
        int n_noninit = 0;
        for (int i = 0; i < g->n_inputs; i++) n_noninit += !value_is_initializer(g, g->inputs[i]);
        bool skip_inits = n_in < g->n_inputs;
        if (n_in > g->n_inputs) {
            set_reason(msg, size, "%stest has %d input files, model has %d inputs", pre, n_in, g->n_inputs);
            free(dir);
            goto done;
        }
        if (n_out != g->n_outputs) {
            set_reason(msg, size, "%stest has %d output files, model has %d outputs", pre, n_out,
                       g->n_outputs);
            free(dir);
            goto done;
        }
        (void)n_noninit;
        for (int i = 0; i < g->n_inputs; i++) {
            core_value_release(inputs[i]);
            inputs[i] = NULL;
        }
        int k = 0;
        bool in_ok = true;
        for (int i = 0; i < g->n_inputs && k < n_in; i++) {
            int vid = g->inputs[i];
            if (skip_inits && value_is_initializer(g, vid)) continue;
            char name[64], what[512];
            snprintf(name, sizeof name, "input_%d.pb", k);
            snprintf(what, sizeof what, "%sinput %d '%s'", pre, k, g->values[vid].name);
            char *p = path_join(dir, name);
            in_ok = decode_file(p, decode_type(g, vid), &inputs[i], msg, size, what);
            free(p);
            if (!in_ok) break;
            k++;
        }
        if (in_ok && k < n_in) {
            set_reason(msg, size, "%s%d input files but only %d non-initializer inputs", pre, n_in, k);
            in_ok = false;
        }
        if (!in_ok) {
            free(dir);
            goto done;
        }
        for (int i = 0; i < g->n_outputs; i++) {
            core_value_release(outputs[i]);
            outputs[i] = NULL;
        }
        st = rt_graph_run(g, inputs, outputs);
        if (st != KILN_OK) {
            set_reason(msg, size, "%srun: %s", pre, core_error_text());
            free(dir);
            goto done;
        }
        for (int o = 0; o < n_out; o++) {
            char name[64], what[512];
            snprintf(name, sizeof name, "output_%d.pb", o);
            snprintf(what, sizeof what, "%soutput %d '%s'", pre, o, g->values[g->outputs[o]].name);
            char *p = path_join(dir, name);
            bool dec = decode_file(p, decode_type(g, g->outputs[o]), &expected, msg, size, what);
            free(p);
            if (!dec || !compare_values(outputs[o], expected, what, rtol, atol, msg, size)) {
                free(dir);
                goto done;
            }
            core_value_release(expected);
            expected = NULL;
        }
        free(dir);
        n_run++;
    }
    if (n_run == 0) {
        set_reason(msg, size, "no test_data_set_N folder");
        goto done;
    }
    ok = true;

done:
    if (expected) core_value_release(expected);
    if (m && m->graph) {
        if (inputs)
            for (int i = 0; i < m->graph->n_inputs; i++) core_value_release(inputs[i]);
        if (outputs)
            for (int i = 0; i < m->graph->n_outputs; i++) core_value_release(outputs[i]);
    }
    free(inputs);
    free(outputs);
    free_names(sets, n_sets);
    if (m) ir_model_destroy(m);
    free(model_path);
    return ok;
}

/* ---- process pool ------------------------------------------------------------------- */

typedef struct slot {
    pid_t pid;
    int fd;
    int test;
    double start;
    char buf[REASON_MAX + 8];
    size_t len;
} slot;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char *signal_name(int sig, char *buf, size_t size)
{
    static const struct { int sig; const char *name; } names[] = {
        {SIGSEGV, "SIGSEGV"}, {SIGBUS, "SIGBUS"}, {SIGFPE, "SIGFPE"}, {SIGILL, "SIGILL"},
        {SIGABRT, "SIGABRT"}, {SIGKILL, "SIGKILL"}, {SIGTERM, "SIGTERM"}, {SIGTRAP, "SIGTRAP"},
        {SIGSYS, "SIGSYS"}, {SIGXCPU, "SIGXCPU"}, {SIGPIPE, "SIGPIPE"}, {SIGINT, "SIGINT"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].sig == sig) return names[i].name;
    snprintf(buf, size, "signal %d", sig);
    return buf;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static bool start_child(test_case *tests, int ti, slot *s)
{
    int fds[2];
    if (pipe(fds) != 0) return false;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return false;
    }
    if (pid == 0) {
        close(fds[0]);
        char msg[REASON_MAX];
        msg[0] = 0;
        bool ok = run_test(&tests[ti], msg, sizeof msg);
        char out[REASON_MAX + 4];
        int n = snprintf(out, sizeof out, "%c%s", ok ? 'P' : 'F', ok ? "" : msg);
        if (n < 0) n = 0;
        if ((size_t)n >= sizeof out) n = (int)sizeof out - 1;
        write_all(fds[1], out, (size_t)n);
        close(fds[1]);
        _exit(0);
    }
    close(fds[1]);
    s->pid = pid;
    s->fd = fds[0];
    s->test = ti;
    s->start = now_ms();
    s->len = 0;
    return true;
}

/* The child finished (EOF on its pipe) or timed out: reap it and record the verdict. */
static void finish_child(test_case *tests, slot *s, bool timed_out, long timeout_ms)
{
    test_case *tc = &tests[s->test];
    int status = 0;
    if (timed_out) kill(s->pid, SIGKILL);
    while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR) {}
    close(s->fd);
    s->buf[s->len] = 0;
    char reason[REASON_MAX + 64];
    if (timed_out) {
        snprintf(reason, sizeof reason, "timeout after %ld ms", timeout_ms);
    } else if (WIFSIGNALED(status)) {
        char tmp[32];
        snprintf(reason, sizeof reason, "crash: %s", signal_name(WTERMSIG(status), tmp, sizeof tmp));
    } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
        snprintf(reason, sizeof reason, "crash: exit status %d", WEXITSTATUS(status));
    } else if (s->len == 0 || (s->buf[0] != 'P' && s->buf[0] != 'F')) {
        snprintf(reason, sizeof reason, "crash: no verdict from child");
    } else if (s->buf[0] == 'P') {
        reason[0] = 0;
    } else {
        snprintf(reason, sizeof reason, "%s", s->buf + 1);
    }
    tc->done = true;
    tc->passed = reason[0] == 0;
    if (!tc->passed) tc->reason = xstrdup(reason);
    s->pid = 0;
}

static void report_progress(const options *o, const test_case *tc, int n_done)
{
    if (o->verbose) {
        if (tc->passed)
            printf("PASS %s\n", tc->id);
        else
            printf("FAIL %s: %s\n", tc->id, tc->reason);
        fflush(stdout);
    } else if (n_done % 50 == 0) {
        fputc('.', stderr);
        fflush(stderr);
    }
}

static void run_all(const options *o, test_case *tests, int n_tests)
{
    int jobs = o->jobs < 1 ? 1 : o->jobs;
    slot *slots = calloc(jobs, sizeof *slots);
    struct pollfd *pfd = calloc(jobs, sizeof *pfd);
    if (!slots || !pfd) {
        fprintf(stderr, "kiln_conformance: out of memory\n");
        exit(2);
    }
    int next = 0, running = 0, n_done = 0;
    while (next < n_tests || running > 0) {
        for (int j = 0; j < jobs && next < n_tests; j++) {
            if (slots[j].pid) continue;
            if (!start_child(tests, next, &slots[j])) {
                tests[next].done = true;
                tests[next].passed = false;
                tests[next].reason = xstrdup("runner: cannot fork");
                report_progress(o, &tests[next], ++n_done);
            } else {
                running++;
            }
            next++;
        }
        int np = 0, map[256];
        for (int j = 0; j < jobs && np < 256; j++) {
            if (!slots[j].pid) continue;
            pfd[np].fd = slots[j].fd;
            pfd[np].events = POLLIN;
            pfd[np].revents = 0;
            map[np++] = j;
        }
        if (np == 0) continue;
        int r = poll(pfd, np, 50);
        if (r < 0 && errno != EINTR) {
            perror("kiln_conformance: poll");
            exit(2);
        }
        double t = now_ms();
        for (int k = 0; k < np; k++) {
            slot *s = &slots[map[k]];
            bool finished = false, timed_out = false;
            if (r > 0 && (pfd[k].revents & (POLLIN | POLLHUP | POLLERR))) {
                char tmp[512];
                ssize_t got = read(s->fd, tmp, sizeof tmp);
                if (got > 0) {
                    size_t room = REASON_MAX - s->len;
                    size_t take = (size_t)got < room ? (size_t)got : room;
                    memcpy(s->buf + s->len, tmp, take);
                    s->len += take;
                } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                    finished = true;
                }
            }
            if (!finished && t - s->start > (double)o->timeout_ms) timed_out = finished = true;
            if (finished) {
                int ti = s->test;
                finish_child(tests, s, timed_out, o->timeout_ms);
                running--;
                report_progress(o, &tests[ti], ++n_done);
            }
        }
    }
    if (!o->verbose && n_tests >= 50) fputc('\n', stderr);
    free(slots);
    free(pfd);
}

/* ---- test discovery ----------------------------------------------------------------- */

static bool matches_filter(const options *o, const char *id)
{
    if (o->n_filters == 0) return true;
    for (int i = 0; i < o->n_filters; i++)
        if (strstr(id, o->filters[i])) return true;
    return false;
}

static void add_test(test_case **tests, int *n, int *cap, int suite, const char *suite_name,
                     const char *name, char *path, bool light)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        test_case *nt = realloc(*tests, sizeof(test_case) * *cap);
        if (!nt) {
            fprintf(stderr, "kiln_conformance: out of memory\n");
            exit(2);
        }
        *tests = nt;
    }
    test_case *tc = &(*tests)[(*n)++];
    memset(tc, 0, sizeof *tc);
    tc->suite = suite;
    tc->id = path_join(suite_name, name);
    tc->name = xstrdup(name);
    tc->path = path;
    tc->light = light;
}

static test_case *discover(const options *o, int *n_out)
{
    test_case *tests = NULL;
    int n = 0, cap = 0;
    for (int s = 0; s < o->n_suites; s++) {
        char *dir = path_join(o->root, o->suites[s]);
        if (!is_dir(dir)) {
            fprintf(stderr, "kiln_conformance: warning: suite folder %s not found\n", dir);
            free(dir);
            continue;
        }
        int nn = 0;
        char **names = list_dir(dir, &nn);
        bool light = !strcmp(o->suites[s], "light");
        for (int i = 0; i < nn; i++) {
            char *p = path_join(dir, names[i]);
            if (light) {
                size_t l = strlen(names[i]);
                if (l <= 5 || strcmp(names[i] + l - 5, ".onnx") || !is_file(p)) {
                    free(p);
                    continue;
                }
                char *stem = xstrdup(names[i]);
                stem[l - 5] = 0;
                char id[1024];
                snprintf(id, sizeof id, "%s/%s", o->suites[s], stem);
                if (matches_filter(o, id))
                    add_test(&tests, &n, &cap, s, o->suites[s], stem, p, true);
                else
                    free(p);
                free(stem);
            } else {
                char *mp = path_join(p, "model.onnx");
                bool has_model = is_file(mp);
                free(mp);
                char id[1024];
                snprintf(id, sizeof id, "%s/%s", o->suites[s], names[i]);
                if (has_model && matches_filter(o, id))
                    add_test(&tests, &n, &cap, s, o->suites[s], names[i], p, false);
                else
                    free(p);
            }
        }
        free_names(names, nn);
        free(dir);
    }
    *n_out = n;
    return tests;
}

/* ---- baselines and reports ---------------------------------------------------------- */

static int cmp_test_id(const void *a, const void *b)
{
    return strcmp(((const test_case *)a)->id, ((const test_case *)b)->id);
}

static bool write_lines(const char *path, test_case *tests, int n, bool passing)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "kiln_conformance: cannot write %s: %s\n", path, strerror(errno));
        return false;
    }
    test_case *sorted = malloc(sizeof(test_case) * (n ? n : 1));
    if (!sorted) {
        fclose(f);
        return false;
    }
    memcpy(sorted, tests, sizeof(test_case) * n);
    qsort(sorted, n, sizeof(test_case), cmp_test_id);
    for (int i = 0; i < n; i++) {
        if (passing && sorted[i].passed) fprintf(f, "%s\n", sorted[i].id);
        if (!passing && !sorted[i].passed) fprintf(f, "%s: %s\n", sorted[i].id, sorted[i].reason);
    }
    free(sorted);
    bool ok = !ferror(f);
    if (fclose(f) != 0) ok = false;
    if (!ok) fprintf(stderr, "kiln_conformance: error writing %s\n", path);
    return ok;
}

/* Returns the number of regressions (tests listed in the baseline that did not pass);
 * -1 if the baseline cannot be read. Entries outside the selected suites/filter are
 * ignored; entries inside it with no test on disk count as regressions. */
static int check_baseline(const options *o, const test_case *tests, int n)
{
    FILE *f = fopen(o->baseline, "r");
    if (!f) {
        fprintf(stderr, "kiln_conformance: cannot read baseline %s: %s\n", o->baseline, strerror(errno));
        return -1;
    }
    char line[2048];
    int regressions = 0;
    while (fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' ')) line[--l] = 0;
        char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        if (!*p || *p == '#') continue;
        const char *slash = strchr(p, '/');
        if (!slash) continue;
        bool suite_selected = false;
        for (int s = 0; s < o->n_suites; s++)
            if (strlen(o->suites[s]) == (size_t)(slash - p) && !strncmp(o->suites[s], p, slash - p))
                suite_selected = true;
        if (!suite_selected || !matches_filter(o, p)) continue;
        const test_case *found = NULL;
        for (int i = 0; i < n && !found; i++)
            if (!strcmp(tests[i].id, p)) found = &tests[i];
        if (!found) {
            printf("REGRESSION: %s: test not found\n", p);
            regressions++;
        } else if (!found->passed) {
            printf("REGRESSION: %s: %s\n", p, found->reason);
            regressions++;
        }
    }
    fclose(f);
    return regressions;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: kiln_conformance --root DIR [--suite NAME]... [--filter SUBSTR]...\n"
            "                        [--baseline FILE] [--write-baseline FILE] [--failures FILE]\n"
            "                        [-v] [--timeout-ms N] [--jobs N]\n"
            "suites: node, pytorch-converted, pytorch-operator, simple, light (default: all)\n"
            "--baseline FILE: every test listed must pass (exit 1 otherwise)\n");
}

static bool parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v <= 0) return false;
    *out = v;
    return true;
}

int main(int argc, char **argv)
{
    options o;
    memset(&o, 0, sizeof o);
    o.timeout_ms = 60000;
    o.jobs = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = !strcmp(a, "--root") || !strcmp(a, "--suite") || !strcmp(a, "--filter") ||
                     !strcmp(a, "--baseline") || !strcmp(a, "--write-baseline") ||
                     !strcmp(a, "--failures") || !strcmp(a, "--timeout-ms") || !strcmp(a, "--jobs") ||
                     !strcmp(a, "-j");
        if (takes && !v) {
            fprintf(stderr, "kiln_conformance: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            o.verbose = true;
        } else if (!strcmp(a, "--root")) {
            o.root = v;
        } else if (!strcmp(a, "--suite")) {
            int k = -1;
            for (int s = 0; s < N_ALL_SUITES; s++)
                if (!strcmp(all_suites[s], v)) k = s;
            if (k < 0) {
                fprintf(stderr, "kiln_conformance: unknown suite '%s'\n", v);
                usage(stderr);
                return 2;
            }
            bool dup = false;
            for (int s = 0; s < o.n_suites; s++) dup |= !strcmp(o.suites[s], v);
            if (!dup) o.suites[o.n_suites++] = all_suites[k];
        } else if (!strcmp(a, "--filter")) {
            if (o.n_filters == (int)(sizeof o.filters / sizeof o.filters[0])) {
                fprintf(stderr, "kiln_conformance: too many --filter options\n");
                return 2;
            }
            o.filters[o.n_filters++] = v;
        } else if (!strcmp(a, "--baseline")) {
            o.baseline = v;
        } else if (!strcmp(a, "--write-baseline")) {
            o.write_baseline = v;
        } else if (!strcmp(a, "--failures")) {
            o.failures = v;
        } else if (!strcmp(a, "--timeout-ms")) {
            if (!parse_long(v, &o.timeout_ms)) {
                fprintf(stderr, "kiln_conformance: bad --timeout-ms '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--jobs") || !strcmp(a, "-j")) {
            long j;
            if (!parse_long(v, &j) || j > 256) {
                fprintf(stderr, "kiln_conformance: bad --jobs '%s' (1..256)\n", v);
                return 2;
            }
            o.jobs = (int)j;
        } else {
            fprintf(stderr, "kiln_conformance: unknown argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (takes) i++;
    }
    if (!o.root) {
        fprintf(stderr, "kiln_conformance: --root DIR is required\n");
        usage(stderr);
        return 2;
    }
    if (!is_dir(o.root)) {
        fprintf(stderr, "kiln_conformance: root %s is not a directory\n", o.root);
        return 2;
    }
    if (o.n_suites == 0)
        for (int s = 0; s < N_ALL_SUITES; s++) o.suites[o.n_suites++] = all_suites[s];
    signal(SIGPIPE, SIG_IGN);

    int n = 0;
    test_case *tests = discover(&o, &n);
    run_all(&o, tests, n);

    int total_pass = 0;
    for (int s = 0; s < o.n_suites; s++) {
        int p = 0, t = 0;
        for (int i = 0; i < n; i++) {
            if (tests[i].suite != s) continue;
            t++;
            p += tests[i].passed;
        }
        total_pass += p;
        printf("%s: %d/%d passed\n", o.suites[s], p, t);
    }
    int rc = 0;
    if (o.failures && !write_lines(o.failures, tests, n, false)) rc = 2;
    if (o.write_baseline && !write_lines(o.write_baseline, tests, n, true)) rc = 2;
    if (o.baseline) {
        int r = check_baseline(&o, tests, n);
        if (r < 0) rc = 2;
        else if (r > 0 && rc == 0) rc = 1;
    }
    printf("%d passed, %d failed\n", total_pass, n - total_pass);
    for (int i = 0; i < n; i++) {
        free(tests[i].id);
        free(tests[i].name);
        free(tests[i].path);
        free(tests[i].reason);
    }
    free(tests);
    return rc;
}
