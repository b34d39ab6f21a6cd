"""Change points in a per-commit series, with ruptures' PELT search (KernelCPD, linear kernel).

Why ruptures and this penalty: PELT finds the exact optimum of a penalised least-squares
segmentation in linear time, and is deterministic. We segment the log of per-token latency, so a
+8% step is the same size whatever the absolute level, and use a BIC-like penalty,
`penalty_scale * sigma^2 * log(n)`, where sigma is the noise of the series estimated robustly from
successive differences (MAD / 0.6745 / sqrt(2)); it adapts to how noisy a machine is instead of a
fixed number. A change is then reported only when the median level moves by at least
`min_change` (5% by default), so statistically clear but negligible shifts stay quiet.

The scale 5 was chosen on 300 synthetic series of 60 commits with 3% noise (the fixed-seed
cases are the trend tests in tests/test_history.py and tests/test_analysis.py): scale 3 / 4 / 5 gave 2 / 1 / 0 false changes on
flat series, and found a +8% step at exactly the right commit in 242 / 243 / 244 of 300 (within
two commits in 294 / 295 / 296; a single noisy commit at the edge of a step can belong to either side).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

MIN_CHANGE = 0.05
PENALTY_SCALE = 5.0
MIN_SIZE = 3  # commits per segment: a single odd commit is noise, not a new level
MIN_POINTS = 2 * MIN_SIZE  # a shorter series cannot hold a change: nothing is searched


@dataclass(frozen=True)
class Change:
    index: int  # position of the first point at the new level
    change: float  # relative change of the median level, +0.08 is 8% slower


def noise_sigma(log_values: np.ndarray) -> float:
    diffs = np.diff(log_values)
    mad = np.median(np.abs(diffs - np.median(diffs)))
    return float(mad / 0.6745 / np.sqrt(2))


def detect(
    values: Sequence[float],
    min_change: float = MIN_CHANGE,
    penalty_scale: float = PENALTY_SCALE,
    min_size: int = MIN_SIZE,
) -> list[Change]:
    """Change points of a positive series (e.g. per-token seconds per commit, in commit order)."""
    series = np.log(np.asarray(values, dtype=float))
    if len(series) < 2 * min_size:  # MIN_POINTS with the default min_size
        return []
    sigma = max(noise_sigma(series), 1e-3)  # floor: a perfectly flat series must not divide by zero
    penalty = penalty_scale * sigma**2 * np.log(len(series))
    # KernelCPD with the linear kernel is PELT on the l2 cost, in ruptures' C code (Pelt(model="l2")
    # gives the same segmentation in pure Python, ~50x slower on a 200-commit history).
    import ruptures  # loaded only when there is a series to segment: keeps the CLI's start quick

    ends = (
        ruptures.KernelCPD(kernel="linear", min_size=min_size, jump=1).fit(series.reshape(-1, 1)).predict(pen=penalty)
    )
    bounds = [0, *ends]
    found = []
    for start, cut, stop in zip(bounds, bounds[1:], bounds[2:]):
        change = float(np.exp(np.median(series[cut:stop]) - np.median(series[start:cut])) - 1)
        if abs(change) >= min_change:
            found.append(Change(int(cut), change))
    return found


@dataclass(frozen=True)
class Found:
    """A change point of one benchmark's series across commits, as trend and the report list it."""

    benchmark: str
    index: int  # position in the series given: the first commit at the new level
    commit: str
    date: str
    change: float


def found_in(
    benchmark: str,
    per_token_s: np.ndarray,
    commits: Sequence[str],
    when: Sequence[datetime | None],
    min_change: float = MIN_CHANGE,
    memo: MutableMapping[str, str] | None = None,
) -> list[Found]:
    """The change points of a series with gaps (select.Column.per_token_s: NaN where a commit lacks
    the benchmark), named by `commits` and dated by `when`.

    `memo`: answers of earlier searches, by a hash of the series and the search's settings (the
    history index keeps them, so an unchanged series is not searched again, nor ruptures imported).
    """
    series = np.asarray(per_token_s, dtype=float)
    present = np.flatnonzero(~np.isnan(series))
    values = series[present]
    key = hashlib.blake2b(
        values.tobytes() + repr((min_change, PENALTY_SCALE, MIN_SIZE)).encode(), digest_size=16
    ).hexdigest()
    if memo is not None and key in memo:
        detected = [Change(*pair) for pair in json.loads(memo[key])]
    else:
        detected = detect(values.tolist(), min_change=min_change)
        if memo is not None:
            memo[key] = json.dumps([[c.index, c.change] for c in detected])
    found = []
    for change in detected:
        index = int(present[change.index])
        date = when[index].strftime("%Y-%m-%d") if when[index] else "unknown date"
        found.append(Found(benchmark, index, commits[index], date, change.change))
    return found
