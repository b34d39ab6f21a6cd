"""Figures: the per-token curve (one line per commit) and the trend across commits.

Both take plain data (figures per token count; the trend's as select.Column arrays) and return a matplotlib Figure; saving is output.save_figure's job.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only, no display: also what CI and the GPU machines have

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator

from perf_core.analysis import select
from perf_core.units import unit_for


@dataclass(frozen=True)
class Curve:
    """One commit's per-token latency across token counts, for one kernel/variant panel."""

    label: str
    tokens: tuple[int, ...]
    per_token_s: tuple[float, ...]
    throttled: tuple[bool, ...] = ()  # per point: NVML saw the card slowed during its rounds


@dataclass(frozen=True)
class Panel:
    title: str  # e.g. "attention / compiled"
    curves: tuple[Curve, ...]  # oldest first
    floor_per_token_s: tuple[tuple[int, float], ...] = ()  # (tokens, floor seconds per token)


# Characters of a "medium" (10 pt) DejaVu Sans title an inch holds, with room to spare: the per-token
# figure's one-panel title "NVIDIA H200 | torch 2.11.0+cu130 | ... | preset llama-7b" (97 characters)
# ran past both edges of its 6.4 in figure.
TITLE_CHARS_PER_IN = 11
TITLE_LINES = 4  # past this the title ends in "...": the trend's panels keep their room, whatever a label holds


def fit_title(title: str, width_in: float) -> str:
    """`title` with each line broken at its " | " separators (at spaces where one part is too long;
    never inside a hyphenated name such as llama-3-8b) so that no line is longer than a figure
    `width_in` inches wide holds; at most TITLE_LINES lines, the last cut with "..." when more."""
    budget = max(20, int(width_in * TITLE_CHARS_PER_IN))
    lines: list[str] = []
    for line in title.splitlines():
        current = ""
        for part in line.split(" | "):
            for piece in textwrap.wrap(part, budget, break_on_hyphens=False) or [""]:
                joined = f"{current} | {piece}" if current else piece
                if current and len(joined) > budget:
                    lines.append(current)
                    joined = piece
                current = joined
        lines.append(current)
    if len(lines) > TITLE_LINES:
        lines = [*lines[: TITLE_LINES - 1], lines[TITLE_LINES - 1][: budget - 3] + "..."]
    return "\n".join(lines)


def _grid(count: int) -> tuple[int, int]:
    columns = 1 if count == 1 else 2
    return (count + columns - 1) // columns, columns


def per_token_figure(panels: Sequence[Panel], title: str, metric_label: str) -> Figure:
    """Latency per Token against Number of Tokens: round markers, a solid line, the area shaded."""
    rows, columns = _grid(len(panels))
    fig, axes = plt.subplots(rows, columns, figsize=(6.4 * columns, 4.2 * rows), squeeze=False)
    values = [v for panel in panels for curve in panel.curves for v in curve.per_token_s]
    unit, scale = unit_for(values)
    for ax, panel in zip(axes.flat, panels):
        _draw_curves(ax, panel, scale)
        if panel.floor_per_token_s:
            tokens, floor = zip(*panel.floor_per_token_s)
            ax.plot(tokens, [f / scale for f in floor], linestyle="--", color="0.35", label="floor (cost model)")
        _token_axes(ax, panel, unit)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(fit_title(f"{title}\n{metric_label}", fig.get_size_inches()[0]), fontsize="medium")
    fig.tight_layout()
    return fig


def _draw_curves(ax, panel: Panel, scale: float) -> None:
    """A panel's curves, oldest to newest, throttled points ringed in red."""
    colours = plt.get_cmap("Blues")
    count = len(panel.curves)
    for i, curve in enumerate(panel.curves):
        # Newest commit in full blue; older ones fade, so the latest reads first.
        colour = colours(0.95 - 0.55 * (count - 1 - i) / max(count - 1, 1)) if count > 1 else "tab:blue"
        y = [v / scale for v in curve.per_token_s]
        ax.plot(curve.tokens, y, marker="o", linestyle="-", color=colour, label=curve.label, zorder=3)
        ax.fill_between(curve.tokens, y, 0, color=colour, alpha=0.18 if count == 1 else 0.08, zorder=2)
        slowed = [(t, v) for t, v, hot in zip(curve.tokens, y, curve.throttled) if hot]
        if slowed:
            ax.scatter(
                *zip(*slowed),
                s=110,
                facecolors="none",
                edgecolors="tab:red",
                linewidths=1.5,
                zorder=4,
                label="throttled (NVML)" if i == count - 1 else None,
            )


def _token_axes(ax, panel: Panel, unit: str) -> None:
    """A per-token panel's axes: token counts on a log 2 axis, each labelled, latency from zero."""
    ax.set_xscale("log", base=2)
    ticks = sorted({n for curve in panel.curves for n in curve.tokens})
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(n) for n in ticks])
    ax.set_ylim(bottom=0)
    ax.set_title(panel.title, parse_math=False)  # a name from a history is text, never TeX
    ax.set_xlabel("Number of Tokens")
    ax.set_ylabel(f"Latency per Token ({unit})")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")


