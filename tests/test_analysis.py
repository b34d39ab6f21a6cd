"""The analysing half on its own: no torch, the contract, the decision, change points, figures."""

import json
import subprocess
import sys
from datetime import datetime, timezone

import numpy as np
import pytest
from helpers import column_of

from perf_core import contract
from perf_core.analysis import changes, figures, gate, records, select, stats
from perf_core.analysis.synthetic import run_document
from perf_core.errors import EXIT_OK, EXIT_REGRESSION, HistoryError


def test_the_analysing_half_and_the_cli_load_without_torch():
    modules = "perf_core.cli, perf_core.commands.plot, perf_core.analysis.ab, perf_core.analysis.figures"
    code = f"import sys, {modules}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("attention-compiled-128", ("attention", "compiled", 128)),
        ("mlp-eager-16", ("mlp", "eager", 16)),
        ("my-toy-kernel-eager-8", ("my-toy-kernel", "eager", 8)),
    ],
)
def test_benchmark_names_are_built_and_parsed_in_one_place(name, parts):
    assert contract.bench_name(*parts) == name
    parsed = contract.parse_name(name)
    assert (parsed.kernel, parsed.variant, parsed.n_tokens) == parts
    assert parsed.panel == f"{parts[0]}-{parts[1]}"


def test_benchmark_names_sort_by_kernel_variant_then_tokens_as_numbers():
    names = ["matmul-eager-16", "attention-eager-128", "attention-eager-16", "attention-compiled-512"]
    assert sorted(names, key=contract.parse_name) == [
        "attention-compiled-512",
        "attention-eager-16",
        "attention-eager-128",
        "matmul-eager-16",
    ]


def test_runs_without_a_format_version_read_as_version_1_and_newer_ones_are_refused(tmp_path):
    document = run_document("a" * 40, datetime(2026, 1, 1))
    assert contract.FORMAT_KEY not in document
    run = records.parse_run(tmp_path / "old.json", json.dumps(document))
    assert len(run.results) == 24
    document[contract.FORMAT_KEY] = contract.FORMAT_VERSION + 1
    newer = rf"new\.json: saved in format {contract.FORMAT_VERSION + 1}, newer than this perf-core reads \({contract.FORMAT_VERSION}\)"
    with pytest.raises(HistoryError, match=newer):
        records.parse_run(tmp_path / "new.json", json.dumps(document))


def test_decide_known_samples_give_a_known_verdict_p_value_and_interval():
    base = [1.00, 1.01, 0.99, 1.02, 0.98]
    head = [1.20, 1.21, 1.19, 1.22, 1.18]
    verdict = stats.decide("x", base, head)
    assert verdict.verdict == "regression"
    assert verdict.ratio == pytest.approx(1.2)
    # Complete separation of 5 against 5: the exact two-sided Mann-Whitney p is 2 / C(10, 5).
    assert verdict.p_value == pytest.approx(2 / 252)
    assert verdict.ratio_low <= 1.2 <= verdict.ratio_high and verdict.ratio_low > 1.1
    assert stats.decide("x", head, base).verdict == "improvement"


def test_decide_needs_both_size_and_significance():
    small_shift = stats.decide("x", [1.00, 1.01, 0.99, 1.02, 0.98], [1.03, 1.04, 1.025, 1.05, 1.015])  # untied
    assert small_shift.p_value < 0.05 and small_shift.verdict == "unchanged"  # clear, but under 5%
    noisy = stats.decide("x", [1.0, 1.3, 0.8, 1.1, 0.9], [1.1, 1.4, 0.9, 1.2, 1.0])
    assert noisy.ratio > 1.05 and noisy.p_value > 0.05 and noisy.verdict == "unchanged"


def test_decide_with_one_sample_a_side_is_never_significant():
    verdict = stats.decide("x", [1.0], [2.0])
    assert (verdict.p_value, verdict.verdict, verdict.ratio_low, verdict.ratio_high) == (1.0, "undecided", 2.0, 2.0)


