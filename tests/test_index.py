"""The history index: never required (same answers without it), current after every change to the
history, never trusted when foreign or corrupt, never written inside the history."""

import json
import os
import sqlite3
from array import array
from datetime import datetime, timezone
from pathlib import Path

import pytest
from helpers import perf_core, snapshot

from perf_core.analysis import index, output, records
from perf_core.analysis.synthetic import commit_sha, run_document, write_history, write_run


@pytest.fixture
def storage(storage: Path) -> Path:
    """conftest's history folder, holding 30 commits with a step at 20 and a second run of the last."""
    path = storage
    write_history(path, 30, step_at=20, rounds=20)
    write_run(
        path,
        31,
        run_document(commit_sha(29), datetime(2026, 1, 2, 5, tzinfo=timezone.utc), seed=7),
    )
    return path


def outputs(capsys, storage: Path, tmp_path: Path, *where: str) -> dict[str, str]:
    """Every reading command's --json output (and the report's pages) on this history."""
    found = {}
    base, head = commit_sha(10)[:7], commit_sha(29)[:7]
    commands = {
        "plot": ["plot", "--last", "3", "--json", "-o", tmp_path / "p.png"],
        "trend": ["trend", "--json", "-o", tmp_path / "t.png"],
        "compare": ["compare", base, head, "--json"],
        "compare-runs": ["compare", commit_sha(28)[:7], head, "--json", "--kernel", "matmul"],
        "export": ["export", "--format", "bencher"],
    }
    for name, argv in commands.items():
        code, out, err = perf_core(capsys, *argv, "--storage", storage, *where)
        assert code in (0, 1), err
        found[name] = f"{code}\n{out}"
    site = tmp_path / f"site{len(where)}"
    code, _, err = perf_core(capsys, "report", "--storage", storage, "-o", site, *where)
    assert code == 0, err
    found["report"] = "".join(p.read_text() for p in sorted(site.glob("*.html")))
    return found


def test_every_command_answers_the_same_with_and_without_the_index(storage, tmp_path, capsys, monkeypatch):
    # The answers compared are the commands' JSON and the report's pages; plot and trend still build
    # their figures, but saving one (~1 s of Agg drawing) is left out: test_history checks the files.
    monkeypatch.setattr(output, "save_figure", lambda fig, path: None)
    before = snapshot(storage)
    without = outputs(capsys, storage, tmp_path, "--no-index")
    assert not index.default_path(storage).exists()  # --no-index writes nothing
    built = outputs(capsys, storage, tmp_path)  # builds the index
    assert index.default_path(storage).exists()
    current = outputs(capsys, storage, tmp_path)  # reads it
    assert built == without and current == without
    assert json.loads(without["trend"].split("\n", 1)[1])["changes"]  # the history has something to find
    assert snapshot(storage) == before  # the history folder holds no index and no changed file


def test_the_index_follows_added_changed_touched_and_removed_files(storage, tmp_path, capsys):
    where = tmp_path / "idx.sqlite"
    files = records.find_files(storage)
    assert len(index.load(storage, where)) == 31
    # added
    write_run(
        storage,
        32,
        run_document(commit_sha(40), datetime(2026, 2, 1, tzinfo=timezone.utc), seed=9),
    )
    assert [run.commit for run in index.load(storage, where)][-1] == commit_sha(40)
    # changed in place: a new median, same name
    document = json.loads(files[0].read_text())
    document["benchmarks"][0]["stats"]["median"] *= 3
    files[0].write_text(json.dumps(document))
    name = next(iter(records.parse_run(files[0], files[0].read_text()).results))
    fresh = {run.path: run for run in index.load(storage, where)}
    assert fresh[files[0]].results[name] == records.parse_run(files[0], files[0].read_text()).results[name]
    # touched: new mtime, same bytes, so only the stamp is refreshed (the row is not parsed again)
    stamp = files[1].stat().st_mtime_ns + 10**9
    os.utime(files[1], ns=(stamp, stamp))
    with sqlite3.connect(where) as db:
        db.execute(
            "UPDATE runs SET machine = replace(machine, ?, ?) WHERE path = ?",
            ("Test CPU", "Marked", files[1].relative_to(storage).as_posix()),
        )
    marked = {run.path: run for run in index.load(storage, where)}[files[1]]
    assert marked.machine.device_name.startswith("Marked")
    with sqlite3.connect(where) as db:
        assert (
            db.execute(
                "SELECT mtime_ns FROM runs WHERE path = ?", (files[1].relative_to(storage).as_posix(),)
            ).fetchone()[0]
            == stamp
        )
    # removed from the history: gone from the answers
    files[2].unlink()
    assert files[2] not in {run.path for run in index.load(storage, where)}
    assert {run.path for run in index.load(storage, where)} == set(records.find_files(storage))


