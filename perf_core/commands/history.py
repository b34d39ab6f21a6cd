"""What the reading commands share: the history read (through its index), one machine of it chosen
and announced on stderr, the benchmarks the --kernel/--variant/--tokens filter keeps, a commit found.

Plain values in (the options' values), records out; the history is only ever read.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from perf_core import contract
from perf_core.analysis import index, records, select
from perf_core.analysis.records import Machine, Result, Run, Skipped
from perf_core.commands.options import Selection
from perf_core.errors import HistoryError, UsageError, split_csv, token_counts


def index_path(storage: Path, index_file: Path | None, no_index: bool = False) -> Path | None:
    """The index to read through: --index, else the default one of `storage`; None with --no-index.
    Raises UsageError when --index names something that is not an index (refuse_foreign)."""
    if index_file is not None and not no_index:
        refuse_foreign(index_file)
    return None if no_index else (index_file or index.default_path(storage))


SQLITE_HEADER = b"SQLite format 3\x00"  # the first 16 bytes of every SQLite database file


def refuse_foreign(path: Path) -> None:
    """A file the user named with --index that is no SQLite database (a run's JSON, a note, a folder) is
    not perf-core's to set aside and rebuild, as a damaged index of its own is: UsageError, one line,
    and the file stays as it is. Absent or empty: the index is made there; one that cannot be opened
    is read around, as an unusable index is (index.read)."""
    if path.is_dir():
        raise UsageError(f"--index {path}: is a folder, not an index; name a file, or leave --index out")
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(SQLITE_HEADER))
    except OSError:  # absent, or cannot be opened: made there, or read around as an unusable index is
        return
    if head and head != SQLITE_HEADER:
        raise UsageError(
            f"--index {path}: not an index (not an SQLite database); name a new file, or leave --index out"
        )


def index_of(selection: Selection) -> Path | None:
    """index_path of a reading command's Selection."""
    return index_path(selection.storage, selection.index_file, selection.no_index)


def wanted(selection: Selection) -> Callable[[Result], bool]:
    """The selection's --kernel/--variant/--tokens filter (each comma-separated; None keeps all)."""
    kernels = set(split_csv("--kernel", selection.kernel)) if selection.kernel else None
    variants = set(split_csv("--variant", selection.variant)) if selection.variant else None
    counts = set(token_counts("--tokens", selection.tokens)) if selection.tokens else None

    def keep(result: Result) -> bool:
        return (
            (kernels is None or result.kernel in kernels)
            and (variants is None or result.variant in variants)
            and (counts is None or result.n_tokens in counts)
        )

    return keep


def names_in(runs: Sequence[Run], keep: Callable[[Result], bool]) -> list[str]:
    """The benchmarks of these runs that `keep` keeps, in table order."""
    return [name for name in select.names_of(runs) if any(keep(r.results[name]) for r in runs if name in r.results)]


@functools.cache  # the host does not change within a process; the package lookup scans sys.path (3.6 ms)
def current_machine() -> Machine | None:
    """This host's CPU and torch build, to pick its history among several (no torch import: slow)."""
    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        return None
    return Machine(contract.cpu_name(), torch_version, 1, None)


SKIPS_LISTED = 20  # skipped files named one a line; past this, counted only


def read(storage: Path, index_file: Path | None) -> tuple[list[Run], tuple[Skipped, ...]]:
    """Every run of the history (index.read), each file left out said on stderr, one line each
    (the first SKIPS_LISTED), then counted: "perf-core: 2 files skipped; 30 runs read"."""
    found = index.read(storage, index_file)
    for item in found.skipped[:SKIPS_LISTED]:
        print(f"perf-core: warning: skipped {item.reason}", file=sys.stderr)
    if found.skipped:
        count = len(found.skipped)
        more = f", {count - SKIPS_LISTED} not listed" if count > SKIPS_LISTED else ""
        print(
            f"perf-core: {count} file{'s' if count != 1 else ''} skipped{more}; {len(found.runs)} runs read",
            file=sys.stderr,
        )
    if not found.runs:
        raise HistoryError(f"{storage}: no readable run in the history ({len(found.skipped)} files skipped)")
    return found.runs, found.skipped


@dataclass(frozen=True)
class Chosen:
    """One machine's runs of the history (history order), the benchmarks kept, the whole history,
    and the files of it left out (read's)."""

    runs: list[Run]
    names: list[str]
    every: list[Run]
    skipped: tuple[Skipped, ...] = ()

    @property
    def machine(self) -> str:
        return self.runs[0].machine.label


def load(selection: Selection) -> Chosen:
    """The runs of the selected machine (select.choose_machine's rule), announced when the history has
    several. HistoryError when no benchmark of that machine passes the selection's filter."""
    every, skipped = read(selection.storage, index_of(selection))
    found = select.machines(every)
    chosen = select.choose_machine(found, selection.machine, current_machine())
    if len(found) > 1:
        how = "by --machine" if selection.machine else "this host"
        print(
            f"perf-core: {len(found)} machines in the history; reading [{found.index(chosen) + 1}] {chosen.label} ({how})",
            file=sys.stderr,
        )
    runs = [run for run in every if run.machine == chosen]
    names = names_in(runs, wanted(selection))
    if not names:
        raise HistoryError("no benchmark in the history matches --kernel/--variant/--tokens")
    if not select.holds_figure(runs, names, selection.metric):
        # Else a command goes on over nothing: trend found "no change" in figures that were not there.
        raise HistoryError(
            f"no run of {chosen.label} has {selection.metric} figures for these benchmarks (a run holds"
            " the figures its --figures asked for; latency and device time are measured on GPU runs only)"
        )
    return Chosen(runs, names, every, skipped)


def find_commit(chosen: Chosen, name: str) -> list[Run]:
    """The runs `name` names among one machine's runs: a run file in any spelling of its path
    (same_file), else select.find_commit's rule. A named file the history left out is refused with
    its reason (a copy of a run names that run); a commit that ran only on another machine of the history is said to, not "unknown"."""
    named = same_file(name, [*chosen.every, *chosen.skipped])
    if isinstance(named, Skipped) and named.twin:  # a copy of a run: the run it repeats
        named = next((run for run in chosen.every if run.path == named.twin), named)
    if named is not None:
        if isinstance(named, Skipped):
            raise HistoryError(named.reason)
        if named.machine != chosen.runs[0].machine:
            raise HistoryError(
                f"{name} ran on another machine ({named.machine.label}), not on {chosen.machine}:"
                " runs of different machines are never compared (--machine chooses the machine)"
            )
        return [named]
    for item in chosen.skipped:  # a left-out file named by its name as stored
        if name in (item.path.name, str(item.path)):
            raise HistoryError(item.reason)
    try:
        return select.find_commit(chosen.runs, name)
    except HistoryError as unknown:
        try:
            elsewhere = select.find_commit(chosen.every, name)
        except HistoryError:
            raise unknown from None
        labels = "; ".join(sorted({run.machine.label for run in elsewhere}))
        raise HistoryError(
            f"{name!r} ran on another machine ({labels}), not on {chosen.machine}:"
            " runs of different machines are never compared (--machine chooses the machine)"
        ) from None


def same_file(name: str, items: Sequence[Run | Skipped]) -> Run | Skipped | None:
    """The run (or left-out file) whose file `name` is, when `name` is a path to an existing file:
    relative, `./`, absolute, through a symlink, whatever --storage's spelling; matched by the file
    itself (device and inode), not by its name. None when `name` is no file."""
    try:
        wanted = os.stat(name)
    except (OSError, ValueError):
        return None
    for item in items:
        try:
            found = os.stat(item.path)
        except OSError:
            continue
        if (found.st_dev, found.st_ino) == (wanted.st_dev, wanted.st_ino):
            return item
    return None


def groups_of(chosen: Chosen, commits: list[tuple[str, list[Run]]], name: str) -> list[tuple[str, list[Run]]]:
    """The commit groups (select.by_commit) holding the runs `name` names: resolved once, then matched
    by file, not by comparing Runs for each group (plot --commit took 78 s at 10,000 runs that way)."""
    paths = {run.path for run in find_commit(chosen, name)}
    return [(commit, group) for commit, group in commits if any(run.path in paths for run in group)]


def with_breakdowns(runs: Sequence[Run]) -> list[Run]:
    """The runs parsed again from their files, with their breakdowns (the index keeps none), in the
    order given. A file that can no longer be read (changed or removed since the index read it) keeps
    its indexed run, without breakdown, and a one-line warning: a verdict already reached stands."""
    again = []
    for run in runs:
        try:
            again.append(records.read_run(run.path))
        except HistoryError as error:
            print(f"perf-core: warning: no breakdown from {error}", file=sys.stderr)
            again.append(run)
    return again
