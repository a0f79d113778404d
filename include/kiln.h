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
    int no_optimize;   /* 1 = skip the graph optimizer (fusions, BN folding, ...): run the
                          graph as written, for debugging; constants are still folded */
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


/* ==== plans (kiln build; docs/plan-format.md) ====
 * A plan is an engine serialized by the builder: the optimized graph with the fastest kernel
 * (tactic) measured for each node on the build machine, its weights 64-byte aligned, the
 * input shape ranges it accepts (optimization profiles), the activation memory it needs and
 * the CPU it was tuned for. kiln_model_load_file / kiln_model_load_memory recognise a plan by
 * its magic and load it without the ONNX importer or the optimizer: the file is mmap'd and the
 * weights are used in place. A context on a plan reserves its activation arena for the
 * profile's largest shapes at creation and never grows it; an input shape outside every
 * profile is refused by kiln_context_set_input with KILN_ERR_SHAPE.
 *
 * Plans are tied to the kiln build that wrote them (format version + build id) and to the ISA
 * features their kernels need; loading refuses (KILN_ERR_UNSUPPORTED) otherwise, naming what to
 * do. The metadata checksum is verified at every load, the weights checksum too unless the
 * environment has KILN_PLAN_VERIFY=meta (kiln_plan_check always verifies both).
 * kiln_load_options.num_threads applies to plans as to models; no_optimize has no effect (the
 * plan holds the graph as the builder optimized it). */

typedef struct kiln_build_options {
    int num_threads;          /* threads the tactics are timed with; 0 = physical cores */
    /* Shape ranges, trtexec-style: "name:1x3x224x224,other:1x16". Dims left symbolic in the
     * model and not given take 1. A NULL min/max takes opt; a NULL opt takes max, then min. */
    const char *min_shapes;
    const char *opt_shapes;
    const char *max_shapes;
    const char *timing_cache; /* path or NULL: tactic timings read from it (no timing is done for
                                 a hit) and new ones written back */
    int verbose;              /* -1 silent, 0 progress on stderr, 1 also passes and every tactic */
} kiln_build_options;

/* Options with every field at its default. */
KILN_API kiln_build_options kiln_build_options_default(void);

/* Build a plan from the ONNX model at onnx_path and write it to plan_path (replaced
 * atomically). Deterministic: the same model, options and timing cache give the same bytes. */
KILN_API kiln_status kiln_plan_build(const char *onnx_path, const kiln_build_options *opts,
                                     const char *plan_path);

/* KILN_OK when the plan at path would load and run here: header, format version, build id,
 * target ISA and both checksums are checked; the graph is not decoded. Otherwise the reason
 * goes to why (may be NULL; truncated to why_size) as well as to kiln_last_error(). */
KILN_API kiln_status kiln_plan_check(const char *path, char *why, size_t why_size);

/* 1 when the model was loaded from a plan. */
KILN_API int kiln_model_is_plan(const kiln_model *model);
/* Optimization profiles of a plan (0 for an ONNX model). */
KILN_API int kiln_model_profile_count(const kiln_model *model);
/* The [min, opt, max] dims of input `input_index` (numbered as kiln_model_input_info) in
 * profile `profile`; each array holds KILN_MAX_DIMS entries, *ndim receives the rank.
 * KILN_ERR_NOT_FOUND when the profile does not constrain that input. */
KILN_API kiln_status kiln_model_profile_shapes(const kiln_model *model, int profile, int input_index, int *ndim,
                                               int64_t *min, int64_t *opt, int64_t *max);

/* ==== network definition and .wts weights ==== */

/* ---- .wts weights (the tensorrtx format) ----
 * Text. Line 1: the number of entries. Then one line per entry: `name count h1 h2 ... hcount`,
 * each h the bits of an IEEE-754 float32 in hex (3f800000 = 1.0; 1-8 digits, optional 0x).
 * Blank lines are skipped. Wrong counts, bad hex, duplicate names, extra or missing entries
 * give KILN_ERR_PARSE naming the line. tests/data/network/make_wts.py writes such files from
 * a PyTorch state_dict or an ONNX model's initializers. */
typedef struct kiln_weights kiln_weights; /* immutable once loaded: thread-shareable */

