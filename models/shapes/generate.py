#!/usr/bin/env python3
# Synthetic "shapes" detection data: filled circles, squares, triangles, stars and crosses
# of random colour, size, rotation and position on cluttered, noisy backgrounds, with
# YOLO-format labels. train.py imports it; run it directly to write a data set to disk.
#
# Usage: /usr/bin/python3 models/shapes/generate.py --out /tmp/shapes --n 200 --seed 7 \
#            [--width 480 --height 360]
# writes OUT/images/NNNNN.png and OUT/labels/NNNNN.txt ("cls cx cy w h", normalized to 0..1).
import argparse
import math
import os

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ["circle", "square", "triangle", "star", "cross"]
NET_SIZE = 256          # the detector's input size; shape sizes are defined relative to it
MIN_SIZE, MAX_SIZE = 16, 120   # circumscribed diameter in network-input pixels


def _rand_color(rng):
    return tuple(int(v) for v in rng.integers(0, 256, size=3))


def _background(rng, w, h):
    # Linear gradient between two random colours in a random direction.
    c0 = rng.uniform(0, 255, size=3)
    c1 = rng.uniform(0, 255, size=3)
    ang = rng.uniform(0, 2 * math.pi)
    t = (np.arange(w, dtype=np.float32)[None, :] * math.cos(ang)
         + np.arange(h, dtype=np.float32)[:, None] * math.sin(ang))
    t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    img = c0.astype(np.float32) + t[..., None] * (c1 - c0).astype(np.float32)
    return Image.fromarray(img.astype(np.uint8), "RGB")


def _clutter(rng, draw, w, h, scale):
    # Lines and open arcs: thin structures that share colours and edges with the shapes
    # but are not objects.
    for _ in range(int(rng.integers(0, 10))):
        x0, x1 = rng.uniform(0, w, size=2)
        y0, y1 = rng.uniform(0, h, size=2)
        draw.line([(x0, y0), (x1, y1)], fill=_rand_color(rng), width=max(1, int(rng.integers(1, 4) * scale)))
    for _ in range(int(rng.integers(0, 4))):
        r = rng.uniform(10, 80) * scale
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        a0 = rng.uniform(0, 360)
        draw.arc([cx - r, cy - r, cx + r, cy + r], a0, a0 + rng.uniform(30, 200),
                 fill=_rand_color(rng), width=max(1, int(rng.integers(1, 4) * scale)))


def _polygon(cls, cx, cy, r, rng):
    # Vertices of shape `cls` with circumscribed radius r, or None for a circle.
    rot = rng.uniform(0, 2 * math.pi)
    if cls == 0:
        return None
    if cls == 1:    # square, any rotation
        angs = rot + np.arange(4) * math.pi / 2 + math.pi / 4
        rad = np.full(4, r)
    elif cls == 2:  # triangle, near-equilateral with jittered vertices
        angs = rot + np.arange(3) * 2 * math.pi / 3 + rng.uniform(-0.25, 0.25, size=3)
        rad = r * rng.uniform(0.85, 1.0, size=3)
    elif cls == 3:  # five-pointed star
        inner = rng.uniform(0.38, 0.55)
        angs = rot + np.arange(10) * math.pi / 5
        rad = np.where(np.arange(10) % 2 == 0, r, r * inner)
    else:           # cross (plus sign), arm half-width t, arm half-length r/sqrt(1+t^2)
        t = rng.uniform(0.22, 0.38)
        L = r / math.sqrt(1 + t * t)
        T = t * L
        pts = np.array([[T, L], [T, T], [L, T], [L, -T], [T, -T], [T, -L],
                        [-T, -L], [-T, -T], [-L, -T], [-L, T], [-T, T], [-T, L]])
        c, s = math.cos(rot), math.sin(rot)
        pts = pts @ np.array([[c, s], [-s, c]])
        return [(cx + px, cy + py) for px, py in pts]
    return [(cx + rr * math.cos(a), cy + rr * math.sin(a)) for a, rr in zip(angs, rad)]


def _box_iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    aa = (a[2] - a[0]) * (a[3] - a[1])
    ab = (b[2] - b[0]) * (b[3] - b[1])
    return inter, aa, ab


