"""The statistics of a regression decision: pure functions of samples, no files, no runs, no options.

Two rules, each returning a Verdict, and one limit they share:

- `decide`: two samples of independent figures (per-run medians, at least MIN_RUNS a side). A
  regression needs head slower than base by more than `threshold` (the size) *and* a two-sided
  Mann-Whitney U test at level `alpha` (the significance). Mann-Whitney assumes nothing of the shape
  of timing distributions (long right tails). Its p-value is exact (`mann_whitney`, the null
  distribution counted, not approximated).

- `decide_by_spread`: one run a side (or two): the ratio of medians against a machine's measured
  run-to-run `Spread` (docs/gate.md, "Compare with one run a side").
- `family_p`: the gate's guard over the family of benchmarks of one comparison (a step-down max-T
  permutation test that relabels whole runs): `ab`'s looks call a benchmark changed only where its
  family p also reaches the look's family level (perf_core.analysis.sequential), so a gate with no
  change flags *any* benchmark with probability at most alpha. `compare` and `decide` do not use it.
- `significant` / `can_reach`: a p-value decides when p <= alpha; samples whose smallest possible p
  is above alpha can decide nothing, whatever they hold, and give "undecided", never "unchanged".
  Mann-Whitney's smallest two-sided p with n and m samples is 2 / C(n + m, n) (0.1 at 3 a side);
  the spread's, with k history pairs, 1 / (k + 1).

The test is five functions, and every decision reads it through them alone (decide here, the gate's
sequential looks in perf_core.analysis.sequential, compare's and ab's "cannot reach alpha" checks):
`two_sample_p` (the p-value), `smallest_p` (the least it can be at given sample sizes),
`interim_level` (the extreme boundary at which the gate's interim looks stop early), `last_level`
(the gate's last look's level: for this test counted exactly, `sequential_error`; for a test with
continuous p-values alpha less the interim levels) and `ratio_bounds` (the head/base ratios it does
not reject at a level, the interval that inverts it). `MIN_RUNS` is where the runs themselves become
the test's samples (gate.decide_all judges fewer by the machine's spread); `samples_needed` and the
gate's first look are never below it. Changing the test means changing those five, `TEST_NAME` and,
for a test that needs more or fewer runs before it means anything, `MIN_RUNS`, in this file, nothing
else. The gate's family-wise guard (`family_p`, `family_smallest_p`) is a test of its own beside it:
the gate's plan keeps only looks that both reach (the rank test's complete separation and the
permutation test's smallest p are both 2 / C(2n, n) up to 9 runs a side; a test with continuous
p-values would lose the interim looks below that).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# The defaults of every command that decides (compare, ab, report); their --help shows these.
ALPHA = 0.05
THRESHOLD = 0.05
CONFIDENCE = 0.95
TEST_NAME = "Mann-Whitney U"  # the test of two_sample_p, as --help names it
# Runs a side from which the runs themselves are the samples of the test (decide); with fewer, the
# gate judges the ratio against the machine's measured run-to-run spread (decide_by_spread). Two a
# side say almost nothing of a side's own spread (a t-test's 2 degrees of freedom; the rank test's
# smallest p 0.33); at 3 Mann-Whitney still cannot reach 0.05 (its smallest p is 0.1): "undecided".
MIN_RUNS = 3
MIN_SPREAD = 0.002  # a floor on a benchmark's spread scale: identical figures must not divide by zero
# Float slack when a p-value is compared with a level built from the same exact counts (2 / C(2n, n)
# computed two ways may differ in the last bit).
SLACK = 1e-12


@dataclass(frozen=True)
class Verdict:
    name: str
    base_s: float  # median of the base sample
    head_s: float
    ratio: float  # head / base: above 1 is slower
    ratio_low: float  # bootstrap interval of the ratio of medians
    ratio_high: float
    p_value: float | None  # None when nothing was tested
    n_base: int
    n_head: int
    verdict: str  # "regression", "improvement", "unchanged", "undecided" or "throttled" (not decided)
    family_p: float | None = None  # family_p over the comparison's benchmarks, where the gate took it

    @property
    def change(self) -> float:
        return self.ratio - 1.0


def significant(p_value: float, alpha: float) -> bool:
    """The one reading of a p-value: significant at level alpha when p <= alpha (float slack SLACK)."""
    return p_value <= alpha * (1 + SLACK)


def can_reach(smallest: float, alpha: float) -> bool:
    """Whether samples whose smallest possible p-value is `smallest` can ever be significant at `alpha`."""
    return significant(smallest, alpha)


@functools.cache
def _u_counts(m: int, n: int) -> tuple[int, ...]:
    """How many of the C(m + n, n) orderings of m head and n base samples give each U = 0..m*n (no ties):
    the coefficients of the Gaussian binomial [m + n choose n]_q = prod_i (1 - q^(m+i)) / (1 - q^i),
    built a factor at a time in exact integers (no recursion, no float cancellation)."""
    poly = [1]
    for i in range(1, n + 1):
        grown = poly + [0] * (m + i)  # times (1 - q^(m+i))
        for k, c in enumerate(poly):
            grown[k + m + i] -= c
        for k in range(i, len(grown)):  # divided by (1 - q^i): a running sum with stride i
            grown[k] += grown[k - i]
        poly = grown[: m * i + 1]  # the quotient's degree is m*i; the rest is exactly zero
    return tuple(poly)


@functools.cache
def null_cdf(m: int, n: int) -> np.ndarray:
    """P(U <= u) for u = 0..m*n with m head and n base samples and no change (read-only, shared)."""
    counts = np.asarray(_u_counts(m, n), dtype=float)
    cdf = np.cumsum(counts) / counts.sum()
    cdf.flags.writeable = False
    return cdf


def mann_whitney(base: Sequence[float], head: Sequence[float]) -> tuple[float, float]:
    """(U, exact two-sided p): U counts the (head, base) pairs where head is slower, a tie counting
    half. The p-value is exact for untied samples (scipy's method="exact"). With ties (device times
    are quantised: CUDA events resolve about 0.5 us) it is the largest over U from every tied pair
    counted against the head to every one counted for it, so a tie never makes a rejection easier:
    the no-ties distribution read at a half-integer U would (one tie at the edge of 5 a side gave
    0.0079 for samples whose untied neighbours give 0.0079 and 0.0159), and the gate's levels, counted
    to spend alpha exactly (`last_level`), leave no room for that."""
    b, h = np.asarray(base, dtype=float), np.asarray(head, dtype=float)
    strict, tied = int((h[:, None] > b[None, :]).sum()), int((h[:, None] == b[None, :]).sum())
    p = max(_p_of_u(u, len(h), len(b)) for u in range(strict, strict + tied + 1))
    return strict + 0.5 * tied, p


def _p_of_u(u: int, m: int, n: int) -> float:
    """The exact two-sided p-value of an untied U with m head and n base samples."""
    cumulative = null_cdf(m, n)
    low = cumulative[u]  # P(U <= u)
    high = 1.0 - (cumulative[u - 1] if u >= 1 else 0.0)  # P(U >= u)
    return min(1.0, 2 * float(min(low, high)))


def two_sample_p(base: np.ndarray, head: np.ndarray) -> float:
    """The two-sided exact p-value of the runs test (`mann_whitney`); 1.0 when nothing can differ."""
    if len(base) < 2 or len(head) < 2 or np.ptp(np.concatenate([base, head])) == 0:
        return 1.0  # one sample a side, or identical values: nothing can be significant
    return mann_whitney(base, head)[1]


def smallest_p(n_base: int, n_head: int) -> float:
    """The smallest two-sided p-value `two_sample_p` can give with n_base and n_head samples: 2 / C(n + m, n)."""
    return min(1.0, 2 / math.comb(n_base + n_head, n_base))


def interim_level(n: int) -> float:
    """The level of the gate's interim look at n runs a side (Haybittle-Peto: stop early only on
    extreme evidence; perf_core.analysis.sequential). For the exact rank test its most extreme
    outcome, complete separation, `smallest_p(n, n)` = 2 / C(2n, n): a lower level rejects nothing,
    a higher one spends alpha on outcomes that are not extreme. A test with continuous p-values
    would give Haybittle and Peto's fixed 0.001 instead (sequential.plan skips a look whose level
    the test cannot reach at that size)."""
    return smallest_p(n, n)


def ratio_bounds(base: Sequence[float], head: Sequence[float], level: float) -> tuple[float, float]:
    """The head/base ratios `two_sample_p` does not reject at `level`: the interval that inverts the
    test, coverage at least 1 - level; (0, inf) where no interval that narrow exists at these sizes.

    For Mann-Whitney it is the Hodges-Lehmann interval (Lehmann 1975, ch. 2): the shifts of log time
    not rejected, read off the sorted n x m pairwise differences log(head_i) - log(base_j) from the
    k-th smallest to the k-th largest (k - 1 cut from each end), k the largest with
    P(U <= k - 1) <= level / 2; the ratio's interval is its exponential. Tied differences are read
    as they are (not broken against a rejection, as `mann_whitney` breaks them): with ties the
    interval can be a little narrower than the test's acceptance region, an error toward calling a
    benchmark unchanged, never toward a false alarm."""
    b, h = np.log(np.asarray(base, dtype=float)), np.log(np.asarray(head, dtype=float))
    k = int(np.searchsorted(null_cdf(len(h), len(b)), level / 2 * (1 + SLACK), side="right"))
    if k == 0:
        return 0.0, math.inf
    differences = np.sort((h[:, None] - b[None, :]).ravel())
    return float(np.exp(differences[k - 1])), float(np.exp(differences[-k]))


# Plans of at most this many runs a side get their last level counted exactly (last_level); the count
# grows as C(2n, n) n^2 (about a second at 8), so longer plans keep the union bound.
EXACT_UP_TO = 8


@functools.cache
def _after_interim_looks(interim: tuple[tuple[int, float], ...], maximum: int) -> tuple[float, dict[int, float]]:
    """With no change: the chance that an interim look ((runs a side, level), all below
    `maximum`; a size left out is no look) rejects, and how the chance that none did is spread over U at `maximum` runs.

    Counted, not simulated: with no change the 2n runs of a look are exchangeable, so each order of
    their sides (the base/head pattern, fastest first) is equally likely, 1 / C(2n, n), and the next
    pair's base and head runs take uniform places among them (each new run's rank among those before
    it is uniform and independent of their order; no ties). U of a pattern counts the (head, base)
    pairs with head slower, as `mann_whitney`. Armitage, McPherson and Rowe (1969) computed the same
    for the normal test by integration; the rank test's counts are finite."""
    levels = dict(interim)
    n = min(levels, default=maximum)
    start = 1 / math.comb(2 * n, n)
    patterns = {
        tuple(int(i in heads) for i in range(2 * n)): start for heads in itertools.combinations(range(2 * n), n)
    }
    rejected = 0.0
    while n < maximum:
        kept: dict[tuple[int, ...], float] = {}
        for pattern, mass in patterns.items():
            if significant(_p_of_u(_u_of(pattern), n, n), levels.get(n, 0.0)):
                rejected += mass
            else:
                kept[pattern] = mass
        patterns, n = _add_pair(kept, 2 * n), n + 1
    spread: dict[int, float] = {}
    for pattern, mass in patterns.items():
        u = _u_of(pattern)
        spread[u] = spread.get(u, 0.0) + mass
    return rejected, spread


