"""Check the suite's GPU figures against triton.testing.do_bench with L2 flushed, on every benchmark.

Runs the real suite once (pytest-benchmark through perf_core's plugin, its defaults: cold cache,
rest 1) and saves its JSON; then, in this process, prepares each case the same way with one copy of
its weights (no rotation) and times it three ways, each the median of --repeats timings: stock
`do_bench` (its flush *writes* 256 MB), `do_bench` with its flush made a *read* of 4 L2 sizes
(do_bench_read_flush_s), and the package's event timer after the same read. Compared per benchmark:

- the suite's cold per-call median (steady state over rotated copies) against each reference:
  compiled = the CUDA-graph replay the suite times, eager = the eager module;
- the suite's eager and compiled `device_s` against the same references;
- every cold per-call median against its floor_s;
- each compiled call's profiled parts (its kernels, and the device's idle time between them where
  the run has it) against its `device_s` (issue 22's cross-check, perf_core.analysis.explain.coverage;
  a call off by more than 5% is marked). `--coverage RUN.json` prints that table alone from a saved
  run, without a GPU.

    python scripts/check_gpu.py --out results/h100/check_gpu
    python scripts/check_gpu.py --coverage results/h200/gate21/one_gpu_aa_base-01.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import torch

from perf_core import contract
from perf_core.analysis import explain, records
from perf_core.measure import clock, core
from perf_core.measure.selection import OPTIONS, parse_selection

TOLERANCE = 0.05


def clean_flush_s(fn, flush: torch.Tensor, samples: int = 100) -> float:
    """CUDA events around each call after *reading* a buffer of 4 x L2 (do_bench *writes* one).

    do_bench's zero_() leaves L2 full of dirty lines, which the timed call must write back before
    it can use them; reading leaves clean lines, as the previous layer of a model does. Timed by
    clock.device_time_s, the read run before each sample outside the timed span.
    """
    return clock.device_time_s(fn, samples=samples, before=flush.sum)


def do_bench_read_flush_s(fn, flush: torch.Tensor) -> float:
    """triton.testing.do_bench (its loop, its events, its median) with its L2 flush made a *read*.

    do_bench calls `driver.active.clear_cache(cache)` (a zero_() of 256 MB) before every timed call;
    here that hook reads 4 x L2 instead, after a ~1 ms spin kernel (torch.cuda._sleep) that lets the
    host queue the flush and the call before the GPU reaches them: the clean cache state a model's
    previous layer leaves, and no host launch gap in the events. The hook is checked to have run.
    """
    import triton.testing
    from triton import runtime

    driver = runtime.driver.active
    spin = clock.head_start(1e-3)
    calls = []

    def read_flush(cache) -> None:
        calls.append(1)
        spin()
        flush.sum()

    original = driver.clear_cache
    driver.clear_cache = read_flush
    try:
        seconds = triton.testing.do_bench(fn, warmup=25, rep=200, return_mode="median") / 1e3
    finally:
        driver.clear_cache = original
    if not calls:
        raise RuntimeError("this triton's do_bench does not flush through driver.active.clear_cache")
    return seconds


def run_suite(out: Path, extra: list[str]) -> dict:
    path = out / "suite.json"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests/test_latency.py",
        "--benchmark-only",
        "-q",
        f"--benchmark-json={path}",
    ]
    subprocess.run(command + extra, check=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    return json.loads(path.read_text())


def coverage_table(path: Path) -> list[str]:
    """Markdown rows: each compiled benchmark's profiled parts (kernels, and the device's idle time
    between them where the run has it) against its device_s."""
    run = records.load_runs([path])[0]
    lines = [
        f"{run.machine.label}; {path.name}. Per call: the profiled kernels' sum and the device's idle time"
        " between them (breakdown, torch.profiler's timeline) against device_s (CUDA events).",
        "",
        "| benchmark | kernels | kernel sum | idle | device_s | kernels / device_s | (kernels + idle) / device_s"
        " | within 5% |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in run.results.values():
        share = explain.coverage(result)
        if result.variant != "compiled" or share is None:
            continue
        kernels = explain.coverage(result, kernels_only=True)
        idle = [seconds for name, _, seconds in result.breakdown.parts if name in contract.BREAKDOWN_IDLE_PARTS]
        count = len(result.breakdown.parts) - len(idle)
        within = "yes" if abs(share - 1) <= explain.COVERAGE_TOLERANCE else "**no**"
        lines.append(
            f"| {result.name} | {count} | {kernels * result.device_s * 1e6:.1f} us"
            f" | {f'{idle[0] * 1e6:.1f} us' if idle else '-'} | {result.device_s * 1e6:.1f} us"
            f" | {kernels:.3f} | {share:.3f} | {within} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    if "--coverage" in sys.argv[1:2]:
        print("\n".join(coverage_table(Path(sys.argv[2]))))
        return 0
    parser.add_argument("--out", type=Path, required=True, help="folder for suite.json, check.json and check.md")
    parser.add_argument("--from", dest="source", type=Path, help="a suite run already saved (skip running it)")
    parser.add_argument("--repeats", type=int, default=3, help="timings of each reference, their median kept")
    passed = ("tokens", "kernels", "variants", "rest")  # handed to the suite as they are
    for name in passed:
        parser.add_argument(f"--{name}", default="")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats: {args.repeats} is not a positive count")
    import triton.testing

    args.out.mkdir(parents=True, exist_ok=True)
    extra = [f"--{n}={getattr(args, n)}" for n in passed if getattr(args, n)]
    suite = json.loads(args.source.read_text()) if args.source else run_suite(args.out, extra)
    raw = {name: (getattr(args, name, "") or default) for name, (default, _) in OPTIONS.items()}
    selection = parse_selection(raw, torch.cuda.is_available())
    by_id = {case.id: case for case in selection.cases()}
    rows = []
    flush = torch.ones(4 * (clock.l2_bytes("cuda") or 64 << 20) // 2, dtype=torch.bfloat16, device="cuda")
    for bench in suite["benchmarks"]:
        info = bench["extra_info"]
        case = by_id[bench["param"]]
        call = core.prepare(case.workload, case.variant, cache=contract.WARM)
        # Each reference is the median of --repeats timings, taken in turn (one do_bench of a 16 us
        # eager call moved by up to 9% between checks while the suite's device_s moved by 2%).
        timings = {"flushed": [], "clean": [], "read": []}
        for _ in range(args.repeats):
            timings["flushed"].append(triton.testing.do_bench(call.fn, warmup=25, rep=200, return_mode="median") / 1e3)
            timings["clean"].append(clean_flush_s(call.fn, flush))
            timings["read"].append(do_bench_read_flush_s(call.fn, flush))
        flushed_s, clean_s, read_s = (statistics.median(timings[k]) for k in ("flushed", "clean", "read"))
        parsed = records.parse_result(args.source or args.out, bench)
        row = {
            "benchmark": bench["param"],
            "suite_cold_s": bench["stats"]["median"],
            "device_s": info.get(contract.DEVICE_S),
            "do_bench_flushed_s": flushed_s,
            "clean_flush_s": clean_s,
            "do_bench_read_s": read_s,
            "reference_repeats_s": timings,
            "floor_s": info.get(contract.FLOOR_S),
            "copies": info.get(contract.COPIES),
            "sm_clock_mhz": info.get(contract.SM_CLOCK_MHZ),
            "throttle_share": info.get(contract.THROTTLE_SHARE),
            "throttled": info.get(contract.THROTTLED),
            "kernel_sum_over_device": explain.coverage(parsed, kernels_only=True),
            "parts_over_device": explain.coverage(parsed),
        }
        for reference, seconds in (("do_bench", flushed_s), ("clean", clean_s), ("read", read_s)):
            row[f"suite_over_{reference}"] = row["suite_cold_s"] / seconds
            row[f"device_over_{reference}"] = row["device_s"] / seconds if row["device_s"] else None
        row["cold_over_floor"] = row["suite_cold_s"] / row["floor_s"] if row["floor_s"] else None
        rows.append(row)
        print(json.dumps(row), flush=True)
    card = torch.cuda.get_device_name()
    (args.out / "check.json").write_text(json.dumps({"card": card, "rows": rows}, indent=1))
    lines = [
        f"Card: {card}; torch {torch.__version__}; L2 {clock.l2_bytes('cuda')} bytes; the suite's rest between rounds"
        f" {suite['machine_info'].get(contract.REST, 0)}; each reference the median of {args.repeats}. Times per call, us.",
        "",
        "| benchmark | suite cold | do_bench (L2 written) | suite / do_bench | L2 read, events | suite / that | device_s | device_s / do_bench | device_s / L2 read | do_bench, L2 read | suite / that | device_s / that | cold / floor | SM MHz |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:

        def us(v):
            return "-" if v is None else f"{v * 1e6:.1f}"

        def x(v):
            return "-" if v is None else f"{v:.3f}"

        lines.append(
            f"| {r['benchmark']} | {us(r['suite_cold_s'])} | {us(r['do_bench_flushed_s'])} | {x(r['suite_over_do_bench'])} |"
            f" {us(r['clean_flush_s'])} | {x(r['suite_over_clean'])} | {us(r['device_s'])} | {x(r['device_over_do_bench'])} |"
            f" {x(r['device_over_clean'])} | {us(r['do_bench_read_s'])} | {x(r['suite_over_read'])} | {x(r['device_over_read'])}"
            f" | {x(r['cold_over_floor'])} | {r['sm_clock_mhz'] or '-'} |"
        )
    within = sum(abs(r["suite_over_do_bench"] - 1) <= TOLERANCE for r in rows)
    compiled = [r for r in rows if "-compiled-" in r["benchmark"]]
    compiled_clean = sum(abs(r["suite_over_clean"] - 1) <= TOLERANCE for r in compiled)
    eager = [r for r in rows if "-eager-" in r["benchmark"] and r["device_over_do_bench"]]
    eager_within = sum(abs(r["device_over_do_bench"] - 1) <= TOLERANCE for r in eager)
    eager_clean = sum(abs(r["device_over_clean"] - 1) <= TOLERANCE for r in eager)
    read_within = sum(abs(r["suite_over_read"] - 1) <= TOLERANCE for r in rows)
    eager_read = sum(abs(r["device_over_read"] - 1) <= TOLERANCE for r in eager)
    under = [r["benchmark"] for r in rows if r["cold_over_floor"] is not None and r["cold_over_floor"] < 1]
    lines += [
        "",
        f"suite cold per call within {TOLERANCE:.0%} of do_bench (L2 flushed): {within} of {len(rows)};"
        f" eager device_s within {TOLERANCE:.0%} of do_bench: {eager_within} of {len(eager)};"
        f" compiled suite within {TOLERANCE:.0%} of the L2-read reference: {compiled_clean} of {len(compiled)};"
        f" eager device_s within {TOLERANCE:.0%} of it: {eager_clean} of {len(eager)};"
        f" suite cold within {TOLERANCE:.0%} of do_bench with a read flush: {read_within} of {len(rows)};"
        f" eager device_s within {TOLERANCE:.0%} of it: {eager_read} of {len(eager)}; under the floor: {under or 'none'}",
    ]
    (args.out / "check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