def make_image(rng, w=NET_SIZE, h=NET_SIZE, max_objects=8):
    """Returns (uint8 HxWx3 RGB array, float32 [n,5] array of (cls, x1, y1, x2, y2) pixels).

    Shape sizes scale with max(w, h) / NET_SIZE so that after letterboxing to NET_SIZE
    they span MIN_SIZE..MAX_SIZE network pixels whatever the image size.
    """
    scale = max(w, h) / NET_SIZE
    img = _background(rng, w, h)
    draw = ImageDraw.Draw(img)
    _clutter(rng, draw, w, h, scale)
    bg = np.asarray(img).astype(np.float32)
    boxes = []
    n_obj = int(rng.integers(1, max_objects + 1))
    for _ in range(n_obj):
        cls = int(rng.integers(0, len(CLASSES)))
        for _attempt in range(30):
            d = math.exp(rng.uniform(math.log(MIN_SIZE), math.log(MAX_SIZE))) * scale
            r = d / 2
            cx = rng.uniform(r * 0.7, w - r * 0.7)
            cy = rng.uniform(r * 0.7, h - r * 0.7)
            poly = _polygon(cls, cx, cy, r, rng)
            if poly is None:
                box = [cx - r, cy - r, cx + r, cy + r]
            else:
                xs = [p[0] for p in poly]
                ys = [p[1] for p in poly]
                box = [min(xs), min(ys), max(xs), max(ys)]
            box = [max(0.0, box[0]), max(0.0, box[1]), min(float(w), box[2]), min(float(h), box[3])]
            if box[2] - box[0] < 0.6 * MIN_SIZE * scale or box[3] - box[1] < 0.6 * MIN_SIZE * scale:
                continue
            ok = True
            for ob in boxes:
                inter, aa, ab = _box_iou(ob[1:], box)
                # New shapes are drawn on top: keep earlier ones mostly visible.
                if inter / (aa + ab - inter) > 0.2 or inter / aa > 0.35 or inter / ab > 0.5:
                    ok = False
                    break
            if not ok:
                continue
            # Colour far enough from what is under the shape to be visible.
            x0, y0, x1, y1 = (int(v) for v in box)
            under = bg[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)].reshape(-1, 3).mean(0)
            for _c in range(20):
                col = np.array(_rand_color(rng))
                if np.abs(col - under).sum() > 150:
                    break
            col = tuple(int(v) for v in col)
            outline = None
            if rng.random() < 0.3:
                outline = tuple(int(v) for v in np.clip(np.array(col) * rng.uniform(0.3, 0.7), 0, 255))
            width = max(1, int(round(rng.uniform(1, 3) * scale)))
            if poly is None:
                draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=col,
                             outline=outline, width=width if outline else 1)
            else:
                draw.polygon(poly, fill=col, outline=outline)
                if outline:
                    draw.line(poly + [poly[0]], fill=outline, width=width)
            boxes.append([cls] + box)
            break
    arr = np.asarray(img).astype(np.float32)
    sigma = rng.uniform(0, 12)
    if sigma > 0.5:
        arr += rng.standard_normal(size=arr.shape, dtype=np.float32) * np.float32(sigma)
    arr = np.clip(arr + 0.5, 0, 255).astype(np.uint8)
    return arr, np.array(boxes, dtype=np.float32).reshape(-1, 5)


def letterbox(img, size=NET_SIZE, pad_value=114):
    """YOLOv5-style letterbox: scale by r = min(size/h, size/w) (bilinear), centre, pad.

    Returns (uint8 [size,size,3], r, (pad_x, pad_y)); a box maps as x' = x * r + pad_x.
    """
    h, w = img.shape[:2]
    r = min(size / h, size / w)
    nw, nh = int(round(w * r)), int(round(h * r))
    if (nw, nh) != (w, h):
        img = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BILINEAR))
    px = (size - nw) / 2
    py = (size - nh) / 2
    left, top = int(round(px - 0.1)), int(round(py - 0.1))
    out = np.full((size, size, 3), pad_value, dtype=np.uint8)
    out[top:top + nh, left:left + nw] = img
    return out, r, (left, top)


def to_yolo_lines(boxes, w, h):
    lines = []
    for c, x1, y1, x2, y2 in boxes:
        lines.append(f"{int(c)} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} "
                     f"{(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}")
    return "\n".join(lines) + ("\n" if lines else "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--width", type=int, default=NET_SIZE)
    ap.add_argument("--height", type=int, default=NET_SIZE)
    args = ap.parse_args()
    os.makedirs(os.path.join(args.out, "images"), exist_ok=True)
    os.makedirs(os.path.join(args.out, "labels"), exist_ok=True)
    for i in range(args.n):
        rng = np.random.default_rng([args.seed, i])
        img, boxes = make_image(rng, args.width, args.height)
        Image.fromarray(img).save(os.path.join(args.out, "images", f"{i:05d}.png"))
        with open(os.path.join(args.out, "labels", f"{i:05d}.txt"), "w") as f:
            f.write(to_yolo_lines(boxes, args.width, args.height))
    with open(os.path.join(args.out, "classes.txt"), "w") as f:
        f.write("".join(c + "\n" for c in CLASSES))


if __name__ == "__main__":
    main()
