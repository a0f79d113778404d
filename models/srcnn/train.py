#!/usr/bin/env python3
# Trains an SRCNN-style super-resolution model whose upscale factor is a runtime input, on
# scikit-learn's two bundled photos, and exports models/srcnn/srcnn.onnx plus samples/metrics.
#
# Usage: /usr/bin/python3 models/srcnn/train.py [--steps 6000] [--seed 0]   (~6 min on 1 core)
#
# Model contract (see models/README.md):
#   input  "input"  float32 [1, 3, H, W]  RGB planar, value = pixel / 255
#   input  "factor" float32 [4]           [1, 1, s, s] (s = 2, 3, 4 trained; any s > 0 runs)
#   output "output" float32 [1, 3, H*s, W*s]  same scale as the input (x 255, round, clamp)
# Graph: up = Resize(input, scales=factor, cubic, half_pixel, a = -0.75) (= torch bicubic,
# align_corners=False), then Sub 0.5, Conv 9x9 (64) -> Relu -> Conv 1x1 (32) -> Relu -> Conv 5x5 (3),
# output = up + that residual. The residual skip (VDSR-style) is the one change from the
# original SRCNN: the net starts as plain bicubic and only has to learn the missing detail,
# which makes a few minutes of single-core CPU training enough to beat bicubic.
#
# Data: china.jpg and flower.jpg (427x640 each). A 240x216 region of china.jpg (temple,
# lake, trees) is held out for evaluation and the sample image; training patches never
# overlap it (plus a margin). Low-res = bicubic downscale (antialiased, like PIL/MATLAB
# imresize) of the patch, quantized to 8 bits; target = the patch.
import argparse
import json
import os
import random
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
SCALES = (2, 3, 4)
# held-out box in china.jpg: rows [Y0, Y1), cols [X0, X1); sizes divisible by 12 so every
# trained scale divides them
EVAL_Y0, EVAL_Y1, EVAL_X0, EVAL_X1 = 192, 408, 240, 480
MARGIN = 8
# sample: a 192x128 crop of the held-out box (temple roof, columns, lake), stored 2x down
SAMPLE_Y0, SAMPLE_X0, SAMPLE_H, SAMPLE_W = 232, 250, 128, 192


def set_seeds(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Body(nn.Module):
    # The conv part; the bicubic upsampling in front of it is built in ONNX directly because
    # its scales come from a graph input.
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 9, padding=4)
        self.conv2 = nn.Conv2d(64, 32, 1)
        self.conv3 = nn.Conv2d(32, 3, 5, padding=2)
        nn.init.normal_(self.conv3.weight, std=1e-3)
        nn.init.zeros_(self.conv3.bias)

    def forward(self, up):
        # centering the input keeps about half of conv1's ReLUs alive from the start; without
        # it training tends to collapse to a zero residual (all ReLUs dead = plain bicubic)
        return self.conv3(F.relu(self.conv2(F.relu(self.conv1(up - 0.5)))))


def upsample(x, s):
    return F.interpolate(x, scale_factor=float(s), mode="bicubic", align_corners=False)


def forward(body, lr, s):
    up = upsample(lr, s)
    return up + body(up)


def downscale(hr, s):
    # bicubic with antialiasing (a proper downscale), then 8-bit quantization as in a PNG
    h, w = hr.shape[-2] // s, hr.shape[-1] // s
    lr = F.interpolate(hr, size=(h, w), mode="bicubic", align_corners=False, antialias=True)
    return torch.round(lr.clamp(0, 1) * 255) / 255


def psnr(a, b, shave):
    if shave:
        a, b = a[..., shave:-shave, shave:-shave], b[..., shave:-shave, shave:-shave]
    mse = torch.mean((a - b) ** 2).item()
    return 10 * np.log10(1.0 / mse)


def quantize(x):
    return torch.round(x.clamp(0, 1) * 255) / 255


def load_images():
    from sklearn.datasets import load_sample_images
    d = load_sample_images()
    names = [os.path.basename(f) for f in d.filenames]
    imgs = {n: torch.from_numpy(np.array(i)).permute(2, 0, 1).float() / 255
            for n, i in zip(names, d.images)}
    return imgs["china.jpg"], imgs["flower.jpg"]


