"""`perf-core plot`: per-token latency against token count, one line per commit, one panel per kernel/variant."""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import TYPE_CHECKING

from perf_core import contract
from perf_core.analysis import output, select, view
from perf_core.commands import history, options
from perf_core.errors import EXIT_OK, HistoryError, positive_int

if TYPE_CHECKING:
    from perf_core.analysis import figures


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("plot", help="per-token latency against token count, one line per commit")
    options.add_selection(parser)
    options.add_json(parser)
    parser.add_argument(
        "--last", type=options.typed(positive_int, "--last"), default=1, help="plot the last N commits (default 1)"
    )
    parser.add_argument(
        "--commit",
        dest="commits",
        metavar="COMMIT",
        action="append",
        help="plot this commit (hash prefix or run file); repeatable",
    )
    options.add_figure(parser, "per_token")
    parser.set_defaults(run=run)


def run(
    *,
    selection: options.Selection,
    as_json: bool,
    last: int,
    commits: list[str] | None,
    fmt: str | None,
    output_path: Path | None,
) -> int:
    from perf_core.analysis import figures  # matplotlib: 0.35 s that compare and export need not pay

    chosen = history.load(selection)
    runs, names, metric = chosen.runs, chosen.names, selection.metric
    groups = select.by_commit(runs)
    if commits:
        shown = [pair for name in commits for pair in history.groups_of(chosen, groups, name)]
    else:
        shown = groups[-last:]
    panels, data = [], []
    for panel, members in view.panels(names):
        points = view.curve_points(shown, members, metric)
        if points:
            panels.append(figure_panel(panel, points, select.floors(runs, members)))
        data += [
            {"benchmark": c.benchmark, "commit": c.commit, "per_token_s": c.point.per_token_s}
            | {rate: getattr(c, rate) for rate in select.RATES}
            for c in points
        ]
    if not panels:
        raise HistoryError(f"the selected commits have no {metric} figures for the chosen benchmarks")
    path = output.figure_path(output_path, fmt, "per_token")
    if as_json:
        print(json.dumps([row | {"machine": chosen.machine} for row in data], indent=1))
    label = contract.METRICS[metric].label
    fig = figures.per_token_figure(panels, runs[-1].machine.label, f"Latency per Token, {label}")
    output.save_figure(fig, path)
    return EXIT_OK


def figure_panel(panel: str, points: list[view.CurvePoint], floors: list[tuple[str, float]]) -> figures.Panel:
    """A figures.Panel: one Curve per commit (in the points' order), the floor per token."""
    from perf_core.analysis import figures

    curves = []
    for label, same in itertools.groupby(points, key=lambda c: c.label):  # a commit's points are consecutive
        mine = list(same)
        per_token = tuple(c.point.per_token_s for c in mine)
        curves.append(figures.Curve(label, tuple(c.tokens for c in mine), per_token, tuple(c.throttled for c in mine)))
    floor = tuple((contract.parse_name(n).n_tokens, f / contract.parse_name(n).n_tokens) for n, f in floors)
    return figures.Panel(view.panel_title(panel), tuple(curves), floor)
