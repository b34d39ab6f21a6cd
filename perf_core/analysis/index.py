"""The history's index: each run file parsed once and kept in SQLite, so reading commands need not
re-parse years of JSON. The JSON files stay the only source of truth; the index is a cache of
records.parse_run's output and is never required (--no-index reads the files, same answers).

- Where: the user's cache folder, one file per history folder (never inside the history), unless
  --index names a file.
- Which rows are current: a file's row is reused while its size and mtime match. When either
  changed, the file is read again: the same content hash (a copy, a `touch`) only refreshes the
  stamp, new content is parsed again. A file gone from the history drops out of the index; the
  history itself is only ever read.
- Not trusted: an index that SQLite cannot read, written for another history folder or by another
  layout of the records is set aside (a corrupt file is renamed, never deleted) and rebuilt, with a
  one-line warning. A file that fails to parse is not indexed: it is left out with the same
  one-line reason as without the index, every time (records.read_history).
- Why SQLite (docs/history.md has the measurements): in Python's standard library, so no new
  dependency; one file with transactions, so an interrupted update leaves the previous index and
  two commands can read and update it at once; each run is one row, so adding a run writes one row.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sqlite3
import sys
import time
from array import array
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import numpy as np

from perf_core.analysis import records
from perf_core.analysis.records import NUMBER_FIELDS, Machine, Result, Run
from perf_core.errors import HistoryError, UsageError

# The layout of a row: the record classes' fields. A change to them makes every older index foreign.
# 3: NUMBER_FIELDS gained the rates (tokens_per_s, bytes_per_s, bandwidth_share), a wider blob per benchmark.
LAYOUT = "3:" + ",".join(f.name for cls in (Machine, Result, Run) for f in dataclasses.fields(cls))
T = TypeVar("T")
BATCH = 200  # files parsed between commits: an interrupted first build keeps what it did
PARALLEL_FROM = 400  # stale files from which parsing is spread over the CPUs
PROGRESS_AFTER_S = 2.0  # say what is happening when building takes longer than this


def cache_folder() -> Path:
    """perf-core's folder in the user's cache ($XDG_CACHE_HOME or ~/.cache): build products only, never history."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "perf-core"


def default_path(storage: Path) -> Path:
    """One index per history folder, named by a hash of its absolute path, in the cache folder."""
    key = hashlib.sha256(str(storage.resolve()).encode()).hexdigest()[:16]
    return cache_folder() / "index" / f"{key}.sqlite"


def read(storage: Path, index: Path | None) -> records.History:
    """The history as records.read_history(records.find_files(storage)) gives it (runs in history
    order, damaged and duplicate files left out with their reasons); through the index at `index`
    (created or brought up to date first), or straight from the files when `index` is None."""
    files = records.find_files(storage)
    if index is not None:
        try:
            return _with_index(storage, index, lambda db: _history(db, _sync(db, storage, files)))
        except (OSError, sqlite3.Error, _Corrupt) as error:
            # No cache folder, a read-only disk, a locked database: slower, never wrong.
            print(f"perf-core: warning: index {index} not usable ({error}); reading the files", file=sys.stderr)
    return records.read_history(files)


def load(storage: Path, index: Path | None) -> list[Run]:
    """read()'s runs; the first file it would leave out raises its HistoryError instead."""
    history = read(storage, index)
    if history.skipped:
        raise HistoryError(history.skipped[0].reason)
    return history.runs


@dataclass(frozen=True)
class Synced:
    keys: dict[str, Path]  # every run file, by its path under the history folder
    parsed: int  # files new or changed since the index last saw them
    gone: int  # rows dropped: their files are no longer in the history
    failed: tuple[records.Skipped, ...] = ()  # files that are not runs (not indexed: read again each time)


def update(storage: Path, index: Path) -> Synced:
    """Bring the index up to date without reading the runs back (`perf-core index`)."""
    files = records.find_files(storage)
    try:
        return _with_index(storage, index, lambda db: _sync(db, storage, files))
    except (OSError, sqlite3.Error, _Corrupt) as error:
        raise UsageError(f"index {index} not usable ({error})") from None


def _with_index(storage: Path, index: Path, action: Callable[[sqlite3.Connection], T]) -> T:
    if index.suffix == ".json" or _inside(index, storage):
        raise UsageError(f"--index {index}: the index is never kept inside the history folder or named .json")
    index.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _opened(index, storage) as db:
            return action(db)
    except _Corrupt as problem:  # rows the checks at opening could not see: once more, afresh
        _set_aside(index, str(problem))
    with _opened(index, storage) as db:
        return action(db)


