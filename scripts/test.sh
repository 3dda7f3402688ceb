#!/usr/bin/env bash
# The test command (README § Set up on a fresh machine): installs what the tests need beyond a Rust
# toolchain — headless Chromium for the report's browser test — then runs every workspace test,
# then the Python package's tests (scripts/test_python.sh: needs python3 with venv).
# The parity tests read the fixtures from $MMIF_FIXTURES (default ../shared/fixtures).
# The build has burn's GPU backends (scripts/features.sh; MMIF_TEST_FEATURES= for none): the
# networks' forward parity tests and one training step of each procedure run a second time on
# wgpu over Mesa's software Vulkan driver (lavapipe, installed here like Chromium), and the
# `cuda` backend is left out (its build downloads LLVM: scripts/features.sh; scripts/gpu-check.sh
# builds and runs it on a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${MMIF_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing chromium (the report's browser test)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "the report's browser test needs Chromium: install it (Debian/Ubuntu: apt-get install chromium)" \
            "or set MMIF_CHROMIUM to a Chromium binary" >&2
        exit 1
    fi
fi

features=$(bash scripts/features.sh)
export MMIF_CARGO_FEATURES=$features
if [[ ",${MMIF_TEST_FEATURES-wgpu}," == *,wgpu,* ]] && ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing mesa-vulkan-drivers (lavapipe: the wgpu tests without a GPU)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
    else
        echo "the wgpu tests need a Vulkan driver: install Mesa's (Debian/Ubuntu: apt-get install" \
            "mesa-vulkan-drivers libvulkan1), or set MMIF_TEST_FEATURES= to test the CPU build only" >&2
        exit 1
    fi
fi

cargo test --release --workspace --locked --features "$features"

if [[ ",${MMIF_TEST_FEATURES-wgpu}," == *,wgpu,* ]]; then
    echo "== the forward parity tests and the training steps again, on wgpu (MMIF_TEST_DEVICE=wgpu)"
    MMIF_TEST_DEVICE=wgpu cargo test --release --workspace --locked --features "$features" \
        --test cddfuse --test emma --test film --test text_encoder \
        --test cddfuse_step --test emma_step --test film_step --test run_resume
fi

# The Python package (crates/mmif-py): wheel, fresh virtual environment, pytest.
bash scripts/test_python.sh
