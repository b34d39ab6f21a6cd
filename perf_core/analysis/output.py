"""What the commands write: text and Markdown tables (of rows of text: analysis.view builds them), atomic files and figures.

Files are written atomically (a temporary file in the target folder, then a rename), so a reader
never sees half a figure or report, and an interrupted write leaves the old file in place.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path

from perf_core.errors import UsageError

FIGURE_FORMATS = ("png", "svg")


def check_writable(path: Path) -> None:
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"cannot write {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise UsageError(f"cannot write {path}: folder {folder} is not writable")


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder, then rename: never a half-written file."""
    check_writable(path)
    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", suffix=path.suffix)
        os.close(handle)
        write(Path(temporary))
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None
    finally:
        if temporary and os.path.exists(temporary):
            os.unlink(temporary)


def write_text(path: Path, text: str) -> None:
    write_atomic(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def figure_path(output: Path | None, fmt: str | None, stem: str) -> Path:
    """-o wins; its suffix must be a figure format and agree with --format when both are given."""
    if output is None:
        return Path(f"{stem}.{fmt or FIGURE_FORMATS[0]}")
    suffix = output.suffix.lstrip(".").lower()
    if suffix not in FIGURE_FORMATS:
        raise UsageError(f"-o {output}: the figure format must be .png or .svg")
    if fmt and fmt != suffix:
        raise UsageError(f"-o {output} is a .{suffix} file but --format asks for {fmt}")
    return output


def save_figure(fig, path: Path) -> None:
    fmt = path.suffix.lstrip(".").lower()
    # zlib's fastest level: the 1,920 px trend of 10,000 commits took 0.17 s to encode at the default
    # level 6, and its file came out no larger (1.17 MB, against 1.29 MB).
    options = {"pil_kwargs": {"compress_level": 1}} if fmt == "png" else {}
    write_atomic(path, lambda temporary: fig.savefig(temporary, format=fmt, dpi=120, **options))
    import matplotlib.pyplot as plt  # loaded already: the figure was made with it

    plt.close(fig)  # pyplot keeps every figure until closed: commands run in one process (tests) add up
    print(f"wrote {path}", file=sys.stderr)


# Characters a terminal line cannot show as text: a line break would split the row, an escape
# sequence would drive the terminal. Written as Python escapes ("\\n", "\\x1b").
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def text_cell(value: object) -> str:
    """`value` as one line of terminal text: control characters as Python escapes."""
    return CONTROL.sub(lambda found: found.group().encode("unicode_escape").decode("ascii"), str(value))


def display_width(text: str) -> int:
    """Terminal columns `text` takes: East Asian wide characters two ("注意力": 6), combining marks none."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def table_text(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns aligned by display width (text_cell of each cell); the first left-aligned, the rest right."""
    lines = [[text_cell(cell) for cell in row] for row in [header, *rows]]
    widths = [max(map(display_width, column)) for column in zip(*lines)]
    return "\n".join(
        "  ".join(
            (cell + pad if i == 0 else pad + cell)
            for i, (cell, width) in enumerate(zip(row, widths))
            for pad in [" " * (width - display_width(cell))]
        ).rstrip()
        for row in lines
    )


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    print(table_text(header, rows))


# Characters that are markup in a GitHub Markdown table cell: '|' ends the cell, '<' opens HTML,
# backticks code, '*', '_', '~' emphasis, '\\' escapes, '&' entities, '$' GitHub's math. Each is written backslash-escaped
# (CommonMark escapes any ASCII punctuation; GitHub's tables read '\\|' as a '|' in the cell).
MARKDOWN_SPECIAL = re.compile(r"([\\`*_~<>|&$])")
LINE_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")


def markdown_cell(text: object) -> str:
    """`text` as one Markdown table cell that shows it as it is: markup characters escaped, line
    breaks (which would end the row) as one space. e.g. "moe<top2>|x" -> "moe\\<top2\\>\\|x"."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", LINE_BREAKS.sub(" ", str(text)))


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub Markdown table; every cell escaped (markdown_cell): names come from history files."""
    lines = ["| " + " | ".join(map(markdown_cell, header)) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(markdown_cell, row)) + " |" for row in rows])