def _u_of(pattern: tuple[int, ...]) -> int:
    u = bases = 0
    for is_head in pattern:
        if is_head:
            u += bases
        else:
            bases += 1
    return u


def _add_pair(patterns: dict[tuple[int, ...], float], length: int) -> dict[tuple[int, ...], float]:
    share = 1 / ((length + 1) * (length + 2))
    grown: dict[tuple[int, ...], float] = {}
    for pattern, mass in patterns.items():
        for i in range(length + 1):
            with_base = (*pattern[:i], 0, *pattern[i:])
            for j in range(length + 2):
                key = (*with_base[:j], 1, *with_base[j:])
                grown[key] = grown.get(key, 0.0) + mass * share
    return grown


def sequential_error(levels: Mapping[int, float]) -> float:
    """The chance, with no change, that a benchmark looked at after each n runs a side (the keys of
    `levels`; the largest is the final look, a size left out is no look) is rejected at some look, each at its level:
    exact, counted over the rank patterns (`_after_interim_looks`). The false-alarm rate of the gate's
    stopping rule for one benchmark, at most the sum of the levels (the union bound) and usually less."""
    maximum = max(levels)
    interim = tuple(sorted((n, level) for n, level in levels.items() if n < maximum))
    rejected, spread = _after_interim_looks(interim, maximum)
    return rejected + sum(
        mass for u, mass in spread.items() if significant(_p_of_u(u, maximum, maximum), levels[maximum])
    )