def overlaps_eval(y, x, p):
    return not (y + p <= EVAL_Y0 - MARGIN or y >= EVAL_Y1 + MARGIN or
                x + p <= EVAL_X0 - MARGIN or x >= EVAL_X1 + MARGIN)


def sample_batch(china, flower, n, p, rng):
    out = []
    while len(out) < n:
        img = china if rng.random() < 0.6 else flower
        _, h, w = img.shape
        y, x = rng.randrange(h - p + 1), rng.randrange(w - p + 1)
        if img is china and overlaps_eval(y, x, p):
            continue
        t = img[:, y:y + p, x:x + p]
        if rng.random() < 0.5:
            t = t.flip(2)
        if rng.random() < 0.5:
            t = t.flip(1)
        if rng.random() < 0.5:
            t = t.transpose(1, 2)
        out.append(t)
    return torch.stack(out)


def evaluate(body, hr):
    res = {}
    with torch.no_grad():
        for s in SCALES:
            lr = downscale(hr, s)
            bic = quantize(upsample(lr, s))
            mod = quantize(forward(body, lr, s))
            res[str(s)] = {"bicubic": round(psnr(bic, hr, s), 3), "model": round(psnr(mod, hr, s), 3)}
    return res


def export(body, path):
    import onnx
    from onnx import TensorProto, helper
    tmp = path + ".body.onnx"
    body.eval()
    torch.onnx.export(body, torch.zeros(1, 3, 24, 24), tmp, opset_version=17,
                      input_names=["up"], output_names=["residual"],
                      dynamic_axes={"up": {2: "out_height", 3: "out_width"},
                                    "residual": {2: "out_height", 3: "out_width"}})
    bm = onnx.load(tmp)
    os.remove(tmp)
    nodes = [helper.make_node("Resize", ["input", "", "factor"], ["upsampled"], name="upsample",
                              mode="cubic", coordinate_transformation_mode="half_pixel",
                              cubic_coeff_a=-0.75, exclude_outside=0)]
    for nd in bm.graph.node:
        nd.input[:] = ["upsampled" if i == "up" else i for i in nd.input]
        nodes.append(nd)
    nodes.append(helper.make_node("Add", ["upsampled", "residual"], ["output"], name="skip"))
    graph = helper.make_graph(
        nodes, "srcnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "height", "width"]),
         helper.make_tensor_value_info("factor", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, "out_height", "out_width"])],
        initializer=list(bm.graph.initializer))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                          producer_name="kiln models/srcnn/train.py")
    m.ir_version = 8
    m.doc_string = ("SRCNN-style x s super-resolution, s a runtime input: input [1,3,H,W] RGB "
                    "pixel/255, factor [1,1,s,s] -> output [1,3,H*s,W*s]")
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return m


def ort_run(sess, x, s):
    return sess.run(["output"], {"input": x, "factor": np.array([1, 1, s, s], np.float32)})[0]


