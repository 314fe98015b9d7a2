"""Measuring what a step does to the tables around it: locks, rewrites, scans, index builds.

While a selected migration goes forward or backward, :func:`measuring` wraps every statement it
sends. Statements that only read or write rows (``SELECT``, ``INSERT``, ``UPDATE``...) run as they
are: they take no lock stronger than ROW EXCLUSIVE. Around every other statement (the DDL, and
whatever a ``RunSQL`` sends) it reads, through the driver's own cursor so that nothing of ours is
wrapped or recorded, one row per relation of the database: its ``relfilenode`` (a change is a
rewrite), the locks this backend holds on it (``pg_locks``; in a transaction they accumulate until
the commit) and its sequential scans in this transaction (``pg_stat_get_xact_numscans``, read as a
delta: the counter also holds counts of earlier transactions not yet flushed).

A statement sent outside a transaction (a migration with ``atomic = False``) commits, and its
locks and counters go with the commit; it is run in a transaction of its own so that they can be
read before it ends, which is what PostgreSQL does with it anyway. A statement that refuses to run
in a transaction (``CREATE INDEX CONCURRENTLY``) is run again as it was sent, unmeasured: what it
takes (SHARE UPDATE EXCLUSIVE) blocks no reads or writes.

Nothing is created in the database: no event trigger, no function, so the schema snapshots see
nothing of this. :mod:`guard.safety.findings` turns the measurements into findings.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

    from guard.execution.verdicts import Watch

_SNAPSHOT = """
WITH held AS (
    SELECT relation, array_agg(mode) AS modes FROM pg_locks
    WHERE pid = pg_backend_pid() AND locktype = 'relation' AND granted
    GROUP BY relation
)
SELECT c.oid, c.relname, c.relkind, COALESCE(i.indrelid, 0), c.relfilenode,
       CASE WHEN c.relkind IN ('r', 'm') THEN pg_stat_get_xact_numscans(c.oid) ELSE 0 END,
       held.modes
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
LEFT JOIN held ON held.relation = c.oid
WHERE c.relkind IN ('r', 'p', 'm', 'i', 'I')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp\\_%%'
"""

# The lock modes in the order of their strength (each conflicts with more than the one before).
MODES = (
    "AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock",
    "ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock",
)
BLOCKS_WRITES = MODES.index("ShareLock")
"""From SHARE up, a lock blocks INSERT, UPDATE and DELETE; ACCESS EXCLUSIVE blocks reads too."""

# Statements that only read or write rows, and the transaction control Django sends itself.
_ROWS_ONLY = re.compile(
    r"^\s*(?:SELECT|INSERT|UPDATE|DELETE|WITH|VALUES|TABLE|SAVEPOINT|RELEASE|ROLLBACK|COMMIT|"
    r"BEGIN|START|SET|SHOW|RESET|COPY|FETCH|DECLARE|CLOSE|EXPLAIN|PREPARE|EXECUTE|DEALLOCATE|"
    r"LISTEN|NOTIFY|UNLISTEN)\b",
    re.IGNORECASE,
)
_LATER_DDL = re.compile(r";\s*(?:ALTER|CREATE|DROP|LOCK|TRUNCATE|CLUSTER|REINDEX|VACUUM)\b",
                        re.IGNORECASE)
_TABLES = re.compile(r'\b(?:FROM|UPDATE|INTO|JOIN)\s+"?(\w+)"?', re.IGNORECASE)
_COMMENTS = re.compile(r"^(?:\s*--[^\n]*\n|\s*/\*.*?\*/)*", re.DOTALL)


def changes_schema(sql: str) -> bool:
    """Whether a statement may take a lock above ROW EXCLUSIVE, rewrite or scan under one."""
    text = _COMMENTS.sub("", sql, count=1)
    return not _ROWS_ONLY.match(text) or bool(_LATER_DDL.search(text))


class Relation(NamedTuple):
    name: str
    kind: str
    """``r`` table, ``p`` partitioned table, ``m`` materialized view, ``i``/``I`` index."""
    table: int
    """For an index, its table's OID; else 0."""
    filenode: int
    scans: int
    modes: frozenset[str]

    @property
    def strongest(self) -> int:
        """The index in :data:`MODES` of the strongest lock held, -1 for none."""
        return max((MODES.index(m) for m in self.modes if m in MODES), default=-1)


