"""Where the attention block's time goes on a GPU, part by part, against the copy bandwidth.

The compiled attention block stays above 1.5x its floor at small token counts (docs/gpu.md). This
times its parts alone -- the QKV projection, SDPA, the output projection -- and the whole eager
block, each captured in a CUDA graph (no launch gaps) over ROTATE copies of the weights in turn,
so that every call streams its weights from device memory as a real model's layers would, instead
of finding them in L2. For each projection it also times a split-K form (the K dimension cut into
4 batched GEMMs and summed), which gives the GPU 4x as many output tiles to spread over its SMs:
if that is faster than the library's own choice, the projection is bound by how few tiles a
skinny GEMM has, not by memory bandwidth.

    python scripts/attention_parts.py --tokens 16,64,256
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

import torch
import torch.nn.functional as F

from perf_core.contract import TOKEN_COUNTS
from perf_core.measure import clock
from perf_core.measure.workload import PRESETS

ROTATE = 4  # weight copies: 4 x 128 MB, well past any L2
SPLITS = 4


def graph_time_s(step: Callable[[int], object], replays: int = 50) -> float:
    """Seconds per step, from CUDA events around replays of one graph holding ROTATE steps."""
    for r in range(ROTATE):  # warm-up outside capture (library handles, workspaces)
        step(r)
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for r in range(ROTATE):
            step(r)
    return clock.device_time_s(graph.replay, samples=1, calls_per_sample=replays) / ROTATE


def split_k(x: torch.Tensor, weight_t: torch.Tensor) -> torch.Tensor:
    """x (T, K) @ weight_t (K, N) as SPLITS batched GEMMs over slices of K, then summed."""
    t, k = x.shape
    xs = x.view(t, SPLITS, k // SPLITS).transpose(0, 1)  # (S, T, K/S)
    return torch.bmm(xs, weight_t.view(SPLITS, k // SPLITS, -1)).sum(0)


def time_parts(n: int, g: torch.Generator, w_qkv: list, w_out: list, w_qkv_t: list, w_out_t: list) -> list:
    """(part, seconds per call, weight elements read) for one token count."""
    d, heads = w_out[0].shape[0], PRESETS["llama-7b"].n_heads
    x = torch.randn(n, d, device="cuda", dtype=w_out[0].dtype, generator=g)
    y = torch.randn_like(x)

    def heads_of(t: torch.Tensor) -> torch.Tensor:
        return t.view(1, n, heads, d // heads).transpose(1, 2)

    q, k, v = map(heads_of, F.linear(x, w_qkv[0]).split(d, -1))

    def block(r: int) -> torch.Tensor:
        o = F.scaled_dot_product_attention(*map(heads_of, F.linear(x, w_qkv[r]).split(d, -1)), is_causal=True)
        return F.linear(o.transpose(1, 2).reshape(n, d), w_out[r])

    parts = {
        "qkv": (lambda r: F.linear(x, w_qkv[r]), 3 * d * d),
        "qkv split-K": (lambda r: split_k(x, w_qkv_t[r]), 3 * d * d),
        "sdpa": (lambda r: F.scaled_dot_product_attention(q, k, v, is_causal=True), 0),
        "out": (lambda r: F.linear(y, w_out[r]), d * d),
        "out split-K": (lambda r: split_k(y, w_out_t[r]), d * d),
        "block (eager ops)": (block, 4 * d * d),
    }
    with torch.no_grad():
        return [(name, graph_time_s(step), weights) for name, (step, weights) in parts.items()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", default=",".join(map(str, TOKEN_COUNTS)))
    args = parser.parse_args()
    preset = PRESETS["llama-7b"]
    d, dtype = preset.d_model, getattr(torch, preset.dtype)
    peaks = clock.measure_peaks("cuda", preset.dtype)
    bandwidth = peaks.bytes_per_s
    print(f"device: {clock.device_name('cuda')}, torch {torch.__version__}, copy {bandwidth / 1e12:.2f} TB/s")
    g = torch.Generator(device="cuda").manual_seed(0)
    w_qkv = [torch.randn(3 * d, d, device="cuda", dtype=dtype, generator=g) * d**-0.5 for _ in range(ROTATE)]
    w_out = [torch.randn(d, d, device="cuda", dtype=dtype, generator=g) * d**-0.5 for _ in range(ROTATE)]
    w_qkv_t = [w.t().contiguous() for w in w_qkv]
    w_out_t = [w.t().contiguous() for w in w_out]
    print(f"{'tokens':>6} {'part':<18}{'us':>8}{'weights TB/s':>14}{'x copy floor':>14}")
    for n in map(int, args.tokens.split(",")):
        for name, seconds, weights in time_parts(n, g, w_qkv, w_out, w_qkv_t, w_out_t):
            weight_bytes = weights * 2
            rate = f"{weight_bytes / seconds / 1e12:>14.2f}" if weights else f"{'-':>14}"
            ratio = f"{seconds / (weight_bytes / bandwidth):>14.2f}" if weights else f"{'-':>14}"
            print(f"{n:>6} {name:<18}{seconds * 1e6:>8.1f}{rate}{ratio}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
