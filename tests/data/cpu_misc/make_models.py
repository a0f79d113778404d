#!/usr/bin/env python3
"""Writes the single-node models of tests/unit/test_cpu_misc.c (fast CPU kernels against the
reference kernels) into this directory, and cases.txt: one line per test case,
    MODEL TOL INPUT...
TOL is the relative tolerance ("0" = equal values; a trailing "a" adds TOL * max|ref| as an
absolute allowance, for kernels that sum in a different order than the reference); each INPUT binds the next graph input:
    f:DIMS       random floats in [-4, 4]        p:DIMS   random floats in [0.1, 4]
    b:DIMS       random bools                    i:V,V..  1-D int64 values
    k:V          float scalar (rank 0)           e:DIMS   random floats with specials
    n:DIMS       specials without NaN (pooling leaves NaN order unspecified)
DIMS is like 2x3x7x7 ("-" = rank 0; a 0 makes the tensor empty). Inputs are dynamic (no
declared shape), so one model serves many shapes. Usage: python3 tests/data/cpu_misc/make_models.py"""
import os
import numpy as np
import onnx
from onnx import helper as h, numpy_helper as nh, TensorProto as TP

HERE = os.path.dirname(os.path.abspath(__file__))
cases = []


def vin(name, dt=TP.FLOAT):
    return h.make_tensor_value_info(name, dt, None)


def save(fname, node, inputs, n_out=1, opset=17, inits=(), out_dt=TP.FLOAT, domain_opsets=()):
    outs = [h.make_tensor_value_info('y%d' % i if n_out > 1 else 'y', out_dt, None) for i in range(n_out)]
    g = h.make_graph([node], fname.replace('.onnx', ''), inputs, outs, list(inits))
    ops = [h.make_opsetid('', opset)] + [h.make_opsetid(d, v) for d, v in domain_opsets]
    m = h.make_model(g, opset_imports=ops, producer_name='kiln-tests')
    m.ir_version = 8
    # no onnx.checker: it wants declared shapes, and these inputs are deliberately rank-free
    onnx.save(m, os.path.join(HERE, fname))


def case(model, tol, *inputs):
    cases.append(' '.join([model, tol] + list(inputs)))


# ---- pooling ----------------------------------------------------------------------------------
POOL_SHAPES = ['1x1x1x1', '1x2x7x7', '2x3x8x8', '1x2x15x17', '1x3x16x16', '1x1x33x100', '1x4x20x20',
               '2x1x7x100', '1x8x56x56']
