"""What perf-core prints can be trusted: machine choice, floors, trend's limits, values that mean nothing."""

import json
import subprocess
from datetime import timedelta

import matplotlib
import pytest
from helpers import ROOT, T0, column_of, perf_core

from perf_core import contract
from perf_core.analysis import figures
from perf_core.analysis.synthetic import MACHINE, commit_sha, run_document, write_history, write_run

H100 = MACHINE | {"device_name": "NVIDIA H100 80GB HBM3", "torch_version": "2.11.0+cu130", "cuda_version": "13.0"}
H200 = MACHINE | {"device_name": "NVIDIA H200", "torch_version": "2.11.0+cu130", "cuda_version": "13.0"}


def test_machine_number_picks_the_listed_machine_even_where_the_number_is_in_every_label(storage, tmp_path, capsys):
    write_run(storage, 1, run_document(commit_sha(1), T0, machine=H100))  # labels hold "1 thread", "2.11"
    write_run(storage, 2, run_document(commit_sha(2), T0, machine=H200))
    for number, device in (("1", "NVIDIA H100 80GB HBM3"), ("2", "NVIDIA H200")):
        argv = ["plot", "--storage", storage, "--machine", number, "--json", "-o", tmp_path / "p.png"]
        code, out, err = perf_core(capsys, *argv)
        assert code == 0, err
        assert {row["machine"] for row in json.loads(out)} == {
            f"{device} | torch 2.11.0+cu130 | Python 3.11 | 1 thread"
        }
        assert f"reading [{number}] {device}" in err and "(by --machine)" in err
    code, _, err = perf_core(capsys, "plot", "--storage", storage, "--machine", "3", "-o", tmp_path / "p.png")
    assert code == 2 and "there is no machine [3]" in err and "[1] NVIDIA H100" in err


def test_every_command_names_the_machine_it_read(storage, tmp_path, capsys):
    write_history(storage, 3)
    label = "Test CPU 9000 | torch 2.13.0+cpu | Python 3.11 | 1 thread"
    code, out, _ = perf_core(capsys, "trend", "--storage", storage, "--json", "-o", tmp_path / "t.png")
    assert code == 0 and json.loads(out)["machine"] == label
    code, out, _ = perf_core(capsys, "compare", commit_sha(0)[:7], commit_sha(2)[:7], "--storage", storage)
    assert out.splitlines()[0] == f"machine: {label}"


@pytest.fixture
def drawn(monkeypatch) -> dict:
    """The panels plot hands to its figure, by title (filled as plot draws)."""
    panels_by_title = {}
    real = figures.per_token_figure

    def capture(panels, title, metric):
        panels_by_title.update({panel.title: panel for panel in panels})
        return real(panels, title, metric)

    monkeypatch.setattr(figures, "per_token_figure", capture)
    return panels_by_title


def test_plot_keeps_each_benchmarks_floor_when_the_newest_run_measured_fewer(storage, tmp_path, capsys, drawn):
    write_run(storage, 1, run_document(commit_sha(1), T0))
    later = T0 + timedelta(hours=1)
    write_run(storage, 2, run_document(commit_sha(2), later, names=("matmul-eager-16", "matmul-eager-32")))
    code, _, err = perf_core(capsys, "plot", "--storage", storage, "--last", "2", "-o", tmp_path / "p.png")
    assert code == 0, err
    assert [t for t, _ in drawn["attention / compiled"].floor_per_token_s] == [16, 32, 64, 128, 256, 512]
    assert [t for t, _ in drawn["matmul / eager"].floor_per_token_s] == [16, 32, 64, 128, 256, 512]


