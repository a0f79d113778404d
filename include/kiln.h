/* kiln.h — the public C API of kiln, a model deployment toolkit, and its manual.
 *
 * Stages: load a model (engine) -> create a context -> bind inputs -> run -> read outputs.
 *
 * Threading: a kiln_model is immutable after load and may be shared by any number of
 * threads. A kiln_context belongs to one thread at a time; create one context per
 * concurrent inference. The error text of kiln_last_error() is per thread.
 *
 * Ownership: every pointer parameter states who owns it and how long it must live.
 * Functions never abort or exit on bad input or out-of-memory; they return a status and
 * leave a message naming what was wrong in kiln_last_error().
 */
#ifndef KILN_H
#define KILN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(KILN_BUILDING)
#define KILN_API __attribute__((visibility("default")))
#else
#define KILN_API
#endif

#define KILN_VERSION_MAJOR 0
#define KILN_VERSION_MINOR 1
#define KILN_VERSION_PATCH 0

/* Status codes. Append-only. */
typedef enum kiln_status {
    KILN_OK = 0,
    KILN_ERR_INVALID_ARGUMENT = 1, /* a caller passed something unusable (NULL, bad index) */
    KILN_ERR_IO = 2,               /* a file could not be opened, read or mapped */
    KILN_ERR_PARSE = 3,            /* a model or tensor file is corrupt or truncated */
    KILN_ERR_INVALID_MODEL = 4,    /* well-formed file, but the graph is invalid */
    KILN_ERR_UNSUPPORTED = 5,      /* an op, attribute or dtype kiln cannot run yet */
    KILN_ERR_SHAPE = 6,            /* shapes do not agree */
    KILN_ERR_DTYPE = 7,            /* dtypes do not agree */
    KILN_ERR_OUT_OF_MEMORY = 8,
    KILN_ERR_NOT_FOUND = 9,        /* no input/output with that name */
    KILN_ERR_RUNTIME = 10,         /* a kernel failed on the data it was given */
    KILN_ERR_INTERNAL = 11         /* a bug in kiln */
} kiln_status;

/* Element types; the numbers equal ONNX TensorProto.DataType. Append-only.
 * Sub-byte types (INT4, UINT4, FLOAT4E2M1) are held unpacked, one element per byte. */
typedef enum kiln_dtype {
    KILN_DTYPE_UNDEFINED = 0,
    KILN_DTYPE_FLOAT = 1,
    KILN_DTYPE_UINT8 = 2,
    KILN_DTYPE_INT8 = 3,
    KILN_DTYPE_UINT16 = 4,
    KILN_DTYPE_INT16 = 5,
    KILN_DTYPE_INT32 = 6,
    KILN_DTYPE_INT64 = 7,
    KILN_DTYPE_STRING = 8, /* element = char* to a NUL-terminated UTF-8 string */
    KILN_DTYPE_BOOL = 9,   /* one byte, 0 or 1 */
    KILN_DTYPE_FLOAT16 = 10,
    KILN_DTYPE_DOUBLE = 11,
    KILN_DTYPE_UINT32 = 12,
    KILN_DTYPE_UINT64 = 13,
    KILN_DTYPE_COMPLEX64 = 14,
    KILN_DTYPE_COMPLEX128 = 15,
    KILN_DTYPE_BFLOAT16 = 16,
    KILN_DTYPE_FLOAT8E4M3FN = 17,
    KILN_DTYPE_FLOAT8E4M3FNUZ = 18,
    KILN_DTYPE_FLOAT8E5M2 = 19,
    KILN_DTYPE_FLOAT8E5M2FNUZ = 20,
    KILN_DTYPE_UINT4 = 21,
    KILN_DTYPE_INT4 = 22,
    KILN_DTYPE_FLOAT4E2M1 = 23,
    KILN_DTYPE_FLOAT8E8M0 = 24,
    KILN_DTYPE_UINT2 = 25,
    KILN_DTYPE_INT2 = 26,
    KILN_DTYPE_COUNT_
} kiln_dtype;

#define KILN_MAX_DIMS 16

/* Opaque handles. */
typedef struct kiln_model kiln_model;     /* a loaded model: immutable, thread-shareable */
typedef struct kiln_context kiln_context; /* per-inference state: one thread at a time */

/* Description of a model input or output. Strings point into the model and live as long
 * as it does. dims[i] is -1 where unknown; dim_names[i] is then the symbolic name
 * ("batch") or NULL. ndim is -1 when even the rank is unknown. */
