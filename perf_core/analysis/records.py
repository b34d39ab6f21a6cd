"""Records read from saved runs: pytest-benchmark's own JSON files, typed in one place.

Read-only: nothing here writes, moves or deletes a history file. Every problem with the input is a
HistoryError with a one-line message that names the file (exit code 2). Field names and the format
version come from perf_core.contract, the one thing this shares with the suite that writes them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from perf_core import contract
from perf_core.errors import HistoryError, is_count


@dataclass(frozen=True)
class Machine:
    """What makes two runs comparable: the same device, torch build, Python, thread count, cache mode
    and GPU rest between rounds, and the preset (cold and warm runs, rested and back-to-back ones, measure different
    things and are never pooled or compared; an interpreter upgrade is not a commit's doing)."""

    device_name: str
    torch_version: str
    num_threads: int
    cuda_version: str | None
    cache: str = contract.WARM  # version 1 runs were all warm (back to back)
    rest: float = 0.0  # runs saved before the rest existed ran their rounds back to back
    python: str | None = None  # major.minor ("3.12"); None: the run did not say (comparable with each other)
    # The preset that sized the benchmarks (machine_info["preset"]): llama-7b's model-compiled-16 and
    # llama-3-8b's are different work under one name. None: the run did not say.
    preset: str | None = None

    @property
    def label(self) -> str:
        threads = f"{self.num_threads} thread{'s' if self.num_threads != 1 else ''}"
        python = f" | Python {self.python}" if self.python else ""
        cache = "" if self.cache == contract.WARM else f" | {self.cache} cache"
        rest = f", rest {self.rest:g}" if self.rest else ""
        preset = f" | preset {self.preset}" if self.preset else ""
        return f"{self.device_name} | torch {self.torch_version}{python} | {threads}{cache}{rest}{preset}"


def _preset(path: Path, preset: object) -> str | None:
    if preset is None:
        return None
    if not isinstance(preset, str) or not preset.strip():
        raise HistoryError(f"{path}: machine_info has an invalid preset ({_show(preset)})")
    return preset


def python_series(version: object) -> str | None:
    """ "3.12.3" -> "3.12": patch releases are bug fixes, and a runner's Python moves through them often;
    None for a run that saved no version (or not a text)."""
    if not isinstance(version, str) or not version.strip():
        return None
    return ".".join(version.strip().split(".")[:2])


@dataclass(frozen=True)
class Breakdown:
    """Where one benchmark's call spent its time, as the suite profiled it after the timed rounds.

    parts: (stable name, calls per benchmark call, seconds per call), the largest first, then the
    GPU's contract.BREAKDOWN_IDLE, then the smallest summed into one contract.BREAKDOWN_OTHER part;
    None when the profiler failed (note says why).
    fingerprint and kernels: compiled variants only, inductor's normalised output code (sha256 prefix)
    and its generated kernels' names.
    """

    parts: tuple[tuple[str, float, float], ...] | None
    fingerprint: str | None = None
    kernels: tuple[str, ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class Result:
    """One benchmark of one run, in seconds per call unless the name says per token."""

    name: str  # contract.bench_name, e.g. "attention-compiled-128"
    kernel: str
    variant: str
    n_tokens: int
    median_s: float
    # The interquartile range of the rounds (numpy's percentiles of the raw rounds when the run saved
    # them, else pytest-benchmark's q1/q3). Rounds themselves are validated, then not kept: a history
    # of years holds hundreds of millions, and nothing after parsing needs more than their spread.
    low_s: float
    high_s: float
    floor_s: float | None = None
    latency_s: float | None = None
    device_s: float | None = None
    throttled: bool | None = None  # NVML saw the card slowed during the rounds (None: unknown)
    # The steady-state median call's rates, as the suite saved them (contract.TOKENS_PER_S, ...): tokens
    # per second, streamed bytes per second, and that rate's share of the run's measured copy bandwidth.
    # None in runs saved before them, and a share is None in runs without a measured copy rate.
    tokens_per_s: float | None = None
    bytes_per_s: float | None = None
    bandwidth_share: float | None = None
    # Format 3 and later, unless run with --no-breakdown; None otherwise. The history index does not
    # keep it (its Results read None): read breakdowns from the run files (load_runs).
    breakdown: Breakdown | None = None
    # The figures its run measured (contract.FIGURES_KEY); seconds() is None for the others. Not in the
    # history index's rows, whose Results read every figure (runs saved before --figures hold them all).
    figures: tuple[str, ...] = contract.FIGURES

    @property
    def per_token_s(self) -> float:
        return self.median_s / self.n_tokens

    @classmethod
    def restored(cls, values: Sequence) -> Result:
        """A Result from fields in declaration order that were validated when its file was parsed
        (the history index's rows), set as pickle restores an object: the frozen dataclass's
        per-field __init__ was half the time of reading a long history's 240,000 results."""
        result = object.__new__(cls)
        result.__dict__.update(zip(RESULT_FIELDS, values))
        return result

    def seconds(self, metric: str) -> float | None:
        """Seconds per call: "steady" (pytest-benchmark's rounds), "latency" (one isolated call, host
        included) or "device" (CUDA events, the GPU's own time); the last two on GPU runs only.
        None where the run did not measure it (median_s of a run without steady is no measurement)."""
        return getattr(self, contract.METRICS[metric].field) if metric in self.figures else None


RESULT_FIELDS = tuple(f.name for f in fields(Result))
# A Result's numbers, in the order the history index stores them per benchmark (NaN: not recorded;
# throttled as 0/1): numbers_of gives them as one array, which a trend of 10,000 commits reads
# without building 240,000 Results.
NUMBER_FIELDS = (
    "median_s",
    "low_s",
    "high_s",
    "floor_s",
    "latency_s",
    "device_s",
    "throttled",
    "tokens_per_s",
    "bytes_per_s",
    "bandwidth_share",
)


def numbers_of(results: Mapping[str, Result]) -> tuple[tuple[str, ...], np.ndarray]:
    """A run's benchmark names and a (benchmarks, NUMBER_FIELDS) float array of their numbers.
    Results that hold them as an array already (the index's) give it as it is."""
    fast = getattr(results, "numbers", None)
    if fast is not None:
        return fast()
    rows = [[np.nan if (v := getattr(r, f)) is None else float(v) for f in NUMBER_FIELDS] for r in results.values()]
    return tuple(results), np.array(rows, dtype=float).reshape(len(rows), len(NUMBER_FIELDS))


@dataclass(frozen=True)
class Run:
    """One saved run of the suite (one process, one JSON file)."""

    path: Path
    machine: Machine
    commit: str
    commit_time: datetime | None
    run_time: datetime
    dirty: bool
    results: Mapping[str, Result] = field(hash=False)  # a dict, or the index's lazily built mapping

    @property
    def short(self) -> str:
        return self.commit[:7] + ("+dirty" if self.dirty else "")

    @property
    def when(self) -> datetime:
        """The time the run is ordered by: its commit's time, else its own save time (pytest-benchmark's
        `datetime`; a run saved outside git, or with PERF_CORE_COMMIT and no PERF_CORE_COMMIT_TIME)."""
        return self.commit_time or self.run_time

    @property
    def sort_key(self) -> tuple:
        return (self.when, self.run_time)


def _time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _seconds(path: Path, name: str, what: str, value: object, positive: bool = True) -> float:
    """A time in seconds; a median, floor or latency of zero is as impossible as a negative one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise HistoryError(f"{path}: benchmark {_show(name)} has a non-numeric {what} ({_show(value)})")
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        number = math.inf
    if math.isnan(number) or math.isinf(number) or number < 0 or (positive and number == 0):
        raise HistoryError(f"{path}: benchmark {_show(name)} has an invalid {what} ({_show(number)})")
    return number


def _rounds(path: Path, name: str, data: list) -> np.ndarray:
    """Validate the raw rounds in one vectorised pass: long histories hold millions of them."""
    try:
        values = np.asarray(data, dtype=float)
    except (TypeError, ValueError, OverflowError):
        raise HistoryError(f"{path}: benchmark {_show(name)} has non-numeric round times") from None
    bad = ~np.isfinite(values) | (values < 0)
    if values.ndim != 1 or bad.any():
        first = float(values[bad][0]) if values.ndim == 1 else "not a list"
        raise HistoryError(f"{path}: benchmark {_show(name)} has an invalid round time ({_show(first)})")
    return values


def _quartiles(values: np.ndarray) -> tuple[float, float]:
    """The 25th and 75th percentiles, linearly interpolated (numpy's default method): one sort
    instead of np.percentile's general machinery, which took 40% of parsing a run."""
    ordered = np.sort(values)
    last = len(ordered) - 1
    found = []
    for q in (0.25, 0.75):
        position = q * last
        below = int(position)
        above = min(below + 1, last)
        found.append(float(ordered[below] + (ordered[above] - ordered[below]) * (position - below)))
    return found[0], found[1]


def _is_part(row: object) -> bool:
    return (
        isinstance(row, list)
        and len(row) == 3
        and isinstance(row[0], str)
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 for v in row[1:])
    )


def _rate(value: object) -> float | None:
    """A saved rate (tokens/s, bytes/s, bandwidth share), None unless a finite positive number: the
    rates are derived from the median, so a malformed one is no reason to refuse the run's timings."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and number > 0 else None


def parse_breakdown(extra: dict) -> Breakdown | None:
    """The benchmark's Breakdown, None when it has none (format 2 and older, --no-breakdown).

    A malformed breakdown is not a reason to refuse the run's timings: it reads as a failed one,
    with a note saying so."""
    if contract.BREAKDOWN not in extra:
        return None
    rows, note = extra[contract.BREAKDOWN], extra.get(contract.BREAKDOWN_NOTE)
    kernels = extra.get(contract.CODE_KERNELS) or []
    fingerprint = extra.get(contract.CODE_FINGERPRINT)
    if rows is not None and not (isinstance(rows, list) and all(_is_part(row) for row in rows)):
        rows, note = None, "no breakdown: the saved one is malformed"
    return Breakdown(
        parts=None if rows is None else tuple((name, float(calls), float(s)) for name, calls, s in rows),
        fingerprint=fingerprint if isinstance(fingerprint, str) else None,
        kernels=tuple(k for k in kernels if isinstance(k, str)) if isinstance(kernels, list) else (),
        note=note if isinstance(note, str) else (None if rows is not None else "no breakdown (no reason saved)"),
    )


def figures_held(path: Path, info: dict) -> tuple[str, ...]:
    """machine_info's list of measured figures, in contract order; every figure where it has none."""
    held = info.get(contract.FIGURES_KEY, contract.FIGURES)
    if not isinstance(held, list | tuple) or not held or not set(held) <= set(contract.FIGURES):
        raise HistoryError(f"{path}: machine_info has an invalid {contract.FIGURES_KEY} ({_show(held)})")
    return tuple(figure for figure in contract.FIGURES if figure in held)


def parse_result(path: Path, bench: dict, figures: tuple[str, ...] = contract.FIGURES) -> Result:
    name = bench.get("param") or bench.get("name", "?")
    extra = bench.get("extra_info") or {}
    if not isinstance(extra, dict):
        raise HistoryError(f"{path}: benchmark {_show(name)} has no extra_info object")
    missing = [key for key in contract.REQUIRED_EXTRA if key not in extra]
    if missing:
        raise HistoryError(f"{path}: benchmark {_show(name)} lacks the suite's fields {', '.join(missing)}")
    stats = bench.get("stats")
    if not isinstance(stats, dict):
        raise HistoryError(f"{path}: benchmark {_show(name)} has no stats")
    n_tokens = extra[contract.N_TOKENS]
    if not is_count(n_tokens):
        raise HistoryError(f"{path}: benchmark {_show(name)} has an invalid n_tokens ({_show(n_tokens)})")
    median = _seconds(path, name, "median", stats.get("median"))
    rounds = _rounds(path, name, stats.get("data") or [])
    q1 = _seconds(path, name, "q1", stats.get("q1", median), positive=False)
    q3 = _seconds(path, name, "q3", stats.get("q3", median), positive=False)
    low, high = _quartiles(rounds) if len(rounds) else (q1, q3)
    kernel, variant = extra[contract.KERNEL], extra[contract.VARIANT]
    if not isinstance(kernel, str) or not isinstance(variant, str) or not kernel or "-" in variant:
        raise HistoryError(
            f"{path}: benchmark {_show(name)} has an invalid kernel or variant ({_show(kernel)}, {_show(variant)})"
        )
    optional = {key: extra.get(key) for key in (contract.FLOOR_S, contract.LATENCY_S, contract.DEVICE_S)}
    throttled = extra.get(contract.THROTTLED)
    return Result(
        name=contract.bench_name(kernel, variant, n_tokens),
        kernel=kernel,
        variant=variant,
        n_tokens=n_tokens,
        median_s=median,
        low_s=low,
        high_s=high,
        **{key: None if value is None else _seconds(path, name, key, value) for key, value in optional.items()},
        throttled=throttled if isinstance(throttled, bool) else None,
        tokens_per_s=_rate(extra.get(contract.TOKENS_PER_S)),
        bytes_per_s=_rate(extra.get(contract.BYTES_PER_S)),
        bandwidth_share=_rate(extra.get(contract.BANDWIDTH_SHARE)),
        breakdown=parse_breakdown(extra),
        figures=figures,
    )


def parse_run(path: Path, text: str) -> Run:
    """One pytest-benchmark JSON document (format of 4.0 and later) -> Run; HistoryError (one line
    naming the file) for anything else."""
    document = _document(path, text)
    info = document["machine_info"]
    machine = parse_machine(path, info)
    commit = document.get("commit_info") or {}
    if not isinstance(commit, dict) or not isinstance(document["benchmarks"], list):
        raise HistoryError(f"{path}: commit_info or benchmarks has the wrong type")
    run_time = _time(document.get("datetime"))
    if run_time is None:
        raise HistoryError(f"{path}: no valid 'datetime'")
    return Run(
        path=path,
        machine=machine,
        commit=str(commit.get(contract.COMMIT_ID) or "unversioned"),
        commit_time=_time(commit.get(contract.COMMIT_TIME) or commit.get(contract.COMMIT_AUTHOR_TIME)),
        run_time=run_time,
        dirty=bool(commit.get(contract.COMMIT_DIRTY)),
        results=_results(path, document["benchmarks"], figures_held(path, info)),
    )


def _document(path: Path, text: str) -> dict:
    """The file's JSON object, checked to be a pytest-benchmark document of a format this reads."""
    if not text.strip():
        raise HistoryError(f"{path}: empty file")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise HistoryError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}), truncated?") from None
    except (ValueError, RecursionError) as error:  # integers past Python's digit limit, absurd nesting
        raise HistoryError(f"{path}: not readable JSON ({str(error).splitlines()[0][:80]})") from None
    if not isinstance(document, dict) or not {"benchmarks", "machine_info"} <= document.keys():
        raise HistoryError(f"{path}: not a pytest-benchmark file (no 'benchmarks' and 'machine_info')")
    version = document.get(contract.FORMAT_KEY, 1)  # runs saved before the version existed are version 1
    if not is_count(version):
        raise HistoryError(f"{path}: invalid {contract.FORMAT_KEY} ({_show(version)})")
    if version > contract.FORMAT_VERSION:
        raise HistoryError(
            f"{path}: saved in format {version}, newer than this perf-core reads ({contract.FORMAT_VERSION}); upgrade perf-core"
        )
    if not isinstance(document["machine_info"], dict):
        raise HistoryError(f"{path}: machine_info is not an object")
    return document


