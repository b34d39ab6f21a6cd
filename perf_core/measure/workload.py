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
    description: str  # shown in the suite's --help (selection.OPTIONS)
    d_ff: int | None = None
    n_layers: int = 1
    n_kv_heads: int | None = None
    rope_theta: float = 10000.0

    def workload(self, kernel: str, n_tokens: int, device: str) -> Workload:
        """This preset's workload of `kernel` at `n_tokens` on `device` (another dtype: with_dtype first)."""
        return Workload(
            kernel,
            n_tokens,
            self.d_model,
            self.n_heads,
            self.batch,
            self.dtype,
            device,
            self.d_ff,
            n_layers=self.n_layers,
            n_kv_heads=self.n_kv_heads,
            rope_theta=self.rope_theta,
        )

    def with_dtype(self, dtype: str) -> Preset:
        return replace(self, dtype=dtype)


PRESETS = {
    # Small enough that 36 benchmarks, compilation included, fit in two minutes on 2 CPU cores.
    # d_ff keeps Llama's ratio (11008 / 4096) at d_model 256; two layers and two key/value heads
    # (grouped-query, as Llama 3) so the model kernel's loop and GQA run in CI.
    "cpu-small": Preset(256, 4, 1, "float32", "CI-sized Llama layer, float32", d_ff=688, n_layers=2, n_kv_heads=2),
    # Llama 2 7B's published configuration (Hugging Face meta-llama/Llama-2-7b-hf, config.json):
    # hidden_size 4096, num_attention_heads 32 (of 128), num_key_value_heads 32,
    # intermediate_size 11008, num_hidden_layers 32, rope_theta 10000; bf16, batch 1.
    "llama-7b": Preset(4096, 32, 1, "bfloat16", "Llama-7B-sized layer, bf16", d_ff=11008, n_layers=32, n_kv_heads=32),
    # Llama 3 8B's published configuration (meta-llama/Meta-Llama-3-8B, config.json): hidden_size
    # 4096, num_attention_heads 32, num_key_value_heads 8, intermediate_size 14336, num_hidden_layers
    # 32, rope_theta 500000.0; bf16, batch 1.
    "llama-3-8b": Preset(
        4096,
        32,
        1,
        "bfloat16",
        "Llama-3-8B-sized layer, bf16",
        d_ff=14336,
        n_layers=32,
        n_kv_heads=8,
        rope_theta=500000.0,
    ),
}
DEFAULT_PRESET = {"cpu": "cpu-small", "cuda": "llama-7b"}
