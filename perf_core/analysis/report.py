"""`perf-core report -o site/`: a static HTML dashboard, one page per machine, charts by Plotly.

Plotly: its one script (plotly.min.js) is written once into the site and shared by every page, so
the site opens from file:// and from GitHub Pages alike with no network; hover labels, log axes and
filled areas are built in, so no charting code is written here. Measured after the fact, one chart
per self-contained page in headless Chromium on the 2-core machine (median of 5 loads; 2026-11-28):
Plotly 7.1 4.82 MB, 1.32 s to the first chart; Bokeh 3.9 1.27 MB, 0.37 s; Vega-Lite through Altair
6.3 (inline, vl-convert) 0.90 MB, 0.23 s. By page size and load time Vega-Lite would be the better
choice; Plotly meets the report's limits (scripts/bench_report.py: 1,000 runs drawn in 2.1-2.3 s,
of which ~1.3 s is plotly.js itself) and is kept until the switch is made and measured.

Pure builders (figures and HTML text) over records; writing the files is `write_site`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from perf_core import contract
from perf_core.analysis import changes, gate, output, select
from perf_core.analysis.records import Run
from perf_core.units import unit_for

PLOTLY_JS = "plotly.min.js"
DENSE = 200  # commits up to which the trend draws a marker and an error bar per point
CURVE_COMMITS = 5  # per-token curves drawn: the newest commits (the newest solid, older fainter)


@dataclass(frozen=True)
class Page:
    """One machine's page: its file name, title and the HTML of its body."""

    file: str
    title: str
    body: str
    charts: int


def commit_link(label: str, sha: str, template: str | None) -> str:
    """The commit's short label, a link to `template` with {sha} the full commit id when given."""
    if not template:
        return html.escape(label)
    return f'<a class="commit" href="{html.escape(template.format(sha=sha))}">{html.escape(label)}</a>'


def _figure_div(fig, div_id: str) -> str:
    config = {"displaylogo": False, "responsive": True}
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=config, default_width="100%")


LAYOUT = {
    "template": "plotly_white",
    "height": 400,
    "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
    "legend": {"font": {"size": 10}, "orientation": "h", "y": -0.22},
    "autosize": True,
}
BLUE = "31, 119, 180"


def hover_text(name: str, point: select.Point, commit: str, floor_s: float | None, unit: str, scale: float) -> str:
    """What hovering a point of the per-token curve says: per token, per call, interval, floor ratio."""
    n = contract.parse_name(name).n_tokens
    text = (
        f"{name}<br>commit {commit}<br>per token {point.per_token_s / scale:.4g} {unit}"
        f"<br>per call {point.per_token_s * n / scale:.4g} {unit}"
        f"<br>interval {point.low_s / scale:.4g}-{point.high_s / scale:.4g} {unit} per token"
    )
    return text + (f"<br>x floor {point.per_token_s * n / floor_s:.2f}" if floor_s else "")


def per_token_figures(runs: Sequence[Run], names: Sequence[str], metric: str) -> list[tuple[str, object]]:
    """One Plotly figure per kernel/variant: Latency per Token against Number of Tokens."""
    import plotly.graph_objects as go

    commits = select.by_commit(runs)[-CURVE_COMMITS:]
    panels = list(dict.fromkeys(contract.parse_name(n).panel for n in names))
    floors = dict(select.floors(runs, names))
    values = [p.per_token_s for c, g in commits for n in names if (p := select.pool(c, g, n, metric))] or [1.0]
    unit, scale = unit_for(values)
    figures = []
    for panel in panels:
        members = [n for n in names if contract.parse_name(n).panel == panel]
        fig = go.Figure()
        for i, (commit, group) in enumerate(commits):
            points = [(n, p) for n in members if (p := select.pool(commit, group, n, metric))]
            if not points:
                continue
            newest = i == len(commits) - 1
            date = group[-1].run_time.strftime("%Y-%m-%d")
            tokens = [contract.parse_name(n).n_tokens for n, _ in points]
            hover = [hover_text(n, p, f"{commit} ({date})", floors.get(n), unit, scale) for n, p in points]
            fig.add_trace(
                go.Scatter(
                    x=tokens,
                    y=[p.per_token_s / scale for _, p in points],
                    mode="lines+markers",
                    name=f"{commit} ({date})",
                    marker={"symbol": "circle", "size": 8, "color": f"rgba({BLUE}, {1.0 if newest else 0.4})"},
                    line={"width": 2.5 if newest else 1.2, "color": f"rgba({BLUE}, {1.0 if newest else 0.4})"},
                    fill="tozeroy" if newest else None,
                    fillcolor=f"rgba({BLUE}, 0.18)",
                    hovertext=hover,
                    hoverinfo="text",
                )
            )
        floor_points = [(contract.parse_name(n).n_tokens, floors[n]) for n in members if floors.get(n)]
        if floor_points:
            fig.add_trace(
                go.Scatter(
                    x=[t for t, _ in floor_points],
                    y=[f / t / scale for t, f in floor_points],
                    mode="lines",
                    name="floor (cost model)",
                    line={"dash": "dash", "color": "#555"},
                    hovertemplate="floor %{y:.4g} " + unit + " per token<extra></extra>",
                )
            )
        ticks = sorted({contract.parse_name(n).n_tokens for n in members})
        span = [math.log10(ticks[0]) - 0.08, math.log10(ticks[-1]) + 0.08]  # room for the end markers
        fig.update_layout(
            title=panel.replace("-", " / "),
            xaxis={"title": "Number of Tokens", "type": "log", "tickvals": ticks, "range": span},
            yaxis={"title": f"Latency per Token ({unit})", "rangemode": "tozero"},
            **LAYOUT,
        )
        figures.append((panel, fig))
    return figures


