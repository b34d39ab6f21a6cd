"""Measure `perf-core compare` with one run a side on real runs: false alarms and a 15% slowdown.

Give it a history of runs of one commit on one machine (e.g. 22 runs of `pytest --benchmark-only`
saved with PERF_CORE_COMMIT fixed). It reports:

1. ten pairs of back-to-back runs (runs 1-2, 3-4, ...): `perf-core compare RUN_B RUN_A` exit codes,
   each against the history of all runs (the compare leaves the head run out of the spread);
2. the false-alarm rate over every ordered pair of distinct runs, per benchmark and per compare;
3. a copy of the newest run with every time made 15% slower, under a new commit, against the
   history: `perf-core compare` exit code and the benchmarks it flags.

    python scripts/compare_trials.py /tmp/runs20/store
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import shutil
import sys
import tempfile
from pathlib import Path

from perf_core import contract
from perf_core.analysis import gate, records, select
from perf_core.analysis.stats import ALPHA
from perf_core.cli import main as perf_core

SLOWER = 1.15


def compare(storage: Path, base: str, head: str) -> tuple[int, list[dict]]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = perf_core(["compare", base, head, "--storage", str(storage), "--json"])
    return code, json.loads(out.getvalue()) if code in (0, 1) else []


def slower_copy(run_path: Path, target: Path, factor: float) -> None:
    document = json.loads(run_path.read_text())
    for bench in document["benchmarks"]:
        stats = bench["stats"]
        for key in ("min", "max", "mean", "median", "q1", "q3", "iqr", "ld15iqr", "hd15iqr", "total", "stddev"):
            if isinstance(stats.get(key), (int, float)):
                stats[key] *= factor
        stats["data"] = [value * factor for value in stats.get("data") or []]
        extra = bench["extra_info"]
        for key in (contract.PER_TOKEN_S, contract.LATENCY_S, contract.LATENCY_PER_TOKEN_S):
            if isinstance(extra.get(key), (int, float)):
                extra[key] *= factor
    document["commit_info"][contract.COMMIT_ID] = "51015" + "0" * 35
    document["commit_info"][contract.COMMIT_TIME] = "2099-01-01T00:00:00+00:00"
    target.write_text(json.dumps(document))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("storage", type=Path, help="history folder of same-commit runs of one machine")
    args = parser.parse_args()
    runs = sorted(records.load_runs(records.find_files(args.storage)), key=lambda run: run.run_time)
    print(f"{len(runs)} runs of {len({r.commit for r in runs})} commit(s) on {runs[0].machine.label}")

    print("\n1. back-to-back pairs, one run a side, against the history:")
    codes = []
    for first, second in list(zip(runs[0::2], runs[1::2]))[:10]:
        code, rows = compare(args.storage, first.path.name, second.path.name)
        codes.append(code)
        worst = max(rows, key=lambda row: row["ratio"])
        print(
            f"   {second.path.name} vs {first.path.name}: exit {code}; largest ratio {worst['ratio']:.3f} ({worst['name']})"
        )
    print(f"   exit 0 on {codes.count(0)} of {len(codes)} pairs")

    print("\n2. every ordered pair of distinct runs (in-process, same rule):")
    names = select.names_of(runs)
    alarms = compares_alarmed = pairs = undecided = 0
    for base, head in itertools.permutations(runs, 2):
        decided = gate.decide_all([base], [head], names, "steady", gate.THRESHOLD, ALPHA, history=runs)
        flagged = sum(d.verdict.verdict == "regression" for d in decided)
        alarms += flagged
        compares_alarmed += flagged > 0
        undecided += any(d.unit.startswith("noisy") for d in decided)
        pairs += 1
    print(
        f"   {pairs} compares x {len(names)} benchmarks: {alarms} benchmark verdicts 'regression'"
        f" ({alarms / (pairs * len(names)):.3%}); {compares_alarmed} compares exit 1 ({compares_alarmed / pairs:.2%});"
        f" {undecided} undecided because a run compared was noisy ({undecided / pairs:.1%})"
    )

    print(f"\n3. newest run made {SLOWER - 1:.0%} slower, against the history:")
    with tempfile.TemporaryDirectory() as folder:
        storage = Path(folder) / "history"
        shutil.copytree(args.storage, storage)
        newest = runs[-1]
        slow = next(storage.rglob(newest.path.name)).with_name("9999_slow15.json")
        slower_copy(newest.path, slow, SLOWER)
        code, rows = compare(storage, newest.path.name, slow.name)
        flagged = [row["name"] for row in rows if row["verdict"] == "regression"]
        print(
            f"   perf-core compare {newest.path.name} 9999_slow15.json: exit {code}; flagged {len(flagged)} of {len(rows)}"
        )
        missed = [
            f"{row['name']} (p {row['p_value']:.2g}, {row['unit']})" for row in rows if row["name"] not in flagged
        ]
        if missed:
            print(f"   not flagged: {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
