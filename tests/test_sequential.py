"""The gate's stopping rule: when a benchmark's verdict is settled, and its false-alarm rate."""

import dataclasses
import functools
import itertools
import math

import numpy as np
import pytest
import scipy.stats

from perf_core.analysis import ab, sequential, stats
from perf_core.errors import UsageError

ALPHA, THRESHOLD = 0.05, 0.05


def around(center: float, spread: float, n: int, seed: int) -> list[float]:
    """n seconds-like samples: center x lognormal(spread)."""
    return list(center * np.random.default_rng(seed).lognormal(0, spread, n))


def run_gate(base: list[float], head: list[float], rule: sequential.Plan) -> dict[str, sequential.Look]:
    """The gate's loop over one benchmark: a pair at a time from the minimum while it is open."""
    looks: dict[str, sequential.Look] = {}
    pairs = rule.minimum
    while True:
        looks = sequential.step(looks, {"b": (base[:pairs], head[:pairs])}, rule, THRESHOLD)
        if not sequential.should_continue(looks, rule):
            return looks
        pairs += 1


def test_the_exact_p_value_is_scipys_exact_mann_whitney():
    for seed in range(20):
        base, head = around(1.0, 0.05, 5, seed), around(1.02, 0.05, 6, seed + 100)
        u, p = stats.mann_whitney(base, head)
        expected = scipy.stats.mannwhitneyu(head, base, alternative="two-sided", method="exact")
        assert (u, p) == pytest.approx((expected.statistic, expected.pvalue))


def test_the_ratio_bounds_hold_exactly_the_ratios_the_test_does_not_reject():
    """stats.ratio_bounds inverts stats.two_sample_p: head divided by a ratio just outside the bounds is
    rejected at the level, just inside (and at the middle) it is not."""
    for seed, n in zip(range(12), (4, 5, 6, 8) * 3):
        base, head = around(1.0, 0.05, n, seed), around(1.03, 0.05, n, seed + 100)
        low, high = stats.ratio_bounds(base, head, ALPHA)

        def p_of(ratio: float, base: list[float] = base, head: list[float] = head) -> float:
            return stats.two_sample_p(np.asarray(base), np.asarray(head) / ratio)

        assert 0 < low < high < math.inf
        assert p_of(low * 0.999) <= ALPHA and p_of(high * 1.001) <= ALPHA
        assert min(p_of(low * 1.001), p_of(high * 0.999), p_of(math.sqrt(low * high))) > ALPHA
    assert stats.ratio_bounds([1.0, 1.1], [1.2, 1.3], ALPHA) == (0.0, math.inf)  # 2 a side reach no 95% interval


def test_the_plan_starts_where_significance_is_reachable_and_spends_at_most_alpha():
    rule = sequential.plan(ALPHA, 8)
    assert rule.minimum == 4  # 2 / C(8, 4) = 0.029 <= 0.05; 3 runs a side cannot go below 0.1
    assert sequential.smallest_p(rule.minimum) <= rule.level(rule.minimum)
    assert sequential.smallest_p(rule.minimum - 1) > ALPHA
    assert rule.level(8) >= sequential.smallest_p(8)  # the last look can reject too


@functools.cache
def attainable_p(n: int) -> tuple[float, ...]:
    """Every p-value stats.two_sample_p can give with n runs a side (no ties), from every base/head order."""
    found = set()
    for heads in itertools.combinations(range(2 * n), n):
        base = np.array([float(i) for i in range(2 * n) if i not in heads])
        found.add(stats.two_sample_p(base, np.array(heads, dtype=float)))
    return tuple(sorted(found))


@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.1])
def test_the_plans_false_alarm_rate_counted_over_every_look_is_at_most_alpha_and_its_last_level_the_largest(alpha):
    """Up to stats.EXACT_UP_TO pairs the last level is the largest attainable p whose counted error
    with the interim looks stays within alpha, never below the union bound's alpha less the interim
    levels (0.0317 against 0.0214 at 4..5); longer plans keep the union bound (levels summing to alpha)."""
    for maximum in range(stats.samples_needed(alpha), stats.EXACT_UP_TO + 3):
        rule = sequential.plan(alpha, maximum)
        levels = rule.looks
        union_bound = alpha - sum(rule.levels[:-1])
        if maximum > stats.EXACT_UP_TO:
            assert rule.level(maximum) == pytest.approx(union_bound)
            continue
        assert stats.sequential_error(levels) <= alpha * (1 + stats.SLACK)
        assert rule.level(maximum) >= union_bound * (1 - stats.SLACK)
        larger = [p for p in attainable_p(maximum) if p > rule.level(maximum) * (1 + stats.SLACK)]
        if larger and len(levels) > 1:
            assert stats.sequential_error({**levels, maximum: larger[0]}) > alpha
    assert sequential.plan(0.05, 5).levels[-1] == pytest.approx(8 / 252)  # U <= 2 (or >= 23) at 5 pairs


