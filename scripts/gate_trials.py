"""Measure the gate: false alarms (same code both sides) and power (a known slowdown), many trials.

Each trial is one full `perf-core ab` in a scratch clone of this repository. With --slowdown F,
the clone gets one extra commit: tests/fixtures/slow_attention.py appended to the kernel registry,
its extra work set to F of the attention block's projections; base is the commit before it. With
--widen F, the extra commit appends tests/fixtures/wide_attention.py instead: the attention's QKV
matmul streams F x 4 d_model more weight rows, no extra kernel (about F more device time where the
block is bound by its weights, as at 16 tokens on a GPU). With neither, both sides are the same commit.

    python scripts/gate_trials.py --trials 10 --slowdown 0
    python scripts/gate_trials.py --trials 10 --slowdown 0.10
    python scripts/gate_trials.py --trials 3 --widen 0.08 -- --metric device --kernel attention --tokens 16
    python scripts/gate_trials.py --trials 3 --keep /tmp/aa   # each trial's runs kept, for report --ab
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "slow_attention.py"  # data files: appended, not imported
WIDE_FIXTURE = ROOT / "tests" / "fixtures" / "wide_attention.py"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def scratch_clone(folder: Path, slowdown: float, widen: float) -> tuple[Path, str, str]:
    clone = folder / "repo"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    if slowdown == 0 and widen == 0:
        return clone, "HEAD", "HEAD"
    kernels = clone / "perf_core" / "measure" / "kernels.py"
    if widen:
        fixture = re.sub(r"WIDEN = [0-9.]+", f"WIDEN = {widen}", WIDE_FIXTURE.read_text())
    else:
        fixture = re.sub(r"SLOW_FRACTION = [0-9.]+", f"SLOW_FRACTION = {slowdown}", FIXTURE.read_text())
    kernels.write_text(kernels.read_text() + "\n" + fixture)
    git(
        clone,
        "-c",
        "user.name=gate trials",
        "-c",
        "user.email=trials@localhost",
        "commit",
        "-qam",
        f"slow attention {slowdown or f'wider by {widen}'}",
    )
    return clone, "HEAD~1", "HEAD"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--slowdown", type=float, default=0.0, help="extra attention work, fraction (0 = same code)")
    parser.add_argument(
        "--widen", type=float, default=0.0, help="instead: attention's QKV weights read F x 4 d_model more rows"
    )
    parser.add_argument("--keep", type=Path, help="copy each trial's runs (ab --out) to KEEP/trialN")
    parser.add_argument("ab_args", nargs=argparse.REMAINDER, help="extra arguments for perf-core ab, after --")
    args = parser.parse_args()
    extra = [a for a in args.ab_args if a != "--"]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        clone, base, head = scratch_clone(Path(folder), args.slowdown, args.widen)
        for trial in range(1, args.trials + 1):
            out = Path(folder) / f"trial{trial}"
            start = time.monotonic()
            command = [sys.executable, "-m", "perf_core.cli", "ab", base, head, "--repo", str(clone), "--out", str(out)]
            command.append("--json")
            result = subprocess.run(command + extra, capture_output=True, text=True, cwd=clone)
            seconds = time.monotonic() - start
            if args.keep and out.is_dir():
                shutil.copytree(out, args.keep / out.name, dirs_exist_ok=True)
            if result.returncode not in (0, 1):
                print(result.stderr, file=sys.stderr)
                return 2
            verdicts = json.loads(result.stdout)
            flagged = [row["name"] for row in verdicts if row["verdict"] == "regression"]
            ratios = {row["name"]: row["ratio"] for row in verdicts}
            said = [line[4:] for line in result.stderr.splitlines() if line.startswith("ab: ")][1:]  # stop, phases
            rows.append(
                {
                    "trial": trial,
                    "exit": result.returncode,
                    "seconds": seconds,
                    "flagged": flagged,
                    "ratios": ratios,
                    "said": said,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    flagged_runs = sum(bool(row["flagged"]) for row in rows)
    print(
        f"\n{f'widen {args.widen}' if args.widen else f'slowdown {args.slowdown:.0%}'}: {flagged_runs}/{len(rows)} trials flagged a regression; "
        f"wall per trial {min(r['seconds'] for r in rows):.0f}-{max(r['seconds'] for r in rows):.0f} s"
    )
    names = sorted({name for row in rows for name in row["ratios"]})
    for name in names:
        ratios = [row["ratios"][name] for row in rows if name in row["ratios"]]
        hits = sum(name in row["flagged"] for row in rows)
        print(f"  {name:<26} flagged {hits}/{len(rows)}  head/base median ratio {sorted(ratios)[len(ratios) // 2]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