def last_level(interim: Mapping[int, float], maximum: int, alpha: float) -> float:
    """The level of the gate's last look, at `maximum` runs a side, after the interim looks `interim`
    (runs a side -> level): the largest of the test's attainable p-values at `maximum` whose
    `sequential_error` with the interim looks is at most alpha. Never below alpha less the interim
    levels (the union bound's split, Haybittle-Peto's), which is what a plan longer than EXACT_UP_TO
    gets, and what a test with continuous p-values would give here."""
    bound = alpha - sum(interim.values())
    if not interim or maximum > EXACT_UP_TO:
        return bound
    attainable = sorted({_p_of_u(u, maximum, maximum) for u in range(maximum * maximum + 1)}, reverse=True)
    for level in attainable:
        if level <= bound or sequential_error({**interim, maximum: level}) <= alpha * (1 + SLACK):
            return max(level, bound)
    return bound


# Labelings of the runs that family_p enumerates; past this many (C(18, 9) = 48620: 9 runs a side)
# it draws FAMILY_DRAWS of them at random instead (a fixed seed: same samples, same answer).
FAMILY_EXACT_UP_TO = 50_000
FAMILY_DRAWS = 9_999
# Two labelings whose statistics agree to this relative difference are read as tied (the same value
# reached through different sums), so rounding never decides which of them is the more extreme.
TIE = 1e-9
# The least scale of family_p's statistic (log time): samples all alike, with s0 = 0, do not divide by 0.
FLOOR = 1e-9


