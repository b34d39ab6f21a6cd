"""The `perf-core` command: plot, trend, compare and ab over the suite's saved runs.

Exit codes: 0 fine, 1 a regression was found (compare, ab), 2 bad usage or bad input (one line on
stderr, no traceback). Reading commands never change or delete a history file; figures and reports
are written atomically (a temporary file in the target folder, then a rename).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from perf_core import history
from perf_core.history import HistoryError, Run

EXIT_OK, EXIT_REGRESSION, EXIT_USAGE = 0, 1, 2


class UsageError(ValueError):
    """Bad arguments; one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# ---------------------------------------------------------------------------------------------
# Selection shared by every subcommand


def add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage", type=Path, default=Path(".benchmarks"), help="history folder (default .benchmarks)"
    )
    parser.add_argument("--machine", help="machine to read, a part of its label or its number in the listing")
    parser.add_argument("--kernel", help="comma-separated kernels to keep (default: all)")
    parser.add_argument("--variant", help="comma-separated variants to keep (default: all)")
    parser.add_argument("--tokens", help="comma-separated token counts to keep (default: all)")
    add_metric(parser)
    parser.add_argument("--json", action="store_true", help="print the numbers behind the output as JSON")


def add_metric(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metric",
        choices=("steady", "latency"),
        default="steady",
        help="steady: calls back to back (default); latency: one isolated call (GPU runs)",
    )


def _csv(text: str | None) -> set[str] | None:
    return None if not text else {item.strip() for item in text.split(",") if item.strip()}


def wanted(args: argparse.Namespace) -> Callable[[history.Result], bool]:
    kernels, variants, tokens = _csv(args.kernel), _csv(args.variant), _csv(args.tokens)
    for token in tokens or ():
        if not token.isdigit() or int(token) < 1:
            raise UsageError(f"--tokens: {token!r} is not a positive integer")

    def keep(result: history.Result) -> bool:
        return (
            (kernels is None or result.kernel in kernels)
            and (variants is None or result.variant in variants)
            and (tokens is None or str(result.n_tokens) in tokens)
        )

    return keep


def current_machine() -> history.Machine | None:
    """This host's CPU and torch build, to pick its history among several (no torch import: slow)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        return None
    return history.Machine(history.cpu_name(), torch_version, 1, None)


def load(args: argparse.Namespace) -> list[Run]:
    runs = history.load_runs(history.find_files(args.storage))
    if len({run.machine for run in runs}) > 1 and not args.machine:
        runs = history.select_machine(runs, None, current_machine())
    else:
        runs = history.select_machine(runs, args.machine)
    if not names_in(runs, args):
        raise HistoryError("no benchmark in the history matches --kernel/--variant/--tokens")
    return runs


def split_name(name: str) -> tuple[str, int]:
    """ "attention-compiled-128" -> ("attention-compiled", 128): the panel and the token count."""
    panel, tokens = name.rsplit("-", 1)
    return panel, int(tokens)


def names_in(runs: Sequence[Run], args: argparse.Namespace) -> list[str]:
    keep = wanted(args)
    results = {name: result for run in runs for name, result in run.results.items() if keep(result)}
    return sorted(results, key=lambda n: (results[n].kernel, results[n].variant, results[n].n_tokens))


# ---------------------------------------------------------------------------------------------
# Output


def check_writable(path: Path) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"cannot write {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write {path}: folder {folder} is not writable")


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder, then rename: never a half-written file."""
    check_writable(path)
    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", suffix=path.suffix)
        os.close(handle)
        write(Path(temporary))
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        if temporary and os.path.exists(temporary):
            os.unlink(temporary)


def save_figure(fig, path: Path) -> None:
    fmt = path.suffix.lstrip(".").lower() or "png"
    if fmt not in ("png", "svg"):
        raise UsageError(f"-o {path}: the figure format must be .png or .svg")
    write_atomic(path, lambda temporary: fig.savefig(temporary, format=fmt, dpi=120))
    print(f"wrote {path}", file=sys.stderr)


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for row in [header, *rows]:
        print(
            "  ".join(
                str(cell).rjust(width) if i else str(cell).ljust(width)
                for i, (cell, width) in enumerate(zip(row, widths))
            )
        )


