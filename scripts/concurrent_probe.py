"""Do a pair's two runs, started together on one core and timed together, cancel the 2-core machine's noise?

The CPU gate's runs of one commit spread 10-15% (docs/gate.md, eighth pass): a core's speed steps by
1.4-1.5x for 10-20 s at a time, the two cores independently, so a run's medians depend on when it ran.
Here each pair is two fresh processes, --base's perf_core and --head's, each timing the gate's 18
compiled CPU benchmarks (cpu-small, cold cache, one torch thread). --mode together: both processes
start at once pinned to core 0, wait for each other before each benchmark (a file barrier) and time
it for --seconds of their own thread CPU time, so the scheduler alternates them within the same
stretch of the core's speed. --mode apart: one process after the other, as the gate runs them now.
Each call is timed on both clocks (perf_counter and thread_time). Printed per benchmark, over the
pairs: the head/base ratio of medians (median) and the between-pair sd of its log, for each clock.

    TORCHINDUCTOR_COMPILE_THREADS=1 python scripts/concurrent_probe.py --base B --head H --mode together
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

CLOCKS = ("perf_counter", "thread_time")


def wait_for(path: Path, partner_done: Path) -> None:
    while not path.exists() and not partner_done.exists():
        time.sleep(0.0005)


def child(root: str, seconds: float, barrier: Path | None, side: str, out: Path) -> None:
    sys.path.insert(0, root)
    import torch

    from perf_core import contract
    from perf_core.measure import core
    from perf_core.measure.workload import PRESETS

    assert Path(core.__file__).is_relative_to(root), core.__file__
    torch.set_num_threads(1)
    other = "head" if side == "base" else "base"
    result = {}
    for kernel in ("attention", "matmul", "mlp"):
        for n in contract.TOKEN_COUNTS:
            name = contract.bench_name(kernel, "compiled", n)
            fn = core.prepare(PRESETS["cpu-small"].workload(kernel, n, "cpu"), "compiled", cache=contract.COLD).fn
            if barrier:
                (barrier / f"{side}-{name}").touch()
                wait_for(barrier / f"{other}-{name}", barrier / f"{other}-done")
            times: dict[str, list[float]] = {clock: [] for clock in CLOCKS}
            end = time.thread_time() + seconds
            while time.thread_time() < end:
                w0, c0 = time.perf_counter(), time.thread_time()
                fn()
                c1, w1 = time.thread_time(), time.perf_counter()
                times["perf_counter"].append(w1 - w0)
                times["thread_time"].append(c1 - c0)
            result[name] = {clock: statistics.median(values) for clock, values in times.items()}
    out.write_text(json.dumps(result))
    if barrier:
        (barrier / f"{side}-done").touch()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True)
    parser.add_argument("--head", required=True)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.2, help="per benchmark and process, thread CPU time")
    parser.add_argument("--mode", choices=("together", "apart"), default="together")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)  # root side barrier out
    args = parser.parse_args()
    if args.child:
        root, side, barrier, out = args.child
        child(root, args.seconds, Path(barrier) if barrier != "-" else None, side, Path(out))
        return 0
    pairs = []
    with tempfile.TemporaryDirectory() as folder:
        for pair in range(1, args.pairs + 1):
            started = time.perf_counter()
            barrier = Path(folder, f"barrier{pair}")
            barrier.mkdir()
            outs = {side: Path(folder, f"{side}{pair}.json") for side in ("base", "head")}
            commands = {
                side: [
                    sys.executable,
                    __file__,
                    "--seconds",
                    str(args.seconds),
                    "--base",
                    "-",
                    "--head",
                    "-",
                    "--child",
                    root,
                    side,
                    str(barrier) if args.mode == "together" else "-",
                    str(outs[side]),
                ]
                for side, root in (("base", args.base), ("head", args.head))
            }
            order = ("base", "head") if pair % 2 else ("head", "base")
            pin = lambda: os.sched_setaffinity(0, {0})  # noqa: E731
            if args.mode == "together":
                procs = [subprocess.Popen(commands[side], preexec_fn=pin) for side in order]
                if any(p.wait() for p in procs):
                    return 1
            else:
                for side in order:
                    subprocess.run(commands[side], preexec_fn=pin, check=True)
            pairs.append({side: json.loads(path.read_text()) for side, path in outs.items()})
            print(f"pair {pair}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    print(f"mode {args.mode}, {args.pairs} pairs, {args.seconds} s a benchmark and process")
    print(f"{'benchmark':24}" + "".join(f" {c + ' ratio':>18} {'sd':>6} {'sd base':>8}" for c in CLOCKS))
    sds: dict[str, list[float]] = {c: [] for c in CLOCKS}
    for name in pairs[0]["base"]:
        line = f"{name:24}"
        for clock in CLOCKS:
            logs = [math.log(p["head"][name][clock] / p["base"][name][clock]) for p in pairs]
            base = [math.log(p["base"][name][clock]) for p in pairs]
            sds[clock].append(statistics.stdev(logs))
            line += f" {math.exp(statistics.median(logs)):18.3f} {100 * sds[clock][-1]:5.1f}% {100 * statistics.stdev(base):7.1f}%"
        print(line)
    print(
        "median sd of log ratio over benchmarks: "
        + ", ".join(f"{c} {100 * statistics.median(s):.1f}%" for c, s in sds.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