pools = [
    ('mp_k3s2p1', 'MaxPool', dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ('mp_k5s1p2', 'MaxPool', dict(kernel_shape=[5, 5], strides=[1, 1], pads=[2, 2, 2, 2])),
    ('mp_k2s2', 'MaxPool', dict(kernel_shape=[2, 2], strides=[2, 2])),
    ('mp_k3s1', 'MaxPool', dict(kernel_shape=[3, 3])),
    ('mp_k3s2_ceil', 'MaxPool', dict(kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)),
    ('mp_k3s2p1_ceil', 'MaxPool', dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)),
    ('mp_k3d2', 'MaxPool', dict(kernel_shape=[3, 3], dilations=[2, 2], pads=[2, 1, 2, 1])),
    ('mp_k2x3_asym', 'MaxPool', dict(kernel_shape=[2, 3], strides=[1, 2], pads=[0, 1, 1, 0])),
    ('mp_same_upper', 'MaxPool', dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad='SAME_UPPER')),
    ('mp_same_lower', 'MaxPool', dict(kernel_shape=[4, 4], strides=[3, 3], auto_pad='SAME_LOWER')),
    ('mp_k7s3p3', 'MaxPool', dict(kernel_shape=[7, 7], strides=[3, 3], pads=[3, 3, 3, 3])),
    ('mp_k1s2', 'MaxPool', dict(kernel_shape=[1, 1], strides=[2, 2])),
    ('mp_s3x1', 'MaxPool', dict(kernel_shape=[2, 2], strides=[3, 1], pads=[1, 0, 0, 1])),
    ('ap_k3s2p1', 'AveragePool', dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
    ('ap_k3s2p1_cip', 'AveragePool', dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)),
    ('ap_k2s2', 'AveragePool', dict(kernel_shape=[2, 2], strides=[2, 2])),
    ('ap_k3s1p1_cip_ceil', 'AveragePool', dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1, ceil_mode=1)),
    ('ap_k5s3_ceil', 'AveragePool', dict(kernel_shape=[5, 5], strides=[3, 3], ceil_mode=1)),
    ('ap_k5s3p2_ceil_cip', 'AveragePool', dict(kernel_shape=[5, 5], strides=[3, 3], pads=[2, 2, 2, 2], ceil_mode=1, count_include_pad=1)),
    ('ap_k3d2', 'AveragePool', dict(kernel_shape=[3, 3], dilations=[2, 2], pads=[2, 2, 2, 2])),
    ('ap_same_upper_cip', 'AveragePool', dict(kernel_shape=[3, 3], strides=[2, 2], auto_pad='SAME_UPPER', count_include_pad=1)),
]
for name, op, attrs in pools:
    save(name + '.onnx', h.make_node(op, ['x'], ['y'], **attrs), [vin('x')], opset=19)
    for s in POOL_SHAPES:
        n, cc, hh, ww = map(int, s.split('x'))
        k = attrs['kernel_shape']
        d = attrs.get('dilations', [1, 1])
        p = attrs.get('pads', [0, 0, 0, 0])
        if hh + p[0] + p[2] < (k[0] - 1) * d[0] + 1 or ww + p[1] + p[3] < (k[1] - 1) * d[1] + 1:
            if 'auto_pad' not in attrs:
                continue
        case(name + '.onnx', '0' if op == 'MaxPool' else '1e-6a', 'f:' + s)
    if op == 'MaxPool':
        case(name + '.onnx', '0', 'n:2x3x9x9')
# 1-D pools
save('mp_1d.onnx', h.make_node('MaxPool', ['x'], ['y'], kernel_shape=[3], strides=[2], pads=[1, 1]), [vin('x')], opset=19)
save('ap_1d.onnx', h.make_node('AveragePool', ['x'], ['y'], kernel_shape=[4], strides=[3], pads=[1, 2], count_include_pad=1, ceil_mode=1), [vin('x')], opset=19)
for s in ['1x1x1', '2x3x7', '1x4x100', '1x2x33']:
    case('mp_1d.onnx', '0', 'f:' + s)
    case('ap_1d.onnx', '1e-6a', 'f:' + s)
# MaxPool with Indices (reference path inside the fast kernel)
save('mp_indices.onnx', h.make_node('MaxPool', ['x'], ['y0', 'y1'], kernel_shape=[2, 2], strides=[2, 2]), [vin('x')], opset=19, n_out=2)
case('mp_indices.onnx', '0', 'f:1x2x8x8')
save('gap.onnx', h.make_node('GlobalAveragePool', ['x'], ['y']), [vin('x')])
save('gmp.onnx', h.make_node('GlobalMaxPool', ['x'], ['y']), [vin('x')])
for s in ['1x1x1x1', '1x7x7x7', '2x16x8x8', '1x33x15x17', '1x3x112x112', '2x5x100', '1x3x2x3x4', '0x3x4x4', '1x2']:
    case('gap.onnx', '1e-6a', 'f:' + s)
    case('gmp.onnx', '0', 'f:' + s)
case('gmp.onnx', '0', 'n:2x3x5x5')

