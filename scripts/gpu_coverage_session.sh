#!/usr/bin/env bash
# One lease of one H200 for issue 22's cross-check and issue 21's one-GPU gate (run by the device tool
# from the repository root; results under $OUT): the GPU breakdown tests, the compiled suite with its
# breakdowns (each call's kernels and the device's idle time between them against device_s), then an
# A/A gate and the widened-QKV gate (+~5% attention device time), each explained. Each step under
# `timeout`, so that what it printed comes back.
set -u
source "$(dirname "$0")/gpu_session_start.sh"  # $OUT, DEVICE_SNAPSHOT, host.txt
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
