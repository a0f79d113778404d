/* copy.c — fast data movement for any fixed-size dtype: Concat, Split, Slice and Transpose,
 * threaded over output ranges (Concat of short rows, as on the channel axis of NHWC tensors,
 * over whole rows). Slices and permutations become one strided gather with merged
 * dims (contiguous rows by memcpy); a permutation that moves the input's last dim is copied in
 * cache-sized 2-D tiles, except few-channel interleaves (NCHW <-> NHWC of images), which have
 * their own loops. Outputs are not zero-filled first (every element is written). Strings and
 * malformed nodes go to the reference (which reports the errors). */
#include "cpu/cpu_misc.h"
#include "ops/util.h"
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include "cpu/ukernels/avx512-math.h"
#define CP_X86 1
#endif

#define CP_MIN_TILE 262144 /* elements: copies are memory-bound, threads pay off late */
#define CP_MIN_THREAD 65536 /* elements per thread for the one-range-per-thread copies */
#define CP_BLOCK 32
#define CP_SMALL 16        /* few-channel transposes: the short dim at most this */
#define CP_SMALL_MIN 32768 /* elements per thread before a few-channel transpose is threaded */

/* Runs fn over [0, n) in exactly the pool's thread count of equal ranges (fewer when a range
 * would hold under min items; inline when one). Memory-bound loops want one long stream per
 * core rather than many short tiles. */
static void cp_split_threads(core_threadpool *pool, int64_t n, int64_t min,
                             void (*fn)(void *arg, int64_t b, int64_t e), void *arg)
{
    if (n <= 0) return;
    int64_t nt = core_threadpool_size(pool), lim = n / (min > 0 ? min : 1);
    if (nt > lim) nt = lim;
    if (nt <= 1) {
        fn(arg, 0, n);
        return;
    }
    core_threadpool_parallel_for(pool, n, (n + nt - 1) / nt, fn, arg);
}

static bool cp_esize_ok(const core_tensor *t)
{
    if (t->dtype == KILN_DTYPE_STRING) return false;
    size_t es = core_dtype_size(t->dtype);
    return es == 1 || es == 2 || es == 4 || es == 8;
}

/* ---- strided gather into a contiguous output ------------------------------------------------ */

typedef struct cp_plan {
    int nd;
    int64_t dims[KILN_MAX_DIMS], ss[KILN_MAX_DIMS];
    int64_t soff;
    size_t es;
    const char *src;
    char *dst;
    int64_t total, tile;
} cp_plan;

/* Output dims od (contiguous) read from src at offset soff with strides ss: drop size-1
 * dims, merge dims that stay linear in the source. */
static void cp_plan_make(cp_plan *p, int nd, const int64_t *od, const int64_t *ss)
{
    p->nd = 0;
    for (int i = 0; i < nd; i++) {
        if (od[i] == 1) continue;
        int n = p->nd;
        if (n > 0 && p->ss[n - 1] == ss[i] * od[i]) {
            p->dims[n - 1] *= od[i];
            p->ss[n - 1] = ss[i];
        } else {
            p->dims[n] = od[i];
            p->ss[n] = ss[i];
            p->nd++;
        }
    }
    if (p->nd == 0) {
        p->nd = 1;
        p->dims[0] = 1;
        p->ss[0] = 1;
    }
}

#define CP_STRIDED(T)                                                                          \
    {                                                                                          \
        const T *s_ = (const T *)p->src + so;                                                  \
        T *d_ = (T *)p->dst + b;                                                               \
        for (int64_t k = 0; k < len; k++) d_[k] = s_[k * st];                                  \
    }                                                                                          \
    break;