Snapshot = dict[int, Relation]


@dataclass
class Statement:
    """One measured statement: the relations just before and just after it."""

    sql: str
    operation: int | None
    """The 1-based index of the operation that sent it, when known."""
    started: float
    ended: float
    before: Snapshot
    after: Snapshot
    own_transaction: bool
    """Run in a transaction of its own (sent outside one): its locks ended with it."""
    released: float = 0.0
    """When the transaction it ran in ended (0: not known, the end of the step)."""


@dataclass
class Measured:
    """What one step did, for :func:`guard.safety.findings.judge`."""

    atomic: bool
    start: Snapshot
    """Every relation before the step: only these can be anybody else's."""
    statements: list[Statement] = field(default_factory=list)
    ended: float = 0.0
    unmeasured: list[str] = field(default_factory=list)
    """Statements that refused to run in a transaction, run as sent."""
    touched: dict[int, set[str]] = field(default_factory=dict)
    """The tables each operation (1-based) read or wrote rows of."""


def snapshot(connection: BaseDatabaseWrapper) -> Snapshot:
    """Every relation of the database, as this backend sees it now."""
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        cursor.execute(_SNAPSHOT)
        rows = cursor.fetchall()
    return {
        int(oid): Relation(str(name), str(kind), int(table), int(node), int(scans or 0),
                           frozenset(_modes(modes)))
        for oid, name, kind, table, node, scans, modes in rows
    }


def _modes(value: Any) -> list[str]:
    """``pg_locks.mode`` aggregated: a list, or the array's text with an older driver."""
    if value is None:
        return []
    if isinstance(value, str):
        return [m for m in value.strip("{}").split(",") if m]
    return [str(m) for m in value]


@contextmanager
def measuring(connection: BaseDatabaseWrapper, watch: Watch, *, atomic: bool
              ) -> Iterator[Measured]:
    """Measure every statement that may change the schema while the block runs."""
    measured = Measured(atomic=atomic, start=snapshot(connection))
    last: list[Snapshot | None] = [measured.start]
    """The relations after the last statement, while no statement has run since."""
    waiting: list[Statement] = []
    """Statements whose transaction has not ended yet."""

    def committed() -> None:
        now = time.perf_counter()
        for statement in waiting:
            statement.released = now
        waiting.clear()

    def execute(run: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not isinstance(sql, str) or not changes_schema(sql):
            last[0] = None
            if watch.operation is not None and isinstance(sql, str):
                tables = measured.touched.setdefault(watch.operation[0], set())
                tables.update(t for t in _TABLES.findall(sql) if t != "django_migrations")
            return run(sql, params, many, context)
        before = last[0] if last[0] is not None else snapshot(connection)
        alone = connection.get_autocommit() and not connection.in_atomic_block
        if alone:
            _send(connection, "BEGIN")
        started = time.perf_counter()
        try:
            result = run(sql, params, many, context)
        except Exception as exc:
            if not alone:
                raise
            _send(connection, "ROLLBACK")
            if "cannot run inside a transaction block" not in str(exc):
                raise
            measured.unmeasured.append(sql)
            last[0] = None
            return run(sql, params, many, context)
        ended = time.perf_counter()
        after = snapshot(connection)
        operation = watch.operation[0] if watch.operation else None
        statement = Statement(sql, operation, started, ended, before, after, alone)
        measured.statements.append(statement)
        if alone:
            _send(connection, "COMMIT")
            statement.released = time.perf_counter()
        elif connection.in_atomic_block:
            if not waiting:
                connection.on_commit(committed)
            waiting.append(statement)
        last[0] = after
        return result

    try:
        with connection.execute_wrapper(execute):
            yield measured
    finally:
        measured.ended = time.perf_counter()


def _send(connection: BaseDatabaseWrapper, sql: str) -> None:
    with connection.connection.cursor() as cursor:
        cursor.execute(sql)
