"""History loader: pytest-benchmark's own JSON files, read into small typed records in one place.

Read-only: nothing here writes, moves or deletes a history file. Every problem with the input is a
HistoryError with a one-line message that names the file; the CLI turns it into exit code 2.
"""

from __future__ import annotations

import json
import math
import platform
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

# The fields the suite writes into each benchmark's extra_info that the tools rely on.
REQUIRED_EXTRA = ("kernel", "variant", "n_tokens", "per_token_s")


UNITS = (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9))


def unit_for(seconds: Iterable[float]) -> tuple[str, float]:
    """The unit that reads best for these values: the largest one the biggest value reaches."""
    top = max(seconds, default=1.0)
    for name, scale in UNITS:
        if top >= scale:
            return name, scale
    return UNITS[-1]


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    unit, scale = unit_for([seconds])
    return f"{seconds / scale:.3f} {unit}"


class HistoryError(ValueError):
    """Bad or missing history; the message is one line and names the file."""


@dataclass(frozen=True)
class Machine:
    """What makes two runs comparable: the same device, torch build and thread count."""

    device_name: str
    torch_version: str
    num_threads: int
    cuda_version: str | None

    @property
    def label(self) -> str:
        threads = f"{self.num_threads} thread{'s' if self.num_threads != 1 else ''}"
        return f"{self.device_name} | torch {self.torch_version} | {threads}"


@dataclass(frozen=True)
class Result:
    """One benchmark of one run, in seconds per call unless the name says per token."""

    name: str  # e.g. "attention-compiled-128"
    kernel: str
    variant: str
    n_tokens: int
    median_s: float
    q1_s: float
    q3_s: float
    rounds_s: tuple[float, ...]  # per-call seconds of each round; empty unless saved with data
    floor_s: float | None = None
    latency_s: float | None = None

    @property
    def per_token_s(self) -> float:
        return self.median_s / self.n_tokens

    def seconds(self, metric: str) -> float | None:
        """Seconds per call: "steady" (calls back to back) or "latency" (isolated call, GPU runs)."""
        return self.median_s if metric == "steady" else self.latency_s


@dataclass(frozen=True)
class Run:
    """One saved run of the suite (one process, one JSON file)."""

    path: Path
    machine: Machine
    commit: str
    commit_time: datetime | None
    run_time: datetime
    dirty: bool
    results: dict[str, Result] = field(hash=False)

    @property
    def short(self) -> str:
        return self.commit[:7] + ("+dirty" if self.dirty else "")

    @property
    def sort_key(self) -> tuple:
        epoch = datetime.min.replace(tzinfo=timezone.utc)
        return (self.commit_time or epoch, self.run_time)


def cpu_name() -> str:
    """The CPU's brand string, as the suite records it in machine_info["device_name"] on the CPU."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _seconds(path: Path, name: str, what: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HistoryError(f"{path}: benchmark {name!r} has a non-numeric {what} ({value!r})")
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise HistoryError(f"{path}: benchmark {name!r} has an invalid {what} ({value!r})")
    return float(value)


def _rounds(path: Path, name: str, data: list) -> tuple[float, ...]:
    """Validate the raw rounds in one vectorised pass: long histories hold millions of them."""
    try:
        values = np.asarray(data, dtype=float)
    except (TypeError, ValueError):
        raise HistoryError(f"{path}: benchmark {name!r} has non-numeric round times") from None
    bad = ~np.isfinite(values) | (values < 0)
    if values.ndim != 1 or bad.any():
        first = float(values[bad][0]) if values.ndim == 1 else "not a list"
        raise HistoryError(f"{path}: benchmark {name!r} has an invalid round time ({first!r})")
    return tuple(data)


def parse_result(path: Path, bench: dict) -> Result:
    name = bench.get("param") or bench.get("name", "?")
    extra = bench.get("extra_info") or {}
    missing = [key for key in REQUIRED_EXTRA if key not in extra]
    if missing:
        raise HistoryError(f"{path}: benchmark {name!r} lacks the suite's fields {', '.join(missing)}")
    stats = bench.get("stats")
    if not isinstance(stats, dict):
        raise HistoryError(f"{path}: benchmark {name!r} has no stats")
    n_tokens = extra["n_tokens"]
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or n_tokens < 1:
        raise HistoryError(f"{path}: benchmark {name!r} has an invalid n_tokens ({n_tokens!r})")
    median = _seconds(path, name, "median", stats.get("median"))
    rounds = _rounds(path, name, stats.get("data") or [])
    optional = {key: extra.get(key) for key in ("floor_s", "latency_s")}
    return Result(
        name=f"{extra['kernel']}-{extra['variant']}-{n_tokens}",
        kernel=str(extra["kernel"]),
        variant=str(extra["variant"]),
        n_tokens=n_tokens,
        median_s=median,
        q1_s=_seconds(path, name, "q1", stats.get("q1", median)),
        q3_s=_seconds(path, name, "q3", stats.get("q3", median)),
        rounds_s=rounds,
        **{key: None if value is None else _seconds(path, name, key, value) for key, value in optional.items()},
    )


def parse_run(path: Path, text: str) -> Run:
    """One pytest-benchmark JSON document (format of 4.0 and later) -> Run."""
    if not text.strip():
        raise HistoryError(f"{path}: empty file")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise HistoryError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}), truncated?") from None
    if not isinstance(document, dict) or not {"benchmarks", "machine_info"} <= document.keys():
        raise HistoryError(f"{path}: not a pytest-benchmark file (no 'benchmarks' and 'machine_info')")
    info = document["machine_info"] or {}
    missing = [key for key in ("device_name", "torch_version", "num_threads") if key not in info]
    if missing:
        raise HistoryError(f"{path}: not saved by the perf_core suite (machine_info lacks {', '.join(missing)})")
    machine = Machine(
        str(info["device_name"]), str(info["torch_version"]), int(info["num_threads"]), info.get("cuda_version")
    )
    commit = document.get("commit_info") or {}
    run_time = _time(document.get("datetime"))
    if run_time is None:
        raise HistoryError(f"{path}: no valid 'datetime'")
    results = {}
    for bench in document["benchmarks"]:
        result = parse_result(path, bench)
        results[result.name] = result
    return Run(
        path=path,
        machine=machine,
        commit=str(commit.get("id") or "unversioned"),
        commit_time=_time(commit.get("time") or commit.get("author_time")),
        run_time=run_time,
        dirty=bool(commit.get("dirty")),
        results=results,
    )


def load_runs(paths: Iterable[Path]) -> list[Run]:
    runs = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise HistoryError(f"{path}: cannot be read ({error})") from None
        runs.append(parse_run(path, text))
    return sorted(runs, key=lambda run: run.sort_key)


def find_files(storage: Path) -> list[Path]:
    """Every run file under pytest-benchmark's storage folder (STORAGE/<machine-id>/NNNN_*.json)."""
    if not storage.is_dir():
        raise HistoryError(f"{storage}: no history yet (run `pytest --benchmark-only` to record a run)")
    files = sorted(storage.rglob("*.json"))
    if not files:
        raise HistoryError(f"{storage}: no history yet, no .json files (run `pytest --benchmark-only`)")
    return files


