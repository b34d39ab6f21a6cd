"""What every output carries: names from a history that no registry would accept, and a reader
that goes away early (`perf-core compare A B | head -1`)."""

import fcntl
import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from perf_core.analysis import ab, output, report
from perf_core.analysis.synthetic import STRANGE_KERNELS, commit_sha, run_document, write_history, write_run
from perf_core.cli import main
from perf_core.contract import TOKEN_COUNTS, VARIANTS, bench_name

STRANGE = tuple(bench_name(k, v, n) for k in (*STRANGE_KERNELS, "matmul") for v in VARIANTS for n in (16, 32))


@pytest.fixture(scope="module")
def strange(tmp_path_factory):
    """Three commits of benchmarks named with STRANGE_KERNELS (and matmul)."""
    storage = tmp_path_factory.mktemp("strange")
    write_history(storage, 3, names=STRANGE)
    return storage


def test_text_outputs_carry_every_name(strange, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # plot writes its figure too
    base, head = commit_sha(0)[:7], commit_sha(2)[:7]
    assert main(["compare", base, head, "--storage", str(strange)]) == 0
    table = capsys.readouterr().out.splitlines()
    rows = [line for line in table if line.split("  ")[0].strip() in STRANGE]
    assert len(rows) == len(STRANGE)
    assert main(["plot", "--json", "--storage", str(strange)]) == 0
    assert {row["benchmark"] for row in json.loads(capsys.readouterr().out)} == set(STRANGE)
    assert main(["trend", "--json", "--storage", str(strange)]) == 0
    assert {s["benchmark"] for s in json.loads(capsys.readouterr().out)["series"]} == set(STRANGE)
    # the figures: a name is text, never TeX (`a$\\x$` stopped matplotlib with a ParseFatalException)
    assert main(["trend", "--storage", str(strange), "-o", "trend.png"]) == 0
    assert (tmp_path / "per_token.png").stat().st_size and (tmp_path / "trend.png").stat().st_size


def test_a_text_table_keeps_its_rows_and_columns_whatever_the_names():
    lines = output.table_text(["benchmark", "ratio"], [["注意力-eager-16", "1.000"], ["a\nb\x1b[31m", "12.500"]])
    rows = lines.splitlines()
    # 注意力 takes 6 columns; control characters are shown escaped, on the row's one line
    assert rows[1:] == ["注意力-eager-16   1.000", "a\\nb\\x1b[31m" + " " * 5 + "12.500"]
    assert all(output.display_width(row) == output.display_width(rows[0]) for row in rows[1:])


def unescape(cell: str) -> str:
    return re.sub(r"\\(.)", r"\1", cell.strip())


def test_the_pr_comment_escapes_every_table_cell(tmp_path):
    paths = {"base": [], "head": []}
    for i in range(3):
        for side in paths:
            when = datetime(2026, 1, 1, tzinfo=timezone.utc)
            paths[side].append(write_run(tmp_path / side, i, run_document("a" * 40, when, seed=i, names=STRANGE)))
    text = ab.markdown(ab.verdicts(ab.collect(paths), 0.05, 0.05), "perf-core ab: main -> <pr>", 0.05)
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| benchmark")]
    assert len(rows) == len(STRANGE)
    found = set()
    for row in rows:
        cells = re.split(r"(?<!\\)\|", row)[1:-1]  # GitHub splits a row on the pipes not escaped
        assert len(cells) == 7, row
        found.add(unescape(cells[0]))
        assert not re.search(r"(?<!\\)[<>`*$]", cells[0]), row  # no markup left to GitHub
    assert found == set(STRANGE)
    assert "<sub>perf-core ab: main -&gt; &lt;pr&gt;</sub>" in text


def test_chart_ids_are_css_identifiers_one_per_panel():
    panels = [f"{k}-{v}" for k in (*STRANGE_KERNELS, "a b", "a_b", "matmul") for v in VARIANTS]
    ids = [report.chart_id(kind, panel) for kind in ("curve", "trend") for panel in panels]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", i) for i in ids)


PIPE = 4096  # bytes the test's pipe holds (Linux's smallest, a page)


def first_line_then_close(argv: list[str]) -> tuple[int, bytes, str]:
    """`perf-core ARGV | head -1`: a real pipe, closed after one line; (exit code, the line, stderr)."""
    read, write = os.pipe()
    fcntl.fcntl(write, fcntl.F_SETPIPE_SZ, PIPE)  # Linux: so that the output cannot fit in the pipe
    env = os.environ | {"PYTHONWARNINGS": "ignore"}
    child = subprocess.Popen(
        [sys.executable, "-m", "perf_core.cli", *argv], stdout=write, stderr=subprocess.PIPE, env=env
    )
    os.close(write)
    line = b""
    while not line.endswith(b"\n") and (byte := os.read(read, 1)):
        line += byte
    os.close(read)
    err = child.stderr.read().decode()
    return child.wait(), line, err


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    """Six commits of 72 benchmarks: every command below writes well past PIPE."""
    storage = tmp_path_factory.mktemp("wide")
    write_history(
        storage, 6, names=tuple(bench_name(f"k{i}", v, n) for i in range(6) for v in VARIANTS for n in TOKEN_COUNTS)
    )
    return storage


@pytest.mark.parametrize(
    "argv",
    [
        ["compare", commit_sha(0)[:7], commit_sha(5)[:7]],
        ["trend", "--json"],
        ["plot", "--json"],
        ["export", "--format", "github-action-benchmark"],
    ],
    ids=lambda argv: argv[0],
)
def test_a_closed_pipe_ends_the_command_quietly(argv, wide, capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # plot writes its figure too
    argv = [*argv, "--storage", str(wide)]
    would = main(argv)  # the exit code without the pipe
    assert len(capsys.readouterr().out) > PIPE + 1000
    code, line, err = first_line_then_close(argv)
    assert line and err == ""  # no BrokenPipeError traceback, no "Exception ignored" line
    assert code in (would, 141) and code != 1  # 141: 128 + SIGPIPE, what a shell shows for it
