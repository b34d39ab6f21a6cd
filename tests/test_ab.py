"""`perf-core ab`: the interleaving, the decision over runs, and every way a side can be wrong.

No test here asserts on speed: real runs are only used to check what the gate does with them.
"""

import dataclasses
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from helpers import ROOT, SCRATCH_ADDOPTS, git, perf_core

from perf_core import cli
from perf_core.analysis import ab, gate, lanes, launch, sequential, stats, view
from perf_core.analysis.synthetic import run_document, write_run
from perf_core.errors import HistoryError, UsageError

PROJECT_FILES = ["perf_core", "tests/test_latency.py", "conftest.py", "pyproject.toml"]
# One lane: the lent fork servers are two, and a pair's runs timed together take both.
TINY = ["--kernel", "matmul", "--variant", "eager", "--tokens", "16", "--pairs", "6", "--cpus", "1"]
TINY_RUNS = "--benchmark-max-time=0.005 --benchmark-min-rounds=3"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch git repository holding this project's suite, one commit."""
    monkeypatch.setenv("PYTEST_ADDOPTS", SCRATCH_ADDOPTS)  # read by every suite run ab starts
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in PROJECT_FILES:
        source = ROOT / name
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            subprocess.run(["cp", "-r", str(source), str(target)], check=True)
        else:
            target.write_text(source.read_text())
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "suite")
    return repo


def test_schedule_alternates_who_goes_first():
    assert lanes.schedule(3) == [("base", 1), ("head", 1), ("head", 2), ("base", 2), ("base", 3), ("head", 3)]


def test_decision_uses_each_run_as_one_sample(tmp_path):
    paths = {"base": [], "head": []}
    for i in range(5):
        for side, factor in (("base", 1.0), ("head", 1.2)):
            document = run_document("a" * 40, datetime(2026, 1, 1), {"attention-compiled-16": factor}, seed=i)
            paths[side].append(write_run(tmp_path / side, i, document))
    verdicts = {d.verdict.name: d.verdict for d in ab.verdicts(ab.collect(paths), threshold=0.05, alpha=0.05)}
    slow = verdicts["attention-compiled-16"]
    assert (slow.n_base, slow.n_head, slow.verdict) == (5, 5, "regression")
    assert slow.ratio == pytest.approx(1.2, abs=0.02)
    assert verdicts["matmul-compiled-16"].verdict == "unchanged"


def test_latency_metric_decides_on_the_isolated_latency_and_cpu_runs_have_none(tmp_path):
    paths = {"base": [], "head": []}
    for i in range(5):
        for side, slower in (("base", 1.0), ("head", 1.3)):
            document = run_document("a" * 40, datetime(2026, 1, 1), seed=i)
            for bench in document["benchmarks"]:  # steady figures alike, latency 30% slower on head
                bench["extra_info"]["latency_s"] = bench["stats"]["median"] * 1.5 * slower
            paths[side].append(write_run(tmp_path / side, i, document))
    runs = ab.collect(paths)
    steady = {d.verdict.name: d.verdict.verdict for d in ab.verdicts(runs, 0.05, 0.05)}
    latency = {d.verdict.name: d.verdict for d in ab.verdicts(runs, 0.05, 0.05, metric="latency")}
    assert set(steady.values()) == {"unchanged"}
    assert {v.verdict for v in latency.values()} == {"regression"}
    assert latency["matmul-compiled-16"].ratio == pytest.approx(1.3, rel=0.01)
    cpu = {
        side: [write_run(tmp_path / f"cpu-{side}", 1, run_document("a" * 40, datetime(2026, 1, 1)))] for side in paths
    }
    with pytest.raises(ab.SideError, match=r"^base: attention-compiled-16 has no latency figure"):
        ab.verdicts(ab.collect(cpu), 0.05, 0.05, metric="latency")


def test_missing_benchmark_on_one_side_names_that_side(tmp_path):
    full = run_document("a" * 40, datetime(2026, 1, 1))
    partial = run_document("a" * 40, datetime(2026, 1, 1), names=("matmul-eager-16",))
    files = {"base": [write_run(tmp_path / "b", 1, full)], "head": [write_run(tmp_path / "h", 1, partial)]}
    with pytest.raises(ab.SideError, match=r"^head: results are missing benchmarks the base has: attention-"):
        ab.collect(files)