/* On success *out owns the weights; free with kiln_weights_destroy. */
KILN_API kiln_status kiln_weights_load_wts(const char *path, kiln_weights **out);
/* Same from memory (size bytes, not NUL-terminated); the text is not kept. */
KILN_API kiln_status kiln_weights_parse_wts(const void *text, size_t size, kiln_weights **out);
KILN_API void kiln_weights_destroy(kiln_weights *w);
/* The values of entry `name` (owned by w, valid until kiln_weights_destroy) and their number
 * in *count (may be NULL). NULL with KILN_ERR_NOT_FOUND in kiln_last_error when absent. */
KILN_API const float *kiln_weights_get(const kiln_weights *w, const char *name, int64_t *count);
/* Entries in file order: names live as long as w. */
KILN_API int kiln_weights_count(const kiln_weights *w);
KILN_API const char *kiln_weights_name(const kiln_weights *w, int index);

/* ---- network definition ----
 * Build a network layer by layer in code (the tensorrtx way) and turn it into the same
 * kiln_model kiln_model_load_file gives for an ONNX model: the network is held as standard
 * ONNX (opset 17) nodes, so the optimizer, the fast kernels and every kiln tool apply.
 *
 *   kiln_network *net; kiln_network_create("lenet", &net);
 *   kiln_network_set_weights(net, wts);
 *   kiln_net_tensor x = kiln_network_add_input(net, "data", KILN_DTYPE_FLOAT, 4, dims);
 *   kiln_conv_desc cd = {.out_channels = 6, .kernel_h = 5, .kernel_w = 5,
 *                        .weight = kiln_net_weights_named("conv1.weight"),
 *                        .bias = kiln_net_weights_named("conv1.bias")};
 *   x = kiln_network_add_convolution(net, "conv1", x, &cd);
 *   ...
 *   kiln_network_mark_output(net, x, "prob");
 *   kiln_network_build(net, NULL, &model);   // then kiln_context_create(model, ...)
 *
 * Layers are NCHW. Every add_* call checks its inputs' dtypes and shapes at once (dims of -1
 * are dynamic and checked at run time) and returns the layer's output tensor, or an invalid
 * handle (id 0) with kiln_last_error saying which layer and what is wrong
 * ("add_convolution 'conv3': input has 2 dims, expected 4"). A failed layer poisons the
 * network: later layers that use an invalid handle fail too, and kiln_network_build returns
 * the first error, so calls may be chained and checked once at the end.
 *
 * Names: `name` may be NULL (a name such as "conv_3" is made up). A layer's output tensor
 * carries the layer's name; names must be unique in the network. Strings and arrays passed
 * to add_* calls are copied: the caller may free them when the call returns. A network is
 * used by one thread at a time; it may be built several times (e.g. with different options)
 * and destroyed once its models are built (models do not refer to it). */
typedef struct kiln_network kiln_network;
typedef struct kiln_net_tensor { int32_t id; } kiln_net_tensor; /* id 0 = invalid */
static inline int kiln_net_tensor_ok(kiln_net_tensor t) { return t.id > 0; }

/* Float weights for a layer: `count` values at `values` (copied during the add_* call), or,
 * with values == NULL and name != NULL, the entry `name` of the weights given to
 * kiln_network_set_weights. All zero = absent (only allowed for optional weights, e.g. bias). */
typedef struct kiln_net_weights {
    const float *values;
    int64_t count;
    const char *name;
} kiln_net_weights;
static inline kiln_net_weights kiln_net_weights_of(const float *values, int64_t count)
{
    kiln_net_weights w = {values, count, NULL};
    return w;
}
static inline kiln_net_weights kiln_net_weights_named(const char *name)
{
    kiln_net_weights w = {NULL, 0, name};
    return w;
}

/* name: the network's (graph's) name, may be NULL. */
KILN_API kiln_status kiln_network_create(const char *name, kiln_network **out);
KILN_API void kiln_network_destroy(kiln_network *net);
/* Weights that kiln_net_weights_named entries are looked up in. Borrowed: w must stay alive
 * while layers are added (values are copied into the network). NULL detaches. */
KILN_API kiln_status kiln_network_set_weights(kiln_network *net, const kiln_weights *w);

/* A graph input. dims[i] = -1 for a dynamic dimension (bound at kiln_context_set_input). */
KILN_API kiln_net_tensor kiln_network_add_input(kiln_network *net, const char *name, kiln_dtype dtype, int ndim,
                                                const int64_t *dims);
/* A constant tensor (any numeric dtype or BOOL): element count x kiln_dtype_size(dtype) bytes
 * from data, copied. */
KILN_API kiln_net_tensor kiln_network_add_constant(kiln_network *net, const char *name, kiln_dtype dtype, int ndim,
                                                   const int64_t *dims, const void *data);

