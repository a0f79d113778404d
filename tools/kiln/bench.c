/* bench.c — `kiln bench`: trtexec-style timing of one model: load time, warmup, timed
 * runs with latency percentiles, throughput, peak memory and an optional per-layer profile. */
#include "cli.h"
#include "core/threadpool.h"
#include "inputs.h"
#include "npy.h"

#include "kiln.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Exit statuses: 0 done, 1 the model failed to load or run, 2 bad command line (including
 * options that do not fit the model: unknown input names, wrong ranks). */
enum { BENCH_OK = 0, BENCH_FAIL = 1, BENCH_USAGE = 2 };

#define BENCH_WARMUP_MIN_RUNS 5
#define BENCH_WARMUP_MIN_S 0.2
#define BENCH_WARMUP_MAX_S 2.0 /* the 5-run minimum yields to this on slow models */
#define BENCH_DEFAULT_ITERATIONS 20
#define BENCH_DEFAULT_DURATION_S 1.0
#define BENCH_MAX_SAMPLES 100000000LL

void cli_bench_help(FILE *f)
{
    fprintf(f,
            "usage: kiln bench MODEL [--input NAME=FILE]... [--shapes NAME:DIMS[,NAME:DIMS]...]\n"
            "                  [--threads N] [--warmup N] [--iterations N] [--duration S]\n"
            "                  [--json] [--profile] [--export-profile FILE.json] [--export-output FILE.npy]\n\n"
            "Measures MODEL (.onnx or .kplan) the way trtexec does: load time (model load + context\n"
            "creation), a warmup, then timed runs; prints latency min/median/mean/p90/p99/max,\n"
            "throughput, peak resident memory and the planned activation arena.\n"
            "  --input NAME=FILE   bind input NAME to a .npy or TensorProto .pb file. Inputs not\n"
            "                      given get random data: floats uniform in [0,1), integers in\n"
            "                      0..99 (1 for inputs whose name contains \"mask\"); fixed seed.\n"
            "  --shapes NAME:DIMS  shape of a random input, e.g. input:1x3x224x224 (repeatable,\n"
            "                      or comma-separated); dynamic dims not given are 1\n"
            "  --threads N         worker threads (default 0: physical cores)\n"
            "  --warmup N          exactly N warmup runs (default: at least 200 ms and 5 runs,\n"
            "                      the 5 runs cut short after 2 s on slow models)\n"
            "  --iterations N      timed runs: at least N (default 20; exactly N when given\n"
            "                      without --duration)\n"
            "  --duration S        timed runs: at least S seconds (default 1; with only\n"
            "                      --duration, iterations default to 1)\n"
            "  --json              print one JSON object on stdout instead of the text report\n"
            "  --profile           per-layer times over the timed runs (sorted by total time)\n"
            "                      and a per-op-type summary; the timed runs are the profiled\n"
            "                      runs (one clock read per layer)\n"
            "  --export-profile F  write the per-layer and per-op-type profile to F as JSON\n"
            "  --export-output F   write the outputs of the last run as .npy: the first to F, any\n"
            "                      others to F with _<output name> before the extension\n"
            "Progress goes to stderr when a phase takes longer than a few seconds.\n"
            "Exit status: 0 done, 1 the model failed to load or run, 2 bad arguments.\n");
}

static int msg(int rc, const char *fmt, ...) CORE_PRINTF(2, 3);
static int msg(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "kiln bench: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return rc;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* ---- options -------------------------------------------------------------------------- */

typedef struct shape_spec {
    char *name;
    int ndim;
    int64_t dims[KILN_MAX_DIMS];
} shape_spec;

typedef struct bench_opts {
    const char *model_path;
    const char **input_specs; /* NAME=FILE as given */
    int n_input_specs;
    shape_spec *shapes;
    int n_shapes;
    int threads;
    long warmup;     /* -1: default rule */
    long iterations; /* -1: not given */
    double duration; /* < 0: not given */
    bool json, profile;
    const char *export_profile;
    const char *export_output;
} bench_opts;

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* DIMS: "1x3x224x224"; "" or "scalar" is rank 0. */
static bool parse_dims(const char *s, shape_spec *sp)
{
    sp->ndim = 0;
    if (!*s || !strcmp(s, "scalar")) return true;
    for (;;) {
        if (sp->ndim == KILN_MAX_DIMS || !isdigit((unsigned char)*s)) return false;
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || v < 0 || v > (1LL << 40)) return false;
        sp->dims[sp->ndim++] = v;
        if (!*end) return true;
        if (*end != 'x' && *end != 'X') return false;
        s = end + 1;
    }
}

/* One --shapes value: NAME:DIMS[,NAME:DIMS]... The last ':' of each item splits it, so
 * names may contain ':'. */