typedef struct kiln_tensor_info {
    const char *name;
    kiln_dtype dtype;
    int ndim;
    int64_t dims[KILN_MAX_DIMS];
    const char *dim_names[KILN_MAX_DIMS];
} kiln_tensor_info;

/* A tensor the caller reads: data points into memory owned by the context, valid until
 * the next kiln_context_run / kiln_context_destroy on that context. */
typedef struct kiln_tensor_view {
    kiln_dtype dtype;
    int ndim;
    int64_t dims[KILN_MAX_DIMS];
    const void *data; /* STRING: const char *const * */
    size_t nbytes;
} kiln_tensor_view;

typedef struct kiln_load_options {
    int num_threads;   /* 0 = default (physical cores) */
    int optimize;      /* reserved: 0 = run the graph as written */
} kiln_load_options;

/* ---- errors and versions ---------------------------------------------------------- */

/* Text of the last error on this thread; never NULL; valid until the next kiln call on
 * this thread. */
KILN_API const char *kiln_last_error(void);
KILN_API const char *kiln_status_string(kiln_status s);
KILN_API const char *kiln_version_string(void);
/* "float", "int64", ... ; "undefined" for unknown values. */
KILN_API const char *kiln_dtype_name(kiln_dtype t);
/* Bytes per element as held in memory (STRING: sizeof(char*)); 0 for UNDEFINED/unknown. */
KILN_API size_t kiln_dtype_size(kiln_dtype t);

/* ---- models -------------------------------------------------------------------------- */

/* Load an ONNX model from a file. Weights stored as external data are mapped, never
 * copied; their paths are resolved relative to the model's directory and may not leave
 * it. opts may be NULL. On success *out owns the model; free it with kiln_model_destroy. */
KILN_API kiln_status kiln_model_load_file(const char *path, const kiln_load_options *opts,
                                          kiln_model **out);
/* Load from a buffer. The buffer is copied where needed: the caller may free it after the
 * call returns. base_dir (may be NULL) is where external data files are looked up. */
KILN_API kiln_status kiln_model_load_memory(const void *data, size_t size, const char *base_dir,
                                            const kiln_load_options *opts, kiln_model **out);
/* Frees the model. All contexts created from it must be destroyed first. NULL is a no-op. */
KILN_API void kiln_model_destroy(kiln_model *model);

KILN_API int kiln_model_input_count(const kiln_model *model);
KILN_API int kiln_model_output_count(const kiln_model *model);
/* Fill *out for input/output number index. Thread-safe. */
KILN_API kiln_status kiln_model_input_info(const kiln_model *model, int index, kiln_tensor_info *out);
KILN_API kiln_status kiln_model_output_info(const kiln_model *model, int index, kiln_tensor_info *out);

/* ---- contexts ------------------------------------------------------------------------ */

/* Create an execution context on a model. The model must outlive the context. Several
 * contexts on one model may run concurrently from different threads. */
KILN_API kiln_status kiln_context_create(const kiln_model *model, kiln_context **out);
KILN_API void kiln_context_destroy(kiln_context *ctx);

/* Bind input `name`. data is borrowed (not copied) and must stay valid and unchanged
 * until kiln_context_run returns; nbytes must equal the element count times
 * kiln_dtype_size(dtype). For STRING, data is an array of const char* (NUL-terminated).
 * The dtype must equal the model's declared dtype and the dims must agree with the
 * declared shape where it is fixed; otherwise KILN_ERR_DTYPE / KILN_ERR_SHAPE. */
KILN_API kiln_status kiln_context_set_input(kiln_context *ctx, const char *name, kiln_dtype dtype,
                                            int ndim, const int64_t *dims, const void *data,
                                            size_t nbytes);
/* Run the model on the bound inputs. Every graph input without an initializer must be
 * bound. Outputs of the previous run are released. */
KILN_API kiln_status kiln_context_run(kiln_context *ctx);
/* View output `name` of the last run (see kiln_tensor_view for lifetime). An output that
 * is a sequence or an empty optional gives KILN_ERR_UNSUPPORTED here. */
KILN_API kiln_status kiln_context_get_output(kiln_context *ctx, const char *name,
                                             kiln_tensor_view *out);

#ifdef __cplusplus
}
#endif
#endif /* KILN_H */
