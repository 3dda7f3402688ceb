#!/usr/bin/env bash
# Acceptance sweep of the weight-free methods (issue 17): every method `mmif models` lists, through
# the `mmif` binary, on tiny, one-pixel-wide and odd-sized pairs, gray and colour, with luma fusion
# and with `--color channels`, one pair at a time and in folder mode; optionally on a large pair
# (`--big WxH`, or `--big-pair IR VIS` for existing files), timed with /usr/bin/time (seconds, peak
# RSS). A run passes when it writes its output and exits 0, or exits non-zero with an error message
# and writes nothing; a panic, a signal, or an output left behind by a failed run is a failure.
#
#   scripts/classic_sweep.sh [--only m1,m2] [--big 4000x3000 | --big-pair IR VIS] [--no-small] [OUT]
#
# Needs target/release/mmif (or MMIF_BIN), python3 with numpy and Pillow (to make the inputs) and
# GNU time. Writes OUT/results.tsv (method, case, status, seconds, peak RSS in MB, note) and prints
# the failures; exits 1 if there is one. OUT defaults to data/classic_sweep (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
MMIF=${MMIF_BIN:-target/release/mmif}
ONLY="" BIG="" BIG_IR="" BIG_VI="" SMALL=1 OUT=data/classic_sweep
while [ $# -gt 0 ]; do
    case "$1" in
        --only) ONLY=$2; shift 2 ;;
        --big) BIG=$2; shift 2 ;;
        --big-pair) BIG_IR=$2; BIG_VI=$3; shift 3 ;;
        --no-small) SMALL=0; shift ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) OUT=$1; shift ;;
    esac
