#!/usr/bin/env python3
# Trains a small YOLOv5-style detector on synthetic shapes (generate.py), measures mAP@0.5
# on a held-out synthetic set and exports models/shapes/shapes.onnx with the box decode
# inside the graph (output [1, boxes, 5 + nc]: cx, cy, w, h in input pixels, objectness,
# class scores, all after sigmoid), plus labels, sample images and metrics.json.
#
# Usage: /usr/bin/python3 models/shapes/train.py [--device cuda] [--epochs 40] [--train-images 8000]
#        /usr/bin/python3 models/shapes/train.py --eval-only   (re-measure shapes.pt)
import argparse
import json
import math
import os
import random
import sys
import time
from multiprocessing import Pool

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import generate as gen  # noqa: E402

S = gen.NET_SIZE
NC = len(gen.CLASSES)
STRIDES = (8, 16, 32)
# Square anchors (network pixels) spaced geometrically over the 11..120 px object range.
ANCHORS = ((12, 12, 18, 18, 25, 25), (34, 34, 46, 46, 62, 62), (82, 82, 108, 108, 140, 140))


# ---------------------------------------------------------------- model
class Conv(nn.Module):
    def __init__(self, c1, c2, k=1, s=1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c, shortcut=True):
        super().__init__()
        self.cv1 = Conv(c, c, 1)
        self.cv2 = Conv(c, c, 3)
        self.add = shortcut

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3(nn.Module):
    def __init__(self, c1, c2, n=1, shortcut=True):
        super().__init__()
        c_ = c2 // 2
        self.cv1 = Conv(c1, c_, 1)
        self.cv2 = Conv(c1, c_, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*(Bottleneck(c_, shortcut) for _ in range(n)))

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
    # In training mode returns raw maps [B, na, ny, nx, 5+nc]; in eval (and export) mode
    # returns decoded boxes [B, sum(na*ny*nx), 5+nc] like YOLOv5's Detect with export=True.
    def __init__(self, chs):
        super().__init__()
        self.no = 5 + NC
        self.na = 3
        self.m = nn.ModuleList(nn.Conv2d(c, self.na * self.no, 1) for c in chs)
        a = torch.tensor(ANCHORS, dtype=torch.float32).view(3, 3, 2)
        self.register_buffer("anchors", a / torch.tensor(STRIDES, dtype=torch.float32).view(3, 1, 1))
        # Cell-centre offsets and anchor sizes for the fixed input size, as constants so
        # the exported graph holds no Shape arithmetic: grid = (cell - 0.5) * stride.
        for i, s in enumerate(STRIDES):
            n = S // s
            yv, xv = torch.meshgrid(torch.arange(n, dtype=torch.float32),
                                    torch.arange(n, dtype=torch.float32), indexing="ij")
            self.register_buffer(f"grid{i}", (torch.stack((xv, yv), 2).view(1, 1, n, n, 2) - 0.5) * s)
            self.register_buffer(f"anchor_grid{i}", torch.tensor(ANCHORS[i], dtype=torch.float32).view(1, self.na, 1, 1, 2))
        for conv, s in zip(self.m, STRIDES):
            b = conv.bias.data.view(self.na, -1)
            b[:, 4] += math.log(8 / (S / s) ** 2)   # about 8 objects per image prior
            b[:, 5:] += math.log(0.6 / (NC - 0.99))
            conv.bias = nn.Parameter(b.view(-1))

    def forward(self, feats):
        out = []
        for i, x in enumerate(feats):
            bs, _, ny, nx = x.shape
            p = self.m[i](x).view(bs, self.na, self.no, ny, nx).permute(0, 1, 3, 4, 2).contiguous()
            if self.training:
                out.append(p)
                continue
            stride = STRIDES[i]
            grid, anchor_grid = getattr(self, f"grid{i}"), getattr(self, f"anchor_grid{i}")
            y = p.sigmoid()
            xy, wh, conf = y.split((2, 2, NC + 1), 4)
            xy = xy * (2 * stride) + grid
            wh = (wh * 2) ** 2 * anchor_grid
            out.append(torch.cat((xy, wh, conf), 4).view(bs, self.na * ny * nx, self.no))
        return out if self.training else torch.cat(out, 1)


