"""`perf-core report -o site/`: the static HTML dashboard, one page per machine, never mixing machines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from perf_core.analysis import ab, gate, index, select
from perf_core.analysis import report as site
from perf_core.commands import history, options
from perf_core.errors import EXIT_OK, HistoryError, UsageError


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("report", help="a static HTML dashboard of the history, one page per machine")
    options.add_selection(parser)
    options.add_output(parser, "folder to write (default site/)", Path("site"))
    parser.add_argument("--commit-url", help="link for each commit, e.g. https://github.com/OWNER/REPO/commit/{sha}")
    parser.add_argument(
        "--ab",
        dest="ab_folder",
        metavar="AB",
        type=Path,
        help="a `perf-core ab --out` folder: show its verdicts on that machine's page",
    )
    options.add_min_change(parser, "marked")
    options.add_decision(parser)
    parser.set_defaults(run=run)


def run(
    *,
    selection: options.Selection,
    output_path: Path,
    commit_url: str | None,
    ab_folder: Path | None,
    min_change: float,
    threshold: float | None,
    alpha: float,
) -> int:
    where, metric = history.index_of(selection), selection.metric
    runs, _ = history.read(selection.storage, where)
    found = select.machines(runs)
    if selection.machine:
        found = [select.choose_machine(found, selection.machine)]
    if commit_url and "{sha}" not in commit_url:
        raise UsageError(f"--commit-url {commit_url!r} has no {{sha}} to put the commit in")
    gate_runs = ab.collect(ab.run_files(ab_folder)) if ab_folder else None
    keep = history.wanted(selection)
    pages = []
    with index.memo(where) as memo:
        for number, chosen in enumerate(found, 1):
            mine = [run for run in runs if run.machine == chosen]
            names = history.names_in(mine, keep)
            if not names:
                continue
            decided = None
            if gate_runs and gate_runs["base"][0].machine == chosen:
                decided = ab.decide_folder(ab_folder, gate_runs, gate.threshold_for(metric, threshold), alpha, metric)
            newest = [run for _, group in select.by_commit(mine)[-site.BREAKDOWN_COMMITS :] for run in group]
            recent = history.with_breakdowns(newest)  # the index keeps no breakdowns
            pages.append(site.machine_page(number, mine, names, metric, commit_url, min_change, decided, memo, recent))
            print(
                f"[{number}/{len(found)}] {chosen.label}: {len(mine)} runs, {pages[-1].charts} charts", file=sys.stderr
            )
    if not pages:
        raise HistoryError("no benchmark in the history matches --kernel/--variant/--tokens")
    site.write_site(output_path, pages)
    print(f"wrote {output_path}/index.html and {len(pages)} machine page(s)", file=sys.stderr)
    return EXIT_OK
