"""A stopping rule for the gate: add pairs of runs only while some benchmark's verdict is open.

After k pairs (k runs a side, A B B A ...), each benchmark is looked at once:

- **regression** (improvement): the head/base ratio of medians is above 1 + threshold (below
  1 / (1 + threshold)), the gate's test (stats.two_sample_p: the exact two-sided Mann-Whitney
  test) rejects equality at this look's level, and the benchmark's family-wise p over all the
  gate's benchmarks (stats.family_p, `family_ps`) is at most this look's family level;
- **unchanged**: the ratio's 1 - alpha interval (stats.ratio_bounds) lies inside
  [1 / (1 + threshold), 1 + threshold] (the change, whatever it is, is shown to be smaller than the
  threshold: an equivalence test, two one-sided tests read off one interval, Schuirmann 1987);
- **open** otherwise. A settled benchmark keeps its verdict; the gate adds a pair while any is open,
  from `Plan.minimum` up to `Plan.maximum` pairs (`--pairs`), where `perf-core ab` reports an open one
  as stats.decide reads it at the last look's levels (unchanged unless the rank test and the
  family-wise test both reject there).

False alarms over the repeated looks (a sequential test looked at after every pair rejects more
often than its nominal level, Armitage, McPherson & Rowe 1969): each look n gets its own level a_n,
chosen so that a benchmark with no change is flagged at some look with probability at most alpha,
whenever the gate stops. The split is Haybittle-Peto's (Haybittle 1971, Peto et al. 1976): interim
looks only at an extreme boundary, the final look at nearly the full alpha. The interim boundary at
n runs a side is the test's own (stats.interim_level: for the rank test its most extreme outcome,
every head run slower, or faster, than every base run, whose exact size is 2 / C(2n, n)). The final
look's level is stats.last_level: for the rank test the largest attainable p whose chance of a false
rejection at some look, counted exactly over the orders of the runs (stats.sequential_error), stays
within alpha, e.g. 0.0317 at 4..5 pairs (the union bound, alpha less the interim levels, would give
0.0214, and the counted rate of that plan is 0.034, not 0.05: the looks' rejections overlap). Plans
longer than stats.EXACT_UP_TO pairs keep the union bound (Bonferroni). The Mann-Whitney null
distribution is exact and free of the noise's shape (it needs only that, without a change, the 2n
runs are exchangeable, as the fixed-count gate does), so the sizes are exact, not estimated: the rule
keeps its rate on heavy-tailed noise too. Why not Pocock's constant level: with n = 4..10 runs a side the rank test
has few attainable levels, and an equal split of 0.05 over 5+ looks (<= 0.01 each) is unreachable at
4 and 5 runs (0.029, 0.0079): a clear regression could not stop early. Stopping as **unchanged**
spends nothing: it only removes chances to reject. Its own error (calling a change beyond the
threshold unchanged) is at most alpha / 2 at each look (a 1 - alpha interval inside the band is two
one-sided tests at alpha / 2, as a fixed-count gate of that many pairs would claim). It is not
divided over the looks: that error loses a regression rather than raising a false alarm, an interval
at the interim levels (every pairwise ratio inside the band) grew wider with every pair and settled
nothing after the first look, and the script measures its cost as power.

Over the family of benchmarks: each look's rank-test levels bound the false alarms of one
benchmark; over 18 some benchmark would be flagged far more often (a third of the CPU gates with no
change, 2026-12-02). So a rejection also needs the family-wise p (stats.family_p: Westfall & Young's
step-down max-T over relabelings of whole runs, every one up to 9 runs a side, drawn beyond) at
`Plan.family_level`: the interim looks' own levels (its smallest p up to 9 a side is the rank test's
complete separation, 2 / C(2n, n); `plan` keeps no look that either test cannot reach), the last
look alpha less them. The chance of a false verdict on any unchanged benchmark at any look is then
at most the sum of those levels, alpha, whichever other benchmarks changed (the union bound over
the looks; each look's family test keeps its level over all the unchanged benchmarks at once). A
lone benchmark is its own family (the rank test decides).

The test, its smallest p-values, interim boundary, last level and interval are stats' (`two_sample_p`,
`smallest_p`, `interim_level`, `last_level`, `ratio_bounds`: today the exact Mann-Whitney U test and
the Hodges-Lehmann interval that inverts it), the ones behind stats.decide, so a look's regression or
improvement is exactly stats.decide's at that look's level where the family-wise p also reaches
its level: the gate reports each benchmark as stats.decide over its first `pairs` runs at
`Plan.level(pairs)`, with ab.family_guarded's reading of the family p (tests/test_sequential.py,
tests/test_ab.py). The code
here reads the test only through those functions; the reasons above are today's test's (exact sizes,
few attainable levels). Another test keeps the bound where its p-values are valid (P(p <= a) <= a
with no change) and its last level is the union bound's, alpha less the interim levels.

The minimum is the first look whose level can be reached: 2 / C(8, 4) = 0.029 <= 0.05, so 4 pairs at
alpha = 0.05. scripts/sequential_trials.py measures the false-alarm rate, the power and the pairs
used against the fixed-count rule (docs/gate.md has the figures). Pure: no I/O, numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from perf_core.analysis import stats
from perf_core.errors import UsageError

REGRESSION, IMPROVEMENT, UNCHANGED, OPEN = "regression", "improvement", "unchanged", "open"
_SLACK = stats.SLACK


def _median(values: np.ndarray) -> float:
    """np.median without its generality: 60% of a look's time at 4-10 samples."""
    ordered = sorted(values.tolist())
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def smallest_p(n: int, paired: bool = False) -> float:
    """The smallest two-sided p-value of the gate's test with n runs a side (stats.smallest_p), or with
    n pairs timed together (`paired`: stats.paired_smallest_p)."""
    return stats.paired_smallest_p(n) if paired else stats.smallest_p(n, n)


