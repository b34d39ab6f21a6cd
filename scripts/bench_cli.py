"""Time the reading commands on a long history, with and without the index: 24 benchmarks a run.

Builds the history with perf_core.analysis.synthetic (runs shaped like the suite's, raw rounds
included) or takes --storage, then runs each command as a user would, in a fresh process, with a
fresh cache folder (so the index starts from nothing), and prints wall seconds:

1. `perf-core index` from nothing (the first build), then after one new run is saved;
2. plot, trend, compare and report with the index current (best and median of --repeat), and the
   first trend after a new run (its change points are searched again);
3. with --no-index as well when --without (each command parses every file);
4. the peak resident memory of any process it ran (the index build's workers included).

    python scripts/bench_cli.py --runs 200 --without
    python scripts/bench_cli.py --runs 10000 --repeat 3
    python scripts/bench_cli.py --code ../old-checkout --runs 200 --without   # another version's code
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from perf_core import contract
from perf_core.analysis import records
from perf_core.analysis.synthetic import MACHINE, commit_sha, run_document, write_history, write_run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=400, help="raw rounds per benchmark (the suite saves ~100-1000)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--storage", type=Path, help="an existing history (default: a synthetic one, made here)")
    parser.add_argument("--without", action="store_true", help="also time every command with --no-index")
    parser.add_argument("--code", type=Path, help="a checkout whose perf_core to run (default: this one)")
    parser.add_argument(
        "--machines", type=int, default=1, help="runner kinds: each commit runs on each (the commands read machine 1)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        storage = args.storage or work / ".benchmarks"
        if not args.storage:
            started = time.perf_counter()
            commits = args.runs // args.machines
            write_history(storage, commits, step_at=commits // 2, rounds=args.rounds, machines=args.machines)
            print(f"wrote {args.runs} runs in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        files = records.find_files(storage)
        size = sum(path.stat().st_size for path in files) / 1e6
        print(f"history: {len(files)} runs x 24 benchmarks, {size:,.0f} MB ({storage})")
        env = dict(os.environ, XDG_CACHE_HOME=str(work / "cache"))
        if args.code:
            env["PYTHONPATH"] = str(args.code.resolve())
            env.pop("XDG_CACHE_HOME")  # an older version may not know the index; it keeps its own cache
        first, newest = records.load_runs([files[0], files[-1]])
        chosen = ["--machine", "1"] if args.machines > 1 else []  # several machines: read the first

        def perf_core(*argv: str | Path, check: bool = True) -> float:
            started = time.perf_counter()
            where = ["--storage", str(storage)] + (chosen if argv[0] not in ("index", "report") else [])
            done = subprocess.run(
                [sys.executable, "-m", "perf_core.cli", *map(str, argv), *where],
                env=env,
                capture_output=True,
                text=True,
                cwd=work,
            )
            seconds = time.perf_counter() - started
            if check and done.returncode not in (0, 1):
                raise SystemExit(f"perf-core {' '.join(map(str, argv))}: exit {done.returncode}: {done.stderr.strip()}")
            return seconds

        commands = {
            "plot": ["plot", "-o", work / "plot.png"],
            "trend": ["trend", "-o", work / "trend.png"],
            "compare": ["compare", first.commit[:10], newest.commit[:10]],
            "report": ["report", "-o", work / "site"],  # every machine: one page each
        }
        rows = []
        added = None
        if not args.code:
            rows.append(("`perf-core index`, from nothing", [perf_core("index")]))
            added = add_run(storage, newest, len(files) + 1)
            rows.append(("`perf-core index`, one new run", [perf_core("index")]))
            rows.append(("trend, first after a new run", [perf_core(*commands["trend"])]))
            for name, argv in commands.items():
                perf_core(*argv)  # settle: its change points remembered, its files in the page cache
                rows.append((f"{name} (index current)", [perf_core(*argv) for _ in range(args.repeat)]))
        if args.without or args.code:
            no_index = [] if args.code else ["--no-index"]
            for name, argv in commands.items():
                rows.append((f"{name} (reading the files)", [perf_core(*argv, *no_index) for _ in range(args.repeat)]))
        if added:
            added.unlink()  # a --storage given stays as it was
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print("| command | best | median | every run |\n|---|---|---|---|")
        for label, walls in rows:
            every = ", ".join(f"{w:.2f}" for w in walls)
            print(f"| {label} | {min(walls):.2f} s | {statistics.median(walls):.2f} s | {every} |")
        print(f"peak resident memory of any process: {peak:,.0f} MB")
        index_files = list((work / "cache").rglob("*.sqlite"))
        if index_files:
            print(f"index size: {sum(p.stat().st_size for p in index_files) / 1e6:.1f} MB")
        shutil.rmtree(work / "site", ignore_errors=True)
    return 0


def add_run(storage: Path, newest: records.Run, number: int) -> Path:
    """A new run saved after the newest (the next commit an hour later), as the suite would."""
    when = (newest.commit_time or newest.run_time) + timedelta(hours=1)
    machine = MACHINE | {contract.DEVICE_NAME: newest.machine.device_name}  # the newest run's machine
    document = run_document(commit_sha(10**6 + number), when, seed=number, rounds=400, machine=machine)
    document["datetime"] = (datetime.now(when.tzinfo)).isoformat()
    return write_run(storage, number, document)


if __name__ == "__main__":
    sys.exit(main())