static void cp_gather_tile(void *arg, int64_t b, int64_t e)
{
    const cp_plan *p = arg;
    int nd = p->nd;
    int64_t inner = p->dims[nd - 1], st = p->ss[nd - 1];
    int64_t r = b / inner, col = b % inner, idx[KILN_MAX_DIMS], off = p->soff;
    for (int d = nd - 2; d >= 0; d--) {
        idx[d] = r % p->dims[d];
        r /= p->dims[d];
        off += idx[d] * p->ss[d];
    }
    while (b < e) {
        int64_t len = inner - col < e - b ? inner - col : e - b;
        int64_t so = off + col * st;
        if (st == 1) {
            memcpy(p->dst + (size_t)b * p->es, p->src + (size_t)so * p->es, (size_t)len * p->es);
        } else {
            switch (p->es) {
            case 1: CP_STRIDED(uint8_t)
            case 2: CP_STRIDED(uint16_t)
            case 4: CP_STRIDED(uint32_t)
            default: CP_STRIDED(uint64_t)
            }
        }
        b += len;
        col = 0;
        for (int d = nd - 2; d >= 0; d--) {
            off += p->ss[d];
            if (++idx[d] < p->dims[d]) break;
            off -= p->ss[d] * p->dims[d];
            idx[d] = 0;
        }
    }
}

/* Output [outer..., A, B] where B's source stride is sb != 1 and A's is 1: copy in
 * CP_BLOCK x CP_BLOCK tiles. Task t = (outer index, block of A). */
#define CP_TILE2D(T)                                                                           \
    for (int64_t b0 = 0; b0 < B; b0 += CP_BLOCK) {                                             \
        int64_t b1 = b0 + CP_BLOCK < B ? b0 + CP_BLOCK : B;                                    \
        for (int64_t a = a0; a < a1; a++) {                                                    \
            const T *s_ = (const T *)p->src + off + a;                                         \
            T *d_ = (T *)p->dst + (o * A + a) * B;                                             \
            for (int64_t bb = b0; bb < b1; bb++) d_[bb] = s_[bb * sb];                         \
        }                                                                                      \
    }                                                                                          \
    break;

static void cp_tile2d(void *arg, int64_t tb, int64_t te)
{
    const cp_plan *p = arg;
    int nd = p->nd;
    int64_t A = p->dims[nd - 2], B = p->dims[nd - 1], sb = p->ss[nd - 1];
    int64_t nab = (A + CP_BLOCK - 1) / CP_BLOCK;
    for (int64_t t = tb; t < te; t++) {
        int64_t o = t / nab, a0 = (t % nab) * CP_BLOCK, a1 = a0 + CP_BLOCK < A ? a0 + CP_BLOCK : A;
        int64_t r = o, off = p->soff;
        for (int d = nd - 3; d >= 0; d--) {
            off += (r % p->dims[d]) * p->ss[d];
            r /= p->dims[d];
        }
        if (p->es == 4) {
            const cpu_misc_ukernels *uk = cpu_misc_ukernels_get();
            for (int64_t b0 = 0; b0 < B; b0 += CP_BLOCK) {
                int64_t b1 = b0 + CP_BLOCK < B ? b0 + CP_BLOCK : B;
                uk->x32_transpose((const uint32_t *)p->src + off + a0 + b0 * sb, sb,
                                  (uint32_t *)p->dst + (o * A + a0) * B + b0, B, (size_t)(a1 - a0),
                                  (size_t)(b1 - b0));
            }
            continue;
        }
        switch (p->es) {
        case 1: CP_TILE2D(uint8_t)
        case 2: CP_TILE2D(uint16_t)
        default: CP_TILE2D(uint64_t)
        }
    }
}

/* ---- few-channel transposes (4-byte elements) -------------------------------------------------
 * Output [outer..., A, B] with A's source stride 1 and B's sb. Interleave (B <= CP_SMALL, as
 * NCHW -> NHWC of an image): d[a * B + j] = s[a + j * sb]. De-interleave (A <= CP_SMALL, as
 * NHWC -> NCHW of few channels): d[i * B + b] = s[i + b * sb]. Both are threaded over the
 * long dim flattened with the outer dims; 3 channels have AVX-512 permute kernels, other
 * counts unrolled scalar loops (still one load and one store per element). */

/* d[a * B + j] = s[a + j * sb] for a < n, j < B. */
static inline __attribute__((always_inline)) void cp_il_scalar_n(const uint32_t *s, int64_t sb, uint32_t *d,
                                                                 int64_t n, int64_t B)
{
    for (int64_t a = 0; a < n; a++)
        for (int64_t j = 0; j < B; j++) d[a * B + j] = s[a + j * sb];
}

