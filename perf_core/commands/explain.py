"""`perf-core explain BASE HEAD`: why benchmarks changed between two commits, kernel by kernel.

The history index keeps only the numbers, so the two commits' runs are read again from their
files (`history.with_breakdowns`), a few files, for their breakdowns; perf_core.analysis.explain diffs them.
"""

from __future__ import annotations

import argparse
import json

from perf_core.analysis import explain, gate, view
from perf_core.commands import history, options
from perf_core.errors import EXIT_OK, HistoryError, UsageError


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "explain", help="which kernels of each changed benchmark's call were added, removed, slower or faster"
    )
    parser.add_argument("base", help="base commit (hash prefix) or run file name")
    parser.add_argument("head", help="head commit (hash prefix) or run file name")
    parser.add_argument(
        "--benchmark",
        dest="benchmarks",
        metavar="NAME",
        action="append",
        help="a benchmark to explain, e.g. matmul-compiled-64; repeat for more (default: each one whose"
        " verdict is a regression or an improvement, else all)",
    )
    options.add_selection(parser)
    options.add_json(parser)
    options.add_decision(parser)
    parser.set_defaults(run=run)


def run(
    base: str,
    head: str,
    *,
    benchmarks: list[str] | None,
    selection: options.Selection,
    as_json: bool,
    threshold: float | None,
    alpha: float,
) -> int:
    """Exit 0, or 2 (HistoryError, UsageError) when nothing can be explained."""
    chosen, metric = history.load(selection), selection.metric
    base_runs, head_runs = history.find_commit(chosen, base), history.find_commit(chosen, head)
    limit = gate.threshold_for(metric, threshold)
    decided = gate.decide_all(base_runs, head_runs, chosen.names, metric, limit, alpha, history=chosen.runs)
    verdicts = {row.benchmark: row for row in view.verdict_rows(decided)}
    if benchmarks:
        unknown = [name for name in benchmarks if name not in chosen.names]
        if unknown:
            raise UsageError(
                f"--benchmark {unknown[0]}: not a benchmark of this history's selection (e.g. {chosen.names[0]})"
            )
        names = list(dict.fromkeys(benchmarks))
    else:
        names = [n for n, row in verdicts.items() if row.decided.verdict.verdict in explain.CHANGED] or chosen.names
    base_runs, head_runs = history.with_breakdowns(base_runs), history.with_breakdowns(head_runs)
    found = {name: explain.of(base_runs, head_runs, name) for name in names}
    if all(isinstance(e, str) for e in found.values()):
        first = next(iter(found.items()))
        raise HistoryError(f"nothing to explain: {first[0]}: {first[1]}")
    if as_json:
        print(json.dumps([record(name, e, verdicts.get(name), chosen.machine) for name, e in found.items()], indent=1))
        return EXIT_OK
    print(f"machine: {chosen.machine}")
    print(f"base {base_runs[0].short} ({len(base_runs)} run(s)) vs head {head_runs[0].short} ({len(head_runs)} run(s))")
    described = explain.lines(found, head_runs, top=None)  # every part, and the coverage mark
    for name in found:
        row = verdicts.get(name)
        print(f"{name}" + (f" ({row.verdict}, {row.change}):" if row else ":"))
        for line in described[name]:
            print(f"  {line}")
    return EXIT_OK


def record(name: str, found: explain.Explanation | str, row: view.VerdictRow | None, machine: str) -> dict:
    """One benchmark for --json: its verdict, and its explanation or the note saying why there is none."""
    explained = not isinstance(found, str)
    return {
        "benchmark": name,
        "machine": machine,
        "verdict": row.decided.verdict.verdict if row else None,
        "note": None if explained else found,
        "explanation": explain.as_record(found) if explained else None,
    }
