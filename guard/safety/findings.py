"""From what :mod:`guard.safety.measuring` measured to findings: what would hurt a live site.

Only tables that existed before the step count: one the migration creates is nobody else's yet.
For each measured statement, comparing the relations just before and just after it:

- ``rewrite``: a table's ``relfilenode`` changed (its indexes are rebuilt with it), or, on its
  own, an index's;
- ``blocking-index``: an index that did not exist was built on the table inside a transaction,
  so without ``CONCURRENTLY`` (it holds SHARE, which blocks writes, for the whole build); an index
  rebuilt under its old name by a rewrite is part of the rewrite;
- ``scan``: the table's sequential scans went up while this backend held SHARE or stronger on it,
  and the statement neither rewrote it nor built an index on it (those scan as part of the
  work): SET NOT NULL, a constraint or foreign key validated as it is added;
- ``lock``: a lock of SHARE or stronger taken by one operation and held, because the migration is
  atomic, through a later ``RunPython`` or ``RunSQL`` or an operation with findings of its own on
  another table: the table waits for all of that. ACCESS EXCLUSIVE, which blocks reads too, also
  counts when held through a later statement of the same operation with findings on another
  table (an ``AlterField`` drops a foreign key, locking the table it points at, then scans its
  own table).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from guard.safety import advice, measuring
from guard.safety.measuring import BLOCKS_WRITES, MODES, Measured, Snapshot, Statement
from guard.types import Finding, FindingKind, LockHeld, StepResult

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

    from guard.execution.verdicts import Span, Watch
    from guard.safety.estimates import Estimator

_SLOW_KINDS = ("RunPython", "RunSQL")
"""Operations whose time grows with the data: holding a lock across them is a finding."""


class Gauge:
    """Measures the steps of one round trip and judges each (off with ``--no-safety``)."""

    def __init__(self, connection: BaseDatabaseWrapper, *, enabled: bool,
                 estimator: Estimator | None = None) -> None:
        self.connection = connection
        self.enabled = enabled
        self.estimator = estimator
        self.measured: Measured | None = None
        self.watch: Watch | None = None

    @contextmanager
    def measuring(self, watch: Watch, atomic: bool, *, on: bool) -> Iterator[None]:
        self.measured, self.watch = None, watch
        if not (on and self.enabled):
            yield
            return
        with measuring.measuring(self.connection, watch, atomic=atomic) as self.measured:
            yield

    def judge(self, result: StepResult, operations: Sequence[Any]) -> None:
        """The last measured step's findings and locks, onto its result."""
        if self.measured is not None and self.watch is not None:
            result.findings, result.locks = judge(
                self.measured, self.watch.spans, operations,
                backwards=result.step == "backward")
            if self.estimator is not None:
                self.estimator.estimate_all(result.findings, self.connection)


def mode_name(mode: str) -> str:
    """``AccessExclusiveLock`` -> ``ACCESS EXCLUSIVE``, as PostgreSQL's documentation says it."""
    words, word = [], ""
    for char in mode.removesuffix("Lock"):
        if char.isupper() and word:
            words.append(word)
            word = ""
        word += char
    return " ".join([*words, word]).upper()


def judge(measured: Measured, spans: Sequence[Span], operations: Sequence[Any], *,
          backwards: bool = False) -> tuple[list[Finding], list[LockHeld]]:
    """The findings of one step, and the table of every lock it took (for ``-v``)."""
    tables = {oid for oid, r in measured.start.items() if r.kind in "rpm"}
    found: list[Finding] = []
    caused: dict[int, list[Finding]] = {}
    """The findings of each statement, by its place in ``measured.statements``."""
    for number, statement in enumerate(measured.statements):
        index = _operation(statement, spans)
        operation = operations[index - 1] if index and index <= len(operations) else None
        caused[number] = _statement(statement, tables, operation)
        for finding in caused[number]:
            finding.operation = index - 1 if index else None
            found.append(finding)
    found.extend(_held(measured, spans, tables, found, caused, operations))
    if backwards:
        for finding in found:
            finding.hint = advice.BACKWARD + finding.hint
    return _merged(found), _locks(measured, spans, tables)


def _operation(statement: Statement, spans: Sequence[Span]) -> int | None:
    """The operation that sent it: the one running, or for SQL Django deferred to the end of
    the migration (an index or a foreign key), the operation that deferred it."""
    if spans and statement.started >= spans[-1].ended > 0:
        text = " ".join(statement.sql.split())
        for span in reversed(spans):
            if any(" ".join(d.split()) == text for d in span.deferred):
                return span.index
    return statement.operation


