"""The regression decision of `compare`, `ab` and `report`: which rule of perf_core.analysis.stats
decides each benchmark, from which runs. Only independent runs decide.

- At least stats.MIN_RUNS runs a side (always so in `ab`): each run's figure is one sample, stats.decide
  (size and significance). Sides too small to reach alpha (stats.can_reach of the test's smallest p)
  are "undecided".
- Fewer: the rounds of one run say nothing about the next run (run-to-run drift is the noise that
  matters), so the ratio of the sides' medians is judged against this machine's measured run-to-run
  spread (stats.decide_by_spread over select.run_spread of the newest SPREAD_RUNS runs, the head's
  own left out). alpha = 0.05 needs at least 19 pairs (20 runs); with fewer, or none, "undecided".
- A run whose rounds spread NOISY times as wide as the machine's typical run, with one run a side:
  "undecided"; a benchmark NVML saw throttled: "throttled". Neither claims anything.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from perf_core.analysis.records import Run
from perf_core.analysis.select import noisy_runs, run_spread, run_values
from perf_core.analysis.stats import (
    MIN_RUNS,
    THRESHOLD,
    Verdict,
    decide,
    decide_by_spread,
    ratio_only,
    spread_pairs_needed,
)
from perf_core.errors import EXIT_OK, EXIT_REGRESSION

# Device time (CUDA events, no host in it) is quiet: five A/A gates on an H200 read ratios within
# 0.3% of 1 (docs/gate.md), so its default threshold can be 2% and a 5% regression stands clear of it.
DEVICE_THRESHOLD = 0.02
# The newest runs of the machine whose consecutive pairs measure its spread: the machine's noise now,
# not years ago (drivers, kernels, neighbours change), and a compare that costs the same at any length
# of history. 500 runs give p-values down to 1/500, far below any useful alpha.
SPREAD_RUNS = 500
# A run whose rounds spread this many times wider than the history's typical run was taken on a
# busy machine: one such run a side is not evidence (docs/gate.md, "Compare with one run a side").
NOISY = 2.0


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


def threshold_for(metric: str, given: float | None = None) -> float:
    """The --threshold a command uses: `given`, else DEVICE_THRESHOLD for device time, else THRESHOLD."""
    if given is not None:
        return given
    return DEVICE_THRESHOLD if metric == "device" else THRESHOLD


def spread_runs_needed(alpha: float) -> int:
    """Runs of history (besides the head's) for decide_by_spread to reach `alpha`: one more than its pairs."""
    return spread_pairs_needed(alpha) + 1


def exit_code(decided: Iterable[Decided]) -> int:
    """The process exit of a deciding command: 1 when any benchmark regressed, else 0."""
    return EXIT_REGRESSION if any(d.verdict.verdict == "regression" for d in decided) else EXIT_OK
