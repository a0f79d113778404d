#!/usr/bin/env python3
# Exports the golden models: small-width variants of real architectures, fixed seeds,
# ONNX opset 17 through the classic TorchScript exporter, with inputs and ORT outputs.
#
# Not run in CI: the .onnx files and .npy data it writes are committed. It needs torch,
# torchvision, onnx, onnxruntime and numpy (see README.md for the exact command).
# Layout written, per model NAME:
#   tests/golden/models/NAME/model.onnx
#   tests/golden/models/NAME/data_K/inputs/<input name>.npy     (K = 0, 1, ...)
#   tests/golden/models/NAME/data_K/outputs/<output name>.npy   (ONNX Runtime, all graph
#                                                          optimizations disabled)
import argparse
import math
import os
import shutil
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.resnet import BasicBlock

OPSET = 17
HERE = os.path.dirname(os.path.abspath(__file__))


def seed_all(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)


def randomize_bn(model, gen):
    """Default BN stats are the identity; give them real-looking values so BN (or its
    folding into the conv) is actually tested."""
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) * 0.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)


# ---------------------------------------------------------------- ResNet-18, width 16
class ResNet18Narrow(nn.Module):
    """torchvision's ResNet-18 layout (BasicBlock, [2,2,2,2], 7x7/2 stem, 3x3/2 max
    pool, global average pool, fc) with stage widths 16-32-64-128 instead of 64..512."""

    def __init__(self, width=16, num_classes=10):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(width, 2, 1)
        self.layer2 = self._make_layer(width * 2, 2, 2)
        self.layer3 = self._make_layer(width * 4, 2, 2)
        self.layer4 = self._make_layer(width * 8, 2, 2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 8, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, planes, blocks, stride):
        down = None
        if stride != 1 or self.inplanes != planes:
            down = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                                 nn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, down)]
        self.inplanes = planes
        for _ in range(1, blocks):
            layers.append(BasicBlock(planes, planes))
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


# ---------------------------------------------------------------- YOLOv5-style detector
class ConvBnAct(nn.Module):
    def __init__(self, c1, c2, k=1, s=1, p=None):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2 if p is None else p, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Focus(nn.Module):
    """Space-to-depth by strided slicing, then a conv (YOLOv5 <= v5.0 stem)."""

    def __init__(self, c1, c2, k=3):
        super().__init__()
        self.conv = ConvBnAct(c1 * 4, c2, k)

    def forward(self, x):
        return self.conv(torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2],
                                    x[..., ::2, 1::2], x[..., 1::2, 1::2]], 1))


class Bottleneck(nn.Module):
    def __init__(self, c1, c2, shortcut=True, e=1.0):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = ConvBnAct(c1, c_, 1)
        self.cv2 = ConvBnAct(c_, c2, 3)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    def __init__(self, c1, c2, n=1, shortcut=True):
        super().__init__()
        c_ = c2 // 2
        self.cv1 = ConvBnAct(c1, c_, 1)
        self.cv2 = ConvBnAct(c1, c_, 1)
        self.cv3 = ConvBnAct(2 * c_, c2, 1)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut) for _ in range(n)))

    def forward(self, x):
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class SPPF(nn.Module):
    def __init__(self, c1, c2, k=5):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = ConvBnAct(c1, c_, 1)
        self.cv2 = ConvBnAct(c_ * 4, c2, 1)
        self.m = nn.MaxPool2d(k, 1, k // 2)

    def forward(self, x):
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class Detect(nn.Module):
    """YOLOv5 head with the box decode in the graph: sigmoid, xy = (2*s - 0.5 + grid) *
    stride, wh = (2*s)^2 * anchor, output [N, boxes, 5 + nc]."""

    def __init__(self, nc, anchors, ch, strides, img):
        super().__init__()
        self.nc, self.no, self.na = nc, nc + 5, len(anchors[0]) // 2
        self.strides = strides
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in ch)
        grids, agrids = [], []
        for i, s in enumerate(strides):
            ny = nx = img // s
            yv, xv = torch.meshgrid(torch.arange(ny, dtype=torch.float32),
                                    torch.arange(nx, dtype=torch.float32), indexing="ij")
            grids.append(torch.stack((xv, yv), 2).expand(1, self.na, ny, nx, 2) - 0.5)
            a = torch.tensor(anchors[i], dtype=torch.float32).view(1, self.na, 1, 1, 2)
            agrids.append(a.expand(1, self.na, ny, nx, 2).contiguous())
        self.grids, self.agrids = grids, agrids

    def forward(self, xs):
        z = []
        for i, x in enumerate(xs):
            x = self.m[i](x)
            bs, _, ny, nx = x.shape
            x = x.view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
            xy, wh, conf = x.sigmoid().split((2, 2, self.nc + 1), 4)
            xy = (xy * 2 + self.grids[i]) * self.strides[i]
            wh = (wh * 2) ** 2 * self.agrids[i]
            y = torch.cat((xy, wh, conf), 4)
            z.append(y.view(bs, self.na * nx * ny, self.no))
        return torch.cat(z, 1)


