/* reduce.c — fast float32 ReduceMean / ReduceSum when the reduced axes form one contiguous
 * block of dims ([outer, R, inner] after dropping size-1 dims): rows summed in double (as the
 * reference), threaded over outputs. Other axes patterns, noop_with_empty_axes and dtypes go
 * to the reference. */
#include "cpu/cpu_misc.h"
#include "ops/util.h"
#include <string.h>

#define RD_COLS 256

typedef struct rd_job {
    const cpu_misc_ukernels *uk;
    int64_t R, inner, nchunks;
    bool mean;
    const float *x;
    float *y;
} rd_job;

/* inner == 1: one output per contiguous row of R */
static void rd_rows(void *arg, int64_t b, int64_t e)
{
    const rd_job *j = arg;
    for (int64_t o = b; o < e; o++) {
        double s = j->uk->f32_sum(j->x + o * j->R, (size_t)j->R);
        j->y[o] = (float)(j->mean ? s / (double)j->R : s);
    }
}

/* inner > 1: task = (outer index, chunk of RD_COLS columns) */
static void rd_cols(void *arg, int64_t b, int64_t e)
{
    const rd_job *j = arg;
    double acc[RD_COLS];
    for (int64_t t = b; t < e; t++) {
        int64_t o = t / j->nchunks, c0 = (t % j->nchunks) * RD_COLS;
        int64_t n = j->inner - c0 < RD_COLS ? j->inner - c0 : RD_COLS;
        const float *xp = j->x + o * j->R * j->inner + c0;
        for (int64_t i = 0; i < n; i++) acc[i] = 0.0;
        for (int64_t r = 0; r < j->R; r++, xp += j->inner)
            for (int64_t i = 0; i < n; i++) acc[i] += xp[i];
        float *yp = j->y + o * j->inner + c0;
        for (int64_t i = 0; i < n; i++) yp[i] = (float)(j->mean ? acc[i] / (double)j->R : acc[i]);
    }
}

static kiln_status rd_run(ops_ctx *c, bool mean, int axes_input_since)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x || x->dtype != KILN_DTYPE_FLOAT || x->ndim == 0) return ops_run_reference(c);
    int nd = x->ndim;
    int64_t axes[KILN_MAX_DIMS], na = 0;
    if (ops_opset(c) >= axes_input_since) {
        const core_tensor *a = ops_input(c, 1);
        if (a) {
            if (a->numel > KILN_MAX_DIMS) return ops_run_reference(c);
            na = ops_tensor_i64s(a, axes, KILN_MAX_DIMS);
            if (na < 0) return ops_run_reference(c);
        }
    } else {
        const int64_t *av = ops_attr_ints(c, "axes", &na);
        if (na > KILN_MAX_DIMS) return ops_run_reference(c);
        for (int64_t i = 0; i < na; i++) axes[i] = av[i];
    }
    bool red[KILN_MAX_DIMS] = {false};
    if (na == 0) {
        if (ops_attr_int(c, "noop_with_empty_axes", 0)) return ops_run_reference(c);
        for (int i = 0; i < nd; i++) red[i] = true;
    }
    for (int64_t i = 0; i < na; i++) {
        int64_t ax = ops_axis(axes[i], nd);
        if (ax < 0) return ops_run_reference(c);
        red[ax] = true;
    }
    /* one block of reduced dims among the dims > 1 */
    int64_t outer = 1, R = 1, inner = 1;
    int phase = 0; /* 0 before the block, 1 in it, 2 after */
    for (int i = 0; i < nd; i++) {
        int64_t d = x->dims[i];
        if (d == 1) continue;
        if (red[i]) {
            if (phase == 2) return ops_run_reference(c);
            phase = 1;
            R *= d;
        } else {
            if (phase == 1) phase = 2;
            if (phase == 0) outer *= d;
            else inner *= d;
        }
    }
    bool keep = ops_attr_int(c, "keepdims", 1) != 0;
    int64_t od[KILN_MAX_DIMS];
    int on = 0;
    for (int i = 0; i < nd; i++) {
        if (!red[i]) od[on++] = x->dims[i];
        else if (keep) od[on++] = 1;
    }
    if (x->numel == 0) return ops_run_reference(c);
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_FLOAT, on, od);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    rd_job j = {cpu_misc_ukernels_get(), R, inner, (inner + RD_COLS - 1) / RD_COLS, mean, x->data, y->data};
    if (inner == 1) cpu_misc_parallel(ops_threadpool(c), outer, 16384 / R + 1, rd_rows, &j);
    else cpu_misc_parallel(ops_threadpool(c), outer * j.nchunks, 16384 / (R * RD_COLS) + 1, rd_cols, &j);
    return KILN_OK;
}

kiln_status cpu_reduce_mean_run(ops_ctx *c) { return rd_run(c, true, 18); }
kiln_status cpu_reduce_sum_run(ops_ctx *c) { return rd_run(c, false, 13); }
