#!/usr/bin/env bash
# Times mmif next to GNU Octave on VIFB's metric set, triple by triple, alternately, on the same
# (pair, method) triples of VIFB's shipped results. Benchmark only; no test needs it.
#   cargo build --release -p mmif-metrics --example vifb_check
#   tools/vifb_speed.sh data/VIFB OUT_DIR carLight_ADF walking_CBF ...
# Per triple: `uptime`, then mmif (`vifb_check --pairs P --methods M`, one thread, 3 runs, each timed by
# /usr/bin/time), then Octave once (tools/vifb_octave_time.m: VIFB's 13 .m files, cputime per call).
# Writes OUT_DIR/{load.txt, mmif_time.txt, mmif_<triple>.txt, octave.csv, octave_time.txt, octave_log.txt};
# summarise with tools/vifb_speed_summary.py OUT_DIR.
set -euo pipefail
vifb=$1 out=$2
shift 2
bin=${VIFB_CHECK:-target/release/examples/vifb_check}
mkdir -p "$out"
for tr in "$@"; do
  pair=${tr%%_*} method=${tr#*_}
  echo "$tr $(uptime)" >>"$out/load.txt"
  for run in 1 2 3; do
    RAYON_NUM_THREADS=1 /usr/bin/time -f "$tr mmif $run user %U sys %S wall %e" -a -o "$out/mmif_time.txt" \
      "$bin" "$vifb" --pairs "$pair" --methods "$method" >"$out/mmif_$tr.txt"
  done
  /usr/bin/time -f "$tr octave 1 user %U sys %S wall %e" -a -o "$out/octave_time.txt" \
    octave-cli tools/vifb_octave_time.m "$vifb" "$out/octave.csv" "$tr" >>"$out/octave_log.txt" 2>&1
  echo "$tr done $(uptime)" >>"$out/load.txt"
done
