/* onnx.h — ONNX protobuf (wire format) decoding into kiln IR, without libprotobuf. */
#ifndef KILN_ONNX_H
#define KILN_ONNX_H

#include "ir/ir.h"

/* Load a ModelProto from a file. The file is mmap'd; raw tensor data and external data
 * are borrowed from mappings recorded in the model (never copied). External data paths
 * are relative to the model's directory and may not escape it. Model-local functions
 * are expanded inline. On error *out is NULL and the error text names what is wrong. */
kiln_status onnx_model_load_file(const char *path, ir_model **out);
/* Same from memory; the buffer is copied into the model (the caller may free it).
 * base_dir may be NULL (then external data is an error). */
kiln_status onnx_model_load_memory(const void *data, size_t size, const char *base_dir,
                                   ir_model **out);

/* Decode one serialized TensorProto (e.g. test_data_set_0/input_0.pb) into an owned tensor.
 * The tensor's name is set from the proto when present. */
kiln_status onnx_tensor_decode(const void *data, size_t size, core_tensor **out);
/* Decode a serialized value whose expected type is `type`: TensorProto for tensors,
 * SequenceProto for sequences, OptionalProto for optionals. type NULL = tensor. */
kiln_status onnx_value_decode(const void *data, size_t size, const ir_type *type,
                              core_value **out);

#endif
