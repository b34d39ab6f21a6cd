"""The regression decision: a pure function of two samples, shared by `compare` and `ab`.

A benchmark regressed when head is slower than base by more than `threshold` (the effect size)
*and* the two samples differ by a two-sided Mann-Whitney U test at level `alpha` (significance).
Either alone raises false alarms on shared machines: tiny drifts are significant with many
rounds, and big-looking ratios happen by chance with few runs. Mann-Whitney makes no assumption
about the shape of timing distributions (long right tails); note that with n runs a side its
smallest two-sided p-value is 2 / C(2n, n), so n >= 4 is needed to reach alpha = 0.05.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from perf_core.analysis.records import Run
from perf_core.analysis.select import samples
from perf_core.errors import EXIT_OK, EXIT_REGRESSION

# The defaults of every command that decides (compare, ab); their --help shows these.
ALPHA = 0.05
THRESHOLD = 0.05
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Verdict:
    name: str
    base_s: float  # median of the base sample
    head_s: float
    ratio: float  # head / base: above 1 is slower
    ratio_low: float  # bootstrap interval of the ratio of medians
    ratio_high: float
    p_value: float
    n_base: int
    n_head: int
    verdict: str  # "regression", "improvement" or "unchanged"

    @property
    def change(self) -> float:
        return self.ratio - 1.0


def _ratio_interval(base: np.ndarray, head: np.ndarray) -> tuple[float, float]:
    from scipy import stats  # loaded when a decision is made: plot and trend start faster without it

    if min(len(base), len(head)) < 2:
        ratio = float(np.median(head) / np.median(base))
        return ratio, ratio
    result = stats.bootstrap(
        (base, head),
        lambda b, h, axis: np.median(h, axis=axis) / np.median(b, axis=axis),
        n_resamples=999,
        confidence_level=CONFIDENCE,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(0),  # fixed: the same samples always give the same answer
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def decide(
    name: str,
    base: Sequence[float],
    head: Sequence[float],
    threshold: float = THRESHOLD,
    alpha: float = ALPHA,
) -> Verdict:
    """Compare two samples of seconds (per-run figures, or rounds of one run each)."""
    base_a, head_a = np.asarray(base, dtype=float), np.asarray(head, dtype=float)
    if len(base_a) == 0 or len(head_a) == 0:
        raise ValueError(f"{name}: a side has no samples")
    ratio = float(np.median(head_a) / np.median(base_a))
    if len(base_a) > 1 and len(head_a) > 1 and not (np.ptp(np.concatenate([base_a, head_a])) == 0):
        from scipy import stats

        p_value = float(stats.mannwhitneyu(base_a, head_a, alternative="two-sided").pvalue)
    else:
        p_value = 1.0  # one sample a side, or identical values: nothing can be significant
    low, high = _ratio_interval(base_a, head_a)
    significant = p_value < alpha
    if significant and ratio > 1 + threshold:
        verdict = "regression"
    elif significant and ratio < 1 / (1 + threshold):
        verdict = "improvement"
    else:
        verdict = "unchanged"
    return Verdict(
        name,
        float(np.median(base_a)),
        float(np.median(head_a)),
        ratio,
        low,
        high,
        p_value,
        len(base_a),
        len(head_a),
        verdict,
    )


def exit_code(decided: Iterable[Decided]) -> int:
    """The process exit of a deciding command: 1 when any benchmark regressed, else 0."""
    return EXIT_REGRESSION if any(d.verdict.verdict == "regression" for d in decided) else EXIT_OK


@dataclass(frozen=True)
class Decided:
    """A verdict with what a table needs beside it: the token count and the kind of samples."""

    verdict: Verdict
    n_tokens: int
    unit: str  # "runs" (independent samples) or "rounds" (one run a side: weaker)


def decide_all(
    base: list[Run], head: list[Run], names: Sequence[str], metric: str, threshold: float, alpha: float
) -> list[Decided]:
    """One verdict per benchmark that both sides have for `metric`, in the order of `names`."""
    decided = []
    for name in names:
        (base_values, base_unit), (head_values, head_unit) = samples(base, name, metric), samples(head, name, metric)
        if not base_values or not head_values:
            continue
        n_tokens = next(run.results[name].n_tokens for run in base if name in run.results)
        unit = base_unit if base_unit == head_unit else "rounds"
        decided.append(Decided(decide(name, base_values, head_values, threshold, alpha), n_tokens, unit))
    return decided
