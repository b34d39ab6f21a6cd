"""What several test files share: running the CLI in-process, a fingerprint of a history folder,
a trend series to draw, and the suite's options as the plugin reads them."""

import hashlib
from pathlib import Path

import numpy as np

from perf_core.analysis import select
from perf_core.cli import main
from perf_core.measure.plugin import OPTIONS


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