static int add_shapes(bench_opts *o, const char *val)
{
    const char *p = val;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char *item = strndup(p, len);
        if (!item) return msg(BENCH_FAIL, "out of memory");
        char *colon = strrchr(item, ':');
        if (!colon || colon == item) {
            msg(BENCH_USAGE, "bad --shapes item '%s': expected NAME:DIMS, e.g. input:1x3x224x224", item);
            free(item);
            return BENCH_USAGE;
        }
        *colon = 0;
        shape_spec sp = {0};
        if (!parse_dims(colon + 1, &sp)) {
            msg(BENCH_USAGE, "bad --shapes dims '%s' for '%s': expected non-negative integers joined by 'x'",
                colon + 1, item);
            free(item);
            return BENCH_USAGE;
        }
        for (int i = 0; i < o->n_shapes; i++)
            if (!strcmp(o->shapes[i].name, item)) {
                msg(BENCH_USAGE, "--shapes gives '%s' twice", item);
                free(item);
                return BENCH_USAGE;
            }
        shape_spec *ns = realloc(o->shapes, sizeof *ns * (size_t)(o->n_shapes + 1));
        if (!ns) {
            free(item);
            return msg(BENCH_FAIL, "out of memory");
        }
        o->shapes = ns;
        sp.name = item;
        o->shapes[o->n_shapes++] = sp;
        if (!comma) break;
        p = comma + 1;
    }
    return BENCH_OK;
}

static int parse_args(int argc, char **argv, bench_opts *o)
{
    memset(o, 0, sizeof *o);
    o->warmup = -1;
    o->iterations = -1;
    o->duration = -1;
    o->input_specs = calloc((size_t)argc, sizeof *o->input_specs);
    if (!o->input_specs) return msg(BENCH_FAIL, "out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        /* --opt=VALUE and --opt VALUE both work for options with a value */
        static const char *const with_value[] = {"--input", "--shapes", "--threads", "--warmup", "--iterations",
                                                 "--duration", "--export-profile", "--export-output", "-i", "-t"};
        const char *opt = a, *val = NULL;
        char optbuf[32];
        const char *eq = strchr(a, '=');
        if (a[0] == '-' && a[1] == '-' && eq && (size_t)(eq - a) < sizeof optbuf) {
            memcpy(optbuf, a, (size_t)(eq - a));
            optbuf[eq - a] = 0;
            opt = optbuf;
            val = eq + 1;
        }
        bool needs = false;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) needs |= !strcmp(opt, with_value[k]);
        if (needs && !val) {
            if (i + 1 >= argc) return msg(BENCH_USAGE, "%s needs a value (see `kiln help bench`)", opt);
            val = argv[++i];
        } else if (!needs && val && a[0] == '-') {
            return msg(BENCH_USAGE, "unknown option '%s' (see `kiln help bench`)", a);
        }
        long v;
        if (!strcmp(opt, "--input") || !strcmp(opt, "-i")) {
            const char *e = strchr(val, '=');
            if (!e || e == val || val[strlen(val) - 1] == '=')
                return msg(BENCH_USAGE, "bad --input '%s': expected NAME=FILE", val);
            o->input_specs[o->n_input_specs++] = val;
        } else if (!strcmp(opt, "--shapes")) {
            int rc = add_shapes(o, val);
            if (rc) return rc;
        } else if (!strcmp(opt, "--threads") || !strcmp(opt, "-t")) {
            if (!parse_long(val, 0, 4096, &v)) return msg(BENCH_USAGE, "bad thread count '%s' (0..4096)", val);
            o->threads = (int)v;
        } else if (!strcmp(opt, "--warmup")) {
            if (!parse_long(val, 0, 100000000, &v)) return msg(BENCH_USAGE, "bad --warmup '%s': expected runs >= 0", val);
            o->warmup = v;
        } else if (!strcmp(opt, "--iterations")) {
            if (!parse_long(val, 1, 100000000, &v))
                return msg(BENCH_USAGE, "bad --iterations '%s': expected a count >= 1", val);
            o->iterations = v;
        } else if (!strcmp(opt, "--duration")) {
            char *end;
            errno = 0;
            double d = strtod(val, &end);
            if (errno || end == val || *end || !(d > 0) || d > 1e6)
                return msg(BENCH_USAGE, "bad --duration '%s': expected seconds > 0", val);
            o->duration = d;
        } else if (!strcmp(opt, "--export-profile")) {
            if (!*val) return msg(BENCH_USAGE, "--export-profile needs a file name");
            o->export_profile = val;
        } else if (!strcmp(opt, "--export-output")) {
            if (!*val) return msg(BENCH_USAGE, "--export-output needs a file name");
            o->export_output = val;
        } else if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(a, "--profile")) {
            o->profile = true;
        } else if (a[0] == '-' && a[1]) {
            return msg(BENCH_USAGE, "unknown option '%s' (see `kiln help bench`)", a);
        } else if (!o->model_path) {
            o->model_path = a;
        } else {
            return msg(BENCH_USAGE, "unexpected argument '%s' (one MODEL only)", a);
        }
    }
    if (!o->model_path) return msg(BENCH_USAGE, "no MODEL given (see `kiln help bench`)");
    return BENCH_OK;
}

/* ---- inputs --------------------------------------------------------------------------- */

typedef struct bench_input {
    char *name;
    kiln_dtype dtype;
    int ndim;
    int64_t dims[KILN_MAX_DIMS];
    const char *file;  /* NULL: random */
    core_tensor *t;    /* from file */
    void *random;      /* random data (owned) */
    size_t nbytes;
    const void *data;
} bench_input;

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64: fixed seed, so every run of the tool sees the same inputs */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float rng_unit(uint64_t *s) { return (float)(rng_next(s) >> 40) * (1.0f / 16777216.0f); }

