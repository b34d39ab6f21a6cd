"""The contract between the measuring half and the analysing half: what a saved run holds.

The suite writes pytest-benchmark's own JSON; this module names the fields the tools rely on, builds
and parses the benchmark name (the only place that does), and carries the format version. Both
halves import it; it imports neither (and no torch), so a history can be read where torch is absent.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

# Written into every saved run (top level of the JSON). Runs saved before the version existed have
# none and are version 1; a reader refuses a version newer than the one it knows.
# 2: machine_info["cache"] ("cold"/"warm"; version 1 runs are all warm), device_s, clock fields.
FORMAT_KEY = "perf_core_format"
FORMAT_VERSION = 2

VARIANTS = ("eager", "compiled")
TOKEN_COUNTS = (16, 32, 64, 128, 256, 512)

# Each benchmark's extra_info: the fields every reader needs, then the ones it uses when present.
KERNEL, VARIANT, N_TOKENS, PER_TOKEN_S = "kernel", "variant", "n_tokens", "per_token_s"
FLOPS, BYTES, FLOOR_S, COMPILE_S = "flops", "bytes", "floor_s", "compile_s"
LATENCY_S, LATENCY_PER_TOKEN_S = "latency_s", "latency_per_token_s"
DEVICE_S = "device_s"  # CUDA events around the call, the GPU's own time (no host in it)
THROTTLED = "throttled"  # True when NVML saw the card slowed during the rounds; null when unknown
REQUIRED_EXTRA = (KERNEL, VARIANT, N_TOKENS, PER_TOKEN_S)

# machine_info: what makes two runs comparable (see analysis.records.Machine).
DEVICE_NAME, TORCH_VERSION, NUM_THREADS, CUDA_VERSION = "device_name", "torch_version", "num_threads", "cuda_version"
REQUIRED_MACHINE = (DEVICE_NAME, TORCH_VERSION, NUM_THREADS)
CACHE = "cache"  # "cold" (weights rotated past L2) or "warm" (back to back); never compared across
REST = "rest"  # GPU rest per unit of work between rounds (0: back to back; absent: 0); never compared across
# The interpreter (platform.python_version(), as pytest-benchmark also writes it); runs are compared
# within one major.minor, as pytest-benchmark files them (absent in runs saved before: None).
PYTHON_VERSION = "python_version"
# The matmul (m, k, n) and buffer size (bytes) that set peak_flops_per_s and copy_bytes_per_s: present in
# runs whose peaks are the best over the suite's own shapes (absent: one large matmul and copy).
PEAK_GEMM, PEAK_BANDWIDTH_BYTES = "peak_gemm", "peak_bandwidth_bytes"
# The figures a run measured (machine_info["figures"], a list): "steady" (pytest-benchmark's rounds),
# "latency" and "device" (CUDA only). A figure not listed was not measured: its field is absent, or for
# steady, pytest-benchmark's one required round, no measurement. Absent key: every figure of the run's
# device (runs saved before --figures).
FIGURES_KEY, FIGURES = "figures", ("steady", "latency", "device")
# Seconds of each phase of the run (top level, an object): start-up (process start to the first
# benchmark: imports and the peak measurement), compile (every benchmark's preparation: compile, check
# against eager, warm-up) and timing (the rest, to the run's save).
PHASES_KEY, PHASES = "phases_s", ("startup_s", "compile_s", "timing_s")
# extra_info of compiled benchmarks: "hit" when inductor's on-disk FX graph cache served every graph of
# the compile, "miss" when one was compiled afresh, null when the cache was not consulted.
COMPILE_CACHE = "compile_cache"


@dataclass(frozen=True, order=True)
class BenchName:
    """A benchmark's identity; it orders by kernel, variant, then token count (the tables' order)."""

    kernel: str
    variant: str
    n_tokens: int

    def __str__(self) -> str:
        return f"{self.kernel}-{self.variant}-{self.n_tokens}"

    @property
    def panel(self) -> str:
        """The figure panel it belongs to: one per kernel and variant."""
        return f"{self.kernel}-{self.variant}"


def bench_name(kernel: str, variant: str, n_tokens: int) -> str:
    """ "attention", "compiled", 128 -> "attention-compiled-128": the pytest id and the JSON `param`."""
    return str(BenchName(kernel, variant, n_tokens))


def parse_name(name: str) -> BenchName:
    """The inverse of bench_name; a kernel name may itself hold dashes, variant and count never do."""
    kernel, variant, tokens = name.rsplit("-", 2)
    return BenchName(kernel, variant, int(tokens))


def sort_key(name: str) -> BenchName:
    return parse_name(name)


def cpu_name() -> str:
    """The CPU's brand string: `device_name` of a CPU run, and how a reader recognises this host."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"
