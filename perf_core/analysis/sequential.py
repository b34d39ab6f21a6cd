"""A stopping rule for the gate: add pairs of runs only while some benchmark's verdict is open.

After k pairs (k runs a side, A B B A ...), each benchmark is looked at once:

- **regression** (improvement): the head/base ratio of medians is above 1 + threshold (below
  1 / (1 + threshold)) and the exact two-sided Mann-Whitney test rejects equality at this look's level;
- **unchanged**: the ratio's confidence interval at this look's level lies inside
  [1 / (1 + threshold), 1 + threshold] (the change, whatever it is, is shown to be smaller than the
  threshold: an equivalence test, two one-sided tests read off one interval, Schuirmann 1987);
- **open** otherwise. A settled benchmark keeps its verdict; the gate adds a pair while any is open,
  from `Plan.minimum` up to `Plan.maximum` pairs (`--pairs`), where open ones are "inconclusive".

False alarms over the repeated looks (a sequential test looked at after every pair rejects more
often than its nominal level, Armitage, McPherson & Rowe 1969): each look n gets its own level a_n,
and the levels of all looks a benchmark can have sum to at most alpha, so by the union bound
(Bonferroni) a benchmark with no change is flagged at some look with probability at most alpha,
whenever the gate stops. The split is Haybittle-Peto's (Haybittle 1971, Peto et al. 1976): interim
looks only at an extreme boundary, the final look at nearly the full alpha. Here the interim
boundary is the most extreme outcome the rank test has, every head run slower (faster) than every
base run, whose exact size is 2 / C(2n, n) (n runs a side); the final look gets alpha less the sum
of those. The Mann-Whitney null distribution is exact and free of the noise's shape (it needs only
that, without a change, the 2n runs are exchangeable, as the fixed-count gate does), so the sizes
are exact, not estimated: the rule keeps its rate on heavy-tailed noise too. Why not Pocock's
constant level: with n = 4..10 runs a side the rank test has few attainable levels, and an equal
split of 0.05 over 5+ looks (<= 0.01 each) is unreachable at 4 and 5 runs (0.029, 0.0079): a clear
regression could not stop early. Stopping as **unchanged** spends nothing: it only removes chances
to reject. Its own error (calling a change beyond the threshold unchanged) is at most alpha / 2 at
each look (a 1 - alpha interval inside the band is two one-sided tests at alpha / 2, as a fixed-count
gate of that many pairs would claim). It is not divided over the looks: that error loses a regression
rather than raising a false alarm, an interval at the interim levels (every pairwise ratio inside the
band) grew wider with every pair and settled nothing after the first look, and the script measures
its cost as power.

The interval is the Hodges-Lehmann one that inverts the same test (Lehmann 1975, ch. 2): the shifts
of log time not rejected at level alpha, read off the sorted n^2 pairwise differences
log(head_i) - log(base_j); the ratio's interval is its exponential. Ties are counted half (midranks)
and judged against the no-ties distribution (timings in seconds rarely tie).

The minimum is the first look whose level can be reached: 2 / C(8, 4) = 0.029 <= 0.05, so 4 pairs at
alpha = 0.05. scripts/sequential_trials.py measures the false-alarm rate, the power and the pairs
used against the fixed-count rule (docs/gate.md has the figures). Pure: no I/O, numpy only.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from perf_core.errors import UsageError

REGRESSION, IMPROVEMENT, UNCHANGED, OPEN = "regression", "improvement", "unchanged", "open"
# Float slack when a p-value is compared with a level built from the same exact counts.
_SLACK = 1e-12


@functools.cache
def _u_counts(m: int, n: int) -> tuple[int, ...]:
    """How many of the C(m + n, n) orderings give each Mann-Whitney U = 0..m*n (no ties)."""
    if m == 0 or n == 0:
        return (1,)
    # U counts pairs (head above base); the largest value either is the head's (adds n) or is not.
    with_top = _u_counts(m - 1, n)
    without = _u_counts(m, n - 1)
    counts = [0] * (m * n + 1)
    for u, ways in enumerate(without):
        counts[u] += ways
    for u, ways in enumerate(with_top):
        counts[u + n] += ways
    return tuple(counts)


@functools.cache
def _null_cdf(m: int, n: int) -> np.ndarray:
    """P(U <= u) for u = 0..m*n under no change (read-only, shared between calls)."""
    counts = np.asarray(_u_counts(m, n), dtype=float)
    cdf = np.cumsum(counts) / counts.sum()
    cdf.flags.writeable = False
    return cdf


def _median(values: np.ndarray) -> float:
    """np.median without its generality: 60% of a look's time at 4-10 samples."""
    ordered = sorted(values.tolist())
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def smallest_p(n: int, m: int | None = None) -> float:
    """The smallest two-sided exact Mann-Whitney p-value with n and m runs a side: 2 / C(n + m, n)."""
    m = n if m is None else m
    return min(1.0, 2 / math.comb(n + m, n))


