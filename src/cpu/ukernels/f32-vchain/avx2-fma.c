/* f32-vchain/avx2-fma.c — elementwise programs with AVX2+FMA: the data goes through in blocks
 * that stay in L1, each step applied to the whole block in vector registers. Transcendentals
 * keep ~2-3e-7 relative error, NaN propagates, and rare steps (log, sin, pow, ...) run per
 * element with the reference arithmetic. */
#include "cpu/cpu_misc.h"
#include "cpu/ukernels/avx2-math.h"
#include "ops/fused.h"
#include <math.h>

#define VC_BLOCK 256

static inline CPU_AVX2 __m256 vc_nan_keep(__m256 r, __m256 x)
{
    return _mm256_blendv_ps(r, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

static inline CPU_AVX2 __m256 vc_neg_inf_nan(__m256 r, __m256 x)
{
    return _mm256_blendv_ps(r, _mm256_set1_ps(NAN), _mm256_cmp_ps(x, _mm256_set1_ps(-INFINITY), _CMP_EQ_OQ));
}

/* e^x: the polynomial inside [-87.3, 88.3], libm outside (overflow to inf, denormals, NaN). */
static inline CPU_AVX2 __m256 vc_exp(__m256 x)
{
    __m256 ok = _mm256_and_ps(_mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_GE_OQ),
                              _mm256_cmp_ps(x, _mm256_set1_ps(88.3f), _CMP_LE_OQ));
    __m256 r = cpu_avx2_exp(x);
    if (_mm256_movemask_ps(ok) != 0xFF) {
        float xs[8], rs[8];
        int m = _mm256_movemask_ps(ok);
        _mm256_storeu_ps(xs, x);
        _mm256_storeu_ps(rs, r);
        for (int i = 0; i < 8; i++)
            if (!(m >> i & 1)) rs[i] = (float)exp((double)xs[i]);
        r = _mm256_loadu_ps(rs);
    }
    return r;
}

static inline CPU_AVX2 __m256 vc_abs(__m256 x) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x); }

/* tanh: odd polynomial below 0.625 (relative error ~1e-7), 1 - 2/(e^2|x| + 1) above. */
static inline CPU_AVX2 __m256 vc_tanh(__m256 x)
{
    __m256 ax = vc_abs(x), x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(-0.0056647793389856815f);
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(0.020595693960785866f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-0.05372268706560135f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(0.13331151008605957f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-0.3333326280117035f));
    p = _mm256_mul_ps(p, x2);
    __m256 small = _mm256_fmadd_ps(p, x, x);
    __m256 e = cpu_avx2_exp(_mm256_add_ps(ax, ax));
    __m256 big = _mm256_sub_ps(_mm256_set1_ps(1.0f),
                               _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    big = _mm256_or_ps(big, _mm256_and_ps(x, _mm256_set1_ps(-0.0f))); /* sign of x */
    __m256 r = _mm256_blendv_ps(big, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
    return vc_nan_keep(r, x);
}

/* erf: odd polynomial below 0.9, (1 + erf) - 1 from the shared erfc fit above. */
static inline CPU_AVX2 __m256 vc_erf(__m256 x)
{
    __m256 ax = vc_abs(x), x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(-0.0006106991786509752f);
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(0.005015359725803137f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-0.026781342923641205f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(0.11282212287187576f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-0.376125305891037f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(1.1283791065216064f));
    __m256 small = _mm256_mul_ps(p, x);
    __m256 big = _mm256_sub_ps(cpu_avx2_one_plus_erf(_mm256_mul_ps(x, _mm256_set1_ps(1.41421356237309505f))),
                               _mm256_set1_ps(1.0f));
    __m256 r = _mm256_blendv_ps(big, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.9f), _CMP_LT_OQ));
    return vc_nan_keep(r, x);
}

/* ---- GELU in double lanes -----------------------------------------------------------------
 * GELU's negative tail is x times a small factor whose exponent argument (-x^2/2, or the tanh
 * form's cubic) loses ~|argument| * 1e-7 relative accuracy when formed in float: the shared
 * float epilogue (cpu_avx2_act) is ~1e-6 off there. The standalone op is rare enough to
 * afford double lanes: the same erfc fit and a Taylor exp, ~2e-7 relative overall. */

/* e^x for x in [-708, 708] (clamped), relative error ~1e-9: enough for float results. */
static inline CPU_AVX2 __m256d vd_exp(__m256d x)
{
    x = _mm256_min_pd(_mm256_max_pd(x, _mm256_set1_pd(-708.0)), _mm256_set1_pd(708.0));
    __m256d n = _mm256_round_pd(_mm256_mul_pd(x, _mm256_set1_pd(1.4426950408889634)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(0.6931471805599453), x);
    __m256d p = _mm256_set1_pd(1.0 / 362880.0);
    static const double co[] = {1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0,
                                1.0 / 6.0, 0.5, 1.0, 1.0};
    for (int i = 0; i < 9; i++) p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(co[i]));
    __m256i e = _mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(n)),
                                                   _mm256_set1_epi64x(1023)), 52);
    return _mm256_mul_pd(p, _mm256_castsi256_pd(e));
}

