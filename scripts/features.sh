#!/usr/bin/env bash
# Prints the cargo `--features` list of the test builds (CI, scripts/test.sh, scripts/test_python.sh):
# burn's GPU backends named by $MMIF_TEST_FEATURES (default "wgpu"; "" for none, "wgpu,cuda" for
# both), enabled on every crate that has them, so that one build serves the CPU tests, the wgpu
# tests on Mesa's software Vulkan driver, clippy of the GPU code, the wheel and the `mmif` binary.
# `cuda` is not in the default: it needs no CUDA toolkit to compile, but burn 0.22's CUDA runtime
# (cubecl-cuda -> cubecl-llvm "nvptx") downloads a prebuilt LLVM bundle from GitHub in a build
# script (tracel-llvm-bundler), which an offline machine cannot do (README, "GPUs").
set -euo pipefail
backends=${MMIF_TEST_FEATURES-wgpu}
list=
for b in ${backends//,/ }; do
    for p in mmif-nn mmif-train mmif-fuse mmif-cli mmif-py; do
        list+="$p/$b,"
    done
done
echo "${list%,}"
