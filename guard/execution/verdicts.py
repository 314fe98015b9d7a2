"""What a failed step says: the operation, the table, column and row it failed on, and a hint.

While a migration applies or unapplies, :func:`watching` notes which of its operations runs and
the last statement it sent. When the step fails, :func:`explain` puts that together with what
PostgreSQL said (its message, and the table, column and detail of the error) and, where the
offending value or a NULL is known, looks up the primary key of a row that holds it:
``operation 2 of 2 (Alter field code on item), column "code" of shop_item, row id=1: DataError:
invalid input syntax for type integer: "Ünïcode-17"``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from guard.database.server import one_line
from guard.types import MigrationKey, label

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.migrations.migration import Migration


@dataclass
class Span:
    """When one operation ran, and the SQL it left for the end of the migration."""

    index: int
    """1-based, as reported."""
    description: str
    kind: str
    """The operation's class name (``RunPython``, ``AddField``...)."""
    started: float
    ended: float = 0.0
    deferred: list[str] = field(default_factory=list)
    """Statements it deferred (an index or foreign key Django adds at the migration's end)."""


@dataclass
class Watch:
    """Where a step was when it failed."""

    operations: int
    operation: tuple[int, str] | None = None
    """(1-based index, Django's description) of the operation running."""
    statement: str = ""
    params: Any = None
    spans: list[Span] = field(default_factory=list)
    """The operations that ran, in order."""