MEMO_KEEP = 2000  # answers kept (newest first): 24 benchmarks x metrics x filters, with room


@contextmanager
def memo(index: Path | None) -> Iterator[dict[str, str]]:
    """Derived answers kept in the index (changes.found_in's, by a hash of what they were computed
    from) for the block to read and add to; the answers it added are kept when it ends."""
    known = _remembered(index)
    answers = dict(known)
    yield answers
    _remember(index, answers, known)


def _remembered(index: Path | None) -> dict[str, str]:
    """The answers kept in the index, or nothing: a cache that cannot be read is an empty one."""
    if index is None or not index.exists():
        return {}
    with contextlib.suppress(sqlite3.Error), closing(sqlite3.connect(index, timeout=60)) as db:
        return dict(db.execute("SELECT key, value FROM memo").fetchall())
    return {}


def _remember(index: Path | None, answers: dict[str, str], known: dict[str, str]) -> None:
    """Keep the answers that `known` (_remembered's) lacked; trim to the MEMO_KEEP newest."""
    new = [(key, value) for key, value in answers.items() if key not in known]
    if index is None or not new:
        return
    with contextlib.suppress(sqlite3.Error), closing(sqlite3.connect(index, timeout=60)) as db, db:
        db.executemany("INSERT OR REPLACE INTO memo VALUES (?, ?)", new)
        db.execute("DELETE FROM memo WHERE rowid <= (SELECT max(rowid) FROM memo) - ?", (MEMO_KEEP,))


class _Corrupt(Exception):
    """A row of the index that does not decode: the index is set aside and rebuilt."""


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _set_aside(index: Path, problem: str) -> None:
    aside = index.with_name(index.name + ".corrupt")
    print(f"perf-core: warning: index {index} {problem}; rebuilding it (old one kept as {aside.name})", file=sys.stderr)
    os.replace(index, aside)
    for suffix in ("-wal", "-shm"):  # SQLite's journal files belong to the old one
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{index}{suffix}")


@contextmanager
def _opened(index: Path, storage: Path) -> Iterator[sqlite3.Connection]:
    """The index for `storage`, set aside and started afresh when it is not one (see the docstring)."""
    problem = _check(index, storage)
    if problem:
        _set_aside(index, problem)
    with closing(sqlite3.connect(index, timeout=60)) as db:
        db.execute("PRAGMA journal_mode=WAL")  # readers do not wait for a writer
        with db:
            db.executescript(SCHEMA)
            db.executemany(
                "INSERT OR IGNORE INTO meta VALUES (?, ?)",
                [("layout", LAYOUT), ("storage", str(storage.resolve()))],
            )
        yield db


