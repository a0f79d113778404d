/* fuzz_onnx.c — libFuzzer target for the ONNX decoder: the same bytes as a ModelProto, a
 * TensorProto, a SequenceProto and an OptionalProto. Any crash, leak or UB is a bug. */
#include "onnx/onnx.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ir_model *m = NULL;
    if (onnx_model_load_memory(data, size, NULL, &m) == KILN_OK)
        ir_model_destroy(m);

    core_tensor *t = NULL;
    if (onnx_tensor_decode(data, size, &t) == KILN_OK)
        core_tensor_destroy(t);

    ir_type elem, seq, opt;
    memset(&elem, 0, sizeof elem);
    elem.kind = IR_TYPE_TENSOR;
    elem.ndim = -1;
    seq = elem;
    seq.kind = IR_TYPE_SEQUENCE;
    seq.elem = &elem;
    opt = elem;
    opt.kind = IR_TYPE_OPTIONAL;
    opt.elem = &seq;
    core_value *v = NULL;
    if (onnx_value_decode(data, size, &seq, &v) == KILN_OK)
        core_value_release(v);
    v = NULL;
    if (onnx_value_decode(data, size, &opt, &v) == KILN_OK)
        core_value_release(v);
    return 0;
}