def _drawn(n: int, k: int) -> bool:
    """Whether family_p draws its labelings of n base and k head runs rather than enumerating them."""
    return math.comb(n + k, k) > FAMILY_EXACT_UP_TO


def family_smallest_p(n: int, k: int) -> float:
    """The smallest p-value `family_p` can give with n base and k head runs: 1 / C(n + k, k) exactly
    enumerated (2 / C(2n, n) with n a side: a labeling and its mirror tie), 1 / (FAMILY_DRAWS + 1) drawn."""
    if _drawn(n, k):
        return 1 / (FAMILY_DRAWS + 1)
    return (2 if n == k else 1) / math.comb(n + k, k)


def family_p(base: np.ndarray, head: np.ndarray, s0: float = 0.0) -> np.ndarray:
    """Each benchmark's family-wise p-value over all benchmarks of one comparison: the step-down max-T
    permutation test of Westfall & Young (1993; as set out in Ge, Dudoit & Speed 2003, box 2). Shapes:
    `base` (n, m), `head` (k, m) seconds, one row per run, one column per benchmark; `s0` a constant in
    log time; returns (m,) p-values.

    Why: the gate tests every benchmark at alpha, so with 18 benchmarks and no change some benchmark
    comes out significant in about one comparison in three when the runs spread more than the
    threshold (the CPU gate's A/A false alarms, docs/gate.md). Rejecting only where this p-value is
    also at most alpha keeps the chance of a false verdict on *any* unchanged benchmark at most alpha,
    whichever others changed.

    How: the statistic of a benchmark is a moderated t of its log times, |mean difference| / ((s +
    s0) sqrt(1/n + 1/k)), s its pooled within-side standard deviation; s0, a fudge factor as in SAM
    (Tusher, Tibshirani & Chu 2001), keeps a benchmark whose few runs happen to agree closely from
    getting a huge t (the gate passes half of log(1 + threshold)). s0 is a constant, so each
    benchmark's statistic reads its own runs alone: what the step-down bound needs when some
    benchmarks did change (subset pivotality; an s0 taken from all benchmarks, as SAM's median, let
    the changed ones shrink the others' permuted statistics). The most extreme benchmark's p-value is
    the share of relabelings of the runs as base or head whose largest statistic over *all*
    benchmarks reaches its observed one; the next one's, over all but the first, and so on
    (step-down), never below the one before. A run is relabelled whole, all its benchmarks together,
    so the runs' shared noise (a busy machine slows a whole run) is kept as it is. Exact over all
    C(n + k, k) labelings up to FAMILY_EXACT_UP_TO of them (with n == k one of each mirror pair, the
    sides swapped, whose statistics are equal: the share is the same), else FAMILY_DRAWS random ones plus the
    observed: `family_smallest_p`. It needs only that, without a change, the runs are exchangeable,
    as the rank test does. Raises ValueError on a sample that is not a positive finite number or on
    shapes that do not match."""
    b, h = np.asarray(base, dtype=float), np.asarray(head, dtype=float)
    if b.ndim != 2 or h.ndim != 2 or b.shape[1] != h.shape[1]:
        raise ValueError("family_p takes (runs, benchmarks) arrays of positive seconds with the same benchmarks")
    both = np.concatenate((b, h))
    _check_seconds(both, "family_p takes (runs, benchmarks)")
    if len(b) < 2 or len(h) < 2:
        return np.ones(b.shape[1])
    runs = np.log(both)
    runs -= runs.mean(axis=0)  # centred: the sums of squares below lose no digits to a large common level
    n, k = len(b), len(h)
    observed_labels = np.arange(n + k) >= n
    labels = _labelings(n, k, observed_labels)
    statistic = _moderated_t(runs, labels, k, s0)  # (labelings, benchmarks)
    observed = _moderated_t(runs, observed_labels[None, :], k, s0)[0]
    return _step_down(statistic, observed)


