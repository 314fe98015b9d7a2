"""Which findings fail the run: ``fail_on`` (:mod:`guard.safety.config` reads it) applied, and
the time budget where one is set.

Without a budget, a forward finding fails when its kind is given (``rewrite``); a backward one,
the rollback's cost, only when given as ``backward:rewrite``. With ``max_blocking_seconds`` (which
needs stats), the findings those kinds name (every forward one when ``fail_on`` names none) fail
only where the high end of their estimate is over the budget; one without an estimate fails, as
it would without a budget.
"""

from __future__ import annotations

from guard.types import Finding


def _listed(kind: str, step: str, given: frozenset[str]) -> bool:
    if step == "forward":
        return kind in given
    return step == "backward" and f"backward:{kind}" in given


def failing(finding: Finding, step: str, given: frozenset[str],
            budget: float | None = None) -> bool:
    """Whether ``finding`` on ``step`` fails the run under ``fail_on`` and the budget."""
    if budget is None:
        return _listed(finding.kind, step, given)
    if not (_listed(finding.kind, step, given) if given else step == "forward"):
        return False
    return finding.estimate is None or finding.estimate.seconds[1] > budget