/* 2-D convolution, NCHW float. Zero fields take the default given. */
typedef struct kiln_conv_desc {
    int64_t out_channels;
    int64_t kernel_h, kernel_w;
    int64_t stride_h, stride_w;     /* 0 = 1 */
    int64_t pad_h, pad_w;           /* zero padding on both sides */
    int64_t dilation_h, dilation_w; /* 0 = 1 */
    int64_t groups;                 /* 0 = 1 */
    kiln_net_weights weight;        /* out_channels x (C / groups) x kernel_h x kernel_w (OIHW) */
    kiln_net_weights bias;          /* out_channels values, or absent */
} kiln_conv_desc;
KILN_API kiln_net_tensor kiln_network_add_convolution(kiln_network *net, const char *name, kiln_net_tensor input,
                                                      const kiln_conv_desc *desc);

typedef enum kiln_pool_type { KILN_POOL_MAX = 0, KILN_POOL_AVERAGE = 1 } kiln_pool_type;
typedef struct kiln_pool_desc {
    kiln_pool_type type;
    int global;                 /* 1: pool all of H x W to 1 x 1 (kernel, stride, pads ignored) */
    int64_t kernel_h, kernel_w;
    int64_t stride_h, stride_w; /* 0 = the kernel size */
    int64_t pad_h, pad_w;       /* each below the kernel size */
    int ceil_mode;              /* round the output size up (PyTorch ceil_mode) */
    int count_include_pad;      /* AVERAGE: padded cells count in the divisor */
} kiln_pool_desc;
KILN_API kiln_net_tensor kiln_network_add_pooling(kiln_network *net, const char *name, kiln_net_tensor input,
                                                  const kiln_pool_desc *desc);

/* Activations (append-only). alpha/beta as noted; unused ones are ignored. */
typedef enum kiln_activation {
    KILN_ACT_RELU = 0,
    KILN_ACT_SIGMOID = 1,
    KILN_ACT_TANH = 2,
    KILN_ACT_LEAKY_RELU = 3,   /* x < 0 ? alpha * x : x */
    KILN_ACT_CLIP = 4,         /* min(max(x, alpha), beta) */
    KILN_ACT_SILU = 5,         /* x * sigmoid(x) (swish) */
    KILN_ACT_HARD_SWISH = 6,   /* x * relu6(x + 3) / 6 */
    KILN_ACT_GELU = 7,         /* 0.5 x (1 + erf(x / sqrt 2)) */
    KILN_ACT_ELU = 8,          /* x < 0 ? alpha (exp(x) - 1) : x */
    KILN_ACT_SOFTPLUS = 9,     /* log(1 + exp(x)) */
    KILN_ACT_MISH = 10,        /* x * tanh(softplus(x)) */
    KILN_ACT_HARD_SIGMOID = 11 /* max(0, min(1, alpha x + beta)) */
} kiln_activation;
KILN_API kiln_net_tensor kiln_network_add_activation(kiln_network *net, const char *name, kiln_net_tensor input,
                                                     kiln_activation act, float alpha, float beta);

/* Binary elementwise ops with numpy broadcasting; both inputs of one dtype. Append-only. */
typedef enum kiln_elementwise_op {
    KILN_EW_SUM = 0,
    KILN_EW_PROD = 1,
    KILN_EW_SUB = 2,
    KILN_EW_DIV = 3,
    KILN_EW_MAX = 4,
    KILN_EW_MIN = 5,
    KILN_EW_POW = 6
} kiln_elementwise_op;
KILN_API kiln_net_tensor kiln_network_add_elementwise(kiln_network *net, const char *name, kiln_net_tensor a,
                                                      kiln_net_tensor b, kiln_elementwise_op op);

/* Concatenate n >= 1 tensors of one rank and dtype along axis (negative counts from the end). */
KILN_API kiln_net_tensor kiln_network_add_concat(kiln_network *net, const char *name, int n,
                                                 const kiln_net_tensor *inputs, int axis);