def _check_seconds(values: np.ndarray, what: str) -> None:
    """ValueError "`what` arrays of positive finite seconds" unless every value is one."""
    if not np.all((values > 0) & np.isfinite(values)):
        raise ValueError(f"{what} arrays of positive finite seconds")


def _step_down(statistic: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Westfall & Young's step-down adjusted p-values from each labeling's statistics (labelings,
    benchmarks) and the observed ones (benchmarks,)."""
    order = np.argsort(-observed, kind="stable")  # most extreme first
    # Step-down: the j-th most extreme benchmark is compared with the largest statistic, in each
    # labeling, of itself and the benchmarks less extreme than it (the more extreme ones are taken as
    # changed by then), and its p is never below the one before it.
    below = np.maximum.accumulate(statistic[:, order[::-1]], axis=1)[:, ::-1]
    stepped = np.maximum.accumulate((below >= observed[order][None, :] * (1 - TIE)).mean(axis=0))
    adjusted = np.empty_like(stepped)
    adjusted[order] = stepped
    return adjusted


def _labelings(n: int, k: int, observed: np.ndarray) -> np.ndarray:
    """The labelings family_p counts over, as rows (True: head): every one, or with n == k one of each
    mirror pair (those with run 0 a head run), or, past FAMILY_EXACT_UP_TO, FAMILY_DRAWS drawn and the
    observed one."""
    if _drawn(n, k):
        rng = np.random.default_rng(0)
        return np.vstack((observed, [rng.permutation(n + k) >= n for _ in range(FAMILY_DRAWS)]))
    heads = itertools.combinations(range(n + k), k)
    if n == k:  # a labeling's mirror (sides swapped) has the same statistic: one of each pair
        heads = ((0, *rest) for rest in itertools.combinations(range(1, n + k), k - 1))
    chosen = list(heads)
    labels = np.zeros((len(chosen), n + k), dtype=bool)
    for row, members in enumerate(chosen):
        labels[row, list(members)] = True
    return labels


def _moderated_t(runs: np.ndarray, labels: np.ndarray, k: int, s0: float) -> np.ndarray:
    """family_p's statistic for each labeling (rows of `labels`, True: head) of `runs` (runs, benchmarks),
    log times: |mean difference| / ((s + s0) sqrt(1/n + 1/k))."""
    n = runs.shape[0] - k
    heads = labels.astype(float)
    head_sum, head_squares = heads @ runs, heads @ runs**2
    base_sum, base_squares = runs.sum(axis=0) - head_sum, (runs**2).sum(axis=0) - head_squares
    within = head_squares - head_sum**2 / k + base_squares - base_sum**2 / n
    s = np.sqrt(np.maximum(within, 0.0) / (n + k - 2))
    scale = np.maximum(s + s0, FLOOR) * math.sqrt(1 / n + 1 / k)
    return np.abs(head_sum / k - base_sum / n) / scale


# The paired test: a pair's two runs timed together on one core (perf-core ab on the CPU,
# perf_core/measure/pairing.py), so each pair gives one figure, d = log(head / base), free of the
# moment's machine speed that both runs shared. With no change the pair's two runs are
# exchangeable (both suites alike on one core; which side starts first, on which fork server, drawn
# for each pair), so each d is as likely to be +x as -x: the sign-flip tests below are exact.
PAIRED_TEST_NAME = "Wilcoxon signed-rank"


def log_ratios(base: Sequence[float] | np.ndarray, head: Sequence[float] | np.ndarray) -> np.ndarray:
    """d = log(head_i / base_i) pair by pair (base and head in pair order): what the paired tests read."""
    return np.log(np.asarray(head, dtype=float)) - np.log(np.asarray(base, dtype=float))


def _flips_drawn(n: int) -> bool:
    """Whether paired_family_p draws its sign patterns of n pairs rather than enumerating them."""
    return 2 ** (n - 1) > FAMILY_EXACT_UP_TO


@functools.cache
def _w_counts(n: int) -> tuple[int, ...]:
    """How many of the 2^n sign patterns of n pairs give each W = 0..n(n+1)/2 (W: the sum of the ranks
    of |d| over the pairs with head slower): the coefficients of prod_{i=1..n} (1 + q^i), exact integers."""
    poly = [1]
    for i in range(1, n + 1):
        grown = poly + [0] * i
        for k, c in enumerate(poly):
            grown[k + i] += c
        poly = grown
    return tuple(poly)


@functools.cache
def signed_rank_cdf(n: int) -> np.ndarray:
    """P(W <= w) for w = 0..n(n+1)/2 with n pairs and no change (read-only, shared)."""
    counts = np.asarray(_w_counts(n), dtype=float)
    cdf = np.cumsum(counts) / counts.sum()
    cdf.flags.writeable = False
    return cdf


def _p_of_w(w: int, n: int) -> float:
    cumulative = signed_rank_cdf(n)
    low, high = cumulative[w], 1.0 - (cumulative[w - 1] if w >= 1 else 0.0)
    return min(1.0, 2 * float(min(low, high)))


def paired_p(base: np.ndarray, head: np.ndarray) -> float:
    """The exact two-sided Wilcoxon signed-rank p-value (Wilcoxon 1945) of the pairs' log ratios
    d = log(head_i / base_i), base and head in pair order; 1.0 with fewer than two pairs. A pair whose
    runs agree exactly (d = 0) is counted on whichever side gives the larger p, so a tie never makes a
    rejection easier (as `mann_whitney`); |d| tied across pairs (thread CPU time reads nanoseconds)
    are ranked in pair order."""
    d = log_ratios(base, head)
    n = len(d)
    if n < 2:
        return 1.0
    ranks = np.empty(n, dtype=int)
    ranks[np.argsort(np.abs(d), kind="stable")] = np.arange(1, n + 1)
    strict, zeros = int(ranks[d > 0].sum()), int(ranks[d == 0].sum())
    return max(_p_of_w(w, n) for w in range(strict, strict + zeros + 1))


def paired_smallest_p(n: int) -> float:
    """The smallest two-sided p-value `paired_p` can give with n pairs: 2 / 2^n (every pair one way)."""
    return min(1.0, 2 / 2**n)


def paired_bounds(base: Sequence[float], head: Sequence[float], level: float) -> tuple[float, float]:
    """The head/base ratios `paired_p` does not reject at `level`, the interval that inverts it (coverage
    at least 1 - level): the Hodges-Lehmann interval of the Walsh averages (d_i + d_j) / 2, i <= j
    (Hollander & Wolfe 1999, 3.3), from the k-th smallest to the k-th largest, k the largest with
    P(W <= k - 1) <= level / 2; (0, inf) where no interval that narrow exists with these pairs."""
    d = log_ratios(base, head)
    k = int(np.searchsorted(signed_rank_cdf(len(d)), level / 2 * (1 + SLACK), side="right"))
    if k == 0:
        return 0.0, math.inf
    i, j = np.triu_indices(len(d))
    walsh = np.sort((d[i] + d[j]) / 2)
    return float(np.exp(walsh[k - 1])), float(np.exp(walsh[-k]))


def paired_family_smallest_p(n: int) -> float:
    """The smallest p-value `paired_family_p` can give with n pairs: 2 / 2^n enumerated (a sign pattern
    and its mirror tie), 1 / (FAMILY_DRAWS + 1) drawn."""
    return 1 / (FAMILY_DRAWS + 1) if _flips_drawn(n) else 2 / 2**n


def paired_family_p(base: np.ndarray, head: np.ndarray, s0: float = 0.0) -> np.ndarray:
    """`family_p` for pairs timed together: the step-down max-T over sign flips of whole pairs (all of
    a pair's benchmarks flipped at once, so what the pair's runs shared is kept). Shapes: `base` and
    `head` (n, m) seconds, row i pair i, one column per benchmark; returns (m,) p-values. The statistic
    is a moderated one-sample t of d = log(head / base), |mean d| / ((s + s0) / sqrt(n)), s the standard
    deviation of d; exact over the 2^(n - 1) patterns with pair 0 unflipped (a pattern and its mirror
    have the same statistic) up to FAMILY_EXACT_UP_TO, else FAMILY_DRAWS drawn and the observed one.
    Raises ValueError on shapes that differ or samples that are not positive finite seconds."""
    b, h = np.asarray(base, dtype=float), np.asarray(head, dtype=float)
    if b.ndim != 2 or b.shape != h.shape:
        raise ValueError("paired_family_p takes (pairs, benchmarks) arrays of positive seconds, the same shape")
    _check_seconds(np.concatenate((b, h)), "paired_family_p takes (pairs, benchmarks)")
    n = len(b)
    if n < 2:
        return np.ones(b.shape[1])
    d = log_ratios(b, h)
    if _flips_drawn(n):
        rng = np.random.default_rng(0)
        signs = np.vstack((np.ones(n), rng.choice((-1.0, 1.0), size=(FAMILY_DRAWS, n))))
    else:
        rest = np.array(list(itertools.product((1.0, -1.0), repeat=n - 1))).reshape(-1, n - 1)
        signs = np.hstack((np.ones((len(rest), 1)), rest))
    squares = (d**2).sum(axis=0)

    def moderated_t(flips: np.ndarray) -> np.ndarray:
        mean = flips @ d / n
        s = np.sqrt(np.maximum(squares - n * mean**2, 0.0) / (n - 1))
        return np.abs(mean) / (np.maximum(s + s0, FLOOR) / math.sqrt(n))

    statistic, observed = moderated_t(signs), moderated_t(np.ones((1, n)))[0]
    return _step_down(statistic, observed)


def samples_needed(alpha: float, paired: bool = False) -> int:
    """The fewest runs a side (the same on both) with which the gate (gate.decide_all, which reads the
    runs through `decide` from MIN_RUNS on) can reach `alpha`: at least MIN_RUNS, and enough for
    `two_sample_p`'s smallest p (`paired_p`'s, for pairs timed together) to reach it."""
    n = MIN_RUNS
    while not can_reach(paired_smallest_p(n) if paired else smallest_p(n, n), alpha):
        n += 1
    return n


def ratio_interval(base: np.ndarray, head: np.ndarray) -> tuple[float, float]:
    """The CONFIDENCE bootstrap interval of the ratio of medians (fixed seed: same samples, same answer)."""
    if min(len(base), len(head)) < 2:
        ratio = float(np.median(head) / np.median(base))
        return ratio, ratio
    from scipy import stats

    result = stats.bootstrap(
        (base, head),
        lambda b, h, axis: np.median(h, axis=axis) / np.median(b, axis=axis),
        n_resamples=999,
        confidence_level=CONFIDENCE,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(0),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def classify(ratio: float, is_significant: bool, threshold: float) -> str:
    """Size and significance together: "regression", "improvement" or "unchanged"."""
    if is_significant and ratio > 1 + threshold:
        return "regression"
    if is_significant and ratio < 1 / (1 + threshold):
        return "improvement"
    return "unchanged"


def decide(
    name: str, base: Sequence[float], head: Sequence[float], threshold: float = THRESHOLD, alpha: float = ALPHA
) -> Verdict:
    """Two samples of seconds (independent figures, e.g. one per run) -> Verdict. Samples too few to
    reach `alpha` give "undecided" (their p shown), never "unchanged". ValueError: a side is empty."""
    base_a, head_a = np.asarray(base, dtype=float), np.asarray(head, dtype=float)
    if len(base_a) == 0 or len(head_a) == 0:
        raise ValueError(f"{name}: a side has no samples")
    ratio = float(np.median(head_a) / np.median(base_a))
    p_value = two_sample_p(base_a, head_a)
    low, high = ratio_interval(base_a, head_a)
    if can_reach(smallest_p(len(base_a), len(head_a)), alpha):
        verdict = classify(ratio, significant(p_value, alpha), threshold)
    else:
        verdict = "undecided"
    base_s, head_s = float(np.median(base_a)), float(np.median(head_a))
    return Verdict(name, base_s, head_s, ratio, low, high, p_value, len(base_a), len(head_a), verdict)


def ratio_only(name: str, base: Sequence[float], head: Sequence[float], verdict: str) -> Verdict:
    """A verdict that claims nothing ("undecided", "throttled"): the ratio of medians alone."""
    base_s, head_s = float(np.median(base)), float(np.median(head))
    ratio = head_s / base_s
    return Verdict(name, base_s, head_s, ratio, ratio, ratio, None, len(base), len(head), verdict)


@dataclass(frozen=True)
class Spread:
    """A machine's run-to-run spread, from consecutive pairs of its runs (select.run_spread builds it).

    Two ways a pair of runs of the same code strays, each in its own units:
    - one benchmark: `scale`, per benchmark, the robust standard deviation (MAD x 1.4826) of
      log(run i+1 / run i), and a pair's worst benchmark, the largest |log ratio| / scale;
    - the whole run: the pair's `shift`, the median over its benchmarks of the log ratios (a busy
      machine, or a change that slows every kernel), over `shift_scale`, its own robust deviation.
    `weight` = median(worst benchmark) / median(|shift| / shift_scale) over the history's pairs puts
    the two on one scale (each at its typical size there), and a pair's statistic, `worst`, is the
    larger of them. A new pair of runs of the same code is one more draw of the same kind, so it
    exceeds all `len(worst)` of them with probability at most 1 / (len(worst) + 1), for the whole
    table at once. Without the shift, the worst single benchmark of 20 noisy pairs hides a run
    that is slower as a whole: a 15% slower run went unflagged on this project's CPU machine.
    """

    scale: dict[str, float]
    shift_scale: float
    weight: float
    worst: tuple[float, ...]

    @property
    def pairs(self) -> int:
        return len(self.worst)

    @property
    def smallest_p(self) -> float:
        """The smallest p-value `p_value` can give: 1 / (pairs + 1)."""
        return 1 / (self.pairs + 1)

    def p_value(self, name: str, log_ratio: float, shift: float = 0.0) -> float:
        """The share of history pairs (the new one counted) that strayed as far as this benchmark,
        moved by `log_ratio` in a pair whose whole run shifted by `shift`: a benchmark that moved
        with the shift carries the shift's evidence too."""
        z = abs(log_ratio) / self.scale[name]
        if shift * log_ratio > 0:
            z = max(z, self.weight * abs(shift) / self.shift_scale)
        return (1 + sum(worst >= z for worst in self.worst)) / (self.pairs + 1)


