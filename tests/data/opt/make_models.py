#!/usr/bin/env python3
"""Writes the small models of tests/unit/test_opt_passes.c (one per optimizer pass) into
this directory. Deterministic (numpy seed 0). Usage: python3 tests/data/opt/make_models.py"""
import os
import numpy as np
import onnx
from onnx import helper as h, numpy_helper as nh, TensorProto as TP

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(0)


def w(name, *shape, scale=0.5):
    return nh.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def c(name, arr, dtype=np.float32):
    return nh.from_array(np.asarray(arr, dtype=dtype), name)


def vi(name, shape, dt=TP.FLOAT):
    return h.make_tensor_value_info(name, dt, shape)


def save(fname, nodes, inputs, outputs, inits, opset=17):
    g = h.make_graph(nodes, fname.replace('.onnx', ''), inputs, outputs, inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid('', opset)], producer_name='kiln-tests')
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, os.path.join(HERE, fname))


# eliminate_noop + eliminate_dead: a chain of no-ops around one Relu; a dead branch; an
# Identity from a graph input to a graph output (must stay).
save('noop.onnx', [
    h.make_node('Identity', ['x'], ['a']),
    h.make_node('Dropout', ['a'], ['b']),
    h.make_node('Cast', ['b'], ['c'], to=TP.FLOAT),
    h.make_node('Reshape', ['c', 'shape'], ['d']),
    h.make_node('Pad', ['d', 'pads'], ['e'], mode='constant'),
    h.make_node('Expand', ['e', 'eshape'], ['f']),
    h.make_node('Transpose', ['f'], ['g'], perm=[0, 1, 2]),
    h.make_node('Slice', ['g', 'starts', 'ends'], ['h']),
    h.make_node('Unsqueeze', ['h', 'ax0'], ['i']),
    h.make_node('Squeeze', ['i', 'ax0'], ['j']),
    h.make_node('Relu', ['j'], ['k']),
    h.make_node('Identity', ['k'], ['y']),
    h.make_node('Exp', ['x'], ['dead1']),
    h.make_node('Neg', ['dead1'], ['dead2']),
    h.make_node('Identity', ['x'], ['y2']),
], [vi('x', [2, 3, 4])], [vi('y', [2, 3, 4]), vi('y2', [2, 3, 4])], [
    c('shape', [2, 3, 4], np.int64), c('pads', [0] * 6, np.int64), c('eshape', [3, 1], np.int64),
    c('starts', [0, 0], np.int64), c('ends', [2, 100], np.int64), c('ax0', [0], np.int64)])

# fold_batchnorm: Conv -> BN -> Relu -> ConvTranspose (grouped) -> BN; Gemm -> BN.
def bn(prefix, ch):
    return [c(prefix + '_s', rng.uniform(0.5, 1.5, ch)), c(prefix + '_b', rng.standard_normal(ch)),
            c(prefix + '_m', rng.standard_normal(ch) * 0.3), c(prefix + '_v', rng.uniform(0.5, 2.0, ch))]

save('bn_fold.onnx', [
    h.make_node('Conv', ['x', 'w1', 'b1'], ['c1'], pads=[1, 1, 1, 1]),
    h.make_node('BatchNormalization', ['c1', 'n1_s', 'n1_b', 'n1_m', 'n1_v'], ['n1'], epsilon=1e-3),
    h.make_node('Relu', ['n1'], ['r1']),
    h.make_node('ConvTranspose', ['r1', 'w2'], ['c2'], group=2, strides=[2, 2]),
    h.make_node('BatchNormalization', ['c2', 'n2_s', 'n2_b', 'n2_m', 'n2_v'], ['y']),
    h.make_node('Gemm', ['g', 'gw', 'gb'], ['gg'], transB=1, alpha=0.7, beta=0.5),
    h.make_node('BatchNormalization', ['gg', 'n3_s', 'n3_b', 'n3_m', 'n3_v'], ['y2']),
], [vi('x', [1, 3, 6, 6]), vi('g', [3, 5])], [vi('y', [1, 6, 12, 12]), vi('y2', [3, 4])],
    [w('w1', 4, 3, 3, 3), w('b1', 4), w('w2', 4, 3, 2, 2), w('gw', 4, 5), w('gb', 4)] + bn('n1', 4) + bn('n2', 6) + bn('n3', 4))