def test_plot_draws_the_least_floor_any_run_recorded_not_a_slow_starts(storage, tmp_path, capsys, drawn):
    """A newcomer's second run measured its peaks low at its start: its floors 1.2x the first's, and
    plot drew them, over medians that then sat under the floor."""
    first = run_document(commit_sha(1), T0)
    slow_start = run_document(commit_sha(2), T0 + timedelta(hours=1))
    for bench in slow_start["benchmarks"]:
        bench["extra_info"][contract.FLOOR_S] *= 1.2
    write_run(storage, 1, first)
    write_run(storage, 2, slow_start)
    code, _, err = perf_core(capsys, "plot", "--storage", storage, "-o", tmp_path / "p.png")
    assert code == 0, err
    expected = {
        int(b["extra_info"][contract.N_TOKENS]): b["extra_info"][contract.FLOOR_S] / b["extra_info"][contract.N_TOKENS]
        for b in first["benchmarks"]
        if b["param"].startswith("matmul-eager-")
    }
    assert dict(drawn["matmul / eager"].floor_per_token_s) == pytest.approx(expected)


def test_trend_says_when_there_are_too_few_commits_to_look(storage, tmp_path, capsys):
    write_history(storage, 2, step_at=1, step=1.98)
    code, out, _ = perf_core(capsys, "trend", "--storage", storage, "-o", tmp_path / "t.png")
    assert code == 0
    assert "too few commits to look for changes: 2, change points need at least 6" in out
    assert "no change of" not in out
    code, out, _ = perf_core(capsys, "trend", "--storage", storage, "--json", "-o", tmp_path / "t.png")
    assert json.loads(out)["searched"] is False


def test_integer_past_pythons_digit_limit_is_one_line_skipped_in_a_history_and_refused_by_name(
    storage, tmp_path, capsys
):
    write_history(storage, 2)
    text = json.dumps(run_document(commit_sha(5), T0)).replace('"rounds": 50', '"rounds": ' + "9" * 5000, 1)
    huge = storage / "Linux-CPython-3.11-64bit" / "0099_huge.json"
    huge.write_text(text)
    figure = ["-o", tmp_path / "x.png"]
    for command in (["plot", *figure], ["trend", *figure], ["compare", commit_sha(0)[:7], commit_sha(1)[:7]]):
        code, _, err = perf_core(capsys, *command, "--storage", storage)
        named = [line for line in err.splitlines() if "0099_huge.json" in line]
        assert code == 0 and len(named) == 1 and "not readable JSON" in named[0] and "1 file skipped" in err, err
    code, _, err = perf_core(capsys, "compare", commit_sha(0)[:7], huge.name, "--storage", storage)
    assert code == 2 and "0099_huge.json: not readable JSON" in err.strip().splitlines()[-1], err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["compare", "{a}", "{b}", "--threshold", "-1"], "argument --threshold: '-1' must be at least 0"),
        (["compare", "{a}", "{b}", "--alpha", "2"], "argument --alpha: '2' must be at least 1e-09 and below 1"),
        (["compare", "{a}", "{b}", "--alpha", "0"], "argument --alpha: '0' must be at least 1e-09"),
        (["trend", "--min-change", "-1"], "argument --min-change: '-1' must be at least 0"),
        (["trend", "--min-change", "nan"], "argument --min-change: 'nan' must be at least 0"),
        (["compare", "", "{b}"], "an empty commit name matches every commit"),
        (["plot", "--format", "svg", "-o", "{tmp}/y.png"], "is a .png file but --format asks for svg"),
        (["plot", "-o", "{tmp}/x"], "the figure format must be .png or .svg"),
        (["plot", "--tokens", "16,,32"], "--tokens: '16,,32' has an empty item"),
    ],
)
def test_values_that_mean_nothing_are_refused(storage, tmp_path, capsys, argv, message):
    write_history(storage, 2)
    fill = {"a": commit_sha(0)[:7], "b": commit_sha(1)[:7], "tmp": tmp_path}
    code, _, err = perf_core(capsys, *[a.format(**fill) for a in argv], "--storage", storage)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob("x*"))


def test_trend_legend_sits_beside_the_axes_not_over_the_series():
    column = column_of([1e-6 * (1 + i) for i in range(5)], high=1.1)
    fig = figures.trend_figure([f"c{i}" for i in range(5)], {"a / b": [figures.TrendLine("16 tokens", column)]}, "t")
    fig.canvas.draw()
    (ax,) = fig.axes
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1  # entirely to the right of the plotting area
    matplotlib.pyplot.close(fig)


