#!/usr/bin/env python3
# Reference decode + NMS for kiln_yolo_detect: writes real YOLOv5- and YOLOv8-format model
# outputs and the detections a straightforward NumPy port of the YOLOv5 / Ultralytics
# non_max_suppression gives for them, under tests/vision/data/. test_vision_post.c checks
# kiln against these files, so `make check` needs no Python.
#
# Not run in CI. Needs numpy and onnxruntime; the YOLOv8-style head is exported with torch
# (Debian's python3-torch under /usr/bin/python3, see tests/golden/README.md):
#   /usr/bin/python3 tests/vision/check_yolo_decode.py            # regenerate data/
#   /usr/bin/python3 tests/vision/check_yolo_decode.py --check    # recompute, compare only
#
# Sources of the raw outputs (random weights, fixed seeds):
#   v5: tests/golden/models/yolov5_tiny (Detect decode in the graph) -> [1, 1008, 9]
#   v8: a small YOLOv8-style model built here (anchor-free head with DFL, as Ultralytics'
#       Detect in export mode) -> [1, 4 + 6, 336]
# data/cases.txt: one case per line,
#   name format(v5|v8) output.npy conf iou agnostic max_det max_nms reference.npy
# reference.npy is float32 [k, 6]: x1 y1 x2 y2 score class, best first.
import argparse
import os
import sys
import tempfile

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(HERE, "data")
MAX_WH = 7680.0  # YOLOv5 / Ultralytics: class offset for class-aware NMS in one pass


# ------------------------------------------------------------------ reference algorithm
def xywh2xyxy(x):
    y = np.empty_like(x)  # float32 in, float32 out: same rounding as torch
    y[:, 0] = x[:, 0] - x[:, 2] / 2
    y[:, 1] = x[:, 1] - x[:, 3] / 2
    y[:, 2] = x[:, 0] + x[:, 2] / 2
    y[:, 3] = x[:, 1] + x[:, 3] / 2
    return y


def nms_numpy(boxes, scores, iou_thres):
    """Greedy NMS as torchvision.ops.nms: indices kept, by decreasing score (ties: lower
    index first). IoU > iou_thres suppresses."""
    boxes = boxes.astype(np.float64)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = inter / (area[i] + area[rest] - inter)
        order = rest[~(iou > iou_thres)]
    return np.array(keep, dtype=np.int64)


def finish(box, conf, j, conf_thres, iou_thres, agnostic, max_det, max_nms):
    keep = conf > conf_thres
    x = np.concatenate([box, conf[:, None], j[:, None].astype(np.float32)], 1)[keep]
    if not len(x):
        return np.zeros((0, 6), np.float32)
    x = x[np.argsort(-x[:, 4], kind="stable")[:max_nms]]
    c = x[:, 5:6].astype(np.float64) * (0.0 if agnostic else MAX_WH)
    i = nms_numpy(x[:, :4].astype(np.float64) + c, x[:, 4], iou_thres)[:max_det]
    return x[i].astype(np.float32)


def yolov5_nms(pred, conf_thres, iou_thres, agnostic, max_det, max_nms):
    """yolov5 utils/general.py non_max_suppression for one image, multi_label off.
    pred: [boxes, 5 + nc] float32."""
    x = pred[pred[:, 4] > np.float32(conf_thres)]
    if not len(x):
        return np.zeros((0, 6), np.float32)
    cls = x[:, 5:] * x[:, 4:5]  # conf = obj_conf * cls_conf (float32)
    box = xywh2xyxy(x[:, :4])
    return finish(box, cls.max(1), cls.argmax(1), np.float32(conf_thres), iou_thres, agnostic, max_det, max_nms)


def yolov8_nms(pred, conf_thres, iou_thres, agnostic, max_det, max_nms):
    """ultralytics utils/ops.py non_max_suppression for one image, multi_label off.
    pred: [4 + nc, boxes] float32 (the raw output's layout)."""
    x = pred.T
    x = x[x[:, 4:].max(1) > np.float32(conf_thres)]
    if not len(x):
        return np.zeros((0, 6), np.float32)
    box = xywh2xyxy(x[:, :4])
    cls = x[:, 4:]
    return finish(box, cls.max(1), cls.argmax(1), np.float32(conf_thres), iou_thres, agnostic, max_det, max_nms)


# ------------------------------------------------------------------------ model outputs
def run_onnx(path, feeds):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return s.run(None, feeds)[0]