@contextmanager
def watching(connection: BaseDatabaseWrapper, migration: Migration, *, backwards: bool
             ) -> Iterator[Watch]:
    """Note the running operation and the last statement while the block runs."""
    watch = Watch(len(migration.operations))
    method = "database_backwards" if backwards else "database_forwards"
    wrapped = []
    for index, operation in enumerate(migration.operations, 1):
        if method in operation.__dict__:
            continue
        original = getattr(operation, method)

        def noting(*args: Any, _index: int = index, _op: Any = operation,
                   _original: Any = original, **kwargs: Any) -> Any:
            watch.operation = (_index, _describe(_op))
            watch.statement, watch.params = "", None
            span = Span(_index, watch.operation[1], type(_op).__name__, time.perf_counter())
            watch.spans.append(span)
            editor = args[1] if len(args) > 1 else kwargs.get("schema_editor")
            deferred = list(getattr(editor, "deferred_sql", None) or ())
            try:
                return _original(*args, **kwargs)
            finally:
                span.ended = time.perf_counter()
                span.deferred = [str(s) for s in getattr(editor, "deferred_sql", None) or ()
                                 if not any(s is d for d in deferred)]

        operation.__dict__[method] = noting
        wrapped.append(operation)

    def statement(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        watch.statement, watch.params = sql, params
        return execute(sql, params, many, context)

    try:
        with connection.execute_wrapper(statement):
            yield watch
    finally:
        for operation in wrapped:
            operation.__dict__.pop(method, None)


def explain(exc: BaseException, watch: Watch | None, connection: BaseDatabaseWrapper) -> str:
    """The step's error: where it failed, then what PostgreSQL or Python said."""
    said = error(exc)
    if watch is None:
        return said
    parts = []
    if watch.operation is not None:
        index, description = watch.operation
        parts.append(f"operation {index} of {watch.operations} ({description})")
    table, column, value = _locate(exc, watch.statement)
    if table and column:
        parts.append(f'column "{column}" of {table}')
    elif table:
        parts.append(f"table {table}")
    if table and column:
        row = _row(connection, table, column, value)
        if row:
            parts.append(row)
    elif not table:
        parts.extend(_written(watch))
    detail = _detail(exc)
    if detail and detail not in said:
        said += f" ({detail})"
    return ", ".join(parts) + ": " + said if parts else said


def error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {one_line(exc)}"


_NULLS = re.compile(r'column "([^"]+)" of relation "([^"]+)" contains null values')
_VALUE = re.compile(r'invalid input syntax for type [\w ]+: "(.*)"|value "?(.*?)"? is out of range'
                    r'|value too long for type')
_KEY = re.compile(r"Key \(([^)]+)\)=\((.*)\) (?:is duplicated|already exists)")
_STATEMENT_COLUMN = re.compile(
    r'ALTER TABLE "?([\w.]+)"? (?:ALTER COLUMN |ADD COLUMN |ADD CONSTRAINT "?\w+"? UNIQUE \()'
    r'"?(\w+)"?')
_STATEMENT_INDEX = re.compile(r'CREATE UNIQUE INDEX (?:CONCURRENTLY )?"?\w+"? ON "?([\w.]+)"? '
                              r'(?:USING \w+ )?\("?(\w+)"?')


def _diag(exc: BaseException) -> Any:
    cause = exc.__cause__ or exc.__context__
    return getattr(cause, "diag", None) or getattr(exc, "diag", None)


def _detail(exc: BaseException) -> str:
    diag = _diag(exc)
    return str(getattr(diag, "message_detail", "") or "") if diag is not None else ""


def _locate(exc: BaseException, statement: str) -> tuple[str, str, Any]:
    """(table, column, offending value: a string, None for a NULL, or ... if unknown)."""
    message = str(exc)
    diag = _diag(exc)
    table = str(getattr(diag, "table_name", "") or "") if diag is not None else ""
    column = str(getattr(diag, "column_name", "") or "") if diag is not None else ""
    value: Any = ...
    nulls = _NULLS.search(message)
    if nulls:
        return nulls.group(2), nulls.group(1), None
    key = _KEY.search(_detail(exc) or message)
    if key and "," not in key.group(1):
        column, value = key.group(1).strip('"'), key.group(2)
    found = _VALUE.search(message)
    if found and found.group(1) is not None:
        value = found.group(1)
    for pattern in (_STATEMENT_COLUMN, _STATEMENT_INDEX):
        match = pattern.search(statement)
        if match:
            table = table or match.group(1)
            column = column or match.group(2)
            break
    if "violates not-null constraint" in message:
        value = None
    return table, column, value


_WRITE = re.compile(r'^(?:UPDATE|INSERT INTO|DELETE FROM) "?([\w.]+)"?')
_BY_KEY = re.compile(r'WHERE "?[\w.]+"?\."?(\w+)"? = %s$')


def _written(watch: Watch) -> list[str]:
    """For a failed write (a RunPython's save()): its table, and the row by its key."""
    match = _WRITE.match(watch.statement)
    if not match:
        return []
    found = [f"table {match.group(1)}"]
    key = _BY_KEY.search(watch.statement)
    params = watch.params
    if key and isinstance(params, (list, tuple)) and params:
        found.append(f"row {key.group(1)}={params[-1]}")
    return found


def _row(connection: BaseDatabaseWrapper, table: str, column: str, value: Any) -> str:
    """``id=3``: the primary key of a row that holds ``value`` in the column, when one is
    found (the failed statement was rolled back, so the rows are as before it)."""
    from django.db import DatabaseError, transaction

    if value is ...:
        return ""
    quote = connection.ops.quote_name
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            key = connection.introspection.get_primary_key_column(cursor, table)
            if not key:
                return ""
            if value is None:
                cursor.execute(f"SELECT {quote(key)} FROM {quote(table)} "
                               f"WHERE {quote(column)} IS NULL LIMIT 1")
            else:
                cursor.execute(f"SELECT {quote(key)} FROM {quote(table)} "
                               f"WHERE {quote(column)}::text = %s LIMIT 1", [value])
            found = cursor.fetchone()
    except DatabaseError:
        return ""
    return f"row {key}={found[0]}" if found else ""


def _describe(operation: Any) -> str:
    try:
        return str(operation.describe())
    except Exception:  # a third-party operation's describe() is not ours to trust
        return type(operation).__name__


def timeout_hint(exc: BaseException, timeouts: Mapping[str, str]) -> str:
    """What to say when PostgreSQL stopped a statement at one of our timeouts."""
    text = str(exc)
    for setting, words in (("statement_timeout", "statement timeout"),
                           ("lock_timeout", "lock timeout")):
        if words in text:
            return (
                f"PostgreSQL stopped it after {setting} = {timeouts.get(setting, '?')}"
                f" ([tool.migration-guard] {setting}). On an empty database a migration "
                "that takes this long usually waits on a lock or does not end; raise the "
                "setting if it is really that slow."
            )
    return ""


def forward_hint(exc: BaseException, watch: Watch | None = None, *, rows: bool = False) -> str:
    """What to do about a failed forward step; ``rows``: the tables held rows when it ran."""
    from django.db import DatabaseError

    text = str(exc)
    if watch is not None and watch.spans and watch.spans[-1].kind == "RunPython" \
            and not isinstance(exc, DatabaseError):
        told = "The migration's own Python code raised the error."
        if not rows:
            return (told + " The tables were empty when it ran, so the data is not the cause: "
                    "`python manage.py migrate` on an empty database shows the traceback.")
        return (
            told + " The tables held rows when it ran (generated ones, and what earlier "
            "migrations made). If it relies on values your app always writes in a certain "
            "form, make the generated rows fit: seed = \"package.module:function\" in "
            "[tool.migration-guard] is called after them with the historical models, or "
            "fixtures with rows = 0 give rows of your own; --rows 0 checks it on empty "
            "tables. If real rows can look like these, it would fail on them too: make it "
            "handle them."
        )
    if rows and _about_the_data(exc):
        return (
            "It failed on what the tables held (generated rows: the first holds the edge of "
            "what each field allows, the longest string and the largest number, the second "
            "the other edge, NULL and the smallest number; and what earlier migrations made). "
            "A production table holding such a value fails the same way: make the migration "
            "handle it (fix or remove such rows first, in a data migration before it). If your "
            "data can never hold it, make the generated rows fit: seed = "
            "\"package.module:function\" in [tool.migration-guard] is called after them with "
            "the historical models; --rows 0 checks it on empty tables."
        )
    if "already exists" in text and "Key (" not in text:
        return ("An object it creates already exists: the base state already has it, "
                "or an earlier migration's reverse left it behind.")
    if ("cannot run inside a transaction block" in text
            or "cannot be executed inside a transaction" in text or "CONCURRENTLY" in text):
        return ("CONCURRENTLY cannot run in a transaction: AddIndexConcurrently, "
                "RemoveIndexConcurrently and RunSQL with CREATE INDEX CONCURRENTLY need "
                "`atomic = False` on the Migration (and nothing else in it that must be atomic).")
    return "Run `python manage.py sqlmigrate` for it and try the SQL on a copy of your database."


def _about_the_data(exc: BaseException) -> bool:
    """A value the data holds made it fail (too long, out of range, NULL, a duplicate, a
    check): not the SQL itself."""
    from django.db import DataError, IntegrityError

    return isinstance(exc, (DataError, IntegrityError))


def backward_hint(key: MigrationKey, graph: Any) -> str:
    parents = [p.key for p in graph.node_map[key].parents if p.key[0] == key[0]]
    target = parents[0][1] if parents else "zero"
    return (
        f"Its reverse fails. Reproduce with `python manage.py migrate {key[0]} {target}` on a "
        "copy of the database, then fix reverse_code / reverse_sql or the order of operations."
    )


def forward_again_hint(key: MigrationKey) -> str:
    """For a migration that applied the first time but not again after its rollback."""
    return (f"{label(key)} applies on a fresh database but not after its own rollback: the "
            "reverse leaves something behind (see the backward step) that the forward then "
            "trips over.")


def not_repeatable_hint(key: MigrationKey) -> str:
    """For a migration whose second forward gives another schema than its first."""
    return (f"{label(key)} is not repeatable: after a rollback, applying it again ends in a "
            "different schema. Usually the reverse left an object behind.")
