"""One error type carrying its exit code, and the validation helpers the plugin and the CLI share.

`perf_core.cli.main` is the one place that turns a PerfCoreError into a process exit; the pytest
plugin turns it into pytest's usage error. Messages are one line and name the bad value.
"""

from __future__ import annotations

from collections.abc import Iterable

EXIT_OK, EXIT_REGRESSION, EXIT_USAGE = 0, 1, 2


class PerfCoreError(ValueError):
    """A problem the user can act on; one line, and the exit code it ends the process with."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(PerfCoreError):
    """Bad arguments or options (exit 2)."""


class HistoryError(PerfCoreError):
    """Bad or missing history; the message names the file (exit 2)."""


class Interrupted(BaseException):
    """SIGTERM or SIGHUP, raised where the signal lands so that every `finally` runs (as for Ctrl-C);
    the process then exits 128 + the signal number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def is_count(value: object) -> bool:
    """A positive integer value (Python's True and False are ints, not counts)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def split_csv(option: str, raw: str) -> list[str]:
    """ "a, b" -> ["a", "b"]; an empty item ("16,,32") is refused rather than silently dropped."""
    items = [item.strip() for item in raw.split(",")]
    if not raw.strip():
        raise UsageError(f"{option}: needs at least one value")
    if "" in items:
        raise UsageError(f"{option}: {raw!r} has an empty item")
    return items


def positive_int(option: str, text: str) -> int:
    text = text.strip()
    if not text.isascii() or not text.isdigit() or int(text) < 1:
        raise UsageError(f"{option}: {text!r} is not a positive integer")
    return int(text)


def one_of(what: str, value: str, allowed: Iterable[str], option: str = "") -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        prefix = f"{option}: " if option else ""
        raise UsageError(f"{prefix}unknown {what} {value!r}; choose from {', '.join(allowed)}")
    return value


def choices(option: str, raw: str, allowed: Iterable[str]) -> tuple[str, ...]:
    """Comma-separated values, each one of `allowed`; duplicates dropped, order kept."""
    allowed = tuple(allowed)
    return tuple(dict.fromkeys(one_of("value", value, allowed, option) for value in split_csv(option, raw)))


def token_counts(option: str, raw: str) -> tuple[int, ...]:
    return tuple(sorted({positive_int(option, item) for item in split_csv(option, raw)}))


def fraction(option: str, text: str, low: float = 0.0, high: float = 1.0) -> float:
    """A number in [low, high) for argparse's `type=` (thresholds, alpha, minimum change)."""
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{option}: {text!r} is not a number") from None
    if not low <= value < high:
        raise UsageError(f"{option}: {text!r} must be at least {low:g} and below {high:g}")
    return value
