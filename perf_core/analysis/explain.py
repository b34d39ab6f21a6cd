"""Why a benchmark changed: the kernels of its call that were added, removed, got slower or faster.

Pure: the records.Breakdown of base and head (one run or several a side) in, one Explanation out,
and its text lines (`describe`) and JSON record (`as_record`); no I/O, no torch. The `explain`
command prints it, and so do `compare`, `ab` (and its Markdown, folded) for each changed benchmark.

Two shares per named part (docs/breakdown.md, "What explain says"):
- `share`: its change over the whole change of the profiled call (head's parts' sum - base's);
- `attributed`: its change over *the measured change*, the sum of the changes of the parts named,
  i.e. of the parts that changed beyond their noise (MIN_SHARE of the call, the part's own
  run-to-run spread on either side, the caller's noise_s) or that only one side has.
The second is the figure the issue's bar ("at least 80% of the measured change attributed to the
new kernel") is read against: the whole call's change is, on the CPU, dominated by noise in the
parts that did not change (a ~1 us added kernel in a ~130 us call whose Python part alone moves
by 5-25 us between runs of one unchanged commit), so its share of the whole change is a measure
of the machine's load, not of the commit. `share` is kept, and printed, for a quiet machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace

from perf_core import contract
from perf_core.analysis.records import Breakdown, Result, Run
from perf_core.units import format_seconds

# A part in both sides is named slower or faster only when it changed by at least this share of the
# base call, and by more than it varies between the runs of one side (the run-to-run noise, when a
# side has two runs or more), and by more than the caller's noise_s. 2% is the gate's device
# threshold (gate.DEVICE_THRESHOLD): a whole call that moved less is not called changed, so no part
# of it is either. The spread matters on the CPU: four runs of one unchanged compiled matmul (64
# tokens, loaded 2-core machine) gave its Python part 46-51 us of a 131 us call, aten::mm 54.0-54.5 us
# (tests/test_breakdown.py). A part only one side has is always named: stable names make that a fact.
MIN_SHARE = 0.02


@dataclass(frozen=True)
class PartChange:
    """One kernel or operator in base and head: seconds and calls per benchmark call (None: absent)."""

    name: str
    base_s: float | None
    head_s: float | None
    base_calls: float | None
    head_calls: float | None
    share: float | None  # of the whole change (head total - base total); None when the total is unchanged
    # Of the measured change: the sum of the named parts' changes; None when they cancel out.
    attributed: float | None = None

    @property
    def change_s(self) -> float:
        return (self.head_s or 0.0) - (self.base_s or 0.0)


@dataclass(frozen=True)
class Explanation:
    """What changed between two breakdowns of one benchmark, each list largest change first."""

    base_total_s: float  # the profiled parts' sum, seconds per call
    head_total_s: float
    threshold_s: float  # the smallest change named slower or faster (MIN_SHARE of the base call, or noise_s)
    added: tuple[PartChange, ...]
    removed: tuple[PartChange, ...]
    slower: tuple[PartChange, ...]
    faster: tuple[PartChange, ...]
    unnamed_s: float  # the sum of the changes not named: under the threshold or the part's own spread
    code_changed: bool | None  # the generated code's fingerprints differ; None: not both compiled and recorded
    kernels_added: tuple[str, ...]  # generated kernels only the head's code defines
    kernels_removed: tuple[str, ...]
    notes: tuple[str, ...] = ()  # what the comparison left out, and why (one line each)

    @property
    def change_s(self) -> float:
        return self.head_total_s - self.base_total_s

    @property
    def named(self) -> tuple[PartChange, ...]:
        """Every named change, largest first."""
        return tuple(sorted(self.added + self.removed + self.slower + self.faster, key=lambda p: -abs(p.change_s)))

    @property
    def measured_change_s(self) -> float:
        """The change beyond the noise: the sum of the named parts' changes (seconds per call)."""
        return sum(part.change_s for part in self.named)


def missing(base: Sequence[Breakdown | None], head: Sequence[Breakdown | None]) -> str | None:
    """Why the two sides' breakdowns cannot be compared (one line), or None when they can."""
    for side, breakdowns in (("base", base), ("head", head)):  # a side without the benchmark first: the bigger fact
        if not breakdowns:
            return f"the {side} side has no run of this benchmark"
    for side, breakdowns in (("base", base), ("head", head)):
        for breakdown in breakdowns:
            if breakdown is None:
                return f"a {side} run has no breakdown (saved before format 3, or run with --no-breakdown)"
            if breakdown.parts is None:
                return f"a {side} run has no breakdown: {breakdown.note or 'no reason saved'}"
    return None


