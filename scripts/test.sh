#!/usr/bin/env bash
# Runs the whole test suite: the headless core without Bevy, then everything (GPU pipeline
# and viewer) under a virtual X display with Mesa's software Vulkan driver (lavapipe).
# Installs Xvfb and lavapipe from Debian's packages when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# The same target folder as `cargo run` (cargo's default ./target, or $CARGO_TARGET_DIR when
# set), so the tests reuse the viewer's build.
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

need_pkgs=()
command -v xvfb-run >/dev/null 2>&1 || need_pkgs+=(xvfb xauth)
ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1 || need_pkgs+=(mesa-vulkan-drivers)
[ -e /usr/lib/x86_64-linux-gnu/libvulkan.so.1 ] || [ -e /usr/lib/libvulkan.so.1 ] || need_pkgs+=(libvulkan1)
[ -e /usr/lib/x86_64-linux-gnu/libxkbcommon-x11.so.0 ] || need_pkgs+=(libxkbcommon-x11-0)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "installing test dependencies: ${need_pkgs[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}"
fi

echo "== format and lints =="
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -- -D warnings

echo "== headless core (no Bevy) and the kernels crate =="
cargo test --locked --no-default-features
cargo test --locked -p xhand-simd

echo "== everything, on lavapipe under Xvfb =="
# Use the software Vulkan driver even where another ICD is installed.
lvp=$(ls /usr/share/vulkan/icd.d/lvp_icd*.json | head -n 1)
export VK_ICD_FILENAMES="$lvp" VK_DRIVER_FILES="$lvp"
export WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  XDG_RUNTIME_DIR=$(mktemp -d)
  export XDG_RUNTIME_DIR
fi
# -noreset: by default Xvfb resets when its last client disconnects, and a viewer test that
# connects during the reset fails with XOpenDisplayFailed (seen in CI with parallel tests).
xvfb-run -a -s "-screen 0 1280x800x24 -noreset" cargo test --locked