def test_a_tie_never_makes_a_rejection_easier():
    """Tied runs (quantised device times) get the largest p of their untied neighbours: one tie at the
    edge of 5 a side reads 0.0159 (head run counted faster), not the 0.0079 of a complete separation
    that the no-ties distribution at U = 24.5 gave; several ties span every way of breaking them."""
    base, head = [1.0, 2.0, 3.0, 4.0, 5.0], [5.0, 6.0, 7.0, 8.0, 9.0]
    untied = [stats.mann_whitney([1.0, 2.0, 3.0, 4.0, 5.0 + d], head)[1] for d in (-0.1, 0.1)]
    assert stats.mann_whitney(base, head) == (24.5, pytest.approx(max(untied)))
    assert max(untied) == pytest.approx(4 / 252)
    base, head = [1.0, 2.0, 2.0, 3.0, 4.0], [2.0, 3.0, 4.0, 5.0, 6.0]  # three tied pairs
    broken = [
        stats.mann_whitney(base, [2.0 + a, 3.0 + b, 4.0 + c, 5.0, 6.0])[1]
        for a, b, c in itertools.product((-0.1, 0.1), repeat=3)
    ]
    assert stats.mann_whitney(base, head)[1] >= max(broken) - 1e-15


def test_the_counted_rate_at_4_to_8_pairs_matches_an_independent_count():
    """A reviewer's backward recursion in exact fractions (a random base and head run deleted from each
    final order, p by enumeration) gave the last level 362 / 12870 at 4..8 pairs and the rate
    0.049951...; the union bound's plan (last level 0.0107) counts 0.0354."""
    rule = sequential.plan(ALPHA, 8)
    levels = rule.looks
    assert rule.levels[-1] == pytest.approx(362 / 12870)
    assert stats.sequential_error(levels) == pytest.approx(0.0499510013795728, rel=1e-9)
    union = {**levels, 8: ALPHA - sum(rule.levels[:-1])}
    assert stats.sequential_error(union) == pytest.approx(0.0354, abs=5e-5)


def test_the_counted_false_alarm_rate_matches_every_ordering_enumerated():
    """An independent count at 4..5 pairs: each of the C(10, 5) x 5 x 5 equally likely ways (which
    ranks are base, which base and head run came fifth) judged by stats.mann_whitney at each look."""
    for alpha in (0.05, 0.1):
        levels = sequential.plan(alpha, 5).looks
        rejected = total = 0
        for base in itertools.combinations(range(10), 5):
            head = [r for r in range(10) if r not in base]
            for fifth_base, fifth_head in itertools.product(base, head):
                first = ([r for r in base if r != fifth_base], [r for r in head if r != fifth_head])
                total += 1
                rejected += stats.significant(stats.mann_whitney(*first)[1], levels[4]) or stats.significant(
                    stats.mann_whitney(base, head)[1], levels[5]
                )
        assert total == 252 * 25
        assert stats.sequential_error(levels) == pytest.approx(rejected / total)


def test_an_interim_level_the_test_cannot_reach_at_that_size_is_no_look(monkeypatch):
    """A boundary below the rank test's smallest p (Haybittle-Peto's fixed 0.001, as a continuous test
    would give) spends nothing where nothing can reject: the first look is at 7 runs (2 / C(14, 7))."""
    monkeypatch.setattr(stats, "interim_level", lambda n: 0.001)
    rule = sequential.plan(ALPHA, 10)
    assert sequential.smallest_p(6) > 0.001 >= sequential.smallest_p(7)
    assert rule.minimum == 7 and rule.levels[:3] == (0.001, 0.001, 0.001)
    assert rule.level(10) == pytest.approx(ALPHA - 0.003)


def test_a_maximum_that_cannot_reach_alpha_is_a_usage_error_naming_the_least_that_can():
    with pytest.raises(UsageError, match="use at least 4"):
        sequential.plan(ALPHA, 3)


def test_a_clear_regression_stops_at_the_minimum():
    rule = sequential.plan(ALPHA, 8)
    base, head = around(1.0, 0.005, 8, 1), around(1.2, 0.005, 8, 2)
    looks = run_gate(base, head, rule)
    assert looks["b"].verdict == sequential.REGRESSION and looks["b"].pairs == rule.minimum


