"""The compiled core: torch.compile with every flag explicit, warmed and checked against eager."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import torch

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


@dataclass(frozen=True)
class PreparedCall:
    """A warmed, checked, zero-argument call ready for timing."""

    fn: Callable[[], torch.Tensor]
    variant: str
    compile_s: float | None
    flags: CompileFlags | None


def compile_module(module: torch.nn.Module, flags: CompileFlags) -> Callable:
    # A fresh compiler state per benchmark: compile_s is then this workload's own compile, and
    # Dynamo's per-code-object recompile limit (8) is never reached across token counts.
    torch.compiler.reset()
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
) -> PreparedCall:
    """Build, (compile,) check and warm up one call, so nothing of this falls inside timed rounds."""
    module, x = kernels.build(workload, seed)
    sync = clock.device_sync(workload.device)
    with torch.no_grad():
        expected = module(x)
    if variant == "eager":
        call, compile_s, flags = (lambda: module(x)), None, None
    else:
        flags = flags or DEFAULT_FLAGS[workload.device]
        start = time.perf_counter()
        try:
            compiled = compile_module(module, flags)
            with torch.no_grad():
                first = compiled(x)
            sync()
        except Exception as error:
            first_line = (str(error).strip().splitlines() or [""])[0]
            raise CompileFailed(
                f"torch.compile failed for {workload.name} ({flags}): {type(error).__name__}: {first_line}"
            ) from error
        compile_s = time.perf_counter() - start
        check_close(first, expected, workload)
        call = lambda: compiled(x)  # noqa: E731
    fn = torch.no_grad()(call)
    for _ in range(warmup_calls):
        fn()
    sync()
    if flags is not None and flags.cuda_graph and workload.device == "cuda":
        fn = capture_graph(fn, expected, workload)
    return PreparedCall(fn, variant, compile_s, flags)


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
