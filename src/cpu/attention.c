/* attention.c — fast float32 kernel for the ai.kiln Attention op the optimizer forms from
 * MatMul-Softmax-MatMul (contract in src/ops/fused.h): per batch slice, S = scale * Q K^T
 * (+ additive mask), row softmax, Y = S V, with the GEMMs on the packed SGEMM and slices
 * spread over the context's threads. Anything else goes to the reference kernel. */
#include "cpu/cpu.h"
#include "cpu/cpu_misc.h"
#include "ops/ops.h"
#include "ops/util.h"
#include <string.h>

typedef struct attn_job {
    const float *q, *k, *v, *mask;
    float *y, *scores; /* scores: one Sq x Sk block per batch slice */
    int64_t sq, sk, d, dv;
    int64_t mask_b[KILN_MAX_DIMS]; /* element strides of the mask over the batch dims */
    int64_t mask_rs, mask_cs;      /* ... and over the Sq and Sk dims */
    int64_t bdims[KILN_MAX_DIMS];
    int nb;                        /* number of batch dims */
    float scale;
    const cpu_misc_ukernels *uk;
    kiln_status st;
} attn_job;

static void attn_task(void *arg, int64_t begin, int64_t end)
{
    attn_job *j = arg;
    for (int64_t b = begin; b < end; b++) {
        const float *q = j->q + b * j->sq * j->d, *k = j->k + b * j->sk * j->d, *v = j->v + b * j->sk * j->dv;
        float *s = j->scores + b * j->sq * j->sk, *y = j->y + b * j->sq * j->dv;
        cpu_epilogue ep = cpu_epilogue_none();
        ep.alpha = j->scale;
        /* S[i, t] = scale * sum_d Q[i, d] K[t, d]: B = K^T read with strides (1, d). */
        kiln_status st = cpu_sgemm_simple(j->sq, j->sk, j->d, q, j->d, 1, k, 1, j->d, s, j->sk, &ep, NULL);
        if (st == KILN_OK && j->mask) {
            int64_t off = 0, rem = b;
            for (int i = j->nb - 1; i >= 0; i--) { off += (rem % j->bdims[i]) * j->mask_b[i]; rem /= j->bdims[i]; }
            for (int64_t i = 0; i < j->sq; i++) {
                const float *m = j->mask + off + i * j->mask_rs;
                float *row = s + i * j->sk;
                if (j->mask_cs == 1) for (int64_t t = 0; t < j->sk; t++) row[t] += m[t];
                else for (int64_t t = 0; t < j->sk; t++) row[t] += m[t * j->mask_cs];
            }
        }
        for (int64_t i = 0; st == KILN_OK && i < j->sq; i++) j->uk->f32_softmax(s + i * j->sk, s + i * j->sk, (size_t)j->sk, false);
        cpu_epilogue none = cpu_epilogue_none();
        if (st == KILN_OK) st = cpu_sgemm_simple(j->sq, j->dv, j->sk, s, j->sk, 1, v, j->dv, 1, y, j->dv, &none, NULL);
        if (st) __atomic_store_n(&j->st, st, __ATOMIC_RELAXED);
    }
}

static kiln_status cpu_attention_run(ops_ctx *c)
{
    const core_tensor *q = ops_input(c, 0), *k = ops_input(c, 1), *v = ops_input(c, 2), *m = ops_input(c, 3);
    if (!q || !k || !v || q->dtype != KILN_DTYPE_FLOAT || k->dtype != KILN_DTYPE_FLOAT || v->dtype != KILN_DTYPE_FLOAT ||
        (m && m->dtype != KILN_DTYPE_FLOAT) || q->ndim < 2 || q->ndim != k->ndim || q->ndim != v->ndim)
        return ops_run_reference(c);
    int r = q->ndim, nb = r - 2;
    for (int i = 0; i < nb; i++)
        if (q->dims[i] != k->dims[i] || q->dims[i] != v->dims[i]) return ops_run_reference(c); /* batch broadcast */
    int64_t sq = q->dims[r - 2], d = q->dims[r - 1], sk = k->dims[r - 2], dv = v->dims[r - 1];
    if (k->dims[r - 1] != d || v->dims[r - 2] != sk || sq == 0 || sk == 0 || d == 0) return ops_run_reference(c);
    attn_job j;
    memset(&j, 0, sizeof j);
    int64_t odims[KILN_MAX_DIMS], batch = 1;
    for (int i = 0; i < nb; i++) { odims[i] = q->dims[i]; j.bdims[i] = q->dims[i]; batch *= q->dims[i]; }
    odims[r - 2] = sq;
    odims[r - 1] = dv;
    if (m) { /* mask must broadcast to [..., Sq, Sk] */
        int64_t sdims[KILN_MAX_DIMS], strides[KILN_MAX_DIMS];
        memcpy(sdims, odims, sizeof(int64_t) * (size_t)r);
        sdims[r - 1] = sk;
        int nout;
        int64_t bd[KILN_MAX_DIMS];
        if (m->ndim > r || !ops_broadcast_shape(m->ndim, m->dims, r, sdims, &nout, bd) || nout != r ||
            memcmp(bd, sdims, sizeof(int64_t) * (size_t)r))
            return ops_run_reference(c);
        ops_broadcast_strides(m->ndim, m->dims, r, sdims, strides);
        for (int i = 0; i < nb; i++) j.mask_b[i] = strides[i];
        j.mask_rs = strides[r - 2];
        j.mask_cs = strides[r - 1];
        j.mask = m->data;
    }
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_FLOAT, r, odims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    float *scores = ops_scratch(c, sizeof(float) * (size_t)(batch * sq * sk));
    if (!scores) return KILN_ERR_OUT_OF_MEMORY;
    j.q = q->data; j.k = k->data; j.v = v->data; j.y = y->data; j.scores = scores;
    j.sq = sq; j.sk = sk; j.d = d; j.dv = dv; j.nb = nb;
    j.scale = ops_attr_float(c, "scale", 1.0f);
    j.uk = cpu_misc_ukernels_get();
    core_threadpool_parallel_for(ops_threadpool(c), batch, 1, attn_task, &j);
    if (j.st) return ops_error(c, j.st, "attention GEMM failed: %s", core_error_text());
    return KILN_OK;
}

const ops_schema ops_table_cpu_attention[] = {
    {"Attention", "ai.kiln", 1, cpu_attention_run, 1},
    OPS_TABLE_END
};