def test_the_collection_pass_gives_the_device_and_the_benchmark_files_each_run_collects(project, fork_server):
    checked = ab.check_side(fork_server, project, [], "base")
    assert fork_server.forks == (os.environ.get("PERF_CORE_NO_FORK") != "1")  # CUDA never initialised in it
    assert dataclasses.replace(checked, benchmarks=()) == ab.Checked("cpu", 1, ("tests/test_latency.py",), True)
    assert "matmul-compiled-16" in checked.benchmarks  # the ids it collected: a pair waits only at shared ones


def test_a_server_that_will_not_fork_spawns_each_run_fresh(project, monkeypatch):
    """PERF_CORE_NO_FORK=1, as where CUDA was initialised in the server: the same answer, from a fresh process."""
    monkeypatch.setenv("PERF_CORE_NO_FORK", "1")
    with launch.ForkServer() as server:
        checked = ab.check_side(server, project, [], "base")
        assert not server.forks
    assert dataclasses.replace(checked, benchmarks=()) == ab.Checked("cpu", 1, ("tests/test_latency.py",), True)
    assert "matmul-compiled-16" in checked.benchmarks  # the ids it collected: a pair waits only at shared ones


def test_same_commit_both_sides_runs_interleaved_and_cleans_up(
    project, lent_fork_server, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(project)
    report = tmp_path / "report.md"
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    out = tmp_path / "runs"
    args = [
        "ab",
        "HEAD",
        "HEAD",
        *TINY,
        "--pairs",
        "4",
        "--apart",
        "--out",
        out,
        "--markdown",
        report,
        "--pytest-args",
        TINY_RUNS,
    ]
    code, stdout, err = perf_core(capsys, *args)
    assert code in (0, 1), err  # which one is the machine's business; the gate's shape is ours
    runs = [f"{s}-{i:02d}.json" for s in ("base", "head") for i in range(1, 5)]
    assert sorted(p.name for p in out.iterdir()) == sorted([*runs, ab.SETTINGS_FILE])
    settings = json.loads((out / ab.SETTINGS_FILE).read_text())  # how it decided, for report --ab
    assert settings["pairs"] == 4 and settings["metric"] == "steady" and settings["alpha"] == 0.05
    assert (settings["minimum"], settings["levels"], settings["family"]) == (4, [0.05], True)  # the plan's own
    progress = [line for line in err.splitlines() if line.startswith("[")]
    assert [line.split()[1] for line in progress] == ["base", "head", "head", "base", "base", "head", "head", "base"]
    assert "s left" in progress[0]
    assert "matmul-eager-16" in stdout and "4/4 runs" in stdout
    assert "| matmul-eager-16 |" in report.read_text() and summary.read_text() == report.read_text()
    assert git(project, "worktree", "list").count("\n") == 0  # only the main checkout is left
    assert git(project, "status", "--porcelain") == ""


def test_on_the_cpu_a_pairs_runs_are_timed_together_and_read_as_pairs(
    project, lent_fork_server, tmp_path, capsys, monkeypatch
):
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.chdir(project)
    out = tmp_path / "runs"
    args = ["ab", "HEAD", "HEAD", *TINY, "--cpus", "1", "--out", out, "--pytest-args", TINY_RUNS]
    code, stdout, err = perf_core(capsys, *args)  # one lane: the lent servers are two
    assert code in (0, 1), err
    assert "ab: each pair's runs together on one core" in err and "ab: at most 6 pairs" in err
    settings = json.loads((out / ab.SETTINGS_FILE).read_text())
    assert (settings["paired"], settings["minimum"], settings["levels"]) == (True, 6, [0.05])
    assert "6/6 pairs" in stdout and "6 of at most 6 pairs timed together" in stdout
    for path in out.glob("*-0[1-6].json"):
        (bench,) = json.loads(path.read_text())["benchmarks"]
        assert bench["options"]["timer"] == "thread_time"
    assert list(temp.iterdir()) == []  # the barrier folders and the worktrees are gone
    assert git(project, "worktree", "list").count("\n") == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ab", "nosuchref"], "base: 'nosuchref' is not a commit"),
        (["ab", "HEAD", "nosuchref"], "head: 'nosuchref' is not a commit"),
        (
            ["ab", "HEAD", "--apart", "--pairs", "3"],
            "--pairs 3: with 3 runs a side no difference can be significant at --alpha 0.05",
        ),
        (
            ["ab", "HEAD", "--apart", "--pairs", "2"],
            "--pairs 2: the gate's test takes at least 3 runs a side; use at least 4",
        ),
        (["ab", "HEAD", "--apart", "--pairs", "6", "--alpha", "0.001"], "use at least 7"),
        # No GPU listed here: the gate will time pairs together, and its plan answers at once.
        (
            ["ab", "HEAD", "--pairs", "5"],
            "--pairs 5: with 5 pairs timed together no difference can be significant at --alpha 0.05"
            " (smallest p 0.0625); use at least 6 (or --apart: pairs one after the other)",
        ),
        (["ab", "HEAD", "--alpha", "0.001"], "with 6 pairs timed together no difference can be significant"),
    ],
)
def test_bad_sides_are_one_line_and_exit_2(project, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(project)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU listed: the CPU's mode, wherever the test runs
    code, _, err = perf_core(capsys, *argv)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err


def test_not_a_git_repository(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = perf_core(capsys, "ab", "HEAD")
    assert code == 2 and "is not a git repository" in err


def test_dirty_tree_with_head_named_is_refused(project, capsys, monkeypatch):
    monkeypatch.chdir(project)
    (project / "conftest.py").write_text((project / "conftest.py").read_text() + "\n# edited\n")
    code, _, err = perf_core(capsys, "ab", "HEAD", "HEAD")
    assert code == 2 and "head: the working tree has uncommitted changes" in err


def test_a_side_whose_suite_fails_is_named_and_worktrees_are_removed(
    project, lent_fork_server, tmp_path, capsys, monkeypatch
):
    monkeypatch.chdir(project)
    base = git(project, "rev-parse", "HEAD")
    kernels = project / "perf_core" / "measure" / "kernels.py"
    kernels.write_text(kernels.read_text().replace("return x @ self.weight", "return (x @ self.weight).sum() + None"))
    git(project, "commit", "-qam", "broken matmul")
    code, _, err = perf_core(capsys, "ab", base, "HEAD", *TINY, "--out", tmp_path / "runs", "--pytest-args", TINY_RUNS)
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("perf-core: error: head: the suite failed"), err
    assert git(project, "worktree", "list").count("\n") == 0


SLOW_ATTENTION_CHECK = """
from perf_core.measure import core, kernels
from perf_core.measure.workload import Workload


def test_the_fixture_applies():
    core.prepare(Workload("attention", 8, 32, 4), "compiled")  # compiles and checks against eager
    assert type(kernels.build(Workload("attention", 8, 32, 4))[0]).__name__ == "_SlowAttention"
"""


def test_slow_attention_fixture_applies_by_name_and_still_matches_eager(project, fork_server):
    kernels = project / "perf_core" / "measure" / "kernels.py"
    kernels.write_text(kernels.read_text() + "\n" + (ROOT / "tests" / "fixtures" / "slow_attention.py").read_text())
    (project / "check_slow_attention.py").write_text(SLOW_ATTENTION_CHECK)
    # A pytest of its own in the scratch commit (its kernels.py imported, not this checkout's), forked
    # from the session's server as ab's runs are.
    args = ["check_slow_attention.py", "-q", "-p", "no:cacheprovider"]
    done = fork_server.run(project, args, launch.env_for(project))
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]


def test_a_failed_collection_pass_says_what_pytests_exit_code_means():
    """A side whose suite crashes while collecting (a newcomer's missing plugin gave exit 3) is not
    reported as refusing options; each code is named with itself."""
    assert ab.collection_failure(3) == "the suite crashed (a pytest internal error) (exit 3)"
    assert ab.collection_failure(4) == "the suite refuses these options (exit 4)"
    assert ab.collection_failure(5) == "the suite collected no benchmark (exit 5)"
    assert ab.collection_failure(1) == "the suite could not collect (exit 1)"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--metric", "latency"], "--metric latency: the suite runs on cpu here"),
        (
            ["--tokens", "abc"],
            "base: the suite refuses these options (exit 4): ERROR: --tokens: 'abc' is not a positive",
        ),
    ],
)
def test_what_can_be_checked_is_refused_before_any_run_leaving_no_folder(
    project, lent_fork_server, capsys, monkeypatch, argv, message
):
    monkeypatch.chdir(project)
    code, _, err = perf_core(capsys, "ab", "HEAD", *argv)
    assert code == 2 and message in err.strip().splitlines()[-1], err
    assert "[1/" not in err  # no timed run started
    assert not (project / ".benchmarks-ab").exists()
    assert git(project, "worktree", "list").count("\n") == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_ends_the_gate_with_128_plus_it_and_removes_worktrees_and_temp_folders(
    project, lent_fork_server, tmp_path, capsys, monkeypatch, signum
):
    """In process, the signal sent as the first timed run starts (after the collection passes, inside
    the worktrees): SIGTERM and SIGHUP take the same path as Ctrl-C. The real gate, a process whose
    running suite a signal must end, is the next test's (one signal: the path is the same)."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.chdir(project)
    before = signal.getsignal(signum)

    sent = []

    def signalled(*args, **kwargs):
        if not sent:  # once: a pair's runs timed together call this from two threads at once
            sent.append(signum)
            os.kill(os.getpid(), signum)  # its handler raises in the main thread, at its next bytecode
        time.sleep(1)  # a run's thread (a pair timed together) waits here while the main thread ends the gate
        raise AssertionError(f"{signal.Signals(signum).name} did not stop the gate")

    monkeypatch.setattr(ab, "run_side", signalled)
    code, _, err = perf_core(capsys, "ab", "HEAD", "HEAD", *TINY, "--out", tmp_path / "runs")
    assert code == 128 + signum, err
    assert f"stopped by {signal.Signals(signum).name}" in err
    assert list(temp.iterdir()) == []  # the worktrees' temporary folder is gone
    assert git(project, "worktree", "list").count("\n") == 0
    assert signal.getsignal(signum) == before  # the gate gave the handler back


def test_sigterm_ends_the_suite_and_removes_worktrees_and_temp_folders(project, tmp_path):
    signum = signal.SIGTERM
    temp = tmp_path / "tmp"
    temp.mkdir()
    out = tmp_path / "runs"
    env = dict(os.environ, TMPDIR=str(temp))
    command = [sys.executable, "-m", "perf_core.cli", "ab", "HEAD", "HEAD", *TINY, "--out", str(out)]
    gate = subprocess.Popen(command, cwd=project, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not out.exists() and time.monotonic() < deadline:  # the folder appears once the timed runs start
        time.sleep(0.2)
    # Polled, not one look after a fixed sleep: between two short runs there is a moment with none going.
    while not (children := suite_processes(temp)) and gate.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert gate.poll() is None, gate.stderr.read()
    assert children, "a timed suite should be running"
    gate.send_signal(signum)
    assert gate.wait(60) == 128 + signum
    assert f"stopped by {signal.Signals(signum).name}" in gate.stderr.read()
    assert not suite_processes(temp)
    assert list(temp.iterdir()) == []  # the worktrees' temporary folder is gone
    assert git(project, "worktree", "list").count("\n") == 0


def suite_processes(temp: Path) -> list[int]:
    """Processes whose command line or working folder lies under `temp` (the worktrees)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if cwd.startswith(str(temp)):
            found.append(int(proc.name))
    return found


