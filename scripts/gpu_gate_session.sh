#!/usr/bin/env bash
# One lease of a two-H200 host for issue 21's GPU gate figures (run by the device tool, from the
# repository root; results under $OUT). Two one-GPU gates side by side, one a GPU: an A/A gate
# (same commit both sides) on GPU 0, its runs kept (their breakdowns give issue 22's kernel sums),
# and the widened-QKV fixture (+~5% attention device time) on GPU 1, then, with --two, an A/A gate
# over both GPUs. Each gate under `timeout` so that what it printed comes back.
set -u
source "$(dirname "$0")/gpu_session_start.sh"  # $OUT, DEVICE_SNAPSHOT, host.txt
# Preflight: one forked CUDA run; where forking fails here, the gates spawn fresh processes instead.
[ "${2:-}" = "--models-only" ] || python3 - > "$OUT/preflight.txt" 2>&1 <<'PY'
import os, sys
from perf_core.analysis import launch
args = ["-p", "no:cacheprovider", "tests/test_latency.py", "--benchmark-only", "-q", "-o", "perf_autosave=false",
        "--kernels=matmul", "--tokens=16", "--variants=compiled", "--figures=device", "--no-breakdown"]
with launch.ForkServer() as server:
    result = server.run(os.getcwd(), args, dict(os.environ, CUDA_VISIBLE_DEVICES="0"))
print("exit", result.returncode)
print(result.stdout[-2500:], result.stderr[-2500:])
sys.exit(result.returncode)
PY
[ $? -eq 0 ] || export PERF_CORE_NO_FORK=1
one_gpu() {  # one_gpu GPU NAME ARGS...: a one-GPU gate, timed
  local gpu=$1 name=$2; shift 2
  CUDA_VISIBLE_DEVICES=$gpu timeout "${LIMIT:-520}" /usr/bin/time -f "wall %e s" "$@" > "$OUT/$name.txt" 2> "$OUT/$name.err"
}
if [ "${1:-}" != "--two" ]; then
  one_gpu 0 aa_gpu0 python3 -m perf_core.cli ab HEAD HEAD --metric device --out /tmp/aa_gpu0 &
  one_gpu 1 wide_gpu1 python3 scripts/gate_trials.py --trials 1 --widen 0.13 -- --metric device --markdown "$OUT/wide_gpu1.md" &
  wait
  tar czf "$OUT/aa_gpu0_runs.tgz" -C /tmp aa_gpu0 2>/dev/null
else
  [ "${1:-}" = "--two" ] && [ "${2:-}" = "--models-only" ] || CUDA_VISIBLE_DEVICES=0,1 timeout "${LIMIT:-300}" /usr/bin/time -f "wall %e s" python3 -m perf_core.cli ab HEAD HEAD \
    --metric device --out /tmp/aa_two > "$OUT/aa_two.txt" 2> "$OUT/aa_two.err"
  [ -d /tmp/aa_two ] && tar czf "$OUT/aa_two_runs.tgz" -C /tmp aa_two 2>/dev/null
  # Then issue 23's model-scale runs, one preset a GPU: the model at 64 and 256 tokens, the decoder layer at
  # every token count (PERF_CORE_COMMIT names the commit under test, not the device's snapshot).
  # decoder and model come in through the package's entry point; uninstalled here, a plugin module registers them
  echo "from perf_core.measure import llama; llama.register_kernels()" > /tmp/llama_kernels.py
  for gpu in 0 1; do
    preset=$([ $gpu = 0 ] && echo llama-7b || echo llama-3-8b)
    # MODEL_TOKENS / DECODER_TOKENS: the token counts of each (set and empty: no such run).
    ( for job in "model ${MODEL_TOKENS-64,256} ${MODEL_LIMIT:-200}" "decoder ${DECODER_TOKENS-16,32,64,128,256,512} ${DECODER_LIMIT:-90}"; do
        set -- $job
        [ $# -eq 3 ] || continue
        CUDA_VISIBLE_DEVICES=$gpu PYTHONPATH=/tmp timeout "$3" python3 -m pytest -p llama_kernels tests/test_latency.py --benchmark-only -q -p no:cacheprovider \
          --kernels "$1" --variants compiled --tokens "$2" --preset "$preset" --benchmark-max-time 0.1 \
          --benchmark-storage "$OUT/$preset" > "$OUT/${preset}_$1.log" 2>&1
      done ) &
  done
  wait
  # One archive for the runs and logs: the device tool brings back few files a call.
  tar czf "$OUT/models.tgz" -C "$OUT" $(cd "$OUT" && ls -d llama-* 2>/dev/null) && rm -rf "$OUT"/llama-*
fi
tail -n 4 "$OUT"/*.err 2>/dev/null
