/* util.h — helpers shared by reference kernels: axes, broadcasting, index iteration,
 * reading small integer tensors (shapes, axes, pads). */
#ifndef KILN_OPS_UTIL_H
#define KILN_OPS_UTIL_H

#include "ops/ops.h"

/* Normalize a possibly negative axis into [0, ndim); returns -1 when out of range. */
int64_t ops_axis(int64_t axis, int ndim);

/* Multidirectional (numpy) broadcast of two shapes; false if incompatible. */
bool ops_broadcast_shape(int na, const int64_t *a, int nb, const int64_t *b, int *nout,
                         int64_t *out);
/* Element strides of an input of shape (nin, in_dims) read at output shape (nout,
 * out_dims): right-aligned, 0 where the input dim is 1 (broadcast) or missing. */
void ops_broadcast_strides(int nin, const int64_t *in_dims, int nout, const int64_t *out_dims,
                           int64_t *strides);
/* Row-major contiguous strides of a shape. */
void ops_contiguous_strides(int ndim, const int64_t *dims, int64_t *strides);

/* Odometer over a shape: idx[] counts through every index; returns false past the end. */
bool ops_index_next(int ndim, const int64_t *dims, int64_t *idx);

/* Copy an integer tensor (int32/int64/uint*, any rank) into out (up to max values);
 * returns the count, or -1 if t is NULL / not integer / too large (error set). */
int64_t ops_tensor_i64s(const core_tensor *t, int64_t *out, int64_t max);
/* Read element 0 of a numeric tensor as double / int64. */
double ops_scalar_f64(const core_tensor *t);
int64_t ops_scalar_i64(const core_tensor *t);

/* Element i of a STRING tensor ("" for NULL). */
const char *ops_str_at(const core_tensor *t, int64_t i);
/* Copy n contiguous elements src[si..] to dst[di..] (same dtype; strings deep-copied;
 * overlapping ranges allowed). False on OOM (error set). */
bool ops_copy_elems(core_tensor *dst, int64_t di, const core_tensor *src, int64_t si, int64_t n);
/* A float view of a float-like tensor: its own data when FLOAT (*owned = false), else a
 * malloc'd converted copy (*owned = true; free it). NULL on OOM (error set). */
float *ops_tensor_f32(const core_tensor *t, bool *owned);
/* Store n floats into t from element 0, rounding to t's dtype (src may alias FLOAT data). */
void ops_store_f32(core_tensor *t, const float *src, int64_t n);

/* An ints attribute of exactly n values, each in [minval, INT32_MAX] (absent: n copies of
 * dflt); false when it has another count or a value out of range. */
bool ops_attr_ints_n(const ops_ctx *c, const char *name, int n, int64_t dflt, int64_t minval, int64_t *out);

/* Channels-last helpers for the reference kernels of the ai.kiln *Nhwc ops (any dtype of
 * fixed size, rank 3 to 5: layout [N, spatial..., C] <-> [N, C, spatial...]).
 * ops_to_channels_first returns a new tensor (NULL on OOM or an unsupported tensor);
 * ops_from_channels_first copies src [N, C, sp...] into dst [N, sp..., C] (same numel). */
core_tensor *ops_to_channels_first(const core_tensor *t);
void ops_from_channels_first(const core_tensor *src, core_tensor *dst);

#endif
