"""A pair's two runs timed together: `perf-core ab` starts base's and head's run of one pair at once on
the same CPU core (`--pair-barrier`), and each waits here for the other before timing a benchmark.

Why (docs/gate.md, ninth pass): the 2-core machine's cores change speed by 1.4-1.5x for 10-20 s at a
time, independently, so runs of one commit timed one after the other spread 10-15%. Two runs sharing
one core over the same seconds see the same speed; timed on each thread's CPU clock (time.thread_time:
the scheduler's turns to the other run are not counted), the head/base ratio of one commit spread
1.6% between pairs where the runs' own medians spread 4-19% (scripts/concurrent_probe.py, 5 pairs).

Files in the barrier folder, one per side and benchmark (`base-attention-compiled-16`), and
`SIDE-done` at the end of a run (written by the run, and by ab whichever way the run ended): a side
stops waiting when the other reached the same benchmark or has ended (so a benchmark only one
commit has is timed after the other run ended, and a run that failed holds no one up). Each run stays its own process: pairs stay the gate's samples.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from perf_core import contract

SIDES = ("base", "head")
POLL_S = 0.0005  # the other run gets the core while this one sleeps


@dataclass(frozen=True)
class Barrier:
    """This run's side (`base` or `head`) of a pair's barrier folder."""

    folder: Path
    side: str

    @property
    def other(self) -> str:
        return SIDES[1 - SIDES.index(self.side)]

    def meet(self, benchmark: str) -> None:
        """Say this run is ready to time `benchmark` (a file-safe name), then wait until the other run is
        too, or has ended (its done file)."""
        (self.folder / f"{self.side}-{benchmark}").touch()
        theirs, ended = self.folder / f"{self.other}-{benchmark}", contract.pair_done(self.folder, self.other)
        while not theirs.exists() and not ended.exists():
            time.sleep(POLL_S)

    def finish(self) -> None:
        """This run has timed everything it will: the other stops waiting for it."""
        contract.pair_done(self.folder, self.side).touch()


def parse(value: str) -> Barrier:
    """`--pair-barrier FOLDER:SIDE` -> Barrier. Raises ValueError (one line) for a side that is not base
    or head, or a folder that does not exist."""
    folder, _, side = value.rpartition(":")
    if side not in SIDES or not folder:
        raise ValueError(f"--pair-barrier {value!r}: expected FOLDER:base or FOLDER:head")
    if not Path(folder).is_dir():
        raise ValueError(f"--pair-barrier: {folder} is not a folder")
    return Barrier(Path(folder), side)
