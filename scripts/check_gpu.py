"""Check the suite's GPU figures against triton.testing.do_bench with L2 flushed, on every benchmark.

Runs the real suite once (pytest-benchmark through perf_core's plugin, cold cache by default) and
saves its JSON; then, in this process, prepares each case the same way with one copy of its weights
(no rotation) and times it with `do_bench`, which flushes L2 before every call and times it with
CUDA events. Compared per benchmark:

- the suite's cold per-call median (steady state over rotated copies) against do_bench of the same
  call: compiled = the CUDA-graph replay the suite times, eager = the eager module;
- the suite's eager and compiled `device_s` against the same do_bench figure;
- every cold per-call median against its floor_s.

    python scripts/check_gpu.py --out results/h100/check_gpu
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from perf_core.measure import clock, core
from perf_core.measure.plugin import OPTIONS, parse_selection

TOLERANCE = 0.05


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for suite.json, check.json and check.md")
    parser.add_argument("--from", dest="source", type=Path, help="a suite run already saved (skip running it)")
    for name in ("tokens", "kernels", "variants"):
        parser.add_argument(f"--{name}", default="")
    args = parser.parse_args()
    import triton.testing

    args.out.mkdir(parents=True, exist_ok=True)
    extra = [f"--{n}={getattr(args, n)}" for n in ("tokens", "kernels", "variants") if getattr(args, n)]
    suite = json.loads(args.source.read_text()) if args.source else run_suite(args.out, extra)
    raw = {name: (getattr(args, name, "") or default) for name, (default, _) in OPTIONS.items()}
    selection = parse_selection(raw, torch.cuda.is_available())
    by_id = {case.id: case for case in selection.cases()}
    rows = []
    for bench in suite["benchmarks"]:
        info = bench["extra_info"]
        case = by_id[bench["param"]]
        call = core.prepare(case.workload, case.variant, cache="warm")
        flushed_s = triton.testing.do_bench(call.fn, warmup=25, rep=200, return_mode="median") / 1e3
        row = {
            "benchmark": bench["param"],
            "suite_cold_s": bench["stats"]["median"],
            "device_s": info.get("device_s"),
            "do_bench_flushed_s": flushed_s,
            "floor_s": info.get("floor_s"),
            "copies": info.get("copies"),
            "sm_clock_mhz": info.get("sm_clock_mhz"),
            "throttled": info.get("throttled"),
        }
        row["suite_over_do_bench"] = row["suite_cold_s"] / flushed_s
        row["device_over_do_bench"] = row["device_s"] / flushed_s if row["device_s"] else None
        row["cold_over_floor"] = row["suite_cold_s"] / row["floor_s"] if row["floor_s"] else None
        rows.append(row)
        print(json.dumps(row), flush=True)
    card = torch.cuda.get_device_name()
    (args.out / "check.json").write_text(json.dumps({"card": card, "rows": rows}, indent=1))
    lines = [
        f"Card: {card}; torch {torch.__version__}; L2 {clock.l2_bytes('cuda')} bytes. Times per call, us.",
        "",
        "| benchmark | suite cold | do_bench flushed | suite / do_bench | device_s | device_s / do_bench | cold / floor | SM MHz |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:

        def us(v):
            return "-" if v is None else f"{v * 1e6:.1f}"

        def x(v):
            return "-" if v is None else f"{v:.3f}"

        lines.append(
            f"| {r['benchmark']} | {us(r['suite_cold_s'])} | {us(r['do_bench_flushed_s'])} | {x(r['suite_over_do_bench'])} |"
            f" {us(r['device_s'])} | {x(r['device_over_do_bench'])} | {x(r['cold_over_floor'])} | {r['sm_clock_mhz'] or '-'} |"
        )
    within = sum(abs(r["suite_over_do_bench"] - 1) <= TOLERANCE for r in rows)
    eager = [r for r in rows if "-eager-" in r["benchmark"] and r["device_over_do_bench"]]
    eager_within = sum(abs(r["device_over_do_bench"] - 1) <= TOLERANCE for r in eager)
    under = [r["benchmark"] for r in rows if r["cold_over_floor"] is not None and r["cold_over_floor"] < 1]
    lines += [
        "",
        f"suite cold per call within {TOLERANCE:.0%} of do_bench (L2 flushed): {within} of {len(rows)};"
        f" eager device_s within {TOLERANCE:.0%}: {eager_within} of {len(eager)}; under the floor: {under or 'none'}",
    ]
    (args.out / "check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