@dataclass(frozen=True)
class Found:
    benchmark: str
    commit: str
    date: str
    change: float


def trend_figures(
    runs: Sequence[Run], names: Sequence[str], metric: str, min_change: float
) -> tuple[list[tuple[str, object]], list[Found]]:
    """One figure per kernel/variant across commits, a line per token count, change points marked."""
    import plotly.graph_objects as go

    commits = select.by_commit(runs)
    labels = [c for c, _ in commits]
    dense = len(commits) <= DENSE
    found: list[Found] = []
    figures = []
    for panel in dict.fromkeys(contract.parse_name(n).panel for n in names):
        fig = go.Figure()
        members = [n for n in names if contract.parse_name(n).panel == panel]
        series = {n: [select.pool(c, g, n, metric) for c, g in commits] for n in members}
        values = [p.per_token_s for points in series.values() for p in points if p] or [1.0]
        unit, scale = unit_for(values)
        for name, points in series.items():
            present = [(i, p) for i, p in enumerate(points) if p]
            for change in changes.detect([p.per_token_s for _, p in present], min_change=min_change):
                index, point = present[change.index]
                when = point.when.strftime("%Y-%m-%d") if point.when else "unknown date"
                found.append(Found(name, point.commit, when, change.change))
                fig.add_vline(x=index - 0.5, line={"color": "#d62728", "dash": "dot", "width": 1})
                fig.add_annotation(
                    x=index,
                    y=point.per_token_s / scale,
                    text=f"{change.change:+.1%}",
                    showarrow=False,
                    yshift=12,
                    font={"color": "#d62728", "size": 10},
                )
            fig.add_trace(trend_trace(name, present, [labels[i] for i, _ in present], unit, scale, dense))
        fig.update_layout(
            title=panel.replace("-", " / "),
            # A numeric axis labelled at most ~30 commits: a category axis of 1,000 commits is slow to draw.
            xaxis={
                "title": "commit (oldest to newest)",
                "tickvals": list(range(0, len(labels), max(1, len(labels) // 30))),
                "ticktext": labels[:: max(1, len(labels) // 30)],
                "tickangle": -60,
            },
            yaxis={"title": f"Latency per Token ({unit})"},
            **(
                LAYOUT
                | {
                    "legend": {"font": {"size": 10}, "orientation": "h", "y": -0.35},
                    "margin": {"l": 60, "r": 20, "t": 50, "b": 60},
                }
            ),
        )
        figures.append((panel, fig))
    return figures, found


def trend_trace(name: str, present: list, labels: list[str], unit: str, scale: float, dense: bool):
    """One benchmark's line across commits: x the commit's position, hover its label and interval."""
    import plotly.graph_objects as go

    return go.Scatter(
        x=[i for i, _ in present],
        customdata=labels,
        y=[p.per_token_s / scale for _, p in present],
        error_y={
            "type": "data",
            "symmetric": False,
            "array": [max(p.high_s - p.per_token_s, 0) / scale for _, p in present],
            "arrayminus": [max(p.per_token_s - p.low_s, 0) / scale for _, p in present],
            "thickness": 1,
            "visible": dense,
        },
        # Past DENSE commits, markers and error bars (an SVG node each) cost the page seconds to draw;
        # the line and the hover (which gives the interval) remain.
        mode="lines+markers" if dense else "lines",
        marker={"size": 5},
        name=f"{contract.parse_name(name).n_tokens} tokens",
        text=[f"{p.low_s / scale:.4g}-{p.high_s / scale:.4g}" for _, p in present],
        hovertemplate=f"{name}<br>commit %{{customdata}}<br>%{{y:.4g}} {unit} per token<br>interval %{{text}} {unit}"
        "<extra></extra>",
    )


STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
td, th { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 0.5rem; }
.grid > div { min-width: 0; }
.regression { color: #b00020; font-weight: bold; } .note { color: #555; font-size: 0.85rem; }
"""


def html_page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<style>{STYLE}</style><script src="{PLOTLY_JS}"></script></head>\n<body>\n{body}\n</body></html>\n'
    )


# Each chart is drawn as its script is parsed, before the page's layout is final: fit them once loaded.
RESIZE = (
    "<script>window.addEventListener('load', () => document.querySelectorAll('.js-plotly-plot')"
    ".forEach(gd => Plotly.Plots.resize(gd)));</script>\n"
)


def table_html(header: Sequence[str], rows: Sequence[Sequence[str]], raw: bool = False) -> str:
    def cell(value: str) -> str:
        return value if raw else html.escape(str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def machine_page(
    number: int,
    runs: Sequence[Run],
    names: Sequence[str],
    metric: str,
    commit_url: str | None,
    min_change: float,
    gate_rows: list[gate.Decided] | None = None,
) -> Page:
    machine = runs[0].machine
    commits = select.by_commit(runs)
    full = {label: group[0].commit for label, group in commits}
    curves = per_token_figures(runs, names, metric)
    trends, found = trend_figures(runs, names, metric, min_change)
    parts = [
        f"<h1>{html.escape(machine.label)}</h1>",
        '<p class="note"><a href="index.html">all machines</a></p>',
        "<h2>Machine</h2>",
        table_html(
            ["device", "torch", "CUDA", "threads", "cache", "runs", "commits", "first run", "last run"],
            [
                [
                    machine.device_name,
                    machine.torch_version,
                    machine.cuda_version or "-",
                    str(machine.num_threads),
                    machine.cache,
                    str(len(runs)),
                    str(len(commits)),
                    runs[0].run_time.strftime("%Y-%m-%d %H:%M"),
                    runs[-1].run_time.strftime("%Y-%m-%d %H:%M"),
                ]
            ],
        ),
    ]
    if gate_rows is not None:
        parts += ["<h2>Latest gate result</h2>", gate_table(gate_rows)]
    parts += [
        f"<h2>Latency per Token against Number of Tokens ({html.escape(metric)}; newest {len(commits[-CURVE_COMMITS:])} commits)</h2>",
        '<div class="grid">' + "".join(_figure_div(fig, f"curve-{p}") for p, fig in curves) + "</div>",
        "<h2>Across commits</h2>",
        '<div class="grid">' + "".join(_figure_div(fig, f"trend-{p}") for p, fig in trends) + "</div>",
        f"<h2>Change points ({min_change:.0%} or more)</h2>",
    ]
    if len(commits) < changes.MIN_POINTS:
        parts.append(
            f'<p class="note">too few commits to look for changes: {len(commits)}, at least {changes.MIN_POINTS} needed</p>'
        )
    elif not found:
        parts.append(f'<p class="note">no change of {min_change:.0%} or more across {len(commits)} commits</p>')
    else:
        rows = [
            [html.escape(f.benchmark), f"{f.change:+.1%}", commit_link(f.commit, full[f.commit], commit_url), f.date]
            for f in found
        ]
        parts.append(table_html(["benchmark", "change", "commit", "date"], rows, raw=True))
    parts.append("<h2>Commits</h2>")
    rows = [
        [
            commit_link(c, g[0].commit, commit_url),
            g[0].commit_time.strftime("%Y-%m-%d %H:%M") if g[0].commit_time else "-",
            str(len(g)),
        ]
        for c, g in reversed(commits)
    ]
    parts.append(table_html(["commit", "time", "runs"], rows, raw=True))
    return Page(f"machine-{number}.html", machine.label, "\n".join(parts), len(curves) + len(trends))


def gate_table(decided: Sequence[gate.Decided]) -> str:
    rows = output.verdict_rows(decided)
    marked = [
        [
            html.escape(c) if i < 7 else f'<span class="{html.escape(c.lower())}">{html.escape(c)}</span>'
            for i, c in enumerate(r)
        ]
        for r in rows
    ]
    return table_html(output.VERDICT_HEADER, marked, raw=True)


def index_page(pages: Sequence[Page]) -> str:
    items = "".join(f'<li><a href="{p.file}">{html.escape(p.title)}</a></li>' for p in pages)
    return html_page("perf-core report", f"<h1>perf-core report</h1><ul>{items}</ul>")


def write_site(folder: Path, pages: Sequence[Page]) -> None:
    """The pages, an index and plotly.min.js (Plotly's own copy): nothing is fetched at view time."""
    from plotly.offline import get_plotlyjs

    if folder.exists() and not folder.is_dir():
        raise output.UsageError(f"-o {folder}: exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    output.write_text(folder / PLOTLY_JS, get_plotlyjs())
    for page in pages:
        output.write_text(folder / page.file, html_page(page.title, page.body))
    output.write_text(folder / "index.html", index_page(pages))
