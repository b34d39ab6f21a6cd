"""The report's charts as Vega-Lite specs (built with Altair): the per-token curves, the trend across
commits with its change points, and the breakdown's stacked bars; `report` places them in its pages.

Each chart's rows go in as named datasets after Altair has built the (small) spec (with_data).
"""

from __future__ import annotations

from collections.abc import Sequence

from perf_core import contract
from perf_core.analysis import changes, explain, select, view
from perf_core.analysis.records import Run
from perf_core.units import unit_for

DENSE = 200  # commits up to which the trend draws a point and an error bar per commit
CURVE_COMMITS = 5  # per-token curves drawn: the newest commits (the newest solid and shaded)
RED = "#d62728"


def _round(value: float) -> float:
    return float(f"{value:.4g}")


def curve_rows(
    commits: list, members: Sequence[str], metric: str, floors: dict[str, float], scale: float
) -> list[dict]:
    """The per-token chart's rows: one per commit and benchmark, with what hovering a point shows."""
    newest = commits[-1][0] if commits else None
    rows = []
    for c in view.curve_points(commits, members, metric):
        point, n, floor = c.point, c.tokens, floors.get(c.benchmark)
        rows.append(
            {
                "benchmark": c.benchmark,
                "commit": c.label,
                "newest": c.commit == newest,
                "tokens": n,
                "per_token": _round(point.per_token_s / scale),
                "per_call": _round(point.per_token_s * n / scale),
                "interval": f"{point.low_s / scale:.4g}-{point.high_s / scale:.4g}",
                "x_floor": None if not floor else round(point.per_token_s * n / floor, 2),
                "tokens_per_s": None if c.tokens_per_s is None else _round(c.tokens_per_s),
                "gb_per_s": None if c.bytes_per_s is None else _round(c.bytes_per_s / 1e9),
                "bandwidth_share": None if c.bandwidth_share is None else _round(c.bandwidth_share),
            }
        )
    return rows


def per_token_specs(runs: Sequence[Run], names: Sequence[str], metric: str) -> list[tuple[str, dict]]:
    """One chart per kernel/variant: Latency per Token against Number of Tokens, newest commits."""
    commits = select.by_commit(runs)[-CURVE_COMMITS:]
    floors = dict(select.floors(runs, names))
    values = [p.per_token_s for c, g in commits for n in names if (p := select.pool(c, g, n, metric))] or [1.0]
    unit, scale = unit_for(values)
    specs = []
    for panel, members in view.panels(names):
        rows = curve_rows(commits, members, metric, floors, scale)
        floor_rows = [
            {
                "tokens": contract.parse_name(n).n_tokens,
                "floor": _round(floors[n] / contract.parse_name(n).n_tokens / scale),
            }
            for n in members
            if floors.get(n)
        ]
        ticks = sorted({contract.parse_name(n).n_tokens for n in members})
        chart = per_token_chart(ticks, unit, bool(floor_rows), view.panel_title(panel))
        specs.append((panel, with_data(chart, {"curves": rows, "floor": floor_rows})))
    return specs


def curve_tooltip(unit: str) -> list:
    """The per-token chart's tooltip: the point's commit, times in `unit`, distance from the floor, rates."""
    import altair as alt

    return [
        alt.Tooltip("benchmark:N"),
        alt.Tooltip("commit:N"),
        alt.Tooltip("per_token:Q", title=f"per token ({unit})"),
        alt.Tooltip("per_call:Q", title=f"per call ({unit})"),
        alt.Tooltip("interval:N", title=f"interval ({unit} per token)"),
        alt.Tooltip("x_floor:Q", title="x floor"),
        alt.Tooltip("tokens_per_s:Q", title="tokens/s", format=",.4~r"),
        alt.Tooltip("gb_per_s:Q", title="GB/s streamed", format=".4~r"),
        alt.Tooltip("bandwidth_share:Q", title="share of copy bandwidth", format=".1%"),
    ]


def per_token_chart(ticks: list[int], unit: str, floor: bool, title: str):
    """One panel's Altair chart, its rows left out (named datasets "curves" and, when `floor`, "floor"):
    a line per commit against the token count (log 2 axis), the newest shaded, and the floor dashed."""
    import altair as alt

    x = alt.X(
        "tokens:Q",
        scale=alt.Scale(type="log", base=2, nice=False, padding=12),
        axis=alt.Axis(values=ticks, title="Number of Tokens"),
    )
    y_title = f"Latency per Token ({unit})"
    curves = alt.Chart(alt.Data(name="curves"))
    tooltip = curve_tooltip(unit)
    colour = alt.Color(
        "commit:N", scale=alt.Scale(scheme="blues"), legend=alt.Legend(orient="bottom", title=None, columns=3)
    )
    layers = [
        curves.transform_filter("datum.newest")
        .mark_area(opacity=0.18, color="#1f77b4")
        .encode(x=x, y=alt.Y("per_token:Q", title=y_title, scale=alt.Scale(zero=True))),
        curves.mark_line(point=alt.OverlayMarkDef(filled=True, size=70)).encode(
            x=x,
            y="per_token:Q",
            color=colour,
            tooltip=tooltip,
            strokeWidth=alt.condition("datum.newest", alt.value(2.5), alt.value(1.2)),
        ),
    ]
    if floor:
        layers.append(
            alt.Chart(alt.Data(name="floor"))
            .mark_line(strokeDash=[6, 4], color="#555")
            .encode(x=x, y="floor:Q", tooltip=[alt.Tooltip("floor:Q", title=f"floor per token ({unit})")])
        )
    return alt.layer(*layers).properties(title=title, width="container", height=300)


def with_data(chart, datasets: dict[str, list[dict]]) -> dict:
    """The chart's spec with its rows as named datasets: Altair walks and validates every inline row
    (15 s at 1,000 commits), so the rows go in after it has built the (small) spec."""
    spec = chart.to_dict(validate=False)
    spec["datasets"] = datasets
    return spec


def trend_rows(column: select.Column, commits: Sequence[str], tokens: int, scale: float, size: int) -> list[dict]:
    """The chart's rows of one series; past select.MAX_DRAWN commits, one row per `size` commits (the
    medians, named by the bin's first and last commit): a page of 240,000 rows was 21 MB."""
    present = column.present().tolist()
    numbers = select.band(column, size).tolist()
    if size == 1:
        spans = [(i, commits[i], *rest) for (_, *rest), i in zip(numbers, present)]
    else:
        names = [
            f"{commits[present[k]]}..{commits[present[min(k + size, len(present)) - 1]]}"
            for k in range(0, len(present), size)
        ]
        spans = [(round(i, 1), name, *rest) for (i, *rest), name in zip(numbers, names)]
    return [
        {
            "index": index,
            "commit": commit,
            "tokens": tokens,
            "per_token": _round(value / scale),
            "low": _round(low / scale),
            "high": _round(high / scale),
        }
        for index, commit, value, low, high in spans
    ]


def trend_specs(
    runs: Sequence[Run], names: Sequence[str], metric: str, min_change: float, memo: dict[str, str] | None = None
) -> tuple[list[tuple[str, dict]], list[changes.Found]]:
    """One chart per kernel/variant across commits, a line per token count, change points marked."""
    commits = select.by_commit(runs)
    labels, when, size = [commit for commit, _ in commits], select.commit_times(commits), select.bin_size(len(commits))
    every = select.columns(commits, names, metric)  # once for all panels: it reads every commit's numbers
    dense = len(commits) <= DENSE
    found: list[changes.Found] = []
    specs = []
    for panel, members in view.panels(names):
        series = {name: every[name] for name in members}
        unit, scale = unit_for(select.present_values(series.values()))
        rows, marks = [], []
        for name, column in series.items():
            located = changes.found_in(name, column.per_token_s, labels, when, min_change, memo)
            found += located
            marks += change_marks(located, column, scale)
            rows += trend_rows(column, labels, contract.parse_name(name).n_tokens, scale, size)
        chart = trend_chart(unit, dense, bool(marks), view.panel_title(panel))
        specs.append((panel, with_data(chart, {"trend": rows, "changes": marks})))
    return specs, found


def change_marks(located: list[changes.Found], column: select.Column, scale: float) -> list[dict]:
    """The chart's rows marking `located` change points: a rule just before the commit, its change as text."""
    return [
        {
            "at": f.index - 0.5,
            "x": f.index,
            "y": _round(column.per_token_s[f.index] / scale),
            "text": f"{f.change:+.1%}",
        }
        for f in located
    ]


