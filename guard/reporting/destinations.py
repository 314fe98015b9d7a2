"""Where the reports go, as ``--format FORMAT[=FILE]`` and ``--output`` say: checked when the
options are read, so that a report that could not be written is exit 2 before any database work.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from guard.errors import FatalError

Format = Literal["text", "json", "junit", "sarif", "gitlab", "markdown"]
FORMATS: tuple[Format, ...] = ("text", "json", "junit", "sarif", "gitlab", "markdown")
ReportTarget = tuple[str, str | None]
"""A report to write: (format, file), the file None for stdout."""


def _writable(given: str, path: Path) -> None:
    """Exit 2 unless ``path`` can be written: its folder exists and may be written, and it is
    not a folder itself."""
    folder = path.parent
    shown = given if given.startswith("--") else f"--format {given}"
    if path.is_dir():
        raise FatalError(f"{shown}: {path} is a folder; give a file in it.")
    if not folder.is_dir():
        raise FatalError(f"{shown}: the folder {folder} does not exist; create it first.")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise FatalError(f"{shown}: {path} cannot be written (permission denied).")


def parse_formats(
    values: Sequence[str], output: str | None, here: Path
) -> tuple[ReportTarget, ...]:
    """``--format`` values (``json``, ``junit=report.xml``) and ``--output`` into the reports to
    write. Text stays on stdout unless a format takes stdout or text goes to a file; at most one
    report goes to stdout, and ``--output`` sends that one to a file instead."""
    reports: list[tuple[str, str | None]] = []
    for value in values or ["text"]:
        fmt, has_file, file = value.partition("=")
        fmt = fmt.strip().lower()
        if fmt not in FORMATS:
            raise FatalError(
                f"--format {value}: unknown format {fmt!r}; use {', '.join(FORMATS)}, each "
                "optionally with =FILE (e.g. --format junit=report.xml)."
            )
        if has_file and not file.strip():
            raise FatalError(f"--format {value}: give a file after '=' (e.g. {fmt}=report).")
        if has_file:
            _writable(value, here / file)
        reports.append((fmt, str(here / file) if has_file else None))
    if all(file is not None for _, file in reports) and "text" not in {f for f, _ in reports}:
        reports.insert(0, ("text", None))
    on_stdout = [fmt for fmt, file in reports if file is None]
    if len(on_stdout) > 1:
        raise FatalError(
            f"--format: {' and '.join(on_stdout)} would both go to stdout; only one report can. "
            f"Give the others a file, e.g. --format {on_stdout[1]}=report.{on_stdout[1]}."
        )
    if output:
        if not on_stdout:
            raise FatalError(
                f"--output {output}: every --format already names its file; --output is the "
                "file of the report that would go to stdout."
            )
        _writable(f"--output {output}", here / output)
        reports = [(fmt, file or str(here / output)) for fmt, file in reports]
    files = [file for _, file in reports if file is not None]
    repeated = sorted({file for file in files if files.count(file) > 1})
    if repeated:
        raise FatalError(f"--format: two reports would go to {repeated[0]}; give each its own.")
    return tuple(reports)