def parse_machine(path: Path, info: dict) -> Machine:
    """machine_info -> the Machine that says which runs are comparable."""
    missing = [key for key in contract.REQUIRED_MACHINE if key not in info]
    if missing:
        raise HistoryError(f"{path}: not saved by the perf_core suite (machine_info lacks {', '.join(missing)})")
    threads = info[contract.NUM_THREADS]
    if not is_count(threads):
        raise HistoryError(f"{path}: machine_info has an invalid num_threads ({_show(threads)})")
    cuda = info.get(contract.CUDA_VERSION)
    cache = info.get(contract.CACHE, contract.WARM)
    if cache not in contract.CACHE_MODES:
        raise HistoryError(f"{path}: machine_info has an invalid cache mode ({_show(cache)})")
    rest = info.get(contract.REST, 0.0)
    low, high = contract.REST_BOUNDS
    if isinstance(rest, bool) or not isinstance(rest, int | float) or not low <= rest < high:
        raise HistoryError(f"{path}: machine_info has an invalid rest ({_show(rest)})")
    return Machine(
        str(info[contract.DEVICE_NAME]),
        str(info[contract.TORCH_VERSION]),
        threads,
        None if cuda is None else str(cuda),
        cache,
        float(rest),
        python_series(info.get(contract.PYTHON_VERSION)),
        _preset(path, info.get(contract.PRESET)),
    )