# fuse_conv_act: every activation form after a Conv, plus a residual.
conv_nodes, inits = [], []
acts = ['relu', 'clip', 'leaky', 'sigmoid', 'silu', 'hswish', 'resid', 'gelu']
prev = 'x'
for k, a in enumerate(acts):
    inits += [w('w%d' % k, 4, 4, 3, 3, scale=0.3), w('b%d' % k, 4)]
    conv_nodes.append(h.make_node('Conv', [prev, 'w%d' % k, 'b%d' % k], ['c%d' % k], pads=[1, 1, 1, 1]))
    ci, out = 'c%d' % k, 'a%d' % k
    if a == 'relu':
        conv_nodes.append(h.make_node('Relu', [ci], [out]))
    elif a == 'clip':
        conv_nodes.append(h.make_node('Clip', [ci, 'zero', 'six'], [out]))
    elif a == 'leaky':
        conv_nodes.append(h.make_node('LeakyRelu', [ci], [out], alpha=0.2))
    elif a == 'sigmoid':
        conv_nodes.append(h.make_node('Sigmoid', [ci], [out]))
    elif a == 'silu':
        conv_nodes += [h.make_node('Sigmoid', [ci], [ci + 's']), h.make_node('Mul', [ci, ci + 's'], [out])]
    elif a == 'hswish':
        conv_nodes += [h.make_node('HardSigmoid', [ci], [ci + 's'], alpha=1.0 / 6, beta=0.5),
                       h.make_node('Mul', [ci + 's', ci], [out])]
    elif a == 'resid':
        conv_nodes += [h.make_node('Add', ['a0', ci], [ci + 'r']), h.make_node('Relu', [ci + 'r'], [out])]
    elif a == 'gelu':  # x * 0.5 first, then * (1 + erf(x * 1/sqrt2))
        conv_nodes += [h.make_node('Mul', [ci, 'half'], [ci + 'h']), h.make_node('Mul', [ci, 'isq2'], [ci + 'd']),
                       h.make_node('Erf', [ci + 'd'], [ci + 'e']), h.make_node('Add', [ci + 'e', 'one'], [ci + 'p']),
                       h.make_node('Mul', [ci + 'h', ci + 'p'], [out])]
    prev = out
conv_nodes.append(h.make_node('Identity', [prev], ['y']))
save('conv_act.onnx', conv_nodes, [vi('x', [1, 4, 5, 5])], [vi('y', [1, 4, 5, 5])],
     inits + [c('zero', 0.0), c('six', 6.0), c('half', 0.5), c('isq2', 1 / np.sqrt(2)), c('one', 1.0)])

# fuse_conv_act on Gemm / MatMul: Gemm+Relu; MatMul+bias+erf GELU (BERT order);
# MatMul+bias+tanh GELU; MatMul+bias.
save('matmul_act.onnx', [
    h.make_node('Gemm', ['a', 'gw', 'gb'], ['g0'], transB=1),
    h.make_node('Relu', ['g0'], ['y1']),
    h.make_node('MatMul', ['x', 'm1'], ['x1']),
    h.make_node('Add', ['mb1', 'x1'], ['x2']),
    h.make_node('Div', ['x2', 'sq2'], ['x3']), h.make_node('Erf', ['x3'], ['x4']),
    h.make_node('Add', ['x4', 'one'], ['x5']), h.make_node('Mul', ['x2', 'x5'], ['x6']),
    h.make_node('Mul', ['x6', 'half'], ['x7']),
    h.make_node('MatMul', ['x7', 'm2'], ['t1']),
    h.make_node('Add', ['t1', 'mb2'], ['t2']),
    h.make_node('Pow', ['t2', 'three'], ['t3']), h.make_node('Mul', ['t3', 'k044'], ['t4']),
    h.make_node('Add', ['t2', 't4'], ['t5']), h.make_node('Mul', ['t5', 'ks2p'], ['t6']),
    h.make_node('Tanh', ['t6'], ['t7']), h.make_node('Add', ['t7', 'one'], ['t8']),
    h.make_node('Mul', ['t2', 't8'], ['t9']), h.make_node('Mul', ['t9', 'half'], ['t10']),
    h.make_node('MatMul', ['t10', 'm3'], ['u1']),
    h.make_node('Add', ['u1', 'mb3'], ['y2']),
], [vi('a', [3, 6]), vi('x', [2, 3, 8])], [vi('y1', [3, 4]), vi('y2', [2, 3, 5])],
    [w('gw', 4, 6), w('gb', 4), w('m1', 8, 16), w('mb1', 16), w('m2', 16, 12), c('mb2', rng.standard_normal((1, 12)) * 0.5),
     w('m3', 12, 5), w('mb3', 5), c('sq2', np.sqrt(2)), c('one', 1.0), c('half', 0.5), c('three', 3.0),
     c('k044', 0.044715), c('ks2p', np.sqrt(2 / np.pi))])

