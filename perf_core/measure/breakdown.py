"""Where a benchmark's call spends its time, and what the compiler generated for it.

After the timed rounds and outside them, torch.profiler watches a few calls of the same prepared
call. On a GPU each device kernel (and copy) is a part, timed by the device, and the device's idle
time outside them one more (each call after a head start and between CUDA events, as device_s is
timed; device_idle_s), so that the parts should add up to the call's device time (on an H200 every
compiled call 0.991-1.049 of it: docs/gpu.md); on the CPU each operator and each inductor-generated
kernel is a part, timed by its self CPU time (its time minus its children's), so the parts add up to
the call without counting anything twice. Names are made stable (numbering, hashes and addresses
stripped), so the same kernel has the same name in two runs.

Stored per benchmark as `breakdown`: [[name, calls per call, seconds per call], ...], the largest
first, then the GPU's idle part, then the smallest folded into one `other` part. A profiler that
fails leaves `breakdown` null and a one-line `breakdown_note`; the run itself is never lost.

What the compiler produced: `compiled_code` captures inductor's output code while a call is
compiled (the same hook torch._inductor.utils.run_and_get_code uses; it also fires when the code
comes from inductor's on-disk cache), and `fingerprint` hashes it with volatile parts removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import re
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from perf_core import contract
from perf_core.measure import clock

# Profiled calls per benchmark. On the CPU each part's time is its least over these calls: on a
# loaded machine a call is now and then preempted, and a mean or even a median of few calls is then
# pulled up by parts that did not change. Ten calls of the suite's largest CPU call take ~50 ms.
CALLS = 10
TOP = 15  # parts kept by name; the rest are summed into OTHER
OTHER = contract.BREAKDOWN_OTHER
OUTSIDE_OPS = "(python, outside ops)"  # CPU: time of the call spent in no profiled operator
IDLE = contract.BREAKDOWN_IDLE  # GPU: time of the call the device spent in no kernel
_SPIN = "spin_kernel"  # torch.cuda._sleep's kernel, at::cuda::(anonymous namespace)::spin_kernel (ATen's cuda/Sleep.cu)
_MARK = "perf_core.breakdown.call"
_MAX_NAME = 160  # templated CUDA kernel names run to thousands of characters


@dataclass(frozen=True)
class Part:
    """One kernel or operator of a call: how often it ran per call and its seconds per call."""

    name: str
    calls: float
    seconds: float

    def as_row(self) -> list:
        # Four significant digits: parts of one call differ between runs by more than 0.1%.
        return [self.name, round(self.calls, 3), float(f"{self.seconds:.4g}")]


# Inductor numbers its kernels per graph (`cpp_fused_mul_0`, `triton_poi_fused_add_3`), and with
# kernel profiling on prefixes them with the graph (`graph_0_cpp_fused_mul_0`).
_INDUCTOR_KERNEL = re.compile(r"^(?:graph_\d+_)?((?:cpp|triton)_\w*?)(?:_\d+)?$")
_VOLATILE = (
    (re.compile(r"^## Call CompiledFxGraph \w+ ##$"), "## Call CompiledFxGraph ##"),  # graph hash
    (re.compile(r"^(Torch-Compiled Region|Compiled Function|CompiledFunction)\W.*$"), r"\1"),  # frame ids
    (re.compile(r"0x[0-9a-fA-F]+"), "0x"),  # addresses
)


def stable_name(name: str) -> str:
    """The profiler's name of a part without what changes from run to run.

    "graph_0_cpp_fused_mul_0" -> "cpp_fused_mul"; "triton_poi_fused_add_3" -> "triton_poi_fused_add";
    "## Call CompiledFxGraph f55eu... ##" -> "## Call CompiledFxGraph ##"; cuBLAS names are kept.
    """
    match = _INDUCTOR_KERNEL.match(name)
    if match:
        return match.group(1)
    for pattern, replacement in _VOLATILE:
        name = pattern.sub(replacement, name)
    return name[:_MAX_NAME]


def _cpu_parts(events, calls: int) -> list[Part]:
    """Each CPU part's least self time over the calls (and its count per call), from the marked calls."""
    per_call: dict[str, list[float]] = defaultdict(lambda: [0.0] * calls)
    counts: dict[str, int] = defaultdict(int)
    roots: dict[int, int] = {}
    for event in events:
        if event.device_type != torch.autograd.DeviceType.CPU:
            continue
        root = event
        while root.cpu_parent is not None:
            root = root.cpu_parent
        if root.name != _MARK:
            continue
        index = roots.setdefault(id(root), len(roots))
        if index >= calls:
            continue
        name = OUTSIDE_OPS if event is root else stable_name(event.name)
        per_call[name][index] += event.self_cpu_time_total * 1e-6
        counts[name] += 1
    return [Part(name, counts[name] / calls, min(times)) for name, times in per_call.items()]


