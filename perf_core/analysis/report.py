"""`perf-core report -o site/`: a static HTML dashboard, one page per machine, charts by Vega-Lite.

Vega-Lite through Altair, chosen by page size and load time: one chart per self-contained page in
headless Chromium on the 2-core machine (median of 5 loads, 2026-11-28): Vega-Lite (Altair 6.3,
vl-convert's bundle) 0.90 MB and 0.23 s to the first chart; Bokeh 3.9 1.27 MB, 0.37 s; Plotly 7.1
4.82 MB, 1.32 s (this module drew with Plotly first; scripts/bench_report.py measures the site at
1,000 runs). The bundle (Vega, Vega-Lite, Vega-Embed with its tooltips) is written once into the
site as vega.js and shared by every page: no network at view time, from file:// or GitHub Pages.
Altair builds each chart's spec from the pooled points; no charting code is written here.

Pure builders of HTML text over records (the chart specs are charts.py's); writing the files is `write_site`.
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

from perf_core.analysis import changes, charts, gate, index, output, select, view
from perf_core.analysis.records import Run
from perf_core.errors import UsageError

VEGA_JS = "vega.js"
# Commits whose breakdowns are drawn: the newest. Breakdowns are not in the history index, so these
# commits' run files are read again (commands.report); ten commits of a 36-benchmark suite is ~5,000 rows.
BREAKDOWN_COMMITS = 10


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
    bars, unit = charts.breakdown_rows(breakdown_runs, names)
    shown = len(select.by_commit(list(breakdown_runs)))
    parts = [f"<h2>Where each call's time goes (kernels or operators; newest {shown} commits)</h2>"]
    if bars:
        parts.append(chart_div(charts.breakdown_spec(bars, unit), "breakdown"))
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
    curves = charts.per_token_specs(runs, names, metric)
    trends, found = charts.trend_specs(runs, names, metric, min_change, memo)
    parts = [
        f"<h1>{html.escape(machine.label)}</h1>",
        '<p class="note"><a href="index.html">all machines</a></p>',
        "<h2>Machine</h2>",
        machine_table(runs, commits),
    ]
    if gate_rows is not None:
        parts += ["<h2>Latest gate result</h2>", gate_table(gate_rows)]
    parts += [
        f"<h2>Latency per Token against Number of Tokens ({html.escape(metric)}; newest {len(commits[-charts.CURVE_COMMITS :])} commits)</h2>",
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