# ---- unary elementwise ------------------------------------------------------------------------
SIZES = ['1', '7', '8', '15', '16', '17', '33', '100', '0', '3x5x7', '2x3x40x41', '100000']
unary = [
    ('relu', 'Relu', {}, 17), ('sigmoid', 'Sigmoid', {}, 17), ('tanh', 'Tanh', {}, 17),
    ('erf', 'Erf', {}, 17), ('exp', 'Exp', {}, 17), ('sqrt', 'Sqrt', {}, 17), ('abs', 'Abs', {}, 17),
    ('neg', 'Neg', {}, 17), ('reciprocal', 'Reciprocal', {}, 17), ('floor', 'Floor', {}, 17),
    ('ceil', 'Ceil', {}, 17), ('hardswish', 'HardSwish', {}, 17),
    ('hardsigmoid', 'HardSigmoid', dict(alpha=0.3, beta=0.4), 17),
    ('leakyrelu', 'LeakyRelu', dict(alpha=0.1), 17), ('gelu', 'Gelu', {}, 20),
    ('gelu_tanh', 'Gelu', dict(approximate='tanh'), 20), ('clip6', 'Clip', dict(min=-1.5, max=2.5), 6),
]
for name, op, attrs, opset in unary:
    save('u_' + name + '.onnx', h.make_node(op, ['x'], ['y'], **attrs), [vin('x')], opset=opset)
    tol = '0' if op in ('Relu', 'Abs', 'Neg', 'Floor', 'Ceil', 'Sqrt', 'Reciprocal', 'Clip', 'LeakyRelu') else '1e-6'
    for s in SIZES:
        case('u_' + name + '.onnx', tol, 'f:' + s)
    case('u_' + name + '.onnx', tol, 'e:1000')
save('u_clip.onnx', h.make_node('Clip', ['x', 'lo', 'hi'], ['y']), [vin('x'), vin('lo'), vin('hi')])
for s in SIZES[:9]:
    case('u_clip.onnx', '0', 'f:' + s, 'k:-0.5', 'k:1.25')
case('u_clip.onnx', '0', 'e:100', 'k:0', 'k:6')
case('u_clip.onnx', '0', 'f:100', 'k:2', 'k:1')  # inverted bounds -> reference
save('u_clip_lo.onnx', h.make_node('Clip', ['x', 'lo'], ['y']), [vin('x'), vin('lo')])
case('u_clip_lo.onnx', '0', 'f:37', 'k:0.5')

# ---- binary with broadcasting ---------------------------------------------------------------
BIN_SHAPES = [
    ('17', '17'), ('100', '100'), ('1', '1'), ('0', '0'), ('2x3x40x41', '2x3x40x41'),
    ('33', '-'), ('-', '33'), ('2x3x7x7', '1'), ('1', '2x3x7x7'),
    ('2x16x15x15', '16x1x1'), ('1x16x15x15', '1x16x1x1'), ('1x16x1x1', '2x16x9x9'),
    ('4x7x33', '33'), ('33', '4x7x33'), ('5x100', '1x100'), ('3x1', '1x17'), ('3x1x5', '1x4x1'),
    ('2x3x4x5', '3x1x5'), ('2x1x4x1', '1x3x1x5'), ('6x0x3', '3'), ('128x768', '768'),
    ('1x8x64x64', '1x8x1x64'),
]
for op in ['Add', 'Sub', 'Mul', 'Div']:
    fname = 'b_' + op.lower() + '.onnx'
    save(fname, h.make_node(op, ['a', 'b'], ['y']), [vin('a'), vin('b')])
    for sa, sb in BIN_SHAPES:
        case(fname, '0', 'f:' + sa, 'f:' + sb)
    case(fname, '0', 'e:1000', 'e:1000')
save('b_add6.onnx', h.make_node('Add', ['a', 'b'], ['y'], broadcast=1, axis=1), [vin('a'), vin('b')], opset=6)
case('b_add6.onnx', '0', 'f:2x3x4x5', 'f:3')
save('pow.onnx', h.make_node('Pow', ['a', 'b'], ['y']), [vin('a'), vin('b')])
for k in ['2', '0.5', '1', '3', '-1.5']:
    case('pow.onnx', '1e-6', 'p:2x3x17', 'k:' + k)
    case('pow.onnx', '1e-6', 'e:100', 'k:' + k)
case('pow.onnx', '1e-6', 'p:3x4', 'f:4')
save('where.onnx', h.make_node('Where', ['c', 'a', 'b'], ['y']), [vin('c', TP.BOOL), vin('a'), vin('b')])
for sc, sa, sb in [('100', '100', '100'), ('2x3x4', '2x3x4', '-'), ('1x1x4', '2x3x4', '1'),
                   ('2x1x5', '1x3x1', '2x3x5'), ('17', '3x17', '17'), ('0', '0', '1')]:
    case('where.onnx', '0', 'b:' + sc, 'f:' + sa, 'f:' + sb)