# fuse_elementwise: scalar-constant binaries and unaries, and a SiLU pattern, in one chain.
save('elementwise.onnx', [
    h.make_node('Mul', ['x', 'two'], ['e1']), h.make_node('Add', ['e1', 'one'], ['e2']),
    h.make_node('Sub', ['half1', 'e2'], ['e3']), h.make_node('Tanh', ['e3'], ['e4']),
    h.make_node('Sigmoid', ['e4'], ['e5']), h.make_node('Mul', ['e4', 'e5'], ['e6']),
    h.make_node('Abs', ['e6'], ['e7']), h.make_node('Sqrt', ['e7'], ['e8']),
    h.make_node('Div', ['e8', 'three'], ['e9']), h.make_node('Neg', ['e9'], ['y']),
], [vi('x', [2, 3, 7])], [vi('y', [2, 3, 7])],
    [c('two', 2.0), c('one', 1.0), c('half1', [0.5]), c('three', [[[3.0]]])])

# merge_sibling_convs: three 1x1 Convs (4, 6, 2 channels) on x, one without bias, each
# followed by Relu (fused first: siblings must agree on their activation).
save('siblings.onnx', [
    h.make_node('Conv', ['x', 's1', 'sb1'], ['p1']), h.make_node('Conv', ['x', 's2'], ['p2']),
    h.make_node('Conv', ['x', 's3', 'sb3'], ['p3']),
    h.make_node('Relu', ['p1'], ['q1']), h.make_node('Relu', ['p2'], ['q2']), h.make_node('Relu', ['p3'], ['q3']),
    h.make_node('Concat', ['q1', 'q2', 'q3'], ['y'], axis=1),
], [vi('x', [1, 8, 5, 5])], [vi('y', [1, 12, 5, 5])],
    [w('s1', 4, 8, 1, 1), w('sb1', 4), w('s2', 6, 8, 1, 1), w('s3', 2, 8, 1, 1), w('sb3', 2)])

# elide_concat: a channel Concat of two Conv outputs at batch 1 (marked) and a Concat at
# batch 2 along axis 1 (not contiguous: not marked).
save('concat.onnx', [
    h.make_node('Conv', ['x', 'k1'], ['v1'], pads=[1, 1, 1, 1]),
    h.make_node('Conv', ['x', 'k2'], ['v2'], pads=[2, 2, 2, 2]),
    h.make_node('Concat', ['v1', 'v2'], ['y'], axis=1),
    h.make_node('Exp', ['z'], ['z1']), h.make_node('Neg', ['z'], ['z2']),
    h.make_node('Concat', ['z1', 'z2'], ['y2'], axis=1),
], [vi('x', [1, 3, 6, 6]), vi('z', [2, 3])], [vi('y', [1, 7, 6, 6]), vi('y2', [2, 6])],
    [w('k1', 4, 3, 3, 3), w('k2', 3, 3, 5, 5)])

# cancel_transpose_reshape: T.T = identity; T.T composed; Reshape.Reshape merged.
save('transpose.onnx', [
    h.make_node('Transpose', ['x'], ['t1'], perm=[1, 0, 2]),
    h.make_node('Transpose', ['t1'], ['t2'], perm=[1, 0, 2]),
    h.make_node('Relu', ['t2'], ['r']),
    h.make_node('Transpose', ['r'], ['t3'], perm=[2, 0, 1]),
    h.make_node('Transpose', ['t3'], ['t4'], perm=[0, 2, 1]),
    h.make_node('Reshape', ['t4', 's1'], ['r1']),
    h.make_node('Reshape', ['r1', 's2'], ['y']),
], [vi('x', [2, 3, 4])], [vi('y', [3, 8])], [c('s1', [4, 6], np.int64), c('s2', [3, -1], np.int64)])

