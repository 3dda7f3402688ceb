#!/usr/bin/env bash
# Speed of every VIFB method that mmif implements next to VIFB's MATLAB code under GNU Octave, in
# alternating rounds, with the full-size difference of the two 8-bit results as a by-product.
# Benchmark only; no test needs it (docs/classic_acceptance.md, "Speed against Octave").
#   cargo build --release -p mmif-classic --example vifb_parity
#   tools/vifb_method_speed.sh VIFB_DIR OUT_DIR [ROUNDS] [METHOD ...]
# Inputs: TNO pair 10 of the CDDFuse repository's test images (data/MMIF-CDDFuse/test_img/TNO, first
# channel, 640x480 gray) and a 160x120 crop of it from (100, 200) for the methods whose Octave code
# cannot run at 640x480 in minutes (CBF: a per-pixel loop; MSVD: forms the N x N matrix V), and the
# committed 64x48 crop for LatLRR (its Octave decomposition grows one column at a time).
# FIRST_ROUND=N starts at round N (more rounds into the same OUT_DIR).
# Setup (once, under OUT_DIR/vifb): VIFB's methods copied; Hybrid_MSD's fast_blf.cpp and OMP-Box's
# C sources compiled with mkoctfile --mex; mmif's own dictionary and LatLRR projection in place of
# VIFB's D_100000_256_8.mat and the missing models/L_8.mat (as the parity references were made).
# Per round and method: the load average; Octave (gen/run_one.m, best of 2 runs of run_<NAME>
# including imread, one run for CBF, MSVD and LatLRR; its result written); mmif (vifb_parity, best of 3, with 1 and with 2 rayon threads, compared with
# Octave's result of that round). Lines go to OUT_DIR/log.txt; summarise with
# tools/vifb_method_speed_summary.py OUT_DIR.
set -euo pipefail
vifb=$1 out=$2 rounds=${3:-3}
shift $(( $# >= 3 ? 3 : $# ))
all=(ADF FPDE VSMWLS IFEVIP GFCE GTF TIF MGFF HMSD_GF Hybrid_MSD LP_SR RP_SR GFF CBF MSVD LatLRR)
methods=("$@")
[ ${#methods[@]} -gt 0 ] || methods=("${all[@]}")
bin=target/release/examples/vifb_parity
root=$PWD
mkdir -p "$out/in"
out=$(cd "$out" && pwd)
v=$out/vifb

if [ ! -f "$v/ready" ]; then
  rm -rf "$v" && mkdir -p "$v/methods"
  for m in "${all[@]}"; do
    [ "$m" = RP_SR ] || cp -r "$vifb/methods/$m" "$v/methods/$m"
  done
  (cd "$v/methods/Hybrid_MSD" && mkoctfile --mex fast_blf.cpp >/dev/null 2>&1)
  omp=$v/methods/LP_SR/sparsefusion/ksvdbox/ompbox/private
  (cd "$omp" && mkoctfile --mex -o omp2mex omp2mex.c ompcore.c omputils.c myblas.c ompprof.c >/dev/null 2>&1 \
    && mkoctfile --mex -o ompmex ompmex.c ompcore.c omputils.c myblas.c ompprof.c >/dev/null 2>&1)
  cp "$vifb/methods/RP_SR/run_RP_SR.m" "$v/methods/LP_SR/"
  ln -s LP_SR "$v/methods/RP_SR"
  mkdir -p "$v/methods/LatLRR/models"
  octave-cli --eval "
    f = fopen('$root/crates/mmif-classic/src/data/sr_dict_8x256.f64', 'r', 'ieee-le');
    D = fread(f, [64, 256], 'double'); fclose(f);
    save('-mat7-binary', '$v/methods/LP_SR/sparsefusion/Dictionary/D_100000_256_8.mat', 'D');
    f = fopen('$root/crates/mmif-classic/src/data/latlrr_l8.f64', 'r', 'ieee-le');
    L_8 = fread(f, [64, 64], 'double').'; fclose(f);
    save('-mat7-binary', '$v/methods/LatLRR/models/L_8.mat', 'L_8');"
  python3 - "$root/data/MMIF-CDDFuse/test_img/TNO" "$out/in" <<'EOF'
import sys
from PIL import Image
src, dst = sys.argv[1:]
for kind in ("ir", "vi"):
    im = Image.open(f"{src}/{kind}/10.png").getchannel(0)
    im.save(f"{dst}/tno10_{kind}.png")
    im.crop((200, 100, 360, 220)).save(f"{dst}/tno10c_{kind}.png")
    # MGFF indexes three channels of the visible image (VIFB's are all RGB): an RGB copy, both sides.
    if kind == "vi":
        Image.merge("RGB", [im] * 3).save(f"{dst}/tno10_vi_rgb.png")
EOF
  cp crates/mmif-classic/tests/data/vifb/inputs/tno_64x48_{ir,vi}.png "$out/in/"
  touch "$v/ready"
fi

for r in $(seq "${FIRST_ROUND:-1}" "$rounds"); do
  for m in "${methods[@]}"; do
    lm=$(echo "$m" | tr A-Z a-z)
    case $m in
      CBF | MSVD) ir=$out/in/tno10c_ir.png vis=$out/in/tno10c_vi.png ;;
      LatLRR) ir=$out/in/tno_64x48_ir.png vis=$out/in/tno_64x48_vi.png ;;
      MGFF) ir=$out/in/tno10_ir.png vis=$out/in/tno10_vi_rgb.png ;;
      *) ir=$out/in/tno10_ir.png vis=$out/in/tno10_vi.png ;;
    esac
    ref=$out/octave_${lm}_r$r.png
    case $m in CBF | MSVD | LatLRR) runs=1 ;; *) runs=2 ;; esac
    echo "round $r $lm load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/log.txt"
    METHOD=$m IR=$ir VIS=$vis OUT=$ref VIFB_DIR=$v RUNS=$runs SHIMS=1 \
      octave-cli crates/mmif-classic/tests/data/vifb/gen/run_one.m >"$out/octave_out.txt" 2>>"$out/octave_err.txt" \
      || echo "round $r octave $m failed (see octave_err.txt)" >>"$out/log.txt"
    grep best "$out/octave_out.txt" | sed "s/^/round $r octave /" >>"$out/log.txt" || true
    for t in 1 2; do
      [ -f "$ref" ] || ref=
      RAYON_NUM_THREADS=$t "$bin" "$lm" "$ir" "$vis" $ref --runs 3 | grep -E 'best|diff' \
        | sed "s/^/round $r mmif$t /" >>"$out/log.txt"
    done
  done
done
