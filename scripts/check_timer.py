"""Check the suite's figures against independent timers, case by case, in one process.

For each case it runs the real suite (pytest-benchmark through perf_core's plugin) on that case
alone, then times the same call with references:
  - steady state: torch.utils.benchmark.Timer.blocked_autorange median (it synchronises CUDA);
  - on CUDA, isolated-call latency: a plain loop that synchronises after every call;
  - on CUDA, triton.testing.do_bench median, shown for context only: it flushes the L2 cache
    before every call, so it reads slower wherever the weights would otherwise stay in L2.
Suite and references alternate --alternations times per case (S R, R S, S R: flipped, each after
the same pause, each on a freshly prepared call), so slow drift of a shared machine falls on
both. Each ratio is suite / reference, two ways: medians of the passes, and the best (quietest)
pass of each side; --estimator picks the one checked (see `ratios`). `spread` is how far the
suite's own figure moved between its passes, and on CUDA `SM MHz` is the range of the SM clock
read after each pass. Every pass's figures go out as JSON lines too. Exit 1 when a checked ratio
is off by more than --tolerance.

    python scripts/check_timer.py --kernels matmul --variants eager --tokens 16 --tolerance 0.10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
import torch.utils.benchmark as torch_benchmark

from perf_core import contract
from perf_core.measure import clock, core
from perf_core.measure.selection import OPTIONS, parse_selection

SUITE = Path(__file__).resolve().parent.parent / "tests" / "test_latency.py"


def suite_figures(case_args: list[str]) -> dict:
    """Run the suite on one case in this process; return that benchmark's JSON entry."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run.json"
        args = [str(SUITE), "-q", "-p", "no:warnings", "--benchmark-only", f"--benchmark-json={out}"]
        args += ["-o", "perf_autosave=false", *case_args]
        if pytest.main(args) != 0:
            raise SystemExit(f"the suite failed on {case_args}")
        (bench,) = json.loads(out.read_text())["benchmarks"]
        return bench


def plain_loop_latency_s(fn, calls: int = 200) -> float:
    """The reference for isolated latency. Written out here on purpose rather than calling
    clock.isolated_latency_s: a reference that shares the code it checks would check nothing."""
    samples = []
    for _ in range(calls):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def sm_clock_mhz() -> float | None:
    """The GPU's SM clock over the last sample period (NVML), to see whether the card changed state."""
    try:
        return float(torch.cuda.clock_rate())
    except (ImportError, RuntimeError):  # no NVML bindings (pynvml / amdsmi)
        return None


