"""Time `perf-core plot` and `perf-core trend` on a long history: 200 runs x 24 benchmarks.

Builds the history with perf_core.analysis.synthetic (runs shaped like the suite's, raw rounds included),
then runs each command as a user would, in a fresh process, and prints wall seconds.

    python scripts/bench_cli.py --runs 200 --rounds 400
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from perf_core.analysis.synthetic import write_history


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=400, help="raw rounds per benchmark (the suite saves ~100-1000)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        storage = Path(folder) / ".benchmarks"
        paths = write_history(storage, args.runs, step_at=args.runs // 2, rounds=args.rounds)
        size = sum(p.stat().st_size for p in paths) / 1e6
        print(f"history: {len(paths)} runs x 24 benchmarks, {args.rounds} rounds each, {size:.0f} MB")
        for command in ("plot", "trend"):
            walls = []
            for _ in range(args.repeat):
                start = time.perf_counter()
                out = Path(folder) / f"{command}.png"
                subprocess.run(
                    [sys.executable, "-m", "perf_core.cli", command, "--storage", str(storage), "-o", str(out)],
                    check=True,
                    capture_output=True,
                )
                walls.append(time.perf_counter() - start)
            print(
                f"perf-core {command}: " + ", ".join(f"{w:.2f}" for w in walls) + f" s wall (best {min(walls):.2f} s)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
