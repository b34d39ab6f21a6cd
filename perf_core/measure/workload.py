"""What to run: the workload (a Shape whose kernel is registered), its presets, and its cost model
(FLOPs, bytes, floor time)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from perf_core.measure import kernels
from perf_core.measure.shape import Shape


@dataclass(frozen=True)
class Workload(Shape):
    """One benchmark's input (the fields are Shape's), checked against the kernel registry."""

    def __post_init__(self) -> None:
        kernels.get(self.kernel)  # an unknown kernel is a one-line error here, before any work
        super().__post_init__()

    @property
    def flops(self) -> int:
        """Floating-point operations one call must do (a multiply-add counts as two)."""
        return kernels.get(self.kernel).flops(self)

    @property
    def bytes(self) -> int:
        """The fewest bytes one call must move: weights and input read once, output written once."""
        return kernels.get(self.kernel).bytes(self)

    @property
    def gemms(self) -> tuple[tuple[int, int, int], ...]:
        """The matrix products (m, k, n) one call runs, where the kernel says (for the peak's shapes)."""
        return kernels.get(self.kernel).gemms(self)

    def floor_s(self, peak_flops: float, bandwidth: float) -> float:
        """The physical floor: the larger of compute time at peak rate and transfer time."""
        return max(self.flops / peak_flops, self.bytes / bandwidth)


@dataclass(frozen=True)
class Preset:
    """The model-shaped part of a workload; kernel, token count and device are chosen per run."""

    d_model: int
    n_heads: int
    batch: int
    dtype: str
    description: str  # shown in the suite's --help (plugin.OPTIONS)
    d_ff: int | None = None

    def workload(self, kernel: str, n_tokens: int, device: str) -> Workload:
        """This preset's workload of `kernel` at `n_tokens` on `device` (another dtype: with_dtype first)."""
        return Workload(kernel, n_tokens, self.d_model, self.n_heads, self.batch, self.dtype, device, self.d_ff)

    def with_dtype(self, dtype: str) -> Preset:
        return replace(self, dtype=dtype)


PRESETS = {
    # Small enough that 36 benchmarks, compilation included, fit in two minutes on 2 CPU cores.
    # d_ff keeps Llama's ratio (11008 / 4096) at d_model 256.
    "cpu-small": Preset(256, 4, 1, "float32", "CI-sized Llama layer, float32", d_ff=688),
    # One Llama-7B layer: d_model 4096, 32 heads of 128, feed-forward 11008, bf16, batch 1.
    "llama-7b": Preset(4096, 32, 1, "bfloat16", "Llama-7B-sized layer, bf16", d_ff=11008),
}
DEFAULT_PRESET = {"cpu": "cpu-small", "cuda": "llama-7b"}
