#!/usr/bin/env bash
# The Python package's tests (crates/mmif-py): builds the abi3 wheel with maturin in release, in
# the workspace's target folder and release profile (the dependencies `cargo test --release`
# built are reused; only pyo3 and the extension are compiled), installs it into a fresh virtual
# environment with pytest, numpy, pillow and Ray, and runs pytest against the `mmif` binary and
# the fixtures ($MMIF_FIXTURES, default ../shared/fixtures). Needs python3 (>= 3.9) with venv and
# network access to the Python package index.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/test_features.sh

python=${PYTHON:-python3}
venv=target/py-venv
wheels=target/wheels

echo "== $(date +%T) python: a fresh virtual environment ($venv)"
"$python" -m venv --clear "$venv"
"$venv/bin/pip" install -q --upgrade pip
"$venv/bin/pip" install -q "maturin>=1.5,<2" pytest numpy pillow "ray[data]"

echo "== $(date +%T) python: the wheel (maturin build --release)"
rm -rf "$wheels"
# the workspace's test features (scripts/test.sh), so that burn is not built a second time
py_features=()
[ -z "$MMIF_TEST_FEATURES" ] || py_features=(--features wgpu)
"$venv/bin/maturin" build --release --locked -m crates/mmif-py/Cargo.toml -i "$venv/bin/python" -o "$wheels" \
    "${py_features[@]}"
"$venv/bin/pip" install -q "$wheels"/mmif_fusion-*.whl

echo "== $(date +%T) python: the mmif binary"
# with mmif-py selected too, the dependencies' features are the workspace's (a no-op after
# `cargo test --release --workspace`; `-p mmif-cli` alone would rebuild the proc macros and burn)
cargo build --release --locked -p mmif-cli -p mmif-py --bin mmif "${test_features[@]}"

echo "== $(date +%T) python: pytest"
export MMIF_BIN="$PWD/target/release/mmif"
export MMIF_FIXTURES="${MMIF_FIXTURES:-../shared/fixtures}"
# the tests import the installed wheel, not the source folder
cd "$venv" && "$PWD/bin/python" -m pytest -q -p no:cacheprovider "$OLDPWD/crates/mmif-py/tests"