def test_a_corrupt_or_foreign_index_is_set_aside_with_one_line_and_rebuilt(storage, tmp_path, capsys):
    where = tmp_path / "idx.sqlite"
    expected = [(run.path, run.results) for run in records.load_runs(records.find_files(storage))]
    where.write_bytes(b"not a database at all" * 100)
    runs = index.load(storage, where)
    err = capsys.readouterr().err
    assert [(run.path, run.results) for run in runs] == expected
    assert err.count("\n") == 1 and "not a readable index" in err and "rebuilding" in err
    assert where.with_name("idx.sqlite.corrupt").read_bytes().startswith(b"not a database")  # set aside, not deleted
    # an index of another history folder is not trusted either
    other = tmp_path / "other"
    write_history(other, 3)
    runs = index.load(other, where)
    err = capsys.readouterr().err
    assert "another history folder" in err and len(runs) == 3
    # an index written by another layout of the records
    with sqlite3.connect(where) as db:
        db.execute("UPDATE meta SET value = 'old' WHERE key = 'layout'")
    assert len(index.load(other, where)) == 3
    assert "another version of perf-core" in capsys.readouterr().err


def test_a_broken_run_file_is_left_out_the_same_way_through_the_index(storage, tmp_path, capsys):
    broken = storage / "Linux-CPython-3.11-64bit" / "0099_broken.json"
    broken.write_text('{"benchmarks": [')
    for where in ("--no-index", None, None):
        code, _, err = perf_core(
            capsys, "plot", "--storage", storage, "-o", tmp_path / "p.png", *([where] if where else [])
        )
        lines = err.strip().splitlines()
        assert code == 0 and len(lines) == 3 and f"skipped {broken}: not valid JSON" in lines[0]
        assert lines[1] == "perf-core: 1 file skipped; 31 runs read" and lines[2].startswith("wrote ")


def test_the_index_is_never_put_in_the_history_and_an_unusable_one_is_only_slower(storage, tmp_path, capsys):
    code, _, err = perf_core(
        capsys, "plot", "--storage", storage, "--index", storage / "i.sqlite", "-o", tmp_path / "p.png"
    )
    assert code == 2 and "never kept inside the history folder" in err
    code, _, err = perf_core(
        capsys, "plot", "--storage", storage, "--index", tmp_path / "i.json", "-o", tmp_path / "p.png"
    )
    assert code == 2 and err.count("\n") == 1
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, out, err = perf_core(
        capsys, "plot", "--storage", storage, "--index", blocker / "i.sqlite", "-o", tmp_path / "p.png", "--json"
    )
    assert code == 0 and "not usable" in err and "reading the files" in err and len(json.loads(out)) == 24


def test_a_row_that_does_not_decode_rebuilds_the_index(storage, tmp_path, capsys):
    where = tmp_path / "idx.sqlite"
    expected = [(run.path, run.results) for run in records.load_runs(records.find_files(storage))]
    index.load(storage, where)
    for tampered in (b"\x00\xff", array("d", [-1.0] * 24 * len(index.NUMBER_FIELDS)).tobytes()):  # short; negative
        with sqlite3.connect(where) as db:
            db.execute("UPDATE runs SET results = ? WHERE rowid = 3", (tampered,))
        runs = index.load(storage, where)
        assert [(run.path, dict(run.results)) for run in runs] == expected
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "does not decode" in err and "rebuilding" in err


def test_perf_core_index_says_what_it_added_and_dropped(storage, tmp_path, capsys):
    where = tmp_path / "idx.sqlite"
    code, out, _ = perf_core(capsys, "index", "--storage", storage, "--index", where)
    assert code == 0 and "31 runs; 31 new or changed, 0 gone" in out
    write_run(storage, 40, run_document(commit_sha(40), datetime(2026, 2, 1, tzinfo=timezone.utc), seed=9))
    records.find_files(storage)[0].unlink()
    code, out, _ = perf_core(capsys, "index", "--storage", storage, "--index", where)
    assert code == 0 and "31 runs; 1 new or changed, 1 gone" in out
    broken = storage / "Linux-CPython-3.11-64bit" / "0099_broken.json"
    broken.write_text("{")
    code, out, err = perf_core(capsys, "index", "--storage", storage, "--index", where)
    assert code == 0 and "31 runs; 1 new or changed, 0 gone, 1 skipped (not runs)" in out
    assert err.count("\n") == 1 and err.startswith(f"perf-core: warning: skipped {broken}: not valid JSON")
    code, _, err = perf_core(capsys, "index", "--storage", tmp_path / "nothing", "--index", where)
    assert code == 2 and "no history yet" in err


@pytest.mark.parametrize("kind", ["run json", "text", "folder"])
def test_an_index_the_user_names_that_is_no_index_is_refused_and_left_as_it_is(storage, tmp_path, capsys, kind):
    """A file named by --index is the user's: never set aside and rebuilt as a damaged cache would be."""
    named = tmp_path / "mine"
    if kind == "folder":
        named.mkdir()
    else:
        named.write_bytes(records.find_files(storage)[0].read_bytes() if kind == "run json" else b"my notes\n")
    before = snapshot(tmp_path)
    code, _, err = perf_core(capsys, "plot", "--storage", storage, "--index", named, "--out", tmp_path / "p.png")
    assert code == 2 and err.count("\n") == 1 and f"--index {named}" in err, err
    assert snapshot(tmp_path) == before and not list(tmp_path.glob("*.corrupt"))
