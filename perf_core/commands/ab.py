"""`perf-core ab BASE [HEAD]`: the pull-request gate, base and head run interleaved on this machine
(perf_core.analysis.ab launches them), then decided (gate), printed and written as Markdown."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from datetime import datetime
from pathlib import Path

from perf_core.analysis import ab, explain, gate, lanes, output, sequential, view
from perf_core.commands import compare, options
from perf_core.errors import UsageError


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ab", help="PR gate: run base and head interleaved on this machine and decide")
    parser.add_argument("base", help="base commit or ref (e.g. origin/main)")
    parser.add_argument(
        "head", nargs="?", help="head commit or ref (default: the working tree, uncommitted changes included)"
    )
    parser.add_argument(
        "--pairs",
        type=int,
        help=f"at most this many runs per side, interleaved; pairs are added only while some verdict is open"
        f" (default {ab.DEFAULT_PAIRS}; {ab.DEFAULT_PAIRED_PAIRS} for pairs timed together on the CPU)",
    )
    parser.add_argument(
        "--gpus",
        type=int,
        help="spread the suite processes over this many visible GPUs, pair i on GPU i mod N"
        " (default: all visible; CUDA only)",
    )
    parser.add_argument(
        "--cpus",
        type=int,
        help="on the CPU, run this many lanes at a time, each pinned to its own cores (the suite's --threads"
        " of them), pair i on lane i mod N (default: for pairs timed together, every lane that fits; with"
        " --apart 1, unpinned: lanes side by side widened the A/A spread of runs timed apart on a 2-core machine)",
    )
    parser.add_argument(
        "--apart",
        action="store_true",
        help="on the CPU, run a pair's two runs one after the other (default: together on one core, each"
        " benchmark timed by both at once on thread CPU time, where both sides' suites can; docs/gate.md)",
    )
    options.add_filters(parser, variant="compiled", tokens_help="(default: the suite's)")
    parser.add_argument("--out", type=Path, help="folder for every run's JSON (default .benchmarks-ab/<time>)")
    parser.add_argument("--markdown", type=Path, help="also write the report as Markdown (a PR comment) to this file")
    parser.add_argument("--report-url", help="link to this run's report artifact, at the end of the Markdown")
    parser.add_argument("--repo", type=Path, default=Path("."), help="the git repository (default: here)")
    parser.add_argument("--pytest-args", default="", help="extra arguments for each suite run, as one string")
    options.add_json(parser, "print the verdicts as JSON instead of the table")
    options.add_metric(parser)
    options.add_decision(parser)
    parser.set_defaults(run=run)


def run(
    base: str,
    head: str | None,
    *,
    pairs: int | None,
    gpus: int | None,
    cpus: int | None,
    apart: bool,
    kernel: str | None,
    variant: str | None,
    tokens: str | None,
    out: Path | None,
    markdown: Path | None,
    report_url: str | None,
    repo: Path,
    pytest_args: str,
    as_json: bool,
    metric: str,
    threshold: float | None,
    alpha: float,
) -> int:
    """Exit 1 when a benchmark regressed, else 0; SIGTERM and SIGHUP stop it as Ctrl-C does."""
    with ab.signals_interrupt():
        # A --pairs or --alpha that can decide nothing is refused first, by the plan of the mode the gate
        # will likely take (pairs timed together where no GPU is listed), and again by `start` once ab
        # knows the mode (after the collection passes, before any timed run).
        plan_for(alpha, pairs, paired=not apart and not lanes.visible_gpus())
        if markdown:
            output.check_writable(markdown)
        top, base_sha, head_sha, head_label = ab.resolve(repo, base, head)
        out = out or top / ".benchmarks-ab" / datetime.now().strftime("%Y%m%d-%H%M%S")
        extra = ab.selection_args(kernel, variant, tokens) + shlex.split(pytest_args)
        print(
            f"ab: base {base} ({base_sha[:10]}) vs head {head_label} ({head_sha[:10]}) -> {out}",
            file=sys.stderr,
        )
        threshold = gate.threshold_for(metric, threshold)

        rules: list[sequential.Plan] = []

        def start(paired: bool) -> int:
            """The plan, once ab knows whether a pair's runs are timed together (before any timed run)."""
            rules.append(plan_for(alpha, pairs, paired))
            print(f"ab: at most {rules[-1].maximum} pairs", file=sys.stderr)
            return rules[-1].maximum

        def looks(files: dict[str, list[Path]]) -> dict[str, sequential.Look]:
            return sequential.looks_upto(ab.samples(ab.collect(files), metric), rules[-1], threshold)

        def more(files: dict[str, list[Path]]) -> bool:
            seen = looks(files)
            return not seen or sequential.should_continue(seen, rules[-1])

        started = time.monotonic()
        files = ab.run_pairs(
            top, {"base": base_sha, "head": head_sha}, 0, extra, metric, out, more, gpus, cpus, not apart, start
        )
        rule = rules[-1]
        wall_s = time.monotonic() - started
        ab.save_settings(out, rule, threshold, metric)
        runs = ab.collect(files)
        final = looks(files)
        decided = ab.sequential_verdicts(runs, final, rule, threshold, metric)
        print(f"ab: {ab.stop_line(final, rule, len(files['base']))}", file=sys.stderr)
        print(f"ab: {ab.phases_line(ab.phase_totals(files), wall_s)}", file=sys.stderr)
        used = max((look.pairs for look in final.values()), default=0)
        title = (
            f"perf-core ab: {base} ({base_sha[:10]}) -> {head_label} ({head_sha[:10]}),"
            f" {used} of at most {rule.maximum} {'pairs timed together' if rule.paired else 'runs a side'}, {metric}"
        )
        publish(view.verdict_rows(decided), runs["base"][0].machine.label, title, as_json)
        changed = [d.verdict.name for d in decided if d.verdict.verdict in explain.CHANGED]
        # Each side's first run holds the kernel breakdowns (ab.run_args): the others were not profiled.
        why = explain.why(changed, runs["base"][:1], runs["head"][:1])
        if not as_json:
            compare.print_why(why)
        report = ab.markdown(decided, title, threshold, report_url, why)
        if markdown:
            output.write_text(markdown, report)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as handle:
                handle.write(report)
        return gate.exit_code(decided)


def plan_for(alpha: float, pairs: int | None, paired: bool) -> sequential.Plan:
    """The gate's plan for --pairs (None: the mode's default) and --alpha; UsageError, with a hint at
    --apart for pairs timed together, when it can decide nothing."""
    maximum = pairs if pairs is not None else ab.DEFAULT_PAIRED_PAIRS if paired else ab.DEFAULT_PAIRS
    try:
        return sequential.plan(alpha, maximum, paired=paired)
    except UsageError as error:
        raise UsageError(f"{error} (or --apart: pairs one after the other)" if paired else str(error)) from None


def publish(rows: list[view.VerdictRow], machine: str, title: str, as_json: bool) -> None:
    """The verdicts on standard output: the titled table, or --json's records."""
    if as_json:
        print(json.dumps(view.verdict_records(rows, machine), indent=1))
    else:
        print(title)
        output.print_table(*view.table(rows, view.TEXT_COLUMNS))
