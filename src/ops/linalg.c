/* linalg.c — reference kernels for matrix products: MatMul, Gemm, MatMulInteger,
 * QLinearMatMul, Einsum and Det. Float products run through a blocked i-k-j kernel. */
#include "ops/ops.h"
#include "ops/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- dtype staging ---------------------------------------------------------------------- */



static bool la_is_f32ish(kiln_dtype t)
{
    return t == KILN_DTYPE_FLOAT || t == KILN_DTYPE_FLOAT16 || t == KILN_DTYPE_BFLOAT16;
}

static bool la_is_intish(kiln_dtype t)
{
    return t == KILN_DTYPE_INT8 || t == KILN_DTYPE_UINT8 || t == KILN_DTYPE_INT16 ||
           t == KILN_DTYPE_UINT16 || t == KILN_DTYPE_INT32 || t == KILN_DTYPE_UINT32 ||
           t == KILN_DTYPE_INT64 || t == KILN_DTYPE_UINT64;
}

/* Integer tensor as uint64 (two's complement wrap gives numpy's modular products). */
static uint64_t *la_load_u64(const core_tensor *t)
{
    uint64_t *p = core_malloc((size_t)(t->numel > 0 ? t->numel : 1) * sizeof(uint64_t));
    if (!p) return NULL;
    for (int64_t i = 0; i < t->numel; i++) p[i] = (uint64_t)core_load_i64(t->dtype, t->data, i);
    return p;
}

/* ---- GEMM kernels ------------------------------------------------------------------------
 * C[M,N] (row stride ldc) = A[M,K] x B[K,N], C overwritten. A is addressed through (row,
 * column) strides so a transposed A costs nothing; B must be row-major with row stride ldb
 * and unit column stride, so the innermost loop runs over contiguous memory and
 * vectorizes. Blocking keeps a KBxNB panel of B and 4 rows of C in cache; the 4x4 (rows x
 * k) register block cuts loads/stores of C by 4. */
#define LA_KB 256
#define LA_NB 512

