"""The option groups commands share, each declared once (asv's common_args): a command calls the
groups it takes, and its `run` has one keyword parameter per option (the option's `dest`), but for
add_selection's options, which come as one Selection (`grouped`).

Values are checked here, at parse time, by perf_core.errors' validators (one-line errors, exit 2).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

from perf_core.analysis import gate, output, stats
from perf_core.analysis.changes import MIN_CHANGE
from perf_core.contract import METRICS
from perf_core.errors import UsageError, fraction


def typed(check: Callable, option: str, *bounds) -> Callable[[str], object]:
    """An argparse `type=` that validates with perf_core.errors; argparse prefixes the option name."""

    def convert(text: str):
        try:
            return check(option, text, *bounds)
        except UsageError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix(f"{option}: ")) from None

    return convert


def add_storage(parser: argparse.ArgumentParser, offer_no_index: bool = True) -> None:
    """--storage, --index (dest index_file) and, unless `offer_no_index` is False, --no-index."""
    parser.add_argument(
        "--storage", type=Path, default=Path(".benchmarks"), help="history folder (default .benchmarks)"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--index",
        dest="index_file",
        metavar="INDEX",
        type=Path,
        help="the history's index (parsed runs, SQLite) in this file (default: one per history folder"
        " in ~/.cache/perf-core/index)",
    )
    if offer_no_index:
        where.add_argument(
            "--no-index", action="store_true", help="read every run file instead of the index (same answers, slower)"
        )


def add_filters(
    parser: argparse.ArgumentParser, variant: str | None = None, tokens_help: str = "(default: all)"
) -> None:
    """--kernel, --variant and --tokens, each a comma-separated list to keep."""
    parser.add_argument("--kernel", help="comma-separated kernels to keep (default: all)")
    variant_help = f"(default: {variant})" if variant else "(default: all)"
    parser.add_argument("--variant", default=variant, help=f"comma-separated variants to keep {variant_help}")
    parser.add_argument("--tokens", help=f"comma-separated token counts to keep {tokens_help}")


def add_metric(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metric",
        choices=METRICS,
        default="steady",
        help="steady: pytest-benchmark's rounds (default); latency: one isolated call, host included;"
        " device: CUDA events, the GPU's own time (latency and device: GPU runs)",
    )


@dataclass(frozen=True)
class Selection:
    """What a reading command reads (add_selection's options): the history, one machine of it, the
    benchmarks, the metric. Plain values; commands.history reads by them."""

    storage: Path
    index_file: Path | None
    no_index: bool
    machine: str | None
    kernel: str | None
    variant: str | None
    tokens: str | None
    metric: str


def grouped(values: dict) -> dict:
    """The parsed options as a command's run takes them: add_selection's as one `selection`."""
    names = [field.name for field in fields(Selection)]
    if not all(name in values for name in names):
        return values
    rest = {name: value for name, value in values.items() if name not in names}
    return rest | {"selection": Selection(**{name: values[name] for name in names})}


def add_selection(parser: argparse.ArgumentParser) -> None:
    """What a reading command reads: the history, one machine of it, the benchmarks, the metric (a Selection)."""
    add_storage(parser)
    parser.add_argument(
        "--machine", help="machine to read: its number in the listing ([1], [2], ...) or a part of its label"
    )
    add_filters(parser)
    add_metric(parser)


def add_json(parser: argparse.ArgumentParser, help: str = "print the numbers behind the output as JSON") -> None:
    parser.add_argument("--json", dest="as_json", action="store_true", help=help)


def add_figure(parser: argparse.ArgumentParser, stem: str) -> None:
    """--format (dest fmt) and -o/--output (dest output_path) of a command that draws one figure."""
    formats = output.FIGURE_FORMATS
    parser.add_argument(
        "--format", dest="fmt", choices=formats, help=f"figure format when -o is not given (default {formats[0]})"
    )
    add_output(parser, f"output file, .png or .svg (default {stem}.png)")


def add_output(parser: argparse.ArgumentParser, help: str, default: Path | None = None) -> None:
    """-o/--output (dest output_path): where a command writes."""
    parser.add_argument("-o", "--output", dest="output_path", metavar="OUTPUT", type=Path, default=default, help=help)


def add_min_change(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--min-change",
        type=typed(fraction, "--min-change", 0.0, 10.0),
        default=MIN_CHANGE,
        help=f"smallest relative change {what} (default {MIN_CHANGE})",
    )


def add_decision(parser: argparse.ArgumentParser) -> None:
    """--threshold (None: gate.threshold_for the metric) and --alpha."""
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
        help=f"significance level of the {stats.TEST_NAME} test (of the {stats.PAIRED_TEST_NAME} test for"
        f" `ab`'s pairs timed together on the CPU; default {stats.ALPHA})",
    )
