"""Where a run's seconds went (contract.PHASES): startup, compiling and timing, on the perf_counter clock."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from perf_core import contract


def process_start() -> float:
    """This process's start on the perf_counter clock: from /proc on Linux (10 ms ticks), else now
    (where /proc is absent: from the plugin's import, after Python's and pytest's own start)."""
    now = time.perf_counter()
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        age = uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22, starttime, in clock ticks
    except (OSError, ValueError, IndexError):
        return now
    return now - max(0.0, age)


@dataclass
class Phases:
    """Where this process's seconds went (contract.PHASES), on the perf_counter clock: one process is one
    run, so one instance (PHASES) per process."""

    started: float
    first: float | None = None  # the first benchmark's start
    compile_s: float = 0.0  # every benchmark's core.prepare

    def begin(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()

    def as_dict(self, now: float) -> dict[str, float]:
        first = now if self.first is None else self.first
        startup_s, compile_s, timing_s = contract.PHASES
        return {
            startup_s: first - self.started,
            compile_s: self.compile_s,
            timing_s: max(0.0, now - first - self.compile_s),
        }
