#!/usr/bin/env python3
"""Training steps of mmif and of the official PyTorch code, side by side, timed honestly.

For each procedure (CDDFuse phase I and II, EMMA pseudo-sensor, EMMA U-Fuser, FILM) it runs
`mmif train --max-steps N` and `scripts/train_bench_torch.py` (the official modules' step) on the
same batch shapes, alternately (round r starts with mmif when r is even, with PyTorch when odd),
each in its own process, and before every run waits until the 1-minute load average is below
--max-load (PyTorch's thread pool degrades far more than mmif's on an oversubscribed machine, so
figures taken under load measure the load, not the code). Per process the step time is the median
of the steps after the first (the first includes warm-up); the report gives, per procedure and
side, the median over the rounds, their min-max, the peak RSS (`wait4`), the load before each
run, and the ratio mmif / PyTorch. A run that fails (e.g. killed for memory) is reported as such.

mmif's data: `mmif prepare` patches of the images in --ir-dir / --vis-dir (default: the
RoadScene pairs of the official CDDFuse repository) at the batch's patch size; PyTorch's: uniform
random tensors of the same shape (step times do not depend on the values). FILM: 288x384 whole
images (its official network is built for that size only) with zero text features (T = 149).
EMMA's U-Fuser trains against pseudo-sensors made by a one-step `mmif train -m emma-ai` run
(PyTorch: randomly initialised UNet5s); the weights do not change the step's cost.

Setup: `cargo build --release -p mmif-cli`; clone the official repositories into --official
(default data/, git-ignored): Zhaozixiang1228/MMIF-CDDFuse, Zhaozixiang1228/MMIF-EMMA,
Zhaozixiang1228/IF-FILM; `pip install torch kornia einops h5py` (timm is optional, see
train_bench_torch.py).

    python3 scripts/train_bench.py                       # official batch shapes, 3 rounds, load < 1
    python3 scripts/train_bench.py --tiny --max-load 100 --rounds 1 --steps 2   # a smoke test
    python3 scripts/train_bench.py --only cddfuse1 --shape cddfuse1=2x64 --json out.json
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

# procedure -> (mmif train -m, official batch, official patch side, tiny batch, tiny side)
PROCEDURES = {
    "cddfuse1": ("cddfuse", 8, 128, 2, 32),
    "cddfuse2": ("cddfuse", 8, 128, 2, 32),
    "emma-ai": ("emma-ai", 64, 128, 2, 32),
    "emma": ("emma", 4, 128, 1, 32),
    "film": ("film", 2, 288, 1, 288),
}
LABELS = {
    "cddfuse1": "CDDFuse phase I",
    "cddfuse2": "CDDFuse phase II",
    "emma-ai": "EMMA pseudo-sensor (UNet5)",
    "emma": "EMMA U-Fuser",
    "film": "FILM",
}


def wait_quiet(max_load, wait_max):
    """Waits until the 1-minute load is below max_load (at most wait_max seconds); the load seen."""
    t0 = time.time()
    while True:
        load = os.getloadavg()[0]
        if load < max_load:
            return load, True
        if time.time() - t0 > wait_max:
            print(f"  load {load:.2f} still >= {max_load} after {wait_max} s: running anyway (flagged)", flush=True)
            return load, False
        time.sleep(15)


def run(cmd, env=None, cwd=None):
    """Runs cmd; (exit status, stdout, stderr tail, peak RSS in GB, wall seconds)."""
    t = time.time()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return p.returncode, out.read().decode(), err.read().decode()[-2000:], usage.ru_maxrss / 1e6, time.time() - t


def prepare(args, work, proc, batch, side):
    """The .mmifds for one procedure (and, for EMMA's U-Fuser, the pseudo-sensor weights)."""
    mmif = [args.mmif]
    data = os.path.join(work, f"{proc}-{batch}x{side}.mmifds")
    extra = []
    if os.path.exists(data):
        return data, extra
    if proc == "film":
        text = os.path.join(work, "text")
        os.makedirs(text, exist_ok=True)
        import numpy as np

        for f in os.listdir(args.ir_dir):
            np.save(os.path.join(text, os.path.splitext(f)[0] + ".npy"), np.zeros((1, 149, 768), np.float32))
        cmd = mmif + ["prepare", "--ir-dir", args.ir_dir, "--vis-dir", args.vis_dir, "--text-dir", text, "-o", data]
    elif proc == "emma-ai":
        cmd = mmif + ["prepare", "--fused-dir", args.vis_dir, "--ir-dir", args.ir_dir, "-o", data]
    else:
        cmd = mmif + ["prepare", "--ir-dir", args.ir_dir, "--vis-dir", args.vis_dir, "-o", data]
    if proc != "film":
        # Overlapping patches, none dropped: enough of them for batch x steps.
        cmd += ["--patch", str(side), "--stride", str(max(side // 4, 8)), "--low-contrast", "0"]
    rc, out, err, _, _ = run(cmd)
    if rc != 0:
        sys.exit(f"mmif prepare failed ({' '.join(cmd)}):\n{out}{err}")
    return data, extra


def pseudo_sensor(args, work, side):
    """Weights of an EMMA pseudo-sensor for the U-Fuser runs: one mmif training step."""
    path = os.path.join(work, "ai-run", "emma-ai.safetensors")
    if not os.path.exists(path):
        data, _ = prepare(args, work, "emma-ai", 2, side)
        cmd = [args.mmif, "--threads", str(args.threads), "train", "-m", "emma-ai", "--data", data, "-o",
               os.path.join(work, "ai-run"), "--batch", "2", "--max-steps", "1", "--force"]
        rc, out, err, _, _ = run(cmd)
        if rc != 0 or not os.path.exists(path):
            sys.exit(f"the pseudo-sensor run failed ({' '.join(cmd)}):\n{out}{err}")
    return path


def mmif_run(args, work, proc, batch, side, tag, binary=None):
    model = PROCEDURES[proc][0]
    data, _ = prepare(args, work, proc, batch, side)
    out = os.path.join(work, f"run-{proc}-{tag}")
    cmd = [binary or args.mmif, "--threads", str(args.threads), "train", "-m", model, "--data", data, "-o", out,
           "--batch", str(batch), "--max-steps", str(args.steps), "--epochs", "100000", "--force",
           "--checkpoint-every", "0", "--sample-batches", "0"]
    if proc == "cddfuse1":
        cmd += ["--epoch-gap", "100000"]
    elif proc == "cddfuse2":
        cmd += ["--epoch-gap", "0"]
    elif proc == "emma":
        ps = pseudo_sensor(args, work, side)
        cmd += ["--ai", ps, "--av", ps]
    rc, stdout, err, rss, _ = run(cmd)
    if rc != 0:
        return {"error": f"exit {rc}: {err.strip().splitlines()[-1] if err.strip() else stdout[-300:]}", "rss_gb": rss}
    steps = []
    with open(os.path.join(out, "loss.jsonl")) as f:
        for line in f:
            steps.append(json.loads(line)["step_seconds"])
    return {"steps": steps, "rss_gb": rss}


def torch_run(args, proc, batch, side):
    cmd = [sys.executable, os.path.join(HERE, "train_bench_torch.py"), "--procedure", proc, "--official",
           args.official, "--batch", str(batch), "--size", str(side), "--steps", str(args.steps),
           "--threads", str(args.threads)]
    rc, out, err, rss, _ = run(cmd)
    if rc != 0:
        last = err.strip().splitlines()[-1] if err.strip() else ""
        return {"error": f"exit {rc}: {last}", "rss_gb": rss}
    return {"steps": json.loads(out.strip().splitlines()[-1])["step_seconds"], "rss_gb": rss}


def step_time(steps):
    """Median of the steps after the first (all of them if there is only one)."""
    return statistics.median(steps[1:] if len(steps) > 1 else steps)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mmif", default=os.path.join(ROOT, "target", "release", "mmif"))
    p.add_argument("--official", default=os.path.join(ROOT, "data"))
    p.add_argument("--ir-dir", default=None, help="default: <official>/MMIF-CDDFuse/test_img/RoadScene/ir")
    p.add_argument("--vis-dir", default=None, help="default: <official>/MMIF-CDDFuse/test_img/RoadScene/vi")
    p.add_argument("--only", default=",".join(PROCEDURES), help="comma-separated: " + ",".join(PROCEDURES))
    p.add_argument("--shape", action="append", default=[], help="PROC=BATCHxSIDE, e.g. cddfuse1=2x64")
    p.add_argument("--tiny", action="store_true", help="small shapes (a smoke test of the harness)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=3, help="steps per process (the first is not counted)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-load", type=float, default=1.0)
    p.add_argument("--wait-max", type=float, default=3600.0, help="seconds to wait for the load before each run")
    p.add_argument("--sides", default="mmif,torch", help="which sides to run")
    p.add_argument("--mmif-base", default=None,
                   help="a second mmif binary (e.g. the previous commit) timed as a third side, `base`, in the "
                        "same alternation: before/after figures from one session")
    p.add_argument("--json", default=None, help="write the raw results here")
    p.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    args = p.parse_args()
    args.official = os.path.abspath(args.official)
    rs = os.path.join(args.official, "MMIF-CDDFuse", "test_img", "RoadScene")
    args.ir_dir = args.ir_dir or os.path.join(rs, "ir")
    args.vis_dir = args.vis_dir or os.path.join(rs, "vi")
    sides = args.sides.split(",")
    if args.mmif_base:
        sides.append("base")
    if "mmif" in sides and not os.access(args.mmif, os.X_OK):
        sys.exit(f"{args.mmif}: build it first (cargo build --release -p mmif-cli) or pass --mmif")
    shapes = {}
    for proc in args.only.split(","):
        if proc not in PROCEDURES:
            sys.exit(f"unknown procedure {proc}; known: {', '.join(PROCEDURES)}")
        _, b, s, tb, ts = PROCEDURES[proc]
        shapes[proc] = (tb, ts) if args.tiny else (b, s)
    for spec in args.shape:
        proc, _, bs = spec.partition("=")
        b, _, s = bs.partition("x")
        shapes[proc] = (int(b), int(s))
    if "film" in shapes and shapes["film"][1] != 288:
        sys.exit("FILM runs at 288x384 only (its official network is built for that size): --shape film=Bx288")
    work = args.work or tempfile.mkdtemp(prefix="train_bench-")
    os.makedirs(work, exist_ok=True)
    print(f"work folder {work}; threads {args.threads}; waiting for load < {args.max_load} before each run", flush=True)
    results = {proc: {side: [] for side in sides} for proc in shapes}
    for r in range(args.rounds):
        order = sides[r % len(sides):] + sides[:r % len(sides)]  # every side goes first in some round
        for proc, (b, s) in shapes.items():
            for side in order:
                load, quiet = wait_quiet(args.max_load, args.wait_max)
                if side == "torch":
                    res = torch_run(args, proc, b, s)
                else:
                    res = mmif_run(args, work, proc, b, s, r, args.mmif_base if side == "base" else None)
                res.update(load_before=load, quiet=quiet, load_after=os.getloadavg()[0])
                results[proc][side].append(res)
                what = f"{step_time(res['steps']):.3f} s/step" if "steps" in res else res["error"]
                print(f"round {r + 1} {proc:9s} {side:5s} batch {b} side {s}: {what}, peak RSS {res['rss_gb']:.2f} GB, "
                      f"load {load:.2f} -> {res['load_after']:.2f}", flush=True)
    print()
    print("| procedure | batch × patch | mmif step: median (min–max) | PyTorch step: median (min–max) | mmif / PyTorch "
          "| mmif peak RSS | PyTorch peak RSS | 1-min load before the runs |")
    print("|---|---|---|---|---|---|---|---|")
    summary = {}
    for proc, (b, s) in shapes.items():
        cells, med = [], {}
        for side in ("mmif", "torch"):
            runs = results[proc].get(side, [])
            ok = [step_time(x["steps"]) for x in runs if "steps" in x]
            if ok:
                med[side] = statistics.median(ok)
                cells.append(f"{med[side]:.3f} s ({min(ok):.3f}–{max(ok):.3f}, {len(ok)} runs)")
            else:
                cells.append("; ".join(x["error"] for x in runs) or "not run")
        ratio = f"{med['mmif'] / med['torch']:.2f}" if "mmif" in med and "torch" in med else "—"
        if "base" in sides:
            base = [step_time(x["steps"]) for x in results[proc]["base"] if "steps" in x]
            if base:
                bm = statistics.median(base)
                ratio += f" (base {bm:.3f} s, {min(base):.3f}–{max(base):.3f}; " + (
                    f"{bm / med['torch']:.2f} of PyTorch)" if "torch" in med else "no PyTorch)")
        rss = [f"{max(x['rss_gb'] for x in results[proc][side]):.2f} GB" if results[proc].get(side) else "—"
               for side in ("mmif", "torch")]
        loads = [x["load_before"] for side in sides for x in results[proc][side]]
        flagged = any(not x["quiet"] for side in sides for x in results[proc][side])
        size = f"{s}×384" if proc == "film" else f"{s}×{s}"
        print(f"| {LABELS[proc]} | {b} × {size} | {cells[0]} | {cells[1]} | {ratio} | {rss[0]} | {rss[1]} | "
              f"{min(loads):.2f}–{max(loads):.2f}{' (NOT QUIET)' if flagged else ''} |")
        summary[proc] = {"batch": b, "side": s, "median": med, "runs": results[proc]}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "steps": args.steps, "max_load": args.max_load, "results": summary}, f,
                      indent=1)


if __name__ == "__main__":
    main()
