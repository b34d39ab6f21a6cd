"""What to run: the workload spec, its presets, and its cost model (FLOPs, bytes, floor time)."""

from __future__ import annotations

from dataclasses import dataclass, replace

KERNELS = ("attention", "matmul")
VARIANTS = ("eager", "compiled")
DEVICES = ("cpu", "cuda")
TOKEN_COUNTS = (16, 32, 64, 128, 256, 512)
# name -> bytes per element; torch dtypes are looked up by name so this module stays torch-free.
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def _check_choice(what: str, value: str, choices: tuple[str, ...] | dict) -> None:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose from {', '.join(choices)}")


@dataclass(frozen=True)
class Workload:
    """One benchmark's input: a kernel at one token count on one device.

    Attention block = QKV projection, causal scaled-dot-product attention, output projection.
    Matmul = activations (batch, n_tokens, d_model) x weight (d_model, d_model).
    """

    kernel: str
    n_tokens: int
    d_model: int
    n_heads: int
    batch: int = 1
    dtype: str = "float32"
    device: str = "cpu"

    def __post_init__(self) -> None:
        _check_choice("kernel", self.kernel, KERNELS)
        _check_choice("dtype", self.dtype, DTYPE_BYTES)
        _check_choice("device", self.device, DEVICES)
        for name in ("n_tokens", "d_model", "n_heads", "batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def element_bytes(self) -> int:
        return DTYPE_BYTES[self.dtype]

    @property
    def flops(self) -> int:
        """Floating-point operations one call must do (a multiply-add counts as two)."""
        rows = self.batch * self.n_tokens
        projections = 2 * rows * self.d_model * self.d_model
        if self.kernel == "matmul":
            return projections
        # QKV (3 d x d) and output (d x d) projections, then causal attention: row t attends
        # to t + 1 keys, for QK^T and for PV, over all heads (n_heads * head_dim = d_model).
        causal_pairs = self.batch * self.n_tokens * (self.n_tokens + 1) // 2
        return 4 * projections + 2 * 2 * causal_pairs * self.d_model

    @property
    def bytes(self) -> int:
        """The fewest bytes one call must move: weights and input read once, output written once."""
        weights = (4 if self.kernel == "attention" else 1) * self.d_model * self.d_model
        activations = 2 * self.batch * self.n_tokens * self.d_model  # input read + output written
        return (weights + activations) * self.element_bytes

    def floor_s(self, peak_flops: float, bandwidth: float) -> float:
        """The physical floor: the larger of compute time at peak rate and transfer time."""
        return max(self.flops / peak_flops, self.bytes / bandwidth)

    @property
    def name(self) -> str:
        return f"{self.kernel}-{self.n_tokens}"


@dataclass(frozen=True)
class Preset:
    """The model-shaped part of a workload; kernel, token count and device are chosen per run."""

    d_model: int
    n_heads: int
    batch: int
    dtype: str
    description: str

    def workload(self, kernel: str, n_tokens: int, device: str, dtype: str | None = None) -> Workload:
        return Workload(kernel, n_tokens, self.d_model, self.n_heads, self.batch, dtype or self.dtype, device)

    def with_dtype(self, dtype: str) -> Preset:
        return replace(self, dtype=dtype)


PRESETS = {
    # Small enough that 24 benchmarks, compilation included, fit in two minutes on 2 CPU cores.
    "cpu-small": Preset(256, 4, 1, "float32", "CI-sized attention layer, float32"),
    # One Llama-7B attention layer: d_model 4096, 32 heads of 128, bf16, batch 1.
    "llama-7b": Preset(4096, 32, 1, "bfloat16", "Llama-7B-sized attention layer, bf16"),
}
DEFAULT_PRESET = {"cpu": "cpu-small", "cuda": "llama-7b"}