static void cp_il_scalar(const uint32_t *s, int64_t sb, uint32_t *d, int64_t n, int64_t B)
{
    switch (B) { /* constant B: the inner loop unrolls */
    case 1: cp_il_scalar_n(s, sb, d, n, 1); break;
    case 2: cp_il_scalar_n(s, sb, d, n, 2); break;
    case 3: cp_il_scalar_n(s, sb, d, n, 3); break;
    case 4: cp_il_scalar_n(s, sb, d, n, 4); break;
    default: cp_il_scalar_n(s, sb, d, n, B); break;
    }
}

/* d[i * ds + b] = s[i + b * sb] for i < A, b < n. */
static inline __attribute__((always_inline)) void cp_dl_scalar_n(const uint32_t *s, int64_t sb, uint32_t *d,
                                                                 int64_t ds, int64_t n, int64_t A)
{
    for (int64_t b = 0; b < n; b++)
        for (int64_t i = 0; i < A; i++) d[i * ds + b] = s[i + b * sb];
}

static void cp_dl_scalar(const uint32_t *s, int64_t sb, uint32_t *d, int64_t ds, int64_t n, int64_t A)
{
    switch (A) {
    case 1: cp_dl_scalar_n(s, sb, d, ds, n, 1); break;
    case 2: cp_dl_scalar_n(s, sb, d, ds, n, 2); break;
    case 3: cp_dl_scalar_n(s, sb, d, ds, n, 3); break;
    case 4: cp_dl_scalar_n(s, sb, d, ds, n, 4); break;
    default: cp_dl_scalar_n(s, sb, d, ds, n, A); break;
    }
}

#ifdef CP_X86
/* 3 planes -> 16 interleaved pixels per step: each output vector takes its first two channels
 * from two planes with one two-source permute, the third under a mask. */
static CPU_AVX512 void cp_il3_avx512(const uint32_t *s, int64_t sb, uint32_t *d, int64_t n)
{
    int32_t i1[3][16], i2[3][16];
    __mmask16 m[3];
    for (int k = 0; k < 3; k++) {
        m[k] = 0;
        for (int i = 0; i < 16; i++) {
            int j = 16 * k + i, p = j / 3, ch = j % 3;
            i1[k][i] = ch == 0 ? p : ch == 1 ? 16 + p : 0;
            i2[k][i] = p;
            if (ch == 2) m[k] = (__mmask16)(m[k] | (1u << i));
        }
    }
    const __m512i a0 = _mm512_loadu_si512(i1[0]), a1 = _mm512_loadu_si512(i1[1]), a2 = _mm512_loadu_si512(i1[2]);
    const __m512i b0 = _mm512_loadu_si512(i2[0]), b1 = _mm512_loadu_si512(i2[1]), b2 = _mm512_loadu_si512(i2[2]);
    int64_t a = 0;
    for (; a + 16 <= n; a += 16) {
        __m512i r = _mm512_loadu_si512(s + a), g = _mm512_loadu_si512(s + a + sb), b = _mm512_loadu_si512(s + a + 2 * sb);
        uint32_t *o = d + a * 3;
        _mm512_storeu_si512(o, _mm512_mask_permutexvar_epi32(_mm512_permutex2var_epi32(r, a0, g), m[0], b0, b));
        _mm512_storeu_si512(o + 16, _mm512_mask_permutexvar_epi32(_mm512_permutex2var_epi32(r, a1, g), m[1], b1, b));
        _mm512_storeu_si512(o + 32, _mm512_mask_permutexvar_epi32(_mm512_permutex2var_epi32(r, a2, g), m[2], b2, b));
    }
    cp_il_scalar_n(s + a, sb, d + a * 3, n - a, 3);
}

