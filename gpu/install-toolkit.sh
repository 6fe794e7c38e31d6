#!/usr/bin/env bash
# Installs what building `--features cuda` needs on a machine without CUDA: the compiler, headers
# and libraries as NVIDIA publishes them on PyPI, unpacked into one toolkit tree, plus a stub
# `libcuda.so` to link against (the real one comes with the driver, on the machine that runs it).
#
#   gpu/install-toolkit.sh [PREFIX]     (default: target/cuda-toolkit)
#
# Prints the environment to build with; `gpu/build.sh` sources it. The versions are CUDA 13.0's,
# the newest that a 580 driver runs: candle's kernels are shipped as PTX, and a driver refuses PTX
# from a newer compiler than itself.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix="${1:-target/cuda-toolkit}"
mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"
root="$prefix/nvidia/cu13"

wheels=(
  nvidia-cuda-nvcc==13.0.88      # nvcc, ptxas, fatbinary
  nvidia-nvvm==13.0.88           # cicc, the device-code front end nvcc calls
  nvidia-cuda-crt==13.0.88       # nvcc's device runtime headers
  nvidia-cuda-runtime==13.0.96   # cuda_runtime.h, libcudart
  nvidia-cuda-cccl==13.0.85      # cub, thrust, libcu++ headers
  nvidia-cuda-nvrtc==13.0.88     # libnvrtc (candle compiles a few kernels at run time)
  nvidia-curand==10.4.0.35       # libcurand
  nvidia-cublas==13.0.2.14       # libcublas, libcublasLt
)

if [[ ! -x "$root/bin/nvcc" || ! -e "$prefix/.complete" ]]; then
  download="$prefix/wheels"
  mkdir -p "$download"
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$download" "${wheels[@]}"
  for w in "$download"/*.whl; do
    python3 -m zipfile -e "$w" "$prefix"
  done
  rm -rf "$download"
  chmod +x "$root"/bin/* "$root"/nvvm/bin/*
fi

# The libraries come as `libX.so.N` only; the linker looks for `libX.so`.
for lib in "$root"/lib/lib*.so.*; do
  base="${lib%%.so.*}.so"
  [[ -e "$base" ]] || ln -s "$(basename "$lib")" "$base"
done

# cudarc links the driver API dynamically: every `cu*` function it declares, as empty stubs in a
# library named like the driver's, so that the link succeeds; at run time the driver's own
# libcuda.so.1 is loaded instead. The names come from cudarc's own bindings.
stub="$root/lib/stubs"
if [[ ! -e "$stub/libcuda.so" ]]; then
  mkdir -p "$stub"
  cudarc="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-* 2>/dev/null | sort -V | tail -1)"
  if [[ -z "$cudarc" ]]; then
    cargo fetch --quiet
    cudarc="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-* | sort -V | tail -1)"
  fi
  grep -ohE '^\s+fn cu[A-Za-z0-9_]+\(' "$cudarc"/src/driver/sys/*.rs \
    | sed -E 's/^\s+fn (cu[A-Za-z0-9_]+)\(/\1/' | sort -u \
    | awk '{ print "void " $1 "(void) {}" }' >"$stub/libcuda.c"
  cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stub/libcuda.so" "$stub/libcuda.c"
fi
touch "$prefix/.complete"

cat >"$prefix/env.sh" <<ENV
export CUDA_HOME="$root"
export CUDA_PATH="$root"
export PATH="$root/bin:\$PATH"
export LIBRARY_PATH="$root/lib:$stub\${LIBRARY_PATH:+:\$LIBRARY_PATH}"
export CUDA_COMPUTE_CAP="\${CUDA_COMPUTE_CAP:-90}"
ENV
echo "CUDA 13.0 toolkit in $root; environment in $prefix/env.sh"