def test_pr_comment_leads_with_one_line_and_folds_the_unchanged(tmp_path):
    paths = {"base": [], "head": []}
    slower = {"attention-compiled-16": 1.3, "matmul-compiled-16": 1.25, "matmul-eager-16": 0.7}
    for i in range(5):
        for side, factors in (("base", {}), ("head", slower)):
            paths[side].append(
                write_run(tmp_path / side, i, run_document("a" * 40, datetime(2026, 1, 1), factors, seed=i))
            )
    decided = ab.verdicts(ab.collect(paths), 0.05, 0.05)
    text = ab.markdown(decided, "perf-core ab: main -> pr", 0.05, "https://example.org/run/1")
    lines = text.splitlines()
    assert lines[0] == ab.COMMENT_MARKER
    assert lines[1] == "**2 regressions, 1 improvement, 21 unchanged**"
    changed_table = text.split("<details>")[0]
    assert "| attention-compiled-16 |" in changed_table and "| matmul-eager-16 |" in changed_table
    assert "+30.0%" in changed_table and "| attention-eager-16 |" not in changed_table
    assert "<summary>21 unchanged</summary>" in text and "| attention-eager-16 |" in text.split("<details>")[1]
    assert lines[-1] == "[The runs and the report](https://example.org/run/1)"
    same = ab.markdown(ab.verdicts(ab.collect({"base": paths["base"], "head": paths["base"]}), 0.05, 0.05), "t", 0.05)
    assert same.splitlines()[1] == "No change beyond 5% (24 benchmarks)"