class ShapesNet(nn.Module):
    def __init__(self):
        super().__init__()
        w = (16, 32, 48, 64, 96)
        self.b0 = Conv(3, w[0], 3, 2)                                    # /2
        self.b1 = nn.Sequential(Conv(w[0], w[1], 3, 2), C3(w[1], w[1], 1))   # /4
        self.b2 = nn.Sequential(Conv(w[1], w[2], 3, 2), C3(w[2], w[2], 2))   # /8  P3
        self.b3 = nn.Sequential(Conv(w[2], w[3], 3, 2), C3(w[3], w[3], 2))   # /16 P4
        self.b4 = nn.Sequential(Conv(w[3], w[4], 3, 2), C3(w[4], w[4], 1), SPPF(w[4], w[4]))  # /32 P5
        # PAN neck
        self.h5 = Conv(w[4], w[3], 1)
        self.n4 = C3(w[3] * 2, w[3], 1, False)
        self.h4 = Conv(w[3], w[2], 1)
        self.n3 = C3(w[2] * 2, w[2], 1, False)     # out P3
        self.d3 = Conv(w[2], w[2], 3, 2)
        self.p4 = C3(w[2] * 2, w[3], 1, False)     # out P4
        self.d4 = Conv(w[3], w[3], 3, 2)
        self.p5 = C3(w[3] * 2, w[4], 1, False)     # out P5
        self.detect = Detect((w[2], w[3], w[4]))

    def forward(self, x):
        x = self.b1(self.b0(x))
        p3 = self.b2(x)
        p4 = self.b3(p3)
        p5 = self.b4(p4)
        h5 = self.h5(p5)
        n4 = self.n4(torch.cat((F.interpolate(h5, scale_factor=2.0, mode="nearest"), p4), 1))
        h4 = self.h4(n4)
        o3 = self.n3(torch.cat((F.interpolate(h4, scale_factor=2.0, mode="nearest"), p3), 1))
        o4 = self.p4(torch.cat((self.d3(o3), h4), 1))
        o5 = self.p5(torch.cat((self.d4(o4), h5), 1))
        return self.detect([o3, o4, o5])


# ---------------------------------------------------------------- loss
def bbox_ciou(b1, b2, eps=1e-7):
    # b1, b2: [n, 4] as (cx, cy, w, h); returns CIoU [n].
    b1x1, b1x2 = b1[:, 0] - b1[:, 2] / 2, b1[:, 0] + b1[:, 2] / 2
    b1y1, b1y2 = b1[:, 1] - b1[:, 3] / 2, b1[:, 1] + b1[:, 3] / 2
    b2x1, b2x2 = b2[:, 0] - b2[:, 2] / 2, b2[:, 0] + b2[:, 2] / 2
    b2y1, b2y2 = b2[:, 1] - b2[:, 3] / 2, b2[:, 1] + b2[:, 3] / 2
    inter = (torch.min(b1x2, b2x2) - torch.max(b1x1, b2x1)).clamp(0) * \
            (torch.min(b1y2, b2y2) - torch.max(b1y1, b2y1)).clamp(0)
    w1, h1, w2, h2 = b1[:, 2], b1[:, 3] + eps, b2[:, 2], b2[:, 3] + eps
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    cw = torch.max(b1x2, b2x2) - torch.min(b1x1, b2x1)
    ch = torch.max(b1y2, b2y2) - torch.min(b1y1, b2y1)
    c2 = cw ** 2 + ch ** 2 + eps
    rho2 = (b2[:, 0] - b1[:, 0]) ** 2 + (b2[:, 1] - b1[:, 1]) ** 2
    v = (4 / math.pi ** 2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1)) ** 2
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (rho2 / c2 + v * alpha)


