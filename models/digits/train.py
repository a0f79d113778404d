#!/usr/bin/env python3
# Trains the 8x8 handwritten-digit CNN on scikit-learn's bundled digits set and exports
# models/digits/digits.onnx plus labels, held-out sample images and measured accuracy.
#
# Usage: /usr/bin/python3 models/digits/train.py [--epochs 80] [--seed 0]
#
# Preprocessing contract (see models/README.md): input "input" float32 [N,1,8,8],
# value = pixel / 255 for an 8-bit grayscale image where ink is bright (255) and paper is
# dark (0). The data set stores 0..16 per pixel; training uses value / 16, and the sample
# PNGs store pixel = round(value * 255 / 16), so pixel / 255 reproduces the training scale.
import argparse
import json
import os
import random
import re
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def set_seeds(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class DigitNet(nn.Module):
    # Small VGG-style CNN: 8x8 -> 4x4 -> 2x2 -> 10 logits. BatchNorm is folded into the
    # convolutions by the exporter in eval mode, so the ONNX graph is Conv/Relu/MaxPool/Gemm.
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 32, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(32)
        self.c2 = nn.Conv2d(32, 32, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(32)
        self.c3 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.b3 = nn.BatchNorm2d(64)
        self.c4 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
        self.b4 = nn.BatchNorm2d(64)
        self.drop = nn.Dropout(0.3)
        self.fc1 = nn.Linear(64 * 2 * 2, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.b1(self.c1(x)))
        x = F.max_pool2d(F.relu(self.b2(self.c2(x))), 2)
        x = F.relu(self.b3(self.c3(x)))
        x = F.max_pool2d(F.relu(self.b4(self.c4(x))), 2)
        x = torch.flatten(x, 1)
        x = self.drop(F.relu(self.fc1(x)))
        return self.fc2(x)


def augment(x, rng):
    # Random shift by -1..1 pixels per axis with zero fill (the background value), plus a
    # mild contrast jitter; x is [B,1,8,8] float in [0,1].
    b = x.shape[0]
    out = torch.zeros_like(x)
    padded = F.pad(x, (1, 1, 1, 1))
    dy = rng.integers(-1, 2, size=b)
    dx = rng.integers(-1, 2, size=b)
    for i in range(b):
        oy, ox = 1 + dy[i], 1 + dx[i]
        out[i] = padded[i, :, oy:oy + 8, ox:ox + 8]
    gain = torch.from_numpy(rng.uniform(0.85, 1.0, size=(b, 1, 1, 1)).astype(np.float32))
    return (out * gain).clamp_(0, 1)


def stratified_split(y, test_frac, seed):
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for c in range(10):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        n_test = int(round(len(idx) * test_frac))
        test_idx.extend(idx[:n_test])
        train_idx.extend(idx[n_test:])
    return np.sort(np.array(train_idx)), np.sort(np.array(test_idx))


def write_png_gray(path, img_u8):
    from PIL import Image
    Image.fromarray(img_u8, mode="L").save(path)


def dump_json(obj):
    # Indented JSON with each confusion-matrix row on one line.
    text = json.dumps(obj, indent=1)
    text = re.sub(r"\[\s+([-0-9,\s]+?)\s+\]", lambda m: "[" + ", ".join(m.group(1).split()).replace(",,", ",") + "]", text)
    return text + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=80)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--test-frac", type=float, default=0.25)
    ap.add_argument("--out", default=HERE)
    args = ap.parse_args()

    torch.set_num_threads(2)
    set_seeds(args.seed)
    from sklearn.datasets import load_digits
    ds = load_digits()
    images = ds.images.astype(np.float32)  # [1797,8,8], 0..16
    labels = ds.target.astype(np.int64)
    tr, te = stratified_split(labels, args.test_frac, args.seed)
    x_all = torch.from_numpy(images / 16.0).unsqueeze(1)  # [N,1,8,8] in [0,1]
    y_all = torch.from_numpy(labels)
    xtr, ytr, xte, yte = x_all[tr], y_all[tr], x_all[te], y_all[te]
    print(f"train {len(tr)}  test {len(te)}")

    model = DigitNet()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps_per_epoch = (len(tr) + 63) // 64
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch)
    rng = np.random.default_rng(args.seed + 1)
    t0 = time.time()
    for ep in range(args.epochs):
        model.train()
        perm = torch.from_numpy(rng.permutation(len(tr)))
        tot, correct, loss_sum = 0, 0, 0.0
        for i in range(0, len(tr), 64):
            idx = perm[i:i + 64]
            xb = augment(xtr[idx], rng)
            yb = ytr[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb, label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == yb).sum().item()
            tot += len(idx)
        if (ep + 1) % 10 == 0 or ep == 0:
            model.eval()
            with torch.no_grad():
                acc = (model(xte).argmax(1) == yte).float().mean().item()
            print(f"epoch {ep + 1:3d}  loss {loss_sum / tot:.4f}  train_acc {correct / tot:.4f}"
                  f"  test_acc {acc:.4f}  ({time.time() - t0:.1f}s)", flush=True)

    model.eval()
    with torch.no_grad():
        logits_te = model(xte).numpy()
    pred = logits_te.argmax(1)
    acc = float((pred == yte.numpy()).mean())
    conf = np.zeros((10, 10), dtype=np.int64)
    for t, p in zip(yte.numpy(), pred):
        conf[t, p] += 1
    print(f"held-out accuracy {acc:.4f} ({int((pred == yte.numpy()).sum())}/{len(te)})")

    # Export. The classic TorchScript exporter with a dynamic batch axis.
    onnx_path = os.path.join(args.out, "digits.onnx")
    torch.onnx.export(model, torch.zeros(1, 1, 8, 8), onnx_path, opset_version=17,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=True)
    import onnx
    import onnxruntime as ort
    onnx.checker.check_model(onnx.load(onnx_path))
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    ort_logits = sess.run(["logits"], {"input": xte.numpy()})[0]
    max_diff = float(np.abs(ort_logits - logits_te).max())
    same = bool((ort_logits.argmax(1) == pred).all())
    print(f"ORT vs torch: max |diff| {max_diff:.2e}, identical predictions: {same}")
    if not same:
        raise SystemExit("ONNX Runtime predictions differ from torch")

    # The 8-bit PNG quantizes value*255/16; check the model is unaffected by that rounding.
    q = np.round(images[te] * 255.0 / 16.0).astype(np.uint8)
    xq = (q.astype(np.float32) / 255.0)[:, None]
    pred_q = sess.run(["logits"], {"input": xq})[0].argmax(1)
    acc_q = float((pred_q == yte.numpy()).mean())
    print(f"held-out accuracy through 8-bit PNG quantization: {acc_q:.4f}")

    with open(os.path.join(args.out, "labels.txt"), "w") as f:
        f.write("".join(f"{c}\n" for c in range(10)))

    # One held-out sample per class: the first test index of that class, correctly
    # classified so the samples double as a smoke test.
    sdir = os.path.join(args.out, "samples")
    os.makedirs(sdir, exist_ok=True)
    samples = []
    for c in range(10):
        for j, gi in enumerate(te):
            if labels[gi] == c and pred_q[j] == c:
                img = q[j]
                name = f"digit_{c}_idx{gi}"
                write_png_gray(os.path.join(sdir, name + ".png"), img)
                np.save(os.path.join(sdir, name + ".npy"),
                        (img.astype(np.float32) / 255.0).reshape(1, 1, 8, 8))
                samples.append({"file": name + ".png", "label": c, "dataset_index": int(gi)})
                break

    result = {
        "dataset": "sklearn.datasets.load_digits (UCI optdigits test part, 1797 images 8x8, values 0..16)",
        "seed": args.seed,
        "epochs": args.epochs,
        "split": f"stratified, {args.test_frac:.0%} held out",
        "n_train": int(len(tr)),
        "n_test": int(len(te)),
        "accuracy": round(acc, 6),
        "accuracy_png_quantized": round(acc_q, 6),
        "ort_max_abs_diff_logits": max_diff,
        "confusion_matrix": {"rows": "true label", "cols": "predicted label", "matrix": conf.tolist()},
        "samples": samples,
        "train_seconds": round(time.time() - t0, 1),
        "torch": torch.__version__,
    }
    with open(os.path.join(args.out, "accuracy.json"), "w") as f:
        f.write(dump_json(result))
    print(f"wrote {onnx_path} ({os.path.getsize(onnx_path)} bytes)")


if __name__ == "__main__":
    main()
