"""Tokens per second and bandwidth achieved (issue 23) on the analysing side: loaded from the runs that
saved them (through the history index too), None for runs saved before, in `plot --json`, in the
report's hover text and its table."""

import json
import sqlite3
from array import array
from datetime import datetime, timezone
from pathlib import Path

import pytest
from helpers import perf_core

from perf_core import contract
from perf_core.analysis import charts, index, output, records, report, select
from perf_core.analysis.synthetic import commit_sha, run_document, with_rates, write_run

COPY_RATE = 50e9  # bytes per second, the runs' "measured" copy rate
NAMES = ("model-compiled-16", "model-compiled-32", "model-eager-16")
WHEN = datetime(2026, 3, 1, tzinfo=timezone.utc)


def document(commit: int, copy_rate: float | None = COPY_RATE, seed: int = 0) -> dict:
    return with_rates(run_document(commit_sha(commit), WHEN.replace(hour=commit), names=NAMES, seed=seed), copy_rate)


@pytest.fixture
def history(storage: Path) -> Path:
    """Commit 0 saved before the rates existed; commit 1 with them, run twice; commit 2 without a copy rate."""
    write_run(storage, 1, run_document(commit_sha(0), WHEN, names=NAMES))
    write_run(storage, 2, document(1))
    write_run(storage, 3, document(1, seed=5))
    write_run(storage, 4, document(2, copy_rate=None))
    return storage


def saved(path: Path) -> dict[str, dict]:
    """Each benchmark's extra_info as the file holds it."""
    return {b["param"]: b["extra_info"] for b in json.loads(path.read_text())["benchmarks"]}


def rates_of(run: records.Run) -> dict[str, tuple]:
    return {name: (r.tokens_per_s, r.bytes_per_s, r.bandwidth_share) for name, r in run.results.items()}


def test_the_saved_rates_load_and_runs_saved_before_them_read_none(history):
    files = records.find_files(history)
    old, new, _, unmeasured = records.load_runs(files)
    assert set(rates_of(old).values()) == {(None, None, None)}
    for name, extra in saved(files[1]).items():
        keys = (contract.TOKENS_PER_S, contract.BYTES_PER_S, contract.BANDWIDTH_SHARE)
        assert rates_of(new)[name] == tuple(extra[key] for key in keys)
        assert new.results[name].tokens_per_s == pytest.approx(1 / new.results[name].per_token_s)
    assert all(share is None and tokens > 0 for tokens, _, share in rates_of(unmeasured).values())


@pytest.mark.parametrize("bad", ["fast", True, -1.0, 0, None])
def test_a_malformed_rate_reads_as_none_and_the_timings_still_load(tmp_path, bad):
    saved_doc = document(1)
    saved_doc["benchmarks"][0]["extra_info"][contract.TOKENS_PER_S] = bad
    run = records.parse_run(tmp_path / "run.json", json.dumps(saved_doc))
    first = run.results[saved_doc["benchmarks"][0]["param"]]
    assert first.tokens_per_s is None and first.bytes_per_s is not None
    assert first.median_s == saved_doc["benchmarks"][0]["stats"]["median"]


def test_the_index_gives_the_rates_the_files_give(history, tmp_path):
    from_files = [rates_of(run) for run in records.load_runs(records.find_files(history))]
    where = tmp_path / "idx.sqlite"
    assert [rates_of(run) for run in index.load(history, where)] == from_files  # builds
    assert [rates_of(run) for run in index.load(history, where)] == from_files  # reads


def test_an_index_of_the_layout_before_the_rates_is_rebuilt_with_one_warning(history, tmp_path, capsys):
    where = tmp_path / "idx.sqlite"
    expected = [(run.path, run.results) for run in records.load_runs(records.find_files(history))]
    index.load(history, where)
    # Written as the previous layout wrote it: its layout line, and 7 numbers per benchmark.
    old_layout = "2:" + index.LAYOUT.split(":", 1)[1].replace("tokens_per_s,bytes_per_s,bandwidth_share,", "")
    old_width, width = 7, len(index.NUMBER_FIELDS)
    assert "tokens_per_s" not in old_layout
    with sqlite3.connect(where) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'layout'", (old_layout,))
        for path, blob in db.execute("SELECT path, results FROM runs").fetchall():
            numbers = array("d", blob)
            cut = [v for i in range(0, len(numbers), width) for v in numbers[i : i + old_width]]
            db.execute("UPDATE runs SET results = ? WHERE path = ?", (array("d", cut).tobytes(), path))
    runs = index.load(history, where)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "another version of perf-core" in err and "rebuilding" in err
    assert [(run.path, run.results) for run in runs] == expected
    assert index.load(history, where) and capsys.readouterr().err == ""  # rebuilt once, then read


def test_plot_json_carries_each_points_rates_pooled_over_the_commits_runs(history, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(output, "save_figure", lambda fig, path: None)
    files = records.find_files(history)
    code, out, err = perf_core(capsys, "plot", "--storage", history, "--last", "3", "--json", "-o", tmp_path / "p.png")
    assert code == 0, err
    rows = {(row["commit"], row["benchmark"]): row for row in json.loads(out)}
    two = [saved(files[1]), saved(files[2])]  # commit 1's two runs: the median of two is their mean
    for name in NAMES:
        old, new, unmeasured = (rows[(commit_sha(i)[:7], name)] for i in range(3))
        assert (old["tokens_per_s"], old["bytes_per_s"], old["bandwidth_share"]) == (None, None, None)
        for rate in select.RATES:
            assert new[rate] == pytest.approx(sum(extra[name][rate] for extra in two) / 2)
        assert unmeasured["bandwidth_share"] is None
        assert unmeasured["tokens_per_s"] == saved(files[3])[name]["tokens_per_s"]


def test_the_reports_hover_text_and_table_carry_tokens_per_second_and_bandwidth_share(history, tmp_path):
    runs = records.load_runs(records.find_files(history))[1:3]  # commit 1's two runs
    ((_, spec),) = [(p, s) for p, s in charts.per_token_specs(runs, NAMES, "steady") if p == "model-compiled"]
    hover = {t["field"]: t.get("title") for layer in spec["layer"] for t in layer["encoding"].get("tooltip", [])}
    assert {"tokens_per_s", "gb_per_s", "bandwidth_share"} <= hover.keys()
    for row in spec["datasets"]["curves"]:
        pooled = select.rates(runs, row["benchmark"])
        assert row["tokens_per_s"] == pytest.approx(pooled["tokens_per_s"], rel=1e-3)
        assert row["gb_per_s"] == pytest.approx(pooled["bytes_per_s"] / 1e9, rel=1e-3)
        assert row["bandwidth_share"] == pytest.approx(pooled["bandwidth_share"], rel=1e-3)
    table = report.throughput_table(select.by_commit(runs), NAMES)
    share = select.rates(runs, "model-compiled-16")["bandwidth_share"]
    assert "<th>tokens/s</th>" in table and f"{share:.0%}" in table and "model-eager-16" in table
    before = records.load_runs(records.find_files(history))[:1]
    assert "saved no tokens per second" in report.throughput_table(select.by_commit(before), NAMES)


def test_the_report_page_shows_the_rates_table(history, tmp_path, capsys):
    code, _, err = perf_core(capsys, "report", "--storage", history, "-o", tmp_path / "site", "--no-index")
    assert code == 0, err
    page = (tmp_path / "site" / "machine-1.html").read_text()
    assert "Tokens per second and bandwidth achieved" in page and "<th>share of copy bandwidth</th>" in page