def least(breakdowns: Sequence[Breakdown]) -> dict[str, tuple[float, float]]:
    """name -> (calls, seconds) per call: each part's least time over the runs that have it.

    The least, as the suite takes each part's least over the profiled calls: on a shared machine
    other work only ever slows a run, for seconds at a time (seen: every part of one unchanged
    run 1.5-1.8x the previous run's), so one undisturbed run per side is enough."""
    found: dict[str, tuple[float, float]] = {}
    for breakdown in breakdowns:
        for name, calls, seconds in breakdown.parts or ():
            if name not in found or seconds < found[name][1]:
                found[name] = (calls, seconds)
    return found


def explain(
    base: Breakdown | Sequence[Breakdown],
    head: Breakdown | Sequence[Breakdown],
    min_share: float = MIN_SHARE,
    noise_s: float = 0.0,
) -> Explanation:
    """Diff the breakdowns of one benchmark in base and head (one run or several a side): parts
    matched by their stable names, each side's parts taken by `least`.

    noise_s: a part both sides have is not named when it changed by less than this (seconds per
    call), e.g. the run-to-run spread of the benchmark when the caller knows it. Raises ValueError when a run has no parts (check with
    `missing` first). A part's share is its change over the whole change of the parts' sum.
    """
    base_runs, head_runs = _runs(base), _runs(head)
    reason = missing(base_runs, head_runs)
    if reason:
        raise ValueError(reason)
    base_parts, head_parts = least(base_runs), least(head_runs)
    notes = _comparable(base_parts, head_parts)
    spread = {name: max(_spread(base_runs, name), _spread(head_runs, name)) for name in base_parts.keys() & head_parts}
    base_total = sum(seconds for _, seconds in base_parts.values())
    head_total = sum(seconds for _, seconds in head_parts.values())
    threshold = max(min_share * base_total, noise_s)
    groups, unnamed = _classify(base_parts, head_parts, threshold, spread, head_total - base_total)
    code_changed, kernels_added, kernels_removed = _code_diff(_code(base_runs), _code(head_runs))
    return Explanation(
        base_total_s=base_total,
        head_total_s=head_total,
        threshold_s=threshold,
        **{kind: tuple(sorted(parts, key=lambda p: -abs(p.change_s))) for kind, parts in _attribute(groups).items()},
        unnamed_s=unnamed,
        code_changed=code_changed,
        kernels_added=kernels_added,
        kernels_removed=kernels_removed,
        notes=notes,
    )


def _comparable(
    base_parts: dict[str, tuple[float, float]], head_parts: dict[str, tuple[float, float]]
) -> tuple[str, ...]:
    """Leave out (in place) the GPU's idle part unless both sides measured it the same known way:
    runs saved before it was measured (2026-12-01) have none, and runs saved before commit 4876060
    have contract.BREAKDOWN_IDLE_UNKNOWN, measured with or without the CUDA events around the
    profiled calls (~1.3 us a call apart on an H200). Named added, removed or slower against such a
    base, it would take the blame for a change of method. -> the note saying so."""
    present = {
        side: [n for n in contract.BREAKDOWN_IDLE_PARTS if n in parts]
        for side, parts in (("base", base_parts), ("head", head_parts))
    }
    if present["base"] == present["head"] and present["base"] in ([], [contract.BREAKDOWN_IDLE]):
        return ()
    for name in contract.BREAKDOWN_IDLE_PARTS:
        base_parts.pop(name, None)
        head_parts.pop(name, None)
    why = [
        f"the {side} run has none (saved before it was measured)"
        if not names
        else f"the {side} run's is {contract.BREAKDOWN_IDLE_UNKNOWN} (saved before 4876060, with or without the CUDA events)"
        for side, names in present.items()
        if names != [contract.BREAKDOWN_IDLE]
    ]
    return (f"the device's time outside kernels is left out of both sides: {'; '.join(why)}",)


def _runs(side: Breakdown | Sequence[Breakdown]) -> tuple[Breakdown, ...]:
    return (side,) if isinstance(side, Breakdown) else tuple(side)