def _device_parts(events, calls: int) -> list[Part]:
    """Each device kernel's (and copy's) mean device time per call (device times hardly drift), and
    the device's idle time per call (device_idle_s) as one more part, IDLE."""
    timeline = sorted(
        (
            event
            for event in events
            # Kineto mirrors the call's record_function range on the GPU's timeline (a user annotation
            # spanning every kernel): counted as a part, it doubled the sum (H200, 2026-11-30).
            if event.device_type != torch.autograd.DeviceType.CPU and event.name != _MARK
        ),
        key=lambda event: event.time_range.start,
    )  # fmt: skip
    totals: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for event in timeline:
        if _SPIN not in event.name:  # the head starts bracket the calls; they are no part of one
            name = stable_name(event.name)
            totals[name] += event.time_range.elapsed_us() * 1e-6
            counts[name] += 1
    parts = [Part(name, counts[name] / calls, totals[name] / calls) for name in totals]
    spans = [(e.time_range.start * 1e-6, e.time_range.end * 1e-6, _SPIN in e.name) for e in timeline]
    idle_s = device_idle_s(spans, calls)
    return parts + ([Part(IDLE, 1.0, idle_s)] if idle_s is not None else [])


def device_idle_s(timeline: list[tuple[float, float, bool]], calls: int) -> float | None:
    """The device's time per call in no kernel, from a timeline of `calls` calls each after a head
    start: (start, end, is_head_start) seconds, in start order, a head start before each call and
    one after the last.

    A call's window runs from the end of the head start before it to the end of its last kernel:
    what CUDA events recorded around it span (profile, as device_time_s, records a start event right
    after the head start, an end event right after the call), the start event's own device time, the
    graph's launch and the gaps between its kernels included; the next head start's own launch is
    not the call's. Its idle time is its window less its kernels' busy time (overlapping kernels
    counted once); the median over the calls. None unless the timeline holds exactly `calls` windows
    with kernels in each.
    """
    marks = [(start, end) for start, end, is_mark in timeline if is_mark]
    idle = []
    for (_, opened), (closed, _) in itertools.pairwise(marks):
        busy, reached, seen = 0.0, opened, False
        for start, end, is_mark in timeline:  # the union of the window's kernel intervals
            if not is_mark and opened <= start < closed:
                busy += max(0.0, end - max(start, reached))
                reached, seen = max(reached, end), True
        if not seen:  # a window without kernels: not a call
            return None
        idle.append(max(0.0, reached - opened - busy))
    return statistics.median(idle) if idle and len(idle) == calls else None


def summarize(parts: list[Part], top: int = TOP) -> list[list]:
    """The `top` largest parts as JSON rows, largest first, the rest summed into one OTHER row (IDLE
    is kept by name wherever it ranks)."""
    ranked = sorted(parts, key=lambda part: (-part.seconds, part.name))
    kept, rest = ranked[:top], ranked[top:]
    kept += [part for part in rest if part.name == IDLE]  # always by name: the GPU's parts add up with it
    rest = [part for part in rest if part.name != IDLE]
    if rest:
        kept.append(Part(OTHER, sum(p.calls for p in rest), sum(p.seconds for p in rest)))
    return [part.as_row() for part in kept]


