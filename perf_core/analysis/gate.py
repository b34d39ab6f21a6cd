"""The regression decision, shared by `compare` and `ab`. Only independent runs decide.

With at least MIN_RUNS runs a side (always so in `ab`): a benchmark regressed when head is slower
than base by more than `threshold` (the effect size) *and* the two sides' per-run figures differ by
a two-sided Mann-Whitney U test at level `alpha` (significance). Either alone raises false alarms on
shared machines: tiny drifts are significant with many samples, and big-looking ratios happen by
chance with few runs. Mann-Whitney makes no assumption about the shape of timing distributions
(long right tails); with n runs a side its smallest two-sided p-value is 2 / C(2n, n).

With fewer runs a side the rounds of one run say nothing about the next run (run-to-run drift is
the noise that matters), so the ratio of the sides' medians is judged against this machine's
measured run-to-run spread (decide_by_spread, select.Spread): consecutive runs of the history are
pairs of runs like this one; each benchmark's log ratio is put in units of that benchmark's own
spread, the pair's whole-run shift (median log ratio) in units of its own, and a pair's statistic
is the larger of its worst benchmark and its shift (select.Spread). A regression needs the ratio above
1 + threshold and a p-value <= alpha, where p is the share of history pairs whose statistic
reached the benchmark's (the new pair counted). That p is exact for the whole table at once whatever the
shape of the noise (timing noise on shared machines has heavy tails: a normal model of it raised
false alarms in half of all same-code compares, docs/gate.md), provided the history's runs are
like the two compared; real changes inside the history only make it more cautious. So alpha = 0.05
needs at least 19 pairs (20 runs); with fewer, or none, the verdict is "undecided": the ratio is
shown and nothing is claimed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from perf_core.analysis.records import Run
from perf_core.analysis.select import Spread, noisy_runs, run_spread, run_values
from perf_core.errors import EXIT_OK, EXIT_REGRESSION

# The defaults of every command that decides (compare, ab); their --help shows these.
ALPHA = 0.05
THRESHOLD = 0.05
# Device time (CUDA events, no host in it) is quiet: five A/A gates on an H200 read ratios within
# 0.3% of 1 (docs/gate.md), so its default threshold can be 2% and a 5% regression stands clear of it.
DEVICE_THRESHOLD = 0.02
CONFIDENCE = 0.95
MIN_RUNS = 3  # runs a side for the runs-as-samples test; fewer: the measured spread decides
# The newest runs of the machine whose consecutive pairs measure its spread: the machine's noise now,
# not years ago (drivers, kernels, neighbours change), and a compare that costs the same at any length
# of history. 500 runs give p-values down to 1/500, far below any useful alpha.
SPREAD_RUNS = 500
# A run whose rounds spread this many times wider than the history's typical run was taken on a
# busy machine: one such run a side is not evidence (docs/gate.md, "Compare with one run a side").
NOISY = 2.0


@dataclass(frozen=True)
class Verdict:
    name: str
    base_s: float  # median of the base sample
    head_s: float
    ratio: float  # head / base: above 1 is slower
    ratio_low: float  # bootstrap interval of the ratio of medians
    ratio_high: float
    p_value: float | None  # None when undecided
    n_base: int
    n_head: int
    verdict: str  # "regression", "improvement", "unchanged", "undecided" or "throttled" (not decided)

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
    verdict = _classify(ratio, p_value < alpha, threshold)
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


def _classify(ratio: float, significant: bool, threshold: float) -> str:
    if significant and ratio > 1 + threshold:
        return "regression"
    if significant and ratio < 1 / (1 + threshold):
        return "improvement"
    return "unchanged"


def ratio_only(name: str, base: Sequence[float], head: Sequence[float], verdict: str) -> Verdict:
    """A verdict that claims nothing ("undecided", "throttled"): the ratio of medians alone."""
    base_s, head_s = float(np.median(base)), float(np.median(head))
    ratio = head_s / base_s
    return Verdict(name, base_s, head_s, ratio, ratio, ratio, None, len(base), len(head), verdict)


def decide_by_spread(
    name: str,
    base: Sequence[float],
    head: Sequence[float],
    spread: Spread | None,
    threshold: float = THRESHOLD,
    alpha: float = ALPHA,
    shift: float = 0.0,
) -> Verdict:
    """Fewer than MIN_RUNS runs a side: the ratio of medians against this machine's Spread; `shift`
    is the whole compared pair's (median log ratio over its benchmarks). A history too short to
    reach alpha, or none, gives "undecided" with the ratio alone."""
    if spread is None or name not in spread.scale or 1 / (spread.pairs + 1) > alpha:
        return ratio_only(name, base, head, "undecided")
    base_s, head_s = float(np.median(base)), float(np.median(head))
    ratio = head_s / base_s
    p_value = spread.p_value(name, float(np.log(ratio)), shift)
    # The interval: the ratio give or take the run-to-run ratio this benchmark stays within 95% of the time.
    z = 1.96 * spread.scale[name]
    low, high = ratio * float(np.exp(-z)), ratio * float(np.exp(z))
    verdict = _classify(ratio, p_value <= alpha, threshold)
    return Verdict(name, base_s, head_s, ratio, low, high, p_value, len(base), len(head), verdict)


@dataclass(frozen=True)
class Decided:
    """A verdict with what a table needs beside it: the token count and what decided it."""

    verdict: Verdict
    n_tokens: int
    unit: str  # "runs" (runs as samples), "spread(N)" (N consecutive-run pairs), or "no spread" (undecided)


def decide_all(
    base: list[Run],
    head: list[Run],
    names: Sequence[str],
    metric: str,
    threshold: float,
    alpha: float,
    history: Sequence[Run] = (),
) -> list[Decided]:
    """One verdict per benchmark that both sides have for `metric`, in the order of `names`.

    `history`: this machine's runs in history order, for the run-to-run spread when a side has fewer
    than MIN_RUNS runs: the newest SPREAD_RUNS of them, the head's own runs left out (a regression
    must not widen its own yardstick).
    """
    samples = {n: (run_values(base, n, metric), run_values(head, n, metric)) for n in names}
    present = [n for n in names if all(samples[n])]
    head_files = {run.path for run in head}
    reference = [run for run in history if run.path not in head_files][-SPREAD_RUNS:]
    # Measured over the whole history, so only when some benchmark has fewer than MIN_RUNS runs a side.
    spread = functools.cache(lambda: run_spread(reference, present, metric))
    noisy = functools.cache(lambda: _noisy_unit(base, head, reference, present))
    # The compared pair's whole-run shift: the median over its benchmarks of log(head / base).
    shift = float(np.median([np.log(np.median(samples[n][1]) / np.median(samples[n][0])) for n in present] or [0.0]))
    decided = []
    for name in present:
        base_values, head_values = samples[name]
        n_tokens = next(run.results[name].n_tokens for run in base if name in run.results)
        throttled = [run.path.name for run in (*base, *head) if name in run.results and run.results[name].throttled]
        if throttled:
            # NVML saw the card slowed while these rounds ran: the samples measure the throttle, not the code.
            verdict = ratio_only(name, base_values, head_values, "throttled")
            decided.append(Decided(verdict, n_tokens, f"throttled in {len(throttled)} run(s)"))
            continue
        if min(len(base_values), len(head_values)) >= MIN_RUNS:
            verdict, unit = decide(name, base_values, head_values, threshold, alpha), "runs"
        elif noisy():
            # A busy machine shifts a whole run by 10-23% (CPU, 2026-11-28): indistinguishable from a
            # regression with one run a side, so nothing is claimed.
            verdict, unit = ratio_only(name, base_values, head_values, "undecided"), noisy()
        else:
            verdict = decide_by_spread(name, base_values, head_values, spread(), threshold, alpha, shift)
            unit = "no spread" if verdict.verdict == "undecided" else f"spread({spread().pairs})"
        decided.append(Decided(verdict, n_tokens, unit))
    return decided


def _noisy_unit(base: list[Run], head: list[Run], reference: Sequence[Run], names: Sequence[str]) -> str | None:
    """ "noisy base", "noisy head" or "noisy base and head" (the side to run again) when a compared run
    spread its rounds NOISY times as wide as the reference's typical run; None when none did."""
    busy = {run.path for run in noisy_runs([*base, *head], reference, names, NOISY)}
    sides = [side for side, runs in (("base", base), ("head", head)) if any(run.path in busy for run in runs)]
    return f"noisy {' and '.join(sides)}" if sides else None


def default_threshold(metric: str) -> float:
    """The --threshold a command uses when none is given: DEVICE_THRESHOLD for device time."""
    return DEVICE_THRESHOLD if metric == "device" else THRESHOLD


def spread_runs_needed(alpha: float) -> int:
    """Runs of history (besides the head's) for decide_by_spread to reach `alpha`: pairs + 1 >= 1 / alpha."""
    return int(np.ceil(1 / alpha - 1e-9))


def exit_code(decided: Iterable[Decided]) -> int:
    """The process exit of a deciding command: 1 when any benchmark regressed, else 0."""
    return EXIT_REGRESSION if any(d.verdict.verdict == "regression" for d in decided) else EXIT_OK
