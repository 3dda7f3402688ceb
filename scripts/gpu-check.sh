#!/usr/bin/env bash
# The GPU check (issue 18): builds mmif with burn's CUDA backend, runs the forward parity tests and
# the one-step training tests on the GPU, times `mmif bench` for the three networks at 480×640 and
# 1080×1920 and one training step of every procedure at its official batch size, and PyTorch on the
# text encoder when torch and transformers are installed; prints one table (also written to
# $OUT_DIR/gpu-check.md). Planned to finish in under 8 minutes on an H100/H200 once the build is done.
#
#   scripts/gpu-check.sh               # CUDA GPU 0
#   scripts/gpu-check.sh wgpu          # the same on burn's wgpu backend (Vulkan/Metal; lavapipe works, slowly)
#
# Needs: a Rust toolchain with the crates fetched (`cargo fetch --locked`; no network is used
# with MMIF_OFFLINE=1), python3 (standard library; the synthetic images and the table), the NVIDIA
# driver (libcuda) and NVRTC (CUDA toolkit, or the nvidia-cuda-nvrtc wheel on LD_LIBRARY_PATH).
# The parity tests read the fixtures from $MMIF_FIXTURES (default ../shared/fixtures); without
# them the table says so and the rest still runs. MMIF_GPU_BUILD=0 skips the build (reuses target/).
set -euo pipefail
cd "$(dirname "$0")/.."

backend=${1:-cuda}
case "$backend" in
    cuda | cuda:* | wgpu | wgpu:*) ;;
    *)
        echo "usage: $0 [cuda[:N]|wgpu[:N]]" >&2
        exit 2
        ;;
esac
feature=${backend%%:*}
out=${OUT_DIR:-target/gpu-check}
mkdir -p "$out"
rm -f "$out"/rows.tsv
offline=()
[ "${MMIF_OFFLINE:-0}" = 1 ] && offline=(--offline)
features=mmif-nn/$feature,mmif-train/$feature,mmif-fuse/$feature,mmif-cli/$feature
cargo_test=(cargo test --release --locked "${offline[@]}" --workspace --features "$features")
bin=target/release/mmif
export MMIF_FIXTURES="${MMIF_FIXTURES:-../shared/fixtures}"
start=$(date +%s)

row() { # what, setting, figure, note
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$out/rows.tsv"
    printf '%-28s %-34s %-16s %s\n' "$1" "$2" "$3" "$4"
}

if [ "${MMIF_GPU_BUILD:-1}" = 1 ]; then
    echo "== build (--features $feature)"
    t=$(date +%s)
    # the test binaries, the `mmif` binary they run, and the text encoder's benchmark, with one
    # feature resolution (the workspace's), so nothing is built twice
    { "${cargo_test[@]}" --no-run && cargo build --release --locked "${offline[@]}" --workspace \
        --features "$features" --example bench_text; } >"$out/build.log" 2>&1 || {
        tail -30 "$out/build.log"
        exit 1
    }
    row build "--features $feature" "$(($(date +%s) - t)) s" ""
fi
[ -x "$bin" ] || {
    echo "$bin missing: build first (MMIF_GPU_BUILD=1)" >&2
    exit 1
}
echo "== device"
"$bin" bench -m cddfuse --size 32x32 --runs 1 --device "$backend" --json >"$out/device.json"
device=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["device"])' "$out/device.json")
echo "$device"

echo "== parity tests on $backend (forward: CDDFuse, EMMA, FILM, text encoder; one training step per procedure)"
if [ -f "$MMIF_FIXTURES/forward_meta.json" ]; then
    t=$(date +%s)
    if MMIF_TEST_DEVICE=$backend "${cargo_test[@]}" --test cddfuse --test emma --test film --test text_encoder \
        --test cddfuse_step --test emma_step --test film_step --test run_resume >"$out/parity.log" 2>&1; then
        verdict=pass
    else
        verdict=FAIL
    fi
    passed=$(grep -o '[0-9]* passed' "$out/parity.log" | awk '{s += $1} END {print s + 0}')
    failed=$(grep -o '[0-9]* failed' "$out/parity.log" | awk '{s += $1} END {print s + 0}')
    row "parity tests" "$passed passed, $failed failed" "$verdict" "$(($(date +%s) - t)) s; log: $out/parity.log"
else
    row "parity tests" "not run" "-" "no fixtures at $MMIF_FIXTURES (set MMIF_FIXTURES)"
fi

echo "== inference: mmif bench (median of 5 runs after a warm-up, PNG-free: planes in, plane out)"
for model in cddfuse emma film; do
    for size in 480x640 1080x1920; do
        if "$bin" bench -m "$model" --size "$size" --runs 5 --device "$backend" --json >"$out/bench-$model-$size.json" 2>"$out/bench-$model-$size.err"; then
            ms=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))[0]; print(f"{1e3*r["median_s"]:.1f} ms")' "$out/bench-$model-$size.json")
            range=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))[0]; print(f"min {1e3*r["min_s"]:.1f}, max {1e3*r["max_s"]:.1f} ms")' "$out/bench-$model-$size.json")
            row "bench $model" "$size" "$ms" "$range"
        else
            row "bench $model" "$size" "error" "$(tail -1 "$out/bench-$model-$size.err")"
        fi
    done
done