static bool name_has_mask(const char *name)
{
    for (const char *p = name; *p; p++)
        if (!strncasecmp(p, "mask", 4)) return true;
    return false;
}

/* Random data for in->dtype over in->dims into in->random. */
static int make_random(bench_input *in, uint64_t *seed)
{
    int64_t n = core_shape_numel(in->ndim, in->dims);
    size_t esz = kiln_dtype_size(in->dtype);
    if (n < 0 || esz == 0 || (uint64_t)n > SIZE_MAX / esz / 2)
        return msg(BENCH_USAGE, "input '%s': shape too large", in->name);
    in->nbytes = (size_t)n * esz;
    in->random = malloc(in->nbytes ? in->nbytes : 1);
    if (!in->random) return msg(BENCH_FAIL, "input '%s': out of memory for %zu bytes", in->name, in->nbytes);
    bool mask = name_has_mask(in->name);
    void *d = in->random;
    for (int64_t i = 0; i < n; i++) {
        int64_t iv = mask ? 1 : (int64_t)(rng_next(seed) % 100);
        switch (in->dtype) {
        case KILN_DTYPE_FLOAT: ((float *)d)[i] = rng_unit(seed); break;
        case KILN_DTYPE_DOUBLE: ((double *)d)[i] = rng_unit(seed); break;
        case KILN_DTYPE_FLOAT16: ((uint16_t *)d)[i] = core_f32_to_f16(rng_unit(seed)); break;
        case KILN_DTYPE_BFLOAT16: ((uint16_t *)d)[i] = core_f32_to_bf16(rng_unit(seed)); break;
        case KILN_DTYPE_COMPLEX64:
            ((float *)d)[2 * i] = rng_unit(seed);
            ((float *)d)[2 * i + 1] = rng_unit(seed);
            break;
        case KILN_DTYPE_INT8: ((int8_t *)d)[i] = (int8_t)iv; break;
        case KILN_DTYPE_UINT8: ((uint8_t *)d)[i] = (uint8_t)iv; break;
        case KILN_DTYPE_INT16: ((int16_t *)d)[i] = (int16_t)iv; break;
        case KILN_DTYPE_UINT16: ((uint16_t *)d)[i] = (uint16_t)iv; break;
        case KILN_DTYPE_INT32: ((int32_t *)d)[i] = (int32_t)iv; break;
        case KILN_DTYPE_UINT32: ((uint32_t *)d)[i] = (uint32_t)iv; break;
        case KILN_DTYPE_INT64: ((int64_t *)d)[i] = iv; break;
        case KILN_DTYPE_UINT64: ((uint64_t *)d)[i] = (uint64_t)iv; break;
        case KILN_DTYPE_BOOL: ((uint8_t *)d)[i] = mask ? 1 : (uint8_t)(rng_next(seed) & 1); break;
        default:
            return msg(BENCH_USAGE, "input '%s' is %s: no random data for that type; pass --input %s=FILE", in->name,
                       kiln_dtype_name(in->dtype), in->name);
        }
    }
    in->data = in->random;
    return BENCH_OK;
}

static void dims_text(int ndim, const int64_t *dims, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = 0;
    if (ndim == 0) snprintf(buf, size, "scalar");
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? "x" : "", (long long)dims[i]);
}

/* Decide every model input's data: a file from --input, else random data of the declared
 * shape with dynamic dims from --shapes (or 1). */
