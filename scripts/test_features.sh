# Sourced by scripts/test.sh, scripts/test_python.sh and .ci/run: the cargo features of the one test
# build (`wgpu` across the workspace, so the tests also run on wgpu over Mesa's lavapipe).
# MMIF_TEST_FEATURES= (set and empty) builds and tests the CPU-only default instead.
export MMIF_TEST_FEATURES="${MMIF_TEST_FEATURES-mmif-nn/wgpu,mmif-train/wgpu,mmif-fuse/wgpu,mmif-cli/wgpu,mmif-py/wgpu}"
test_features=()
[ -z "$MMIF_TEST_FEATURES" ] || test_features=(--features "$MMIF_TEST_FEATURES")