class YoloV5Tiny(nn.Module):
    """YOLOv5 (v5.0 layout: Focus stem, C3, SPPF, PAN neck, Detect) at width 1/16 of
    v5l and depth 1/3; channels 8-16-32-64-128."""

    def __init__(self, nc=4, img=128):
        super().__init__()
        w = [8, 16, 32, 64, 128]
        self.b0 = Focus(3, w[0], 3)
        self.b1 = ConvBnAct(w[0], w[1], 3, 2)
        self.b2 = C3(w[1], w[1], 1)
        self.b3 = ConvBnAct(w[1], w[2], 3, 2)
        self.b4 = C3(w[2], w[2], 2)          # P3
        self.b5 = ConvBnAct(w[2], w[3], 3, 2)
        self.b6 = C3(w[3], w[3], 3)          # P4
        self.b7 = ConvBnAct(w[3], w[4], 3, 2)
        self.b8 = C3(w[4], w[4], 1)
        self.b9 = SPPF(w[4], w[4], 5)        # P5
        self.h10 = ConvBnAct(w[4], w[3], 1, 1)
        self.up = nn.Upsample(None, 2, "nearest")
        self.h13 = C3(w[4], w[3], 1, False)
        self.h14 = ConvBnAct(w[3], w[2], 1, 1)
        self.h17 = C3(w[3], w[2], 1, False)  # out P3/8
        self.h18 = ConvBnAct(w[2], w[2], 3, 2)
        self.h20 = C3(w[3], w[3], 1, False)  # out P4/16
        self.h21 = ConvBnAct(w[3], w[3], 3, 2)
        self.h23 = C3(w[4], w[4], 1, False)  # out P5/32
        anchors = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119],
                   [116, 90, 156, 198, 373, 326]]
        self.detect = Detect(nc, anchors, (w[2], w[3], w[4]), (8, 16, 32), img)

    def forward(self, x):
        x = self.b2(self.b1(self.b0(x)))
        p3 = self.b4(self.b3(x))
        p4 = self.b6(self.b5(p3))
        p5 = self.b9(self.b8(self.b7(p4)))
        h10 = self.h10(p5)
        h13 = self.h13(torch.cat((self.up(h10), p4), 1))
        h14 = self.h14(h13)
        o3 = self.h17(torch.cat((self.up(h14), p3), 1))
        o4 = self.h20(torch.cat((self.h18(o3), h14), 1))
        o5 = self.h23(torch.cat((self.h21(o4), h10), 1))
        return self.detect([o3, o4, o5])


# ---------------------------------------------------------------- BERT-style encoder
class BertSelfAttention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.h, self.d = heads, hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)

    def split(self, x):
        # view(b, s, heads, d) from the runtime sizes: Shape/Gather/Concat/Reshape chain
        x = x.view(x.size(0), x.size(1), self.h, self.d)
        return x.permute(0, 2, 1, 3)

    def forward(self, x, ext_mask):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.d)
        probs = torch.softmax(scores + ext_mask, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.size(0), ctx.size(1), self.h * self.d)


class BertLayer(nn.Module):
    def __init__(self, hidden, heads, inter):
        super().__init__()
        self.attn = BertSelfAttention(hidden, heads)
        self.attn_out = nn.Linear(hidden, hidden)
        self.ln1 = nn.LayerNorm(hidden, eps=1e-12)
        self.inter = nn.Linear(hidden, inter)
        self.out = nn.Linear(inter, hidden)
        self.ln2 = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x, ext_mask):
        x = self.ln1(x + self.attn_out(self.attn(x, ext_mask)))
        return self.ln2(x + self.out(F.gelu(self.inter(x))))  # exact (erf) GELU


