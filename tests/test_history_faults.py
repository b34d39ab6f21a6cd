"""What a user's history throws at the reading commands (issue 20): damaged, foreign and newer files
among good ones, runs without a commit time, dirty re-runs, `--storage .`, a run file named in any
spelling of its path, and duplicates of every kind. Each answer is the same with and without the index."""

import contextlib
import io
import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from helpers import T0, perf_core, snapshot

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perf_core.analysis import index, output, records, select
from perf_core.analysis.synthetic import MACHINE, NAMES, commit_sha, run_document, write_history, write_run
from perf_core.cli import main
from perf_core.contract import FORMAT_KEY, FORMAT_VERSION
from perf_core.measure.plugin import pytest_benchmark_update_commit_info

INDEXING = [[], ["--no-index"]]
MACHINE_DIR = "Linux-CPython-3.11-64bit"


@pytest.fixture(autouse=True)
def _no_drawing(monkeypatch):
    """The answers compared are the commands' JSON and messages; saving a figure (~1 s of Agg
    drawing) is left out: test_history checks the files."""
    monkeypatch.setattr(output, "save_figure", lambda fig, path: None)
    yield
    __import__("matplotlib.pyplot").pyplot.close("all")  # save_figure closed them


def damaged() -> dict[str, tuple[str, str]]:
    """A file of each kind a history must survive: its text and what the warning says."""
    good = run_document(commit_sha(7), T0 + timedelta(hours=7))

    def edited(change) -> str:
        document = json.loads(json.dumps(good))
        change(document)
        return json.dumps(document)

    def twice(document):  # the same benchmark timed by a second test module
        document["benchmarks"].append(dict(document["benchmarks"][0]))

    return {
        "truncated": (json.dumps(good)[:20000], "not valid JSON"),
        "empty": ("", "empty file"),
        "foreign": (json.dumps({"results": [1, 2, 3]}), "not a pytest-benchmark file"),
        "newer": (
            edited(lambda d: d.update({FORMAT_KEY: FORMAT_VERSION + 1})),
            f"saved in format {FORMAT_VERSION + 1}, newer",
        ),
        "median-0": (edited(lambda d: d["benchmarks"][2]["stats"].update(median=0)), "invalid median (0.0)"),
        "two-of-a-name": (edited(twice), f"benchmark {NAMES[0]} appears twice in one run"),
    }


def with_damaged(storage: Path) -> dict[str, Path]:
    """Three good runs (commits 0-2) and one damaged file of each kind: {kind: its path}."""
    write_history(storage, 3, noise=0.01)
    paths = {}
    for number, (kind, (text, _)) in enumerate(sorted(damaged().items()), 90):
        paths[kind] = storage / MACHINE_DIR / f"{number:04d}_{kind}.json"
        paths[kind].write_text(text)
    return paths


COMMANDS = {
    "plot": ["plot", "--json", "-o", "{tmp}/p.png"],
    "trend": ["trend", "--json", "-o", "{tmp}/t.png"],
    "compare": ["compare", commit_sha(0)[:7], commit_sha(2)[:7], "--json"],
    "export": ["export", "--format", "bencher"],
    "report": ["report", "-o", "{tmp}/site"],
}


