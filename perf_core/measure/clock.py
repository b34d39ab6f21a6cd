"""Timing that is right for the device, and the device's peak figures for the floor.

CUDA kernels run asynchronously: a host clock read without synchronising measures only the launch.
pytest-benchmark reads its timer once before and once after a round of many calls, so a timer that
synchronises before reading the clock pays the sync once per round (steady-state time per call).
The isolated-call latency is the other honest figure: a synchronise after every single call, i.e.
what one call costs its caller, Python and launches included. The two are reported apart.
"""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from perf_core import contract
from perf_core.measure.shape import DTYPE_BYTES


def synchronized_timer(sync: Callable[[], None], clock: Callable[[], float] = time.perf_counter) -> Callable[[], float]:
    """A timer that drains the device queue before reading the host clock."""

    def timer() -> float:
        sync()
        return clock()

    timer.__name__ = f"synchronized_{getattr(clock, '__name__', 'clock')}"
    return timer


def device_sync(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


def timer_for(device: str, rest: float = 0.0, paired: bool = False) -> Callable[[], float]:
    """pytest-benchmark's timer for this device: plain perf_counter on the CPU, or, for a run timed
    together with another on its core (`paired`, perf-core ab's --pair-barrier), this thread's CPU time
    (time.thread_time: the turns the scheduler gives the other run are not counted; pairing.py); on CUDA
    a synchronised clock, resting the card `rest` times as long as it worked (RestingTimer) when rest > 0."""
    if device != "cuda":
        return time.thread_time if paired else time.perf_counter
    return RestingTimer(torch.cuda.synchronize, rest) if rest > 0 else synchronized_timer(torch.cuda.synchronize)


MAX_WORK_S = 0.1


class RestingTimer:
    """A synchronised timer that lets the card rest between rounds, the rest taken out of its clock.

    Under back-to-back rounds a GPU that reaches its power cap lowers its SM clock (an H200 here:
    1980 -> 1440-1620 MHz from 128-256 tokens up, results/h200/check_gpu_3.md), and the figure then
    measures the power limit, not the kernel. Once the card has worked `burst_s` by this clock (with
    pytest-benchmark's rounds of at least 2 ms: after each round), a call sleeps `rest` times that
    long, counting at most MAX_WORK_S of it (time spent compiling between benchmarks is no work to
    rest from). The timer cannot tell a round's start from its end, so the sleep is subtracted from
    every later reading: whichever end of a round it falls at, no round holds it, and differences of
    readings are the device's work exactly as synchronized_timer's.
    """

    def __init__(
        self,
        sync: Callable[[], None],
        rest: float,
        burst_s: float = 0.002,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.sync, self.rest, self.burst_s, self.clock, self.sleep = sync, rest, burst_s, clock, sleep
        self.rested_s = 0.0  # every rest so far, taken out of the readings
        self._since: float | None = None  # reading at the last rest
        self.__name__ = f"resting_{getattr(clock, '__name__', 'clock')}"

    def __call__(self) -> float:
        self.sync()
        now = self.clock()
        reading = now - self.rested_s
        if self._since is None:
            self._since = reading
        worked = reading - self._since
        if worked >= self.burst_s:
            self.sleep(self.rest * min(worked, MAX_WORK_S))
            self.rested_s += self.clock() - now
            self._since = reading
        return reading


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
    """Measured ceilings of this device: dense matmul rate and memory bandwidth, with what set each.

    `gemm` is the (m, k, n) product that ran fastest, `bandwidth_bytes` the buffer size that moved
    fastest; a run that records them was measured by the rule of measure_peaks (best over the suite's
    own shapes), runs without them by one large matmul and one large copy, which the CPU beat.
    """

    flops_per_s: float
    bytes_per_s: float
    dtype: str
    gemm: tuple[int, int, int] | None = None
    bandwidth_bytes: int | None = None

    def as_dict(self) -> dict:
        return {
            contract.PEAK_FLOPS_PER_S: self.flops_per_s,
            contract.COPY_BYTES_PER_S: self.bytes_per_s,
            contract.PEAK_DTYPE: self.dtype,
            contract.PEAK_GEMM: None if self.gemm is None else list(self.gemm),
            contract.PEAK_BANDWIDTH_BYTES: self.bandwidth_bytes,
        }


def _seconds(fn: Callable[[], object], sync: Callable[[], None], calls: int = 1) -> float:
    """Seconds per call of `calls` calls back to back (several, where one is too short to time)."""
    sync()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    sync()
    return (time.perf_counter() - start) / calls


def _best_rates(works: dict[object, tuple[float, Callable[[], object], int]], sync, repeats: int) -> dict:
    """The best rate (work units per second) of each named (work, fn, calls), over `repeats` rounds
    that visit every one in turn: a busy spell on a shared machine then slows one round of each, not
    every sample of one."""
    for _, fn, _ in works.values():
        fn()  # warm-up: library handles, allocation, weight packing
    best = dict.fromkeys(works, 0.0)
    for _ in range(repeats):
        for key, (work, fn, calls) in works.items():
            best[key] = max(best[key], work / _seconds(fn, sync, calls))
    return best


def measure_peaks(
    device: str,
    dtype: str,
    gemms: Iterable[tuple[int, int, int]] = (),
    sizes: Iterable[int] = (),
    repeats: int = 10,
) -> Peaks:
    """The fastest matmul rate and memory bandwidth seen on `device`, so that no benchmark beats its floor.

    Matmul: one square product (8192^3 on CUDA, 512^3 on the CPU) and every (m, k, n) in `gemms` (the
    suite's own products: a 1024^3 product ran at 98 GFLOP/s on one CPU thread where the mlp's
    (512, 256, 688) ran at 165), each with its right operand in both layouts (`x @ w` and nn.Linear's
    `x @ w.T`). Bandwidth: a copy (reads and writes each byte) and a sum (reads each byte) of each size
    in `sizes`, in bytes (the benchmarks' working sets, for warm runs whose weights stay in cache:
    a 32 MiB copy moved 5 GB/s on one busy CPU thread, a 1 MiB sum read 87), else of one buffer past the
    caches (1 GiB on CUDA, 32 MiB on the CPU). Each the best of `repeats`.
    """
    sync = device_sync(device)
    torch_dtype = getattr(torch, dtype)
    generator = torch.Generator(device=device).manual_seed(0)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, device=device, dtype=torch_dtype, generator=generator)

    square = 8192 if device == "cuda" else 512  # fills an H100; on the CPU the suite's own products run faster
    flops = _best_rates(_products({(square, square, square), *gemms}, randn), sync, repeats)
    bandwidth = _best_rates(_moves(device, dtype, sizes, randn), sync, repeats)
    gemm = max(flops, key=flops.get)
    move = max(bandwidth, key=bandwidth.get)
    return Peaks(flops[gemm], bandwidth[move], dtype, tuple(gemm[:3]), move[0])


Works = dict[object, tuple[float, Callable[[], object], int]]  # key -> (work per call, call, calls a sample)


def _products(shapes: Iterable[tuple[int, int, int]], randn: Callable[..., torch.Tensor]) -> Works:
    """Each (m, k, n) product, flops per call, with its right operand in both layouts (`x @ w`, `x @ w.T`)."""
    products: Works = {}
    for m, k, n in sorted(shapes):
        a, b, b_t = randn(m, k), randn(k, n), randn(n, k)
        products[(m, k, n)] = (2 * m * k * n, lambda a=a, b=b: a @ b, 1)
        products[(m, k, n, "T")] = (2 * m * k * n, lambda a=a, b_t=b_t: a @ b_t.T, 1)
    return products


def _moves(device: str, dtype: str, sizes: Iterable[int], randn: Callable[..., torch.Tensor]) -> Works:
    """A copy and a sum of each size in bytes (else of one buffer past the caches), bytes moved per call."""
    large = (1 << 30 if device == "cuda" else 1 << 25) // DTYPE_BYTES[dtype]
    moves: Works = {}
    given = {max(1, size // DTYPE_BYTES[dtype]) for size in sizes}
    for elements in sorted(given or {large}):
        src, dst = randn(elements), torch.empty(elements, device=device, dtype=getattr(torch, dtype))
        nbytes = elements * DTYPE_BYTES[dtype]
        calls = max(1, (1 << 22) // nbytes)  # at least 4 MiB a sample: a small copy is a few microseconds
        moves[(nbytes, "copy")] = (2 * nbytes, lambda src=src, dst=dst: dst.copy_(src), calls)
        moves[(nbytes, "read")] = (nbytes, lambda src=src: src.sum(), calls)
    return moves


def device_name(device: str) -> str:
    """GPU name on CUDA, the CPU's brand string otherwise (the machine fingerprint's first part)."""
    return torch.cuda.get_device_name() if device == "cuda" else contract.cpu_name()


# ---------------------------------------------------------------------------------------------
# Device time: what the GPU spent, no host in it


# The head start before each timed (or profiled) call on a GPU: the host queues a CUDA graph's replay
# in ~10 us and an eager layer's kernels in well under 1 ms.
HEAD_START_S = 1e-3


def head_start(seconds: float) -> Callable[[], None]:
    """A function that hands the GPU a spin kernel (torch.cuda._sleep) of about `seconds`: while it
    runs, the host queues what follows, so by the time the GPU reaches it no launch gap of a slow
    host is left in it (device_time_s's samples, check_gpu's do_bench flush)."""
    cycles = int(seconds * _sm_clock_hz())
    return lambda: torch.cuda._sleep(cycles)


def event_pair() -> tuple[torch.cuda.Event, torch.cuda.Event]:
    """A (start, end) pair of timing CUDA events, as device_time_s records around each call."""
    return torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)


def device_time_s(
    fn: Callable[[], object],
    samples: int = 100,
    calls_per_sample: int = 1,
    head_start_s: float = HEAD_START_S,
    before: Callable[[], object] | None = None,
) -> float:
    """Median seconds per call on the device's own clock: CUDA events around `calls_per_sample` calls.

    Before each start event the GPU is handed a spin kernel (torch.cuda._sleep) of about
    `head_start_s`, so by the time it reaches the events the host has queued the whole call: gaps
    where the GPU waits for a slow host to launch the next kernel (eager calls on virtual machines)
    stay outside the figure. `before` runs ahead of each sample, outside the timed span (a cache
    flush, say). The one event-timing function of the package (suite and scripts).
    """
    fn()  # warm: library handles, allocator
    torch.cuda.synchronize()
    spin = head_start(head_start_s)
    pairs = [event_pair() for _ in range(samples)]
    for start, end in pairs:
        if before is not None:
            before()
        spin()
        start.record()
        for _ in range(calls_per_sample):
            fn()
        end.record()
    torch.cuda.synchronize()
    return statistics.median(s.elapsed_time(e) / 1e3 / calls_per_sample for s, e in pairs)


def _sm_clock_hz() -> float:
    """The SM clock rate torch reports (kHz -> Hz); 2 GHz where it reports none (a spin a bit long)."""
    rate_khz = getattr(torch.cuda.get_device_properties(torch.cuda.current_device()), "clock_rate", 0) or 0
    return rate_khz * 1e3 if rate_khz else 2e9


def l2_bytes(device: str) -> int | None:
    """The GPU's L2 cache size, None where the device does not say (CPU, or an older torch)."""
    if device != "cuda":
        return None
    size = getattr(torch.cuda.get_device_properties(torch.cuda.current_device()), "L2_cache_size", None)
    return int(size) if size else None


# ---------------------------------------------------------------------------------------------
# Clocks and throttling, through NVML (the nvidia-ml-py package), sampled while rounds run

# Reasons that mean the card ran slower than it could (idle, application clocks and sync boost do not).
THROTTLE_REASONS = {
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x20: "sw_thermal",
    0x40: "hw_thermal",
    0x80: "hw_power_brake",
}
LOW_CLOCK = 0.85  # a median SM clock under this share of the card's maximum counts as throttled
# A reason seen in at least this share of the samples counts: on an H200 at 700 W a power-cap bit
# flickers on for a sample or two while the clock holds its maximum (results/h200/suite_cold.log).
THROTTLE_SHARE = 0.25


@dataclass(frozen=True)
class ClockReport:
    """What NVML said during one benchmark's rounds; every field None where it could not say."""

    sm_clock_mhz: float | None  # median of the samples
    sm_clock_max_mhz: float | None
    power_w: float | None  # median
    throttle_reasons: tuple[str, ...] | None  # every reason seen in any sample
    samples: int
    throttle_share: float | None = None  # share of samples with a throttle reason

    @property
    def throttled(self) -> bool | None:
        if self.throttle_share is None and (self.sm_clock_mhz is None or self.sm_clock_max_mhz is None):
            return None
        low = (
            self.sm_clock_mhz is not None
            and self.sm_clock_max_mhz
            and self.sm_clock_mhz < LOW_CLOCK * self.sm_clock_max_mhz
        )
        return (self.throttle_share or 0.0) >= THROTTLE_SHARE or bool(low)

    def as_dict(self) -> dict:
        return {
            contract.SM_CLOCK_MHZ: self.sm_clock_mhz,
            contract.SM_CLOCK_MAX_MHZ: self.sm_clock_max_mhz,
            contract.POWER_W: self.power_w,
            contract.THROTTLE_REASONS: None if self.throttle_reasons is None else list(self.throttle_reasons),
            contract.CLOCK_SAMPLES: self.samples,
            contract.THROTTLE_SHARE: self.throttle_share,
            contract.THROTTLED: self.throttled,
        }


UNKNOWN_CLOCKS = ClockReport(None, None, None, None, 0)


class ClockSampler:
    """Samples the SM clock, power and throttle reasons of NVML's GPU `index` every `period_s` on a
    thread while open (current_gpu gives the index of the GPU torch runs on).

    `nvml` is the pynvml module (or a stand-in in tests); without it, with no index, or where NVML
    refuses (no driver access, a virtual machine that hides it), the report is UNKNOWN_CLOCKS:
    nothing made up.
    """

    def __init__(self, nvml=None, index: int | None = 0, period_s: float = 0.01) -> None:
        self.nvml, self.period_s = nvml, period_s
        self.handle = None
        self.clocks: list[float] = []
        self.powers: list[float] = []
        self.reasons: set[str] = set()
        self.reason_samples = 0  # samples whose mask could be read
        self.throttled_samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if nvml is not None and index is not None:
            try:
                nvml.nvmlInit()
                self.handle = nvml.nvmlDeviceGetHandleByIndex(index)
            except Exception:  # noqa: BLE001 - any NVML failure means "unknown", never a failed run
                self.handle = None

    def _sample(self) -> None:
        nvml, handle = self.nvml, self.handle
        with contextlib.suppress(Exception):
            self.clocks.append(float(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM)))
        with contextlib.suppress(Exception):
            self.powers.append(nvml.nvmlDeviceGetPowerUsage(handle) / 1e3)
        with contextlib.suppress(Exception):
            reasons = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
            mask = (reasons or nvml.nvmlDeviceGetCurrentClocksThrottleReasons)(handle)
            seen = {name for bit, name in THROTTLE_REASONS.items() if mask & bit}
            self.reason_samples += 1
            self.throttled_samples += bool(seen)
            self.reasons |= seen

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.period_s)

    def __enter__(self) -> ClockSampler:
        if self.handle is not None:
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()

    def report(self) -> ClockReport:
        if self.handle is None:
            return UNKNOWN_CLOCKS
        max_mhz = None
        with contextlib.suppress(Exception):
            max_mhz = float(self.nvml.nvmlDeviceGetMaxClockInfo(self.handle, self.nvml.NVML_CLOCK_SM))
        return ClockReport(
            statistics.median(self.clocks) if self.clocks else None,
            max_mhz,
            statistics.median(self.powers) if self.powers else None,
            tuple(sorted(self.reasons)) if self.reason_samples else None,
            len(self.clocks),
            self.throttled_samples / self.reason_samples if self.reason_samples else None,
        )


def _plain_uuid(uuid: object) -> str:
    """A GPU UUID without NVML's "GPU-" prefix, lower case: torch writes it bare, pynvml with the
    prefix (bytes in older versions)."""
    text = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
    return text.strip().lower().removeprefix("gpu-")


def current_gpu(nvml) -> tuple[int | None, str | None]:
    """torch's current CUDA device as (NVML's index of it, its UUID "GPU-..." as nvidia-smi writes it).

    NVML numbers GPUs physically and ignores CUDA_VISIBLE_DEVICES, so torch's device 0 may be NVML's
    GPU 3: the two are matched by UUID. The index is None without NVML, where NVML refuses, or where
    no GPU of NVML's has torch's UUID; the UUID is None where torch does not report one.
    """
    properties = torch.cuda.get_device_properties(torch.cuda.current_device())
    uuid = getattr(properties, "uuid", None)
    uuid = None if uuid is None else "GPU-" + _plain_uuid(uuid)
    if nvml is None or uuid is None:
        return None, uuid
    try:
        nvml.nvmlInit()
        for index in range(nvml.nvmlDeviceGetCount()):
            if _plain_uuid(nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(index))) == _plain_uuid(uuid):
                return index, uuid
    except Exception:  # noqa: BLE001 - any NVML failure means "unknown", never a failed run
        pass
    return None, uuid


def nvml_module():
    """pynvml when nvidia-ml-py is installed, else None (the clock fields are then null)."""
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml
