"""Would an interleaved reference timer cancel the CPU's run-to-run noise? (docs/gate.md, fifth pass)

Each of --processes fresh processes prepares the gate's 18 compiled CPU benchmarks (cpu-small, cold
cache, one thread, pinned to core 0) and times each for --seconds plainly, then as much again with a
fixed 32x256x256 torch.mm timed after every call. Printed per benchmark, over the processes: the
max/min of the plain median, and of the median of (call / reference) pairs.

    TORCHINDUCTOR_COMPILE_THREADS=1 python scripts/reference_timer.py --processes 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def measure(seconds: float) -> dict[str, tuple[float, float]]:
    """{benchmark: (plain median s, median call/reference ratio)} in this process."""
    import torch

    from perf_core import contract
    from perf_core.measure import core
    from perf_core.measure.workload import PRESETS

    torch.set_num_threads(1)
    os.sched_setaffinity(0, {0})
    a, w = torch.randn(32, 256), torch.randn(256, 256)
    out = {}
    for kernel in ("attention", "matmul", "mlp"):
        for n in contract.TOKEN_COUNTS:
            fn = core.prepare(PRESETS["cpu-small"].workload(kernel, n, "cpu"), "compiled", cache=contract.COLD).fn
            plain, ratios = [], []
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                fn()
                plain.append(time.perf_counter() - t0)
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                fn()
                t1 = time.perf_counter()
                torch.mm(a, w)
                ratios.append((t1 - t0) / (time.perf_counter() - t1))
            out[contract.bench_name(kernel, "compiled", n)] = (statistics.median(plain), statistics.median(ratios))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.25, help="per benchmark and way of timing")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # a process's JSON output path
    args = parser.parse_args()
    if args.child:
        Path(args.child).write_text(json.dumps(measure(args.seconds)))
        return 0
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder, f"{i}.json") for i in range(args.processes)]
        for i, path in enumerate(paths, 1):
            print(f"process {i} of {args.processes}", file=sys.stderr, flush=True)
            command = [sys.executable, __file__, "--seconds", str(args.seconds), "--child", str(path)]
            subprocess.run(command, check=True)
        runs = [json.loads(path.read_text()) for path in paths]
    print(f"{'benchmark':24} {'plain max/min':>14} {'relative max/min':>17}")
    for name in runs[0]:
        plain, relative = ([run[name][k] for run in runs] for k in (0, 1))
        print(f"{name:24} {max(plain) / min(plain):14.3f} {max(relative) / min(relative):17.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