/* 16 interleaved 3-channel pixels -> 3 planes per step (the inverse permutes). */
static CPU_AVX512 void cp_dl3_avx512(const uint32_t *s, int64_t sb, uint32_t *d, int64_t ds, int64_t n)
{
    int32_t i1[3][16], i2[3][16];
    __mmask16 m[3];
    for (int ch = 0; ch < 3; ch++) {
        m[ch] = 0;
        for (int p = 0; p < 16; p++) {
            int q = 3 * p + ch;
            i1[ch][p] = q < 32 ? q : 0;
            i2[ch][p] = q >= 32 ? q - 32 : 0;
            if (q >= 32) m[ch] = (__mmask16)(m[ch] | (1u << p));
        }
    }
    const __m512i a0 = _mm512_loadu_si512(i1[0]), a1 = _mm512_loadu_si512(i1[1]), a2 = _mm512_loadu_si512(i1[2]);
    const __m512i b0 = _mm512_loadu_si512(i2[0]), b1 = _mm512_loadu_si512(i2[1]), b2 = _mm512_loadu_si512(i2[2]);
    int64_t b = 0;
    for (; b + 16 <= n; b += 16) {
        const uint32_t *x = s + b * 3;
        __m512i v0 = _mm512_loadu_si512(x), v1 = _mm512_loadu_si512(x + 16), v2 = _mm512_loadu_si512(x + 32);
        _mm512_storeu_si512(d + b, _mm512_mask_permutexvar_epi32(_mm512_permutex2var_epi32(v0, a0, v1), m[0], b0, v2));
        _mm512_storeu_si512(d + ds + b, _mm512_mask_permutexvar_epi32(_mm512_permutex2var_epi32(v0, a1, v1), m[1], b1, v2));
        _mm512_storeu_si512(d + 2 * ds + b, _mm512_mask_permutexvar_epi32(_mm512_permutex2var_epi32(v0, a2, v1), m[2], b2, v2));
    }
    cp_dl_scalar_n(s + b * 3, sb, d + b, ds, n - b, 3);
}
#endif

static bool cp_isa_avx512(void)
{
#ifdef CP_X86
    return !strcmp(cpu_ukernels_get()->isa, "avx512");
#else
    return false;
#endif
}

/* Source offset of outer index o (the dims before the last two). */
static int64_t cp_outer_off(const cp_plan *p, int64_t o)
{
    int64_t off = p->soff;
    for (int d = p->nd - 3; d >= 0; d--) {
        off += (o % p->dims[d]) * p->ss[d];
        o /= p->dims[d];
    }
    return off;
}

/* Interleave over flattened (outer, a) in [b, e). */
static void cp_il_tile(void *arg, int64_t b, int64_t e)
{
    const cp_plan *p = arg;
    int nd = p->nd;
    int64_t A = p->dims[nd - 2], B = p->dims[nd - 1], sb = p->ss[nd - 1];
    bool v3 = B == 3 && cp_isa_avx512() && sb >= 16;
    while (b < e) {
        int64_t o = b / A, a = b % A, n = A - a < e - b ? A - a : e - b;
        const uint32_t *s = (const uint32_t *)p->src + cp_outer_off(p, o) + a;
        uint32_t *d = (uint32_t *)p->dst + b * B;
#ifdef CP_X86
        if (v3) cp_il3_avx512(s, sb, d, n);
        else
#endif
            cp_il_scalar(s, sb, d, n, B);
        (void)v3;
        b += n;
    }
}

/* De-interleave over flattened (outer, b) in [b, e). */
static void cp_dl_tile(void *arg, int64_t b, int64_t e)
{
    const cp_plan *p = arg;
    int nd = p->nd;
    int64_t A = p->dims[nd - 2], B = p->dims[nd - 1], sb = p->ss[nd - 1];
    bool v3 = A == 3 && sb == 3 && cp_isa_avx512();
    while (b < e) {
        int64_t o = b / B, j = b % B, n = B - j < e - b ? B - j : e - b;
        const uint32_t *s = (const uint32_t *)p->src + cp_outer_off(p, o) + j * sb;
        uint32_t *d = (uint32_t *)p->dst + o * A * B + j;
#ifdef CP_X86
        if (v3) cp_dl3_avx512(s, sb, d, B, n);
        else
#endif
            cp_dl_scalar(s, sb, d, B, n, A);
        (void)v3;
        b += n;
    }
}

