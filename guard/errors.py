"""The exit codes and the one exception type for failures a user can act on."""

from __future__ import annotations

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