# One row per run file. A run's results are one float64 blob (NUMBER_FIELDS per benchmark, NaN for
# "not recorded") under a shared list of benchmark names: most runs have the same benchmarks, so a
# row is ~1.5 KB and is decoded without a parser (a JSON row was 4.7 KB and 70 us to decode).
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS memo (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS names (id INTEGER PRIMARY KEY, names TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS runs (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, digest TEXT NOT NULL,
    machine TEXT NOT NULL, run TEXT NOT NULL, names INTEGER NOT NULL REFERENCES names(id), results BLOB NOT NULL
);
"""


def _check(index: Path, storage: Path) -> str | None:
    """Why the file at `index` cannot be trusted as this history's index; None when it can (or is absent)."""
    if not index.exists() or index.stat().st_size == 0:
        return None
    try:
        with closing(sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=60)) as db:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            db.execute("SELECT path, size, mtime_ns, digest, machine, run, names, results FROM runs LIMIT 1").fetchall()
            db.execute("SELECT id, names FROM names LIMIT 1").fetchall()
    except sqlite3.DatabaseError as error:
        return f"is not a readable index ({error})"
    if meta.get("layout") != LAYOUT:
        return "was written by another version of perf-core"
    if meta.get("storage") != str(storage.resolve()):
        return f"belongs to another history folder ({meta.get('storage')})"
    return None


def _sync(db: sqlite3.Connection, storage: Path, files: list[Path]) -> Synced:
    """Bring the rows in line with the files: parse the new and changed ones, drop the gone ones."""
    known = {row[0]: row[1:] for row in db.execute("SELECT path, size, mtime_ns, digest FROM runs")}
    keys = {key_of(storage, path): path for path in files}
    gone = known.keys() - keys.keys()
    if gone:
        with db:
            db.executemany("DELETE FROM runs WHERE path = ?", [(key,) for key in gone])
    stale, unread = [], []
    for key, path in keys.items():
        try:
            stat = path.stat()
        except OSError as error:  # a dangling symlink, say: left out as records.read_run leaves it
            unread.append(records.Skipped(path, f"{path}: cannot be read ({error})"))
            continue
        if known.get(key, (None, None))[:2] != (stat.st_size, stat.st_mtime_ns):
            stale.append((key, path))
    if unread:
        with db:
            db.executemany("DELETE FROM runs WHERE path = ?", [(key_of(storage, item.path),) for item in unread])
    failed = sorted(unread + (_update(db, stale, known) if stale else []), key=lambda item: item.path.parts)
    return Synced(keys, len(stale), len(gone), tuple(failed))


def key_of(storage: Path, path: Path) -> str:
    """A file's row key: its path under the history folder, "/"-separated ("h100/0001_x.json"), by
    parts as find_files joined them. (A cut by string length took two characters too many off every
    key of `--storage .`, whose files rglob yields without "./": the machines' runs collided.)"""
    return "/".join(path.parts[len(storage.parts) :])


def _history(db: sqlite3.Connection, synced: Synced) -> records.History:
    """The synced rows as a History: the failed files left out, duplicates counted once."""
    failed = {item.path for item in synced.failed}
    runs = _read(db, {key: path for key, path in synced.keys.items() if path not in failed})
    return records.distinct(runs, synced.failed)


def _update(db: sqlite3.Connection, stale: list[tuple[str, Path]], known: dict) -> list[records.Skipped]:
    """Parse the stale files (in worker processes when there are many: a first build parses GBs of
    JSON) and write their rows in batches; the files that fail are returned, their rows dropped."""
    work = [(key, path, known.get(key, (None, None, None))[2]) for key, path in stale]
    started, told, rows, failed = time.monotonic(), False, [], []
    pool = ProcessPoolExecutor(os.cpu_count()) if len(work) >= PARALLEL_FROM and (os.cpu_count() or 1) > 1 else None
    try:
        found = pool.map(_examine, work, chunksize=32) if pool else map(_examine, work)
        for done, item in enumerate(found, 1):
            if isinstance(item, str):  # the file's one-line error; a row it had is out of date
                key, path = stale[done - 1]
                failed.append(records.Skipped(path, item))
                db.execute("DELETE FROM runs WHERE path = ?", (key,))
                continue
            key, size, mtime, _, run = item
            if run is None:  # same content, new stamp
                db.execute("UPDATE runs SET size = ?, mtime_ns = ? WHERE path = ?", (size, mtime, key))
                continue
            rows.append(item)
            if len(rows) >= BATCH:
                _write(db, rows)
                rows = []
            if not told and time.monotonic() - started > PROGRESS_AFTER_S:
                told = True
                print(
                    f"perf-core: indexing {len(work)} run files (once; later reads use the index)...", file=sys.stderr
                )
            if told and done % 1000 == 0:
                print(f"perf-core: indexed {done} of {len(work)}", file=sys.stderr)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
        _write(db, rows)  # what was parsed before an error or Ctrl-C is kept
        db.commit()
    return failed


def _examine(item: tuple[str, Path, str | None]) -> tuple | str:
    """One stale file: (key, size, mtime_ns, digest, Run), Run None when its content is unchanged,
    or the file's HistoryError message (errors cross the process boundary as text)."""
    key, path, known_digest = item
    try:
        try:
            data = path.read_bytes()
            stat = path.stat()
        except OSError as error:
            raise HistoryError(f"{path}: cannot be read ({error})") from None
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        run = None if digest == known_digest else records.parse_run(path, _text(path, data))
    except HistoryError as error:
        return str(error)
    return key, stat.st_size, stat.st_mtime_ns, digest, run


def _text(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise HistoryError(f"{path}: cannot be read ({error})") from None


def _write(db: sqlite3.Connection, rows: list[tuple]) -> None:
    with db:
        for key, size, mtime, digest, run in rows:
            names = json.dumps([[r.name, r.kernel, r.variant, r.n_tokens] for r in run.results.values()])
            db.execute("INSERT OR IGNORE INTO names (names) VALUES (?)", (names,))
            (names_id,) = db.execute("SELECT id FROM names WHERE names = ?", (names,)).fetchone()
            _, numbers = records.numbers_of(run.results)  # in the order of run.results, as the names
            when = None if run.commit_time is None else run.commit_time.isoformat()
            db.execute(
                "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    size,
                    mtime,
                    digest,
                    json.dumps(dataclasses.astuple(run.machine)),
                    json.dumps([run.commit, when, run.run_time.isoformat(), run.dirty]),
                    names_id,
                    numbers.tobytes(),
                ),
            )


def _read(db: sqlite3.Connection, keys: dict[str, Path]) -> list[Run]:
    try:
        layouts = {key: _Layout(json.loads(text)) for key, text in db.execute("SELECT id, names FROM names")}
        machines: dict[str, Machine] = {}
        rows = {row[0]: row[1:] for row in db.execute("SELECT path, machine, run, names, results FROM runs")}
        # In the files' order before sorting, as records.load_runs: runs that tie on time keep that order.
        runs = [_run(path, *rows[key], layouts, machines) for key, path in keys.items()]
        _check_numbers(b"".join(rows[key][3] for key in keys))
    except (KeyError, ValueError, TypeError) as error:
        raise _Corrupt(f"has a row that does not decode ({type(error).__name__}: {error})") from None
    return sorted(runs, key=lambda run: run.sort_key)


def _check_numbers(blob: bytes) -> None:
    """Every number of every row at once, as parse_result would have let it through (vectorised:
    the records themselves are built only when a command reads them)."""
    numbers = np.frombuffer(blob, dtype=np.float64).reshape(-1, len(NUMBER_FIELDS))
    median, low, high, floor, latency, device, throttled, *rates = numbers.T
    optional = np.stack([floor, latency, device, *rates])  # records._rate keeps only positive rates
    good = (
        np.isfinite(median).all()
        and (median > 0).all()
        and (np.isfinite(low) & np.isfinite(high) & (low >= 0) & (high >= 0)).all()
        and (np.isnan(optional) | (np.isfinite(optional) & (optional > 0))).all()
        and (np.isnan(throttled) | (throttled == 0) | (throttled == 1)).all()
    )
    if not good:
        raise ValueError("a number that no run file can hold")


class _Layout:
    """One list of benchmarks (name, kernel, variant, n_tokens), shared by the runs that have it."""

    def __init__(self, entries: list) -> None:
        self.entries = [tuple(entry) for entry in entries]
        self.names = tuple(entry[0] for entry in self.entries)
        self.members = frozenset(self.names)


class _Results(Mapping):
    """A run's results as the index holds them, each Result built on first use: `plot` reads a
    handful of the 10,000 runs, and building all 240,000 records was most of reading the index."""

    __slots__ = ("_built", "_layout", "_numbers")

    def __init__(self, layout: _Layout, numbers: array) -> None:
        self._layout, self._numbers, self._built = layout, numbers, None

    def _all(self) -> dict[str, Result]:
        if self._built is None:
            values = [None if value != value else value for value in self._numbers.tolist()]  # NaN: not recorded
            width, built = len(NUMBER_FIELDS), {}
            for i, (name, kernel, variant, n_tokens) in enumerate(self._layout.entries):
                median, low, high, floor, latency, device, throttled, *rates = values[i * width : (i + 1) * width]
                flag = None if throttled is None else throttled == 1.0
                built[name] = Result.restored(
                    (name, kernel, variant, n_tokens, median, low, high, floor, latency, device, flag, *rates)
                )
            self._built = built
        return self._built

    def __getitem__(self, name: str) -> Result:
        return self._all()[name]

    def __contains__(self, name: object) -> bool:
        return name in self._layout.members

    def __iter__(self) -> Iterator[str]:
        return iter(self._layout.names)

    def __len__(self) -> int:
        return len(self._layout.names)

    def numbers(self) -> tuple[tuple[str, ...], np.ndarray]:
        """records.numbers_of without a Result built: the row's own array."""
        return self._layout.names, np.frombuffer(self._numbers, dtype=np.float64).reshape(-1, len(NUMBER_FIELDS))


def _run(path: Path, machine: str, run: str, names_id: int, blob: bytes, layouts: dict, machines: dict) -> Run:
    if machine not in machines:
        machines[machine] = Machine(*json.loads(machine))
    commit, when, run_time, dirty = json.loads(run)
    numbers = array("d")
    numbers.frombytes(blob)
    layout = layouts[names_id]
    if len(numbers) != len(NUMBER_FIELDS) * len(layout.names):
        raise ValueError(f"{path.name}: {len(numbers)} numbers for {len(layout.names)} benchmarks")
    results = _Results(layout, numbers)
    return Run(
        path=path,
        machine=machines[machine],
        commit=commit,
        commit_time=None if when is None else datetime.fromisoformat(when),
        run_time=datetime.fromisoformat(run_time),
        dirty=dirty,
        results=results,
    )
