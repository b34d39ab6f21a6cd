"""Choose the compiled core's GPU flags by measurement: eager vs several torch.compile set-ups.

For each kernel and token count of the GPU preset, every candidate is prepared the way the suite
prepares it (perf_core.measure.core.prepare: compiled, checked against eager, warmed) and timed two ways:
  steady  - CUDA events around 200 back-to-back calls (what pytest-benchmark's synchronised
            round measures), median of 5 repeats;
  latency - a synchronise before and after each single call (perf_core.measure.clock.isolated_latency_s).
Rows are printed as JSON lines as they come (and written to $OUT/gpu_flags.jsonl when OUT is
set), then a table of steady-state time per call and the ratio to eager and to the floor.

    python scripts/gpu_flags.py --candidates default,default+graph,reduce-overhead
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from perf_core.contract import TOKEN_COUNTS
from perf_core.measure import clock, core
from perf_core.measure.core import CompileFlags
from perf_core.measure.workload import PRESETS

CANDIDATES = {
    "default": CompileFlags(),
    "default+graph": CompileFlags(cuda_graph=True),
    "reduce-overhead": CompileFlags(mode="reduce-overhead"),
    "max-autotune-no-cudagraphs": CompileFlags(mode="max-autotune-no-cudagraphs"),
    "max-autotune-no-cudagraphs+graph": CompileFlags(mode="max-autotune-no-cudagraphs", cuda_graph=True),
}


def steady_s(fn, calls: int = 200, repeats: int = 5) -> float:
    """Seconds per call back to back, on the device clock (the package's one event timer)."""
    return clock.device_time_s(fn, samples=repeats, calls_per_sample=calls)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--kernels", default="attention,matmul")
    parser.add_argument("--tokens", default=",".join(map(str, TOKEN_COUNTS)))
    parser.add_argument("--preset", default="llama-7b")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_flags: needs CUDA", file=sys.stderr)
        return 2
    out = Path(os.environ["OUT"]) / "gpu_flags.jsonl" if os.environ.get("OUT") else None
    peaks = clock.measure_peaks("cuda", PRESETS[args.preset].dtype)
    card = torch.cuda.get_device_name()
    print(json.dumps({"card": card, "torch": torch.__version__, **peaks.as_dict()}), flush=True)
    rows = []
    names = ["eager", *args.candidates.split(",")]
    for name in names:
        for kernel in args.kernels.split(","):
            for n in map(int, args.tokens.split(",")):
                workload = PRESETS[args.preset].workload(kernel, n, "cuda")
                try:
                    call = core.prepare(workload, "eager" if name == "eager" else "compiled", CANDIDATES.get(name))
                    row = {"candidate": name, "kernel": kernel, "n_tokens": n, "compile_s": call.compile_s}
                    row["steady_s"] = steady_s(call.fn)
                    row["latency_s"] = clock.isolated_latency_s(call.fn, torch.cuda.synchronize)
                except Exception as error:  # noqa: BLE001 - one failing candidate must not end the survey
                    row = {
                        "candidate": name,
                        "kernel": kernel,
                        "n_tokens": n,
                        "error": f"{type(error).__name__}: {error}"[:300],
                    }
                row["floor_s"] = workload.floor_s(peaks.flops_per_s, peaks.bytes_per_s)
                rows.append(row)
                line = json.dumps(row)
                print(line, flush=True)
                if out:
                    with out.open("a") as handle:
                        handle.write(line + "\n")
    eager = {(r["kernel"], r["n_tokens"]): r["steady_s"] for r in rows if r["candidate"] == "eager"}
    print(f"\n{card}, torch {torch.__version__}: steady-state us per call (x eager, x floor)")
    for kernel in args.kernels.split(","):
        print(f"{kernel:<34}" + "".join(f"{n:>22}" for n in map(int, args.tokens.split(","))))
        for name in names:
            cells = []
            for n in map(int, args.tokens.split(",")):
                row = next(r for r in rows if (r["candidate"], r["kernel"], r["n_tokens"]) == (name, kernel, n))
                if "error" in row:
                    cells.append(f"{'error':>22}")
                    continue
                ratio, floor = row["steady_s"] / eager[(kernel, n)], row["steady_s"] / row["floor_s"]
                cells.append(f"{row['steady_s'] * 1e6:>9.1f} ({ratio:.2f}, {floor:.2f})")
            print(f"  {name:<32}" + "".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