@pytest.mark.parametrize(
    ("argv", "threshold"),
    [
        (["ab", "HEAD"], gate.THRESHOLD),
        (["ab", "HEAD", "--metric", "device"], gate.DEVICE_THRESHOLD),
        (["ab", "HEAD", "--metric", "device", "--threshold", "0.1"], 0.1),
        (["compare", "a", "b", "--metric", "device"], gate.DEVICE_THRESHOLD),
        (["compare", "a", "b", "--metric", "latency"], gate.THRESHOLD),
    ],
)
def test_device_time_defaults_to_its_own_threshold_and_an_explicit_one_wins(argv, threshold):
    args = cli.parse_args(argv)
    assert gate.threshold_for(args.metric, args.threshold) == threshold


def test_ab_json_gives_the_verdict_rows_naming_their_machine(tmp_path, capsys, monkeypatch):
    paths = {"base": [], "head": []}
    for i in range(4):
        for side in paths:
            document = run_document("a" * 40, datetime(2026, 1, 1), {"attention-compiled-16": 1.0}, seed=i)
            paths[side].append(write_run(tmp_path / side, i, document))
    # The suite's runs are stood in for: what is checked is what ab prints from them.
    monkeypatch.setattr(ab, "resolve", lambda repo, base, head: (tmp_path, "a" * 40, "b" * 40, "head"))
    looked = []

    def run_pairs(top, shas, maximum, extra, metric, out, more, *rest):
        start = rest[-1]
        assert start(False) == 5  # apart: 5 pairs at most, the first look at 4
        looked.append(more({side: files[:4] for side, files in paths.items()}))
        return paths

    monkeypatch.setattr(ab, "run_pairs", run_pairs)
    code, out, _ = perf_core(capsys, "ab", "base", "head", "--json", "--out", tmp_path / "out")
    rows = json.loads(out)
    machine = ab.collect(paths)["base"][0].machine.label
    assert code == 0 and len(rows) == len(ab.collect(paths)["base"][0].results)
    assert {(row["machine"], row["n_base"], row["unit"]) for row in rows} == {(machine, 4, "runs")}
    assert looked == [False]  # the look at 4 pairs was taken (and settled every benchmark: no more pairs)