class BertTiny(nn.Module):
    """BERT encoder: word + position + token-type embeddings, LayerNorm, 2 layers of
    hidden 64 / 4 heads / intermediate 256, pooler (tanh on [CLS])."""

    def __init__(self, vocab=1000, hidden=64, layers=2, heads=4, inter=256, max_pos=64):
        super().__init__()
        self.word = nn.Embedding(vocab, hidden)
        self.pos = nn.Embedding(max_pos, hidden)
        self.tok_type = nn.Embedding(2, hidden)
        self.ln = nn.LayerNorm(hidden, eps=1e-12)
        self.layers = nn.ModuleList(BertLayer(hidden, heads, inter) for _ in range(layers))
        self.pooler = nn.Linear(hidden, hidden)
        self.register_buffer("position_ids", torch.arange(max_pos).unsqueeze(0))
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                m.weight.data.normal_(0.0, 0.02 * 5)
            if isinstance(m, nn.Linear):
                m.bias.data.normal_(0.0, 0.02)

    def forward(self, input_ids, attention_mask):
        seq = input_ids.size(1)
        pos_ids = self.position_ids[:, :seq]
        tt_ids = torch.zeros_like(input_ids)
        x = self.word(input_ids) + self.tok_type(tt_ids) + self.pos(pos_ids)
        x = self.ln(x)
        # extended additive mask [b, 1, 1, s]: 0 where attended, float min where padded
        ext = attention_mask[:, None, None, :].to(torch.float32)
        ext = (1.0 - ext) * torch.finfo(torch.float32).min
        for layer in self.layers:
            x = layer(x, ext)
        pooled = torch.tanh(self.pooler(x[:, 0]))
        return x, pooled


# ---------------------------------------------------------------- ViT-style classifier
class ViTBlock(nn.Module):
    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x):
        y = self.ln1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class ViTTiny(nn.Module):
    """ViT: 4x4 patch-embedding conv, class token, learned position embedding, 2 pre-norm
    blocks (dim 64, 4 heads, MLP 128), final LayerNorm, linear head on the class token."""

    def __init__(self, img=32, patch=4, dim=64, depth=2, heads=4, mlp=128, classes=10):
        super().__init__()
        n = (img // patch) ** 2
        self.patch = nn.Conv2d(3, dim, patch, patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*(ViTBlock(dim, heads, mlp) for _ in range(depth)))
        self.ln = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        cls = self.cls.expand(x.shape[0], -1, -1)
        x = torch.cat((cls, x), 1) + self.pos
        x = self.ln(self.blocks(x))
        return self.head(x[:, 0])


# ---------------------------------------------------------------- SRCNN-style upscaler
class SRCNN(nn.Module):
    """Bicubic upsample (x3, Resize cubic) then the 9-5-5 SRCNN convs (64, 32, 1)."""

    def __init__(self, scale=3):
        super().__init__()
        self.scale = scale
        self.c1 = nn.Conv2d(1, 64, 9, padding=4)
        self.c2 = nn.Conv2d(64, 32, 5, padding=2)
        self.c3 = nn.Conv2d(32, 1, 5, padding=2)

    def forward(self, x):
        x = F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)
        return self.c3(F.relu(self.c2(F.relu(self.c1(x)))))


# ---------------------------------------------------------------- driver
def image(rng, *shape):
    return rng.random(shape, dtype=np.float32)


def bert_inputs(rng, b, s, pad):
    ids = rng.integers(1, 1000, size=(b, s), dtype=np.int64)
    mask = np.ones((b, s), dtype=np.int64)
    for i, p in enumerate(pad):      # trailing padding per row
        if p:
            mask[i, s - p:] = 0
            ids[i, s - p:] = 0
    ids[:, 0] = 101                  # [CLS]
    return {"input_ids": ids, "attention_mask": mask}


