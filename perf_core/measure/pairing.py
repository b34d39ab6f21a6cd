"""A pair's two runs timed together: `perf-core ab` starts base's and head's run of one pair at once on
the same CPU core (`--pair-barrier`), and each waits here for the other before timing a benchmark.

Why (docs/gate.md, ninth pass): the 2-core machine's cores change speed by 1.4-1.5x for 10-20 s at a
time, independently, so runs of one commit timed one after the other spread 10-15%. Two runs sharing
one core over the same seconds see the same speed; timed on each thread's CPU clock (time.thread_time:
the scheduler's turns to the other run are not counted), the head/base ratio of one commit spread
1.6% between pairs where the runs' own medians spread 8-15% (scripts/concurrent_probe.py, 5 pairs;
in the gate itself 2.0-3.3% against 8.1-15.4%, docs/gate.md ninth pass).

Files in the barrier folder: one per side and point (`base-attention-compiled-16` before timing it,
`base-attention-compiled-16.timed` after), `SIDE-done` at the end of a run (written by the run, and
by ab however the run ended), and ab's list of the benchmarks both sides have (contract.PAIR_SHARED).
A run waits at a point until the other has reached it, has ended, or WAIT_LIMIT_S have passed; not
at a benchmark the other side lacks; and a run whose compile failed still arrives at both points
of that benchmark, so no failure holds the other up for long. Each run stays its own process: pairs
stay the gate's samples.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from perf_core import contract

SIDES = ("base", "head")
POLL_S = 0.0005  # the other run gets the core while this one sleeps
# The longest a run waits for the other at one benchmark, then times it alone (a benchmark the other
# run skipped, say): far above a benchmark's compile and timing (~1-20 s on the 2-core machine).
WAIT_LIMIT_S = 300.0


@dataclass(frozen=True)
class Barrier:
    """This run's side (`base` or `head`) of a pair's barrier folder."""

    folder: Path
    side: str
    shared: frozenset[str] | None = None  # the benchmarks both sides have (None: every one), from ab's list

    @property
    def other(self) -> str:
        return SIDES[1 - SIDES.index(self.side)]

    def arrive(self, point: str) -> None:
        """Say this run has reached `point` (a benchmark id, or one with a suffix), without waiting: also
        for a benchmark this run cannot time (its compile failed), so that the other does not wait for it."""
        (self.folder / f"{self.side}-{point}").touch()

    def meet(self, benchmark: str, point: str = "") -> bool:
        """Arrive at `benchmark` + `point`, then wait until the other run has too, or has ended (its done
        file), or WAIT_LIMIT_S have passed; at once for a benchmark the other side does not have (not in
        contract.PAIR_SHARED list, where ab wrote one). Whether the other run was met there."""
        self.arrive(benchmark + point)
        if self.shared is not None and benchmark not in self.shared:
            return False
        theirs, ended = self.folder / f"{self.other}-{benchmark}{point}", contract.pair_done(self.folder, self.other)
        deadline = time.monotonic() + WAIT_LIMIT_S
        while not theirs.exists():
            if ended.exists() or time.monotonic() > deadline:
                return False
            time.sleep(POLL_S)
        return True

    def finish(self) -> None:
        """This run has timed everything it will: the other stops waiting for it."""
        contract.pair_done(self.folder, self.side).touch()


def parse(value: str) -> Barrier:
    """`--pair-barrier FOLDER:SIDE` -> Barrier, with the folder's list of shared benchmarks (written by ab
    before the run starts; none: every benchmark is met). Raises ValueError (one line) for a side that
    is not base or head, or a folder that does not exist."""
    folder, _, side = value.rpartition(":")
    if side not in SIDES or not folder:
        raise ValueError(f"--pair-barrier {value!r}: expected FOLDER:base or FOLDER:head")
    if not Path(folder).is_dir():
        raise ValueError(f"--pair-barrier: {folder} is not a folder")
    listed = Path(folder, contract.PAIR_SHARED)
    shared = frozenset(listed.read_text().split()) if listed.exists() else None
    return Barrier(Path(folder), side, shared)