def test_each_pair_runs_on_one_gpu_pair_i_on_gpu_i_mod_n_in_the_interleaved_order():
    spread = lanes.spread(1, 5, ["0", "1"])
    assert spread == [
        ("0", [("base", 1), ("head", 1), ("base", 3), ("head", 3), ("base", 5), ("head", 5)]),
        ("1", [("head", 2), ("base", 2), ("head", 4), ("base", 4)]),
    ]
    # a later round starts where the last one stopped, on the GPU its pair number gives
    assert lanes.spread(3, 4, ["0", "1"]) == [("0", [("base", 3), ("head", 3)]), ("1", [("head", 4), ("base", 4)])]
    assert lanes.spread(1, 2, [None]) == [(None, lanes.schedule(2))]


def test_cpu_lanes_pin_each_lane_to_its_own_cores_as_many_as_fit_and_refuse_more():
    assert lanes.cpu_lanes(None, [0, 1], 1) == [lanes.Lane()]  # one by default, unpinned
    assert lanes.cpu_lanes(2, [0, 1], 1) == [lanes.Lane(cores=(0,)), lanes.Lane(cores=(1,))]
    assert lanes.cpu_lanes(2, [3, 2, 1, 0], 2) == [lanes.Lane(cores=(0, 1)), lanes.Lane(cores=(2, 3))]
    assert lanes.cpu_lanes(1, [0, 1, 2], 2) == [lanes.Lane()]
    with pytest.raises(UsageError, match=r"^--cpus: 3 asked for; 2 core\(s\) here hold 2 of 1 thread"):
        lanes.cpu_lanes(3, [0, 1], 1)
    with pytest.raises(UsageError, match=r"^--cpus: 2 asked for; 3 core\(s\) here hold 1 of 2 thread"):
        lanes.cpu_lanes(2, [0, 1, 2], 2)
    if len(os.sched_getaffinity(0)) >= 2:
        assert len(lanes.choose_lanes(None, 2, "cpu", 1, 5)) == 2
    assert len(lanes.choose_lanes(None, 2, "cpu", 1, 1)) == 1  # never more lanes than pairs
    with pytest.raises(UsageError, match=r"^--cpus: the suite runs on cuda here"):
        lanes.choose_lanes(None, 2, "cuda", 1, 5)
    with pytest.raises(UsageError, match=r"^--gpus: the suite runs on cpu here"):
        lanes.choose_lanes(1, None, "cpu", 1, 5)


