"""The exit codes and the one exception type for failures a user can act on."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from pathlib import Path

PASSED = 0
CHECK_FAILED = 1
USAGE_ERROR = 2
UNEXPECTED_ERROR = 3
INTERRUPTED = 130
TERMINATED = 143

ISSUES_URL = "https://github.com/migration-guard/migration-guard/issues"


class FatalError(Exception):
    """A usage or environment problem: the message says what is wrong and what to do (exit 2)."""

    exit_code = USAGE_ERROR


class ProjectError(FatalError):
    """The project's own migrations or settings are at fault (exit 1)."""

    exit_code = CHECK_FAILED


def location(exc: BaseException, within: Path | None = None,
             keep: Callable[[Path], bool] | None = None) -> str:
    """``file:line`` of the innermost frame (inside ``within``, and of a file ``keep`` keeps,
    if given), or of a SyntaxError."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith("<")
        and (within is None or Path(f.filename).resolve().is_relative_to(within))
        and (keep is None or keep(Path(f.filename)))
    ]
    if not frames:
        return ""
    return f"{frames[-1].filename}:{frames[-1].lineno}"
