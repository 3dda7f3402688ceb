#!/usr/bin/env python3
"""Summarises tools/vifb_method_speed.sh's OUT_DIR/log.txt as a Markdown table: per method, the
Octave and mmif seconds of every round (mmif with 1 and 2 rayon threads), their medians, the ratio of
medians, the spread of the per-round ratios, the load averages seen and the largest difference of the
8-bit results (0..255) over the rounds. Benchmark only; no test needs it.
    python3 tools/vifb_method_speed_summary.py OUT_DIR
"""
import re
import statistics
import sys
from collections import defaultdict

log = open(f"{sys.argv[1]}/log.txt").read().splitlines()
octave = defaultdict(dict)
mmif = {1: defaultdict(dict), 2: defaultdict(dict)}
diff = defaultdict(list)
load = defaultdict(list)
for line in log:
    if m := re.match(r"round (\d+) (\S+) load (\S+)", line):
        load[m[2]].append(float(m[3]))
    elif m := re.match(r"round (\d+) octave (\S+): best of \d+: (\S+) s", line):
        octave[m[2].lower()][int(m[1])] = float(m[3])
    elif m := re.match(r"round (\d+) mmif(\d) (\S+): best of \d+: (\S+) s", line):
        mmif[int(m[2])][m[3]][int(m[1])] = float(m[4])
    elif m := re.match(r"round \d+ mmif\d (\S+) vs .*: mean \|diff\| (\S+), max (\d+)", line):
        diff[m[1]].append((float(m[2]), int(m[3])))


def fmt(x):
    return "<0.001" if x == 0 else f"{x:.3g}" if x < 10 else f"{x:.1f}"


def ratio(a, b):
    # vifb_parity prints milliseconds: a run under 0.5 ms shows as 0.000
    return (">" if b == 0 else "") + f"{a / max(b, 0.0005):.0f}" if a / max(b, 0.0005) >= 100 \
        else f"{a / b:.1f}"


print("| method | Octave s (rounds) | mmif 1 thread s | mmif 2 threads s | ratio 1 thread | ratio 2 threads "
      "| load (1 min) | mean / max abs. diff |")
print("|---|---|---|---|---|---|---|---|")
for name in mmif[1]:
    o = octave.get(name, {})
    cells = []
    for t in (1, 2):
        cells.append(" / ".join(fmt(mmif[t][name][r]) for r in sorted(mmif[t][name])))
    ratios = []
    for t in (1, 2):
        rs = sorted((o[r], mmif[t][name][r]) for r in sorted(o) if r in mmif[t][name])
        if rs:
            rs.sort(key=lambda p: p[0] / max(p[1], 0.0005))
            med = ratio(statistics.median(o.values()), statistics.median(mmif[t][name].values()))
            ratios.append(f"{med}× ({ratio(*rs[0])}–{ratio(*rs[-1])})")
        else:
            ratios.append("—")
    d = diff.get(name)
    dtxt = f"{max(x for x, _ in d):.4f} / {max(y for _, y in d)}" if d else "—"
    ld = load.get(name, [])
    ltxt = f"{min(ld):.2f}–{max(ld):.2f}" if ld else "—"
    otxt = " / ".join(fmt(o[r]) for r in sorted(o)) if o else "failed"
    print(f"| {name} | {otxt} | {cells[0]} | {cells[1]} | {ratios[0]} | {ratios[1]} | {ltxt} | {dtxt} |")
