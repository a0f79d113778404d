/* npy.h — NumPy .npy files (format 1.0/2.0/3.0) to and from kiln tensors, for the CLI. */
#ifndef KILN_TOOLS_NPY_H
#define KILN_TOOLS_NPY_H

#include "core/core.h"

/* Decode a .npy image. Numeric dtypes (f2 f4 f8 i1..i8 u1..u8 b1 c8 c16, either byte
 * order) map to the matching kiln dtype; 'U' and 'S' arrays become STRING tensors (UTF-8).
 * Fortran-ordered arrays of rank >= 2, object and structured dtypes are rejected. On
 * success *out is an owned tensor; on failure the error text says what is wrong. */
kiln_status npy_decode(const void *buf, size_t size, core_tensor **out);
kiln_status npy_read_file(const char *path, core_tensor **out);

/* Encode a dense row-major array as a .npy image (version 1.0, or 2.0 when the header
 * needs it). data holds numel elements of dtype (STRING: const char* each, UTF-8, written
 * as '<U'). Types NumPy lacks (bfloat16, float8*, float4) are widened to '<f4'; 4- and
 * 2-bit integers (held one per byte) are written as '|i1' / '|u1'. *out is malloc'd. */
kiln_status npy_encode(kiln_dtype dtype, int ndim, const int64_t *dims, const void *data,
                       size_t nbytes, void **out, size_t *out_size);
kiln_status npy_write_file(const char *path, kiln_dtype dtype, int ndim, const int64_t *dims,
                           const void *data, size_t nbytes);

#endif
