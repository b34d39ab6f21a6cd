"""What to run: the workload spec, its presets, and its cost model (FLOPs, bytes, floor time)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from perf_core import contract
from perf_core.errors import UsageError, is_count, one_of
from perf_core.measure import kernels

DEVICES = ("cpu", "cuda")
# name -> bytes per element; torch dtypes are looked up by name when the kernels are built.
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class Workload:
    """One benchmark's input: a kernel (see kernels.REGISTRY) at one token count on one device."""

    kernel: str
    n_tokens: int
    d_model: int
    n_heads: int
    batch: int = 1
    dtype: str = "float32"
    device: str = "cpu"
    d_ff: int | None = None  # the feed-forward width, for kernels that have one (mlp)

    def __post_init__(self) -> None:
        kernels.get(self.kernel)  # an unknown kernel is a one-line error here, before any work
        one_of("dtype", self.dtype, DTYPE_BYTES)
        one_of("device", self.device, DEVICES)
        for name in ("n_tokens", "d_model", "n_heads", "batch", "d_ff"):
            value = getattr(self, name)
            if name == "d_ff" and value is None:
                continue
            if not is_count(value):
                raise UsageError(f"{name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads:
            raise UsageError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def element_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def flops(self) -> int:
        """Floating-point operations one call must do (a multiply-add counts as two)."""
        return kernels.get(self.kernel).flops(self)

    @property
    def bytes(self) -> int:
        """The fewest bytes one call must move: weights and input read once, output written once."""
        return kernels.get(self.kernel).bytes(self)

    def floor_s(self, peak_flops: float, bandwidth: float) -> float:
        """The physical floor: the larger of compute time at peak rate and transfer time."""
        return max(self.flops / peak_flops, self.bytes / bandwidth)

    @property
    def name(self) -> str:
        return f"{self.kernel}-{self.n_tokens}"

    def shape(self) -> dict:
        """The fields that size the work, as recorded in each benchmark's extra_info."""
        return {key: getattr(self, key) for key in contract.SHAPE}


@dataclass(frozen=True)
class Preset:
    """The model-shaped part of a workload; kernel, token count and device are chosen per run."""

    d_model: int
    n_heads: int
    batch: int
    dtype: str
    description: str
    d_ff: int | None = None

    def workload(self, kernel: str, n_tokens: int, device: str, dtype: str | None = None) -> Workload:
        return Workload(
            kernel, n_tokens, self.d_model, self.n_heads, self.batch, dtype or self.dtype, device, self.d_ff
        )

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
