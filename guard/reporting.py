"""What a person or a CI job reads: progress lines as the run goes, then the reports.

Progress goes to stderr as it happens. The reports (text, JSON, JUnit XML in :mod:`guard.junit`)
go each to its file or, one of them, to stdout, so that ``--format json`` leaves stdout holding
exactly one JSON object. Under GitHub Actions, :mod:`guard.github` adds workflow annotations and
the job's step summary.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from guard.checks import CheckResult
from guard.errors import FatalError
from guard.execution import Outcome
from guard.planning import Irreversible
from guard.types import MigrationKey, Selected, StepResult, label


@dataclass
class Report:
    mode: str
    project_dir: str
    settings: str
    last: int
    database: dict[str, str] = field(default_factory=dict)
    selected: list[Selected] = field(default_factory=list)
    files: dict[MigrationKey, str] = field(default_factory=dict)
    """Each migration's file as shown (in the repository, for an exported commit)."""
    sources: dict[MigrationKey, str] = field(default_factory=dict)
    """Each migration's file as it is on disk now, to read it."""
    ignored: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    irreversible: list[tuple[Irreversible, bool]] = field(default_factory=list)
    """Each irreversible operation, and whether config accepts it."""
    accepted: dict[MigrationKey, str] = field(default_factory=dict)
    """Migrations whose failures are accepted (config or marker comment), with why."""
    checks: list[CheckResult] = field(default_factory=list)
    outcome: Outcome = field(default_factory=Outcome)
    seconds: float = 0.0

    def failures(self) -> list[tuple[MigrationKey, StepResult]]:
        """Failed steps that count: not those of accepted migrations."""
        return [
            (key, step)
            for key, steps in self.outcome.steps.items()
            for step in steps
            if step.ok is False and key not in self.accepted
        ]

    def accepted_failures(self) -> list[tuple[MigrationKey, StepResult]]:
        return [
            (key, step)
            for key, steps in self.outcome.steps.items()
            for step in steps
            if step.ok is False and key in self.accepted
        ]

    @property
    def passed(self) -> bool:
        return (
            not self.failures()
            and not self.outcome.base_error
            and all(check.ok for check in self.checks)
            and all(accepted for _, accepted in self.irreversible)
        )

    def refused(self, key: MigrationKey) -> list[Irreversible]:
        """The irreversible operations of ``key`` that the config does not accept."""
        return [i for i, ok in self.irreversible if i.migration == key and not ok]

    def migration_passed(self, key: MigrationKey) -> bool:
        if key in self.accepted:
            return False
        steps = self.outcome.steps.get(key, [])
        return bool(steps) and not self.refused(key) and all(s.ok is not False for s in steps)


