"""The contract between the measuring half and the analysing half: what a saved run holds.

The suite writes pytest-benchmark's own JSON; this module names the fields the tools rely on, builds
and parses the benchmark name (the only place that does), and carries the format version. Both
halves import it; it imports neither (and no torch), so a history can be read where torch is absent.
"""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass
from pathlib import Path

# Written into every saved run (top level of the JSON). Runs saved before the version existed have
# none and are version 1; a reader refuses a version newer than the one it knows.
# 2: machine_info["cache"] ("cold"/"warm"; version 1 runs are all warm), device_s, clock fields.
# 3: per-benchmark breakdown, breakdown_note, code_fingerprint, code_kernels; machine_info["breakdown"]
#    (older runs have no breakdown: readers say so).
# Keys added since without a new version, as a reader ignores keys it does not know and none of them
# is required: machine_info gpu_index and gpu_uuid.
FORMAT_KEY = "perf_core_format"
FORMAT_VERSION = 3

VARIANTS = ("eager", "compiled")
# The suite's default token list (--tokens and its ini twin perf_tokens): change it here. The
# repository's pyproject.toml sets no perf_tokens, so this is what runs (tests/test_docs.py checks).
TOKEN_COUNTS = (16, 32, 64, 128, 256, 512)

# Every key the suite writes into the JSON is named here, and nowhere else; the analysing half reads
# them from here too. pytest-benchmark's own keys (stats, commit_info, ...) are its format, not ours,
# except the commit_info ones the suite overwrites (COMMIT_*).

# Each benchmark's extra_info: the fields every reader needs, then the ones it uses when present.
KERNEL, VARIANT, N_TOKENS, PER_TOKEN_S = "kernel", "variant", "n_tokens", "per_token_s"
FLOPS, BYTES, FLOOR_S, COMPILE_S = "flops", "bytes", "floor_s", "compile_s"
LATENCY_S, LATENCY_PER_TOKEN_S = "latency_s", "latency_per_token_s"
DEVICE_S = "device_s"  # CUDA events around the call, the GPU's own time (no host in it)
THROTTLED = "throttled"  # True when NVML saw the card slowed during the rounds; null when unknown
# Rates from the steady-state median call: tokens / median, streamed bytes (BYTES) / median, and that
# rate's share of the run's measured copy bandwidth (machine_info copy_bytes_per_s; null without it).
TOKENS_PER_S, BYTES_PER_S, BANDWIDTH_SHARE = "tokens_per_s", "bytes_per_s", "bandwidth_share"
REQUIRED_EXTRA = (KERNEL, VARIANT, N_TOKENS, PER_TOKEN_S)
# Written for people and scripts, read by no tool here: what ran and how.
PRESET = "preset"  # the workload preset (also in machine_info)
DEVICE = "device"  # "cpu" or "cuda" (also in machine_info)
SHAPE = (
    "d_model",
    "n_heads",
    "batch",
    "dtype",
    DEVICE,
    "d_ff",
    "n_layers",
    "n_kv_heads",
    "rope_theta",
)  # Shape.sizes()
COMPILE_FLAGS = "compile_flags"  # compiled variants: measure.core.CompileFlags as an object
COPIES = "copies"  # weight and input copies the call rotates over (1: warm)
L2_BYTES = "l2_bytes"  # the GPU's L2 size; null on the CPU or where the device does not say (also in machine_info)
# What NVML saw during the rounds (measure.clock.ClockReport), GPU runs; each null where it could not say.
SM_CLOCK_MHZ, SM_CLOCK_MAX_MHZ, POWER_W = "sm_clock_mhz", "sm_clock_max_mhz", "power_w"
THROTTLE_REASONS, THROTTLE_SHARE, CLOCK_SAMPLES = "throttle_reasons", "throttle_share", "clock_samples"

# machine_info: what makes two runs comparable (see analysis.records.Machine).
DEVICE_NAME, TORCH_VERSION, NUM_THREADS, CUDA_VERSION = "device_name", "torch_version", "num_threads", "cuda_version"
REQUIRED_MACHINE = (DEVICE_NAME, TORCH_VERSION, NUM_THREADS)
CACHE = "cache"  # one of CACHE_MODES; never compared across
REST = "rest"  # GPU rest per unit of work between rounds (0: back to back; absent: 0); never compared across
# machine_info, for people and scripts: the enabled SDPA backends (CUDA) and the measured ceilings
# behind floor_s (measure.clock.Peaks).
SDPA_BACKENDS = "sdpa_backends"
# The card that ran (CUDA; absent from runs saved before them): NVML's number of it, as nvidia-smi
# shows it (null without NVML), and its UUID ("GPU-..."). Recorded, never compared: runs on two
# cards of one model are one machine.
GPU_INDEX, GPU_UUID = "gpu_index", "gpu_uuid"
PEAK_FLOPS_PER_S, COPY_BYTES_PER_S, PEAK_DTYPE = "peak_flops_per_s", "copy_bytes_per_s", "peak_dtype"