def test_trend_title_sits_above_the_first_panels_title_however_tall_the_figure():
    line = figures.TrendLine("16 tokens", column_of([1e-6 * (1 + i) for i in range(3)], high=1.1))
    panels = {f"kernel{k} / eager": [line] for k in range(6)}  # six panels: a figure 21.6 in tall
    fig = figures.trend_figure(["c0", "c1", "c2"], panels, "Per-token latency across commits: a machine")
    renderer = fig.canvas.get_renderer()
    (suptitle,) = [text for text in fig.texts if text.get_text() == fig.get_suptitle()]
    title = suptitle.get_window_extent(renderer)
    first = fig.axes[0].title.get_window_extent(renderer)
    assert title.y0 >= first.y1  # display coordinates grow upwards
    matplotlib.pyplot.close(fig)


@pytest.mark.parametrize(
    "label",
    [
        "CPU",
        "NVIDIA H200 | torch 2.11.0+cu130 | Python 3.12 | 1 thread | cold cache, rest 1 | preset llama-3-8b",
        "NVIDIA H100 80GB HBM3 " * 8,  # one part longer than a line
        " | ".join(f"part {i}" for i in range(40)),
    ],
)
def test_figure_titles_lie_within_the_figure_and_above_the_panels_whatever_the_label(label):
    curve = figures.Curve("c0", (16, 32), (2e-6, 1e-6))
    line = figures.TrendLine("16 tokens", column_of([1e-6, 1.1e-6, 1.2e-6], high=1.1))
    drawn = [
        figures.per_token_figure([figures.Panel("k / v", (curve,))], label, "Latency per Token"),
        figures.trend_figure(["c0", "c1", "c2"], {"k / v": [line]}, label),
    ]
    try:
        for fig in drawn:
            renderer = fig.canvas.get_renderer()
            (suptitle,) = [text for text in fig.texts if text.get_text() == fig.get_suptitle()]
            title, whole = suptitle.get_window_extent(renderer), fig.bbox
            assert whole.x0 <= title.x0 and title.x1 <= whole.x1 and title.y1 <= whole.y1, (label, title, whole)
            assert title.y0 >= fig.axes[0].title.get_window_extent(renderer).y1
    finally:
        for fig in drawn:
            matplotlib.pyplot.close(fig)


@pytest.mark.parametrize("width_in", [4.0, 6.4, 12.8])
def test_a_fitted_title_keeps_its_parts_and_names_whole_within_its_lines(width_in):
    label = "NVIDIA H200 | torch 2.11.0+cu130 | Python 3.12 | 1 thread | cold cache, rest 1 | preset llama-3-8b"
    lines = figures.fit_title(f"{label}\nLatency per Token", width_in).splitlines()
    budget = int(width_in * figures.TITLE_CHARS_PER_IN)
    assert all(len(line) <= budget for line in lines) and lines[-1] == "Latency per Token"
    assert " | ".join(lines[:-1]).split(" | ") == label.split(" | ")  # broken only between parts here
    many = figures.fit_title(" | ".join(f"part {i}" for i in range(200)), width_in).splitlines()
    assert len(many) == figures.TITLE_LINES and many[-1].endswith("...")


def test_default_figure_names_are_ignored_by_git():
    ignored = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", "per_token.png", "trend.png", "per_token.svg", "trend.svg"],
        capture_output=True,
        text=True,
    )
    assert ignored.stdout.split() == ["per_token.png", "trend.png", "per_token.svg", "trend.svg"]


def test_per_token_table_names_device_preset_and_threads(suite):
    args = ["--benchmark-only", "--kernels=matmul", "--variants=eager", "--tokens=16", "--benchmark-max-time=0.01"]
    result = suite.runpytest_inprocess(*args)
    result.stdout.fnmatch_lines(
        ["*per-token latency (median per call / tokens): *, preset cpu-small (float32), 1 thread(s)*"]
    )