class Progress:
    """Lines to stderr while the run goes; quiet when not verbose and nothing is wrong."""

    def __init__(self, stream: TextIO | None = None, *, verbose: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.verbose = verbose
        self.accepted: set[MigrationKey] = set()

    def line(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)

    def selection(self, report: Report) -> None:
        for path, why in report.ignored:
            self.line(f"warning: ignored {path}: {why}")
        for note in report.notes:
            self.line(f"note: {note}")
        if not report.selected:
            self.line("selected: no migrations")
            return
        self.line(f"selected {len(report.selected)} migration(s):")
        width = max(len(label(s.migration)) for s in report.selected)
        for item in report.selected:
            self.line(f"  {label(item.migration):<{width}}  {describe_reason(item, report.last)}")

    def base(self, count: int, seconds: float, *, cached: bool = False) -> None:
        what = f"{count} migration(s) outside the selection"
        status = "cached" if cached else "ok"
        self.line(f"  {'base':<13} {what:<40} {status:<7} {seconds:6.2f}s")

    def step(self, key: MigrationKey, result: StepResult) -> None:
        status = {True: "ok", False: "FAILED", None: "skipped"}[result.ok]
        if result.ok is False and key in self.accepted:
            status = "accepted"
        self.line(
            f"  {result.step:<13} {label(key):<40} {status:<7} {result.seconds:6.2f}s"
        )
        if result.ok is False or (self.verbose and result.ok is None):
            self.line(f"      {result.error}")
        if self.verbose:
            for warning in result.warnings:
                self.line(f"      warning: {warning}")


def describe_reason(item: Selected, last: int) -> str:
    if item.reason == "changed":
        return "changed (given)"
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
    if report.outcome.base_error:
        lines.append(f"FAILED base: {report.outcome.base_error}")
    for key, step in report.accepted_failures():
        lines.append(f"skipped (accepted: {report.accepted[key]}) {label(key)}: "
                     f"{step.step}: {step.error}")
    for key, step in report.failures():
        lines.append(f"FAILED {label(key)}: {step.step}: {step.error}")
        lines.append(f"  file: {report.files.get(key, '?')}")
        lines += [f"  {line}" for line in details(step)]
    for check in report.checks:
        for error in check.errors:
            lines.append(f"FAILED {check.name}: {error}")
        if check.hint and not check.ok:
            lines.append(f"  hint: {check.hint}")
        for warning in check.warnings:
            lines.append(f"warning: {check.name}: {warning}")
    lines.append(summary_line(report))
    out.write("\n".join(lines) + "\n")


def summary_line(report: Report) -> str:
    count = len(report.selected)
    failed = [s.migration for s in report.selected if not report.migration_passed(s.migration)]
    checks_failed = [c.name for c in report.checks if not c.ok]
    accepted = [s.migration for s in report.selected if s.migration in report.accepted]
    parts = [f"{count - len(failed)} of {count} migration(s) passed"]
    if accepted:
        parts[0] += f", {len(accepted)} accepted"
    if checks_failed:
        parts.append("failed checks: " + ", ".join(checks_failed))
    verdict = "passed" if report.passed else "FAILED"
    return (
        f"migration-guard {verdict}: " + "; ".join(parts)
        + f" ({report.mode} mode, {report.database.get('provider', '?')} database, "
        f"{report.seconds:.1f}s)"
    )


def step_hint(report: Report, key: MigrationKey, step: StepResult) -> str:
    """The step's hint; for the skipped backward step of a refused irreversible migration, how
    to make it reversible."""
    if step.hint or step.step != "backward" or step.ok is not None:
        return step.hint
    return " ".join(irreversible_hint(i) for i in report.refused(key))


def _step_json(report: Report, key: MigrationKey, step: StepResult) -> dict[str, Any]:
    data: dict[str, Any] = {"step": step.step, "ok": step.ok, "seconds": round(step.seconds, 4)}
    if step.error:
        data["error"] = step.error
    hint = step_hint(report, key, step)
    if hint:
        data["hint"] = hint
    if step.schema_diff:
        data["schema_diff"] = step.schema_diff
    if step.undo_sql:
        data["undo_sql"] = step.undo_sql
    if step.warnings:
        data["warnings"] = step.warnings
    return data


def as_json(report: Report) -> dict[str, Any]:
    return {
        "mode": report.mode,
        "passed": report.passed,
        "seconds": round(report.seconds, 3),
        "project": {"dir": report.project_dir, "settings": report.settings},
        "database": report.database,
        "selected": [
            {
                "migration": label(s.migration),
                "reason": s.reason,
                **({"because_of": [label(k) for k in s.because_of]} if s.because_of else {}),
            }
            for s in report.selected
        ],
        "ignored": [{"path": p, "reason": r} for p, r in report.ignored],
        "notes": report.notes,
        "base": {
            "migrations": report.outcome.base_count,
            "seconds": round(report.outcome.base_seconds, 4),
            "cached": report.outcome.base_cached,
            **({"error": report.outcome.base_error} if report.outcome.base_error else {}),
        },
        "irreversible": [
            {"migration": label(i.migration), "operation": i.operation, "accepted": ok}
            for i, ok in report.irreversible
        ],
        "results": [
            {
                "migration": label(s.migration),
                "file": report.files.get(s.migration),
                "passed": report.migration_passed(s.migration),
                **({"accepted": report.accepted[s.migration]}
                   if s.migration in report.accepted else {}),
                "steps": [_step_json(report, s.migration, step)
                          for step in report.outcome.steps.get(s.migration, [])],
            }
            for s in report.selected
        ],
        "checks": [
            {"name": c.name, "ok": c.ok, "errors": c.errors, "warnings": c.warnings,
             **({"hint": c.hint} if c.hint and not c.ok else {})}
            for c in report.checks
        ],
    }


def render(report: Report, fmt: str) -> str:
    """One report in ``fmt`` (text, json, junit), as the text of a file."""
    if fmt == "json":
        return json.dumps(as_json(report), indent=2) + "\n"
    if fmt == "junit":
        from guard.junit import as_junit

        return as_junit(report)
    text = io.StringIO()
    write_text(report, text)
    return text.getvalue()


def write(
    report: Report,
    formats: Sequence[tuple[str, str | None]],
    stdout: TextIO,
    *,
    github: bool = False,
    environ: Mapping[str, str] | None = None,
    stderr: TextIO | None = None,
) -> None:
    """Write each report to its file or stdout; with nothing on stdout, the summary line goes
    there. Under GitHub Actions (``GITHUB_ACTIONS=true``, unless ``github`` is off) also the
    workflow annotations (on stdout, or on stderr when stdout holds JSON or XML) and the step
    summary."""
    stderr = stderr or sys.stderr
    on_stdout = ""
    for fmt, file in formats:
        if file is None:
            on_stdout = fmt
            stdout.write(render(report, fmt))
            continue
        try:
            Path(file).parent.mkdir(parents=True, exist_ok=True)
            with open(file, "w", encoding="utf-8") as out:
                out.write(render(report, fmt))
        except OSError as exc:
            raise FatalError(f"Cannot write the {fmt} report to {file}: {exc}.") from exc
    if not on_stdout:
        stdout.write(summary_line(report) + "\n")
    environ = environ if environ is not None else {}
    if github and environ.get("GITHUB_ACTIONS") == "true":
        from guard import github as gh

        annotations = stdout if on_stdout in ("", "text") else stderr
        for line in gh.error_lines(report, environ):
            annotations.write(line + "\n")
        annotations.flush()
        gh.append_summary(report, environ, warn=stderr)


