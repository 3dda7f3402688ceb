#!/usr/bin/env bash
# Full-size parity, dictionary comparison and interleaved speed of mmif's lp_sr/rp_sr next to VIFB's
# LP_SR/RP_SR under GNU Octave (docs/vifb_sr.md). Benchmark only; no test needs it.
#   cargo build --release -p mmif-classic --example vifb_parity
#   tools/vifb_sr_check.sh VIFB_DIR OMP_MEX_DIR OUT_DIR IR.png VIS.png [ROUNDS]
# VIFB's methods/LP_SR is copied twice under OUT_DIR (with the OMP-Box MEX files of OMP_MEX_DIR):
# `own/` with mmif's dictionary, `vifb/` with VIFB's D_100000_256_8.mat. Per method: Octave's result
# with each dictionary, mmif's with its own, with VIFB's (as data/dict/vifb.f64 if present) and with
# the overcomplete DCT (data/dict/odct.f64 if present), each compared with both Octave results; then
# ROUNDS (default 3) alternating timing rounds (uptime, mmif best of 3 with one rayon thread, Octave
# one run) on the pair.
set -euo pipefail
vifb=$1 mex=$2 out=$3 ir=$4 vis=$5 rounds=${6:-3}
bin=target/release/examples/vifb_parity
mkdir -p "$out"
for kind in own vifb; do
  if [ ! -d "$out/$kind/methods/LP_SR" ]; then
    mkdir -p "$out/$kind/methods"
    cp -r "$vifb/methods/LP_SR" "$out/$kind/methods/LP_SR"
    cp "$vifb/methods/RP_SR/run_RP_SR.m" "$out/$kind/methods/LP_SR/"
    cp "$mex"/*.mex "$out/$kind/methods/LP_SR/sparsefusion/ksvdbox/ompbox/private/"
    ln -s LP_SR "$out/$kind/methods/RP_SR"
  fi
done
octave-cli --eval "f = fopen('crates/mmif-classic/src/data/sr_dict_8x256.f64', 'r', 'ieee-le'); \
  D = fread(f, [64, 256], 'double'); fclose(f); \
  save('-mat7-binary', '$out/own/methods/LP_SR/sparsefusion/Dictionary/D_100000_256_8.mat', 'D');" 2>/dev/null || true
name=$(basename "$ir" | sed 's/\.[a-z]*$//')
for m in LP_SR RP_SR; do
  lm=$(echo $m | tr A-Z a-z)
  for kind in own vifb; do
    METHOD=$m IR=$ir VIS=$vis OUT=$out/${lm}_octave_${kind}_$name.png VIFB_DIR=$out/$kind \
      octave-cli crates/mmif-classic/tests/data/vifb/gen/run_one.m 2>/dev/null | grep best || true
  done
  for d in own vifb odct; do
    args=()
    if [ $d != own ]; then
      [ -f data/dict/$d.f64 ] || continue
      args=(--dictionary data/dict/$d.f64)
    fi
    for ref in own vifb; do
      $bin $lm "$ir" "$vis" "$out/${lm}_octave_${ref}_$name.png" "${args[@]}" | grep "vs" | sed "s/^/mmif dict=$d vs octave dict=$ref: /"
    done
  done
done
for r in $(seq 1 "$rounds"); do
  for m in LP_SR RP_SR; do
    lm=$(echo $m | tr A-Z a-z)
    echo "round $r $m $(uptime)"
    RAYON_NUM_THREADS=1 $bin $lm "$ir" "$vis" --runs 3 | grep best
    METHOD=$m IR=$ir VIS=$vis OUT=$out/t.png VIFB_DIR=$out/own \
      octave-cli crates/mmif-classic/tests/data/vifb/gen/run_one.m 2>/dev/null | grep best || true
  done
done
