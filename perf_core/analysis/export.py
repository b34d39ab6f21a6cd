"""Export one commit's figures to the result servers teams already run (pure functions).

- Bencher Metric Format (BMF), for `bencher run --file results.json --adapter json`: an object of
  benchmarks, each an object of measures, each {value, lower_value, upper_value}. `latency` is
  Bencher's built-in measure, in nanoseconds: the median per call; `latency-per-token` (nanoseconds
  per token) is created with generic units on first upload unless made first:
  `bencher measure create PROJECT --name "Latency per token" --slug latency-per-token --units
  "nanoseconds (ns)"` (MEASURE_CREATE; the README shows it). Lower and upper values: the pooled
  interval (IQR of the rounds for the steady state, the runs' range otherwise).
- github-action-benchmark's `customSmallerIsBetter` input: a list of {name, unit, value, range,
  extra}, one entry per benchmark and figure (per call, per token).

What each consumer keys its series on, and so what must tell machines and metrics apart:
github-action-benchmark, the action's `name:` and then each entry's `name` (an alert compares an
entry with the same `name` in the suite's previous upload); Bencher, the testbed, the benchmark name
and the measure slug. Both formats' benchmark names carry the metric and the machine (series_name),
so uploads of two machines or metrics never meet in one series even under one `name:` or testbed;
the README gives each machine and metric its own `name:` and `--testbed` as well, so that each
upload's previous one is of the same machine.

No NaN or infinity is written (JSON has none, and one would fail the whole upload): finite() leaves
such figures out, and the command says which.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from perf_core import contract
from perf_core.analysis.select import Point

FORMATS = ("bencher", "github-action-benchmark")
NS = 1e9
MEASURE_CREATE = (
    'bencher measure create PROJECT --name "Latency per token" --slug latency-per-token --units "nanoseconds (ns)"'
)


def series_name(name: str, metric: str, machine: str) -> str:
    """A benchmark's name in both formats: the metric and the machine in it, e.g.
    "matmul-eager-16 [steady; NVIDIA H200 | torch 2.13.0 | 1 thread]"."""
    return f"{name} [{metric}; {machine}]"


def finite(points: Sequence[tuple[str, Point]]) -> tuple[list[tuple[str, Point]], list[str]]:
    """(the points whose exported numbers are all finite, the names of those left out). JSON has no
    NaN or infinity, and one would fail the whole upload: a history holds only finite times (records
    checks), but a time that large (1e300 s) becomes infinite in nanoseconds per call."""
    kept, dropped = [], []
    for name, point in points:
        scale = contract.parse_name(name).n_tokens * NS  # the largest factor either format applies
        figures = (point.per_token_s * scale, point.low_s * scale, point.high_s * scale)
        (kept if all(map(math.isfinite, figures)) else dropped).append((name, point))
    return kept, [name for name, _ in dropped]


def bencher(points: Sequence[tuple[str, Point]], machine: str, metric: str) -> dict:
    """BMF JSON (https://bencher.dev/docs/reference/bencher-metric-format/) of (benchmark name, Point),
    each benchmark named by series_name."""
    document = {}
    for name, point in points:
        n = contract.parse_name(name).n_tokens
        document[series_name(name, metric, machine)] = {
            "latency": _bmf(point.per_token_s * n, point.low_s * n, point.high_s * n),
            "latency-per-token": _bmf(point.per_token_s, point.low_s, point.high_s),
        }
    return document


def _bmf(value_s: float, low_s: float, high_s: float) -> dict:
    return {"value": value_s * NS, "lower_value": min(low_s, value_s) * NS, "upper_value": max(high_s, value_s) * NS}


def github_action_benchmark(points: Sequence[tuple[str, Point]], machine: str, metric: str) -> list[dict]:
    """customSmallerIsBetter entries: per call (ns) and per token (ns/token) for each benchmark."""
    entries = []
    for name, point in points:
        n = contract.parse_name(name).n_tokens
        extra = f"commit {point.commit}; {point.runs} run(s); {metric}; {machine}"
        for suffix, unit, scale in (("per call", "ns", n), ("per token", "ns/token", 1)):
            value = point.per_token_s * scale * NS
            spread = max(point.high_s - point.per_token_s, point.per_token_s - point.low_s) * scale * NS
            entries.append(
                {
                    "name": f"{series_name(name, metric, machine)} ({suffix})",
                    "unit": unit,
                    "value": value,
                    "range": f"± {spread:.1f}",
                    "extra": extra,
                }
            )
    return entries
