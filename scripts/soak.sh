#!/usr/bin/env bash
# Soak run: the viewer plays a looping 90-frame sequence on the embedded default avatar for
# MINUTES (default 30) under Xvfb with Mesa's lavapipe, as the tests run it, and prints its
# resident memory once a minute (the script's reports). Memory should stay flat after the
# first minutes. Not in CI (it takes as long as it says).
#
#   bash scripts/soak.sh [MINUTES]
#
# Uses the README's build (cargo build --locked) unless XHAND_BIN names a binary; needs
# xvfb-run and lavapipe (scripts/test.sh installs them) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:-30}"
bin="${XHAND_BIN:-${CARGO_TARGET_DIR:-target}/debug/xhand}"
[ -x "$bin" ] || cargo build --locked
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$work" "$minutes" <<'PY'
import json, math, sys
work, minutes = sys.argv[1], int(sys.argv[2])
frames = []
for i in range(90):
    p = [0.0] * 48
    p[5] = math.sin(i * 0.1)
    p[14] = math.cos(i * 0.07)
    frames.append({"pose": p, "trans": [0.002 * i, 0.0, 0.0]})
json.dump({"fps": 30, "frames": frames}, open(f"{work}/seq.json", "w"))
steps = [{"drop_file": f"{work}/seq.json"}, {"wait_idle": True}, {"loop": True}, {"play": True}]
for m in range(minutes + 1):
    steps.append({"report": f"{work}/r{m}.json"})
    if m < minutes:
        steps.append({"wait_seconds": 60})
steps.append({"exit": 0})
json.dump(steps, open(f"{work}/script.json", "w"))
PY

lvp=$(ls /usr/share/vulkan/icd.d/lvp_icd*.json | head -n 1)
export VK_ICD_FILENAMES="$lvp" VK_DRIVER_FILES="$lvp" WGPU_BACKEND="${WGPU_BACKEND:-vulkan}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
echo "soak: $minutes min of looped playback ($bin, lavapipe under Xvfb)"
xvfb-run -a -s "-screen 0 1280x800x24 -noreset" "$bin" view --script "$work/script.json" \
  >"$work/viewer.log" 2>&1 || { tail -20 "$work/viewer.log"; exit 1; }

python3 - "$work" "$minutes" <<'PY'
import json, sys
work, minutes = sys.argv[1], int(sys.argv[2])
print("minute  resident MiB   fps   playing  frame")
rss = []
for m in range(minutes + 1):
    r = json.load(open(f"{work}/r{m}.json"))
    rss.append(r["memory_rss_mib"])
    print(f"{m:6d}  {r['memory_rss_mib']:12.1f}  {r['fps']:5.1f}  {str(r['playing']):7s}  {r['frame']}")
tail = rss[min(5, len(rss) - 1):]
print(f"after minute {min(5, minutes)}: min {min(tail):.1f}, max {max(tail):.1f} MiB "
      f"(growth {tail[-1] - tail[0]:+.1f} MiB)")
PY