def _results(path: Path, benchmarks: list, figures: tuple[str, ...]) -> dict[str, Result]:
    results: dict[str, Result] = {}
    for bench in benchmarks:
        if not isinstance(bench, dict):
            raise HistoryError(f"{path}: a benchmark entry is not an object")
        result = parse_result(path, bench, figures)
        if result.name in results:  # two test modules timing one case: neither may silently win
            raise HistoryError(f"{path}: benchmark {result.name} appears twice in one run (two test modules?)")
        results[result.name] = result
    return results


def read_run(path: Path) -> Run:
    """The run saved in the file at `path`; HistoryError (one line naming the file) when it is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise HistoryError(f"{path}: cannot be read ({error})") from None
    return parse_run(path, text)


def load_runs(paths: Iterable[Path]) -> list[Run]:
    """The runs of these files, in history order; the first file that is not a run raises its
    HistoryError (for files a user named: `ab` folders, scripts)."""
    return sorted((read_run(path) for path in paths), key=lambda run: run.sort_key)


@dataclass(frozen=True)
class Skipped:
    """A file of a history that no command reads: damaged, foreign, newer, or a duplicate."""

    path: Path
    reason: str  # one line that names the file
    twin: Path | None = None  # a duplicate: the file of the run it repeats (read in its place)


@dataclass(frozen=True)
class History:
    """What a history folder holds: its runs in history order, and the files left out of them."""

    runs: list[Run]
    skipped: tuple[Skipped, ...] = ()


def read_history(paths: Iterable[Path]) -> History:
    """The runs of a history's files (find_files), each damaged, foreign or newer file left out with
    its reason: a history is read for years, and one bad file must not stop the rest. Duplicates are
    counted once (distinct)."""
    runs, skipped = [], []
    for path in paths:
        try:
            runs.append(read_run(path))
        except HistoryError as error:
            skipped.append(Skipped(path, str(error)))
    return distinct(runs, skipped)


def _same_figures(run: Run, other: Run) -> bool:
    names, numbers = numbers_of(run.results)
    other_names, other_numbers = numbers_of(other.results)
    return names == other_names and numbers.tobytes() == other_numbers.tobytes()


def distinct(runs: Iterable[Run], skipped: Iterable[Skipped] = ()) -> History:
    """`runs` (in their order) less the runs that repeat an earlier one -- the same file reached twice
    (a symlink), or a copy: same machine, commit, save time and figures -- each such file added to
    `skipped` and counted once. The runs come back in history order."""
    seen: dict[tuple, list[Run]] = {}
    kept, left = [], list(skipped)
    for run in runs:
        # By save time first: only runs saved at the same microsecond have their figures compared
        # (all of them: 14% of reading a 3,000-run history through the index).
        same_time = seen.setdefault((run.machine, run.commit, run.dirty, run.run_time), [])
        twin = next((other for other in same_time if _same_figures(run, other)), None)
        if twin is not None:
            left.append(Skipped(run.path, f"{run.path}: the same run as {twin.path}; counted once", twin.path))
            continue
        same_time.append(run)
        kept.append(run)
    return History(sorted(kept, key=lambda run: run.sort_key), tuple(left))


def find_files(storage: Path) -> list[Path]:
    """Every run file under pytest-benchmark's storage folder (STORAGE/<machine-id>/NNNN_*.json)."""
    if not storage.is_dir():
        raise HistoryError(f"{storage}: no history yet (run `pytest --benchmark-only` to record a run)")
    # By parts, as Path's own order, without its comparison (10,000 files: 0.08 s of a 2 s trend).
    files = sorted(storage.rglob("*.json"), key=lambda path: path.parts)
    if not files:
        raise HistoryError(f"{storage}: no history yet, no .json files (run `pytest --benchmark-only`)")
    return files
