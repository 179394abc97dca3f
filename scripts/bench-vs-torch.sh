#!/usr/bin/env bash
# Side by side: `xhand eval` vs the same per-frame work in plain PyTorch eager (f32,
# scripts/bench_vs_torch.py) on a paper-size random avatar, whole process each, median of 3
# runs; prints both, the ratio (PyTorch time / xhand time: above 1 means xhand is faster) and
# the largest difference between their outputs.
#
# Installs PyTorch and safetensors into a venv ($XHAND_BENCH_VENV, default
# ~/.cache/xhand/bench-venv) when missing. Uses the README's build (cargo build --locked) unless
# XHAND_BIN names a binary. Extra arguments go to `xhand eval` (e.g. --nets wgpu).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${XHAND_BENCH_VENV:-$HOME/.cache/xhand/bench-venv}"
if ! "$venv/bin/python" -c "import torch, safetensors" >/dev/null 2>&1; then
  echo "installing PyTorch into $venv (once)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet torch safetensors numpy
fi
py="$venv/bin/python"

if [ -z "${XHAND_BIN:-}" ]; then
  cargo build --locked --quiet
  XHAND_BIN="${CARGO_TARGET_DIR:-target}/debug/xhand"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$XHAND_BIN" make-test-avatar --paper-size --out "$work/paper.safetensors" >/dev/null
"$py" - "$work/pose.json" <<'PY'
import json, math, sys
pose = [0.4 * math.sin(0.7 * i + 0.3) for i in range(48)]
json.dump({"frames": [{"pose": pose}]}, open(sys.argv[1], "w"))
PY

# Wall time of one whole process, in seconds.
wall() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >/dev/null
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }

xs=(); ts=()
for _ in 1 2 3; do
  xs+=("$(wall "$XHAND_BIN" eval --avatar "$work/paper.safetensors" --pose "$work/pose.json" \
    --out "$work/xhand.safetensors" "$@")")
  ts+=("$(wall "$py" scripts/bench_vs_torch.py "$work/paper.safetensors" "$work/pose.json" \
    "$work/torch.safetensors")")
done
x=$(median "${xs[@]}"); t=$(median "${ts[@]}")
echo "machine: $(nproc) cores; torch $("$py" -c 'import torch; print(torch.__version__, "threads", torch.get_num_threads())')"
echo "xhand eval $*: runs ${xs[*]} s -> median $x s"
echo "PyTorch eager:  runs ${ts[*]} s -> median $t s"
printf 'ratio (PyTorch / xhand): %.2f\n' "$(echo "$t / $x" | bc -l)"
"$py" - "$work/xhand.safetensors" "$work/torch.safetensors" <<'PY'
import sys
from safetensors.torch import load_file
a, b = load_file(sys.argv[1]), load_file(sys.argv[2])
worst = {k: float((a[k] - b[k]).abs().max()) for k in sorted(b)}
print("largest |xhand - torch| per output:", ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
PY
