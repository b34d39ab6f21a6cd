"""Would timing both sides in one process, call by call, resolve 5% on the noisy 2-core machine?

Each of --processes fresh processes imports perf_core from --base, prepares the gate's 18 compiled
CPU benchmarks (cpu-small, cold cache, one thread, pinned to core 0), then drops those modules,
imports perf_core from --head and prepares them again; it then times each benchmark's two calls
alternately (base head, head base, ...) for --seconds. Printed per benchmark, over the processes:
the head/base ratio of medians (min, median, max) and the between-process sd of its log; and the
same for the base side's plain median (what a run alone sees).

    git clone -q . /tmp/pp/base && git clone -q . /tmp/pp/head   # and edit head
    TORCHINDUCTOR_COMPILE_THREADS=1 python scripts/paired_probe.py --base /tmp/pp/base --head /tmp/pp/head
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def load_side(root: str) -> tuple:
    """(contract, core, PRESETS) of perf_core imported from root (the other copy's modules dropped first)."""
    for name in [m for m in sys.modules if m == "perf_core" or m.startswith("perf_core.")]:
        del sys.modules[name]
    sys.path.insert(0, root)
    try:
        from perf_core import contract
        from perf_core.measure import core
        from perf_core.measure.workload import PRESETS

        assert Path(core.__file__).is_relative_to(root), core.__file__
        return contract, core, PRESETS
    finally:
        sys.path.remove(root)


def measure(base: str, head: str, seconds: float) -> dict[str, tuple[float, float]]:
    """{benchmark: (base median s, head median s)}, each benchmark's two calls prepared (compiled,
    checked) one after the other, timed alternately, then dropped with dynamo's cache, as the plugin does."""
    import torch

    torch.set_num_threads(1)
    os.sched_setaffinity(0, {0})
    sides = load_side(base), load_side(head)
    contract = sides[1][0]
    out = {}
    for kernel in ("attention", "matmul", "mlp"):
        for n in contract.TOKEN_COUNTS:
            fns = [
                core.prepare(presets["cpu-small"].workload(kernel, n, "cpu"), "compiled", cache=cpath.COLD).fn
                for cpath, core, presets in sides
            ]
            times: tuple[list[float], list[float]] = ([], [])
            end, turn = time.perf_counter() + seconds, 0
            while time.perf_counter() < end:
                for side in (turn, 1 - turn):
                    t0 = time.perf_counter()
                    fns[side]()
                    times[side].append(time.perf_counter() - t0)
                turn = 1 - turn
            out[contract.bench_name(kernel, "compiled", n)] = (statistics.median(times[0]), statistics.median(times[1]))
            del fns
            torch._dynamo.reset()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--head", required=True)
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.4, help="per benchmark, both sides together")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        Path(args.child).write_text(json.dumps(measure(args.base, args.head, args.seconds)))
        return 0
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder, f"{i}.json") for i in range(args.processes)]
        for i, path in enumerate(paths, 1):
            t0 = time.perf_counter()
            command = [sys.executable, __file__, "--base", args.base, "--head", args.head]
            subprocess.run([*command, "--seconds", str(args.seconds), "--child", str(path)], check=True)
            print(f"process {i} of {args.processes}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        runs = [json.loads(path.read_text()) for path in paths]
    print(f"{'benchmark':24} {'head/base min med max':>24} {'sd log ratio':>13} {'sd log base':>12}")
    sds = []
    for name in runs[0]:
        ratios = [run[name][1] / run[name][0] for run in runs]
        logs = [math.log(r) for r in ratios]
        plain = [math.log(run[name][0]) for run in runs]
        sds.append((statistics.stdev(logs), statistics.stdev(plain)))
        print(
            f"{name:24} {min(ratios):8.3f}{statistics.median(ratios):8.3f}{max(ratios):8.3f}"
            f" {100 * sds[-1][0]:12.1f}% {100 * sds[-1][1]:11.1f}%"
        )
    print(
        f"median over benchmarks: sd log ratio {100 * statistics.median(s[0] for s in sds):.1f}%,"
        f" sd log base {100 * statistics.median(s[1] for s in sds):.1f}%"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