def _classify(
    base_parts: dict[str, tuple[float, float]],
    head_parts: dict[str, tuple[float, float]],
    threshold: float,
    spread: dict[str, float],
    total_change: float,
) -> tuple[dict[str, list[PartChange]], float]:
    """Each part's change named added, removed, slower or faster, or left unnamed (returned summed,
    seconds per call) when both sides have it and it moved by no more than `threshold` or its spread."""
    groups: dict[str, list[PartChange]] = {"added": [], "removed": [], "slower": [], "faster": []}
    unnamed = 0.0
    for name in sorted(base_parts.keys() | head_parts.keys()):
        base_calls, base_s = base_parts.get(name, (None, None))
        head_calls, head_s = head_parts.get(name, (None, None))
        change = (head_s or 0.0) - (base_s or 0.0)
        both = base_s is not None and head_s is not None
        # A part missing from a side whose `other` could hold it may only have left that side's
        # named top parts (two runs of one commit swapped aten::empty_like and aten::empty_strided
        # so): not a fact, so only named beyond the threshold like any other change.
        hidden = not both and _could_hold(base_parts if base_s is None else head_parts, head_s or base_s)
        if change == 0 or ((both or hidden) and abs(change) <= max(threshold, spread.get(name, 0.0))):
            unnamed += change
            continue
        share = change / total_change if total_change else None
        part = PartChange(name, base_s, head_s, base_calls, head_calls, share)
        kind = "added" if base_s is None else "removed" if head_s is None else "slower" if change > 0 else "faster"
        groups[kind].append(part)
    return groups, unnamed


def _could_hold(parts: dict[str, tuple[float, float]], seconds: float) -> bool:
    """Whether this side's folded OTHER part is as large as `seconds` (a part could be inside it)."""
    return parts.get(contract.BREAKDOWN_OTHER, (0.0, 0.0))[1] >= seconds


def _attribute(groups: dict[str, list[PartChange]]) -> dict[str, list[PartChange]]:
    """The named parts, each with its share of the named changes' sum (None when that sum is 0)."""
    measured = sum(part.change_s for parts in groups.values() for part in parts)
    return {
        kind: [replace(p, attributed=p.change_s / measured if measured else None) for p in parts]
        for kind, parts in groups.items()
    }


def _code_diff(
    base_code: tuple[str | None, tuple[str, ...]], head_code: tuple[str | None, tuple[str, ...]]
) -> tuple[bool | None, tuple[str, ...], tuple[str, ...]]:
    """(code changed, kernels only the head defines, kernels only the base defines) from each side's
    `_code` (fingerprint, kernels); changed is None when a side has no fingerprint."""
    return (
        None if None in (base_code[0], head_code[0]) else base_code[0] != head_code[0],
        tuple(k for k in head_code[1] if k not in base_code[1]),
        tuple(k for k in base_code[1] if k not in head_code[1]),
    )


def _spread(runs: Sequence[Breakdown], name: str) -> float:
    """How much a part's time varies between the runs of one side that have it (0 for one run)."""
    times = [seconds for run in runs for part, _, seconds in run.parts or () if part == name]
    return max(times) - min(times) if times else 0.0


def _code(runs: Sequence[Breakdown]) -> tuple[str | None, tuple[str, ...]]:
    """A side's fingerprint (None unless every run has the same one) and its generated kernels."""
    fingerprints = {run.fingerprint for run in runs}
    kernels = tuple(dict.fromkeys(kernel for run in runs for kernel in run.kernels))
    return (fingerprints.pop() if len(fingerprints) == 1 else None), kernels


TOP_LINES = 3  # named parts compare and ab print per changed benchmark
CHANGED = ("regression", "improvement")  # the verdicts compare and ab explain


def side(runs: Sequence[Run], name: str) -> list[Breakdown | None]:
    """One side's breakdowns of benchmark `name`, a run that lacks the benchmark left out."""
    return [run.results[name].breakdown for run in runs if name in run.results]


def of(base: Sequence[Run], head: Sequence[Run], name: str) -> Explanation | str:
    """The explanation of benchmark `name` between two sides' runs (their files' Results: the index
    keeps no breakdown), or the one-line reason there is none (`missing`)."""
    base_side, head_side = side(base, name), side(head, name)
    return missing(base_side, head_side) or explain(base_side, head_side)  # type: ignore[arg-type]


def why(
    changed: Sequence[str], base: Sequence[Run], head: Sequence[Run], top: int | None = TOP_LINES
) -> dict[str, list[str]]:
    """benchmark -> describe()'s lines (the `top` largest parts) and, where head's parts do not add up
    to its device time, coverage_line's mark; or one line saying why there are none."""
    return lines({name: of(base, head, name) for name in changed}, head, top)


def lines(found: Mapping[str, Explanation | str], head: Sequence[Run], top: int | None) -> dict[str, list[str]]:
    """why()'s lines for explanations already made (`of`'s answers by benchmark)."""
    described = {}
    for name, e in found.items():
        if isinstance(e, str):
            described[name] = [e]
            continue
        marks = [coverage_line(run.results[name]) for run in head[:1] if name in run.results]
        described[name] = describe(e, top) + [mark for mark in marks if mark]
    return described