# pytest-benchmark's commit_info keys the suite overwrites when PERF_CORE_COMMIT names the commit.
COMMIT_ID, COMMIT_TIME, COMMIT_DIRTY, COMMIT_ERROR = "id", "time", "dirty", "error"
COMMIT_AUTHOR_TIME = "author_time"  # the readers' fallback for COMMIT_TIME: a stale .git's must not stay

# Values both halves check. Cold: the call rotates over copies of its weights and input past L2;
# warm: back to back (all version 1 runs).
COLD, WARM = "cold", "warm"
CACHE_MODES = (COLD, WARM)
REST_BOUNDS = (0.0, 100.0)  # a rest is at least the first and below the second
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

# Where a call's time goes (format 3, perf_core.measure.breakdown). In extra_info: BREAKDOWN, a list of
# [name, calls per call, seconds per call], the largest first, then BREAKDOWN_IDLE (GPU), then the
# smallest summed into BREAKDOWN_OTHER (null when the profiler failed, BREAKDOWN_NOTE then says why); for
# compiled variants CODE_FINGERPRINT (sha256 prefix of inductor's normalised output code) and
# CODE_KERNELS (its generated kernels' names). In machine_info: BREAKDOWN, whether the run took
# breakdowns (--breakdown/--no-breakdown).
# On a GPU one more part, BREAKDOWN_IDLE: the device's time per call in no kernel (the start CUDA
# event's own time, launches, the gaps between a CUDA graph's kernels), read off the profiler's
# timeline of calls taken as device_s takes them, so that the parts should add up to the call's device
# time (on an H200 every compiled call 0.991-1.049 of it: docs/gpu.md). BREAKDOWN_IDLE_UNKNOWN: the name
# runs saved before commit 4876060 gave it, measured with the events (from 9bde74c) or without them
# (about 1.3 us a call less): which, a run does not say, so explain compares it with nothing.
BREAKDOWN, BREAKDOWN_NOTE, BREAKDOWN_OTHER = "breakdown", "breakdown_note", "other"
BREAKDOWN_IDLE = "(device time outside kernels)"
BREAKDOWN_IDLE_UNKNOWN = "(device idle between kernels)"
BREAKDOWN_IDLE_PARTS = (BREAKDOWN_IDLE, BREAKDOWN_IDLE_UNKNOWN)
CODE_FINGERPRINT, CODE_KERNELS = "code_fingerprint", "code_kernels"


# What a kernel may be named (the registry refuses any other name): ASCII letters, digits, '_' and '.',
# starting with a letter and ending with a letter or digit. Every output carries such a name as it is:
# file names, pytest ids and `-k`, comma lists (--kernels), HTML ids, Markdown cells, exports. '-' is
# out (benchmark names split on it), Unicode too (file names normalise it differently across systems).
# The outputs still escape names they read, as histories may come from elsewhere.
KERNEL_NAME_RULE = "ASCII letters, digits, '_' and '.', starting with a letter and not ending with '.'"
KERNEL_NAME = re.compile(r"[A-Za-z](?:[A-Za-z0-9_.]*[A-Za-z0-9_])?")


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


@dataclass(frozen=True)
class Metric:
    """A figure a benchmark is read and compared by (`--metric`)."""

    field: str  # the records.Result field that holds it, seconds per call
    label: str  # what it measures, for figure titles


# Every metric, written once: the CLI's choices, the records' fields and the titles come from here.
METRICS = {
    "steady": Metric("median_s", "steady state (pytest-benchmark's rounds)"),
    "latency": Metric("latency_s", "isolated-call latency (host included)"),
    "device": Metric("device_s", "device time (CUDA events, no host)"),
}

# A suite's collection header line saying it knows --pair-barrier (perf_core/measure/pairing.py):
# `perf-core ab` times a pair's runs together on one CPU core only where both sides print it.
PAIRS_TOGETHER_LINE = "perf_core: a pair's runs can be timed together (--pair-barrier)"


# A pair's barrier folder's list of the benchmark ids both sides have, one a line (ab writes it; a
# run waits for the other only at those).
PAIR_SHARED = "shared"


def pair_done(folder: Path, side: str) -> Path:
    """The file in a pair's barrier folder saying `side`'s run has ended (written by the run, and by
    ab whichever way the run ended): the other run stops waiting for it."""
    return folder / f"{side}-done"
