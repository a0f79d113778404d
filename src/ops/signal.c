/* signal.c — reference kernels for signal processing: DFT (forward, inverse, one-sided,
 * irfft), STFT, Hann/Hamming/Blackman windows and MelWeightMatrix. Computes in double. */
#include "ops/ops.h"
#include "ops/util.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* Twiddles for length n: tw[k] = exp(-2 pi i k / n), as (cos, sin) pairs; exact index
 * arithmetic (k*t mod n) keeps the naive transform accurate. */
static double *sig_twiddles(int64_t n)
{
    double *tw = core_malloc(sizeof(double) * 2 * (size_t)(n > 0 ? n : 1));
    if (!tw) return NULL;
    for (int64_t k = 0; k < n; k++) {
        double a = -2.0 * M_PI * (double)k / (double)n;
        tw[2 * k] = cos(a);
        tw[2 * k + 1] = sin(a);
    }
    return tw;
}

/* out[k] = sum_t in[t] * exp(sign * 2 pi i k t / n) for k < n_out; in has n_in <= n complex
 * values (the rest are zero). */
static void sig_dft_line(const double *in, int64_t n_in, int64_t n, int64_t n_out, bool inverse,
                         const double *tw, double *out)
{
    for (int64_t k = 0; k < n_out; k++) {
        double re = 0.0, im = 0.0;
        int64_t idx = 0;
        for (int64_t t = 0; t < n_in; t++) {
            double c = tw[2 * idx], s = inverse ? -tw[2 * idx + 1] : tw[2 * idx + 1];
            re += in[2 * t] * c - in[2 * t + 1] * s;
            im += in[2 * t] * s + in[2 * t + 1] * c;
            idx += k;
            if (idx >= n) idx %= n;
        }
        out[2 * k] = re;
        out[2 * k + 1] = im;
    }
}

