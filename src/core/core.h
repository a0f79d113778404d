/* core.h — internal foundations shared by every module: errors, dtypes, half floats,
 * tensors and runtime values (tensor | sequence | empty optional). */
#ifndef KILN_CORE_H
#define KILN_CORE_H

#include "kiln.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define CORE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CORE_PRINTF(a, b)
#endif

/* ---- errors (status.c) -------------------------------------------------------------
 * core_error sets this thread's error text (printf-style) and returns `s`, so that
 * `return core_error(KILN_ERR_PARSE, "tensor '%s': ...", name);` is the idiom.
 * core_error_prefix prepends context ("node 'x' (Conv): ") to the current text. */
kiln_status core_error(kiln_status s, const char *fmt, ...) CORE_PRINTF(2, 3);
kiln_status core_error_prefix(kiln_status s, const char *fmt, ...) CORE_PRINTF(2, 3);
void core_error_clear(void);
const char *core_error_text(void);
kiln_status core_oom(void); /* KILN_ERR_OUT_OF_MEMORY with a standard message */

/* Allocation helpers: return NULL on failure, never abort. */
void *core_malloc(size_t n);
void *core_calloc(size_t n, size_t size);
void *core_realloc(void *p, size_t n);
char *core_strdup(const char *s);
char *core_strndup(const char *s, size_t n);
/* Overflow-checked a*b (returns false on overflow or negative). */
bool core_mul_size(int64_t a, int64_t b, int64_t *out);

/* ---- dtypes (dtype.c) ---------------------------------------------------------------- */
size_t core_dtype_size(kiln_dtype t);        /* 0 for UNDEFINED / out of range */
const char *core_dtype_name(kiln_dtype t);
bool core_dtype_is_float(kiln_dtype t);      /* float, double, f16, bf16, f8* */
bool core_dtype_is_int(kiln_dtype t);        /* signed + unsigned ints, 4-bit ints */
bool core_dtype_is_signed(kiln_dtype t);

/* Half-precision and 8-bit float conversions (round to nearest even, NaN preserved). */
float core_f16_to_f32(uint16_t h);
uint16_t core_f32_to_f16(float f);
float core_bf16_to_f32(uint16_t h);
uint16_t core_f32_to_bf16(float f);
/* float8 formats: saturate=true clamps to the max finite value as ONNX Cast does by
 * default; false maps overflow to inf/NaN per the format. */
float core_f8_to_f32(kiln_dtype t, uint8_t v);
uint8_t core_f32_to_f8(kiln_dtype t, float f, bool saturate);
float core_f4e2m1_to_f32(uint8_t v);
uint8_t core_f32_to_f4e2m1(float f);

/* Read element i of a buffer of dtype t as double / int64 (numeric types only), and
 * write one. These are slow but general: use them for rarely-hot paths and conversions. */
double core_load_f64(kiln_dtype t, const void *data, int64_t i);
int64_t core_load_i64(kiln_dtype t, const void *data, int64_t i);
void core_store_f64(kiln_dtype t, void *data, int64_t i, double v);
void core_store_i64(kiln_dtype t, void *data, int64_t i, int64_t v);

/* ---- tensors (tensor.c) ---------------------------------------------------------------
 * A dense row-major tensor. `data` holds numel elements of dtype (STRING: char* each,
 * owned by the tensor when owns_data). A tensor with owns_data == false borrows its
 * storage (mmap'd weights, user buffers); the owner keeps it alive. */
typedef enum core_device { CORE_DEVICE_CPU = 0, CORE_DEVICE_CUDA = 1 } core_device;

typedef struct core_quant {
    int axis;        /* per-axis channel axis, or -1 for per-tensor */
    int64_t count;   /* number of scales */
    float *scale;
    int32_t *zero_point;
} core_quant;

typedef struct core_tensor {
    kiln_dtype dtype;
    int ndim;
    int64_t dims[KILN_MAX_DIMS];
    int64_t numel;
    void *data;
    size_t nbytes;
    bool owns_data;
    bool mapped;       /* data is registered mapped file data: see core_tensor_set_mapped */
    core_device device;
    core_quant *quant; /* NULL unless quantized; owned */
    char *name;        /* optional, owned; NULL for anonymous */
} core_tensor;

/* Create a tensor with owned, zero-initialised storage (STRING elements are set to
 * empty strings). ndim 0 = scalar. Returns NULL and sets the error on failure. */
core_tensor *core_tensor_create(kiln_dtype dtype, int ndim, const int64_t *dims);
/* Create a tensor borrowing `data` (not freed by destroy). */
core_tensor *core_tensor_wrap(kiln_dtype dtype, int ndim, const int64_t *dims, void *data);
/* Deep copy (strings duplicated). */
core_tensor *core_tensor_clone(const core_tensor *t);
void core_tensor_destroy(core_tensor *t);
int64_t core_shape_numel(int ndim, const int64_t *dims); /* -1 on overflow / negative */
/* "2x3x4" style text of a shape into buf; returns buf. */
char *core_shape_str(int ndim, const int64_t *dims, char *buf, size_t size);
/* Mark t as borrowing clean file-backed memory: a private mapping of a file that nobody
 * writes (the ONNX loader's mmap'd model and external-data files). While t lives, its data
 * pointer is registered, and a consumer that has made its own derived copy of the bytes (the
 * CPU weight cache, after packing) may hand their whole pages back to the OS with
 * core_mapped_release: the kernel re-reads them from the file when anything touches them
 * again, so every reader still sees the same values; only resident memory shrinks. Never
 * mark data that can be written, or that is not file-backed (anonymous memory reads back as
 * zeros). Returns false (t stays unmarked) on OOM or when t owns its data. */
bool core_tensor_set_mapped(core_tensor *t);
/* If p is the data pointer of a live tensor marked mapped and [p, p + n) lies within its
 * bytes: drop the whole pages of [p, p + n) from this process, except pages that hold one of
 * keep[0..n_keep) (ascending addresses the caller reads again soon, e.g. cache fingerprint
 * samples, so that those reads do not fault pages back in). Returns the bytes dropped; 0 when
 * p is not mapped data (nothing is done). Thread-safe. */
size_t core_mapped_release(const void *p, size_t n, const void *const *keep, size_t n_keep);
/* Replace string element i (copies s). Returns false on OOM. */
bool core_tensor_set_string(core_tensor *t, int64_t i, const char *s, size_t len);

/* ---- runtime values ---------------------------------------------------------------------
 * What flows along a graph edge: a tensor, a sequence of values, or an empty optional.
 * Values are reference counted: core_value_retain / core_value_release. A value's
 * contents must not be modified once it is shared (refcount > 1). */
typedef enum core_value_kind {
    CORE_VALUE_TENSOR = 0,
    CORE_VALUE_SEQUENCE = 1,
    CORE_VALUE_NONE = 2 /* an optional without element */
} core_value_kind;

typedef struct core_value {
    core_value_kind kind;
    int refcount;
    core_tensor *tensor;       /* TENSOR: owned */
    struct core_value **items; /* SEQUENCE: owned references */
    int64_t n_items;
    kiln_dtype elem_dtype;     /* SEQUENCE/NONE: element dtype when known */
} core_value;

core_value *core_value_from_tensor(core_tensor *t); /* takes ownership of t */
core_value *core_value_sequence(kiln_dtype elem_dtype);
core_value *core_value_none(void);
/* Append (takes a reference owned by the caller: the item is retained). */
bool core_value_seq_append(core_value *seq, core_value *item);
core_value *core_value_retain(core_value *v);
void core_value_release(core_value *v);

#endif /* KILN_CORE_H */