static int prepare_inputs(const kiln_model *model, const bench_opts *o, bench_input **out, int *n_out)
{
    int n = kiln_model_input_count(model);
    bench_input *ins = calloc((size_t)n + 1, sizeof *ins);
    if (!ins) return msg(BENCH_FAIL, "out of memory");
    *out = ins;
    *n_out = n;
    char list[1024];
    cli_input_names_text(model, list, sizeof list);
    for (int k = 0; k < o->n_shapes; k++)
        if (!cli_model_has_input(model, o->shapes[k].name))
            return msg(BENCH_USAGE, "--shapes: model has no input '%s' (inputs: %s)", o->shapes[k].name, list);
    /* split --input specs once the names are known */
    char **spec_names = calloc((size_t)o->n_input_specs + 1, sizeof *spec_names);
    const char **spec_files = calloc((size_t)o->n_input_specs + 1, sizeof *spec_files);
    int rc = BENCH_OK;
    if (!spec_names || !spec_files) rc = msg(BENCH_FAIL, "out of memory");
    for (int k = 0; !rc && k < o->n_input_specs; k++) {
        if (cli_input_spec_split(model, o->input_specs[k], &spec_names[k], &spec_files[k]) != KILN_OK)
            rc = msg(BENCH_FAIL, "%s", core_error_text());
        else if (!cli_model_has_input(model, spec_names[k]))
            rc = msg(BENCH_USAGE, "--input: model has no input '%s' (inputs: %s)", spec_names[k], list);
        for (int j = 0; !rc && j < k; j++)
            if (!strcmp(spec_names[j], spec_names[k])) rc = msg(BENCH_USAGE, "input '%s' given twice", spec_names[k]);
    }
    uint64_t seed = 0x6b696c6e; /* "kiln" */
    for (int i = 0; !rc && i < n; i++) {
        kiln_tensor_info ti;
        if (kiln_model_input_info(model, i, &ti) != KILN_OK) {
            rc = msg(BENCH_FAIL, "%s", kiln_last_error());
            break;
        }
        bench_input *in = &ins[i];
        if (!(in->name = strdup(ti.name))) {
            rc = msg(BENCH_FAIL, "out of memory");
            break;
        }
        in->dtype = ti.dtype;
        for (int k = 0; k < o->n_input_specs; k++)
            if (!strcmp(spec_names[k], ti.name)) in->file = spec_files[k];
        const shape_spec *sp = NULL;
        for (int k = 0; k < o->n_shapes; k++)
            if (!strcmp(o->shapes[k].name, ti.name)) sp = &o->shapes[k];
        char decl[512];
        cli_info_shape_text(&ti, decl, sizeof decl);
        if (in->file) {
            if (cli_tensor_load_file(in->file, &in->t) != KILN_OK) {
                rc = msg(BENCH_FAIL, "input '%s': %s", in->name, core_error_text());
                break;
            }
            if (ti.dtype != KILN_DTYPE_UNDEFINED && ti.dtype != in->t->dtype) {
                rc = msg(BENCH_USAGE, "input '%s': %s holds %s, the model expects %s", in->name, in->file,
                         kiln_dtype_name(in->t->dtype), kiln_dtype_name(ti.dtype));
                break;
            }
            in->dtype = in->t->dtype;
            in->ndim = in->t->ndim;
            memcpy(in->dims, in->t->dims, sizeof(int64_t) * (size_t)in->t->ndim);
            if (sp && (sp->ndim != in->ndim || memcmp(sp->dims, in->dims, sizeof(int64_t) * (size_t)sp->ndim))) {
                char a[256], b[256];
                dims_text(sp->ndim, sp->dims, a, sizeof a);
                dims_text(in->ndim, in->dims, b, sizeof b);
                rc = msg(BENCH_USAGE, "input '%s': --shapes says %s but %s holds %s", in->name, a, in->file, b);
                break;
            }
            in->data = in->t->data;
            in->nbytes = in->t->nbytes;
            continue;
        }
        if (ti.dtype == KILN_DTYPE_UNDEFINED) {
            rc = msg(BENCH_USAGE, "input '%s' has no declared type: pass --input %s=FILE", in->name, in->name);
            break;
        }
        if (sp) {
            if (ti.ndim >= 0 && sp->ndim != ti.ndim) {
                rc = msg(BENCH_USAGE, "--shapes %s: %d dims given, the input has %d (%s)", in->name, sp->ndim, ti.ndim,
                         decl);
                break;
            }
            for (int d = 0; d < sp->ndim && ti.ndim >= 0; d++)
                if (ti.dims[d] >= 0 && ti.dims[d] != sp->dims[d]) {
                    rc = msg(BENCH_USAGE, "--shapes %s: dim %d is %lld, the model fixes it at %lld (%s)", in->name, d,
                             (long long)sp->dims[d], (long long)ti.dims[d], decl);
                    break;
                }
            if (rc) break;
            in->ndim = sp->ndim;
            memcpy(in->dims, sp->dims, sizeof(int64_t) * (size_t)sp->ndim);
        } else {
            if (ti.ndim < 0) {
                rc = msg(BENCH_USAGE, "input '%s' has an unknown rank: pass --shapes %s:DIMS or --input %s=FILE",
                         in->name, in->name, in->name);
                break;
            }
            in->ndim = ti.ndim;
            for (int d = 0; d < ti.ndim; d++) in->dims[d] = ti.dims[d] >= 0 ? ti.dims[d] : 1;
        }
        rc = make_random(in, &seed);
    }
    if (spec_names)
        for (int k = 0; k < o->n_input_specs; k++) free(spec_names[k]);
    free(spec_names);
    free(spec_files);
    return rc;
}

static void free_inputs(bench_input *ins, int n)
{
    if (!ins) return;
    for (int i = 0; i < n; i++) {
        free(ins[i].name);
        free(ins[i].random);
        if (ins[i].t) core_tensor_destroy(ins[i].t);
    }
    free(ins);
}

/* ---- measuring ------------------------------------------------------------------------ */

typedef struct progress {
    const char *phase;
    double start, last;
    bool tty;
    bool shown;
} progress;

static void progress_begin(progress *p, const char *phase)
{
    p->phase = phase;
    p->start = p->last = now_s();
    p->tty = isatty(2);
    p->shown = false;
}

