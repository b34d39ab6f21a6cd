"""`perf-core export`: one commit's pooled figures (the newest by default) in a result server's format."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from perf_core.analysis import export as formats
from perf_core.analysis import output, select
from perf_core.commands import history, options
from perf_core.errors import EXIT_OK, HistoryError


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="one commit's figures for Bencher or github-action-benchmark")
    options.add_selection(parser)
    parser.add_argument("--format", dest="fmt", required=True, choices=formats.FORMATS)
    parser.add_argument("--commit", help="commit (hash prefix) or run file to export (default: the newest)")
    options.add_output(parser, "write here instead of standard output")
    parser.set_defaults(run=run)


def run(*, selection: options.Selection, fmt: str, commit: str | None, output_path: Path | None) -> int:
    chosen, metric = history.load(selection), selection.metric
    commits = select.by_commit(chosen.runs)
    label, group = history.groups_of(chosen, commits, commit)[0] if commit else commits[-1]
    points = [
        (name, select.pool(label, group, name, metric)) for name in history.names_in(group, history.wanted(selection))
    ]
    points, dropped = formats.finite([(name, point) for name, point in points if point])
    if dropped:  # one line: a NaN would make the whole upload fail; the rest still go
        print(
            f"perf-core: left out {len(dropped)} benchmark(s) whose figure is not finite: {', '.join(dropped)}",
            file=sys.stderr,
        )
    if not points:
        raise HistoryError(f"commit {label} has no finite {metric} figures for the chosen benchmarks")
    if fmt == "bencher":
        document = formats.bencher(points, chosen.machine, metric)
    else:
        document = formats.github_action_benchmark(points, chosen.machine, metric)
    text = json.dumps(document, indent=1, allow_nan=False) + "\n"  # finite() left NaN out: never invalid JSON
    if output_path:
        output.write_text(output_path, text)
        print(f"wrote {output_path}: {len(points)} benchmarks of {label} ({chosen.machine})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK
