#!/usr/bin/env python3
"""Side-by-side CPU benchmark of kiln against ONNX Runtime on the models of
bench/export_models.py: latency (alternating rounds on the same inputs), load time,
peak memory, and a check of kiln's outputs against ORT's. Writes the "## CPU inference"
section of BENCHMARKS.md.

    python3 bench/side_by_side.py [--kiln build/kiln] [--quick] [--models a,b] [--threads 2,1]

Needs numpy and onnxruntime (any Python that has them; /usr/bin/python3 does).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shlex
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODELS_DIR = os.path.join(HERE, "models")
WORK_DIR = os.path.join(MODELS_DIR, "_work")  # git-ignored with bench/models/
SECTION = "## CPU inference"
RTOL, ATOL = 1e-3, 1e-4
ALL_MODELS = ["resnet50", "mobilenetv2", "efficientnet_b0", "yolov5s", "bert_base"]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- ORT worker process
# ORT runs in its own process so its peak RSS and load time are its own. It speaks JSON
# lines: it answers the start with its load time, then "run K" with K latencies, "save DIR"
# by writing its outputs, and "quit" with its peak RSS (VmHWM).
def warmup_runs(run):
    """kiln bench's default warmup rule: >= 200 ms and >= 1 run, and 5 runs unless that
    takes over 2 s."""
    t0, n = time.perf_counter(), 0
    while True:
        el = time.perf_counter() - t0
        if not (n < 1 or el < 0.2 or (n < 5 and el < 2.0)):
            return n
        run()
        n += 1


def ort_worker(model, threads, input_dir):
    import onnxruntime as ort
    feeds = {os.path.splitext(f)[0]: np.load(os.path.join(input_dir, f)) for f in sorted(os.listdir(input_dir))}
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    t0 = time.perf_counter()
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    sess.run(None, feeds)
    first_ms = (time.perf_counter() - t0) * 1e3
    n_warm = warmup_runs(lambda: sess.run(None, feeds))
    out = sys.stdout
    out.write(json.dumps({"load_ms": load_ms, "first_run_ms": first_ms, "warmup": n_warm,
                          "version": ort.__version__}) + "\n")
    out.flush()
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "run":
            lat = []
            for _ in range(int(cmd[1])):
                t0 = time.perf_counter()
                sess.run(None, feeds)
                lat.append((time.perf_counter() - t0) * 1e3)
            out.write(json.dumps({"lat": lat}) + "\n")
        elif cmd[0] == "save":
            names = [o.name for o in sess.get_outputs()]
            for n, v in zip(names, sess.run(None, feeds)):
                np.save(os.path.join(cmd[1], n.replace("/", "_").replace(":", "_") + ".npy"), v)
            out.write(json.dumps({"saved": names}) + "\n")
        elif cmd[0] == "quit":
            hwm = 0.0
            with open("/proc/self/status") as f:
                for ln in f:
                    if ln.startswith("VmHWM:"):
                        hwm = int(ln.split()[1]) / 1024.0
            out.write(json.dumps({"peak_rss_mb": hwm}) + "\n")
            out.flush()
            return
        out.flush()


class OrtProcess:
    def __init__(self, model, threads, input_dir):
        self.p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--ort-worker", model, str(threads),
                                   input_dir], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.hello = self._read()

    def _read(self):
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError("the ORT worker exited early")
        return json.loads(line)

    def ask(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        return self._read()

    def close(self):
        r = self.ask("quit")
        self.p.wait()
        return r["peak_rss_mb"]


# ---------------------------------------------------------------- inputs and checks
def make_inputs(model_path, seed):
    """Random inputs for the model's declared (static) inputs: images uniform in [0,1),
    token ids uniform in [1, 30522) with [CLS] = 101 first, attention masks all 1."""
    import onnx
    m = onnx.load(model_path, load_external_data=False)
    inits = {i.name for i in m.graph.initializer}
    rng = np.random.default_rng(seed)
    feeds = {}
    for vi in m.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else 1 for d in tt.shape.dim]
        if tt.elem_type == onnx.TensorProto.FLOAT:
            feeds[vi.name] = rng.random(shape, dtype=np.float32)
        elif tt.elem_type == onnx.TensorProto.INT64:
            if "mask" in vi.name.lower():
                feeds[vi.name] = np.ones(shape, np.int64)
            else:
                a = rng.integers(1, 30522, size=shape, dtype=np.int64)
                a[..., 0] = 101
                feeds[vi.name] = a
        else:
            raise SystemExit(f"{model_path}: input {vi.name} has element type {tt.elem_type}; add it here")
    return feeds


def compare(kiln_dir, ort_dir, names):
    rows = []
    for n in names:
        fn = n.replace("/", "_").replace(":", "_") + ".npy"
        ref = np.load(os.path.join(ort_dir, fn))
        try:
            got = np.load(os.path.join(kiln_dir, fn))
        except OSError as e:
            rows.append({"output": n, "error": str(e)})
            continue
        if got.shape != ref.shape:
            rows.append({"output": n, "error": f"shape {got.shape} vs ORT {ref.shape}"})
            continue
        g, r = got.astype(np.float64), ref.astype(np.float64)
        diff = np.abs(g - r)
        big = np.abs(r) > ATOL
        rows.append({
            "output": n, "shape": list(ref.shape),
            "max_abs": float(diff.max()) if diff.size else 0.0,
            "max_rel": float((diff[big] / np.abs(r[big])).max()) if big.any() else 0.0,
            "bad": int((diff > ATOL + RTOL * np.abs(r)).sum() + (np.isnan(g) != np.isnan(r)).sum()),
            "n": int(diff.size),
        })
    return rows


def run_cmd(cmd, timeout=None):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def kiln_bench(kiln, model, threads, iterations, input_args):
    cmd = [kiln, "bench", model, "--threads", str(threads), "--json", "--iterations", str(iterations)] + input_args
    rc, out, err = run_cmd(cmd)
    if rc != 0:
        raise RuntimeError(f"kiln bench failed ({rc}): {err.strip()[-500:]}")
    return json.loads(out)


# ---------------------------------------------------------------- one model
def bench_model(a, name, threads_list):
    path = os.path.join(MODELS_DIR, name + ".onnx")
    rel = os.path.relpath(path, ROOT)
    res = {"model": name, "runs": [], "check": None, "error": None}
    if not os.path.exists(path):
        res["error"] = f"{rel} missing: run /usr/bin/python3 bench/export_models.py {name}"
        return res
    wd = os.path.join(WORK_DIR, name)
    in_dir, ort_out, kiln_out = (os.path.join(wd, d) for d in ("inputs", "ort_out", "kiln_out"))
    for d in (in_dir, ort_out, kiln_out):
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            os.remove(os.path.join(d, f))
    feeds = make_inputs(path, seed=sorted(ALL_MODELS).index(name) if name in ALL_MODELS else 0)
    input_args = []
    for n, v in feeds.items():
        f = os.path.join(in_dir, n + ".npy")
        np.save(f, v)
        input_args += ["--input", f"{n}={f}"]

    # correctness: kiln run vs ORT (all optimizations), same inputs
    log(f"[{name}] checking outputs against ORT")
    rc, _, err = run_cmd([a.kiln, "run", path, "--output-dir", kiln_out] + input_args)
    ortp = OrtProcess(path, threads_list[0], in_dir)
    saved = ortp.ask(f"save {ort_out}")["saved"]
    ortp.close()
    if rc != 0:
        res["check"] = [{"output": "*", "error": f"kiln run failed: {err.strip()[-300:]}"}]
    else:
        res["check"] = compare(kiln_out, ort_out, saved)

    for T in threads_list:
        log(f"[{name}] threads {T}: estimating run time")
        try:
            probe = kiln_bench(a.kiln, path, T, 1, input_args + ["--warmup", "0"])
        except RuntimeError as e:
            res["error"] = str(e)
            return res
        ortp = OrtProcess(path, T, in_dir)
        est_kiln = max(probe["median_ms"], 0.01)
        est_ort = max(ortp.hello["first_run_ms"], 0.01)
        # the same K for both, sized so the slower side takes about round_s per round
        k = int(a.round_s * 1e3 / max(est_kiln, est_ort))
        k = max(a.min_iterations, min(a.max_iterations, k))
        log(f"[{name}] threads {T}: {a.rounds} rounds x {k} iterations "
            f"(kiln ~{est_kiln:.1f} ms, ORT ~{est_ort:.1f} ms per run)")
        kr, orr = [], []
        for r in range(a.rounds):
            order = ("kiln", "ort") if r % 2 == 0 else ("ort", "kiln")
            for who in order:
                if who == "kiln":
                    kr.append(kiln_bench(a.kiln, path, T, k, input_args))
                else:
                    lat = ortp.ask(f"run {k}")["lat"]
                    orr.append({"median_ms": statistics.median(lat), "p90_ms": float(np.percentile(lat, 90)),
                                "min_ms": min(lat)})
            log(f"[{name}] threads {T} round {r + 1}/{a.rounds}: kiln {kr[-1]['median_ms']:.2f} ms, "
                f"ORT {orr[-1]['median_ms']:.2f} ms")
        ort_rss = ortp.close()
        med = statistics.median
        run = {
            "threads": T, "rounds": a.rounds, "iterations": k,
            "kiln_median_ms": med([x["median_ms"] for x in kr]),
            "kiln_round_medians": [x["median_ms"] for x in kr],
            "kiln_p90_ms": med([x["p90_ms"] for x in kr]),
            "kiln_min_ms": min(x["min_ms"] for x in kr),
            "kiln_load_ms": med([x["load_ms"] for x in kr]),
            "kiln_first_run_ms": med([x["first_run_ms"] for x in kr]),
            "kiln_peak_rss_mb": max(x["peak_rss_mb"] for x in kr),
            "kiln_activation_mb": kr[-1]["activation_mb"],
            "ort_median_ms": med([x["median_ms"] for x in orr]),
            "ort_round_medians": [x["median_ms"] for x in orr],
            "ort_p90_ms": med([x["p90_ms"] for x in orr]),
            "ort_min_ms": min(x["min_ms"] for x in orr),
            "ort_load_ms": ortp.hello["load_ms"],
            "ort_first_run_ms": ortp.hello["first_run_ms"],
            "ort_peak_rss_mb": ort_rss,
            "ort_version": ortp.hello["version"],
        }
        run["ratio"] = run["kiln_median_ms"] / run["ort_median_ms"]
        res["runs"].append(run)
        log(f"[{name}] threads {T}: kiln {run['kiln_median_ms']:.2f} ms, ORT {run['ort_median_ms']:.2f} ms, "
            f"kiln/ORT {run['ratio']:.2f}x")
    return res


# ---------------------------------------------------------------- report
def machine():
    name = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.M)
        if m:
            name = m.group(1).strip()
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} logical CPUs"


def git_rev():
    try:
        rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return (rev + (" + uncommitted changes" if dirty else "")) if rev else "unknown commit"
    except OSError:
        return "unknown"


def fmt(v, digits=2):
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.{digits}f}"


def markdown(results, meta):
    L = [SECTION, ""]
    busy = max(meta["load_max"], 0) > 0.5 * (os.cpu_count() or 1)
    L.append(f"Measured {meta['date']} on {meta['machine']}; load average {meta['load_before']} before, "
             f"{meta['load_after']} after"
             + (" (other processes were competing for the CPUs: treat differences under ~20% as noise, and T = 2 "
                "numbers as pessimistic for both). " if busy else ". ") +
             f"kiln {meta['kiln_version']} at {meta['git']}; ONNX Runtime {meta['ort_version']} "
             f"(ORT_ENABLE_ALL, intra-op threads = T, inter-op 1, sequential). {meta['mode']}.")
    L.append("")
    L.append("```")
    L.append(meta["command"])
    L.append("```")
    L.append("")
    L.append("Batch 1, random weights (`bench/export_models.py`), the same random inputs for both. Latency "
             "is the median over rounds of each round's median; rounds alternate kiln and ORT "
             "(kiln: a fresh `kiln bench --json --iterations K` process each round; ORT: one session in a "
             "worker process). Load = model load + context/session creation. Peak RSS is the whole "
             "process's `VmHWM` (kiln: the `kiln bench` process; ORT: its worker, a Python process). "
             "kiln/ORT > 1 means kiln is slower.")
    L.append("")
    L.append("| model | T | kiln median ms | ORT median ms | kiln/ORT | kiln p90 | ORT p90 | kiln load ms "
             "| ORT load ms | kiln first run ms | kiln peak RSS MB | ORT peak RSS MB | kiln arena MB | rounds x K |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if not r["runs"]:
            L.append(f"| {r['model']} | - | {r['error'] or 'not run'} |" + " |" * 11)
            continue
        for x in r["runs"]:
            L.append(f"| {r['model']} | {x['threads']} | {fmt(x['kiln_median_ms'])} | {fmt(x['ort_median_ms'])} "
                     f"| {x['ratio']:.2f}x | {fmt(x['kiln_p90_ms'])} | {fmt(x['ort_p90_ms'])} "
                     f"| {fmt(x['kiln_load_ms'])} | {fmt(x['ort_load_ms'])} | {fmt(x['kiln_first_run_ms'])} "
                     f"| {x['kiln_peak_rss_mb']:.0f} | {x['ort_peak_rss_mb']:.0f} | {x['kiln_activation_mb']:.1f} "
                     f"| {x['rounds']} x {x['iterations']} |")
        if r["error"]:
            L.append(f"| {r['model']} | - | {r['error']} |" + " |" * 11)
    L.append("")
    L.append(f"Output check (`kiln run --output-dir` vs ORT on the same inputs; pass = every element within "
             f"|kiln - ort| <= {ATOL:g} + {RTOL:g} * |ort|):")
    L.append("")
    L.append("| model | output | shape | max abs err | max rel err | elements outside tolerance |")
    L.append("|---|---|---|---|---|---|")
    for r in results:
        for c in r["check"] or []:
            if "error" in c:
                L.append(f"| {r['model']} | {c['output']} | - | - | - | {c['error']} |")
            else:
                L.append(f"| {r['model']} | {c['output']} | {'x'.join(map(str, c['shape']))} | {c['max_abs']:.3g} "
                         f"| {c['max_rel']:.3g} | {c['bad']} of {c['n']}{'' if c['bad'] else ' (pass)'} |")
    L.append("")
    return "\n".join(L)


def write_section(path, text):
    """Replace (or append) the '## CPU inference' section, leaving every other section as
    it is. The file is re-read right before writing, since other tools write other sections."""
    old = open(path).read() if os.path.exists(path) else "# kiln benchmarks\n"
    lines = old.split("\n")
    start = next((i for i, ln in enumerate(lines) if ln.strip() == SECTION), None)
    if start is None:
        new = old.rstrip("\n") + "\n\n" + text.rstrip("\n") + "\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        rest = "\n".join(lines[end:])
        head = "\n".join(lines[:start]).rstrip("\n")
        new = head + "\n\n" + text.rstrip("\n") + "\n" + ("\n" + rest if rest.strip() else "")
        new = new.rstrip("\n") + "\n"
    with open(path + ".tmp", "w") as f:
        f.write(new)
    os.replace(path + ".tmp", path)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--ort-worker":
        ort_worker(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return 0
    ap = argparse.ArgumentParser(description="kiln vs ONNX Runtime, side by side (CPU)")
    ap.add_argument("--kiln", default=os.path.join(ROOT, "build", "kiln"), help="kiln binary (default build/kiln)")
    ap.add_argument("--models", default=",".join(ALL_MODELS), help="comma-separated (default all)")
    ap.add_argument("--threads", default="2,1", help="thread counts, comma-separated (default 2,1)")
    ap.add_argument("--quick", action="store_true", help="3 rounds of ~1.5 s per side (about 5 minutes)")
    ap.add_argument("--rounds", type=int, help="alternating rounds (default 5, quick 3)")
    ap.add_argument("--round-seconds", dest="round_s", type=float,
                    help="target time of one side's round; K is sized from it (default 4, quick 1.5)")
    ap.add_argument("--min-iterations", type=int, default=2, help="K at least this (default 2)")
    ap.add_argument("--max-iterations", type=int, help="K at most this (default 100, quick 20)")
    ap.add_argument("--output", default=os.path.join(ROOT, "BENCHMARKS.md"), help="markdown file to update")
    ap.add_argument("--no-write", action="store_true", help="print the section, do not write it")
    a = ap.parse_args()
    a.rounds = a.rounds or (3 if a.quick else 5)
    a.round_s = a.round_s or (1.5 if a.quick else 4.0)
    a.max_iterations = a.max_iterations or (20 if a.quick else 100)
    if a.rounds < 1 or a.round_s <= 0 or a.min_iterations < 1 or a.max_iterations < a.min_iterations:
        ap.error("rounds, round seconds and iteration limits must be positive (min <= max)")
    threads = [int(t) for t in a.threads.split(",") if t]
    models = [m for m in a.models.split(",") if m]
    if not os.access(a.kiln, os.X_OK):
        ap.error(f"{a.kiln} is not an executable (build it: make, or pass --kiln)")
    import onnxruntime
    load0 = os.getloadavg()
    kv = subprocess.run([a.kiln, "--version"], capture_output=True, text=True).stdout.split()
    meta = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "load_before": " / ".join(f"{x:.1f}" for x in load0),
        "kiln_version": kv[-1] if kv else "?",
        "git": git_rev(),
        "ort_version": onnxruntime.__version__,
        "mode": (f"Quick mode: {a.rounds} rounds, K sized for ~{a.round_s:g} s per round"
                 if a.quick else f"{a.rounds} rounds, K sized for ~{a.round_s:g} s per round")
                + f" (K in {a.min_iterations}..{a.max_iterations})",
        "command": "python3 bench/side_by_side.py " + " ".join(shlex.quote(x) for x in sys.argv[1:]),
    }
    t0 = time.time()
    results = []
    for m in models:
        r = bench_model(a, m, threads)
        if r["error"]:
            log(f"[{m}] {r['error']}")
        results.append(r)
    meta["load_after"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    meta["load_max"] = max(max(load0), os.getloadavg()[0])
    log(f"total {time.time() - t0:.0f} s")
    os.makedirs(WORK_DIR, exist_ok=True)
    with open(os.path.join(WORK_DIR, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    text = markdown(results, meta)
    print(text)
    if not a.no_write:
        write_section(a.output, text)
        log(f"wrote the '{SECTION}' section of {os.path.relpath(a.output, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
