/* softmax.c — fast float32 Softmax and LogSoftmax over the last axis (and, before opset 13,
 * over the flattened trailing dims): max, vector exp, double sum, scale; threaded over rows.
 * Other axes and dtypes go to the reference. */
#include "cpu/cpu_misc.h"
#include <string.h>

typedef struct sm_job {
    const cpu_misc_ukernels *uk;
    int64_t n;
    bool log;
    const float *x;
    float *y;
} sm_job;

static void sm_tile(void *arg, int64_t b, int64_t e)
{
    const sm_job *j = arg;
    for (int64_t r = b; r < e; r++) j->uk->f32_softmax(j->x + r * j->n, j->y + r * j->n, (size_t)j->n, j->log);
}

kiln_status cpu_softmax_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x || x->dtype != KILN_DTYPE_FLOAT || x->ndim == 0) return ops_run_reference(c);
    bool log = !strcmp(ops_node(c)->op_type, "LogSoftmax");
    bool coerce = ops_opset(c) < 13;
    int nd = x->ndim;
    int64_t axis = ops_attr_int(c, "axis", coerce ? 1 : -1);
    if (axis < 0) axis += nd;
    if (axis < 0 || axis >= nd) return ops_run_reference(c);
    /* coerce: [outer, everything from axis on]; otherwise only the last axis is fast */
    if (!coerce && axis != nd - 1) return ops_run_reference(c);
    int64_t n = 1;
    for (int i = (int)axis; i < nd; i++) n *= x->dims[i];
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_FLOAT, nd, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    sm_job j = {cpu_misc_ukernels_get(), n, log, x->data, y->data};
    cpu_misc_parallel(ops_threadpool(c), y->numel / n, 4096 / n + 1, sm_tile, &j);
    return KILN_OK;
}
