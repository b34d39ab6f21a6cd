"""The `perf-core` command: plot, trend, compare, explain, report, index, export and ab over the suite's runs.

Only the entry point lives here: the parser, assembled from the command modules of perf_core.commands
(each declares its own arguments), and the one place where a PerfCoreError becomes a process exit.
Exit codes (perf_core.errors): 0 fine, 1 a regression was found (compare, ab), 2 bad usage or bad
input (one line on stderr, no traceback). Nothing imports this.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import signal
import sys
from collections.abc import Sequence

from perf_core.commands import ab, compare, explain, export, index, options, plot, report, trend
from perf_core.errors import Interrupted, PerfCoreError, UsageError

COMMANDS = (plot, trend, compare, explain, report, index, export, ab)  # in --help's order


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + message
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# Built once a process (parsing leaves it as it was): building declares every command's options, 3.5 ms
# here, 400 times what a parse costs; test_fuzz's 2000 commands in one process spent 8 s of 28 on it.
@functools.cache
def build_parser() -> argparse.ArgumentParser:
    """The `perf-core` parser, every command's options declared; built once a process and shared, so
    callers must not change it (each parse returns a fresh Namespace)."""
    parser = Parser(prog="perf-core", description="Per-token latency history, trends and the PR performance gate.")
    subcommands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        command.add_arguments(subcommands)
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line: `run` (the command's run) and one attribute per option it takes."""
    return build_parser().parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """The one place where errors become exit codes.

    A reader that goes away early (`perf-core compare A B | head -1`) ends the command quietly: the
    exit code it had when its output was all written and only the last flush failed, else 141
    (128 + SIGPIPE, what a shell reports for a command a closed pipe stopped); never 1, which reads
    as a regression.
    """
    code = None
    try:
        values = options.grouped(vars(parse_args(argv)))
        del values["command"]
        code = values.pop("run")(**values)
        sys.stdout.flush()  # output that fit the buffer meets the closed pipe here, not at exit
        return code
    except BrokenPipeError:
        # Python's "Note on SIGPIPE" (signal module docs): point stdout at devnull, so that the flush
        # at exit finds no pipe to fail on and prints no second error.
        with contextlib.suppress(OSError, ValueError):  # stdout without a descriptor (a test's capture)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE if code is None else code
    except PerfCoreError as error:
        print(f"perf-core: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("perf-core: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except Interrupted as stop:
        print(f"perf-core: stopped by {signal.Signals(stop.signum).name}", file=sys.stderr)
        return 128 + stop.signum


if __name__ == "__main__":
    sys.exit(main())
