/* eltwise.c — fast float32 elementwise kernels: unary ops and activations, Add/Sub/Mul/Div
 * with numpy broadcasting (same shape, scalar, per-channel, last-dim vector incl. the NHWC
 * channel-vector broadcast in long runs, and general strided rows), Pow by a scalar
 * exponent, Where, and ai.kiln ElementwiseChain; threaded over tiles of the output.
 * Everything else goes to the reference kernels. */
#include "cpu/cpu_misc.h"
#include "ops/fused.h"
#include "ops/util.h"
#include <float.h>
#include <math.h>
#include <string.h>

/* Programs with transcendentals are compute-bound and split early; plain arithmetic and
 * selects are memory-bound, where waking a second thread pays off only for large tensors. */
#define EW_MIN_TILE 8192
#define EW_MIN_TILE_MEM 262144

/* ---- broadcast plan -------------------------------------------------------------------------
 * Operand strides over the output shape with size-1 dims dropped and adjacent dims merged
 * wherever every operand stays linear across them. The innermost stride of each operand is
 * then 0 (broadcast) or 1, so each output row is one microkernel call. */
typedef struct ew_plan {
    int nd, nops;
    int64_t dims[KILN_MAX_DIMS];
    int64_t st[3][KILN_MAX_DIMS];
} ew_plan;

static void ew_plan_make(ew_plan *p, int nout, const int64_t *odims, int nops,
                         const core_tensor *const *ins)
{
    int64_t raw[3][KILN_MAX_DIMS];
    for (int k = 0; k < nops; k++) ops_broadcast_strides(ins[k]->ndim, ins[k]->dims, nout, odims, raw[k]);
    p->nops = nops;
    p->nd = 0;
    for (int i = 0; i < nout; i++) {
        if (odims[i] == 1) continue;
        int n = p->nd;
        bool merge = n > 0;
        for (int k = 0; k < nops && merge; k++) merge = p->st[k][n - 1] == raw[k][i] * odims[i];
        if (merge) {
            p->dims[n - 1] *= odims[i];
            for (int k = 0; k < nops; k++) p->st[k][n - 1] = raw[k][i];
        } else {
            p->dims[n] = odims[i];
            for (int k = 0; k < nops; k++) p->st[k][n] = raw[k][i];
            p->nd++;
        }
    }
    if (p->nd == 0) {
        p->nd = 1;
        p->dims[0] = 1;
        for (int k = 0; k < nops; k++) p->st[k][0] = 0;
    }
}

/* Calls row(arg, off[], pos, col, len) for every row segment of output range [b, e): off[k]
 * is operand k's element offset of the row's first element; the segment covers columns
 * [col, col + len) and output elements [pos, pos + len). */
typedef void (*ew_row_fn)(void *arg, const int64_t *off, int64_t pos, int64_t col, int64_t len);

static void ew_plan_walk(const ew_plan *p, int64_t b, int64_t e, ew_row_fn row, void *arg)
{
    int nd = p->nd;
    int64_t inner = p->dims[nd - 1];
    int64_t r = b / inner, col = b % inner;
    int64_t idx[KILN_MAX_DIMS], off[3] = {0, 0, 0};
    for (int d = nd - 2; d >= 0; d--) {
        idx[d] = r % p->dims[d];
        r /= p->dims[d];
        for (int k = 0; k < p->nops; k++) off[k] += idx[d] * p->st[k][d];
    }
    while (b < e) {
        int64_t len = inner - col < e - b ? inner - col : e - b;
        row(arg, off, b, col, len);
        b += len;
        col = 0;
        for (int d = nd - 2; d >= 0; d--) {
            for (int k = 0; k < p->nops; k++) off[k] += p->st[k][d];
            if (++idx[d] < p->dims[d]) break;
            for (int k = 0; k < p->nops; k++) off[k] -= p->st[k][d] * p->dims[d];
            idx[d] = 0;
        }
    }
}

/* ---- programs (unary ops, ElementwiseChain) ---------------------------------------------- */

typedef struct ew_prog_job {
    const cpu_misc_ukernels *uk;
    const cpu_ew_prog *prog;
    const float *x;
    float *y;
} ew_prog_job;