def test_gpus_default_to_all_visible_and_are_refused_only_when_asked_for_off_cuda():
    assert lanes.choose_gpus(None, "cuda", ["0", "1", "2"]) == ["0", "1", "2"]
    assert lanes.choose_gpus(2, "cuda", ["GPU-a", "GPU-b", "GPU-c"]) == ["GPU-a", "GPU-b"]
    assert lanes.choose_gpus(None, "cpu", []) == [None]
    with pytest.raises(UsageError, match=r"^--gpus: the suite runs on cpu here"):
        lanes.choose_gpus(1, "cpu", [])
    with pytest.raises(UsageError, match=r"^--gpus: 3 asked for, 2 visible"):
        lanes.choose_gpus(3, "cuda", ["0", "1"])


def test_each_run_measures_the_metric_only_and_only_the_first_pair_profiles_kernels():
    assert ab.run_args("device", 1) == ["--figures=device"]
    assert ab.run_args("steady", 2) == ["--figures=steady", "--no-breakdown"]


class IdleServer:
    """Stands in for launch.ForkServer where the runs themselves are stood in for: nothing to fork."""

    def wait_ready(self):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def test_the_runner_stops_when_told_and_keeps_each_pair_on_its_gpu(tmp_path, monkeypatch):
    """A fake executor: the worktrees, the collection pass and the suite runs are stood in for."""
    ran = []

    @contextmanager
    def trees(top, shas):
        yield {side: tmp_path / side for side in shas}

    def fake_run(server, tree, out, args, side, lane):
        pair = int(out.stem.split("-")[1])
        ran.append((side, pair, lane.gpu, args))
        write_run(out.parent, pair, run_document("a" * 40, datetime(2026, 1, 1), seed=pair)).rename(out)

    monkeypatch.setattr(ab, "worktrees", trees)
    monkeypatch.setattr(ab.launch, "ForkServer", IdleServer)
    monkeypatch.setattr(ab, "check_side", lambda server, tree, args, side: ab.Checked("cuda", 1, (f"{side}/bench.py",)))
    monkeypatch.setattr(lanes, "visible_gpus", lambda: ["0", "1"])
    monkeypatch.setattr(ab, "run_side", fake_run)
    looked = []

    def more(files):
        looked.append(len(files["base"]))
        return len(files["base"]) < 4

    files = ab.run_pairs(tmp_path, {"base": "b", "head": "h"}, 8, ["--x"], "device", tmp_path / "out", more)
    assert looked == [2, 4]  # asked after each round of two pairs (one a GPU), stopped when told
    assert [p.name for p in files["base"]] == [f"base-{i:02d}.json" for i in range(1, 5)]
    assert {(pair, gpu) for _, pair, gpu, _ in ran} == {(1, "0"), (2, "1"), (3, "0"), (4, "1")}
    for pair in range(1, 5):  # both sides of a pair on one GPU
        assert len({gpu for _, p, gpu, _ in ran if p == pair}) == 1
    assert all(args[0] == "--figures=device" and args[-2] == "--x" for *_, args in ran)
    assert all(args[-1] == f"{side}/bench.py" for side, *_, args in ran)  # its side's benchmark files only
    assert [("--no-breakdown" in args) for _, pair, _, args in ran if pair == 1] == [False, False]


def test_the_stop_line_says_why_and_counts_the_verdicts():
    rule = sequential.plan(0.05, 5)
    tight = sequential.look([1.0, 1.001, 0.999, 1.0], [1.0, 1.0, 1.001, 0.999], rule, 0.05)
    line = ab.stop_line({"a": tight, "b": tight}, rule, 4)
    assert line == "stopped after 4 of at most 5 pairs: every benchmark settled (2 unchanged)"
    wide = sequential.look([1.0, 1.3, 0.8, 1.1, 0.9], [1.2, 0.9, 1.0, 1.4, 0.7], rule, 0.05)
    assert ab.stop_line({"a": tight, "b": wide}, rule, 5).startswith(
        "ran the maximum of 5 pairs: 1 benchmark(s) still open (b), decided at the last look's level 0.03175"
        " (family-wise 0.02143)"
    )