done
[ -x "$MMIF" ] || { echo "no mmif binary at $MMIF (cargo build --release -p mmif-cli)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "GNU time (/usr/bin/time) is needed" >&2; exit 2; }
mkdir -p "$OUT/in" "$OUT/out" "$OUT/log"
RESULTS=$OUT/results.tsv
[ -f "$RESULTS" ] || printf 'method\tcase\tstatus\tseconds\tpeak_mb\tnote\n' >"$RESULTS"

# Every weight-free method: the `mmif models` rows whose weights column is `none`.
METHODS=$("$MMIF" models | awk '$2 == "any" && $3 == "none" { print $1 }')
if [ -n "$ONLY" ]; then METHODS=$(tr ',' '\n' <<<"$ONLY"); fi

SMALL_SIZES="1x1 2x3 3x2 7x1 1x7 13x9 101x77"

# Inputs: IR gray, VIS gray and colour, per size (smooth structure plus noise, seeded).
make_pair() { # SIZE DIR
    python3 - "$1" "$2" <<'EOF'
import sys, numpy as np
from PIL import Image
w, h = map(int, sys.argv[1].split("x")); d = sys.argv[2]
rng = np.random.default_rng(w * 7919 + h)
yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
def img(phase):
    base = 128 + 70 * np.sin(xx * 0.031 + phase) * np.cos(yy * 0.027 - phase)
    return np.clip(base + rng.normal(0, 12, (h, w)), 0, 255).astype(np.uint8)
ir = img(0.3); ir[h // 3: h // 3 + max(1, h // 8), w // 2: w // 2 + max(1, w // 10)] = 250  # a hot target
Image.fromarray(ir).save(f"{d}/ir_{w}x{h}.png")
Image.fromarray(img(1.9)).save(f"{d}/vg_{w}x{h}.png")
rgb = np.stack([img(1.9), img(2.4), img(0.7)], -1)
Image.fromarray(rgb).save(f"{d}/vc_{w}x{h}.png")
EOF
}

# run METHOD CASE OUTPUT -- ARGS…: one mmif call, classified and appended to results.tsv.
run() {
    local method=$1 case=$2 out=$3; shift 4
    local log="$OUT/log/${method}_${case}"
    rm -rf "$out"
    local rc=0
    /usr/bin/time -f '%e %M' -o "$log.time" "$MMIF" "$@" >"$log.out" 2>"$log.err" || rc=$?
    # GNU time puts "Command exited with non-zero status N" before the figures.
    read -r secs kb < <(tail -n 1 "$log.time") || { secs=NA; kb=0; }
    local status note=""
    if grep -q 'panicked' "$log.err" || [ "$rc" -gt 1 ]; then
        status=FAIL note="exit $rc: $(grep -m1 -v '^mmif: no --model' "$log.err" | cut -c1-150)"
    elif [ "$rc" -eq 0 ] && [ -e "$out" ]; then
        status=ok
    elif [ "$rc" -eq 1 ] && [ ! -e "$out" -o -d "$out" ] && grep -q 'mmif' "$log.err"; then
        status=error note=$(grep -m1 'error\|failed\|mmif:' "$log.err" | cut -c1-150)
    else
        status=FAIL note="exit $rc, output $( [ -e "$out" ] && echo present || echo missing)"
    fi
    if [ "$case" = mismatch ] && [ "$status" = ok ]; then status=FAIL note="accepted sources of different sizes"; fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$method" "$case" "$status" "$secs" "$((kb / 1024))" "$note" >>"$RESULTS"
    [ "$status" != FAIL ] || echo "FAIL $method $case: $note" >&2
}

if [ "$SMALL" = 1 ]; then
    for s in $SMALL_SIZES; do make_pair "$s" "$OUT/in"; done
    # Folder mode: every small size in one folder pair (gray IR, colour VIS).
    rm -rf "$OUT/in/ir" "$OUT/in/vi"; mkdir -p "$OUT/in/ir" "$OUT/in/vi"
    for s in $SMALL_SIZES; do
        cp "$OUT/in/ir_$s.png" "$OUT/in/ir/p$s.png"; cp "$OUT/in/vc_$s.png" "$OUT/in/vi/p$s.png"
    done
    for m in $METHODS; do
        for s in $SMALL_SIZES; do
            run "$m" "gray_$s" "$OUT/out/$m.png" -- fuse -m "$m" --ir "$OUT/in/ir_$s.png" --vis "$OUT/in/vg_$s.png" -o "$OUT/out/$m.png"
            run "$m" "colour_$s" "$OUT/out/$m.png" -- fuse -m "$m" --ir "$OUT/in/ir_$s.png" --vis "$OUT/in/vc_$s.png" -o "$OUT/out/$m.png"
            run "$m" "channels_$s" "$OUT/out/$m.png" -- fuse -m "$m" --color channels --ir "$OUT/in/ir_$s.png" --vis "$OUT/in/vc_$s.png" -o "$OUT/out/$m.png"
        done
        run "$m" "mismatch" "$OUT/out/$m.png" -- fuse -m "$m" --ir "$OUT/in/ir_13x9.png" --vis "$OUT/in/vc_101x77.png" -o "$OUT/out/$m.png"
        for mode in luma channels; do
            run "$m" "folder_$mode" "$OUT/out/dir_$m" -- fuse -m "$m" --color "$mode" --ir-dir "$OUT/in/ir" --vis-dir "$OUT/in/vi" --out-dir "$OUT/out/dir_$m"
            n=$(ls "$OUT/out/dir_$m" 2>/dev/null | wc -l)
            [ "$n" -eq "$(wc -w <<<"$SMALL_SIZES")" ] || echo "FAIL $m folder_$mode: $n outputs" >&2
        done
    done
fi

if [ -n "$BIG" ] && [ -z "$BIG_IR" ]; then
    make_pair "$BIG" "$OUT/in"
    BIG_IR="$OUT/in/ir_$BIG.png" BIG_VI="$OUT/in/vc_$BIG.png"
fi
if [ -n "$BIG_IR" ]; then
    for m in $METHODS; do
        run "$m" "big_luma" "$OUT/out/${m}_big.png" -- --threads 2 fuse -m "$m" --ir "$BIG_IR" --vis "$BIG_VI" -o "$OUT/out/${m}_big.png"
        rm -f "$OUT/out/${m}_big.png"
    done
fi

fails=$(awk -F'\t' '$3 == "FAIL"' "$RESULTS" | wc -l)
echo "$(($(wc -l <"$RESULTS") - 1)) runs in $RESULTS, $fails failure(s)"
[ "$fails" -eq 0 ]