def steal_s() -> float:
    """CPU time the hypervisor gave to others so far (all CPUs), from /proc/stat; 0 where unknown."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("tokens", "kernels", "variants", "device", "dtype", "preset", "threads"):
        parser.add_argument(f"--{name}", default=OPTIONS[name][0])
    parser.add_argument("--tolerance", type=float, default=0.05, help="largest |ratio - 1| allowed (default 0.05)")
    parser.add_argument("--alternations", type=int, default=3, help="suite/reference alternations per case (3)")
    parser.add_argument("--estimator", choices=("best", "median"), default="best", help="which ratio is checked (best)")
    parser.add_argument(
        "--timer-time",
        type=float,
        default=1.0,
        help="seconds Timer runs per pass (1: as long as pytest-benchmark's default max time, so the card"
        " has been busy as long before each side's isolated-latency loop)",
    )
    parser.add_argument("--settle", type=float, default=1.0, help="seconds of pause before each timed pass (1)")
    args = parser.parse_args()
    raw = {name: getattr(args, name, "") or default for name, (default, _) in OPTIONS.items()}
    selection = parse_selection(raw, torch.cuda.is_available())
    torch.set_num_threads(selection.threads)
    cuda = selection.device == "cuda"
    device_label = clock.device_name(selection.device)
    print(f"device: {device_label}, torch {torch.__version__}, threads {selection.threads}", flush=True)

    rows = []
    for case in selection.cases():
        w = case.workload
        case_args = [f"--{name}={getattr(selection, name)}" for name in ("device", "dtype", "preset", "threads")]
        case_args += [f"--kernels={w.kernel}", f"--variants={case.variant}", f"--tokens={w.n_tokens}"]
        # Suite and references alternate, in flipped order (S R, R S, S R, ...) after the same pause,
        # and the references prepare a fresh call each time as the suite does: whatever state the
        # machine drifts into lands on both alike.
        figures: dict[str, list[float]] = {"suite_s": [], "timer_s": [], "suite_latency_s": [], "loop_latency_s": []}
        clocks: list[float | None] = []  # SM MHz read straight after each timed pass
        steal: list[float] = []  # seconds of CPU the hypervisor took away during each pass
        for alternation in range(args.alternations):
            for side in ("suite", "references") if alternation % 2 == 0 else ("references", "suite"):
                time.sleep(args.settle)
                stolen = steal_s()
                if side == "suite":
                    bench = suite_figures(case_args)
                    figures["suite_s"].append(bench["stats"]["median"])
                    if cuda:
                        figures["suite_latency_s"].append(bench["extra_info"][contract.LATENCY_S])
                else:
                    call = core.prepare(w, case.variant)
                    timer = torch_benchmark.Timer("fn()", globals={"fn": call.fn}, num_threads=selection.threads)
                    figures["timer_s"].append(timer.blocked_autorange(min_run_time=args.timer_time).median)
                    if cuda:
                        figures["loop_latency_s"].append(plain_loop_latency_s(call.fn))
                clocks.append(sm_clock_mhz() if cuda else None)
                steal.append(steal_s() - stolen)
        row = {"case": case.id, **{key: statistics.median(v) for key, v in figures.items() if v}}
        row["suite_spread"] = max(figures["suite_s"]) / min(figures["suite_s"]) - 1
        row["passes"] = figures  # every pass's figure, suite and references, in the order taken
        row["steal_s"] = steal
        if cuda and None not in clocks:
            row["sm_mhz"] = clocks
        for name, (ours, reference) in PAIRS.items():
            if figures[ours]:
                row[f"{name}_ratio"] = ratios(figures[ours], figures[reference])
        if cuda:
            import triton.testing

            row["do_bench_s"] = triton.testing.do_bench(call.fn, return_mode="median") / 1e3
        rows.append(row)
        print(json.dumps(row), flush=True)
    return report(rows, device_label, cuda, args.tolerance, args.estimator)


# figure -> (the suite's, the reference's), as keys of the per-pass figures
PAIRS = {"steady": ("suite_s", "timer_s"), "latency": ("suite_latency_s", "loop_latency_s")}


def ratios(ours: list[float], reference: list[float]) -> dict[str, float]:
    """Suite / reference two ways: median of the passes, and best (quietest) pass of each side.

    On a machine that switches between a quiet and a disturbed state for seconds at a time, the
    median of a few passes still lands on a disturbed one now and then; the quietest pass of
    each side compares the two clocks with the machine in the same state (the reasoning behind
    timeit's advice to take the minimum).
    """
    return {
        "median": statistics.median(ours) / statistics.median(reference),
        "best": min(ours) / min(reference),
    }


def report(rows: list[dict], device_label: str, cuda: bool, tolerance: float, estimator: str) -> int:
    print(f"\n{device_label}: suite / reference, median of passes and best pass (us)")
    header = f"{'case':<24}{'suite':>9}{'Timer':>9}{'median':>8}{'best':>7}"
    if cuda:
        header += f"{'isolated':>10}{'loop':>9}{'median':>8}{'best':>7}{'do_bench':>10}{'SM MHz':>11}"
    print(header + f"{'spread':>8}")
    for row in rows:
        steady = row["steady_ratio"]
        line = f"{row['case']:<24}{row['suite_s'] * 1e6:>9.2f}{row['timer_s'] * 1e6:>9.2f}"
        line += f"{steady['median']:>8.3f}{steady['best']:>7.3f}"
        if cuda:
            latency, mhz = row["latency_ratio"], row.get("sm_mhz")
            line += f"{row['suite_latency_s'] * 1e6:>10.2f}{row['loop_latency_s'] * 1e6:>9.2f}"
            line += f"{latency['median']:>8.3f}{latency['best']:>7.3f}{row['do_bench_s'] * 1e6:>10.2f}"
            line += f"{f'{min(mhz):.0f}-{max(mhz):.0f}' if mhz else '-':>11}"
        print(line + f"{row['suite_spread']:>8.1%}")
    failures = 0
    for name in PAIRS:
        for way in ("median", "best"):
            values = [row[f"{name}_ratio"][way] for row in rows if f"{name}_ratio" in row]
            if not values:
                continue
            outside = [value for value in values if abs(value - 1) > tolerance]
            checked = way == estimator
            failures += len(outside) if checked else 0
            print(
                f"{name}, {way} of passes: {len(values) - len(outside)}/{len(values)} within {tolerance:.0%}"
                f" (ratios {min(values):.3f}-{max(values):.3f}){'  <- checked' if checked else ''}"
            )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