def machines(runs: Iterable[Run]) -> list[Machine]:
    return sorted({run.machine for run in runs}, key=lambda machine: machine.label)


def select_machine(runs: list[Run], wanted: str | None, current: Machine | None = None) -> list[Run]:
    """Keep the runs of one machine; never mix. `wanted` is a substring of a machine's label.

    Without `wanted`: the only machine, else the one matching `current` (device and torch), else an
    error that lists the machines to choose from.
    """
    found = machines(runs)
    listing = "; ".join(f"[{i}] {machine.label}" for i, machine in enumerate(found, 1))
    if wanted:
        chosen = [m for i, m in enumerate(found, 1) if wanted == str(i) or wanted.lower() in m.label.lower()]
        if len(chosen) != 1:
            verdict = "matches no machine" if not chosen else "matches several machines"
            raise HistoryError(f"--machine {wanted!r} {verdict}; the history holds: {listing}")
    elif len(found) == 1:
        chosen = found
    else:
        here = current and (current.device_name, current.torch_version)
        chosen = [m for m in found if (m.device_name, m.torch_version) == here]
        if len(chosen) != 1:
            raise HistoryError(f"the history holds {len(found)} machines; choose one with --machine: {listing}")
    return [run for run in runs if run.machine == chosen[0]]


def by_commit(runs: list[Run]) -> list[tuple[str, list[Run]]]:
    """Runs grouped by commit, in commit-time order; a commit's runs are pooled, not split."""
    groups: dict[str, list[Run]] = {}
    for run in sorted(runs, key=lambda run: run.sort_key):
        groups.setdefault(run.short, []).append(run)
    return list(groups.items())


def find_commit(runs: list[Run], name: str) -> list[Run]:
    """The runs whose commit id starts with `name` (a hash prefix), or the file named `name`."""
    matches = [run for run in runs if run.commit.startswith(name) or run.path.name == name or str(run.path) == name]
    if not matches:
        raise HistoryError(f"unknown commit or run {name!r}: no run in the history matches it")
    commits = {run.commit for run in matches}
    if len(commits) > 1:
        raise HistoryError(f"{name!r} is ambiguous: it matches commits {', '.join(sorted(c[:10] for c in commits))}")
    return matches


@dataclass(frozen=True)
class Point:
    """One benchmark at one commit, runs pooled: per-token median and interval (IQR of the rounds)."""

    commit: str
    when: datetime | None
    per_token_s: float
    low_s: float
    high_s: float
    runs: int
    run_values_s: tuple[float, ...]  # each run's median per call: the gate's independent samples


def pool(commit: str, runs: list[Run], name: str, metric: str = "steady") -> Point | None:
    """Pool one commit's runs of benchmark `name`; None when no run has it (or not that metric)."""
    results = [run.results[name] for run in runs if name in run.results]
    values = [value for value in (result.seconds(metric) for result in results) if value is not None]
    if not values:
        return None
    n = results[0].n_tokens
    median = statistics.median(values)
    rounds = [value for result in results for value in result.rounds_s]
    if metric == "steady" and rounds:
        low, high = (float(q) for q in np.percentile(rounds, [25, 75]))
    elif metric == "steady":
        low, high = min(r.q1_s for r in results), max(r.q3_s for r in results)
    else:
        low, high = min(values), max(values)
    return Point(commit, runs[-1].commit_time, median / n, low / n, high / n, len(values), tuple(values))
