#!/usr/bin/env python3
"""Summarises a tools/vifb_speed.sh run: per triple, mmif's median user seconds (3 runs, one
thread, including JPEG decoding and process start) next to Octave's cputime summed over VIFB's 13
metric calls; medians, spreads and ratios; an extrapolation to all 21 pairs x 25 methods by pixel
count; and how Octave's values compare with VIFB's shipped ones (5 significant digits).
    tools/vifb_speed_summary.py OUT_DIR [VIFB_DIR]
"""
import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path

out = Path(sys.argv[1])
vifb = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("data/VIFB")
METRICS = 13

mmif = defaultdict(list)
for line in (out / "mmif_time.txt").read_text().splitlines():
    f = line.split()
    if len(f) >= 9 and f[1] == "mmif":
        mmif[f[0]].append(float(f[4]))

octave = defaultdict(dict)  # triple -> metric -> (value, cpu, wall)
for row in csv.reader((out / "octave.csv").read_text().splitlines()):
    pair, method, metric, value, cpu, wall = row
    octave[f"{pair}_{method}"][metric] = (float(value), float(cpu), float(wall))


def jpeg_size(path):
    """(width, height) from a JPEG's SOF header."""
    d = path.read_bytes()
    i = 2
    while i + 9 < len(d):
        mk, ln = d[i + 1], d[i + 2] * 256 + d[i + 3]
        if mk in (0xC0, 0xC1, 0xC2):
            return d[i + 7] * 256 + d[i + 8], d[i + 5] * 256 + d[i + 6]
        i += 2 + ln
    raise ValueError(path)


def five(v):
    return float(f"{v:.5g}")


rows = []
for t, per_metric in octave.items():
    if len(per_metric) < METRICS or t not in mmif:
        continue  # an Octave run cut short
    pair = t.split("_")[0]
    w, h = jpeg_size(vifb / "input" / "VI" / f"{pair}.jpg")
    cpu = sum(c for _, c, _ in per_metric.values())
    m = statistics.median(mmif[t])
    same = 0
    for metric, (value, _, _) in per_metric.items():
        want = float((vifb / "output" / "evaluation_metrics_single" / f"{t}_{metric}.txt").read_text())
        same += five(value) == want
    rows.append((t, w * h, m, min(mmif[t]), max(mmif[t]), cpu, same))

print(f"{'triple':<22} {'pixels':>7} {'mmif s (min-max)':>18} {'Octave s':>9} {'ratio':>6}  Octave = VIFB (5 digits)")
for t, px, m, lo, hi, cpu, same in rows:
    print(f"{t:<22} {px:>7} {m:>6.2f} ({lo:.2f}-{hi:.2f}) {cpu:>9.1f} {cpu / m:>6.0f}  {same}/{METRICS}")
if rows:
    ratios = [cpu / m for _, _, m, _, _, cpu, _ in rows]
    mm = [m / px * 1e6 for _, px, m, *_ in rows]
    oc = [cpu / px * 1e6 for _, px, _, _, _, cpu, _ in rows]
    print(f"{len(rows)} triples; ratio median {statistics.median(ratios):.0f} (range {min(ratios):.0f}-{max(ratios):.0f})")
    print(f"per Mpixel: mmif median {statistics.median(mm):.2f} s ({min(mm):.2f}-{max(mm):.2f}), "
          f"Octave median {statistics.median(oc):.0f} s ({min(oc):.0f}-{max(oc):.0f})")
    total_px = sum(a * b for a, b in (jpeg_size(p) for p in sorted((vifb / "input" / "VI").glob("*.jpg"))))
    methods = len({p.stem.split("_", 1)[1] for p in (vifb / "output" / "fused_images").glob("*.jpg")})
    print(f"all {methods} methods x 21 pairs ({total_px / 1e6:.2f} Mpixel per method), extrapolated by pixel count: "
          f"mmif {statistics.median(mm) * total_px / 1e6 * methods / 60:.1f} min CPU, "
          f"Octave {statistics.median(oc) * total_px / 1e6 * methods / 3600:.1f} h CPU")
    per_metric = defaultdict(float)
    for t, *_ in rows:
        for metric, (_, c, _) in octave[t].items():
            per_metric[metric] += c
    tot = sum(per_metric.values())
    print("Octave's time by metric: " + ", ".join(f"{k} {v / tot:.0%}" for k, v in sorted(per_metric.items(), key=lambda kv: -kv[1])))