typedef enum kiln_interp { KILN_INTERP_NEAREST = 0, KILN_INTERP_LINEAR = 1 } kiln_interp;
/* How output coordinates map to input ones (ONNX Resize coordinate_transformation_mode). */
typedef enum kiln_resize_coord {
    KILN_RESIZE_COORD_DEFAULT = 0, /* PyTorch's: NEAREST asymmetric + floor, LINEAR pytorch_half_pixel */
    KILN_RESIZE_COORD_HALF_PIXEL = 1,
    KILN_RESIZE_COORD_ASYMMETRIC = 2,
    KILN_RESIZE_COORD_ALIGN_CORNERS = 3,
    KILN_RESIZE_COORD_PYTORCH_HALF_PIXEL = 4
} kiln_resize_coord;
/* Resize over all axes: give `scales` (output = floor(input x scale)) or `sizes`, one entry per
 * input axis (e.g. {1, 1, 2, 2} to upsample NCHW by 2); the other NULL. LINEAR interpolates the
 * axes that change (bilinear for NCHW). */
typedef struct kiln_net_resize_desc {
    kiln_interp mode;
    int n;                 /* entries in scales or sizes: the input's rank */
    const float *scales;
    const int64_t *sizes;
    kiln_resize_coord coord;
} kiln_net_resize_desc;
KILN_API kiln_net_tensor kiln_network_add_resize(kiln_network *net, const char *name, kiln_net_tensor input,
                                                 const kiln_net_resize_desc *desc);

/* Matrix product with numpy batching; transpose_a/_b swap the last two axes of a/b first
 * (they then need rank >= 2). */
KILN_API kiln_net_tensor kiln_network_add_matmul(kiln_network *net, const char *name, kiln_net_tensor a,
                                                 int transpose_a, kiln_net_tensor b, int transpose_b);
/* y = flatten(x) W^T + b, as torch.nn.Linear: x is N x ... (dims after the first are
 * flattened into K), weight is out_features x K, bias out_features values or absent. */
KILN_API kiln_net_tensor kiln_network_add_fully_connected(kiln_network *net, const char *name, kiln_net_tensor input,
                                                          int64_t out_features, kiln_net_weights weight,
                                                          kiln_net_weights bias);
KILN_API kiln_net_tensor kiln_network_add_softmax(kiln_network *net, const char *name, kiln_net_tensor input, int axis);

/* Batch normalization over axis 1 (inference form): y = (x - mean) / sqrt(var + eps) * scale
 * + bias, each C values. With all four absent and `prefix` set, they are looked up in the
 * network's weights as PREFIX.weight, PREFIX.bias, PREFIX.running_mean, PREFIX.running_var
 * (PyTorch's names). eps 0 = 1e-5. */
typedef struct kiln_batchnorm_desc {
    kiln_net_weights scale, bias, mean, var;
    float eps;
    const char *prefix;
} kiln_batchnorm_desc;
KILN_API kiln_net_tensor kiln_network_add_batchnorm(kiln_network *net, const char *name, kiln_net_tensor input,
                                                    const kiln_batchnorm_desc *desc);
/* Per-channel (axis 1) y = x * scale + shift; shift may be absent. Folds into a preceding
 * convolution like a batch norm. */
KILN_API kiln_net_tensor kiln_network_add_scale(kiln_network *net, const char *name, kiln_net_tensor input,
                                                kiln_net_weights scale, kiln_net_weights shift);

/* Reshape with ONNX rules: dims[i] = 0 copies input dim i, one dims[i] = -1 is inferred. */
KILN_API kiln_net_tensor kiln_network_add_reshape(kiln_network *net, const char *name, kiln_net_tensor input,
                                                  int ndim, const int64_t *dims);
/* Output axis i = input axis perm[i]; perm NULL reverses the axes. */
KILN_API kiln_net_tensor kiln_network_add_transpose(kiln_network *net, const char *name, kiln_net_tensor input,
                                                    int ndim, const int *perm);
/* To 2-D: dims before `axis` and from `axis` on are multiplied together. */
KILN_API kiln_net_tensor kiln_network_add_flatten(kiln_network *net, const char *name, kiln_net_tensor input, int axis);
/* ONNX Slice: for each of n axes (axes NULL = 0..n-1) take start:end:step (steps NULL = 1);
 * negative starts/ends count from the end and both are clamped as in Python. */
KILN_API kiln_net_tensor kiln_network_add_slice(kiln_network *net, const char *name, kiln_net_tensor input, int n,
                                                const int64_t *starts, const int64_t *ends, const int64_t *axes,
                                                const int64_t *steps);

/* Make t a model output named `name` (NULL = the tensor's own name). A tensor may be marked
 * more than once under different names. */
KILN_API kiln_status kiln_network_mark_output(kiln_network *net, kiln_net_tensor t, const char *name);
/* Descriptor of a tensor: name (lives until the network is destroyed), dtype, and the shape
 * inferred for it (-1 where dynamic). */
