"""Which modules `perf-core compare` passes through from the command line to its verdict (issue 19).

A first-call trace: `sys.setprofile` records each perf_core function's first call from compare's entry
on (the parser's assembly left out), consecutive calls in one module merged; a step back into a module
already left counts as a return. Run on a synthetic history of 2 commits x 5 runs (head's
attention-compiled-16 1.2x slower), so that compare tests the runs themselves:

    python scripts/call_trace.py

Prints `modules N | steps N | returns N` and the path. For an older tree, run it with that tree first on
PYTHONPATH and `--entry MODULE:FUNCTION` naming its compare (6b616db: perf_core.analysis.commands:compare).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from perf_core import cli
from perf_core.analysis.synthetic import commit_sha, run_document, write_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--entry", default="perf_core.commands.compare:run", help="MODULE:FUNCTION where tracing starts"
    )
    module, function = parser.parse_args().entry.split(":")
    storage = Path(tempfile.mkdtemp(prefix="call-trace-"))
    for number, (commit, run) in enumerate((c, r) for c in range(2) for r in range(5)):
        factors = {"attention-compiled-16": 1.2 if commit else 1.0}
        write_run(
            storage,
            number,
            run_document(commit_sha(commit), datetime(2026, 1, 1, commit, run), factors, seed=10 * commit + run),
        )
    path, seen, started = ["cli"], set(), [False]

    def record(frame, event, arg) -> None:
        name = frame.f_globals.get("__name__", "")
        if event != "call" or not name.startswith("perf_core"):
            return
        if not started[0] and not (name == module and frame.f_code.co_name == function):
            return
        started[0] = True
        key = (frame.f_code.co_filename, frame.f_code.co_firstlineno)
        if key not in seen:
            seen.add(key)
            if path[-1] != name.removeprefix("perf_core."):
                path.append(name.removeprefix("perf_core."))

    sys.setprofile(record)
    with contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["compare", commit_sha(0)[:8], commit_sha(1)[:8], "--storage", str(storage)])
    sys.setprofile(None)
    returns = sum(step in path[:i] for i, step in enumerate(path))
    print(f"exit {code} | modules {len(set(path))} | steps {len(path)} | returns {returns}")
    print(" -> ".join(path))


if __name__ == "__main__":
    main()
