"""The README's "Using perf-core for your own core", followed word for word in a scratch project.

The project's files are the README's blocks, its commands the README's lines. Two departures, to
keep the test's own environment as it is and the test short: the install builds the same project with the same pip
into a folder of its own (`--target`, offline, no editable link left in this venv), and each
`pytest --benchmark-only` gets options that keep it short (one token count, tiny rounds, no
Hypothesis plugin, as every scratch run the tests start) and runs as a child of the session's fork
server, which has torch imported already (as `perf-core ab` runs it).
"""

import itertools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from helpers import SCRATCH_ADDOPTS

README = Path(__file__).parents[1] / "README.md"
SECTION = "## Using perf-core for your own core"
TINY = " --tokens 16 --benchmark-max-time 0.001 --benchmark-min-rounds 1 -p no:cacheprovider"


def readme_section() -> tuple[dict[str, str], list[str], list[str]]:
    """The section's files (path -> text of the indented block after a paragraph that starts with
    the path), the files it calls empty, and the lines of its other block (the commands)."""
    text = README.read_text(encoding="utf-8").split(SECTION, 1)[1].split("\n## ", 1)[0]
    chunks: list[tuple[str, list[str]]] = []  # ("prose" | "code", lines), in order
    for line in text.splitlines():
        kind = "code" if line.startswith("    ") else "prose" if line.strip() else "blank"
        if kind == "blank":
            if chunks and chunks[-1][0] == "code":
                chunks[-1][1].append("")  # a blank line inside a block
            else:
                chunks.append(("blank", []))
        elif chunks and chunks[-1][0] == kind:
            chunks[-1][1].append(line)
        else:
            chunks.append((kind, [line]))
    files, commands = {}, []
    chunks = [chunk for chunk in chunks if chunk[0] != "blank"]  # the blanks only kept paragraphs apart
    for (kind, prose), (next_kind, block) in itertools.pairwise(chunks):
        if kind != "prose" or next_kind != "code":
            continue
        code = "\n".join(line[4:] for line in block).strip("\n") + "\n"
        named = re.match(r"`([^`]+\.(?:py|toml))`", prose[0])
        if named:
            files[named.group(1)] = code
        else:
            commands = code.splitlines()
    return files, re.findall(r"empty `([^`]+)`", text), commands


def run(command: list[str] | str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, shell=isinstance(command, str), capture_output=True, text=True)
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def forked(fork_server, command: str, cwd: Path, env: dict) -> str:
    """A `pytest ...` line run as the shell would run it in `cwd` with `env`, but as a child of the
    session's fork server (torch and its compiler imported already; the same process otherwise):
    its standard output."""
    words = shlex.split(command)
    assert words[0] == "pytest"
    done = fork_server.run(cwd, words[1:], env)
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_the_readme_section_builds_a_project_whose_kernel_runs_through_the_suite_plot_and_compare(
    tmp_path, fork_server
):
    files, empty, commands = readme_section()
    assert set(files) == {"conftest.py", "tests/test_latency.py", "my_core/perf.py", "pyproject.toml"}
    assert empty == ["my_core/__init__.py"]
    project, site = tmp_path / "my-core", tmp_path / "site"
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    for name in empty:
        (project / name).write_text("")
    bin_dir = str(Path(sys.executable).parent)  # this venv's pytest and perf-core
    env = os.environ | {
        "PATH": bin_dir + os.pathsep + os.environ["PATH"],
        "PYTHONPATH": str(site),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    env.pop("PERF_CORE_COMMIT", None)
    env["PYTEST_ADDOPTS"] = SCRATCH_ADDOPTS  # as every scratch run the tests start
    run("git init -q && git add -A && git commit -qm base", project, env)

    install, suite, plot, compare = commands
    assert install == "pip install --no-deps -e ."
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site)]
    run([*pip, str(project)], project, env)
    (entry_points,) = site.glob("my_core-*.dist-info/entry_points.txt")
    assert "my_core = my_core.perf:register_kernels" in entry_points.read_text()

    assert suite == "pytest --benchmark-only"
    first = forked(fork_server, suite + TINY, project, env)
    assert "scale-compiled-16" in first and "tokens/s" in first  # the per-token table
    assert "matmul-" not in first  # the ini's perf_kernels: only the project's own kernel
    run("echo '# a change' >> my_core/perf.py && git commit -qam head", project, env)
    forked(fork_server, suite + TINY, project, env)
    saved = sorted((project / ".benchmarks").glob("*/*.json"))
    assert len(saved) == 2

    assert plot == "perf-core plot"
    run(plot, project, env)
    assert (project / "per_token.png").stat().st_size > 0
    assert compare.startswith("perf-core compare ")
    compared = subprocess.run(compare, cwd=project, env=env, shell=True, capture_output=True, text=True)
    assert compared.returncode in (0, 1), compared.stderr  # 1: the gate saw a regression, still a verdict
    assert "scale-compiled-16" in compared.stdout and "scale-eager-16" in compared.stdout, compared.stdout
