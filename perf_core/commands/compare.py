"""`perf-core compare BASE HEAD`: two commits of the history side by side, with the gate's decision."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from perf_core.analysis import explain, gate, output, select, stats, view
from perf_core.commands import history, options
from perf_core.errors import HistoryError


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compare", help="two commits side by side, with the gate's decision")
    parser.add_argument("base", help="base commit (hash prefix) or run file name")
    parser.add_argument("head", help="head commit (hash prefix) or run file name")
    options.add_selection(parser)
    options.add_json(parser)
    options.add_decision(parser)
    parser.set_defaults(run=run)


def run(
    base: str, head: str, *, selection: options.Selection, as_json: bool, threshold: float | None, alpha: float
) -> int:
    """Exit 1 when a benchmark regressed, else 0."""
    chosen, metric = history.load(selection), selection.metric
    base_runs, head_runs = history.find_commit(chosen, base), history.find_commit(chosen, head)
    names = chosen.names
    threshold = gate.threshold_for(metric, threshold)
    decided = gate.decide_all(base_runs, head_runs, names, metric, threshold, alpha, history=chosen.runs)
    if not decided:
        lacking = [
            label
            for label, group in ((base, base_runs), (head, head_runs))
            if not select.holds_figure(group, names, metric)
        ]
        if lacking:  # other runs of the machine hold the figure (history.load), these were saved without it
            have = "has" if len(lacking) == 1 else "have"
            raise HistoryError(f"{' and '.join(lacking)} {have} no {metric} figures (saved without them: --figures)")
        raise HistoryError(f"{base} and {head} have no benchmark in common")
    compared = {d.verdict.name for d in decided}
    only = {
        side: [n for n in names if select.run_values(group, n, metric) and n not in compared]
        for side, group in (("base", base_runs), ("head", head_runs))
    }
    rows = view.verdict_rows(decided)
    if as_json:
        print(json.dumps(view.verdict_records(rows, chosen.machine), indent=1))
    else:
        print(f"machine: {chosen.machine}")
        print(
            f"base {base_runs[0].short} ({len(base_runs)} run(s)) vs head {head_runs[0].short}"
            f" ({len(head_runs)} run(s)); {metric}"
        )
        output.print_table(*view.table(rows, view.TEXT_COLUMNS))
        for line in notes(decided, only, alpha):
            print(line)
        changed = [d.verdict.name for d in decided if d.verdict.verdict in explain.CHANGED]
        if changed:  # the index keeps no breakdowns: read the two commits' files again
            print_why(explain.why(changed, history.with_breakdowns(base_runs), history.with_breakdowns(head_runs)))
    return gate.exit_code(decided)


def notes(decided: Sequence[gate.Decided], only: dict[str, list[str]], alpha: float) -> list[str]:
    """What the table cannot say by itself: how it decided, and what it could not compare."""
    lines = []
    units = {d.unit for d in decided}
    if any(unit.startswith("spread") for unit in units):
        lines.append(
            f"fewer than {stats.MIN_RUNS} runs a side: each ratio is judged against this machine's run-to-run"
            " spread, measured on consecutive runs of its history (n column: pairs used; p: share of those"
            " pairs that strayed as far, by their noisiest benchmark or the whole run's shift)"
        )
    for unit in sorted(u for u in units if u.startswith("noisy ")):
        sides = unit.removeprefix("noisy ")
        lines.append(
            f"undecided: the {sides} run spread its rounds over {gate.NOISY:g}x as wide as this machine's typical"
            f" run (a busy machine), which one run a side cannot tell from a regression; run the {sides} again,"
            " or `perf-core ab BASE HEAD`"
        )
    if "no spread" in units:
        lines.append(
            f"undecided: fewer than {stats.MIN_RUNS} runs a side, and too few other runs of this machine to measure"
            f" its run-to-run spread at --alpha {alpha:g} ({gate.spread_runs_needed(alpha)} needed);"
            " run `perf-core ab BASE HEAD`, or save more runs"
        )
    for n_base, n_head in sorted({(d.verdict.n_base, d.verdict.n_head) for d in decided if d.unit == "runs"}):
        smallest = stats.smallest_p(n_base, n_head)
        if not stats.can_reach(smallest, alpha):
            lines.append(
                f"undecided: with {n_base}/{n_head} runs the test's smallest possible p is {smallest:.3g},"
                f" above --alpha {alpha:g}; save more runs ({stats.samples_needed(alpha)} a side),"
                " or run `perf-core ab BASE HEAD`"
            )
    for side, missing in only.items():
        if missing:
            lines.append(f"only in {side}, not compared: {', '.join(missing)}")
    return lines


def print_why(found: dict[str, list[str]]) -> None:
    """The top lines of each changed benchmark's explanation (explain.why), under the table; one line
    for the benchmarks that share a one-line note (a history saved before breakdowns: every one)."""
    notes: dict[str, list[str]] = {}
    for name, lines in found.items():
        if len(lines) == 1:
            notes.setdefault(lines[0], []).append(name)
            continue
        print(f"why {name}:")
        for line in lines:
            print(f"  {line}")
    for note, names in notes.items():
        print(f"why {', '.join(names)}: {note}")
