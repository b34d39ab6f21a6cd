"""The reading commands behind `perf-core plot`, `trend` and `compare`.

Each takes the parsed arguments, reads the history (never changing it), and returns its exit code;
problems are PerfCoreErrors (one line, exit 2), which perf_core.cli turns into the process exit.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from perf_core import contract
from perf_core.analysis import gate, index, output, select, stats
from perf_core.analysis.records import Machine, Result, Run
from perf_core.errors import EXIT_OK, HistoryError, UsageError, split_csv, token_counts

METRIC_LABELS = {
    "steady": "steady state (pytest-benchmark's rounds)",
    "latency": "isolated-call latency (host included)",
    "device": "device time (CUDA events, no host)",
}


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


def index_path(args: argparse.Namespace) -> Path | None:
    return None if args.no_index else (args.index or index.default_path(args.storage))


def history(args: argparse.Namespace) -> list[Run]:
    """Every run in --storage, through the index unless --no-index."""
    return index.load(args.storage, index_path(args))


def load(args: argparse.Namespace) -> list[Run]:
    """The runs of one machine (select.choose_machine's rule), announced when the history has several."""
    runs = history(args)
    found = select.machines(runs)
    chosen = select.choose_machine(found, args.machine, current_machine())
    if len(found) > 1:
        how = "by --machine" if args.machine else "this host"
        number = found.index(chosen) + 1
        print(
            f"perf-core: {len(found)} machines in the history; reading [{number}] {chosen.label} ({how})",
            file=sys.stderr,
        )
    runs = [run for run in runs if run.machine == chosen]
    if not names_in(runs, args):
        raise HistoryError("no benchmark in the history matches --kernel/--variant/--tokens")
    return runs


def find_commit(args: argparse.Namespace, runs: list[Run], name: str) -> list[Run]:
    """select.find_commit among one machine's runs, saying so when the commit ran only on another
    machine of the history (a rested GPU run against a back-to-back one, say): not "unknown"."""
    try:
        return select.find_commit(runs, name)
    except HistoryError as unknown:
        try:
            elsewhere = select.find_commit(history(args), name)
        except HistoryError:
            raise unknown from None
        labels = "; ".join(sorted({run.machine.label for run in elsewhere}))
        raise HistoryError(
            f"{name!r} ran on another machine ({labels}), not on {runs[0].machine.label}:"
            " runs of different machines are never compared (--machine chooses the machine)"
        ) from None


def groups_of(args: argparse.Namespace, runs: list[Run], commits: list[tuple[str, list[Run]]], name: str) -> list:
    """The commit groups (select.by_commit) holding the runs `name` names: resolved once, then matched
    by file, not by comparing Runs for each group (plot --commit took 78 s at 10,000 runs that way)."""
    paths = {run.path for run in find_commit(args, runs, name)}
    return [(commit, group) for commit, group in commits if any(run.path in paths for run in group)]


def names_in(runs: Sequence[Run], args: argparse.Namespace) -> list[str]:
    keep = wanted(args)
    return [name for name in select.names_of(runs) if any(keep(r.results[name]) for r in runs if name in r.results)]


def plot(args: argparse.Namespace) -> int:
    from perf_core.analysis import figures  # matplotlib: 0.35 s that compare and export need not pay

    runs = load(args)
    commits = select.by_commit(runs)
    if args.commit:
        chosen = [pair for name in args.commit for pair in groups_of(args, runs, commits, name)]
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
            hot = tuple(any(r.results[n].throttled for r in group if n in r.results) for n, _ in points)
            curves.append(figures.Curve(f"{commit} ({date})", tokens, tuple(p.per_token_s for _, p in points), hot))
            data += [{"benchmark": n, "commit": commit, "per_token_s": p.per_token_s} for n, p in points]
        floor = tuple(
            (contract.parse_name(n).n_tokens, f / contract.parse_name(n).n_tokens)
            for n, f in select.floors(runs, members)
        )
        if curves:
            panels.append(figures.Panel(panel.replace("-", " / "), tuple(curves), floor))
    if not panels:
        raise HistoryError(f"the selected commits have no {args.metric} figures for the chosen benchmarks")
    path = output.figure_path(args.output, args.format, "per_token")
    if args.json:
        print(json.dumps([row | {"machine": runs[0].machine.label} for row in data], indent=1))
    fig = figures.per_token_figure(panels, runs[-1].machine.label, f"Latency per Token, {METRIC_LABELS[args.metric]}")
    output.save_figure(fig, path)
    return EXIT_OK


def trend(args: argparse.Namespace) -> int:
    from perf_core.analysis import changes, figures

    runs = load(args)
    commits = select.by_commit(runs)
    path = output.figure_path(args.output, args.format, "trend")
    panels: dict[str, list] = {}
    found, data = [], []
    names = names_in(runs, args)
    every = select.columns(commits, names, args.metric)
    labels, when = [commit for commit, _ in commits], select.commit_times(commits)
    points = select.series(commits, names, args.metric) if args.json else {}
    with index.memo(index_path(args)) as memo:
        for name in names:
            column = every[name]
            located = changes.found_in(name, column.per_token_s, labels, when, args.min_change, memo)
            marks = tuple((f.index, f.change) for f in located)
            found += [{"benchmark": name, "change": f.change, "commit": f.commit, "date": f.date} for f in located]
            if args.json:
                data.append(
                    {"benchmark": name, "points": [p.__dict__ | {"when": str(p.when)} for p in points[name] if p]}
                )
            parsed = contract.parse_name(name)
            panels.setdefault(parsed.panel.replace("-", " / "), []).append(
                figures.TrendLine(f"{parsed.n_tokens} tokens", column, marks)
            )
    machine = runs[0].machine.label
    searched = len(commits) >= changes.MIN_POINTS
    if args.json:
        result = {"machine": machine, "commits": len(commits), "searched": searched, "changes": found, "series": data}
        print(json.dumps(result, indent=1, default=str))
    else:
        print(f"machine: {machine}")
        for item in found:
            print(f"{item['benchmark']}: {item['change']:+.1%} at {item['commit']} ({item['date']})")
        if not searched:
            print(
                f"too few commits to look for changes: {len(commits)}, change points need at least"
                f" {changes.MIN_POINTS}; `perf-core compare BASE HEAD` compares two commits"
            )
        elif not found:
            print(f"no change of {args.min_change:.0%} or more across {len(commits)} commits")
    fig = figures.trend_figure(labels, panels, f"Per-token latency across commits: {runs[-1].machine.label}")
    output.save_figure(fig, path)
    return EXIT_OK


def compare(args: argparse.Namespace) -> int:
    runs = load(args)
    machine = runs[0].machine.label
    base, head = find_commit(args, runs, args.base), find_commit(args, runs, args.head)
    names = names_in(runs, args)
    decided = gate.decide_all(base, head, names, args.metric, args.threshold, args.alpha, history=runs)
    if not decided:
        raise HistoryError(f"{args.base} and {args.head} have no benchmark in common")
    only = {
        side: [
            n for n in names if select.run_values(group, n, args.metric) and n not in {d.verdict.name for d in decided}
        ]
        for side, group in (("base", base), ("head", head))
    }
    if args.json:
        print(json.dumps([row | {"machine": machine} for row in output.verdict_records(decided)], indent=1))
    else:
        print(f"machine: {machine}")
        print(f"base {base[0].short} ({len(base)} run(s)) vs head {head[0].short} ({len(head)} run(s)); {args.metric}")
        output.print_table(output.VERDICT_HEADER, output.verdict_rows(decided))
        for line in compare_notes(decided, only, args.alpha):
            print(line)
    return gate.exit_code(decided)


def compare_notes(decided: Sequence[gate.Decided], only: dict[str, list[str]], alpha: float) -> list[str]:
    """What the table cannot say by itself: how it decided, and what it could not compare."""
    notes = []
    units = {d.unit for d in decided}
    if any(unit.startswith("spread") for unit in units):
        notes.append(
            f"fewer than {gate.MIN_RUNS} runs a side: each ratio is judged against this machine's run-to-run"
            " spread, measured on consecutive runs of its history (n column: pairs used; p: share of those"
            " pairs that strayed as far, by their noisiest benchmark or the whole run's shift)"
        )
    for unit in sorted(u for u in units if u.startswith("noisy ")):
        sides = unit.removeprefix("noisy ")
        notes.append(
            f"undecided: the {sides} run spread its rounds over {gate.NOISY:g}x as wide as this machine's typical"
            f" run (a busy machine), which one run a side cannot tell from a regression; run the {sides} again,"
            " or `perf-core ab BASE HEAD`"
        )
    if "no spread" in units:
        notes.append(
            f"undecided: fewer than {gate.MIN_RUNS} runs a side, and too few other runs of this machine to measure"
            f" its run-to-run spread at --alpha {alpha:g} ({gate.spread_runs_needed(alpha)} needed);"
            " run `perf-core ab BASE HEAD`, or save more runs"
        )
    for n_base, n_head in sorted({(d.verdict.n_base, d.verdict.n_head) for d in decided if d.unit == "runs"}):
        smallest = stats.smallest_p(n_base, n_head)
        if not stats.can_reach(smallest, alpha):
            notes.append(
                f"undecided: with {n_base}/{n_head} runs the test's smallest possible p is {smallest:.3g},"
                f" above --alpha {alpha:g}; save more runs ({stats.samples_needed(alpha)} a side),"
                " or run `perf-core ab BASE HEAD`"
            )
    for side, missing in only.items():
        if missing:
            notes.append(f"only in {side}, not compared: {', '.join(missing)}")
    return notes


def update_index(args: argparse.Namespace) -> int:
    """`perf-core index`: bring the history's index up to date (e.g. right after saving a run)."""
    import time

    where = index_path(args)  # never None: `index` offers no --no-index
    started = time.perf_counter()
    synced = index.update(args.storage, where)
    print(
        f"index {where}: {len(synced.keys)} runs; {synced.parsed} new or changed, {synced.gone} gone;"
        f" {time.perf_counter() - started:.2f} s"
    )
    return EXIT_OK


def export(args: argparse.Namespace) -> int:
    """One commit's pooled figures (the newest by default) in a result server's format."""
    from perf_core.analysis import export as formats

    runs = load(args)
    commits = select.by_commit(runs)
    commit, group = groups_of(args, runs, commits, args.commit)[0] if args.commit else commits[-1]
    points = [(name, select.pool(commit, group, name, args.metric)) for name in names_in(group, args)]
    points = [(name, point) for name, point in points if point]
    if not points:
        raise HistoryError(f"commit {commit} has no {args.metric} figures for the chosen benchmarks")
    machine = runs[0].machine.label
    if args.format == "bencher":
        document = formats.bencher(points)
    else:
        document = formats.github_action_benchmark(points, machine, args.metric)
    text = json.dumps(document, indent=1) + "\n"
    if args.output:
        output.write_text(args.output, text)
        print(f"wrote {args.output}: {len(points)} benchmarks of {commit} ({machine})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def report(args: argparse.Namespace) -> int:
    """The static HTML dashboard: one page per machine, never mixing machines."""
    from perf_core.analysis import ab
    from perf_core.analysis import report as site

    runs = history(args)
    found = select.machines(runs)
    if args.machine:
        found = [select.choose_machine(found, args.machine)]
    if args.commit_url and "{sha}" not in args.commit_url:
        raise UsageError(f"--commit-url {args.commit_url!r} has no {{sha}} to put the commit in")
    gate_runs = ab.collect(ab.run_files(args.ab)) if args.ab else None
    pages = []
    with index.memo(index_path(args)) as memo:
        for number, machine in enumerate(found, 1):
            mine = [run for run in runs if run.machine == machine]
            names = names_in(mine, args)
            if not names:
                continue
            decided = None
            if gate_runs and gate_runs["base"][0].machine == machine:
                decided = ab.verdicts(gate_runs, args.threshold, args.alpha, args.metric)
            pages.append(
                site.machine_page(number, mine, names, args.metric, args.commit_url, args.min_change, decided, memo)
            )
            print(
                f"[{number}/{len(found)}] {machine.label}: {len(mine)} runs, {pages[-1].charts} charts", file=sys.stderr
            )
    if not pages:
        raise HistoryError("no benchmark in the history matches --kernel/--variant/--tokens")
    site.write_site(args.output, pages)
    print(f"wrote {args.output}/index.html and {len(pages)} machine page(s)", file=sys.stderr)
    return EXIT_OK
