"""The kernel registry: each kernel is one definition (eager module builder, FLOPs, bytes, description).

Each function of a kernel takes a shape.Shape (what to build it for). The cost model
(workload.Workload.flops/bytes), the builder and the suite's default kernel list all dispatch
through REGISTRY, so adding a kernel is one `register(Kernel(...))` call here, in a test or
conftest, or in a callable named by an entry point of the group `perf_core.kernels` (ENTRY_POINTS),
which the registry calls once, the first time it is asked for a kernel. The decoder and model
kernels (llama.py) come in that way, as an outside project's do. An unknown name is a one-line UsageError.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from perf_core import contract
from perf_core.errors import UsageError, one_of
from perf_core.measure.shape import Shape


@dataclass(frozen=True)
class Kernel:
    """One benchmarked kernel. `build` returns the eager reference module, parameters uninitialised
    (the caller seeds them); `flops` and `bytes` are the cost model behind the floor; `description`
    is its row in the README's table of kernels (Markdown; tests/test_docs.py checks the two agree)."""

    name: str
    description: str
    build: Callable[[Shape], nn.Module]
    flops: Callable[[Shape], int]
    bytes: Callable[[Shape], int]
    # The matrix products one call runs, each (m, k, n): the shapes whose best rate sets the floor's
    # peak (clock.measure_peaks). Empty: the kernel does not say.
    gemms: Callable[[Shape], tuple[tuple[int, int, int], ...]] = lambda w: ()
    # How the compiled variant is made from the eager module and torch.compile's keyword arguments;
    # None: torch.compile(module, **kwargs). A model compiles its layer function once (llama.py).
    compile: Callable[[nn.Module, dict], Callable] | None = None
    # Where the suite runs it without --kernels; a kernel too slow for the CPU's default two minutes
    # leaves "cpu" out (and still runs with --kernels NAME there).
    default_devices: tuple[str, ...] = ("cpu", "cuda")
    # In perf-core ab's default selection (the suite's --gate): a model-scale kernel, whose runs take
    # minutes on a GPU, leaves it (and still runs in the gate with --kernel NAME).
    in_gate: bool = True
    # Whether `build` may run with the workload's device as torch's default device (its own initialisation
    # and any tensor it makes without a device land there): for builders that only make modules and
    # parameters, as this package's; weights made on one CPU thread and moved took most of a GPU run's
    # set-up (build). False: built on the CPU and moved, as an outside builder may expect.
    build_on_device: bool = False


REGISTRY: dict[str, Kernel] = {}
ENTRY_POINTS = "perf_core.kernels"  # the entry-point group; each entry a callable that calls register()
_entry_points_loaded = False


def register(kernel: Kernel) -> Kernel:
    """Add (or replace) a kernel by name: the public way in, for a conftest or an entry point."""
    if not contract.KERNEL_NAME.fullmatch(kernel.name):
        raise UsageError(f"kernel name {kernel.name!r}: use {contract.KERNEL_NAME_RULE}")
    REGISTRY[kernel.name] = kernel
    return kernel


def load_entry_points() -> None:
    """Call every `perf_core.kernels` entry point once (later calls do nothing).

    Raises UsageError naming the entry point when one cannot be loaded or its call raises; one of
    perf-core's own that this perf_core lacks is skipped with a warning (_from_another_checkout).
    """
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry in importlib.metadata.entry_points(group=ENTRY_POINTS):
        try:
            entry.load()()
        except Exception as error:
            if _from_another_checkout(entry.value, error):
                warnings.warn(f"skipped entry point {entry.value}: this perf_core has no {error.name}", stacklevel=2)
                continue
            raise UsageError(
                f"entry point {entry.name} = {entry.value} ({ENTRY_POINTS}): {type(error).__name__}: {error}"
            ) from error


def _from_another_checkout(value: str, error: Exception) -> bool:
    """perf-core's installed metadata names a module that the perf_core imported here lacks: the
    install came from another checkout, as when `perf-core ab` runs a worktree of a commit from
    before the module was added (or after it moved) with the head's installed metadata."""
    return (
        isinstance(error, ModuleNotFoundError)
        and value.startswith("perf_core.")
        and (error.name or "").startswith("perf_core.")
    )


def get(name: str) -> Kernel:
    load_entry_points()
    return REGISTRY[one_of("kernel", name, REGISTRY)]


def names() -> tuple[str, ...]:
    load_entry_points()
    return tuple(REGISTRY)


def defaults(device: str, gate: bool = False) -> tuple[str, ...]:
    """The kernels the suite runs on `device` when --kernels is not given; `gate`: those of the gate."""
    chosen = (name for name in names() if device in REGISTRY[name].default_devices)
    return tuple(name for name in chosen if REGISTRY[name].in_gate or not gate)


def streamed_bytes(w: Shape, weight_elements: int) -> int:
    """The fewest bytes a call moves: its weights and input read once, its output written once."""
    activations = 2 * w.batch * w.n_tokens * w.d_model
    return (weight_elements + activations) * w.element_bytes


def projection_flops(w: Shape, d_in: int, d_out: int) -> int:
    """A (batch * n_tokens, d_in) x (d_in, d_out) product; a multiply-add counts as two."""
    return 2 * w.batch * w.n_tokens * d_in * d_out