def scene(rng, size=128):
    """A [1, 3, size, size] float image in [0, 1): a colour gradient with a few flat
    rectangles, so detectors see edges and regions rather than noise."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    x = np.stack([xx, yy, 1 - xx]) * 0.5
    for _ in range(6):
        a, b = rng.integers(0, size - size // 4, 2)
        h, w = rng.integers(size // 12, size // 3, 2)
        x[:, a:a + h, b:b + w] = rng.random((3, 1, 1))
    return x[None].astype(np.float32)


def golden_v5_output():
    """The committed golden YOLOv5-style model on its stored input. Its random weights make
    the output nearly input-independent (each pyramid level predicts one class), so it
    tests decode and suppression more than class handling."""
    model = os.path.join(ROOT, "tests/golden/models/yolov5_tiny/model.onnx")
    x0 = np.load(os.path.join(ROOT, "tests/golden/models/yolov5_tiny/data_0/inputs/images.npy"))
    return run_onnx(model, {"images": x0})


def tiny_model_onnx(path):
    import torch
    import torch.nn as nn

    class ConvBnSiLU(nn.Module):
        def __init__(self, c1, c2, k=3, s=1):
            super().__init__()
            self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
            self.bn = nn.BatchNorm2d(c2)
            self.act = nn.SiLU()

        def forward(self, x):
            return self.act(self.bn(self.conv(x)))

    class DFL(nn.Module):
        """Distribution focal loss integral: expected bin index under a softmax."""

        def __init__(self, c1):
            super().__init__()
            self.conv = nn.Conv2d(c1, 1, 1, bias=False).requires_grad_(False)
            self.conv.weight.data[:] = torch.arange(c1, dtype=torch.float).view(1, c1, 1, 1)
            self.c1 = c1

        def forward(self, x):
            b, _, a = x.shape
            return self.conv(x.view(b, 4, self.c1, a).transpose(2, 1).softmax(1)).view(b, 4, a)

    class TinyDetector(nn.Module):
        """Backbone of strided convs to P3/P4/P5 with two heads on it: YOLOv5's anchor-based
        Detect (3 anchors per cell, sigmoid, xy = (2s - 0.5 + grid) * stride,
        wh = (2s)^2 * anchor) giving [1, 3 * A, 5 + nc], and Ultralytics' anchor-free
        Detect (box and class branches, DFL, dist2bbox, sigmoid classes) giving the raw
        [1, 4 + nc, A] tensor."""

        def __init__(self, nc=6, reg_max=8, img=128):
            super().__init__()
            self.nc, self.reg_max = nc, reg_max
            self.b1 = nn.Sequential(ConvBnSiLU(3, 16, 3, 2), ConvBnSiLU(16, 32, 3, 2), ConvBnSiLU(32, 32, 3, 2))
            self.b2 = ConvBnSiLU(32, 64, 3, 2)
            self.b3 = ConvBnSiLU(64, 64, 3, 2)
            ch, self.strides = (32, 64, 64), (8, 16, 32)
            # v8 head
            self.cv2 = nn.ModuleList(nn.Sequential(ConvBnSiLU(c, 32), ConvBnSiLU(32, 32), nn.Conv2d(32, 4 * reg_max, 1))
                                     for c in ch)
            self.cv3 = nn.ModuleList(nn.Sequential(ConvBnSiLU(c, 32), ConvBnSiLU(32, 32), nn.Conv2d(32, nc, 1))
                                     for c in ch)
            self.dfl = DFL(reg_max)
            anchors, strides = [], []
            for s in self.strides:
                n = img // s
                sy, sx = torch.meshgrid(torch.arange(n) + 0.5, torch.arange(n) + 0.5, indexing="ij")
                anchors.append(torch.stack((sx, sy), -1).view(-1, 2))
                strides.append(torch.full((n * n, 1), float(s)))
            self.register_buffer("anchors", torch.cat(anchors).T.contiguous())  # [2, A]
            self.register_buffer("stride_t", torch.cat(strides).T.contiguous())  # [1, A]
            # v5 head (anchor sizes in pixels: YOLOv5s defaults)
            self.m5 = nn.ModuleList(nn.Conv2d(c, 3 * (5 + nc), 1) for c in ch)
            a5 = torch.tensor([[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]],
                              dtype=torch.float)
            self.register_buffer("anchor_grid5", a5.view(3, 1, 3, 1, 1, 2))
            self.img = img

        def v5(self, feats):
            z = []
            for i, f in enumerate(feats):
                b, _, ny, nx = f.shape
                y = self.m5[i](f).view(b, 3, 5 + self.nc, ny, nx).permute(0, 1, 3, 4, 2).sigmoid()
                gy, gx = torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij")
                grid = torch.stack((gx, gy), 2).view(1, 1, ny, nx, 2).float()
                xy = (y[..., 0:2] * 2 - 0.5 + grid) * self.strides[i]
                wh = (y[..., 2:4] * 2) ** 2 * self.anchor_grid5[i]
                z.append(torch.cat((xy, wh, y[..., 4:]), -1).view(b, -1, 5 + self.nc))
            return torch.cat(z, 1)

        def v8(self, feats):
            b = feats[0].shape[0]
            xs = [torch.cat((self.cv2[i](f), self.cv3[i](f)), 1).view(b, 4 * self.reg_max + self.nc, -1)
                  for i, f in enumerate(feats)]
            y = torch.cat(xs, 2)
            box, cls = y.split((4 * self.reg_max, self.nc), 1)
            lt, rb = self.dfl(box).chunk(2, 1)
            a = self.anchors.unsqueeze(0)
            x1y1, x2y2 = a - lt, a + rb
            dbox = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * self.stride_t
            return torch.cat((dbox, cls.sigmoid()), 1)

        def forward(self, x):
            p3 = self.b1(x)
            p4 = self.b2(p3)
            p5 = self.b3(p4)
            return self.v5((p3, p4, p5)), self.v8((p3, p4, p5))

    torch.manual_seed(8)
    m = TinyDetector()
    # Calibrate BatchNorm on sample images (cumulative batch statistics) so activations keep
    # unit scale through the random layers: otherwise the features, and with them the class
    # scores, hardly depend on the input and on the position.
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.momentum = None
    m.train()
    with torch.no_grad():
        m(torch.from_numpy(np.concatenate([scene(np.random.default_rng(100 + i)) for i in range(8)])))
    m.eval()
    x = torch.from_numpy(scene(np.random.default_rng(99)))
    kw = {"dynamo": False} if int(torch.__version__.split(".")[0]) >= 2 else {}
    torch.onnx.export(m, x, path, opset_version=17, input_names=["images"], output_names=["output_v5", "output_v8"],
                      **kw)


def tiny_outputs():
    """(v5 output, v8 output) of the tiny detector for a scene image and for uniform noise."""
    import onnx

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "tiny_detector.onnx")
        tiny_model_onnx(path)
        onnx.checker.check_model(onnx.load(path), full_check=True)
        xs = [scene(np.random.default_rng(8)), np.random.default_rng(9).random((1, 3, 128, 128), dtype=np.float32)]
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        return [s.run(None, {"images": x}) for x in xs]


# -------------------------------------------------------------------------------- cases
def conf_for(scores, n_cand):
    """A threshold (3 decimals) that leaves about n_cand candidates."""
    s = np.sort(scores)[::-1]
    return float(np.floor(s[min(n_cand, len(s) - 1)] * 1000) / 1000)


def cases_for(fmt, name, out):
    pred = out[0]
    if fmt == "v5":
        scores = (pred[:, 5:] * pred[:, 4:5]).max(1)
    else:
        scores = pred[4:].max(0)
    c200, c60, c600 = conf_for(scores, 200), conf_for(scores, 60), conf_for(scores, 600)
    return [
        (name + "_many", fmt, c600, 0.45, 0, 300, 30000),
        (name + "_aware", fmt, c200, 0.45, 0, 300, 30000),
        (name + "_agnostic", fmt, c200, 0.45, 1, 300, 30000),
        (name + "_iou06", fmt, c60, 0.6, 0, 300, 30000),
        (name + "_cap", fmt, c200, 0.3, 0, 7, 50),
    ]


def compute(out, fmt, conf, iou, agnostic, max_det, max_nms):
    f = yolov5_nms if fmt == "v5" else yolov8_nms
    return f(out[0], conf, iou, agnostic, max_det, max_nms)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="recompute and compare with data/, write nothing")
    args = ap.parse_args()
    outs = {("v5", "v5golden"): golden_v5_output()}
    tiny = tiny_outputs()
    outs[("v5", "v5tiny")] = tiny[0][0]
    for i, (_, o8) in enumerate(tiny):
        outs[("v8", "v8tiny_%d" % i)] = o8
    os.makedirs(DATA, exist_ok=True)
    lines, bad = [], 0
    for (fmt, name), out in outs.items():
        out = out.astype(np.float32)
        fn = name + "_output.npy"
        if args.check:
            old = np.load(os.path.join(DATA, fn))
            if old.shape != out.shape or np.abs(old - out).max() > 1e-4:
                print("%s: model output differs from the stored one" % fn)
                bad += 1
            out = old  # compare the algorithm on the stored data
        else:
            np.save(os.path.join(DATA, fn), out)
        for (cname, _, conf, iou, agn, max_det, max_nms) in cases_for(fmt, name, out):
            ref = compute(out, fmt, conf, iou, agn, max_det, max_nms)
            rfn = cname + "_ref.npy"
            if args.check:
                old = np.load(os.path.join(DATA, rfn))
                if old.shape != ref.shape or (len(ref) and np.abs(old - ref).max() > 1e-5):
                    print("%s: reference detections differ" % rfn)
                    bad += 1
            else:
                np.save(os.path.join(DATA, rfn), ref)
            pred = out[0]
            n_cand = int(((pred[:, 5:] * pred[:, 4:5]).max(1) > np.float32(conf)).sum() if fmt == "v5"
                         else (pred[4:].max(0) > np.float32(conf)).sum())
            print("%-14s %s conf %.3f iou %.2f agnostic %d: %d candidates -> %d detections (classes %s)"
                  % (cname, fmt, conf, iou, agn, n_cand, len(ref), sorted(set(ref[:, 5].astype(int).tolist()))))
            lines.append("%s %s %s %.9g %.9g %d %d %d %s" % (cname, fmt, fn, conf, iou, agn, max_det, max_nms, rfn))
    if not args.check:
        with open(os.path.join(DATA, "cases.txt"), "w") as f:
            f.write("# written by tests/vision/check_yolo_decode.py\n")
            f.write("# name format output conf iou agnostic max_det max_nms reference\n")
            f.write("\n".join(lines) + "\n")
    print("%d problems" % bad if args.check else "wrote %s" % DATA)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
