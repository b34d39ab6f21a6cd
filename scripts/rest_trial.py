"""How much must the card rest between rounds to keep its clock? One GPU, the heaviest benchmarks.

For each case (cold, prepared as the suite prepares it) and each rest setting, runs rounds as
pytest-benchmark does (timer, `iterations` calls, timer; iterations chosen so a round lasts at least
2 ms; rounds for 1 s of the timer's clock) through clock.timer_for / clock.RestingTimer, with NVML
sampling as in the suite, and prints per setting: median per call, SM clock median, share of samples
with a throttle reason, power and the wall time the rounds took. The reference beside them is
do_bench with a read flush (scripts/check_gpu.py), which times single calls on a rested card.

    python scripts/rest_trial.py --rests 0,1,2 --bursts 0.002,0.02 > rest_trial.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch
from check_gpu import do_bench_read_flush_s  # scripts/ is on sys.path when this runs as a script

from perf_core import contract
from perf_core.measure import clock, core
from perf_core.measure.selection import OPTIONS, parse_selection


def rounds(fn, timer, seconds: float = 1.0, min_round_s: float = 0.002) -> tuple[list[float], int]:
    """pytest-benchmark's loop, in short: calibrate iterations, then rounds until `seconds` of timer."""
    iterations = 1
    while True:
        start = timer()
        for _ in range(iterations):
            fn()
        if timer() - start >= min_round_s:
            break
        iterations *= 2
    times = []
    begin = timer()
    while timer() - begin < seconds:
        start = timer()
        for _ in range(iterations):
            fn()
        times.append((timer() - start) / iterations)
    return times, iterations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases", default="mlp-compiled-512,mlp-compiled-256,attention-compiled-512,matmul-compiled-512,mlp-eager-512"
    )
    parser.add_argument("--rests", default="0,0.5,1,2")
    parser.add_argument("--bursts", default="0.002,0.01,0.05")
    parser.add_argument("--settle", type=float, default=1.0, help="idle seconds before each setting")
    args = parser.parse_args()
    raw = {name: default for name, (default, _) in OPTIONS.items()}
    by_id = {case.id: case for case in parse_selection(raw, True).cases()}
    l2 = clock.l2_bytes("cuda")
    flush = torch.ones(4 * (l2 or 64 << 20) // 2, dtype=torch.bfloat16, device="cuda")
    nvml = clock.nvml_module()
    index = clock.current_gpu(nvml)[0]  # NVML's number of the card torch runs on
    limit_w = None
    if index is not None:
        try:
            limit_w = nvml.nvmlDeviceGetEnforcedPowerLimit(nvml.nvmlDeviceGetHandleByIndex(index)) / 1e3
        except Exception:  # noqa: BLE001 - unknown stays unknown
            pass
    print(
        json.dumps({"card": torch.cuda.get_device_name(), "torch": torch.__version__, "power_limit_w": limit_w}),
        flush=True,
    )
    for name in args.cases.split(","):
        case = by_id[name]
        cold = core.prepare(case.workload, case.variant, cache=contract.COLD, l2_bytes=l2)
        warm = core.prepare(case.workload, case.variant, cache=contract.WARM)
        time.sleep(args.settle)
        reference = do_bench_read_flush_s(warm.fn, flush)
        print(json.dumps({"case": name, "do_bench_read_us": reference * 1e6}), flush=True)
        for burst in map(float, args.bursts.split(",")):
            for rest in map(float, args.rests.split(",")):
                if rest == 0 and burst != float(args.bursts.split(",")[0]):
                    continue  # no rest: the burst does not matter
                time.sleep(args.settle)
                timer = clock.RestingTimer(torch.cuda.synchronize, rest, burst) if rest else clock.timer_for("cuda")
                sampler = clock.ClockSampler(nvml, index)
                wall = time.perf_counter()
                with sampler:
                    times, iterations = rounds(cold.fn, timer)
                wall = time.perf_counter() - wall
                report = sampler.report()
                median = statistics.median(times)
                print(
                    json.dumps(
                        {
                            "case": name,
                            "rest": rest,
                            "burst_s": burst,
                            "median_us": median * 1e6,
                            "over_reference": median / reference,
                            "rounds": len(times),
                            "iterations": iterations,
                            "wall_s": wall,
                            "sm_clock_mhz": report.sm_clock_mhz,
                            "throttle_share": report.throttle_share,
                            "power_w": report.power_w,
                        }
                    ),
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