save('where_i64.onnx', h.make_node('Where', ['c', 'a', 'b'], ['y']),
     [vin('c', TP.BOOL), vin('a', TP.INT64), vin('b', TP.INT64)], out_dt=TP.INT64)
case('where_i64.onnx', '0', 'b:4x9', 'i:1,2,3,4,5,6,7,8,9', 'i:-1')

# ---- ElementwiseChain -------------------------------------------------------------------------
NCONST = {**{i: 1 for i in range(10)}, 26: 2, 29: 2, 27: 1, 28: 1}
CONSTS = {0: [0.5], 1: [-1.25], 2: [2.0], 3: [1.5], 4: [3.0], 5: [-2.0], 6: [1.7], 7: [0.8],
          8: [0.25], 9: [-0.75], 26: [-1.0, 2.0], 27: [0.2], 28: [1.3], 29: [0.25, 0.5]}
for op in range(34):
    fname = 'chain_%02d.onnx' % op
    kw = dict(constants=CONSTS[op]) if op in CONSTS else {}
    save(fname, h.make_node('ElementwiseChain', ['x'], ['y'], domain='ai.kiln', opcodes=[op], **kw),
         [vin('x')], domain_opsets=[('ai.kiln', 1)])
    for s in ['1', '15', '100', '2x3x33']:
        case(fname, '1e-6', 'f:' + s)
    case(fname, '1e-6', 'e:300')
chains = [
    ('chain_yolo.onnx', [3, 1, 6, 3], [2.0, 0.5, 2.0, 8.0]),      # (x*2 - 0.5)^2 * 8
    ('chain_pow_half.onnx', [16, 6, 0], [0.5, 1.0]),              # sqrt(|x|) via pow + 1
    ('chain_gelu_parts.onnx', [4, 22, 0, 3], [1.4142135, 1.0, 0.5]),
    ('chain_act.onnx', [31, 30, 11, 12, 33, 32, 10, 27, 26, 29], [0.1, -0.5, 0.5, 0.2, 0.5]),
]
for fname, opc, k in chains:
    save(fname, h.make_node('ElementwiseChain', ['x'], ['y'], domain='ai.kiln', opcodes=opc, constants=k),
         [vin('x')], domain_opsets=[('ai.kiln', 1)])
    # 1 + erf(x) cancels: a 1-ulp difference in erf becomes ~1e-6 of the result
    tol = '1e-6a' if 'gelu_parts' in fname else '1e-6'
    for s in ['7', '256', '257', '3x100x100']:
        case(fname, tol, 'f:' + s)
save('chain_badclip.onnx', h.make_node('ElementwiseChain', ['x'], ['y'], domain='ai.kiln', opcodes=[26],
                                       constants=[1.0, -1.0]), [vin('x')], domain_opsets=[('ai.kiln', 1)])
case('chain_badclip.onnx', '0', 'f:20')

# ---- normalizations, softmax ------------------------------------------------------------------
save('bn.onnx', h.make_node('BatchNormalization', ['x', 's', 'b', 'm', 'v'], ['y'], epsilon=1e-3),
     [vin('x'), vin('s'), vin('b'), vin('m'), vin('v')], opset=15)
for n, cc, sp in [(1, 1, '1x1'), (2, 3, '7x7'), (1, 16, '15x17'), (1, 33, '8'), (2, 5, ''), (1, 8, '0x4')]:
    xs = '%dx%d' % (n, cc) + ('x' + sp if sp else '')
    case('bn.onnx', '0', 'f:' + xs, 'f:%d' % cc, 'f:%d' % cc, 'f:%d' % cc, 'p:%d' % cc)