/* Shown once a phase has run 3 s: every second on a terminal (overwriting), else every 10 s. */
static void progress_tick(progress *p, long runs, long target_runs, double target_s)
{
    double t = now_s(), el = t - p->start;
    if (el < 3.0 || t - p->last < (p->tty ? 1.0 : 10.0)) return;
    p->last = t;
    p->shown = true;
    char goal[96] = "";
    if (target_runs > 0 && target_s > 0)
        snprintf(goal, sizeof goal, " (target %ld runs and %.0f s)", target_runs, target_s);
    else if (target_runs > 0)
        snprintf(goal, sizeof goal, " of %ld", target_runs);
    else if (target_s > 0)
        snprintf(goal, sizeof goal, " (target %.0f s)", target_s);
    fprintf(stderr, "%skiln bench: %s: %ld runs%s, %.1f s, %.1f ms/run%s", p->tty ? "\r" : "", p->phase, runs, goal, el,
            runs ? el * 1e3 / (double)runs : 0.0, p->tty ? "   " : "\n");
    fflush(stderr);
}

static void progress_end(progress *p)
{
    if (p->shown && p->tty) fputc('\n', stderr);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Percentile q in [0,1] of sorted v by linear interpolation between closest ranks (NumPy's
 * default), so the median of an even count is the mean of the middle two. */
static double percentile(const double *v, long n, double q)
{
    if (n <= 0) return 0;
    double pos = q * (double)(n - 1);
    long lo = (long)floor(pos);
    long hi = lo + 1 < n ? lo + 1 : lo;
    return v[lo] + (v[hi] - v[lo]) * (pos - (double)lo);
}

typedef struct layer_row {
    const char *name;
    const char *op_type;
    double total_ms;
    int64_t count;
    int index;
} layer_row;

typedef struct op_row {
    const char *op_type;
    double total_ms;
    int layers;
} op_row;

static int cmp_layer(const void *a, const void *b)
{
    const layer_row *x = a, *y = b;
    if (x->total_ms != y->total_ms) return x->total_ms > y->total_ms ? -1 : 1;
    return x->index - y->index;
}

static int cmp_op(const void *a, const void *b)
{
    const op_row *x = a, *y = b;
    if (x->total_ms != y->total_ms) return x->total_ms > y->total_ms ? -1 : 1;
    return strcmp(x->op_type, y->op_type);
}

typedef struct profile {
    layer_row *layers;
    int n_layers;
    op_row *ops;
    int n_ops;
    double total_ms; /* sum over layers and runs */
    long runs;
} profile;

static int collect_profile(kiln_context *ctx, long runs, profile *p)
{
    int n = kiln_context_layer_count(ctx);
    memset(p, 0, sizeof *p);
    p->runs = runs;
    p->layers = calloc((size_t)n + 1, sizeof *p->layers);
    p->ops = calloc((size_t)n + 1, sizeof *p->ops);
    if (!p->layers || !p->ops) return msg(BENCH_FAIL, "out of memory");
    for (int i = 0; i < n; i++) {
        kiln_layer_time lt;
        if (kiln_context_layer_time(ctx, i, &lt) != KILN_OK) return msg(BENCH_FAIL, "profile: %s", kiln_last_error());
        layer_row *r = &p->layers[p->n_layers++];
        r->name = lt.name;
        r->op_type = lt.op_type ? lt.op_type : "?";
        r->total_ms = lt.total_ms;
        r->count = lt.count;
        r->index = i;
        p->total_ms += lt.total_ms;
        int j = 0;
        while (j < p->n_ops && strcmp(p->ops[j].op_type, r->op_type)) j++;
        if (j == p->n_ops) p->ops[p->n_ops++].op_type = r->op_type;
        p->ops[j].total_ms += lt.total_ms;
        p->ops[j].layers++;
    }
    qsort(p->layers, (size_t)p->n_layers, sizeof *p->layers, cmp_layer);
    qsort(p->ops, (size_t)p->n_ops, sizeof *p->ops, cmp_op);
    return BENCH_OK;
}

static void free_profile(profile *p)
{
    free(p->layers);
    free(p->ops);
}

static double pct(double part, double total) { return total > 0 ? 100.0 * part / total : 0.0; }

static void print_profile(const profile *p)
{
    double per_run = p->runs ? p->total_ms / (double)p->runs : 0;
    printf("\nper-layer profile over %ld runs (sum of layers: %.3f ms/run)\n", p->runs, per_run);
    printf("%5s %7s %10s %10s  %-22s %s\n", "rank", "%", "total ms", "avg ms", "op type", "name");
    for (int i = 0; i < p->n_layers; i++) {
        const layer_row *r = &p->layers[i];
        char nm[32];
        const char *name = r->name;
        if (!name || !*name) {
            snprintf(nm, sizeof nm, "#%d", r->index);
            name = nm;
        }
        printf("%5d %6.2f%% %10.3f %10.4f  %-22s %s\n", i + 1, pct(r->total_ms, p->total_ms), r->total_ms,
               r->count ? r->total_ms / (double)r->count : 0.0, r->op_type, name);
    }
    printf("\nper-op-type summary\n");
    printf("%-22s %7s %7s %10s %12s\n", "op type", "layers", "%", "total ms", "ms/run");
    for (int i = 0; i < p->n_ops; i++) {
        const op_row *r = &p->ops[i];
        printf("%-22s %7d %6.2f%% %10.3f %12.4f\n", r->op_type, r->layers, pct(r->total_ms, p->total_ms), r->total_ms,
               p->runs ? r->total_ms / (double)p->runs : 0.0);
    }
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* JSON numbers cannot be inf/nan. */
static void json_num(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.6g", v);
    else
        fputs("null", f);
}

static void json_profile(FILE *f, const profile *p, const char *indent)
{
    fprintf(f, "{\n%s  \"runs\": %ld,\n%s  \"layer_sum_ms_per_run\": ", indent, p->runs, indent);
    json_num(f, p->runs ? p->total_ms / (double)p->runs : 0);
    fprintf(f, ",\n%s  \"layers\": [", indent);
    for (int i = 0; i < p->n_layers; i++) {
        const layer_row *r = &p->layers[i];
        fprintf(f, "%s\n%s    {\"index\": %d, \"name\": ", i ? "," : "", indent, r->index);
        json_string(f, r->name);
        fprintf(f, ", \"op_type\": ");
        json_string(f, r->op_type);
        fprintf(f, ", \"total_ms\": ");
        json_num(f, r->total_ms);
        fprintf(f, ", \"avg_ms\": ");
        json_num(f, r->count ? r->total_ms / (double)r->count : 0.0);
        fprintf(f, ", \"count\": %lld, \"percent\": ", (long long)r->count);
        json_num(f, pct(r->total_ms, p->total_ms));
        fputc('}', f);
    }
    fprintf(f, "\n%s  ],\n%s  \"op_types\": [", indent, indent);
    for (int i = 0; i < p->n_ops; i++) {
        const op_row *r = &p->ops[i];
        fprintf(f, "%s\n%s    {\"op_type\": ", i ? "," : "", indent);
        json_string(f, r->op_type);
        fprintf(f, ", \"layers\": %d, \"total_ms\": ", r->layers);
        json_num(f, r->total_ms);
        fprintf(f, ", \"ms_per_run\": ");
        json_num(f, p->runs ? r->total_ms / (double)p->runs : 0.0);
        fprintf(f, ", \"percent\": ");
        json_num(f, pct(r->total_ms, p->total_ms));
        fputc('}', f);
    }
    fprintf(f, "\n%s  ]\n%s}", indent, indent);
}

typedef struct results {
    int threads;
    double model_load_ms, context_ms, first_run_ms;
    long warmup_runs;
    double warmup_s;
    long iterations;
    double timed_s;
    double min, max, mean, median, stddev, p90, p95, p99;
    double throughput;
    double peak_rss_mb;
    size_t activation_bytes;
} results;

static void print_text(const bench_opts *o, const results *r, const bench_input *ins, int n_ins)
{
    printf("model        %s\n", o->model_path);
    for (int i = 0; i < n_ins; i++) {
        char shp[512];
        dims_text(ins[i].ndim, ins[i].dims, shp, sizeof shp);
        printf("%-12s %s %s [%s] %s\n", i ? "" : "inputs", ins[i].name, kiln_dtype_name(ins[i].dtype), shp,
               ins[i].file ? ins[i].file : "(random)");
    }
    printf("threads      %d\n", r->threads);
    printf("load         %.3f ms (model %.3f ms + context %.3f ms)\n", r->model_load_ms + r->context_ms,
           r->model_load_ms, r->context_ms);
    printf("first run    %.3f ms\n", r->first_run_ms);
    printf("warmup       %ld runs in %.3f s\n", r->warmup_runs, r->warmup_s);
    printf("timed        %ld runs in %.3f s\n", r->iterations, r->timed_s);
    printf("latency ms   min %.3f  median %.3f  mean %.3f  p90 %.3f  p99 %.3f  max %.3f  (stddev %.3f)\n", r->min,
           r->median, r->mean, r->p90, r->p99, r->max, r->stddev);
    printf("throughput   %.2f inferences/s\n", r->throughput);
    printf("peak RSS     %.1f MB\n", r->peak_rss_mb);
    printf("activations  %.2f MB (planned arena)\n", (double)r->activation_bytes / (1024.0 * 1024.0));
}

static void print_json(const bench_opts *o, const results *r, const bench_input *ins, int n_ins, const profile *p)
{
    printf("{\n  \"model\": ");
    json_string(stdout, o->model_path);
    printf(",\n  \"kiln_version\": ");
    json_string(stdout, kiln_version_string());
    printf(",\n  \"inputs\": [");
    for (int i = 0; i < n_ins; i++) {
        printf("%s{\"name\": ", i ? ", " : "");
        json_string(stdout, ins[i].name);
        printf(", \"dtype\": ");
        json_string(stdout, kiln_dtype_name(ins[i].dtype));
        printf(", \"shape\": [");
        for (int d = 0; d < ins[i].ndim; d++) printf("%s%lld", d ? ", " : "", (long long)ins[i].dims[d]);
        printf("], \"source\": ");
        json_string(stdout, ins[i].file ? ins[i].file : "random");
        printf("}");
    }
    printf("],\n  \"threads\": %d", r->threads);
    struct {
        const char *key;
        double v;
    } nums[] = {
        {"load_ms", r->model_load_ms + r->context_ms},
        {"model_load_ms", r->model_load_ms},
        {"context_create_ms", r->context_ms},
        {"first_run_ms", r->first_run_ms},
        {"warmup_s", r->warmup_s},
        {"timed_s", r->timed_s},
        {"min_ms", r->min},
        {"median_ms", r->median},
        {"mean_ms", r->mean},
        {"stddev_ms", r->stddev},
        {"p90_ms", r->p90},
        {"p95_ms", r->p95},
        {"p99_ms", r->p99},
        {"max_ms", r->max},
        {"throughput", r->throughput},
        {"peak_rss_mb", r->peak_rss_mb},
        {"activation_mb", (double)r->activation_bytes / (1024.0 * 1024.0)},
    };
    printf(",\n  \"warmup_iterations\": %ld,\n  \"iterations\": %ld", r->warmup_runs, r->iterations);
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        printf(",\n  \"%s\": ", nums[i].key);
        json_num(stdout, nums[i].v);
    }
    printf(",\n  \"activation_bytes\": %zu", r->activation_bytes);
    if (p) {
        printf(",\n  \"profile\": ");
        json_profile(stdout, p, "  ");
    }
    printf("\n}\n");
}

/* Peak resident set of this process in MiB. VmHWM first: ru_maxrss survives execve, so a
 * process started by vfork/posix_spawn (Python's subprocess) reports its parent's peak. */
static double peak_rss_mb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f) {
        char line[256];
        long long kb = -1;
        while (fgets(line, sizeof line, f))
            if (!strncmp(line, "VmHWM:", 6)) {
                kb = strtoll(line + 6, NULL, 10);
                break;
            }
        fclose(f);
        if (kb >= 0) return (double)kb / 1024.0;
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) return (double)ru.ru_maxrss / 1024.0; /* Linux: KiB */
    return 0;
}

static int run_once(kiln_context *ctx, double *ms)
{
    double t0 = now_s();
    if (kiln_context_run(ctx) != KILN_OK) return msg(BENCH_FAIL, "run failed: %s", kiln_last_error());
    *ms = (now_s() - t0) * 1e3;
    return BENCH_OK;
}

/* --export-output: each output of the last run as .npy (the first to path, the others to path
 * with _<name> inserted before the extension; '/' and ':' in names become '_'). */
static int export_outputs(const kiln_model *model, kiln_context *ctx, const char *path)
{
    size_t plen = strlen(path);
    const char *dot = plen > 4 && !strcmp(path + plen - 4, ".npy") ? path + plen - 4 : path + plen;
    for (int k = 0; k < kiln_model_output_count(model); k++) {
        kiln_tensor_info info;
        kiln_tensor_view v;
        if (kiln_model_output_info(model, k, &info) || kiln_context_get_output(ctx, info.name, &v))
            return msg(BENCH_FAIL, "--export-output: %s", kiln_last_error());
        char file[4096];
        if (k == 0) snprintf(file, sizeof file, "%s", path);
        else {
            char nm[256];
            snprintf(nm, sizeof nm, "%s", info.name);
            for (char *c = nm; *c; c++)
                if (*c == '/' || *c == ':') *c = '_';
            snprintf(file, sizeof file, "%.*s_%s.npy", (int)(dot - path), path, nm);
        }
        if (npy_write_file(file, v.dtype, v.ndim, v.dims, v.data, v.nbytes) != KILN_OK)
            return msg(BENCH_FAIL, "--export-output %s: %s", file, kiln_last_error());
    }
    return BENCH_OK;
}