def test_samples_that_cannot_reach_alpha_are_undecided_not_unchanged():
    # Mann-Whitney's smallest two-sided p with n and m samples is 2 / C(n + m, n).
    assert stats.smallest_p(3, 3) == pytest.approx(2 / 20) and stats.smallest_p(4, 4) == pytest.approx(2 / 70)
    assert stats.samples_needed(0.05) == 4 and stats.samples_needed(0.1) == 3
    # Complete separation, 50% slower: 3 a side cannot show it at 0.05, 4 a side can.
    assert stats.decide("x", [1.0, 1.01, 0.99], [1.5, 1.51, 1.49]).verdict == "undecided"
    assert stats.decide("x", [1.0, 1.01, 0.99, 1.02], [1.5, 1.51, 1.49, 1.52]).verdict == "regression"
    assert stats.decide("x", [1.0, 1.01, 0.99], [1.5, 1.51, 1.49], alpha=0.1).verdict == "regression"
    # The spread rule's smallest p with k pairs is 1 / (k + 1): 19 pairs reach 0.05, 18 do not.
    assert stats.spread_pairs_needed(0.05) == 19
    spread = stats.Spread({"x": 0.01}, 0.01, 1.0, (0.5,) * 18)
    assert stats.decide_by_spread("x", [1.0], [1.5], spread).verdict == "undecided"
    spread = stats.Spread({"x": 0.01}, 0.01, 1.0, (0.5,) * 19)
    assert stats.decide_by_spread("x", [1.0], [1.5], spread).verdict == "regression"


def test_exit_code_is_1_only_with_a_regression():
    same = gate.Decided(stats.decide("a", [1.0] * 5, [1.0] * 5), 16, "runs")
    slower = gate.Decided(stats.decide("b", [1.00, 1.01, 0.99, 1.02, 0.98], [1.5, 1.51, 1.49, 1.52, 1.48]), 16, "runs")
    assert gate.exit_code([same]) == EXIT_OK
    assert gate.exit_code([same, slower]) == EXIT_REGRESSION


def test_detect_finds_known_steps_at_known_indices():
    rng = np.random.default_rng(7)
    series = np.concatenate([np.full(20, 1.0), np.full(20, 1.10), np.full(20, 0.95)]) * (
        1 + 0.005 * rng.standard_normal(60)
    )
    found = changes.detect(series)
    assert [c.index for c in found] == [20, 40]
    assert found[0].change == pytest.approx(0.10, abs=0.01)
    assert found[1].change == pytest.approx(0.95 / 1.10 - 1, abs=0.01)


def test_detect_reports_nothing_on_a_flat_or_short_series_and_respects_min_change():
    rng = np.random.default_rng(3)
    assert changes.detect(1 + 0.01 * rng.standard_normal(60)) == []
    assert changes.detect([1.0, 2.0, 1.0, 2.0, 1.0]) == []  # shorter than two segments of MIN_SIZE
    step = np.concatenate([np.full(20, 1.0), np.full(20, 1.03)]) * (1 + 0.001 * rng.standard_normal(40))
    assert changes.detect(step) == []  # a clear 3% step is under the 5% that is reported
    assert [c.index for c in changes.detect(step, min_change=0.02)] == [20]


def test_per_token_figure_has_labelled_axes_a_line_per_commit_and_the_floor():
    curve = figures.Curve("abc1234", (16, 32, 64), (3e-6, 2e-6, 1.5e-6))
    older = figures.Curve("0001111", (16, 32, 64), (3.3e-6, 2.2e-6, 1.6e-6))
    panel = figures.Panel("attention / compiled", (older, curve), ((16, 1e-6), (32, 0.8e-6), (64, 0.7e-6)))
    fig = figures.per_token_figure([panel], "Test CPU", "steady")
    (ax,) = [ax for ax in fig.axes if ax.get_visible()]
    assert ax.get_xlabel() == "Number of Tokens" and ax.get_ylabel() == "Latency per Token (us)"
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["0001111", "abc1234", "floor (cost model)"]
    assert all(line.get_marker() == "o" for line in ax.get_lines()[:2])
    assert len(ax.collections) == 2  # the shaded area under each curve


def test_trend_figure_has_a_panel_per_kernel_variant_and_marks_changes():
    column = column_of([None if i == 1 else 1e-6 * (1 + i / 10) for i in range(4)])
    lines = {"matmul / eager": [figures.TrendLine("16 tokens", column, ((2, 0.08),))]}
    fig = figures.trend_figure(["c0", "c1", "c2", "c3"], lines, "trend")
    (ax,) = fig.axes
    assert ax.get_title() == "matmul / eager" and ax.get_ylabel().startswith("Latency per Token")
    assert [t.get_text() for t in ax.texts] == ["+8.0%"]


