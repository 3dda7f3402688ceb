#!/usr/bin/env bash
# The test command (README § Set up on a fresh machine): installs what the tests need beyond a Rust
# toolchain — headless Chromium for the report's browser test — then runs every workspace test,
# then the Python package's tests (scripts/test_python.sh: needs python3 with venv).
# The parity tests read the fixtures from $MMIF_FIXTURES (default ../shared/fixtures).
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

cargo test --release --workspace --locked

# The Python package (crates/mmif-py): wheel, fresh virtual environment, pytest.
bash scripts/test_python.sh
