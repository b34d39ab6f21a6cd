"""The reading commands behind `perf-core plot`, `trend` and `compare`.

Each takes the parsed arguments, reads the history (never changing it), and returns its exit code;
problems are PerfCoreErrors (one line, exit 2), which perf_core.cli turns into the process exit.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

from perf_core import contract
from perf_core.analysis import figures, gate, output, records, select
from perf_core.analysis.records import Machine, Result, Run
from perf_core.errors import EXIT_OK, HistoryError, split_csv, token_counts

METRIC_LABELS = {"steady": "steady state (calls back to back)", "latency": "isolated-call latency"}


def wanted(args: argparse.Namespace) -> Callable[[Result], bool]:
    """The --kernel/--variant/--tokens filter (each comma-separated; absent keeps all)."""
    kernels = set(split_csv("--kernel", args.kernel)) if args.kernel else None
    variants = set(split_csv("--variant", args.variant)) if args.variant else None
    tokens = set(token_counts("--tokens", args.tokens)) if args.tokens else None

    def keep(result: Result) -> bool:
        return (
            (kernels is None or result.kernel in kernels)
            and (variants is None or result.variant in variants)
            and (tokens is None or result.n_tokens in tokens)
        )

    return keep


def current_machine() -> Machine | None:
    """This host's CPU and torch build, to pick its history among several (no torch import: slow)."""
    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        return None
    return Machine(contract.cpu_name(), torch_version, 1, None)


def load(args: argparse.Namespace) -> list[Run]:
    runs = records.load_runs(records.find_files(args.storage))
    runs = select.select_machine(runs, args.machine, current_machine())
    if not names_in(runs, args):
        raise HistoryError("no benchmark in the history matches --kernel/--variant/--tokens")
    return runs


def names_in(runs: Sequence[Run], args: argparse.Namespace) -> list[str]:
    keep = wanted(args)
    return [name for name in select.names_of(runs) if any(keep(r.results[name]) for r in runs if name in r.results)]


def plot(args: argparse.Namespace) -> int:
    runs = load(args)
    commits = select.by_commit(runs)
    if args.commit:
        chosen = [
            (c, group) for name in args.commit for c, group in commits if group[0] in select.find_commit(runs, name)
        ]
    else:
        chosen = commits[-args.last :]
    names = names_in(runs, args)
    panels, data = [], []
    for panel in dict.fromkeys(contract.parse_name(n).panel for n in names):
        members = [n for n in names if contract.parse_name(n).panel == panel]
        curves = []
        for commit, group in chosen:
            points = [(n, select.pool(commit, group, n, args.metric)) for n in members]
            points = [(n, p) for n, p in points if p]
            if not points:
                continue
            date = group[-1].run_time.strftime("%Y-%m-%d")
            tokens = tuple(contract.parse_name(n).n_tokens for n, _ in points)
            curves.append(figures.Curve(f"{commit} ({date})", tokens, tuple(p.per_token_s for _, p in points)))
            data += [{"benchmark": n, "commit": commit, "per_token_s": p.per_token_s} for n, p in points]
        latest = chosen[-1][1][-1]
        floor = tuple(
            (latest.results[n].n_tokens, latest.results[n].floor_s / latest.results[n].n_tokens)
            for n in members
            if n in latest.results and latest.results[n].floor_s
        )
        if curves:
            panels.append(figures.Panel(panel.replace("-", " / "), tuple(curves), floor))
    if not panels:
        raise HistoryError(f"the selected commits have no {args.metric} figures for the chosen benchmarks")
    path = output.figure_path(args.output, args.format, "per_token")
    if args.json:
        print(json.dumps(data, indent=1))
    fig = figures.per_token_figure(panels, runs[-1].machine.label, f"Latency per Token, {METRIC_LABELS[args.metric]}")
    output.save_figure(fig, path)
    return EXIT_OK


def trend(args: argparse.Namespace) -> int:
    from perf_core.analysis import changes

    runs = load(args)
    commits = select.by_commit(runs)
    path = output.figure_path(args.output, args.format, "trend")
    panels: dict[str, list] = {}
    found, data = [], []
    for name in names_in(runs, args):
        points = [select.pool(commit, group, name, args.metric) for commit, group in commits]
        present = [(i, p) for i, p in enumerate(points) if p]
        detected = changes.detect([p.per_token_s for _, p in present], min_change=args.min_change)
        marks = tuple((present[c.index][0], c.change) for c in detected)
        for index, change in marks:
            point = points[index]
            when = point.when.strftime("%Y-%m-%d") if point.when else "unknown date"
            found.append({"benchmark": name, "change": change, "commit": point.commit, "date": when})
        data.append({"benchmark": name, "points": [p.__dict__ | {"when": str(p.when)} for _, p in present]})
        parsed = contract.parse_name(name)
        panels.setdefault(parsed.panel.replace("-", " / "), []).append(
            figures.TrendLine(f"{parsed.n_tokens} tokens", tuple(points), marks)
        )
    if args.json:
        print(json.dumps({"changes": found, "series": data}, indent=1, default=str))
    else:
        for item in found:
            print(f"{item['benchmark']}: {item['change']:+.1%} at {item['commit']} ({item['date']})")
        if not found:
            print(f"no change of {args.min_change:.0%} or more across {len(commits)} commits")
    fig = figures.trend_figure(
        [c for c, _ in commits], panels, f"Per-token latency across commits: {runs[-1].machine.label}"
    )
    output.save_figure(fig, path)
    return EXIT_OK


def compare(args: argparse.Namespace) -> int:
    runs = load(args)
    base, head = select.find_commit(runs, args.base), select.find_commit(runs, args.head)
    decided = gate.decide_all(base, head, names_in(runs, args), args.metric, args.threshold, args.alpha)
    if not decided:
        raise HistoryError(f"{args.base} and {args.head} have no benchmark in common")
    if args.json:
        print(json.dumps(output.verdict_records(decided), indent=1))
    else:
        print(f"base {base[0].short} ({len(base)} run(s)) vs head {head[0].short} ({len(head)} run(s)); {args.metric}")
        output.print_table(output.VERDICT_HEADER, output.verdict_rows(decided))
    return gate.exit_code(decided)
