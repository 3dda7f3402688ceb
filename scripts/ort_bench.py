#!/usr/bin/env python3
"""`mmif bench` next to ONNX Runtime on the official networks, alternately, one process per run.

Each model is the official PyTorch module (random initialisation: the time does not depend on the
weights) exported to ONNX once per size (`torch.onnx.export`, static shapes) and run by
onnxruntime's CPU provider with --threads intra-op threads, sequential execution, all graph
optimisations; mmif runs `mmif --threads N bench -m MODEL --size HxW --runs R --json`. Rounds
alternate which side goes first; before each run the script waits until the 1-minute load average
is below --max-load. Per side it reports the median over the rounds of each process's median run,
the min-max, and the ratio mmif / ORT. `--variant NAME=VAR=VALUE,...` adds mmif runs with extra
environment variables as further sides of the same alternation (e.g. `--variant direct=MMIF_WINOGRAD=off`
times CDDFuse with and without Winograd in one session); `MMIF_BIN=PATH` in a variant runs another
`mmif` binary instead (e.g. `--variant base=MMIF_BIN=/tmp/base/mmif`, an earlier commit's build, for a
before/after in one session); each variant gets its own ratio to ORT.

CDDFuse is the official test_IVF.py graph (encoder on both sources, base and detail fusion layers,
decoder, min-max normalisation); EMMA the U-Fuser; FILM its network at 288x384 only (the official
module hard-codes that size), with zero text features (1, 149, 768).

Setup: `cargo build --release -p mmif-cli`; the official repositories cloned into --official
(default data/, git-ignored; see scripts/train_bench.py); `pip install torch onnxruntime onnxscript
einops` (+ kornia, h5py for EMMA's utils).

    python3 scripts/ort_bench.py --models cddfuse,emma --size 480x640 --rounds 3 --runs 5
    python3 scripts/ort_bench.py --models cddfuse --variant direct=MMIF_WINOGRAD=off   # Winograd on/off
    python3 scripts/ort_bench.py --models cddfuse,emma --variant base=MMIF_BIN=../base/target/release/mmif
    python3 scripts/ort_bench.py --models cddfuse --size 64x64 --rounds 1 --runs 2 --max-load 100   # smoke test
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


def export(model, official, h, w, path):
    """Exports the official module for `model` at h x w to `path` (run in a child process)."""
    sys.path.insert(0, HERE)
    import torch
    from train_bench_torch import load_official

    torch.manual_seed(0)
    if model == "cddfuse":
        load_official(official, "MMIF-CDDFuse")
        from net import BaseFeatureExtraction, DetailFeatureExtraction, Restormer_Decoder, Restormer_Encoder

        class Fuse(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.enc, self.dec = Restormer_Encoder(), Restormer_Decoder()
                self.base, self.detail = BaseFeatureExtraction(dim=64, num_heads=8), DetailFeatureExtraction()

            def forward(self, ir, vis):
                vb, vd, _ = self.enc(vis)
                ib, id_, _ = self.enc(ir)
                fused, _ = self.dec(vis, self.base(vb + ib), self.detail(vd + id_))
                return (fused - fused.min()) / (fused.max() - fused.min())

        net, inputs = Fuse(), (torch.rand(1, 1, h, w), torch.rand(1, 1, h, w))
    elif model == "emma":
        load_official(official, "MMIF-EMMA")
        from nets.Ufuser import Ufuser

        net, inputs = Ufuser(), (torch.rand(1, 1, h, w), torch.rand(1, 1, h, w))
    elif model == "film":
        if (h, w) != (288, 384):
            sys.exit("FILM's official network runs at 288x384 only")
        load_official(official, "IF-FILM")
        from net.Film import Net

        net = Net(hidden_dim=256, image2text_dim=32)
        inputs = (torch.rand(1, 1, h, w), torch.rand(1, 1, h, w), torch.zeros(1, 149, 768))
    else:
        sys.exit(f"unknown model {model}")
    net.eval()
    with torch.no_grad():
        torch.onnx.export(net, inputs, path, opset_version=17, dynamo=False)


def ort_time(path, threads, runs):
    """Median, min, max seconds of `runs` ORT runs after one warm-up (run in a child process)."""
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    feeds = {i.name: np.random.rand(*i.shape).astype(np.float32) for i in s.get_inputs()}
    s.run(None, feeds)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        s.run(None, feeds)
        times.append(time.perf_counter() - t)
    times.sort()
    return {"median_s": statistics.median(times), "min_s": times[0], "max_s": times[-1]}


def wait_quiet(max_load, wait_max):
    t0 = time.time()
    while os.getloadavg()[0] >= max_load and time.time() - t0 < wait_max:
        time.sleep(15)
    return os.getloadavg()[0]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mmif", default=os.path.join(ROOT, "target", "release", "mmif"))
    p.add_argument("--official", default=os.path.join(ROOT, "data"))
    p.add_argument("--models", default="cddfuse,emma")
    p.add_argument("--size", default="480x640")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-load", type=float, default=1.0)
    p.add_argument("--wait-max", type=float, default=3600.0)
    p.add_argument("--work", default=None)
    p.add_argument("--variant", action="append", default=[],
                   help="NAME=VAR=VALUE[,VAR=VALUE]: an extra mmif side run with that environment")
    p.add_argument("--_export", nargs=4, help=argparse.SUPPRESS)
    p.add_argument("--_ort", nargs=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._export:
        model, official, size, path = args._export
        h, w = map(int, size.split("x"))
        return export(model, official, h, w, path)
    if args._ort:
        return print(json.dumps(ort_time(args._ort[0], args.threads, args.runs)))
    args.official = os.path.abspath(args.official)
    work = args.work or tempfile.mkdtemp(prefix="ort_bench-")
    os.makedirs(work, exist_ok=True)
    me = [sys.executable, os.path.abspath(__file__)]
    variants = {"mmif": {}}
    for v in args.variant:
        name, _, assigns = v.partition("=")
        env = dict(a.split("=", 1) for a in assigns.split(",") if a)
        variants[f"mmif-{name}"] = env
    sides = list(variants) + ["ort"]
    rows = []
    for model in args.models.split(","):
        onnx = os.path.join(work, f"{model}-{args.size}.onnx")
        if not os.path.exists(onnx):
            subprocess.run(me + ["--_export", model, args.official, args.size, onnx], check=True)
        res = {side: [] for side in sides}
        for r in range(args.rounds):
            # rotate the order so that every side goes first in some round
            order = sides[r % len(sides):] + sides[:r % len(sides)]
            for side in order:
                load = wait_quiet(args.max_load, args.wait_max)
                if side in variants:
                    env = dict(variants[side])
                    binary = env.pop("MMIF_BIN", args.mmif)
                    cmd = [binary, "--threads", str(args.threads), "bench", "-m", model, "--size", args.size,
                           "--runs", str(args.runs), "--json"]
                    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                                         env=dict(os.environ, **env)).stdout
                    row = json.loads(out)
                    row = row[0] if isinstance(row, list) else row
                else:
                    cmd = me + ["--_ort", onnx, "--threads", str(args.threads), "--runs", str(args.runs)]
                    row = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
                res[side].append(row["median_s"])
                print(f"round {r + 1} {model} {side}: median {row['median_s']:.3f} s "
                      f"({row['min_s']:.3f}-{row['max_s']:.3f}), load before {load:.2f}", flush=True)
        o = statistics.median(res["ort"])
        for side in variants:
            rows.append((model, side, statistics.median(res[side]), res[side], o, res["ort"]))
    print("\n| model | size | side | mmif (median of process medians, min–max) | ONNX Runtime | mmif / ORT |")
    print("|---|---|---|---|---|---|")
    for model, side, m, ms, o, os_ in rows:
        print(f"| {model} | {args.size} | {side} | {m:.3f} s ({min(ms):.3f}–{max(ms):.3f}) "
              f"| {o:.3f} s ({min(os_):.3f}–{max(os_):.3f}) | {m / o:.2f} |")

if __name__ == "__main__":
    main()