static kiln_status dft_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0);
    const core_tensor *len_t = ops_input(c, 1);
    if (!x) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "missing input 0");
    if (!core_dtype_is_float(x->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "input has dtype %s, expected a float type",
                         core_dtype_name(x->dtype));
    int r = x->ndim;
    if (r < 2 || (x->dims[r - 1] != 1 && x->dims[r - 1] != 2))
        return ops_error(c, KILN_ERR_SHAPE, "input must have >= 2 dims with last dim 1 or 2");
    int64_t axis_raw;
    if (ops_opset(c) >= 20) {
        const core_tensor *a = ops_input(c, 2);
        axis_raw = a ? ops_scalar_i64(a) : -2;
        if (a && (!core_dtype_is_int(a->dtype) || a->numel != 1))
            return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "axis must be one integer");
    } else {
        axis_raw = ops_attr_int(c, "axis", 1);
    }
    int64_t axis = ops_axis(axis_raw, r);
    if (axis < 0 || axis == r - 1)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "axis %lld out of range for %d dims",
                         (long long)axis_raw, r);
    bool inverse = ops_attr_int(c, "inverse", 0) != 0;
    bool onesided = ops_attr_int(c, "onesided", 0) != 0;
    bool cplx = x->dims[r - 1] == 2;
    int64_t m = x->dims[axis];
    int64_t n;
    if (len_t) {
        if (!core_dtype_is_int(len_t->dtype) || len_t->numel != 1)
            return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "dft_length must be one integer");
        n = ops_scalar_i64(len_t);
    } else {
        n = inverse && onesided ? 2 * (m - 1) : m;
    }
    if (n <= 0) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "dft_length %lld must be positive", (long long)n);
    bool irfft = inverse && onesided;
    int64_t n_out = irfft ? n : onesided ? n / 2 + 1 : n;
    int64_t odims[KILN_MAX_DIMS];
    memcpy(odims, x->dims, sizeof(int64_t) * (size_t)r);
    odims[axis] = n_out;
    odims[r - 1] = irfft ? 1 : 2;
    core_tensor *y = ops_output(c, 0, x->dtype, r, odims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++) outer *= x->dims[i];
    for (int i = (int)axis + 1; i < r - 1; i++) inner *= x->dims[i];
    int64_t cin = x->dims[r - 1], cout = odims[r - 1];
    /* irfft reads the first n/2+1 bins and mirrors them as a Hermitian spectrum. */
    int64_t n_use = irfft ? (n / 2 + 1 < m ? n / 2 + 1 : m) : (m < n ? m : n);
    double *tw = sig_twiddles(n);
    double *line = core_malloc(sizeof(double) * 2 * (size_t)(n > m ? n : m));
    double *res = core_malloc(sizeof(double) * 2 * (size_t)n);
    if (!tw || !line || !res) {
        free(tw); free(line); free(res);
        return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t in = 0; in < inner; in++) {
            for (int64_t t = 0; t < n_use; t++) {
                int64_t off = ((o * m + t) * inner + in) * cin;
                line[2 * t] = core_load_f64(x->dtype, x->data, off);
                line[2 * t + 1] = cplx ? core_load_f64(x->dtype, x->data, off + 1) : 0.0;
            }
            if (irfft) {
                /* Build the full Hermitian spectrum, dropping the imaginary parts numpy
                 * ignores (DC, and Nyquist for even n). */
                for (int64_t t = n_use; t < n; t++) line[2 * t] = line[2 * t + 1] = 0.0;
                line[1] = 0.0;
                if (n % 2 == 0 && n / 2 < n_use) line[n + 1] = 0.0;
                for (int64_t k = n / 2 + 1; k < n; k++) {
                    int64_t src = n - k;
                    line[2 * k] = src < n_use ? line[2 * src] : 0.0;
                    line[2 * k + 1] = src < n_use ? -line[2 * src + 1] : 0.0;
                }
                sig_dft_line(line, n, n, n, true, tw, res);
            } else {
                sig_dft_line(line, n_use, n, n_out, inverse, tw, res);
            }
            for (int64_t k = 0; k < n_out; k++) {
                int64_t off = ((o * n_out + k) * inner + in) * cout;
                double re = res[2 * k], im = res[2 * k + 1];
                if (inverse) { re /= (double)n; im /= (double)n; }
                core_store_f64(y->dtype, y->data, off, re);
                if (cout == 2) core_store_f64(y->dtype, y->data, off + 1, im);
            }
        }
    }
    free(tw);
    free(line);
    free(res);
    return KILN_OK;
}

