"""`perf-core ab`: the pull-request gate. Base and head measured on this machine, interleaved.

Run-to-run drift on shared machines is several percent, so comparing against a file saved on
another day or runner proves nothing. Each side is checked out into its own temporary git worktree
(its own code, its own plugin), and the suite runs as separate processes in the order
A B B A A B B A ..., so slow drift hits both sides alike. Each run's median per call (or, with
--metric latency on a GPU, its isolated-call latency) is one sample;
stats.decide (through gate.decide_all) compares the two sides' samples. Worktrees, the temporary folder and any running
suite are cleaned up on success, failure, Ctrl-C, SIGTERM and SIGHUP (what CI cancellation and
`timeout` send); the user's checkout is never modified. Everything checkable is checked before
the first timed run: the options by a collection-only pass of each side, the metric against the
device that pass reports.

Each suite process measures only the figure the verdict reads (`--figures` = the metric), and only
the first run of each side profiles its kernels (the breakdown behind the "why it changed" lines);
the rest pass `--no-breakdown`. Pairs are added only while some benchmark's verdict is open
(perf_core.analysis.sequential), up to `--pairs`. On a host with several GPUs, pair i of both sides
runs on GPU i mod N (CUDA_VISIBLE_DEVICES per process), one process per GPU at a time, the GPUs
concurrently: a benchmark's base and head runs of one pair share a card, so a card's own speed
shifts both sides of that pair alike and never decides a verdict.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import json
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from perf_core import contract
from perf_core.analysis import gate, launch, output, records, select, sequential, stats, view
from perf_core.analysis.lanes import NO_LANE, Lane, choose_lanes, run_lanes, side_by_side, spread
from perf_core.errors import HistoryError, Interrupted, UsageError

DEFAULT_PAIRS = 5
ORIENTATION = random.SystemRandom()  # which side of a pair timed together starts first (run_pairs)
# Pairs timed together are read by the signed-rank test, whose smallest p with n pairs is 2 / 2^n:
# 6 pairs at least at alpha 0.05 (one look there; --pairs 8 adds a look at 6 and one at 8).
DEFAULT_PAIRED_PAIRS = 6
# Short timing per run: the gate's power comes from many independent runs, not long ones. 0.2 s of
# rounds (was 0.3): on the 2-core machine a run's median was within about 1.3% (its standard error,
# from the rounds' IQR) either way, against 12-15% between runs, and CPU A/A gates took 104-121 s
# against 122-128 s (results/gate21_cpu/stop32/max_time.txt). GPU device-time runs time no rounds.
RUN_OPTIONS = [
    "--benchmark-only",
    "--benchmark-max-time=0.2",
    "-q",
    "-o",
    "perf_autosave=false",
]


class SideError(HistoryError):
    """A problem with one side (bad commit, suite failure, missing results); exit code 2."""


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if result.returncode:
        raise SideError(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"git {args[0]} failed")
    return result.stdout.strip()


def resolve(repo: Path, base: str, head: str | None) -> tuple[Path, str, str, str]:
    """(top-level folder, base sha, head sha, head label). The working tree's changes become a commit object via
    `git stash create`, which touches neither the index nor the files."""
    try:
        top = git(repo, "rev-parse", "--show-toplevel")
    except SideError:
        raise SideError(f"{repo.resolve()} is not a git repository") from None
    shas = []
    for side, ref in (("base", base), ("head", head or "HEAD")):
        try:
            shas.append(git(Path(top), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"))
        except SideError:
            raise SideError(f"{side}: {ref!r} is not a commit in {top}") from None
    dirty = bool(git(Path(top), "status", "--porcelain", "--untracked-files=no"))
    if head is None:
        stash = git(Path(top), "stash", "create") if dirty else ""
        return Path(top), shas[0], stash or shas[1], "working tree" + (" (uncommitted changes)" if stash else "")
    if dirty and head == "HEAD":
        raise SideError(
            "head: the working tree has uncommitted changes but HEAD names the last commit; commit them, or leave HEAD out to measure the working tree"
        )
    return Path(top), shas[0], shas[1], head


@contextmanager
def worktrees(repo: Path, shas: dict[str, str]) -> Iterator[dict[str, Path]]:
    """Temporary detached worktrees, removed whatever happens (KeyboardInterrupt included)."""
    root = Path(tempfile.mkdtemp(prefix="perf-core-ab-"))
    made: dict[str, Path] = {}
    try:
        for side, sha in shas.items():
            path = root / side
            git(repo, "worktree", "add", "--detach", "--quiet", str(path), sha)
            made[side] = path
        yield made
    finally:
        for path in made.values():
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(path)], capture_output=True)
        subprocess.run(["git", "-C", str(repo), "worktree", "prune"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def run_args(metric: str, pair: int) -> list[str]:
    """What one timed run measures: only the metric's figure; the kernel breakdown in each side's first
    run only (explain's lines read it there), not in the others (a profile per benchmark per run)."""
    return [f"--figures={metric}", *([] if pair == 1 else ["--no-breakdown"])]


def selection_args(kernel: str | None, variant: str | None, tokens: str | None) -> list[str]:
    """The suite's own options (--kernels, --variants, --tokens) for the chosen benchmarks; without
    --kernel, the suite's --gate selection (its default kernels less the model-scale ones)."""
    chosen = {"kernels": kernel, "variants": variant, "tokens": tokens}
    # As an ini override, which a suite from before --gate reads as an unknown key (a warning), not an error.
    return [f"--{name}={value}" for name, value in chosen.items() if value] + (
        [] if kernel else ["-o", "perf_gate=true"]
    )


def run_suite(
    server: launch.ForkServer, tree: Path, args: list[str], lane: Lane = NO_LANE
) -> subprocess.CompletedProcess:
    """One pytest process of a side's own suite, forked by `server`, on `lane`'s GPU or cores."""
    # The side's own tree first, so its perf_core is the one imported; the caller's path after it.
    env = launch.env_for(tree)
    if lane.gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = lane.gpu
    return server.run(tree, ["-p", "no:cacheprovider", *args], env, lane.cores)


def failure_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    cause = next((line for line in reversed(lines) if "Error" in line or "FAILED" in line), lines[-1] if lines else "")
    return cause.strip()


# What pytest's exit codes say of a collection pass (pytest's ExitCode); 1 and 2 are a test's failure
# and an interruption, which collecting alone does not give.
COLLECTION_FAILURES = {
    3: "the suite crashed (a pytest internal error)",
    4: "the suite refuses these options",
    5: "the suite collected no benchmark",
}


def collection_failure(code: int) -> str:
    """What a side's collection pass ending with pytest exit `code` means, with the code."""
    return f"{COLLECTION_FAILURES.get(code, 'the suite could not collect')} (exit {code})"


@dataclass(frozen=True)
class Checked:
    """What a side's collection pass said: its device and torch threads (None: not said), and the files
    holding its benchmarks, which each timed run then collects alone (none: an older suite that does not
    say, and its runs collect what pytest would)."""

    device: str | None
    threads: int | None
    files: tuple[str, ...]
    together: bool = False  # knows --pair-barrier (contract.PAIRS_TOGETHER_LINE)
    benchmarks: tuple[str, ...] = ()  # the ids collected (attention-compiled-16, ...)


def check_side(server: launch.ForkServer, tree: Path, args: list[str], side: str) -> Checked:
    """Collect (nothing runs) with the options each timed run will get: a bad option is an error now,
    not after minutes of the other side's runs."""
    result = run_suite(server, tree, ["--collect-only", *args])
    if result.returncode:
        raise SideError(f"{side}: {collection_failure(result.returncode)}: {failure_line(result)}")
    device = re.search(r"^perf_core: device (\w+)", result.stdout, re.MULTILINE)
    threads = re.search(r"^perf_core: device .*?, (\d+) thread", result.stdout, re.MULTILINE)
    files = re.search(r"^perf_core: benchmark files (.+)$", result.stdout, re.MULTILINE)
    return Checked(
        device.group(1) if device else None,
        int(threads.group(1)) if threads else None,
        tuple(shlex.split(files.group(1))) if files else (),
        contract.PAIRS_TOGETHER_LINE in result.stdout.splitlines(),
        tuple(re.findall(r"^\s*<Function [^\[\s]+\[([^\]]+)\]>$", result.stdout, re.MULTILINE)),
    )


def run_side(
    server: launch.ForkServer, tree: Path, out: Path, args: list[str], side: str, lane: Lane = NO_LANE
) -> None:
    result = run_suite(server, tree, [*RUN_OPTIONS, f"--benchmark-json={out}", *args], lane)
    if result.returncode or not out.exists():
        raise SideError(f"{side}: the suite failed (exit {result.returncode}): {failure_line(result)}")


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise Interrupted where the program is, so cleanup runs as for Ctrl-C."""

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, interrupt) for signum in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_files(folder: Path) -> dict[str, list[Path]]:
    """The runs an earlier `perf-core ab --out FOLDER` left: base-NN.json and head-NN.json."""
    files = {side: sorted(folder.glob(f"{side}-*.json")) for side in ("base", "head")}
    if not folder.is_dir() or not all(files.values()):
        raise HistoryError(f"--ab {folder}: not a folder of `perf-core ab --out` runs (base-NN.json, head-NN.json)")
    return files


def collect(files: dict[str, list[Path]]) -> dict[str, list[records.Run]]:
    runs = {side: records.load_runs(paths) for side, paths in files.items()}
    names = {side: set.intersection(*(set(run.results) for run in side_runs)) for side, side_runs in runs.items()}
    for side, other in (("head", "base"), ("base", "head")):
        missing = names[other] - names[side]
        if missing:
            raise SideError(f"{side}: results are missing benchmarks the {other} has: {', '.join(sorted(missing))}")
    return runs


def verdicts(
    runs: dict[str, list[records.Run]], threshold: float, alpha: float, metric: str = "steady"
) -> list[gate.Decided]:
    """One verdict per benchmark; each run's figure for `metric` is one sample of its side."""
    names = select.names_of(runs["base"])
    for side in ("base", "head"):
        for name in names:
            if any(run.results[name].seconds(metric) is None for run in runs[side]):
                raise SideError(f"{side}: {name} has no {metric} figure (latency and device time: GPU runs only)")
    return gate.decide_all(runs["base"], runs["head"], names, metric, threshold, alpha)


COMMENT_MARKER = "<!-- perf-core gate -->"  # the sticky PR comment is found and updated by this line


def markdown(
    decided: list[gate.Decided],
    title: str,
    threshold: float,
    report_url: str | None = None,
    why: dict[str, list[str]] | None = None,
) -> str:
    """The pull-request comment: one line that says what changed, the changed benchmarks, why each
    changed (explain.why's lines, each folded), the rest folded."""
    counts = Counter(d.verdict.verdict for d in decided)
    changed = [d for d in decided if d.verdict.verdict != "unchanged"]
    order = ("regression", "improvement", "throttled", "undecided", "unchanged")
    if not changed:
        summary = f"No change beyond {threshold:.0%} ({len(decided)} benchmarks)"
    else:
        plural = ("regression", "improvement")  # "2 regressions", but "21 unchanged", "3 throttled"
        summary = ", ".join(
            f"{counts[v]} {v}{'s' if counts[v] != 1 and v in plural else ''}" for v in order if counts[v]
        )
    if counts.get("regression"):
        summary = f"**{summary}**"
    lines = [COMMENT_MARKER, summary, "", f"<sub>{html.escape(title)}</sub>", ""]  # a machine label from a file
    if changed:
        lines += [output.markdown_table(*view.table(view.verdict_rows(changed), view.MARKDOWN_COLUMNS)), ""]
    for name, explained in (why or {}).items():
        # A code block: kernel names hold characters Markdown would read (`_`, `|`, `<`).
        summary = f"<details><summary>why {html.escape(name)} changed</summary>"
        lines += [summary, "", "```text", *explained, "```", "", "</details>", ""]
    unchanged = [d for d in decided if d not in changed]
    if unchanged:
        lines += [
            f"<details><summary>{len(unchanged)} unchanged</summary>",
            "",
            output.markdown_table(*view.table(view.verdict_rows(unchanged), view.MARKDOWN_COLUMNS)),
            "",
            "</details>",
            "",
        ]
    if report_url:
        lines.append(f"[The runs and the report]({report_url})")
    return "\n".join(lines).rstrip() + "\n"


def run_pairs(
    top: Path,
    shas: dict[str, str],
    maximum: int,
    extra: list[str],
    metric: str,
    out: Path,
    more: Callable[[dict[str, list[Path]]], bool] = lambda files: True,
    gpus: int | None = None,
    cpus: int | None = None,
    together: bool = True,
    start: Callable[[bool], int] | None = None,
) -> dict[str, list[Path]]:
    """Both sides' suites in their own worktrees, A B B A ..., at most `maximum` runs a side, each run's
    JSON kept under `out` (base-NN.json, head-NN.json, in pair order); one progress line per run on
    stderr. After each round (one pair per lane) `more(files so far)` says whether to add pairs.
    Off CUDA, where both sides' suites know --pair-barrier and `together`, a pair's two runs start at
    once on the lane's cores and time each benchmark together (thread CPU time, one fork server a
    side: perf_core/measure/pairing.py); else one after the other. `start(paired)`, once that is
    known and before any timed run, gives the maximum pairs instead of `maximum` (and may refuse:
    UsageError).
    Everything checkable is checked before the first timed run: the options by a collection-only pass
    of each side, `metric`, `gpus` and `cpus` against the device that pass reports (UsageError)."""
    done: dict[str, dict[int, Path]] = {"base": {}, "head": {}}

    def files() -> dict[str, list[Path]]:
        return {side: [paths[pair] for pair in sorted(paths)] for side, paths in done.items()}

    with worktrees(top, shas) as trees, ExitStack() as servers:
        first = servers.enter_context(launch.ForkServer())  # its imports load while git works
        checked = {side: check_side(first, trees[side], extra, side) for side in ("base", "head")}
        devices = {c.device for c in checked.values()} - {None}
        if metric != "steady" and devices and devices != {"cuda"}:
            raise UsageError(
                f"--metric {metric}: the suite runs on {', '.join(sorted(devices))} here, and that figure"
                " is recorded on CUDA runs only; use --metric steady"
            )
        device = "cuda" if devices == {"cuda"} else ", ".join(sorted(devices)) or None
        threads = max((c.threads or 1 for c in checked.values()), default=1)
        paired, line = pairing(together, device, threads, checked)
        shared = "\n".join(checked["head"].benchmarks)
        maximum = start(paired) if start else maximum
        lanes = choose_lanes(gpus, cpus, device, threads, maximum, pinned=paired)
        print(f"ab: {line}", file=sys.stderr)
        # The parents of a lane's runs: one server, both sides of a pair forked from it in turn; or, a
        # pair's runs timed together, two, one a side (which side gets the first is drawn per pair).
        server = {
            lane: [first if i == j == 0 else servers.enter_context(launch.ForkServer()) for j in range(1 + paired)]
            for i, lane in enumerate(lanes)
        }
        for each in server.values():
            for one in each:
                one.wait_ready()
        out.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        total = 2 * maximum
        counter = iter(range(1, total + 1))

        def run_one(lane: Lane, side: str, pair: int, parent: launch.ForkServer, barrier: Path | None) -> None:
            path = out / f"{side}-{pair:02d}.json"
            args = [*run_args(metric, pair), *extra, *checked[side].files]
            try:
                run_side(
                    parent,
                    trees[side],
                    path,
                    args + ([f"--pair-barrier={barrier}:{side}"] if barrier else []),
                    side,
                    lane,
                )
            finally:
                if barrier:  # the other run stops waiting for this one, however it ended
                    contract.pair_done(barrier, side).touch()
            done[side][pair] = path
            count, elapsed = next(counter), time.monotonic() - started
            where = f", {lane.label()}" if len(lanes) > 1 else ""
            print(
                f"[{count}/{total}] {side} pair {pair}: {elapsed:.0f} s of timed runs,"
                f" ~{elapsed / count * (total - count):.0f} s of runs left at most{where}",
                file=sys.stderr,
            )

        def run_lane(lane: Lane, jobs: list[tuple[str, int]]) -> None:
            if not paired:
                for side, pair in jobs:
                    run_one(lane, side, pair, server[lane][0], None)
                return
            for pair in dict.fromkeys(pair for _, pair in jobs):
                # Which side starts first, on the lane's first server, is drawn for each pair: with no
                # change a pair's ratio is then as likely to be r as 1 / r whatever a server or the head
                # start does, which the sign-flip tests assume (stats.paired_p).
                sides = tuple(ORIENTATION.sample(("base", "head"), 2))
                with tempfile.TemporaryDirectory(prefix="perf-core-pair-") as barrier:
                    if shared:  # else (no ids in the collection output) every benchmark is met
                        Path(barrier, contract.PAIR_SHARED).write_text(shared + "\n")
                    side_by_side(
                        [
                            functools.partial(run_one, lane, side, pair, parent, Path(barrier))
                            for side, parent in zip(sides, server[lane])
                        ]
                    )

        pairs = 0
        while pairs < maximum and (pairs == 0 or more(files())):
            last = min(pairs + len(lanes), maximum)
            run_lanes(run_lane, spread(pairs + 1, last, lanes))
            pairs = last
    return files()


def pairing(together: bool, device: str | None, threads: int, checked: Mapping[str, Checked]) -> tuple[bool, str]:
    """Whether a pair's runs are timed together (run_pairs), and the line that says how and why: off
    CUDA, with one torch thread, where both suites know --pair-barrier and collected the same
    benchmarks in the same order (each run meets the other at each of them). Raises SideError for a
    benchmark only one side collected (collect() would refuse it after a round of runs)."""
    listed = {side: c.benchmarks for side, c in checked.items()}
    for side, other in (("head", "base"), ("base", "head")):
        missing = set(listed[other]) - set(listed[side]) if listed[side] and listed[other] else set()
        if missing:
            raise SideError(f"{side}: the suite lacks benchmarks the {other} has: {', '.join(sorted(missing))}")
    apart = "each pair's runs one after the other"
    unable = [side for side, c in checked.items() if not c.together]
    if device == "cuda":
        return False, f"{apart} on its GPU"
    if not together:
        return False, f"{apart} (--apart)"
    if unable:
        return False, f"{apart}: {' and '.join(unable)}'s suite cannot time them together (no --pair-barrier)"
    if threads != 1:  # thread CPU time counts the main thread only
        return False, f"{apart}: the suite runs {threads} threads (pairs together: 1)"
    if listed["base"] != listed["head"]:
        return False, f"{apart}: the two suites run their benchmarks in different orders"
    return True, "each pair's runs together on one core, each benchmark timed by both at once on thread CPU time"


def samples(runs: dict[str, list[records.Run]], metric: str) -> dict[str, tuple[list[float], list[float]]]:
    """benchmark -> (base, head) seconds, one per run in pair order; SideError where a run lacks the figure."""
    names = select.names_of(runs["base"])
    found: dict[str, tuple[list[float], list[float]]] = {}
    for name in names:
        sides = []
        for side in ("base", "head"):
            values = [run.results[name].seconds(metric) for run in runs[side]]
            if any(value is None for value in values):
                raise SideError(f"{side}: {name} has no {metric} figure (latency and device time: GPU runs only)")
            sides.append(values)
        found[name] = (sides[0], sides[1])
    return found


SETTINGS_FILE = "gate.json"  # beside an --out folder's runs: how ab decided them, for report --ab


def save_settings(out: Path, rule: sequential.Plan, threshold: float, metric: str) -> None:
    """Write how this gate decides into its --out folder, so that `report --ab` decides as it did: the
    looks' levels too, which a later perf-core may choose otherwise for the same alpha and pairs."""
    settings = {"alpha": rule.alpha, "pairs": rule.maximum, "threshold": threshold, "metric": metric}
    settings |= {"minimum": rule.minimum, "levels": list(rule.levels), "family": rule.family, "paired": rule.paired}
    out.mkdir(parents=True, exist_ok=True)
    output.write_text(out / SETTINGS_FILE, json.dumps(settings) + "\n")


def decide_folder(
    folder: Path, runs: dict[str, list[records.Run]], threshold: float, alpha: float, metric: str
) -> list[gate.Decided]:
    """The verdicts of an `ab --out` folder as ab reached them: its saved settings through the stopping
    rule (sequential), at the looks' saved levels (a folder saved before they were: today's plan for
    its alpha and pairs); a folder saved before the settings were (no SETTINGS_FILE) by the
    fixed-count rule at the given threshold, alpha and metric. Raises HistoryError for unreadable
    settings."""
    path = folder / SETTINGS_FILE
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return verdicts(runs, threshold, alpha, metric)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise HistoryError(f"{path}: not readable ({error})") from None
    numbers = ("alpha", "threshold", "pairs")
    if (
        not isinstance(settings, dict)
        or settings.get("metric") not in contract.METRICS
        or not all(
            isinstance(settings.get(key), int | float) and not isinstance(settings.get(key), bool) for key in numbers
        )
        or not isinstance(settings["pairs"], int)
    ):
        raise HistoryError(f"{path}: not the settings `perf-core ab` writes (alpha, pairs, threshold, metric)")
    rule = saved_rule(path, settings)
    looks = sequential.looks_upto(samples(runs, settings["metric"]), rule, settings["threshold"])
    return sequential_verdicts(runs, looks, rule, settings["threshold"], settings["metric"])


def saved_rule(path: Path, settings: dict) -> sequential.Plan:
    """The plan a gate decided by, from its settings file `path` (read as `settings`): its saved looks'
    levels, or, for a folder saved before they were (2026-12-02), today's plan for its alpha and pairs.
    Raises HistoryError for levels `perf-core ab` does not write."""
    family, paired = settings.get("family", False), settings.get("paired", False)
    if not isinstance(family, bool) or not isinstance(paired, bool):
        raise HistoryError(f"{path}: its looks' levels or family or paired flag are not the ones `perf-core ab` writes")
    try:  # a folder saved before the family-wise guard is read without it, as that gate decided
        rule = sequential.plan(settings["alpha"], settings["pairs"], family, paired)
    except UsageError as error:
        raise HistoryError(f"{path}: {error}") from None
    levels, minimum = settings.get("levels"), settings.get("minimum")
    if (levels, minimum) == (None, None):
        return rule
    if not (
        isinstance(minimum, int)
        and isinstance(levels, list)
        and len(levels) == rule.maximum - minimum + 1
        and all(isinstance(level, float | int) and 0 <= level < 1 for level in levels)
    ):
        raise HistoryError(f"{path}: its looks' levels or family or paired flag are not the ones `perf-core ab` writes")
    return sequential.Plan(rule.alpha, minimum, rule.maximum, tuple(float(level) for level in levels), family, paired)


def sequential_verdicts(
    runs: dict[str, list[records.Run]],
    looks: Mapping[str, sequential.Look],
    rule: sequential.Plan,
    threshold: float,
    metric: str,
) -> list[gate.Decided]:
    """Each benchmark decided by gate.decide_all (stats.decide) over the pairs of its last look, at that
    look's level, read with its family-wise p (`family_guarded`): the verdict the stopping rule settled
    (regression and improvement are the same tests at the same levels), and an open one at the maximum
    gets the fixed-count reading there."""
    names = select.names_of(runs["base"])
    if rule.paired:
        return [paired_verdict(runs, name, looks[name], rule, metric) for name in names]
    decided: dict[str, gate.Decided] = {}
    for pairs in sorted({looks[name].pairs for name in names}):
        group = [name for name in names if looks[name].pairs == pairs]
        level = rule.level(pairs)
        for d in gate.decide_all(runs["base"][:pairs], runs["head"][:pairs], group, metric, threshold, level):
            decided[d.verdict.name] = family_guarded(d, looks[d.verdict.name], rule)
    return [decided[name] for name in names if name in decided]


def paired_verdict(
    runs: dict[str, list[records.Run]], name: str, seen: sequential.Look, rule: sequential.Plan, metric: str
) -> gate.Decided:
    """A benchmark's verdict from the look that settled it, for pairs timed together (the look's own
    ratio of each pair's runs, signed-rank p, interval and family p); open at the last look: unchanged,
    the fixed-count reading (neither test rejected there)."""
    base, head = (select.run_values(runs[side][: seen.pairs], name, metric) for side in ("base", "head"))
    verdict = sequential.UNCHANGED if seen.verdict == sequential.OPEN else seen.verdict
    n_tokens = next(run.results[name].n_tokens for run in runs["base"] if name in run.results)
    row = stats.Verdict(
        name,
        *(float(np.median(side)) for side in (base, head)),
        seen.ratio,
        seen.low,
        seen.high,
        seen.p,
        len(base),
        len(head),
        verdict,
        seen.family_p,  # None without the guard (sequential.step takes none then)
    )
    return gate.Decided(row, n_tokens, "pairs")


def family_guarded(d: gate.Decided, seen: sequential.Look, rule: sequential.Plan) -> gate.Decided:
    """`d` with its look's family-wise p; a change the rank test found whose family p misses the look's
    family level (sequential.look's second condition, which leaves the look open) is reported
    unchanged, the fixed-count reading at the gate's last look."""
    if not rule.family or seen.family_p is None or d.verdict.p_value is None:
        return d  # no guard, a lone benchmark, or a row that tested nothing (throttled)
    verdict = dataclasses.replace(d.verdict, family_p=seen.family_p)
    changed = verdict.verdict in (sequential.REGRESSION, sequential.IMPROVEMENT)
    if changed and not stats.significant(seen.family_p, rule.family_level(seen.pairs)):
        verdict = dataclasses.replace(verdict, verdict=sequential.UNCHANGED)
    return dataclasses.replace(d, verdict=verdict)


def stop_line(looks: Mapping[str, sequential.Look], rule: sequential.Plan, ran: int) -> str:
    """Why the gate stopped where it did, e.g. "stopped after 4 of at most 5 pairs: every benchmark
    settled (18 unchanged)"; `ran`: pairs run (more than the last look's when GPUs ran a round at once)."""
    used = max((seen.pairs for seen in looks.values()), default=0)
    counts = Counter(seen.verdict for seen in looks.values())
    settled = ", ".join(
        f"{counts[v]} {v}" for v in (sequential.REGRESSION, sequential.IMPROVEMENT, sequential.UNCHANGED) if counts[v]
    )
    unused = f" ({ran - used} more pairs ran in the same round, not used)" if ran > used else ""
    if counts[sequential.OPEN]:
        still = sorted(name for name, seen in looks.items() if not seen.settled)
        shown = ", ".join(still[:3]) + (f" and {len(still) - 3} more" if len(still) > 3 else "")
        return (
            f"ran the maximum of {rule.maximum} pairs: {len(still)} benchmark(s) still open ({shown}),"
            f" decided at the last look's level {rule.level(rule.maximum):.4g}"
            + (f" (family-wise {rule.family_level(rule.maximum):.4g})" if rule.family and len(looks) > 1 else "")
            + (f"; settled earlier: {settled}" if settled else "")
        )
    return f"stopped after {used} of at most {rule.maximum} pairs: every benchmark settled ({settled}){unused}"


def phase_totals(files: dict[str, list[Path]]) -> dict[str, dict[str, float]]:
    """side -> {phase: seconds summed over its runs} from each run's top-level phases_s (contract.PHASES);
    a run without them (a suite older than the field) adds nothing."""
    totals = {side: dict.fromkeys(contract.PHASES, 0.0) for side in files}
    for side, paths in files.items():
        for path in paths:
            phases = json.loads(path.read_text()).get(contract.PHASES_KEY) or {}
            for phase in contract.PHASES:
                totals[side][phase] += float(phases.get(phase) or 0.0)
    return totals


def phases_line(totals: dict[str, dict[str, float]], wall_s: float) -> str:
    """e.g. "phases: base start-up 60 s, compile 14 s, timing 20 s; head ...; wall 190 s"."""
    label = {"startup_s": "start-up", "compile_s": "compile", "timing_s": "timing"}
    sides = "; ".join(
        f"{side} " + ", ".join(f"{label.get(phase, phase)} {seconds:.0f} s" for phase, seconds in phases.items())
        for side, phases in totals.items()
    )
    return f"phases (summed over each side's runs): {sides}; wall {wall_s:.0f} s"
