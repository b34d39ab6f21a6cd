"""What several test files share: running the CLI in-process, a fingerprint of a history folder,
a trend series to draw, the suite's options as the plugin reads them, a workload small enough to
compile in seconds, and git with a throwaway identity."""

import hashlib
import json
import subprocess
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from pytest import RunResult

from perf_core.analysis import select
from perf_core.cli import main
from perf_core.measure.selection import OPTIONS
from perf_core.measure.workload import Workload

ROOT = Path(__file__).resolve().parent.parent  # the checkout under test
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)  # the synthetic histories' first commit time
# The CPU tests' workload shape: every kernel compiles in seconds and still checks against eager.
SMALL = {"d_model": 32, "n_heads": 4, "d_ff": 88}
# For the suite's runs that tests start (pytester's, perf-core ab's): they never use Hypothesis,
# whose pytest plugin costs each run ~1 s of imports (the test command starts over 30 such runs).
SCRATCH_ADDOPTS = "-p no:hypothesispytest"


def perf_core(capsys, *argv) -> tuple[int, str, str]:
    """`perf-core ARGV` in this process: its exit code, stdout and stderr."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(storage: Path) -> dict[str, str]:
    """Every file under `storage` and its SHA-256: equal before and after means nothing was changed."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(storage.rglob("*")) if p.is_file()}


def column_of(values, low: float = 0.9, high: float = 1.2) -> select.Column:
    """A Column of these per-token figures (None: absent), its interval `low` and `high` times each."""
    per_token = np.array([np.nan if v is None else v for v in values], dtype=float)
    return select.Column(per_token, per_token * low, per_token * high)


def raw_options(**overrides: str) -> dict[str, str]:
    """Every suite option at its ini default, as parse_selection takes them, with `overrides`."""
    return {name: default for name, (default, _) in OPTIONS.items()} | overrides


def small(kernel: str, n_tokens: int = 8, **fields) -> Workload:
    """`kernel` at `n_tokens` in the SMALL shape; `fields` override Workload's (dtype, device, sizes)."""
    return Workload(kernel, n_tokens, **(SMALL | fields))


def git(repo: Path, *args: str) -> str:
    """`git ARGS` run in `repo` as a throwaway author: its stdout, stripped; a failure raises."""
    command = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@localhost", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def under_floor(document: dict) -> dict[str, float]:
    """The benchmarks of a saved run whose median is under its floor: name -> median / floor."""
    ratios = {b["param"]: b["stats"]["median"] / b["extra_info"]["floor_s"] for b in document["benchmarks"]}
    return {name: ratio for name, ratio in ratios.items() if ratio < 1}


def floor_held(run_suite: Callable[..., RunResult], storage: Path, first: dict, *args: str) -> dict[str, float]:
    """under_floor of `first`, a run of the suite; where some median is under its floor, that of one
    more run (`run_suite(*args)`, saved under `storage`), the first's ratios kept as a warning in the
    test's report. Why: the floor comes from the peak rates the run measures when it starts; beside
    other work (the test command's other worker), a peak measured in a busy moment and a benchmark timed
    in a quiet one put matmul-eager-16 at 0.96x its floor, once. A floor that is off by more than that
    noise (a wrong cost model, a peak measured on the wrong product) is under in both runs."""
    under = under_floor(first)
    if not under:
        return under
    warnings.warn(f"under the floor in a first run, taken once more: {under}", stacklevel=2)
    before = set(storage.glob("*/*.json"))
    run_suite(*args).assert_outcomes(passed=len(first["benchmarks"]))
    (again,) = set(storage.glob("*/*.json")) - before
    return under_floor(json.loads(again.read_text()))
