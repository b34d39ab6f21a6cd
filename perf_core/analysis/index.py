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
  one-line warning. A file that fails to parse is not indexed: it raises the same one-line error
  as without the index, every time.
- Why SQLite (docs/history.md has the measurements): in Python's standard library, so no new
  dependency; one file with transactions, so an interrupted update leaves the previous index and
  two commands can read and update it at once; each run is one row, so adding a run writes one row.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import datetime
from pathlib import Path

from perf_core.analysis import output, records
from perf_core.analysis.records import Machine, Result, Run
from perf_core.errors import HistoryError, UsageError

# The layout of a row: the record classes' fields. A change to them makes every older index foreign.
LAYOUT = "1:" + ",".join(f.name for cls in (Machine, Result, Run) for f in dataclasses.fields(cls))
BATCH = 200  # files parsed between commits: an interrupted first build keeps what it did
PROGRESS_AFTER_S = 2.0  # say what is happening when building takes longer than this


def default_path(storage: Path) -> Path:
    """One index per history folder, named by a hash of its absolute path, in the cache folder."""
    key = hashlib.sha256(str(storage.resolve()).encode()).hexdigest()[:16]
    return output.cache_folder() / "index" / f"{key}.sqlite"


def load(storage: Path, index: Path | None) -> list[Run]:
    """Every run of the history, as records.load_runs(records.find_files(storage)) gives them;
    through the index at `index` (created or brought up to date first), or straight from the files
    when `index` is None."""
    files = records.find_files(storage)
    if index is None:
        return records.load_runs(files)
    if index.suffix == ".json" or _inside(index, storage):
        raise UsageError(f"--index {index}: the index is never kept inside the history folder or named .json")
    try:
        index.parent.mkdir(parents=True, exist_ok=True)
        with _opened(index, storage) as db:
            return _current(db, storage, files)
    except (OSError, sqlite3.Error) as error:
        # No cache folder, a read-only disk, a locked database: slower, never wrong.
        print(f"perf-core: warning: index {index} not usable ({error}); reading the files", file=sys.stderr)
        return records.load_runs(files)


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


@contextmanager
def _opened(index: Path, storage: Path) -> Iterator[sqlite3.Connection]:
    """The index for `storage`, set aside and started afresh when it is not one (see the docstring)."""
    problem = _check(index, storage)
    if problem:
        aside = index.with_name(index.name + ".corrupt")
        print(
            f"perf-core: warning: index {index} {problem}; rebuilding it (old one kept as {aside.name})",
            file=sys.stderr,
        )
        os.replace(index, aside)
    with closing(sqlite3.connect(index, timeout=60)) as db:
        db.execute("PRAGMA journal_mode=WAL")  # readers do not wait for a writer
        with db:
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute(
                "CREATE TABLE IF NOT EXISTS runs (path TEXT PRIMARY KEY, size INTEGER NOT NULL,"
                " mtime_ns INTEGER NOT NULL, digest TEXT NOT NULL, record TEXT NOT NULL)"
            )
            db.executemany(
                "INSERT OR IGNORE INTO meta VALUES (?, ?)",
                [("layout", LAYOUT), ("storage", str(storage.resolve()))],
            )
        yield db


def _check(index: Path, storage: Path) -> str | None:
    """Why the file at `index` cannot be trusted as this history's index; None when it can (or is absent)."""
    if not index.exists() or index.stat().st_size == 0:
        return None
    try:
        with closing(sqlite3.connect(f"file:{index}?mode=ro", uri=True, timeout=60)) as db:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            db.execute("SELECT path, size, mtime_ns, digest, record FROM runs LIMIT 1").fetchall()
    except sqlite3.DatabaseError as error:
        return f"is not a readable index ({error})"
    if meta.get("layout") != LAYOUT:
        return "was written by another version of perf-core"
    if meta.get("storage") != str(storage.resolve()):
        return f"belongs to another history folder ({meta.get('storage')})"
    return None


def _current(db: sqlite3.Connection, storage: Path, files: list[Path]) -> list[Run]:
    """Bring the rows in line with the files (new, changed, gone), then read every run from them."""
    known = {
        path: (size, mtime, digest)
        for path, size, mtime, digest in db.execute("SELECT path, size, mtime_ns, digest FROM runs")
    }
    keys = {path.relative_to(storage).as_posix(): path for path in files}
    gone = known.keys() - keys.keys()
    if gone:
        with db:
            db.executemany("DELETE FROM runs WHERE path = ?", [(key,) for key in gone])
    stale = []
    for key, path in keys.items():
        try:
            stat = path.stat()
        except OSError as error:
            raise HistoryError(f"{path}: cannot be read ({error})") from None
        if known.get(key, (None, None))[:2] != (stat.st_size, stat.st_mtime_ns):
            stale.append((key, path))
    if stale:
        _update(db, stale, known)
    rows = dict(db.execute("SELECT path, record FROM runs").fetchall())
    # In the files' order before sorting, as records.load_runs: runs that tie on time keep that order.
    runs = [_from_record(path, rows[key]) for key, path in keys.items()]
    return sorted(runs, key=lambda run: run.sort_key)


def _update(db: sqlite3.Connection, stale: list[tuple[str, Path]], known: dict) -> None:
    started, told = time.monotonic(), False
    rows = []
    try:
        for done, (key, path) in enumerate(stale, 1):
            try:
                data = path.read_bytes()
                stat = path.stat()
            except OSError as error:
                raise HistoryError(f"{path}: cannot be read ({error})") from None
            digest = hashlib.blake2b(data, digest_size=16).hexdigest()
            if key in known and known[key][2] == digest:  # same content, new stamp
                db.execute(
                    "UPDATE runs SET size = ?, mtime_ns = ? WHERE path = ?", (stat.st_size, stat.st_mtime_ns, key)
                )
                continue
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError as error:
                raise HistoryError(f"{path}: cannot be read ({error})") from None
            run = records.parse_run(path, text)
            rows.append((key, stat.st_size, stat.st_mtime_ns, digest, _to_record(run)))
            if len(rows) >= BATCH:
                _write(db, rows)
                rows = []
            if not told and time.monotonic() - started > PROGRESS_AFTER_S:
                told = True
                print(
                    f"perf-core: indexing {len(stale)} run files (once; later reads use the index)...", file=sys.stderr
                )
            if told and done % 1000 == 0:
                print(f"perf-core: indexed {done} of {len(stale)}", file=sys.stderr)
    finally:
        _write(db, rows)  # what was parsed before an error or Ctrl-C is kept
        db.commit()


def _write(db: sqlite3.Connection, rows: list[tuple]) -> None:
    with db:
        db.executemany("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?)", rows)


def _to_record(run: Run) -> str:
    machine = dataclasses.astuple(run.machine)
    results = [dataclasses.astuple(result) for result in run.results.values()]
    when = None if run.commit_time is None else run.commit_time.isoformat()
    return json.dumps([machine, run.commit, when, run.run_time.isoformat(), run.dirty, results])


def _from_record(path: Path, record: str) -> Run:
    machine, commit, when, run_time, dirty, results = json.loads(record)
    parsed = [Result(*fields) for fields in results]
    return Run(
        path=path,
        machine=Machine(*machine),
        commit=commit,
        commit_time=None if when is None else datetime.fromisoformat(when),
        run_time=datetime.fromisoformat(run_time),
        dirty=dirty,
        results={result.name: result for result in parsed},
    )