@dataclass(frozen=True)
class Plan:
    """Which levels the looks get: `levels[i]` is the level of the look after `minimum + i` pairs.

    Interim looks (all but the last) reject only at stats.interim_level (the rank test's complete
    separation, level 2 / C(2n, n)); the last at stats.last_level, so that a benchmark with no change
    is flagged at some look with probability at most alpha (stats.sequential_error).
    """

    alpha: float
    minimum: int
    maximum: int
    levels: tuple[float, ...]
    family: bool = True  # whether a rejection also needs the family-wise p (False: gates saved before it)
    paired: bool = False  # pairs timed together: the signed-rank test of each pair's ratio (stats.paired_p)

    @property
    def looks(self) -> dict[int, float]:
        """Pairs -> level of each look, as stats.sequential_error takes them."""
        return {self.minimum + i: level for i, level in enumerate(self.levels)}

    def level(self, pairs: int) -> float:
        """This look's level; 0 before the minimum (no look there)."""
        if pairs < self.minimum:
            return 0.0
        return self.levels[min(pairs, self.maximum) - self.minimum]

    def family_level(self, pairs: int) -> float:
        """The level this look's family-wise p-value (stats.family_p) must reach: the interim looks'
        own, the last look alpha less them (the union bound: the chance of a false verdict on any
        benchmark at any look is at most the sum of the looks' family levels, alpha); 0 before the minimum."""
        if pairs < self.minimum:
            return 0.0
        if pairs < self.maximum:
            return self.level(pairs)
        return self.alpha - sum(self.levels[:-1])


