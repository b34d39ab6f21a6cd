"""Export one commit's figures to the result servers teams already run (pure functions).

- Bencher Metric Format (BMF), for `bencher run --file results.json --adapter json`: an object of
  benchmarks, each an object of measures, each {value, lower_value, upper_value}. `latency` is
  Bencher's built-in measure, in nanoseconds: the median per call; `latency-per-token` is created
  on first upload (nanoseconds per token). Lower and upper values: the pooled interval (IQR of the
  rounds for the steady state, the runs' range otherwise).
- github-action-benchmark's `customSmallerIsBetter` input: a list of {name, unit, value, range,
  extra}, one entry per benchmark and figure (per call, per token).
"""

from __future__ import annotations

from collections.abc import Sequence

from perf_core import contract
from perf_core.analysis.select import Point

FORMATS = ("bencher", "github-action-benchmark")
NS = 1e9


def bencher(points: Sequence[tuple[str, Point]]) -> dict:
    """BMF JSON (https://bencher.dev/docs/reference/bencher-metric-format/) of (benchmark name, Point)."""
    document = {}
    for name, point in points:
        n = contract.parse_name(name).n_tokens
        document[name] = {
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
                {"name": f"{name} ({suffix})", "unit": unit, "value": value, "range": f"± {spread:.1f}", "extra": extra}
            )
    return entries
