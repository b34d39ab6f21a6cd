"""Saving a run: a file name every file system keeps, checked before any work, and a place to fall back to.

pytest-benchmark saves a run as STORAGE/<machine-id>/NNNN_<name>.json after every benchmark has been
timed, so a name it cannot write (a commit `feature/fast-attn` put a folder into it) used to cost
the whole run. Here a value from the environment becomes a safe name, a name given on the command
line is refused before any work (pytest usage error, exit 4), and if saving fails anyway the run is
written elsewhere and the one line that says so names the file.
"""

from __future__ import annotations

import os
import string
import tempfile
from collections.abc import Callable
from pathlib import Path

from pytest_benchmark.utils import get_current_time, safe_dumps

# Characters a name keeps as they are; pytest-benchmark's own slugify replaces only \ / : * ? < > | and
# space, which leaves newlines, quotes and non-ASCII letters that some file systems and shells refuse.
SAFE_CHARACTERS = frozenset(string.ascii_letters + string.digits + "._+-")
# The longest file name (in bytes) of ext4, XFS, btrfs, APFS and NTFS.
NAME_MAX = 255
# A commit's share of the name: a 40-character hash and a branch name fit; the run's contents keep
# the whole commit whatever its length.
COMMIT_CHARS = 80


def file_safe(text: str, limit: int = COMMIT_CHARS) -> str:
    """`text` as part of a file name: every character outside A-Z a-z 0-9 . _ + - becomes `_`, cut to
    `limit` characters ("feature/fast-attn" -> "feature_fast-attn")."""
    return "".join(c if c in SAFE_CHARACTERS else "_" for c in text)[:limit] or "_"


def name_problem(name: str) -> str | None:
    """Why NNNN_<name>.json cannot be a file in any storage folder, or None when it can."""
    unsafe = sorted({c for c in name if c in "/\\" or not c.isprintable()})
    if unsafe:
        return f"it holds {', '.join(map(repr, unsafe))}, which cannot be part of a file name"
    try:
        size = len(os.fsencode(f"0000_{name}.json"))
    except UnicodeEncodeError:
        return "it cannot be encoded as a file name on this system"
    if size > NAME_MAX:
        return f"the file name would be {size} bytes, over the {NAME_MAX} a file system allows"
    return None


def folder_problem(folder: Path) -> str | None:
    """Why runs cannot be saved under `folder` (pytest-benchmark creates it if it can), or None."""
    existing = next(parent for parent in (folder, *folder.parents) if parent.exists())
    if not existing.is_dir():
        return f"{existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def write_aside(output_json: dict, folders: tuple[Path, ...]) -> Path:
    """Write the run to the first of `folders` that takes it, atomically, under a name that is safe
    by construction; raises OSError when none does."""
    name = f"perf_core_unsaved_{get_current_time()}_{os.getpid()}.json"
    error: OSError | None = None
    for folder in folders:
        try:
            handle, temporary = tempfile.mkstemp(prefix=".perf_core_", suffix=".json", dir=folder)
            with os.fdopen(handle, "wb") as file:
                file.write(safe_dumps(output_json, ensure_ascii=True, indent=4).encode())
            os.replace(temporary, folder / name)
            return folder / name
        except OSError as failure:
            error = failure
    raise error or OSError("no folder to write the run to")


def never_lost(save: Callable[[dict, str], None], report: Callable[[str], None]) -> Callable[[dict, str], None]:
    """pytest-benchmark's storage.save, which on any failure writes the run aside (the working folder,
    else the system's temporary folder) and reports one line naming where."""

    def save_or_write_aside(output_json: dict, name: str) -> None:
        try:
            save(output_json, name)
        except Exception as error:  # noqa: BLE001 - whatever failed, the timed run must survive it
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            aside = write_aside(output_json, (Path.cwd(), Path(tempfile.gettempdir())))
            report(f"perf_core: the run could not be saved in the storage ({reason}); it is saved in {aside}")

    return save_or_write_aside
