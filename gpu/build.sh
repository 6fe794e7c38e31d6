#!/usr/bin/env bash
# Builds `selfplay --features cuda` and the GPU test binaries here, without a GPU or a CUDA
# installation, and gathers them for `gpu/check.sh` on a GPU machine:
#
#   gpu/build.sh [BUNDLE]        (default: target/gpu-bundle)
#
# The toolkit comes from gpu/install-toolkit.sh (CUDA 13.0 from PyPI). Kernels are built for
# compute capability $CUDA_COMPUTE_CAP (90, Hopper: H100, H200, unless set). The first build takes
# about half an hour on two cores, most of it nvcc compiling candle's quantized-matmul kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle="${1:-target/gpu-bundle}"

gpu/install-toolkit.sh target/cuda-toolkit >/dev/null
# shellcheck source=/dev/null
source target/cuda-toolkit/env.sh

# A target directory of its own: the CPU build in target/ keeps its artifacts.
export CARGO_TARGET_DIR=target/cuda
cargo build --release --features cuda --bin selfplay
# The test binary's path is only known from cargo's messages.
tests_json="$(cargo test --release -p selfplay-policy --features cuda --test cuda --no-run --message-format=json)"
cuda_tests="$(printf '%s\n' "$tests_json" | grep '"executable":"[^"]' | sed -E 's/.*"executable":"([^"]+)".*/\1/' | tail -1)"

rm -rf "$bundle"
mkdir -p "$bundle"
# Stripped and compressed: the bundle travels to the GPU machine, and candle's kernels (PTX text
# and Hopper machine code) make each binary about 60 MB; compressed, about 8.
for pair in "selfplay:$CARGO_TARGET_DIR/release/selfplay" "policy-cuda-tests:$cuda_tests"; do
  name="${pair%%:*}"
  strip -o "$bundle/$name" "${pair#*:}"
  xz -T0 -6 "$bundle/$name"
done
git rev-parse HEAD >"$bundle/commit" 2>/dev/null || true
echo "CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP" >>"$bundle/commit"
du -sh "$bundle"/*