def trend_chart(unit: str, dense: bool, marked: bool, title: str):
    """One panel's Altair chart, its rows left out (named datasets "trend" and, when `marked`, "changes"):
    a line per token count across commits, error bars when `dense`, the change points marked in red."""
    import altair as alt

    base = alt.Chart(alt.Data(name="trend"))
    x = alt.X("index:Q", title="commit (oldest to newest; hover for its name)", axis=alt.Axis(tickMinStep=1))
    tooltip = [
        alt.Tooltip("commit:N"),
        alt.Tooltip("tokens:O"),
        alt.Tooltip("per_token:Q", title=f"per token ({unit})"),
        alt.Tooltip("low:Q", title="interval low"),
        alt.Tooltip("high:Q", title="interval high"),
    ]
    colour = alt.Color(
        "tokens:O", scale=alt.Scale(scheme="viridis"), legend=alt.Legend(orient="bottom", title="tokens")
    )
    line = base.mark_line(point=dense).encode(
        x=x, y=alt.Y("per_token:Q", title=f"Latency per Token ({unit})"), color=colour, tooltip=tooltip
    )
    layers = [line]
    if dense:  # past DENSE commits an error bar per point costs the page its load time
        layers.append(base.mark_errorbar().encode(x=x, y=alt.Y("low:Q", title=""), y2="high:Q", color=colour))
    if marked:
        changes_at = alt.Chart(alt.Data(name="changes"))
        layers += [
            changes_at.mark_rule(color=RED, strokeDash=[2, 3]).encode(x="at:Q"),
            changes_at.mark_text(color=RED, dy=-10, fontSize=10).encode(x="x:Q", y="y:Q", text="text:N"),
        ]
    return alt.layer(*layers).properties(title=title, width="container", height=300)


def breakdown_rows(runs: Sequence[Run], names: Sequence[str]) -> tuple[list[dict], str]:
    """The breakdown chart's rows, one per commit, benchmark and part: each part's least seconds per
    call over the commit's runs (explain.least), in the returned unit; runs without a breakdown add none."""
    found = []
    for order, (label, group) in enumerate(select.by_commit(list(runs))):
        for name in names:
            breakdowns = [b for b in explain.side(group, name) if b is not None and b.parts is not None]
            for part, (calls, seconds) in explain.least(breakdowns).items():
                found.append(
                    {"benchmark": name, "commit": label, "order": order, "part": part, "calls": calls, "s": seconds}
                )
    totals: dict[tuple, float] = {}
    for row in found:
        totals[row["benchmark"], row["order"]] = totals.get((row["benchmark"], row["order"]), 0.0) + row["s"]
    unit, scale = unit_for(totals.values())
    return [{k: v for k, v in row.items() if k != "s"} | {"per_call": _round(row["s"] / scale)} for row in found], unit


def breakdown_spec(rows: list[dict], unit: str) -> dict:
    """One stacked bar chart for the page: a bar per commit (oldest to newest), stacked by the call's
    kernels or operators, for the benchmark chosen in the chart's drop-down (a Vega-Lite parameter
    bound to a select: one chart, not one per benchmark, keeps the page's load time)."""
    import altair as alt

    names = list(dict.fromkeys(row["benchmark"] for row in rows))
    chosen = alt.param(name="benchmark", value=names[0], bind=alt.binding_select(options=names, name="benchmark "))
    chart = (
        alt.Chart(alt.Data(name="breakdown"))
        .mark_bar()
        .encode(
            x=alt.X("commit:N", sort=alt.EncodingSortField("order"), title="commit (oldest to newest)"),
            y=alt.Y("sum(per_call):Q", stack="zero", title=f"Time per Call ({unit})"),
            color=alt.Color("part:N", legend=alt.Legend(orient="bottom", title=None, columns=2, labelLimit=400)),
            order=alt.Order("per_call:Q", sort="descending"),
            tooltip=[
                alt.Tooltip("benchmark:N"),
                alt.Tooltip("commit:N"),
                alt.Tooltip("part:N", title="kernel or operator"),
                alt.Tooltip("per_call:Q", title=f"per call ({unit})"),
                alt.Tooltip("calls:Q", title="calls per call"),
            ],
        )
        .add_params(chosen)
        .transform_filter(alt.datum.benchmark == chosen)
        .properties(title="Where a call's time goes", width="container", height=320)
    )
    return with_data(chart, {"breakdown": rows})
