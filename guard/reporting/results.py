"""A run's failures and findings as one flat list of results, for the review formats (SARIF,
GitLab Code Quality, the pull request comment): each with its rule, whether it fails the run,
where it is (:mod:`guard.reporting.locations`) and a fingerprint.

The fingerprint is a digest of what identifies the result, never of what varies between runs of
the same content (times, estimates, generated names): the rule, the migration, the alias, the
step, the operation's index and source text, and the table. Two runs of the same migration files
give the same fingerprints, so code scanning and GitLab track an alert across pushes.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from pathlib import Path

from guard.reporting.findings import headline
from guard.reporting.locations import Locator, operation_nodes, relative
from guard.reporting.model import Report
from guard.reporting.text import details, irreversible_hint
from guard.safety.estimates import span
from guard.types import KINDS, MigrationKey, label


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    short: str
    full: str
    help: str


RULES: dict[str, Rule] = {rule.id: rule for rule in (
    Rule("failed-step", "FailedStep", "A migration failed to apply or to roll back",
         "A step of the round trip (forward, backward, forward again) raised an error on a real "
         "PostgreSQL: the deploy or the rollback would fail the same way.",
         "Read the error and the operation it names; run the step with `manage.py migrate` on "
         "a copy of the database to see it."),
    Rule("schema-difference", "SchemaDifference", "A rollback does not restore the schema",
         "After the migration went backward, the schema differs from what it was before it "
         "went forward: the reverse leaves something behind or removes too much.",
         "Make the reverse undo exactly what the forward did; the report gives SQL that would "
         "undo the difference."),
    Rule("rows-lost", "RowsLost", "A rollback does not restore the rows",
         "The schema came back after the rollback but a table's rows did not: a data "
         "migration whose reverse does not put them back, or a removed column whose values "
         "the rollback cannot restore.",
         "Give the RunPython or RunSQL a reverse that puts the rows back; for a removed "
         "column, keep its values elsewhere first, or accept the loss explicitly."),
    Rule("irreversible", "Irreversible", "An operation cannot be reversed",
         "The migration has an operation without a reverse (RunPython or RunSQL without one): "
         "a rollback of the deploy stops at it.",
         "Give it a reverse (migrations.RunPython.noop where doing nothing is right), or list "
         "the migration in allow_irreversible."),
    Rule("failed-check", "FailedCheck", "A project check failed",
         "Django's system checks, conflicting leaves or the models-against-migrations check "
         "failed.", "Run the named check (`manage.py check`, `makemigrations --check`)."),
    Rule("base-failed", "BaseFailed", "A migration outside the selection failed",
         "The history before the selection does not apply from an empty database.",
         "Fix the migration named in the message, or squash the history it belongs to."),
    *(Rule(f"safety/{kind}", f"Safety{kind.title().replace('-', '')}",
           f"Deploy safety: {kind}", full, "Follow the hint in the result's message: it gives "
           "the safe sequence as Django code.")
      for kind, full in zip(KINDS, (
          "The migration rewrites a table that already holds rows: every row is copied under "
          "ACCESS EXCLUSIVE, which blocks reads and writes for as long as the table is big.",
          "The migration scans a table under a lock that blocks writes (SET NOT NULL, a "
          "validated constraint or foreign key).",
          "The migration builds an index on an existing table without CONCURRENTLY: SHARE "
          "blocks writes for the whole build.",
          "The migration holds a write-blocking lock through slow work until it commits."),
          strict=True)),
)}


@dataclass(frozen=True)
class Result:
    rule: str
    failing: bool
    message: str
    """The first line: what happened, with the migration named."""
    detail: str
    """The rest: differences, statement, hint."""
    path: str
    """The migration's file (the project's ``manage.py`` for a check or the base), relative
    to the repository's root."""
    line: int
    migration: str
    table: str
    fingerprint: str
    estimate: str = ""
    """For a finding with ``--stats``: ``about 3-5 min of blocked reads and writes``."""


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()


class _Sources:
    """The source text of each migration's operations, for fingerprints."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self._texts: dict[MigrationKey, list[str]] = {}

    def operation(self, key: MigrationKey, index: int | None) -> str:
        if key not in self._texts:
            self._texts[key] = _operation_texts(self.report.sources.get(key, ""))
        texts = self._texts[key]
        return texts[index] if index is not None and index < len(texts) else ""


def _operation_texts(path: str) -> list[str]:
    """Each operation's syntax tree as text: the same for the same code, whatever its lines."""
    return [ast.dump(node) for node in operation_nodes(path)[1]]


def collect(report: Report, root: Path) -> list[Result]:
    """Every failure and finding of ``report``, paths relative to ``root``."""
    where, sources = Locator(report, root), _Sources(report)
    found: list[Result] = []

    def add(rule: str, failing: bool, message: str, detail: str, key: MigrationKey | None,
            index: int | None, table: str = "", *identity: object, estimate: str = "") -> None:
        path, line = where(key, index) if key is not None else (None, None)
        if path is None:  # a check or the base: the project's manage.py stands for it
            path = relative(str(Path(report.project_dir) / "manage.py"), root)
        name = label(key) if key is not None else ""
        operation = sources.operation(key, index) if key is not None else ""
        found.append(Result(rule, failing, message, detail, path, line or 1, name, table,
                            _digest(rule, name, index, operation, table, *identity), estimate))

    for irreversible, accepted in report.irreversible:
        key = irreversible.migration
        add("irreversible", not accepted, irreversible.describe(), irreversible_hint(irreversible),
            key, irreversible.index)
    for alias, base_error in report.base_errors():
        add("base-failed", True, f"base on {alias}: {base_error}", "", None, None, "", alias)
    for alias, key, step in [*report.failures(), *report.accepted_failures()]:
        rule = "schema-difference" if step.schema_diff else "failed-step"
        add(rule, key not in report.accepted, f"{report.name(key, alias)}: {step.step}: "
            f"{step.error}", "\n".join(details(step)), key, step.operation, "", alias, step.step)
    for alias, key, lost in report.rows_lost():
        add("rows-lost", False, f"{report.name(key, alias)}: {lost}", "", key, None, "",
            alias, lost.split(":")[0])
    for item in report.findings():
        alias, key, step, finding = item
        add(f"safety/{finding.kind}", report.fails(item),
            f"{report.name(key, alias)}: {step.step}: {headline(finding)}",
            f"statement: {' '.join(finding.statement.split())}\nhint: {finding.hint}", key,
            finding.operation, finding.table, alias, step.step,
            estimate=(f"{span(finding.estimate.seconds)} of blocked {finding.estimate.blocks}"
                      if finding.estimate else ""))
    for check in report.checks:
        if not check.ok:
            add("failed-check", True, f"{check.name}: {'; '.join(check.errors)}", check.hint,
                None, None, "", check.name)
    return found