@dataclass(frozen=True)
class TrendLine:
    label: str  # e.g. "128 tokens"
    column: select.Column  # one figure per commit on the x axis; NaN where the benchmark is absent
    changes: tuple[tuple[int, float], ...] = ()  # (commit index, relative change)


MAX_WIDTH_IN = 16.0  # the trend figure's widest, in inches: 1,920 px at 120 dpi, a screen
MARKERS_UP_TO = 150  # commits drawn as markers with error bars; more: a line and an IQR band


def trend_figure(commits: Sequence[str], panels: dict[str, Sequence[TrendLine]], title: str) -> Figure:
    """Per-token latency across commits, one panel per kernel/variant, one line per token count."""
    # Wider with more commits, up to a screen: a year of commits on one axis is a line, not markers.
    width = min(max(8.0, 0.18 * len(commits) + 4), MAX_WIDTH_IN)
    # One commit axis for every panel, labelled under the last: the same commits, and 40 rotated
    # labels a panel were a fifth of the time to draw the figure.
    fig, axes = plt.subplots(len(panels), 1, figsize=(width, 3.6 * len(panels)), squeeze=False, sharex=True)
    markers = len(commits) <= MARKERS_UP_TO
    size = select.bin_size(len(commits))
    for ax, (name, lines) in zip(axes.flat, panels.items()):
        unit, scale = unit_for(select.present_values(line.column for line in lines))
        colours = plt.get_cmap("viridis")
        for i, line in enumerate(lines):
            colour = colours(i / max(len(lines) - 1, 1))
            _draw_trend_line(ax, line, colour, scale, size if not markers else None)
            _mark_changes(ax, line, scale)
        ax.set_title(name, parse_math=False)
        ax.set_ylabel(f"Latency per Token ({unit})")
        ax.grid(True, alpha=0.3)
        # Beside the axes, not on them: inside, it covered the top series (the slowest token count).
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    _commit_axis(axes.flat[-1], commits, size)
    _trend_layout(fig, len(panels), title)
    return fig


def _draw_trend_line(ax, line: TrendLine, colour, scale: float, size: int | None) -> None:
    """One token count's series: markers with IQR error bars, or (size: commits a point) a line in a band."""
    if size is None:
        x, y, low, high = select.band(line.column, 1).T
        # Pooled runs: the median of run medians can sit outside the rounds' IQR; clamp at zero.
        err = [np.maximum(y - low, 0) / scale, np.maximum(high - y, 0) / scale]
        ax.errorbar(
            x,
            y / scale,
            yerr=err,
            marker="o",
            markersize=3,
            linewidth=1,
            capsize=2,
            color=colour,
            label=line.label,
        )
    else:  # too many commits for error bars to be seen: the IQR as a band
        x, mid, low, high = select.band(line.column, size).T
        ax.plot(x, mid / scale, linewidth=0.8, color=colour, label=line.label)
        ax.fill_between(x, low / scale, high / scale, color=colour, alpha=0.2, linewidth=0)


def _mark_changes(ax, line: TrendLine, scale: float) -> None:
    """A red dotted rule before each change point of the line, its change written beside the point."""
    for index, change in line.changes:
        ax.axvline(index - 0.5, color="tab:red", linestyle=":", linewidth=1)
        ax.annotate(
            f"{change:+.1%}",
            (index, line.column.per_token_s[index] / scale),
            textcoords="offset points",
            xytext=(4, 8),
            color="tab:red",
            fontsize="small",
        )


def _commit_axis(ax, commits: Sequence[str], size: int) -> None:
    """The bottom panel's commit labels, at most ~20 (each label and grid line costs drawing time)."""
    step = max(1, len(commits) // 20)
    ax.set_xticks(list(range(len(commits)))[::step])
    ax.set_xticklabels(list(commits)[::step], rotation=60, ha="right", fontsize="x-small")
    binned = f"; {size} commits a point" if size > 1 else ""
    ax.set_xlabel(f"commit (oldest to newest; interval: IQR of the rounds{binned})")


def _trend_layout(fig: Figure, rows: int, title: str) -> None:
    """Fixed margins in inches, not tight_layout: that drew the whole figure once more just to measure
    its text (0.45 s of a 3 s trend on 3,000 commits); the labels here have known sizes."""
    width, height = fig.get_size_inches()
    title = fit_title(title, width)
    # Between panels: a title; above the first, the figure's title (0.2 in a line past its first);
    # below the last, the commit labels.
    gap, top, bottom = 0.45, 0.8 + 0.2 * title.count("\n"), 1.25
    tall = (height - top - bottom - gap * (rows - 1)) / rows
    # In inches from the top too: at a fraction of a tall figure's height it sat on the first panel's title.
    fig.suptitle(title, fontsize="medium", y=1 - 0.15 / height, va="top")
    fig.subplots_adjust(
        left=0.85 / width, right=1 - 1.15 / width, top=1 - top / height, bottom=bottom / height, hspace=gap / tall
    )
