"""A Llama decoder layer and a whole model of them: the `decoder` and `model` kernels.

Registered the way an outside project registers its own: pyproject.toml names `register_kernels`
under the entry-point group `perf_core.kernels`, and it calls the public kernels.register. Layer as
Meta's reference (llama/model.py) and Hugging Face's LlamaDecoderLayer define it: RMSNorm,
attention with rotary position embeddings and grouped-query heads, residual, RMSNorm, SwiGLU,
residual; no biases. Shapes: the presets in workload.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from perf_core.errors import UsageError
from perf_core.measure import kernels
from perf_core.measure.shape import Shape

NORM_EPS = 1e-5  # rms_norm_eps in Llama 2's and Llama 3's published configurations


class LayerWeights(NamedTuple):
    """One layer's parameters, (out, in) as nn.Linear keeps them; D = d_model, K = n_kv_heads * head_dim."""

    attention_norm: torch.Tensor  # (D,)
    wq: torch.Tensor  # (D, D)
    wk: torch.Tensor  # (K, D)
    wv: torch.Tensor  # (K, D)
    wo: torch.Tensor  # (D, D)
    ffn_norm: torch.Tensor  # (D,)
    gate: torch.Tensor  # (F, D)
    up: torch.Tensor  # (F, D)
    down: torch.Tensor  # (D, F)


def rms_norm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    # Statistics in float32 whatever the activations' dtype, as Llama computes them.
    x32 = x.float()  # (B, T, D)
    normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + NORM_EPS)
    return normed.type_as(x) * weight  # (B, T, D)