for name, axis, bias, opset, dom in [('ln_last', -1, True, 17, None), ('ln_last_nob', -1, False, 17, None),
                                     ('ln_axis1', 1, True, 17, None), ('ln_kiln', -1, True, 1, 'ai.kiln')]:
    ins = ['x', 's', 'b'] if bias else ['x', 's']
    node = h.make_node('LayerNormalization', ins, ['y'], axis=axis, epsilon=1e-5,
                       **({'domain': dom} if dom else {}))
    save(name + '.onnx', node, [vin(i) for i in ins], opset=17 if not dom else 17,
         domain_opsets=[('ai.kiln', 1)] if dom else ())
    for xs in ['1x1', '4x7', '3x8', '2x15', '5x16', '2x17', '2x33', '128x768', '2x3x100']:
        dims = xs.split('x')
        inner = int(np.prod([int(d) for d in (dims[axis:] if axis >= 0 else dims[axis:])]))
        sdims = 'x'.join(dims[axis:]) if axis >= 0 else dims[-1]
        args = ['e:' + xs if xs == '4x7' else 'f:' + xs, 'f:' + sdims] + (['f:' + sdims] if bias else [])
        case(name + '.onnx', '1e-6a', *args)
    case(name + '.onnx', '1e-6a', 'f:3x5', 'f:1', *(['f:1'] if bias else []))
for name, op, axis, opset in [('sm_last', 'Softmax', -1, 13), ('lsm_last', 'LogSoftmax', -1, 13),
                              ('sm_coerce', 'Softmax', 1, 11), ('sm_axis0', 'Softmax', 0, 13)]:
    save(name + '.onnx', h.make_node(op, ['x'], ['y'], axis=axis), [vin('x')], opset=opset)
    for xs in ['1x1', '3x7', '2x8', '4x15', '2x16', '3x17', '2x33', '5x100', '2x12x128x128', '0x5']:
        case(name + '.onnx', '1e-6', 'f:' + xs)
    case(name + '.onnx', '1e-6', 'e:3x50')

# ---- Resize -----------------------------------------------------------------------------------
def resize(name, opset, attrs, scales=None, sizes=None):
    inputs = [vin('x')]
    inits = []
    names = ['x']
    if opset >= 11:
        names += ['', 'scales' if scales else '']
        if sizes:
            names += ['sizes']
    else:
        names += ['scales']
    if scales:
        inits.append(nh.from_array(np.array(scales, np.float32), 'scales'))
    if sizes:
        inputs.append(vin('sizes', TP.INT64))
    while names and names[-1] == '':
        names.pop()
    save(name + '.onnx', h.make_node('Resize', names, ['y'], **attrs), inputs, opset=opset, inits=inits)


resize('rs_nearest2x', 13, dict(mode='nearest', coordinate_transformation_mode='asymmetric', nearest_mode='floor'), [1, 1, 2, 2])
resize('rs_nearest_hp', 13, dict(mode='nearest'), [1, 1, 1.5, 0.75])
resize('rs_nearest_ceil', 13, dict(mode='nearest', coordinate_transformation_mode='align_corners', nearest_mode='ceil'), [1, 1, 3, 2.5])
resize('rs_nearest_opset10', 10, dict(mode='nearest'), [1, 1, 2, 2])
resize('rs_linear_hp', 13, dict(mode='linear'), [1, 1, 2, 2])
resize('rs_linear_ac', 13, dict(mode='linear', coordinate_transformation_mode='align_corners'), [1, 1, 2, 2])
resize('rs_linear_pt', 13, dict(mode='linear', coordinate_transformation_mode='pytorch_half_pixel'), [1, 1, 2, 3])
resize('rs_linear_down', 13, dict(mode='linear', coordinate_transformation_mode='asymmetric'), [1, 1, 0.5, 0.6])
resize('rs_linear_sym', 19, dict(mode='linear', coordinate_transformation_mode='half_pixel_symmetric'), [1, 1, 1.7, 1.0])
resize('rs_cubic', 13, dict(mode='cubic'), [1, 1, 2, 2])
resize('rs_sizes', 13, dict(mode='nearest', coordinate_transformation_mode='asymmetric', nearest_mode='floor'), sizes=True)
for name in ['rs_nearest2x', 'rs_nearest_hp', 'rs_nearest_ceil', 'rs_nearest_opset10', 'rs_linear_hp',
             'rs_linear_ac', 'rs_linear_pt', 'rs_linear_down', 'rs_linear_sym', 'rs_cubic']:
    tol = '0' if 'nearest' in name else '1e-6a'
    for xs in ['1x1x1x1', '1x2x7x7', '2x3x8x15', '1x4x16x17', '1x2x33x20', '1x1x1x100', '1x3x40x40']:
        case(name + '.onnx', tol, 'f:' + xs)
