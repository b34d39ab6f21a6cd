"""The compiled core: torch.compile with every flag explicit, warmed and checked against eager."""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import torch
from torch._dynamo.utils import counters  # torch's own compile bookkeeping (fx_cache_counts)
from torch.func import functional_call

from perf_core import contract
from perf_core.measure import clock, kernels
from perf_core.measure.workload import Workload

# assert_close tolerances per dtype: float32 reorderings stay near 1e-5; bf16 keeps 8 mantissa bits.
TOLERANCES = {"float32": (1e-4, 1e-4), "float16": (1e-2, 1e-2), "bfloat16": (3e-2, 3e-2)}


@dataclass(frozen=True)
class CompileFlags:
    """Every torch.compile argument we rely on, written out so it can be recorded with the results.

    dynamic=False: each token count gets its own static graph; the default (None) would compile the
    first shape statically and the second dynamically, so test order would decide what is timed.
    """

    backend: str = "inductor"
    mode: str | None = None
    fullgraph: bool = True
    dynamic: bool = False
    # Capture the warmed compiled call in one torch.cuda.CUDAGraph and time its replay: one launch
    # per call instead of one per kernel, and no Python or guard overhead. Ours, not torch.compile's.
    cuda_graph: bool = False

    def as_dict(self) -> dict:
        return asdict(self)

    def compile_kwargs(self) -> dict:
        return {"backend": self.backend, "mode": self.mode, "fullgraph": self.fullgraph, "dynamic": self.dynamic}


# Chosen by measurement (scripts/gpu_flags.py, results/h100/, docs/gpu.md): on an H100 with the
# llama-7b preset, plain torch.compile was 1.5x-5x slower than eager (host overhead per call, not GPU
# time) and mode="reduce-overhead" up to 4x slower; the compiled call replayed from one CUDA graph
# was 0.28x-1.0x eager at every token count. The CPU has no graphs; inductor defaults there.
DEFAULT_FLAGS = {
    "cpu": CompileFlags(),
    "cuda": CompileFlags(cuda_graph=True),
}


class CompileFailed(RuntimeError):
    """torch.compile (or the first compiled call) raised; the message names the workload."""


# Cold (contract.COLD): enough copies of weights and input that a call's bytes were last touched COLD_FACTOR L2
# sizes of traffic ago, as CUTLASS's profiler rotates buffers. Chosen over flushing L2 before each
# call (nvbench, do_bench) because a flush cannot be kept out of pytest-benchmark's rounds of many
# calls, while rotation adds no work to them; docs/gpu.md has the measurement behind it.
COLD_FACTOR = 4
FALLBACK_L2_BYTES = 64 << 20  # where the device does not report its L2 (recorded as unknown)


@dataclass(frozen=True)
class PreparedCall:
    """A warmed, checked, zero-argument call ready for timing."""

    fn: Callable[[], torch.Tensor]
    compile_s: float | None
    flags: CompileFlags | None
    copies: int = 1  # weight and input copies the call rotates over (1: warm, back to back)
    cache_hit: bool | None = None  # inductor's on-disk FX graph cache served the compile (None: not consulted)


def copies_for(copy_bytes: int, l2_bytes: int | None) -> int:
    """How many copies a cold call rotates over: at least two, so no call reuses the last one's."""
    target = COLD_FACTOR * (l2_bytes or FALLBACK_L2_BYTES)
    return max(2, -(-target // max(copy_bytes, 1)))


def _copy_bytes(module: torch.nn.Module, x: torch.Tensor) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters()) + x.numel() * x.element_size()


def compile_module(
    module: torch.nn.Module, flags: CompileFlags, compile: Callable[[torch.nn.Module, dict], Callable] | None = None
) -> Callable:
    """torch.compile(module) with the flags, or the kernel's own `compile` (kernels.Kernel.compile)."""
    # A fresh compiler state per benchmark: compile_s is then this workload's own compile, and
    # Dynamo's per-code-object recompile limit (8) is never reached across token counts.
    torch.compiler.reset()
    if compile is not None:
        return compile(module, flags.compile_kwargs())
    return torch.compile(module, **flags.compile_kwargs())


def check_close(actual: torch.Tensor, expected: torch.Tensor, workload: Workload) -> None:
    """Raise AssertionError naming the workload and the error size if the outputs differ."""
    rtol, atol = TOLERANCES[workload.dtype]
    try:
        torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)
    except AssertionError as error:
        detail = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
        raise AssertionError(f"compiled {workload.name} differs from eager: {detail}") from None


def prepare(
    workload: Workload,
    variant: str,
    flags: CompileFlags | None = None,
    seed: int = 0,
    warmup_calls: int = 3,
    cache: str = contract.WARM,
    l2_bytes: int | None = None,
) -> PreparedCall:
    """Build, (compile,) check and warm up one call, so nothing of this falls inside timed rounds.

    cache=contract.COLD: the call rotates over copies of its weights and input (copies_for), so each call
    reads them from device memory as a layer of a model does, not from L2 as a repeated call would.
    """
    module, x = kernels.build(workload, seed)
    sync = clock.device_sync(workload.device)
    with torch.no_grad():
        expected = module(x)
    count = copies_for(_copy_bytes(module, x), l2_bytes) if cache == contract.COLD else 1
    xs = [x] + [x.clone() for _ in range(count - 1)]
    if variant == "eager":
        calls, compile_s, flags, (hits, misses) = _eager_calls(module, xs), None, None, (0, 0)
    else:
        flags = flags or DEFAULT_FLAGS[workload.device]
        calls, compile_s, (hits, misses) = _compiled_calls(module, xs, flags, expected, workload, sync)
    calls = [torch.no_grad()(call) for call in calls]
    _warm_up(calls, warmup_calls, sync)
    calls = _finish(calls, flags, expected, workload)
    cache_hit = None if flags is None or not hits + misses else not misses
    return PreparedCall(_rotate(calls), compile_s, flags, count, cache_hit)


