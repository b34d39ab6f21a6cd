"""What a kernel is built for: which kernel, how many tokens, the model's sizes, dtype and device.

The kernel registry's builders and cost functions take a Shape (kernels.py); workload.Workload is a
Shape whose kernel is registered, with the cost model on top. The record lives apart from both so
that each imports it and neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from perf_core import contract
from perf_core.errors import UsageError, is_count, one_of

DEVICES = ("cpu", "cuda")
# name -> bytes per element; torch dtypes are looked up by name when the kernels are built.
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class Shape:
    """One benchmark's input: a kernel's name at one token count, the model's sizes, on one device."""

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
    def name(self) -> str:
        return f"{self.kernel}-{self.n_tokens}"

    def sizes(self) -> dict:
        """The fields that size the work (contract.SHAPE), as recorded in each benchmark's extra_info."""
        return {key: getattr(self, key) for key in contract.SHAPE}