static void ew_prog_tile(void *arg, int64_t b, int64_t e)
{
    const ew_prog_job *j = arg;
    j->uk->f32_vchain(j->x + b, j->y + b, (size_t)(e - b), j->prog);
}

static kiln_status ew_run_prog(ops_ctx *c, const core_tensor *x, const cpu_ew_prog *prog)
{
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_FLOAT, x->ndim, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    ew_prog_job j = {cpu_misc_ukernels_get(), prog, x->data, y->data};
    cpu_misc_parallel(ops_threadpool(c), x->numel, EW_MIN_TILE, ew_prog_tile, &j);
    return KILN_OK;
}

static void ew_prog_one(cpu_ew_prog *p, int op, float k0, float k1)
{
    p->n = 1;
    p->s[0].op = op;
    p->s[0].k0 = k0;
    p->s[0].k1 = k1;
}

/* A scalar bound input of Clip (absent: keep *v). False when it is not a float scalar. */
static bool ew_clip_bound(const ops_ctx *c, int i, float *v)
{
    if (!ops_has_input(c, i)) return true;
    const core_tensor *b = ops_input(c, i);
    if (!b || b->dtype != KILN_DTYPE_FLOAT || b->numel != 1) return false;
    *v = ((const float *)b->data)[0];
    return true;
}

kiln_status cpu_unary_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x || x->dtype != KILN_DTYPE_FLOAT) return ops_run_reference(c);
    const char *op = ops_node(c)->op_type;
    cpu_ew_prog p;
    memset(&p, 0, sizeof p);
    static const struct { const char *name; int op; } simple[] = {
        {"Relu", FUSED_EW_RELU}, {"Sigmoid", FUSED_EW_SIGMOID}, {"Tanh", FUSED_EW_TANH},
        {"Erf", FUSED_EW_ERF}, {"Exp", FUSED_EW_EXP}, {"Sqrt", FUSED_EW_SQRT},
        {"Abs", FUSED_EW_ABS}, {"Neg", FUSED_EW_NEG}, {"Reciprocal", FUSED_EW_RECIPROCAL},
        {"Floor", FUSED_EW_FLOOR}, {"Ceil", FUSED_EW_CEIL}, {"HardSwish", FUSED_EW_HARD_SWISH},
    };
    for (size_t i = 0; i < sizeof simple / sizeof simple[0] && !p.n; i++)
        if (!strcmp(op, simple[i].name)) ew_prog_one(&p, simple[i].op, 0, 0);
    if (p.n) {
        /* no attributes to read */
    } else if (!strcmp(op, "Gelu")) {
        const char *ap = ops_attr_string(c, "approximate", "none");
        if (!strcmp(ap, "none")) ew_prog_one(&p, FUSED_EW_GELU, 0, 0);
        else if (!strcmp(ap, "tanh")) ew_prog_one(&p, FUSED_EW_GELU_TANH, 0, 0);
        else return ops_run_reference(c);
    } else if (!strcmp(op, "HardSigmoid")) {
        ew_prog_one(&p, CPU_EW_HARD_SIGMOID_FMA, ops_attr_float(c, "alpha", 0.2f), ops_attr_float(c, "beta", 0.5f));
    } else if (!strcmp(op, "LeakyRelu")) {
        ew_prog_one(&p, FUSED_EW_LEAKY_RELU, ops_attr_float(c, "alpha", 0.01f), 0);
    } else if (!strcmp(op, "Clip")) {
        float lo = -INFINITY, hi = INFINITY;
        if (ops_opset(c) < 11) {
            lo = ops_attr_float(c, "min", -FLT_MAX);
            hi = ops_attr_float(c, "max", FLT_MAX);
        } else if (!ew_clip_bound(c, 1, &lo) || !ew_clip_bound(c, 2, &hi)) {
            return ops_run_reference(c);
        }
        /* inverted or NaN bounds: the reference's order of the two comparisons decides */
        if (!(lo <= hi)) return ops_run_reference(c);
        ew_prog_one(&p, FUSED_EW_CLIP, lo, hi);
    } else {
        return ops_run_reference(c);
    }
    return ew_run_prog(c, x, &p);
}