# ---------------------------------------------------------------------------------------------
# Subcommands


def cmd_plot(args: argparse.Namespace) -> int:
    from perf_core import plots

    runs = load(args)
    commits = history.by_commit(runs)
    if args.commit:
        chosen = [
            (c, group) for name in args.commit for c, group in commits if group[0] in history.find_commit(runs, name)
        ]
    else:
        chosen = commits[-args.last :]
    names = names_in(runs, args)
    panels, data = [], []
    for group_name in dict.fromkeys(split_name(n)[0] for n in names):
        members = [n for n in names if split_name(n)[0] == group_name]
        curves = []
        for commit, group in chosen:
            points = [(split_name(n)[1], history.pool(commit, group, n, args.metric)) for n in members]
            points = [(tokens, p) for tokens, p in points if p]
            if not points:
                continue
            date = group[-1].run_time.strftime("%Y-%m-%d")
            curves.append(plots.Curve(f"{commit} ({date})", *zip(*[(t, p.per_token_s) for t, p in points])))
            data += [
                {"benchmark": f"{group_name}-{t}", "commit": commit, "per_token_s": p.per_token_s} for t, p in points
            ]
        latest = chosen[-1][1][-1]
        floor = tuple(
            (latest.results[n].n_tokens, latest.results[n].floor_s / latest.results[n].n_tokens)
            for n in members
            if n in latest.results and latest.results[n].floor_s
        )
        if curves:
            panels.append(plots.Panel(group_name.replace("-", " / "), tuple(curves), floor))
    if not panels:
        raise HistoryError(f"the selected commits have no {args.metric} figures for the chosen benchmarks")
    if args.json:
        print(json.dumps(data, indent=1))
    metric = "steady state (calls back to back)" if args.metric == "steady" else "isolated-call latency"
    fig = plots.per_token_figure(panels, runs[-1].machine.label, f"Latency per Token, {metric}")
    save_figure(fig, args.output or Path(f"per_token.{args.format}"))
    return EXIT_OK


def cmd_trend(args: argparse.Namespace) -> int:
    from perf_core import changes, plots

    runs = load(args)
    commits = history.by_commit(runs)
    names = names_in(runs, args)
    panels: dict[str, list] = {}
    found, data = [], []
    for name in names:
        points = [history.pool(commit, group, name, args.metric) for commit, group in commits]
        present = [(i, p) for i, p in enumerate(points) if p]
        detected = changes.detect([p.per_token_s for _, p in present], min_change=args.min_change)
        marks = tuple((present[c.index][0], c.change) for c in detected)
        for index, change in marks:
            point = points[index]
            when = point.when.strftime("%Y-%m-%d") if point.when else "unknown date"
            found.append({"benchmark": name, "change": change, "commit": point.commit, "date": when})
        data.append({"benchmark": name, "points": [p.__dict__ | {"when": str(p.when)} for _, p in present]})
        group, tokens = split_name(name)
        panels.setdefault(group.replace("-", " / "), []).append(
            plots.TrendLine(f"{tokens} tokens", tuple(points), marks)
        )
    if args.json:
        print(json.dumps({"changes": found, "series": data}, indent=1, default=str))
    else:
        for item in found:
            print(f"{item['benchmark']}: {item['change']:+.1%} at {item['commit']} ({item['date']})")
        if not found:
            print(f"no change of {args.min_change:.0%} or more across {len(commits)} commits")
    fig = plots.trend_figure(
        [c for c, _ in commits], panels, f"Per-token latency across commits: {runs[-1].machine.label}"
    )
    save_figure(fig, args.output or Path(f"trend.{args.format}"))
    return EXIT_OK


def samples(group: list[Run], name: str, metric: str) -> tuple[list[float], str]:
    """The gate's samples: per-run figures when a side has 3+ runs (the run is the independent unit),
    else the rounds of its single run (all it has; such a verdict is weaker, and labelled)."""
    values = [run.results[name].seconds(metric) for run in group if name in run.results]
    values = [v for v in values if v is not None]
    if len(values) >= 3 or metric != "steady":
        return values, "runs"
    return [r for run in group if name in run.results for r in run.results[name].rounds_s] or values, "rounds"


