"""Synthetic histories in pytest-benchmark's JSON format, as the suite saves them.

Used by the tests and by scripts/bench_cli.py (a module of the package, so both import it normally). Times follow the suite's shape: a fixed cost per
call shared by the tokens, plus a cost per token.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from perf_core import contract
from perf_core.contract import TOKEN_COUNTS, VARIANTS, bench_name, parse_name

NAMES = tuple(bench_name(k, v, n) for k in ("attention", "matmul") for v in VARIANTS for n in TOKEN_COUNTS)
# Kernel names no registry accepts (contract.KERNEL_NAME), as a history from elsewhere may hold them:
# a dot, a space, markup, wide characters, a script's end, TeX. Every output must still carry them.
STRANGE_KERNELS = ("attn.v2", "flash attn", "moe<top2>", "注意力", "x</script><!--|`*", "a$\\x$")
MACHINE = {
    contract.DEVICE_NAME: "Test CPU 9000",
    contract.TORCH_VERSION: "2.13.0+cpu",
    contract.NUM_THREADS: 1,
    contract.CUDA_VERSION: None,
    "python_version": "3.11.7",
}


def call_seconds(name: str) -> float:
    parsed = parse_name(name)
    n = parsed.n_tokens
    return (100e-6 + n * 8e-6) if parsed.kernel == "attention" else (20e-6 + n * 1.2e-6)


def benchmark_entry(name: str, median: float, rng: np.random.Generator, rounds: int, noise: float) -> dict:
    parsed = parse_name(name)
    data = (median * (1 + noise * rng.standard_normal(rounds))).tolist()
    median = float(np.median(data))
    return {
        "group": parsed.panel,
        "name": f"test_latency[{name}]",
        "fullname": f"tests/test_latency.py::test_latency[{name}]",
        "params": {"kernel": parsed.kernel, "variant": parsed.variant, "n_tokens": parsed.n_tokens},
        "param": name,
        "extra_info": {
            contract.KERNEL: parsed.kernel,
            contract.VARIANT: parsed.variant,
            contract.N_TOKENS: parsed.n_tokens,
            contract.PER_TOKEN_S: median / parsed.n_tokens,
            contract.FLOPS: 1,
            contract.BYTES: 1,
            contract.FLOOR_S: median * 0.6,
        },
        "options": {"timer": "perf_counter", "max_time": 1.0, "min_rounds": 5},
        "stats": _stats(data, rounds),
    }


def _stats(data: list[float], rounds: int) -> dict:
    """pytest-benchmark's `stats` of the rounds `data` (seconds), raw rounds included."""
    median = float(np.median(data))
    q1, q3 = (float(q) for q in np.percentile(data, [25, 75]))
    return {
        "min": min(data),
        "max": max(data),
        "mean": float(np.mean(data)),
        "stddev": float(np.std(data)),
        "rounds": rounds,
        "median": median,
        "iqr": q3 - q1,
        "q1": q1,
        "q3": q3,
        "iqr_outliers": 0,
        "stddev_outliers": 0,
        "outliers": "0;0",
        "ld15iqr": min(data),
        "hd15iqr": max(data),
        "ops": 1 / median,
        "total": sum(data),
        "data": data,
        "iterations": 1,
    }


def run_document(
    commit: str,
    when: datetime,
    factors: dict[str, float] | None = None,
    seed: int = 0,
    rounds: int = 50,
    noise: float = 0.02,
    names: tuple[str, ...] = NAMES,
    machine: dict | None = None,
    dirty: bool = False,
) -> dict:
    """One run's JSON; `factors` multiplies chosen benchmarks' medians (a regression, say)."""
    rng = np.random.default_rng(seed)
    factors = factors or {}
    return {
        "machine_info": dict(MACHINE if machine is None else machine),
        "commit_info": {
            contract.COMMIT_ID: commit,
            contract.COMMIT_TIME: when.isoformat(),
            contract.COMMIT_DIRTY: dirty,
            "project": "perf-core",
            "branch": "main",
        },
        "benchmarks": [
            benchmark_entry(name, call_seconds(name) * factors.get(name, 1.0), rng, rounds, noise) for name in names
        ],
        "datetime": (when + timedelta(minutes=5)).isoformat(),
        "version": "5.3.1",
    }


def with_rates(document: dict, copy_bytes_per_s: float | None, streamed_bytes: int = 2**20) -> dict:
    """`document` with the rates the suite saves since issue 23 (measure.plugin.rates): each benchmark
    streams `streamed_bytes` a call; tokens and bytes per second of its median, the share of
    `copy_bytes_per_s` (the run's measured copy rate, None: not measured). Changes `document` in place."""
    document["machine_info"][contract.COPY_BYTES_PER_S] = copy_bytes_per_s
    for bench in document["benchmarks"]:
        extra, median = bench["extra_info"], bench["stats"]["median"]
        extra[contract.BYTES] = streamed_bytes
        extra[contract.TOKENS_PER_S] = extra[contract.N_TOKENS] / median
        extra[contract.BYTES_PER_S] = streamed_bytes / median
        share = None if copy_bytes_per_s is None else streamed_bytes / median / copy_bytes_per_s
        extra[contract.BANDWIDTH_SHARE] = share
    return document


def write_run(storage: Path, number: int, document: dict) -> Path:
    folder = storage / "Linux-CPython-3.11-64bit"
    folder.mkdir(parents=True, exist_ok=True)
    commit = document["commit_info"][contract.COMMIT_ID]
    path = folder / f"{number:04d}_{commit}_20261126_000000.json"
    path.write_text(json.dumps(document))
    return path


def commit_sha(i: int) -> str:
    return f"{i:07x}" + "a" * 33


def write_history(
    storage: Path,
    commits: int,
    step_at: int | None = None,
    step: float = 1.08,
    noise: float = 0.03,
    rounds: int = 50,
    machines: int = 1,
    names: tuple[str, ...] = NAMES,
) -> list[Path]:
    """`commits` commits, one run each on each of `machines` machines ("Test CPU 9000 #k" when more
    than one); from commit `step_at` on every benchmark is `step` times slower.

    Each run's level carries `noise` (relative) on top of the round-to-round jitter.
    """
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rng = np.random.default_rng(12345)
    paths = []
    for i in range(commits):
        for k in range(machines):
            level = (step if step_at is not None and i >= step_at else 1.0) * (1 + noise * rng.standard_normal())
            machine = (
                MACHINE | {contract.DEVICE_NAME: f"{MACHINE[contract.DEVICE_NAME]} #{k + 1}"} if machines > 1 else None
            )
            document = run_document(
                commit_sha(i),
                start + timedelta(hours=i),
                {n: level for n in names},
                seed=i * machines + k,
                rounds=rounds,
                noise=0.01,
                names=names,
                machine=machine,
            )
            paths.append(write_run(storage, len(paths) + 1, document))
    return paths
