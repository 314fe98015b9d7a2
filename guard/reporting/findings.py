"""How findings read: one line each (kind, table, lock, time, what happened), the operation and
statement under it, then the hint; shared by the text report, progress, JUnit and GitHub."""

from __future__ import annotations

from collections.abc import Sequence

from guard.reporting.model import Found, Report
from guard.safety.policy import failing
from guard.types import Finding, LockHeld, StepResult

_WHAT = {"forward": "forward", "backward": "backward (the rollback's cost)"}


def headline(finding: Finding) -> str:
    """``rewrite shop_item (ACCESS EXCLUSIVE, 0.84 s): rewrote shop_item ...``; with an
    estimate, ``rewrite app_order (ACCESS EXCLUSIVE): rewrites app_order (41.2M rows, ...):
    about 3-5 min of blocked reads and writes at this server's measured 95 MB/s``."""
    lock = f"{finding.lock_mode}, " if finding.lock_mode else ""
    if finding.estimate is not None:
        return f"{finding.kind} {finding.table} ({lock.rstrip(', ')}): {finding.estimate.summary}"
    return f"{finding.kind} {finding.table} ({lock}{finding.seconds:.2f} s): {finding.detail}"


def title(report: Report, found: Found) -> str:
    alias, key, step, finding = found
    return f"{report.name(key, alias)}: {_WHAT.get(step.step, step.step)}: {headline(finding)}"


def where(finding: Finding) -> str:
    operation = f"operation {finding.operation + 1}: " if finding.operation is not None else ""
    return f"{operation}{' '.join(finding.statement.split())}"


FOLD = 5
"""Findings that do not fail the run, one line each, before the rest are folded to a count."""


def text_lines(report: Report) -> list[str]:
    """The findings section of the text report: each failure with its statement and hint;
    then those that do not fail the run, one line each, the longest first, folded to a count
    after :data:`FOLD` (``report.verbose``: each in full)."""
    lines: list[str] = []
    found = report.findings()
    for item in [f for f in found if report.fails(f)]:
        over = (f" (over --max-blocking-seconds {report.budget:g})"
                if report.budget is not None and item[3].estimate is not None else "")
        lines.append(f"FAILED {title(report, item)}{over}")
        lines.append(f"  file: {report.files.get(item[1], '?')}")
        lines += _said(item)
    others = sorted((f for f in found if not report.fails(f)), key=_longest)
    for index, item in enumerate(others):
        key = item[1]
        if index == FOLD and not report.verbose:
            lines.append(f"warning: {len(others) - FOLD} more finding(s) that do not fail the "
                         "run (-v shows each with its statement and hint; so does "
                         "--format json)")
            break
        if key in report.accepted and item[2].step == "forward":
            lines.append(f"accepted ({report.accepted[key]}) {title(report, item)}")
        else:
            lines.append(f"warning: {title(report, item)}")
        if report.verbose:
            lines += _said(item)
    if found:
        failing = sum(1 for item in found if report.fails(item))
        lines.append(
            f"safety: {len(found)} finding(s) ({counts(found)}), {failing} failing"
            + (f"; those estimated over --max-blocking-seconds {report.budget:g} fail the run"
               if report.budget is not None else "" if report.fail_on else
               "; --fail-on KIND (or fail_on in [tool.migration-guard]) makes them fail the run"))
    return lines


def _longest(item: Found) -> float:
    """The sort key of the longest blocks first: the estimate's high end, else the time here."""
    finding = item[3]
    return -(finding.estimate.seconds[1] if finding.estimate else finding.seconds)


def _said(item: Found) -> list[str]:
    return [f"  statement: {where(item[3])}", f"  hint: {item[3].hint}"]


def step_lines(step: StepResult, *, verbose: bool, fail_on: frozenset[str] = frozenset(),
               accepted: bool = False, budget: float | None = None) -> list[str]:
    """Under a step's progress line: its findings that fail the run (the report lists the
    others); with ``-v``, every finding and every lock it took."""
    lines = [headline(f) for f in step.findings
             if verbose or (not accepted and failing(f, step.step, fail_on, budget))]
    if verbose and step.locks:
        lines.append("locks:")
        lines += [f"  {lock_line(lock)}" for lock in step.locks]
    return lines


def lock_line(lock: LockHeld) -> str:
    operation = f"operation {lock.operation + 1}" if lock.operation is not None else "the end"
    new = " (created here)" if lock.new else ""
    statement = " ".join(lock.statement.split())
    if len(statement) > 100:
        statement = statement[:97] + "..."
    return (f"{lock.table}{new}: {lock.lock_mode} held {lock.seconds:.3f} s, taken by "
            f"{operation}: {statement}")


def counts(found: Sequence[Found]) -> str:
    """``2 rewrite, 1 scan``."""
    kinds: dict[str, int] = {}
    for item in found:
        kinds[item[3].kind] = kinds.get(item[3].kind, 0) + 1
    return ", ".join(f"{n} {kind}" for kind, n in kinds.items())