def _eager_calls(module: torch.nn.Module, xs: list[torch.Tensor]) -> list[Callable[[], torch.Tensor]]:
    """One eager call per input copy, each over its own copy of the weights (the first: the module)."""
    modules = [module] + [copy.deepcopy(module) for _ in range(len(xs) - 1)]
    return [functools.partial(m, x_k) for m, x_k in zip(modules, xs)]


def _compiled_calls(
    module: torch.nn.Module,
    xs: list[torch.Tensor],
    flags: CompileFlags,
    expected: torch.Tensor,
    workload: Workload,
    sync: Callable[[], None],
) -> tuple[list[Callable[[], torch.Tensor]], float, tuple[int, int]]:
    """Compile, make the first call (timed with the compile: seconds) and check it against eager;
    one call per input copy. Returns (calls, compile seconds, (FX cache hits, misses) of the compile).
    Raises CompileFailed naming the workload when the compile or the first call raises."""
    x = xs[0]
    start = time.perf_counter()
    try:
        compiled = compile_module(module, flags, kernels.get(workload.kernel).compile)
        before = fx_cache_counts()
        with torch.no_grad():
            first = compiled(x)
        sync()
        hits, misses = (after - seen for after, seen in zip(fx_cache_counts(), before))
    except Exception as error:
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise CompileFailed(
            f"torch.compile failed for {workload.name} ({flags}): {type(error).__name__}: {first_line}"
        ) from error
    compile_s = time.perf_counter() - start
    check_close(first, expected, workload)
    calls = [functools.partial(compiled, x)] + [
        # The same compiled code over other weights: functional_call swaps the module's parameters
        # for the call (no recompile: the guards see parameters of the same shape and kind).
        functools.partial(functional_call, compiled, _parameter_copy(module), (x_k,))
        for x_k in xs[1:]
    ]
    return calls, compile_s, (hits, misses)


def _warm_up(calls: list[Callable[[], torch.Tensor]], warmup_calls: int, sync: Callable[[], None]) -> None:
    for call in calls:
        for _ in range(warmup_calls):
            call()
    sync()


def _finish(
    calls: list[Callable[[], torch.Tensor]], flags: CompileFlags | None, expected: torch.Tensor, workload: Workload
) -> list[Callable[[], torch.Tensor]]:
    """The calls as timed: captured in CUDA graphs when the flags ask (each replay checked), else as
    they are, each checked against eager when there are copies (the first was checked already)."""
    if flags is not None and flags.cuda_graph and workload.device == "cuda":
        return [capture_graph(call, expected, workload) for call in calls]
    if len(calls) > 1:
        for call in calls:
            check_close(call(), expected, workload)
    return calls


def fx_cache_counts() -> tuple[int, int]:
    """(hits, misses) of inductor's FX graph cache so far in this process. The cache is on disk
    (TORCHINDUCTOR_CACHE_DIR, default /tmp/torchinductor_<user>) and on by default, and
    torch.compiler.reset() leaves it: measured on the 2-core CPU machine, matmul-compiled-16 and -512
    compiled in 7.10 s and 0.27 s in a first process, 5.10 s and 0.13 s in the next (the 16's
    remainder is the process's first use of Dynamo and inductor, which no cache holds)."""
    inductor = counters["inductor"]
    return inductor["fxgraph_cache_hit"], inductor["fxgraph_cache_miss"]


def _parameter_copy(module: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    return {name: torch.nn.Parameter(p.detach().clone(), requires_grad=False) for name, p in module.named_parameters()}


def _rotate(calls: list[Callable[[], torch.Tensor]]) -> Callable[[], torch.Tensor]:
    """One call, or each in turn: the next call always reads other buffers than the last."""
    if len(calls) == 1:
        return calls[0]
    turn = itertools.cycle(calls)

    def rotated() -> torch.Tensor:
        return next(turn)()

    rotated.keep_alive = calls  # type: ignore[attr-defined]  # graphs point into these
    return rotated


def capture_graph(
    fn: Callable[[], torch.Tensor], expected: torch.Tensor, workload: Workload
) -> Callable[[], torch.Tensor]:
    """Record fn's kernels once (static input and output buffers) and return the replay, checked."""
    graph = torch.cuda.CUDAGraph()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):  # capture needs a side stream warmed on the same work
        fn()
    torch.cuda.current_stream().wait_stream(stream)
    with torch.cuda.graph(graph):
        output = fn()
    graph.replay()
    torch.cuda.synchronize()
    check_close(output, expected, workload)

    def replay() -> torch.Tensor:
        graph.replay()
        return output  # the static output buffer, rewritten by each replay

    # The graph points into the compiled module's kernels; without this reference they are freed
    # once the compiler cache is reset (the next benchmark's compile) and a replay reads freed code.
    replay.keep_alive = fn  # type: ignore[attr-defined]
    return replay


@contextlib.contextmanager
def no_recompiles() -> Iterator[None]:
    """Inside this block a recompile raises instead of silently landing in a timed round."""
    with torch.compiler.set_stance("fail_on_recompile"):
        yield
