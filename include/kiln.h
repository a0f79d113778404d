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


/* ==== plans (kiln build; docs/plan-format.md) ==== */
/* (plan API: written with issue 4's plan work) */

/* ==== network definition and .wts weights ==== */
/* (network API: written with issue 4's network work) */

/* ==== custom operators (plugins) ==== */
/* (plugin API: written with issue 4's plugin work) */

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
