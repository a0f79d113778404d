/* run.c — `kiln run`: load a model through the public API, bind inputs read from .npy or
 * TensorProto .pb files, run once, and print a summary of each output or save it as .npy. */
#include "cli.h"
#include "inputs.h"
#include "npy.h"

#include "kiln.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void cli_run_help(FILE *f)
{
    fprintf(f,
            "usage: kiln run MODEL [--input NAME=FILE]... [--output-dir DIR] [--threads N]\n\n"
            "Runs MODEL (.onnx, or a .kplan from kiln build) once.\n"
            "  --input NAME=FILE   bind input NAME to FILE: a .npy array (C order, any\n"
            "                      standard numeric dtype or bool) or a TensorProto .pb file;\n"
            "                      the dtype must equal the model's. Every input without a\n"
            "                      default must be given.\n"
            "  --output-dir DIR    write each output to DIR/<name>.npy ('/' and ':' in names\n"
            "                      become '_'); DIR is created if needed. Without it a summary\n"
            "                      of each output is printed (dtype, shape, min/max/mean, values).\n"
            "  --threads N         worker threads (default: physical cores)\n");
}

static int fail(const char *fmt, ...) CORE_PRINTF(1, 2);
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kiln run: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

typedef struct bound_input {
    const char *spec; /* NAME=FILE as given */
    const char *name;
    const char *file;
    core_tensor *t;
} bound_input;

static void shape_text(int ndim, const int64_t *dims, char *buf, size_t size)
{
    if (ndim == 0) {
        snprintf(buf, size, "scalar");
        return;
    }
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? "x" : "", (long long)dims[i]);
}

static int mkdir_p(const char *dir)
{
    char *p = strdup(dir);
    if (!p) return -1;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int r = mkdir(p, 0777);
    free(p);
    if (r != 0 && errno != EEXIST) return -1;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static double view_load(const kiln_tensor_view *v, int64_t i)
{
    const void *d = v->data;
    switch (v->dtype) {
    case KILN_DTYPE_FLOAT: return ((const float *)d)[i];
    case KILN_DTYPE_DOUBLE: return ((const double *)d)[i];
    case KILN_DTYPE_FLOAT16: return core_f16_to_f32(((const uint16_t *)d)[i]);
    case KILN_DTYPE_BFLOAT16: return core_bf16_to_f32(((const uint16_t *)d)[i]);
    case KILN_DTYPE_BOOL: return ((const uint8_t *)d)[i] != 0;
    case KILN_DTYPE_UINT64: return (double)((const uint64_t *)d)[i];
    case KILN_DTYPE_FLOAT8E4M3FN:
    case KILN_DTYPE_FLOAT8E4M3FNUZ:
    case KILN_DTYPE_FLOAT8E5M2:
    case KILN_DTYPE_FLOAT8E5M2FNUZ:
    case KILN_DTYPE_FLOAT8E8M0: return core_f8_to_f32(v->dtype, ((const uint8_t *)d)[i]);
    case KILN_DTYPE_FLOAT4E2M1: return core_f4e2m1_to_f32(((const uint8_t *)d)[i]);
    default: return core_load_f64(v->dtype, d, i);
    }
}

static void print_elem(const kiln_tensor_view *v, int64_t i)
{
    if (v->dtype == KILN_DTYPE_STRING) {
        const char *s = ((const char *const *)v->data)[i];
        printf("\"%.40s%s\"", s ? s : "", s && strlen(s) > 40 ? "..." : "");
    } else if (v->dtype == KILN_DTYPE_BOOL) {
        printf("%s", ((const uint8_t *)v->data)[i] ? "true" : "false");
    } else if (v->dtype == KILN_DTYPE_UINT64) {
        printf("%llu", (unsigned long long)((const uint64_t *)v->data)[i]);
    } else if (core_dtype_is_int(v->dtype)) {
        printf("%lld", (long long)core_load_i64(v->dtype, v->data, i));
    } else {
        printf("%.6g", view_load(v, i));
    }
}

static void print_summary(const char *name, const kiln_tensor_view *v)
{
    char shp[512];
    shape_text(v->ndim, v->dims, shp, sizeof shp);
    int64_t n = core_shape_numel(v->ndim, v->dims);
    printf("%s: %s [%s]", name, kiln_dtype_name(v->dtype), shp);
    bool complex = v->dtype == KILN_DTYPE_COMPLEX64 || v->dtype == KILN_DTYPE_COMPLEX128;
    if (n > 0 && v->dtype != KILN_DTYPE_STRING && !complex) {
        double mn = INFINITY, mx = -INFINITY, sum = 0;
        int64_t nan = 0;
        for (int64_t i = 0; i < n; i++) {
            double x = view_load(v, i);
            if (isnan(x)) {
                nan++;
                continue;
            }
            if (x < mn) mn = x;
            if (x > mx) mx = x;
            sum += x;
        }
        if (nan < n) printf(" min=%.6g max=%.6g mean=%.6g", mn, mx, sum / (double)(n - nan));
        if (nan) printf(" nan=%lld", (long long)nan);
    }
    printf("\n  ");
    if (complex) {
        printf("(complex values not shown)\n");
        return;
    }
    int64_t show = n < 8 ? n : 8;
    printf("[");
    for (int64_t i = 0; i < show; i++) {
        if (i) printf(", ");
        print_elem(v, i);
    }
    printf("%s]\n", n > show ? ", ..." : "");
}

static char *output_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 8;
    char *p = malloc(n);
    if (!p) return NULL;
    snprintf(p, n, "%s/%s.npy", dir, name);
    for (char *s = p + strlen(dir) + 1; *s; s++)
        if (*s == '/' || *s == ':' || *s == '\\') *s = '_';
    return p;
}