def rope_tables(n_tokens: int, head_dim: int, theta: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of each position's rotation angles, each (T, head_dim / 2), float32."""
    exponents = torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim  # (hd/2,)
    positions = torch.arange(n_tokens, device=device, dtype=torch.float32)  # (T,)
    angles = torch.outer(positions, theta**-exponents)  # (T, hd/2)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each (first half, second half) pair of a head's channels by its position's angle.

    The half-split layout of Hugging Face's Llama (Meta's interleaves the pairs; same cost).
    """
    x1, x2 = x.float().chunk(2, dim=-1)  # each (B, H, T, hd/2)
    rotated = torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)  # (B, H, T, hd)
    return rotated.type_as(x)


def decoder_layer(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, w: LayerWeights, n_heads: int, n_kv_heads: int
) -> torch.Tensor:
    """One Llama decoder layer, a pure function of its input and weights (so one compile serves all layers)."""
    batch, n_tokens, d_model = x.shape  # x: (B, T, D)
    head_dim = d_model // n_heads
    h = rms_norm(x, w.attention_norm)  # (B, T, D)
    q = F.linear(h, w.wq).view(batch, n_tokens, n_heads, head_dim).transpose(1, 2)  # (B, H, T, hd)
    k = F.linear(h, w.wk).view(batch, n_tokens, n_kv_heads, head_dim).transpose(1, 2)  # (B, Hkv, T, hd)
    v = F.linear(h, w.wv).view(batch, n_tokens, n_kv_heads, head_dim).transpose(1, 2)  # (B, Hkv, T, hd)
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    # Each key/value head serves n_heads / n_kv_heads query heads (gpt-fast and Hugging Face repeat
    # them the same way; every SDPA backend takes the result).
    k = k.repeat_interleave(n_heads // n_kv_heads, dim=1)  # (B, H, T, hd)
    v = v.repeat_interleave(n_heads // n_kv_heads, dim=1)  # (B, H, T, hd)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, hd)
    x = x + F.linear(y.transpose(1, 2).reshape(batch, n_tokens, d_model), w.wo)  # (B, T, D)
    h = rms_norm(x, w.ffn_norm)  # (B, T, D)
    return x + F.linear(F.silu(F.linear(h, w.gate)) * F.linear(h, w.up), w.down)  # (B, T, F) -> (B, T, D)


class DecoderLayer(nn.Module):
    """One layer's weights; its forward is decoder_layer at positions 0 .. T-1."""

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int, d_ff: int, rope_theta: float) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.rope_theta = n_heads, n_kv_heads, rope_theta
        kv = n_kv_heads * (d_model // n_heads)
        shapes = {  # in LayerWeights' order, the order the suite seeds them in
            "attention_norm": (d_model,),
            "wq": (d_model, d_model),
            "wk": (kv, d_model),
            "wv": (kv, d_model),
            "wo": (d_model, d_model),
            "ffn_norm": (d_model,),
            "gate": (d_ff, d_model),
            "up": (d_ff, d_model),
            "down": (d_model, d_ff),
        }
        for name, shape in shapes.items():
            self.register_parameter(name, nn.Parameter(torch.empty(shape)))

    def weights(self) -> LayerWeights:
        # getattr, not a stored list: torch.func.functional_call swaps the attributes for a call.
        return LayerWeights(*(getattr(self, name) for name in LayerWeights._fields))

    def rope(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return rope_tables(x.shape[1], x.shape[2] // self.n_heads, self.rope_theta, x.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return decoder_layer(x, *self.rope(x), self.weights(), self.n_heads, self.n_kv_heads)  # (B, T, D)


class Model(nn.Module):
    """n_layers decoder layers, each with its own weights, run in turn through one layer function."""

    def __init__(self, layers: nn.ModuleList, layer_fn: Callable[..., torch.Tensor] = decoder_layer) -> None:
        super().__init__()
        self.layers = layers
        self.layer_fn = layer_fn  # eager decoder_layer, or its compiled version (compile_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first = self.layers[0]
        cos, sin = first.rope(x)  # (T, hd/2) each, shared by every layer
        for layer in self.layers:
            x = self.layer_fn(x, cos, sin, layer.weights(), first.n_heads, first.n_kv_heads)  # (B, T, D)
        return x


def compile_model(model: Model, compile_kwargs: dict) -> Model:
    """The same layers (parameters shared) through decoder_layer compiled once, reused for every layer.

    Compiling the whole forward would trace and compile every layer again: compile time growing
    with n_layers for the same code. On CUDA core.prepare captures the whole loop in one CUDA graph.
    """
    return Model(model.layers, torch.compile(decoder_layer, **compile_kwargs))


def _d_ff(w: Shape) -> int:
    if w.d_ff is None:
        raise UsageError(f"kernel {w.kernel!r} needs d_ff, the feed-forward width; the workload has none ({w.name})")
    return w.d_ff


def _layer(w: Shape) -> DecoderLayer:
    if w.head_dim % 2:
        raise UsageError(f"kernel {w.kernel!r}: rotary embeddings need an even head_dim, got {w.head_dim}")
    return DecoderLayer(w.d_model, w.n_heads, w.kv_heads, _d_ff(w), w.rope_theta)


def layer_weight_elements(w: Shape) -> int:
    """Q and O are d_model x d_model, K and V d_model x (n_kv_heads * head_dim), three SwiGLU
    projections d_model x d_ff, two norm weights."""
    kv = w.kv_heads * w.head_dim
    return 2 * w.d_model * w.d_model + 2 * w.d_model * kv + 3 * w.d_model * _d_ff(w) + 2 * w.d_model


def layer_flops(w: Shape) -> int:
    """The projections, then causal attention (QK^T and PV, row t attends to t + 1 keys, over all
    n_heads * head_dim = d_model channels). Norms, RoPE and SiLU add under 0.5%."""
    kv = w.kv_heads * w.head_dim
    projections = 2 * kernels.projection_flops(w, w.d_model, w.d_model) + 2 * kernels.projection_flops(w, w.d_model, kv)
    causal_pairs = w.batch * w.n_tokens * (w.n_tokens + 1) // 2
    return projections + 3 * kernels.projection_flops(w, w.d_model, _d_ff(w)) + 2 * 2 * causal_pairs * w.d_model


# Off the CPU's default list, by measurement on the 2-core CI machine (other work running beside it):
# `pytest --benchmark-only --kernels decoder,model` took 72-77 s against 32-54 s for `--kernels
# matmul` in the same minutes, and all five kernels 151 s: past the default suite's 120 s and the
# README benchmark command's documented time. tests/test_llama.py still runs both through the suite.
DEFAULT_DEVICES = ("cuda",)


def register_kernels() -> None:
    """The entry point (pyproject.toml, `perf_core.kernels`): registers `decoder` and `model`."""
    kernels.register(
        kernels.Kernel(
            name="decoder",
            description="one Llama decoder layer: RMSNorm, attention with rotary position embeddings (`rope_theta`)"
            " and grouped-query heads (`n_kv_heads`), residual, RMSNorm, SwiGLU, residual (no biases)",
            build=_layer,
            flops=layer_flops,
            bytes=lambda w: kernels.streamed_bytes(w, layer_weight_elements(w)),
            default_devices=DEFAULT_DEVICES,
            in_gate=False,
            build_on_device=True,
        )
    )
    kernels.register(
        kernels.Kernel(
            name="model",
            description="`n_layers` decoder layers, each with its own weights, through one layer function compiled"
            " once and reused for every layer; on CUDA the whole forward is one CUDA graph",
            build=lambda w: Model(nn.ModuleList(_layer(w) for _ in range(w.n_layers))),
            flops=lambda w: w.n_layers * layer_flops(w),
            # Every layer's weights read once; activations read once and written once, as a fused
            # forward could keep them on chip between layers.
            bytes=lambda w: kernels.streamed_bytes(w, w.n_layers * layer_weight_elements(w)),
            compile=compile_model,
            default_devices=DEFAULT_DEVICES,
            in_gate=False,
            build_on_device=True,
        )
    )