class YoloLoss:
    # YOLOv5's assignment: a target goes to every anchor whose w/h ratios are within 4x,
    # in its own cell and the two nearest neighbouring cells; CIoU box loss, objectness
    # BCE against the (detached) CIoU, class BCE.
    def __init__(self, anchors):
        self.anchors = anchors  # [nl, na, 2] in grid units
        self.balance = (4.0, 1.0, 0.4)
        # Gains after YOLOv5's (box 0.05, obj 1.0 * (S/640)^2), with more weight on classes.
        self.box_gain, self.obj_gain, self.cls_gain = 0.05, 0.2, 0.1
        self.bce = nn.BCEWithLogitsLoss()

    def __call__(self, preds, targets):
        # targets: [nt, 6] = (image index, cls, cx, cy, w, h) normalized to 0..1.
        dev = preds[0].device
        lbox = torch.zeros(1, device=dev)
        lobj = torch.zeros(1, device=dev)
        lcls = torch.zeros(1, device=dev)
        g = 0.5
        off = torch.tensor([[0, 0], [1, 0], [0, 1], [-1, 0], [0, -1]], dtype=torch.float32, device=dev) * g
        for i, p in enumerate(preds):
            bs, na, ny, nx, _ = p.shape
            tobj = torch.zeros(p.shape[:4], device=dev)
            anchors = self.anchors[i]
            nt = targets.shape[0]
            if nt:
                gain = torch.tensor([1, 1, nx, ny, nx, ny], dtype=torch.float32, device=dev)
                t = targets * gain                                    # to grid units
                ai = torch.arange(na, device=dev).view(na, 1).repeat(1, nt)
                t = torch.cat((t.repeat(na, 1, 1), ai[..., None].float()), 2)  # [na, nt, 7]
                r = t[..., 4:6] / anchors[:, None]
                j = torch.max(r, 1 / r).max(2)[0] < 4.0
                t = t[j]
                gxy = t[:, 2:4]
                gxi = torch.tensor([nx, ny], dtype=torch.float32, device=dev) - gxy
                jx, ky = ((gxy % 1 < g) & (gxy > 1)).T
                lx, my = ((gxi % 1 < g) & (gxi > 1)).T
                sel = torch.stack((torch.ones_like(jx), jx, ky, lx, my))
                t = t.repeat((5, 1, 1))[sel]
                offsets = (torch.zeros_like(gxy)[None] + off[:, None])[sel]
                b = t[:, 0].long()
                c = t[:, 1].long()
                gxy = t[:, 2:4]
                gwh = t[:, 4:6]
                a = t[:, 6].long()
                gij = (gxy - offsets).long()
                gi = gij[:, 0].clamp(0, nx - 1)
                gj = gij[:, 1].clamp(0, ny - 1)
                if b.shape[0]:
                    ps = p[b, a, gj, gi]
                    pxy = ps[:, :2].sigmoid() * 2 - 0.5
                    pwh = (ps[:, 2:4].sigmoid() * 2) ** 2 * anchors[a]
                    tbox = torch.cat((gxy - torch.stack((gi, gj), 1).float(), gwh), 1)
                    iou = bbox_ciou(torch.cat((pxy, pwh), 1), tbox)
                    lbox = lbox + (1.0 - iou).mean()
                    tobj[b, a, gj, gi] = iou.detach().clamp(0).to(tobj.dtype)
                    tc = torch.zeros_like(ps[:, 5:])
                    tc[torch.arange(c.shape[0], device=dev), c] = 1.0
                    lcls = lcls + self.bce(ps[:, 5:], tc)
            lobj = lobj + self.bce(p[..., 4], tobj) * self.balance[i]
        bs = preds[0].shape[0]
        lbox, lobj, lcls = lbox * self.box_gain, lobj * self.obj_gain, lcls * self.cls_gain
        return (lbox + lobj + lcls) * bs, torch.cat((lbox, lobj, lcls)).detach()


# ---------------------------------------------------------------- data
def _train_sample(args):
    # One training image at network size: 60% square images, 40% letterboxed content of a
    # random aspect ratio generated directly at its letterboxed size (pad 114 or a random
    # grey) so the model sees padding bands like the CLI's letterbox produces.
    seed, i = args
    rng = np.random.default_rng([seed, i])
    if rng.random() < 0.6:
        img, boxes = gen.make_image(rng, S, S)
        return img, boxes
    aspect = rng.uniform(1.15, 2.0)
    long_, short = S, int(round(S / aspect))
    w, h = (long_, short) if rng.random() < 0.5 else (short, long_)
    img, boxes = gen.make_image(rng, w, h)
    pad = 114 if rng.random() < 0.7 else int(rng.integers(0, 256))
    out = np.full((S, S, 3), pad, dtype=np.uint8)
    left, top = (S - w) // 2, (S - h) // 2
    out[top:top + h, left:left + w] = img
    boxes = boxes.copy()
    boxes[:, [1, 3]] += left
    boxes[:, [2, 4]] += top
    return out, boxes