case('rs_sizes.onnx', '0', 'f:1x3x20x20', 'i:1,3,40,40')
case('rs_sizes.onnx', '0', 'f:2x3x7x9', 'i:2,3,21,5')
case('rs_sizes.onnx', '0', 'f:1x3x7x9', 'i:1,2,14,18')

# ---- reductions -------------------------------------------------------------------------------
save('rmean18.onnx', h.make_node('ReduceMean', ['x', 'axes'], ['y'], keepdims=1), [vin('x'), vin('axes', TP.INT64)], opset=18)
save('rmean18_nokeep.onnx', h.make_node('ReduceMean', ['x', 'axes'], ['y'], keepdims=0), [vin('x'), vin('axes', TP.INT64)], opset=18)
save('rsum13.onnx', h.make_node('ReduceSum', ['x', 'axes'], ['y'], keepdims=1), [vin('x'), vin('axes', TP.INT64)], opset=13)
for f in ['rmean18.onnx', 'rmean18_nokeep.onnx', 'rsum13.onnx']:
    for xs, ax in [('2x3x7x7', '2,3'), ('2x3x7x7', '-1'), ('2x3x7x7', '1'), ('2x3x7x7', '0'), ('4x33', '1'),
                   ('4x300x17', '1'), ('2x3x7x7', '1,3'), ('1x5x1x9', '3,1'), ('100', '0'), ('2x1x8', '1'),
                   ('3x0x4', '0')]:
        case(f, '1e-6a', 'f:' + xs, 'i:' + ax)
save('rmean13.onnx', h.make_node('ReduceMean', ['x'], ['y'], axes=[-2, -1]), [vin('x')], opset=13)
save('rmean13_all.onnx', h.make_node('ReduceMean', ['x'], ['y'], keepdims=0), [vin('x')], opset=13)
for xs in ['1x1x1x1', '2x3x7x7', '1x16x15x17', '2x5x100x3']:
    case('rmean13.onnx', '1e-6a', 'f:' + xs)
    case('rmean13_all.onnx', '1e-6a', 'f:' + xs)

# ---- data movement ----------------------------------------------------------------------------
for axis in [0, 1, 2, -1]:
    fname = 'concat_%s.onnx' % str(axis).replace('-', 'm')
    save(fname, h.make_node('Concat', ['a', 'b', 'c'], ['y'], axis=axis), [vin('a'), vin('b'), vin('c')])
    base = [2, 3, 5, 7]
    for sizes in [(1, 2, 3), (4, 0, 1), (16, 17, 33)]:
        shp = []
        for s in sizes:
            d = list(base)
            d[axis] = s
            shp.append('f:' + 'x'.join(map(str, d)))
        case(fname, '0', *shp)
