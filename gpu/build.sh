#!/usr/bin/env bash
# Builds `selfplay --features cuda` and the GPU test binaries here, without a GPU or a CUDA
# installation, and gathers them for `gpu/check.sh` on a GPU machine:
#
#   gpu/build.sh [BUNDLE]        (default: target/gpu-bundle)
#
# The toolkit comes from gpu/install-toolkit.sh (CUDA 13.0 from PyPI). Kernels are built for
# compute capability $CUDA_COMPUTE_CAP (90, Hopper: H100, H200, unless set). The first build takes
# about a quarter of an hour on two cores, most of it nvcc compiling candle's quantized-matmul
# kernels.
set -euo pipefail
cd "$(dirname "$0")/.."
bundle="${1:-target/gpu-bundle}"

gpu/install-toolkit.sh target/cuda-toolkit >/dev/null
# shellcheck source=/dev/null
source target/cuda-toolkit/env.sh

# A target directory of its own: the CPU build in target/ keeps its artifacts.
export CARGO_TARGET_DIR=target/cuda
# One cargo invocation for the binary and the GPU tests: built apart, dev-dependencies change the
# features of a few shared crates and candle is compiled twice. The binary comes with an
# integration test of the root package (tests/cli.rs), which runs it; the test binary's path is
# only known from cargo's messages.
tests_json="$(cargo test --release --features cuda -p selfplay -p selfplay-policy --test cuda --test cli \
  --no-run --message-format=json)"
cuda_tests="$(printf '%s\n' "$tests_json" | grep '"executable":"[^"]*/cuda-[^"]*"' |
  sed -E 's/.*"executable":"([^"]+)".*/\1/' | tail -1)"
[[ -x "$cuda_tests" && -x "$CARGO_TARGET_DIR/release/selfplay" ]] || {
  echo "gpu/build.sh: cargo did not leave the binary and the GPU tests where expected" >&2
  exit 1
}

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