def build(name):
    """Returns (model, input names, output names, dynamic_axes, training mode, list of
    input-dict data sets)."""
    rng = np.random.default_rng(1234)
    gen = torch.Generator().manual_seed(99)
    eval_mode = torch.onnx.TrainingMode.EVAL
    if name == "resnet18_w16":
        m = ResNet18Narrow()
        randomize_bn(m, gen)
        # dynamic batch: one set at batch 1, one at batch 2
        data = [{"input": image(rng, 1, 3, 64, 64)}, {"input": image(rng, 2, 3, 64, 64)}]
        return (m, ["input"], ["logits"], {"input": {0: "batch"}, "logits": {0: "batch"}},
                eval_mode, data)
    if name == "mobilenetv2_025":
        m = torchvision.models.mobilenet_v2(width_mult=0.25, num_classes=10)
        randomize_bn(m, gen)
        # PRESERVE keeps BatchNormalization nodes (EVAL folds them into the convs), as
        # in the model-zoo MobileNetV2 exports.
        return (m, ["input"], ["logits"], None, torch.onnx.TrainingMode.PRESERVE,
                [{"input": image(rng, 1, 3, 96, 96)}])
    if name == "yolov5_tiny":
        m = YoloV5Tiny()
        randomize_bn(m, gen)
        return (m, ["images"], ["output"], None, eval_mode,
                [{"images": image(rng, 1, 3, 128, 128)}])
    if name == "bert_tiny":
        m = BertTiny()
        axes = {"input_ids": {0: "batch", 1: "seq"}, "attention_mask": {0: "batch", 1: "seq"},
                "last_hidden_state": {0: "batch", 1: "seq"}, "pooler_output": {0: "batch"}}
        data = [bert_inputs(rng, 1, 16, [0]), bert_inputs(rng, 2, 16, [0, 5]),
                bert_inputs(rng, 3, 7, [2, 0, 6])]
        return (m, ["input_ids", "attention_mask"], ["last_hidden_state", "pooler_output"],
                axes, eval_mode, data)
    if name == "vit_tiny":
        m = ViTTiny()
        return (m, ["input"], ["logits"], None, eval_mode, [{"input": image(rng, 1, 3, 32, 32)}])
    if name == "srcnn_x3":
        m = SRCNN(3)
        return (m, ["input"], ["output"], None, eval_mode, [{"input": image(rng, 1, 1, 32, 32)}])
    raise SystemExit("unknown model " + name)


MODELS = ["resnet18_w16", "mobilenetv2_025", "yolov5_tiny", "bert_tiny", "vit_tiny",
          "srcnn_x3"]


def export_one(name, out_root):
    seed_all(0)
    model, in_names, out_names, axes, mode, data = build(name)
    model.eval()
    d = os.path.join(out_root, name)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    path = os.path.join(d, "model.onnx")
    args = tuple(torch.from_numpy(data[0][n]) for n in in_names)
    kw = {}
    if tuple(int(v) for v in torch.__version__.split(".")[:2]) >= (2, 0):
        kw["dynamo"] = False  # keep the classic TorchScript exporter on torch 2.x
    # Not under no_grad: nn.MultiheadAttention would take its fused inference fast path
    # (aten::_native_multi_head_attention), which the exporter cannot write.
    torch.onnx.export(model, args, path, opset_version=OPSET, input_names=in_names,
                      output_names=out_names, dynamic_axes=axes, training=mode,
                      do_constant_folding=True, **kw)
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    for k, feeds in enumerate(data):
        outs = sess.run(out_names, feeds)
        with torch.no_grad():
            ref = model(*(torch.from_numpy(feeds[n]) for n in in_names))
        ref = ref if isinstance(ref, tuple) else (ref,)
        for o, r, n in zip(outs, ref, out_names):  # exporter sanity check vs torch
            np.testing.assert_allclose(o, r.numpy(), rtol=1e-3, atol=1e-4,
                                       err_msg=f"{name} data_{k} {n}: ORT vs torch")
        for sub, arrs in (("inputs", feeds), ("outputs", dict(zip(out_names, outs)))):
            sd = os.path.join(d, f"data_{k}", sub)
            os.makedirs(sd)
            for n, a in arrs.items():
                np.save(os.path.join(sd, n + ".npy"), np.ascontiguousarray(a))
    ops = sorted({n.op_type for n in m.graph.node})
    size = os.path.getsize(path)
    print(f"{name}: {size / 1024:.0f} KiB, {len(m.graph.node)} nodes, {len(data)} data "
          f"set(s); ops: {' '.join(ops)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("models", nargs="*", default=MODELS)
    ap.add_argument("--out", default=os.path.join(HERE, "models"))
    a = ap.parse_args()
    for name in a.models:
        export_one(name, a.out)


if __name__ == "__main__":
    sys.exit(main())
