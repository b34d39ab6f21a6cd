"""Where a GPU call's profiled window and its device_s differ (issue 22; docs/gpu.md, cross-check).

For a few benchmarks of the suite's GPU preset, each prepared as the suite prepares it (compiled,
cold, CUDA graph), on one device: device_s as the suite takes it (CUDA events around one call after a
head start), device_s over bursts of 16 calls, a pair of events with nothing between them (the
events' own device time), and a profile (torch.profiler) of 10 calls each between CUDA events, so
that the timeline's window (head start's end to last kernel's end) and the events' elapsed time
are of the same calls. Printed per benchmark in microseconds; written to $OUT/event_tail.json in
seconds. `kernel_busy_s` is the kernels' summed time (two overlapping kernels would count twice;
breakdown.device_idle_s takes their union). The name is the first guess's (the end event's tail); what
it found was the start event's own device time (docs/gpu.md).

    PYTHONPATH=. python3 scripts/event_tail_probe.py      # on a CUDA machine
"""

import itertools
import json
import os
import statistics

import torch

from perf_core import contract
from perf_core.measure import clock, core
from perf_core.measure.workload import PRESETS

CASES = [("matmul", 16), ("matmul", 256), ("attention", 16), ("mlp", 16)]
CALLS = 10


def profiled_windows(fn) -> tuple[float, float, float]:
    """(events' elapsed, timeline window, kernels' summed time): medians over CALLS profiled calls."""
    spin = clock.head_start(clock.HEAD_START_S)
    pairs = [clock.event_pair() for _ in range(CALLS)]
    activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=activities) as profiler:
        for start, end in pairs:
            spin()
            start.record()
            fn()
            end.record()
        spin()
        torch.cuda.synchronize()
    timeline = sorted(
        (e for e in profiler.events() if e.device_type != torch.autograd.DeviceType.CPU),
        key=lambda e: e.time_range.start,
    )
    spins = [e for e in timeline if "spin_kernel" in e.name]
    windows, busy = [], []
    for before, after in itertools.pairwise(spins):
        inside = [
            e
            for e in timeline
            if "spin_kernel" not in e.name and before.time_range.end <= e.time_range.start < after.time_range.start
        ]
        if not inside:
            raise RuntimeError(f"no kernel between two head starts: {len(spins)} head starts, {len(timeline)} events")
        windows.append((max(e.time_range.end for e in inside) - before.time_range.end) * 1e-6)
        busy.append(sum(e.time_range.elapsed_us() for e in inside) * 1e-6)
    elapsed = statistics.median(start.elapsed_time(end) * 1e-3 for start, end in pairs)
    return elapsed, statistics.median(windows), statistics.median(busy)


def main() -> None:
    rows = []
    for kernel, n_tokens in CASES:
        workload = PRESETS["llama-7b"].workload(kernel, n_tokens, "cuda")
        fn = core.prepare(workload, "compiled", cache=contract.COLD, l2_bytes=clock.l2_bytes("cuda")).fn
        elapsed, window, busy = profiled_windows(fn)
        row = {
            "name": workload.name,
            "device_s": clock.device_time_s(fn),
            "device_s_burst16": clock.device_time_s(fn, calls_per_sample=16),
            "empty_events_s": clock.device_time_s(lambda: None),
            "profiled_event_elapsed_s": elapsed,
            "window_s": window,
            "kernel_busy_s": busy,
        }
        rows.append(row)
        print(" ".join(f"{k} {v * 1e6:.2f} us" if isinstance(v, float) else str(v) for k, v in row.items()), flush=True)
    with open(os.path.join(os.environ.get("OUT", "."), "event_tail.json"), "w") as handle:
        json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
