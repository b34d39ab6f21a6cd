"""How much does a host-bound call's time drift, and does pinning the thread or pausing gc help?

Host-bound calls (eager attention and matmul on a GPU: Python plus a few launches per call) moved by
up to 2x between passes on the lent GPU machines. This times the same warmed call under each
condition in turn (round-robin, so slow drift of the machine lands on all of them alike) with
torch.utils.benchmark.Timer.blocked_autorange and prints, per condition, the spread of the block
medians it got: median, min, max, and max/min - 1.

    python scripts/host_drift.py --cases attention-eager-16,matmul-eager-16 --repeats 15
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import statistics
import sys
from collections.abc import Iterator

import torch
import torch.utils.benchmark as torch_benchmark

from perf_core.measure import clock, core
from perf_core.measure.workload import DEFAULT_PRESET, PRESETS


@contextlib.contextmanager
def condition(pin: bool, no_gc: bool) -> Iterator[None]:
    """Pin the calling thread to one core (the lowest it may run on), and/or pause the garbage collector."""
    affinity = os.sched_getaffinity(0)
    gc_was_enabled = gc.isenabled()
    try:
        if pin:
            os.sched_setaffinity(0, {min(affinity)})
        if no_gc:
            gc.disable()
        yield
    finally:
        os.sched_setaffinity(0, affinity)
        if gc_was_enabled:
            gc.enable()


CONDITIONS = {"free": (False, False), "no-gc": (False, True), "pinned": (True, False), "pinned+no-gc": (True, True)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="attention-eager-16,matmul-eager-16,matmul-eager-32")
    parser.add_argument("--repeats", type=int, default=15, help="blocked_autorange runs per condition")
    parser.add_argument("--min-run-time", type=float, default=0.2)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.set_num_threads(1)
    shape = PRESETS[DEFAULT_PRESET[device]]
    print(f"device: {clock.device_name(device)}, torch {torch.__version__}, cpus {len(os.sched_getaffinity(0))}")
    print(f"{'case':<22}{'condition':<14}{'median us':>10}{'min':>9}{'max':>9}{'spread':>8}")
    for case in args.cases.split(","):
        kernel, variant, tokens = case.split("-")
        call = core.prepare(shape.workload(kernel, int(tokens), device), variant)
        timer = torch_benchmark.Timer("fn()", globals={"fn": call.fn}, num_threads=1)
        medians: dict[str, list[float]] = {name: [] for name in CONDITIONS}
        for _ in range(args.repeats):
            for name, (pin, no_gc) in CONDITIONS.items():
                with condition(pin, no_gc):
                    medians[name].append(timer.blocked_autorange(min_run_time=args.min_run_time).median)
        for name, values in medians.items():
            lo, hi = min(values), max(values)
            print(
                f"{case:<22}{name:<14}{statistics.median(values) * 1e6:>10.2f}{lo * 1e6:>9.2f}{hi * 1e6:>9.2f}"
                f"{hi / lo - 1:>8.1%}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
