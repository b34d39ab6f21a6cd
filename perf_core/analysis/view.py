"""The view model between the decisions and the formats: named rows and panels, built once.

Text, Markdown, HTML and JSON are formatters over these (output.table_text, output.markdown_table,
report.table_html, json.dumps of `records`): a format picks fields by name, never by position.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from perf_core import contract
from perf_core.analysis import select
from perf_core.analysis.gate import Decided
from perf_core.analysis.records import Run
from perf_core.units import format_seconds


@dataclass(frozen=True)
class VerdictRow:
    """One benchmark's verdict as the tables show it (per token, rounded), and the Decided it came from."""

    benchmark: str
    base: str  # base per token, e.g. "12.3 us"
    head: str
    ratio: str
    change: str  # e.g. "+5.2%"
    interval: str  # "[low, high]" of the ratio
    p: str  # "-" when nothing was tested
    n: str  # runs a side and what decided, e.g. "5/5 runs", "1/1 spread(19)"
    verdict: str  # upper case for a regression
    decided: Decided

    def cells(self, columns: Sequence[tuple[str, str]]) -> list[str]:
        """The row's text under `columns` ((header, field name) pairs)."""
        return [getattr(self, field) for _, field in columns]


# The columns of each table, by field name: (header, VerdictRow field).
TEXT_COLUMNS = (
    ("benchmark", "benchmark"),
    ("base/token", "base"),
    ("head/token", "head"),
    ("ratio", "ratio"),
    ("95% interval", "interval"),
    ("p", "p"),
    ("n", "n"),
    ("verdict", "verdict"),
)
MARKDOWN_COLUMNS = (
    ("benchmark", "benchmark"),
    ("base/token", "base"),
    ("head/token", "head"),
    ("change", "change"),
    ("95% interval", "interval"),
    ("p", "p"),
    ("verdict", "verdict"),
)


def headers(columns: Sequence[tuple[str, str]]) -> list[str]:
    return [header for header, _ in columns]


def table(rows: Sequence[VerdictRow], columns: Sequence[tuple[str, str]]) -> tuple[list[str], list[list[str]]]:
    """(header, cells) of `rows` under `columns`: what output.table_text and output.markdown_table take."""
    return headers(columns), [row.cells(columns) for row in rows]


def verdict_rows(decided: Sequence[Decided]) -> list[VerdictRow]:
    """One row per benchmark, figures per token."""
    rows = []
    for d in decided:
        v = d.verdict
        rows.append(
            VerdictRow(
                benchmark=v.name,
                base=format_seconds(v.base_s / d.n_tokens),
                head=format_seconds(v.head_s / d.n_tokens),
                ratio=f"{v.ratio:.3f}",
                change=f"{v.change:+.1%}",
                interval=f"[{v.ratio_low:.3f}, {v.ratio_high:.3f}]",
                p=("-" if v.p_value is None else f"{v.p_value:.3g}")
                + ("" if v.family_p is None else f" (family {v.family_p:.3g})"),
                n=f"{v.n_base}/{v.n_head} {d.unit}",
                verdict=v.verdict.upper() if v.verdict == "regression" else v.verdict,
                decided=d,
            )
        )
    return rows


def verdict_records(rows: Sequence[VerdictRow], machine: str) -> list[dict]:
    """The verdicts for --json: every number unrounded, each naming the machine it was measured on."""
    return [
        asdict(row.decided.verdict) | {"n_tokens": row.decided.n_tokens, "unit": row.decided.unit, "machine": machine}
        for row in rows
    ]


def panels(names: Sequence[str]) -> list[tuple[str, list[str]]]:
    """The benchmarks grouped into figure panels (one per kernel/variant), in the order of `names`."""
    grouped: dict[str, list[str]] = {}
    for name in names:
        grouped.setdefault(contract.parse_name(name).panel, []).append(name)
    return list(grouped.items())


def panel_title(panel: str) -> str:
    """ "attention-compiled" -> "attention / compiled"."""
    return panel.replace("-", " / ")


@dataclass(frozen=True)
class CurvePoint:
    """One benchmark of one commit on a per-token curve: runs pooled (select.pool)."""

    benchmark: str
    commit: str  # the commit's short id
    label: str  # "<short id> (<date of its newest run>)"
    tokens: int
    point: select.Point
    throttled: bool  # NVML saw the card slowed in one of the commit's runs
    # select.rates: the steady-state median call's rates, pooled; None where the runs saved none.
    tokens_per_s: float | None = None
    bytes_per_s: float | None = None
    bandwidth_share: float | None = None


def curve_points(commits: Sequence[tuple[str, list[Run]]], members: Sequence[str], metric: str) -> list[CurvePoint]:
    """The per-token curves of one panel: a point per commit and benchmark that has a `metric` figure,
    commits in the given order, benchmarks in the order of `members`."""
    found = []
    for commit, group in commits:
        label = f"{commit} ({group[-1].run_time.strftime('%Y-%m-%d')})"
        for name in members:
            point = select.pool(commit, group, name, metric)
            if point is None:
                continue
            hot = any(run.results[name].throttled for run in group if name in run.results)
            tokens = contract.parse_name(name).n_tokens
            found.append(CurvePoint(name, commit, label, tokens, point, bool(hot), **select.rates(group, name)))
    return found