KILN_API kiln_status kiln_network_tensor_info(const kiln_network *net, kiln_net_tensor t, kiln_tensor_info *out);

/* Check the network (no earlier layer failed, at least one output, shapes agree) and turn it
 * into a model, optimized and ready for kiln_context_create, as kiln_model_load_file would.
 * opts may be NULL. On success *out owns the model. The network is unchanged. */
KILN_API kiln_status kiln_network_build(kiln_network *net, const kiln_load_options *opts, kiln_model **out);

/* ==== custom operators (plugins) ====
 * Teach kiln an op it lacks: register (domain, op_type) with a run callback (and optionally a
 * shape inference callback); models that contain that op then load and run like any other,
 * whether they come from ONNX files or from kiln_network_add_plugin.
 *
 * The registry is process-wide and permanent (there is no unregister). Register plugins
 * before loading the models that use them: a model's kernels are resolved when it is loaded,
 * so loading before registering fails with KILN_ERR_UNSUPPORTED ("op com.example.X ... is not
 * supported"). kiln_plugin_register is thread-safe and may run concurrently with model loads
 * and runs. Registering the same (domain, op_type) twice, or an op kiln implements itself, is
 * an error.
 *
 * Callbacks may run on any thread and concurrently for different nodes and contexts: they
 * must be thread-safe, and `user` is shared by all of them. A kiln_plugin_context is valid
 * only during the callback it is passed to. */
typedef struct kiln_plugin_context kiln_plugin_context;

typedef struct kiln_plugin_desc {
    const char *domain;  /* e.g. "com.example"; "" = the default ONNX domain. Copied. */
    const char *op_type; /* Copied. */
    void *user;          /* passed to the callbacks; must live as long as the process */
    /* Optional: at model load, report output dtypes/shapes from the input infos and the
     * attributes (kiln_plugin_input_info, kiln_plugin_attr_*, kiln_plugin_set_output_info).
     * Shapes feed kiln's shape inference (model output infos, optimizer). A non-OK return
     * fails the load with the plugin's message. NULL: outputs are typed at run time only. */
    kiln_status (*infer)(kiln_plugin_context *ctx, void *user);
    /* Required: read the inputs (kiln_plugin_input), allocate and fill every output
     * (kiln_plugin_output). Return KILN_OK, or an error made with kiln_plugin_error. Outputs
     * must not depend on anything but the inputs and attributes (kiln may evaluate a node
     * whose inputs are all constants once, at load). */
    kiln_status (*run)(kiln_plugin_context *ctx, void *user);
} kiln_plugin_desc;

/* desc is copied (its strings too); user and the callbacks must outlive every model. */
KILN_API kiln_status kiln_plugin_register(const kiln_plugin_desc *desc);

/* ---- inside callbacks ---- */
/* The node's name and op ("com.example.ClampScale"); live during the callback. */
KILN_API const char *kiln_plugin_node_name(const kiln_plugin_context *ctx);
KILN_API int kiln_plugin_input_count(const kiln_plugin_context *ctx);  /* as the node lists them */
KILN_API int kiln_plugin_output_count(const kiln_plugin_context *ctx);
/* Dtype and shape of input i. In run: exact. In infer: dims -1 where unknown, ndim -1 when
 * even the rank is unknown. KILN_ERR_NOT_FOUND for an omitted optional input. */
KILN_API kiln_status kiln_plugin_input_info(const kiln_plugin_context *ctx, int i, kiln_tensor_info *out);
/* Data of input i (borrowed, valid during the callback). In infer, only for constant inputs
 * (KILN_ERR_NOT_FOUND otherwise). */
KILN_API kiln_status kiln_plugin_input(const kiln_plugin_context *ctx, int i, kiln_tensor_view *out);
/* run: allocate output i (zero-filled) and get its writable storage in *data (NULL when it has
 * no elements). The storage belongs to kiln. */
KILN_API kiln_status kiln_plugin_output(kiln_plugin_context *ctx, int i, kiln_dtype dtype, int ndim,
                                        const int64_t *dims, void **data);
/* infer: declare output i's dtype and shape (dims -1 = unknown). */
KILN_API kiln_status kiln_plugin_set_output_info(kiln_plugin_context *ctx, int i, kiln_dtype dtype, int ndim,
                                                 const int64_t *dims);