def plan(alpha: float, maximum: int, family: bool = True, paired: bool = False) -> Plan:
    """The looks for `maximum` pairs at most; raises UsageError when no look can reach alpha.
    `family`: with the family-wise guard (False: a gate saved before it, read as it decided).
    `paired`: each pair's runs timed together, read by the signed-rank test (its smallest p 2 / 2^n
    needs 6 pairs at alpha 0.05; the last level is the union bound's, alpha less the interim levels).

    Interim looks come first to last from stats.MIN_RUNS, each kept only if the test and the
    family-wise test can reach its level at that size and the final look can still reach their
    smallest p-values with what is left (so a small alpha gives fewer interim looks, none at worst:
    the fixed-count rule at the maximum).
    """
    _check_alpha(alpha, family, paired)
    needed = stats.samples_needed(alpha, paired)
    if maximum < stats.MIN_RUNS:
        raise UsageError(
            f"--pairs {maximum}: the gate's test takes at least {stats.MIN_RUNS} runs a side; use at least {needed}"
        )
    if maximum < needed:
        raise UsageError(
            f"--pairs {maximum}: with {maximum} {'pairs timed together' if paired else 'runs a side'} no difference"
            f" can be significant at --alpha {alpha:g} (smallest p {smallest_p(maximum, paired):.3g}); use at least {needed}"
        )
    last = _reachable(maximum, family, paired)
    if not stats.can_reach(last, alpha):  # up to 9 pairs the checks above refuse it: drawn labelings only
        raise UsageError(
            f"--alpha {alpha:g}: at {maximum} pairs the family-wise test over the benchmarks cannot go below"
            f" p {last:.3g}; past {16 if paired else 9} {'pairs' if paired else 'runs a side'} it draws its"
            f" labelings; use a larger --alpha or --pairs {16 if paired else 9}"
        )  # 9 alone: below 1e-4 the rank test needs 9 runs a side (2 / C(16, 8) = 1.6e-4 at 8)
    levels: dict[int, float] = {}
    spent = 0.0
    for n in range(stats.MIN_RUNS, maximum):  # fewer runs are not the test's samples (gate.decide_all)
        size = stats.paired_smallest_p(n) if paired else stats.interim_level(n)
        attainable = stats.can_reach(_reachable(n, family, paired), size)
        if attainable and stats.can_reach(size, alpha) and alpha - spent - size >= last * (1 - _SLACK):
            levels[n] = size
            spent += size
    minimum = min(levels, default=maximum)
    levels[maximum] = alpha - sum(levels.values()) if paired else stats.last_level(levels, maximum, alpha)
    looks = tuple(levels.get(n, 0.0) for n in range(minimum, maximum + 1))
    return Plan(alpha, minimum, maximum, looks, family, paired)


def _check_alpha(alpha: float, family: bool, paired: bool) -> None:
    """UsageError for an alpha outside (0, 1), or one that no --pairs reaches with the family guard."""
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha: {alpha!r} is not between 0 and 1")
    # The family test's drawn labelings go no lower: past 9 runs a side, or 16 pairs timed together.
    least = min(_reachable(n, True, paired) for n in range(stats.MIN_RUNS, 17 if paired else 10))
    if family and not stats.can_reach(least, alpha):
        raise UsageError(
            f"--alpha {alpha:g}: no --pairs reaches it (the family-wise test over the benchmarks goes no lower"
            f" than p {least:.5g}, at {16 if paired else 9} pairs); use --alpha {_rounded_up(least)} or more"
        )


def _rounded_up(value: float) -> str:
    """`value` to 3 significant digits, never below it: an alpha a message suggests is one plan takes."""
    shown = f"{value:.2e}"
    if float(shown) < value:
        mantissa, exponent = shown.split("e")
        shown = f"{float(mantissa) + 0.01:.2f}e{exponent}"
    return f"{float(shown):g}"


def _reachable(n: int, family: bool = True, paired: bool = False) -> float:
    """The smallest p-value at n runs a side (n pairs timed together: `paired`) that the test (and, with
    `family`, the family-wise test) reaches."""
    if not family:
        return smallest_p(n, paired)
    return max(smallest_p(n, paired), stats.paired_family_smallest_p(n) if paired else stats.family_smallest_p(n, n))


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
    family_p: float | None = None  # stats.family_p over the gate's benchmarks at this look (None: not taken)

    @property
    def settled(self) -> bool:
        return self.verdict != OPEN


def look(
    base: Sequence[float], head: Sequence[float], rule: Plan, threshold: float, family_p: float | None = None
) -> Look:
    """The verdict of one benchmark from its samples (one per run, seconds) after min(len) pairs.

    A regression or improvement needs the rank test at `rule.level` *and* the benchmark's family-wise
    p-value `family_p` (stats.family_p over all the comparison's benchmarks, as `step` gives it) at
    `rule.family_level`; None (a lone benchmark, a rule without the guard) judges it alone. Before `rule.minimum` pairs, and
    at a look whose level is 0, the verdict is OPEN whatever the samples say. Raises ValueError on a
    sample that is not a positive finite number.
    """
    pairs = min(len(base), len(head))
    b, h = np.asarray(base[:pairs], dtype=float), np.asarray(head[:pairs], dtype=float)
    both = np.concatenate((b, h))
    if pairs == 0 or not bool(np.all((both > 0) & np.isfinite(both))):
        raise ValueError("samples must be positive finite seconds, at least one a side")
    level = rule.level(pairs)
    if rule.paired:  # the median of the pairs' own ratios, and the signed-rank test of them
        ratio = math.exp(_median(stats.log_ratios(b, h)))
        p = stats.paired_p(b, h)
        low, high = stats.paired_bounds(b, h, rule.alpha) if level > 0 else (0.0, math.inf)
    else:
        ratio = _median(h) / _median(b)
        p = stats.two_sample_p(b, h)
        low, high = stats.ratio_bounds(b, h, rule.alpha) if level > 0 else (0.0, math.inf)
    band = 1 + threshold
    family_wise = family_p is None or stats.significant(family_p, rule.family_level(pairs))
    rejected = level > 0 and stats.significant(p, level) and family_wise
    if rejected and ratio > band:
        verdict = REGRESSION
    elif rejected and ratio < 1 / band:
        verdict = IMPROVEMENT
    elif 1 / band < low and high < band:
        verdict = UNCHANGED
    else:
        verdict = OPEN
    return Look(verdict, pairs, ratio, p, low, high, family_p)