static kiln_status stft_run(ops_ctx *c)
{
    const core_tensor *x = ops_input(c, 0), *step_t = ops_input(c, 1);
    const core_tensor *win = ops_input(c, 2), *flen_t = ops_input(c, 3);
    if (!x || !step_t) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "signal and frame_step are required");
    if (!core_dtype_is_float(x->dtype))
        return ops_error(c, KILN_ERR_DTYPE, "signal has dtype %s, expected a float type",
                         core_dtype_name(x->dtype));
    if (x->ndim != 3 || (x->dims[2] != 1 && x->dims[2] != 2))
        return ops_error(c, KILN_ERR_SHAPE, "signal must be [batch, length, 1 or 2]");
    if (!core_dtype_is_int(step_t->dtype) || step_t->numel != 1)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "frame_step must be one integer");
    int64_t step = ops_scalar_i64(step_t);
    int64_t L = x->dims[1], batch = x->dims[0];
    int64_t flen;
    if (flen_t) {
        if (!core_dtype_is_int(flen_t->dtype) || flen_t->numel != 1)
            return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "frame_length must be one integer");
        flen = ops_scalar_i64(flen_t);
    } else {
        flen = win ? win->numel : L;
    }
    if (win && (win->ndim != 1 || win->numel != flen))
        return ops_error(c, KILN_ERR_SHAPE, "window has %lld values, frame_length is %lld",
                         (long long)win->numel, (long long)flen);
    if (step <= 0 || flen <= 0 || flen > L)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT,
                         "frame_step %lld / frame_length %lld invalid for signal length %lld",
                         (long long)step, (long long)flen, (long long)L);
    bool onesided = ops_attr_int(c, "onesided", 1) != 0;
    bool cplx = x->dims[2] == 2;
    int64_t frames = (L - flen) / step + 1;
    int64_t bins = onesided ? flen / 2 + 1 : flen;
    int64_t odims[4] = {batch, frames, bins, 2};
    core_tensor *y = ops_output(c, 0, x->dtype, 4, odims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    if (y->numel == 0) return KILN_OK;
    double *tw = sig_twiddles(flen);
    double *line = core_malloc(sizeof(double) * 2 * (size_t)flen);
    double *res = core_malloc(sizeof(double) * 2 * (size_t)flen);
    if (!tw || !line || !res) {
        free(tw); free(line); free(res);
        return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    int64_t cin = x->dims[2];
    for (int64_t b = 0; b < batch; b++) {
        for (int64_t f = 0; f < frames; f++) {
            for (int64_t t = 0; t < flen; t++) {
                int64_t off = (b * L + f * step + t) * cin;
                double w = win ? core_load_f64(win->dtype, win->data, t) : 1.0;
                line[2 * t] = w * core_load_f64(x->dtype, x->data, off);
                line[2 * t + 1] = cplx ? w * core_load_f64(x->dtype, x->data, off + 1) : 0.0;
            }
            sig_dft_line(line, flen, flen, bins, false, tw, res);
            for (int64_t k = 0; k < bins; k++) {
                int64_t off = ((b * frames + f) * bins + k) * 2;
                core_store_f64(y->dtype, y->data, off, res[2 * k]);
                core_store_f64(y->dtype, y->data, off + 1, res[2 * k + 1]);
            }
        }
    }
    free(tw);
    free(line);
    free(res);
    return KILN_OK;
}

/* ---- windows -------------------------------------------------------------------------- */

typedef enum win_kind { WIN_HANN, WIN_HAMMING, WIN_BLACKMAN } win_kind;

static kiln_status window_common(ops_ctx *c, win_kind k)
{
    const core_tensor *sz = ops_input(c, 0);
    if (!sz || !core_dtype_is_int(sz->dtype) || sz->numel != 1)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "size must be one integer");
    int64_t n = ops_scalar_i64(sz);
    if (n < 0) return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "size %lld is negative", (long long)n);
    kiln_dtype dt = (kiln_dtype)ops_attr_int(c, "output_datatype", KILN_DTYPE_FLOAT);
    if (dt <= KILN_DTYPE_UNDEFINED || dt >= KILN_DTYPE_COUNT_ || dt == KILN_DTYPE_STRING ||
        dt == KILN_DTYPE_COMPLEX64 || dt == KILN_DTYPE_COMPLEX128)
        return ops_error(c, KILN_ERR_UNSUPPORTED, "output_datatype %d not supported", (int)dt);
    bool periodic = ops_attr_int(c, "periodic", 1) != 0;
    core_tensor *y = ops_output(c, 0, dt, 1, &n);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    double N = periodic ? (double)n : (double)(n - 1);
    for (int64_t i = 0; i < n; i++) {
        double a = N != 0.0 ? 2.0 * M_PI * (double)i / N : 0.0, v;
        switch (k) {
        case WIN_HANN: v = 0.5 - 0.5 * cos(a); break;
        case WIN_HAMMING: v = 25.0 / 46.0 - (1.0 - 25.0 / 46.0) * cos(a); break;
        default: v = 0.42 - 0.5 * cos(a) + 0.08 * cos(2.0 * a); break;
        }
        if (core_dtype_is_float(dt)) core_store_f64(dt, y->data, i, v);
        else core_store_i64(dt, y->data, i, (int64_t)v);
    }
    return KILN_OK;
}

static kiln_status hann_run(ops_ctx *c) { return window_common(c, WIN_HANN); }
static kiln_status hamming_run(ops_ctx *c) { return window_common(c, WIN_HAMMING); }
static kiln_status blackman_run(ops_ctx *c) { return window_common(c, WIN_BLACKMAN); }

/* Triangular mel filterbank, following the ONNX reference construction (bin edges
 * spaced evenly in mel over num_mel_bins + 2 steps, floored to DFT bins). */