def attention_20_percent_slower(folder):
    """Five synthetic runs a side, attention-compiled-16 20% slower in head: the runs as ab collects them."""
    paths = {"base": [], "head": []}
    for i in range(5):
        for side, factor in (("base", 1.0), ("head", 1.2)):
            document = run_document("a" * 40, datetime(2026, 1, 1), {"attention-compiled-16": factor}, seed=i)
            paths[side].append(write_run(folder / side, i, document))
    return ab.collect(paths)


def test_the_reported_verdict_is_the_stopping_rules_at_its_last_look(tmp_path):
    """Synthetic runs: attention 20% slower settles as a regression at the minimum; ab's table says the
    same through stats.decide at that look's level, over that look's pairs."""
    runs = attention_20_percent_slower(tmp_path)
    rule = sequential.plan(0.05, 5)
    looks = sequential.looks_upto(ab.samples(runs, "steady"), rule, 0.05)
    decided = {d.verdict.name: d.verdict for d in ab.sequential_verdicts(runs, looks, rule, 0.05, "steady")}
    assert looks["attention-compiled-16"].verdict == sequential.REGRESSION
    slow = decided["attention-compiled-16"]
    assert (slow.verdict, slow.n_base) == ("regression", looks["attention-compiled-16"].pairs)
    for name, seen in looks.items():
        if seen.verdict in (sequential.REGRESSION, sequential.IMPROVEMENT):
            assert decided[name].verdict == seen.verdict


def test_a_test_that_decides_with_two_runs_a_side_still_reports_through_the_runs(tmp_path, monkeypatch):
    """Another test in stats (Welch's t on log times, whose smallest p is 0 from 2 a side, interim
    boundary 0.001): a clear regression is reported through the runs themselves (gate.decide_all from
    stats.MIN_RUNS on), as a regression (exit 1), not as the spread rule's "undecided" of fewer runs,
    and `--pairs` below MIN_RUNS is refused. The family-wise permutation test reaches 0.001 at no size
    up to 5 (its smallest p 2 / C(2n, n): 0.1, 0.029, 0.0079), so the plan keeps no interim look and
    the regression settles at the last look, alpha whole."""
    welch = functools.partial(scipy.stats.ttest_ind, equal_var=False)

    def bounds(base, head, level):
        low, high = welch(np.log(head), np.log(base)).confidence_interval(1 - level)
        return float(np.exp(low)), float(np.exp(high))

    monkeypatch.setattr(stats, "two_sample_p", lambda base, head: float(welch(np.log(head), np.log(base)).pvalue))
    monkeypatch.setattr(stats, "smallest_p", lambda n_base, n_head: 0.0 if min(n_base, n_head) >= 2 else 1.0)
    monkeypatch.setattr(stats, "interim_level", lambda n: 0.001)
    monkeypatch.setattr(stats, "ratio_bounds", bounds)
    runs = attention_20_percent_slower(tmp_path)
    rule = sequential.plan(0.05, 5)
    assert (rule.minimum, rule.maximum, rule.levels) == (5, 5, (0.05,))
    looks = sequential.looks_upto(ab.samples(runs, "steady"), rule, 0.05)
    decided = ab.sequential_verdicts(runs, looks, rule, 0.05, "steady")
    slow = next(d for d in decided if d.verdict.name == "attention-compiled-16")
    assert (slow.verdict.verdict, slow.unit, slow.verdict.n_base) == ("regression", "runs", 5)
    assert gate.exit_code(decided) == 1
    with pytest.raises(UsageError, match=f"use at least {stats.MIN_RUNS}"):
        sequential.plan(0.05, stats.MIN_RUNS - 1)


def test_a_run_failing_on_one_gpu_stops_the_gate_with_its_sides_error(tmp_path, monkeypatch):
    @contextmanager
    def trees(top, shas):
        yield {side: tmp_path / side for side in shas}

    def fake_run(server, tree, out, args, side, lane):
        if lane.gpu == "1":
            raise ab.SideError(f"{side}: the suite failed (exit 1): boom")
        write_run(out.parent, 1, run_document("a" * 40, datetime(2026, 1, 1))).rename(out)

    monkeypatch.setattr(ab, "worktrees", trees)
    monkeypatch.setattr(ab.launch, "ForkServer", IdleServer)
    monkeypatch.setattr(ab, "check_side", lambda server, tree, args, side: ab.Checked("cuda", 1, ()))
    monkeypatch.setattr(lanes, "visible_gpus", lambda: ["0", "1"])
    monkeypatch.setattr(ab, "run_side", fake_run)
    with pytest.raises(ab.SideError, match=r"^head: the suite failed \(exit 1\): boom"):
        ab.run_pairs(tmp_path, {"base": "b", "head": "h"}, 4, [], "device", tmp_path / "out")
    assert not launch.stopping()  # the next gate in this process may start suites again


def test_the_first_lane_to_fail_is_the_error_raised_not_the_first_in_order():
    def run_lane(lane, jobs):
        if lane == "slow":
            time.sleep(0.5)
            raise ab.SideError("slow lane failed")
        raise ab.SideError("fast lane failed")

    with pytest.raises(ab.SideError, match=r"^fast lane failed$"):
        lanes.run_lanes(run_lane, [("slow", []), ("fast", [])])
    assert not launch.stopping()


def test_a_run_started_from_an_xdist_worker_is_a_session_of_its_own(monkeypatch, tmp_path):
    for name in launch.XDIST_VARIABLES:
        monkeypatch.setenv(name, "gw1")
    env = launch.env_for(tmp_path)
    assert not set(launch.XDIST_VARIABLES) & env.keys()  # else pytest-benchmark refuses --benchmark-only
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(tmp_path)


def test_a_change_the_family_wise_test_does_not_confirm_is_reported_unchanged_with_its_family_p():
    """The table reads as the looks decided: a rank-test regression whose family p misses the last
    look's family level is unchanged, and every row shows its family p."""
    rule = sequential.plan(0.05, 5)
    found = stats.Verdict("mlp-compiled-128", 1.0, 1.15, 1.15, 1.05, 1.3, 2 / 252, 5, 5, "regression")
    d = gate.Decided(found, 128, "runs")
    for family_p, verdict in ((0.3, "unchanged"), (2 / 252, "regression")):
        seen = sequential.Look(sequential.OPEN, 5, 1.15, 2 / 252, 1.05, 1.3, family_p)
        guarded = ab.family_guarded(d, seen, rule)
        assert (guarded.verdict.verdict, guarded.verdict.family_p) == (verdict, family_p)
        assert f"(family {family_p:.3g})" in view.verdict_rows([guarded])[0].p
    unguarded = ab.family_guarded(d, seen, dataclasses.replace(rule, family=False))
    assert unguarded == d  # a gate saved before the guard: as it decided then
    alone = sequential.Look(sequential.REGRESSION, 5, 1.15, 2 / 252, 1.05, 1.3, None)
    assert ab.family_guarded(d, alone, rule) == d and "family" not in view.verdict_rows([d])[0].p  # a lone one


def test_a_saved_gate_says_whether_it_used_the_family_guard(tmp_path):
    """ab writes "family": true; a folder saved before it (no key) is read without the guard, as that
    gate decided; anything else is not a settings file ab writes."""
    path = tmp_path / ab.SETTINGS_FILE
    rule = sequential.plan(0.05, 5)
    ab.save_settings(tmp_path, rule, 0.05, "steady")
    settings = json.loads(path.read_text())
    assert ab.saved_rule(path, settings) == rule and rule.family
    older = {key: value for key, value in settings.items() if key != "family"}
    assert (
        not ab.saved_rule(path, older).family
        and not ab.saved_rule(path, older | {"levels": None, "minimum": None}).family
    )
    with pytest.raises(HistoryError, match="levels or family or paired flag are not the ones"):
        ab.saved_rule(path, settings | {"family": "yes"})
    with pytest.raises(HistoryError, match="levels or family or paired flag are not the ones"):  # without levels too
        ab.saved_rule(path, older | {"levels": None, "minimum": None, "family": "yes"})
    # An alpha the family-wise test cannot reach at 12 pairs was a valid gate before it: still read.
    assert not ab.saved_rule(path, {"alpha": 4e-5, "pairs": 12, "threshold": 0.05, "metric": "steady"}).family