def test_tight_same_code_samples_settle_as_unchanged_at_the_minimum():
    rule = sequential.plan(ALPHA, 8)
    base, head = around(1.0, 0.005, 8, 3), around(1.0, 0.005, 8, 4)
    looks = run_gate(base, head, rule)
    assert looks["b"].verdict == sequential.UNCHANGED and looks["b"].pairs == rule.minimum
    assert ab.stop_line(looks, rule, 4).startswith("stopped after 4 of at most 8 pairs: every benchmark settled")


def test_wide_noisy_samples_stay_open_until_the_maximum():
    rule = sequential.plan(ALPHA, 8)
    base, head = around(1.0, 0.3, 8, 5), around(1.0, 0.3, 8, 6)
    for pairs in range(rule.minimum, rule.maximum):
        assert sequential.look(base[:pairs], head[:pairs], rule, THRESHOLD).verdict == sequential.OPEN
    looks = run_gate(base, head, rule)
    assert looks["b"].pairs == rule.maximum and looks["b"].verdict == sequential.OPEN
    assert ab.stop_line(looks, rule, 8).startswith("ran the maximum of 8 pairs: 1 benchmark(s) still open (b)")


def test_nothing_stops_before_the_minimum_however_clear():
    rule = sequential.plan(ALPHA, 8)
    for pairs in range(1, rule.minimum):
        base, head = [1.0] * pairs, [3.0] * pairs
        seen = sequential.look(base, head, rule, THRESHOLD)
        assert seen.verdict == sequential.OPEN
        assert sequential.should_continue({"b": seen}, rule)


def test_a_settled_verdict_is_not_revised_by_later_runs():
    rule = sequential.plan(ALPHA, 8)
    first = sequential.step({}, {"b": ([1.0, 1.001, 0.999, 1.0], [1.0, 1.0, 1.001, 0.999])}, rule, THRESHOLD)
    later = sequential.step(first, {"b": ([1.0] * 5, [1.0, 1.0, 1.0, 1.0, 9.0])}, rule, THRESHOLD)
    assert later["b"] is first["b"] and later["b"].verdict == sequential.UNCHANGED


def test_no_change_is_flagged_at_the_counted_rate_over_every_look():
    """Threshold 0: the significance test alone decides, where the looks' error would show. Heavy-tailed
    noise (lognormal, 10% outliers up to x2): the gate's looks (sequential.step) flag a trial exactly
    when some look's p is within its level, and over `trials` seeded gates the share flagged agrees
    with stats.sequential_error's count (at most alpha) within four binomial standard errors."""
    rule, trials = sequential.plan(ALPHA, 8), 1500
    levels = rule.looks
    rng = np.random.default_rng(0)
    flagged = 0
    for _ in range(trials):
        base, head = (
            rng.lognormal(0, 0.03, 8) * np.where(rng.random(8) < 0.1, 1 + rng.random(8), 1.0) for _ in range(2)
        )
        looks: dict[str, sequential.Look] = {}
        for pairs in range(rule.minimum, rule.maximum + 1):
            looks = sequential.step(looks, {"b": (base[:pairs], head[:pairs])}, rule, 0.0)
        rejected = looks["b"].verdict in (sequential.REGRESSION, sequential.IMPROVEMENT)
        some_look = any(stats.significant(stats.two_sample_p(base[:n], head[:n]), level) for n, level in levels.items())
        assert rejected == some_look
        flagged += rejected
    counted = stats.sequential_error(levels)
    assert counted <= ALPHA * (1 + stats.SLACK)
    assert abs(flagged / trials - counted) <= 4 * math.sqrt(counted * (1 - counted) / trials)


def test_a_gate_with_one_settled_and_one_open_benchmark_adds_pairs_to_the_maximum_and_stops():
    rule = sequential.plan(ALPHA, 8)
    quiet, noisy = (
        (around(1.0, 0.005, 8, 7), around(1.0, 0.005, 8, 8)),
        (around(1.0, 0.3, 8, 9), around(1.0, 0.3, 8, 10)),
    )
    looks: dict[str, sequential.Look] = {}
    for pairs in range(rule.minimum, rule.maximum + 1):
        batch = {"quiet": (quiet[0][:pairs], quiet[1][:pairs]), "noisy": (noisy[0][:pairs], noisy[1][:pairs])}
        looks = sequential.step(looks, batch, rule, THRESHOLD)
        assert sequential.should_continue(looks, rule) == (pairs < rule.maximum)
    assert looks["quiet"].pairs == rule.minimum and looks["noisy"].pairs == rule.maximum