static void cp_run(ops_ctx *c, cp_plan *p)
{
    if (p->total == 0) return;
    int nd = p->nd;
    core_threadpool *pool = ops_threadpool(c);
    if (nd >= 2 && p->es == 4 && p->ss[nd - 1] != 1 && p->ss[nd - 2] == 1 && p->dims[nd - 1] > 1) {
        int64_t A = p->dims[nd - 2], B = p->dims[nd - 1];
        if (B <= CP_SMALL && A >= 4 * B) {
            cp_split_threads(pool, p->total / B, CP_SMALL_MIN / B, cp_il_tile, p);
            return;
        }
        if (A <= CP_SMALL && B >= 4 * A) {
            cp_split_threads(pool, p->total / A, CP_SMALL_MIN / A, cp_dl_tile, p);
            return;
        }
    }
    if (nd >= 2 && p->ss[nd - 1] != 1 && p->ss[nd - 2] == 1 && p->dims[nd - 1] > 1) {
        int64_t A = p->dims[nd - 2], B = p->dims[nd - 1];
        int64_t tasks = p->total / (A * B) * ((A + CP_BLOCK - 1) / CP_BLOCK);
        cpu_misc_parallel(pool, tasks, CP_MIN_TILE / (CP_BLOCK * B) + 1, cp_tile2d, p);
    } else {
        cp_split_threads(pool, p->total, CP_MIN_THREAD, cp_gather_tile, p);
    }
}

/* ---- Transpose ------------------------------------------------------------------------------ */

kiln_status cpu_transpose_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x || !cp_esize_ok(x)) return ops_run_reference(c);
    int r = x->ndim;
    int64_t perm[KILN_MAX_DIMS], n = 0;
    const int64_t *pv = ops_attr_ints(c, "perm", &n);
    if (!pv || n == 0) {
        n = r;
        for (int i = 0; i < r; i++) perm[i] = r - 1 - i;
    } else {
        if (n != r) return ops_run_reference(c);
        bool seen[KILN_MAX_DIMS] = {false};
        for (int i = 0; i < r; i++) {
            int64_t a = pv[i] < 0 ? pv[i] + r : pv[i];
            if (a < 0 || a >= r || seen[a]) return ops_run_reference(c);
            seen[a] = true;
            perm[i] = a;
        }
    }
    int64_t xs[KILN_MAX_DIMS], od[KILN_MAX_DIMS], ss[KILN_MAX_DIMS];
    ops_contiguous_strides(r, x->dims, xs);
    for (int i = 0; i < r; i++) {
        od[i] = x->dims[perm[i]];
        ss[i] = xs[perm[i]];
    }
    core_tensor *y = ops_output_uninit(c, 0, x->dtype, r, od);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    cp_plan p;
    memset(&p, 0, sizeof p);
    cp_plan_make(&p, r, od, ss);
    p.es = core_dtype_size(x->dtype);
    p.src = x->data;
    p.dst = y->data;
    p.total = y->numel;
    cp_run(c, &p);
    return KILN_OK;
}

/* ---- Slice ---------------------------------------------------------------------------------- */

static bool cp_read_ints(const core_tensor *t, int64_t *out, int64_t *n)
{
    if (!t || !core_dtype_is_int(t->dtype) || t->dtype == KILN_DTYPE_BOOL || t->numel > KILN_MAX_DIMS)
        return false;
    for (int64_t i = 0; i < t->numel; i++) out[i] = core_load_i64(t->dtype, t->data, i);
    *n = t->numel;
    return true;
}

static bool cp_attr_ints(const ops_ctx *c, const char *name, int64_t *out, int64_t *n)
{
    const int64_t *v = ops_attr_ints(c, name, n);
    if (*n > KILN_MAX_DIMS) return false;
    for (int64_t i = 0; i < *n; i++) out[i] = v[i];
    return true;
}

