"""`perf-core report -o site/`: a static HTML dashboard, one page per machine, charts by Vega-Lite.

Vega-Lite through Altair, chosen by page size and load time: one chart per self-contained page in
headless Chromium on the 2-core machine (median of 5 loads, 2026-11-28): Vega-Lite (Altair 6.3,
vl-convert's bundle) 0.90 MB and 0.23 s to the first chart; Bokeh 3.9 1.27 MB, 0.37 s; Plotly 7.1
4.82 MB, 1.32 s (this module drew with Plotly first; scripts/bench_report.py measures the site at
1,000 runs). The bundle (Vega, Vega-Lite, Vega-Embed with its tooltips) is written once into the
site as vega.js and shared by every page: no network at view time, from file:// or GitHub Pages.
Altair builds each chart's spec from the pooled points; no charting code is written here.

Pure builders (chart specs and HTML text) over records; writing the files is `write_site`.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from perf_core import contract
from perf_core.analysis import changes, explain, gate, index, output, select, view
from perf_core.analysis.records import Run
from perf_core.errors import UsageError
from perf_core.units import unit_for

VEGA_JS = "vega.js"
DENSE = 200  # commits up to which the trend draws a point and an error bar per commit
CURVE_COMMITS = 5  # per-token curves drawn: the newest commits (the newest solid and shaded)
# Commits whose breakdowns are drawn: the newest. Breakdowns are not in the history index, so these
# commits' run files are read again (commands.report); ten commits of a 36-benchmark suite is ~5,000 rows.
BREAKDOWN_COMMITS = 10
RED = "#d62728"


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


def chart_id(kind: str, panel: str) -> str:
    """The HTML id of `kind`'s ("curve", "trend") chart of `panel`: a slug of the name for people, and a
    hash of the whole name, so that no two panels share an id and no name from a history (`moe<top2>`,
    `flash attn`, `注意力`) puts into an id or a CSS selector ('#...') a character either cannot carry.
    e.g. ("curve", "matmul-eager") -> "curve-matmul-eager-1a2b3c4d"."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", panel)
    return f"{kind}-{slug}-{hashlib.sha256(panel.encode()).hexdigest()[:8]}"


def chart_div(spec: dict, div_id: str) -> str:
    """A chart's place and the call that draws it; its Vega view is kept for tests and the console.
    `div_id` must be a CSS identifier (chart_id's are). Every '<' in the spec is written as \\u003c, so
    no name in it can end the script or open a comment."""
    data = json.dumps(spec, separators=(",", ":")).replace("<", "\\u003c")
    return (
        f'<div class="chart" id="{div_id}"></div><script>vegaEmbed("#{div_id}", {data}, {{actions: false, renderer: "canvas"}})'
        f'.then(r => {{ (window.views = window.views || {{}})["{div_id}"] = r.view; }});</script>'
    )


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


STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
td, th { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 0.5rem; }
.grid > div { min-width: 0; } .chart { width: 100%; }
.regression { color: #b00020; font-weight: bold; } .note { color: #555; font-size: 0.85rem; }
"""


def html_page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<style>{STYLE}</style><script src="{VEGA_JS}"></script></head>\n<body>\n{body}\n</body></html>\n'
    )


def table_html(header: Sequence[str], rows: Sequence[Sequence[str]], raw: bool = False) -> str:
    def cell(value: str) -> str:
        return value if raw else html.escape(str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def machine_table(runs: Sequence[Run], commits: list) -> str:
    """The page's head table: the machine's settings and the span of its runs."""
    machine = runs[0].machine
    return table_html(
        ["device", "torch", "CUDA", "threads", "cache", "rest", "runs", "commits", "first run", "last run"],
        [
            [
                machine.device_name,
                machine.torch_version,
                machine.cuda_version or "-",
                str(machine.num_threads),
                machine.cache,
                f"{machine.rest:g}",
                str(len(runs)),
                str(len(commits)),
                runs[0].run_time.strftime("%Y-%m-%d %H:%M"),
                runs[-1].run_time.strftime("%Y-%m-%d %H:%M"),
            ]
        ],
    )


def breakdown_section(breakdown_runs: Sequence[Run], names: Sequence[str]) -> tuple[list[str], bool]:
    """The breakdown section's HTML parts and whether it drew a chart (a note when no run has one)."""
    bars, unit = breakdown_rows(breakdown_runs, names)
    shown = len(select.by_commit(list(breakdown_runs)))
    parts = [f"<h2>Where each call's time goes (kernels or operators; newest {shown} commits)</h2>"]
    if bars:
        parts.append(chart_div(breakdown_spec(bars, unit), "breakdown"))
    else:
        parts.append(
            '<p class="note">no breakdown in these commits\' runs (saved before format 3, or with --no-breakdown)</p>'
        )
    return parts, bool(bars)


def changes_section(
    found: list[changes.Found], commits: list, full: dict[str, str], commit_url: str | None, min_change: float
) -> list[str]:
    """The change points section's HTML parts: a table, or a note when too few commits or none found."""
    parts = [f"<h2>Change points ({min_change:.0%} or more)</h2>"]
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
    return parts


def commits_section(commits: list, commit_url: str | None) -> list[str]:
    """The commits section's HTML parts: one row per commit, newest first."""
    rows = [
        [
            commit_link(c, g[0].commit, commit_url),
            g[0].commit_time.strftime("%Y-%m-%d %H:%M") if g[0].commit_time else "-",
            str(len(g)),
        ]
        for c, g in reversed(commits)
    ]
    return ["<h2>Commits</h2>", table_html(["commit", "time", "runs"], rows, raw=True)]


def machine_page(
    number: int,
    runs: Sequence[Run],
    names: Sequence[str],
    metric: str,
    commit_url: str | None,
    min_change: float,
    gate_rows: list[gate.Decided] | None = None,
    memo: dict[str, str] | None = None,
    breakdown_runs: Sequence[Run] = (),
) -> Page:
    """One machine's page. breakdown_runs: the newest commits' runs read from their files (with their
    breakdowns; the index's have none), drawn as one stacked bar chart; () draws none."""
    machine = runs[0].machine
    commits = select.by_commit(runs)
    full = {label: group[0].commit for label, group in commits}
    curves = per_token_specs(runs, names, metric)
    trends, found = trend_specs(runs, names, metric, min_change, memo)
    parts = [
        f"<h1>{html.escape(machine.label)}</h1>",
        '<p class="note"><a href="index.html">all machines</a></p>',
        "<h2>Machine</h2>",
        machine_table(runs, commits),
    ]
    if gate_rows is not None:
        parts += ["<h2>Latest gate result</h2>", gate_table(gate_rows)]
    parts += [
        f"<h2>Latency per Token against Number of Tokens ({html.escape(metric)}; newest {len(commits[-CURVE_COMMITS:])} commits)</h2>",
        '<div class="grid">' + "".join(chart_div(spec, chart_id("curve", p)) for p, spec in curves) + "</div>",
        f"<h2>Tokens per second and bandwidth achieved (newest commit, {html.escape(commits[-1][0])})</h2>",
        throughput_table(commits[-1:], names),
        "<h2>Across commits</h2>",
        '<div class="grid">' + "".join(chart_div(spec, chart_id("trend", p)) for p, spec in trends) + "</div>",
    ]
    breakdown, drawn = breakdown_section(breakdown_runs, names)
    parts += (
        breakdown + changes_section(found, commits, full, commit_url, min_change) + commits_section(commits, commit_url)
    )
    return Page(f"machine-{number}.html", machine.label, "\n".join(parts), len(curves) + len(trends) + drawn)


def throughput_table(commits: list, names: Sequence[str]) -> str:
    """The rates the suite saved (steady state), one row per benchmark of `commits`; a note instead
    when none was saved (runs from before the rates)."""
    rows = []
    for c in view.curve_points(commits, names, "steady"):
        if c.tokens_per_s is None and c.bytes_per_s is None:
            continue
        rows.append(
            [
                c.benchmark,
                "-" if c.tokens_per_s is None else f"{c.tokens_per_s:,.0f}",
                "-" if c.bytes_per_s is None else f"{c.bytes_per_s / 1e9:.2f}",
                "-" if c.bandwidth_share is None else f"{c.bandwidth_share:.0%}",
            ]
        )
    if not rows:
        return '<p class="note">these runs saved no tokens per second or bandwidth (saved before the suite did)</p>'
    return table_html(["benchmark", "tokens/s", "GB/s streamed", "share of copy bandwidth"], rows)


def gate_table(decided: Sequence[gate.Decided]) -> str:
    """The verdicts as the text table has them, the verdict marked with its class (a regression in red)."""

    def cell(row: view.VerdictRow, field: str) -> str:
        text = html.escape(getattr(row, field))
        return f'<span class="{html.escape(row.verdict.lower())}">{text}</span>' if field == "verdict" else text

    rows = [[cell(row, field) for _, field in view.TEXT_COLUMNS] for row in view.verdict_rows(decided)]
    return table_html(view.headers(view.TEXT_COLUMNS), rows, raw=True)


def index_page(pages: Sequence[Page]) -> str:
    items = "".join(f'<li><a href="{p.file}">{html.escape(p.title)}</a></li>' for p in pages)
    return html_page("perf-core report", f"<h1>perf-core report</h1><ul>{items}</ul>")


def vega_bundle() -> str:
    """vl-convert's bundle of Vega, Vega-Lite and Vega-Embed. Bundling takes ~2 s, so it is kept in the
    user's cache folder per vl-convert version (a build product, never history; rebuilt if missing)."""
    import vl_convert

    cache = index.cache_folder()
    path = cache / f"vega-{vl_convert.__version__}.js"
    with contextlib.suppress(OSError, UnicodeDecodeError):
        return path.read_text(encoding="utf-8")
    bundle = vl_convert.javascript_bundle()
    with contextlib.suppress(OSError, UsageError):  # an unwritable cache only costs the 2 s again
        cache.mkdir(parents=True, exist_ok=True)
        output.write_text(path, bundle)
    return bundle


def write_site(folder: Path, pages: Sequence[Page]) -> None:
    """The pages, an index and vega.js (vl-convert's bundle of Vega-Embed, Vega-Lite and Vega): nothing
    is fetched at view time."""

    if folder.exists() and not folder.is_dir():
        raise UsageError(f"-o {folder}: exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    output.write_text(folder / VEGA_JS, vega_bundle())
    for page in pages:
        output.write_text(folder / page.file, html_page(page.title, page.body))
    output.write_text(folder / "index.html", index_page(pages))
