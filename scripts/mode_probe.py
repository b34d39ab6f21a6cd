"""Is a benchmark's per-process mode shared by the runs of one side? (issue 21, matmul-compiled-256 on
the H200: device_s in one of two modes 6-10% apart, a process at a time.)

Runs the gate's own interleaved runs (`ab.run_pairs`, A B B A ..., every pair, no early stop) of one
commit on both sides, several times: forked from one fork server per gate (as the gate does) and, with
--fresh, as fresh processes (PERF_CORE_NO_FORK=1). Prints, per gate and side, each run's device time
per token of the chosen benchmarks in launch order, so a mode tied to the side (its worktree) or to
the server shows as a run of equal modes where a per-process draw would mix them.

    python3 scripts/mode_probe.py --pairs 10 --gates 2 --fresh --out /tmp/probe
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

from perf_core.analysis import ab, records


def gate(out: Path, pairs: int, selection: list[str], metric: str) -> dict[str, list[records.Run]]:
    sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    files = ab.run_pairs(Path.cwd(), {"base": sha, "head": sha}, pairs, selection, metric, out)
    return {side: records.load_runs(paths) for side, paths in files.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--gates", type=int, default=2, help="forked gates, one fork server each")
    parser.add_argument("--fresh", action="store_true", help="and one gate of fresh processes")
    parser.add_argument("--kernel", default="matmul")
    parser.add_argument("--tokens", default="128,256")
    parser.add_argument("--metric", default="device", help="steady on a CPU")
    parser.add_argument("--out", type=Path, required=True)
    options = parser.parse_args()
    selection = ab.selection_args(options.kernel, "compiled", options.tokens)
    kinds = ["forked"] * options.gates + (["fresh"] if options.fresh else [])
    for number, kind in enumerate(kinds, 1):
        if kind == "fresh":
            os.environ["PERF_CORE_NO_FORK"] = "1"
        started = time.monotonic()
        runs = gate(options.out / f"gate{number}-{kind}", options.pairs, selection, options.metric)
        print(
            f"gate {number} ({kind}, one {'server' if kind == 'forked' else 'process a run'}): "
            f"{time.monotonic() - started:.0f} s"
        )
        for name in sorted(runs["base"][0].results):
            for side in ("base", "head"):
                values = [
                    run.results[name].seconds(options.metric) * 1e9 / run.results[name].n_tokens for run in runs[side]
                ]
                print(f"  {name:22s} {side}: " + " ".join(f"{v:6.2f}" for v in values) + "  ns/token")


if __name__ == "__main__":
    main()
