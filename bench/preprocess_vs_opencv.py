#!/usr/bin/env python3
"""kiln letterbox + normalize vs OpenCV, side by side, one thread each.

Builds bench/preprocess_bench.c against the static libraries of a Release build, makes a
1920x1080 JPEG-decoded test image, then alternates rounds of kiln and OpenCV runs of the
same job (BGR uint8 HWC -> YOLOv5 letterbox 640x640 -> RGB float32 NCHW in [0, 1]):

  kiln fused       kiln_letterbox_to_tensor (one pass)
  kiln two-step    kiln_letterbox + kiln_image_to_tensor
  OpenCV + numpy   cv2.resize(INTER_LINEAR) + cv2.copyMakeBorder +
                   np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1)).astype(np.float32) / 255
  OpenCV blob      cv2.resize + cv2.copyMakeBorder + cv2.dnn.blobFromImage(1/255, swapRB)
  (and the warp-affine variant: kiln_warp_affine_to_tensor vs cv2.warpAffine + blobFromImage)

reports medians and ratios, checks kiln's tensor against OpenCV's, and rewrites the
"## Pre-processing: letterbox + normalize vs OpenCV" section of BENCHMARKS.md.

usage: python3 bench/preprocess_vs_opencv.py [--build build-rel] [--rounds 8] [--iters 25] [--no-write]
needs: pip install opencv-python-headless numpy; libjpeg/libpng dev headers.
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

try:
    import cv2
except ImportError:
    sys.exit("needs OpenCV: pip install opencv-python-headless")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTION = "## Pre-processing: letterbox + normalize vs OpenCV"


def sh(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, **kw)


def build(build_dir):
    libs = [os.path.join(build_dir, "libkiln_vision.a"), os.path.join(build_dir, "libkiln.a")]
    sh(["cmake", "-S", ".", "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release"], stdout=subprocess.DEVNULL)
    sh(["cmake", "--build", build_dir, "-j2", "--target", "kiln_vision", "kiln_static"], stdout=subprocess.DEVNULL)
    exe = os.path.join(build_dir, "preprocess_bench")
    sh(["cc", "-O2", "-std=c11", "-D_GNU_SOURCE", "-Iinclude", "bench/preprocess_bench.c"] + libs +
       ["-ljpeg", "-lpng", "-lm", "-lpthread", "-o", exe])
    return os.path.join(ROOT, exe)


def make_image(path_png):
    """A 1920x1080 photo-like test image (gradients, shapes, noise), JPEG-encoded at q90 and
    decoded again, so both sides start from the same JPEG-decoded pixels."""
    rng = np.random.default_rng(2024)
    h, w = 1080, 1920
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w * 200 + 30, yy / h * 180 + 40, (xx + yy) / (w + h) * 150 + 60], axis=-1)
    for _ in range(60):
        cx, cy = rng.integers(0, w), rng.integers(0, h)
        ax, ay = rng.integers(20, 300), rng.integers(20, 200)
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.ellipse(img, (int(cx), int(cy)), (int(ax), int(ay)), float(rng.integers(0, 180)), 0, 360, color, -1)
    img += rng.normal(0, 12, img.shape)
    img = np.clip(img, 0, 255).astype(np.uint8)
    ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    bgr = cv2.imdecode(jpg, cv2.IMREAD_COLOR)
    cv2.imwrite(path_png, bgr)  # lossless, so kiln reads the very same pixels
    return bgr


def letterbox(im, new_shape=(640, 640), color=(114, 114, 114)):
    """YOLOv5 utils/augmentations.py letterbox() with its defaults (auto=False here)."""
    shape = im.shape[:2]
    r = min(new_shape[0] / shape[0], new_shape[1] / shape[1])
    new_unpad = int(round(shape[1] * r)), int(round(shape[0] * r))
    dw, dh = (new_shape[1] - new_unpad[0]) / 2, (new_shape[0] - new_unpad[1]) / 2
    if shape[::-1] != new_unpad:
        im = cv2.resize(im, new_unpad, interpolation=cv2.INTER_LINEAR)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    return cv2.copyMakeBorder(im, top, bottom, left, right, cv2.BORDER_CONSTANT, value=color)


def cv_numpy(im, size):
    lb = letterbox(im, (size[1], size[0]))
    return np.ascontiguousarray(lb[:, :, ::-1].transpose(2, 0, 1)).astype(np.float32) / 255.0


def cv_blob(im, size):
    lb = letterbox(im, (size[1], size[0]))
    return cv2.dnn.blobFromImage(lb, 1 / 255.0, swapRB=True)


def fit_matrix(sw, sh_, dw, dh):
    s = min(dw / sw, dh / sh_)
    return np.array([[s, 0, -s * sw * 0.5 + dw * 0.5 + s * 0.5 - 0.5],
                     [0, s, -s * sh_ * 0.5 + dh * 0.5 + s * 0.5 - 0.5]], dtype=np.float64)


def cv_warp(im, size, m):
    warped = cv2.warpAffine(im, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=(114, 114, 114))
    return cv2.dnn.blobFromImage(warped, 1 / 255.0, swapRB=True)


def time_py(fn, iters):
    out = []
    for _ in range(3):
        fn()
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build-rel")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--iters", type=int, default=25)
    ap.add_argument("--size", type=int, default=640)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    exe = build(args.build)
    size = (args.size, args.size)
    tmp = tempfile.mkdtemp(prefix="kiln_pre_")
    png = os.path.join(tmp, "img.png")
    tens = os.path.join(tmp, "kiln.f32")
    wtens = os.path.join(tmp, "kiln_warp.f32")
    im = make_image(png)
    m = fit_matrix(im.shape[1], im.shape[0], size[0], size[1])

    samples = {k: [] for k in ["kiln_fused", "kiln_two_step", "kiln_warp", "cv_numpy", "cv_blob", "cv_warp"]}
    for r in range(args.rounds):  # alternate: kiln round, then OpenCV round
        out = subprocess.run([exe, png, str(args.iters), str(size[0]), str(size[1]), tens, wtens], check=True,
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            name, *vals = line.split()
            samples[name] += [float(v) for v in vals]
        samples["cv_numpy"] += time_py(lambda: cv_numpy(im, size), args.iters)
        samples["cv_blob"] += time_py(lambda: cv_blob(im, size), args.iters)
        samples["cv_warp"] += time_py(lambda: cv_warp(im, size, m), args.iters)
        print(f"round {r + 1}/{args.rounds} done", flush=True)
    med = {k: statistics.median(v) / 1000.0 for k, v in samples.items()}

    # accuracy: kiln's fused tensor vs both OpenCV routes (same pixels in)
    kt = np.fromfile(tens, dtype=np.float32).reshape(3, size[1], size[0])
    ref_np = cv_numpy(im, size)
    ref_blob = cv_blob(im, size)[0]
    d_np = np.abs(kt - ref_np)
    d_blob = np.abs(kt - ref_blob)
    acc = (f"max |kiln - OpenCV+numpy| = {d_np.max():.6f} ({d_np.max() * 255:.2f}/255), "
           f"mean {d_np.mean():.2e}, {np.count_nonzero(d_np > 1e-6) / d_np.size * 100:.3f}% of values differ; "
           f"max |kiln - blobFromImage| = {d_blob.max():.6f}")
    # 1920 -> 640 samples whole source pixels (a 3x step lands on pixel centres), so also
    # compare sizes where the bilinear weights are non-trivial
    extra = []
    for (w, h) in [(1000, 667), (1917, 1079), (1280, 720), (333, 250)]:
        sub = cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA)
        sp = os.path.join(tmp, f"img_{w}x{h}.png")
        st = os.path.join(tmp, f"kiln_{w}x{h}.f32")
        cv2.imwrite(sp, sub)
        subprocess.run([exe, sp, "1", str(size[0]), str(size[1]), st], check=True, capture_output=True)
        ref = cv_numpy(sub, size)
        d = np.abs(np.fromfile(st, dtype=np.float32).reshape(ref.shape) - ref) * 255
        extra.append(f"{w}x{h}: max {d.max():.2f}/255, {np.count_nonzero(d > 0.5) / d.size * 100:.3f}% of values off by a level")
    kw = np.fromfile(wtens, dtype=np.float32).reshape(3, size[1], size[0])
    d_w = np.abs(kw - cv_warp(im, size, m)[0])

    rows = [
        ("kiln fused `kiln_letterbox_to_tensor`", med["kiln_fused"]),
        ("kiln two-step `kiln_letterbox` + `kiln_image_to_tensor`", med["kiln_two_step"]),
        ("OpenCV resize + copyMakeBorder + numpy transpose/astype/255", med["cv_numpy"]),
        ("OpenCV resize + copyMakeBorder + `cv2.dnn.blobFromImage`", med["cv_blob"]),
        ("kiln `kiln_warp_affine_to_tensor` (affine letterbox)", med["kiln_warp"]),
        ("OpenCV `cv2.warpAffine` + `cv2.dnn.blobFromImage`", med["cv_warp"]),
    ]
    cmd = "python3 bench/preprocess_vs_opencv.py " + " ".join(a for a in sys.argv[1:] if a != "--no-write")
    try:
        load = os.getloadavg()
        load_s = f"load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} at the end"
    except OSError:
        load_s = "load unknown"
    lines = [SECTION, "",
             f"Job: 1920x1080 JPEG-decoded BGR image -> YOLOv5 letterbox to {size[0]}x{size[1]} (bilinear, pad 114) "
             "-> RGB float32 NCHW in [0, 1]. One thread each (`cv2.setNumThreads(1)`; kiln is single-threaded). "
             f"{args.rounds} alternating rounds x {args.iters} runs per method; medians of all runs.", "",
             "| method | median ms | kiln fused / this |", "| --- | ---: | ---: |"]
    for name, v in rows:
        lines.append(f"| {name} | {v:.3f} | {med['kiln_fused'] / v:.2f} |")
    lines += ["",
              f"- kiln fused vs OpenCV + numpy: **{med['cv_numpy'] / med['kiln_fused']:.2f}x** faster; "
              f"vs OpenCV + blobFromImage: **{med['cv_blob'] / med['kiln_fused']:.2f}x** faster "
              f"(ratio kiln/OpenCV = {med['kiln_fused'] / med['cv_numpy']:.2f} and {med['kiln_fused'] / med['cv_blob']:.2f}).",
              f"- Accuracy, same input pixels: {acc}. The 3x step of 1920 -> 640 lands on source pixel centres, "
              "so other source sizes (same 640x640 letterbox, non-trivial bilinear weights) are compared too: "
              + "; ".join(extra) + ". kiln copies OpenCV's INTER_LINEAR fixed-point arithmetic (11-bit weights, "
              "its SIMD vertical rounding, its edge clamping), so the 8-bit samples are cv2.resize's; the float "
              "residue (~1e-8) is v * (1/255) vs v / 255.",
              f"- Warp path (same centred fit matrix): max |kiln - OpenCV warpAffine| = {d_w.max() * 255:.1f}/255, "
              f"mean {d_w.mean() * 255:.3f}/255; for 1920 -> 640 the samples fall on pixel centres, elsewhere they "
              "differ by design (kiln: exact 11-bit weights; OpenCV warpAffine: 1/32-pixel positions).",
              f"- Machine: {cpu_name()}, {os.cpu_count()} cores shared with other jobs ({load_s}); "
              f"OpenCV {cv2.__version__}, numpy {np.__version__}, Python {platform.python_version()}; "
              "kiln built by CMake Release (-O3), AVX2 clone picked at run time.",
              f"- Command: `{cmd.strip()}`", ""]
    text = "\n".join(lines)
    print("\n" + text)
    if not args.no_write:
        write_section(text)


def write_section(text):
    path = os.path.join(ROOT, "BENCHMARKS.md")
    if os.path.exists(path):
        with open(path) as f:
            doc = f.read()
    else:
        doc = ("# kiln benchmarks\n\nMethod: each benchmark in bench/ runs kiln and its peer side by side in one "
               "session, alternating rounds, and reports medians and ratios; the exact command is given "
               "with each table.\n")
    start = doc.find(SECTION)
    if start < 0:
        doc = doc.rstrip("\n") + "\n\n" + text
    else:
        nxt = doc.find("\n## ", start + len(SECTION))
        doc = doc[:start] + text + (doc[nxt + 1:] if nxt >= 0 else "")
    with open(path, "w") as f:
        f.write(doc if doc.endswith("\n") else doc + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