static inline CPU_AVX2 __m256d vd_gelu(__m256d x, bool tanh_form)
{
    const __m256d one = _mm256_set1_pd(1.0);
    if (tanh_form) {
        /* 0.5 x (1 + tanh u) = x / (1 + e^-2u) */
        __m256d x3 = _mm256_mul_pd(_mm256_mul_pd(x, x), x);
        __m256d u2 = _mm256_mul_pd(_mm256_fmadd_pd(x3, _mm256_set1_pd(0.044715), x),
                                   _mm256_set1_pd(-2.0 * 0.79788456080286535588));
        return _mm256_div_pd(x, _mm256_add_pd(one, vd_exp(u2)));
    }
    __m256d z = _mm256_mul_pd(x, _mm256_set1_pd(0.70710678118654752440));
    __m256d az = _mm256_andnot_pd(_mm256_set1_pd(-0.0), z);
    __m256d t = _mm256_div_pd(one, _mm256_fmadd_pd(_mm256_set1_pd(0.5), az, one));
    static const double pc[] = {-0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806,
                                0.09678418, 0.37409196, 1.00002368, -1.26551223};
    __m256d p = _mm256_set1_pd(0.17087277);
    for (int i = 0; i < 9; i++) p = _mm256_fmadd_pd(p, t, _mm256_set1_pd(pc[i]));
    __m256d q = _mm256_mul_pd(t, vd_exp(_mm256_fnmadd_pd(az, az, p))); /* erfc(|z|) */
    __m256d ope = _mm256_blendv_pd(_mm256_sub_pd(_mm256_set1_pd(2.0), q), q,
                                   _mm256_cmp_pd(z, _mm256_setzero_pd(), _CMP_LT_OQ));
    return _mm256_mul_pd(_mm256_mul_pd(_mm256_set1_pd(0.5), x), ope);
}

static inline CPU_AVX2 __m256 vc_gelu(__m256 x, bool tanh_form)
{
    __m128 lo = _mm256_cvtpd_ps(vd_gelu(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), tanh_form));
    __m128 hi = _mm256_cvtpd_ps(vd_gelu(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), tanh_form));
    return _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
}

bool cpu_ew_op_vectorized(int op)
{
    switch (op) {
    case FUSED_EW_ADD: case FUSED_EW_SUB: case FUSED_EW_RSUB: case FUSED_EW_MUL: case FUSED_EW_DIV:
    case FUSED_EW_RDIV: case FUSED_EW_MAX: case FUSED_EW_MIN: case FUSED_EW_RELU:
    case FUSED_EW_SIGMOID: case FUSED_EW_TANH: case FUSED_EW_EXP: case FUSED_EW_SQRT:
    case FUSED_EW_ABS: case FUSED_EW_NEG: case FUSED_EW_RECIPROCAL: case FUSED_EW_FLOOR:
    case FUSED_EW_CEIL: case FUSED_EW_ROUND: case FUSED_EW_ERF: case FUSED_EW_CLIP:
    case FUSED_EW_LEAKY_RELU: case FUSED_EW_HARD_SIGMOID: case FUSED_EW_HARD_SWISH:
    case FUSED_EW_SILU: case FUSED_EW_GELU: case FUSED_EW_GELU_TANH: case CPU_EW_SQUARE:
    case CPU_EW_POW_HALF: case CPU_EW_HARD_SIGMOID_FMA: case CPU_EW_IDENTITY:
        return true;
    default:
        return false;
    }
}