def _statement(statement: Statement, tables: set[int], operation: Any) -> list[Finding]:
    before, after = statement.before, statement.after
    seconds = statement.ended - statement.started
    found: list[Finding] = []
    rewritten: set[int] = set()
    for oid in tables & before.keys() & after.keys():
        if before[oid].kind in "rm" and before[oid].filenode != after[oid].filenode:
            rewritten.add(oid)
            indexes = sum(1 for r in after.values() if r.table == oid)
            found.append(_finding("rewrite", after, oid, seconds, statement, operation,
                                  f"rewrote {after[oid].name}"
                                  + (f" and rebuilt its {indexes} index(es)" if indexes else "")))
    built: set[int] = set()
    for oid, relation in after.items():
        table = relation.table
        if relation.kind not in "iI" or table not in tables or table in rewritten:
            continue
        if oid not in before:
            if any(r.table == table and r.name == relation.name for r in before.values()):
                continue  # rebuilt under its old name by the same statement
            built.add(table)
            found.append(_finding("blocking-index", after, table, seconds, statement, operation,
                                  f"built index {relation.name} on {after[table].name} "
                                  "without CONCURRENTLY"))
        elif before[oid].filenode != relation.filenode:
            found.append(_finding("rewrite", after, table, seconds, statement, operation,
                                  f"rebuilt index {relation.name} of {after[table].name}"))
    for oid in sorted(tables & before.keys() & after.keys()):
        scans = after[oid].scans - before[oid].scans
        if (scans > 0 and oid not in rewritten and oid not in built
                and after[oid].strongest >= BLOCKS_WRITES):
            found.append(_finding("scan", after, oid, seconds, statement, operation,
                                  f"scanned {after[oid].name} ({scans} sequential scan(s)) "
                                  f"under {mode_name(MODES[after[oid].strongest])}"))
    return found


def _finding(kind: FindingKind, relations: Snapshot, table: int, seconds: float,
             statement: Statement, operation: Any, detail: str) -> Finding:
    name = relations[table].name
    strongest = relations[table].strongest
    mode = mode_name(MODES[strongest]) if strongest >= 0 else ""
    return Finding(
        kind=kind, table=name, lock_mode=mode, seconds=seconds, statement=statement.sql,
        detail=detail, hint=advice.hint(kind, name, statement.sql, operation, mode),
    )


def _taken(measured: Measured, table: int) -> tuple[Statement, int] | None:
    """The statement that first held the table's strongest lock of the step, and that lock."""
    strongest = max((s.after[table].strongest for s in measured.statements
                     if table in s.after), default=-1)
    for statement in measured.statements:
        if table in statement.after and statement.after[table].strongest == strongest >= 0:
            return statement, strongest
    return None


def _held(measured: Measured, spans: Sequence[Span], tables: set[int],
          found: Sequence[Finding], caused: dict[int, list[Finding]],
          operations: Sequence[Any]) -> list[Finding]:
    """``lock`` findings: a write-blocking lock held through slow work: a later ``RunPython``
    or ``RunSQL``, or a later operation with findings on another table; for ACCESS EXCLUSIVE,
    which blocks reads too, also a later statement of the same operation with findings on
    another table (a foreign key dropped, then the other table scanned)."""
    held: list[Finding] = []
    for table in sorted(tables):
        taken = _taken(measured, table)
        if taken is None or taken[1] < BLOCKS_WRITES:
            continue
        statement, strongest = taken
        name = statement.after[table].name
        released = statement.released or measured.ended
        first = _operation(statement, spans)
        through = [
            f"operation {span.index} ({span.description}"
            + _over(measured, span.index) + f": {span.ended - span.started:.2f} s)"
            for span in spans
            if span.index != first and statement.ended <= span.started < released
            and (span.kind in _SLOW_KINDS or any(
                f.operation == span.index - 1 and f.table != name for f in found))
        ]
        if strongest == len(MODES) - 1 and not through:
            through = [
                f"the {f.kind} of {f.table} ({later.ended - later.started:.2f} s)"
                for number, later in enumerate(measured.statements)
                if statement.ended <= later.started < released
                for f in caused[number] if f.table != name
            ]
        if not through:
            continue
        mode = mode_name(MODES[strongest])
        detail = (f"taken by operation {first}, held until the migration commits, through "
                  + ", ".join(dict.fromkeys(through)))
        operation = operations[first - 1] if first and first <= len(operations) else None
        held.append(Finding(
            kind="lock", table=name, lock_mode=mode, seconds=released - statement.started,
            statement=statement.sql, detail=detail,
            hint=advice.held_hint(name, mode, first, through[0], operation),
            operation=first - 1 if first else None,
        ))
    return held


def _over(measured: Measured, index: int) -> str:
    touched = sorted(measured.touched.get(index, set()))
    return f" over {', '.join(touched)}" if touched else ""


def _merged(found: list[Finding]) -> list[Finding]:
    """One finding per kind, table and operation: the statements' times added up."""
    merged: dict[tuple[str, str, int | None], Finding] = {}
    for finding in found:
        key = (finding.kind, finding.table, finding.operation)
        if key in merged:
            kept = merged[key]
            kept.seconds += finding.seconds
            if finding.detail not in kept.detail:
                kept.detail += f"; {finding.detail}"
            if finding.statement not in kept.statement:
                kept.statement += f";\n{finding.statement}"
        else:
            merged[key] = finding
    return list(merged.values())


def _locks(measured: Measured, spans: Sequence[Span], tables: set[int]) -> list[LockHeld]:
    """Every table locked above ROW EXCLUSIVE, with the statement that took it and for how
    long it was held."""
    locks = []
    seen = {oid for s in measured.statements for oid, r in s.after.items() if r.kind in "rpm"}
    for table in sorted(seen):
        taken = _taken(measured, table)
        if taken is None or taken[1] <= MODES.index("RowExclusiveLock"):
            continue
        statement, strongest = taken
        first = _operation(statement, spans)
        locks.append(LockHeld(
            table=statement.after[table].name, lock_mode=mode_name(MODES[strongest]),
            operation=first - 1 if first else None, statement=statement.sql,
            seconds=(statement.released or measured.ended) - statement.started,
            new=table not in tables,
        ))
    return locks
