/* test_copy_nhwc.c — the fast data-movement kernels of src/cpu/copy.c on the shapes of
 * channels-last networks (few-channel interleave / de-interleave transposes at region borders,
 * Concat / Split / Slice on the last axis) against the reference kernels: one-node models of
 * tests/data/cpu_misc run with fast kernels off, then on with every microkernel ISA and 1 and 2
 * threads; every output must match bit for bit. Run from the repository root. Prints
 * "N passed, M failed". */
#include "core/threadpool.h"
#include "cpu/cpu.h"
#include "onnx/onnx.h"
#include "ops/ops.h"
#include "opt/opt.h"
#include "runtime/runtime.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MDIR "tests/data/cpu_misc/"
#define MAX_IO 8

static int passed, failed;

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint32_t urand32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

static void check(bool ok, const char *what)
{
    if (ok) passed++;
    else {
        failed++;
        printf("FAIL %s\n", what);
    }
}

static ir_model *load(const char *name, bool fast)
{
    char path[512];
    snprintf(path, sizeof path, MDIR "%s", name);
    ops_set_fast_kernels(fast);
    ir_model *m = NULL;
    if (onnx_model_load_file(path, &m) || opt_prepare_model_ex(m, false)) {
        ir_model_destroy(m);
        m = NULL;
    }
    ops_set_fast_kernels(true);
    return m;
}

/* A float tensor of random bit patterns that are not NaN (so bit equality is meaningful and
 * no kernel may canonicalise anything). */
static core_value *f_input(int nd, const int64_t *dims)
{
    core_tensor *t = core_tensor_create(KILN_DTYPE_FLOAT, nd, dims);
    for (int64_t i = 0; t && i < t->numel; i++) {
        uint32_t u = urand32();
        if ((u & 0x7F800000u) == 0x7F800000u) u &= 0xBFFFFFFFu;
        ((uint32_t *)t->data)[i] = u;
    }
    return t ? core_value_from_tensor(t) : NULL;
}

static core_value *i_input(int n, const int64_t *v)
{
    int64_t d = n;
    core_tensor *t = core_tensor_create(KILN_DTYPE_INT64, 1, &d);
    if (t) memcpy(t->data, v, sizeof(int64_t) * (size_t)n);
    return t ? core_value_from_tensor(t) : NULL;
}

static bool same(const core_value *a, const core_value *b)
{
    if (!a || !b || a->kind != CORE_VALUE_TENSOR || b->kind != CORE_VALUE_TENSOR) return false;
    const core_tensor *x = a->tensor, *y = b->tensor;
    if (x->dtype != y->dtype || x->ndim != y->ndim || x->numel != y->numel) return false;
    for (int d = 0; d < x->ndim; d++)
        if (x->dims[d] != y->dims[d]) return false;
    return x->numel == 0 || !memcmp(x->data, y->data, (size_t)x->numel * core_dtype_size(x->dtype));
}

/* Runs model `name` on inputs in[0..n_in) (reference, then fast on every ISA with 1 and 2
 * threads) and compares all outputs bit for bit. Takes ownership of the inputs. */
static void run_case(const char *name, const char *what, int n_in, core_value **in, core_threadpool *pool2)
{
    ir_model *ref = load(name, false), *fast = load(name, true);
    core_value *ro[MAX_IO] = {0};
    bool ok = ref && fast;
    for (int i = 0; i < n_in; i++) ok = ok && in[i];
    if (ok) ok = !rt_graph_run(ref->graph, in, ro);
    if (!ok) {
        printf("FAIL %s %s: reference run: %s\n", name, what, core_error_text());
        failed++;
    }
    int n_out = ok ? ref->graph->n_outputs : 0;
    int n_isa = 0;
    const char *const *isas = cpu_ukernels_isas(&n_isa);
    for (int isa = 0; ok && isa < n_isa; isa++) {
        cpu_ukernels_force_isa(isas[isa]);
        for (int th = 0; th < 2; th++) {
            core_value *o[MAX_IO] = {0};
            bool good = !rt_graph_run_pool(fast->graph, th ? pool2 : NULL, in, o);
            for (int k = 0; good && k < n_out; k++) good = same(ro[k], o[k]);
            char w[400];
            snprintf(w, sizeof w, "%s %s [%s, %d thr]", name, what, cpu_ukernels_get()->isa, th + 1);
            check(good, w);
            for (int k = 0; k < MAX_IO; k++) core_value_release(o[k]);
        }
    }
    cpu_ukernels_force_isa(NULL);
    for (int k = 0; k < MAX_IO; k++) core_value_release(ro[k]);
    for (int i = 0; i < n_in; i++) core_value_release(in[i]);
    ir_model_destroy(ref);
    ir_model_destroy(fast);
}

static const char *shape_str(int nd, const int64_t *d, char *buf, size_t n)
{
    return core_shape_str(nd, d, buf, n);
}

static void one_input(const char *model, int nd, const int64_t *dims, core_threadpool *pool2)
{
    char w[128];
    core_value *in[1] = {f_input(nd, dims)};
    run_case(model, shape_str(nd, dims, w, sizeof w), 1, in, pool2);
}

/* ---- Transpose: NCHW <-> NHWC with few channels, and other permutations near the paths ---- */