/* Attributes. KILN_ERR_NOT_FOUND when absent (*out untouched: preset it to the default);
 * KILN_ERR_INVALID_MODEL when the attribute has another type. Strings and arrays belong to
 * the model. */
KILN_API kiln_status kiln_plugin_attr_int(const kiln_plugin_context *ctx, const char *name, int64_t *out);
KILN_API kiln_status kiln_plugin_attr_float(const kiln_plugin_context *ctx, const char *name, float *out);
KILN_API kiln_status kiln_plugin_attr_string(const kiln_plugin_context *ctx, const char *name, const char **out);
KILN_API kiln_status kiln_plugin_attr_ints(const kiln_plugin_context *ctx, const char *name, const int64_t **out,
                                           int64_t *n);
KILN_API kiln_status kiln_plugin_attr_floats(const kiln_plugin_context *ctx, const char *name, const float **out,
                                             int64_t *n);
/* Temporary memory for run, 64-byte aligned, valid until the callback returns (NULL on OOM). */
KILN_API void *kiln_plugin_scratch(kiln_plugin_context *ctx, size_t bytes);
/* Set the error text, prefixed with the node ("node 'n' (com.example.X): ..."), and return s:
 * `return kiln_plugin_error(ctx, KILN_ERR_SHAPE, "input has %d dims", nd);` */