kiln_status cpu_slice_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    if (!x || !cp_esize_ok(x)) return ops_run_reference(c);
    int r = x->ndim;
    int64_t starts[KILN_MAX_DIMS], ends[KILN_MAX_DIMS], axes[KILN_MAX_DIMS], steps[KILN_MAX_DIMS];
    int64_t ns = 0, ne = 0, na = 0, nst = 0;
    bool has_axes = false, has_steps = false;
    if (ops_opset(c) < 10) {
        if (!cp_attr_ints(c, "starts", starts, &ns) || !cp_attr_ints(c, "ends", ends, &ne) ||
            !cp_attr_ints(c, "axes", axes, &na))
            return ops_run_reference(c);
        has_axes = ops_has_attr(c, "axes");
    } else {
        if (!cp_read_ints(ops_input(c, 1), starts, &ns) || !cp_read_ints(ops_input(c, 2), ends, &ne))
            return ops_run_reference(c);
        if (ops_input(c, 3)) {
            has_axes = true;
            if (!cp_read_ints(ops_input(c, 3), axes, &na)) return ops_run_reference(c);
        } else if (ops_has_input(c, 3)) {
            return ops_run_reference(c);
        }
        if (ops_input(c, 4)) {
            has_steps = true;
            if (!cp_read_ints(ops_input(c, 4), steps, &nst)) return ops_run_reference(c);
        } else if (ops_has_input(c, 4)) {
            return ops_run_reference(c);
        }
    }
    if (ns != ne) return ops_run_reference(c);
    if (!has_axes) {
        if (ns > r) return ops_run_reference(c);
        na = ns;
        for (int i = 0; i < ns; i++) axes[i] = i;
    }
    if (!has_steps) {
        nst = ns;
        for (int i = 0; i < ns; i++) steps[i] = 1;
    }
    if (na != ns || nst != ns) return ops_run_reference(c);
    bool seen[KILN_MAX_DIMS] = {false};
    for (int64_t i = 0; i < na; i++) {
        int64_t a = axes[i];
        if (a < -r || a >= r || r == 0) return ops_run_reference(c);
        if (a < 0) a += r;
        if (seen[a]) return ops_run_reference(c);
        seen[a] = true;
        axes[i] = a;
    }
    int64_t xs[KILN_MAX_DIMS], ss[KILN_MAX_DIMS], od[KILN_MAX_DIMS], soff = 0;
    ops_contiguous_strides(r, x->dims, xs);
    for (int i = 0; i < r; i++) {
        od[i] = x->dims[i];
        ss[i] = xs[i];
    }
    for (int i = 0; i < ns; i++) {
        int64_t ax = axes[i], d = x->dims[ax], s = starts[i], e = ends[i], t = steps[i];
        if (t == 0) return ops_run_reference(c);
        if (t > d + 1) t = d + 1;
        if (t < -(d + 1)) t = -(d + 1);
        if (s < 0) s += d;
        if (e < 0) e += d;
        int64_t cnt;
        if (t > 0) {
            s = s < 0 ? 0 : s > d ? d : s;
            e = e < 0 ? 0 : e > d ? d : e;
            cnt = e > s ? (e - s + t - 1) / t : 0;
        } else {
            s = s < 0 ? 0 : s > d - 1 ? d - 1 : s;
            e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
            cnt = s > e ? (s - e + (-t) - 1) / (-t) : 0;
        }
        od[ax] = cnt;
        ss[ax] = xs[ax] * t;
        if (cnt > 0) soff += s * xs[ax];
    }
    core_tensor *y = ops_output_uninit(c, 0, x->dtype, r, od);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    cp_plan p;
    memset(&p, 0, sizeof p);
    cp_plan_make(&p, r, od, ss);
    p.soff = soff;
    p.es = core_dtype_size(x->dtype);
    p.src = x->data;
    p.dst = y->data;
    p.total = y->numel;
    cp_run(c, &p);
    return KILN_OK;
}

/* ---- Concat / Split: rows of the outer dims, each a run of chunks ---------------------------- */

#define CP_MAX_PARTS 64

typedef struct cp_parts {
    int n;
    size_t es;
    int64_t row;                      /* elements per outer row of the whole tensor */
    int64_t start[CP_MAX_PARTS + 1];  /* part k covers [start[k], start[k+1]) of a row */
    const char *src[CP_MAX_PARTS];    /* concat: the inputs */
    char *dst[CP_MAX_PARTS];          /* split: the outputs */
    const char *whole_src;            /* split: the input */
    char *whole_dst;                  /* concat: the output */
} cp_parts;

