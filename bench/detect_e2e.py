#!/usr/bin/env python3
"""End-to-end share of pre/post-processing in `kiln detect` for YOLOv5s-640 on a
1920x1080 photo: decode, letterbox+normalize (pre), inference, decode+NMS+unletterbox
(post), as printed by kiln detect for each image. The image is scikit-learn's bundled
china.jpg photo scaled to 1920x1080 (needs scikit-learn + Pillow, or falls back to a
synthetic gradient image written with Pillow).

  python3 bench/detect_e2e.py [--kiln build/kiln] [--model bench/models/yolov5s.onnx] [--runs 7]
"""
import argparse, os, re, statistics, subprocess, sys, tempfile


def make_image(path):
    from PIL import Image
    try:
        from sklearn.datasets import load_sample_image
        img = Image.fromarray(load_sample_image("china.jpg"))
        src = "scikit-learn china.jpg"
    except Exception:
        import numpy as np
        y, x = np.mgrid[0:1080, 0:1920]
        img = Image.fromarray(np.stack([x % 256, y % 256, (x + y) % 256], -1).astype("uint8"))
        src = "synthetic gradient"
    img.resize((1920, 1080), Image.BILINEAR).save(path, quality=92)
    return src


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default="build/kiln")
    ap.add_argument("--model", default="bench/models/yolov5s.onnx")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    img = os.path.join(tmp, "photo_1920x1080.jpg")
    src = make_image(img)
    cmd = [a.kiln, "detect", a.model] + [img] * a.runs + ["--threads", str(a.threads), "--conf", "0.25"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rx = re.compile(r"decode ([\d.]+) ms, pre ([\d.]+) ms, inference ([\d.]+) ms, post ([\d.]+) ms")
    rows = [tuple(map(float, m.groups())) for m in rx.finditer(out)][1:]  # drop the cold first run
    if not rows:
        sys.exit("no timings in kiln output:\n" + out)
    dec, pre, inf, post = (statistics.median(c) for c in zip(*rows))
    e2e = dec + pre + inf + post
    print(f"image: 1920x1080 JPEG ({src}); model {a.model}; threads {a.threads}; {len(rows)} warm runs (medians)")
    print(f"decode {dec:.2f} ms | pre (letterbox+normalize) {pre:.3f} ms | inference {inf:.1f} ms | post (decode+NMS) {post:.3f} ms")
    print(f"pre+post = {pre + post:.3f} ms = {100 * (pre + post) / e2e:.2f}% of end-to-end {e2e:.1f} ms "
          f"({100 * (pre + post) / (e2e - dec):.2f}% excluding JPEG decode)")
    print("command: " + " ".join(["python3", "bench/detect_e2e.py"] + sys.argv[1:]))


if __name__ == "__main__":
    main()
