"""Under GitHub Actions: an ``::error`` workflow annotation per failure, shown on the pull
request's diff at the migration's line (:mod:`guard.reporting.locations`), and a Markdown table
in the job's step summary."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TextIO

from guard.reporting.findings import headline
from guard.reporting.locations import Locator
from guard.reporting.markdown import cell as _cell
from guard.reporting.model import Report
from guard.reporting.text import details, irreversible_hint, summary_line
from guard.safety.estimates import span
from guard.types import STEPS, label


def escape_data(text: str) -> str:
    """A workflow command's message, escaped as the runner unescapes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """A workflow command's property value (``file=``, ``title=``): also ``:`` and ``,``."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def error(message: str, *, title: str, file: str | None = None, line: int | None = None) -> str:
    """One ``::error`` workflow command."""
    return _command("error", message, title=title, file=file, line=line)


def warning(message: str, *, title: str, file: str | None = None, line: int | None = None
            ) -> str:
    """One ``::warning`` workflow command."""
    return _command("warning", message, title=title, file=file, line=line)


def _command(kind: str, message: str, *, title: str, file: str | None, line: int | None) -> str:
    properties = []
    if file:
        properties.append(f"file={escape_property(file)}")
        if line:
            properties.append(f"line={line}")
    properties.append(f"title={escape_property(title)}")
    return f"::{kind} {','.join(properties)}::{escape_data(message)}"


def error_lines(report: Report, environ: Mapping[str, str]) -> Iterator[str]:
    """One ``::error`` line per failure: refused irreversible operations, failed steps, the
    base, failed checks."""
    where = Locator(report, Path(environ.get("GITHUB_WORKSPACE") or os.getcwd()))

    for irreversible, accepted in report.irreversible:
        if not accepted:
            key = irreversible.migration
            file, line = where(key, irreversible.index)
            yield error(f"{irreversible.describe()}\n{irreversible_hint(irreversible)}",
                        title=f"migration-guard: {label(key)} irreversible", file=file,
                        line=line)
    for alias, base_error in report.base_errors():
        on = f" on {alias}" if report.several else ""
        yield error(base_error, title=f"migration-guard: base{on}")
    for alias, key, step in report.failures():
        file, line = where(key, step.operation)
        yield error("\n".join([step.error, *details(step)]),
                    title=f"migration-guard: {report.name(key, alias)} {step.step}", file=file,
                    line=line)
    for found in report.findings():
        alias, key, step, finding = found
        file, line = where(key, finding.operation)
        emit = error if report.fails(found) else warning
        yield emit(f"{headline(finding)}\n{finding.hint}",
                   title=f"migration-guard: {report.name(key, alias)} {step.step} "
                   f"{finding.kind}", file=file, line=line)
    for alias, key, lost in report.rows_lost():
        file, line = where(key)
        yield warning(lost, title=f"migration-guard: {report.name(key, alias)} rows lost",
                      file=file, line=line)
    for key, why in report.not_run.items():
        file, line = where(key)
        yield warning(f"{label(key)} ran on no database: {why}",
                      title=f"migration-guard: {label(key)} not run", file=file, line=line)
    for item in report.selected:
        if report.blocked(item.migration):
            file, line = where(item.migration)
            needs = ", ".join(label(k) for k in report.blocked_by(item.migration))
            yield warning(f"{label(item.migration)} was not run: it needs {needs}, which "
                          "failed", title=f"migration-guard: {label(item.migration)} blocked",
                          file=file, line=line)
    for check in report.checks:
        if not check.ok:
            message = "\n".join([*check.errors, *([check.hint] if check.hint else [])])
            yield error(message, title=f"migration-guard: {check.name}")


_STATUS = {True: "✅ ok", False: "❌ failed", None: "⏭️ skipped"}


def summary(report: Report) -> str:
    """The step summary: a table of migrations and steps, the checks, the summary line."""
    verdict = "passed" if report.passed else "FAILED"
    lines = [f"### migration-guard {verdict}", ""]
    for alias, base_error in report.base_errors():
        on = f" on {alias}" if report.several else ""
        lines += [f"**base failed{on}**: {_cell(base_error)}", ""]
    if report.selected:
        lines += ["| migration | forward | backward | forward again | notes |",
                  "| --- | --- | --- | --- | --- |"]
        for item in report.selected:
            key = item.migration
            for alias in report.aliases:
                steps = {s.step: s for s in report.steps(key, alias)}
                cells = [_STATUS[steps[name].ok] if name in steps else "–" for name in STEPS]
                notes = [f"{s.step}: {s.error}" for s in steps.values() if s.ok is False]
                notes += [f"{'accepted' if ok else 'irreversible'}: operation {i.index + 1}, "
                          f"{i.operation}" for i, ok in report.irreversible if i.migration == key]
                notes += [f"undo: `{sql}`" for s in steps.values() for sql in s.undo_sql]
                notes += [f"{s.step}: {headline(f)}" for s in steps.values()
                          for f in s.findings]
                if key in report.not_run:
                    notes.append(f"ran on no database: {report.not_run[key]}")
                notes += [s.error for s in steps.values() if s.blocked_by]
                lines.append(f"| `{report.name(key, alias)}` | " + " | ".join(cells) + " | "
                             + "<br>".join(_cell(n) for n in notes) + " |")
        lines.append("")
    else:
        lines += ["No migration selected.", ""]
    if report.checks:
        lines += ["| check | result | notes |", "| --- | --- | --- |"]
        for check in report.checks:
            notes = check.errors + ([check.hint] if check.hint and not check.ok else [])
            lines.append(f"| {_cell(check.name)} | {_STATUS[check.ok]} | "
                         + "<br>".join(_cell(n) for n in notes) + " |")
        lines.append("")
    lines += _estimates(report)
    lines += [summary_line(report), ""]
    return "\n".join(lines)


def _estimates(report: Report) -> list[str]:
    """With ``--stats``: each finding's blocking time at production size, the longest first."""
    found = sorted((f for f in report.findings() if f[3].estimate is not None),
                   key=lambda f: -(f[3].estimate.seconds[1] if f[3].estimate else 0.0))
    if not found:
        return []
    lines = ["| blocks at production size | migration | step | finding | fails |",
             "| --- | --- | --- | --- | --- |"]
    for item in found:
        alias, key, step, finding = item
        estimate = finding.estimate
        assert estimate is not None
        lines.append(f"| {_cell(span(estimate.seconds))} of blocked {estimate.blocks} | "
                     f"`{report.name(key, alias)}` | {step.step} | "
                     f"{_cell(f'{finding.kind} {finding.table}: {estimate.basis}')} | "
                     f"{'❌ yes' if report.fails(item) else 'no'} |")
    return [*lines, ""]


def append_summary(report: Report, environ: Mapping[str, str], *, warn: TextIO) -> None:
    """Append :func:`summary` to the file ``GITHUB_STEP_SUMMARY`` names, if it names one."""
    path = environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as out:
            out.write(summary(report) + "\n")
    except OSError as exc:
        print(f"migration-guard: warning: cannot write the step summary to {path}: {exc}",
              file=warn)
