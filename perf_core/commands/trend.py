"""`perf-core trend`: per-token latency across commits, with the change points found in it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from perf_core import contract
from perf_core.analysis import index, output, select, view
from perf_core.commands import history, options
from perf_core.errors import EXIT_OK


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("trend", help="per-token latency across commits, with change points")
    options.add_selection(parser)
    options.add_json(parser)
    options.add_min_change(parser, "reported")
    options.add_figure(parser, "trend")
    parser.set_defaults(run=run)


def run(
    *,
    storage: Path,
    index_file: Path | None,
    no_index: bool,
    machine: str | None,
    kernel: str | None,
    variant: str | None,
    tokens: str | None,
    metric: str,
    as_json: bool,
    min_change: float,
    fmt: str | None,
    output_path: Path | None,
) -> int:
    from perf_core.analysis import changes, figures

    where = history.index_path(storage, index_file, no_index)
    chosen = history.load(where, storage, machine, history.wanted(kernel, variant, tokens))
    runs, names = chosen.runs, chosen.names
    commits = select.by_commit(runs)
    path = output.figure_path(output_path, fmt, "trend")
    panels: dict[str, list] = {}
    found, data = [], []
    every = select.columns(commits, names, metric)
    labels, when = [commit for commit, _ in commits], select.commit_times(commits)
    points = select.series(commits, names, metric) if as_json else {}
    with index.memo(where) as memo:
        for panel, members in view.panels(names):
            lines = panels.setdefault(view.panel_title(panel), [])
            for name in members:
                column = every[name]
                located = changes.found_in(name, column.per_token_s, labels, when, min_change, memo)
                marks = tuple((f.index, f.change) for f in located)
                found += [{"benchmark": name, "change": f.change, "commit": f.commit, "date": f.date} for f in located]
                if as_json:
                    data.append(
                        {"benchmark": name, "points": [p.__dict__ | {"when": str(p.when)} for p in points[name] if p]}
                    )
                lines.append(figures.TrendLine(f"{contract.parse_name(name).n_tokens} tokens", column, marks))
    searched = len(commits) >= changes.MIN_POINTS
    if as_json:
        result = {
            "machine": chosen.machine,
            "commits": len(commits),
            "searched": searched,
            "changes": found,
            "series": data,
        }
        print(json.dumps(result, indent=1, default=str))
    else:
        print(f"machine: {chosen.machine}")
        for item in found:
            print(f"{item['benchmark']}: {item['change']:+.1%} at {item['commit']} ({item['date']})")
        if not searched:
            print(
                f"too few commits to look for changes: {len(commits)}, change points need at least"
                f" {changes.MIN_POINTS}; `perf-core compare BASE HEAD` compares two commits"
            )
        elif not found:
            print(f"no change of {min_change:.0%} or more across {len(commits)} commits")
    fig = figures.trend_figure(labels, panels, f"Per-token latency across commits: {runs[-1].machine.label}")
    output.save_figure(fig, path)
    return EXIT_OK
