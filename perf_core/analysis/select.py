"""Choosing and pooling runs: one machine, runs grouped by commit, a commit's figures pooled.

Pure functions over records.Run; the commands decide what to show, this decides what is comparable.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from perf_core import contract
from perf_core.analysis.records import NUMBER_FIELDS, Machine, Run, numbers_of
from perf_core.analysis.stats import Spread, spread_of
from perf_core.errors import HistoryError


def machines(runs: Iterable[Run]) -> list[Machine]:
    return sorted({run.machine for run in runs}, key=lambda machine: machine.label)


def listing(found: Sequence[Machine]) -> str:
    return "; ".join(f"[{i}] {machine.label}" for i, machine in enumerate(found, 1))


def choose_machine(found: Sequence[Machine], wanted: str | None, current: Machine | None = None) -> Machine:
    """The one rule for histories of several machines (runs are never mixed across machines):

    - `wanted` that is a number picks that machine of the listing ([1], [2], ... by label);
    - other `wanted` text picks the one machine whose label contains it (case-insensitive);
    - no `wanted`: the only machine, else the one that is this host (device name and torch build),
      else an error listing the machines to choose from.
    """
    if wanted is not None and wanted.strip().isdigit():
        number = int(wanted)
        if not 1 <= number <= len(found):
            raise HistoryError(
                f"--machine {wanted}: there is no machine [{number}]; the history holds: {listing(found)}"
            )
        return found[number - 1]
    if wanted is not None:
        if not wanted.strip():
            raise HistoryError(f"--machine: empty; the history holds: {listing(found)}")
        chosen = [m for m in found if wanted.lower() in m.label.lower()]
        if len(chosen) != 1:
            verdict = "matches no machine" if not chosen else "matches several machines"
            raise HistoryError(f"--machine {wanted!r} {verdict}; the history holds: {listing(found)}")
        return chosen[0]
    if len(found) == 1:
        return found[0]
    here = current and (current.device_name, current.torch_version)
    chosen = [m for m in found if (m.device_name, m.torch_version) == here]
    if len(chosen) != 1:
        raise HistoryError(f"the history holds {len(found)} machines; choose one with --machine: {listing(found)}")
    return chosen[0]


DIRTY = "+dirty"  # what a dirty run's commit name ends with


def commit_of(run: Run) -> tuple[str, bool]:
    """The one rule for dirty runs, in every command: a run from a tree with uncommitted changes is
    not its commit's code, so it belongs to a commit of its own, `C+dirty`, never pooled with C's
    clean runs. Runs of one (commit, dirty) pair are pooled."""
    return run.commit, run.dirty


def by_commit(runs: list[Run]) -> list[tuple[str, list[Run]]]:
    """Runs grouped by commit_of (labelled by Run.short: `abc1234`, `abc1234+dirty`), in history
    order (Run.when); a group's runs are pooled."""
    groups: dict[tuple[str, bool], tuple[str, list[Run]]] = {}
    for run in sorted(runs, key=lambda run: run.sort_key):
        groups.setdefault(commit_of(run), (run.short, []))[1].append(run)
    return list(groups.values())


def find_commit(runs: list[Run], name: str) -> list[Run]:
    """The runs `name` names: a run file (by its name or path as stored), else a commit by hash
    prefix: `C` its clean runs, `C+dirty` its dirty ones (commit_of's rule)."""
    if not name.strip():
        raise HistoryError("an empty commit name matches every commit; give a hash prefix or a run file")
    files = [run for run in runs if run.path.name == name or str(run.path) == name]
    if files:
        return files
    dirty, prefix = name.endswith(DIRTY), name.removesuffix(DIRTY)
    named = [run for run in runs if prefix and run.commit.startswith(prefix)]
    if not named:
        raise HistoryError(f"unknown commit or run {name!r}: no run in the history matches it")
    commits = {run.commit for run in named}
    if len(commits) > 1:
        raise HistoryError(f"{name!r} is ambiguous: it matches commits {', '.join(sorted(c[:10] for c in commits))}")
    matches = [run for run in named if run.dirty == dirty]
    if not matches:
        other = prefix if dirty else prefix + DIRTY
        raise HistoryError(
            f"{name!r}: that commit has only {'clean' if dirty else 'dirty'} runs, named {other!r}"
            " (a dirty run is a commit of its own, never pooled with clean ones)"
        )
    return matches


