"""Why a benchmark changed: the kernels of its call that were added, removed, got slower or faster.

Pure: two records.Breakdown in, one Explanation out; no I/O, no torch. The `explain` command and the
tables of `compare` and `ab` print it.
"""

from __future__ import annotations

from dataclasses import dataclass

from perf_core.analysis.records import Breakdown

# A part is named only when it changed by at least this share of the base call (or by the caller's
# noise_s, when larger). 2% is the gate's device threshold (gate.DEVICE_THRESHOLD): a whole call
# that moved less is not called changed, so no part of it is either. It is also above what one
# unchanged compiled matmul's parts moved between two processes on the loaded 2-core CI machine
# (tests/test_explain.py::test_a_commit_that_changes_nothing_names_nothing runs that case).
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

    @property
    def change_s(self) -> float:
        return (self.head_s or 0.0) - (self.base_s or 0.0)


@dataclass(frozen=True)
class Explanation:
    """What changed between two breakdowns of one benchmark, each list largest change first."""

    base_total_s: float  # the profiled parts' sum, seconds per call
    head_total_s: float
    threshold_s: float  # the smallest change named (MIN_SHARE of the base call, or noise_s)
    added: tuple[PartChange, ...]
    removed: tuple[PartChange, ...]
    slower: tuple[PartChange, ...]
    faster: tuple[PartChange, ...]
    unnamed_s: float  # the sum of the changes under the threshold
    code_changed: bool | None  # the generated code's fingerprints differ; None: not both compiled and recorded
    kernels_added: tuple[str, ...]  # generated kernels only the head's code defines
    kernels_removed: tuple[str, ...]

    @property
    def change_s(self) -> float:
        return self.head_total_s - self.base_total_s

    @property
    def named(self) -> tuple[PartChange, ...]:
        """Every named change, largest first."""
        return tuple(sorted(self.added + self.removed + self.slower + self.faster, key=lambda p: -abs(p.change_s)))


def missing(base: Breakdown | None, head: Breakdown | None) -> str | None:
    """Why two benchmarks' breakdowns cannot be compared (one line), or None when they can."""
    for side, breakdown in (("base", base), ("head", head)):
        if breakdown is None:
            return f"the {side} run has no breakdown (saved before format 3, or run with --no-breakdown)"
        if breakdown.parts is None:
            return f"the {side} run has no breakdown: {breakdown.note or 'no reason saved'}"
    return None


def explain(base: Breakdown, head: Breakdown, min_share: float = MIN_SHARE, noise_s: float = 0.0) -> Explanation:
    """Diff two breakdowns of one benchmark: parts matched by their stable names.

    noise_s: a change smaller than this (seconds per call) is not named, e.g. the run-to-run spread
    of the benchmark when the caller knows it. Raises ValueError when either side has no parts
    (check with `missing` first).
    """
    if base.parts is None or head.parts is None:
        raise ValueError(missing(base, head))
    base_parts = {name: (calls, seconds) for name, calls, seconds in base.parts}
    head_parts = {name: (calls, seconds) for name, calls, seconds in head.parts}
    base_total = sum(seconds for _, seconds in base_parts.values())
    head_total = sum(seconds for _, seconds in head_parts.values())
    total_change = head_total - base_total
    threshold = max(min_share * base_total, noise_s)
    groups: dict[str, list[PartChange]] = {"added": [], "removed": [], "slower": [], "faster": []}
    unnamed = 0.0
    for name in sorted(base_parts.keys() | head_parts.keys()):
        base_calls, base_s = base_parts.get(name, (None, None))
        head_calls, head_s = head_parts.get(name, (None, None))
        change = (head_s or 0.0) - (base_s or 0.0)
        if abs(change) < threshold or change == 0:
            unnamed += change
            continue
        share = change / total_change if total_change else None
        part = PartChange(name, base_s, head_s, base_calls, head_calls, share)
        kind = "added" if base_s is None else "removed" if head_s is None else "slower" if change > 0 else "faster"
        groups[kind].append(part)
    both = base.fingerprint is not None and head.fingerprint is not None
    return Explanation(
        base_total_s=base_total,
        head_total_s=head_total,
        threshold_s=threshold,
        **{kind: tuple(sorted(parts, key=lambda p: -abs(p.change_s))) for kind, parts in groups.items()},
        unnamed_s=unnamed,
        code_changed=(base.fingerprint != head.fingerprint) if both else None,
        kernels_added=tuple(k for k in head.kernels if k not in base.kernels),
        kernels_removed=tuple(k for k in base.kernels if k not in head.kernels),
    )
