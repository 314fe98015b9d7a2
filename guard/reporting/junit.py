"""``--format junit``: the report as JUnit XML, which GitHub, GitLab and Jenkins show per test.

One ``<testsuite name="migration-guard">`` (inside ``<testsuites>``, as pytest writes it) with a
``<testcase>`` per selected migration and step (classname ``app.migration``, name ``forward``,
``backward``, ``forward-again``), one per irreversible operation found (a failure, or skipped
when ``allow_irreversible`` accepts it), one per run check (classname ``checks``), and one for
the base when it failed to apply. A failure's message is the error; its body holds the schema
differences, the SQL that would undo them and the hint. Each safety finding is a test case of
its own (``safety: forward rewrite shop_item``): a failure when ``fail_on`` makes it one, else a
passed case whose ``system-out`` carries the warning.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from guard.reporting.findings import headline
from guard.reporting.model import Report
from guard.reporting.text import details, irreversible_hint
from guard.types import STEPS, MigrationKey, StepResult, label

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    """Text XML 1.0 can hold: control characters a driver's message may carry are dropped."""
    return _NOT_XML.sub("", text)


class _Suite:
    def __init__(self) -> None:
        self.element = ET.Element("testsuite", name="migration-guard")
        self.failures = 0
        self.skipped = 0
        self.tests = 0

    def case(self, classname: str, name: str, seconds: float = 0.0) -> ET.Element:
        self.tests += 1
        return ET.SubElement(self.element, "testcase", classname=_clean(classname),
                             name=_clean(name), time=f"{seconds:.3f}")

    def fail(self, case: ET.Element, message: str, body: list[str], kind: str) -> None:
        self.failures += 1
        failure = ET.SubElement(case, "failure", message=_clean(message), type=kind)
        failure.text = _clean("\n".join(body or [message]))

    def skip(self, case: ET.Element, message: str) -> None:
        self.skipped += 1
        ET.SubElement(case, "skipped", message=_clean(message))


def as_junit(report: Report) -> str:
    """The whole report as a JUnit XML document."""
    suite = _Suite()
    for alias, outcome in report.outcomes.items():
        if outcome.base_error:
            suite.fail(suite.case("base", _on("apply", alias, report), outcome.base_seconds),
                       outcome.base_error, [], "base")
    for item in report.selected:
        key = item.migration
        file = report.files.get(key)
        where = [f"file: {file}"] if file else []
        for alias in report.aliases:
            stopped = _why_not_run(report, key, alias)
            done: dict[str, StepResult] = {s.step: s for s in report.steps(key, alias)}
            for name in STEPS:
                step = done.get(name)
                case = suite.case(label(key), _on(name, alias, report),
                                  step.seconds if step else 0.0)
                if file:
                    case.set("file", file)
                if step is None:
                    suite.skip(case, stopped)
                elif step.ok is None:
                    suite.skip(case, step.error or "not run")
                elif step.ok is False and key in report.accepted:
                    suite.skip(case, f"accepted ({report.accepted[key]}): {step.error}")
                elif step.ok is False:
                    suite.fail(case, step.error, [step.error, *where, *details(step)], name)
                if step is not None and step.rows_lost:
                    out = ET.SubElement(case, "system-out")
                    out.text = _clean("\n".join(f"warning: {w}" for w in step.rows_lost))
        for found in report.findings():
            alias, finding_key, step, finding = found
            if finding_key != key:
                continue
            case = suite.case(label(key), _on(f"safety: {step.step} {finding.kind} "
                                              f"{finding.table}", alias, report), finding.seconds)
            if file:
                case.set("file", file)
            body = [headline(finding), *where, f"statement: {finding.statement}",
                    f"hint: {finding.hint}"]
            if report.fails(found):
                suite.fail(case, headline(finding), body, finding.kind)
            else:
                out = ET.SubElement(case, "system-out")
                out.text = _clean("\n".join(["warning: " + body[0], *body[1:]]))
        for irreversible, accepted in report.irreversible:
            if irreversible.migration != key:
                continue
            case = suite.case(label(key), f"irreversible operation {irreversible.index + 1}")
            if file:
                case.set("file", file)
            if accepted:
                suite.skip(case, f"accepted (allow_irreversible): {irreversible.operation}")
            else:
                described = irreversible.describe()
                suite.fail(case, described,
                           [described, *where, f"hint: {irreversible_hint(irreversible)}"],
                           "irreversible")
    for check in report.checks:
        case = suite.case("checks", check.name)
        if not check.ok:
            body = [f"- {error}" for error in check.errors]
            body += [f"warning: {warning}" for warning in check.warnings]
            if check.hint:
                body.append(f"hint: {check.hint}")
            suite.fail(case, "; ".join(check.errors) or "failed", body, "check")
    counts = {"tests": str(suite.tests), "failures": str(suite.failures), "errors": "0",
              "skipped": str(suite.skipped), "time": f"{report.seconds:.3f}"}
    for attribute, value in counts.items():
        suite.element.set(attribute, value)
    root = ET.Element("testsuites", {"name": "migration-guard", **counts})
    root.append(suite.element)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _on(name: str, alias: str, report: Report) -> str:
    """A test case's name: the step, and the alias when several are tested."""
    return f"{name} on {alias}" if report.several else name


def _why_not_run(report: Report, key: MigrationKey, alias: str) -> str:
    """Why a step has no result: the migration ran nowhere, the base failed, it failed to
    apply, or it was not applied at all (its first step says why: a failure it needs)."""
    if key in report.not_run:
        return f"not run: ran on no database: {report.not_run[key]}"
    outcome = report.outcomes.get(alias)
    if outcome is not None and outcome.base_error:
        return "not run: the base failed to apply"
    steps = report.steps(key, alias)
    if steps and steps[0].step == "forward":
        if steps[0].ok is False:
            return "not run: it failed to apply"
        if steps[0].ok is None and steps[0].error:
            return steps[0].error
    return "not run"