def mann_whitney(base: Sequence[float], head: Sequence[float]) -> tuple[float, float]:
    """(U, exact two-sided p): U counts the (head, base) pairs where head is slower (ties count half)."""
    b, h = np.asarray(base, dtype=float), np.asarray(head, dtype=float)
    u = float((h[:, None] > b[None, :]).sum() + 0.5 * (h[:, None] == b[None, :]).sum())
    cumulative = _null_cdf(len(h), len(b))
    low = cumulative[math.floor(u)]  # P(U <= u)
    high = 1.0 - (cumulative[math.ceil(u) - 1] if u >= 1 else 0.0)  # P(U >= u)
    return u, min(1.0, 2 * min(low, high))


def ratio_interval(base: Sequence[float], head: Sequence[float], level: float) -> tuple[float, float]:
    """The head/base ratio's interval at confidence 1 - level (Hodges-Lehmann, inverting the test);
    (0, inf) where no interval that narrow exists at these sample sizes."""
    b, h = np.log(np.asarray(base, dtype=float)), np.log(np.asarray(head, dtype=float))
    tail = _null_cdf(len(h), len(b))  # P(U <= u)
    # k pairs cut from each end: the largest k with P(U <= k - 1) <= level / 2.
    k = int(np.searchsorted(tail, level / 2 * (1 + _SLACK), side="right"))
    if k == 0:
        return 0.0, math.inf
    differences = np.sort((h[:, None] - b[None, :]).ravel())
    return float(np.exp(differences[k - 1])), float(np.exp(differences[-k]))


@dataclass(frozen=True)
class Plan:
    """Which levels the looks get: `levels[i]` is the level of the look after `minimum + i` pairs.

    Interim looks (all but the last) reject only at complete separation (level 2 / C(2n, n));
    the last gets alpha less their sum. The levels sum to at most alpha.
    """

    alpha: float
    minimum: int
    maximum: int
    levels: tuple[float, ...]

    def level(self, pairs: int) -> float:
        """This look's level; 0 before the minimum (no look there)."""
        if pairs < self.minimum:
            return 0.0
        return self.levels[min(pairs, self.maximum) - self.minimum]


def plan(alpha: float, maximum: int) -> Plan:
    """The looks for `maximum` pairs at most; raises UsageError when no look can reach alpha.

    Interim looks come first to last, each kept only if the final look can still reach its own
    smallest p-value with what is left (so a small alpha gives fewer interim looks, none at worst:
    the fixed-count rule at the maximum).
    """
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha: {alpha!r} is not between 0 and 1")
    if smallest_p(maximum) > alpha:
        reachable = next(n for n in range(1, 64) if smallest_p(n) <= alpha)
        raise UsageError(
            f"--pairs {maximum}: with {maximum} runs a side no difference can be significant at alpha {alpha:g}"
            f" (smallest p {smallest_p(maximum):.3g}); use at least {reachable}"
        )
    levels: dict[int, float] = {}
    spent = 0.0
    for n in range(1, maximum):
        size = smallest_p(n)
        if size <= alpha and alpha - spent - size >= smallest_p(maximum) * (1 - _SLACK):
            levels[n] = size
            spent += size
    minimum = min(levels, default=maximum)
    levels[maximum] = alpha - spent
    return Plan(alpha, minimum, maximum, tuple(levels.get(n, 0.0) for n in range(minimum, maximum + 1)))