kiln_status cpu_ew_chain_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x || x->dtype != KILN_DTYPE_FLOAT) return ops_run_reference(c);
    int64_t nop = 0, nk = 0;
    const int64_t *ops = ops_attr_ints(c, "opcodes", &nop);
    const float *ks = ops_attr_floats(c, "constants", &nk);
    if (nop < 1 || nop > CPU_EW_MAX_STEPS) return ops_run_reference(c);
    cpu_ew_prog p;
    memset(&p, 0, sizeof p);
    int64_t used = 0;
    for (int64_t i = 0; i < nop; i++) {
        if (ops[i] < 0 || ops[i] >= FUSED_EW_COUNT_) return ops_run_reference(c);
        int op = (int)ops[i], need = fused_ew_nconst(op);
        if (used + need > nk) return ops_run_reference(c);
        cpu_ew_step *s = &p.s[p.n++];
        s->op = op;
        s->k0 = need > 0 ? ks[used] : 0.0f;
        s->k1 = need > 1 ? ks[used + 1] : 0.0f;
        used += need;
        if (op == FUSED_EW_CLIP && !(s->k0 <= s->k1)) return ops_run_reference(c);
        /* (float)pow(x, 2) is x*x exactly; pow(x, 0.5) has a vector form */
        if (op == FUSED_EW_POW && s->k0 == 2.0f) s->op = CPU_EW_SQUARE;
        else if (op == FUSED_EW_POW && s->k0 == 0.5f) s->op = CPU_EW_POW_HALF;
        else if (op == FUSED_EW_POW && s->k0 == 1.0f) s->op = CPU_EW_IDENTITY;
    }
    if (used != nk) return ops_run_reference(c);
    return ew_run_prog(c, x, &p);
}

/* ---- binary ops ---------------------------------------------------------------------------- */

typedef struct ew_bin_job {
    const cpu_misc_ukernels *uk;
    const ew_plan *plan;
    int op;
    const float *a, *b;
    float *y;
} ew_bin_job;

static void ew_bin_row(void *arg, const int64_t *off, int64_t pos, int64_t col, int64_t len)
{
    const ew_bin_job *j = arg;
    int nd = j->plan->nd;
    int64_t sa = j->plan->st[0][nd - 1], sb = j->plan->st[1][nd - 1];
    int mode = sa && sb ? CPU_BIN_VV : sa ? CPU_BIN_VS : CPU_BIN_SV;
    j->uk->f32_vbinary(j->op, mode, j->a + off[0] + col * sa, j->b + off[1] + col * sb, j->y + pos,
                       (size_t)len);
}

static void ew_bin_tile(void *arg, int64_t b, int64_t e)
{
    const ew_bin_job *j = arg;
    ew_plan_walk(j->plan, b, e, ew_bin_row, (void *)j);
}

/* Channel-vector broadcast (the NHWC per-channel Add/Mul, squeeze-excitation scales): one
 * operand contiguous over the plan [rows, C] or [N, rows, C], the other a C-vector per image
 * (or one for all). The vector is replicated k times into scratch so that each microkernel
 * call covers k rows (short rows would otherwise cost a call each); the per-element
 * arithmetic is the vbinary kernel's, as on the general path. */
#define EW_CVEC_MAX_C 1024
#define EW_CVEC_SPAN 2048 /* floats per call, at least */

typedef struct ew_cvec_job {
    const cpu_misc_ukernels *uk;
    int op;
    bool vec_first;     /* the vector is operand a */
    const float *full;  /* the contiguous operand */
    const float *rep;   /* per image: k copies of its vector */
    float *y;
    int64_t C, k, rows_per_img; /* rows (pixels) per image */
} ew_cvec_job;