def build(workload: Shape, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """The eager module and its input, both drawn from `seed` (never zeros) by the workload's device's
    own generator: reproducible per device type (the CPU's values are those of every earlier version;
    a GPU's differ from runs before this rule, and may between GPU models). A kernel with
    `build_on_device` is made on the device, in float32, then cast (the device holds its float32 weights
    while it is built: 27 GB for llama-7b's model); others are made on the CPU and moved.

    Why on the device: made on one CPU thread and moved, the GPU preset's weights cost most of a gate
    run's set-up on an H200: under cProfile, 31 s of a 71 s run of 36 benchmarks went to randn,
    nn.Linear's own initialisation, .to and copy_ (scripts/gpu_compile_profile.sh, docs/gate.md).
    """
    kernel = get(workload.kernel)  # outside the device context: entry points import at the first get
    device = torch.device(workload.device)
    generator = torch.Generator(device=device).manual_seed(seed)
    with device if kernel.build_on_device else contextlib.nullcontext():
        module = kernel.build(workload)
    scale = 1.0 / math.sqrt(workload.d_model)  # keeps outputs O(1) so tolerances mean something
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator, device=device) * scale)
    module.requires_grad_(False).eval()
    dtype = getattr(torch, workload.dtype)
    x = torch.randn(workload.batch, workload.n_tokens, workload.d_model, generator=generator, device=device)
    return module.to(workload.device, dtype), x.to(dtype)


# ---------------------------------------------------------------------------------------------
# attention


class AttentionBlock(nn.Module):
    """QKV projection, causal scaled-dot-product attention, output projection (no biases, as Llama)."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, n_tokens, d_model = x.shape  # x: (B, T, D)
        q, k, v = self.qkv(x).split(d_model, dim=-1)  # each (B, T, D)
        heads = (batch, n_tokens, self.n_heads, d_model // self.n_heads)
        q, k, v = (t.view(heads).transpose(1, 2) for t in (q, k, v))  # each (B, H, T, hd)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, hd)
        return self.out(y.transpose(1, 2).reshape(batch, n_tokens, d_model))  # (B, T, D)


def attention_flops(w: Shape) -> int:
    # QKV (3 d x d) and output (d x d) projections, then causal attention: row t attends to t + 1
    # keys, for QK^T and for PV, over all heads (n_heads * head_dim = d_model).
    causal_pairs = w.batch * w.n_tokens * (w.n_tokens + 1) // 2
    return 4 * projection_flops(w, w.d_model, w.d_model) + 2 * 2 * causal_pairs * w.d_model


register(
    Kernel(
        name="attention",
        description="QKV projection, causal `scaled_dot_product_attention`, output projection (no biases)",
        build=lambda w: AttentionBlock(w.d_model, w.n_heads),
        flops=attention_flops,
        bytes=lambda w: streamed_bytes(w, 4 * w.d_model * w.d_model),
        gemms=lambda w: (
            (w.batch * w.n_tokens, w.d_model, 3 * w.d_model),
            (w.batch * w.n_tokens, w.d_model, w.d_model),
        ),
        build_on_device=True,
    )
)


# ---------------------------------------------------------------------------------------------
# matmul


class Matmul(nn.Module):
    """Activations times one square weight: the skinny GEMM of a decoder at small token counts."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_model, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight  # (B, T, D) @ (D, D) -> (B, T, D)


register(
    Kernel(
        name="matmul",
        description="activations (batch, tokens, d_model) x weight (d_model, d_model)",
        build=lambda w: Matmul(w.d_model),
        flops=lambda w: projection_flops(w, w.d_model, w.d_model),
        bytes=lambda w: streamed_bytes(w, w.d_model * w.d_model),
        gemms=lambda w: ((w.batch * w.n_tokens, w.d_model, w.d_model),),
        build_on_device=True,
    )
)


# ---------------------------------------------------------------------------------------------
# mlp


class SwiGLU(nn.Module):
    """Llama's feed-forward block: down(silu(gate(x)) * up(x)), no biases."""

    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.gate = nn.Linear(d_model, d_ff, bias=False)
        self.up = nn.Linear(d_model, d_ff, bias=False)
        self.down = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))  # (B, T, D) -> (B, T, F) -> (B, T, D)


def d_ff(w: Shape) -> int:
    if w.d_ff is None:
        raise UsageError(f"kernel 'mlp' needs d_ff, the feed-forward width; the workload has none ({w.name})")
    return w.d_ff


register(
    Kernel(
        name="mlp",
        description="Llama's feed-forward block (SwiGLU): gate and up projections d_model to d_ff, SiLU, product,"
        " down projection (no biases)",
        build=lambda w: SwiGLU(w.d_model, d_ff(w)),
        # Three d_model x d_ff projections; SiLU and the product add ~4 flops per hidden element, under 0.1%.
        flops=lambda w: 3 * projection_flops(w, w.d_model, d_ff(w)),
        bytes=lambda w: streamed_bytes(w, 3 * w.d_model * d_ff(w)),
        gemms=lambda w: (
            ((w.batch * w.n_tokens, w.d_model, d_ff(w)),) * 2 + ((w.batch * w.n_tokens, d_ff(w), w.d_model),)
        ),
        build_on_device=True,
    )
)