@pytest.mark.parametrize("where", INDEXING, ids=["index", "no-index"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_damaged_foreign_and_newer_files_are_left_out_named_and_counted(storage, tmp_path, capsys, command, where):
    clean = tmp_path / "clean"
    write_history(clean, 3, noise=0.01)
    bad = with_damaged(storage)
    before = snapshot(storage)
    argv = [a.format(tmp=tmp_path) for a in COMMANDS[command]]
    code, out, err = perf_core(capsys, *argv, "--storage", storage, *where)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("perf-core: warning: skipped ")]
    assert len(warnings) == len(bad)
    for kind, (_, message) in damaged().items():
        (line,) = [w for w in warnings if str(bad[kind]) in w]
        assert message in line, line
    assert f"perf-core: {len(bad)} files skipped; 3 runs read" in err.splitlines()
    if command != "report":  # the same answer as the history without them
        assert (code, out) == perf_core(capsys, *argv, "--storage", clean, *where)[:2]
    assert snapshot(storage) == before  # never rewritten, never deleted


@pytest.mark.parametrize("kind", sorted(damaged()))
def test_a_damaged_file_named_on_the_command_line_is_refused_with_its_reason(storage, tmp_path, capsys, kind):
    bad = with_damaged(storage)[kind]
    message = damaged()[kind][1]
    for where in INDEXING:
        for argv in (
            ["compare", bad, commit_sha(2)[:7]],
            ["compare", commit_sha(0)[:7], bad.name],
            ["plot", "--commit", bad, "-o", tmp_path / "p.png"],
            ["export", "--format", "bencher", "--commit", bad],
        ):
            code, _, err = perf_core(capsys, *argv, "--storage", storage, *where)
            last = err.strip().splitlines()[-1]
            assert code == 2 and last.startswith("perf-core: error: ") and message in last and bad.name in last


def test_files_that_cannot_be_read_at_all_are_left_out_the_same_way_with_and_without_the_index(storage, capsys):
    # Found by test_fuzz: through the index, a dangling symlink stopped the command (exit 2).
    write_history(storage, 3)
    dangling, folder = storage / MACHINE_DIR / "0050_gone.json", storage / MACHINE_DIR / "0051_folder.json"
    dangling.symlink_to(storage / "nowhere.json")
    folder.mkdir()
    for where in INDEXING:
        code, out, err = perf_core(capsys, "export", "--format", "bencher", "--storage", storage, *where)
        lines = err.strip().splitlines()
        assert code == 0 and json.loads(out) and lines[-1] == "perf-core: 2 files skipped; 3 runs read", err
        assert lines[0].startswith(f"perf-core: warning: skipped {dangling}: cannot be read")
        assert lines[1].startswith(f"perf-core: warning: skipped {folder}: cannot be read")


def test_a_history_of_only_damaged_files_is_one_line_and_exit_2(storage, capsys):
    (storage / MACHINE_DIR).mkdir(parents=True)
    (storage / MACHINE_DIR / "0001_x.json").write_text("{")
    for where in INDEXING:
        code, _, err = perf_core(capsys, "export", "--format", "bencher", "--storage", storage, *where)
        assert code == 2 and err.strip().splitlines()[-1].endswith("no readable run in the history (1 files skipped)")


def test_a_file_that_breaks_after_it_was_indexed_is_left_out_not_read_from_the_index(storage, capsys):
    paths = write_history(storage, 3)
    where = storage.parent / "idx.sqlite"
    assert len(index.read(storage, where).runs) == 3
    paths[1].write_text(paths[1].read_text()[:1000])
    found = index.read(storage, where)
    assert [run.path for run in found.runs] == [paths[0], paths[2]]
    assert [item.path for item in found.skipped] == [paths[1]] and "not valid JSON" in found.skipped[0].reason


# Runs saved without a commit time (no .git, or PERF_CORE_COMMIT without PERF_CORE_COMMIT_TIME) are
# ordered by their own save time: the newest run is newest, whatever its commit time says.
def test_a_run_without_a_commit_time_is_ordered_by_its_own_save_time(storage, tmp_path, capsys):
    write_history(storage, 3)  # commits 0-2, saved on 2026-01-01
    late = run_document("feature-x", T0 + timedelta(days=5), {name: 1.5 for name in NAMES}, seed=5)
    late["commit_info"]["time"] = None
    write_run(storage, 4, late)
    for where in INDEXING:
        runs = index.read(storage, None if where else storage.parent / "idx.sqlite").runs
        assert runs[-1].commit == "feature-x" and runs[-1].when == T0 + timedelta(days=5, minutes=5)
        code, out, err = perf_core(capsys, "plot", "--json", "-o", tmp_path / "p.png", "--storage", storage, *where)
        assert code == 0, err
        assert {row["commit"] for row in json.loads(out)} == {"feature"}  # Run.short: 7 characters
        code, out, _ = perf_core(capsys, "trend", "--json", "-o", tmp_path / "t.png", "--storage", storage, *where)
        points = json.loads(out)["series"][0]["points"]
        assert [p["commit"] for p in points] == [commit_sha(i)[:7] for i in range(3)] + ["feature"]
        code, _, err = perf_core(
            capsys, "export", "--format", "bencher", "-o", tmp_path / "e.json", "--storage", storage, *where
        )
        assert code == 0 and " of feature (" in err


def test_perf_core_commit_without_a_time_never_keeps_a_stale_gits_time(monkeypatch):
    monkeypatch.setenv("PERF_CORE_COMMIT", "c0ffee")
    monkeypatch.delenv("PERF_CORE_COMMIT_TIME", raising=False)
    stale = {"id": "0ldhead", "time": "2020-01-01T00:00:00+00:00", "author_time": "2020-01-01T00:00:00+00:00"}
    pytest_benchmark_update_commit_info(None, stale)
    assert (stale["id"], stale["time"], stale["author_time"]) == ("c0ffee", None, None)
    monkeypatch.setenv("PERF_CORE_COMMIT_TIME", "2026-11-26T10:00:00+00:00")
    pytest_benchmark_update_commit_info(None, stale)
    assert stale["time"] == stale["author_time"] == "2026-11-26T10:00:00+00:00"


# One rule for dirty runs: `C` names C's clean runs, `C+dirty` its dirty ones; never pooled.
def test_a_dirty_rerun_is_its_own_commit_in_every_command(storage, tmp_path, capsys):
    write_history(storage, 20, noise=0.01)
    base, head = commit_sha(18)[:7], commit_sha(19)[:7]
    slower = run_document(
        commit_sha(19), T0 + timedelta(hours=19), {n: 1.3 for n in NAMES}, seed=40, noise=0.01, dirty=True
    )
    write_run(storage, 41, slower)
    for where in INDEXING:
        code, out, err = perf_core(capsys, "compare", base, head, "--storage", storage, *where)
        assert code == 0 and f"vs head {head} (1 run(s))" in out, out + err
        code, out, _ = perf_core(capsys, "compare", base, head + "+dirty", "--storage", storage, "--json", *where)
        rows = json.loads(out)
        assert code == 1 and {row["ratio"] == pytest.approx(1.3, abs=0.05) for row in rows} == {True}
        exported = {}
        for name in (head, head + "+dirty"):
            code, out, _ = perf_core(
                capsys, "export", "--format", "bencher", "--commit", name, "--storage", storage, *where
            )
            # Export names carry the metric and machine: "attention-eager-16 [steady; ...]".
            (entry,) = (v for k, v in json.loads(out).items() if k.startswith(f"{NAMES[0]} ["))
            exported[name] = entry["latency"]["value"]
        assert exported[head + "+dirty"] / exported[head] == pytest.approx(1.3, abs=0.05)
        code, out, _ = perf_core(capsys, "trend", "--json", "-o", tmp_path / "t.png", "--storage", storage, *where)
        points = json.loads(out)["series"][0]["points"]
        assert [p["commit"] for p in points[-2:]] == [head, head + "+dirty"] and {p["runs"] for p in points} == {1}


def test_a_commit_of_dirty_runs_only_is_named_with_its_suffix():
    runs = [records.parse_run(Path("d.json"), json.dumps(run_document(commit_sha(3), T0, dirty=True)))]
    with pytest.raises(Exception, match=r"only dirty runs, named '0000003\+dirty'"):
        select.find_commit(runs, commit_sha(3)[:7])
    assert select.find_commit(runs, commit_sha(3)[:7] + "+dirty") == runs


# --storage . : the index keys files by their path under the history, whatever its spelling.
def test_storage_dot_keeps_every_machine(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "my hist"
    for device in ("H100", "H200"):
        machine = MACHINE | {"device_name": f"NVIDIA {device}", "cuda_version": "13.0"}
        for i in range(3):
            path = folder / device.lower() / f"run{i}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(run_document(commit_sha(i), T0 + timedelta(hours=i), machine=machine, seed=i)))
    pages = {}
    for storage, cwd in ((folder, tmp_path), (Path("."), folder), (Path("../my hist"), folder)):
        monkeypatch.chdir(cwd)
        for where in INDEXING:
            code, _, err = perf_core(capsys, "report", "--storage", storage, "-o", tmp_path / "site", *where)
            pages[str(storage), tuple(where)] = sorted(p.name for p in (tmp_path / "site").glob("machine-*.html"))
            assert code == 0 and "and 2 machine page(s)" in err, err
    assert set(map(tuple, pages.values())) == {("machine-1.html", "machine-2.html")}
    assert index.key_of(Path("."), Path("h100/run0.json")) == "h100/run0.json"
    assert index.key_of(Path("/a/my hist"), Path("/a/my hist/h200/run0.json")) == "h200/run0.json"


# A run file named by path: every spelling names the same run, with and without the index.
SPELLINGS = st.sampled_from(["as-stored", "name", "relative", "dot", "absolute", "symlink", "dot-dot"])
STORAGES = st.sampled_from(["relative", "dot-relative", "absolute", "trailing-slash", "symlink"])


def spell(kind: str, path: Path, root: Path) -> str:
    """`path` (absolute, under `root`, the working directory) spelled as `kind` says."""
    relative = path.relative_to(root)
    return {
        "name": path.name,
        "relative": str(relative),
        "dot": f"./{relative}",
        "absolute": str(path),
        "dot-dot": f"../{root.name}/{relative}",
    }[kind]


@settings(
    max_examples=int(os.environ.get("PERF_CORE_FUZZ_SPELLINGS", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=os.environ.get("PERF_CORE_FUZZ_SEED") is None,
)
@given(spelling=SPELLINGS, storage_spelling=STORAGES, where=st.sampled_from(INDEXING), pick=st.integers(0, 3))
def test_every_spelling_of_a_run_files_path_names_that_run(tmp_path_factory, spelling, storage_spelling, where, pick):
    root = tmp_path_factory.mktemp("spell") / "work dir"
    history = root / "my hist"
    paths = write_history(history, 4, noise=0.01)
    target = paths[pick]
    (root / "link to hist").symlink_to(history)
    storage = {
        "relative": "my hist",
        "dot-relative": "./my hist",
        "absolute": str(history),
        "trailing-slash": "my hist/",
        "symlink": "link to hist",
    }[storage_spelling]
    stored = Path(storage) / target.relative_to(history)
    if spelling == "as-stored":
        name = str(stored)
    elif spelling == "symlink":
        (root / "latest run.json").symlink_to(target)
        name = "latest run.json"
    else:
        name = spell(spelling, target, root)
    previous = Path.cwd()
    os.chdir(root)
    try:
        code, out = run_json(["compare", commit_sha(pick)[:7], name, "--storage", storage, "--json", *where])
    finally:
        os.chdir(previous)
    assert code == 0, out
    assert {row["n_base"] for row in out} == {1} and {row["ratio"] for row in out} == {1.0}  # the run against itself


def run_json(argv) -> tuple[int, object]:
    """`perf-core ARGV` in this process (no capsys under Hypothesis): its code and --json output, or stderr."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main([str(a) for a in argv])
    return code, json.loads(stdout.getvalue()) if code in (0, 1) else stderr.getvalue()


# Duplicates: counted once with a warning naming both files, or the run refused; never pooled.
@pytest.mark.parametrize("how", ["copy", "symlink"])
def test_the_same_run_reached_twice_is_counted_once(storage, capsys, how):
    paths = write_history(storage, 3)
    twin = storage / MACHINE_DIR / "0009_again.json"
    if how == "copy":
        twin.write_bytes(paths[2].read_bytes())
    else:
        twin.symlink_to(paths[2])
    for where in INDEXING:
        code, out, err = perf_core(
            capsys, "compare", commit_sha(0)[:7], commit_sha(2)[:7], "--storage", storage, *where
        )
        assert code == 0 and "(1 run(s))" in out.splitlines()[1], out
        assert f"perf-core: warning: skipped {twin}: the same run as {paths[2]}; counted once" in err.splitlines()
        assert "perf-core: 1 file skipped; 3 runs read" in err.splitlines()
        code, out, err = perf_core(capsys, "compare", commit_sha(0)[:7], twin, "--storage", storage, *where)
        assert code == 0 and "(1 run(s))" in out.splitlines()[1], err  # named, the copy is its run


def test_two_benchmarks_of_one_name_in_a_run_leave_the_run_out_never_a_silent_winner(storage, capsys):
    write_history(storage, 2)
    document = run_document(commit_sha(2), T0 + timedelta(hours=2))
    other_module = dict(document["benchmarks"][0])
    other_module["stats"] = dict(other_module["stats"], median=other_module["stats"]["median"] * 2)
    document["benchmarks"].append(other_module)  # the second module's, twice as slow, saved last
    path = write_run(storage, 3, document)
    for where in INDEXING:
        code, _, err = perf_core(capsys, "compare", commit_sha(0)[:7], commit_sha(2)[:7], "--storage", storage, *where)
        assert code == 2 and f"unknown commit or run '{commit_sha(2)[:7]}'" in err.splitlines()[-1]
        assert f"perf-core: warning: skipped {path}: benchmark {NAMES[0]} appears twice in one run" in err
        code, _, err = perf_core(capsys, "compare", commit_sha(0)[:7], path, "--storage", storage, *where)
        assert code == 2 and "appears twice in one run" in err.splitlines()[-1]


def test_a_run_file_gone_after_the_verdict_keeps_its_indexed_run_and_warns(storage, capsys):
    # compare and report read the compared runs' files again for their breakdowns (the index keeps
    # none): a file removed or damaged in between must not turn a reached verdict into exit 2.
    from perf_core.commands import history

    write_history(storage, 3)
    runs = records.load_runs(records.find_files(storage))
    runs[1].path.write_text("{")  # damaged after the history was read
    again = history.with_breakdowns(runs)
    assert [run.path for run in again] == [run.path for run in runs] and again[1] is runs[1]
    warnings = capsys.readouterr().err.strip().splitlines()
    assert len(warnings) == 1 and runs[1].path.name in warnings[0] and "no breakdown" in warnings[0]
