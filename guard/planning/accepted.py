"""Known failures a team accepts: ``accept`` in ``[tool.migration-guard]``, or a
``# migration-guard: accept <reason>`` comment in the migration file. Found before any database
work; their failures are reported, not counted."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from guard.types import MigrationKey, label

_MARKER = re.compile(r"^[ \t]*#[ \t]*migration-guard:[ \t]*accept\b[ \t:]*(.*)$", re.MULTILINE)


def accepted(order: Sequence[MigrationKey], files: Mapping[MigrationKey, str],
             configured: Mapping[str, str]) -> dict[MigrationKey, str]:
    """The migrations of ``order`` whose failures are accepted, with the reason (``files``:
    each one's file, to read the marker in)."""
    found: dict[MigrationKey, str] = {}
    for key in order:
        if label(key) in configured:
            found[key] = configured[label(key)] or "accept in [tool.migration-guard]"
            continue
        source = files.get(key)
        try:
            text = Path(source).read_text(encoding="utf-8") if source else ""
        except (OSError, UnicodeDecodeError):
            continue
        match = _MARKER.search(text)
        if match:
            found[key] = match.group(1).strip() or "marked in the migration file"
    return found