def floors(runs: Sequence[Run], names: Sequence[str]) -> list[tuple[str, float]]:
    """Each benchmark's floor (seconds per call): the least any of these runs (one machine's)
    recorded for it. A run measures the machine's peak rates once, at its start; a start on a busy
    CPU reads them low and puts that run's floors too high (a newcomer's second run: matmul-eager
    0.986 us a token against the first's 0.817, its medians under it), so the least is the best bound
    measured. A run of a few kernels or token counts leaves the others' floors as they were."""
    found = []
    for name in names:
        recorded = [floor for run in runs if name in run.results and (floor := run.results[name].floor_s)]
        if recorded:
            found.append((name, min(recorded)))
    return found


def names_of(runs: Iterable[Run]) -> list[str]:
    """Every benchmark name in these runs, in table order (kernel, variant, token count)."""
    return sorted({name for run in runs for name in run.results}, key=contract.parse_name)


def run_values(runs: Iterable[Run], name: str, metric: str) -> list[float]:
    """Each run's figure of benchmark `name` for `metric` (per call): the independent samples."""
    values = (run.results[name].seconds(metric) for run in runs if name in run.results)
    return [value for value in values if value is not None]


def holds_figure(runs: Sequence[Run], names: Iterable[str], metric: str) -> bool:
    """Whether any of these runs recorded `metric` for any of `names` (newest first: where a history
    holds the figure at all, its newest runs do, so the usual answer comes after one run)."""
    names = tuple(names)
    return any(run_values([run], name, metric) for run in reversed(runs) for name in names)


@dataclass(frozen=True)
class Point:
    """One benchmark at one commit, runs pooled: per-token median and interval."""

    commit: str
    when: datetime  # Run.when: the commit's time, else the run's own
    per_token_s: float
    low_s: float  # the interquartile range of the rounds; several runs: the median of their ranges
    high_s: float
    runs: int
    run_values_s: tuple[float, ...]  # each run's median per call: the gate's independent samples


def pool(commit: str, runs: list[Run], name: str, metric: str = "steady") -> Point | None:
    """Pool one commit's runs of benchmark `name`; None when no run has it (or not that metric).

    The interval of "steady" is the rounds' IQR (the median run's, per side, over several runs);
    of "latency" and "device", one figure per run, the range of the runs.
    """
    if len(runs) == 1:  # most commits: the general path below gives the same Point, 4x slower
        result = runs[0].results.get(name)
        value = result and result.seconds(metric)
        if value is None:
            return None
        n = result.n_tokens
        low, high = (result.low_s, result.high_s) if metric == "steady" else (value, value)
        return Point(commit, runs[0].when, value / n, low / n, high / n, 1, (value,))
    results = [run.results[name] for run in runs if name in run.results]
    values = run_values(runs, name, metric)
    if not values:
        return None
    n = results[0].n_tokens
    median = statistics.median(values)
    if metric == "steady":
        low, high = statistics.median(r.low_s for r in results), statistics.median(r.high_s for r in results)
    else:
        low, high = min(values), max(values)
    return Point(commit, runs[-1].when, median / n, low / n, high / n, len(values), tuple(values))


RATES = ("tokens_per_s", "bytes_per_s", "bandwidth_share")  # records.Result's, from the steady median


def rates(runs: Sequence[Run], name: str) -> dict[str, float | None]:
    """Benchmark `name`'s saved rates (RATES) over one commit's runs: each the median of the runs that
    saved it, None where none did (runs saved before the rates, or without a measured copy rate)."""
    results = [run.results[name] for run in runs if name in run.results]
    found = {}
    for rate in RATES:
        values = [value for r in results if (value := getattr(r, rate)) is not None]
        found[rate] = statistics.median(values) if values else None
    return found


def series(commits: list[tuple[str, list[Run]]], names: Sequence[str], metric: str) -> dict[str, list[Point | None]]:
    """pool() of every benchmark at every commit, as Points (trend's --json)."""
    return {name: [pool(commit, group, name, metric) for commit, group in commits] for name in names}


@dataclass(frozen=True)
class Column:
    """One benchmark at every commit as arrays, NaN where a commit lacks it: the figures of pool()'s
    Points (per token) without a Point built, which is what trend and the report draw and search."""

    per_token_s: np.ndarray
    low_s: np.ndarray
    high_s: np.ndarray

    def present(self) -> np.ndarray:
        """The commit indices that have the benchmark."""
        return np.flatnonzero(~np.isnan(self.per_token_s))


