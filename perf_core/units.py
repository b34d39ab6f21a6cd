"""Time units for tables and axes, shared by the suite's per-token table and the analysing half."""

from __future__ import annotations

from collections.abc import Iterable

UNITS = (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9))


def unit_for(seconds: Iterable[float]) -> tuple[str, float]:
    """The unit that reads best for these values: the largest one the biggest value reaches."""
    top = max(seconds, default=1.0)
    for name, scale in UNITS:
        if top >= scale:
            return name, scale
    return UNITS[-1]


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    unit, scale = unit_for([seconds])
    return f"{seconds / scale:.3f} {unit}"