# A CUDA graph's kernels leave the device idle between them, which no kernel's time counts: on an H200
# the profiled kernels of the compiled calls summed to 74-97% of device_s (results/h200/gate21,
# docs/gpu.md). Runs since then carry that idle time as a part of its own (contract.BREAKDOWN_IDLE,
# read off the profiler's timeline), so their parts should add up to device_s, a check of the two
# clocks against each other. A call whose parts are off by more than COVERAGE_TOLERANCE is marked.
COVERAGE_TOLERANCE = 0.05


def coverage(result: Result, kernels_only: bool = False) -> float | None:
    """The profiled parts' seconds per call over the call's device_s (CUDA-event device time): 1.0
    when the parts add up to the call. kernels_only: the kernels' (and copies') share alone, the
    device's idle part left out (the share of the call the device was busy). None without both
    (CPU runs, runs without a breakdown)."""
    parts = result.breakdown.parts if result.breakdown else None
    if not parts or not result.device_s:
        return None
    counted = [seconds for name, _, seconds in parts if not (kernels_only and name in contract.BREAKDOWN_IDLE_PARTS)]
    return sum(counted) / result.device_s


def coverage_line(result: Result) -> str | None:
    """A one-line mark for a call whose parts do not add up to its device time, else None."""
    share = coverage(result)
    if share is None or abs(share - 1) <= COVERAGE_TOLERANCE:
        return None
    gap = format_seconds(abs(result.device_s * (1 - share)))
    has_idle = any(name in contract.BREAKDOWN_IDLE_PARTS for name, _, _ in result.breakdown.parts)
    if share > 1:
        extra = ", or the idle part over-counted" if has_idle else ""
        why = f"{gap} per call more than its CUDA events measured: overlapping parts{extra}"
    elif has_idle:
        why = f"{gap} per call the profiler's timeline did not see"
    else:  # a run from before the idle part: the gaps between kernels are what is missing
        why = f"{gap} per call in no profiled kernel: gaps between kernels"
    return f"  note: the profiled parts add up to {share:.0%} of the call's device time ({why})"


def describe(explanation: Explanation, top: int | None = None) -> list[str]:
    """The explanation as text lines: a summary, then one line per named part (largest change
    first; the `top` largest when given, and a line saying how many more), then what was not named.

    e.g. "profiled 131.2 us -> 133.4 us per call (+2.2 us); measured change +1.0 us; generated code changed
    (+cpp_fused_mul)", "  added   cpp_fused_mul   - -> 1.02 us   +1.02 us   100% of measured, 46% of whole".
    """
    e = explanation
    code = {True: "generated code changed", False: "generated code unchanged", None: "generated code unknown"}
    kernels = ", ".join([f"+{k}" for k in e.kernels_added] + [f"-{k}" for k in e.kernels_removed])
    lines = [
        f"profiled {format_seconds(e.base_total_s)} -> {format_seconds(e.head_total_s)} per call"
        f" ({_signed(e.change_s)}); measured change {_signed(e.measured_change_s)};"
        f" {code[e.code_changed]}" + (f" ({kernels})" if kernels else "")
    ]
    kinds = {id(p): kind for kind in ("added", "removed", "slower", "faster") for p in getattr(e, kind)}
    named = e.named if top is None else e.named[:top]
    width = max((len(p.name) for p in named), default=0)
    for p in named:
        both = p.base_calls is not None and p.head_calls is not None
        calls = f", calls {p.base_calls:g} -> {p.head_calls:g}" if both and p.base_calls != p.head_calls else ""
        lines.append(
            f"  {kinds[id(p)]:<7} {p.name:<{width}}  {format_seconds(p.base_s)} -> {format_seconds(p.head_s)}"
            f"  {_signed(p.change_s)}  {_percent(p.attributed)} of measured, {_percent(p.share)} of whole{calls}"
        )
    if len(named) < len(e.named):
        lines.append(f"  ... {len(e.named) - len(named)} more part(s) named: `perf-core explain` lists them")
    if not e.named:
        lines.append(f"  no part changed beyond its noise (threshold {format_seconds(e.threshold_s)})")
    if e.unnamed_s:
        lines.append(
            f"  not named: {_signed(e.unnamed_s)} in parts that moved less than {format_seconds(e.threshold_s)}"
            " or than their run-to-run spread"
        )
    lines += [f"  note: {note}" for note in e.notes]
    return lines


def as_record(explanation: Explanation) -> dict:
    """The explanation for --json: every figure unrounded, seconds per call, and the totals."""
    return asdict(explanation) | {
        "change_s": explanation.change_s,
        "measured_change_s": explanation.measured_change_s,
    }


def _signed(seconds: float) -> str:
    return ("+" if seconds >= 0 else "-") + format_seconds(abs(seconds))


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"