static void ew_cvec_tile(void *arg, int64_t b, int64_t e)
{
    const ew_cvec_job *j = arg;
    while (b < e) {
        int64_t img = b / j->rows_per_img, in_img = j->rows_per_img - b % j->rows_per_img;
        int64_t n = e - b < in_img ? e - b : in_img;
        if (n > j->k) n = j->k;
        const float *v = j->rep + img * j->k * j->C, *f = j->full + b * j->C;
        j->uk->f32_vbinary(j->op, CPU_BIN_VV, j->vec_first ? v : f, j->vec_first ? f : v, j->y + b * j->C,
                           (size_t)(n * j->C));
        b += n;
    }
}

/* The plan's shape if it is a channel-vector broadcast (see above); false otherwise. */
static bool ew_cvec_try(ops_ctx *c, const ew_plan *p, int op, const float *a, const float *b, float *y)
{
    int nd = p->nd;
    if (nd != 2 && nd != 3) return false;
    int64_t C = p->dims[nd - 1], R = p->dims[nd - 2], N = nd == 3 ? p->dims[0] : 1;
    if (C < 1 || C > EW_CVEC_MAX_C || R < 2) return false;
    int vi = -1;
    for (int k = 0; k < 2; k++) {
        const int64_t *st = p->st[k], *so = p->st[1 - k];
        /* operand k the vector, the other contiguous */
        bool vec = st[nd - 1] == 1 && st[nd - 2] == 0 && (nd == 2 || st[0] == C || st[0] == 0);
        bool full = so[nd - 1] == 1 && so[nd - 2] == C && (nd == 2 || so[0] == R * C);
        if (vec && full) vi = k;
    }
    if (vi < 0) return false;
    const int64_t vstride = nd == 3 ? p->st[vi][0] : 0;
    int64_t k = (EW_CVEC_SPAN + C - 1) / C;
    if (k > R) k = R;
    float *rep = ops_scratch(c, (size_t)(N * k * C) * sizeof(float));
    if (!rep) return false;
    const float *vec = vi == 0 ? a : b;
    for (int64_t n = 0; n < N; n++)
        for (int64_t r = 0; r < k; r++) memcpy(rep + (n * k + r) * C, vec + n * vstride, (size_t)C * sizeof(float));
    ew_cvec_job j = {cpu_misc_ukernels_get(), op, vi == 0, vi == 0 ? b : a, rep, y, C, k, R};
    cpu_misc_parallel(ops_threadpool(c), N * R, EW_MIN_TILE_MEM / C + 1, ew_cvec_tile, &j);
    return true;
}

kiln_status cpu_binary_run(ops_ctx *c)
{
    const core_tensor *a = ops_input(c, 0), *b = ops_input(c, 1);
    if (!a || !b || a->dtype != KILN_DTYPE_FLOAT || b->dtype != KILN_DTYPE_FLOAT || ops_opset(c) < 7)
        return ops_run_reference(c);
    const char *name = ops_node(c)->op_type;
    int op;
    if (!strcmp(name, "Add")) op = CPU_BIN_ADD;
    else if (!strcmp(name, "Sub")) op = CPU_BIN_SUB;
    else if (!strcmp(name, "Mul")) op = CPU_BIN_MUL;
    else if (!strcmp(name, "Div")) op = CPU_BIN_DIV;
    else return ops_run_reference(c);
    int nout;
    int64_t od[KILN_MAX_DIMS];
    if (!ops_broadcast_shape(a->ndim, a->dims, b->ndim, b->dims, &nout, od)) return ops_run_reference(c);
    core_tensor *y = ops_output(c, 0, KILN_DTYPE_FLOAT, nout, od);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    ew_plan plan;
    const core_tensor *ins[2] = {a, b};
    ew_plan_make(&plan, nout, od, 2, ins);
    if (ew_cvec_try(c, &plan, op, a->data, b->data, y->data)) return KILN_OK;
    ew_bin_job j = {cpu_misc_ukernels_get(), &plan, op, a->data, b->data, y->data};
    cpu_misc_parallel(ops_threadpool(c), y->numel, EW_MIN_TILE_MEM, ew_bin_tile, &j);
    return KILN_OK;
}