int cli_bench_main(int argc, char **argv)
{
    bench_opts o;
    kiln_model *model = NULL;
    kiln_context *ctx = NULL;
    bench_input *ins = NULL;
    int n_ins = 0;
    double *lat = NULL;
    profile prof = {0};
    results r = {0};
    FILE *export_file = NULL;
    int rc = parse_args(argc, argv, &o);
    if (rc) goto done;
    bool want_profile = o.profile || o.export_profile;
    if (o.export_profile && !(export_file = fopen(o.export_profile, "w"))) { /* fail before a long run */
        rc = msg(BENCH_FAIL, "cannot write %s: %s", o.export_profile, strerror(errno));
        goto done;
    }

    /* load time: from the start of loading until the first inference can run */
    kiln_load_options lo = {o.threads, 0};
    double t0 = now_s();
    if (kiln_model_load_file(o.model_path, &lo, &model) != KILN_OK) {
        rc = msg(BENCH_FAIL, "%s", kiln_last_error());
        goto done;
    }
    double t1 = now_s();
    if (kiln_context_create(model, &ctx) != KILN_OK) {
        rc = msg(BENCH_FAIL, "%s", kiln_last_error());
        goto done;
    }
    double t2 = now_s();
    r.model_load_ms = (t1 - t0) * 1e3;
    r.context_ms = (t2 - t1) * 1e3;
    r.threads = o.threads > 0 ? o.threads : core_physical_cores();

    if ((rc = prepare_inputs(model, &o, &ins, &n_ins))) goto done;
    for (int i = 0; i < n_ins; i++) {
        kiln_status st = kiln_context_set_input(ctx, ins[i].name, ins[i].dtype, ins[i].ndim, ins[i].dims,
                                                ins[i].data, ins[i].nbytes);
        if (st != KILN_OK) { /* a file or --shapes that does not fit the model is a usage error */
            rc = msg(st == KILN_ERR_SHAPE || st == KILN_ERR_DTYPE ? BENCH_USAGE : BENCH_FAIL, "%s", kiln_last_error());
            goto done;
        }
    }

    /* the first run plans the activation arena: reported on its own, not as warmup */
    if ((rc = run_once(ctx, &r.first_run_ms))) goto done;
    r.activation_bytes = kiln_context_activation_bytes(ctx);

    progress pg;
    progress_begin(&pg, "warmup");
    double ws = now_s(), el = 0, ms;
    for (long n = 0;; n++) {
        el = now_s() - ws;
        bool more;
        if (o.warmup >= 0)
            more = n < o.warmup;
        else
            more = n < 1 || el < BENCH_WARMUP_MIN_S || (n < BENCH_WARMUP_MIN_RUNS && el < BENCH_WARMUP_MAX_S);
        if (!more) {
            r.warmup_runs = n;
            break;
        }
        if ((rc = run_once(ctx, &ms))) goto done;
        progress_tick(&pg, n + 1, o.warmup, o.warmup >= 0 ? 0 : BENCH_WARMUP_MIN_S);
    }
    r.warmup_s = el;
    progress_end(&pg);

    if (want_profile && kiln_context_set_profiling(ctx, 1) != KILN_OK) {
        rc = msg(BENCH_FAIL, "%s", kiln_last_error());
        goto done;
    }
    long min_iter;
    double min_s;
    if (o.iterations < 0 && o.duration < 0) {
        min_iter = BENCH_DEFAULT_ITERATIONS;
        min_s = BENCH_DEFAULT_DURATION_S;
    } else {
        min_iter = o.iterations > 0 ? o.iterations : 1;
        min_s = o.duration > 0 ? o.duration : 0;
    }
    long cap = min_iter > 64 ? min_iter : 64, n = 0;
    lat = malloc(sizeof *lat * (size_t)cap);
    if (!lat) {
        rc = msg(BENCH_FAIL, "out of memory");
        goto done;
    }
    progress_begin(&pg, "timing");
    double ts = now_s();
    for (;;) {
        el = now_s() - ts;
        if (n >= min_iter && el >= min_s) break;
        if (n == cap) {
            if (cap >= BENCH_MAX_SAMPLES) break;
            double *nl = realloc(lat, sizeof *lat * (size_t)cap * 2);
            if (!nl) break; /* keep what we have */
            lat = nl;
            cap *= 2;
        }
        if ((rc = run_once(ctx, &lat[n]))) goto done;
        n++;
        progress_tick(&pg, n, min_iter, min_s);
    }
    progress_end(&pg);
    r.timed_s = el;
    r.iterations = n;

    double sum = 0, sq = 0;
    for (long i = 0; i < n; i++) sum += lat[i];
    r.mean = sum / (double)n;
    for (long i = 0; i < n; i++) sq += (lat[i] - r.mean) * (lat[i] - r.mean);
    r.stddev = n > 1 ? sqrt(sq / (double)(n - 1)) : 0;
    qsort(lat, (size_t)n, sizeof *lat, cmp_double);
    r.min = lat[0];
    r.max = lat[n - 1];
    r.median = percentile(lat, n, 0.5);
    r.p90 = percentile(lat, n, 0.9);
    r.p95 = percentile(lat, n, 0.95);
    r.p99 = percentile(lat, n, 0.99);
    r.throughput = r.timed_s > 0 ? (double)n / r.timed_s : 0;
    r.peak_rss_mb = peak_rss_mb();

    if (want_profile && (rc = collect_profile(ctx, n, &prof))) goto done;
    if (o.export_output && (rc = export_outputs(model, ctx, o.export_output))) goto done;
    if (o.export_profile) {
        FILE *f = export_file;
        export_file = NULL;
        fprintf(f, "{\n  \"model\": ");
        json_string(f, o.model_path);
        fprintf(f, ",\n  \"threads\": %d,\n  \"profile\": ", r.threads);
        json_profile(f, &prof, "  ");
        fprintf(f, "\n}\n");
        if (fclose(f) != 0) {
            rc = msg(BENCH_FAIL, "cannot write %s: %s", o.export_profile, strerror(errno));
            goto done;
        }
    }
    if (o.json) {
        print_json(&o, &r, ins, n_ins, o.profile ? &prof : NULL);
    } else {
        print_text(&o, &r, ins, n_ins);
        if (o.profile) print_profile(&prof);
        if (o.export_profile) printf("\nprofile written to %s\n", o.export_profile);
    }
    rc = BENCH_OK;

done:
    if (export_file) { /* not written: leave no half-made file behind */
        fclose(export_file);
        remove(o.export_profile);
    }
    free_profile(&prof);
    free(lat);
    if (ctx) kiln_context_destroy(ctx);
    free_inputs(ins, n_ins);
    if (model) kiln_model_destroy(model);
    for (int i = 0; i < o.n_shapes; i++) free(o.shapes[i].name);
    free(o.shapes);
    free(o.input_specs);
    return rc;
}