def test_trend_panels_share_one_commit_axis_labelled_under_the_last():
    line = figures.TrendLine("16 tokens", column_of([1e-6 * (1 + i / 10) for i in range(4)]))
    fig = figures.trend_figure(["c0", "c1", "c2", "c3"], {"a / b": [line], "c / d": [line]}, "trend")
    fig.canvas.draw()
    top, bottom = fig.axes
    assert [t.get_text() for t in bottom.get_xticklabels() if t.get_visible()] == ["c0", "c1", "c2", "c3"]
    assert not any(t.get_visible() and t.get_text() for t in top.get_xticklabels())
    assert bottom.get_xlabel().startswith("commit") and top.get_xlabel() == ""


def test_throttled_points_are_ringed_in_red_with_a_legend_entry():
    curve = figures.Curve("abc1234", (16, 32, 64), (3e-6, 2e-6, 1.5e-6), (False, True, True))
    fig = figures.per_token_figure([figures.Panel("mlp / compiled", (curve,))], "H200", "device")
    (ax,) = [ax for ax in fig.axes if ax.get_visible()]
    (rings,) = [c for c in ax.collections if c.get_label() == "throttled (NVML)"]
    assert len(rings.get_offsets()) == 2


def test_change_points_are_remembered_by_the_series_they_came_from():
    series = np.array([1.0 if i < 10 else 1.2 for i in range(20)])
    commits, when = [f"c{i}" for i in range(20)], [None] * 20
    memo: dict[str, str] = {}
    (first,) = changes.found_in("b", series, commits, when, memo=memo)
    assert (first.index, first.commit, first.date) == (10, "c10", "unknown date") and len(memo) == 1
    (key,) = memo
    memo[key] = "[[4, 0.5]]"  # an answer that only the memo can give: proves it is read, not recomputed
    (again,) = changes.found_in("b", series, commits, when, memo=memo)
    assert (again.index, again.change) == (4, 0.5)
    changed = np.append(series[:-1], 1.3)
    assert changes.found_in("b", changed, commits, when, memo=memo)[0].index == 10 and len(memo) == 2  # new key


def test_change_points_skip_commits_without_the_benchmark_and_name_the_commit_found():
    series = np.array([np.nan if i % 7 == 3 else (1.0 if i < 12 else 1.2) for i in range(24)])
    commits = [f"c{i}" for i in range(24)]
    when = [datetime(2026, 1, 1 + i, tzinfo=timezone.utc) for i in range(24)]
    (found,) = changes.found_in("b", series, commits, when)
    assert (found.index, found.commit, found.date) == (12, "c12", "2026-01-13")
    assert found.change == pytest.approx(0.2)


def test_long_trends_are_drawn_as_medians_of_consecutive_commits():
    assert [select.bin_size(n) for n in (1, select.MAX_DRAWN, select.MAX_DRAWN + 1, 10 * select.MAX_DRAWN + 1)] == [
        1,
        1,
        2,
        11,
    ]
    rows = np.array([[0, 1.0], [1, 3.0], [2, 2.0], [3, 10.0], [4, 5.0]])
    assert select.binned(rows, 2).tolist() == [[0.5, 2.0], [2.5, 6.0], [4.0, 5.0]]  # the last bin holds one
    assert select.binned(rows, 1) is rows
    from perf_core.analysis import charts

    n = 3 * select.MAX_DRAWN + 1
    column = select.Column(np.arange(n, dtype=float), np.arange(n) - 0.5, np.arange(n) + 0.5)
    drawn = charts.trend_rows(column, [f"c{i}" for i in range(n)], 16, 1e-6, select.bin_size(n))
    assert len(drawn) == -(-n // 4)  # 4 commits a row
    assert drawn[0] == {"index": 1.5, "commit": "c0..c3", "tokens": 16, "per_token": 1.5e6, "low": 1e6, "high": 2e6}
    assert drawn[-1]["commit"] == f"c{n - 1}..c{n - 1}"