save('concat_i64.onnx', h.make_node('Concat', ['a', 'b'], ['y'], axis=0), [vin('a', TP.INT64), vin('b', TP.INT64)], out_dt=TP.INT64)
case('concat_i64.onnx', '0', 'i:1,2,3', 'i:4,5')
save('concat_1.onnx', h.make_node('Concat', ['a'], ['y'], axis=0), [vin('a')])
case('concat_1.onnx', '0', 'f:7x3')
save('split_in.onnx', h.make_node('Split', ['x', 's'], ['y0', 'y1', 'y2'], axis=1), [vin('x'), vin('s', TP.INT64)], n_out=3, opset=13)
case('split_in.onnx', '0', 'f:2x10x3x5', 'i:2,7,1')
case('split_in.onnx', '0', 'f:2x10x3x5', 'i:0,10,0')
case('split_in.onnx', '0', 'f:1x64x40x40', 'i:16,16,32')
save('split_eq.onnx', h.make_node('Split', ['x'], ['y0', 'y1', 'y2'], axis=-1), [vin('x')], n_out=3, opset=13)
case('split_eq.onnx', '0', 'f:4x5x33')
case('split_eq.onnx', '0', 'f:3x0x9')
save('split_num.onnx', h.make_node('Split', ['x'], ['y0', 'y1', 'y2'], axis=0, num_outputs=3), [vin('x')], n_out=3, opset=18)
case('split_num.onnx', '0', 'f:7x3')
case('split_num.onnx', '0', 'f:100x2')
save('split_attr.onnx', h.make_node('Split', ['x'], ['y0', 'y1'], axis=2, split=[1, 16]), [vin('x')], n_out=2, opset=11)
case('split_attr.onnx', '0', 'f:2x3x17')
save('slice.onnx', h.make_node('Slice', ['x', 'st', 'en', 'ax', 'sp'], ['y']),
     [vin('x'), vin('st', TP.INT64), vin('en', TP.INT64), vin('ax', TP.INT64), vin('sp', TP.INT64)])
for xs, st, en, ax, sp in [('2x3x40x41', '0,0', '2,100', '2,3', '2,2'), ('2x3x40x41', '1,0', '2,3', '2,3', '2,2'),
                           ('1x3x80x80x85', '0', '2', '-1', '1'), ('1x3x80x80x85', '4', '100', '4', '1'),
                           ('10x20', '-1,5', '-100,1', '0,1', '-1,-2'), ('7', '1', '6', '0', '3'),
                           ('4x5x6', '1,1,1', '3,4,5', '0,1,2', '1,1,1'), ('4x5', '5', '10', '0', '1'),
                           ('3x8x9', '0', '9', '2', '4')]:
    case('slice.onnx', '0', 'f:' + xs, 'i:' + st, 'i:' + en, 'i:' + ax, 'i:' + sp)
save('slice_noaxes.onnx', h.make_node('Slice', ['x', 'st', 'en'], ['y']), [vin('x'), vin('st', TP.INT64), vin('en', TP.INT64)])
case('slice_noaxes.onnx', '0', 'f:6x7x8', 'i:1,2', 'i:5,-1')
save('slice_i64.onnx', h.make_node('Slice', ['x', 'st', 'en'], ['y']), [vin('x', TP.INT64), vin('st', TP.INT64), vin('en', TP.INT64)], out_dt=TP.INT64)
case('slice_i64.onnx', '0', 'i:1,2,3,4,5,6', 'i:1', 'i:5')
for perm in [[0, 2, 1, 3], [0, 1, 3, 2], [0, 2, 3, 1], [0, 3, 1, 2], None, [1, 0], [2, 0, 1]]:
    nm = 'tr_' + ('rev' if perm is None else ''.join(map(str, perm)))
    attrs = {} if perm is None else dict(perm=perm)
    save(nm + '.onnx', h.make_node('Transpose', ['x'], ['y'], **attrs), [vin('x')])
    rank = 4 if perm is None else len(perm)
    shapes = {2: ['1x1', '7x9', '33x100', '64x65', '0x5'], 3: ['2x3x4', '17x33x8', '1x100x7'],
              4: ['1x128x12x64', '2x3x7x5', '1x1x1x1', '2x33x17x9', '1x64x40x40', '2x0x3x4']}[rank]
    for s in shapes:
        case(nm + '.onnx', '0', 'f:' + s)
save('tr_bool.onnx', h.make_node('Transpose', ['x'], ['y'], perm=[1, 0, 2]), [vin('x', TP.BOOL)], out_dt=TP.BOOL)
case('tr_bool.onnx', '0', 'b:3x5x7')

with open(os.path.join(HERE, 'cases.txt'), 'w') as f:
    f.write('# generated by make_models.py: MODEL TOL INPUT...\n')
    for c in cases:
        f.write(c + '\n')
print('%d cases' % len(cases))
