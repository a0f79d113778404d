#!/usr/bin/env python3
# Exports the benchmark models (full-size architectures, random weights under fixed seeds)
# to bench/models/NAME.onnx, opset 17, through the classic TorchScript exporter.
#
# Run with the system Python, which has Debian's torch 1.13 + torchvision 0.14 and onnx /
# onnxruntime from PyPI (see tests/golden/README.md):
#     /usr/bin/python3 bench/export_models.py [NAME...] [--no-check]
# bench/models/ is git-ignored: the files are large (BERT-base is ~440 MB) and this script
# regenerates them. Each model is checked with onnx.checker and, unless --no-check, ONNX
# Runtime's output is compared with PyTorch's (rtol 1e-3, atol 1e-4).
import argparse
import math
import os
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

OPSET = 17
HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "models")


def randomize_bn(model, gen):
    """Default BN statistics are the identity; give them real-looking values."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) * 0.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)


# ---------------------------------------------------------------- YOLOv5s (v6.0 layout)
class Conv(nn.Module):
    """Conv2d (no bias) + BatchNorm + SiLU, 'same' padding for odd kernels."""

    def __init__(self, c1, c2, k=1, s=1, p=None):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2 if p is None else p, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c1, c2, shortcut=True, e=1.0):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1)
        self.cv2 = Conv(c_, c2, 3)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    """CSP bottleneck with 3 convolutions."""

    def __init__(self, c1, c2, n=1, shortcut=True):
        super().__init__()
        c_ = c2 // 2
        self.cv1 = Conv(c1, c_, 1)
        self.cv2 = Conv(c1, c_, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut) for _ in range(n)))

    def forward(self, x):
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class SPPF(nn.Module):
    def __init__(self, c1, c2, k=5):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1)
        self.cv2 = Conv(c_ * 4, c2, 1)
        self.m = nn.MaxPool2d(k, 1, k // 2)

    def forward(self, x):
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), 1))


class Detect(nn.Module):
    """Per level: 1x1 conv to na*(5+nc), sigmoid, then the v6.0 decode
    xy = (2s - 0.5 + grid) * stride, wh = (2s)^2 * anchor; output [bs, boxes, 5+nc]."""

    def __init__(self, nc, anchors, ch, strides, size):
        super().__init__()
        self.nc, self.no, self.na = nc, nc + 5, len(anchors[0]) // 2
        self.m = nn.ModuleList(nn.Conv2d(c, self.no * self.na, 1) for c in ch)
        self.strides = strides
        for i, (a, s) in enumerate(zip(anchors, strides)):
            ny = nx = size // s
            yv, xv = torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij")
            grid = torch.stack((xv, yv), 2).view(1, 1, ny, nx, 2).float()
            ag = torch.tensor(a, dtype=torch.float32).view(1, self.na, 1, 1, 2)
            self.register_buffer(f"grid{i}", grid)
            self.register_buffer(f"anchor_grid{i}", ag.expand(1, self.na, ny, nx, 2).contiguous())
        # ultralytics' bias prior: objectness ~ 8 objects per 640 image, classes ~ 0.6/nc
        for mi, s in zip(self.m, strides):
            b = mi.bias.view(self.na, -1)
            b.data[:, 4] += math.log(8 / (640 / s) ** 2)
            b.data[:, 5:] += math.log(0.6 / (nc - 0.99))

    def forward(self, xs):
        z = []
        for i, x in enumerate(xs):
            x = self.m[i](x)
            bs, _, ny, nx = x.shape
            x = x.view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
            y = x.sigmoid()
            xy = (y[..., 0:2] * 2 - 0.5 + getattr(self, f"grid{i}")) * self.strides[i]
            wh = (y[..., 2:4] * 2) ** 2 * getattr(self, f"anchor_grid{i}")
            y = torch.cat((xy, wh, y[..., 4:]), -1)
            z.append(y.view(bs, -1, self.no))
        return torch.cat(z, 1)


class YOLOv5(nn.Module):
    """yolov5s.yaml of release v6.0 (6x6/2 stem conv, C3, SPPF, PAN neck, Detect), with
    depth_multiple 0.33 and width_multiple 0.5 applied: 7.2M parameters, 16.5 GFLOPs
    (ultralytics counts 2 FLOPs per multiply-add) at 640x640, 80 classes."""

    def __init__(self, nc=80, size=640, width=0.5, depth=0.33):
        super().__init__()

        def w(c):
            return int(math.ceil(c * width / 8) * 8)

        def d(n):
            return max(round(n * depth), 1)

        self.b0 = Conv(3, w(64), 6, 2, 2)
        self.b1 = Conv(w(64), w(128), 3, 2)
        self.b2 = C3(w(128), w(128), d(3))
        self.b3 = Conv(w(128), w(256), 3, 2)
        self.b4 = C3(w(256), w(256), d(6))
        self.b5 = Conv(w(256), w(512), 3, 2)
        self.b6 = C3(w(512), w(512), d(9))
        self.b7 = Conv(w(512), w(1024), 3, 2)
        self.b8 = C3(w(1024), w(1024), d(3))
        self.b9 = SPPF(w(1024), w(1024), 5)
        self.h10 = Conv(w(1024), w(512), 1, 1)
        self.up = nn.Upsample(None, 2, "nearest")
        self.h13 = C3(w(1024), w(512), d(3), False)
        self.h14 = Conv(w(512), w(256), 1, 1)
        self.h17 = C3(w(512), w(256), d(3), False)
        self.h18 = Conv(w(256), w(256), 3, 2)
        self.h20 = C3(w(512), w(512), d(3), False)
        self.h21 = Conv(w(512), w(512), 3, 2)
        self.h23 = C3(w(1024), w(1024), d(3), False)
        anchors = [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]]
        self.detect = Detect(nc, anchors, (w(256), w(512), w(1024)), (8, 16, 32), size)

    def forward(self, x):
        x = self.b2(self.b1(self.b0(x)))
        p3 = self.b4(self.b3(x))
        p4 = self.b6(self.b5(p3))
        x = self.b9(self.b8(self.b7(p4)))
        h10 = self.h10(x)
        x = self.h13(torch.cat((self.up(h10), p4), 1))
        h14 = self.h14(x)
        out3 = self.h17(torch.cat((self.up(h14), p3), 1))
        out4 = self.h20(torch.cat((self.h18(out3), h14), 1))
        out5 = self.h23(torch.cat((self.h21(out4), h10), 1))
        return self.detect([out3, out4, out5])


# ---------------------------------------------------------------- BERT-base encoder
class BertSelfAttention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.h, self.dh = heads, hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)

    def split(self, x):
        b, s, _ = x.shape
        return x.view(b, s, self.h, self.dh).permute(0, 2, 1, 3)

    def forward(self, x, ext_mask):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.dh) + ext_mask
        ctx = torch.matmul(scores.softmax(-1), v)
        b, _, s, _ = ctx.shape
        return ctx.permute(0, 2, 1, 3).reshape(b, s, self.h * self.dh)


class BertLayer(nn.Module):
    """Post-LN block: LN(x + Attn(x)), then LN(h + FFN(h)) with exact (erf) GELU."""

    def __init__(self, hidden, heads, inter, eps):
        super().__init__()
        self.attention = BertSelfAttention(hidden, heads)
        self.attn_out = nn.Linear(hidden, hidden)
        self.attn_ln = nn.LayerNorm(hidden, eps=eps)
        self.intermediate = nn.Linear(hidden, inter)
        self.output = nn.Linear(inter, hidden)
        self.out_ln = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x, ext_mask):
        h = self.attn_ln(x + self.attn_out(self.attention(x, ext_mask)))
        return self.out_ln(h + self.output(F.gelu(self.intermediate(h))))


class Bert(nn.Module):
    """BERT-base: word + position + token-type embeddings with LayerNorm, 12 post-LN
    layers (hidden 768, 12 heads, intermediate 3072), tanh pooler over [CLS]. Token types
    are all 0 (not an input). Inputs input_ids, attention_mask int64 [batch, seq]."""

    def __init__(self, vocab=30522, hidden=768, layers=12, heads=12, inter=3072, max_pos=512, eps=1e-12):
        super().__init__()
        self.word = nn.Embedding(vocab, hidden)
        self.position = nn.Embedding(max_pos, hidden)
        self.token_type = nn.Embedding(2, hidden)
        self.emb_ln = nn.LayerNorm(hidden, eps=eps)
        self.layers = nn.ModuleList(BertLayer(hidden, heads, inter, eps) for _ in range(layers))
        self.pooler = nn.Linear(hidden, hidden)
        # BERT's initialization: N(0, 0.02) weights, zero biases, LN identity
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, input_ids, attention_mask):
        seq = input_ids.shape[1]
        pos = torch.arange(seq, device=input_ids.device).unsqueeze(0)
        x = self.word(input_ids) + self.position(pos) + self.token_type.weight[0]
        x = self.emb_ln(x)
        ext = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, ext)
        pooled = torch.tanh(self.pooler(x[:, 0]))
        return x, pooled


# ---------------------------------------------------------------- registry
def image_input(gen, size):
    return (torch.rand(1, 3, size, size, generator=gen),)


def bert_input(gen, seq=128, vocab=30522):
    ids = torch.randint(1, vocab, (1, seq), generator=gen, dtype=torch.int64)
    ids[0, 0] = 101  # [CLS]
    return ids, torch.ones(1, seq, dtype=torch.int64)


def make_resnet50(gen):
    m = torchvision.models.resnet50(weights=None)
    randomize_bn(m, gen)
    return m, image_input(gen, 224), ["input"], ["logits"]


def make_mobilenetv2(gen):
    m = torchvision.models.mobilenet_v2(weights=None)
    randomize_bn(m, gen)
    return m, image_input(gen, 224), ["input"], ["logits"]


def make_efficientnet_b0(gen):
    m = torchvision.models.efficientnet_b0(weights=None)
    randomize_bn(m, gen)
    return m, image_input(gen, 224), ["input"], ["logits"]


def make_yolov5s(gen):
    m = YOLOv5()
    randomize_bn(m, gen)
    return m, image_input(gen, 640), ["images"], ["output"]


def make_bert_base(gen):
    return Bert(), bert_input(gen), ["input_ids", "attention_mask"], ["last_hidden_state", "pooler_output"]


MODELS = {
    "resnet50": (make_resnet50, "torchvision ResNet-50, 1x3x224x224"),
    "mobilenetv2": (make_mobilenetv2, "torchvision MobileNetV2 (width 1.0), 1x3x224x224"),
    "efficientnet_b0": (make_efficientnet_b0, "torchvision EfficientNet-B0, 1x3x224x224"),
    "yolov5s": (make_yolov5s, "YOLOv5s v6.0 layout with decode, 80 classes, 1x3x640x640"),
    "bert_base": (make_bert_base, "BERT-base encoder (12 x 768, 12 heads, FFN 3072), seq 128"),
}


def export(name, check):
    make, desc = MODELS[name]
    seed = 1000 + sorted(MODELS).index(name)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model, args, in_names, out_names = make(gen)
        model.eval()
        path = os.path.join(OUT_DIR, name + ".onnx")
        t0 = time.time()
        kw = {"dynamo": False} if int(torch.__version__.split(".")[0]) >= 2 else {}
        torch.onnx.export(model, args, path, opset_version=OPSET, input_names=in_names, output_names=out_names,
                          do_constant_folding=True, **kw)
        onnx.checker.check_model(path, full_check=True)
        g = onnx.load(path).graph
        n_params = sum(p.numel() for p in model.parameters())
        ops = sorted({n.op_type for n in g.node})
        print(f"{name}: {desc}\n  {n_params / 1e6:.2f}M params, {os.path.getsize(path) / 2**20:.1f} MiB, "
              f"{len(g.node)} nodes, exported in {time.time() - t0:.1f} s\n  ops: {' '.join(ops)}", flush=True)
        if check:
            import onnxruntime as ort
            ref = model(*args)
            ref = [ref] if isinstance(ref, torch.Tensor) else list(ref)
            sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            got = sess.run(None, {n: a.numpy() for n, a in zip(in_names, args)})
            for oname, r, o in zip(out_names, ref, got):
                r = r.numpy()
                err = np.abs(r - o).max()
                ok = np.allclose(o, r, rtol=1e-3, atol=1e-4)
                print(f"  ORT vs torch {oname} {list(o.shape)}: max abs err {err:.3g} {'ok' if ok else 'MISMATCH'}")
                if not ok:
                    raise SystemExit(f"{name}: ORT and PyTorch disagree on {oname}")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("names", nargs="*", help=f"models to export (default all: {' '.join(MODELS)})")
    ap.add_argument("--no-check", action="store_true", help="skip the ORT-vs-PyTorch comparison")
    a = ap.parse_args()
    names = a.names or list(MODELS)
    for n in names:
        if n not in MODELS:
            ap.error(f"unknown model '{n}' (known: {' '.join(MODELS)})")
    os.makedirs(OUT_DIR, exist_ok=True)
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    for n in names:
        export(n, not a.no_check)


if __name__ == "__main__":
    sys.exit(main())
