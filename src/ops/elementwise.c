/* elementwise.c — reference kernels for elementwise ops: unary math, activations, binary
 * arithmetic/compare/logic/bitwise with numpy broadcasting, variadic Max/Min/Sum/Mean, Where. */
#include "ops/ops.h"
#include "ops/util.h"
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- dtypes with typed loops --------------------------------------------------------
 * Kernels exist per dtype index below; float16, bfloat16 and the 8/4-bit floats run
 * through float32 copies. */
enum { DI_F32, DI_F64, DI_I8, DI_I16, DI_I32, DI_I64, DI_U8, DI_U16, DI_U32, DI_U64, DI_BOOL,
       DI_STR, DI_N };

static int el_di(kiln_dtype t)
{
    switch (t) {
    case KILN_DTYPE_FLOAT: return DI_F32;
    case KILN_DTYPE_DOUBLE: return DI_F64;
    case KILN_DTYPE_INT8: return DI_I8;
    case KILN_DTYPE_INT16: return DI_I16;
    case KILN_DTYPE_INT32: return DI_I32;
    case KILN_DTYPE_INT64: return DI_I64;
    case KILN_DTYPE_UINT8: return DI_U8;
    case KILN_DTYPE_UINT16: return DI_U16;
    case KILN_DTYPE_UINT32: return DI_U32;
    case KILN_DTYPE_UINT64: return DI_U64;
    case KILN_DTYPE_BOOL: return DI_BOOL;
    case KILN_DTYPE_STRING: return DI_STR;
    default: return -1;
    }
}

/* Float formats without their own loops: computed in float32 and rounded back. */
static bool el_via_f32(kiln_dtype t)
{
    switch (t) {
    case KILN_DTYPE_FLOAT16: case KILN_DTYPE_BFLOAT16: case KILN_DTYPE_FLOAT8E4M3FN:
    case KILN_DTYPE_FLOAT8E4M3FNUZ: case KILN_DTYPE_FLOAT8E5M2: case KILN_DTYPE_FLOAT8E5M2FNUZ:
    case KILN_DTYPE_FLOAT8E8M0: case KILN_DTYPE_FLOAT4E2M1:
        return true;
    default: return false;
    }
}

/* Parameters a kernel may read (attributes, clip bounds). */
typedef struct el_prm {
    double alpha, beta, gamma;
    double lo, hi;           /* float clip bounds */
    int64_t ilo, ihi;        /* signed int clip bounds */
    uint64_t ulo, uhi;       /* unsigned int clip bounds */
    int mode;                /* Gelu: 1 = tanh approximation */
    bool neg, pos;           /* IsInf */
} el_prm;

/* ---- temporaries --------------------------------------------------------------------- */

/* Copy src into dst (same shape) converting each element; numeric dtypes only. */
static void el_convert_into(const core_tensor *src, core_tensor *dst)
{
    if (src->dtype == KILN_DTYPE_FLOAT16 && dst->dtype == KILN_DTYPE_FLOAT) {
        const uint16_t *s = src->data;
        float *d = dst->data;
        for (int64_t i = 0; i < src->numel; i++) d[i] = core_f16_to_f32(s[i]);
    } else if (src->dtype == KILN_DTYPE_FLOAT && dst->dtype == KILN_DTYPE_FLOAT16) {
        const float *s = src->data;
        uint16_t *d = dst->data;
        for (int64_t i = 0; i < src->numel; i++) d[i] = core_f32_to_f16(s[i]);
    } else if (core_dtype_is_int(src->dtype) && core_dtype_is_int(dst->dtype)) {
        for (int64_t i = 0; i < src->numel; i++)
            core_store_i64(dst->dtype, dst->data, i, core_load_i64(src->dtype, src->data, i));
    } else {
        for (int64_t i = 0; i < src->numel; i++)
            core_store_f64(dst->dtype, dst->data, i, core_load_f64(src->dtype, src->data, i));
    }
}

/* A converted copy of t (t itself when it already has dtype `to`); NULL on OOM. Release
 * with el_tmp_free(copy, t). */
static core_tensor *el_tmp_as(const core_tensor *t, kiln_dtype to)
{
    if (t->dtype == to) return (core_tensor *)t;
    core_tensor *r = core_tensor_create(to, t->ndim, t->dims);
    if (r) el_convert_into(t, r);
    return r;
}

static void el_tmp_free(core_tensor *tmp, const core_tensor *orig)
{
    if (tmp && tmp != orig) core_tensor_destroy(tmp);
}

/* ---- broadcast iteration --------------------------------------------------------------
 * The output shape is walked as rows of its innermost (coalesced) dimension. Within a row
 * every input advances by 0 (broadcast) or 1 element, so kernels are plain loops with
 * four cases (both contiguous, one scalar, ...). */
#define EL_MAXIN 3

typedef struct el_bcast {
    int ndim;
    int64_t dims[KILN_MAX_DIMS];
    int64_t st[EL_MAXIN][KILN_MAX_DIMS];
    int nin;
    int64_t numel;
} el_bcast;

static void el_bcast_plan(el_bcast *it, int nout, const int64_t *odims, int nin,
                          const core_tensor *const *ins)
{
    int64_t st[EL_MAXIN][KILN_MAX_DIMS];
    for (int k = 0; k < nin; k++) ops_broadcast_strides(ins[k]->ndim, ins[k]->dims, nout, odims, st[k]);
    it->nin = nin;
    it->ndim = 0;
    it->numel = 1;
    for (int d = 0; d < nout; d++) {
        it->numel *= odims[d];
        if (odims[d] == 1) continue;
        int j = it->ndim - 1;
        bool merge = j >= 0;
        for (int k = 0; k < nin && merge; k++)
            if (it->st[k][j] != st[k][d] * odims[d]) merge = false;
        if (merge) {
            it->dims[j] *= odims[d];
            for (int k = 0; k < nin; k++) it->st[k][j] = st[k][d];
        } else {
            it->dims[it->ndim] = odims[d];
            for (int k = 0; k < nin; k++) it->st[k][it->ndim] = st[k][d];
            it->ndim++;
        }
    }
    if (it->ndim == 0) {
        it->ndim = 1;
        it->dims[0] = 1;
        for (int k = 0; k < nin; k++) it->st[k][0] = 0;
    }
}

typedef void (*el_bin_fn)(const void *a, int64_t sa, const void *b, int64_t sb, void *y, int64_t n,
                          const el_prm *p);

/* Run fn over rows: a/b have element sizes ea/eb, y has ey and is written densely. */
static void el_bcast_run2(const el_bcast *it, const char *a, size_t ea, const char *b, size_t eb,
                          char *y, size_t ey, el_bin_fn fn, const el_prm *p)
{
    if (it->numel == 0) return;
    int nd = it->ndim;
    int64_t inner = it->dims[nd - 1];
    int64_t idx[KILN_MAX_DIMS] = {0};
    int64_t oa = 0, ob = 0, oy = 0;
    for (;;) {
        fn(a + oa * (int64_t)ea, it->st[0][nd - 1], b + ob * (int64_t)eb, it->st[1][nd - 1],
           y + oy * (int64_t)ey, inner, p);
        oy += inner;
        int d = nd - 2;
        for (; d >= 0; d--) {
            oa += it->st[0][d];
            ob += it->st[1][d];
            if (++idx[d] < it->dims[d]) break;
            oa -= it->st[0][d] * it->dims[d];
            ob -= it->st[1][d] * it->dims[d];
            idx[d] = 0;
        }
        if (d < 0) return;
    }
}

/* ---- binary kernels ------------------------------------------------------------------ */

#define BIN_ROW(NAME, TA, TB, TY, EXPR)                                                      \
    static void NAME(const void *pa, int64_t sa, const void *pb, int64_t sb, void *py,       \
                     int64_t n, const el_prm *p)                                             \
    {                                                                                        \
        const TA *A = (const TA *)pa;                                                        \
        const TB *B = (const TB *)pb;                                                        \
        TY *Y = (TY *)py;                                                                    \
        (void)p;                                                                             \
        if (sa && sb) {                                                                      \
            for (int64_t i = 0; i < n; i++) {                                                \
                TA a = A[i]; TB b = B[i]; (void)a; (void)b;                                  \
                Y[i] = (TY)(EXPR);                                                           \
            }                                                                                \
        } else if (sa) {                                                                     \
            TB b = B[0]; (void)b;                                                            \
            for (int64_t i = 0; i < n; i++) { TA a = A[i]; (void)a; Y[i] = (TY)(EXPR); }     \
        } else if (sb) {                                                                     \
            TA a = A[0]; (void)a;                                                            \
            for (int64_t i = 0; i < n; i++) { TB b = B[i]; (void)b; Y[i] = (TY)(EXPR); }     \
        } else {                                                                             \
            TA a = A[0]; TB b = B[0]; (void)a; (void)b;                                      \
            TY v = (TY)(EXPR);                                                               \
            for (int64_t i = 0; i < n; i++) Y[i] = v;                                        \
        }                                                                                    \
    }