def step(
    settled: Mapping[str, Look],
    samples: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    rule: Plan,
    threshold: float,
) -> dict[str, Look]:
    """Every benchmark's look after the latest pair: settled ones keep their verdict (a verdict is
    never revised, so no look is taken twice), the others are looked at, each with its family-wise
    p-value over *all* the benchmarks, settled ones included (`family`). `samples`: name -> (base,
    head) seconds, one per run."""
    s0 = FUDGE * math.log1p(threshold)
    family = family_ps(samples, s0, rule.paired) if rule.family else dict.fromkeys(samples)
    return {
        name: settled[name]
        if name in settled and settled[name].settled
        else look(base, head, rule, threshold, family[name])
        for name, (base, head) in samples.items()
    }


# The family-wise statistic's fudge factor s0 (stats.family_p) as a share of the threshold's log:
# differences far below the threshold are not what the gate looks for, so a benchmark whose runs
# agree closely is not made extreme by them. Half: in 400 simulated gates a scenario
# (scripts/sequential_trials.py) 0.25, 0.5, 1 and 2 kept A/A gates at 1.3-1.8% flagged and caught the
# 5% fixture at 3% spread in 0.935, 0.948, 0.922, 0.892; +5% on all 18 in 0.54, 0.56, 0.51, 0.42.
FUDGE = 0.5


def family_ps(
    samples: Mapping[str, tuple[Sequence[float], Sequence[float]]], s0: float = 0.0, paired: bool = False
) -> dict[str, float | None]:
    """name -> stats.family_p (stats.paired_family_p for pairs timed together: `paired`; fudge `s0`) of
    the benchmarks' first min(len) pairs, runs as rows; 1.0
    for every benchmark when a side has fewer than two runs. A lone benchmark is its own family: None,
    the rank test at its counted levels decides alone (its rate is already at most alpha over the
    looks). Raises ValueError on a sample that is not a positive finite number."""
    pairs = min((min(len(b), len(h)) for b, h in samples.values()), default=0)
    names = list(samples)
    if len(names) == 1:
        return dict.fromkeys(names)
    base = np.array([samples[name][0][:pairs] for name in names], dtype=float).T
    head = np.array([samples[name][1][:pairs] for name in names], dtype=float).T
    test = stats.paired_family_p if paired else stats.family_p
    return dict(zip(names, test(base, head, s0).tolist(), strict=True))


def should_continue(looks: Mapping[str, Look], rule: Plan) -> bool:
    """Add another pair? Only while some benchmark is open and the maximum is not reached."""
    pairs = max((seen.pairs for seen in looks.values()), default=0)  # settled ones keep their own
    return pairs < rule.minimum or (pairs < rule.maximum and any(not seen.settled for seen in looks.values()))


def looks_upto(
    samples: Mapping[str, tuple[Sequence[float], Sequence[float]]], rule: Plan, threshold: float
) -> dict[str, Look]:
    """Every look the gate takes with the pairs at hand, in order from `rule.minimum`, stopping at the
    first after which `should_continue` is False; {} before the minimum. Pure: the same samples give
    the same looks, so a gate that ran several pairs at once (one per GPU) stops where one pair at a
    time would have, and the pairs past that look are not used."""
    available = min((min(len(b), len(h)) for b, h in samples.values()), default=0)
    looks: dict[str, Look] = {}
    for pairs in range(rule.minimum, min(available, rule.maximum) + 1):
        looks = step(looks, {name: (b[:pairs], h[:pairs]) for name, (b, h) in samples.items()}, rule, threshold)
        if not should_continue(looks, rule):
            break
    return looks