echo "== training: one step of each procedure at its official batch size"
data=$out/data
python3 - "$data" <<'EOF'
# 16 pairs of 480×640 textured gray PNGs (ir/, vis/), their 288×384 FILM versions, and FILM text
# features (149×768 float32 .npy), written with the standard library only.
import math, os, struct, sys, zlib

root = sys.argv[1]

def png(path, w, h, f):
    raw = b"".join(b"\0" + bytes(f(x, y) for x in range(w)) for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                 + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))

def tex(phase):
    return lambda x, y: int(127 + 100 * math.sin(x * 0.037 + phase) * math.cos(y * 0.023 - phase))

for d in ["ir", "vis", "film_ir", "film_vis", "text"]:
    os.makedirs(os.path.join(root, d), exist_ok=True)
for i in range(16):
    png(f"{root}/ir/p{i}.png", 640, 480, tex(i))
    png(f"{root}/vis/p{i}.png", 640, 480, tex(1.7 + 0.5 * i))
for i in range(6):
    png(f"{root}/film_ir/p{i}.png", 384, 288, tex(i))
    png(f"{root}/film_vis/p{i}.png", 384, 288, tex(1.7 + 0.5 * i))
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (149, 768), }"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    with open(f"{root}/text/p{i}.npy", "wb") as fh:
        fh.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        fh.write(struct.pack("<%df" % (149 * 768), *[math.sin(0.618 * k) * 0.5 for k in range(149 * 768)]))
EOF
prep() { "$bin" prepare "$@" --force >>"$out/prepare.log" 2>&1; }
prep --ir-dir "$data/ir" --vis-dir "$data/vis" -o "$data/pairs.mmifds" --patch 128 --stride 128 --low-contrast 0
prep --fused-dir "$data/vis" --ir-dir "$data/ir" -o "$data/ai.mmifds" --patch 128 --stride 128 --low-contrast 0
prep --fused-dir "$data/ir" --vis-dir "$data/vis" -o "$data/av.mmifds" --patch 128 --stride 128 --low-contrast 0
prep --ir-dir "$data/film_ir" --vis-dir "$data/film_vis" --text-dir "$data/text" -o "$data/film.mmifds"
train_step() { # procedure, dataset, extra args…
    local m=$1 d=$2
    shift 2
    local run=$out/run-$m
    if "$bin" train -m "$m" --data "$d" -o "$run" --force --max-steps 3 --checkpoint-every 0 --sample-batches 0 \
        --device "$backend" "$@" >"$out/train-$m.log" 2>&1; then
        python3 - "$run" "$m" <<'EOF' >>"$out/rows.tsv"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1] + "/loss.jsonl")]
params = json.load(open(sys.argv[1] + "/params.json"))
t = sorted(l["step_seconds"] for l in lines[1:]) or [lines[0]["step_seconds"]]
print(f"train step {sys.argv[2]}\tbatch {params['config']['batch']}\t{1e3 * t[len(t) // 2]:.1f} ms\t"
      f"median of steps 2-{len(lines)}; first {1e3 * lines[0]['step_seconds']:.0f} ms")
EOF
        tail -1 "$out/rows.tsv" | tr '\t' ' '
    else
        row "train step $m" "official batch" "error" "$(tail -1 "$out/train-$m.log")"
    fi
}
train_step cddfuse "$data/pairs.mmifds"
train_step emma-ai "$data/ai.mmifds"
train_step emma-av "$data/av.mmifds"
train_step emma "$data/pairs.mmifds" --ai "$out/run-emma-ai/emma-ai.safetensors" --av "$out/run-emma-av/emma-av.safetensors"
train_step film "$data/film.mmifds"

echo "== text encoder (bert-base, 149 tokens): mmif vs PyTorch"
if target/release/examples/bench_text --device "$backend" --paragraphs 20 >"$out/text-mmif.log" 2>&1; then
    row "text encoder mmif" "bert-base, T=149" "$(grep -o 'median [0-9.]* paragraphs/s' "$out/text-mmif.log" | cut -d' ' -f2) par/s" ""
else
    row "text encoder mmif" "bert-base, T=149" "error" "$(tail -1 "$out/text-mmif.log")"
fi
case "$backend" in
    cuda) torch_device=cuda ;;
    cuda:*) torch_device=$backend ;;
    *) torch_device=cpu ;;
esac
if python3 -c 'import torch, transformers' 2>/dev/null; then
    if python3 tools/bench_text_transformers.py --device "$torch_device" --paragraphs 20 >"$out/text-torch.log" 2>&1; then
        row "text encoder PyTorch" "bert-base, T=149, $torch_device" "$(grep -o 'median [0-9.]* paragraphs/s' "$out/text-torch.log" | cut -d' ' -f2) par/s" "transformers BertModel, eager"
    else
        row "text encoder PyTorch" "$torch_device" "error" "$(tail -1 "$out/text-torch.log")"
    fi
else
    row "text encoder PyTorch" "-" "not run" "torch and transformers are not both installed"
fi

echo
python3 - "$out/rows.tsv" "$device" "$(($(date +%s) - start))" <<'EOF' | tee "$out/gpu-check.md"
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
print(f"mmif GPU check on {sys.argv[2]} ({sys.argv[3]} s in all)\n")
print("| what | setting | figure | note |\n|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(r) + " |")
EOF