# fuse_layernorm: the written-out LayerNorm, at opset 17 (-> LayerNormalization) and 13
# (-> ai.kiln LayerNormalization).
def ln_nodes():
    return [
        h.make_node('ReduceMean', ['x'], ['m'], axes=[-1]),
        h.make_node('Sub', ['x', 'm'], ['d']),
        h.make_node('Pow', ['d', 'two'], ['d2']),
        h.make_node('ReduceMean', ['d2'], ['v'], axes=[-1]),
        h.make_node('Add', ['v', 'eps'], ['ve']),
        h.make_node('Sqrt', ['ve'], ['sd']),
        h.make_node('Div', ['d', 'sd'], ['n']),
        h.make_node('Mul', ['n', 'gamma'], ['ng']),
        h.make_node('Add', ['ng', 'beta'], ['y']),
    ]
for op, fname in ((17, 'layernorm.onnx'), (13, 'layernorm_op13.onnx')):
    save(fname, ln_nodes(), [vi('x', [2, 5, 16])], [vi('y', [2, 5, 16])],
         [c('two', 2.0), c('eps', 1e-5), w('gamma', 16), w('beta', 16)], opset=op)

# fuse_attention: BERT form (K^T by Transpose, Div scale, additive mask) and ViT form
# (pre-scaled Q, K^T from a [S, B, D] tensor).
save('attention.onnx', [
    h.make_node('Transpose', ['k'], ['kt'], perm=[0, 1, 3, 2]),
    h.make_node('MatMul', ['q', 'kt'], ['s']),
    h.make_node('Div', ['s', 'scale'], ['s2']),
    h.make_node('Add', ['s2', 'mask'], ['s3']),
    h.make_node('Softmax', ['s3'], ['p'], axis=-1),
    h.make_node('MatMul', ['p', 'v'], ['y']),
    h.make_node('Mul', ['q2', 'qs'], ['q2s']),
    h.make_node('Transpose', ['k2'], ['k2t'], perm=[1, 2, 0]),
    h.make_node('MatMul', ['q2s', 'k2t'], ['w']),
    h.make_node('Softmax', ['w'], ['wp']),
    h.make_node('MatMul', ['wp', 'v2'], ['y2']),
], [vi('q', [2, 2, 5, 4]), vi('k', [2, 2, 5, 4]), vi('v', [2, 2, 5, 3]), vi('mask', [2, 1, 1, 5]),
    vi('q2', [4, 6, 8]), vi('k2', [7, 4, 8]), vi('v2', [4, 7, 8])],
    [vi('y', [2, 2, 5, 3]), vi('y2', [4, 6, 8])], [c('scale', 2.0), c('qs', 0.35)])

