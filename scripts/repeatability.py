"""Repeatability of the suite: per-token medians of the same benchmarks across several runs.

    python scripts/repeatability.py .benchmarks/Linux-CPython-3.11-64bit/000[123]_*.json

Prints each benchmark's per-token figure in every run and its largest deviation from the median
of the runs; exits 1 when any deviation exceeds --tolerance (default 5%).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from perf_core.analysis import records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--tolerance", type=float, default=0.05)
    args = parser.parse_args()
    runs = records.load_runs(args.files)
    reference = runs[0].results
    names = sorted(reference, key=lambda n: (reference[n].kernel, reference[n].variant, reference[n].n_tokens))
    print(
        f"{'benchmark':<26}" + "".join(f"{f'run {i} (us)':>14}" for i in range(1, len(runs) + 1)) + f"{'max dev':>10}"
    )
    worst = 0.0
    for name in names:
        values = [run.results[name].per_token_s for run in runs]
        middle = statistics.median(values)
        deviation = max(abs(v / middle - 1) for v in values)
        worst = max(worst, deviation)
        print(f"{name:<26}" + "".join(f"{v * 1e6:>14.3f}" for v in values) + f"{deviation:>10.1%}")
    print(f"largest deviation from the median of {len(runs)} runs: {worst:.1%} (tolerance {args.tolerance:.0%})")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
