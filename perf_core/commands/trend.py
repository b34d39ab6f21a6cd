"""`perf-core trend`: per-token latency across commits, with the change points found in it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from perf_core import contract
from perf_core.analysis import index, output, select, view
from perf_core.analysis.records import Run
from perf_core.commands import history, options
from perf_core.errors import EXIT_OK

if TYPE_CHECKING:
    from perf_core.analysis import changes, figures


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("trend", help="per-token latency across commits, with change points")
    options.add_selection(parser)
    options.add_json(parser)
    options.add_min_change(parser, "reported")
    options.add_figure(parser, "trend")
    parser.set_defaults(run=run)


def run(
    *, selection: options.Selection, as_json: bool, min_change: float, fmt: str | None, output_path: Path | None
) -> int:
    from perf_core.analysis import changes, figures

    chosen, metric = history.load(selection), selection.metric
    commits = select.by_commit(chosen.runs)
    path = output.figure_path(output_path, fmt, "trend")
    with index.memo(history.index_of(selection)) as memo:
        panels, found = trend_lines(commits, chosen.names, metric, min_change, memo)
    searched = len(commits) >= changes.MIN_POINTS
    listed = [{"benchmark": f.benchmark, "change": f.change, "commit": f.commit, "date": f.date} for f in found]
    if as_json:
        series = select.series(commits, chosen.names, metric)
        points = [
            {"benchmark": name, "points": [p.__dict__ | {"when": str(p.when)} for p in series[name] if p]}
            for name in chosen.names
        ]
        document = {"machine": chosen.machine, "commits": len(commits), "searched": searched, "changes": listed}
        print(json.dumps(document | {"series": points}, indent=1, default=str))
    else:
        print(f"machine: {chosen.machine}")
        for f in found:
            print(f"{output.text_cell(f.benchmark)}: {f.change:+.1%} at {f.commit} ({f.date})")
        if not searched:
            print(
                f"too few commits to look for changes: {len(commits)}, change points need at least"
                f" {changes.MIN_POINTS}; `perf-core compare BASE HEAD` compares two commits"
            )
        elif not found:
            print(f"no change of {min_change:.0%} or more across {len(commits)} commits")
    labels = [commit for commit, _ in commits]
    fig = figures.trend_figure(labels, panels, f"Per-token latency across commits: {chosen.runs[-1].machine.label}")
    output.save_figure(fig, path)
    return EXIT_OK


def trend_lines(
    commits: list[tuple[str, list[Run]]], names: list[str], metric: str, min_change: float, memo: dict[str, str]
) -> tuple[dict[str, list[figures.TrendLine]], list[changes.Found]]:
    """Each panel's lines (one per token count, change points marked) and every change point found."""
    from perf_core.analysis import changes, figures

    every = select.columns(commits, names, metric)
    labels, when = [commit for commit, _ in commits], select.commit_times(commits)
    panels: dict[str, list[figures.TrendLine]] = {}
    found: list[changes.Found] = []
    for panel, members in view.panels(names):
        lines = panels.setdefault(view.panel_title(panel), [])
        for name in members:
            column = every[name]
            located = changes.found_in(name, column.per_token_s, labels, when, min_change, memo)
            found += located
            marks = tuple((f.index, f.change) for f in located)
            lines.append(figures.TrendLine(f"{contract.parse_name(name).n_tokens} tokens", column, marks))
    return panels, found