def _eval_sample(args):
    # Held-out image: half at the network size, half at larger sizes that are letterboxed
    # (real bilinear downscale) exactly as at deployment. Boxes stay in original pixels.
    seed, i = args
    rng = np.random.default_rng([seed, i])
    if i % 2 == 0:
        w = h = S
    else:
        w = int(rng.integers(320, 721))
        h = int(round(w / rng.choice([4 / 3, 3 / 4, 16 / 9, 1.0, 3 / 2])))
    img, boxes = gen.make_image(rng, w, h)
    return img, boxes


def build_set(fn, seed, n, workers):
    with Pool(workers) as pool:
        return pool.map(fn, [(seed, i) for i in range(n)], chunksize=64)


def to_tensor(imgs):
    x = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()
    return x.float().div_(255.0)


# ---------------------------------------------------------------- eval
def nms_numpy(boxes, scores, iou_thres):
    # Greedy NMS; boxes [n,4] x1y1x2y2. Returns kept indices in score order.
    order = scores.argsort()[::-1]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        xx1 = np.maximum(boxes[i, 0], boxes[rest, 0])
        yy1 = np.maximum(boxes[i, 1], boxes[rest, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[rest, 2])
        yy2 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        iou = inter / (areas[i] + areas[rest] - inter + 1e-9)
        order = rest[iou <= iou_thres]
    return np.array(keep, dtype=np.int64)


def postprocess(out, conf_thres, iou_thres, max_det=300, max_nms=3000):
    # out: [boxes, 5+nc] decoded network output for one image. Returns [k, 6] rows of
    # (x1, y1, x2, y2, score, cls) in network pixels; score = objectness * class score,
    # one (best) class per box, NMS per class.
    obj = out[:, 4]
    cand = out[obj > conf_thres]
    if not len(cand):
        return np.zeros((0, 6), np.float32)
    cls = cand[:, 5:].argmax(1)
    score = cand[:, 4] * cand[np.arange(len(cand)), 5 + cls]
    m = score > conf_thres
    cand, cls, score = cand[m], cls[m], score[m]
    if len(score) > max_nms:
        top = score.argsort()[::-1][:max_nms]
        cand, cls, score = cand[top], cls[top], score[top]
    xyxy = np.stack((cand[:, 0] - cand[:, 2] / 2, cand[:, 1] - cand[:, 3] / 2,
                     cand[:, 0] + cand[:, 2] / 2, cand[:, 1] + cand[:, 3] / 2), 1)
    shifted = xyxy + cls[:, None] * 4096.0     # class-aware NMS in one pass
    keep = nms_numpy(shifted, score, iou_thres)[:max_det]
    return np.concatenate((xyxy[keep], score[keep, None], cls[keep, None].astype(np.float32)), 1)


def box_iou_matrix(a, b):
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    aa = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    ab = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (aa[:, None] + ab[None, :] - inter + 1e-9)


def voc_ap(recall, precision):
    # All-point interpolation (VOC 2010+): area under the monotone precision envelope.
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([1.0], precision, [0.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    idx = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


def map50(dets, gts, iou_thr=0.5):
    # dets: list per image of [k,6] (x1,y1,x2,y2,score,cls); gts: list of [n,5] (cls,x1,y1,x2,y2).
    # Returns (mAP, per-class AP list). A class with no ground truth is skipped.
    aps = []
    for c in range(NC):
        records = []   # (score, is_tp)
        n_gt = 0
        for d, g in zip(dets, gts):
            gc = g[g[:, 0] == c][:, 1:]
            dc = d[d[:, 5] == c]
            n_gt += len(gc)
            if not len(dc):
                continue
            dc = dc[dc[:, 4].argsort()[::-1]]
            used = np.zeros(len(gc), bool)
            ious = box_iou_matrix(dc[:, :4], gc) if len(gc) else np.zeros((len(dc), 0))
            for k in range(len(dc)):
                tp = False
                if ious.shape[1]:
                    j = int(ious[k].argmax())
                    if ious[k, j] >= iou_thr and not used[j]:
                        used[j] = True
                        tp = True
                records.append((dc[k, 4], tp))
        if n_gt == 0:
            aps.append(float("nan"))
            continue
        if not records:
            aps.append(0.0)
            continue
        records.sort(key=lambda r: -r[0])
        tp = np.cumsum([r[1] for r in records])
        fp = np.cumsum([not r[1] for r in records])
        aps.append(voc_ap(tp / n_gt, tp / np.maximum(tp + fp, 1e-9)))
    valid = [a for a in aps if not math.isnan(a)]
    return float(np.mean(valid)) if valid else 0.0, aps


def evaluate(model, eval_set, conf_thres=0.001, iou_thres=0.6, batch=16):
    model.eval()
    dev = next(model.parameters()).device
    dets, gts = [], []
    with torch.no_grad():
        for i in range(0, len(eval_set), batch):
            chunk = eval_set[i:i + batch]
            lbs = [gen.letterbox(img, S) for img, _ in chunk]
            out = model(to_tensor([lb[0] for lb in lbs]).to(dev)).cpu().numpy()
            for (img, boxes), (_, r, (px, py)), o in zip(chunk, lbs, out):
                d = postprocess(o, conf_thres, iou_thres)
                # Back to original image pixels.
                d[:, [0, 2]] = ((d[:, [0, 2]] - px) / r).clip(0, img.shape[1])
                d[:, [1, 3]] = ((d[:, [1, 3]] - py) / r).clip(0, img.shape[0])
                dets.append(d)
                gts.append(boxes)
    return map50(dets, gts)


# ---------------------------------------------------------------- training
class EMA:
    def __init__(self, model, decay=0.997, tau=150):
        import copy
        self.ema = copy.deepcopy(model).eval()
        self.decay, self.tau, self.updates = decay, tau, 0
        for p in self.ema.parameters():
            p.requires_grad_(False)

    def update(self, model):
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.tau))
        with torch.no_grad():
            msd = model.state_dict()
            for k, v in self.ema.state_dict().items():
                if v.dtype.is_floating_point:
                    v.mul_(d).add_(msd[k].detach(), alpha=1 - d)


def collate(samples, flip_rng):
    imgs, tl = [], []
    for bi, (img, boxes) in enumerate(samples):
        boxes = boxes.copy()
        if flip_rng.random() < 0.5:       # every class is mirror-symmetric as a class
            img = img[:, ::-1]
            boxes[:, [1, 3]] = S - boxes[:, [3, 1]]
        if flip_rng.random() < 0.5:
            img = img[::-1]
            boxes[:, [2, 4]] = S - boxes[:, [4, 2]]
        imgs.append(np.ascontiguousarray(img))
        if len(boxes):
            cx = (boxes[:, 1] + boxes[:, 3]) / 2 / S
            cy = (boxes[:, 2] + boxes[:, 4]) / 2 / S
            w = (boxes[:, 3] - boxes[:, 1]) / S
            h = (boxes[:, 4] - boxes[:, 2]) / S
            tl.append(np.stack((np.full(len(boxes), bi), boxes[:, 0], cx, cy, w, h), 1))
    t = torch.from_numpy(np.concatenate(tl, 0).astype(np.float32)) if tl else torch.zeros(0, 6)
    return to_tensor(imgs), t


def export_onnx(model, path):
    model.eval()
    dummy = torch.zeros(1, 3, S, S)
    torch.onnx.export(model, dummy, path, opset_version=17, input_names=["images"],
                      output_names=["output"], do_constant_folding=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--train-images", type=int, default=8000)
    ap.add_argument("--eval-images", type=int, default=200)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train-seed", type=int, default=1000)
    ap.add_argument("--eval-seed", type=int, default=7)
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="data generation processes")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    ap.add_argument("--ckpt", default="/tmp/kiln-shapes/shapes_weights.npz",
                    help="weights written after each epoch (numpy .npz, portable across torch "
                         "versions) and read by --eval-only; not committed")
    ap.add_argument("--no-export", action="store_true", help="stop after the final evaluation")
    ap.add_argument("--eval-only", action="store_true",
                    help="skip training: load --ckpt, evaluate, export and write the files")
    ap.add_argument("--out", default=HERE)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    model = ShapesNet()
    nparam = sum(p.numel() for p in model.parameters())
    print(f"params {nparam}", flush=True)
    ckpt = args.ckpt
    os.makedirs(os.path.dirname(os.path.abspath(ckpt)), exist_ok=True)
    dev = torch.device(args.device)
    meta = {}

    t_gen = time.time()
    eval_set = build_set(_eval_sample, args.eval_seed, args.eval_images, args.workers)
    print(f"eval set: {len(eval_set)} images, {sum(len(b) for _, b in eval_set)} objects "
          f"({time.time() - t_gen:.1f}s)", flush=True)

    t0 = time.time()
    history = []
    epochs_run = 0
    if args.eval_only:
        z = np.load(ckpt)
        meta = json.loads(str(z["__meta__"]))
        model.load_state_dict({k: torch.from_numpy(z[k]) for k in z.files if k != "__meta__"})
        final = model
        history = meta.get("history", [])
    else:
        t_gen = time.time()
        train_set = build_set(_train_sample, args.train_seed, args.train_images, args.workers)
        gen_s = time.time() - t_gen
        print(f"train set: {len(train_set)} images, {sum(len(b) for _, b in train_set)} objects "
              f"({gen_s:.1f}s)", flush=True)
        t0 = time.time()
        model.to(dev)
        crit = YoloLoss(model.detect.anchors)
        decay, no_decay = [], []
        for n_, p in model.named_parameters():
            (no_decay if p.ndim <= 1 else decay).append(p)
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 5e-4},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
        steps_per_epoch = len(train_set) // args.batch
        total = steps_per_epoch * args.epochs
        warm = min(300, total // 10)

        def lr_at(step):
            if step < warm:
                return args.lr * (0.1 + 0.9 * step / warm)
            q = (step - warm) / max(1, total - warm)
            return args.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * q)))

        ema = EMA(model)
        rng = np.random.default_rng(args.seed)
        step = 0
        for ep in range(args.epochs):
            model.train()
            perm = rng.permutation(len(train_set))
            agg = torch.zeros(3)
            te = time.time()
            for bi in range(steps_per_epoch):
                idx = perm[bi * args.batch:(bi + 1) * args.batch]
                x, t = collate([train_set[k] for k in idx], rng)
                x, t = x.to(dev, non_blocking=True), t.to(dev)
                for gparam in opt.param_groups:
                    gparam["lr"] = lr_at(step)
                loss, items = crit(model(x), t)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
                opt.step()
                ema.update(model)
                agg += items.cpu()
                step += 1
                if bi % 50 == 0:
                    print(f"  ep {ep + 1} it {bi}/{steps_per_epoch} box {items[0]:.4f} obj {items[1]:.4f} "
                          f"cls {items[2]:.4f} ({time.time() - te:.0f}s)", flush=True)
            epochs_run = ep + 1
            agg /= steps_per_epoch
            msg = (f"epoch {ep + 1}/{args.epochs} box {agg[0]:.4f} obj {agg[1]:.4f} cls {agg[2]:.4f} "
                   f"epoch {time.time() - te:.0f}s total {time.time() - t0:.0f}s")
            rec = {"epoch": ep + 1, "loss_box": float(agg[0]), "loss_obj": float(agg[1]),
                   "loss_cls": float(agg[2]), "elapsed_s": round(time.time() - t0, 1)}
            if (ep + 1) % args.eval_every == 0 or ep + 1 == args.epochs:
                m, _ = evaluate(ema.ema, eval_set[:100])
                msg += f"  mAP@0.5(ema, first 100) {m:.4f}"
                rec["map50_first100"] = round(m, 4)
            history.append(rec)
            print(msg, flush=True)
            meta = {"epochs": epochs_run, "train_seconds": round(time.time() - t0, 1),
                    "train_device": (torch.cuda.get_device_name(dev) if dev.type == "cuda" else
                                     f"cpu, {args.threads} threads"),
                    "torch_train": torch.__version__, "train_images": args.train_images,
                    "train_seed": args.train_seed, "batch": args.batch, "lr": args.lr,
                    "history": history}
            np.savez(ckpt, __meta__=np.array(json.dumps(meta)),
                     **{k: v.detach().cpu().numpy() for k, v in ema.ema.state_dict().items()})
        final = ema.ema

    final.eval()
    m, aps = evaluate(final, eval_set)
    print(f"held-out mAP@0.5 {m:.4f}  per class " +
          " ".join(f"{c}={a:.4f}" for c, a in zip(gen.CLASSES, aps)), flush=True)
    if args.no_export:
        return
    final.cpu()

    onnx_path = os.path.join(args.out, "shapes.onnx")
    export_onnx(final, onnx_path)
    import onnx
    import onnxruntime as ort
    onnx.checker.check_model(onnx.load(onnx_path))
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")  # shares cores with torch
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    max_diff, same_dets = 0.0, True
    ort_dets, gts = [], []
    with torch.no_grad():
        for img, boxes in eval_set:
            lb, r, (px, py) = gen.letterbox(img, S)
            x = to_tensor([lb])
            ref = final(x).numpy()
            got = sess.run(["output"], {"images": x.numpy()})[0]
            max_diff = max(max_diff, float(np.abs(ref - got).max()))
            dt = postprocess(ref[0], 0.25, 0.45)
            do = postprocess(got[0], 0.25, 0.45)
            if dt.shape != do.shape or (len(dt) and np.abs(dt[:, :4] - do[:, :4]).max() > 1e-2) \
                    or (len(dt) and (dt[:, 5] != do[:, 5]).any()):
                same_dets = False
            d = postprocess(got[0], 0.001, 0.6)
            d[:, [0, 2]] = ((d[:, [0, 2]] - px) / r).clip(0, img.shape[1])
            d[:, [1, 3]] = ((d[:, [1, 3]] - py) / r).clip(0, img.shape[0])
            ort_dets.append(d)
            gts.append(boxes)
    m_ort, _ = map50(ort_dets, gts)
    print(f"ORT vs torch: max |diff| {max_diff:.2e}, same detections at conf 0.25: {same_dets}, "
          f"ORT mAP@0.5 {m_ort:.4f}", flush=True)
    if max_diff > 1e-2 or abs(m_ort - m) > 0.005:
        raise SystemExit("ONNX Runtime output differs from torch")

    with open(os.path.join(args.out, "labels.txt"), "w") as f:
        f.write("".join(c + "\n" for c in gen.CLASSES))

    # Samples: held-out images (own seed) at sizes other than the network size.
    from PIL import Image
    sdir = os.path.join(args.out, "samples")
    os.makedirs(sdir, exist_ok=True)
    sizes = [(480, 360), (640, 480), (360, 480), (512, 288), (400, 400)]
    samples = []
    for i, (w, h) in enumerate(sizes):
        rng = np.random.default_rng([args.eval_seed + 1000, i])
        img, boxes = gen.make_image(rng, w, h)
        name = f"shapes_{i}_{w}x{h}"
        Image.fromarray(img).save(os.path.join(sdir, name + ".png"))
        with open(os.path.join(sdir, name + ".txt"), "w") as f:
            f.write(gen.to_yolo_lines(boxes, w, h))
        samples.append({"file": name + ".png", "width": w, "height": h,
                        "objects": [{"class": gen.CLASSES[int(b[0])],
                                     "box_xyxy": [round(float(v), 1) for v in b[1:]]} for b in boxes]})

    metrics = {
        "map50": round(m, 4),
        "map50_onnxruntime": round(m_ort, 4),
        "ap50_per_class": {c: round(a, 4) for c, a in zip(gen.CLASSES, aps)},
        "eval_images": len(eval_set),
        "eval_objects": int(sum(len(b) for _, b in eval_set)),
        "eval_seed": args.eval_seed,
        "eval_set": "generate.make_image with rng seed [eval_seed, i]; even i at 256x256, odd i at "
                    "320..720 px wide with aspect 4:3/3:4/16:9/1:1/3:2, letterboxed to 256 (bilinear, pad 114); "
                    "boxes compared in original image pixels",
        "conf_thres": 0.001,
        "iou_thres_nms": 0.6,
        "iou_thres_match": 0.5,
        "ap_method": "VOC all-point interpolation per class, mean over classes; class-aware NMS, "
                     "score = objectness * best class score, max 300 detections per image",
        "input_size": S,
        "train_images": meta.get("train_images"),
        "train_seed": meta.get("train_seed"),
        "epochs": meta.get("epochs"),
        "batch": meta.get("batch"),
        "lr": meta.get("lr"),
        "train_seconds": meta.get("train_seconds"),
        "train_device": meta.get("train_device"),
        "torch_train": meta.get("torch_train"),
        "params": nparam,
        "ort_max_abs_diff": max_diff,
        "history": [{k: round(v, 5) if isinstance(v, float) else v for k, v in h.items()} for h in history],
        "samples": samples,
        "torch_export": torch.__version__,
    }
    mpath = os.path.join(args.out, "metrics.json")
    with open(mpath, "w") as f:
        json.dump(metrics, f, indent=1)
        f.write("\n")
    print(f"wrote {onnx_path} ({os.path.getsize(onnx_path)} bytes)", flush=True)


if __name__ == "__main__":
    main()