def columns(commits: list[tuple[str, list[Run]]], names: Sequence[str], metric: str) -> dict[str, Column]:
    """series() as Columns. A commit of one run (most) is read from its numbers as one array, all
    such commits at once; only commits of several runs are pooled one by one. At 10,000 commits
    this took 0.1 s where building the Points took 1.3 s."""
    field = NUMBER_FIELDS.index(contract.METRICS[metric].field)
    low, high = (NUMBER_FIELDS.index("low_s"), NUMBER_FIELDS.index("high_s")) if metric == "steady" else (field, field)
    table = {name: np.full((3, len(commits)), np.nan) for name in names}
    layouts: dict[tuple[str, ...], tuple[list[int], list[np.ndarray]]] = {}
    for i, (commit, group) in enumerate(commits):
        if len(group) == 1:
            layout, numbers = numbers_of(group[0].results)
            at, arrays = layouts.setdefault(layout, ([], []))
            at.append(i)
            arrays.append(numbers)
            continue
        for name in names:
            point = pool(commit, group, name, metric)
            if point:
                table[name][:, i] = point.per_token_s, point.low_s, point.high_s
    for layout, (at, arrays) in layouts.items():
        numbers = np.stack(arrays)  # (commits, benchmarks, NUMBER_FIELDS)
        position = {name: j for j, name in enumerate(layout)}
        for name in names:
            if name in position:
                figures = numbers[:, position[name], :] / contract.parse_name(name).n_tokens
                table[name][:, at] = figures[:, field], figures[:, low], figures[:, high]
    return {name: Column(*rows) for name, rows in table.items()}


def present_values(columns: Iterable[Column]) -> list[float]:
    """Every figure the Columns have, NaN left out (what a chart's unit is chosen from)."""
    every = np.concatenate([column.per_token_s for column in columns] or [np.empty(0)])
    return every[~np.isnan(every)].tolist()


def commit_times(commits: list[tuple[str, list[Run]]]) -> list[datetime]:
    """Each commit's time (Run.when), as its pooled Points carry it."""
    return [group[-1].when for _, group in commits]


MAX_DRAWN = 1000  # points per line past which a trend chart draws consecutive commits as one


def bin_size(commits: int) -> int:
    """Commits per drawn point: 1 up to MAX_DRAWN commits, then as few as keep a line under it. A
    chart 1,920 px wide cannot show more commits apart, and drawing 10,000 took seconds."""
    return -(-commits // MAX_DRAWN)


def band(column: Column, size: int) -> np.ndarray:
    """Rows (commit index, per token, low, high) of a Column's present commits, binned by `size`."""
    at = column.present()
    rows = np.column_stack([at, column.per_token_s[at], column.low_s[at], column.high_s[at]])
    return binned(rows, size)


def binned(rows: np.ndarray, size: int) -> np.ndarray:
    """Rows of numbers -> one row per `size` consecutive rows: the median of each column."""
    if size <= 1:
        return rows
    cut = len(rows) // size * size
    groups = [rows[:cut].reshape(-1, size, rows.shape[1])] + ([rows[cut:][None]] if cut < len(rows) else [])
    return np.concatenate([np.median(group, axis=1) for group in groups])


def run_noise(run: Run, names: Sequence[str]) -> float | None:
    """How widely a run's rounds spread: the median over these benchmarks of IQR / median. A run
    taken while the machine was busy spreads wider (CPU, 2026-11-28: 18-21% against a typical 5-7%)."""
    spreads = [(r.high_s - r.low_s) / r.median_s for r in (run.results.get(n) for n in names) if r and r.median_s]
    return float(np.median(spreads)) if spreads else None


def noisy_runs(runs: Sequence[Run], reference: Sequence[Run], names: Sequence[str], factor: float) -> list[Run]:
    """Those of `runs` whose rounds spread more than `factor` times as wide as the typical run of `reference`."""
    typical = [noise for noise in (run_noise(run, names) for run in reference) if noise is not None]
    if not typical:
        return []
    limit = factor * float(np.median(typical))
    return [run for run in runs if (run_noise(run, names) or 0.0) > limit]


def run_spread(runs: Sequence[Run], names: Sequence[str], metric: str) -> Spread | None:
    """The stats.Spread of these runs for these benchmarks, from their consecutive pairs in history
    order (each pair: {benchmark: log(second / first)}); None without two runs that share one."""
    ordered = sorted(runs, key=lambda run: run.sort_key)
    pairs: list[dict[str, float]] = []
    for first, second in itertools.pairwise(ordered):
        pair = {}
        for name in names:
            a, b = (run.results[name].seconds(metric) if name in run.results else None for run in (first, second))
            if a and b:
                pair[name] = float(np.log(b / a))
        if pair:
            pairs.append(pair)
    return spread_of(pairs)