/* One vectorized step on 8 lanes. MAX/MIN with a NaN constant are not vectorized (the
 * program builder keeps them scalar). */
static inline __attribute__((always_inline)) CPU_AVX2 __m256 vc_step(int op, __m256 x, __m256 k0, __m256 k1)
{
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    switch (op) {
    case FUSED_EW_ADD: return _mm256_add_ps(x, k0);
    case FUSED_EW_SUB: return _mm256_sub_ps(x, k0);
    case FUSED_EW_RSUB: return _mm256_sub_ps(k0, x);
    case FUSED_EW_MUL: return _mm256_mul_ps(x, k0);
    case FUSED_EW_DIV: return _mm256_div_ps(x, k0);
    case FUSED_EW_RDIV: return _mm256_div_ps(k0, x);
    case FUSED_EW_MAX: return _mm256_max_ps(k0, x); /* NaN x -> x */
    case FUSED_EW_MIN: return _mm256_min_ps(k0, x);
    case FUSED_EW_RELU: return _mm256_max_ps(zero, x);
    case FUSED_EW_SIGMOID: return vc_nan_keep(cpu_avx2_sigmoid(x), x);
    case FUSED_EW_TANH: return vc_tanh(x);
    case FUSED_EW_EXP: return vc_exp(x);
    case FUSED_EW_SQRT: return _mm256_sqrt_ps(x);
    case FUSED_EW_ABS: return vc_abs(x);
    case FUSED_EW_NEG: return _mm256_xor_ps(x, _mm256_set1_ps(-0.0f));
    case FUSED_EW_RECIPROCAL: return _mm256_div_ps(one, x);
    case FUSED_EW_FLOOR: return _mm256_round_ps(x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
    case FUSED_EW_CEIL: return _mm256_round_ps(x, _MM_FROUND_TO_POS_INF | _MM_FROUND_NO_EXC);
    case FUSED_EW_ROUND: return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    case FUSED_EW_ERF: return vc_erf(x);
    case FUSED_EW_CLIP: return _mm256_min_ps(k1, _mm256_max_ps(k0, x)); /* k0 <= k1 */
    case FUSED_EW_LEAKY_RELU:
        return _mm256_blendv_ps(_mm256_mul_ps(x, k0), x, _mm256_cmp_ps(x, zero, _CMP_GE_OQ));
    case FUSED_EW_HARD_SIGMOID:
        return _mm256_min_ps(one, _mm256_max_ps(zero, _mm256_add_ps(_mm256_mul_ps(k0, x), k1)));
    case CPU_EW_HARD_SIGMOID_FMA:
        /* fmax(0, fmin(1, t)) as libm does it: NaN gives 1 */
        return _mm256_max_ps(_mm256_min_ps(_mm256_fmadd_ps(k0, x, k1), one), zero);
    case FUSED_EW_HARD_SWISH: {
        /* x * clamp(x + 3, 0, 6) / 6: x + 3 is exact near -3, so no cancellation */
        __m256 t = _mm256_add_ps(x, _mm256_set1_ps(3.0f));
        t = _mm256_min_ps(_mm256_set1_ps(6.0f), _mm256_max_ps(zero, t));
        return _mm256_mul_ps(_mm256_mul_ps(x, t), _mm256_set1_ps(1.0f / 6.0f));
    }
    /* x * (a factor that is 0 at -inf) is NaN there in the reference's arithmetic */
    case FUSED_EW_SILU: return vc_neg_inf_nan(vc_nan_keep(cpu_avx2_act(x, CPU_ACT_SILU, 0, 0), x), x);
    case FUSED_EW_GELU: return vc_neg_inf_nan(vc_nan_keep(vc_gelu(x, false), x), x);
    case FUSED_EW_GELU_TANH: return vc_neg_inf_nan(vc_nan_keep(vc_gelu(x, true), x), x);
    case CPU_EW_SQUARE: return _mm256_mul_ps(x, x);
    case CPU_EW_POW_HALF: {
        /* pow(-inf, 0.5) = +inf where sqrt gives NaN */
        __m256 r = _mm256_sqrt_ps(x);
        return _mm256_blendv_ps(r, _mm256_set1_ps(INFINITY),
                                _mm256_cmp_ps(x, _mm256_set1_ps(-INFINITY), _CMP_EQ_OQ));
    }
    default: return x;
    }
}

/* One step over n floats src -> dst (src may be dst). */
static CPU_AVX2 void vc_run_step(const cpu_ew_step *s, const float *src, float *dst, size_t n)
{
    if (!cpu_ew_op_vectorized(s->op) ||
        ((s->op == FUSED_EW_MAX || s->op == FUSED_EW_MIN) && s->k0 != s->k0)) {
        for (size_t i = 0; i < n; i++) dst[i] = cpu_ew_step_scalar(s, src[i]);
        return;
    }
    const __m256 k0 = _mm256_set1_ps(s->k0), k1 = _mm256_set1_ps(s->k1);
    size_t i = 0;
    /* one loop per opcode, so the step's code is inlined without a dispatch per vector */
#define VC_LOOP(OP)                                                                            \
    case OP:                                                                                   \
        for (; i + 16 <= n; i += 16) {                                                         \
            __m256 a = _mm256_loadu_ps(src + i), b = _mm256_loadu_ps(src + i + 8);             \
            _mm256_storeu_ps(dst + i, vc_step(OP, a, k0, k1));                                 \
            _mm256_storeu_ps(dst + i + 8, vc_step(OP, b, k0, k1));                             \
        }                                                                                      \
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, vc_step(OP, _mm256_loadu_ps(src + i), k0, k1)); \
        if (i < n) {                                                                           \
            __m256i m = cpu_avx2_mask(n - i);                                                  \
            _mm256_maskstore_ps(dst + i, m, vc_step(OP, _mm256_maskload_ps(src + i, m), k0, k1)); \
        }                                                                                      \
        break;
    /* masked-off tail lanes read as 0, which no step traps on; they are never stored */
    switch (s->op) {
    VC_LOOP(FUSED_EW_ADD) VC_LOOP(FUSED_EW_SUB) VC_LOOP(FUSED_EW_RSUB) VC_LOOP(FUSED_EW_MUL)
    VC_LOOP(FUSED_EW_DIV) VC_LOOP(FUSED_EW_RDIV) VC_LOOP(FUSED_EW_MAX) VC_LOOP(FUSED_EW_MIN)
    VC_LOOP(FUSED_EW_RELU) VC_LOOP(FUSED_EW_SIGMOID) VC_LOOP(FUSED_EW_TANH) VC_LOOP(FUSED_EW_EXP)
    VC_LOOP(FUSED_EW_SQRT) VC_LOOP(FUSED_EW_ABS) VC_LOOP(FUSED_EW_NEG) VC_LOOP(FUSED_EW_RECIPROCAL)
    VC_LOOP(FUSED_EW_FLOOR) VC_LOOP(FUSED_EW_CEIL) VC_LOOP(FUSED_EW_ROUND) VC_LOOP(FUSED_EW_ERF)
    VC_LOOP(FUSED_EW_CLIP) VC_LOOP(FUSED_EW_LEAKY_RELU) VC_LOOP(FUSED_EW_HARD_SIGMOID)
    VC_LOOP(CPU_EW_HARD_SIGMOID_FMA) VC_LOOP(FUSED_EW_HARD_SWISH) VC_LOOP(FUSED_EW_SILU)
    VC_LOOP(FUSED_EW_GELU) VC_LOOP(FUSED_EW_GELU_TANH) VC_LOOP(CPU_EW_SQUARE) VC_LOOP(CPU_EW_POW_HALF)
    default:
        if (src != dst)
            for (; i < n; i++) dst[i] = src[i];
        break;
    }
#undef VC_LOOP
}

CPU_AVX2 void cpu_f32_vchain__avx2_fma(const float *x, float *y, size_t n, const cpu_ew_prog *p)
{
    if (p->n == 0) {
        if (x != y)
            for (size_t i = 0; i < n; i++) y[i] = x[i];
        return;
    }
    if (p->n == 1) {
        vc_run_step(&p->s[0], x, y, n);
        return;
    }
    for (size_t b = 0; b < n; b += VC_BLOCK) {
        size_t m = n - b < VC_BLOCK ? n - b : VC_BLOCK;
        vc_run_step(&p->s[0], x + b, y + b, m);
        for (int k = 1; k < p->n; k++) vc_run_step(&p->s[k], y + b, y + b, m);
    }
}
