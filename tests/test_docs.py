"""What the README tells a newcomer holds in this checkout."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from perf_core import contract
from perf_core.cli import main
from perf_core.measure import kernels
from perf_core.measure.plugin import SELECTION_KEY
from perf_core.measure.workload import PRESETS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def table_rows(text: str) -> dict[str, list[str]]:
    """Markdown table rows keyed by their first cell with its backticks taken off."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows[cells[0].strip("`")] = cells[1:]
    return rows


OPTION = re.compile(r"(?<![\w-])--?[a-z][\w-]*")
README_LINES = README.splitlines()


def section(title: str) -> list[str]:
    """The README's lines from the heading `## title` to the next `## ` heading."""
    start = README_LINES.index(f"## {title}") + 1
    end = next((i for i in range(start, len(README_LINES)) if README_LINES[i].startswith("## ")), len(README_LINES))
    return README_LINES[start:end]


def help_options(capsys, command: str) -> set[str]:
    """The options `perf-core COMMAND --help` shows (the option column, not their help text)."""
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0, f"`perf-core {command} --help` failed"
    lines = capsys.readouterr().out.splitlines()
    return {
        opt for line in lines if line.startswith("  -") for opt in OPTION.findall(re.split(r"\s{2,}", line.strip())[0])
    }


def readme_cli_options() -> dict[str, set[str]]:
    """command -> the options the README gives it: in `perf-core COMMAND ...` lines and spans anywhere,
    in the shared-options table (its "taken by" column), and in the `- `COMMAND`:` paragraphs."""
    given: dict[str, set[str]] = {}
    spans = re.compile(r"^    perf-core (\w+)(.*)$|`perf-core (\w+)([^`]*)`", re.MULTILINE)
    for match in spans.finditer(README):
        command, rest = (match[1], match[2]) if match[1] else (match[3], match[4])
        # A shell substitution's options are its own command's: `$(git rev-parse --short HEAD)`.
        given.setdefault(command, set()).update(OPTION.findall(re.sub(r"\$\([^)]*\)", "", rest)))
    lines = section("The `perf-core` command")
    for line in lines:
        cells = [cell.strip() for cell in line.strip("|").split("|")] if line.startswith("| `-") else []
        if len(cells) == 3 and re.fullmatch(r"(`[a-z]+` ?)+", cells[1]):
            for command in re.findall(r"`([a-z]+)`", cells[1]):
                given.setdefault(command, set()).update(OPTION.findall(cells[0]))
    paragraph = None
    for line in lines:
        start = re.match(r"- `([a-z]+)`", line)
        if start or not line.strip() or line.startswith("- "):
            paragraph = start[1] if start else None
        if paragraph:  # its options are code spans of their own (`--ab DIR`), not other tools' (`bencher run --file`)
            for span in re.findall(r"`(-[^`]*)`", line):
                given.setdefault(paragraph, set()).update(OPTION.findall(span))
    return given


def test_every_option_the_readme_gives_a_perf_core_command_is_in_its_help(capsys):
    given = readme_cli_options()
    assert {"plot", "trend", "compare", "report", "export", "ab", "index"} <= given.keys()
    spans = [span for line in section("The `perf-core` command") for span in re.findall(r"`(-[^`]*)`", line)]
    loose = {opt for span in spans for opt in OPTION.findall(span)} - set().union({"--help"}, *given.values())
    assert not loose, f"README's perf-core section names {sorted(loose)} without saying which command takes them"
    for command, options in given.items():
        missing = options - help_options(capsys, command)
        assert not missing, f"README gives `perf-core {command}` {sorted(missing)}, which its --help does not show"


def test_every_pytest_option_the_readme_lists_is_the_suites(pytestconfig, capsys):
    """The options table and the `pytest ...` commands name options the suite's pytest takes; any
    other option in the suite's sections is one of pytest's or of a perf-core command's."""

    def takes(option: str) -> bool:
        try:
            pytestconfig.getoption(option)
        except ValueError:
            return False
        return True

    lines = section("What runs")
    table = {OPTION.findall(line)[0] for line in lines if line.startswith("| `--")}
    assert {f"--{name}" for name in ("tokens", "kernels", "device", "cache", "rest")} <= table
    commands = {opt for match in re.finditer(r"pytest((?: --?[\w=.-]+)+)", README) for opt in OPTION.findall(match[1])}
    for option in table | commands:
        assert takes(option), f"README lists pytest option {option}, which the suite does not take"
    cli = set().union(*(help_options(capsys, command) for command in readme_cli_options()))
    # `pytest-benchmark compare ...` spans name pytest-benchmark's own command's options.
    own = re.compile(r"`pytest-benchmark compare([^`]*)`")
    compare = {opt for line in lines for match in own.finditer(line) for opt in OPTION.findall(match[1])}
    assert compare <= pytest_benchmark_compare_options(), "README gives `pytest-benchmark compare` an option it lacks"
    # Spans of other tools (`pip install -e .`, `git ...`) name those tools' options.
    other = re.compile(r"`(?:pip|python3 -m pip|git) [^`]*`")
    for option in {opt for line in lines for opt in OPTION.findall(other.sub("", own.sub("", line)))}:
        assert takes(option) or option in cli, f"README's section on the suite names {option}, which nothing takes"


def pytest_benchmark_compare_options() -> set[str]:
    """The options of pytest-benchmark's own `compare` command, read from its parser."""
    import argparse

    from pytest_benchmark.cli import make_parser

    parsers = next(a for a in make_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {option for action in parsers.choices["compare"]._actions for option in action.option_strings}


def test_the_default_token_list_is_contract_token_counts(pytestconfig):
    """The README's one place to change the token list: nothing in this checkout's ini overrides it."""
    if pytestconfig.getoption("perf_tokens"):
        pytest.skip("--tokens given on the command line")
    assert pytestconfig.stash[SELECTION_KEY].tokens == contract.TOKEN_COUNTS


def test_the_readme_describes_every_kernel_of_the_package_as_its_registry_does():
    built_in = {name: k for name, k in kernels.REGISTRY.items() if k.build.__module__.startswith("perf_core.")}
    assert built_in, "no kernel registered by the package"
    rows = table_rows(README)
    for name, kernel in built_in.items():
        assert rows.get(name) == [kernel.description], f"README's row of kernel {name!r}"


def test_the_readme_lists_every_preset_with_its_sizes():
    rows = table_rows(README)
    for name, preset in PRESETS.items():
        shape = rows[name][0]
        assert f"d_model {preset.d_model}," in shape and f"d_ff {preset.d_ff}," in shape, name
        assert f"{preset.n_heads} heads" in shape and f"{preset.dtype}, batch {preset.batch}" in shape, name


def test_the_readme_benchmark_command_runs_with_the_plain_install():
    """`pip install -e .` (no dev extras) brings pytest and pytest-benchmark alone: the tests' conftest
    must name no hook of another plugin unless optional (xdist's pytest_xdist_auto_num_workers made
    pytest stop with an INTERNALERROR, exit 3, when a newcomer ran `pytest --benchmark-only`). No plugin
    is loaded here but pytest-benchmark's; the suite collects."""
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    command = [sys.executable, "-m", "pytest", "-p", "pytest_benchmark.plugin", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [*command, "--collect-only", "-q", "tests/test_latency.py"],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "tests collected" in done.stdout