KILN_API kiln_status kiln_plugin_error(kiln_plugin_context *ctx, kiln_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ---- plugin layers in a network ---- */
/* One attribute of a plugin node; the kind follows from which field is set: exactly one of
 * is_float/string/ints/floats, else an int. */
typedef struct kiln_plugin_attr {
    const char *name;
    int64_t i;
    float f;
    int is_float;        /* 1: f holds the value */
    const char *s;       /* non-NULL: a string */
    const int64_t *ints; /* non-NULL: n ints */
    const float *floats; /* non-NULL: n floats */
    int64_t n;
} kiln_plugin_attr;
/* A node of a registered plugin op, or of any op kiln implements (by its ONNX name, e.g.
 * ("", "ReduceSum")), with n_inputs inputs (an input with id -1 is omitted: ONNX's "") and
 * n_outputs outputs, written to outputs[] (invalid on error). Output 0 carries the layer's name,
 * output i > 0 "NAME:i". The plugin's infer callback (or kiln's shape rules for a built-in op)
 * types the outputs; otherwise their shapes are unknown until run time and later layers check
 * what they can. Attributes are copied. */
KILN_API kiln_status kiln_network_add_plugin(kiln_network *net, const char *name, const char *domain,
                                             const char *op_type, int n_inputs, const kiln_net_tensor *inputs,
                                             int n_attrs, const kiln_plugin_attr *attrs, int n_outputs,
                                             kiln_net_tensor *outputs);

/* ==== vision (libkiln_vision: links libjpeg-turbo and libpng; not part of the lean core) ====
 * Images are 8-bit, interleaved (HWC), channels in RGB(A) order. Functions that take an
 * output image allocate it (free with kiln_image_free); a kiln_image may also wrap caller
 * memory (data not owned: set owned = 0). Thread-safe: no global state. */

typedef struct kiln_image {
    int width, height;
    int channels;      /* 1 (gray), 3 (RGB) or 4 (RGBA) */
    int stride;        /* bytes per row, >= width * channels */
    uint8_t *data;
    int owned;         /* 1: data belongs to the image, freed by kiln_image_free */
} kiln_image;

/* Allocate a zeroed image (stride = width * channels). */
KILN_API kiln_status kiln_image_create(int width, int height, int channels, kiln_image *out);
/* Wrap caller memory (not copied, not freed). */
KILN_API kiln_image kiln_image_wrap(uint8_t *data, int width, int height, int channels, int stride);
KILN_API void kiln_image_free(kiln_image *img);
/* Decode a JPEG or PNG file/buffer (format from the magic bytes). want_channels: 0 = as
 * stored (gray stays 1, palette/RGB become 3, alpha kept as 4), or 1 / 3 / 4 to convert.
 * Corrupt, truncated or unsupported files give KILN_ERR_PARSE / KILN_ERR_UNSUPPORTED with
 * the reason. */
KILN_API kiln_status kiln_image_load(const char *path, int want_channels, kiln_image *out);
KILN_API kiln_status kiln_image_decode(const void *data, size_t size, int want_channels, kiln_image *out);
/* Write PNG or JPEG, chosen by the path's extension (.png, .jpg/.jpeg); quality 1..100 for
 * JPEG (0 = 90). */
KILN_API kiln_status kiln_image_save(const char *path, const kiln_image *img, int quality);

typedef enum kiln_resize_mode {
    KILN_RESIZE_NEAREST = 0,
    KILN_RESIZE_BILINEAR = 1, /* half-pixel centres, as OpenCV INTER_LINEAR */
    KILN_RESIZE_AREA = 2      /* pixel-area averaging for downscaling (OpenCV INTER_AREA) */
} kiln_resize_mode;

KILN_API kiln_status kiln_image_resize(const kiln_image *src, int width, int height,
                                       kiln_resize_mode mode, kiln_image *out);
/* Crop the centred width x height window (padding with 0 where the image is smaller). */
KILN_API kiln_status kiln_image_center_crop(const kiln_image *src, int width, int height, kiln_image *out);
/* Swap the R and B channels in place (3 or 4 channels). */
KILN_API void kiln_image_swap_rb(kiln_image *img);

/* How 8-bit pixels become floats: out[c] = (pixel[c] * scale - mean[c]) / std[c], with
 * channel c read from source channel (swap_rb ? 2 - c : c). Defaults via
 * kiln_normalize_default(): scale 1/255, mean 0, std 1, no swap. */
typedef struct kiln_normalize {
    float scale;
    float mean[4];
    float std[4];
    int swap_rb;
} kiln_normalize;
KILN_API kiln_normalize kiln_normalize_default(void);

/* HWC uint8 -> float planar NCHW (one image: C*H*W floats in dst, dst_len floats). */
KILN_API kiln_status kiln_image_to_tensor(const kiln_image *src, const kiln_normalize *norm,
                                          float *dst, size_t dst_len);

/* YOLOv5-style letterbox: scale to fit width x height keeping the aspect ratio, centre, pad
 * with pad_value. auto_pad: pad only to the next multiple of stride (minimum rectangle);
 * scale_fill: stretch to exactly width x height with no padding; scale_up = 0: never
 * enlarge (only shrink). */
typedef struct kiln_letterbox_options {
    int width, height;
    int stride;          /* 32 */
    int auto_pad;        /* 0 */
    int scale_fill;      /* 0 */
    int scale_up;        /* 1 */
    uint8_t pad_value;   /* 114 */
    kiln_resize_mode mode; /* BILINEAR */
} kiln_letterbox_options;
KILN_API kiln_letterbox_options kiln_letterbox_default(int width, int height);

/* What the letterbox did, to map boxes back: x_orig = (x - pad_x) / ratio_x. */
typedef struct kiln_letterbox_info {
    float ratio_x, ratio_y;
    float pad_x, pad_y;   /* left and top padding in output pixels */
    int out_width, out_height;
} kiln_letterbox_info;

KILN_API kiln_status kiln_letterbox(const kiln_image *src, const kiln_letterbox_options *opt,
                                    kiln_image *out, kiln_letterbox_info *info);
/* Fused letterbox + normalize into float NCHW (3 x out_height x out_width floats; with
 * auto_pad the size is only known after: query with dst = NULL, then call again). */
KILN_API kiln_status kiln_letterbox_to_tensor(const kiln_image *src, const kiln_letterbox_options *opt,
                                              const kiln_normalize *norm, float *dst, size_t dst_len,
                                              kiln_letterbox_info *info);

/* Affine warp with the forward (src->dst) and inverse (dst->src) 2x3 matrices kept, the
 * tensorRT_Pro way. */
typedef struct kiln_affine {
    float fwd[6]; /* [a b c; d e f]: dst = A * src */
    float inv[6];
} kiln_affine;
/* Scale-to-fit and centre src_w x src_h into dst_w x dst_h (the letterbox as an affine). */
KILN_API kiln_affine kiln_affine_fit(int src_w, int src_h, int dst_w, int dst_h);
/* Any invertible forward matrix; KILN_ERR_INVALID_ARGUMENT when singular. */
KILN_API kiln_status kiln_affine_from_matrix(const float fwd[6], kiln_affine *out);
/* Bilinear warp; pixels mapping outside src get `border`. */
KILN_API kiln_status kiln_warp_affine(const kiln_image *src, const kiln_affine *a, int dst_w, int dst_h,
                                      uint8_t border, kiln_image *out);
KILN_API kiln_status kiln_warp_affine_to_tensor(const kiln_image *src, const kiln_affine *a, int dst_w,
                                                int dst_h, uint8_t border, const kiln_normalize *norm,
                                                float *dst, size_t dst_len);

/* ---- post-processing ---- */
typedef struct kiln_detection {
    float x1, y1, x2, y2; /* corners, pixels */
    float score;
    int class_id;
} kiln_detection;

typedef enum kiln_yolo_format {
    KILN_YOLO_V5 = 0, /* [N, boxes, 5 + classes]: cx cy w h obj cls...; score = obj * cls */
    KILN_YOLO_V8 = 1  /* [N, 4 + classes, boxes]: cx cy w h cls...; score = cls */
} kiln_yolo_format;

typedef struct kiln_detect_options {
    float conf_threshold; /* 0.25 */
    float iou_threshold;  /* 0.45 */
    int max_detections;   /* 300 */
    int agnostic;         /* 0: NMS per class; 1: across classes */
    int max_candidates;   /* boxes kept for NMS, best first (30000) */
} kiln_detect_options;
KILN_API kiln_detect_options kiln_detect_default(void);

/* Decode one image's YOLO output (boxes x attrs for V5, attrs x boxes for V8, as stored),
 * filter by confidence, run NMS and keep at most max_detections in *dets (caller frees
 * with free()), sorted by score. Boxes stay in network-input pixels. */
KILN_API kiln_status kiln_yolo_detect(const float *output, int64_t dim1, int64_t dim2, kiln_yolo_format fmt,
                                      const kiln_detect_options *opt, kiln_detection **dets, int *n_dets);
/* Non-maximum suppression in place: keeps the best boxes (sorted by score) and returns the
 * count in *n_keep. */
KILN_API kiln_status kiln_nms(kiln_detection *dets, int n, float iou_threshold, int agnostic,
                              int max_keep, int *n_keep);
/* Map boxes from network input back to the original image (clipped to it). */
KILN_API void kiln_detections_unletterbox(kiln_detection *dets, int n, const kiln_letterbox_info *info,
                                          int orig_w, int orig_h);
KILN_API void kiln_detections_unwarp(kiln_detection *dets, int n, const kiln_affine *a, int orig_w, int orig_h);

/* Softmax (if apply_softmax) and the k best classes: idx[k], prob[k], best first. */
KILN_API kiln_status kiln_classify_topk(const float *logits, int n_classes, int k, int apply_softmax,
                                        int *idx, float *prob);

/* Read a labels file: one label per line (blank lines kept as ""). *labels is an array of
 * *n strings; free with kiln_labels_free. */
KILN_API kiln_status kiln_labels_load(const char *path, char ***labels, int *n);
KILN_API void kiln_labels_free(char **labels, int n);

/* Drawing (in place; clipped to the image). Text uses kiln's built-in bitmap font; scale
 * >= 1 multiplies its 8x8 cell size. */
KILN_API void kiln_draw_rect(kiln_image *img, int x1, int y1, int x2, int y2, const uint8_t rgb[3], int thickness);
KILN_API void kiln_draw_fill_rect(kiln_image *img, int x1, int y1, int x2, int y2, const uint8_t rgb[3]);
KILN_API void kiln_draw_text(kiln_image *img, int x, int y, const char *text, const uint8_t rgb[3], int scale);
/* Boxes with "label score" captions in a per-class colour. labels may be NULL. */
KILN_API void kiln_draw_detections(kiln_image *img, const kiln_detection *dets, int n,
                                   const char *const *labels, int n_labels);

/* ---- measuring ---------------------------------------------------------------------- */

/* Time of one layer (node) of the executed graph, accumulated over the runs made since
 * profiling was enabled. Strings live as long as the model. */
typedef struct kiln_layer_time {
    const char *name;
    const char *op_type;
    double total_ms;
    int64_t count;
} kiln_layer_time;

/* Turn per-layer timing on (resets the counters) or off. */
KILN_API kiln_status kiln_context_set_profiling(kiln_context *ctx, int enable);
/* Number of layers (nodes of the optimized top-level graph). */
KILN_API int kiln_context_layer_count(const kiln_context *ctx);
KILN_API kiln_status kiln_context_layer_time(const kiln_context *ctx, int index, kiln_layer_time *out);
/* Bytes of the planned activation arena (the peak activation memory of a run), or 0 before
 * a plan exists (it is made by the first run with a given set of input shapes). */
KILN_API size_t kiln_context_activation_bytes(const kiln_context *ctx);

#ifdef __cplusplus
}
#endif
#endif /* KILN_H */