#define LA_DEFINE_GEMM(NAME, T)                                                                 \
    static void NAME(int64_t M, int64_t N, int64_t K, const T *A, int64_t rsa, int64_t csa,     \
                     const T *B, int64_t ldb, T *C, int64_t ldc)                                \
    {                                                                                           \
        for (int64_t i = 0; i < M; i++) memset(C + i * ldc, 0, (size_t)N * sizeof(T));         \
        for (int64_t k0 = 0; k0 < K; k0 += LA_KB) {                                             \
            int64_t k1 = k0 + LA_KB < K ? k0 + LA_KB : K;                                       \
            for (int64_t j0 = 0; j0 < N; j0 += LA_NB) {                                         \
                int64_t nb = j0 + LA_NB < N ? LA_NB : N - j0;                                   \
                int64_t i = 0;                                                                  \
                for (; i + 4 <= M; i += 4) {                                                    \
                    T *restrict c0 = C + i * ldc + j0;                                          \
                    T *restrict c1 = c0 + ldc;                                                  \
                    T *restrict c2 = c1 + ldc;                                                  \
                    T *restrict c3 = c2 + ldc;                                                  \
                    const T *a0 = A + i * rsa, *a1 = a0 + rsa, *a2 = a1 + rsa, *a3 = a2 + rsa;  \
                    int64_t k = k0;                                                             \
                    for (; k + 4 <= k1; k += 4) {                                               \
                        const T *restrict b0 = B + k * ldb + j0;                                \
                        const T *restrict b1 = b0 + ldb;                                        \
                        const T *restrict b2 = b1 + ldb;                                        \
                        const T *restrict b3 = b2 + ldb;                                        \
                        T x00 = a0[k * csa], x01 = a0[(k + 1) * csa], x02 = a0[(k + 2) * csa],  \
                          x03 = a0[(k + 3) * csa];                                              \
                        T x10 = a1[k * csa], x11 = a1[(k + 1) * csa], x12 = a1[(k + 2) * csa],  \
                          x13 = a1[(k + 3) * csa];                                              \
                        T x20 = a2[k * csa], x21 = a2[(k + 1) * csa], x22 = a2[(k + 2) * csa],  \
                          x23 = a2[(k + 3) * csa];                                              \
                        T x30 = a3[k * csa], x31 = a3[(k + 1) * csa], x32 = a3[(k + 2) * csa],  \
                          x33 = a3[(k + 3) * csa];                                              \
                        for (int64_t j = 0; j < nb; j++) {                                      \
                            T y0 = b0[j], y1 = b1[j], y2 = b2[j], y3 = b3[j];                   \
                            c0[j] += x00 * y0 + x01 * y1 + x02 * y2 + x03 * y3;                 \
                            c1[j] += x10 * y0 + x11 * y1 + x12 * y2 + x13 * y3;                 \
                            c2[j] += x20 * y0 + x21 * y1 + x22 * y2 + x23 * y3;                 \
                            c3[j] += x30 * y0 + x31 * y1 + x32 * y2 + x33 * y3;                 \
                        }                                                                       \
                    }                                                                           \
                    for (; k < k1; k++) {                                                       \
                        const T *restrict b0 = B + k * ldb + j0;                                \
                        T x0 = a0[k * csa], x1 = a1[k * csa], x2 = a2[k * csa],                 \
                          x3 = a3[k * csa];                                                     \
                        for (int64_t j = 0; j < nb; j++) {                                      \
                            T y = b0[j];                                                        \
                            c0[j] += x0 * y;                                                    \
                            c1[j] += x1 * y;                                                    \
                            c2[j] += x2 * y;                                                    \
                            c3[j] += x3 * y;                                                    \
                        }                                                                       \
                    }                                                                           \
                }                                                                               \
                for (; i < M; i++) {                                                            \
                    T *restrict c0 = C + i * ldc + j0;                                          \
                    const T *a0 = A + i * rsa;                                                  \
                    for (int64_t k = k0; k < k1; k++) {                                         \
                        const T *restrict b0 = B + k * ldb + j0;                                \
                        T x0 = a0[k * csa];                                                     \
                        for (int64_t j = 0; j < nb; j++) c0[j] += x0 * b0[j];                   \
                    }                                                                           \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    }

LA_DEFINE_GEMM(la_gemm_f32, float)
LA_DEFINE_GEMM(la_gemm_f64, double)
LA_DEFINE_GEMM(la_gemm_u64, uint64_t)

/* C[M,N] = A[M,K] x B^T with A row-major (row stride lda) and B given as [N, K] row-major:
 * plain dot products. Used when M is small, where transposing B first would cost as much
 * as the product itself (a Linear layer at batch 1). */
#define LA_DEFINE_GEMM_BT(NAME, T)                                                              \
    static void NAME(int64_t M, int64_t N, int64_t K, const T *A, int64_t lda, const T *B,      \
                     T *C, int64_t ldc)                                                         \
    {                                                                                           \
        for (int64_t i = 0; i < M; i++)                                                         \
            for (int64_t j = 0; j < N; j++) {                                                   \
                const T *a = A + i * lda, *b = B + j * K;                                       \
                T s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                               \
                int64_t k = 0;                                                                  \
                for (; k + 4 <= K; k += 4) {                                                    \
                    s0 += a[k] * b[k];                                                          \
                    s1 += a[k + 1] * b[k + 1];                                                  \
                    s2 += a[k + 2] * b[k + 2];                                                  \
                    s3 += a[k + 3] * b[k + 3];                                                  \
                }                                                                               \
                for (; k < K; k++) s0 += a[k] * b[k];                                           \
                C[i * ldc + j] = (s0 + s1) + (s2 + s3);                                         \
            }                                                                                   \
    }

LA_DEFINE_GEMM_BT(la_gemm_bt_f32, float)
LA_DEFINE_GEMM_BT(la_gemm_bt_f64, double)

/* dst[K, N] = transpose of src[N, K], in cache-sized tiles. */
#define LA_DEFINE_TRANSPOSE(NAME, T)                                                            \
    static void NAME(int64_t N, int64_t K, const T *src, T *dst)                                \
    {                                                                                           \
        for (int64_t n0 = 0; n0 < N; n0 += 32)                                                  \
            for (int64_t k0 = 0; k0 < K; k0 += 32) {                                            \
                int64_t n1 = n0 + 32 < N ? n0 + 32 : N, k1 = k0 + 32 < K ? k0 + 32 : K;         \
                for (int64_t n = n0; n < n1; n++)                                               \
                    for (int64_t k = k0; k < k1; k++) dst[k * N + n] = src[n * K + k];         \
            }                                                                                   \
    }

LA_DEFINE_TRANSPOSE(la_transpose_f32, float)
LA_DEFINE_TRANSPOSE(la_transpose_f64, double)

/* Below this many rows of op(A), Gemm with transB multiplies by B^T directly. */
#define LA_BT_MAX_M 16

/* ---- batched matmul shapes (numpy matmul semantics) --------------------------------------- */

typedef struct la_mm {
    int64_t M, N, K;
    int nb;                           /* batch rank of the output */
    int64_t bdims[KILN_MAX_DIMS];
    int64_t astr[KILN_MAX_DIMS];      /* batch strides of A and B, in matrices */
    int64_t bstr[KILN_MAX_DIMS];
    int64_t nbatch;
    bool fold;                        /* B shared by every batch, A dense: one big GEMM */
    int out_ndim;
    int64_t out_dims[KILN_MAX_DIMS];
} la_mm;

static kiln_status la_mm_make(ops_ctx *c, const core_tensor *a, const core_tensor *b, la_mm *s)
{
    if (a->ndim < 1 || b->ndim < 1)
        return ops_error(c, KILN_ERR_SHAPE, "inputs must have rank >= 1 (got %d and %d)", a->ndim,
                         b->ndim);
    int anb = a->ndim >= 2 ? a->ndim - 2 : 0, bnb = b->ndim >= 2 ? b->ndim - 2 : 0;
    s->M = a->ndim >= 2 ? a->dims[a->ndim - 2] : 1;
    s->K = a->dims[a->ndim - 1];
    int64_t kb = b->ndim >= 2 ? b->dims[b->ndim - 2] : b->dims[0];
    s->N = b->ndim >= 2 ? b->dims[b->ndim - 1] : 1;
    if (kb != s->K)
        return ops_error(c, KILN_ERR_SHAPE,
                         "inner dimensions differ: A has %lld columns, B has %lld rows",
                         (long long)s->K, (long long)kb);
    if (!ops_broadcast_shape(anb, a->dims, bnb, b->dims, &s->nb, s->bdims))
        return ops_error(c, KILN_ERR_SHAPE, "batch dimensions of A and B do not broadcast");
    ops_broadcast_strides(anb, a->dims, s->nb, s->bdims, s->astr);
    ops_broadcast_strides(bnb, b->dims, s->nb, s->bdims, s->bstr);
    s->nbatch = core_shape_numel(s->nb, s->bdims);
    int64_t bcount = core_shape_numel(bnb, b->dims), acount = core_shape_numel(anb, a->dims);
    s->fold = bcount == 1 && acount == s->nbatch;
    s->out_ndim = 0;
    for (int i = 0; i < s->nb; i++) s->out_dims[s->out_ndim++] = s->bdims[i];
    if (a->ndim >= 2) s->out_dims[s->out_ndim++] = s->M;
    if (b->ndim >= 2) s->out_dims[s->out_ndim++] = s->N;
    if (s->out_ndim > KILN_MAX_DIMS)
        return ops_error(c, KILN_ERR_SHAPE, "output rank %d exceeds %d", s->out_ndim,
                         KILN_MAX_DIMS);
    return KILN_OK;
}

/* Matrix offsets of batch number bi in A and B. */
static void la_mm_offsets(const la_mm *s, int64_t bi, int64_t *ao, int64_t *bo)
{
    int64_t a = 0, b = 0;
    for (int d = s->nb - 1; d >= 0; d--) {
        int64_t idx = bi % s->bdims[d];
        bi /= s->bdims[d];
        a += idx * s->astr[d];
        b += idx * s->bstr[d];
    }
    *ao = a;
    *bo = b;
}

#define LA_DEFINE_MM(NAME, T, GEMM)                                                             \
    static void NAME(const la_mm *s, const T *A, const T *B, T *Y)                              \
    {                                                                                           \
        if (s->fold) {                                                                          \
            GEMM(s->nbatch * s->M, s->N, s->K, A, s->K, 1, B, s->N, Y, s->N);                   \
            return;                                                                             \
        }                                                                                       \
        for (int64_t bi = 0; bi < s->nbatch; bi++) {                                            \
            int64_t ao, bo;                                                                     \
            la_mm_offsets(s, bi, &ao, &bo);                                                     \
            GEMM(s->M, s->N, s->K, A + ao * s->M * s->K, s->K, 1, B + bo * s->K * s->N, s->N,   \
                 Y + bi * s->M * s->N, s->N);                                                   \
        }                                                                                       \
    }

LA_DEFINE_MM(la_mm_f32, float, la_gemm_f32)
LA_DEFINE_MM(la_mm_f64, double, la_gemm_f64)
LA_DEFINE_MM(la_mm_u64, uint64_t, la_gemm_u64)

/* ---- MatMul ------------------------------------------------------------------------------ */

static kiln_status matmul_run(ops_ctx *c)
{
    core_tensor *a = ops_input(c, 0), *b = ops_input(c, 1);
    if (!a || !b) return ops_error(c, KILN_ERR_INVALID_MODEL, "MatMul needs inputs A and B");
    if (a->dtype != b->dtype)
        return ops_error(c, KILN_ERR_DTYPE, "A is %s but B is %s", core_dtype_name(a->dtype),
                         core_dtype_name(b->dtype));
    kiln_dtype dt = a->dtype;
    if (!la_is_f32ish(dt) && dt != KILN_DTYPE_DOUBLE && !la_is_intish(dt))
        return ops_error(c, KILN_ERR_UNSUPPORTED, "dtype %s", core_dtype_name(dt));
    la_mm s;
    kiln_status st = la_mm_make(c, a, b, &s);
    if (st) return st;
    core_tensor *y = ops_output(c, 0, dt, s.out_ndim, s.out_dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    if (dt == KILN_DTYPE_FLOAT) {
        la_mm_f32(&s, a->data, b->data, y->data);
    } else if (dt == KILN_DTYPE_DOUBLE) {
        la_mm_f64(&s, a->data, b->data, y->data);
    } else if (la_is_f32ish(dt)) {
        bool oa, ob;
        float *fa = ops_tensor_f32(a, &oa), *fb = ops_tensor_f32(b, &ob);
        float *fy = core_malloc((size_t)y->numel * sizeof(float));
        if (fa && fb && fy) {
            la_mm_f32(&s, fa, fb, fy);
            ops_store_f32(y, fy, y->numel);
        }
        if (oa) free(fa);
        if (ob) free(fb);
        bool ok = fa && fb && fy;
        free(fy);
        if (!ok) return core_oom();
    } else {
        uint64_t *ia = la_load_u64(a), *ib = la_load_u64(b);
        uint64_t *iy = core_malloc((size_t)y->numel * sizeof(uint64_t));
        bool ok = ia && ib && iy;
        if (ok) {
            la_mm_u64(&s, ia, ib, iy);
            for (int64_t i = 0; i < y->numel; i++) core_store_i64(dt, y->data, i, (int64_t)iy[i]);
        }
        free(ia);
        free(ib);
        free(iy);
        if (!ok) return core_oom();
    }
    return KILN_OK;
}

/* ---- Gemm -------------------------------------------------------------------------------- */

static kiln_status gemm_run(ops_ctx *c)
{
    core_tensor *a = ops_input(c, 0), *b = ops_input(c, 1), *cc = ops_input(c, 2);
    if (!a || !b) return ops_error(c, KILN_ERR_INVALID_MODEL, "Gemm needs inputs A and B");
    if (a->ndim != 2 || b->ndim != 2)
        return ops_error(c, KILN_ERR_SHAPE, "A and B must be 2-D (got %d and %d dims)", a->ndim,
                         b->ndim);
    kiln_dtype dt = a->dtype;
    if (b->dtype != dt || (cc && cc->dtype != dt))
        return ops_error(c, KILN_ERR_DTYPE, "A, B and C must share one dtype");
    if (!la_is_f32ish(dt) && dt != KILN_DTYPE_DOUBLE && !la_is_intish(dt))
        return ops_error(c, KILN_ERR_UNSUPPORTED, "dtype %s", core_dtype_name(dt));
    bool ta = ops_attr_int(c, "transA", 0) != 0, tb = ops_attr_int(c, "transB", 0) != 0;
    double alpha = ops_attr_float(c, "alpha", 1.0f), beta = ops_attr_float(c, "beta", 1.0f);
    int64_t M = ta ? a->dims[1] : a->dims[0], K = ta ? a->dims[0] : a->dims[1];
    int64_t kb = tb ? b->dims[1] : b->dims[0], N = tb ? b->dims[0] : b->dims[1];
    if (K != kb)
        return ops_error(c, KILN_ERR_SHAPE, "op(A) is %lldx%lld but op(B) is %lldx%lld",
                         (long long)M, (long long)K, (long long)kb, (long long)N);
    int64_t ydims[2] = {M, N}, cstr[2] = {0, 0};
    if (cc) {
        if (cc->ndim > 2)
            return ops_error(c, KILN_ERR_SHAPE, "C has %d dims, expected at most 2", cc->ndim);
        for (int i = 0; i < cc->ndim; i++) {
            int64_t d = cc->dims[i], want = ydims[2 - cc->ndim + i];
            if (d != want && d != 1)
                return ops_error(c, KILN_ERR_SHAPE, "C dim %d is %lld, cannot broadcast to %lld",
                                 i, (long long)d, (long long)want);
        }
        ops_broadcast_strides(cc->ndim, cc->dims, 2, ydims, cstr);
    }
    core_tensor *y = ops_output(c, 0, dt, 2, ydims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    int64_t rsa = ta ? 1 : K, csa = ta ? M : 1;
    bool use_c = cc && beta != 0.0;
    if (dt == KILN_DTYPE_DOUBLE) {
        const double *B = b->data;
        double *Y = y->data;
        if (tb && !ta && M <= LA_BT_MAX_M) {
            la_gemm_bt_f64(M, N, K, a->data, K, B, Y, N);
        } else {
            double *bt = NULL;
            if (tb) {
                bt = core_malloc((size_t)(K * N > 0 ? K * N : 1) * sizeof(double));
                if (!bt) return core_oom();
                la_transpose_f64(N, K, B, bt);
                B = bt;
            }
            la_gemm_f64(M, N, K, a->data, rsa, csa, B, N, Y, N);
            free(bt);
        }
        const double *C = cc ? cc->data : NULL;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double v = alpha * Y[i * N + j];
                if (use_c) v += beta * C[i * cstr[0] + j * cstr[1]];
                Y[i * N + j] = v;
            }
        return KILN_OK;
    }
    if (la_is_f32ish(dt)) {
        bool oa = false, ob = false, oc = false;
        float *A = ops_tensor_f32(a, &oa), *B = ops_tensor_f32(b, &ob);
        float *C = use_c ? ops_tensor_f32(cc, &oc) : NULL;
        float *bt = NULL, *Y = NULL;
        bool ok = A && B && (!use_c || C);
        bool direct_bt = tb && !ta && M <= LA_BT_MAX_M;
        if (ok && tb && !direct_bt) {
            bt = core_malloc((size_t)(K * N > 0 ? K * N : 1) * sizeof(float));
            ok = bt != NULL;
            if (ok) la_transpose_f32(N, K, B, bt);
        }
        if (ok) {
            Y = dt == KILN_DTYPE_FLOAT ? (float *)y->data
                                       : core_malloc((size_t)y->numel * sizeof(float));
            ok = Y != NULL;
        }
        if (ok) {
            if (direct_bt) la_gemm_bt_f32(M, N, K, A, K, B, Y, N);
            else la_gemm_f32(M, N, K, A, rsa, csa, tb ? bt : B, N, Y, N);
            float fa = (float)alpha, fb = (float)beta;
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    float v = Y[i * N + j];
                    if (fa != 1.0f) v *= fa;
                    if (use_c) v += fb * C[i * cstr[0] + j * cstr[1]];
                    Y[i * N + j] = v;
                }
            ops_store_f32(y, Y, y->numel);
        }
        if (oa) free(A);
        if (ob) free(B);
        if (oc) free(C);
        free(bt);
        if (Y && Y != y->data) free(Y);
        return ok ? KILN_OK : core_oom();
    }
    /* integers: exact modular product, alpha/beta applied in double */
    uint64_t *A = la_load_u64(a), *B = la_load_u64(b), *bt = NULL, *Y = NULL;
    bool ok = A && B;
    if (ok) {
        bt = core_malloc((size_t)(K * N > 0 ? K * N : 1) * sizeof(uint64_t));
        Y = core_malloc((size_t)y->numel * sizeof(uint64_t));
        ok = bt && Y;
    }
    if (ok) {
        for (int64_t k = 0; k < K; k++)
            for (int64_t n = 0; n < N; n++) bt[k * N + n] = tb ? B[n * K + k] : B[k * N + n];
        la_gemm_u64(M, N, K, A, rsa, csa, bt, N, Y, N);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                int64_t v = (int64_t)Y[i * N + j];
                if (alpha != 1.0 || use_c) {
                    double d = alpha * (double)v;
                    if (use_c) d += beta * core_load_f64(dt, cc->data, i * cstr[0] + j * cstr[1]);
                    core_store_f64(dt, y->data, i * N + j, d);
                } else {
                    core_store_i64(dt, y->data, i * N + j, v);
                }
            }
    }
    free(A);
    free(B);
    free(bt);
    free(Y);
    return ok ? KILN_OK : core_oom();
}

/* ---- quantized matmuls -------------------------------------------------------------------- */

/* Strides that read parameter p (a zero point or scale) at every index of a tensor of shape
 * (ndim, dims). A scalar or 1-element p is per tensor. A 1-D p whose length equals the row
 * count dims[ndim-2] of a matrix operand is per row when per_row is set (it stands for
 * [M, 1]); otherwise p broadcasts numpy-style (a 1-D [N] p is then per column). */
static kiln_status la_param_strides(ops_ctx *c, const core_tensor *p, const char *what,
                                    int ndim, const int64_t *dims, bool per_row, int64_t *str)
{
    for (int i = 0; i < ndim; i++) str[i] = 0;
    if (p->numel == 1) return KILN_OK;
    if (per_row && p->ndim == 1 && ndim >= 2 && p->dims[0] == dims[ndim - 2]) {
        str[ndim - 2] = 1;
        return KILN_OK;
    }
    if (p->ndim > ndim)
        return ops_error(c, KILN_ERR_SHAPE, "%s has %d dims, more than its operand's %d", what,
                         p->ndim, ndim);
    for (int i = 0; i < p->ndim; i++) {
        int64_t d = p->dims[i], want = dims[ndim - p->ndim + i];
        if (d != want && d != 1)
            return ops_error(c, KILN_ERR_SHAPE, "%s dim %d is %lld, does not broadcast to %lld",
                             what, i, (long long)d, (long long)want);
    }
    ops_broadcast_strides(p->ndim, p->dims, ndim, dims, str);
    return KILN_OK;
}

/* x - zp as uint64 (two's complement); zp may be NULL. */
static kiln_status la_load_minus_zp(ops_ctx *c, const core_tensor *x, const core_tensor *zp,
                                    const char *what, bool per_row, uint64_t **out)
{
    *out = NULL;
    int64_t str[KILN_MAX_DIMS] = {0}, idx[KILN_MAX_DIMS] = {0};
    if (zp) {
        if (!la_is_intish(zp->dtype))
            return ops_error(c, KILN_ERR_DTYPE, "%s must be an integer tensor", what);
        if (zp->numel == 0) zp = NULL;
    }
    if (zp) {
        kiln_status st = la_param_strides(c, zp, what, x->ndim, x->dims, per_row, str);
        if (st) return st;
    }
    uint64_t *p = la_load_u64(x);
    if (!p) return core_oom();
    if (zp && x->numel > 0) {
        int64_t i = 0;
        do {
            int64_t off = 0;
            for (int d = 0; d < x->ndim; d++) off += idx[d] * str[d];
            p[i++] -= (uint64_t)core_load_i64(zp->dtype, zp->data, off);
        } while (ops_index_next(x->ndim, x->dims, idx));
    }
    *out = p;
    return KILN_OK;
}

static kiln_status matmulinteger_run(ops_ctx *c)
{
    core_tensor *a = ops_input(c, 0), *b = ops_input(c, 1);
    if (!a || !b) return ops_error(c, KILN_ERR_INVALID_MODEL, "MatMulInteger needs A and B");
    if (!la_is_intish(a->dtype) || !la_is_intish(b->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "A and B must be integer tensors");
    la_mm s;
    kiln_status st = la_mm_make(c, a, b, &s);
    if (st) return st;
    uint64_t *ia = NULL, *ib = NULL, *iy = NULL;
    st = la_load_minus_zp(c, a, ops_input(c, 2), "a_zero_point", true, &ia);
    if (!st) st = la_load_minus_zp(c, b, ops_input(c, 3), "b_zero_point", false, &ib);
    core_tensor *y = NULL;
    if (!st) {
        y = ops_output(c, 0, KILN_DTYPE_INT32, s.out_ndim, s.out_dims);
        if (!y) st = KILN_ERR_OUT_OF_MEMORY;
    }
    if (!st && y->numel > 0) {
        iy = core_malloc((size_t)y->numel * sizeof(uint64_t));
        if (!iy) st = core_oom();
        else {
            la_mm_u64(&s, ia, ib, iy);
            int32_t *yd = y->data;
            for (int64_t i = 0; i < y->numel; i++) yd[i] = (int32_t)(uint32_t)iy[i];
        }
    }
    free(ia);
    free(ib);
    free(iy);
    return st;
}

/* Round a float the way a computation in dtype t would store it (f16/bf16 scales). */
static float la_round_to(kiln_dtype t, float v)
{
    if (t == KILN_DTYPE_FLOAT16) return core_f16_to_f32(core_f32_to_f16(v));
    if (t == KILN_DTYPE_BFLOAT16) return core_bf16_to_f32(core_f32_to_bf16(v));
    return v;
}

/* Expand a scale parameter to one value per matrix row (per_row, of A: shape A[..., M, 1])
 * or per column (of B: shape B[..., 1, N]), so index = matrix * rows + r. */
static kiln_status la_expand_scale(ops_ctx *c, const core_tensor *p, const char *what,
                                   const core_tensor *x, bool per_row, float **out)
{
    *out = NULL;
    if (!p || p->numel == 0)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "%s is missing", what);
    if (!core_dtype_is_float(p->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "%s must be a float tensor", what);
    int64_t dims[KILN_MAX_DIMS];
    int nd = x->ndim;
    memcpy(dims, x->dims, sizeof(int64_t) * (size_t)nd);
    if (nd >= 2) {
        if (per_row) dims[nd - 1] = 1;
        else dims[nd - 2] = 1;
    } else {
        dims[0] = 1;
    }
    int64_t str[KILN_MAX_DIMS], idx[KILN_MAX_DIMS] = {0};
    kiln_status st = la_param_strides(c, p, what, nd, dims, per_row, str);
    if (st) return st;
    int64_t n = core_shape_numel(nd, dims);
    float *v = core_malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!v) return core_oom();
    if (n > 0) {
        int64_t i = 0;
        do {
            int64_t off = 0;
            for (int d = 0; d < nd; d++) off += idx[d] * str[d];
            v[i++] = (float)core_load_f64(p->dtype, p->data, off);
        } while (ops_index_next(nd, dims, idx));
    }
    *out = v;
    return KILN_OK;
}

static kiln_status qlinearmatmul_run(ops_ctx *c)
{
    core_tensor *a = ops_input(c, 0), *b = ops_input(c, 3);
    core_tensor *ys = ops_input(c, 6), *yzp = ops_input(c, 7);
    if (!a || !b) return ops_error(c, KILN_ERR_INVALID_MODEL, "QLinearMatMul needs a and b");
    if (!la_is_intish(a->dtype) || !la_is_intish(b->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "a and b must be integer tensors");
    if (!ys || ys->numel != 1 || !core_dtype_is_float(ys->dtype))
        return ops_error(c, KILN_ERR_UNSUPPORTED, "y_scale must be a single float");
    if (yzp && yzp->numel > 1)
        return ops_error(c, KILN_ERR_UNSUPPORTED, "y_zero_point must be a single value");
    kiln_dtype odt = yzp ? yzp->dtype : a->dtype;
    int64_t qmin, qmax;
    switch (odt) {
    case KILN_DTYPE_UINT8: qmin = 0; qmax = 255; break;
    case KILN_DTYPE_INT8: qmin = -128; qmax = 127; break;
    case KILN_DTYPE_UINT16: qmin = 0; qmax = 65535; break;
    case KILN_DTYPE_INT16: qmin = -32768; qmax = 32767; break;
    default: return ops_error(c, KILN_ERR_UNSUPPORTED, "output dtype %s", core_dtype_name(odt));
    }
    la_mm s;
    kiln_status st = la_mm_make(c, a, b, &s);
    if (st) return st;
    uint64_t *ia = NULL, *ib = NULL, *iy = NULL;
    float *as = NULL, *bs = NULL;
    st = la_load_minus_zp(c, a, ops_input(c, 2), "a_zero_point", true, &ia);
    if (!st) st = la_load_minus_zp(c, b, ops_input(c, 5), "b_zero_point", false, &ib);
    if (!st) st = la_expand_scale(c, ops_input(c, 1), "a_scale", a, true, &as);
    if (!st) st = la_expand_scale(c, ops_input(c, 4), "b_scale", b, false, &bs);
    core_tensor *y = NULL;
    if (!st) {
        y = ops_output(c, 0, odt, s.out_ndim, s.out_dims);
        if (!y) st = KILN_ERR_OUT_OF_MEMORY;
    }
    if (!st && y->numel > 0) {
        iy = core_malloc((size_t)y->numel * sizeof(uint64_t));
        if (!iy) st = core_oom();
    }
    if (!st && y->numel > 0) {
        la_mm_u64(&s, ia, ib, iy);
        kiln_dtype sdt = ops_input(c, 1)->dtype;
        float ysv = (float)core_load_f64(ys->dtype, ys->data, 0);
        double zp = yzp ? (double)core_load_i64(yzp->dtype, yzp->data, 0) : 0.0;
        for (int64_t bi = 0; bi < s.nbatch; bi++) {
            int64_t ao, bo;
            la_mm_offsets(&s, bi, &ao, &bo);
            if (s.fold) ao = bi;
            for (int64_t m = 0; m < s.M; m++)
                for (int64_t n = 0; n < s.N; n++) {
                    /* the multiplier is formed in the scales' precision, as numpy does */
                    float mult = la_round_to(sdt, as[ao * s.M + m] * bs[bo * s.N + n]);
                    mult = la_round_to(sdt, mult / ysv);
                    int64_t o = (bi * s.M + m) * s.N + n;
                    double v = nearbyint((double)(int32_t)(uint32_t)iy[o] * mult + zp);
                    if (v < (double)qmin) v = (double)qmin;
                    if (v > (double)qmax) v = (double)qmax;
                    core_store_i64(odt, y->data, o, (int64_t)v);
                }
        }
    }
    free(ia);
    free(ib);
    free(iy);
    free(as);
    free(bs);
    return st;
}

/* ---- Einsum ------------------------------------------------------------------------------
 * General evaluation by index iteration: every label gets a size; each operand gets one
 * stride per label (the sum of the strides of its dims carrying that label, which reads
 * diagonals for repeated labels). The output is iterated in its label order and, for each
 * element, the summed labels are iterated with running operand offsets. */
#define LA_EIN_MAXOPS 32
#define LA_EIN_LABELS (52 + KILN_MAX_DIMS) /* a-z, A-Z, then ellipsis dims */

static int la_ein_label(char ch)
{
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    return -1;
}

/* Parse one term into label ids; an ellipsis expands to n_ell ids 52.. right-aligned to the
 * ellipsis rank e_rank (ids 52 + e_rank - n_ell ...). Returns the label count or -1. */
static int la_ein_term(const char *s, size_t len, int rank, int e_rank, int *labels, bool *has_ell,
                       int *n_ell)
{
    int n = 0, explicit_n = 0;
    *has_ell = false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') continue;
        if (s[i] == '.') {
            if (i + 2 >= len) return -1;
            if (s[i + 1] != '.' || s[i + 2] != '.' || *has_ell) return -1;
            *has_ell = true;
            i += 2;
            continue;
        }
        if (la_ein_label(s[i]) < 0) return -1;
        explicit_n++;
    }
    *n_ell = *has_ell ? rank - explicit_n : 0;
    if (*n_ell < 0 || (!*has_ell && explicit_n != rank)) return -1;
    if (*n_ell > e_rank) return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') continue;
        if (s[i] == '.') {
            for (int e = 0; e < *n_ell; e++) labels[n++] = 52 + (e_rank - *n_ell) + e;
            i += 2;
            continue;
        }
        labels[n++] = la_ein_label(s[i]);
    }
    return n;
}

static kiln_status einsum_run(ops_ctx *c)
{
    const char *eq = ops_attr_string(c, "equation", NULL);
    if (!eq) return ops_error(c, KILN_ERR_INVALID_MODEL, "missing attribute 'equation'");
    int nops = ops_n_inputs(c);
    if (nops < 1 || nops > LA_EIN_MAXOPS)
        return ops_error(c, KILN_ERR_UNSUPPORTED, "%d operands (1..%d supported)", nops,
                         LA_EIN_MAXOPS);
    core_tensor *in[LA_EIN_MAXOPS];
    for (int i = 0; i < nops; i++) {
        in[i] = ops_input(c, i);
        if (!in[i]) return ops_error(c, KILN_ERR_INVALID_MODEL, "operand %d is missing", i);
        if (in[i]->dtype != in[0]->dtype)
            return ops_error(c, KILN_ERR_DTYPE, "operand %d is %s, operand 0 is %s", i,
                             core_dtype_name(in[i]->dtype), core_dtype_name(in[0]->dtype));
    }
    kiln_dtype dt = in[0]->dtype;
    bool isfloat = core_dtype_is_float(dt);
    if (!isfloat && !la_is_intish(dt))
        return ops_error(c, KILN_ERR_UNSUPPORTED, "dtype %s", core_dtype_name(dt));

    /* split the equation into terms */
    const char *arrow = strstr(eq, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - eq) : strlen(eq);
    const char *tstart[LA_EIN_MAXOPS];
    size_t tlen[LA_EIN_MAXOPS];
    int nterms = 0;
    const char *p = eq;
    for (;;) {
        const char *comma = memchr(p, ',', lhs_len - (size_t)(p - eq));
        const char *end = comma ? comma : eq + lhs_len;
        if (nterms >= LA_EIN_MAXOPS)
            return ops_error(c, KILN_ERR_INVALID_MODEL, "too many terms in '%s'", eq);
        tstart[nterms] = p;
        tlen[nterms++] = (size_t)(end - p);
        if (!comma) break;
        p = comma + 1;
    }
    if (nterms != nops)
        return ops_error(c, KILN_ERR_INVALID_MODEL, "equation '%s' has %d terms for %d operands",
                         eq, nterms, nops);

    /* ellipsis rank: the largest count of dims any ellipsis stands for */
    int e_rank = 0;
    for (int t = 0; t < nops; t++) {
        int explicit_n = 0;
        bool ell = false;
        for (size_t i = 0; i < tlen[t]; i++) {
            if (tstart[t][i] == '.') ell = true;
            else if (la_ein_label(tstart[t][i]) >= 0) explicit_n++;
        }
        if (ell && in[t]->ndim - explicit_n > e_rank) e_rank = in[t]->ndim - explicit_n;
    }
    int64_t size[LA_EIN_LABELS];
    int count[LA_EIN_LABELS] = {0};
    for (int l = 0; l < LA_EIN_LABELS; l++) size[l] = -1;
    int64_t stride[LA_EIN_MAXOPS][LA_EIN_LABELS];
    memset(stride, 0, sizeof stride);
    for (int t = 0; t < nops; t++) {
        int labels[KILN_MAX_DIMS + 64];
        bool ell;
        int n_ell;
        int n = la_ein_term(tstart[t], tlen[t], in[t]->ndim, e_rank, labels, &ell, &n_ell);
        if (n < 0 || n != in[t]->ndim)
            return ops_error(c, KILN_ERR_INVALID_MODEL,
                             "term %d of '%s' does not match operand rank %d", t, eq, in[t]->ndim);
        int64_t cs[KILN_MAX_DIMS];
        ops_contiguous_strides(in[t]->ndim, in[t]->dims, cs);
        for (int d = 0; d < n; d++) {
            int l = labels[d];
            int64_t dim = in[t]->dims[d];
            count[l]++;
            if (l >= 52 && dim == 1) {
                if (size[l] < 0) size[l] = 1;
                continue; /* broadcast ellipsis dim: stride stays 0 */
            }
            if (size[l] < 0 || (l >= 52 && size[l] == 1)) size[l] = dim;
            else if (size[l] != dim)
                return ops_error(c, KILN_ERR_SHAPE,
                                 "label '%c' has size %lld and %lld", l < 26 ? 'A' + l : l < 52 ? 'a' + l - 26 : '.',
                                 (long long)size[l], (long long)dim);
            stride[t][l] += cs[d];
        }
    }
    for (int e = 0; e < e_rank; e++)
        if (size[52 + e] < 0) size[52 + e] = 1;

    /* output labels */
    int out_l[LA_EIN_LABELS], n_out = 0;
    bool in_out[LA_EIN_LABELS] = {false};
    if (arrow) {
        const char *r = arrow + 2;
        size_t rl = strlen(r);
        bool ell = false;
        for (size_t i = 0; i < rl; i++) {
            if (r[i] == ' ') continue;
            if (r[i] == '.') {
                if (i + 2 >= rl) goto bad_rhs;
                if (r[i + 1] != '.' || r[i + 2] != '.' || ell) goto bad_rhs;
                ell = true;
                for (int e = 0; e < e_rank; e++) {
                    out_l[n_out++] = 52 + e;
                    in_out[52 + e] = true;
                }
                i += 2;
                continue;
            }
            int l = la_ein_label(r[i]);
            if (l < 0 || size[l] < 0 || in_out[l]) goto bad_rhs;
            in_out[l] = true;
            out_l[n_out++] = l;
        }
    } else {
        for (int e = 0; e < e_rank; e++) {
            out_l[n_out++] = 52 + e;
            in_out[52 + e] = true;
        }
        for (int l = 0; l < 52; l++)
            if (count[l] == 1) {
                out_l[n_out++] = l;
                in_out[l] = true;
            }
    }
    if (n_out > KILN_MAX_DIMS)
        return ops_error(c, KILN_ERR_SHAPE, "output rank %d exceeds %d", n_out, KILN_MAX_DIMS);
    int sum_l[LA_EIN_LABELS], n_sum = 0;
    for (int l = 0; l < LA_EIN_LABELS; l++)
        if (size[l] >= 0 && !in_out[l]) sum_l[n_sum++] = l;

    int64_t odims[KILN_MAX_DIMS];
    for (int i = 0; i < n_out; i++) odims[i] = size[out_l[i]];
    core_tensor *y = ops_output(c, 0, dt, n_out, odims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    int64_t sum_total = 1;
    for (int i = 0; i < n_sum; i++) sum_total *= size[sum_l[i]];

    int64_t oidx[KILN_MAX_DIMS] = {0};
    int64_t sidx[LA_EIN_LABELS];
    int64_t base[LA_EIN_MAXOPS], off[LA_EIN_MAXOPS];
    for (int64_t o = 0; o < y->numel; o++) {
        for (int t = 0; t < nops; t++) {
            base[t] = 0;
            for (int i = 0; i < n_out; i++) base[t] += oidx[i] * stride[t][out_l[i]];
            off[t] = base[t];
        }
        double accf = 0.0;
        uint64_t acci = 0;
        if (sum_total > 0) {
            for (int i = 0; i < n_sum; i++) sidx[i] = 0;
            for (;;) {
                if (isfloat) {
                    double prod = 1.0;
                    for (int t = 0; t < nops; t++) prod *= core_load_f64(dt, in[t]->data, off[t]);
                    accf += prod;
                } else {
                    uint64_t prod = 1;
                    for (int t = 0; t < nops; t++)
                        prod *= (uint64_t)core_load_i64(dt, in[t]->data, off[t]);
                    acci += prod;
                }
                int i = n_sum - 1;
                for (; i >= 0; i--) {
                    int l = sum_l[i];
                    if (++sidx[i] < size[l]) {
                        for (int t = 0; t < nops; t++) off[t] += stride[t][l];
                        break;
                    }
                    sidx[i] = 0;
                    for (int t = 0; t < nops; t++) off[t] -= stride[t][l] * (size[l] - 1);
                }
                if (i < 0) break;
            }
        }
        if (isfloat) core_store_f64(dt, y->data, o, accf);
        else core_store_i64(dt, y->data, o, (int64_t)acci);
        ops_index_next(n_out, odims, oidx);
    }
    return KILN_OK;
bad_rhs:
    return ops_error(c, KILN_ERR_INVALID_MODEL, "bad output term in equation '%s'", eq);
}

/* ---- Det --------------------------------------------------------------------------------- */

static kiln_status det_run(ops_ctx *c)
{
    core_tensor *x = ops_input(c, 0);
    if (!x) return ops_error(c, KILN_ERR_INVALID_MODEL, "Det needs an input");
    if (!core_dtype_is_float(x->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "dtype %s, expected a float type",
                         core_dtype_name(x->dtype));
    if (x->ndim < 2 || x->dims[x->ndim - 1] != x->dims[x->ndim - 2])
        return ops_error(c, KILN_ERR_SHAPE, "input must be [*, M, M]");
    int64_t n = x->dims[x->ndim - 1];
    core_tensor *y = ops_output(c, 0, x->dtype, x->ndim - 2, x->dims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    double *m = core_malloc((size_t)(n * n > 0 ? n * n : 1) * sizeof(double));
    if (!m) return core_oom();
    for (int64_t b = 0; b < y->numel; b++) {
        for (int64_t i = 0; i < n * n; i++) m[i] = core_load_f64(x->dtype, x->data, b * n * n + i);
        double det = 1.0;
        for (int64_t k = 0; k < n && det != 0.0; k++) {
            int64_t piv = k;
            for (int64_t i = k + 1; i < n; i++)
                if (fabs(m[i * n + k]) > fabs(m[piv * n + k])) piv = i;
            if (m[piv * n + k] == 0.0) { det = 0.0; break; }
            if (piv != k) {
                for (int64_t j = 0; j < n; j++) {
                    double t = m[k * n + j];
                    m[k * n + j] = m[piv * n + j];
                    m[piv * n + j] = t;
                }
                det = -det;
            }
            double d = m[k * n + k];
            det *= d;
            for (int64_t i = k + 1; i < n; i++) {
                double f = m[i * n + k] / d;
                if (f == 0.0) continue;
                for (int64_t j = k + 1; j < n; j++) m[i * n + j] -= f * m[k * n + j];
            }
        }
        core_store_f64(y->dtype, y->data, b, det);
    }
    free(m);
    return KILN_OK;
}

const ops_schema ops_table_linalg[] = {
    {"MatMul", "", 1, matmul_run},
    {"Gemm", "", 1, gemm_run},
    {"MatMulInteger", "", 10, matmulinteger_run},
    {"QLinearMatMul", "", 10, qlinearmatmul_run},
    {"Einsum", "", 12, einsum_run},
    {"Det", "", 11, det_run},
    OPS_TABLE_END
};
