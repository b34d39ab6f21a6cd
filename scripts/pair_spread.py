"""How much a gate's pairs spread: per benchmark, each pair's head/base ratio of medians and the
between-pair sd of its log, beside the sd of the base runs' own log medians (what an unpaired test sees).

    python scripts/pair_spread.py .benchmarks-ab/20261202-055000   # an `perf-core ab --out` folder
"""

from __future__ import annotations

import glob
import json
import math
import statistics
import sys


def medians(path: str) -> dict[str, float]:
    return {b["name"]: b["stats"]["median"] for b in json.load(open(path))["benchmarks"]}


def main(folder: str) -> int:
    base = [medians(f) for f in sorted(glob.glob(f"{folder}/base-*.json"))]
    head = [medians(f) for f in sorted(glob.glob(f"{folder}/head-*.json"))]
    timer = json.load(open(sorted(glob.glob(f"{folder}/base-*.json"))[0]))["benchmarks"][0]["options"].get("timer")
    n = min(len(base), len(head))
    print(f"{folder}: {n} pairs, timer {timer}")
    pair_sds, run_sds = [], []
    for name in sorted(base[0]):
        logs = [math.log(head[i][name] / base[i][name]) for i in range(n)]
        pair_sds.append(statistics.stdev(logs))
        run_sds.append(statistics.stdev(math.log(run[name]) for run in base[:n]))
        print(
            f"  {name:40} median ratio {math.exp(statistics.median(logs)):.3f}  sd log ratio {100 * pair_sds[-1]:5.1f}%"
            f"  sd log base {100 * run_sds[-1]:5.1f}%  ratios " + " ".join(f"{math.exp(x):.3f}" for x in logs)
        )
    print(
        f"  median over benchmarks: sd log ratio {100 * statistics.median(pair_sds):.1f}%,"
        f" sd log base {100 * statistics.median(run_sds):.1f}%"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