def spread_pairs_needed(alpha: float) -> int:
    """History pairs for a Spread to reach `alpha` (smallest p 1 / (pairs + 1)); runs needed: one more."""
    return max(0, math.ceil(1 / alpha - 1 - 1e-9))  # 1 / (pairs + 1) <= alpha


def robust_scale(values: Sequence[float]) -> float:
    """MAD x 1.4826 (a normal's standard deviation, unmoved by outliers), at least MIN_SPREAD."""
    d = np.asarray(values)
    return max(1.4826 * float(np.median(np.abs(d - np.median(d)))), MIN_SPREAD)


def spread_of(pairs: Sequence[Mapping[str, float]]) -> Spread | None:
    """The Spread of consecutive pairs of runs, each {benchmark: log(second / first)}; None without any."""
    if not pairs:
        return None
    diffs: dict[str, list[float]] = {}
    for pair in pairs:
        for name, d in pair.items():
            diffs.setdefault(name, []).append(d)
    scale = {name: robust_scale(values) for name, values in diffs.items()}
    benchmark = np.array([max(abs(d) / scale[name] for name, d in pair.items()) for pair in pairs])
    shifts = [float(np.median(list(pair.values()))) for pair in pairs]
    shift_scale = robust_scale(shifts)
    whole = np.abs(shifts) / shift_scale
    typical = float(np.median(whole))
    weight = float(np.median(benchmark)) / typical if typical > 0 else 1.0
    worst = tuple(float(w) for w in np.maximum(benchmark, weight * whole))
    return Spread(scale, shift_scale, weight, worst)


def decide_by_spread(
    name: str,
    base: Sequence[float],
    head: Sequence[float],
    spread: Spread | None,
    threshold: float = THRESHOLD,
    alpha: float = ALPHA,
    shift: float = 0.0,
) -> Verdict:
    """One or two runs a side: the ratio of medians against this machine's Spread; `shift` is the
    whole compared pair's (median log ratio over its benchmarks). A history too short to reach
    alpha, or none, gives "undecided" with the ratio alone."""
    if spread is None or name not in spread.scale or not can_reach(spread.smallest_p, alpha):
        return ratio_only(name, base, head, "undecided")
    base_s, head_s = float(np.median(base)), float(np.median(head))
    ratio = head_s / base_s
    p_value = spread.p_value(name, float(np.log(ratio)), shift)
    # The interval: the ratio give or take the run-to-run ratio this benchmark stays within 95% of the time.
    z = 1.96 * spread.scale[name]
    low, high = ratio * float(np.exp(-z)), ratio * float(np.exp(z))
    verdict = classify(ratio, significant(p_value, alpha), threshold)
    return Verdict(name, base_s, head_s, ratio, low, high, p_value, len(base), len(head), verdict)