def to_u8_rgb(planar):
    # [1,3,H,W] float in 0..1 -> HxWx3 uint8, the same rounding as kiln upscale (lrintf: half
    # to even, like np.rint)
    return np.clip(np.rint(planar[0].transpose(1, 2, 0) * 255), 0, 255).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=48)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    set_seeds(args.seed)
    rng = random.Random(args.seed)
    china, flower = load_images()
    hr_eval = china[:, EVAL_Y0:EVAL_Y1, EVAL_X0:EVAL_X1].unsqueeze(0).contiguous()

    body = Body()
    opt = torch.optim.Adam(body.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps, eta_min=args.lr * 0.02)
    print("before training:", evaluate(body, hr_eval))
    t0 = time.time()
    run_loss = 0.0
    for step in range(1, args.steps + 1):
        s = rng.choice(SCALES)
        hr = sample_batch(china, flower, args.batch, args.patch, rng)
        lr = downscale(hr, s)
        loss = F.mse_loss(forward(body, lr, s), hr)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        run_loss += loss.item()
        if step % 100 == 0:
            print(f"step {step}: loss {run_loss / 100:.6f} ({time.time() - t0:.0f} s)", flush=True)
            run_loss = 0.0
        if step % 500 == 0 or step == args.steps:
            print("  eval:", evaluate(body, hr_eval), flush=True)
    train_s = time.time() - t0
    body.eval()
    result = evaluate(body, hr_eval)

    # export, then check the assembled graph against torch (bicubic interpolate + body)
    import onnxruntime as ort
    path = os.path.join(HERE, "srcnn.onnx")
    export(body, path)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    check = {}
    with torch.no_grad():
        x = downscale(hr_eval, 4)[..., :40, :52]
        for s in (2, 3, 4):
            ref = forward(body, x, s).numpy()
            got = ort_run(sess, x.numpy(), s)
            assert got.shape == ref.shape, (got.shape, ref.shape)
            check[str(s)] = float(np.abs(got - ref).max())
    print("onnxruntime vs torch max |diff|:", check)
    assert max(check["2"], check["3"]) < 1e-4, check

    # sample: held-out crop, 2x down (what the demo and tests/apps/test_upscale.sh feed kiln),
    # and onnxruntime's x2 / x3 outputs with kiln upscale's pre/post-processing
    from PIL import Image
    sd = os.path.join(HERE, "samples")
    os.makedirs(sd, exist_ok=True)
    high = china[:, SAMPLE_Y0:SAMPLE_Y0 + SAMPLE_H, SAMPLE_X0:SAMPLE_X0 + SAMPLE_W].unsqueeze(0)
    assert SAMPLE_Y0 >= EVAL_Y0 and SAMPLE_Y0 + SAMPLE_H <= EVAL_Y1
    assert SAMPLE_X0 >= EVAL_X0 and SAMPLE_X0 + SAMPLE_W <= EVAL_X1
    low = downscale(high, 2)
    low_u8 = to_u8_rgb(low.numpy())
    Image.fromarray(to_u8_rgb(high.numpy())).save(os.path.join(sd, "high.png"), optimize=True)
    Image.fromarray(low_u8).save(os.path.join(sd, "low.png"), optimize=True)
    low_in = (low_u8.astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()
    sample = {}
    for s in (2, 3):
        out = to_u8_rgb(ort_run(sess, low_in, s))
        Image.fromarray(out).save(os.path.join(sd, f"low_x{s}_ref.png"), optimize=True)
        if s == 2:
            hr_u8 = to_u8_rgb(high.numpy()).astype(np.float64)
            bic = to_u8_rgb(quantize(upsample(torch.from_numpy(low_in), 2)).numpy()).astype(np.float64)
            p = lambda a: round(float(10 * np.log10(255.0 ** 2 / np.mean((a[2:-2, 2:-2] - hr_u8[2:-2, 2:-2]) ** 2))), 3)
            sample = {"bicubic": p(bic), "model": p(out.astype(np.float64))}

    n_params = sum(p.numel() for p in body.parameters())
    metrics = {
        "task": "x s super-resolution (s runtime input), RGB",
        "psnr_db": result,
        "psnr_note": ("RGB PSNR on the held-out 240x216 region of china.jpg (rows %d-%d, cols %d-%d), "
                      "low-res = antialiased bicubic downscale quantized to 8 bits, outputs "
                      "quantized to 8 bits, s-pixel border shaved" % (EVAL_Y0, EVAL_Y1 - 1, EVAL_X0, EVAL_X1 - 1)),
        "sample_x2_psnr_db": sample,
        "onnxruntime_vs_torch_max_abs": check,
        "params": n_params,
        "onnx_bytes": os.path.getsize(path),
        "steps": args.steps, "batch": args.batch, "patch": args.patch, "lr": args.lr,
        "seed": args.seed,
        "train_seconds": round(train_s, 1),
        "threads": 1,
        "torch": torch.__version__,
    }
    with open(os.path.join(HERE, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
        f.write("\n")
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
