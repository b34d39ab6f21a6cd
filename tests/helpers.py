"""What several test files share: running the CLI in-process, and a fingerprint of a history folder."""

import hashlib
from pathlib import Path

from perf_core.cli import main


def perf_core(capsys, *argv) -> tuple[int, str, str]:
    """`perf-core ARGV` in this process: its exit code, stdout and stderr."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(storage: Path) -> dict[str, str]:
    """Every file under `storage` and its SHA-256: equal before and after means nothing was changed."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(storage.rglob("*")) if p.is_file()}
