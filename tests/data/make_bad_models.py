#!/usr/bin/env python3
"""Generates the small invalid/edge-case models in tests/data/bad/ used by
tests/unit/test_bad_models.c. Needs the onnx package; outputs are committed."""
import os
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bad")
os.makedirs(here, exist_ok=True)
X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])


def save(name, graph, opset=17):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.save(m, os.path.join(here, name))


# a valid model, for bind-time checks
save("good_relu.onnx", helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu_0")], "g", [X], [Y]))
# cycle: a -> b -> a
save("cycle.onnx", helper.make_graph([
    helper.make_node("Add", ["x", "b"], ["a"], name="add_a"),
    helper.make_node("Relu", ["a"], ["b"], name="relu_b"),
    helper.make_node("Identity", ["a"], ["y"], name="out")], "g", [X], [Y]))
# missing initializer: W used but never defined
save("missing_initializer.onnx", helper.make_graph([
    helper.make_node("MatMul", ["x", "W"], ["y"], name="matmul_0")], "g", [X], [Y]))
# unknown op
save("unknown_op.onnx", helper.make_graph([
    helper.make_node("FrobnicateTensor", ["x"], ["y"], name="frob_0")], "g", [X], [Y]))
# wrong rank for Conv weight (3 dims)
W = numpy_helper.from_array(np.ones((4, 3, 3), np.float32), "W")
save("conv_bad_weight.onnx", helper.make_graph([
    helper.make_node("Conv", ["x4", "W"], ["y"], name="conv_3")], "g",
    [helper.make_tensor_value_info("x4", TensorProto.FLOAT, [1, 3, 8, 8])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [W]))
# Gather with an out-of-range constant index
idx = numpy_helper.from_array(np.array([5], np.int64), "idx")
save("gather_out_of_range.onnx", helper.make_graph([
    helper.make_node("Gather", ["x", "idx"], ["y"], name="gather_0", axis=0)], "g",
    [X], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [idx]))
# external data escaping the model directory
t = onnx.TensorProto(); t.name = "W"; t.data_type = TensorProto.FLOAT; t.dims.extend([2, 3])
t.data_location = TensorProto.EXTERNAL
for k, v in (("location", "../../../etc/passwd"), ("offset", "0"), ("length", "24")):
    e = t.external_data.add(); e.key = k; e.value = v
save("external_escape.onnx", helper.make_graph([
    helper.make_node("Add", ["x", "W"], ["y"], name="add_0")], "g", [X], [Y], [t]))
# raw_data of the wrong size
bad = onnx.TensorProto(); bad.name = "W"; bad.data_type = TensorProto.FLOAT; bad.dims.extend([2, 3])
bad.raw_data = b"\0" * 7
save("raw_size_mismatch.onnx", helper.make_graph([
    helper.make_node("Add", ["x", "W"], ["y"], name="add_0")], "g", [X], [Y], [bad]))
# Reshape to an incompatible constant shape (fails at run time)
shp = numpy_helper.from_array(np.array([4, 4], np.int64), "shp")
save("reshape_bad.onnx", helper.make_graph([
    helper.make_node("Reshape", ["x", "shp"], ["y"], name="reshape_0")], "g",
    [X], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [shp]))
print("wrote", sorted(os.listdir(here)))

# --- models for tests/unit/test_fold.c (not bad: shape folding and inference) ---
import numpy as _np
data_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)))
Xs = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4])
nodes = [
    helper.make_node("Relu", ["x"], ["r"], name="relu"),
    helper.make_node("Shape", ["r"], ["s"], name="shape"),
    helper.make_node("Gather", ["s", "i0"], ["d0"], name="gather", axis=0),
    helper.make_node("Unsqueeze", ["d0", "ax0"], ["d0u"], name="unsq"),
    helper.make_node("Concat", ["d0u", "m1"], ["newshape"], name="concat", axis=0),
    helper.make_node("Reshape", ["r", "newshape"], ["y"], name="reshape"),
]
inits = [numpy_helper.from_array(_np.array(0, _np.int64), "i0"),
         numpy_helper.from_array(_np.array([0], _np.int64), "ax0"),
         numpy_helper.from_array(_np.array([-1], _np.int64), "m1")]
m = helper.make_model(helper.make_graph(nodes, "fold", [Xs], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits),
                      opset_imports=[helper.make_opsetid("", 17)])
m.ir_version = 8
onnx.save(m, os.path.join(data_dir, "fold_shape_chain.onnx"))
# symbolic batch: inference must carry "N" through Conv/Relu/Flatten/Gemm
Xn = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])
W = numpy_helper.from_array(_np.ones((4, 3, 3, 3), _np.float32), "W")
G = numpy_helper.from_array(_np.ones((10, 144), _np.float32), "G")
nodes = [helper.make_node("Conv", ["x", "W"], ["c"], name="conv", pads=[0, 0, 0, 0]),
         helper.make_node("Relu", ["c"], ["r"], name="relu"),
         helper.make_node("Flatten", ["r"], ["f"], name="flat"),
         helper.make_node("Gemm", ["f", "G"], ["y"], name="gemm", transB=1)]
m = helper.make_model(helper.make_graph(nodes, "sym", [Xn], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [W, G]),
                      opset_imports=[helper.make_opsetid("", 17)])
m.ir_version = 8
onnx.save(m, os.path.join(data_dir, "symbolic_batch.onnx"))
