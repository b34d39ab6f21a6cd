"""`perf-core index`: bring the history's index up to date (e.g. right after saving a run)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from perf_core.analysis import index
from perf_core.commands import history, options
from perf_core.errors import EXIT_OK


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "index", help="bring the history's index up to date (the reading commands also do, as they start)"
    )
    options.add_storage(parser, offer_no_index=False)
    parser.set_defaults(run=run)


def run(*, storage: Path, index_file: Path | None) -> int:
    where = history.index_path(storage, index_file)  # never None: `index` offers no --no-index
    started = time.perf_counter()
    synced = index.update(storage, where)
    for item in synced.failed:  # as the reading commands will say when they leave them out
        print(f"perf-core: warning: skipped {item.reason}", file=sys.stderr)
    skipped = f", {len(synced.failed)} skipped (not runs)" if synced.failed else ""
    print(
        f"index {where}: {len(synced.keys) - len(synced.failed)} runs; {synced.parsed} new or changed,"
        f" {synced.gone} gone{skipped}; {time.perf_counter() - started:.2f} s"
    )
    return EXIT_OK