/* Split each NAME=FILE once the model's input names are known (see cli_input_spec_split). */
static bool resolve_inputs(const kiln_model *model, bound_input *ins, int n_ins)
{
    for (int k = 0; k < n_ins; k++) {
        char *name = NULL;
        if (cli_input_spec_split(model, ins[k].spec, &name, &ins[k].file) != KILN_OK) {
            fail("%s", core_error_text());
            return false;
        }
        ins[k].name = name;
        for (int j = 0; j < k; j++)
            if (!strcmp(ins[j].name, name)) {
                fail("input '%s' given twice", name);
                return false;
            }
    }
    return true;
}

int cli_run_main(int argc, char **argv)
{
    const char *model_path = NULL, *out_dir = NULL;
    int threads = 0;
    bound_input *ins = calloc((size_t)argc, sizeof *ins);
    int n_ins = 0, rc = 1;
    kiln_model *model = NULL;
    kiln_context *ctx = NULL;
    if (!ins) return fail("out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        if (!strncmp(a, "--input=", 8)) {
            val = a + 8;
        } else if (!strcmp(a, "--input") || !strcmp(a, "-i")) {
            if (i + 1 >= argc) {
                fail("%s needs NAME=FILE", a);
                goto done;
            }
            val = argv[++i];
        }
        if (val) {
            const char *eq = strchr(val, '=');
            if (!eq || eq == val || val[strlen(val) - 1] == '=') {
                fail("bad --input '%s': expected NAME=FILE", val);
                goto done;
            }
            ins[n_ins++].spec = val; /* split at resolve_inputs, once the names are known */
        } else if (!strncmp(a, "--output-dir=", 13)) {
            out_dir = a + 13;
        } else if (!strcmp(a, "--output-dir") || !strcmp(a, "-o")) {
            if (i + 1 < argc) {
                out_dir = argv[++i];
            } else {
                fail("%s needs a directory", a);
                goto done;
            }
        } else if (!strcmp(a, "--threads") || !strcmp(a, "-t")) {
            char *end;
            if (i + 1 >= argc) {
                fail("%s needs a number", a);
                goto done;
            }
            long v = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || v < 0 || v > 4096) {
                fail("bad thread count '%s'", argv[i]);
                goto done;
            }
            threads = (int)v;
        } else if (a[0] == '-' && a[1]) {
            fail("unknown option '%s' (see `kiln help run`)", a);
            goto done;
        } else if (!model_path) {
            model_path = a;
        } else {
            fail("unexpected argument '%s'", a);
            goto done;
        }
    }
    if (!model_path) {
        fail("no MODEL given (see `kiln help run`)");
        goto done;
    }

    kiln_load_options opts = {threads, 0};
    if (kiln_model_load_file(model_path, &opts, &model) != KILN_OK) {
        fail("%s", kiln_last_error());
        goto done;
    }
    int n_model_in = kiln_model_input_count(model);
    if (!resolve_inputs(model, ins, n_ins)) goto done;
    /* every --input must name a model input */
    for (int k = 0; k < n_ins; k++) {
        if (!cli_model_has_input(model, ins[k].name)) {
            char list[1024];
            cli_input_names_text(model, list, sizeof list);
            fail("model has no input '%s' (inputs: %s)", ins[k].name, list);
            goto done;
        }
    }
    for (int i = 0; i < n_model_in; i++) {
        kiln_tensor_info ti;
        if (kiln_model_input_info(model, i, &ti) != KILN_OK) {
            fail("%s", kiln_last_error());
            goto done;
        }
        bool given = false;
        for (int k = 0; k < n_ins; k++) given |= !strcmp(ins[k].name, ti.name);
        if (!given) {
            char shp[512];
            cli_info_shape_text(&ti, shp, sizeof shp);
            fail("missing input '%s' (%s [%s]): pass --input %s=FILE", ti.name, kiln_dtype_name(ti.dtype), shp,
                 ti.name);
            goto done;
        }
    }
    if (kiln_context_create(model, &ctx) != KILN_OK) {
        fail("%s", kiln_last_error());
        goto done;
    }
    for (int k = 0; k < n_ins; k++) {
        if (cli_tensor_load_file(ins[k].file, &ins[k].t) != KILN_OK) {
            fail("input '%s': %s", ins[k].name, core_error_text());
            goto done;
        }
        core_tensor *t = ins[k].t;
        for (int i = 0; i < n_model_in; i++) {
            kiln_tensor_info ti;
            if (kiln_model_input_info(model, i, &ti) != KILN_OK || strcmp(ti.name, ins[k].name)) continue;
            if (ti.dtype != KILN_DTYPE_UNDEFINED && ti.dtype != t->dtype) {
                fail("input '%s': %s holds %s, the model expects %s", ins[k].name, ins[k].file,
                     kiln_dtype_name(t->dtype), kiln_dtype_name(ti.dtype));
                goto done;
            }
        }
        size_t nbytes = (size_t)t->numel * kiln_dtype_size(t->dtype);
        if (kiln_context_set_input(ctx, ins[k].name, t->dtype, t->ndim, t->dims, t->data, nbytes) != KILN_OK) {
            fail("%s", kiln_last_error()); /* the API's message names the input */
            goto done;
        }
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (kiln_context_run(ctx) != KILN_OK) {
        fail("%s", kiln_last_error());
        goto done;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (out_dir && mkdir_p(out_dir) != 0) {
        fail("cannot create directory %s: %s", out_dir, strerror(errno));
        goto done;
    }
    int n_out = kiln_model_output_count(model);
    for (int i = 0; i < n_out; i++) {
        kiln_tensor_info ti;
        kiln_tensor_view v;
        if (kiln_model_output_info(model, i, &ti) != KILN_OK) {
            fail("%s", kiln_last_error());
            goto done;
        }
        if (kiln_context_get_output(ctx, ti.name, &v) != KILN_OK) {
            fail("output '%s': %s", ti.name, kiln_last_error());
            goto done;
        }
        if (out_dir) {
            char *p = output_path(out_dir, ti.name);
            if (!p) {
                fail("out of memory");
                goto done;
            }
            if (npy_write_file(p, v.dtype, v.ndim, v.dims, v.data, v.nbytes) != KILN_OK) {
                fail("output '%s': %s", ti.name, core_error_text());
                free(p);
                goto done;
            }
            printf("%s -> %s\n", ti.name, p);
            free(p);
        } else {
            print_summary(ti.name, &v);
        }
    }
    if (!out_dir)
        printf("(run: %.3f ms)\n", (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    rc = 0;

done:
    if (ctx) kiln_context_destroy(ctx);
    if (model) kiln_model_destroy(model);
    for (int k = 0; k < n_ins; k++) {
        free((char *)ins[k].name);
        if (ins[k].t) core_tensor_destroy(ins[k].t);
    }
    free(ins);
    return rc;
}
