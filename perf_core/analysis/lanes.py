"""Lanes: where `perf-core ab` runs its suite processes, one process a lane at a time, the lanes side by
side. On CUDA one lane a GPU (CUDA_VISIBLE_DEVICES); on the CPU one lane a set of cores (affinity),
one by default. Pair i runs on lane i mod N, both of its runs there, in the A B / B A order, so a lane's
own speed shifts both sides of a pair alike and never decides a verdict (docs/gate.md, step 4).
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TypeVar

from perf_core.analysis import launch
from perf_core.errors import UsageError

T = TypeVar("T")


@dataclass(frozen=True)
class Lane:
    """Where one lane's runs go, one process at a time: a GPU (the run's CUDA_VISIBLE_DEVICES), or CPU
    cores (the run's affinity, os.sched_setaffinity); neither: wherever the system puts it."""

    gpu: str | None = None
    cores: tuple[int, ...] = ()

    def label(self) -> str:
        if self.gpu is not None:
            return f"GPU {self.gpu}"
        return f"core{'s' if len(self.cores) > 1 else ''} {','.join(map(str, self.cores))}" if self.cores else ""


NO_LANE = Lane()  # one lane, no GPU or cores named: wherever the system puts the run


def schedule(pairs: int, first: int = 1) -> list[tuple[str, int]]:
    """A B B A A B B A ...: each side goes first in half of the pairs (pairs first..first+pairs-1)."""
    order = []
    for pair in range(first, first + pairs):
        sides = ("base", "head") if pair % 2 == 1 else ("head", "base")
        order += [(side, pair) for side in sides]
    return order


def spread(first: int, last: int, lanes: Sequence[T]) -> list[tuple[T, list[tuple[str, int]]]]:
    """Pairs first..last spread over `lanes` (GPUs or CPU core sets): (lane, [(side, pair), ...] in run
    order) per lane that has any. Pair i runs on lanes[(i - 1) % N], both of its runs there, in
    `schedule`'s order (A B or B A); each lane runs its list one process at a time, the lanes side by side."""
    jobs: dict[int, list[tuple[str, int]]] = {}
    for side, pair in schedule(last - first + 1, first):
        jobs.setdefault((pair - 1) % len(lanes), []).append((side, pair))
    return [(lanes[lane], runs) for lane, runs in sorted(jobs.items())]


def choose_gpus(requested: int | None, device: str | None, visible: Sequence[str]) -> list[str | None]:
    """The GPUs the suite processes go to: the first `requested` of `visible` (all when None). On a
    device that is not CUDA, one lane with none named; an explicit --gpus there is a UsageError."""
    if device != "cuda":
        if requested is not None:
            raise UsageError(f"--gpus: the suite runs on {device or 'an unknown device'} here; leave --gpus out")
        return [None]
    if requested is not None and not 1 <= requested <= max(len(visible), 1):
        raise UsageError(f"--gpus: {requested} asked for, {len(visible)} visible (CUDA_VISIBLE_DEVICES or nvidia-smi)")
    if not visible:
        return [None]  # CUDA works but the GPUs cannot be listed: one lane, the suite's default GPU
    return list(visible[: requested or len(visible)])


def cpu_lanes(requested: int | None, cores: Sequence[int], threads: int, pinned: bool = False) -> list[Lane]:
    """CPU lanes: `requested` sets (default 1) of `threads` cores each from `cores`, each lane's runs
    pinned to its set; one lane, unpinned, when one is asked for or fits, unless `pinned`. Raises
    UsageError when more are asked for than fit. By default one lane for runs timed one after the
    other (on the 2-core machine two lanes side by side made the A/A ratios 3-14x wider, each run's
    neighbour being the other lane's compile or timing), and every lane that fits for a pair's runs
    timed together (`pinned`: the pair shares its cores, so what a neighbour lane does reaches both
    of its runs alike; two lanes kept the pairs' ratios within 1.9% between pairs, docs/gate.md)."""
    fit = len(cores) // max(threads, 1)
    if requested is not None and not 1 <= requested <= max(fit, 1):
        raise UsageError(f"--cpus: {requested} asked for; {len(cores)} core(s) here hold {fit} of {threads} thread(s)")
    count = requested or (max(fit, 1) if pinned else 1)
    if count <= 1 and not pinned:
        return [Lane()]
    ordered = sorted(cores)
    return [Lane(cores=tuple(ordered[i * threads : (i + 1) * threads])) for i in range(count)]


def visible_gpus() -> list[str]:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES' entries when set, else nvidia-smi's
    indices; [] when neither says (no torch here: the analysis half does not import it)."""
    named = os.environ.get("CUDA_VISIBLE_DEVICES")
    if named is not None:
        return [entry.strip() for entry in named.split(",") if entry.strip()]
    try:
        listed = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in listed.stdout.splitlines() if line.strip()] if listed.returncode == 0 else []


def choose_lanes(
    gpus: int | None, cpus: int | None, device: str | None, threads: int, maximum: int, pinned: bool = False
) -> list[Lane]:
    """Where the runs go: on CUDA one lane a GPU (choose_gpus); elsewhere one lane a set of the suite's
    --threads cores (cpu_lanes, over the cores this process may use; `pinned` even for one lane); never
    more lanes than pairs.
    Raises UsageError for --cpus on CUDA and --gpus off it."""
    if device == "cuda":
        if cpus is not None:
            raise UsageError("--cpus: the suite runs on cuda here; use --gpus")
        lanes = [Lane(gpu=gpu) for gpu in choose_gpus(gpus, device, visible_gpus())]
    else:
        choose_gpus(gpus, device, [])
        lanes = cpu_lanes(cpus, sorted(os.sched_getaffinity(0)), threads, pinned)
    return lanes[:maximum]


def run_lanes(
    run_lane: Callable[[Lane, list[tuple[str, int]]], None], lanes: list[tuple[Lane, list[tuple[str, int]]]]
) -> None:
    """Each lane's runs in order, the lanes side by side (side_by_side)."""
    launch.allow_runs()
    try:
        side_by_side([functools.partial(run_lane, lane, jobs) for lane, jobs in lanes])
    finally:
        launch.allow_runs()


def side_by_side(calls: Sequence[Callable[[], None]]) -> None:
    """Every call at once, one thread each (one call: right here, so Ctrl-C and the signals reach the
    running suite directly): the lanes, or a pair's two runs timed together. An interruption or a
    failing call ends every suite still running before it propagates; a failure raises the first one
    that ended the runs (launch.cause, which also sees a pair's failure inside a lane), not one of the
    runs it ended nor the first in order."""
    if len(calls) == 1:
        calls[0]()
        return
    pool = ThreadPoolExecutor(len(calls))
    try:
        futures = [pool.submit(call) for call in calls]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f in done and f.exception() is not None), None)
        if failed:
            error = failed.exception()
            launch.end_all(error)
            raise launch.cause() or error
    except BaseException:
        launch.end_all()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