/* Over elements [b, e) of the whole tensor, copy between it and the parts. */
static void cp_parts_tile(void *arg, int64_t b, int64_t e)
{
    const cp_parts *p = arg;
    int k = 0;
    while (b < e) {
        int64_t o = b / p->row, w = b % p->row;
        while (k > 0 && w < p->start[k]) k--;
        while (w >= p->start[k + 1]) k++;
        int64_t plen = p->start[k + 1] - p->start[k];
        int64_t len = p->start[k + 1] - w < e - b ? p->start[k + 1] - w : e - b;
        size_t part_off = (size_t)(o * plen + (w - p->start[k])) * p->es;
        /* An elided Concat's producers already wrote into place (see the memory planner). */
        if (p->whole_dst) {
            if (p->whole_dst + (size_t)b * p->es != p->src[k] + part_off)
                memcpy(p->whole_dst + (size_t)b * p->es, p->src[k] + part_off, (size_t)len * p->es);
        } else memcpy(p->dst[k] + part_off, p->whole_src + (size_t)b * p->es, (size_t)len * p->es);
        b += len;
    }
}

static void cp_parts_run(ops_ctx *c, cp_parts *p, int64_t total)
{
    if (total > 0 && p->row > 0) cp_split_threads(ops_threadpool(c), total, CP_MIN_THREAD, cp_parts_tile, p);
}

/* Concat over outer rows [b, e) when rows are short (the last axis of channels-last tensors):
 * per row one memcpy per part, no index arithmetic per chunk. */
static void cp_concat_rows_tile(void *arg, int64_t b, int64_t e)
{
    const cp_parts *p = arg;
    for (int64_t o = b; o < e; o++) {
        char *d = p->whole_dst + (size_t)(o * p->row) * p->es;
        for (int k = 0; k < p->n; k++) {
            int64_t plen = p->start[k + 1] - p->start[k];
            const char *s = p->src[k] + (size_t)(o * plen) * p->es;
            char *dk = d + (size_t)p->start[k] * p->es;
            /* an elided Concat's producers already wrote into place */
            if (plen > 0 && dk != s) memcpy(dk, s, (size_t)plen * p->es);
        }
    }
}

/* Split over outer rows [b, e) when rows are short (the merged sibling convolutions of a
 * channels-last network): per row one copy per part. */
static void cp_split_rows_tile(void *arg, int64_t b, int64_t e)
{
    const cp_parts *p = arg;
    for (int64_t o = b; o < e; o++) {
        const char *s = p->whole_src + (size_t)(o * p->row) * p->es;
        for (int k = 0; k < p->n; k++) {
            int64_t plen = p->start[k + 1] - p->start[k];
            if (plen > 0) memcpy(p->dst[k] + (size_t)(o * plen) * p->es, s + (size_t)p->start[k] * p->es, (size_t)plen * p->es);
        }
    }
}

kiln_status cpu_concat_run(ops_ctx *c)
{
    int ni = ops_n_inputs(c);
    if (ni < 1 || ni > CP_MAX_PARTS || !ops_has_attr(c, "axis")) return ops_run_reference(c);
    const core_tensor *x0 = ops_input(c, 0);
    if (!x0 || !cp_esize_ok(x0) || x0->ndim == 0) return ops_run_reference(c);
    int r = x0->ndim;
    int64_t axis = ops_attr_int(c, "axis", 1);
    if (axis < -r || axis >= r) return ops_run_reference(c);
    if (axis < 0) axis += r;
    int64_t od[KILN_MAX_DIMS], inner = 1, outer = 1;
    memcpy(od, x0->dims, sizeof(int64_t) * (size_t)r);
    od[axis] = 0;
    for (int i = (int)axis + 1; i < r; i++) inner *= x0->dims[i];
    for (int i = 0; i < axis; i++) outer *= x0->dims[i];
    cp_parts p;
    memset(&p, 0, sizeof p);
    p.es = core_dtype_size(x0->dtype);
    for (int i = 0; i < ni; i++) {
        const core_tensor *x = ops_input(c, i);
        if (!x || x->dtype != x0->dtype || x->ndim != r) return ops_run_reference(c);
        for (int k = 0; k < r; k++)
            if (k != axis && x->dims[k] != x0->dims[k]) return ops_run_reference(c);
        p.start[i] = od[axis] * inner;
        p.src[i] = x->data;
        od[axis] += x->dims[axis];
    }
    p.n = ni;
    p.start[ni] = od[axis] * inner;
    p.row = od[axis] * inner;
    core_tensor *y = ops_output_uninit(c, 0, x0->dtype, r, od);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    p.whole_dst = y->data;
    if (outer > 1 && p.row > 0 && p.row <= 4096) {
        /* short rows (NHWC concat on the channel axis): whole rows per tile */
        cp_split_threads(ops_threadpool(c), outer, CP_MIN_THREAD / p.row + 1, cp_concat_rows_tile, &p);
        return KILN_OK;
    }
    cp_parts_run(c, &p, outer * p.row);
    return KILN_OK;
}

