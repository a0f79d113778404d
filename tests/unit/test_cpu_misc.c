/* test_cpu_misc.c — the fast CPU kernels of src/cpu (pooling, elementwise, ElementwiseChain,
 * norms, softmax, resize, reductions, data movement) against the reference kernels: every
 * case of tests/data/cpu_misc/cases.txt (make_models.py) runs its single-node model loaded with
 * fast kernels off and on, with 1 and 2 threads, on both microkernel ISAs, and the outputs are
 * compared (see make_models.py for the tolerance rule). Run from the repository root. Prints
 * "N passed, M failed". */
#include "core/threadpool.h"
#include "cpu/cpu.h"
#include "onnx/onnx.h"
#include "opt/opt.h"
#include "runtime/runtime.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIR "tests/data/cpu_misc/"
#define MAX_IN 8

static int passed, failed;

static uint64_t rng;
static double urand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static ir_model *load(const char *name, bool fast)
{
    char path[512];
    snprintf(path, sizeof path, DIR "%s", name);
    ops_set_fast_kernels(fast);
    ir_model *m = NULL;
    if (onnx_model_load_file(path, &m) || opt_prepare_model_ex(m, false)) {
        printf("FAIL load %s (fast %d): %s\n", name, fast, core_error_text());
        ir_model_destroy(m);
        m = NULL;
    }
    ops_set_fast_kernels(true);
    return m;
}

static int parse_dims(const char *s, int64_t *dims)
{
    if (!strcmp(s, "-")) return 0;
    int n = 0;
    while (*s && n < KILN_MAX_DIMS) {
        dims[n++] = strtoll(s, (char **)&s, 10);
        if (*s == 'x') s++;
    }
    return n;
}

static const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 100.0f, -100.0f, 1e-30f, -1e-30f,
                                 -3.0f, 3.0f, 88.5f, -88.5f, 1e-3f, -2.9999f, 0.5f, 20.0f, -20.0f, 1e-40f};

/* One input from its spec (see make_models.py). */
static core_value *make_input(const char *spec)
{
    char kind[4] = {0};
    const char *colon = strchr(spec, ':');
    if (!colon || colon - spec > 2) return NULL;
    memcpy(kind, spec, (size_t)(colon - spec));
    const char *rest = colon + 1;
    int64_t dims[KILN_MAX_DIMS];
    core_tensor *t = NULL;
    if (!strcmp(kind, "i")) {
        int64_t v[64];
        int n = 0;
        while (*rest && n < 64) {
            v[n++] = strtoll(rest, (char **)&rest, 10);
            if (*rest == ',') rest++;
        }
        dims[0] = n;
        t = core_tensor_create(KILN_DTYPE_INT64, 1, dims);
        if (t) memcpy(t->data, v, sizeof(int64_t) * (size_t)n);
    } else if (!strcmp(kind, "k")) {
        t = core_tensor_create(KILN_DTYPE_FLOAT, 0, dims);
        if (t) ((float *)t->data)[0] = strtof(rest, NULL);
    } else {
        int nd = parse_dims(rest, dims);
        bool b = !strcmp(kind, "b");
        t = core_tensor_create(b ? KILN_DTYPE_BOOL : KILN_DTYPE_FLOAT, nd, dims);
        for (int64_t i = 0; t && i < t->numel; i++) {
            if (b) {
                ((uint8_t *)t->data)[i] = urand() < 0.5;
                continue;
            }
            float v = (float)(urand() * 8.0 - 4.0);
            if (!strcmp(kind, "p")) v = (float)(0.1 + urand() * 3.9);
            if ((!strcmp(kind, "e") || !strcmp(kind, "n")) && urand() < 0.3) {
                int k = (int)(urand() * (sizeof specials / sizeof specials[0]));
                v = specials[k];
                if (kind[0] == 'n' && isnan(v)) v = 1.0f;
            }
            ((float *)t->data)[i] = v;
        }
    }
    return t ? core_value_from_tensor(t) : NULL;
}

static bool fclose_enough(float got, float want, double rtol, double atol)
{
    if (isnan(want) || isnan(got)) return isnan(want) && isnan(got);
    if (got == want) return true;
    if (rtol == 0) return false;
    return fabs((double)got - want) <= rtol * fabs((double)want) + atol;
}

