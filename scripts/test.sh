#!/usr/bin/env bash
# The test command (README § Set up on a fresh machine): installs what the tests need beyond a Rust
# toolchain — headless Chromium for the report's browser test, Mesa's software Vulkan driver
# (lavapipe) for the wgpu tests — then runs every workspace test, built once with the `wgpu`
# features, then the wgpu reruns of the network tests (tiny sizes, forward parity), then the Python
# package's tests (scripts/test_python.sh: needs python3 with venv).
# MMIF_TEST_FEATURES= (empty) tests the CPU-only build and skips the wgpu tests (no Vulkan needed).
# The parity tests read the fixtures from $MMIF_FIXTURES (default ../shared/fixtures).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/test_features.sh

apt_install() {
    # apt_install WHAT PACKAGE: installs PACKAGE as root with apt-get, or says what is missing.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== $(date +%T) installing $2 ($1)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
    else
        echo "$1 needs $2: install it (Debian/Ubuntu: apt-get install $2)" >&2
        return 1
    fi
}

if [ -z "${MMIF_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    apt_install "the report's browser test (or set MMIF_CHROMIUM to a Chromium binary)" chromium
fi
if [ -n "$MMIF_TEST_FEATURES" ] && ! ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then
    apt_install "the wgpu tests (lavapipe, Mesa's software Vulkan driver)" mesa-vulkan-drivers
fi

# With the wgpu features, tests/device_cli.rs also trains every procedure for one step on wgpu and
# compares it with the CPU, and fuses on wgpu.
echo "== $(date +%T) cargo test --release --workspace ${test_features[*]}"
cargo test --release --workspace --locked "${test_features[@]}"

if [ -n "$MMIF_TEST_FEATURES" ]; then
    # The networks from 1x1 upward and the forward parity with the official code (EMMA, FILM,
    # CDDFuse), on wgpu. CDDFuse's band test stays on the CPU: it runs the network over a dozen
    # band shapes (28 s on the CPU), and lavapipe — the CPU emulating a GPU — took 469 s for just
    # its two thick-band cases and over 17 minutes for all four.
    echo "== $(date +%T) the network tests on wgpu (MMIF_TEST_DEVICE=wgpu): tiny sizes, forward parity"
    MMIF_TEST_DEVICE=wgpu cargo test --release --workspace --locked "${test_features[@]}" \
        --test tiny --test emma --test film --test cddfuse -- --skip bands_match_official_and_the_whole_image
fi

# The Python package (crates/mmif-py): wheel, fresh virtual environment, pytest.
bash scripts/test_python.sh
