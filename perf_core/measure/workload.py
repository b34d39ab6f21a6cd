"""What to run: the workload spec, its presets, and its cost model (FLOPs, bytes, floor time)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

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
    # For the decoder and model kernels (llama.py); the single blocks ignore them.
    n_layers: int = 1
    n_kv_heads: int | None = None  # grouped-query attention's key/value heads; None: n_heads
    rope_theta: float = 10000.0  # the base of the rotary position embeddings' angles

    def __post_init__(self) -> None:
        kernels.get(self.kernel)  # an unknown kernel is a one-line error here, before any work
        one_of("dtype", self.dtype, DTYPE_BYTES)
        one_of("device", self.device, DEVICES)
        for name in ("n_tokens", "d_model", "n_heads", "batch", "d_ff", "n_layers", "n_kv_heads"):
            value = getattr(self, name)
            if name in ("d_ff", "n_kv_heads") and value is None:
                continue
            if not is_count(value):
                raise UsageError(f"{name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads:
            raise UsageError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.n_heads % self.kv_heads:
            raise UsageError(f"n_heads {self.n_heads} is not divisible by n_kv_heads {self.n_kv_heads}")
        if not self.rope_theta > 0:
            raise UsageError(f"rope_theta must be positive, got {self.rope_theta!r}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def kv_heads(self) -> int:
        """Key/value heads: n_kv_heads, or one per query head (plain multi-head attention)."""
        return self.n_kv_heads or self.n_heads

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
        return {key: value for key, value in asdict(self).items() if key not in ("kernel", "n_tokens")}


@dataclass(frozen=True)
class Preset:
    """The model-shaped part of a workload; kernel, token count and device are chosen per run."""

    d_model: int
    n_heads: int
    batch: int
    dtype: str
    description: str
    d_ff: int | None = None
    n_layers: int = 1
    n_kv_heads: int | None = None
    rope_theta: float = 10000.0

    def workload(self, kernel: str, n_tokens: int, device: str, dtype: str | None = None) -> Workload:
        return Workload(
            kernel,
            n_tokens,
            self.d_model,
            self.n_heads,
            self.batch,
            dtype or self.dtype,
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