def verdict_rows(verdicts, units: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    header = ["benchmark", "base/token", "head/token", "ratio", "95% interval", "p", "n", "verdict"]
    rows = []
    for v, n_tokens in verdicts:
        rows.append(
            [
                v.name,
                history.format_seconds(v.base_s / n_tokens),
                history.format_seconds(v.head_s / n_tokens),
                f"{v.ratio:.3f}",
                f"[{v.ratio_low:.3f}, {v.ratio_high:.3f}]",
                f"{v.p_value:.3g}",
                f"{v.n_base}/{v.n_head} {units[v.name]}",
                v.verdict.upper() if v.verdict == "regression" else v.verdict,
            ]
        )
    return header, rows


def cmd_compare(args: argparse.Namespace) -> int:
    from perf_core import gate

    runs = load(args)
    base, head = history.find_commit(runs, args.base), history.find_commit(runs, args.head)
    verdicts, units = [], {}
    for name in names_in(runs, args):
        (base_values, base_unit), (head_values, head_unit) = (
            samples(base, name, args.metric),
            samples(head, name, args.metric),
        )
        if not base_values or not head_values:
            continue
        units[name] = base_unit if base_unit == head_unit else "rounds"
        n_tokens = next(run.results[name].n_tokens for run in base if name in run.results)
        verdicts.append((gate.decide(name, base_values, head_values, args.threshold, args.alpha), n_tokens))
    if not verdicts:
        raise HistoryError(f"{args.base} and {args.head} have no benchmark in common")
    if args.json:
        print(json.dumps([v.__dict__ | {"n_tokens": n, "unit": units[v.name]} for v, n in verdicts], indent=1))
    else:
        print(f"base {base[0].short} ({len(base)} run(s)) vs head {head[0].short} ({len(head)} run(s)); {args.metric}")
        print_table(*verdict_rows(verdicts, units))
    return EXIT_REGRESSION if any(v.verdict == "regression" for v, _ in verdicts) else EXIT_OK


def cmd_ab(args: argparse.Namespace) -> int:
    from perf_core import ab

    return ab.main(args)


# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="perf-core", description="Per-token latency history, trends and the PR performance gate.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    plot = commands.add_parser("plot", help="per-token latency against token count, one line per commit")
    add_selection(plot)
    plot.add_argument("--last", type=int, default=1, help="plot the last N commits (default 1)")
    plot.add_argument("--commit", action="append", help="plot this commit (hash prefix or run file); repeatable")
    plot.add_argument("--format", choices=("png", "svg"), default="png", help="format of the default output name")
    plot.add_argument("-o", "--output", type=Path, help="output file, .png or .svg (default per_token.png)")
    plot.set_defaults(run=cmd_plot)

    trend = commands.add_parser("trend", help="per-token latency across commits, with change points")
    add_selection(trend)
    trend.add_argument("--min-change", type=float, default=0.05, help="smallest relative change reported (0.05)")
    trend.add_argument("--format", choices=("png", "svg"), default="png", help="format of the default output name")
    trend.add_argument("-o", "--output", type=Path, help="output file, .png or .svg (default trend.png)")
    trend.set_defaults(run=cmd_trend)

    compare = commands.add_parser("compare", help="two commits side by side, with the gate's decision")
    compare.add_argument("base", help="base commit (hash prefix) or run file name")
    compare.add_argument("head", help="head commit (hash prefix) or run file name")
    add_selection(compare)
    add_decision(compare)
    compare.set_defaults(run=cmd_compare)

    ab_parser = commands.add_parser("ab", help="PR gate: run base and head interleaved on this machine and decide")
    from perf_core import ab

    ab.add_arguments(ab_parser)
    add_metric(ab_parser)
    add_decision(ab_parser)
    ab_parser.set_defaults(run=cmd_ab)
    return parser


def add_decision(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threshold", type=float, default=0.05, help="smallest slowdown that fails the gate (0.05)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level of the Mann-Whitney test (0.05)")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if getattr(args, "last", 1) < 1:
            raise UsageError("--last must be at least 1")
        return args.run(args)
    except (UsageError, HistoryError) as error:
        print(f"perf-core: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("perf-core: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