@dataclass(frozen=True)
class Look:
    """One benchmark after `pairs` pairs: its verdict, ratio of medians (head / base), the exact
    p-value, and the ratio's 1 - alpha interval."""

    verdict: str  # REGRESSION, IMPROVEMENT, UNCHANGED or OPEN
    pairs: int
    ratio: float
    p: float
    low: float
    high: float

    @property
    def settled(self) -> bool:
        return self.verdict != OPEN


def look(base: Sequence[float], head: Sequence[float], rule: Plan, threshold: float) -> Look:
    """The verdict of one benchmark from its samples (one per run, seconds) after min(len) pairs.

    Before `rule.minimum` pairs, and at a look whose level is 0, the verdict is OPEN whatever the
    samples say. Raises ValueError on a sample that is not a positive number.
    """
    pairs = min(len(base), len(head))
    b, h = np.asarray(base[:pairs], dtype=float), np.asarray(head[:pairs], dtype=float)
    both = np.concatenate((b, h))
    if pairs == 0 or not bool(np.all((both > 0) & np.isfinite(both))):
        raise ValueError("samples must be positive finite seconds, at least one a side")
    ratio = _median(h) / _median(b)
    _, p = mann_whitney(b, h)
    level = rule.level(pairs)
    low, high = ratio_interval(b, h, rule.alpha) if level > 0 else (0.0, math.inf)
    band = 1 + threshold
    if level > 0 and p <= level * (1 + _SLACK) and ratio > band:
        verdict = REGRESSION
    elif level > 0 and p <= level * (1 + _SLACK) and ratio < 1 / band:
        verdict = IMPROVEMENT
    elif 1 / band < low and high < band:
        verdict = UNCHANGED
    else:
        verdict = OPEN
    return Look(verdict, pairs, ratio, p, low, high)


def step(
    settled: Mapping[str, Look],
    samples: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    rule: Plan,
    threshold: float,
) -> dict[str, Look]:
    """Every benchmark's look after the latest pair: settled ones keep their verdict (a verdict is
    never revised, so no look is taken twice), the others are looked at. `samples`: name ->
    (base, head) seconds, one per run."""
    return {
        name: settled[name] if name in settled and settled[name].settled else look(base, head, rule, threshold)
        for name, (base, head) in samples.items()
    }


def should_continue(looks: Mapping[str, Look], rule: Plan) -> bool:
    """Add another pair? Only while some benchmark is open and the maximum is not reached."""
    pairs = max((seen.pairs for seen in looks.values()), default=0)  # settled ones keep their own
    return pairs < rule.minimum or (pairs < rule.maximum and any(not seen.settled for seen in looks.values()))


def stop_reason(looks: Mapping[str, Look], rule: Plan) -> str:
    """One line saying why the gate stopped where it did."""
    pairs = max((seen.pairs for seen in looks.values()), default=0)  # settled ones keep their own
    still = sorted(name for name, seen in looks.items() if not seen.settled)
    if not still:
        return f"every benchmark settled after {pairs} of at most {rule.maximum} pairs"
    shown = ", ".join(still[:3]) + (f" and {len(still) - 3} more" if len(still) > 3 else "")
    return f"stopped at the maximum of {rule.maximum} pairs with {len(still)} benchmark(s) open: {shown}"
