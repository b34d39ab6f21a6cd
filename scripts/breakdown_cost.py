"""What breakdowns cost the suite: the default suite with and without them, interleaved, and the
seconds spent inside them, timed in the process (the figure that survives a loaded machine).

Runs `pytest --benchmark-only` with breakdowns on, off, off, on (each into its own storage under
OUT) and prints each run's wall time, the time inside plugin.breakdown_info, and the saved run's
size with and without the breakdown fields. Warm inductor's cache for both modes first (one run
each): the two modes compile different code on the CPU (docs/breakdown.md).

    python scripts/breakdown_cost.py --out /tmp/breakdown_cost [pytest options ...]

This file is also the pytest plugin that does the in-process timing (`-p breakdown_cost`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

KEYS = ("breakdown", "breakdown_note", "code_fingerprint", "code_kernels")
SPENT = [0.0, 0]


def pytest_configure(config) -> None:
    from perf_core.measure import plugin

    real = plugin.breakdown_info

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            SPENT[0] += time.perf_counter() - start
            SPENT[1] += 1

    plugin.breakdown_info = timed


def pytest_sessionfinish(session) -> None:
    report = os.environ.get("BREAKDOWN_COST_REPORT")
    if report:
        Path(report).write_text(json.dumps({"seconds": SPENT[0], "benchmarks": SPENT[1]}))


def sizes(storage: Path) -> tuple[int, int]:
    """The saved run's size as pytest-benchmark writes it (indent 4), and without the breakdown fields."""
    (path,) = storage.glob("*/*.json")
    document = json.loads(path.read_text())
    full = len(json.dumps(document, indent=4))
    for bench in document["benchmarks"]:
        for key in KEYS:
            bench["extra_info"].pop(key, None)
    return full, len(json.dumps(document, indent=4))


def main(argv: list[str]) -> None:
    out = Path(argv[argv.index("--out") + 1]) if "--out" in argv else Path("breakdown_cost")
    extra = [a for i, a in enumerate(argv) if a != "--out" and (i == 0 or argv[i - 1] != "--out")]
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parent), "TORCHINDUCTOR_COMPILE_THREADS": "1"}
    for label, flag in (
        ("on1", "--breakdown"),
        ("off1", "--no-breakdown"),
        ("off2", "--no-breakdown"),
        ("on2", "--breakdown"),
    ):
        storage, report = out / label, out / f"{label}.json"
        env["BREAKDOWN_COST_REPORT"] = str(report)
        start = time.perf_counter()
        command = [sys.executable, "-m", "pytest", "--benchmark-only", "-q", "-p", "breakdown_cost", flag]
        subprocess.run([*command, f"--benchmark-storage={storage}", *extra], env=env, check=True, capture_output=True)
        wall = time.perf_counter() - start
        inside = json.loads(report.read_text())
        full, without = sizes(storage)
        print(
            f"{label}: wall {wall:.1f} s, inside breakdowns {inside['seconds']:.2f} s ({inside['benchmarks']} benchmarks),"
            f" saved {full} B, without breakdown fields {without} B"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
