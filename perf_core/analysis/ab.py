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
"""

from __future__ import annotations

import html
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from perf_core.analysis import gate, output, records, select, view
from perf_core.errors import HistoryError, Interrupted, UsageError

DEFAULT_PAIRS = 5
# Short timing per run: the gate's power comes from many independent runs, not long ones.
RUN_OPTIONS = [
    "--benchmark-only",
    "--benchmark-max-time=0.3",
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


def schedule(pairs: int) -> list[tuple[str, int]]:
    """A B B A A B B A ...: each side goes first in half of the pairs."""
    order = []
    for pair in range(pairs):
        sides = ("base", "head") if pair % 2 == 0 else ("head", "base")
        order += [(side, pair + 1) for side in sides]
    return order


def selection_args(kernel: str | None, variant: str | None, tokens: str | None) -> list[str]:
    """The suite's own options (--kernels, --variants, --tokens) for the chosen benchmarks."""
    chosen = {"kernels": kernel, "variants": variant, "tokens": tokens}
    return [f"--{name}={value}" for name, value in chosen.items() if value]


def run_suite(tree: Path, args: list[str]) -> subprocess.CompletedProcess:
    """One pytest process of a side's own suite, in its own process group so that an interruption
    can end it and whatever it started (compile workers) together."""
    # The side's own tree first, so its perf_core is the one imported; the caller's path after it.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH")])))
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    child = subprocess.Popen(
        command, cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = child.communicate()
    except BaseException:
        end_group(child)
        raise
    return subprocess.CompletedProcess(command, child.returncode, stdout, stderr)


def end_group(child: subprocess.Popen) -> None:
    for signum, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(child.pid, signum)
        except ProcessLookupError:
            return
        try:
            child.wait(wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def failure_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    cause = next((line for line in reversed(lines) if "Error" in line or "FAILED" in line), lines[-1] if lines else "")
    return cause.strip()


def check_side(tree: Path, args: list[str], side: str) -> str | None:
    """Collect (nothing runs) with the options each timed run will get: a bad option is an error now,
    not after minutes of the other side's runs. Returns the device the suite reports, when it does."""
    result = run_suite(tree, ["--collect-only", *args])
    if result.returncode:
        raise SideError(f"{side}: the suite refuses these options (exit {result.returncode}): {failure_line(result)}")
    found = re.search(r"^perf_core: device (\w+)", result.stdout, re.MULTILINE)
    return found.group(1) if found else None


def run_side(tree: Path, out: Path, args: list[str], side: str) -> None:
    result = run_suite(tree, [*RUN_OPTIONS, f"--benchmark-json={out}", *args])
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
    top: Path, shas: dict[str, str], pairs: int, extra: list[str], metric: str, out: Path
) -> dict[str, list[Path]]:
    """Both sides' suites in their own worktrees, A B B A ..., `pairs` runs a side, each run's JSON kept
    under `out` (base-NN.json, head-NN.json); one progress line per run on stderr. Everything checkable
    is checked before the first timed run: the options by a collection-only pass of each side, `metric`
    against the device that pass reports (UsageError)."""
    order = schedule(pairs)
    files: dict[str, list[Path]] = {"base": [], "head": []}
    with worktrees(top, shas) as trees:
        devices = {check_side(trees[side], extra, side) for side in ("base", "head")} - {None}
        if metric != "steady" and devices and devices != {"cuda"}:
            raise UsageError(
                f"--metric {metric}: the suite runs on {', '.join(sorted(devices))} here, and that figure"
                " is recorded on CUDA runs only; use --metric steady"
            )
        out.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        for done, (side, pair) in enumerate(order):
            path = out / f"{side}-{pair:02d}.json"
            run_side(trees[side], path, extra, side)
            files[side].append(path)
            elapsed = time.monotonic() - started
            left = elapsed / (done + 1) * (len(order) - done - 1)
            print(
                f"[{done + 1}/{len(order)}] {side} pair {pair}: {elapsed:.0f} s elapsed, ~{left:.0f} s left",
                file=sys.stderr,
            )
    return files
