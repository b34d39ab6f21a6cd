"""Timing that is right for the device, and the device's peak figures for the floor.

CUDA kernels run asynchronously: a host clock read without synchronising measures only the launch.
pytest-benchmark reads its timer once before and once after a round of many calls, so a timer that
synchronises before reading the clock pays the sync once per round (steady-state time per call).
The isolated-call latency is the other honest figure: a synchronise after every single call, i.e.
what one call costs its caller, Python and launches included. The two are reported apart.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from perf_core.contract import cpu_name
from perf_core.measure.workload import DTYPE_BYTES


def synchronized_timer(sync: Callable[[], None], clock: Callable[[], float] = time.perf_counter) -> Callable[[], float]:
    """A timer that drains the device queue before reading the host clock."""

    def timer() -> float:
        sync()
        return clock()

    timer.__name__ = f"synchronized_{getattr(clock, '__name__', 'clock')}"
    return timer


def device_sync(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


def timer_for(device: str) -> Callable[[], float]:
    """pytest-benchmark's timer for this device: plain perf_counter on the CPU."""
    return synchronized_timer(torch.cuda.synchronize) if device == "cuda" else time.perf_counter


def isolated_latency_s(
    fn: Callable[[], object],
    sync: Callable[[], None],
    calls: int = 200,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Median seconds of one call with the device drained before and after it."""
    samples = []
    for _ in range(calls):
        sync()
        start = clock()
        fn()
        sync()
        samples.append(clock() - start)
    return statistics.median(samples)


@dataclass(frozen=True)
class Peaks:
    """Measured ceilings of this device: dense matmul rate and device-memory copy bandwidth."""

    flops_per_s: float
    bytes_per_s: float
    dtype: str

    def as_dict(self) -> dict:
        return {"peak_flops_per_s": self.flops_per_s, "copy_bytes_per_s": self.bytes_per_s, "peak_dtype": self.dtype}


def _best_seconds(fn: Callable[[], object], sync: Callable[[], None], repeats: int) -> float:
    fn()  # warm-up: library handles, allocation
    best = float("inf")
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def measure_peaks(device: str, dtype: str) -> Peaks:
    """One large matmul and one large copy on `device`; the best of a few runs of each.

    Sizes fill an H100 (8192^3 bf16, 1 GiB copy) and stay around 0.1 s on one CPU thread.
    """
    sync = device_sync(device)
    torch_dtype = getattr(torch, dtype)
    generator = torch.Generator(device=device).manual_seed(0)
    n = 8192 if device == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=torch_dtype, generator=generator)
    b = torch.randn(n, n, device=device, dtype=torch_dtype, generator=generator)
    matmul_s = _best_seconds(lambda: a @ b, sync, repeats=5)
    elements = (1 << 30 if device == "cuda" else 1 << 25) // DTYPE_BYTES[dtype]
    src = torch.randn(elements, device=device, dtype=torch_dtype, generator=generator)
    dst = torch.empty_like(src)
    copy_s = _best_seconds(lambda: dst.copy_(src), sync, repeats=5)
    # A copy reads and writes every byte once.
    return Peaks(2 * n**3 / matmul_s, 2 * src.numel() * src.element_size() / copy_s, dtype)


def device_name(device: str) -> str:
    """GPU name on CUDA, the CPU's brand string otherwise (the machine fingerprint's first part)."""
    return torch.cuda.get_device_name() if device == "cuda" else cpu_name()
