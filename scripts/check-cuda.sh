#!/usr/bin/env bash
# Checks that xhand builds with candle's CUDA backend (`--features cuda`) on a machine with
# no GPU, no driver and no CUDA install: the CUDA 13.0 toolkit comes from NVIDIA's PyPI wheels,
# a link-time libcuda stub stands in for the driver. Not part of CI (it downloads ~1.2 GB and
# compiles candle's kernels); run it whenever candle GPU code changes.
#
#   bash scripts/check-cuda.sh
#   XHAND_CUDA_PREFIX   wheels and CUDA tree  (default ~/.cache/xhand-cuda13)
#   CARGO_TARGET_DIR    cargo target dir      (default $XHAND_CUDA_PREFIX/target)
#   CUDA_COMPUTE_CAP    PTX target            (default 80: PTX that also JIT-compiles on Hopper)
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${XHAND_CUDA_PREFIX:-$HOME/.cache/xhand-cuda13}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$prefix/target}
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-80}

# 1. CUDA 13.0 from PyPI, pinned (a newer nvcc writes PTX a CUDA 13.0 driver cannot JIT).
pkgs="nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
      nvidia-cuda-cccl==13.0.85 nvidia-cuda-runtime==13.0.96 nvidia-cuda-nvrtc==13.0.88
      nvidia-cublas==13.1.0.3 nvidia-curand==10.4.0.35"
cuda=$prefix/site/nvidia/cu13
stamp=$prefix/site/.xhand-$(echo $pkgs | md5sum | cut -c1-8)
if [ ! -e "$stamp" ]; then
    rm -rf "$prefix/site"
    python3 -m pip install -q --no-deps --only-binary=:all: --target "$prefix/site" $pkgs
    touch "$stamp"
fi

# 2. A CUDA_HOME: unversioned library names for the linker and a libcuda stub (soname
#    libcuda.so.1, every entry point returning CUDA_ERROR_STUB_LIBRARY) to link against.
for so in "$cuda"/lib/lib*.so.*; do ln -sfn "$(basename "$so")" "${so%%.so.*}.so"; done
ln -sfn lib "$cuda/lib64"
mkdir -p "$cuda/lib/stubs"
if [ ! -e "$cuda/lib/stubs/libcuda.so" ]; then
    for d in "" -DCUDA_API_PER_THREAD_DEFAULT_STREAM -D__CUDA_API_VERSION_INTERNAL; do
        gcc -E -P $d -I"$cuda/include" -x c "$cuda/include/cuda.h"
    done | grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | tr -d ' (' |
        cat - <(printf '%s\n' cuProfilerInitialize cuProfilerStart cuProfilerStop) | sort -u |
        sed 's/.*/int &(void) { return 34; }/' > "$cuda/lib/stubs/libcuda-stub.c"
    gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$cuda/lib/stubs/libcuda.so" \
        "$cuda/lib/stubs/libcuda-stub.c"
fi

# 3. Build the binary with the CUDA backend (and the wgpu pipeline, without the viewer).
export CUDA_HOME=$cuda PATH=$cuda/bin:$PATH
time cargo build --locked --no-default-features --features cuda,gpu --bin xhand
echo "check-cuda: the --features cuda build passed ($CARGO_TARGET_DIR/debug/xhand)"
