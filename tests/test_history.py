"""The history reader and the perf-core commands over synthetic pytest-benchmark files."""

import json
import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from helpers import T0, perf_core, snapshot

from perf_core import contract
from perf_core.analysis import records, select
from perf_core.analysis.synthetic import MACHINE, NAMES, commit_sha, run_document, write_history, write_run

MACHINE_LABEL = "Test CPU 9000 | torch 2.13.0+cpu | Python 3.11 | 1 thread"


def test_runs_are_ordered_by_commit_time_and_a_commits_runs_are_pooled(storage):
    write_run(storage, 1, run_document(commit_sha(2), T0 + timedelta(hours=2), seed=1))
    write_run(storage, 2, run_document(commit_sha(1), T0 + timedelta(hours=1), seed=2))
    write_run(storage, 3, run_document(commit_sha(2), T0 + timedelta(hours=2), {"matmul-eager-16": 1.1}, seed=3))
    runs = records.load_runs(records.find_files(storage))
    groups = select.by_commit(runs)
    assert [commit for commit, _ in groups] == [commit_sha(1)[:7], commit_sha(2)[:7]]
    assert len(groups[1][1]) == 2
    point = select.pool(*groups[1], "matmul-eager-16")
    assert point.runs == 2
    assert point.low_s < point.per_token_s < point.high_s


def test_dirty_runs_are_marked(storage):
    write_run(storage, 1, run_document(commit_sha(1), T0, dirty=True))
    (run,) = records.load_runs(records.find_files(storage))
    assert run.short == commit_sha(1)[:7] + "+dirty"


def test_plot_draws_the_latest_run_by_default_and_svg_on_request(storage, tmp_path, capsys):
    write_history(storage, 3)
    code, out, err = perf_core(capsys, "plot", "--storage", storage, "-o", tmp_path / "curve.png", "--json")
    assert code == 0, err
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    plotted = json.loads(out)
    assert {row["commit"] for row in plotted} == {commit_sha(2)[:7]} and len(plotted) == 24
    code, _, _ = perf_core(
        capsys, "plot", "--storage", storage, "--last", "2", "-o", tmp_path / "c.svg", "--kernel", "matmul"
    )
    assert code == 0 and (tmp_path / "c.svg").read_text().lstrip().startswith("<?xml")


def test_figures_get_the_mode_a_plain_write_would_give(storage, tmp_path, capsys):
    write_history(storage, 1)
    umask = os.umask(0o022)
    try:
        code, _, err = perf_core(capsys, "plot", "--storage", storage, "-o", tmp_path / "curve.png")
    finally:
        os.umask(umask)
    assert code == 0, err
    assert stat.S_IMODE((tmp_path / "curve.png").stat().st_mode) == 0o644  # not mkstemp's private 0600


def test_plot_named_commits(storage, tmp_path, capsys):
    write_history(storage, 4)
    args = ["plot", "--storage", storage, "--commit", commit_sha(0)[:7], "--commit", commit_sha(2)[:9], "--json"]
    code, out, _ = perf_core(capsys, *args, "-o", tmp_path / "c.png")
    assert code == 0
    assert {row["commit"] for row in json.loads(out)} == {commit_sha(0)[:7], commit_sha(2)[:7]}


def test_plot_of_a_run_file_draws_its_commit_even_when_it_is_not_the_commits_first_run(storage, tmp_path, capsys):
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    write_run(storage, 1, run_document(commit_sha(0), t0, seed=1))
    second = write_run(storage, 2, run_document(commit_sha(0), t0 + timedelta(minutes=5), seed=2))
    write_run(storage, 3, run_document(commit_sha(1), t0 + timedelta(hours=1), seed=3))
    args = ["plot", "--storage", storage, "--commit", second.name, "--json", "-o", tmp_path / "c.png"]
    code, out, err = perf_core(capsys, *args)
    assert code == 0, err
    assert {row["commit"] for row in json.loads(out)} == {commit_sha(0)[:7]}


