#!/usr/bin/env bash
# One lease of one H200 for issue 22's cross-check and issue 21's one-GPU gate (run by the device tool
# from the repository root; results under $OUT): the GPU breakdown tests, the compiled suite with its
# breakdowns (each call's kernels and the device's idle time between them against device_s), then an
# A/A gate and the widened-QKV gate (+~5% attention device time), each explained. Each step under
# `timeout`, so that what it printed comes back.
set -u
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
# The device tool's copy of the tree may carry an older .git: with DEVICE_SNAPSHOT=1 (the device
# tool's calls set it; never in a checkout of your own, whose changes it would commit) the tree is
# committed as it is, so that HEAD (and a clone of it) is the code under test.
if [ "${DEVICE_SNAPSHOT:-}" = 1 ]; then
  git -c user.name=device -c user.email=device@localhost commit -qam "device snapshot" > /dev/null 2>&1
  git add -A > /dev/null 2>&1 && git -c user.name=device -c user.email=device@localhost commit -qm "device snapshot (new files)" > /dev/null 2>&1
fi
{ nvidia-smi --query-gpu=index,name,uuid,clocks.max.sm,clocks.sm,temperature.gpu --format=csv
  python3 -c "import torch; print('torch', torch.__version__)"; git log --oneline -1; } > "$OUT/host.txt" 2>&1
timed() {  # timed LIMIT NAME COMMAND...: stdout and stderr to $OUT/NAME.txt, wall time at its end
  local limit=$1 name=$2; shift 2
  timeout "$limit" /usr/bin/time -f "wall %e s" "$@" > "$OUT/$name.txt" 2>&1
}
timed 120 gpu_tests python3 -m pytest tests/test_gpu.py -q -p no:cacheprovider -k "breakdown"
timed 200 suite python3 -m pytest tests/test_latency.py --benchmark-only -q -p no:cacheprovider --variants compiled \
  -o perf_autosave=false --benchmark-json "$OUT/suite.json"
PYTHONPATH=. python3 scripts/check_gpu.py --coverage "$OUT/suite.json" > "$OUT/coverage.md" 2>&1
[ "${1:-}" = "--coverage-only" ] && exit 0
timed 260 aa python3 -m perf_core.cli ab HEAD HEAD --metric device --out /tmp/aa
timed 260 wide python3 scripts/gate_trials.py --trials 1 --widen 0.13 -- --metric device --markdown "$OUT/wide.md"