kiln_status cpu_split_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    int no = ops_n_outputs(c);
    if (!x || !cp_esize_ok(x) || x->ndim == 0 || no < 1 || no > CP_MAX_PARTS) return ops_run_reference(c);
    int r = x->ndim;
    int64_t axis = ops_attr_int(c, "axis", 0);
    if (axis < -r || axis >= r) return ops_run_reference(c);
    if (axis < 0) axis += r;
    int64_t dim = x->dims[axis], sizes[CP_MAX_PARTS];
    const core_tensor *sp = ops_input(c, 1);
    int64_t ns = 0;
    const int64_t *sa = ops_attr_ints(c, "split", &ns);
    if (sp) {
        if (!core_dtype_is_int(sp->dtype) || sp->numel != no) return ops_run_reference(c);
        for (int i = 0; i < no; i++) sizes[i] = core_load_i64(sp->dtype, sp->data, i);
    } else if (ops_has_input(c, 1)) {
        return ops_run_reference(c);
    } else if (sa && ns > 0) {
        if (ns != no) return ops_run_reference(c);
        for (int i = 0; i < no; i++) sizes[i] = sa[i];
    } else if (ops_has_attr(c, "num_outputs")) {
        int64_t nout = ops_attr_int(c, "num_outputs", no);
        if (nout != no) return ops_run_reference(c);
        int64_t chunk = (dim + nout - 1) / nout, left = dim;
        for (int i = 0; i < no; i++) {
            sizes[i] = chunk < left ? chunk : left;
            left -= sizes[i];
        }
    } else {
        if (dim % no) return ops_run_reference(c);
        for (int i = 0; i < no; i++) sizes[i] = dim / no;
    }
    int64_t total = 0;
    for (int i = 0; i < no; i++) {
        if (sizes[i] < 0 || sizes[i] > dim) return ops_run_reference(c);
        total += sizes[i];
    }
    if (total != dim) return ops_run_reference(c);
    int64_t inner = 1, outer = 1, od[KILN_MAX_DIMS];
    for (int i = (int)axis + 1; i < r; i++) inner *= x->dims[i];
    for (int i = 0; i < axis; i++) outer *= x->dims[i];
    cp_parts p;
    memset(&p, 0, sizeof p);
    p.es = core_dtype_size(x->dtype);
    p.n = no;
    int64_t at = 0;
    for (int i = 0; i < no; i++) {
        memcpy(od, x->dims, sizeof(int64_t) * (size_t)r);
        od[axis] = sizes[i];
        core_tensor *y = ops_output_uninit(c, i, x->dtype, r, od);
        if (!y) return KILN_ERR_OUT_OF_MEMORY;
        p.dst[i] = y->data;
        p.start[i] = at * inner;
        at += sizes[i];
    }
    p.start[no] = at * inner;
    p.row = dim * inner;
    p.whole_src = x->data;
    if (outer > 1 && p.row > 0 && p.row <= 4096) {
        cp_split_threads(ops_threadpool(c), outer, CP_MIN_THREAD / p.row + 1, cp_split_rows_tile, &p);
        return KILN_OK;
    }
    cp_parts_run(c, &p, outer * p.row);
    return KILN_OK;
}