/* Pow by a float scalar exponent (x's shape unchanged); anything else to the reference. */
kiln_status cpu_pow_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0), *e = ops_input(c, 1);
    if (!x || !e || x->dtype != KILN_DTYPE_FLOAT || e->dtype != KILN_DTYPE_FLOAT || e->numel != 1 ||
        e->ndim > x->ndim || ops_opset(c) < 7)
        return ops_run_reference(c);
    float k = ((const float *)e->data)[0];
    cpu_ew_prog p;
    memset(&p, 0, sizeof p);
    if (k == 2.0f) ew_prog_one(&p, CPU_EW_SQUARE, 0, 0);
    else if (k == 0.5f) ew_prog_one(&p, CPU_EW_POW_HALF, 0, 0);
    else if (k == 1.0f) ew_prog_one(&p, CPU_EW_IDENTITY, 0, 0);
    else ew_prog_one(&p, FUSED_EW_POW, k, 0);
    return ew_run_prog(c, x, &p);
}

/* ---- Where ---------------------------------------------------------------------------------- */

typedef struct ew_where_job {
    const ew_plan *plan;
    size_t es;
    const uint8_t *cond;
    const char *x, *y;
    char *out;
} ew_where_job;

#define EW_WHERE_ROW(T)                                                                        \
    {                                                                                          \
        const T *X = (const T *)j->x + off[1] + col * s1, *Y = (const T *)j->y + off[2] + col * s2; \
        T *O = (T *)j->out + pos;                                                              \
        if (s0 && s1 && s2)                                                                    \
            for (int64_t i = 0; i < len; i++) O[i] = C[i] ? X[i] : Y[i];                       \
        else                                                                                   \
            for (int64_t i = 0; i < len; i++) O[i] = C[i * s0] ? X[i * s1] : Y[i * s2];        \
    }                                                                                          \
    break;

static void ew_where_row(void *arg, const int64_t *off, int64_t pos, int64_t col, int64_t len)
{
    const ew_where_job *j = arg;
    int nd = j->plan->nd;
    int64_t s0 = j->plan->st[0][nd - 1], s1 = j->plan->st[1][nd - 1], s2 = j->plan->st[2][nd - 1];
    const uint8_t *C = j->cond + off[0] + col * s0;
    switch (j->es) {
    case 1: EW_WHERE_ROW(uint8_t)
    case 2: EW_WHERE_ROW(uint16_t)
    case 4: EW_WHERE_ROW(uint32_t)
    case 8: EW_WHERE_ROW(uint64_t)
    default: break;
    }
}

static void ew_where_tile(void *arg, int64_t b, int64_t e)
{
    const ew_where_job *j = arg;
    ew_plan_walk(j->plan, b, e, ew_where_row, (void *)j);
}

kiln_status cpu_where_run(ops_ctx *c)
{
    const core_tensor *cond = ops_input(c, 0), *x = ops_input(c, 1), *yv = ops_input(c, 2);
    if (!cond || !x || !yv || cond->dtype != KILN_DTYPE_BOOL || x->dtype != yv->dtype ||
        x->dtype == KILN_DTYPE_STRING)
        return ops_run_reference(c);
    size_t es = core_dtype_size(x->dtype);
    if (es != 1 && es != 2 && es != 4 && es != 8) return ops_run_reference(c);
    int n1, n2;
    int64_t d1[KILN_MAX_DIMS], d2[KILN_MAX_DIMS];
    if (!ops_broadcast_shape(cond->ndim, cond->dims, x->ndim, x->dims, &n1, d1) ||
        !ops_broadcast_shape(n1, d1, yv->ndim, yv->dims, &n2, d2))
        return ops_run_reference(c);
    core_tensor *out = ops_output(c, 0, x->dtype, n2, d2);
    if (!out) return KILN_ERR_OUT_OF_MEMORY;
    if (out->numel == 0) return KILN_OK;
    ew_plan plan;
    const core_tensor *ins[3] = {cond, x, yv};
    ew_plan_make(&plan, n2, d2, 3, ins);
    ew_where_job j = {&plan, es, cond->data, x->data, yv->data, out->data};
    cpu_misc_parallel(ops_threadpool(c), out->numel, EW_MIN_TILE_MEM, ew_where_tile, &j);
    return KILN_OK;
}
