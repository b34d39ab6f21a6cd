"""The per-token table the suite prints after pytest-benchmark's per-call one (its terminal summary)."""

from __future__ import annotations

from collections.abc import Sequence

from perf_core import contract
from perf_core.measure.selection import Selection
from perf_core.units import format_seconds

# Any of these saved: the benchmark measured something the table can show.
HELD = (contract.PER_TOKEN_S, contract.DEVICE_S, contract.LATENCY_S)


def title(selection: Selection, device_name: str, threads: int) -> str:
    """The table's section title, naming what it measured."""
    where = (
        f"{device_name}, preset {selection.preset} ({selection.dtype}),"
        f" {threads} thread(s), {selection.cache} cache"
        + (f", rest {selection.rest:g}" if selection.device == "cuda" else "")
    )
    return f"per-token latency (median per call / tokens): {where}"


def per_token_lines(benchmarks: Sequence) -> list[str]:
    """The table's lines (header, one row per benchmark in name order, a THROTTLED note when one was)
    from pytest-benchmark's benchmarks (their extra_info); [] when none measured anything."""
    rows = [b for b in benchmarks if any(b.extra_info.get(key) for key in HELD)]
    if not rows:
        return []
    header = (
        f"{'benchmark':<28}{'per call':>14}{'per token':>14}{'floor/token':>14}{'x floor':>9}{'device/call':>14}"
        f"{'tokens/s':>12}{'GB/s':>10}{'of copy':>9}"
    )
    named = {}
    for bench in rows:
        info = bench.extra_info
        named[contract.bench_name(info[contract.KERNEL], info[contract.VARIANT], info[contract.N_TOKENS])] = bench
    lines = [header] + [_row(name, named[name].extra_info) for name in sorted(named, key=contract.parse_name)]
    if any(b.extra_info.get(contract.THROTTLED) for b in rows):
        lines.append("THROTTLED: NVML saw the card slowed (power, thermal) or its SM clock low during the rounds")
    return lines


def _row(name: str, info: dict) -> str:
    n = info[contract.N_TOKENS]
    floor = info.get(contract.FLOOR_S)
    per_token = info.get(contract.PER_TOKEN_S)  # None where steady was not measured
    ratio = f"{per_token * n / floor:.2f}" if floor and per_token else "-"  # 0.96 must not read 1.0
    mark = "  THROTTLED" if info.get(contract.THROTTLED) else ""
    return (
        f"{name:<28}{format_seconds(per_token and per_token * n):>14}{format_seconds(per_token):>14}"
        f"{format_seconds(floor / n if floor else None):>14}{ratio:>9}"
        f"{format_seconds(info.get(contract.DEVICE_S)):>14}{_rate_columns(info)}{mark}"
    )


def _rate_columns(info: dict) -> str:
    """tokens/s, GB/s and the share of the copy bandwidth; '-' where the run lacks one (no peaks)."""
    tokens, streamed, share = (
        info.get(key) for key in (contract.TOKENS_PER_S, contract.BYTES_PER_S, contract.BANDWIDTH_SHARE)
    )
    tokens_text = "-" if tokens is None else f"{tokens:,.0f}"
    streamed_text = "-" if streamed is None else f"{streamed / 1e9:.2f}"
    share_text = "-" if share is None else f"{share:.0%}"
    return f"{tokens_text:>12}{streamed_text:>10}{share_text:>9}"
