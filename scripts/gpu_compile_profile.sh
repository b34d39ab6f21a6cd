#!/usr/bin/env bash
# Where a GPU gate run's seconds go (issue 21: the compile phase is ~20 s of a ~24 s run): one suite run
# of the gate's selection as `perf-core ab --metric device` starts it (--figures=device, no breakdown)
# under cProfile, twice on GPU 0 (the second with inductor's on-disk cache warm). Run by the device tool
# from the repository root; results under $OUT.
set -u
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT"
for i in 1 2; do
  CUDA_VISIBLE_DEVICES=0 python3 -m cProfile -o "/tmp/profile$i.out" -m pytest tests/test_latency.py --benchmark-only -q \
    -p no:cacheprovider -o perf_gate=true -o perf_autosave=false --figures=device --no-breakdown \
    --benchmark-max-time=0.3 --benchmark-json "$OUT/profile_run$i.json" > "$OUT/profile_run$i.log" 2>&1
  python3 - "/tmp/profile$i.out" >> "$OUT/profile_run$i.log" <<'PY'
import pstats, sys
stats = pstats.Stats(sys.argv[1])
stats.sort_stats("cumulative").print_stats(70)
stats.sort_stats("tottime").print_stats(30)
PY
done
