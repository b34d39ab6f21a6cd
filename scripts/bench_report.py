"""Time `perf-core report` at scale and load its page in headless Chromium.

Builds a synthetic history (perf_core.analysis.synthetic: runs shaped like the suite's, raw rounds
included), runs `perf-core report` as a user would, in a fresh process, then opens the machine page
in Debian's chromium through Playwright and waits until every chart has drawn.

    python scripts/bench_report.py --runs 1000 --rounds 400
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from perf_core.analysis.synthetic import write_history


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=400, help="raw rounds per benchmark (the suite saves ~100-1000)")
    parser.add_argument("--repeat", type=int, default=3, help="times the report is built")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        storage, site = Path(folder) / "history", Path(folder) / "site"
        paths = write_history(storage, args.runs, step_at=args.runs // 2, rounds=args.rounds)
        size = sum(p.stat().st_size for p in paths) / 1e6
        print(f"history: {len(paths)} runs x 24 benchmarks, {args.rounds} rounds each, {size:.0f} MB")
        command = [sys.executable, "-m", "perf_core.cli", "report", "--storage", str(storage), "-o", str(site)]
        walls = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            walls.append(time.perf_counter() - start)
        print("perf-core report: " + ", ".join(f"{w:.2f}" for w in walls) + f" s wall (best {min(walls):.2f} s)")
        for page in sorted(site.iterdir()):
            print(f"  {page.name}: {page.stat().st_size / 1e6:.2f} MB")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            for attempt in range(3):
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                start = time.perf_counter()
                page.goto((site / "machine-1.html").as_uri(), wait_until="load")
                page.wait_for_function(
                    "window.views && Object.keys(window.views).length === document.querySelectorAll('.chart').length"
                )
                charts = page.locator(".chart canvas").count()
                print(f"  load {attempt + 1}: {time.perf_counter() - start:.2f} s to draw all {charts} charts")
                page.close()
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
