"""The report for people: failures with their file and hint, warnings, one summary line.

The phrases here (why a migration was selected, how to fix an irreversible operation, what a
failed step says under its error) are shared by the other writers.
"""

from __future__ import annotations

from typing import TextIO

from guard.planning.reversibility import Irreversible
from guard.reporting import findings
from guard.reporting.model import Report
from guard.types import MigrationKey, Selected, StepResult, label

CHANGED_IN = {"branch": "changed on this branch", "push": "changed in the pushed commits"}
"""Where a changed migration came from, by run mode; given on the command line otherwise."""


def describe_reason(item: Selected, last: int, mode: str = "paths") -> str:
    if item.reason == "changed":
        return CHANGED_IN.get(mode, "given")
    if item.reason == "last-N":
        return f"last {last} of its app"
    return "depends on " + ", ".join(label(k) for k in item.because_of)


def irreversible_hint(irreversible: Irreversible) -> str:
    """How to fix an irreversible operation, with the operation's own names filled in."""
    accept = (f'or accept it with allow_irreversible = ["{label(irreversible.migration)}"] in '
              "[tool.migration-guard].")
    if not irreversible.fix:
        return f"Give it a reverse that undoes it, {accept}"
    return (
        f"If doing nothing on rollback is right, use `{irreversible.fix}`; else give it a "
        f"reverse that undoes it, {accept}"
    )


def details(step: StepResult) -> list[str]:
    """What a failed step's report says under its error: differences, undo SQL, hint."""
    lines = [f"- {d}" for d in step.schema_diff]
    lines += [f"undo: {sql}" for sql in step.undo_sql]
    if step.hint:
        lines.append(f"hint: {step.hint}")
    return lines


def write_text(report: Report, out: TextIO) -> None:
    lines: list[str] = []
    for irreversible, accepted in report.irreversible:
        if accepted:
            lines.append(f"accepted (allow_irreversible): {irreversible.describe()}")
        else:
            key = irreversible.migration
            lines += [
                f"FAILED {label(key)}: {irreversible.describe()}",
                f"  file: {report.files.get(key, '?')}",
                f"  hint: {irreversible_hint(irreversible)}",
            ]
    for alias, error in report.base_errors():
        lines.append(f"FAILED base{f' on {alias}' if report.several else ''}: {error}")
    for alias, key, step in report.accepted_failures():
        lines.append(f"skipped (accepted: {report.accepted[key]}) {report.name(key, alias)}: "
                     f"{step.step}: {step.error}")
    for alias, key, step in report.failures():
        lines.append(f"FAILED {report.name(key, alias)}: {step.step}: {step.error}")
        lines.append(f"  file: {report.files.get(key, '?')}")
        lines += [f"  {line}" for line in details(step)]
    lines += findings.text_lines(report)
    for alias, key, lost in report.rows_lost():
        lines.append(f"warning: {report.name(key, alias)}: backward: {lost}")
    for key, why in report.not_run.items():
        lines.append(f"warning: {label(key)} ran on no database: {why}")
    for line in report.not_tested:
        lines.append(f"warning: {line}")
    for check in report.checks:
        for error in check.errors:
            lines.append(f"FAILED {check.name}: {error}")
        if check.hint and not check.ok:
            lines.append(f"  hint: {check.hint}")
        for warning in check.warnings:
            lines.append(f"warning: {check.name}: {warning}")
    if report.reproduce():
        lines.append(f"rows: {report.reproduce()}")
    lines.append(summary_line(report))
    out.write("\n".join(lines) + "\n")


def summary_line(report: Report) -> str:
    count = len(report.selected)
    passed = [s.migration for s in report.selected if report.migration_passed(s.migration)]
    checks_failed = [c.name for c in report.checks if not c.ok]
    accepted = [s.migration for s in report.selected if s.migration in report.accepted]
    failed = [s.migration for s in report.selected if s.migration not in report.accepted
              and report.migration_failed(s.migration)]
    blocked = [s.migration for s in report.selected if report.blocked(s.migration)]
    stopped = [s.migration for s in report.selected
               if report.stopped(s.migration) and not report.blocked(s.migration)]
    parts = [f"{len(passed)} of {count} migration(s) passed"]
    if failed:
        parts[0] += f", {len(failed)} failed"
    if blocked:
        parts[0] += f", {len(blocked)} blocked by a failure"
    if accepted:
        parts[0] += f", {len(accepted)} accepted"
    if stopped:
        parts[0] += f", {len(stopped)} not run after a failure"
    if report.not_run:
        parts[0] += f", {len(report.not_run)} ran on no database"
    if checks_failed:
        parts.append("failed checks: " + ", ".join(checks_failed))

    verdict = "passed" if report.passed else "FAILED"
    return (
        f"migration-guard {verdict}: " + "; ".join(parts)
        + f" ({report.mode} mode"
        + (f", shard {report.shard.index}/{report.shard.count}" if report.shard else "")
        + (f", {report.merged} shards merged" if report.merged else "")
        + f", {report.database.get('provider', '?')} database"
        + (f", {len(report.aliases)} aliases" if report.several else "")
        + f", {report.seconds:.1f}s)"
    )


def step_hint(report: Report, key: MigrationKey, step: StepResult) -> str:
    """The step's hint; for the skipped backward step of a refused irreversible migration, how
    to make it reversible."""
    if step.hint or step.step != "backward" or step.ok is not None:
        return step.hint
    return " ".join(irreversible_hint(i) for i in report.refused(key))