def profile(fn: Callable[[], object], device: str, calls: int = CALLS) -> list[list]:
    """Profile `calls` calls of fn (already warm) -> summarize()'d parts of one call. On a GPU each
    call is taken as device_time_s takes its samples: after a head start, between CUDA events.

    Raises whatever torch.profiler raises; the caller (record) turns that into a note.
    """
    if device == "cuda":
        activities = [torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
        profiler = torch.profiler.profile(activities=activities)
    else:
        # The CPU-only profiler without Kineto: the same operator events, and it starts in 0.1 s
        # where Kineto's first start in a process took 3 s on the 2-core machine.
        profiler = torch.autograd.profiler.profile(use_kineto=False)
    spin = clock.head_start(clock.HEAD_START_S) if device == "cuda" else (lambda: None)
    brackets = [clock.event_pair() if device == "cuda" else None for _ in range(calls)]
    with profiler:
        for pair in brackets:
            # On a GPU each call as device_time_s times it: after a head start (the device waits for
            # no host inside the call; the head starts mark where each call begins and ends), between
            # CUDA events, whose own device time (1.3 us on an H200) device_s holds too.
            spin()
            if pair is not None:
                pair[0].record()
            with torch.profiler.record_function(_MARK):
                fn()
            if pair is not None:
                pair[1].record()
        if device == "cuda":
            spin()
            torch.cuda.synchronize()
    events = profiler.events() if device == "cuda" else profiler.function_events
    parts = _device_parts(events, calls) if device == "cuda" else _cpu_parts(events, calls)
    if not parts:
        raise RuntimeError(f"the profiler recorded no {'device kernels' if device == 'cuda' else 'operators'}")
    return summarize(parts)


def record(fn: Callable[[], object], device: str) -> tuple[list[list] | None, str | None]:
    """profile(), or (None, a one-line reason) when the profiler is unavailable or fails."""
    try:
        return profile(fn, device), None
    except Exception as error:  # noqa: BLE001 - a missing or broken profiler must never cost the run
        first_line = (str(error).strip().splitlines() or [""])[0][:200]
        return None, f"no breakdown: the profiler failed ({type(error).__name__}: {first_line})"


# ---------------------------------------------------------------------------------------------
# the generated code


@dataclass
class GeneratedCode:
    """Inductor's output code for the graphs compiled inside compiled_code(), in compile order."""

    sources: list[str] = field(default_factory=list)

    @property
    def fingerprint(self) -> str | None:
        return fingerprint(self.sources) if self.sources else None

    @property
    def kernels(self) -> list[str]:
        return kernel_names(self.sources)


@contextlib.contextmanager
def compiled_code(kernel_profile: bool) -> Iterator[GeneratedCode]:
    """Capture inductor's output code of what is compiled inside the block.

    kernel_profile: on the CPU inductor's generated C++ kernels are invisible to the profiler (their
    time lands in the calling graph's own time) unless compiled with `cpp.enable_kernel_profile`,
    which wraps each in a RecordFunction: an idle check while no profiler runs (the timed rounds).
    """
    from torch._inductor import config
    from torch._inductor.graph import GraphLowering

    code = GeneratedCode()
    previous = GraphLowering.save_output_code
    GraphLowering.save_output_code = code.sources.append  # type: ignore[assignment]
    try:
        with config.patch({"cpp.enable_kernel_profile": kernel_profile}):
            yield code
    finally:
        GraphLowering.save_output_code = previous  # type: ignore[assignment]


# Lines and strings that differ between two processes compiling the same code: comments naming
# cache files and graph ids, temporary paths, and content hashes inductor puts in names.
_CODE_VOLATILE = (
    (re.compile(r"^[ \t]*# .*$", re.MULTILINE), ""),  # comments: kernel paths, AOT ids, source nodes
    (re.compile(r"(['\"])/[^'\"]*\1"), "'<path>'"),  # absolute paths in strings
    (re.compile(r"\b(?=[a-z0-9]*\d)(?=[a-z0-9]*[a-z])[a-z0-9]{24,}\b"), "<hash>"),  # cache keys
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "0x"),
    (re.compile(r"\n\s*\n+"), "\n"),
)
# Kernels as the generated wrapper defines them: `cpp_fused_mul_0 = async_compile.cpp_pybinding(`
# on the CPU, `triton_poi_fused_add_3 = async_compile.triton(` on a GPU.
_DEFINED_KERNEL = re.compile(r"^(\w+) = async_compile\.\w+\(", re.MULTILINE)


def normalise(source: str) -> str:
    for pattern, replacement in _CODE_VOLATILE:
        source = pattern.sub(replacement, source)
    return source.strip()


def fingerprint(sources: list[str]) -> str:
    """sha256 (first 16 hex digits) of the normalised generated code of a call's graphs."""
    digest = hashlib.sha256()
    for source in sources:
        digest.update(normalise(source).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def kernel_names(sources: list[str]) -> list[str]:
    """The generated kernels' stable names, in the order the code defines them."""
    return [stable_name(name) for source in sources for name in _DEFINED_KERNEL.findall(source)]