def test_trend_finds_an_8_percent_step_at_its_commit(storage, tmp_path, capsys):
    write_history(storage, 60, step_at=37, step=1.08, noise=0.03)
    code, out, err = perf_core(capsys, "trend", "--storage", storage, "--kernel", "attention", "-o", tmp_path / "t.png")
    assert code == 0, err
    lines = [line for line in out.strip().splitlines() if not line.startswith("machine: ")]
    assert len(lines) == 12  # every attention benchmark steps at the same commit
    for line in lines:
        assert f" at {commit_sha(37)[:7]} (2026-01-02)" in line and ": +" in line
    assert (tmp_path / "t.png").stat().st_size > 0


def test_trend_reports_nothing_on_a_flat_history(storage, tmp_path, capsys):
    write_history(storage, 60, noise=0.03)
    code, out, _ = perf_core(capsys, "trend", "--storage", storage, "-o", tmp_path / "t.png", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["changes"] == [] and len(result["series"]) == 24


def test_compare_flags_a_regression_with_exit_1(storage, capsys):
    # One run a side: judged against the run-to-run spread of a 20-run history of this machine.
    write_history(storage, 20, noise=0.02)
    slower = {"attention-compiled-128": 1.2}
    # Its rounds as noisy as the history's (write_history: 1%): a wider run would be "noisy head".
    write_run(
        storage, 21, run_document(commit_sha(21), T0 + timedelta(days=2), slower, seed=21, rounds=200, noise=0.01)
    )
    code, out, _ = perf_core(capsys, "compare", commit_sha(19)[:7], commit_sha(21)[:7], "--storage", storage)
    assert code == 1
    (row,) = [line for line in out.splitlines() if line.startswith("attention-compiled-128 ")]
    assert "REGRESSION" in row
    assert sum("REGRESSION" in line for line in out.splitlines()) == 1
    assert "judged against this machine's run-to-run spread" in out and "machine: Test CPU 9000" in out
    code, out, _ = perf_core(capsys, "compare", commit_sha(19)[:7], commit_sha(21)[:7], "--storage", storage, "--json")
    (verdict,) = [row for row in json.loads(out) if row["name"] == "attention-compiled-128"]
    assert code == 1 and verdict["ratio"] == pytest.approx(1.2, abs=0.05) and verdict["unit"] == "spread(19)"
    assert verdict["machine"].startswith("Test CPU 9000")


def _spiky_history(storage: Path) -> None:
    """20 runs of one commit as on a shared CPU: the whole run drifts by ~1%, and every third run
    one benchmark strays 1.5x."""
    rng = np.random.default_rng(0)
    for i in range(20):
        level = 1 + 0.01 * rng.standard_normal()
        factors = {name: level * (1.5 if i % 3 == 0 and name == NAMES[i % len(NAMES)] else 1.0) for name in NAMES}
        write_run(storage, i, run_document(commit_sha(i), T0 + timedelta(hours=i), factors, seed=i))


def test_a_run_slower_as_a_whole_is_flagged_though_single_benchmarks_strayed_further(storage, capsys):
    _spiky_history(storage)
    head = {name: 1.15 for name in NAMES}
    write_run(storage, 20, run_document(commit_sha(20), T0 + timedelta(days=2), head, seed=20))
    code, out, _ = perf_core(capsys, "compare", commit_sha(19)[:7], commit_sha(20)[:7], "--storage", storage, "--json")
    rows = json.loads(out)
    assert code == 1 and {row["verdict"] for row in rows} == {"regression"} and len(rows) == len(NAMES)
    # By its worst single benchmark alone, 15% is ordinary here: the whole run's shift is what shows it.
    runs = records.load_runs(records.find_files(storage))
    spread = select.run_spread([r for r in runs if r.commit != commit_sha(20)], NAMES, "steady")
    assert all(spread.p_value(name, float(np.log(1.15))) > 0.05 for name in NAMES)
    assert all(spread.p_value(name, float(np.log(1.15)), shift=float(np.log(1.15))) <= 0.05 for name in NAMES)


def test_a_run_taken_on_a_busy_machine_is_undecided_not_a_regression(storage, capsys):
    _spiky_history(storage)
    busy = run_document(commit_sha(20), T0 + timedelta(days=2), {name: 1.15 for name in NAMES}, seed=20, noise=0.2)
    write_run(storage, 20, busy)
    code, out, _ = perf_core(capsys, "compare", commit_sha(19)[:7], commit_sha(20)[:7], "--storage", storage)
    assert code == 0 and "REGRESSION" not in out
    assert "undecided: the head run spread its rounds over 2x as wide as this machine's typical run" in out
    assert "run the head again" in out and "perf-core ab" in out
    code, out, _ = perf_core(capsys, "compare", commit_sha(19)[:7], commit_sha(20)[:7], "--storage", storage, "--json")
    assert {(row["verdict"], row["unit"]) for row in json.loads(out)} == {("undecided", "noisy head")}


def test_the_spread_is_measured_on_the_newest_runs_of_a_long_history(monkeypatch):
    from perf_core.analysis import gate

    monkeypatch.setattr(gate, "SPREAD_RUNS", 10)
    when = [T0 + timedelta(hours=i) for i in range(30)]
    # 20 old runs whose benchmark jumps 1.5x and back, then 10 quiet runs: only the quiet ones count.
    runs = [
        records.parse_run(
            Path(f"{i}.json"),
            json.dumps(
                run_document(commit_sha(i), when[i], {"matmul-eager-16": 1.5 ** (i % 2) if i < 20 else 1.0}, seed=i)
            ),
        )
        for i in range(30)
    ]
    head = records.parse_run(
        Path("head.json"),
        json.dumps(run_document(commit_sha(40), T0 + timedelta(days=3), {"matmul-eager-16": 1.3}, seed=40)),
    )
    decided = gate.decide_all([runs[-1]], [head], ["matmul-eager-16"], "steady", 0.05, 0.1, history=[*runs, head])
    assert decided[0].unit == "spread(9)" and decided[0].verdict.verdict == "regression"
    monkeypatch.setattr(gate, "SPREAD_RUNS", 500)  # all 30: the old jumps make 1.3x ordinary
    decided = gate.decide_all([runs[-1]], [head], ["matmul-eager-16"], "steady", 0.05, 0.1, history=[*runs, head])
    assert decided[0].unit == "spread(29)" and decided[0].verdict.verdict == "unchanged"


def test_compare_same_code_with_one_run_a_side_is_never_a_regression(storage, capsys):
    # Two runs whose rounds differ by 6% (run-to-run drift): rounds would call it significant.
    write_run(storage, 1, run_document(commit_sha(1), T0, seed=1, rounds=200))
    drift = {name: 1.06 for name in NAMES}
    write_run(storage, 2, run_document(commit_sha(2), T0 + timedelta(hours=1), drift, seed=2, rounds=200))
    code, out, _ = perf_core(capsys, "compare", commit_sha(1)[:7], commit_sha(2)[:7], "--storage", storage, "--json")
    assert code == 0
    rows = json.loads(out)
    assert {row["verdict"] for row in rows} == {"undecided"} and {row["unit"] for row in rows} == {"no spread"}
    assert all(row["ratio"] == pytest.approx(1.06, abs=0.02) for row in rows)
    code, out, _ = perf_core(capsys, "compare", commit_sha(1)[:7], commit_sha(2)[:7], "--storage", storage)
    assert code == 0 and "undecided" in out and "run `perf-core ab BASE HEAD`, or save more runs" in out


@pytest.mark.parametrize("metric", ["device", "latency"])
@pytest.mark.parametrize("command", ["compare", "trend", "plot", "explain", "export"])
def test_a_gpu_figure_asked_of_cpu_runs_is_named_missing_by_every_reading_command(storage, capsys, command, metric):
    """A newcomer's `compare A B --metric device` on CPU runs read "no benchmark in common"; trend
    found "no change" in figures that were not there."""
    write_run(storage, 1, run_document(commit_sha(1), T0, seed=1))
    write_run(storage, 2, run_document(commit_sha(2), T0 + timedelta(hours=1), seed=2))
    commits = [commit_sha(1)[:7], commit_sha(2)[:7]] if command in ("compare", "explain") else []
    out = ["-o", str(storage.parent / "out.png")] if command in ("trend", "plot") else []
    out += ["--format", "bencher"] if command == "export" else []
    code, _, err = perf_core(capsys, command, *commits, "--storage", storage, "--metric", metric, *out)
    assert code == 2, err
    assert err.strip() == (
        f"perf-core: error: no run of {MACHINE_LABEL} has {metric} figures for these benchmarks (a run holds the"
        " figures its --figures asked for; latency and device time are measured on GPU runs only)"
    )
    assert not (storage.parent / "out.png").exists()


@pytest.mark.parametrize("without", [("base",), ("head",), ("base", "head")])
def test_compare_names_the_commit_saved_without_the_figure(storage, capsys, without):
    """Runs saved without device time (--figures steady) beside others that hold it: compare said "no
    benchmark in common" when one side lacked it."""
    sides = {}
    for i, side in enumerate(("base", "head", "other"), 1):
        document = run_document(commit_sha(i), T0 + timedelta(hours=i), seed=i)
        for bench in document["benchmarks"]:  # a GPU run's device time, where its --figures asked for it
            if side not in without:
                bench["extra_info"][contract.DEVICE_S] = bench["stats"]["median"]
        write_run(storage, i, document)
        sides[side] = commit_sha(i)[:7]
    code, _, err = perf_core(
        capsys, "compare", sides["base"], sides["head"], "--storage", storage, "--metric", "device"
    )
    lacking = " and ".join(sides[side] for side in without)
    have = "has" if len(without) == 1 else "have"
    assert (
        code == 2
        and err.strip() == f"perf-core: error: {lacking} {have} no device figures (saved without them: --figures)"
    )


def test_compare_with_three_runs_a_side_tests_the_runs_themselves(storage, capsys):
    for i in range(3):
        write_run(storage, 1 + i, run_document(commit_sha(1), T0, seed=i))
        write_run(
            storage, 10 + i, run_document(commit_sha(2), T0 + timedelta(hours=1), {"matmul-eager-16": 1.3}, seed=9 + i)
        )
    code, out, _ = perf_core(capsys, "compare", commit_sha(1)[:7], commit_sha(2)[:7], "--storage", storage, "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert {row["unit"] for row in rows.values()} == {"runs"} and rows["matmul-eager-16"]["n_base"] == 3
    # Mann-Whitney with 3 runs a side cannot reach p < 0.05 (its smallest p is 0.1): nothing is claimed.
    assert rows["matmul-eager-16"]["p_value"] == pytest.approx(0.1) and code == 0
    assert {row["verdict"] for row in rows.values()} == {"undecided"}
    code, out, _ = perf_core(capsys, "compare", commit_sha(1)[:7], commit_sha(2)[:7], "--storage", storage)
    assert code == 0 and "with 3/3 runs the test's smallest possible p is 0.1, above --alpha 0.05" in out


def test_compare_names_benchmarks_only_one_side_has(storage, capsys):
    write_history(storage, 8, noise=0.01)
    fewer = tuple(n for n in NAMES if not n.startswith("matmul-eager"))
    write_run(storage, 9, run_document(commit_sha(9), T0 + timedelta(days=1), names=fewer))
    code, out, _ = perf_core(capsys, "compare", commit_sha(7)[:7], commit_sha(9)[:7], "--storage", storage)
    assert code == 0
    assert "only in base, not compared: matmul-eager-16, matmul-eager-32" in out


def test_mixed_machines_are_refused_naming_them_unless_one_is_chosen(storage, tmp_path, capsys):
    write_run(storage, 1, run_document(commit_sha(1), T0))
    write_run(storage, 2, run_document(commit_sha(2), T0, machine=MACHINE | {"device_name": "NVIDIA H100 80GB HBM3"}))
    code, _, err = perf_core(capsys, "plot", "--storage", storage, "-o", tmp_path / "p.png")
    assert code == 2
    assert "2 machines" in err and "Test CPU 9000" in err and "NVIDIA H100" in err and len(err.splitlines()) == 1
    code, out, _ = perf_core(
        capsys, "plot", "--storage", storage, "--machine", "H100", "-o", tmp_path / "p.png", "--json"
    )
    assert code == 0 and {row["commit"] for row in json.loads(out)} == {commit_sha(2)[:7]}


def bad_files() -> dict[str, tuple[str, str]]:
    good = run_document(commit_sha(1), T0)
    missing = json.loads(json.dumps(good))
    del missing["benchmarks"][0]["extra_info"]["per_token_s"]
    nan = json.loads(json.dumps(good))
    nan["benchmarks"][0]["stats"]["median"] = float("nan")
    negative = json.loads(json.dumps(good))
    negative["benchmarks"][3]["stats"]["data"][5] = -1e-6
    return {
        "empty": ("", "empty file"),
        "truncated": (json.dumps(good)[:500], "not valid JSON"),
        "not-json": ("<html>hello</html>", "not valid JSON"),
        "other-tool": (json.dumps({"results": [1, 2, 3]}), "not a pytest-benchmark file"),
        "missing-fields": (json.dumps(missing), "lacks the suite's fields per_token_s"),
        "nan": (json.dumps(nan), "invalid median (nan)"),
        "negative": (json.dumps(negative), "invalid round time (-1e-06)"),
    }


@pytest.mark.parametrize("case", sorted(bad_files()))
@pytest.mark.parametrize("command", ["plot", "trend"])
def test_a_bad_history_file_is_left_out_with_one_line_naming_it_and_nothing_is_changed(
    storage, tmp_path, capsys, case, command
):
    write_history(storage, 2)
    text, message = bad_files()[case]
    bad = storage / "Linux-CPython-3.11-64bit" / "0099_bad.json"
    bad.write_text(text)
    before = snapshot(storage)
    code, _, err = perf_core(capsys, command, "--storage", storage, "-o", tmp_path / "out.png")
    assert code == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 3 and lines[1] == "perf-core: 1 file skipped; 2 runs read" and lines[2].startswith("wrote ")
    assert lines[0].startswith(f"perf-core: warning: skipped {bad}: ") and message in lines[0]
    assert "Traceback" not in err
    assert snapshot(storage) == before
    assert (tmp_path / "out.png").stat().st_size > 0  # drawn from the other runs


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plot"], "no history yet"),
        (["trend", "--storage", "{storage}/nowhere"], "no history yet"),
        (["compare", "abcdef1", "{commit}", "--storage", "{storage}"], "unknown commit or run 'abcdef1'"),
        (
            ["plot", "--storage", "{storage}", "-o", "{tmp}/no/such/folder/p.png"],
            "folder {tmp}/no/such/folder does not exist",
        ),
        (["plot", "--storage", "{storage}", "-o", "/proc/perf-core.png"], "cannot write /proc/perf-core.png"),
        (["plot", "--storage", "{storage}", "-o", "{tmp}/p.pdf"], "must be .png or .svg"),
        (["plot", "--storage", "{storage}", "--tokens", "0"], "--tokens: '0' is not a positive integer"),
        (["plot", "--storage", "{storage}", "--last", "0"], "--last: '0' is not a positive integer"),
        (["trend", "--storage", "{storage}", "--kernel", "conv"], "no benchmark in the history matches"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(storage, tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    if argv != ["plot"]:
        write_history(storage, 2)
    fill = {"storage": storage, "tmp": tmp_path, "commit": commit_sha(1)[:7]}
    code, _, err = perf_core(capsys, *[a.format(**fill) for a in argv])
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message.format(**fill) in err, err


def test_runs_of_another_python_are_another_machine_never_pooled_or_compared(storage, tmp_path, capsys):
    # The interpreter moved from 3.11 to 3.12 between commits 1 and 2; a run saved before machine_info
    # carried the version (commit 3) still loads, as a machine of unknown Python.
    write_run(storage, 1, run_document(commit_sha(1), T0))
    write_run(
        storage,
        2,
        run_document(commit_sha(2), T0, {n: 1.08 for n in NAMES}, machine=MACHINE | {"python_version": "3.12.3"}),
    )
    old = run_document(commit_sha(3), T0)
    del old["machine_info"]["python_version"]
    write_run(storage, 3, old)
    runs = records.load_runs(records.find_files(storage))
    assert [run.machine.python for run in runs] == ["3.11", "3.12", None]
    assert [m.label for m in select.machines(runs)] == [
        "Test CPU 9000 | torch 2.13.0+cpu | 1 thread",
        "Test CPU 9000 | torch 2.13.0+cpu | Python 3.11 | 1 thread",
        "Test CPU 9000 | torch 2.13.0+cpu | Python 3.12 | 1 thread",
    ]
    code, _, err = perf_core(
        capsys, "compare", commit_sha(1)[:7], commit_sha(2)[:7], "--storage", storage, "--machine", "3.11"
    )
    assert code == 2 and "ran on another machine (Test CPU 9000 | torch 2.13.0+cpu | Python 3.12 | 1 thread)" in err


def test_runs_that_saved_no_python_are_comparable_with_each_other(storage, capsys):
    for number in (1, 2):
        old = run_document(commit_sha(number), T0 + timedelta(hours=number))
        del old["machine_info"]["python_version"]
        write_run(storage, number, old)
    code, out, err = perf_core(capsys, "compare", commit_sha(1)[:7], commit_sha(2)[:7], "--storage", storage)
    assert code == 0, err
    assert out.splitlines()[0] == "machine: Test CPU 9000 | torch 2.13.0+cpu | 1 thread"


@pytest.mark.parametrize("indexing", [[], ["--no-index"]])
def test_runs_of_another_preset_are_another_machine_never_pooled(storage, tmp_path, capsys, indexing):
    # llama-7b's and llama-3-8b's model-compiled-16 are different work under one name (H200, 2026-11-30:
    # 5.02 and 5.35 ms): one commit run with both presets is two machines, not one commit of two runs.
    for number, (preset, factor) in enumerate((("llama-7b", 1.0), ("llama-3-8b", 1.07), (None, 1.0))):
        document = run_document(commit_sha(1), T0, {n: factor for n in NAMES})
        if preset is None:
            document["machine_info"].pop("preset", None)  # saved before machine_info named it
        else:
            document["machine_info"]["preset"] = preset
        write_run(storage, number, document)
    runs = records.load_runs(records.find_files(storage))
    assert sorted(str(run.machine.preset) for run in runs) == ["None", "llama-3-8b", "llama-7b"]
    assert {m.label.endswith(f"| preset {m.preset}") for m in select.machines(runs) if m.preset} == {True}
    figure = ["-o", tmp_path / "preset.png"]  # not the checkout's per_token.png
    code, out, err = perf_core(
        capsys, "plot", "--json", "--storage", storage, "--machine", "llama-3-8b", *indexing, *figure
    )
    assert code == 0 and {row["machine"].endswith("| preset llama-3-8b") for row in json.loads(out)} == {True}, err