static bool compare(const core_tensor *ref, const core_tensor *got, double rtol, bool abs_allow,
                    char *why, size_t wn)
{
    if (!ref || !got || ref->dtype != got->dtype || ref->ndim != got->ndim) {
        snprintf(why, wn, "dtype/rank differ");
        return false;
    }
    for (int i = 0; i < ref->ndim; i++)
        if (ref->dims[i] != got->dims[i]) {
            snprintf(why, wn, "dim %d: %lld vs %lld", i, (long long)ref->dims[i], (long long)got->dims[i]);
            return false;
        }
    if (ref->dtype != KILN_DTYPE_FLOAT)
        return ref->numel == 0 || !memcmp(ref->data, got->data, (size_t)ref->numel * core_dtype_size(ref->dtype))
                   ? true
                   : (snprintf(why, wn, "%s data differ", core_dtype_name(ref->dtype)), false);
    const float *a = ref->data, *b = got->data;
    double mx = 0;
    for (int64_t i = 0; i < ref->numel; i++)
        if (isfinite(a[i]) && fabs(a[i]) > mx) mx = fabs(a[i]);
    double atol = abs_allow ? rtol * mx : 1e-30;
    for (int64_t i = 0; i < ref->numel; i++)
        if (!fclose_enough(b[i], a[i], rtol, atol)) {
            snprintf(why, wn, "element %lld: ref %.9g fast %.9g", (long long)i, a[i], b[i]);
            return false;
        }
    return true;
}

static void run_case(const char *line, ir_model *ref, ir_model *fast, core_threadpool *pool2, int lineno)
{
    char buf[1024], *save = NULL;
    snprintf(buf, sizeof buf, "%s", line);
    strtok_r(buf, " \n", &save);
    const char *tol = strtok_r(NULL, " \n", &save);
    double rtol = strtod(tol, NULL);
    bool abs_allow = tol[strlen(tol) - 1] == 'a';
    core_value *in[MAX_IN] = {0};
    int n_in = 0;
    rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)lineno * 0x2545F4914F6CDD1Dull;
    for (char *tok; (tok = strtok_r(NULL, " \n", &save)) && n_in < MAX_IN;) {
        in[n_in] = make_input(tok);
        if (!in[n_in]) {
            printf("FAIL line %d: bad input spec %s\n", lineno, tok);
            failed++;
            goto done;
        }
        n_in++;
    }
    const ir_graph *g = ref->graph;
    /* graph inputs in order, skipping initialized ones (the specs bind the others) */
    core_value *bind[MAX_IN] = {0};
    int k = 0;
    for (int i = 0; i < g->n_inputs && i < MAX_IN; i++) {
        if (g->values[g->inputs[i]].constant) continue;
        bind[i] = k < n_in ? in[k++] : NULL;
    }
    core_value *o_ref[4] = {0};
    kiln_status s_ref = rt_graph_run(ref->graph, bind, o_ref);
    char ref_err[256];
    snprintf(ref_err, sizeof ref_err, "%s", s_ref ? core_error_text() : "");
    int n_isa = 0;
    const char *const *isas = cpu_ukernels_isas(&n_isa);
    for (int isa = 0; isa < n_isa; isa++) {
        cpu_ukernels_force_isa(isas[isa]);
        for (int th = 0; th < 2; th++) {
            core_value *o_fast[4] = {0};
            kiln_status s_fast = rt_graph_run_pool(fast->graph, th ? pool2 : NULL, bind, o_fast);
            char why[640] = "";
            bool ok = s_fast == s_ref;
            if (!ok) snprintf(why, sizeof why, "status ref %d (%.250s) fast %d (%.250s)", s_ref, ref_err, s_fast,
                              s_fast ? core_error_text() : "");
            for (int o = 0; ok && !s_ref && o < g->n_outputs; o++)
                ok = compare(o_ref[o]->tensor, o_fast[o]->tensor, rtol, abs_allow, why, sizeof why);
            if (ok) passed++;
            else {
                failed++;
                printf("FAIL line %d [%s, %d thread%s]: %s: %s\n", lineno, cpu_ukernels_get()->isa,
                       th ? 2 : 1, th ? "s" : "", line, why);
            }
            for (int o = 0; o < 4; o++) core_value_release(o_fast[o]);
        }
    }
    cpu_ukernels_force_isa(NULL);
    for (int o = 0; o < 4; o++) core_value_release(o_ref[o]);
done:
    for (int i = 0; i < MAX_IN; i++) core_value_release(in[i]);
}

int main(void)
{
    FILE *f = fopen(DIR "cases.txt", "r");
    if (!f) {
        printf("cannot open " DIR "cases.txt (run from the repository root)\n0 passed, 1 failed\n");
        return 1;
    }
    core_threadpool *pool2 = core_threadpool_create(2);
    char line[1024], cur[256] = "";
    ir_model *ref = NULL, *fast = NULL;
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n') continue;
        char model[256];
        if (sscanf(line, "%255s", model) != 1) continue;
        if (strcmp(model, cur)) {
            ir_model_destroy(ref);
            ir_model_destroy(fast);
            ref = load(model, false);
            fast = load(model, true);
            snprintf(cur, sizeof cur, "%s", model);
            if (!ref || !fast) failed++;
        }
        if (!ref || !fast) continue;
        line[strcspn(line, "\n")] = 0;
        run_case(line, ref, fast, pool2, lineno);
    }
    fclose(f);
    ir_model_destroy(ref);
    ir_model_destroy(fast);
    core_threadpool_destroy(pool2);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
