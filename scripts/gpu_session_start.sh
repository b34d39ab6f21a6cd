# Sourced by the GPU session scripts (gpu_gate_session.sh, gpu_coverage_session.sh), from the repository
# root: $OUT made, unbuffered Python, with DEVICE_SNAPSHOT=1 the tree committed, and the card, torch
# and commit written to $OUT/host.txt.
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
  python3 -c "import torch; print('torch', torch.__version__)"; git log --oneline -1; git status --short | head -3; } > "$OUT/host.txt" 2>&1
