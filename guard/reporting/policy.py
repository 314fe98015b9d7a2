"""Which findings fail the run: ``fail_on`` (:mod:`guard.safetyconfig` reads it) applied.

A forward finding fails when its kind is given (``rewrite``); a backward one, the rollback's
cost, only when given as ``backward:rewrite``.
"""

from __future__ import annotations


def failing(kind: str, step: str, given: frozenset[str]) -> bool:
    """Whether a finding of ``kind`` on ``step`` fails the run under ``fail_on``."""
    if step == "forward":
        return kind in given
    return step == "backward" and f"backward:{kind}" in given