def test_a_looks_rejection_is_stats_decide_at_that_looks_level():
    """One test, one reading: the look calls a regression (improvement) exactly when stats.decide does
    over the same runs at the look's level; the final look's level is below alpha, the interim ones
    are complete separation."""
    rule = sequential.plan(ALPHA, 8)
    compared = 0
    for seed in range(60):
        shift = (0.8, 0.95, 1.0, 1.06, 1.25)[seed % 5]
        base, head = around(1.0, 0.04, 8, seed), around(shift, 0.04, 8, seed + 500)
        for pairs in range(rule.minimum, rule.maximum + 1):
            seen = sequential.look(base[:pairs], head[:pairs], rule, THRESHOLD)
            decided = stats.decide("b", base[:pairs], head[:pairs], THRESHOLD, rule.level(pairs))
            rejected = seen.verdict in (sequential.REGRESSION, sequential.IMPROVEMENT)
            assert (seen.verdict if rejected else "unchanged") == decided.verdict
            assert seen.p == pytest.approx(decided.p_value)
            compared += rejected
    assert compared > 0  # some looks did reject, so the agreement was tested on both outcomes


# The family-wise guard (stats.family_p): a false alarm on *some* benchmark of the 18, not on each.


def relabelled(runs: np.ndarray, heads: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(base, head) rows of `runs` (runs, benchmarks) with the runs at `heads` as the head side."""
    mask = np.isin(np.arange(len(runs)), heads)
    return runs[~mask], runs[mask]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_family_p_is_valid_over_every_labeling_of_the_same_runs(seed):
    """With no change every labeling of the 2n runs is as likely as the one seen: over all of them, the
    share whose smallest family p is at most a is at most a (the chance of any false verdict in the
    comparison), for every attainable a; heavy-tailed noise and a shared run offset included."""
    rng = np.random.default_rng(seed)
    runs = np.exp(rng.normal(0, 0.05, (8, 12)) + rng.normal(0, 0.03, (8, 1)) + (rng.random((8, 12)) < 0.1) * 0.4)
    smallest = np.array(
        [stats.family_p(*relabelled(runs, heads)).min() for heads in itertools.combinations(range(8), 4)]
    )
    for a in (2 / 70, 4 / 70, 0.1, 0.2, 0.5):
        assert (smallest <= a * (1 + 1e-9)).mean() <= a * (1 + 1e-9)
    assert smallest.min() == pytest.approx(2 / 70)  # the extreme is reached: the test can reject


def test_a_chance_separation_among_noisy_benchmarks_is_not_a_regression_family_wise():
    """One benchmark of 18 with every head run slower (rank test p 2/252, ratio 1.059) among 17 whose
    runs spread 10%: the rank test alone flags it; the family-wise p does not reach the last look's
    family level, so it is no regression."""
    rng = np.random.default_rng(4)
    samples = {f"noisy{i}": tuple(list(np.exp(rng.normal(0, 0.10, 5))) for _ in range(2)) for i in range(17)}
    samples["lucky"] = ([1.00, 1.01, 1.02, 1.03, 1.04], [1.06, 1.07, 1.08, 1.09, 1.10])
    family = sequential.plan(ALPHA, 5)
    alone = sequential.step({}, samples, dataclasses.replace(family, family=False), THRESHOLD)["lucky"]
    guarded = sequential.step({}, samples, family, THRESHOLD)["lucky"]
    assert (alone.verdict, alone.p, round(alone.ratio, 3)) == (sequential.REGRESSION, pytest.approx(2 / 252), 1.059)
    assert guarded.verdict != sequential.REGRESSION
    assert guarded.family_p > family.family_level(5)


def test_clear_regressions_among_quiet_benchmarks_all_pass_the_family_guard():
    """Three benchmarks 11% slower, 15 unchanged, runs spread 1%: step-down, each of the three gets the
    smallest family p (2 / C(8, 4) at the minimum) and settles as a regression at the first look."""
    rng = np.random.default_rng(5)
    samples = {}
    for i in range(18):
        factor = 1.11 if i < 3 else 1.0
        samples[f"b{i}"] = (list(np.exp(rng.normal(0, 0.01, 4))), list(factor * np.exp(rng.normal(0, 0.01, 4))))
    looks = sequential.step({}, samples, sequential.plan(ALPHA, 5), THRESHOLD)
    assert [name for name, seen in looks.items() if seen.verdict == sequential.REGRESSION] == ["b0", "b1", "b2"]
    assert [looks[f"b{i}"].family_p for i in range(3)] == pytest.approx([2 / 70] * 3)


def test_the_family_levels_spend_alpha_over_the_looks_by_the_union_bound():
    rule = sequential.plan(ALPHA, 5)
    interim = [rule.family_level(n) for n in range(rule.minimum, rule.maximum)]
    assert interim == list(rule.levels[:-1]) and rule.family_level(rule.minimum - 1) == 0.0
    assert sum(interim) + rule.family_level(rule.maximum) == pytest.approx(ALPHA)
    assert rule.family_level(rule.maximum) >= stats.smallest_p(rule.maximum, rule.maximum)


def test_a_lone_benchmark_is_its_own_family():
    """One benchmark: the rank test at its counted levels decides alone (no family p)."""
    samples = {"only": ([1.0, 1.1, 1.2, 1.3], [1.5, 1.6, 1.7, 1.8])}
    assert sequential.family_ps(samples) == {"only": None}
    seen = sequential.step({}, samples, sequential.plan(ALPHA, 5), THRESHOLD)["only"]
    assert (seen.verdict, seen.family_p) == (sequential.REGRESSION, None)


def test_unchanged_benchmarks_keep_the_family_rate_whichever_others_changed():
    """Strong control: 12 of 18 benchmarks 30% slower, 6 unchanged, runs spread 5%: a family p at most
    alpha on some unchanged benchmark in at most about alpha of comparisons (300 simulated; with SAM's
    s0 taken as the median over the benchmarks, which the changed ones inflate under relabelling, it
    was 0.64)."""
    rng = np.random.default_rng(7)
    effect = np.r_[np.full(12, np.log(1.3)), np.zeros(6)]
    s0 = sequential.FUDGE * math.log1p(THRESHOLD)
    false = 0
    for _ in range(300):
        base, head = np.exp(rng.normal(0, 0.05, (5, 18))), np.exp(rng.normal(0, 0.05, (5, 18)) + effect)
        false += bool((stats.family_p(base, head, s0)[12:] <= ALPHA).any())
    assert false / 300 <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / 300)


def test_a_plan_has_no_look_the_family_wise_test_cannot_reach():
    """Past 9 runs a side family_p draws its labelings (smallest p 1 / 10000): looks whose level is
    below that are no looks, and an alpha below it at the maximum is refused."""
    rule = sequential.plan(ALPHA, 12)
    assert rule.level(10) == rule.level(11) == 0.0 and rule.level(9) > 0
    assert rule.family_level(12) >= stats.family_smallest_p(12, 12)
    with pytest.raises(UsageError, match=r"cannot go below p 0\.0001; past 9 runs a side it draws its labelings"):
        sequential.plan(5e-5, 12)


def test_the_family_p_takes_runs_by_benchmarks_of_positive_finite_seconds():
    with pytest.raises(ValueError, match="positive seconds"):
        stats.family_p(np.ones((4, 3)), np.ones((4, 2)))
    for bad in (-1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="positive finite seconds"):
            stats.family_p(np.ones((4, 3)), np.full((4, 3), bad))
    assert stats.family_p(np.ones((1, 3)), np.ones((1, 3))).tolist() == [1.0, 1.0, 1.0]


def test_an_alpha_no_pairs_can_reach_family_wise_is_refused_once_with_the_least_that_can():
    """Below 2 / C(18, 9) (9 pairs; drawn labelings past 9 go no lower) no --pairs helps: one message
    naming the least alpha, not "use at least 10" and "use 9 or fewer" in turn; a gate saved before the
    guard (family=False) keeps the rank test's own limits."""
    least = 2 / math.comb(18, 9)
    for pairs in (9, 10, 12):
        with pytest.raises(UsageError, match=r"no --pairs reaches it .* use --alpha 4\.12e-05 or more") as refused:
            sequential.plan(4e-5, pairs)
    suggested = float(str(refused.value).split("use --alpha ")[1].split()[0])
    assert suggested >= least and sequential.plan(suggested, 9).maximum == 9  # the suggestion is taken
    assert sequential.plan(least, 9).maximum == 9
    # Past 9 pairs an alpha below the drawn floor (1e-4) is reached at 9 pairs alone (the rank test's
    # smallest p at 8 is 1.6e-4): the message names 9, not "9 or fewer".
    for alpha in (5e-5, 9e-5):
        with pytest.raises(UsageError, match=r"use a larger --alpha or --pairs 9$"):
            sequential.plan(alpha, 12)
        assert sequential.plan(alpha, 9).maximum == 9
        with pytest.raises(UsageError, match="use at least 9"):
            sequential.plan(alpha, 8)
    assert not sequential.plan(4e-5, 12, family=False).family
