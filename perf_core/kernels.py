"""Eager reference kernels: plain PyTorch modules and their seeded inputs."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from perf_core.workload import Workload


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


class Matmul(nn.Module):
    """Activations times one square weight: the skinny GEMM of a decoder at small token counts."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_model, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight  # (B, T, D) @ (D, D) -> (B, T, D)


def build(workload: Workload, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """The eager module and its input, both drawn from `seed` (never zeros), on the workload's device."""
    generator = torch.Generator().manual_seed(seed)
    if workload.kernel == "attention":
        module: nn.Module = AttentionBlock(workload.d_model, workload.n_heads)
    else:
        module = Matmul(workload.d_model)
    scale = 1.0 / math.sqrt(workload.d_model)  # keeps outputs O(1) so tolerances mean something
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)
    module.requires_grad_(False).eval()
    dtype = getattr(torch, workload.dtype)
    x = torch.randn(workload.batch, workload.n_tokens, workload.d_model, generator=generator)
    return module.to(workload.device, dtype), x.to(workload.device, dtype)
