"""The `perf-core` command: plot, trend, compare and ab over the suite's saved runs.

Only the entry point lives here: the argument parser and the one place where a PerfCoreError
becomes a process exit. Exit codes (perf_core.errors): 0 fine, 1 a regression was found
(compare, ab), 2 bad usage or bad input (one line on stderr, no traceback). Nothing imports this.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from perf_core.analysis import ab, commands, export, gate, output, select, stats
from perf_core.analysis.changes import MIN_CHANGE
from perf_core.errors import Interrupted, PerfCoreError, UsageError, fraction, positive_int


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def typed(check, option: str, *bounds):
    """An argparse `type=` that validates with perf_core.errors; argparse prefixes the option name."""

    def convert(text: str):
        try:
            return check(option, text, *bounds)
        except UsageError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix(f"{option}: ")) from None

    return convert


def add_metric(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metric",
        choices=select.METRICS,
        default="steady",
        help="steady: pytest-benchmark's rounds (default); latency: one isolated call, host included;"
        " device: CUDA events, the GPU's own time (latency and device: GPU runs)",
    )


def add_storage(parser: argparse.ArgumentParser, offer_no_index: bool = True) -> None:
    parser.add_argument(
        "--storage", type=Path, default=Path(".benchmarks"), help="history folder (default .benchmarks)"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--index",
        type=Path,
        help="the history's index (parsed runs, SQLite) in this file (default: one per history folder"
        " in ~/.cache/perf-core/index)",
    )
    if offer_no_index:
        where.add_argument(
            "--no-index", action="store_true", help="read every run file instead of the index (same answers, slower)"
        )


def add_selection(parser: argparse.ArgumentParser) -> None:
    add_storage(parser)
    parser.add_argument(
        "--machine", help="machine to read: its number in the listing ([1], [2], ...) or a part of its label"
    )
    parser.add_argument("--kernel", help="comma-separated kernels to keep (default: all)")
    parser.add_argument("--variant", help="comma-separated variants to keep (default: all)")
    parser.add_argument("--tokens", help="comma-separated token counts to keep (default: all)")
    add_metric(parser)
    parser.add_argument("--json", action="store_true", help="print the numbers behind the output as JSON")


def add_figure(parser: argparse.ArgumentParser, stem: str) -> None:
    formats = output.FIGURE_FORMATS
    parser.add_argument("--format", choices=formats, help=f"figure format when -o is not given (default {formats[0]})")
    parser.add_argument("-o", "--output", type=Path, help=f"output file, .png or .svg (default {stem}.png)")


def add_decision(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threshold",
        type=typed(fraction, "--threshold", 0.0, 10.0),
        help=f"smallest slowdown that fails the gate (default {gate.THRESHOLD};"
        f" {gate.DEVICE_THRESHOLD} with --metric device)",
    )
    parser.add_argument(
        "--alpha",
        type=typed(fraction, "--alpha", 1e-9, 1.0),
        default=stats.ALPHA,
        help=f"significance level of the {stats.TEST_NAME} test (default {stats.ALPHA})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="perf-core", description="Per-token latency history, trends and the PR performance gate.")
    subcommands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    plot = subcommands.add_parser("plot", help="per-token latency against token count, one line per commit")
    add_selection(plot)
    plot.add_argument(
        "--last", type=typed(positive_int, "--last"), default=1, help="plot the last N commits (default 1)"
    )
    plot.add_argument("--commit", action="append", help="plot this commit (hash prefix or run file); repeatable")
    add_figure(plot, "per_token")
    plot.set_defaults(run=commands.plot)

    trend = subcommands.add_parser("trend", help="per-token latency across commits, with change points")
    add_selection(trend)
    trend.add_argument(
        "--min-change",
        type=typed(fraction, "--min-change", 0.0, 10.0),
        default=MIN_CHANGE,
        help=f"smallest relative change reported (default {MIN_CHANGE})",
    )
    add_figure(trend, "trend")
    trend.set_defaults(run=commands.trend)

    compare = subcommands.add_parser("compare", help="two commits side by side, with the gate's decision")
    compare.add_argument("base", help="base commit (hash prefix) or run file name")
    compare.add_argument("head", help="head commit (hash prefix) or run file name")
    add_selection(compare)
    add_decision(compare)
    compare.set_defaults(run=commands.compare)

    site = subcommands.add_parser("report", help="a static HTML dashboard of the history, one page per machine")
    add_selection(site)
    site.add_argument("-o", "--output", type=Path, default=Path("site"), help="folder to write (default site/)")
    site.add_argument("--commit-url", help="link for each commit, e.g. https://github.com/OWNER/REPO/commit/{sha}")
    site.add_argument("--ab", type=Path, help="a `perf-core ab --out` folder: show its verdicts on that machine's page")
    site.add_argument(
        "--min-change",
        type=typed(fraction, "--min-change", 0.0, 10.0),
        default=MIN_CHANGE,
        help=f"smallest relative change marked (default {MIN_CHANGE})",
    )
    add_decision(site)
    site.set_defaults(run=commands.report)

    indexer = subcommands.add_parser(
        "index", help="bring the history's index up to date (the reading commands also do, as they start)"
    )
    add_storage(indexer, offer_no_index=False)
    indexer.set_defaults(run=commands.update_index, no_index=False)

    exporter = subcommands.add_parser("export", help="one commit's figures for Bencher or github-action-benchmark")
    add_selection(exporter)
    exporter.add_argument("--format", required=True, choices=export.FORMATS)
    exporter.add_argument("--commit", help="commit (hash prefix) or run file to export (default: the newest)")
    exporter.add_argument("-o", "--output", type=Path, help="write here instead of standard output")
    exporter.set_defaults(run=commands.export)

    gate_parser = subcommands.add_parser("ab", help="PR gate: run base and head interleaved on this machine and decide")
    ab.add_arguments(gate_parser)
    add_metric(gate_parser)
    add_decision(gate_parser)
    gate_parser.set_defaults(run=ab.main)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, with the defaults that depend on other options filled in."""
    args = build_parser().parse_args(argv)
    if getattr(args, "threshold", 0.0) is None:
        args.threshold = gate.default_threshold(args.metric)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """The one place where errors become exit codes."""
    try:
        args = parse_args(argv)
        return args.run(args)
    except PerfCoreError as error:
        print(f"perf-core: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("perf-core: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except Interrupted as stop:
        print(f"perf-core: stopped by {signal.Signals(stop.signum).name}", file=sys.stderr)
        return 128 + stop.signum


if __name__ == "__main__":
    sys.exit(main())