#define BIN_FLOATS(NAME, EXPR)                                                               \
    BIN_ROW(NAME##_f32, float, float, float, EXPR)                                           \
    BIN_ROW(NAME##_f64, double, double, double, EXPR)
#define BIN_SINTS(NAME, EXPR)                                                                \
    BIN_ROW(NAME##_i8, int8_t, int8_t, int8_t, EXPR)                                         \
    BIN_ROW(NAME##_i16, int16_t, int16_t, int16_t, EXPR)                                     \
    BIN_ROW(NAME##_i32, int32_t, int32_t, int32_t, EXPR)                                     \
    BIN_ROW(NAME##_i64, int64_t, int64_t, int64_t, EXPR)
#define BIN_UINTS(NAME, EXPR)                                                                \
    BIN_ROW(NAME##_u8, uint8_t, uint8_t, uint8_t, EXPR)                                      \
    BIN_ROW(NAME##_u16, uint16_t, uint16_t, uint16_t, EXPR)                                  \
    BIN_ROW(NAME##_u32, uint32_t, uint32_t, uint32_t, EXPR)                                  \
    BIN_ROW(NAME##_u64, uint64_t, uint64_t, uint64_t, EXPR)
#define BIN_TABLE_NUM(NAME)                                                                  \
    static const el_bin_fn NAME##_fns[DI_N] = {NAME##_f32, NAME##_f64, NAME##_i8, NAME##_i16, \
        NAME##_i32, NAME##_i64, NAME##_u8, NAME##_u16, NAME##_u32, NAME##_u64, NULL, NULL};
#define BIN_TABLE_INT(NAME)                                                                  \
    static const el_bin_fn NAME##_fns[DI_N] = {NULL, NULL, NAME##_i8, NAME##_i16,            \
        NAME##_i32, NAME##_i64, NAME##_u8, NAME##_u16, NAME##_u32, NAME##_u64, NULL, NULL};
/* A numeric op: float expression, signed-int expression, unsigned-int expression. */
#define BIN_NUM(NAME, FEXPR, SEXPR, UEXPR)                                                   \
    BIN_FLOATS(NAME, FEXPR) BIN_SINTS(NAME, SEXPR) BIN_UINTS(NAME, UEXPR) BIN_TABLE_NUM(NAME)

/* Comparisons: every numeric dtype and bool, output bool. */
#define BIN_CMP(NAME, EXPR)                                                                  \
    BIN_ROW(NAME##_f32, float, float, uint8_t, EXPR)                                         \
    BIN_ROW(NAME##_f64, double, double, uint8_t, EXPR)                                       \
    BIN_ROW(NAME##_i8, int8_t, int8_t, uint8_t, EXPR)                                        \
    BIN_ROW(NAME##_i16, int16_t, int16_t, uint8_t, EXPR)                                     \
    BIN_ROW(NAME##_i32, int32_t, int32_t, uint8_t, EXPR)                                     \
    BIN_ROW(NAME##_i64, int64_t, int64_t, uint8_t, EXPR)                                     \
    BIN_ROW(NAME##_u8, uint8_t, uint8_t, uint8_t, EXPR)                                      \
    BIN_ROW(NAME##_u16, uint16_t, uint16_t, uint8_t, EXPR)                                   \
    BIN_ROW(NAME##_u32, uint32_t, uint32_t, uint8_t, EXPR)                                   \
    BIN_ROW(NAME##_u64, uint64_t, uint64_t, uint8_t, EXPR)                                   \
    BIN_ROW(NAME##_b, uint8_t, uint8_t, uint8_t, EXPR)

/* Integer helpers: wrap-around arithmetic through uint64 (no signed overflow), and no
 * trap on division by zero (gives 0) or INT_MIN / -1 (wraps). */
static inline int64_t el_sdiv(int64_t a, int64_t b)
{
    if (b == 0) return 0;
    if (b == -1) return (int64_t)(0 - (uint64_t)a);
    return a / b;
}
static inline uint64_t el_udiv(uint64_t a, uint64_t b) { return b ? a / b : 0; }
static inline int64_t el_smod_trunc(int64_t a, int64_t b) { return (b == 0 || b == -1) ? 0 : a % b; }
static inline int64_t el_smod_floor(int64_t a, int64_t b)
{
    if (b == 0 || b == -1) return 0;
    int64_t r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) r += b;
    return r;
}
static inline uint64_t el_umod(uint64_t a, uint64_t b) { return b ? a % b : 0; }
/* numpy's mod: result takes the divisor's sign, a zero result too. */
static inline double el_fmod_floor(double a, double b)
{
    double r = fmod(a, b);
    if (r != 0) {
        if ((r < 0) != (b < 0)) r += b;
    } else {
        r = copysign(0.0, b);
    }
    return r;
}
static inline int64_t el_ipow(int64_t a, int64_t e)
{
    if (e < 0) return a == 1 ? 1 : a == -1 ? ((e & 1) ? -1 : 1) : 0;
    uint64_t r = 1, x = (uint64_t)a;
    while (e) {
        if (e & 1) r *= x;
        x *= x;
        e >>= 1;
    }
    return (int64_t)r;
}
#define EL_WRAP(E) ((uint64_t)(E))

BIN_NUM(add, a + b, EL_WRAP(a) + EL_WRAP(b), EL_WRAP(a) + EL_WRAP(b))
BIN_NUM(sub, a - b, EL_WRAP(a) - EL_WRAP(b), EL_WRAP(a) - EL_WRAP(b))
BIN_NUM(mul, a * b, EL_WRAP(a) * EL_WRAP(b), EL_WRAP(a) * EL_WRAP(b))
BIN_NUM(div, a / b, el_sdiv(a, b), el_udiv(a, b))
BIN_NUM(modf, fmod(a, b), el_smod_trunc(a, b), el_umod(a, b))
BIN_NUM(modp, el_fmod_floor(a, b), el_smod_floor(a, b), el_umod(a, b))
BIN_NUM(max, isnan(a) ? a : isnan(b) ? b : a > b ? a : b, a > b ? a : b, a > b ? a : b)
BIN_NUM(min, isnan(a) ? a : isnan(b) ? b : a < b ? a : b, a < b ? a : b, a < b ? a : b)
BIN_NUM(prelu, a < 0 ? a * b : a, a < 0 ? EL_WRAP(a) * EL_WRAP(b) : EL_WRAP(a), a)

BIN_ROW(pow_f32, float, float, float, pow(a, b))
BIN_ROW(pow_f64, double, double, double, pow(a, b))
BIN_ROW(pow_i64, int64_t, int64_t, int64_t, el_ipow(a, b))

BIN_SINTS(shl, (uint64_t)b >= sizeof(a) * 8 ? 0 : EL_WRAP(a) << b)
BIN_UINTS(shl, (uint64_t)b >= sizeof(a) * 8 ? 0 : EL_WRAP(a) << b)
BIN_TABLE_INT(shl)
BIN_SINTS(shr, (uint64_t)b >= sizeof(a) * 8 ? (a < 0 ? -1 : 0) : a >> b)
BIN_UINTS(shr, (uint64_t)b >= sizeof(a) * 8 ? 0 : a >> b)
BIN_TABLE_INT(shr)
BIN_SINTS(band, a & b)
BIN_UINTS(band, a & b)
BIN_TABLE_INT(band)
BIN_SINTS(bor, a | b)
BIN_UINTS(bor, a | b)
BIN_TABLE_INT(bor)
BIN_SINTS(bxor, a ^ b)
BIN_UINTS(bxor, a ^ b)
BIN_TABLE_INT(bxor)

BIN_ROW(and_b, uint8_t, uint8_t, uint8_t, (a != 0) & (b != 0))
BIN_ROW(or_b, uint8_t, uint8_t, uint8_t, (a != 0) | (b != 0))
BIN_ROW(xor_b, uint8_t, uint8_t, uint8_t, (a != 0) ^ (b != 0))
static const el_bin_fn and_fns[DI_N] = {[DI_BOOL] = and_b};
static const el_bin_fn or_fns[DI_N] = {[DI_BOOL] = or_b};
static const el_bin_fn xor_fns[DI_N] = {[DI_BOOL] = xor_b};

static inline bool el_str_eq(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : "") == 0; }
typedef const char *el_cstr;
BIN_ROW(eq_s, el_cstr, el_cstr, uint8_t, el_str_eq(a, b))

#define BIN_TABLE_CMP(NAME, STRFN)                                                           \
    static const el_bin_fn NAME##_fns[DI_N] = {NAME##_f32, NAME##_f64, NAME##_i8, NAME##_i16, \
        NAME##_i32, NAME##_i64, NAME##_u8, NAME##_u16, NAME##_u32, NAME##_u64, NAME##_b, STRFN};
BIN_CMP(eq, a == b)
BIN_TABLE_CMP(eq, eq_s)
BIN_CMP(lt, a < b)
BIN_TABLE_CMP(lt, NULL)
BIN_CMP(le, a <= b)
BIN_TABLE_CMP(le, NULL)
BIN_CMP(gt, a > b)
BIN_TABLE_CMP(gt, NULL)
BIN_CMP(ge, a >= b)
BIN_TABLE_CMP(ge, NULL)

/* Copy of the left operand, for broadcasting one tensor into a larger shape. */
#define COPY_ROW(NAME, T) BIN_ROW(NAME, T, T, T, a)
COPY_ROW(copy_1, uint8_t)
COPY_ROW(copy_2, uint16_t)
COPY_ROW(copy_4, uint32_t)
COPY_ROW(copy_8, uint64_t)

static el_bin_fn el_copy_fn(size_t esize)
{
    switch (esize) {
    case 1: return copy_1;
    case 2: return copy_2;
    case 4: return copy_4;
    case 8: return copy_8;
    default: return NULL;
    }
}

/* ---- binary driver ------------------------------------------------------------------- */

/* Broadcast a (op) b. a and b are converted to the compute dtype ct (when they differ);
 * fn writes dtype ct_out; the node's output 0 gets dtype out_dt (converted from ct_out
 * when they differ). */
static kiln_status el_binary_exec(ops_ctx *c, const core_tensor *a, const core_tensor *b,
                                  kiln_dtype ct, el_bin_fn fn, kiln_dtype ct_out,
                                  kiln_dtype out_dt, const el_prm *p)
{
    int nout;
    int64_t odims[KILN_MAX_DIMS];
    char sa[96], sb[96];
    if (!ops_broadcast_shape(a->ndim, a->dims, b->ndim, b->dims, &nout, odims))
        return ops_error(c, KILN_ERR_SHAPE, "shapes %s and %s cannot be broadcast",
                         core_shape_str(a->ndim, a->dims, sa, sizeof sa),
                         core_shape_str(b->ndim, b->dims, sb, sizeof sb));
    core_tensor *y = ops_output(c, 0, out_dt, nout, odims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    core_tensor *ta = el_tmp_as(a, ct), *tb = el_tmp_as(b, ct);
    core_tensor *ty = ct_out == out_dt ? y : core_tensor_create(ct_out, nout, odims);
    kiln_status st = KILN_OK;
    if (!ta || !tb || !ty) {
        st = ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory for temporaries");
    } else {
        el_bcast it;
        const core_tensor *ins[2] = {ta, tb};
        el_bcast_plan(&it, nout, odims, 2, ins);
        el_bcast_run2(&it, ta->data, core_dtype_size(ct), tb->data, core_dtype_size(ct), ty->data,
                      core_dtype_size(ct_out), fn, p);
        if (ty != y) el_convert_into(ty, y);
    }
    el_tmp_free(ta, a);
    el_tmp_free(tb, b);
    if (ty != y && ty) core_tensor_destroy(ty);
    return st;
}

/* Inputs A and B. Before opset 7, binary ops broadcast only B and only when asked
 * (broadcast=1), aligning B's dims at `axis` of A rather than at the right: bview is
 * then a reshaped view of B with trailing 1s, which numpy rules treat the same way. */
static kiln_status el_two_inputs(ops_ctx *c, const core_tensor **a, const core_tensor **b,
                                 core_tensor *bview)
{
    *a = ops_input(c, 0);
    *b = ops_input(c, 1);
    if (!*a || !*b) return ops_error(c, KILN_ERR_INVALID_MODEL, "needs 2 tensor inputs");
    if (ops_opset(c) < 7 && ops_attr_int(c, "broadcast", 0) != 0 && ops_has_attr(c, "axis")) {
        const core_tensor *A = *a, *B = *b;
        int64_t axis = ops_attr_int(c, "axis", 0);
        if (axis < 0) axis += A->ndim;
        if (axis < 0 || axis + B->ndim > A->ndim)
            return ops_error(c, KILN_ERR_SHAPE, "axis %lld does not place B (%d dims) inside A (%d dims)",
                             (long long)ops_attr_int(c, "axis", 0), B->ndim, A->ndim);
        *bview = *B;
        bview->ndim = A->ndim - (int)axis;
        for (int i = B->ndim; i < bview->ndim; i++) bview->dims[i] = 1;
        *b = bview;
    }
    return KILN_OK;
}

/* Pick the kernel for dtype t from fns: itself, or float32 for float16/bfloat16. */
static kiln_status el_pick(ops_ctx *c, const el_bin_fn *fns, kiln_dtype t, kiln_dtype *ct,
                           el_bin_fn *fn)
{
    int i = el_di(t);
    if (i >= 0 && fns[i]) { *ct = t; *fn = fns[i]; return KILN_OK; }
    if (el_via_f32(t) && fns[DI_F32]) { *ct = KILN_DTYPE_FLOAT; *fn = fns[DI_F32]; return KILN_OK; }
    return ops_error(c, KILN_ERR_UNSUPPORTED, "dtype %s is not supported", core_dtype_name(t));
}

/* Same-dtype binary op; output bool or the input dtype. */
static kiln_status el_binary_t(ops_ctx *c, const core_tensor *a, const core_tensor *b,
                               const el_bin_fn *fns, bool bool_out, const el_prm *p)
{
    kiln_status st;
    if (a->dtype != b->dtype)
        return ops_error(c, KILN_ERR_DTYPE, "input dtypes differ: %s and %s", core_dtype_name(a->dtype),
                         core_dtype_name(b->dtype));
    kiln_dtype ct = KILN_DTYPE_UNDEFINED;
    el_bin_fn fn = NULL;
    if ((st = el_pick(c, fns, a->dtype, &ct, &fn)) != KILN_OK) return st;
    kiln_dtype out = bool_out ? KILN_DTYPE_BOOL : a->dtype;
    return el_binary_exec(c, a, b, ct, fn, bool_out ? KILN_DTYPE_BOOL : ct, out, p);
}

static kiln_status el_binary(ops_ctx *c, const el_bin_fn *fns, bool bool_out, const el_prm *p)
{
    const core_tensor *a, *b;
    core_tensor bview;
    kiln_status st = el_two_inputs(c, &a, &b, &bview);
    if (st != KILN_OK) return st;
    return el_binary_t(c, a, b, fns, bool_out, p);
}

#define BINARY_OP(NAME, FNS, BOOL_OUT) \
    static kiln_status NAME##_run(ops_ctx *c) { return el_binary(c, FNS, BOOL_OUT, NULL); }
BINARY_OP(add, add_fns, false)
BINARY_OP(sub, sub_fns, false)
BINARY_OP(mul, mul_fns, false)
BINARY_OP(div, div_fns, false)
BINARY_OP(bitand, band_fns, false)
BINARY_OP(bitor, bor_fns, false)
BINARY_OP(bitxor, bxor_fns, false)
BINARY_OP(and, and_fns, true)
BINARY_OP(or, or_fns, true)
BINARY_OP(xor, xor_fns, true)
BINARY_OP(equal, eq_fns, true)
BINARY_OP(less, lt_fns, true)
BINARY_OP(lessequal, le_fns, true)
BINARY_OP(greater, gt_fns, true)
BINARY_OP(greaterequal, ge_fns, true)

static kiln_status mod_run(ops_ctx *c)
{
    int64_t f = ops_attr_int(c, "fmod", 0);
    if (f != 0 && f != 1) return ops_error(c, KILN_ERR_INVALID_MODEL, "fmod = %lld, expected 0 or 1", (long long)f);
    return el_binary(c, f ? modf_fns : modp_fns, false, NULL);
}

static kiln_status bitshift_run(ops_ctx *c)
{
    const char *dir = ops_attr_string(c, "direction", "");
    if (!strcmp(dir, "LEFT")) return el_binary(c, shl_fns, false, NULL);
    if (!strcmp(dir, "RIGHT")) return el_binary(c, shr_fns, false, NULL);
    return ops_error(c, KILN_ERR_INVALID_MODEL, "direction '%s' is not LEFT or RIGHT", dir);
}

/* Pow: base and exponent dtypes may differ; the output has the base's dtype. Integer
 * base and exponent use exact integer powers; everything else goes through double. */
static kiln_status pow_run(ops_ctx *c)
{
    const core_tensor *a, *b;
    core_tensor bview;
    kiln_status st = el_two_inputs(c, &a, &b, &bview);
    if (st != KILN_OK) return st;
    kiln_dtype ta = a->dtype, tb = b->dtype;
    bool num_a = core_dtype_is_float(ta) || core_dtype_is_int(ta);
    bool num_b = core_dtype_is_float(tb) || core_dtype_is_int(tb);
    if (!num_a || !num_b || ta == KILN_DTYPE_BOOL || tb == KILN_DTYPE_BOOL)
        return ops_error(c, KILN_ERR_UNSUPPORTED, "Pow of %s by %s is not supported",
                         core_dtype_name(ta), core_dtype_name(tb));
    if (ta == KILN_DTYPE_FLOAT && tb == KILN_DTYPE_FLOAT)
        return el_binary_exec(c, a, b, ta, pow_f32, ta, ta, NULL);
    if (core_dtype_is_int(ta) && core_dtype_is_int(tb))
        return el_binary_exec(c, a, b, KILN_DTYPE_INT64, pow_i64, KILN_DTYPE_INT64, ta, NULL);
    return el_binary_exec(c, a, b, KILN_DTYPE_DOUBLE, pow_f64, KILN_DTYPE_DOUBLE, ta, NULL);
}

/* PRelu: slope broadcasts to X (unidirectionally); the output has X's shape. Before
 * opset 7 a 1-D slope of X's channel count applies per channel (axis 1). */
static kiln_status prelu_run(ops_ctx *c)
{
    const core_tensor *a = ops_input(c, 0), *b = ops_input(c, 1);
    if (!a || !b) return ops_error(c, KILN_ERR_INVALID_MODEL, "needs 2 tensor inputs");
    core_tensor bview;
    if (ops_opset(c) < 7 && b->ndim == 1 && a->ndim >= 2 && b->dims[0] == a->dims[1] &&
        b->dims[0] != 1) {
        bview = *b;
        bview.ndim = a->ndim - 1;
        for (int i = 1; i < bview.ndim; i++) bview.dims[i] = 1;
        b = &bview;
    }
    int n;
    int64_t d[KILN_MAX_DIMS];
    if (!ops_broadcast_shape(a->ndim, a->dims, b->ndim, b->dims, &n, d) || n != a->ndim ||
        memcmp(d, a->dims, (size_t)n * sizeof(int64_t)) != 0) {
        char sa[96], sb[96];
        return ops_error(c, KILN_ERR_SHAPE, "slope of shape %s does not broadcast to X of shape %s",
                         core_shape_str(b->ndim, b->dims, sb, sizeof sb),
                         core_shape_str(a->ndim, a->dims, sa, sizeof sa));
    }
    return el_binary_t(c, a, b, prelu_fns, false, NULL);
}

/* ---- variadic Max / Min / Sum / Mean ------------------------------------------------- */

static kiln_status el_variadic(ops_ctx *c, const el_bin_fn *fns, bool mean)
{
    int n = ops_n_inputs(c);
    if (n < 1) return ops_error(c, KILN_ERR_INVALID_MODEL, "needs at least one input");
    const core_tensor *in0 = ops_input(c, 0);
    if (!in0) return ops_error(c, KILN_ERR_INVALID_MODEL, "input 0 is missing");
    int nout = in0->ndim;
    int64_t odims[KILN_MAX_DIMS];
    memcpy(odims, in0->dims, sizeof(int64_t) * (size_t)nout);
    for (int i = 1; i < n; i++) {
        const core_tensor *t = ops_input(c, i);
        if (!t) return ops_error(c, KILN_ERR_INVALID_MODEL, "input %d is missing", i);
        if (t->dtype != in0->dtype)
            return ops_error(c, KILN_ERR_DTYPE, "input %d is %s, input 0 is %s", i,
                             core_dtype_name(t->dtype), core_dtype_name(in0->dtype));
        int64_t tmp[KILN_MAX_DIMS];
        int nt;
        if (!ops_broadcast_shape(nout, odims, t->ndim, t->dims, &nt, tmp)) {
            char s1[96], s2[96];
            return ops_error(c, KILN_ERR_SHAPE, "input %d of shape %s does not broadcast with %s", i,
                             core_shape_str(t->ndim, t->dims, s1, sizeof s1),
                             core_shape_str(nout, odims, s2, sizeof s2));
        }
        nout = nt;
        memcpy(odims, tmp, sizeof(int64_t) * (size_t)nt);
    }
    kiln_dtype ct = KILN_DTYPE_UNDEFINED;
    el_bin_fn fn = NULL;
    kiln_status st = el_pick(c, fns, in0->dtype, &ct, &fn);
    if (st != KILN_OK) return st;
    if (mean && ct != KILN_DTYPE_FLOAT && ct != KILN_DTYPE_DOUBLE)
        return ops_error(c, KILN_ERR_UNSUPPORTED, "Mean of %s is not supported", core_dtype_name(in0->dtype));
    core_tensor *y = ops_output(c, 0, in0->dtype, nout, odims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    core_tensor *acc = ct == in0->dtype ? y : core_tensor_create(ct, nout, odims);
    if (!acc) return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory for temporaries");
    size_t es = core_dtype_size(ct);
    for (int i = 0; i < n && st == KILN_OK; i++) {
        const core_tensor *t = ops_input(c, i);
        core_tensor *tt = el_tmp_as(t, ct);
        if (!tt) { st = ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory for temporaries"); break; }
        el_bcast it;
        const core_tensor *ins[2] = {i == 0 ? tt : acc, tt};
        el_bcast_plan(&it, nout, odims, 2, ins);
        if (i == 0)
            el_bcast_run2(&it, tt->data, es, tt->data, es, acc->data, es, el_copy_fn(es), NULL);
        else
            el_bcast_run2(&it, acc->data, es, tt->data, es, acc->data, es, fn, NULL);
        el_tmp_free(tt, t);
    }
    if (st == KILN_OK && mean) {
        if (ct == KILN_DTYPE_FLOAT) {
            float *v = acc->data;
            for (int64_t i = 0; i < acc->numel; i++) v[i] /= (float)n;
        } else {
            double *v = acc->data;
            for (int64_t i = 0; i < acc->numel; i++) v[i] /= (double)n;
        }
    }
    if (acc != y) {
        if (st == KILN_OK) el_convert_into(acc, y);
        core_tensor_destroy(acc);
    }
    return st;
}

static kiln_status max_run(ops_ctx *c) { return el_variadic(c, max_fns, false); }
static kiln_status min_run(ops_ctx *c) { return el_variadic(c, min_fns, false); }
static kiln_status sum_run(ops_ctx *c) { return el_variadic(c, add_fns, false); }
static kiln_status mean_run(ops_ctx *c) { return el_variadic(c, add_fns, true); }

/* ---- Where --------------------------------------------------------------------------- */

static kiln_status where_run(ops_ctx *c)
{
    const core_tensor *cond = ops_input(c, 0), *x = ops_input(c, 1), *yv = ops_input(c, 2);
    if (!cond || !x || !yv) return ops_error(c, KILN_ERR_INVALID_MODEL, "needs 3 tensor inputs");
    if (cond->dtype != KILN_DTYPE_BOOL)
        return ops_error(c, KILN_ERR_DTYPE, "condition is %s, expected bool", core_dtype_name(cond->dtype));
    if (x->dtype != yv->dtype)
        return ops_error(c, KILN_ERR_DTYPE, "X is %s but Y is %s", core_dtype_name(x->dtype),
                         core_dtype_name(yv->dtype));
    int n1, n2;
    int64_t d1[KILN_MAX_DIMS], d2[KILN_MAX_DIMS];
    if (!ops_broadcast_shape(cond->ndim, cond->dims, x->ndim, x->dims, &n1, d1) ||
        !ops_broadcast_shape(n1, d1, yv->ndim, yv->dims, &n2, d2)) {
        char s0[96], s1[96], s2[96];
        return ops_error(c, KILN_ERR_SHAPE, "shapes %s, %s and %s cannot be broadcast",
                         core_shape_str(cond->ndim, cond->dims, s0, sizeof s0),
                         core_shape_str(x->ndim, x->dims, s1, sizeof s1),
                         core_shape_str(yv->ndim, yv->dims, s2, sizeof s2));
    }
    size_t es = core_dtype_size(x->dtype);
    if (es == 0) return ops_error(c, KILN_ERR_UNSUPPORTED, "dtype %s is not supported", core_dtype_name(x->dtype));
    core_tensor *out = ops_output(c, 0, x->dtype, n2, d2);
    if (!out) return KILN_ERR_OUT_OF_MEMORY;
    if (out->numel == 0) return KILN_OK;
    bool str = x->dtype == KILN_DTYPE_STRING;
    /* strings: gather borrowed pointers first, then copy them into the owned output */
    char **ptrs = str ? core_malloc((size_t)out->numel * sizeof(char *)) : NULL;
    if (str && !ptrs) return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
    char *dst = str ? (char *)ptrs : (char *)out->data;
    el_bcast it;
    const core_tensor *ins[3] = {cond, x, yv};
    el_bcast_plan(&it, n2, d2, 3, ins);
    int nd = it.ndim;
    int64_t inner = it.dims[nd - 1];
    int64_t idx[KILN_MAX_DIMS] = {0};
    int64_t off[3] = {0, 0, 0}, oy = 0;
    const uint8_t *cd = cond->data;
    const char *xd = x->data, *yd = yv->data;
    for (;;) {
        int64_t s0 = it.st[0][nd - 1], s1 = it.st[1][nd - 1], s2 = it.st[2][nd - 1];
        for (int64_t i = 0; i < inner; i++) {
            const char *src = cd[off[0] + i * s0] ? xd + (off[1] + i * s1) * (int64_t)es
                                                  : yd + (off[2] + i * s2) * (int64_t)es;
            memcpy(dst + (oy + i) * (int64_t)es, src, es);
        }
        oy += inner;
        int d = nd - 2;
        for (; d >= 0; d--) {
            for (int k = 0; k < 3; k++) off[k] += it.st[k][d];
            if (++idx[d] < it.dims[d]) break;
            for (int k = 0; k < 3; k++) off[k] -= it.st[k][d] * it.dims[d];
            idx[d] = 0;
        }
        if (d < 0) break;
    }
    kiln_status st = KILN_OK;
    if (str) {
        for (int64_t i = 0; i < out->numel; i++) {
            const char *s = ptrs[i] ? ptrs[i] : "";
            if (!core_tensor_set_string(out, i, s, strlen(s))) {
                st = ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory copying strings");
                break;
            }
        }
        free(ptrs);
    }
    return st;
}

/* ---- unary kernels ------------------------------------------------------------------- */

typedef void (*el_un_fn)(const void *x, void *y, int64_t n, const el_prm *p);

/* CT is the compute type: double for float inputs (accuracy of the reference path), the
 * element type for integers. */
#define UN_ROW(NAME, T, CT, TY, EXPR)                                                        \
    static void NAME(const void *px, void *py, int64_t n, const el_prm *p)                   \
    {                                                                                        \
        const T *X = (const T *)px;                                                          \
        TY *Y = (TY *)py;                                                                    \
        (void)p;                                                                             \
        for (int64_t i = 0; i < n; i++) {                                                    \
            CT x = (CT)X[i];                                                                 \
            Y[i] = (TY)(EXPR);                                                               \
        }                                                                                    \
    }

#define UN_FLOATS(NAME, EXPR)                                                                \
    UN_ROW(NAME##_f32, float, double, float, EXPR)                                           \
    UN_ROW(NAME##_f64, double, double, double, EXPR)
#define UN_SINTS(NAME, EXPR)                                                                 \
    UN_ROW(NAME##_i8, int8_t, int8_t, int8_t, EXPR)                                          \
    UN_ROW(NAME##_i16, int16_t, int16_t, int16_t, EXPR)                                      \
    UN_ROW(NAME##_i32, int32_t, int32_t, int32_t, EXPR)                                      \
    UN_ROW(NAME##_i64, int64_t, int64_t, int64_t, EXPR)
#define UN_UINTS(NAME, EXPR)                                                                 \
    UN_ROW(NAME##_u8, uint8_t, uint8_t, uint8_t, EXPR)                                       \
    UN_ROW(NAME##_u16, uint16_t, uint16_t, uint16_t, EXPR)                                   \
    UN_ROW(NAME##_u32, uint32_t, uint32_t, uint32_t, EXPR)                                   \
    UN_ROW(NAME##_u64, uint64_t, uint64_t, uint64_t, EXPR)
#define UN_TABLE_F(NAME) static const el_un_fn NAME##_fns[DI_N] = {NAME##_f32, NAME##_f64};
#define UN_TABLE_NUM(NAME)                                                                   \
    static const el_un_fn NAME##_fns[DI_N] = {NAME##_f32, NAME##_f64, NAME##_i8, NAME##_i16, \
        NAME##_i32, NAME##_i64, NAME##_u8, NAME##_u16, NAME##_u32, NAME##_u64, NULL, NULL};
#define UN_F(NAME, EXPR) UN_FLOATS(NAME, EXPR) UN_TABLE_F(NAME)
#define UN_NUM(NAME, FEXPR, SEXPR, UEXPR)                                                    \
    UN_FLOATS(NAME, FEXPR) UN_SINTS(NAME, SEXPR) UN_UINTS(NAME, UEXPR) UN_TABLE_NUM(NAME)

/* Round half to even, independent of the floating-point environment. */
static inline double el_round_even(double x)
{
    if (!isfinite(x)) return x;
    double f = floor(x), d = x - f;
    if (d > 0.5) return f + 1;
    if (d < 0.5) return f == 0 && signbit(x) ? -0.0 : f;
    return fmod(f, 2.0) == 0 ? f : f + 1;
}
static inline double el_sigmoid(double x)
{
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}
static inline double el_softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static inline double el_gelu(double x, int tanh_approx)
{
    if (tanh_approx)
        return 0.5 * x * (1.0 + tanh(0.79788456080286535588 * (x + 0.044715 * x * x * x)));
    return 0.5 * x * (1.0 + erf(x * 0.70710678118654752440));
}
static inline double el_clip(double x, double lo, double hi)
{
    double t = x < lo ? lo : x;
    return t > hi ? hi : t;
}

UN_NUM(abs, fabs(x), x < 0 ? 0 - EL_WRAP(x) : EL_WRAP(x), x)
UN_NUM(neg, -x, 0 - EL_WRAP(x), 0 - EL_WRAP(x))
UN_NUM(sign, x > 0 ? 1.0 : x < 0 ? -1.0 : x, (x > 0) - (x < 0), x > 0)
UN_NUM(relu, x < 0 ? 0.0 : x, x < 0 ? 0 : x, x)
UN_NUM(clip, el_clip(x, p->lo, p->hi),
       (x < p->ilo ? p->ilo : x) > p->ihi ? p->ihi : (x < p->ilo ? p->ilo : x),
       (x < p->ulo ? p->ulo : x) > p->uhi ? p->uhi : (x < p->ulo ? p->ulo : x))
UN_F(floor, floor(x))
UN_F(ceil, ceil(x))
UN_F(round, el_round_even(x))
UN_F(sqrt, sqrt(x))
UN_F(recip, 1.0 / x)
UN_F(exp, exp(x))
UN_F(log, log(x))
UN_F(sin, sin(x))
UN_F(cos, cos(x))
UN_F(tan, tan(x))
UN_F(asin, asin(x))
UN_F(acos, acos(x))
UN_F(atan, atan(x))
UN_F(sinh, sinh(x))
UN_F(cosh, cosh(x))
UN_F(asinh, asinh(x))
UN_F(acosh, acosh(x))
UN_F(atanh, atanh(x))
UN_F(erf, erf(x))
UN_F(tanh, tanh(x))
UN_F(leakyrelu, x < 0 ? p->alpha * x : x)
UN_F(elu, x < 0 ? p->alpha * expm1(x) : x)
UN_F(selu, x <= 0 ? p->gamma * (p->alpha * exp(x) - p->alpha) : p->gamma * x)
UN_F(celu, (x > 0 ? x : 0.0) + fmin(0.0, p->alpha * expm1(x / p->alpha)))
UN_F(sigmoid, el_sigmoid(x))
UN_F(hardsigmoid, fmax(0.0, fmin(1.0, p->alpha * x + p->beta)))
UN_F(hardswish, x * fmax(0.0, fmin(1.0, x / 6.0 + 0.5)))
UN_F(softplus, el_softplus(x))
UN_F(softsign, x / (1.0 + fabs(x)))
UN_F(thresholdedrelu, x > p->alpha ? x : 0.0)
UN_F(shrink, x < -p->alpha ? x + p->beta : x > p->alpha ? x - p->beta : 0.0)
UN_F(gelu, el_gelu(x, p->mode))
UN_F(mish, x * tanh(el_softplus(x)))
UN_F(swish, x * el_sigmoid(p->alpha * x))

UN_ROW(isnan_f32, float, double, uint8_t, isnan(x))
UN_ROW(isnan_f64, double, double, uint8_t, isnan(x))
UN_TABLE_F(isnan)
UN_ROW(isinf_f32, float, double, uint8_t, isinf(x) && ((x > 0) ? p->pos : p->neg))
UN_ROW(isinf_f64, double, double, uint8_t, isinf(x) && ((x > 0) ? p->pos : p->neg))
UN_TABLE_F(isinf)

UN_ROW(not_b, uint8_t, uint8_t, uint8_t, x == 0)
static const el_un_fn not_fns[DI_N] = {[DI_BOOL] = not_b};
UN_SINTS(bnot, ~x)
UN_UINTS(bnot, ~x)
static const el_un_fn bnot_fns[DI_N] = {NULL, NULL, bnot_i8, bnot_i16, bnot_i32, bnot_i64,
                                        bnot_u8, bnot_u16, bnot_u32, bnot_u64, NULL, NULL};

/* ---- unary driver -------------------------------------------------------------------- */

/* Apply fns to input 0. float16/bfloat16 compute in float32; integer inputs of ops that
 * only have float kernels go through double when ints_via_double (Shrink). */
static kiln_status el_unary(ops_ctx *c, const el_un_fn *fns, bool bool_out, bool ints_via_double,
                            const el_prm *p)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x) return ops_error(c, KILN_ERR_INVALID_MODEL, "missing input 0");
    kiln_dtype ct = x->dtype;
    int i = el_di(ct);
    el_un_fn fn = i >= 0 ? fns[i] : NULL;
    if (!fn && el_via_f32(ct) && fns[DI_F32]) { ct = KILN_DTYPE_FLOAT; fn = fns[DI_F32]; }
    if (!fn && ints_via_double && core_dtype_is_int(ct) && ct != KILN_DTYPE_BOOL && fns[DI_F64]) {
        ct = KILN_DTYPE_DOUBLE;
        fn = fns[DI_F64];
    }
    if (!fn) return ops_error(c, KILN_ERR_UNSUPPORTED, "dtype %s is not supported", core_dtype_name(x->dtype));
    kiln_dtype out_dt = bool_out ? KILN_DTYPE_BOOL : x->dtype;
    kiln_dtype ct_out = bool_out ? KILN_DTYPE_BOOL : ct;
    core_tensor *y = ops_output(c, 0, out_dt, x->ndim, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (x->numel == 0) return KILN_OK;
    core_tensor *tx = el_tmp_as(x, ct);
    core_tensor *ty = ct_out == out_dt ? y : core_tensor_create(ct_out, x->ndim, x->dims);
    kiln_status st = KILN_OK;
    if (!tx || !ty) {
        st = ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory for temporaries");
    } else {
        fn(tx->data, ty->data, x->numel, p);
        if (ty != y) el_convert_into(ty, y);
    }
    el_tmp_free(tx, x);
    if (ty && ty != y) core_tensor_destroy(ty);
    return st;
}

#define UNARY_OP(NAME, FNS) \
    static kiln_status NAME##_run(ops_ctx *c) { return el_unary(c, FNS, false, false, NULL); }
UNARY_OP(abs, abs_fns)
UNARY_OP(neg, neg_fns)
UNARY_OP(sign, sign_fns)
UNARY_OP(relu, relu_fns)
UNARY_OP(floor, floor_fns)
UNARY_OP(ceil, ceil_fns)
UNARY_OP(round, round_fns)
UNARY_OP(sqrt, sqrt_fns)
UNARY_OP(recip, recip_fns)
UNARY_OP(exp, exp_fns)
UNARY_OP(log, log_fns)
UNARY_OP(sin, sin_fns)
UNARY_OP(cos, cos_fns)
UNARY_OP(tan, tan_fns)
UNARY_OP(asin, asin_fns)
UNARY_OP(acos, acos_fns)
UNARY_OP(atan, atan_fns)
UNARY_OP(sinh, sinh_fns)
UNARY_OP(cosh, cosh_fns)
UNARY_OP(asinh, asinh_fns)
UNARY_OP(acosh, acosh_fns)
UNARY_OP(atanh, atanh_fns)
UNARY_OP(erf, erf_fns)
UNARY_OP(tanh, tanh_fns)
UNARY_OP(sigmoid, sigmoid_fns)
UNARY_OP(hardswish, hardswish_fns)
UNARY_OP(softplus, softplus_fns)
UNARY_OP(softsign, softsign_fns)
UNARY_OP(mish, mish_fns)
UNARY_OP(bitnot, bnot_fns)

static kiln_status not_run(ops_ctx *c) { return el_unary(c, not_fns, false, false, NULL); }
static kiln_status isnan_run(ops_ctx *c) { return el_unary(c, isnan_fns, true, false, NULL); }

static kiln_status isinf_run(ops_ctx *c)
{
    el_prm p = {0};
    p.neg = ops_attr_int(c, "detect_negative", 1) != 0;
    p.pos = ops_attr_int(c, "detect_positive", 1) != 0;
    return el_unary(c, isinf_fns, true, false, &p);
}

/* Activations with attributes: alpha/beta/gamma read with their ONNX defaults (a NULL
 * name leaves the parameter 0). */
static double el_attr(ops_ctx *c, const char *name, float dflt)
{
    return name ? ops_attr_float(c, name, dflt) : 0.0;
}

#define ATTR_OP(NAME, FNS, A, ADEF, B, BDEF, G, GDEF, INTS)                                  \
    static kiln_status NAME##_run(ops_ctx *c)                                                \
    {                                                                                        \
        el_prm p = {0};                                                                      \
        p.alpha = el_attr(c, A, ADEF);                                                       \
        p.beta = el_attr(c, B, BDEF);                                                        \
        p.gamma = el_attr(c, G, GDEF);                                                       \
        return el_unary(c, FNS, false, INTS, &p);                                            \
    }
ATTR_OP(leakyrelu, leakyrelu_fns, "alpha", 0.01f, NULL, 0, NULL, 0, false)
ATTR_OP(elu, elu_fns, "alpha", 1.0f, NULL, 0, NULL, 0, false)
ATTR_OP(selu, selu_fns, "alpha", 1.67326319217681884765625f, NULL, 0, "gamma",
        1.05070102214813232421875f, false)
ATTR_OP(celu, celu_fns, "alpha", 1.0f, NULL, 0, NULL, 0, false)
ATTR_OP(hardsigmoid, hardsigmoid_fns, "alpha", 0.2f, "beta", 0.5f, NULL, 0, false)
ATTR_OP(thresholdedrelu, thresholdedrelu_fns, "alpha", 1.0f, NULL, 0, NULL, 0, false)
ATTR_OP(shrink, shrink_fns, "lambd", 0.5f, "bias", 0.0f, NULL, 0, true)
ATTR_OP(swish, swish_fns, "alpha", 1.0f, NULL, 0, NULL, 0, false)

static kiln_status gelu_run(ops_ctx *c)
{
    el_prm p = {0};
    const char *ap = ops_attr_string(c, "approximate", "none");
    if (!strcmp(ap, "tanh")) p.mode = 1;
    else if (strcmp(ap, "none"))
        return ops_error(c, KILN_ERR_INVALID_MODEL, "approximate '%s' is not none or tanh", ap);
    return el_unary(c, gelu_fns, false, false, &p);
}

/* Clip: bounds from attributes before opset 11, from optional scalar inputs after. */
static kiln_status clip_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x) return ops_error(c, KILN_ERR_INVALID_MODEL, "missing input 0");
    el_prm p = {0};
    p.lo = -INFINITY;
    p.hi = INFINITY;
    p.ilo = INT64_MIN;
    p.ihi = INT64_MAX;
    p.ulo = 0;
    p.uhi = UINT64_MAX;
    if (ops_opset(c) < 11) {
        p.lo = ops_attr_float(c, "min", -FLT_MAX);
        p.hi = ops_attr_float(c, "max", FLT_MAX);
    } else {
        for (int k = 1; k <= 2; k++) {
            const core_tensor *b = ops_has_input(c, k) ? ops_input(c, k) : NULL;
            if (!b) continue;
            if (b->dtype != x->dtype)
                return ops_error(c, KILN_ERR_DTYPE, "bound input %d is %s, input is %s", k,
                                 core_dtype_name(b->dtype), core_dtype_name(x->dtype));
            if (b->numel != 1)
                return ops_error(c, KILN_ERR_SHAPE, "bound input %d has %lld elements, expected 1", k,
                                 (long long)b->numel);
            double d = core_load_f64(b->dtype, b->data, 0);
            int64_t iv = core_load_i64(b->dtype, b->data, 0);
            if (k == 1) { p.lo = d; p.ilo = iv; p.ulo = (uint64_t)iv; }
            else { p.hi = d; p.ihi = iv; p.uhi = (uint64_t)iv; }
        }
    }
    return el_unary(c, clip_fns, false, false, &p);
}

const ops_schema ops_table_elementwise[] = {
    {"Abs", "", 1, abs_run},
    {"Neg", "", 1, neg_run},
    {"Floor", "", 1, floor_run},
    {"Ceil", "", 1, ceil_run},
    {"Round", "", 11, round_run},
    {"Sqrt", "", 1, sqrt_run},
    {"Reciprocal", "", 1, recip_run},
    {"Exp", "", 1, exp_run},
    {"Log", "", 1, log_run},
    {"Sin", "", 7, sin_run},
    {"Cos", "", 7, cos_run},
    {"Tan", "", 7, tan_run},
    {"Asin", "", 7, asin_run},
    {"Acos", "", 7, acos_run},
    {"Atan", "", 7, atan_run},
    {"Sinh", "", 9, sinh_run},
    {"Cosh", "", 9, cosh_run},
    {"Asinh", "", 9, asinh_run},
    {"Acosh", "", 9, acosh_run},
    {"Atanh", "", 9, atanh_run},
    {"Erf", "", 9, erf_run},
    {"Sign", "", 9, sign_run},
    {"Not", "", 1, not_run},
    {"IsNaN", "", 9, isnan_run},
    {"IsInf", "", 10, isinf_run},
    {"BitwiseNot", "", 18, bitnot_run},
    {"Relu", "", 1, relu_run},
    {"LeakyRelu", "", 1, leakyrelu_run},
    {"PRelu", "", 1, prelu_run},
    {"Elu", "", 1, elu_run},
    {"Selu", "", 1, selu_run},
    {"Celu", "", 12, celu_run},
    {"Sigmoid", "", 1, sigmoid_run},
    {"HardSigmoid", "", 1, hardsigmoid_run},
    {"HardSwish", "", 14, hardswish_run},
    {"Softplus", "", 1, softplus_run},
    {"Softsign", "", 1, softsign_run},
    {"Tanh", "", 1, tanh_run},
    {"ThresholdedRelu", "", 10, thresholdedrelu_run},
    {"Shrink", "", 9, shrink_run},
    {"Gelu", "", 20, gelu_run},
    {"Mish", "", 18, mish_run},
    {"Swish", "", 24, swish_run},
    {"Clip", "", 1, clip_run},
    {"Add", "", 1, add_run},
    {"Sub", "", 1, sub_run},
    {"Mul", "", 1, mul_run},
    {"Div", "", 1, div_run},
    {"Pow", "", 1, pow_run},
    {"Mod", "", 10, mod_run},
    {"BitShift", "", 11, bitshift_run},
    {"BitwiseAnd", "", 18, bitand_run},
    {"BitwiseOr", "", 18, bitor_run},
    {"BitwiseXor", "", 18, bitxor_run},
    {"And", "", 1, and_run},
    {"Or", "", 1, or_run},
    {"Xor", "", 1, xor_run},
    {"Equal", "", 1, equal_run},
    {"Less", "", 1, less_run},
    {"LessOrEqual", "", 12, lessequal_run},
    {"Greater", "", 1, greater_run},
    {"GreaterOrEqual", "", 12, greaterequal_run},
    {"Max", "", 1, max_run},
    {"Min", "", 1, min_run},
    {"Sum", "", 1, sum_run},
    {"Mean", "", 1, mean_run},
    {"Where", "", 9, where_run},
    OPS_TABLE_END
};