static void test_transpose(core_threadpool *pool2)
{
    static const int64_t nchw[][4] = {
        {1, 3, 640, 640}, {1, 3, 224, 224}, {2, 3, 7, 9},  {1, 3, 1, 1},   {1, 3, 4, 4},  {1, 3, 5, 3},
        {1, 1, 33, 17},   {2, 2, 16, 17},   {1, 4, 31, 9}, {1, 5, 16, 16}, {2, 8, 9, 7},  {1, 16, 12, 12},
        {1, 17, 20, 20},  {1, 3, 2, 200},   {3, 3, 17, 1}, {1, 64, 40, 40}, {1, 255, 20, 20}, {1, 3, 0, 5},
    };
    for (size_t i = 0; i < sizeof nchw / sizeof nchw[0]; i++) {
        one_input("tr_0231.onnx", 4, nchw[i], pool2); /* NCHW -> NHWC: interleave when C small */
        int64_t nhwc[4] = {nchw[i][0], nchw[i][2], nchw[i][3], nchw[i][1]};
        one_input("tr_0312.onnx", 4, nhwc, pool2); /* NHWC -> NCHW: de-interleave when C small */
    }
    static const int64_t two[][2] = {{3, 1000}, {1000, 3}, {5, 77}, {77, 5}, {16, 64}, {64, 16}, {2, 9}};
    for (size_t i = 0; i < sizeof two / sizeof two[0]; i++) one_input("tr_10.onnx", 2, two[i], pool2);
    static const int64_t three[][3] = {{3, 40, 50}, {40, 50, 3}, {2, 3, 100}};
    for (size_t i = 0; i < sizeof three / sizeof three[0]; i++) one_input("tr_201.onnx", 3, three[i], pool2);
    static const int64_t big4[][4] = {{2, 3, 5, 7}, {1, 64, 12, 3}};
    for (size_t i = 0; i < sizeof big4 / sizeof big4[0]; i++) {
        one_input("tr_0213.onnx", 4, big4[i], pool2);
        one_input("tr_rev.onnx", 4, big4[i], pool2);
    }
}

/* ---- Concat / Split / Slice on the last axis ------------------------------------------------ */

static void test_concat_split_slice(core_threadpool *pool2)
{
    static const int64_t cat[][3] = {{32, 32, 64}, {1, 2, 3}, {2, 2, 81}, {0, 17, 33}, {128, 128, 0},
                                     {256, 256, 256}, {5, 16, 1}, {100, 3, 7}};
    static const int64_t pix[][3] = {{1, 40, 40}, {2, 3, 5}, {1, 1, 1}, {1, 20, 20}, {1, 0, 4}};
    char w[160];
    for (size_t i = 0; i < sizeof cat / sizeof cat[0]; i++)
        for (size_t p = 0; p < sizeof pix / sizeof pix[0]; p++) {
            core_value *in[3];
            for (int k = 0; k < 3; k++) {
                int64_t d[4] = {pix[p][0], pix[p][1], pix[p][2], cat[i][k]};
                in[k] = f_input(4, d);
            }
            snprintf(w, sizeof w, "concat %lldx%lldx%lld x (%lld,%lld,%lld)", (long long)pix[p][0], (long long)pix[p][1],
                     (long long)pix[p][2], (long long)cat[i][0], (long long)cat[i][1], (long long)cat[i][2]);
            run_case("concat_m1.onnx", w, 3, in, pool2);
            /* the same parts split back out of [pixels, sum] on axis 1 (the last) */
            int64_t sum = cat[i][0] + cat[i][1] + cat[i][2], d2[2] = {pix[p][0] * pix[p][1] * pix[p][2], sum};
            core_value *sin[2] = {f_input(2, d2), i_input(3, cat[i])};
            snprintf(w, sizeof w, "split %lldx%lld (%lld,%lld,%lld)", (long long)d2[0], (long long)d2[1],
                     (long long)cat[i][0], (long long)cat[i][1], (long long)cat[i][2]);
            run_case("split_in.onnx", w, 2, sin, pool2);
        }
    static const int64_t eq[][4] = {{1, 160, 160, 96}, {1, 40, 40, 48}, {2, 3, 5, 3}, {1, 7, 7, 51}, {1, 1, 1, 48}};
    for (size_t i = 0; i < sizeof eq / sizeof eq[0]; i++) one_input("split_eq.onnx", 4, eq[i], pool2);
    /* Slices of YOLO detect-head tensors and of NHWC channels */
    static const struct { int64_t d[5], st, en, ax, sp; } sl[] = {
        {{1, 3, 80, 80, 85}, 4, 85, 4, 1},  {{1, 3, 80, 80, 85}, 0, 2, 4, 1}, {{1, 3, 20, 20, 85}, 2, 4, 4, 1},
        {{1, 3, 20, 20, 85}, 84, -100, 4, -1}, {{1, 3, 9, 9, 85}, 0, 85, 4, 3}, {{1, 3, 9, 9, 85}, 1, 3, 1, 1},
        {{1, 40, 40, 64, 1}, 32, 64, 3, 1}, {{1, 40, 40, 64, 1}, 0, 17, 3, 1}, {{2, 5, 5, 33, 1}, 1, 32, 3, 1},
    };
    for (size_t i = 0; i < sizeof sl / sizeof sl[0]; i++) {
        core_value *in[5] = {f_input(5, sl[i].d), i_input(1, &sl[i].st), i_input(1, &sl[i].en), i_input(1, &sl[i].ax),
                             i_input(1, &sl[i].sp)};
        char s[64];
        snprintf(w, sizeof w, "slice %s [%lld:%lld:%lld] axis %lld", shape_str(5, sl[i].d, s, sizeof s),
                 (long long)sl[i].st, (long long)sl[i].en, (long long)sl[i].sp, (long long)sl[i].ax);
        run_case("slice.onnx", w, 5, in, pool2);
    }
}

int main(void)
{
    core_threadpool *pool2 = core_threadpool_create(2);
    test_transpose(pool2);
    test_concat_split_slice(pool2);
    core_threadpool_destroy(pool2);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