static kiln_status mel_run(ops_ctx *c)
{
    const core_tensor *in[5];
    for (int i = 0; i < 5; i++) {
        in[i] = ops_input(c, i);
        if (!in[i] || in[i]->numel != 1)
            return ops_error(c, KILN_ERR_INVALID_ARGUMENT, "input %d must be a scalar", i);
    }
    int64_t n_mel = ops_scalar_i64(in[0]), dft_len = ops_scalar_i64(in[1]);
    int64_t rate = ops_scalar_i64(in[2]);
    double lo = ops_scalar_f64(in[3]), hi = ops_scalar_f64(in[4]);
    if (n_mel <= 0 || dft_len <= 0 || rate <= 0 || lo < 0 || hi < lo)
        return ops_error(c, KILN_ERR_INVALID_ARGUMENT,
                         "num_mel_bins %lld, dft_length %lld, sample_rate %lld, edges %g..%g invalid",
                         (long long)n_mel, (long long)dft_len, (long long)rate, lo, hi);
    kiln_dtype dt = (kiln_dtype)ops_attr_int(c, "output_datatype", KILN_DTYPE_FLOAT);
    if (dt <= KILN_DTYPE_UNDEFINED || dt >= KILN_DTYPE_COUNT_ || dt == KILN_DTYPE_STRING ||
        dt == KILN_DTYPE_COMPLEX64 || dt == KILN_DTYPE_COMPLEX128)
        return ops_error(c, KILN_ERR_UNSUPPORTED, "output_datatype %d not supported", (int)dt);
    int64_t n_spec = dft_len / 2 + 1;
    int64_t odims[2] = {n_spec, n_mel};
    core_tensor *y = ops_output(c, 0, dt, 2, odims);
    if (!y) return KILN_ERR_OUT_OF_MEMORY;
    double *out = core_calloc((size_t)(n_spec * n_mel), sizeof(double));
    int64_t *bins = core_malloc(sizeof(int64_t) * (size_t)(n_mel + 2));
    if (!out || !bins) {
        free(out); free(bins);
        return ops_error(c, KILN_ERR_OUT_OF_MEMORY, "out of memory");
    }
    double lo_mel = 2595.0 * log10(1.0 + lo / 700.0);
    double hi_mel = 2595.0 * log10(1.0 + hi / 700.0);
    double step = (hi_mel - lo_mel) / (double)(n_mel + 2);
    for (int64_t i = 0; i < n_mel + 2; i++) {
        double hz = 700.0 * (pow(10.0, ((double)i * step + lo_mel) / 2595.0) - 1.0);
        bins[i] = (int64_t)floor((double)(dft_len + 1) * hz / (double)rate);
        if (bins[i] < 0) bins[i] = 0;
        if (bins[i] >= n_spec) bins[i] = n_spec - 1;
    }
    for (int64_t i = 0; i < n_mel; i++) {
        int64_t l = bins[i], ctr = bins[i + 1], h = bins[i + 2];
        if (ctr - l == 0) out[ctr * n_mel + i] = 1.0;
        else
            for (int64_t j = l; j <= ctr; j++) out[j * n_mel + i] = (double)(j - l) / (double)(ctr - l);
        if (h - ctr > 0)
            for (int64_t j = ctr; j < h; j++) out[j * n_mel + i] = (double)(h - j) / (double)(h - ctr);
    }
    for (int64_t i = 0; i < n_spec * n_mel; i++) {
        if (core_dtype_is_float(dt)) core_store_f64(dt, y->data, i, out[i]);
        else core_store_i64(dt, y->data, i, (int64_t)out[i]);
    }
    free(out);
    free(bins);
    return KILN_OK;
}

const ops_schema ops_table_signal[] = {
    {"DFT", "", 17, dft_run},
    {"STFT", "", 17, stft_run},
    {"HannWindow", "", 17, hann_run},
    {"HammingWindow", "", 17, hamming_run},
    {"BlackmanWindow", "", 17, blackman_run},
    {"MelWeightMatrix", "", 17, mel_run},
    OPS_TABLE_END
};