# layout_nhwc: a region with every kind of node the pass converts (convs incl. depthwise,
# pooling, residual Add, per-channel constant Mul, squeeze-excitation Mul, Resize, Concat,
# Split) and edges where it must transpose back (Flatten, graph outputs).
save('layout.onnx', [
    h.make_node('Conv', ['x', 'w1', 'b1'], ['c1'], pads=[1, 1, 1, 1]),
    h.make_node('Relu', ['c1'], ['r1']),
    h.make_node('MaxPool', ['r1'], ['p1'], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    h.make_node('Conv', ['p1', 'w2'], ['c2']),
    h.make_node('Add', ['c2', 'p1'], ['a']),
    h.make_node('Mul', ['a', 'chs'], ['m']),
    h.make_node('Conv', ['m', 'w3'], ['dw'], group=8, pads=[1, 1, 1, 1], strides=[2, 2]),
    h.make_node('Sigmoid', ['dw'], ['s']),
    h.make_node('GlobalAveragePool', ['s'], ['g']),
    h.make_node('Mul', ['s', 'g'], ['se']),
    h.make_node('Resize', ['se', '', 'scales'], ['up'], mode='nearest'),
    h.make_node('Conv', ['up', 'w4'], ['c4']),
    h.make_node('Concat', ['up', 'c4'], ['cat'], axis=1),
    h.make_node('AveragePool', ['cat'], ['ap'], kernel_shape=[2, 2], strides=[2, 2]),
    h.make_node('Flatten', ['ap'], ['y1']),
    h.make_node('Split', ['cat', 'split'], ['sp1', 'sp2'], axis=1),
    h.make_node('Add', ['sp1', 'sp2'], ['y3']),
], [vi('x', [2, 5, 9, 11])], [vi('y1', [2, 108]), vi('cat', [2, 12, 6, 6]), vi('y3', [2, 6, 6, 6])], [
    w('w1', 8, 5, 3, 3), w('b1', 8), w('w2', 8, 8, 1, 1), c('chs', rng.uniform(0.5, 1.5, (8, 1, 1))),
    w('w3', 8, 1, 3, 3), c('scales', [1, 1, 2, 2]), w('w4', 4, 8, 1, 1), c('split', [6, 6], np.int64)])


# hoist_activation + cancel_transpose_reshape after layout_nhwc + Concat elision through
# zero-copy Reshapes: a two-level YOLOv5-style detection head. Each level: Conv ->
# Reshape [1,3,6,H,W] -> Transpose [1,3,H,W,6] -> Sigmoid (hoisted into the Conv), Slices of
# the last axis combined and concatenated back, flattened to [1, 3HW, 6]; the levels are
# concatenated on axis 1.
def head_level(i, hw):
    p = f'l{i}_'
    return [
        h.make_node('Conv', ['x' if i == 0 else 'xd', f'hw{i}', f'hb{i}'], [p + 'c']),
        h.make_node('Reshape', [p + 'c', f'hs{i}'], [p + 'r']),
        h.make_node('Transpose', [p + 'r'], [p + 't'], perm=[0, 1, 3, 4, 2]),
        h.make_node('Sigmoid', [p + 't'], [p + 's']),
        h.make_node('Slice', [p + 's', 'z0', 'z2', 'ax'], [p + 'xy0']),
        h.make_node('Mul', [p + 'xy0', 'two'], [p + 'xy']),
        h.make_node('Slice', [p + 's', 'z2', 'z4', 'ax'], [p + 'wh0']),
        h.make_node('Pow', [p + 'wh0', 'two'], [p + 'wh']),
        h.make_node('Slice', [p + 's', 'z4', 'z6', 'ax'], [p + 'cf']),
        h.make_node('Concat', [p + 'xy', p + 'wh', p + 'cf'], [p + 'cat'], axis=-1),
        h.make_node('Reshape', [p + 'cat', 'flat'], [p + 'o']),
    ]

save('yolo_head.onnx', head_level(0, 6) + [h.make_node('MaxPool', ['x'], ['xd'], kernel_shape=[2, 2], strides=[2, 2])]
     + head_level(1, 3) + [h.make_node('Concat', ['l0_o', 'l1_o'], ['y'], axis=1)],
     [vi('x', [1, 8, 6, 6])], [vi('y', [1, 135, 6])],
     [w('hw0', 18, 8, 1, 1), w('hb0', 18), w('hw1', 18, 8, 1, 1), w('hb1', 18),
      c('hs0', [1, 3, 6, 6, 6], np.int64), c('hs1', [1, 3, 6, 3, 3], np.int64), c('flat', [1, -1, 6], np.int64),
      c('z0', [0], np.int64), c('z2', [2], np.int64), c('z4', [4], np.int64), c('z6', [6], np.int64),
      c('ax', [4], np.int64), c('two', 2.0)])

# type inference through a long chain of Splits (only infer_extra.c types Split; a YOLOv5
# backbone has 8 in a row): every value must end up with a static shape.
chain, prev = [], 'x'
for i in range(12):
    chain += [h.make_node('Conv', [prev, 'sw'], [f'sc{i}']),
              h.make_node('Split', [f'sc{i}', 'ss'], [f'sa{i}', f'sb{i}'], axis=1),
              h.make_node('Add', [f'sa{i}', f'sb{i}'], [f'sx{i}'])]
    prev = f'sx{i}'
chain.append(h.make_node('Relu', [prev], ['y']))
save('split_chain.onnx', chain, [vi('x', [1, 4, 5, 5])], [vi('y', [1, 4, 5, 5])],
     [w('sw', 8, 4, 1, 1), c('ss', [4, 4], np.int64)])

# fuse_expand_dw (after layout_nhwc): two inverted-residual blocks. Block 1: 1x1 expand 6 ->
# 30 + Clip(0, 6), depthwise 3x3 stride 2 + Clip, 1x1 project. Block 2: 1x1 expand with SiLU
# written as x * Sigmoid(x), depthwise 5x5 stride 1 (pads 2) without activation, project,
# residual Add. Plus a 1x1 whose output a depthwise conv and a Relu both read: not fused;
# then a depthwise stride 2 + Relu -> projection pair without expansion (reading a graph
# output); then expand -> depthwise 5x3 read by a squeeze-excitation-like Mul and its
# GlobalAveragePool (ConvNhwcExpandDw, no projection).
save('mbconv.onnx', [
    h.make_node('Conv', ['x', 'e1', 'eb1'], ['t1']),
    h.make_node('Clip', ['t1', 'lo', 'hi'], ['t1a']),
    h.make_node('Conv', ['t1a', 'd1', 'db1'], ['u1'], group=30, strides=[2, 2], pads=[1, 1, 1, 1]),
    h.make_node('Clip', ['u1', 'lo', 'hi'], ['u1a']),
    h.make_node('Conv', ['u1a', 'p1'], ['v1']),
    h.make_node('Conv', ['v1', 'e2', 'eb2'], ['t2']),
    h.make_node('Sigmoid', ['t2'], ['t2s']),
    h.make_node('Mul', ['t2', 't2s'], ['t2a']),
    h.make_node('Conv', ['t2a', 'd2'], ['u2'], group=42, pads=[2, 2, 2, 2]),
    h.make_node('Conv', ['u2', 'p2'], ['v2']),
    h.make_node('Add', ['v2', 'v1'], ['v3']),
    h.make_node('Conv', ['v3', 'e3'], ['t3']),
    h.make_node('Conv', ['t3', 'd3'], ['u3'], group=21, pads=[1, 1, 1, 1]),
    h.make_node('Relu', ['t3'], ['r3']),
    h.make_node('Add', ['u3', 'r3'], ['y']),
    h.make_node('Conv', ['y', 'd4'], ['u4'], group=21, pads=[1, 1, 1, 1], strides=[2, 2]),
    h.make_node('Relu', ['u4'], ['u4a']),
    h.make_node('Conv', ['u4a', 'p4'], ['y2']),
    h.make_node('Conv', ['y2', 'e5'], ['t5']),
    h.make_node('Relu', ['t5'], ['t5a']),
    h.make_node('Conv', ['t5a', 'd5'], ['u5'], group=20, pads=[2, 1, 2, 1], kernel_shape=[5, 3]),
    h.make_node('GlobalAveragePool', ['u5'], ['g5']),
    h.make_node('Mul', ['u5', 'g5'], ['y3']),
], [vi('x', [2, 6, 13, 11])], [vi('y', [2, 21, 7, 6]), vi('y2', [2, 5, 4, 3]), vi('y3', [2, 20, 4, 3])],
    # weights ~ 1/sqrt(fan-in) keep activations near 1, so float32 rounding stays far below
    # the test's 1e-5 relative tolerance
    [w('e1', 30, 6, 1, 1, scale=0.4), w('eb1', 30), w('d1', 30, 1, 3, 3, scale=0.33), w('db1', 30),
     w('p1', 7, 30, 1, 1, scale=0.18), w('e2', 42, 7, 1, 1, scale=0.38), w('eb2', 42),
     w('d2', 42, 1, 5, 5, scale=0.2), w('p2', 7, 42, 1, 1, scale=0.15), w('e3', 21, 7, 1, 1, scale=0.38),
     w('d3', 21, 1, 3, 3, scale=0.33), w('d4', 21, 1, 3, 3, scale=0.33), w('p4', 5, 21, 1, 1, scale=0.2),
     w('e5', 20, 5, 1, 1, scale=0.45), w('d5', 20, 1, 5, 3, scale=0.25),
     c('lo', 0.0), c('hi', 6.0)])

# fuse_csp_nhwc (after merge_sibling_convs and layout_nhwc): a YOLOv5 C3 block with two
# shortcut bottlenecks, then a C3 without shortcut. cv1 / cv2 (1x1 siblings, SiLU) merge into
# one conv + Split; the rewrite keeps both halves in the merged conv's buffer.
def silu_conv(p, x, wname, y, **kw):
    return [h.make_node('Conv', [x, wname], [p + 'c'], **kw), h.make_node('Sigmoid', [p + 'c'], [p + 's']),
            h.make_node('Mul', [p + 'c', p + 's'], [y])]

def c3(p, x, y, n, shortcut):
    nodes = silu_conv(p + 'cv1', x, p + 'w1', p + 'a0') + silu_conv(p + 'cv2', x, p + 'w2', p + 'b')
    cur = p + 'a0'
    for i in range(n):
        q = f'{p}m{i}'
        nodes += silu_conv(q + 'x', cur, p + f'mw{i}a', q + 't') + silu_conv(q + 'y', q + 't', p + f'mw{i}b', q + 'u', pads=[1, 1, 1, 1])
        if shortcut:
            nodes.append(h.make_node('Add', [cur, q + 'u'], [q + 'o']))
            cur = q + 'o'
        else:
            cur = q + 'u'
    nodes.append(h.make_node('Concat', [cur, p + 'b'], [p + 'cat'], axis=1))
    nodes += silu_conv(p + 'cv3', p + 'cat', p + 'w3', y)
    return nodes

def c3_weights(p, cin, c, n, cout):
    ws = [w(p + 'w1', c, cin, 1, 1, scale=0.5), w(p + 'w2', c, cin, 1, 1, scale=0.5), w(p + 'w3', cout, 2 * c, 1, 1, scale=0.4)]
    for i in range(n):
        ws += [w(p + f'mw{i}a', c, c, 1, 1, scale=0.5), w(p + f'mw{i}b', c, c, 3, 3, scale=0.2)]
    return ws

save('csp.onnx', c3('A', 'x', 'h', 2, True) + c3('B', 'h', 'y', 1, False),
     [vi('x', [1, 8, 9, 7])], [vi('y', [1, 12, 9, 7])], c3_weights('A', 8, 6, 2, 10) + c3_weights('B', 10, 5, 1, 12))

# Hostile ai.kiln nodes (written by hand, loaded with the optimizer off): each must fail with
# an error naming the problem, under the fast and the reference kernels, never crash.
def save_kiln(fname, nodes, inputs, outputs, inits):
    g = h.make_graph(nodes, fname.replace('.onnx', ''), inputs, outputs, inits)
    m = h.make_model(g, opset_imports=[h.make_opsetid('', 17), h.make_opsetid('ai.kiln', 1)],
                     producer_name='kiln-tests')
    m.ir_version = 8
    onnx.save(m, os.path.join(HERE, fname))

K = 'ai.kiln'
hostile = {
    # update wider than X's channels
    'bad_cu_range.onnx': [h.make_node('ChannelUpdate', ['x', 'p8'], ['y'], domain=K, offset=3, mode='set')],
    # update with other leading dims
    'bad_cu_dims.onnx': [h.make_node('ChannelUpdate', ['x', 'q'], ['y'], domain=K, offsets=[0], mode='add')],
    # unknown mode
    'bad_cu_mode.onnx': [h.make_node('ChannelUpdate', ['x', 'p4'], ['y'], domain=K, offset=0, mode='mul')],
    # conv reading a channel slice past X's channels
    'bad_xoff.onnx': [h.make_node('ConvNhwc', ['x', 'w4'], ['y'], domain=K, x_channel_offset=6)],
    # block whose projection takes the wrong channel count
    'bad_mbconv.onnx': [h.make_node('ConvNhwcMbConv', ['x', 'dw', '', '', 'e1', '', 'w4'], ['y'], domain=K,
                                    group=16, pads=[1, 1, 1, 1])],
    # expansion weight that is not 1x1
    'bad_expand.onnx': [h.make_node('ConvNhwcExpandDw', ['x', 'dw', '', '', 'w4'], ['y'], domain=K,
                                    group=16, pads=[1, 1, 1, 1])],
}
for fname, nodes in hostile.items():
    save_kiln(fname, nodes, [vi('x', [1, 5, 5, 8])], [vi('y', None)],
              [w('p8', 1, 5, 5, 8), w('p4', 1, 5, 5, 4), w('q', 1, 4, 5, 2), w('w4', 4, 4, 3, 3),
               w('dw', 16, 1, 3, 3), w('e1', 16, 8, 1, 1)])

print('wrote', sorted(f for f in os.listdir(HERE) if f.endswith('.onnx')))
