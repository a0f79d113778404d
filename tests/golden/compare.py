#!/usr/bin/env python3
# Compares kiln's outputs with the stored ONNX Runtime outputs of one golden data set.
# Needs only python3 + numpy (no torch, no onnxruntime), so `make check` can run it.
#
# usage: compare.py [--rtol R] [--atol A] REF_DIR GOT_DIR
#   every REF_DIR/<name>.npy must have a GOT_DIR/<name>.npy of the same shape and dtype
#   with |got - ref| <= atol + rtol * |ref| elementwise (NaN only where ref is NaN,
#   infinities equal). Integer and bool outputs must match exactly.
# Prints one line: "max_abs X max_rel Y tol_used Z" (max_rel is over elements with
# |ref| > atol, so near-zero references do not dominate it; tol_used is the largest
# |got - ref| / (atol + rtol * |ref|), <= 1 when passing), then one line per problem;
# exit 1 on any.
import argparse
import os
import sys

import numpy as np


def compare(ref, got, rtol, atol):
    """Returns (max_abs, max_rel, tol_used, problem or None)."""
    if ref.shape != got.shape:
        return None, None, None, f"shape {list(got.shape)}, expected {list(ref.shape)}"
    if ref.dtype != got.dtype:
        return None, None, None, f"dtype {got.dtype}, expected {ref.dtype}"
    if ref.size == 0:
        return 0.0, 0.0, 0.0, None
    if ref.dtype.kind != "f":
        bad = int(np.count_nonzero(ref != got))
        d = np.abs(ref.astype(np.float64) - got.astype(np.float64))
        used = float("inf") if bad else 0.0  # integers must match exactly
        return float(d.max()), 0.0, used, (f"{bad} of {ref.size} elements differ" if bad else None)
    with np.errstate(invalid="ignore", over="ignore"):
        return _compare_float(ref, got, rtol, atol)


def _compare_float(ref, got, rtol, atol):
    r = ref.astype(np.float64)
    g = got.astype(np.float64)
    fin = np.isfinite(r)
    special_bad = int(np.count_nonzero(~fin & ~((np.isnan(r) & np.isnan(g)) | (r == g))))
    gnan_bad = int(np.count_nonzero(fin & ~np.isfinite(g)))
    d = np.where(fin & np.isfinite(g), np.abs(g - r), 0.0)
    max_abs = float(d.max())
    big = fin & (np.abs(r) > atol)
    max_rel = float((d[big] / np.abs(r[big])).max()) if big.any() else 0.0
    used = float((d / (atol + rtol * np.abs(np.where(fin, r, 0.0)))).max())
    over = fin & np.isfinite(g) & (d > atol + rtol * np.abs(r))
    nover = int(np.count_nonzero(over))
    problems = []
    if nover:
        i = np.unravel_index(int(np.argmax(np.where(over, d - rtol * np.abs(r), -1.0))),
                             ref.shape)
        problems.append(f"{nover} of {ref.size} elements out of tolerance, worst at "
                        f"{list(int(k) for k in i)}: got {g[i]:.7g}, expected {r[i]:.7g}")
    if gnan_bad:
        problems.append(f"{gnan_bad} elements NaN/Inf where the reference is finite")
    if special_bad:
        problems.append(f"{special_bad} NaN/Inf reference elements not matched")
    return max_abs, max_rel, used, ("; ".join(problems) or None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rtol", type=float, default=1e-3)
    ap.add_argument("--atol", type=float, default=1e-5)
    ap.add_argument("ref_dir")
    ap.add_argument("got_dir")
    a = ap.parse_args()
    names = sorted(f[:-4] for f in os.listdir(a.ref_dir) if f.endswith(".npy"))
    if not names:
        print(f"no reference outputs in {a.ref_dir}")
        return 1
    worst_abs = worst_rel = worst_used = 0.0
    problems = []
    for n in names:
        gp = os.path.join(a.got_dir, n + ".npy")
        if not os.path.exists(gp):
            problems.append(f"output '{n}': kiln wrote no {n}.npy")
            continue
        try:
            got = np.load(gp, allow_pickle=False)
        except Exception as e:  # malformed .npy written by kiln
            problems.append(f"output '{n}': cannot read {gp}: {e}")
            continue
        ref = np.load(os.path.join(a.ref_dir, n + ".npy"), allow_pickle=False)
        ma, mr, mu, p = compare(ref, got, a.rtol, a.atol)
        if ma is not None:
            worst_abs, worst_rel = max(worst_abs, ma), max(worst_rel, mr)
            worst_used = max(worst_used, mu)
        if p:
            problems.append(f"output '{n}': {p}")
    print(f"max_abs {worst_abs:.3g} max_rel {worst_rel:.3g} tol_used {worst_used:.3g}")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
